#!/usr/bin/env bash
# The comparative benchmark harness of heratio-keys: one command, one run,
# one machine, one MariaDB, one set of keys.
#
#   benches/harness/run.sh            full run (~10 min + build), results in benches/results/
#   benches/harness/run.sh --smoke    CI smoke run (few iterations, < 2 min after the build)
#
# Options: --no-criterion (full run without `cargo bench`), --out DIR,
# --host-only (only the host.py comparison, into --out DIR; no criterion),
# --http-only (only the nginx + php-fpm rounds and the usage-log write cost,
# into --out DIR; no criterion), --perf (with --http-only: the first round of
# the extension on the last key set, usage log on and off, also runs under a
# system-wide `perf record -g`; profiles and their reports by process and by
# symbol go into the out dir),
# --http-keys N[,N...] (how many distinct keys wrk presents in the HTTP rounds,
# one set after the other inside each round; default "10000,50", smoke
# "1000,50": every key at random, and a hot set every worker has cached).
#
# What it measures, side by side, on the same N keys in one MariaDB database:
#   - PHP + PDO doing what Heratio's middleware does today (hash, SELECT,
#     expiry check, UPDATE last_used_at), in a PHP CLI loop;
#   - heratio_keys_validate_api_key in the same PHP loop (usage log on);
#   - hk_validate from C (usage log on), and from C over 100k keys (SQLite);
#   - nginx + php-fpm serving the baseline middleware, the extension's
#     middleware and no authentication at all, loaded by wrk from loopback;
#   - correctness under speed: revocation propagation across processes
#     (SQLite and MariaDB), store queries for malformed and unknown keys,
#     the highest usage-log rate with nothing dropped, RSS per cached key;
#   - one keygen client per host (host.py), the per-process (private) mode
#     and the shared mode one after the other on the same machine and keys:
#     php-fpm with 50 workers behind nginx plus 4 C processes (c_host.c) on
#     one MariaDB, 10 000 keys at random: connections held idle and under
#     load, feed polls per second, store queries per key per TTL, hit ratio,
#     host memory for 100 000 cached keys, revocation at every process, and
#     the leader killed with SIGKILL mid-run; cached validation from PHP and
#     C, private and shared, at 10k and 100k keys beside the SHA-256 and
#     HashMap floors of the same run (hk-bench floors);
#   - (full run) the criterion benches, whose medians join the report.
# Then benches/harness/report.py prints the ratios and targets and writes
# summary.md, results.json and validation-cost.svg into the output dir.
#
# MariaDB: HERATIO_KEYS_BENCH_MYSQL_DSN or HERATIO_KEYS_TEST_MYSQL_DSN
# (mysql://user:pass@host:port/db, the user may CREATE DATABASE hk_test_*);
# if neither is set a throwaway server is started with scripts/mariadb.sh.
# Needs: cargo, gcc, pkg-config, php8.2-cli/-fpm/-mysql, nginx, wrk,
# mariadb client (and server if no DSN is given), python3 (no packages).
# Prints `Benchmark smoke: N passed, M failed` (or `Benchmark: ...`) last and
# exits non-zero if any check failed.
set -uo pipefail
# The whole script is one compound command, parsed before it runs: editing
# this file during a run cannot break that run.
{
cd "$(dirname "$0")/../.."
root=$(pwd)
here="$root/benches/harness"

smoke=0
criterion=1
out=""
http_keys=""
host_only=0
http_only=0
perf_rounds=0
while (($#)); do
    case $1 in
    --smoke) smoke=1 ;;
    --no-criterion) criterion=0 ;;
    --out) out=$2; shift ;;
    --http-keys) http_keys=$2; shift ;;
    --host-only) host_only=1 criterion=0 ;;
    --http-only) http_only=1 criterion=0 ;;
    --perf) perf_rounds=1 ;;
    *) echo "usage: $0 [--smoke] [--no-criterion] [--host-only | --http-only] [--out DIR] [--http-keys N[,N...]]" >&2; exit 2 ;;
    esac
    shift
done

if ((smoke)); then
    label="Benchmark smoke"
    N=1000 BASE_PASSES=1 EXT_PASSES=2 C_PASSES=2 BIG=10000 BIG_PASSES=2
    REVOCATIONS=10 MALFORMED=100000 UNKNOWN=20000 DISTINCT=1000
    USAGE_SECONDS=1 USAGE_MAX=10000 MEM_KEYS=10000 WARM=1 WRK_SECONDS=2 WRK_ROUNDS=1 HOT_PASSES=5
    USAGE_DISTINCT=(1000) USAGE_COST_ROWS=20000
    # host.py: a small host, seconds per phase, no memory probe
    HOST='{"workers": 6, "c_procs": 2, "mem_keys": 0, "warm_s": 2, "idle_settle_s": 1, "idle_window_s": 2,
           "round_s": 3, "c_rate": 100, "wrk_conns": 12, "revocations": 2, "kill_rounds": 1, "kill_load_s": 4}'
    criterion=0
