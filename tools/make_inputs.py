#!/usr/bin/env python3
"""Writes calibration and held-out evaluation samples for the integration models.

    tools/make_inputs.py [--calib N] [--eval N] [--models a,b] [--cache DIR] [--force] [--min]

For each model (models/manifest.txt) it writes models/cache/data/<model>/{calib,eval}/*.npy,
one file per sample holding the model input with its batch dim of 1, preprocessed the way the
model's own package does it:
  nudenet  (YOLOv8n, nudenet.py _read_image): pad bottom/right to a square with black, resize
           to 320x320 (bilinear), RGB, /255, float32 NCHW.
  ddddocr  (common_det, core/detection_engine.py preproc): BGR, letterbox into 416x416 keeping
           the aspect ratio (top-left, padding 114), values 0..255 as float32 NCHW.
  magika   (magika.py _extract_features_from_seekable, config.min.json): the first 4096 bytes
           lstripped, first 1024 kept and padded with 256 at the end; the last 4096 bytes
           rstripped, last 1024 kept and padded with 256 at the start; int32 [1, 2048].
Images are random crops / flips / light photometric changes of scikit-image's sample photos,
and mosaics of its LFW face crops; calib and eval use disjoint photos and faces. Magika's files are the members of the pinned wheels (code,
text, JSON, CSV, ELF, PNG, ONNX, ...), plus gzip and zip archives of some of them, again with
disjoint files for calib and eval. Everything is deterministic (fixed seeds), needs only numpy,
and is skipped when the folder already holds samples made with the same parameters.
"""
import argparse
import gzip
import io
import json
import os
import shutil
import struct
import sys
import zipfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = 2                      # bump when the sample recipe changes

# Held-out photos for eval; the others are for calibration. Each side has a person in it
# (astronaut / camera), and face mosaics from disjoint halves of the LFW faces.
EVAL_PHOTOS = ["camera", "motorcycle_right", "ihc", "page", "gravel"]


# ---------------------------------------------------------------- PNG decoding (numpy only)

def _paeth_row(raw, prior, bpp):
    out = np.empty_like(raw, dtype=np.int32)
    r = raw.astype(np.int32)
    b = prior.astype(np.int32)
    out[:bpp] = (r[:bpp] + b[:bpp]) & 255
    n = len(raw)
    for i in range(bpp, n):
        a = out[i - bpp]
        c = b[i - bpp]
        bb = b[i]
        p = a + bb - c
        pa, pb, pc = abs(p - a), abs(p - bb), abs(p - c)
        pred = a if (pa <= pb and pa <= pc) else (bb if pb <= pc else c)
        out[i] = (r[i] + pred) & 255
    return out.astype(np.uint8)


def _avg_row(raw, prior, bpp):
    out = np.empty(len(raw), dtype=np.int32)
    r = raw.astype(np.int32)
    b = prior.astype(np.int32)
    out[:bpp] = (r[:bpp] + (b[:bpp] >> 1)) & 255
    for i in range(bpp, len(raw)):
        out[i] = (r[i] + ((out[i - bpp] + b[i]) >> 1)) & 255
    return out.astype(np.uint8)


