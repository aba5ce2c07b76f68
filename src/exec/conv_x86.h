/* AVX-512 direct convolution for 1-D/2-D Conv (private to src/exec, used by ops_conv.c). */
#ifndef QC_CONV_X86_H
#define QC_CONV_X86_H

#include "ops.h"

/* A 2-D NCHW convolution (1-D as H = 1), y = conv(x, w) + bias. */
typedef struct qc_conv2d {
    const float *x, *w, *bias;      /* bias may be NULL */
    float       *y;
    int64_t      batch, c, m, group;
    int64_t      ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
} qc_conv2d;

/* Runs the convolution on the fast path. Returns QC_EUNSUPPORTED, with nothing written and
 * err untouched, when the CPU or the shape is not one it handles (the caller then uses the
 * portable path); other errors come from qc_run_scratch. */
int qc_conv2d_fast(const qc_conv2d *cv, qc_run *r, qc_err *err);

#endif
