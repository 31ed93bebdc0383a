//! Creating and migrating the schema.

use super::{Conn, Driver, SqlStore};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{now_ms, InstallReport};
use crate::store::schema::{Dialect, Step, SCHEMA_VERSION};
use crate::store::KeyStore;

pub(super) fn read_version(conn: &mut dyn Conn) -> Result<Option<u32>> {
    let rows = conn.query("SELECT MAX(version) FROM schema_version", &[])?;
    rows.first()
        .map(|r| r.opt_int(0))
        .transpose()
        .map(|v| v.flatten().and_then(|v| u32::try_from(v).ok()))
}

/// Runs one migration step, skipping a column or index that exists.
fn apply(conn: &mut dyn Conn, dialect: Dialect, step: &Step) -> Result<()> {
    let exists = |conn: &mut dyn Conn, query: &str, table: &str, name: &str| -> Result<bool> {
        Ok(conn
            .query(query, &[table.into(), name.into()])?
            .first()
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0)
            > 0)
    };
    match step {
        Step::Sql(statement) => conn.batch(statement),
        Step::AddColumn {
            table,
            column,
            definition,
        } => {
            if exists(conn, dialect.column_exists_query(), table, column)? {
                return Ok(());
            }
            conn.batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))
        }
        Step::AddIndex {
            table,
            name,
            definition,
        } => {
            if exists(conn, dialect.index_exists_query(), table, name)? {
                return Ok(());
            }
            conn.batch(&format!("CREATE {definition}"))
        }
        Step::DropIndex { table, name } => {
            if !exists(conn, dialect.index_exists_query(), table, name)? {
                return Ok(());
            }
            conn.batch(&match dialect {
                Dialect::Sqlite => format!("DROP INDEX {name}"),
                Dialect::Mysql => format!("DROP INDEX {name} ON {table}"),
            })
        }
    }
}

impl<D: Driver> KeyStore for SqlStore<D> {
    fn install(&self) -> Result<InstallReport> {
        let dialect = self.driver.dialect();
        self.driver.create_if_missing()?;
        self.with_conn(|conn| {
            conn.batch(dialect.version_table())?;
            let from = read_version(conn)?;
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
                for step in &statements {
                    apply(conn, dialect, step)?;
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

    fn read_heratio_source(&self) -> Result<crate::import::HeratioSource> {
        self.heratio_source()
    }

    fn apply_heratio_import(
        &self,
        plan: &crate::import::ImportPlan,
        dry_run: bool,
        actor: &crate::model::Actor,
    ) -> Result<crate::import::ImportReport> {
        self.heratio_import(plan, dry_run, actor)
    }
}
