"""Opset upgrade during quantization: an opset-11 model using Squeeze/Unsqueeze/ReduceSum
(axes attributes), Split (split attribute), Clip and a last-axis Softmax, quantized with
--per-channel (which needs opset 13). The quantized model must pass the checker, run in
onnxruntime, and stay close to the float model (the rewritten nodes compute the same thing).

usage: opset_upgrade_check.py CALIBRATE WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def build(path):
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"], name="clip"),
        helper.make_node("Split", ["r"], ["s0", "s1"], axis=1, split=[3, 5], name="split"),
        helper.make_node("ReduceSum", ["s1"], ["rs"], axes=[1], keepdims=1, name="rsum"),
        helper.make_node("Add", ["rs", "s0"], ["a"], name="add"),
        helper.make_node("Squeeze", ["a"], ["sq"], axes=[0], name="squeeze"),
        helper.make_node("Unsqueeze", ["sq"], ["us"], axes=[0], name="unsqueeze"),
        helper.make_node("Reshape", ["us", "shape"], ["flat"], name="reshape"),
        helper.make_node("Softmax", ["flat"], ["y"], axis=2, name="softmax"),
    ]
    inits = [w, b, numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
             numpy_helper.from_array(np.array([1, 3, 64], np.int64), "shape")]
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 6
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main():
    cal, work = sys.argv[1], sys.argv[2]
    os.makedirs(work + "/data", exist_ok=True)
    model = work + "/op11.onnx"
    build(model)
    rng = np.random.default_rng(1)
    xs = [rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32) for _ in range(8)]
    for i, x in enumerate(xs):
        np.save(f"{work}/data/s{i}.npy", x)
    out = work + "/op11.q.onnx"
    r = subprocess.run([cal, "--data", work + "/data", model, "-o", out, "--per-channel", "-q"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL calibrate:", r.stderr.strip())
        return 1
    q = onnx.load(out)
    onnx.checker.check_model(q, full_check=True)
    opset = [o.version for o in q.opset_import if o.domain in ("", "ai.onnx")][0]
    if opset < 13:
        print("FAIL opset not raised:", opset)
        return 1
    fs = ort.InferenceSession(model)
    qs = ort.InferenceSession(out)
    worst = 0.0
    for x in xs:
        a = fs.run(None, {"x": x})[0]
        b = qs.run(None, {"x": x})[0]
        if a.shape != b.shape:
            print("FAIL shape", a.shape, b.shape)
            return 1
        worst = max(worst, float(np.abs(a - b).max()))
    # softmax over 64 values: quantization error is a few percent of the largest probability
    if worst > 0.05:
        print(f"FAIL max abs diff {worst:.4f} > 0.05")
        return 1
    print(f"ok opset 11 -> {opset}, checker ok, max abs diff {worst:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
