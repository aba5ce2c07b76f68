/* Depthwise 2-D convolution (one input channel per group, the MobileNet / PP-LCNet kind):
 * output channel m is input channel m / (m / c) correlated with its kh x kw kernel, plus its
 * bias. Channels are shared out among the worker threads (qc_par_for), each computed whole by
 * one thread.
 *
 * Every output value sums its taps in one order: the bias, then kernel rows, then kernel
 * columns, each a product then a sum (no FMA), taps outside the input skipped: the order of
 * the row-at-a-time loop this replaced, so the same bits. With AVX2 each channel's input is
 * first copied into a zero-padded plane, its columns split by phase of the stride (column
 * ow * sw + kw * dw of a padded row is entry ow + kw * dw / sw of phase kw * dw % sw), so every
 * tap of 8 neighbouring outputs is one load; a padding tap adds w * 0, which changes no sum
 * (the bias is never -0, and a sum of finite products that starts off -0 stays off it), so
 * channels whose kernel is not all finite take the scalar loop (inf * 0 is NaN). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conv_x86.h"
#include "par.h"

typedef struct dw_job {
    const qc_conv2d *cv;
    int              avx2;
} dw_job;

/* The padded, phase-split plane of one input channel: row r (padded row r - ph) holds phase
 * f of its padded columns at xp + (r * sw + f) * lp; output (oh, ow) reads tap t at
 * xp + oh * sh * sw * lp + ow + toff[t]. */
typedef struct dw_plane {
    float   *xp;
    int64_t  rows, lp;
    int64_t *toff;      /* tap kh * kw + kw: its entry for output 0 of row 0 */
} dw_plane;

/* Output position ow of output row oh, input plane x, kernel w, bounds checked. */
static float dw_point(const qc_conv2d *cv, const float *x, const float *w, float bias,
                      int64_t oh, int64_t ow)
{
    float acc = bias;
    for (int64_t kh = 0; kh < cv->kh; kh++) {
        int64_t ih = oh * cv->sh - cv->ph + kh * cv->dh;
        if (ih < 0 || ih >= cv->ih)
            continue;
        for (int64_t kw = 0; kw < cv->kw; kw++) {
            int64_t iw = ow * cv->sw - cv->pw + kw * cv->dw;
            if (iw >= 0 && iw < cv->iw)
                acc += w[kh * cv->kw + kw] * x[ih * cv->iw + iw];
        }
    }
    return acc;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define A2 __attribute__((target("avx2")))

/* Outputs ow0 .. ow0 + 8 * NV - 1 of row oh: NV vectors of sums, independent, so the
 * additions of one tap overlap. */
static inline __attribute__((always_inline)) A2 void
dw_vec(const qc_conv2d *cv, const dw_plane *pl, const float *w, float bias, int64_t oh,
       int64_t ow0, __m256 *acc, const int NV)
{
    const float *base = pl->xp + oh * cv->sh * cv->sw * pl->lp + ow0;
    /* every loop over acc unrolled: a rolled one keeps the sums on the stack */
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        acc[v] = _mm256_set1_ps(bias);
    for (int64_t t = 0; t < cv->kh * cv->kw; t++) {
        __m256 wv = _mm256_set1_ps(w[t]);
        const float *xq = base + pl->toff[t];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[v] = _mm256_add_ps(acc[v], _mm256_mul_ps(wv, _mm256_loadu_ps(xq + 8 * v)));
    }
}

static inline __attribute__((always_inline)) A2 void
dw_block(const qc_conv2d *cv, const dw_plane *pl, const float *w, float bias, int64_t oh,
         int64_t ow0, float *y, const int NV)
{
    __m256 acc[8];
    dw_vec(cv, pl, w, bias, oh, ow0, acc, NV);
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        _mm256_storeu_ps(y + ow0 + 8 * v, acc[v]);
}

/* Row oh of the output from the padded plane: blocks of 64, 32, 16 and 8 outputs (up to
 * eight sums in flight: each is a chain of kh x kw dependent additions); the last few, a
 * block of 8 ending at the row's end (outputs computed twice come out the same), or, in a
 * row narrower than 8, the first lanes of one (a phase holds 8 entries past the outputs). */
static A2 void dw_row_avx2(const qc_conv2d *cv, const dw_plane *pl, const float *w, float bias,
                           int64_t oh, float *y)
{
    int64_t ow = 0;
    for (; ow + 64 <= cv->ow; ow += 64)
        dw_block(cv, pl, w, bias, oh, ow, y, 8);
    if (ow + 32 <= cv->ow)
        dw_block(cv, pl, w, bias, oh, ow, y, 4), ow += 32;
    if (ow + 16 <= cv->ow)
        dw_block(cv, pl, w, bias, oh, ow, y, 2), ow += 16;
    if (ow + 8 <= cv->ow)
        dw_block(cv, pl, w, bias, oh, ow, y, 1), ow += 8;
    if (ow < cv->ow && cv->ow >= 8) {
        dw_block(cv, pl, w, bias, oh, cv->ow - 8, y, 1);
    } else if (ow < cv->ow) {
        __m256 acc[1];
        float lane[8];
        dw_vec(cv, pl, w, bias, oh, 0, acc, 1);
        _mm256_storeu_ps(lane, acc[0]);
        memcpy(y, lane, (size_t)cv->ow * sizeof *y);
    }
}

static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#else
static void dw_row_avx2(const qc_conv2d *cv, const dw_plane *pl, const float *w, float bias,
                        int64_t oh, float *y)
{
    (void)cv, (void)pl, (void)w, (void)bias, (void)oh, (void)y;
}

static int have_avx2(void)
{
    return 0;
}
#endif

/* Rows and phase length of the padded plane: the rows and columns the outputs read (at least
 * the input's, with its padding), and every phase long enough for the last vector's loads. */
static void plane_size(const qc_conv2d *cv, int64_t *rows, int64_t *lp)
{
    int64_t r = (cv->oh - 1) * cv->sh + (cv->kh - 1) * cv->dh + 1;
    int64_t reach = ((cv->kw - 1) * cv->dw) / cv->sw;       /* past ow, in phase entries */
    *rows = r;
    *lp = cv->ow + reach + 8;
}

/* Copies channel plane x into pl (zeros outside the input). Per phase f, the entries k
 * whose input column k * sw + f - pw is inside are [k0, k1), the same for every row. */
static void pad_plane(const qc_conv2d *cv, const float *x, const dw_plane *pl)
{
    int64_t k0[2], k1[2];
    for (int64_t f = 0; f < cv->sw; f++) {
        int64_t a = cv->pw - f, b = cv->iw + cv->pw - f;    /* k * sw in [a, b) */
        k0[f] = a <= 0 ? 0 : (a + cv->sw - 1) / cv->sw;
        k1[f] = b <= 0 ? 0 : (b + cv->sw - 1) / cv->sw;
        k0[f] = k0[f] < pl->lp ? k0[f] : pl->lp;
        k1[f] = k1[f] < k0[f] ? k0[f] : k1[f] < pl->lp ? k1[f] : pl->lp;
    }
    for (int64_t r = 0; r < pl->rows; r++) {
        int64_t ih = r - cv->ph;
        for (int64_t f = 0; f < cv->sw; f++) {
            float *dst = pl->xp + (r * cv->sw + f) * pl->lp;
            if (ih < 0 || ih >= cv->ih) {
                memset(dst, 0, (size_t)pl->lp * sizeof *dst);
                continue;
            }
            const float *src = x + ih * cv->iw + f - cv->pw;
            memset(dst, 0, (size_t)k0[f] * sizeof *dst);
            if (cv->sw == 1)
                memcpy(dst + k0[f], src + k0[f], (size_t)(k1[f] - k0[f]) * sizeof *dst);
            else
                for (int64_t k = k0[f]; k < k1[f]; k++)
                    dst[k] = src[k * cv->sw];
            memset(dst + k1[f], 0, (size_t)(pl->lp - k1[f]) * sizeof *dst);
        }
    }
}

static int finite_kernel(const float *w, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(w[i]))
            return 0;
    return 1;
}