else
    label="Benchmark"
    N=10000 BASE_PASSES=1 EXT_PASSES=10 C_PASSES=20 BIG=100000 BIG_PASSES=10
    REVOCATIONS=100 MALFORMED=1000000 UNKNOWN=1000000 DISTINCT=10000
    USAGE_SECONDS=5 USAGE_MAX=1280000 MEM_KEYS=100000 WARM=10 WRK_SECONDS=10 WRK_ROUNDS=3 HOT_PASSES=11
    USAGE_DISTINCT=(10000 100) USAGE_COST_ROWS=300000
    # host.py: idle_settle_s outlasts the connection idle time (10 s); the
    # two 30 s load rounds make one 60 s cache TTL.
    HOST='{"workers": 50, "c_procs": 4, "mem_keys": 100000, "warm_s": 10, "idle_settle_s": 12, "idle_window_s": 10,
           "round_s": 30, "c_rate": 250, "wrk_conns": 64, "revocations": 10, "kill_rounds": 3, "kill_load_s": 20}'
fi
if [[ -z $out ]] && ((!smoke)); then
    if ((host_only || http_only)); then
        echo "--host-only and --http-only need --out DIR (benches/results holds a whole run)" >&2
        exit 2
    fi
    out="$root/benches/results"
fi
# Key sets of the HTTP rounds: the first has every key (and the PDO baseline
# and the floor), the others are the first K keys of the same file.
IFS=, read -ra HTTP_SETS <<<"${http_keys:-$N,50}"
for k in "${HTTP_SETS[@]}"; do
    if ! [[ $k =~ ^[1-9][0-9]*$ ]] || ((k > N)); then
        echo "--http-keys: each set is a number of keys from 1 to $N" >&2
        exit 2
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/heratio-keys-bench.XXXXXX")
chmod 755 "$work"
# Host regions (shared mode) live in memory as in production, in private
# directories of this run: $shm-cli, $shm-http, $shm-private, $shm-shared.
shm=/dev/shm/heratio-keys-bench-$$
fpm_bin=${PHP_FPM:-/usr/sbin/php-fpm8.2}
[[ -d /dev/shm ]] || shm="$work/shm"
[[ -n $out ]] || out="$work/out"
mkdir -p "$out" "$work/results"
res="$work/results"
started=$(date +%s)

passed=0
failed=0
failures=()
pids=()
dbs=()
own_mariadb=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    for db in "${dbs[@]}"; do
        mysql_admin -e "DROP DATABASE IF EXISTS \`$db\`" >/dev/null 2>&1 || true
    done
    [[ -n $own_mariadb ]] && scripts/mariadb.sh stop "$own_mariadb" >/dev/null 2>&1
    rm -rf "$work" "$shm"-*
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "  ok    $1"; }
ko() { failed=$((failed + 1)); failures+=("$1"); echo "  FAIL  $1"; }
load() { echo "$1 $(cut -d' ' -f1-3 /proc/loadavg)" >>"$res/loads.txt"; }
finish() {
    echo
    ((failed)) && printf 'failed: %s\n' "${failures[@]}"
    echo "harness wall time: $(($(date +%s) - started)) s (of which cargo build: ${build_secs:-?} s)"
    echo "$label: $passed passed, $failed failed"
    ((failed == 0))
    exit
}
# step NAME OUTFILE COMMAND...: runs COMMAND, stdout to OUTFILE (JSON), stderr
# to a log shown on failure.
step() {
    local name=$1 file=$2
    shift 2
    load "$name"
    if "$@" >"$file" 2>"$file.err"; then
        ok "$name"
        return 0
    fi
    ko "$name"
    tail -20 "$file.err" | sed 's/^/        | /'
    return 1
}
# jcheck NAME FILE PYTHON_EXPR: a check on the JSON in FILE (bound to d).
jcheck() {
    if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" "$2" 2>/dev/null; then
        ok "$1"
    else
        ko "$1"
        head -c 600 "$2" 2>/dev/null | sed 's/^/        | /'
        echo
    fi
}

