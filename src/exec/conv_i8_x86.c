/* AVX-512 VNNI convolution on 8-bit codes, for the simulated quantized runs (qc_exec_opts
 * fuse_qdq, qc_iconv_mark). The input holds a fake quantization's values (code - zp) * s, so
 * value * (1 / s), rounded, plus zp gives the codes back exactly (|code - zp| <= 255: the
 * product is within 2^-14 of an integer); they are laid out per padded input row as groups of 4
 * channels, [row][c / 4][column][4] bytes, padding holding the zero point's code (value 0). The
 * int8 weights are packed per 32-channel panel as [kh][kw][c / 4][32][4]. One vpdpbusd adds a
 * broadcast group of 4 input codes times 4 weights into each of 16 channels, so a tile is the
 * float kernel's (MR positions x 32 channels, conv_x86.c) with a quarter of the reduction
 * steps. The int32 sums are exact; the epilogue subtracts the zero point's share (zp times the
 * weights' sum), scales by s * w_scale[m], adds the bias and runs the fused activation as the
 * float kernel does. Against the float kernel on the dequantized values, the only difference is
 * rounding: one rounding of the exact sum instead of one per product.
 *
 * Without VNNI, the same driver runs conv_avx2.c's integer tiles (conv_kset.itile): panels of
 * 16 channels, the same code layout, and VPMADDUBSW + VPMADDWD in place of vpdpbusd, whose
 * 16-bit pair sums are exact only for weights whose neighbouring channel pairs fit
 * (pairs_fit); other weights take the float kernels (README: what it saves on an AMD EPYC). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "conv_x86.h"
#include "par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "conv_kern.h"
#include "conv_x86_inl.h"

#define KG    4                 /* reduction values per 32-bit lane of vpdpbusd */
#define K_MAX 65536             /* K * 255 * 128 stays below 2^31 */

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

/* acc += u8 x s8 products of x and w, four to a lane. As inline assembly: GCC 12 gives the
 * builtin's accumulator a copy and a stack store per step (the tiles ran at float speed). */
static inline __attribute__((always_inline)) VNNI __m512i dpbusd(__m512i acc, __m512i x,
                                                                  __m512i w)
{
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
    return acc;
}

/* y[j * ldy + i] = act(float(sum_q x(i, q) . w(q, j) - corr[j]) * scale[j] + bias[j]) for
 * the MR positions i of one tile and the nm (<= 32) channels j of one panel; position i reads
 * its 4 codes of step q at xb[off[q] + i * SW]. */
static inline __attribute__((always_inline)) VNNI void
itile_body(const int MR, const int SW, const int NV, const int32_t *xb, const int32_t *off,
           const int8_t *wp, const int32_t *corr, const float *scale, const float *bias,
           int64_t k4, float *y, int64_t ldy, int64_t nm, int act, const float *qp,
           const float *lut)
{
    __m512i acc[MR_MAX][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int64_t q = 0; q < k4; q++) {
        const int32_t *p = xb + off[q];
        __m512i w0 = _mm512_load_si512(wp + q * NR * KG);
        __m512i w1 = NV > 1 ? _mm512_load_si512(wp + q * NR * KG + 64) : w0;
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512i v = _mm512_set1_epi32(p[i * SW]);
            acc[i][0] = dpbusd(acc[i][0], v, w0);
            if (NV > 1)
                acc[i][1] = dpbusd(acc[i][1], v, w1);
        }
    }
    __m512 f[MR_MAX][NV_MAX];
    const __m512i c0 = _mm512_load_si512(corr), c1 = _mm512_load_si512(corr + 16);
    const __m512 s0 = _mm512_load_ps(scale), s1 = _mm512_load_ps(scale + 16);
    const __m512 b0 = _mm512_load_ps(bias), b1 = _mm512_load_ps(bias + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][0], c0)), s0, b0);
        f[i][1] = NV > 1 ? _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][1], c1)),
                                           s1, b1)
                         : f[i][0];
    }
    epilogue(f, MR, NV, act, qp, lut);
    store_tile(f, MR, NV, y, ldy, nm);
}

