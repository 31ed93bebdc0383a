//! The frame around every page: the document head, the navigation of a
//! logged-in page, and the bare frame of the login and error pages.

use axum::http::StatusCode;
use heratio_keys_core::AdminRole;
use maud::{html, Markup, DOCTYPE};

use crate::session::Flash;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Dashboard,
    Clients,
    Usage,
    Audit,
    Admins,
}

/// What the layout needs from the request.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub user: &'a str,
    pub role: AdminRole,
    pub csrf: &'a str,
    pub flash: &'a [Flash],
    pub nav: Nav,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            title { (title) " · Heratio keys" }
            link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
            link rel="stylesheet" href="/assets/bootstrap.min.css";
            link rel="stylesheet" href="/assets/app.css";
            script src="/assets/bootstrap.bundle.min.js" defer {}
            script src="/assets/app.js" defer {}
        }
    }
}

/// A full page for a logged-in admin.
pub(crate) fn page(ctx: &Ctx<'_>, title: &str, body: Markup) -> Markup {
    let item = |nav: Nav, href: &str, label: &str| {
        html! {
            li.nav-item {
                a.nav-link.active[ctx.nav == nav] href=(href)
                    aria-current=[(ctx.nav == nav).then_some("page")] { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                nav.navbar.navbar-expand-md.navbar-dark.bg-dark.mb-4 {
                    div.container {
                        a.navbar-brand href="/" { "Heratio keys" }
                        button.navbar-toggler type="button" data-bs-toggle="collapse"
                            data-bs-target="#nav" aria-controls="nav" aria-expanded="false"
                            aria-label="Toggle navigation" {
                            span.navbar-toggler-icon {}
                        }
                        div.collapse.navbar-collapse #nav {
                            ul.navbar-nav.me-auto {
                                (item(Nav::Dashboard, "/", "Dashboard"))
                                (item(Nav::Clients, "/clients", "Clients"))
                                (item(Nav::Usage, "/usage", "Usage log"))
                                (item(Nav::Audit, "/audit", "Audit log"))
                                @if ctx.role.allows(AdminRole::Admin) {
                                    (item(Nav::Admins, "/admins", "Accounts"))
                                }
                            }
                            form.d-flex.align-items-center.gap-2 method="post" action="/logout" {
                                span.navbar-text.small #current-user { (ctx.user) }
                                span.badge.text-bg-secondary #current-role title="Your role" { (ctx.role) }
                                input type="hidden" name="csrf" value=(ctx.csrf);
                                button.btn.btn-outline-light.btn-sm type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main.container.pb-5 {
                    @for f in ctx.flash {
                        div class={ "alert alert-" (f.level) } role="alert" { (f.text) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A page outside the logged-in layout (login, errors): no navigation.
pub(crate) fn standalone(title: &str, body_class: Option<&str>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body class=[body_class] {
                (main)
            }
        }
    }
}

/// A stand-alone error page.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Markup {
    standalone(
        title,
        None,
        html! {
            main.container.py-5 {
                h1.h3 { (title) " " small.text-muted { "(" (status.as_u16()) ")" } }
                p.lead #error-message { (message) }
                a.btn.btn-secondary href="/" { "Back to the dashboard" }
            }
        },
    )
}
