#!/usr/bin/env python3
"""Behaviour of `calibrate` on small generated models, one function per case: each builds a
model with onnx.helper, writes .npy calibration samples, runs CALIBRATE and checks the QDQ model
it wrote (structure with onnx, numbers with onnxruntime against the float model).

    quant_behaviour.py CALIBRATE WORKDIR [CASE...]     (default: every case)
    quant_behaviour.py --list

Prints "ok   CASE: figures" or "FAIL CASE: why" per case; exit status 1 if one failed, 2 on
usage errors. Expected values are derived from the float model, the data or the quantized
model's own parameters, never copied from a run of the tool.
"""
import collections
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F32 = np.float32
INT32_MAX = 2**31 - 1
MIN_SQNR = 25.0
CASES = collections.OrderedDict()


class Fail(Exception):
    pass


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def need(cond, msg):
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------- building models and data

def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def node(op, ins, outs, name, **attrs):
    return helper.make_node(op, ins, outs, name=name, **attrs)


def randn(rng, shape, std=1.0):
    return rng.normal(0, std, shape).astype(F32)


class Ctx:
    """One case's folder, the calibrate binary and the helpers that run it."""

    def __init__(self, cal, work):
        self.cal = cal
        self.work = work
        os.makedirs(work, exist_ok=True)

    def path(self, name):
        return os.path.join(self.work, name)

    def model(self, name, nodes, inputs, outputs, inits, opset=13):
        g = helper.make_graph(nodes, name, inputs, outputs, inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        p = self.path(name + ".onnx")
        onnx.save(m, p)
        return p

    def data(self, name, arrays, names=None):
        d = self.path(name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for i, a in enumerate(arrays):
            np.save(os.path.join(d, names[i] if names else f"s{i:02d}.npy"), a)
        return d

    def run(self, *args):
        return subprocess.run([self.cal, *args], capture_output=True, text=True,
                              errors="replace", timeout=300)

    def calibrate(self, model, data, out, *flags):
        """Runs calibrate, which must succeed; returns the loaded, checked QDQ model."""
        out = self.path(out)
        args = ["--data", data] if data else []
        r = self.run(*args, model, "-o", out, "-q", *flags)
        need(r.returncode == 0, f"calibrate {' '.join(flags)} exited {r.returncode}: "
             f"{r.stderr.strip()[:300]}")
        return QModel(out)


def expect_error(r, code, *needles):
    """A refused run: exit status `code`, one stderr line 'calibrate: ...' with each needle."""
    err = r.stderr.strip()
    need(r.returncode == code, f"exit status {r.returncode}, expected {code} (stderr: {err[:200]})")
    need(len(err.splitlines()) == 1, f"{len(err.splitlines())} lines on stderr, expected 1: "
         f"{err[:300]}")
    need(err.startswith("calibrate: "), f"stderr does not start with 'calibrate: ': {err}")
    for s in needles:
        need(s in err, f"stderr lacks '{s}': {err}")


# ---------------------------------------------------------------- looking at the QDQ model

class QModel:
    def __init__(self, path):
        self.path = path
        need(os.path.exists(path), f"{path} was not written")
        self.m = onnx.load(path)
        try:
            onnx.checker.check_model(self.m, full_check=True)
        except Exception as e:  # noqa: BLE001 - any checker complaint is a failure
            raise Fail(f"onnx.checker: {str(e).splitlines()[0][:300]}")
        g = self.m.graph
        self.inits = {t.name: t for t in g.initializer}
        self.nodes = list(g.node)
        self.by_name = {n.name: n for n in g.node}
        self.producer = {o: n for n in g.node for o in n.output if o}
        self.consumers = collections.defaultdict(list)
        for n in g.node:
            for t in n.input:
                if t:
                    self.consumers[t].append(n)
        self.opset = max(o.version for o in self.m.opset_import if o.domain in ("", "ai.onnx"))

    def ops(self, op):
        return [n for n in self.nodes if n.op_type == op]

    def node(self, name):
        need(name in self.by_name, f"node '{name}' missing from the quantized model")
        return self.by_name[name]

    def arr(self, name):
        need(name in self.inits, f"'{name}' is not an initializer")
        return numpy_helper.to_array(self.inits[name])

    def dq_feeding(self, tensor):
        n = self.producer.get(tensor)
        return n if n is not None and n.op_type == "DequantizeLinear" else None

    def qconst(self, node_name, slot, dtype):
        """Input `slot` of a node must be a DequantizeLinear of a `dtype` initializer:
        returns (dq node, quantized values, scale)."""
        n = self.node(node_name)
        need(len(n.input) > slot and n.input[slot], f"{node_name} has no input {slot}")
        t = n.input[slot]
        dq = self.dq_feeding(t)
        need(dq is not None, f"{node_name} input {slot} ('{t}') is not produced by "
             f"DequantizeLinear (producer: {self.op_of(t)})")
        src = dq.input[0]
        need(src in self.inits, f"{node_name} input {slot}: DequantizeLinear reads '{src}', "
             f"not an initializer")
        got = self.inits[src].data_type
        need(got == dtype, f"{node_name} input {slot}: quantized as "
             f"{TensorProto.DataType.Name(got)}, expected {TensorProto.DataType.Name(dtype)}")
        return dq, self.arr(src), self.arr(dq.input[1])

    def op_of(self, tensor):
        if tensor in self.inits:
            return "initializer " + TensorProto.DataType.Name(self.inits[tensor].data_type)
        n = self.producer.get(tensor)
        return f"{n.op_type} '{n.name}'" if n is not None else "graph input"

    def float_init(self, node_name, slot):
        n = self.node(node_name)
        t = n.input[slot]
        need(t in self.inits, f"{node_name} input {slot} ('{t}') is not an initializer "
             f"(producer: {self.op_of(t)})")
        need(self.inits[t].data_type == TensorProto.FLOAT, f"{node_name} input {slot} is "
             f"{TensorProto.DataType.Name(self.inits[t].data_type)}, expected FLOAT")
        return self.arr(t)

    def qdq_scales(self):
        """Every scale of every QuantizeLinear/DequantizeLinear (name, array)."""
        out = []
        for n in self.nodes:
            if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
                need(len(n.input) > 1 and n.input[1] in self.inits,
                     f"{n.name}: scale '{n.input[1] if len(n.input) > 1 else ''}' is not an "
                     f"initializer")
                out.append((n.input[1], self.arr(n.input[1])))
        return out

    def zero_point(self, qnode):
        need(len(qnode.input) > 2 and qnode.input[2] in self.inits,
             f"{qnode.name}: no zero point initializer")
        return self.inits[qnode.input[2]].data_type, self.arr(qnode.input[2])

    def q_of(self, tensor):
        qs = [n for n in self.consumers.get(tensor, []) if n.op_type == "QuantizeLinear"]
        need(len(qs) == 1, f"{len(qs)} QuantizeLinear nodes read '{tensor}', expected 1")
        return qs[0]


def attr(n, name, default):
    for a in n.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise Fail(f"onnxruntime cannot load {os.path.basename(path)}: "
                   f"{str(e).splitlines()[0][:300]}")


def run_all(path, feeds):
    s = session(path)
    try:
        return [s.run(None, f) for f in feeds]
    except Exception as e:  # noqa: BLE001
        raise Fail(f"onnxruntime cannot run {os.path.basename(path)}: "
                   f"{str(e).splitlines()[0][:300]}")


def sqnr(float_path, q_path, feeds):
    """Worst over outputs of 10 log10(signal energy / error energy), all samples pooled."""
    fo, qo = run_all(float_path, feeds), run_all(q_path, feeds)
    worst = math.inf
    for k in range(len(fo[0])):
        sig = err = 0.0
        for a, b in zip(fo, qo):
            need(a[k].shape == b[k].shape, f"output {k}: shape {b[k].shape}, float model "
                 f"gives {a[k].shape}")
            need(np.all(np.isfinite(b[k])), f"output {k} has NaN/Inf")
            sig += float(np.sum(a[k].astype(np.float64) ** 2))
            err += float(np.sum((a[k].astype(np.float64) - b[k]) ** 2))
        worst = min(worst, math.inf if err == 0 else 10 * math.log10(sig / err))
    return worst


def need_sqnr(float_path, q_path, feeds, label="", floor=MIN_SQNR):
    s = sqnr(float_path, q_path, feeds)
    need(s >= floor, f"{label}SQNR {s:.1f} dB < {floor} dB against the float model")
    return s


def feeds_x(arrays, name="x"):
    return [{name: a} for a in arrays]


def no_float_copy(q, shape, what):
    """No FLOAT initializer or Constant node of the weight's shape is left in the model."""
    for t in q.inits.values():
        need(not (t.data_type == TensorProto.FLOAT and tuple(t.dims) == shape),
             f"float initializer '{t.name}' {shape} left beside the quantized {what}")
    left = [n.name for n in q.ops("Constant")]
    need(not left, f"Constant nodes left in the quantized model: {left}")


# ---------------------------------------------------------------- the cases

@case
def constant_node_weights(c):
    """Conv weight and bias from Constant nodes (Paddle exports) are quantized like
    initializers: an int8 initializer behind DequantizeLinear, no float copy left."""
    rng = np.random.default_rng(11)
    w, b = randn(rng, (8, 3, 3, 3), 0.3), randn(rng, (8,), 0.1)
    nodes = [node("Constant", [], ["w"], "w_const", value=init("w", w)),
             node("Constant", [], ["b"], "b_const", value=init("b", b)),
             node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Relu", ["c"], ["y"], "relu")]
    fm = c.model("constw", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 8, 8, 8])], [])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(8)])
    q = c.calibrate(fm, d, "constw.q.onnx")
    _, wq, _ = q.qconst("conv", 1, TensorProto.INT8)
    need(wq.shape == w.shape, f"int8 weight shape {wq.shape}, expected {w.shape}")
    q.qconst("conv", 2, TensorProto.INT32)
    no_float_copy(q, w.shape, "weight")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(8)]))
    return f"int8 weight + int32 bias behind DequantizeLinear, SQNR {s:.1f} dB"


