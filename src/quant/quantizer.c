/* The quantizer: observing activations during calibration and ranges -> scales and zero
 * points, int32 biases, then the QDQ model (qdq.c); what to quantize is qselect.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "par.h"
#include "qc_qparams.h"
#include "quant_priv.h"

int qc_quant_is_hist_method(const char *method)
{
    return !strcmp(method, "percentile") || !strcmp(method, "mse") ||
           !strcmp(method, "entropy");
}

void qc_quant_opts_default(qc_quant_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = "minmax";
    o->symmetric_w = 1;
    o->pair_guard = 1;
    o->concat_share = 1;
    o->act_dtype = QC_U8;
    o->percentile = 99.999f;
    o->ema_constant = 0.01f;
    o->bins = 2048;
}

/* The activation takes its observed range (mark_output_paths; mark_gates under mse and
 * entropy). */
static int takes_seen_range(const qtensor *t)
{
    return t->output_path || t->gate;
}

/* Whatever the method, its range of t is never used: an output path takes its observed
 * range, a shared tensor its source's. */
static int never_method_range(const qtensor *t)
{
    return t->output_path || t->share_from >= 0;
}

int qc_quant_range_from_method(const qc_quantizer *q, const char *name)
{
    int i = qc_strmap_get(&q->by_name, name);
    return i < 0 || !never_method_range(&q->t[i]);
}

