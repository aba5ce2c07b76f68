/* Plan-time matching of the QDQ node groups onnxruntime's QDQ selectors fuse into integer
 * operators (onnxruntime/core/optimizer/qdq_transformer/selectors_actions):
 *   DQ(x), DQ(w) [, DQ(bias int32)] -> Conv -> Q      QLinearConv
 *   DQ(a), DQ(2-D b initializer) -> MatMul -> Q     QLinearMatMul
 *   DQ(x) -> Sigmoid | Softmax -> Q                    QLinearSigmoid | QLinearSoftmax
 *   DQ(a), DQ(b) -> Add | Mul -> Q                     QLinearAdd | QLinearMul
 * Conditions mirror the selectors': scales and zero points are initializers, activation
 * scales per tensor, the op's output is read by that one QuantizeLinear only (and is not a
 * graph output), input and output codes share a dtype. The op's knode is rewritten to read
 * the codes and write the Q's output; the Q is skipped, and so is every DQ nobody else reads.
 * Groups whose float path already gives onnxruntime's codes (Concat, MaxPool, Resize nearest,
 * Reshape, Transpose, Split, Slice...) stay as they are. */
#include <stdlib.h>
#include <string.h>
#include "qfuse.h"

static qc_value *val_of(const qc_tensor *t)
{
    return (qc_value *)t;            /* t is the first member of qc_value */
}

static qc_tensor *opt_in(const qc_knode *n, int i)
{
    return i < n->n_in ? n->in[i] : NULL;
}

/* qfuse.h */
int qc_fuse_is_op(const qc_knode *kn, const char *op)
{
    return !kn->node->domain[0] && !strcmp(kn->node->op_type, op);
}

static int is_init(const qc_tensor *t)
{
    return t && val_of(t)->kind == VAL_INIT;
}

static int is_code(int dt)
{
    return dt == QC_U8 || dt == QC_I8;
}

/* Non-skipped readers of t: their count, and one of them. They lie after t's producer and
 * by its last use: the passes that ask (qdq_fuse, qfuse, the tables) only take readers away
 * from the values they ask about (see qc_fuse_last_reader). */
static int readers(const qc_exec *x, const qc_tensor *t, int *one)
{
    int c = 0, k0 = val_of(t)->producer + 1, k1 = qc_fuse_last_reader(x, t);
    for (int k = k0 > 0 ? k0 : 0; k <= k1; k++) {
        if (x->skip[k])
            continue;
        for (int i = 0; i < x->knodes[k].n_in; i++)
            if (x->knodes[k].in[i] == t) {
                c++;
                *one = k;
                break;
            }
    }
    return c;
}

/* The DequantizeLinear knode producing t with constant parameters, or NULL. per_tensor:
 * the scale must be a single value. want_init: its input must be an initializer. */
static qc_knode *dq_of(const qc_exec *x, const qc_tensor *t, int per_tensor, int want_init)
{
    if (!t)
        return NULL;
    int p = val_of(t)->producer;
    if (p < 0 || x->skip[p] || !qc_fuse_is_op(&x->knodes[p], "DequantizeLinear"))
        return NULL;
    qc_knode *dq = &x->knodes[p];
    const qc_tensor *q = dq->in[0], *s = qc_opt_in(dq, 1), *z = qc_opt_in(dq, 2);
    if (!s || !is_init(s) || s->dtype != QC_F32 || (z && !is_init(z)))
        return NULL;
    if (per_tensor && qc_tensor_numel(s) != 1)
        return NULL;
    if (want_init != is_init(q))
        return NULL;
    if (dq->opset >= 21 && qc_attr_int(dq->node, "block_size", 0) != 0)
        return NULL;
    return dq;
}

/* The single QuantizeLinear reading op k's output (per-tensor, constant), or NULL. */
static qc_knode *sole_q(const qc_exec *x, int k, int *qk)
{
    const qc_knode *kn = &x->knodes[k];
    if (kn->n_out != 1 || val_of(kn->out[0])->no_fuse || readers(x, kn->out[0], qk) != 1)
        return NULL;
    qc_knode *q = &x->knodes[*qk];
    if (!qc_fuse_is_op(q, "QuantizeLinear") || q->in[0] != kn->out[0])
        return NULL;
    const qc_tensor *s = qc_opt_in(q, 1), *z = qc_opt_in(q, 2);
    if (!s || !is_init(s) || s->dtype != QC_F32 || qc_tensor_numel(s) != 1 || !z ||
        !is_init(z) || !is_code(z->dtype) || qc_tensor_numel(z) != 1)
        return NULL;
    return q;
}

