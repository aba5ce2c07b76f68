#!/usr/bin/env python3
"""Evaluate quantized models of an integration model as `make peers` does.

    .venv-peers/bin/python tools/peers_eval.py MODEL_NAME Q.onnx [Q.onnx ...] [--eval N]

MODEL_NAME is one of make peers' models (nudenet, magika, ddddocr); the float model and the
held-out samples are the ones make peers uses (its float model from models/cache, the first
N, default 32, samples of build/peers/cache/data/MODEL_NAME/eval: run make peers once first).
Prints, per quantized model, the SQNR of the worst output against the float model over all
samples and the task agreement (test/oracles/task_metrics.py), from peers.py's evaluate().
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("model_name")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--eval", type=int, default=32)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    evald = os.path.join(root, "build", "peers", "cache", "data", a.model_name, "eval")
    if not os.path.isdir(evald):
        sys.exit(f"peers_eval: {evald}: no eval samples (run make peers first)")
    fpath = peers.model_path(a.model_name)
    feeds = peers.load_feeds(fpath, peers.sample_files(evald, a.eval))
    ref_sess = peers.session(fpath)
    ref = [ref_sess.run(None, f) for f in feeds]
    with tempfile.TemporaryDirectory() as tmp:
        opt = os.path.join(tmp, "optimized.onnx")
        for m in a.models:
            r = peers.evaluate(a.model_name, m, feeds, ref, opt)
            print(f"{os.path.basename(m)}: SQNR {r['sqnr_db']:.2f} dB, "
                  f"task agreement {r['task']:.3f}")


if __name__ == "__main__":
    main()
