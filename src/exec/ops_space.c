/* DepthToSpace, SpaceToDepth (a reshape, a transpose and a reshape: one strided copy of a
 * 6-D view) and Trilu (the upper or lower triangle of the last two dims, any dtype). */
#include <stdint.h>
#include <string.h>
#include "ops.h"

/* The 6-D view: output dims v and the input's element strides sstr along them. */
typedef struct space_view {
    int64_t v[6], sstr[6], out[4];
} space_view;

static int space_geom(const qc_knode *n, int to_space, space_view *s, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int rc;
    if ((rc = qc_need_exec(n, x, err)) != QC_OK)
        return rc;
    if (x->ndim != 4)
        return qc_node_errf(n, err, QC_ESHAPE, "input must be 4-D NCHW, got rank %d", x->ndim);
    int64_t b = qc_attr_int(n->node, "blocksize", 0), N = x->dims[0], C = x->dims[1];
    int64_t H = x->dims[2], W = x->dims[3];
    if (b < 1)
        return qc_node_errf(n, err, QC_EINPUT, "blocksize must be at least 1");
    if (to_space) {
        const char *mode = n->opset >= 11 ? qc_attr_str(n->node, "mode", "DCR") : "DCR";
        int crd = !strcmp(mode, "CRD");
        if (!crd && strcmp(mode, "DCR") != 0)
            return qc_node_errf(n, err, QC_EINPUT, "mode '%s' is not DCR or CRD", mode);
        if (b > C || C % (b * b))
            return qc_node_errf(n, err, QC_ESHAPE, "%lld channels do not divide by blocksize "
                                "%lld squared", (long long)C, (long long)b);
        int64_t c = C / (b * b), hw = H * W;
        /* DCR: x as [N, b1, b2, c, H, W] read as [N, c, H, b1, W, b2]; CRD: x as
         * [N, c, b1, b2, H, W] read the same way */
        int64_t v[6] = { N, c, H, b, W, b };
        int64_t dcr[6] = { C * hw, hw, W, b * c * hw, 1, c * hw };
        int64_t crdv[6] = { C * hw, b * b * hw, W, b * hw, 1, hw };
        memcpy(s->v, v, sizeof v);
        memcpy(s->sstr, crd ? crdv : dcr, sizeof dcr);
        int64_t o[4] = { N, c, H * b, W * b };
        memcpy(s->out, o, sizeof o);
    } else {
        if (H % b || W % b)
            return qc_node_errf(n, err, QC_ESHAPE, "height %lld and width %lld must divide by "
                                "blocksize %lld", (long long)H, (long long)W, (long long)b);
        int64_t h = H / b, w = W / b;
        /* x as [N, C, h, b1, w, b2] read as [N, b1, b2, C, h, w] */
        int64_t v[6] = { N, b, b, C, h, w };
        int64_t st[6] = { C * H * W, W, 1, H * W, b * W, b };
        memcpy(s->v, v, sizeof v);
        memcpy(s->sstr, st, sizeof st);
        int64_t o[4] = { N, C * b * b, h, w };
        memcpy(s->out, o, sizeof o);
    }
    return QC_OK;
}

static int space_infer_common(qc_knode *n, int to_space, qc_err *err)
{
    space_view s;
    int rc = space_geom(n, to_space, &s, err);
    if (rc == QC_OK)
        qc_set_shape(n->out[0], n->in[0]->dtype, 4, s.out);
    return rc;
}

static int space_run_common(qc_knode *n, int to_space, qc_err *err)
{
    space_view s;
    int rc = space_geom(n, to_space, &s, err);
    if (rc == QC_OK)
        qc_strided_copy(n->out[0]->data, n->in[0]->data, 6, s.v, s.sstr,
                        qc_dtype_size(n->in[0]->dtype));
    return rc;
}

static int d2s_infer(qc_knode *n, qc_err *err) { return space_infer_common(n, 1, err); }
static int s2d_infer(qc_knode *n, qc_err *err) { return space_infer_common(n, 0, err); }

static int d2s_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return space_run_common(n, 1, err);
}

static int s2d_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return space_run_common(n, 0, err);
}

/* ---- Trilu: keeps j - i >= k (upper) or j - i <= k (lower) of each matrix, zeros the rest */

static int trilu_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *k = qc_opt_in(n, 1);
    int rc;
    if ((rc = qc_need_exec(n, x, err)) != QC_OK)
        return rc;
    if (x->ndim < 2)
        return qc_node_errf(n, err, QC_ESHAPE, "input must have rank 2 or more, got %d",
                            x->ndim);
    if (k && (k->dtype != QC_I64 || qc_tensor_numel(k) != 1))
        return qc_node_errf(n, err, QC_EINPUT, "k must be one int64");
    qc_copy_shape(n->out[0], x);
    return QC_OK;
}

static int trilu_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *kt = qc_opt_in(n, 1);
    (void)r;
    (void)err;
    int upper = qc_attr_int(n->node, "upper", 1) != 0;
    int64_t k = kt ? ((const int64_t *)kt->data)[0] : 0;
    int64_t R = x->dims[x->ndim - 2], C = x->dims[x->ndim - 1];
    k = k < -R - 1 ? -R - 1 : k > C + 1 ? C + 1 : k;     /* beyond that nothing changes */
    int64_t mats = R > 0 && C > 0 ? qc_tensor_numel(x) / (R * C) : 0;
    size_t es = qc_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = n->out[0]->data;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++) {
            size_t row = (size_t)((m * R + i) * C) * es;
            /* kept columns: [max(0, i + k), C) upper, [0, min(C, i + k + 1)) lower */
            int64_t lo = upper ? i + k : 0, hi = upper ? C : i + k + 1;
            lo = lo < 0 ? 0 : lo > C ? C : lo;
            hi = hi < lo ? lo : hi > C ? C : hi;
            memset(dst + row, 0, (size_t)C * es);
            memcpy(dst + row + (size_t)lo * es, src + row + (size_t)lo * es,
                   (size_t)(hi - lo) * es);
        }
    return QC_OK;
}

const qc_op_def qc_ops_space[] = {
    { "DepthToSpace", 1, d2s_infer, d2s_run, NULL, NULL, NULL },
    { "SpaceToDepth", 1, s2d_infer, s2d_run, NULL, NULL, NULL },
    { "Trilu", 14, trilu_infer, trilu_run, NULL, NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL, NULL },
};
