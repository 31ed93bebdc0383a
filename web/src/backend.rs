//! Opening the keygen database: the core's store, refused unless its schema
//! is the one this build knows (the schema is `keygen install`'s to create
//! or migrate, never ours), and the validator behind `/v1/verify`.
//!
//! These calls block; they run before the server's runtime starts, or from
//! the CLI, never on an async thread.

use std::sync::Arc;

use heratio_keys_core::store::{self, SCHEMA_VERSION};
use heratio_keys_core::{Dsn, ErrorKind, KeyStore, Options, Validator};

use crate::error::Error;

/// The store and the validator, opened before the runtime starts.
#[derive(Debug)]
pub(crate) struct Backends {
    pub store: Arc<dyn KeyStore>,
    pub validator: Arc<Validator>,
}

/// Opens the store at `dsn` and checks its schema version.
///
/// The core checks the version when it opens a validator but has no such
/// check for a bare store, hence this one.
pub(crate) fn open_store(dsn: &Dsn) -> Result<Arc<dyn KeyStore>, Error> {
    let store = store::open(dsn)?;
    match store.schema_version()? {
        Some(v) if v == SCHEMA_VERSION => Ok(store),
        Some(v) if v > SCHEMA_VERSION => Err(Error::new(
            ErrorKind::SchemaTooNew,
            format!("{dsn}: schema version {v} is newer than this keygen ({SCHEMA_VERSION}); upgrade heratio-keys"),
        )),
        Some(v) => Err(Error::new(
            ErrorKind::SchemaOutdated,
            format!("{dsn}: schema version {v} is older than this keygen's ({SCHEMA_VERSION}): run `keygen install`"),
        )),
        None => Err(Error::new(
            ErrorKind::SchemaOutdated,
            format!("no keygen schema in {dsn}: run `keygen install` first"),
        )),
    }
}

/// Everything the server needs from the database.
pub(crate) fn open(dsn: &str) -> Result<(Backends, Dsn), Error> {
    let dsn = Dsn::parse(dsn)?;
    let store = open_store(&dsn)?;
    let validator = Validator::open_dsn(&dsn, Options::default())?;
    Ok((
        Backends {
            store,
            validator: Arc::new(validator),
        },
        dsn,
    ))
}
