/* Softmax, LogSoftmax, Hardmax and the normalizations (BatchNormalization, LayerNormalization,
 * InstanceNormalization, GroupNormalization, LRN). Sums and variances accumulate in double, two passes (mean, then
 * squared deviations), so results stay within rtol 1e-4 of numpy on long rows. */
/* FP exceptions are never inspected, and -O2's very-cheap vectorizer cost model skips loops
 * whose trip count is only known at run time: either would keep these maps scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "vect-cost-model=dynamic")
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ops_ew.h"

#define CHUNK 256

static int need_f32(const qc_knode *n, int i, qc_err *err)
{
    if (i >= n->n_in || !n->in[i])
        return qc_node_errf(n, err, QC_EINPUT, "missing input %d", i);
    if (n->in[i]->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input %d is %s, only float32 is supported",
                            i, qc_dtype_name(n->in[i]->dtype));
    return QC_OK;
}

/* ---- Softmax family ---------------------------------------------------------------------- */

/* Opset >= 13 normalizes along one axis (default -1); before, the input is coerced to 2D at
 * `axis` (default 1) and each row of the flattened tail is normalized. */
static int softmax_geom(const qc_knode *n, int64_t *outer, int64_t *R, int64_t *inner,
                        qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int new_style = n->opset >= 13, axis, rc;
    int64_t a = qc_attr_int(n->node, "axis", new_style ? -1 : 1);
    if (x->ndim == 0) {
        *outer = *R = *inner = 1;
        return QC_OK;
    }
    if ((rc = qc_norm_axis(n, a, x->ndim, &axis, err)) != QC_OK)
        return rc;
    *outer = *R = *inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < axis)
            *outer *= x->dims[d];
        else if (d == axis || !new_style)
            *R *= x->dims[d];
        else
            *inner *= x->dims[d];
    }
    return QC_OK;
}

static int softmax_infer(qc_knode *n, qc_err *err)
{
    int64_t o, r, i;
    int rc;
    if ((rc = need_f32(n, 0, err)) != QC_OK || (rc = softmax_geom(n, &o, &r, &i, err)) != QC_OK)
        return rc;
    qc_copy_shape(n->out[0], n->in[0]);
    return QC_OK;
}

enum { SM_SOFT, SM_LOG, SM_HARD };

/* One contiguous row: the common last-axis case. */
QC_EW_SIMD_CLONES
static void softmax_row(const float *x, float *y, int64_t R, int kind)
{
    double sum = 0.0;
    if (kind == SM_HARD) {
        int64_t arg = 0;
        for (int64_t k = 1; k < R; k++)
            if (x[k] > x[arg])
                arg = k;
        for (int64_t k = 0; k < R; k++)
            y[k] = k == arg ? 1.0f : 0.0f;
        return;
    }
    /* eight running maxima, so the scan vectorizes */
    float m8[8], mx = x[0];
    int64_t k8 = 0;
    for (int j = 0; j < 8; j++)
        m8[j] = x[0];
    for (; k8 + 8 <= R; k8 += 8)
        for (int j = 0; j < 8; j++)
            m8[j] = x[k8 + j] > m8[j] ? x[k8 + j] : m8[j];
    for (; k8 < R; k8++)
        mx = x[k8] > mx ? x[k8] : mx;
    for (int j = 0; j < 8; j++)
        mx = m8[j] > mx ? m8[j] : mx;
    if (kind == SM_SOFT) {
        /* eight float partial sums over blocks of 1024 (vectorizable; terms are in (0, 1]),
         * blocks added up in double */
        for (int64_t k0 = 0; k0 < R; k0 += 1024) {
            int64_t k1 = R - k0 < 1024 ? R : k0 + 1024, k = k0;
            float p8[8] = { 0 };
            for (; k + 8 <= k1; k += 8)
                for (int j = 0; j < 8; j++) {
                    float e = qc_ew_expf(x[k + j] - mx);
                    y[k + j] = e;
                    p8[j] += e;
                }
            for (; k < k1; k++) {
                y[k] = qc_ew_expf(x[k] - mx);
                p8[0] += y[k];
            }
            for (int j = 0; j < 8; j++)
                sum += p8[j];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t k = 0; k < R; k++)
            y[k] *= inv;
    } else {
        for (int64_t k = 0; k < R; k++)
            sum += qc_ew_expf(x[k] - mx);
        /* (x - max) - log(sum): adding log(sum) to a large max first would round it away */
        float ls = (float)log(sum);
        for (int64_t k = 0; k < R; k++)
            y[k] = (x[k] - mx) - ls;
    }
}

