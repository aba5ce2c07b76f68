/* calibrate compare, the library part: candidates, the shared calibration pass, builds.
 * Evaluation (metrics of each built model against the float model) is in compare_eval.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compare_priv.h"
#include "hist.h"
#include "par.h"
#include "qc_ema_log.h"
#include "qc_pass.h"
#include "quant_priv.h"

/* ---- the grid ---- */

static const char *const all_methods[] = { "minmax", "ema", "percentile", "mse", "entropy",
                                           NULL };

static const char *method_name(const char *s, size_t len)
{
    for (int i = 0; all_methods[i]; i++)
        if (strlen(all_methods[i]) == len && !strncmp(all_methods[i], s, len))
            return all_methods[i];
    return NULL;
}

/* Splits a comma list into items; returns the count or -1 if an item is empty. */
static int split(const char *list, const char **item, size_t *len, int max)
{
    int n = 0;
    for (const char *p = list;;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == 0 || n == max)
            return -1;
        item[n] = p;
        len[n++] = l;
        if (!c)
            return n;
        p = c + 1;
    }
}

static int add_cand(qc_cand *out, int *n, const qc_quant_opts *base, const char *method,
                    float pct, int pc, int sym)
{
    qc_cand *c = &out[(*n)++];
    char p[32] = "";
    c->o = *base;
    c->o.method = method;
    c->o.per_channel = pc;
    c->o.symmetric_act = sym;
    if (!strcmp(method, "percentile")) {
        c->o.percentile = pct;
        /* the shortest text that reads back as the same float (--percentile P) */
        for (int digits = 1; digits <= 9; digits++) {
            snprintf(c->percentile, sizeof c->percentile, "%.*g", digits, (double)pct);
            if (strtof(c->percentile, NULL) == pct)
                break;
        }
        snprintf(p, sizeof p, " %s", c->percentile);
    }
    snprintf(c->name, sizeof c->name, "%s%s %s%s", method, p, pc ? "pc" : "pt",
             sym ? " sym" : "");
    return QC_OK;
}

