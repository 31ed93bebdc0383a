//! MySQL / MariaDB back end through mysql_async (pure-Rust feature set).
//!
//! The store API is blocking, so the driver owns a one-worker tokio runtime
//! that drives the connection pool's sockets; callers block on it. The
//! runtime and pool are created when the store is opened, which the
//! validator does lazily inside each process (never before a fork).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Params, Pool, PoolConstraints, PoolOpts};
use tokio::runtime::Runtime;

use super::schema::Dialect;
use super::sql::{insert_rows, Conn, Driver, Exec, Row, Value};
use super::{redact, Backend};
use crate::error::{Error, ErrorKind, Result};

/// Upper bound on any one round trip, connection set-up included: a server
/// that hangs must turn into `unavailable`, not a stuck PHP worker.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long discarding a connection may take before it is simply dropped.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection pool and the runtime that drives its sockets; `None`
/// only while the driver is being dropped.
struct Io {
    pool: Pool,
    runtime: Runtime,
}

/// Runs `f` on a thread where blocking on our runtime is allowed.
///
/// Blocking on a runtime from inside another runtime's worker thread makes
/// tokio panic, and a caller (a web server, say) may well be running one.
/// Outside any runtime — the C and PHP hot paths — `f` runs inline; inside
/// one it runs on a short-lived scoped thread.
fn outside_async<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

pub(crate) struct MysqlDriver {
    io: Option<Io>,
    /// Whether rows may be appended with `LOAD DATA LOCAL INFILE`: cleared
    /// for good the first time the server refuses it (MySQL 8's default,
    /// `local_infile = OFF`).
    bulk_load: AtomicBool,
    /// `host:port`, for error messages.
    address: String,
    /// The DSN with the password masked.
    described: String,
}

impl MysqlDriver {
    pub(crate) fn open(url: &str, connections: &super::Connections) -> Result<Self> {
        let opts = super::dsn::validate_url(url)?;
        let address = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
        let constraints = PoolConstraints::new(0, connections.max.max(1))
            .ok_or_else(|| Error::internal("invalid MySQL pool constraints"))?;
        let builder = OptsBuilder::from_opts(opts)
            // Keep the DSN's TCP address even for a local server: the socket
            // path mysql_async would discover is not ours to rely on.
            .prefer_socket(false)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_inactive_connection_ttl(connections.idle)
                    // Idle connections are looked for this often: at least
                    // as often as they may idle, so the budget holds.
                    .with_ttl_check_interval(
                        connections
                            .idle
                            .clamp(Duration::from_secs(1), Duration::from_secs(30)),
                    )
                    // Resetting on every return to the pool costs a round
                    // trip and discards the server-side prepared statements,
                    // tripling the cost of a cache miss. Session state never
                    // leaks: every transaction ends in COMMIT or ROLLBACK.
                    .with_reset_connection(false),
            );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("heratio-keys-mysql")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the MySQL I/O thread: {e}")))?;
        let pool = {
            let _entered = runtime.enter();
            Pool::new(builder)
        };
        Ok(MysqlDriver {
            io: Some(Io { pool, runtime }),
            bulk_load: AtomicBool::new(true),
            described: redact(url),
            address,
        })
    }

    fn io(&self) -> Result<&Io> {
        self.io
            .as_ref()
            .ok_or_else(|| Error::internal("MySQL driver used while being dropped"))
    }

    fn block<T: Send>(
        &self,
        fut: impl std::future::Future<Output = Result<T, mysql_async::Error>> + Send,
    ) -> Result<T> {
        let io = self.io()?;
        outside_async(|| {
            io.runtime.block_on(async {
                match tokio::time::timeout(OPERATION_TIMEOUT, fut).await {
                    Ok(result) => result.map_err(|e| self.error(&e)),
                    Err(_) => Err(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "MySQL at {} did not answer within {:?}",
                            self.address, OPERATION_TIMEOUT
                        ),
                    )),
                }
            })
        })
    }

    fn error(&self, err: &mysql_async::Error) -> Error {
        let address = &self.address;
        match err {
            mysql_async::Error::Server(server) => {
                let kind = match server.code {
                    // ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR
                    1146 | 1054 => ErrorKind::SchemaOutdated,
                    // access denied, unknown database, too many connections,
                    // server shutting down, lock wait timeout, deadlock
                    1044 | 1045 | 1049 | 1040 | 1053 | 1205 | 1213 => ErrorKind::Unavailable,
                    _ => ErrorKind::Store,
                };
                let hint = match server.code {
                    1146 | 1054 => " (run `keygen install`)",
                    // table / column command denied
                    1142 | 1143 => {
                        " (the database user lacks a privilege: see the grants in docs/install.md)"
                    }
                    _ => "",
                };
                Error::new(
                    kind,
                    format!(
                        "MySQL at {address}: error {}: {}{hint}",
                        server.code, server.message
                    ),
                )
            }
            mysql_async::Error::Io(e) => Error::new(
                ErrorKind::Unavailable,
                format!("cannot reach MySQL at {address}: {e}"),
            ),
            mysql_async::Error::Driver(e) => {
                Error::new(ErrorKind::Unavailable, format!("MySQL at {address}: {e}"))
            }
            mysql_async::Error::Url(e) => Error::new(
                ErrorKind::InvalidDsn,
                format!("invalid MySQL DSN {}: {e}", self.described),
            ),
            other => Error::new(
                ErrorKind::Store,
                format!("MySQL at {address}: {}", redact(&other.to_string())),
            ),
        }
    }
}

