/* QuantizeLinear and DequantizeLinear: per-tensor, per-axis (opset 13) and blocked
 * (opset 21 block_size) for 8/16/32-bit integers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "par.h"
#include "qfuse.h"

/* How a scale (and zero point) maps onto the data, viewed as [outer, d, inner]. */
typedef struct qd_layout {
    int64_t outer, d, inner;
    int64_t block;      /* 0: per-tensor (d = 1) or per-axis; else blocked along the axis */
    int64_t nblocks;    /* scale length along the axis when blocked */
} qd_layout;

static int int_dtype_ok(int dt)
{
    return dt == QC_U8 || dt == QC_I8 || dt == QC_U16 || dt == QC_I16 || dt == QC_I32;
}

static int qd_layout_of(const qc_knode *n, const qc_tensor *x, const qc_tensor *scale,
                        const qc_tensor *zp, qd_layout *L, qc_err *err)
{
    int64_t numel = qc_tensor_numel(x), sn = qc_tensor_numel(scale);
    int64_t block = n->opset >= 21 ? qc_attr_int(n->node, "block_size", 0) : 0;
    memset(L, 0, sizeof *L);
    if (scale->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "scale '%s' has dtype %s; only float32 "
                            "is supported", scale->name ? scale->name : "?",
                            qc_dtype_name(scale->dtype));
    if (zp && qc_tensor_numel(zp) != sn)
        return qc_node_errf(n, err, QC_ESHAPE, "zero point has %lld elements, scale %lld",
                            (long long)qc_tensor_numel(zp), (long long)sn);
    if (block < 0)
        return qc_node_errf(n, err, QC_EINPUT, "block_size %lld is negative", (long long)block);
    if (block == 0 && sn == 1) {
        L->outer = 1;
        L->d = 1;
        L->inner = numel;
        return QC_OK;
    }
    if (n->opset < 13)
        return qc_node_errf(n, err, QC_ESHAPE, "scale must be a scalar before opset 13, got "
                            "%lld elements", (long long)sn);
    int axis, rc;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 1), x->ndim, &axis, err)))
        return rc;
    L->outer = 1;
    L->inner = 1;
    for (int i = 0; i < axis; i++)
        L->outer *= x->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        L->inner *= x->dims[i];
    L->d = x->dims[axis];
    if (block == 0) {
        if (scale->ndim != 1 || scale->dims[0] != L->d)
            return qc_node_errf(n, err, QC_ESHAPE, "per-axis scale must be 1-D of length "
                                "%lld (axis %d), got %lld elements", (long long)L->d, axis,
                                (long long)sn);
        return QC_OK;
    }
    L->block = block;
    L->nblocks = (L->d + block - 1) / block;
    int ok = scale->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim; i++)
        ok = scale->dims[i] == (i == axis ? L->nblocks : x->dims[i]);
    if (!ok)
        return qc_node_errf(n, err, QC_ESHAPE, "blocked scale shape does not match input "
                            "with block_size %lld on axis %d", (long long)block, axis);
    return QC_OK;
}

/* Index of the scale for row (o, a); *varies says whether it also moves with the inner index. */
static inline int64_t qd_scale_base(const qd_layout *L, int64_t o, int64_t a, int *varies)
{
    if (L->block) {
        *varies = 1;
        return (o * L->nblocks + a / L->block) * L->inner;
    }
    *varies = 0;
    return L->d == 1 ? 0 : a;
}

/* ---- QuantizeLinear ------------------------------------------------------------------ */

static int q_out_dtype(const qc_knode *n, int *dt, qc_err *err)
{
    const qc_tensor *zp = n->n_in > 2 ? n->in[2] : NULL;
    int64_t attr = n->opset >= 21 ? qc_attr_int(n->node, "output_dtype", 0) : 0;
    *dt = zp ? zp->dtype : attr ? (int)attr : QC_U8;
    if (zp && attr && attr != zp->dtype)
        return qc_node_errf(n, err, QC_EINPUT, "output_dtype %lld differs from the zero "
                            "point's dtype %s", (long long)attr, qc_dtype_name(zp->dtype));
    if (!int_dtype_ok(*dt))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "quantized dtype %s is not supported",
                            qc_dtype_name(*dt));
    return QC_OK;
}