/* One [R] row with stride `st` for up to CHUNK interleaved positions (len of them). */
QC_EW_SIMD_CLONES
static void softmax_block(const float *x, float *y, int64_t R, int64_t st, int64_t len, int kind)
{
    float mx[CHUNK];
    double sum[CHUNK];
    int64_t arg[CHUNK];
    for (int64_t i = 0; i < len; i++) {
        mx[i] = x[i];
        sum[i] = 0.0;
        arg[i] = 0;
    }
    for (int64_t k = 1; k < R; k++)
        for (int64_t i = 0; i < len; i++)
            if (x[k * st + i] > mx[i]) {
                mx[i] = x[k * st + i];
                arg[i] = k;
            }
    if (kind == SM_HARD) {
        for (int64_t k = 0; k < R; k++)
            for (int64_t i = 0; i < len; i++)
                y[k * st + i] = arg[i] == k ? 1.0f : 0.0f;
        return;
    }
    for (int64_t k = 0; k < R; k++)
        for (int64_t i = 0; i < len; i++) {
            float e = qc_ew_expf(x[k * st + i] - mx[i]);
            sum[i] += e;
            if (kind == SM_SOFT)
                y[k * st + i] = e;
        }
    if (kind == SM_SOFT) {
        float inv[CHUNK];
        for (int64_t i = 0; i < len; i++)
            inv[i] = (float)(1.0 / sum[i]);
        for (int64_t k = 0; k < R; k++)
            for (int64_t i = 0; i < len; i++)
                y[k * st + i] *= inv[i];
    } else {
        float ls[CHUNK];
        for (int64_t i = 0; i < len; i++)
            ls[i] = (float)log(sum[i]);
        for (int64_t k = 0; k < R; k++)
            for (int64_t i = 0; i < len; i++)
                y[k * st + i] = (x[k * st + i] - mx[i]) - ls[i];
    }
}

static int softmax_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const float *x = n->in[0]->data;
    float *y = n->out[0]->data;
    int64_t outer, R, inner;
    int rc;
    const char *op = n->node->op_type;
    int kind = strcmp(op, "LogSoftmax") == 0 ? SM_LOG : strcmp(op, "Hardmax") == 0 ? SM_HARD
                                                                                  : SM_SOFT;
    (void)r;
    if ((rc = softmax_geom(n, &outer, &R, &inner, err)) != QC_OK)
        return rc;
    if (R == 0)
        return QC_OK;
    for (int64_t o = 0; o < outer; o++) {
        const float *xo = x + o * R * inner;
        float *yo = y + o * R * inner;
        if (inner == 1) {
            softmax_row(xo, yo, R, kind);
            continue;
        }
        for (int64_t c0 = 0; c0 < inner; c0 += CHUNK)
            softmax_block(xo + c0, yo + c0, R, inner, inner - c0 < CHUNK ? inner - c0 : CHUNK,
                          kind);
    }
    return QC_OK;
}

/* ---- BatchNormalization ------------------------------------------------------------------ */

/* Inputs 0 .. n_in - 1 float32, input 0 of rank >= 2 and each other one a value per channel
 * (dims[1]); the output takes input 0's shape (BatchNormalization, InstanceNormalization). */
static int per_channel_infer(qc_knode *n, int n_in, qc_err *err)
{
    int rc;
    for (int i = 0; i < n_in; i++)
        if ((rc = need_f32(n, i, err)) != QC_OK)
            return rc;
    const qc_tensor *x = n->in[0];
    if (x->ndim < 2)
        return qc_node_errf(n, err, QC_ESHAPE, "input has %d dims, expected at least 2",
                            x->ndim);
    for (int i = 1; i < n_in; i++)
        if (qc_tensor_numel(n->in[i]) != x->dims[1])
            return qc_node_errf(n, err, QC_ESHAPE, "input %d has %lld values for %lld channels",
                                i, (long long)qc_tensor_numel(n->in[i]),
                                (long long)x->dims[1]);
    qc_copy_shape(n->out[0], x);
    return QC_OK;
}

