/* AVX2 + FMA kernels of the direct convolution (conv_kern.h; the driver is conv_x86.c), for
 * CPUs without AVX-512. Sixteen ymm registers: a tile is at most 6 positions x 2 vectors of 8
 * channels (12 accumulators, 2 weight vectors, 1 broadcast), a lanes tile 6 channels x 2
 * vectors of 8 positions. The epilogues compute what the AVX-512 ones do: SiLU by the same
 * Cephes exp, and the code-table lookup (QC_CONV_QLUT) with ops_qdq.c's codes. Also the
 * integer tiles of simulated quantized runs (VPMADDUBSW; conv_i8_x86.c drives them). */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "conv_kern.h"
#include "conv_wino.h"
#include "conv_x86.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "lut_x86.h"

#define A2 __attribute__((target("avx2,fma")))
#define MR2 6                   /* tile positions */
#define MC2 6                   /* lanes channels */
#define LD2 16                  /* tile panel: floats per reduction index */
#define VW  8

/* x * sigmoid(x) = x / (1 + exp(-x)) as conv_x86_inl.h's silu16, 2^n built in the exponent
 * bits (n in [-127, 127]; 2^-127 comes out 0, which 1 + ... cannot tell apart). */
static inline __attribute__((always_inline)) A2 __m256 silu8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_sub_ps(_mm256_setzero_ps(), x);
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-88.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), t);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, one));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                   _mm256_set1_epi32(127)), 23);
    return _mm256_div_ps(x, _mm256_add_ps(one, _mm256_mul_ps(p, _mm256_castsi256_ps(e))));
}

static inline __attribute__((always_inline)) A2 void
epilogue8(__m256 (*acc)[2], const int n, const int nv, int act, const float *qp,
          const float *lut)
{
    /* every loop over acc unrolled: an indexed one would keep the accumulators in memory */
    if (act == QC_CONV_SILU) {
#pragma GCC unroll 6
        for (int i = 0; i < n; i++)
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[i][v] = silu8(acc[i][v]);
    } else if (act == QC_CONV_QLUT) {
#pragma GCC unroll 6
        for (int i = 0; i < n; i++)
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                acc[i][v] = qlut8(acc[i][v], qp, lut);
    }
}

/* In-register transpose of an 8x8 block: r[i] lane j becomes r[j] lane i. Every loop here and
 * in store_tile8 is unrolled: GCC kept the rolled ones' arrays on the stack, 86 stack
 * references in tile8_5_1_2 against 28 unrolled, and a tile with a short reduction spent
 * its time there (3 -> 16 channels 3x3 stride 2 on 320 x 320, k = 27, one thread: 0.79-0.80
 * -> 0.61-0.64 ms, best of 150 runs, three alternating pairs of builds; 16 -> 32 on 160 x 160
 * stride 2, k = 144: 1.00-1.03 -> 0.98-1.05; k = 576: 1.43 -> 1.41-1.42). */
static inline __attribute__((always_inline)) A2 void tr8(__m256 *r)
{
    __m256 t[8], s[8];
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

/* The first MR (4..8) lanes of v to y[0, MR), with plain stores (masked stores are slow on
 * AMD cores). */
static inline __attribute__((always_inline)) A2 void store_mr(float *y, __m256 v, const int MR)
{
    if (MR == 8) {
        _mm256_storeu_ps(y, v);
        return;
    }
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    _mm_storeu_ps(y, lo);
    int rest = MR - 4;
    if (rest >= 2) {
        _mm_storel_pi((__m64 *)(y + 4), hi);
        if (rest == 3)
            _mm_store_ss(y + 6, _mm_movehl_ps(hi, hi));
    } else if (rest == 1) {
        _mm_store_ss(y + 4, hi);
    }
}

/* The MR x (NV * 8) tile acc (positions x channels) as nm channel rows of MR positions. */
static inline __attribute__((always_inline)) A2 void
store_tile8(__m256 (*acc)[2], const int MR, const int NV, float *y, int64_t ldy, int64_t nm)
{
#pragma GCC unroll 2
    for (int h = 0; h < NV; h++) {
        if (h * VW >= nm)
            break;
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            r[i] = i < MR ? acc[i][h] : _mm256_setzero_ps();
        tr8(r);
        int64_t n = nm - h * VW < VW ? nm - h * VW : VW;
#pragma GCC unroll 8
        for (int j = 0; j < VW; j++)
            if (j < n)
                store_mr(y + (h * VW + j) * ldy, r[j], MR);
    }
}

static inline __attribute__((always_inline)) A2 void
tile_step8(const int MR, const int SW, const int NV, const float *p, const float *wq,
           __m256 (*acc)[2])
{
    __m256 w0 = _mm256_load_ps(wq), w1 = NV > 1 ? _mm256_load_ps(wq + VW) : w0;
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        __m256 x = _mm256_broadcast_ss(p + i * SW);
        acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
        if (NV > 1)
            acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
    }
}