int qc_compare_make_grid(const qc_quant_opts *base, const qc_compare_grid *g, qc_cand **out,
                         int *n_out, qc_err *err)
{
    enum { MAXL = 32 };
    const char *item[MAXL], *methods[MAXL];
    size_t len[MAXL];
    float pcts[MAXL];
    int n_m, n_p;
    *out = NULL;
    *n_out = 0;
    if ((n_m = split(g->methods ? g->methods : "minmax,ema,percentile,mse,entropy", item, len,
                     MAXL)) < 0)
        return qc_errf(err, QC_EUSAGE, "methods: empty entry or more than %d", MAXL);
    for (int i = 0; i < n_m; i++) {
        if (!(methods[i] = method_name(item[i], len[i])))
            return qc_errf(err, QC_EUSAGE, "unknown method '%.*s' (valid: %s)", (int)len[i],
                           item[i], qc_observer_methods());
        for (int k = 0; k < i; k++)
            if (methods[k] == methods[i])
                return qc_errf(err, QC_EUSAGE, "method '%s' given twice", methods[i]);
    }
    if ((n_p = split(g->percentiles ? g->percentiles : "99.9,99.99,99.999", item, len,
                     MAXL)) < 0)
        return qc_errf(err, QC_EUSAGE, "percentiles: empty entry or more than %d", MAXL);
    for (int i = 0; i < n_p; i++) {
        char buf[32], *end;
        snprintf(buf, sizeof buf, "%.*s", (int)(len[i] < 31 ? len[i] : 31), item[i]);
        pcts[i] = strtof(buf, &end);
        if (*end || len[i] > 31 || !(pcts[i] >= 50.0f && pcts[i] <= 100.0f))
            return qc_errf(err, QC_EUSAGE, "percentile '%.*s': expected a number in [50, 100]",
                           (int)len[i], item[i]);
        for (int k = 0; k < i; k++)
            if (pcts[k] == pcts[i])
                return qc_errf(err, QC_EUSAGE, "percentile %g given twice", (double)pcts[i]);
    }
    /* per-channel first: the usual choice */
    int pc_hi = g->per_channel == QC_CMP_NO ? 0 : 1;
    int pc_lo = g->per_channel == QC_CMP_NO || g->per_channel == QC_CMP_BOTH ? 0 : 1;
    int sym_lo = g->symmetric_act == QC_CMP_YES ? 1 : 0;
    int sym_hi = g->symmetric_act == QC_CMP_YES || g->symmetric_act == QC_CMP_BOTH ? 1 : 0;
    int max = (n_m + n_p) * 2 * 2 + 8;
    qc_cand *c = calloc((size_t)max, sizeof *c);
    if (!c)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    int n = 0;
    float top = 0;
    for (int i = 0; i < n_p; i++)
        top = pcts[i] > top ? pcts[i] : top;
    for (int sym = sym_lo; sym <= sym_hi && g->auto_mode != QC_AUTO_ONLY; sym++) {
        for (int pc = pc_hi; pc >= pc_lo; pc--)
            for (int i = 0; i < n_m; i++) {
                int np = !strcmp(methods[i], "percentile") ? n_p : 1;
                for (int k = 0; k < np; k++)
                    add_cand(c, &n, base, methods[i], pcts[k], pc, sym);
            }
        if (g->per_channel != QC_CMP_DEFAULT)
            continue;
        /* per-channel weights are not always better (depthwise layers of some MobileNets):
         * the per-tensor variants of the two methods most used with them */
        for (int i = 0; i < n_m; i++)
            if (!strcmp(methods[i], "minmax") || !strcmp(methods[i], "percentile"))
                add_cand(c, &n, base, methods[i], top, 0, sym);
    }
    /* auto chooses per weight: per_channel only plans the axes it may use */
    for (int sym = sym_lo; sym <= sym_hi && g->auto_mode != QC_AUTO_NONE; sym++) {
        qc_cand *a = &c[n++];
        a->o = *base;
        a->o.method = "auto";
        a->o.per_channel = 1;
        a->o.symmetric_act = sym;
        a->clip_weight = QC_AUTO_CLIP_WEIGHT;
        snprintf(a->name, sizeof a->name, "auto%s", sym ? " sym" : "");
    }
    *out = c;
    *n_out = n;
    return QC_OK;
}

/* ---- Concat outputs merged from their inputs (derived.c's rule) ---- */

/* The otensor of value `name`, or -1: among its producer's outputs (node_start / node_list)
 * or the graph inputs, not by a walk over every tensor (plan_tensors asks for each Concat
 * input and each Sigmoid's input). */
static int find_tensor(const qc_compare *c, const char *name)
{
    const qc_model *m = c->m;
    int p = qc_model_producer(m, name);
    for (int i = p >= 0 ? c->node_start[p] : 0; p >= 0 && i < c->node_start[p + 1]; i++)
        if (!strcmp(c->t[c->node_list[i]].name, name))
            return c->node_list[i];
    for (int i = 0; p < 0 && i < m->n_inputs; i++)
        if (c->input_t[i] >= 0 && !strcmp(m->inputs[i].name, name))
            return c->input_t[i];
    return -1;
}

/* A Concat input with the histograms of its own that the pass fills */
static int union_peer(void *user, const char *name)
{
    const qc_compare *c = user;
    int j = find_tensor(c, name);
    return j >= 0 && !c->t[j].no_hist &&
           (c->t[j].producer < 0 || strcmp(c->m->nodes[c->t[j].producer].op_type, "Concat"));
}

/* Each tensor's union sources (otensor.union_of), before the pass. */
static int find_unions(qc_compare *c, qc_err *err)
{
    const char **names = malloc((size_t)qc_quant_union_cap(c->m) * sizeof *names);
    if (!names)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int k = 0; k < c->n_t; k++) {
        otensor *t = &c->t[k];
        int n = t->no_hist ? 0 : qc_quant_concat_union(c->m, t->producer, t->name, union_peer,
                                                       c, names);
        if (n > 0 && !(t->union_of = malloc((size_t)n * sizeof *t->union_of))) {
            free(names);
            return qc_errf(err, QC_ENOMEM, "out of memory");
        }
        for (int i = 0; i < n; i++)
            t->union_of[i] = find_tensor(c, names[i]);
        t->n_union = n;
    }
    free(names);
    return QC_OK;
}

