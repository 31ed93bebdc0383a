//! `import:heratio`: AtoM Heratio's API keys, read from its database and
//! stored here digest and all (the library does the mapping and the
//! transaction; this renders the report).

use heratio_keys_core::import::{ImportReport, KeyRef};
use heratio_keys_core::{import_heratio, store, Dsn, Error};

use super::{actor, ok, open_store, plural, to_json};
use crate::args::ImportArgs;
use crate::{Failure, Outcome};

/// An error about the source, saying so.
fn source_error(e: &Error) -> Failure {
    let mut failure = Failure::from(e.clone());
    failure.message = format!("--from: {}", e.message());
    failure
}

pub(super) fn heratio(dsn: &Dsn, json: bool, a: ImportArgs) -> Result<Outcome, Failure> {
    let from = Dsn::parse(&a.from).map_err(|e| source_error(&e))?;
    let target = open_store(dsn)?;
    let source = store::open(&from).map_err(|e| source_error(&e))?;
    let report = import_heratio(
        target.as_ref(),
        source.as_ref(),
        a.client,
        a.dry_run,
        &actor(),
    )?;
    if json {
        return ok(to_json(&report)?);
    }
    ok(render(&report))
}

fn key_ref(k: &KeyRef) -> String {
    match k.heratio_key_id {
        Some(h) => format!("API key {} (Heratio key {h})", k.key_id),
        None => format!("API key {}", k.key_id),
    }
}

fn render(r: &ImportReport) -> String {
    let mut out = if r.dry_run {
        format!(
            "Dry run, nothing written. From {} ({}): would import {} ({} revoked), update {}, leave {} unchanged, create {}, skip {}.\n",
            r.source,
            plural(r.rows, "row", "rows"),
            r.imported,
            r.revoked,
            r.updated,
            r.unchanged,
            plural(r.clients_created, "client", "clients"),
            r.skipped.len()
        )
    } else {
        format!(
            "Imported from {} ({}): {} imported, {} updated, {} unchanged ({} revoked because Heratio has them inactive), {} created, {} skipped.\n",
            r.source,
            plural(r.rows, "row", "rows"),
            r.imported,
            r.updated,
            r.unchanged,
            r.revoked,
            plural(r.clients_created, "client", "clients"),
            r.skipped.len()
        )
    };
    if !r.clients.is_empty() {
        out.push_str("\nClients created:\n");
        for c in &r.clients {
            out.push_str(&format!(
                "  {}  {} <{}>  (Heratio user {})\n",
                c.client_id
                    .map_or_else(|| "(new)".to_owned(), |id| id.to_string()),
                c.name,
                c.email,
                c.heratio_user_id
            ));
        }
    }
    if !r.updates.is_empty() {
        out.push_str("\nUpdated:\n");
        for u in &r.updates {
            out.push_str(&format!(
                "  API key {} (Heratio key {}): {}\n",
                u.key_id,
                u.heratio_key_id,
                u.changed.join(", ")
            ));
        }
    }
    if !r.skipped.is_empty() {
        out.push_str("\nSkipped:\n");
        for s in &r.skipped {
            out.push_str(&format!(
                "  Heratio key {}: {}\n",
                s.heratio_key_id, s.reason
            ));
        }
    }
    if !r.kept_revoked.is_empty() {
        out.push_str(
            "\nActive in Heratio but revoked here (a revocation is final; left revoked):\n",
        );
        for k in &r.kept_revoked {
            out.push_str(&format!("  {}\n", key_ref(k)));
        }
    }
    if !r.not_in_source.is_empty() {
        out.push_str(
            "\nImported earlier, still active, no longer in the source (revoke with `keygen api:revoke ID`):\n",
        );
        for k in &r.not_in_source {
            out.push_str(&format!("  {}\n", key_ref(k)));
        }
    }
    out
}
