/* Range -> scale / zero point (conventions: see qc_qparams.h). */
#include <float.h>
#include <math.h>
#include "qc_qparams.h"

int qc_qparams_from_range(qc_range r, int symmetric, int qmin, int qmax, float *scale,
                          int32_t *zero_point)
{
    if (qmin > 0 || qmax < 0 || qmin >= qmax)
        return QC_EUSAGE;
    if (!isfinite(r.lo) || !isfinite(r.hi) || r.lo > r.hi)
        return QC_EINPUT;
    double lo = fmin(r.lo, 0.0f), hi = fmax(r.hi, 0.0f);
    int32_t mid = (int32_t)nearbyint(((double)qmin + qmax) / 2.0);
    if (symmetric) {
        double a = fmax(-lo, hi);
        lo = -a;
        hi = a;
    }
    /* double: hi - lo of two floats can overflow float */
    double q = (hi - lo) / ((double)qmax - qmin);
    if (!(q >= FLT_MIN) || (float)q < FLT_MIN) {
        *scale = 1.0f;
        *zero_point = symmetric ? mid : 0;
        return QC_OK;
    }
    float s = (float)q;
    *scale = s;
    if (symmetric) {
        *zero_point = mid;
        return QC_OK;
    }
    /* float arithmetic, as ORT's numpy float32 expression; ties to even like QuantizeLinear */
    float z = nearbyintf((float)qmin - (float)lo / s);
    *zero_point = z < (float)qmin ? qmin : z > (float)qmax ? qmax : (int32_t)z;
    return QC_OK;
}

int qc_qrange(int dtype, int symmetric, int reduce_range, int *qmin, int *qmax)
{
    int lo, hi;
    switch (dtype) {
    case QC_U8:
        lo = 0;
        hi = reduce_range ? 127 : 255;
        break;
    case QC_I8:
        lo = reduce_range ? -64 : symmetric ? -127 : -128;
        hi = reduce_range ? 64 : 127;
        break;
    case QC_U16:
        lo = 0;
        hi = reduce_range ? 32767 : 65535;
        break;
    case QC_I16:
        lo = reduce_range ? -16384 : symmetric ? -32767 : -32768;
        hi = reduce_range ? 16384 : 32767;
        break;
    default:
        return QC_EUNSUPPORTED;
    }
    *qmin = lo;
    *qmax = hi;
    return QC_OK;
}
