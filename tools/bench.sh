#!/usr/bin/env bash
# Float latency of qcal's executor against onnxruntime on the integration models: same input
# samples, 2 threads each, one warm-up then the median of RUNS runs per sample.
#
#   tools/bench.sh [MODEL...]            (default: nudenet magika ddddocr)
#
# Environment: QC_BUILD_DIR (default build), VENV (default .venv), QC_BENCH_RUNS (default 10),
# QC_BENCH_SAMPLES (samples per model, default 4), QC_BENCH_MAX_RATIO (if set, exit 1 when a
# model's qcal/onnxruntime ratio is above it).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${QC_BUILD_DIR:-build}
VENV=${VENV:-.venv}
PY=$VENV/bin/python
CAL=$BUILD/calibrate
RUNS=${QC_BENCH_RUNS:-10}
SAMPLES=${QC_BENCH_SAMPLES:-4}
MODELS=${*:-nudenet magika ddddocr}
export OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 QC_THREADS=2

tools/fetch_models.sh >/dev/null
"$PY" tools/make_inputs.py --min --eval "$SAMPLES" >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qc-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# "... median 12.34 ms/sample ..." -> 12.34
ms_of() { grep -oE 'median [0-9]+(\.[0-9]+)? ?ms' | head -1 | grep -oE '[0-9]+(\.[0-9]+)?'; }

printf '%-10s %12s %12s %8s\n' model "qcal ms" "ort ms" ratio
worst=0
status=0
for m in $MODELS; do
    path=$(awk -v n="$m" '$1 == "model" && $2 == n { print "models/cache/" $9 }' \
               models/manifest.txt)
    if [ -z "$path" ]; then
        echo "bench: unknown model '$m'" >&2
        exit 2
    fi
    # the same first SAMPLES eval samples for both sides
    data=$TMP/$m
    mkdir -p "$data"
    for f in $(ls "models/cache/data/$m/eval" | head -n "$SAMPLES"); do
        ln -s "$PWD/models/cache/data/$m/eval/$f" "$data/$f"
    done
    if ! out=$("$CAL" bench "$path" --data "$data" --runs "$RUNS" 2>&1); then
        printf '%-10s %s\n' "$m" "calibrate bench failed: $(echo "$out" | tail -1)"
        status=1
        continue
    fi
    ours=$(echo "$out" | ms_of || true)
    ort=$("$PY" test/oracles/ort_run.py "$path" --data "$data" --bench "$RUNS" | ms_of)
    if [ -z "$ours" ] || [ -z "$ort" ]; then
        printf '%-10s %s\n' "$m" "no timing found (calibrate bench said: $(echo "$out" | tail -1))"
        status=1
        continue
    fi
    ratio=$(awk -v a="$ours" -v b="$ort" 'BEGIN { printf "%.2f", a / b }')
    printf '%-10s %12.2f %12.2f %8s\n' "$m" "$ours" "$ort" "$ratio"
    worst=$(awk -v a="$ratio" -v b="$worst" 'BEGIN { print (a > b) ? a : b }')
done
echo "bench: worst ratio $worst (qcal / onnxruntime, $RUNS runs x $SAMPLES samples, 2 threads)"
if [ -n "${QC_BENCH_MAX_RATIO:-}" ] &&
        awk -v a="$worst" -v b="$QC_BENCH_MAX_RATIO" 'BEGIN { exit !(a > b) }'; then
    echo "bench: ratio above QC_BENCH_MAX_RATIO=$QC_BENCH_MAX_RATIO"
    status=1
fi
exit $status
