#!/bin/bash
# RNN, GRU and LSTM (src/exec/ops_rnn.c) in `calibrate run` against onnxruntime, over what
# the backend node tests leave out (test/oracles/rnn_check.py: directions, sequence_lens,
# layout 1, clip, peepholes, input_forget, linear_before_reset, activations, omitted outputs).
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"

mkdir -p "$CLI_TMP/rnn"
tally rnn_check "$PY" test/oracles/rnn_check.py "$CAL" "$CLI_TMP/rnn"

cli_done cli-recurrent
