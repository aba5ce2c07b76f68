#!/usr/bin/env bash
# calibrate doctor: each fixture of test/oracles/make_doctor_fixtures.py triggers one finding,
# which must come first with the right fix; the clean variant of the same fixture (or the
# fixture with that fix applied) must not report it. Findings that follow their cause are also
# checked present behind it (cause-first ranking). On the integration models with their good
# data, no error-severity finding.
source "$(dirname "$0")/lib.sh"

DX=$CLI_TMP/dx
if ! "$PY" test/oracles/make_doctor_fixtures.py "$DX" >"$CLI_TMP/dx.log" 2>&1; then
    cli_fail setup "make_doctor_fixtures.py: $(tail -1 "$CLI_TMP/dx.log")"
    cli_done doctor
    exit 1
fi

# run_doctor ARGS...: doctor on the fixtures, JSON in $CLI_TMP/d.json; 0 if it ran (exit 0)
run_doctor() {
    rm -f "$CLI_TMP/d.json"
    (cd "$DX" && "$OLDPWD/$CAL" doctor -q --json "$CLI_TMP/d.json" "$@") \
        >"$CLI_TMP/out" 2>"$CLI_TMP/err" </dev/null
}

# verdict MODE CHECK SUBJECT FIX: MODE first|has|absent|absent_warn (none above info)|absent_error,
# against $CLI_TMP/d.json
verdict() {
    "$PY" - "$CLI_TMP/d.json" "$@" <<'EOF'
import json, sys
path, mode, check, subject, fix = sys.argv[1:6]
fs = json.load(open(path))["findings"]
hits = [f for f in fs if f["check"] == check and subject in f["subject"] and fix in f["fix"]]
same = [f for f in fs if f["check"] == check]
first = fs[0] if fs else None
desc = lambda f: f"{f['severity']} {f['check']} '{f['subject']}' fix '{f['fix']}'" if f else "none"
if mode == "first":
    ok = first is not None and first in hits
    why = f"first finding is {desc(first)}"
elif mode == "has":
    ok = bool(hits)
    why = f"no {check} on '{subject}' with fix '{fix}' among {len(fs)} findings" + \
        (f" (got {desc(same[0])})" if same else "")
elif mode == "absent_warn":
    bad = [f for f in same if f["severity"] != "info"]
    ok = not bad
    why = f"reported {desc(bad[0])}" if bad else ""
elif mode == "absent_error":
    errs = [f for f in fs if f["severity"] == "error"]
    ok = not errs
    why = f"{len(errs)} error findings, first {desc(errs[0])}" if errs else ""
else:
    ok = not same
    why = f"reported {desc(same[0])}" if same else ""
print(why)
sys.exit(0 if ok else 1)
EOF
}

# quantize NAME ARGS...: `calibrate ARGS` in the fixture folder, making a given model for case
# NAME; if it fails, case NAME fails (returns 1: the caller skips its checks)
quantize() {
    local name=$1
    shift
    (cd "$DX" && "$OLDPWD/$CAL" -q "$@") >"$CLI_TMP/out" 2>&1 && return 0
    cli_fail "$name" "calibrate failed: $(head -c 300 "$CLI_TMP/out")"
    return 1
}

# expect MODE NAME CHECK SUBJECT FIX -- doctor args...
expect() {
    local mode=$1 name=$2 check=$3 subject=$4 fix=$5
    shift 6
    if ! run_doctor "$@"; then
        cli_fail "$name" "doctor failed: $(head -c 300 "$CLI_TMP/err")"
        return
    fi
    local why
    if why=$(verdict "$mode" "$check" "$subject" "$fix" 2>&1); then
        cli_ok "$name"
    else
        cli_fail "$name" "$why"
    fi
}