static int quantize_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    const qc_tensor *zp = n->n_in > 2 ? n->in[2] : NULL;
    qd_layout L;
    int dt, rc;
    if (x->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input dtype %s is not supported "
                            "(float32 only)", qc_dtype_name(x->dtype));
    if ((rc = q_out_dtype(n, &dt, err)) || (rc = qd_layout_of(n, x, n->in[1], zp, &L, err)))
        return rc;
    qc_set_shape(n->out[0], dt, x->ndim, x->dims);
    return QC_OK;
}

/* Ties round to even (nearbyintf under the default rounding mode), then saturate. FT is
 * the type the zero point is added in: float is exact for 8/16-bit ranges, int32 needs
 * double. NaN maps to the zero point. */
#define DEF_QUANTIZE(NAME, T, FT, LO, HI)                                                   \
static void NAME(const float *x, void *yv, const float *sc, const void *zpv,                \
                 const qd_layout *L)                                                        \
{                                                                                           \
    T *y = yv;                                                                              \
    const T *zp = zpv;                                                                      \
    for (int64_t o = 0; o < L->outer; o++) {                                                \
        for (int64_t a = 0; a < L->d; a++) {                                                \
            int varies;                                                                     \
            int64_t base = qd_scale_base(L, o, a, &varies);                                 \
            int64_t off = (o * L->d + a) * L->inner;                                        \
            const float *xr = x + off;                                                      \
            T *yr = y + off;                                                                \
            for (int64_t i = 0; i < L->inner; i++) {                                        \
                int64_t si = varies ? base + i : base;                                      \
                FT z = zp ? (FT)zp[si] : (FT)0;                                             \
                FT q = (FT)nearbyintf(xr[i] / sc[si]) + z;                                  \
                if (q != q)                                                                 \
                    q = z;                                                                  \
                yr[i] = (T)(q < (FT)(LO) ? (FT)(LO) : q > (FT)(HI) ? (FT)(HI) : q);         \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

DEF_QUANTIZE(quantize_u8, uint8_t, float, 0, 255)
DEF_QUANTIZE(quantize_i8, int8_t, float, -128, 127)
DEF_QUANTIZE(quantize_u16, uint16_t, float, 0, 65535)
DEF_QUANTIZE(quantize_i16, int16_t, float, -32768, 32767)
DEF_QUANTIZE(quantize_i32, int32_t, double, -2147483648.0, 2147483647.0)


#ifdef __SSE2__
#include <emmintrin.h>
/* Per-tensor uint8, the activation case calibration and `compare` run millions of times:
 * same arithmetic as DEF_QUANTIZE (IEEE division, round half to even by the default MXCSR
 * mode, zero point added exactly in float, saturation by the packs), eight lanes at a time. */
static void quantize_u8_sse2(const float *x, uint8_t *y, int64_t n, float s, float z)
{
    const __m128 vs = _mm_set1_ps(s), vz = _mm_set1_ps(z), lo = _mm_set1_ps(-1e6f),
                 hi = _mm_set1_ps(1e6f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128 a = _mm_div_ps(_mm_loadu_ps(x + i), vs);
        __m128 b = _mm_div_ps(_mm_loadu_ps(x + i + 4), vs);
        /* NaN lanes become 0 (then the zero point); huge values clamp before cvtps */
        a = _mm_and_ps(_mm_min_ps(_mm_max_ps(a, lo), hi), _mm_cmpord_ps(a, a));
        b = _mm_and_ps(_mm_min_ps(_mm_max_ps(b, lo), hi), _mm_cmpord_ps(b, b));
        __m128i ia = _mm_cvtps_epi32(_mm_add_ps(_mm_cvtepi32_ps(_mm_cvtps_epi32(a)), vz));
        __m128i ib = _mm_cvtps_epi32(_mm_add_ps(_mm_cvtepi32_ps(_mm_cvtps_epi32(b)), vz));
        __m128i p = _mm_packs_epi32(ia, ib);
        _mm_storel_epi64((__m128i *)(y + i), _mm_packus_epi16(p, p));
    }
    for (; i < n; i++) {
        float q = nearbyintf(x[i] / s) + z;
        if (q != q)
            q = z;
        y[i] = (uint8_t)(q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
    }
}

static void dequantize_u8_sse2(const uint8_t *x, float *y, int64_t n, float s, int z)
{
    const __m128 vs = _mm_set1_ps(s);
    const __m128i vz = _mm_set1_epi32(z), zero = _mm_setzero_si128();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(x + i)), zero);
        __m128i a = _mm_sub_epi32(_mm_unpacklo_epi16(v, zero), vz);
        __m128i b = _mm_sub_epi32(_mm_unpackhi_epi16(v, zero), vz);
        _mm_storeu_ps(y + i, _mm_mul_ps(_mm_cvtepi32_ps(a), vs));
        _mm_storeu_ps(y + i + 4, _mm_mul_ps(_mm_cvtepi32_ps(b), vs));
    }
    for (; i < n; i++)
        y[i] = (float)((int)x[i] - z) * s;
}
#endif

#if defined(__SSE2__) && defined(__x86_64__)
#include <immintrin.h>
/* The same arithmetic, sixteen lanes at a time (vdivps is IEEE division, vcvtps2dq rounds
 * by MXCSR as cvtps2dq does). */
static __attribute__((target("avx2"))) int64_t quantize_u8_avx2(const float *x, uint8_t *y,
                                                                int64_t n, float s, float z)
{
    const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z), lo = _mm256_set1_ps(-1e6f),
                 hi = _mm256_set1_ps(1e6f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
        __m256 b = _mm256_div_ps(_mm256_loadu_ps(x + i + 8), vs);
        a = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(a, lo), hi),
                          _mm256_cmp_ps(a, a, _CMP_ORD_Q));
        b = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(b, lo), hi),
                          _mm256_cmp_ps(b, b, _CMP_ORD_Q));
        __m256i ia = _mm256_cvtps_epi32(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_cvtps_epi32(a)),
                                                      vz));
        __m256i ib = _mm256_cvtps_epi32(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_cvtps_epi32(b)),
                                                      vz));
        /* packs works within 128-bit halves: restore the order before the byte pack */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(ia, ib), 0xD8);
        _mm_storeu_si128((__m128i *)(y + i), _mm_packus_epi16(_mm256_castsi256_si128(p),
                                                             _mm256_extracti128_si256(p, 1)));
    }
    return i;
}

