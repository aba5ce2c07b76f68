#!/usr/bin/env python3
"""`calibrate compare` --method auto and mixed precision, with onnxruntime as the judge.

    compare_auto_check.py CAL MODEL --calib DIR --eval DIR --work DIR [--name NAME]
                          [--limit N] [--eval-limit N] [--margin DB] [--tol DB]

1. `CAL compare ... --json --write-auto AUTO.onnx`: the auto row and its choices are in the
   JSON (each observed tensor chose one option, the option counts add up); --write-auto's
   model run in onnxruntime on the eval samples is at least as good (output SQNR, worst
   output, --tol dB of executor difference) as the best single method's model quantized by
   `CAL <its calibrate_args>` and run in onnxruntime too.
2. `CAL compare ... --target-sqnr T --write-best MIXED.onnx` with T = the best candidate's
   SQNR + --margin dB (when the float model reaches it, which is always: every node float is
   the float model): the JSON says reached, lists n_float distinct nodes of the model, the
   sensitivity ranking is sorted; onnxruntime measures MIXED.onnx >= T - --tol on the eval
   samples.
3. `--keep-float 2`: exactly the two most sensitive nodes are float.
Prints "ok   NAME: figures" or "FAIL NAME: why" per check; exit 1 if one failed.
"""
import json
import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_check import common_args, metric, prepare, run, run_ort  # noqa: E402
from compare_check import finite as val  # noqa: E402
from oracle_util import die, fail, failures, ok  # noqa: E402


def sqnr(ref, got):
    """compare's output SQNR: per float output over all samples, the worst output counts."""
    return metric(ref, got, "sqnr")


def main():
    ap = common_args("auto")
    ap.add_argument("--margin", type=float, default=3.0)
    ap.add_argument("--tol", type=float, default=0.1)
    a = ap.parse_args()
    eval_samples, lim, base = prepare(a)
    if not eval_samples:
        die("no eval samples")
    w = lambda f: os.path.join(a.work, f)  # noqa: E731
    ref = run_ort(a.model, eval_samples)

    # 1. auto against the best single method, both in onnxruntime
    try:
        run(base + ["--json", w("auto.json"), "--write-auto", w("auto.onnx")])
        with open(w("auto.json")) as f:
            r = json.load(f)
        cands = {c["name"]: c for c in r["candidates"]}
        av = r["auto_vs_best_single"]
        single = cands[av["best_single"]]
        run([a.cal, "--data", a.calib, a.model, "-o", w("single.onnx"), "-q"] + lim +
            single["calibrate_args"])
    except (RuntimeError, KeyError) as e:
        fail(f"auto_{a.name}", str(e))
        return
    au = cands["auto"].get("auto", {})
    t = au.get("tensors", {})
    n_t = len(t.get("name", []))
    counts = sum(o["tensors"] for o in au.get("options", []))
    if n_t == 0 or counts != n_t or len(t.get("choice", [])) != n_t:
        fail(f"auto_choices_{a.name}", f"{n_t} tensors listed, option counts add to {counts}")
    else:
        used = ", ".join(f"{o['name']} x{o['tensors']}" for o in au["options"] if o["tensors"])
        ok(f"auto_choices_{a.name}", f"{n_t} tensors: {used}; {au['weights_per_tensor']} of "
           f"{au['weights']} weights per tensor")
    s_auto, s_single = sqnr(ref, run_ort(w("auto.onnx"), eval_samples)), \
        sqnr(ref, run_ort(w("single.onnx"), eval_samples))
    msg = (f"onnxruntime SQNR: auto ({av['final']}{', fallback' if av['fallback'] else ''}) "
           f"{s_auto:.2f} dB, best single {av['best_single']} {s_single:.2f} dB; qcal: auto's "
           f"own choice {val(av['auto_local_sqnr_db']):.2f}, final "
           f"{val(av['final_sqnr_db']):.2f}, gain {val(av['sqnr_gain_db']):+.2f} dB")
    if s_auto >= s_single - a.tol and val(av["final_metric"]) >= val(av["best_single_metric"]):
        ok(f"auto_vs_single_{a.name}", msg)
    else:
        fail(f"auto_vs_single_{a.name}", msg)

    # 2. --target-sqnr
    best = cands[r["best"]]
    target = round(val(best["sqnr_db"]) + a.margin, 2)
    try:
        run(base + ["--json", w("mixed.json"), "--write-best", w("mixed.onnx"),
                    "--target-sqnr", str(target)])
        with open(w("mixed.json")) as f:
            mr = json.load(f)
        mx, sens = mr["mixed"], mr["sensitivity"]["nodes"]
    except (RuntimeError, KeyError) as e:
        fail(f"target_sqnr_{a.name}", str(e))
        return
    names = {n.name for n in onnx.load(a.model).graph.node}
    fl = mx["float_nodes"]
    vals = [val(x["sqnr_db_float"]) for x in sens if x["sqnr_db_float"] is not None]
    s_mixed = sqnr(ref, run_ort(w("mixed.onnx"), eval_samples))
    problems = []
    if not mx.get("reached") or val(mx["sqnr_db"]) < target:
        problems.append(f"JSON: reached {mx.get('reached')}, sqnr {mx['sqnr_db']}")
    if len(fl) != mx["n_float"] or len(set(fl)) != len(fl) or not set(fl) <= names:
        problems.append(f"float nodes: {len(fl)} listed, n_float {mx['n_float']}, unknown "
                        f"{sorted(set(fl) - names)[:3]}")
    if fl != [x["node"] for x in sens[:len(fl)]]:
        problems.append("float nodes are not the most sensitive ones")
    if vals != sorted(vals, reverse=True):
        problems.append("sensitivity not sorted")
    if s_mixed < target - a.tol:
        problems.append(f"onnxruntime SQNR {s_mixed:.2f} < target {target}")
    msg = (f"target {target} dB (best {val(best['sqnr_db']):.2f} + {a.margin}): {mx['n_float']}"
           f" of {len(sens)} nodes float, qcal {val(mx['sqnr_db']):.2f} dB, onnxruntime "
           f"{s_mixed:.2f} dB on {len(eval_samples)} eval samples; {mx['models_evaluated']} "
           f"models evaluated; float: {', '.join(fl[:4])}{' ...' if len(fl) > 4 else ''}")
    if problems:
        fail(f"target_sqnr_{a.name}", "; ".join(problems) + " -- " + msg)
    else:
        ok(f"target_sqnr_{a.name}", msg)

    # 3. --keep-float 2
    try:
        run(base + ["--json", w("keep.json"), "--keep-float", "2"])
        with open(w("keep.json")) as f:
            k = json.load(f)
        want = [x["node"] for x in k["sensitivity"]["nodes"][:2]]
        if k["mixed"]["float_nodes"] == want and k["mixed"]["n_float"] == 2:
            ok(f"keep_float_{a.name}", f"2 most sensitive float: {', '.join(want)}: "
               f"{val(k['mixed']['sqnr_db']):.2f} dB (all quantized "
               f"{val(k['mixed']['base_sqnr_db']):.2f})")
        else:
            fail(f"keep_float_{a.name}", f"float {k['mixed']['float_nodes']}, want {want}")
    except (RuntimeError, KeyError) as e:
        fail(f"keep_float_{a.name}", str(e))


if __name__ == "__main__":
    main()
    sys.exit(1 if failures() else 0)
