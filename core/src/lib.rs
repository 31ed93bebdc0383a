//! # heratio-keys-core
//!
//! API keys (`hk_api_…`) and AI tokens (`hk_ai_…`) for AtoM Heratio:
//! generation, storage of SHA-256 digests only, and validation in constant
//! time behind an in-process cache that a change feed keeps correct.
//!
//! ```no_run
//! use heratio_keys_core::{Kind, Options, Request, Validator};
//!
//! let validator = Validator::open("sqlite:/var/lib/heratio/keys.db", Options::default())?;
//! let answer = validator.validate(
//!     &Request::new(Kind::ApiKey, b"hk_api_...").scopes(&["read"]).ip(Some("192.0.2.7")),
//! );
//! if !answer.is_valid() {
//!     println!("{} {}", answer.status.http_status(), answer.message());
//! }
//! # Ok::<(), heratio_keys_core::Error>(())
//! ```
//!
//! ## Threat model
//!
//! Protected against:
//! - **Theft of the database** (dump, backup, replica): only SHA-256 digests
//!   of 238-bit random secrets are stored. A digest cannot be presented as a
//!   key, and the secret's entropy makes brute force hopeless, so a fast hash
//!   (not a password hash) is the right tool.
//! - **Timing side channels** on the comparison: the matched record's digest
//!   is compared with [`subtle`] in constant time. Lookups are by digest, so
//!   timing reveals at most whether some digest is cached, never bytes of a
//!   secret.
//! - **Confusing credential families**: an `hk_ai_` token presented where an
//!   API key is expected is `wrong_kind`, never accepted.
//! - **Floods of invalid keys**: malformed input is rejected by length,
//!   alphabet and CRC32 before hashing or any query; unknown well-formed
//!   keys are cached as negative answers, so each distinct digest costs at
//!   most one query per negative TTL.
//! - **Stale authorisation**: a revocation, client deactivation or expiry
//!   change is written to a change feed in the same transaction; every
//!   process evicts within one poll interval (default 500 ms). If the feed
//!   cannot be read, positive answers older than the fail-closed bound are
//!   no longer served.
//! - **Secret leakage through the software**: the plaintext exists only in
//!   [`SecretKey`], which is wiped on drop and redacted from `Debug`; no
//!   error message, log line or table ever contains it. DSNs are printed with
//!   the password masked.
//!
//! Not protected against: an attacker who can read the memory of a
//! validating process, or who can write to the database (they can insert
//! their own digest), or a compromised operating-system RNG.

mod cache;
pub use store::diagnostics as doctor;
pub mod error;
mod feed;
mod fork;
pub mod format;
pub mod import;
pub mod model;
mod ratelimit;
pub mod retention;
mod shared;
mod stats;
pub mod status;
pub mod store;
mod usage;
pub mod validator;
pub mod verify_request;
pub mod view;

pub use error::{Error, ErrorKind, Result};
pub use format::{
    check_format, digest, digest_hex, generate, legacy_shape, Digest, KeyShape, Kind, SecretKey,
};
pub use import::ImportReport;
pub use model::{
    Actor, AdminAccount, AdminCredentials, AdminRole, AllowedIps, AuditEntry, Client, ClientUpdate,
    Credential, CredentialInfo, CredentialState, Deactivation, InstallReport, Maintenance,
    MaintenanceItem, Metadata, NewClient, NewCredential, Pruned, RejectedUsage, Retention, Scopes,
    Source, UsageRecord, UsageStats,
};
pub use ratelimit::RateInfo;
pub use stats::{HostStats, Stats};
pub use status::Status;
pub use store::{
    AdminStore, AuditQuery, AuditStore, Backend, ClientStore, Connections, CredentialStore, Dsn,
    KeyStore, LifecycleStore, ReportStore, StatsQuery, UsageQuery, ValidationStore,
};
pub use validator::{request_text, Options, OptionsBuilder, Request, Validation, Validator};
pub use verify_request::VerifyRequest;
pub use view::{CredentialView, ValidationView};

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What to issue: label, scopes, expiry, rate limit and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// Owning client.
    pub client_id: i64,
    /// Label, e.g. `production`.
    pub name: String,
    /// Granted scopes ([`Scopes::all`] when unspecified).
    pub scopes: Scopes,
    /// Expiry time (ms since the epoch), if any.
    pub expires_at: Option<i64>,
    /// Most accepted validations per clock hour; `None`: unlimited.
    pub rate_limit: Option<i64>,
    /// The caller's JSON object.
    pub metadata: Option<Metadata>,
}

