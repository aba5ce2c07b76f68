/* Range -> scale and zero point: the only place where a range becomes quantization parameters.
 * Conventions of onnxruntime's quantization tool (compute_scale_zp, get_qmin_qmax_for_qType). */
#ifndef QC_QPARAMS_H
#define QC_QPARAMS_H

#include <stdint.h>
#include "qc_observer.h"

/* Scale and zero point for values in r quantized to [qmin, qmax] (qmin <= 0 <= qmax).
 * - The range is first widened to include 0, so that 0 (padding) is exactly representable.
 * - Asymmetric: scale = (hi - lo) / (qmax - qmin), zero_point = round(qmin - lo / scale)
 *   clamped to [qmin, qmax].
 * - Symmetric: absmax = max(|lo|, |hi|), scale = absmax / ((qmax - qmin) / 2),
 *   zero_point = round((qmin + qmax) / 2): 0 for [-127, 127] (pass qmin = -127 for int8
 *   weights) and [-128, 127], 128 for uint8, 32768 for uint16.
 * - Rounding is half to even, as QuantizeLinear. The scale is float32 computed from a double
 *   quotient.
 * - Never a zero, subnormal or non-finite scale: if the quotient is below FLT_MIN (zero-width
 *   range such as a constant-zero tensor, or a denormal one) the result is scale 1 and
 *   zero_point 0 (the symmetric midpoint for symmetric targets), as ORT does.
 * Returns QC_OK, QC_EUSAGE if not qmin <= 0 <= qmax or qmin == qmax, QC_EINPUT if the range
 * is not finite or lo > hi (outputs then untouched). */
int qc_qparams_from_range(qc_range r, int symmetric, int qmin, int qmax, float *scale,
                          int32_t *zero_point);

/* Integer range of a quantized dtype (QC_U8, QC_I8, QC_U16, QC_I16):
 * full range, or [-127, 127] / [-32767, 32767] for symmetric int8 / int16,
 * or the reduced range (uint8 [0, 127], int8 [-64, 64], uint16 [0, 32767],
 * int16 [-16384, 16384]) when reduce_range is set (x86 without VNNI). QC_EUNSUPPORTED for
 * other dtypes. */
int qc_qrange(int dtype, int symmetric, int reduce_range, int *qmin, int *qmax);

#endif
