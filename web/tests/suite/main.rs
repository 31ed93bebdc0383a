//! The web admin's integration tests, as one binary: each test binary
//! links the whole web stack, the store drivers and tokio, and ten of them
//! cost ten links and ~600 MB of disk per build. `login_capacity` stays
//! alone: it measures a per-process count and the process's memory.

#[macro_use]
mod common;

mod clients;
mod exports;
mod http;
mod keys;
mod login;
mod metrics;
mod openapi;
mod roles;
mod verify;
