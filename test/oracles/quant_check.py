#!/usr/bin/env python3
"""Checks of the quantized (QDQ) models that `calibrate` writes, with onnxruntime as the judge.

  quant_check.py check --data DIR [--limit N] [--float MODEL] Q.onnx[@FLAGS]...
      For each model: onnx.checker (full_check), it is quantized (QuantizeLinear and
      DequantizeLinear nodes, positive finite scales), the options took effect (FLAGS, comma
      separated: pc|pt weights per channel or per tensor, sym|asym activations, u8|i8|i16
      activation type; weights symmetric), int32 bias scales equal input scale x weight scale,
      and it runs in onnxruntime on the first N samples with finite outputs shaped like the
      float MODEL's.
  quant_check.py distinct LABEL Q.onnx...
      The models (one per method) have pairwise different activation scales: each method did
      something of its own.
  quant_check.py fidelity NAME FLOAT.onnx Q.onnx --data DIR [--limit N] [--min-sqnr 20]
                 [--min-agree 95] [--tag SUFFIX]
      Both models in onnxruntime: SQNR of Q's outputs against FLOAT's (10 log10 of signal
      energy over error energy, per output over all samples; the worst output counts) and the
      task agreement of task_metrics.py (detections: F1 of matched detections; magika: top-1).
  quant_check.py exec-match Q.onnx --data DIR --got QCDIR [--limit N] [--cal CALIBRATE]
                 [--work DIR]
      QCDIR (`calibrate run Q.onnx`) against onnxruntime running Q.onnx: every output element
      within one quantization step (the scale of the DequantizeLinear the element comes from,
      traced back through Concat/Transpose/Reshape-like ops); outputs computed in float after
      the last DequantizeLinear are compared at 1e-3 of their range instead (said so). On
      failure, with --cal, finds where the two start to differ: every QuantizeLinear output is
      exposed and compared in integer steps, ours against onnxruntime fused (default
      optimizations) and against onnxruntime unfused (QDQ simulated in float).
  quant_check.py tidy Q.onnx [--name NAME]
      No dead nodes: every node output is consumed or is a graph output.
  quant_check.py ort-ops MODEL.onnx
      The ops onnxruntime (ORT_ENABLE_EXTENDED) leaves computing on float data.

check, distinct, fidelity, exec-match and tidy print "ok   NAME: figures" or "FAIL NAME: why" per
check and exit 1 if one failed; usage errors exit 2.
"""
import argparse
import collections
import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import die, fail, failures, feeds_for, list_samples, ok, ort_session, \
    output_files, sample_dirs  # noqa: E402
from task_metrics import agreement  # noqa: E402

ACT_TYPES = {"u8": TensorProto.UINT8, "i8": TensorProto.INT8, "i16": TensorProto.INT16}
SYM_ZP = {TensorProto.UINT8: 128, TensorProto.INT8: 0, TensorProto.INT16: 0,
          TensorProto.UINT16: 32768}
# Ops that move or select values without computing: an element keeps its quantization step.
WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
MOVE_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Concat"}



def first_line(e):
    s = str(e).strip()
    return s.splitlines()[0][:300] if s else type(e).__name__


def samples_of(data, limit):
    s = list_samples(data)
    if limit:
        s = s[:limit]
    if not s:
        die(f"{data}: no samples")
    return s


def run_ort(path, samples, opt="all"):
    """[[output arrays] per sample], output names."""
    sess = ort_session(path, 2, opt)
    ins = sess.get_inputs()
    return [sess.run(None, feeds_for(s, ins)) for s in samples], \
        [o.name for o in sess.get_outputs()]


class Graph:
    def __init__(self, model):
        self.m = model
        g = model.graph
        self.inits = {t.name: t for t in g.initializer}
        self.consts = {}
        for n in g.node:
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(a.t)
        self.prod = {o: n for n in g.node for o in n.output if o}

    def const(self, name):
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        return self.consts.get(name)

    def is_const(self, name):
        return name in self.inits or name in self.consts

    def qdq(self, op):
        return [n for n in self.m.graph.node if n.op_type == op]


