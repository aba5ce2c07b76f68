#!/usr/bin/env python3
"""One Conv node of a model (its weights and bias, and the SiLU after it when there is one) as a
model of its own, with the input it gets from the first sample of DIR, for timing one layer.

    .venv/bin/python tools/extract_conv.py MODEL NODE_NAME DIR OUT

writes OUT.onnx and OUT/0.npy (the node's input, computed by onnxruntime); then e.g.
`QC_THREADS=1 build/calibrate bench OUT.onnx --data OUT --runs 200` (the best run is the
figure to compare on this machine). tools/make_conv_model.py makes random ones instead.
"""
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    model, name, data, out = sys.argv[1:]
    m = onnx.load(model)
    node = next((n for n in m.graph.node if n.name == name and n.op_type == "Conv"), None)
    if node is None:
        sys.exit(f"extract_conv: {model}: no Conv node named {name}")
    init = {i.name: i for i in m.graph.initializer}
    consumers = [n.op_type for n in m.graph.node if node.output[0] in n.input]
    silu = sorted(consumers) == ["Mul", "Sigmoid"]
    m.graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.load(sorted(glob.glob(os.path.join(data, "*.npy")))[0])
    xin = sess.run([node.input[0]], {sess.get_inputs()[0].name: x})[0]
    conv = helper.make_node("Conv", ["x"] + list(node.input[1:]), ["y"], name=name)
    conv.attribute.extend(node.attribute)
    nodes = [conv]
    if silu:
        nodes += [helper.make_node("Sigmoid", ["y"], ["s"]),
                  helper.make_node("Mul", ["y", "s"], ["z"])]
    g = helper.make_graph(nodes, "one_conv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(xin.shape))],
                          [helper.make_tensor_value_info("z" if silu else "y",
                                                         TensorProto.FLOAT, None)],
                          [init[i] for i in node.input[1:]])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), out + ".onnx")
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "0.npy"), xin)


if __name__ == "__main__":
    main()
