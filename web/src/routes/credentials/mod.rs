//! API keys and AI tokens: generation (`POST /clients/ID/generate/KIND`,
//! answered with the one page that ever shows the plaintext), the key page
//! (`/credentials/KIND/ID`, in `page`), its forms (rotate, expiry, rename,
//! metadata, allowlist, rate limit, in `edit`) and revocation with its
//! confirmation (`/credentials/KIND/ID/revoke`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use heratio_keys_core::model::{check_expiry, now_ms, parse_duration};
use heratio_keys_core::{issue, ErrorKind, IssueRequest, Scopes};
use maud::html;
use serde::Deserialize;

use crate::access::{Routes, OPERATOR, VIEWER};
use crate::error::{AppError, Page};
use crate::extract::{Admin, CsrfForm};
use crate::params;
use crate::state::Shared;
use crate::views::{csrf_field, key_path, new_key, section_id, short_time, Nav};

mod edit;
mod page;

pub(crate) fn router() -> Routes {
    Routes::new()
        .post("/clients/{id}/generate/{kind}", OPERATOR, generate)
        .get("/credentials/{kind}/{id}", VIEWER, page::key_page)
        .post("/credentials/{kind}/{id}/rotate", OPERATOR, edit::rotate)
        .post("/credentials/{kind}/{id}/expiry", OPERATOR, edit::expiry)
        .post("/credentials/{kind}/{id}/rename", OPERATOR, edit::rename)
        .post(
            "/credentials/{kind}/{id}/metadata",
            OPERATOR,
            edit::metadata,
        )
        .post(
            "/credentials/{kind}/{id}/allowed-ips",
            OPERATOR,
            edit::allowed_ips,
        )
        .post(
            "/credentials/{kind}/{id}/rate-limit",
            OPERATOR,
            edit::rate_limit,
        )
        .get("/credentials/{kind}/{id}/revoke", OPERATOR, revoke_confirm)
        .post("/credentials/{kind}/{id}/revoke", OPERATOR, revoke)
}

#[derive(Debug, Deserialize)]
struct GenerateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    expires_on: String,
}

/// The expiry the form asks for: none, a period from now (a duration as
/// the core parses it) or the start of a UTC date; within the core's bounds.
fn expiry(form: &GenerateForm, now: i64) -> Result<Option<i64>, String> {
    let date = form.expires_on.trim();
    let at = match form.expires.trim() {
        "" | "never" if date.is_empty() => return Ok(None),
        "" | "never" | "date" => params::date(date)
            .ok_or_else(|| "Choose an expiry date (YYYY-MM-DD), or \"never\".".to_owned())?,
        period => {
            if !date.is_empty() {
                return Err("Choose either a period or a date, not both.".to_owned());
            }
            let ms = parse_duration(period).map_err(|e| e.message().to_owned())?;
            now.saturating_add(ms)
        }
    };
    check_expiry(at, now).map_err(|e| e.message().to_owned())?;
    Ok(Some(at))
}

async fn generate(
    State(app): State<Shared>,
    admin: Admin,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<GenerateForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let client_id = params::id(&id)?;
    let kind = params::kind(&slug)?;
    let back = format!("/clients/{client_id}#{}", section_id(kind));
    let scopes_text = form.scopes.trim();
    let scopes = if scopes_text.is_empty() {
        Ok(Scopes::all())
    } else {
        Scopes::parse(scopes_text).map_err(|e| e.message().to_owned())
    };
    let request = scopes.and_then(|scopes| {
        Ok(IssueRequest {
            client_id,
            name: form.name.trim().to_owned(),
            scopes,
            expires_at: expiry(&form, now_ms())?,
            rate_limit: None,
            metadata: None,
        })
    });
    let request = match request {
        Ok(r) => r,
        Err(message) => {
            admin.flash(&app, "danger", message);
            return Ok(Redirect::to(&back).into_response());
        }
    };
    let actor = admin.actor();
    let issued = match app.store(move |s| issue(s, kind, &request, &actor)).await {
        Ok(i) => i,
        Err(AppError::Core(e))
            if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict) =>
        {
            admin.flash(&app, "danger", e.message().to_owned());
            return Ok(Redirect::to(&back).into_response());
        }
        Err(e) => return Err(e),
    };
    let info = &issued.info;
    let facts = html! {
        dt.col-sm-3 { "ID" } dd.col-sm-9 #new-key-id { (info.id) }
        dt.col-sm-3 { "Label" } dd.col-sm-9 { (info.name) }
        dt.col-sm-3 { "Scopes" } dd.col-sm-9 { code { (info.scopes.to_stored()) } }
        dt.col-sm-3 { "Expires (UTC)" } dd.col-sm-9 { (info.expires_at.map_or_else(|| "never".to_owned(), short_time)) }
    };
    let heading = html! { "New " (kind.label()) " for client " (info.client_id) };
    let body = new_key(
        kind,
        heading,
        issued.key.expose(),
        facts,
        (&back, "back to the client"),
    );
    Ok(admin.page(&app, Nav::Clients, &format!("New {}", kind.label()), body))
}

