#!/usr/bin/env bash
# Bias correction (calibrate's default; --no-bias-correction turns it off): a generated model
# whose weight rounding shifts an output mean (test/oracles/biascorr_check.py: onnxruntime
# measures the shift with and without it), and the flags' usage errors.
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
rc=0
"$CAL" --data "$FX/data_ok" "$FX/conv.onnx" -o "$CLI_TMP/bs.onnx" --bias-samples x -q \
    >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
if [ "$rc" = 2 ] && head -1 "$CLI_TMP/err" | grep -qF "calibrate: --bias-samples 'x': expected" &&
        [ ! -e "$CLI_TMP/bs.onnx" ]; then
    cli_ok bias_samples_not_a_count
else
    cli_fail bias_samples_not_a_count "exit $rc, stderr: $(head -c 300 "$CLI_TMP/err")"
fi
# --params-in without data: no correction (nothing to measure on), no error
"$CAL" --data "$FX/data_ok" "$FX/conv.onnx" -o "$CLI_TMP/p.onnx" --params-out "$CLI_TMP/p.json" \
    -q >/dev/null 2>&1 </dev/null
expect_success bias_correction_default_without_data -- \
    "$CAL" "$FX/conv.onnx" -o "$CLI_TMP/pi.onnx" --params-in "$CLI_TMP/p.json" -q
cli_done bias-correction
