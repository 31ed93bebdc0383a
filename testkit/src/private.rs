//! A MariaDB server of a test's own, in a temporary directory, which the
//! test may stop (as an operator would) and restart on the same data.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A MariaDB server of a test's own, which the test may stop and restart.
#[derive(Debug)]
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
