#!/usr/bin/env bash
# calibrate --bias-correction: a generated model whose weight rounding shifts an output mean
# (test/oracles/biascorr_check.py: onnxruntime measures the shift with and without the flag),
# and the flag's usage errors.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"

if v=$("$PY" test/oracles/biascorr_check.py "$CAL" "$CLI_TMP/bc" 2>&1); then
    while IFS= read -r line; do
        name=${line#ok   }
        cli_ok "${name%%:*}: ${name#*: }"
    done <<<"$v"
else
    cli_fail biascorr_check "$(echo "$v" | grep -v '^ok' | tail -3 | tr '\n' ' ')"
fi

# a usage error: the message first, then the hint
rc=0
"$CAL" "$FX/conv.onnx" -o "$CLI_TMP/u.onnx" --params-in "$CLI_TMP/none.json" --bias-correction \
    -q >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
if [ "$rc" = 2 ] && head -1 "$CLI_TMP/err" | grep -qF 'calibrate: --bias-correction needs --data' &&
        [ ! -e "$CLI_TMP/u.onnx" ]; then
    cli_ok bias_correction_needs_data
else
    cli_fail bias_correction_needs_data "exit $rc, stderr: $(head -c 300 "$CLI_TMP/err")"
fi
expect_success bias_correction_no_bias -- \
    "$CAL" --data "$FX/data_ok" "$FX/conv.onnx" -o "$CLI_TMP/nb.onnx" --bias-correction -q
expect_success bias_correction_auto -- \
    "$CAL" --data "$FX/data_ok" "$FX/conv.onnx" -o "$CLI_TMP/auto.onnx" --method auto \
    --bias-correction -q
cli_done bias-correction
