//! Creating administrator accounts (`keygen admin:create`). The accounts
//! are rows of the core's `admin_user` table, written through its store
//! (which audits them); this crate contributes the password rule and hash.

use heratio_keys_core::model::check_admin_name;
use heratio_keys_core::{Actor, AdminRole, Dsn};

use crate::backend;
use crate::error::Error;
use crate::password;

/// What `create_admin` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCreated {
    /// Row id.
    pub id: i64,
    /// User name.
    pub username: String,
    /// False when an existing account's password was reset.
    pub created: bool,
    /// Its role (for a reset: the one it already had).
    pub role: AdminRole,
}

/// Creates an admin account with the `admin` role (or, with `reset`, sets
/// the password of an existing one), audited as `actor`: as
/// [`create_admin_with_role`] with [`AdminRole::Admin`].
///
/// # Errors
///
/// As [`create_admin_with_role`].
pub fn create_admin(
    dsn: &str,
    user: &str,
    password: &str,
    reset: bool,
    actor: &Actor,
) -> Result<AdminCreated, Error> {
    create_admin_with_role(dsn, user, password, reset, AdminRole::Admin, actor)
}

/// Creates an admin account with `role` (or, with `reset`, sets the
/// password of an existing one, whose role stays as it is), audited as
/// `actor`. Creates no table: the database must have the current schema
/// (`keygen install`).
///
/// # Errors
///
/// `InvalidInput` for a bad user name or password, `Conflict` when the user
/// exists and `reset` is false, `NotFound` when it does not and `reset` is
/// true, `SchemaOutdated` when the schema is missing or old; store errors.
pub fn create_admin_with_role(
    dsn: &str,
    user: &str,
    password: &str,
    reset: bool,
    role: AdminRole,
    actor: &Actor,
) -> Result<AdminCreated, Error> {
    check_admin_name(user)?;
    password::check(password)?;
    let store = backend::open_store(&Dsn::parse(dsn)?)?;
    let hash = password::hash(password)?;
    let account = if reset {
        store.set_admin_password(user, &hash, actor)?
    } else {
        store.create_admin(user, &hash, role, actor)?
    };
    Ok(AdminCreated {
        id: account.id,
        username: account.username,
        created: !reset,
        role: account.role,
    })
}
