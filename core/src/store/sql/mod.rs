//! Every query, written once for both back ends, one file per concern:
//! `validation` (the hot path's lookup, the feed, usage writes), `clients`,
//! `credentials`, `lifecycle` (rotation, allowlists, client policies,
//! maintenance), `usage` (writing usage), `rates` (hourly budgets), `reports` (statistics, usage
//! log, audit log), `admins`,
//! `install` (migrations), `heratio` (reading a Heratio database and
//! applying an import to ours).
//!
//! A [`Driver`] hands out connections that run parameterised statements
//! (`?` placeholders work in both SQLite and MySQL); [`SqlStore`] implements
//! the store traits on top of any driver. Dialect differences are confined
//! to [`Dialect`].

use std::fmt;

use super::schema::Dialect;
use super::Backend;
use crate::error::{Error, Result};
use crate::format::{KeyShape, Kind};
use crate::model::{
    now_ms, truncate, Actor, AllowedIps, Client, CredentialInfo, Metadata, Scopes, MAX_IP_LEN,
};

mod admins;
mod audit;
mod clients;
mod credentials;
mod doctor;
mod heratio;
mod install;
mod lifecycle;
mod log_order;
mod prune;
mod rates;
mod reports;
mod usage;
mod validation;

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

    pub(crate) fn bool(&self, i: usize) -> Result<bool> {
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
    /// Runs unparameterised SQL (DDL).
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// Opens a transaction with the dialect's statement.
    fn begin(&mut self, sql: &str) -> Result<()> {
        self.batch(sql)
    }
    /// Ends the open transaction with `COMMIT` or `ROLLBACK`. A driver must
    /// never reuse a connection on which this did not succeed.
    fn end(&mut self, sql: &str) -> Result<()> {
        self.batch(sql)
    }
    /// Appends rows to `table`: `values` holds `columns.len()` values per
    /// row, every row is written or the call fails. An engine with a
    /// cheaper bulk path than multi-row `INSERT`s (MySQL's `LOAD DATA
    /// LOCAL`) overrides this.
    fn append_rows(&mut self, table: &str, columns: &[&str], values: &[Value]) -> Result<()> {
        insert_rows(self, table, columns, values)
    }
}

/// [`Conn::append_rows`] by multi-row `INSERT`s.
pub(crate) fn insert_rows<C: Conn + ?Sized>(
    conn: &mut C,
    table: &str,
    columns: &[&str],
    values: &[Value],
) -> Result<()> {
    let head = format!("INSERT INTO {table} ({})", columns.join(", "));
    for (sql, params) in multi_row_statements(&head, "", columns.len(), values) {
        conn.exec(&sql, &params)?;
    }
    Ok(())
}

/// Rows per multi-row statement: 1000 rows of at most 7 columns stay far
/// below SQLite's 32 766 and MySQL's 65 535 placeholders, however large a
/// batch a host queue hands over.
const ROWS_PER_STATEMENT: usize = 1000;

/// Multi-row statements over `values` (`width` per row),
/// `ROWS_PER_STATEMENT` rows each: `head` ends before `VALUES`, `tail`
/// follows the rows.
pub(super) fn multi_row_statements(
    head: &str,
    tail: &str,
    width: usize,
    values: &[Value],
) -> Vec<(String, Vec<Value>)> {
    if width == 0 {
        return Vec::new();
    }
    let placeholders = format!("({})", vec!["?"; width].join(", "));
    values
        .chunks(width * ROWS_PER_STATEMENT)
        .map(|chunk| {
            let rows = vec![placeholders.as_str(); chunk.len() / width].join(", ");
            (format!("{head} VALUES {rows} {tail}"), chunk.to_vec())
        })
        .collect()
}

/// A source of connections for one database.
pub(crate) trait Driver: Send + Sync + 'static {
    fn dialect(&self) -> Dialect;
    fn backend(&self) -> Backend;
    /// Where it points, password masked.
    fn describe(&self) -> String;
    /// Creates the database if the engine keeps it in a file that does not
    /// exist yet (only `install` calls this).
    fn create_if_missing(&self) -> Result<()> {
        Ok(())
    }
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

/// Columns of a credential row, in [`credential_info_from_row`]'s order.
pub(super) const CREDENTIAL_COLUMNS: &str = "id, client_id, name, key_prefix, scopes, is_active, created_at, expires_at, revoked_at, last_used_at, usage_count, metadata, rate_limit, key_shape, allowed_ips, rotated_from";
/// Columns of a client row, in [`client_from_row`]'s order.
pub(super) const CLIENT_COLUMNS: &str =
    "id, name, email, organization, is_active, created_at, deactivated_at, external_id, idle_revoke_ms";

pub(super) fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
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

