#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets (test/fuzz/fuzz_*.c), generated at run
time and never committed (tools/fuzz.sh calls this; images come from make_image_seeds.c).

    make_seeds.py OUTDIR [--cache models/cache] [--testdata /usr/share/libonnx-testdata/data]

OUTDIR/<target>/ for model, model_extdata, npy, tensor_pb, params, plus OUTDIR/<target>.dict
(libFuzzer dictionaries). Sources:
  model          the CLI fixtures (test/oracles/make_fixtures.py), every ONNX backend node-test
                 model, "skeletons" of the integration models in models/cache (graph, names and
                 attributes kept, each large initializer cut to one element) and hand-made
                 corner cases: subgraphs, Constant tensors, FLOAT16/BFLOAT16/DOUBLE and typed
                 initializers, opset-less and IR-3 models, symbolic dims
  model_extdata  small models whose initializers live in the external files the target's
                 folder holds (w.bin: 4096 bytes, sub/w.bin: 256 bytes)
  npy            arrays of every readable dtype and format version, plus refused forms
                 (big-endian, Fortran order, structured, object)
  tensor_pb      node-test input/output .pb files (under 8 KiB) and typed/converted forms
  params         --params-out style JSON for the target's model (tensors x, c, y)
"""
import argparse
import glob
import importlib.util
import io
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def model_bytes(graph, opset=13, ir=None, **kw):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kw)
    if ir is not None:
        m.ir_version = ir
    return m.SerializeToString()


def vi(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def handmade_models():
    """Corner cases the node tests do not have."""
    out = {}
    x = vi("x", [1, 3, 4, 4])
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3, 1, 1), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    out["conv"] = model_bytes(helper.make_graph([conv], "g", [x], [vi("y", [1, 4, 4, 4])],
                                                [w]))
    # every initializer storage form
    inits = [
        helper.make_tensor("f16", TensorProto.FLOAT16, [2], [1.5, -2.0]),
        helper.make_tensor("f16raw", TensorProto.FLOAT16, [2],
                           np.array([1, 2], np.float16).tobytes(), raw=True),
        helper.make_tensor("bf16", TensorProto.BFLOAT16, [2], [1.0, 2.0]),
        helper.make_tensor("f64", TensorProto.DOUBLE, [2], [1.0, 2.0]),
        helper.make_tensor("i64", TensorProto.INT64, [3], [1, -1, 4]),
        helper.make_tensor("u64", TensorProto.UINT64, [1], [7]),
        helper.make_tensor("u8", TensorProto.UINT8, [2], [0, 255]),
        helper.make_tensor("b", TensorProto.BOOL, [2], [True, False]),
        helper.make_tensor("s", TensorProto.STRING, [1], [b"text"]),
        helper.make_tensor("empty", TensorProto.FLOAT, [0, 3], []),
        helper.make_tensor("scalar", TensorProto.FLOAT, [], [3.0]),
    ]
    nodes = [helper.make_node("Add", ["x", "scalar"], ["y"], name="add")]
    out["inits"] = model_bytes(helper.make_graph(nodes, "g", [x], [vi("y", [1, 3, 4, 4])],
                                                 inits))
    # subgraphs (kept opaque) and attribute tensors
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                               [vi("t", [1, 3, 4, 4])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [vi("e", [1, 3, 4, 4])])
    cond = helper.make_node("Constant", [], ["c"], name="cond",
                            value=helper.make_tensor("v", TensorProto.BOOL, [], [True]))
    iff = helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g,
                           else_branch=else_g)
    out["if"] = model_bytes(helper.make_graph([cond, iff], "g", [x], [vi("y", [1, 3, 4, 4])]))
    nested = then_g
    for k in range(4):
        node = helper.make_node("If", ["c"], ["o%d" % k], then_branch=nested,
                                else_branch=else_g)
        nested = helper.make_graph([cond, node], "n%d" % k, [], [vi("o%d" % k, [1])])
    out["nested"] = model_bytes(nested)
    # attributes of every kind, symbolic dims, an unnamed node, an omitted optional input
    attrs = helper.make_node("Clip", ["x", "", "hi"], ["y"], f=1.0, i=2, s=b"s",
                             floats=[1.0, 2.0], ints=[1, 2], strings=[b"a", b"b"])
    hi = numpy_helper.from_array(np.array(6, np.float32), "hi")
    xs = vi("x", ["N", 3, "H", "W"])
    out["attrs"] = model_bytes(helper.make_graph([attrs], "g", [xs], [vi("y", None)], [hi]))
    # old IR without typed attributes, no opset import, a custom domain
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                            [x], [vi("y", [1, 3, 4, 4])]))
    del m.opset_import[:]
    m.ir_version = 3
    out["noopset"] = m.SerializeToString()
    custom = helper.make_node("Foo", ["x"], ["y"], domain="com.example")
    out["custom"] = model_bytes(helper.make_graph([custom], "g", [x], [vi("y", [1])]))
    # a cycle and a dangling input: planning errors
    a = helper.make_node("Relu", ["b"], ["a"])
    b = helper.make_node("Relu", ["a"], ["b"])
    out["cycle"] = model_bytes(helper.make_graph([a, b], "g", [x], [vi("b", [1])]))
    d = helper.make_node("Relu", ["nowhere"], ["y"])
    out["dangling"] = model_bytes(helper.make_graph([d], "g", [x], [vi("y", [1])]))
    # ops whose node cases are float64 or absent from the test data, on constants (prepare
    # folds them, running the kernels on the file's values)
    e0 = numpy_helper.from_array(np.arange(24, dtype=np.float32).reshape(2, 3, 4), "e0")
    e1 = numpy_helper.from_array(np.ones((2, 4, 5), np.float32), "e1")
    ein = helper.make_node("Einsum", ["e0", "e1"], ["e"], equation="...ij,...jk->...ik")
    add = helper.make_node("Add", ["e", "e"], ["y"])
    out["einsum"] = model_bytes(helper.make_graph([ein, add], "g", [], [vi("y", None)],
                                                  [e0, e1]))
    gs = numpy_helper.from_array(np.ones(4, np.float32), "gs")
    gb = numpy_helper.from_array(np.zeros(4, np.float32), "gb")
    gx = numpy_helper.from_array(np.arange(32, dtype=np.float32).reshape(1, 4, 8), "gx")
    gn = helper.make_node("GroupNormalization", ["gx", "gs", "gb"], ["g"], num_groups=2)
    out["groupnorm"] = model_bytes(helper.make_graph([gn, helper.make_node("Add", ["g", "g"],
                                                                           ["y"])],
                                                     "g", [], [vi("y", None)], [gs, gb, gx]),
                                   opset=21)
    return out


def skeleton(path):
    """The integration model's graph with every initializer over 64 bytes cut to one element:
    real op mixes, names and attributes in a seed small enough to mutate."""
    m = onnx.load(path, load_external_data=False)
    for t in m.graph.initializer:
        if len(t.raw_data) > 64 or (t.data_location == TensorProto.EXTERNAL):
            dt = t.data_type
            arr = np.zeros(1, helper.tensor_dtype_to_np_dtype(dt))
            nt = numpy_helper.from_array(arr, t.name)
            t.CopyFrom(nt)
    for n in m.graph.node:
        for a in n.attribute:
            if a.HasField("t") and len(a.t.raw_data) > 64:
                a.t.CopyFrom(numpy_helper.from_array(
                    np.zeros(1, helper.tensor_dtype_to_np_dtype(a.t.data_type)), a.t.name))
    return m.SerializeToString()


def extdata_models():
    """Initializers in the target's files: w.bin (4096 bytes), sub/w.bin (256 bytes)."""
    out = {}
    x = vi("x", [4])

    def ext(name, dtype, dims, loc, offset=None, length=None):
        t = TensorProto()
        t.name = name
        t.data_type = dtype
        t.dims.extend(dims)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", loc), ("offset", offset), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key = k
                e.value = str(v)
        return t

    add = helper.make_node("Add", ["x", "a"], ["y"], name="add")
    cases = {
        "plain": [ext("a", TensorProto.FLOAT, [4], "w.bin")],
        "offset": [ext("a", TensorProto.FLOAT, [4], "w.bin", 64, 16)],
        "sub": [ext("a", TensorProto.FLOAT, [4], "sub/w.bin", 240)],
        "f16": [ext("a", TensorProto.FLOAT16, [4], "w.bin", 8, 8)],
        "f64": [ext("a", TensorProto.DOUBLE, [4], "sub/w.bin", 0, 32)],
        "big": [ext("a", TensorProto.FLOAT, [1024], "w.bin", 0, 4096)],
        "escape": [ext("a", TensorProto.FLOAT, [4], "../w.bin")],
        "absolute": [ext("a", TensorProto.FLOAT, [4], "/etc/hostname")],
        "folder": [ext("a", TensorProto.FLOAT, [4], "folder")],
        "fifo": [ext("a", TensorProto.FLOAT, [4], "fifo")],
        "device": [ext("a", TensorProto.FLOAT, [4], "zero")],
        "past_end": [ext("a", TensorProto.FLOAT, [4], "w.bin", 4090)],
        "bad_offset": [ext("a", TensorProto.FLOAT, [4], "w.bin", "-1")],
        "two": [ext("a", TensorProto.FLOAT, [4], "w.bin", 0, 16),
                ext("b", TensorProto.INT64, [2], "sub/w.bin", 16, 16)],
    }
    for name, inits in cases.items():
        out[name] = model_bytes(helper.make_graph([add], "g", [x], [vi("y", [4])], inits))
    # a Constant node's tensor attribute stored externally
    t = ext("v", TensorProto.FLOAT, [4], "w.bin", 128, 16)
    const = helper.make_node("Constant", [], ["a"], value=t)
    out["constant"] = model_bytes(helper.make_graph([const, add], "g", [x], [vi("y", [4])]))
    return out