static int is_hist_obs(const qc_observer *o)
{
    return o->ops == &qc_obs_dual || qc_cmp_has_hist(o);
}

/* After the pass (and the shards' merge): each union tensor's histograms, from its sources';
 * then it is an ordinary tensor (a later pass would observe it itself). */
static int fill_unions(qc_compare *c, qc_err *err)
{
    for (int k = 0; k < c->n_t; k++) {
        otensor *t = &c->t[k];
        for (int g = 0; g < c->n_groups; g++)
            for (int i = 0; t->obs[g] && is_hist_obs(t->obs[g]) && i < t->n_union; i++) {
                int rc = qc_observer_merge(t->obs[g], c->t[t->union_of[i]].obs[g], err);
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

/* ---- the calibration pass ---- */

/* One update of one shared observer: the items of a parallel loop (observers are
 * independent; the histogram ones cost several times the minmax scan). */
#define MAX_FOLLOW 8

typedef struct obs_item {
    qc_observer     *o;
    qc_observer     *follow[MAX_FOLLOW];   /* minmax / ema: fed o's min/max (no scan) */
    int              n_follow;
    const qc_tensor *v;
    const char      *name;
    int              rc;
    qc_err           err;
} obs_item;

/* Who observes: a one-shard pass's state (c->own: the compare's own observers, tensor dtype
 * and rank written directly), or one shard of a sample-parallel pass (obs: its own observers,
 * NULL for shard 0, which feeds the compare's; dtype / rank: first and last sighting per
 * tensor with the sample, merged after the pass as a serial pass would have set them). */
typedef struct cshard {
    qc_compare   *c;
    qc_exec      *x;
    qc_observer **obs;              /* n_t x n_groups, or NULL */
    int          *dtype, *first, *rank, *last;  /* n_t each, or NULL */
    int           sample;
    obs_item     *items;            /* updates of one node */
    int           n_items;
} cshard;

static void update_items(void *ctx, int64_t lo, int64_t hi)
{
    obs_item *it = ctx;
    for (int64_t i = lo; i < hi; i++) {
        it[i].rc = qc_observer_update(it[i].o, it[i].v, &it[i].err);
        for (int f = 0; f < it[i].n_follow && it[i].rc == QC_OK; f++)
            it[i].rc = qc_observer_follow(it[i].follow[f], it[i].o, &it[i].err);
        if (it[i].rc != QC_OK)
            qc_err_prefix(&it[i].err, "tensor '%s'", it[i].name);
    }
}

static void add_items(cshard *sh, int k, const qc_tensor *v)
{
    qc_compare *c = sh->c;
    otensor *t = &c->t[k];
    if (sh->dtype) {
        if (!sh->dtype[k]) {
            sh->dtype[k] = v->dtype;
            sh->first[k] = sh->sample;
        }
        sh->rank[k] = v->ndim;
        sh->last[k] = sh->sample;
    } else {
        if (!t->seen_dtype)
            t->seen_dtype = v->dtype;
        t->rank = v->ndim;
    }
    if (v->dtype != QC_F32)
        return;
    /* one observer scans the tensor (a dual histogram as it bins it, else a minmax or ema
     * one): the tensor's other minmax and ema observers follow it instead of scanning again */
    qc_observer *const *obs = sh->obs ? sh->obs + (size_t)k * (size_t)c->n_groups : t->obs;
    obs_item *lead = NULL;
    for (int pass = 0; pass < 2 && !lead; pass++)
        for (int g = 0; g < c->n_groups && !lead; g++)
            if (obs[g] && (pass ? obs[g]->ops->extremes && obs[g]->cfg.per_channel_axis < 0
                                : obs[g]->ops == &qc_obs_dual && !t->n_union))
                lead = &sh->items[sh->n_items++], lead->o = obs[g], lead->n_follow = 0;
    for (int g = 0; g < c->n_groups; g++) {
        if (!obs[g] || (lead && obs[g] == lead->o) || (t->n_union && is_hist_obs(obs[g])))
            continue;                   /* an |x| group fed through its dual; the dual; a
                                         * histogram merged after the pass (fill_unions) */
        obs_item *it = &sh->items[sh->n_items];
        if (lead && obs[g]->ops->extremes && lead->n_follow < MAX_FOLLOW &&
            obs[g]->cfg.per_channel_axis < 0) {
            lead->follow[lead->n_follow++] = obs[g];
            continue;
        }
        it->o = obs[g];
        it->n_follow = 0;
        it->v = v;
        it->name = t->name;
        sh->n_items++;
    }
    if (lead)
        lead->v = v, lead->name = t->name;
}

static int run_items(cshard *sh, qc_err *err)
{
    int n = sh->n_items;
    sh->n_items = 0;
    if (n == 0)
        return QC_OK;
    qc_par_for(n, 1, update_items, sh->items);
    for (int i = 0; i < n; i++)
        if (sh->items[i].rc != QC_OK) {
            *err = sh->items[i].err;
            return sh->items[i].rc;
        }
    return QC_OK;
}

static int calib_hook(void *user, const qc_node *node, int node_index,
                      const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    cshard *sh = user;
    qc_compare *c = sh->c;
    (void)node;
    for (int r = c->node_start[node_index]; r < c->node_start[node_index + 1]; r++) {
        int k = c->node_list[r];
        for (int j = 0; j < n_outs; j++)
            if (outs[j]->name && !strcmp(outs[j]->name, c->t[k].name))
                add_items(sh, k, outs[j]);
    }
    return run_items(sh, err);
}

static int shard_observe(cshard *sh, const qc_tensor *inputs, int n_inputs, qc_err *err)
{
    qc_compare *c = sh->c;
    for (int i = 0; i < n_inputs && i < c->m->n_inputs; i++)
        if (c->input_t[i] >= 0)
            add_items(sh, c->input_t[i], &inputs[i]);
    int rc = run_items(sh, err);
    return rc != QC_OK ? rc : qc_exec_run(sh->x, inputs, n_inputs, err);
}

static void shard_free(cshard *sh)
{
    if (!sh || !sh->c)
        return;
    qc_compare *c = sh->c;
    if (sh->x && sh->x != c->x) {
        c->shard_runs += qc_exec_runs(sh->x);
        size_t peak = qc_exec_peak_bytes(sh->x);
        c->shard_peak = peak > c->shard_peak ? peak : c->shard_peak;
        qc_exec_free(sh->x);
    }
    for (size_t i = 0; sh->obs && i < (size_t)c->n_t * (size_t)c->n_groups; i++)
        qc_observer_free(sh->obs[i]);
    free(sh->obs);
    free(sh->dtype);
    free(sh->first);
    free(sh->rank);
    free(sh->last);
    free(sh->items);
}

/* Shard `index` of a pass of several shards (pass = 1; shard 0 feeds the compare's executor
 * and observers) or c->own, the state of a one-shard pass (pass = 0). */
static int shard_init(qc_compare *c, cshard *sh, int index, int pass, qc_err *err)
{
    const qc_model *m = c->m;
    int most = m->n_inputs;
    for (int i = 0; i < m->n_nodes; i++)
        most = most > m->nodes[i].n_outputs ? most : m->nodes[i].n_outputs;
    size_t n_t = (size_t)c->n_t + 1;
    sh->c = c;
    sh->items = calloc((size_t)(most + 1) * (size_t)c->n_groups, sizeof *sh->items);
    if (pass) {
        sh->dtype = calloc(n_t, sizeof *sh->dtype);
        sh->first = calloc(n_t, sizeof *sh->first);
        sh->rank = calloc(n_t, sizeof *sh->rank);
        sh->last = calloc(n_t, sizeof *sh->last);
    }
    if (!sh->items || (pass && (!sh->dtype || !sh->first || !sh->rank || !sh->last)))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if (index == 0) {
        sh->x = c->x;
        return QC_OK;
    }
    sh->obs = calloc((size_t)c->n_t * (size_t)c->n_groups + 1, sizeof *sh->obs);
    if (!sh->obs)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int k = 0; k < c->n_t; k++)
        for (int g = 0; g < c->n_groups; g++) {
            int rc = qc_cmp_group_new_observer(c, g, c->t[k].no_hist,
                                        &sh->obs[(size_t)k * (size_t)c->n_groups + (size_t)g],
                                        err);
            if (rc != QC_OK)
                return rc;
        }
    int rc = qc_exec_new(&sh->x, c->m, NULL, err);
    if (rc == QC_OK)
        qc_exec_set_hook(sh->x, calib_hook, sh);
    return rc;
}

/* ---- the sample-parallel pass ---- */

typedef struct cpass {
    qc_compare            *c;
    const qc_compare_feed *f;
    cshard                *sh;
    qc_ema_log            *log;
} cpass;

static int pass_sample(void *user, int shard, int i, qc_err *err)
{
    cpass *p = user;
    cshard *sh = &p->sh[shard];
    qc_tensor *in = NULL;
    int rc = p->log ? qc_ema_log_begin(p->log, shard, i, err) : QC_OK;
    if (rc != QC_OK)
        return rc;
    if ((rc = p->f->load(p->f->user, shard, i, &in, err)) == QC_OK) {
        sh->sample = i;
        if ((rc = shard_observe(sh, in, p->c->m->n_inputs, err)) != QC_OK && p->f->failed)
            p->f->failed(p->f->user, i, err);
    }
    if (p->log)
        qc_ema_log_end(p->log, shard, i, rc >= 0);
    return rc;
}

static void pass_after(void *user, int i, int status, int n_finished)
{
    cpass *p = user;
    if (p->f->after)
        p->f->after(p->f->user, i, status, n_finished);
}

/* EMA observers record, and the log folds the records into the compare's in sample order. */
static int log_setup(qc_compare *c, cshard *sh, int jobs, int n, qc_ema_log **log,
                     qc_err *err)
{
    size_t n_obs = (size_t)c->n_t * (size_t)c->n_groups;
    int ema = 0;
    for (int g = 0; g < c->n_groups; g++)
        ema |= c->groups[g].kind == G_EMA;
    if (!ema)
        return QC_OK;
    qc_observer **tgt = calloc(n_obs + 1, sizeof *tgt);
    if (!tgt)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int k = 0; k < c->n_t; k++)
        for (int g = 0; g < c->n_groups; g++)
            tgt[(size_t)k * (size_t)c->n_groups + (size_t)g] = c->t[k].obs[g];
    int rc = qc_ema_log_new(log, tgt, (int)n_obs, n, jobs, 0, err);
    for (int s = 0; s < jobs && rc == QC_OK; s++)
        rc = qc_ema_log_attach(*log, s, s ? sh[s].obs : tgt, err);
    free(tgt);
    return rc;
}

/* Shards 1.. into the compare's observers, and each tensor's dtype (first sighting) and rank
 * (last sighting) by sample, as the serial pass sets them. */
static int merge_shards(qc_compare *c, cshard *sh, int jobs, qc_err *err)
{
    for (int k = 0; k < c->n_t; k++) {
        otensor *t = &c->t[k];
        int fs = -1, ls = -1;
        for (int s = 0; s < jobs; s++) {
            if (!sh[s].dtype[k])
                continue;
            if (fs < 0 || sh[s].first[k] < sh[fs].first[k])
                fs = s;
            if (ls < 0 || sh[s].last[k] > sh[ls].last[k])
                ls = s;
        }
        if (fs >= 0 && !t->seen_dtype)
            t->seen_dtype = sh[fs].dtype[k];
        if (ls >= 0)
            t->rank = sh[ls].rank[k];
        for (int s = 1; s < jobs; s++)
            for (int g = 0; g < c->n_groups; g++) {
                if (!t->obs[g])
                    continue;           /* fed through its dual */
                int rc = qc_observer_merge(t->obs[g],
                                           sh[s].obs[(size_t)k * (size_t)c->n_groups +
                                                     (size_t)g], err);
                if (rc != QC_OK) {
                    qc_err_prefix(err, "tensor '%s'", t->name);
                    return rc;
                }
            }
    }
    return QC_OK;
}

int qc_compare_observe_pass(qc_compare *c, const qc_compare_feed *f, int *used, int *skipped,
                            qc_err *err)
{
    int n = f->n, jobs = f->jobs < 1 ? 1 : f->jobs;
    if (jobs > n)
        jobs = n > 0 ? n : 1;
    cshard *sh = jobs > 1 ? calloc((size_t)jobs, sizeof *sh) : c->own;
    qc_ema_log *log = NULL;
    int rc = sh ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
    for (int s = 0; jobs > 1 && s < jobs && rc == QC_OK; s++)
        rc = shard_init(c, &sh[s], s, 1, err);
    if (jobs > 1 && rc == QC_OK) {
        qc_exec_set_hook(c->x, calib_hook, &sh[0]);
        rc = log_setup(c, sh, jobs, n, &log, err);
    }
    cpass p = { c, f, sh, log };
    qc_pass_ops ops = { &p, pass_sample, pass_after };
    if (rc == QC_OK)
        rc = qc_pass_run(&ops, n, jobs, used, skipped, err);
    if (rc == QC_OK && log)
        rc = qc_ema_log_finish(log, err);
    qc_ema_log_free(log);           /* detaches the observers before the merge */
    if (jobs > 1 && sh) {
        qc_exec_set_hook(c->x, calib_hook, c->own);
        if (rc == QC_OK)
            rc = merge_shards(c, sh, jobs, err);
        for (int s = 0; s < jobs; s++)
            shard_free(&sh[s]);
        free(sh);
    }
    if (rc == QC_OK)
        rc = fill_unions(c, err);
    qc_err split_err = { 0 };
    int rs = qc_cmp_split_duals(c, rc == QC_OK ? err : &split_err);
    return rc != QC_OK ? rc : rs;
}

static int add_tensor(qc_compare *c, const char *name, int producer, int no_hist, qc_err *err)
{
    otensor *t = &c->t[c->n_t++];
    t->name = name;
    t->producer = producer;
    t->no_hist = no_hist;
    if (!(t->obs = calloc((size_t)c->n_groups, sizeof *t->obs)))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int g = 0; g < c->n_groups; g++) {
        int rc = qc_cmp_group_new_observer(c, g, t->no_hist, &t->obs[g], err);
        if (rc != QC_OK)
            return rc;
        c->observer_bytes += t->obs[g] ? qc_observer_state_bytes(t->obs[g]) : 0;
    }
    return QC_OK;
}

