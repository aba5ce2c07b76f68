#!/usr/bin/env bash
# `calibrate` (the quantize command) on bad input: one line on stderr naming the problem, the
# documented exit status (2 usage/input, 3 unsupported model, 4 I/O), no partial output file,
# the input model never touched; NaN/Inf samples skipped with a warning unless --strict.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
M=$FX/conv.onnx
OUT=$CLI_TMP/models
mkdir -p "$OUT"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Extra data folders: a good sample and one with a NaN; only a NaN sample.
if ! "$PY" - "$FX" <<'EOF'
import os, sys
import numpy as np
fx = sys.argv[1]
good = np.load(os.path.join(fx, "data_ok", "s0.npy"))
bad = good.copy()
bad[0, 1, 2, 3] = np.nan
bad[0, 2, 0, 0] = np.inf
for d, files in (("data_nan", {"s0.npy": good, "s1.npy": bad}),
                 ("data_allnan", {"s0.npy": bad})):
    os.makedirs(os.path.join(fx, d), exist_ok=True)
    for f, a in files.items():
        np.save(os.path.join(fx, d, f), a)
EOF
then
    echo "FAIL setup: could not write the NaN data folders"
    exit 1
fi

expect_success calibrate_ok -- "$CAL" --data "$FX/data_ok" "$M" -o "$OUT/ok.onnx" -q \
    --params-out "$OUT/ok.json"
if [ -s "$OUT/ok.onnx" ]; then cli_ok calibrate_ok_writes_output
else cli_fail calibrate_ok_writes_output "$OUT/ok.onnx missing or empty"; fi

# --method: an unknown name is a usage error naming the valid methods.
expect_error unknown_method 2 "'bogus'" minmax ema percentile mse entropy -- \
    "$CAL" --data "$FX/data_ok" "$M" -o "$OUT/x.onnx" --method bogus -q
for meth in minmax ema percentile mse entropy; do
    expect_success "method_$meth" -- "$CAL" --data "$FX/data_ok" "$M" -o "$OUT/$meth.onnx" \
        --method "$meth" -q
done

# Data folder problems.
expect_error data_missing 2 "$FX/no_such_folder" -- \
    "$CAL" --data "$FX/no_such_folder" "$M" -o "$OUT/x.onnx" -q
expect_error data_empty 2 "$FX/data_empty" -- \
    "$CAL" --data "$FX/data_empty" "$M" -o "$OUT/x.onnx" -q
expect_error npy_wrong_shape 2 "s0.npy" -- \
    "$CAL" --data "$FX/data_shape" "$M" -o "$OUT/x.onnx" -q
expect_error model_missing 2 "$FX/nope.onnx" -- \
    "$CAL" --data "$FX/data_ok" "$FX/nope.onnx" -o "$OUT/x.onnx" -q
expect_error model_truncated 2 "$FX/truncated.onnx" -- \
    "$CAL" --data "$FX/data_ok" "$FX/truncated.onnx" -o "$OUT/x.onnx" -q
expect_error unsupported_op 3 "RandomNormalLike" -- \
    "$CAL" --data "$FX/data_ok" "$FX/unsupported.onnx" -o "$OUT/x.onnx" -q
if [ -e "$OUT/x.onnx" ]; then cli_fail errors_write_nothing "$OUT/x.onnx exists"
else cli_ok errors_write_nothing; fi

# NaN/Inf samples: skipped with a warning naming the file (exit 0, the good sample is used,
# so the result equals calibrating on the good sample alone); --strict rejects them.
rc=0
"$CAL" --data "$FX/data_nan" "$M" -o "$OUT/nan.onnx" -q --params-out "$OUT/nan.json" \
    >"$CLI_TMP/stdout" 2>"$CLI_TMP/err" </dev/null || rc=$?
if [ "$rc" != 0 ]; then
    cli_fail nan_sample_skipped "exit status $rc (stderr: $(head -c 300 "$CLI_TMP/err"))"
elif ! grep -q 'warning' "$CLI_TMP/err" || ! grep -qF "s1.npy" "$CLI_TMP/err"; then
    cli_fail nan_sample_skipped "no warning naming s1.npy on stderr: $(head -c 300 "$CLI_TMP/err")"
elif ! cmp -s "$OUT/nan.json" "$OUT/ok.json"; then
    cli_fail nan_sample_skipped "parameters differ from calibrating on the good sample alone"
else
    cli_ok nan_sample_skipped
fi
expect_error nan_sample_strict 2 "s1.npy" "--strict" -- \
    "$CAL" --data "$FX/data_nan" "$M" -o "$OUT/strict.onnx" -q --strict
if [ -e "$OUT/strict.onnx" ]; then cli_fail nan_sample_strict_no_output "$OUT/strict.onnx written"
else cli_ok nan_sample_strict_no_output; fi
rc=0
"$CAL" --data "$FX/data_allnan" "$M" -o "$OUT/allnan.onnx" -q >/dev/null 2>"$CLI_TMP/err" \
    </dev/null || rc=$?
if [ "$rc" = 2 ] && tail -1 "$CLI_TMP/err" | grep -q '^calibrate: .*data_allnan' &&
        [ ! -e "$OUT/allnan.onnx" ]; then
    cli_ok nan_only_samples
else
    cli_fail nan_only_samples "exit $rc, stderr: $(head -c 300 "$CLI_TMP/err")"
fi

# The output must never replace the input model, however the path is spelled.
cp "$M" "$CLI_TMP/in.onnx"
ln -s "$CLI_TMP/in.onnx" "$CLI_TMP/link.onnx"
before=$(sha "$CLI_TMP/in.onnx")
expect_error output_is_input 2 "$CLI_TMP/in.onnx" -- \
    "$CAL" --data "$FX/data_ok" "$CLI_TMP/in.onnx" -o "$CLI_TMP/in.onnx" -q