static int make_observers(qc_quantizer *q, qc_err *err)
{
    const qc_model *m = q->m;
    int *count = calloc((size_t)m->n_nodes + 1, sizeof *count);
    q->out_start = calloc((size_t)m->n_nodes + 2, sizeof *q->out_start);
    q->out_list = calloc((size_t)q->n_t + 1, sizeof *q->out_list);
    if (!count || !q->out_start || !q->out_list) {
        free(count);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    qc_obs_config cfg = {
        .symmetric = q->o.symmetric_act, .qmin = q->act_qmin, .qmax = q->act_qmax,
        .per_channel_axis = -1, .ema_constant = q->o.ema_constant,
        .percentile = q->o.percentile, .bins = q->o.bins, .entropy_levels = 128,
    };
    int rc = QC_OK;
    for (int i = 0; i < q->n_t && rc == QC_OK; i++) {
        qtensor *t = &q->t[i];
        if (t->kind != QT_ACT)
            continue;
        /* every activation gets an observer, shared ones too: a shared output whose source
         * turns out not float can then still stand on its own. Two kinds of tensor never
         * take their range from the method, so a histogram method gives them a min/max
         * observer (a tenth of the cost per value; same observed range): output paths keep
         * their observed range (compute_params), and a shared tensor is only used with its
         * source used too (its producer is a quantized movement op whose one data input is
         * the source: the producer is final whenever the shared tensor is float with finite
         * values, and a final node's inputs are used; the one exception, a Pad of a source
         * with no finite value, leaves only the pad constant, whose range is the same for
         * every method). */
        const char *kind = q->o.external_ranges ? "minmax" : q->o.method;
        if ((never_method_range(t) || t->gate) && qc_quant_is_hist_method(kind))
            kind = "minmax";
        rc = qc_observer_new(&t->obs, kind, &cfg, err);
        if (t->producer >= 0)
            count[t->producer]++;
    }
    for (int k = 0; k < m->n_nodes; k++)
        q->out_start[k + 1] = q->out_start[k] + count[k];
    memset(count, 0, (size_t)m->n_nodes * sizeof *count);
    for (int i = 0; i < q->n_t; i++)
        if (q->t[i].kind == QT_ACT && q->t[i].producer >= 0) {
            int p = q->t[i].producer;
            q->out_list[q->out_start[p] + count[p]++] = i;
        }
    free(count);
    return rc;
}

int qc_quantizer_new(qc_quantizer **out, const qc_model *m, const qc_quant_opts *o,
                     qc_err *err)
{
    int rc;
    *out = NULL;
    qc_quantizer *q = calloc(1, sizeof *q);
    if (!q)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    q->m = m;
    q->o = *o;
    q->nodes = calloc((size_t)m->n_nodes + 1, sizeof *q->nodes);
    if (!q->nodes || qc_strmap_init(&q->by_name, (size_t)m->n_nodes * 2 + 16) != 0) {
        qc_quantizer_free(q);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    if (o->act_dtype != QC_U8 && o->act_dtype != QC_I8 && o->act_dtype != QC_I16 &&
        o->act_dtype != QC_U16) {
        qc_quantizer_free(q);
        return qc_errf(err, QC_EUSAGE, "activation type must be uint8, int8, int16 or uint16");
    }
    qc_qrange(o->act_dtype, o->symmetric_act, o->reduce_range, &q->act_qmin, &q->act_qmax);
    qc_qrange(QC_I8, o->symmetric_w, o->reduce_range, &q->w_qmin, &q->w_qmax);
    if ((rc = qc_quant_select_tensors(q, err)) != QC_OK || (rc = make_observers(q, err)) != QC_OK) {
        qc_quantizer_free(q);
        return rc;
    }
    *out = q;
    return QC_OK;
}

static int observe(qc_quantizer *q, qtensor *t, const qc_tensor *v, qc_err *err)
{
    if (!t->seen_dtype)
        t->seen_dtype = v->dtype;
    t->rank = v->ndim;
    if (v->dtype != QC_F32 || !t->obs || t->derived_from >= 0 || t->n_union)
        return QC_OK;
    int rc = qc_observer_update(t->obs, v, err);
    if (rc != QC_OK)
        qc_err_prefix(err, "tensor '%s'", t->name);
    (void)q;
    return rc;
}

int qc_quantizer_observe(qc_quantizer *q, const qc_node *node, int node_index,
                         const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    (void)node;
    for (int r = q->out_start[node_index]; r < q->out_start[node_index + 1]; r++) {
        qtensor *t = &q->t[q->out_list[r]];
        for (int k = 0; k < n_outs; k++)
            if (outs[k]->name && !strcmp(outs[k]->name, t->name)) {
                int rc = observe(q, t, outs[k], err);
                if (rc != QC_OK)
                    return rc;
            }
    }
    return QC_OK;
}

static int hook(void *user, const qc_node *node, int node_index,
                const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    return qc_quantizer_observe(user, node, node_index, outs, n_outs, err);
}

void qc_quantizer_attach(qc_quantizer *q, qc_exec *x)
{
    qc_exec_set_hook(x, hook, q);
}

int qc_quantizer_merge(qc_quantizer *q, const qc_quantizer *other, qc_err *err)
{
    if (other->m != q->m || other->n_t != q->n_t)
        return qc_errf(err, QC_EUSAGE, "quantizer merge: planned on different models");
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        const qtensor *u = &other->t[i];
        if (!t->seen_dtype)
            t->seen_dtype = u->seen_dtype;
        if (!t->rank)
            t->rank = u->rank;
        if (t->obs && u->obs) {
            int rc = qc_observer_merge(t->obs, u->obs, err);
            if (rc != QC_OK) {
                qc_err_prefix(err, "tensor '%s'", t->name);
                return rc;
            }
        }
    }
    return QC_OK;
}

qc_observer *qc_quantizer_observer(qc_quantizer *q, int i)
{
    return i >= 0 && i < q->n_t ? q->t[i].obs : NULL;
}

int qc_quantizer_observe_inputs(qc_quantizer *q, const qc_tensor *inputs, int n, qc_err *err)
{
    for (int i = 0; i < n && i < q->m->n_inputs; i++) {
        int idx = qc_strmap_get(&q->by_name, q->m->inputs[i].name);
        if (idx >= 0) {
            int rc = observe(q, &q->t[idx], &inputs[i], err);
            if (rc != QC_OK)
                return rc;
        }
    }
    return QC_OK;
}

int qc_quantizer_set_range(qc_quantizer *q, const char *name, qc_range range, qc_range seen,
                           int rank)
{
    int idx = qc_strmap_get(&q->by_name, name);
    if (idx < 0 || q->t[idx].kind != QT_ACT)
        return 0;
    qtensor *t = &q->t[idx];
    t->fixed = 1;
    t->fixed_range = range;
    t->fixed_seen = seen;
    t->seen_dtype = QC_F32;
    t->rank = rank;
    return 1;
}

static int alloc_results(qtensor *t, int n_ch, qc_err *err)
{
    t->n_ch = n_ch;
    t->obs_lo = calloc((size_t)n_ch, sizeof(float));
    t->obs_hi = calloc((size_t)n_ch, sizeof(float));
    t->lo = calloc((size_t)n_ch, sizeof(float));
    t->hi = calloc((size_t)n_ch, sizeof(float));
    t->scale = calloc((size_t)n_ch, sizeof(float));
    t->zp = calloc((size_t)n_ch, sizeof(int32_t));
    if (!t->obs_lo || !t->obs_hi || !t->lo || !t->hi || !t->scale || !t->zp)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    return QC_OK;
}

/* quant_priv.h. [outer][ch][inner]: each run of inner values has one channel, so no index
 * arithmetic per value. */
int qc_quant_channel_minmax(const float *x, int64_t n, int64_t inner, int64_t ch, float *lo,
                            float *hi)
{
    int finite = 1;
    for (int64_t at = 0; at < n; at += inner) {
        int64_t c = (at / inner) % ch, end = n - at < inner ? n : at + inner;
        float l = lo[c], h = hi[c];
        for (int64_t i = at; i < end; i++) {
            float v = x[i];
            finite &= isfinite(v) != 0;
            l = v < l ? v : l;
            h = v > h ? v : h;
        }
        lo[c] = l;
        hi[c] = h;
    }
    return finite;
}

/* min/max of a constant, per channel along axis (or whole tensor). */
static int const_ranges(qtensor *t, const qc_tensor *w, int axis, qc_err *err)
{
    int64_t n = qc_tensor_numel(w), ch = axis >= 0 ? w->dims[axis] : 1, inner = 1;
    for (int d = axis + 1; axis >= 0 && d < w->ndim; d++)
        inner *= w->dims[d];
    int rc = alloc_results(t, (int)ch, err);
    if (rc != QC_OK)
        return rc;
    for (int64_t c = 0; c < ch; c++) {
        t->obs_lo[c] = INFINITY;
        t->obs_hi[c] = -INFINITY;
    }
    if (!qc_quant_channel_minmax(w->data, n, axis >= 0 ? inner : n, ch, t->obs_lo, t->obs_hi))
        return qc_errf(err, QC_EINPUT, "weight '%s' contains NaN or Inf", t->name);
    for (int64_t c = 0; c < ch; c++) {
        if (t->obs_lo[c] > t->obs_hi[c])
            t->obs_lo[c] = t->obs_hi[c] = 0;
        t->lo[c] = t->obs_lo[c];
        t->hi[c] = t->obs_hi[c];
    }
    return QC_OK;
}

/* A shared activation whose source is quantized takes the source's parameters; so does one
 * moved from a model input left float (mark_input_movers) while that input has a range (it
 * has none under --params-in, which saves only quantized tensors: the shared one's own saved
 * range is the same). */
static int takes_source_range(const qc_quantizer *q, const qtensor *t)
{
    const qtensor *s = t->share_from >= 0 ? &q->t[t->share_from] : NULL;
    return s && (s->used || (s->moved_input && (s->fixed || qc_quant_obs_count(q, s) > 0)));
}

static int compute_params(qc_quantizer *q, int i, qc_err *err)
{
    qtensor *t = &q->t[i];
    int rc = QC_OK;
    if (t->done)
        return QC_OK;
    t->done = 1;
    if (t->kind == QT_ACT) {
        t->qdtype = q->o.act_dtype;
        if (takes_source_range(q, t)) {
            qtensor *s = &q->t[t->share_from];
            if ((rc = compute_params(q, t->share_from, err)) != QC_OK ||
                (rc = alloc_results(t, 1, err)) != QC_OK)
                return rc;
            t->lo[0] = s->lo[0];
            t->hi[0] = s->hi[0];
            t->scale[0] = s->scale[0];
            t->zp[0] = s->zp[0];
        } else {
            qc_range r = { 0, 0 };
            t->share_from = -1;
            if ((rc = alloc_results(t, 1, err)) != QC_OK)
                return rc;
            int seen = takes_seen_range(t);
            if (t->derived_from >= 0) {
                qc_range o;
                if ((rc = qc_quant_derived_ranges(q, t, seen, &r, &o, err)) != QC_OK)
                    return rc;
                t->obs_lo[0] = o.lo;
                t->obs_hi[0] = o.hi;
            } else if (seen && t->fixed)
                r = t->fixed_seen;              /* never clip the model's answer, or a gate */
            else if (seen && qc_observer_seen(t->obs, &r) == QC_OK)
                ;
            else if (t->fixed)
                r = t->fixed_range;
            else if (t->has_range)
                r = t->range;
            else if ((rc = qc_observer_range(t->obs, 0, &r, err)) != QC_OK)
                return rc;
            t->lo[0] = r.lo;
            t->hi[0] = r.hi;
            qc_qparams_from_range(r, q->o.symmetric_act, q->act_qmin, q->act_qmax,
                                  &t->scale[0], &t->zp[0]);
        }
        if (t->fixed) {
            t->obs_lo[0] = t->fixed_seen.lo;
            t->obs_hi[0] = t->fixed_seen.hi;
        } else if (t->obs && t->derived_from < 0) {
            qc_range r = { 0, 0 };
            if (qc_observer_seen(t->obs, &r) == QC_OK) {
                t->obs_lo[0] = r.lo;
                t->obs_hi[0] = r.hi;
            }
        }
        return QC_OK;
    }
    const qc_tensor *w = qc_model_init(q->m, t->name);
    if (t->kind == QT_BIAS)
        return QC_OK;                       /* after inputs and weights: see finish_biases */
    int axis = t->kind == QT_WEIGHT && !t->axis_conflict ? t->axis : -1;
    t->axis = axis;
    if ((rc = const_ranges(t, w, axis, err)) != QC_OK)
        return rc;
    int sym = t->kind == QT_WEIGHT ? q->o.symmetric_w : q->o.symmetric_act;
    int qmin = t->kind == QT_WEIGHT ? q->w_qmin : q->act_qmin;
    int qmax = t->kind == QT_WEIGHT ? q->w_qmax : q->act_qmax;
    t->qdtype = t->kind == QT_WEIGHT ? QC_I8 : q->o.act_dtype;
    for (int c = 0; c < t->n_ch; c++) {
        qc_range r = { t->lo[c], t->hi[c] };
        qc_qparams_from_range(r, sym, qmin, qmax, &t->scale[c], &t->zp[c]);
    }
    if (t->kind == QT_WEIGHT && qc_quant_pair_guarded(q)) {
        int moved = 0;
        rc = qc_pairguard_scales_shared(q->pg_cache, q->m, t->name, w, axis, t->n_ch,
                                        t->scale, &moved, err);
        t->guard_moved = moved;
    }
    return rc;
}

void qc_quant_share_guard(qc_quantizer *q, qc_pg_cache *c)
{
    q->pg_cache = c;
}

void qc_quant_concat_counts(const qc_quantizer *q, int *shared, int *own)
{
    *shared = q->n_concat_shared;
    *own = q->n_concat_own;
}

/* The pair guard applies to symmetric int8 weights with uint8 activations, full range. */
int qc_quant_pair_guarded(const qc_quantizer *q)
{
    return q->o.pair_guard && q->o.symmetric_w && !q->o.reduce_range &&
           q->o.act_dtype == QC_U8;
}

/* int32 bias: scale = input scale * weight scale; where the bias would not fit in int32 the
 * weight scale grows instead (clipping a bias costs far more accuracy than coarser weights). */
static int finish_bias(qc_quantizer *q, qtensor *t, qc_err *err)
{
    const qc_tensor *b = qc_model_init(q->m, t->name);
    qtensor *in = &q->t[t->bias_in], *w = &q->t[t->bias_w];
    int64_t n = qc_tensor_numel(b);
    int rc = alloc_results(t, (int)n, err);
    if (rc != QC_OK)
        return rc;
    t->axis = 0;
    t->qdtype = QC_I32;
    const float *bd = b->data;
    /* half of int32: the integer kernel adds the products of a whole dot product to it */
    const double lim = 1073741823.0;
    for (int64_t c = 0; c < n; c++) {       /* first grow weight scales where needed */
        int wc = w->n_ch == 1 ? 0 : (int)c;
        if (fabs(bd[c]) / ((double)in->scale[0] * w->scale[wc]) > lim)
            w->scale[wc] = (float)(fabs(bd[c]) / (in->scale[0] * lim));
    }
    for (int64_t c = 0; c < n; c++) {
        int wc = w->n_ch == 1 ? 0 : (int)c;
        t->obs_lo[c] = t->lo[c] = bd[c] < 0 ? bd[c] : 0;
        t->obs_hi[c] = t->hi[c] = bd[c] > 0 ? bd[c] : 0;
        t->scale[c] = in->scale[0] * w->scale[wc];
        t->zp[c] = 0;
    }
    return QC_OK;
}

/* The observer ranges compute_params will ask for (activations with their own observer),
 * tensors side by side; each observer is read by one thread only. */
typedef struct range_job {
    qc_quantizer *q;
    int          *idx;
} range_job;

static int range_item(void *ctx, int64_t k, qc_err *err)
{
    range_job *j = ctx;
    qtensor *t = &j->q->t[j->idx[k]];
    int rc = qc_observer_range(t->obs, 0, &t->range, err);
    t->has_range = rc == QC_OK;
    return rc;
}

/* The weights' parameters, tensors side by side (the pair guard's scale search is most of a
 * model's weight work); each weight is computed by one thread and reads nothing another writes. */
static int weight_item(void *ctx, int64_t k, qc_err *err)
{
    range_job *j = ctx;
    return compute_params(j->q, j->idx[k], err);
}

/* fn over the tensors `want` picks, side by side (qc_par_each). */
static int each_tensor(qc_quantizer *q, int (*want)(const qc_quantizer *, const qtensor *),
                       qc_par_item_fn fn, qc_err *err)
{
    int n = 0;
    range_job j = { q, calloc((size_t)q->n_t + 1, sizeof *j.idx) };
    if (!j.idx)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < q->n_t; i++)
        if (want(q, &q->t[i]))
            j.idx[n++] = i;
    int rc = qc_par_each(n, fn, &j, err);
    free(j.idx);
    return rc;
}

