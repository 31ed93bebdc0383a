//! A credential's life after issue: rotation with a grace period, IP
//! allowlists, renaming; clients edited and reactivated; and the
//! maintenance pass that revokes keys idle past their client's policy.

use super::credentials::CredentialChange;
use super::{
    audit, check_text, feed, feed_credential, fetch_client, fetch_credential, Driver, SqlStore,
};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{digest_hex, Kind};
use crate::model::{
    now_ms, rfc3339, Actor, AllowedIps, Client, ClientUpdate, CredentialInfo, Maintenance,
    MaintenanceItem, Replacement, DAY_MS, MAX_LABEL_LEN,
};
use crate::store::LifecycleStore;

/// Keys are listed as "revoked soon" or "expiring soon" this far ahead.
const NOTICE_MS: i64 = 7 * DAY_MS;

impl<D: Driver> LifecycleStore for SqlStore<D> {
    fn rotate_credential(
        &self,
        kind: Kind,
        id: i64,
        replacement: &Replacement,
        grace_ms: i64,
        actor: &Actor,
    ) -> Result<(CredentialInfo, CredentialInfo)> {
        if grace_ms < 0 {
            return Err(Error::invalid_input("a grace period cannot be negative"));
        }
        let lock = self.driver.dialect().for_update();
        let table = kind.table();
        let hex = digest_hex(&replacement.digest);
        self.transaction(|conn| {
            let old = fetch_credential(conn, kind, id, lock)?;
            if !old.active {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{} {id} is revoked; there is nothing to rotate", kind.label()),
                ));
            }
            let client = fetch_client(conn, old.client_id, lock)?;
            if !client.active {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("client {} is deactivated; it cannot receive new credentials", client.id),
                ));
            }
            let now = now_ms();
            let new_id = conn
                .exec(
                    &format!(
                        "INSERT INTO {table} (client_id, name, key_hash, key_prefix, scopes, is_active, created_at, expires_at, usage_count, metadata, rate_limit, key_shape, allowed_ips, rotated_from) \
                         VALUES (?, ?, ?, ?, ?, 1, ?, NULL, 0, ?, ?, 0, ?, ?)"
                    ),
                    &[
                        old.client_id.into(),
                        old.name.as_str().into(),
                        hex.as_str().into(),
                        replacement.display_prefix.as_str().into(),
                        old.scopes.to_stored().into(),
                        now.into(),
                        old.metadata.as_ref().map(|m| m.as_str().to_owned()).into(),
                        old.rate_limit.into(),
                        old.allowed_ips.as_ref().map(AllowedIps::to_stored).into(),
                        id.into(),
                    ],
                )?
                .last_id;
            let ends = (now + grace_ms).min(old.expires_at.unwrap_or(i64::MAX));
            conn.exec(
                &format!("UPDATE {table} SET expires_at = ? WHERE id = ?"),
                &[ends.into(), id.into()],
            )?;
            feed(conn, kind, &hex, "created")?;
            feed_credential(conn, kind, id, "rotated")?;
            audit(
                conn,
                actor,
                &format!("{table}.rotate"),
                table,
                Some(new_id),
                Some(format!("replaces={id} old_expires_at={}", rfc3339(ends))),
            )?;
            Ok((
                fetch_credential(conn, kind, new_id, "")?,
                fetch_credential(conn, kind, id, "")?,
            ))
        })
    }

    fn set_credential_allowed_ips(
        &self,
        kind: Kind,
        id: i64,
        allowed: Option<&AllowedIps>,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is revoked",
                set: "allowed_ips = ?",
                value: allowed.map(AllowedIps::to_stored).into(),
                reason: "allowlist_changed",
                action: "set_allowed_ips",
                detail: Some(allowed.map_or_else(
                    || "allowed_ips=any".to_owned(),
                    |a| format!("allowed_ips={a}"),
                )),
            },
        )
    }

    fn rename_credential(
        &self,
        kind: Kind,
        id: i64,
        name: &str,
        actor: &Actor,
    ) -> Result<CredentialInfo> {
        check_text("label", name, MAX_LABEL_LEN)?;
        self.change_active_credential(
            kind,
            id,
            actor,
            CredentialChange {
                refused: "is revoked",
                set: "name = ?",
                value: name.trim().into(),
                reason: "renamed",
                action: "rename",
                detail: Some(format!("name={}", name.trim())),
            },
        )
    }

    fn update_client(&self, id: i64, update: &ClientUpdate, actor: &Actor) -> Result<Client> {
        if let Some(name) = &update.name {
            check_text("client name", name, 255)?;
        }
        if let Some(email) = &update.email {
            check_text("client e-mail", email, 255)?;
            if !email.contains('@') {
                return Err(Error::invalid_input(format!(
                    "{email:?} is not an e-mail address"
                )));
            }
        }
        if let Some(Some(org)) = &update.organization {
            check_text("organization", org, 255)?;
        }
        if let Some(Some(idle)) = update.idle_revoke_ms {
            if idle <= 0 {
                return Err(Error::invalid_input("an idle period must be positive"));
            }
        }
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            let before = fetch_client(conn, id, lock)?;
            let after = Client {
                name: update.name.as_deref().map_or(before.name.clone(), |n| n.trim().to_owned()),
                email: update.email.as_deref().map_or(before.email.clone(), |e| e.trim().to_owned()),
                organization: update.organization.clone().map_or(before.organization.clone(), |o| {
                    o.map(|o| o.trim().to_owned()).filter(|o| !o.is_empty())
                }),
                idle_revoke_ms: update.idle_revoke_ms.unwrap_or(before.idle_revoke_ms),
                ..before.clone()
            };
            conn.exec(
                "UPDATE client SET name = ?, email = ?, organization = ?, idle_revoke_ms = ? WHERE id = ?",
                &[
                    after.name.as_str().into(),
                    after.email.as_str().into(),
                    after.organization.clone().into(),
                    after.idle_revoke_ms.into(),
                    id.into(),
                ],
            )?;
            let mut changed = Vec::new();
            if after.name != before.name {
                changed.push(format!("name={}", after.name));
            }
            if after.email != before.email {
                changed.push(format!("email={}", after.email));
            }
            if after.organization != before.organization {
                changed.push(format!("organization={}", after.organization.as_deref().unwrap_or("")));
            }
            if after.idle_revoke_ms != before.idle_revoke_ms {
                changed.push(format!(
                    "idle_revoke={}",
                    after.idle_revoke_ms.map_or_else(|| "never".to_owned(), |ms| format!("{}d", ms / DAY_MS))
                ));
            }
            audit(conn, actor, "client.update", "client", Some(id), Some(changed.join(" ")))?;
            fetch_client(conn, id, "")
        })
    }

    fn reactivate_client(&self, id: i64, actor: &Actor) -> Result<Client> {
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            let client = fetch_client(conn, id, lock)?;
            if client.active {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("client {id} is active already"),
                ));
            }
            // Its keys and tokens stay revoked: a reactivated client gets new
            // ones, so nothing revoked comes back to life unseen.
            conn.exec(
                "UPDATE client SET is_active = 1, deactivated_at = NULL WHERE id = ?",
                &[id.into()],
            )?;
            audit(conn, actor, "client.reactivate", "client", Some(id), None)?;
            fetch_client(conn, id, "")
        })
    }

    fn maintain(&self, now: i64, apply: bool, actor: &Actor) -> Result<Maintenance> {
        let mut report = Maintenance::default();
        self.transaction(|conn| {
            report = Maintenance::default();
            for kind in Kind::ALL {
                let table = kind.table();
                let idle = conn.query(
                    &format!(
                        "SELECT k.id, k.client_id, k.name, k.key_prefix, COALESCE(k.last_used_at, k.created_at), c.idle_revoke_ms \
                         FROM {table} k JOIN client c ON c.id = k.client_id \
                         WHERE k.is_active = 1 AND c.is_active = 1 AND c.idle_revoke_ms IS NOT NULL \
                         AND (k.expires_at IS NULL OR k.expires_at > ?) ORDER BY k.id"
                    ),
                    &[now.into()],
                )?;
                for row in &idle {
                    let due = row.int(4)?.saturating_add(row.int(5)?);
                    let item = MaintenanceItem {
                        kind,
                        id: row.int(0)?,
                        client_id: row.int(1)?,
                        name: row.text(2)?,
                        display_prefix: row.text(3)?,
                        at: due,
                    };
                    if due <= now {
                        if apply {
                            conn.exec(
                                &format!("UPDATE {table} SET is_active = 0, revoked_at = ? WHERE id = ?"),
                                &[now.into(), item.id.into()],
                            )?;
                            feed_credential(conn, kind, item.id, "idle_revoked")?;
                            audit(
                                conn,
                                actor,
                                &format!("{table}.revoke"),
                                table,
                                Some(item.id),
                                Some(format!("idle since {}", rfc3339(row.int(4)?))),
                            )?;
                        }
                        report.revoked.push(item);
                    } else if due <= now + NOTICE_MS {
                        report.revoke_soon.push(item);
                    }
                }
                let expiring = conn.query(
                    &format!(
                        "SELECT id, client_id, name, key_prefix, expires_at FROM {table} \
                         WHERE is_active = 1 AND expires_at > ? AND expires_at <= ? ORDER BY expires_at, id"
                    ),
                    &[now.into(), (now + NOTICE_MS).into()],
                )?;
                for row in &expiring {
                    report.expiring_soon.push(MaintenanceItem {
                        kind,
                        id: row.int(0)?,
                        client_id: row.int(1)?,
                        name: row.text(2)?,
                        display_prefix: row.text(3)?,
                        at: row.int(4)?,
                    });
                }
            }
            if apply && !report.revoked.is_empty() {
                audit(
                    conn,
                    actor,
                    "maintenance.run",
                    "maintenance",
                    None,
                    Some(format!("revoked={} at={}", report.revoked.len(), rfc3339(now))),
                )?;
            }
            Ok(())
        })?;
        Ok(report)
    }
}
