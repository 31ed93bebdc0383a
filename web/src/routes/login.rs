//! Login, logout, sessions, CSRF tokens and login throttling.
//!
//! Sessions live in memory: a random 256-bit id in an HttpOnly,
//! SameSite=Strict cookie (`Secure` and the `__Host-` prefix with
//! `secure_cookies`), an absolute lifetime and an idle timeout, and a
//! per-session CSRF token that every form carries. A restart logs everyone
//! out, which is the safe failure. The login form has its own CSRF token
//! (double-submit: a cookie and a hidden field that must match).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use heratio_keys_core::{Actor, Source};
use serde::Deserialize;

use crate::admin::{validate_username, verify_password, MAX_PASSWORD_LEN};
use crate::app::{AppError, ClientIp, Shared};
use crate::util::{cookie, random_token, token_eq};
use crate::views;

/// Most sessions kept at once (expired ones are pruned first).
const MAX_SESSIONS: usize = 10_000;
/// Most throttling entries kept at once.
const MAX_THROTTLE_ENTRIES: usize = 100_000;

/// A one-shot message shown on the next page.
#[derive(Debug, Clone)]
pub(crate) struct Flash {
    pub level: &'static str,
    pub text: String,
}

#[derive(Debug)]
struct Session {
    user: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
    flash: Vec<Flash>,
}

/// The in-memory session table.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create(&self, user: &str, lifetime: Duration, idle: Duration) -> Option<String> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| live(s, now, lifetime, idle));
            if map.len() >= MAX_SESSIONS {
                // Drop the least recently used session.
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                csrf,
                created: now,
                last_seen: now,
                flash: Vec::new(),
            },
        );
        Some(id)
    }

    /// The user and CSRF token of a live session, refreshing its idle timer.
    fn touch(&self, id: &str, lifetime: Duration, idle: Duration) -> Option<(String, String)> {
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(id)?;
        if !live(session, now, lifetime, idle) {
            map.remove(id);
            return None;
        }
        session.last_seen = now;
        Some((session.user.clone(), session.csrf.clone()))
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub(crate) fn push_flash(&self, id: &str, level: &'static str, text: String) {
        if let Some(s) = self.lock().get_mut(id) {
            s.flash.push(Flash { level, text });
        }
    }

    pub(crate) fn take_flash(&self, id: &str) -> Vec<Flash> {
        self.lock()
            .get_mut(id)
            .map(|s| std::mem::take(&mut s.flash))
            .unwrap_or_default()
    }
}

fn live(s: &Session, now: Instant, lifetime: Duration, idle: Duration) -> bool {
    now.duration_since(s.created) < lifetime && now.duration_since(s.last_seen) < idle
}

#[derive(Debug)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Failed-login counters per user name and per client IP.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    map: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long the longest lock-out among `keys` still lasts.
    fn locked(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let map = self.lock();
        keys.iter()
            .filter_map(|k| map.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    fn fail(&self, keys: &[String], max: u32, window: Duration, lockout: Duration) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_THROTTLE_ENTRIES {
            map.retain(|_, f| {
                now.duration_since(f.first) < window.max(lockout)
                    || f.locked_until.is_some_and(|u| u > now)
            });
        }
        for key in keys {
            let f = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                first: now,
                locked_until: None,
            });
            if now.duration_since(f.first) >= window && f.locked_until.is_none_or(|u| u <= now) {
                *f = Failures {
                    count: 0,
                    first: now,
                    locked_until: None,
                };
            }
            f.count += 1;
            if f.count >= max {
                f.locked_until = Some(now + lockout);
            }
        }
    }

    fn clear(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Name of the session cookie.
pub(crate) fn session_cookie(app: &Shared) -> &'static str {
    if app.config.secure_cookies {
        "__Host-hk_session"
    } else {
        "hk_session"
    }
}

/// Name of the login form's CSRF cookie.
fn login_cookie(app: &Shared) -> &'static str {
    if app.config.secure_cookies {
        "__Host-hk_login"
    } else {
        "hk_login"
    }
}

