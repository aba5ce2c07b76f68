/* Convolutions: Conv (1-D/2-D fast paths, N-d general) and ConvTranspose, both through
 * qc_sgemm. Conv: pointwise convs multiply the input directly, convs with one input channel
 * per group (depthwise) run conv_dw.c, everything else goes im2col + sgemm.
 * ConvTranspose: sgemm into columns, then col2im accumulates them into the output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "conv_x86.h"
#include "par.h"
#include "qfuse.h"

typedef struct convp {
    int     nsp;                                     /* spatial rank */
    int64_t batch, c, m, group, cg, mg;              /* channels: total and per group */
    int64_t in[QC_MAX_DIMS], out[QC_MAX_DIMS];
    int64_t k[QC_MAX_DIMS], s[QC_MAX_DIMS], d[QC_MAX_DIMS];
    int64_t pb[QC_MAX_DIMS], pe[QC_MAX_DIMS];        /* pads at begin / end */
    int64_t in_sz, out_sz, k_sz;                     /* spatial products */
} convp;

static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

static int ints_attr(const qc_knode *n, const char *name, int64_t *dst, int64_t def, int want,
                     qc_err *err)
{
    int64_t cnt;
    const int64_t *v = qc_attr_ints(n->node, name, &cnt);
    if (!v) {
        for (int i = 0; i < want; i++)
            dst[i] = def;
        return QC_OK;
    }
    if (cnt != want)
        return qc_node_errf(n, err, QC_EINPUT, "attribute %s has %lld values, expected %d",
                            name, (long long)cnt, want);
    memcpy(dst, v, (size_t)want * sizeof *dst);
    return QC_OK;
}

static int need_f32(const qc_knode *n, const qc_tensor *t, const char *what, qc_err *err)
{
    if (t->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "%s '%s' has dtype %s; only float32 "
                            "is supported", what, t->name ? t->name : "?",
                            qc_dtype_name(t->dtype));
    return QC_OK;
}

