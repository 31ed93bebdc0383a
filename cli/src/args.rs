//! Command-line grammar (clap derive). Command names and arguments are fixed
//! by the architecture contract; help texts carry one example per command.

use clap::{ArgGroup, Args, Parser, Subcommand};
use heratio_keys_core::AdminRole;

mod ops;
mod reports;
mod serve;
pub use ops::{
    DoctorArgs, PruneArgs, AUDIT_RETENTION_ENV, FEED_RETENTION_ENV, USAGE_RETENTION_ENV,
};
use reports::role_parser;
#[cfg(test)]
use reports::target_parser;
pub use reports::{AuditArgs, ExportArgs, ExportFormat, ImportArgs};
pub use serve::ServeArgs;

/// Default DSN when neither `--dsn` nor `HERATIO_KEYS_DSN` is given.
pub const DEFAULT_DSN: &str = "sqlite:heratio_keys.db";

/// Environment variable read when `--dsn` is absent.
pub const DSN_ENV: &str = "HERATIO_KEYS_DSN";

const TOP_HELP: &str = "\
Database:
  --dsn, else $HERATIO_KEYS_DSN, else sqlite:heratio_keys.db
  DSN forms: sqlite:PATH  or  mysql://USER:PASS@HOST:PORT/DB

Exit codes:
  0  success (*:validate: the credential is valid)
  1  refused: *:validate found any other status (its name is printed);
     other commands: unknown id, already revoked, client deactivated;
     doctor: a check failed
  2  usage error: bad arguments, bad scope or expiry, malformed DSN, no key
  3  store unreachable (connection refused, bad credentials, file unopenable;
     *:validate prints `unavailable`)
  4  store not usable: schema missing (run `keygen install`), schema newer
     than this keygen, or a database error
  70 internal error (a bug; please report it)

Walkthrough:
  keygen install
  keygen client:create --name 'Reading Room' --email ops@example.org
  keygen api:generate 1 --name production --scopes read,write --expires-in 90d
  keygen api:list 1
  keygen api:validate --scope read < key.txt
  keygen api:rotate 1 --grace 24h
  keygen api:revoke 1
  keygen maintain --dry-run
  keygen prune
  keygen doctor
  keygen audit --since 7d
  keygen import:heratio --from mysql://heratio:secret@127.0.0.1:3306/heratio
  keygen stats

Add --json to any command for one machine-readable JSON document on stdout.";

