/* Derived ranges. A Sigmoid is non-decreasing, so the minimum, the maximum and every quantile
 * of its output are the sigmoid of its input's: where the range a method takes from the output
 * is one of those, the input's observation gives it, and the calibration pass need neither
 * observe the output nor compute it. The pass executor is then told which tensors its hook
 * reads (qc_exec_opts.hooked) and fuses the rest: a SiLU (Conv -> Sigmoid -> Mul(conv,
 * sigmoid), every activation of YOLOv8) runs its Sigmoid and Mul as one elementwise step with
 * the same bits (src/exec/ewchain.c) instead of three passes over memory and a third
 * observer.
 *
 * Which ranges qualify: the observed range (minmax, a gate under mse or entropy, an output
 * path: the input's observed min and max carried through; the same as observing the output
 * up to the sigmoid's rounding) and the asymmetric percentile (the input's two cut points
 * carried through: the same quantiles, at the resolution of the input's histogram instead of
 * the output's). Not EMA (a mean of per-sample extremes does not commute with the map), not a
 * symmetric percentile (it histograms |x|, which loses the input's signed tail), not
 * --params-in or external ranges. */
#include <stdlib.h>
#include <string.h>
#include "quant_priv.h"

const char *qc_quant_sigmoid_input(const qc_model *m, int producer, const char *name)
{
    if (producer < 0)
        return NULL;
    const qc_node *n = &m->nodes[producer];
    if (strcmp(n->op_type, "Sigmoid") || n->domain[0] || n->n_inputs < 1 ||
        n->n_outputs < 1 || strcmp(n->outputs[0], name) || !n->inputs[0][0])
        return NULL;
    return n->inputs[0];
}

int qc_quant_derives_percentile(const qc_quant_opts *o)
{
    return !strcmp(o->method, "percentile") && !o->symmetric_act;
}

static int derivable_method(const qc_quantizer *q, const qtensor *t, const qtensor *src)
{
    if (t->output_path || t->gate || !strcmp(q->o.method, "minmax"))
        return 1;
    return qc_quant_derives_percentile(&q->o) &&
           !strcmp(qc_observer_method(src->obs), "percentile");
}

/* The qtensor t's range can be derived from, or -1. */
static int source_of(const qc_quantizer *q, const qtensor *t)
{
    if (t->kind != QT_ACT || t->fixed || t->share_from >= 0 || !t->obs)
        return -1;
    const char *in = qc_quant_sigmoid_input(q->m, t->producer, t->name);
    int s = in ? qc_strmap_get(&q->by_name, in) : -1;
    if (s < 0)
        return -1;
    const qtensor *src = &q->t[s];
    if (src->kind != QT_ACT || !src->obs || src->fixed || src->derived_from >= 0)
        return -1;
    return derivable_method(q, t, src) ? s : -1;
}

int qc_quantizer_pass_opts(qc_quantizer *q, qc_exec_opts *o, qc_err *err)
{
    memset(o, 0, sizeof *o);
    free(q->hooked);
    q->hooked = calloc((size_t)q->n_t + 1, sizeof *q->hooked);
    if (!q->hooked)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        t->derived_from = q->o.external_ranges ? -1 : source_of(q, t);
        if (t->kind == QT_ACT && t->producer >= 0 && t->derived_from < 0)
            q->hooked[n++] = t->name;
    }
    o->fuse = 1;
    o->fuse_exact = 1;          /* elementwise chains only: every value as unfused */
    o->hooked = q->hooked;
    o->n_hooked = n;
    return QC_OK;
}

void qc_quant_derived_seen(qc_quantizer *q)
{
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        if (t->derived_from < 0)
            continue;
        const qtensor *s = &q->t[t->derived_from];
        if (!t->seen_dtype)
            t->seen_dtype = s->seen_dtype;
        if (!t->rank)
            t->rank = s->rank;
    }
}

int64_t qc_quant_obs_count(const qc_quantizer *q, const qtensor *t)
{
    if (t->derived_from >= 0)
        t = &q->t[t->derived_from];
    return t->obs ? qc_observer_count(t->obs) : 0;
}

static qc_range sigmoid_of(qc_range r)
{
    return (qc_range){ qc_exec_sigmoid(r.lo), qc_exec_sigmoid(r.hi) };
}

int qc_quant_derived_ranges(const qc_quantizer *q, const qtensor *t, int seen,
                            qc_range *range, qc_range *observed, qc_err *err)
{
    const qtensor *s = &q->t[t->derived_from];
    qc_range r;
    if (qc_observer_seen(s->obs, &r) != QC_OK)
        return qc_errf(err, QC_EINPUT, "tensor '%s': its input '%s' saw no finite value",
                       t->name, s->name);
    *observed = sigmoid_of(r);
    if (seen || !strcmp(q->o.method, "minmax")) {
        *range = *observed;
        return QC_OK;
    }
    int rc = QC_OK;
    if (s->has_range)
        r = s->range;
    else
        rc = qc_observer_range(s->obs, 0, &r, err);
    if (rc == QC_OK)
        *range = sigmoid_of(r);
    return rc;
}