/* conv_x86.c's tile_body with 8-channel vectors, without its software prefetch: on AMD Zen 3
 * the panel streams as fast from the hardware prefetcher alone, and the extra instruction a
 * step cost time (one thread, 64 -> 64 channels 3x3 on 40 x 40, the weights and input of
 * nudenet's /model.22/cv2.0/cv2.0.0 with its SiLU: 1.50-1.53 -> 1.42-1.43 ms, the best of
 * 200 runs, four alternating pairs of builds). */
static inline __attribute__((always_inline)) A2 void
tile_body8(const int MR, const int SW, const int NV, const float *xb, const int32_t *off,
           const float *wp, const float *bias, int64_t k, float *y, int64_t ldy, int64_t nm,
           int act, const float *qp, const float *lut)
{
    __m256 acc[MR2][2];
    __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + VW);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        acc[i][0] = b0, acc[i][1] = b1;
    for (int64_t q = 0; q < k; q++)
        tile_step8(MR, SW, NV, xb + off[q], wp + q * LD2, acc);
    epilogue8(acc, MR, NV, act, qp, lut);
    store_tile8(acc, MR, NV, y, ldy, nm);
}

#define TILE8(MR, SW, NV)                                                                   \
static A2 void tile8_##MR##_##SW##_##NV(const float *xb, const int32_t *off, const float *wp, \
                                        const float *bias, int64_t k, float *y, int64_t ldy, \
                                        int64_t nm, int act, const float *qp,               \
                                        const float *lut)                                   \
{                                                                                           \
    tile_body8(MR, SW, NV, xb, off, wp, bias, k, y, ldy, nm, act, qp, lut);                 \
}
#define TILES8(MR) TILE8(MR, 1, 1) TILE8(MR, 1, 2) TILE8(MR, 2, 1) TILE8(MR, 2, 2)
TILES8(4) TILES8(5) TILES8(6)

/* Lanes: MC channels x 16 positions; FULL: all 16 valid (plain loads and stores). */
static inline __attribute__((always_inline)) A2 void
pw_body8(const int MC, const int OFF, const int FULL, const float *x, int64_t ldx,
         const int32_t *off, const float *wp, const float *bias, int64_t k, float *y,
         int64_t ldy, int np, int act, const float *qp, const float *lut)
{
    __m256 acc[MC2][2];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(np), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(np - VW), lane);
#pragma GCC unroll 6
    for (int i = 0; i < MC; i++)
        acc[i][0] = acc[i][1] = _mm256_set1_ps(bias[i]);
    for (int64_t q = 0; q < k; q++) {
        const float *xr = OFF ? x + off[q] : x + q * ldx, *wq = wp + q * VW;
        _mm_prefetch((const char *)(xr + 2 * VW), _MM_HINT_T0);
        __m256 x0 = FULL ? _mm256_loadu_ps(xr) : _mm256_maskload_ps(xr, m0);
        __m256 x1 = FULL ? _mm256_loadu_ps(xr + VW) : _mm256_maskload_ps(xr + VW, m1);
#pragma GCC unroll 6
        for (int i = 0; i < MC; i++) {
            __m256 w = _mm256_broadcast_ss(wq + i);
            acc[i][0] = _mm256_fmadd_ps(w, x0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(w, x1, acc[i][1]);
        }
    }
    epilogue8(acc, MC, 2, act, qp, lut);
#pragma GCC unroll 6
    for (int i = 0; i < MC; i++) {
        if (FULL) {
            _mm256_storeu_ps(y + i * ldy, acc[i][0]);
            _mm256_storeu_ps(y + i * ldy + VW, acc[i][1]);
        } else {
            _mm256_maskstore_ps(y + i * ldy, m0, acc[i][0]);
            _mm256_maskstore_ps(y + i * ldy + VW, m1, acc[i][1]);
        }
    }
}

