#!/usr/bin/env python3
"""Hostile and broken inputs for test/cli/test_failures.sh (beside make_fixtures.py's).

    make_failure_fixtures.py OUTDIR [--big-mb 200]

OUTDIR/
  deep.onnx            subgraphs nested 100000 deep (If -> then_branch -> If ...), 3 MB:
                       overflows the stack of a recursive protobuf parser
  huge_claim.onnx      an initializer whose dims claim 2^40 floats, with 4 bytes of data
  ext/escape.onnx      external data location "../secret.bin" (outside the model's folder)
  ext/absolute.onnx    external data location "/etc/hostname"
  ext/fifo.onnx        external data location "fifo" (the test makes the FIFO)
  ext/ok.onnx          external data "w.bin" (4 KiB, written too): loads
  wide.onnx            x[1,256] -> MatMul(W 256x512) -> Relu -> y: a 512 KiB model whose
                       quantized form (~130 KiB) does not fit a 64 KiB tmpfs
  wide_data/s0.npy     a sample for it
  big.onnx             x[1,2048] -> MatMul chain, --big-mb MB of weights: long writes to
                       interrupt (`save` writes it all, `calibrate` a quarter as int8)
  big_data/s0.npy      a sample for it
  saved_ext/           inputs for the external-data write tests: many.onnx (64 inline
                       initializers of 1000 bytes and one of 8 KiB), many2.onnx (the same
                       with other values in the 8 KiB one)
  data_be/s0.npy       float32 [1,3,8,8] stored big-endian ('>f4')
  data_trunc/s0.npy    float32 [1,3,8,8] missing its last 100 bytes
  data_badimg/s0.png   not an image
  data_truncpng/s0.png a valid 8x8 PNG cut in its image data
  data_bomb/s0.jpg     163-byte JPEG whose header claims 16000x16000 pixels
  data_pbomb/s0.jpg    282-byte progressive JPEG claiming 16000x16000 (libjpeg would zero a
                       whole-image coefficient buffer before reading any data)
  data_jpg/s0.jpg      a valid 8x8 JPEG (loads)
  data_nan/            s0.npy finite, s1.npy with a NaN and an Inf
"""
import argparse
import base64
import os
import struct
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# 8x8 gray baseline JPEG written by libjpeg (quality 50, optimized Huffman tables).
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQER"
    "XRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/wAALCAAIAAgBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAABv/EABYQAA"
    "MAAAAAAAAAAAAAAAAAAAAFQf/aAAgBAQAAPwAquh//2Q==")
# The same, progressive (jpeg_simple_progression): 282 bytes.
TINY_PROGRESSIVE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQER"
    "XRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/wgALCAAIAAgBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAABf/aAAgBAQ"
    "AAAAEr/8QAFRABAQAAAAAAAAAAAAAAAAAAAAP/2gAIAQEAAQUCm//EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQ"
    "EABj8Cf//EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAT8hP//aAAgBAQAAABB//8QAFRABAQAAAAAAAAAAAA"
    "AAAAAAAEH/2gAIAQEAAT8Ql//Z")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def deep_model(depth):
    """Written as raw protobuf (onnx's own serializer refuses this nesting), outermost level
    first: each level is a prefix whose lengths cover everything inside it."""
    name, op = field(1, b"then_branch"), field(4, b"If")
    prefixes, inner = [], 0                     # inner: bytes of the graph nested below
    for _ in range(depth):
        attr = name + varint(6 << 3 | 2) + varint(inner)          # AttributeProto .name .g
        node = op + varint(5 << 3 | 2) + varint(len(attr) + inner)   # NodeProto .attribute
        graph = varint(1 << 3 | 2) + varint(len(node) + len(attr) + inner)  # GraphProto .node
        prefixes.append(graph + node + attr)
        inner += len(graph) + len(node) + len(attr)
    return (varint(1 << 3) + varint(8) + varint(7 << 3 | 2) + varint(inner) +
            b"".join(reversed(prefixes)))               # ModelProto .ir_version .graph


