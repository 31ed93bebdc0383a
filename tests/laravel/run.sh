#!/usr/bin/env bash
# heratio/keys-laravel (php/laravel) in a real Laravel application: Debian's
# Laravel 8 (php-laravel-framework), served by php-fpm behind nginx, against
# keys imported with `keygen import:heratio` from a Heratio-shaped
# ahg_api_key table on MariaDB. Builds the extension and keygen as
# tests/php/run.sh does, starts a throwaway MariaDB unless
# HERATIO_KEYS_TEST_MYSQL_DSN is set, and ends with
# "Laravel tests: N passed, M failed". Exit status 0 only if all passed.
#
# Needs: php8.2-cli php8.2-dev php8.2-fpm php8.2-mysql nginx libclang-dev
# php-laravel-framework mariadb-server. Env:
#   HERATIO_KEYS_TEST_MYSQL_DSN   mysql://user:pass@host:port/db (user may CREATE DATABASE hk_test_*)
#   PHP_CONFIG                    php-config of the target PHP (ext-php-rs reads it; left as
#                                 tests/php/run.sh leaves it, so the two stages share one build)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
php_bin="${PHP:-php}"

missing=()
for tool in "$php_bin" nginx mariadbd; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -x "${PHP_FPM:-/usr/sbin/php-fpm8.2}" ]] || missing+=("php-fpm8.2")
[[ -f /usr/share/php/Illuminate/autoload.php ]] || missing+=("php-laravel-framework")
if ((${#missing[@]})); then
    echo "error: missing ${missing[*]} (apt-get install php8.2-cli php8.2-dev php8.2-fpm php8.2-mysql nginx libclang-dev php-laravel-framework mariadb-server)" >&2
    echo "Laravel tests: 0 passed, 1 failed"
    exit 1
fi

echo "== building the extension (release) and keygen =="
cargo build --release -p heratio-keys-php
cargo build -p heratio-keys-cli
target="${CARGO_TARGET_DIR:-$root/target}"
so="$target/release/libheratio_keys_php.so"
keygen="$target/debug/keygen"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/heratio-keys-laravel.XXXXXX")"
cleanup() {
    if [[ -n "${own_mariadb:-}" ]]; then
        scripts/mariadb.sh stop "$own_mariadb"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
chmod 755 "$tmp"
install -m 755 "$so" "$tmp/heratio_keys.so"

if [[ -z "${HERATIO_KEYS_TEST_MYSQL_DSN:-}" ]]; then
    echo "== starting a throwaway MariaDB =="
    eval "$(scripts/mariadb.sh start)"
    own_mariadb="$HK_MARIADB_DIR"
fi

echo "== Laravel $(sed -n "s/.*const VERSION = '\([^']*\)'.*/\1/p" /usr/share/php/Illuminate/Foundation/Application.php) + heratio/keys-laravel, php-fpm + nginx, MariaDB =="
start=$SECONDS
status=0
"$php_bin" tests/laravel/test.php "$tmp/heratio_keys.so" "$keygen" "$tmp" 2>&1 | tee "$tmp/out.log" || status=$?
tally="$(grep -E '^TALLY [0-9]+ [0-9]+$' "$tmp/out.log" | tail -1 || true)"
passed=0
failed=1
if [[ -n "$tally" ]]; then
    read -r _ passed failed <<<"$tally"
    ((status == 0 || failed > 0)) || failed=1
fi
echo "(test run: $((SECONDS - start)) s)"
echo "Laravel tests: $passed passed, $failed failed"
((failed == 0))
