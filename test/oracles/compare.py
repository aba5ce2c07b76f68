#!/usr/bin/env python3
"""Compares two output folders (OUTDIR/<sample>/<output>.npy) and prints a one-line verdict.

    compare.py GOT REF [--tol 1e-3] [--name LABEL]

For every output, the error is max |got - ref| over all samples divided by the output's range
in REF (max - min over all samples; max |ref| if the range is 0, 1 if that is 0 too). Each
must be <= tol. Shapes and dtypes must match, NaN/Inf must sit at the same places, and both
folders must hold the same samples and outputs.
Exit 0 if equal within tol, 1 if not, 2 on usage errors.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import die  # noqa: E402


def scan(root):
    if not os.path.isdir(root):
        die(f"{root}: not a folder")
    out = {}
    for s in sorted(os.listdir(root)):
        d = os.path.join(root, s)
        if os.path.isdir(d) and not s.startswith("."):
            out[s] = {f[:-4]: os.path.join(d, f) for f in sorted(os.listdir(d))
                                  if f.endswith(".npy") and not f.startswith(".")}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("got")
    ap.add_argument("ref")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--name", default="compare")
    args = ap.parse_args()

    got, ref = scan(args.got), scan(args.ref)
    problems = []
    if not ref:
        problems.append(f"{args.ref} holds no samples")
    if set(got) != set(ref):
        miss = sorted(set(ref) - set(got))
        extra = sorted(set(got) - set(ref))
        problems.append(f"samples differ (missing {miss[:3]}, extra {extra[:3]})")
    worst = {}     # output -> (max abs err, sample)
    lo, hi = {}, {}
    for s in sorted(set(got) & set(ref)):
        if set(got[s]) != set(ref[s]):
            problems.append(f"{s}: outputs {sorted(got[s])}, expected {sorted(ref[s])}")
            continue
        for o in ref[s]:
            g, r = np.load(got[s][o]), np.load(ref[s][o])
            if g.dtype != r.dtype or g.shape != r.shape:
                problems.append(f"{s}/{o}: {g.dtype}{list(g.shape)}, expected "
                                f"{r.dtype}{list(r.shape)}")
                continue
            g64, r64 = g.astype(np.float64), r.astype(np.float64)
            fin = np.isfinite(r64)
            if not np.array_equal(fin, np.isfinite(g64)) or \
                    not np.array_equal(g64[~fin], r64[~fin], equal_nan=True):
                problems.append(f"{s}/{o}: NaN/Inf differ")
                continue
            if fin.any():
                lo[o] = min(lo.get(o, np.inf), r64[fin].min())
                hi[o] = max(hi.get(o, -np.inf), r64[fin].max())
                err = float(np.abs(g64[fin] - r64[fin]).max())
                if err >= worst.get(o, (-1.0, ""))[0]:
                    worst[o] = (err, s)
    rel_worst = (0.0, "", 0.0, 0.0, "")
    for o, (err, s) in worst.items():
        rng = hi[o] - lo[o]
        if rng == 0:
            rng = max(abs(hi[o]), abs(lo[o])) or 1.0
        rel = err / rng
        if rel > args.tol:
            problems.append(f"output '{o}': max|err| {err:.3g} at sample {s} is {rel:.3g} of "
                            f"its range {rng:.4g} (> {args.tol:g})")
        if rel >= rel_worst[0]:
            rel_worst = (rel, o, err, rng, s)
    n_out = len(next(iter(ref.values()), {}))
    head = f"{args.name}: {len(ref)} samples, {n_out} outputs"
    if problems:
        print(f"{head}: FAIL: {problems[0]}" +
              (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
        sys.exit(1)
    rel, o, err, rng, s = rel_worst
    print(f"{head}: ok: worst '{o}' max|err| {err:.3g} = {rel:.3g} of range {rng:.4g}")


if __name__ == "__main__":
    main()