/// keygen: manage Heratio API keys and AI tokens.
#[derive(Debug, Parser)]
#[command(
    name = "keygen",
    version,
    about = "Manage Heratio API keys (hk_api_…) and AI tokens (hk_ai_…)",
    after_help = TOP_HELP,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Database to use: sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB
    /// [default: $HERATIO_KEYS_DSN, else sqlite:heratio_keys.db]
    #[arg(long, global = true, value_name = "DSN")]
    pub dsn: Option<String>,

    /// Print one JSON document on stdout instead of human-readable text
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// A credential id or client id: a positive integer.
fn id_parser() -> clap::builder::RangedI64ValueParser<i64> {
    clap::value_parser!(i64).range(1..)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or migrate the database schema (idempotent)
    #[command(
        name = "install",
        after_help = "Example:\n  keygen --dsn mysql://keygen:secret@127.0.0.1:3306/heratio_keys install"
    )]
    Install,

    /// Create a client (an organisation or service holding credentials)
    #[command(
        name = "client:create",
        after_help = "Example:\n  keygen client:create --name 'Reading Room' --email ops@example.org --organization 'City Archives'"
    )]
    ClientCreate {
        /// Display name
        #[arg(long)]
        name: String,
        /// Contact e-mail
        #[arg(long)]
        email: String,
        /// Organisation
        #[arg(long)]
        organization: Option<String>,
    },

    /// List clients
    #[command(
        name = "client:list",
        after_help = "Example:\n  keygen client:list --json"
    )]
    ClientList,

    /// Deactivate a client and revoke all its API keys and AI tokens
    #[command(
        name = "client:deactivate",
        after_help = "Example:\n  keygen client:deactivate 3"
    )]
    ClientDeactivate {
        /// Client id
        #[arg(value_name = "ID", value_parser = id_parser())]
        id: i64,
    },

    /// Generate an API key for a client (the key is shown once)
    #[command(
        name = "api:generate",
        after_help = "Example:\n  keygen api:generate 1 --name production --scopes read,write --expires-in 90d"
    )]
    ApiGenerate(GenerateArgs),

    /// List a client's API keys
    #[command(name = "api:list", after_help = "Example:\n  keygen api:list 1")]
    ApiList(ListArgs),

    /// Revoke an API key
    #[command(name = "api:revoke", after_help = "Example:\n  keygen api:revoke 12")]
    ApiRevoke(RevokeArgs),

    /// Check an API key (read from standard input when KEY is `-` or absent)
    #[command(
        name = "api:validate",
        after_help = "Example:\n  keygen api:validate --scope read --scope write < key.txt\n\n\
Exit status: 0 valid, 1 any other status (its name is printed), 2 usage error,\n\
3 store unreachable."
    )]
    ApiValidate(ValidateArgs),

    /// Generate an AI token for a client (the token is shown once)
    #[command(
        name = "ai:generate",
        after_help = "Example:\n  keygen ai:generate 1 --name ai-server --scopes ai:describe --expires-at 2027-01-31T00:00:00Z"
    )]
    AiGenerate(GenerateArgs),

    /// List a client's AI tokens
    #[command(name = "ai:list", after_help = "Example:\n  keygen ai:list 1 --json")]
    AiList(ListArgs),

    /// Revoke an AI token
    #[command(name = "ai:revoke", after_help = "Example:\n  keygen ai:revoke 4")]
    AiRevoke(RevokeArgs),

    /// Check an AI token (read from standard input when KEY is `-` or absent)
    #[command(
        name = "ai:validate",
        after_help = "Example:\n  printf '%s' \"$TOKEN\" | keygen ai:validate -\n\n\
Exit status: 0 valid, 1 any other status (its name is printed), 2 usage error,\n\
3 store unreachable."
    )]
    AiValidate(ValidateArgs),

    /// Set or remove an API key's hourly rate limit
    #[command(
        name = "api:limit",
        after_help = "Example:\n  keygen api:limit 12 1000\n  keygen api:limit 12 --none\n\n\
A limit is the most validations accepted per clock hour (UTC), across every\n\
process sharing the database; over it a validation answers rate_limited (429)."
    )]
    ApiLimit(LimitArgs),

    /// Replace or remove an API key's metadata (a JSON object)
    #[command(
        name = "api:metadata",
        after_help = "Example:\n  keygen api:metadata 12 '{\"team\": \"harvest\"}'\n  keygen api:metadata 12 --none"
    )]
    ApiMetadata(MetadataArgs),

    /// Set or remove an AI token's hourly rate limit
    #[command(
        name = "ai:limit",
        after_help = "Example:\n  keygen ai:limit 4 600\n  keygen ai:limit 4 --none"
    )]
    AiLimit(LimitArgs),

    /// Replace or remove an AI token's metadata (a JSON object)
    #[command(
        name = "ai:metadata",
        after_help = "Example:\n  keygen ai:metadata 4 '{\"model\": \"describer\"}'"
    )]
    AiMetadata(MetadataArgs),

    /// Replace an API key with a new one; the old one works for a grace period
    #[command(
        name = "api:rotate",
        after_help = "Example:\n  keygen api:rotate 12 --grace 48h\n\n\
The new key keeps the old one's client, name, scopes, rate limit, allowlist and\n\
metadata, and is shown once. The old key expires at the end of the grace period\n\
(or at its own earlier expiry); --grace 0 ends it now."
    )]
    ApiRotate(RotateArgs),

    /// Replace an AI token with a new one; the old one works for a grace period
    #[command(
        name = "ai:rotate",
        after_help = "Example:\n  keygen ai:rotate 4 --grace 1h"
    )]
    AiRotate(RotateArgs),

    /// Set, move or remove an API key's expiry
    #[command(
        name = "api:expire",
        after_help = "Example:\n  keygen api:expire 12 --in 30d\n  keygen api:expire 12 --at 2027-01-31T00:00:00Z\n  keygen api:expire 12 --never"
    )]
    ApiExpire(ExpireArgs),

    /// Set, move or remove an AI token's expiry
    #[command(
        name = "ai:expire",
        after_help = "Example:\n  keygen ai:expire 4 --in 7d"
    )]
    AiExpire(ExpireArgs),

    /// Change an API key's name (label)
    #[command(
        name = "api:rename",
        after_help = "Example:\n  keygen api:rename 12 harvester-2027"
    )]
    ApiRename(RenameArgs),

    /// Change an AI token's name (label)
    #[command(
        name = "ai:rename",
        after_help = "Example:\n  keygen ai:rename 4 describer"
    )]
    AiRename(RenameArgs),

    /// Restrict an API key to IP networks, or allow it from anywhere again
    #[command(
        name = "api:allow-ip",
        after_help = "Example:\n  keygen api:allow-ip 12 192.0.2.0/24,2001:db8::/32\n  keygen api:allow-ip 12 --any\n\n\
A validation from any other address, or with no address, answers ip_denied (403)."
    )]
    ApiAllowIp(AllowIpArgs),

    /// Restrict an AI token to IP networks, or allow it from anywhere again
    #[command(
        name = "ai:allow-ip",
        after_help = "Example:\n  keygen ai:allow-ip 4 10.0.0.0/8"
    )]
    AiAllowIp(AllowIpArgs),

    /// Change a client's name, e-mail, organisation or idle-revoke policy
    #[command(
        name = "client:update",
        after_help = "Example:\n  keygen client:update 3 --email new-ops@example.org --idle-revoke 30d\n  keygen client:update 3 --organization '' --no-idle-revoke\n\n\
With --idle-revoke, `keygen maintain` revokes the client's keys and tokens unused\n\
that long (counting from the last accepted use, or from creation)."
    )]
    ClientUpdate(ClientUpdateArgs),

    /// Reactivate a deactivated client (its revoked keys stay revoked)
    #[command(
        name = "client:reactivate",
        after_help = "Example:\n  keygen client:reactivate 3\n  keygen api:generate 3 --name production"
    )]
    ClientReactivate {
        /// Client id
        #[arg(value_name = "ID", value_parser = id_parser())]
        id: i64,
    },

    /// Revoke idle keys and list what is due to be revoked or to expire soon
    #[command(
        name = "maintain",
        after_help = "Example:\n  keygen maintain --dry-run\n  keygen maintain --json   # from cron, mailed to the operators\n\n\
Revokes (audit actor `maintenance`) every active key and token unused longer\n\
than its client's idle-revoke policy, and lists those to be revoked within 7\n\
days and those expiring within 7 days. Idempotent; exit 0 whatever it finds."
    )]
    Maintain {
        /// Evaluate every policy as of this instant instead of now (RFC 3339)
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
        /// Report what would be revoked; revoke nothing
        #[arg(long)]
        dry_run: bool,
    },

    /// Delete raw usage, change-feed and (if asked) audit rows past their retention
    #[command(name = "prune", after_help = ops::PRUNE_HELP)]
    Prune(PruneArgs),

    /// Check the installation and explain what to fix
    #[command(name = "doctor", after_help = ops::DOCTOR_HELP)]
    Doctor(DoctorArgs),

    /// Search the audit log (newest first)
    #[command(
        name = "audit",
        after_help = "Example:\n  keygen audit --action api_key.revoke --since 2026-03-01 --until 2026-04-01\n  keygen audit --target client:3 --json\n  keygen audit --actor maintenance --since 7d\n\n\
Times: RFC 3339, a UTC date (2026-03-01 = its midnight), or a duration meaning\n\
that long ago (7d, 12h). --action ending in `.` matches every action with that\n\
prefix (api_key.)."
    )]
    Audit(AuditArgs),

    /// Stream usage-log rows to standard output as CSV or JSON lines
    #[command(
        name = "usage:export",
        after_help = "Example:\n  keygen usage:export --since 2026-11-01 --until 2026-12-01 > november.csv\n  keygen usage:export --client 3 --kind api --status forbidden --format json | jq .ip\n\n\
Rows of stored credentials, oldest first, streamed (memory stays flat however\n\
long the range). Validations that matched no credential are counted per minute\n\
elsewhere and are not exported."
    )]
    UsageExport(ExportArgs),

    /// Import AtoM Heratio's API keys (its ahg_api_key table), digests and all
    #[command(
        name = "import:heratio",
        after_help = "Example:\n  keygen import:heratio --from mysql://heratio:secret@127.0.0.1:3306/heratio --dry-run\n  keygen import:heratio --from mysql://heratio:secret@127.0.0.1:3306/heratio\n\n\
Without --client, each Heratio user gets a client (named from AtoM's user table),\n\
created on the first import and reused after. Running it again imports only\n\
what is new and applies what changed (a key deactivated in Heratio is revoked).\n\
Rows that cannot be imported are listed with the reason and skipped; the rest\n\
is written in one transaction. See docs/heratio.md."
    )]
    ImportHeratio(ImportArgs),

    /// Totals, validations per day and the most used credentials
    #[command(
        name = "stats",
        after_help = "Example:\n  keygen stats --client 1 --days 7"
    )]
    Stats {
        /// Only this client
        #[arg(long, value_name = "ID", value_parser = id_parser())]
        client: Option<i64>,
        /// Days in the window, ending today
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// How many top credentials to show
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        top: u32,
    },

    /// Run the web administration interface and the HTTP verify endpoint
    #[command(
        name = "serve",
        after_help = "Example:\n  keygen serve --listen 127.0.0.1:8080\n\n\
Log in at /login with an account made by `keygen admin:create`. Behind a TLS\n\
reverse proxy add --secure-cookies and --trust-proxy (see docs/web.md)."
    )]
    Serve(ServeArgs),

    /// Create a web administrator (password from a prompt or standard input)
    #[command(
        name = "admin:create",
        after_help = "Example:\n  keygen admin:create alice\n  keygen admin:create carol --role viewer\n  printf '%s\\n' \"$PASSWORD\" | keygen admin:create alice --reset-password"
    )]
    AdminCreate {
        /// User name: 1-64 characters of A-Z a-z 0-9 . _ @ -
        #[arg(value_name = "USER")]
        user: String,
        /// Set a new password for an existing administrator instead
        #[arg(long)]
        reset_password: bool,
        /// What the account may do: viewer (read only), operator (clients,
        /// keys, tokens) or admin (everything) [default: admin]
        #[arg(long, value_name = "ROLE", value_parser = role_parser, conflicts_with = "reset_password")]
        role: Option<AdminRole>,
    },

    /// List web administrators: name, role, active, last login
    #[command(
        name = "admin:list",
        after_help = "Example:\n  keygen admin:list --json"
    )]
    AdminList,

    /// Disable a web administrator (cannot log in; sessions end)
    #[command(
        name = "admin:disable",
        after_help = "Example:\n  keygen admin:disable bob\n\n\
The last active admin cannot be disabled (exit 1)."
    )]
    AdminDisable {
        /// User name
        #[arg(value_name = "USER")]
        user: String,
    },

    /// Enable a disabled web administrator
    #[command(
        name = "admin:enable",
        after_help = "Example:\n  keygen admin:enable bob"
    )]
    AdminEnable {
        /// User name
        #[arg(value_name = "USER")]
        user: String,
    },

    /// Change a web administrator's role (their sessions end)
    #[command(
        name = "admin:role",
        after_help = "Example:\n  keygen admin:role bob operator\n\n\
Roles: viewer (reads everything, changes nothing), operator (also clients, keys\n\
and tokens), admin (everything, including accounts). The last active admin\n\
cannot be demoted (exit 1)."
    )]
    AdminRole {
        /// User name
        #[arg(value_name = "USER")]
        user: String,
        /// viewer, operator or admin
        #[arg(value_name = "ROLE", value_parser = role_parser)]
        role: AdminRole,
    },

    /// Print a shell completion script
    #[command(
        name = "completions",
        after_help = "Example:\n  keygen completions bash > /etc/bash_completion.d/keygen"
    )]
    Completions {
        /// Target shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the keygen(1) man page in roff (packagers: `keygen man > keygen.1`)
    #[command(name = "man", hide = true)]
    Man,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Owning client id
    #[arg(value_name = "CLIENT_ID", value_parser = id_parser())]
    pub client_id: i64,
    /// Label naming the purpose, e.g. production, staging
    #[arg(long, value_name = "LABEL")]
    pub name: String,
    /// Comma-separated scopes, e.g. read,write (`*` grants every scope)
    #[arg(long, value_name = "a,b", default_value = "*")]
    pub scopes: String,
    /// Lifetime from now: a number and a unit s, m, h, d or w (e.g. 90d, 12h)
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    pub expires_in: Option<String>,
    /// Expiry time, RFC 3339 (e.g. 2027-01-31T00:00:00Z)
    #[arg(long, value_name = "RFC3339")]
    pub expires_at: Option<String>,
    /// Most validations accepted per clock hour (UTC); default: unlimited
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<i64>,
    /// A JSON object (at most 4 KiB) returned with every validation, e.g.
    /// '{"team":"harvest"}'
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// Usable only from these networks, e.g. 192.0.2.0/24,2001:db8::/32
    /// (default: from anywhere)
    #[arg(long, value_name = "CIDR[,CIDR…]")]
    pub allow_ip: Option<String>,
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Credential id (from *:list)
    #[arg(value_name = "KEY_ID", value_parser = id_parser())]
    pub id: i64,
    /// Most validations accepted per clock hour (UTC), 0 to 1000000000
    #[arg(
        value_name = "N",
        required_unless_present = "none",
        conflicts_with = "none"
    )]
    pub limit: Option<i64>,
    /// Remove the limit: unlimited
    #[arg(long)]
    pub none: bool,
}

