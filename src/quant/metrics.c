/* Error metrics of a quantized model against its float reference: SQNR, cosine similarity,
 * max abs error, top-1 agreement, per-layer SQNR and saturation. Sums are kept in double;
 * the SSE2 paths sum blocks of BLOCK values in float first (relative error ~1e-5, far below
 * what a ranking can see) and fall back to the exact scalar loop for any block holding a
 * non-finite value. */
#include <math.h>
#include <string.h>
#include "qc_compare.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_LS_AVX2 1
#endif

#define BLOCK QC_LAYERSTAT_BLOCK      /* the errstat paths use the same blocks */

static void errstat_scalar(qc_errstat *s, const float *ref, const float *got, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double r = ref[i], g = got[i];
        if (!isfinite(r))
            continue;
        if (!isfinite(g)) {
            s->nonfinite++;
            continue;
        }
        double d = g - r;
        s->ref2 += r * r;
        s->got2 += g * g;
        s->dot += r * g;
        s->err2 += d * d;
        if (fabs(d) > s->max_abs)
            s->max_abs = fabs(d);
        s->n++;
    }
}

#if defined(__SSE2__)
static float hsum(__m128 v)
{
    float t[4];
    _mm_storeu_ps(t, v);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

static float hmax(__m128 v)
{
    float t[4];
    _mm_storeu_ps(t, v);
    float a = t[0] > t[1] ? t[0] : t[1], b = t[2] > t[3] ? t[2] : t[3];
    return a > b ? a : b;
}
#endif

void qc_errstat_add(qc_errstat *s, const float *ref, const float *got, int64_t n)
{
    int64_t i = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps();
    const __m128 absmask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    for (; i + BLOCK <= n; i += BLOCK) {
        __m128 r2 = zero, g2 = zero, rg = zero, e2 = zero, mx = zero, bad = zero;
        for (int k = 0; k < BLOCK; k += 4) {
            __m128 r = _mm_loadu_ps(ref + i + k), g = _mm_loadu_ps(got + i + k);
            __m128 d = _mm_sub_ps(g, r);
            /* x * 0 is NaN exactly for NaN and +-inf */
            bad = _mm_or_ps(bad, _mm_cmpunord_ps(_mm_mul_ps(r, zero), _mm_mul_ps(g, zero)));
            r2 = _mm_add_ps(r2, _mm_mul_ps(r, r));
            g2 = _mm_add_ps(g2, _mm_mul_ps(g, g));
            rg = _mm_add_ps(rg, _mm_mul_ps(r, g));
            e2 = _mm_add_ps(e2, _mm_mul_ps(d, d));
            mx = _mm_max_ps(mx, _mm_and_ps(d, absmask));
        }
        if (_mm_movemask_ps(bad)) {
            errstat_scalar(s, ref + i, got + i, BLOCK);
            continue;
        }
        s->ref2 += hsum(r2);
        s->got2 += hsum(g2);
        s->dot += hsum(rg);
        s->err2 += hsum(e2);
        double m = hmax(mx);
        if (m > s->max_abs)
            s->max_abs = m;
        s->n += BLOCK;
    }
#endif
    errstat_scalar(s, ref + i, got + i, n - i);
}

int64_t qc_argmax(const float *x, int64_t n)
{
    int64_t best = -1;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i]) && (best < 0 || x[i] > x[best]))
            best = i;
    return n > 0 && best < 0 ? 0 : best;
}

void qc_errstat_add_top1(qc_errstat *s, const float *ref, const float *got, int64_t rows,
                         int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        s->top1_rows++;
        s->top1_agree += qc_argmax(ref + r * cols, cols) == qc_argmax(got + r * cols, cols);
    }
}

static double sqnr(double sig, double err)
{
    if (err == 0)
        return INFINITY;
    if (sig == 0)
        return -INFINITY;
    return 10.0 * log10(sig / err);
}

double qc_errstat_sqnr_db(const qc_errstat *s)
{
    return s->nonfinite ? -INFINITY : sqnr(s->ref2, s->err2);
}

