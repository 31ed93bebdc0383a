//! # heratio-keys-ffi
//!
//! The C ABI of heratio-keys: `libheratio_keys.so` / `libheratio_keys.a` and
//! the header `include/heratio_keys.h`, which `ffi/build.rs` generates with
//! cbindgen from this whole crate.
//!
//! This crate translates and decides nothing: statuses and their names,
//! kinds, scope-name rules, messages, option defaults and the stats fields
//! all belong to [`heratio_keys_core`]. The API conventions C callers rely
//! on (ownership, threading, `fork()`, errors, bad input, panics, stability)
//! are written once, in the header's top comment (the `header` key of
//! `ffi/cbindgen.toml`); `docs/c-api.md` covers building and linking.
//!
//! One module per C object, holding its type and its exports:
//! [`validator`] (`hk_validator`, `hk_options`, open, validate, flush, free),
//! [`credential`], [`last`] (`hk_rate`, `hk_last_metadata`, `hk_last_rate`:
//! what the thread's last validation found beyond `hk_credential`),
//! [`stats`], [`status`] (`hk_status`, `hk_kind`),
//! [`format`] (`hk_check_format`), [`version`], and [`error`] (`hk_error`,
//! the per-thread last error). The boundary machinery has its own homes:
//! `panic` (no unwind crosses into C) and `marshal` (reading what C passes
//! in, writing C strings back).

#![allow(non_camel_case_types)]

// cbindgen writes the header in this order, so it is the header's reading
// order: the validator's life cycle, what a validation hands back, the
// smaller functions, then the boundary's own modules.
pub mod validator;

pub mod credential;

pub mod last;

pub mod format;

pub mod stats;

pub mod status;

pub mod version;

pub mod error;

mod marshal;
mod panic;
