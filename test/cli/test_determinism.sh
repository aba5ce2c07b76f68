#!/usr/bin/env bash
# Determinism: the same inputs and flags give a byte-identical quantized model and parameters
# file across two runs and whatever the thread counts (OPENBLAS_NUM_THREADS for sgemm,
# QC_THREADS for qcal's own kernel threads: 1 and 2 each), and `calibrate run` gives
# byte-identical float outputs across thread counts. On the nudenet integration model when
# models/cache has it (tools/fetch_models.sh, tools/make_inputs.py), else on the fixture.
# Calibration runs QC_THREADS samples side by side and merges the shards' observers, so the
# thread counts also change which samples each observer sees: every method must still give
# the same bytes (ema through the replay of qc_ema_log.h). Per-channel. percentile and ema
# (the histogram and the EMA replay) at every thread setting; entropy, minmax and mse, which
# read the same histogram or the min/max percentile's pass also merges, at the one that changes
# everything (1 sgemm thread, 3 shards). Under QC_ASAN percentile and ema only, one thread
# setting, 2 samples, compare at QC_THREADS=2 only. `calibrate compare`'s --json
# report (timings removed) is the same at QC_THREADS 1, 2 and 3: its calibration pass runs
# side by side too.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"

MODEL=$(awk '$1 == "model" && $2 == "nudenet" { print "models/cache/" $9 }' \
        models/manifest.txt 2>/dev/null)
DATA=models/cache/data/nudenet/calib
LIMIT=8
METHODS="percentile entropy minmax mse ema"
VARIANTS=("again 2 2" "blas1_qc1 1 1" "blas1_qc2 1 2" "blas2_qc1 2 1" "blas1_qc3 1 3")
FULL_METHODS="percentile ema"       # every variant; the other methods only the last one
CMP_ARGS=()
CMP_THREADS="1 2 3"
if [ "${QC_ASAN:-0}" = 1 ]; then          # sanitizers make each run ~20x slower
    LIMIT=2
    METHODS="percentile ema"
    VARIANTS=("blas1_qc1 1 1")
    CMP_ARGS=(--methods ema,minmax --auto no)
    CMP_THREADS="2"                     # the threaded pass under the sanitizers
fi
if [ -z "$MODEL" ] || [ ! -f "$MODEL" ] || [ ! -d "$DATA" ]; then
    echo "note: nudenet not in models/cache: using the generated fixture model"
    MODEL=$FX/conv.onnx
    DATA=$FX/data_ok
fi
D=$CLI_TMP/det
mkdir -p "$D"

# quantize TAG BLAS_THREADS QC_THREADS METHOD: writes $D/TAG.onnx and $D/TAG.json
quantize() {
    local rc=0
    OPENBLAS_NUM_THREADS=$2 QC_THREADS=$3 "$CAL" --data "$DATA" "$MODEL" -o "$D/$1.onnx" \
        --params-out "$D/$1.json" --limit "$LIMIT" --method "$4" --per-channel -q \
        >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
    [ "$rc" = 0 ] || echo "exit $rc: $(head -c 300 "$CLI_TMP/err")"
}

for method in $METHODS; do
    err=$(quantize "$method-a" 2 2 "$method")
    if [ -n "$err" ]; then
        cli_fail "quantize_${method}_deterministic" "$err"
        continue
    fi
    variants=("${VARIANTS[@]}")
    [[ " $FULL_METHODS " == *" $method "* ]] || variants=("${VARIANTS[-1]}")
    for variant in "${variants[@]}"; do
        read -r tag blas qc <<<"$variant"
        name=quantize_${method}_$tag
        err=$(quantize "$method-$tag" "$blas" "$qc" "$method")
        if [ -n "$err" ]; then
            cli_fail "$name" "$err"
        elif ! cmp -s "$D/$method-a.onnx" "$D/$method-$tag.onnx"; then
            cli_fail "$name" "model differs from the first run (OPENBLAS_NUM_THREADS=$blas" \
                "QC_THREADS=$qc): $(cmp "$D/$method-a.onnx" "$D/$method-$tag.onnx" | head -1)"
        elif ! cmp -s "$D/$method-a.json" "$D/$method-$tag.json"; then
            cli_fail "$name" "parameters differ: $(diff "$D/$method-a.json" \
                "$D/$method-$tag.json" | head -3 | tr '\n' ' ')"
        else
            cli_ok "$name"
        fi
    done
done

# compare's report at several QC_THREADS (the timings taken out)
cmp_ref=""
for qc in $CMP_THREADS; do
    rc=0
    OPENBLAS_NUM_THREADS=2 QC_THREADS=$qc "$CAL" compare --data "$DATA" --limit "$LIMIT" \
        --eval "$DATA" --eval-limit 2 "${CMP_ARGS[@]}" "$MODEL" --json "$D/cmp$qc.json" -q \
        >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
    if [ "$rc" != 0 ]; then
        cli_fail "compare_json_qc$qc" "exit $rc: $(head -c 300 "$CLI_TMP/err")"
        continue
    fi
    "$PY" - "$D/cmp$qc.json" "$D/cmp$qc.txt" <<'PYEOF'
import json, sys
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if not k.endswith("seconds")}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o
with open(sys.argv[2], "w") as f:
    json.dump(strip(json.load(open(sys.argv[1]))), f, indent=1, sort_keys=True)
PYEOF
    if [ -z "$cmp_ref" ]; then
        cmp_ref=$D/cmp$qc.txt
        if grep -q '"float_passes": '"$LIMIT" "$cmp_ref"; then
            cli_ok "compare_json_qc$qc: $LIMIT float passes"
        else
            cli_fail "compare_json_qc$qc" "expected $LIMIT float passes: $(grep float_passes \
                "$cmp_ref" | head -1)"
        fi
    elif cmp -s "$cmp_ref" "$D/cmp$qc.txt"; then
        cli_ok "compare_json_qc$qc"
    else
        cli_fail "compare_json_qc$qc" "report differs from QC_THREADS=1: $(diff "$cmp_ref" \
            "$D/cmp$qc.txt" | head -4 | tr '\n' ' ')"
    fi
done

# The float executor's outputs: QC_THREADS / OPENBLAS_NUM_THREADS 1 against 2.
rc1=0 rc2=0
OPENBLAS_NUM_THREADS=1 QC_THREADS=1 "$CAL" run "$MODEL" --data "$DATA" -o "$D/run1" \
    --limit "$LIMIT" -q >/dev/null 2>"$CLI_TMP/err" </dev/null || rc1=$?
OPENBLAS_NUM_THREADS=2 QC_THREADS=2 "$CAL" run "$MODEL" --data "$DATA" -o "$D/run2" \
    --limit "$LIMIT" -q >/dev/null 2>>"$CLI_TMP/err" </dev/null || rc2=$?
if [ "$rc1" != 0 ] || [ "$rc2" != 0 ]; then
    cli_fail run_threads_identical "exit $rc1/$rc2: $(head -c 300 "$CLI_TMP/err")"
else
    diffs=$(cd "$D/run1" && find . -name '*.npy' | sort | while read -r f; do
                cmp -s "$f" "../run2/$f" || echo "$f"; done)
    n=$(find "$D/run1" -name '*.npy' | wc -l)
    if [ "$n" -gt 0 ] && [ -z "$diffs" ]; then
        cli_ok "run_threads_identical: $n outputs"
    else
        cli_fail run_threads_identical "$n outputs, differing: $(echo "$diffs" | head -3 |
            tr '\n' ' ')"
    fi
fi

cli_done cli-determinism
