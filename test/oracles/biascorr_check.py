#!/usr/bin/env python3
"""`calibrate --bias-correction` on a generated model whose weight rounding shifts an output
mean on purpose: conv1's per-tensor weight scale is set by one large weight, and all its other
weights sit at 0.55 of a quantization step, so every one rounds up by 0.45 of a step; with
positive inputs the quantized conv1 output is systematically too high. The check runs the float
model and both quantized models (--no-bias-correction / --bias-correction) in onnxruntime on
held-out samples and requires the per-channel mean error of the output to shrink, the rest of
the model to be unchanged, the int32 bias invariant (scale = input scale x weight scale) to hold,
and calibrate without either flag to write the corrected model (correction is the default).

    biascorr_check.py CALIBRATE WORKDIR

Prints "ok   NAME: figures" or "FAIL NAME: why" per check; exit status 1 if one failed.
"""
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import fail, failures, ok  # noqa: E402

F32 = np.float32
BIAS_LIM = 2**30 - 1         # int32 biases stay within half of int32 (quantizer.c finish_bias)


def build(work):
    rng = np.random.default_rng(7)
    step = 0.01
    w1 = np.full((8, 8, 3, 3), 0.55 * step, F32)
    w1[0, 0, 1, 1] = 127 * step          # sets the per-tensor scale to `step`
    b1 = rng.normal(0, 0.1, 8).astype(F32)
    w2 = rng.normal(0, 0.3, (4, 8, 1, 1)).astype(F32)
    b2 = rng.normal(0, 0.1, 4).astype(F32)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2")]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"),
                                                        (b2, "b2"))]
    g = helper.make_graph(nodes, "biasshift",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 12, 12])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    path = os.path.join(work, "biasshift.onnx")
    onnx.save(m, path)
    calib = os.path.join(work, "calib")
    os.makedirs(calib, exist_ok=True)
    for i in range(16):
        np.save(os.path.join(calib, f"s{i:02d}.npy"), rng.uniform(0, 1, (1, 8, 12, 12)).astype(F32))
    held = [rng.uniform(0, 1, (1, 8, 12, 12)).astype(F32) for _ in range(16)]
    return path, calib, held


def outputs(path, held):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"x": x})[0] for x in held])


def calibrate(cal, model, calib, out, *flags):
    r = subprocess.run([cal, "--data", calib, model, "-o", out, "-q", *flags],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"calibrate {' '.join(flags)} exited {r.returncode}: "
                           f"{r.stderr.strip()[:300]}")
    return onnx.load(out)


def stash_runs(cal, model, calib, work, name="bias_correction_stash", want=16):
    """Bias correction measured from the float values the calibration pass kept (the
    default), from float runs of its own (QC_BC_STASH_BYTES=0: nothing kept; a budget that
    holds a few of the samples: all or nothing, so nothing kept either): the same model,
    byte for byte, and the summary says how many samples came from the pass (want)."""
    got, seen = {}, {}
    for budget in ("", "0", "40000"):
        out = os.path.join(work, f"{name}{budget or 'default'}.onnx")
        env = dict(os.environ, QC_BC_STASH_BYTES=budget)
        r = subprocess.run([cal, "--data", calib, model, "-o", out], env=env,
                           capture_output=True, text=True, timeout=300)
        line = next((ln for ln in r.stdout.splitlines() if "bias correction:" in ln), "")
        if r.returncode != 0 or not line:
            return fail(name, f"QC_BC_STASH_BYTES={budget!r}: exit {r.returncode}, "
                              f"{(r.stderr or r.stdout).strip()[:200]}")
        m = re.search(r"(\d+) with the float values the calibration pass kept", line)
        seen[budget] = int(m.group(1)) if m else 0
        with open(out, "rb") as f:
            got[budget] = f.read()
    if not (seen[""] == want and seen["0"] == 0 and seen["40000"] == 0):
        return fail(name, f"samples from the pass: {seen} (want {want}, 0, 0)")
    if not got[""] == got["0"] == got["40000"]:
        return fail(name, "the models differ")
    ok(name, f"the same model from {seen['']}, {seen['0']} and {seen['40000']} samples' "
             "kept float values")