static int code_dtype(const qc_knode *dq)
{
    const qc_tensor *z = qc_opt_in(dq, 2);
    if (z)
        return z->dtype;
    return is_init(dq->in[0]) ? dq->in[0]->dtype : 0;    /* activations: known at run time */
}

/* Replaces knode k's inputs, output and kernel. */
static int rewrite(qc_exec *x, int k, const qc_op_def *def, qc_tensor **in, int n_in,
                   qc_knode *q, int qk, qc_err *err)
{
    qc_knode *kn = &x->knodes[k];
    qc_tensor **copy = calloc((size_t)n_in + 1, sizeof *copy);
    if (!copy)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    memcpy(copy, in, (size_t)n_in * sizeof *copy);
    if (x->defs[k]->release)
        x->defs[k]->release(kn);
    kn->state = NULL;
    free(kn->in);
    kn->in = copy;
    kn->n_in = n_in;
    kn->const_in = 0;
    for (int i = 0; i < n_in && i < 32; i++)
        if (is_init(in[i]))
            kn->const_in |= 1u << i;
    kn->out[0] = q->out[0];
    val_of(q->out[0])->producer = k;
    x->defs[k] = def;
    x->skip[qk] = 1;
    return QC_OK;
}

static int fuse_conv(qc_exec *x, int k, qc_err *err)
{
    qc_knode *kn = &x->knodes[k];
    int qk;
    if (kn->n_in < 2 || kn->n_in > 3)
        return QC_OK;
    qc_knode *dx = dq_of(x, kn->in[0], 1, 0), *dw = dq_of(x, kn->in[1], 0, 1);
    qc_knode *db = kn->n_in > 2 && kn->in[2] ? dq_of(x, kn->in[2], 0, 1) : NULL;
    if (!dx || !dw || (kn->n_in > 2 && kn->in[2] && !db))
        return QC_OK;
    qc_knode *q = sole_q(x, k, &qk);
    if (!q)
        return QC_OK;
    const qc_tensor *w = dw->in[0], *sw = dw->in[1];
    int xt = code_dtype(dx), yt = q->in[2]->dtype;
    if (!is_code(xt) || xt != yt || w->dtype != QC_I8 || w->ndim < 3 || w->ndim > 4 ||
        (xt == QC_I8 && w->dtype != QC_I8) || (db && db->in[0]->dtype != QC_I32))
        return QC_OK;
    if (qc_tensor_numel(sw) != 1 &&
        (qc_tensor_numel(sw) != w->dims[0] || qc_attr_int(dw->node, "axis", 1) != 0))
        return QC_OK;
    qc_tensor *in[9] = { dx->in[0], dx->in[1], opt_in(dx, 2), dw->in[0], dw->in[1],
                         opt_in(dw, 2), q->in[1], q->in[2], db ? db->in[0] : NULL };
    return rewrite(x, k, &qc_qlinear_conv, in, 9, q, qk, err);
}

static int fuse_matmul(qc_exec *x, int k, qc_err *err)
{
    qc_knode *kn = &x->knodes[k];
    int qk;
    if (kn->n_in != 2)
        return QC_OK;
    qc_knode *da = dq_of(x, kn->in[0], 1, 0), *db = dq_of(x, kn->in[1], 0, 1);
    if (!db)
        db = dq_of(x, kn->in[1], 1, 0);
    qc_knode *q = da && db ? sole_q(x, k, &qk) : NULL;
    if (!q)
        return QC_OK;
    const qc_tensor *b = db->in[0], *sb = db->in[1];
    int at = code_dtype(da), yt = q->in[2]->dtype;
    /* B's shape must be known at plan time: an initializer */
    if (!is_init(b) || b->ndim != 2 || !is_code(at) || at != yt || !is_code(b->dtype) ||
        (at == QC_I8 && b->dtype != QC_I8))
        return QC_OK;
    if (qc_tensor_numel(sb) != 1 &&
        (qc_tensor_numel(sb) != b->dims[1] || qc_attr_int(db->node, "axis", 1) != 1))
        return QC_OK;
    qc_tensor *in[8] = { da->in[0], da->in[1], opt_in(da, 2), db->in[0], db->in[1],
                         opt_in(db, 2), q->in[1], q->in[2] };
    return rewrite(x, k, &qc_qlinear_matmul, in, 8, q, qk, err);
}

