/* Indexing: Slice, Gather, GatherElements, GatherND, ScatterElements (and the older Scatter),
 * ScatterND, TopK, NonZero, OneHot, CumSum. Pure copies work on every executable dtype;
 * arithmetic (scatter reductions, CumSum, TopK comparisons) is typed. Indices out of range
 * are input errors found at run time, never memory errors. */
#include <string.h>
#include "ops.h"


static int need_int(const qc_knode *n, const qc_tensor *t, const char *what, qc_err *err)
{
    if (t->dtype != QC_I64 && t->dtype != QC_I32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "%s must be int32 or int64, got %s", what,
                            qc_dtype_name(t->dtype));
    return QC_OK;
}

static inline int64_t idx_at(const qc_tensor *t, int64_t i)
{
    return t->dtype == QC_I64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

static void contig_strides(const int64_t *dims, int nd, int64_t *str)
{
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        str[i] = s;
        s *= dims[i];
    }
}

/* Advances a row-major counter over dims; 0 when it wraps around. */
static int next_index(int64_t *idx, const int64_t *dims, int nd)
{
    for (int a = nd - 1; a >= 0; a--) {
        if (++idx[a] < dims[a])
            return 1;
        idx[a] = 0;
    }
    return 0;
}

/* ---- Slice ----------------------------------------------------------------------------- */

/* Per axis of x: first element, step and output length. */
static int slice_params(const qc_knode *n, const qc_tensor *x, int64_t *start, int64_t *step,
                        int64_t *len, qc_err *err)
{
    const qc_tensor *ts = NULL, *te = NULL, *ta = NULL, *tp = NULL;
    const int64_t *as = NULL, *ae = NULL, *aa = NULL;
    int64_t k, ke, ka = 0, kp = 0;
    int seen[QC_MAX_DIMS] = {0};
    for (int a = 0; a < x->ndim; a++) {
        start[a] = 0;
        step[a] = 1;
        len[a] = x->dims[a];
    }
    if (n->opset < 10) {
        as = qc_attr_ints(n->node, "starts", &k);
        ae = qc_attr_ints(n->node, "ends", &ke);
        aa = qc_attr_ints(n->node, "axes", &ka);
    } else {
        ts = qc_opt_in(n, 1);
        te = qc_opt_in(n, 2);
        ta = qc_opt_in(n, 3);
        tp = qc_opt_in(n, 4);
        if (!ts || !te)
            return qc_node_errf(n, err, QC_EINPUT, "missing starts or ends input");
        k = qc_tensor_numel(ts);
        ke = qc_tensor_numel(te);
        ka = ta ? qc_tensor_numel(ta) : 0;
        kp = tp ? qc_tensor_numel(tp) : 0;
        if (ta && !ka)
            ta = NULL;
        if (tp && !kp)
            tp = NULL;
    }
    if (ke != k || ((aa || ta) && ka != k) || (tp && kp != k) || k > x->ndim)
        return qc_node_errf(n, err, QC_EINPUT, "starts/ends/axes/steps lengths do not match "
                            "(%lld, %lld, %lld, %lld) for rank %d", (long long)k,
                            (long long)ke, (long long)ka, (long long)kp, x->ndim);
    for (int64_t j = 0; j < k; j++) {
        int64_t ax = aa ? aa[j] : ta ? qc_tensor_get_i(ta, j) : j;
        int64_t s = as ? as[j] : qc_tensor_get_i(ts, j);
        int64_t e = ae ? ae[j] : qc_tensor_get_i(te, j);
        int64_t st = tp ? qc_tensor_get_i(tp, j) : 1;
        int a, rc;
        if ((rc = qc_norm_axis(n, ax, x->ndim, &a, err)))
            return rc;
        if (seen[a]++)
            return qc_node_errf(n, err, QC_EINPUT, "axis %d repeated", a);
        if (st == 0)
            return qc_node_errf(n, err, QC_EINPUT, "step is 0 on axis %d", a);
        int64_t d = x->dims[a];
        if (s < 0)
            s += d;
        if (e < 0)
            e += d;
        if (st > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            len[a] = e > s ? (e - s - 1) / st + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            /* -st overflows for INT64_MIN; any step that large takes one element */
            len[a] = s > e ? (st == INT64_MIN ? 1 : (s - e - 1) / -st + 1) : 0;
        }
        start[a] = s;
        step[a] = st;
    }
    return QC_OK;
}

