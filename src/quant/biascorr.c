/* Empirical bias correction: measure, per output channel, how far the quantized model's
 * Conv/ConvTranspose/Gemm outputs drift from the float model's on calibration samples, and move
 * each bias by minus that drift. Samples stream through both executors one at a time (the float
 * one keeps its values until the quantized run of the same sample has read them), so memory is
 * one sample's activations plus one double per output channel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "qc_biascorr.h"
#include "qc_edit.h"
#include "qc_exec.h"

/* finish_bias (quantizer.c) keeps int32 biases within half of int32: the integer kernel adds a
 * whole dot product to them */
#define BIAS_LIM 1073741823.0

typedef struct target {
    const char *node;           /* node name (stable across edits) */
    const char *bias;           /* float bias initializer, or the int32 one behind its DQ */
    const char *scale;          /* int32: the DQ's scale initializer; NULL for a float bias */
    int         n_ch;
    int         bad;            /* output missing in the float model or shapes differ */
    double     *sum;            /* sum of (quantized - float) per channel, this pass */
    int64_t     count;          /* values summed per channel */
} target;

typedef struct bc_state {
    target        *t;
    int            n_t;
    int           *by_node;     /* node index in the current quantized model -> target or -1 */
    const qc_exec *fx;          /* float executor (keep_all) that ran the same sample */
    int            propagate;   /* measure accumulated errors (see hook) */
} bc_state;

void qc_biascorr_opts_default(qc_biascorr_opts *o)
{
    o->n_samples = 32;
    o->passes = 1;
    o->propagate = 0;
}

static int n_readers(const qc_model *m, const char *name)
{
    int n = 0;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_inputs; k++)
            n += !strcmp(m->nodes[i].inputs[k], name);
    return n;
}

static int is_biased_op(const qc_node *n)
{
    return n->domain[0] == 0 && n->n_inputs >= 3 && n->inputs[2][0] && n->n_outputs >= 1 &&
           (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose") ||
            !strcmp(n->op_type, "Gemm"));
}

/* The bias of node n as a float initializer, or as int32 behind a DequantizeLinear with a
 * zero point of 0 (what the QDQ rewrite writes). 0 if neither, or if it is shared (one bias
 * cannot follow two nodes' errors). */
static int bias_of(const qc_model *m, const qc_node *n, target *t)
{
    const char *b = n->inputs[2];
    const qc_tensor *bt = qc_model_init(m, b);
    if (n_readers(m, b) != 1)
        return 0;
    if (bt) {
        if (bt->dtype != QC_F32)
            return 0;
        t->bias = b, t->scale = NULL, t->n_ch = (int)qc_tensor_numel(bt);
        return t->n_ch > 0;
    }
    int p = qc_model_producer(m, b);
    if (p < 0 || strcmp(m->nodes[p].op_type, "DequantizeLinear") || m->nodes[p].n_inputs < 2)
        return 0;
    const qc_node *dq = &m->nodes[p];
    const qc_tensor *qb = qc_model_init(m, dq->inputs[0]), *s = qc_model_init(m, dq->inputs[1]);
    const qc_tensor *zp = dq->n_inputs > 2 && dq->inputs[2][0] ? qc_model_init(m, dq->inputs[2])
                                                               : NULL;
    if (!qb || qb->dtype != QC_I32 || !s || s->dtype != QC_F32 || n_readers(m, dq->inputs[0]) != 1)
        return 0;
    int64_t nb = qc_tensor_numel(qb), ns = qc_tensor_numel(s);
    if (nb < 1 || (ns != 1 && ns != nb))
        return 0;
    for (int64_t c = 0; zp && c < qc_tensor_numel(zp); c++)
        if (qc_tensor_get_i(zp, c) != 0)
            return 0;
    t->bias = dq->inputs[0], t->scale = dq->inputs[1], t->n_ch = (int)nb;
    return 1;
}

static int find_targets(const qc_model *q, bc_state *st, qc_err *err)
{
    st->t = calloc((size_t)q->n_nodes + 1, sizeof *st->t);
    if (!st->t)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < q->n_nodes; i++) {
        target *t = &st->t[st->n_t];
        if (!is_biased_op(&q->nodes[i]) || !bias_of(q, &q->nodes[i], t))
            continue;
        t->node = q->nodes[i].name;
        if (!(t->sum = calloc((size_t)t->n_ch, sizeof *t->sum)))
            return qc_errf(err, QC_ENOMEM, "out of memory");
        st->n_t++;
    }
    return QC_OK;
}

