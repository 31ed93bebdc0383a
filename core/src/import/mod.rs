//! Importing AtoM Heratio's API keys (`keygen import:heratio`).
//!
//! Heratio keeps its keys in its own `ahg_api_key` table: the SHA-256 hex
//! digest of each raw key (never the key), the key's first 8 characters,
//! JSON scopes, an hourly `rate_limit`, naive-UTC `DATETIME`s and an
//! `is_active` flag. An import copies each row into `api_key` digest and
//! all, so every key Heratio issued keeps working here without anyone
//! holding a plaintext.
//!
//! The work is split in three: the store reads the source's rows as they
//! are ([`HeratioSource`], `KeyStore::read_heratio_source`); [`plan`]
//! maps each row or rejects it with a reason (pure, tested here); the
//! target store applies the [`ImportPlan`] in one transaction, where every
//! new or changed key gets its change-feed row and audit row, or, for a dry
//! run, only reports what it would do (`KeyStore::apply_heratio_import`).
//! [`import_heratio`](crate::import_heratio) does all three.
//!
//! The mapping, row by row:
//!
//! | Heratio | here |
//! |---|---|
//! | `api_key` (64 hex) | `key_hash` (lowercase), so the raw key validates |
//! | `api_key_prefix` | display prefix; `rk_…` → shape `research`, 8 of `[A-Za-z0-9]` → shape `heratio` |
//! | `name` | label (trimmed; blank → `Heratio key <id>`) |
//! | `scopes` | scopes exactly, in order; `NULL`, JSON `null` or `[]` → none |
//! | `rate_limit` | hourly rate limit; `NULL` → 1000, as Heratio's middleware reads it |
//! | `expires_at` | expiry at the end of that second (Heratio accepts a key during it) |
//! | `is_active` ≠ 1 | revoked (Heratio's lookup requires `is_active = 1`) |
//! | `created_at`, `last_used_at` | the same instants, in ms |
//! | `id`, `user_id` | metadata `{"heratio_key_id": id, "heratio_user_id": user_id}` |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::format::{parse_digest_hex, Digest, KeyShape};
use crate::model::{CredentialInfo, Metadata, NewClient, Scopes};

mod rows;
#[cfg(test)]
use rows::parse_datetime;
pub use rows::{client_for_user, map_key};

/// Heratio's default when a key's `rate_limit` is `NULL`
/// (`ApiRateLimit`: `$apiKey->rate_limit ?? 1000`).
pub const HERATIO_DEFAULT_RATE_LIMIT: i64 = 1000;

/// The domain of the e-mail address given to a client made for a Heratio
/// user whose `user` row has none (or that has no `user` table):
/// `heratio-user-<id>@heratio.invalid`. `.invalid` is reserved (RFC 2606),
/// so the address can never reach anyone.
pub const PLACEHOLDER_EMAIL_DOMAIN: &str = "heratio.invalid";

/// One `ahg_api_key` row, as stored (dates as the database's text).
/// `Debug` leaves the digest out.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceKey {
    /// `id`.
    pub id: i64,
    /// `user_id`.
    pub user_id: i64,
    /// `name`.
    pub name: String,
    /// `api_key`: the SHA-256 hex digest of the raw key.
    pub api_key: String,
    /// `api_key_prefix`: the raw key's first 8 characters.
    pub api_key_prefix: String,
    /// `scopes`: JSON text, if not `NULL`.
    pub scopes: Option<String>,
    /// `rate_limit`.
    pub rate_limit: Option<i64>,
    /// `expires_at` (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub expires_at: Option<String>,
    /// `last_used_at`.
    pub last_used_at: Option<String>,
    /// `is_active`.
    pub is_active: Option<i64>,
    /// `created_at`.
    pub created_at: Option<String>,
}

impl fmt::Debug for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceKey")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("api_key_prefix", &self.api_key_prefix)
            .field("scopes", &self.scopes)
            .field("rate_limit", &self.rate_limit)
            .field("expires_at", &self.expires_at)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// One row of AtoM's `user` table (the columns an import reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUser {
    /// `id`.
    pub id: i64,
    /// `username`.
    pub username: Option<String>,
    /// `email`.
    pub email: Option<String>,
}

/// What a Heratio database holds for an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeratioSource {
    /// Where it was read, password masked.
    pub describe: String,
    /// `ahg_api_key`, by id.
    pub keys: Vec<SourceKey>,
    /// `user`, or `None` when the database has no such table.
    pub users: Option<Vec<SourceUser>>,
}

