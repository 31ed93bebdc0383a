//! How pages look: the layout every page shares ([`layout`]), small pieces
//! used across pages ([`widgets`]), the usage chart ([`chart`]) and how
//! credentials are shown wherever they appear ([`credential`]). maud
//! escapes everything it interpolates.

mod chart;
mod credential;
mod layout;
mod widgets;

pub(crate) use chart::usage_chart;
pub(crate) use credential::{credential_table, generate_form, section_id};
pub(crate) use layout::{error_page, page, standalone, Ctx, Nav};
pub(crate) use widgets::{
    client_badge, csrf_field, dash, plural, plural_label, short_time, status_badge,
};
