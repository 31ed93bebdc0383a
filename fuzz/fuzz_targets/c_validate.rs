//! The C ABI with arbitrary arguments: `hk_check_format`, `hk_validate` and
//! the last-error functions, on a real SQLite validator opened once per
//! process in a temporary directory (removed at exit) and seeded with an
//! active API key (`read,write`), an AI token (`*`), a revoked key, an
//! expired key and a key of a deactivated client.
//!
//! The key is either one of those (possibly with byte changes), arbitrary
//! bytes, or NULL with an arbitrary length; the kind any `u32`; the scope
//! array NULL (with any length), or arbitrary strings and NULL elements; `ip`
//! and `endpoint` NULL or arbitrary strings; `out` NULL or a buffer filled
//! with a canary pattern.
//!
//! Invariants:
//! - never crashes (under AddressSanitizer);
//! - every status is one the library names (`hk_status_name` is not
//!   "unknown") and is exactly the status the documented order of checks
//!   gives: unknown kind `malformed`; unusable scope list `forbidden`; the
//!   format check's status; then the seeded key's state, else `not_found`;
//! - `hk_check_format` agrees with core's `check_format`;
//! - `*out` is byte-for-byte untouched unless the status is `valid`, and
//!   then holds the matched credential;
//! - the last error message and detail never contain a presented
//!   well-formed key (unless another argument also contains it), are empty
//!   exactly after a valid answer, and copy out `snprintf`-style into a
//!   buffer of any size.
#![no_main]

use std::ffi::{c_char, CStr, CString};
use std::mem::{size_of, MaybeUninit};
use std::ptr;
use std::sync::OnceLock;

use heratio_keys::credential::{hk_credential, HK_NAME_MAX, HK_SCOPES_MAX};
use heratio_keys::error::{hk_last_error_detail, hk_last_error_message};
use heratio_keys::format::hk_check_format;
use heratio_keys::status::{hk_kind, hk_status, hk_status_http, hk_status_name};
use heratio_keys::validator::{hk_validate, hk_validator, hk_validator_open};
use heratio_keys_core::model::check_required;
use heratio_keys_core::{
    check_format, generate, store, Actor, Dsn, Kind, NewClient, NewCredential, Scopes, Source,
    Status,
};
use libfuzzer_sys::fuzz_target;

/// A credential in the fixture and the status it must validate to.
struct Seeded {
    kind: Kind,
    key: String,
    client_id: i64,
    id: i64,
    name: &'static str,
    scopes: Scopes,
    /// `None`: valid unless a required scope is missing.
    refused: Option<Status>,
}

struct Fixture {
    validator: *mut hk_validator,
    keys: Vec<Seeded>,
}

// SAFETY: `hk_validator` is documented thread-safe; the fixture is never
// mutated after set-up.
unsafe impl Send for Fixture {}
// SAFETY: as above.
unsafe impl Sync for Fixture {}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();
static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

extern "C" fn remove_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let dir = DIR.get_or_init(|| {
            tempfile::Builder::new()
                .prefix("hk-fuzz-c-validate.")
                .tempdir()
                .expect("a temporary directory")
        });
        // SAFETY: registering a plain `extern "C"` function.
        unsafe { libc::atexit(remove_dir) };
        let dsn = format!("sqlite:{}", dir.path().join("keys.db").display());
        let store = store::open(&Dsn::parse(&dsn).expect("a DSN")).expect("the store opens");
        store.install().expect("the schema installs");
        let actor = Actor::new("fuzz", Source::Library);
        let client = |name: &str| {
            store
                .create_client(
                    &NewClient {
                        name: name.into(),
                        email: "fuzz@example.org".into(),
                        organization: None,
                    },
                    &actor,
                )
                .expect("a client")
                .id
        };
        let (active, inactive) = (client("active"), client("inactive"));
        let mut keys = Vec::new();
        let mut add = |kind: Kind,
                       client_id: i64,
                       name: &'static str,
                       scopes: &str,
                       expires_at: Option<i64>,
                       refused: Option<Status>| {
            let secret = generate(kind).expect("a key");
            let scopes = Scopes::parse(scopes).expect("scopes");
            let info = store
                .insert_credential(
                    kind,
                    &NewCredential {
                        client_id,
                        name: name.into(),
                        scopes: scopes.clone(),
                        expires_at,
                        digest: secret.digest(),
                        display_prefix: secret.display_prefix().into(),
                        metadata: None,
                        rate_limit: None,
                    },
                    &actor,
                )
                .expect("a credential");
            keys.push(Seeded {
                kind,
                key: secret.expose().to_owned(),
                client_id,
                id: info.id,
                name,
                scopes,
                refused,
            });
            info.id
        };
        add(Kind::ApiKey, active, "production", "read,write", None, None);
        add(Kind::AiToken, active, "gateway", "*", None, None);
        let revoked = add(Kind::ApiKey, active, "retired", "*", None, Some(Status::Revoked));
        add(Kind::ApiKey, active, "old", "*", Some(1_000), Some(Status::Expired));
        add(Kind::AiToken, inactive, "former", "*", None, Some(Status::Revoked));
        store.revoke_credential(Kind::ApiKey, revoked, &actor).expect("revoked");
        store.deactivate_client(inactive, &actor).expect("deactivated");
        drop(store);

        let dsn = CString::new(dsn).expect("no NUL");
        let mut validator = ptr::null_mut();
        // SAFETY: a C string and a writable pointer.
        let rc = unsafe { hk_validator_open(dsn.as_ptr(), &mut validator) };
        assert_eq!(rc, 0, "hk_validator_open failed");
        Fixture { validator, keys }
    })
}

