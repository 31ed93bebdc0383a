//! Administrator accounts of the web interface (`admin_user`). The store
//! keeps the password hash it is given; hashing is the web crate's.

use super::{audit, Driver, Row, SqlStore};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{check_admin_name, now_ms, Actor, AdminAccount, AdminCredentials, AdminRole};
use crate::store::AdminStore;

const ADMIN_COLUMNS: &str =
    "id, username, created_at, updated_at, last_login_at, password_hash, role, is_active";

fn admin_from_row(row: &Row) -> Result<AdminCredentials> {
    Ok(AdminCredentials {
        account: AdminAccount {
            id: row.int(0)?,
            username: row.text(1)?,
            created_at: row.int(2)?,
            updated_at: row.int(3)?,
            last_login_at: row.opt_int(4)?,
            role: row
                .text(6)?
                .parse()
                .map_err(|_| Error::internal("unknown admin role"))?,
            active: row.bool(7)?,
        },
        password_hash: row.text(5)?,
    })
}

fn check_hash(password_hash: &str) -> Result<()> {
    // A PHC string, never a password: refuse anything that does not look
    // like one rather than store a plaintext by mistake.
    if password_hash.starts_with('$') && password_hash.len() <= 255 {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "an admin password must be stored as a PHC hash string",
        ))
    }
}

impl<D: Driver> SqlStore<D> {
    fn fetch_admin(
        conn: &mut dyn super::Conn,
        username: &str,
        lock: &str,
    ) -> Result<Option<AdminCredentials>> {
        let rows = conn.query(
            &format!("SELECT {ADMIN_COLUMNS} FROM admin_user WHERE username = ?{lock}"),
            &[username.into()],
        )?;
        rows.first().map(admin_from_row).transpose()
    }
}

impl<D: Driver> AdminStore for SqlStore<D> {
    fn admin_count(&self) -> Result<u64> {
        let rows = self.with_conn(|conn| conn.query("SELECT COUNT(*) FROM admin_user", &[]))?;
        let n = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn find_admin(&self, username: &str) -> Result<Option<AdminCredentials>> {
        if check_admin_name(username).is_err() {
            return Ok(None);
        }
        self.with_conn(|conn| Self::fetch_admin(conn, username, ""))
    }

    fn get_admin(&self, id: i64) -> Result<Option<AdminAccount>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                &format!("SELECT {ADMIN_COLUMNS} FROM admin_user WHERE id = ?"),
                &[id.into()],
            )
        })?;
        Ok(rows
            .first()
            .map(admin_from_row)
            .transpose()?
            .map(|a| a.account))
    }

    fn create_admin(
        &self,
        username: &str,
        password_hash: &str,
        role: AdminRole,
        actor: &Actor,
    ) -> Result<AdminAccount> {
        check_admin_name(username)?;
        check_hash(password_hash)?;
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            if Self::fetch_admin(conn, username, lock)?.is_some() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("admin {username:?} already exists (use --reset-password to change its password)"),
                ));
            }
            let now = now_ms();
            let id = conn
                .exec(
                    "INSERT INTO admin_user (username, password_hash, created_at, updated_at, role, is_active) VALUES (?, ?, ?, ?, ?, 1)",
                    &[username.into(), password_hash.into(), now.into(), now.into(), role.as_str().into()],
                )?
                .last_id;
            audit(conn, actor, "admin.create", "admin_user", Some(id), Some(format!("username={username} role={role}")))?;
            Self::fetch_admin(conn, username, "")?
                .map(|a| a.account)
                .ok_or_else(|| Error::internal("admin row vanished after insert"))
        })
    }

    fn set_admin_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &Actor,
    ) -> Result<AdminAccount> {
        check_hash(password_hash)?;
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            let Some(admin) = Self::fetch_admin(conn, username, lock)? else {
                return Err(Error::not_found(format!("no admin named {username:?}")));
            };
            let id = admin.account.id;
            // Sessions end when `updated_at` changes: it must change even
            // when two changes fall in the same millisecond.
            let updated_at = now_ms().max(admin.account.updated_at + 1);
            conn.exec(
                "UPDATE admin_user SET password_hash = ?, updated_at = ? WHERE id = ?",
                &[password_hash.into(), updated_at.into(), id.into()],
            )?;
            audit(
                conn,
                actor,
                "admin.reset_password",
                "admin_user",
                Some(id),
                Some(format!("username={username}")),
            )?;
            Self::fetch_admin(conn, username, "")?
                .map(|a| a.account)
                .ok_or_else(|| Error::internal("admin row vanished after update"))
        })
    }

    fn record_admin_login(&self, id: i64) -> Result<()> {
        self.with_conn(|conn| {
            conn.exec(
                "UPDATE admin_user SET last_login_at = ? WHERE id = ?",
                &[now_ms().into(), id.into()],
            )
            .map(|_| ())
        })
    }

    fn list_admins(&self) -> Result<Vec<AdminAccount>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                &format!("SELECT {ADMIN_COLUMNS} FROM admin_user ORDER BY username"),
                &[],
            )
        })?;
        rows.iter()
            .map(|r| admin_from_row(r).map(|a| a.account))
            .collect()
    }

    fn set_admin_role(
        &self,
        username: &str,
        role: AdminRole,
        actor: &Actor,
    ) -> Result<AdminAccount> {
        self.change_admin(username, actor, AdminChange::Role(role))
    }

    fn set_admin_active(
        &self,
        username: &str,
        active: bool,
        actor: &Actor,
    ) -> Result<AdminAccount> {
        self.change_admin(username, actor, AdminChange::Active(active))
    }
}