static __attribute__((target("avx2"))) int64_t dequantize_u8_avx2(const uint8_t *x, float *y,
                                                                  int64_t n, float s, int z)
{
    const __m256 vs = _mm256_set1_ps(s);
    const __m256i vz = _mm256_set1_epi32(z);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, vz)), vs));
    }
    return i;
}

static int have_avx2(void)
{
    return __builtin_cpu_supports("avx2");     /* a load of libgcc's cpu model: no cache
                                                 * needed (a static one races between shards) */
}
#endif

#ifdef __SSE2__
/* Per-tensor uint8 Q and DQ over the thread pool: elementwise, so any split gives the same
 * bytes. */
#define QD_GRAIN 32768

typedef struct qd_job {
    const void *x;
    void       *y;
    int64_t     n;
    float       s, z;
} qd_job;

static void quantize_items(void *ctx, int64_t lo, int64_t hi)
{
    const qd_job *j = ctx;
    int64_t a = lo * QD_GRAIN, b = hi * QD_GRAIN < j->n ? hi * QD_GRAIN : j->n, i = 0;
    const float *x = (const float *)j->x + a;
    uint8_t *y = (uint8_t *)j->y + a;
#if defined(__x86_64__)
    if (have_avx2())
        i = quantize_u8_avx2(x, y, b - a, j->s, j->z);
#endif
    quantize_u8_sse2(x + i, y + i, b - a - i, j->s, j->z);
}

static void dequantize_items(void *ctx, int64_t lo, int64_t hi)
{
    const qd_job *j = ctx;
    int64_t a = lo * QD_GRAIN, b = hi * QD_GRAIN < j->n ? hi * QD_GRAIN : j->n, i = 0;
    const uint8_t *x = (const uint8_t *)j->x + a;
    float *y = (float *)j->y + a;
#if defined(__x86_64__)
    if (have_avx2())
        i = dequantize_u8_avx2(x, y, b - a, j->s, (int)j->z);
#endif
    dequantize_u8_sse2(x + i, y + i, b - a - i, j->s, (int)j->z);
}
#endif

static int scalar_only(void)
{
    return getenv("QC_QDQ_SCALAR") != NULL;     /* read per run: tests switch it */
}