def npy_seeds():
    out = {}
    rng = np.random.default_rng(1)
    arrays = {
        "f4": rng.standard_normal((1, 3, 4, 4)).astype(np.float32),
        "f8": rng.standard_normal((2, 3)),
        "f2": rng.standard_normal((5,)).astype(np.float16),
        "i8": np.arange(6, dtype=np.int64).reshape(2, 3),
        "i4": np.arange(4, dtype=np.int32),
        "i2": np.arange(4, dtype=np.int16),
        "i1": np.arange(4, dtype=np.int8),
        "u8": np.arange(3, dtype=np.uint64),
        "u4": np.arange(3, dtype=np.uint32),
        "u2": np.arange(3, dtype=np.uint16),
        "u1": np.arange(3, dtype=np.uint8),
        "b1": np.array([True, False, True]),
        "scalar": np.float32(2.5),
        "empty": np.zeros((0, 3), np.float32),
        "big_endian": np.arange(4, dtype=">f4"),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "structured": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]),
        "rank8": np.zeros((1,) * 8, np.float32),
        "rank9": np.zeros((1,) * 9, np.float32),
    }
    for name, a in arrays.items():
        for version in ((1, 0), (2, 0), (3, 0)):
            buf = io.BytesIO()
            try:
                np.lib.format.write_array(buf, np.asanyarray(a), version=version,
                                          allow_pickle=False)
            except ValueError:
                continue
            out["%s_v%d" % (name, version[0])] = buf.getvalue()
    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
    hdr += b" " * (63 - 10 - len(hdr)) + b"\n"
    out["handmade"] = b"\x93NUMPY\x01\x00" + bytes([len(hdr), 0]) + hdr + b"\0" * 16
    return out


