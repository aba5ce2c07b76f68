#!/usr/bin/env python3
"""Writes the small models and data folders the CLI tests (test/cli/*.sh) feed to `calibrate`.

    make_fixtures.py OUTDIR

OUTDIR/
  conv.onnx            x float[1,3,8,8] -> Conv(4x3x3x3, pads 1) -> Relu -> y   (opset 13)
  truncated.onnx       conv.onnx cut in the middle of its weight tensor
  garbage.onnx         text, not a protobuf
  empty.onnx           0 bytes
  unsupported.onnx     x -> RandomNormalLike (node 'noise') -> y               (opset 13)
  data_ok/s0.npy       float32 [1,3,8,8]
  data_shape/s0.npy    float32 [1,3,4,4]  (wrong spatial size)
  data_dtype/s0.npy    int64   [1,3,8,8]  (wrong dtype)
  data_empty/          no samples
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"], name="relu")],
        "conv", [x], [y], [numpy_helper.from_array(w, "w")])
    conv = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    save(conv, os.path.join(out, "conv.onnx"))

    data = conv.SerializeToString()
    raw = w.tobytes()
    cut = data.index(raw[:32]) + len(raw) // 2
    with open(os.path.join(out, "truncated.onnx"), "wb") as f:
        f.write(data[:cut])
    with open(os.path.join(out, "garbage.onnx"), "wb") as f:
        f.write(b"this is not an ONNX model, just some text\n" * 4)
    open(os.path.join(out, "empty.onnx"), "wb").close()

    y2 = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    g = helper.make_graph([helper.make_node("RandomNormalLike", ["x"], ["y"], name="noise")],
                          "unsupported", [x], [y2])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
         os.path.join(out, "unsupported.onnx"))

    for name, arr in (("data_ok", rng.standard_normal((1, 3, 8, 8)).astype(np.float32)),
                      ("data_shape", rng.standard_normal((1, 3, 4, 4)).astype(np.float32)),
                      ("data_dtype", np.ones((1, 3, 8, 8), dtype=np.int64))):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        np.save(os.path.join(out, name, "s0.npy"), arr)
    os.makedirs(os.path.join(out, "data_empty"), exist_ok=True)


if __name__ == "__main__":
    main()
