/* Derived ranges. A monotone map (a Sigmoid, a Tanh, a Mul or Div by a positive scalar
 * constant, an Add or Sub of a scalar constant) is non-decreasing, so the minimum, the maximum
 * and every quantile of its output are the map of its input's: where the range a method takes
 * from the output is one of those, the input's observation gives it, and the calibration pass
 * need neither observe the output nor compute it. The pass executor is then told which tensors
 * its hook reads (qc_exec_opts.hooked) and fuses the rest: a SiLU (Conv -> Sigmoid ->
 * Mul(conv, sigmoid), every activation of YOLOv8) runs its Sigmoid and Mul as one elementwise
 * step with the same bits (src/exec/ewchain.c) instead of three passes over memory and a
 * third observer. Maps chain: in a tanh GELU (magika's, 0.5 x (1 + tanh(k (x + 0.044715
 * x^3)))) the Mul by k, the Tanh, the Add of 1 and the Mul by 0.5 all derive from the one
 * observed sum, under asymmetric percentile.
 *
 * Which ranges qualify: the observed range (minmax, a gate under mse or entropy, an output
 * path: the input's observed min and max carried through; the same as observing the output
 * up to the map's rounding, none for the float ops, whose rounding is monotone) and the
 * asymmetric percentile (the input's two cut points carried through: the same quantiles, at
 * the resolution of the input's histogram instead of the output's). A scaling (Mul, Div by a
 * positive constant) scales the histogram, |x|'s too, and every histogram method's search is
 * in bin units (calib/mse.c, entropy.c, percentile.c): its output takes the input's range of
 * every histogram method, scaled. Not EMA (a mean of per-sample extremes does not commute
 * with a nonlinear map, and costs nothing), not a symmetric percentile, mse or entropy
 * through a shift or a nonlinear map (|x| or the zero the range must include move), not
 * --params-in or external ranges.
 *
 * Concat outputs are derived too, exactly: a Concat copies its inputs' values, so over the
 * calibration set its output holds the union of what its inputs held, and a histogram
 * (calib/hist.c) depends on the values alone, not on their order or grouping. Merging the
 * inputs' histogram observers after the pass gives, bit for bit, the observer the output would
 * have filled (qc_quant_union_fill), without binning its values again. An input qualifies
 * with a histogram observer of the output's kind that the pass fills; the outputs of one Split
 * qualify together, when every one of them is an input exactly once, through the Split's
 * input (a Split partitions it). YOLOv8's C2f blocks concatenate both halves of a Split and
 * the bottlenecks' outputs: 1.1 M of the 9 M values nudenet's percentile pass bins a sample. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "qc_exec.h"
#include "quant_priv.h"

/* A finite float scalar initializer (positive with `positive`) in *v. */
static int scalar_const(const qc_model *m, const char *name, int positive, float *v)
{
    const qc_tensor *c = name[0] ? qc_model_init(m, name) : NULL;
    if (!c || c->dtype != QC_F32 || qc_tensor_numel(c) != 1)
        return 0;
    *v = *(const float *)c->data;
    return isfinite(*v) && (!positive || *v > 0);
}

/* quant_priv.h */
const char *qc_quant_map_input(const qc_model *m, int producer, const char *name, qc_qmap *map)
{
    static const struct { const char *op; int kind, commutes, positive; } bin[] = {
        { "Mul", QC_QMAP_MUL, 1, 1 }, { "Div", QC_QMAP_DIV, 0, 1 },
        { "Add", QC_QMAP_ADD, 1, 0 }, { "Sub", QC_QMAP_SUB, 0, 0 },
    };
    if (producer < 0)
        return NULL;
    const qc_node *n = &m->nodes[producer];
    if (n->domain[0] || n->n_outputs < 1 || strcmp(n->outputs[0], name) || n->n_inputs < 1 ||
        !n->inputs[0][0])
        return NULL;
    map->c = 0;
    if (n->n_inputs == 1 && (!strcmp(n->op_type, "Sigmoid") || !strcmp(n->op_type, "Tanh"))) {
        map->kind = n->op_type[0] == 'S' ? QC_QMAP_SIGMOID : QC_QMAP_TANH;
        return n->inputs[0];
    }
    if (n->n_inputs != 2)
        return NULL;
    for (size_t b = 0; b < sizeof bin / sizeof *bin; b++) {
        if (strcmp(n->op_type, bin[b].op))
            continue;
        for (int x = 0; x <= bin[b].commutes; x++) {    /* the data operand's position */
            const char *in = n->inputs[x];
            if (in[0] && !qc_model_init(m, in) &&
                scalar_const(m, n->inputs[1 - x], bin[b].positive, &map->c)) {
                map->kind = bin[b].kind;
                return in;
            }
        }
    }
    return NULL;
}

