//! Creating administrator accounts (`keygen admin:create`). The accounts
//! are rows of the core's `admin_user` table, written through its store
//! (which audits them); this crate contributes the password rule and hash.

use heratio_keys_core::model::check_admin_name;
use heratio_keys_core::{Actor, Dsn};

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
}

/// Creates an admin account (or, with `reset`, sets the password of an
/// existing one), audited as `actor`. Creates no table: the database must
/// have the current schema (`keygen install`).
///
/// # Errors
///
/// `InvalidInput` for a bad user name or password, `Conflict` when the user
/// exists and `reset` is false, `NotFound` when it does not and `reset` is
/// true, `SchemaOutdated` when the schema is missing or old; store errors.
pub fn create_admin(
    dsn: &str,
    user: &str,
    password: &str,
    reset: bool,
    actor: &Actor,
) -> Result<AdminCreated, Error> {
    check_admin_name(user)?;
    password::check(password)?;
    let store = backend::open_store(&Dsn::parse(dsn)?)?;
    let hash = password::hash(password)?;
    let account = if reset {
        store.set_admin_password(user, &hash, actor)?
    } else {
        store.create_admin(user, &hash, heratio_keys_core::AdminRole::Admin, actor)?
    };
    Ok(AdminCreated {
        id: account.id,
        username: account.username,
        created: !reset,
    })
}