static int slice_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t start[QC_MAX_DIMS], step[QC_MAX_DIMS], len[QC_MAX_DIMS];
    int rc;
    if ((rc = qc_need_exec(n, x, err)) || (rc = slice_params(n, x, start, step, len, err)))
        return rc;
    qc_set_shape(n->out[0], x->dtype, x->ndim, len);
    return QC_OK;
}

static int slice_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t start[QC_MAX_DIMS], step[QC_MAX_DIMS], len[QC_MAX_DIMS], str[QC_MAX_DIMS], off = 0;
    size_t es = qc_dtype_size(x->dtype);
    int rc;
    (void)r;
    if ((rc = slice_params(n, x, start, step, len, err)))
        return rc;
    for (int a = 0; a < x->ndim; a++)
        if (len[a] == 0)
            return QC_OK;
    contig_strides(x->dims, x->ndim, str);
    for (int a = 0; a < x->ndim; a++) {
        off += start[a] * str[a];
        /* a step past the axis takes one element; step * stride could overflow */
        str[a] = len[a] > 1 ? str[a] * step[a] : 0;
    }
    qc_strided_copy(n->out[0]->data, (const char *)x->data + off * (int64_t)es, x->ndim, len,
                    str, es);
    return QC_OK;
}

/* ---- Gather, GatherElements, GatherND --------------------------------------------------- */

static int gather_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1];
    int64_t dims[QC_MAX_DIMS];
    int axis, rc, nd = 0;
    if ((rc = qc_need_exec(n, x, err)) || (rc = need_int(n, ind, "indices", err)) ||
        (rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    if (x->ndim - 1 + ind->ndim > QC_MAX_DIMS)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "output rank exceeds %d", QC_MAX_DIMS);
    for (int i = 0; i < axis; i++)
        dims[nd++] = x->dims[i];
    for (int i = 0; i < ind->ndim; i++)
        dims[nd++] = ind->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        dims[nd++] = x->dims[i];
    qc_set_shape(n->out[0], x->dtype, nd, dims);
    return QC_OK;
}

static int gather_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1];
    int axis, rc;
    size_t es = qc_dtype_size(x->dtype);
    (void)r;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    int64_t outer = 1, inner = 1, d = x->dims[axis], ni = qc_tensor_numel(ind);
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        inner *= x->dims[i];
    for (int64_t j = 0; j < ni; j++) {
        int64_t k = idx_at(ind, j);
        if (k < -d || k >= d)
            return qc_node_errf(n, err, QC_EINPUT, "index %lld out of range for axis length "
                                "%lld", (long long)k, (long long)d);
    }
    size_t row = (size_t)inner * es;
    char *out = n->out[0]->data;
    const char *in = x->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < ni; j++) {
            int64_t k = idx_at(ind, j);
            if (k < 0)
                k += d;
            const char *src = in + ((o * d + k) * inner) * (int64_t)es;
            memcpy(out, src, row);
            out += row;
        }
    }
    return QC_OK;
}

