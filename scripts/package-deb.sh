#!/usr/bin/env bash
# Builds the Debian packages of heratio-keys into target/debian/:
#   heratio-keys            keygen, keygen(1), completions, systemd units, /etc/heratio-keys/
#   libheratio-keys0        libheratio_keys.so.0 (the C ABI)
#   libheratio-keys-dev     header, pkg-config file, libheratio_keys.so link, static library
#   phpX.Y-heratio-keys     the PHP extension, for the PHP that PHP_CONFIG belongs to
# with plain dpkg-deb from staged trees (no debhelper, no cargo-deb): the
# release artefacts the test stages already built are reused, cargo rebuilds
# only what is stale. docs/packaging.md explains the split and the choices.
#
# Usage: scripts/package-deb.sh [--lintian] [--no-build]
#   --lintian   run lintian on the packages (fails on errors and warnings not
#               overridden; overrides and their reasons: packaging/deb/*.lintian-overrides)
#   --no-build  package what target/release holds, without asking cargo
# Environment: CARGO_TARGET_DIR; PHP_CONFIG (absolute path, default
# `command -v php-config`; scripts/test.sh exports php-config8.2);
# DEB_MAINTAINER (default: the changelog's top entry).
# Needs: cargo, dpkg-dev, binutils; for the PHP package php-dev of that PHP.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

run_lintian=0
build=1
for arg in "$@"; do
    case $arg in
        --lintian) run_lintian=1 ;;
        --no-build) build=0 ;;
        *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

die() { echo "package-deb: $*" >&2; exit 1; }

target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir="$root/$target_dir"
release="$target_dir/release"
out="$target_dir/debian"
pkgdir="$root/packaging/deb"

# --- versions and paths ----------------------------------------------------
upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
changelog="$pkgdir/changelog"
version=$(dpkg-parsechangelog -l "$changelog" -S Version)
# A release without its changelog entry would ship the previous version number.
[[ ${version%-*} == "$upstream" ]] ||
    die "packaging/deb/changelog's top entry is $version, Cargo.toml says $upstream: add an entry"
maintainer=${DEB_MAINTAINER:-$(dpkg-parsechangelog -l "$changelog" -S Maintainer)}
# Reproducible: every timestamp in the packages is the changelog entry's
# (exported after the cargo build: C build scripts track the variable, and
# setting it made cargo rebuild libsqlite3-sys, ext-php-rs and everything
# above them, which the test stages had just built).
source_date_epoch=$(dpkg-parsechangelog -l "$changelog" -S Timestamp)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)

PHP_CONFIG=${PHP_CONFIG:-$(command -v php-config || true)}
[[ -x $PHP_CONFIG ]] || die "no php-config (install php8.2-dev, or set PHP_CONFIG)"
php_version=$("$PHP_CONFIG" --version | cut -d. -f1,2)
phpapi=$("$PHP_CONFIG" --phpapi)
php_extdir=$("$PHP_CONFIG" --extension-dir)
php_pkg="php$php_version-heratio-keys"
# ext-php-rs wants absolute paths; the same values as scripts/test.sh keep
# cargo from rebuilding the extension.
PHP=${PHP:-$(command -v "php$php_version" || command -v php)}
export PHP_CONFIG PHP

# --- build what is stale -----------------------------------------------------
# The same package sets as tests/c/run.sh and tests/php/run.sh, so that after
# those stages cargo finds everything fresh (a different set can unify
# dependency features differently and relink).
if ((build)); then
    echo "==> cargo build --release (fresh artefacts are reused)"
    cargo build --release --locked -p heratio-keys-ffi -p heratio-keys-cli
    cargo build --release --locked -p heratio-keys-php
fi
SOURCE_DATE_EPOCH=$source_date_epoch
export SOURCE_DATE_EPOCH
keygen="$release/keygen"
ext="$release/libheratio_keys_php.so"
for f in "$keygen" "$ext" "$release/libheratio_keys.so" "$release/libheratio_keys.a"; do
    [[ -f $f ]] || die "missing $f (run without --no-build)"
done

rm -rf "$out"
mkdir -p "$out"
stage="$out/stage"

# --- helpers -----------------------------------------------------------------
# strip_elf FILE: what dh_strip does; release builds keep their symbol
# tables for profiling, packages do not ship them (no debug info to split).
strip_elf() {
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$1"
}

