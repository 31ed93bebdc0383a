//! The store's self-description for `keygen doctor` ([`DiagnosticStore`]):
//! schema version, change feed, usage log ends and, on MySQL/MariaDB, the
//! server's clock, connection limits and the account's privileges.

use super::{Conn, Driver, Row, SqlStore};
use crate::error::{Error, Result};
use crate::model::now_ms;
use crate::store::diagnostics::{
    ClockReading, ConnectionFacts, DiagnosticStore, FeedFacts, GrantLevel, Privilege, ServerFacts,
    StoreFacts, UsageFacts,
};
use crate::store::{Backend, ValidationStore};

fn first(rows: &[Row]) -> Result<&Row> {
    rows.first()
        .ok_or_else(|| Error::internal("the query returned no row"))
}

fn count(row: &Row, i: usize) -> Result<u64> {
    Ok(u64::try_from(row.opt_int(i)?.unwrap_or(0)).unwrap_or(0))
}

impl<D: Driver> SqlStore<D> {
    fn one<T>(&self, sql: &str, read: impl Fn(&Row) -> Result<T>) -> Result<T> {
        let rows = self.with_conn(|conn| conn.query(sql, &[]))?;
        read(first(&rows)?)
    }

    fn feed_facts(&self) -> Result<FeedFacts> {
        self.one(
            "SELECT MAX(id), COUNT(*), MIN(created_at), MAX(created_at) FROM change_feed",
            |r| {
                Ok(FeedFacts {
                    head: r.opt_int(0)?.unwrap_or(0),
                    rows: count(r, 1)?,
                    oldest_at: r.opt_int(2)?,
                    newest_at: r.opt_int(3)?,
                })
            },
        )
    }

    fn usage_facts(&self) -> Result<UsageFacts> {
        // By id, through the primary key: no scan of a big log.
        let end = |order: &str| {
            let rows = self.with_conn(|conn| {
                conn.query(
                    &format!("SELECT created_at FROM usage_log ORDER BY id {order} LIMIT 1"),
                    &[],
                )
            })?;
            rows.first().map(|r| r.int(0)).transpose()
        };
        Ok(UsageFacts {
            oldest_at: end("ASC")?,
            newest_at: end("DESC")?,
        })
    }

    fn server_facts(&self) -> ServerFacts {
        ServerFacts {
            version: self.one("SELECT VERSION()", |r| r.text(0)),
            account: self.one("SELECT CURRENT_USER()", |r| r.text(0)),
            clock: self.clock(),
            connections: self.connections(),
            privileges: self.with_conn(privileges),
        }
    }

    fn clock(&self) -> Result<ClockReading> {
        self.with_conn(|conn| {
            // A first round trip so that the timed one does not include
            // making the connection.
            conn.query("SELECT 1", &[])?;
            let sent = now_ms();
            let rows = conn.query("SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)", &[])?;
            let received = now_ms();
            Ok(ClockReading {
                sent,
                server: first(&rows)?.int(0)?,
                received,
            })
        })
    }

    fn connections(&self) -> Result<ConnectionFacts> {
        let (max_connections, max_user_connections) = self
            .one("SELECT @@max_connections, @@max_user_connections", |r| {
                Ok((count(r, 0)?, count(r, 1)?))
            })?;
        let status = self.with_conn(|conn| {
            conn.query(
                "SELECT UPPER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME IN ('THREADS_CONNECTED', 'MAX_USED_CONNECTIONS', \
                 'Threads_connected', 'Max_used_connections')",
                &[],
            )
        });
        // MySQL 8 moved global status to performance_schema, which an
        // ordinary account may not read: the limits are what matter.
        let (mut connected, mut max_used) = (0, 0);
        for row in status.unwrap_or_default() {
            match row.text(0)?.as_str() {
                "THREADS_CONNECTED" => connected = count(&row, 1)?,
                "MAX_USED_CONNECTIONS" => max_used = count(&row, 1)?,
                _ => {}
            }
        }
        Ok(ConnectionFacts {
            max_connections,
            max_user_connections,
            connected,
            max_used,
        })
    }
}

/// The account's privileges that reach this database. `information_schema`
/// shows an ordinary account its own grants; an administrator sees
/// everyone's, hence the filter on the grantee.
fn privileges(conn: &mut dyn Conn) -> Result<Vec<Privilege>> {
    let me = first(&conn.query("SELECT CURRENT_USER()", &[])?)?.text(0)?;
    let (user, host) = me.rsplit_once('@').unwrap_or((me.as_str(), ""));
    let grantee = format!("'{user}'@'{host}'");
    let mut out = Vec::new();
    let mut read = |sql: &str, level: &dyn Fn(&Row) -> Result<GrantLevel>| -> Result<()> {
        for row in conn.query(sql, &[grantee.as_str().into()])? {
            out.push(Privilege {
                name: row.text(0)?,
                grantable: row.text(1)?.eq_ignore_ascii_case("YES"),
                level: level(&row)?,
            });
        }
        Ok(())
    };
    read(
        "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES \
         WHERE GRANTEE = ?",
        &|_| Ok(GrantLevel::Global),
    )?;
    // A database grant names a pattern (`_` and `%` are wildcards, `\`
    // escapes them), exactly LIKE's rules.
    read(
        "SELECT PRIVILEGE_TYPE, IS_GRANTABLE, TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES \
         WHERE GRANTEE = ? AND DATABASE() LIKE TABLE_SCHEMA",
        &|r| Ok(GrantLevel::Database(r.text(2)?)),
    )?;
    read(
        "SELECT PRIVILEGE_TYPE, IS_GRANTABLE, TABLE_NAME FROM information_schema.TABLE_PRIVILEGES \
         WHERE GRANTEE = ? AND TABLE_SCHEMA = DATABASE()",
        &|r| Ok(GrantLevel::Table(r.text(2)?)),
    )?;
    read(
        "SELECT PRIVILEGE_TYPE, IS_GRANTABLE, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMN_PRIVILEGES \
         WHERE GRANTEE = ? AND TABLE_SCHEMA = DATABASE()",
        &|r| {
            Ok(GrantLevel::Column {
                table: r.text(2)?,
                column: r.text(3)?,
            })
        },
    )?;
    out.sort();
    Ok(out)
}

impl<D: Driver> DiagnosticStore for SqlStore<D> {
    fn facts(&self) -> Result<StoreFacts> {
        self.with_conn(|conn| conn.query("SELECT 1", &[]))?;
        Ok(StoreFacts {
            backend: self.driver.backend(),
            schema_version: self.schema_version(),
            feed: self.feed_facts(),
            usage: self.usage_facts(),
            server: match self.driver.backend() {
                Backend::Mysql => Some(self.server_facts()),
                _ => None,
            },
        })
    }
}
