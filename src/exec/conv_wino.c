/* Winograd F(4x4, 3x3) for float 3x3 stride-1 convolutions: the driver and the AVX-512
 * kernel set (the AVX2 + FMA one, the same operations on 8 lanes, is in conv_avx2.c;
 * conv_wino.h says what a set is). Private to src/exec; qc_conv2d_fast tries it first. Each
 * 4x4 block of outputs (a tile) comes from the 6x6 input patch under it: V = Bt d B per input
 * channel, U = G g Gt per weight (once per node, in double, cached), then for each of the 36
 * components k a product M_k = U_k V_k over the input channels, and y = At M A + bias. 36
 * multiplies per 16 outputs and channel pair instead of 144; the transforms add rounding of
 * their own (a few ulps of the inputs' and outputs' magnitudes, against the direct kernels'
 * one rounding a product).
 *
 * Tiles go along vector lanes, 16 a vector (8 with AVX2). Input rows are read whole (masked
 * loads: padding reads as 0, no padded copy) and split into the stride-4 phases of the tiles'
 * columns by permutes; outputs are interleaved back and stored as whole rows. The product
 * broadcasts U and streams V, every sum over the input channels in order from 0. Work items
 * are blocks of tile rows x ranges of output channels; each item transforms its tiles' inputs
 * into a slot of its own, so every output is the same bits whatever the blocks, ranges,
 * threads and kernel set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conv_wino.h"
#include "par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "conv_x86_inl.h"

#define WNV  3              /* vectors of 16 tiles a product tile */
#define WINO_LAYOUT 64      /* qc_conv_cache layout id of U */
#define UNROLL _Pragma("GCC unroll 8")

/* U = G g Gt for every (output, input) channel pair, in double, packed for the product. */
static void pack_u(const float *w, int64_t m, int64_t c, int64_t mp, float *u)
{
    static const double G[6][3] = {
        { 1.0 / 4, 0, 0 }, { -1.0 / 6, -1.0 / 6, -1.0 / 6 }, { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
        { 1.0 / 24, 1.0 / 12, 1.0 / 6 }, { 1.0 / 24, -1.0 / 12, 1.0 / 6 }, { 0, 0, 1 },
    };
    memset(u, 0, (size_t)(WK * mp * c) * sizeof *u);
    for (int64_t co = 0; co < m; co++)
        for (int64_t ci = 0; ci < c; ci++) {
            const float *g = w + (co * c + ci) * 9;
            double t[6][3];
            for (int i = 0; i < 6; i++)
                for (int b = 0; b < 3; b++)
                    t[i][b] = G[i][0] * g[b] + G[i][1] * g[3 + b] + G[i][2] * g[6 + b];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    double v = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
                    u[(((int64_t)(i * 6 + j) * (mp / WR) + co / WR) * c + ci) * WR + co % WR] =
                        (float)v;
                }
        }
}

/* o = Bt z for a column of six vectors */
static inline __attribute__((always_inline, target("avx512f"))) void
bt6(const __m512 *z, __m512 *o)
{
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f),
                 five = _mm512_set1_ps(5.0f);
    __m512 t0 = _mm512_fnmadd_ps(four, z[2], z[4]);            /* z4 - 4 z2 */
    __m512 t1 = _mm512_fnmadd_ps(four, z[1], z[3]);            /* z3 - 4 z1 */
    __m512 t2 = _mm512_sub_ps(z[4], z[2]);
    __m512 t3 = _mm512_mul_ps(two, _mm512_sub_ps(z[3], z[1]));
    o[0] = _mm512_fmadd_ps(four, z[0], _mm512_fnmadd_ps(five, z[2], z[4]));
    o[1] = _mm512_add_ps(t0, t1);
    o[2] = _mm512_sub_ps(t0, t1);
    o[3] = _mm512_add_ps(t2, t3);
    o[4] = _mm512_sub_ps(t2, t3);
    o[5] = _mm512_fmadd_ps(four, z[1], _mm512_fnmadd_ps(five, z[3], z[5]));
}