static int fuse_unary(qc_exec *x, int k, const qc_op_def *def, qc_err *err)
{
    qc_knode *kn = &x->knodes[k];
    int qk;
    qc_knode *dx = kn->n_in == 1 ? dq_of(x, kn->in[0], 1, 0) : NULL;
    qc_knode *q = dx ? sole_q(x, k, &qk) : NULL;
    if (!q || !is_code(code_dtype(dx)) || code_dtype(dx) != q->in[2]->dtype)
        return QC_OK;
    qc_tensor *in[5] = { dx->in[0], dx->in[1], opt_in(dx, 2), q->in[1], q->in[2] };
    return rewrite(x, k, def, in, 5, q, qk, err);
}

static int fuse_binary(qc_exec *x, int k, const qc_op_def *def, qc_err *err)
{
    qc_knode *kn = &x->knodes[k];
    int qk;
    if (kn->n_in != 2)
        return QC_OK;
    qc_knode *da = dq_of(x, kn->in[0], 1, 0), *db = dq_of(x, kn->in[1], 1, 0);
    if (!da)
        da = dq_of(x, kn->in[0], 1, 1);
    if (!db)
        db = dq_of(x, kn->in[1], 1, 1);
    qc_knode *q = da && db ? sole_q(x, k, &qk) : NULL;
    if (!q)
        return QC_OK;
    int t = q->in[2]->dtype;
    if (code_dtype(da) != t || code_dtype(db) != t)
        return QC_OK;
    qc_tensor *in[8] = { da->in[0], da->in[1], opt_in(da, 2), db->in[0], db->in[1],
                         opt_in(db, 2), q->in[1], q->in[2] };
    return rewrite(x, k, def, in, 8, q, qk, err);
}

/* liveness: the last running reader of each value */
void qc_fuse_relive(qc_exec *x)
{
    for (int v = 0; v < x->n_values; v++)
        x->values[v].last_use = -1;
    for (int k = 0; k < x->n_knodes; k++) {
        if (x->skip[k])
            continue;
        for (int i = 0; i < x->knodes[k].n_in; i++)
            if (x->knodes[k].in[i])
                val_of(x->knodes[k].in[i])->last_use = k;
    }
}

int qc_qfuse(qc_exec *x, qc_err *err)
{
    int rc = QC_OK;
    for (int k = 0; k < x->n_knodes && rc == QC_OK; k++) {
        qc_knode *kn = &x->knodes[k];
        if (x->skip[k] || kn->act)
            continue;
        if (qc_fuse_is_op(kn, "Conv"))
            rc = fuse_conv(x, k, err);
        else if (qc_fuse_is_op(kn, "MatMul"))
            rc = fuse_matmul(x, k, err);
        else if (qc_fuse_is_op(kn, "Sigmoid"))
            rc = fuse_unary(x, k, &qc_qlinear_sigmoid, err);
        else if (qc_fuse_is_op(kn, "Softmax"))
            rc = fuse_unary(x, k, &qc_qlinear_softmax, err);
        else if (qc_fuse_is_op(kn, "Add"))
            rc = fuse_binary(x, k, &qc_qlinear_add, err);
        else if (qc_fuse_is_op(kn, "Mul"))
            rc = fuse_binary(x, k, &qc_qlinear_mul, err);
    }
    if (rc != QC_OK)
        return rc;
    /* DequantizeLinear nodes whose every reader now reads the codes */
    for (int k = 0; k < x->n_knodes; k++) {
        int one;
        const qc_knode *kn = &x->knodes[k];
        if (!x->skip[k] && qc_fuse_is_op(kn, "DequantizeLinear") && !val_of(kn->out[0])->no_fuse &&
            readers(x, kn->out[0], &one) == 0)
            x->skip[k] = 1;
    }
    qc_fuse_relive(x);
    return QC_OK;
}

/* Whether two optional initializers hold one and the same single value. */
static int same_scalar(const qc_tensor *a, const qc_tensor *b)
{
    if (!a || !b)
        return !a && !b;
    return is_init(a) && is_init(b) && a->dtype == b->dtype && qc_tensor_numel(a) == 1 &&
           qc_tensor_numel(b) == 1 && !memcmp(a->data, b->data, qc_dtype_size(a->dtype));
}

