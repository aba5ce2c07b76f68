/* The histogram shared by the percentile, mse and entropy observers (grid: see hist.h). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "hist.h"
#include "par.h"
#include "scan.h"

/* ---- grid ---- */

/* Lattice cell of x on grid k: floor(x / 2^k) for x >= 0; for x < 0 the mirror image of
 * |x|'s cell, -floor(|x| / 2^k) - 1 (its bitwise complement). So a cell covers [c, c + 1) 2^k
 * for c >= 0 and (c, c + 1] 2^k for c < 0: the cells are symmetric about 0, and the |x|
 * histogram folds out of the signed one exactly (qc_hist_view), ties included. */
static double mcell(double x, int k)
{
    return x < 0 ? -floor(ldexp(-x, -k)) - 1 : floor(ldexp(x, -k));
}

static int cells_fit(double lo, double hi, int k, int nbins)
{
    return mcell(hi, k) - mcell(lo, k) <= (double)(nbins - 1);
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
    *j0_out = (int64_t)mcell(lo, k);
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

/* The grid of a dual histogram (hist.h): the finer of the signed and the |x| grid of vb bins,
 * so that both are coarsenings of it. At the |x| grid's k every value's cell lies in [-vb, vb),
 * so [lo, hi] spans at most 2 vb cells. */
static void dual_grid(int vb, double lo, double hi, int *k, int64_t *j0)
{
    int ka;
    int64_t ja;
    qc_hist_grid(vb, lo, hi, k, j0);
    qc_hist_grid(vb, 0.0, fmax(fabs(lo), fabs(hi)), &ka, &ja);
    if (ka < *k) {
        *k = ka;
        *j0 = (int64_t)mcell(lo, ka);
    }
}

static void grid_of(const qc_hist *h, double lo, double hi, int *k, int64_t *j0)
{
    if (h->vbins)
        dual_grid(h->vbins, lo, hi, k, j0);
    else if (h->absval)
        qc_hist_grid(h->nbins, 0.0, fmax(fabs(lo), fabs(hi)), k, j0);
    else
        qc_hist_grid(h->nbins, lo, hi, k, j0);
}

/* floor(j / 2^s) for s >= 0: the cell on the coarser grid for either sign (for j < 0 it is
 * ~(~j >> s), the complement of |x|'s coarser cell) */
static int64_t floordiv_pow2(int64_t j, int s)
{
    if (s == 0)
        return j;
    if (s >= 63)
        return j < 0 ? -1 : 0;
    return j >= 0 ? j >> s : -((-(j + 1)) >> s) - 1;
}

/* Adds the counts of a histogram of n_src bins on grid (k, j0) into dst (nbins bins) on grid
 * (k2 >= k, j02). */
static void add_rebinned(uint64_t *dst, int nbins, int64_t j02, int k2, const uint64_t *src,
                         int n_src, int64_t j0, int k)
{
    for (int b = 0; b < n_src; b++) {
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
    add_rebinned(scratch, h->nbins, j02, k2, h->counts, h->nbins, h->j0, h->k);
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

/* ---- binning: the hot loop ----
 *
 * A bin job bins the values v of x with blo <= v <= bhi and not xlo <= v <= xhi (an empty
 * exclusion has xlo > xhi), in chunks the thread pool runs. Each chunk counts into local
 * uint32 histograms (NSUB of them, taken in turn, so that runs of one value do not chain
 * their increments through memory; one extra slot takes the values not binned, so the
 * increments need no test) and adds them to the shared uint64 counts under a lock: integer
 * sums, so the result does not depend on the threads. Non-finite values are never inside
 * [blo, bhi]. A job can also scan the min/max of the values it passes over (scan.h).
 *
 * uint32, not uint16: on AMD Zen 3 a 16-bit increment in memory costs about twice a 32-bit
 * one (a throwaway loop over SiLU-like bin indices, one core: 8 uint16 histograms 0.68 ns a
 * value, 4 uint32 0.35-0.52). Through the observer (`QC_THREADS=1 taskset -c 1
 * build/hist_rate 1000`, tools/ab/hist_rate.c, five alternating pairs of processes):
 * 0.92-1.03 -> 0.56-0.63 ns a value; nudenet's percentile pass (100 samples,
 * --no-bias-correction, alternating pairs) 2.11-2.33 -> 1.84-2.24 s, the same model bytes.
 * The 8 uint16 ones (19ad552) had gained 1-2% over 4 uint32 on whole runs elsewhere. */

#define BLOCK 1024
#define NSUB 4
#define LOCAL_BINS 4096         /* local histograms up to this; bigger ones count directly */
typedef uint32_t lcount;        /* local counts: NSUB x 2049 of them fit in L1 */
/* local counts are flushed before any could overflow: `pending` bounds the count of the
 * busiest local histogram (l0, which also takes each block's tail) */
#define FLUSH_AT (UINT32_MAX - BLOCK / NSUB - NSUB)

typedef struct bin_job {
    const float   *x;
    int64_t        n, chunk;    /* n: elements covered by the chunks (a multiple of 8) */
    int            k, nbins, absval, fast;
    int            isa;         /* hist_isa() */
    int64_t        j0;
    float          blo, bhi, xlo, xhi;
    uint64_t      *counts;      /* shared */
    int            ulo, uhi;    /* the bins values in [blo, bhi] can reach: the part of the
                                   local histograms cleared and flushed */
    int            direct;      /* no local histogram: single chunk, plain increments */
    int            shared;      /* chunks run in parallel: counts under mu */
    pthread_mutex_t mu;
    qc_scan_lanes *part;        /* per chunk, or NULL: no scan */
} bin_job;

/* Bin index of v, or nbins when v is not to be binned (double arithmetic: exact for every
 * grid). */
static inline uint32_t bin_general(const bin_job *j, double sc, float v)
{
    if (!(v >= j->blo && v <= j->bhi) || (v >= j->xlo && v <= j->xhi))
        return (uint32_t)j->nbins;
    if (j->absval) {
        int64_t b = (int64_t)((double)fabsf(v) * sc);      /* >= 0: truncation is floor */
        return (uint32_t)(b < j->nbins ? b : j->nbins - 1);
    }
    int64_t c = (int64_t)((double)fabsf(v) * sc);          /* mcell */
    int64_t b = (v < 0 ? ~c : c) - j->j0;
    return (uint32_t)(b < 0 ? 0 : b >= j->nbins ? j->nbins - 1 : b);
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* Fast path, used when 2^-k is a normal float and every cell index fits in 23 bits: then
 * v * 2^-k is exact in float too (except when it underflows, handled below), and the bin
 * indices of 4 values are computed at once. */
static int fast_ok(const qc_hist *h)
{
    return h->k > -120 && h->k < 120 && h->j0 > -(1 << 22) && h->j0 < (1 << 22) &&
           h->nbins <= (1 << 20);
}

typedef struct fast_consts {
    __m128  s, blo, bhi, xlo, xhi, zero, absmask;
    __m128i j0, nb;
} fast_consts;

static void fast_init(fast_consts *f, const bin_job *j)
{
    f->s = _mm_set1_ps(ldexpf(1.0f, -j->k));
    f->blo = _mm_set1_ps(j->blo);
    f->bhi = _mm_set1_ps(j->bhi);
    f->xlo = _mm_set1_ps(j->xlo);
    f->xhi = _mm_set1_ps(j->xhi);
    f->zero = _mm_setzero_ps();
    f->absmask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    f->j0 = _mm_set1_epi32((int32_t)j->j0);
    f->nb = _mm_set1_epi32(j->nbins);
}

static inline __m128i fast_index(const fast_consts *f, int absval, __m128 v)
{
    __m128 ok = _mm_and_ps(_mm_cmpge_ps(v, f->blo), _mm_cmple_ps(v, f->bhi));
    ok = _mm_andnot_ps(_mm_and_ps(_mm_cmpge_ps(v, f->xlo), _mm_cmple_ps(v, f->xhi)), ok);
    __m128i b;
    b = _mm_cvttps_epi32(_mm_and_ps(_mm_mul_ps(_mm_and_ps(v, f->absmask), f->s), ok));
    if (!absval)            /* mcell: negatives take the complement of |x|'s cell */
        b = _mm_sub_epi32(_mm_xor_si128(b, _mm_castps_si128(_mm_cmplt_ps(v, f->zero))), f->j0);
    /* values inside the grid's range map inside it; out-of-range indices are skipped all
     * the same (the local histograms are not bounds-checked) */
    __m128i okm = _mm_andnot_si128(_mm_or_si128(_mm_cmplt_epi32(b, _mm_setzero_si128()),
                                                _mm_cmpgt_epi32(b, f->nb)),
                                   _mm_castps_si128(ok));
    return _mm_or_si128(_mm_and_si128(okm, b), _mm_andnot_si128(okm, f->nb));
}
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2 1

/* 8 values at a time. `trunc`: every value to bin is >= 0 (or binned as |x|), so truncation
 * is the cell; else negatives take the complement of |x|'s cell (mcell; a product that
 * underflowed to 0 gives cell -1). `excl`: the job has an exclusion range. */
static inline __attribute__((always_inline, target("avx2"))) int
index8(const bin_job *j, const float *x, int m, uint32_t *idx, qc_scan_lanes *lanes,
       const int trunc, const int excl, const int scan)
{
    const __m256 s = _mm256_set1_ps(ldexpf(1.0f, -j->k)), zero = _mm256_setzero_ps();
    const __m256 blo = _mm256_set1_ps(j->blo), bhi = _mm256_set1_ps(j->bhi);
    const __m256 xlo = _mm256_set1_ps(j->xlo), xhi = _mm256_set1_ps(j->xhi);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i j0 = _mm256_set1_epi32((int32_t)j->j0), nb = _mm256_set1_epi32(j->nbins);
    __m256 lo = zero, hi = zero, nan = zero;
    int i = 0;
    if (scan) {
        lo = _mm256_loadu_ps(lanes->lo);
        hi = _mm256_loadu_ps(lanes->hi);
    }
    for (; i + 8 <= m; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (scan) {
            lo = _mm256_min_ps(v, lo);
            hi = _mm256_max_ps(v, hi);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
        __m256 ok = _mm256_and_ps(_mm256_cmp_ps(v, blo, _CMP_GE_OQ),
                                  _mm256_cmp_ps(v, bhi, _CMP_LE_OQ));
        if (excl)
            ok = _mm256_andnot_ps(_mm256_and_ps(_mm256_cmp_ps(v, xlo, _CMP_GE_OQ),
                                                _mm256_cmp_ps(v, xhi, _CMP_LE_OQ)), ok);
        __m256i b;
        if (trunc) {
            __m256 a = j->absval ? _mm256_and_ps(v, absmask) : v;
            b = _mm256_cvttps_epi32(_mm256_mul_ps(a, s));
        } else {
            __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            b = _mm256_xor_si256(_mm256_cvttps_epi32(_mm256_mul_ps(_mm256_and_ps(v, absmask),
                                                                   s)), neg);
        }
        b = _mm256_sub_epi32(b, j0);
        b = _mm256_blendv_epi8(nb, b, _mm256_castps_si256(ok));
        _mm256_storeu_si256((__m256i *)(idx + i), _mm256_min_epu32(b, nb));
    }
    if (scan) {
        _mm256_storeu_ps(lanes->lo, lo);
        _mm256_storeu_ps(lanes->hi, hi);
        lanes->nan |= _mm256_movemask_ps(nan) != 0;
    }
    return i;
}

static __attribute__((target("avx2"))) int
block_index_avx2(const bin_job *j, const float *x, int m, uint32_t *idx, qc_scan_lanes *lanes)
{
    int trunc = j->absval || j->blo >= 0.0f, excl = j->xlo <= j->xhi;
    if (lanes)
        return trunc ? index8(j, x, m, idx, lanes, 1, 0, 1) : index8(j, x, m, idx, lanes, 0, 0, 1);
    if (excl)
        return trunc ? index8(j, x, m, idx, NULL, 1, 1, 0) : index8(j, x, m, idx, NULL, 0, 1, 0);
    return trunc ? index8(j, x, m, idx, NULL, 1, 0, 0) : index8(j, x, m, idx, NULL, 0, 0, 0);
}

/* 16 values at a time: the same cells as index8 */
static inline __attribute__((always_inline, target("avx512f"))) int
index16(const bin_job *j, const float *x, int m, uint32_t *idx, qc_scan_lanes *lanes,
        const int trunc, const int excl, const int scan)
{
    const __m512 s = _mm512_set1_ps(ldexpf(1.0f, -j->k)), zero = _mm512_setzero_ps();
    const __m512 blo = _mm512_set1_ps(j->blo), bhi = _mm512_set1_ps(j->bhi);
    const __m512 xlo = _mm512_set1_ps(j->xlo), xhi = _mm512_set1_ps(j->xhi);
    const __m512i j0 = _mm512_set1_epi32((int32_t)j->j0), nb = _mm512_set1_epi32(j->nbins);
    const __m512i ones = _mm512_set1_epi32(-1);
    __m512 lo = zero, hi = zero;
    __mmask16 nan = 0;
    int i = 0;
    if (scan) {                 /* both halves start from the 8 lanes; folded back below */
        __m256d l = _mm256_castps_pd(_mm256_loadu_ps(lanes->lo));
        __m256d h = _mm256_castps_pd(_mm256_loadu_ps(lanes->hi));
        lo = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(l), l, 1));
        hi = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(h), h, 1));
    }
    for (; i + 16 <= m; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        if (scan) {
            lo = _mm512_min_ps(v, lo);
            hi = _mm512_max_ps(v, hi);
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        }
        __mmask16 ok = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, blo, _CMP_GE_OQ), v, bhi,
                                               _CMP_LE_OQ);
        if (excl)
            ok &= (__mmask16)~_mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(v, xlo, _CMP_GE_OQ),
                                                      v, xhi, _CMP_LE_OQ);
        __m512i b;
        if (trunc) {
            b = _mm512_cvttps_epi32(_mm512_mul_ps(j->absval ? _mm512_abs_ps(v) : v, s));
        } else {
            b = _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_abs_ps(v), s));
            b = _mm512_mask_xor_epi32(b, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), b, ones);
        }
        b = _mm512_sub_epi32(b, j0);
        _mm512_storeu_si512(idx + i, _mm512_mask_min_epu32(nb, ok, b, nb));
    }
    if (scan) {
        __m256 l0 = _mm512_castps512_ps256(lo), h0 = _mm512_castps512_ps256(hi);
        __m256 l1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lo), 1));
        __m256 h1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(hi), 1));
        _mm256_storeu_ps(lanes->lo, _mm256_min_ps(l0, l1));
        _mm256_storeu_ps(lanes->hi, _mm256_max_ps(h0, h1));
        lanes->nan |= nan != 0;
    }
    /* an 8-value tail (with lanes m is a multiple of 8: the scan stays complete) */
    if (i + 8 <= m)
        i += index8(j, x + i, m - i, idx + i, lanes, trunc, excl, scan);
    return i;
}

