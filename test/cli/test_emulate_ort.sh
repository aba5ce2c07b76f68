#!/usr/bin/env bash
# `calibrate run --emulate-ort` against onnxruntime's fused integer kernels (QLinearConv,
# QLinearMatMul, QLinearSigmoid, QLinearSoftmax, QLinearAdd, QLinearMul) on small generated QDQ
# models (test/oracles/qlinear_check.py): the codes must equal onnxruntime's (ORT_ENABLE_ALL;
# QLinearSoftmax: at most 1 step in 2e-6 of them), and onnxruntime must really have fused each
# case.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
ORACLE=test/oracles/qlinear_check.py

out=$("$PY" "$ORACLE" "$CAL" "$CLI_TMP/ql" 2>&1)
rc=$?
while IFS= read -r line; do
    case $line in
        ok\ *)   CLI_PASSED=$((CLI_PASSED + 1)); echo "$line" ;;
        FAIL\ *) CLI_FAILED=$((CLI_FAILED + 1)); echo "$line" ;;
    esac
done <<<"$out"
if [ "$rc" != 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
    cli_fail qlinear_check "exit status $rc: $(tail -1 <<<"$out")"
fi
cli_done emulate-ort
