/* The values shape subgraphs start from: Shape, Size, Constant, ConstantOfShape, Range (their
 * outputs come from input shapes and attributes, not from input values, except Range's
 * scalars and ConstantOfShape's shape). */
#include <math.h>
#include <string.h>
#include "ops.h"

/* nbytes of an attribute's values into y (none: nothing, and no read of a NULL pointer) */
static void copy_attr(void *y, const void *src, size_t nbytes)
{
    if (nbytes)
        memcpy(y, src, nbytes);
}

static void shape_range(const qc_knode *n, int rank, int64_t *start, int64_t *end)
{
    int64_t s = n->opset >= 15 ? qc_attr_int(n->node, "start", 0) : 0;
    int64_t e = n->opset >= 15 ? qc_attr_int(n->node, "end", rank) : rank;
    if (s < 0)
        s += rank;
    if (e < 0)
        e += rank;
    *start = s < 0 ? 0 : s > rank ? rank : s;
    *end = e < 0 ? 0 : e > rank ? rank : e;
    if (*end < *start)
        *end = *start;
}

static int shape_infer(qc_knode *n, qc_err *err)
{
    int64_t s, e;
    (void)err;
    shape_range(n, n->in[0]->ndim, &s, &e);
    int64_t len = e - s;
    qc_set_shape(n->out[0], QC_I64, 1, &len);
    return QC_OK;
}

static int shape_run(qc_knode *n, qc_run *r, qc_err *err)
{
    int64_t s, e, *y = n->out[0]->data;
    (void)r;
    (void)err;
    shape_range(n, n->in[0]->ndim, &s, &e);
    for (int64_t i = s; i < e; i++)
        y[i - s] = n->in[0]->dims[i];
    return QC_OK;
}

static int size_infer(qc_knode *n, qc_err *err)
{
    (void)err;
    qc_set_shape(n->out[0], QC_I64, 0, NULL);
    return QC_OK;
}

static int size_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    (void)err;
    *(int64_t *)n->out[0]->data = qc_tensor_numel(n->in[0]);
    return QC_OK;
}

static int constant_infer(qc_knode *n, qc_err *err)
{
    const qc_attr *a = qc_attr_find(n->node, "value");
    int64_t len;
    if (a && a->t) {
        if (!qc_dtype_is_executable(a->t->dtype))
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "value has dtype %s, which the "
                                "executor does not support", qc_dtype_name(a->t->dtype));
        qc_copy_shape(n->out[0], a->t);
    } else if ((a = qc_attr_find(n->node, "value_float"))) {
        qc_set_shape(n->out[0], QC_F32, 0, NULL);
    } else if ((a = qc_attr_find(n->node, "value_int"))) {
        qc_set_shape(n->out[0], QC_I64, 0, NULL);
    } else if ((a = qc_attr_find(n->node, "value_floats"))) {
        len = a->n;
        qc_set_shape(n->out[0], QC_F32, 1, &len);
    } else if ((a = qc_attr_find(n->node, "value_ints"))) {
        len = a->n;
        qc_set_shape(n->out[0], QC_I64, 1, &len);
    } else {
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "only value, value_float(s) and "
                            "value_int(s) are supported");
    }
    return QC_OK;
}

static int constant_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_attr *a;
    void *y = n->out[0]->data;
    (void)r;
    (void)err;
    if ((a = qc_attr_find(n->node, "value")) && a->t)
        copy_attr(y, a->t->data, qc_tensor_nbytes(a->t));
    else if ((a = qc_attr_find(n->node, "value_float")))
        *(float *)y = a->f;
    else if ((a = qc_attr_find(n->node, "value_int")))
        *(int64_t *)y = a->i;
    else if ((a = qc_attr_find(n->node, "value_floats")))
        copy_attr(y, a->floats, (size_t)a->n * sizeof(float));
    else if ((a = qc_attr_find(n->node, "value_ints")))
        copy_attr(y, a->ints, (size_t)a->n * sizeof(int64_t));
    return QC_OK;
}