@case
def fp16_weights(c):
    """FLOAT16 initializers behind Cast(to=float) feeding Conv and MatMul end up int8."""
    rng = np.random.default_rng(12)
    w = randn(rng, (4, 3, 3, 3), 0.3).astype(np.float16)
    b = randn(rng, (4,), 0.1).astype(np.float16)
    m = randn(rng, (4, 5), 0.5).astype(np.float16)
    f = TensorProto.FLOAT
    nodes = [node("Cast", ["w16"], ["w"], "cast_w", to=f),
             node("Cast", ["b16"], ["b"], "cast_b", to=f),
             node("Cast", ["m16"], ["m"], "cast_m", to=f),
             node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Relu", ["c"], ["r"], "relu"),
             node("GlobalAveragePool", ["r"], ["g"], "gap"),
             node("Flatten", ["g"], ["fl"], "flatten"),
             node("MatMul", ["fl", "m"], ["y"], "matmul")]
    fm = c.model("fp16", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 5])],
                 [init("w16", w), init("b16", b), init("m16", m)])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(8)])
    q = c.calibrate(fm, d, "fp16.q.onnx")
    _, wq, _ = q.qconst("conv", 1, TensorProto.INT8)
    _, mq, _ = q.qconst("matmul", 1, TensorProto.INT8)
    need(wq.shape == w.shape and mq.shape == m.shape,
         f"int8 shapes {wq.shape} {mq.shape}, expected {w.shape} {m.shape}")
    left = [t.name for t in q.inits.values() if t.data_type == TensorProto.FLOAT16]
    need(not left, f"FLOAT16 initializers left: {left}")
    need(not q.ops("Cast"), f"Cast nodes left: {[n.name for n in q.ops('Cast')]}")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(8)]))
    return f"Conv and MatMul weights int8, no FLOAT16 left, SQNR {s:.1f} dB"


def bn_params(rng, ch, name):
    return [init(name + "_s", rng.uniform(0.5, 1.5, ch).astype(F32)),
            init(name + "_b", randn(rng, (ch,), 0.5)),
            init(name + "_m", randn(rng, (ch,), 0.5)),
            init(name + "_v", rng.uniform(0.5, 2.0, ch).astype(F32))]


def bn_node(src, out, name):
    return node("BatchNormalization", [src, name + "_s", name + "_b", name + "_m", name + "_v"],
                [out], name, epsilon=1e-3)


@case
def batchnorm_folding(c):
    """Conv (without and with bias) and ConvTranspose followed by BatchNormalization: the BN is
    folded away and the quantized model still computes the float model's outputs."""
    rng = np.random.default_rng(13)
    inits = [init("wa", randn(rng, (6, 3, 3, 3), 0.3)), init("wb", randn(rng, (5, 3, 3, 3), 0.3)),
             init("bb", randn(rng, (5,), 0.3)), init("wc", randn(rng, (3, 4, 2, 2), 0.3))]
    inits += bn_params(rng, 6, "bn_a") + bn_params(rng, 5, "bn_b") + bn_params(rng, 4, "bn_c")
    nodes = [node("Conv", ["x", "wa"], ["ca"], "conv_nobias", pads=[1, 1, 1, 1]),
             bn_node("ca", "ya", "bn_a"),
             node("Conv", ["x", "wb", "bb"], ["cb"], "conv_bias", pads=[1, 1, 1, 1]),
             bn_node("cb", "yb", "bn_b"),
             node("ConvTranspose", ["x", "wc"], ["cc"], "convt", strides=[2, 2]),
             bn_node("cc", "yc", "bn_c")]
    fm = c.model("bn", nodes, [vi("x", [1, 3, 8, 8])],
                 [vi("ya", [1, 6, 8, 8]), vi("yb", [1, 5, 8, 8]), vi("yc", [1, 4, 16, 16])],
                 inits)
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(8)])
    q = c.calibrate(fm, d, "bn.q.onnx")
    left = [n.name for n in q.ops("BatchNormalization")]
    need(not left, f"BatchNormalization left: {left}")
    for name in ("conv_nobias", "conv_bias", "convt"):
        q.qconst(name, 1, TensorProto.INT8)
    test = feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(8)])
    s = need_sqnr(fm, q.path, test)
    return f"3 BatchNormalization folded (Conv, Conv+bias, ConvTranspose), worst SQNR {s:.1f} dB"


@case
def shared_weight(c):
    """One initializer read by two Conv nodes is quantized once: one int8 tensor, one
    DequantizeLinear feeding both (per tensor and per channel)."""
    rng = np.random.default_rng(14)
    w = randn(rng, (4, 4, 3, 3), 0.3)
    nodes = [node("Conv", ["x", "w", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
             node("Relu", ["c1"], ["r1"], "relu1"),
             node("Conv", ["r1", "w", "b2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
             node("Add", ["c2", "x"], ["y"], "add")]
    fm = c.model("shared", nodes, [vi("x", [1, 4, 8, 8])], [vi("y", [1, 4, 8, 8])],
                 [init("w", w), init("b1", randn(rng, (4,), 0.1)),
                  init("b2", randn(rng, (4,), 0.1))])
    d = c.data("data", [randn(rng, (1, 4, 8, 8)) for _ in range(8)])
    figures = []
    for label, flags in (("per-tensor", []), ("per-channel", ["--per-channel"])):
        q = c.calibrate(fm, d, f"shared{len(flags)}.q.onnx", *flags)
        dq1, _, _ = q.qconst("conv1", 1, TensorProto.INT8)
        dq2, _, _ = q.qconst("conv2", 1, TensorProto.INT8)
        need(dq1 is dq2 or dq1.name == dq2.name,
             f"{label}: conv1 and conv2 read different DequantizeLinear nodes "
             f"('{dq1.name}', '{dq2.name}')")
        i8 = [t.name for t in q.inits.values()
              if t.data_type == TensorProto.INT8 and tuple(t.dims) == w.shape]
        need(len(i8) == 1, f"{label}: {len(i8)} int8 initializers of shape {w.shape}: {i8}")
        dqs = [n.name for n in q.ops("DequantizeLinear") if n.input[0] == i8[0]]
        need(len(dqs) == 1, f"{label}: {len(dqs)} DequantizeLinear read '{i8[0]}': {dqs}")
        no_float_copy(q, w.shape, "weight")
        s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 4, 8, 8)) for _ in range(4)]),
                      label + ": ")
        figures.append(f"{label} SQNR {s:.1f} dB")
    return "one int8 weight + one DequantizeLinear; " + ", ".join(figures)


@case
def varying_shapes(c):
    """Dynamic H, W: calibration samples of several sizes, the result runs on another size."""
    rng = np.random.default_rng(15)
    nodes = [node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Relu", ["c"], ["r"], "relu"),
             node("GlobalAveragePool", ["r"], ["g"], "gap"),
             node("Flatten", ["g"], ["f"], "flatten"),
             node("Gemm", ["f", "gw", "gb"], ["y"], "gemm", transB=1)]
    fm = c.model("dyn", nodes, [vi("x", [1, 3, "H", "W"])], [vi("y", [1, 5])],
                 [init("w", randn(rng, (8, 3, 3, 3), 0.3)), init("b", randn(rng, (8,), 0.1)),
                  init("gw", randn(rng, (5, 8), 0.5)), init("gb", randn(rng, (5,), 0.1))])
    sizes = [(8, 8), (12, 10), (16, 16), (7, 9), (5, 11)]
    d = c.data("data", [randn(rng, (1, 3, h, w)) for h, w in sizes])
    q = c.calibrate(fm, d, "dyn.q.onnx")
    dims = q.m.graph.input[0].type.tensor_type.shape.dim
    need(len(dims) == 4 and not dims[2].HasField("dim_value") and
         not dims[3].HasField("dim_value"),
         f"input shape fixed in the quantized model: {[str(x).strip() for x in dims]}")
    q.qconst("conv", 1, TensorProto.INT8)
    q.qconst("gemm", 1, TensorProto.INT8)
    test = [randn(rng, (1, 3, 20, 13)) for _ in range(4)] + \
           [randn(rng, (1, 3, 9, 9)) for _ in range(4)]
    s = need_sqnr(fm, q.path, feeds_x(test))
    return f"{len(sizes)} calibration sizes, runs at 20x13 and 9x9, SQNR {s:.1f} dB"


@case
def depth_space_share_scale(c):
    """DepthToSpace (both modes) and SpaceToDepth between convolutions only move values: their
    outputs are quantized with their inputs' scale and zero point, and the result stays close
    to the float model in onnxruntime."""
    rng = np.random.default_rng(21)
    nodes = [node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
             node("DepthToSpace", ["c1"], ["d1"], "d2s_dcr", blocksize=2),
             node("DepthToSpace", ["d1"], ["d2"], "d2s_crd", blocksize=1, mode="CRD"),
             node("Conv", ["d2", "w2", "b2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
             node("SpaceToDepth", ["c2"], ["s1"], "s2d", blocksize=2),
             node("Conv", ["s1", "w3", "b3"], ["y"], "conv3")]
    fm = c.model("space", nodes, [vi("x", [1, 3, 6, 6])], [vi("y", [1, 5, 6, 6])],
                 [init("w1", randn(rng, (16, 3, 3, 3), 0.3)), init("b1", randn(rng, (16,), 0.1)),
                  init("w2", randn(rng, (4, 4, 3, 3), 0.3)), init("b2", randn(rng, (4,), 0.1)),
                  init("w3", randn(rng, (5, 16, 1, 1), 0.3)), init("b3", randn(rng, (5,), 0.1))])
    d = c.data("data", [randn(rng, (1, 3, 6, 6)) for _ in range(8)])
    q = c.calibrate(fm, d, "space.q.onnx")
    for src, mover in (("c1", "d2s_dcr"), ("c2", "s2d")):
        out = q.node(mover).output[0]
        qn = [n for n in q.consumers.get(out, []) if n.op_type == "QuantizeLinear"]
        qi = [n for n in q.consumers.get(src, []) if n.op_type == "QuantizeLinear"]
        need(qn and qi, f"{mover}: its output or its input ('{src}') is not quantized")
        need(np.array_equal(q.arr(qn[0].input[1]), q.arr(qi[0].input[1])) and
             np.array_equal(q.arr(qn[0].input[2]), q.arr(qi[0].input[2])),
             f"{mover}: output scale {q.arr(qn[0].input[1])} differs from its input's "
             f"{q.arr(qi[0].input[1])}")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 6, 6)) for _ in range(4)]))
    return f"DepthToSpace DCR / CRD and SpaceToDepth share their input's scale, SQNR {s:.1f} dB"


