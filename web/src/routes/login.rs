//! `/login` and `/logout`: checking a password against the core's
//! `admin_user` row, starting and ending sessions, throttling guessers, and
//! writing each login, failure, lock-out and logout to the audit log.
//! Password checks are bounded (see `password::Checks`); a login over that
//! bound is answered 503 at once.
//!
//! The login form has no session to hold its CSRF token, so it
//! double-submits one: a cookie and a hidden field that must match.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use heratio_keys_core::{Actor, Source};
use maud::{html, Markup};
use serde::Deserialize;

use crate::access::{Routes, PUBLIC, VIEWER};
use crate::error::{AppError, Page};
use crate::extract::{Admin, ClientIp, CsrfForm};
use crate::session::cookie::{
    cookie, login_cookie, random_token, session_cookie, set_cookie, token_eq,
};
use crate::session::{Account, Begin};
use crate::state::Shared;
use crate::views::standalone;

pub(crate) fn router() -> Routes {
    Routes::new()
        .get("/login", PUBLIC, login_page)
        .post("/login", PUBLIC, login_submit)
        .post("/logout", VIEWER, logout)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn login_markup(csrf: &str, error: Option<&str>, username: &str) -> Markup {
    standalone(
        "Log in",
        Some("bg-body-tertiary"),
        html! {
            main.container {
                div.row.justify-content-center {
                    div.col-12.col-sm-9.col-md-6.col-lg-4 {
                        h1.h3.mt-5.mb-4.text-center { "Heratio keys" }
                        div.card.shadow-sm {
                            div.card-body.p-4 {
                                h2.h5.card-title.mb-3 { "Administrator log in" }
                                @if let Some(e) = error {
                                    div.alert.alert-danger role="alert" #login-error { (e) }
                                }
                                form method="post" action="/login" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    div.mb-3 {
                                        label.form-label for="username" { "User name" }
                                        input.form-control #username name="username" type="text"
                                            autocomplete="username" required autofocus value=(username);
                                    }
                                    div.mb-3 {
                                        label.form-label for="password" { "Password" }
                                        input.form-control #password name="password" type="password"
                                            autocomplete="current-password" required;
                                    }
                                    button.btn.btn-primary.w-100 type="submit" { "Log in" }
                                }
                            }
                        }
                        p.text-muted.small.text-center.mt-3 {
                            "Accounts are created with " code { "keygen admin:create USER" } "."
                        }
                    }
                }
            }
        },
    )
}

/// The login page with a fresh form token (and its cookie).
fn login_response(
    app: &Shared,
    status: StatusCode,
    error: Option<&str>,
    username: &str,
) -> Response {
    let Some(token) = random_token() else {
        return AppError::Internal.into_response();
    };
    let mut resp = (
        status,
        Html(login_markup(&token, error, username).into_string()),
    )
        .into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app.config, login_cookie(&app.config), &token, 3600),
    );
    resp
}

async fn login_page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if app.sessions.current(&app.config, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_response(&app, StatusCode::OK, None, "")
}

/// Writes a login, failed login, lock-out or logout to the audit log. A
/// failure to audit is reported on stderr but does not block the login:
/// the store being down already refuses logins on its own.
async fn audit_auth(app: &Shared, username: &str, ip: &str, action: &'static str) {
    audit_auth_detail(app, username, ip, action, None).await;
}

async fn audit_auth_detail(
    app: &Shared,
    username: &str,
    ip: &str,
    action: &'static str,
    detail: Option<&'static str>,
) {
    let actor = Actor {
        name: username.to_owned(),
        source: Source::Web,
        ip: Some(ip.to_owned()),
    };
    let recorded = app
        .store(move |store| store.record_audit(&actor, action, "admin_user", None, detail))
        .await;
    if recorded.is_err() {
        eprintln!("keygen serve: cannot write {action} to the audit log");
    }
}