def inits(m):
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def bias_invariant(m):
    """'' if every int32 bias DQ's scale is its Conv's input scale x weight scale."""
    it = inits(m)
    prod = {o: n for n in m.graph.node for o in n.output}
    for n in m.graph.node:
        if n.op_type != "Conv" or len(n.input) < 3:
            continue
        bdq = prod.get(n.input[2])
        if bdq is None or bdq.op_type != "DequantizeLinear":
            return f"{n.name}: bias is not behind a DequantizeLinear"
        q = it[bdq.input[0]]
        if q.dtype != np.int32 or np.abs(q.astype(np.int64)).max() > BIAS_LIM:
            return f"{n.name}: bias {q.dtype} max {np.abs(q).max()} beyond int32 limit"
        x_scale = it[prod[n.input[0]].input[1]]
        w_scale = it[prod[n.input[1]].input[1]]
        want = (x_scale * w_scale).astype(F32)
        if not np.allclose(it[bdq.input[1]], want, rtol=1e-6, atol=0):
            return f"{n.name}: bias scale != input scale x weight scale"
    return ""


def channel_err(q, f):
    return np.abs((q - f).mean(axis=(0, 2, 3))).mean()


def sqnr(q, f):
    return 10 * np.log10((f ** 2).sum() / max(((q - f) ** 2).sum(), 1e-30))


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cal, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    model, calib, held = build(work)
    ref = outputs(model, held)
    for bias in ("int32", "float"):
        name = f"bias_correction_{bias}"
        try:
            p0, p1 = os.path.join(work, f"{bias}.onnx"), os.path.join(work, f"{bias}.bc.onnx")
            pd = os.path.join(work, f"{bias}.default.onnx")
            m0 = calibrate(cal, model, calib, p0, "--bias", bias, "--no-bias-correction")
            m1 = calibrate(cal, model, calib, p1, "--bias", bias, "--bias-correction")
            calibrate(cal, model, calib, pd, "--bias", bias)
            onnx.checker.check_model(m1, full_check=True)
        except Exception as e:  # noqa: BLE001 - calibrate or checker failure
            fail(name, str(e).splitlines()[0][:300])
            continue
        q0, q1 = outputs(p0, held), outputs(p1, held)
        e0, e1 = channel_err(q0, ref), channel_err(q1, ref)
        s0, s1 = sqnr(q0, ref), sqnr(q1, ref)
        i0, i1 = inits(m0), inits(m1)
        changed = sorted(k for k in i0 if k not in i1 or not np.array_equal(i0[k], i1[k]))
        biases = {"b1", "b2", "b1_quantized", "b2_quantized"}
        bad = bias_invariant(m1) if bias == "int32" else ""
        with open(p1, "rb") as f1, open(pd, "rb") as fd:
            default_is_bc = f1.read() == fd.read()
        if not default_is_bc:
            fail(name, "calibrate without the flag differs from --bias-correction (the default)")
        elif set(i0) != set(i1) or not set(changed) <= biases or not changed:
            fail(name, f"initializers changed: {changed} (only biases may, and some must)")
        elif [n.op_type for n in m0.graph.node] != [n.op_type for n in m1.graph.node]:
            fail(name, "the graph changed")
        elif bad:
            fail(name, bad)
        elif not (e0 > 0.02 and e1 < 0.25 * e0):
            fail(name, f"mean |channel error| {e0:.4f} -> {e1:.4f}: expected a shift > 0.02 "
                       "cut to < 1/4")
        elif s1 < s0:
            fail(name, f"SQNR fell {s0:.2f} -> {s1:.2f} dB")
        else:
            ok(name, f"mean |channel error| {e0:.4f} -> {e1:.4f}, SQNR {s0:.2f} -> {s1:.2f} dB, "
                     f"changed {', '.join(changed)}")
    stash_runs(cal, model, calib, work)
    # a NaN sample among the bias samples: skipped by the pass (never kept) and by the
    # measure, which then needs float executors for it but runs none
    nan_calib = os.path.join(work, "calib_nan")
    os.makedirs(nan_calib, exist_ok=True)
    for f in sorted(os.listdir(calib)):
        a = np.load(os.path.join(calib, f))
        if f == "s02.npy":
            a[0, 0, 0, 0] = np.nan
        np.save(os.path.join(nan_calib, f), a)
    stash_runs(cal, model, nan_calib, work, "bias_correction_stash_nan", 15)
    sys.exit(1 if failures() else 0)


if __name__ == "__main__":
    main()