# ---------------------------------------------------------------- check

def pairs_over(codes, axis):
    """Same-sign neighbours (index 2j, 2j + 1 along axis) whose magnitudes sum over 128."""
    v = np.moveaxis(codes.astype(np.int32), axis, 0)
    n = v.shape[0] // 2 * 2
    a, b = v[0:n:2], v[1:n:2]
    return int(np.sum(((a > 0) & (b > 0) | (a < 0) & (b < 0)) & (np.abs(a) + np.abs(b) > 128)))


def pair_guard_violations(g):
    """Weight pairs onnxruntime's x86 U8S8 kernels without VNNI add in 16 bits (Conv: input
    channels c, c + 1 at one kernel position, or (kh, kw, c) neighbours when the channel
    count is odd; MatMul / Gemm: rows k, k + 1 of B) that could saturate: calibrate's pair
    guard (src/quant/pairguard.c) leaves none."""
    bad = 0
    for n in g.m.graph.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm") or len(n.input) < 2:
            continue
        dq = g.prod.get(n.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or not g.is_const(dq.input[0]):
            continue
        w = g.const(dq.input[0])
        if w.dtype != np.int8:
            continue
        if n.op_type == "Conv" and w.ndim >= 3:
            bad += pairs_over(w, 1)
            if w.shape[1] % 2:
                flat = np.moveaxis(w, 1, -1).reshape(w.shape[0], -1)  # (kh, kw, c) order
                bad += pairs_over(flat, 1)
        elif w.ndim == 2:
            trans = n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute)
            bad += pairs_over(w, 1 if trans else 0)
    return bad