/* The activations the candidates observe: selection depends on the model, --op-types and
 * --exclude only, which every candidate of a grid shares, so a throwaway quantizer answers
 * for all (qc_quantizer_set_range() says whether it would observe a tensor). */
static int plan_tensors(qc_compare *c, qc_err *err)
{
    const qc_model *m = c->m;
    qc_quantizer *probe = NULL;
    qc_quant_opts po = c->cands[0].o;
    po.method = "minmax";
    int rc = qc_quantizer_new(&probe, m, &po, err);
    if (rc != QC_OK)
        return rc;
    int cap = m->n_inputs;
    for (int i = 0; i < m->n_nodes; i++)
        cap += m->nodes[i].n_outputs;
    c->t = calloc((size_t)cap + 1, sizeof *c->t);
    c->input_t = calloc((size_t)m->n_inputs + 1, sizeof *c->input_t);
    c->node_start = calloc((size_t)m->n_nodes + 2, sizeof *c->node_start);
    c->node_list = calloc((size_t)cap + 1, sizeof *c->node_list);
    if (!c->t || !c->input_t || !c->node_start || !c->node_list) {
        qc_quantizer_free(probe);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    qc_range r = { 0, 1 };
    for (int i = 0; i < m->n_inputs && rc == QC_OK; i++) {
        c->input_t[i] = -1;
        if (qc_quantizer_set_range(probe, m->inputs[i].name, r, r, 1)) {
            c->input_t[i] = c->n_t;
            rc = add_tensor(c, m->inputs[i].name, -1,
                            !qc_quant_range_from_method(probe, m->inputs[i].name), err);
        }
    }
    for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
        c->node_start[i + 1] = c->node_start[i];
        for (int k = 0; k < m->nodes[i].n_outputs && rc == QC_OK; k++) {
            const char *name = m->nodes[i].outputs[k];
            if (name[0] && qc_quantizer_set_range(probe, name, r, r, 1)) {
                c->node_list[c->node_start[i + 1]++] = c->n_t;
                rc = add_tensor(c, name, i, !qc_quant_range_from_method(probe, name), err);
            }
        }
    }
    qc_quantizer_free(probe);
    if (rc == QC_OK)
        rc = find_unions(c, err);
    for (int k = 0; k < c->n_t; k++) {      /* the maps' inputs (derived.c's rule) */
        otensor *t = &c->t[k];
        const char *in = t->no_hist ? NULL : qc_quant_map_input(m, t->producer, t->name, &t->map);
        int j = in ? find_tensor(c, in) : -1;
        t->map_src = j >= 0 && !c->t[j].no_hist ? j : -1;
    }
    return rc;
}