/* o = At z: six vectors to four */
static inline __attribute__((always_inline, target("avx512f"))) void
at6(const __m512 *z, __m512 *o)
{
    __m512 s12 = _mm512_add_ps(z[1], z[2]), d12 = _mm512_sub_ps(z[1], z[2]);
    __m512 s34 = _mm512_add_ps(z[3], z[4]), d34 = _mm512_sub_ps(z[3], z[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(z[0], s12), s34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), z[5]);
}

/* Lanes [0, n) of 16, n clamped to [0, 16] */
static inline __mmask16 first_lanes(int64_t n)
{
    return n <= 0 ? 0 : n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
}

/* One input row's 6-point transforms for sixteen tiles side by side: h[k] lane l = sum_j
 * Bt[k][j] row[x0 + 4 l + j], columns outside [0, iw) read as 0. Five loads, then each
 * phase j of the stride-4 columns picked out by permutes. */
static inline __attribute__((always_inline, target("avx512f"))) void
row_transform(const float *row, int64_t x0, int64_t iw, __m512 *h)
{
    const __m512i ph0 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i nx0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    __m512 a[5], p[6];
    UNROLL for (int v = 0; v < 5; v++) {
        /* lanes [-(x0 + 16 v), iw - (x0 + 16 v)) are inside the row */
        __mmask16 m = first_lanes(iw - (x0 + 16 * v)) & ~first_lanes(-(x0 + 16 * v));
        a[v] = _mm512_maskz_loadu_ps(m, row + x0 + 16 * v);
    }
    __m512i idx = ph0;
    UNROLL for (int j = 0; j < 4; j++) {
        __m512 lo = _mm512_permutex2var_ps(a[0], idx, a[1]);
        __m512 hi = _mm512_permutex2var_ps(a[2], idx, a[3]);
        p[j] = _mm512_shuffle_f32x4(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
        idx = _mm512_add_epi32(idx, one);
    }
    p[4] = _mm512_permutex2var_ps(p[0], nx0, a[4]);                 /* columns 4 l + 4 */
    p[5] = _mm512_permutex2var_ps(p[1], _mm512_mask_add_epi32(nx0, 0x8000, nx0, one), a[4]);
    bt6(p, h);
}

/* V[k][ci][lane] for the block's tiles (whole tile rows from ty0; ldv floats a row, lanes past
 * the tiles 0). Each input row is transformed along x into h ([k][r][tile]: row r of each
 * tile's patch), then h along r into V. */
static __attribute__((target("avx512f"))) void
input_transform(const wino *w, const float *xb, int64_t ty0, int64_t ntb, int64_t ldv,
                float *h, float *v)
{
    const qc_conv2d *cv = w->job.cv;
    int64_t plane = cv->ih * cv->iw, rows = ntb / w->tw;
    for (int64_t ci = 0; ci < w->job.c; ci++) {
        const float *xc = xb + ci * plane;
        for (int64_t yr = 0; yr < 4 * rows + 2; yr++) {
            float *dst[2];
            int nd = wino_row_dst(w, ty0, rows, yr, ldv, h, dst);
            const float *row = nd > 0 ? xc + (4 * ty0 - cv->ph + yr) * cv->iw : NULL;
            for (int64_t tx = 0; tx < w->tw && nd > 0; tx += 16) {
                __m512 o[6];
                __mmask16 in = first_lanes(w->tw - tx);
                row_transform(row, 4 * tx - cv->pw, cv->iw, o);
                for (int d = 0; d < nd; d++)
                    UNROLL for (int k = 0; k < 6; k++)
                        _mm512_mask_storeu_ps(dst[d] + k * 6 * ldv + tx, in, o[k]);
            }
        }
        wino_zero_tail(h, ntb, ldv);
        for (int64_t g = 0; g < ldv; g += 16)
            UNROLL for (int k = 0; k < 6; k++) {
                __m512 z[6], o[6];
                UNROLL for (int r = 0; r < 6; r++)
                    z[r] = _mm512_load_ps(h + (k * 6 + r) * ldv + g);
                bt6(z, o);
                UNROLL for (int i = 0; i < 6; i++)
                    _mm512_store_ps(v + ((int64_t)(i * 6 + k) * w->job.c + ci) * ldv + g, o[i]);
            }
    }
}

/* M[r][lanes] (WR rows, ldm apart) = sum over ci of U[ci][r] V[ci][lanes], NV vectors */

#define GEMM_TILE(NV)                                                                         \
static __attribute__((target("avx512f"))) void                                                \
gemm_##NV(const float *u, const float *v, int64_t c, int64_t ldv, float *mo, int64_t ldm)     \
{                                                                                             \
    __m512 acc[WR][NV];                                                                       \
    UNROLL for (int r = 0; r < WR; r++)                                                       \
        UNROLL for (int j = 0; j < NV; j++)                                                   \
            acc[r][j] = _mm512_setzero_ps();                                                  \
    for (int64_t ci = 0; ci < c; ci++) {                                                      \
        __m512 x[NV];                                                                         \
        UNROLL for (int j = 0; j < NV; j++)                                                   \
            x[j] = _mm512_load_ps(v + ci * ldv + 16 * j);                                     \
        UNROLL for (int r = 0; r < WR; r++) {                                                 \
            __m512 b = _mm512_set1_ps(u[ci * WR + r]);                                        \
            UNROLL for (int j = 0; j < NV; j++)                                               \
                acc[r][j] = _mm512_fmadd_ps(b, x[j], acc[r][j]);                              \
        }                                                                                     \
    }                                                                                         \
    UNROLL for (int r = 0; r < WR; r++)                                                       \
        UNROLL for (int j = 0; j < NV; j++)                                                   \
            _mm512_store_ps(mo + r * ldm + 16 * j, acc[r][j]);                                \
}
GEMM_TILE(1)
GEMM_TILE(2)
GEMM_TILE(3)              /* WNV */

static void gemm_panel(const float *u, const float *v, int64_t c, int64_t ldv, float *m)
{
    int64_t j = 0;
    for (; j + 16 * WNV <= ldv; j += 16 * WNV)
        gemm_3(u, v + j, c, ldv, m + j, ldv);
    if (ldv - j == 32)
        gemm_2(u, v + j, c, ldv, m + j, ldv);
    else if (ldv - j == 16)
        gemm_1(u, v + j, c, ldv, m + j, ldv);
}

/* The four vectors o[b] (lane l: output column 4 l + b of tile l) as 64 consecutive columns */
static inline __attribute__((always_inline, target("avx512f"))) void
interleave4(const __m512 *o, __m512 *f)
{
    __m512 u0 = _mm512_unpacklo_ps(o[0], o[1]), u1 = _mm512_unpackhi_ps(o[0], o[1]);
    __m512 u2 = _mm512_unpacklo_ps(o[2], o[3]), u3 = _mm512_unpackhi_ps(o[2], o[3]);
    __m512 v0 = _mm512_shuffle_ps(u0, u2, _MM_SHUFFLE(1, 0, 1, 0));    /* tiles 4 c */
    __m512 v1 = _mm512_shuffle_ps(u0, u2, _MM_SHUFFLE(3, 2, 3, 2));    /* tiles 4 c + 1 */
    __m512 v2 = _mm512_shuffle_ps(u1, u3, _MM_SHUFFLE(1, 0, 1, 0));
    __m512 v3 = _mm512_shuffle_ps(u1, u3, _MM_SHUFFLE(3, 2, 3, 2));
    __m512 w0 = _mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(1, 0, 1, 0));
    __m512 w1 = _mm512_shuffle_f32x4(v2, v3, _MM_SHUFFLE(1, 0, 1, 0));
    __m512 w2 = _mm512_shuffle_f32x4(v0, v1, _MM_SHUFFLE(3, 2, 3, 2));
    __m512 w3 = _mm512_shuffle_f32x4(v2, v3, _MM_SHUFFLE(3, 2, 3, 2));
    f[0] = _mm512_shuffle_f32x4(w0, w1, _MM_SHUFFLE(2, 0, 2, 0));
    f[1] = _mm512_shuffle_f32x4(w0, w1, _MM_SHUFFLE(3, 1, 3, 1));
    f[2] = _mm512_shuffle_f32x4(w2, w3, _MM_SHUFFLE(2, 0, 2, 0));
    f[3] = _mm512_shuffle_f32x4(w2, w3, _MM_SHUFFLE(3, 1, 3, 1));
}

