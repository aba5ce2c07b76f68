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
#include "ops_ew.h"

static qc_value *val_of(const qc_tensor *t)
{
    return (qc_value *)t;            /* t is the first member of qc_value */
}

static qc_tensor *opt_in(const qc_knode *n, int i)
{
    return i < n->n_in ? n->in[i] : NULL;
}

static int is_op(const qc_knode *kn, const char *op)
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

/* Non-skipped readers of t: their count, and one of them. */
static int readers(const qc_exec *x, const qc_tensor *t, int *one)
{
    int c = 0;
    for (int k = 0; k < x->n_knodes; k++) {
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
    if (p < 0 || x->skip[p] || !is_op(&x->knodes[p], "DequantizeLinear"))
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
    if (kn->n_out != 1 || val_of(kn->out[0])->is_output || readers(x, kn->out[0], qk) != 1)
        return NULL;
    qc_knode *q = &x->knodes[*qk];
    if (!is_op(q, "QuantizeLinear") || q->in[0] != kn->out[0])
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
static void relive(qc_exec *x)
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
        if (is_op(kn, "Conv"))
            rc = fuse_conv(x, k, err);
        else if (is_op(kn, "MatMul"))
            rc = fuse_matmul(x, k, err);
        else if (is_op(kn, "Sigmoid"))
            rc = fuse_unary(x, k, &qc_qlinear_sigmoid, err);
        else if (is_op(kn, "Softmax"))
            rc = fuse_unary(x, k, &qc_qlinear_softmax, err);
        else if (is_op(kn, "Add"))
            rc = fuse_binary(x, k, &qc_qlinear_add, err);
        else if (is_op(kn, "Mul"))
            rc = fuse_binary(x, k, &qc_qlinear_mul, err);
    }
    if (rc != QC_OK)
        return rc;
    /* DequantizeLinear nodes whose every reader now reads the codes */
    for (int k = 0; k < x->n_knodes; k++) {
        int one;
        const qc_knode *kn = &x->knodes[k];
        if (!x->skip[k] && is_op(kn, "DequantizeLinear") && !val_of(kn->out[0])->is_output &&
            readers(x, kn->out[0], &one) == 0)
            x->skip[k] = 1;
    }
    relive(x);
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
        if (x->skip[k] || !is_op(dq, "DequantizeLinear") || dq->n_in < 2)
            continue;
        int p = val_of(dq->in[0])->producer, one;
        if (p < 0 || x->skip[p] || !is_op(&x->knodes[p], "QuantizeLinear"))
            continue;
        qc_knode *q = &x->knodes[p];
        qc_tensor *s = q->in[1], *z = opt_in(q, 2);
        if (q->n_in < 2 || val_of(q->out[0])->is_output || readers(x, q->out[0], &one) != 1 ||
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
    }
    relive(x);
    return QC_OK;
}

/* A uint8 fake-quant knode (qc_qdq_fuse's) reading t, the only non-skipped reader of t, whose
 * output is not a graph output: its index, or -1. */
static int sole_fq_reader(const qc_exec *x, const qc_tensor *t)
{
    int k = -1;
    if (val_of(t)->is_output || readers(x, t, &k) != 1 || x->defs[k] != &qc_fake_quant)
        return -1;
    const qc_tensor *z = opt_in(&x->knodes[k], 2);
    return !z || z->dtype == QC_U8 ? k : -1;
}

static void fq_params(const qc_knode *fq, float *s, float *z)
{
    const qc_tensor *zt = opt_in(fq, 2);
    *s = ((const float *)fq->in[1]->data)[0];
    *z = zt ? (float)((const uint8_t *)zt->data)[0] : 0.0f;
}

/* Conv -> FQ(a) -> Sigmoid -> FQ(b) -> Mul(a, b) -> FQ(c), each tensor read only along the
 * chain: the Conv writes FQ(c)'s output (QC_ACT_QSILU) and the five nodes are skipped. */
int qc_qsilu_fuse(qc_exec *x, qc_err *err)
{
    for (int k = 0; k < x->n_knodes; k++) {
        qc_knode *c = &x->knodes[k];
        if (x->skip[k] || !is_op(c, "Conv") || c->n_out != 1 || c->act != QC_ACT_NONE ||
            (x->sum_only && x->sum_only[k]))
            continue;
        int fa = sole_fq_reader(x, c->out[0]), sg = -1, mul = -1, n = 0;
        if (fa < 0 || val_of(x->knodes[fa].out[0])->is_output)
            continue;
        const qc_tensor *a = x->knodes[fa].out[0];
        for (int j = 0; j < x->n_knodes; j++) {
            const qc_knode *o = &x->knodes[j];
            int reads = 0;
            for (int i = 0; !x->skip[j] && i < o->n_in; i++)
                reads |= o->in[i] == a;
            if (!reads)
                continue;
            n++;
            if (is_op(o, "Sigmoid") && o->n_in == 1 && o->n_out == 1)
                sg = j;
            else if (is_op(o, "Mul") && o->n_in == 2 && o->n_out == 1)
                mul = j;
        }
        if (n != 2 || sg < 0 || mul < 0)
            continue;
        int fb = sole_fq_reader(x, x->knodes[sg].out[0]), one = -1;
        if (fb < 0 || val_of(x->knodes[fb].out[0])->is_output ||
            readers(x, x->knodes[fb].out[0], &one) != 1 || one != mul)
            continue;
        const qc_knode *m = &x->knodes[mul];
        if (!((m->in[0] == a && m->in[1] == x->knodes[fb].out[0]) ||
              (m->in[1] == a && m->in[0] == x->knodes[fb].out[0])))
            continue;
        int fc = sole_fq_reader(x, m->out[0]);
        if (fc < 0)
            continue;
        float q[6];
        fq_params(&x->knodes[fa], &q[0], &q[1]);
        fq_params(&x->knodes[fb], &q[2], &q[3]);
        fq_params(&x->knodes[fc], &q[4], &q[5]);
        if (!(c->lut = malloc(256 * sizeof *c->lut)))
            return qc_errf(err, QC_ENOMEM, "out of memory");
        /* code k of the first FQ -> its DequantizeLinear's value a -> Sigmoid (ops_unary.c's
         * expression) -> FQ -> Mul -> FQ, as those nodes compute them */
        for (int code = 0; code < 256; code++) {
            float a = ((float)code - q[1]) * q[0];
            float sg = qc_ew_sigmoidf(a);
            float b = ((float)qc_ew_fq_code(sg, q[2], q[3]) - q[3]) * q[2];
            c->lut[code] = ((float)qc_ew_fq_code(a * b, q[4], q[5]) - q[5]) * q[4];
        }
        c->qact[0] = q[0], c->qact[1] = q[1];
        c->act = QC_ACT_QSILU;
        c->out[0] = x->knodes[fc].out[0];
        val_of(c->out[0])->producer = k;
        x->skip[fa] = x->skip[sg] = x->skip[fb] = x->skip[mul] = x->skip[fc] = 1;
    }
    relive(x);
    return QC_OK;
}