enum Key<'a> {
    /// A seeded key, with bytes changed: `(position, value)` pairs, a
    /// position one past the end appends.
    Seeded { index: usize, changes: &'a [u8] },
    Bytes(&'a [u8]),
    Null { len: usize },
}

enum ScopeArg<'a> {
    Null { len: usize },
    /// `None`: a NULL element.
    Array(Vec<Option<&'a [u8]>>),
}

/// The input: a 4-byte header, then lines.
///
/// Header: the kind (`255` is `u32::MAX`, anything else as is); the key's
/// source (`0`-`4`: seeded key N, `5`: the bytes of line 1, `6`: NULL with
/// the length in byte 4); flags (bit 0: `out` given, bit 1: `scopes` NULL
/// with length byte 4 % 8, bit 2: `ip` given, bit 3: `endpoint` given); the
/// error buffer length.
///
/// Lines: the key bytes or the changes to the seeded key; `ip`;
/// `endpoint`; then one scope a line, `(null)` for a NULL element. Seeds are
/// readable text after the header.
struct Input<'a> {
    kind: u32,
    key: Key<'a>,
    scopes: ScopeArg<'a>,
    ip: Option<&'a [u8]>,
    endpoint: Option<&'a [u8]>,
    out: bool,
    error_buf_len: usize,
}

impl<'a> Input<'a> {
    fn from_bytes(data: &'a [u8]) -> Option<Input<'a>> {
        let (&[kind, source, flags, len], rest) = data.split_first_chunk::<4>()?;
        let mut lines = rest.split(|&b| b == b'\n');
        let first = lines.next().unwrap_or_default();
        let ip = lines.next().filter(|_| flags & 4 != 0);
        let endpoint = lines.next().filter(|_| flags & 8 != 0);
        let scopes = if flags & 2 != 0 {
            ScopeArg::Null { len: usize::from(len % 8) }
        } else {
            ScopeArg::Array(lines.map(|l| (l != b"(null)").then_some(l)).collect())
        };
        Some(Input {
            kind: if kind == 255 { u32::MAX } else { u32::from(kind) },
            key: match source {
                0..=4 => Key::Seeded { index: usize::from(source), changes: first },
                5 => Key::Bytes(first),
                _ => Key::Null { len: usize::from(len) },
            },
            scopes,
            ip,
            endpoint,
            out: flags & 1 != 0,
            error_buf_len: usize::from(len),
        })
    }
}

/// A C string of the bytes before the first NUL.
fn c_string(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).expect("no interior NUL")
}