double qc_errstat_cosine(const qc_errstat *s)
{
    if (s->nonfinite || s->n == 0)
        return NAN;
    if (s->ref2 == 0 && s->got2 == 0)
        return 1.0;
    if (s->ref2 == 0 || s->got2 == 0)
        return 0.0;
    double c = s->dot / sqrt(s->ref2 * s->got2);
    return c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
}

double qc_errstat_top1(const qc_errstat *s)
{
    return s->top1_rows ? (double)s->top1_agree / (double)s->top1_rows : NAN;
}

double qc_metric_sqnr_db(const float *ref, const float *got, int64_t n)
{
    qc_errstat s;
    memset(&s, 0, sizeof s);
    qc_errstat_add(&s, ref, got, n);
    return qc_errstat_sqnr_db(&s);
}

double qc_metric_cosine(const float *ref, const float *got, int64_t n)
{
    qc_errstat s;
    memset(&s, 0, sizeof s);
    qc_errstat_add(&s, ref, got, n);
    return qc_errstat_cosine(&s);
}

double qc_metric_max_abs(const float *ref, const float *got, int64_t n)
{
    qc_errstat s;
    memset(&s, 0, sizeof s);
    qc_errstat_add(&s, ref, got, n);
    return s.nonfinite ? INFINITY : s.max_abs;
}

double qc_metric_top1(const float *ref, const float *got, int64_t rows, int64_t cols)
{
    qc_errstat s;
    memset(&s, 0, sizeof s);
    qc_errstat_add_top1(&s, ref, got, rows, cols);
    return qc_errstat_top1(&s);
}

static void layer_scalar(qc_layerstat *s, const float *ref, const float *got, int64_t n,
                         float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        double r = ref[i], g = got[i];
        if (!isfinite(r))
            continue;
        s->n++;
        s->saturated += ref[i] < lo || ref[i] > hi;
        if (!isfinite(g)) {
            s->nonfinite++;
            continue;
        }
        s->ref2 += r * r;
        s->err2 += (g - r) * (g - r);
    }
}

/* One block's float partial sums added to s: the SSE2 loop and the AVX2 path both end so. */
#if defined(__SSE2__)
static void ls_block_sums(qc_layerstat *s, __m128 r2, __m128 e2, __m128i sat)
{
    int32_t c[4];
    _mm_storeu_si128((__m128i *)c, sat);
    s->saturated += (int64_t)c[0] + c[1] + c[2] + c[3];
    s->ref2 += hsum(r2);
    s->err2 += hsum(e2);
    s->n += BLOCK;
}
#endif
#if defined(HAVE_LS_AVX2)

/* Two blocks side by side, one per 128-bit half: each half runs the SSE2 loop's operations in
 * its order, so the sums are the same bits. The reference was written by another executor run
 * long before and comes from memory (the hardware prefetcher keeps up badly here), the
 * quantized value was just written: prefetching the reference a few KiB ahead and breaking
 * the add chains makes this about twice as fast. Returns the values done. */