static __attribute__((target("avx512f"))) int
block_index_avx512(const bin_job *j, const float *x, int m, uint32_t *idx,
                   qc_scan_lanes *lanes)
{
    int trunc = j->absval || j->blo >= 0.0f, excl = j->xlo <= j->xhi;
    if (lanes)
        return trunc ? index16(j, x, m, idx, lanes, 1, 0, 1)
                     : index16(j, x, m, idx, lanes, 0, 0, 1);
    if (excl)
        return trunc ? index16(j, x, m, idx, NULL, 1, 1, 0)
                     : index16(j, x, m, idx, NULL, 0, 1, 0);
    return trunc ? index16(j, x, m, idx, NULL, 1, 0, 0) : index16(j, x, m, idx, NULL, 0, 0, 0);
}
#endif

/* Widest binning path: 3 AVX-512, 2 AVX2, 1 SSE2, 0 scalar; the CPU's, or less if
 * QC_HIST_ISA (avx2, sse2, scalar) says so: the tests run every path. Asked once per bin run
 * (libgcc's cpu model is a load; a static cache would race between shards). */
static int hist_isa(void)
{
    int isa = 0;
#if defined(__SSE2__)
    isa = 1;
#endif
#if defined(HAVE_AVX2)
    if (__builtin_cpu_supports("avx2"))
        isa = 2;
    if (isa == 2 && __builtin_cpu_supports("avx512f"))
        isa = 3;
#endif
    const char *e = getenv("QC_HIST_ISA");
    int cap = !e ? 3 : !strcmp(e, "avx2") ? 2 : !strcmp(e, "sse2") ? 1
            : !strcmp(e, "scalar") ? 0 : 3;
    return isa < cap ? isa : cap;
}