#define ITILE(MR, SW, NV)                                                                   \
static VNNI void                                                                            \
itile_##MR##_##SW##_##NV(const int32_t *xb, const int32_t *off, const int8_t *wp,           \
                         const int32_t *corr, const float *scale, const float *bias,        \
                         int64_t k4, float *y, int64_t ldy, int64_t nm, int act,            \
                         const float *qp, const float *lut)                                 \
{                                                                                           \
    itile_body(MR, SW, NV, xb, off, wp, corr, scale, bias, k4, y, ldy, nm, act, qp, lut);  \
}
#define ITILES(MR) ITILE(MR, 1, 1) ITILE(MR, 1, 2) ITILE(MR, 2, 1) ITILE(MR, 2, 2)
ITILES(4) ITILES(5) ITILES(6) ITILES(7) ITILES(8) ITILES(9) ITILES(10) ITILES(11)
ITILES(12) ITILES(13) ITILES(14)

#define ITILE_ROW(MR) [MR] = { { itile_##MR##_1_1, itile_##MR##_1_2 },                      \
                               { itile_##MR##_2_1, itile_##MR##_2_2 } }
/* [MR][stride - 1][vectors - 1] */
static const itile_fn itiles[MR_MAX + 1][2][2] = {
    ITILE_ROW(4), ITILE_ROW(5), ITILE_ROW(6), ITILE_ROW(7), ITILE_ROW(8), ITILE_ROW(9),
    ITILE_ROW(10), ITILE_ROW(11), ITILE_ROW(12), ITILE_ROW(13), ITILE_ROW(14),
};

typedef struct i8_ctx {
    const qc_conv2d *cv;
    int64_t  c4, k4, panels;             /* channel groups, reduction steps, 32-ch panels */
    int64_t  oh, ow, ihp, iwp, sh, sw;   /* (possibly linearized) output and padded input */
    int64_t  ih, iw, ph, pw;             /* the input rows as laid out, and their padding */
    int64_t  mr, tpr, ntiles;
    int64_t  nr;                         /* channels a panel: 32 (VNNI), 16 (AVX2) */
    int      avx2;                       /* AVX2 tiles (conv_avx2.c) and code layout */
    float    inv_s;
    const float *x;                      /* current batch's input */
    int32_t *xq;                         /* its codes: [ihp][c4][iwp] groups of 4 */
    int8_t  *wpk;                        /* [panel][k4][nr][KG] */
    int32_t *corr;                       /* [panel][nr]: zero point x sum of the weights */
    float   *scale, *bpk;                /* [panel][nr]: xs * wqs[m], bias */
    int32_t *off;                        /* step -> offset in xq (4-byte units) */
    float   *y;                          /* current batch's output */
    itile_fn fn, fn16;
} i8_ctx;

/* Codes of 16 fake-quantized values (value / s rounded to nearest even, plus the zero
 * point, saturated to [0, 255]). */
static inline __attribute__((always_inline)) VNNI __m128i codes16(const float *src,
                                                                   __m512 inv, __m512i zp)
{
    __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(src), inv));
    c = _mm512_max_epi32(_mm512_add_epi32(c, zp), _mm512_setzero_si512());
    return _mm512_cvtusepi32_epi8(c);
}

static inline uint8_t code1(float v, float inv, int zp)
{
    float r = nearbyintf(v * inv);
    int c = (r > 1e6f ? 1000000 : r < -1e6f ? -1000000 : (int)r) + zp;
    return (uint8_t)(c < 0 ? 0 : c > 255 ? 255 : c);
}

/* Padded row `hp`, channel group g (iwp groups of 4 codes), begun: its 4 channels' source
 * rows in src (NULL: padding) and the left padding written; returns where the columns go, or
 * NULL when the whole row is padding (then written). */
static uint8_t *row_begin(const i8_ctx *c, int64_t hp, int64_t g, const float **src)
{
    const qc_conv2d *cv = c->cv;
    int64_t h = hp - c->ph;
    for (int e = 0; e < KG; e++) {
        int64_t ch = g * KG + e;
        src[e] = h >= 0 && h < c->ih && ch < cv->c ? c->x + (ch * c->ih + h) * c->iw : NULL;
    }
    uint8_t *dst = (uint8_t *)(c->xq + (hp * c->c4 + g) * c->iwp);
    if (!src[0] && !src[1] && !src[2] && !src[3]) {
        memset(dst, cv->xzp, (size_t)c->iwp * KG);
        return NULL;
    }
    memset(dst, cv->xzp, (size_t)c->pw * KG);
    return dst + c->pw * KG;
}

/* The row's columns from w on, one at a time, and its right padding. */
static void row_end(const i8_ctx *c, const float *const *src, uint8_t *row, int64_t w)
{
    int zp = c->cv->xzp;
    for (; w < c->iw; w++)
        for (int e = 0; e < KG; e++)
            row[w * KG + e] = src[e] ? code1(src[e][w], c->inv_s, zp) : (uint8_t)zp;
    memset(row + c->iw * KG, zp, (size_t)(c->iwp - c->pw - c->iw) * KG);
}

