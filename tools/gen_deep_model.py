#!/usr/bin/env python3
"""Writes a deep, narrow test model to time what grows with the number of nodes (planning,
fusion passes, the quantizer's and bias correction's graph walks) rather than with tensor
sizes: LAYERS blocks of Conv 1x1 -> Relu -> Add (residual) -> Reshape, 8 channels of 4x4,
4 nodes a block, plus 4 calibration samples.

    tools/gen_deep_model.py OUT_DIR [--layers N]     (default 1500: 6000 nodes)

Writes OUT_DIR/deep.onnx and OUT_DIR/data/s0..s3.npy (seeded: the same bytes every time).
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=1500)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    c = 8
    nodes, inits, x = [], [], "x"
    for i in range(a.layers):
        # small weights keep the residual sum bounded over thousands of blocks
        inits.append(numpy_helper.from_array(
            rng.normal(0, 0.05, (c, c, 1, 1)).astype(np.float32), f"w{i}"))
        inits.append(numpy_helper.from_array(
            rng.normal(0, 0.01, (c,)).astype(np.float32), f"b{i}"))
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}"),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"),
                  helper.make_node("Add", [f"r{i}", x], [f"a{i}"], name=f"add{i}"),
                  helper.make_node("Reshape", [f"a{i}", "shape"], [f"s{i}"],
                                   name=f"reshape{i}")]
        x = f"s{i}"
    inits.append(numpy_helper.from_array(np.array([1, c, 4, 4], dtype=np.int64), "shape"))
    g = helper.make_graph(nodes, "deep",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 4, 4])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, c, 4, 4])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    os.makedirs(os.path.join(a.out, "data"), exist_ok=True)
    onnx.save(m, os.path.join(a.out, "deep.onnx"))
    for s in range(4):
        np.save(os.path.join(a.out, "data", f"s{s}.npy"),
                rng.normal(0, 1, (1, c, 4, 4)).astype(np.float32))
    print(f"{a.out}/deep.onnx: {len(nodes)} nodes; {a.out}/data: 4 samples")


if __name__ == "__main__":
    main()