#define PW8(NAME, OFF, MC)                                                                  \
static A2 void NAME##8_##MC(const float *x, int64_t ldx, const int32_t *off, const float *wp, \
                            const float *bias, int64_t k, float *y, int64_t ldy, int np,    \
                            int act, const float *qp, const float *lut)                     \
{                                                                                           \
    if (np == 2 * VW)                                                                       \
        pw_body8(MC, OFF, 1, x, ldx, off, wp, bias, k, y, ldy, np, act, qp, lut);           \
    else                                                                                    \
        pw_body8(MC, OFF, 0, x, ldx, off, wp, bias, k, y, ldy, np, act, qp, lut);           \
}
#define PWS8(NAME, OFF) PW8(NAME, OFF, 1) PW8(NAME, OFF, 2) PW8(NAME, OFF, 3) PW8(NAME, OFF, 4) \
    PW8(NAME, OFF, 5) PW8(NAME, OFF, 6)
PWS8(pw, 0)
PWS8(rw, 1)

/* ---- Integer tiles: MR positions x 2 vectors of 8 channels, int32 sums -------------------
 * A step is 4 input channels: each position's 4 uint8 codes, broadcast as one 32-bit lane,
 * times the panel's 4 int8 weights per channel; VPMADDUBSW adds the products of channels
 * (4g, 4g + 1) and (4g + 2, 4g + 3) into signed 16-bit lanes, saturating, so the sums are
 * exact only for weights whose pairs keep |w| + |w'| <= 128 (255 * 128 < 2^15): the driver
 * checks (conv_i8_x86.c). VPMADDWD by ones adds the two pairs into 32 bits. 16 ymm registers:
 * 10 accumulators at MR 5, 2 weight vectors, the broadcast, the ones and a product. */
#define IMR2 5

static inline __attribute__((always_inline)) A2 void
itile_body8(const int MR, const int SW, const int NV, const int32_t *xb, const int32_t *off,
            const int8_t *wp, const int32_t *corr, const float *scale, const float *bias,
            int64_t k4, float *y, int64_t ldy, int64_t nm, int act, const float *qp,
            const float *lut)
{
    __m256i acc[IMR2][2];
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 5
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    for (int64_t q = 0; q < k4; q++) {
        const int32_t *p = xb + off[q];
        const __m256i *wq = (const __m256i *)(wp + q * 2 * VW * 4);
        __m256i w0 = _mm256_load_si256(wq), w1 = NV > 1 ? _mm256_load_si256(wq + 1) : w0;
#pragma GCC unroll 5
        for (int i = 0; i < MR; i++) {
            __m256i v = _mm256_set1_epi32(p[i * SW]);
            acc[i][0] = _mm256_add_epi32(acc[i][0],
                                         _mm256_madd_epi16(_mm256_maddubs_epi16(v, w0), ones));
            if (NV > 1)
                acc[i][1] = _mm256_add_epi32(
                    acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(v, w1), ones));
            /* each position's sums complete here: left alone, GCC ran all ten products
             * first and kept six accumulators on the stack, a load and a store each a step
             * (one thread, a 64 -> 64 3x3 conv on 40 x 40 as QDQ: best of 200 runs
             * 0.813-0.815 -> 0.751-0.752 ms, alternating builds) */
            __asm__("" : "+x"(acc[i][0]), "+x"(acc[i][1]));
        }
    }
    __m256 f[MR2][2];
    const __m256i c0 = _mm256_loadu_si256((const __m256i *)corr);
    const __m256i c1 = _mm256_loadu_si256((const __m256i *)(corr + VW));
    const __m256 s0 = _mm256_loadu_ps(scale), s1 = _mm256_loadu_ps(scale + VW);
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + VW);
#pragma GCC unroll 5
    for (int i = 0; i < MR; i++) {
        f[i][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][0], c0)), s0, b0);
        f[i][1] = NV > 1 ? _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][1], c1)),
                                           s1, b1)
                         : f[i][0];
    }
    epilogue8(f, MR, NV, act, qp, lut);
    store_tile8(f, MR, NV, y, ldy, nm);
}

