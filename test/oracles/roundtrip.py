#!/usr/bin/env python3
"""Checks a model that qcal loaded and saved unchanged against the original.

    roundtrip.py ORIG SAVED [--data DIR] [--limit N]

1. onnx.checker.check_model(SAVED, full_check=True); if the ORIGINAL fails the full check
   too (strict shape inference rejects some published models), the plain check must pass.
2. The graphs match: same inputs/outputs, the same nodes (op, inputs, outputs, attributes),
   initializers with identical dtype, shape and bytes, same opsets.
3. With --data: onnxruntime outputs of ORIG and SAVED are bit-identical on every sample.
Prints one line; exit 0 if all holds, 1 if not.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import feeds_for, list_samples, ort_session  # noqa: E402


def check(path, full):
    try:
        onnx.checker.check_model(path, full_check=full)
        return None
    except Exception as e:  # the checker raises several exception types
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def graph_diff(a, b):
    ga, gb = a.graph, b.graph
    if [i.name for i in ga.input] != [i.name for i in gb.input]:
        return "graph inputs differ"
    if [o.name for o in ga.output] != [o.name for o in gb.output]:
        return "graph outputs differ"
    if {(o.domain, o.version) for o in a.opset_import} != \
            {(o.domain, o.version) for o in b.opset_import}:
        return "opset imports differ"
    if len(ga.node) != len(gb.node):
        return f"{len(gb.node)} nodes, expected {len(ga.node)}"
    for i, (na, nb) in enumerate(zip(ga.node, gb.node)):
        if (na.op_type, na.domain, list(na.input), list(na.output)) != \
                (nb.op_type, nb.domain, list(nb.input), list(nb.output)):
            return f"node {i} ({na.op_type} '{na.name}') differs"
        if sorted(x.SerializeToString() for x in na.attribute) != \
                sorted(x.SerializeToString() for x in nb.attribute):
            return f"node {i} ({na.op_type} '{na.name}'): attributes differ"
    ia = {t.name: t for t in ga.initializer}
    ib = {t.name: t for t in gb.initializer}
    if set(ia) != set(ib):
        return f"initializer names differ ({len(ib)} vs {len(ia)})"
    for name, t in ia.items():
        x, y = numpy_helper.to_array(t), numpy_helper.to_array(ib[name])
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            return f"initializer '{name}' differs"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("orig")
    ap.add_argument("saved")
    ap.add_argument("--data")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    label = f"roundtrip {os.path.basename(args.orig)}"

    def fail(msg):
        print(f"{label}: FAIL: {msg}")
        sys.exit(1)

    how = "full_check"
    err = check(args.saved, True)
    if err:
        if check(args.orig, True) is None:
            fail(f"checker (full) rejects the saved model but not the original: {err}")
        how = "check (original fails full_check too)"
        err = check(args.saved, False)
        if err:
            fail(f"checker rejects the saved model: {err}")
    try:
        a, b = onnx.load(args.orig), onnx.load(args.saved)
    except Exception as e:
        fail(f"onnx.load: {e}")
    diff = graph_diff(a, b)
    if diff:
        fail(diff)
    n = 0
    if args.data:
        sa, sb = ort_session(args.orig), ort_session(args.saved)
        samples = list_samples(args.data)
        if args.limit:
            samples = samples[:args.limit]
        for s in samples:
            feeds = feeds_for(s, sa.get_inputs())
            for o, x, y in zip(sa.get_outputs(), sa.run(None, feeds), sb.run(None, feeds)):
                if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                    fail(f"sample {s[0]}: output '{o.name}' not bit-identical")
            n += 1
    print(f"{label}: ok: {how}, graph identical" +
          (f", ORT outputs bit-identical on {n} samples" if args.data else ""))


if __name__ == "__main__":
    main()