static int gather_el_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1];
    int axis, rc;
    if ((rc = qc_need_exec(n, x, err)) || (rc = need_int(n, ind, "indices", err)) ||
        (rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    if (ind->ndim != x->ndim)
        return qc_node_errf(n, err, QC_ESHAPE, "indices rank %d differs from data rank %d",
                            ind->ndim, x->ndim);
    qc_set_shape(n->out[0], x->dtype, ind->ndim, ind->dims);
    return QC_OK;
}

/* Walks the positions of `ind` (same rank as `x`) and calls back with the flat element of x
 * that each position addresses along `axis`. Shared by GatherElements and ScatterElements. */
typedef void (*elem_fn)(void *ctx, int64_t pos, int64_t src);

static int walk_elements(const qc_knode *n, const qc_tensor *x, const qc_tensor *ind, int axis,
                         elem_fn fn, void *ctx, qc_err *err)
{
    int64_t str[QC_MAX_DIMS], idx[QC_MAX_DIMS] = {0}, total = qc_tensor_numel(ind);
    int64_t d = x->dims[axis];
    contig_strides(x->dims, x->ndim, str);
    for (int a = 0; a < x->ndim; a++)
        if (a != axis && ind->dims[a] > x->dims[a])
            return qc_node_errf(n, err, QC_ESHAPE, "indices dim %d (%lld) exceeds data dim "
                                "(%lld)", a, (long long)ind->dims[a], (long long)x->dims[a]);
    for (int64_t p = 0; p < total; p++) {
        int64_t k = idx_at(ind, p), off = 0;
        if (k < -d || k >= d)
            return qc_node_errf(n, err, QC_EINPUT, "index %lld out of range for axis length "
                                "%lld", (long long)k, (long long)d);
        if (k < 0)
            k += d;
        for (int a = 0; a < x->ndim; a++)
            off += (a == axis ? k : idx[a]) * str[a];
        fn(ctx, p, off);
        next_index(idx, ind->dims, ind->ndim);
    }
    return QC_OK;
}

typedef struct copy_ctx {
    char       *dst;
    const char *src;
    size_t      es;
    int         reduce;   /* scatter reduction, R_* */
    int         dtype;
} copy_ctx;

static void gather_el_one(void *c, int64_t pos, int64_t src)
{
    copy_ctx *k = c;
    memcpy(k->dst + pos * (int64_t)k->es, k->src + src * (int64_t)k->es, k->es);
}

static int gather_el_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    copy_ctx c = { n->out[0]->data, x->data, qc_dtype_size(x->dtype), 0, x->dtype };
    int axis, rc;
    (void)r;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    return walk_elements(n, x, n->in[1], axis, gather_el_one, &c, err);
}

static int gather_nd_geom(const qc_knode *n, int64_t *nb, int64_t *nt, int64_t *k,
                          int64_t *slice, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1];
    int64_t b = qc_attr_int(n->node, "batch_dims", 0);
    if (ind->ndim < 1 || b < 0 || b >= ind->ndim || b >= x->ndim)
        return qc_node_errf(n, err, QC_EINPUT, "batch_dims %lld invalid for ranks %d, %d",
                            (long long)b, x->ndim, ind->ndim);
    *k = ind->dims[ind->ndim - 1];
    if (*k < 1 || b + *k > x->ndim)
        return qc_node_errf(n, err, QC_EINPUT, "index tuples of length %lld do not fit rank %d",
                            (long long)*k, x->ndim);
    *nb = 1;
    for (int i = 0; i < b; i++) {
        if (ind->dims[i] != x->dims[i])
            return qc_node_errf(n, err, QC_ESHAPE, "batch dim %d differs", i);
        *nb *= x->dims[i];
    }
    *nt = 1;
    for (int i = (int)b; i < ind->ndim - 1; i++)
        *nt *= ind->dims[i];
    *slice = 1;
    for (int i = (int)(b + *k); i < x->ndim; i++)
        *slice *= x->dims[i];
    return QC_OK;
}

static int gather_nd_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1];
    int64_t nb, nt, k, slice, dims[2 * QC_MAX_DIMS];
    int rc, nd = 0;
    if ((rc = qc_need_exec(n, x, err)) || (rc = need_int(n, ind, "indices", err)) ||
        (rc = gather_nd_geom(n, &nb, &nt, &k, &slice, err)))
        return rc;
    for (int i = 0; i < ind->ndim - 1; i++)
        dims[nd++] = ind->dims[i];
    for (int i = (int)(qc_attr_int(n->node, "batch_dims", 0) + k); i < x->ndim; i++)
        dims[nd++] = x->dims[i];
    if (nd > QC_MAX_DIMS)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "output rank exceeds %d", QC_MAX_DIMS);
    qc_set_shape(n->out[0], x->dtype, nd, dims);
    return QC_OK;
}