@case
def static_shape_folding(c):
    """Shape and Size of an input with fixed declared dims fold, and the shape arithmetic after
    them (Gather, Unsqueeze, Concat, Cast) with them; with a symbolic batch they stay."""
    rng = np.random.default_rng(22)
    nodes = [node("Conv", ["x", "w"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Shape", ["x"], ["s"], "shape"),
             node("Gather", ["s", "zero"], ["n"], "gather", axis=0),
             node("Unsqueeze", ["n", "ax"], ["n1"], "unsq"),
             node("Concat", ["n1", "minus1"], ["shp"], "concat", axis=0),
             node("Reshape", ["c", "shp"], ["f"], "reshape"),
             node("Size", ["x"], ["sz"], "size"),
             node("Cast", ["sz"], ["szf"], "cast", to=TensorProto.FLOAT),
             node("Div", ["f", "szf"], ["y"], "div")]
    inits = [init("w", randn(rng, (8, 3, 3, 3), 0.3)), init("zero", np.array(0, np.int64)),
             init("ax", np.array([0], np.int64)), init("minus1", np.array([-1], np.int64))]
    d = c.data("data", [randn(rng, (2, 3, 6, 6)) for _ in range(4)])
    shape_ops = {"Shape", "Size", "Gather", "Unsqueeze", "Concat", "Cast"}
    figures = []
    for batch, folds in ((2, True), ("N", False)):
        fm = c.model(f"shape_{batch}", nodes, [vi("x", [batch, 3, 6, 6])], [vi("y", [batch, 288])],
                     inits)
        q = c.calibrate(fm, d, f"shape_{batch}.q.onnx")
        left = sorted({n.op_type for n in q.nodes} & shape_ops)
        need(not left if folds else "Shape" in left,
             f"batch {batch}: shape ops left {left}, expected {'none' if folds else 'Shape'}")
        s = need_sqnr(fm, q.path, feeds_x([randn(rng, (2, 3, 6, 6)) for _ in range(3)]))
        figures.append(f"batch {batch}: {'folded' if folds else 'kept'} ({s:.1f} dB)")
    return "; ".join(figures)


@case
def if_constant_condition(c):
    """An If whose condition comes from the fixed input shape (Shape -> Gather -> Greater) is
    replaced by the branch taken, then or else; with a symbolic input it stays, and the run
    refuses it naming the op."""
    rng = np.random.default_rng(23)
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(4)])
    figures = []
    for threshold, batch in ((2, 1), (5, 1), (2, "N")):
        then_g = helper.make_graph([node("Relu", ["x"], ["t_out"], "t_relu")], "then", [],
                                   [vi("t_out", [batch, 3, 8, 8])])
        else_g = helper.make_graph([node("Neg", ["x"], ["e_out"], "e_neg")], "else", [],
                                   [vi("e_out", [batch, 3, 8, 8])])
        nodes = [node("Shape", ["x"], ["s"], "shape"),
                 node("Gather", ["s", "one"], ["c1"], "gather", axis=0),
                 node("Greater", ["c1", "thr"], ["cond"], "greater"),
                 node("If", ["cond"], ["y0"], "if", then_branch=then_g, else_branch=else_g),
                 node("Conv", ["y0", "w", "b"], ["y"], "conv")]
        fm = c.model(f"if_{threshold}_{batch}", nodes, [vi("x", [batch, 3, 8, 8])],
                     [vi("y", [batch, 4, 6, 6])],
                     [init("one", np.array(1, np.int64)),
                      init("thr", np.array(threshold, np.int64)),
                      init("w", randn(rng, (4, 3, 3, 3), 0.3)), init("b", randn(rng, (4,), 0.1))])
        if batch == "N":
            r = c.run("--data", d, fm, "-o", c.path("if_sym.q.onnx"), "-q")
            expect_error(r, 3, "If")
            figures.append("symbolic: refused")
            continue
        q = c.calibrate(fm, d, f"if_{threshold}.q.onnx")
        need(not q.ops("If"), f"threshold {threshold}: the If is still there")
        taken = "Relu" if threshold < 3 else "Neg"
        need(q.ops(taken), f"threshold {threshold}: the {taken} branch was not inlined")
        s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(3)]))
        figures.append(f"{taken} branch inlined ({s:.1f} dB)")
    return "; ".join(figures)


@case
def duplicate_nodes(c):
    """Copies of a node (same op, inputs and attributes) merge before calibration, chains of
    them too; a copy whose output is a graph output stays, and so do nodes differing in an
    attribute (LeakyRelu alpha, Slice steps). The summary counts the merges."""
    rng = np.random.default_rng(29)
    sl = lambda src, out, name, step: node("Slice", [src, "st", "en", "ax", step], [out], name)
    nodes = [node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             sl("c", "s1", "slice1", "one"), sl("c", "s2", "slice2", "one"),   # copies
             sl("c", "s3", "slice3", "two"),                                    # other steps
             node("LeakyRelu", ["s1"], ["l1"], "leaky1", alpha=0.1),
             node("LeakyRelu", ["s2"], ["l2"], "leaky2", alpha=0.1),   # a copy once s2 is s1
             node("LeakyRelu", ["s1"], ["l3"], "leaky3", alpha=0.2),   # another alpha
             node("LeakyRelu", ["s1"], ["y2"], "leaky4", alpha=0.1),   # a copy, graph output
             node("Concat", ["l1", "l2", "l3"], ["cat"], "cat", axis=1),
             node("Add", ["s3", "s3"], ["s3x2"], "add"),
             node("Conv", ["cat", "w2"], ["y"], "conv2")]
    fm = c.model("dup", nodes, [vi("x", [1, 3, 8, 8])],
                 [vi("y", [1, 4, 8, 4]), vi("y2", [1, 4, 8, 4]), vi("s3x2", [1, 4, 8, 8])],
                 [init("w", randn(rng, (4, 3, 3, 3), 0.3)), init("b", randn(rng, (4,), 0.1)),
                  init("w2", randn(rng, (4, 12, 1, 1), 0.3)),
                  init("st", np.array([0], np.int64)), init("en", np.array([8], np.int64)),
                  init("ax", np.array([3], np.int64)), init("one", np.array([2], np.int64)),
                  init("two", np.array([1], np.int64))])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    out = c.path("dup.q.onnx")
    r = c.run("--data", d, fm, "-o", out)
    need(r.returncode == 0, f"calibrate exited {r.returncode}: {r.stderr.strip()[:300]}")
    need("merged 2 duplicate nodes" in r.stdout, "summary lacks 'merged 2 duplicate nodes': " +
         " ".join(l for l in r.stdout.splitlines() if "folded" in l))
    q = QModel(out)
    names = {n.name for n in q.nodes}
    need(not {"slice2", "leaky2"} & names, f"copies left: {sorted({'slice2', 'leaky2'} & names)}")
    need({"slice1", "slice3", "leaky1", "leaky3", "leaky4"} <= names,
         f"nodes merged that differ or write a graph output: "
         f"{sorted({'slice1', 'slice3', 'leaky1', 'leaky3', 'leaky4'} - names)}")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(3)]))
    # tensor attributes: ConstantOfShape of a symbolic shape (not folded), values 2, 2, 3
    cos = lambda out, name, v: node("ConstantOfShape", ["shp"], [out], name,
                                    value=helper.make_tensor("v", TensorProto.FLOAT, [1], [v]))
    nodes = [node("Shape", ["x"], ["shp"], "shape"), cos("k1", "cos1", 2.0),
             cos("k2", "cos2", 2.0), cos("k3", "cos3", 3.0),
             node("Mul", ["x", "k1"], ["m1"], "mul1"), node("Mul", ["m1", "k2"], ["m2"], "mul2"),
             node("Add", ["m2", "k3"], ["a"], "add"),
             node("Conv", ["a", "w"], ["y"], "conv", pads=[1, 1, 1, 1])]
    fm2 = c.model("dup_cos", nodes, [vi("x", ["N", 3, 8, 8])], [vi("y", ["N", 4, 8, 8])],
                  [init("w", randn(rng, (4, 3, 3, 3), 0.3))])
    q2 = c.calibrate(fm2, d, "dup_cos.q.onnx")
    left = sorted(n.name for n in q2.ops("ConstantOfShape"))
    need(left == ["cos1", "cos3"], f"ConstantOfShape nodes left {left}, expected cos1 and cos3")
    s2 = need_sqnr(fm2, q2.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(3)]))
    return f"slice2 and leaky2 merged, leaky3 (alpha), slice3 (steps), leaky4 (graph output) " \
           f"kept, SQNR {s:.1f} dB; ConstantOfShape value 2 merged, 3 kept ({s2:.1f} dB)"


@case
def input_movers(c):
    """A model input reaching a Conv through data-movement nodes only (YOLOX's focus layer:
    four strided Slices and a Concat) is quantized where the computing nodes read it: the
    Slices read the float input and each Concat input gets its QuantizeLinear, all with one
    scale, as onnxruntime's quantizer places them. Same for a Transpose before a Conv."""
    rng = np.random.default_rng(30)
    def sl(src, out, name, start, axis):
        return node("Slice", [src, f"b{start}", "big", f"a{axis}", "two"], [out], name)
    nodes = [sl("x", "h0", "sh0", 0, 2), sl("x", "h1", "sh1", 1, 2),
             sl("h0", "f0", "sw00", 0, 3), sl("h0", "f1", "sw01", 1, 3),
             sl("h1", "f2", "sw10", 0, 3), sl("h1", "f3", "sw11", 1, 3),
             node("Concat", ["f0", "f1", "f2", "f3"], ["cat"], "cat", axis=1),
             node("Conv", ["cat", "w", "b"], ["y"], "conv", pads=[1, 1, 1, 1]),
             node("Transpose", ["x"], ["xt"], "tr", perm=[0, 1, 3, 2]),
             node("Conv", ["xt", "w2"], ["y2"], "conv2")]
    fm = c.model("focus", nodes, [vi("x", [1, 3, 8, 8])],
                 [vi("y", [1, 8, 4, 4]), vi("y2", [1, 2, 7, 8])],
                 [init("w", randn(rng, (8, 12, 3, 3), 0.2)), init("b", randn(rng, (8,), 0.1)),
                  init("w2", randn(rng, (2, 3, 2, 1), 0.3)),
                  init("b0", np.array([0], np.int64)), init("b1", np.array([1], np.int64)),
                  init("big", np.array([1 << 30], np.int64)), init("two", np.array([2], np.int64)),
                  init("a2", np.array([2], np.int64)), init("a3", np.array([3], np.int64))])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    q = c.calibrate(fm, d, "focus.q.onnx")
    readers = sorted(n.op_type for n in q.consumers.get("x", []))
    need(readers == ["Slice", "Slice", "Transpose"], f"the input is read by {readers}, "
         "expected the float Slices and Transpose only")
    for t in ("f0", "f1", "f2", "f3", "xt"):
        q.q_of(t)
        need(q.dq_feeding(t) is None, f"'{t}' comes from a DequantizeLinear")
    scales = {float(q.arr(q.q_of(t).input[1])) for t in ("f0", "f1", "f2", "f3")}
    need(len(scales) == 1, f"the Concat inputs have scales {sorted(scales)}")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(3)]))
    return f"Slices and Transpose float, QuantizeLinear after them (one scale), SQNR {s:.1f} dB"


