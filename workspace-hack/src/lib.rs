//! No code: this crate only depends on the workspace's shared dependencies
//! with the union of the features any member asks for, so that building one
//! package (`-p heratio-keys-php`) or several (`-p heratio-keys-ffi -p
//! heratio-keys-cli`) resolves the same features and reuses the same
//! artefacts. Regenerate with `cargo hakari generate` after changing
//! dependencies (docs/ARCHITECTURE.md, "Builds").
