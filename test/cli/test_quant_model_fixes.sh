#!/usr/bin/env bash
# Quantization on models that need care: opset raised for per-channel weights.
source "$(dirname "$0")/lib.sh"

if v=$("$PY" test/oracles/opset_upgrade_check.py "$CAL" "$CLI_TMP/op" 2>&1); then
    cli_ok "opset_upgrade: $v"
else
    cli_fail opset_upgrade "$(echo "$v" | tail -3 | tr '\n' ' ')"
fi
cli_done quant-model-fixes