/* Flat offset (in elements of x) of the slice that tuple t of batch bi addresses. */
static int nd_offset(const qc_knode *n, const qc_tensor *x, int b, int64_t k, int64_t bi,
                     const int64_t *tuple_src, const qc_tensor *ind, int64_t *off, qc_err *err)
{
    int64_t str[QC_MAX_DIMS];
    contig_strides(x->dims, x->ndim, str);
    *off = bi * (b ? str[b - 1] : 0);
    for (int64_t j = 0; j < k; j++) {
        int64_t d = x->dims[b + j], v = idx_at(ind, *tuple_src + j);
        if (v < -d || v >= d)
            return qc_node_errf(n, err, QC_EINPUT, "index %lld out of range for dim %lld",
                                (long long)v, (long long)d);
        *off += (v < 0 ? v + d : v) * str[b + j];
    }
    return QC_OK;
}

static int gather_nd_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1];
    int64_t nb, nt, k, slice, off;
    int b = (int)qc_attr_int(n->node, "batch_dims", 0), rc;
    size_t es = qc_dtype_size(x->dtype);
    char *out = n->out[0]->data;
    (void)r;
    if ((rc = gather_nd_geom(n, &nb, &nt, &k, &slice, err)))
        return rc;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t t = 0; t < nt; t++) {
            int64_t src = (bi * nt + t) * k;
            if ((rc = nd_offset(n, x, b, k, bi, &src, ind, &off, err)))
                return rc;
            memcpy(out, (const char *)x->data + off * (int64_t)es, (size_t)slice * es);
            out += (size_t)slice * es;
        }
    return QC_OK;
}

/* ---- ScatterElements, Scatter, ScatterND ------------------------------------------------ */

enum { R_NONE, R_ADD, R_MUL, R_MAX, R_MIN };

static int scatter_reduction(const qc_knode *n, const qc_tensor *x, int *red, qc_err *err)
{
    const char *s = n->opset >= 16 ? qc_attr_str(n->node, "reduction", "none") : "none";
    if (!strcmp(s, "none"))
        *red = R_NONE;
    else if (!strcmp(s, "add"))
        *red = R_ADD;
    else if (!strcmp(s, "mul"))
        *red = R_MUL;
    else if (!strcmp(s, "max"))
        *red = R_MAX;
    else if (!strcmp(s, "min"))
        *red = R_MIN;
    else
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "unknown reduction '%s'", s);
    if (*red != R_NONE && x->dtype == QC_BOOL)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "reduction '%s' on bool", s);
    return QC_OK;
}

#define REDUCE_AS(T)                                                         \
    do {                                                                     \
        T *d_ = (T *)dst, s_ = *(const T *)src;                              \
        switch (red) {                                                       \
        case R_ADD: *d_ = (T)(*d_ + s_); break;                              \
        case R_MUL: *d_ = (T)(*d_ * s_); break;                              \
        case R_MAX: *d_ = *d_ > s_ ? *d_ : s_; break;                        \
        default: *d_ = *d_ < s_ ? *d_ : s_; break;                           \
        }                                                                    \
    } while (0)

static void reduce_into(char *dst, const char *src, int dtype, int red)
{
    switch (dtype) {
    case QC_F32: REDUCE_AS(float); break;
    case QC_U8: REDUCE_AS(uint8_t); break;
    case QC_I8: REDUCE_AS(int8_t); break;
    case QC_U16: REDUCE_AS(uint16_t); break;
    case QC_I16: REDUCE_AS(int16_t); break;
    case QC_I32: REDUCE_AS(int32_t); break;
    case QC_I64: REDUCE_AS(int64_t); break;
    default: break;
    }
}

static void scatter_one(void *c, int64_t pos, int64_t dst)
{
    copy_ctx *k = c;
    char *d = k->dst + dst * (int64_t)k->es;
    const char *s = k->src + pos * (int64_t)k->es;
    if (k->reduce == R_NONE)
        memcpy(d, s, k->es);
    else
        reduce_into(d, s, k->dtype, k->reduce);
}