# 1. data
expect first nan_sample data.nonfinite s05.npy "remove" -- --data calib_nan base.onnx
expect absent nan_sample_clean data.nonfinite "" "" -- --data calib base.onnx
expect first raw_pixels data.raw-pixels x "--scale 1/255" -- --data calib_raw base.onnx
expect absent raw_pixels_clean data.raw-pixels "" "" -- --data calib_unit base.onnx
expect first constant_input data.constant-input x "data loader" -- --data calib_const base.onnx
expect absent constant_input_clean data.constant-input "" "" -- --data calib base.onnx
expect first shift data.shift x "deployment data" -- --data calib --eval eval_shift base.onnx
expect absent shift_clean data.shift "" "" -- --data calib --eval eval base.onnx
expect first few_samples data.few-samples "calibration set" "more" -- --data calib2 base.onnx
expect absent few_samples_clean data.few-samples "" "" -- --data calib base.onnx
# RGB vs BGR: eval channels 0 and 2 swapped (whole-input moments unchanged: no data.shift)
expect first channel_order data.channel-order x "channel order" -- \
    --data calib_rgb --eval eval_bgr base.onnx
expect absent channel_order_clean data.channel-order "" "" -- \
    --data calib_rgb --eval eval_rgb base.onnx
expect first channel_order_nhwc data.channel-order x "channel order" -- \
    --data calib_rgb_nhwc --eval eval_bgr_nhwc nhwc.onnx
expect absent channel_order_nhwc_clean data.channel-order "" "" -- \
    --data calib_rgb_nhwc --eval eval_rgb_nhwc nhwc.onnx

# 2. ranges
expect first zero_width range.zero-width z "--exclude zero_branch" -- --data calib const.onnx
expect absent zero_width_clean range.zero-width "" "" -- --data calib const_ok.onnx
expect first outliers range.outliers x "--method percentile" -- --data calib_spike big.onnx
expect absent outliers_clean range.outliers "" "" -- --data calib_big big.onnx
expect first one_sided range.one-sided r1 "drop --symmetric-activations" -- \
    --data calib base.onnx --symmetric-activations
expect absent one_sided_clean range.one-sided "" "" -- --data calib base.onnx
expect first imbalance weight.channel-imbalance conv1 "--per-channel" -- \
    --data calib imbalance.onnx
expect absent imbalance_clean weight.channel-imbalance "" "" -- \
    --data calib imbalance.onnx --per-channel
# a given model: the weight checks look at its weights as it quantized them (per channel or
# per tensor, whatever the doctor's own options say)
if quantize imbalance_given --data calib imbalance.onnx --per-channel -o imb_pc.onnx &&
    quantize imbalance_given --data calib imbalance.onnx -o imb_pt.onnx; then
    expect absent imbalance_given_pc weight.channel-imbalance "" "" -- \
        --data calib imbalance.onnx imb_pc.onnx
    expect has imbalance_given_pt weight.channel-imbalance conv1 "--per-channel" -- \
        --data calib imbalance.onnx imb_pt.onnx --per-channel
fi
expect first saturation range.saturation x "covers the eval data" -- \
    --data calib --eval eval_wide base.onnx
expect absent saturation_clean range.saturation "" "" -- --data calib --eval eval base.onnx

# 3. model
expect first head_mix model.head-mix cat "--exclude cat,tr,pick" -- --data calib head.onnx
expect absent head_mix_clean model.head-mix "" "" -- --data calib head.onnx --exclude cat,tr,pick
# a given model's Concat at the scale it quantizes it with, whatever the doctor's own options
# would build (onnxruntime's YOLOv8 models quantize the output Concat: its scores collapse)
if quantize head_mix_given --data calib head.onnx -o head_q.onnx &&
    quantize head_mix_given --data calib head.onnx --exclude cat,tr,pick -o head_qx.onnx; then
    expect has head_mix_given model.head-mix cat "--exclude cat,tr,pick" -- \
        --data calib head.onnx head_q.onnx --exclude cat,tr,pick
    expect absent head_mix_given_clean model.head-mix "" "" -- --data calib head.onnx head_qx.onnx
