/* calibrate compare: every candidate's activation ranges from the shared observers. Each
 * distinct range (observer group, method, configuration) of a tensor is computed once, for
 * all the candidates that use it (auto costs the ranges of every single method, which the
 * grid's candidates mostly compute too), and tensors are done in parallel: each range is a
 * pure function of the tensor's observer, so the results are the serial loop's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compare_priv.h"
#include "par.h"
#include "quant_priv.h"

/* What a range depends on; compared with memcmp (zero-initialized). */
typedef struct rkey {
    int           group, method;    /* method: index in methods[] */
    qc_obs_config cfg;              /* histogram methods only */
} rkey;

static const char *const methods[] = { "minmax", "ema", "percentile", "mse", "entropy" };

typedef struct rtable {
    qc_compare      *c;
    rkey            *keys;
    const qc_quant_opts **kopt;     /* per key: options of a candidate that uses it */
    int              nk;
    int             *cand_key;      /* per non-auto candidate */
    int            **auto_keys;     /* per auto candidate: key of each option */
    qc_range        *r;             /* n_t x nk */
    unsigned char   *have;          /* n_t x nk: range computed */
    qc_range        *ro;            /* per tensor x max options: scratch of auto's choice */
    int              max_opts;
} rtable;

static int key_index(rtable *t, int group, const qc_quant_opts *o, qc_err *err)
{
    rkey k;
    memset(&k, 0, sizeof k);
    k.group = group;
    k.method = -1;
    for (int m = 0; m < 5; m++)
        if (!strcmp(o->method, methods[m]))
            k.method = m;
    if (k.method < 0)
        return qc_errf(err, QC_EINTERNAL, "compare: no range function for '%s'", o->method);
    if (k.method >= 2)
        qc_cmp_obs_config(o, &k.cfg);
    for (int i = 0; i < t->nk; i++)
        if (!memcmp(&t->keys[i], &k, sizeof k))
            return i;
    t->keys[t->nk] = k;
    t->kopt[t->nk] = o;
    return t->nk++;
}

/* The observer state behind tensor k's ranges, if it saw a finite float value. */
static int usable(const otensor *t, int group, qc_range *seen)
{
    const qc_observer *o = t->obs[group];
    return t->seen_dtype == QC_F32 && qc_observer_count(o) > 0 &&
           qc_observer_seen(o, seen) == QC_OK;
}

int qc_cmp_tensor_range(const qc_compare *c, int k, int g, const qc_quant_opts *o, qc_range *r,
                        qc_err *err)
{
    const otensor *t = &c->t[k], *src = t->map_src >= 0 ? &c->t[t->map_src] : NULL;
    qc_range seen;
    if (!src || !qc_quant_map_derives(&t->map, o) || !usable(src, g, &seen) ||
        qc_quant_is_gate(c->m, src->producer, o))
        return qc_cmp_range(t->obs[g], o, r, err);
    int rc = qc_cmp_tensor_range(c, t->map_src, g, o, r, err);
    if (rc == QC_OK)
        *r = qc_quant_map_range(&t->map, *r);
    return rc;
}

static int tensor_ranges(rtable *rt, int k, qc_err *err)
{
    qc_compare *c = rt->c;
    otensor *t = &c->t[k];
    qc_range seen;
    for (int j = 0; j < rt->nk; j++) {
        size_t at = (size_t)k * (size_t)rt->nk + (size_t)j;
        if (!usable(t, rt->keys[j].group, &seen))
            continue;
        int rc = qc_cmp_tensor_range(c, k, rt->keys[j].group, rt->kopt[j], &rt->r[at], err);
        if (rc != QC_OK)
            return rc;
        rt->have[at] = 1;
    }
    for (int i = 0; i < c->n; i++) {
        cand_eval *ce = &c->ce[i];
        if (!ce->au || !usable(t, ce->group, &seen))
            continue;
        int n_opts = qc_cmp_auto_n_options(ce);
        qc_range *ro = rt->ro + (size_t)k * (size_t)rt->max_opts, r;
        for (int o = 0; o < n_opts; o++) {
            size_t at = (size_t)k * (size_t)rt->nk + (size_t)rt->auto_keys[i][o];
            if (!rt->have[at])
                return qc_errf(err, QC_EINTERNAL, "auto: option %d has no range", o);
            ro[o] = rt->r[at];
        }
        qc_cmp_auto_pick(c, ce, k, ro, &r);
    }
    return QC_OK;
}