#define ITILE8(MR, SW, NV)                                                                  \
static A2 void itile8_##MR##_##SW##_##NV(const int32_t *xb, const int32_t *off,            \
                                         const int8_t *wp, const int32_t *corr,             \
                                         const float *scale, const float *bias, int64_t k4, \
                                         float *y, int64_t ldy, int64_t nm, int act,        \
                                         const float *qp, const float *lut)                 \
{                                                                                           \
    itile_body8(MR, SW, NV, xb, off, wp, corr, scale, bias, k4, y, ldy, nm, act, qp, lut); \
}
#define ITILES8(MR) ITILE8(MR, 1, 1) ITILE8(MR, 1, 2) ITILE8(MR, 2, 1) ITILE8(MR, 2, 2)
ITILES8(4) ITILES8(5)

#define IROW8(MR) [MR] = { { itile8_##MR##_1_1, itile8_##MR##_1_2 },                         \
                           { itile8_##MR##_2_1, itile8_##MR##_2_2 } }

#define ROW8(MR) [MR] = { { tile8_##MR##_1_1, tile8_##MR##_1_2 },                            \
                          { tile8_##MR##_2_1, tile8_##MR##_2_2 } }
static const conv_kset k256 = {
    .vw = VW, .mr_max = MR2, .mr3_max = 0, .mc_max = MC2,
    .tile = { ROW8(4), ROW8(5), ROW8(6) },
    .pw = { { NULL, pw8_1, pw8_2, pw8_3, pw8_4, pw8_5, pw8_6 },
            { NULL, rw8_1, rw8_2, rw8_3, rw8_4, rw8_5, rw8_6 } },
    .imr_max = IMR2,
    .itile = { IROW8(4), IROW8(5) },
};

const conv_kset *qc_conv_kset_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &k256 : NULL;
}

/* ---- Winograd F(4x4, 3x3) (conv_wino.h): the AVX-512 set's operations on 8 lanes in the
 * same order (transforms, sums over the input channels from 0, epilogues), so the same
 * bits. Partial stores go through a buffer: masked stores are slow on AMD cores. ---- */

#define WUNROLL _Pragma("GCC unroll 8")

static inline __attribute__((always_inline)) A2 void bt6_8(const __m256 *z, __m256 *o)
{
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f),
                 five = _mm256_set1_ps(5.0f);
    __m256 t0 = _mm256_fnmadd_ps(four, z[2], z[4]);
    __m256 t1 = _mm256_fnmadd_ps(four, z[1], z[3]);
    __m256 t2 = _mm256_sub_ps(z[4], z[2]);
    __m256 t3 = _mm256_mul_ps(two, _mm256_sub_ps(z[3], z[1]));
    o[0] = _mm256_fmadd_ps(four, z[0], _mm256_fnmadd_ps(five, z[2], z[4]));
    o[1] = _mm256_add_ps(t0, t1);
    o[2] = _mm256_sub_ps(t0, t1);
    o[3] = _mm256_add_ps(t2, t3);
    o[4] = _mm256_sub_ps(t2, t3);
    o[5] = _mm256_fmadd_ps(four, z[1], _mm256_fnmadd_ps(five, z[3], z[5]));
}

static inline __attribute__((always_inline)) A2 void at6_8(const __m256 *z, __m256 *o)
{
    __m256 s12 = _mm256_add_ps(z[1], z[2]), d12 = _mm256_sub_ps(z[1], z[2]);
    __m256 s34 = _mm256_add_ps(z[3], z[4]), d34 = _mm256_sub_ps(z[3], z[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(z[0], s12), s34);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d34, d12);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s34, s12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d34, d12), z[5]);
}

/* lanes [lo, hi) of 8 as a load mask */
static inline __attribute__((always_inline)) A2 __m256i lanes8(int64_t lo, int64_t hi)
{
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    lo = lo < 0 ? 0 : lo > 8 ? 8 : lo;
    hi = hi < 0 ? 0 : hi > 8 ? 8 : hi;
    return _mm256_and_si256(_mm256_cmpgt_epi32(i, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), i));
}

/* y[0, n) = the first n (<= 8) lanes of v */
static inline __attribute__((always_inline)) A2 void store_n8(float *y, __m256 v, int64_t n)
{
    if (n >= 8) {
        _mm256_storeu_ps(y, v);
    } else if (n > 0) {
        float t[8];
        _mm256_storeu_ps(t, v);
        memcpy(y, t, (size_t)n * sizeof *y);
    }
}

/* conv_wino.c's row_transform for 8 tiles: the 32 columns as an 8 x 4 transpose (its lanes
 * come out as tiles 0 2 4 6 1 3 5 7, put back in order), columns 32 and 33 read alone. */
