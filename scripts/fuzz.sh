#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (libFuzzer, AddressSanitizer, debug
# assertions and overflow checks on) for SECONDS each, and fails if any finds
# a crash, printing the input that crashes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGETs default to every target
# (`cargo fuzz list`). Each target's corpus is fuzz/corpus/<target> (kept
# between runs, not committed); the committed seeds fuzz/seeds/<target> are
# read too. Crashes go to fuzz/artifacts/<target>/.
#
# Needs the nightly toolchain (`rustup toolchain list`) and cargo-fuzz, which
# this script installs if missing: `cargo install cargo-fuzz --locked`
# (about 65 s on 2 cores; no prebuilt binary can be fetched here, as
# cargo-binstall downloads from GitHub releases). The first build of the
# fuzz crate takes a few minutes: fuzz/target is its own (cargo-fuzz builds
# with sanitizer flags, so it cannot share the workspace's target/).
#
# Environment:
#   HK_FUZZ_TIMEOUT=S   one input running longer than S seconds is a failure
#                       (default 10)
#   HK_FUZZ_ARGS="..."  extra libFuzzer options (e.g. "-jobs=2 -workers=2")
#
# Prints `fuzz: N passed, M failed` last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || {
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
}
shift $(($# > 0 ? 1 : 0))

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: the nightly toolchain is not installed (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --version '^0.13' --locked || exit 2
fi

cd fuzz
if (($# == 0)); then
    mapfile -t targets < <(cargo +nightly fuzz list)
else
    targets=("$@")
fi

echo "==> building the fuzz targets (cargo +nightly fuzz build)"
if ! cargo +nightly fuzz build; then
    echo "fuzz: 0 passed, ${#targets[@]} failed"
    exit 1
fi

passed=0
failed=0
crashes=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    before=$(find "artifacts/$t" -type f | sort)
    log=$(mktemp "${TMPDIR:-/tmp}/hk-fuzz-$t.XXXXXX")
    echo "==> $t: ${seconds}s"
    # shellcheck disable=SC2086 # HK_FUZZ_ARGS is a list of options
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout="${HK_FUZZ_TIMEOUT:-10}" \
        -print_final_stats=1 ${HK_FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    new=$(comm -13 <(echo "$before") <(find "artifacts/$t" -type f | sort) | sed '/^$/d')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if ((rc == 0)) && [[ -z $new ]]; then
        passed=$((passed + 1))
        echo "  ok    $t: ${runs:-?} runs, corpus $(find "corpus/$t" -type f | wc -l) files"
    else
        failed=$((failed + 1))
        echo "  FAIL  $t (exit $rc)"
        grep -E -A12 '^(==[0-9]+==ERROR|thread .* panicked|.*deadly signal|.*ERROR: libFuzzer)' "$log" | head -40 | sed 's/^/        | /'
        for f in $new; do
            crashes+=("$root/fuzz/$f")
            echo "        crashing input: $root/fuzz/$f"
            echo "        reproduce:      (cd fuzz && cargo +nightly fuzz run $t $f)"
            echo "        minimise:       (cd fuzz && cargo +nightly fuzz tmin $t $f)"
        done
        [[ -z $new ]] && tail -20 "$log" | sed 's/^/        | /'
    fi
    rm -f "$log"
done

echo
for c in "${crashes[@]}"; do echo "crash: $c"; done
echo "fuzz: $passed passed, $failed failed"
((failed == 0))