def read_png(path):
    """8-bit non-interlaced gray/RGB/gray+alpha/RGBA PNG -> uint8 HxWx3 RGB (alpha dropped)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    chans = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or chans is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, color type {ctype})")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    stride = w * chans
    raw = raw[:h * (stride + 1)].reshape(h, stride + 1)
    img = np.zeros((h, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for y in range(h):
        ft, row = raw[y, 0], raw[y, 1:]
        if ft == 0:
            cur = row.copy()
        elif ft == 1:
            cur = (row.reshape(-1, chans).astype(np.int64).cumsum(axis=0) & 255)
            cur = cur.astype(np.uint8).reshape(-1)
        elif ft == 2:
            cur = ((row.astype(np.int32) + prior) & 255).astype(np.uint8)
        elif ft == 3:
            cur = _avg_row(row, prior, chans)
        elif ft == 4:
            cur = _paeth_row(row, prior, chans)
        else:
            raise ValueError(f"{path}: bad PNG filter {ft}")
        img[y] = cur
        prior = cur
    img = img.reshape(h, w, chans)
    if chans in (1, 2):
        img = np.repeat(img[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def load_photo(cache, name):
    """Decoded photo, cached as .npy next to the PNG (the pure-Python PNG filters are slow)."""
    png = os.path.join(cache, "photos", name + ".png")
    npy = os.path.join(cache, "photos", ".decoded", name + ".npy")
    if os.path.exists(npy) and os.path.getmtime(npy) >= os.path.getmtime(png):
        return np.load(npy)
    img = read_png(png)
    os.makedirs(os.path.dirname(npy), exist_ok=True)
    np.save(npy + ".tmp.npy", img)
    os.replace(npy + ".tmp.npy", npy)
    return img


# ---------------------------------------------------------------- image helpers

def resize_bilinear(img, out_h, out_w):
    """uint8/float HxWxC -> float32 out_h x out_w x C, half-pixel centers (cv2 INTER_LINEAR)."""
    h, w = img.shape[:2]
    src = img.astype(np.float32)

    def coords(n_out, n_in):
        x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0, n_in - 1)
        x0 = np.floor(x).astype(np.int64)
        x1 = np.minimum(x0 + 1, n_in - 1)
        return x0, x1, (x - x0).astype(np.float32)

    y0, y1, fy = coords(out_h, h)
    x0, x1, fx = coords(out_w, w)
    top = src[y0][:, x0] * (1 - fx)[None, :, None] + src[y0][:, x1] * fx[None, :, None]
    bot = src[y1][:, x0] * (1 - fx)[None, :, None] + src[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def augment(img, rng):
    """Random crop (30-100% of the area, aspect 3:4..4:3), flip, brightness/contrast."""
    h, w = img.shape[:2]
    for _ in range(10):
        area = rng.uniform(0.3, 1.0) * h * w
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        ch = int(round(np.sqrt(area / aspect)))
        cw = int(round(np.sqrt(area * aspect)))
        if 16 <= ch <= h and 16 <= cw <= w:
            break
    else:
        ch, cw = h, w
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    out = img[y:y + ch, x:x + cw].astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = rng.uniform(0.75, 1.25)
    bias = rng.uniform(-20, 20)
    return np.clip(out * gain + bias, 0, 255).round().astype(np.uint8)


def face_mosaic(faces, rng):
    """k x k tiles of 25x25 gray LFW faces, each upscaled to 100x100: faces big enough for a
    320x320 detector input."""
    k = int(rng.integers(2, 4))
    idx = rng.choice(len(faces), size=k * k, replace=False)
    tiles = [resize_bilinear((faces[i][:, :, None] * 255.0), 100, 100)[:, :, 0] for i in idx]
    rows = [np.concatenate(tiles[r * k:(r + 1) * k], axis=1) for r in range(k)]
    img = np.concatenate(rows, axis=0)
    return np.repeat(np.clip(img, 0, 255).round().astype(np.uint8)[:, :, None], 3, axis=2)


def prep_nudenet(img):
    h, w = img.shape[:2]
    s = max(h, w)
    pad = np.zeros((s, s, 3), dtype=np.uint8)
    pad[:h, :w] = img
    x = resize_bilinear(pad, 320, 320) / 255.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def prep_ddddocr(img):
    h, w = img.shape[:2]
    r = min(416 / h, 416 / w)
    nh, nw = int(h * r), int(w * r)
    out = np.full((416, 416, 3), 114, dtype=np.uint8)
    out[:nh, :nw] = resize_bilinear(img, nh, nw).astype(np.uint8)
    bgr = out[:, :, ::-1]
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None], dtype=np.float32)


# ---------------------------------------------------------------- magika features

def magika_features(content, cfg):
    beg_size, end_size = cfg["beg_size"], cfg["end_size"]
    pad, block = cfg["padding_token"], cfg["block_size"]
    n = min(block, len(content))
    beg = list(content[:n].lstrip()[:beg_size])
    beg = beg + [pad] * (beg_size - len(beg))
    end = content[len(content) - n:].rstrip()
    end = list(end[max(0, len(end) - end_size):])
    end = [pad] * (end_size - len(end)) + end
    return np.array([beg + end], dtype=np.int32)


def magika_files(cache, manifest):
    """(name, bytes) for every member of the pinned wheels, sorted, deterministic (not the
    wheels of "extra" entries, added later: magika's samples stay what they were)."""
    files = []
    for whl in sorted({r["wheel"] for r in manifest if r["kind"] != "extra"}):
        with zipfile.ZipFile(os.path.join(cache, "wheels", whl)) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                if info.is_dir() or info.file_size < 8 or info.file_size > (16 << 20):
                    continue
                files.append((info.filename, whl, info))
    return files


def read_member(cache, whl, info, limit=None):
    with zipfile.ZipFile(os.path.join(cache, "wheels", whl)) as z:
        with z.open(info) as f:
            return f.read() if limit is None else f.read(limit)


def make_magika(cache, manifest, n_calib, n_eval, seed):
    with open(os.path.join(cache, "magika", "config.min.json")) as f:
        cfg = json.load(f)
    files = magika_files(cache, manifest)
    # Group by extension so that every kind of file shows up, then interleave the groups.
    groups = {}
    for item in files:
        base = os.path.basename(item[0])
        ext = os.path.splitext(base)[1].lower() or base
        groups.setdefault(ext, []).append(item)
    rng = np.random.default_rng(seed)
    keys = sorted(groups)
    for k in keys:
        rng.shuffle(groups[k])
    order = []
    while any(groups.values()):
        for k in keys:
            if groups[k]:
                order.append(groups[k].pop())
    calib_files = order[0::3] + order[2::3]     # 2/3 for calib, 1/3 held out
    eval_files = order[1::3]
    out = {}
    for split, pool, n in (("calib", calib_files, n_calib), ("eval", eval_files, n_eval)):
        samples = []
        i = 0
        while len(samples) < n and i < len(pool):
            name, whl, info = pool[i]
            i += 1
            content = read_member(cache, whl, info)
            kind = len(samples) % 8
            # One sample in 8 is a gzip and one a zip: real archives of real files.
            if kind == 3:
                content = gzip.compress(content, mtime=0)
                name += ".gz"
            elif kind == 7:
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                    z.writestr(zipfile.ZipInfo(os.path.basename(name)), content)
                content = buf.getvalue()
                name += ".zip"
            x = magika_features(content, cfg)
            if x[0, cfg["min_file_size_for_dl"] - 1] == cfg["padding_token"]:
                continue    # magika itself would not run the model on such a small file
            samples.append((name, x))
        if len(samples) < n:
            sys.exit(f"make_inputs: magika: only {len(samples)} {split} files available, "
                     f"{n} requested")
        out[split] = samples
    return out


def make_images(cache, model, n_calib, n_eval, seed, prep):
    photos = [r["name"] for r in read_manifest() if r["kind"] == "photo"]
    calib_photos = [p for p in photos if p not in EVAL_PHOTOS]
    eval_photos = [p for p in photos if p in EVAL_PHOTOS]
    faces = np.load(os.path.join(cache, "photos", "lfw_subset.npy"))[:100]
    out = {}
    for split, pool, n, s, fc in (("calib", calib_photos, n_calib, seed, faces[:50]),
                                  ("eval", eval_photos, n_eval, seed + 1, faces[50:])):
        rng = np.random.default_rng(s)
        samples = []
        k = 0
        for i in range(n):
            # The first pass over the photos uses them whole, later ones augmented crops;
            # one sample in 6 after that is a face mosaic.
            if i >= len(pool) and i % 6 == 5:
                name, img = "faces", face_mosaic(fc, rng)
            else:
                name = pool[k % len(pool)]
                k += 1
                img = load_photo(cache, name)
                if i >= len(pool):
                    img = augment(img, rng)
            samples.append((name, prep(img)))
        out[split] = samples
    return out


# ---------------------------------------------------------------- driver

def read_manifest():
    rows = []
    keys = ["kind", "name", "package", "version", "wheel", "wheel_sha256", "member",
            "sha256", "local_path"]
    with open(os.path.join(ROOT, "models", "manifest.txt")) as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                rows.append(dict(zip(keys, parts)))
    return rows


def write_split(folder, samples):
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for i, (name, x) in enumerate(samples):
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.basename(name))
        np.save(os.path.join(tmp, f"{i:04d}_{stem[:40]}.npy"), x)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calib", type=int, default=32, help="calibration samples per model")
    ap.add_argument("--eval", type=int, default=16, help="held-out eval samples per model")
    ap.add_argument("--models", default="nudenet,magika,ddddocr")
    ap.add_argument("--cache", default=os.path.join(ROOT, "models", "cache"))
    ap.add_argument("--force", action="store_true", help="rewrite even if up to date")
    ap.add_argument("--min", action="store_true",
                    help="keep existing folders that hold at least the requested counts (their "
                         "first N samples are exactly what a run for N would write)")
    args = ap.parse_args()

    manifest = read_manifest()
    known = [r["name"] for r in manifest if r["kind"] == "model"]
    for model in args.models.split(","):
        if model not in known:
            sys.exit(f"make_inputs: unknown model '{model}' (known: {', '.join(known)})")
        seed = 1000 + known.index(model) * 10
        params = {"version": VERSION, "calib": args.calib, "eval": args.eval, "seed": seed}
        base = os.path.join(args.cache, "data", model)
        stamp = os.path.join(base, ".params.json")
        n_calib, n_eval = args.calib, args.eval
        if not args.force and os.path.exists(stamp):
            with open(stamp) as f:
                old = json.load(f)
            same = {k: old.get(k) for k in ("version", "seed")} == \
                {k: params[k] for k in ("version", "seed")}
            if old == params or (args.min and same and old["calib"] >= args.calib
                                 and old["eval"] >= args.eval):
                print(f"make_inputs: {model}: up to date ({old['calib']} calib, "
                      f"{old['eval']} eval) in {base}")
                continue
            if args.min and same:       # growing one split must not shrink the other
                n_calib, n_eval = max(n_calib, old["calib"]), max(n_eval, old["eval"])
                params.update(calib=n_calib, eval=n_eval)
        if model == "magika":
            out = make_magika(args.cache, manifest, n_calib, n_eval, seed)
        else:
            prep = prep_nudenet if model == "nudenet" else prep_ddddocr
            out = make_images(args.cache, model, n_calib, n_eval, seed, prep)
        os.makedirs(base, exist_ok=True)
        if os.path.exists(stamp):
            os.remove(stamp)
        for split in ("calib", "eval"):
            write_split(os.path.join(base, split), out[split])
        with open(stamp, "w") as f:
            json.dump(params, f)
        print(f"make_inputs: {model}: {len(out['calib'])} calib, {len(out['eval'])} eval "
              f"samples in {base}")


if __name__ == "__main__":
    main()