/* Shapes, attributes and padding of a Conv (transpose = 0) or ConvTranspose node. */
static int conv_params(const qc_knode *n, int transpose, convp *p, qc_err *err)
{
    const qc_tensor *x = n->in[0], *w = n->in[1];
    const qc_tensor *b = n->n_in > 2 ? n->in[2] : NULL;
    int rc;
    memset(p, 0, sizeof *p);
    if ((rc = need_f32(n, x, "input", err)) || (rc = need_f32(n, w, "weight", err)) ||
        (b && (rc = need_f32(n, b, "bias", err))))
        return rc;
    if (x->ndim < 3 || w->ndim != x->ndim)
        return qc_node_errf(n, err, QC_ESHAPE, "input rank %d and weight rank %d: need "
                            "[N, C, spatial...] and a weight of the same rank", x->ndim,
                            w->ndim);
    int nsp = p->nsp = x->ndim - 2;
    p->group = qc_attr_int(n->node, "group", 1);
    p->batch = x->dims[0];
    p->c = x->dims[1];
    if (p->group < 1 || p->c % p->group != 0)
        return qc_node_errf(n, err, QC_EINPUT, "group %lld does not divide %lld input "
                            "channels", (long long)p->group, (long long)p->c);
    p->cg = p->c / p->group;
    if (!transpose) {
        p->m = w->dims[0];
        p->mg = p->m / p->group;
        if (w->dims[1] != p->cg || p->m % p->group != 0)
            return qc_node_errf(n, err, QC_ESHAPE, "weight [%lld,%lld,...] does not fit %lld "
                                "input channels in %lld groups", (long long)w->dims[0],
                                (long long)w->dims[1], (long long)p->c, (long long)p->group);
    } else {
        p->mg = w->dims[1];
        p->m = p->mg * p->group;
        if (w->dims[0] != p->c)
            return qc_node_errf(n, err, QC_ESHAPE, "weight dim 0 is %lld, input has %lld "
                                "channels", (long long)w->dims[0], (long long)p->c);
    }
    if (b && (b->ndim != 1 || b->dims[0] != p->m))
        return qc_node_errf(n, err, QC_ESHAPE, "bias must be [%lld]", (long long)p->m);
    int64_t cnt;
    const int64_t *ks = qc_attr_ints(n->node, "kernel_shape", &cnt);
    for (int i = 0; i < nsp; i++) {
        p->k[i] = w->dims[2 + i];
        p->in[i] = x->dims[2 + i];
        if (ks && (cnt != nsp || ks[i] != p->k[i]))
            return qc_node_errf(n, err, QC_ESHAPE, "kernel_shape does not match the weight");
    }
    int64_t pads[2 * QC_MAX_DIMS], opad[QC_MAX_DIMS];
    if ((rc = ints_attr(n, "strides", p->s, 1, nsp, err)) ||
        (rc = ints_attr(n, "dilations", p->d, 1, nsp, err)) ||
        (rc = ints_attr(n, "pads", pads, 0, 2 * nsp, err)) ||
        (rc = ints_attr(n, "output_padding", opad, 0, nsp, err)))
        return rc;
    const char *ap = qc_attr_str(n->node, "auto_pad", "NOTSET");
    int upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER");
    int valid = !strcmp(ap, "VALID");
    if (!upper && !lower && !valid && strcmp(ap, "NOTSET") != 0)
        return qc_node_errf(n, err, QC_EINPUT, "unknown auto_pad '%s'", ap);
    const int64_t *oshape = transpose ? qc_attr_ints(n->node, "output_shape", &cnt) : NULL;
    if (oshape) {
        if (cnt != nsp && cnt != nsp + 2)
            return qc_node_errf(n, err, QC_EINPUT, "output_shape has %lld values",
                                (long long)cnt);
        oshape += cnt - nsp;
    }
    p->in_sz = p->out_sz = p->k_sz = 1;
    for (int i = 0; i < nsp; i++) {
        if (p->k[i] < 1 || p->s[i] < 1 || p->d[i] < 1)
            return qc_node_errf(n, err, QC_EINPUT, "kernel, strides and dilations must be "
                                "positive (axis %d)", i);
        int64_t ek = (p->k[i] - 1) * p->d[i] + 1, in = p->in[i];
        if (!transpose) {
            if (upper || lower) {
                p->out[i] = ceil_div(in, p->s[i]);
                int64_t total = (p->out[i] - 1) * p->s[i] + ek - in;
                total = total < 0 ? 0 : total;
                p->pb[i] = upper ? total / 2 : total - total / 2;
                p->pe[i] = total - p->pb[i];
            } else {
                p->pb[i] = valid ? 0 : pads[i];
                p->pe[i] = valid ? 0 : pads[nsp + i];
                int64_t num = in + p->pb[i] + p->pe[i] - ek;
                if (num < 0)
                    return qc_node_errf(n, err, QC_ESHAPE, "kernel extent %lld exceeds padded "
                                        "input %lld on axis %d", (long long)ek,
                                        (long long)(num + ek), i);
                p->out[i] = num / p->s[i] + 1;
            }
        } else {
            int64_t full = p->s[i] * (in - 1) + opad[i] + ek;
            if (oshape || upper || lower) {
                /* Padding follows from the requested size; the odd unit goes to the end
                 * for SAME_UPPER, to the start otherwise (the ONNX spec's rule). */
                p->out[i] = oshape ? oshape[i] : in * p->s[i];
                int64_t total = full - p->out[i];
                p->pb[i] = upper ? floor_div(total, 2) : total - floor_div(total, 2);
                p->pe[i] = total - p->pb[i];
            } else {
                p->pb[i] = valid ? 0 : pads[i];
                p->pe[i] = valid ? 0 : pads[nsp + i];
                p->out[i] = full - p->pb[i] - p->pe[i];
            }
        }
        if (p->out[i] < 1 || (!transpose && (p->pb[i] < 0 || p->pe[i] < 0)))
            return qc_node_errf(n, err, QC_ESHAPE, "invalid output size %lld or pads on axis "
                                "%d", (long long)p->out[i], i);
        p->in_sz *= p->in[i];
        p->out_sz *= p->out[i];
        p->k_sz *= p->k[i];
    }
    return QC_OK;
}

static int conv_activation(const qc_knode *n, int *act, qc_err *err);

static int conv_infer_common(qc_knode *n, int transpose, qc_err *err)
{
    convp p;
    int act, rc = conv_params(n, transpose, &p, err);
    if (rc || (!transpose && (rc = conv_activation(n, &act, err))))
        return rc;
    int64_t dims[QC_MAX_DIMS];
    dims[0] = p.batch;
    dims[1] = p.m;
    for (int i = 0; i < p.nsp; i++)
        dims[2 + i] = p.out[i];
    qc_set_shape(n->out[0], QC_F32, p.nsp + 2, dims);
    return QC_OK;
}

static int conv_infer(qc_knode *n, qc_err *err) { return conv_infer_common(n, 0, err); }
static int convt_infer(qc_knode *n, qc_err *err) { return conv_infer_common(n, 1, err); }

/* 2-D view of a 1-D or 2-D conv: H is 1 for 1-D. */
typedef struct conv2 {
    int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
} conv2;

