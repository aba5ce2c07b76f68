/* Direct convolution: the driver, and its AVX-512 kernels (the AVX2 + FMA ones are in
 * conv_avx2.c, conv_kern.h says what a kernel set is). The output is computed in tiles of MR
 * consecutive output positions x 32 (or 48; 16 with AVX2) output channels: for every
 * reduction index k = (c, kh, kw) one input value per position is broadcast and multiplied
 * into two (three) weight vectors. The input is read in place (zero-padded into scratch only
 * when the conv has padding: whole, or block by block when it is over L2), so there is no
 * im2col; weights are packed into panels (once per node for constant weights). Work is split
 * over qc_par threads by (panel, tile), or by blocks of output rows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conv_x86.h"
#include "par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "conv_kern.h"
#include "conv_x86_inl.h"

/* One reduction step of a tile: MR input values (p[i * SW]) times NV weight vectors. */
static inline __attribute__((always_inline, target("avx512f"))) void
tile_step(const int MR, const int SW, const int NV, const float *p, const float *wq,
          __m512 (*acc)[NV_MAX])
{
    __m512 w[NV_MAX];
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++)
        w[v] = _mm512_load_ps(wq + 16 * v);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        __m512 x = _mm512_set1_ps(p[i * SW]);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[i][v] = _mm512_fmadd_ps(x, w[v], acc[i][v]);
    }
}

/* y[j * ldy + i] = bias[j] + sum_k x(i, k) * w(k, j) for the MR positions i of one tile and
 * the nm (<= NV * 16) valid channels j of one panel; position i reads xb[off[k] + i * SW], the
 * panel holds LD weights per reduction index (its first NV * 16 are used). MR, SW, NV and LD
 * are constants in each instance, so the accumulators stay in registers; the result is
 * transposed in registers so each channel's MR outputs go out as one masked store. */
static inline __attribute__((always_inline, target("avx512f"))) void
tile_body(const int MR, const int SW, const int NV, const int LD, const float *xb,
          const int32_t *off, const float *wp, const float *bias, int64_t k, float *y,
          int64_t ldy, int64_t nm, int act, const float *qp, const float *lut)
{
    __m512 acc[MR_MAX][NV_MAX];
    __m512 b[NV_MAX];
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++)
        b[v] = _mm512_loadu_ps(bias + 16 * v);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[i][v] = b[v];
    /* the weight panel (k x LD floats, 160 KiB at k = 1280 and LD = 32) streams from L2:
     * fetch 8 steps ahead (4-5% of magika's and ddddocr's bench time in alternating runs).
     * The last 8 steps run in a second loop without the prefetch, so the main loop needs no
     * clamp of the prefetch address: 6 scalar instructions fewer of ~57 a step at MR 14,
     * NV 2 (magika 1.0-1.6% faster in alternating runs of one process, nudenet within
     * noise). */
    const int64_t kp = k > 8 ? k - 8 : 0;
    for (int64_t q = 0; q < kp; q++) {
        const float *ahead = wp + (q + 8) * LD;
#pragma GCC unroll 3
        for (int v = 0; v < LD; v += 16)
            _mm_prefetch((const char *)(ahead + v), _MM_HINT_T0);
        tile_step(MR, SW, NV, xb + off[q], wp + q * LD, acc);
    }
    for (int64_t q = kp; q < k; q++)
        tile_step(MR, SW, NV, xb + off[q], wp + q * LD, acc);
    epilogue(acc, MR, NV, act, qp, lut);
    store_tile(acc, MR, NV, y, ldy, nm);
}

#define TILE(MR, SW, NV, LD)                                                                \
static __attribute__((target("avx512f"))) void                                              \
tile_##MR##_##SW##_##NV(const float *xb, const int32_t *off, const float *wp,               \
                        const float *bias, int64_t k, float *y, int64_t ldy, int64_t nm,    \
                        int act, const float *qp, const float *lut)                         \
{                                                                                           \
    tile_body(MR, SW, NV, LD, xb, off, wp, bias, k, y, ldy, nm, act, qp, lut);              \
}
#define TILES(MR) TILE(MR, 1, 1, 32) TILE(MR, 1, 2, 32) TILE(MR, 2, 1, 32) TILE(MR, 2, 2, 32)
#define TILES3(MR) TILE(MR, 1, 3, 48) TILE(MR, 2, 3, 48)
TILES(4) TILES(5) TILES(6) TILES(7) TILES(8) TILES(9) TILES(10) TILES(11) TILES(12)
TILES(13) TILES(14)
TILES3(4) TILES3(5) TILES3(6) TILES3(7) TILES3(8) TILES3(9)

/* 48-channel panels (3 vectors) take at most MR3_MAX positions: 3 x 9 accumulators */
#define MR3_MAX 9