#define LS_PREFETCH 2048                 /* floats ahead: two block pairs */
/* per_block: block k's sums go to s[k] instead of all to s[0] (qc_layerstat_blocks). */
__attribute__((target("avx2"))) static int64_t layer_avx2(qc_layerstat *s, const float *ref,
                                                          const float *got, int64_t n,
                                                          float lo, float hi, int per_block)
{
    const __m256 zero = _mm256_setzero_ps(), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 2 * BLOCK <= n; i += 2 * BLOCK) {
        const float *ra = ref + i, *rb = ref + i + BLOCK, *ga = got + i, *gb = got + i + BLOCK;
        __m256 r2 = zero, e2 = zero, bad = zero;
        __m256i sat = _mm256_setzero_si256();
        for (int k = 0; k < BLOCK; k += 4) {
            if ((k & 15) == 0) {        /* one cache line of each block */
                _mm_prefetch((const char *)(ra + k + LS_PREFETCH), _MM_HINT_T0);
                _mm_prefetch((const char *)(rb + k + LS_PREFETCH), _MM_HINT_T0);
            }
            __m256 r = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(ra + k)),
                                            _mm_loadu_ps(rb + k), 1);
            __m256 g = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(ga + k)),
                                            _mm_loadu_ps(gb + k), 1);
            __m256 d = _mm256_sub_ps(g, r);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_mul_ps(r, zero),
                                                  _mm256_mul_ps(g, zero), _CMP_UNORD_Q));
            r2 = _mm256_add_ps(r2, _mm256_mul_ps(r, r));
            e2 = _mm256_add_ps(e2, _mm256_mul_ps(d, d));
            __m256 out = _mm256_or_ps(_mm256_cmp_ps(r, vlo, _CMP_LT_OQ),
                                      _mm256_cmp_ps(r, vhi, _CMP_GT_OQ));
            sat = _mm256_sub_epi32(sat, _mm256_castps_si256(out));
        }
        int m = _mm256_movemask_ps(bad);
        qc_layerstat *sa = per_block ? &s[i / BLOCK] : s, *sb = per_block ? sa + 1 : s;
        if (m & 0x0f)
            layer_scalar(sa, ra, ga, BLOCK, lo, hi);
        else
            ls_block_sums(sa, _mm256_castps256_ps128(r2), _mm256_castps256_ps128(e2),
                          _mm256_castsi256_si128(sat));
        if (m & 0xf0)
            layer_scalar(sb, rb, gb, BLOCK, lo, hi);
        else
            ls_block_sums(sb, _mm256_extractf128_ps(r2, 1), _mm256_extractf128_ps(e2, 1),
                          _mm256_extracti128_si256(sat, 1));
    }
    return i;
}

#endif

void qc_layerstat_add(qc_layerstat *s, const float *ref, const float *got, int64_t n,
                      float lo, float hi)
{
    int64_t i = 0;
#if defined(HAVE_LS_AVX2)
    if (n >= 2 * BLOCK && __builtin_cpu_supports("avx2"))
        i = layer_avx2(s, ref, got, n, lo, hi, 0);
#endif
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps(), vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
    for (; i + BLOCK <= n; i += BLOCK) {
        __m128 r2 = zero, e2 = zero, bad = zero;
        __m128i sat = _mm_setzero_si128();
        for (int k = 0; k < BLOCK; k += 4) {
            __m128 r = _mm_loadu_ps(ref + i + k), g = _mm_loadu_ps(got + i + k);
            __m128 d = _mm_sub_ps(g, r);
            bad = _mm_or_ps(bad, _mm_cmpunord_ps(_mm_mul_ps(r, zero), _mm_mul_ps(g, zero)));
            r2 = _mm_add_ps(r2, _mm_mul_ps(r, r));
            e2 = _mm_add_ps(e2, _mm_mul_ps(d, d));
            __m128 out = _mm_or_ps(_mm_cmplt_ps(r, vlo), _mm_cmpgt_ps(r, vhi));
            sat = _mm_sub_epi32(sat, _mm_castps_si128(out));    /* mask is -1 */
        }
        if (_mm_movemask_ps(bad)) {
            layer_scalar(s, ref + i, got + i, BLOCK, lo, hi);
            continue;
        }
        ls_block_sums(s, r2, e2, sat);
    }
#endif
    layer_scalar(s, ref + i, got + i, n - i, lo, hi);
}

void qc_layerstat_blocks(qc_layerstat *part, const float *ref, const float *got,
                         int64_t n_blocks, float lo, float hi)
{
    int64_t b = 0;
    memset(part, 0, (size_t)n_blocks * sizeof *part);
#if defined(HAVE_LS_AVX2)
    if (n_blocks >= 2 && __builtin_cpu_supports("avx2"))
        b = layer_avx2(part, ref, got, n_blocks * BLOCK, lo, hi, 1) / BLOCK;
#endif
    for (; b < n_blocks; b++)
        qc_layerstat_add(&part[b], ref + b * BLOCK, got + b * BLOCK, BLOCK, lo, hi);
}

double qc_layerstat_sqnr_db(const qc_layerstat *s)
{
    return s->nonfinite ? -INFINITY : sqnr(s->ref2, s->err2);
}
