/* log of four doubles at once, for the entropy observer's threshold search (calib/entropy.c:
 * ~250k logs a tensor; with libm's log the search was 3.3% of the CPU samples of nudenet's
 * 100-sample entropy calibration, 1.8% with this, README). fdlibm's e_log.c on four lanes,
 * for positive normal x only: x = 2^k (1 + f) with
 * 1 + f in [sqrt(2) / 2, sqrt(2)), log(1 + f) = f - hfsq + s (hfsq + R(s^2)), s = f / (2 + f);
 * within one ulp of glibc's log (test_observers: log4d_vs_libm). GCC's vector extensions: the
 * same operations, rounded alike, whatever width the target gives them (no contraction into
 * FMA: the baseline x86-64 target has none, and the AVX2 clone in entropy.c asks for none). */
#ifndef QC_VLOG_H
#define QC_VLOG_H

#include <stdint.h>
#include <string.h>

typedef double qc_v4d __attribute__((vector_size(32)));
typedef int64_t qc_v4l __attribute__((vector_size(32)));

/* *y = log(*x), lanewise (pointers: 32-byte vectors are no argument type of the baseline
 * target's ABI) */
static inline __attribute__((always_inline)) void qc_log4d(const qc_v4d *x, qc_v4d *y)
{
    const double lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01,
                 lg3 = 2.857142874366239149e-01, lg4 = 2.222219843214978396e-01,
                 lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
                 lg7 = 1.479819860511658591e-01;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    qc_v4l bits;
    memcpy(&bits, x, sizeof bits);
    qc_v4l e = (bits >> 52) & 0x7ff, mant = bits & 0x000fffffffffffffLL;
    /* 1 where the mantissa is at or above sqrt(2) - 1 (fdlibm's 0x95f64 test): halve it */
    qc_v4l up = (((mant >> 32) + 0x95f64) >> 20) & 1;
    qc_v4l nb = mant | ((1023 - up) << 52);
    /* k = e - 1023 + up as a double: 2^52 + (e + up) is exact, then the offsets come off */
    qc_v4l kb = (e + up) | 0x4330000000000000LL;
    qc_v4d xn, dk;
    memcpy(&xn, &nb, sizeof xn);
    memcpy(&dk, &kb, sizeof dk);
    dk = dk - (4503599627370496.0 + 1023.0);
    qc_v4d f = xn - 1.0;
    qc_v4d s = f / (2.0 + f), z = s * s, w = z * z;
    qc_v4d t1 = w * (lg2 + w * (lg4 + w * lg6));
    qc_v4d t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)));
    qc_v4d r = t2 + t1, hfsq = 0.5 * f * f;
    *y = dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
}

#endif
