#!/usr/bin/env bash
# Runs the documentation's commands as written: the code blocks of README.md
# and docs/*.md marked `<!-- test: NAME -->` (see docs/install.md, "Tested
# documentation", and tests/docs/extract.py) are extracted and run in one
# shell session, in the order of docs/install.md's path:
#
#   prerequisites, keygen on the PATH, the PHP extension's build and install;
#   SQLite: database created by root, the permissions step, a first key, the
#     php-fpm pool and nginx server block of docs/php.md (pool user www-data)
#     serving heratio_keys_authenticate(), the README's and c-api.md's C
#     programs built and run with the commands shown, the ctypes example;
#   MariaDB: the setup statements (database, owner, least-privilege runtime
#     account) on a throwaway server, keygen install as the owner, the same
#     pool and server block validating as the runtime account, usage rows
#     and counters written by it, what it must not be able to do, the C
#     program as that account; then the runtime account without INSERT on
#     usage_log: one "usage is not being recorded" warning, validation still
#     valid, and no warning once the documented grants are re-run
#     (tests/docs/usage_warning.php).
#
# Substitutions: the only changes made to the documented text, applied to
# every extracted block (documented value -> value on this machine):
#
#   /var/lib/heratio-keys       -> $work/var/lib/heratio-keys       SQLite database directory
#   /var/www/heratio            -> $work/var/www/heratio            AtoM's web root (the check endpoint)
#   /run/php/heratio-keys.sock  -> $work/run/php/heratio-keys.sock  the pool's socket
#   listen 80;                  -> listen 127.0.0.1:$http_port;     nginx: a free loopback port
#   http://localhost/           -> http://localhost:$http_port/     the curl checks
#   127.0.0.1:3306              -> 127.0.0.1:$db_port               the throwaway MariaDB started here
#   PREFIX=/usr/local           -> PREFIX=$work/prefix              C library: a non-system prefix on purpose
#
# Placement, instead of /etc and systemctl: the pool file is written to
# $work/fpm/pool.d/ and loaded by a php-fpm master started here (its own
# [global]: pid, error_log, daemonize = no, include); the server block is
# included by an nginx.conf of our own (pid, logs, temp paths, `user
# www-data`, Debian's mime.types, snippets/ and fastcgi.conf). SQL blocks are
# sent to `mariadb` as root over the throwaway server's socket. C source
# blocks are saved as app.c in a directory of $work where the blocks that
# compile and run them are run; every other block runs at the top of the
# checkout. With SQLite, the pool's DSN line is replaced by docs/install.md's
# `fpm-dsn-sqlite` line, as that page tells a SQLite reader to do.
#
# Global effects: what the docs tell an operator to do (apt packages,
# /usr/local/bin/keygen, the extension in PHP's extension dir, its
# mods-available ini enabled with phpenmod, ldconfig). At exit the runner
# restores the previous keygen, extension and ini (or removes them if there
# were none), stops the servers and the MariaDB it started and deletes $work.
#
# Needs root (as the documented commands do), Debian 12 with the packages of
# scripts/test.sh, a Rust toolchain. Prints `docs tests: passed` last.
set -Eeuo pipefail
umask 022

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        exec sudo -E "$0" "$@"
    fi
    echo "tests/docs/run.sh: needs root (the documented commands install into the system)" >&2
    exit 1
fi

hkd_root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$hkd_root"
hkd_started=$(date +%s)
hkd_work=$(mktemp -d /tmp/heratio-keys-docs.XXXXXX)
chmod 0755 "$hkd_work"   # www-data (pool and nginx workers) must traverse it
hkd_current="(setup)"
: >"$hkd_work/out"
hkd_fpm_pid=""
hkd_nginx_pid=""
hkd_db_dir=""
hkd_restore=()
hkd_requests=0

