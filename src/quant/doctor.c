/* calibrate doctor, the passes: one float pass over the calibration data feeding the quantizer
 * and the statistics, the build, and the evaluation of the quantized model against the float
 * one. The checks that turn all this into findings are in doctor_checks.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "doctor_priv.h"
#include "qc_prepare.h"

/* ---- statistics ---- */

static void stat_update(qc_doctor *d, dstat *s, const qc_tensor *t)
{
    if (t->dtype != QC_F32)
        return;
    int64_t n = qc_tensor_numel(t);
    const float *x = t->data;
    float mn, mx;
    s->f32 = 1;
    s->rank = t->ndim;
    if (n <= 0)
        return;
    int64_t bad = qc_obs_scan(x, n, &mn, &mx);
    s->nonfinite += bad;
    s->count += n - bad;
    if (n - bad > 0) {
        int h = d->n_used & 1;
        s->lo = mn < s->lo ? mn : s->lo;
        s->hi = mx > s->hi ? mx : s->hi;
        s->hlo[h] = mn < s->hlo[h] ? mn : s->hlo[h];
        s->hhi[h] = mx > s->hhi[h] ? mx : s->hhi[h];
    }
    if (!s->hist && !(s->hist = calloc(DR_HBINS, sizeof *s->hist)))
        return;                         /* statistics only: the checks treat it as absent */
    /* an odd stride so that the samples do not line up with one channel of a layout */
    int64_t stride = n > DR_HSAMPLES ? (n / DR_HSAMPLES) | 1 : 1;
    for (int64_t i = 0; i < n; i += stride) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        s->hist[b >> 22]++;
        s->hist_n++;
    }
}

static void stat_init(dstat *s, const char *name, int producer)
{
    s->name = name;
    s->producer = producer;
    s->lo = s->hlo[0] = s->hlo[1] = INFINITY;
    s->hi = s->hhi[0] = s->hhi[1] = -INFINITY;
}

double qc_dr_abs_quantile(const dstat *s, double p)
{
    if (!s->hist || s->hist_n == 0)
        return NAN;
    /* |x| bins: the positive and the negative half of the table share magnitudes */
    enum { HALF = DR_HBINS / 2 };
    int64_t total = 0;
    for (int b = 0; b < HALF - 2; b++)      /* the last two bins of each half: NaN/Inf */
        total += (int64_t)s->hist[b] + s->hist[b + HALF];
    if (total == 0)
        return NAN;
    int64_t want = (int64_t)ceil(p * (double)total), acc = 0;
    for (int b = 0; b < HALF - 2; b++) {
        acc += (int64_t)s->hist[b] + s->hist[b + HALF];
        if (acc >= want) {
            uint32_t up = (uint32_t)(b + 1) << 22;  /* the next bin's first bit pattern */
            float f;
            memcpy(&f, &up, sizeof f);
            return f;
        }
    }
    return (double)fmaxf(fabsf(s->lo), fabsf(s->hi));
}

const dstat *qc_dr_stat(const qc_doctor *d, const char *name)
{
    int i = qc_strmap_get(&d->by_name, name);
    return i >= 0 ? &d->ts[i] : NULL;
}

void qc_dr_dtype_range(int dtype, double *lo, double *hi)
{
    switch (dtype) {
    case QC_U8: *lo = 0; *hi = 255; break;
    case QC_I8: *lo = -128; *hi = 127; break;
    case QC_U16: *lo = 0; *hi = 65535; break;
    case QC_I16: *lo = -32768; *hi = 32767; break;
    default: *lo = -2147483648.0; *hi = 2147483647.0; break;
    }
}

/* ---- the calibration pass ---- */

static int calib_hook(void *user, const qc_node *node, int node_index,
                      const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    qc_doctor *d = user;
    int64_t bad_before = 0, bad_after = 0;
    for (int k = 0; k < n_outs && k < d->m->nodes[node_index].n_outputs; k++) {
        int t = d->node_ts[d->node_first[node_index] + k];
        if (t < 0)
            continue;
        bad_before += d->ts[t].nonfinite;
        stat_update(d, &d->ts[t], outs[k]);
        bad_after += d->ts[t].nonfinite;
    }
    /* nodes run in topological order and samples with NaN inputs were skipped: the first
     * node of the pass that produces NaN/Inf is where it starts */
    if (bad_after > bad_before && d->nan_node < 0) {
        d->nan_node = node_index;
        d->nan_count = bad_after - bad_before;
        snprintf(d->nan_sample, sizeof d->nan_sample, "%s", d->cur_sample ? d->cur_sample : "");
    }
    if (!d->set_ranges)
        return qc_quantizer_observe(d->q, node, node_index, outs, n_outs, err);
    return QC_OK;
}

