//! The validator functions through the C ABI from Rust: opening, options,
//! the shared mode, errors and what stays out of client messages.

use heratio_keys_core::{store, Dsn};

use super::*;
use crate::error::{hk_last_error_message, last_error};

#[test]
fn null_arguments_are_answered_not_crashed() {
    let mut out = ptr::null_mut();
    // SAFETY: NULL is allowed everywhere below.
    unsafe {
        assert_eq!(
            hk_validator_open(ptr::null(), &mut out),
            hk_error::HK_ERR_INVALID_ARGUMENT as c_int
        );
        assert!(out.is_null());
        assert_eq!(
            hk_validator_open(c"sqlite:/nonexistent".as_ptr(), ptr::null_mut()),
            hk_error::HK_ERR_INVALID_ARGUMENT as c_int
        );
        assert_eq!(
            hk_validator_open(c"postgres://x".as_ptr(), &mut out),
            hk_error::HK_ERR_INVALID_DSN as c_int
        );
        assert!(out.is_null());
        assert!(!last_error().is_empty());
        assert_eq!(
            hk_validate(
                ptr::null_mut(),
                1,
                ptr::null(),
                0,
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                ptr::null_mut()
            ),
            hk_status::HK_STATUS_UNAVAILABLE
        );
        assert_eq!(
            hk_validator_flush(ptr::null(), 0),
            hk_error::HK_ERR_INVALID_ARGUMENT as c_int
        );
        hk_validator_free(ptr::null_mut());
        assert_eq!(
            hk_last_error_message(ptr::null_mut(), 0),
            last_error().len()
        );
    }
}

#[test]
fn default_options_round_trip_to_the_core_defaults() {
    let core = Options::default();
    let through_c = core_options(&hk_options_default()).expect("valid defaults");
    assert_eq!(through_c.cache_capacity(), core.cache_capacity());
    assert_eq!(through_c.cache_ttl(), core.cache_ttl());
    assert_eq!(through_c.negative_ttl(), core.negative_ttl());
    assert_eq!(through_c.poll_interval(), core.poll_interval());
    assert_eq!(through_c.stale_bound(), core.stale_bound());
    assert_eq!(through_c.usage_log(), core.usage_log());
    assert_eq!(
        through_c.usage_queue_capacity(),
        core.usage_queue_capacity()
    );
    assert_eq!(
        through_c.usage_flush_interval(),
        core.usage_flush_interval()
    );
    assert_eq!(
        through_c.shutdown_flush_timeout(),
        core.shutdown_flush_timeout()
    );
}

/// A validator on a fresh SQLite store with the current schema.
fn open_fresh(dir: &tempfile::TempDir) -> *mut hk_validator {
    open_fresh_ex(dir, 0)
}

/// The DSN of the store in `dir`, installed if new.
fn fresh_dsn(dir: &tempfile::TempDir) -> std::ffi::CString {
    let path = dir.path().join("keys.db");
    let dsn = format!("sqlite:{}", path.display());
    if !path.exists() {
        store::open(&Dsn::parse(&dsn).expect("a valid DSN"))
            .expect("the store opens")
            .install()
            .expect("the schema installs");
    }
    std::ffi::CString::new(dsn).expect("no NUL")
}

/// As `open_fresh`, with `hk_validator_open_ex` flags.
fn open_fresh_ex(dir: &tempfile::TempDir, flags: u32) -> *mut hk_validator {
    let dsn = fresh_dsn(dir);
    let mut v = ptr::null_mut();
    // SAFETY: a NUL-terminated DSN and a writable out pointer.
    let rc = unsafe { hk_validator_open_ex(dsn.as_ptr(), ptr::null(), flags, &mut v) };
    assert_eq!(rc, 0, "{}", last_error());
    v
}

/// Removes a region's three files (`.region`, `.init`, `.leader`): the
/// tests leave nothing in /dev/shm.
fn remove_region(region: &std::path::Path) {
    for suffix in ["region", "init", "leader"] {
        let _ = std::fs::remove_file(region.with_extension(suffix));
    }
}

#[test]
fn open_ex_refuses_unknown_flags() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dsn = fresh_dsn(&dir);
    for flags in [2u32, 1 << 31, HK_OPEN_SHARED_CACHE | 4] {
        let mut v = ptr::null_mut();
        // SAFETY: valid pointers; refused before anything is opened.
        let rc = unsafe { hk_validator_open_ex(dsn.as_ptr(), ptr::null(), flags, &mut v) };
        assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
        assert!(v.is_null(), "out untouched");
        assert!(
            last_error().starts_with("hk_validator_open_ex: unknown flags 0x"),
            "{}",
            last_error()
        );
    }
    // SAFETY: NULL DSN is answered.
    let rc = unsafe { hk_validator_open_ex(ptr::null(), ptr::null(), 1, ptr::null_mut()) };
    assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
    // Options still count: flags do not bypass their checks.
    let mut o = hk_options_default();
    o.usage_log = 7;
    let mut v = ptr::null_mut();
    // SAFETY: valid pointers.
    let rc = unsafe { hk_validator_open_ex(dsn.as_ptr(), &o, 1, &mut v) };
    assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
    assert!(core_options_with(&hk_options_default(), 1)
        .expect("known")
        .shared_cache());
    assert!(!core_options_with(&hk_options_default(), 0)
        .expect("known")
        .shared_cache());
}

