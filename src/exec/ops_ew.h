/* Private to the elementwise family: ops_unary.c and ops_binary.c each dispatch all of their
 * ops through one prepare/infer/run triple (the op code is resolved once, at prepare time, from
 * op_type); ops_elementwise.c lists them in the qc_ops_elementwise table. */
#ifndef QC_OPS_EW_H
#define QC_OPS_EW_H

#include <stdint.h>
#include <string.h>
#include "ops.h"

/* Hot map loops get AVX-512 and AVX2 clones picked at load time (ifunc); the baseline build
 * stays x86-64 so the binary runs anywhere. Every clone does the same IEEE operations per
 * element in the same order (no -ffast-math, -ffp-contract=off), so all give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define QC_EW_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QC_EW_SIMD_CLONES
#endif

/* exp(x) in float within ~1.5 ulp of expf (Cephes range reduction and polynomial), written
 * without calls or float-to-int conversions so that map loops over it vectorize: libm expf
 * costs ~2 ns an element, 5x what ORT's vectorized Sigmoid takes. Inputs are clamped to
 * [-87.34, 88.38], so huge arguments give FLT_MAX-sized or FLT_MIN-sized results rather than
 * inf or 0; NaN stays NaN. */
static inline float qc_ew_expf(float x)
{
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447505531f ? -87.3365447505531f : x;
    /* n = round(x / ln 2) through the 1.5 * 2^23 trick, whose low mantissa bits hold n */
    float t = x * 1.44269504088896341f + 12582912.0f, n = t - 12582912.0f, s;
    int32_t bits;
    memcpy(&bits, &t, 4);
    bits = (int32_t)((uint32_t)(bits - 0x4B400000 + 127) << 23);
    memcpy(&s, &bits, 4);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return (p * r * r + r + 1.0f) * s;
}

/* y = x * Sigmoid(x) over n values, the bits of the Sigmoid kernel followed by a Mul (an
 * elementwise chain of the two runs it in one pass: ewchain.c), except for NaN inputs, whose
 * result is one of the two NaN operands (which one, the Mul kernel's code decides): returns
 * 1 if there was one, for the caller to run the two kernels instead. */
int qc_ew_silu(const float *x, float *y, int64_t n);
/* qc_ew_silu's portable code (the clones), whatever the CPU: for the tests */
int qc_ew_silu_clone(const float *x, float *y, int64_t n);

int  qc_ew_unary_prepare(qc_knode *n, qc_err *err);
int  qc_ew_unary_infer(qc_knode *n, qc_err *err);
int  qc_ew_unary_run(qc_knode *n, qc_run *r, qc_err *err);

/* Binary, variadic (Sum/Mean/Max/Min) and ternary (Where) broadcasting ops. */
int  qc_ew_binary_prepare(qc_knode *n, qc_err *err);
int  qc_ew_binary_infer(qc_knode *n, qc_err *err);
int  qc_ew_binary_run(qc_knode *n, qc_run *r, qc_err *err);

#endif