int qc_qdq_fuse(qc_exec *x, qc_err *err)
{
    (void)err;
    for (int k = 0; k < x->n_knodes; k++) {
        qc_knode *dq = &x->knodes[k];
        if (x->skip[k] || !qc_fuse_is_op(dq, "DequantizeLinear") || dq->n_in < 2)
            continue;
        int p = val_of(dq->in[0])->producer, one;
        if (p < 0 || x->skip[p] || !qc_fuse_is_op(&x->knodes[p], "QuantizeLinear"))
            continue;
        qc_knode *q = &x->knodes[p];
        qc_tensor *s = q->in[1], *z = opt_in(q, 2);
        if (q->n_in < 2 || val_of(q->out[0])->no_fuse || readers(x, q->out[0], &one) != 1 ||
            !is_init(s) || s->dtype != QC_F32 || qc_tensor_numel(s) != 1 ||
            !same_scalar(s, dq->in[1]) || !same_scalar(z, qc_opt_in(dq, 2)) ||
            (z && !is_code(z->dtype)))
            continue;
        if ((q->opset >= 21 && (qc_attr_int(q->node, "block_size", 0) ||
                                qc_attr_int(q->node, "output_dtype", 0))) ||
            (dq->opset >= 21 && qc_attr_int(dq->node, "block_size", 0)))
            continue;
        /* the DQ's knode reads the Q's inputs and computes both; the Q no longer runs */
        dq->in[0] = q->in[0];
        dq->in[1] = q->in[1];
        if (dq->n_in > 2)
            dq->in[2] = z;
        dq->const_in = 0;
        for (int i = 0; i < dq->n_in && i < 32; i++)
            if (is_init(dq->in[i]))
                dq->const_in |= 1u << i;
        x->defs[k] = &qc_fake_quant;
        x->skip[p] = 1;
        qc_value *out = val_of(dq->out[0]);
        out->grid = z ? z->dtype : QC_U8;
        out->grid_s = ((const float *)s->data)[0];
        out->grid_zp = z ? (z->dtype == QC_I8 ? ((const int8_t *)z->data)[0]
                                              : ((const uint8_t *)z->data)[0]) : 0;
    }
    qc_fuse_relive(x);
    return QC_OK;
}

/* Whether DequantizeLinear dq reads int8 weights w (rank >= 3) with zero points 0 (or none)
 * and one float scale s, or one per output channel (axis 0). */
static int int8_weights(const qc_knode *dq, const qc_tensor *w, const qc_tensor *s,
                        const qc_tensor *z)
{
    int64_t ns = qc_tensor_numel(s);
    if (w->dtype != QC_I8 || w->ndim < 3 || s->dtype != QC_F32 ||
        (ns != 1 && (ns != w->dims[0] || qc_attr_int(dq->node, "axis", 1) % w->ndim != 0)))
        return 0;
    for (int64_t i = 0; z && i < qc_tensor_numel(z); i++)
        if (z->dtype != QC_I8 || ((const int8_t *)z->data)[i] != 0)
            return 0;
    return 1;
}

int qc_iconv_mark(qc_exec *x)
{
    for (int k = 0; k < x->n_knodes; k++) {
        qc_knode *kn = &x->knodes[k];
        if (x->skip[k] || !qc_fuse_is_op(kn, "Conv") || kn->n_in < 2 || !kn->in[0] || !kn->in[1] ||
            qc_attr_int(kn->node, "group", 1) != 1)
            continue;
        const qc_value *xv = val_of(kn->in[0]);
        const qc_knode *dq = dq_of(x, kn->in[1], 0, 1);
        /* dq_of wants an initializer behind the DQ, so an FQ (activation behind) never is */
        if (!xv->grid || !dq || !int8_weights(dq, dq->in[0], dq->in[1], qc_opt_in(dq, 2)))
            continue;
        kn->wq = dq->in[0]->data;
        kn->wqs = dq->in[1]->data;
        kn->n_wqs = qc_tensor_numel(dq->in[1]);
        kn->xs = xv->grid_s;
        kn->xzp = xv->grid_zp + (xv->grid == QC_I8 ? 128 : 0);
    }
    return QC_OK;
}