fi
expect first bias_overflow model.bias-overflow conv1 "--bias float" -- --data calib bias.onnx
expect absent bias_overflow_clean model.bias-overflow "" "" -- \
    --data calib bias.onnx --bias float
# ... and the weight scales of a given model: raised for its int32 bias, or not (float bias)
if quantize bias_overflow_given --data calib bias.onnx -o bias_q.onnx &&
    quantize bias_overflow_given --data calib bias.onnx --bias float -o bias_qf.onnx; then
    expect has bias_overflow_given model.bias-overflow conv1 "--bias float" -- \
        --data calib bias.onnx bias_q.onnx
    expect absent bias_overflow_given_float model.bias-overflow "" "" -- \
        --data calib bias.onnx bias_qf.onnx
fi
expect first float_nan model.float-nan log "preprocessing" -- --data calib nan.onnx
expect absent float_nan_clean model.float-nan "" "" -- --data calib nan_ok.onnx
expect first float_ops model.float-ops tanh "--op-types" -- --data calib tanh.onnx
expect absent float_ops_clean model.float-ops "" "" -- --data calib base.onnx
# a given model that quantizes a decomposed LayerNorm inside it (onnxruntime's quantize_static,
# made by the fixture script); qcal's model of the same (its arithmetic float) does not
expect first norm_quantized_given model.norm-quantized square "keep normalization" -- \
    --data calib norm.onnx norm_ort.onnx
if quantize norm_quantized_clean --data calib norm.onnx -o norm_q.onnx; then
    expect absent norm_quantized_clean model.norm-quantized "" "" -- \
        --data calib norm.onnx norm_q.onnx
fi
# ... and a given model's float ops are its own (Tanh quantized in the doctor's rebuild only)
if quantize float_ops_given --data calib tanh.onnx -o tanh_q.onnx; then
    expect has float_ops_given model.float-ops tanh "--op-types" -- \
        --data calib tanh.onnx tanh_q.onnx --op-types Conv,Relu,Tanh
fi
# Concat inputs onnxruntime requantizes: a given model with their own scales (and the rebuild
# under --no-concat-share) says so; calibrate's default model and rebuild do not
if quantize concat_requant_given --data calib cat.onnx --no-concat-share -o cat_own.onnx &&
    quantize concat_requant_given_clean --data calib cat.onnx -o cat_q.onnx; then
    expect has concat_requant_given model.concat-requant cat "output's scale" -- \
        --data calib cat.onnx cat_own.onnx
    expect absent concat_requant_given_clean model.concat-requant "" "" -- \
        --data calib cat.onnx cat_q.onnx
fi
expect has concat_requant model.concat-requant cat "drop --no-concat-share" -- \
    --data calib cat.onnx --no-concat-share
expect absent concat_requant_clean model.concat-requant "" "" -- --data calib cat.onnx
expect first unfused model.unfused conv2 "" -- --data calib base.onnx
expect absent unfused_clean model.unfused "" "" -- --data calib div_ok.onnx

# 4. error attribution. First: x * x with a tail (spike 15) under the outlier thresholds, so
# no other check explains the error; the fix leaving 'square' float is measured, and applying
# it removes the finding. Present: with spike 31 range.outliers, the cause, ranks before it.
expect first attribution error.attribution sq "--exclude square,clip" -- \
    --data calib_spike15 square.onnx
expect absent attribution_clean error.attribution "" "" -- --data calib_big square.onnx
expect absent attribution_fixed error.attribution "" "" -- \
    --data calib_spike15 square.onnx --exclude square,clip
expect has attribution_after_cause error.attribution sq "--exclude square,clip" -- \
    --data calib_spike31 square.onnx
if quantize attribution_given --data calib_spike31 square.onnx -o sq_q.onnx; then
    expect has attribution_given error.attribution sq "" -- \
        --data calib_spike31 square.onnx sq_q.onnx
fi

