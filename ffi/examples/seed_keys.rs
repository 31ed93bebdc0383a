//! Fixture for the C benchmark (`tests/c/bench.c`): issues N API keys
//! (scopes `read,write`) for one new client through the core, and writes
//! their plaintexts to a file, one per line.
//!
//! `cargo run --release -p heratio-keys-ffi --example seed_keys -- DSN N FILE`

use std::io::Write;

use heratio_keys_core::{issue, store, Actor, Dsn, IssueRequest, Kind, NewClient, Scopes, Source};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dsn, n, file] = args.as_slice() else {
        return Err("usage: seed_keys DSN N FILE".into());
    };
    let n: usize = n.parse()?;
    let store = store::open(&Dsn::parse(dsn)?)?;
    store.install()?;
    let actor = Actor::new("bench", Source::Library);
    let client = store.create_client(
        &NewClient {
            name: "bench".into(),
            email: "bench@example.org".into(),
            organization: None,
        },
        &actor,
    )?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    for i in 0..n {
        let issued = issue(
            &*store,
            Kind::ApiKey,
            &IssueRequest {
                client_id: client.id,
                name: format!("bench-{i}"),
                scopes: Scopes::parse("read,write")?,
                expires_at: None,
                rate_limit: None,
                metadata: None,
            },
            &actor,
        )?;
        writeln!(out, "{}", issued.key.expose())?;
    }
    out.flush()?;
    Ok(())
}