def check_one(spec, samples, float_out):
    path, _, flags = spec.partition("@")
    flags = set(f for f in flags.split(",") if f)
    name = "check_" + os.path.splitext(os.path.basename(path))[0]
    bad = flags - {"pc", "pt", "sym", "asym"} - set(ACT_TYPES)
    if bad:
        die(f"{spec}: unknown flags {sorted(bad)}")
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:  # the checker raises several exception types
        return fail(name, f"onnx.checker (full_check): {first_line(e)}")
    g = Graph(onnx.load(path))
    qs, dqs = g.qdq("QuantizeLinear"), g.qdq("DequantizeLinear")
    if not qs or not dqs:
        return fail(name, f"not quantized: {len(qs)} QuantizeLinear, {len(dqs)} "
                          "DequantizeLinear nodes")
    for n in qs + dqs:
        s = g.const(n.input[1])
        if s is None:
            return fail(name, f"{n.op_type} '{n.name}': scale '{n.input[1]}' not a constant")
        if s.dtype != np.float32 or not np.all(np.isfinite(s)) or not np.all(s > 0):
            return fail(name, f"{n.op_type} '{n.name}': scale {s.dtype} min {s.min():g} is "
                              "not positive finite float32")
    # weights: DequantizeLinear of a constant feeding a Conv/Gemm/MatMul operand (other
    # constants, e.g. a Mul's, are quantized like activations)
    w_in = {i for n in g.m.graph.node if n.op_type in WEIGHT_OPS for i in n.input[:2]}
    w_dq = [n for n in dqs if g.is_const(n.input[0]) and n.output[0] in w_in]
    if not w_dq:
        return fail(name, "no quantized weight (DequantizeLinear of a constant feeding "
                          "Conv/Gemm/MatMul)")
    for n in w_dq:
        if g.const(n.input[0]).dtype != np.int8:
            return fail(name, f"weight DequantizeLinear '{n.name}': {g.const(n.input[0]).dtype}"
                              ", expected int8")
    n_pc = sum(g.const(n.input[1]).size > 1 for n in w_dq)
    if "pc" in flags and n_pc == 0:
        return fail(name, f"--per-channel: all {len(w_dq)} weight scales are per tensor")
    if "pt" in flags and n_pc:
        return fail(name, f"per-tensor weights expected, {n_pc} weights have per-channel "
                          "scales")
    for n in w_dq:
        zp = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else np.zeros(1)
        if np.any(zp != 0):
            return fail(name, f"weight DequantizeLinear '{n.name}': zero point not 0 "
                              "(weights should be symmetric)")
    # activations: QuantizeLinear of a computed tensor
    act = [n for n in qs if not g.is_const(n.input[0])]
    want_t = ACT_TYPES[next((f for f in flags if f in ACT_TYPES), "u8")]
    zps = []
    for n in act:
        zp_t = g.inits.get(n.input[2]) if len(n.input) > 2 else None
        if zp_t is None:
            return fail(name, f"QuantizeLinear '{n.name}': no zero point initializer")
        if zp_t.data_type != want_t:
            return fail(name, f"QuantizeLinear '{n.name}': zero point type "
                              f"{TensorProto.DataType.Name(zp_t.data_type)}, expected "
                              f"{TensorProto.DataType.Name(want_t)}")
        zps.append(int(numpy_helper.to_array(zp_t).reshape(-1)[0]))
    sym = SYM_ZP[want_t]
    n_asym = sum(z != sym for z in zps)
    if "sym" in flags and n_asym:
        return fail(name, f"--symmetric-activations: {n_asym} of {len(zps)} activation zero "
                          f"points are not {sym}")
    if "asym" in flags and not n_asym:
        return fail(name, f"asymmetric activations expected, all {len(zps)} zero points are "
                          f"{sym}")
    n_pairs = pair_guard_violations(g)
    if want_t == TensorProto.UINT8 and n_pairs:
        return fail(name, f"{n_pairs} int8 weight pairs over 128 together (the pair guard "
                          "should leave none with uint8 activations)")
    # int32 biases: ORT's fused kernels assume bias scale = input scale x weight scale
    n_bias = 0
    for n in g.m.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose", "Gemm") or len(n.input) < 3:
            continue
        dq = [g.prod.get(i) for i in n.input[:3]]
        if not all(d is not None and d.op_type == "DequantizeLinear" for d in dq):
            continue
        b = g.const(dq[2].input[0])
        if b is None or b.dtype != np.int32:
            continue
        sx, sw, sb = (g.const(d.input[1]).astype(np.float64) for d in dq)
        want = sx * sw
        if sb.shape != np.broadcast_shapes(sb.shape, want.shape) or \
                not np.allclose(sb, want, rtol=1e-5, atol=0):
            worst = float(np.max(np.abs(sb - want) / want))
            return fail(name, f"{n.op_type} '{n.name}': bias scale differs from input scale x "
                              f"weight scale by {worst:.3g} (relative)")
        n_bias += 1
    # onnxruntime
    try:
        outs, names = run_ort(path, samples)
    except Exception as e:
        return fail(name, f"onnxruntime: {first_line(e)}")
    for si, res in enumerate(outs):
        for oi, (o, r) in enumerate(zip(names, res)):
            if not np.all(np.isfinite(r)):
                return fail(name, f"sample {samples[si][0]}: output '{o}' has "
                                  f"{int(np.sum(~np.isfinite(r)))} NaN/Inf values")
            if float_out is not None:
                f = float_out[0][si][oi]
                if (r.dtype, r.shape, o) != (f.dtype, f.shape, float_out[1][oi]):
                    return fail(name, f"output '{o}' {r.dtype}{list(r.shape)}, the float "
                                      f"model gives '{float_out[1][oi]}' {f.dtype}"
                                      f"{list(f.shape)}")
    what = "per-channel" if n_pc else "per-tensor"
    ok(name, f"full_check; {len(qs)} Q / {len(dqs)} DQ; {len(w_dq)} weights ({n_pc} "
             f"per-channel), {what}; {n_asym}/{len(zps)} activation zero points off {sym}; "
             f"{n_bias} int32 biases consistent; {n_pairs} weight pairs over 128; ORT outputs "
             f"finite on {len(outs)} samples")