/// Reads one of the last-error functions into a buffer of `len` bytes and
/// checks the `snprintf` contract; returns the full text.
fn read_error(read: unsafe extern "C" fn(*mut c_char, usize) -> usize, len: usize) -> String {
    // SAFETY: NULL with length 0 asks for the length.
    let full_len = unsafe { read(ptr::null_mut(), 0) };
    let mut full = vec![0 as c_char; full_len + 1];
    // SAFETY: a live buffer of that length.
    assert_eq!(unsafe { read(full.as_mut_ptr(), full.len()) }, full_len);
    // SAFETY: NUL-terminated by the call.
    let text = unsafe { CStr::from_ptr(full.as_ptr()) }
        .to_str()
        .expect("the message is UTF-8")
        .to_owned();
    assert_eq!(text.len(), full_len);
    if len > 0 {
        // An exact-size allocation: AddressSanitizer catches any overrun.
        let mut cut = vec![1 as c_char; len];
        // SAFETY: a live buffer of that length.
        assert_eq!(unsafe { read(cut.as_mut_ptr(), len) }, full_len);
        // SAFETY: NUL-terminated within `len` by contract.
        let part = unsafe { CStr::from_ptr(cut.as_ptr()) }.to_str().expect("cut at a character");
        assert!(text.starts_with(part) && part.len() < len);
        assert!(part.len() == text.len() || part.len() + 4 >= len, "cut too early");
    }
    text
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::from_bytes(data) else {
        return;
    };
    let fx = fixture();

    // The key argument.
    let (key_bytes, key_ptr, key_len, seeded): (Vec<u8>, *const c_char, usize, Option<&Seeded>) =
        match &input.key {
            Key::Seeded { index, changes } => {
                let s = &fx.keys[*index % fx.keys.len()];
                let mut bytes = s.key.clone().into_bytes();
                for pair in changes.chunks_exact(2).take(4) {
                    let (at, value) = (pair[0], pair[1]);
                    let at = usize::from(at) % (bytes.len() + 1);
                    if at == bytes.len() {
                        bytes.push(value);
                    } else {
                        bytes[at] = value;
                    }
                }
                let same = bytes == s.key.as_bytes();
                (bytes, ptr::null(), 0, same.then_some(s))
            }
            Key::Bytes(b) => (b.to_vec(), ptr::null(), 0, None),
            Key::Null { len } => (Vec::new(), ptr::null(), *len, None),
        };
    let (key_ptr, key_len) = match input.key {
        Key::Null { .. } => (key_ptr, key_len),
        _ => (key_bytes.as_ptr().cast::<c_char>(), key_bytes.len()),
    };
    // What core sees of the key (NULL is no bytes).
    let presented: &[u8] = if key_ptr.is_null() { &[] } else { &key_bytes };
    let seeded = seeded.or_else(|| fx.keys.iter().find(|s| s.key.as_bytes() == presented));

    // The scope array, its strings kept alive here.
    let scope_strings: Vec<Option<CString>> = match &input.scopes {
        ScopeArg::Null { .. } => Vec::new(),
        ScopeArg::Array(items) => items.iter().map(|i| i.map(c_string)).collect(),
    };
    let scope_ptrs: Vec<*const c_char> = scope_strings
        .iter()
        .map(|s| s.as_ref().map_or(ptr::null(), |s| s.as_ptr()))
        .collect();
    let (scopes_ptr, scopes_len) = match &input.scopes {
        ScopeArg::Null { len } => (ptr::null(), *len),
        ScopeArg::Array(_) => (scope_ptrs.as_ptr(), scope_ptrs.len()),
    };
    // The scopes as `hk_validate` must read them: `None` if unusable.
    let required: Option<Vec<&str>> = match &input.scopes {
        ScopeArg::Null { len } => (*len == 0).then(Vec::new),
        ScopeArg::Array(_) => scope_strings
            .iter()
            .map(|s| s.as_ref().and_then(|s| s.to_str().ok()))
            .collect::<Option<Vec<&str>>>()
            .filter(|r| check_required(r).is_ok()),
    };

    let ip = input.ip.map(c_string);
    let endpoint = input.endpoint.map(c_string);
    let opt_ptr = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());

    // `hk_check_format` agrees with core.
    let kind = Kind::from_code(i64::from(input.kind));
    let format = kind.map_or(Status::Malformed, |k| check_format(k, presented));
    // SAFETY: NULL or `key_len` live bytes.
    let c_format = unsafe { hk_check_format(input.kind, key_ptr, key_len) };
    assert_eq!(c_format as u32, u32::from(format.code()), "hk_check_format");

    // `hk_validate`, `out` filled with a canary.
    const CANARY: u8 = 0xA5;
    let mut out = MaybeUninit::<hk_credential>::uninit();
    // SAFETY: writing bytes into our own buffer.
    unsafe { out.as_mut_ptr().cast::<u8>().write_bytes(CANARY, size_of::<hk_credential>()) };
    let out_ptr = if input.out { out.as_mut_ptr() } else { ptr::null_mut() };
    // SAFETY: every pointer is NULL or live as the contract requires.
    let status = unsafe {
        hk_validate(
            fx.validator,
            input.kind,
            key_ptr,
            key_len,
            scopes_ptr,
            scopes_len,
            opt_ptr(&ip),
            opt_ptr(&endpoint),
            out_ptr,
        )
    };

    // The status is known, and is the one the documented order gives.
    let raw = status as u32;
    let named = Status::from_code(i64::from(raw)).expect("a status the library knows");
    // SAFETY: the library returns a static C string.
    let name = unsafe { CStr::from_ptr(hk_status_name(raw)) }.to_str().expect("ASCII");
    assert_eq!(name, named.name());
    assert_eq!(hk_status_http(raw), named.http_status());
    let expected = match (kind, &required) {
        (None, _) => Status::Malformed,
        (Some(_), None) => Status::Forbidden,
        (Some(_), Some(_)) if format != Status::Valid => format,
        (Some(k), Some(required)) => match seeded {
            Some(s) if s.kind == k => s.refused.unwrap_or_else(|| {
                if s.scopes.first_missing(required).is_some() {
                    Status::Forbidden
                } else {
                    Status::Valid
                }
            }),
            _ => Status::NotFound,
        },
    };
    assert_eq!(named, expected, "hk_validate answered {name}");

    // `out`: untouched unless valid, then the matched credential.
    // SAFETY: our own buffer, read as bytes.
    let out_bytes = unsafe {
        std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), size_of::<hk_credential>())
    };
    if status != hk_status::HK_STATUS_VALID || !input.out {
        assert!(out_bytes.iter().all(|&b| b == CANARY), "out written on {name}");
    } else {
        let s = seeded.expect("valid means a seeded key");
        // SAFETY: a valid answer writes every field.
        let c = unsafe { out.assume_init() };
        assert_eq!((c.client_id, c.key_id, c.expires_at), (s.client_id, s.id, -1));
        assert_eq!(c.kind as u32, s.kind as u32);
        assert!(matches!(c.kind, hk_kind::HK_KIND_API_KEY | hk_kind::HK_KIND_AI_TOKEN));
        assert_eq!(c.scope_count as usize, s.scopes.as_slice().len());
        assert!(!c.name_truncated && !c.scopes_truncated);
        // SAFETY: NUL-terminated within the arrays (checked by the sizes).
        let (n, sc) = unsafe { (CStr::from_ptr(c.name.as_ptr()), CStr::from_ptr(c.scopes.as_ptr())) };
        assert!(n.to_bytes().len() < HK_NAME_MAX && sc.to_bytes().len() < HK_SCOPES_MAX);
        assert_eq!(n.to_str(), Ok(s.name));
        assert_eq!(sc.to_str().map(str::to_owned), Ok(s.scopes.to_stored()));
    }

    // The last error: copied out snprintf-style, never the key.
    let len = input.error_buf_len;
    let message = read_error(hk_last_error_message, len);
    let detail = read_error(hk_last_error_detail, len);
    if status == hk_status::HK_STATUS_VALID {
        assert!(message.is_empty(), "a valid answer clears the error");
    } else {
        assert!(!message.is_empty(), "no message for {name}");
    }
    // A well-formed key is what a real secret looks like (any shorter
    // garbage could be a phrase the messages contain anyway).
    let well_formed = Kind::ALL.iter().any(|&k| check_format(k, presented) == Status::Valid);
    if well_formed {
        let elsewhere = |s: &Option<CString>| {
            s.as_ref()
                .is_some_and(|s| s.as_bytes().windows(presented.len()).any(|w| w == presented))
        };
        if !scope_strings.iter().any(elsewhere) && !elsewhere(&ip) && !elsewhere(&endpoint) {
            for text in [&message, &detail] {
                assert!(
                    !text.as_bytes().windows(presented.len()).any(|w| w == presented),
                    "the key is in an error message: {text:?}"
                );
            }
        }
    }
});