int qc_doctor_new(qc_doctor **out, const qc_model *m, const qc_doctor_opts *o, qc_err *err)
{
    int rc;
    *out = NULL;
    qc_doctor *d = calloc(1, sizeof *d);
    if (!d)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    d->m = m;
    d->o = *o;
    d->nan_node = -1;
    d->fix_layer = d->fix_node = -1;
    d->set_ranges = !strcmp(o->q.method, "minmax");
    int cap = m->n_inputs;
    for (int i = 0; i < m->n_nodes; i++)
        cap += m->nodes[i].n_outputs;
    d->ts = calloc((size_t)cap + 1, sizeof *d->ts);
    d->node_ts = malloc(((size_t)cap + 1) * sizeof *d->node_ts);
    d->node_first = calloc((size_t)m->n_nodes + 1, sizeof *d->node_first);
    d->in = calloc((size_t)m->n_inputs + 1, sizeof *d->in);
    d->outs = calloc((size_t)m->n_outputs + 1, sizeof *d->outs);
    if (!d->ts || !d->node_ts || !d->node_first || !d->in || !d->outs ||
        qc_strmap_init(&d->by_name, (size_t)cap + 16) != 0 ||
        qc_strmap_init(&d->layer_by_name, (size_t)cap + 16) != 0) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        stat_init(&d->ts[d->n_ts], m->inputs[i].name, -1);
        qc_strmap_put(&d->by_name, m->inputs[i].name, d->n_ts++);
        d->in[i].lo = INFINITY;
        d->in[i].hi = -INFINITY;
    }
    int pos = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        d->node_first[i] = pos;
        for (int k = 0; k < m->nodes[i].n_outputs; k++) {
            const char *nm = m->nodes[i].outputs[k];
            d->node_ts[pos++] = nm[0] ? d->n_ts : -1;
            if (nm[0]) {
                stat_init(&d->ts[d->n_ts], nm, i);
                if (qc_strmap_put(&d->by_name, nm, d->n_ts++) != 0) {
                    rc = qc_errf(err, QC_ENOMEM, "out of memory");
                    goto fail;
                }
            }
        }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        d->outs[i].name = m->outputs[i].name;
        d->outs[i].map[0] = d->outs[i].map[1] = -1;
        d->outs[i].ref_lo = d->outs[i].got_lo = INFINITY;
        d->outs[i].ref_hi = d->outs[i].got_hi = -INFINITY;
    }
    qc_quant_opts qo = o->q;
    if ((rc = qc_quantizer_new(&d->q, m, &qo, err)) != QC_OK ||
        (rc = qc_exec_new(&d->x, m, NULL, err)) != QC_OK)
        goto fail;
    qc_exec_set_hook(d->x, calib_hook, d);
    *out = d;
    return QC_OK;
fail:
    qc_doctor_free(d);
    return rc;
}

void qc_doctor_free(qc_doctor *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n_ts; i++)
        free(d->ts[i].hist);
    free(d->ts);
    free(d->node_ts);
    free(d->node_first);
    free(d->in);
    free(d->outs);
    qc_strmap_free(&d->by_name);
    qc_strmap_free(&d->layer_by_name);
    qc_strmap_free(&d->given_nodes);
    qc_quantizer_free(d->q);
    qc_quantizer_free(d->q2);
    qc_exec_free(d->x);
    qc_exec_free(d->fx);
    for (int v = 0; v < 2; v++) {
        qc_exec_free(d->qx[v]);
        qc_model_free(d->em[v]);
    }
    qc_model_free(d->qm);
    qc_model_free(d->qm2);
    free(d->fix_exclude);
    free(d->fix_nodes);
    free(d->cache);
    free(d->node_layer);
    free(d->layers);
    free(d->f);
    free(d);
}

/* Per-channel sums of a 4-D input with 3 channels (dim 1, else dim 3): a dataset exported
 * with the other channel order moves the channel means, not the whole-input moments. */
