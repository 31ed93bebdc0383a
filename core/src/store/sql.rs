//! Every query, written once for both back ends.
//!
//! A [`Driver`] hands out connections that run parameterised statements
//! (`?` placeholders work in both SQLite and MySQL); [`SqlStore`] implements
//! [`KeyStore`] on top of any driver. Dialect differences are confined to
//! [`Dialect`].

use std::collections::BTreeMap;
use std::fmt;

use super::schema::{Dialect, SCHEMA_VERSION};
use super::{Backend, KeyStore, StatsQuery, UsageEntry, UsageQuery};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{digest_hex, parse_digest_hex, Digest, Kind};
use crate::model::{
    now_ms, utc_date, Actor, AuditEntry, Client, Credential, CredentialInfo, CredentialUsage,
    DayCount, Deactivation, FeedEntry, InstallReport, NewClient, NewCredential, Scopes,
    UsageRecord, UsageStats, DAY_MS,
};
use crate::status::Status;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row, with typed accessors that report schema drift as errors
/// instead of panicking.
#[derive(Debug)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value> {
        self.0
            .get(i)
            .ok_or_else(|| Error::internal(format!("result column {i} missing")))
    }

    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            // MySQL returns DECIMAL aggregates and some integers as text.
            Value::Text(t) => t
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Error::internal(format!("column {i}: expected an integer"))),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?
            .ok_or_else(|| Error::internal(format!("column {i}: unexpected NULL")))
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v.to_string())),
            Value::Text(t) => Ok(Some(t.clone())),
        }
    }

    pub(crate) fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?
            .ok_or_else(|| Error::internal(format!("column {i}: unexpected NULL")))
    }

    fn bool(&self, i: usize) -> Result<bool> {
        Ok(self.int(i)? != 0)
    }
}

/// What a statement changed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exec {
    pub(crate) affected: u64,
    pub(crate) last_id: i64,
}

/// One database connection.
pub(crate) trait Conn {
    /// Runs one parameterised statement.
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<Exec>;
    /// Runs one parameterised query.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    /// Runs unparameterised SQL (DDL, transaction control).
    fn batch(&mut self, sql: &str) -> Result<()>;
}

/// A source of connections for one database.
pub(crate) trait Driver: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;
    fn backend(&self) -> Backend;
    /// Where it points, password masked.
    fn describe(&self) -> String;
    /// Runs `f` on a pooled connection.
    fn with_conn<T>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<T>) -> Result<T>;
}

/// [`KeyStore`] over any [`Driver`].
pub(crate) struct SqlStore<D> {
    driver: D,
}

impl<D: Driver> fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlStore({})", self.driver.describe())
    }
}

/// Credentials per usage-count UPDATE (5 placeholders each, well under
/// both engines' limits).
const USAGE_UPDATE_CHUNK: usize = 500;