/* Lays out padded row `hp`, channel group g: 16 columns at a time. */
static VNNI void layout_row(const i8_ctx *c, int64_t hp, int64_t g)
{
    const float *src[KG];
    uint8_t *row = row_begin(c, hp, g, src);
    if (!row)
        return;
    const __m512 inv = _mm512_set1_ps(c->inv_s);
    const __m512i vzp = _mm512_set1_epi32(c->cv->xzp);
    const __m128i pad = _mm_set1_epi8((char)c->cv->xzp);
    int64_t w = 0;
    for (; w + 16 <= c->iw; w += 16) {
        __m128i v[KG];
        for (int e = 0; e < KG; e++)
            v[e] = src[e] ? codes16(src[e] + w, inv, vzp) : pad;
        __m128i ab0 = _mm_unpacklo_epi8(v[0], v[1]), ab1 = _mm_unpackhi_epi8(v[0], v[1]);
        __m128i cd0 = _mm_unpacklo_epi8(v[2], v[3]), cd1 = _mm_unpackhi_epi8(v[2], v[3]);
        _mm_storeu_si128((__m128i *)(row + w * KG), _mm_unpacklo_epi16(ab0, cd0));
        _mm_storeu_si128((__m128i *)(row + w * KG + 16), _mm_unpackhi_epi16(ab0, cd0));
        _mm_storeu_si128((__m128i *)(row + w * KG + 32), _mm_unpacklo_epi16(ab1, cd1));
        _mm_storeu_si128((__m128i *)(row + w * KG + 48), _mm_unpackhi_epi16(ab1, cd1));
    }
    row_end(c, src, row, w);
}

/* Codes of 8 fake-quantized values in the low 8 bytes, as codes16. */
static inline __attribute__((always_inline, target("avx2"))) __m128i codes8(const float *src,
                                                                             __m256 inv,
                                                                             __m256i zp)
{
    __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(src), inv));
    c = _mm256_max_epi32(_mm256_add_epi32(c, zp), _mm256_setzero_si256());
    __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    return _mm_packus_epi16(w, w);
}

/* layout_row with AVX2: 8 columns at a time. */
static __attribute__((target("avx2"))) void layout_row8(const i8_ctx *c, int64_t hp, int64_t g)
{
    const float *src[KG];
    uint8_t *row = row_begin(c, hp, g, src);
    if (!row)
        return;
    const __m256 inv = _mm256_set1_ps(c->inv_s);
    const __m256i vzp = _mm256_set1_epi32(c->cv->xzp);
    const __m128i pad = _mm_set1_epi8((char)c->cv->xzp);
    int64_t w = 0;
    for (; w + 8 <= c->iw; w += 8) {
        __m128i v[KG];
        for (int e = 0; e < KG; e++)
            v[e] = src[e] ? codes8(src[e] + w, inv, vzp) : pad;
        __m128i ab = _mm_unpacklo_epi8(v[0], v[1]), cd = _mm_unpacklo_epi8(v[2], v[3]);
        _mm_storeu_si128((__m128i *)(row + w * KG), _mm_unpacklo_epi16(ab, cd));
        _mm_storeu_si128((__m128i *)(row + w * KG + 16), _mm_unpackhi_epi16(ab, cd));
    }
    row_end(c, src, row, w);
}

static void layout_items(void *vctx, int64_t lo, int64_t hi)
{
    const i8_ctx *c = vctx;
    for (int64_t it = lo; it < hi; it++)
        if (c->avx2)
            layout_row8(c, it / c->c4, it % c->c4);
        else
            layout_row(c, it / c->c4, it % c->c4);
}

