#!/usr/bin/env bash
# Hostile input and failures: every case is one line of the table below or one of the
# scenarios after it. Errors must be one line on stderr naming the file and the reason, with
# the documented exit status (2 usage/input, 3 unsupported, 4 I/O); nothing partial is ever
# left under an output name or as a temp file (*.tmp.*), a previous output stays intact and
# the inputs are never modified.
#  - a full disk: a 64 KiB tmpfs (as root; else "skip ... cannot mount tmpfs"), and a file
#    size limit hitting the model after its external data file was written;
#  - SIGTERM and SIGINT while `calibrate save` writes a ~200 MB model and while `calibrate`
#    writes its quantized form, at several delays (QC_ASAN: a 96 MB model);
#  - JPEG decompression bombs refused in under 200 MB of memory.
# Fixtures: test/oracles/make_fixtures.py (lib.sh) and make_failure_fixtures.py.
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
F=$CLI_TMP/ff
OUT=$CLI_TMP/o
FULL=$CLI_TMP/full
mkdir -p "$OUT"
MOUNTED=0
trap '[ "$MOUNTED" = 1 ] && umount "$FULL" 2>/dev/null; rm -rf "$CLI_TMP"' EXIT

BIG_MB=200
[ "${QC_ASAN:-0}" = 1 ] && BIG_MB=96
if ! "$PY" test/oracles/make_failure_fixtures.py "$F" --big-mb "$BIG_MB" >"$CLI_TMP/ff.log" 2>&1
then
    echo "FAIL setup: test/oracles/make_failure_fixtures.py: $(tail -1 "$CLI_TMP/ff.log")"
    exit 1
fi
mkfifo "$F/ext/fifo"
M=$FX/conv.onnx
sha() { sha256sum "$1" | cut -d' ' -f1; }
# leftovers DIR: temp files left in DIR (none expected)
leftovers() { find "$1" -name '*.tmp.*' | sed 's|.*/||' | tr '\n' ' '; }
snapshot() { find "$FX" "$F" -type f ! -name 'big.onnx' -exec sha256sum {} + | sort; }
inputs_before=$(snapshot)
big_before=$(sha "$F/big.onnx")

# Root ignores permission bits: permission cases run as nobody.
AS_USER=()
if [ "$(id -u)" = 0 ]; then
    chmod 755 "$CLI_TMP"
    chmod -R a+rX "$FX" "$F"
    if command -v setpriv >/dev/null; then
        AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    fi