static void channel_stats(dinput *s, const qc_tensor *t, int eval)
{
    int axis = t->ndim == 4 && t->dims[1] == 3 ? 1 : t->ndim == 4 && t->dims[3] == 3 ? 3 : -1;
    if (s->chan_axis == 0)
        s->chan_axis = axis;
    if (s->chan_axis <= 0 || axis != s->chan_axis)
        return;
    const float *x = t->data;
    int64_t inner = axis == 1 ? t->dims[2] * t->dims[3] : 1;
    int64_t outer = t->dims[0] * (axis == 1 ? 1 : t->dims[1] * t->dims[2]);
    for (int64_t o = 0; o < outer; o++)
        for (int c = 0; c < 3; c++) {
            const float *p = x + (o * 3 + c) * inner;
            double sum = 0, sum2 = 0;
            for (int64_t i = 0; i < inner; i++) {
                sum += p[i];
                sum2 += (double)p[i] * p[i];
            }
            s->csum[eval][c] += sum;
            s->csum2[eval][c] += sum2;
        }
    s->cn[eval] += outer * inner;
}

/* Sum, sum of squares, extremes; whether every value is an integer (strided), whether the
 * sample is one constant. */
static void input_stats(dinput *s, const qc_tensor *t, int eval)
{
    int64_t n = qc_tensor_numel(t);
    const float *x = t->data;
    if (t->dtype != QC_F32 || n <= 0)
        return;
    channel_stats(s, t, eval);
    double sum = 0, sum2 = 0;
    float mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        sum += x[i];
        sum2 += (double)x[i] * x[i];
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    if (eval) {
        s->esum += sum;
        s->esum2 += sum2;
        s->en += n;
        s->esamples++;
        return;
    }
    s->sum += sum;
    s->sum2 += sum2;
    s->n += n;
    s->samples++;
    s->lo = mn < s->lo ? mn : s->lo;
    s->hi = mx > s->hi ? mx : s->hi;
    if (mn == mx) {
        s->const_samples++;
        s->const_value = mn;
    }
    int64_t stride = n > 4096 ? (n / 4096) | 1 : 1;
    for (int64_t i = 0; i < n && !s->nonint; i += stride)
        s->nonint = x[i] != floorf(x[i]);
}

int qc_doctor_calib_sample(qc_doctor *d, const char *file, const qc_tensor *in, int n,
                           qc_err *err)
{
    const qc_model *m = d->m;
    int64_t bad = 0;
    for (int i = 0; i < n && i < m->n_inputs; i++)
        if (in[i].dtype == QC_F32)
            bad += qc_tensors_nonfinite(&in[i], 1);
    if (bad) {
        if (d->n_nf < (int)(sizeof d->nf / sizeof d->nf[0])) {
            snprintf(d->nf[d->n_nf].name, sizeof d->nf[0].name, "%s", file);
            d->nf[d->n_nf++].count = bad;
        }
        d->nf_total += bad;
        d->n_skipped++;
        return 1;
    }
    d->cur_sample = file;
    for (int i = 0; i < n && i < m->n_inputs; i++) {
        input_stats(&d->in[i], &in[i], 0);
        stat_update(d, &d->ts[i], &in[i]);
    }
    int rc = QC_OK;
    if (!d->set_ranges)
        rc = qc_quantizer_observe_inputs(d->q, in, n, err);
    if (rc == QC_OK)
        rc = qc_exec_run(d->x, in, n, err);
    if (rc != QC_OK)
        qc_err_prefix(err, "%s", file);
    d->cur_sample = NULL;
    d->n_used++;
    return rc;
}

/* ---- build and evaluation ---- */

static int set_ranges(qc_doctor *d, qc_quantizer *q)
{
    for (int i = 0; i < d->n_ts; i++) {
        const dstat *s = &d->ts[i];
        if (!s->f32 || s->count == 0)
            continue;
        qc_range r = { s->lo, s->hi };
        qc_quantizer_set_range(q, s->name, r, r, s->rank);
    }
    return QC_OK;
}

/* Layers of em: DequantizeLinear(QuantizeLinear(T)) for every float tensor T we have
 * statistics of, with the clipping bounds of that QuantizeLinear. */