/* ---- Code tables: a fake-quantized value and what only depends on it --------------------
 * After an 8-bit per-tensor FQ(a), every value computed from a and scalar constants by
 * elementwise nodes alone is a function of a's 256 codes. When exactly one of those values is
 * read outside that subgraph (e.g. SiLU: Sigmoid -> FQ -> Mul(a, .) -> FQ), one step computes
 * the code and looks that value up in a table, which the planner fills by running the
 * subgraph's own kernels on the 256 dequantized values: the same bits. The step is the Conv
 * whose only reader is the FQ (its kernel's epilogue), else the FQ's own knode. The kernels
 * run on 256 values here and on whole tensors later: elementwise kernels give each value the
 * same arithmetic whatever the length (vector bodies and tails alike; test_qdq_fuse.c). */

/* Elementwise ops a table may take: one value input (Clip's bounds are scalar constants),
 * or two. */
static const char *const lut_unary[] = {
    "Sigmoid", "Tanh", "Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Exp", "Neg", "Abs",
    "Sqrt", "Erf", "Softplus", "Elu", "Clip",
};
static const char *const lut_binary[] = { "Add", "Sub", "Mul", "Div", "Pow", "Min", "Max" };

static int op_in(const qc_knode *o, const char *const *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (qc_fuse_is_op(o, ops[i]))
            return 1;
    return 0;
}

static int scalar_const(const qc_tensor *t)
{
    return is_init(t) && t->dtype == QC_F32 && qc_tensor_numel(t) == 1;
}

/* qfuse.h */
int qc_fuse_ew_eligible(const qc_exec *x, int j, const qc_tensor *const *v, int n_v)
{
    const qc_knode *o = &x->knodes[j];
    int fq = x->defs[j] == &qc_fake_quant, reads = 0, any = 0;
    /* callers ask of every later knode: the pointer test first, the op names after */
    for (int i = 0; i < o->n_in && !any; i++)
        for (int k = 0; o->in[i] && k < n_v && !any; k++)
            any = o->in[i] == v[k];
    if (!any)
        return 0;
    int ok = fq || (op_in(o, lut_unary, sizeof lut_unary / sizeof *lut_unary) &&
                    o->n_in <= 3) ||
             (op_in(o, lut_binary, sizeof lut_binary / sizeof *lut_binary) && o->n_in == 2);
    if (!ok || o->n_out != 1 || o->n_in < 1)
        return 0;
    for (int i = 0; i < o->n_in; i++) {
        int in_v = 0;
        for (int k = 0; o->in[i] && k < n_v && !in_v; k++)
            in_v = o->in[i] == v[k];
        if (fq && i > 0)
            continue;                           /* its scale and zero point */
        if (!in_v && o->in[i] && !scalar_const(o->in[i]))
            return 0;
        reads += in_v;
    }
    return reads > 0;
}

/* Runs knodes s[0..n) on 256-value copies: v[0] (values: a's dequantized codes), v[1 + i] =
 * s[i]'s output. lut: the values of e; *done 0 when the subgraph cannot be tabled. */
static int eval_lut(qc_exec *x, const int *s, int n, const qc_tensor *const *v,
                    const qc_tensor *e, const float *a, float *lut, int *done, qc_err *err)
{
    qc_tensor *tmp = calloc((size_t)n + 1, sizeof *tmp);
    int ok = tmp != NULL, rc = QC_OK;
    if (ok && (rc = qc_tensor_alloc(&tmp[0], QC_F32, 1, (int64_t[]){ 256 }, err)) == QC_OK)
        memcpy(tmp[0].data, a, 256 * sizeof *a);
    for (int i = 0; ok && rc == QC_OK && i < n; i++) {
        qc_knode k = x->knodes[s[i]];
        qc_tensor *ins[3] = { NULL, NULL, NULL }, *outs[1] = { &tmp[i + 1] };
        for (int p = 0; p < k.n_in; p++) {
            ins[p] = k.in[p];
            for (int q = 0; q <= i; q++)
                if (k.in[p] == v[q])
                    ins[p] = &tmp[q];
        }
        k.in = ins;
        k.out = outs;
        tmp[i + 1].name = x->knodes[s[i]].out[0]->name;
        if ((rc = x->defs[s[i]]->infer(&k, err)) != QC_OK)
            break;
        ok = tmp[i + 1].dtype == QC_F32 && qc_tensor_numel(&tmp[i + 1]) == 256;
        if (ok && (rc = qc_tensor_alloc(&tmp[i + 1], QC_F32, tmp[i + 1].ndim, tmp[i + 1].dims,
                                        err)) == QC_OK)
            rc = x->defs[s[i]]->run(&k, &x->run, err);
    }
    for (int i = 0; ok && rc == QC_OK && i <= n; i++)
        if (v[i] == e)
            memcpy(lut, tmp[i].data, 256 * sizeof *lut);
    for (int i = 0; tmp && i <= n; i++)
        qc_tensor_free(&tmp[i]);
    free(tmp);
    *done = ok && rc == QC_OK;
    return tmp ? rc : qc_errf(err, QC_ENOMEM, "out of memory");
}

