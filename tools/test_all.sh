#!/usr/bin/env bash
# `make test`: every suite twice, on the optimized build (build/) and under AddressSanitizer +
# UndefinedBehaviorSanitizer + LeakSanitizer (build-asan/), and every libFuzzer target for
# QC_FUZZ_SECONDS (tools/fuzz.sh). Closing line: "N passed, N failed".
#
# The three run side by side: one alone leaves a core idle a good part of the time (Python
# oracles, process start-ups, single-threaded tools, the fuzz build's compiler). The release
# output streams; the sanitized run's and the fuzzing's are shown when they end. The
# integration models and their samples are made first, once, so that two runs never write
# them at the same time (a failure there is left for the suites to report).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
total_p=0 total_f=0 status=0
PY=${VENV:-.venv}/bin/python
# shellcheck source=tools/shared.sh
source tools/shared.sh
prep=$(mktemp -d)
models_ready "$prep" "${QC_QUANT_CALIB:-32}" "${QC_QUANT_EVAL:-32}" >/dev/null
rm -rf "$prep"

# tally NAME LOG PREFIX: adds LOG's closing line ("[PREFIX]N passed, N failed") to the totals
tally() {
    local line
    line=$(tail -1 "$2")
    if [[ "$line" =~ ^$3([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        echo "$1: ${line#"$3"}"
        total_p=$((total_p + BASH_REMATCH[1]))
        total_f=$((total_f + BASH_REMATCH[2]))
    else
        echo "$1: FAIL: the run ended without a summary"
        total_f=$((total_f + 1))
        status=1
    fi
}

asan_log=$(mktemp) fuzz_log=$(mktemp) log=$(mktemp)
trap 'rm -f "$asan_log" "$fuzz_log" "$log"' EXIT
# the background runs in sessions of their own, so that an interrupted `make test` stops
# them with everything they started
asan_pid= fuzz_pid= rel_pid=
trap 'kill -TERM -- ${asan_pid:+"-$asan_pid"} ${fuzz_pid:+"-$fuzz_pid"} ${rel_pid:+"-$rel_pid"} \
      2>/dev/null
      exit 130' INT TERM
QC_BUILD_DIR=build-asan QC_ASAN=1 setsid tools/run_tests.sh "$@" >"$asan_log" 2>&1 &
asan_pid=$!
# Every fuzz target for QC_FUZZ_SECONDS (default 5: a smoke run; 0 skips), two at a time. The
# crashes found so far are replayed by test/cli/test_fuzz_regressions.sh; real fuzzing:
# make fuzz. Not when only some suites were asked for.
fuzz_s=${QC_FUZZ_SECONDS:-5}
if [ "$fuzz_s" != 0 ] && [ $# = 0 ]; then
    FUZZ_SECONDS=$fuzz_s FUZZ_JOBS=${FUZZ_JOBS:-2} setsid tools/fuzz.sh >"$fuzz_log" 2>&1 &
    fuzz_pid=$!
fi

# in the background too, waited for: bash runs a trap only once the foreground job is done
setsid bash -c 'tools/run_tests.sh "$@" 2>&1 | tee "$0" | sed "\$d"; exit "${PIPESTATUS[0]}"' \
    "$log" "$@" &
rel_pid=$!
wait "$rel_pid" || status=1
tally release "$log" ""
wait "$asan_pid" || status=1
echo "== sanitized (build-asan, QC_ASAN=1)"
sed '$d' "$asan_log"
tally asan "$asan_log" ""
if [ -n "$fuzz_pid" ]; then
    wait "$fuzz_pid" || status=1
    echo "== fuzz"
    sed '$d' "$fuzz_log"
    tally fuzz "$fuzz_log" "fuzz: "
fi
echo "$total_p passed, $total_f failed"
[ "$status" = 0 ] && [ "$total_f" = 0 ]
