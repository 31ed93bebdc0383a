//! Test databases: a fresh SQLite file, or a fresh database on the test
//! MariaDB named by `HERATIO_KEYS_TEST_MYSQL_DSN` (started by
//! `scripts/test.sh`), or a private MariaDB server a test may stop and start.
#![allow(dead_code)]

pub use heratio_keys_testkit::{
    mysql_base, mysql_dump, mysql_exec, try_mysql_exec, unique_database_name, with_database,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heratio_keys_core::{store, Actor, KeyStore, Source};

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    pub dsn: String,
    pub store: Arc<dyn KeyStore>,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir, PathBuf),
    Mysql { admin_url: String, name: String },
}

pub fn actor() -> Actor {
    Actor::new("test-suite", Source::Library)
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys.db");
        let dsn = format!("sqlite:{}", path.display());
        let store = store::open(&store::Dsn::parse(&dsn).expect("dsn")).expect("open sqlite");
        store.install().expect("install");
        TestDb {
            dsn,
            store,
            cleanup: Cleanup::Sqlite(dir, path),
        }
    }

    /// A fresh database on the test MariaDB; `None` (with a note) when no
    /// server is configured, unless `HERATIO_KEYS_REQUIRE_MYSQL=1`, when a
    /// missing server fails the test.
    pub fn mysql() -> Option<TestDb> {
        Some(Self::mysql_at(&mysql_base()?))
    }

    pub fn mysql_at(base: &str) -> TestDb {
        let name = unique_database_name("core");
        mysql_exec(base, &format!("CREATE DATABASE {name}"));
        let dsn = with_database(base, &name);
        let store = store::open(&store::Dsn::parse(&dsn).expect("dsn")).expect("open mysql");
        store.install().expect("install");
        TestDb {
            dsn,
            store,
            cleanup: Cleanup::Mysql {
                admin_url: base.to_owned(),
                name,
            },
        }
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => Some(path),
            Cleanup::Mysql { .. } => None,
        }
    }

    /// Every value stored anywhere in the database, as text (SQLite: the raw
    /// bytes of the database and WAL files).
    pub fn everything_stored(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(_, path) => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
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
                }
                all
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Mysql { admin_url, name } = &self.cleanup {
            // Never panic in a destructor: a test that already failed (or
            // stopped its server) would abort the whole test binary.
            let _ = try_mysql_exec(admin_url, &format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}

/// A MariaDB server of a test's own, which the test may stop and restart.
pub struct PrivateMariaDb {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl PrivateMariaDb {
    /// `None` when MariaDB is not installed (and not required).
    pub fn start() -> Option<PrivateMariaDb> {
        if Command::new("mariadbd").arg("--version").output().is_err() {
            assert!(
                std::env::var("HERATIO_KEYS_REQUIRE_MYSQL").as_deref() != Ok("1"),
                "HERATIO_KEYS_REQUIRE_MYSQL=1 but mariadbd is not installed"
            );
            eprintln!("SKIPPED: mariadbd not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db");
        assert!(status.success(), "mariadb-install-db failed");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("addr").port()
        };
        let mut db = PrivateMariaDb {
            dir,
            port,
            child: None,
        };
        db.resume();
        let status = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", db.socket().display()))
            .arg("-e")
            .arg(
                "CREATE DATABASE heratio_keys; CREATE USER 'hk'@'127.0.0.1' IDENTIFIED BY 'pw'; \
                 GRANT ALL ON heratio_keys.* TO 'hk'@'127.0.0.1'; GRANT ALL ON `hk\\_test\\_%`.* TO 'hk'@'127.0.0.1';",
            )
            .status()
            .expect("mariadb client");
        assert!(status.success(), "creating the test user failed");
        Some(db)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    pub fn dsn(&self) -> String {
        format!("mysql://hk:pw@127.0.0.1:{}/heratio_keys", self.port)
    }

    /// Starts (or restarts) the server on the same data and port.
    pub fn resume(&mut self) {
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-log-bin",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
            ])
            .arg(format!(
                "--datadir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg("--innodb-buffer-pool-size=64M")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mariadbd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGTERM, as an operator would) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id()).expect("pid");
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` until it returns true or `limit` passes; returns the time taken.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