# doc_files PKG: copyright and changelog, as policy 12.5 and 12.7 want them.
doc_files() {
    local d="$stage/$1/usr/share/doc/$1"
    mkdir -p "$d"
    install -m 0644 "$out/copyright" "$d/copyright"
    gzip -9n <"$changelog" >"$d/changelog.Debian.gz"
    chmod 0644 "$d/changelog.Debian.gz"
    # One overrides file for the PHP package whatever its PHP version.
    local overrides="$pkgdir/${1/#php$php_version-/php-}.lintian-overrides"
    if [[ -f $overrides ]]; then
        mkdir -p "$stage/$1/usr/share/lintian/overrides"
        install -m 0644 "$overrides" "$stage/$1/usr/share/lintian/overrides/$1"
    fi
}

# shlib_depends PKG: the Depends that dpkg-shlibdeps computes for the ELF
# files of PKG (libc6 (>= 2.x), …), our own library resolved from the staged
# libheratio-keys0 if anything links it.
shlib_depends() {
    local tmp="$out/shlibdeps" files
    mapfile -t files < <(find "$stage/$1" -path "$stage/$1/DEBIAN" -prune -o -type f \
        \( -name '*.so*' -o -perm -u+x \) -print | while read -r f; do
            [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == 177ELF ]] && echo "$f"
        done)
    ((${#files[@]})) || return 0
    mkdir -p "$tmp/debian"
    printf 'Source: heratio-keys\n\nPackage: %s\nArchitecture: any\n' "$1" >"$tmp/debian/control"
    (cd "$tmp" && dpkg-shlibdeps -O -S"$stage/libheratio-keys0" \
        -l"$stage/libheratio-keys0/usr/lib/$multiarch" "${files[@]}") |
        sed -n 's/^shlibs:Depends=//p'
}

# build_deb PKG SECTION DEPENDS SUMMARY DESCRIPTION [EXTRA-FIELDS]
build_deb() {
    local pkg=$1 section=$2 depends=$3 summary=$4 description=$5 extra=${6:-}
    local dir="$stage/$pkg" auto
    doc_files "$pkg"
    auto=$(shlib_depends "$pkg")
    depends=$(printf '%s\n' "$auto" "$depends" | tr ',' '\n' | sed 's/^ *//;s/ *$//' | grep -v '^$' |
        sort -u | paste -sd, | sed 's/,/, /g')
    mkdir -p "$dir/DEBIAN"
    {
        echo "Package: $pkg"
        [[ $pkg == heratio-keys ]] || echo "Source: heratio-keys"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: $maintainer"
        echo "Installed-Size: $(du -sk --exclude=DEBIAN "$dir" | cut -f1)"
        [[ -n $depends ]] && echo "Depends: $depends"
        [[ -n $extra ]] && printf '%s\n' "$extra"
        echo "Section: $section"
        echo "Priority: optional"
        echo "Homepage: https://github.com/heratio/heratio-keys"
        echo "Description: $summary"
        printf '%s\n' "$description" | sed 's/^$/./; s/^/ /'
    } >"$dir/DEBIAN/control"
    # md5sums of every file but the conffiles, as dh_md5sums writes it.
    (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
        { if [[ -f DEBIAN/conffiles ]]; then grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles); else cat; fi; } |
        xargs -r md5sum >DEBIAN/md5sums)
    find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    # xz -3, not dpkg's -6: a third of the CPU time (this runs in every CI
    # run) for packages about a tenth larger.
    dpkg-deb --root-owner-group -Zxz -z3 --build "$dir" "$out/${pkg}_${version}_$arch.deb" >/dev/null
    echo "    $(basename "$out/${pkg}_${version}_$arch.deb") ($(du -k "$out/${pkg}_${version}_$arch.deb" | cut -f1) KiB)"
}

# --- shared documents --------------------------------------------------------
# copyright: ours, plus what is compiled into the binaries (Rust crates and
# the bundled SQLite), listed from cargo's resolved graph.
{
    sed '/^Files: \*/,$d' "$pkgdir/copyright"
    echo "Comment: The binaries also contain these Rust crates, statically linked, under"
    echo " their own licenses (name, version, license as declared on crates.io); the"
    echo " crate libsqlite3-sys compiles in SQLite, which is in the public domain:"
    cargo metadata --locked --format-version 1 --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" |
        python3 -c '
import json, sys
m = json.load(sys.stdin)
pk = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
roots = [i for i in m["workspace_members"]
         if pk[i]["name"] in ("heratio-keys-cli", "heratio-keys-ffi", "heratio-keys-php")]
seen, todo = set(), list(roots)
while todo:
    i = todo.pop()
    if i in seen:
        continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        # normal dependencies only: build scripts and tests are not shipped
        if any(k["kind"] is None for k in d["dep_kinds"]):
            todo.append(d["pkg"])
for p in sorted((pk[i] for i in seen if i not in m["workspace_members"]),
                key=lambda p: (p["name"], p["version"])):
    print("  %s %s: %s" % (p["name"], p["version"], p["license"] or "see crates.io"))
'
    echo
    sed -n '/^Files: \*/,$p' "$pkgdir/copyright"
} >"$out/copyright"

echo "==> staging"
# --- heratio-keys ------------------------------------------------------------
d="$stage/heratio-keys"
install -D -m 0755 "$keygen" "$d/usr/bin/keygen"
strip_elf "$d/usr/bin/keygen"
mkdir -p "$d/usr/share/man/man1"
"$keygen" man | gzip -9n >"$d/usr/share/man/man1/keygen.1.gz"
install -d "$d/usr/share/bash-completion/completions" "$d/usr/share/zsh/vendor-completions" \
    "$d/usr/share/fish/vendor_completions.d"
"$keygen" completions bash >"$d/usr/share/bash-completion/completions/keygen"
"$keygen" completions zsh >"$d/usr/share/zsh/vendor-completions/_keygen"
"$keygen" completions fish >"$d/usr/share/fish/vendor_completions.d/keygen.fish"
for unit in heratio-keys.service heratio-keys-maintain.service heratio-keys-maintain.timer; do
    install -D -m 0644 "$pkgdir/heratio-keys/$unit" "$d$unitdir/$unit"
done
# 0640: the DSN may hold a password; postinst gives it group heratio-keys.
install -D -m 0640 "$pkgdir/heratio-keys/keygen.env" "$d/etc/heratio-keys/keygen.env"
mkdir -p "$d/usr/share/doc/heratio-keys" "$d/DEBIAN"
for doc in cli.md web.md install.md packaging.md; do
    gzip -9n <"docs/$doc" >"$d/usr/share/doc/heratio-keys/$doc.gz"
done
echo /etc/heratio-keys/keygen.env >"$d/DEBIAN/conffiles"
install -m 0755 "$pkgdir/heratio-keys/postinst" "$pkgdir/heratio-keys/prerm" \
    "$pkgdir/heratio-keys/postrm" "$d/DEBIAN/"
find "$d/usr/share" -type f -exec chmod 0644 {} +

# --- libheratio-keys0 and libheratio-keys-dev ---------------------------------
# scripts/install-c.sh lays out the library as it does for any prefix (the
# soname symlinks, the pkg-config file); the files are then split between
# the runtime and the development package as Debian policy 8 wants.
c="$out/c-install"
DESTDIR="$c" scripts/install-c.sh /usr --no-build --libdir "lib/$multiarch" >/dev/null
lib="$stage/libheratio-keys0/usr/lib/$multiarch"
dev="$stage/libheratio-keys-dev/usr"
mkdir -p "$lib" "$dev/lib/$multiarch" "$dev/include"
so_real=$(cd "$c/usr/lib/$multiarch" && echo libheratio_keys.so.*.*.*)
soname=$(readelf -d "$c/usr/lib/$multiarch/$so_real" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ $soname == libheratio_keys.so.0 ]] || die "soname is '$soname', the package name says libheratio_keys.so.0"
# Shared objects are not executables: 0644 (policy 8.1).
install -m 0644 "$c/usr/lib/$multiarch/$so_real" "$lib/$so_real"
strip_elf "$lib/$so_real"
cp -P "$c/usr/lib/$multiarch/$soname" "$lib/"
cp -P "$c/usr/lib/$multiarch/libheratio_keys.so" "$dev/lib/$multiarch/"
install -m 0644 "$c/usr/lib/$multiarch/libheratio_keys.a" "$dev/lib/$multiarch/"
# .llvmbc/.llvmcmd are rustc's embedded LLVM bitcode (half the archive, 32 of
# 60 MB): only cross-language LTO with this exact rustc could use it.
strip --strip-debug --remove-section=.comment --remove-section=.note \
    --remove-section=.llvmbc --remove-section=.llvmcmd \
    --enable-deterministic-archives "$dev/lib/$multiarch/libheratio_keys.a"
