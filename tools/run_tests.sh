#!/usr/bin/env bash
# Runs every test suite in order: unit tests, ONNX backend conformance, integration (real
# models against onnxruntime, save round trip), quantization (quantized models checked in
# onnxruntime, fidelity, executor agreement) and the CLI error tests. Each suite prints its
# own "<suite>: N passed, N failed"; the last line is the sum, "N passed, N failed", and the
# exit status is non-zero if anything failed.
#
#   tools/run_tests.sh [SUITE...]        (unit backend integration quant cli; default: all)
#
# Environment: QC_BUILD_DIR (binaries, default build), VENV (default .venv), QC_ASAN=1 (set
# sanitizer options; fewer integration samples), QC_TEST_SAMPLES (integration samples per
# model, default 16, 4 under QC_ASAN), QC_QUANT_CALIB / QC_QUANT_EVAL (quant suite calibration
# and held-out samples, default 32 / 32). Full logs go to $QC_BUILD_DIR/test-logs/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BUILD=${QC_BUILD_DIR:-build}
export QC_BUILD_DIR=$BUILD
export VENV=${VENV:-.venv}
PY=$VENV/bin/python
# shellcheck source=tools/shared.sh
source tools/shared.sh
CAL=$BUILD/calibrate
LOGS=$BUILD/test-logs
# One OpenBLAS kernel choice for the whole run, the one calibrate makes for this CPU
# (tools/blas_core.c, `calibrate --version`): the hundreds of calibrate runs below then do not
# each execute twice (50 ms more a run under ASan), and the unit tests use the same kernels.
# test/cli/test_run_errors.sh checks the choice itself without the variable.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -x "$CAL" ]; then
    core=$("$CAL" --version 2>/dev/null | sed -n 's/^OpenBLAS kernels: \([^ ]*\).*/\1/p')
    [ -n "$core" ] && export OPENBLAS_CORETYPE=$core
fi
# calibrate runs OpenBLAS on one thread and executes itself again when it loaded with more
# (tools/blas_core.c); 1 here spares the suite's runs that (test_determinism.sh and
# test_run_errors.sh still run it with 2)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
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