static int quantize_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    const qc_tensor *zp = n->n_in > 2 ? n->in[2] : NULL;
#ifdef __SSE2__
    if (n->out[0]->dtype == QC_U8 && qc_tensor_numel(n->in[1]) == 1 &&
        (!zp || zp->dtype == QC_U8) && !scalar_only()) {
        qd_job j = { x->data, n->out[0]->data, qc_tensor_numel(x),
                     ((const float *)n->in[1]->data)[0],
                     zp ? (float)((const uint8_t *)zp->data)[0] : 0.0f };
        qc_par_for((j.n + QD_GRAIN - 1) / QD_GRAIN, 1, quantize_items, &j);
        return QC_OK;
    }
#endif
    qd_layout L;
    int rc;
    (void)r;
    if ((rc = qd_layout_of(n, x, n->in[1], zp, &L, err)))
        return rc;
    const float *sc = n->in[1]->data;
    const void *z = zp ? zp->data : NULL;
    void *y = n->out[0]->data;
    switch (n->out[0]->dtype) {
    case QC_U8:  quantize_u8(x->data, y, sc, z, &L); break;
    case QC_I8:  quantize_i8(x->data, y, sc, z, &L); break;
    case QC_U16: quantize_u16(x->data, y, sc, z, &L); break;
    case QC_I16: quantize_i16(x->data, y, sc, z, &L); break;
    case QC_I32: quantize_i32(x->data, y, sc, z, &L); break;
    default:
        return qc_node_errf(n, err, QC_EINTERNAL, "unexpected output dtype %s",
                            qc_dtype_name(n->out[0]->dtype));
    }
    return QC_OK;
}

/* ---- DequantizeLinear ---------------------------------------------------------------- */

static int dequantize_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    const qc_tensor *zp = n->n_in > 2 ? n->in[2] : NULL;
    qd_layout L;
    int rc;
    if (!int_dtype_ok(x->dtype))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    if (zp && zp->dtype != x->dtype)
        return qc_node_errf(n, err, QC_EINPUT, "zero point dtype %s differs from input %s",
                            qc_dtype_name(zp->dtype), qc_dtype_name(x->dtype));
    if ((rc = qd_layout_of(n, x, n->in[1], zp, &L, err)))
        return rc;
    qc_set_shape(n->out[0], QC_F32, x->ndim, x->dims);
    return QC_OK;
}