cp -r "$c/usr/lib/$multiarch/pkgconfig" "$dev/lib/$multiarch/"
cp "$c/usr/include/heratio_keys.h" "$dev/include/"
mkdir -p "$stage/libheratio-keys0/DEBIAN"
# Packages linking the library depend on this version or later (every later
# 0.x keeps the ABI of libheratio_keys.so.0; a break bumps the soname).
echo "libheratio_keys 0 libheratio-keys0 (>= $upstream)" >"$stage/libheratio-keys0/DEBIAN/shlibs"
echo "activate-noawait ldconfig" >"$stage/libheratio-keys0/DEBIAN/triggers"

# --- phpX.Y-heratio-keys ------------------------------------------------------
p="$stage/$php_pkg"
install -D -m 0644 "$ext" "$p$php_extdir/heratio_keys.so"
strip_elf "$p$php_extdir/heratio_keys.so"
install -D -m 0644 "$pkgdir/php/heratio_keys.ini" "$p/etc/php/$php_version/mods-available/heratio_keys.ini"
mkdir -p "$p/DEBIAN"
echo "/etc/php/$php_version/mods-available/heratio_keys.ini" >"$p/DEBIAN/conffiles"
for script in postinst postrm; do
    sed "s/@PHP_VERSION@/$php_version/g" "$pkgdir/php/$script" >"$p/DEBIAN/$script"
    chmod 0755 "$p/DEBIAN/$script"
