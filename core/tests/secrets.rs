//! Secrets stay out of messages and files stay private: DSN passwords with
//! URL-special characters never appear in an error, and the SQLite files
//! holding digests are created owner-only whatever the umask.

use std::os::unix::fs::PermissionsExt;

use heratio_keys_core::{store, Dsn, Options, Validator};
use heratio_keys_testkit::TestDb;

const PASSWORDS: [&str; 7] = [
    "Kx7/Wm2",
    "Kx7@Wm2",
    "Kx7:Wm2",
    "Kx7%2FWm2",
    "Kx7#Wm2",
    "Kx7?Wm2",
    "Kx7/@:#Wm2",
];

#[test]
fn dsn_passwords_never_reach_an_error_message() {
    let port = heratio_keys_testkit::closed_port();
    for password in PASSWORDS {
        let dsn = format!("mysql://hk:{password}@127.0.0.1:{port}/keys");
        let mut messages = Vec::new();
        match Dsn::parse(&dsn) {
            Err(e) => messages.push(e.to_string()),
            Ok(parsed) => {
                messages.push(format!("{parsed} {parsed:?}"));
                let store = store::open(&parsed).expect("opening connects lazily");
                messages.push(format!("{store:?} {}", store.describe()));
                messages.push(store.list_clients().expect_err("port closed").to_string());
            }
        }
        messages.push(
            Validator::open(&dsn, Options::default())
                .expect_err("port closed")
                .to_string(),
        );
        for m in &messages {
            assert!(
                !m.contains("Kx7") && !m.contains("Wm2"),
                "{password} leaked: {m}"
            );
        }
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn sqlite_files_are_created_owner_only() {
    // SAFETY: umask(2) only changes this process's file-creation mask.
    let previous = unsafe { libc::umask(0o022) };
    let db = TestDb::sqlite();
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(previous) };
    let path = db.sqlite_path().expect("sqlite").to_owned();
    // A validator opens the WAL and shared-memory files.
    let v = Validator::open(&db.dsn, Options::default()).expect("validator");
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        assert!(file.exists(), "{}", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(v);
}

#[test]
fn opening_a_missing_sqlite_file_creates_nothing() {
    let db = TestDb::sqlite_empty();
    let path = db.sqlite_path().expect("sqlite").to_owned();
    let err = Validator::open(&db.dsn, Options::default()).expect_err("no database");
    assert!(err.message().contains("keygen install"), "{err}");
    assert!(db.store.list_clients().is_err());
    assert!(!path.exists(), "opening must not create {}", path.display());
    let missing_dir = path.parent().expect("dir").join("no-such-dir/keys.db");
    let err = Validator::open(
        &format!("sqlite:{}", missing_dir.display()),
        Options::default(),
    )
    .expect_err("no directory");
    assert_eq!(
        err.kind(),
        heratio_keys_core::ErrorKind::Unavailable,
        "{err}"
    );
    assert!(!missing_dir.parent().expect("dir").exists());
}
