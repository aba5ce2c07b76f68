/* Quantization parameters as files: qcal's JSON sidecar (observed range, chosen range, scale,
 * zero point and method of every quantized tensor). Written atomically. */
#ifndef QC_PARAMS_H
#define QC_PARAMS_H

#include "qc_quant.h"

int qc_params_write_json(const qc_quantizer *q, const char *path, qc_err *err);

#endif
