#!/bin/bash
# Operators in `calibrate run` against onnxruntime, over what the backend node tests leave out
# (test/oracles/ops_check.py): RNN, GRU and LSTM (directions, sequence_lens, layout 1, clip,
# peepholes, input_forget, linear_before_reset, activations, omitted outputs),
# NonMaxSuppression on many random boxes, DepthToSpace, SpaceToDepth, Trilu, LRN.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$CLI_TMP/ops"
tally ops_check "$PY" test/oracles/ops_check.py "$CAL" "$CLI_TMP/ops"

cli_done cli-ops-vs-ort