echo "==> machine"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD) ($(git log -1 --format=%s | cut -c1-70))"
    echo "core_commit: $(git log -1 --format=%h -- core/)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r)"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "rustc: $(rustc --version)"
    echo "php: $(php -r 'echo PHP_VERSION;')"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*\///')"
    echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
    echo "mode: $( ((smoke)) && echo smoke || echo full)"
} | tee "$res/machine.txt" | sed 's/^/    /'

echo "==> building (release): libheratio_keys, heratio_keys.so, hk-bench, keygen"
load build
build_started=$(date +%s)
# Two invocations: `--bin hk-bench` would narrow the first to that one
# binary in every package, leaving a stale extension and library in target/.
if ! { cargo build --release -p heratio-keys-ffi -p heratio-keys-php -p heratio-keys-cli &&
    cargo build --release -p heratio-keys-bench --bin hk-bench; } >"$work/build.log" 2>&1; then
    ko "cargo build --release"
    tail -30 "$work/build.log"
    finish
fi
ok "cargo build --release"
build_secs=$(($(date +%s) - build_started))
target=${CARGO_TARGET_DIR:-$root/target}
hkb="$target/release/hk-bench"
keygen="$target/release/keygen"
install -m 755 "$target/release/libheratio_keys_php.so" "$work/heratio_keys.so"
ext="$work/heratio_keys.so"
if scripts/install-c.sh "$work/prefix" --no-build >"$work/install.log" 2>&1 &&
    gcc -std=c11 -O2 -Wall -Wextra -Werror "$here/c_bench.c" -o "$work/c_bench" \
        $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs heratio_keys) \
        -Wl,-rpath,"$work/prefix/lib" >>"$work/install.log" 2>&1 &&
    gcc -std=c11 -O2 -Wall -Wextra -Werror "$here/c_host.c" -o "$work/c_host" \
        $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs heratio_keys) \
        -Wl,-rpath,"$work/prefix/lib" >>"$work/install.log" 2>&1; then
    ok "C library installed, c_bench.c and c_host.c compiled"
else
    ko "C library installed, c_bench.c and c_host.c compiled"
    tail -20 "$work/install.log"
fi

echo "==> MariaDB"
base_dsn=${HERATIO_KEYS_BENCH_MYSQL_DSN:-${HERATIO_KEYS_TEST_MYSQL_DSN:-}}
if [[ -z $base_dsn ]]; then
    echo "    no DSN set: starting a throwaway server (scripts/mariadb.sh)"
    if eval "$(scripts/mariadb.sh start)"; then
        own_mariadb=$HK_MARIADB_DIR
        base_dsn=$HERATIO_KEYS_TEST_MYSQL_DSN
    fi
fi
re='^mysql://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?/([^?]*)'
if ! [[ $base_dsn =~ $re ]]; then
    ko "MariaDB DSN (set HERATIO_KEYS_TEST_MYSQL_DSN)"
    finish
fi
my_user=${BASH_REMATCH[1]} my_pass=${BASH_REMATCH[3]} my_host=${BASH_REMATCH[4]} my_port=${BASH_REMATCH[6]:-3306}
mysql_admin() { MYSQL_PWD=$my_pass mariadb --protocol=TCP -h "$my_host" -P "$my_port" -u "$my_user" "$@"; }
new_db() {
    local db="hk_test_bench_$$_$1"
    mysql_admin -e "CREATE DATABASE \`$db\`" || return 1
    dbs+=("$db")
    echo "mysql://$my_user:$my_pass@$my_host:$my_port/$db"
}
echo "mariadb: $(mysql_admin -N -e 'SELECT VERSION()' 2>/dev/null)" | tee -a "$res/machine.txt" | sed 's/^/    /'
DSN=$(new_db main) || { ko "CREATE DATABASE"; finish; }
keys="$work/keys.txt"
step "seed $N keys into MariaDB" "$res/seed.json" "$hkb" seed "$DSN" "$N" "$keys" || finish

if ((!host_only)); then
if ((!http_only)); then
echo "==> PHP loop: PDO baseline vs heratio_keys_validate_api_key ($N keys)"
step "PHP + PDO baseline, $N keys x $BASE_PASSES" "$res/php_baseline.json" \
    php "$here/php_loop.php" baseline "$DSN" "$keys" "$BASE_PASSES" &&
    jcheck "baseline: every key valid" "$res/php_baseline.json" "d['valid'] == $N * $BASE_PASSES"
step "PHP extension, $N keys x $EXT_PASSES (usage log on, private cache)" "$res/php_ext.json" \
    php -d "extension=$ext" -d "heratio_keys.dsn=$DSN" -d heratio_keys.shared_cache=Off \
    "$here/php_loop.php" ext "$DSN" "$keys" "$EXT_PASSES" &&
    jcheck "extension: every key valid" "$res/php_ext.json" "d['valid'] == $N * ($EXT_PASSES + 1)"