/* Bin indices of x[0, m) (nbins: skip); with lanes, scans them too (m a multiple of 8). */
static void block_index(const bin_job *j, const float *x, int m, uint32_t *idx,
                        qc_scan_lanes *lanes)
{
    int i = 0;
#if defined(HAVE_AVX2)
    /* with lanes, m is a multiple of 8: the scan is complete */
    if (j->fast && j->isa == 3)
        i = block_index_avx512(j, x, m, idx, lanes);
    else if (j->fast && j->isa == 2)
        i = block_index_avx2(j, x, m, idx, lanes);
    else
#endif
    if (lanes)
        qc_scan_lanes_run(lanes, x, m);
#if defined(__SSE2__)
    if (j->fast && j->isa >= 1 && i == 0) {
        fast_consts f;
        fast_init(&f, j);
        for (; i + 4 <= m; i += 4)
            _mm_storeu_si128((__m128i *)(idx + i), fast_index(&f, j->absval,
                                                             _mm_loadu_ps(x + i)));
    }
#endif
    double sc = ldexp(1.0, -j->k);
    for (; i < m; i++)
        idx[i] = bin_general(j, sc, x[i]);
}

#if defined(HAVE_AVX2)
/* Adds the sums of the NSUB local histograms (stride st) to cnt from bin b up to end, 8 bins
 * at a time, in 64 bits (NSUB x UINT32_MAX does not fit 32); returns the bin reached. */
