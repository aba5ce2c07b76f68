#!/usr/bin/env python3
"""Runs a model in onnxruntime over a data folder, as the oracle for `calibrate run`.

    ort_run.py MODEL --data DIR --out OUTDIR [--limit N] [--threads 2] [--opt all|basic|none]
        writes OUTDIR/<sample>/<output>.npy named exactly as `calibrate run` names them.
    ort_run.py MODEL --data DIR --bench RUNS [--limit N]
        prints "ort: median <ms> ms/sample ...", measured like `calibrate bench`: one warm-up
        pass over the samples, then RUNS timed passes; the median pass's mean per sample.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import die, feeds_for, list_samples, ort_session, output_files, \
    sample_dirs, save_npy  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out")
    ap.add_argument("--limit", type=int, default=0, help="first N samples only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--opt", default="all", choices=["all", "basic", "none"])
    ap.add_argument("--bench", type=int, default=0, metavar="RUNS")
    args = ap.parse_args()
    if not args.out and not args.bench:
        die("need --out OUTDIR or --bench RUNS")

    sess = ort_session(args.model, args.threads, args.opt)
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    samples = list_samples(args.data)
    if args.limit:
        samples = samples[:args.limit]
    if not samples:
        die(f"{args.data}: no samples")

    if args.bench:
        # Same measure as `calibrate bench`: a warm-up pass over the samples, then RUNS timed
        # passes; each pass gives the mean time per sample; report the median pass.
        feeds = [feeds_for(s, inputs) for s in samples]
        passes = []
        for r in range(-1, args.bench):
            total = 0.0
            for f in feeds:
                t0 = time.perf_counter()
                sess.run(None, f)
                total += time.perf_counter() - t0
            if r >= 0:
                passes.append(total / len(feeds) * 1e3)
        print(f"ort: median {np.median(passes):.3f} ms/sample (min {min(passes):.3f}, max "
              f"{max(passes):.3f}) over {args.bench} runs of {len(samples)} samples, "
              f"{args.threads} threads")
        return

    dirs = sample_dirs([s[0] for s in samples])
    files = output_files([o.name for o in outputs])
    for s, sd in zip(samples, dirs):
        res = sess.run(None, feeds_for(s, inputs))
        d = os.path.join(args.out, sd)
        os.makedirs(d, exist_ok=True)
        for f, r in zip(files, res):
            save_npy(os.path.join(d, f), np.asarray(r))
    print(f"ort_run: {len(samples)} samples -> {args.out}")


if __name__ == "__main__":
    main()