static int is_used_weight(const qc_quantizer *q, const qtensor *t)
{
    (void)q;
    return t->used && t->kind == QT_WEIGHT;
}

/* activations whose own observer gives their range (not fixed, seen, sourced or derived) */
static int needs_obs_range(const qc_quantizer *q, const qtensor *t)
{
    return t->used && t->kind == QT_ACT && t->obs && !t->fixed && !takes_seen_range(t) &&
           !takes_source_range(q, t) && t->derived_from < 0;
}

int qc_quantizer_build(qc_quantizer *q, qc_model **out, qc_err *err)
{
    const qc_model *m = q->m;
    int rc;
    *out = NULL;
    if ((rc = qc_quant_union_fill(q, err)) != QC_OK)
        return rc;
    qc_quant_derived_seen(q);
    if ((rc = qc_quant_finalize_nodes(q, err)) != QC_OK)
        return rc;
    /* readers that will read a DequantizeLinear output, per tensor */
    int *dq_readers = calloc((size_t)q->n_t + 1, sizeof *dq_readers);
    if (!dq_readers)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_inputs && !qc_quant_reads_float(q, i); k++) {
            const char *in = m->nodes[i].inputs[k];
            int idx = in[0] ? qc_strmap_get(&q->by_name, in) : -1;
            if (idx >= 0)
                dq_readers[idx]++;
        }
    q->n_quantized = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *n = &m->nodes[i];
        if (!q->nodes[i].final)
            continue;
        q->n_quantized++;
        for (int k = 0; k < n->n_inputs; k++) {
            int idx = n->inputs[k][0] ? qc_strmap_get(&q->by_name, n->inputs[k]) : -1;
            if (idx >= 0 && qc_quant_slot_role(n, k, m))
                q->t[idx].used = 1;
        }
        for (int k = 0; k < n->n_outputs; k++) {
            int idx = n->outputs[k][0] ? qc_strmap_get(&q->by_name, n->outputs[k]) : -1;
            /* a tensor only the graph output reads stays float: a Q/DQ pair there would
             * either be dead (the output keeps the float name) or, made live, round the
             * model's answer (class scores in 0..1 on a box-coordinate scale) */
            if (idx >= 0 && q->t[idx].seen_dtype == QC_F32 && dq_readers[idx] > 0 &&
                (!q->t[idx].obs || q->t[idx].fixed || qc_quant_obs_count(q, &q->t[idx]) > 0))
                q->t[idx].used = 1;
        }
    }
    free(dq_readers);
    if ((rc = each_tensor(q, needs_obs_range, range_item, err)) != QC_OK ||
        (rc = each_tensor(q, is_used_weight, weight_item, err)) != QC_OK)
        return rc;
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        if (t->kind == QT_BIAS && t->used && (q->o.bias_float || !q->t[t->bias_in].used ||
                                             !q->nodes[t->bias_node].final))
            t->used = 0;            /* float bias stays as it is */
        if (t->used && (rc = compute_params(q, i, err)) != QC_OK)
            return rc;
    }
    if ((rc = qc_quant_share_concat_scales(q, err)) != QC_OK)
        return rc;
    for (int i = 0; i < q->n_t; i++)
        if (q->t[i].used && q->t[i].kind == QT_BIAS &&
            (rc = finish_bias(q, &q->t[i], err)) != QC_OK)
            return rc;
    return qc_quant_rewrite(q, out, err);
}

