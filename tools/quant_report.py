#!/usr/bin/env python3
"""Prints the README's quantization table: every calibration method on every integration
model, weights per channel, activations asymmetric uint8, the whole calibration set.

    tools/quant_report.py [--build DIR] [--models a,b] [--methods m1,m2] [--calib N]
                          [--eval N] [--calibrate-args "ARGS"] [--out FILE.md]

A method M runs `calibrate --method M` with its defaults (bias correction on); M-bc runs it with
--no-bias-correction; --calibrate-args adds options to every run (e.g. "--bias-samples 4").

For each model and method: `calibrate` on models/cache/data/<model>/calib (its wall time), then
the quantized and the float model in onnxruntime (2 threads) on the held-out eval samples:
SQNR of the quantized outputs against the float ones (dB, worst output) and the task
agreement of test/oracles/task_metrics.py (detectors: F1 of matched detections, IoU >= 0.5
after decode + NMS; magika: top-1 label). The best SQNR per model is in bold. Needs the
models and samples (tools/fetch_models.sh and tools/make_inputs.py, run here with --min).
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "oracles"))
from oracle_util import list_samples  # noqa: E402
from quant_check import run_ort, sqnr_db  # noqa: E402
from task_metrics import agreement  # noqa: E402

METHODS = ["minmax", "ema", "percentile", "mse", "entropy", "auto", "minmax-bc", "percentile-bc",
           "mse-bc"]


def model_path(name):
    with open(os.path.join(ROOT, "models", "manifest.txt")) as f:
        for line in f:
            p = line.split()
            if len(p) == 9 and p[0] == "model" and p[1] == name:
                return os.path.join(ROOT, "models", "cache", p[8])
    sys.exit(f"quant_report: unknown model '{name}'")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("QC_BUILD_DIR", "build"))
    ap.add_argument("--models", default="nudenet,magika,ddddocr")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--calib", type=int, default=32, help="calibration samples (default 32)")
    ap.add_argument("--eval", type=int, default=32, help="held-out eval samples (default 32)")
    ap.add_argument("--calibrate-args", default="",
                    help="more calibrate options for every run, one shell-quoted string")
    ap.add_argument("--out", help="also write the table to this file")
    a = ap.parse_args()
    cal = os.path.join(ROOT, a.build, "calibrate") if not os.path.isabs(a.build) else \
        os.path.join(a.build, "calibrate")
    if not os.access(cal, os.X_OK):
        sys.exit(f"quant_report: {cal} not built (make BUILD={a.build})")
    subprocess.run([os.path.join(ROOT, "tools", "fetch_models.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_inputs.py"), "--min",
                    "--calib", str(a.calib), "--eval", str(a.eval)], check=True,
                   stdout=subprocess.DEVNULL)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", QC_THREADS="2")

    rows = []
    with tempfile.TemporaryDirectory(prefix="qc-report.") as tmp:
        for m in a.models.split(","):
            path = model_path(m)
            data = os.path.join(ROOT, "models", "cache", "data", m)
            samples = list_samples(os.path.join(data, "eval"))[:a.eval]
            ref, _ = run_ort(path, samples)
            ids = [s[0] for s in samples]
            for meth in a.methods.split(","):
                q = os.path.join(tmp, f"{m}-{meth}.onnx")
                base, _, extra = meth.partition("-")
                flags = ["--no-bias-correction"] if extra == "bc" else []
                t0 = time.perf_counter()
                r = subprocess.run([cal, "--data", os.path.join(data, "calib"), path, "-o", q,
                                    "--method", base, "--per-channel", "--limit",
                                    str(a.calib), "-q"] + flags + shlex.split(a.calibrate_args),
                                   env=env, capture_output=True,
                                   text=True)
                wall = time.perf_counter() - t0
                if r.returncode:
                    rows.append((m, meth, None, None, None, r.stderr.strip()[:200]))
                    print(f"quant_report: {m} {meth}: {r.stderr.strip()}", file=sys.stderr)
                    continue
                got, _ = run_ort(q, samples)
                db = min(sqnr_db(ref, got))
                frac, text = agreement(m, dict(zip(ids, (g[0] for g in got))),
                                       dict(zip(ids, (x[0] for x in ref))))
                detail = text.split(": ", 1)[1] if ": " in text else text
                rows.append((m, meth, db, frac, wall, detail))
                print(f"quant_report: {m} {meth}: {db:.2f} dB, {100 * frac:.1f}%, "
                      f"{wall:.2f} s", file=sys.stderr)

    best = {}
    for m, _, db, *_ in rows:
        if db is not None and db > best.get(m, float("-inf")):
            best[m] = db
    lines = ["| model | method (-bc: --no-bias-correction) | SQNR on eval (dB) | task agreement | "
             "calibration time (s) |",
             "|---|---|---:|---:|---:|"]
    for m, meth, db, frac, wall, detail in rows:
        if db is None:
            lines.append(f"| {m} | {meth} | failed | | |")
            continue
        s = f"{db:.2f}"
        if db == best[m]:
            s = f"**{s}**"
        what = "top-1" if m == "magika" else "F1"
        lines.append(f"| {m} | {meth} | {s} | {100 * frac:.1f}% ({what}) | {wall:.2f} |")
    import onnxruntime
    lines.append("")
    lines.append(f"Weights int8 per channel (symmetric), activations uint8 asymmetric, int32 "
                 f"biases; {a.calib} calibration and {a.eval} held-out eval samples per model "
                 f"(tools/make_inputs.py); onnxruntime {onnxruntime.__version__}, CPU, 2 "
                 f"threads; SQNR = 10 log10(sum float^2 / sum (int8 - float)^2) over all eval "
                 f"outputs. Calibration time is the wall time of `calibrate` (load, "
                 f"{a.calib} float runs with observers, quantize, save), 2 threads.")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