int qc_compare_new(qc_compare **out, const qc_model *m, const qc_cand *cands, int n_cands,
                   qc_err *err)
{
    int rc = QC_OK;
    *out = NULL;
    if (n_cands < 1)
        return qc_errf(err, QC_EUSAGE, "compare: no candidate");
    qc_compare *c = calloc(1, sizeof *c);
    if (!c)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    c->m = m;
    c->n = n_cands;
    c->best = -1;
    c->cands = calloc((size_t)n_cands, sizeof *c->cands);
    c->ce = calloc((size_t)n_cands, sizeof *c->ce);
    c->groups = calloc((size_t)n_cands, sizeof *c->groups);
    if (!c->cands || !c->ce || !c->groups) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = qc_pg_cache_new(&c->pg_cache, err)) != QC_OK)
        goto fail;
    memcpy(c->cands, cands, (size_t)n_cands * sizeof *cands);
    for (int i = 0; i < n_cands; i++) {
        ogroup g;
        cand_eval *ce = &c->ce[i];
        ce->c = c;
        ce->cand = &c->cands[i];
        ce->res.cand = ce->cand;
        ce->res.top1 = NAN;
        ce->res.worst_layer = -1;
        qc_cmp_group_of(&ce->cand->o, &g);
        if ((rc = qc_cmp_group_index(c, &g, err)) < 0)
            goto fail;
        ce->group = rc;
        rc = QC_OK;
        /* the quantizer's own observers are never fed (its ranges come through
         * qc_quantizer_set_range), so they are the kind with the smallest state; it keeps
         * the candidate's method for the rules that depend on it (mse and entropy give a
         * Sigmoid's output its observed range, which set_range passes too) */
        qc_quant_opts qo = ce->cand->o;
        qo.external_ranges = 1;
        if ((rc = qc_quantizer_new(&ce->q, m, &qo, err)) != QC_OK) {
            qc_err_prefix(err, "candidate '%s'", ce->cand->name);
            goto fail;
        }
        qc_quant_share_guard(ce->q, c->pg_cache);
    }
    if ((rc = qc_cmp_auto_setup(c, err)) != QC_OK)
        goto fail;
    if ((rc = plan_tensors(c, err)) != QC_OK || (rc = qc_exec_new(&c->x, m, NULL, err)) != QC_OK)
        goto fail;
    if (!(c->own = calloc(1, sizeof *c->own))) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = shard_init(c, c->own, 0, 0, err)) != QC_OK)
        goto fail;
    qc_exec_set_hook(c->x, calib_hook, c->own);
    *out = c;
    return QC_OK;
