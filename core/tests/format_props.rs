//! Property tests of the key format: every generated key passes the check,
//! any single-character change fails it.

use heratio_keys_core::{check_format, generate, Kind, Status};
use proptest::prelude::*;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::ApiKey), Just(Kind::AiToken)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_keys_pass_only_as_their_kind(kind in kind()) {
        let key = generate(kind).unwrap();
        let bytes = key.expose().as_bytes();
        prop_assert_eq!(bytes.len(), kind.key_len());
        prop_assert!(key.expose().starts_with(kind.prefix()));
        prop_assert!(bytes[kind.prefix().len()..].iter().all(|c| ALPHABET.contains(c)));
        prop_assert_eq!(check_format(kind, bytes), Status::Valid);
        prop_assert_eq!(check_format(kind.other(), bytes), Status::WrongKind);
    }

    #[test]
    fn any_single_character_change_fails(kind in kind(), position in 0usize..53, replacement in any::<u8>()) {
        let key = generate(kind).unwrap();
        let mut bytes = key.expose().as_bytes().to_vec();
        let position = position % bytes.len();
        prop_assume!(bytes[position] != replacement);
        bytes[position] = replacement;
        let status = check_format(kind, &bytes);
        prop_assert_ne!(status, Status::Valid, "changed byte {} still valid", position);
    }

    #[test]
    fn truncation_and_extension_fail(kind in kind(), cut in 1usize..52, extra in "[0-9A-Za-z]{1,4}") {
        let key = generate(kind).unwrap();
        let bytes = key.expose().as_bytes();
        prop_assert_eq!(check_format(kind, &bytes[..bytes.len() - cut.min(bytes.len())]), Status::Malformed);
        let longer = format!("{}{extra}", key.expose());
        prop_assert_eq!(check_format(kind, longer.as_bytes()), Status::Malformed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(kind in kind(), input in proptest::collection::vec(any::<u8>(), 0..120)) {
        let status = check_format(kind, &input);
        prop_assert!(matches!(status, Status::Valid | Status::Malformed | Status::WrongKind));
    }
}

#[test]
fn body_characters_are_uniform() {
    // 2000 keys x 40 characters = 80 000 draws over 62 symbols: each symbol
    // expected ~1290 times; a modulo bias towards the first 8 symbols
    // (256 % 62) would push those to ~1550.
    let mut counts = [0u32; 62];
    for _ in 0..2000 {
        let key = generate(Kind::ApiKey).unwrap();
        for c in &key.expose().as_bytes()[7..47] {
            let i = ALPHABET.iter().position(|a| a == c).unwrap();
            counts[i] += 1;
        }
    }
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(
        *min > 1100 && *max < 1480,
        "skewed distribution: min {min} max {max}"
    );
}
