//! How pages look: the layout every page shares ([`layout`]), small pieces
//! used across pages ([`widgets`]), the usage chart ([`chart`]) and how
//! credentials are shown wherever they appear ([`credential`]). maud
//! escapes everything it interpolates.

mod chart;
mod credential;
mod layout;
mod tables;
mod widgets;

pub(crate) use chart::usage_chart;
pub(crate) use credential::{
    credential_badges, credential_table, generate_form, key_path, maintenance_table, new_key,
    section_id,
};
pub(crate) use layout::{error_page, page, standalone, Ctx, Nav};
pub(crate) use tables::{audit_table, usage_table};
pub(crate) use widgets::{
    client_badge, csrf_field, dash, plural, plural_label, short_time, status_badge,
};