pub(super) fn client_from_row(row: &Row) -> Result<Client> {
    Ok(Client {
        id: row.int(0)?,
        name: row.text(1)?,
        email: row.text(2)?,
        organization: row.opt_text(3)?,
        active: row.bool(4)?,
        created_at: row.int(5)?,
        deactivated_at: row.opt_int(6)?,
        external_id: row.opt_text(7)?,
        idle_revoke_ms: row.opt_int(8)?,
    })
}

pub(super) fn metadata_from_stored(stored: Option<String>) -> Result<Option<Metadata>> {
    stored
        .map(|m| {
            Metadata::parse(&m)
                .map_err(|e| Error::internal(format!("stored metadata unreadable: {e}")))
        })
        .transpose()
}

pub(super) fn allowed_from_stored(stored: Option<String>) -> Result<Option<AllowedIps>> {
    stored
        .filter(|s| !s.is_empty())
        .map(|s| {
            AllowedIps::parse(&s)
                .map_err(|e| Error::internal(format!("stored allowlist unreadable: {e}")))
        })
        .transpose()
}

pub(super) fn scopes_from_stored(stored: &str) -> Result<Scopes> {
    Scopes::from_stored(stored)
        .map_err(|e| Error::internal(format!("stored scopes unreadable: {e}")))
}

pub(super) fn credential_info_from_row(kind: Kind, row: &Row) -> Result<CredentialInfo> {
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
        metadata: metadata_from_stored(row.opt_text(11)?)?,
        rate_limit: row.opt_int(12)?,
        key_shape: KeyShape::from_code(row.int(13)?)
            .ok_or_else(|| Error::internal("unknown key_shape"))?,
        allowed_ips: allowed_from_stored(row.opt_text(14)?)?,
        rotated_from: row.opt_int(15)?,
    })
}

pub(super) fn audit(
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
            truncate(actor.name.clone(), 255).into(),
            actor.source.as_str().into(),
            actor.ip.clone().map(|ip| truncate(ip, MAX_IP_LEN)).into(),
            action.into(),
            target_type.into(),
            target_id.into(),
            detail.map(|d| truncate(d, 1024)).into(),
        ],
    )?;
    Ok(())
}

pub(super) fn feed(conn: &mut dyn Conn, kind: Kind, key_hash: &str, reason: &str) -> Result<()> {
    conn.exec(
        "INSERT INTO change_feed (credential_kind, key_hash, reason, created_at) VALUES (?, ?, ?, ?)",
        &[i64::from(kind.code()).into(), key_hash.into(), reason.into(), now_ms().into()],
    )?;
    Ok(())
}

/// Appends the change-feed row of one stored credential.
pub(super) fn feed_credential(
    conn: &mut dyn Conn,
    kind: Kind,
    id: i64,
    reason: &str,
) -> Result<()> {
    let hash = conn.query(
        &format!("SELECT key_hash FROM {} WHERE id = ?", kind.table()),
        &[id.into()],
    )?;
    for row in &hash {
        feed(conn, kind, &row.text(0)?, reason)?;
    }
    Ok(())
}

/// `lock` is `""` or the dialect's `FOR UPDATE`, taken inside transactions
/// that decide on what they read (deactivation racing a key generation).
pub(super) fn fetch_client(conn: &mut dyn Conn, id: i64, lock: &str) -> Result<Client> {
    let rows = conn.query(
        &format!("SELECT {CLIENT_COLUMNS} FROM client WHERE id = ?{lock}"),
        &[id.into()],
    )?;
    rows.first()
        .map(client_from_row)
        .transpose()?
        .ok_or_else(|| Error::not_found(format!("no client with id {id}")))
}

pub(super) fn fetch_credential(
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

impl<D: Driver> SqlStore<D> {
    pub(crate) fn new(driver: D) -> Self {
        SqlStore { driver }
    }

    pub(super) fn with_conn<T>(&self, mut f: impl FnMut(&mut dyn Conn) -> Result<T>) -> Result<T> {
        self.driver.with_conn(&mut f)
    }

    /// Runs `f` in one write transaction: committed if it returns `Ok`,
    /// rolled back otherwise.
    pub(super) fn transaction<T>(
        &self,
        mut f: impl FnMut(&mut dyn Conn) -> Result<T>,
    ) -> Result<T> {
        let begin = self.driver.dialect().begin();
        self.with_conn(|conn| {
            conn.begin(begin)?;
            match f(conn) {
                Ok(value) => {
                    conn.end("COMMIT")?;
                    Ok(value)
                }
                Err(err) => {
                    // The original error matters more than a failed rollback;
                    // the driver discards a connection left in a transaction.
                    let _ = conn.end("ROLLBACK");
                    Err(err)
                }
            }
        })
    }
}