@case
def zero_width_range(c):
    """An activation that is always zero (x * 0) gets a positive finite scale; onnxruntime
    output has no NaN and matches the float model."""
    rng = np.random.default_rng(16)
    nodes = [node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Mul", ["c", "zero"], ["z"], "times_zero"),
             node("Add", ["c", "z"], ["y"], "add")]
    fm = c.model("zero", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])],
                 [init("w", randn(rng, (4, 3, 3, 3), 0.3)), init("b", randn(rng, (4,), 0.1)),
                  init("zero", np.array(0.0, F32))])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    figures = []
    for label, flags in (("asymmetric uint8", []),
                         ("symmetric int8", ["--symmetric-activations", "--activation-type",
                                             "int8"])):
        q = c.calibrate(fm, d, f"zero{len(flags)}.q.onnx", *flags)
        qz = q.q_of("z")                        # the zero tensor itself is quantized
        scales = q.qdq_scales()
        for name, s in scales:
            need(np.all(np.isfinite(s)) and np.all(s > 0), f"{label}: scale '{name}' = {s}")
        need(float(q.arr(qz.input[1])) > 0, f"{label}: scale of z not positive")
        s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]),
                      label + ": ")
        figures.append(f"{label}: {len(scales)} scales > 0, SQNR {s:.1f} dB")
    return "; ".join(figures)


@case
def bias_overflow(c):
    """Tiny weights (1e-8) with large biases (1e3): bias / (s_in * s_w) would not fit in int32.
    The int32 bias must not saturate, keep scale = s_in * s_w, and the output stays right."""
    rng = np.random.default_rng(17)
    w = randn(rng, (4, 3, 3, 3), 1e-8)
    b = (rng.uniform(500, 1500, 4) * np.array([1, -1, 1, -1])).astype(F32)
    nodes = [node("Conv", ["x", "w", "b"], ["y"], "conv", pads=[1, 1, 1, 1])]
    fm = c.model("bias", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])],
                 [init("w", w), init("b", b)])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    figures = []
    for label, flags in (("per-tensor", []), ("per-channel", ["--per-channel"])):
        q = c.calibrate(fm, d, f"bias{len(flags)}.q.onnx", *flags)
        _, bq, bs = q.qconst("conv", 2, TensorProto.INT32)
        _, _, ws = q.qconst("conv", 1, TensorProto.INT8)
        xdq = q.dq_feeding(q.node("conv").input[0])
        need(xdq is not None, f"{label}: conv input 0 not from DequantizeLinear")
        xs = q.arr(xdq.input[1])
        big = np.abs(bq.astype(np.int64)).max()
        need(big < INT32_MAX, f"{label}: int32 bias saturated ({bq.tolist()})")
        want = (xs.astype(np.float64) * ws.astype(np.float64)) * np.ones_like(bs, np.float64)
        need(np.allclose(bs, want, rtol=1e-5, atol=0),
             f"{label}: bias scale {bs.tolist()} != input scale x weight scale {want.tolist()}")
        back = bq.astype(np.float64) * bs
        need(np.allclose(back, b, rtol=1e-3), f"{label}: dequantized bias {back.tolist()} "
             f"!= float bias {b.tolist()}")
        s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]),
                      label + ": ")
        figures.append(f"{label}: max |q| {big:.3g}, SQNR {s:.1f} dB")
    return "; ".join(figures)


def read_from_dq(q, n):
    return [t for t in n.input if t and q.dq_feeding(t) is not None]


@case
def exclude_and_op_types(c):
    """--exclude NODE leaves that node's inputs float; --op-types Conv quantizes only what Conv
    nodes read (and their outputs), not MatMul/Mul/Add."""
    rng = np.random.default_rng(18)
    # x -> conv1 -> Tanh (not quantized) -> conv2 (excluded) -> Relu -> conv3 -> y
    nodes = [node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
             node("Tanh", ["c1"], ["t"], "tanh"),
             node("Conv", ["t", "w2", "b2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
             node("Relu", ["c2"], ["r"], "relu"),
             node("Conv", ["r", "w3", "b3"], ["y"], "conv3", pads=[1, 1, 1, 1])]
    inits = []
    for k in (1, 2, 3):
        inits += [init(f"w{k}", randn(rng, (4, 4 if k > 1 else 3, 3, 3), 0.3)),
                  init(f"b{k}", randn(rng, (4,), 0.1))]
    fm = c.model("excl", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])], inits)
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    q = c.calibrate(fm, d, "excl.q.onnx", "--exclude", "conv2")
    conv2 = q.node("conv2")
    bad = read_from_dq(q, conv2)
    need(not bad, f"--exclude conv2: conv2 reads DequantizeLinear outputs {bad}")
    q.float_init("conv2", 1)
    q.float_init("conv2", 2)
    q.qconst("conv1", 1, TensorProto.INT8)
    q.qconst("conv3", 1, TensorProto.INT8)
    s1 = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]),
                   "--exclude: ")
    # conv3 reads Relu's quantized output: left float it must read the float tensor, else
    # onnxruntime quantizes its weights itself (WeightBiasQuantization) and fuses it anyway
    q = c.calibrate(fm, d, "excl3.q.onnx", "--exclude", "conv3")
    bad = read_from_dq(q, q.node("conv3"))
    need(not bad, f"--exclude conv3: conv3 reads DequantizeLinear outputs {bad}")
    from quant_check import float_ops
    need(float_ops(q.path)[0].get("Conv", 0) >= 1,
         f"--exclude conv3: onnxruntime runs no Conv in float: {dict(float_ops(q.path)[0])}")
    # the same with a data-movement node in between (conv1 -> Relu -> Transpose -> conv3):
    # the Transpose reads float too, else onnxruntime moves the DequantizeLinear past it and
    # quantizes conv3 all the same
    nodes_t = [nodes[0], node("Relu", ["c1"], ["r1"], "relu1"),
               node("Transpose", ["r1"], ["tr"], "transpose", perm=[0, 1, 3, 2]),
               node("Conv", ["tr", "w2", "b2"], ["y"], "conv3", pads=[1, 1, 1, 1])]
    fmt = c.model("excl_t", nodes_t, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])],
                  inits[:4])
    q = c.calibrate(fmt, d, "excl_t.q.onnx", "--exclude", "conv3")
    bad = read_from_dq(q, q.node("transpose"))
    need(not bad, f"--exclude conv3 behind a Transpose: the Transpose reads DequantizeLinear "
         f"outputs {bad}")
    need(float_ops(q.path)[0].get("Conv", 0) >= 1, "--exclude conv3 behind a Transpose: "
         f"onnxruntime runs no Conv in float: {dict(float_ops(q.path)[0])}")

    # x * k + kb -> conv -> Relu -> GlobalAveragePool -> Flatten -> MatMul + mb -> y
    nodes = [node("Mul", ["x", "k"], ["m"], "mul"),
             node("Add", ["m", "kb"], ["a"], "add_pre"),
             node("Conv", ["a", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Relu", ["c"], ["r"], "relu"),
             node("GlobalAveragePool", ["r"], ["g"], "gap"),
             node("Flatten", ["g"], ["f"], "flatten"),
             node("MatMul", ["f", "mw"], ["mm"], "matmul"),
             node("Add", ["mm", "mb"], ["y"], "add_post")]
    fm2 = c.model("optypes", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 5])],
                  [init("k", rng.uniform(0.5, 2, (1, 3, 1, 1)).astype(F32)),
                   init("kb", randn(rng, (1, 3, 1, 1), 0.5)),
                   init("w", randn(rng, (6, 3, 3, 3), 0.3)), init("b", randn(rng, (6,), 0.1)),
                   init("mw", randn(rng, (6, 5), 0.5)), init("mb", randn(rng, (5,), 0.1))])
    # control: by default MatMul's weight is quantized, so the check below can tell
    dflt = c.calibrate(fm2, d, "optypes_default.q.onnx")
    dflt.qconst("matmul", 1, TensorProto.INT8)
    q = c.calibrate(fm2, d, "optypes.q.onnx", "--op-types", "Conv")
    need(q.dq_feeding(q.node("conv").input[0]) is not None,
         "--op-types Conv: conv input 'a' not quantized")
    q.qconst("conv", 1, TensorProto.INT8)
    conv_tensors = {"a", "w", "b", "c"}            # what the Conv reads and writes
    for n in q.nodes:
        if n.op_type in ("Conv", "QuantizeLinear", "DequantizeLinear"):
            continue
        for t in read_from_dq(q, n):
            dq = q.dq_feeding(t)
            qn = q.producer.get(dq.input[0])
            orig = qn.input[0] if qn is not None and qn.op_type == "QuantizeLinear" else t
            need(orig in conv_tensors, f"--op-types Conv: {n.op_type} '{n.name}' reads "
                 f"quantized '{orig}', which no Conv reads or writes")
    q.float_init("matmul", 1)
    q.float_init("mul", 1)
    i8 = sorted({n.input[0] for n in q.ops("DequantizeLinear") if n.input[0] in q.inits and
                 q.inits[n.input[0]].data_type == TensorProto.INT8})
    need(len(i8) == 1, f"--op-types Conv: int8 constants {i8}, expected only the Conv weight")
    s2 = need_sqnr(fm2, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]),
                   "--op-types: ")
    return (f"--exclude conv2 reads float, SQNR {s1:.1f} dB; --op-types Conv leaves MatMul/"
            f"Mul/Add float, SQNR {s2:.1f} dB")


