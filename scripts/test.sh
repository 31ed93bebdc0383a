#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian 12 machine:
#   1. installs what is missing (apt packages),
#   2. starts a throwaway MariaDB in a temporary directory,
#   3. runs rustfmt, clippy (-D warnings), every Rust test, the C tests
#      (under valgrind, header drift check included) and the PHP tests
#      (php CLI and php-fpm behind nginx) against SQLite and MariaDB, the
#      Laravel drop-in in a real Laravel app, and the
#      web admin's browser tests in headless Chromium, and the benchmark
#      harness in smoke mode,
#   4. stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    mariadb-server mariadb-client pkg-config                    # stores
    gcc g++ valgrind binutils python3                           # C ABI tests
    php8.2-cli php8.2-dev php8.2-fpm php8.2-sqlite3 php8.2-mysql # PHP extension
    libclang-dev nginx wrk                                      # ext-php-rs bindgen, FPM deployment test
    php-laravel-framework                                       # Laravel drop-in test (Laravel 8)
    chromium                                                    # web admin browser tests
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
SUDO_CMD=""
[[ $(id -u) -eq 0 ]] || SUDO_CMD="sudo"
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    $SUDO_CMD apt-get update -qq
    $SUDO_CMD apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "==> starting a throwaway MariaDB"
eval "$(scripts/mariadb.sh start)"
trap 'scripts/mariadb.sh stop "$HK_MARIADB_DIR"' EXIT
export HERATIO_KEYS_REQUIRE_MYSQL=1
echo "    $(mariadbd --version)"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test (SQLite and MariaDB)"
cargo test --workspace --locked

echo "==> C ABI: header drift, install, gcc -Werror, valgrind, static link"
tests/c/run.sh

echo "==> PHP extension: php CLI suite and php-fpm + nginx deployment"
tests/php/run.sh

echo "==> Laravel drop-in: heratio/keys-laravel in a real Laravel app (php-fpm + nginx, MariaDB)"
tests/laravel/run.sh

echo "==> benchmark harness, smoke mode (so it never rots)"
benches/harness/run.sh --smoke

echo "==> web admin: headless Chromium"
if ! command -v npm >/dev/null; then
    $SUDO_CMD apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
tests/web/run.sh

echo "==> all tests passed"
