/* Winograd F(4x4, 3x3) convolution: what the driver (conv_wino.c) hands its kernel sets
 * (AVX-512 in conv_wino.c, AVX2 + FMA in conv_avx2.c). Private to src/exec. */
#ifndef QC_CONV_WINO_H
#define QC_CONV_WINO_H

#include <stdint.h>
#include "conv_x86.h"

#define WR 8                        /* output channels a product tile (broadcast rows) */
#define WK 36                       /* components of a transformed tile */

typedef struct wino_kern wino_kern;

/* One convolution's plan. Tiles are 4x4 outputs; a block is whole tile rows; lanes past a
 * block's tiles (up to ldv, a multiple of 16) are computed on zeros and never stored. */
typedef struct wino {
    const qc_conv2d *cv;
    const wino_kern *k;
    const float *u;                 /* [36][mp / WR][c][WR], zero rows past m */
    int64_t  c, m, mp;              /* mp: m rounded up to WR */
    int64_t  th, tw, nt;            /* tiles down, across, an image */
    int64_t  tb, nblk;              /* tiles a block (whole tile rows), blocks an image */
    int64_t  mchunk, mparts;        /* output channels an item (multiple of WR), items a block */
    float   *buf;                   /* n_slots slots of slot floats: h (or q), V, M */
    int64_t  slot;
    int      n_slots;
    unsigned long busy;             /* bit s: slot s in use (atomic) */
} wino;

/* A kernel set. in: V[k][ci][lane] of the block's tiles (tile rows from ty0, ntb tiles) from
 * image xb, h scratch of 36 ldv floats. gemm: M[k][co - co0][lane] = sum over ci in order of
 * U[k][co][ci] V[k][ci][lane], co in [co0, co1) (multiples of WR). out: y of output channels
 * [co0, co1) of image bi from M, bias and act added, q scratch of 24 ldv floats. */
struct wino_kern {
    void (*in)(const wino *w, const float *xb, int64_t ty0, int64_t ntb, int64_t ldv, float *h,
               float *v);
    void (*gemm)(const wino *w, const float *v, int64_t ldv, int64_t co0, int64_t co1,
                 float *mo);
    void (*out)(const wino *w, int64_t bi, int64_t ty0, int64_t ntb, int64_t co0, int64_t co1,
                int64_t ldv, const float *mo, float *q);
};

/* The AVX2 + FMA set (conv_avx2.c); NULL without AVX2 and FMA. */
const wino_kern *qc_wino_kern_avx2(void);

#endif