enum AdminChange {
    Role(AdminRole),
    Active(bool),
}

impl<D: Driver> SqlStore<D> {
    /// Changes an account's role or state. `updated_at` moves, so its
    /// sessions end; the last active admin can be neither demoted nor
    /// disabled (nobody could manage accounts any more).
    fn change_admin(
        &self,
        username: &str,
        actor: &Actor,
        change: AdminChange,
    ) -> Result<AdminAccount> {
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            // Every account locked: two admins demoting each other at once
            // must not both succeed.
            let all = conn.query(
                &format!("SELECT {ADMIN_COLUMNS} FROM admin_user{lock}"),
                &[],
            )?;
            let all: Vec<AdminAccount> = all
                .iter()
                .map(|r| admin_from_row(r).map(|a| a.account))
                .collect::<Result<_>>()?;
            let Some(before) = all.iter().find(|a| a.username == username) else {
                return Err(Error::not_found(format!("no admin named {username:?}")));
            };
            let (role, active, action, detail) = match change {
                AdminChange::Role(role) => {
                    (role, before.active, "admin.role", format!("role={role}"))
                }
                AdminChange::Active(active) => (
                    before.role,
                    active,
                    if active {
                        "admin.enable"
                    } else {
                        "admin.disable"
                    },
                    format!("active={active}"),
                ),
            };
            let other_admins = all
                .iter()
                .filter(|a| a.id != before.id && a.active && a.role == AdminRole::Admin)
                .count();
            if before.active
                && before.role == AdminRole::Admin
                && (!active || role != AdminRole::Admin)
                && other_admins == 0
            {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{username:?} is the last active admin: make another account admin first"
                    ),
                ));
            }
            let updated_at = now_ms().max(before.updated_at + 1);
            conn.exec(
                "UPDATE admin_user SET role = ?, is_active = ?, updated_at = ? WHERE id = ?",
                &[
                    role.as_str().into(),
                    i64::from(active).into(),
                    updated_at.into(),
                    before.id.into(),
                ],
            )?;
            audit(
                conn,
                actor,
                action,
                "admin_user",
                Some(before.id),
                Some(format!("username={username} {detail}")),
            )?;
            Self::fetch_admin(conn, username, "")?
                .map(|a| a.account)
                .ok_or_else(|| Error::internal("admin row vanished after update"))
        })
    }
}
