//! The committed header matches this crate: version macros equal
//! `Cargo.toml`'s version, and the fixed contract names are present.

fn header() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/heratio_keys.h");
    std::fs::read_to_string(path).expect("include/heratio_keys.h exists (built by ffi/build.rs)")
}

#[test]
fn version_macros_match_cargo_toml() {
    let h = header();
    for (name, value) in [
        ("HK_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("HK_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("HK_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(
            h.contains(&format!("#define {name} {value}\n")),
            "{name} {value}"
        );
    }
    assert!(h.contains(&format!(
        "#define HK_VERSION \"{}\"\n",
        env!("CARGO_PKG_VERSION")
    )));
    // SAFETY: hk_version returns a static NUL-terminated string.
    let lib = unsafe { std::ffi::CStr::from_ptr(heratio_keys::version::hk_version()) };
    assert_eq!(lib.to_str(), Ok(env!("CARGO_PKG_VERSION")));
}

#[test]
fn contract_names_and_values_are_in_the_header() {
    let h = header();
    for needle in [
        "HK_KIND_API_KEY = 1,",
        "HK_KIND_AI_TOKEN = 2,",
        "HK_STATUS_VALID = 0,",
        "HK_STATUS_MALFORMED = 1,",
        "HK_STATUS_WRONG_KIND = 2,",
        "HK_STATUS_NOT_FOUND = 3,",
        "HK_STATUS_REVOKED = 4,",
        "HK_STATUS_EXPIRED = 5,",
        "HK_STATUS_CLIENT_INACTIVE = 6,",
        "HK_STATUS_FORBIDDEN = 7,",
        "HK_STATUS_UNAVAILABLE = 8,",
        "HK_STATUS_RATE_LIMITED = 9,",
        "HK_STATUS_IP_DENIED = 10,",
        "HK_ERR_NO_RATE_LIMIT = -9,",
        "#define HK_METADATA_MAX 4097",
        "size_t hk_last_metadata(char *buf, size_t len);",
        "int hk_last_rate(struct hk_rate *out);",
        "typedef struct hk_validator hk_validator;",
        "int hk_validator_open(const char *dsn, struct hk_validator **out);",
        "hk_status hk_validate(struct hk_validator *v,\n                      hk_kind kind,\n                      const char *key,\n                      size_t key_len,\n                      const char *const *scopes,\n                      size_t scopes_len,\n                      const char *ip,\n                      const char *endpoint,\n                      struct hk_credential *out);",
        "hk_status hk_check_format(hk_kind kind, const char *key, size_t key_len);",
        "void hk_validator_free(struct hk_validator *v);",
        "const char *hk_status_name(hk_status s);",
        "uint16_t hk_status_http(hk_status s);",
        "const char *hk_version(void);",
        "size_t hk_last_error_message(char *buf, size_t len);",
        "API conventions",
    ] {
        assert!(h.contains(needle), "missing from the header: {needle}");
    }
}