done
# php-fpm (and Apache's mod_php) restart when the extension changes, as with
# Debian's own extension packages.
printf 'activate-noawait /etc/php/%s/%s/conf.d\n' "$php_version" apache2 "$php_version" fpm \
    >"$p/DEBIAN/triggers"

echo "==> building into $out"
build_deb heratio-keys admin "adduser" \
    "Heratio API key management: keygen CLI and web admin" \
    "keygen creates, rotates, revokes and audits the API keys (hk_api_...) and
AI tokens (hk_ai_...) of AtoM Heratio, over a SQLite or MariaDB/MySQL key
database. 'keygen serve' runs the web administration and the HTTP verify
endpoint as a hardened systemd service; a timer runs the maintenance pass
(idle-key revocation and retention).

Validation itself happens in the PHP extension (php*-heratio-keys) or the C
library (libheratio-keys0)."
build_deb libheratio-keys0 libs "" \
    "Heratio API key validation library (C ABI)" \
    "libheratio_keys validates Heratio API keys and AI tokens in-process, with a
cache kept correct by a revocation feed and non-blocking usage recording,
against the keygen database (SQLite or MariaDB/MySQL)." \
    "Multi-Arch: same"
build_deb libheratio-keys-dev libdevel "libheratio-keys0 (= $version)" \
    "Heratio API key validation library (C ABI) - development files" \
    "The header heratio_keys.h, the pkg-config file heratio_keys.pc, the
libheratio_keys.so link and the static library, to build C programs (or any
language with a C FFI) that validate Heratio API keys and AI tokens." \
    "Multi-Arch: same"
# The extension contains the core statically: it needs libheratio-keys0 only
# if it were linked against it, which shlib_depends would then say.
build_deb "$php_pkg" php "phpapi-$phpapi, php-common (>= 1:7.0+33)" \
    "Heratio API key validation for PHP $php_version (heratio_keys extension)" \
    "The heratio_keys extension validates Heratio API keys and AI tokens inside
PHP (heratio_keys_validate_api_key(), heratio_keys_authenticate(), ...): one
in-process cache per worker or per host, a revocation feed, usage recorded
without blocking the request. Enabled for every SAPI with phpenmod.
Built for PHP $php_version (PHP API $phpapi)."

rm -rf "$stage" "$c" "$out/shlibdeps"

if ((run_lintian)); then
    echo "==> lintian"
    # --fail-on warning: errors and warnings fail unless overridden (with
    # a reason) in packaging/deb/*.lintian-overrides.
    lintian --fail-on error,warning --tag-display-limit 0 "$out"/*.deb
fi
echo "packages in $out"
