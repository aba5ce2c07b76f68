/* AVX-512 direct convolution. The output is computed in tiles of MR consecutive output
 * positions x 32 output channels: for every reduction index k = (c, kh, kw) one input value
 * per position is broadcast and multiplied into two 16-channel weight vectors. The input is
 * read in place (zero-padded into scratch only when the conv has padding), so there is no
 * im2col; weights are packed per run into 32-channel panels. Work is split over qc_par
 * threads by (panel, tile). */
#include <stdint.h>
#include <string.h>
#include "conv_x86.h"
#include "par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define NR     32               /* output channels per panel (two zmm vectors) */
#define MR_MIN 4
#define MR_MAX 14

typedef void (*tile_fn)(const float *xb, const int32_t *off, const float *wp,
                        const float *bias, int64_t k, float *y, int64_t ldy, int64_t nm);

/* In-register transpose of a 16x16 block: r[i] lane j becomes r[j] lane i. */
static inline __attribute__((always_inline, target("avx512f"))) void tr16(__m512 *r)
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int h = 0; h < 16; h += 8) {
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* y[j * ldy + i] = bias[j] + sum_k x(i, k) * w(k, j) for the MR positions i of one tile and
 * the nm (<= 32) valid channels j of one panel; position i reads xb[off[k] + i * SW]. MR and
 * SW are constants in each instance, so the accumulators stay in registers; the result is
 * transposed in registers so each channel's MR outputs go out as one masked store. */
static inline __attribute__((always_inline, target("avx512f"))) void
tile_body(const int MR, const int SW, const float *xb, const int32_t *off, const float *wp,
          const float *bias, int64_t k, float *y, int64_t ldy, int64_t nm)
{
    __m512 acc[MR_MAX][2];
    __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        acc[i][0] = b0;
        acc[i][1] = b1;
    }
    for (int64_t q = 0; q < k; q++) {
        const float *p = xb + off[q];
        __m512 w0 = _mm512_load_ps(wp + q * NR), w1 = _mm512_load_ps(wp + q * NR + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512 v = _mm512_set1_ps(p[i * SW]);
            acc[i][0] = _mm512_fmadd_ps(v, w0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(v, w1, acc[i][1]);
        }
    }
    __mmask16 mask = (__mmask16)((1u << MR) - 1);
    for (int h = 0; h < 2 && h * 16 < nm; h++) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            r[i] = i < MR ? acc[i][h] : _mm512_setzero_ps();
        tr16(r);
        int64_t n = nm - h * 16 < 16 ? nm - h * 16 : 16;
        for (int64_t j = 0; j < n; j++)
            _mm512_mask_storeu_ps(y + (h * 16 + j) * ldy, mask, r[j]);
    }
}

#define TILE(MR, SW)                                                                        \
static __attribute__((target("avx512f"))) void                                              \
tile_##MR##_##SW(const float *xb, const int32_t *off, const float *wp, const float *bias,   \
                 int64_t k, float *y, int64_t ldy, int64_t nm)                              \
{                                                                                           \
    tile_body(MR, SW, xb, off, wp, bias, k, y, ldy, nm);                                    \
}
#define TILES(MR) TILE(MR, 1) TILE(MR, 2)
TILES(4) TILES(5) TILES(6) TILES(7) TILES(8) TILES(9) TILES(10) TILES(11) TILES(12)
TILES(13) TILES(14)

static const tile_fn tiles[MR_MAX + 1][2] = {
    [4] = { tile_4_1, tile_4_2 },   [5] = { tile_5_1, tile_5_2 },
    [6] = { tile_6_1, tile_6_2 },   [7] = { tile_7_1, tile_7_2 },
    [8] = { tile_8_1, tile_8_2 },   [9] = { tile_9_1, tile_9_2 },
    [10] = { tile_10_1, tile_10_2 }, [11] = { tile_11_1, tile_11_2 },
    [12] = { tile_12_1, tile_12_2 }, [13] = { tile_13_1, tile_13_2 },
    [14] = { tile_14_1, tile_14_2 },
};