@case
def activation_types(c):
    """--activation-type int8/int16, --symmetric-activations and --reduce-range show in the
    zero points and weight codes, and onnxruntime runs every variant."""
    rng = np.random.default_rng(19)
    nodes = [node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
             node("Relu", ["c1"], ["r"], "relu"),
             node("Conv", ["r", "w2", "b2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
             node("Add", ["c2", "x"], ["y"], "add")]
    fm = c.model("acts", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 3, 8, 8])],
                 [init("w1", randn(rng, (4, 3, 3, 3), 0.3)), init("b1", randn(rng, (4,), 0.1)),
                  init("w2", randn(rng, (3, 4, 3, 3), 0.3)), init("b2", randn(rng, (3,), 0.1))])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    test = feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)])
    U8, I8, I16 = TensorProto.UINT8, TensorProto.INT8, TensorProto.INT16
    variants = [
        ("int8", ["--activation-type", "int8"], I8, None),
        ("int16", ["--activation-type", "int16"], I16, None),
        ("symmetric uint8", ["--symmetric-activations"], U8, 128),
        ("symmetric int8", ["--symmetric-activations", "--activation-type", "int8"], I8, 0),
    ]
    figures = []
    for i, (label, flags, dtype, zp) in enumerate(variants):
        q = c.calibrate(fm, d, f"acts{i}.q.onnx", *flags)
        qs = q.ops("QuantizeLinear")
        need(qs, f"{label}: no QuantizeLinear")
        for qn in qs:
            dt, z = q.zero_point(qn)
            need(dt == dtype, f"{label}: {qn.name} zero point is "
                 f"{TensorProto.DataType.Name(dt)}, expected {TensorProto.DataType.Name(dtype)}")
            need(zp is None or np.all(z == zp), f"{label}: {qn.name} zero point {z}, "
                 f"expected {zp}")
        if dtype == I16:
            need(q.opset >= 21, f"int16: opset {q.opset}, 16-bit Q/DQ needs >= 21")
        s = need_sqnr(fm, q.path, test, label + ": ")
        figures.append(f"{label} SQNR {s:.1f}")
    q = c.calibrate(fm, d, "acts_rr.q.onnx", "--reduce-range")
    big = 0
    for name in ("conv1", "conv2"):
        _, wq, _ = q.qconst(name, 1, I8)
        need(wq.min() >= -64 and wq.max() <= 64, f"--reduce-range: {name} weight codes "
             f"[{wq.min()}, {wq.max()}] outside [-64, 64]")
        big = max(big, int(np.abs(wq.astype(np.int32)).max()))
    need(big > 32, f"--reduce-range: weight codes only reach {big}")
    s = need_sqnr(fm, q.path, test, "--reduce-range: ", floor=20.0)
    figures.append(f"reduce-range |w| <= {big}, SQNR {s:.1f}")
    return "; ".join(figures) + " dB"


@case
def per_channel_axes(c):
    """--per-channel: the weight DequantizeLinear axis and scale length per op (Conv 0,
    ConvTranspose 1, Gemm transB=1 0, Gemm transB=0 1, MatMul 1). Channel counts all differ,
    so a wrong axis shows in the scale length too. The codes are numpy's round-half-even of
    w / scale along that axis, clipped to [-127, 127]; the Conv's first channel has a scale
    of exactly 2^-7 and weights on half steps (ties)."""
    rng = np.random.default_rng(20)
    nodes = [node("Conv", ["x", "cw", "cb"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("ConvTranspose", ["c", "tw", "tb"], ["t"], "convt", strides=[2, 2]),
             node("GlobalAveragePool", ["t"], ["g"], "gap"),
             node("Flatten", ["g"], ["f"], "flatten"),
             node("Gemm", ["f", "g1w", "g1b"], ["g1"], "gemm_tb1", transB=1),
             node("Gemm", ["g1", "g2w", "g2b"], ["g2"], "gemm_tb0"),
             node("MatMul", ["g2", "mw"], ["y"], "matmul")]
    shapes = {"cw": (8, 3, 3, 3), "tw": (8, 6, 2, 2), "g1w": (5, 6), "g2w": (5, 4),
              "mw": (4, 7)}
    warr = {k: randn(rng, s, 0.4) for k, s in shapes.items()}
    ties = np.array([127, 2.5, -3.5, 0.5, -0.5, 1.5, -126.5, 3, 4.5] * 3, np.float32)[:27]
    warr["cw"][0] = (ties * np.float32(2.0 ** -7)).reshape(3, 3, 3)
    inits = [init(k, a) for k, a in warr.items()]
    inits += [init("cb", randn(rng, (8,), 0.1)), init("tb", randn(rng, (6,), 0.1)),
              init("g1b", randn(rng, (5,), 0.1)), init("g2b", randn(rng, (4,), 0.1))]
    fm = c.model("pc", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 7])], inits)
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    # without the pair guard, which moves the codes of pairs over 128 (here channel 0's 127s)
    q = c.calibrate(fm, d, "pc.q.onnx", "--per-channel", "--no-pair-guard")
    want = [("conv", "cw", 0), ("convt", "tw", 1), ("gemm_tb1", "g1w", 0),
            ("gemm_tb0", "g2w", 1), ("matmul", "mw", 1)]
    for name, w, axis in want:
        dq, wq, sc = q.qconst(name, 1, TensorProto.INT8)
        got = attr(dq, "axis", 1)           # DequantizeLinear's default axis is 1
        need(sc.ndim == 1, f"{name}: weight scale has shape {sc.shape}, expected 1-D")
        need(got == axis, f"{name}: weight DequantizeLinear axis {got}, expected {axis}")
        need(sc.shape[0] == shapes[w][axis], f"{name}: {sc.shape[0]} scales, expected "
             f"{shapes[w][axis]} (dim {axis} of {shapes[w]})")
        bshape = [1] * len(shapes[w])
        bshape[axis] = -1
        want_q = np.clip(np.rint(warr[w].astype(np.float64) /
                                 sc.astype(np.float64).reshape(bshape)), -127, 127)
        bad = np.argwhere(wq.astype(np.float64) != want_q)
        need(bad.size == 0, f"{name}: {len(bad)} weight codes differ from round-half-even of "
             f"w / scale, first at {bad[0].tolist() if bad.size else None}")
    _, wq, sc = q.qconst("conv", 1, TensorProto.INT8)
    need(sc[0] == np.float32(2.0 ** -7), f"conv channel 0 scale {sc[0]}, expected 2^-7")
    need(wq[0].reshape(-1)[:9].tolist() == [127, 2, -4, 0, 0, 2, -126, 3, 4],
         f"conv channel 0 ties coded {wq[0].reshape(-1)[:9].tolist()}")
    # in onnxruntime the guarded model (default): without VNNI its kernels would saturate on
    # channel 0's pairs of 127s (13.4 dB on an AVX2 machine)
    q = c.calibrate(fm, d, "pc.guard.q.onnx", "--per-channel")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]))
    # the guard's report: the summary line and the params file agree, channel 0 of the Conv
    # (a pair 127 + 127: input channels 0 and 1 at kernel position 0, 0) is among the widened
    widened = {}
    for tag, flags in (("guard", []), ("off", ["--no-pair-guard"])):
        j = c.path(f"pc.{tag}.json")
        r = c.run("--data", d, fm, "-o", c.path(f"pc.{tag}.r.onnx"), "--per-channel",
                  "--params-out", j, *flags)
        need(r.returncode == 0, f"calibrate {flags} exited {r.returncode}: {r.stderr[:300]}")
        t = json.load(open(j))["tensors"]
        got = {k: v["pair_guard_widened"] for k, v in t.items() if "pair_guard_widened" in v}
        line = [x for x in r.stdout.splitlines() if x.startswith("calibrate: pair guard: ")]
        if tag == "off":
            need(not got and not line, f"--no-pair-guard still reports the guard: {got} {line}")
            continue
        total = sum(len(v["scale"]) for v in t.values() if v["kind"] == "weight")
        need(got.get("cw", 0) >= 1, f"Conv weight cw not among the widened: {got}")
        want = f"calibrate: pair guard: {sum(got.values())} of {total} weight scales widened"
        need(len(line) == 1 and line[0].startswith(want),
             f"summary {line}, expected a line starting '{want}'")
        widened = got
    _, wq, _ = q.qconst("conv", 1, TensorProto.INT8)
    pair = int(wq[0, 0, 0, 0]) + int(wq[0, 1, 0, 0])
    need(pair <= 128, f"guarded conv channel 0 pair sums to {pair} codes")
    return (f"axes Conv 0, ConvTranspose 1, Gemm tB=1 0, Gemm tB=0 1, MatMul 1; codes = "
            f"round-half-even (ties included); guarded: SQNR {s:.1f} dB, widened "
            f"{sum(widened.values())} scale(s) ({', '.join(sorted(widened))}), reported alike")


@case
def bias_float(c):
    """--bias float keeps Conv and Gemm biases as float initializers: no int32 tensor."""
    rng = np.random.default_rng(21)
    nodes = [node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Relu", ["c"], ["r"], "relu"),
             node("GlobalAveragePool", ["r"], ["g"], "gap"),
             node("Flatten", ["g"], ["f"], "flatten"),
             node("Gemm", ["f", "gw", "gb"], ["y"], "gemm", transB=1)]
    b, gb = randn(rng, (6,), 0.2), randn(rng, (5,), 0.2)
    fm = c.model("biasf", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 5])],
                 [init("w", randn(rng, (6, 3, 3, 3), 0.3)), init("b", b),
                  init("gw", randn(rng, (5, 6), 0.5)), init("gb", gb)])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    # bias correction (the default) may move them: without it they are the trained values
    q = c.calibrate(fm, d, "biasf.q.onnx", "--bias", "float", "--no-bias-correction")
    need(np.array_equal(q.float_init("conv", 2), b), "conv bias values changed")
    need(np.array_equal(q.float_init("gemm", 2), gb), "gemm bias values changed")
    i32 = [t.name for t in q.inits.values() if t.data_type == TensorProto.INT32]
    need(not i32, f"int32 initializers with --bias float: {i32}")
    q.qconst("conv", 1, TensorProto.INT8)
    q.qconst("gemm", 1, TensorProto.INT8)
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]))
    return f"Conv and Gemm biases float, no int32, SQNR {s:.1f} dB"