fn to_mysql(value: &Value) -> mysql_async::Value {
    match value {
        Value::Null => mysql_async::Value::NULL,
        Value::Int(v) => mysql_async::Value::Int(*v),
        Value::Text(t) => mysql_async::Value::Bytes(t.as_bytes().to_vec()),
    }
}

/// Statements with more parameters than this are sent as text with their
/// values inlined (see [`inline`]) instead of being prepared.
const INLINE_ABOVE: usize = 64;

/// `sql` with each `?` outside quotes replaced by its value as a literal:
/// integers in decimal, text as `_utf8mb4 X'…'` (hex: no escaping, so no
/// value can end the literal, whatever the server's `sql_mode`). `None`
/// when the placeholders and values do not pair up.
///
/// Why: the usage writer's multi-row statements change shape with every
/// batch (their row count), so a prepared statement is never reused: each
/// batch paid a prepare round trip whose answer carries one definition
/// packet per parameter (7 000 for 1 000 rows), parsed by us and built by
/// the server. Measured with callgrind on an FPM worker leading its host,
/// that was ~39 000 instructions per recorded validation, most of the
/// usage log's cost; the text protocol sends the same rows in one trip.
fn inline(sql: &str, values: &[Value]) -> Option<String> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(sql.len() + values.len() * 24);
    let mut values = values.iter();
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => match values.next()? {
                Value::Null => out.push_str("NULL"),
                Value::Int(v) => {
                    let _ = write!(out, "{v}");
                }
                Value::Text(t) => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("_utf8mb4 X'");
                    // By table, not `write!`: formatting each byte cost
                    // ~100 instructions, most of a row's encoding.
                    for &b in t.as_bytes() {
                        out.push(char::from(HEX[usize::from(b >> 4)]));
                        out.push(char::from(HEX[usize::from(b & 15)]));
                    }
                    out.push('\'');
                }
            },
            c => out.push(c),
        }
    }
    values.next().is_none().then_some(out)
}

fn params(values: &[Value]) -> Params {
    if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(values.iter().map(to_mysql).collect())
    }
}

fn from_mysql(value: mysql_async::Value) -> Value {
    match value {
        mysql_async::Value::NULL => Value::Null,
        mysql_async::Value::Int(v) => Value::Int(v),
        mysql_async::Value::UInt(v) => Value::Int(i64::try_from(v).unwrap_or(i64::MAX)),
        mysql_async::Value::Bytes(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
        #[allow(clippy::cast_possible_truncation)]
        mysql_async::Value::Float(v) => Value::Int(v as i64),
        #[allow(clippy::cast_possible_truncation)]
        mysql_async::Value::Double(v) => Value::Int(v as i64),
        other => Value::Text(format!("{other:?}")),
    }
}

struct MysqlConn<'a> {
    conn: mysql_async::Conn,
    driver: &'a MysqlDriver,
    /// Statements that reached the server; a failure before the first one
    /// means the pooled connection was stale and the work can be retried.
    completed: usize,
    /// A transaction was opened and has not been ended successfully.
    in_transaction: bool,
    /// A statement failed without the server answering (timeout, I/O): the
    /// protocol state is unknown.
    broken: bool,
}

