/* Small operators of their own kind: EyeLike, Compress, ReverseSequence,
 * MeanVarianceNormalization and the window functions (Hann, Hamming, Blackman). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

/* ---- EyeLike: ones on diagonal k of a 2-D shape, zeros elsewhere ------------------------- */

static int eye_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int dt = (int)qc_attr_int(n->node, "dtype", x->dtype);
    if (x->ndim != 2)
        return qc_node_errf(n, err, QC_ESHAPE, "input must be 2-D, got rank %d", x->ndim);
    if (!qc_dtype_is_executable(dt))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "output dtype %s is not supported",
                            qc_dtype_name(dt));
    qc_set_shape(n->out[0], dt, 2, x->dims);
    return QC_OK;
}

static int eye_run(qc_knode *n, qc_run *r, qc_err *err)
{
    qc_tensor *y = n->out[0];
    int64_t k = qc_attr_int(n->node, "k", 0), R = y->dims[0], C = y->dims[1];
    (void)r;
    (void)err;
    memset(y->data, 0, qc_tensor_nbytes(y));
    for (int64_t i = 0; i < R; i++)
        if (k > -C && k < C && i + k >= 0 && i + k < C)
            qc_store_f(y->data, y->dtype, i * C + i + k, 1.0);
    return QC_OK;
}

/* ---- Compress: the slices along axis (or of the flattened input) where condition is true - */

static int compress_geom(const qc_knode *n, int64_t *outer, int64_t *len, int64_t *inner,
                         int *axis, qc_err *err)
{
    const qc_tensor *x = n->in[0], *c = qc_opt_in(n, 1);
    if (!c || c->dtype != QC_BOOL || c->ndim != 1)
        return qc_node_errf(n, err, QC_EINPUT, "condition must be a 1-D bool tensor");
    *axis = -1;
    *outer = *inner = 1;
    *len = qc_tensor_numel(x);
    if (qc_attr_find(n->node, "axis")) {
        int rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, axis, err);
        if (rc != QC_OK)
            return rc;
        *len = x->dims[*axis];
        for (int d = 0; d < x->ndim; d++)
            if (d < *axis)
                *outer *= x->dims[d];
            else if (d > *axis)
                *inner *= x->dims[d];
    }
    if (c->dims[0] > *len)
        return qc_node_errf(n, err, QC_ESHAPE, "condition has %lld values for %lld slices",
                            (long long)c->dims[0], (long long)*len);
    return QC_OK;
}

static int compress_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *c = n->in[1];
    int64_t outer, len, inner, kept = 0, dims[QC_MAX_DIMS];
    int axis, rc;
    if ((rc = qc_need_exec(n, x, err)) != QC_OK ||
        (rc = compress_geom(n, &outer, &len, &inner, &axis, err)) != QC_OK)
        return rc;
    for (int64_t i = 0; i < c->dims[0]; i++)
        kept += ((const uint8_t *)c->data)[i] != 0;
    if (axis < 0) {
        qc_set_shape(n->out[0], x->dtype, 1, &kept);
        return QC_OK;
    }
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    dims[axis] = kept;
    qc_set_shape(n->out[0], x->dtype, x->ndim, dims);
    return QC_OK;
}

static int compress_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *c = n->in[1];
    int64_t outer, len, inner;
    int axis, rc;
    (void)r;
    if ((rc = compress_geom(n, &outer, &len, &inner, &axis, err)) != QC_OK)
        return rc;
    size_t es = qc_dtype_size(x->dtype), row = (size_t)inner * es;
    const uint8_t *cond = c->data;
    char *y = n->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < c->dims[0]; i++)
            if (cond[i]) {
                memcpy(y, (const char *)x->data + (size_t)(o * len + i) * row, row);
                y += row;
            }
    return QC_OK;
}

/* ---- ReverseSequence: the first sequence_lens[b] steps of each batch entry, reversed ----- */

static int revseq_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *l = qc_opt_in(n, 1);
    int64_t ta = qc_attr_int(n->node, "time_axis", 0), ba = qc_attr_int(n->node, "batch_axis", 1);
    int rc;
    if ((rc = qc_need_exec(n, x, err)) != QC_OK)
        return rc;
    if (x->ndim < 2 || !((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
        return qc_node_errf(n, err, QC_EINPUT, "needs rank >= 2 and time / batch axes 0 and 1");
    if (!l || l->ndim != 1 || l->dims[0] != x->dims[ba] ||
        (l->dtype != QC_I64 && l->dtype != QC_I32))
        return qc_node_errf(n, err, QC_EINPUT, "sequence_lens must be int [%lld]",
                            (long long)x->dims[ba]);
    qc_copy_shape(n->out[0], x);
    return QC_OK;
}

static int revseq_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *l = n->in[1];
    int ta = qc_attr_int(n->node, "time_axis", 0) != 0;
    int64_t T = x->dims[ta], B = x->dims[!ta];
    (void)r;
    if (T == 0 || B == 0)
        return QC_OK;
    int64_t inner = qc_tensor_numel(x) / (T * B);
    size_t es = qc_dtype_size(x->dtype), blk = (size_t)inner * es;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = qc_tensor_get_i(l, b);
        if (len < 0 || len > T)
            return qc_node_errf(n, err, QC_EINPUT, "sequence_lens[%lld] = %lld, outside 0..%lld",
                                (long long)b, (long long)len, (long long)T);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < len ? len - 1 - t : t;
            int64_t yo = ta ? b * T + t : t * B + b, xo = ta ? b * T + src : src * B + b;
            memcpy((char *)n->out[0]->data + (size_t)yo * blk,
                   (const char *)x->data + (size_t)xo * blk, blk);
        }
    }
    return QC_OK;
}