static int bn_infer(qc_knode *n, qc_err *err)
{
    int rc = per_channel_infer(n, 5, err);
    if (rc != QC_OK)
        return rc;
    for (int i = 1; i < 3 && i < n->n_out; i++)
        if (n->out[i])
            qc_copy_shape(n->out[i], n->in[i + 2]);
    return QC_OK;
}

static int bn_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    const float *X = x->data, *scale = n->in[1]->data, *bias = n->in[2]->data;
    const float *mean = n->in[3]->data, *var = n->in[4]->data;
    float *Y = n->out[0]->data;
    float eps = qc_attr_float(n->node, "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->dims[1], S = 1;
    int train = n->opset >= 14 && qc_attr_int(n->node, "training_mode", 0) != 0;
    (void)r;
    (void)err;
    for (int d = 2; d < x->ndim; d++)
        S *= x->dims[d];
    for (int64_t c = 0; c < C; c++) {
        float m = mean[c], v = var[c];
        if (train) {
            /* batch statistics (population variance), and the running averages out */
            double sum = 0.0, sq = 0.0, cnt = (double)(N * S);
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < S; i++)
                    sum += X[(b * C + c) * S + i];
            double bm = cnt > 0 ? sum / cnt : 0.0;
            for (int64_t b = 0; b < N; b++)
                for (int64_t i = 0; i < S; i++) {
                    double dv = X[(b * C + c) * S + i] - bm;
                    sq += dv * dv;
                }
            double bv = cnt > 0 ? sq / cnt : 0.0;
            float mom = qc_attr_float(n->node, "momentum", 0.9f);
            if (n->n_out > 1 && n->out[1])
                ((float *)n->out[1]->data)[c] = (float)(m * mom + bm * (1.0 - mom));
            if (n->n_out > 2 && n->out[2])
                ((float *)n->out[2]->data)[c] = (float)(v * mom + bv * (1.0 - mom));
            m = (float)bm;
            v = (float)bv;
        }
        float a = scale[c] / sqrtf(v + eps), b = bias[c] - m * a;
        for (int64_t bt = 0; bt < N; bt++) {
            const float *xs = X + (bt * C + c) * S;
            float *ys = Y + (bt * C + c) * S;
            for (int64_t i = 0; i < S; i++)
                ys[i] = xs[i] * a + b;
        }
    }
    return QC_OK;
}

/* ---- LayerNormalization / InstanceNormalization ------------------------------------------ */

/* Mean and 1/sqrt(var + eps) of x[0..len) in double. */
static void row_stats(const float *x, int64_t len, double eps, double *mean, double *inv)
{
    double s = 0.0, q = 0.0;
    for (int64_t i = 0; i < len; i++)
        s += x[i];
    double m = len > 0 ? s / (double)len : 0.0;
    for (int64_t i = 0; i < len; i++) {
        double d = x[i] - m;
        q += d * d;
    }
    *mean = m;
    *inv = 1.0 / sqrt((len > 0 ? q / (double)len : 0.0) + eps);
}

static int ln_geom(const qc_knode *n, int *axis, int64_t *rows, int64_t *D, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", -1), x->ndim, axis, err);
    if (rc != QC_OK)
        return rc;
    *rows = *D = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < *axis)
            *rows *= x->dims[d];
        else
            *D *= x->dims[d];
    }
    return QC_OK;
}

/* Scale/bias index for element j of a normalized row: they broadcast against dims[axis:]. */
static int64_t ln_index(const qc_tensor *t, const qc_tensor *x, int axis, int64_t j)
{
    int64_t nt = qc_tensor_numel(t), D = 1, off = 0, st[QC_MAX_DIMS];
    for (int d = axis; d < x->ndim; d++)
        D *= x->dims[d];
    if (nt == D)
        return j;
    if (nt == 1)
        return 0;
    qc_broadcast_strides(t->dims, t->ndim, x->dims + axis, x->ndim - axis, st);
    for (int d = x->ndim - 1; d >= axis; d--) {
        off += (j % x->dims[d]) * st[d - axis];
        j /= x->dims[d];
    }
    return off;
}