impl MysqlConn<'_> {
    /// Whether the connection may go back to the pool. One left inside a
    /// transaction would keep its locks and its old snapshot, and a later
    /// lookup on it could read (and cache) a revoked key as valid; reset on
    /// return is off, so nothing else would end that transaction.
    fn reusable(&self) -> bool {
        !self.in_transaction && !self.broken
    }

    fn note<T>(&mut self, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => self.completed += 1,
            Err(e) if e.kind() == ErrorKind::Unavailable => self.broken = true,
            Err(_) => {}
        }
        result
    }
}

impl Conn for MysqlConn<'_> {
    fn exec(&mut self, sql: &str, values: &[Value]) -> Result<Exec> {
        let conn = &mut self.conn;
        let text = (values.len() > INLINE_ABOVE)
            .then(|| inline(sql, values))
            .flatten();
        let result = self.driver.block(async move {
            match text {
                Some(text) => conn.query_drop(text).await?,
                None => conn.exec_drop(sql, params(values)).await?,
            }
            Ok(Exec {
                affected: conn.affected_rows(),
                last_id: conn
                    .last_insert_id()
                    .map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX)),
            })
        });
        self.note(result)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let conn = &mut self.conn;
        let result: Result<Vec<mysql_async::Row>> = self
            .driver
            .block(async move { conn.exec(sql, params(values)).await });
        let rows = self.note(result)?;
        Ok(rows
            .into_iter()
            .map(|row| Row(row.unwrap().into_iter().map(from_mysql).collect()))
            .collect())
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        let conn = &mut self.conn;
        let result = self.driver.block(async move { conn.query_drop(sql).await });
        self.note(result)
    }

    fn begin(&mut self, sql: &str) -> Result<()> {
        self.in_transaction = true;
        self.batch(sql)
    }

    fn end(&mut self, sql: &str) -> Result<()> {
        self.batch(sql)?;
        self.in_transaction = false;
        Ok(())
    }

    /// `LOAD DATA LOCAL INFILE` from memory where the server allows it:
    /// MariaDB parses tab-separated rows for ~1.4 µs less CPU per usage row
    /// than the same rows as one multi-row `INSERT` (docs/BENCHMARKS.md).
    /// The data comes from this call only: the handler is set on the
    /// connection for this statement and ignores the file name the server
    /// asks for, so no server can read a file of ours through it.
    fn append_rows(&mut self, table: &str, columns: &[&str], values: &[Value]) -> Result<()> {
        let width = columns.len();
        if values.is_empty() || width == 0 || !self.driver.bulk_load.load(Ordering::Relaxed) {
            return insert_rows(self, table, columns, values);
        }
        let rows = (values.len() / width) as u64;
        let data = bytes::Bytes::from(tab_separated(width, values));
        // Hex literals: what `\\` means inside quotes depends on the
        // session's sql_mode (NO_BACKSLASH_ESCAPES).
        let sql = format!(
            "LOAD DATA LOCAL INFILE 'rows' INTO TABLE {table} CHARACTER SET utf8mb4 \
             FIELDS TERMINATED BY X'09' ESCAPED BY X'5c' LINES TERMINATED BY X'0a' ({})",
            columns.join(", ")
        );
        let conn = &mut self.conn;
        let result = self.driver.block(async move {
            use futures_util::StreamExt as _;
            conn.set_infile_handler(
                async move { Ok(futures_util::stream::iter([Ok(data)]).boxed()) },
            );
            match conn.query_drop(sql).await {
                Ok(()) => Ok(Some(conn.affected_rows())),
                Err(mysql_async::Error::Server(e)) if LOAD_REFUSED.contains(&e.code) => Ok(None),
                Err(e) => Err(e),
            }
        });
        match self.note(result)? {
            Some(loaded) if loaded == rows => Ok(()),
            // A row the server skipped (LOCAL turns row errors into
            // warnings): fail, so the transaction rolls back and the batch
            // is written again, whole, by INSERTs, which report the error.
            Some(loaded) => {
                self.driver.bulk_load.store(false, Ordering::Relaxed);
                Err(Error::new(
                    ErrorKind::Store,
                    format!("MySQL loaded {loaded} of {rows} rows into {table}"),
                ))
            }
            None => {
                self.driver.bulk_load.store(false, Ordering::Relaxed);
                insert_rows(self, table, columns, values)
            }
        }
    }
}