/* quant_priv.h */
int qc_quant_map_derives(const qc_qmap *map, const qc_quant_opts *o)
{
    if (!strcmp(o->method, "minmax"))
        return 1;
    if (map->kind == QC_QMAP_MUL || map->kind == QC_QMAP_DIV)
        return qc_quant_is_hist_method(o->method);
    return !strcmp(o->method, "percentile") && !o->symmetric_act;
}

/* quant_priv.h: the operations of the executor's kernels (ops_binary.c: A op B in float) */
float qc_quant_map_apply(const qc_qmap *map, float x)
{
    switch (map->kind) {
    case QC_QMAP_SIGMOID: return qc_exec_sigmoid(x);
    case QC_QMAP_TANH:    return qc_exec_tanh(x);
    case QC_QMAP_MUL:     return x * map->c;
    case QC_QMAP_DIV:     return x / map->c;
    case QC_QMAP_ADD:     return x + map->c;
    default:              return x - map->c;
    }
}

qc_range qc_quant_map_range(const qc_qmap *map, qc_range r)
{
    return (qc_range){ qc_quant_map_apply(map, r.lo), qc_quant_map_apply(map, r.hi) };
}

static int derivable_method(const qc_quantizer *q, const qtensor *t, const qtensor *src)
{
    if (t->output_path || t->gate)
        return 1;
    return qc_quant_map_derives(&t->map, &q->o) &&
           !strcmp(qc_observer_method(src->obs), q->o.method);
}

/* The qtensor t's range can be derived from (t->map filled in), or -1. */
static int source_of(const qc_quantizer *q, qtensor *t)
{
    if (t->kind != QT_ACT || t->fixed || t->share_from >= 0 || !t->obs)
        return -1;
    const char *in = qc_quant_map_input(q->m, t->producer, t->name, &t->map);
    int s = in ? qc_strmap_get(&q->by_name, in) : -1;
    if (s < 0)
        return -1;
    const qtensor *src = &q->t[s];
    if (src->kind != QT_ACT || !src->obs || src->fixed)
        return -1;
    return derivable_method(q, t, src) ? s : -1;
}

/* Whether every output of Split node k is one of Concat node c's inputs exactly once. */
static int split_whole(const qc_model *m, const qc_node *c, int k)
{
    const qc_node *sp = &m->nodes[k];
    if (strcmp(sp->op_type, "Split") || sp->domain[0] || sp->n_inputs < 1 || !sp->inputs[0][0])
        return 0;
    for (int o = 0; o < sp->n_outputs; o++) {
        int seen = 0;
        for (int i = 0; sp->outputs[o][0] && i < c->n_inputs; i++)
            seen += !strcmp(c->inputs[i], sp->outputs[o]);
        if (seen != 1)
            return 0;
    }
    return 1;
}

/* How many times a nearest Resize by integer factors repeats each input value: opset 11+
 * layout with constant float scales (no sizes), asymmetric coordinates and floor rounding, so
 * output index o along an axis reads input index floor(o / s), and each input index is read
 * by exactly s of the s * n outputs; the product of the factors (at most
 * QC_QUANT_UNION_REPEAT), or 0 for any other Resize. */
