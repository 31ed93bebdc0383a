#!/usr/bin/env bash
# C ABI tests: builds libheratio_keys and keygen, installs the library into a
# temporary prefix, creates keys with keygen, then compiles the C programs in
# tests/c/ with `gcc -std=c11 -Wall -Wextra -Wpedantic -Werror` against the
# INSTALLED header and library (pkg-config), and runs them against a
# temporary SQLite store and the test MariaDB: dynamically linked, under
# valgrind, statically linked, and built with AddressSanitizer and
# UndefinedBehaviorSanitizer. Also checks the soname, the pkg-config file,
# header drift and the Python ctypes example.
#
# Environment:
#   HERATIO_KEYS_TEST_MYSQL_DSN  mysql://user:pass@host:port/db of a server on
#                                which the user may CREATE DATABASE hk_test_*;
#                                unset: the MariaDB half is skipped...
#   HERATIO_KEYS_REQUIRE_MYSQL=1 ...unless this is set, then it fails.
#   HK_C_PROFILE=release|debug   library build to test (default release)
#   HK_C_VALGRIND=0              skip the valgrind runs
#   HK_C_ASAN=0                  skip the AddressSanitizer/UBSan runs
#   HK_C_BENCH=N                 also run the cache-hit benchmark with N keys
#
# Needs: cargo, gcc, pkg-config, valgrind, python3, binutils (readelf),
# mariadb client (for the MariaDB half). Prints `C tests: N passed, M failed`
# last and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

profile=${HK_C_PROFILE:-release}
[[ $profile == release || $profile == debug ]] || { echo "HK_C_PROFILE: release or debug" >&2; exit 2; }
use_valgrind=${HK_C_VALGRIND:-1}
use_asan=${HK_C_ASAN:-1}
passed=0
failed=0
failures=()

work=$(mktemp -d "${TMPDIR:-/tmp}/heratio-keys-c.XXXXXX")
mysql_cleanup=()
cleanup() {
    for db in "${mysql_cleanup[@]}"; do
        mysql_admin -e "DROP DATABASE IF EXISTS \`$db\`" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "  ok    $1"; }
ko() { failed=$((failed + 1)); failures+=("$1"); echo "  FAIL  $1"; }
# check NAME COMMAND...: runs the command, output to a log shown on failure.
check() {
    local name=$1
    shift
    local log="$work/log.$((passed + failed))"
    if "$@" >"$log" 2>&1; then
        ok "$name"
        grep -h -E '^(test_revocation: (revocation seen|seen through)|test_shared: |bench|usage_log|filled)' "$log" | sed 's/^/        /'
    else
        ko "$name"
        sed 's/^/        | /' "$log" | tail -40
    fi
}
finish() {
    echo
    ((failed)) && printf 'failed: %s\n' "${failures[@]}"
    echo "C tests: $passed passed, $failed failed"
    ((failed == 0))
    exit
}

echo "==> building libheratio_keys and keygen ($profile)"
build_flags=(--locked)
[[ $profile == release ]] && build_flags+=(--release)
if ! cargo build -p heratio-keys-ffi -p heratio-keys-cli "${build_flags[@]}"; then
    ko "cargo build"
    finish
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
keygen="$target_dir/$profile/keygen"

echo "==> checks on the build and the installed files"
check "header up to date (git diff --exit-code include/)" git diff --exit-code -- include/
prefix="$work/prefix"
install_flags=(--no-build)
[[ $profile == debug ]] && install_flags+=(--debug)
check "scripts/install-c.sh into a temporary prefix" scripts/install-c.sh "$prefix" "${install_flags[@]}"
libdir="$prefix/lib"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
check "pkg-config --modversion is $version" \
    bash -c "[[ \$(pkg-config --modversion heratio_keys) == '$version' ]]"