static int map_layers(qc_doctor *d, const qc_model *em, qc_err *err)
{
    qc_strmap q_out;
    int rc = QC_OK;
    d->layers = calloc((size_t)em->n_nodes + 1, sizeof *d->layers);
    d->node_layer = malloc(((size_t)em->n_nodes + 1) * sizeof *d->node_layer);
    if (!d->layers || !d->node_layer || qc_strmap_init(&q_out, (size_t)em->n_nodes + 16) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int j = 0; j < em->n_nodes && rc == QC_OK; j++) {
        const qc_node *nd = &em->nodes[j];
        int t;
        if (strcmp(nd->op_type, "QuantizeLinear") || nd->n_inputs < 2 || nd->n_outputs < 1 ||
            (t = qc_strmap_get(&d->by_name, nd->inputs[0])) < 0 ||
            qc_strmap_get(&d->layer_by_name, nd->inputs[0]) >= 0)
            continue;
        dlayer *l = &d->layers[d->n_layers];
        const qc_tensor *sc = qc_model_init(em, nd->inputs[1]);
        const qc_tensor *zp = nd->n_inputs > 2 && nd->inputs[2][0]
                            ? qc_model_init(em, nd->inputs[2]) : NULL;
        double qlo = 0, qhi = 255;
        l->name = d->ts[t].name;
        l->ts = t;
        l->clip_lo = -INFINITY;
        l->clip_hi = INFINITY;
        l->sat_lo = -INFINITY;
        l->sat_hi = INFINITY;
        if (sc && sc->dtype == QC_F32 && qc_tensor_numel(sc) == 1) {
            double z = zp ? (double)qc_tensor_get_i(zp, 0) : 0;
            if (zp)
                qc_dr_dtype_range(zp->dtype, &qlo, &qhi);
            double step = ((float *)sc->data)[0];
            l->clip_lo = (float)((qlo - z) * step);
            l->clip_hi = (float)((qhi - z) * step);
            l->sat_lo = (float)((qlo - z - 0.5) * step);
            l->sat_hi = (float)((qhi - z + 0.5) * step);
        }
        if (qc_strmap_put(&d->layer_by_name, l->name, d->n_layers) != 0 ||
            qc_strmap_put(&q_out, nd->outputs[0], d->n_layers) != 0)
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
        d->n_layers++;
    }
    for (int j = 0; j < em->n_nodes; j++) {
        const qc_node *nd = &em->nodes[j];
        d->node_layer[j] = -1;
        if (!strcmp(nd->op_type, "DequantizeLinear") && nd->n_inputs > 0)
            d->node_layer[j] = qc_strmap_get(&q_out, nd->inputs[0]);
    }
    qc_strmap_free(&q_out);
    return rc;
}

static int layer_hook(void *user, const qc_node *node, int node_index,
                      const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    qc_doctor *d = user;
    int l = d->node_layer[node_index];
    (void)node;
    (void)err;
    if (l < 0 || n_outs < 1)
        return QC_OK;
    dlayer *ly = &d->layers[l];
    const qc_tensor *ref = qc_exec_value(d->fx, ly->name), *got = outs[0];
    if (!ref || ref->dtype != QC_F32 || got->dtype != QC_F32 ||
        qc_tensor_numel(ref) != qc_tensor_numel(got))
        return QC_OK;
    qc_layerstat_add(&ly->st, ref->data, got->data, qc_tensor_numel(ref), ly->sat_lo,
                     ly->sat_hi);
    return QC_OK;
}

static int open_variant(qc_doctor *d, int v, const qc_model *qm, qc_err *err)
{
    int rc = qc_prepare(qm, &d->em[v], NULL, err);
    if (rc == QC_OK && v == 0)
        rc = map_layers(d, d->em[0], err);
    if (rc == QC_OK)
        rc = qc_exec_new(&d->qx[v], d->em[v], NULL, err);
    if (rc != QC_OK)
        return rc;
    if (v == 0)
        qc_exec_set_hook(d->qx[0], layer_hook, d);
    for (int i = 0; i < d->m->n_outputs; i++)
        for (int k = 0; k < d->em[v]->n_outputs; k++)
            if (!strcmp(d->em[v]->outputs[k].name, d->outs[i].name))
                d->outs[i].map[v] = k;
    return QC_OK;
}