/// A source row mapped to what is stored here.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedKey {
    /// Heratio's `id`.
    pub heratio_key_id: i64,
    /// Heratio's `user_id`.
    pub heratio_user_id: i64,
    /// The label.
    pub name: String,
    /// The digest, as Heratio stored it.
    pub digest: Digest,
    /// The display prefix (Heratio's `api_key_prefix`).
    pub display_prefix: String,
    /// The key's shape, from its prefix.
    pub shape: KeyShape,
    /// The scopes held (possibly none).
    pub scopes: Scopes,
    /// Hourly rate limit.
    pub rate_limit: Option<i64>,
    /// Expiry (ms).
    pub expires_at: Option<i64>,
    /// False when Heratio has it inactive.
    pub active: bool,
    /// Creation (ms), `None` when Heratio has none (the import's time is
    /// used).
    pub created_at: Option<i64>,
    /// Last use (ms).
    pub last_used_at: Option<i64>,
}

impl fmt::Debug for ImportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedKey")
            .field("heratio_key_id", &self.heratio_key_id)
            .field("heratio_user_id", &self.heratio_user_id)
            .field("name", &self.name)
            .field("display_prefix", &self.display_prefix)
            .field("shape", &self.shape)
            .field("scopes", &self.scopes)
            .field("rate_limit", &self.rate_limit)
            .field("expires_at", &self.expires_at)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl ImportedKey {
    /// The external id of the client this key's Heratio user maps to.
    #[must_use]
    pub fn external_id(&self) -> String {
        user_external_id(self.heratio_user_id)
    }

    /// `existing`'s metadata with Heratio's two ids set (other members an
    /// operator added are kept).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if the
    /// result exceeds 4 KiB.
    pub fn metadata(&self, existing: Option<&Metadata>) -> Result<Metadata> {
        let mut object = existing.map(Metadata::to_object).unwrap_or_default();
        object.insert("heratio_key_id".into(), Value::from(self.heratio_key_id));
        object.insert("heratio_user_id".into(), Value::from(self.heratio_user_id));
        Metadata::from_object(object)
    }

    /// The fields of `existing` (the same digest, already imported) that
    /// this mapping would change, given the client the key belongs to now.
    /// `last_used_at` only moves forward: uses recorded here are kept.
    #[must_use]
    pub fn changes(&self, existing: &CredentialInfo, client_id: Option<i64>) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if client_id != Some(existing.client_id) {
            changed.push("client");
        }
        if self.name != existing.name {
            changed.push("name");
        }
        if self.scopes != existing.scopes {
            changed.push("scopes");
        }
        if self.rate_limit != existing.rate_limit {
            changed.push("rate_limit");
        }
        if self.expires_at != existing.expires_at {
            changed.push("expires_at");
        }
        if self.last_used_at > existing.last_used_at {
            changed.push("last_used_at");
        }
        let metadata = self.metadata(existing.metadata.as_ref()).ok();
        if metadata.as_ref() != existing.metadata.as_ref() {
            changed.push("metadata");
        }
        if !self.active && existing.active {
            changed.push("revoked");
        }
        changed
    }
}

/// `heratio:user:<id>`: the `client.external_id` of the client made for a
/// Heratio user, by which later imports find it again.
#[must_use]
pub fn user_external_id(user_id: i64) -> String {
    format!("heratio:user:{user_id}")
}

/// A source row left out, and why. Never holds a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Heratio's `id`.
    pub heratio_key_id: i64,
    /// Why.
    pub reason: String,
}

/// Where imported keys go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportTarget {
    /// All to this client.
    Client(i64),
    /// One client per Heratio user, found by its external id or created
    /// as given here.
    PerUser(BTreeMap<i64, NewClient>),
}

/// What an import will try to write: the mapped rows, the clients they go
/// to, and the rows rejected while mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPlan {
    /// Where the source was read (for the report and the audit log).
    pub source: String,
    /// Rows read.
    pub rows: u64,
    /// Rows mapped, in source order.
    pub keys: Vec<ImportedKey>,
    /// Where they go.
    pub target: ImportTarget,
    /// Rows rejected while mapping.
    pub skipped: Vec<Skipped>,
    /// Every digest the source holds, skipped rows' included: an imported
    /// key whose digest is not here was deleted in Heratio.
    pub present: DigestSet,
}

/// A set of digests whose `Debug` shows only how many it holds.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DigestSet(pub HashSet<Digest>);

impl fmt::Debug for DigestSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestSet({} digests)", self.0.len())
    }
}

/// A client an import created (or, in a dry run, would create).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedClient {
    /// Its id (`null` in a dry run).
    pub client_id: Option<i64>,
    /// The Heratio user it stands for.
    pub heratio_user_id: i64,
    /// Its name.
    pub name: String,
    /// Its e-mail address.
    pub email: String,
}

/// A key an import changed (or would change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChange {
    /// Heratio's `id`.
    pub heratio_key_id: i64,
    /// The API key's id here.
    pub key_id: i64,
    /// What changed: `client`, `name`, `scopes`, `rate_limit`,
    /// `expires_at`, `last_used_at`, `metadata`, `revoked`.
    pub changed: Vec<&'static str>,
}

