//! Arguments, DSN resolution, help, completions and failures: exit codes and
//! one-line error messages that never show a password.

use crate::common::{closed_port, keygen_in, Keygen, TestDb};
use serde_json::Value;

const SECRET: &str = "Tr0ub4dor-s3cret";

/// A database with the schema and one client (id in the answer).
fn installed() -> (TestDb, String) {
    let db = TestDb::sqlite_empty();
    db.keygen(&["install"]).expect_code(0);
    let client = db.json(
        &["client:create", "--name", "c", "--email", "c@example.org"],
        0,
    );
    let id = client["id"].as_i64().expect("id").to_string();
    (db, id)
}

#[test]
fn bad_arguments_are_usage_errors() {
    let (db, client) = installed();
    let cases: &[&[&str]] = &[
        &[],
        &["no:such-command"],
        &["client:create", "--name", "x"],
        &["client:create", "--name", "", "--email", "e@example.org"],
        &["client:deactivate", "abc"],
        &["client:deactivate", "0"],
        &["client:deactivate", "-3"],
        &["api:generate", &client],
        &["api:generate", &client, "--name", "x", "--scopes", "a b"],
        &["api:generate", &client, "--name", "x", "--scopes", ""],
        &["api:generate", &client, "--name", "x", "--expires-in", "5x"],
        &["api:generate", &client, "--name", "x", "--expires-in", "0d"],
        &[
            "api:generate",
            &client,
            "--name",
            "x",
            "--expires-at",
            "tomorrow",
        ],
        &[
            "api:generate",
            &client,
            "--name",
            "x",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ],
        &[
            "api:generate",
            &client,
            "--name",
            "x",
            "--expires-in",
            "1d",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ],
        &["ai:generate", "x", "--name", "x"],
        &["api:list"],
        &["ai:revoke"],
        &["api:validate", "--scope", "bad scope", "hk_api_x"],
        &["stats", "--days", "0"],
        &["stats", "--client", "zero"],
        &["completions", "tcsh"],
    ];
    for args in cases {
        let run = db.keygen(args);
        assert_eq!(
            run.code, 2,
            "{args:?}\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // Nothing was created by any of them.
    let keys = db.json(&["api:list", &client], 0);
    assert_eq!(keys, Value::Array(vec![]));
}

#[test]
fn validate_reads_stdin_and_rejects_empty_input() {
    let (db, client) = installed();
    let generated = db.json(&["api:generate", &client, "--name", "x"], 0);
    let key = generated["key"].as_str().expect("key").to_owned();
    // Surrounding whitespace and a CRLF are tolerated; only the first line counts.
    for input in [
        key.clone(),
        format!("{key}\n"),
        format!("  {key}\r\n"),
        format!("{key}\nsomething else\n"),
    ] {
        let run = db
            .keygen_stdin(&["api:validate"], Some(&input))
            .expect_code(0);
        assert_eq!(run.stdout.lines().next(), Some("valid"));
        db.keygen_stdin(&["api:validate", "-"], Some(&input))
            .expect_code(0);
    }
    for input in ["", "\n", "   \n"] {
        let run = db
            .keygen_stdin(&["api:validate"], Some(input))
            .expect_code(2);
        assert!(run.one_error_line().contains("no API key given"));
        assert!(run.stdout.is_empty());
    }
    // No stdin at all (/dev/null) is the same usage error.
    let run = db.keygen(&["ai:validate"]).expect_code(2);
    assert!(run.one_error_line().contains("no AI token given"));
}

/// Issue 13's report, as typed: a password with `/` (and others with
/// `@ : % #`) never reaches the output, whatever the URL parser makes of it.
#[test]
fn passwords_with_url_delimiters_never_reach_the_output() {
    let port = closed_port();
    for password in ["pa/ss", "p@ss:w", "50%off", "x#y?z"] {
        let dsn = format!("mysql://hk:{password}@127.0.0.1:{port}/keys");
        let run = keygen_in(None, &["--dsn", &dsn, "client:list"], None, &[]);
        assert_ne!(run.code, 0, "{password}: {}", run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains(password), "{password}: {all}");
        assert!(run.stdout.is_empty(), "{password}: {}", run.stdout);
    }
}

#[test]
fn unreachable_store_exits_3_without_the_password() {
    let port = closed_port();
    let dsn = format!("mysql://hk:{SECRET}@127.0.0.1:{port}/heratio_keys");
    for args in [
        vec!["install"],
        vec!["client:list"],
        vec!["client:create", "--name", "x", "--email", "x@example.org"],
        vec!["api:list", "1"],
        vec!["stats", "--json"],
    ] {
        let mut all = vec!["--dsn", dsn.as_str()];
        all.extend(args.iter().copied());
        let run = keygen_in(None, &all, None, &[]);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        let line = run.one_error_line();
        assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
        assert!(!line.contains(SECRET), "{line}");
        assert!(run.stdout.is_empty());
    }
    // Validation prints the status name and exits 3.
    let key = heratio_keys_core::generate(heratio_keys_core::Kind::ApiKey).expect("key");
    let run = keygen_in(
        None,
        &["--dsn", &dsn, "api:validate"],
        Some(key.expose()),
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout.lines().next(), Some("unavailable"));
    assert!(!run.one_error_line().contains(SECRET));
    let run = keygen_in(
        None,
        &["--dsn", &dsn, "api:validate", "--json"],
        Some(key.expose()),
        &[],
    );
    assert_eq!(run.code, 3);
    let v: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["http_status"], 503);
    assert_eq!(v["valid"], false);
    // The same DSN from the environment behaves the same.
    let run = keygen_in(None, &["client:list"], None, &[("HERATIO_KEYS_DSN", &dsn)]);
    assert_eq!(run.code, 3);
    assert!(!run.stderr.contains(SECRET));
}

#[test]
fn malformed_dsn_is_a_usage_error_without_the_password() {
    for dsn in [
        format!("postgres://hk:{SECRET}@db/keys"),
        "sqlite:".to_owned(),
        "nonsense".to_owned(),
        format!("mysql://hk:{SECRET}@/"),
    ] {
        let run = keygen_in(None, &["--dsn", &dsn, "client:list"], None, &[]);
        assert_eq!(run.code, 2, "{dsn}: {}", run.stderr);
        assert!(!run.one_error_line().contains(SECRET));
    }
}

#[test]
fn missing_sqlite_file_is_not_created() {
    let db = TestDb::sqlite_empty();
    let path = db.sqlite_path().expect("sqlite").to_owned();
    for args in [
        vec!["client:list"],
        vec!["stats"],
        vec!["api:validate", "hk_api_x"],
    ] {
        let run = db.keygen(&args).expect_code(4);
        assert!(
            run.one_error_line().contains("keygen install"),
            "{}",
            run.stderr
        );
    }
    assert!(!path.exists());
    db.keygen(&["install"]).expect_code(0);
    assert!(path.exists());
}

#[test]
fn dsn_comes_from_flag_then_environment_then_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env_db = dir.path().join("env.db");
    let flag_db = dir.path().join("flag.db");
    let env_dsn = format!("sqlite:{}", env_db.display());
    let flag_dsn = format!("sqlite:{}", flag_db.display());
    let env = [("HERATIO_KEYS_DSN", env_dsn.as_str())];

    // Default: sqlite:heratio_keys.db in the working directory.
    let run = keygen_in(Some(dir.path()), &["install", "--json"], None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["dsn"], "sqlite:heratio_keys.db");
    assert!(dir.path().join("heratio_keys.db").exists());
    // An empty variable counts as unset.
    let run = keygen_in(
        Some(dir.path()),
        &["install", "--json"],
        None,
        &[("HERATIO_KEYS_DSN", "")],
    );
    assert_eq!(run.json()["dsn"], "sqlite:heratio_keys.db");

    // The environment, when set.
    let run = keygen_in(Some(dir.path()), &["install", "--json"], None, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["dsn"], Value::String(env_dsn.clone()));
    assert!(env_db.exists());

    // The flag wins over the environment, before or after the command.
    for args in [
        vec!["--dsn", flag_dsn.as_str(), "install", "--json"],
        vec!["install", "--json", "--dsn", flag_dsn.as_str()],
    ] {
        let run = keygen_in(Some(dir.path()), &args, None, &env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.json()["dsn"], Value::String(flag_dsn.clone()));
    }
}