mkdir -m 700 -p "$shm-cli"
step "PHP extension, $N keys x $EXT_PASSES (usage log on, shared host cache)" "$res/php_ext_shared.json" \
    env HERATIO_KEYS_REGION_DIR="$shm-cli" php -d "extension=$ext" -d "heratio_keys.dsn=$DSN" -d heratio_keys.shared_cache=On \
    "$here/php_loop.php" ext "$DSN" "$keys" "$EXT_PASSES" &&
    jcheck "extension (shared): every key valid, the process shared the region" "$res/php_ext_shared.json" \
        "d['valid'] == $N * ($EXT_PASSES + 1) and d['stats']['shared'] is True"

for mode in shared private; do
    step "PHP hot key: heratio_keys_authenticate(['read']) vs hash('sha256'), $mode cache" "$res/php_hot_$mode.json" \
        env HERATIO_KEYS_REGION_DIR="$shm-cli" php -d "extension=$ext" -d "heratio_keys.dsn=$DSN" \
        -d heratio_keys.shared_cache=$([[ $mode == shared ]] && echo On || echo Off) \
        "$here/php_loop.php" hot "$DSN" "$keys" "$HOT_PASSES" &&
        jcheck "hot key ($mode): valid, no usage record dropped" "$res/php_hot_$mode.json" \
            "d['valid'] and d['stats']['usage_dropped'] == 0"
done

echo "==> C: hk_validate"
step "C hk_validate, $N keys (MariaDB) x $C_PASSES" "$res/c_mariadb.json" \
    "$work/c_bench" "$DSN" "$keys" "$C_PASSES" &&
    jcheck "C (MariaDB): every key valid" "$res/c_mariadb.json" "d['not_valid'] == 0"
step "C hk_validate, $N keys (MariaDB) x $C_PASSES, shared host cache" "$res/c_mariadb_shared.json" \
    env HERATIO_KEYS_REGION_DIR="$shm-cli" "$work/c_bench" "$DSN" "$keys" "$C_PASSES" shared &&
    jcheck "C (MariaDB, shared): every key valid, shared" "$res/c_mariadb_shared.json" "d['not_valid'] == 0 and d['shared']"
step "floors: SHA-256 and HashMap get, $N keys" "$res/floors.json" "$hkb" floors "$keys" 21
big_dsn="sqlite:$work/big.db"
if step "seed $BIG keys into SQLite" "$res/seed_big.json" "$hkb" seed "$big_dsn" "$BIG" "$work/big.txt"; then
    step "C hk_validate, $BIG keys (SQLite) x $BIG_PASSES" "$res/c_sqlite_big.json" \
        "$work/c_bench" "$big_dsn" "$work/big.txt" "$BIG_PASSES" &&
        jcheck "C ($BIG keys): every key valid" "$res/c_sqlite_big.json" "d['not_valid'] == 0"
    step "C hk_validate, $BIG keys (SQLite) x $BIG_PASSES, shared host cache" "$res/c_sqlite_big_shared.json" \
        env HERATIO_KEYS_REGION_DIR="$shm-cli" "$work/c_bench" "$big_dsn" "$work/big.txt" "$BIG_PASSES" shared &&
        jcheck "C ($BIG keys, shared): every key valid, shared" "$res/c_sqlite_big_shared.json" "d['not_valid'] == 0 and d['shared']"
    step "PHP extension, $BIG keys (SQLite) x $BIG_PASSES, private cache" "$res/php_ext_big.json" \
        php -d memory_limit=2G -d "extension=$ext" -d "heratio_keys.dsn=$big_dsn" -d heratio_keys.shared_cache=Off \
        "$here/php_loop.php" ext "$big_dsn" "$work/big.txt" "$BIG_PASSES" &&
        jcheck "extension ($BIG keys): every key valid" "$res/php_ext_big.json" "d['valid'] == $BIG * ($BIG_PASSES + 1)"
    step "PHP extension, $BIG keys (SQLite) x $BIG_PASSES, shared host cache" "$res/php_ext_big_shared.json" \
        env HERATIO_KEYS_REGION_DIR="$shm-cli" php -d memory_limit=2G -d "extension=$ext" -d "heratio_keys.dsn=$big_dsn" \
        -d heratio_keys.shared_cache=On "$here/php_loop.php" ext "$big_dsn" "$work/big.txt" "$BIG_PASSES" &&
        jcheck "extension ($BIG keys, shared): every key valid, shared" "$res/php_ext_big_shared.json" \
            "d['valid'] == $BIG * ($BIG_PASSES + 1) and d['stats']['shared'] is True"
    step "floors: SHA-256 and HashMap get, $BIG keys" "$res/floors_big.json" "$hkb" floors "$work/big.txt" 21
