/* --method auto: each activation's range chosen on its own calibration histogram, each weight
 * per channel or per tensor by its own quantization error (the cost model is in
 * qc_compare.h). The output confirms the choice: auto is one more candidate of the
 * evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compare_priv.h"
#include "hist.h"
#include "qc_qparams.h"
#include "quant_priv.h"

typedef struct auto_state {
    qc_cand     *opts;          /* the single-method ranges chosen among */
    int          n_opts;
    int         *opt_group;     /* observer group of each option */
    int         *opt_tensors;
    int          n_t;           /* c->n_t once ranges are chosen */
    const char **names;
    int         *choice;
    double      *cost;
    qc_range    *rng;           /* chosen range per tensor */
    int          n_weights, n_pt;
    const char **pt_weights;    /* weights auto quantizes per tensor */
} auto_state;

/* QuantizeLinear saturates at the dtype's ends (symmetric and reduced ranges only shape the
 * scale). */
static void sat_range(int dtype, double *lo, double *hi)
{
    switch (dtype) {
    case QC_U8: *lo = 0; *hi = 255; break;
    case QC_I8: *lo = -128; *hi = 127; break;
    case QC_U16: *lo = 0; *hi = 65535; break;
    case QC_I16: *lo = -32768; *hi = 32767; break;
    default: *lo = -2147483648.0; *hi = 2147483647.0; break;
    }
}

/* Expected squared error per value of quantize-dequantize with range r, over the signed
 * histogram h: values inside the representable interval [L, H] cost step^2 / 12, values
 * outside cost clip_w times their squared distance to it; a bin's values are spread
 * uniformly over the part of the bin inside the observed [min, max]. */
static double local_cost(const qc_hist *h, qc_range r, const qc_quant_opts *o, double clip_w)
{
    int qmin, qmax, first, last;
    float s;
    int32_t zp;
    double dlo, dhi;
    if (qc_qrange(o->act_dtype, o->symmetric_act, o->reduce_range, &qmin, &qmax) != QC_OK ||
        qc_qparams_from_range(r, o->symmetric_act, qmin, qmax, &s, &zp) != QC_OK ||
        h->total == 0)
        return INFINITY;
    sat_range(o->act_dtype, &dlo, &dhi);
    double L = (dlo - zp) * (double)s, H = (dhi - zp) * (double)s;
    double inside = 0, clip = 0;
    qc_hist_used(h, &first, &last);
    for (int b = first; b <= last; b++) {
        double c = (double)h->counts[b];
        if (c == 0)
            continue;
        double a = fmax(qc_hist_edge(h, b), (double)h->lo);
        double e = fmin(qc_hist_edge(h, b + 1), (double)h->hi);
        if (e <= a) {                       /* all of the bin's values at one point */
            if (a < L)
                clip += c * (L - a) * (L - a);
            else if (a > H)
                clip += c * (a - H) * (a - H);
            else
                inside += c;
            continue;
        }
        double d = c / (e - a), lo_in = fmax(a, L), hi_in = fmin(e, H);
        if (hi_in > lo_in)
            inside += d * (hi_in - lo_in);
        if (a < L) {
            double u = fmin(e, L);
            clip += d * (pow(L - a, 3) - pow(L - u, 3)) / 3.0;
        }
        if (e > H) {
            double u = fmax(a, H);
            clip += d * (pow(e - H, 3) - pow(u - H, 3)) / 3.0;
        }
    }
    return (inside * (double)s * (double)s / 12.0 + clip_w * clip) / (double)h->total;
}

/* Sum of squared quantize-dequantize errors of weight w, per channel along axis or per
 * tensor (axis -1), with the quantizer's weight convention (min/max range, qparams). */