static inline __attribute__((always_inline)) A2 void
row_transform8(const float *row, int64_t x0, int64_t iw, __m256 *h)
{
    const __m256i fix = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
    __m256 a[4], p[6];
    WUNROLL for (int v = 0; v < 4; v++) {
        int64_t lo = -(x0 + 8 * v), hi = iw - (x0 + 8 * v);
        a[v] = lo <= 0 && hi >= 8 ? _mm256_loadu_ps(row + x0 + 8 * v)
                                  : _mm256_maskload_ps(row + x0 + 8 * v, lanes8(lo, hi));
    }
    float e32 = x0 + 32 >= 0 && x0 + 32 < iw ? row[x0 + 32] : 0.0f;
    float e33 = x0 + 33 >= 0 && x0 + 33 < iw ? row[x0 + 33] : 0.0f;
    __m256 u0 = _mm256_unpacklo_ps(a[0], a[1]), u1 = _mm256_unpackhi_ps(a[0], a[1]);
    __m256 u2 = _mm256_unpacklo_ps(a[2], a[3]), u3 = _mm256_unpackhi_ps(a[2], a[3]);
    p[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(1, 0, 1, 0)), fix);
    p[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(3, 2, 3, 2)), fix);
    p[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(1, 0, 1, 0)), fix);
    p[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(3, 2, 3, 2)), fix);
    p[4] = _mm256_blend_ps(_mm256_permutevar8x32_ps(p[0], next), _mm256_set1_ps(e32), 0x80);
    p[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(p[1], next), _mm256_set1_ps(e33), 0x80);
    bt6_8(p, h);
}

static A2 void wino_in8(const wino *w, const float *xb, int64_t ty0, int64_t ntb, int64_t ldv,
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
            for (int64_t tx = 0; tx < w->tw && nd > 0; tx += 8) {
                __m256 o[6];
                row_transform8(row, 4 * tx - cv->pw, cv->iw, o);
                for (int d = 0; d < nd; d++)
                    WUNROLL for (int k = 0; k < 6; k++)
                        store_n8(dst[d] + k * 6 * ldv + tx, o[k], w->tw - tx);
            }
        }
        wino_zero_tail(h, ntb, ldv);
        for (int64_t g = 0; g < ldv; g += 8)
            WUNROLL for (int k = 0; k < 6; k++) {
                __m256 z[6], o[6];
                WUNROLL for (int r = 0; r < 6; r++)
                    z[r] = _mm256_load_ps(h + (k * 6 + r) * ldv + g);
                bt6_8(z, o);
                WUNROLL for (int i = 0; i < 6; i++)
                    _mm256_store_ps(v + ((int64_t)(i * 6 + k) * w->job.c + ci) * ldv + g, o[i]);
            }
    }
}

/* 4 of a panel's WR rows (u: their first, WR apart per input channel) x NV vectors of 8 */
#define WGEMM8(NV)                                                                            \
static A2 void wgemm8_##NV(const float *u, const float *v, int64_t c, int64_t ldv, float *mo) \
{                                                                                             \
    __m256 acc[4][NV];                                                                        \
    WUNROLL for (int r = 0; r < 4; r++)                                                       \
        WUNROLL for (int j = 0; j < NV; j++)                                                  \
            acc[r][j] = _mm256_setzero_ps();                                                  \
    for (int64_t ci = 0; ci < c; ci++) {                                                      \
        __m256 x[NV];                                                                         \
        WUNROLL for (int j = 0; j < NV; j++)                                                  \
            x[j] = _mm256_load_ps(v + ci * ldv + 8 * j);                                      \
        WUNROLL for (int r = 0; r < 4; r++) {                                                 \
            __m256 b = _mm256_broadcast_ss(u + ci * WR + r);                                  \
            WUNROLL for (int j = 0; j < NV; j++)                                              \
                acc[r][j] = _mm256_fmadd_ps(b, x[j], acc[r][j]);                              \
        }                                                                                     \
    }                                                                                         \
    WUNROLL for (int r = 0; r < 4; r++)                                                       \
        WUNROLL for (int j = 0; j < NV; j++)                                                  \
            _mm256_store_ps(mo + r * ldv + 8 * j, acc[r][j]);                                 \
}
WGEMM8(1)
WGEMM8(2)
WGEMM8(3)