fi

fi # http_only

echo "==> HTTP: nginx + php-fpm, wrk from loopback"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# http_get URL [API_KEY] [body]: prints the status code (or the body).
http_get() {
    python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], headers={"X-API-Key": sys.argv[2]} if len(sys.argv) > 2 and sys.argv[2] else {})
try:
    r = urllib.request.urlopen(req, timeout=10); code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except Exception:
    code, body = 0, b""
print(body.decode(errors="replace") if len(sys.argv) > 3 else code)
PY
}
fport=$(free_port)
fport2=$(free_port)
nport=$(free_port)
mkdir -p "$work/http/tmp"
cat >"$work/http/php-fpm.conf" <<CONF
[global]
pid = $work/http/fpm.pid
error_log = $work/http/fpm.log
daemonize = no
process_control_timeout = 10s
[bench]
listen = 127.0.0.1:$fport
pm = static
pm.max_children = 4
pm.max_requests = 0
clear_env = yes
env[HK_BASELINE_DSN] = "$DSN"
env[HERATIO_KEYS_REGION_DIR] = "$shm-http"
php_admin_value[heratio_keys.dsn] = "$DSN"
php_admin_value[log_errors] = On
; The same extension middleware with usage logging off: shows what the
; usage log's writes cost the machine under this load.
; Its own host region: a pool without usage logging is another
; deployment, and must not share (or lead) the first pool's usage queue.
[bench_nolog]
listen = 127.0.0.1:$fport2
pm = static
pm.max_children = 4
pm.max_requests = 0
clear_env = yes
env[HERATIO_KEYS_REGION_DIR] = "$shm-http-nolog"
php_admin_value[heratio_keys.dsn] = "$DSN"
php_admin_value[heratio_keys.usage_log] = 0
php_admin_value[log_errors] = On
CONF
as_root=()
nginx_user=""
if [[ $(id -u) == 0 ]]; then as_root=(-R); nginx_user="user root;"; fi
cat >"$work/http/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
pid $work/http/nginx.pid;
error_log $work/http/nginx-error.log warn;
$nginx_user
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/http/tmp/body;
    fastcgi_temp_path $work/http/tmp/fastcgi;
    proxy_temp_path $work/http/tmp/proxy;
    uwsgi_temp_path $work/http/tmp/uwsgi;
    scgi_temp_path $work/http/tmp/scgi;
    server {
        listen 127.0.0.1:$nport;
        location ~ ^/(baseline|ext|noauth|stats)/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $here/www/\$1.php;
            fastcgi_param SCRIPT_NAME /index.php;
            fastcgi_pass 127.0.0.1:$fport;
        }
        location /ext_nolog/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $here/www/ext.php;
            fastcgi_param SCRIPT_NAME /index.php;
            fastcgi_pass 127.0.0.1:$fport2;
        }
    }
}
CONF
mkdir -m 700 -p "$shm-http" "$shm-http-nolog"
rows_before=$(mysql_admin -N -e "SELECT COUNT(*) FROM usage_log" "${DSN##*/}")
"$fpm_bin" -d "extension=$ext" -y "$work/http/php-fpm.conf" -F "${as_root[@]}" >"$work/http/fpm.out" 2>&1 &
fpm_pid=$!
pids+=($!)
nginx -p "$work/http/" -c "$work/http/nginx.conf" -e "$work/http/nginx-error.log" >"$work/http/nginx.out" 2>&1 &
nginx_pid=$!
pids+=($!)
# cpu_ticks FILE: CPU ticks of the FPM pools, nginx and our MariaDB, and
# the machine's, around each measured round (report: CPU per request).
mariadbd_pid=""
[[ -n $own_mariadb ]] && mariadbd_pid=$(cat "$own_mariadb/pid")
cpu_ticks() { python3 "$here/cpu.py" "$fpm_pid" "$nginx_pid" "$mariadbd_pid" >"$1" 2>/dev/null; }
# perf_stop: ends the round's profile (--perf), if one runs, and reports it.
perf_stop() {
    [[ -n $perf_pid ]] || return 0
    kill -INT "$perf_pid"
    wait "$perf_pid"
    perf report -i "$out/perf-$ep$sfx.data" --no-children --sort comm,dso --stdio \
        >"$out/perf-$ep$sfx.by-process.txt" 2>/dev/null
    perf report -i "$out/perf-$ep$sfx.data" --no-children --sort comm,sym --stdio -g none \
        --percent-limit 0.3 >"$out/perf-$ep$sfx.by-symbol.txt" 2>/dev/null
    perf_pid=""
}
up=0
for _ in $(seq 1 100); do
    code=$(http_get "http://127.0.0.1:$nport/ext/ready" "$(head -1 "$keys")")
    [[ $code == 200 ]] && { up=1; break; }
    sleep 0.1
