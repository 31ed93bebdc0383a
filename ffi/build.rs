//! Generates `include/heratio_keys.h` with cbindgen (a build dependency, so
//! no `cargo install` is needed) from the whole crate, and gives the shared
//! library its soname.
//!
//! The header is committed; CI checks for drift with
//! `cargo build -p heratio-keys-ffi && git diff --exit-code include/`.

use std::path::Path;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let dir = Path::new(&dir);
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    // ABI version 0: bumped on any incompatible change to the C ABI,
    // independently of the crate version (see docs/c-api.md).
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        target_os.as_str(),
        "linux" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "android"
    ) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libheratio_keys.so.0");
    }

    let version = |part: &str| {
        std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("version set by cargo")
    };
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .expect("ffi/cbindgen.toml is readable and valid");
    config.after_includes = Some(format!(
        "\n/* The version of this header; hk_version() returns the library's. */\n\
         #define HK_VERSION_MAJOR {}\n\
         #define HK_VERSION_MINOR {}\n\
         #define HK_VERSION_PATCH {}\n\
         #define HK_VERSION \"{}\"\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        std::env::var("CARGO_PKG_VERSION").expect("version set by cargo"),
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_crate(dir)
        .generate()
        .expect("cbindgen can parse the heratio-keys-ffi crate");
    let mut header = Vec::new();
    bindings.write(&mut header);
    let path = dir.join("../include/heratio_keys.h");
    // Rewrite only on change, so an unchanged header keeps its timestamp.
    if std::fs::read(&path).ok().as_deref() != Some(header.as_slice()) {
        std::fs::create_dir_all(dir.join("../include")).expect("include/ can be created");
        std::fs::write(&path, header).expect("include/heratio_keys.h is writable");
    }
}