/// A credential just issued: the plaintext (show it once) and what was stored.
#[derive(Debug)]
pub struct Issued {
    /// The plaintext; not stored anywhere.
    pub key: SecretKey,
    /// The stored record.
    pub info: CredentialInfo,
}

/// A rotation: the new credential's plaintext (show it once), what was
/// stored, and the credential it replaces (now expiring at the end of the
/// grace period).
#[derive(Debug)]
pub struct Rotated {
    /// The new plaintext; not stored anywhere.
    pub key: SecretKey,
    /// The new credential.
    pub info: CredentialInfo,
    /// The credential it replaces, with its new expiry.
    pub replaced: CredentialInfo,
}

/// Replaces credential `id` of `kind` with a newly generated one that has
/// its client, label, scopes, rate limit, allowlist and metadata; the old
/// one keeps working for `grace_ms` (or until its own earlier expiry).
///
/// # Errors
///
/// As [`LifecycleStore::rotate_credential`];
/// [`ErrorKind::Internal`] if the OS RNG fails.
pub fn rotate(
    store: &dyn KeyStore,
    kind: Kind,
    id: i64,
    grace_ms: i64,
    actor: &Actor,
) -> Result<Rotated> {
    let key = generate(kind)?;
    let (info, replaced) = store.rotate_credential(
        kind,
        id,
        &model::Replacement {
            digest: key.digest(),
            display_prefix: key.display_prefix().to_owned(),
        },
        grace_ms,
        actor,
    )?;
    Ok(Rotated {
        key,
        info,
        replaced,
    })
}

/// Generates a credential of `kind` and stores its digest.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] for an expiry outside
/// [`model::check_expiry`]'s bounds or a bad label;
/// [`ErrorKind::NotFound`] for an unknown client; [`ErrorKind::Conflict`]
/// for a deactivated client; store errors.
pub fn issue(
    store: &dyn KeyStore,
    kind: Kind,
    request: &IssueRequest,
    actor: &Actor,
) -> Result<Issued> {
    if let Some(expires_at) = request.expires_at {
        model::check_expiry(expires_at, model::now_ms())?;
    }
    let key = generate(kind)?;
    let info = store.insert_credential(
        kind,
        &NewCredential {
            client_id: request.client_id,
            name: request.name.clone(),
            scopes: request.scopes.clone(),
            expires_at: request.expires_at,
            digest: key.digest(),
            display_prefix: key.display_prefix().to_owned(),
            metadata: request.metadata.clone(),
            rate_limit: request.rate_limit,
        },
        actor,
    )?;
    Ok(Issued { key, info })
}

/// Imports the Heratio database `source` into `store`: reads it, maps it
/// ([`import::plan`]) and applies the plan in one transaction (or, with `dry_run`,
/// reports what it would do and writes nothing).
///
/// # Errors
///
/// The source's store errors (message prefixed with `source: `), a source
/// without `ahg_api_key` ([`ErrorKind::Store`](crate::ErrorKind::Store), or
/// [`ErrorKind::SchemaOutdated`](crate::ErrorKind::SchemaOutdated) for a
/// SQLite file that does not exist),
/// an unknown `client` ([`ErrorKind::NotFound`](crate::ErrorKind::NotFound))
/// or a deactivated one ([`ErrorKind::Conflict`](crate::ErrorKind::Conflict)),
/// the target's store errors; nothing is written on error.
pub fn import_heratio(
    store: &dyn KeyStore,
    source: &dyn KeyStore,
    client: Option<i64>,
    dry_run: bool,
    actor: &Actor,
) -> Result<ImportReport> {
    let read = source.read_heratio_source().map_err(|e| {
        // The store's "run `keygen install`" hint is about our schema,
        // which a source never needs.
        let message = if e.kind() == ErrorKind::SchemaOutdated {
            format!(
                "{}: not a Heratio database (no ahg_api_key table, or no database at all)",
                source.describe()
            )
        } else {
            e.message().to_owned()
        };
        Error::new(e.kind(), format!("source: {message}"))
    })?;
    store.apply_heratio_import(&import::plan(&read, client), dry_run, actor)
}