/* qfuse.h */
int qc_fuse_last_reader(const qc_exec *x, const qc_tensor *t)
{
    int l = val_of(t)->last_use;
    return l < x->n_knodes ? l : x->n_knodes - 1;
}

int qc_fuse_read_outside(const qc_exec *x, const qc_tensor *t, const int *s, int n)
{
    if (val_of(t)->no_fuse)
        return 1;
    /* readers come after the producer and by the last use (see qfuse.h) */
    int k0 = val_of(t)->producer + 1, k1 = qc_fuse_last_reader(x, t);
    for (int k = k0 > 0 ? k0 : 0; k <= k1; k++) {
        int mine = 0;
        for (int i = 0; i < n && !mine; i++)
            mine = s[i] == k;
        for (int i = 0; !x->skip[k] && !mine && i < x->knodes[k].n_in; i++)
            if (x->knodes[k].in[i] == t)
                return 1;
    }
    return 0;
}

/* A fake-quant knode's scale and zero point as a uint8 code (0 without one). An int8 FQ is a
 * uint8 one with codes and zero point moved up by 128: the same values, the same rounding
 * and saturation, so the tables and their kernels serve both. */
static void fq_params(const qc_knode *f, float *q)
{
    const qc_tensor *zt = opt_in(f, 2);
    q[0] = ((const float *)f->in[1]->data)[0];
    q[1] = !zt ? 0.0f : zt->dtype == QC_I8 ? (float)((const int8_t *)zt->data)[0] + 128.0f
                                            : (float)((const uint8_t *)zt->data)[0];
}

/* The table of 8-bit FQ knode fa: the elementwise nodes computed from its output alone
 * (s[0..*n)), the one value of them read elsewhere (*e) and its value for each code (*lut,
 * malloc'd). *lut NULL when there is none (two values leave, a kernel that cannot run on
 * the codes); `standalone`: the FQ's own output does not count. */
static int find_table(qc_exec *x, int fa, int standalone, int *s, const qc_tensor **v, int *n,
                      const qc_tensor **e, float **lut, qc_err *err)
{
    const qc_knode *f = &x->knodes[fa];
    const qc_tensor *zt = opt_in(f, 2);
    int n_exit = 0, done = 0, rc;
    *n = 0, *e = NULL, *lut = NULL;
    if (x->defs[fa] != &qc_fake_quant || (zt && zt->dtype != QC_U8 && zt->dtype != QC_I8))
        return QC_OK;
    float q[2];
    fq_params(f, q);
    v[0] = f->out[0];
    /* a member reads a value of the subgraph: none lies beyond their last readers */
    int lim = qc_fuse_last_reader(x, v[0]);
    for (int j = fa + 1; j <= lim && *n < QC_LUT_MAX_NODES; j++)
        if (!x->skip[j] && qc_fuse_ew_eligible(x, j, v, *n + 1)) {
            s[*n] = j;
            v[++*n] = x->knodes[j].out[0];
            int l = qc_fuse_last_reader(x, v[*n]);
            lim = l > lim ? l : lim;
        }
    for (int i = 0; i <= *n; i++)
        if (qc_fuse_read_outside(x, v[i], s, *n))
            n_exit++, *e = v[i];
    if (n_exit != 1 || (standalone && (*n == 0 || *e == v[0])))
        return QC_OK;
    float a[256];
    if (!(*lut = malloc(256 * sizeof **lut)))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int code = 0; code < 256; code++)
        a[code] = ((float)code - q[1]) * q[0];  /* what the fake quantization outputs */
    if ((rc = eval_lut(x, s, *n, v, *e, a, *lut, &done, err)) != QC_OK || !done) {
        free(*lut);
        *lut = NULL;
    }
    return rc;
}