# Quantization (test/oracles/quant_check.py) on each integration model:
#  - matrix: every method x per-tensor/per-channel weights x asymmetric/symmetric activations,
#    calibrated on a few samples: the model passes onnx.checker (full), is quantized the way
#    the options say, runs in onnxruntime with finite outputs; the five methods differ.
#    Under QC_ASAN a reduced matrix: each method once, both settings of each flag covered,
#    on nudenet and magika (the methods' code is the same for every model; ddddocr takes 7.5 s
#    a calibration under the sanitizers and keeps its percentile model and exec_match).
#  - fidelity (not under QC_ASAN): percentile, per-channel, default flags (bias correction on),
#    the whole calibration set; on held-out eval samples SQNR >= 20 dB against the float model
#    and task agreement >= 95% (both in onnxruntime).
#  - exec_match: `calibrate run --emulate-ort` on that quantized model within one quantization
#    step of onnxruntime running it (0 steps measured on the three models; where they first
#    differ is printed on failure).
#  - tidy: no dead nodes in it.
# Environment: QC_QUANT_CALIB (calibration samples, default 32), QC_QUANT_EVAL (eval samples,
# default 32; exec_match uses 8 outside `make acceptance`, 4 under QC_ASAN).
quant_suite() {
    local passed=0 failed=0
    ok() { echo "ok   $1"; passed=$((passed + 1)); }
    bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
    # tally NAME command...: runs a quant_check.py command (oracle_tally), counts its lines
    tally() {
        local name=$1
        shift
        oracle_tally "$@"
        passed=$((passed + TALLY_OK))
        failed=$((failed + TALLY_FAIL))
        [ -z "$TALLY_WHY" ] || bad "$name" "$TALLY_WHY"
    }
    local n_calib=${QC_QUANT_CALIB:-32} n_eval=${QC_QUANT_EVAL:-32} why
    local qc="$PY test/oracles/quant_check.py"
    if ! why=$(models_ready "$TMP" "$n_calib" "$n_eval"); then
        bad "${why%%: *}" "${why#*: }"
        echo "quant: $passed passed, $failed failed"
        return 1
    fi
    local combos m_limit x_eval=$n_eval
    [ "${QC_ACCEPTANCE:-0}" = 1 ] || x_eval=8
    if [ "${QC_ASAN:-0}" = 1 ]; then
        combos="minmax:pt:asym ema:pc:sym percentile:pc:asym mse:pt:sym entropy:pc:asym"
        m_limit=2
        x_eval=4
        echo "quant: QC_ASAN: reduced matrix (each method once, 5 of 20 combinations, --limit" \
             "$m_limit); exec_match on $x_eval eval samples"
    else
        combos=""
        local meth w a
        for meth in minmax ema percentile mse entropy; do
            for w in pt pc; do
                for a in asym sym; do combos="$combos $meth:$w:$a"; done
            done
        done
        m_limit=4
        echo "quant: full matrix (5 methods x 2 weight x 2 activation modes, --limit $m_limit," \
             "2 eval samples); fidelity on $n_calib calib / $n_eval eval samples"
    fi
    local m path d calib eval c meth w a q specs args
    for m in $MODELS; do
        path=$(model_path "$m")
        calib=models/cache/data/$m/calib
        eval=models/cache/data/$m/eval
        d=$TMP/quant/$m
        mkdir -p "$d"
        specs=()
        local mc=$combos
        [ "${QC_ASAN:-0}" = 1 ] && [ "$m" = ddddocr ] && mc=""
        for c in $mc; do
            IFS=: read -r meth w a <<<"$c"
            q=$d/$meth-$w-$a.onnx
            args=(--method "$meth")
            [ "$w" = pc ] && args+=(--per-channel)
            [ "$a" = sym ] && args+=(--symmetric-activations)
            if "$CAL" --data "$calib" "$path" -o "$q" --limit "$m_limit" -q "${args[@]}" \
                    >"$d/cal.log" 2>&1; then
                specs+=("$q@$w,$a")
            else
                bad "calibrate_${m}_$meth-$w-$a" "$(tail -1 "$d/cal.log")"
            fi
        done
        [ ${#specs[@]} -gt 0 ] && tally "check_$m" $qc check --data "$eval" --limit 2 \
            --float "$path" "${specs[@]}"
        if [ "${QC_ASAN:-0}" != 1 ]; then
            for w in pt pc; do
                for a in asym sym; do
                    tally "distinct_${m}_$w-$a" $qc distinct "${m}_$w-$a" \
                        "$d"/{minmax,ema,percentile,mse,entropy}-$w-$a.onnx
                done
            done
        fi
        # Fidelity (the calibrate issue's accuracy criterion, default flags: bias correction
        # on) on the whole calibration set, and executor agreement: `calibrate run
        # --emulate-ort` on that percentile per-channel model within one quantization step of
        # onnxruntime running it. Under QC_ASAN (each run ~20x slower) the model is calibrated
        # on $m_limit samples and only executor agreement is checked.
        q=$d/$m.percentile-pc.onnx
        local lim=$n_calib
        [ "${QC_ASAN:-0}" = 1 ] && lim=$m_limit
        if ! "$CAL" --data "$calib" "$path" -o "$q" --limit "$lim" --method percentile \
                --per-channel -q >"$d/cal.log" 2>&1; then
            bad "calibrate_${m}_percentile-pc" "$(tail -1 "$d/cal.log")"
            continue
        fi
        if [ "${QC_ASAN:-0}" != 1 ]; then
            tally "fidelity_$m" $qc fidelity "$m" "$path" "$q" --data "$eval" --limit "$n_eval"
        fi
        if ! "$CAL" run "$q" --data "$eval" -o "$d/qc" --limit "$x_eval" -q --emulate-ort \
                >"$d/run.log" 2>&1; then
            bad "exec_match_$m" "calibrate run: $(tail -1 "$d/run.log")"
        else
            tally "exec_match_$m" $qc exec-match "$q" --name "$m" --data "$eval" \
                --got "$d/qc" --limit "$x_eval" --cal "$CAL" --work "$d/diverge" \
                --emulate-ort --max-steps 1
        fi
        tally "tidy_$m" $qc tidy "$q" --name "$m"
    done
    echo "quant: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}

cli_suites() {
    local s
    for s in test/cli/test_*.sh; do
        run_suite "cli-$(basename "$s" .sh | sed 's/^test_//')" '' bash "$s"
    done
}

SUITES=${*:-unit backend integration quant cli}
for s in $SUITES; do
    case $s in
        unit)        run_suite unit '^ok ' "$BUILD/test_runner" ;;
        backend)     run_suite backend '' "$BUILD/backend_test" ;;
        integration) run_suite integration '' integration_suite ;;
        quant)       run_suite quant '' quant_suite ;;
        cli)         cli_suites ;;
        *)           echo "run_tests: unknown suite '$s'" >&2; exit 2 ;;
    esac
done
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" = 0 ]