static void to_conv2(const convp *p, conv2 *q)
{
    int o = p->nsp == 2;
    q->ih = o ? p->in[0] : 1;
    q->oh = o ? p->out[0] : 1;
    q->kh = o ? p->k[0] : 1;
    q->sh = o ? p->s[0] : 1;
    q->dh = o ? p->d[0] : 1;
    q->ph = o ? p->pb[0] : 0;
    q->iw = p->in[o];
    q->ow = p->out[o];
    q->kw = p->k[o];
    q->sw = p->s[o];
    q->dw = p->d[o];
    q->pw = p->pb[o];
}

/* Positions j in [0, n) with 0 <= j * s + off < len, as [*lo, *hi). */
static inline void valid_range(int64_t n, int64_t s, int64_t off, int64_t len, int64_t *lo,
                               int64_t *hi)
{
    int64_t a = ceil_div(-off, s), b = floor_div(len - 1 - off, s) + 1;
    *lo = a < 0 ? 0 : a > n ? n : a;
    *hi = b > n ? n : b < *lo ? *lo : b;
}

/* Columns of output rows [oh0, oh1) for `cg` channels: row (c, kh, kw), ld (oh1-oh0)*ow. */
static void im2col2d(const float *x, float *col, const conv2 *q, int64_t cg, int64_t oh0,
                     int64_t oh1)
{
    int64_t ncol = (oh1 - oh0) * q->ow;
    for (int64_t c = 0; c < cg; c++) {
        const float *xc = x + c * q->ih * q->iw;
        for (int64_t kh = 0; kh < q->kh; kh++) {
            for (int64_t kw = 0; kw < q->kw; kw++) {
                float *row = col + ((c * q->kh + kh) * q->kw + kw) * ncol;
                int64_t off = kw * q->dw - q->pw, lo, hi;
                valid_range(q->ow, q->sw, off, q->iw, &lo, &hi);
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    float *dst = row + (oh - oh0) * q->ow;
                    int64_t ih = oh * q->sh - q->ph + kh * q->dh;
                    if (ih < 0 || ih >= q->ih) {
                        memset(dst, 0, (size_t)q->ow * sizeof *dst);
                        continue;
                    }
                    const float *src = xc + ih * q->iw + off;
                    memset(dst, 0, (size_t)lo * sizeof *dst);
                    if (q->sw == 1)
                        memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof *dst);
                    else
                        for (int64_t ow = lo; ow < hi; ow++)
                            dst[ow] = src[ow * q->sw];
                    memset(dst + hi, 0, (size_t)(q->ow - hi) * sizeof *dst);
                }
            }
        }
    }
}

/* General N-d im2col for `cg` channels: row (c, k...), ld out_sz. */
static void im2col_nd(const float *x, float *col, const convp *p)
{
    int nsp = p->nsp;
    for (int64_t c = 0; c < p->cg; c++) {
        int64_t kk[QC_MAX_DIMS] = { 0 };
        for (int64_t kf = 0; kf < p->k_sz; kf++) {
            float *row = col + (c * p->k_sz + kf) * p->out_sz;
            int64_t o[QC_MAX_DIMS] = { 0 };
            for (int64_t j = 0; j < p->out_sz; j++) {
                int64_t off = 0, inside = 1;
                for (int i = 0; i < nsp; i++) {
                    int64_t v = o[i] * p->s[i] - p->pb[i] + kk[i] * p->d[i];
                    inside &= v >= 0 && v < p->in[i];
                    off = off * p->in[i] + v;
                }
                row[j] = inside ? x[c * p->in_sz + off] : 0.0f;
                for (int i = nsp - 1; i >= 0 && ++o[i] == p->out[i]; i--)
                    o[i] = 0;
            }
            for (int i = nsp - 1; i >= 0 && ++kk[i] == p->k[i]; i--)
                kk[i] = 0;
        }
    }
}

static void fill_bias(float *y, const float *bias, int64_t channels, int64_t len)
{
    for (int64_t c = 0; c < channels; c++) {
        float v = bias ? bias[c] : 0.0f;
        float *yc = y + c * len;
        if (v == 0.0f) {
            memset(yc, 0, (size_t)len * sizeof *yc);
        } else {
            for (int64_t i = 0; i < len; i++)
                yc[i] = v;
        }
    }
}

/* QC_CONV_PORTABLE=1 forces the im2col + sgemm path (tests compare both paths). */
static int portable_only(void)
{
    const char *e = getenv("QC_CONV_PORTABLE");
    return e && e[0] == '1';
}

