//! The key page's forms: rotate (answered with the new plaintext, once),
//! expiry, label, metadata, IP allowlist and rate limit. Each goes through
//! the core's store with the admin as actor, so the rule, the audit row and
//! the change-feed row are the core's; a refusal (bad input, a revoked key)
//! comes back to the key page as the core's message.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use heratio_keys_core::model::{check_expiry, now_ms, parse_duration};
use heratio_keys_core::{
    rotate as core_rotate, AllowedIps, CredentialInfo, ErrorKind, Kind, Metadata,
};
use maud::html;
use serde::Deserialize;

use crate::error::{AppError, Page};
use crate::extract::Admin;
use crate::params;
use crate::state::Shared;
use crate::views::{key_path, new_key, short_time, Nav};

/// Every field of every form here (each form sends its own few).
#[derive(Debug, Default, Deserialize)]
pub(super) struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    grace: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    allowed_ips: String,
    #[serde(default)]
    rate_limit: String,
}

/// Kind and id from the path (404 for anything else).
fn target(slug: &str, id: &str) -> Result<(Kind, i64), AppError> {
    Ok((params::kind(slug)?, params::id(id)?))
}

/// Back to the key page with a message.
fn back(
    app: &Shared,
    admin: &Admin,
    kind: Kind,
    id: i64,
    level: &'static str,
    text: String,
) -> Response {
    admin.flash(app, level, text);
    Redirect::to(&key_path(kind, id)).into_response()
}

/// The end of every change: the core's answer as a message on the key
/// page. Refusals the admin can act on (bad input, a revoked key) are
/// messages too; anything else is an error page.
fn finish(
    app: &Shared,
    admin: &Admin,
    kind: Kind,
    id: i64,
    result: Result<CredentialInfo, AppError>,
    said: impl FnOnce(&CredentialInfo) -> String,
) -> Page {
    match result {
        Ok(c) => Ok(back(app, admin, kind, id, "success", said(&c))),
        Err(AppError::Core(e))
            if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict) =>
        {
            Ok(back(app, admin, kind, id, "danger", e.message().to_owned()))
        }
        Err(e) => Err(e),
    }
}

/// The grace of a rotation: `0` (none) or a duration the core parses.
fn grace_ms(text: &str) -> Result<i64, String> {
    match text.trim() {
        "" | "0" => Ok(0),
        t => parse_duration(t).map_err(|e| e.message().to_owned()),
    }
}

pub(super) async fn rotate(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let (kind, id) = target(&slug, &id)?;
    let grace = match grace_ms(&form.grace) {
        Ok(g) => g,
        Err(m) => return Ok(back(&app, &admin, kind, id, "danger", m)),
    };
    let actor = admin.actor();
    let rotated = match app
        .store(move |s| core_rotate(s, kind, id, grace, &actor))
        .await
    {
        Ok(r) => r,
        Err(AppError::Core(e))
            if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict) =>
        {
            return Ok(back(
                &app,
                &admin,
                kind,
                id,
                "danger",
                e.message().to_owned(),
            ));
        }
        Err(e) => return Err(e),
    };
    let (info, old) = (&rotated.info, &rotated.replaced);
    let ends = old
        .expires_at
        .map_or_else(|| "never".to_owned(), short_time);
    let facts = html! {
        dt.col-sm-3 { "ID" } dd.col-sm-9 #new-key-id { (info.id) }
        dt.col-sm-3 { "Label" } dd.col-sm-9 { (info.name) }
        dt.col-sm-3 { "Scopes" } dd.col-sm-9 { code { (info.scopes.to_stored()) } }
        dt.col-sm-3 { "Replaces" }
        dd.col-sm-9 #replaces {
            a href=(key_path(kind, old.id)) { (kind.label()) " " (old.id) }
            " (" code { (old.display_prefix) "…" } "), which keeps working until "
            strong #old-expires { (ends) } " UTC"
        }
    };
    let heading = html! { "Rotated " (kind.label()) " " (old.id) };
    let body = new_key(
        kind,
        heading,
        rotated.key.expose(),
        facts,
        (&key_path(kind, info.id), "to the new key's page"),
    );
    Ok(admin.page(&app, Nav::Clients, &format!("New {}", kind.label()), body))
}

/// The expiry a form asks for: in a period, on a UTC date, never, or now
/// (ends it at once; unlike revoking, a later expiry undoes it). The first
/// two within the core's bounds.
fn expiry_choice(form: &EditForm, now: i64) -> Result<Option<i64>, String> {
    let at = match form.mode.trim() {
        "never" => return Ok(None),
        "now" => return Ok(Some(now)),
        "in" => now.saturating_add(
            parse_duration(form.duration.trim()).map_err(|e| e.message().to_owned())?,
        ),
        "at" => {
            params::date(&form.date).ok_or_else(|| "Choose a date (YYYY-MM-DD, UTC).".to_owned())?
        }
        _ => {
            return Err("Choose when it expires: in a period, on a date, never or now.".to_owned())
        }
    };
    check_expiry(at, now).map_err(|e| e.message().to_owned())?;
    Ok(Some(at))
}