fn set_cookie(app: &Shared, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if app.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A logged-in administrator (the extractor redirects to `/login` otherwise).
#[derive(Debug)]
pub(crate) struct Admin {
    pub user: String,
    pub csrf: String,
    pub ip: String,
    pub session_id: String,
}

impl Admin {
    /// The audit-log actor: this admin, from the web, at this IP.
    pub(crate) fn actor(&self) -> Actor {
        Actor {
            name: self.user.clone(),
            source: Source::Web,
            ip: Some(self.ip.clone()),
        }
    }

    /// Checks a form's CSRF token against the session's.
    pub(crate) fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        if token_eq(token, &self.csrf) {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }

    pub(crate) fn flash(&self, app: &Shared, level: &'static str, text: String) {
        app.sessions.push_flash(&self.session_id, level, text);
    }

    pub(crate) fn take_flash(&self, app: &Shared) -> Vec<Flash> {
        app.sessions.take_flash(&self.session_id)
    }
}

fn current_session(app: &Shared, headers: &HeaderMap) -> Option<(String, String, String)> {
    let id = cookie(headers, session_cookie(app))?;
    let (user, csrf) =
        app.sessions
            .touch(&id, app.config.session_lifetime, app.config.session_idle)?;
    Some((id, user, csrf))
}

impl FromRequestParts<Shared> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Response> {
        match current_session(app, &parts.headers) {
            Some((session_id, user, csrf)) => Ok(Admin {
                user,
                csrf,
                ip: app.ip_of(&parts.extensions, &parts.headers),
                session_id,
            }),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

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
        axum::response::Html(views::login(&token, error, username).into_string()),
    )
        .into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(app, login_cookie(app), &token, 3600),
    );
    resp
}

pub(crate) async fn login_page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if current_session(&app, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_response(&app, StatusCode::OK, None, "")
}

/// Writes a login, failed login, lock-out or logout to the audit log. A
/// failure to audit is reported on stderr but does not block the login:
/// the store being down already refuses logins on its own.
async fn audit_auth(app: &Shared, username: &str, ip: &str, action: &'static str) {
    let actor = Actor {
        name: username.to_owned(),
        source: Source::Web,
        ip: Some(ip.to_owned()),
    };
    let recorded = app
        .store(move |store| store.record_audit(&actor, action, "admin_user", None, None))
        .await;
    if recorded.is_err() {
        eprintln!("keygen serve: cannot write {action} to the audit log");
    }
}

pub(crate) async fn login_submit(
    State(app): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let username = form.username.trim().to_owned();
    let expected = cookie(&headers, login_cookie(&app)).unwrap_or_default();
    if !token_eq(&form.csrf, &expected) {
        return login_response(
            &app,
            StatusCode::FORBIDDEN,
            Some("The login form expired. Please try again."),
            &username,
        );
    }
    let keys = [format!("ip:{ip}"), format!("user:{username}")];
    if let Some(wait) = app.throttle.locked(&keys) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        eprintln!("keygen serve: login refused (locked out) for {username:?} from {ip}");
        audit_auth(&app, &username, &ip, "admin.login_locked_out").await;
        let mut resp = login_response(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many failed logins. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
            &username,
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let user = if validate_username(&username).is_ok() {
        match app.admins.find(&username).await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("keygen serve: login: {e}");
                return login_response(
                    &app,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("The database is unavailable. Try again shortly."),
                    &username,
                );
            }
        }
    } else {
        None
    };
    let hash = user
        .as_ref()
        .map_or_else(|| app.dummy_hash.clone(), |u| u.password_hash.clone());
    let password = form.password;
    let matched = password.len() <= MAX_PASSWORD_LEN
        && tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
    let user = match user {
        Some(u) if matched => u,
        _ => {
            app.throttle.fail(
                &keys,
                app.config.login_max_failures.max(1),
                app.config.login_window,
                app.config.login_lockout,
            );
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
    for key in &keys {
        app.throttle.clear(key);
    }
    let Some(session) = app.sessions.create(
        &user.username,
        app.config.session_lifetime,
        app.config.session_idle,
    ) else {
        return AppError::Internal.into_response();
    };
    if let Err(e) = app.admins.touch_login(user.id).await {
        eprintln!("keygen serve: cannot record the login time: {e}");
    }
    eprintln!("keygen serve: {:?} logged in from {ip}", user.username);
    audit_auth(&app, &user.username, &ip, "admin.login").await;
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &app,
            session_cookie(&app),
            &session,
            app.config.session_lifetime.as_secs(),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&app, login_cookie(&app), "", 0),
    );
    resp
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub(crate) async fn logout(
    State(app): State<Shared>,
    admin: Admin,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    admin.check_csrf(&form.csrf)?;
    app.sessions.remove(&admin.session_id);
    audit_auth(&app, &admin.user, &admin.ip, "admin.logout").await;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app, session_cookie(&app), "", 0),
    );
    Ok(resp)
}