async fn revoke_confirm(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
) -> Page {
    let kind = params::kind(&slug)?;
    let id = params::id(&id)?;
    let (c, client) = app
        .store(move |s| {
            let c = s.get_credential(kind, id)?;
            let client = s.get_client(c.client_id)?;
            Ok((c, client))
        })
        .await?;
    if !c.active {
        admin.flash(
            &app,
            "info",
            format!("{} {} is already revoked.", kind.label(), c.id),
        );
        return Ok(Redirect::to(&format!("/clients/{}", c.client_id)).into_response());
    }
    let body = html! {
        div.row.justify-content-center {
            div.col-lg-7 {
                div.card.border-danger {
                    div.card-header.text-bg-danger { "Revoke " (kind.label()) }
                    div.card-body {
                        p.lead {
                            "Revoke " (kind.label()) " " strong { a href=(key_path(kind, c.id)) { (c.id) } } " ("
                            code { (c.display_prefix) "…" } ", " (c.name) ") of client "
                            a href={ "/clients/" (client.id) } { (client.name) } "?"
                        }
                        p { "Every validating process refuses it within about a second. This cannot be undone." }
                        form.d-flex.gap-2 method="post" action={ "/credentials/" (slug) "/" (c.id) "/revoke" } {
                            (csrf_field(&admin.csrf))
                            button.btn.btn-danger type="submit" #confirm-revoke { "Revoke" }
                            a.btn.btn-outline-secondary href={ "/clients/" (client.id) } { "Cancel" }
                        }
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Clients, "Revoke", body))
}

async fn revoke(
    State(app): State<Shared>,
    admin: Admin,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let kind = params::kind(&slug)?;
    let id = params::id(&id)?;
    let actor = admin.actor();
    match app
        .store(move |s| s.revoke_credential(kind, id, &actor))
        .await
    {
        Ok(c) => {
            admin.flash(
                &app,
                "success",
                format!(
                    "Revoked {} {} ({}…, {}).",
                    kind.label(),
                    c.id,
                    c.display_prefix,
                    c.name
                ),
            );
            Ok(
                Redirect::to(&format!("/clients/{}#{}", c.client_id, section_id(kind)))
                    .into_response(),
            )
        }
        Err(AppError::Core(e)) if e.kind() == ErrorKind::Conflict => {
            admin.flash(&app, "info", e.message().to_owned());
            let client = app
                .store(move |s| s.get_credential(kind, id))
                .await?
                .client_id;
            Ok(Redirect::to(&format!("/clients/{client}")).into_response())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heratio_keys_core::model::{parse_rfc3339, DAY_MS};

    #[test]
    fn expiry_choices() {
        let form = |expires: &str, on: &str| GenerateForm {
            csrf: String::new(),
            name: String::new(),
            scopes: String::new(),
            expires: expires.to_owned(),
            expires_on: on.to_owned(),
        };
        let now = 1_000 * DAY_MS;
        assert_eq!(expiry(&form("never", ""), now), Ok(None));
        assert_eq!(expiry(&form("30d", ""), now), Ok(Some(now + 30 * DAY_MS)));
        assert_eq!(
            expiry(&form("date", "1973-01-01"), now),
            Ok(Some(parse_rfc3339("1973-01-01T00:00:00Z").unwrap()))
        );
        assert!(expiry(&form("date", "1970-01-01"), now).is_err());
        assert!(expiry(&form("date", ""), now).is_err());
        assert!(expiry(&form("30d", "1973-01-01"), now).is_err());
        assert!(expiry(&form("1y", ""), now).is_err());
        // The core's bounds, not a list of periods: any duration up to
        // about 100 years, never a date further ahead.
        assert_eq!(expiry(&form("12h", ""), now), Ok(Some(now + DAY_MS / 2)));
        assert_eq!(
            expiry(&form("3661d", ""), now),
            Ok(Some(now + 3661 * DAY_MS))
        );
        assert!(expiry(&form("36601d", ""), now).is_err());
        assert!(expiry(&form("date", "2199-01-01"), now).is_err());
    }
}