static __attribute__((target("avx2"))) int
flush_avx2(const lcount *loc, size_t st, int b, int end, uint64_t *cnt)
{
    for (; b + 8 <= end; b += 8) {
        __m256i *c = (__m256i *)(cnt + b);
        __m256i lo = _mm256_loadu_si256(c), hi = _mm256_loadu_si256(c + 1);
        for (int s = 0; s < NSUB; s++) {
            const __m128i *v = (const __m128i *)(loc + s * st + (size_t)b);
            lo = _mm256_add_epi64(lo, _mm256_cvtepu32_epi64(_mm_loadu_si128(v)));
            hi = _mm256_add_epi64(hi, _mm256_cvtepu32_epi64(_mm_loadu_si128(v + 1)));
        }
        _mm256_storeu_si256(c, lo);
        _mm256_storeu_si256(c + 1, hi);
    }
    return b;
}
#endif

/* Clears the bins [ulo, uhi] of the local histograms (the others stay untouched), and the
 * skip slots with `all`. */
static void clear_local(const bin_job *j, lcount *loc, int all)
{
    const size_t st = (size_t)j->nbins + 1;
    for (int s = 0; s < NSUB; s++) {
        memset(loc + s * st + j->ulo, 0, (size_t)(j->uhi - j->ulo + 1) * sizeof *loc);
        if (all)
            loc[s * st + (size_t)j->nbins] = 0;
    }
}