static int scatter_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1], *upd = n->in[2];
    int axis, red, rc;
    if ((rc = qc_need_exec(n, x, err)) || (rc = need_int(n, ind, "indices", err)) ||
        (rc = scatter_reduction(n, x, &red, err)) ||
        (rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    if (!qc_shape_equal(ind, upd) || ind->ndim != x->ndim || upd->dtype != x->dtype)
        return qc_node_errf(n, err, QC_ESHAPE, "indices and updates must share a shape of the "
                            "data's rank, updates the data's dtype");
    qc_copy_shape(n->out[0], x);
    return QC_OK;
}

static int scatter_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    copy_ctx c = { n->out[0]->data, n->in[2]->data, qc_dtype_size(x->dtype), 0, x->dtype };
    int axis, rc;
    (void)r;
    if ((rc = scatter_reduction(n, x, &c.reduce, err)) ||
        (rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    if (qc_tensor_nbytes(x))
        memcpy(n->out[0]->data, x->data, qc_tensor_nbytes(x));
    return walk_elements(n, x, n->in[1], axis, scatter_one, &c, err);
}

static int scatter_nd_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1], *upd = n->in[2];
    int red, rc;
    if ((rc = qc_need_exec(n, x, err)) || (rc = need_int(n, ind, "indices", err)) ||
        (rc = scatter_reduction(n, x, &red, err)))
        return rc;
    int64_t k = ind->ndim ? ind->dims[ind->ndim - 1] : 0;
    int ok = ind->ndim >= 1 && k >= 1 && k <= x->ndim && upd->dtype == x->dtype &&
             upd->ndim == ind->ndim - 1 + x->ndim - (int)k;
    for (int i = 0; ok && i < upd->ndim; i++)
        ok = upd->dims[i] == (i < ind->ndim - 1 ? ind->dims[i] : x->dims[i - ind->ndim + 1 + k]);
    if (!ok)
        return qc_node_errf(n, err, QC_ESHAPE, "indices/updates shapes do not match the data");
    qc_copy_shape(n->out[0], x);
    return QC_OK;
}

static int scatter_nd_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *ind = n->in[1], *upd = n->in[2];
    int64_t k = ind->dims[ind->ndim - 1], nt = qc_tensor_numel(ind) / k, slice = 1, off;
    int red, rc;
    size_t es = qc_dtype_size(x->dtype);
    char *out = n->out[0]->data;
    (void)r;
    if ((rc = scatter_reduction(n, x, &red, err)))
        return rc;
    for (int i = (int)k; i < x->ndim; i++)
        slice *= x->dims[i];
    if (qc_tensor_nbytes(x))
        memcpy(out, x->data, qc_tensor_nbytes(x));
    for (int64_t t = 0; t < nt; t++) {
        int64_t src = t * k;
        if ((rc = nd_offset(n, x, 0, k, 0, &src, ind, &off, err)))
            return rc;
        const char *u = (const char *)upd->data + t * slice * (int64_t)es;
        if (red == R_NONE)
            memcpy(out + off * (int64_t)es, u, (size_t)slice * es);
        else
            for (int64_t j = 0; j < slice; j++)
                reduce_into(out + (off + j) * (int64_t)es, u + j * (int64_t)es, x->dtype, red);
    }
    return QC_OK;
}

/* ---- TopK ------------------------------------------------------------------------------ */

static int topk_params(const qc_knode *n, const qc_tensor *x, int *axis, int64_t *k,
                       qc_err *err)
{
    int rc;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", -1), x->ndim, axis, err)))
        return rc;
    if (n->opset < 10) {
        *k = qc_attr_int(n->node, "k", -1);
    } else {
        const qc_tensor *kt = qc_opt_in(n, 1);
        if (!kt || qc_tensor_numel(kt) != 1)
            return qc_node_errf(n, err, QC_EINPUT, "K must be a 1-element tensor");
        *k = qc_tensor_get_i(kt, 0);
    }
    if (*k < 0 || *k > x->dims[*axis])
        return qc_node_errf(n, err, QC_EINPUT, "k = %lld out of range for axis length %lld",
                            (long long)*k, (long long)x->dims[*axis]);
    return QC_OK;
}

