/* Direct convolution for 1-D/2-D Conv, AVX-512 or AVX2 + FMA kernels (private to src/exec,
 * used by ops_conv.c). */
#ifndef QC_CONV_X86_H
#define QC_CONV_X86_H

#include "ops.h"

/* Packed weights kept across runs for a constant weight tensor (owned by the node). */
typedef struct qc_conv_cache {
    const void *w;                  /* the weights packed below (NULL: empty) */
    void       *wpk;
    size_t      nbytes;
    int         layout;             /* which kernel's packing wpk holds */
    const void *pairs_key;          /* the int8 weights pairs_fit was found for */
    int         pairs_fit;          /* conv_i8_x86.c: their pairs fit the AVX2 tiles */
} qc_conv_cache;

void qc_conv_cache_free(qc_conv_cache *c);

/* Makes cache c (NULL: none) hold nbytes of kernel `layout`'s packing of the weights at key.
 * 1: it already did (nothing to pack); 2: it was (re)allocated for them, the caller packs
 * into c->wpk now; 0: no cache, or the allocation failed (only speed is lost): the caller
 * packs into scratch every run. */
int qc_conv_cache_take(qc_conv_cache *c, const void *key, size_t nbytes, int layout);

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
    /* Integer path (group 1, AVX-512 VNNI or AVX2): x holds a fake quantization's values (scale xs,
     * uint8 zero point xzp) and w = wq * wqs[m] (n_wqs: 1 or m scales); NULL wq: float only */
    const int8_t *wq;
    const float *wqs;
    int64_t      n_wqs;
    float        xs;
    int          xzp;
} qc_conv2d;

/* A depthwise convolution (group == c, one input channel a group; conv_dw.c): every CPU, AVX2
 * where the CPU has it; act, cache and the integer fields are not used. */
void qc_conv2d_depthwise(const qc_conv2d *cv);

/* Runs the convolution on the fast path. Returns QC_EUNSUPPORTED, with nothing written and
 * err untouched, when the CPU or the shape is not one it handles (the caller then uses the
 * portable path); other errors come from qc_run_scratch. */
int qc_conv2d_fast(const qc_conv2d *cv, qc_run *r, qc_err *err);

/* The Winograd path of qc_conv2d_fast (conv_wino.c): float 3x3 stride-1 convolutions, group
 * 1, with the kernel set of vector width vw (16: AVX-512, 8: AVX2 + FMA), where it pays
 * (QC_CONV_WINO=1: wherever it can run, 0: never). QC_EUNSUPPORTED, nothing written,
 * otherwise. */
int qc_conv2d_wino(const qc_conv2d *cv, int vw, qc_run *r, qc_err *err);
/* The 1-D Winograd path (conv_wino1d.c): float rows (ih = oh = kh = 1) of 2 to 7 taps, stride
 * and dilation 1, group 1, under the same switch; QC_EUNSUPPORTED otherwise. */
int qc_conv1d_wino(const qc_conv2d *cv, int vw, qc_run *r, qc_err *err);

/* The integer path of qc_conv2d_fast (conv_i8_x86.c): codes of x (recovered from its values)
 * times wq with int32 accumulation, then y = act(float(acc - xzp * sum(wq)) * xs * wqs[m] +
 * bias). QC_EUNSUPPORTED, nothing written, when the CPU (AVX-512 VNNI, or AVX2 for weights
 * whose channel pairs fit 16-bit sums), the weights or the shape is not one it handles;
 * QC_ICONV=0 in the environment turns it off, QC_ICONV=avx2 never takes VNNI. */
int qc_conv2d_i8(const qc_conv2d *cv, qc_run *r, qc_err *err);

#endif