static void flush_local(bin_job *j, lcount *loc)
{
    int b = j->ulo, end = j->uhi + 1;
    const size_t st = (size_t)j->nbins + 1;
    uint64_t *cnt = j->counts;
    if (j->shared)
        pthread_mutex_lock(&j->mu);
#if defined(HAVE_AVX2)
    if (j->isa >= 2)
        b = flush_avx2(loc, st, b, end, cnt);
#endif
    for (; b < end; b++) {
        uint64_t v = 0;
        for (int s = 0; s < NSUB; s++)
            v += loc[s * st + (size_t)b];
        cnt[b] += v;
    }
    if (j->shared)
        pthread_mutex_unlock(&j->mu);
    clear_local(j, loc, 0);
}

static void bin_chunks(void *ctx, int64_t lo, int64_t hi)
{
    bin_job *j = ctx;
    uint32_t idx[BLOCK];
    lcount loc[NSUB * (LOCAL_BINS + 1)];    /* NSUB histograms of nbins + 1 (the last: skip) */
    const uint32_t nb = (uint32_t)j->nbins;
    lcount *l0 = loc, *l1 = loc + nb + 1, *l2 = l1 + nb + 1, *l3 = l2 + nb + 1;
    int64_t pending = 0;
    if (!j->direct)
        clear_local(j, loc, 1);
    for (int64_t c = lo; c < hi; c++) {
        int64_t a = c * j->chunk, end = j->n - a < j->chunk ? j->n : a + j->chunk;
        qc_scan_lanes *lanes = j->part ? &j->part[c] : NULL;
        if (lanes)
            qc_scan_lanes_init(lanes);
        for (int64_t i0 = a; i0 < end; i0 += BLOCK) {
            int m = end - i0 < BLOCK ? (int)(end - i0) : BLOCK, i = 0;
            block_index(j, j->x + i0, m, idx, lanes);
            if (j->direct) {
                uint64_t *cnt = j->counts;
                for (; i < m; i++)
                    if (idx[i] < nb)
                        cnt[idx[i]]++;
                continue;
            }
            for (; i + 4 <= m; i += 4) {
                l0[idx[i]]++;
                l1[idx[i + 1]]++;
                l2[idx[i + 2]]++;
                l3[idx[i + 3]]++;
            }
            for (; i < m; i++)
                l0[idx[i] < nb ? idx[i] : nb]++;
            if ((pending += m / NSUB + m % NSUB) >= FLUSH_AT) {
                flush_local(j, loc);
                pending = 0;
            }
        }
    }
    if (!j->direct && pending)
        flush_local(j, loc);
}