static int topk_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t dims[QC_MAX_DIMS], k;
    int axis, rc, dt = x->dtype;
    if (dt == QC_BOOL || !qc_dtype_is_executable(dt))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                            qc_dtype_name(dt));
    if (n->n_out < 2)
        return qc_node_errf(n, err, QC_EINPUT, "needs two outputs");
    if ((rc = topk_params(n, x, &axis, &k, err)))
        return rc;
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    qc_set_shape(n->out[0], dt, x->ndim, dims);
    qc_set_shape(n->out[1], QC_I64, x->ndim, dims);
    return QC_OK;
}

/* A binary heap of k indices into one strided lane, kept in the indices output itself (so no
 * scratch is needed). The root is the worst kept element; "worse" means smaller (larger when
 * !largest) value, then larger index, as ONNX orders ties. */
#define TOPK_IMPL(NAME, T)                                                                  \
static int NAME##_worse(const T *v, int64_t s, int64_t a, int64_t b, int largest)           \
{                                                                                           \
    T x = v[a * s], y = v[b * s];                                                           \
    return largest ? (x < y || (x == y && a > b)) : (x > y || (x == y && a > b));           \
}                                                                                           \
static void NAME##_down(const T *v, int64_t s, int64_t *h, int64_t hs, int64_t n,           \
                        int64_t item, int largest)                                          \
{                                                                                           \
    int64_t c = 0;                                                                          \
    for (;;) {                                                                              \
        int64_t w = c, iw = item;                                                           \
        for (int64_t ch = 2 * c + 1; ch < 2 * c + 3 && ch < n; ch++)                        \
            if (NAME##_worse(v, s, h[ch * hs], iw, largest)) {                              \
                w = ch;                                                                     \
                iw = h[ch * hs];                                                            \
            }                                                                               \
        if (w == c)                                                                         \
            break;                                                                          \
        h[c * hs] = iw;                                                                     \
        c = w;                                                                              \
    }                                                                                       \
    h[c * hs] = item;                                                                       \
}                                                                                           \
static void NAME(const T *v, int64_t d, int64_t s, int64_t k, int largest, int64_t *h,      \
                 int64_t hs, T *vals)                                                       \
{                                                                                           \
    int64_t n = 0;                                                                          \
    for (int64_t i = 0; i < d; i++) {                                                       \
        if (n < k) {                                                                        \
            int64_t c = n++;                                                                \
            for (; c > 0 && NAME##_worse(v, s, i, h[(c - 1) / 2 * hs], largest);            \
                 c = (c - 1) / 2)                                                           \
                h[c * hs] = h[(c - 1) / 2 * hs];                                            \
            h[c * hs] = i;                                                                  \
        } else if (k > 0 && NAME##_worse(v, s, h[0], i, largest)) {                         \
            NAME##_down(v, s, h, hs, n, i, largest);                                        \
        }                                                                                   \
    }                                                                                       \
    for (int64_t end = n - 1; end > 0; end--) {   /* heap sort: best ends up first */       \
        int64_t worst = h[0];                                                               \
        NAME##_down(v, s, h, hs, end, h[end * hs], largest);                                \
        h[end * hs] = worst;                                                                \
    }                                                                                       \
    for (int64_t j = 0; j < n; j++)                                                         \
        vals[j * hs] = v[h[j * hs] * s];                                                    \
}

TOPK_IMPL(topk_f32, float)
TOPK_IMPL(topk_u8, uint8_t)
TOPK_IMPL(topk_i8, int8_t)
TOPK_IMPL(topk_u16, uint16_t)
TOPK_IMPL(topk_i16, int16_t)
TOPK_IMPL(topk_i32, int32_t)
TOPK_IMPL(topk_i64, int64_t)

static int topk_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t k, outer = 1, inner = 1;
    int axis, rc, largest = qc_attr_int(n->node, "largest", 1) != 0;
    (void)r;
    if ((rc = topk_params(n, x, &axis, &k, err)))
        return rc;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        inner *= x->dims[i];
    int64_t d = x->dims[axis];
    int64_t *idx = n->out[1]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t src = o * d * inner + in, dst = o * k * inner + in;
            int64_t *h = idx + dst;