fi
can_drop() { [ "$(id -u)" != 0 ] || [ ${#AS_USER[@]} -gt 0 ]; }

# ---- the table: NAME|EXIT|substrings of the message (;-separated)|arguments ----------------
# $M conv.onnx, $FX make_fixtures.py output, $F make_failure_fixtures.py output; $d good data,
# $o a scratch output.
d=$FX/data_ok
o="-o $OUT/a.onnx"
cases=(
"model_missing|2|$FX/nope.onnx;cannot open|--data $d $FX/nope.onnx $o"
"model_is_folder|2|$FX/data_ok;not a regular file|--data $d $FX/data_ok $o"
"model_truncated|2|$FX/truncated.onnx|--data $d $FX/truncated.onnx $o"
"model_garbage|2|$FX/garbage.onnx;not a valid ONNX|--data $d $FX/garbage.onnx $o"
"model_empty|2|$FX/empty.onnx;empty|--data $d $FX/empty.onnx $o"
"model_nested_deep|2|$F/deep.onnx;nested|--data $d $F/deep.onnx $o"
"model_huge_claim|2|$F/huge_claim.onnx;'a';raw_data|--data $d $F/huge_claim.onnx $o"
"ext_escapes_folder|2|$F/ext/escape.onnx;../secret.bin|info $F/ext/escape.onnx"
"ext_absolute|2|$F/ext/absolute.onnx;/etc/hostname|info $F/ext/absolute.onnx"
"ext_fifo|2|$F/ext/fifo.onnx;not a regular file|info $F/ext/fifo.onnx"
"unsupported_op|3|RandomNormalLike;noise;13|--data $d $FX/unsupported.onnx $o"
"required_input_omitted|2|mean_of_nothing;input 0 is required|info $F/omitted_input.onnx"
"too_few_inputs|2|gather_half;GatherND;takes 2 inputs, has 1|--data $d $F/few_inputs.onnx $o"
"data_missing|2|$FX/none|--data $FX/none $M $o"
"data_is_file|2|$M|--data $M $M $o"
"data_empty|2|$FX/data_empty|--data $FX/data_empty $M $o"
"npy_wrong_dtype|2|s0.npy;int64;float32|--data $FX/data_dtype $M $o"
"npy_wrong_shape|2|s0.npy;[1,3,4,4];[1,3,8,8]|--data $FX/data_shape $M $o"
"npy_big_endian|2|data_be/s0.npy;big-endian|--data $F/data_be $M $o"
"npy_truncated|2|data_trunc/s0.npy;truncated|--data $F/data_trunc $M $o"
"image_not_an_image|2|data_badimg/s0.png;not a PNG or JPEG|--data $F/data_badimg $M $o"
"image_png_truncated|2|data_truncpng/s0.png;PNG|--data $F/data_truncpng $M $o"
"image_jpeg_bomb|2|data_bomb/s0.jpg;JPEG|--data $F/data_bomb $M $o"
"image_progressive_bomb|2|data_pbomb/s0.jpg;16000x16000|--data $F/data_pbomb $M $o"
"nan_sample_strict|2|data_nan/s1.npy;--strict|--data $F/data_nan $M $o --strict"
"output_is_input|2|$M;overwrite|--data $d $M -o $M"
"save_output_is_input|2|$M;overwrite|save $M -o $M"
"output_folder_missing|4|$OUT/no/a.onnx|--data $d $M -o $OUT/no/a.onnx"
"output_under_a_file|4|$M/a.onnx|--data $d $M -o $M/a.onnx"
"run_output_on_a_file|4|$M|run $M --data $d -o $M/sub"
)
for c in "${cases[@]}"; do
    IFS='|' read -r name code pats args <<<"$c"
    IFS=';' read -r -a want <<<"$pats"
    read -r -a argv <<<"$args"
    case ${argv[0]} in info | save) ;; *) argv+=(-q) ;; esac
    # every case must fail fast (a hang on a FIFO or a decompression bomb is a failure)
    expect_error "$name" "$code" "${want[@]}" -- timeout 60 "$CAL" "${argv[@]}"
done
if [ -z "$(ls -A "$OUT")" ]; then cli_ok table_writes_nothing
else cli_fail table_writes_nothing "left in $OUT: $(find "$OUT" -mindepth 1 | tr '\n' ' ')"; fi

# Decompression bombs are refused without allocating what their headers claim (libjpeg would
# take 0.5-0.75 GB and most of a second for these 200-byte files).
for b in data_bomb data_pbomb; do
    res=$("$PY" test/oracles/maxrss.py -- "$CAL" run "$M" --data "$F/$b" -o "$OUT/r" -q)
    mb=$(echo "$res" | sed -E 's/.*max RSS ([0-9]+) MB/\1/')
    if [[ "$res" == "exit 2,"* ]] && [ "$mb" -lt 200 ]; then cli_ok "${b}_small_footprint: $res"
    else cli_fail "${b}_small_footprint" "$res (expected exit 2, under 200 MB)"; fi
done

# Good inputs that look like the bad ones above still work.
expect_success ext_inside_folder_loads -- "$CAL" info "$F/ext/ok.onnx"
expect_success image_jpeg_decodes -- "$CAL" --data "$F/data_jpg" "$M" -o "$OUT/jpg.onnx" -q

# NaN/Inf: skipped with a warning naming the file by default (the result is calibrated on
# the finite sample alone), an error with --strict (in the table).
rc=0
"$CAL" --data "$F/data_nan" "$M" -o "$OUT/nan.onnx" -q >/dev/null 2>"$CLI_TMP/err" || rc=$?
if [ "$rc" = 0 ] && grep -q 'warning:.*data_nan/s1.npy' "$CLI_TMP/err" && [ -s "$OUT/nan.onnx" ]
then
    cli_ok nan_sample_skipped_with_warning
else
    cli_fail nan_sample_skipped_with_warning "exit $rc, stderr: $(head -c 300 "$CLI_TMP/err")"
fi

# Permissions (as nobody when root): an unreadable model, unwritable output folders.
if can_drop; then
    cp "$M" "$CLI_TMP/secret.onnx"
    chmod 000 "$CLI_TMP/secret.onnx"
    expect_error model_unreadable 4 "$CLI_TMP/secret.onnx" "Permission denied" -- \
        "${AS_USER[@]}" "$CAL" info "$CLI_TMP/secret.onnx"
    mkdir -p "$CLI_TMP/ro"
    chmod 555 "$CLI_TMP/ro"
    expect_error output_folder_unwritable 4 "$CLI_TMP/ro/q.onnx" "Permission denied" -- \
        "${AS_USER[@]}" "$CAL" --data "$FX/data_ok" "$M" -o "$CLI_TMP/ro/q.onnx" -q
    expect_error save_folder_unwritable 4 "$CLI_TMP/ro/s.onnx" -- \
        "${AS_USER[@]}" "$CAL" save "$M" -o "$CLI_TMP/ro/s.onnx"
    expect_error run_folder_unwritable 4 "$CLI_TMP/ro/run" -- \
        "${AS_USER[@]}" "$CAL" run "$M" --data "$FX/data_ok" -o "$CLI_TMP/ro/run" -q
    if [ -z "$(ls -A "$CLI_TMP/ro")" ]; then cli_ok unwritable_leaves_nothing
    else cli_fail unwritable_leaves_nothing "left: $(find "$CLI_TMP/ro" -mindepth 1 |
        tr '\n' ' ')"; fi
