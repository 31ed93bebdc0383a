#!/usr/bin/env bash
# Installs the C library of heratio-keys under PREFIX:
#   PREFIX/lib/libheratio_keys.so.X.Y.Z  (soname libheratio_keys.so.0)
#   PREFIX/lib/libheratio_keys.so.0 -> libheratio_keys.so.X.Y.Z
#   PREFIX/lib/libheratio_keys.so   -> libheratio_keys.so.0
#   PREFIX/lib/libheratio_keys.a
#   PREFIX/lib/pkgconfig/heratio_keys.pc
#   PREFIX/include/heratio_keys.h
#
# Usage: scripts/install-c.sh PREFIX [--debug] [--no-build] [--libdir DIR]
#   --debug       install the debug build (default: release)
#   --no-build    install what target/ already holds
#   --libdir DIR  libraries in PREFIX/DIR (default lib; Debian: lib/x86_64-linux-gnu)
# Honours CARGO_TARGET_DIR, and DESTDIR: files go under DESTDIR/PREFIX but
# are written for PREFIX (absolute), as packaging wants (scripts/package-deb.sh).
# Linux (ELF) only; run ldconfig after installing into a system prefix.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
prefix=$1
shift
profile=release
build=1
libsub=lib
while (($#)); do
    case $1 in
        --debug) profile=debug ;;
        --no-build) build=0 ;;
        --libdir) [[ $# -ge 2 ]] || usage; libsub=$2; shift ;;
        *) usage ;;
    esac
    shift
done
destdir=${DESTDIR:-}

if ((build)); then
    flags=()
    [[ $profile == release ]] && flags+=(--release)
    cargo build -p heratio-keys-ffi "${flags[@]}" --locked
fi

target_dir=${CARGO_TARGET_DIR:-target}
out="$target_dir/$profile"
header=include/heratio_keys.h
version=$(sed -n 's/^#define HK_VERSION "\(.*\)"$/\1/p' "$header")
[[ -n $version ]] || { echo "no HK_VERSION in $header" >&2; exit 1; }
for f in "$out/libheratio_keys.so" "$out/libheratio_keys.a"; do
    [[ -f $f ]] || { echo "missing $f (build first)" >&2; exit 1; }
done

if [[ -n $destdir ]]; then
    [[ $prefix == /* ]] || { echo "with DESTDIR, PREFIX must be absolute" >&2; exit 2; }
else
    mkdir -p "$prefix"
    prefix=$(cd "$prefix" && pwd)
fi
libdir="$destdir$prefix/$libsub"
mkdir -p "$libdir/pkgconfig" "$destdir$prefix/include"
install -m 0755 "$out/libheratio_keys.so" "$libdir/libheratio_keys.so.$version"
ln -sfn "libheratio_keys.so.$version" "$libdir/libheratio_keys.so.0"
ln -sfn "libheratio_keys.so.0" "$libdir/libheratio_keys.so"
install -m 0644 "$out/libheratio_keys.a" "$libdir/libheratio_keys.a"
install -m 0644 "$header" "$destdir$prefix/include/heratio_keys.h"

# What a static link needs besides libheratio_keys.a, as printed by
# `rustc --print native-static-libs` for x86_64/aarch64-unknown-linux-gnu.
static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cat > "$libdir/pkgconfig/heratio_keys.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/$libsub
includedir=\${prefix}/include
static_libs=$static_libs

Name: heratio_keys
Description: Heratio API key and AI token validation (C API of heratio-keys)
URL: https://github.com/heratio/heratio-keys
Version: $version
Libs: -L\${libdir} -lheratio_keys
Libs.private: $static_libs
Cflags: -I\${includedir}
PC
echo "installed heratio_keys $version ($profile) under $destdir$prefix"
