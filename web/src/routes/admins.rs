//! `/admins`: the accounts of this interface, for the `admin` role only:
//! list, create (with a role), change a role, disable and enable. The rules
//! are the core's (`AdminStore`): the last active admin can be neither
//! demoted nor disabled, and its refusal is shown as it says it. A change
//! moves the account's `updated_at`, which ends its sessions at their next
//! request (see `extract::Admin`), wherever they are.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use heratio_keys_core::model::check_admin_name;
use heratio_keys_core::{AdminRole, ErrorKind};
use maud::html;
use serde::Deserialize;

use crate::access::{Routes, ADMIN};
use crate::error::{AppError, Page};
use crate::extract::{Admin, CsrfForm};
use crate::password;
use crate::state::Shared;
use crate::views::{csrf_field, short_time, Nav};

pub(crate) fn router() -> Routes {
    Routes::new()
        .get("/admins", ADMIN, admins)
        .post("/admins", ADMIN, create)
        .post("/admins/{user}/role", ADMIN, set_role)
        .post("/admins/{user}/disable", ADMIN, disable)
        .post("/admins/{user}/enable", ADMIN, enable)
}

const ROLE_HELP: &str = "viewer: reads everything, changes nothing · operator: also manages clients, keys and tokens · admin: everything, accounts included";