typedef struct fast_ctx {
    const qc_conv2d *cv;
    const conv_kset *ks;
    int64_t  cg, mg, k, panels;          /* per group: channels, reduction, panels */
    int64_t  nr;                         /* channels a panel: 32, or 48 (see panel_width) */
    int64_t  oh, ow, ihp, iwp;           /* (possibly linearized) output and input grids */
    int64_t  sh, sw, mr, tpr, ntiles;    /* tiles: mr positions, tpr per output row */
    int64_t  tb;                         /* tiles a block (all panels run over a block) */
    int      pad;                        /* input goes through the padded copy */
    /* padded by blocks (pad_block_rows): each block of blk_rows output rows pads the rin input
     * rows it reads into a slot of xpad (slot floats each) just before its tiles run */
    int64_t  blk_rows, rin, span_h, slot;
    int      n_slots;
    unsigned long slots_busy;            /* bit s: slot s in use (atomic) */
    const float *xb;                     /* current batch's input (padded or not) */
    float   *xpad;                       /* padded copy (pad) */
    float   *wpk, *bpk;                  /* packed weights / bias: [group][panel] */
    int32_t *off;                        /* k -> input offset */
    float   *y;                          /* current batch's output */
    int64_t  batch_index;
    int      pack_w;                     /* weights still need packing this run */
    tile_fn  fn, fn16;                   /* full panels / panels of <= vw channels */
} fast_ctx;

/* Packs one weight panel (and its bias) of group/panel index gp. */
static void pack_panel(const fast_ctx *c, int64_t gp, float *wpk, float *bpk)
{
    const qc_conv2d *cv = c->cv;
    int64_t nr = c->nr, g = gp / c->panels, m0 = (gp % c->panels) * nr;
    float *wp = wpk + gp * c->k * nr;
    for (int j = 0; j < nr; j++) {
        int64_t m = g * c->mg + m0 + j;
        int ok = m0 + j < c->mg;
        if (bpk)
            bpk[gp * nr + j] = ok && cv->bias ? cv->bias[m] : 0.0f;
        if (!wpk)
            continue;
        const float *wr = cv->w + m * c->k;
        for (int64_t q = 0; q < c->k; q++)
            wp[q * nr + j] = ok ? wr[q] : 0.0f;
    }
}

/* Padded rows [r0, r0 + n) (rows of the padded grid, iwp wide) of input channel ch of batch
 * bi into dst, row i at dst + i * iwp. Only the padding is zeroed besides the copied values:
 * the copy is memory-bound on large inputs. */
static void pad_rows(const qc_conv2d *cv, int64_t bi, int64_t ch, int64_t r0, int64_t n,
                     float *dst, int64_t iwp)
{
    const float *src = cv->x + (bi * cv->c + ch) * cv->ih * cv->iw;
    int64_t right = iwp - cv->pw - cv->iw;
    for (int64_t i = 0; i < n; i++) {
        float *d = dst + i * iwp;
        int64_t h = r0 + i - cv->ph;
        if (h < 0 || h >= cv->ih) {
            memset(d, 0, (size_t)iwp * sizeof *d);
            continue;
        }
        memset(d, 0, (size_t)cv->pw * sizeof *d);
        memcpy(d + cv->pw, src + h * cv->iw, (size_t)cv->iw * sizeof *d);
        memset(d + cv->pw + cv->iw, 0, (size_t)right * sizeof *d);
    }
}

/* Input channel ch of batch bi, zero-padded to ihp x iwp at xpad (its plane ch). */
static void pad_channel(const qc_conv2d *cv, int64_t bi, int64_t ch, float *xpad, int64_t ihp,
                        int64_t iwp)
{
    pad_rows(cv, bi, ch, 0, ihp, xpad + ch * ihp * iwp, iwp);
}

/* Phase 1, items [0, c): padded copy of input channel i (when padding); items
 * [c, c + group * panels): one weight panel, packed unless cached. */
static void prep_items(void *vctx, int64_t lo, int64_t hi)
{
    fast_ctx *c = vctx;
    const qc_conv2d *cv = c->cv;
    int64_t nch = c->pad && !c->blk_rows ? cv->c : 0;
    for (int64_t it = lo; it < hi; it++) {
        if (it < nch) {
            pad_channel(cv, c->batch_index, it, c->xpad, c->ihp, c->iwp);
            continue;
        }
        pack_panel(c, it - nch, c->pack_w ? c->wpk : NULL, c->bpk);
    }
}

/* Tile t of panel pn in group g; its input rows from x (planes `plane` floats apart, input
 * row 0 of x being padded row row0). */