/// The login page refusing an attempt without checking its password:
/// `status` 429 (locked out) or 503 (busy), with `Retry-After`.
fn refused(
    app: &Shared,
    status: StatusCode,
    wait: Duration,
    message: &str,
    username: &str,
) -> Response {
    let mut resp = login_response(app, status, Some(message), username);
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn busy(app: &Shared, username: &str) -> Response {
    refused(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(1),
        "The server is busy checking other logins. Try again in a moment.",
        username,
    )
}

async fn login_submit(
    State(app): State<Shared>,
    client: ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let username = form.username.trim().to_owned();
    let ip = client.text();
    let expected = cookie(&headers, login_cookie(&app.config)).unwrap_or_default();
    if !token_eq(&form.csrf, &expected) {
        return login_response(
            &app,
            StatusCode::FORBIDDEN,
            Some("The login form expired. Please try again."),
            &username,
        );
    }
    // Counted before the password is checked, so parallel guesses cannot
    // all pass the limit while their checks run.
    let attempt = match app.throttle.begin(&app.config, &username, client.source()) {
        Begin::Go(attempt) => attempt,
        Begin::Locked { wait, report } => {
            app.metrics.login_refused_locked.inc();
            eprintln!("keygen serve: login refused (locked out) for {username:?} from {ip}");
            // Once per lock-out: a locked-out source retrying cannot grow
            // the audit log (standard error still has every refusal).
            if report {
                app.metrics.login_lockouts.inc();
                audit_auth(&app, &username, &ip, "admin.login_locked_out").await;
            }
            let minutes = wait.as_secs().div_ceil(60).max(1);
            let message = format!(
                "Too many failed logins. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            );
            return refused(
                &app,
                StatusCode::TOO_MANY_REQUESTS,
                wait,
                &message,
                &username,
            );
        }
        Begin::Full => {
            app.metrics.login_refused_busy.inc();
            eprintln!(
                "keygen serve: login refused (throttle table full) for {username:?} from {ip}"
            );
            return busy(&app, &username);
        }
    };
    let Some(permit) = app.checks.try_start() else {
        app.throttle.cancel(&app.config, attempt);
        app.metrics.login_refused_busy.inc();
        eprintln!("keygen serve: login refused (password checks busy) for {username:?} from {ip}");
        return busy(&app, &username);
    };
    let name = username.clone();
    let found = match app.store(move |s| s.find_admin(&name)).await {
        Ok(found) => found,
        Err(e) => {
            app.throttle.cancel(&app.config, attempt);
            eprintln!("keygen serve: login: {e}");
            return login_response(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The database is unavailable. Try again shortly."),
                &username,
            );
        }
    };
    // An unknown user is checked against a dummy hash, so both failures
    // take as long as each other.
    let hash = found
        .as_ref()
        .map_or_else(|| app.dummy_hash.clone(), |a| a.password_hash.clone());
    let matched = app.checks.verify(permit, form.password, hash).await;
    let account = match found {
        Some(found) if matched && found.account.active => found.account,
        // A disabled account gets the answer a wrong password gets: the
        // page must not confirm its password to whoever is trying it. The
        // audit row says why, for the administrators.
        Some(_) if matched => {
            app.metrics.login_failures.inc();
            eprintln!("keygen serve: refused login of disabled account {username:?} from {ip}");
            audit_auth_detail(
                &app,
                &username,
                &ip,
                "admin.login_failed",
                Some("account disabled"),
            )
            .await;
            return login_response(
                &app,
                StatusCode::UNAUTHORIZED,
                Some("Wrong user name or password."),
                &username,
            );
        }
        _ => {
            app.metrics.login_failures.inc();
            eprintln!("keygen serve: failed login for {username:?} from {ip}");
            audit_auth(&app, &username, &ip, "admin.login_failed").await;
            return login_response(
                &app,
                StatusCode::UNAUTHORIZED,
                Some("Wrong user name or password."),
                &username,
            );
        }
    };
    app.throttle.succeeded(&app.config, attempt);
    let Some(session) = app.sessions.create(
        &account.username,
        Account {
            id: account.id,
            updated_at: account.updated_at,
        },
        app.config.session_lifetime,
        app.config.session_idle,
    ) else {
        return AppError::Internal.into_response();
    };
    let id = account.id;
    if let Err(e) = app.store(move |s| s.record_admin_login(id)).await {
        eprintln!("keygen serve: cannot record the login time: {e}");
    }
    eprintln!("keygen serve: {:?} logged in from {ip}", account.username);
    audit_auth(&app, &account.username, &ip, "admin.login").await;
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &app.config,
            session_cookie(&app.config),
            &session,
            app.config.session_lifetime.as_secs(),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&app.config, login_cookie(&app.config), "", 0),
    );
    resp
}

async fn logout(State(app): State<Shared>, admin: Admin, Form(form): Form<CsrfForm>) -> Page {
    admin.check_csrf(&form.csrf)?;
    app.sessions.remove(&admin.session_id);
    audit_auth(&app, &admin.user, &admin.ip, "admin.logout").await;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app.config, session_cookie(&app.config), "", 0),
    );
    Ok(resp)
}