const CREDENTIAL_COLUMNS: &str = "id, client_id, name, key_prefix, scopes, is_active, created_at, expires_at, revoked_at, last_used_at, usage_count";
const CLIENT_COLUMNS: &str = "id, name, email, organization, is_active, created_at, deactivated_at";

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(Error::invalid_input(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

fn client_from_row(row: &Row) -> Result<Client> {
    Ok(Client {
        id: row.int(0)?,
        name: row.text(1)?,
        email: row.text(2)?,
        organization: row.opt_text(3)?,
        active: row.bool(4)?,
        created_at: row.int(5)?,
        deactivated_at: row.opt_int(6)?,
    })
}

fn scopes_from_stored(stored: &str) -> Result<Scopes> {
    Scopes::parse(stored).map_err(|e| Error::internal(format!("stored scopes unreadable: {e}")))
}

fn credential_info_from_row(kind: Kind, row: &Row) -> Result<CredentialInfo> {
    Ok(CredentialInfo {
        kind,
        id: row.int(0)?,
        client_id: row.int(1)?,
        name: row.text(2)?,
        display_prefix: row.text(3)?,
        scopes: scopes_from_stored(&row.text(4)?)?,
        active: row.bool(5)?,
        created_at: row.int(6)?,
        expires_at: row.opt_int(7)?,
        revoked_at: row.opt_int(8)?,
        last_used_at: row.opt_int(9)?,
        usage_count: row.int(10)?,
    })
}

fn audit(
    conn: &mut dyn Conn,
    actor: &Actor,
    action: &str,
    target_type: &str,
    target_id: Option<i64>,
    detail: Option<String>,
) -> Result<()> {
    conn.exec(
        "INSERT INTO audit_log (created_at, actor, source, ip, action, target_type, target_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            now_ms().into(),
            crate::model::truncate(actor.name.clone(), 255).into(),
            actor.source.as_str().into(),
            actor.ip.clone().map(|ip| crate::model::truncate(ip, crate::model::MAX_IP_LEN)).into(),
            action.into(),
            target_type.into(),
            target_id.into(),
            detail.map(|d| crate::model::truncate(d, 1024)).into(),
        ],
    )?;
    Ok(())
}

fn feed(conn: &mut dyn Conn, kind: Kind, key_hash: &str, reason: &str) -> Result<()> {
    conn.exec(
        "INSERT INTO change_feed (credential_kind, key_hash, reason, created_at) VALUES (?, ?, ?, ?)",
        &[i64::from(kind.code()).into(), key_hash.into(), reason.into(), now_ms().into()],
    )?;
    Ok(())
}

/// `lock` is `""` or the dialect's `FOR UPDATE`, taken inside transactions
/// that decide on what they read (deactivation racing a key generation).
/// Appends the change-feed row of one stored credential.
fn feed_credential(conn: &mut dyn Conn, kind: Kind, id: i64, reason: &str) -> Result<()> {
    let hash = conn.query(
        &format!("SELECT key_hash FROM {} WHERE id = ?", kind.table()),
        &[id.into()],
    )?;
    for row in &hash {
        feed(conn, kind, &row.text(0)?, reason)?;
    }
    Ok(())
}

fn fetch_client(conn: &mut dyn Conn, id: i64, lock: &str) -> Result<Client> {
    let rows = conn.query(
        &format!("SELECT {CLIENT_COLUMNS} FROM client WHERE id = ?{lock}"),
        &[id.into()],
    )?;
    rows.first()
        .map(client_from_row)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("no client with id {id}")))
}

fn fetch_credential(
    conn: &mut dyn Conn,
    kind: Kind,
    id: i64,
    lock: &str,
) -> Result<CredentialInfo> {
    let rows = conn.query(
        &format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM {} WHERE id = ?{lock}",
            kind.table()
        ),
        &[id.into()],
    )?;
    rows.first()
        .map(|r| credential_info_from_row(kind, r))
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("no {} with id {id}", kind.label())))
}

/// One change to an active credential, applied by
/// [`SqlStore::change_active_credential`].
struct CredentialChange {
    /// Why a revoked credential refuses the change (`"is revoked"`).
    refused: &'static str,
    /// The `SET` clause, with one placeholder.
    set: &'static str,
    value: Value,
    /// Change-feed reason.
    reason: &'static str,
    /// Audit action, after the table name (`revoke` → `api_key.revoke`).
    action: &'static str,
    detail: Option<String>,
}