/* The difference is taken in integers so int32 inputs lose no precision before scaling. */
#define DEF_DEQUANTIZE(NAME, T)                                                             \
static void NAME(const void *xv, float *y, const float *sc, const void *zpv,                \
                 const qd_layout *L)                                                        \
{                                                                                           \
    const T *x = xv, *zp = zpv;                                                             \
    for (int64_t o = 0; o < L->outer; o++) {                                                \
        for (int64_t a = 0; a < L->d; a++) {                                                \
            int varies;                                                                     \
            int64_t base = qd_scale_base(L, o, a, &varies);                                 \
            int64_t off = (o * L->d + a) * L->inner;                                        \
            if (!varies) {                                                                  \
                float s = sc[base];                                                         \
                int64_t z = zp ? (int64_t)zp[base] : 0;                                     \
                for (int64_t i = 0; i < L->inner; i++)                                      \
                    y[off + i] = (float)((int64_t)x[off + i] - z) * s;                      \
                continue;                                                                   \
            }                                                                               \
            for (int64_t i = 0; i < L->inner; i++) {                                        \
                int64_t z = zp ? (int64_t)zp[base + i] : 0;                                 \
                y[off + i] = (float)((int64_t)x[off + i] - z) * sc[base + i];               \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

DEF_DEQUANTIZE(dequantize_u8, uint8_t)
DEF_DEQUANTIZE(dequantize_i8, int8_t)
DEF_DEQUANTIZE(dequantize_u16, uint16_t)
DEF_DEQUANTIZE(dequantize_i16, int16_t)
DEF_DEQUANTIZE(dequantize_i32, int32_t)

static int dequantize_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    const qc_tensor *zp = n->n_in > 2 ? n->in[2] : NULL;
#ifdef __SSE2__
    if (x->dtype == QC_U8 && qc_tensor_numel(n->in[1]) == 1 && !scalar_only()) {
        qd_job j = { x->data, n->out[0]->data, qc_tensor_numel(x),
                     ((const float *)n->in[1]->data)[0],
                     zp ? (float)((const uint8_t *)zp->data)[0] : 0.0f };
        qc_par_for((j.n + QD_GRAIN - 1) / QD_GRAIN, 1, dequantize_items, &j);
        return QC_OK;
    }
#endif
    qd_layout L;
    int rc;
    (void)r;
    if ((rc = qd_layout_of(n, x, n->in[1], zp, &L, err)))
        return rc;
    const float *sc = n->in[1]->data;
    const void *z = zp ? zp->data : NULL;
    float *y = n->out[0]->data;
    switch (x->dtype) {
    case QC_U8:  dequantize_u8(x->data, y, sc, z, &L); break;
    case QC_I8:  dequantize_i8(x->data, y, sc, z, &L); break;
    case QC_U16: dequantize_u16(x->data, y, sc, z, &L); break;
    case QC_I16: dequantize_i16(x->data, y, sc, z, &L); break;
    case QC_I32: dequantize_i32(x->data, y, sc, z, &L); break;
    default:
        return qc_node_errf(n, err, QC_EINTERNAL, "unexpected input dtype %s",
                            qc_dtype_name(x->dtype));
    }
    return QC_OK;
}

/* ---- QuantizeLinear -> DequantizeLinear as one step (qc_exec_opts.fuse_qdq) ------------- */

/* Inputs: x, the scale and the zero point (optional) of a per-tensor 8-bit Q whose DQ had the
 * same ones (qfuse.c checks); y = DQ(Q(x)) without the codes in between. Blocks go through the
 * Q and DQ kernels above into a buffer on the stack, so the values are theirs bit for bit;
 * uint8 on AVX2 does both in registers with the same arithmetic. */
#define FQ_BLOCK 4096

static int fake_quant_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    if (x->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input dtype %s is not supported "
                            "(float32 only)", qc_dtype_name(x->dtype));
    qc_set_shape(n->out[0], QC_F32, x->ndim, x->dims);
    return QC_OK;
}

#if defined(__SSE2__) && defined(__x86_64__)
/* Codes saturate to [cmin, cmax]: [0, 255] for uint8, [-128, 127] for int8 (the scalar
 * DEF_QUANTIZE's saturation; its NaN -> zero point is the 0 quotient here). */
static __attribute__((target("avx2"))) int64_t fake_quant_avx2(const float *x, float *y,
                                                               int64_t n, float s, float z,
                                                               float cmin, float cmax)
{
    const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z), lo = _mm256_set1_ps(-1e6f),
                 hi = _mm256_set1_ps(1e6f), zero = _mm256_set1_ps(cmin),
                 top = _mm256_set1_ps(cmax);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
        a = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(a, lo), hi),
                          _mm256_cmp_ps(a, a, _CMP_ORD_Q));
        /* the code: rounded, plus the zero point, saturated (the packs of the Q kernel);
         * integral floats below 2^24, so the DQ's integer difference is exact here too */
        __m256 t = _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_cvtps_epi32(a)), vz);
        t = _mm256_min_ps(_mm256_max_ps(t, zero), top);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_sub_ps(t, vz), vs));
    }
    return i;
}

/* NaN -> 0 (the Q kernel's zero point), then clamped to [lo, hi] */
static inline __attribute__((always_inline, target("avx512f"))) __m512
nan0_clamp(__m512 c, __m512 lo, __m512 hi)
{
    c = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(c, c, _CMP_ORD_Q), c);
    return _mm512_min_ps(_mm512_max_ps(c, lo), hi);
}

/* 16 at a time without the division: c = x * (1/s), NaN -> 0, clamped to the codes' range
 * less the zero point, [L, U] (Q's saturation, integers); the code is round(c) when c(1 - 2^-20)
 * and c(1 + 2^-20) round to the same integer. They bracket the Q kernel's fl(x / s) (clamped
 * alike): it is within 3 2^-24 |c| of c, the bracket at least 2^-21 |c| wide either side (or
 * both are beyond a saturating bound); rounding to nearest is monotone, so fl(x / s) rounds to
 * that integer too, ties included. Otherwise (a rounding boundary inside the bracket: about
 * 2^-19 |c| of the lanes, more when x sits on half steps) the 16 values take the division.
 * y = code * s is then the DQ kernel's (code - z) s: same integer, same product, +0 for 0. */