@case
def params_roundtrip(c):
    """--params-out then --params-in (no --data) rebuilds a byte-identical model (of one
    calibrated without bias correction: the parameters file holds ranges, not the biases the
    correction measured on data); a per-channel file re-applied without --per-channel gives a
    warning; a corrupt parameters file is refused with exit 2 and one line naming it."""
    rng = np.random.default_rng(22)
    nodes = [node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
             node("Relu", ["c1"], ["r"], "relu"),
             node("Conv", ["r", "w2", "b2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
             node("Add", ["c2", "x"], ["a"], "add"),
             node("Sigmoid", ["a"], ["y"], "sigmoid")]
    fm = c.model("params", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 3, 8, 8])],
                 [init("w1", randn(rng, (4, 3, 3, 3), 0.3)), init("b1", randn(rng, (4,), 0.1)),
                  init("w2", randn(rng, (3, 4, 3, 3), 0.3)), init("b2", randn(rng, (3,), 0.1))])
    d = c.data("data", [randn(rng, (1, 3, 8, 8)) for _ in range(6)])
    figures = []
    for label, flags in (("minmax", []), ("percentile", ["--method", "percentile",
                                                         "--per-channel"])):
        p = c.path(f"p_{label}.json")
        c.calibrate(fm, d, f"params_{label}_a.onnx", "--params-out", p, "--no-bias-correction",
                    *flags)
        need(os.path.exists(p), f"{label}: --params-out wrote nothing")
        c.calibrate(fm, None, f"params_{label}_b.onnx", "--params-in", p, *flags)
        with open(c.path(f"params_{label}_a.onnx"), "rb") as f:
            a = f.read()
        with open(c.path(f"params_{label}_b.onnx"), "rb") as f:
            b = f.read()
        need(a == b, f"{label}: model from --params-in differs from the calibrated one "
             f"({len(a)} vs {len(b)} bytes)")
        figures.append(f"{label} {len(a)} bytes identical")
    # weights are quantized again with the options given: a per-channel file re-applied
    # without --per-channel gives per-tensor weights, and calibrate says so (once, naming the
    # file and the two weights); with --per-channel it says nothing
    p = c.path("p_percentile.json")
    r = c.run("--params-in", p, fm, "-o", c.path("params_pt.onnx"), "-q")
    warn = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    need(r.returncode == 0 and len(warn) == 1 and p in warn[0] and "2 weights per channel" in
         warn[0], f"per-channel file without --per-channel: exit {r.returncode}, stderr "
         f"{r.stderr.strip()[:300]!r}")
    r = c.run("--params-in", p, fm, "-o", c.path("params_pc.onnx"), "-q", "--per-channel")
    need(r.returncode == 0 and not r.stderr.strip(), f"with --per-channel: exit "
         f"{r.returncode}, stderr {r.stderr.strip()[:300]!r}")
    figures.append("per-channel file without --per-channel: warned")
    good = open(c.path("p_minmax.json"), encoding="utf-8").read()
    # one activation's min made a string: the message must name the file and that tensor
    doc = json.loads(good)
    acts = [k for k, v in doc["tensors"].items() if v.get("kind") == "activation"]
    need(acts, "p_minmax.json lists no activation")
    doc["tensors"][acts[-1]]["min"] = "oops"
    corrupt = {
        "truncated.json": (good[:len(good) // 2], []),
        "garbage.json": ("\x00\x01 this is not JSON {{{", []),
        "bad_min.json": (json.dumps(doc, indent=1), [f"'{acts[-1]}'"]),
    }
    for name, (text, needles) in corrupt.items():
        p = c.path(name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        out = c.path("corrupt.onnx")
        r = c.run("--params-in", p, fm, "-o", out, "-q")
        try:
            expect_error(r, 2, p, *needles)
        except Fail as e:
            raise Fail(f"{name}: {e}")
        need(not os.path.exists(out), f"{name}: an output model was written anyway")
    return "; ".join(figures) + f"; {len(corrupt)} corrupt files refused (exit 2)"


@case
def ranges_include_zero(c):
    """All-positive (Relu + 5) and all-negative (-Relu - 5) activations: the range is widened
    to include 0, so the uint8 zero point is 0 (resp. 255), 0 is exactly representable and
    the representable range still covers every calibration value."""
    rng = np.random.default_rng(23)
    nodes = [node("Relu", ["x"], ["r"], "relu"),
             node("Add", ["r", "five"], ["pos"], "add_pos"),
             node("Conv", ["pos", "w1"], ["y1"], "conv_pos"),
             node("Mul", ["r", "minus_one"], ["n"], "neg"),
             node("Add", ["n", "minus_five"], ["negt"], "add_neg"),
             node("Conv", ["negt", "w2"], ["y2"], "conv_neg")]
    fm = c.model("zero_in", nodes, [vi("x", [1, 3, 8, 8])],
                 [vi("y1", [1, 4, 8, 8]), vi("y2", [1, 4, 8, 8])],
                 [init("five", np.array(5.0, F32)), init("minus_one", np.array(-1.0, F32)),
                  init("minus_five", np.array(-5.0, F32)),
                  init("w1", randn(rng, (4, 3, 1, 1), 0.3)),
                  init("w2", randn(rng, (4, 3, 1, 1), 0.3))])
    xs = [randn(rng, (1, 3, 8, 8)) for _ in range(6)]
    d = c.data("data", xs)
    q = c.calibrate(fm, d, "zero_in.q.onnx")
    pos = np.concatenate([np.maximum(x, 0) + 5 for x in xs])
    figures = []
    for tensor, data, want_zp in (("pos", pos, 0), ("negt", -pos, 255)):
        qn = q.q_of(tensor)
        dt, zp = q.zero_point(qn)
        scale = float(q.arr(qn.input[1]))
        need(dt == TensorProto.UINT8, f"{tensor}: zero point {TensorProto.DataType.Name(dt)}")
        zp = int(zp)
        need(0 <= zp <= 255, f"{tensor}: zero point {zp} outside [0, 255]")
        need(zp == want_zp, f"{tensor}: data in [{data.min():.3f}, {data.max():.3f}] but zero "
             f"point {zp}: the range does not include 0")
        lo, hi = scale * (0 - zp), scale * (255 - zp)
        need(lo <= min(data.min(), 0) + scale / 2 and hi >= max(data.max(), 0) - scale / 2,
             f"{tensor}: representable [{lo:.3f}, {hi:.3f}] misses calibration data "
             f"[{data.min():.3f}, {data.max():.3f}]")
        figures.append(f"{tensor} zp {zp} covers [{lo:.2f}, {hi:.2f}]")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]))
    return "; ".join(figures) + f"; SQNR {s:.1f} dB"


@case
def nan_in_data(c):
    """A sample with NaN: skipped with a warning naming it (exit 0); --strict: exit 2 naming
    it, no model written."""
    rng = np.random.default_rng(24)
    nodes = [node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1]),
             node("Relu", ["c"], ["y"], "relu")]
    fm = c.model("nan", nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])],
                 [init("w", randn(rng, (4, 3, 3, 3), 0.3)), init("b", randn(rng, (4,), 0.1))])
    xs = [randn(rng, (1, 3, 8, 8)) for _ in range(5)]
    xs[2] = xs[2].copy()
    xs[2][0, 1, 3, 4] = np.nan
    names = ["s0.npy", "s1.npy", "poisoned.npy", "s3.npy", "s4.npy"]
    d = c.data("data", xs, names)
    out = c.path("nan.q.onnx")
    r = c.run("--data", d, fm, "-o", out, "-q")
    need(r.returncode == 0, f"exit status {r.returncode} (stderr: {r.stderr.strip()[:300]})")
    warn = [ln for ln in r.stderr.splitlines() if "poisoned.npy" in ln]
    need(warn and "warning" in warn[0], f"no warning naming poisoned.npy on stderr: "
         f"{r.stderr.strip()[:300]}")
    q = QModel(out)
    for name, s in q.qdq_scales():
        need(np.all(np.isfinite(s)) and np.all(s > 0), f"scale '{name}' = {s} after NaN sample")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(4)]))
    out2 = c.path("nan_strict.q.onnx")
    r = c.run("--data", d, fm, "-o", out2, "-q", "--strict")
    try:
        expect_error(r, 2, "poisoned.npy")
    except Fail as e:
        raise Fail(f"--strict: {e}")
    need(not os.path.exists(out2), "--strict: a model was written anyway")
    return f"warning '{warn[0][:70]}', SQNR {s:.1f} dB; --strict exit 2"


@case
def sigmoid_gates(c):
    """A Sigmoid's output (here SiLU's gate, x * Sigmoid(x), before a Conv) takes its observed
    range with mse and entropy (params JSON method "minmax (sigmoid output)", range = observed
    = numpy's sigmoid of the data's min and max), while the tensor next to it (the Mul's
    output) is clipped by the method; percentile and EMA keep their own range for the gate.
    With minmax and (asymmetric) percentile the gate's ranges are derived from its input's
    (src/quant/derived.c): exactly the sigmoid of the input's chosen range. The models stay
    within the SQNR floor."""
    rng = np.random.default_rng(25)
    nodes = [node("Sigmoid", ["x"], ["s"], "sigmoid"),
             node("Mul", ["x", "s"], ["m"], "silu"),
             node("Conv", ["m", "w", "b"], ["y"], "conv", pads=[1, 1, 1, 1])]
    fm = c.model("gates", nodes, [vi("x", [1, 4, 8, 8])], [vi("y", [1, 3, 8, 8])],
                 [init("w", randn(rng, (3, 4, 3, 3), 0.3)), init("b", randn(rng, (3,), 0.1))])
    xs = [randn(rng, (1, 4, 8, 8), 2.0) for _ in range(8)]
    xs[3][0, 1, 2, 2] = 9.0                     # an outlier for the clipping methods to cut
    d = c.data("data", xs)
    allx = np.concatenate(xs).astype(F32)
    sig = 1.0 / (1.0 + np.exp(-allx.astype(np.float64)))
    figures, clipped = [], 0
    f32_sigmoid = lambda v: float(np.float32(1.0) / (np.float32(1.0) + np.exp(-np.float32(v))))
    for meth in ("minmax", "percentile", "mse", "entropy", "ema"):
        p = c.path(f"gates_{meth}.json")
        q = c.calibrate(fm, d, f"gates_{meth}.onnx", "--method", meth, "--params-out", p,
                        "--no-bias-correction")
        t = json.load(open(p, encoding="utf-8"))["tensors"]
        need("s" in t and "m" in t, f"{meth}: tensors s, m missing from the params JSON")
        g, m = t["s"], t["m"]
        lo, hi, olo, ohi = g["min"][0], g["max"][0], g["observed_min"][0], g["observed_max"][0]
        need(abs(olo - sig.min()) <= 1e-6 * sig.min() + 1e-9 and
             abs(ohi - sig.max()) <= 1e-6, f"{meth}: gate observed [{olo}, {ohi}], numpy "
             f"[{sig.min()}, {sig.max()}]")
        if meth in ("minmax", "percentile"):
            xr = t["x"]
            want = (f32_sigmoid(xr["min"][0]), f32_sigmoid(xr["max"][0]))
            need(abs(lo - want[0]) <= 1e-6 * want[0] + 1e-12 and abs(hi - want[1]) <= 1e-6,
                 f"{meth}: gate range [{lo}, {hi}], sigmoid of the input's chosen range "
                 f"[{xr['min'][0]}, {xr['max'][0]}]: {want}")
        if meth == "minmax":
            need(g["method"] == "minmax" and lo == olo and hi == ohi,
                 f"minmax: gate method '{g['method']}', range [{lo}, {hi}] against observed "
                 f"[{olo}, {ohi}]")
        elif meth in ("ema", "percentile"):
            need(g["method"] == meth and (hi < ohi or meth == "percentile"), f"{meth}: gate "
                 f"method {g['method']}, range max {hi} (observed {ohi}): its own range expected")
        else:
            need(g["method"] == "minmax (sigmoid output)" and lo == olo and hi == ohi,
                 f"{meth}: gate method '{g['method']}', range [{lo}, {hi}] against observed "
                 f"[{olo}, {ohi}]")
        if meth not in ("ema", "minmax"):
            clipped += m["max"][0] < m["observed_max"][0]
        need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 4, 8, 8), 2.0) for _ in range(4)]),
                  meth)
        figures.append(f"{meth} gate max {hi:.6f}")
    need(clipped >= 2, f"the Mul output was clipped by {clipped} of 3 clipping methods: the "
         "gate rule must not apply to it")
    # where the percentile cuts (65536 values, 99.9): the gate's cut is the sigmoid of its
    # input's, not the one a histogram of the gate's own values gives (a bin of 1/2048 there)
    xb = [randn(rng, (1, 4, 8, 8), 2.0) for _ in range(256)]
    db = c.data("data_big", xb)
    p = c.path("gates_big.json")
    c.calibrate(fm, db, "gates_big.onnx", "--method", "percentile", "--percentile", "99.9",
                "--params-out", p, "--no-bias-correction")
    t = json.load(open(p, encoding="utf-8"))["tensors"]
    hi, xhi, ohi = t["s"]["max"][0], t["x"]["max"][0], t["s"]["observed_max"][0]
    need(xhi < np.concatenate(xb).max() and abs(hi - f32_sigmoid(xhi)) <= 1e-6,
         f"percentile 99.9: gate max {hi}, input max {xhi} (observed {ohi}): sigmoid "
         f"{f32_sigmoid(xhi)} expected")
    return "; ".join(figures) + f"; Mul output clipped by {clipped} of 3; 99.9 gate cut {hi:.6f}"