#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// Credential id (from *:list)
    #[arg(value_name = "KEY_ID", value_parser = id_parser())]
    pub id: i64,
    /// A JSON object of at most 4 KiB (compact form), replacing the old one
    #[arg(
        value_name = "JSON",
        required_unless_present = "none",
        conflicts_with = "none"
    )]
    pub metadata: Option<String>,
    /// Remove the metadata
    #[arg(long)]
    pub none: bool,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Credential id (from *:list)
    #[arg(value_name = "KEY_ID", value_parser = id_parser())]
    pub id: i64,
    /// How long the old one keeps working: a number and a unit s, m, h, d
    /// or w; 0 ends it now
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub grace: String,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("when").required(true).args(["in_", "at", "never"])))]
pub struct ExpireArgs {
    /// Credential id (from *:list)
    #[arg(value_name = "KEY_ID", value_parser = id_parser())]
    pub id: i64,
    /// Expire this long from now: a number and a unit s, m, h, d or w
    #[arg(long = "in", id = "in_", value_name = "DURATION")]
    pub in_: Option<String>,
    /// Expire at this time, RFC 3339 (e.g. 2027-01-31T00:00:00Z)
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Never expire
    #[arg(long)]
    pub never: bool,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Credential id (from *:list)
    #[arg(value_name = "KEY_ID", value_parser = id_parser())]
    pub id: i64,
    /// The new label
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct AllowIpArgs {
    /// Credential id (from *:list)
    #[arg(value_name = "KEY_ID", value_parser = id_parser())]
    pub id: i64,
    /// Networks or addresses, comma-separated (IPv4 and IPv6), replacing
    /// the old list
    #[arg(
        value_name = "CIDR[,CIDR…]",
        required_unless_present = "any",
        conflicts_with = "any"
    )]
    pub networks: Option<String>,
    /// Remove the allowlist: usable from anywhere
    #[arg(long)]
    pub any: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)
    .args(["name", "email", "organization", "idle_revoke", "no_idle_revoke"])))]