static int resize_repeats(const qc_model *m, const qc_node *r)
{
    if (strcmp(r->op_type, "Resize") || r->domain[0] || r->n_inputs < 3 || !r->inputs[0][0] ||
        (r->n_inputs > 3 && r->inputs[3][0]) ||
        strcmp(qc_attr_str(r, "mode", "nearest"), "nearest") ||
        strcmp(qc_attr_str(r, "coordinate_transformation_mode", "half_pixel"), "asymmetric") ||
        strcmp(qc_attr_str(r, "nearest_mode", "round_prefer_floor"), "floor"))
        return 0;
    const qc_tensor *sc = qc_model_init(m, r->inputs[2]);
    if (!sc || sc->dtype != QC_F32 || qc_tensor_numel(sc) < 1)
        return 0;
    int64_t k = 1;
    for (int64_t i = 0; i < qc_tensor_numel(sc); i++) {
        float f = ((const float *)sc->data)[i];
        if (!(f >= 1.0f && f <= (float)QC_QUANT_UNION_REPEAT && f == floorf(f)))
            return 0;
        k *= (int64_t)f;
        if (k > QC_QUANT_UNION_REPEAT)
            return 0;
    }
    return (int)k;
}

/* quant_priv.h */
int qc_quant_union_cap(const qc_model *m)
{
    int most = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].op_type, "Concat") && m->nodes[i].n_inputs > most)
            most = m->nodes[i].n_inputs;
    return most * QC_QUANT_UNION_REPEAT + 1;
}

/* quant_priv.h */
int qc_quant_concat_union(const qc_model *m, int producer, const char *name,
                          int (*peer)(void *user, const char *tensor), void *user,
                          const char **src)
{
    if (producer < 0)
        return 0;
    const qc_node *c = &m->nodes[producer];
    if (strcmp(c->op_type, "Concat") || c->domain[0] || c->n_outputs < 1 ||
        strcmp(c->outputs[0], name))
        return 0;
    int n = 0;
    for (int i = 0; i < c->n_inputs; i++) {
        const char *in = c->inputs[i];
        int k = in[0] ? qc_model_producer(m, in) : -1, rep;
        if (k >= 0 && split_whole(m, c, k) && peer(user, m->nodes[k].inputs[0])) {
            if (!strcmp(in, m->nodes[k].outputs[0]))   /* it stands for the group */
                src[n++] = m->nodes[k].inputs[0];
            continue;
        }
        if (k >= 0 && (rep = resize_repeats(m, &m->nodes[k])) > 0 &&
            peer(user, m->nodes[k].inputs[0])) {
            while (rep-- > 0)                           /* each value rep times */
                src[n++] = m->nodes[k].inputs[0];
            continue;
        }
        if (!in[0] || !peer(user, in))
            return 0;
        src[n++] = in;
    }
    return n;
}

/* A Concat input of qtensor t's may stand for itself: its own histogram observer of t's kind,
 * filled in the pass (not derived, not a Concat output itself, whose own sources would have
 * to be merged first). */
typedef struct peer_ctx {
    const qc_quantizer *q;
    const qtensor      *t;
} peer_ctx;

static int union_peer(void *user, const char *name)
{
    const peer_ctx *p = user;
    int s = qc_strmap_get(&p->q->by_name, name);
    if (s < 0)
        return 0;
    const qtensor *u = &p->q->t[s];
    return u != p->t && u->kind == QT_ACT && u->obs && !u->fixed && u->derived_from < 0 &&
           (u->producer < 0 || strcmp(p->q->m->nodes[u->producer].op_type, "Concat")) &&
           !strcmp(qc_observer_method(u->obs), qc_observer_method(p->t->obs));
}

/* t->union_of and n_union: the qtensors whose observers merge into t's, or none when t is not
 * a Concat output whose inputs all qualify. names: qc_quant_union_cap() entries of scratch. */
