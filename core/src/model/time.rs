//! Time as the store keeps it (milliseconds since the Unix epoch, UTC, from
//! the application clock so both back ends agree), its RFC 3339 text form,
//! durations such as `90d`, and the one rule for how far ahead an expiry
//! may be set.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds in one hour (rate limits count per clock hour).
pub const HOUR_MS: i64 = 3_600_000;

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// The longest lifetime an expiry may give a credential (about 100 years):
/// anything further ahead is a typo, and the bound keeps every timestamp
/// far from integer overflow.
pub const MAX_LIFETIME_MS: i64 = 100 * 366 * DAY_MS;

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `YYYY-MM-DD` of the UTC day containing `ms`.
#[must_use]
pub fn utc_date(ms: i64) -> String {
    let d = datetime(ms).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// RFC 3339 UTC rendering of `ms`, second precision (`2026-11-23T11:34:27Z`).
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    // Saturating: near i64::MIN the product overflowed (found by the `time`
    // fuzz target); such a time is out of range and renders as the epoch.
    let t = datetime(ms.div_euclid(1000).saturating_mul(1000));
    t.format(&Rfc3339)
        .unwrap_or_else(|_| format!("{}T00:00:00Z", utc_date(ms)))
}

/// Parses an RFC 3339 timestamp (`2027-01-31T00:00:00Z`,
/// `2027-01-31T01:00:00+01:00`, fractional seconds allowed) to milliseconds.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the
/// expected form (and quoting the input, which is never a secret here).
pub fn parse_rfc3339(text: &str) -> Result<i64> {
    let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        Error::invalid_input(format!(
            "{text:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"
        ))
    })?;
    // Only a time whose UTC date has a year 0000-9999 can be written back
    // in RFC 3339 (by `rfc3339`, the CLI, the web): `9999-12-31T23:59:59-01:00`
    // is in the year 10000 in UTC.
    let utc_year = OffsetDateTime::from_unix_timestamp(parsed.unix_timestamp()).map(|t| t.year());
    if !matches!(utc_year, Ok(0..=9999)) {
        return Err(Error::invalid_input(format!(
            "{text:?} is out of range (years 0000 to 9999 in UTC)"
        )));
    }
    i64::try_from(parsed.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| Error::invalid_input(format!("{text:?} is out of range")))
}

/// Parses a duration such as `90d`, `12h`, `30m`, `45s` or `2w` into
/// milliseconds: greater than zero and at most [`MAX_LIFETIME_MS`].
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) saying what
/// is accepted.
pub fn parse_duration(text: &str) -> Result<i64> {
    let bad = || {
        Error::invalid_input(format!(
            "invalid duration {text:?}: use a number and a unit s, m, h, d or w, e.g. 90d or 12h"
        ))
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(bad)?;
    let (digits, unit) = trimmed.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let unit_ms: i64 = match unit.trim() {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(Error::invalid_input("a duration must be greater than zero"));
    }
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= MAX_LIFETIME_MS)
        .ok_or_else(|| {
            Error::invalid_input(format!("duration {text:?} is too long (100 years at most)"))
        })
}

/// Checks an expiry time against `now`: strictly in the future and at most
/// [`MAX_LIFETIME_MS`] ahead. Every interface that sets an expiry calls this.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
pub fn check_expiry(expires_at: i64, now: i64) -> Result<()> {
    if expires_at <= now {
        return Err(Error::invalid_input("the expiry time is in the past"));
    }
    // Saturating: `expires_at - now` overflows for far-apart values (found
    // by the `time` fuzz target).
    if expires_at.saturating_sub(now) > MAX_LIFETIME_MS {
        return Err(Error::invalid_input(
            "the expiry time is too far ahead (100 years at most)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(1_795_000_000_999), "2026-11-18T11:06:40Z");
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40Z").unwrap(),
            1_795_000_000_000
        );
        assert_eq!(
            parse_rfc3339("2026-11-18T12:06:40.5+01:00").unwrap(),
            1_795_000_000_500
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z").unwrap() % DAY_MS, 0);
        assert!(parse_rfc3339("2023-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("tomorrow").is_err());
    }

    /// Found with the `time` fuzz target's invariant (a parsed time renders
    /// back to the same second): times whose UTC year leaves 0000-9999 were
    /// accepted and rendered as 1970 or as `-001-…`; and rendering a time
    /// near `i64::MIN` overflowed.
    #[test]
    fn parsed_times_render_back_and_any_time_renders() {
        for text in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+01:00"] {
            assert!(parse_rfc3339(text).is_err(), "{text}");
        }
        for text in ["9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z"] {
            let ms = parse_rfc3339(text).unwrap();
            assert_eq!(rfc3339(ms), text);
        }
        for ms in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let _ = rfc3339(ms);
            let _ = utc_date(ms);
        }
    }

    #[test]
    fn non_ascii_times_are_errors_not_panics() {
        for text in [
            "2027-01-31T00:00:00+0é00",
            "2027-01-31T00:00:00é",
            "é",
            "２０２７",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d").unwrap(), 90 * DAY_MS);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3_600_000);
        assert_eq!(parse_duration("2w").unwrap(), 14 * DAY_MS);
        assert_eq!(parse_duration("45s").unwrap(), 45_000);
        for bad in [
            "",
            "d",
            "90",
            "0d",
            "-1d",
            "1y",
            "99999999999999999d",
            "1.5h",
            "5é",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_bounds() {
        let now = 1_000 * DAY_MS;
        assert!(check_expiry(now + 1, now).is_ok());
        assert!(check_expiry(now, now).is_err());
        assert!(check_expiry(now + MAX_LIFETIME_MS, now).is_ok());
        assert!(check_expiry(now + MAX_LIFETIME_MS + 1, now).is_err());
    }

    /// Found by the `time` fuzz target: the distance overflowed (a panic in
    /// debug builds, a wrapped negative distance and `Ok` in release).
    #[test]
    fn expiry_bounds_hold_for_any_two_times() {
        assert!(check_expiry(i64::MAX, -1).is_err());
        assert!(check_expiry(i64::MAX, i64::MIN).is_err());
        assert!(check_expiry(0, i64::MIN).is_err());
        assert!(check_expiry(i64::MIN + 1, i64::MIN).is_ok());
    }
}
