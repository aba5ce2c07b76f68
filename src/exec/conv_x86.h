/* AVX-512 direct convolution for 1-D/2-D Conv (private to src/exec, used by ops_conv.c). */
#ifndef QC_CONV_X86_H
#define QC_CONV_X86_H

#include "ops.h"

/* Packed weights kept across runs for a constant weight tensor (owned by the node). */
typedef struct qc_conv_cache {
    const float *w;                 /* the weights packed below (NULL: empty) */
    float       *wpk;
    size_t       nbytes;
    int          layout;            /* which kernel's packing wpk holds */
} qc_conv_cache;

void qc_conv_cache_free(qc_conv_cache *c);

/* Activation applied to the conv's output inside the kernel. */
/* QC_CONV_QLUT: a fake quantization's code looked up in a 256-entry table (qc_knode.lut). */
enum { QC_CONV_LINEAR = 0, QC_CONV_SILU = 1, QC_CONV_QLUT = 2 };

/* A 2-D NCHW convolution (1-D as H = 1), y = act(conv(x, w) + bias). */
typedef struct qc_conv2d {
    qc_conv_cache *cache;           /* NULL unless w is constant across runs */
    const float *x, *w, *bias;      /* bias may be NULL */
    float       *y;
    int64_t      batch, c, m, group;
    int64_t      ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
    int          act;               /* QC_CONV_* */
    const float *qact, *lut;        /* QC_CONV_QLUT: qc_knode.qact and .lut */
} qc_conv2d;

/* Runs the convolution on the fast path. Returns QC_EUNSUPPORTED, with nothing written and
 * err untouched, when the CPU or the shape is not one it handles (the caller then uses the
 * portable path); other errors come from qc_run_scratch. */
int qc_conv2d_fast(const qc_conv2d *cv, qc_run *r, qc_err *err);

#endif
