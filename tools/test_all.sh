#!/usr/bin/env bash
# `make test`: every suite twice, on the optimized build (build/) and under AddressSanitizer +
# UndefinedBehaviorSanitizer + LeakSanitizer (build-asan/), then every libFuzzer target for
# QC_FUZZ_SECONDS (tools/fuzz.sh). Closing line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
total_p=0 total_f=0 status=0
# The two variants run side by side (one alone leaves a core idle a third of the time: Python
# oracles, process start-ups, single-threaded tools); the release output streams, the
# sanitized one is shown when it ends. The integration models and their samples are made first,
# once, so that the two never write them at the same time (a failure is left for the suites
# to report).
PY=${VENV:-.venv}/bin/python
# shellcheck source=tools/shared.sh
source tools/shared.sh
prep=$(mktemp -d)
models_ready "$prep" "${QC_QUANT_CALIB:-32}" "${QC_QUANT_EVAL:-32}" >/dev/null
rm -rf "$prep"
asan_log=$(mktemp)
QC_BUILD_DIR=build-asan QC_ASAN=1 tools/run_tests.sh "$@" >"$asan_log" 2>&1 &
asan_pid=$!
# tally VARIANT LOG: adds the variant's closing line to the totals
tally() {
    local line
    line=$(tail -1 "$2")
    if [[ "$line" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        echo "$1: $line"
        total_p=$((total_p + BASH_REMATCH[1]))
        total_f=$((total_f + BASH_REMATCH[2]))
    else
        echo "$1: FAIL: test run ended without a summary"
        total_f=$((total_f + 1))
        status=1
    fi
}
log=$(mktemp)
tools/run_tests.sh "$@" 2>&1 | tee "$log" | sed '$d'
[ "${PIPESTATUS[0]}" = 0 ] || status=1
tally release "$log"
wait "$asan_pid" || status=1
echo "== sanitized (build-asan, QC_ASAN=1)"
sed '$d' "$asan_log"
tally asan "$asan_log"
rm -f "$log" "$asan_log"
# Every fuzz target for QC_FUZZ_SECONDS (default 5: a smoke run that keeps the whole of
# `make test` well under 15 minutes on a 2-core machine; 0 skips), two at a time. The crashes
# found so far are replayed by test/cli/test_fuzz_regressions.sh; real fuzzing: make fuzz.
fuzz_s=${QC_FUZZ_SECONDS:-5}
if [ "$fuzz_s" != 0 ] && [ $# = 0 ]; then
    log=$(mktemp)
    FUZZ_SECONDS=$fuzz_s FUZZ_JOBS=${FUZZ_JOBS:-2} tools/fuzz.sh 2>&1 | tee "$log" | sed '$d'
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    line=$(tail -1 "$log")
    rm -f "$log"
    if [[ "$line" =~ ^fuzz:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        echo "$line"
        total_p=$((total_p + BASH_REMATCH[1]))
        total_f=$((total_f + BASH_REMATCH[2]))
    else
        echo "fuzz: FAIL: fuzzing ended without a summary"
        total_f=$((total_f + 1))
        status=1
    fi
fi
echo "$total_p passed, $total_f failed"
[ "$status" = 0 ] && [ "$total_f" = 0 ]