def png_bytes(w, h):
    raw = b"".join(b"\0" + bytes((x * 30 + y * 7) & 0xFF for x in range(w * 3))
                   for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


def save(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def model(nodes, inputs, outputs, inits, opset=13):
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                             opset_imports=[helper.make_opsetid("", opset)])


def vi(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def external(name, dims, location):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--big-mb", type=int, default=200)
    a = ap.parse_args()
    out = a.out
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(3)

    with open(os.path.join(out, "deep.onnx"), "wb") as f:
        f.write(deep_model(100000))

    x4 = vi("x", [4])
    add = helper.make_node("Add", ["x", "a"], ["y"], name="add")
    huge = TensorProto()
    huge.name = "a"
    huge.data_type = TensorProto.FLOAT
    huge.dims.extend([1 << 20, 1 << 20])
    huge.raw_data = b"\0" * 4
    save(model([add], [x4], [vi("y", [4])], [huge]), os.path.join(out, "huge_claim.onnx"))

    for name, loc in (("escape", "../secret.bin"), ("absolute", "/etc/hostname"),
                      ("fifo", "fifo"), ("ok", "w.bin")):
        save(model([add], [x4], [vi("y", [4])], [external("a", [4], loc)]),
             os.path.join(out, "ext", name + ".onnx"))
    with open(os.path.join(out, "ext", "w.bin"), "wb") as f:
        f.write(np.arange(1024, dtype=np.float32).tobytes())
    with open(os.path.join(out, "secret.bin"), "wb") as f:
        f.write(b"\1" * 16)

    # required inputs: a ReduceSum whose data input is omitted, a GatherND with one input
    red = helper.make_node("ReduceMean", ["", "x"], ["y"], name="mean_of_nothing")
    save(model([red], [x4], [vi("y", [1])], [], opset=18),
         os.path.join(out, "omitted_input.onnx"))
    gnd = helper.make_node("GatherND", ["x"], ["y"], name="gather_half")
    save(model([gnd], [x4], [vi("y", [4])], []), os.path.join(out, "few_inputs.onnx"))

    x = vi("x", [1, 256])
    w = numpy_helper.from_array(rng.standard_normal((256, 512)).astype(np.float32), "w")
    mm = helper.make_node("MatMul", ["x", "w"], ["m"], name="mm")
    relu = helper.make_node("Relu", ["m"], ["y"], name="relu")
    save(model([mm, relu], [x], [vi("y", [1, 512])], [w]), os.path.join(out, "wide.onnx"))
    os.makedirs(os.path.join(out, "wide_data"), exist_ok=True)
    np.save(os.path.join(out, "wide_data", "s0.npy"),
            rng.standard_normal((1, 256)).astype(np.float32))

    # big.onnx: x[1,2048] -> MatMul chain with 2048x2048 weights (16 MiB each), serialized
    # by hand: onnx.save takes minutes on 200 MB
    dim, nodes, prev, inits = 2048, [], "x", []
    for i in range(max(1, a.big_mb // 16)):
        nodes.append(helper.make_node("MatMul", [prev, "w%d" % i], ["m%d" % i],
                                      name="mm%d" % i))
        prev = "m%d" % i
        head = TensorProto(name="w%d" % i, data_type=TensorProto.FLOAT, dims=[dim, dim])
        wi = rng.standard_normal((dim, dim), dtype=np.float32) * np.float32(dim ** -0.5)
        inits.append(field(5, head.SerializeToString() + field(9, wi.tobytes())))
    nodes.append(helper.make_node("Relu", [prev], ["y"], name="relu"))
    m = model(nodes, [vi("x", [1, dim])], [vi("y", [1, dim])], [])
    graph = m.graph.SerializeToString() + b"".join(inits)
    m.ClearField("graph")
    with open(os.path.join(out, "big.onnx"), "wb") as f:
        f.write(m.SerializeToString() + field(7, graph))
    os.makedirs(os.path.join(out, "big_data"), exist_ok=True)
    np.save(os.path.join(out, "big_data", "s0.npy"), np.ones((1, dim), np.float32))

    for k, name in ((1, "many.onnx"), (2, "many2.onnx")):
        many = [numpy_helper.from_array(np.full(250, i, np.float32), "c%d" % i)
                for i in range(64)]
        many.append(numpy_helper.from_array(np.arange(2048, dtype=np.float32) * k, "big"))
        nodes = [helper.make_node("Add", ["x", "c0"], ["y"])]
        save(model(nodes, [vi("x", [250])], [vi("y", [250])], many),
             os.path.join(out, "saved_ext", name))

    sample = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    for d in ("data_be", "data_trunc", "data_badimg", "data_truncpng", "data_bomb",
              "data_pbomb", "data_jpg", "data_nan"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    np.save(os.path.join(out, "data_be", "s0.npy"), sample.astype(">f4"))
    np.save(os.path.join(out, "data_trunc", "s0.npy"), sample)
    p = os.path.join(out, "data_trunc", "s0.npy")
    with open(p, "rb") as f:
        data = f.read()
    with open(p, "wb") as f:
        f.write(data[:-100])
    with open(os.path.join(out, "data_badimg", "s0.png"), "wb") as f:
        f.write(b"GIF89a: not a PNG at all\n")
    png = png_bytes(8, 8)
    with open(os.path.join(out, "data_truncpng", "s0.png"), "wb") as f:
        f.write(png[:len(png) // 2])
    i = TINY_JPEG.index(b"\xff\xc0")
    bomb = bytearray(TINY_JPEG)
    bomb[i + 5:i + 9] = struct.pack(">HH", 16000, 16000)
    with open(os.path.join(out, "data_bomb", "s0.jpg"), "wb") as f:
        f.write(bytes(bomb))
    i = TINY_PROGRESSIVE_JPEG.index(b"\xff\xc2")
    bomb = bytearray(TINY_PROGRESSIVE_JPEG)
    bomb[i + 5:i + 9] = struct.pack(">HH", 16000, 16000)
    with open(os.path.join(out, "data_pbomb", "s0.jpg"), "wb") as f:
        f.write(bytes(bomb))
    with open(os.path.join(out, "data_jpg", "s0.jpg"), "wb") as f:
        f.write(TINY_JPEG)
    bad = sample.copy()
    bad[0, 1, 2, 3] = np.nan
    bad[0, 2, 0, 0] = np.inf
    np.save(os.path.join(out, "data_nan", "s0.npy"), sample)
    np.save(os.path.join(out, "data_nan", "s1.npy"), bad)


if __name__ == "__main__":
    main()