void qc_quantizer_free(qc_quantizer *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        qc_observer_free(t->obs);
        free(t->union_of);
        free(t->obs_lo);
        free(t->obs_hi);
        free(t->lo);
        free(t->hi);
        free(t->scale);
        free(t->zp);
    }
    free(q->t);
    free(q->nodes);
    free(q->out_start);
    free(q->out_list);
    free(q->float_nodes);
    free(q->hooked);
    qc_strmap_free(&q->by_name);
    free(q);
}

int qc_quantizer_n_tensors(const qc_quantizer *q)
{
    return q->n_t;
}

int qc_quantizer_find(const qc_quantizer *q, const char *name)
{
    return qc_strmap_get(&q->by_name, name);
}

int qc_quantizer_tensor(const qc_quantizer *q, int i, qc_qtensor_info *info)
{
    static const char *kinds[] = { "activation", "weight", "bias", "constant" };
    if (i < 0 || i >= q->n_t || !q->t[i].used || !q->t[i].done)
        return 0;
    const qtensor *t = &q->t[i];
    info->name = t->name;
    info->kind = kinds[t->kind];
    info->method = t->kind == QT_ACT ? (t->share_from >= 0 ? "shared"
                                        : t->output_path ? "minmax (output path)"
                                        : t->gate ? "minmax (sigmoid output)"
                                        : q->o.method)
                 : t->kind == QT_BIAS ? "derived" : "minmax";
    /* through float movers of a model input, the input itself (mark_input_movers) */
    const qtensor *src = t->share_from >= 0 ? &q->t[t->share_from] : NULL;
    while (src && !src->used && src->moved_input && src->share_from >= 0)
        src = &q->t[src->share_from];
    info->shared_with = src ? src->name : NULL;
    info->derived_from = t->derived_from >= 0 ? q->t[t->derived_from].name : NULL;
    info->dtype = t->qdtype;
    info->axis = t->axis;
    info->n_channels = t->n_ch;
    info->obs_lo = t->obs_lo;
    info->obs_hi = t->obs_hi;
    info->lo = t->lo;
    info->hi = t->hi;
    info->scale = t->scale;
    info->zero_point = t->zp;
    const qtensor *o = qc_quant_observed(q, t);     /* a derived tensor's: its root's */
    info->nonfinite = o->obs ? qc_observer_nonfinite(o->obs) : 0;
    info->rank = t->rank;
    info->guard_moved = t->guard_moved;
    info->concat_group = t->concat_rep >= 0 ? q->t[t->concat_rep].name : NULL;
    info->own_lo = t->own_lo;
    info->own_hi = t->own_hi;
    return 1;
}

