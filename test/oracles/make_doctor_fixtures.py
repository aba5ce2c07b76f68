#!/usr/bin/env python3
"""Models and data sets that each trigger one `calibrate doctor` finding, with a clean
variant beside it (test/cli/test_doctor.sh runs both).

    make_doctor_fixtures.py OUTDIR

OUTDIR/
  base.onnx        x[1,3,8,8] -> Conv(8) -> Relu -> Conv(4) -> y, weights ~ N(0, 1/fan_in)
  big.onnx         base on [1,3,32,32] inputs
  square.onnx      Mul(x, x) 'square' -> Clip(0, 6) -> base on [1,3,32,32]
  imbalance.onnx   base with output channel 0 of the first Conv x100
  bias.onnx        base with first-Conv weights ~1e-4 and biases of 1000 (int32 overflow)
  const.onnx       base plus a branch Mul(x, 0) added to the first Conv (constant zero)
  const_ok.onnx    the same with Mul(x, 0.5)
  nan.onnx         Log(x) -> base (NaN in float for negative x)
  nan_ok.onnx      Log(|x| + 1) -> base
  head.onnx        boxes = 320 Sigmoid(Conv) and scores = Sigmoid(Conv) / 2, Concat 'cat' ->
                   Transpose 'tr' -> y, and Slice 'pick' (the scores) -> y2: the scores
                   collapse to 0 on the boxes' scale
  div.onnx         Relu(x) + 0.001 -> Div(1, .) -> y (zero after quantization: Inf)
  div_ok.onnx      the same with + 0.5
  tanh.onnx        base followed by Tanh (left in float)
  gain.onnx        Mul 'gain' by per-channel constants (1000, 1000, 0.001) -> t (an output),
                   and Slice 'pick' of channel 2 -> y2: one step of t spans all of y2,
                   no Concat (no head-mix)
  nhwc.onnx        base on NHWC input [1,8,8,3] (a Transpose first)
  cat.onnx         two Convs of x (ranges 1:3) -> Concat 'cat' -> Conv -> y
  diff.onnx        1x1 Conv 'diff' computing differences of the input channels -> y: a large
                   common offset in the input cancels, its quantization error does not
  norm.onnx        a LayerNorm over the last axis as elementwise ops, then a 1x1 Conv;
  norm_ort.onnx    onnxruntime's quantize_static of it (its arithmetic quantized)
  calib/           16 samples N(0, 1)
  eval/            16 samples N(0, 1)
  eval_shift/      16 samples N(3, 1)
  eval_wide/       16 samples N(0, 1.8)
  calib_nan/       calib with a NaN and an Inf in s05.npy
  calib_raw/       16 samples of integers 0..255
  calib_unit/      calib_raw / 255
  calib_const/     16 samples, each one repeated value
  calib2/          2 samples N(0, 1)
  calib_big/       16 samples N(0, 1) [1,3,32,32] for big.onnx
  calib_spike/     calib_big with one value of 1000 in s03.npy
  calib_spike31/   the same with 31: harmless for x, an outlier of 961 for x * x
  calib_spike15/   the same with 15: x * x reaches 225, 14x its 99.99th percentile but the
                   bulk keeps 18 levels, under the outlier thresholds
  calib_offset/    16 samples 1000 + N(0, 1)
  calib_rgb/       16 samples N(0, 1) plus channel means (0.5, 0, -0.5)
  eval_rgb/        16 more of the same
  eval_bgr/        16 more with channels 0 and 2 swapped
  calib_rgb_nhwc/, eval_rgb_nhwc/, eval_bgr_nhwc/   the same in NHWC layout
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, checker, save

SHAPE = (1, 3, 8, 8)
BIG = (1, 3, 32, 32)


def model(nodes, inits, out_shape=(1, 4, 8, 8), outputs=None, in_shape=SHAPE):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))
    outs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))]
    g = helper.make_graph(nodes, "doctor", [x], outs,
                          [numpy_helper.from_array(np.asarray(v, np.float32), k)
                           for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    checker.check_model(m)
    return m


def conv_weights(rng, cout, cin):
    return (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)).astype(np.float32)


def base_nodes(src="x"):
    return [helper.make_node("Conv", [src, "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2", pads=[1] * 4)]


def write_set(path, arrays):
    os.makedirs(path, exist_ok=True)
    for i, a in enumerate(arrays):
        np.save(os.path.join(path, f"s{i:02d}.npy"), a.astype(np.float32))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    w1, w2 = conv_weights(rng, 8, 3), conv_weights(rng, 4, 8)
    b1, b2 = 0.1 * rng.standard_normal(8), 0.1 * rng.standard_normal(4)
    base = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    save(model(base_nodes(), base), os.path.join(out, "base.onnx"))

    # 32x32 images: enough values (3072 a sample) for a 99.99th percentile
    save(model(base_nodes(), base, (1, 4, 32, 32), in_shape=BIG),
         os.path.join(out, "big.onnx"))

    sq = [helper.make_node("Mul", ["x", "x"], ["sq"], name="square"),
          helper.make_node("Clip", ["sq", "zero", "six"], ["sqc"], name="clip")] + \
        base_nodes("sqc")
    save(model(sq, dict(base, zero=np.float32(0), six=np.float32(6)), (1, 4, 32, 32),
               in_shape=BIG), os.path.join(out, "square.onnx"))

    wi = w1.copy()
    wi[0] *= 100
    save(model(base_nodes(), dict(base, w1=wi)), os.path.join(out, "imbalance.onnx"))

    wb = (1e-4 * rng.standard_normal((8, 3, 3, 3))).astype(np.float32)
    save(model(base_nodes(), dict(base, w1=wb, b1=np.full(8, 1000.0))),
         os.path.join(out, "bias.onnx"))

    for name, k in (("const", 0.0), ("const_ok", 0.5)):
        nodes = [helper.make_node("Mul", ["x", "k"], ["z"], name="zero_branch"),
                 helper.make_node("Conv", ["x", "w1", "b1"], ["c0"], name="conv1",
                                  pads=[1] * 4),
                 helper.make_node("ReduceMean", ["z"], ["zm"], name="zmean", axes=[1],
                                  keepdims=1),
                 helper.make_node("Add", ["c0", "zm"], ["c1"], name="add_branch"),
                 helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
                 helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2",
                                  pads=[1] * 4)]
        save(model(nodes, dict(base, k=np.float32(k))), os.path.join(out, name + ".onnx"))

    nan = [helper.make_node("Log", ["x"], ["lx"], name="log")] + base_nodes("lx")
    save(model(nan, base), os.path.join(out, "nan.onnx"))
    ok = [helper.make_node("Abs", ["x"], ["ax"], name="abs"),
          helper.make_node("Add", ["ax", "one"], ["ax1"], name="plus1"),
          helper.make_node("Log", ["ax1"], ["lx"], name="log")] + base_nodes("lx")
    save(model(ok, dict(base, one=np.float32(1))), os.path.join(out, "nan_ok.onnx"))

    wk, w3 = 3 * conv_weights(rng, 8, 3), conv_weights(rng, 4, 16)
    cat = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
           helper.make_node("Conv", ["x", "wk"], ["ck"], name="convk", pads=[1] * 4),
           helper.make_node("Concat", ["c1", "ck"], ["cc"], name="cat", axis=1),
           helper.make_node("Conv", ["cc", "w3"], ["y"], name="conv3", pads=[1] * 4)]
    save(model(cat, {"w1": w1, "b1": b1, "wk": wk, "w3": w3}), os.path.join(out, "cat.onnx"))

    wa, wc = conv_weights(rng, 4, 3), conv_weights(rng, 2, 3)
    head = [helper.make_node("Conv", ["x", "wa"], ["ca"], name="box_conv", pads=[1] * 4),
            helper.make_node("Sigmoid", ["ca"], ["sa"], name="box_sig"),
            helper.make_node("Mul", ["sa", "img"], ["boxes"], name="box_scale"),
            helper.make_node("Conv", ["x", "wc"], ["cc"], name="cls_conv", pads=[1] * 4),
            helper.make_node("Sigmoid", ["cc"], ["sc"], name="cls_sig"),
            helper.make_node("Mul", ["sc", "half"], ["scores"], name="cls_half"),
            helper.make_node("Concat", ["boxes", "scores"], ["cat"], name="cat", axis=1),
            helper.make_node("Transpose", ["cat"], ["y"], name="tr", perm=[0, 2, 3, 1]),
            helper.make_node("Slice", ["cat", "s0", "s1", "s2"], ["y2"], name="pick")]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 6]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 2, 8, 8])]
    save(model(head, {"wa": wa, "wc": wc, "img": np.float32(320), "half": np.float32(0.5),
                      "s0": np.array([4], np.int64), "s1": np.array([6], np.int64),
                      "s2": np.array([1], np.int64)}, outputs=outs),
         os.path.join(out, "head.onnx"))

    for name, eps in (("div", 0.001), ("div_ok", 0.5)):
        nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
                 helper.make_node("Add", ["r", "eps"], ["re"], name="add_eps"),
                 helper.make_node("Div", ["one", "re"], ["y"], name="div")]
        save(model(nodes, {"eps": np.float32(eps), "one": np.float32(1)}, SHAPE),
             os.path.join(out, name + ".onnx"))

    tanh = base_nodes()
    tanh[-1].output[0] = "c2"
    tanh.append(helper.make_node("Tanh", ["c2"], ["y"], name="tanh"))
    save(model(tanh, base), os.path.join(out, "tanh.onnx"))

    gain = [helper.make_node("Mul", ["x", "k"], ["t"], name="gain"),
            helper.make_node("Slice", ["t", "s0", "s1", "s2"], ["y2"], name="pick")]
    outs = [helper.make_tensor_value_info("t", TensorProto.FLOAT, list(SHAPE)),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 1, 8, 8])]
    save(model(gain, {"k": np.array([1000, 1000, 0.001]).reshape(1, 3, 1, 1),
                      "s0": np.array([2], np.int64), "s1": np.array([3], np.int64),
                      "s2": np.array([1], np.int64)}, outputs=outs),
         os.path.join(out, "gain.onnx"))

    tr = [helper.make_node("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2])]
    save(model(tr + base_nodes("xt"), base, in_shape=(1, 8, 8, 3)),
         os.path.join(out, "nhwc.onnx"))

    wd = np.array([[1, -1, 0], [0, 1, -1], [-1, 0, 1]], np.float32).reshape(3, 3, 1, 1)
    save(model([helper.make_node("Conv", ["x", "wd"], ["y"], name="diff")], {"wd": wd},
               (1, 3, 8, 8)), os.path.join(out, "diff.onnx"))

    calib = [rng.standard_normal(SHAPE) for _ in range(16)]
    write_set(os.path.join(out, "calib"), calib)
    write_set(os.path.join(out, "eval"), [rng.standard_normal(SHAPE) for _ in range(16)])
    write_set(os.path.join(out, "eval_shift"),
              [3 + rng.standard_normal(SHAPE) for _ in range(16)])
    write_set(os.path.join(out, "eval_wide"),
              [1.8 * rng.standard_normal(SHAPE) for _ in range(16)])
    bad = [a.copy() for a in calib]
    bad[5][0, 0, 0, 0] = np.nan
    bad[5][0, 1, 2, 3] = np.inf
    write_set(os.path.join(out, "calib_nan"), bad)
    raw = [np.round(rng.uniform(0, 255, SHAPE)) for _ in range(16)]
    write_set(os.path.join(out, "calib_raw"), raw)
    write_set(os.path.join(out, "calib_unit"), [a / 255 for a in raw])
    write_set(os.path.join(out, "calib_const"),
              [np.full(SHAPE, 0.1 * (i - 8)) for i in range(16)])
    write_set(os.path.join(out, "calib2"), calib[:2])
    big = [rng.standard_normal(BIG) for _ in range(16)]
    write_set(os.path.join(out, "calib_big"), big)
    big[3][0, 2, 4, 4] = 1000
    write_set(os.path.join(out, "calib_spike"), big)
    big[3][0, 2, 4, 4] = 31
    write_set(os.path.join(out, "calib_spike31"), big)
    big[3][0, 2, 4, 4] = 15
    write_set(os.path.join(out, "calib_spike15"), big)
    write_set(os.path.join(out, "calib_offset"),
              [1000 + rng.standard_normal(SHAPE) for _ in range(16)])
    tint = np.array([0.5, 0, -0.5]).reshape(1, 3, 1, 1)
    write_set(os.path.join(out, "calib_rgb"),
              [tint + rng.standard_normal(SHAPE) for _ in range(16)])
    rgb = [tint + rng.standard_normal(SHAPE) for _ in range(16)]
    write_set(os.path.join(out, "eval_rgb"), rgb)
    write_set(os.path.join(out, "eval_bgr"), [a[:, ::-1] for a in rgb])
    to_nhwc = lambda arrays: [a.transpose(0, 2, 3, 1) for a in arrays]
    write_set(os.path.join(out, "calib_rgb_nhwc"),
              to_nhwc([tint + rng.standard_normal(SHAPE) for _ in range(16)]))
    write_set(os.path.join(out, "eval_rgb_nhwc"), to_nhwc(rgb))
    write_set(os.path.join(out, "eval_bgr_nhwc"), to_nhwc([a[:, ::-1] for a in rgb]))

    norm_fixtures(out)


def norm_fixtures(out):
    """norm.onnx: a LayerNorm over the last axis written as elementwise ops (mean, x - mean,
    its square, variance + eps, sqrt, divide, gamma, beta), then a 1x1 Conv; norm_ort.onnx:
    onnxruntime's quantize_static of it (QDQ, MinMax, on calib/), which quantizes the square
    and the variance + eps among others. Its own generator, after every other fixture: theirs
    stay what they were."""
    rng = np.random.default_rng(12)
    mean = lambda src, dst, name: helper.make_node("ReduceMean", [src], [dst], name=name,
                                                   axes=[-1], keepdims=1)
    nodes = [mean("x", "mu", "mean"),
             helper.make_node("Sub", ["x", "mu"], ["d"], name="center"),
             helper.make_node("Mul", ["d", "d"], ["d2"], name="square"),
             mean("d2", "var", "variance"),
             helper.make_node("Add", ["var", "eps"], ["ve"], name="var_eps"),
             helper.make_node("Sqrt", ["ve"], ["sd"], name="std"),
             helper.make_node("Div", ["d", "sd"], ["n"], name="normalize"),
             helper.make_node("Mul", ["n", "gamma"], ["ng"], name="scale"),
             helper.make_node("Add", ["ng", "beta"], ["nb"], name="shift"),
             helper.make_node("Conv", ["nb", "w", "b"], ["y"], name="proj")]
    inits = {"eps": np.float32(1e-5), "gamma": 1 + 0.1 * rng.standard_normal(8),
             "beta": 0.1 * rng.standard_normal(8),
             "w": rng.standard_normal((4, 3, 1, 1)) / np.sqrt(3),
             "b": 0.1 * rng.standard_normal(4)}
    path = os.path.join(out, "norm.onnx")
    save(model(nodes, inits), path)
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    files = sorted(os.path.join(out, "calib", f) for f in os.listdir(os.path.join(out, "calib")))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(files):
                return None
            self.i += 1
            return {"x": np.load(files[self.i - 1])}

    quantize_static(path, os.path.join(out, "norm_ort.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)


if __name__ == "__main__":
    main()