static int ranges_item(void *ctx, int64_t k, qc_err *err)
{
    rtable *rt = ctx;
    int rc = tensor_ranges(rt, (int)k, err);
    if (rc != QC_OK)
        qc_err_prefix(err, "tensor '%s'", rt->c->t[k].name);
    return rc;
}

static void rtable_free(rtable *rt)
{
    for (int i = 0; rt->auto_keys && i < rt->c->n; i++)
        free(rt->auto_keys[i]);
    free(rt->auto_keys);
    free(rt->keys);
    free(rt->kopt);
    free(rt->cand_key);
    free(rt->r);
    free(rt->have);
    free(rt->ro);
}

static int plan_keys(rtable *rt, qc_err *err)
{
    qc_compare *c = rt->c;
    int max_keys = 0, rc = QC_OK;
    for (int i = 0; i < c->n; i++) {
        int no = c->ce[i].au ? qc_cmp_auto_n_options(&c->ce[i]) : 1;
        max_keys += no;
        rt->max_opts = no > rt->max_opts ? no : rt->max_opts;
    }
    size_t n_t = (size_t)c->n_t + 1;
    rt->keys = calloc((size_t)max_keys + 1, sizeof *rt->keys);
    rt->kopt = calloc((size_t)max_keys + 1, sizeof *rt->kopt);
    rt->cand_key = calloc((size_t)c->n + 1, sizeof *rt->cand_key);
    rt->auto_keys = calloc((size_t)c->n + 1, sizeof *rt->auto_keys);
    rt->r = calloc(n_t * (size_t)(max_keys + 1), sizeof *rt->r);
    rt->have = calloc(n_t * (size_t)(max_keys + 1), 1);
    rt->ro = calloc(n_t * (size_t)(rt->max_opts + 1), sizeof *rt->ro);
    if (!rt->keys || !rt->kopt || !rt->cand_key || !rt->auto_keys || !rt->r || !rt->have ||
        !rt->ro)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < c->n && rc == QC_OK; i++) {
        cand_eval *ce = &c->ce[i];
        if (!ce->au) {
            if ((rc = key_index(rt, ce->group, &ce->cand->o, err)) >= 0)
                rt->cand_key[i] = rc, rc = QC_OK;
            continue;
        }
        int n_opts = qc_cmp_auto_n_options(ce);
        if (!(rt->auto_keys[i] = calloc((size_t)n_opts + 1, sizeof *rt->auto_keys[i])))
            return qc_errf(err, QC_ENOMEM, "out of memory");
        if ((rc = qc_cmp_auto_prepare(c, ce, err)) != QC_OK)
            return rc;
        for (int o = 0; o < n_opts && rc == QC_OK; o++) {
            int group;
            const qc_quant_opts *oo;
            qc_cmp_auto_option(ce, o, &group, &oo);
            if ((rc = key_index(rt, group, oo, err)) >= 0)
                rt->auto_keys[i][o] = rc, rc = QC_OK;
        }
    }
    return rc;
}

/* Gives every candidate quantizer the ranges its own observers would have produced. Tensors
 * never seen as float (or with no finite value) get none: the quantizer then leaves their
 * consumers in float, as it does after observing them itself. */
int qc_cmp_set_ranges(qc_compare *c, qc_err *err)
{
    rtable rt = { .c = c };
    int rc = plan_keys(&rt, err);
    if (rc == QC_OK)
        rc = qc_par_each(c->n_t, ranges_item, &rt, err);
    for (int i = 0; i < c->n && rc == QC_OK; i++) {
        cand_eval *ce = &c->ce[i];
        for (int k = 0; k < c->n_t; k++) {
            otensor *t = &c->t[k];
            qc_range r, seen;
            if (!usable(t, ce->group, &seen))
                continue;
            if (ce->au)
                qc_cmp_auto_chosen(ce, k, &r);
            else
                r = rt.r[(size_t)k * (size_t)rt.nk + (size_t)rt.cand_key[i]];
            qc_quantizer_set_range(ce->q, t->name, r, seen, t->rank);
        }
        if (ce->au)
            qc_cmp_auto_count(ce);
    }
    rtable_free(&rt);
    return rc;
}