check "soname libheratio_keys.so.0 and its symlinks" bash -c "
    readelf -d '$libdir/libheratio_keys.so.$version' | grep -q 'SONAME.*\[libheratio_keys.so.0\]' &&
    [[ \$(readelf -d '$libdir/libheratio_keys.so' | grep SONAME) ]] &&
    [[ -L '$libdir/libheratio_keys.so.0' && -L '$libdir/libheratio_keys.so' ]]"
check "only hk_* symbols exported" bash -c "
    ! nm -D --defined-only '$libdir/libheratio_keys.so' | awk '\$2 ~ /^[TDBR]\$/ {print \$3}' | grep -v '^hk_'"

echo "==> compiling the C programs against the installed library"
CFLAGS=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -g)
bin="$work/bin"
mkdir -p "$bin"
programs=(test_validate test_bad_input test_threads test_revocation test_limits test_shared)
read -r -a cflags <<<"$(pkg-config --cflags heratio_keys)"
read -r -a libs <<<"$(pkg-config --libs heratio_keys)"
read -r -a libs_l <<<"$(pkg-config --libs-only-L heratio_keys)"
read -r -a static_libs <<<"$(pkg-config --variable=static_libs heratio_keys)"
for p in "${programs[@]}" bench; do
    check "gcc -std=c11 -Wpedantic -Werror $p.c (shared)" \
        gcc "${CFLAGS[@]}" "${cflags[@]}" tests/c/$p.c -o "$bin/$p" -pthread "${libs[@]}" -Wl,-rpath,"$libdir"
done
for p in "${programs[@]}"; do
    check "gcc $p.c (static libheratio_keys.a)" \
        gcc "${CFLAGS[@]}" "${cflags[@]}" tests/c/$p.c -o "$bin/$p.static" -pthread \
        "${libs_l[@]}" -Wl,-Bstatic -lheratio_keys -Wl,-Bdynamic "${static_libs[@]}"
done
# AddressSanitizer + UndefinedBehaviorSanitizer: the C programs are
# instrumented, the Rust library is not (it is the installed, release
# libheratio_keys.so; Rust's own memory safety is checked by Miri and the
# fuzzers). No LD_PRELOAD is needed: the executable is linked with
# -fsanitize=address, so gcc puts libasan first in its DT_NEEDED list, ahead
# of libheratio_keys.so, and ASan's malloc/free/pthread interceptors also
# cover what the library allocates and the threads it starts (leaks included:
# LeakSanitizer runs at exit). -fno-sanitize-recover=all makes any UBSan
# finding fatal (by default UBSan prints and carries on); ASan reports are
# fatal by default. `asan_env` below is how the programs are run.
asan_flags=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1)
asan_env=(env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:exitcode=23
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=23)
if [[ $use_asan == 1 ]]; then
    for p in "${programs[@]}"; do
        check "gcc -fsanitize=address,undefined $p.c (shared)" \
            gcc "${CFLAGS[@]}" "${asan_flags[@]}" "${cflags[@]}" tests/c/$p.c -o "$bin/$p.asan" -pthread \
            "${libs[@]}" -Wl,-rpath,"$libdir"
    done
    # The mode must fail on a report: a heap overflow, and a signed overflow,
    # in a program linked like the tests have to stop it with a report.
    printf '%s\n' '#include <heratio_keys.h>' '#include <limits.h>' '#include <stdlib.h>' \
        'int main(int argc, char **argv) { (void)argv;' \
        '  if (argc > 1) { volatile int i = INT_MAX; i = i + argc; return i == 0; }' \
        '  volatile char *p = malloc((size_t)argc + 7); p[8] = 1; free((void *)p);' \
        '  return hk_check_format(HK_KIND_API_KEY, "x", 1) == HK_STATUS_MALFORMED ? 0 : 1; }' \
        >"$work/asan_probe.c"
    check "ASan/UBSan mode stops on a report (self-test)" bash -c "
        gcc -std=c11 -g ${asan_flags[*]} ${cflags[*]} '$work/asan_probe.c' -o '$work/asan_probe' ${libs[*]} -Wl,-rpath,'$libdir' &&
        ! ${asan_env[*]} '$work/asan_probe' >'$work/asan_probe.log' 2>&1 &&
        grep -q 'ERROR: AddressSanitizer: heap-buffer-overflow' '$work/asan_probe.log' &&
        ! ${asan_env[*]} '$work/asan_probe' ub >'$work/ubsan_probe.log' 2>&1 &&
        grep -q 'runtime error: signed integer overflow' '$work/ubsan_probe.log'"
