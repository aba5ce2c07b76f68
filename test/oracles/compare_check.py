#!/usr/bin/env python3
"""Acceptance check of `calibrate compare`, with onnxruntime as the judge.

    compare_check.py CAL MODEL --calib DIR --eval DIR --work DIR [--name NAME] [--limit N]
                     [--eval-limit N] [--metric sqnr|cosine|top1] [--min-spearman 0.9]
                     [--no-ranking]

1. Runs `CAL compare --data CALIB --eval EVAL MODEL --json --write-best` once.
2. One float pass: the JSON's float_passes (counted by the executor, qc_exec_runs) equals the
   number of calibration samples used, and quantized_passes = candidates x eval samples.
   At least 8 candidates; per-layer arrays present, saturation in [0, 1].
3. Each candidate (only the winner with --no-ranking) is quantized for real with
   `CAL --data CALIB MODEL <its calibrate_args>`; the winner's model must be byte-identical
   to --write-best's.
4. (unless --no-ranking) Every candidate's model and the float model run in onnxruntime on
   the same eval samples; the ranking metric is computed as compare defines it (SQNR: 10
   log10 of signal over error energy per float output over all samples, the worst output
   counts; cosine: likewise the worst; top1: argmax agreement of [N, C] outputs). The
   Spearman rank correlation (average ranks for ties) between compare's values and
   onnxruntime's must be >= --min-spearman.
Prints "ok   NAME: figures" or "FAIL NAME: why" per check; exit 1 if one failed, 2 on usage.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import die, fail, failures, feeds_for, list_samples, ok, ort_session  # noqa: E402


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RuntimeError(f"{' '.join(cmd[:3])}... exit {p.returncode}: {err}")
    return p.stdout


def ranks(v):
    """Ranks 1..n (ascending) with ties averaged, as scipy.stats.rankdata."""
    v = np.asarray(v, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def finite(x):
    """compare's JSON value -> a sortable float ("inf"/"-inf" strings; null: undefined)."""
    return float("-inf") if x is None else float(x)


def run_ort(path, samples):
    sess = ort_session(path, 2, "all")
    ins = sess.get_inputs()
    return [sess.run(None, feeds_for(s, ins)) for s in samples]


def metric(ref, got, which):
    """compare's definition over all samples: worst output for sqnr/cosine, pooled top-1."""
    vals, rows, agree = [], 0, 0
    for k in range(len(ref[0])):
        if ref[0][k].dtype != np.float32:
            continue
        r = np.concatenate([x[k].astype(np.float64).ravel() for x in ref])
        g = np.concatenate([x[k].astype(np.float64).ravel() for x in got])
        fin = np.isfinite(r)
        r, g = r[fin], g[fin]
        if which == "sqnr":
            err, sig = float(((g - r) ** 2).sum()), float((r ** 2).sum())
            vals.append(np.inf if err == 0 else -np.inf if sig == 0 else
                        10 * np.log10(sig / err))
        elif which == "cosine":
            den = np.sqrt((r ** 2).sum() * (g ** 2).sum())
            vals.append(1.0 if den == 0 else float((r * g).sum() / den))
        elif ref[0][k].ndim == 2 and ref[0][k].shape[1] > 1:
            for x, y in zip(ref, got):
                rows += x[k].shape[0]
                agree += int((x[k].argmax(1) == y[k].argmax(1)).sum())
    if which == "top1":
        return agree / rows if rows else float("nan")
    return min(vals)


