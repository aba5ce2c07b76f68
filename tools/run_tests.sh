#!/usr/bin/env bash
# Runs every test suite in order: unit tests, ONNX backend conformance, integration (real
# models against onnxruntime, save round trip) and the CLI error tests. Each suite prints its
# own "<suite>: N passed, N failed"; the last line is the sum, "N passed, N failed", and the
# exit status is non-zero if anything failed.
#
#   tools/run_tests.sh [SUITE...]        (unit backend integration cli; default: all)
#
# Environment: QC_BUILD_DIR (binaries, default build), VENV (default .venv), QC_ASAN=1 (set
# sanitizer options; fewer integration samples), QC_TEST_SAMPLES (integration samples per
# model, default 16, 4 under QC_ASAN). Full logs go to $QC_BUILD_DIR/test-logs/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BUILD=${QC_BUILD_DIR:-build}
export QC_BUILD_DIR=$BUILD
export VENV=${VENV:-.venv}
PY=$VENV/bin/python
CAL=$BUILD/calibrate
LOGS=$BUILD/test-logs
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
if [ "${QC_ASAN:-0}" = 1 ]; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    SAMPLES=${QC_TEST_SAMPLES:-4}
else
    SAMPLES=${QC_TEST_SAMPLES:-16}
fi
MODELS="nudenet magika ddddocr"
mkdir -p "$LOGS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qc-tests.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

TOTAL_PASSED=0
TOTAL_FAILED=0

# run_suite NAME FILTER command...: runs the command with its output in $LOGS/NAME.log, shows
# the lines that FILTER (an extended regex) does not drop, and adds its closing counts.
run_suite() {
    local name=$1 drop=$2
    shift 2
    local log=$LOGS/$name.log rc=0 t0=$SECONDS
    echo "== $name"
    "$@" >"$log" 2>&1 || rc=$?
    if [ -n "$drop" ]; then grep -Ev "$drop" "$log"; else cat "$log"; fi
    local line p f
    line=$(grep -E '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "$name: FAIL: no summary line (exit status $rc; see $log)"
        p=0 f=1
    else
        p=$(echo "$line" | sed -E 's/^([A-Za-z0-9_-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
        f=$(echo "$line" | sed -E 's/^([A-Za-z0-9_-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
            echo "$name: FAIL: exit status $rc with no failure counted (see $log)"
            f=1
        fi
    fi
    echo "   ($((SECONDS - t0)) s)"
    TOTAL_PASSED=$((TOTAL_PASSED + p))
    TOTAL_FAILED=$((TOTAL_FAILED + f))
}

model_path() {
    awk -v n="$1" '$1 == "model" && $2 == n { print "models/cache/" $9 }' models/manifest.txt
}

# Integration: each real model through `calibrate run` against onnxruntime, run-to-run
# determinism, and the load/save round trip.
integration_suite() {
    local passed=0 failed=0
    ok() { echo "ok   $1"; passed=$((passed + 1)); }
    bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
    if ! tools/fetch_models.sh >"$TMP/fetch.log" 2>&1; then
        bad fetch_models "$(tail -1 "$TMP/fetch.log")"
        echo "integration: $passed passed, $failed failed"
        return 1
    fi
    if ! "$PY" tools/make_inputs.py --min --eval "$SAMPLES" >"$TMP/inputs.log" 2>&1; then
        bad make_inputs "$(tail -1 "$TMP/inputs.log")"
        echo "integration: $passed passed, $failed failed"
        return 1
    fi
    local m path data d v
    for m in $MODELS; do
        path=$(model_path "$m")
        data=models/cache/data/$m/eval
        d=$TMP/$m
        mkdir -p "$d"
        if ! "$CAL" run "$path" --data "$data" -o "$d/qc" --limit "$SAMPLES" -q \
                >"$d/run.log" 2>&1; then
            bad "run_$m" "$(tail -1 "$d/run.log")"
        elif ! "$PY" test/oracles/ort_run.py "$path" --data "$data" --out "$d/ort" \
                --limit "$SAMPLES" >"$d/ort.log" 2>&1; then
            bad "run_$m" "onnxruntime: $(tail -1 "$d/ort.log")"
        elif v=$("$PY" test/oracles/compare.py "$d/qc" "$d/ort" --name "$m" 2>&1); then
            ok "match_ort_$m: $v"
        else
            bad "match_ort_$m" "$v"
        fi
        if [ -d "$d/qc" ]; then
            if ! "$CAL" run "$path" --data "$data" -o "$d/qc2" --limit 2 -q >"$d/run2.log" 2>&1
            then
                bad "deterministic_$m" "$(tail -1 "$d/run2.log")"
            elif v=$(cd "$d/qc2" && find . -name '*.npy' | sort | while read -r f; do
                         cmp -s "$f" "../qc/$f" || echo "$f"; done) && [ -z "$v" ]; then
                ok "deterministic_$m"
            else
                bad "deterministic_$m" "second run differs: $(echo "$v" | head -2 | tr '\n' ' ')"
            fi
        fi
        if ! "$CAL" save "$path" -o "$d/saved.onnx" >"$d/save.log" 2>&1; then
            bad "roundtrip_$m" "calibrate save: $(tail -1 "$d/save.log")"
        elif v=$("$PY" test/oracles/roundtrip.py "$path" "$d/saved.onnx" --data "$data" \
                     --limit 4 2>&1); then
            ok "roundtrip_$m: $v"
        else
            bad "roundtrip_$m" "$(echo "$v" | tail -1)"
        fi
    done
    echo "integration: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}

cli_suites() {
    local s
    for s in test/cli/test_*.sh; do
        run_suite "cli-$(basename "$s" .sh | sed 's/^test_//')" '' bash "$s"
    done
}

SUITES=${*:-unit backend integration cli}
for s in $SUITES; do
    case $s in
        unit)        run_suite unit '^ok ' "$BUILD/test_runner" ;;
        backend)     run_suite backend '' "$BUILD/backend_test" ;;
        integration) run_suite integration '' integration_suite ;;
        cli)         cli_suites ;;
        *)           echo "run_tests: unknown suite '$s'" >&2; exit 2 ;;
    esac
done
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" = 0 ]
