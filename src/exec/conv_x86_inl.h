/* Pieces shared by the float and the int8 AVX-512 convolution kernels (conv_x86.c,
 * conv_i8_x86.c): tile geometry, the fused activations, the transposing store. Private to
 * src/exec; x86-64 with GCC only (the includers check). */
#ifndef QC_CONV_X86_INL_H
#define QC_CONV_X86_INL_H

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include "conv_x86.h"
#include "lut_x86.h"

#define NR     32               /* output channels per panel (two zmm vectors) */
#define NV_MAX 3                /* vectors of 16 channels a tile can hold (48-channel panels) */
#define MR_MIN 4
#define MR_MAX 14

static inline size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* x * sigmoid(x) = x / (1 + exp(-x)); exp by Cephes' range reduction and polynomial
 * (about 1 ulp), the division exact. */
static inline __attribute__((always_inline, target("avx512f"))) __m512 silu16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_sub_ps(_mm512_setzero_ps(), x);
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-88.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, one));
    return _mm512_div_ps(x, _mm512_add_ps(one, _mm512_scalef_ps(p, n)));
}

/* The fused activation on the n x nv accumulator vectors of a tile (QC_CONV_*). */
static inline __attribute__((always_inline, target("avx512f"))) void
epilogue(__m512 (*acc)[NV_MAX], const int n, const int nv, int act, const float *qp,
         const float *lut)
{
    if (act == QC_CONV_SILU) {
#pragma GCC unroll 14
        for (int i = 0; i < n; i++) {
            acc[i][0] = silu16(acc[i][0]);
            if (nv > 1)
                acc[i][1] = silu16(acc[i][1]);
            if (nv > 2)
                acc[i][2] = silu16(acc[i][2]);
        }
    } else if (act == QC_CONV_QLUT) {
#pragma GCC unroll 14
        for (int i = 0; i < n; i++) {
            acc[i][0] = qlut16(acc[i][0], qp, lut);
            if (nv > 1)
                acc[i][1] = qlut16(acc[i][1], qp, lut);
            if (nv > 2)
                acc[i][2] = qlut16(acc[i][2], qp, lut);
        }
    }
}

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

/* Stores the MR x (NV * 16) tile acc (positions x channels) as nm (<= NV * 16) channel rows of MR
 * positions, ldy apart: transposed in registers, one masked store per channel. */
static inline __attribute__((always_inline, target("avx512f"))) void
store_tile(__m512 (*acc)[NV_MAX], const int MR, const int NV, float *y, int64_t ldy, int64_t nm)
{
    __mmask16 mask = (__mmask16)((1u << MR) - 1);
    for (int h = 0; h < NV && h * 16 < nm; h++) {
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

/* The grid the tiles cover: a pointwise conv (1x1, stride 1, no padding, same plane) as one
 * long row over the whole plane, else the output grid and the extent of (padded) input its
 * tiles read. */
typedef struct tile_grid {
    int     linear;
    int64_t oh, ow, sh, sw, ihp, iwp;
} tile_grid;

static inline void tile_grid_of(const qc_conv2d *cv, tile_grid *g)
{
    g->linear = cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 &&
                cv->pw == 0 && cv->oh == cv->ih && cv->ow == cv->iw;
    if (g->linear) {
        g->oh = g->ihp = 1;
        g->ow = g->iwp = cv->oh * cv->ow;
        g->sh = g->sw = 1;
        return;
    }
    g->oh = cv->oh;
    g->ow = cv->ow;
    g->sh = cv->sh;
    g->sw = cv->sw;
    int64_t need_h = (cv->oh - 1) * cv->sh + (cv->kh - 1) * cv->dh + 1;
    int64_t need_w = (cv->ow - 1) * cv->sw + (cv->kw - 1) * cv->dw + 1;
    g->ihp = cv->ih + cv->ph > need_h ? cv->ih + cv->ph : need_h;
    g->iwp = cv->iw + cv->pw > need_w ? cv->iw + cv->pw : need_w;
}

/* Positions per tile (at most mr_max) for a row of `ow`: fewest FMA-equivalent cycles, tails
 * overlapping. */
static inline int64_t pick_mr(int64_t ow, int64_t mr_max)
{
    int64_t best = 0;
    double best_cost = 0;
    for (int64_t mr = MR_MIN; mr <= mr_max && mr <= ow; mr++) {
        double cost = (double)((ow + mr - 1) / mr) * ((double)mr + 1.5);
        if (!best || cost < best_cost - 1e-9) {
            best = mr;
            best_cost = cost;
        }
    }
    return best;
}

#endif