int qc_doctor_build(qc_doctor *d, const qc_model *given, qc_err *err)
{
    int rc = QC_OK;
    if (d->set_ranges)
        set_ranges(d, d->q);
    if (d->n_used > 0 && (rc = qc_quantizer_build(d->q, &d->qm, err)) != QC_OK)
        return rc;
    d->given = given;
    if (given && qc_strmap_init(&d->given_nodes, (size_t)given->n_nodes + 16) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; given && i < given->n_nodes; i++)     /* the first of a repeated name */
        if (qc_strmap_get(&d->given_nodes, given->nodes[i].name) < 0 &&
            qc_strmap_put(&d->given_nodes, given->nodes[i].name, i) != 0)
            return qc_errf(err, QC_ENOMEM, "out of memory");
    const qc_model *qm = given ? given : d->qm;
    if (!qm)
        return QC_OK;
    qc_exec_opts fo = { .keep_all = 1 };
    if ((rc = qc_exec_new(&d->fx, d->m, &fo, err)) != QC_OK ||
        (rc = open_variant(d, 0, qm, err)) != QC_OK)
        qc_err_prefix(err, "quantized model");
    return rc;
}

void qc_doctor_eval_input(qc_doctor *d, const qc_tensor *in, int n)
{
    for (int i = 0; i < n && i < d->m->n_inputs; i++)
        if (qc_tensors_nonfinite(&in[i], 1) == 0)
            input_stats(&d->in[i], &in[i], 1);
    d->n_eval_inputs++;
}

/* Keeps the float outputs of the samples the fix pass will see again, so that pass runs the
 * quantized model only. */
static void cache_put(qc_doctor *d, const float *x, int64_t len)
{
    if (d->cache_bad)
        return;
    if (d->cache_len + (size_t)len > d->cache_cap) {
        size_t cap = (d->cache_len + (size_t)len) * 2;
        float *c = cap <= DR_CACHE_MAX ? realloc(d->cache, cap * sizeof *c) : NULL;
        if (!c) {
            d->cache_bad = 1;
            return;
        }
        d->cache = c;
        d->cache_cap = cap;
    }
    memcpy(d->cache + d->cache_len, x, (size_t)len * sizeof *x);
    d->cache_len += (size_t)len;
}

int qc_doctor_eval_sample(qc_doctor *d, const qc_tensor *in, int n, qc_err *err)
{
    int v = d->variant, rc;
    int cached = v == 1 && !d->cache_bad;
    if (!d->qx[v] || qc_tensors_nonfinite(in, n) > 0)
        return 1;
    if (!cached && (rc = qc_exec_run(d->fx, in, n, err)) != QC_OK)
        return rc;
    if ((rc = qc_exec_run(d->qx[v], in, n, err)) != QC_OK) {
        qc_err_prefix(err, "quantized model");
        return rc;
    }
    for (int i = 0; i < d->m->n_outputs; i++) {
        dout *o = &d->outs[i];
        const qc_tensor *ref = qc_exec_output(d->fx, i);
        const qc_tensor *got = o->map[v] >= 0 ? qc_exec_output(d->qx[v], o->map[v]) : NULL;
        const float *rd;
        if (cached) {
            /* same samples, same order: the outputs written by the first pass */
            if (!got || got->dtype != QC_F32 || o->cache_len != qc_tensor_numel(got) ||
                d->cache_pos + (size_t)o->cache_len > d->cache_len)
                continue;
            rd = d->cache + d->cache_pos;
            d->cache_pos += (size_t)o->cache_len;
        } else {
            if (!ref || !got || ref->dtype != QC_F32 || got->dtype != QC_F32 ||
                qc_tensor_numel(ref) != qc_tensor_numel(got))
                continue;
            rd = ref->data;
            if (v == 0 && d->n_evaluated < DR_FIX_SAMPLES) {
                o->cache_len = qc_tensor_numel(ref);
                cache_put(d, rd, o->cache_len);
            }
        }
        int64_t len = qc_tensor_numel(got);
        qc_errstat_add(&o->st[v], rd, got->data, len);
        if (got->ndim == 2 && got->dims[1] > 1) {
            o->classifier = 1;
            qc_errstat_add_top1(&o->st[v], rd, got->data, got->dims[0], got->dims[1]);
        }
        if (v == 0) {
            float a, b;
            qc_obs_scan(rd, len, &a, &b);
            o->ref_lo = fminf(o->ref_lo, a);
            o->ref_hi = fmaxf(o->ref_hi, b);
            qc_obs_scan(got->data, len, &a, &b);
            o->got_lo = fminf(o->got_lo, a);
            o->got_hi = fmaxf(o->got_hi, b);
        }
    }
    if (v == 0)
        d->n_evaluated++;
    else
        d->n_evaluated_fix++;
    return QC_OK;
}