/* Output rows per im2col tile: keeps the column buffer near `budget` bytes. */
#define COL_BUDGET ((size_t)8 << 20)

/* Computes the conv; with act set, *act_done says whether the kernel already applied it. */
static int conv_compute(qc_knode *n, qc_run *r, int act, int *act_done, qc_err *err)
{
    const qc_tensor *x = n->in[0], *w = n->in[1];
    const qc_tensor *b = n->n_in > 2 ? n->in[2] : NULL;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *y = n->out[0]->data;
    convp p;
    int rc;
    if ((rc = conv_params(n, 0, &p, err)))
        return rc;
    int pointwise = 1;
    for (int i = 0; i < p.nsp; i++)
        pointwise &= p.k[i] == 1 && p.s[i] == 1 && p.pb[i] == 0 && p.pe[i] == 0;
    int64_t kdim = p.cg * p.k_sz;              /* GEMM inner dimension */
    conv2 q;
    to_conv2(&p, &q);
    int two_d = p.nsp <= 2;

    if (p.cg == 1 && two_d && !pointwise) {
        qc_conv2d_depthwise(&(qc_conv2d){
            .x = xd, .w = wd, .bias = bd, .y = y, .batch = p.batch, .c = p.c, .m = p.m,
            .group = p.group, .ih = q.ih, .iw = q.iw, .oh = q.oh, .ow = q.ow, .kh = q.kh,
            .kw = q.kw, .sh = q.sh, .sw = q.sw, .dh = q.dh, .dw = q.dw, .ph = q.ph,
            .pw = q.pw });
        return QC_OK;
    }

    if (two_d && q.iw == 1 && q.kw == 1 && q.ow == 1 && q.pw == 0) {
        /* [N, C, H, 1] convs (1-D convs written as 2-D) run as rows along H. */
        conv2 f = q;
        f.ih = f.oh = f.kh = f.sh = f.dh = 1;
        f.ph = 0;
        f.iw = q.ih;
        f.ow = q.oh;
        f.kw = q.kh;
        f.sw = q.sh;
        f.dw = q.dh;
        f.pw = q.ph;
        q = f;
    }
    if (two_d && !portable_only()) {
        /* Packed weights are cached only for initializers: their data cannot change. */
        int konst = qc_knode_input_is_const(n, 1);
        qc_conv2d cv = {
            .cache = konst ? n->state : NULL, .x = xd, .w = wd, .bias = bd, .y = y,
            .batch = p.batch, .c = p.c, .m = p.m, .group = p.group, .ih = q.ih, .iw = q.iw,
            .oh = q.oh, .ow = q.ow, .kh = q.kh, .kw = q.kw, .sh = q.sh, .sw = q.sw,
            .dh = q.dh, .dw = q.dw, .ph = q.ph, .pw = q.pw, .act = act, .qact = n->qact,
            .lut = n->lut, .wq = n->wq, .wqs = n->wqs, .n_wqs = n->n_wqs, .xs = n->xs,
            .xzp = n->xzp,
        };
        if ((rc = qc_conv2d_fast(&cv, r, err)) != QC_EUNSUPPORTED) {
            *act_done = 1;
            return rc;
        }
    }

    /* Rows of output per tile (2-D path); N-d builds the whole column matrix. */
    int64_t rows = q.oh;
    float *col = NULL;
    if (!pointwise) {
        size_t row_bytes = (size_t)kdim * (size_t)q.ow * sizeof(float);
        if (two_d && row_bytes * (size_t)q.oh > COL_BUDGET) {
            rows = (int64_t)(COL_BUDGET / row_bytes);
            rows = rows < 1 ? 1 : rows;
        }
        size_t need = two_d ? row_bytes * (size_t)rows
                            : (size_t)kdim * (size_t)p.out_sz * sizeof(float);
        col = qc_run_scratch(r, need, err);
        if (!col)
            return err && err->code ? err->code : QC_ENOMEM;
    }
    for (int64_t bi = 0; bi < p.batch; bi++) {
        for (int64_t g = 0; g < p.group; g++) {
            const float *xg = xd + (bi * p.c + g * p.cg) * p.in_sz;
            const float *wg = wd + g * p.mg * kdim;
            float *yg = y + (bi * p.m + g * p.mg) * p.out_sz;
            fill_bias(yg, bd ? bd + g * p.mg : NULL, p.mg, p.out_sz);
            if (pointwise) {
                qc_sgemm(0, 0, p.mg, p.out_sz, kdim, 1.0f, wg, kdim, xg, p.out_sz, 1.0f, yg,
                         p.out_sz);
                continue;
            }
            if (!two_d) {
                im2col_nd(xg, col, &p);
                qc_sgemm(0, 0, p.mg, p.out_sz, kdim, 1.0f, wg, kdim, col, p.out_sz, 1.0f, yg,
                         p.out_sz);
                continue;
            }
            for (int64_t oh0 = 0; oh0 < q.oh; oh0 += rows) {
                int64_t oh1 = oh0 + rows < q.oh ? oh0 + rows : q.oh;
                int64_t ncol = (oh1 - oh0) * q.ow;
                im2col2d(xg, col, &q, p.cg, oh0, oh1);
                qc_sgemm(0, 0, p.mg, ncol, kdim, 1.0f, wg, kdim, col, ncol, 1.0f,
                         yg + oh0 * q.ow, p.out_sz);
            }
        }
    }
    return QC_OK;
}