static int weight_err(const qc_tensor *w, int axis, int sym, int qmin, int qmax, double *out,
                      qc_err *err)
{
    int64_t n = qc_tensor_numel(w), ch = axis >= 0 ? w->dims[axis] : 1, inner = 1;
    for (int d = axis + 1; axis >= 0 && d < w->ndim; d++)
        inner *= w->dims[d];
    float *lo = malloc((size_t)ch * sizeof *lo), *hi = malloc((size_t)ch * sizeof *hi);
    float *sc = malloc((size_t)ch * sizeof *sc);
    int32_t *zp = malloc((size_t)ch * sizeof *zp);
    const float *x = w->data;
    int rc = QC_OK;
    if (!lo || !hi || !sc || !zp) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto done;
    }
    if (axis < 0)
        inner = n;
    /* [outer][ch][inner], walked a channel's run of inner values at a time (as const_ranges
     * and quantize_const do), so no index arithmetic per value */
    for (int64_t c = 0; c < ch; c++)
        lo[c] = hi[c] = 0;          /* the range always includes 0 */
    (void)qc_quant_channel_minmax(x, n, inner, ch, lo, hi);  /* not this function's check */
    for (int64_t c = 0; c < ch && rc == QC_OK; c++)
        rc = qc_qparams_from_range((qc_range){ lo[c], hi[c] }, sym, qmin, qmax, &sc[c], &zp[c]);
    if (rc != QC_OK) {
        rc = qc_errf(err, QC_EINPUT, "weight '%s': not finite", w->name ? w->name : "?");
        goto done;
    }
    double sum = 0;
    for (int64_t at = 0; at < n; at += inner) {
        int64_t c = (at / inner) % ch, end = n - at < inner ? n : at + inner;
        for (int64_t i = at; i < end; i++) {
            double q = rint((double)(x[i] / sc[c])) + zp[c];
            q = q < qmin ? qmin : q > qmax ? qmax : q;
            double e = (q - zp[c]) * (double)sc[c] - x[i];
            sum += e * e;
        }
    }
    *out = sum;
done:
    free(lo);
    free(hi);
    free(sc);
    free(zp);
    return rc;
}

/* Per-channel weights are usually but not always better: each weight gets the lower error. */
static int choose_weights(qc_compare *c, cand_eval *ce, qc_err *err)
{
    qc_quantizer *q = ce->q;
    auto_state *au = ce->au;
    au->pt_weights = calloc((size_t)q->n_t + 1, sizeof *au->pt_weights);
    if (!au->pt_weights)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        const qc_tensor *w = qc_model_init(c->m, t->name);
        double e_pc, e_pt;
        if (t->kind != QT_WEIGHT || t->axis < 0 || t->axis_conflict || !w ||
            w->dtype != QC_F32)
            continue;
        int rc = weight_err(w, t->axis, q->o.symmetric_w, q->w_qmin, q->w_qmax, &e_pc, err);
        if (rc == QC_OK)
            rc = weight_err(w, -1, q->o.symmetric_w, q->w_qmin, q->w_qmax, &e_pt, err);
        if (rc != QC_OK)
            return rc;
        au->n_weights++;
        if (e_pt < e_pc) {
            t->axis = -1;
            au->pt_weights[au->n_pt++] = t->name;
        }
    }
    return QC_OK;
}

void qc_cmp_auto_apply_weights(const cand_eval *ce, qc_quantizer *q)
{
    for (int i = 0; ce->au && i < ce->au->n_pt; i++) {
        int idx = qc_strmap_get(&q->by_name, ce->au->pt_weights[i]);
        if (idx >= 0 && q->t[idx].kind == QT_WEIGHT)
            q->t[idx].axis = -1;
    }
}

int qc_cmp_auto_setup(qc_compare *c, qc_err *err)
{
    for (int i = 0; i < c->n; i++) {
        cand_eval *ce = &c->ce[i];
        int rc;
        if (strcmp(ce->cand->o.method, "auto") != 0)
            continue;
        auto_state *au = ce->au = calloc(1, sizeof *au);
        if (!au)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        /* always the default methods, whatever the grid: `calibrate --method auto` builds
         * the same model as compare's auto row */
        qc_compare_grid g = { .per_channel = QC_CMP_NO,
                              .symmetric_act = ce->cand->o.symmetric_act ? QC_CMP_YES
                                                                         : QC_CMP_NO };
        qc_quant_opts base = ce->cand->o;
        base.method = "minmax";
        if ((rc = qc_compare_make_grid(&base, &g, &au->opts, &au->n_opts, err)) != QC_OK)
            return rc;
        au->opt_group = calloc((size_t)au->n_opts, sizeof *au->opt_group);
        au->opt_tensors = calloc((size_t)au->n_opts, sizeof *au->opt_tensors);
        if (!au->opt_group || !au->opt_tensors)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        for (int k = 0; k < au->n_opts; k++) {
            ogroup og;
            qc_cmp_group_of(&au->opts[k].o, &og);
            if ((rc = qc_cmp_group_index(c, &og, err)) < 0)
                return rc;
            au->opt_group[k] = rc;
        }
        if ((rc = choose_weights(c, ce, err)) != QC_OK) {
            qc_err_prefix(err, "candidate '%s'", ce->cand->name);
            return rc;
        }
    }
    return QC_OK;
}