/* y for output channels [co0, co1) of the block's tiles (whole tile rows from ty0) from M
 * ([k][co - co0][lane]): At along each tile's rows into q ([a][j][tile]), then At along
 * its columns, sixteen tiles of a tile row at once, stored as whole output rows. */
static __attribute__((target("avx512f"))) void
output_transform(const wino *w, int64_t bi, int64_t ty0, int64_t ntb, int64_t co0, int64_t co1,
                 int64_t ldv, const float *mo, float *q)
{
    const qc_conv2d *cv = w->job.cv;
    int64_t plane = cv->oh * cv->ow, rows = co1 - co0, trows = ntb / w->tw;
    for (int64_t co = co0; co < co1 && co < w->job.m; co++) {
        for (int64_t g = 0; g < ldv; g += 16)
            UNROLL for (int j = 0; j < 6; j++) {
                __m512 z[6], t[4];
                UNROLL for (int i = 0; i < 6; i++)
                    z[i] = _mm512_load_ps(mo + ((int64_t)(i * 6 + j) * rows + co - co0) * ldv +
                                          g);
                at6(z, t);
                UNROLL for (int a = 0; a < 4; a++)
                    _mm512_store_ps(q + (a * 6 + j) * ldv + g, t[a]);
            }
        float *yc = cv->y + (bi * w->job.m + co) * plane;
        __m512 bias = _mm512_set1_ps(cv->bias ? cv->bias[co] : 0.0f);
        for (int64_t ty = 0; ty < trows; ty++)
            for (int a = 0; a < 4 && 4 * (ty0 + ty) + a < cv->oh; a++) {
                float *yr = yc + (4 * (ty0 + ty) + a) * cv->ow;
                for (int64_t tx = 0; tx < w->tw; tx += 16) {
                    __mmask16 in = first_lanes(w->tw - tx);
                    __m512 z[6], o[4], f[4];
                    UNROLL for (int j = 0; j < 6; j++)
                        z[j] = _mm512_maskz_loadu_ps(in, q + (a * 6 + j) * ldv + ty * w->tw +
                                                         tx);
                    at6(z, o);
                    UNROLL for (int b = 0; b < 4; b++) {
                        o[b] = _mm512_add_ps(o[b], bias);
                        if (cv->act == QC_CONV_SILU)
                            o[b] = silu16(o[b]);
                        else if (cv->act == QC_CONV_QLUT)
                            o[b] = qlut16(o[b], cv->qact, cv->lut);
                    }
                    interleave4(o, f);
                    UNROLL for (int v = 0; v < 4; v++)
                        _mm512_mask_storeu_ps(yr + 4 * tx + 16 * v,
                                              first_lanes(cv->ow - 4 * tx - 16 * v), f[v]);
                }
            }
    }
}