int qc_quantizer_n_quantized_nodes(const qc_quantizer *q)
{
    return q->n_quantized;
}

int qc_quantizer_float_node(const qc_quantizer *q, int i, const char **name,
                            const char **op_type, const char **why)
{
    int k = -1;
    if (q->float_nodes)                 /* built */
        k = i >= 0 && i < q->n_float_nodes ? q->float_nodes[i] : -1;
    for (int j = 0; !q->float_nodes && j < q->m->n_nodes && k < 0; j++)
        if (!q->nodes[j].final && i-- == 0)
            k = j;
    if (k < 0)
        return 0;
    *name = q->m->nodes[k].name;
    *op_type = q->m->nodes[k].op_type;
    *why = q->nodes[k].why ? q->nodes[k].why : "not quantized";
    return 1;
}

int qc_quantizer_float_groups(const qc_quantizer *q, qc_float_group **groups)
{
    const char *nm, *op, *why;
    int n_float = 0, n_g = 0;
    *groups = NULL;
    while (qc_quantizer_float_node(q, n_float, &nm, &op, &why))
        n_float++;
    if (n_float == 0)
        return 0;
    qc_float_group *g = calloc((size_t)n_float, sizeof *g);
    if (!g)
        return -1;
    for (int i = 0; i < n_float; i++) {       /* groups are few; float nodes can be many */
        int k = 0;
        qc_quantizer_float_node(q, i, &nm, &op, &why);
        while (k < n_g && (strcmp(op, g[k].op_type) || strcmp(why, g[k].why)))
            k++;
        if (k == n_g)
            g[n_g++] = (qc_float_group){ op, why, nm, 0 };
        g[k].count++;
    }
    *groups = g;
    return n_g;
}