def cmd_check(a):
    samples = samples_of(a.data, a.limit)
    float_out = None
    if a.float:
        float_out = run_ort(a.float, samples)
    for spec in a.models:
        check_one(spec, samples, float_out)


# ---------------------------------------------------------------- distinct

def act_params(path):
    g = Graph(onnx.load(path))
    d = {}
    for n in g.qdq("QuantizeLinear"):
        if not g.is_const(n.input[0]):
            d[n.input[0]] = (g.const(n.input[1]).tobytes(), g.const(n.input[2]).tobytes())
    return d


def cmd_distinct(a):
    params = {p: act_params(p) for p in a.models}
    digests = {p: hashlib.sha256(repr(sorted(v.items())).encode()).hexdigest()
               for p, v in params.items()}
    same = [(x, y) for i, x in enumerate(a.models) for y in a.models[i + 1:]
            if digests[x] == digests[y]]
    if same:
        x, y = same[0]
        return fail(f"distinct_{a.label}", f"{os.path.basename(x)} and {os.path.basename(y)} "
                                           "have identical activation scales and zero points")
    # How far apart: the median over tensors of max/min scale across the models.
    keys = set.intersection(*(set(v) for v in params.values()))
    spread = [max(s) / min(s) for s in
              ([float(np.frombuffer(params[p][k][0], np.float32)[0]) for p in a.models]
               for k in keys)]
    ok(f"distinct_{a.label}", f"{len(a.models)} models, {len(set(digests.values()))} distinct "
                              f"activation parameter sets; median scale spread across them "
                              f"x{np.median(spread):.3f}, max x{max(spread):.3g}")


# ---------------------------------------------------------------- fidelity

def sqnr_db(ref, got):
    """Per output: 10 log10(sum ref^2 / sum (got - ref)^2) over all samples."""
    out = []
    for k in range(len(ref[0])):
        sig = sum(float(np.sum(r[k].astype(np.float64) ** 2)) for r in ref)
        err = sum(float(np.sum((g[k].astype(np.float64) - r[k]) ** 2))
                  for g, r in zip(got, ref))
        out.append(float("inf") if err == 0 else 10 * np.log10(sig / err) if sig > 0
                   else float("-inf"))
    return out


def fidelity(name, float_path, q_path, samples):
    """(worst SQNR dB, per-output SQNR, agreement fraction, agreement text)."""
    ref, names = run_ort(float_path, samples)
    got, _ = run_ort(q_path, samples)
    db = sqnr_db(ref, got)
    ids = [s[0] for s in samples]
    frac, text = agreement(name, dict(zip(ids, (g[0] for g in got))),
                           dict(zip(ids, (r[0] for r in ref))))
    return min(db), dict(zip(names, db)), frac, text


def cmd_fidelity(a):
    samples = samples_of(a.data, a.limit)
    worst, per, frac, text = fidelity(a.name, a.float, a.q, samples)
    figures = ", ".join(f"'{o}' {v:.2f} dB" for o, v in per.items())
    msg = (f"{len(samples)} eval samples: SQNR {figures}; task agreement {100 * frac:.1f}% "
           f"({text})")
    problems = []
    if not worst >= a.min_sqnr:
        problems.append(f"SQNR {worst:.2f} dB < {a.min_sqnr:g} dB (short by "
                        f"{a.min_sqnr - worst:.2f} dB)")
    if not round(100 * frac, 9) >= a.min_agree:     # 266/280 is 95%, not 94.999...
        problems.append(f"task agreement {100 * frac:.2f}% < {a.min_agree:g}% (short by "
                        f"{a.min_agree - 100 * frac:.2f} points)")
    label = f"fidelity_{a.name}{a.tag}"
    if problems:
        fail(label, "; ".join(problems) + " -- " + msg)
    else:
        ok(label, msg)