#define TOPK_CALL(F, T) F((const T *)x->data + src, d, inner, k, largest, h, inner, \
                          (T *)n->out[0]->data + dst)
            switch (x->dtype) {
            case QC_F32: TOPK_CALL(topk_f32, float); break;
            case QC_U8: TOPK_CALL(topk_u8, uint8_t); break;
            case QC_I8: TOPK_CALL(topk_i8, int8_t); break;
            case QC_U16: TOPK_CALL(topk_u16, uint16_t); break;
            case QC_I16: TOPK_CALL(topk_i16, int16_t); break;
            case QC_I32: TOPK_CALL(topk_i32, int32_t); break;
            default: TOPK_CALL(topk_i64, int64_t); break;
            }
#undef TOPK_CALL
        }
    return QC_OK;
}

/* ---- NonZero, OneHot, CumSum ------------------------------------------------------------ */

static int is_nonzero(const qc_tensor *x, int64_t i, size_t es)
{
    if (x->dtype == QC_F32)
        return ((const float *)x->data)[i] != 0.0f;
    const unsigned char *p = (const unsigned char *)x->data + i * (int64_t)es;
    for (size_t b = 0; b < es; b++)
        if (p[b])
            return 1;
    return 0;
}

static int nonzero_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t cnt = 0, total = qc_tensor_numel(x), dims[2];
    size_t es = qc_dtype_size(x->dtype);
    int rc;
    if ((rc = qc_need_exec(n, x, err)))
        return rc;
    for (int64_t i = 0; i < total; i++)
        cnt += is_nonzero(x, i, es);
    dims[0] = x->ndim;
    dims[1] = cnt;
    qc_set_shape(n->out[0], QC_I64, 2, dims);
    return QC_OK;
}

static int nonzero_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t total = qc_tensor_numel(x), cnt = n->out[0]->dims[1], j = 0;
    int64_t idx[QC_MAX_DIMS] = {0}, *y = n->out[0]->data;
    size_t es = qc_dtype_size(x->dtype);
    (void)r;
    (void)err;
    for (int64_t i = 0; i < total; i++) {
        if (is_nonzero(x, i, es) && j < cnt) {
            for (int a = 0; a < x->ndim; a++)
                y[a * cnt + j] = idx[a];
            j++;
        }
        next_index(idx, x->dims, x->ndim);
    }
    return QC_OK;
}

static int onehot_geom(const qc_knode *n, int *axis, int64_t *depth, qc_err *err)
{
    const qc_tensor *ind = n->in[0], *dt = n->in[1], *vals = n->in[2];
    int64_t a = qc_attr_int(n->node, "axis", -1);
    int rank = ind->ndim + 1;
    if (a < -rank || a >= rank)
        return qc_node_errf(n, err, QC_EINPUT, "axis %lld out of range for rank %d",
                            (long long)a, rank);
    *axis = (int)(a < 0 ? a + rank : a);
    if (qc_tensor_numel(dt) != 1 || qc_tensor_numel(vals) != 2)
        return qc_node_errf(n, err, QC_EINPUT, "depth must have 1 element and values 2");
    *depth = qc_tensor_get_i(dt, 0);
    if (*depth < 1)
        return qc_node_errf(n, err, QC_EINPUT, "depth %lld < 1", (long long)*depth);
    return QC_OK;
}

static int onehot_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *ind = n->in[0];
    int64_t depth, dims[QC_MAX_DIMS];
    int axis, rc;
    if ((rc = qc_need_exec(n, n->in[2], err)) || (rc = onehot_geom(n, &axis, &depth, err)))
        return rc;
    if (ind->ndim + 1 > QC_MAX_DIMS)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "output rank exceeds %d", QC_MAX_DIMS);
    for (int i = 0, j = 0; i <= ind->ndim; i++)
        dims[i] = i == axis ? depth : ind->dims[j++];
    qc_set_shape(n->out[0], n->in[2]->dtype, ind->ndim + 1, dims);
    return QC_OK;
}

