/* The histogram shared by the percentile, mse and entropy observers (grid: see hist.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "hist.h"

/* ---- grid ---- */

static int cells_fit(double lo, double hi, int k, int nbins)
{
    return floor(ldexp(hi, -k)) - floor(ldexp(lo, -k)) <= (double)(nbins - 1);
}

void qc_hist_grid(int nbins, double lo, double hi, int *k_out, int64_t *j0_out)
{
    /* The floor on k keeps cell indices below 2^42 (exact in double, far from int64 limits);
     * it is below float resolution, so it only matters for constant data. */
    double a = fmax(fabs(lo), fabs(hi));
    int k = a > 0 ? ilogb(a) - 40 : -200;
    double d = hi - lo;
    if (d > 0) {
        /* 2^ks <= d / (2 (nbins + 1)): too fine to fit, so the search starts below the answer */
        int ks = ilogb(d / (nbins + 1.0)) - 1;
        if (ks > k)
            k = ks;
    }
    while (!cells_fit(lo, hi, k, nbins))
        k++;
    *k_out = k;
    *j0_out = (int64_t)floor(ldexp(lo, -k));
}

double qc_hist_width(const qc_hist *h)
{
    return ldexp(1.0, h->k);
}

double qc_hist_edge(const qc_hist *h, int64_t b)
{
    return ldexp((double)(h->j0 + b), h->k);
}

void qc_hist_used(const qc_hist *h, int *first, int *last)
{
    int a = 0, b = h->nbins - 1;
    while (a < b && !h->counts[a])
        a++;
    while (b > a && !h->counts[b])
        b--;
    *first = a;
    *last = b;
}

static void grid_of(const qc_hist *h, double lo, double hi, int *k, int64_t *j0)
{
    if (h->absval)
        qc_hist_grid(h->nbins, 0.0, fmax(fabs(lo), fabs(hi)), k, j0);
    else
        qc_hist_grid(h->nbins, lo, hi, k, j0);
}

/* floor(j / 2^s) for s >= 0 */
static int64_t floordiv_pow2(int64_t j, int s)
{
    if (s == 0)
        return j;
    if (s >= 63)
        return j < 0 ? -1 : 0;
    return j >= 0 ? j >> s : -((-(j + 1)) >> s) - 1;
}

/* Adds the counts of a histogram on grid (k, j0) into dst on grid (k2 >= k, j02). */
static void add_rebinned(uint64_t *dst, int nbins, int64_t j02, int k2, const uint64_t *src,
                         int64_t j0, int k)
{
    for (int b = 0; b < nbins; b++) {
        if (!src[b])
            continue;
        int64_t nb = floordiv_pow2(j0 + b, k2 - k) - j02;
        /* the new grid covers every old value, so nb is in range; clamp all the same */
        nb = nb < 0 ? 0 : nb >= nbins ? nbins - 1 : nb;
        dst[nb] += src[b];
    }
}

static void regrid(qc_hist *h, int k2, int64_t j02, uint64_t *scratch)
{
    if (k2 == h->k && j02 == h->j0)
        return;
    memset(scratch, 0, (size_t)h->nbins * sizeof *scratch);
    add_rebinned(scratch, h->nbins, j02, k2, h->counts, h->j0, h->k);
    memcpy(h->counts, scratch, (size_t)h->nbins * sizeof *scratch);
    h->k = k2;
    h->j0 = j02;
}

/* Makes the grid cover [lo, hi] too. */
static void grow(qc_hist *h, float lo, float hi, uint64_t *scratch)
{
    int k2;
    int64_t j02;
    float nlo = h->total ? fminf(h->lo, lo) : lo, nhi = h->total ? fmaxf(h->hi, hi) : hi;
    grid_of(h, nlo, nhi, &k2, &j02);
    if (h->total) {
        regrid(h, k2, j02, scratch);
    } else {
        h->k = k2;
        h->j0 = j02;
    }
    h->lo = nlo;
    h->hi = nhi;
}

/* ---- binning: the hot loop ---- */

/* Values outside [mn, mx] are the non-finite ones (already counted by the scan). The general
 * path works in double (x * 2^-k is exact there for every grid). */
static void bin_abs(uint64_t *cnt, int nbins, double s, const float *x, int64_t n, float mn,
                    float mx)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!(v >= mn && v <= mx))
            continue;
        int64_t b = (int64_t)((double)fabsf(v) * s);   /* >= 0: truncation is floor */
        cnt[b < nbins ? b : nbins - 1]++;
    }
}

static void bin_signed(uint64_t *cnt, int nbins, double s, int64_t j0, const float *x, int64_t n,
                       float mn, float mx)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!(v >= mn && v <= mx))
            continue;
        double t = (double)v * s;
        int64_t j = (int64_t)t;
        j -= (double)j > t;                             /* floor */
        uint64_t b = (uint64_t)(j - j0);
        cnt[b < (uint64_t)nbins ? b : (uint64_t)(j < j0 ? 0 : nbins - 1)]++;
    }
}

#if defined(__SSE2__)
#include <emmintrin.h>
#define BLOCK 1024

/* Fast path, used when 2^-k is a normal float and every cell index fits in 23 bits: then
 * v * 2^-k is exact in float too (except when it underflows, handled below), and the bin
 * indices of 4 values are computed at once; non-finite values get index -1. */
static int fast_ok(const qc_hist *h)
{
    return h->k > -120 && h->k < 120 && h->j0 > -(1 << 22) && h->j0 < (1 << 22) &&
           h->nbins <= (1 << 20);
}