pub struct ClientUpdateArgs {
    /// Client id
    #[arg(value_name = "ID", value_parser = id_parser())]
    pub id: i64,
    /// New display name
    #[arg(long)]
    pub name: Option<String>,
    /// New contact e-mail
    #[arg(long)]
    pub email: Option<String>,
    /// New organisation ('' removes it)
    #[arg(long)]
    pub organization: Option<String>,
    /// Revoke keys and tokens unused this long (`keygen maintain`), e.g. 30d
    #[arg(long, value_name = "DURATION", conflicts_with = "no_idle_revoke")]
    pub idle_revoke: Option<String>,
    /// Never revoke keys for idleness
    #[arg(long)]
    pub no_idle_revoke: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Client id
    #[arg(value_name = "CLIENT_ID", value_parser = id_parser())]
    pub client_id: i64,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Credential id (from *:list)
    #[arg(value_name = "KEY_ID", value_parser = id_parser())]
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The key, or `-` (the default) to read it from standard input; keys on
    /// a command line end up in shell history and process lists
    #[arg(value_name = "KEY|-")]
    pub key: Option<String>,
    /// A scope the credential must hold (repeatable)
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn targets_take_an_optional_id_and_short_kinds() {
        assert_eq!(target_parser("client"), Ok(("client".into(), None)));
        assert_eq!(target_parser("api:7"), Ok(("api_key".into(), Some(7))));
        assert_eq!(
            target_parser("admin_user:2"),
            Ok(("admin_user".into(), Some(2)))
        );
        for bad in ["", ":3", "client:", "client:0", "client:x", "Client", "a b"] {
            assert!(target_parser(bad).is_err(), "{bad}");
        }
    }
}