else
    echo "skip model_unreadable, output_folder_unwritable: root without setpriv"
fi

# ---- a full disk ---------------------------------------------------------------------------
mkdir -p "$FULL"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64k tmpfs "$FULL" 2>/dev/null; then
    MOUNTED=1
    echo "previous output" >"$FULL/q.onnx"
    old=$(sha "$FULL/q.onnx")
    # wide.onnx quantized is ~130 KiB: more than the whole disk
    expect_error disk_full_calibrate 4 "$FULL/q.onnx" "No space left on device" -- \
        "$CAL" --data "$F/wide_data" "$F/wide.onnx" -o "$FULL/q.onnx" -q
    expect_error disk_full_save 4 "$FULL/s.onnx" "No space left on device" -- \
        "$CAL" save "$F/wide.onnx" -o "$FULL/s.onnx"
    head -c 60000 /dev/zero >"$FULL/filler"
    expect_error disk_full_run 4 "$FULL/run" "No space left on device" -- \
        "$CAL" run "$F/wide.onnx" --data "$F/wide_data" -o "$FULL/run" -q
    rm -f "$FULL/filler"
    left=$(find "$FULL" -type f ! -name q.onnx | sed "s|$FULL/||" | tr '\n' ' ')
    if [ -z "$left" ] && [ "$(sha "$FULL/q.onnx")" = "$old" ]; then
        cli_ok disk_full_no_partial_file_previous_intact
    else
        cli_fail disk_full_no_partial_file_previous_intact "left: '$left', previous output" \
            "$( [ "$(sha "$FULL/q.onnx")" = "$old" ] && echo intact || echo changed)"
    fi
    umount "$FULL" && MOUNTED=0
else
    echo "skip disk_full_*: cannot mount tmpfs (needs root)"
fi