#[test]
fn help_has_an_example_for_every_command() {
    let commands = [
        "install",
        "client:create",
        "client:list",
        "client:deactivate",
        "api:generate",
        "api:list",
        "api:revoke",
        "api:validate",
        "ai:generate",
        "ai:list",
        "ai:revoke",
        "ai:validate",
        "api:limit",
        "api:metadata",
        "ai:limit",
        "ai:metadata",
        "import:heratio",
        "stats",
        "completions",
    ];
    let top = keygen_in(None, &["--help"], None, &[]);
    assert_eq!(top.code, 0);
    for command in commands {
        assert!(
            top.stdout.contains(command),
            "{command} missing from --help"
        );
        let run = keygen_in(None, &[command, "--help"], None, &[]);
        assert_eq!(run.code, 0, "{command}");
        assert!(run.stdout.contains("Example:"), "{command}: {}", run.stdout);
        assert!(run.stdout.contains(&format!("keygen {command}")) || command == "install");
    }
    assert!(top.stdout.contains("Exit codes"));
    let version = keygen_in(None, &["--version"], None, &[]);
    assert_eq!(version.code, 0);
    assert!(version.stdout.starts_with("keygen "));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let run = keygen_in(None, &["completions", shell], None, &[]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("keygen"), "{shell}");
        assert!(run.stdout.contains("api:generate"), "{shell}");
    }
}

#[test]
fn mysql_without_schema_asks_for_install() {
    let Some(db) = TestDb::mysql_empty() else {
        return;
    };
    let run = db.keygen(&["client:list"]).expect_code(4);
    assert!(run.one_error_line().contains("install"), "{}", run.stderr);
    let run = db
        .keygen_stdin(&["api:validate"], Some("hk_api_x"))
        .expect_code(4);
    assert!(run.one_error_line().contains("install"), "{}", run.stderr);
    db.keygen(&["install"]).expect_code(0);
    db.keygen(&["client:list"]).expect_code(0);
}

#[test]
fn mysql_wrong_password_is_unreachable_and_masked() {
    let Some(db) = TestDb::mysql_empty() else {
        return;
    };
    let (scheme_user, rest) = db.dsn.split_once('@').expect("dsn with credentials");
    let user_part = scheme_user.rsplit_once(':').map_or(scheme_user, |(u, _)| u);
    let dsn = format!("{user_part}:{SECRET}@{rest}");
    let run = keygen_in(None, &["--dsn", &dsn, "client:list"], None, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(!run.one_error_line().contains(SECRET));
}