static inline void run_tile(const fast_ctx *c, int64_t g, int64_t pn, int64_t t, const float *x,
                            int64_t plane, int64_t row0)
{
    int64_t ohw = c->oh * c->ow;
    int64_t oh = t / c->tpr, ow0 = (t % c->tpr) * c->mr;
    if (ow0 + c->mr > c->ow)            /* last tile of a row: shift left, overlapping */
        ow0 = c->ow - c->mr;
    const float *xb = x + g * c->cg * plane + (oh * c->sh - row0) * c->iwp + ow0 * c->sw;
    int64_t gp = g * c->panels + pn;
    int64_t nr = c->nr, m0 = pn * nr, nm = c->mg - m0 < nr ? c->mg - m0 : nr;
    float *y = c->y + (g * c->mg + m0) * ohw + oh * c->ow + ow0;
    tile_fn fn = nm > c->ks->vw ? c->fn : c->fn16;
    fn(xb, c->off, c->wpk + gp * c->k * nr, c->bpk + gp * nr, c->k, y, ohw, nm,
       c->cv->act, c->cv->qact, c->cv->lut);
}

/* Phase 2: (group, panel, tile) items. */
static void compute_items(void *vctx, int64_t lo, int64_t hi)
{
    fast_ctx *c = vctx;
    int64_t per_group = c->panels * c->ntiles;
    int64_t per_block = c->panels * c->tb;
    for (int64_t it = lo; it < hi; it++) {
        int64_t g = it / per_group, r = it % per_group;
        int64_t blk = r / per_block, rb = r % per_block, t0 = blk * c->tb;
        int64_t bt = c->ntiles - t0 < c->tb ? c->ntiles - t0 : c->tb;
        run_tile(c, g, rb / bt, t0 + rb % bt, c->xb, c->ihp * c->iwp, 0);
    }
}

/* Phase 2 padded by blocks: each item a block of blk_rows output rows, padded into a slot
 * of its own (claimed for the call: at most one call a thread runs at once) and then run,
 * every group and panel over its tiles. */
static void block_items(void *vctx, int64_t lo, int64_t hi)
{
    fast_ctx *c = vctx;
    int s = qc_slot_claim(&c->slots_busy, c->n_slots);
    float *buf = c->xpad + (int64_t)s * c->slot;
    for (int64_t b = lo; b < hi; b++) {
        int64_t oh0 = b * c->blk_rows;
        int64_t n = c->oh - oh0 < c->blk_rows ? c->oh - oh0 : c->blk_rows;
        int64_t r0 = oh0 * c->sh, rows = (n - 1) * c->sh + c->span_h;
        for (int64_t ch = 0; ch < c->cv->c; ch++)
            pad_rows(c->cv, c->batch_index, ch, r0, rows, buf + ch * c->rin * c->iwp, c->iwp);
        for (int64_t g = 0; g < c->cv->group; g++)
            for (int64_t pn = 0; pn < c->panels; pn++)
                for (int64_t t = oh0 * c->tpr; t < (oh0 + n) * c->tpr; t++)
                    run_tile(c, g, pn, t, buf, c->rin * c->iwp, r0);
    }
    qc_slot_release(&c->slots_busy, s);
}

/* ---- pointwise (1x1, stride 1, no padding): y[m, p] = b[m] + sum_c w[m, c] x[c, p] ----
 * Output channels go along registers (MC <= 14 broadcast weights), positions along vector
 * lanes (NP vectors of 16 contiguous positions), so input rows are read as whole vectors
 * and results are stored as vectors without any transpose. */

#define MC_MAX 14
#define PW_LD  16               /* packed weights: 16 floats per reduction index */

static inline __attribute__((always_inline, target("avx512f"))) void
pw_body(const int MC, const int NP, const int OFF, const int FULL, const float *x, int64_t ldx,
        const int32_t *off, const float *wp, const float *bias, int64_t k, float *y,
        int64_t ldy, __mmask16 m0, __mmask16 m1, int act, const float *qp, const float *lut)
{
    __m512 acc[MC_MAX][NV_MAX];
#pragma GCC unroll 14
    for (int i = 0; i < MC; i++) {
        acc[i][0] = _mm512_set1_ps(bias[i]);
        acc[i][1] = acc[i][0];
    }
    for (int64_t q = 0; q < k; q++) {
        const float *xr = OFF ? x + off[q] : x + q * ldx, *wq = wp + q * PW_LD;
        /* The next tile's inputs: rows of many channel planes defeat the hardware
         * prefetchers once the input outgrows the caches. */
        _mm_prefetch((const char *)(xr + 32), _MM_HINT_T0);
        _mm_prefetch((const char *)(xr + 48), _MM_HINT_T0);
        __m512 x0, x1;
        if (FULL) {
            x0 = _mm512_loadu_ps(xr);
            x1 = NP > 1 ? _mm512_loadu_ps(xr + 16) : x0;
        } else {
            x0 = _mm512_maskz_loadu_ps(m0, xr);
            x1 = NP > 1 ? _mm512_maskz_loadu_ps(m1, xr + 16) : x0;
        }
#pragma GCC unroll 14
        for (int i = 0; i < MC; i++) {
            __m512 w = _mm512_set1_ps(wq[i]);
            acc[i][0] = _mm512_fmadd_ps(w, x0, acc[i][0]);
            if (NP > 1)
                acc[i][1] = _mm512_fmadd_ps(w, x1, acc[i][1]);
        }
    }
    epilogue(acc, MC, NP, act, qp, lut);
#pragma GCC unroll 14
    for (int i = 0; i < MC; i++) {
        _mm512_mask_storeu_ps(y + i * ldy, m0, acc[i][0]);
        if (NP > 1)
            _mm512_mask_storeu_ps(y + i * ldy + 16, m1, acc[i][1]);
    }
}