async fn admins(State(app): State<Shared>, admin: Admin) -> Page {
    let accounts = app.store(|s| s.list_admins()).await?;
    let body = html! {
        h1.h3.mb-3 { "Accounts" }
        p.small.text-muted { (ROLE_HELP) ". A change ends that account's sessions." }
        div.row.g-4 {
            div.col-lg-8 {
                div.table-responsive {
                    table.table.table-sm.align-middle #admins-table {
                        thead { tr {
                            th { "User" } th { "Role" } th { "State" }
                            th.d-none.d-md-table-cell { "Last login (UTC)" } th.d-none.d-lg-table-cell { "Created (UTC)" } th {}
                        } }
                        tbody {
                            @for a in &accounts {
                                tr data-admin=(a.username) {
                                    td.text-break { (a.username) @if a.username == admin.user { " " span.badge.text-bg-info { "you" } } }
                                    td {
                                        form.d-flex.gap-1 method="post" action={ "/admins/" (a.username) "/role" } {
                                            (csrf_field(&admin.csrf))
                                            select.form-select.form-select-sm name="role" aria-label={ "Role of " (a.username) } {
                                                @for r in AdminRole::ALL {
                                                    option value=(r.as_str()) selected[r == a.role] { (r) }
                                                }
                                            }
                                            button.btn.btn-sm.btn-outline-primary type="submit" { "Set" }
                                        }
                                    }
                                    td {
                                        @if a.active { span.badge.text-bg-success { "enabled" } }
                                        @else { span.badge.text-bg-secondary { "disabled" } }
                                    }
                                    td.d-none.d-md-table-cell.text-nowrap { (a.last_login_at.map_or_else(|| "never".to_owned(), short_time)) }
                                    td.d-none.d-lg-table-cell.text-nowrap { (short_time(a.created_at)) }
                                    td.text-end {
                                        @let (verb, label, class) = if a.active {
                                            ("disable", "Disable", "btn-outline-danger")
                                        } else {
                                            ("enable", "Enable", "btn-outline-success")
                                        };
                                        form method="post" action={ "/admins/" (a.username) "/" (verb) } {
                                            (csrf_field(&admin.csrf))
                                            button class={ "btn btn-sm " (class) } type="submit" { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.col-lg-4 {
                div.card {
                    div.card-header { "New account" }
                    div.card-body {
                        form method="post" action="/admins" #new-admin {
                            (csrf_field(&admin.csrf))
                            div.mb-3 {
                                label.form-label for="new-username" { "User name" }
                                // No `pattern`: the core's rule is checked on
                                // the server and said in its words.
                                input.form-control #new-username name="username" required maxlength="64"
                                    autocomplete="off" aria-describedby="new-username-help";
                                div.form-text #new-username-help { "1–64 characters of A–Z a–z 0–9 . _ @ -" }
                            }
                            div.mb-3 {
                                label.form-label for="new-password" { "Password " span.text-muted { "(12 characters or more)" } }
                                input.form-control #new-password name="password" type="password" required
                                    minlength="12" autocomplete="new-password";
                            }
                            div.mb-3 {
                                label.form-label for="new-password2" { "Password again" }
                                input.form-control #new-password2 name="password2" type="password" required
                                    minlength="12" autocomplete="new-password";
                            }
                            div.mb-3 {
                                label.form-label for="new-role" { "Role" }
                                select.form-select #new-role name="role" {
                                    @for r in AdminRole::ALL {
                                        option value=(r.as_str()) selected[r == AdminRole::Viewer] { (r) }
                                    }
                                }
                            }
                            button.btn.btn-primary type="submit" { "Create account" }
                        }
                    }
                }
            }
        }
    };
    Ok(admin.page(&app, Nav::Admins, "Accounts", body))
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
    #[serde(default)]
    role: String,
}

/// Back to the list with the core's (or our) message.
fn back(app: &Shared, admin: &Admin, level: &'static str, text: String) -> Page {
    admin.flash(app, level, text);
    Ok(Redirect::to("/admins").into_response())
}

/// Refusals the admin can act on become messages; the rest error pages.
fn refused(app: &Shared, admin: &Admin, e: AppError) -> Page {
    match e {
        AppError::Core(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidInput | ErrorKind::Conflict | ErrorKind::NotFound
            ) =>
        {
            back(app, admin, "danger", e.message().to_owned())
        }
        e => Err(e),
    }
}

async fn create(State(app): State<Shared>, admin: Admin, Form(form): Form<CreateForm>) -> Page {
    admin.check_csrf(&form.csrf)?;
    let user = form.username.trim().to_owned();
    let role = match form.role.parse::<AdminRole>() {
        Ok(r) => r,
        Err(e) => return back(&app, &admin, "danger", e.message().to_owned()),
    };
    if form.password != form.password2 {
        return back(
            &app,
            &admin,
            "danger",
            "The two passwords differ.".to_owned(),
        );
    }
    // Checked before hashing: argon2 costs 19 MiB and a moment.
    if let Err(e) = check_admin_name(&user).and_then(|()| password::check(&form.password)) {
        return back(&app, &admin, "danger", e.message().to_owned());
    }
    let actor = admin.actor();
    let password = form.password;
    let name = user.clone();
    let created = app
        .store(move |s| {
            let hash = password::hash(&password)?;
            s.create_admin(&name, &hash, role, &actor)
        })
        .await;
    match created {
        Ok(a) => back(
            &app,
            &admin,
            "success",
            format!("Created account {} ({}).", a.username, a.role),
        ),
        Err(e) => refused(&app, &admin, e),
    }
}

#[derive(Debug, Deserialize)]
struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

async fn set_role(
    State(app): State<Shared>,
    admin: Admin,
    Path(user): Path<String>,
    Form(form): Form<RoleForm>,
) -> Page {
    admin.check_csrf(&form.csrf)?;
    let role = match form.role.parse::<AdminRole>() {
        Ok(r) => r,
        Err(e) => return back(&app, &admin, "danger", e.message().to_owned()),
    };
    let actor = admin.actor();
    match app
        .store(move |s| s.set_admin_role(&user, role, &actor))
        .await
    {
        Ok(a) => back(
            &app,
            &admin,
            "success",
            format!("{} is now {}; its sessions have ended.", a.username, a.role),
        ),
        Err(e) => refused(&app, &admin, e),
    }
}

async fn set_active(app: Shared, admin: Admin, user: String, csrf: &str, active: bool) -> Page {
    admin.check_csrf(csrf)?;
    let actor = admin.actor();
    match app
        .store(move |s| s.set_admin_active(&user, active, &actor))
        .await
    {
        Ok(a) if a.active => back(&app, &admin, "success", format!("Enabled {}.", a.username)),
        Ok(a) => back(
            &app,
            &admin,
            "success",
            format!(
                "Disabled {}: it cannot log in, and its sessions have ended.",
                a.username
            ),
        ),
        Err(e) => refused(&app, &admin, e),
    }
}

async fn disable(
    State(app): State<Shared>,
    admin: Admin,
    Path(user): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    set_active(app, admin, user, &form.csrf, false).await
}

async fn enable(
    State(app): State<Shared>,
    admin: Admin,
    Path(user): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    set_active(app, admin, user, &form.csrf, true).await
}