/* Packs weight panel pn (cache or scratch), its zero-point correction and scales. */
static void pack_panel_i8(const i8_ctx *c, int64_t pn)
{
    const qc_conv2d *cv = c->cv;
    int64_t nr = c->nr;
    int8_t *wp = c->wpk + pn * c->k4 * nr * KG;
    for (int j = 0; j < nr; j++) {
        int64_t m = pn * nr + j;
        int32_t sum = 0;
        for (int64_t a = 0; a < cv->kh; a++)
            for (int64_t b = 0; b < cv->kw; b++)
                for (int64_t g = 0; g < c->c4; g++)
                    for (int e = 0; e < KG; e++) {
                        int64_t ch = g * KG + e, q = (a * cv->kw + b) * c->c4 + g;
                        int8_t v = m < cv->m && ch < cv->c
                                       ? cv->wq[((m * cv->c + ch) * cv->kh + a) * cv->kw + b]
                                       : 0;
                        wp[(q * nr + j) * KG + e] = v;
                        sum += v;
                    }
        c->corr[pn * nr + j] = cv->xzp * sum;
        c->scale[pn * nr + j] = m < cv->m ? cv->xs * cv->wqs[cv->n_wqs == 1 ? 0 : m] : 0.0f;
    }
}

static void pack_items(void *vctx, int64_t lo, int64_t hi)
{
    for (int64_t pn = lo; pn < hi; pn++)
        pack_panel_i8(vctx, pn);
}

static void compute_items_i8(void *vctx, int64_t lo, int64_t hi)
{
    const i8_ctx *c = vctx;
    int64_t ohw = c->oh * c->ow, row = c->c4 * c->iwp;
    for (int64_t it = lo; it < hi; it++) {
        int64_t pn = it / c->ntiles, t = it % c->ntiles;
        int64_t oh = t / c->tpr, ow0 = (t % c->tpr) * c->mr;
        if (ow0 + c->mr > c->ow)        /* last tile of a row: shift left, overlapping */
            ow0 = c->ow - c->mr;
        int64_t m0 = pn * c->nr, nm = c->cv->m - m0 < c->nr ? c->cv->m - m0 : c->nr;
        itile_fn fn = nm > c->nr / 2 ? c->fn : c->fn16;
        fn(c->xq + oh * c->sh * row + ow0 * c->sw, c->off, c->wpk + pn * c->k4 * c->nr * KG,
           c->corr + m0, c->scale + m0, c->bpk + m0, c->k4, c->y + m0 * ohw + oh * c->ow + ow0,
           ohw, nm, c->cv->act, c->cv->qact, c->cv->lut);
    }
}

/* Whether each pair of neighbouring input channels (c, c + 1), c even, of the same sign keeps
 * |w| + |w'| <= 128 at every kernel position: with codes in [0, 255] the AVX2 tiles'
 * VPMADDUBSW is then exact (a pair of opposite signs stays within 255 * 128; an odd last
 * channel pairs with a zero). qcal's pair guard (src/quant/pairguard.c) keeps these very
 * pairs so for onnxruntime, so its models fit unless --no-pair-guard. Cached per constant
 * weight. */
static int pairs_fit(const qc_conv2d *cv)
{
    qc_conv_cache *k = cv->cache;
    if (k && k->pairs_key == cv->wq)
        return k->pairs_fit;
    int64_t sp = cv->kh * cv->kw;
    int fit = 1;
    for (int64_t m = 0; m < cv->m && fit; m++)
        for (int64_t c = 0; c + 1 < cv->c && fit; c += 2) {
            const int8_t *a = cv->wq + (m * cv->c + c) * sp, *b = a + sp;
            for (int64_t s = 0; s < sp && fit; s++)
                fit = (a[s] < 0) != (b[s] < 0) || abs(a[s]) + abs(b[s]) <= 128;
        }
    if (k)
        k->pairs_key = cv->wq, k->pairs_fit = fit;
    return fit;
}

/* The integer tiles for cv: 1 AVX-512 VNNI (this file's), 2 AVX2 (*ks's, where the weights'
 * pairs fit), 0 none. QC_ICONV=0 in the environment: none; QC_ICONV=avx2: never VNNI. */
