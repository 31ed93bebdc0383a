//! The table's unit tests (a file of their own: the table is long enough).

use super::*;
use crate::shared::region::{scratch, Geometry};

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn the_sweep_clears_damaged_slots_and_keeps_intact_ones() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let region = scratch(
        dir.path(),
        Geometry {
            table_slots: 64,
            ring_slots: 0,
        },
    );
    let good = credential("kept", None);
    assert!(insert(&region, &good.digest, Some(&good), 1));
    let mut damaged = credential("damaged", None);
    damaged.digest = [7; 32];
    assert!(insert(&region, &damaged.digest, Some(&damaged), 1));
    assert_eq!(occupied(&region), 2);
    // One bit flipped in the damaged entry's name.
    let slots = slots(&region);
    let index = (0..64)
        .find(|&i| {
            slots[i]
                .read()
                .is_some_and(|c| c.holds(&digest_words(&damaged.digest)))
        })
        .expect("filled");
    slots[index].words[FIXED].fetch_xor(1, Ordering::Relaxed);
    let mut cursor = 0;
    assert_eq!(sweep_damaged(&region, &mut cursor, 64), 1);
    assert_eq!(region.header().corrupt.load(Ordering::Relaxed), 1);
    assert_eq!(occupied(&region), 1);
    let decoded = Decoded::default();
    assert!(lookup(&region, &damaged.digest, 1, 10, 10, &decoded).is_none());
    assert!(matches!(
        lookup(&region, &good.digest, 1, 10, 10, &decoded),
        Some(Cached::Found { .. })
    ));
    assert_eq!(
        sweep_damaged(&region, &mut cursor, 64),
        0,
        "nothing left to clear"
    );
}

fn credential(name: &str, metadata: Option<&str>) -> Credential {
    Credential {
        kind: Kind::ApiKey,
        id: 7,
        client_id: 3,
        name: name.into(),
        scopes: Scopes::parse("read,publish:write").unwrap(),
        expires_at: Some(1_800_000_000_000),
        active: true,
        client_active: true,
        metadata: metadata.map(|m| Metadata::parse(m).unwrap()),
        rate_limit: None,
        allowed_ips: Some(AllowedIps::parse("192.0.2.0/24").unwrap()),
        digest: [9; 32],
    }
}

#[test]
fn encode_decode_round_trip_and_checksum() {
    let c = credential("production", Some(r#"{"heratio_key_id":1}"#));
    let w = encode(&c.digest, Some(&c), 42).expect("fits");
    let copy = Copy(w);
    match copy.decode(&c.digest) {
        Some(Cached::Found {
            credential,
            filled_at,
        }) => {
            assert_eq!(*credential, c);
            assert_eq!(filled_at, 42);
        }
        other => panic!("{other:?}"),
    }
    for i in 4..WORDS - 1 {
        let mut bad = w;
        bad[i] ^= 1 << (i % 64);
        if i >= FIXED + 4 {
            break; // beyond the data: not covered, not read
        }
        assert!(Copy(bad).decode(&c.digest).is_none(), "word {i}");
    }
    let negative = encode(&c.digest, None, 5).expect("fits");
    assert!(matches!(
        Copy(negative).decode(&c.digest),
        Some(Cached::Missing)
    ));
    let huge = credential(&"x".repeat(DATA_BYTES), None);
    assert!(encode(&huge.digest, Some(&huge), 0).is_none());
}
