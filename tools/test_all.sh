#!/usr/bin/env bash
# `make test`: every suite twice, on the optimized build (build/) and under AddressSanitizer +
# UndefinedBehaviorSanitizer + LeakSanitizer (build-asan/), then every libFuzzer target for
# QC_FUZZ_SECONDS (tools/fuzz.sh). Closing line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
total_p=0 total_f=0 status=0
for variant in release asan; do
    log=$(mktemp)
    if [ "$variant" = asan ]; then
        QC_BUILD_DIR=build-asan QC_ASAN=1 tools/run_tests.sh "$@" 2>&1 | tee "$log" | sed '$d'
    else
        tools/run_tests.sh "$@" 2>&1 | tee "$log" | sed '$d'
    fi
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    line=$(tail -1 "$log")
    rm -f "$log"
    if [[ "$line" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        echo "$variant: $line"
        total_p=$((total_p + BASH_REMATCH[1]))
        total_f=$((total_f + BASH_REMATCH[2]))
    else
        echo "$variant: FAIL: test run ended without a summary"
        total_f=$((total_f + 1))
        status=1
    fi
done
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