static __attribute__((target("avx512f"))) int64_t fake_quant_avx512(const float *x, float *y,
                                                                   int64_t n, float s, float z,
                                                                   float cmin, float cmax)
{
    const float inv = 1.0f / s;
    if (!isnormal(s) || !isnormal(inv))
        return 0;
    const __m512 vs = _mm512_set1_ps(s), vinv = _mm512_set1_ps(inv);
    const __m512 lo = _mm512_set1_ps(cmin - z), hi = _mm512_set1_ps(cmax - z);
    const __m512 dn = _mm512_set1_ps(1.0f - 0x1p-20f), up = _mm512_set1_ps(1.0f + 0x1p-20f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i), c = nan0_clamp(_mm512_mul_ps(v, vinv), lo, hi);
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(c, dn));
        if (_mm512_cmpneq_epi32_mask(q, _mm512_cvtps_epi32(_mm512_mul_ps(c, up))))
            q = _mm512_cvtps_epi32(nan0_clamp(_mm512_div_ps(v, vs), lo, hi));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_cvtepi32_ps(q), vs));
    }
    return i;
}

static int have_avx512(void)
{
    return __builtin_cpu_supports("avx512f");
}
#endif

typedef struct fq_job {
    const float *x;
    float       *y;
    int64_t      n;
    const float *s;
    const void  *zp;
    int          dt;            /* QC_U8 or QC_I8 */
    int          scalar;        /* scalar_only() */
    int          wide;          /* the AVX-512 kernel (QC_FQ_AVX2 in the tests: the AVX2 one) */
} fq_job;

static void fake_quant_block(const fq_job *j, const float *x, float *y, int64_t n)
{
    uint8_t codes[FQ_BLOCK];
    int u8 = j->dt == QC_U8;
    int64_t i = 0;
#if defined(__SSE2__)
    float s = j->s[0], z = !j->zp ? 0.0f : u8 ? (float)((const uint8_t *)j->zp)[0]
                                              : (float)((const int8_t *)j->zp)[0];
#if defined(__x86_64__)
    float cmin = u8 ? 0.0f : -128.0f, cmax = u8 ? 255.0f : 127.0f;
    if (j->wide)
        i = fake_quant_avx512(x, y, n, s, z, cmin, cmax);
    if (!j->scalar && have_avx2())
        i += fake_quant_avx2(x + i, y + i, n - i, s, z, cmin, cmax);
#endif
    if (u8 && !j->scalar) {             /* the tail */
        quantize_u8_sse2(x + i, codes, n - i, s, z);
        dequantize_u8_sse2(codes, y + i, n - i, s, (int)z);
        return;
    }
#endif
    qd_layout L = { 1, 1, n - i, 0, 0 };  /* the tail, or all: the scalar kernels */
    if (u8) {
        quantize_u8(x + i, codes, j->s, j->zp, &L);
        dequantize_u8(codes, y + i, j->s, j->zp, &L);
    } else {
        quantize_i8(x + i, codes, j->s, j->zp, &L);
        dequantize_i8(codes, y + i, j->s, j->zp, &L);
    }
}

static void fake_quant_items(void *ctx, int64_t lo, int64_t hi)
{
    const fq_job *j = ctx;
    int64_t end = hi * FQ_BLOCK < j->n ? hi * FQ_BLOCK : j->n;
    for (int64_t a = lo * FQ_BLOCK; a < end; a += FQ_BLOCK)
        fake_quant_block(j, j->x + a, j->y + a, end - a < FQ_BLOCK ? end - a : FQ_BLOCK);
}

static int fake_quant_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *zp = n->n_in > 2 ? n->in[2] : NULL;
    fq_job j = { n->in[0]->data, n->out[0]->data, qc_tensor_numel(n->in[0]), n->in[1]->data,
                 zp ? zp->data : NULL, zp ? zp->dtype : QC_U8, scalar_only(), 0 };
#if defined(__SSE2__) && defined(__x86_64__)
    j.wide = !j.scalar && have_avx512() && !getenv("QC_FQ_AVX2");
#endif
    (void)r;
    if (qc_tensor_numel(n->in[1]) != 1 || (j.dt != QC_U8 && j.dt != QC_I8))
        return qc_node_errf(n, err, QC_EINTERNAL, "fused QuantizeLinear/DequantizeLinear: "
                            "per-tensor 8-bit only");
    /* grain: 8 blocks (32K values) per item, as the Q and DQ kernels split */
    qc_par_for((j.n + FQ_BLOCK - 1) / FQ_BLOCK, 8, fake_quant_items, &j);
    return QC_OK;
}