typedef struct fast_ctx {
    const qc_conv2d *cv;
    int64_t  cg, mg, k, panels;          /* per group: channels, reduction, 32-ch panels */
    int64_t  oh, ow, ihp, iwp;           /* (possibly linearized) output and input grids */
    int64_t  sh, sw, mr, tpr, ntiles;    /* tiles: mr positions, tpr per output row */
    int      pad;                        /* input goes through the padded copy */
    const float *xb;                     /* current batch's input (padded or not) */
    float   *xpad;                       /* padded copy (pad) */
    float   *wpk, *bpk;                  /* packed weights / bias: [group][panel] */
    int32_t *off;                        /* k -> input offset */
    float   *y;                          /* current batch's output */
    int64_t  batch_index;
    tile_fn  fn;
} fast_ctx;

/* Phase 1, items [0, c): padded copy of input channel i; items [c, c + group * panels):
 * packing of one weight panel (first batch only). */
static void prep_items(void *vctx, int64_t lo, int64_t hi)
{
    fast_ctx *c = vctx;
    const qc_conv2d *cv = c->cv;
    int64_t nch = c->pad ? cv->c : 0;
    for (int64_t it = lo; it < hi; it++) {
        if (it < nch) {
            const float *src = cv->x + (c->batch_index * cv->c + it) * cv->ih * cv->iw;
            float *dst = c->xpad + it * c->ihp * c->iwp;
            memset(dst, 0, (size_t)(c->ihp * c->iwp) * sizeof *dst);
            for (int64_t h = 0; h < cv->ih; h++)
                memcpy(dst + (h + cv->ph) * c->iwp + cv->pw, src + h * cv->iw,
                       (size_t)cv->iw * sizeof *dst);
            continue;
        }
        int64_t gp = it - nch, g = gp / c->panels, m0 = (gp % c->panels) * NR;
        float *wp = c->wpk + gp * c->k * NR, *bp = c->bpk + gp * NR;
        for (int j = 0; j < NR; j++) {
            int64_t m = g * c->mg + m0 + j;
            int ok = m0 + j < c->mg;
            bp[j] = ok && cv->bias ? cv->bias[m] : 0.0f;
            const float *wr = cv->w + m * c->k;
            for (int64_t q = 0; q < c->k; q++)
                wp[q * NR + j] = ok ? wr[q] : 0.0f;
        }
    }
}

/* Phase 2: (group, panel, tile) items. */
static void compute_items(void *vctx, int64_t lo, int64_t hi)
{
    fast_ctx *c = vctx;
    int64_t per_group = c->panels * c->ntiles;
    int64_t plane = c->ihp * c->iwp, ohw = c->oh * c->ow;
    for (int64_t it = lo; it < hi; it++) {
        int64_t g = it / per_group, r = it % per_group;
        int64_t pn = r / c->ntiles, t = r % c->ntiles;
        int64_t oh = t / c->tpr, ow0 = (t % c->tpr) * c->mr;
        if (ow0 + c->mr > c->ow)        /* last tile of a row: shift left, overlapping */
            ow0 = c->ow - c->mr;
        const float *xb = c->xb + g * c->cg * plane + oh * c->sh * c->iwp + ow0 * c->sw;
        int64_t gp = g * c->panels + pn;
        int64_t m0 = pn * NR, nm = c->mg - m0 < NR ? c->mg - m0 : NR;
        float *y = c->y + (g * c->mg + m0) * ohw + oh * c->ow + ow0;
        c->fn(xb, c->off, c->wpk + gp * c->k * NR, c->bpk + gp * NR, c->k, y, ohw, nm);
    }
}

/* Positions per tile for a row of `ow`: fewest FMA-equivalent cycles, tails overlapping. */
static int64_t pick_mr(int64_t ow)
{
    int64_t best = 0;
    double best_cost = 0;
    for (int64_t mr = MR_MIN; mr <= MR_MAX && mr <= ow; mr++) {
        double cost = (double)((ow + mr - 1) / mr) * ((double)mr + 1.5);
        if (!best || cost < best_cost - 1e-9) {
            best = mr;
            best_cost = cost;
        }
    }
    return best;
}

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

