"""Operators in `calibrate run` against onnxruntime, over what the ONNX backend node tests
leave out. RNN, GRU and LSTM: both directions alone and together, sequence_lens shorter than
the input, layout 1 (onnxruntime's CPU kernels take layout 0 only: its answer is computed on
the transposed input and transposed back), clip, LSTM peepholes and input_forget, GRU
linear_before_reset, activations with alpha / beta, initial states, outputs left out.
NonMaxSuppression: many random boxes and classes, ties, both box formats, thresholds.
DepthToSpace (both modes), SpaceToDepth, Trilu, LRN, GroupNormalization (opsets 18 and 21):
random shapes; MeanVarianceNormalization on other axes. GridSample: every mode x padding x
align_corners, grids partly outside. Einsum: 16 equations (matrix and batched products,
attention, ellipsis with broadcasting, sums, transposes, implicit outputs).

    ops_check.py CALIBRATE WORKDIR

Prints "ok   NAME" or "FAIL NAME: why" per case; exit 1 if any failed."""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

S, B, I, H = 5, 3, 4, 6
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
OUT_NAMES = ["Y", "Y_h", "Y_c"]


def cases():
    yield dict(name="lstm_reverse", op="LSTM", direction="reverse")
    yield dict(name="lstm_bidir_lens_states", op="LSTM", direction="bidirectional",
               lens=[5, 2, 3], init=True, peep=True)
    yield dict(name="lstm_clip_input_forget", op="LSTM", clip=0.7, input_forget=1, bias=True)
    yield dict(name="lstm_acts", op="LSTM", direction="bidirectional",
               acts=["HardSigmoid", "ScaledTanh", "Affine"] * 2,
               alpha=[0.3, 0.9, 1.5, 0.25, 1.1, 0.8], beta=[0.4, 1.2, 0.1, 0.6, 0.7, -0.2])
    yield dict(name="lstm_only_y_h", op="LSTM", outs=["", "Y_h"], lens=[1, 5, 4])
    yield dict(name="lstm_layout1", op="LSTM", direction="bidirectional", layout=1,
               lens=[3, 5, 1], init=True, peep=True, opset=14)
    yield dict(name="gru_lbr", op="GRU", linear_before_reset=1, bias=True, init=True)
    yield dict(name="gru_bidir_lens", op="GRU", direction="bidirectional", lens=[2, 5, 0],
               bias=True)
    yield dict(name="gru_reverse_clip", op="GRU", direction="reverse", clip=0.5, bias=True)
    yield dict(name="gru_acts_layout1", op="GRU", acts=["LeakyRelu", "Softsign"], alpha=[0.2],
               layout=1, opset=14, bias=True)
    yield dict(name="rnn_bidir_relu", op="RNN", direction="bidirectional",
               acts=["Relu", "Tanh"], lens=[4, 5, 2], bias=True, init=True)
    yield dict(name="rnn_elu_softplus", op="RNN", acts=["Elu"], alpha=[0.5], bias=True)
    yield dict(name="rnn_sigmoid_thresholded", op="RNN", direction="bidirectional",
               acts=["Sigmoid", "ThresholdedRelu"], alpha=[0.1], clip=2.0)


