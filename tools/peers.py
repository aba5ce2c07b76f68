#!/usr/bin/env python3
"""qcal side by side with onnxruntime's quantize_static and Intel NNCF, in one run, on the same
models, the same calibration samples and the same held-out eval samples.

    tools/peers.py [--quick] [--models a,b] [--calib N] [--calib-large N] [--eval N]
                   [--runs N] [--out build/peers.md] [--work build/peers]

For each integration model it quantizes with
  qcal   every method (minmax entropy percentile mse ema), --per-channel, QDQ, uint8
         activations, int8 weights; percentile and entropy again on --calib-large samples;
  ORT    quantize_static(QuantFormat.QDQ, per_channel=True, activation QUInt8, weight QInt8)
         with each calibrator (MinMax, Entropy, Percentile, Distribution) at its defaults,
         except CalibTensorRangeSymmetric=False for Percentile so that it cuts both tails
         like qcal's percentile on asymmetric activations (99.999, 2048 bins);
  NNCF   nncf.quantize(onnx model, nncf.Dataset(same samples), subset_size=N), defaults
         otherwise (preset PERFORMANCE, fast bias correction);
each in its own child process (peak RSS from os.wait4), then measures every model in
onnxruntime (CPU, 2 threads): SQNR of the outputs against the float model on the eval samples,
task agreement (test/oracles/task_metrics.py), latency (median of --runs runs, models timed
round-robin in a shuffled order so that load from elsewhere hits them alike) and the compute
nodes that onnxruntime leaves in float after its optimizations (ORT_ENABLE_EXTENDED, saved
through SessionOptions.optimized_model_filepath). Prints a table per model, the acceptance targets
with their verdicts, and writes them as markdown to --out (raw numbers in WORK/results.json).

ORT's histogram calibrators keep every calibrated tensor of every sample in memory; when that
would exceed QC_PEERS_ORT_MEM_GB (default 8) they are run with CalibStridedMinMax=k, the
documented option that feeds the calibrator k samples at a time, and the table says so.

Nothing is downloaded here: the models come from tools/fetch_models.sh, the samples from
tools/make_inputs.py (written under WORK/cache so the shared sample folders keep their size).
Environment: QC_BUILD_DIR (default build), QC_PEERS_ORT_MEM_GB, QC_PEERS_TIMEOUT (seconds per
quantizer run, default 600).
"""
import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time



def launcher():
    """Runs the children for the driver: one JSON request per stdin line, one JSON answer per
    stdout line. A child's ru_maxrss starts at the RSS of the process that forked it (and exec
    keeps that high-water mark), so the children come from this small process and not from
    the driver, which holds onnxruntime and the eval samples."""
    for line in sys.stdin:
        req = json.loads(line)
        with open(req["log"], "w") as lf:
            t0 = time.perf_counter()
            p = subprocess.Popen(req["cmd"], stdout=lf, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=req["env"], cwd=req["cwd"])
            timer = threading.Timer(req["timeout"], p.kill)
            timer.start()
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            timer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)
        print(json.dumps({"rc": p.returncode, "wall": wall, "maxrss_kb": ru.ru_maxrss,
                          "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}),
              flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--launcher"]:
    launcher()
    sys.exit(0)

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "oracles"))

# M-bc: calibrate --method M --no-bias-correction (the defaults' cost without the correction);
# M-ng: --no-pair-guard, the peers' setting (nothing keeps onnxruntime's x86 kernels without
# VNNI from saturating): on a VNNI CPU the comparison with equal settings
QCAL_METHODS = ["minmax", "entropy", "percentile", "mse", "ema", "minmax-bc", "percentile-ng",
                "mse-ng"]
VARIANT_FLAGS = {"": [], "bc": ["--no-bias-correction"], "ng": ["--no-pair-guard"]}
ORT_METHODS = ["MinMax", "Entropy", "Percentile", "Distribution"]
FAMILY = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# The pinned wheels hold ~253 distinct files for magika's calibration split.
MAX_CALIB = {"magika": 250}
DESCR = {"nudenet": "YOLOv8n detector, 320x320", "magika": "file-type classifier, 2048 bytes",
         "ddddocr": "YOLOX-style detector, 416x416"}
THREAD_ENV = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "QC_THREADS": "2",
              "MKL_NUM_THREADS": "2"}