static const wino_kern k512 = { input_transform, gemm_panel, output_transform };

/* conv_wino.h */
const wino_kern *qc_wino_kern(int vw)
{
    return vw == 16 ? &k512 : vw == 8 ? qc_wino_kern_avx2() : NULL;
}

/* Item: image bi, block blk of tiles, output channel part p (one slot for its scratch, V, M). */
static void job_items(void *vctx, int64_t lo, int64_t hi)
{
    wino_job *j = vctx;
    int s = qc_slot_claim(&j->busy, j->n_slots);
    int64_t tbv = (j->tb + 15) / 16 * 16;
    float *pre = j->buf + (int64_t)s * j->slot, *v = pre + j->pre * tbv,
          *mo = v + j->nk * j->c * tbv;
    for (int64_t it = lo; it < hi; it++) {
        int64_t p = it % j->mparts, blk = it / j->mparts % j->nblk, bi = it / j->mparts / j->nblk;
        int64_t t0 = blk * j->tb, ntb = j->nt - t0 < j->tb ? j->nt - t0 : j->tb;
        int64_t ldv = (ntb + 15) / 16 * 16;
        int64_t co0 = p * j->mchunk, co1 = co0 + j->mchunk < j->mp ? co0 + j->mchunk : j->mp;
        j->in(j, j->cv->x + bi * j->c * j->cv->ih * j->cv->iw, t0, ntb, ldv, pre, v);
        for (int64_t k = 0; k < j->nk; k++)
            for (int64_t cb = co0; cb < co1; cb += WR)
                j->k->panel(j->u + ((k * (j->mp / WR) + cb / WR) * j->c) * WR,
                            v + k * j->c * ldv, j->c, ldv,
                            mo + (k * (co1 - co0) + cb - co0) * ldv);
        j->out(j, bi, t0, ntb, co0, co1, ldv, mo, pre);
    }
    qc_slot_release(&j->busy, s);
}