# External data: the model write fails (file size limit) after its .data file was written.
# The previous model + .data pair must survive as a pair: a new .data beside the old model
# would silently give it other weights.
D=$CLI_TMP/extpair
mkdir -p "$D"
expect_success ext_pair_first_save -- \
    "$CAL" save "$F/saved_ext/many.onnx" -o "$D/m.onnx" --external-threshold 4096
pair_before="$(sha "$D/m.onnx") $(sha "$D/m.onnx.data" 2>/dev/null)"
expect_error ext_pair_model_write_fails 4 "$D/m.onnx" -- \
    bash -c 'trap "" XFSZ; ulimit -f 32; exec "$@"' _ \
    "$CAL" save "$F/saved_ext/many2.onnx" -o "$D/m.onnx" --external-threshold 4096
pair_after="$(sha "$D/m.onnx") $(sha "$D/m.onnx.data" 2>/dev/null)"
if [ "$pair_before" = "$pair_after" ] && [ -z "$(leftovers "$D")" ]; then
    cli_ok ext_pair_previous_intact
else
    cli_fail ext_pair_previous_intact "previous pair changed or temp files left:" \
        "$(leftovers "$D")"
fi

# ---- interruptions --------------------------------------------------------------------------
# interrupt_cases NAME OUTFILE command...: a full run gives the reference output and its
# duration T; then SIGTERM/SIGINT at 15%..95% of T, each over a previous output. After each,
# OUTFILE must be the previous output or the reference (complete), and no temp file left.
interrupt_cases() {
    local name=$1 out=$2
    shift 2
    local dir t0 t1 ref rc=0
    dir=$(dirname "$out")
    mkdir -p "$dir"
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" != 0 ] || [ ! -s "$out" ]; then
        cli_fail "${name}_reference" "exit $rc: $(head -c 300 "$CLI_TMP/err")"
        return
    fi
    ref=$(sha "$out")
    local total killed=0 bad="" frac sig res
    total=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    local i=0
    for frac in 0.15 0.35 0.55 0.75 0.95; do
        sig=TERM
        [ $((i % 2)) = 1 ] && sig=INT
        i=$((i + 1))
        echo "previous output" >"$out"
        local prev
        prev=$(sha "$out")
        res=$("$PY" test/oracles/interrupt.py "$sig" "$(awk -v t="$total" -v f="$frac" \
            'BEGIN { print t * f }')" -- "$@")
        [[ "$res" == signal* ]] && killed=$((killed + 1))
        local now
        now=$(sha "$out")
        if [ -n "$(leftovers "$dir")" ]; then
            bad="$bad SIG$sig@$frac: left $(leftovers "$dir");"
        elif [ "$now" != "$prev" ] && [ "$now" != "$ref" ]; then
            bad="$bad SIG$sig@$frac: $out is partial;"
        fi
        find "$dir" -name '*.tmp.*' -delete
    done
    if [ -n "$bad" ]; then
        cli_fail "$name" "$bad"
    elif [ "$killed" = 0 ]; then
        cli_fail "$name" "no run was interrupted (full run $(printf %.2f "$total") s)"
    else
        cli_ok "$name: $killed of 5 runs interrupted (full run $(printf %.2f "$total") s)"
    fi
}
interrupt_cases interrupt_save "$CLI_TMP/int/save.onnx" \
    "$CAL" save "$F/big.onnx" -o "$CLI_TMP/int/save.onnx"
interrupt_cases interrupt_calibrate "$CLI_TMP/int/q.onnx" \
    "$CAL" --data "$F/big_data" "$F/big.onnx" -o "$CLI_TMP/int/q.onnx" -q
rm -rf "$CLI_TMP/int"

# The inputs are never modified.
if [ "$(snapshot)" = "$inputs_before" ] && [ "$(sha "$F/big.onnx")" = "$big_before" ]; then
    cli_ok inputs_unchanged
else
    cli_fail inputs_unchanged "$(diff <(echo "$inputs_before") <(snapshot) | head -3 |
        tr '\n' ' ')"
fi

cli_done cli-failures