fail:
    qc_compare_free(c);
    return rc;
}

size_t qc_cmp_calib_peak(const qc_compare *c)
{
    size_t peak = qc_exec_peak_bytes(c->x);
    return peak > c->shard_peak ? peak : c->shard_peak;
}

void qc_compare_free(qc_compare *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_t; i++) {
        for (int g = 0; c->t[i].obs && g < c->n_groups; g++)
            qc_observer_free(c->t[i].obs[g]);
        free(c->t[i].obs);
        free(c->t[i].union_of);
    }
    for (int i = 0; c->ce && i < c->n; i++) {
        qc_cmp_cand_release(&c->ce[i], 1);
        qc_cmp_auto_free(&c->ce[i]);
        qc_quantizer_free(c->ce[i].q);
        free(c->ce[i].res.outputs);
        free(c->ce[i].res.layers);
        free(c->ce[i].lst);
    }
    qc_cmp_sens_free(c);
    qc_pg_cache_free(c->pg_cache);
    qc_cmp_refs_free(&c->eval_refs, c->m->n_outputs);
    free(c->eval_refs_all);
    shard_free(c->own);
    free(c->own);
    qc_exec_free(c->x);
    qc_exec_free(c->fx);
    free(c->t);
    free(c->input_t);
    free(c->node_start);
    free(c->node_list);
    free(c->groups);
    free(c->ce);
    free(c->cands);
    free(c);
}