static int find_union(const qc_quantizer *q, qtensor *t, const char **names, qc_err *err)
{
    peer_ctx p = { q, t };
    free(t->union_of);
    t->union_of = NULL;
    t->n_union = 0;
    if (t->kind != QT_ACT || !t->obs || t->fixed || t->share_from >= 0 ||
        !qc_quant_is_hist_method(qc_observer_method(t->obs)))
        return QC_OK;
    int n = qc_quant_concat_union(q->m, t->producer, t->name, union_peer, &p, names);
    if (n > 0 && !(t->union_of = malloc((size_t)n * sizeof *t->union_of)))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        t->union_of[i] = qc_strmap_get(&q->by_name, names[i]);
    t->n_union = n;
    return QC_OK;
}

int qc_quant_union_fill(qc_quantizer *q, qc_err *err)
{
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        for (int k = 0; k < t->n_union; k++) {
            const qtensor *s = &q->t[t->union_of[k]];
            int rc = qc_observer_merge(t->obs, s->obs, err);
            if (rc != QC_OK) {
                qc_err_prefix(err, "tensor '%s'", t->name);
                return rc;
            }
        }
        free(t->union_of);
        t->union_of = NULL;
        t->n_union = 0;
    }
    return QC_OK;
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
    }
    const char **names = malloc((size_t)qc_quant_union_cap(q->m) * sizeof *names);
    if (!names)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        int rc = q->o.external_ranges ? QC_OK : find_union(q, t, names, err);
        if (rc != QC_OK) {
            free(names);
            return rc;
        }
        if (t->kind == QT_ACT && t->producer >= 0 && t->derived_from < 0 && !t->n_union)
            q->hooked[n++] = t->name;
    }
    free(names);
    o->fuse = 1;
    o->fuse_exact = 1;          /* elementwise chains only: every value as unfused */
    o->hooked = q->hooked;
    o->n_hooked = n;
    return QC_OK;
}

const qtensor *qc_quant_observed(const qc_quantizer *q, const qtensor *t)
{
    while (t->derived_from >= 0)
        t = &q->t[t->derived_from];
    return t;
}

void qc_quant_derived_seen(qc_quantizer *q)
{
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        const qtensor *s = qc_quant_observed(q, t);
        if (!t->seen_dtype)
            t->seen_dtype = s->seen_dtype;
        if (!t->rank)
            t->rank = s->rank;
    }
}

int64_t qc_quant_obs_count(const qc_quantizer *q, const qtensor *t)
{
    t = qc_quant_observed(q, t);
    return t->obs ? qc_observer_count(t->obs) : 0;
}

/* t's observed range and, with `method`, its method range: its observer's, or its source's
 * carried through its map (the root saw a finite value). */
static int chain_ranges(const qc_quantizer *q, const qtensor *t, int method, qc_range *seen,
                        qc_range *range, qc_err *err)
{
    int rc = QC_OK;
    if (t->derived_from < 0) {
        qc_observer_seen(t->obs, seen);
        if (method && t->has_range)
            *range = t->range;
        else if (method)
            rc = qc_observer_range(t->obs, 0, range, err);
        return rc;
    }
    rc = chain_ranges(q, &q->t[t->derived_from], method, seen, range, err);
    *seen = qc_quant_map_range(&t->map, *seen);
    if (method)
        *range = qc_quant_map_range(&t->map, *range);
    return rc;
}

int qc_quant_derived_ranges(const qc_quantizer *q, const qtensor *t, int seen,
                            qc_range *range, qc_range *observed, qc_err *err)
{
    const qtensor *s = qc_quant_observed(q, t);
    qc_range r;
    if (qc_observer_seen(s->obs, &r) != QC_OK)
        return qc_errf(err, QC_EINPUT, "tensor '%s': its input '%s' saw no finite value",
                       t->name, s->name);
    int method = !seen && strcmp(q->o.method, "minmax");
    int rc = chain_ranges(q, t, method, observed, range, err);
    if (!method)
        *range = *observed;
    return rc;
}