def common_args(name):
    """The arguments of this check and compare_auto_check.py: CAL MODEL --calib --eval --work
    [--name] [--limit] [--eval-limit] [--methods] (compare's own options)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("cal")
    ap.add_argument("model")
    ap.add_argument("--calib", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--name", default=name)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--eval-limit", type=int, default=0)
    ap.add_argument("--methods", default="")
    return ap


def prepare(a):
    """Makes --work; returns the eval samples (--eval-limit of them), the --limit arguments
    and the compare command (-q, the samples and their limits, --methods) that each run
    extends."""
    os.makedirs(a.work, exist_ok=True)
    eval_samples = list_samples(a.eval)
    if a.eval_limit:
        eval_samples = eval_samples[:a.eval_limit]
    lim = ["--limit", str(a.limit)] if a.limit else []
    base = [a.cal, "compare", "--data", a.calib, "--eval", a.eval, a.model, "-q"] + lim
    if a.eval_limit:
        base += ["--eval-limit", str(a.eval_limit)]
    if a.methods:
        base += ["--methods", a.methods]
    return eval_samples, lim, base


def main():
    ap = common_args("compare")
    ap.add_argument("--metric", default="sqnr", choices=["sqnr", "cosine", "top1"])
    ap.add_argument("--min-spearman", type=float, default=0.9)
    ap.add_argument("--no-ranking", action="store_true")
    a = ap.parse_args()
    eval_samples, lim, base = prepare(a)
    n_calib = len(list_samples(a.calib))
    if a.limit:
        n_calib = min(n_calib, a.limit)
    if not eval_samples or not n_calib:
        die("no samples")
    report, best_path = os.path.join(a.work, "report.json"), os.path.join(a.work, "best.onnx")
    try:
        run(base + ["--json", report, "--write-best", best_path, "--metric", a.metric])
    except RuntimeError as e:
        fail(f"compare_{a.name}", str(e))
        return
    with open(report) as f:
        r = json.load(f)
    cands = r["candidates"]

    # 2. one float pass over the calibration data
    n_ev = r["eval_samples"]
    problems = []
    if r["float_passes"] != n_calib or r["calib_samples"] != n_calib:
        problems.append(f"float_passes {r['float_passes']}, calib_samples {r['calib_samples']}"
                        f", expected {n_calib}")
    if n_ev != len(eval_samples):
        problems.append(f"eval_samples {n_ev}, expected {len(eval_samples)}")
    if r["quantized_passes"] != len(cands) * n_ev:
        problems.append(f"quantized_passes {r['quantized_passes']} != {len(cands)} x {n_ev}")
    if r["schedule"] == "sample-major" and r["eval_float_passes"] != n_ev:
        problems.append(f"eval_float_passes {r['eval_float_passes']} != {n_ev}")
    if len(cands) < 8:
        problems.append(f"{len(cands)} candidates, expected >= 8")
    for c in cands:
        L = c["layers"]
        n = len(L["name"])
        if n == 0 or any(len(v) != n for v in L.values()):
            problems.append(f"{c['name']}: per-layer arrays empty or of different lengths")
            break
        sat = [s for s in L["saturation"] if s is not None]
        if any(not 0 <= s <= 1 for s in sat):
            problems.append(f"{c['name']}: saturation outside [0, 1]")
            break
    if problems:
        fail(f"one_pass_{a.name}", "; ".join(problems))
    else:
        ok(f"one_pass_{a.name}", f"{len(cands)} candidates from {r['float_passes']} float "
           f"passes over {n_calib} calibration samples ({r['observers_per_tensor']} shared "
           f"observers per tensor), {r['quantized_passes']} quantized runs on {n_ev} eval "
           f"samples ({r['schedule']}); {r['seconds']['total']:.1f} s")

    # 3. each candidate for real with `calibrate`; the winner byte-identical
    paths = []
    win = next(i for i, c in enumerate(cands) if c["name"] == r["best"])
    for i, c in enumerate(cands):
        p = os.path.join(a.work, f"cand{i}.onnx")
        paths.append(p)
        if a.no_ranking and i != win:
            continue                    # only the winner is needed for the identity check
        try:
            run([a.cal, "--data", a.calib, a.model, "-o", p, "-q"] + lim + c["calibrate_args"])
        except RuntimeError as e:
            fail(f"calibrate_{a.name}", f"{c['name']}: {e}")
            return
    with open(best_path, "rb") as f1, open(paths[win], "rb") as f2:
        same = f1.read() == f2.read()
    if same:
        ok(f"best_identical_{a.name}",
           f"--write-best = calibrate {' '.join(cands[win]['calibrate_args'])}")
    else:
        fail(f"best_identical_{a.name}", f"--write-best differs from calibrate "
             f"{' '.join(cands[win]['calibrate_args'])}")
    if a.no_ranking:
        return

    # 4. ranking against onnxruntime
    ref = run_ort(a.model, eval_samples)
    ours, theirs = [], []
    for c, p in zip(cands, paths):
        got = run_ort(p, eval_samples)
        key = {"sqnr": "sqnr_db", "cosine": "cosine", "top1": "top1"}[a.metric]
        ours.append(finite(c[key]))
        theirs.append(metric(ref, got, a.metric))
    rho = spearman(ours, theirs)
    diffs = [abs(x - y) for x, y in zip(ours, theirs) if np.isfinite(x) and np.isfinite(y)]
    table = ", ".join(f"{c['name']} {x:.2f}/{y:.2f}" for c, x, y in zip(cands, ours, theirs))
    ort_best = cands[int(np.argmax(theirs))]["name"]
    msg = (f"Spearman {rho:.3f} over {len(cands)} candidates ({a.metric}, qcal/onnxruntime: "
           f"{table}); max |diff| {max(diffs) if diffs else float('nan'):.3g}; best qcal "
           f"'{r['best']}', onnxruntime '{ort_best}'")
    if rho >= a.min_spearman:
        ok(f"ranking_{a.name}", msg)
    else:
        fail(f"ranking_{a.name}", f"Spearman {rho:.3f} < {a.min_spearman}: " + msg)


if __name__ == "__main__":
    main()
    sys.exit(1 if failures() else 0)
