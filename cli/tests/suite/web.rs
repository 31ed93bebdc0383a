//! `keygen admin:create` and `keygen serve` as commands (the server itself
//! is tested in the web crate).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{closed_port, Keygen, TestDb};

#[test]
fn admin_create_reads_the_password_from_stdin() {
    let db = TestDb::sqlite_empty();
    db.keygen(&["install"]).expect_code(0);
    let r = db.keygen_stdin(&["admin:create", "alice"], Some("short\n"));
    assert!(r.expect_code(2).one_error_line().contains("at least 12"));
    db.keygen_stdin(&["admin:create", "alice"], Some(""))
        .expect_code(2);
    let r = db
        .keygen_stdin(&["admin:create", "alice"], Some("correct horse battery\n"))
        .expect_code(0);
    assert!(r.stdout.contains("Created admin alice"));
    db.keygen_stdin(&["admin:create", "alice"], Some("correct horse battery\n"))
        .expect_code(1);
    let v = {
        let r = db
            .keygen_stdin(
                &["admin:create", "alice", "--reset-password", "--json"],
                Some("another good password\n"),
            )
            .expect_code(0);
        r.json()
    };
    assert_eq!(v["created"], false);
    db.keygen_stdin(
        &["admin:create", "bad name"],
        Some("correct horse battery\n"),
    )
    .expect_code(2);
    // The password is never an argument.
    db.keygen(&["admin:create", "bob", "--password", "x"])
        .expect_code(2);
}

#[test]
fn serve_answers_then_stops_on_sigterm() {
    let db = TestDb::sqlite_empty();
    // No schema yet: refused with exit 4.
    let port = closed_port();
    let listen = format!("127.0.0.1:{port}");
    db.keygen(&["serve", "--listen", &listen]).expect_code(4);
    db.keygen(&["install"]).expect_code(0);
    let child = Command::new(env!("CARGO_BIN_EXE_keygen"))
        .args(["--dsn", &db.dsn, "serve", "--listen", &listen])
        .env_remove("HERATIO_KEYS_DSN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keygen serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&listen) {
            write!(
                s,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            break out;
        }
        assert!(Instant::now() < deadline, "keygen serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("listening on http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("no admin account yet"), "{stderr}");
    // Port in use: exit 1.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let r = db.keygen(&["serve", "--listen", &addr]).expect_code(1);
    assert!(r.one_error_line().contains("cannot listen"));
}

/// `GET path` on `addr` once it accepts connections (the raw answer).
fn get_when_up(addr: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).expect("read");
            return out;
        }
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_moves_metrics_to_their_own_listener_or_turns_them_off() {
    let db = TestDb::sqlite_empty();
    db.keygen(&["install"]).expect_code(0);
    let listen = format!("127.0.0.1:{}", closed_port());
    let metrics = format!("127.0.0.1:{}", closed_port());
    // Both at once is a usage error.
    let r = db
        .keygen(&[
            "serve",
            "--listen",
            &listen,
            "--no-metrics",
            "--metrics-listen",
            &metrics,
        ])
        .expect_code(2);
    assert!(r.stderr.contains("--metrics-listen"), "{}", r.stderr);
    let child = Command::new(env!("CARGO_BIN_EXE_keygen"))
        .args(["--dsn", &db.dsn, "serve", "--listen", &listen])
        .args(["--metrics-listen", &metrics])
        .env_remove("HERATIO_KEYS_DSN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keygen serve");
    let scrape = get_when_up(&metrics, "/metrics");
    let main = get_when_up(&listen, "/metrics");
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
    assert!(scrape.contains("heratio_keys_build_info"), "{scrape}");
    assert!(main.starts_with("HTTP/1.1 404"), "{main}");
    assert!(
        stderr.contains(&format!("metrics on http://{metrics}/metrics")),
        "{stderr}"
    );
    // The metrics address in use: exit 1, like --listen's.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let r = db
        .keygen(&["serve", "--listen", &listen, "--metrics-listen", &addr])
        .expect_code(1);
    assert!(r.one_error_line().contains("cannot listen"));
}
