/* Quantization parameters as files: qcal's JSON sidecar (observed range, chosen range, scale,
 * zero point and method of every quantized tensor). Written atomically. */
#ifndef QC_PARAMS_H
#define QC_PARAMS_H

#include "qc_quant.h"

int qc_params_write_json(const qc_quantizer *q, const char *path, qc_err *err);
/* TensorRT calibration cache (activation scales, symmetric int8). */
int qc_params_write_trt_cache(const qc_quantizer *q, const char *path, qc_err *err);
/* onnxruntime TensorQuantOverrides JSON (activation rmin/rmax, scale, zero point). */
int qc_params_write_ort_overrides(const qc_quantizer *q, const char *path, qc_err *err);
/* Applies the activation ranges of a --params-out file to q (no data needed); *n_applied
 * counts the tensors q knew, *n_axis_weights the weights the file holds per channel (weights
 * are quantized again from the model with q's options: a caller planning per-tensor weights
 * can say so). QC_EINPUT names the file and the problem. */
int qc_params_read_json(qc_quantizer *q, const char *path, int *n_applied,
                        int *n_axis_weights, qc_err *err);

#endif
