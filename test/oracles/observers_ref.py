#!/usr/bin/env python3
"""Independent numpy reference for qcal's calibration observers (used by test/test_observers.c).

Usage: observers_ref.py ranges DATA.bin     -> one line per method: "<name> <lo> <hi> <bin_width>"
       observers_ref.py qparams RANGES.txt  -> onnxruntime's compute_scale_zp for each line
                                               "lo hi symmetric qmin qmax": "<scale> <zp>"

DATA.bin (little endian), written by the C test:
  int32 n_batches, bins, levels, sym_qmin, sym_qmax, asym_qmin, asym_qmax
  float32 percentile, ema_constant
  int64 sizes[n_batches]
  float32 values (the batches, one after the other; may contain NaN / Inf)

Histogram convention (the one of calib/hist.h, re-derived here): bin width 2^k, bins aligned on
multiples of the width; k is the smallest integer >= ilogb(max|x|) - 40 (-200 when all zero)
such that the cells of min and max are < bins apart; for |x| histograms the window starts at 0.
The algorithms (percentile, brute-force MSE over every pair of bin edges, TensorRT KL with
explicit P and Q arrays) are written from their definitions, not from the C code.
"""
import math
import sys

import numpy as np


def grid(lo, hi, bins):
    a = max(abs(lo), abs(hi))
    k = math.frexp(a)[1] - 1 - 40 if a > 0 else -200
    while math.floor(math.ldexp(hi, -k)) - math.floor(math.ldexp(lo, -k)) > bins - 1:
        k += 1
    return k, math.floor(math.ldexp(lo, -k))


def histogram(x, bins, absval):
    """counts, k, j0 on qcal's grid; x finite float32."""
    v = np.abs(x) if absval else x
    lo, hi = (0.0, float(v.max())) if absval else (float(v.min()), float(v.max()))
    k, j0 = grid(lo, hi, bins)
    cells = np.floor(v.astype(np.float64) * 2.0 ** -k).astype(np.int64) - j0
    assert cells.min() >= 0 and cells.max() < bins
    return np.bincount(cells, minlength=bins).astype(np.float64), k, j0


def used(c):
    nz = np.nonzero(c)[0]
    return int(nz[0]), int(nz[-1])


def percentile(x, bins, p, symmetric):
    c, k, j0 = histogram(x, bins, symmetric)
    w = 2.0 ** k
    cum = np.cumsum(c)
    total = cum[-1]
    p = float(p) / 100.0
    if symmetric:
        b = int(np.searchsorted(cum, p * total, side="left"))
        t = min((b + 1) * w, float(np.abs(x).max()))
        return -t, t, w
    q = (1.0 - p) / 2.0
    a = int(np.searchsorted(cum, q * total, side="left"))
    b = int(np.searchsorted(cum, (1.0 - q) * total, side="left"))
    return max((j0 + a) * w, float(x.min())), min((j0 + b + 1) * w, float(x.max())), w


def clip_costs(c, bounds, above):
    """cost of clipping to each bound (bin units), values spread uniformly over their bins."""
    u = np.arange(c.size) + 0.5
    out = np.empty(bounds.size)
    for i, h in enumerate(bounds):
        d = u - h
        m = d > 0 if above else d < 0
        out[i] = np.sum(c[m] * (d[m] * d[m] + 1.0 / 12.0))
    return out


def mse(x, bins, qmin, qmax, symmetric):
    c, k, j0 = histogram(x, bins, symmetric)
    w = 2.0 ** k
    n = float(qmax - qmin)
    first, last = used(c)
    bs = np.arange(first, last + 1)
    up = clip_costs(c, bs + 1.0, True)
    inside_to = np.cumsum(c)
    if symmetric:
        delta = 2.0 * (bs + 1) / n
        cost = up + inside_to[bs] * delta * delta / 12.0
        b = int(bs[np.argmin(cost)])
        t = min((b + 1) * w, float(np.abs(x).max()))
        return -t, t, w
    down = clip_costs(c, bs.astype(np.float64), False)
    best, best_ab = np.inf, None
    for a, dn in zip(bs, down):  # every (a, b) pair, one row at a time
        if a != first and j0 + a > 0:
            continue
        b = bs[bs >= a]
        ok = (b == last) | (j0 + b + 1 >= 0)
        b = b[ok]
        inside = inside_to[b] - (inside_to[a - 1] if a > 0 else 0.0)
        delta = (np.maximum(j0 + b + 1.0, 0) - min(j0 + a, 0.0)) / n
        cost = dn + up[b - first] + inside * delta * delta / 12.0
        i = int(np.argmin(cost))
        if cost[i] < best:
            best, best_ab = cost[i], (int(a), int(b[i]))
    a, b = best_ab
    return max((j0 + a) * w, float(x.min())), min((j0 + b + 1) * w, float(x.max())), w


