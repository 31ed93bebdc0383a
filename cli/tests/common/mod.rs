//! Helpers for driving the real `keygen` binary against a fresh SQLite file
//! or a fresh database on the test MariaDB (`HERATIO_KEYS_TEST_MYSQL_DSN`).
#![allow(dead_code)]

pub use heratio_keys_testkit::{
    mysql_base, mysql_dump, mysql_exec, try_mysql_exec, unique_database_name, with_database,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use heratio_keys_core::{store, KeyStore};
use serde_json::Value;

/// What one run of keygen produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output otherwise.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the error output is exactly one line (no panic, no backtrace).
    #[track_caller]
    pub fn one_error_line(&self) -> &str {
        let line = self.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "stderr: {}", self.stderr);
        assert!(line.starts_with("error: "), "stderr: {}", self.stderr);
        assert!(
            !line.contains("panicked") && !line.contains("RUST_BACKTRACE"),
            "stderr: {line}"
        );
        line
    }
}

/// Runs keygen with `args`, optional stdin, extra environment; the caller's
/// `HERATIO_KEYS_DSN` is removed unless given in `env`.
pub fn keygen_in(
    dir: Option<&Path>,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keygen"));
    cmd.args(args)
        .env_remove("HERATIO_KEYS_DSN")
        .env_remove("RUST_BACKTRACE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().expect("run keygen");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for keygen");
    Run {
        code: out.status.code().expect("keygen exited by signal"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// A database that exists for one test: created empty (no schema: the test
/// runs `keygen install`), removed afterwards.
pub struct TestDb {
    pub dsn: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(tempfile::TempDir, PathBuf),
    Mysql { admin_url: String, name: String },
}

impl TestDb {
    /// A path in a fresh temporary directory; the file does not exist yet.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.db");
        TestDb {
            dsn: format!("sqlite:{}", path.display()),
            cleanup: Cleanup::Sqlite(dir, path),
        }
    }

    /// A fresh, empty database on the test MariaDB, or `None` (skipped).
    pub fn mysql() -> Option<TestDb> {
        let base = mysql_base()?;
        let name = unique_database_name("cli");
        mysql_exec(&base, &format!("CREATE DATABASE {name}"));
        Some(TestDb {
            dsn: with_database(&base, &name),
            cleanup: Cleanup::Mysql {
                admin_url: base,
                name,
            },
        })
    }

    pub fn is_mysql(&self) -> bool {
        matches!(self.cleanup, Cleanup::Mysql { .. })
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => Some(path),
            Cleanup::Mysql { .. } => None,
        }
    }

    /// keygen with `--dsn` pointing here.
    pub fn keygen(&self, args: &[&str]) -> Run {
        self.keygen_stdin(args, None)
    }

    /// keygen with `--dsn` pointing here and `stdin` as standard input.
    pub fn keygen_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut all = vec!["--dsn", &self.dsn];
        all.extend_from_slice(args);
        keygen_in(None, &all, stdin, &[])
    }

    /// keygen with `--json`, expecting `code`, stdout parsed.
    #[track_caller]
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.keygen(&all).expect_code(code).json()
    }

    /// The library's view of the same database, for reading back usage and
    /// audit rows.
    pub fn store(&self) -> Arc<dyn KeyStore> {
        store::open(&store::Dsn::parse(&self.dsn).expect("dsn")).expect("open store")
    }

    /// Every value stored anywhere in the database, as text (SQLite: the raw
    /// bytes of the database, WAL and shared-memory files).
    pub fn everything_stored(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    if let Ok(bytes) = std::fs::read(&p) {
                        all.extend(bytes);
                    }
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            Cleanup::Mysql { .. } => {
                let mut all = String::new();
                for table in [
                    "client",
                    "api_key",
                    "ai_token",
                    "usage_log",
                    "change_feed",
                    "audit_log",
                    "schema_version",
                ] {
                    all.push_str(&mysql_dump(&self.dsn, table).join("\n"));
                    all.push('\n');
                }
                all
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Mysql { admin_url, name } = &self.cleanup {
            // Never panic in a destructor: it would abort the test binary.
            let _ = try_mysql_exec(admin_url, &format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}

/// A TCP port on 127.0.0.1 with nothing listening.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
