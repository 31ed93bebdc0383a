//! Clients: creation, listing, and deactivation with its cascade.

use super::{
    audit, check_text, client_from_row, feed, fetch_client, Driver, SqlStore, CLIENT_COLUMNS,
};
use crate::error::{Error, Result};
use crate::format::Kind;
use crate::model::{now_ms, Actor, Client, Deactivation, NewClient};
use crate::store::ClientStore;

impl<D: Driver> ClientStore for SqlStore<D> {
    fn create_client(&self, client: &NewClient, actor: &Actor) -> Result<Client> {
        check_text("client name", &client.name, 255)?;
        check_text("client e-mail", &client.email, 255)?;
        if !client.email.contains('@') {
            return Err(Error::invalid_input(format!(
                "{:?} is not an e-mail address",
                client.email
            )));
        }
        if let Some(org) = &client.organization {
            check_text("organization", org, 255)?;
        }
        self.transaction(|conn| {
            let id = conn
                .exec(
                    "INSERT INTO client (name, email, organization, is_active, created_at) VALUES (?, ?, ?, 1, ?)",
                    &[
                        client.name.trim().into(),
                        client.email.trim().into(),
                        client.organization.as_deref().map(str::trim).into(),
                        now_ms().into(),
                    ],
                )?
                .last_id;
            audit(conn, actor, "client.create", "client", Some(id), Some(format!("name={}", client.name.trim())))?;
            fetch_client(conn, id, "")
        })
    }

    fn get_client(&self, id: i64) -> Result<Client> {
        self.with_conn(|conn| fetch_client(conn, id, ""))
    }

    fn list_clients(&self) -> Result<Vec<Client>> {
        let rows = self.with_conn(|conn| {
            conn.query(
                &format!("SELECT {CLIENT_COLUMNS} FROM client ORDER BY id"),
                &[],
            )
        })?;
        rows.iter().map(client_from_row).collect()
    }

    fn deactivate_client(&self, id: i64, actor: &Actor) -> Result<Deactivation> {
        let lock = self.driver.dialect().for_update();
        self.transaction(|conn| {
            fetch_client(conn, id, lock)?;
            let now = now_ms();
            conn.exec(
                "UPDATE client SET is_active = 0, deactivated_at = COALESCE(deactivated_at, ?) WHERE id = ?",
                &[now.into(), id.into()],
            )?;
            let mut revoked = [0u64; 2];
            for (slot, kind) in revoked.iter_mut().zip(Kind::ALL) {
                let table = kind.table();
                let hashes = conn.query(
                    &format!("SELECT key_hash FROM {table} WHERE client_id = ? AND is_active = 1"),
                    &[id.into()],
                )?;
                *slot = conn
                    .exec(
                        &format!("UPDATE {table} SET is_active = 0, revoked_at = ? WHERE client_id = ? AND is_active = 1"),
                        &[now.into(), id.into()],
                    )?
                    .affected;
                for row in &hashes {
                    feed(conn, kind, &row.text(0)?, "client_deactivated")?;
                }
            }
            audit(
                conn,
                actor,
                "client.deactivate",
                "client",
                Some(id),
                Some(format!("api_keys_revoked={} ai_tokens_revoked={}", revoked[0], revoked[1])),
            )?;
            Ok(Deactivation {
                client_id: id,
                api_keys_revoked: revoked[0],
                ai_tokens_revoked: revoked[1],
            })
        })
    }
}
