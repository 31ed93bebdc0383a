//! `check_format` (the offline check every binding runs first) on arbitrary
//! bytes, for both kinds, and the digest helpers.
//!
//! Invariants:
//! - never panics, whatever the bytes (non-UTF-8, NUL, any length);
//! - `Valid` implies exactly the kind's length, its prefix, base62 body and
//!   checksum characters, and the checksum those characters must have;
//! - `WrongKind` for one kind is exactly `Valid` for the other; no input is
//!   valid for both;
//! - a key built from the input (body mapped onto the alphabet, checksum
//!   computed) is `Valid`, and changing any one of its bytes makes it not
//!   `Valid` (CRC32 detects every single-byte error, and 6 base62 digits
//!   encode a 32-bit value uniquely);
//! - `digest` / `digest_hex` / `parse_digest_hex` round-trip.
#![no_main]

use heratio_keys_core::format::{
    check_format, checksum, digest, digest_hex, parse_digest_hex, Kind, BODY_LEN, CHECKSUM_LEN,
};
use heratio_keys_core::Status;
use libfuzzer_sys::fuzz_target;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn is_base62(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn check_invariants(kind: Kind, key: &[u8]) -> Status {
    let status = check_format(kind, key);
    let other = check_format(kind.other(), key);
    match status {
        Status::Valid => {
            let prefix = kind.prefix().as_bytes();
            assert_eq!(key.len(), kind.key_len());
            assert!(key.starts_with(prefix));
            assert!(key[prefix.len()..].iter().all(|&c| is_base62(c)));
            let (signed, check) = key.split_at(key.len() - CHECKSUM_LEN);
            assert_eq!(&checksum(signed)[..], check);
            assert_eq!(other, Status::WrongKind, "valid for both kinds");
        }
        Status::WrongKind => assert_eq!(other, Status::Valid),
        Status::Malformed => assert_ne!(other, Status::Valid),
        s => panic!("check_format answered {s:?}"),
    }
    status
}

fuzz_target!(|data: &[u8]| {
    for kind in Kind::ALL {
        check_invariants(kind, data);
    }

    // A well-formed key from the input, then every single-byte change of it
    // (bounded: the first bytes of the input choose positions and values).
    let kind = if data.first().is_some_and(|b| b & 1 == 1) {
        Kind::AiToken
    } else {
        Kind::ApiKey
    };
    let mut key = kind.prefix().as_bytes().to_vec();
    key.extend((0..BODY_LEN).map(|i| {
        let b = data.get(i + 1).copied().unwrap_or(0);
        ALPHABET[usize::from(b) % ALPHABET.len()]
    }));
    let sum = checksum(&key);
    key.extend_from_slice(&sum);
    assert_eq!(check_invariants(kind, &key), Status::Valid);
    for pair in data.get(BODY_LEN + 1..).unwrap_or(&[]).chunks_exact(2).take(16) {
        let at = usize::from(pair[0]) % key.len();
        if key[at] == pair[1] {
            continue;
        }
        let mut changed = key.clone();
        changed[at] = pair[1];
        assert_ne!(
            check_invariants(kind, &changed),
            Status::Valid,
            "a one-byte change at {at} went undetected"
        );
    }

    let d = digest(data);
    let hex = digest_hex(&d);
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    assert_eq!(parse_digest_hex(&hex), Some(d));
    assert_eq!(parse_digest_hex(&hex.to_ascii_uppercase()), Some(d));
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(parsed) = parse_digest_hex(text) {
            assert_eq!(digest_hex(&parsed), text.to_ascii_lowercase());
        }
        let _ = text.parse::<Kind>();
    }
});
