//! The data the library works with, and the rules on it that every binding
//! shares: [`time`] (timestamps, durations, expiry bounds), [`scopes`]
//! (scope names, held and required), [`metadata`] (a credential's JSON
//! object), [`records`] (clients, credentials, usage and audit rows).

pub mod admin;
pub mod metadata;
pub mod network;
pub mod records;
pub mod scopes;
pub mod time;

pub use admin::*;
pub use metadata::{Metadata, MAX_METADATA_LEN};
pub use network::{AllowedIps, MAX_NETWORKS};
pub use records::*;
pub use scopes::{check_required, is_scope_name, Scopes, MAX_SCOPES, MAX_SCOPE_LEN};
pub use time::{
    check_expiry, now_ms, parse_duration, parse_rfc3339, rfc3339, utc_date, DAY_MS, HOUR_MS,
    MAX_LIFETIME_MS,
};