/* Runs a job over x[0, n): the chunks cover x[0, n & ~7), the tail is binned here. With
 * `scan`, also returns the scan of x (qc_scan_finish). */
static int64_t bin_run(bin_job *j, const float *x, int64_t n, int scan, float *mn, float *mx)
{
    qc_scan_lanes part[QC_SCAN_MAX_CHUNKS];
    j->x = x;
    j->n = n & ~(int64_t)7;
    j->chunk = qc_scan_chunk(j->n);
    j->part = scan ? part : NULL;
    /* small tensors: zeroing and flushing local histograms would cost more than it saves */
    j->direct = j->nbins > LOCAL_BINS || j->n < 4 * BLOCK;
    int64_t n_chunks = (j->n + j->chunk - 1) / j->chunk;
    if (j->direct || n_chunks <= 1 || j->n < QC_SCAN_PAR_MIN) {
        j->chunk = j->n > 0 ? j->n : 1;
        n_chunks = j->n > 0;
        bin_chunks(j, 0, n_chunks);
    } else {
        j->shared = 1;
        pthread_mutex_init(&j->mu, NULL);
        qc_par_for(n_chunks, 1, bin_chunks, j);
        pthread_mutex_destroy(&j->mu);
    }
    double sc = ldexp(1.0, -j->k);
    for (int64_t i = j->n; i < n; i++) {
        uint32_t b = bin_general(j, sc, x[i]);
        if (b < (uint32_t)j->nbins)
            j->counts[b]++;
    }
    if (!scan)
        return 0;
    if (n_chunks == 0)
        qc_scan_lanes_init(&part[0]);
    for (int64_t c = 1; c < n_chunks; c++)
        qc_scan_lanes_merge(&part[0], &part[c]);
    return qc_scan_finish(&part[0], x, n, mn, mx);
}