# ---------------------------------------------------------------- exec-match

def trace_shapes(model, g, outputs, sample):
    """Shapes of the tensors between each output and the DequantizeLinear nodes it comes from
    through MOVE_OPS, from one onnxruntime run (unoptimized) that exposes them."""
    need, todo = set(), list(outputs)
    while todo:
        t = todo.pop()
        n = g.prod.get(t)
        if t in need or n is None:
            continue
        need.add(t)
        if n.op_type in MOVE_OPS:
            todo.extend(i for i in n.input if i and not g.is_const(i))
    exp = onnx.ModelProto()
    exp.CopyFrom(model)
    have = {o.name for o in exp.graph.output}
    extra = sorted(need - have)
    for t in extra:
        exp.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.onnx")
        onnx.save(exp, path)
        res, names = run_ort(path, [sample], "none")
    return {o: tuple(r.shape) for o, r in zip(names, res[0])}


def step_of(g, shapes, name, depth=0):
    """Per-element quantization step of tensor `name` (an array broadcastable to its shape),
    or None when it is computed in float after the last DequantizeLinear."""
    n = g.prod.get(name)
    if n is None or depth > 32:
        return None
    if n.op_type == "DequantizeLinear":
        s = g.const(n.input[1])
        if s is None:
            return None
        s = s.astype(np.float64)
        if s.size == 1:
            return s.reshape(())
        shp = shapes.get(name)
        if shp is None:
            return None
        axis = 1
        for at in n.attribute:
            if at.name == "axis":
                axis = at.i
        axis %= len(shp)
        view = [1] * len(shp)
        view[axis] = s.size
        return s.reshape(view)
    if n.op_type not in MOVE_OPS:
        return None
    ins = [i for i in n.input if i and not g.is_const(i)]
    if n.op_type == "Concat":
        parts = []
        axis = next(at.i for at in n.attribute if at.name == "axis")
        for i in n.input:
            s, shp = step_of(g, shapes, i, depth + 1), shapes.get(i)
            if s is None or shp is None:
                return None
            parts.append(np.broadcast_to(s, shp))
        return np.concatenate(parts, axis=axis)
    s = step_of(g, shapes, ins[0], depth + 1) if ins else None
    if s is None or s.ndim == 0:
        return s
    shp_in, shp_out = shapes.get(ins[0]), shapes.get(name)
    if shp_in is None or shp_out is None:
        return None
    s = np.broadcast_to(s, shp_in)
    if n.op_type == "Transpose":
        perm = next((list(at.ints) for at in n.attribute if at.name == "perm"),
                    list(range(len(shp_in)))[::-1])
        return np.transpose(s, perm)
    return s.reshape(shp_out)


def load_got(got_dir, samples, names):
    dirs, files = sample_dirs([s[0] for s in samples]), output_files(names)
    out = []
    for sd in dirs:
        row = []
        for f in files:
            p = os.path.join(got_dir, sd, f)
            if not os.path.exists(p):
                die(f"{p}: missing (was `calibrate run` given the same samples?)")
            row.append(np.load(p))
        out.append(row)
    return out


