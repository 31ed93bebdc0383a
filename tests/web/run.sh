#!/usr/bin/env bash
# Browser tests of `keygen serve` in real headless Chromium.
#
# Needs: node >= 18 with npm, the Debian `chromium` package (/usr/bin/chromium,
# or set CHROMIUM), cargo. Installs playwright-core from package-lock.json
# (npm ci), builds keygen, starts `keygen serve` on a free loopback port over
# a fresh SQLite database and runs browser.mjs. Screenshots (desktop and
# phone widths) go to <target dir>/web-screenshots/. The last line is
# "Web browser tests: N passed, M failed"; the exit status is non-zero on any
# failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    echo "error: no Chromium at $CHROMIUM (apt-get install -y chromium, or set CHROMIUM)" >&2
    exit 2
fi

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd "$root" && cargo build --quiet -p heratio-keys-cli)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export KEYGEN="$target_dir/debug/keygen"
export SCREENSHOT_DIR="$target_dir/web-screenshots"
rm -rf "$SCREENSHOT_DIR"

work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export HERATIO_KEYS_DSN="sqlite:$work/keys.db"
export ADMIN_USER=admin
ADMIN_PASSWORD="browser-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export ADMIN_PASSWORD
"$KEYGEN" install >/dev/null
printf '%s\n' "$ADMIN_PASSWORD" | "$KEYGEN" admin:create "$ADMIN_USER" >/dev/null

port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
export BASE_URL="http://127.0.0.1:$port"
export SERVER_LOG="$work/serve.log"
"$KEYGEN" serve --listen "127.0.0.1:$port" >"$SERVER_LOG" 2>&1 &
server=$!

status=0
(cd "$here" && node browser.mjs) || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log (last 30 lines) ---" >&2
    tail -n 30 "$SERVER_LOG" >&2 || true
fi
exit "$status"
