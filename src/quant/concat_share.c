/* Shared Concat scales: a quantized Concat's inputs take its output's scale and zero point.
 *
 * onnxruntime fuses DequantizeLinear -> Concat -> QuantizeLinear into QLinearConcat, which
 * copies an input whose scale and zero point equal the output's and requantizes every other
 * one (a lookup per byte, and a second rounding). Its quantizer gives each input its own
 * range, so the copy happens only where one input happens to hold the output's min/max (often
 * with minmax, rarely with a histogram method). TFLite's int8 spec asks for one scale across a
 * Concat; so does qcal, with one exception:
 *   - the group: a quantized Concat's output and its quantized activation inputs, each taken
 *     at its source (shared tensors, e.g. a MaxPool output, follow theirs), joined across
 *     Concats that share a tensor (union-find); range = the union of the members' ranges;
 *   - a member read by nodes besides Concats keeps its own range when the union is more
 *     than CONCAT_WIDEN times as wide as it (it would lose more than two bits for those
 *     readers; e.g. a detector's scores beside its box offsets). A member only Concats read
 *     joins when their outputs do: the Concats' readers see the output's scale either way,
 *     and one rounding replaces two.
 * On make peers' data (100 samples, --no-bias-correction), against each input's own range:
 * ddddocr minmax 15.82 -> 19.38 dB, percentile 21.92 -> 22.74 dB, nudenet minmax 26.54 ->
 * 26.86, percentile 27.10 -> 26.77 dB; onnxruntime's 18 QLinearConcat on ddddocr (percentile)
 * 1.00 -> 0.42 ms a run (tools/ort_op_times.py). --no-concat-share keeps every input's own
 * range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "qc_qparams.h"
#include "quant_priv.h"

#define CONCAT_WIDEN 4.0

static int root_of(const qc_quantizer *q, int i)
{
    while (q->t[i].share_from >= 0)
        i = q->t[i].share_from;
    return i;
}

static int find(int *par, int i)
{
    while (par[i] != i)
        i = par[i] = par[par[i]];
    return i;
}

/* qtensor index of tensor `name` if it is a quantized activation, else -1 */
static int member(const qc_quantizer *q, const char *name)
{
    int i = name[0] ? qc_strmap_get(&q->by_name, name) : -1;
    if (i < 0 || q->t[i].kind != QT_ACT || !q->t[i].used || !q->t[i].done || q->t[i].n_ch != 1)
        return -1;
    return root_of(q, i);
}

/* The member that node k's output is if k is a Concat the model quantizes, else -1 */
static int concat_out(const qc_quantizer *q, int k)
{
    const qc_node *nd = &q->m->nodes[k];
    if (strcmp(nd->op_type, "Concat") || nd->domain[0] || !q->nodes[k].final ||
        nd->n_outputs < 1)
        return -1;
    return member(q, nd->outputs[0]);
}

/* Whether member r (a root) is read only by quantized Concats (not a graph output, not moved
 * on: followed[r], see below): -1 if not; else 2 if every such Concat's output joins its group
 * (in[] == 2), 1 if one does not, 3 while one is undecided (in[] == 3). A node reading r
 * twice counts twice, which changes nothing. */
static int concat_only(const qc_quantizer *q, int r, const char *in, const char *followed)
{
    const qtensor *t = &q->t[r];
    if (t->output_path || followed[r])
        return -1;
    int verdict = 2, r_i = 0;
    for (int k; (k = qc_model_reader(q->m, t->name, r_i)) >= 0; r_i++) {
        int o = concat_out(q, k);
        if (o < 0)
            return -1;
        if (in[o] == 1)
            verdict = 1;
        else if (in[o] == 3 && verdict == 2)
            verdict = 3;
    }
    return r_i > 0 ? verdict : -1;
}

static void set_range(qc_quantizer *q, qtensor *t, float lo, float hi)
{
    t->lo[0] = lo;
    t->hi[0] = hi;
    qc_range r = { lo, hi };
    qc_qparams_from_range(r, q->o.symmetric_act, q->act_qmin, q->act_qmax, &t->scale[0],
                          &t->zp[0]);
}

/* Per group (indexed by its union-find root, par[] flattened): the union of the ranges of
 * its members with in[] >= want; lo > hi for a group without one. */