static void bin_fast(qc_hist *h, const float *x, int64_t n, float mn, float mx)
{
    int32_t idx[BLOCK];
    const __m128 vs = _mm_set1_ps(ldexpf(1.0f, -h->k)), vmn = _mm_set1_ps(mn);
    const __m128 vmx = _mm_set1_ps(mx), zero = _mm_setzero_ps();
    const __m128 absmask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    const __m128i j0 = _mm_set1_epi32((int32_t)h->j0), none = _mm_set1_epi32(-1);
    uint64_t *cnt = h->counts;
    uint32_t nb = (uint32_t)h->nbins;
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        int m = n - i0 < BLOCK ? (int)(n - i0) : BLOCK, i = 0;
        const float *xb = x + i0;
        for (; i + 4 <= m; i += 4) {
            __m128 v = _mm_loadu_ps(xb + i);
            __m128 ok = _mm_and_ps(_mm_cmpge_ps(v, vmn), _mm_cmple_ps(v, vmx));
            __m128i j;
            if (h->absval) {
                j = _mm_cvttps_epi32(_mm_and_ps(_mm_mul_ps(_mm_and_ps(v, absmask), vs), ok));
            } else {
                __m128 t = _mm_and_ps(_mm_mul_ps(v, vs), ok);
                j = _mm_cvttps_epi32(t);
                /* floor: truncation rounded negatives up; a negative value whose scaled
                 * product underflowed to -0 belongs to cell -1 */
                __m128 up = _mm_or_ps(_mm_cmpgt_ps(_mm_cvtepi32_ps(j), t),
                                      _mm_and_ps(_mm_cmpeq_ps(t, zero), _mm_cmplt_ps(v, zero)));
                j = _mm_sub_epi32(_mm_add_epi32(j, _mm_castps_si128(up)), j0);
            }
            __m128i okm = _mm_castps_si128(ok);
            j = _mm_or_si128(_mm_and_si128(okm, j), _mm_andnot_si128(okm, none));
            _mm_storeu_si128((__m128i *)(idx + i), j);
        }
        for (; i < m; i++) {
            float v = xb[i];
            int32_t j = -1;
            if (v >= mn && v <= mx) {
                float t = (h->absval ? fabsf(v) : v) * ldexpf(1.0f, -h->k);
                j = (int32_t)t;
                j -= ((float)j > t) | ((t == 0.0f) & (v < 0.0f));
                j -= (int32_t)h->j0;
            }
            idx[i] = j;
        }
        for (i = 0; i < m; i++) {
            uint32_t b = (uint32_t)idx[i];
            if (b < nb)
                cnt[b]++;
        }
    }
}
#endif

static void bin_run(qc_hist *h, const float *x, int64_t n, float mn, float mx)
{
#if defined(__SSE2__)
    if (fast_ok(h)) {
        bin_fast(h, x, n, mn, mx);
        return;
    }
#endif
    double sc = ldexp(1.0, -h->k);
    if (h->absval)
        bin_abs(h->counts, h->nbins, sc, x, n, mn, mx);
    else
        bin_signed(h->counts, h->nbins, sc, h->j0, x, n, mn, mx);
}

/* ---- observer glue ---- */

int qc_hist_obs_init(qc_observer *o, int n_ch, int absval, qc_err *err)
{
    int nb = o->cfg.bins;
    qc_hist_obs *s = qc_obs_alloc(o, 1, sizeof *s);
    if (!s)
        goto nomem;
    o->state = s;
    s->ch = qc_obs_alloc(o, (size_t)n_ch, sizeof *s->ch);
    s->scratch = qc_obs_alloc(o, (size_t)nb, sizeof *s->scratch);
    if (!s->ch || !s->scratch)
        goto nomem;
    for (int c = 0; c < n_ch; c++) {
        qc_hist *h = &s->ch[c];
        h->nbins = nb;
        h->absval = absval;
        h->lo = INFINITY;
        h->hi = -INFINITY;
        h->counts = qc_obs_alloc(o, (size_t)nb, sizeof *h->counts);
        if (!h->counts)
            goto nomem;
    }
    return QC_OK;
nomem:
    return qc_errf(err, QC_ENOMEM, "observer '%s': out of memory for %d channels x %d bins",
                   o->ops->name, n_ch, nb);
}

int qc_hist_obs_update(qc_observer *o, const qc_obs_view *v, qc_err *err)
{
    qc_hist_obs *s = o->state;
    (void)err;
    for (int c = 0; c < v->n_ch; c++) {
        qc_hist *h = &s->ch[c];
        float mn, mx;
        int64_t good = qc_obs_scan_channel(o, v, c, &mn, &mx);
        if (!good)
            continue;
        grow(h, mn, mx, s->scratch);
        for (int64_t k = 0; k < v->outer; k++)
            bin_run(h, v->x + (k * v->n_ch + c) * v->inner, v->inner, mn, mx);
        h->total += (uint64_t)good;
    }
    return QC_OK;
}

int qc_hist_obs_merge(qc_observer *o, const qc_observer *other, qc_err *err)
{
    qc_hist_obs *s = o->state;
    const qc_hist_obs *t = other->state;
    (void)err;
    for (int c = 0; c < o->n_channels; c++) {
        qc_hist *h = &s->ch[c];
        const qc_hist *g = &t->ch[c];
        if (!g->total)
            continue;
        grow(h, g->lo, g->hi, s->scratch);
        add_rebinned(h->counts, h->nbins, h->j0, h->k, g->counts, g->j0, g->k);
        h->total += g->total;
    }
    return QC_OK;
}

void qc_hist_obs_release(qc_observer *o)
{
    qc_hist_obs *s = o->state;
    if (s) {
        for (int c = 0; s->ch && c < o->n_channels; c++)
            free(s->ch[c].counts);
        free(s->ch);
        free(s->scratch);
        free(s);
    }
    o->state = NULL;
}