static int pick_isa(const qc_conv2d *cv, const conv_kset **ks)
{
    const char *e = getenv("QC_ICONV");
    __builtin_cpu_init();
    if (!cv->wq || (e && e[0] == '0') || cv->group != 1 || (cv->sw != 1 && cv->sw != 2) ||
        (cv->n_wqs != 1 && cv->n_wqs != cv->m) || !(cv->xs > 0) || !isfinite(1.0f / cv->xs) ||
        cv->xzp < 0 || cv->xzp > 255 || cv->c * cv->kh * cv->kw > K_MAX)
        return 0;
    if (!(e && !strcmp(e, "avx2")) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
        return 1;
    *ks = qc_conv_kset_avx2();
    return *ks && (*ks)->imr_max && pairs_fit(cv) ? 2 : 0;
}

int qc_conv2d_i8(const qc_conv2d *cv, qc_run *r, qc_err *err)
{
    const conv_kset *ks = NULL;
    int isa = pick_isa(cv, &ks);
    if (!isa)
        return QC_EUNSUPPORTED;
    i8_ctx c;
    memset(&c, 0, sizeof c);
    c.cv = cv;
    c.avx2 = isa == 2;
    c.nr = c.avx2 ? 2 * ks->vw : NR;
    c.c4 = (cv->c + KG - 1) / KG;
    c.k4 = c.c4 * cv->kh * cv->kw;
    c.panels = (cv->m + c.nr - 1) / c.nr;
    c.inv_s = 1.0f / cv->xs;
    tile_grid g;
    tile_grid_of(cv, &g);
    c.oh = g.oh, c.ow = g.ow, c.sh = g.sh, c.sw = g.sw, c.ihp = g.ihp, c.iwp = g.iwp;
    /* the input rows as laid out: the plane as one row when linear */
    c.ih = g.linear ? 1 : cv->ih;
    c.iw = g.linear ? cv->ih * cv->iw : cv->iw;
    c.ph = g.linear ? 0 : cv->ph;
    c.pw = g.linear ? 0 : cv->pw;
    c.mr = pick_mr(c.ow, c.avx2 ? ks->imr_max : MR_MAX);
    if (!c.mr || c.ihp * c.c4 * c.iwp > INT32_MAX)
        return QC_EUNSUPPORTED;
    c.tpr = (c.ow + c.mr - 1) / c.mr;
    c.ntiles = c.oh * c.tpr;
    /* full panels, and panels of at most nr / 2 channels (one vector) */
    const itile_fn (*tiles)[2][2] = c.avx2 ? ks->itile : itiles;
    c.fn = tiles[c.mr][c.sw - 1][1];
    c.fn16 = tiles[c.mr][c.sw - 1][0];

    /* packed weights, corrections and scales: one block, kept for constant weights */
    size_t wbytes = align64((size_t)(c.panels * c.k4 * c.nr * KG));
    size_t vbytes = align64((size_t)(c.panels * c.nr) * sizeof(float));
    size_t pbytes = wbytes + 2 * vbytes;
    qc_conv_cache *cache = cv->cache;
    int cs = qc_conv_cache_take(cache, cv->wq, pbytes, c.avx2 ? 11 : 3), cached = cs > 0;
    size_t obytes = align64((size_t)c.k4 * sizeof(int32_t));
    size_t xbytes = align64((size_t)(c.ihp * c.c4 * c.iwp) * sizeof(int32_t));
    char *s = qc_run_scratch(r, (cached ? 0 : pbytes) + vbytes + obytes + xbytes, err);
    if (!s)
        return err && err->code ? err->code : QC_ENOMEM;
    char *pk = cached ? (char *)cache->wpk : s;
    s += cached ? 0 : pbytes;
    c.wpk = (int8_t *)pk;
    c.corr = (int32_t *)(pk + wbytes);
    c.scale = (float *)(pk + wbytes + vbytes);
    c.bpk = (float *)s;
    c.off = (int32_t *)(s + vbytes);
    c.xq = (int32_t *)(s + vbytes + obytes);
    if (cs != 1)                    /* into the cache just made, or scratch */
        qc_par_for(c.panels, 1, pack_items, &c);
    for (int64_t j = 0; j < c.panels * c.nr; j++)
        c.bpk[j] = j < cv->m && cv->bias ? cv->bias[j] : 0.0f;
    for (int64_t a = 0, q = 0; a < cv->kh; a++)
        for (int64_t b = 0; b < cv->kw; b++)
            for (int64_t g = 0; g < c.c4; g++)
                c.off[q++] = (int32_t)((a * cv->dh * c.c4 + g) * c.iwp + b * cv->dw);
    int64_t items = c.panels * c.ntiles;
    for (int64_t bi = 0; bi < cv->batch; bi++) {
        c.x = cv->x + bi * cv->c * cv->ih * cv->iw;
        c.y = cv->y + bi * cv->m * cv->oh * cv->ow;
        qc_par_for(c.ihp * c.c4, 8, layout_items, &c);
        qc_par_for(items, items / (8 * qc_par_threads()) + 1, compute_items_i8, &c);
    }
    return QC_OK;
}

#else

int qc_conv2d_i8(const qc_conv2d *cv, qc_run *r, qc_err *err)
{
    (void)cv; (void)r; (void)err;
    return QC_EUNSUPPORTED;
}

#endif
