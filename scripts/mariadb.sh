#!/usr/bin/env bash
# Starts or stops a throwaway MariaDB server in a temporary directory, on a
# loopback TCP port, with a test database user. Used by scripts/test.sh and
# by hand:
#   eval "$(scripts/mariadb.sh start)"   # prints export lines
#   scripts/mariadb.sh stop "$HK_MARIADB_DIR"
set -euo pipefail

start() {
    local dir port
    dir="$(mktemp -d /tmp/heratio-keys-mariadb.XXXXXX)"
    # A port the kernel says is free now (a random pick could be one that
    # another server, or a client's ephemeral port, already holds).
    port="${HK_MARIADB_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
    mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/sock" --port="$port" \
        --bind-address=127.0.0.1 --skip-name-resolve --user=root --skip-log-bin \
        --pid-file="$dir/mariadbd.pid" --innodb-buffer-pool-size=128M \
        --max-connections=500 >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 150); do
        if mariadb-admin --no-defaults --socket="$dir/sock" -uroot ping >/dev/null 2>&1; then
            break
        fi
        sleep 0.2
    done
    mariadb-admin --no-defaults --socket="$dir/sock" -uroot ping >/dev/null 2>&1 || {
        echo "MariaDB did not start; log:" >&2
        cat "$dir/server.log" >&2
        exit 1
    }
    mariadb --no-defaults --socket="$dir/sock" -uroot <<SQL
CREATE DATABASE heratio_keys;
CREATE USER 'hk'@'127.0.0.1' IDENTIFIED BY 'hk-test-pw';
GRANT ALL PRIVILEGES ON heratio_keys.* TO 'hk'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`hk\\_test\\_%\`.* TO 'hk'@'127.0.0.1';
SQL
    # What the tests will do: the test user, over TCP, on this port.
    MYSQL_PWD=hk-test-pw mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" -u hk \
        heratio_keys -e 'SELECT 1' >/dev/null || {
        echo "MariaDB in $dir is not reachable as hk on 127.0.0.1:$port; log:" >&2
        cat "$dir/server.log" >&2
        exit 1
    }
    echo "export HK_MARIADB_DIR=$dir"
    echo "export HK_MARIADB_PORT=$port"
    echo "export HERATIO_KEYS_TEST_MYSQL_DSN=mysql://hk:hk-test-pw@127.0.0.1:$port/heratio_keys"
}

stop() {
    local dir="${1:?usage: mariadb.sh stop DIR}"
    if [[ -f "$dir/pid" ]]; then
        local pid
        pid="$(cat "$dir/pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