#[test]
fn host_stats_of_a_private_validator_say_not_shared() {
    use crate::stats::{hk_host_stats, hk_validator_host_stats};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let v = open_fresh(&dir);
    let mut h = hk_host_stats {
        hits: 99,
        ..Default::default()
    };
    // SAFETY: a live handle and a writable struct.
    let rc = unsafe { hk_validator_host_stats(v, &mut h) };
    assert_eq!(rc, hk_error::HK_ERR_NOT_SHARED as c_int);
    assert_eq!(h.hits, 99, "out untouched");
    assert_eq!(
        last_error(),
        "hk_validator_host_stats: the validator was opened without HK_OPEN_SHARED_CACHE"
    );
    // SAFETY: a live handle, freed once.
    unsafe { hk_validator_free(v) };
}

#[test]
fn shared_validators_share_fills_and_one_leads() {
    use crate::stats::{hk_host_stats, hk_validator_host_stats};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let a = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
    let b = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
    // SAFETY: live handles.
    let region = unsafe { &*a }
        .inner
        .shared_region_path()
        .expect("a shares the region");
    let host = |v: *mut hk_validator| {
        let mut h = hk_host_stats::default();
        // SAFETY: a live handle and a writable struct.
        let rc = unsafe { hk_validator_host_stats(v, &mut h) };
        assert_eq!(rc, 0, "{}", last_error());
        h
    };
    let (ha, hb) = (host(a), host(b));
    assert_eq!(ha.leader + hb.leader, 1, "exactly one leads: {ha:?} {hb:?}");
    assert_eq!(ha.leader_pid, std::process::id());
    let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
    let validate = |v: *mut hk_validator| {
        // SAFETY: a live handle and key.
        unsafe {
            hk_validate(
                v,
                1,
                key.as_ptr().cast(),
                key.len(),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            )
        }
    };
    assert_eq!(validate(a), hk_status::HK_STATUS_NOT_FOUND);
    let misses = host(b).misses;
    assert_eq!(validate(b), hk_status::HK_STATUS_NOT_FOUND);
    let hb = host(b);
    assert_eq!(hb.misses, misses, "b found a's negative answer");
    assert!(hb.hits >= 1 && hb.fills >= 1 && hb.entries >= 1, "{hb:?}");
    // SAFETY: live handles, freed once.
    unsafe {
        hk_validator_free(a);
        hk_validator_free(b);
    }
    remove_region(&region);
}

#[test]
fn an_unusable_region_falls_back_and_says_why() {
    use std::os::unix::fs::PermissionsExt;

    use crate::stats::{hk_host_stats, hk_validator_host_stats};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let probe = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
    // SAFETY: a live handle.
    let region = unsafe { &*probe }
        .inner
        .shared_region_path()
        .expect("shared");
    // SAFETY: a live handle, freed once.
    unsafe { hk_validator_free(probe) };
    std::fs::set_permissions(&region, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let v = open_fresh_ex(&dir, HK_OPEN_SHARED_CACHE);
    let mut h = hk_host_stats::default();
    // SAFETY: a live handle and a writable struct.
    let rc = unsafe { hk_validator_host_stats(v, &mut h) };
    assert_eq!(rc, hk_error::HK_ERR_NOT_SHARED as c_int);
    let why = last_error();
    assert!(
        why.contains("runs with its own cache") && why.contains("private"),
        "{why}"
    );
    assert_eq!(h, hk_host_stats::default(), "out untouched");
    // SAFETY: a live handle, freed once.
    unsafe { hk_validator_free(v) };
    remove_region(&region);
}

#[test]
fn unusable_required_scopes_are_forbidden_with_a_message() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let v = open_fresh(&dir);
    let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
    let validate = |scopes: *const *const c_char, n: usize| {
        // SAFETY: a live handle, key and scope array of the stated sizes.
        unsafe {
            hk_validate(
                v,
                1,
                key.as_ptr().cast(),
                key.len(),
                scopes,
                n,
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            )
        }
    };
    let forbidden = hk_status::HK_STATUS_FORBIDDEN;
    assert_eq!(validate(ptr::null(), 2), forbidden);
    assert_eq!(
        last_error(),
        "hk_validate: scopes is NULL but scopes_len is 2"
    );
    let read = c"read".as_ptr();
    assert_eq!(validate([read, ptr::null()].as_ptr(), 2), forbidden);
    assert_eq!(last_error(), "hk_validate: scopes[1] is NULL");
    // A bad name is core's judgement (check_required), its message too.
    for bad in [c"read ", c"", c"a,b"] {
        assert_eq!(validate([read, bad.as_ptr()].as_ptr(), 2), forbidden);
        let name = bad.to_str().expect("UTF-8");
        assert!(
            last_error().contains(&format!("{name:?}")),
            "{}",
            last_error()
        );
    }
    // Usable scopes reach the validator: this well-formed key is unknown.
    assert_eq!(
        validate([read, c"*".as_ptr()].as_ptr(), 2),
        hk_status::HK_STATUS_NOT_FOUND
    );
    // SAFETY: a live handle, freed once.
    unsafe { hk_validator_free(v) };
}