expect_error output_is_input_dot 2 -- \
    "$CAL" --data "$FX/data_ok" "$CLI_TMP/in.onnx" -o "$CLI_TMP/./in.onnx" -q
expect_error output_is_input_symlink 2 -- \
    "$CAL" --data "$FX/data_ok" "$CLI_TMP/in.onnx" -o "$CLI_TMP/link.onnx" -q
if [ "$(sha "$CLI_TMP/in.onnx")" = "$before" ] && [ -L "$CLI_TMP/link.onnx" ]; then
    cli_ok input_model_unchanged
else
    cli_fail input_model_unchanged "sha256 changed or the symlink was replaced"
fi

# I/O errors: exit 4, nothing left behind (no temp file), an existing output kept intact.
mkdir -p "$CLI_TMP/ro"
if [ "$(id -u)" = 0 ]; then
    # root ignores permission bits: run that case as nobody
    chmod 755 "$CLI_TMP"
    chmod -R a+rX "$FX"
    AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    command -v setpriv >/dev/null || AS_USER=()
else
    AS_USER=()
fi
chmod 555 "$CLI_TMP/ro"
if [ "$(id -u)" = 0 ] && [ ${#AS_USER[@]} = 0 ]; then
    echo "skip output_dir_unwritable: running as root without setpriv"
else
    expect_error output_dir_unwritable 4 "$CLI_TMP/ro/q.onnx" -- \
        "${AS_USER[@]}" "$CAL" --data "$FX/data_ok" "$M" -o "$CLI_TMP/ro/q.onnx" -q
    if [ -z "$(ls -A "$CLI_TMP/ro")" ]; then cli_ok output_dir_unwritable_no_file
    else cli_fail output_dir_unwritable_no_file "left: $(ls -A "$CLI_TMP/ro" | tr '\n' ' ')"; fi
fi
expect_error output_dir_missing 4 "$CLI_TMP/no_dir/q.onnx" -- \
    "$CAL" --data "$FX/data_ok" "$M" -o "$CLI_TMP/no_dir/q.onnx" -q
expect_error output_dir_is_file 4 -- \
    "$CAL" --data "$FX/data_ok" "$M" -o "$M/q.onnx" -q
# A write that fails (file size limit 0: the quantized fixture is under 1 KiB; stderr
# goes through a pipe, which the limit does not cover): no partial file, the old output intact.
mkdir -p "$CLI_TMP/full"
echo "previous output" >"$CLI_TMP/full/q.onnx"
old=$(sha "$CLI_TMP/full/q.onnx")
expect_error output_write_fails 4 "$CLI_TMP/full/q.onnx" -- \
    bash -c 'trap "" XFSZ; (ulimit -f 0; exec "$@") 2>&1 >/dev/null | cat >&2
             exit "${PIPESTATUS[0]}"' _ \
    "$CAL" --data "$FX/data_ok" "$M" -o "$CLI_TMP/full/q.onnx" -q
if [ "$(ls -A "$CLI_TMP/full")" = q.onnx ] && [ "$(sha "$CLI_TMP/full/q.onnx")" = "$old" ]; then
    cli_ok output_write_fails_no_partial_file
else
    cli_fail output_write_fails_no_partial_file "folder holds: $(ls -A "$CLI_TMP/full" |
        tr '\n' ' '), q.onnx $( [ "$(sha "$CLI_TMP/full/q.onnx")" = "$old" ] && echo intact ||
        echo changed)"
fi

# Default output: MODEL.int8.onnx beside the input.
mkdir -p "$CLI_TMP/def"
cp "$M" "$CLI_TMP/def/m.onnx"
expect_success default_output -- "$CAL" --data "$FX/data_ok" "$CLI_TMP/def/m.onnx" -q
if [ -s "$CLI_TMP/def/m.int8.onnx" ] && [ "$(ls "$CLI_TMP/def" | wc -l)" = 2 ]; then
    cli_ok default_output_name
else
    cli_fail default_output_name "folder holds: $(ls -A "$CLI_TMP/def" | tr '\n' ' ')"
fi

# Usage errors: exit 2, the message first ("calibrate: ..."), then a hint is fine.
usage_cases=(
    "no_data|$M -o $OUT/u.onnx"
    "no_model|--data $FX/data_ok -o $OUT/u.onnx"
    "two_models|--data $FX/data_ok $M $M -o $OUT/u.onnx"
    "method_no_value|--data $FX/data_ok $M -o $OUT/u.onnx --method"
    "unknown_option|--data $FX/data_ok $M -o $OUT/u.onnx --bogus"
    "bad_activation_type|--data $FX/data_ok $M -o $OUT/u.onnx --activation-type uint4"
    "bad_percentile|--data $FX/data_ok $M -o $OUT/u.onnx --percentile 101"
    "bad_limit|--data $FX/data_ok $M -o $OUT/u.onnx --limit 0"
)
for c in "${usage_cases[@]}"; do
    name=usage_${c%%|*}
    args=${c#*|}
    rc=0
    # shellcheck disable=SC2086
    "$CAL" $args >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
    if [ "$rc" = 2 ] && head -1 "$CLI_TMP/err" | grep -q '^calibrate: ' &&
            [ ! -e "$OUT/u.onnx" ]; then
        cli_ok "$name"
    else
        cli_fail "$name" "'calibrate $args': exit $rc, stderr: $(head -c 300 "$CLI_TMP/err")"
    fi
done

cli_done cli-calibrate
