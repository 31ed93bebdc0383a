#!/usr/bin/env bash
# The Debian packages, end to end, on this machine: builds them
# (scripts/package-deb.sh --lintian), installs them with dpkg -i, and checks
# from the installed paths only:
#   keygen --version, keygen(1) through man, the completion scripts, the
#   systemd units (systemd-analyze verify), the service account, keygen.env's
#   mode, the state directory as docs/install.md uses it with SQLite (keygen
#   install as heratio-keys, php as www-data in group heratio-keys, then
#   keygen again), php -m and a key validated by the extension, a C program
#   built with pkg-config and gcc -Werror against the installed header and
#   library (shared, and static), ldconfig;
# then removes and purges them and checks that their files, the conf.d links
# phpenmod made and phpenmod's state are gone, and that what purge keeps on
# purpose (the service account, a database in /var/lib/heratio-keys) is kept.
#
# Global effects, undone at exit: the packages; a heratio_keys.so, ini and
# conf.d links of a manual install (docs/install.md section 3) are moved
# aside and put back; the heratio-keys account and www-data's membership in
# its group are removed if this run created them.
#
# Arguments are passed to scripts/package-deb.sh (e.g. --no-build).
# Needs root (dpkg), Debian 12 with the packages of scripts/test.sh; installs
# dpkg-dev, lintian, man-db and systemd if missing. Prints
# `deb tests: N passed, M failed` last.
set -uo pipefail

if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null && exec sudo -E "$0" "$@"
    echo "tests/deb/run.sh: needs root (dpkg -i)" >&2
    exit 1
fi
cd "$(dirname "$0")/../.."
root=$(pwd)
export DEBIAN_FRONTEND=noninteractive

work=$(mktemp -d /tmp/heratio-keys-deb.XXXXXX)
chmod 0755 "$work"
passed=0
failed=0

# t NAME COMMAND...: one check; its output is shown only when it fails.
t() {
    local name=$1
    shift
    if "$@" >"$work/last.log" 2>&1; then
        passed=$((passed + 1))
        echo "  ok    $name"
    else
        failed=$((failed + 1))
        echo "  FAIL  $name"
        sed 's/^/        | /' "$work/last.log" | tail -30
    fi
}

need=()
for pkg in dpkg-dev lintian man-db systemd gcc pkg-config binutils php8.2-cli; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "==> installing: ${need[*]}"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PHP_CONFIG=${PHP_CONFIG:-$(command -v php-config8.2)}
php_version=$("$PHP_CONFIG" --version | cut -d. -f1,2)
php_extdir=$("$PHP_CONFIG" --extension-dir)
php="php$php_version"
packages=(heratio-keys libheratio-keys0 libheratio-keys-dev "php$php_version-heratio-keys")
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)

# --- what a manual install left, moved aside for the run -----------------------
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
for pkg in "${packages[@]}"; do
    is_installed "$pkg" && { echo "purging $pkg left by an earlier run"; dpkg -P "$pkg" >/dev/null; }
