"""Paired latency A/B of two ONNX models in onnxruntime, in one process.

    tools/lat_ab.py A.onnx B.onnx SAMPLES_DIR [RUNS]

Both sessions (peers.py's: CPU, 2 threads, thread spinning off, ORT_ENABLE_ALL) run the first
.npy sample of SAMPLES_DIR, 20 warm-up runs each, then RUNS pairs (default 300) alternating
which goes first. Prints each model's median / min / 25th percentile in ms and the median of
the per-pair ratios B / A: a slow stretch of a shared machine hits both runs of a pair alike,
so the paired ratio resolves differences the two medians cannot.
"""
import glob
import os
import sys
import time

import numpy as np

from peers import session   # the sessions `make peers` times, so the figures compare


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    a, b, d = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) == 5 else 300
    files = sorted(glob.glob(os.path.join(d, "*.npy")))
    if not files:
        sys.exit(f"lat_ab: {d}: no .npy sample")
    sess = [session(a), session(b)]
    feed = {sess[0].get_inputs()[0].name: np.load(files[0])}
    for s in sess:
        for _ in range(20):
            s.run(None, feed)
    t = [[], []]
    for i in range(runs):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            sess[k].run(None, feed)
            t[k].append((time.perf_counter() - t0) * 1e3)
    for k, m in enumerate((a, b)):
        v = np.array(t[k])
        print(f"{m}: median {np.median(v):.3f} ms, min {v.min():.3f}, "
              f"p25 {np.percentile(v, 25):.3f}")
    print(f"paired ratio B / A: median {np.median(np.array(t[1]) / np.array(t[0])):.4f} "
          f"over {runs} pairs")


if __name__ == "__main__":
    main()
