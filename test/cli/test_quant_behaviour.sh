#!/usr/bin/env bash
# Calibration/quantization behaviour on small generated models (test/oracles/
# quant_behaviour.py): each case builds a model, calibrates it and checks the QDQ model with
# onnx and onnxruntime against the float model.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
ORACLE=test/oracles/quant_behaviour.py

run_case() {
    local v
    if v=$("$PY" "$ORACLE" "$CAL" "$CLI_TMP/qb" "$1" 2>&1); then
        cli_ok "$1: ${v#ok   "$1": }"
    else
        cli_fail "$1" "$(echo "$v" | sed "s/^FAIL $1: //" | tail -3 | tr '\n' ' ')"
    fi
}

run_case constant_node_weights
run_case fp16_weights
run_case batchnorm_folding
run_case shared_weight
run_case varying_shapes
run_case zero_width_range
run_case bias_overflow
run_case exclude_and_op_types
run_case activation_types
run_case per_channel_axes
run_case bias_float
run_case params_roundtrip
run_case ranges_include_zero
run_case nan_in_data
run_case sigmoid_gates
run_case concat_union
run_case depth_space_share_scale
run_case static_shape_folding
run_case if_constant_condition
cli_done quant-behaviour