/* conv_wino.h */
int qc_wino_run(wino_job *j, int threads, size_t ubytes, int layout,
                void (*pack)(const wino_job *j, float *u), qc_run *r, qc_err *err)
{
    int64_t want = 2 * threads, batch = j->cv->batch;
    j->mchunk = j->mp;
    j->mparts = 1;
    if (batch * j->nblk < want) {
        int64_t parts = (want + batch * j->nblk - 1) / (batch * j->nblk);
        j->mchunk = (j->mp / WR + parts - 1) / parts * WR;
        j->mparts = (j->mp + j->mchunk - 1) / j->mchunk;
    }
    qc_conv_cache *cache = j->cv->cache;
    int cs = qc_conv_cache_take(cache, j->cv->w, ubytes, layout);
    j->n_slots = threads < (int)(8 * sizeof j->busy) ? threads : (int)(8 * sizeof j->busy);
    j->busy = 0;
    int64_t tbv = (j->tb + 15) / 16 * 16;
    j->slot = (int64_t)(align64((size_t)(tbv * (j->pre + j->nk * (j->c + j->mchunk))) *
                                sizeof(float)) / sizeof(float));
    size_t sbytes = (size_t)(j->n_slots * j->slot) * sizeof(float);
    char *s = qc_run_scratch(r, (cs > 0 ? 0 : ubytes) + sbytes, err);
    if (!s)
        return err && err->code ? err->code : QC_ENOMEM;
    float *u = cs > 0 ? cache->wpk : (float *)s;
    if (cs != 1)
        pack(j, u);
    j->u = u;
    j->buf = (float *)(s + (cs > 0 ? 0 : ubytes));
    qc_par_for(batch * j->nblk * j->mparts, 1, job_items, j);
    return QC_OK;
}

/* The kernel set's transforms, on tile rows */
static void in_rows(const wino_job *j, const float *xb, int64_t t0, int64_t ntb, int64_t ldv,
                    float *h, float *v)
{
    const wino *w = (const wino *)j;
    j->k->in(w, xb, t0 / w->tw, ntb, ldv, h, v);
}

static void out_rows(const wino_job *j, int64_t bi, int64_t t0, int64_t ntb, int64_t co0,
                     int64_t co1, int64_t ldv, const float *mo, float *q)
{
    const wino *w = (const wino *)j;
    j->k->out(w, bi, t0 / w->tw, ntb, co0, co1, ldv, mo, q);
}

