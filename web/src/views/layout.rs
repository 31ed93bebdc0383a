//! The page layout and shared pieces (maud templates: escaping is automatic).

use axum::http::StatusCode;
use heratio_keys_core::model::DayCount;
use heratio_keys_core::Status;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::auth::Flash;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Dashboard,
    Clients,
    Usage,
    Audit,
}

/// What the layout needs from the request.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub user: &'a str,
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
                            }
                            form.d-flex.align-items-center.gap-2 method="post" action="/logout" {
                                span.navbar-text.small #current-user { (ctx.user) }
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

/// The login page (no session yet).
pub(crate) fn login(csrf: &str, error: Option<&str>, username: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in"))
            body.bg-body-tertiary {
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
            }
        }
    }
}

/// A stand-alone error page.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main.container.py-5 {
                    h1.h3 { (title) " " small.text-muted { "(" (status.as_u16()) ")" } }
                    p.lead #error-message { (message) }
                    a.btn.btn-secondary href="/" { "Back to the dashboard" }
                }
            }
        }
    }
}

/// A coloured badge for a validation outcome.
pub(crate) fn status_badge(status: Status) -> Markup {
    let class = match status {
        Status::Valid => "text-bg-success",
        Status::Forbidden => "text-bg-warning",
        Status::Unavailable => "text-bg-secondary",
        _ => "text-bg-danger",
    };
    html! { span class={ "badge " (class) } { (status.name()) } }
}

/// A badge for a credential or client state.
pub(crate) fn state_badge(state: &str) -> Markup {
    let class = match state {
        "active" => "text-bg-success",
        "expired" => "text-bg-warning",
        _ => "text-bg-secondary",
    };
    html! { span class={ "badge " (class) } { (state) } }
}

/// Validations per day as an inline SVG bar chart (total behind, valid in
/// front), with a `<title>` per day for hover details. No JavaScript.
pub(crate) fn usage_chart(days: &[DayCount]) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 24.0;
    let plot_w = W - LEFT - 6.0;
    let plot_h = H - BOTTOM - TOP;
    let max = days.iter().map(|d| d.total).max().unwrap_or(0).max(1);
    // Round the axis up to a tidy number.
    let scale_max = tidy_ceiling(max);
    let n = days.len().max(1);
    let slot = plot_w / n as f64;
    let bar = (slot * 0.7).max(1.0);
    let y_of = |v: i64| TOP + plot_h - (v as f64 / scale_max as f64) * plot_h;
    let total: i64 = days.iter().map(|d| d.total).sum();
    let label = |d: &DayCount| d.date.get(5..).unwrap_or(&d.date).to_owned();
    html! {
        svg.usage-chart viewBox={ "0 0 " (W) " " (H) } role="img" preserveAspectRatio="xMidYMid meet"
            aria-label={ "Validations per day: " (total) " in " (days.len()) " days" } {
            @for (v, frac) in ticks(scale_max) {
                @let y = TOP + plot_h - frac * plot_h;
                line.grid x1=(LEFT) x2=(W - 6.0) y1=(y) y2=(y) {}
                text.axis x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (v) }
            }
            @for (i, d) in days.iter().enumerate() {
                @let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
                g {
                    title { (d.date) ": " (d.total) " validations, " (d.valid) " valid" }
                    rect.bar-total x=(x) y=(y_of(d.total)) width=(bar)
                        height=(TOP + plot_h - y_of(d.total)) {}
                    rect.bar-valid x=(x) y=(y_of(d.valid)) width=(bar)
                        height=(TOP + plot_h - y_of(d.valid)) {}
                }
            }
            @if let (Some(first), Some(last)) = (days.first(), days.last()) {
                text.axis x=(LEFT) y=(H - 6.0) text-anchor="start" { (label(first)) }
                @if days.len() > 2 {
                    @let mid = &days[days.len() / 2];
                    text.axis x=(LEFT + plot_w / 2.0) y=(H - 6.0) text-anchor="middle" { (label(mid)) }
                }
                text.axis x=(W - 6.0) y=(H - 6.0) text-anchor="end" { (label(last)) }
            }
        }
        div.small.text-muted.mt-1 {
            span.legend.legend-total {} " all validations "
            span.legend.legend-valid.ms-2 {} " valid"
        }
    }
}

/// Axis labels: 0, the top, and the middle when it is a whole number.
fn ticks(top: i64) -> Vec<(i64, f64)> {
    let mut t = vec![(0, 0.0), (top, 1.0)];
    if top % 2 == 0 {
        t.push((top / 2, 0.5));
    }
    t
}

fn tidy_ceiling(v: i64) -> i64 {
    let mut step = 1;
    while step * 10 <= v {
        step *= 10;
    }
    for m in [1, 2, 5, 10] {
        if step * m >= v {
            return step * m;
        }
    }
    v
}

/// A hidden CSRF field.
pub(crate) fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// Non-breaking placeholder for an empty cell.
pub(crate) fn dash() -> Markup {
    PreEscaped("&ndash;".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_axis() {
        assert_eq!(tidy_ceiling(1), 1);
        assert_eq!(tidy_ceiling(3), 5);
        assert_eq!(tidy_ceiling(11), 20);
        assert_eq!(tidy_ceiling(100), 100);
        assert_eq!(tidy_ceiling(101), 200);
    }
}
