#!/usr/bin/env bash
# The main job on the embedded default (SQLite): install a keys database,
# create a client, issue an API key, validate it in-process, revoke it, and
# validate again. Everything lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p heratio-keys-cli
KEYGEN="$PWD/target/release/keygen"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export HERATIO_KEYS_DSN="sqlite:$WORK/heratio_keys.db"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step keygen install
"$KEYGEN" install

step keygen client:create --name "Ministry Archive" --email archivist@example.org
CLIENT=$("$KEYGEN" --json client:create --name "Ministry Archive" --email archivist@example.org | sed -n 's/.*"id": *\([0-9]*\).*/\1/p' | head -1)
echo "client id $CLIENT"

step keygen api:generate "$CLIENT" --name production --scopes read,write --expires-in 90d
KEY=$("$KEYGEN" --json api:generate "$CLIENT" --name production --scopes read,write --expires-in 90d 2>/dev/null | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
KEY_ID=$("$KEYGEN" --json api:list "$CLIENT" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p' | head -1)
echo "key ${KEY:0:12}… (id $KEY_ID)"

step "keygen api:validate - --scope read   (key on stdin)"
echo "$KEY" | "$KEYGEN" api:validate - --scope read && echo "exit 0"

step "keygen api:validate - --scope delete"
echo "$KEY" | "$KEYGEN" api:validate - --scope delete || echo "exit $?"

step keygen api:revoke "$KEY_ID"
"$KEYGEN" api:revoke "$KEY_ID"

step "keygen api:validate -   (after revocation)"
echo "$KEY" | "$KEYGEN" api:validate - || echo "exit $?"

step keygen api:list "$CLIENT"
"$KEYGEN" api:list "$CLIENT"

step keygen stats
"$KEYGEN" stats
