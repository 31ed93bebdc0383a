#!/usr/bin/env bash
# PHP-level tests of the heratio_keys extension: builds it, runs the CLI
# suite, the php-fpm + nginx deployment test and the host region's fault
# tests (shared.php: a SIGKILLed leader, a corrupted region, an unusable one)
# on SQLite and (when HERATIO_KEYS_TEST_MYSQL_DSN is set) MariaDB, prints the
# measured figures and ends with "PHP tests: N passed, M failed". Exit status
# 0 only if all passed.
#
# Needs: php8.2-cli php8.2-dev php8.2-fpm php8.2-sqlite3 php8.2-mysql nginx
# libclang-dev (wrk for the requests/s figure). Env:
#   HERATIO_KEYS_TEST_MYSQL_DSN   mysql://user:pass@host:port/db (user may CREATE DATABASE hk_test_*)
#   HERATIO_KEYS_REQUIRE_MYSQL=1  fail instead of skipping MariaDB when the DSN is unset
#   HERATIO_KEYS_PHP_PROFILE      cargo profile of the extension (default release)
#   HERATIO_KEYS_BENCH_SECONDS    wrk duration (default 5; 0 = no throughput run)
#   HK_COST_CALLS                 calls per pass of the rate-limited vs unlimited cost loop (default 20000)
#   PHP_CONFIG                    php-config of the target PHP (ext-php-rs reads it)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
php_bin="${PHP:-php}"
profile="${HERATIO_KEYS_PHP_PROFILE:-release}"
bench="${HERATIO_KEYS_BENCH_SECONDS:-5}"

missing=()
for tool in "$php_bin" php-config nginx; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ! command -v "${PHP_FPM:-php-fpm8.2}" >/dev/null 2>&1 && ! [ -x /usr/sbin/php-fpm8.2 ]; then
    missing+=("php-fpm8.2")
