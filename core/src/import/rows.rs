//! One `ahg_api_key` row (and its AtoM `user`) mapped to what this store
//! keeps, or the reason it cannot be imported. Pure: no store, no clock.

use super::{
    ImportedKey, SourceKey, SourceUser, HERATIO_DEFAULT_RATE_LIMIT, PLACEHOLDER_EMAIL_DOMAIN,
};
use crate::format::{parse_digest_hex, KeyShape};
use crate::model::{check_rate_limit, is_scope_name, NewClient, Scopes, MAX_LABEL_LEN};
use serde_json::Value;

/// Parses a MySQL `DATETIME` as text (`YYYY-MM-DD HH:MM:SS`, a `T` also
/// accepted, optional fraction), naive UTC, to ms. `Ok(None)` for MySQL's
/// zero date.
///
/// # Errors
///
/// A message naming the column.
pub(super) fn parse_datetime(
    column: &str,
    text: &str,
) -> std::result::Result<Option<(i64, i64)>, String> {
    let bad = || format!("{column} {text:?} is not a date and time (YYYY-MM-DD HH:MM:SS)");
    let text = text.trim();
    if text.starts_with("0000-00-00") {
        return Ok(None);
    }
    let (date, time) = text.split_once([' ', 'T']).ok_or_else(bad)?;
    let (time, fraction) = time.split_once('.').unwrap_or((time, ""));
    let numbers = |part: &str, sep: char| -> Option<Vec<i64>> {
        part.split(sep).map(|n| n.parse::<i64>().ok()).collect()
    };
    let (Some(d), Some(t)) = (numbers(date, '-'), numbers(time, ':')) else {
        return Err(bad());
    };
    let (&[year, month, day], &[hour, minute, second]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let date = time::Date::from_calendar_date(
        i32::try_from(year).map_err(|_| bad())?,
        month,
        u8::try_from(day).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let time = time::Time::from_hms(
        u8::try_from(hour).map_err(|_| bad())?,
        u8::try_from(minute).map_err(|_| bad())?,
        u8::try_from(second).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let millis = if fraction.is_empty() {
        0
    } else if fraction.bytes().all(|c| c.is_ascii_digit()) {
        format!("{fraction:0<3}")[..3]
            .parse::<i64>()
            .map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    let seconds = time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    Ok(Some((seconds * 1000, millis)))
}

fn instant(column: &str, text: Option<&str>) -> std::result::Result<Option<i64>, String> {
    Ok(match text {
        None => None,
        Some(t) => parse_datetime(column, t)?.map(|(s, ms)| s + ms),
    })
}

/// Heratio's scopes, exactly: a JSON array of scope names, or none.
fn map_scopes(text: Option<&str>) -> std::result::Result<Scopes, String> {
    let none = Scopes::held(Vec::<String>::new()).map_err(|e| e.message().to_owned());
    let Some(text) = text else {
        return none;
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|_| "scopes is not JSON (expected an array of strings)".to_owned())?;
    let items = match value {
        Value::Null => return none,
        Value::Array(items) => items,
        _ => return Err("scopes is not a JSON array of strings".to_owned()),
    };
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(name) = item else {
            return Err("scopes is not a JSON array of strings".to_owned());
        };
        if name == "*" {
            // Heratio's middleware has no wildcard: `*` there matches only a
            // route requiring the scope `*`; here it would grant every scope.
            return Err(
                "scope \"*\" is a plain name in Heratio but grants every scope here".to_owned(),
            );
        }
        if !is_scope_name(&name) {
            return Err(format!(
                "scope {name:?} is not a valid scope name (1-64 of A-Z a-z 0-9 _ . : -)"
            ));
        }
        names.push(name);
    }
    Scopes::held(names).map_err(|e| e.message().to_owned())
}

/// The shape a Heratio key has, told from its first 8 characters: research
/// keys are `rk_` and 64 lowercase hex digits, `Str::random(48)` keys have
/// only `[A-Za-z0-9]` (no `_`), so the two never share a prefix.
fn map_shape(prefix: &str) -> std::result::Result<KeyShape, String> {
    let hex = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    if prefix.len() == 8 {
        if let Some(rest) = prefix.strip_prefix("rk_") {
            if hex(rest) {
                return Ok(KeyShape::HeratioResearch);
            }
        } else if prefix.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(KeyShape::HeratioRandom);
        }
    }
    Err(format!(
        "api_key_prefix {prefix:?} is neither a Str::random(48) key's nor a research key's (rk_ and hex), so the key could never be presented here"
    ))
}

fn map_name(id: i64, name: &str) -> std::result::Result<String, String> {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return Ok(format!("Heratio key {id}"));
    }
    if cleaned.chars().count() > MAX_LABEL_LEN {
        return Err(format!("name is longer than {MAX_LABEL_LEN} characters"));
    }
    Ok(cleaned.to_owned())
}

/// Maps one row, or says why it cannot be imported.
///
/// # Errors
///
/// The reason, which never contains the digest.
pub fn map_key(row: &SourceKey) -> std::result::Result<ImportedKey, String> {
    let digest = parse_digest_hex(&row.api_key).ok_or_else(|| {
        format!(
            "api_key is not a SHA-256 digest (64 hex digits; it has {} characters)",
            row.api_key.chars().count()
        )
    })?;
    let shape = map_shape(&row.api_key_prefix)?;
    let scopes = map_scopes(row.scopes.as_deref())?;
    let rate_limit = row.rate_limit.unwrap_or(HERATIO_DEFAULT_RATE_LIMIT);
    check_rate_limit(rate_limit)
        .map_err(|e| format!("rate_limit {rate_limit}: {}", e.message()))?;
    // Heratio expires a key when `expires_at < now` at second precision:
    // it is still accepted during the second `expires_at` names. Here a key
    // expires at the instant stored, so that instant is the second's end.
    let expires_at = match row.expires_at.as_deref() {
        None => None,
        Some(text) => Some(match parse_datetime("expires_at", text)? {
            Some((seconds, _)) => seconds + 1000,
            // The zero date compares below any time in Heratio: expired.
            None => 0,
        }),
    };
    Ok(ImportedKey {
        heratio_key_id: row.id,
        heratio_user_id: row.user_id,
        name: map_name(row.id, &row.name)?,
        digest,
        display_prefix: row.api_key_prefix.clone(),
        shape,
        scopes,
        rate_limit: Some(rate_limit),
        expires_at,
        active: row.is_active == Some(1),
        created_at: instant("created_at", row.created_at.as_deref())?,
        last_used_at: instant("last_used_at", row.last_used_at.as_deref())?,
    })
}

fn clean(text: Option<&str>) -> Option<&str> {
    text.map(str::trim)
        .filter(|t| !t.is_empty() && t.chars().count() <= 255 && !t.chars().any(char::is_control))
}

/// The client made for a Heratio user: named and addressed from AtoM's
/// `user` row where it has a usable `username` and `email`, else
/// `Heratio user <id>` and `heratio-user-<id>@heratio.invalid`.
#[must_use]
pub fn client_for_user(user_id: i64, user: Option<&SourceUser>) -> NewClient {
    let name = clean(user.and_then(|u| u.username.as_deref()))
        .map_or_else(|| format!("Heratio user {user_id}"), str::to_owned);
    let email = clean(user.and_then(|u| u.email.as_deref()))
        .filter(|e| e.contains('@'))
        .map_or_else(
            || format!("heratio-user-{user_id}@{PLACEHOLDER_EMAIL_DOMAIN}"),
            str::to_owned,
        );
    NewClient {
        name,
        email,
        organization: None,
    }
}
