#!/usr/bin/env bash
# `calibrate compare`: usage errors, NaN/Inf samples; on each integration model
# (models/manifest.txt) every default candidate from ONE float pass over the calibration data
# (the JSON's float_passes, counted by the executor), the winner byte-identical to
# `calibrate` with its options, and a ranking that agrees with onnxruntime running each
# candidate quantized by `calibrate` (Spearman >= 0.9, test/oracles/compare_check.py); both
# evaluation schedules give the same numbers; the default held-out split.
# Environment: QC_CMP_CALIB / QC_CMP_EVAL (calibration and eval samples, default 32 / 16);
# under QC_ASAN=1 a few samples, two models and no ranking check (the ranking needs the eval
# set; the sanitizers need the code paths).
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
M=$FX/conv.onnx

expect_usage usage_metric "--metric 'psnr'" -- "$CAL" compare --data "$FX/data_ok" "$M" \
    --metric psnr
expect_usage usage_methods "unknown method 'kl'" -- "$CAL" compare --data "$FX/data_ok" "$M" \
    --methods minmax,kl
expect_usage usage_percentiles "percentile '120'" -- "$CAL" compare --data "$FX/data_ok" \
    "$M" --percentiles 99.9,120
expect_usage usage_per_channel "--per-channel 'maybe'" -- "$CAL" compare --data \
    "$FX/data_ok" "$M" --per-channel maybe
expect_usage usage_no_data "--data DIR is required" -- "$CAL" compare "$M"
expect_usage usage_bad_limit "--eval-limit '0'" -- "$CAL" compare --data "$FX/data_ok" "$M" \
    --eval-limit 0
expect_error no_eval_sample 2 "no evaluation sample" -- "$CAL" compare --data "$FX/data_ok" "$M"
expect_error eval_empty 2 "data_empty: no samples" -- "$CAL" compare --data "$FX/data_ok" \
    --eval "$FX/data_empty" "$M"
expect_error eval_bad_shape 2 "s0.npy" -- "$CAL" compare --data "$FX/data_ok" \
    --eval "$FX/data_shape" "$M"

# A tiny model end to end: table, JSON, best model written.
if "$CAL" compare --data "$FX/data_ok" --eval "$FX/data_ok" "$M" --json "$CLI_TMP/fx.json" \
        --write-best "$CLI_TMP/fx-best.onnx" >"$CLI_TMP/fx.out" 2>&1 &&
   [ -s "$CLI_TMP/fx-best.onnx" ] && grep -q '^   1  ' "$CLI_TMP/fx.out" &&
   awk 'length > 100 { bad = 1 } END { exit bad }' "$CLI_TMP/fx.out"; then
    cli_ok "fixture_end_to_end"
else
    cli_fail fixture_end_to_end "$(tail -3 "$CLI_TMP/fx.out" | tr '\n' ' ')"
fi

# NaN/Inf samples: skipped with a warning (calibration and eval), an error with --strict.
if ! "$PY" - "$FX" <<'EOF'
import os, sys
import numpy as np
fx = sys.argv[1]
good = np.load(os.path.join(fx, "data_ok", "s0.npy"))
bad = good.copy()
bad[0, 1, 2, 3] = np.nan
os.makedirs(os.path.join(fx, "cmp_nan"), exist_ok=True)
np.save(os.path.join(fx, "cmp_nan", "s0.npy"), good)
np.save(os.path.join(fx, "cmp_nan", "s1.npy"), bad)
EOF
then
    cli_fail setup_nan "could not write the NaN data folder"
fi
rc=0
"$CAL" compare --data "$FX/cmp_nan" --eval "$FX/cmp_nan" "$M" --json "$CLI_TMP/nan.json" -q \
    >/dev/null 2>"$CLI_TMP/nan.err" || rc=$?
