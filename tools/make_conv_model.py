#!/usr/bin/env python3
"""A model of one or more same-shaped convolutions (optionally each followed by SiLU) and one
random input sample, for timing a single layer shape against onnxruntime.

    .venv/bin/python tools/make_conv_model.py OUT --cin 12 --cout 24 --hw 208 [--k 3]
        [--stride 1] [--no-silu] [--layers 1]

writes OUT.onnx (opset 13, input x [1, cin, hw, hw], pads k // 2) and OUT/0.npy; then e.g.
`QC_THREADS=1 build/calibrate bench OUT.onnx --data OUT --runs 200` (min of the timed runs is
the figure to compare; this machine's load moves medians).
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--cin", type=int, required=True)
    ap.add_argument("--cout", type=int, required=True)
    ap.add_argument("--hw", type=int, required=True)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--layers", type=int, default=1, help="convolutions (cout -> cout after the first)")
    ap.add_argument("--no-silu", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    nodes, inits, x, cin, hw = [], [], "x", a.cin, a.hw
    for i in range(a.layers):
        w = (rng.standard_normal((a.cout, cin, a.k, a.k)) * 0.1).astype(np.float32)
        b = (rng.standard_normal(a.cout) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        y = f"c{i}"
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [y], kernel_shape=[a.k, a.k],
                                      pads=[a.k // 2] * 4, strides=[a.stride, a.stride]))
        if not a.no_silu:
            nodes.append(helper.make_node("Sigmoid", [y], [y + "s"]))
            nodes.append(helper.make_node("Mul", [y, y + "s"], [y + "m"]))
            y += "m"
        x, cin = y, a.cout
        hw = (hw + 2 * (a.k // 2) - a.k) // a.stride + 1
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, a.cin, a.hw, a.hw])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, a.cout, hw, hw])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, a.out + ".onnx")
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "0.npy"),
            rng.standard_normal((1, a.cin, a.hw, a.hw)).astype(np.float32))


if __name__ == "__main__":
    main()