static void group_ranges(const qc_quantizer *q, const int *par, const char *in, int want,
                         float *lo, float *hi)
{
    for (int i = 0; i < q->n_t; i++)
        lo[i] = INFINITY, hi[i] = -INFINITY;
    for (int i = 0; i < q->n_t; i++) {
        if (!in[i] || in[i] < want)
            continue;
        int g = par[i];
        lo[g] = fminf(lo[g], q->t[i].lo[0]);
        hi[g] = fmaxf(hi[g], q->t[i].hi[0]);
    }
}

int qc_quant_share_concat_scales(qc_quantizer *q, qc_err *err)
{
    const qc_model *m = q->m;
    q->n_concat_shared = q->n_concat_own = 0;
    if (!q->o.concat_share)
        return QC_OK;
    size_t n = (size_t)q->n_t + 1;
    int *par = malloc(n * sizeof *par), *joined = calloc(n, sizeof *joined);
    char *in = calloc(n, 1);            /* 1 member, 2 joins (3 undecided) */
    char *followed = calloc(n, 1);      /* a tensor shares its parameters */
    float *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
    int rc = QC_OK;
    if (!par || !joined || !in || !followed || !lo || !hi) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < q->n_t; i++) {
        par[i] = i;
        if (q->t[i].share_from >= 0)
            followed[root_of(q, i)] = 1;    /* moved on: read elsewhere through the mover */
    }
    for (int k = 0; k < m->n_nodes; k++) {
        const qc_node *nd = &m->nodes[k];
        int o = concat_out(q, k);
        if (o < 0)
            continue;
        in[o] = 1;
        for (int j = 0; j < nd->n_inputs; j++) {
            int r = member(q, nd->inputs[j]);
            if (r >= 0) {
                in[r] = 1;
                par[find(par, r)] = find(par, o);
            }
        }
    }
    for (int i = 0; i < q->n_t; i++)
        if (in[i])
            par[i] = find(par, i);
    /* members read elsewhere join if the group's range (of all its members) is at most
     * CONCAT_WIDEN times theirs; then, outputs first (a Concat feeding a Concat), members
     * only Concats read join with their Concats' outputs */
    group_ranges(q, par, in, 1, lo, hi);
    for (int i = 0; i < q->n_t; i++) {
        if (!in[i])
            continue;
        int g = par[i];
        double own = (double)q->t[i].hi[0] - q->t[i].lo[0];
        double all = (double)hi[g] - lo[g];
        in[i] = 3;
        if (concat_only(q, i, in, followed) < 0)
            in[i] = all <= CONCAT_WIDEN * own ? 2 : 1;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < q->n_t; i++) {
            int v = in[i] == 3 ? concat_only(q, i, in, followed) : 3;
            if (v == 1 || v == 2)
                in[i] = (char)v, changed = 1;
        }
    }
    for (int i = 0; i < q->n_t; i++)
        if (in[i] == 3)
            in[i] = 1;
    /* the shared range: the union of the members that join; a group keeps its members' own
     * ranges unless two or more join */
    group_ranges(q, par, in, 2, lo, hi);
    for (int i = 0; i < q->n_t; i++)
        if (in[i] == 2)
            joined[par[i]]++;
    for (int i = 0; i < q->n_t; i++) {
        if (!in[i])
            continue;
        int g = par[i];
        if (in[i] == 2 && joined[g] >= 2) {
            if (q->t[i].concat_rep < 0) {       /* a second build finds it shared */
                q->t[i].own_lo = q->t[i].lo[0];
                q->t[i].own_hi = q->t[i].hi[0];
            }
            q->t[i].concat_rep = g;
            set_range(q, &q->t[i], lo[g], hi[g]);
            q->n_concat_shared++;
        } else if (joined[g] >= 2) {
            q->n_concat_own++;
        }
    }
    /* tensors that share a member's parameters follow it */
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        if (t->kind != QT_ACT || !t->used || !t->done || t->share_from < 0 || t->n_ch != 1)
            continue;
        const qtensor *s = &q->t[root_of(q, i)];
        if (s->concat_rep >= 0) {
            t->lo[0] = s->lo[0];
            t->hi[0] = s->hi[0];
            t->scale[0] = s->scale[0];
            t->zp[0] = s->zp[0];
        }
    }
out:
    free(par), free(joined), free(in), free(followed), free(lo), free(hi);
    return rc;
}