static int cos_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *shp = n->in[0];
    const qc_attr *a = qc_attr_find(n->node, "value");
    int64_t dims[QC_MAX_DIMS];
    int dtype = a && a->t ? a->t->dtype : QC_F32;
    if (a && a->t && qc_tensor_numel(a->t) != 1)
        return qc_node_errf(n, err, QC_EINPUT, "value must hold one element");
    if (!qc_dtype_is_executable(dtype))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "value has dtype %s, which the executor "
                            "does not support", qc_dtype_name(dtype));
    if (shp->ndim > 1 || qc_tensor_numel(shp) > QC_MAX_DIMS)
        return qc_node_errf(n, err, QC_EINPUT, "shape input must be 1-D with at most %d "
                            "entries", QC_MAX_DIMS);
    int nd = (int)qc_tensor_numel(shp);
    for (int i = 0; i < nd; i++)
        if ((dims[i] = qc_tensor_get_i(shp, i)) < 0)
            return qc_node_errf(n, err, QC_EINPUT, "negative dim %lld", (long long)dims[i]);
    qc_set_shape(n->out[0], dtype, nd, dims);
    return QC_OK;
}

static int cos_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_attr *a = qc_attr_find(n->node, "value");
    qc_tensor *y = n->out[0];
    size_t es = qc_dtype_size(y->dtype);
    int64_t len = qc_tensor_numel(y);
    unsigned char v[8] = {0};
    (void)r;
    (void)err;
    if (a && a->t)
        memcpy(v, a->t->data, es);
    for (int64_t i = 0; i < len; i++)
        memcpy((char *)y->data + i * (int64_t)es, v, es);
    return QC_OK;
}

static int range_count(const qc_knode *n, int64_t *count, qc_err *err)
{
    const qc_tensor *s = n->in[0], *l = n->in[1], *d = n->in[2];
    if (qc_tensor_numel(s) != 1 || qc_tensor_numel(l) != 1 || qc_tensor_numel(d) != 1)
        return qc_node_errf(n, err, QC_EINPUT, "start, limit and delta must be scalars");
    if (s->dtype == QC_F32) {
        double st = qc_tensor_get_f(s, 0), li = qc_tensor_get_f(l, 0), de = qc_tensor_get_f(d, 0);
        double c = ceil((li - st) / de);
        if (de == 0 || !(c == c) || c > 1e15)
            return qc_node_errf(n, err, QC_EINPUT, "invalid range %g..%g step %g", st, li, de);
        *count = c > 0 ? (int64_t)c : 0;
        return QC_OK;
    }
    int64_t st = qc_tensor_get_i(s, 0), li = qc_tensor_get_i(l, 0), de = qc_tensor_get_i(d, 0);
    if (de == 0)
        return qc_node_errf(n, err, QC_EINPUT, "delta is 0");
    int64_t diff = li - st, q = diff / de;
    if (diff % de != 0 && (diff > 0) == (de > 0))
        q++;
    *count = q > 0 ? q : 0;
    return QC_OK;
}

static int range_infer(qc_knode *n, qc_err *err)
{
    int64_t count;
    int rc, dt = n->in[0]->dtype;
    if (dt != QC_F32 && dt != QC_I16 && dt != QC_I32 && dt != QC_I64)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                            qc_dtype_name(dt));
    if ((rc = range_count(n, &count, err)))
        return rc;
    qc_set_shape(n->out[0], dt, 1, &count);
    return QC_OK;
}

static int range_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *s = n->in[0], *d = n->in[2];
    qc_tensor *y = n->out[0];
    int64_t len = y->dims[0];
    (void)r;
    (void)err;
    if (y->dtype == QC_F32) {
        float st = *(const float *)s->data, de = *(const float *)d->data, *o = y->data;
        for (int64_t i = 0; i < len; i++)
            o[i] = st + (float)i * de;
        return QC_OK;
    }
    int64_t st = qc_tensor_get_i(s, 0), de = qc_tensor_get_i(d, 0);
    for (int64_t i = 0; i < len; i++) {
        int64_t v = st + i * de;
        switch (y->dtype) {
        case QC_I64: ((int64_t *)y->data)[i] = v; break;
        case QC_I32: ((int32_t *)y->data)[i] = (int32_t)v; break;
        default: ((int16_t *)y->data)[i] = (int16_t)v; break;
        }
    }
    return QC_OK;
}

const qc_op_def qc_ops_source[] = {
    { "Shape", 1, shape_infer, shape_run, NULL, NULL, NULL },
    { "Size", 1, size_infer, size_run, NULL, NULL, NULL },
    { "Constant", 1, constant_infer, constant_run, NULL, NULL, NULL },
    { "ConstantOfShape", 9, cos_infer, cos_run, NULL, NULL, NULL },
    { "Range", 11, range_infer, range_run, NULL, NULL, NULL },
    { 0 }
};