/* ---- MeanVarianceNormalization: (x - mean) / sqrt(var) over axes (default 0, 2, 3) ------- */

static int mvn_axes(const qc_knode *n, int *over, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t cnt = 0, def[3] = { 0, 2, 3 };
    const int64_t *ax = qc_attr_ints(n->node, "axes", &cnt);
    if (!ax) {
        ax = def;
        cnt = 3;
    }
    memset(over, 0, sizeof(int) * QC_MAX_DIMS);
    for (int64_t i = 0; i < cnt; i++) {
        int a, rc = qc_norm_axis(n, ax[i], x->ndim, &a, err);
        if (rc != QC_OK)
            return rc;
        over[a] = 1;
    }
    return QC_OK;
}

static int mvn_infer(qc_knode *n, qc_err *err)
{
    int over[QC_MAX_DIMS], rc;
    if (n->in[0]->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "only float32 is supported");
    if ((rc = mvn_axes(n, over, err)) != QC_OK)
        return rc;
    qc_copy_shape(n->out[0], n->in[0]);
    return QC_OK;
}

/* Element i's group (its index over the kept dims) given its index idx over all dims; then
 * idx moves on to element i + 1. */
static int64_t mvn_group_next(const qc_tensor *x, const int *over, int64_t *idx)
{
    int64_t g = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!over[d])
            g = g * x->dims[d] + idx[d];
    for (int d = x->ndim - 1; d >= 0 && ++idx[d] == x->dims[d]; d--)
        idx[d] = 0;
    return g;
}

static int mvn_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int over[QC_MAX_DIMS], rc;
    (void)r;
    if ((rc = mvn_axes(n, over, err)) != QC_OK)
        return rc;
    /* groups: the indices of the kept dims; members: the reduced dims */
    int64_t total = qc_tensor_numel(x), groups = 1, idx[QC_MAX_DIMS] = { 0 };
    for (int d = 0; d < x->ndim; d++)
        if (!over[d])
            groups *= x->dims[d];
    int64_t members = groups ? total / groups : 0;
    const float *X = x->data;
    float *Y = n->out[0]->data;
    double *sum = calloc((size_t)groups * 2 + 1, sizeof *sum);     /* means, then variances */
    if (!sum)
        return qc_node_errf(n, err, QC_ENOMEM, "out of memory");
    for (int64_t i = 0; i < total; i++)
        sum[mvn_group_next(x, over, idx)] += X[i];
    for (int64_t g = 0; g < groups; g++)
        sum[g] /= (double)members;
    for (int64_t i = 0; i < total; i++) {           /* idx is back at element 0 */
        int64_t g = mvn_group_next(x, over, idx);
        double dv = X[i] - sum[g];
        sum[groups + g] += dv * dv;
    }
    for (int64_t i = 0; i < total; i++) {
        int64_t g = mvn_group_next(x, over, idx);
        double var = sum[groups + g] / (double)members;
        Y[i] = (float)((X[i] - sum[g]) / (sqrt(var) + 1e-9));
    }
    free(sum);
    return QC_OK;
}

/* ---- HannWindow, HammingWindow, BlackmanWindow (opset 17) -------------------------------- */

static int window_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *s = n->in[0];
    int dt = (int)qc_attr_int(n->node, "output_datatype", QC_F32);
    if ((s->dtype != QC_I64 && s->dtype != QC_I32) || qc_tensor_numel(s) != 1)
        return qc_node_errf(n, err, QC_EINPUT, "size must be one integer");
    int64_t len = qc_tensor_get_i(s, 0);
    if (len < 0 || len > (1 << 26))
        return qc_node_errf(n, err, QC_EINPUT, "window size %lld is out of range",
                            (long long)len);
    if (!qc_dtype_is_executable(dt))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "output dtype %s is not supported",
                            qc_dtype_name(dt));
    qc_set_shape(n->out[0], dt, 1, &len);
    return QC_OK;
}

static int window_run(qc_knode *n, qc_run *r, qc_err *err)
{
    qc_tensor *y = n->out[0];
    const char *op = n->node->op_type;
    int64_t len = y->dims[0];
    int periodic = qc_attr_int(n->node, "periodic", 1) != 0;
    double N = periodic ? (double)len : (double)len - 1.0, pi = 3.14159265358979323846;
    (void)r;
    (void)err;
    for (int64_t i = 0; i < len; i++) {
        double a = N > 0 ? 2.0 * pi * (double)i / N : 0.0, v;
        if (!strcmp(op, "HannWindow"))
            v = 0.5 - 0.5 * cos(a);
        else if (!strcmp(op, "HammingWindow"))
            v = 25.0 / 46.0 - (21.0 / 46.0) * cos(a);
        else
            v = 0.42 - 0.5 * cos(a) + 0.08 * cos(2.0 * a);
        qc_store_f(y->data, y->dtype, i, v);
    }
    return QC_OK;
}

const qc_op_def qc_ops_misc[] = {
    { "EyeLike", 9, eye_infer, eye_run, NULL, NULL, NULL },
    { "Compress", 9, compress_infer, compress_run, NULL, NULL, NULL },
    { "ReverseSequence", 10, revseq_infer, revseq_run, NULL, NULL, NULL },
    { "MeanVarianceNormalization", 9, mvn_infer, mvn_run, NULL, NULL, NULL },
    { "HannWindow", 17, window_infer, window_run, NULL, NULL, NULL },
    { "HammingWindow", 17, window_infer, window_run, NULL, NULL, NULL },
    { "BlackmanWindow", 17, window_infer, window_run, NULL, NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL, NULL },
};