def other_cases():
    yield dict(name="nms_corners", op="NonMaxSuppression", nb=2, nc=3, ns=200, max_out=20,
               iou=0.4, score=0.3)
    yield dict(name="nms_center_ties", op="NonMaxSuppression", nb=1, nc=2, ns=150, max_out=50,
               iou=0.6, center=1, ties=True)
    yield dict(name="nms_no_score_threshold", op="NonMaxSuppression", nb=1, nc=4, ns=90,
               max_out=1000, iou=0.5)
    yield dict(name="depth_to_space_dcr", op="DepthToSpace", shape=(2, 18, 4, 5), blocksize=3)
    yield dict(name="depth_to_space_crd", op="DepthToSpace", shape=(1, 16, 3, 7), blocksize=2,
               mode="CRD")
    yield dict(name="space_to_depth", op="SpaceToDepth", shape=(2, 3, 8, 12), blocksize=4)
    yield dict(name="trilu_upper_k", op="Trilu", shape=(3, 5, 7), k=2)
    yield dict(name="trilu_lower_negk", op="Trilu", shape=(2, 9, 4), k=-3, upper=0)
    for i, (eq, shapes) in enumerate([
            ("ij,jk->ik", [(5, 7), (7, 3)]), ("bij,bjk->bik", [(2, 4, 6), (2, 6, 3)]),
            ("bhid,bhjd->bhij", [(2, 3, 5, 4), (2, 3, 6, 4)]),
            ("...ij,...jk->...ik", [(2, 1, 3, 4), (1, 5, 4, 2)]), ("ij->ji", [(3, 5)]),
            ("ij->", [(4, 6)]), ("i,i->", [(7,), (7,)]), ("i,j->ij", [(3,), (4,)]),
            ("ij,jk", [(3, 4), (4, 5)]), ("...ab,b->...a", [(2, 3, 4, 5), (5,)]),
            ("ij,ij->ij", [(3, 4), (3, 4)]), ("bijk->bkij", [(2, 3, 4, 5)]),
            ("ijk,ikl->jl", [(3, 4, 5), (3, 5, 2)]), ("abc,cd->", [(2, 3, 4), (4, 5)]),
            ("ab,cb->ac", [(6, 4), (1, 4)]), ("...i->...", [(2, 3, 4)])]):
        yield dict(name=f"einsum_{i}", op="Einsum", equation=eq, shapes=shapes)
    yield dict(name="group_norm_21", op="GroupNormalization", shape=(2, 6, 5, 4), groups=3,
               opset=21)
    yield dict(name="group_norm_18", op="GroupNormalization", shape=(1, 8, 7), groups=2,
               opset=18, eps=1e-3)
    for mode in ("bilinear", "nearest", "bicubic"):
        for pad in ("zeros", "border", "reflection"):
            for align in (0, 1):
                yield dict(name=f"gridsample_{mode}_{pad}_{align}", op="GridSample", mode=mode,
                           pad=pad, align=align)
    yield dict(name="mvn_axes_1_3", op="MeanVarianceNormalization", shape=(2, 4, 3, 5),
               axes=[1, 3])
    yield dict(name="lrn_size5", op="LRN", shape=(2, 7, 5, 3), size=5, alpha=0.02,
               beta=0.6, bias=1.5)
    yield dict(name="lrn_size3", op="LRN", shape=(1, 6, 11, 2), size=3)


