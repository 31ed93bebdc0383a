#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian 12 machine:
#   1. installs what is missing (apt packages),
#   2. starts a throwaway MariaDB in a temporary directory,
#   3. runs rustfmt, clippy (-D warnings) and every test against SQLite and
#      MariaDB,
#   4. stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mariadb-server mariadb-client pkg-config)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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

echo "==> all tests passed"