/// A key here matched to a Heratio row (or to none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRef {
    /// The API key's id here.
    pub key_id: i64,
    /// Heratio's `id`, from the key's metadata.
    pub heratio_key_id: Option<i64>,
}

/// What an import did (or, in a dry run, would do). Serialised as
/// `keygen import:heratio --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Where the source was read, password masked.
    pub source: String,
    /// True when nothing was written.
    pub dry_run: bool,
    /// Rows in the source's `ahg_api_key`.
    pub rows: u64,
    /// Keys stored for the first time.
    pub imported: u64,
    /// Keys already here whose mapped fields changed.
    pub updated: u64,
    /// Keys already here with nothing to change.
    pub unchanged: u64,
    /// Of the imported and updated keys, how many were stored or became
    /// revoked because Heratio has them inactive.
    pub revoked: u64,
    /// Clients created (one per Heratio user without one yet).
    pub clients_created: u64,
    /// Rows left out, with the reason.
    pub skipped: Vec<Skipped>,
    /// The clients created.
    pub clients: Vec<CreatedClient>,
    /// The updated keys and what changed in each.
    pub updates: Vec<KeyChange>,
    /// Keys active in Heratio but revoked here: a revocation here is
    /// final, an import never undoes it (counted as unchanged).
    pub kept_revoked: Vec<KeyRef>,
    /// Imported keys, still active here, whose digest the source no longer
    /// has (deleted in Heratio): listed for the operator to revoke, never
    /// revoked by the import, which cannot tell another source's keys from
    /// deleted ones.
    pub not_in_source: Vec<KeyRef>,
}

impl ImportReport {
    /// An empty report for a plan.
    #[must_use]
    pub fn new(plan: &ImportPlan, dry_run: bool) -> Self {
        ImportReport {
            source: plan.source.clone(),
            dry_run,
            rows: plan.rows,
            imported: 0,
            updated: 0,
            unchanged: 0,
            revoked: 0,
            clients_created: 0,
            skipped: plan.skipped.clone(),
            clients: Vec::new(),
            updates: Vec::new(),
            kept_revoked: Vec::new(),
            not_in_source: Vec::new(),
        }
    }

    /// The one-line summary written to the audit log.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "source={} rows={} imported={} updated={} unchanged={} revoked={} clients_created={} skipped={}",
            self.source,
            self.rows,
            self.imported,
            self.updated,
            self.unchanged,
            self.revoked,
            self.clients_created,
            self.skipped.len()
        )
    }
}

/// Maps a source: every row mapped or skipped with its reason. `client`
/// sends every key to that client; without it each Heratio user gets one.
#[must_use]
pub fn plan(source: &HeratioSource, client: Option<i64>) -> ImportPlan {
    let users: Option<HashMap<i64, &SourceUser>> = source
        .users
        .as_ref()
        .map(|list| list.iter().map(|u| (u.id, u)).collect());
    let mut seen: HashMap<Digest, i64> = HashMap::new();
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    let mut present = DigestSet::default();
    for row in &source.keys {
        present.0.extend(parse_digest_hex(&row.api_key));
        let mapped = map_key(row).and_then(|key| {
            if let Some(users) = &users {
                if !users.contains_key(&row.user_id) {
                    return Err(format!(
                        "unknown user: user_id {} is not in the source's user table",
                        row.user_id
                    ));
                }
            }
            if let Some(first) = seen.insert(key.digest, row.id) {
                seen.insert(key.digest, first);
                return Err(format!("the same api_key as Heratio key {first}"));
            }
            Ok(key)
        });
        match mapped {
            Ok(key) => keys.push(key),
            Err(reason) => skipped.push(Skipped {
                heratio_key_id: row.id,
                reason,
            }),
        }
    }
    let target = match client {
        Some(id) => ImportTarget::Client(id),
        None => {
            let user_ids: HashSet<i64> = keys.iter().map(|k| k.heratio_user_id).collect();
            ImportTarget::PerUser(
                user_ids
                    .into_iter()
                    .map(|id| {
                        let user = users.as_ref().and_then(|u| u.get(&id).copied());
                        (id, client_for_user(id, user))
                    })
                    .collect(),
            )
        }
    };
    ImportPlan {
        source: source.describe.clone(),
        rows: source.keys.len() as u64,
        keys,
        target,
        skipped,
        present,
    }
}

/// The Heratio key id in a key's metadata, if any.
#[must_use]
pub fn heratio_key_id(metadata: Option<&Metadata>) -> Option<i64> {
    metadata
        .map(Metadata::to_object)
        .and_then(|o: Map<String, Value>| o.get("heratio_key_id").and_then(Value::as_i64))
}

#[cfg(test)]
mod tests;
