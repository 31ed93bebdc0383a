//! `parse_rfc3339`, `parse_duration`, `check_expiry` and the renderings
//! `rfc3339` / `utc_date` on arbitrary input.
//!
//! Invariants:
//! - never panics;
//! - a parsed RFC 3339 time, rendered with `rfc3339()`, is the canonical
//!   `YYYY-MM-DDTHH:MM:SSZ` form and parses back to the same second;
//! - a parsed duration is in 1 s ..= `MAX_LIFETIME_MS`, a whole number of
//!   seconds, and `<n><unit>` parses to `n` times the unit exactly when that
//!   is in range;
//! - `check_expiry(at, now)` accepts exactly `now < at <= now + MAX_LIFETIME_MS`
//!   (computed without overflow), for any two `i64`.
#![no_main]

use heratio_keys_core::model::{
    check_expiry, parse_duration, parse_rfc3339, rfc3339, utc_date, DAY_MS, MAX_LIFETIME_MS,
};
use libfuzzer_sys::fuzz_target;

/// The input: `RFC3339 \n DURATION \n` then, as raw bytes (missing bytes
/// are zero), a count (u64), a unit (u8), `expires_at`, `now` and a time to
/// render (i64 each), little-endian. Seeds are readable text.
struct Input {
    rfc3339: String,
    duration: String,
    count: u64,
    unit: u8,
    spaces: bool,
    expires_at: i64,
    now: i64,
    render: i64,
}

impl Input {
    fn from_bytes(data: &[u8]) -> Input {
        let mut parts = data.splitn(3, |&b| b == b'\n');
        let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let (rfc3339, duration) = (text(), text());
        let rest = parts.next().unwrap_or_default();
        let mut numbers = [0u8; 33];
        let n = rest.len().min(numbers.len());
        numbers[..n].copy_from_slice(&rest[..n]);
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&numbers[at..at + 8]);
            w
        };
        Input {
            rfc3339,
            duration,
            count: u64::from_le_bytes(word(0)),
            unit: numbers[8] & 0x7f,
            spaces: numbers[8] & 0x80 != 0,
            expires_at: i64::from_le_bytes(word(9)),
            now: i64::from_le_bytes(word(17)),
            render: i64::from_le_bytes(word(25)),
        }
    }
}

const UNITS: [(&str, i64); 5] = [
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", DAY_MS),
    ("w", 7 * DAY_MS),
];

fn is_canonical(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fuzz_target!(|data: &[u8]| {
    let input = Input::from_bytes(data);
    if let Ok(ms) = parse_rfc3339(&input.rfc3339) {
        let text = rfc3339(ms);
        assert!(is_canonical(&text), "{:?} -> {ms} renders as {text:?}", input.rfc3339);
        assert_eq!(
            parse_rfc3339(&text).ok(),
            Some(ms.div_euclid(1000) * 1000),
            "{:?} -> {ms} -> {text:?} does not parse back to the same second",
            input.rfc3339
        );
    }

    if let Ok(ms) = parse_duration(&input.duration) {
        assert!(ms > 0 && ms <= MAX_LIFETIME_MS && ms % 1000 == 0, "{:?} -> {ms}", input.duration);
    }
    let (unit, unit_ms) = UNITS[usize::from(input.unit) % UNITS.len()];
    let text = if input.spaces {
        format!(" {} {unit} ", input.count)
    } else {
        format!("{}{unit}", input.count)
    };
    let expected = i128::from(input.count) * i128::from(unit_ms);
    let in_range = input.count > 0 && expected <= i128::from(MAX_LIFETIME_MS);
    match parse_duration(&text) {
        Ok(ms) => assert!(in_range && i128::from(ms) == expected, "{text:?} -> {ms}"),
        Err(_) => assert!(!in_range, "{text:?} refused"),
    }

    let ahead = i128::from(input.expires_at) - i128::from(input.now);
    assert_eq!(
        check_expiry(input.expires_at, input.now).is_ok(),
        ahead > 0 && ahead <= i128::from(MAX_LIFETIME_MS),
        "check_expiry({}, {})",
        input.expires_at,
        input.now
    );

    let _ = rfc3339(input.render);
    let _ = utc_date(input.render);
});
