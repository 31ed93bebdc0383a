//! What the web tests add to the shared harness (`heratio_keys_testkit`):
//! a test admin on a [`TestDb`], a real `heratio-keys-web` server on a
//! loopback port, and a tiny cookie-keeping HTTP client.
#![allow(dead_code)]

use std::thread::JoinHandle;

use heratio_keys_core::{Actor, Source};
pub use heratio_keys_testkit::TestDb;
use heratio_keys_web::Config;

pub const ADMIN: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

/// The actor `keygen admin:create` would use.
pub fn cli_actor() -> Actor {
    Actor::new("test-suite", Source::Cli)
}

/// Adds the test admin to an installed database.
pub fn with_admin(db: TestDb) -> TestDb {
    heratio_keys_web::create_admin(&db.dsn, ADMIN, PASSWORD, false, &cli_actor())
        .expect("create admin");
    db
}

/// Adds an account `user` (password [`PASSWORD`]) with `role`.
pub fn add_account(db: &TestDb, user: &str, role: heratio_keys_core::AdminRole) {
    heratio_keys_web::create_admin_with_role(&db.dsn, user, PASSWORD, false, role, &cli_actor())
        .expect("create account");
}

/// An installed SQLite database with the test admin.
pub fn sqlite() -> TestDb {
    with_admin(TestDb::sqlite())
}

/// Installed databases on both back ends (MariaDB only when configured),
/// each with the test admin.
pub fn all() -> Vec<TestDb> {
    TestDb::all().into_iter().map(with_admin).collect()
}

/// A running server; stopped (gracefully, flushing usage) when dropped.
pub struct Server {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(db: &TestDb) -> Server {
        Server::start_with(db, |_| {})
    }

    pub fn start_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> Server {
        Server::start_inner(db, tweak, None)
    }

    fn start_inner(
        db: &TestDb,
        tweak: impl FnOnce(&mut Config),
        metrics: Option<std::net::TcpListener>,
    ) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut config = Config::new(db.dsn.clone());
        config.access_log = false;
        // Off in tests unless a test asks: a pass at start would revoke
        // the keys of tests that age them on purpose.
        config.maintenance_interval = None;
        tweak(&mut config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let stop = async move {
                let _ = rx.await;
            };
            match metrics {
                Some(m) => heratio_keys_web::serve_listeners(&config, listener, m, stop),
                None => heratio_keys_web::serve_listener(&config, listener, stop),
            }
            .expect("server ran");
        });
        Server {
            base: format!("http://127.0.0.1:{port}"),
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A server with `/metrics` on a listener of its own; returns it and
    /// that listener's base URL.
    pub fn start_split(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> (Server, String) {
        let metrics = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            metrics.local_addr().expect("addr").port()
        );
        let server = Server::start_inner(db, tweak, Some(metrics));
        (server, base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let result = t.join();
            if !std::thread::panicking() {
                result.expect("server thread");
            }
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        between(&self.body, "name=\"csrf\" value=\"", "\"")
            .unwrap_or_else(|| panic!("no CSRF field in: {}", self.body))
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// The text between `start` and the next `end`.
pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_owned())
}

/// Every `hk_api_`/`hk_ai_` credential-shaped string in `text`.
pub fn keys_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["hk_api_", "hk_ai_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i + prefix.len()..];
            let n = tail.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if n >= 46 {
                out.push(format!("{prefix}{}", &tail[..46]));
            }
            rest = &rest[i + prefix.len()..];
        }
    }
    out
}

pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A client that keeps cookies (by name; no domain or path logic needed
/// for one loopback server) and never follows redirects.
pub struct Browser {
    agent: ureq::Agent,
    base: String,
    pub cookies: Vec<(String, String)>,
    /// Sent as `X-Forwarded-For`: the client address a server with
    /// `trust_proxy` sees (every test connection comes from loopback).
    pub forwarded_for: Option<String>,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser::at(&server.base)
    }

    /// A client of the server at `base` (`http://127.0.0.1:PORT`).
    pub fn at(base: &str) -> Browser {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(0)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        Browser {
            agent,
            base: base.to_owned(),
            cookies: Vec::new(),
            forwarded_for: None,
        }
    }

    /// A client that a server with `trust_proxy` sees at `ip`.
    pub fn from_ip(server: &Server, ip: &str) -> Browser {
        let mut b = Browser::new(server);
        b.forwarded_for = Some(ip.to_owned());
        b
    }

    fn headers<B>(&self, mut req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if !self.cookies.is_empty() {
            req = req.header("Cookie", self.cookie_header());
        }
        if let Some(ip) = &self.forwarded_for {
            req = req.header("X-Forwarded-For", ip);
        }
        req
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn finish(&mut self, resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut resp = resp.expect("HTTP request");
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie" {
                let pair = v.split(';').next().unwrap_or("");
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies.retain(|(n, _)| n != name);
                    let expired = v.contains("Max-Age=0");
                    if !expired && !value.is_empty() {
                        self.cookies.push((name.to_owned(), value.to_owned()));
                    }
                }
            }
        }
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Resp {
        let req = self.headers(self.agent.get(format!("{}{path}", self.base)));
        let r = req.call();
        self.finish(r)
    }

    pub fn post_form(&mut self, path: &str, body: &str) -> Resp {
        let req = self.headers(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/x-www-form-urlencoded"),
        );
        let r = req.send(body);
        self.finish(r)
    }

    pub fn post_raw(&mut self, path: &str, content_type: Option<&str>, body: &[u8]) -> Resp {
        let mut req = self.headers(self.agent.post(format!("{}{path}", self.base)));
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let r = req.send(body);
        self.finish(r)
    }

    /// `POST /v1/verify` with a JSON document.
    pub fn verify(&mut self, doc: &serde_json::Value) -> Resp {
        self.post_raw(
            "/v1/verify",
            Some("application/json"),
            doc.to_string().as_bytes(),
        )
    }

    /// Logs in; returns the answer to the POST.
    pub fn login_as(&mut self, user: &str, password: &str) -> Resp {
        let page = self.get("/login").expect(200);
        let csrf = page.csrf();
        self.post_form(
            "/login",
            &form(&[("csrf", &csrf), ("username", user), ("password", password)]),
        )
    }

    /// Logs in as the test admin, asserting success.
    pub fn login(&mut self) {
        self.login_user(ADMIN);
    }

    /// Logs in as `user` (password [`PASSWORD`]), asserting success.
    pub fn login_user(&mut self, user: &str) {
        let r = self.login_as(user, PASSWORD);
        assert_eq!(r.status, 303, "login of {user} failed: {}", r.body);
        assert_eq!(r.location(), Some("/"));
    }
}

/// How many audit rows have `action`.
pub fn audit_count(db: &TestDb, action: &str) -> usize {
    db.store
        .audit_log(1_000_000)
        .expect("audit log")
        .iter()
        .filter(|e| e.action == action)
        .count()
}

/// `n` wrong-password logins at once, all released together; login `i`
/// names `user(i)` and comes from `ip(i)` (see [`Browser::from_ip`]).
/// Returns the status of each.
pub fn parallel_logins(
    server: &Server,
    n: usize,
    user: impl Fn(usize) -> String,
    ip: impl Fn(usize) -> Option<String>,
) -> Vec<u16> {
    // One login form, double-submitted by every attempt.
    let mut first = Browser::new(server);
    let csrf = first.get("/login").expect(200).csrf();
    let cookies = first.cookies.clone();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let mut b = Browser::new(server);
            b.cookies = cookies.clone();
            b.forwarded_for = ip(i);
            let body = form(&[
                ("csrf", &csrf),
                ("username", &user(i)),
                ("password", "not the password, guessing"),
            ]);
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                b.post_form("/login", &body).status
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("login thread"))
        .collect()
}

/// A client made through the store (as the CLI would); returns its id.
pub fn store_client(db: &TestDb, name: &str) -> i64 {
    db.store
        .create_client(
            &heratio_keys_core::NewClient {
                name: name.into(),
                email: "ops@example.org".into(),
                organization: None,
            },
            &cli_actor(),
        )
        .expect("client")
        .id
}

/// A credential issued through the store; returns (id, plaintext).
pub fn store_key(
    db: &TestDb,
    kind: heratio_keys_core::Kind,
    client: i64,
    name: &str,
) -> (i64, String) {
    let issued = heratio_keys_core::issue(
        db.store.as_ref(),
        kind,
        &heratio_keys_core::IssueRequest {
            client_id: client,
            name: name.into(),
            scopes: heratio_keys_core::Scopes::all(),
            expires_at: None,
            rate_limit: None,
            metadata: None,
        },
        &cli_actor(),
    )
    .expect("issue");
    (issued.info.id, issued.key.expose().to_owned())
}

/// The CSRF token of the form posting to `action` on `page` (pages carry
/// one token per session, so any form's will do; this one also proves the
/// form is there).
pub fn form_csrf(page: &Resp, action: &str) -> String {
    let at = page
        .body
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action} in: {}", page.body));
    between(&page.body[at..], "name=\"csrf\" value=\"", "\"").expect("CSRF field in the form")
}

/// The flash messages (alerts) on a page, as text.
pub fn alerts(page: &Resp) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = page.body.as_str();
    while let Some(i) = rest.find("role=\"alert\">") {
        rest = &rest[i + "role=\"alert\">".len()..];
        if let Some(end) = rest.find("</div>") {
            out.push(rest[..end].to_owned());
        }
    }
    out
}

/// Follows a redirect answer (asserting it is one) and returns the page.
#[track_caller]
pub fn follow(b: &mut Browser, r: &Resp) -> Resp {
    assert_eq!(r.status, 303, "expected a redirect; body: {}", r.body);
    let to = r.location().expect("location").to_owned();
    b.get(&to)
}

/// Polls `/v1/verify` until `doc` answers `status` (the change feed takes
/// up to about a second); returns the last answer.
pub fn verify_until(b: &mut Browser, doc: &serde_json::Value, status: &str) -> Resp {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = b.verify(doc);
        if r.json()["status"] == status || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
