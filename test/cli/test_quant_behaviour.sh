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

# every case the oracle defines, in its order
if ! cases=$("$PY" "$ORACLE" --list); then
    cli_fail list "$ORACLE --list failed"
    cases=
fi
for c in $cases; do
    run_case "$c"
done
cli_done quant-behaviour