fi
check "static binaries do not need libheratio_keys.so" bash -c "
    ! readelf -d '$bin/test_validate.static' | grep -q 'NEEDED.*libheratio_keys'"
echo '#include <heratio_keys.h>
int main(void) { return hk_status_http(HK_STATUS_VALID) == 200 ? 0 : 1; }' >"$work/c99.c"
check "header compiles as C99 (-Wpedantic -Werror)" \
    gcc -std=c99 -Wall -Wextra -Wpedantic -Werror "${cflags[@]}" "$work/c99.c" -o "$work/c99" "${libs[@]}"
if command -v g++ >/dev/null; then
    cp "$work/c99.c" "$work/cxx.cc"
    check "header compiles as C++ (-Wall -Werror)" \
        g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror "${cflags[@]}" "$work/cxx.cc" -o "$work/cxx" "${libs[@]}"
fi

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

# fixture NAME DSN: installs the schema and creates the keys the programs
# read from HK_T_* variables (exported).
fixture() {
    local dsn=$2 out
    # keygen's notes ("store this key now") go to a log, shown on failure.
    kg() { "$keygen" --dsn "$dsn" --json "$@" 2>>"$work/keygen.log" || { cat "$work/keygen.log" >&2; return 1; }; }
    kg install >/dev/null || return 1
    HK_T_CLIENT_ID=$(kg client:create --name "C tests" --email c@example.org | json "['id']") || return 1
    local c=$HK_T_CLIENT_ID
    out=$(kg api:generate "$c" --name short --expires-in 1s) || return 1
    HK_T_EXPIRED_KEY=$(json "['key']" <<<"$out")
    expired_at=$(date +%s.%N)
    out=$(kg api:generate "$c" --name production --scopes read,write) || return 1
    HK_T_API_KEY=$(json "['key']" <<<"$out")
    HK_T_API_ID=$(json "['id']" <<<"$out")
    out=$(kg ai:generate "$c" --name gateway) || return 1
    HK_T_AI_TOKEN=$(json "['key']" <<<"$out")
    HK_T_AI_ID=$(json "['id']" <<<"$out")
    out=$(kg api:generate "$c" --name retired) || return 1
    HK_T_REVOKED_KEY=$(json "['key']" <<<"$out")
    kg api:revoke "$(json "['id']" <<<"$out")" >/dev/null || return 1
    out=$(kg api:generate "$c" --name allowlisted --allow-ip 192.0.2.0/24,2001:db8::/32) || return 1
    HK_T_ALLOW_KEY=$(json "['key']" <<<"$out")
    HK_T_ALLOW_ID=$(json "['id']" <<<"$out")
    # Rotated keys: one still in its grace, one whose grace ended at once.
    out=$(kg api:generate "$c" --name graced --scopes read) || return 1
    HK_T_GRACED_OLD=$(json "['key']" <<<"$out")
    HK_T_GRACED_OLD_ID=$(json "['id']" <<<"$out")
    out=$(kg api:rotate "$HK_T_GRACED_OLD_ID" --grace 1h) || return 1
    HK_T_GRACED_NEW=$(json "['key']" <<<"$out")
    out=$(kg api:generate "$c" --name ended) || return 1
    HK_T_ENDED_OLD=$(json "['key']" <<<"$out")
    out=$(kg api:rotate "$(json "['id']" <<<"$out")" --grace 0) || return 1
    HK_T_ENDED_NEW=$(json "['key']" <<<"$out")
    HK_T_DSN=$dsn
    export HK_T_DSN HK_T_CLIENT_ID HK_T_API_KEY HK_T_API_ID HK_T_AI_TOKEN HK_T_AI_ID \
        HK_T_REVOKED_KEY HK_T_EXPIRED_KEY HK_T_ALLOW_KEY HK_T_ALLOW_ID HK_T_GRACED_OLD \
        HK_T_GRACED_OLD_ID HK_T_GRACED_NEW HK_T_ENDED_OLD HK_T_ENDED_NEW
    fixture_client=$c
}

