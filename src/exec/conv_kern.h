/* The float convolution kernels of one instruction set, as the driver in conv_x86.c calls
 * them (AVX-512 there, AVX2 + FMA in conv_avx2.c). Private to src/exec; x86-64 with GCC only
 * (the includers check).
 *
 * Tiles: MR consecutive output positions x NV vectors of output channels; for every
 * reduction index one input value per position is broadcast into the NV weight vectors of
 * the panel (LD floats per reduction index, packed by the driver), and each channel's MR
 * results are stored as one row. Lanes: positions along vector lanes (two vectors a tile),
 * up to mc_max output channels broadcast from a panel of vw weights per reduction index. */
#ifndef QC_CONV_KERN_H
#define QC_CONV_KERN_H

#include <stdint.h>

#define KS_MR_MAX 14            /* the most tile positions of any instruction set */
#define KS_MC_MAX 14            /* the most lanes channels of any instruction set */

/* y[j * ldy + i] = act(bias[j] + sum_q x(i, q) w(q, j)) for the MR positions i of a tile and
 * the nm valid channels j of a panel; position i reads xb[off[q] + i * SW]. */
typedef void (*tile_fn)(const float *xb, const int32_t *off, const float *wp,
                        const float *bias, int64_t k, float *y, int64_t ldy, int64_t nm,
                        int act, const float *qp, const float *lut);

/* y[i * ldy + p] = act(bias[i] + sum_q w(q, i) x(q, p)) for the np (<= 2 vw) positions p of
 * a tile and the MC channels i of a panel; input row q at x + q * ldx (pointwise), or at
 * x + off[q] (rows). */
typedef void (*pw_fn)(const float *x, int64_t ldx, const int32_t *off, const float *wp,
                      const float *bias, int64_t k, float *y, int64_t ldy, int np, int act,
                      const float *qp, const float *lut);

/* Integer tiles (conv_i8_x86.c drives them): y[j * ldy + i] = act(float(sum_q x(i, q) . w(q, j)
 * - corr[j]) * scale[j] + bias[j]); position i reads its 4 uint8 codes of step q (4 input
 * channels) at xb[off[q] + i * SW], the panel holds NR (<= 32) channels x 4 int8 weights a
 * step. */
typedef void (*itile_fn)(const int32_t *xb, const int32_t *off, const int8_t *wp,
                         const int32_t *corr, const float *scale, const float *bias,
                         int64_t k4, float *y, int64_t ldy, int64_t nm, int act,
                         const float *qp, const float *lut);

typedef struct conv_kset {
    int         vw;             /* floats a vector: 16 or 8 */
    int         mr_max;         /* tile positions with up to 2 vectors */
    int         mr3_max;        /* with 3 vectors (panels of 3 vw channels); 0: none */
    int         mc_max;         /* lanes: channels a panel (<= vw) */
    tile_fn     tile[KS_MR_MAX + 1][2][3];  /* [MR][stride - 1][vectors - 1] */
    pw_fn       pw[2][KS_MC_MAX + 1];       /* [rows][MC] */
    /* integer tiles of 2 vectors of vw channels (AVX2: VPMADDUBSW, exact only where each
     * pair of neighbouring input channels keeps |w| + |w'| <= 128; see conv_i8_x86.c);
     * imr_max 0: none (AVX-512 VNNI has its own, in conv_i8_x86.c) */
    int         imr_max;
    itile_fn    itile[KS_MR_MAX + 1][2][2]; /* [MR][stride - 1][vectors - 1] */
} conv_kset;

/* conv_avx2.c: NULL unless the CPU has AVX2 and FMA */
const conv_kset *qc_conv_kset_avx2(void);

#endif