def cmd_exec_match(a):
    samples = samples_of(a.data, a.limit)
    model = onnx.load(a.q)
    g = Graph(model)
    ref, names = run_ort(a.q, samples)
    shapes = trace_shapes(model, g, names, samples[0])
    got = load_got(a.got, samples, names)
    label = "exec_match_" + (a.name or os.path.splitext(os.path.basename(a.q))[0])
    problems, figures = [], []
    worst_sample = 0
    worst_ratio = -1.0
    for k, o in enumerate(names):
        step = step_of(g, shapes, o)
        if step is not None:
            ratio = 0.0
            where = None
            for si, (gs, rs) in enumerate(zip(got, ref)):
                d = np.abs(gs[k].astype(np.float64) - rs[k])
                r = d / np.broadcast_to(step, d.shape)
                i = int(np.argmax(r))
                if r.flat[i] > ratio:
                    ratio, where = float(r.flat[i]), (si, np.unravel_index(i, d.shape),
                                                      float(d.flat[i]),
                                                      float(np.broadcast_to(step,
                                                                            d.shape).flat[i]))
                if float(r.max()) > worst_ratio:
                    worst_ratio, worst_sample = float(r.max()), si
            n_over = sum(int(np.sum(np.abs(gs[k].astype(np.float64) - rs[k]) >
                                    np.broadcast_to(step, rs[k].shape) * (1 + 1e-6)))
                         for gs, rs in zip(got, ref))
            n_el = sum(rs[k].size for rs in ref)
            txt = f"'{o}' max {ratio:.2f} quantization steps"
            if where:
                txt += (f" (|diff| {where[2]:.4g}, step {where[3]:.4g}, sample "
                        f"{samples[where[0]][0]}, index {list(map(int, where[1]))}); "
                        f"{n_over}/{n_el} elements over one step")
            figures.append(txt)
            if ratio > a.max_steps + 1e-6:
                problems.append(f"'{o}' differs by up to {ratio:.2f} steps (bound "
                                f"{a.max_steps:g})")
        else:
            lo = min(float(rs[k].min()) for rs in ref)
            hi = max(float(rs[k].max()) for rs in ref)
            rng = (hi - lo) or max(abs(hi), abs(lo)) or 1.0
            err = 0.0
            for si, (gs, rs) in enumerate(zip(got, ref)):
                e = float(np.max(np.abs(gs[k].astype(np.float64) - rs[k])))
                if e / rng > worst_ratio:
                    worst_ratio, worst_sample = e / rng, si
                err = max(err, e)
            figures.append(f"'{o}' computed in float after the last DequantizeLinear, so "
                           f"compared at 1e-3 of its range: max|diff| {err:.3g} = "
                           f"{err / rng:.3g} of range {rng:.4g}")
            if err / rng > 1e-3:
                problems.append(f"'{o}' max|diff| {err / rng:.3g} of its range (> 1e-3)")
    msg = f"{len(samples)} samples: " + "; ".join(figures)
    if not problems:
        return ok(label, msg)
    fail(label, "; ".join(problems) + " -- " + msg)
    # For scale: how far apart are onnxruntime's own two ways of running the model?
    unf, _ = run_ort(a.q, samples, "none")
    for k, o in enumerate(names):
        step = step_of(g, shapes, o)
        if step is None:
            continue
        r_u = max(float(np.max(np.abs(u[k].astype(np.float64) - rs[k]) /
                                np.broadcast_to(step, rs[k].shape))) for u, rs in zip(unf, ref))
        r_o = max(float(np.max(np.abs(gs[k].astype(np.float64) - u[k]) /
                                np.broadcast_to(step, u[k].shape))) for gs, u in zip(got, unf))
        print(f"     '{o}': onnxruntime fused vs onnxruntime unfused (QDQ in float) differ by up "
              f"to {r_u:.2f} steps; ours vs unfused {r_o:.2f} steps")
    if a.cal:
        diverge(a, model, samples[worst_sample])