/* Knode k takes the table: writes e, computes from its own code, and the subgraph's nodes
 * (and fa, when it is not k) are skipped. */
static void take_table(qc_exec *x, int k, int fa, const int *s, int n, const qc_tensor *e,
                       float *lut)
{
    qc_knode *c = &x->knodes[k];
    fq_params(&x->knodes[fa], c->qact);
    c->lut = lut;
    c->out[0] = (qc_tensor *)e;
    val_of(e)->producer = k;
    if (fa != k)
        x->skip[fa] = 1;
    for (int i = 0; i < n; i++)
        x->skip[s[i]] = 1;
}

/* A DequantizeLinear of initializers with one value (a quantized scalar operand: magika's
 * GELU multiplies by five of them) is computed now, by its own kernel, and its output becomes
 * a constant: the elementwise nodes reading it can then join a table (scalar_const). The
 * value owns its data from here on (qc_value.owned); the node no longer runs. */
static int fold_scalar_dq(qc_exec *x, qc_err *err)
{
    for (int k = 0; k < x->n_knodes; k++) {
        qc_knode kn = x->knodes[k];
        int all_init = kn.n_in >= 2 && kn.n_out == 1;
        for (int i = 0; i < kn.n_in && all_init; i++)
            all_init = !kn.in[i] || is_init(kn.in[i]);
        if (x->skip[k] || !all_init || !qc_fuse_is_op(&kn, "DequantizeLinear") ||
            val_of(kn.out[0])->no_fuse)
            continue;
        qc_tensor t = { .name = kn.out[0]->name }, *outs[1] = { &t };
        kn.out = outs;
        int rc = x->defs[k]->infer(&kn, err);
        if (rc != QC_OK)
            return rc;
        if (t.dtype != QC_F32 || qc_tensor_numel(&t) != 1)
            continue;
        if ((rc = qc_tensor_alloc(&t, t.dtype, t.ndim, t.dims, err)) != QC_OK ||
            (rc = x->defs[k]->run(&kn, &x->run, err)) != QC_OK) {
            qc_tensor_free(&t);
            return rc;
        }
        qc_value *v = val_of(x->knodes[k].out[0]);
        qc_set_shape(&v->t, t.dtype, t.ndim, t.dims);
        v->t.data = t.data;
        v->kind = VAL_INIT;
        v->owned = 1;
        v->producer = -1;
        x->skip[k] = 1;
        for (int j = 0; j < x->n_knodes; j++)
            for (int i = 0; i < x->knodes[j].n_in && i < 32; i++)
                if (x->knodes[j].in[i] == &v->t)
                    x->knodes[j].const_in |= 1u << i;
    }
    return QC_OK;
}

int qc_qlut_fuse(qc_exec *x, qc_err *err)
{
    int s[QC_LUT_MAX_NODES], n, fa, rc = fold_scalar_dq(x, err);
    const qc_tensor *v[QC_LUT_MAX_NODES + 1], *e;
    float *lut;
    /* into a Conv whose only reader is the FQ (its code computed in the conv kernel) */
    for (int k = 0; k < x->n_knodes && rc == QC_OK; k++) {
        qc_knode *c = &x->knodes[k];
        if (x->skip[k] || !qc_fuse_is_op(c, "Conv") || c->n_out != 1 || c->act != QC_ACT_NONE ||
            (x->sum_only && x->sum_only[k]) || val_of(c->out[0])->no_fuse ||
            readers(x, c->out[0], &fa) != 1 ||
            (rc = find_table(x, fa, 0, s, v, &n, &e, &lut, err)) != QC_OK || !lut)
            continue;
        take_table(x, k, fa, s, n, e, lut);
        c->act = QC_ACT_QLUT;
    }
    /* the other FQs with a subgraph: one table step in place of the FQ and its nodes */
    for (int k = 0; k < x->n_knodes && rc == QC_OK; k++) {
        if (x->skip[k] || x->defs[k] != &qc_fake_quant ||
            (rc = find_table(x, k, 1, s, v, &n, &e, &lut, err)) != QC_OK || !lut)
            continue;
        take_table(x, k, k, s, n, e, lut);
        x->defs[k] = &qc_code_table;
    }
    qc_fuse_relive(x);
    return rc;
}