/* The layer where the error jumps: the first in graph order whose SQNR is 10 dB or more below
 * that of the layers feeding its producer and below JUMP_BELOW_DB (every first layer loses
 * 10-20 dB to its int8 weights; that alone is no problem). */
#define JUMP_BELOW_DB 25.0
static int jump_layer(const qc_doctor *d, double *inherited, double *own)
{
    int best = -1;
    double best_drop = 10.0;
    for (int l = 0; l < d->n_layers; l++) {
        const dlayer *ly = &d->layers[l];
        double s = qc_layerstat_sqnr_db(&ly->st);
        int p = d->ts[ly->ts].producer;
        if (ly->st.n == 0 || !(s < JUMP_BELOW_DB) || p < 0)
            continue;
        double in = 60.0;
        const qc_node *nd = &d->m->nodes[p];
        for (int k = 0; k < nd->n_inputs; k++) {
            int li = nd->inputs[k][0] ? qc_strmap_get(&d->layer_by_name, nd->inputs[k]) : -1;
            if (li >= 0 && d->layers[li].st.n > 0) {
                double si = qc_layerstat_sqnr_db(&d->layers[li].st);
                in = si < in ? si : in;
            }
        }
        double drop = (in > 60.0 ? 60.0 : in) - (isfinite(s) ? s : -60.0);
        if (drop >= best_drop) {
            best = l;
            *inherited = in;
            *own = s;
            break;                      /* the first one in graph order */
        }
    }
    return best;
}

int qc_doctor_next_pass(qc_doctor *d, qc_err *err)
{
    double in, own;
    int rc;
    d->passes_done++;
    if (d->passes_done > 1 || d->n_evaluated == 0)
        return 0;
    int l = jump_layer(d, &in, &own);
    if (l < 0)
        return 0;
    d->fix_layer = l;
    d->fix_node = d->ts[d->layers[l].ts].producer;
    if (d->given || !d->qm)
        return 0;                       /* a given model cannot be rebuilt without the node */
    const char *node = d->m->nodes[d->fix_node].name;
    const char *prev = d->o.q.exclude;
    /* the tensor stays float only if neither its producer nor any reader is quantized */
    size_t len = strlen(node) + (prev ? strlen(prev) : 0) + 2, pos = 0;
    for (int i = 0; i < d->m->n_nodes; i++)
        for (int k = 0; k < d->m->nodes[i].n_inputs; k++)
            if (!strcmp(d->m->nodes[i].inputs[k], d->layers[l].name))
                len += strlen(d->m->nodes[i].name) + 1;
    if (!(d->fix_exclude = malloc(len)) || !(d->fix_nodes = malloc(len)))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    pos = (size_t)snprintf(d->fix_nodes, len, "%s", node);
    for (int i = 0; i < d->m->n_nodes; i++) {
        const qc_node *nd = &d->m->nodes[i];
        int reads = 0;
        for (int k = 0; k < nd->n_inputs; k++)
            reads |= !strcmp(nd->inputs[k], d->layers[l].name);
        if (reads && i != d->fix_node)
            pos += (size_t)snprintf(d->fix_nodes + pos, len - pos, ",%s", nd->name);
    }
    snprintf(d->fix_exclude, len, "%s%s%s", prev ? prev : "", prev && prev[0] ? "," : "",
             d->fix_nodes);
    qc_quant_opts qo = d->o.q;
    qo.external_ranges = 1;             /* ranges come from the main quantizer */
    qo.exclude = d->fix_exclude;
    if ((rc = qc_quantizer_new(&d->q2, d->m, &qo, err)) != QC_OK)
        return rc;
    qc_qtensor_info info;
    for (int i = 0; i < qc_quantizer_n_tensors(d->q); i++) {
        if (!qc_quantizer_tensor(d->q, i, &info) || strcmp(info.kind, "activation") ||
            info.shared_with)
            continue;
        qc_range r = { info.lo[0], info.hi[0] }, seen = { info.obs_lo[0], info.obs_hi[0] };
        qc_quantizer_set_range(d->q2, info.name, r, seen, info.rank);
    }
    /* tensors the main quantizer did not quantize but the fix variant may (none expected):
     * the statistics give them their minmax range */
    for (int i = 0; i < d->n_ts; i++) {
        const dstat *s = &d->ts[i];
        int found = qc_quantizer_tensor(d->q, qc_quantizer_find(d->q, s->name), &info);
        if (!found && s->f32 && s->count > 0) {
            qc_range r = { s->lo, s->hi };
            qc_quantizer_set_range(d->q2, s->name, r, r, s->rank);
        }
    }
    if ((rc = qc_quantizer_build(d->q2, &d->qm2, err)) != QC_OK ||
        (rc = open_variant(d, 1, d->qm2, err)) != QC_OK) {
        qc_err_prefix(err, "quantized model without '%s'", d->fix_nodes);
        return rc;
    }
    d->variant = 1;
    d->cache_pos = 0;
    return d->n_evaluated < DR_FIX_SAMPLES ? d->n_evaluated : DR_FIX_SAMPLES;
}