#[test]
fn usage_log_accepts_only_zero_or_one() {
    let mut o = hk_options_default();
    assert_eq!(o.usage_log, 1);
    o.usage_log = 0;
    assert!(!core_options(&o).expect("0 is off").usage_log());
    o.usage_log = 2;
    let err = core_options(&o).expect_err("2 is neither");
    assert!(err.contains("usage_log"), "{err}");
    let mut v = ptr::null_mut();
    // SAFETY: valid pointers; the options are refused before any use.
    let rc = unsafe { hk_validator_open_with(c"sqlite:/unused".as_ptr(), &o, &mut v) };
    assert_eq!(rc, hk_error::HK_ERR_INVALID_ARGUMENT as c_int);
    assert!(v.is_null());
}

/// When the store fails under a validation, the message (for an HTTP
/// client) says only that validation is unavailable; where the store is
/// goes to the detail, for operators.
#[test]
fn store_details_stay_out_of_the_client_message() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let v = open_fresh(&dir);
    let db = dir.path().join("keys.db");
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute_batch("DROP TABLE api_key"))
        .expect("the table goes away under the running validator");
    let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
    // SAFETY: a live handle and key.
    let status = unsafe {
        hk_validate(
            v,
            1,
            key.as_ptr().cast(),
            key.len(),
            ptr::null(),
            0,
            ptr::null(),
            ptr::null(),
            ptr::null_mut(),
        )
    };
    assert_eq!(status, hk_status::HK_STATUS_UNAVAILABLE);
    let message = last_error();
    let detail = crate::error::last_error_detail();
    assert_eq!(message, "API key validation is temporarily unavailable.");
    let place = dir.path().display().to_string();
    assert!(!message.contains(&place), "{message}");
    assert!(
        detail.contains(&place),
        "the detail names the store: {detail}"
    );
    // SAFETY: a live handle, freed once.
    unsafe { hk_validator_free(v) };
}

/// The issue-13 shape on MariaDB: host, port and user of the store
/// (and a password holding `/ @ : % #`) reach only the operator's
/// detail, never the message meant for an HTTP client.
#[test]
fn mariadb_host_port_user_and_password_stay_out_of_the_client_message() {
    let password = "pa/ss@w:rd%23#x";
    let dsn = std::ffi::CString::new(format!(
        "mysql://hk-fixture-user:{password}@127.0.0.1:1/keys"
    ))
    .expect("no NUL");
    let mut v = ptr::null_mut();
    // SAFETY: a NUL-terminated DSN and a writable out pointer.
    let rc = unsafe { hk_validator_open(dsn.as_ptr(), &mut v) };
    let (message, detail) = if rc == 0 {
        let key = "hk_api_00000000000000000000000000000000000000001Wtgbr";
        // SAFETY: a live handle and key.
        let status = unsafe {
            hk_validate(
                v,
                1,
                key.as_ptr().cast(),
                key.len(),
                ptr::null(),
                0,
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
            )
        };
        assert_eq!(status, hk_status::HK_STATUS_UNAVAILABLE);
        let answer = (last_error(), crate::error::last_error_detail());
        // SAFETY: a live handle, freed once.
        unsafe { hk_validator_free(v) };
        let (message, _) = &answer;
        for place in ["127.0.0.1", "hk-fixture-user", ":1/"] {
            assert!(!message.contains(place), "{place} in {message}");
        }
        answer
    } else {
        // Refused at open: an operator's error, which may name the
        // host, but never the password.
        (last_error(), crate::error::last_error_detail())
    };
    for secret in [password, "pa/ss", "w:rd"] {
        assert!(!message.contains(secret), "{message}");
        assert!(!detail.contains(secret), "{detail}");
    }
    assert!(
        format!("{message} {detail}").contains("127.0.0.1"),
        "the operator learns which store: {message} / {detail}"
    );
}
