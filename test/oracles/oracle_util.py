"""Helpers shared by the oracle scripts: data folders as `calibrate` reads them (qc_data.h),
output folders as `calibrate run` writes them, and onnxruntime sessions."""
import os
import sys

import numpy as np

TENSOR_EXTS = (".npy", ".pb")
SAMPLE_EXTS = (".npy", ".pb", ".png", ".jpg", ".jpeg")

ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16,
    "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def die(msg):
    print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr)
    sys.exit(2)


def safe_filename(name):
    """Same mapping as qc_safe_filename(): one path component for a tensor name."""
    if name in ("", ".", ".."):
        name = "_" + name
    return "".join("_" if c in "/\\" or ord(c) < 0x20 or ord(c) == 0x7F else c for c in name)


def sample_dirs(names):
    """Output folder names for samples, as `calibrate run` makes them: the sample name
    without its extension, unless two samples would then share a folder."""
    stems = [n[:n.rfind(".")] if n.rfind(".") > 0 else n for n in names]
    use = stems if len(set(stems)) == len(stems) else names
    return [safe_filename(n) for n in use]


def output_files(names):
    """Output file names as `calibrate run` makes them ("a/b" and "a_b" get numbered)."""
    files = []
    for j, name in enumerate(names):
        f = safe_filename(name) + ".npy"
        while f in files:
            f = f"{safe_filename(name)}_{j}.npy"
            if f in files:
                f = f"{safe_filename(name)}_{j}_.npy"
        files.append(f)
    return files


def load_tensor(path):
    if path.lower().endswith(".npy"):
        return np.load(path, allow_pickle=False)
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def list_samples(data_dir):
    """[(sample name, {input key: path})] in strcmp order. Input keys are file stems: the
    input's (safe) name or "input_<k>"; a single-file sample has the key None."""
    if not os.path.isdir(data_dir):
        die(f"{data_dir}: not a folder")
    out = []
    for name in sorted(os.listdir(data_dir)):
        if name.startswith("."):
            continue
        path = os.path.join(data_dir, name)
        if os.path.isdir(path):
            files = {}
            for f in sorted(os.listdir(path)):
                stem, ext = os.path.splitext(f)
                if ext.lower() in TENSOR_EXTS and not f.startswith("."):
                    files[stem] = os.path.join(path, f)
            out.append((name, files))
        elif os.path.splitext(name)[1].lower() in SAMPLE_EXTS:
            out.append((name, {None: path}))
    return out


def feeds_for(sample, inputs):
    """Input arrays for one sample, converted to each input's dtype and batch-expanded the
    way `calibrate` does (a file one rank short gets a leading dim of 1)."""
    name, files = sample
    feeds = {}
    for k, inp in enumerate(inputs):
        if None in files:
            if len(inputs) != 1:
                die(f"{name}: single-file samples need a single-input model")
            path = files[None]
        else:
            path = files.get(safe_filename(inp.name)) or files.get(f"input_{k}")
            if path is None:
                die(f"{name}: no file for input '{inp.name}'")
        if not path.lower().endswith(TENSOR_EXTS):
            die(f"{path}: images are not supported by the oracle; use .npy samples")
        x = load_tensor(path)
        want = ORT_DTYPES.get(inp.type)
        if want is None:
            die(f"input '{inp.name}' has unsupported type {inp.type}")
        if x.dtype in (np.float64, np.float16) and want == np.float32:
            x = x.astype(np.float32)
        if x.dtype != want:
            die(f"{path}: dtype {x.dtype}, model input '{inp.name}' wants {np.dtype(want)}")
        if isinstance(inp.shape, list) and x.ndim == len(inp.shape) - 1:
            x = x[None]
        feeds[inp.name] = np.ascontiguousarray(x)
    return feeds


def ort_session(model_path, threads=2, opt="all"):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt]
    so.log_severity_level = 3
    return ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])


def save_npy(path, arr):
    tmp = path + ".tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


# ok/FAIL lines for the test suites (tools/run_tests.sh counts them); failures() for the
# process exit status.
_FAILED = 0


def ok(name, msg):
    print(f"ok   {name}: {msg}", flush=True)


def fail(name, msg):
    global _FAILED
    _FAILED += 1
    print(f"FAIL {name}: {msg}", flush=True)


def failures():
    return _FAILED
