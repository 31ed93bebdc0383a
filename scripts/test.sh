#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian 12 machine:
#   1. installs what is missing (apt packages),
#   2. starts a throwaway MariaDB in a temporary directory,
#   3. runs rustfmt, clippy (-D warnings), every Rust test, the C tests
#      (under valgrind, header drift check included) and the PHP tests
#      (php CLI and php-fpm behind nginx) against SQLite and MariaDB, the
#      Laravel drop-in in a real Laravel app, and the
#      web admin's browser tests in headless Chromium, the benchmark
#      harness in smoke mode, the documentation's commands as written
#      (tests/docs/run.sh), and the Debian packages installed, checked and
#      removed (tests/deb/run.sh),
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

# Each stage's wall time, printed as it ends and summed up at the exit, so a
# CI log shows where the time went even when the run is cut off.
SECONDS=0
stage_name=""
stage_start=0
stage_times=()
stage() {
    if [[ -n "$stage_name" ]]; then
        stage_times+=("$(printf '%5ds  %s' $((SECONDS - stage_start)) "$stage_name")")
        echo "    ($((SECONDS - stage_start)) s; ${SECONDS} s so far: $stage_name)"
    fi
    stage_name="$1"
    [[ -n "$1" ]] && echo "    (disk: $(free_disk_mib) MiB free)"
    stage_start=$SECONDS
    [[ -n "$1" ]] && echo "==> $1"
    return 0
}
free_disk_mib() {
    df -Pm . | awk 'NR == 2 { print $4 }'
}
stage_summary() {
    stage ""
    echo "==> stage times (total ${SECONDS} s)"
    printf '    %s\n' "${stage_times[@]}"
}

# CI machines have had as little as a few GiB of free disk, and one run
# fills well over that with build products: no incremental caches (a full
# run never reuses them), line tables only in test binaries (Cargo.toml),
# and the fuzz and Miri builds deleted after their stage when disk is short.
export CARGO_INCREMENTAL=0
LOW_DISK_MIB=20000

stage "apt packages"
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

# The PHP extension is built with the environment docs/install.md gives
# (ext-php-rs needs absolute paths). ext-php-rs reruns its build script, and
# cargo rebuilds it and the extension (~1-3 min), whenever PHP_CONFIG or PHP
# change, so every stage builds with these same values.
PHP_CONFIG="$(command -v php-config8.2)"
PHP="$(command -v php8.2)"
export PHP_CONFIG PHP

stage "starting a throwaway MariaDB"
# Assigned first, so that a server that did not start stops the run here.
mariadb_env=$(scripts/mariadb.sh start)
eval "$mariadb_env"
trap 'stage_summary; scripts/mariadb.sh stop "$HK_MARIADB_DIR"' EXIT
export HERATIO_KEYS_REQUIRE_MYSQL=1
echo "    $(mariadbd --version)"

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

stage "cargo test (SQLite and MariaDB)"
cargo test --workspace --locked

stage "C ABI: header drift, install, gcc -Werror, valgrind, ASan/UBSan, static link"
tests/c/run.sh

stage "fuzzing smoke run (10 s a target) and Miri on core's unit tests without a database or threads"
# Both need the nightly toolchain; fuzz.sh installs cargo-fuzz if missing.
scripts/fuzz.sh 10
if ! rustup component list --toolchain nightly --installed | grep -q '^miri'; then
    rustup component add --toolchain nightly miri rust-src
fi
# The selection: modules whose tests touch no SQLite, FFI or threads (Miri
# cannot run C code). A test added there that does must carry
# #[cfg_attr(miri, ignore)].
cargo +nightly miri test -p heratio-keys-core --lib --locked -- \
    format:: status:: model:: view:: store::dsn:: store::mysql::tests:: verify_request:: feed::tests::holes_

if (($(free_disk_mib) < LOW_DISK_MIB)); then
    echo "    short of disk: removing the fuzz and Miri builds"
    rm -rf fuzz/target target/miri
fi

stage "PHP extension: php CLI suite and php-fpm + nginx deployment"
tests/php/run.sh

stage "Laravel drop-in: heratio/keys-laravel in a real Laravel app (php-fpm + nginx, MariaDB)"
tests/laravel/run.sh

stage "documentation: README.md and docs/ commands as written (nginx + php-fpm, SQLite and MariaDB, C)"
tests/docs/run.sh

stage "Debian packages: build, install, check, remove"
tests/deb/run.sh

stage "benchmark harness, smoke mode (so it never rots)"
benches/harness/run.sh --smoke

stage "web admin: headless Chromium"
if ! command -v npm >/dev/null; then
    $SUDO_CMD apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
tests/web/run.sh

stage ""
echo "==> all tests passed"