def diverge(a, model, sample):
    """Where do our executor and onnxruntime start to differ? Every activation
    QuantizeLinear output becomes a graph output (the fused kernels produce exactly these
    tensors, so fusion is unchanged) and is compared in integer steps."""
    work = a.work or tempfile.mkdtemp(prefix="qc-diverge.")
    os.makedirs(work, exist_ok=True)
    g = Graph(model)
    exp = onnx.ModelProto()
    exp.CopyFrom(model)
    have = {o.name for o in exp.graph.output}
    qnodes = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and
              not g.is_const(n.input[0])]
    for n in qnodes:
        if n.output[0] not in have:
            zp = g.inits[n.input[2]]
            exp.graph.output.append(helper.make_tensor_value_info(n.output[0], zp.data_type,
                                                                  None))
    path = os.path.join(work, "exposed.onnx")
    onnx.save(exp, path)
    data = os.path.join(work, "data")
    os.makedirs(data, exist_ok=True)
    name, files = sample
    for k, p in files.items():
        dst = os.path.join(data, name)
        if k is not None:
            os.makedirs(dst, exist_ok=True)
            dst = os.path.join(dst, os.path.basename(p))
        if not os.path.lexists(dst):
            os.symlink(os.path.abspath(p), dst)
    s = list_samples(data)
    fused, names = run_ort(path, s, "all")
    unfused, _ = run_ort(path, s, "none")
    r = subprocess.run([a.cal, "run", path, "--data", data, "-o", os.path.join(work, "qc"),
                        "-q"] + (["--emulate-ort"] if a.emulate_ort else []),
                       capture_output=True, text=True)
    if r.returncode:
        print(f"     diverge: calibrate run failed: {r.stderr.strip()[:300]}")
        return
    ours = load_got(os.path.join(work, "qc"), s, names)[0]
    idx = {o: i for i, o in enumerate(names)}
    orig, _ = run_ort(a.q, s, "all")
    same = all(np.array_equal(x, fused[0][idx[o.name]])
               for x, o in zip(orig[0], model.graph.output))
    print(f"     diverge: sample {name}: {len(qnodes)} quantized activations compared as "
          f"integers (exposing them {'left' if same else 'CHANGED'} onnxruntime's outputs)")
    first = {}
    hist = collections.Counter()
    worst_unf = (0, None)
    for n in qnodes:
        i = idx[n.output[0]]
        q = ours[i].astype(np.int64)
        d_f = int(np.max(np.abs(q - fused[0][i]))) if q.size else 0
        d_u = int(np.max(np.abs(q - unfused[0][i]))) if q.size else 0
        hist[min(d_f, 3)] += 1
        if d_u > worst_unf[0]:
            worst_unf = (d_u, n)
        for lim in (0, 1):
            if d_f > lim and lim not in first:
                first[lim] = (n, f"{d_f} steps in {int(np.sum(q != fused[0][i]))} of {q.size} "
                                 "elements")
    print(f"     diverge: ours vs onnxruntime fused, max step difference per tensor: "
          f"{hist[0]} tensors 0, {hist[1]} tensors 1, {hist[2]} tensors 2, {hist[3]} "
          "tensors >= 3")
    u = worst_unf[1]
    print(f"     diverge: ours vs onnxruntime unfused (QDQ in float): max "
          f"{worst_unf[0]} step(s)" + (f" at '{u.output[0]}'" if u is not None else ""))
    for lim, what in ((0, "first differing"), (1, "first differing by more than one step")):
        if lim not in first:
            continue
        n, d = first[lim]
        p = g.prod.get(n.input[0])
        ins = []
        if p is not None:
            for t in p.input:
                dq = g.prod.get(t)
                if dq is not None and dq.op_type == "DequantizeLinear" and \
                        not g.is_const(dq.input[0]) and dq.input[0] in idx:
                    j = idx[dq.input[0]]
                    ins.append(str(int(np.max(np.abs(ours[j].astype(np.int64) -
                                                      fused[0][j])))))
        print(f"     diverge: {what}: '{n.output[0]}' ({d}), produced by "
              f"{p.op_type if p else '?'} '{p.name if p else '?'}'" +
              (f" whose quantized inputs differ by {', '.join(ins)} step(s)" if ins else ""))


# ---------------------------------------------------------------- tidy

def cmd_tidy(a):
    m = onnx.load(a.q)
    used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    dead = [n for n in m.graph.node if not any(o in used for o in n.output if o)]
    label = "tidy_" + (a.name or os.path.splitext(os.path.basename(a.q))[0])
    if dead:
        return fail(label, f"{len(dead)} dead node(s) (outputs neither consumed nor graph "
                           "outputs): " + ", ".join(f"{n.op_type} '{n.name}'" for n in dead[:4]))
    ok(label, f"{len(m.graph.node)} nodes, none dead")


