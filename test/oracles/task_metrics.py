#!/usr/bin/env python3
"""Task-level agreement between two output folders of an integration model: what a user of
the model would see change (e.g. after quantization), not raw tensor error.

    task_metrics.py MODEL GOT REF        MODEL: nudenet | ddddocr | magika

nudenet (YOLOv8, output0 [1, 4+18, N]) and ddddocr (YOLOX, output [1, N, 6]) are decoded the
way their packages do it (score threshold, class-wise NMS at IoU 0.45) and the detections of
GOT are matched to those of REF (same class, IoU >= 0.5): prints counts and F1. magika prints
the top-1 label agreement. Exit 0 (this reports, it does not judge). Other oracles import
agreement() (quant_check.py judges it against a threshold).
"""
import os
import sys

import numpy as np


def nms(boxes, scores, thr=0.45):
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iou = box_iou(boxes[i], boxes[rest])
        order = rest[iou <= thr]
    return keep


def box_iou(a, b):
    """a: [4] xyxy, b: [n, 4] xyxy -> [n]"""
    x1 = np.maximum(a[0], b[:, 0])
    y1 = np.maximum(a[1], b[:, 1])
    x2 = np.minimum(a[2], b[:, 2])
    y2 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda t: np.clip(t[..., 2] - t[..., 0], 0, None) * np.clip(t[..., 3] - t[..., 1],
                                                                        0, None)
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def xywh_to_xyxy(b):
    return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                     b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], axis=1)


def detections(boxes, scores, cls, thr):
    m = scores > thr
    boxes, scores, cls = boxes[m], scores[m], cls[m]
    out = []
    for c in np.unique(cls):
        idx = np.where(cls == c)[0]
        for k in nms(boxes[idx], scores[idx]):
            out.append((int(c), float(scores[idx][k]), boxes[idx][k]))
    return out


def decode_nudenet(y):
    p = y[0].T                                   # [N, 4 + classes]
    scores = p[:, 4:].max(axis=1)
    cls = p[:, 4:].argmax(axis=1)
    return detections(xywh_to_xyxy(p[:, :4]), scores, cls, 0.2)


def decode_ddddocr(y, size=416):
    p = y[0].astype(np.float64).copy()           # [N, 6]: xywh, obj, cls
    grids, strides = [], []
    for s in (8, 16, 32):
        n = size // s
        xv, yv = np.meshgrid(np.arange(n), np.arange(n))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((n * n, 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    p[:, :2] = (p[:, :2] + grid) * stride
    p[:, 2:4] = np.exp(p[:, 2:4]) * stride
    sc = p[:, 4:5] * p[:, 5:]
    return detections(xywh_to_xyxy(p[:, :4]), sc.max(axis=1), sc.argmax(axis=1), 0.1)


def match(got, ref):
    used = set()
    hits = 0
    for c, _, b in got:
        best, best_j = 0.5, None
        for j, (rc, _, rb) in enumerate(ref):
            if j in used or rc != c:
                continue
            iou = float(box_iou(b, rb[None])[0])
            if iou >= best:
                best, best_j = iou, j
        if best_j is not None:
            used.add(best_j)
            hits += 1
    return hits


def load_dir(root):
    out = {}
    for s in sorted(os.listdir(root)):
        d = os.path.join(root, s)
        if os.path.isdir(d):
            files = sorted(f for f in os.listdir(d) if f.endswith(".npy"))
            if files:
                out[s] = np.load(os.path.join(d, files[0]))
    return out


def agreement(model, got, ref):
    """got, ref: {sample: first output array}. Returns (fraction in [0, 1], one-line text).
    Detectors: F1 of GOT's detections matched to REF's (same class, IoU >= 0.5) after decode
    and NMS; magika: the share of samples whose top-1 label agrees."""
    common = sorted(set(got) & set(ref))
    if model == "magika":
        same = sum(int(got[s].argmax() == ref[s].argmax()) for s in common)
        frac = same / len(common) if common else 0.0
        return frac, f"magika: top-1 label agrees on {same}/{len(common)} samples"
    decode = {"nudenet": decode_nudenet, "ddddocr": decode_ddddocr}.get(model)
    if decode is None:
        raise ValueError(f"task_metrics: unknown model '{model}'")
    n_got = n_ref = hits = 0
    for s in common:
        g, r = decode(got[s]), decode(ref[s])
        n_got += len(g)
        n_ref += len(r)
        hits += match(g, r)
    prec = hits / n_got if n_got else 1.0
    rec = hits / n_ref if n_ref else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return f1, (f"{model}: {len(common)} samples, {n_ref} reference detections, {n_got} "
                f"detections, {hits} matched (same class, IoU >= 0.5): F1 {f1:.3f}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    model, got_dir, ref_dir = sys.argv[1:]
    try:
        _, text = agreement(model, load_dir(got_dir), load_dir(ref_dir))
    except ValueError as e:
        sys.exit(str(e))
    print(text)


if __name__ == "__main__":
    main()
