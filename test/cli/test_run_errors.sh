#!/usr/bin/env bash
# `calibrate run` on bad input: one line on stderr naming the problem, and the documented exit
# status (2 usage/input, 3 unsupported model, 4 I/O).
# shellcheck source=test/cli/lib.sh
source "$(dirname "$0")/lib.sh"
OUT=$CLI_TMP/out-run

expect_success run_ok -- "$CAL" run "$FX/conv.onnx" --data "$FX/data_ok" -o "$OUT" -q
if [ -f "$OUT/s0/y.npy" ]; then cli_ok run_ok_writes_output
else cli_fail run_ok_writes_output "$OUT/s0/y.npy missing"; fi

for f in truncated garbage empty; do
    expect_error "model_$f" 2 "$FX/$f.onnx" -- \
        "$CAL" run "$FX/$f.onnx" --data "$FX/data_ok" -o "$OUT" -q
done
expect_error model_missing 2 "$FX/nope.onnx" -- \
    "$CAL" run "$FX/nope.onnx" --data "$FX/data_ok" -o "$OUT" -q
expect_error model_is_folder 2 "$FX/data_ok" -- \
    "$CAL" run "$FX/data_ok" --data "$FX/data_ok" -o "$OUT" -q
expect_error data_missing 2 "$FX/no_such_folder" -- \
    "$CAL" run "$FX/conv.onnx" --data "$FX/no_such_folder" -o "$OUT" -q
expect_error data_empty 2 "$FX/data_empty" -- \
    "$CAL" run "$FX/conv.onnx" --data "$FX/data_empty" -o "$OUT" -q
expect_error npy_wrong_shape 2 "s0.npy" "[1,3,4,4]" "[1,3,8,8]" -- \
    "$CAL" run "$FX/conv.onnx" --data "$FX/data_shape" -o "$OUT" -q
expect_error npy_wrong_dtype 2 "s0.npy" "int64" "float32" -- \
    "$CAL" run "$FX/conv.onnx" --data "$FX/data_dtype" -o "$OUT" -q
expect_error unsupported_op 3 "RandomNormalLike" "noise" "13" -- \
    "$CAL" run "$FX/unsupported.onnx" --data "$FX/data_ok" -o "$OUT" -q
expect_error output_not_writable 4 "$FX/conv.onnx" -- \
    "$CAL" run "$FX/conv.onnx" --data "$FX/data_ok" -o "$FX/conv.onnx/sub" -q

# OpenBLAS's kernels (tools/blas_core.c): on a CPU with AVX2 + FMA the tool runs kernels that
# use them, even where OpenBLAS's model table falls back to pre-AVX2 ones (Debian 12's 0.3.21
# on 5th-generation Xeons picks Prescott); a core the user sets is kept.
blas_core() { sed -n 's/^bench: OpenBLAS kernels: \([^ ]*\).*/\1/p'; }
core=$(env -u OPENBLAS_CORETYPE "$CAL" bench "$FX/conv.onnx" --data "$FX/data_ok" --runs 1 \
    2>&1 | blas_core)
pre_avx2=" Katmai Coppermine Northwood Prescott Banias Core2 Penryn Dunnington Nehalem Atom \
Sandybridge Athlon Opteron Barcelona Nano Bobcat Bulldozer Piledriver Steamroller Excavator "
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
core_auto=$core
if [ -z "$core" ]; then
    cli_fail blas_core_for_cpu "calibrate bench printed no 'OpenBLAS kernels' line"
elif [[ $cpu_flags == *" avx2 "* && $cpu_flags == *" fma "* && $pre_avx2 == *" $core "* ]]; then
    cli_fail blas_core_for_cpu "the CPU has AVX2 + FMA, OpenBLAS runs $core kernels"
else
    cli_ok blas_core_for_cpu
fi
core=$(OPENBLAS_CORETYPE=Prescott "$CAL" bench "$FX/conv.onnx" --data "$FX/data_ok" --runs 1 \
    2>&1 | blas_core)
if [ "$core" = Prescott ]; then cli_ok blas_core_user_choice_kept
else cli_fail blas_core_user_choice_kept "OPENBLAS_CORETYPE=Prescott, kernels '$core'"; fi
# --version names the kernels too (tools/run_tests.sh takes the choice from it)
if env -u OPENBLAS_CORETYPE "$CAL" --version | grep -q "^OpenBLAS kernels: $core_auto "; then
    cli_ok version_names_blas_core
else
    cli_fail version_names_blas_core "calibrate --version: $("$CAL" --version | tr '\n' '|')"
fi
# OpenBLAS runs on one thread whatever the environment asks (its idle workers would spin at
# the start: tools/blas_core.c), the user's core choice kept through the re-execution
v=$(OPENBLAS_NUM_THREADS=2 OPENBLAS_CORETYPE=Prescott "$CAL" --version)
if grep -q "^OpenBLAS kernels: Prescott .*, 1 thread$" <<<"$v"; then
    cli_ok blas_one_thread
else
    cli_fail blas_one_thread "OPENBLAS_NUM_THREADS=2 calibrate --version: $(tr '\n' '|' <<<"$v")"