/* pw_MC: input row q at x + q * ldx (a 1x1 convolution); rw_MC: at x + off[q] (the rows a
 * stride-1 convolution reads from its padded input, one per (channel, kh, kw)). Whole tiles
 * of 32 positions take the body with plain loads: with masked ones GCC moves the masks into
 * mask registers on every reduction step, two more uops on an FMA port (10% of a 1x1
 * convolution's time). */
#define PW(NAME, OFF, MC)                                                                   \
static __attribute__((target("avx512f"))) void                                              \
NAME##_##MC(const float *x, int64_t ldx, const int32_t *off, const float *wp,               \
            const float *bias, int64_t k, float *y, int64_t ldy, int np, int act,           \
            const float *qp, const float *lut)                                              \
{                                                                                           \
    __mmask16 m0 = np >= 16 ? 0xffff : (__mmask16)((1u << np) - 1);                         \
    __mmask16 m1 = np >= 32 ? 0xffff : np > 16 ? (__mmask16)((1u << (np - 16)) - 1) : 0;    \
    if (np == 32)                                                                           \
        pw_body(MC, 2, OFF, 1, x, ldx, off, wp, bias, k, y, ldy, m0, m1, act, qp, lut);     \
    else                                                                                    \
        pw_body(MC, 2, OFF, 0, x, ldx, off, wp, bias, k, y, ldy, m0, m1, act, qp, lut);     \
}
#define PWS(NAME, OFF) PW(NAME, OFF, 1) PW(NAME, OFF, 2) PW(NAME, OFF, 3) PW(NAME, OFF, 4)     \
    PW(NAME, OFF, 5) PW(NAME, OFF, 6) PW(NAME, OFF, 7) PW(NAME, OFF, 8) PW(NAME, OFF, 9)      \
    PW(NAME, OFF, 10) PW(NAME, OFF, 11) PW(NAME, OFF, 12) PW(NAME, OFF, 13) PW(NAME, OFF, 14)
PWS(pw, 0)
PWS(rw, 1)