# Ops that compute (as opposed to moving or indexing data); in an optimized QDQ graph one of
# these with a float output is work that onnxruntime did not turn into an integer kernel.
COMPUTE_OPS = {
    "Conv", "ConvTranspose", "MatMul", "Gemm", "FusedConv", "FusedGemm", "FusedMatMul",
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Tanh", "Sigmoid",
    "Softmax", "LogSoftmax", "Relu", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish",
    "QuickGelu", "Gelu", "FastGelu", "BiasGelu", "Erf", "ReduceSum", "ReduceMean", "ReduceMax",
    "ReduceMin", "ReduceProd", "ReduceL2", "GlobalAveragePool", "AveragePool", "GlobalMaxPool",
    "MaxPool", "Resize", "Max", "Min", "Sum", "Mean", "Neg", "Abs", "Einsum",
    "LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
    "BatchNormalization", "InstanceNormalization",
}
FLOAT_TYPES = {1, 10, 11, 16}      # float, float16, double, bfloat16


# ------------------------------------------------------------------ child processes

def sample_files(data, n):
    files = sorted(f for f in os.listdir(data) if f.endswith(".npy") and not f.startswith("."))
    if len(files) < n:
        sys.exit(f"peers: {data}: {len(files)} samples, {n} needed")
    return [os.path.join(data, f) for f in files[:n]]