/* The planner may fuse a following x * Sigmoid(x) into a Conv (qc_knode.act). */
static int conv_activation(const qc_knode *n, int *act, qc_err *err)
{
    (void)err;
    *act = n->act == QC_ACT_SILU ? QC_CONV_SILU :
           n->act == QC_ACT_QLUT ? QC_CONV_QLUT : QC_CONV_LINEAR;
    return QC_OK;
}

static int conv_run(qc_knode *n, qc_run *r, qc_err *err)
{
    int act, done = 0, rc;
    if ((rc = conv_activation(n, &act, err)) || (rc = conv_compute(n, r, act, &done, err)))
        return rc;
    if (act == QC_CONV_SILU && !done) {
        float *y = n->out[0]->data;
        for (int64_t i = 0, len = qc_tensor_numel(n->out[0]); i < len; i++)
            y[i] = y[i] / (1.0f + expf(-y[i]));
    }
    if (act == QC_CONV_QLUT && !done)
        qc_code_table_apply(n->qact, n->lut, n->out[0]->data, n->out[0]->data,
                            qc_tensor_numel(n->out[0]));
    return QC_OK;
}

/* Sum of the values of row x[0, n) at indices i = o * s + off for o in [lo, hi), given the
 * row's sums by phase (ph[f]: indices i with i mod s == f): the phase sum minus the few
 * values of that phase outside the range (a conv's padding makes ranges differ from the
 * whole row at the edges only). */
static double strided_sum(const float *x, int64_t n, const double *ph, int64_t s, int64_t off,
                          int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return 0;
    int64_t first = lo * s + off, last = (hi - 1) * s + off;
    double v = ph[first % s];
    for (int64_t i = first - s; i >= 0; i -= s)
        v -= x[i];
    for (int64_t i = last + s; i < n; i += s)
        v -= x[i];
    return v;
}

/* conv_sums' lane loops with AVX2 where the CPU has it, each lane adding in the order of
 * the scalar loops (no FMA: -ffp-contract=off), so the sums are the same bits; the lanes stay
 * in registers (the scalar loops' lane arrays went through memory, and folding them into the
 * phases through store-to-load forwarding took most of conv_sums' time on short rows).
 * row_phases_avx2: P[f] for f < sw (1, 2, 4 or 8), the row's sum at indices i = f mod sw,
 * as conv_sums' 8-lane loop computes it. dot_lanes4_avx2: a[l] += (double)w[i + l] * s[i + l]
 * over blocks of 4, returns the index reached. have_avx2: whether they may run. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
static inline __attribute__((always_inline)) void fold_phases(double *p, const double *a,
                                                              const int mask)
{
    for (int l = 0; l < 8; l++)
        p[l & mask] += a[l];
}

static __attribute__((target("avx2"))) void row_phases_avx2(const float *x, int64_t n,
                                                            int64_t sw, double *P)
{
    __m256d lo = _mm256_setzero_pd(), hi = lo;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    __m128d l01 = _mm256_castpd256_pd128(lo), l23 = _mm256_extractf128_pd(lo, 1);
    __m128d l45 = _mm256_castpd256_pd128(hi), l67 = _mm256_extractf128_pd(hi, 1);
    double a[8] = {
        _mm_cvtsd_f64(l01), _mm_cvtsd_f64(_mm_unpackhi_pd(l01, l01)),
        _mm_cvtsd_f64(l23), _mm_cvtsd_f64(_mm_unpackhi_pd(l23, l23)),
        _mm_cvtsd_f64(l45), _mm_cvtsd_f64(_mm_unpackhi_pd(l45, l45)),
        _mm_cvtsd_f64(l67), _mm_cvtsd_f64(_mm_unpackhi_pd(l67, l67)),
    };
    double p[8] = { 0 };
    switch (sw) {                       /* constant indices: p and a stay in registers */
    case 1: fold_phases(p, a, 0); break;
    case 2: fold_phases(p, a, 1); break;
    case 4: fold_phases(p, a, 3); break;
    default: fold_phases(p, a, 7); break;
    }
    int64_t mask = sw - 1;
    for (; i < n; i++)
        p[i & mask] += x[i];
    for (int64_t f = 0; f < sw; f++)
        P[f] = p[f];
}