# ---------------------------------------------------------------- ort-ops

def float_ops(path):
    """Counter of op types that onnxruntime's optimized graph runs on float data."""
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = os.path.join(tmp, "opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        m = onnx.load(so.optimized_model_filepath)
    g = m.graph
    flt = {i.name for i in g.input if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    no_float_out = {"Shape", "Size", "Equal", "Less", "Greater", "LessOrEqual",
                    "GreaterOrEqual", "ArgMax", "ArgMin", "NonZero", "IsNaN", "IsInf"}
    ops, all_ops = collections.Counter(), collections.Counter()
    for n in g.node:
        op = n.op_type
        all_ops[op] += 1
        if op == "DequantizeLinear":
            flt.update(n.output)
            continue
        if op == "QuantizeLinear" or "QLinear" in op or op.endswith("Integer"):
            continue
        # float constants (Resize scales, Clip bounds) do not make an integer op float
        fed = any(i in flt for i in n.input if i)
        if op == "Cast":
            to = next(at.i for at in n.attribute if at.name == "to")
            if to == TensorProto.FLOAT:
                flt.update(n.output)
        elif fed and op not in no_float_out:
            flt.update(o for o in n.output if o)
        if fed and op not in ("Shape", "Size"):
            ops[op] += 1
    return ops, all_ops


def cmd_ort_ops(a):
    ops, all_ops = float_ops(a.model)
    q = sum(v for k, v in all_ops.items() if "QLinear" in k or k.endswith("Integer"))
    print(f"{sum(all_ops.values())} nodes after ORT_ENABLE_EXTENDED: {q} integer kernels, "
          f"{all_ops['QuantizeLinear']} QuantizeLinear, {all_ops['DequantizeLinear']} "
          f"DequantizeLinear; on float data: " +
          (", ".join(f"{k} x{v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1]))
           or "none"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("models", nargs="+")
    c.add_argument("--data", required=True)
    c.add_argument("--limit", type=int, default=2)
    c.add_argument("--float")
    c = sub.add_parser("distinct")
    c.add_argument("label")
    c.add_argument("models", nargs="+")
    c = sub.add_parser("fidelity")
    c.add_argument("name")
    c.add_argument("float")
    c.add_argument("q")
    c.add_argument("--data", required=True)
    c.add_argument("--limit", type=int, default=0)
    c.add_argument("--min-sqnr", type=float, default=20.0)
    c.add_argument("--min-agree", type=float, default=95.0)
    c.add_argument("--tag", default="", help="appended to the check's name")
    c = sub.add_parser("exec-match")
    c.add_argument("q")
    c.add_argument("--data", required=True)
    c.add_argument("--got", required=True)
    c.add_argument("--limit", type=int, default=0)
    c.add_argument("--name")
    c.add_argument("--cal", help="calibrate binary, for the divergence search on failure")
    c.add_argument("--work", help="folder for the divergence search (default: a temp dir)")
    c.add_argument("--max-steps", type=float, default=1.0,
                   help="bound on |ours - onnxruntime| in quantization steps (default 1)")
    c.add_argument("--emulate-ort", action="store_true",
                   help="--got came from `calibrate run --emulate-ort` (the divergence "
                        "search runs it that way too)")
    c = sub.add_parser("tidy")
    c.add_argument("q")
    c.add_argument("--name")
    c = sub.add_parser("ort-ops")
    c.add_argument("model")
    a = ap.parse_args()
    {"check": cmd_check, "distinct": cmd_distinct, "fidelity": cmd_fidelity,
     "exec-match": cmd_exec_match, "tidy": cmd_tidy, "ort-ops": cmd_ort_ops}[a.cmd](a)
    sys.exit(1 if failures() else 0)


if __name__ == "__main__":
    main()