@case
def monotone_maps(c):
    """A tanh GELU as exporters write it (Mul / Add / Tanh with scalar constants), then a Div
    and a Sub by constants and a Mul by a negative one, before a Conv. The monotone maps (the
    Mul by k, the Tanh, the Add of 1, the Mul by 0.5, the Div, the Sub) take their ranges from
    their inputs' (src/quant/derived.c): with minmax the observed range, carried through, equals
    numpy's min / max of the tensor; with asymmetric percentile each map's range is the map of
    its input's chosen range, through a chain (the Tanh's input is itself derived); with mse
    and entropy only the scalings derive (range = constant x the input's range). The Mul by
    -1.5 reverses order and is never derived: its range stays ordered around 0. The models stay
    within the SQNR floor (entropy: 15 dB)."""
    rng = np.random.default_rng(31)
    f = np.float32
    k3, kk, one, half, two, quarter = f(0.044715), f(0.7978846), f(1), f(0.5), f(2), f(0.25)
    nodes = [node("Mul", ["x", "k3"], ["a"], "cube0"),           # map of x
             node("Mul", ["a", "x"], ["a2"], "cube1"),
             node("Mul", ["a2", "x"], ["a3"], "cube2"),
             node("Add", ["x", "a3"], ["s"], "inner"),
             node("Mul", ["kk", "s"], ["u"], "scale"),           # map of s (constant first)
             node("Tanh", ["u"], ["th"], "tanh"),                # map of u
             node("Add", ["one", "th"], ["p"], "plus1"),         # map of th
             node("Mul", ["p", "half"], ["h"], "halve"),         # map of p
             node("Mul", ["x", "h"], ["g"], "gelu"),
             node("Div", ["g", "two"], ["d"], "div"),            # map of g
             node("Sub", ["d", "quarter"], ["e"], "sub"),        # map of d
             node("Mul", ["e", "neg"], ["n"], "negate"),         # decreasing: not a map
             node("Conv", ["n", "w", "b"], ["y"], "conv", pads=[1, 1, 1, 1])]
    consts = [init("k3", k3), init("kk", kk), init("one", one), init("half", half),
              init("two", two), init("quarter", quarter), init("neg", f(-1.5)),
              init("w", randn(rng, (3, 4, 3, 3), 0.3)), init("b", randn(rng, (3,), 0.1))]
    fm = c.model("maps", nodes, [vi("x", [1, 4, 8, 8])], [vi("y", [1, 3, 8, 8])], consts)
    xs = [randn(rng, (1, 4, 8, 8), 0.6) for _ in range(8)]
    xs[5][0, 2, 3, 3] = 3.0                     # an outlier for the clipping methods to cut
    d = c.data("data", xs)
    # the float chain in numpy (float32; np.tanh within a few ulp of the executor's)
    x = np.concatenate(xs)
    a = x * k3
    sv = x + a * x * x
    uv = kk * sv
    thv = np.tanh(uv)
    pv = one + thv
    hv = pv * half
    gv = x * hv
    dv = gv / two
    ev = dv - quarter
    truth = {"u": uv, "th": thv, "p": pv, "h": hv, "d": dv, "e": ev}
    maps = {"a": ("x", lambda v: f(v) * k3), "u": ("s", lambda v: kk * f(v)),
            "th": ("u", lambda v: f(np.tanh(f(v)))), "p": ("th", lambda v: one + f(v)),
            "h": ("p", lambda v: f(v) * half), "d": ("g", lambda v: f(v) / two),
            "e": ("d", lambda v: f(v) - quarter)}
    scalings = ("a", "u", "h", "d")

    def close(got, want):
        return abs(got - float(want)) <= 2e-6 * abs(float(want)) + 1e-7

    ops = "Conv,Mul,Add,Sub,Div,Tanh"
    figures = []
    for meth in ("minmax", "percentile", "mse", "entropy"):
        p = c.path(f"maps_{meth}.json")
        q = c.calibrate(fm, d, f"maps_{meth}.onnx", "--method", meth, "--params-out", p,
                        "--no-bias-correction", "--op-types", ops)
        t = json.load(open(p, encoding="utf-8"))["tensors"]
        missing = [n for n in list(maps) + ["s", "g", "n"] if n not in t]
        need(not missing, f"{meth}: tensors {missing} missing from the params JSON")
        lo = {n: t[n]["min"][0] for n in t if t[n]["kind"] == "activation"}
        hi = {n: t[n]["max"][0] for n in t if t[n]["kind"] == "activation"}
        if meth == "minmax":
            for n, v in truth.items():
                need(close(lo[n], v.min()) and close(hi[n], v.max()),
                     f"minmax: '{n}' range [{lo[n]}, {hi[n]}], numpy [{v.min()}, {v.max()}]")
        derived = maps if meth in ("minmax", "percentile") else scalings
        for n in derived:
            src, fn = maps[n]
            want = (fn(lo[src]), fn(hi[src]))
            ok = close(lo[n], want[0]) and close(hi[n], want[1])
            if n != "th":                       # float ops: the very bits
                ok = f(lo[n]) == want[0] and f(hi[n]) == want[1]
            need(ok, f"{meth}: '{n}' range [{lo[n]}, {hi[n]}], the map of '{src}''s "
                     f"[{lo[src]}, {hi[src]}] is [{want[0]}, {want[1]}]")
        need(lo["n"] < 0 < hi["n"], f"{meth}: the Mul by -1.5 has range [{lo['n']}, "
             f"{hi['n']}]: derived through a decreasing map?")
        # entropy cuts this chain's tails hard: 21.1 dB with derivation, 21.1 without (on 8
        # other inputs, by 32e2ab4's build)
        need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 4, 8, 8), 0.6) for _ in range(4)]),
                  meth, floor=15.0 if meth == "entropy" else MIN_SQNR)
        figures.append(f"{meth} tanh [{lo['th']:.4f}, {hi['th']:.4f}]")
    # at percentile 99.9 over 65536 values the derived cut differs from the one a histogram
    # of the output's own values gives: the Tanh's cut is the tanh of its input's
    xb = [randn(rng, (1, 4, 8, 8), 0.6) for _ in range(256)]
    db = c.data("data_big", xb)
    p = c.path("maps_big.json")
    c.calibrate(fm, db, "maps_big.onnx", "--method", "percentile", "--percentile", "99.9",
                "--params-out", p, "--no-bias-correction", "--op-types", ops)
    t = json.load(open(p, encoding="utf-8"))["tensors"]
    uhi, thi, ohi = t["u"]["max"][0], t["th"]["max"][0], t["th"]["observed_max"][0]
    need(thi < ohi and close(thi, np.tanh(f(uhi))), f"percentile 99.9: tanh max {thi}, its "
         f"input's max {uhi} (observed {ohi}): tanh {np.tanh(f(uhi))} expected")
    return "; ".join(figures) + f"; 99.9 tanh cut {thi:.6f}"


