//! keygen's integration tests, as one binary (one link of the CLI, web
//! and store stacks instead of seven).

#[macro_use]
mod common;

mod administration;
mod errors;
mod heratio;
mod lifecycle;
mod lifecycle_commands;
mod operations;
mod web;
