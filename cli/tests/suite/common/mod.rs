//! Helpers for driving the real `keygen` binary against the shared test
//! databases (`heratio_keys_testkit::TestDb`).
#![allow(dead_code)]

#[allow(unused_imports, reason = "each test binary uses a different part")]
pub use heratio_keys_testkit::{closed_port, TestDb};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

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
        // A command refused before it reads its input (a usage error)
        // may exit while this is written: its exit code is the answer.
        match pipe.write_all(input.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.expect("write stdin"),
        }
    }
    let out = child.wait_with_output().expect("wait for keygen");
    Run {
        code: out.status.code().expect("keygen exited by signal"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// keygen pointed at a test database (`heratio_keys_testkit::TestDb`,
/// created empty: the test runs `keygen install`).
pub trait Keygen {
    /// keygen with `--dsn` pointing here.
    fn keygen(&self, args: &[&str]) -> Run {
        self.keygen_stdin(args, None)
    }

    /// keygen with `--dsn` pointing here and `stdin` as standard input.
    fn keygen_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run;

    /// keygen with `--json`, expecting `code`, stdout parsed.
    #[track_caller]
    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.keygen(&all).expect_code(code).json()
    }
}

impl Keygen for TestDb {
    fn keygen_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut all = vec!["--dsn", &self.dsn];
        all.extend_from_slice(args);
        keygen_in(None, &all, stdin, &[])
    }
}

/// `v[field]` as an integer, or a failure naming it.
#[track_caller]
pub fn int(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} is not an integer in {v}"))
}

/// `v[field]` as a string, or a failure naming it.
#[track_caller]
pub fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
}

/// `v[field]` as an array of strings, or a failure naming it.
#[track_caller]
pub fn strings(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} is not an array in {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

/// `v` as an array, or a failure showing it.
#[track_caller]
pub fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// The actor keygen records: the passwd name of the effective uid (with
/// `(sudo: …)` appended under sudo, which tests then do not compare).
pub fn expected_actor() -> Option<String> {
    if std::env::var_os("SUDO_USER").is_some() {
        return None;
    }
    let out = Command::new("id").arg("-un").output().expect("id -un");
    Some(
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned(),
    )
}

/// Runs a test function on SQLite and, when configured, on MariaDB:
/// `on_both_stores!(a, b)` makes `sqlite::a`, `mysql::a`, … (each on a
/// fresh, installed database).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::TestDb::sqlite()); } )*
        }
        mod mysql {
            $( #[test] fn $name() {
                if let Some(db) = super::TestDb::mysql() { super::$name(&db); }
            } )*
        }
    };
}