done
# worker_stats FILE: cache and usage counters of every extension worker
# (cumulative since its first request), concatenated JSON.
worker_stats() {
    local getters=() i j
    for i in $(seq 1 24); do
        http_get "http://127.0.0.1:$nport/stats/x" "" body >"$work/ws_$i.json" 2>/dev/null &
        getters+=($!)
    done
    for j in "${getters[@]}"; do wait "$j"; done
    cat "$work"/ws_*.json >"$1" 2>/dev/null
    rm -f "$work"/ws_*.json
}
if ((up)); then
    ok "nginx + php-fpm (4 workers) up, extension answers 200"
    for ep in baseline ext ext_nolog noauth; do
        # Warm-up: keys in order (fills each worker's cache), not measured.
        # The smaller sets are the first keys of the same file: warm too.
        load "wrk warm-up $ep"
        HK_KEYS_FILE=$keys HK_WRK_ORDER=seq wrk -t2 -c16 -d${WARM}s -s "$here/wrk_keys.lua" \
            "http://127.0.0.1:$nport/$ep/api/informationobjects" >"$res/wrk_${ep}_warm.txt" 2>&1
    done
    worker_stats "$res/http_stats_warm.txt"
    # Rounds interleave the endpoints and the key sets so that load from
    # elsewhere hits all alike; the report takes the median round of each.
    # The first set has the PDO baseline and the floor; the others (label
    # suffix _kK) only the extension, usage log on and off.
    : >"$res/http_sets.txt"
    for i in "${!HTTP_SETS[@]}"; do
        k=${HTTP_SETS[i]}
        if ((i == 0)); then sfx="" eps="baseline ext ext_nolog noauth"; else sfx="_k$k" eps="ext ext_nolog"; fi
        head -n "$k" "$keys" >"$work/http_keys$sfx.txt"
        echo "$k $sfx" >>"$res/http_sets.txt"
        printf '%s\n' "$eps" >"$work/http_eps$sfx.txt"
    done
    for round in $(seq 1 "$WRK_ROUNDS"); do
        while read -r k sfx; do
            for ep in $(cat "$work/http_eps$sfx.txt"); do
                load "wrk $ep$sfx round $round"
                f="$res/wrk_${ep}${sfx}_$round.txt"
                cpu_ticks "$f.cpu0"
                perf_pid=""
                if ((perf_rounds && http_only && round == 1)) && [[ $k == "${HTTP_SETS[-1]}" && $ep == ext* ]]; then
                    perf record -a -g -F 499 -o "$out/perf-$ep$sfx.data" >"$out/perf-$ep$sfx.log" 2>&1 &
                    perf_pid=$!
                    sleep 0.5
                fi
                if HK_KEYS_FILE="$work/http_keys$sfx.txt" wrk -t2 -c16 -d${WRK_SECONDS}s --latency -s "$here/wrk_keys.lua" \
                    "http://127.0.0.1:$nport/$ep/api/informationobjects" >"$f" 2>&1 </dev/null &&
                    grep -q 'Requests/sec' "$f" && ! grep -q 'Non-2xx' "$f"; then
                    cpu_ticks "$f.cpu1"
                    perf_stop
                    ok "wrk $ep, $k keys, round $round: $(grep 'Requests/sec' "$f" | tr -s ' '), all 200"
                else
                    perf_stop
                    ko "wrk $ep, $k keys, round $round"
                    sed 's/^/        | /' "$f"
                fi
            done
        done <"$res/http_sets.txt"
    done
    worker_stats "$res/http_stats.txt"
    # Every validation of the usage-log pool is a row in usage_log (all
    # keys are valid) or counted as dropped (the host queue was full: the
    # promise is that nothing disappears uncounted): rows added since the
    # pool started + dropped = its workers' validations, once the leader's
    # next write is done. Drops are reported; they are a figure, not a
    # failure, on a machine where MariaDB shares two cores with the load.
    read -r want dropped < <(python3 -c '
import json, re, sys
w, dropped = {}, 0
for m in re.finditer(r"\{.*?\}\}", open(sys.argv[1]).read()):
    d = json.loads(m.group(0)); s = d["stats"]
    w[d["pid"]] = max(w.get(d["pid"], 0), s["validations"])
    dropped = max(dropped, s.get("host_dropped") or 0)
print(sum(w.values()) if len(w) == 4 else -1, dropped)' "$res/http_stats.txt" 2>/dev/null)
    logged=0
    for _ in $(seq 1 100); do
        logged=$(($(mysql_admin -N -e "SELECT COUNT(*) FROM usage_log" "${DSN##*/}") - rows_before))
        [[ $((logged + ${dropped:-0})) == "$want" ]] && break
        sleep 0.2
    done
    if [[ $((logged + ${dropped:-0})) == "$want" ]]; then
        ok "usage log on: every HTTP validation recorded or counted dropped ($logged rows, ${dropped:-0} dropped)"
    else
        ko "usage log on: $logged usage_log rows + ${dropped:-?} dropped for ${want:-?} validations (-1: not every worker answered)"
    fi
    bad=$(http_get "http://127.0.0.1:$nport/ext/x" hk_api_garbage)
    [[ $bad == 401 ]] && ok "extension middleware: a malformed key is 401" || ko "extension middleware: malformed key gave $bad"
else
    ko "nginx + php-fpm up"
    tail -20 "$work/http/fpm.log" "$work/http/nginx-error.log" 2>/dev/null
fi
for p in "${pids[@]}"; do kill -QUIT "$p" 2>/dev/null; done

# What one recorded validation costs the store, outside the HTTP rounds:
# the same write path as the host leader's (batches of the default size),
# server CPU read from /proc when the server is the throwaway one.
d=$(new_db usage_cost) && "$hkb" seed "$d" 50 /dev/null >/dev/null 2>&1 &&
    step "usage log write cost: $USAGE_COST_ROWS rows over 50 keys (MariaDB)" "$res/usage_cost.json" \
        "$hkb" usage-cost "$d" "$USAGE_COST_ROWS" 50 ${own_mariadb:+$(cat "$own_mariadb/pid")} &&
    jcheck "usage log write cost: every row written" "$res/usage_cost.json" "d['rows'] == $USAGE_COST_ROWS"

if ((!http_only)); then
echo "==> correctness under speed"
for backend in sqlite mysql; do
    if [[ $backend == sqlite ]]; then d="sqlite:$work/revoke.db"; else d=$(new_db revoke) || continue; fi
    step "revocation propagation, $REVOCATIONS revocations ($backend)" "$res/revocation_$backend.json" \
        "$hkb" revocation "$d" "$REVOCATIONS" &&
        jcheck "revocation ($backend): every revocation seen (within 3 s)" "$res/revocation_$backend.json" \
            "d['not_seen_within_15s'] == 0 and d['max_ms'] <= 3000"
done
for backend in sqlite mysql; do
    if [[ $backend == sqlite ]]; then
        d="sqlite:$work/queries.db"
        "$hkb" seed "$d" 1 /dev/null >/dev/null 2>&1
    else
        d=$(new_db queries) || continue
        "$hkb" seed "$d" 1 /dev/null >/dev/null 2>&1
    fi
    step "queries for $MALFORMED malformed + $UNKNOWN unknown keys ($backend)" "$res/queries_$backend.json" \
        "$hkb" queries "$d" "$MALFORMED" "$UNKNOWN" "$DISTINCT" &&
        jcheck "queries ($backend): 0 for malformed keys, <= 1 per distinct unknown digest" "$res/queries_$backend.json" \
            "d['malformed_not_rejected'] == 0 and d['malformed_store_queries'] == 0 and d['unknown_not_found'] == d['unknown'] and d['unknown_store_queries'] <= d['unknown_distinct']"
done
for distinct in "${USAGE_DISTINCT[@]}"; do
    step "usage log: highest rate with nothing dropped (MariaDB, $distinct keys, ${USAGE_SECONDS} s steps)" \
        "$res/usage_rate_$distinct.json" "$hkb" usage-rate "$DSN" "$keys" "$distinct" "$USAGE_SECONDS" "$USAGE_MAX" &&
        jcheck "usage log ($distinct keys): some rate kept up with" "$res/usage_rate_$distinct.json" "d['max_rate_no_drop_per_s'] > 0"
done
if d=$(new_db memory) && step "seed $MEM_KEYS keys for the memory probe" "$res/seed_mem.json" "$hkb" seed "$d" "$MEM_KEYS" "$work/mem.txt"; then
    step "memory per cached key ($MEM_KEYS keys, MariaDB)" "$res/memory.json" "$hkb" memory "$d" "$work/mem.txt" &&
        jcheck "memory: a positive figure" "$res/memory.json" "d['bytes_per_entry'] > 0"
fi
fi # http_only
fi # host_only

if ((!http_only)); then
echo "==> one keygen client per host: private vs shared (host.py)"
if hdsn=$(new_db host); then
    host_keys=$(python3 -c 'import json,sys; print(max(int(sys.argv[2]), json.loads(sys.argv[1])["mem_keys"]))' "$HOST" "$N")
    if step "seed $host_keys keys for the host benchmark (MariaDB)" "$res/seed_host.json" \
        "$hkb" seed "$hdsn" "$host_keys" "$work/host_keys.txt"; then
        head -n "$N" "$work/host_keys.txt" >"$work/host_load_keys.txt"
        host_client=$("$keygen" --dsn "$hdsn" --json client:create --name "host bench" --email host@example.org 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        HK_CFG_DSN=$hdsn HK_CFG_USER=$my_user HK_CFG_PASS=$my_pass HK_CFG_HOST=$my_host HK_CFG_PORT=$my_port \
            HK_CFG_N=$N HK_CFG_WORK=$work HK_CFG_EXT=$ext HK_CFG_KEYGEN=$keygen HK_CFG_CLIENT=${host_client:-0} \
            HK_CFG_SHM=$shm HK_CFG_FPM=$fpm_bin python3 - "$HOST" "$work/host.json" <<'PY'
import json, os, sys
e = os.environ
cfg = json.loads(sys.argv[1])
w = e["HK_CFG_WORK"]
cfg.update(dsn=e["HK_CFG_DSN"], db=e["HK_CFG_DSN"].rsplit("/", 1)[1], db_user=e["HK_CFG_USER"],
           n_keys=int(e["HK_CFG_N"]), keys_file=f"{w}/host_keys.txt", load_keys_file=f"{w}/host_load_keys.txt",
           ext=e["HK_CFG_EXT"], c_host=f"{w}/c_host", keygen=e["HK_CFG_KEYGEN"], client_id=int(e["HK_CFG_CLIENT"]),
           work=f"{w}/host", region_dir=e["HK_CFG_SHM"], fpm_bin=e["HK_CFG_FPM"],
           mysql=["env", "MYSQL_PWD=" + e["HK_CFG_PASS"], "mariadb", "--protocol=TCP", "-h", e["HK_CFG_HOST"],
                  "-P", e["HK_CFG_PORT"], "-u", e["HK_CFG_USER"]])
json.dump(cfg, open(sys.argv[2], "w"))
PY
        for mode in private shared; do
            load "host $mode"
            if python3 "$here/host.py" "$mode" "$work/host.json" "$res/host_$mode.json" 2>"$res/host_$mode.log" &&
                [[ -s $res/host_$mode.json ]]; then
                ok "host benchmark ($mode) ran"
            else
                ko "host benchmark ($mode)"
                tail -20 "$res/host_$mode.log" | sed 's/^/        | /'
            fi
            while read -r verdict name; do
                if [[ $verdict == ok ]]; then ok "host $name"; else ko "host $name"; fi
            done < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for c in d.get("checks", []):
    print(("ok " if c["ok"] else "KO ") + c["name"] + ("" if c["ok"] else ": " + c["detail"]))
' "$res/host_$mode.json" 2>/dev/null)
        done
    fi
fi
fi # http_only

if ((criterion)); then
    echo "==> criterion benches (cargo bench -p heratio-keys-bench)"
    load criterion
    if HERATIO_KEYS_BENCH_MYSQL_DSN=$(new_db criterion) cargo bench -p heratio-keys-bench --bench validation \
        >"$res/criterion.txt" 2>&1; then
        ok "cargo bench -p heratio-keys-bench"
    else
        ko "cargo bench -p heratio-keys-bench"
        tail -30 "$res/criterion.txt"
    fi
fi
load end

echo "==> report"
doc=()
# A full run into benches/results also refreshes the tables in the doc.
[[ $smoke == 0 && $out == "$root/benches/results" ]] && doc=("$root/docs/BENCHMARKS.md")
if python3 "$here/report.py" "$res" "$out" "$target/criterion" "$criterion" "$smoke" "${doc[@]}"; then
    ok "report: $out/summary.md, $out/validation-cost.svg"
elif ((host_only || http_only)) && [[ -s $out/summary.md ]]; then
    # The other steps' results are missing by design: the rows run stand.
    ok "report (partial run): $out/summary.md"
else
    ko "report"
fi
finish
exit
}