@case
def concat_union(c):
    """A Concat output's histogram is merged from its inputs' after the pass instead of being
    binned again (src/quant/derived.c, in calibrate and in compare): exact, so its parameters
    equal those of the same model in which the Concats' inputs are also graph outputs (an
    output keeps its observed range, so it has no histogram to merge and each Concat output is
    binned itself), and compare --write-best still equals calibrate. Five Concats: every
    output of a Split plus a Conv output (through the Split's input), a Conv output twice
    beside another (multiplicity), two of three Split outputs (not through the Split: its
    third part is missing), two nearest 2x Resizes (each input value 4 times) beside a Conv
    output at their size (so a wrong count of copies shows) and two 1.5x ones (uneven: not
    merged). The samples widen the ranges as they come, so merges re-grid."""
    rng = np.random.default_rng(31)
    nodes = [node("Conv", ["x", "w1", "b1"], ["r"], "c1", pads=[1, 1, 1, 1]),
             node("Split", ["r"], ["s0", "s1", "s2"], "split", axis=1),
             node("Conv", ["x", "w2", "b2"], ["m"], "c2", pads=[1, 1, 1, 1]),
             node("Concat", ["s0", "s1", "s2", "m"], ["cat_all"], "cat_all", axis=1),
             node("Concat", ["m", "r", "m"], ["cat_rep"], "cat_rep", axis=1),
             node("Concat", ["s0", "s2", "m"], ["cat_part"], "cat_part", axis=1),
             node("Conv", ["cat_all", "w3", "b3"], ["y1"], "c3"),
             node("Conv", ["cat_rep", "w4", "b4"], ["y2"], "c4"),
             node("Conv", ["cat_part", "w5", "b5"], ["y3"], "c5"),
             node("Resize", ["m", "", "sc2"], ["m2"], "up_m", mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             node("Resize", ["r", "", "sc2"], ["r2"], "up_r", mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             node("Conv", ["m2", "w8", "b8"], ["q16"], "c8", pads=[1, 1, 1, 1]),
             node("Concat", ["m2", "r2", "q16"], ["cat_up"], "cat_up", axis=1),
             node("Conv", ["cat_up", "w6", "b6"], ["y4"], "c6"),
             node("Resize", ["m", "", "sc15"], ["m15"], "up15_m", mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             node("Resize", ["r", "", "sc15"], ["r15"], "up15_r", mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             node("Concat", ["m15", "r15"], ["cat_frac"], "cat_frac", axis=1),
             node("Conv", ["cat_frac", "w7", "b7"], ["y5"], "c7")]
    inits = [init("w1", randn(rng, (6, 4, 3, 3), 0.3)), init("b1", randn(rng, (6,), 0.1)),
             init("w2", randn(rng, (2, 4, 3, 3), 0.6)), init("b2", randn(rng, (2,), 0.1)),
             init("w3", randn(rng, (3, 8, 1, 1), 0.3)), init("b3", randn(rng, (3,), 0.1)),
             init("w4", randn(rng, (3, 10, 1, 1), 0.3)), init("b4", randn(rng, (3,), 0.1)),
             init("w5", randn(rng, (3, 6, 1, 1), 0.3)), init("b5", randn(rng, (3,), 0.1)),
             init("w6", randn(rng, (3, 10, 1, 1), 0.3)), init("b6", randn(rng, (3,), 0.1)),
             init("w8", randn(rng, (2, 2, 3, 3), 0.3)), init("b8", randn(rng, (2,), 0.1)),
             init("w7", randn(rng, (3, 8, 1, 1), 0.3)), init("b7", randn(rng, (3,), 0.1)),
             init("sc2", np.array([1, 1, 2, 2], F32)),
             init("sc15", np.array([1, 1, 1.5, 1.5], F32))]
    outs = [vi("y1", [1, 3, 8, 8]), vi("y2", [1, 3, 8, 8]), vi("y3", [1, 3, 8, 8]),
            vi("y4", [1, 3, 16, 16]), vi("y5", [1, 3, 12, 12])]
    fm = c.model("union", nodes, [vi("x", [1, 4, 8, 8])], outs, inits)
    direct = c.model("direct", nodes, [vi("x", [1, 4, 8, 8])],
                     outs + [vi("r", [1, 6, 8, 8]), vi("m", [1, 2, 8, 8])], inits)
    d = c.data("calib", [randn(rng, (1, 4, 8, 8), 0.5 + 0.4 * i) for i in range(12)])
    e = c.data("eval", [randn(rng, (1, 4, 8, 8), 2.0) for _ in range(2)])
    keys = ("min", "max", "observed_min", "observed_max", "scale", "zero_point")
    figures = []
    for meth, extra in (("percentile", []), ("mse", []), ("entropy", []),
                        ("percentile", ["--symmetric-activations"])):
        label, tag = meth + (" sym" if extra else ""), f"{meth}{len(extra)}"
        # --no-concat-share: shared Concat scales (concat_share.c) would give every member the
        # group's range, and the direct model's members are outputs (observed ranges)
        flags = ["--method", meth, "--no-bias-correction", "--no-concat-share", *extra]
        params = {}
        for name, model in (("union", fm), ("direct", direct)):
            p = c.path(f"{name}_{tag}.json")
            c.calibrate(model, d, f"{name}_{tag}.onnx", *flags, "--params-out", p)
            params[name] = json.load(open(p, encoding="utf-8"))["tensors"]
        for cat in ("cat_all", "cat_rep", "cat_part", "cat_up", "cat_frac"):
            u, v = params["union"].get(cat, {}), params["direct"].get(cat, {})
            need(u.get("method") == meth and v.get("method") == meth,
                 f"{label}: {cat} not quantized by {meth}: {u.get('method')} / {v.get('method')}")
            for k in keys:
                need(u.get(k) == v.get(k), f"{label}: {cat} {k} {u.get(k)}, binned directly "
                     f"{v.get(k)}")
        best, j = c.path(f"best_{tag}.onnx"), c.path(f"cmp_{tag}.json")
        r = c.run("compare", "--data", d, "--eval", e, fm, "--methods", meth, "--per-channel",
                  "no", "--symmetric-activations", "yes" if extra else "no", "--auto", "no",
                  "--json", j, "--write-best", best, "-q", "--no-concat-share",
                  *(["--percentiles", "99.99"] if meth == "percentile" else []))
        need(r.returncode == 0, f"{label}: compare exited {r.returncode}: {r.stderr.strip()[:300]}")
        rep = json.load(open(j, encoding="utf-8"))
        args = next(x for x in rep["candidates"] if x["name"] == rep["best"])["calibrate_args"]
        q = c.calibrate(fm, d, f"cal_{tag}.onnx", *args, "--no-concat-share")
        need(open(best, "rb").read() == open(q.path, "rb").read(),
             f"{label}: calibrate {' '.join(args)} differs from compare --write-best")
        t = params["union"]["cat_all"]
        figures.append(f"{label} cat_all [{t['min'][0]:.4f}, {t['max'][0]:.4f}]")
    return "as binned directly, compare = calibrate: " + "; ".join(figures)


@case
def concat_share(c):
    """A quantized Concat's inputs take its output's scale and zero point (concat_share.c), so
    onnxruntime's QLinearConcat copies them instead of requantizing: here two Concats joined by
    a shared input (b), a MaxPool output whose source (g) takes the group's range with it, an
    input only the Concat reads (a) joining although its own range is ~1/100 of the group's,
    and one read by a Conv too (t) with such a range keeping its own; so does a small Concat's
    output (cs, read by a Conv and by a Concat with b), and then its inputs (u, v), which only
    it reads, keep theirs too rather than take the group's. --no-concat-share keeps every
    input's own range."""
    rng = np.random.default_rng(32)
    conv = lambda src, w, out, name: node("Conv", [src, w], [out], name, pads=[1, 1, 1, 1])
    nodes = [conv("x", "wa", "a", "ca"), conv("x", "wb", "b", "cb"), conv("x", "wg", "g", "cg"),
             conv("x", "wt", "t", "ct"),
             node("MaxPool", ["g"], ["mp"], "mp", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             node("Concat", ["a", "b", "mp"], ["cat1"], "cat1", axis=1),
             node("Concat", ["b", "t"], ["cat2"], "cat2", axis=1),
             conv("cat1", "w1", "y1", "c1"), conv("cat2", "w2", "y2", "c2"),
             conv("b", "w3", "y3", "c3"), conv("t", "w4", "y4", "c4"),
             conv("g", "w5", "y5", "c5"),
             conv("x", "wu", "u", "cu"), conv("x", "wv", "v", "cv"),
             node("Concat", ["u", "v"], ["cs"], "cat_s", axis=1), conv("cs", "w2", "y6", "c6"),
             node("Concat", ["cs", "b"], ["cb"], "cat_b", axis=1), conv("cb", "w1", "y7", "c7")]
    inits = [init("wa", randn(rng, (2, 3, 3, 3), 0.002)), init("wb", randn(rng, (2, 3, 3, 3), 0.3)),
             init("wg", randn(rng, (2, 3, 3, 3), 0.2)), init("wt", randn(rng, (2, 3, 3, 3), 0.002)),
             init("w1", randn(rng, (2, 6, 3, 3), 0.2)), init("w2", randn(rng, (2, 4, 3, 3), 0.2)),
             init("w3", randn(rng, (2, 2, 3, 3), 0.2)), init("w4", randn(rng, (2, 2, 3, 3), 50.0)),
             init("w5", randn(rng, (2, 2, 3, 3), 0.2)),
             init("wu", randn(rng, (2, 3, 3, 3), 0.002)),
             init("wv", randn(rng, (2, 3, 3, 3), 0.003))]
    outs = [vi(f"y{k}", [1, 2, 8, 8]) for k in range(1, 8)]
    fm = c.model("share", nodes, [vi("x", [1, 3, 8, 8])], outs, inits)
    d = c.data("calib", [randn(rng, (1, 3, 8, 8)) for _ in range(8)])
    p = c.path("share.json")
    q = c.calibrate(fm, d, "share.q.onnx", "--no-bias-correction", "--params-out", p)
    params = json.load(open(p, encoding="utf-8"))["tensors"]

    def qparams(qm, tensor):
        qn = qm.q_of(tensor)
        return float(qm.arr(qn.input[1])), int(qm.zero_point(qn)[1])

    def read_scale(qm, node_name, slot):
        dq = qm.dq_feeding(qm.node(node_name).input[slot])
        need(dq is not None, f"{node_name} input {slot} is not read from a DequantizeLinear")
        return float(qm.arr(dq.input[1])), int(qm.zero_point(dq)[1])

    out = qparams(q, "cat1")
    need(qparams(q, "cat2") == out, f"cat2's output {qparams(q, 'cat2')}, cat1's {out}: "
         "the Concats share b, so one group")
    for name, slot in (("cat1", 0), ("cat1", 1), ("cat1", 2), ("cat2", 0)):
        got = read_scale(q, name, slot)
        need(got == out, f"{name} input {slot} reads scale / zero point {got}, the output {out}")
    need(qparams(q, "g") == out, f"g (MaxPool's source) has {qparams(q, 'g')}, the group {out}")
    own_t = read_scale(q, "cat2", 1)
    need(own_t != out, "t (read by a Conv too, ~1/100 of the group's range) took the group's")
    need("concat_group" not in params["t"], f"t's params say {params['t'].get('concat_group')}")
    need(qparams(q, "cb") == out and read_scale(q, "cat_b", 1) == out, "cb is not in the group")
    for t in ("cs", "u", "v"):
        need(qparams(q, t) != out and "concat_group" not in params[t],
             f"{t} took the group's range: {params[t]}")
    a = params["a"]
    need(a.get("concat_group") and a["own_max"][0] - a["own_min"][0] <
         (a["max"][0] - a["min"][0]) / 20, f"a's params: {a}")
    r = c.run("--data", d, fm, "-o", c.path("share2.q.onnx"), "--no-bias-correction")
    line = next((x for x in r.stdout.splitlines() if "concat scales:" in x), "")
    need("4 kept their own" in line, f"summary line: '{line}'")
    s = need_sqnr(fm, q.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(3)]))
    n = c.calibrate(fm, d, "own.q.onnx", "--no-bias-correction", "--no-concat-share")
    need(read_scale(n, "cat1", 0) != qparams(n, "cat1"),
         "--no-concat-share: a still reads the Concat output's scale")
    s2 = need_sqnr(fm, n.path, feeds_x([randn(rng, (1, 3, 8, 8)) for _ in range(3)]))
    return (f"4 Concat inputs + g at the output's scale {out[0]:.4g}, t its own {own_t[0]:.4g}; "
            f"SQNR {s:.1f} dB (own scales {s2:.1f} dB)")


# ---------------------------------------------------------------- driver

def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(CASES))
        return 0
    if len(argv) < 3 or argv[1].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cal, work, names = argv[1], argv[2], argv[3:] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"quant_behaviour.py: unknown case(s) {unknown}; --list shows them",
              file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            msg = CASES[name](Ctx(cal, os.path.join(work, name)))
            print(f"ok   {name}: {msg}")
        except Fail as e:
            print(f"FAIL {name}: {e}")
            failed += 1
        except Exception as e:  # noqa: BLE001 - a crash in a case is that case's failure
            print(f"FAIL {name}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
            failed += 1
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