/* ---- findings ---- */

qc_finding *qc_dr_add(qc_doctor *d, int sev, const char *check, double impact,
                      const char *subject, const char *fix, const char *fmt, ...)
{
    if (d->n_f == d->cap_f) {
        int cap = d->cap_f ? d->cap_f * 2 : 32;
        qc_finding *f = realloc(d->f, (size_t)cap * sizeof *f);
        if (!f)
            return NULL;
        d->f = f;
        d->cap_f = cap;
    }
    qc_finding *f = &d->f[d->n_f++];
    memset(f, 0, sizeof *f);
    f->severity = sev;
    f->check = check;
    f->impact = impact;
    snprintf(f->subject, sizeof f->subject, "%s", subject ? subject : "");
    snprintf(f->fix, sizeof f->fix, "%s", fix ? fix : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->evidence, sizeof f->evidence, fmt, ap);
    va_end(ap);
    return f;
}

static int cmp_finding(const void *a, const void *b)
{
    const qc_finding *x = a, *y = b;
    if (x->severity != y->severity)
        return y->severity - x->severity;
    if (x->impact != y->impact)
        return y->impact > x->impact ? 1 : -1;
    return strcmp(x->subject, y->subject);
}

int qc_doctor_finish(qc_doctor *d, qc_err *err)
{
    int rc = qc_dr_checks(d, err);
    if (rc == QC_OK && d->n_f > 1)
        qsort(d->f, (size_t)d->n_f, sizeof *d->f, cmp_finding);
    return rc;
}

int qc_doctor_n_findings(const qc_doctor *d)
{
    return d->n_f;
}

const qc_finding *qc_doctor_finding(const qc_doctor *d, int i)
{
    return i >= 0 && i < d->n_f ? &d->f[i] : NULL;
}

const char *qc_doctor_severity_name(int severity)
{
    return severity == QC_SEV_ERROR ? "error" : severity == QC_SEV_WARNING ? "warning" : "info";
}

const qc_model *qc_doctor_built_model(const qc_doctor *d)
{
    return d->given ? NULL : d->qm;
}

void qc_doctor_get_summary(const qc_doctor *d, qc_doctor_summary *s)
{
    const char *nm, *op, *why;
    memset(s, 0, sizeof *s);
    s->n_calib = d->n_used;
    s->n_skipped = d->n_skipped;
    s->n_eval_inputs = d->n_eval_inputs;
    s->n_evaluated = d->n_evaluated;
    s->n_quantized_nodes = d->qm ? qc_quantizer_n_quantized_nodes(d->q) : 0;
    while (d->qm && qc_quantizer_float_node(d->q, s->n_float_nodes, &nm, &op, &why))
        s->n_float_nodes++;
    s->n_layers = d->n_layers;
    s->quantized = d->given ? d->given : d->qm;
    s->output_sqnr_db = NAN;
    s->top1 = NAN;
    qc_errstat top = { 0 };
    for (int i = 0; i < d->m->n_outputs && d->n_evaluated > 0; i++) {
        const dout *o = &d->outs[i];
        if (o->st[0].n == 0 && o->st[0].nonfinite == 0)
            continue;
        double q = qc_errstat_sqnr_db(&o->st[0]);
        if (isnan(s->output_sqnr_db) || q < s->output_sqnr_db)
            s->output_sqnr_db = q;
        top.top1_rows += o->st[0].top1_rows;
        top.top1_agree += o->st[0].top1_agree;
    }
    s->top1 = qc_errstat_top1(&top);
}