/* Node names survive edits; indices do not (qc_edit_finish re-sorts). */
static int map_nodes(const qc_model *m, bc_state *st, qc_err *err)
{
    free(st->by_node);
    if (!(st->by_node = malloc(((size_t)m->n_nodes + 1) * sizeof *st->by_node)))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_nodes; i++) {
        st->by_node[i] = -1;
        for (int k = 0; k < st->n_t; k++)
            if (!strcmp(st->t[k].node, m->nodes[i].name))
                st->by_node[i] = k;
    }
    return QC_OK;
}

static int hook(void *user, const qc_node *node, int node_index, const qc_tensor *const *outs,
                int n_outs, qc_err *err)
{
    bc_state *st = user;
    (void)node, (void)err;
    int k = st->by_node[node_index];
    if (k < 0 || n_outs < 1 || st->t[k].bad)
        return QC_OK;
    target *t = &st->t[k];
    const qc_tensor *qy = outs[0], *fy = qc_exec_value(st->fx, qy->name);
    if (!fy || fy->dtype != QC_F32 || qy->dtype != QC_F32 || !qc_shape_equal(fy, qy) ||
        qy->ndim < 2 || qy->dims[1] != t->n_ch) {
        t->bad = 1;                 /* nothing comparable: leave this bias alone */
        return QC_OK;
    }
    int64_t outer = qy->dims[0], inner = 1;
    for (int d = 2; d < qy->ndim; d++)
        inner *= qy->dims[d];
    const float *a = qy->data, *b = fy->data;
    for (int64_t o = 0; o < outer; o++)
        for (int c = 0; c < t->n_ch; c++) {
            const float *pa = a + (o * t->n_ch + c) * inner, *pb = b + (o * t->n_ch + c) * inner;
            double s = 0;
            for (int64_t j = 0; j < inner; j++)
                s += (double)pa[j] - pb[j];
            t->sum[c] += s;
        }
    t->count += outer * inner;
    /* Downstream targets must see the float value: their error is then only what the
     * quantization between two biased nodes adds (the segment's own bias, which a correction
     * here can cancel), not the upstream errors their own upstream corrections will remove.
     * Measuring the accumulated error instead over-corrects: every node would also cancel
     * what its ancestors cancel, and the shifts compound along a deep chain. */
    if (!st->propagate)
        memcpy(qy->data, fy->data, qc_tensor_nbytes(qy));
    return QC_OK;
}

/* One pass: every sample through both models, per-channel sums of the output difference. */
static int measure(const qc_model *cur, qc_exec *fx, qc_dataset *d, int n, bc_state *st,
                   int *used, qc_err *err)
{
    qc_exec *qx = NULL;
    qc_exec_opts qo = { 0 };
    int rc = map_nodes(cur, st, err);
    if (rc == QC_OK)
        rc = qc_exec_new(&qx, cur, &qo, err);
    if (rc != QC_OK)
        return rc;
    qc_exec_set_hook(qx, hook, st);
    st->fx = fx;
    for (int k = 0; k < st->n_t; k++) {
        memset(st->t[k].sum, 0, (size_t)st->t[k].n_ch * sizeof *st->t[k].sum);
        st->t[k].count = 0;
    }
    *used = 0;
    for (int i = 0; i < n && rc == QC_OK; i++) {
        qc_tensor *in;
        int n_in = cur->n_inputs;
        if ((rc = qc_dataset_load(d, i, &in, err)) != QC_OK)
            break;
        if (qc_tensors_nonfinite(in, n_in))
            continue;               /* calibration skipped (and reported) it too */
        if ((rc = qc_exec_run(fx, in, n_in, err)) == QC_OK)
            rc = qc_exec_run(qx, in, n_in, err);
        if (rc != QC_OK)
            qc_err_prefix(err, "sample %s", qc_dataset_sample_name(d, i));
        (*used)++;
    }
    qc_exec_free(qx);
    return rc;
}

static double mean_abs_err(const bc_state *st)
{
    double s = 0;
    int64_t n = 0;
    for (int k = 0; k < st->n_t; k++) {
        const target *t = &st->t[k];
        if (t->bad || !t->count)
            continue;
        for (int c = 0; c < t->n_ch; c++)
            s += fabs(t->sum[c] / (double)t->count);
        n += t->n_ch;
    }
    return n ? s / (double)n : 0;
}