# A key of a store nobody validates against: well-formed, unknown everywhere.
scratch="sqlite:$work/scratch.db"
"$keygen" --dsn "$scratch" install >/dev/null
"$keygen" --dsn "$scratch" client:create --name scratch --email s@example.org >/dev/null
HK_T_UNKNOWN_KEY=$("$keygen" --dsn "$scratch" --json api:generate 1 --name x 2>/dev/null | json "['key']")
export HK_T_UNKNOWN_KEY
export HK_T_EMPTY_DSN="sqlite:$work/empty.db"

valgrind_cmd=(valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --suppressions="$root/tests/c/valgrind.supp")

# limited_key DSN CLIENT LIMIT METADATA: prints a new API key of CLIENT
# limited to LIMIT requests per hour and carrying METADATA (a JSON object).
limited_key() {
    local out
    out=$("$keygen" --dsn "$1" --json api:generate "$2" --name limited \
        --rate-limit "$3" --metadata "$4" 2>/dev/null) || return 1
    json "['key']" <<<"$out"
}

# Given with spaces and unsorted keys; the library hands back compact JSON
# with sorted keys.
limited_metadata='{ "tags": ["a", "b"], "heratio_user_id": 3, "heratio_key_id": 7, "nested": {"ok": true, "none": null} }'
export HK_T_METADATA='{"heratio_key_id":7,"heratio_user_id":3,"nested":{"none":null,"ok":true},"tags":["a","b"]}'
export HK_T_LIMIT=5

# run_programs LABEL: every program against the current fixture.
run_programs() {
    local label=$1 mode p cmd revoke_out
    local modes=(shared static)
    [[ $use_valgrind == 1 ]] && modes+=(valgrind)
    [[ $use_asan == 1 ]] && modes+=(asan)
    # Give the 1 s key time to expire.
    sleep "$(python3 -c "print(max(0.0, 1.2 - ($(date +%s.%N) - $expired_at)))")"
    for mode in "${modes[@]}"; do
        for p in "${programs[@]}"; do
            cmd=("$bin/$p")
            [[ $mode == static ]] && cmd=("$bin/$p.static")
            [[ $mode == valgrind ]] && cmd=("${valgrind_cmd[@]}" "$bin/$p")
            [[ $mode == asan ]] && cmd=("${asan_env[@]}" "$bin/$p.asan")
            if [[ $p == test_revocation ]]; then
                # A fresh key per run: keygen (another process) revokes it.
                revoke_out=$("$keygen" --dsn "$HK_T_DSN" --json api:generate "$fixture_client" --name doomed 2>/dev/null) || {
                    ko "$label/$mode: generate a key to revoke"
                    continue
                }
                export HK_T_REVOKE_KEY HK_T_REVOKE_CMD HK_T_REVOKE_LIMIT_MS
                HK_T_REVOKE_KEY=$(json "['key']" <<<"$revoke_out")
                HK_T_REVOKE_CMD="'$keygen' --dsn '$HK_T_DSN' api:revoke $(json "['id']" <<<"$revoke_out") >/dev/null"
                HK_T_REVOKE_LIMIT_MS=1000
                [[ $mode == valgrind ]] && HK_T_REVOKE_LIMIT_MS=3000
                [[ $mode == asan ]] && HK_T_REVOKE_LIMIT_MS=2000
            fi
            if [[ $p == test_limits ]]; then
                # A fresh budget per run: the hourly count is in the store.
                HK_T_LIMITED_KEY=$(limited_key "$HK_T_DSN" "$fixture_client" "$HK_T_LIMIT" "$limited_metadata") || {
                    ko "$label/$mode: generate a rate-limited key"
                    continue
                }
                export HK_T_LIMITED_KEY
            fi
            if [[ $mode == valgrind && $p == test_threads ]]; then
                check "$label/$mode: $p" env HK_T_THREAD_ROUNDS=40 "${cmd[@]}"
            else
                check "$label/$mode: $p" "${cmd[@]}"
            fi
        done
    done
}