def entropy(x, bins, levels, symmetric, qmin, qmax):
    c, k, j0 = histogram(x, bins, True)
    w = 2.0 ** k
    amax = float(np.abs(x).max())
    xlo, xhi = float(x.min()), float(x.max())
    # levels on [0, t] of a range [-t, t]: TensorRT's 128 for 8 bits, scaled by the target's
    # steps as a power of two
    per2t = levels * 2.0 ** round(math.log2((qmax - qmin) / 255.0))
    first, last = used(c)
    c[0] = c[1]  # pytorch-quantization's fix for the zero spike of ReLU outputs
    kls = {}
    for i in range(levels, last + 2):
        # the quantization steps the target spends on [0, t]: an asymmetric one spans
        # [max(min, -t), min(max, t)] widened to hold 0
        t = min((i + 0.5) * w, amax)
        ratio = 1.0
        if not symmetric:
            lo, hi = min(max(xlo, -t), 0.0), max(min(xhi, t), 0.0)
            ratio = 2.0 * t / (hi - lo)
        nl = min(max(int(math.floor(per2t * ratio + 0.5)), 2), i)
        p = c[:i].copy()
        p[i - 1] += c[i:].sum()
        level = (np.arange(i) * nl) // i
        mass = np.bincount(level, weights=c[:i], minlength=nl)  # unclipped bins
        nonzero = np.bincount(level, weights=(p > 0).astype(np.float64), minlength=nl)
        q = np.where(p > 0, mass[level] / np.maximum(nonzero[level], 1), 0.0)
        if q.sum() == 0 or np.any((p > 0) & (q == 0)):
            continue  # infinite divergence
        pn, qn = p / p.sum(), q / q.sum()
        m = pn > 0
        kls[i] = float(np.sum(pn[m] * np.log(pn[m] / qn[m])))
    # ties (within 1e-12 nats) go to the largest threshold
    best_i = max(i for i, kl in kls.items() if kl <= min(kls.values()) + 1e-12) if kls else 0
    t = min((best_i + 0.5) * w, amax) if best_i else amax
    if symmetric:
        return -t, t, w
    lo, hi = max(xlo, -t), min(xhi, t)
    if lo > hi:
        if x.min() > 0:
            lo = hi
        else:
            hi = lo
    return lo, hi, w


def ranges(path):
    raw = open(path, "rb").read()
    hdr = np.frombuffer(raw, dtype="<i4", count=7)
    nb, bins, levels, sqmin, sqmax, aqmin, aqmax = (int(v) for v in hdr)
    pct, ema_c = np.frombuffer(raw, dtype="<f4", count=2, offset=28)
    sizes = np.frombuffer(raw, dtype="<i8", count=nb, offset=36)
    data = np.frombuffer(raw, dtype="<f4", offset=36 + 8 * nb)
    assert data.size == sizes.sum()
    batches = np.split(data, np.cumsum(sizes)[:-1])
    x = data[np.isfinite(data)]

    lo = hi = None
    c = np.float32(ema_c)
    for bt in batches:
        f = bt[np.isfinite(bt)]
        if f.size == 0:
            continue
        if lo is None:
            lo, hi = f.min(), f.max()
        else:  # float32 arithmetic, as the C state is float
            lo = np.float32(lo + c * (f.min() - lo))
            hi = np.float32(hi + c * (f.max() - hi))

    out = [
        ("minmax", float(x.min()), float(x.max()), 0.0),
        ("ema", float(lo), float(hi), 0.0),
        ("percentile_sym",) + percentile(x, bins, pct, True),
        ("percentile_asym",) + percentile(x, bins, pct, False),
        ("mse_sym",) + mse(x, bins, sqmin, sqmax, True),
        ("mse_asym",) + mse(x, bins, aqmin, aqmax, False),
        ("entropy_sym",) + entropy(x, bins, levels, True, sqmin, sqmax),
        ("entropy_asym",) + entropy(x, bins, levels, False, aqmin, aqmax),
    ]
    for name, a, b, w in out:
        print(f"{name} {a!r} {b!r} {w!r}")


def qparams(path):
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    for line in open(path):
        lo, hi, sym, qmin, qmax = line.split()
        qdt = np.uint8 if int(qmin) >= 0 else np.int8
        if int(qmax) > 255 or int(qmin) < -128:
            qdt = np.uint16 if int(qmin) >= 0 else np.int16
        zp, scale = compute_scale_zp(np.array(float(lo), dtype=np.float32),
                                     np.array(float(hi), dtype=np.float32),
                                     np.array(int(qmin), dtype=qdt), np.array(int(qmax), dtype=qdt),
                                     symmetric=bool(int(sym)))
        print(f"{float(scale)!r} {int(zp)}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("ranges", "qparams"):
        sys.exit(__doc__)
    (ranges if sys.argv[1] == "ranges" else qparams)(sys.argv[2])