fi
if ((${#missing[@]})); then
    echo "error: missing ${missing[*]} (apt-get install php8.2-cli php8.2-dev php8.2-fpm php8.2-sqlite3 php8.2-mysql nginx libclang-dev wrk)" >&2
    echo "PHP tests: 0 passed, 1 failed"
    exit 1
fi

stores=(sqlite)
if [[ -n "${HERATIO_KEYS_TEST_MYSQL_DSN:-}" ]]; then
    stores+=(mysql)
elif [[ "${HERATIO_KEYS_REQUIRE_MYSQL:-0}" == 1 ]]; then
    echo "error: HERATIO_KEYS_REQUIRE_MYSQL=1 but HERATIO_KEYS_TEST_MYSQL_DSN is not set" >&2
    echo "PHP tests: 0 passed, 1 failed"
    exit 1
else
    echo "note: HERATIO_KEYS_TEST_MYSQL_DSN not set: MariaDB tests skipped"
fi

echo "== building the extension ($profile) and keygen =="
target="${CARGO_TARGET_DIR:-$root/target}"
if [[ "$profile" == release ]]; then
    cargo build --release -p heratio-keys-php
    so="$target/release/libheratio_keys_php.so"
else
    cargo build --profile "$profile" -p heratio-keys-php
    so="$target/$profile/libheratio_keys_php.so"
    [[ "$profile" == dev ]] && so="$target/debug/libheratio_keys_php.so"
fi
cargo build -p heratio-keys-cli
keygen="$target/debug/keygen"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/heratio-keys-php.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
# heratio_keys.shared_cache is On by default: every PHP process of these
# tests keeps its host region in a private directory, never in /dev/shm (the
# FPM pools get it through env[HERATIO_KEYS_REGION_DIR]).
export HERATIO_KEYS_REGION_DIR="$tmp/regions"
mkdir -m 700 "$HERATIO_KEYS_REGION_DIR"
# Installed under its real name, as an operator would.
install -m 755 "$so" "$tmp/heratio_keys.so"
# The suite loads the build above with -d extension=. Where heratio_keys is
# also enabled system-wide (docs/install.md, or tests/docs/run.sh running
# alongside), PHP would load that installed copy first ("Module already
# loaded") and test it instead: run PHP with the system's ini files minus
# heratio_keys. (php-fpm is started with -n and is not affected.)
scan_dirs="$("$php_bin" -r 'echo PHP_CONFIG_FILE_SCAN_DIR;')"
if [[ -n "${PHP_INI_SCAN_DIR:-}" ]]; then
    scan_dirs="$PHP_INI_SCAN_DIR"
fi
mkdir "$tmp/conf.d"
IFS=: read -r -a dirs <<<"$scan_dirs"
for d in "${dirs[@]}"; do
    for ini in "$d"/*.ini; do
        [[ -e "$ini" ]] || continue
        grep -qE '^[[:space:]]*extension[[:space:]]*=[[:space:]]*"?([^"]*/)?heratio_keys(\.so)?"?[[:space:]]*$' "$ini" && continue
        ln -sf "$ini" "$tmp/conf.d/$(basename "$ini")"
    done
done
export PHP_INI_SCAN_DIR="$tmp/conf.d"
ext="$tmp/heratio_keys.so"

passed=0
failed=0
log="$tmp/out.log"
run() {
    local status=0
    "$php_bin" "$@" 2>&1 | tee "$log" || status=$?
    local tally
    tally="$(grep -E '^TALLY [0-9]+ [0-9]+$' "$log" | tail -1 || true)"
    if [[ -z "$tally" ]]; then
        echo "  FAIL $1 ${2:-}: no result (exit $status)"
        failed=$((failed + 1))
        return
    fi
    read -r _ p f <<<"$tally"
    passed=$((passed + p))
    failed=$((failed + f))
    if ((status != 0 && f == 0)); then
        failed=$((failed + 1))
    fi
    grep -hE '^  (NS_PER_CALL|NS_UNLIMITED|NS_LIMITED|RESERVATIONS_PER_1000|CALL_UNLIMITED|CALL_LIMITED|REVOCATION_MS|REQUESTS_PER_SEC|TAKEOVER_MS|REVOCATION_AFTER_TAKEOVER_MS|USAGE_ROWS)' "$log" | sed "s/^ */$2 /" >>"$tmp/figures" || true
}

for store in "${stores[@]}"; do
    dir="$tmp/$store"
    mkdir -p "$dir/cli" "$dir/fpm"
    run tests/php/suite.php "$store" "$ext" "$keygen" "$dir/cli"
    b=0
    [[ "$store" == "${stores[-1]}" ]] && b="$bench"
    run tests/php/fpm.php "$store" "$ext" "$keygen" "$dir/fpm" "$b"
    mkdir -p "$dir/shared"
    run tests/php/shared.php "$store" "$ext" "$keygen" "$dir/shared"
done

echo
echo "== figures (this run; extension profile $profile) =="
if [[ -f "$tmp/figures" ]]; then
    sed 's/NS_PER_CALL/ns per heratio_keys_validate_api_key (cache hit, PHP loop):/;
         s/NS_UNLIMITED/ns per cached validation, unlimited key (median of 7 passes):/;
         s/NS_LIMITED/ns per cached validation, rate-limited key (same run):/;
         s/RESERVATIONS_PER_1000/rate-limit reservations (store transactions) per 1000 limited validations:/;
         s/CALL_UNLIMITED/ns per call (hrtime around each call), unlimited key:/;
         s/CALL_LIMITED/ns per call (hrtime around each call), rate-limited key:/;
         s/REVOCATION_MS/revocation seen by every FPM worker after (ms):/;
         s/REQUESTS_PER_SEC/requests\/s through nginx + php-fpm (4 workers, wrk -t2 -c16):/;
         s/REVOCATION_AFTER_TAKEOVER_MS/revocation seen by every worker after the takeover (ms):/;
         s/TAKEOVER_MS/host leadership taken over after SIGKILL of the leading worker (ms):/;
         s/USAGE_ROWS_CORRUPTION/usage rows around the region corruption:/;
         s/USAGE_ROWS/usage rows around the SIGKILL:/' "$tmp/figures"
fi
echo "PHP tests: $passed passed, $failed failed"
((failed == 0))