static __attribute__((target("avx2"))) int64_t dot_lanes4_avx2(const float *w, const double *s,
                                                               int64_t n, double *a)
{
    __m256d acc = _mm256_loadu_pd(a);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + i)),
                                               _mm256_loadu_pd(s + i)));
    _mm256_storeu_pd(a, acc);
    return i;
}

/* dot_lanes4_avx2 for 4 output channels at once (weights w, w + ws, w + 2 ws, w + 3 ws; a[4 k
 * + l] is channel k's lane l): the same sums, four chains in flight instead of one */
static __attribute__((target("avx2"))) int64_t dot4_lanes4_avx2(const float *w, int64_t ws,
                                                                const double *s, int64_t n,
                                                                double *a)
{
    __m256d a0 = _mm256_loadu_pd(a), a1 = _mm256_loadu_pd(a + 4);
    __m256d a2 = _mm256_loadu_pd(a + 8), a3 = _mm256_loadu_pd(a + 12);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d sv = _mm256_loadu_pd(s + i);
        a0 = _mm256_add_pd(a0, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + i)), sv));
        a1 = _mm256_add_pd(a1, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + ws + i)), sv));
        a2 = _mm256_add_pd(a2, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + 2 * ws + i)),
                                             sv));
        a3 = _mm256_add_pd(a3, _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + 3 * ws + i)),
                                             sv));
    }
    _mm256_storeu_pd(a, a0);
    _mm256_storeu_pd(a + 4, a1);
    _mm256_storeu_pd(a + 8, a2);
    _mm256_storeu_pd(a + 12, a3);
    return i;
}

static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

#else
static int have_avx2(void)
{
    return 0;
}

static void row_phases_avx2(const float *x, int64_t n, int64_t sw, double *P)
{
    (void)x, (void)n, (void)sw, (void)P;
}

static int64_t dot_lanes4_avx2(const float *w, const double *s, int64_t n, double *a)
{
    (void)w, (void)s, (void)n, (void)a;
    return 0;
}

static int64_t dot4_lanes4_avx2(const float *w, int64_t ws, const double *s, int64_t n,
                                double *a)
{
    (void)w, (void)ws, (void)s, (void)n, (void)a;
    return 0;
}
#endif

/* Per-output-channel sums of a Conv's output (1-D and 2-D), without computing it: the sum
 * over every output position of w . x[window] is w . (sum of each window element over the
 * positions), so per input channel and kernel offset one sum of the input over the positions
 * that offset reads (row sums by phase of the stride, less the edges), then one dot product
 * per output channel. Sums in double, so this is as exact as summing the output itself, for
 * about one read of the input. */
