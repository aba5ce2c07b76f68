#!/usr/bin/env bash
# `calibrate compare` --method auto and mixed precision: usage errors; the auto row and its
# choices on a fixture; `calibrate --method auto` byte-identical to compare's auto model;
# then on integration models (default magika; QC_AUTO_MODELS="magika ddddocr ...") the
# onnxruntime checks of test/oracles/compare_auto_check.py: auto's model at least as good as
# the best single method's, --target-sqnr reached on the eval set, --keep-float.
# Environment: QC_AUTO_CALIB / QC_AUTO_EVAL (samples, default 32 / 32); under QC_ASAN=1 a few
# samples and two methods (the sanitizers need the code paths).
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
M=$FX/conv.onnx

D=(--data "$FX/data_ok" --eval "$FX/data_ok")
expect_usage usage_auto "--auto 'maybe'" -- "$CAL" compare "${D[@]}" "$M" --auto maybe
expect_usage usage_keep_float "--keep-float 'x'" -- "$CAL" compare "${D[@]}" "$M" \
    --keep-float x
expect_usage usage_target "--target-sqnr 'loud'" -- "$CAL" compare "${D[@]}" "$M" \
    --target-sqnr loud
expect_usage usage_keep_and_target "exclude each other" -- "$CAL" compare "${D[@]}" "$M" \
    --keep-float 1 --target-sqnr 30
expect_error auto_params_in 2 "--method auto" "--data" -- "$CAL" "$M" --method auto \
    --params-in "$FX/none.json" -q

# The fixture: an auto row whose choices add up, auto's verdict against the best single
# method in the JSON, --write-auto written.
if "$CAL" compare "${D[@]}" "$M" --json "$CLI_TMP/fx.json" --write-auto "$CLI_TMP/fx-auto.onnx" \
        >"$CLI_TMP/fx.out" 2>&1 && [ -s "$CLI_TMP/fx-auto.onnx" ] &&
   grep -q '^compare: auto: ' "$CLI_TMP/fx.out" &&
   awk 'length > 100 { bad = 1 } END { exit bad }' "$CLI_TMP/fx.out" &&
   v=$("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
a = next(c for c in r["candidates"] if c["name"] == "auto")
au, v = a["auto"], r["auto_vs_best_single"]
assert a["calibrate_args"] == ["--method", "auto", "--no-bias-correction"], a["calibrate_args"]
n = len(au["tensors"]["name"])
assert n > 0 and sum(o["tensors"] for o in au["options"]) == n, au["options"]
single = [c for c in r["candidates"] if c["name"] != "auto"]
best = max(single, key=lambda c: float(c["sqnr_db"]))
assert v["best_single"] == best["name"], (v["best_single"], best["name"])
assert float(v["final_metric"]) >= float(v["best_single_metric"]), v
print("%d tensors; auto: %s %.2f dB, best single %s %.2f dB" % (n, v["final"],
      float(v["final_sqnr_db"]), v["best_single"], float(v["best_single_sqnr_db"])))' \
    "$CLI_TMP/fx.json" 2>&1)
then
    cli_ok "fixture_auto: $v"
else
    cli_fail fixture_auto "$(tail -2 "$CLI_TMP/fx.out" | tr '\n' ' ') $v"
fi

# calibrate --method auto = compare's auto candidate, byte for byte (compare evaluates and
# writes candidates before bias correction).
same_model() {
    local name=$1 model=$2 data=$3 evald=$4
    shift 4
    if "$CAL" compare --data "$data" --eval "$evald" "$model" --auto only --eval-limit 1 \
            --write-best "$CLI_TMP/$name-c.onnx" -q "$@" >"$CLI_TMP/$name.log" 2>&1 &&
       "$CAL" --data "$data" "$model" --method auto --no-bias-correction \
            -o "$CLI_TMP/$name-q.onnx" -q "$@" \
            >>"$CLI_TMP/$name.log" 2>&1 &&
       cmp -s "$CLI_TMP/$name-c.onnx" "$CLI_TMP/$name-q.onnx"; then
        cli_ok "$name: calibrate --method auto = compare --auto only"
    else
        cli_fail "$name" "$(tail -1 "$CLI_TMP/$name.log") (or the models differ)"
    fi
}
same_model calibrate_auto_fixture "$M" "$FX/data_ok" "$FX/data_ok"

N_CALIB=${QC_AUTO_CALIB:-32}
N_EVAL=${QC_AUTO_EVAL:-32}
cli_models compare_auto "$N_CALIB" "$N_EVAL" || exit
data=models/cache/data/magika
lim=8
[ "${QC_ASAN:-0}" = 1 ] && lim=3
same_model calibrate_auto_magika "$(model_path magika)" "$data/calib" "$data/eval" --limit "$lim"

ARGS=(--limit "$N_CALIB" --eval-limit "$N_EVAL")
# under QC_ASAN two methods: auto, the sensitivity and the mixed search run the same code
# whatever the candidates (ten of them took 40 of the 90 s there)
[ "${QC_ASAN:-0}" = 1 ] && ARGS=(--limit 3 --eval-limit 2 --methods minmax,ema)
for m in ${QC_AUTO_MODELS:-magika}; do
    data=models/cache/data/$m
    tally "auto_$m" "$PY" test/oracles/compare_auto_check.py "$CAL" "$(model_path "$m")" \
        --calib "$data/calib" --eval "$data/eval" --work "$CLI_TMP/auto-$m" --name "$m" \
        "${ARGS[@]}"
done
cli_done compare_auto
