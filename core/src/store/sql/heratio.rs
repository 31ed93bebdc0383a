//! Heratio imports: reading AtoM Heratio's `ahg_api_key` and `user` tables
//! from a source database, and applying an [`ImportPlan`] to ours in one
//! transaction (or, for a dry run, only reading what it would change).

use std::collections::HashMap;

use super::{
    audit, check_text, client_from_row, credential_info_from_row, feed, fetch_client, Conn, Driver,
    SqlStore, Value, CLIENT_COLUMNS, CREDENTIAL_COLUMNS,
};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{digest_hex, parse_digest_hex, Digest, KeyShape, Kind};
use crate::import::{
    heratio_key_id, user_external_id, CreatedClient, HeratioSource, ImportPlan, ImportReport,
    ImportTarget, ImportedKey, KeyChange, KeyRef, Skipped, SourceKey, SourceUser,
};
use crate::model::{now_ms, truncate, Actor, Client, CredentialInfo, Metadata, MAX_IP_LEN};
use crate::store::schema::Dialect;

/// Source columns, in [`source_key`]'s order. Dates and JSON are read as
/// text, which both engines give for `CAST(… AS CHAR)`.
const SOURCE_KEY_SQL: &str = "SELECT id, user_id, name, api_key, api_key_prefix, \
     CAST(scopes AS CHAR), rate_limit, CAST(expires_at AS CHAR), CAST(last_used_at AS CHAR), \
     is_active, CAST(created_at AS CHAR) FROM ahg_api_key ORDER BY id";

/// Rows per multi-row `INSERT` (14 parameters a key: 2 800 a statement).
const BATCH: usize = 200;

fn table_exists(conn: &mut dyn Conn, dialect: Dialect, table: &str) -> Result<bool> {
    let sql = match dialect {
        Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        Dialect::Mysql => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = ?"
        }
    };
    let rows = conn.query(sql, &[table.into()])?;
    Ok(rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0) > 0)
}

fn source_key(row: &super::Row) -> Result<SourceKey> {
    Ok(SourceKey {
        id: row.int(0)?,
        user_id: row.int(1)?,
        name: row.opt_text(2)?.unwrap_or_default(),
        api_key: row.opt_text(3)?.unwrap_or_default(),
        api_key_prefix: row.opt_text(4)?.unwrap_or_default(),
        scopes: row.opt_text(5)?,
        rate_limit: row.opt_int(6)?,
        expires_at: row.opt_text(7)?,
        last_used_at: row.opt_text(8)?,
        is_active: row.opt_int(9)?,
        created_at: row.opt_text(10)?,
    })
}

/// Where an imported key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Existing {
        id: i64,
        active: bool,
    },
    /// A client this (dry) run would create.
    New,
}

impl Dest {
    fn id(self) -> Option<i64> {
        match self {
            Dest::Existing { id, .. } => Some(id),
            Dest::New => None,
        }
    }

    fn active(self) -> bool {
        match self {
            Dest::Existing { active, .. } => active,
            Dest::New => true,
        }
    }
}

/// A key to insert, with what the plan resolved for it.
struct Insert<'a> {
    key: &'a ImportedKey,
    client_id: i64,
    metadata: Metadata,
}

/// One run of an import on one connection; writes only when `actor` is
/// set (inside the transaction the caller opened).
struct Run<'a> {
    conn: &'a mut dyn Conn,
    plan: &'a ImportPlan,
    lock: &'static str,
    actor: Option<&'a Actor>,
    now: i64,
    report: ImportReport,
}