def build_other(c, rng):
    """(model, input X) for one of other_cases()."""
    op, inits, attrs = c["op"], [], {}
    if op == "Einsum":
        xs = [rng.normal(0, 1, sh).astype(np.float32) for sh in c["shapes"]]
        x = xs[0]
        ins = ["X"] + (["E1"] if len(xs) > 1 else [])
        if len(xs) > 1:
            inits.append(numpy_helper.from_array(xs[1], "E1"))
        attrs["equation"] = c["equation"]
        out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
        opset = 13
    elif op == "GridSample":
        x = rng.normal(0, 1, (2, 3, 5, 7)).astype(np.float32)
        grid = rng.uniform(-1.6, 1.6, (2, 4, 6, 2)).astype(np.float32)   # some outside
        grid[0, 0, 0] = [-1, -1]
        grid[0, 0, 1] = [1, 1]
        grid[1, 0, 0] = [5.5, -7.25]                                      # far outside
        ins = ["X", "G"]
        inits = [numpy_helper.from_array(grid, "G")]
        attrs.update(mode=c["mode"], padding_mode=c["pad"], align_corners=c["align"])
        out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
        opset = 16
    elif op == "NonMaxSuppression":
        ns = c["ns"]
        xy = rng.uniform(0, 10, (c["nb"], ns, 2)).astype(np.float32)
        wh = rng.uniform(0.5, 3, (c["nb"], ns, 2)).astype(np.float32)
        if c.get("center"):
            boxes = np.concatenate([xy, wh], 2)
        else:                       # corners in either order
            boxes = np.concatenate([xy, xy + wh], 2)
            flip = rng.random((c["nb"], ns)) < 0.5
            boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
        x = rng.random((c["nb"], c["nc"], ns)).astype(np.float32)
        if c.get("ties"):
            x = np.round(x * 8) / 8
        ins = ["B", "X", "max", "iou"] + (["score"] if "score" in c else [])
        inits = [numpy_helper.from_array(boxes, "B"),
                 numpy_helper.from_array(np.array([c["max_out"]], np.int64), "max"),
                 numpy_helper.from_array(np.array([c["iou"]], np.float32), "iou")]
        if "score" in c:
            inits.append(numpy_helper.from_array(np.array([c["score"]], np.float32), "score"))
        if c.get("center"):
            attrs["center_point_box"] = 1
        out = helper.make_tensor_value_info("Y", TensorProto.INT64, None)
        opset = 13
    else:
        x = rng.normal(0, 1, c["shape"]).astype(np.float32)
        ins = ["X"]
        if op == "MeanVarianceNormalization":
            attrs["axes"] = c["axes"]
        elif op == "GroupNormalization":
            nsc = c["shape"][1] if c["opset"] >= 21 else c["groups"]
            ins += ["gs", "gb"]
            inits += [numpy_helper.from_array(rng.normal(1, 0.3, nsc).astype(np.float32), "gs"),
                      numpy_helper.from_array(rng.normal(0, 0.3, nsc).astype(np.float32), "gb")]
            attrs["num_groups"] = c["groups"]
            if "eps" in c:
                attrs["epsilon"] = c["eps"]
        elif op == "LRN":
            attrs.update({k: c[k] for k in ("size", "alpha", "beta", "bias") if k in c})
        elif op == "Trilu":
            ins.append("k")
            inits.append(numpy_helper.from_array(np.array(c["k"], np.int64), "k"))
            if "upper" in c:
                attrs["upper"] = c["upper"]
        else:
            attrs["blocksize"] = c["blocksize"]
            if "mode" in c:
                attrs["mode"] = c["mode"]
        out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
        opset = c.get("opset", 14)
    graph = helper.make_graph([helper.make_node(op, ins, ["Y"], name="op", **attrs)], c["name"],
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape)],
                              [out], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m, x