#define TILE_ROW(MR) [MR] = { { tile_##MR##_1_1, tile_##MR##_1_2 }, { tile_##MR##_2_1, tile_##MR##_2_2 } }
#define TILE_ROW3(MR) [MR] = { { tile_##MR##_1_1, tile_##MR##_1_2, tile_##MR##_1_3 },        \
                               { tile_##MR##_2_1, tile_##MR##_2_2, tile_##MR##_2_3 } }
static const conv_kset k512 = {
    .vw = 16, .mr_max = MR_MAX, .mr3_max = MR3_MAX, .mc_max = MC_MAX,
    .tile = { TILE_ROW3(4), TILE_ROW3(5), TILE_ROW3(6), TILE_ROW3(7), TILE_ROW3(8),
              TILE_ROW3(9), TILE_ROW(10), TILE_ROW(11), TILE_ROW(12), TILE_ROW(13),
              TILE_ROW(14) },
    .pw = { { NULL, pw_1, pw_2, pw_3, pw_4, pw_5, pw_6, pw_7, pw_8, pw_9, pw_10, pw_11, pw_12,
              pw_13, pw_14 },
            { NULL, rw_1, rw_2, rw_3, rw_4, rw_5, rw_6, rw_7, rw_8, rw_9, rw_10, rw_11, rw_12,
              rw_13, rw_14 } },
};

typedef struct pw_ctx {
    const qc_conv2d *cv;
    const conv_kset *ks;
    int64_t  tp, ld;                     /* positions a tile (2 vectors), floats a weight row */
    int64_t  cg, mg, hw, panels, ntiles; /* per group; ntiles of tp positions */
    int64_t  k;                          /* reduction: cg (1x1), cg * kh * kw (rows) */
    /* rows (pointwise otherwise): tiles of tp positions of one output row, tpr a row, reading
     * input rows at off[q] from the row's start in the input (padded into xpad when pad) */
    const int32_t *off;
    int64_t  tpr, ihp, iwp;
    int      pad;
    float   *xpad;
    const float *wpk;                    /* [group][panel][k][ld] */
    float   *bpk;                        /* [group][panel][ld] */
    float   *pack_into;                  /* pack weights here this run (NULL: cached) */
    int64_t  batch_index;
} pw_ctx;

/* Channels [*m0, *m0 + return) of panel pn: panels are balanced so none is tiny. */
static inline int64_t pw_panel(const pw_ctx *c, int64_t pn, int64_t *m0)
{
    *m0 = pn * c->mg / c->panels;
    return (pn + 1) * c->mg / c->panels - *m0;
}

static void pw_pack(const pw_ctx *c, int64_t gp, float *wpk, float *bpk)
{
    const qc_conv2d *cv = c->cv;
    int64_t g = gp / c->panels, m0, mc = pw_panel(c, gp % c->panels, &m0);
    for (int i = 0; i < c->ld; i++) {
        int ok = i < mc;
        int64_t m = g * c->mg + m0 + i;
        if (bpk)
            bpk[gp * c->ld + i] = ok && cv->bias ? cv->bias[m] : 0.0f;
        if (!wpk)
            continue;
        float *wp = wpk + gp * c->k * c->ld + i;
        for (int64_t q = 0; q < c->k; q++)
            wp[q * c->ld] = ok ? cv->w[m * c->k + q] : 0.0f;
    }
}

static void pw_prep_items(void *vctx, int64_t lo, int64_t hi)
{
    pw_ctx *c = vctx;
    for (int64_t gp = lo; gp < hi; gp++)
        pw_pack(c, gp, c->pack_into, c->bpk);
}

/* Items: (group, tile, panel), panels innermost so a tile of input stays in L1. */
static void pw_items(void *vctx, int64_t lo, int64_t hi)
{
    pw_ctx *c = vctx;
    const qc_conv2d *cv = c->cv;
    int64_t per_group = c->ntiles * c->panels;
    for (int64_t it = lo; it < hi; it++) {
        int64_t g = it / per_group, r = it % per_group;
        int64_t t = r / c->panels, pn = r % c->panels, ohw = cv->oh * cv->ow, p0, np;
        const float *x;
        if (c->off) {           /* rows: tp positions of output row oh from ow0 */
            int64_t oh = t / c->tpr, ow0 = t % c->tpr * c->tp;
            np = cv->ow - ow0 < c->tp ? cv->ow - ow0 : c->tp;
            p0 = oh * cv->ow + ow0;
            x = (c->pad ? c->xpad : cv->x + c->batch_index * cv->c * cv->ih * cv->iw) +
                g * c->cg * c->ihp * c->iwp + oh * cv->sh * c->iwp + ow0;
        } else {
            p0 = t * c->tp;
            np = c->hw - p0 < c->tp ? c->hw - p0 : c->tp;
            x = cv->x + (c->batch_index * cv->c + g * c->cg) * c->hw + p0;
        }
        int64_t m0c, mc = pw_panel(c, pn, &m0c);
        int64_t gp = g * c->panels + pn;
        float *y = cv->y + (c->batch_index * cv->m + g * c->mg + m0c) * ohw + p0;
        c->ks->pw[c->off != NULL][mc](x, c->hw, c->off, c->wpk + gp * c->k * c->ld,
                                      c->bpk + gp * c->ld, c->k, y, ohw, (int)np, cv->act,
                                      cv->qact, cv->lut);
    }
}

static void pw_pad_items(void *vctx, int64_t lo, int64_t hi)
{
    pw_ctx *c = vctx;
    for (int64_t ch = lo; ch < hi; ch++)
        pad_channel(c->cv, c->batch_index, ch, c->xpad, c->ihp, c->iwp);
}

/* The lanes kernels: a 1x1 convolution (g NULL), or with g (its tile grid) a stride-1 one
 * as rows of its (padded) input. */
static int lanes(const qc_conv2d *cv, const conv_kset *ks, const tile_grid *g, qc_run *r,
                 qc_err *err)
{
    pw_ctx c;
    memset(&c, 0, sizeof c);
    c.cv = cv;
    c.ks = ks;
    c.tp = 2 * ks->vw;
    c.ld = ks->vw;
    c.cg = cv->c / cv->group;
    c.mg = cv->m / cv->group;
    c.hw = cv->ih * cv->iw;
    c.k = c.cg * (g ? cv->kh * cv->kw : 1);
    c.panels = (c.mg + ks->mc_max - 1) / ks->mc_max;
    c.ntiles = (c.hw + c.tp - 1) / c.tp;
    if (g) {
        c.tpr = (cv->ow + c.tp - 1) / c.tp;
        c.ntiles = cv->oh * c.tpr;
        c.pad = cv->ph > 0 || cv->pw > 0 || g->ihp > cv->ih || g->iwp > cv->iw;
        c.ihp = c.pad ? g->ihp : cv->ih;
        c.iwp = c.pad ? g->iwp : cv->iw;
        if (cv->c * c.ihp * c.iwp > INT32_MAX)
            return QC_EUNSUPPORTED;
    }
    int64_t npack = cv->group * c.panels;
    size_t wbytes = align64((size_t)(npack * c.k * c.ld) * sizeof(float));
    size_t bbytes = align64((size_t)(npack * c.ld) * sizeof(float));
    size_t obytes = g ? align64((size_t)c.k * sizeof(int32_t)) : 0;
    size_t xbytes = c.pad ? (size_t)(cv->c * c.ihp * c.iwp) * sizeof(float) : 0;
    qc_conv_cache *cache = cv->cache;
    int cs = qc_conv_cache_take(cache, cv->w, wbytes, (g ? 3 : 2) + 8 * (ks->vw == 8)),
        cached = cs > 0;
    for (int64_t gp = 0; cs == 2 && gp < npack; gp++)
        pw_pack(&c, gp, cache->wpk, NULL);
    if (cached)
        wbytes = 0;
    char *s = qc_run_scratch(r, wbytes + bbytes + obytes + xbytes, err);
    if (!s)
        return err && err->code ? err->code : QC_ENOMEM;
    c.wpk = cached ? cache->wpk : (const float *)s;
    c.pack_into = cached ? NULL : (float *)s;
    c.bpk = (float *)(s + wbytes);
    if (g) {
        int32_t *off = (int32_t *)(s + wbytes + bbytes);
        for (int64_t ch = 0, q = 0; ch < c.cg; ch++)
            for (int64_t a = 0; a < cv->kh; a++)
                for (int64_t b = 0; b < cv->kw; b++)
                    off[q++] = (int32_t)(ch * c.ihp * c.iwp + a * cv->dh * c.iwp + b * cv->dw);
        c.off = off;
        c.xpad = c.pad ? (float *)(s + wbytes + bbytes + obytes) : NULL;
    }
    qc_par_for(npack, 4, pw_prep_items, &c);
    int64_t items = cv->group * c.ntiles * c.panels;
    for (int64_t bi = 0; bi < cv->batch; bi++) {
        c.batch_index = bi;
        if (c.pad)
            qc_par_for(cv->c, 4, pw_pad_items, &c);
        qc_par_for(items, items / (8 * qc_par_threads()) + 1, pw_items, &c);
    }
    return QC_OK;
}

/* Whether a stride-1 convolution runs as rows (lanes) rather than tiles: when the tiles'
 * panels (32 channels, the last one 16 when 16 are left; with AVX2 16 and 8) would use the
 * FMA units less than the row tails of 32 positions (AVX2: 16) do (24 output channels use 3/4 of the tiles' lanes; a
 * 16-channel panel does half a 32-channel one's work in about two thirds of its time, one
 * broadcast per FMA; a 208-wide row uses 13/14 of the rows' lanes). Measured: 24 channels on
 * 208-wide rows 2.20-2.55 -> 1.59-1.95 ms as rows, 16 -> 16 on 80-wide rows (5/6) 1.32 ->
 * 1.18 ms. QC_CONV_ROWS=0 or 1 in the environment decides instead (tests). */
static int use_rows(const qc_conv2d *cv, const conv_kset *ks)
{
    const char *e = getenv("QC_CONV_ROWS");
    if (cv->sw != 1)
        return 0;
    if (e && (e[0] == '0' || e[0] == '1'))
        return e[0] == '1';
    int64_t nr = 2 * ks->vw, mg = cv->m / cv->group, rem = mg % nr;
    double last = rem == 0 ? 0 : rem <= ks->vw ? nr * 2.0 / 3 : nr;  /* lanes' worth of time */
    double tiles = (double)mg / ((double)(mg - rem) + last);
    double rows = (double)cv->ow / (double)(nr * ((cv->ow + nr - 1) / nr));
    return rows > tiles + 0.05;
}

/* Output channels per tile panel: 48 (three vectors) when they come in 48s but not in 32s
 * (48, 144, ...: 32-channel panels would end in a 16-channel one, whose tiles do half the
 * work for about two thirds of the time), else 32; with AVX2 always 16. QC_CONV_NV3=0 or 1
 * in the environment decides instead where 48 would fit (tests). */
static int64_t panel_width(int64_t mg, const conv_kset *ks)
{
    const char *e = getenv("QC_CONV_NV3");
    if (!ks->mr3_max)
        return 2 * ks->vw;
    if (e && (e[0] == '0' || e[0] == '1'))
        return e[0] == '1' && mg > 32 ? 48 : 32;
    return mg % 48 == 0 && mg % 32 != 0 ? 48 : 32;
}

/* The L2 cache per core in bytes (512 KiB where the system does not say), asked once: in a
 * virtual machine the CPUID behind it can cost microseconds. */
static int64_t l2_bytes(void)
{
    static int64_t cached;
    int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        v = l2 > 0 ? l2 : (int64_t)512 << 10;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Tiles a block. Panels normally run one after another over all tiles, each reading the whole
 * input; when that input is over four times L2, all panels run over a block of tiles before
 * the next block, so the block's input (cg channels of the rows it covers, kept near 3/8 of
 * L2) comes from memory once for all of them. Measured on AMD Zen 3 (L2 512 KiB), one
 * convolution as its own model, alternating in one process (build/env_ab ... QC_CONV_TB
 * 100000000 "" 60, two threads): 3x3 stride 2, 24 -> 48 channels from 208 x 208 (4.2 MB of
 * padded input) 0.86-0.98x the time, 48 -> 96 from 104 x 104 (2.2 MB) 0.92-0.97x (the gain
 * grows with the machine's load); inputs of 0.45-1.7 MB 0.98-1.035x, hence the threshold.
 * QC_CONV_TB in the environment sets the block (tests). */
static int64_t tiles_a_block(const fast_ctx *c)
{
    const char *e = getenv("QC_CONV_TB");
    int64_t tb;
    if (e && (tb = strtoll(e, NULL, 10)) > 0)
        return tb < c->ntiles ? tb : c->ntiles;
    const qc_conv2d *cv = c->cv;
    int64_t l2 = l2_bytes(), budget = l2 / 8 * 3;
    int64_t span = (cv->kh - 1) * cv->dh + 1, rows_in = (c->oh - 1) * c->sh + span;
    int64_t row = c->cg * (int64_t)sizeof(float) * c->iwp;     /* one input row, all channels */
    if (c->panels == 1 || row * rows_in <= 4 * l2)
        return c->ntiles;
    int64_t rows = (budget / row - span) / c->sh + 1;         /* output rows a block */
    return rows >= 1 ? rows * c->tpr : c->tpr;
}

/* Output rows a block when a padded input is padded block by block (block_items), 0 when it
 * is copied whole first. A whole copy reads and writes the input once more before the tiles
 * read it; by blocks each block's rows are padded into a slot near 3/8 of L2 and read from
 * there at once. For inputs over L2 (smaller ones stay in cache between the copy and the
 * tiles); blocks of at most oh / (4 x threads) rows, so the threads share them evenly.
 * QC_CONV_PADBLK=0 or 1 in the environment decides instead (tests). */
static int64_t pad_block_rows(const fast_ctx *c)
{
    const char *e = getenv("QC_CONV_PADBLK");
    if (!c->pad || (e && e[0] == '0'))
        return 0;
    const qc_conv2d *cv = c->cv;
    int64_t row = cv->c * (int64_t)sizeof(float) * c->iwp;     /* one row, every channel */
    if (!(e && e[0] == '1') && row * c->ihp <= l2_bytes())
        return 0;
    int64_t rows = (l2_bytes() / 8 * 3 / row - c->span_h) / c->sh + 1;
    int64_t quarter = 4 * (int64_t)qc_par_threads(), even = (c->oh + quarter - 1) / quarter;
    rows = rows < even ? rows : even;
    return rows >= 1 ? rows : 1;
}

/* The kernels this CPU runs: AVX-512, else AVX2 + FMA, else none. QC_CONV_ISA=avx2 in the
 * environment takes the AVX2 ones where both run (tests). */
static const conv_kset *kernel_set(void)
{
    const char *e = getenv("QC_CONV_ISA");
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && !(e && !strcmp(e, "avx2")))
        return &k512;
    return qc_conv_kset_avx2();
}

int qc_conv2d_fast(const qc_conv2d *cv, qc_run *r, qc_err *err)
{
    int rc = cv->wq ? qc_conv2d_i8(cv, r, err) : QC_EUNSUPPORTED;
    if (rc != QC_EUNSUPPORTED)
        return rc;
    const conv_kset *ks = kernel_set();
    if (!ks || (cv->sw != 1 && cv->sw != 2))
        return QC_EUNSUPPORTED;
    if ((rc = qc_conv2d_wino(cv, ks->vw, r, err)) != QC_EUNSUPPORTED ||
        (rc = qc_conv1d_wino(cv, ks->vw, r, err)) != QC_EUNSUPPORTED)
        return rc;
    fast_ctx c;
    memset(&c, 0, sizeof c);
    c.cv = cv;
    c.ks = ks;
    c.cg = cv->c / cv->group;
    c.mg = cv->m / cv->group;
    c.k = c.cg * cv->kh * cv->kw;
    c.nr = panel_width(c.mg, ks);
    c.panels = (c.mg + c.nr - 1) / c.nr;
    tile_grid g;
    tile_grid_of(cv, &g);
    /* Pointwise kernels work in 32-position tiles (AVX2: 16); on small planes (measured: below
     * 20x20) or when padding the last tile wastes much, the general tiles below do better. */
    int64_t hw = cv->ih * cv->iw, tp = 2 * ks->vw;
    if (g.linear && hw >= 400 && ((hw + tp - 1) / tp * tp - hw) * 100 <= 15 * hw)
        return lanes(cv, ks, NULL, r, err);
    if (!g.linear && use_rows(cv, ks) && (rc = lanes(cv, ks, &g, r, err)) != QC_EUNSUPPORTED)
        return rc;
    c.oh = g.oh, c.ow = g.ow, c.sh = g.sh, c.sw = g.sw, c.ihp = g.ihp, c.iwp = g.iwp;
    c.pad = !g.linear && (cv->ph > 0 || cv->pw > 0 || c.ihp > cv->ih || c.iwp > cv->iw);
    if (!g.linear && !c.pad) {
        c.ihp = cv->ih;
        c.iwp = cv->iw;
    }
    c.mr = pick_mr(c.ow, c.nr == 3 * ks->vw ? ks->mr3_max : ks->mr_max);
    if (!c.mr || cv->c * c.ihp * c.iwp > INT32_MAX)
        return QC_EUNSUPPORTED;
    c.tpr = (c.ow + c.mr - 1) / c.mr;
    c.ntiles = c.oh * c.tpr;
    c.tb = tiles_a_block(&c);
    c.span_h = (cv->kh - 1) * cv->dh + 1;
    if ((c.blk_rows = pad_block_rows(&c)) > 0) {
        c.rin = (c.blk_rows - 1) * c.sh + c.span_h;
        c.n_slots = qc_par_threads();
        if (c.n_slots > (int)(8 * sizeof c.slots_busy))
            c.n_slots = (int)(8 * sizeof c.slots_busy);
        c.slot = (int64_t)(align64((size_t)(cv->c * c.rin * c.iwp) * sizeof(float)) /
                           sizeof(float));
    }
    c.fn = ks->tile[c.mr][c.sw - 1][c.nr / ks->vw - 1];
    /* a last panel of <= vw channels: one vector (LD nr); 48-channel panels run whole */
    c.fn16 = c.nr == 3 * ks->vw ? c.fn : ks->tile[c.mr][c.sw - 1][0];

    size_t wbytes = align64((size_t)(cv->group * c.panels * c.k * c.nr) * sizeof(float));
    /* packed once per node for constant weights */
    qc_conv_cache *cache = cv->cache;
    int cs = qc_conv_cache_take(cache, cv->w, wbytes, (c.nr == 48 ? 4 : 1) + 8 * (ks->vw == 8)),
        cached = cs > 0;
    for (int64_t gp = 0; cs == 2 && gp < cv->group * c.panels; gp++)
        pack_panel(&c, gp, cache->wpk, NULL);
    if (cached)
        wbytes = 0;
    size_t bbytes = align64((size_t)(cv->group * c.panels * c.nr) * sizeof(float));
    size_t obytes = align64((size_t)c.k * sizeof(int32_t));
    size_t xbytes = !c.pad ? 0 : c.blk_rows ? (size_t)(c.n_slots * c.slot) * sizeof(float)
                                            : (size_t)(cv->c * c.ihp * c.iwp) * sizeof(float);
    char *s = qc_run_scratch(r, wbytes + bbytes + obytes + xbytes, err);
    if (!s)
        return err && err->code ? err->code : QC_ENOMEM;
    c.wpk = cached ? cache->wpk : (float *)s;
    c.pack_w = !cached;
    c.bpk = (float *)(s + wbytes);
    c.off = (int32_t *)(s + wbytes + bbytes);
    c.xpad = c.pad ? (float *)(s + wbytes + bbytes + obytes) : NULL;
    int64_t plane = c.blk_rows ? c.rin * c.iwp : c.ihp * c.iwp;     /* the slot's planes */
    for (int64_t ch = 0, q = 0; ch < c.cg; ch++)
        for (int64_t a = 0; a < cv->kh; a++)
            for (int64_t b = 0; b < cv->kw; b++)
                c.off[q++] = (int32_t)(ch * plane + a * cv->dh * c.iwp + b * cv->dw);
    for (int64_t bi = 0; bi < cv->batch; bi++) {
        c.batch_index = bi;
        c.xb = c.pad ? c.xpad : cv->x + bi * cv->c * cv->ih * cv->iw;
        c.y = cv->y + bi * cv->m * cv->oh * cv->ow;
        int64_t nprep = (c.pad && !c.blk_rows ? cv->c : 0) +
                        (bi == 0 ? cv->group * c.panels : 0);
        c.pack_w = !cached;
        qc_par_for(nprep, 4, prep_items, &c);
        int64_t items = cv->group * c.panels * c.ntiles;
        if (c.blk_rows)
            qc_par_for((c.oh + c.blk_rows - 1) / c.blk_rows, 1, block_items, &c);
        else
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

void qc_conv_cache_free(qc_conv_cache *c)
{
    if (!c)
        return;
    free(c->wpk);
    c->wpk = NULL;
    c->w = NULL;
    c->nbytes = 0;
}

int qc_conv_cache_take(qc_conv_cache *c, const void *key, size_t nbytes, int layout)
{
    if (!c)
        return 0;
    if (c->w == key && c->nbytes == nbytes && c->layout == layout)
        return 1;
    qc_conv_cache_free(c);
    if (!(c->wpk = aligned_alloc(64, nbytes)))
        return 0;
    c->w = key;
    c->nbytes = nbytes;
    c->layout = layout;
    return 2;
}