static int correct_one(qc_edit *e, const qc_model *cur, const target *t, int *n_clamped,
                       qc_err *err)
{
    const qc_tensor *b = qc_model_init(cur, t->bias);
    int rc;
    if (!b || qc_tensor_numel(b) != t->n_ch)
        return qc_errf(err, QC_EINTERNAL, "node '%s': bias '%s' changed", t->node, t->bias);
    qc_tensor nb = *b;
    if (!(nb.data = malloc((size_t)t->n_ch * qc_dtype_size(b->dtype))))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if (!t->scale) {
        for (int c = 0; c < t->n_ch; c++)
            ((float *)nb.data)[c] = (float)(((const float *)b->data)[c] -
                                            t->sum[c] / (double)t->count);
    } else {
        /* same scale (input scale x weight scale): the int32 invariant stays as built */
        const qc_tensor *s = qc_model_init(cur, t->scale);
        int64_t ns = qc_tensor_numel(s);
        for (int c = 0; c < t->n_ch; c++) {
            double sc = ((const float *)s->data)[ns == 1 ? 0 : c];
            double v = ((const int32_t *)b->data)[c] -
                       nearbyint(t->sum[c] / (double)t->count / sc);
            if (fabs(v) > BIAS_LIM)
                v = v < 0 ? -BIAS_LIM : BIAS_LIM, (*n_clamped)++;
            ((int32_t *)nb.data)[c] = (int32_t)v;
        }
    }
    rc = qc_edit_remove_init(e, t->bias, err);
    if (rc == QC_OK)
        rc = qc_edit_add_init(e, &nb, err);
    free(nb.data);
    return rc;
}

static int apply(const qc_model *cur, const bc_state *st, qc_model **next, int *n_nodes,
                 int *n_clamped, qc_err *err)
{
    qc_edit *e = NULL;
    int rc = qc_edit_begin(&e, cur, err);
    *n_nodes = 0;
    for (int k = 0; k < st->n_t && rc == QC_OK; k++) {
        if (st->t[k].bad || !st->t[k].count)
            continue;
        rc = correct_one(e, cur, &st->t[k], n_clamped, err);
        (*n_nodes)++;
    }
    if (rc != QC_OK) {
        qc_edit_free(e);
        return rc;
    }
    return qc_edit_finish(e, next, err);
}

int qc_bias_correct(const qc_model *float_m, const qc_model *q, qc_dataset *d,
                    const qc_biascorr_opts *o, qc_model **out, qc_biascorr_stats *stats,
                    qc_err *err)
{
    qc_biascorr_opts def;
    qc_biascorr_stats st_local;
    bc_state st = { 0 };
    qc_exec *fx = NULL;
    qc_exec_opts fo = { .keep_all = 1 };
    const qc_model *cur = q;
    qc_model *owned = NULL;
    if (!o)
        qc_biascorr_opts_default(&def), o = &def;
    if (!stats)
        stats = &st_local;
    memset(stats, 0, sizeof *stats);
    *out = NULL;
    int n = qc_dataset_count(d);
    if (o->n_samples > 0 && o->n_samples < n)
        n = o->n_samples;
    st.propagate = o->propagate;
    int rc = find_targets(q, &st, err);
    if (rc == QC_OK)
        rc = qc_exec_new(&fx, float_m, &fo, err);
    for (int p = 0; p < o->passes && rc == QC_OK; p++) {
        qc_model *next = NULL;
        int used = 0;
        if ((rc = measure(cur, fx, d, n, &st, &used, err)) != QC_OK)
            break;
        if (used == 0) {
            rc = qc_errf(err, QC_EINPUT, "no usable sample");
            break;
        }
        stats->n_samples = used;
        if (p == 0)
            stats->mean_abs_before = mean_abs_err(&st);
        stats->mean_abs_after = mean_abs_err(&st);
        stats->n_clamped = 0;
        if ((rc = apply(cur, &st, &next, &stats->n_nodes, &stats->n_clamped, err)) != QC_OK)
            break;
        qc_model_free(owned);
        cur = owned = next;
    }
    qc_exec_free(fx);
    for (int k = 0; k < st.n_t; k++)
        free(st.t[k].sum);
    free(st.t);
    free(st.by_node);
    if (rc != QC_OK) {
        qc_model_free(owned);
        qc_err_prefix(err, "bias correction");
        return rc;
    }
    if (!owned)                     /* no pass ran: a copy, so *out is always the caller's */
        return qc_errf(err, QC_EUSAGE, "bias correction: passes must be >= 1");
    *out = owned;
    return QC_OK;
}