impl<D: Driver> SqlStore<D> {
    /// Locks an active credential, applies `change`, and records it in the
    /// change feed and the audit log, all in one transaction.
    fn change_active_credential(
        &self,
        kind: Kind,
        id: i64,
        actor: &Actor,
        change: CredentialChange,
    ) -> Result<CredentialInfo> {
        let lock = self.driver.dialect().for_update();
        let table = kind.table();
        self.transaction(|conn| {
            if !fetch_credential(conn, kind, id, lock)?.active {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{} {id} {}", kind.label(), change.refused),
                ));
            }
            conn.exec(
                &format!("UPDATE {table} SET {} WHERE id = ?", change.set),
                &[change.value.clone(), id.into()],
            )?;
            feed_credential(conn, kind, id, change.reason)?;
            let action = format!("{table}.{}", change.action);
            audit(conn, actor, &action, table, Some(id), change.detail.clone())?;
            fetch_credential(conn, kind, id, "")
        })
    }

    pub(crate) fn new(driver: D) -> Self {
        SqlStore { driver }
    }

    fn with_conn<T>(&self, mut f: impl FnMut(&mut dyn Conn) -> Result<T>) -> Result<T> {
        self.driver.with_conn(&mut f)
    }

    /// Runs `f` in one write transaction: committed if it returns `Ok`,
    /// rolled back otherwise.
    fn transaction<T>(&self, mut f: impl FnMut(&mut dyn Conn) -> Result<T>) -> Result<T> {
        let begin = self.driver.dialect().begin();
        self.with_conn(|conn| {
            conn.batch(begin)?;
            match f(conn) {
                Ok(value) => {
                    conn.batch("COMMIT")?;
                    Ok(value)
                }
                Err(err) => {
                    // The original error matters more than a failed rollback;
                    // the driver discards a connection left in a transaction.
                    let _ = conn.batch("ROLLBACK");
                    Err(err)
                }
            }
        })
    }

    fn read_version(conn: &mut dyn Conn) -> Result<Option<u32>> {
        let rows = conn.query("SELECT MAX(version) FROM schema_version", &[])?;
        rows.first()
            .map(|r| r.opt_int(0))
            .transpose()
            .map(|v| v.flatten().and_then(|v| u32::try_from(v).ok()))
    }
}

impl<D: Driver> KeyStore for SqlStore<D> {
    fn backend(&self) -> Backend {
        self.driver.backend()
    }

    fn describe(&self) -> String {
        self.driver.describe()
    }

    fn install(&self) -> Result<InstallReport> {
        let dialect = self.driver.dialect();
        self.with_conn(|conn| {
            conn.batch(dialect.version_table())?;
            let from = Self::read_version(conn)?;
            if from.is_some_and(|v| v > SCHEMA_VERSION) {
                return Err(Error::new(
                    ErrorKind::SchemaTooNew,
                    format!("schema version {} is newer than this keygen understands ({SCHEMA_VERSION}); upgrade heratio-keys", from.unwrap_or_default()),
                ));
            }
            let mut applied = Vec::new();
            for (version, description, statements) in dialect.migrations() {
                if from.is_some_and(|v| v >= version) {
                    continue;
                }
                // MySQL commits DDL implicitly, so every statement is written
                // to be idempotent (IF NOT EXISTS) and the version row goes
                // last: an interrupted install simply runs again.
                for statement in &statements {
                    conn.batch(statement)?;
                }
                conn.exec(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    &[i64::from(version).into(), description.into(), now_ms().into()],
                )?;
                applied.push(format!("{version}: {description}"));
            }
            Ok(InstallReport {
                from_version: from,
                to_version: SCHEMA_VERSION,
                applied,
            })
        })
    }

    fn schema_version(&self) -> Result<Option<u32>> {
        self.with_conn(|conn| match Self::read_version(conn) {
            Err(e) if e.kind() == ErrorKind::SchemaOutdated => Ok(None),
            other => other,
        })
    }

    fn find_credential(&self, kind: Kind, digest: &Digest) -> Result<Option<Credential>> {
        let sql = format!(
            "SELECT k.id, k.client_id, k.name, k.scopes, k.expires_at, k.is_active, c.is_active, k.key_hash \
             FROM {} k JOIN client c ON c.id = k.client_id WHERE k.key_hash = ?",
            kind.table()
        );
        let hex = digest_hex(digest);
        let rows = self.with_conn(|conn| conn.query(&sql, &[hex.as_str().into()]))?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let stored = parse_digest_hex(&row.text(7)?)
            .ok_or_else(|| Error::internal("stored key_hash is not hex"))?;
        Ok(Some(Credential {
            kind,
            id: row.int(0)?,
            client_id: row.int(1)?,
            name: row.text(2)?,
            scopes: scopes_from_stored(&row.text(3)?)?,
            expires_at: row.opt_int(4)?,
            active: row.bool(5)?,
            client_active: row.bool(6)?,
            digest: stored,
        }))
    }