fi

# bench --profile: per-op and per-node kernel time; the JSON lists every node, its times add
# up to the kernel total, which cannot exceed the mean latency per sample of the same runs
# (each node is timed inside its run's timed span), and the median lies within the runs.
if "$CAL" bench "$FX/conv.onnx" --data "$FX/data_ok" --runs 3 --profile 5 \
        --profile-json "$CLI_TMP/prof.json" >"$CLI_TMP/prof.out" 2>&1 &&
        grep -q "^  Conv " "$CLI_TMP/prof.out" &&
        msg=$("$PY" - "$CLI_TMP/prof.json" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
ops = [n["op"] for n in p["nodes"]]
assert p["format"] == "qcal-profile" and ops == ["Conv", "Relu"], ops
ms = {n["op"]: n["ms"] for n in p["nodes"]}
assert ms["Conv"] > 0 and ms["Relu"] >= 0, ms
assert abs(sum(ms.values()) - p["kernel_ms"]) < 1e-9, (ms, p["kernel_ms"])
assert p["kernel_ms"] <= p["mean_ms"] * (1 + 1e-9), (p["kernel_ms"], p["mean_ms"])
assert 0 < p["median_ms"] and 0 < p["mean_ms"], (p["median_ms"], p["mean_ms"])
print("Conv %.4f ms of %.4f (mean)" % (ms["Conv"], p["mean_ms"]))
PYEOF
); then
    cli_ok "bench_profile: $msg"
else
    cli_fail bench_profile "$(tail -3 "$CLI_TMP/prof.out" | tr '\n' '|') $msg"
fi

# bench runs a QDQ model as `calibrate run` does: the weights' DequantizeLinear in the warm-up
# pass only (no kernel time in the timed ones), each activation's Q -> DQ pair as one step.
if "$CAL" --data "$FX/data_ok" "$FX/conv.onnx" -o "$CLI_TMP/conv.q.onnx" -q \
        >"$CLI_TMP/qdq.out" 2>&1 &&
        "$CAL" bench "$CLI_TMP/conv.q.onnx" --data "$FX/data_ok" --runs 2 \
        --profile-json "$CLI_TMP/qprof.json" >>"$CLI_TMP/qdq.out" 2>&1 &&
        msg=$("$PY" - "$CLI_TMP/qprof.json" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
dq = [n for n in p["nodes"] if n["op"] == "DequantizeLinear"]
ms = {n["op"]: n["ms"] for n in p["nodes"] if n["op"] == "Conv"}
assert ms and ms["Conv"] > 0, p["nodes"]
cached = [n["name"] for n in dq if n["ms"] == 0]
assert cached, [(n["name"], n["ms"]) for n in dq]
print(f"{len(dq)} DequantizeLinear, {len(cached)} without kernel time in the timed runs")
PYEOF
); then
    cli_ok "bench_qdq: $msg"
else
    cli_fail bench_qdq "$(tail -3 "$CLI_TMP/qdq.out" | tr '\n' '|') $msg"
fi

# tools/profile_vs_ort.py: both sides profiled and matched node by node (onnxruntime fuses the
# fixture's Conv + Relu into one NCHWc kernel named after the Relu's output: it must count as
# the Conv's time)
if out=$("$PY" tools/profile_vs_ort.py "$FX/conv.onnx" --data "$FX/data_ok" --rounds 1 \
        --runs 2 --calibrate "$CAL" 2>&1) &&
        echo "$out" | awk '$1 == "Conv" && $2 + 0 > 0 && $3 + 0 > 0 { ok = 1 } END { exit !ok }' &&
        echo "$out" | grep -q "kernel ms/sample qcal"; then
    cli_ok "profile_vs_ort: $(echo "$out" | grep -E '^Conv ' | tr -s ' ')"
else
    cli_fail profile_vs_ort "$(echo "$out" | tail -3 | tr '\n' '|')"
fi

# Usage errors: exit 2, the message first ("calibrate: ..."), then a hint is fine.
usage_cases=(
    "no_model|run"
    "no_data|run $FX/conv.onnx -o $OUT"
    "no_output|run $FX/conv.onnx --data $FX/data_ok"
    "unknown_option|run $FX/conv.onnx --data $FX/data_ok -o $OUT --bogus"
    "bad_limit|run $FX/conv.onnx --data $FX/data_ok -o $OUT --limit x"
    "bench_profile_count|bench $FX/conv.onnx --data $FX/data_ok --profile 0"
)
for c in "${usage_cases[@]}"; do
    name=usage_${c%%|*}
    args=${c#*|}
    rc=0
    # shellcheck disable=SC2086
    "$CAL" $args >/dev/null 2>"$CLI_TMP/err" </dev/null || rc=$?
    if [ "$rc" = 2 ] && head -1 "$CLI_TMP/err" | grep -q '^calibrate: '; then
        cli_ok "$name"
    else
        cli_fail "$name" "'calibrate $args': exit $rc, stderr: $(head -c 300 "$CLI_TMP/err")"
    fi
done

cli_done cli-run