int qc_cmp_auto_prepare(qc_compare *c, cand_eval *ce, qc_err *err)
{
    auto_state *au = ce->au;
    if (au->choice)
        return QC_OK;
    au->n_t = c->n_t;
    au->names = calloc((size_t)c->n_t + 1, sizeof *au->names);
    au->choice = malloc(((size_t)c->n_t + 1) * sizeof *au->choice);
    au->cost = calloc((size_t)c->n_t + 1, sizeof *au->cost);
    au->rng = calloc((size_t)c->n_t + 1, sizeof *au->rng);
    if (!au->names || !au->choice || !au->cost || !au->rng)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < c->n_t; i++) {
        au->names[i] = c->t[i].name;
        au->choice[i] = -1;
        au->cost[i] = NAN;
    }
    return QC_OK;
}

int qc_cmp_auto_n_options(const cand_eval *ce)
{
    return ce->au->n_opts;
}

void qc_cmp_auto_option(const cand_eval *ce, int o, int *group, const qc_quant_opts **opts)
{
    *group = ce->au->opt_group[o];
    *opts = &ce->au->opts[o].o;
}

void qc_cmp_auto_pick(qc_compare *c, cand_eval *ce, int k, const qc_range *ro, qc_range *r)
{
    auto_state *au = ce->au;
    const qc_observer *obs = c->t[k].obs[ce->group];
    const qc_hist *h = qc_cmp_has_hist(obs) ? qc_hist_obs_channel(obs, 0) : NULL;
    double best = INFINITY;
    int pick = -1;
    for (int o = 0; o < au->n_opts; o++) {
        /* no histogram (otensor.no_hist): the range is not used; minmax's, the observed */
        double cost = h ? local_cost(h, ro[o], &ce->cand->o, ce->cand->clip_weight)
                        : strcmp(au->opts[o].o.method, "minmax") != 0;
        if (pick < 0 || cost < best) {
            best = cost;
            pick = o;
            *r = ro[o];
        }
    }
    au->choice[k] = pick;
    au->cost[k] = best;
    au->rng[k] = *r;
}

void qc_cmp_auto_count(cand_eval *ce)
{
    auto_state *au = ce->au;
    memset(au->opt_tensors, 0, (size_t)au->n_opts * sizeof *au->opt_tensors);
    for (int k = 0; au->choice && k < au->n_t; k++)
        if (au->choice[k] >= 0)
            au->opt_tensors[au->choice[k]]++;
}

void qc_cmp_auto_free(cand_eval *ce)
{
    auto_state *au = ce->au;
    if (!au)
        return;
    free(au->opts);
    free(au->opt_group);
    free(au->opt_tensors);
    free(au->names);
    free(au->choice);
    free(au->cost);
    free(au->rng);
    free(au->pt_weights);
    free(au);
    ce->au = NULL;
}

int qc_cmp_auto_chosen(const cand_eval *ce, int k, qc_range *r)
{
    const auto_state *au = ce->au;
    if (!au || !au->choice || k < 0 || k >= au->n_t || au->choice[k] < 0)
        return 0;
    *r = au->rng[k];
    return 1;
}

double qc_cmp_auto_cost(qc_compare *c, const cand_eval *ace, int k, qc_range r)
{
    const qc_observer *obs = c->t[k].obs[ace->group];
    if (!qc_cmp_has_hist(obs))
        return 0;                   /* otensor.no_hist: its range is never used */
    return local_cost(qc_hist_obs_channel(obs, 0), r, &ace->cand->o, ace->cand->clip_weight);
}

int qc_compare_auto_info(const qc_compare *c, int i, qc_auto_info *info)
{
    const auto_state *au = i >= 0 && i < c->n ? c->ce[i].au : NULL;
    memset(info, 0, sizeof *info);
    if (!au)
        return 0;
    info->n_options = au->n_opts;
    info->options = au->opts;
    info->option_tensors = au->opt_tensors;
    info->n_tensors = au->choice ? au->n_t : 0;
    info->tensor = au->names;
    info->choice = au->choice;
    info->cost = au->cost;
    info->n_weights = au->n_weights;
    info->n_weights_per_tensor = au->n_pt;
    return 1;
}

int qc_compare_build_one(qc_compare *c, int i, const qc_model **out, qc_err *err)
{
    int rc = QC_OK;
    *out = NULL;
    if (i < 0 || i >= c->n)
        return qc_errf(err, QC_EUSAGE, "compare: no candidate %d", i);
    if (!c->ranges_set) {
        c->ranges_set = 1;
        if ((rc = qc_cmp_set_ranges(c, err)) != QC_OK)
            return rc;
    }
    cand_eval *ce = &c->ce[i];
    if (!ce->qm && (rc = qc_quantizer_build(ce->q, &ce->qm, err)) != QC_OK) {
        qc_err_prefix(err, "candidate '%s'", ce->cand->name);
        return rc;
    }
    *out = ce->qm;
    return QC_OK;
}