static int ln_infer(qc_knode *n, qc_err *err)
{
    int axis, rc;
    int64_t rows, D, dims[QC_MAX_DIMS];
    char s1[128], s2[128];
    if ((rc = need_f32(n, 0, err)) != QC_OK || (rc = need_f32(n, 1, err)) != QC_OK ||
        (rc = ln_geom(n, &axis, &rows, &D, err)) != QC_OK)
        return rc;
    const qc_tensor *x = n->in[0];
    for (int i = 1; i < 3 && i < n->n_in; i++) {
        const qc_tensor *t = n->in[i];
        int64_t out[QC_MAX_DIMS];
        int no;
        if (!t)
            continue;
        if (t->dtype != QC_F32 ||
            qc_broadcast_shape(x->dims + axis, x->ndim - axis, t->dims, t->ndim, out, &no) ||
            no != x->ndim - axis || memcmp(out, x->dims + axis, sizeof(int64_t) * (size_t)no))
            return qc_node_errf(n, err, QC_ESHAPE, "input %d %s does not broadcast to %s from "
                                "axis %d", i, qc_shape_str(t, s1, sizeof s1),
                                qc_shape_str(x, s2, sizeof s2), axis);
    }
    qc_copy_shape(n->out[0], x);
    for (int d = 0; d < x->ndim; d++)
        dims[d] = d < axis ? x->dims[d] : 1;
    for (int i = 1; i < 3 && i < n->n_out; i++)
        if (n->out[i])
            qc_set_shape(n->out[i], QC_F32, x->ndim, dims);
    return QC_OK;
}

static int ln_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ts = n->in[1], *tb = n->n_in > 2 ? n->in[2] : NULL;
    const float *X = x->data, *S = ts->data, *B = tb ? tb->data : NULL;
    float *Y = n->out[0]->data;
    float *M = n->n_out > 1 && n->out[1] ? n->out[1]->data : NULL;
    float *I = n->n_out > 2 && n->out[2] ? n->out[2]->data : NULL;
    double eps = qc_attr_float(n->node, "epsilon", 1e-5f);
    int axis, rc;
    int64_t rows, D;
    (void)r;
    if ((rc = ln_geom(n, &axis, &rows, &D, err)) != QC_OK)
        return rc;
    int fast = qc_tensor_numel(ts) == D && (!tb || qc_tensor_numel(tb) == D);
    for (int64_t row = 0; row < rows; row++) {
        const float *xr = X + row * D;
        float *yr = Y + row * D;
        double mean, inv;
        row_stats(xr, D, eps, &mean, &inv);
        float fm = (float)mean, fi = (float)inv;
        if (M)
            M[row] = fm;
        if (I)
            I[row] = fi;
        if (fast) {
            for (int64_t j = 0; j < D; j++)
                yr[j] = (xr[j] - fm) * fi * S[j] + (B ? B[j] : 0.0f);
        } else {
            for (int64_t j = 0; j < D; j++)
                yr[j] = (xr[j] - fm) * fi * S[ln_index(ts, x, axis, j)] +
                        (B ? B[ln_index(tb, x, axis, j)] : 0.0f);
        }
    }
    return QC_OK;
}

static int in_infer(qc_knode *n, qc_err *err)
{
    return per_channel_infer(n, 3, err);
}

/* y = (x - mean) / sqrt(var + eps) * scale + bias, statistics per sample and group of C / G
 * consecutive channels; scale and bias per channel or per group. Instance normalization is
 * G = C. */
static void group_norm(const qc_tensor *x, const float *scale, const float *bias, int64_t G,
                       int per_channel, double eps, float *Y)
{
    const float *X = x->data;
    int64_t N = x->dims[0], C = x->dims[1], S = 1, cg = C / G;
    for (int d = 2; d < x->ndim; d++)
        S *= x->dims[d];
    for (int64_t b = 0; b < N; b++)
        for (int64_t g = 0; g < G; g++) {
            const float *xs = X + (b * C + g * cg) * S;
            double mean, inv;
            row_stats(xs, cg * S, eps, &mean, &inv);
            for (int64_t c = 0; c < cg; c++) {
                int64_t k = per_channel ? g * cg + c : g;
                float a = (float)(inv * scale[k]), off = (float)(bias[k] - mean * inv * scale[k]);
                const float *xc = xs + c * S;
                float *yc = Y + (b * C + g * cg + c) * S;
                for (int64_t i = 0; i < S; i++)
                    yc[i] = xc[i] * a + off;
            }
        }
}

static int in_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    (void)err;
    group_norm(n->in[0], n->in[1]->data, n->in[2]->data, n->in[0]->dims[1], 1,
               qc_attr_float(n->node, "epsilon", 1e-5f), n->out[0]->data);
    return QC_OK;
}