def build(c, rng, layout):
    op, g = c["op"], GATES[c["op"]]
    d = 2 if c.get("direction") == "bidirectional" else 1
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (d, g * H, I)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.5, (d, g * H, H)).astype(np.float32), "R")]
    ins = ["X", "W", "R"]
    opt = []
    if c.get("bias"):
        opt.append(("B", rng.normal(0, 0.3, (d, 2 * g * H)).astype(np.float32)))
    if c.get("lens"):
        opt.append(("seq", np.array(c["lens"], np.int32)))
    if c.get("init"):
        shp = (B, d, H) if layout else (d, B, H)
        opt.append(("h0", rng.normal(0, 0.5, shp).astype(np.float32)))
        if op == "LSTM":
            opt.append(("c0", rng.normal(0, 0.5, shp).astype(np.float32)))
    if c.get("peep"):
        opt.append(("P", rng.normal(0, 0.5, (d, 3 * H)).astype(np.float32)))
    slots = {"B": 3, "seq": 4, "h0": 5, "c0": 6, "P": 7}
    names = dict(opt)
    for nm, k in sorted(slots.items(), key=lambda kv: kv[1]):
        if nm in names:
            while len(ins) < k:
                ins.append("")
            ins.append(nm)
            inits.append(numpy_helper.from_array(names[nm], nm))
    attrs = dict(hidden_size=H, direction=c.get("direction", "forward"))
    for k in ("clip", "input_forget", "linear_before_reset"):
        if k in c:
            attrs[k] = c[k]
    if "acts" in c:
        attrs["activations"] = c["acts"]
    if "alpha" in c:
        attrs["activation_alpha"] = c["alpha"]
    if "beta" in c:
        attrs["activation_beta"] = c["beta"]
    if layout:
        attrs["layout"] = 1
    outs = c.get("outs", OUT_NAMES[:3 if op == "LSTM" else 2])
    node = helper.make_node(op, ins, outs, name="rec", **attrs)
    xs = (B, S, I) if layout else (S, B, I)
    ys = {"Y": (B, S, d, H) if layout else (S, d, B, H),
          "Y_h": (B, d, H) if layout else (d, B, H), "Y_c": (B, d, H) if layout else (d, B, H)}
    graph = helper.make_graph(
        [node], c["name"], [helper.make_tensor_value_info("X", TensorProto.FLOAT, xs)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ys[o]) for o in outs if o], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", c.get("opset", 13))])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def to_layout0(m):
    """The same node with layout 0: initial states transposed, outputs transposed back."""
    m0 = onnx.ModelProto()
    m0.CopyFrom(m)
    node = m0.graph.node[0]
    for a in list(node.attribute):
        if a.name == "layout":
            node.attribute.remove(a)
    for t in m0.graph.initializer:
        if t.name in ("h0", "c0"):
            t.CopyFrom(numpy_helper.from_array(
                np.ascontiguousarray(numpy_helper.to_array(t).transpose(1, 0, 2)), t.name))
    del m0.graph.input[:]
    del m0.graph.output[:]
    m0.graph.input.append(helper.make_tensor_value_info("X", TensorProto.FLOAT, None))
    for o in node.output:
        if o:
            m0.graph.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
    return m0


def reference(m, x, layout):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if layout:
        m, x = to_layout0(m), np.ascontiguousarray(x.transpose(1, 0, 2))
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in s.get_outputs()], s.run(None, {"X": x})))
    if layout:
        for k, v in got.items():
            got[k] = v.transpose(2, 0, 1, 3) if k == "Y" else v.transpose(1, 0, 2)
    return got


def main():
    cal, work = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(7)
    failed = 0
    for c in list(cases()) + list(other_cases()):
        layout = c.get("layout", 0)
        if c["op"] in GATES:
            m = build(c, rng, layout)
            x = rng.normal(0, 1, (B, S, I) if layout else (S, B, I)).astype(np.float32)
        else:
            m, x = build_other(c, rng)
        d = os.path.join(work, c["name"])
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        onnx.save(m, os.path.join(d, "m.onnx"))
        np.save(os.path.join(d, "data", "s0.npy"), x)
        r = subprocess.run([cal, "run", os.path.join(d, "m.onnx"), "--data",
                            os.path.join(d, "data"), "-o", os.path.join(d, "out"), "-q"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL {c['name']}: calibrate run: {r.stderr.strip()}")
            failed += 1
            continue
        want = reference(m, x, layout)
        why = None
        for k, v in want.items():
            p = os.path.join(d, "out", "s0", f"{k}.npy")
            if not os.path.exists(p):
                why = f"no output {k}"
                break
            got = np.load(p)
            if got.shape != v.shape:
                why = f"{k}: shape {got.shape}, onnxruntime {v.shape}"
                break
            if v.dtype != np.float32 and not np.array_equal(got, v):
                why = f"{k}: differs from onnxruntime (first rows {got[:3].tolist()} vs " \
                      f"{v[:3].tolist()})"
                break
            if not np.allclose(got, v, rtol=1e-4, atol=1e-5):
                why = f"{k}: max abs diff {np.abs(got - v).max():.3g}"
                break
        if why:
            print(f"FAIL {c['name']}: {why}")
            failed += 1
        else:
            print(f"ok   {c['name']}: {', '.join(f'{k} {list(v.shape)}' for k, v in sorted(want.items()))}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