done
manual=("$php_extdir/heratio_keys.so" "/etc/php/$php_version/mods-available/heratio_keys.ini")
mapfile -t -O "${#manual[@]}" manual < <(find "/etc/php/$php_version" -path '*/conf.d/*heratio_keys.ini' 2>/dev/null)
mapfile -t -O "${#manual[@]}" manual < <(find /var/lib/php/modules -name heratio_keys 2>/dev/null)
aside=()
for f in "${manual[@]}"; do [[ -e $f || -L $f ]] && aside+=("$f"); done
if ((${#aside[@]})); then
    tar -C / -cpf "$work/aside.tar" "${aside[@]#/}" && rm -f "${aside[@]}"
fi
had_account=0
getent passwd heratio-keys >/dev/null && had_account=1
www_in_group=0
id -nG www-data 2>/dev/null | tr ' ' '\n' | grep -qx heratio-keys && www_in_group=1
had_state=0
[[ -e /var/lib/heratio-keys ]] && had_state=1

cleanup() {
    # Whatever state a failed check left them in (installed, or config-files).
    for pkg in "${packages[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) == [a-z][a-z]* ]] &&
            [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg") != un* ]] && dpkg -P "$pkg" >/dev/null 2>&1
    done
    if ((!had_state)); then rm -rf /var/lib/heratio-keys; fi
    if ((!www_in_group)) && id -nG www-data 2>/dev/null | tr ' ' '\n' | grep -qx heratio-keys; then
        gpasswd -d www-data heratio-keys >/dev/null
    fi
    if ((!had_account)) && getent passwd heratio-keys >/dev/null; then
        deluser --system --quiet heratio-keys >/dev/null 2>&1
        getent group heratio-keys >/dev/null && delgroup --system --quiet heratio-keys >/dev/null 2>&1
    fi
    [[ -f $work/aside.tar ]] && tar -C / -xpf "$work/aside.tar"
    rm -rf "$work"
}
trap cleanup EXIT

# --- build ----------------------------------------------------------------------
echo "==> scripts/package-deb.sh --lintian"
started=$(date +%s)
if ! scripts/package-deb.sh --lintian "$@"; then
    echo "deb tests: package build or lintian failed"
    exit 1
fi
echo "    built and linted in $(($(date +%s) - started)) s"
debs=()
for pkg in "${packages[@]}"; do debs+=("$(ls "${CARGO_TARGET_DIR:-target}"/debian/"${pkg}"_*.deb)"); done

echo "==> dpkg -i"
t "dpkg -i ${packages[*]}" bash -c 'dpkg -i "$@" || apt-get install -f -y -qq' _ "${debs[@]}"
for pkg in "${packages[@]}"; do
    t "$pkg is installed" is_installed "$pkg"
done

echo "==> heratio-keys"
t "keygen --version is $upstream (/usr/bin/keygen)" \
    bash -c "[[ \$(command -v keygen) == /usr/bin/keygen && \$(keygen --version) == 'keygen $upstream' ]]"
# Minimal Debian images tell dpkg not to install man pages
# (path-exclude in dpkg.cfg.d); there the page is read from the package.
man_page=keygen
if grep -rqs '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
    dpkg-deb --fsys-tarfile "${debs[0]}" | tar -xO ./usr/share/man/man1/keygen.1.gz >"$work/keygen.1.gz"
    man_page="$work/keygen.1.gz"
    echo "  (dpkg excludes /usr/share/man here: keygen(1) checked from the package)"
else
    t "man -w keygen finds keygen(1)" bash -c '[[ $(man -w keygen) == /usr/share/man/man1/keygen.1.gz ]]'
fi
# Rendered by man-db itself, with groff warnings on: the page is valid roff
# and documents the commands and their flags.
t "man keygen renders the commands without groff warnings" bash -c '
    page=$(MANWIDTH=100 MAN_KEEP_STDERR=1 man --warnings=w -P cat "'"$man_page"'" 2>"'"$work"'/groff.err") &&
    [[ ! -s "'"$work"'/groff.err" ]] || { cat "'"$work"'/groff.err"; exit 1; }
    grep -q "api:generate" <<<"$page" && grep -q -- "--expires-in" <<<"$page" &&
    grep -q "Exit codes" <<<"$page"'
t "bash completion completes keygen's commands" bash -c '
    . /usr/share/bash-completion/completions/keygen &&
    COMP_WORDS=(keygen api:re) COMP_CWORD=1 COMP_LINE="keygen api:re" COMP_POINT=13 &&
    _keygen keygen api:re keygen && printf "%s\n" "${COMPREPLY[@]}" | grep -qx "api:revoke"'
t "zsh and fish completions installed" test -s /usr/share/zsh/vendor-completions/_keygen \
    -a -s /usr/share/fish/vendor_completions.d/keygen.fish
t "systemd-analyze verify the units" systemd-analyze verify \
    "$unitdir/heratio-keys.service" "$unitdir/heratio-keys-maintain.service" "$unitdir/heratio-keys-maintain.timer"
t "the service's hardening is in effect (systemd-analyze security: OK or better)" bash -c "
    out=\$(systemd-analyze security --offline=yes '$unitdir/heratio-keys.service' 2>&1) || { echo \"\$out\"; exit 1; }
    grep -E 'Overall exposure level.*(OK|SAFE)' <<<\"\$out\" || { echo \"\$out\" | tail -5; exit 1; }"
t "account heratio-keys (system, no login shell)" bash -c '
    ent=$(getent passwd heratio-keys) && uid=$(cut -d: -f3 <<<"$ent") && ((uid < 1000)) &&
    [[ $(cut -d: -f7 <<<"$ent") == /usr/sbin/nologin ]]'
t "/etc/heratio-keys/keygen.env is 0640 root:heratio-keys (a conffile)" bash -c '
    [[ $(stat -c "%a %U %G" /etc/heratio-keys/keygen.env) == "640 root heratio-keys" ]] &&
    dpkg-query -W -f="\${Conffiles}" heratio-keys | grep -q /etc/heratio-keys/keygen.env'
t "/var/lib/heratio-keys is 2770 heratio-keys:heratio-keys" bash -c '
    [[ $(stat -c "%a %U %G" /var/lib/heratio-keys) == "2770 heratio-keys heratio-keys" ]]'

echo "==> ${packages[3]}"
t "$php -m lists heratio_keys" bash -c "$php -m | grep -qx heratio_keys"
t "enabled for the cli SAPI with phpenmod (priority 20)" \
    test -L "/etc/php/$php_version/cli/conf.d/20-heratio_keys.ini"

# A store of our own, made by the installed keygen: a valid key, a revoked one.
dsn="sqlite:$work/keys.db"
kg() { keygen --dsn "$dsn" --json "$@" 2>>"$work/keygen.log"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
kg install >/dev/null && kg client:create --name deb --email deb@example.org >/dev/null
key=$(kg api:generate 1 --name production --scopes read | json "['key']")
revoked_out=$(kg api:generate 1 --name old)
revoked=$(json "['key']" <<<"$revoked_out")
kg api:revoke "$(json "['id']" <<<"$revoked_out")" >/dev/null
validate_php='$r = heratio_keys_validate_api_key($argv[1], ["read"]); echo $r->status, " ", $r->httpStatus, "\n";'
t "php validates a key made by the installed keygen (valid, revoked, forbidden)" bash -c "
    [[ \$($php -d heratio_keys.dsn='$dsn' -r '$validate_php' '$key') == 'valid 200' ]] &&
    [[ \$($php -d heratio_keys.dsn='$dsn' -r '$validate_php' '$revoked') == 'revoked 401' ]] &&
    [[ \$($php -d heratio_keys.dsn='$dsn' -r '\$r = heratio_keys_validate_api_key(\$argv[1], [\"admin\"]); echo \$r->status;' '$key') == forbidden ]]"

echo "==> libheratio-keys0, libheratio-keys-dev"
cat >"$work/validate.c" <<'C'
/* Validates the key on standard input against the DSN in argv[1]. */
#include <heratio_keys.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    char key[128];
    hk_validator *v = NULL;
    if (argc != 2 || !fgets(key, sizeof key, stdin)) return 2;
    key[strcspn(key, "\n")] = '\0';
    if (hk_validator_open(argv[1], &v) != 0) return 3;
    const char *scopes[] = {"read"};
    hk_credential cred;
    hk_status s = hk_validate(v, HK_KIND_API_KEY, key, strlen(key), scopes, 1, NULL, NULL, &cred);
    printf("%s %u %s\n", hk_status_name(s), (unsigned)hk_status_http(s), hk_version());
    hk_validator_free(v);
    return s == HK_STATUS_VALID ? 0 : 1;
}
C
# xargs trims: pkg-config ends its output with a space.
t "pkg-config --cflags --libs heratio_keys: -lheratio_keys, version $upstream" bash -c "
    [[ \$(pkg-config --modversion heratio_keys) == '$upstream' &&
       \$(pkg-config --cflags --libs heratio_keys | xargs) == '-lheratio_keys' ]]"
t "gcc -Wall -Wextra -Werror with pkg-config, no rpath" bash -c "
    gcc -std=c11 -Wall -Wextra -Werror \$(pkg-config --cflags heratio_keys) '$work/validate.c' \
        -o '$work/validate' \$(pkg-config --libs heratio_keys)"
# Debian 12 is merged-/usr: ldconfig lists /lib/…, the same directory.
t "it loads /usr/lib/$multiarch/libheratio_keys.so.0 (ldconfig ran)" bash -c "
    ldconfig -p | grep -Eq 'libheratio_keys.so.0 .*=> (/usr)?/lib/$multiarch/libheratio_keys.so.0' &&
    ldd '$work/validate' | grep -Eq '=> (/usr)?/lib/$multiarch/libheratio_keys.so.0'"
t "the C program validates the key, refuses the revoked one" bash -c "
    [[ \$(printf '%s\n' '$key' | '$work/validate' '$dsn') == 'valid 200 $upstream' ]] &&
    [[ \$(printf '%s\n' '$revoked' | '$work/validate' '$dsn') == 'revoked 401 $upstream' ]]"
t "static link with pkg-config --static and the packaged libheratio_keys.a" bash -c "
    gcc -std=c11 -Wall -Wextra -Werror \$(pkg-config --cflags heratio_keys) '$work/validate.c' \
        -o '$work/validate.static' -Wl,-Bstatic -lheratio_keys -Wl,-Bdynamic \
        \$(pkg-config --static --libs-only-l heratio_keys | sed 's/-lheratio_keys//') &&
    ! readelf -d '$work/validate.static' | grep -q 'NEEDED.*heratio_keys' &&
    [[ \$(printf '%s\n' '$key' | '$work/validate.static' '$dsn') == 'valid 200 $upstream' ]]"

# docs/install.md, "Install from the Debian packages", with SQLite: keygen
# as heratio-keys creates the database in the state directory, php-fpm's
# user (www-data, in group heratio-keys) validates and writes usage, then
# heratio-keys writes again after www-data's -wal and -shm files exist.
if ((!had_state)); then
    echo "==> the state directory shared with www-data (SQLite)"
    t "adduser www-data heratio-keys; keygen install as heratio-keys" bash -c '
        adduser --quiet www-data heratio-keys &&
        set -a && . /etc/heratio-keys/keygen.env && set +a &&
        runuser -u heratio-keys -- keygen install >/dev/null &&
        chmod 0660 /var/lib/heratio-keys/keys.db &&
        runuser -u heratio-keys -- keygen client:create --name AtoM --email atom@example.org >/dev/null'
    shared_key=$(set -a && . /etc/heratio-keys/keygen.env && set +a &&
        runuser -u heratio-keys -- keygen --json api:generate 1 --name production 2>/dev/null | json "['key']")
    t "www-data validates with the extension and records its use" bash -c "
        [[ \$(runuser -u www-data -- $php -d heratio_keys.dsn=sqlite:/var/lib/heratio-keys/keys.db \
            -r '\$r = heratio_keys_validate_api_key(\$argv[1]); echo \$r->status;' '$shared_key') == valid ]] &&
        set -a && . /etc/heratio-keys/keygen.env && set +a &&
        [[ \$(runuser -u heratio-keys -- keygen --json api:list 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0][\"usage_count\"])') == 1 ]]"
    t "heratio-keys still writes after www-data did (revoke)" bash -c '
        set -a && . /etc/heratio-keys/keygen.env && set +a &&
        runuser -u heratio-keys -- keygen api:revoke 1 >/dev/null &&
        ! find /var/lib/heratio-keys -type f ! -group heratio-keys | grep .'
fi

echo "==> remove, then purge"
t "dpkg -r" dpkg -r "${packages[@]}"
t "phpdismod ran: no conf.d link, $php -m without heratio_keys" bash -c "
    ! find /etc/php/$php_version -path '*/conf.d/*heratio_keys.ini' | grep . &&
    ! $php -m | grep -qx heratio_keys"
t "the installed files are gone, conffiles stay until purge" bash -c "
    for f in /usr/bin/keygen /usr/share/man/man1/keygen.1.gz $unitdir/heratio-keys.service \
        /usr/lib/$multiarch/libheratio_keys.so.0 /usr/include/heratio_keys.h '$php_extdir/heratio_keys.so' \
        /usr/share/bash-completion/completions/keygen; do [[ ! -e \$f ]] || { echo \"left: \$f\"; exit 1; }; done
    ! ldconfig -p | grep -q libheratio_keys &&
    [[ -f /etc/heratio-keys/keygen.env && -f /etc/php/$php_version/mods-available/heratio_keys.ini ]]"
t "dpkg -P" dpkg -P "${packages[@]}"
t "purge removed the conffiles and phpenmod's state" bash -c "
    [[ ! -e /etc/heratio-keys && ! -e /etc/php/$php_version/mods-available/heratio_keys.ini ]] &&
    ! find /var/lib/php/modules -name heratio_keys | grep . &&
    for p in ${packages[*]}; do ! dpkg-query -W -f='\${Status}' \$p 2>/dev/null | grep -q installed || exit 1; done"
if ((!had_state)); then
    t "purge kept the account and the database (data, not package files)" bash -c '
        getent passwd heratio-keys >/dev/null && [[ -f /var/lib/heratio-keys/keys.db ]]'
fi

echo
echo "deb tests: $passed passed, $failed failed"
((failed == 0))