def tensor_pb_seeds(testdata):
    out = {}
    files = sorted(glob.glob(os.path.join(testdata, "node", "*", "test_data_set_0", "*.pb")))
    small = [f for f in files if os.path.getsize(f) < 8192]
    for f in small[::3]:
        case = os.path.basename(os.path.dirname(os.path.dirname(f)))
        with open(f, "rb") as fh:
            out["%s_%s" % (case, os.path.basename(f)[:-3])] = fh.read()
    hand = {
        "f16_typed": helper.make_tensor("t", TensorProto.FLOAT16, [2], [1.5, 2.0]),
        "bf16_typed": helper.make_tensor("t", TensorProto.BFLOAT16, [2], [1.5, 2.0]),
        "f64_typed": helper.make_tensor("t", TensorProto.DOUBLE, [2], [1.5, 2.0]),
        "u64_typed": helper.make_tensor("t", TensorProto.UINT64, [2], [1, 2]),
        "bool_typed": helper.make_tensor("t", TensorProto.BOOL, [2], [True, False]),
        "string": helper.make_tensor("t", TensorProto.STRING, [1], [b"x"]),
        "i64_raw": numpy_helper.from_array(np.arange(3, dtype=np.int64), "t"),
        "scalar": numpy_helper.from_array(np.array(1.0, np.float32), "t"),
        "empty": numpy_helper.from_array(np.zeros((0, 2), np.float32), "t"),
    }
    for name, t in hand.items():
        out[name] = t.SerializeToString()
    ext = numpy_helper.from_array(np.zeros(2, np.float32), "t")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    e = ext.external_data.add()
    e.key, e.value = "location", "w.bin"
    out["external"] = ext.SerializeToString()
    return out


