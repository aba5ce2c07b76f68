#!/usr/bin/env python3
"""qcal's float executor beside onnxruntime, node by node, on the same model and samples.

    .venv/bin/python tools/profile_vs_ort.py MODEL.onnx --data DIR [--threads 2] [--rounds 3]

qcal side: `calibrate bench --profile-json` (kernel time per node, ms per sample, over the timed
passes). onnxruntime side: its profiler (sess_options.enable_profiling), the same samples
(DIR's .npy files, one input), the same thread count. The two sides run in alternating rounds
and each node keeps its smallest time over the rounds (this machine's load moves whole runs).

onnxruntime renames and fuses nodes: a Conv it turned into NCHWc is "<output>_nchwc", fused
nodes are "<first node>/<Fusion>/"; both are matched back to the model's node. Its own layout
nodes (ReorderInput/Output) and rewrites (SpaceToDepth for a focus Slice chain) have no qcal
node and are listed as such. onnxruntime's Conv times do not include an activation it did not
fuse (SiLU runs as QuickGelu, listed under the Mul's name), qcal's include the fused SiLU.
"""
import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort


def qcal_profile(cal, model, data, runs, threads, out):
    env = dict(os.environ, QC_THREADS=str(threads))
    r = subprocess.run([cal, "bench", model, "--data", data, "--runs", str(runs),
                        "--profile-json", out], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"profile_vs_ort: calibrate bench failed: {(r.stderr or r.stdout).strip()}")
    with open(out) as f:
        p = json.load(f)
    return {n["name"]: n["ms"] for n in p["nodes"]}, p["median_ms"]


def ort_profile(model, feeds, runs, threads, workdir):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(workdir, "ort")
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for x in feeds:                     # warm-up pass, as calibrate bench does
        s.run(None, {name: x})
    events_before = len(feeds)
    for _ in range(runs):
        for x in feeds:
            s.run(None, {name: x})
    path = s.end_profiling()
    with open(path) as f:
        ev = json.load(f)
    os.remove(path)
    # each node has one event a run: the first len(feeds) are the warm-up pass
    per = collections.defaultdict(list)
    op_of = {}
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            nm = e["name"][: -len("_kernel_time")]
            per[nm].append(e["dur"])
            op_of[nm] = e.get("args", {}).get("op_name", "?")
    ms = {}
    for nm, durs in per.items():
        timed = durs[events_before:] if len(durs) > events_before else durs
        ms[nm] = sum(timed) / 1000.0 / max(1, len(timed))
    return ms, op_of


def match(model, ort_ms, ort_ops):
    """ORT event name -> the model node it stands for (None: no model node)."""
    by_name = {n.name: n for n in model.graph.node}
    by_out = {n.output[0]: n for n in model.graph.node if n.output}
    out = {}
    for nm in ort_ms:
        node = by_name.get(nm)
        if node is None and nm.endswith("_nchwc"):
            node = by_out.get(nm[: -len("_nchwc")])
            # a Conv with a fused activation is named after the activation's output
            for _ in range(3):
                if node is None or node.op_type == ort_ops.get(nm) or not node.input:
                    break
                node = by_out.get(node.input[0])
        cut = nm.rstrip("/")
        while node is None and "/" in cut:      # "<node name>/<Fusion>/": names hold "/" too
            cut = cut.rsplit("/", 1)[0]
            node = by_name.get(cut)
        out[nm] = node.name if node is not None else None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", required=True, help="directory of .npy samples (one input)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5, help="timed passes per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--calibrate", default="build/calibrate")
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.data, "*.npy")))
    if not files:
        sys.exit(f"profile_vs_ort: {a.data}: no .npy samples")
    m = onnx.load(a.model, load_external_data=False)
    if len(m.graph.input) - len({i.name for i in m.graph.initializer}) > 1:
        sys.exit(f"profile_vs_ort: {a.model}: more than one input (only one is supported)")
    feeds = [np.load(f) for f in files]
    ops = {n.name: n.op_type for n in m.graph.node}
    # qcal names an unnamed node <op type>_<index> (the model's Constant nodes, often)
    ops.update({f"{n.op_type}_{i}": n.op_type for i, n in enumerate(m.graph.node) if not n.name})
    best_q, best_o, lat, ort_ops = {}, {}, [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.rounds):
            q, med = qcal_profile(a.calibrate, a.model, a.data, a.runs, a.threads,
                                  os.path.join(tmp, "q.json"))
            lat.append(med)
            for k, v in q.items():
                best_q[k] = min(v, best_q.get(k, v))
            o, op_of = ort_profile(a.model, feeds, a.runs, a.threads, tmp)
            ort_ops.update(op_of)
            for k, v in o.items():
                best_o[k] = min(v, best_o.get(k, v))
    owner = match(m, best_o, ort_ops)
    ort_node = collections.defaultdict(float)
    ort_only = {}
    for k, v in best_o.items():
        if owner[k] is None:
            ort_only[k] = v
        else:
            ort_node[owner[k]] += v
    tq, to = sum(best_q.values()), sum(best_o.values())
    print(f"{a.model}: {len(files)} samples, {a.threads} threads, best of {a.rounds} rounds; "
          f"kernel ms/sample qcal {tq:.3f}, onnxruntime {to:.3f} ({tq / to:.2f}x); "
          f"qcal bench median {min(lat):.3f} ms")
    by_op = collections.defaultdict(lambda: [0.0, 0.0])
    for k, v in best_q.items():
        by_op[ops[k]][0] += v
    for k, v in ort_node.items():
        by_op[ops[k]][1] += v
    for k, v in ort_only.items():
        by_op["(onnxruntime only) " + ort_ops.get(k, "?")][1] += v
    print(f"\n{'op type':<36} {'qcal ms':>9} {'ort ms':>9} {'diff':>8}")
    for op, (x, y) in sorted(by_op.items(), key=lambda kv: -max(kv[1])):
        print(f"{op[:36]:<36} {x:9.3f} {y:9.3f} {x - y:+8.3f}")
    rows = sorted(best_q, key=lambda k: -(best_q[k] - ort_node.get(k, 0.0)))
    print(f"\n{'node (qcal slower first)':<36} {'op':<10} {'qcal ms':>9} {'ort ms':>9} "
          f"{'diff':>8}")
    for k in rows[: a.top]:
        print(f"{k[:36]:<36} {ops[k][:10]:<10} {best_q[k]:9.3f} {ort_node.get(k, 0.0):9.3f} "
              f"{best_q[k] - ort_node.get(k, 0.0):+8.3f}")


if __name__ == "__main__":
    main()