    fn feed_head(&self) -> Result<i64> {
        let rows = self.with_conn(|conn| conn.query("SELECT MAX(id) FROM change_feed", &[]))?;
        Ok(rows
            .first()
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }

    fn feed_since(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                "SELECT id, credential_kind, key_hash FROM change_feed WHERE id > ? ORDER BY id LIMIT ?",
                &[after.into(), i64::from(limit).into()],
            )
        })?;
        rows.iter()
            .map(|row| {
                Ok(FeedEntry {
                    id: row.int(0)?,
                    kind: Kind::from_code(row.int(1)?)
                        .ok_or_else(|| Error::internal("unknown credential_kind in change_feed"))?,
                    digest: parse_digest_hex(&row.text(2)?)
                        .ok_or_else(|| Error::internal("change_feed key_hash is not hex"))?,
                })
            })
            .collect()
    }

    fn write_usage(&self, batch: &[UsageRecord]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Per credential: accepted uses and the latest accepted use.
        let mut accepted: BTreeMap<(Kind, i64), (i64, i64)> = BTreeMap::new();
        for record in batch.iter().filter(|r| r.status == Status::Valid) {
            if let Some(id) = record.credential_id {
                let entry = accepted.entry((record.kind, id)).or_insert((0, record.at));
                entry.0 += 1;
                entry.1 = entry.1.max(record.at);
            }
        }
        let mut insert = String::from(
            "INSERT INTO usage_log (credential_kind, credential_id, client_id, created_at, ip, endpoint, status) VALUES ",
        );
        let mut params = Vec::with_capacity(batch.len() * 7);
        for (i, record) in batch.iter().enumerate() {
            insert.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?, ?)"
            });
            params.extend([
                i64::from(record.kind.code()).into(),
                record.credential_id.into(),
                record.client_id.into(),
                record.at.into(),
                record.ip.clone().into(),
                record.endpoint.clone().into(),
                i64::from(record.status.code()).into(),
            ]);
        }
        // One UPDATE per kind and chunk rather than one per credential: a
        // batch touching 1000 keys would otherwise cost 1000 round trips,
        // which capped the sustainable usage rate on MySQL at ~20k/s.
        let dialect = self.driver.dialect();
        let mut updates: Vec<(String, Vec<Value>)> = Vec::new();
        for kind in Kind::ALL {
            let of_kind: Vec<(i64, i64, i64)> = accepted
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|(&(_, id), &(count, last))| (id, count, last))
                .collect();
            for chunk in of_kind.chunks(USAGE_UPDATE_CHUNK) {
                let cases = vec!["WHEN ? THEN ?"; chunk.len()].join(" ");
                let ids = vec!["?"; chunk.len()].join(", ");
                let last_used =
                    dialect.greatest("COALESCE(last_used_at, 0)", &format!("CASE id {cases} END"));
                let sql = format!(
                    "UPDATE {} SET usage_count = usage_count + CASE id {cases} END, last_used_at = {last_used} WHERE id IN ({ids})",
                    kind.table()
                );
                let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
                params.extend(
                    chunk
                        .iter()
                        .flat_map(|&(id, count, _)| [id.into(), count.into()]),
                );
                params.extend(
                    chunk
                        .iter()
                        .flat_map(|&(id, _, last)| [id.into(), last.into()]),
                );
                params.extend(chunk.iter().map(|&(id, _, _)| id.into()));
                updates.push((sql, params));
            }
        }
        self.transaction(|conn| {
            conn.exec(&insert, &params)?;
            for (sql, params) in &updates {
                conn.exec(sql, params)?;
            }
            Ok(())
        })
    }

    fn create_client(&self, client: &NewClient, actor: &Actor) -> Result<Client> {
        check_text("client name", &client.name, 255)?;
        check_text("client e-mail", &client.email, 255)?;
        if !client.email.contains('@') {
            return Err(Error::invalid_input(format!(
                "{:?} is not an e-mail address",
                client.email
            )));
        }
        if let Some(org) = &client.organization {
            check_text("organization", org, 255)?;
        }
        self.transaction(|conn| {
            let id = conn
                .exec(
                    "INSERT INTO client (name, email, organization, is_active, created_at) VALUES (?, ?, ?, 1, ?)",
                    &[
                        client.name.trim().into(),
                        client.email.trim().into(),
                        client.organization.as_deref().map(str::trim).into(),
                        now_ms().into(),
                    ],
                )?
                .last_id;
            audit(conn, actor, "client.create", "client", Some(id), Some(format!("name={}", client.name.trim())))?;
            fetch_client(conn, id, "")
        })
    }

    fn get_client(&self, id: i64) -> Result<Client> {
        self.with_conn(|conn| fetch_client(conn, id, ""))
    }

    fn list_clients(&self) -> Result<Vec<Client>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                &format!("SELECT {CLIENT_COLUMNS} FROM client ORDER BY id"),
                &[],
            )
        })?;
        rows.iter().map(client_from_row).collect()
    }

    fn deactivate_client(&self, id: i64, actor: &Actor) -> Result<Deactivation> {
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            fetch_client(conn, id, lock)?;
            let now = now_ms();
            conn.exec(
                "UPDATE client SET is_active = 0, deactivated_at = COALESCE(deactivated_at, ?) WHERE id = ?",
                &[now.into(), id.into()],
            )?;
            let mut revoked = [0u64; 2];
            for (slot, kind) in revoked.iter_mut().zip(Kind::ALL) {
                let table = kind.table();
                let hashes = conn.query(
                    &format!("SELECT key_hash FROM {table} WHERE client_id = ? AND is_active = 1"),
                    &[id.into()],
                )?;
                *slot = conn
                    .exec(
                        &format!("UPDATE {table} SET is_active = 0, revoked_at = ? WHERE client_id = ? AND is_active = 1"),
                        &[now.into(), id.into()],
                    )?
                    .affected;
                for row in &hashes {
                    feed(conn, kind, &row.text(0)?, "client_deactivated")?;
                }
            }
            audit(
                conn,
                actor,
                "client.deactivate",
                "client",
                Some(id),
                Some(format!("api_keys_revoked={} ai_tokens_revoked={}", revoked[0], revoked[1])),
            )?;
            Ok(Deactivation {
                client_id: id,
                api_keys_revoked: revoked[0],
                ai_tokens_revoked: revoked[1],
            })
        })
    }

    fn insert_credential(
        &self,
        kind: Kind,
        credential: &NewCredential,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        check_text("label", &credential.name, 255)?;
        let hex = digest_hex(&credential.digest);
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            let client = fetch_client(conn, credential.client_id, lock)?;
            if !client.active {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("client {} is deactivated; it cannot receive new credentials", client.id),
                ));
            }
            let clash = conn.query(&format!("SELECT id FROM {} WHERE key_hash = ?", kind.table()), &[hex.as_str().into()])?;
            if !clash.is_empty() {
                return Err(Error::new(ErrorKind::Conflict, format!("this {} is already stored", kind.label())));
            }
            let id = conn
                .exec(
                    &format!(
                        "INSERT INTO {} (client_id, name, key_hash, key_prefix, scopes, is_active, created_at, expires_at, usage_count) \
                         VALUES (?, ?, ?, ?, ?, 1, ?, ?, 0)",
                        kind.table()
                    ),
                    &[
                        credential.client_id.into(),
                        credential.name.trim().into(),
                        hex.as_str().into(),
                        credential.display_prefix.as_str().into(),
                        credential.scopes.to_stored().into(),
                        now_ms().into(),
                        credential.expires_at.into(),
                    ],
                )?
                .last_id;
            // A process may hold a negative cache entry for this digest.
            feed(conn, kind, &hex, "created")?;
            audit(
                conn,
                actor,
                &format!("{}.generate", kind.table()),
                kind.table(),
                Some(id),
                Some(format!("client_id={} name={} scopes={}", credential.client_id, credential.name.trim(), credential.scopes)),
            )?;
            fetch_credential(conn, kind, id, "")
        })
    }

    fn get_credential(&self, kind: Kind, id: i64) -> Result<CredentialInfo> {
        self.with_conn(|conn| fetch_credential(conn, kind, id, ""))
    }

    fn list_credentials(&self, kind: Kind, client_id: i64) -> Result<Vec<CredentialInfo>> {
        let rows = self.with_conn(|conn| {
            fetch_client(conn, client_id, "")?;
            conn.query(
                &format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM {} WHERE client_id = ? ORDER BY id",
                    kind.table()
                ),
                &[client_id.into()],
            )
        })?;
        rows.iter()
            .map(|r| credential_info_from_row(kind, r))
            .collect()
    }

    fn revoke_credential(&self, kind: Kind, id: i64, actor: &Actor) -> Result<CredentialInfo> {
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is already revoked",
                set: "is_active = 0, revoked_at = ?",
                value: now_ms().into(),
                reason: "revoked",
                action: "revoke",
                detail: None,
            },
        )
    }

    fn set_credential_expiry(
        &self,
        kind: Kind,
        id: i64,
        expires_at: Option<i64>,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is revoked",
                set: "expires_at = ?",
                value: expires_at.into(),
                reason: "expiry_changed",
                action: "set_expiry",
                detail: Some(expires_at.map_or_else(
                    || "expires_at=never".to_owned(),
                    |e| format!("expires_at={}", crate::model::rfc3339(e)),
                )),
            },
        )
    }

    fn usage_stats(&self, query: &StatsQuery) -> Result<UsageStats> {
        let dialect = self.driver.dialect();
        let days = i64::from(query.days.max(1));
        let today = query.now.div_euclid(DAY_MS);
        let first_day = today - days + 1;
        let since = first_day * DAY_MS;
        let (client_filter, client_param): (&str, Vec<Value>) = match query.client_id {
            Some(id) => (" AND client_id = ?", vec![id.into()]),
            None => ("", vec![]),
        };
        let with_client = |mut params: Vec<Value>| {
            params.extend(client_param.iter().cloned());
            params
        };
        self.with_conn(|conn| {
            if let Some(id) = query.client_id {
                fetch_client(conn, id, "")?;
            }
            let clients = conn.query(
                &format!("SELECT COUNT(*), COALESCE(SUM(is_active), 0) FROM client WHERE 1 = 1{}", client_filter.replace("client_id", "id")),
                &with_client(vec![]),
            )?;
            let mut active = [0i64; 2];
            for (slot, kind) in active.iter_mut().zip(Kind::ALL) {
                let rows = conn.query(
                    &format!(
                        "SELECT COUNT(*) FROM {} WHERE is_active = 1 AND (expires_at IS NULL OR expires_at > ?){client_filter}",
                        kind.table()
                    ),
                    &with_client(vec![query.now.into()]),
                )?;
                *slot = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
            }
            let day = dialect.int_div("created_at", DAY_MS);
            let per_day_rows = conn.query(
                &format!(
                    "SELECT {day} AS day, COUNT(*), COALESCE(SUM(CASE WHEN status = 0 THEN 1 ELSE 0 END), 0) \
                     FROM usage_log WHERE created_at >= ? AND created_at <= ?{client_filter} GROUP BY {day} ORDER BY day"
                ),
                &with_client(vec![since.into(), query.now.into()]),
            )?;
            let mut counted: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
            for row in &per_day_rows {
                counted.insert(row.int(0)?, (row.int(1)?, row.int(2)?));
            }
            let per_day: Vec<DayCount> = (first_day..=today)
                .map(|d| {
                    let (total, valid) = counted.get(&d).copied().unwrap_or((0, 0));
                    DayCount {
                        date: utc_date(d * DAY_MS),
                        total,
                        valid,
                    }
                })
                .collect();
            let mut top = Vec::new();
            for kind in Kind::ALL {
                let rows = conn.query(
                    &format!(
                        "SELECT id, client_id, name, key_prefix, usage_count, last_used_at FROM {} \
                         WHERE usage_count > 0{client_filter} ORDER BY usage_count DESC, id LIMIT ?",
                        kind.table()
                    ),
                    &{
                        let mut p = with_client(vec![]);
                        p.push(i64::from(query.top).into());
                        p
                    },
                )?;
                for row in &rows {
                    top.push(CredentialUsage {
                        kind,
                        id: row.int(0)?,
                        client_id: row.int(1)?,
                        name: row.text(2)?,
                        display_prefix: row.text(3)?,
                        usage_count: row.int(4)?,
                        last_used_at: row.opt_int(5)?,
                    });
                }
            }
            top.sort_by(|a, b| b.usage_count.cmp(&a.usage_count).then(a.kind.cmp(&b.kind)).then(a.id.cmp(&b.id)));
            top.truncate(usize::try_from(query.top).unwrap_or(usize::MAX));
            let client_row = clients.first().ok_or_else(|| Error::internal("COUNT returned no row"))?;
            Ok(UsageStats {
                clients: client_row.int(0)?,
                active_clients: client_row.int(1)?,
                active_api_keys: active[0],
                active_ai_tokens: active[1],
                validations: per_day.iter().map(|d| d.total).sum(),
                valid_validations: per_day.iter().map(|d| d.valid).sum(),
                last_used_at: top.iter().filter_map(|t| t.last_used_at).max(),
                per_day,
                top,
            })
        })
    }

    fn usage_log(&self, query: &UsageQuery) -> Result<(Vec<UsageEntry>, u64)> {
        let mut filter = String::from(" WHERE 1 = 1");
        let mut params: Vec<Value> = Vec::new();
        if let Some(id) = query.client_id {
            filter.push_str(" AND client_id = ?");
            params.push(id.into());
        }
        if let Some(kind) = query.kind {
            filter.push_str(" AND credential_kind = ?");
            params.push(i64::from(kind.code()).into());
        }
        if let Some((kind, id)) = query.credential {
            filter.push_str(" AND credential_kind = ? AND credential_id = ?");
            params.extend([i64::from(kind.code()).into(), id.into()]);
        }
        if let Some(status) = query.status {
            filter.push_str(" AND status = ?");
            params.push(i64::from(status.code()).into());
        }
        if let Some(ip) = &query.ip {
            filter.push_str(" AND ip = ?");
            params.push(ip.as_str().into());
        }
        if let Some(since) = query.since {
            filter.push_str(" AND created_at >= ?");
            params.push(since.into());
        }
        if let Some(until) = query.until {
            filter.push_str(" AND created_at < ?");
            params.push(until.into());
        }
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let (rows, total) = self.with_conn(|conn| {
            let total = conn.query(&format!("SELECT COUNT(*) FROM usage_log{filter}"), &params)?;
            let mut page_params = params.clone();
            page_params.extend([to_i64(query.limit).into(), to_i64(query.offset).into()]);
            let rows = conn.query(
                &format!(
                    "SELECT id, credential_kind, credential_id, client_id, created_at, ip, endpoint, status FROM usage_log{filter} \
                     ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
                ),
                &page_params,
            )?;
            Ok((rows, total.first().map(|r| r.int(0)).transpose()?.unwrap_or(0)))
        })?;
        let entries = rows
            .iter()
            .map(|row| {
                Ok(UsageEntry {
                    id: row.int(0)?,
                    record: UsageRecord {
                        kind: Kind::from_code(row.int(1)?).ok_or_else(|| {
                            Error::internal("unknown credential_kind in usage_log")
                        })?,
                        credential_id: row.opt_int(2)?,
                        client_id: row.opt_int(3)?,
                        at: row.int(4)?,
                        ip: row.opt_text(5)?,
                        endpoint: row.opt_text(6)?,
                        status: Status::from_code(row.int(7)?)
                            .ok_or_else(|| Error::internal("unknown status in usage_log"))?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }

    fn record_audit(
        &self,
        actor: &Actor,
        action: &str,
        target_type: &str,
        target_id: Option<i64>,
        detail: Option<&str>,
    ) -> Result<()> {
        check_text("audit action", action, 64)?;
        check_text("audit target type", target_type, 32)?;
        self.with_conn(|conn| {
            audit(
                conn,
                actor,
                action,
                target_type,
                target_id,
                detail.map(str::to_owned),
            )
        })
    }

    fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                "SELECT id, created_at, actor, source, ip, action, target_type, target_id, detail FROM audit_log ORDER BY id DESC LIMIT ?",
                &[i64::from(limit).into()],
            )
        })?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.int(0)?,
                    at: row.int(1)?,
                    actor: row.text(2)?,
                    source: row.text(3)?,
                    ip: row.opt_text(4)?,
                    action: row.text(5)?,
                    target_type: row.text(6)?,
                    target_id: row.opt_int(7)?,
                    detail: row.opt_text(8)?,
                })
            })
            .collect()
    }
}