/* a panel of WR rows as two halves of 4 */
static void wino_panel8(const float *u, const float *v, int64_t c, int64_t ldv, float *m)
{
    for (int half = 0; half < WR; half += 4) {
        const float *uh = u + half;
        float *mh = m + half * ldv;
        int64_t j = 0;
        for (; j + 24 <= ldv; j += 24)
            wgemm8_3(uh, v + j, c, ldv, mh + j);
        if (ldv - j == 16)
            wgemm8_2(uh, v + j, c, ldv, mh + j);
        else if (ldv - j == 8)
            wgemm8_1(uh, v + j, c, ldv, mh + j);
    }
}

static A2 void wino_out8(const wino *w, int64_t bi, int64_t ty0, int64_t ntb, int64_t co0,
                         int64_t co1, int64_t ldv, const float *mo, float *q)
{
    const qc_conv2d *cv = w->job.cv;
    int64_t plane = cv->oh * cv->ow, rows = co1 - co0, trows = ntb / w->tw;
    for (int64_t co = co0; co < co1 && co < w->job.m; co++) {
        for (int64_t g = 0; g < ldv; g += 8)
            WUNROLL for (int j = 0; j < 6; j++) {
                __m256 z[6], t[4];
                WUNROLL for (int i = 0; i < 6; i++)
                    z[i] = _mm256_load_ps(mo + ((int64_t)(i * 6 + j) * rows + co - co0) * ldv +
                                          g);
                at6_8(z, t);
                WUNROLL for (int a = 0; a < 4; a++)
                    _mm256_store_ps(q + (a * 6 + j) * ldv + g, t[a]);
            }
        float *yc = cv->y + (bi * w->job.m + co) * plane;
        __m256 bias = _mm256_set1_ps(cv->bias ? cv->bias[co] : 0.0f);
        for (int64_t ty = 0; ty < trows; ty++)
            for (int a = 0; a < 4 && 4 * (ty0 + ty) + a < cv->oh; a++) {
                float *yr = yc + (4 * (ty0 + ty) + a) * cv->ow;
                for (int64_t tx = 0; tx < w->tw; tx += 8) {
                    __m256i in = lanes8(0, w->tw - tx);
                    __m256 z[6], o[4];
                    WUNROLL for (int j = 0; j < 6; j++)
                        z[j] = _mm256_maskload_ps(q + (a * 6 + j) * ldv + ty * w->tw + tx, in);
                    at6_8(z, o);
                    WUNROLL for (int b = 0; b < 4; b++) {
                        o[b] = _mm256_add_ps(o[b], bias);
                        if (cv->act == QC_CONV_SILU)
                            o[b] = silu8(o[b]);
                        else if (cv->act == QC_CONV_QLUT)
                            o[b] = qlut8(o[b], cv->qact, cv->lut);
                    }
                    /* lane l of o[b]: column 4 l + b; as 32 consecutive columns */
                    __m256 u0 = _mm256_unpacklo_ps(o[0], o[1]), u1 = _mm256_unpackhi_ps(o[0], o[1]);
                    __m256 u2 = _mm256_unpacklo_ps(o[2], o[3]), u3 = _mm256_unpackhi_ps(o[2], o[3]);
                    __m256 v0 = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(1, 0, 1, 0));
                    __m256 v1 = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(3, 2, 3, 2));
                    __m256 v2 = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(1, 0, 1, 0));
                    __m256 v3 = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(3, 2, 3, 2));
                    __m256 f[4] = { _mm256_permute2f128_ps(v0, v1, 0x20),
                                    _mm256_permute2f128_ps(v2, v3, 0x20),
                                    _mm256_permute2f128_ps(v0, v1, 0x31),
                                    _mm256_permute2f128_ps(v2, v3, 0x31) };
                    WUNROLL for (int v = 0; v < 4; v++)
                        store_n8(yr + 4 * tx + 8 * v, f[v], cv->ow - 4 * tx - 8 * v);
                }
            }
    }
}

static const wino_kern wk256 = { wino_in8, wino_panel8, wino_out8 };

const wino_kern *qc_wino_kern_avx2(void)
{
    return qc_conv_kset_avx2() ? &wk256 : NULL;
}

#else

const conv_kset *qc_conv_kset_avx2(void)
{
    return NULL;
}

const wino_kern *qc_wino_kern_avx2(void)
{
    return NULL;
}

#endif