def params_seeds():
    def entry(lo, hi, kind="activation", **extra):
        e = {"kind": kind, "method": "minmax", "dtype": "uint8",
             "observed_min": [lo], "observed_max": [hi], "min": [lo], "max": [hi],
             "scale": [(hi - lo) / 255 if hi > lo else 1.0], "zero_point": [0], "rank": 4}
        e.update(extra)
        return e

    full = {"format": "qcal-params", "version": 1, "tensors": {
        "x": entry(-2.5, 3.0), "c": entry(-4.0, 4.5), "y": entry(0.0, 4.5),
        "w": entry(-1.0, 1.0, kind="weight", axis=0)}}
    out = {"full": full,
           "partial": {"format": "qcal-params", "version": 1, "tensors": {"y": entry(0, 1)}},
           "scalar_minmax": {"format": "qcal-params", "tensors": {
               "x": {"kind": "activation", "min": -1, "max": 1}}},
           "zero_range": {"format": "qcal-params", "tensors": {
               "x": entry(0.0, 0.0), "c": entry(1e-30, 1e-30), "y": entry(-1e30, 1e30)}},
           "unknown": {"format": "qcal-params", "tensors": {"nope": entry(0, 1)}},
           "wrong_format": {"format": "other", "tensors": {}}}
    res = {k: json.dumps(v, indent=2).encode() for k, v in out.items()}
    res["not_json"] = b"{\"format\": \"qcal-params\", \"tensors\": {"
    return res


DICTS = {
    "npy": ['"\\x93NUMPY"', '"descr"', '"fortran_order"', '"shape"', '"True"', '"False"',
            '"<f4"', '"<f8"', '"<f2"', '">f4"', '"|u1"', '"|b1"', '"<i8"', '"<u8"', '"|i1"',
            '"\'"', '"("', '")"', '", "', '"}"', '"{"'],
    "params": ['"\\"format\\""', '"\\"qcal-params\\""', '"\\"tensors\\""', '"\\"kind\\""',
               '"\\"activation\\""', '"\\"weight\\""', '"\\"min\\""', '"\\"max\\""',
               '"\\"observed_min\\""', '"\\"observed_max\\""', '"\\"rank\\""', '"\\"x\\""',
               '"\\"c\\""', '"\\"y\\""', '"1e308"', '"-1e308"', '"NaN"', '"[]"', '"null"'],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--cache", default=os.path.join(ROOT, "models", "cache"))
    ap.add_argument("--testdata", default="/usr/share/libonnx-testdata/data")
    a = ap.parse_args()
    counts = {}

    def put(target, name, data):
        write(os.path.join(a.out, target, name), data)
        counts[target] = counts.get(target, 0) + 1

    with tempfile.TemporaryDirectory() as tmp:
        spec = importlib.util.spec_from_file_location(
            "make_fixtures", os.path.join(ROOT, "test", "oracles", "make_fixtures.py"))
        fx = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fx)
        sys.argv = ["make_fixtures.py", tmp]
        fx.main()
        for f in sorted(glob.glob(os.path.join(tmp, "*.onnx"))):
            with open(f, "rb") as fh:
                put("model", "fixture_" + os.path.basename(f), fh.read())
        for f in sorted(glob.glob(os.path.join(tmp, "data_*", "*.npy"))):
            with open(f, "rb") as fh:
                put("npy", "fixture_%s_%s" % (os.path.basename(os.path.dirname(f)),
                                              os.path.basename(f)), fh.read())
    for f in sorted(glob.glob(os.path.join(a.testdata, "node", "*", "model.onnx"))):
        with open(f, "rb") as fh:
            put("model", "node_" + os.path.basename(os.path.dirname(f)), fh.read())
    for f in sorted(glob.glob(os.path.join(a.cache, "*", "*.onnx"))):
        try:
            put("model", "skeleton_" + os.path.basename(os.path.dirname(f)), skeleton(f))
        except Exception as e:          # a model the installed onnx cannot read: skip it
            print("make_seeds: skipping %s: %s" % (f, e), file=sys.stderr)
    for name, data in handmade_models().items():
        put("model", "hand_" + name, data)
    for name, data in extdata_models().items():
        put("model_extdata", name, data)
    for name, data in npy_seeds().items():
        put("npy", name + ".npy", data)
    for name, data in tensor_pb_seeds(a.testdata).items():
        put("tensor_pb", name + ".pb", data)
    for name, data in params_seeds().items():
        put("params", name + ".json", data)
    for target, words in DICTS.items():
        with open(os.path.join(a.out, target + ".dict"), "w") as f:
            f.write("\n".join(words) + "\n")
    print("make_seeds: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))


if __name__ == "__main__":
    main()
