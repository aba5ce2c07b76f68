#!/usr/bin/env python3
"""onnxruntime's kernel time per op type, for several models side by side.

    .venv-peers/bin/python tools/ort_op_times.py SAMPLES_DIR MODEL.onnx [MODEL.onnx ...]

Each model runs the first .npy sample of SAMPLES_DIR in its own session (CPU, 2 threads,
thread spinning off, as make peers times them): 10 warm-up runs, then 100 with onnxruntime's
profiler on; two rounds over all models, the second one reported. Prints, per op type of the
optimized graph (QLinearConv, QLinearConcat, ...), the milliseconds a run and the nodes.
"""
import collections
import glob
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def profile(path, feed_file):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.enable_profiling = True
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: np.load(feed_file)}
    for _ in range(10):
        s.run(None, feed)
    for _ in range(100):
        s.run(None, feed)
    prof = s.end_profiling()
    with open(prof, encoding="utf-8") as f:
        events = json.load(f)
    os.remove(prof)
    us, count = collections.defaultdict(float), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name")
            us[op] += e["dur"]
            count[op] += 1
    runs = 110      # the warm-up runs are profiled too
    return {op: (t / 1e3 / runs, count[op] // runs) for op, t in us.items()}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    files = sorted(glob.glob(os.path.join(sys.argv[1], "*.npy")))
    if not files:
        sys.exit(f"ort_op_times: {sys.argv[1]}: no .npy sample")
    models = sys.argv[2:]
    res = {}
    for rnd in range(2):
        for m in models:
            r = profile(m, files[0])
            if rnd == 1:
                res[m] = r
    ops = sorted({op for r in res.values() for op in r},
                 key=lambda op: -max(r.get(op, (0, 0))[0] for r in res.values()))
    print("op".ljust(22) + "".join(os.path.basename(m)[:26].rjust(28) for m in models))
    for op in ops:
        cells = []
        for m in models:
            ms, n = res[m].get(op, (0.0, 0))
            cells.append(f"{ms:10.3f} ms {n:5d} nodes".rjust(28))
        print(op.ljust(22) + "".join(cells))
    print("total".ljust(22) + "".join(f"{sum(v[0] for v in res[m].values()):10.3f} ms".rjust(28)
                                      for m in models))


if __name__ == "__main__":
    main()