impl Run<'_> {
    fn skip(&mut self, key: &ImportedKey, reason: String) {
        self.report.skipped.push(Skipped {
            heratio_key_id: key.heratio_key_id,
            reason,
        });
    }

    /// The client each Heratio user's keys go to, creating missing ones.
    fn clients(&mut self) -> Result<(Option<Dest>, HashMap<i64, Dest>)> {
        let mut per_user = HashMap::new();
        match &self.plan.target {
            ImportTarget::Client(id) => {
                let client = fetch_client(self.conn, *id, self.lock)?;
                if !client.active {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("client {id} is deactivated; it cannot receive imported keys"),
                    ));
                }
                return Ok((
                    Some(Dest::Existing {
                        id: client.id,
                        active: true,
                    }),
                    per_user,
                ));
            }
            ImportTarget::PerUser(wanted) => {
                let rows = self.conn.query(
                    &format!(
                        "SELECT {CLIENT_COLUMNS} FROM client WHERE external_id LIKE 'heratio:user:%'{}",
                        self.lock
                    ),
                    &[],
                )?;
                let known: HashMap<String, Client> = rows
                    .iter()
                    .map(client_from_row)
                    .filter_map(|c| match c {
                        Ok(c) => c.external_id.clone().map(|e| Ok((e, c))),
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<_>>()?;
                for (&user_id, new) in wanted {
                    let external_id = user_external_id(user_id);
                    if let Some(c) = known.get(&external_id) {
                        per_user.insert(
                            user_id,
                            Dest::Existing {
                                id: c.id,
                                active: c.active,
                            },
                        );
                        continue;
                    }
                    check_text("client name", &new.name, 255)?;
                    check_text("client e-mail", &new.email, 255)?;
                    let id = match self.actor {
                        Some(actor) => {
                            let id = self
                                .conn
                                .exec(
                                    "INSERT INTO client (name, email, organization, is_active, created_at, external_id) VALUES (?, ?, NULL, 1, ?, ?)",
                                    &[
                                        new.name.as_str().into(),
                                        new.email.as_str().into(),
                                        self.now.into(),
                                        external_id.as_str().into(),
                                    ],
                                )?
                                .last_id;
                            audit(
                                self.conn,
                                actor,
                                "client.create",
                                "client",
                                Some(id),
                                Some(format!(
                                    "name={} external_id={external_id} (import)",
                                    new.name
                                )),
                            )?;
                            Some(id)
                        }
                        None => None,
                    };
                    self.report.clients_created += 1;
                    self.report.clients.push(CreatedClient {
                        client_id: id,
                        heratio_user_id: user_id,
                        name: new.name.clone(),
                        email: new.email.clone(),
                    });
                    per_user.insert(
                        user_id,
                        id.map_or(Dest::New, |id| Dest::Existing { id, active: true }),
                    );
                }
            }
        }
        Ok((None, per_user))
    }

    /// Imported keys already stored (shape other than native), by digest.
    fn existing(&mut self) -> Result<HashMap<Digest, CredentialInfo>> {
        let rows = self.conn.query(
            &format!(
                "SELECT {CREDENTIAL_COLUMNS}, key_hash FROM api_key WHERE key_shape <> {}{}",
                KeyShape::Native.code(),
                self.lock
            ),
            &[],
        )?;
        let mut out = HashMap::with_capacity(rows.len());
        // key_hash follows the credential columns, however many they are.
        let hash_column = CREDENTIAL_COLUMNS.split(',').count();
        for row in &rows {
            let digest = parse_digest_hex(&row.text(hash_column)?)
                .ok_or_else(|| Error::internal("stored key_hash is not hex"))?;
            out.insert(digest, credential_info_from_row(Kind::ApiKey, row)?);
        }
        Ok(out)
    }

    fn update(
        &mut self,
        existing: &CredentialInfo,
        key: &ImportedKey,
        client_id: i64,
        metadata: &Metadata,
        changed: &[&'static str],
        actor: &Actor,
    ) -> Result<()> {
        let revoking = changed.contains(&"revoked");
        self.conn.exec(
            "UPDATE api_key SET client_id = ?, name = ?, scopes = ?, rate_limit = ?, expires_at = ?, \
             last_used_at = ?, metadata = ?, is_active = ?, revoked_at = ? WHERE id = ?",
            &[
                client_id.into(),
                key.name.as_str().into(),
                key.scopes.to_stored().into(),
                key.rate_limit.into(),
                key.expires_at.into(),
                existing.last_used_at.max(key.last_used_at).into(),
                metadata.as_str().into(),
                i64::from(!revoking).into(),
                if revoking {
                    Some(self.now)
                } else {
                    existing.revoked_at
                }
                .into(),
                existing.id.into(),
            ],
        )?;
        let hex = digest_hex(&key.digest);
        feed(
            self.conn,
            Kind::ApiKey,
            &hex,
            if revoking { "revoked" } else { "imported" },
        )?;
        audit(
            self.conn,
            actor,
            if revoking {
                "api_key.revoke"
            } else {
                "api_key.import_update"
            },
            "api_key",
            Some(existing.id),
            Some(format!(
                "heratio_key_id={} changed={} (import)",
                key.heratio_key_id,
                changed.join(",")
            )),
        )
    }

    /// Stores new keys in batches: the rows, then their ids, change-feed
    /// rows and audit rows, one multi-row statement each.
    fn insert(&mut self, inserts: &[Insert<'_>], actor: &Actor) -> Result<()> {
        let actor_name = truncate(actor.name.clone(), 255);
        let actor_ip = actor.ip.clone().map(|ip| truncate(ip, MAX_IP_LEN));
        for chunk in inserts.chunks(BATCH) {
            let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 13);
            for i in chunk {
                let k = i.key;
                params.extend([
                    i.client_id.into(),
                    k.name.as_str().into(),
                    digest_hex(&k.digest).into(),
                    k.display_prefix.as_str().into(),
                    k.scopes.to_stored().into(),
                    i64::from(k.active).into(),
                    k.created_at.unwrap_or(self.now).into(),
                    k.expires_at.into(),
                    (!k.active).then_some(self.now).into(),
                    k.last_used_at.into(),
                    i.metadata.as_str().into(),
                    k.rate_limit.into(),
                    i64::from(k.shape.code()).into(),
                ]);
            }
            self.conn.exec(
                &format!(
                    "INSERT INTO api_key (client_id, name, key_hash, key_prefix, scopes, is_active, created_at, expires_at, revoked_at, last_used_at, usage_count, metadata, rate_limit, key_shape) VALUES {}",
                    vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)"; chunk.len()].join(", ")
                ),
                &params,
            )?;
            let hexes: Vec<Value> = chunk
                .iter()
                .map(|i| digest_hex(&i.key.digest).into())
                .collect();
            let ids: HashMap<String, i64> = self
                .conn
                .query(
                    &format!(
                        "SELECT key_hash, id FROM api_key WHERE key_hash IN ({})",
                        vec!["?"; chunk.len()].join(", ")
                    ),
                    &hexes,
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?)))
                .collect::<Result<_>>()?;
            let mut feed_params: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
            let mut audit_params: Vec<Value> = Vec::with_capacity(chunk.len() * 8);
            for (i, hex) in chunk.iter().zip(&hexes) {
                let Value::Text(hex) = hex else {
                    return Err(Error::internal("digest is not text"));
                };
                let id = *ids
                    .get(hex)
                    .ok_or_else(|| Error::internal("an imported key was not stored"))?;
                let k = i.key;
                feed_params.extend([
                    i64::from(Kind::ApiKey.code()).into(),
                    hex.as_str().into(),
                    "imported".into(),
                    self.now.into(),
                ]);
                audit_params.extend([
                    self.now.into(),
                    actor_name.as_str().into(),
                    actor.source.as_str().into(),
                    actor_ip.clone().into(),
                    "api_key.import".into(),
                    "api_key".into(),
                    id.into(),
                    truncate(
                        format!(
                            "heratio_key_id={} heratio_user_id={} client_id={} name={} scopes={} shape={} active={}",
                            k.heratio_key_id,
                            k.heratio_user_id,
                            i.client_id,
                            k.name,
                            k.scopes,
                            k.shape.name(),
                            k.active
                        ),
                        1024,
                    )
                    .into(),
                ]);
            }
            self.conn.exec(
                &format!(
                    "INSERT INTO change_feed (credential_kind, key_hash, reason, created_at) VALUES {}",
                    vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
                ),
                &feed_params,
            )?;
            self.conn.exec(
                &format!(
                    "INSERT INTO audit_log (created_at, actor, source, ip, action, target_type, target_id, detail) VALUES {}",
                    vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
                ),
                &audit_params,
            )?;
        }
        Ok(())
    }

    fn run(mut self) -> Result<ImportReport> {
        let (single, per_user) = self.clients()?;
        let existing = self.existing()?;
        let plan = self.plan;
        let mut inserts = Vec::new();
        for key in &plan.keys {
            let dest = single
                .or_else(|| per_user.get(&key.heratio_user_id).copied())
                .ok_or_else(|| Error::internal("no client resolved for an imported key"))?;
            let deactivated = || {
                format!(
                    "client {} is deactivated; it cannot receive imported keys",
                    dest.id().unwrap_or_default()
                )
            };
            match existing.get(&key.digest) {
                None => {
                    if !dest.active() {
                        self.skip(key, deactivated());
                        continue;
                    }
                    let metadata = match key.metadata(None) {
                        Ok(m) => m,
                        Err(e) => {
                            self.skip(key, e.message().to_owned());
                            continue;
                        }
                    };
                    self.report.imported += 1;
                    self.report.revoked += u64::from(!key.active);
                    if let Some(client_id) = dest.id() {
                        inserts.push(Insert {
                            key,
                            client_id,
                            metadata,
                        });
                    }
                }
                // A revocation here is final: the import never undoes it.
                Some(found) if !found.active => {
                    self.report.unchanged += 1;
                    if key.active {
                        self.report.kept_revoked.push(KeyRef {
                            key_id: found.id,
                            heratio_key_id: Some(key.heratio_key_id),
                        });
                    }
                }
                Some(found) => {
                    let changed = key.changes(found, dest.id());
                    if changed.is_empty() {
                        self.report.unchanged += 1;
                        continue;
                    }
                    if changed.contains(&"client") && !dest.active() {
                        self.skip(key, deactivated());
                        continue;
                    }
                    let metadata = match key.metadata(found.metadata.as_ref()) {
                        Ok(m) => m,
                        Err(e) => {
                            self.skip(key, e.message().to_owned());
                            continue;
                        }
                    };
                    if let (Some(actor), Some(client_id)) = (self.actor, dest.id()) {
                        self.update(found, key, client_id, &metadata, &changed, actor)?;
                    }
                    self.report.updated += 1;
                    self.report.revoked += u64::from(changed.contains(&"revoked"));
                    self.report.updates.push(KeyChange {
                        heratio_key_id: key.heratio_key_id,
                        key_id: found.id,
                        changed,
                    });
                }
            }
        }
        if let Some(actor) = self.actor {
            self.insert(&inserts, actor)?;
        }
        let mut gone: Vec<KeyRef> = existing
            .iter()
            .filter(|(digest, c)| c.active && !plan.present.0.contains(*digest))
            .map(|(_, c)| KeyRef {
                key_id: c.id,
                heratio_key_id: heratio_key_id(c.metadata.as_ref()),
            })
            .collect();
        gone.sort_by_key(|k| k.key_id);
        self.report.not_in_source = gone;
        self.report.skipped.sort_by_key(|s| s.heratio_key_id);
        if let Some(actor) = self.actor {
            audit(
                self.conn,
                actor,
                "import.heratio",
                "import",
                None,
                Some(self.report.summary()),
            )?;
        }
        Ok(self.report)
    }
}

