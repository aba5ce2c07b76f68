/* calibrate compare: the observation groups. Candidates whose observers would hold the same
 * state share one observer per tensor (a group); a tensor's x and |x| histograms come from
 * one dual histogram during the pass. */
#include <stdlib.h>
#include <string.h>
#include "compare_priv.h"
#include "hist.h"
#include "qc_qparams.h"

/* The observer configuration quantizer.c gives a candidate's activation observers. */
void qc_cmp_obs_config(const qc_quant_opts *o, qc_obs_config *cfg)
{
    qc_obs_config_default(cfg);
    qc_qrange(o->act_dtype, o->symmetric_act, o->reduce_range, &cfg->qmin, &cfg->qmax);
    cfg->symmetric = o->symmetric_act;
    cfg->per_channel_axis = -1;
    cfg->ema_constant = o->ema_constant;
    cfg->percentile = o->percentile;
    cfg->bins = o->bins;
    cfg->entropy_levels = 128;
}

/* minmax ranges ignore the configuration; EMA depends on its constant only; percentile and
 * mse histogram x (asymmetric) or |x| (symmetric), entropy always |x|: the state depends only
 * on (absval, bins) and every range function reads that same qc_hist_obs state. */
void qc_cmp_group_of(const qc_quant_opts *o, ogroup *g)
{
    memset(g, 0, sizeof *g);
    if (!strcmp(o->method, "minmax")) {
        g->kind = G_MINMAX;
    } else if (!strcmp(o->method, "ema")) {
        g->kind = G_EMA;
        g->ema_c = o->ema_constant;
    } else {
        g->kind = G_HIST;
        /* auto costs every range on the signed histogram */
        g->absval = !strcmp(o->method, "entropy") ? 1
                  : !strcmp(o->method, "auto") ? 0 : o->symmetric_act;
        g->bins = o->bins;
    }
}

int qc_cmp_group_index(qc_compare *c, const ogroup *g, qc_err *err)
{
    for (int k = 0; k < c->n_groups; k++)
        if (!memcmp(&c->groups[k], g, sizeof *g))
            return k;
    ogroup *ng = realloc(c->groups, ((size_t)c->n_groups + 1) * sizeof *ng);
    if (!ng)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    c->groups = ng;
    c->groups[c->n_groups] = *g;
    return c->n_groups++;
}

/* When the candidates want a tensor's histogram of x and of |x| (asymmetric percentile or mse,
 * and entropy; the same bins), one dual histogram bins each value once for both: it takes the
 * x group's slot, the |x| group's slot stays empty during the pass, and qc_cmp_split_duals reads it
 * as the two histograms they would have held. The other group of g's pair, or -1. */
static int dual_partner(const qc_compare *c, int g)
{
    const ogroup *a = &c->groups[g];
    for (int h = 0; a->kind == G_HIST && h < c->n_groups; h++) {
        const ogroup *b = &c->groups[h];
        if (b->kind == G_HIST && b->bins == a->bins && b->absval != a->absval)
            return h;
    }
    return -1;
}

static void hist_config(const ogroup *g, qc_obs_config *cfg)
{
    qc_obs_config_default(cfg);
    cfg->symmetric = g->absval;         /* percentile's init: |x| histogram when symmetric */
    cfg->bins = g->bins;
    cfg->entropy_levels = g->bins < 128 ? g->bins : 128;
}

/* no_hist: a tensor whose range never comes from the method gets a min/max observer in a
 * histogram group too (otensor.no_hist) */
int qc_cmp_group_new_observer(const qc_compare *c, int gi, int no_hist, qc_observer **obs,
                              qc_err *err)
{
    const ogroup *g = &c->groups[gi];
    qc_obs_config cfg;
    qc_obs_config_default(&cfg);
    *obs = NULL;
    if (g->kind == G_MINMAX || (g->kind == G_HIST && no_hist))
        return qc_observer_new(obs, "minmax", &cfg, err);
    if (g->kind == G_EMA) {
        cfg.ema_constant = g->ema_c;
        return qc_observer_new(obs, "ema", &cfg, err);
    }
    hist_config(g, &cfg);
    if (dual_partner(c, gi) >= 0)
        return g->absval ? QC_OK : qc_observer_new_dual(obs, &cfg, err);
    return qc_observer_new(obs, "percentile", &cfg, err);
}

/* After a pass: each dual histogram becomes the x and |x| observers of its pair of groups. */
int qc_cmp_split_duals(qc_compare *c, qc_err *err)
{
    for (int g = 0; g < c->n_groups; g++) {
        int h = dual_partner(c, g);
        if (h < 0 || c->groups[g].absval)
            continue;
        qc_obs_config cx, ca;
        hist_config(&c->groups[g], &cx);
        hist_config(&c->groups[h], &ca);
        for (int k = 0; k < c->n_t; k++) {
            otensor *t = &c->t[k];
            qc_observer *d = t->obs[g];
            if (!d || d->ops != &qc_obs_dual)
                continue;
            int rc = qc_observer_view(&t->obs[g], d, "percentile", &cx, err);
            if (rc == QC_OK)
                rc = qc_observer_view(&t->obs[h], d, "percentile", &ca, err);
            if (rc != QC_OK) {
                qc_observer_free(t->obs[g]);
                t->obs[g] = d;          /* freed with the compare */
                return rc;
            }
            qc_observer_free(d);
        }
    }
    return QC_OK;
}

int qc_cmp_has_hist(const qc_observer *o)
{
    return o->ops == &qc_obs_percentile;
}

/* The range candidate `o` would get from its own observer, computed from the shared state.
 * For histogram kinds a read-only view of the shared observer with the candidate's kind and
 * configuration: the range functions read only the histogram, which is the same state for
 * all three kinds (calib/hist.h). */
int qc_cmp_range(const qc_observer *shared, const qc_quant_opts *o, qc_range *r, qc_err *err)
{
    /* no histogram (otensor.no_hist): the candidates' quantizers never ask the method's
     * range of that tensor; the observed one stands in */
    if (!strcmp(o->method, "minmax") || !strcmp(o->method, "ema") || !qc_cmp_has_hist(shared))
        return qc_observer_range(shared, 0, r, err);
    qc_observer view = *shared;
    view.ops = !strcmp(o->method, "percentile") ? &qc_obs_percentile
             : !strcmp(o->method, "mse") ? &qc_obs_mse : &qc_obs_entropy;
    qc_cmp_obs_config(o, &view.cfg);
    return qc_observer_range(&view, 0, r, err);
}