/* Output channel m of batch item bi; pl NULL: the scalar loop. */
static void dw_channel(const qc_conv2d *cv, int64_t bi, int64_t m, const dw_plane *pl)
{
    int64_t mg = cv->m / cv->c;             /* outputs per input channel */
    const float *x = cv->x + (bi * cv->c + m / mg) * cv->ih * cv->iw;
    const float *w = cv->w + m * cv->kh * cv->kw;
    float *y = cv->y + (bi * cv->m + m) * cv->oh * cv->ow;
    float bias = cv->bias && cv->bias[m] != 0.0f ? cv->bias[m] : 0.0f;     /* never -0 */
    if (pl && finite_kernel(w, cv->kh * cv->kw)) {
        pad_plane(cv, x, pl);
        for (int64_t oh = 0; oh < cv->oh; oh++)
            dw_row_avx2(cv, pl, w, bias, oh, y + oh * cv->ow);
        return;
    }
    for (int64_t oh = 0; oh < cv->oh; oh++)
        for (int64_t ow = 0; ow < cv->ow; ow++)
            y[oh * cv->ow + ow] = dw_point(cv, x, w, bias, oh, ow);
}

/* A chunk of channels, with a padded plane of its own (none without AVX2, for strides over 2
 * along the row, or if it cannot be allocated: the scalar loop, same results). */
static void dw_items(void *vctx, int64_t lo, int64_t hi)
{
    const dw_job *j = vctx;
    dw_plane pl = { NULL, 0, 0, NULL }, *use = NULL;
    const qc_conv2d *cv = j->cv;
    if (j->avx2 && cv->sw <= 2) {           /* pad_plane splits up to two phases */
        plane_size(cv, &pl.rows, &pl.lp);
        pl.xp = malloc((size_t)(pl.rows * cv->sw * pl.lp) * sizeof(float));
        pl.toff = malloc((size_t)(cv->kh * cv->kw) * sizeof *pl.toff);
        for (int64_t kh = 0; pl.toff && kh < cv->kh; kh++)
            for (int64_t kw = 0; kw < cv->kw; kw++) {
                int64_t col = kw * cv->dw;
                pl.toff[kh * cv->kw + kw] = (kh * cv->dh * cv->sw + col % cv->sw) * pl.lp +
                                            col / cv->sw;
            }
        use = pl.xp && pl.toff ? &pl : NULL;
    }
    for (int64_t it = lo; it < hi; it++)
        dw_channel(cv, it / cv->m, it % cv->m, use);
    free(pl.xp);
    free(pl.toff);
}

/* conv_x86.h */
void qc_conv2d_depthwise(const qc_conv2d *cv)
{
    dw_job j = { cv, have_avx2() };
    int64_t items = cv->batch * cv->m;
    qc_par_for(items, items / (8 * qc_par_threads()) + 1, dw_items, &j);
}
