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

#define BLOCK 512

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

void qc_layerstat_add(qc_layerstat *s, const float *ref, const float *got, int64_t n,
                      float lo, float hi)
{
    int64_t i = 0;
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
        int32_t c[4];
        _mm_storeu_si128((__m128i *)c, sat);
        s->saturated += (int64_t)c[0] + c[1] + c[2] + c[3];
        s->ref2 += hsum(r2);
        s->err2 += hsum(e2);
        s->n += BLOCK;
    }
#endif
    layer_scalar(s, ref + i, got + i, n - i, lo, hi);
}

double qc_layerstat_sqnr_db(const qc_layerstat *s)
{
    return s->nonfinite ? -INFINITY : sqnr(s->ref2, s->err2);
}
