/* Winograd convolutions: what the driver (conv_wino.c) shares with the 1-D path
 * (conv_wino1d.c) and hands its kernel sets (AVX-512 in conv_wino.c, AVX2 + FMA in
 * conv_avx2.c). Private to src/exec. */
#ifndef QC_CONV_WINO_H
#define QC_CONV_WINO_H

#include <stdint.h>
#include <string.h>
#include "conv_x86.h"

#define WR 8                        /* output channels a product tile (broadcast rows) */
#define WK 36                       /* components of a transformed 4x4 tile */

typedef struct wino_kern wino_kern;
typedef struct wino_job wino_job;

/* A path's transforms of one work item: in, the tiles t0.. (ntb of them) of image xb into
 * V[k][ci][lane] (scratch: pre ldv floats); out, y of output channels [co0, co1) of image bi
 * from M ([k][co - co0][lane]), bias and activation added (the same scratch). */
typedef void (*wino_in_fn)(const wino_job *j, const float *xb, int64_t t0, int64_t ntb,
                           int64_t ldv, float *scratch, float *v);
typedef void (*wino_out_fn)(const wino_job *j, int64_t bi, int64_t t0, int64_t ntb,
                            int64_t co0, int64_t co1, int64_t ldv, const float *m,
                            float *scratch);

/* The part of a Winograd convolution's plan both paths share: work items are image x block
 * of tiles x part of the output channels; each transforms its block's inputs into V in a slot
 * of its own, multiplies every component by U panel by panel (k->panel) and transforms M
 * back. Lanes past a block's tiles (up to ldv, a multiple of 16) are computed and never
 * stored. */
struct wino_job {
    const qc_conv2d *cv;
    const wino_kern *k;             /* the kernel set: its panel product */
    wino_in_fn   in;
    wino_out_fn  out;
    int64_t  nk, pre;               /* components; scratch rows of a slot before V */
    int64_t  c, m, mp;              /* mp: m rounded up to WR */
    int64_t  nt, tb, nblk;          /* tiles an image, tiles a block, blocks an image */
    int64_t  mchunk, mparts;        /* output channels an item (multiple of WR), items a block */
    const float *u;                 /* [nk][mp / WR][c][WR], zero rows past m */
    float   *buf;                   /* n_slots slots of slot floats: scratch, V, M */
    int64_t  slot;
    int      n_slots;
    unsigned long busy;             /* bit s: slot s in use (atomic) */
};

/* Splits the output channels into parts (multiples of WR) until every one of `threads` has
 * two items, takes U (ubytes, qc_conv_cache layout `layout`) from the node's cache or the
 * run's scratch, packing it with pack unless the cache held it, and the slots from scratch,
 * then runs the items (conv_wino.c). j: everything but mchunk, mparts, u, buf, slot, n_slots
 * and busy set. */
int qc_wino_run(wino_job *j, int threads, size_t ubytes, int layout,
                void (*pack)(const wino_job *j, float *u), qc_run *r, qc_err *err);

/* One F(4x4, 3x3) convolution's plan. Tiles are 4x4 outputs; a block is whole tile rows. */
typedef struct wino {
    wino_job job;                   /* first: the driver's part (nk = WK, pre = WK) */
    int64_t  th, tw;                /* tiles down, across an image (job.nt = th tw) */
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
    int64_t y = 4 * ty0 - w->job.cv->ph + yr, r = yr % 4;
    int nd = 0;
    if (yr / 4 < rows)
        dst[nd++] = h + r * ldv + yr / 4 * w->tw;
    if (r < 2 && yr >= 4)
        dst[nd++] = h + (r + 4) * ldv + (yr / 4 - 1) * w->tw;
    if (y >= 0 && y < w->job.cv->ih)
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