const qc_op_def qc_fake_quant = { "QuantizeDequantize", 1, fake_quant_infer, fake_quant_run,
                                  NULL, NULL, NULL };

/* ---- Code table (qc_qlut_fuse): y = lut[code of x] for an 8-bit FQ (q: its scale and zero
 * point as a uint8 code, qfuse.c fq_params) followed by nodes that only depend on its output;
 * the table is the knode's ---------------------------------------------------------------- */

#if defined(__x86_64__) && defined(__GNUC__)
#include "lut_x86.h"

static __attribute__((target("avx512f"))) int64_t code_table_avx512(const float *q,
                                                                      const float *lut,
                                                                      const float *x, float *y,
                                                                      int64_t len)
{
    int64_t i = 0;
    for (; i + 16 <= len; i += 16)
        _mm512_storeu_ps(y + i, qlut16(_mm512_loadu_ps(x + i), q, lut));
    return i;
}

static __attribute__((target("avx2"))) int64_t code_table_avx2(const float *q, const float *lut,
                                                                const float *x, float *y,
                                                                int64_t len)
{
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        _mm256_storeu_ps(y + i, qlut8(_mm256_loadu_ps(x + i), q, lut));
    return i;
}
#endif

/* The codes the QuantizeLinear kernels above give x[0, n) (scale s, uint8 zero point z). */
static void codes_u8(const float *x, uint8_t *codes, int64_t n, float s, uint8_t z, int scalar)
{
#ifdef __SSE2__
    if (!scalar) {
        quantize_u8_sse2(x, codes, n, s, (float)z);
        return;
    }
#endif
    qd_layout L = { 1, 1, n, 0, 0 };
    (void)scalar;
    quantize_u8(x, codes, &s, &z, &L);
}

static void table_block(const float *q, const float *lut, const float *x, float *y,
                        int64_t len, int scalar)
{
    int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!scalar && __builtin_cpu_supports("avx512f"))
        i = code_table_avx512(q, lut, x, y, len);
    else if (!scalar && __builtin_cpu_supports("avx2"))
        i = code_table_avx2(q, lut, x, y, len);
#endif
    uint8_t codes[FQ_BLOCK];
    for (; i < len; i += FQ_BLOCK) {
        int64_t m = len - i < FQ_BLOCK ? len - i : FQ_BLOCK;
        codes_u8(x + i, codes, m, q[0], (uint8_t)q[1], scalar);
        for (int64_t k = 0; k < m; k++)
            y[i + k] = lut[codes[k]];
    }
}

void qc_code_table_apply(const float *q, const float *lut, const float *x, float *y,
                         int64_t len)
{
    table_block(q, lut, x, y, len, scalar_only());
}

typedef struct ct_job {
    const qc_knode *n;
    const float    *x;
    float          *y;
    int64_t         len;
    int             scalar;
} ct_job;

static void code_table_items(void *ctx, int64_t lo, int64_t hi)
{
    const ct_job *j = ctx;
    int64_t a = lo * FQ_BLOCK, b = hi * FQ_BLOCK < j->len ? hi * FQ_BLOCK : j->len;
    table_block(j->n->qact, j->n->lut, j->x + a, j->y + a, b - a, j->scalar);
}

static int code_table_run(qc_knode *n, qc_run *r, qc_err *err)
{
    ct_job j = { n, n->in[0]->data, n->out[0]->data, qc_tensor_numel(n->in[0]),
                 scalar_only() };
    (void)r, (void)err;
    qc_par_for((j.len + FQ_BLOCK - 1) / FQ_BLOCK, 8, code_table_items, &j);
    return QC_OK;
}

const qc_op_def qc_code_table = { "QuantizeDequantizeTable", 1, fake_quant_infer,
                                  code_table_run, NULL, NULL, NULL };

const qc_op_def qc_ops_qdq[] = {
    { "QuantizeLinear",   10, quantize_infer,   quantize_run,   NULL, NULL, NULL },
    { "DequantizeLinear", 10, dequantize_infer, dequantize_run, NULL, NULL, NULL },
    { 0 }
};