static int conv_sums(const qc_knode *n, double *sums, qc_err *err)
{
    convp p;
    int rc = conv_params(n, 0, &p, err);
    if (rc != QC_OK)
        return rc;
    if (p.nsp > 2)
        return 1;                   /* not here: the caller runs the node */
    int two = p.nsp == 2;
    int64_t ih = two ? p.in[0] : 1, iw = p.in[two], oh = two ? p.out[0] : 1, ow = p.out[two];
    int64_t kh = two ? p.k[0] : 1, kw = p.k[two], sh = two ? p.s[0] : 1, sw = p.s[two];
    int64_t dh = two ? p.d[0] : 1, dw = p.d[two], ph = two ? p.pb[0] : 0, pw = p.pb[two];
    int avx2 = have_avx2();
    double *S = calloc((size_t)(p.c * kh * kw) + 1, sizeof *S);
    double *R = malloc(((size_t)(ih * kw) + 1) * sizeof *R);
    double *P = malloc(((size_t)sw + 8) * sizeof *P);
    int64_t *cols = malloc(((size_t)kw * 2 + 1) * sizeof *cols);   /* per kernel column */
    if (!S || !R || !P || !cols) {
        free(S), free(R), free(P), free(cols);
        return qc_node_errf(n, err, QC_ENOMEM, "out of memory");
    }
    for (int64_t j = 0; j < kw; j++)
        valid_range(ow, sw, j * dw - pw, iw, &cols[2 * j], &cols[2 * j + 1]);
    const float *x = n->in[0]->data, *w = n->in[1]->data;
    for (int64_t b = 0; b < p.batch; b++) {
        for (int64_t c = 0; c < p.c; c++) {
            const float *xc = x + (b * p.c + c) * ih * iw;
            /* R[row][j]: the input row summed over the columns kernel column j reads */
            for (int64_t r = 0; r < ih; r++) {
                const float *xr = xc + r * iw;
                if (8 % sw == 0 && avx2) {
                    row_phases_avx2(xr, iw, sw, P);     /* the loop below's bits */
                } else if (8 % sw == 0) {
                    /* eight lanes; lane l holds phase l mod sw */
                    double a[8] = { 0 };
                    int64_t i = 0;
                    for (; i + 8 <= iw; i += 8)
                        for (int l = 0; l < 8; l++)
                            a[l] += xr[i + l];
                    int64_t mask = sw - 1;      /* sw divides 8: a power of two */
                    for (int l = 0; l < 8; l++)
                        P[l] = 0;
                    for (int l = 0; l < 8; l++)
                        P[l & mask] += a[l];
                    for (; i < iw; i++)
                        P[i & mask] += xr[i];
                } else {
                    for (int64_t f = 0; f < sw; f++)
                        P[f] = 0;
                    for (int64_t i = 0, f = 0; i < iw; i++, f = f + 1 == sw ? 0 : f + 1)
                        P[f] += xr[i];
                }
                for (int64_t j = 0; j < kw; j++)
                    R[r * kw + j] = strided_sum(xr, iw, P, sw, j * dw - pw, cols[2 * j],
                                                cols[2 * j + 1]);
            }
            double *Sc = S + c * kh * kw;
            for (int64_t i = 0; i < kh; i++) {
                int64_t off = i * dh - ph, lo, hi;
                valid_range(oh, sh, off, ih, &lo, &hi);
                for (int64_t j = 0; j < kw; j++) {
                    double v = 0;
                    for (int64_t o = lo; o < hi; o++)
                        v += R[(o * sh + off) * kw + j];
                    Sc[i * kw + j] += v;
                }
            }
        }
    }
    const float *bias = n->n_in > 2 && n->in[2] ? n->in[2]->data : NULL;
    int64_t ksz = p.cg * kh * kw;
    for (int64_t m = 0; m < p.m;) {
        /* four channels of one group side by side where they can (the same bits) */
        int nm = avx2 && m + 4 <= p.m && m / p.mg == (m + 3) / p.mg ? 4 : 1;
        const float *wm = w + m * ksz;
        const double *Sg = S + (m / p.mg) * ksz;
        double a[16] = { 0 };
        int64_t i0 = !avx2 ? 0 : nm == 4 ? dot4_lanes4_avx2(wm, ksz, Sg, ksz, a)
                                         : dot_lanes4_avx2(wm, Sg, ksz, a);
        for (int k = 0; k < nm; k++, m++) {
            double *ak = a + 4 * k;
            const float *wk = wm + k * ksz;
            int64_t i = i0;
            for (; i + 4 <= ksz; i += 4)
                for (int l = 0; l < 4; l++)
                    ak[l] += (double)wk[i + l] * Sg[i + l];
            for (; i < ksz; i++)
                ak[0] += (double)wk[i] * Sg[i];
            sums[m] = (ak[0] + ak[1]) + (ak[2] + ak[3]) +
                      (bias ? (double)bias[m] * (double)(p.batch * oh * ow) : 0);
        }
    }
    free(S), free(R), free(P), free(cols);
    return QC_OK;
}

/* ---- ConvTranspose ------------------------------------------------------------------- */

/* Output channel m of y += the scatter of its col rows (m, kh, kw), each over the input grid. */
static void col2im2d_channel(const float *col, float *y, const conv2 *q, int64_t m)
{
    int64_t in_sz = q->ih * q->iw;
    float *ym = y + m * q->oh * q->ow;
    for (int64_t kh = 0; kh < q->kh; kh++) {
        for (int64_t kw = 0; kw < q->kw; kw++) {
            const float *row = col + ((m * q->kh + kh) * q->kw + kw) * in_sz;
            int64_t off = kw * q->dw - q->pw, lo, hi;
            valid_range(q->iw, q->sw, off, q->ow, &lo, &hi);
            for (int64_t ih = 0; ih < q->ih; ih++) {
                int64_t oh = ih * q->sh - q->ph + kh * q->dh;
                if (oh < 0 || oh >= q->oh)
                    continue;
                float *yr = ym + oh * q->ow + off;
                const float *src = row + ih * q->iw;
                for (int64_t iw = lo; iw < hi; iw++)
                    yr[iw * q->sw] += src[iw];
            }
        }
    }
}