# 5. outputs
expect first output_nonfinite output.nonfinite y "--exclude" -- --data calib div.onnx
expect absent output_nonfinite_clean output.nonfinite "" "" -- --data calib div_ok.onnx
# constant output, first: a per-channel gain (1000, 1000, 0.001) puts channel 2 under one step
# of the quantized tensor; no Concat, so no head-mix. The fix names the producer and readers
# of that tensor; applying it removes the finding. In head.onnx it follows its cause.
expect first output_constant output.constant y2 "--exclude gain,pick" -- --data calib gain.onnx
expect absent output_constant_clean output.constant "" "" -- \
    --data calib gain.onnx --exclude gain,pick
expect has output_constant_after_cause output.constant y2 "--exclude cat,tr,pick" -- \
    --data calib head.onnx
expect absent output_constant_head_clean output.constant "" "" -- \
    --data calib head.onnx --exclude cat,tr,pick
# agreement is a summary (an info listed last) when the output SQNR is 10 dB or more; below,
# a warning. First when no other check finds a cause: an input offset of 1000 that a
# difference filter cancels (its quantization error does not cancel); the fix is the search
# for nodes to keep float. Clean: the same model on zero-mean data (the summary info only).
expect first output_agreement output.agreement outputs "calibrate compare --target-sqnr" -- \
    --data calib_offset diff.onnx
expect absent_warn output_agreement_clean output.agreement "" "" -- --data calib diff.onnx
expect has output_agreement_summary output.agreement outputs "" -- --data calib base.onnx

# exit status: 0 with findings, 1 with --fail-on at or below the worst severity, 2 on usage
expect_success exit_findings -- "$CAL" doctor -q --data "$DX/calib_nan" "$DX/base.onnx"
rc=0
"$CAL" doctor -q --fail-on error --data "$DX/calib_nan" "$DX/base.onnx" >/dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] && cli_ok fail_on_error || cli_fail fail_on_error "exit $rc, expected 1"
expect_success fail_on_clean -- "$CAL" doctor -q --fail-on error --data "$DX/calib" \
    "$DX/base.onnx"
# usage errors: exit 2, the message first ("calibrate: ..."), then a hint
expect_usage no_data "--data" -- "$CAL" doctor "$DX/base.onnx"
expect_usage bad_fail_on "--fail-on 'bad'" -- "$CAL" doctor --fail-on bad --data "$DX/calib" \
    "$DX/base.onnx"
expect_error missing_quantized 2 "nope.onnx" -- "$CAL" doctor --data "$DX/calib" \
    "$DX/base.onnx" "$DX/nope.onnx"

# the text report stays within 100 columns
"$CAL" doctor -q --all --data "$DX/calib" --eval "$DX/eval_shift" "$DX/head.onnx" \
    >"$CLI_TMP/report" 2>&1
wide=$(awk 'length > 100' "$CLI_TMP/report" | head -1)
[ -z "$wide" ] && cli_ok report_width || cli_fail report_width "line over 100: $wide"

# Integration models with their good data: no error-severity finding (no false alarm).
# Under QC_ASAN a few samples of two models (the code paths, not the statistics).
if [ -f models/manifest.txt ] && [ -d models/cache/data ]; then
    MODELS=$(awk '$1 == "model" { print $2 }' models/manifest.txt)
    ARGS=()
    if [ "${QC_ASAN:-0}" = 1 ]; then
        MODELS="nudenet magika"
        ARGS=(--limit 2 --eval-limit 1)
    fi
    for m in $MODELS; do
        path=$PWD/$(model_path "$m")
        data=$PWD/models/cache/data/$m
        if [ ! -f "$path" ] || [ ! -d "$data/calib" ]; then
            continue
        fi
        # run_doctor works in the fixture folder: absolute paths
        expect absent_error "integration_$m" "" "" "" -- --data "$data/calib" \
            --eval "$data/eval" "${ARGS[@]}" "$path"
    done
fi

cli_done doctor