int qc_conv2d_fast(const qc_conv2d *cv, qc_run *r, qc_err *err)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || (cv->sw != 1 && cv->sw != 2))
        return QC_EUNSUPPORTED;
    fast_ctx c;
    memset(&c, 0, sizeof c);
    c.cv = cv;
    c.cg = cv->c / cv->group;
    c.mg = cv->m / cv->group;
    c.k = c.cg * cv->kh * cv->kw;
    c.panels = (c.mg + NR - 1) / NR;
    int linear = cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 &&
                 cv->pw == 0 && cv->oh == cv->ih && cv->ow == cv->iw;
    if (linear) {           /* pointwise: one long row over the whole plane */
        c.oh = 1;
        c.ow = cv->oh * cv->ow;
        c.ihp = 1;
        c.iwp = c.ow;
        c.sh = c.sw = 1;
    } else {
        c.oh = cv->oh;
        c.ow = cv->ow;
        c.sh = cv->sh;
        c.sw = cv->sw;
        int64_t need_h = (cv->oh - 1) * cv->sh + (cv->kh - 1) * cv->dh + 1;
        int64_t need_w = (cv->ow - 1) * cv->sw + (cv->kw - 1) * cv->dw + 1;
        c.ihp = cv->ih + cv->ph > need_h ? cv->ih + cv->ph : need_h;
        c.iwp = cv->iw + cv->pw > need_w ? cv->iw + cv->pw : need_w;
        c.pad = cv->ph > 0 || cv->pw > 0 || c.ihp > cv->ih || c.iwp > cv->iw;
        if (!c.pad) {
            c.ihp = cv->ih;
            c.iwp = cv->iw;
        }
    }
    c.mr = pick_mr(c.ow);
    if (!c.mr || cv->c * c.ihp * c.iwp > INT32_MAX)
        return QC_EUNSUPPORTED;
    c.tpr = (c.ow + c.mr - 1) / c.mr;
    c.ntiles = c.oh * c.tpr;
    c.fn = tiles[c.mr][c.sw - 1];

    size_t wbytes = align64((size_t)(cv->group * c.panels * c.k * NR) * sizeof(float));
    size_t bbytes = align64((size_t)(cv->group * c.panels * NR) * sizeof(float));
    size_t obytes = align64((size_t)c.k * sizeof(int32_t));
    size_t xbytes = c.pad ? (size_t)(cv->c * c.ihp * c.iwp) * sizeof(float) : 0;
    char *s = qc_run_scratch(r, wbytes + bbytes + obytes + xbytes, err);
    if (!s)
        return err && err->code ? err->code : QC_ENOMEM;
    c.wpk = (float *)s;
    c.bpk = (float *)(s + wbytes);
    c.off = (int32_t *)(s + wbytes + bbytes);
    c.xpad = c.pad ? (float *)(s + wbytes + bbytes + obytes) : NULL;
    for (int64_t ch = 0, q = 0; ch < c.cg; ch++)
        for (int64_t a = 0; a < cv->kh; a++)
            for (int64_t b = 0; b < cv->kw; b++)
                c.off[q++] = (int32_t)(ch * c.ihp * c.iwp + a * cv->dh * c.iwp + b * cv->dw);
    for (int64_t bi = 0; bi < cv->batch; bi++) {
        c.batch_index = bi;
        c.xb = c.pad ? c.xpad : cv->x + bi * cv->c * cv->ih * cv->iw;
        c.y = cv->y + bi * cv->m * cv->oh * cv->ow;
        int64_t nprep = (c.pad ? cv->c : 0) + (bi == 0 ? cv->group * c.panels : 0);
        qc_par_for(nprep, 4, prep_items, &c);
        int64_t items = cv->group * c.panels * c.ntiles;
        qc_par_for(items, items / (8 * qc_par_threads()) + 1, compute_items, &c);
    }
    return QC_OK;
}

#else

int qc_conv2d_fast(const qc_conv2d *cv, qc_run *r, qc_err *err)
{
    (void)cv; (void)r; (void)err;
    return QC_EUNSUPPORTED;
}

#endif