static int onehot_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *ind = n->in[0], *vals = n->in[2];
    int64_t depth, outer = 1, inner = 1;
    int axis, rc;
    size_t es = qc_dtype_size(vals->dtype);
    char *y = n->out[0]->data;
    const char *off = vals->data, *on = off + es;
    (void)r;
    if ((rc = onehot_geom(n, &axis, &depth, err)))
        return rc;
    for (int i = 0; i < axis; i++)
        outer *= ind->dims[i];
    for (int i = axis; i < ind->ndim; i++)
        inner *= ind->dims[i];
    for (int64_t i = 0, len = outer * depth * inner; i < len; i++)
        memcpy(y + i * (int64_t)es, off, es);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t v = qc_tensor_get_i(ind, o * inner + i);
            if (v < 0)
                v += depth;
            if (v >= 0 && v < depth)
                memcpy(y + ((o * depth + v) * inner + i) * (int64_t)es, on, es);
        }
    return QC_OK;
}

static int cumsum_axis(const qc_knode *n, const qc_tensor *x, int *axis, qc_err *err)
{
    const qc_tensor *a = n->in[1];
    if (!a || qc_tensor_numel(a) != 1)
        return qc_node_errf(n, err, QC_EINPUT, "axis must be a 1-element tensor");
    return qc_norm_axis(n, qc_tensor_get_i(a, 0), x->ndim, axis, err);
}

static int cumsum_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int axis;
    if (x->dtype != QC_F32 && x->dtype != QC_I32 && x->dtype != QC_I64)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    int rc = cumsum_axis(n, x, &axis, err);
    if (rc)
        return rc;
    qc_copy_shape(n->out[0], x);
    return QC_OK;
}

#define CUMSUM_AS(T)                                                                 \
    do {                                                                             \
        const T *x_ = x->data;                                                       \
        T *y_ = n->out[0]->data;                                                     \
        for (int64_t o = 0; o < outer; o++)                                          \
            for (int64_t i = 0; i < inner; i++) {                                    \
                T acc = 0;                                                           \
                for (int64_t j = 0; j < d; j++) {                                    \
                    int64_t p = (o * d + (rev ? d - 1 - j : j)) * inner + i;         \
                    if (excl) {                                                      \
                        y_[p] = acc;                                                 \
                        acc = (T)(acc + x_[p]);                                      \
                    } else {                                                         \
                        acc = (T)(acc + x_[p]);                                      \
                        y_[p] = acc;                                                 \
                    }                                                                \
                }                                                                    \
            }                                                                        \
    } while (0)

static int cumsum_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int axis, rc, excl = qc_attr_int(n->node, "exclusive", 0) != 0;
    int rev = qc_attr_int(n->node, "reverse", 0) != 0;
    (void)r;
    if ((rc = cumsum_axis(n, x, &axis, err)))
        return rc;
    int64_t outer = 1, inner = 1, d = x->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        inner *= x->dims[i];
    switch (x->dtype) {
    case QC_F32: CUMSUM_AS(float); break;
    case QC_I32: CUMSUM_AS(int32_t); break;
    default: CUMSUM_AS(int64_t); break;
    }
    return QC_OK;
}

const qc_op_def qc_ops_index[] = {
    { "Slice", 1, slice_infer, slice_run, NULL, NULL, NULL },
    { "Gather", 1, gather_infer, gather_run, NULL, NULL, NULL },
    { "GatherElements", 11, gather_el_infer, gather_el_run, NULL, NULL, NULL },
    { "GatherND", 11, gather_nd_infer, gather_nd_run, NULL, NULL, NULL },
    { "Scatter", 9, scatter_infer, scatter_run, NULL, NULL, NULL },
    { "ScatterElements", 11, scatter_infer, scatter_run, NULL, NULL, NULL },
    { "ScatterND", 11, scatter_nd_infer, scatter_nd_run, NULL, NULL, NULL },
    { "TopK", 1, topk_infer, topk_run, NULL, NULL, NULL },
    { "NonZero", 9, nonzero_infer, nonzero_run, NULL, NULL, NULL },
    { "OneHot", 9, onehot_infer, onehot_run, NULL, NULL, NULL },
    { "CumSum", 11, cumsum_infer, cumsum_run, NULL, NULL, NULL },
    { 0 }
};