/* ---- GroupNormalization: statistics over each group of C / num_groups channels; scale and
 * bias per group (opset 18) or per channel (opset 21) -------------------------------------- */

static int gn_infer(qc_knode *n, qc_err *err)
{
    int rc;
    for (int i = 0; i < 3; i++)
        if ((rc = need_f32(n, i, err)) != QC_OK)
            return rc;
    const qc_tensor *x = n->in[0];
    int64_t G = qc_attr_int(n->node, "num_groups", 0);
    if (x->ndim < 2)
        return qc_node_errf(n, err, QC_ESHAPE, "input has %d dims, expected at least 2",
                            x->ndim);
    if (G < 1 || x->dims[1] % G)
        return qc_node_errf(n, err, QC_EINPUT, "num_groups %lld does not divide %lld channels",
                            (long long)G, (long long)x->dims[1]);
    int64_t want = n->opset >= 21 ? x->dims[1] : G;
    for (int i = 1; i < 3; i++)
        if (qc_tensor_numel(n->in[i]) != want)
            return qc_node_errf(n, err, QC_ESHAPE, "input %d has %lld values, expected %lld",
                                i, (long long)qc_tensor_numel(n->in[i]), (long long)want);
    qc_copy_shape(n->out[0], x);
    return QC_OK;
}

static int gn_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    (void)err;
    group_norm(n->in[0], n->in[1]->data, n->in[2]->data,
               qc_attr_int(n->node, "num_groups", 1), n->opset >= 21,
               qc_attr_float(n->node, "epsilon", 1e-5f), n->out[0]->data);
    return QC_OK;
}

/* ---- LRN: x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels)^beta ---- */

static int lrn_infer(qc_knode *n, qc_err *err)
{
    int rc = need_f32(n, 0, err);
    if (rc != QC_OK)
        return rc;
    if (n->in[0]->ndim < 3)
        return qc_node_errf(n, err, QC_ESHAPE, "input must be [N, C, D1, ...], got rank %d",
                            n->in[0]->ndim);
    if (qc_attr_int(n->node, "size", 0) < 1)
        return qc_node_errf(n, err, QC_EINPUT, "size must be at least 1");
    qc_copy_shape(n->out[0], n->in[0]);
    return QC_OK;
}

static int lrn_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    (void)r;
    (void)err;
    int64_t size = qc_attr_int(n->node, "size", 1), C = x->dims[1], inner = 1;
    double alpha = qc_attr_float(n->node, "alpha", 1e-4f) / (double)size;
    double beta = qc_attr_float(n->node, "beta", 0.75f), bias = qc_attr_float(n->node, "bias", 1.0f);
    for (int d = 2; d < x->ndim; d++)
        inner *= x->dims[d];
    int64_t lo_off = (size - 1) / 2, hi_off = size - 1 - lo_off;   /* floor / ceil */
    const float *xs = x->data;
    float *y = n->out[0]->data;
    for (int64_t b = 0; b < x->dims[0]; b++)
        for (int64_t c = 0; c < C; c++) {
            int64_t c0 = c - lo_off < 0 ? 0 : c - lo_off, c1 = c + hi_off >= C ? C - 1 : c + hi_off;
            const float *xc = xs + (b * C + c) * inner;
            float *yc = y + (b * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) {
                double sq = 0.0;
                for (int64_t k = c0; k <= c1; k++) {
                    double v = xs[(b * C + k) * inner + i];
                    sq += v * v;
                }
                yc[i] = (float)(xc[i] / pow(bias + alpha * sq, beta));
            }
        }
    return QC_OK;
}

const qc_op_def qc_ops_norm[] = {
    { "Softmax", 1, softmax_infer, softmax_run, NULL, NULL, NULL },
    { "LogSoftmax", 1, softmax_infer, softmax_run, NULL, NULL, NULL },
    { "Hardmax", 1, softmax_infer, softmax_run, NULL, NULL, NULL },
    { "BatchNormalization", 1, bn_infer, bn_run, NULL, NULL, NULL },
    { "LayerNormalization", 17, ln_infer, ln_run, NULL, NULL, NULL },
    { "InstanceNormalization", 1, in_infer, in_run, NULL, NULL, NULL },
    { "LRN", 1, lrn_infer, lrn_run, NULL, NULL, NULL },
    { "GroupNormalization", 18, gn_infer, gn_run, NULL, NULL, NULL },
    { 0 }
};