static void pack_job(const wino_job *j, float *u)
{
    pack_u(j->cv->w, j->m, j->c, j->mp, u);
}

/* conv_wino.h */
int qc_wino_mode(void)
{
    const char *e = getenv("QC_CONV_WINO");
    return !e || !*e ? -1 : e[0] == '1';
}

int qc_conv2d_wino(const qc_conv2d *cv, int vw, qc_run *r, qc_err *err)
{
    int mode = qc_wino_mode();
    if (mode == 0 || cv->wq || cv->group != 1 || cv->kh != 3 || cv->kw != 3 || cv->sh != 1 ||
        cv->sw != 1 || cv->dh != 1 || cv->dw != 1 || cv->oh < 1 || cv->ow < 1)
        return QC_EUNSUPPORTED;
    if (cv->ih * cv->iw > INT32_MAX / 2 || cv->oh * cv->ow > INT32_MAX / 2)
        return QC_EUNSUPPORTED;
    /* Where it pays on the Zen 4 it was measured on (calibrate bench --profile-json, one
     * thread, nudenet and ddddocr): from 12 channels in and 16 out and 20 tiles, 1.1-2.5x the
     * direct kernels (16 -> 16 channels on 80x80 1.4x, 12 -> 24 on 208x208 1.9x, 64 -> 64 on
     * 40x40 2.0-2.2x, on 20x20 1.1-1.2x); on 13x13 planes (16 tiles) 1.0-1.07x, on 10x10 (9)
     * 0.5-0.75x: lanes past the tiles and the transforms cost more than the multiplies saved.
     * The AVX2 set against the AVX2 direct kernels (QC_CONV_ISA=avx2 there) gains 1.1-2.1x
     * from 26x26 up but loses on 64 -> 64 at 20x20 (0.9-0.96x); it takes the same shapes all
     * the same, so that a model calibrates to the same bytes with either set. */
    wino w;
    memset(&w, 0, sizeof w);
    wino_job *j = &w.job;
    w.th = (cv->oh + 3) / 4;
    w.tw = (cv->ow + 3) / 4;
    j->nt = w.th * w.tw;
    if (mode < 0 && (cv->c < 12 || cv->m < 16 || j->nt < 20))
        return QC_EUNSUPPORTED;
    j->k = qc_wino_kern(vw);
    if (!j->k)
        return QC_EUNSUPPORTED;
    j->cv = cv;
    j->in = in_rows;
    j->out = out_rows;
    j->nk = WK;
    j->pre = WK;                /* h, then the output transform's q (24 rows) */
    j->c = cv->c;
    j->m = cv->m;
    j->mp = (cv->m + WR - 1) / WR * WR;
    int threads = qc_par_serial() ? 1 : qc_par_threads();
    /* Blocks of whole tile rows, near 240 tiles or V and M near 2 MiB (at least one row);
     * smaller blocks (not under 48 tiles: lanes past a block's tiles are wasted), then output
     * channel parts (qc_wino_run), until every thread has two items. */
    int64_t want = 2 * threads;
    int64_t target = (int64_t)(512 * 1024) / (WK * (j->c + j->mp));
    target = target < 48 ? 48 : target > 240 ? 240 : target;
    int64_t rb = target / w.tw < 1 ? 1 : target / w.tw;
    rb = rb > w.th ? w.th : rb;
    while (rb > 1 && (rb - 1) * w.tw >= 48 && cv->batch * ((w.th + rb - 1) / rb) < want)
        rb--;
    j->tb = rb * w.tw;
    j->nblk = (w.th + rb - 1) / rb;
    return qc_wino_run(j, threads, align64((size_t)(WK * j->mp * j->c) * sizeof(float)),
                       WINO_LAYOUT, pack_job, r, err);
}

#else

int qc_conv2d_wino(const qc_conv2d *cv, int vw, qc_run *r, qc_err *err)
{
    (void)cv; (void)vw; (void)r; (void)err;
    return QC_EUNSUPPORTED;
}

#endif