# --- restoring what the documented install replaces ---------------------
# hkd_keep PATH: PATH is put back as it is now (or removed) at exit.
hkd_keep() {
    local path=$1 saved
    saved="$hkd_work/saved/$(echo "$path" | tr / _)"
    mkdir -p "$hkd_work/saved"
    if [[ -e $path || -L $path ]]; then
        cp -a "$path" "$saved"
        hkd_restore+=("$path=$saved")
    else
        hkd_restore+=("$path=")
    fi
}
hkd_ext_dir=$(php-config8.2 --extension-dir)
hkd_keep /usr/local/bin/keygen
hkd_keep "$hkd_ext_dir/heratio_keys.so"
hkd_keep /etc/php/8.2/mods-available/heratio_keys.ini
for hkd_sapi in cli fpm; do
    hkd_keep "/etc/php/8.2/$hkd_sapi/conf.d/20-heratio_keys.ini"
    hkd_keep "/var/lib/php/modules/8.2/$hkd_sapi/enabled_by_admin/heratio_keys"   # phpenmod's state
    hkd_keep "/var/lib/php/modules/8.2/$hkd_sapi/enabled_by_maint/heratio_keys"
done
hkd_keep /var/lib/php/modules/8.2/registry/heratio_keys

hkd_cleanup() {
    local status=$? entry path saved
    trap - ERR
    set +e
    hkd_stop_servers
    for entry in "${hkd_restore[@]}"; do
        path=${entry%%=*}
        saved=${entry#*=}
        rm -f "$path"
        [[ -n $saved ]] && cp -a "$saved" "$path"
    done
    [[ -n $hkd_db_dir ]] && "$hkd_root/scripts/mariadb.sh" stop "$hkd_db_dir"
    rm -rf "$hkd_work"
    echo "docs stage: $(($(date +%s) - hkd_started)) s"
    if ((status == 0)); then
        echo "docs tests: passed"
    else
        echo "docs tests: FAILED in $hkd_current"
    fi
    exit "$status"
}
trap hkd_cleanup EXIT
hkd_on_error() {
    local status=$1 line=$2
    echo "error: line $line exited $status (in $hkd_current); its standard output:" >&2
    sed 's/^/      /' "$hkd_work/out" >&2 2>/dev/null || true
}
trap 'hkd_on_error $? $LINENO' ERR

hkd_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
hkd_http_port=$(hkd_free_port)

# --- the throwaway MariaDB (its own, whatever else runs on this machine) ---
hkd_db_out=$(env -u HK_MARIADB_PORT "$hkd_root/scripts/mariadb.sh" start)
hkd_db_dir=$(sed -n 's/^export HK_MARIADB_DIR=//p' <<<"$hkd_db_out")
hkd_db_port=$(sed -n 's/^export HK_MARIADB_PORT=//p' <<<"$hkd_db_out")
hkd_db_root() { mariadb --no-defaults --socket="$hkd_db_dir/sock" -uroot "$@"; }
# scripts/mariadb.sh prepares a database and user for the other tests; the
# documented statements start from an empty server.
hkd_db_root -e "DROP DATABASE heratio_keys; DROP USER 'hk'@'127.0.0.1';"

hkd_subs=(
    --sub /var/lib/heratio-keys "$hkd_work/var/lib/heratio-keys"
    --sub /var/www/heratio "$hkd_work/var/www/heratio"
    --sub /run/php/heratio-keys.sock "$hkd_work/run/php/heratio-keys.sock"
    --sub "listen 80;" "listen 127.0.0.1:$hkd_http_port;"
    --sub "http://localhost/" "http://localhost:$hkd_http_port/"
    --sub "127.0.0.1:3306" "127.0.0.1:$hkd_db_port"
    --sub "PREFIX=/usr/local" "PREFIX=$hkd_work/prefix"
)
# Stand-ins for what exists on a real host: /var/lib, AtoM's web root, /run/php.
mkdir -p "$hkd_work/var/lib" "$hkd_work/var/www/heratio/public" "$hkd_work/run/php" \
    "$hkd_work/blocks" "$hkd_work/fpm/pool.d" "$hkd_work/nginx" "$hkd_work/c" "$hkd_work/c-api"

# --- running blocks -----------------------------------------------------
hkd_used=()
# hkd_extract FILE NAME OUT: the block's substituted text into OUT.
hkd_extract() {
    hkd_used+=("$1 $2")
    python3 "$hkd_root/tests/docs/extract.py" get "$hkd_root/$1" "$2" "${hkd_subs[@]}" >"$3"
}
# hkd_sh FILE NAME [DIR]: runs a shell block in this shell (its variables
# and exports persist, as in a reader's terminal), in DIR (default: the
# checkout). Its output also goes to $hkd_work/out.
hkd_sh() {
    local f="$hkd_work/blocks/${1//\//_}.$2"
    hkd_extract "$1" "$2" "$f"
    hkd_current="$1 [$2]"
    echo "==> $1 [$2]"
    sed 's/^/    $ /' "$f"
    cd "${3:-$hkd_root}"
    # shellcheck disable=SC1090
    source "$f" >"$hkd_work/out"
    cd "$hkd_root"
    sed 's/^/      /' "$hkd_work/out"
}
# hkd_sql FILE NAME: sends a SQL block to the throwaway MariaDB as root.
hkd_sql() {
    local f="$hkd_work/blocks/${1//\//_}.$2"
    hkd_extract "$1" "$2" "$f"
    hkd_current="$1 [$2]"
    echo "==> $1 [$2] (mariadb as root)"
    sed 's/^/    > /' "$f"
    hkd_db_root <"$f"
}
# hkd_file FILE NAME OUT: a block saved as a file.
hkd_file() {
    hkd_extract "$1" "$2" "$3"
    hkd_current="$1 [$2]"
    echo "==> $1 [$2] saved as $3"
}
# hkd_expect DESCRIPTION COMMAND...: a check of the runner's own.
hkd_expect() {
    local what=$1
    shift
    if "$@"; then
        echo "  ok    $what"
    else
        echo "  FAIL  $what" >&2
        hkd_current="check: $what"
        exit 1
    fi
}

# --- php-fpm and nginx with the documented pool and server block ---------
hkd_start_servers() {
    local pool=$1 conf="$hkd_work/fpm/php-fpm.conf"
    rm -f "$hkd_work/fpm/pool.d/"*
    cp "$pool" "$hkd_work/fpm/pool.d/heratio-keys.conf"
    cat >"$conf" <<EOF
[global]
pid = $hkd_work/fpm/php-fpm.pid
error_log = $hkd_work/fpm/php-fpm.log
daemonize = no
include = $hkd_work/fpm/pool.d/*.conf
EOF
    hkd_current="php-fpm with docs/php.md [fpm-pool]"
    hkd_expect "php-fpm accepts the pool file, process_control_timeout > 0" \
        bash -c "php-fpm8.2 -tt -y '$conf' 2>&1 | grep -Eq 'process_control_timeout = [1-9]'"
    : >"$hkd_work/fpm/php-fpm.log"
    php-fpm8.2 -F -y "$conf" >>"$hkd_work/fpm/php-fpm.log" 2>&1 &
    hkd_fpm_pid=$!

    local n="$hkd_work/nginx"
    ln -sfn /etc/nginx/snippets "$n/snippets"
    ln -sfn /etc/nginx/fastcgi.conf "$n/fastcgi.conf"
    ln -sfn /etc/nginx/mime.types "$n/mime.types"
    cat >"$n/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid $n/nginx.pid;
error_log $n/error.log notice;
daemon off;
events { worker_connections 64; }
http {
    include mime.types;
    default_type application/octet-stream;
    access_log $n/access.log;
    client_body_temp_path $n/body;
    fastcgi_temp_path $n/fastcgi;
    proxy_temp_path $n/proxy;
    uwsgi_temp_path $n/uwsgi;
    scgi_temp_path $n/scgi;
    include $n/site.conf;
}
EOF
    hkd_current="nginx with docs/php.md [nginx-server]"
    : >"$n/error.log"
    nginx -p "$n/" -c "$n/nginx.conf" -e "$n/error.log" &
    hkd_nginx_pid=$!
    local i
    for i in $(seq 1 100); do
        [[ -S $hkd_work/run/php/heratio-keys.sock ]] &&
            curl -s -o /dev/null "http://127.0.0.1:$hkd_http_port/" && return 0
        sleep 0.1
    done
    echo "php-fpm or nginx did not start:" >&2
    tail -20 "$hkd_work/fpm/php-fpm.log" "$n/error.log" >&2
    return 1
}
# Graceful stop (SIGQUIT), as in production: FPM workers write their last
# usage rows at module shutdown.
hkd_stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -QUIT "$pid" 2>/dev/null || return 0
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
}
hkd_stop_servers() {
    local ok=0
    hkd_stop_pid "$hkd_nginx_pid" || ok=1
    hkd_stop_pid "$hkd_fpm_pid" || ok=1
    hkd_nginx_pid=""
    hkd_fpm_pid=""
    return $ok
}
hkd_no_warnings() {
    ! grep -hE 'PHP (Warning|Fatal)|usage is not being recorded|SIGSEGV|exited on signal' \
        "$hkd_work/fpm/php-fpm.log" "$hkd_work/nginx/error.log"
}
# hkd_curl KEY: one request to the check endpoint with that key.
hkd_curl() {
    curl -sS -H "X-API-Key: $1" "http://localhost:$hkd_http_port/heratio-keys-check.php"
}

hkd_sqlite() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$@"; }
hkd_owned_by_www_data() {
    local f
    for f in "$1" "$1"/*; do
        [[ -e $f ]] || continue
        [[ $(stat -c %U:%G "$f") == www-data:www-data ]] || { echo "$f: $(stat -c '%U:%G %a' "$f")" >&2; return 1; }
    done
}

# =========================================================================
echo "==> substitutions: SQLite dir, web root and FPM socket under $hkd_work," \
    "nginx on 127.0.0.1:$hkd_http_port, MariaDB on 127.0.0.1:$hkd_db_port, C prefix $hkd_work/prefix"

hkd_sh docs/install.md prerequisites
hkd_sh docs/install.md keygen
hkd_sh docs/cli.md cli-install
hkd_expect "keygen is /usr/local/bin/keygen on the PATH" \
    test "$(command -v keygen)" = /usr/local/bin/keygen
hkd_sh docs/install.md php-extension
hkd_expect "php --ri heratio_keys shows counters before any validation" \
    grep -q 'validations' "$hkd_work/out"

# --- SQLite ---------------------------------------------------------------
echo
echo "=== SQLite: database created by root, the permissions step, php-fpm as www-data"
hkd_sh docs/install.md sqlite
hkd_db_file="$hkd_work/var/lib/heratio-keys/keys.db"
hkd_expect "keys.db and its directory belong to www-data, directory 0700" \
    bash -c "[[ \$(stat -c %U:%a '$hkd_work/var/lib/heratio-keys') == www-data:700 ]] && [[ \$(stat -c %U '$hkd_db_file') == www-data ]]"
hkd_sh docs/install.md first-key
hkd_expect "KEY holds one API key (53 characters)" eval '[[ $KEY =~ ^hk_api_[0-9A-Za-z]{46}$ ]]'
hkd_expect "keygen api:validate: valid" grep -qx valid "$hkd_work/out"
hkd_sqlite_key=$KEY

hkd_file docs/php.md fpm-pool "$hkd_work/blocks/pool.mysql"
hkd_file docs/install.md fpm-dsn-sqlite "$hkd_work/blocks/dsn.sqlite"
hkd_expect "the pool file has one heratio_keys.dsn line" \
    test "$(grep -c '^php_admin_value\[heratio_keys.dsn\]' "$hkd_work/blocks/pool.mysql")" = 1
python3 - "$hkd_work/blocks/pool.mysql" "$hkd_work/blocks/dsn.sqlite" >"$hkd_work/blocks/pool.sqlite" <<'EOF'
import sys
dsn = open(sys.argv[2]).read().strip()
for line in open(sys.argv[1]).read().splitlines():
    print(dsn if line.startswith("php_admin_value[heratio_keys.dsn]") else line)
EOF
hkd_file docs/php.md nginx-server "$hkd_work/nginx/site.conf"
hkd_start_servers "$hkd_work/blocks/pool.sqlite"
hkd_sh docs/install.md check-endpoint
hkd_sh docs/install.md check
hkd_requests=$((hkd_requests + 1)) # the request without a key matches no credential: no usage_log row
hkd_expect "through nginx + php-fpm: {\"status\":\"valid\",\"client\":1,\"key\":1}" \
    grep -qx '{"status":"valid","client":1,"key":1}' "$hkd_work/out"
hkd_expect "no key: 401" grep -qx 401 "$hkd_work/out"

# Root's keygen writes while the workers (www-data) hold the database open:
# the pool must keep working (SQLite gives root's -wal/-shm the file's owner).
hkd_current="root's keygen while php-fpm runs"
hkd_key2=$(keygen api:generate 1 --name second 2>/dev/null | grep -o 'hk_api_[0-9A-Za-z]\{46\}')
hkd_requests=$((hkd_requests + 1))
hkd_expect "a key generated by root is accepted by the pool" \
    test "$(hkd_curl "$hkd_key2")" = '{"status":"valid","client":1,"key":2}'
keygen api:revoke 2 >/dev/null
hkd_revoked=""
for _ in $(seq 1 50); do
    hkd_requests=$((hkd_requests + 1))
    hkd_out=$(hkd_curl "$hkd_key2")
    [[ $hkd_out == '{"status":"revoked","client":1,"key":2}' ]] && { hkd_revoked=yes; break; }
    sleep 0.1
done
hkd_expect "a revocation by root's keygen reaches the pool" test -n "$hkd_revoked"
hkd_sh docs/install.md check-remove
hkd_expect "php-fpm stops gracefully (SIGQUIT)" hkd_stop_servers
hkd_expect "no warning or crash in the php-fpm and nginx logs" hkd_no_warnings
hkd_expect "usage_log: one row per request, written by the www-data workers ($hkd_requests)" \
    test "$(hkd_sqlite "$hkd_db_file" "SELECT COUNT(*) FROM usage_log WHERE endpoint = '/heratio-keys-check.php'")" = "$hkd_requests"
hkd_expect "the database files still belong to www-data" hkd_owned_by_www_data "$hkd_work/var/lib/heratio-keys"
# Without the permissions step (a root-owned copy), the pool user gets the
# hint that points to docs/install.md.
hkd_current="the hint without the permissions step"
mkdir -m 0755 "$hkd_work/rootdb"
cp "$hkd_db_file" "$hkd_work/rootdb/keys.db"
chmod 0600 "$hkd_work/rootdb/keys.db"
hkd_expect "as www-data on a root-owned database: unavailable, a warning pointing to docs/install.md" bash -c "
    runuser -u www-data -- php8.2 -d 'heratio_keys.dsn=sqlite:$hkd_work/rootdb/keys.db' -d display_errors=stderr \
        -r 'echo heratio_keys_validate_api_key(\$argv[1])->status, PHP_EOL;' '$KEY' 2>&1 |
        tee -a /dev/stderr | grep -q 'needs read and write access to the database file and its directory: see docs/install.md'"

echo
echo "=== C: the README's program and c-api.md's, against the SQLite database"
hkd_sh README.md c-install
hkd_file README.md c-app "$hkd_work/c/app.c"
hkd_sh README.md c-run "$hkd_work/c"
hkd_expect "README's app: valid: client 1, key 1 (production), scopes read,write" \
    grep -qx 'valid: client 1, key 1 (production), scopes read,write' "$hkd_work/out"
hkd_sh docs/c-api.md c-api-install
hkd_file docs/c-api.md c-api-app "$hkd_work/c-api/app.c"
hkd_sh docs/c-api.md c-api-link "$hkd_work/c-api"
hkd_sh docs/c-api.md c-api-static "$hkd_work/c-api"
hkd_current="c-api.md's programs"
for hkd_bin in app app-static; do
    hkd_expect "c-api.md's $hkd_bin: client 1, key 1 (production), scopes read,write" bash -c "
        printf '%s\n' '$KEY' | HERATIO_KEYS_DSN='sqlite:$hkd_db_file' '$hkd_work/c-api/$hkd_bin' |
            grep -qx 'client 1, key 1 (production), scopes read,write'"
done
hkd_expect "app-static does not need libheratio_keys.so" \
    bash -c "! readelf -d '$hkd_work/c-api/app-static' | grep -q 'NEEDED.*libheratio_keys'"
hkd_sh docs/c-api.md c-api-python
hkd_expect "ctypes example: valid" grep -q '^valid 200' "$hkd_work/out"
hkd_expect "the database files still belong to www-data after root's C programs" \
    hkd_owned_by_www_data "$hkd_work/var/lib/heratio-keys"

# --- MariaDB --------------------------------------------------------------
echo
echo "=== MariaDB: setup statements, owner and least-privilege runtime account"
hkd_sql docs/install.md mariadb-database
hkd_sh docs/install.md mariadb-schema
hkd_sql docs/install.md mariadb-runtime
hkd_sh docs/install.md first-key
hkd_expect "KEY holds one API key (53 characters)" eval '[[ $KEY =~ ^hk_api_[0-9A-Za-z]{46}$ ]]'
hkd_expect "keygen api:validate (owner): valid" grep -qx valid "$hkd_work/out"

hkd_runtime_dsn=$(sed -n 's/^php_admin_value\[heratio_keys.dsn\] = "\(.*\)"$/\1/p' "$hkd_work/blocks/pool.mysql")
hkd_re='^mysql://([^:]+):([^@]+)@127\.0\.0\.1:([0-9]+)/(.+)$'
[[ $hkd_runtime_dsn =~ $hkd_re ]] || { echo "cannot parse the pool's DSN: $hkd_runtime_dsn" >&2; exit 1; }
hkd_rt_user=${BASH_REMATCH[1]} hkd_rt_pass=${BASH_REMATCH[2]} hkd_rt_db=${BASH_REMATCH[4]}
hkd_db_runtime() {
    MYSQL_PWD=$hkd_rt_pass mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$hkd_db_port" \
        -u "$hkd_rt_user" "$hkd_rt_db" -N -e "$1"
}
hkd_db_count() { hkd_db_root heratio_keys -N -e "$1"; }

hkd_requests=0
hkd_start_servers "$hkd_work/blocks/pool.mysql"
hkd_sh docs/install.md check-endpoint
hkd_sh docs/install.md check
hkd_requests=$((hkd_requests + 1))
hkd_expect "through nginx + php-fpm on MariaDB as $hkd_rt_user: valid" \
    grep -qx '{"status":"valid","client":1,"key":1}' "$hkd_work/out"
hkd_expect "no key: 401" grep -qx 401 "$hkd_work/out"
# Two more requests without a valid key, in separate usage batches: the
# second adds to the first's per-minute usage_rejected row (the UPDATE path).
hkd_current="rejected attempts"
curl -sS -o /dev/null -H 'X-API-Key: not-a-key' "http://localhost:$hkd_http_port/heratio-keys-check.php"
sleep 1.5
curl -sS -o /dev/null -H 'X-API-Key: not-a-key' "http://localhost:$hkd_http_port/heratio-keys-check.php"
hkd_sh docs/install.md check-remove
hkd_expect "php-fpm stops gracefully (SIGQUIT)" hkd_stop_servers
hkd_expect "no warning or crash in the php-fpm and nginx logs (the grants suffice)" hkd_no_warnings
hkd_expect "usage_rejected: the 3 malformed attempts counted (INSERT … ON DUPLICATE KEY UPDATE)" \
    test "$(hkd_db_count "SELECT COALESCE(SUM(count), 0) FROM usage_rejected WHERE status = 1")" = 3
hkd_expect "usage_log: one row per request ($hkd_requests), written with the runtime account's INSERT" \
    test "$(hkd_db_count "SELECT COUNT(*) FROM usage_log WHERE endpoint = '/heratio-keys-check.php'")" = "$hkd_requests"
hkd_expect "usage_daily: the rollups agree with usage_log for api_key 1 (the runtime account's upsert)" \
    test "$(hkd_db_count "SELECT COALESCE(SUM(count), 0) FROM usage_daily WHERE credential_id = 1 AND credential_kind = 1")" = \
    "$(hkd_db_count "SELECT COUNT(*) FROM usage_log WHERE credential_id = 1 AND credential_kind = 1")"
hkd_expect "api_key 1: usage_count 2 (keygen's check and nginx's), last_used_at set (column UPDATE grant)" \
    test "$(hkd_db_count "SELECT CONCAT(usage_count, ',', last_used_at IS NOT NULL) FROM api_key WHERE id = 1")" = "2,1"

hkd_current="what the runtime account must not do"
hkd_expect "runtime account may read api_key" hkd_db_runtime "SELECT COUNT(*) FROM api_key" >/dev/null
# hkd_refused STATEMENT: the runtime account gets "command denied" for it.
hkd_refused() {
    local err
    if err=$(hkd_db_runtime "$1" 2>&1); then
        echo "accepted: $1" >&2
        return 1
    fi
    grep -q 'command denied' <<<"$err" || { echo "$err" >&2; return 1; }
}
for hkd_stmt in "UPDATE api_key SET is_active = 1" "UPDATE ai_token SET expires_at = NULL" \
    "UPDATE api_key SET scopes = '*'" "UPDATE client SET is_active = 1" "DELETE FROM usage_log" \
    "DELETE FROM usage_rejected" "DELETE FROM change_feed" \
    "SELECT COUNT(*) FROM usage_log" "SELECT COUNT(*) FROM admin_user" "SELECT COUNT(*) FROM audit_log" \
    "DROP TABLE change_feed"; do
    hkd_expect "runtime account refused: $hkd_stmt" hkd_refused "$hkd_stmt"
done

hkd_current="README's C program as the runtime account"
hkd_expect "README's app with the runtime DSN: valid" bash -c "
    printf '%s\n' '$KEY' | HERATIO_KEYS_DSN='$hkd_runtime_dsn' '$hkd_work/c/app' |
        grep -qx 'valid: client 1, key 1 (production), scopes read,write'"
hkd_expect "usage_log: the C program's row" \
    test "$(hkd_db_count "SELECT COUNT(*) FROM usage_log WHERE endpoint = '/api/informationobjects'")" = 1
# A rate-limited key: the runtime account also keeps the shared hourly budget.
hkd_limited=$(keygen api:generate 1 --name limited --scopes read --rate-limit 1 2>/dev/null | grep -o 'hk_api_[0-9A-Za-z]\{46\}')
hkd_expect "README's app, rate-limited key (1 per hour): valid, then 429 rate_limited" bash -c "
    printf '%s\n' '$hkd_limited' | HERATIO_KEYS_DSN='$hkd_runtime_dsn' '$hkd_work/c/app' | grep -q '^valid' &&
    printf '%s\n' '$hkd_limited' | HERATIO_KEYS_DSN='$hkd_runtime_dsn' '$hkd_work/c/app' | grep -qx '429 rate_limited'"

echo
echo "=== the usage-write warning: runtime account without INSERT on usage_log"
hkd_current="usage warning"
hkd_db_root -e "REVOKE INSERT ON heratio_keys.usage_log FROM '$hkd_rt_user'@'127.0.0.1'"
cat >"$hkd_work/fix-grants.sh" <<EOF
#!/bin/sh
# Re-runs docs/install.md's runtime grants, as an operator fixing them would.
exec mariadb --no-defaults --socket='$hkd_db_dir/sock' -uroot <'$hkd_work/blocks/docs_install.md.mariadb-runtime'
EOF
chmod +x "$hkd_work/fix-grants.sh"
hkd_warning_out="$hkd_work/usage_warning.out"
HK_FIX_GRANTS="$hkd_work/fix-grants.sh" php8.2 -d "heratio_keys.dsn=$hkd_runtime_dsn" \
    "$hkd_root/tests/docs/usage_warning.php" "$KEY" | tee "$hkd_warning_out"
hkd_validations=$(sed -n 's/^VALIDATIONS //p' "$hkd_warning_out")
hkd_expect "usage_log: every validation of the test written once the grants were fixed ($hkd_validations)" \
    test "$(hkd_db_count "SELECT COUNT(*) FROM usage_log WHERE endpoint = '/usage-warning-test'")" = "$hkd_validations"

# --- every marked block was used ------------------------------------------
hkd_current="marker inventory"
python3 "$hkd_root/tests/docs/extract.py" list README.md docs/*.md | awk '{print $1, $2}' | sort >"$hkd_work/marked"
printf '%s\n' "${hkd_used[@]}" | sort -u >"$hkd_work/used"
hkd_expect "every marked block in README.md and docs/ is run by this runner" \
    diff "$hkd_work/marked" "$hkd_work/used"