def child_ort(a):
    """quantize_static in this process; prints {"calib_s": ...} on the last line."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                          QuantFormat, QuantType, quantize_static)
    files = sample_files(a.data, a.n)
    model = onnx.load(a.model)
    name = model.graph.input[0].name
    note = ""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        # quantize_static writes per-channel DequantizeLinear nodes with an axis into an
        # opset < 13 model, which onnxruntime then refuses to load: upgrade it first, as its
        # users have to.
        import onnx.version_converter
        model = onnx.version_converter.convert_version(model, 13)
        a.model = a.out + ".opset13.onnx"
        onnx.save(model, a.model)
        note = (f"model converted from opset {opset} to 13 with onnx.version_converter first "
                "(quantize_static's per-channel output of the original model does not load)")

    class Reader(CalibrationDataReader):
        """Loads one sample at a time from disk, as qcal does."""

        def __init__(self):
            self.lo, self.hi = 0, len(files)

        def get_next(self):
            if self.lo >= self.hi:
                return None
            self.lo += 1
            return {name: np.load(files[self.lo - 1])}

        def __len__(self):
            return len(files)

        def set_range(self, start_index, end_index):
            self.lo, self.hi = start_index, min(end_index, len(files))

    extra = {}
    if a.method == "Percentile":
        extra.update(CalibTensorRangeSymmetric=False, CalibPercentile=99.999)
    if a.stride:
        extra["CalibStridedMinMax"] = a.stride
    t0 = time.perf_counter()
    quantize_static(a.model, a.out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, a.method), extra_options=extra)
    print(json.dumps({"calib_s": time.perf_counter() - t0, "note": note}))


def child_nncf(a):
    # NNCF reports usage through openvino-telemetry unless it is told it runs in CI.
    os.environ["NNCF_CI"] = "1"
    os.environ["CI"] = "true"
    import onnx
    import nncf
    files = sample_files(a.data, a.n)
    t0 = time.perf_counter()
    model = onnx.load(a.model)
    name = model.graph.input[0].name
    ds = nncf.Dataset(files, lambda f: {name: np.load(f)})
    q = nncf.quantize(model, ds, subset_size=len(files))
    onnx.save(q, a.out)
    print(json.dumps({"calib_s": time.perf_counter() - t0}))


class Launcher:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--launcher"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, cmd, log, timeout):
        """(exit code, wall s, peak RSS MB of the child alone)."""
        req = {"cmd": cmd, "log": log, "timeout": timeout, "cwd": ROOT,
               "env": dict(os.environ, **THREAD_ENV)}
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        ans = json.loads(self.p.stdout.readline())
        self.floor_mb = ans["self_kb"] / 1024.0
        return ans["rc"], ans["wall"], ans["maxrss_kb"] / 1024.0

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def run_child(launcher, cmd, log, timeout):
    """Runs cmd: (exit code, wall s, peak RSS MB, last line of its output)."""
    rc, wall, rss = launcher.run(cmd, log, timeout)
    with open(log) as lf:
        lines = [ln for ln in lf.read().splitlines() if ln.strip()]
    return rc, wall, rss, (lines[-1] if lines else "")


# ------------------------------------------------------------------ measuring models

def session(path, threads=2, level="all", optimized_out=None):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # Idle worker threads of one session would otherwise spin while the next model is timed.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    if optimized_out:
        so.optimized_model_filepath = optimized_out
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def load_feeds(model_path, files):
    sess = session(model_path)
    inp = sess.get_inputs()[0]
    return [{inp.name: np.load(f)} for f in files]


def float_compute_nodes(path, opt_path):
    """{op type: count} of compute nodes left in float by ORT_ENABLE_EXTENDED."""
    import onnx
    session(path, level="extended", optimized_out=opt_path)
    g = onnx.load(opt_path, load_external_data=False).graph
    dtype = {t.name: t.data_type for t in g.initializer}
    for v in list(g.value_info) + list(g.input) + list(g.output):
        if v.type.tensor_type.elem_type:
            dtype[v.name] = v.type.tensor_type.elem_type
    # ORT saves no value_info for tensors of unknown shape: propagate element types (the
    # saved nodes are in topological order).
    fixed = {"Shape": 7, "Size": 7, "ArgMax": 7, "ArgMin": 7, "NonZero": 7, "Equal": 9,
             "Less": 9, "Greater": 9, "LessOrEqual": 9, "GreaterOrEqual": 9, "Not": 9,
             "And": 9, "Or": 9, "Xor": 9, "IsNaN": 9, "IsInf": 9, "DequantizeLinear": 1,
             "MatMulIntegerToFloat": 1, "DynamicQuantizeMatMul": 1}
    for n in g.node:
        t = fixed.get(n.op_type)
        if n.op_type == "Cast":
            t = next(a.i for a in n.attribute if a.name == "to")
        elif n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
                           "ConvInteger") or n.op_type.startswith("QLinear"):
            t = 2           # some integer type: all that matters here is "not float"
        elif t is None:
            ins = [dtype[x] for x in n.input if x in dtype]
            t = ins[0] if ins else None
        for y in n.output:
            if y and y not in dtype and t:
                dtype[y] = t
    out = {}
    for n in g.node:
        if n.op_type not in COMPUTE_OPS:
            continue
        ys = [dtype.get(y) for y in n.output if y]
        if ys and ys[0] in FLOAT_TYPES:
            out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


def sqnr_db(ref, got):
    num = sum(float(np.sum(np.square(r.astype(np.float64)))) for r in ref)
    den = sum(float(np.sum(np.square(g.astype(np.float64) - r.astype(np.float64))))
              for g, r in zip(got, ref))
    if den == 0:
        return float("inf")
    return 10 * np.log10(num / den) if num > 0 else float("-inf")


def evaluate(model_name, path, feeds, ref_outs, opt_path):
    """SQNR (the worst output), task agreement and float compute nodes of one model."""
    from task_metrics import agreement
    sess = session(path)
    outs = [sess.run(None, f) for f in feeds]
    n_out = len(ref_outs[0])
    sq = min(sqnr_db([r[k] for r in ref_outs], [o[k] for o in outs]) for k in range(n_out))
    got = {f"s{i:04d}": o[0] for i, o in enumerate(outs)}
    ref = {f"s{i:04d}": r[0] for i, r in enumerate(ref_outs)}
    agree, text = agreement(model_name, got, ref)
    return {"sqnr_db": sq, "task": agree, "task_text": text,
            "float_nodes": float_compute_nodes(path, opt_path)}


def latencies(paths, feed, runs):
    """Milliseconds of every timed run per model, in round order: one run of each model per
    round, after two warm-up rounds, in an order shuffled every round (fixed seed): in a
    fixed order each model always follows the same one (the first quantized model the float
    one, whose weights are four times larger), which can bias it by its place."""
    sessions = {k: session(p) for k, p in paths.items()}
    times = {k: [] for k in paths}
    order, rng = list(sessions), random.Random(0)
    for r in range(runs + 2):
        rng.shuffle(order)
        for k in order:
            t0 = time.perf_counter()
            sessions[k].run(None, feed)
            if r >= 2:
                times[k].append((time.perf_counter() - t0) * 1e3)
    return times


def paired_ratio(a_runs, b_runs):
    """Tool A's latency over tool B's, paired by round: in each round the median of A's
    models' times over the median of B's (a round takes well under a second, so a slow
    stretch of the shared machine slows both alike); the median of those ratios, and the
    range of its middle half (quartiles) as the measurement's spread."""
    rounds = min(len(v) for v in a_runs + b_runs)
    r = sorted(statistics.median(v[i] for v in a_runs) / statistics.median(v[i] for v in b_runs)
               for i in range(rounds))
    q = statistics.quantiles(r, n=4) if len(r) >= 2 else [r[0], r[0], r[0]]
    return statistics.median(r), q[0], q[2]