int qc_compare_n(const qc_compare *c)
{
    return c->n;
}

const qc_cand_result *qc_compare_result(const qc_compare *c, int i)
{
    return i >= 0 && i < c->n ? &c->ce[i].res : NULL;
}

const qc_quantizer *qc_compare_quantizer(const qc_compare *c, int i)
{
    return i >= 0 && i < c->n ? c->ce[i].q : NULL;
}

void qc_compare_get_stats(const qc_compare *c, qc_compare_stats *s)
{
    memset(s, 0, sizeof *s);
    s->float_passes = qc_exec_runs(c->x) + c->shard_runs;
    s->eval_float_passes = c->eval_float_runs;
    s->quant_passes = c->quant_runs;
    s->n_eval = c->n_eval;
    s->eval_skipped = c->eval_skipped;
    s->n_observed = c->n_t;
    s->n_observer_groups = c->n_groups;
    s->sample_major = c->sample_major;
    s->observer_bytes = c->observer_bytes;
    s->float_peak_bytes = qc_cmp_calib_peak(c);
    s->eval_peak_bytes = c->eval_peak;
}

int qc_compare_n_tensors(const qc_compare *c)
{
    return c->n_t;
}

int qc_compare_tensor_hist(const qc_compare *c, int i, qc_compare_hist *h, qc_err *err)
{
    if (i < 0 || i >= c->n_t)
        return qc_errf(err, QC_EUSAGE, "observed tensor %d: out of range (%d)", i, c->n_t);
    const otensor *t = &c->t[i];
    memset(h, 0, sizeof *h);
    h->name = t->name;
    h->producer = t->producer;
    int best = -1;
    for (int g = 0; g < c->n_groups; g++)
        if (c->groups[g].kind == G_HIST && (best < 0 || (c->groups[best].absval &&
                                                           !c->groups[g].absval)))
            best = g;
    qc_range seen;
    if (t->seen_dtype != QC_F32 || qc_observer_seen(t->obs[0], &seen) != QC_OK)
        return QC_OK;
    h->seen_lo = seen.lo;
    h->seen_hi = seen.hi;
    h->total = (uint64_t)qc_observer_count(t->obs[0]);
    if (best >= 0)
        h->absval = c->groups[best].absval;     /* the axis, with or without counts */
    if (best >= 0 && qc_cmp_has_hist(t->obs[best])) {
        const qc_hist *hs = qc_hist_obs_channel(t->obs[best], 0);
        h->absval = hs->absval;
        h->nbins = hs->nbins;
        h->edge0 = qc_hist_edge(hs, 0);
        h->width = qc_hist_width(hs);
        h->counts = hs->counts;
        h->total = hs->total;
    }
    return QC_OK;
}
