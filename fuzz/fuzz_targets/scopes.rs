//! Scope lists: `Scopes::parse`, `Scopes::new`, `Scopes::held`,
//! `Scopes::from_stored`, `check_required`, `grants` and `first_missing` on
//! arbitrary input.
//!
//! Invariants:
//! - never panics;
//! - an accepted list holds at most MAX_SCOPES distinct well-formed names
//!   (each `*` or 1-64 bytes of `A-Z a-z 0-9 _ . : -`, so never a comma), in
//!   the order given, each the trimmed form of an input item;
//! - the stored form round-trips: `Scopes::from_stored(s.to_stored()) == s`
//!   (and `Scopes::parse` too when `s` is not empty), and `Display` is the
//!   stored form;
//! - `Scopes::new` accepts a list exactly when every trimmed item is a scope
//!   name and there are 1..=MAX_SCOPES distinct ones; `Scopes::held` the
//!   same but with 0 allowed; `Scopes::parse` agrees with `Scopes::new`;
//! - `check_required` accepts exactly when there are at most MAX_SCOPES
//!   items and each (untrimmed) is a scope name;
//! - `grants(r)` exactly when `r` is held or `*` is held, and
//!   `first_missing` is the first required item not granted.
#![no_main]

use heratio_keys_core::model::{check_required, is_scope_name, MAX_SCOPES, MAX_SCOPE_LEN};
use heratio_keys_core::Scopes;
use libfuzzer_sys::fuzz_target;

/// The input, as lines: the comma-separated list for `Scopes::parse`; then
/// items for `Scopes::new`, one a line, up to an empty line; then required
/// scopes, one a line. Non-UTF-8 bytes are replaced. Seeds are readable text.
struct Input<'a> {
    list: &'a str,
    items: Vec<&'a str>,
    required: Vec<&'a str>,
}

impl<'a> Input<'a> {
    fn from_text(text: &'a str) -> Input<'a> {
        let mut lines = text.split('\n');
        let list = lines.next().unwrap_or_default();
        let items = lines.by_ref().take_while(|l| !l.is_empty()).collect();
        let required = lines.collect();
        Input { list, items, required }
    }
}

fn well_formed(name: &str) -> bool {
    name == "*"
        || (!name.is_empty()
            && name.len() <= MAX_SCOPE_LEN
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-')))
}

fn check_list(scopes: &Scopes, items: &[&str], required: &[&str]) {
    let held = scopes.as_slice();
    assert!(held.len() <= MAX_SCOPES);
    for (i, s) in held.iter().enumerate() {
        assert!(well_formed(s) && is_scope_name(s) && !s.contains(','), "{s:?}");
        assert!(!held[..i].contains(s), "duplicate {s:?}");
    }
    // In input order: the first occurrences of the trimmed items.
    let mut expected: Vec<&str> = Vec::new();
    for item in items.iter().map(|i| i.trim()) {
        if !expected.contains(&item) {
            expected.push(item);
        }
    }
    assert_eq!(held, expected);

    let stored = scopes.to_stored();
    assert_eq!(scopes.to_string(), stored);
    assert_eq!(Scopes::from_stored(&stored).as_ref(), Ok(scopes));
    if !held.is_empty() {
        assert_eq!(Scopes::parse(&stored).as_ref(), Ok(scopes));
    }

    let star = held.iter().any(|s| s == "*");
    for r in required {
        assert_eq!(scopes.grants(r), star || held.iter().any(|s| s == r));
    }
    assert_eq!(
        scopes.first_missing(required),
        required.iter().copied().find(|r| !(star || held.iter().any(|s| s == r)))
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let input = Input::from_text(&text);
    let from_list: Vec<&str> = input.list.split(',').collect();
    match Scopes::parse(input.list) {
        Ok(scopes) => check_list(&scopes, &from_list, &input.required),
        Err(_) => {
            assert!(Scopes::new(&from_list).is_err(), "parse and new disagree on {:?}", input.list)
        }
    }

    let distinct = {
        let mut seen: Vec<&str> = Vec::new();
        for item in input.items.iter().map(|i| i.trim()) {
            if !seen.contains(&item) {
                seen.push(item);
            }
        }
        seen.len()
    };
    let names_ok = input.items.iter().all(|i| well_formed(i.trim())) && distinct <= MAX_SCOPES;
    match Scopes::new(&input.items) {
        Ok(scopes) => {
            assert!(names_ok && distinct > 0, "{:?} accepted", input.items);
            check_list(&scopes, &input.items, &input.required);
        }
        Err(_) => assert!(!names_ok || distinct == 0, "{:?} refused", input.items),
    }
    match Scopes::held(&input.items) {
        Ok(scopes) => {
            assert!(names_ok, "{:?} held", input.items);
            check_list(&scopes, &input.items, &input.required);
        }
        Err(_) => assert!(!names_ok, "{:?} refused by held", input.items),
    }
    // The stored form of anything, including "" (no scopes).
    if let Ok(scopes) = Scopes::from_stored(input.list) {
        let items: Vec<&str> = if input.list.is_empty() { Vec::new() } else { from_list.clone() };
        check_list(&scopes, &items, &input.required);
    }

    assert_eq!(
        check_required(&input.required).is_ok(),
        input.required.len() <= MAX_SCOPES && input.required.iter().all(|r| well_formed(r)),
        "check_required({:?})",
        input.required
    );
});
