//! Administration records: audit rows, administrator accounts and their
//! roles, retention policies and what a prune deleted.

/// An audit-log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Id.
    pub id: i64,
    /// Time (ms).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// Through what (`cli`, `web`, `library`).
    pub source: String,
    /// Remote address.
    pub ip: Option<String>,
    /// What (`client.create`, `api_key.revoke`, …).
    pub action: String,
    /// Target table.
    pub target_type: String,
    /// Target id.
    pub target_id: Option<i64>,
    /// Extra detail (never a secret).
    pub detail: Option<String>,
}

/// Longest administrator user name.
pub const MAX_ADMIN_NAME_LEN: usize = 64;

/// Checks an administrator user name: 1–64 characters of
/// `A-Z a-z 0-9 . _ @ -`.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
pub fn check_admin_name(name: &str) -> crate::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ADMIN_NAME_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._@-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(crate::Error::invalid_input(format!(
            "invalid admin user name {name:?}: use 1-{MAX_ADMIN_NAME_LEN} characters of A-Z a-z 0-9 . _ @ -"
        )))
    }
}

/// An administrator account of the web interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    /// Primary key.
    pub id: i64,
    /// User name.
    pub username: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Last successful login (ms).
    pub last_login_at: Option<i64>,
    /// What it may do.
    pub role: AdminRole,
    /// False once disabled: it cannot log in, its sessions end.
    pub active: bool,
}

/// What an administrator may do in the web interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminRole {
    /// Reads everything, changes nothing.
    Viewer,
    /// Also manages clients, keys and tokens.
    Operator,
    /// Everything, including administrator accounts.
    Admin,
}

impl AdminRole {
    /// Every role, least powerful first.
    pub const ALL: [AdminRole; 3] = [AdminRole::Viewer, AdminRole::Operator, AdminRole::Admin];

    /// The stored name: `viewer`, `operator`, `admin`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Viewer => "viewer",
            AdminRole::Operator => "operator",
            AdminRole::Admin => "admin",
        }
    }

    /// Whether this role includes everything `needed` may do.
    #[must_use]
    pub fn allows(self, needed: AdminRole) -> bool {
        self >= needed
    }
}

impl std::str::FromStr for AdminRole {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        AdminRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                crate::Error::invalid_input(format!(
                    "invalid role {s:?}: expected viewer, operator or admin"
                ))
            })
    }
}

impl std::fmt::Display for AdminRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account with its stored password hash (a PHC string), for login
/// checks. `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    /// The account.
    pub account: AdminAccount,
    /// The PHC hash string.
    pub password_hash: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// What `prune` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The time to count back from (ms), normally now.
    pub now: i64,
    /// Raw usage rows and rejection counts are kept this long (default 90
    /// days); daily rollups always stay.
    pub usage_ms: i64,
    /// Change-feed rows are kept this long (at least an hour).
    pub feed_ms: i64,
    /// Audit rows are kept this long; `None` (the default): forever.
    pub audit_ms: Option<i64>,
}

impl Retention {
    /// The defaults as of now: 90 days of usage, a day of feed, all audit.
    #[must_use]
    pub fn defaults() -> Self {
        Retention {
            now: super::now_ms(),
            usage_ms: 90 * super::DAY_MS,
            feed_ms: super::DAY_MS,
            audit_ms: None,
        }
    }
}

/// What `prune` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Raw usage rows.
    pub usage_rows: u64,
    /// Per-minute rejection counts.
    pub rejected_rows: u64,
    /// Change-feed rows.
    pub feed_rows: u64,
    /// Rate counters of past hours.
    pub rate_rows: u64,
    /// Audit rows.
    pub audit_rows: u64,
}

/// Change-feed rows younger than this are never deleted, whatever the
/// retention asks: a validating process that stalled (a paused VM, a long
/// GC in a host process) resumes reading where it stopped, and the
/// pollers re-read ids they stepped over for five minutes.
pub const MIN_FEED_RETENTION_MS: i64 = 3_600_000;