if [ "$rc" = 0 ] && grep -q "warning: .*s1.npy: 1 NaN/Inf values, sample skipped" \
        "$CLI_TMP/nan.err" && grep -q "warning: 1 eval sample with NaN/Inf skipped" \
        "$CLI_TMP/nan.err" && v=$("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
got = (r["calib_samples"], r["calib_skipped"], r["float_passes"], r["eval_samples"],
       r["eval_skipped"])
assert got == (1, 1, 1, 1, 1), got
print("1 calibration and 1 eval sample skipped")' "$CLI_TMP/nan.json" 2>&1); then
    cli_ok "nan_skipped: $v"
else
    cli_fail nan_skipped "exit $rc: $(head -c 300 "$CLI_TMP/nan.err") $v"
fi
expect_error nan_strict 2 "s1.npy: 1 NaN/Inf values (--strict)" -- "$CAL" compare --data \
    "$FX/cmp_nan" --eval "$FX/data_ok" "$M" --strict
expect_error nan_strict_eval 2 "eval sample s1.npy: 1 NaN/Inf values (--strict)" -- "$CAL" \
    compare --data "$FX/data_ok" --eval "$FX/cmp_nan" "$M" --strict

N_CALIB=${QC_CMP_CALIB:-32}
N_EVAL=${QC_CMP_EVAL:-16}
cli_models compare "$N_CALIB" "$N_EVAL" || exit
CHECK_ARGS=(--limit "$N_CALIB" --eval-limit "$N_EVAL")
MODELS=$(awk '$1 == "model" { print $2 }' models/manifest.txt)
if [ "${QC_ASAN:-0}" = 1 ]; then
    CHECK_ARGS=(--limit 2 --eval-limit 1 --no-ranking)
    MODELS="nudenet magika"             # an image detector and an int32-input classifier
fi

for m in $MODELS; do
    data=models/cache/data/$m
    tally "check_$m" "$PY" test/oracles/compare_check.py "$CAL" "$(model_path "$m")" \
        --calib "$data/calib" --eval "$data/eval" --work "$CLI_TMP/$m" --name "$m" \
        "${CHECK_ARGS[@]}"
done

# mse and entropy give Sigmoid outputs their observed range (quantizer.c mark_gates); the
# candidates' quantizers are fed ranges from compare's shared observers and must apply the
# same rule: each method alone, its model byte-identical to `calibrate` with its options
# (nudenet: 57 Sigmoid outputs; both also merge twelve Concat outputs' histograms from their
# inputs' by one rule, src/quant/derived.c, whose exactness quant_behaviour.py concat_union
# checks against direct binning). magika's two tanh GELUs are chains of monotone maps whose
# ranges calibrate derives from their inputs' (derived.c; percentile: the Mul by k, the Tanh,
# the Add of 1 and the Mul by 0.5; mse and entropy: the scalings), compare by the same rule.
# Not under QC_ASAN (ten runs).
if [ "${QC_ASAN:-0}" != 1 ]; then
    for mm in nudenet:mse nudenet:entropy magika:percentile magika:mse magika:entropy; do
        m=${mm%%:*} meth=${mm#*:}
        data=models/cache/data/$m
        name=derived_same_as_calibrate_${m}_$meth
        j=$CLI_TMP/$name.json
        if ! "$CAL" compare --data "$data/calib" --eval "$data/eval" "$(model_path $m)" \
                --limit 4 --eval-limit 2 --methods "$meth" --per-channel yes --auto no \
                --json "$j" --write-best "$CLI_TMP/$name.best.onnx" -q >"$CLI_TMP/$name.log" 2>&1
        then
            cli_fail "$name" "compare: $(tail -1 "$CLI_TMP/$name.log")"
            continue
        fi
        mapfile -t args < <("$PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("\n".join(next(c for c in r["candidates"] if c["name"] == r["best"])["calibrate_args"]))' \
            "$j")
        if ! "$CAL" --data "$data/calib" "$(model_path $m)" --limit 4 -o "$CLI_TMP/$name.onnx" \
                -q "${args[@]}" >>"$CLI_TMP/$name.log" 2>&1; then
            cli_fail "$name" "calibrate ${args[*]}: $(tail -1 "$CLI_TMP/$name.log")"
        elif cmp -s "$CLI_TMP/$name.onnx" "$CLI_TMP/$name.best.onnx"; then
            cli_ok "$name: --write-best = calibrate ${args[*]}"
        else
            cli_fail "$name" "--write-best differs from calibrate ${args[*]}"
        fi
    done
fi

# Side by side (one float pass per eval sample) and one candidate at a time (the float pass
# repeated) give the same numbers; magika also ranks by top-1 (a classifier).
m=magika
data=models/cache/data/$m
SCHED_ARGS=()
[ "${QC_ASAN:-0}" = 1 ] && SCHED_ARGS=(--methods minmax,ema --auto no)   # fewer candidates
for s in sample-major candidate-major; do
    "$CAL" compare --data "$data/calib" --eval "$data/eval" "$(model_path $m)" --limit 3 \
        --eval-limit 2 --schedule "$s" --metric top1 --json "$CLI_TMP/$s.json" -q \
        "${SCHED_ARGS[@]}" \
        >"$CLI_TMP/$s.log" 2>&1 || cli_fail "schedule_$s" "$(tail -1 "$CLI_TMP/$s.log")"
done
if v=$("$PY" - "$CLI_TMP/sample-major.json" "$CLI_TMP/candidate-major.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
strip = lambda c: {k: v for k, v in c.items() if not k.endswith("seconds")}
assert a["schedule"] == "sample-major" and b["schedule"] == "candidate-major"
assert a["eval_float_passes"] == 2 and b["eval_float_passes"] == 2 * len(b["candidates"])
assert a["ranking"] == b["ranking"], (a["ranking"], b["ranking"])
for x, y in zip(a["candidates"], b["candidates"]):
    assert strip(x) == strip(y), x["name"]
assert all(c["top1"] is not None for c in a["candidates"]), "magika has no top-1"
print(f"{len(a['candidates'])} candidates, same numbers; best by top-1: {a['best']}")
EOF
); then
    cli_ok "schedules_agree: $v"
else
    cli_fail schedules_agree "$(echo "$v" | tail -1)"
fi

# --layer-samples N: the per-layer figures are those of an evaluation on the first N samples
# alone (same bits), the output metrics still cover every sample. Under QC_ASAN two methods
# (and auto, which auto_hybrids below reads from ls-all.json): the per-layer code is the
# same for every candidate.
m=magika
data=models/cache/data/$m
LS_ARGS=()
[ "${QC_ASAN:-0}" = 1 ] && LS_ARGS=(--methods minmax,ema)
"$CAL" compare --data "$data/calib" --eval "$data/eval" "$(model_path $m)" --limit 3 \
    --eval-limit 3 --layer-samples 0 --json "$CLI_TMP/ls-all.json" -q "${LS_ARGS[@]}" \
    >"$CLI_TMP/ls.log" 2>&1 || cli_fail layer_samples_run "$(tail -1 "$CLI_TMP/ls.log")"
"$CAL" compare --data "$data/calib" --eval "$data/eval" "$(model_path $m)" --limit 3 \
    --eval-limit 5 --layer-samples 3 --json "$CLI_TMP/ls-3.json" -q "${LS_ARGS[@]}" \
    >>"$CLI_TMP/ls.log" 2>&1 ||
    cli_fail layer_samples_run "$(tail -1 "$CLI_TMP/ls.log")"
if v=$("$PY" - "$CLI_TMP/ls-all.json" "$CLI_TMP/ls-3.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for x, y in zip(a["candidates"], b["candidates"]):
    assert x["name"] == y["name"]
    assert (x["eval_samples"], x["layer_eval_samples"]) == (3, 3), x["name"]
    assert (y["eval_samples"], y["layer_eval_samples"]) == (5, 3), y["name"]
    assert x["layers"] == y["layers"], f'{x["name"]}: per-layer figures differ'
    assert x["layers"]["name"], f'{x["name"]}: no layer'
print(f"{len(a['candidates'])} candidates: per-layer figures of a 5-sample run = 3-sample run")
EOF
); then
    cli_ok "layer_samples: $v"
else
    cli_fail layer_samples "$(echo "$v" | tail -1)"
fi

# auto's confirmation on the output: hybrids of the best single method S with auto's range on
# the tensors where S's costs 2x (8x, 32x) auto's. With no such tensor every hybrid is S:
# nothing is run (magika on 16 samples); with one (magika on 3) they are measured on the
# calibration samples.
"$CAL" compare --data "$data/calib" --eval "$data/eval" "$(model_path $m)" --limit 16 \
    --eval-limit 8 --json "$CLI_TMP/hy-16.json" -q >"$CLI_TMP/hy.log" 2>&1 ||
    cli_fail hybrids_run "$(tail -1 "$CLI_TMP/hy.log")"
if v=$("$PY" - "$CLI_TMP/ls-all.json" "$CLI_TMP/hy-16.json" 2>&1 <<'EOF'
import json, sys
three, sixteen = (json.load(open(p))["auto_vs_best_single"] for p in sys.argv[1:3])
c3, c16 = three["confirmation"], sixteen["confirmation"]
assert c3["hybrids_measured"] >= 1 and c3["calib_samples"] == 3, c3
assert c16["hybrids_measured"] == 0 and c16["calib_samples"] == 0, c16
assert c16["calib_sqnr_db"] is None and c16["tau"] == 0, c16
assert sixteen["fallback"] and sixteen["final"] == sixteen["best_single"], sixteen
assert c16["sqnr_db"] == sixteen["best_single_sqnr_db"], sixteen
print(f"3 samples: {c3['hybrids_measured']} hybrid(s) measured on 3; 16 samples: none to try, "
      f"auto = {sixteen['final']}")
EOF
); then
    cli_ok "auto_hybrids: $v"
else
    cli_fail auto_hybrids "$(echo "$v" | tail -1)"
fi

# After the --layer-samples samples, candidates run on an executor that folds each quantized
# SiLU chain (Conv -> Q/DQ -> Sigmoid -> Q/DQ -> Mul -> Q/DQ, 57 of them in YOLOv8n) into its
# convolution: the output figures must be those of the unfused nodes, to the bit.
m=nudenet
for ls in 0 1; do
    "$CAL" compare --data "models/cache/data/$m/calib" --eval "models/cache/data/$m/eval" \
        "$(model_path $m)" --limit 3 --eval-limit 3 --methods minmax --auto no \
        --layer-samples $ls --json "$CLI_TMP/fuse-$ls.json" -q \
        >>"$CLI_TMP/fuse.log" 2>&1 || cli_fail fused_eval_run "$(tail -1 "$CLI_TMP/fuse.log")"
done
if v=$("$PY" - "$CLI_TMP/fuse-0.json" "$CLI_TMP/fuse-1.json" 2>&1 <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert len(a["candidates"]) == len(b["candidates"]) == 2
for x, y in zip(a["candidates"], b["candidates"]):
    assert x["name"] == y["name"]
    assert (x["layer_eval_samples"], y["layer_eval_samples"]) == (3, 1), x["name"]
    for k in ("sqnr_db", "cosine", "max_abs", "outputs"):
        assert x[k] == y[k], f'{x["name"]}: {k} differs with the fused chains'
    # every quantized activation reaches the per-layer figures (a hooked executor that
    # fused a layer's Q/DQ into its producer would call the hook under the producer's node)
    for z in (x, y):
        lay = z["layers"]
        empty = [n for n, v in zip(lay["name"], lay["values"]) if not v]
        assert not empty, f'{z["name"]}: {len(empty)} layers without values, e.g. {empty[0]}'
print(f"{len(a['candidates'])} candidates, 3 samples: same output figures with 2 of them fused, "
      "every layer measured")
EOF
); then
    cli_ok "fused_eval_same: $v"
else
    cli_fail fused_eval_same "$(echo "$v" | tail -1)"
fi

# Default split: every 4th sample of --data held out (8 samples: 6 calibrate, 2 evaluate).
m=magika
if "$CAL" compare --data "models/cache/data/$m/calib" "$(model_path $m)" --limit 8 \
        --methods minmax,percentile --percentiles 99.99 --json "$CLI_TMP/split.json" -q \
        >"$CLI_TMP/split.log" 2>&1 &&
   v=$("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
got = (r["calib_samples"], r["float_passes"], r["eval_samples"], len(r["candidates"]))
assert got == (6, 6, 2, 5), got
print("6 calibration + 2 eval samples, 5 candidates (4 + auto)")' "$CLI_TMP/split.json" 2>&1); then
    cli_ok "default_split: $v"
else
    cli_fail default_split "$(tail -1 "$CLI_TMP/split.log") $v"
fi
cli_done compare