/// Server errors that mean `LOAD DATA LOCAL` is not allowed here, not that
/// the rows are wrong: ER_NOT_ALLOWED_COMMAND (MySQL 5.7, older MariaDB),
/// ER_CLIENT_LOCAL_FILES_DISABLED (MySQL 8) and
/// ER_LOAD_INFILE_CAPABILITY_DISABLED (MariaDB 10.5 and later).
const LOAD_REFUSED: [u16; 3] = [1148, 3948, 4166];

/// `values` (`width` per row) as `LOAD DATA` reads them with the
/// statement's options: fields split by tabs, rows by newlines, `\N` for
/// NULL, and in text the backslash, tab, newline, carriage return and NUL
/// escaped with a backslash (so no text can end a field or a row early).
fn tab_separated(width: usize, values: &[Value]) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(values.len() * 12);
    for row in values.chunks(width) {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            match value {
                Value::Null => out.extend_from_slice(b"\\N"),
                Value::Int(v) => {
                    let _ = write!(out, "{v}");
                }
                Value::Text(t) => {
                    for &b in t.as_bytes() {
                        match b {
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            b'\t' => out.extend_from_slice(b"\\t"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            0 => out.extend_from_slice(b"\\0"),
                            b => out.push(b),
                        }
                    }
                }
            }
        }
        out.push(b'\n');
    }
    out
}

impl Driver for MysqlDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn backend(&self) -> Backend {
        Backend::Mysql
    }

    fn describe(&self) -> String {
        self.described.clone()
    }

    fn with_conn<T>(&self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<T>) -> Result<T> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let io = self.io()?;
            let conn = self.block(io.pool.get_conn())?;
            let mut conn = MysqlConn {
                conn,
                driver: self,
                completed: 0,
                in_transaction: false,
                broken: false,
            };
            let result = f(&mut conn);
            let reusable = conn.reusable();
            let MysqlConn {
                conn, completed, ..
            } = conn;
            let retry = matches!(&result, Err(e) if e.kind() == ErrorKind::Unavailable)
                && completed == 0
                && attempts == 1;
            if reusable && !retry {
                // Returning a connection to the pool needs the runtime.
                outside_async(|| io.runtime.block_on(async move { drop(conn) }));
            } else {
                // COM_QUIT makes the server roll back whatever is open; a
                // connection marked disconnected is never pooled again,
                // even if the quit itself times out.
                let _ = outside_async(|| {
                    io.runtime.block_on(async {
                        tokio::time::timeout(DISCARD_TIMEOUT, conn.disconnect()).await
                    })
                });
            }
            // After a server restart the pool may hand out a connection
            // whose socket is dead; nothing reached the server, so one
            // retry on a fresh connection is safe.
            if !retry {
                return result;
            }
        }
    }
}

impl Drop for MysqlDriver {
    fn drop(&mut self) {
        let Some(Io { pool, runtime }) = self.io.take() else {
            return;
        };
        // Close idle connections politely, giving up quickly if the server
        // is gone; the runtime itself must also be dropped where blocking is
        // allowed.
        outside_async(move || {
            let _ = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), pool.disconnect()).await
            });
            drop(runtime);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{inline, tab_separated, Value};

    #[test]
    fn tab_separated_rows_escape_what_would_split_them() {
        let values = [
            Value::Int(-3),
            Value::Null,
            Value::Text("a\tb\nc\rd\\e\0f".into()),
            Value::Int(7),
            Value::Text("\\N".into()),
            Value::Text("é".into()),
        ];
        assert_eq!(
            tab_separated(3, &values),
            b"-3\t\\N\ta\\tb\\nc\\rd\\\\e\\0f\n7\t\\\\N\t\xc3\xa9\n"
        );
    }

    #[test]
    fn inlined_values_are_literals_that_cannot_break_out() {
        let sql = "INSERT INTO t (a, b, c) VALUES (?, ?, ?), (?, 'x?y', ?)";
        let values = [
            Value::Int(-7),
            Value::Null,
            Value::Text("it's \\ é".into()),
            Value::Int(1),
            Value::Text(String::new()),
        ];
        assert_eq!(
            inline(sql, &values).as_deref(),
            Some(
                "INSERT INTO t (a, b, c) VALUES (-7, NULL, _utf8mb4 X'69742773205c20c3a9'), \
                 (1, 'x?y', _utf8mb4 X'')"
            )
        );
        assert_eq!(inline(sql, &values[..4]), None, "too few values");
        assert_eq!(inline("SELECT ?", &values[..2]), None, "too many values");
    }
}