impl<D: Driver> SqlStore<D> {
    /// Reads `ahg_api_key` (and `user`, if present) from this database.
    pub(super) fn heratio_source(&self) -> Result<HeratioSource> {
        let dialect = self.driver.dialect();
        let describe = self.driver.describe();
        self.with_conn(|conn| {
            if !table_exists(conn, dialect, "ahg_api_key")? {
                return Err(Error::new(
                    ErrorKind::Store,
                    format!("{describe} has no table ahg_api_key: is it AtoM Heratio's database?"),
                ));
            }
            let keys = conn
                .query(SOURCE_KEY_SQL, &[])?
                .iter()
                .map(source_key)
                .collect::<Result<Vec<_>>>()?;
            let users = if table_exists(conn, dialect, "user")? {
                let rows = conn.query("SELECT id, username, email FROM `user`", &[])?;
                Some(
                    rows.iter()
                        .map(|r| {
                            Ok(SourceUser {
                                id: r.int(0)?,
                                username: r.opt_text(1)?,
                                email: r.opt_text(2)?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                )
            } else {
                None
            };
            Ok(HeratioSource {
                describe: describe.clone(),
                keys,
                users,
            })
        })
    }

    /// Applies `plan`: in one transaction, or read-only for a dry run.
    pub(super) fn heratio_import(
        &self,
        plan: &ImportPlan,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<ImportReport> {
        let now = now_ms();
        if dry_run {
            return self.with_conn(|conn| {
                Run {
                    conn,
                    plan,
                    lock: "",
                    actor: None,
                    now,
                    report: ImportReport::new(plan, true),
                }
                .run()
            });
        }
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            Run {
                conn,
                plan,
                lock,
                actor: Some(actor),
                now,
                report: ImportReport::new(plan, false),
            }
            .run()
        })
    }
}