static void job_of(bin_job *j, const qc_hist *h, float blo, float bhi, float xlo, float xhi)
{
    memset(j, 0, sizeof *j);
    j->k = h->k;
    j->j0 = h->j0;
    j->nbins = h->nbins;
    j->absval = h->absval;
#if defined(__SSE2__)
    j->fast = fast_ok(h);
#endif
    j->isa = hist_isa();
    j->blo = blo;
    j->bhi = bhi;
    j->xlo = xlo;
    j->xhi = xhi;
    j->counts = h->counts;
    j->ulo = 0;
    j->uhi = h->nbins - 1;
    if (blo <= bhi && isfinite(blo) && isfinite(bhi)) {
        double a = blo, b = bhi;
        if (h->absval) {
            b = fmax(fabs(a), fabs(b));
            a = blo <= 0 && bhi >= 0 ? 0 : fmin(fabs(blo), fabs(bhi));
        }
        double ca = mcell(a, h->k) - (double)h->j0, cb = mcell(b, h->k) - (double)h->j0;
        j->ulo = ca <= 0 ? 0 : ca >= h->nbins - 1 ? h->nbins - 1 : (int)ca;
        j->uhi = cb <= j->ulo ? j->ulo : cb >= h->nbins - 1 ? h->nbins - 1 : (int)cb;
    }
}

/* ---- the values a widened range adds ----
 *
 * When a sample widens a tensor's range, the values outside the old range [xlo, xhi] still
 * have to be binned on the grown grid: usually a few values at the new extremes, so instead
 * of a second binning pass (every value through the index arithmetic and an increment, the
 * others into the skip slot: a pass as dear as the first, on 7% of nudenet's values and 7%
 * of ddddocr's), a compare pass finds them and only they are binned, one by one. The same
 * counts: a value is binned exactly when bin_general bins it. */

#if defined(HAVE_AVX2)
static __attribute__((target("avx2"))) int64_t
outside_avx2(bin_job *j, const float *x, int64_t n, double sc)
{
    const __m256 xlo = _mm256_set1_ps(j->xlo), xhi = _mm256_set1_ps(j->xhi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        int m = _mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(v, xlo, _CMP_LT_OQ),
                                                _mm256_cmp_ps(v, xhi, _CMP_GT_OQ)));
        while (m) {
            int l = __builtin_ctz((unsigned)m);
            uint32_t b = bin_general(j, sc, x[i + l]);
            if (b < (uint32_t)j->nbins)
                j->counts[b]++;
            m &= m - 1;
        }
    }
    return i;
}
#endif

/* Bins the values of x[0, n) that job j (a widening job: its exclusion range is the old
 * range) bins, comparing each value with the old range first. */
static void bin_outside(bin_job *j, const float *x, int64_t n)
{
    double sc = ldexp(1.0, -j->k);
    int64_t i = 0;
#if defined(HAVE_AVX2)
    if (j->isa >= 2)
        i = outside_avx2(j, x, n, sc);
#endif
    for (; i < n; i++) {
        if (!(x[i] < j->xlo || x[i] > j->xhi))
            continue;
        uint32_t b = bin_general(j, sc, x[i]);
        if (b < (uint32_t)j->nbins)
            j->counts[b]++;
    }
}

/* ---- observer glue ---- */

