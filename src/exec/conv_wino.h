/* Winograd F(4x4, 3x3) convolution: what the driver (conv_wino.c) hands its kernel sets
 * (AVX-512 in conv_wino.c, AVX2 + FMA in conv_avx2.c). Private to src/exec. */
#ifndef QC_CONV_WINO_H
#define QC_CONV_WINO_H

#include <stdint.h>
#include <string.h>
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
 * image xb, h scratch of 36 ldv floats. panel: for one component and one panel of WR output
 * channels, m[r][lane] = sum over ci in order from 0 of u[ci][r] v[ci][lane] (c input
 * channels; v and m ldv floats a row, all ldv lanes). out: y of output channels [co0, co1)
 * of image bi from M ([k][co - co0][lane]), bias and act added, q scratch of 24 ldv floats. */
struct wino_kern {
    void (*in)(const wino *w, const float *xb, int64_t ty0, int64_t ntb, int64_t ldv, float *h,
               float *v);
    void (*panel)(const float *u, const float *v, int64_t c, int64_t ldv, float *m);
    void (*out)(const wino *w, int64_t bi, int64_t ty0, int64_t ntb, int64_t co0, int64_t co1,
                int64_t ldv, const float *mo, float *q);
};

/* For the sets' input transforms: input row yr of a block of `rows` tile rows from ty0
 * (counted from the first row the block's patches read; 4 rows + 2 in all) is row yr % 4 of
 * tile row yr / 4's patches and row yr % 4 + 4 of the one above. dst[] gets where its six
 * transforms go in h ([k][r][tile], ldv apart: component k at + 6 k ldv), at the tile row's
 * first tile; returns how many (1-2), or 0 for a row outside the image, whose places it
 * zeroes. */
static inline int wino_row_dst(const wino *w, int64_t ty0, int64_t rows, int64_t yr,
                               int64_t ldv, float *h, float **dst)
{
    int64_t y = 4 * ty0 - w->cv->ph + yr, r = yr % 4;
    int nd = 0;
    if (yr / 4 < rows)
        dst[nd++] = h + r * ldv + yr / 4 * w->tw;
    if (r < 2 && yr >= 4)
        dst[nd++] = h + (r + 4) * ldv + (yr / 4 - 1) * w->tw;
    if (y >= 0 && y < w->cv->ih)
        return nd;
    for (int d = 0; d < nd; d++)
        for (int k = 0; k < 6; k++)
            memset(dst[d] + k * 6 * ldv, 0, (size_t)w->tw * sizeof *h);
    return 0;
}

/* Lanes [ntb, ldv) of h's 36 rows: 0 */
static inline void wino_zero_tail(float *h, int64_t ntb, int64_t ldv)
{
    for (int q = 0; q < WK && ntb < ldv; q++)
        memset(h + q * ldv + ntb, 0, (size_t)(ldv - ntb) * sizeof *h);
}

/* The AVX2 + FMA set (conv_avx2.c); NULL without AVX2 and FMA. */
const wino_kern *qc_wino_kern_avx2(void);
/* The set of vector width vw (16: AVX-512, 8: AVX2 + FMA), NULL if none (conv_wino.c). */
const wino_kern *qc_wino_kern(int vw);
/* QC_CONV_WINO: 0 never, 1 on every convolution a Winograd path can run, -1 (unset): where it
 * pays. Read per call (tests switch it). */
int qc_wino_mode(void);

#endif