echo "==> SQLite"
if fixture sqlite "sqlite:$work/keys.db"; then
    ok "sqlite: keygen fixture"
    run_programs sqlite
    check "sqlite: Python ctypes example (docs/examples/validate_ctypes.py)" bash -c "
        export HERATIO_KEYS_LIB='$libdir/libheratio_keys.so.0' HERATIO_KEYS_DSN='$HK_T_DSN'
        out=\$(printf '%s' '$HK_T_API_KEY' | python3 docs/examples/validate_ctypes.py read) &&
        grep -q '^valid 200 client=$HK_T_CLIENT_ID key=$HK_T_API_ID name=production scopes=read,write' <<<\"\$out\" &&
        ! printf '%s' '$HK_T_API_KEY' | python3 docs/examples/validate_ctypes.py delete >/dev/null &&
        [[ \$(printf '%s' '$HK_T_REVOKED_KEY' | python3 docs/examples/validate_ctypes.py) == 'revoked 401'* ]] &&
        [[ \$(printf 'garbage' | python3 docs/examples/validate_ctypes.py) == 'malformed 401'* ]]"
else
    ko "sqlite: keygen fixture"
fi

echo "==> MariaDB"
if [[ -z ${HERATIO_KEYS_TEST_MYSQL_DSN:-} ]]; then
    if [[ ${HERATIO_KEYS_REQUIRE_MYSQL:-} == 1 ]]; then
        ko "mariadb: HERATIO_KEYS_REQUIRE_MYSQL=1 but HERATIO_KEYS_TEST_MYSQL_DSN is not set"
    else
        echo "  SKIPPED: set HERATIO_KEYS_TEST_MYSQL_DSN (see scripts/mariadb.sh) to run the MariaDB half"
    fi
else
    re='^mysql://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?/([^?]*)'
    if [[ $HERATIO_KEYS_TEST_MYSQL_DSN =~ $re ]]; then
        my_user=${BASH_REMATCH[1]} my_pass=${BASH_REMATCH[3]} my_host=${BASH_REMATCH[4]}
        my_port=${BASH_REMATCH[6]:-3306}
        mysql_admin() {
            MYSQL_PWD=$my_pass mariadb --protocol=TCP -h "$my_host" -P "$my_port" -u "$my_user" "$@"
        }
        db="hk_test_c_$$_$RANDOM"
        if mysql_admin -e "CREATE DATABASE \`$db\`"; then
            mysql_cleanup+=("$db")
            dsn="mysql://$my_user:$my_pass@$my_host:$my_port/$db"
            if fixture mariadb "$dsn"; then
                ok "mariadb: keygen fixture"
                run_programs mariadb
            else
                ko "mariadb: keygen fixture"
            fi
        else
            ko "mariadb: CREATE DATABASE $db"
        fi
    else
        ko "mariadb: cannot parse HERATIO_KEYS_TEST_MYSQL_DSN"
    fi
fi

if [[ -n ${HK_C_BENCH:-} ]]; then
    echo "==> benchmark: hk_validate cache hit, ${HK_C_BENCH} keys (SQLite)"
    bench_dsn="sqlite:$work/bench.db"
    if cargo run -q -p heratio-keys-ffi --example seed_keys "${build_flags[@]}" -- \
        "$bench_dsn" "$HK_C_BENCH" "$work/bench.keys"; then
        check "bench ($HK_C_BENCH keys)" "$bin/bench" "$bench_dsn" "$work/bench.keys"
    else
        ko "bench: seed keys"
    fi
fi

finish