pub(super) async fn expiry(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let (kind, id) = target(&slug, &id)?;
    let at = match expiry_choice(&form, now_ms()) {
        Ok(at) => at,
        Err(m) => return Ok(back(&app, &admin, kind, id, "danger", m)),
    };
    let actor = admin.actor();
    let r = app
        .store(move |s| s.set_credential_expiry(kind, id, at, &actor))
        .await;
    finish(&app, &admin, kind, id, r, |c| match c.expires_at {
        Some(e) => format!(
            "{} {} now expires at {} UTC.",
            kind.label(),
            c.id,
            short_time(e)
        ),
        None => format!("{} {} now never expires.", kind.label(), c.id),
    })
}

pub(super) async fn rename(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let (kind, id) = target(&slug, &id)?;
    let name = form.name.trim().to_owned();
    let actor = admin.actor();
    let r = app
        .store(move |s| s.rename_credential(kind, id, &name, &actor))
        .await;
    finish(&app, &admin, kind, id, r, |c| {
        format!("{} {} is now labelled {:?}.", kind.label(), c.id, c.name)
    })
}

pub(super) async fn metadata(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let (kind, id) = target(&slug, &id)?;
    let metadata = match optional(&form.metadata, str::is_empty, Metadata::parse) {
        Ok(m) => m,
        Err(why) => return Ok(back(&app, &admin, kind, id, "danger", why)),
    };
    let actor = admin.actor();
    let r = app
        .store(move |s| s.set_credential_metadata(kind, id, metadata.as_ref(), &actor))
        .await;
    finish(&app, &admin, kind, id, r, |c| match c.metadata {
        Some(_) => format!("Saved the metadata of {} {}.", kind.label(), c.id),
        None => format!("Removed the metadata of {} {}.", kind.label(), c.id),
    })
}

pub(super) async fn allowed_ips(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let (kind, id) = target(&slug, &id)?;
    let any = |t: &str| t.is_empty() || t.eq_ignore_ascii_case("any");
    let allowed = match optional(&form.allowed_ips, any, AllowedIps::parse) {
        Ok(a) => a,
        Err(why) => return Ok(back(&app, &admin, kind, id, "danger", why)),
    };
    let actor = admin.actor();
    let r = app
        .store(move |s| s.set_credential_allowed_ips(kind, id, allowed.as_ref(), &actor))
        .await;
    finish(&app, &admin, kind, id, r, |c| match &c.allowed_ips {
        Some(a) => format!(
            "{} {} may now be used from {} only.",
            kind.label(),
            c.id,
            a.to_stored()
        ),
        None => format!(
            "{} {} may now be used from any address.",
            kind.label(),
            c.id
        ),
    })
}

/// A rate limit from the form: empty or `none` is unlimited.
fn limit_choice(text: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    text.parse::<i64>()
        .map(Some)
        .map_err(|_| format!("{text:?} is not a number of requests per hour (or none)."))
}

pub(super) async fn rate_limit(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let (kind, id) = target(&slug, &id)?;
    let limit = match limit_choice(&form.rate_limit) {
        Ok(l) => l,
        Err(m) => return Ok(back(&app, &admin, kind, id, "danger", m)),
    };
    let actor = admin.actor();
    let r = app
        .store(move |s| s.set_credential_rate_limit(kind, id, limit, &actor))
        .await;
    finish(&app, &admin, kind, id, r, |c| match c.rate_limit {
        Some(n) => format!(
            "{} {} now accepts at most {n} requests per hour.",
            kind.label(),
            c.id
        ),
        None => format!("{} {} now has no rate limit.", kind.label(), c.id),
    })
}

/// A form field that clears a setting when `clears` says so (after
/// trimming), else is parsed by the core's rule; the refusal is the core's
/// message.
fn optional<T>(
    field: &str,
    clears: impl Fn(&str) -> bool,
    parse: impl Fn(&str) -> heratio_keys_core::Result<T>,
) -> Result<Option<T>, String> {
    let text = field.trim();
    if clears(text) {
        return Ok(None);
    }
    parse(text).map(Some).map_err(|e| e.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::model::DAY_MS;

    fn form(mode: &str, duration: &str, date: &str) -> EditForm {
        EditForm {
            mode: mode.to_owned(),
            duration: duration.to_owned(),
            date: date.to_owned(),
            ..EditForm::default()
        }
    }

    #[test]
    fn expiry_choices() {
        let now = 1_000 * DAY_MS;
        assert_eq!(expiry_choice(&form("never", "", ""), now), Ok(None));
        assert_eq!(expiry_choice(&form("now", "", ""), now), Ok(Some(now)));
        assert_eq!(
            expiry_choice(&form("in", "30d", ""), now),
            Ok(Some(now + 30 * DAY_MS))
        );
        assert_eq!(
            expiry_choice(&form("at", "", "1973-01-01"), now),
            Ok(Some(1096 * DAY_MS))
        );
        assert!(expiry_choice(&form("at", "", "1970-01-01"), now).is_err());
        assert!(expiry_choice(&form("in", "soon", ""), now).is_err());
        assert!(expiry_choice(&form("in", "36601d", ""), now).is_err());
        assert!(expiry_choice(&form("", "", ""), now).is_err());
    }

    #[test]
    fn graces_and_limits() {
        assert_eq!(grace_ms("0"), Ok(0));
        assert_eq!(grace_ms("24h"), Ok(DAY_MS));
        assert!(grace_ms("-1h").is_err());
        assert_eq!(limit_choice(" none "), Ok(None));
        assert_eq!(limit_choice(""), Ok(None));
        assert_eq!(limit_choice("100"), Ok(Some(100)));
        assert!(limit_choice("lots").is_err());
    }
}
