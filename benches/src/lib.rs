//! Fixtures shared by the benchmarks: a store filled with N keys.

use heratio_keys_core::{issue, Actor, IssueRequest, KeyStore, Kind, NewClient, Scopes, Source};

/// Issues `n` API keys for one new client and returns their plaintexts.
///
/// # Panics
///
/// If the store rejects the fixture (benchmarks have nothing to measure then).
#[must_use]
pub fn fill(store: &dyn KeyStore, n: usize) -> Vec<String> {
    let actor = Actor::new("bench", Source::Library);
    let client = store
        .create_client(
            &NewClient {
                name: "bench".into(),
                email: "bench@example.org".into(),
                organization: None,
            },
            &actor,
        )
        .expect("create client");
    (0..n)
        .map(|i| {
            issue(
                store,
                Kind::ApiKey,
                &IssueRequest {
                    client_id: client.id,
                    name: format!("bench-{i}"),
                    scopes: Scopes::parse("read,write").expect("scopes"),
                    expires_at: None,
                },
                &actor,
            )
            .expect("issue")
            .key
            .expose()
            .to_owned()
        })
        .collect()
}