def ort_bytes_per_sample(model_path, feed):
    """Bytes that ORT's histogram calibrators keep per sample: every float tensor produced by
    a node (an upper bound on the tensors they calibrate), measured on one sample."""
    import onnx
    import onnxruntime as ort
    m = onnx.shape_inference.infer_shapes(onnx.load(model_path))
    have = {o.name for o in m.graph.output}
    for v in m.graph.value_info:
        if v.type.tensor_type.elem_type == 1 and v.name not in have:
            m.graph.output.append(v)
            have.add(v.name)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sum(o.nbytes for o in s.run(None, feed) if o.dtype == np.float32)


# ------------------------------------------------------------------ the run

def model_path(name):
    with open(os.path.join(ROOT, "models", "manifest.txt")) as f:
        for line in f:
            p = line.split()
            if len(p) == 9 and p[0] == "model" and p[1] == name:
                return os.path.join(ROOT, "models", "cache", p[8])
    sys.exit(f"peers: unknown model '{name}'")


def cpu_has_vnni():
    """AVX512-VNNI or AVX-VNNI in /proc/cpuinfo's flags (onnxruntime's integer kernels then
    add u8 x s8 products in 32 bits; without it, pairs of them in saturating 16 bits)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")),
                         [])
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def make_data(a, name, n_calib, n_eval):
    cache = os.path.join(a.work, "cache")
    os.makedirs(cache, exist_ok=True)
    for d in ("photos", "wheels", "magika"):
        link = os.path.join(cache, d)
        if not os.path.lexists(link):
            os.symlink(os.path.join(ROOT, "models", "cache", d), link)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_inputs.py"), "--min",
                    "--cache", cache, "--models", name, "--calib", str(n_calib),
                    "--eval", str(n_eval)], check=True, stdout=subprocess.DEVNULL)
    base = os.path.join(cache, "data", name)
    return os.path.join(base, "calib"), os.path.join(base, "eval")


def quantize_all(a, name, mpath, calib, n, n_large, mem_per_sample, log):
    """Runs every quantizer; returns the list of result rows (without model measurements)."""
    wdir = os.path.join(a.work, name)
    os.makedirs(wdir, exist_ok=True)
    cal = os.path.join(ROOT, a.build, "calibrate")
    me = [sys.executable, os.path.abspath(__file__)]
    jobs = []
    for meth in a.qcal_methods:
        for k in ([n] + ([n_large] if n_large and meth in a.large_methods else [])):
            out = os.path.join(wdir, f"qcal-{meth}-{k}.onnx")
            base, _, variant = meth.partition("-")
            jobs.append(dict(tool="qcal", method=meth, n=k, out=out, note="",
                             cmd=[cal, "-q", "--data", calib, "--limit", str(k), mpath, "-o",
                                  out, "--method", base, "--per-channel"] +
                             VARIANT_FLAGS[variant]))
    budget = a.ort_mem_gb * 1e9
    for meth in a.ort_methods:
        out = os.path.join(wdir, f"ort-{meth}-{n}.onnx")
        stride, note = 0, ""
        if meth != "MinMax" and mem_per_sample * n > budget:
            stride = max((d for d in range(1, n + 1)
                          if n % d == 0 and d * mem_per_sample <= budget), default=1)
            note = (f"CalibStridedMinMax={stride}: all {n} samples at once would keep "
                    f"~{mem_per_sample * n / 1e9:.0f} GB")
        jobs.append(dict(tool="ORT", method=meth, n=n, out=out, note=note,
                         cmd=me + ["--child", "ort", "--model", mpath, "--data", calib,
                                   "--n", str(n), "--method", meth, "--out-model", out,
                                   "--stride", str(stride)]))
    if a.nncf:
        out = os.path.join(wdir, f"nncf-{n}.onnx")
        jobs.append(dict(tool="NNCF", method="default", n=n, out=out, note="",
                         cmd=me + ["--child", "nncf", "--model", mpath, "--data", calib,
                                   "--n", str(n), "--out-model", out]))
    rows = [run_job(a, j, log) for j in jobs]
    # The minmax time target sits near its line (qcal's whole process against a quantize call
    # of 1-12 s): both sides run once more, in turn, and each keeps its faster run, as the
    # cost bench does; a single run on this shared machine moves by 10-40%.
    pair = [r for r in rows if r["ok"] and r["n"] == n and
            (r["tool"], r["method"]) in (("qcal", "minmax"), ("ORT", "MinMax"))]
    for r in pair:
        again = run_job(a, next(j for j in jobs if j["out"] == r["out"]), log, "again")
        if again["ok"]:
            r["calib_runs"] = [r["calib_s"], again["calib_s"]]
            r["calib_s"] = min(r["calib_runs"])
            r["rss_mb"] = max(r["rss_mb"], again["rss_mb"])
    # Memory flatness compares qcal with itself at n and n_large samples: each side the lower
    # peak of two runs (magika's peak was 46 or 51 MB from run to run whatever the samples, and
    # one run against one read that as growth, before calibrate fixed glibc's mmap threshold).
    # rss_mb stays the higher, for the peers.
    flat = [r for r in rows if r["ok"] and r["tool"] == "qcal" and n_large and
            r["method"] in a.large_methods and r["n"] in (n, n_large)]
    for r in flat:
        again = run_job(a, next(j for j in jobs if j["out"] == r["out"]), log, "again")
        r["rss_low_mb"] = min(r["rss_mb"], again["rss_mb"]) if again["ok"] else r["rss_mb"]
        r["rss_mb"] = max(r["rss_mb"], again["rss_mb"]) if again["ok"] else r["rss_mb"]
    return rows


def run_job(a, j, log, what=""):
    """One quantizer run: its result row (without model measurements)."""
    label = f"{j['tool']} {j['method']} ({j['n']} samples{', ' + what if what else ''})"
    logf = j["out"][:-5] + ".log"
    rc, wall, rss, last = run_child(a.launcher, j["cmd"], logf, a.timeout)
    row = dict(tool=j["tool"], method=j["method"], n=j["n"], out=j["out"], note=j["note"],
               rss_mb=rss, wall_s=wall, calib_s=wall, ok=rc == 0)
    if rc == 0 and j["tool"] != "qcal":
        try:
            said = json.loads(last)
            row["calib_s"] = said["calib_s"]
            row["note"] = "; ".join(x for x in (said.get("note", ""), row["note"]) if x)
        except (ValueError, KeyError):
            row["ok"] = False
    if not row["ok"]:
        row["note"] = (f"failed (exit {rc}"
                       f"{', killed after %d s' % a.timeout if wall >= a.timeout else ''})"
                       f": {last[:150]}")
    log(f"  {label:34s} {row['calib_s']:7.1f} s {rss:8.0f} MB  "
        f"{'ok' if row['ok'] else row['note']}")
    return row


def fmt(v, spec, none="-"):
    if v is None:
        return none
    if isinstance(v, float) and np.isinf(v):
        return "inf"
    return format(v, spec)


def nodes_text(d):
    return " ".join(f"{k}×{v}" for k, v in sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


def runs_text(r):
    """' (runs a / b s)' for a time taken as the faster of several runs, else ''."""
    v = r.get("calib_runs")
    return f" (runs {' / '.join(f'{t:.2f}' for t in v)} s)" if v else ""


def verdicts(rows, n, n_large):
    """The acceptance targets: (text, met) pairs."""
    ok = [r for r in rows if r["ok"]]

    def get(tool, meth, k=n):
        return next((r for r in ok if r["tool"] == tool and r["method"] == meth and r["n"] == k),
                    None)

    out = []
    for qm, om in FAMILY.items():
        q, o = get("qcal", qm), get("ORT", om)
        if q and o:
            ratio = q["calib_s"] / o["calib_s"]
            out.append((f"time {qm}: qcal {q['calib_s']:.2f} s{runs_text(q)} vs ORT {om} "
                        f"{o['calib_s']:.2f} s{runs_text(o)} = {ratio:.3f} (target <= 0.33)",
                        ratio <= 1 / 3))
    for qm, om in (("entropy", "Entropy"), ("percentile", "Percentile")):
        q, o = get("qcal", qm), get("ORT", om)
        if q and o:
            ratio = q["rss_mb"] / o["rss_mb"]
            extra = next((f", ORT with {x.split(':')[0]}" for x in o["note"].split("; ")
                          if x.startswith("CalibStridedMinMax")), "")
            out.append((f"memory {qm}: qcal {q['rss_mb']:.0f} MB vs ORT {om} {o['rss_mb']:.0f} MB"
                        f" = {ratio:.3f} (target <= 0.5{extra})", ratio <= 0.5))
        big = get("qcal", qm, n_large) if n_large else None
        if q and big:
            lo_q, lo_big = q.get("rss_low_mb", q["rss_mb"]), big.get("rss_low_mb", big["rss_mb"])
            growth = lo_big / lo_q
            out.append((f"memory flat {qm}: qcal {lo_q:.0f} MB at {n} samples, "
                        f"{lo_big:.0f} MB at {n_large} = x{growth:.2f} (target <= x1.10; the "
                        "lower of two runs each)", growth <= 1.10))
    qs = [r for r in ok if r["tool"] == "qcal" and r["n"] == n and "sqnr_db" in r]
    ps = [r for r in ok if r["tool"] != "qcal" and "sqnr_db" in r]
    if qs and ps:
        for key, name, f in (("sqnr_db", "SQNR", "{:.2f} dB"), ("task", "task agreement",
                                                                 "{:.3f}")):
            bq = max(qs, key=lambda r: r[key])
            bp = max(ps, key=lambda r: r[key])
            out.append((f"accuracy {name}: qcal best {f.format(bq[key])} ({bq['method']}) vs "
                        f"peers best {f.format(bp[key])} ({bp['tool']} {bp['method']})",
                        bq[key] >= bp[key]))
    # A tool's models differ only in their scales, so their latencies differ only by noise:
    # pool them (per round, the median over the tool's models) and compare tools round by
    # round (paired_ratio); the models' own medians are printed beside.
    lat = {}
    for tool in ("qcal", "ORT", "NNCF"):
        rs = [r for r in ok if r["tool"] == tool and r.get("latency_runs")]
        if rs:
            v = [r["latency_ms"] for r in rs]
            lat[tool] = (statistics.median(v), min(v), max(v), len(v),
                         [r["latency_runs"] for r in rs])
    if "qcal" in lat:
        q = lat["qcal"]
        for tool in ("ORT", "NNCF"):
            if tool in lat:
                o = lat[tool]
                ratio, lo, hi = paired_ratio(q[4], o[4])
                out.append((f"latency vs {tool}: qcal / {tool} {ratio:.3f} (per-round ratio, "
                            f"median of {len(q[4][0])} rounds, quartiles {lo:.3f}-{hi:.3f}); "
                            f"medians qcal {q[0]:.2f} ms (its {q[3]} models "
                            f"{q[1]:.1f}-{q[2]:.1f}) vs {tool} {o[0]:.2f} ms ({o[3]} models "
                            f"{o[1]:.1f}-{o[2]:.1f})", ratio <= 1.0))
    return out


def lat_text(r):
    if not r.get("latency_ms"):
        return "-"
    return f"{r['latency_ms']:.1f} ({r['latency_min_ms']:.1f})"


def table(name, res, n, n_eval, runs):
    L = [f"### {name} ({DESCR.get(name, '')}): {n} calibration samples, {n_eval} eval samples",
         "",
         "| quantizer | method | calib samples | calib time s | peak RSS MB | SQNR dB "
         "| task agreement | latency ms median (min) | float compute nodes |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    f = res["float"]
    L.append(f"| float | - | - | - | - | inf | 1.000 | {lat_text(f)} | "
             f"{sum(f['float_nodes'].values())} |")
    notes = []
    for r in res["rows"]:
        mark = ""
        if r["note"]:
            notes.append(r["note"])
            mark = f" [{len(notes)}]"
        fl = r.get("float_nodes")
        L.append(f"| {r['tool']}{mark} | {r['method']} | {r['n']} | "
                 f"{fmt(r['calib_s'] if r['ok'] else None, '.1f')} | {r['rss_mb']:.0f} | "
                 f"{fmt(r.get('sqnr_db'), '.2f')} | {fmt(r.get('task'), '.3f')} | "
                 f"{lat_text(r)} | "
                 f"{sum(fl.values()) if fl is not None else '-'} |")
    L.append("")
    for i, t in enumerate(notes, 1):
        L.append(f"[{i}] {t}  ")
    L.append("")
    L.append("Float compute nodes by op type (ORT_ENABLE_EXTENDED graph):")
    L.append("")
    seen = {}
    for r in [dict(tool="float", method="-", n="", **f)] + res["rows"]:
        if r.get("float_nodes") is None or r["n"] not in ("", n):
            continue
        seen.setdefault(nodes_text(r["float_nodes"]) or "none", []).append(
            f"{r['tool']} {r['method']}".strip(" -"))
    for text, who in seen.items():
        L.append(f"- {', '.join(who)}: {text}")
    L.append("")
    L.append("Targets:")
    L.append("")
    for text, met in res["verdicts"]:
        L.append(f"- {'met' if met else '**NOT met**'}: {text}")
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="development run: 24 calibration / 8 eval samples, minmax and "
                         "percentile only, no large-sample run, 10 latency runs")
    ap.add_argument("--models", default="nudenet,magika,ddddocr")
    ap.add_argument("--calib", type=int, default=100)
    ap.add_argument("--calib-large", type=int, default=400,
                    help="qcal again on this many samples to show memory stays flat")
    ap.add_argument("--eval", type=int, default=32)
    ap.add_argument("--runs", type=int, default=100, help="latency runs per model")
    ap.add_argument("--no-nncf", dest="nncf", action="store_false")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "peers.md"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "peers"))
    ap.add_argument("--child", choices=["ort", "nncf"], help=argparse.SUPPRESS)
    for k in ("--model", "--data", "--method", "--out-model"):
        ap.add_argument(k, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--stride", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.out = a.out_model or a.out
        return child_ort(a) if a.child == "ort" else child_nncf(a)

    a.build = os.environ.get("QC_BUILD_DIR", "build")
    a.ort_mem_gb = float(os.environ.get("QC_PEERS_ORT_MEM_GB", "8"))
    a.timeout = float(os.environ.get("QC_PEERS_TIMEOUT", "600"))
    a.qcal_methods, a.ort_methods = QCAL_METHODS, ORT_METHODS
    a.large_methods = ["percentile", "entropy"]
    if a.quick:
        a.calib, a.calib_large, a.eval, a.runs = 24, 0, 8, 10
        a.qcal_methods, a.ort_methods = ["minmax", "percentile"], ["MinMax", "Percentile"]
    os.makedirs(a.work, exist_ok=True)
    t_start = time.perf_counter()
    a.launcher = Launcher()
    load0 = f"{os.getloadavg()[0]:.1f}"

    def log(s):
        print(s, flush=True)

    results = {}
    md = []
    for name in a.models.split(","):
        mpath = model_path(name)
        n_large = min(a.calib_large, MAX_CALIB.get(name, 1 << 30)) if a.calib_large else 0
        if n_large and n_large <= a.calib:
            n_large = 0
        log(f"peers: {name}: {a.calib} calibration samples"
            f"{f' (and {n_large} for qcal)' if n_large else ''}, {a.eval} eval samples")
        calib, evald = make_data(a, name, max(a.calib, n_large), a.eval)
        feeds = load_feeds(mpath, sample_files(evald, a.eval))
        per_sample = ort_bytes_per_sample(mpath, feeds[0])
        rows = quantize_all(a, name, mpath, calib, a.calib, n_large, per_sample, log)
        ref_sess = session(mpath)
        ref = [ref_sess.run(None, f) for f in feeds]
        opt = os.path.join(a.work, name, "optimized.onnx")
        fres = {"float_nodes": float_compute_nodes(mpath, opt)}
        for r in rows:
            if r["ok"]:
                try:
                    r.update(evaluate(name, r["out"], feeds, ref, opt))
                except Exception as e:      # a peer's model that ORT cannot run is a result
                    r["ok"] = False
                    r["note"] = f"evaluation failed: {str(e).splitlines()[0][:150]}"
        paths = {"float": mpath}
        paths.update({r["out"]: r["out"] for r in rows if r["ok"] and r["n"] == a.calib})
        lat = latencies(paths, feeds[0], a.runs)
        for r in [fres] + rows:
            v = lat.get("float" if r is fres else r["out"])
            r["latency_runs"] = v
            r["latency_ms"], r["latency_min_ms"] = ((statistics.median(v), min(v)) if v
                                                    else (None, None))
        res = {"float": fres, "rows": rows, "bytes_per_sample_ort": per_sample}
        res["verdicts"] = verdicts(rows, a.calib, n_large)
        results[name] = res
        t = table(name, res, a.calib, a.eval, a.runs)
        print("\n" + t, flush=True)
        md.append(t)

    head = [
        "## qcal, onnxruntime and NNCF side by side",
        "",
        f"`make peers` ({'--quick, ' if a.quick else ''}{time.perf_counter() - t_start:.0f} s "
        f"on this machine, {os.cpu_count()} cores). Every quantizer ran in its own process on "
        "the same calibration samples (the first N of the same folder) and was measured on "
        "the same held-out samples in onnxruntime (CPU execution provider, 2 threads).",
        "",
        "- **qcal**: `calibrate --method M --per-channel` (QDQ, asymmetric uint8 activations, "
        "symmetric int8 per-channel weights, int32 bias, bias correction on 16 samples); "
        "percentile 99.999, 2048 bins; minmax-bc: minmax with --no-bias-correction; M-ng: M "
        "with --no-pair-guard (int8 weights without the guard against onnxruntime's 16-bit "
        f"sums on x86 CPUs without VNNI, as the peers make them; this CPU: "
        f"{'VNNI' if cpu_has_vnni() else 'no VNNI, so those models may saturate here'}).",
        "- **ORT**: onnxruntime "
        f"{version('onnxruntime')} `quantize_static(QuantFormat.QDQ, per_channel=True, "
        "activation_type=QUInt8, weight_type=QInt8, calibrate_method=M)`, without "
        "`quant_pre_process` (it needs sympy, which onnxruntime does not install; with "
        "skip_symbolic_shape=True it gave the same MinMax model quality on nudenet), "
        "calibrators at their defaults (Entropy: 128 bins / 128 quantized bins, which "
        "quantize_static does not expose; Distribution: 2048 bins), Percentile with "
        "`CalibPercentile=99.999, CalibTensorRangeSymmetric=False` (both tails cut, like qcal; "
        "ORT's default is symmetric).",
        f"- **NNCF** {version('nncf')}: `nncf.quantize(onnx_model, nncf.Dataset(samples), "
        "subset_size=N)`, defaults otherwise (preset PERFORMANCE: symmetric activations, "
        "per-channel symmetric int8 weights, fast bias correction).",
        "- *calib time*: qcal's whole process; for ORT and NNCF the quantize call alone "
        "(interpreter start and imports excluded); one run, but for qcal minmax and ORT "
        "MinMax, whose ratio sits near its target: each the faster of two runs (the second "
        "ones after all the others, in turn). *peak RSS*: the child process's ru_maxrss "
        "(os.wait4). *SQNR*: 10·log10(Σref²/Σ(q−ref)²) of the outputs over all eval samples "
        "(the worst output). *task agreement*: test/oracles/task_metrics.py (detectors: F1 of "
        "detections matched to the float model's, same class, IoU ≥ 0.5; magika: top-1 label "
        f"agreement). *latency*: median (and min) of {a.runs} runs on one eval sample, "
        "ORT_ENABLE_ALL, thread spinning off (idle pools of the other sessions would spin), "
        "all models of a table timed round-robin, in an order shuffled every round; a tool's "
        "models differ only in their scales, so the spread among them is the measurement "
        "noise (the machine is "
        f"shared: load average {load0} at the start, {os.getloadavg()[0]:.1f} at the end), and "
        "the latency targets compare the tools round by round: in each round the median "
        "over a tool's models, qcal's over the peer's, and the median of those ratios over "
        "the rounds. "
        "*float compute nodes*: nodes of a computing "
        "op type (Conv, MatMul, Gemm, Add, Mul, Sigmoid, ...) with a float output in the graph "
        "onnxruntime optimizes at ORT_ENABLE_EXTENDED, i.e. work not done by integer kernels.",
        "",
    ]
    text = "\n".join(head) + "\n" + "\n".join(md)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".tmp", "w") as f:
        f.write(text)
    os.replace(a.out + ".tmp", a.out)
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    a.launcher.close()
    missed = sum(1 for r in results.values() for _, met in r["verdicts"] if not met)
    total = sum(len(r["verdicts"]) for r in results.values())
    print(f"peers: {total - missed} of {total} targets met; wrote {a.out} "
          f"({time.perf_counter() - t_start:.0f} s)")


def version(pkg):
    try:
        from importlib.metadata import version as v
        return v(pkg)
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