void qc_hist_view(const qc_hist *d, qc_hist *out)
{
    int vb = out->nbins, k;
    int64_t j0;
    memset(out->counts, 0, (size_t)vb * sizeof *out->counts);
    out->lo = d->lo;
    out->hi = d->hi;
    out->total = d->total;
    if (!d->total)
        return;
    grid_of(out, d->lo, d->hi, &k, &j0);
    out->k = k;
    out->j0 = j0;
    if (!out->absval) {
        add_rebinned(out->counts, vb, j0, k, d->counts, d->nbins, d->j0, d->k);
        return;
    }
    /* |x|: a negative cell is the complement of its |x| cell (mcell), then coarsened */
    for (int b = 0; b < d->nbins; b++) {
        if (!d->counts[b])
            continue;
        int64_t c = d->j0 + b, a = floordiv_pow2(c < 0 ? ~c : c, k - d->k);
        out->counts[a < vb ? a : vb - 1] += d->counts[b];
    }
}

static int hist_obs_init(qc_observer *o, int n_ch, int absval, int vbins, qc_err *err)
{
    int nb = vbins ? 2 * vbins : o->cfg.bins;
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
        h->vbins = vbins;
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

int qc_hist_obs_init(qc_observer *o, int n_ch, int absval, qc_err *err)
{
    return hist_obs_init(o, n_ch, absval, 0, err);
}

static int dual_init(qc_observer *o, int n_ch, qc_err *err)
{
    return hist_obs_init(o, n_ch, 0, o->cfg.bins, err);
}

static int dual_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    (void)c, (void)out;
    return qc_errf(err, QC_EUSAGE, "observer '%s' has no range of its own (qc_observer_view)",
                   o->ops->name);
}

const qc_observer_ops qc_obs_dual = {
    "histogram of x and |x|", dual_init, qc_hist_obs_update, qc_hist_obs_merge, dual_range,
    qc_hist_obs_release, NULL,
};

/* Per-tensor observers whose histogram already has data bin and scan in one pass over the
 * tensor, on the current grid (values inside the range seen so far). Only when the sample
 * widens the range does the grid grow (whole bins merge: exact) and a second pass bin the
 * values outside the old range; either way the counts are those of binning every value on
 * the final grid. */
static int update_one_pass(qc_observer *o, qc_hist *h, const float *x, int64_t n,
                           uint64_t *scratch)
{
    bin_job j;
    float mn, mx, olo = h->lo, ohi = h->hi;
    job_of(&j, h, olo, ohi, INFINITY, -INFINITY);
    int64_t bad = bin_run(&j, x, n, 1, &mn, &mx);
    int64_t good = n - bad;
    o->last_lo = mn;
    o->last_hi = mx;
    o->last_good = good;
    o->last_bad = bad;
    o->nonfinite += bad;
    o->count += good;
    o->ch_count[0] += good;
    if (!good)
        return QC_OK;
    o->seen_lo = mn < o->seen_lo ? mn : o->seen_lo;
    o->seen_hi = mx > o->seen_hi ? mx : o->seen_hi;
    grow(h, mn, mx, scratch);
    if (mn < olo || mx > ohi) {
        job_of(&j, h, mn, mx, olo, ohi);
        bin_outside(&j, x, n);
    }
    h->total += (uint64_t)good;
    return QC_OK;
}

int qc_hist_obs_update(qc_observer *o, const qc_obs_view *v, qc_err *err)
{
    qc_hist_obs *s = o->state;
    (void)err;
    if (v->n_ch == 1 && v->outer == 1 && s->ch[0].total)
        return update_one_pass(o, &s->ch[0], v->x, v->inner, s->scratch);
    for (int c = 0; c < v->n_ch; c++) {
        qc_hist *h = &s->ch[c];
        float mn, mx;
        int64_t good = qc_obs_scan_channel(o, v, c, &mn, &mx);
        if (!good)
            continue;
        grow(h, mn, mx, s->scratch);
        for (int64_t k = 0; k < v->outer; k++) {
            bin_job j;
            job_of(&j, h, mn, mx, INFINITY, -INFINITY);
            bin_run(&j, v->x + (k * v->n_ch + c) * v->inner, v->inner, 0, NULL, NULL);
        }
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
        add_rebinned(h->counts, h->nbins, h->j0, h->k, g->counts, g->nbins, g->j0, g->k);
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
