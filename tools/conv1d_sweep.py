#!/usr/bin/env python3
"""Where the 1-D Winograd path (src/exec/conv_wino1d.c) pays: one-Conv models [1, C, L] ->
[1, M, L] with r taps ("same" padding), timed by `calibrate bench` on one thread with the
direct kernels (QC_CONV_WINO=0) and with Winograd forced (QC_CONV_WINO=1).

    .venv/bin/python tools/conv1d_sweep.py [--taps 3,5,7] [--channels 16x16,64x64,128x128]
                                           [--lengths 64,128,512] [--runs 20]

Prints per shape the two medians (ms a sample) and their ratio (> 1: Winograd faster); the
default choice in qc_conv1d_wino follows such a table. Timings are this machine's, noisy at
the 1 us resolution of the small shapes.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_case(d, r, c, m, length):
    rng = np.random.default_rng(r * 1000003 + c * 1009 + m * 17 + length)
    w = numpy_helper.from_array((rng.standard_normal((m, c, r)) * 0.1).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(m).astype(np.float32), "b")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[r // 2, (r - 1) // 2])
    g = helper.make_graph([node], "conv1d",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, length])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, os.path.join(d, "m.onnx"))
    os.makedirs(os.path.join(d, "data"))
    for i in range(4):
        np.save(os.path.join(d, "data", f"{i}.npy"),
                rng.standard_normal((1, c, length)).astype(np.float32))


def median_ms(d, mode, runs):
    env = dict(os.environ, QC_CONV_WINO=mode, QC_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([os.path.join(ROOT, "build", "calibrate"), "bench",
                          os.path.join(d, "m.onnx"), "--data", os.path.join(d, "data"),
                          "--runs", str(runs)], env=env, capture_output=True, text=True)
    found = re.search(r"median ([0-9.]+) ms", out.stdout + out.stderr)
    if out.returncode or not found:
        sys.exit(f"conv1d_sweep: calibrate bench failed on {d}: {out.stderr.strip()}")
    return float(found.group(1))


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--taps", default="3,5,7")
    ap.add_argument("--channels", default="16x16,64x64,128x128,256x512")
    ap.add_argument("--lengths", default="32,64,128,512")
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    print(f"{'taps':>4} {'in':>4} {'out':>4} {'L':>5} {'direct':>8} {'winograd':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for r in map(int, a.taps.split(",")):
            for cm in a.channels.split(","):
                c, m = map(int, cm.split("x"))
                for length in map(int, a.lengths.split(",")):
                    d = os.path.join(tmp, f"r{r}_c{c}_m{m}_L{length}")
                    os.makedirs(d)
                    make_case(d, r, c, m, length)
                    t0, t1 = median_ms(d, "0", a.runs), median_ms(d, "1", a.runs)
                    print(f"{r:>4} {c:>4} {m:>4} {length:>5} {t0:8.3f} {t1:8.3f} "
                          f"{t0 / t1 if t1 else float('nan'):6.2f}", flush=True)


if __name__ == "__main__":
    main()