typedef struct col2im_job {
    const float *col;
    float       *y;
    const conv2 *q;
} col2im_job;

static void col2im_items(void *vctx, int64_t lo, int64_t hi)
{
    const col2im_job *j = vctx;
    for (int64_t m = lo; m < hi; m++)
        col2im2d_channel(j->col, j->y, j->q, m);
}

/* y (mg output channels) += the scatter of col, the channels side by side on the worker
 * threads (each channel's sums in the same order whoever computes it). */
static void col2im2d(const float *col, float *y, const conv2 *q, int64_t mg)
{
    col2im_job j = { col, y, q };
    qc_par_for(mg, mg / (8 * qc_par_threads()) + 1, col2im_items, &j);
}

static void col2im_nd(const float *col, float *y, const convp *p)
{
    int nsp = p->nsp;
    for (int64_t m = 0; m < p->mg; m++) {
        int64_t kk[QC_MAX_DIMS] = { 0 };
        for (int64_t kf = 0; kf < p->k_sz; kf++) {
            const float *row = col + (m * p->k_sz + kf) * p->in_sz;
            int64_t ii[QC_MAX_DIMS] = { 0 };
            for (int64_t j = 0; j < p->in_sz; j++) {
                int64_t off = 0, inside = 1;
                for (int i = 0; i < nsp; i++) {
                    int64_t v = ii[i] * p->s[i] - p->pb[i] + kk[i] * p->d[i];
                    inside &= v >= 0 && v < p->out[i];
                    off = off * p->out[i] + v;
                }
                if (inside)
                    y[m * p->out_sz + off] += row[j];
                for (int i = nsp - 1; i >= 0 && ++ii[i] == p->in[i]; i--)
                    ii[i] = 0;
            }
            for (int i = nsp - 1; i >= 0 && ++kk[i] == p->k[i]; i--)
                kk[i] = 0;
        }
    }
}

static int convt_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *w = n->in[1];
    const qc_tensor *b = n->n_in > 2 ? n->in[2] : NULL;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *y = n->out[0]->data;
    convp p;
    int rc;
    if ((rc = conv_params(n, 1, &p, err)))
        return rc;
    int pointwise = p.in_sz == p.out_sz;
    for (int i = 0; i < p.nsp; i++)
        pointwise &= p.k[i] == 1 && p.s[i] == 1 && p.pb[i] == 0 && p.pe[i] == 0;
    int64_t rows = p.mg * p.k_sz;              /* column matrix height */
    float *col = NULL;
    if (!pointwise) {
        col = qc_run_scratch(r, (size_t)rows * (size_t)p.in_sz * sizeof(float), err);
        if (!col)
            return err && err->code ? err->code : QC_ENOMEM;
    }
    conv2 q;
    to_conv2(&p, &q);
    for (int64_t bi = 0; bi < p.batch; bi++) {
        for (int64_t g = 0; g < p.group; g++) {
            const float *xg = xd + (bi * p.c + g * p.cg) * p.in_sz;
            const float *wg = wd + g * p.cg * rows;
            float *yg = y + (bi * p.m + g * p.mg) * p.out_sz;
            fill_bias(yg, bd ? bd + g * p.mg : NULL, p.mg, p.out_sz);
            if (pointwise) {
                qc_sgemm(1, 0, p.mg, p.in_sz, p.cg, 1.0f, wg, p.mg, xg, p.in_sz, 1.0f, yg,
                         p.out_sz);
                continue;
            }
            qc_sgemm(1, 0, rows, p.in_sz, p.cg, 1.0f, wg, rows, xg, p.in_sz, 0.0f, col,
                     p.in_sz);
            if (p.nsp <= 2)
                col2im2d(col, yg, &q, p.mg);
            else
                col2im_nd(col, yg, &p);
        }
    }
    return QC_OK;
}

static int conv_prepare(qc_knode *n, qc_err *err)
{
    n->state = calloc(1, sizeof(qc_conv_cache));
    if (!n->state)
        return qc_node_errf(n, err, QC_ENOMEM, "out of memory");
    return QC_OK;
}

static void conv_release(qc_knode *n)
{
    qc_conv_cache_free(n->state);
    free(n->state);
    n->state = NULL;
}

const qc_op_def qc_ops_conv[] = {
    { "Conv",          1, conv_infer,  conv_run,  conv_prepare, conv_release, conv_sums },
    { "ConvTranspose", 1, convt_infer, convt_run, NULL, NULL, NULL },
    { 0 }
};
