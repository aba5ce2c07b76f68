/* calibrate compare: building each candidate and measuring it against the float model. */
#include <math.h>
#include <pthread.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "compare_priv.h"
#include "par.h"
#include "qc_prepare.h"
#include "strmap.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Saturation bounds of QuantizeLinear: the full integer range of the dtype (symmetric and
 * reduced ranges only shape the scale; QuantizeLinear still saturates at the dtype's ends). */
static void dtype_range(int dtype, double *lo, double *hi)
{
    switch (dtype) {
    case QC_U8: *lo = 0; *hi = 255; break;
    case QC_I8: *lo = -128; *hi = 127; break;
    case QC_U16: *lo = 0; *hi = 65535; break;
    case QC_I16: *lo = -32768; *hi = 32767; break;
    default: *lo = -2147483648.0; *hi = 2147483647.0; break;
    }
}

void qc_cmp_cand_release(cand_eval *ce, int model)
{
    qc_exec_free(ce->qx);
    qc_model_free(ce->em);
    ce->qx = NULL;
    ce->qx_fused = 0;
    ce->em = NULL;
    if (model) {
        qc_model_free(ce->qm);
        ce->qm = NULL;
    }
    free(ce->node_layer);
    free(ce->out_map);
    free(ce->lpart);
    ce->node_layer = ce->out_map = NULL;
    ce->lpart = NULL;
    ce->lpart_cap = 0;
}

/* Layer sums over the thread pool, bit for bit those of one qc_layerstat_add call: it adds
 * one float partial sum per block of LS_BLOCK values (metrics.c's BLOCK) to its doubles in
 * block order, so the blocks are summed in parallel, each into a zeroed qc_layerstat (0 + x
 * is exact), and added in order here. Blocks holding NaN/Inf take metrics.c's element path,
 * which accumulates into the running sums: those are redone in place, in order. */
#define LS_BLOCK QC_LAYERSTAT_BLOCK
#define LS_PAR_MIN (1 << 15)

typedef struct ls_job {
    const float  *ref, *got;
    float         lo, hi;
    qc_layerstat *part;
} ls_job;

static void ls_items(void *ctx, int64_t lo, int64_t hi)
{
    const ls_job *j = ctx;
    qc_layerstat_blocks(&j->part[lo], j->ref + lo * LS_BLOCK, j->got + lo * LS_BLOCK, hi - lo,
                        j->lo, j->hi);
}

static void layer_add(cand_eval *ce, qc_layerstat *s, const float *ref, const float *got,
                      int64_t n, float lo, float hi)
{
    int64_t nb = n / LS_BLOCK;
    if (n < LS_PAR_MIN || qc_par_threads() < 2) {
        qc_layerstat_add(s, ref, got, n, lo, hi);
        return;
    }
    if (nb > ce->lpart_cap) {
        qc_layerstat *p = realloc(ce->lpart, (size_t)nb * sizeof *p);
        if (!p) {                               /* no memory for the split: one pass */
            qc_layerstat_add(s, ref, got, n, lo, hi);
            return;
        }
        ce->lpart = p;
        ce->lpart_cap = nb;
    }
    ls_job j = { ref, got, lo, hi, ce->lpart };
    qc_par_for(nb, 16, ls_items, &j);
    for (int64_t b = 0; b < nb; b++) {
        const qc_layerstat *p = &ce->lpart[b];
        if (p->n != LS_BLOCK || p->nonfinite) {
            qc_layerstat_add(s, ref + b * LS_BLOCK, got + b * LS_BLOCK, LS_BLOCK, lo, hi);
            continue;
        }
        s->ref2 += p->ref2;
        s->err2 += p->err2;
        s->n += p->n;
        s->saturated += p->saturated;
    }
    qc_layerstat_add(s, ref + nb * LS_BLOCK, got + nb * LS_BLOCK, n - nb * LS_BLOCK, lo, hi);
}

static int layer_hook(void *user, const qc_node *node, int node_index,
                      const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    cand_eval *ce = user;
    int l = ce->node_layer[node_index];
    (void)node;
    (void)err;
    if (l < 0 || n_outs < 1)
        return QC_OK;
    const qc_layer_result *lr = &ce->res.layers[l];
    const qc_tensor *ref = qc_exec_value(ce->ref, lr->name), *got = outs[0];
    if (!ref || ref->dtype != QC_F32 || got->dtype != QC_F32 ||
        qc_tensor_numel(ref) != qc_tensor_numel(got))
        return QC_OK;
    layer_add(ce, &ce->lst[l], ref->data, got->data, qc_tensor_numel(ref), lr->clip_lo,
              lr->clip_hi);
    return QC_OK;
}

/* Layers: the quantized activations, each found at its DequantizeLinear in the built model by
 * structure (DequantizeLinear(QuantizeLinear(T))), not by name, so renamed outputs still
 * match. */
static int map_layers(cand_eval *ce, const qc_model *qm, qc_err *err)
{
    qc_strmap by_name, q_out;
    int n = 0, rc = QC_OK;
    int n_t = qc_quantizer_n_tensors(ce->q);
    qc_qtensor_info info;
    ce->res.layers = calloc((size_t)n_t + 1, sizeof *ce->res.layers);
    ce->lst = calloc((size_t)n_t + 1, sizeof *ce->lst);
    ce->node_layer = malloc(((size_t)qm->n_nodes + 1) * sizeof *ce->node_layer);
    if (!ce->res.layers || !ce->lst || !ce->node_layer)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if (qc_strmap_init(&by_name, (size_t)n_t + 16) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if (qc_strmap_init(&q_out, (size_t)n_t + 16) != 0) {
        qc_strmap_free(&by_name);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n_t && rc == QC_OK; i++) {
        if (!qc_quantizer_tensor(ce->q, i, &info) || strcmp(info.kind, "activation") != 0)
            continue;
        qc_layer_result *lr = &ce->res.layers[n];
        double qlo, qhi;
        dtype_range(info.dtype, &qlo, &qhi);
        lr->name = info.name;
        lr->lo = info.lo[0];
        lr->hi = info.hi[0];
        lr->clip_lo = (float)((qlo - info.zero_point[0]) * info.scale[0]);
        lr->clip_hi = (float)((qhi - info.zero_point[0]) * info.scale[0]);
        if (qc_strmap_put(&by_name, info.name, n++) != 0)
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
    }
    ce->res.n_layers = n;
    for (int j = 0; j < qm->n_nodes && rc == QC_OK; j++) {
        const qc_node *nd = &qm->nodes[j];
        int l;
        if (!strcmp(nd->op_type, "QuantizeLinear") && nd->n_inputs > 0 && nd->n_outputs > 0 &&
            (l = qc_strmap_get(&by_name, nd->inputs[0])) >= 0 &&
            qc_strmap_put(&q_out, nd->outputs[0], l) != 0)
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int j = 0; j < qm->n_nodes; j++) {
        const qc_node *nd = &qm->nodes[j];
        ce->node_layer[j] = -1;
        if (!strcmp(nd->op_type, "DequantizeLinear") && nd->n_inputs > 0)
            ce->node_layer[j] = qc_strmap_get(&q_out, nd->inputs[0]);
    }
    qc_strmap_free(&by_name);
    qc_strmap_free(&q_out);
    return rc;
}

static int build_cand(qc_compare *c, cand_eval *ce, qc_err *err)
{
    const qc_model *m = c->m;
    double t0 = now();
    const char *nm, *op, *why;
    int rc = QC_OK;
    /* The executor computes the weights' DequantizeLinear in the first run only and keeps
     * it (cache_const): the same values the kernel yields at every run, and the convolutions
     * see constant weights they pack once (qc_prepare does not fold DequantizeLinear). */
    if ((rc = qc_quantizer_build(ce->q, &ce->qm, err)) != QC_OK ||
        (rc = qc_prepare(ce->qm, &ce->em, NULL, err)) != QC_OK ||
        (rc = map_layers(ce, ce->em, err)) != QC_OK)
        goto fail;
    ce->out_map = malloc(((size_t)m->n_outputs + 1) * sizeof *ce->out_map);
    if (!ce->out_map && (rc = qc_errf(err, QC_ENOMEM, "out of memory")) != QC_OK)
        goto fail;
    for (int i = 0; i < m->n_outputs; i++) {
        ce->out_map[i] = -1;
        for (int k = 0; k < ce->em->n_outputs; k++)
            if (!strcmp(ce->em->outputs[k].name, m->outputs[i].name))
                ce->out_map[i] = k;
    }
    /* fuse_qdq: each Q -> DQ pair in one step, the same values (and the DQ's hook call) */
    if ((rc = qc_exec_new(&ce->qx, ce->em, &(qc_exec_opts){ .cache_const = 1, .fuse_qdq = 1 },
                          err)) != QC_OK)
        goto fail;                  /* its hook: eval_one, per sample (--layer-samples) */
    ce->res.n_quantized_nodes = qc_quantizer_n_quantized_nodes(ce->q);
    ce->res.n_float_nodes = 0;
    while (qc_quantizer_float_node(ce->q, ce->res.n_float_nodes, &nm, &op, &why))
        ce->res.n_float_nodes++;
    ce->res.build_seconds += now() - t0;
    return QC_OK;
fail:
    qc_err_prefix(err, "candidate '%s'", ce->cand->name);
    return rc;
}

/* Every candidate's build, side by side (each build touches only its own candidate). */
static int build_item(void *ctx, int64_t i, qc_err *err)
{
    qc_compare *c = ctx;
    return build_cand(c, &c->ce[i], err);
}

static int build_all(qc_compare *c, qc_err *err)
{
    return qc_par_each(c->n, build_item, c, err);
}

static int alloc_outputs(qc_compare *c, cand_eval *ce, qc_err *err)
{
    if (ce->res.outputs)
        return QC_OK;
    ce->res.n_outputs = c->m->n_outputs;
    ce->res.outputs = calloc((size_t)c->m->n_outputs + 1, sizeof *ce->res.outputs);
    if (!ce->res.outputs)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < c->m->n_outputs; i++)
        ce->res.outputs[i].name = c->m->outputs[i].name;
    return QC_OK;
}

/* One eval sample through candidate ce; the float model has just run on it (fx). Touches
 * only ce's state (candidates run side by side on threads); the caller counts the run. */
static int eval_one(qc_compare *c, cand_eval *ce, qc_exec *fx, const qc_tensor *in,
                    qc_err *err)
{
    double t0 = now();
    int layers = !ce->layer_limit || ce->res.n_eval < ce->layer_limit, rc = QC_OK;
    ce->ref = fx;
    if (!layers && !ce->qx_fused) {
        /* no hook from here on: an executor with code tables (qfuse.c; the same values)
         * replaces the one whose nodes the hook saw. The old one's memory goes back first
         * (malloc_trim: other threads' arenas keep freed blocks otherwise, measured +100 MB
         * on nudenet's 9 candidates). */
        qc_exec_free(ce->qx);
        malloc_trim(0);
        ce->qx = NULL;
        if ((rc = qc_exec_new(&ce->qx, ce->em, &(qc_exec_opts){ .cache_const = 1,
                                                               .fuse_qdq = 1, .fuse = 1 },
                              err)) != QC_OK) {
            qc_err_prefix(err, "candidate '%s'", ce->cand->name);
            return rc;
        }
        ce->qx_fused = 1;
    }
    qc_exec_set_hook(ce->qx, layers ? layer_hook : NULL, ce);
    rc = qc_exec_run(ce->qx, in, c->m->n_inputs, err);
    if (rc != QC_OK) {
        qc_err_prefix(err, "candidate '%s'", ce->cand->name);
        return rc;
    }
    for (int i = 0; i < c->m->n_outputs; i++) {
        qc_output_result *o = &ce->res.outputs[i];
        const qc_tensor *ref = qc_exec_output(fx, i);
        const qc_tensor *got = ce->out_map[i] >= 0 ? qc_exec_output(ce->qx, ce->out_map[i])
                                                   : NULL;
        if (!ref || !got || ref->dtype != QC_F32)
            continue;
        if (got->dtype != QC_F32 || !qc_shape_equal(ref, got))
            return qc_errf(err, QC_EINTERNAL, "candidate '%s': output '%s' differs in shape or "
                           "type from the float model's", ce->cand->name, o->name);
        int64_t n = qc_tensor_numel(ref);
        qc_errstat_add(&o->st, ref->data, got->data, n);
        if (ref->ndim == 2 && ref->dims[1] > 1) {
            o->classifier = 1;
            qc_errstat_add_top1(&o->st, ref->data, got->data, ref->dims[0], ref->dims[1]);
        }
    }
    ce->res.n_eval++;
    ce->res.n_layer_eval += layers;
    ce->res.eval_seconds += now() - t0;
    return QC_OK;
}

static void finish_cand(cand_eval *ce)
{
    qc_cand_result *r = &ce->res;
    int any = 0;
    int64_t rows = 0, agree = 0;
    r->sqnr_db = r->cosine = NAN;
    r->max_abs = 0;
    for (int i = 0; i < r->n_outputs; i++) {
        const qc_errstat *st = &r->outputs[i].st;
        if (!st->n && !st->nonfinite)
            continue;
        double s = qc_errstat_sqnr_db(st), cs = qc_errstat_cosine(st);
        r->sqnr_db = !any || s < r->sqnr_db ? s : r->sqnr_db;
        if (!any || isnan(cs) || cs < r->cosine)            /* NaN sticks: worst */
            r->cosine = any && isnan(r->cosine) ? r->cosine : cs;
        r->max_abs = st->nonfinite ? INFINITY : fmax(r->max_abs, st->max_abs);
        rows += st->top1_rows;
        agree += st->top1_agree;
        any = 1;
    }
    r->top1 = rows ? (double)agree / (double)rows : NAN;
    r->worst_layer = -1;
    for (int l = 0; l < r->n_layers; l++) {
        qc_layer_result *lr = &r->layers[l];
        const qc_layerstat *s = &ce->lst[l];
        lr->n = s->n;
        lr->sqnr_db = s->n ? qc_layerstat_sqnr_db(s) : NAN;
        lr->saturation = s->n ? (double)s->saturated / (double)s->n : NAN;
        if (s->n && (r->worst_layer < 0 || lr->sqnr_db < r->layers[r->worst_layer].sqnr_db))
            r->worst_layer = l;
    }
    ce->finished = 1;
}

static int better(const qc_cand_result *a, int ia, const qc_cand_result *b, int ib,
                  int metric);

double qc_cmp_metric(const qc_cand_result *r, int metric)
{
    double v = metric == QC_METRIC_COSINE ? r->cosine
             : metric == QC_METRIC_TOP1 ? r->top1 : r->sqnr_db;
    return isnan(v) ? -INFINITY : v;
}

int qc_cmp_better(const qc_cand_result *a, int ia, const qc_cand_result *b, int ib, int metric)
{
    return better(a, ia, b, ib, metric) > 0;
}

static double metric_of(const qc_cand_result *r, int metric)
{
    double v = metric == QC_METRIC_COSINE ? r->cosine
             : metric == QC_METRIC_TOP1 ? r->top1 : r->sqnr_db;
    return isnan(v) ? -INFINITY : v;
}

/* > 0 if a ranks before b */
static int better(const qc_cand_result *a, int ia, const qc_cand_result *b, int ib, int metric)
{
    double x = metric_of(a, metric), y = metric_of(b, metric);
    if (x != y)
        return x > y ? 1 : -1;
    x = metric_of(a, QC_METRIC_SQNR);
    y = metric_of(b, QC_METRIC_SQNR);
    if (x != y)
        return x > y ? 1 : -1;
    return ia < ib ? 1 : -1;
}

void qc_compare_rank(const qc_compare *c, int metric, int *order)
{
    for (int i = 0; i < c->n; i++) {
        int k = i;
        while (k > 0 && better(&c->ce[i].res, i, &c->ce[order[k - 1]].res, order[k - 1],
                               metric) > 0) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
}

const qc_model *qc_compare_best_model(const qc_compare *c, int *index)
{
    if (index)
        *index = c->best;
    return c->best >= 0 ? c->ce[c->best].qm : NULL;
}

/* Loads eval sample pos (dataset index idx) and runs the float model on it (fx); *skip if it
 * holds NaN/Inf. The first run of each position keeps its outputs (qc_compare.eval_refs). */
static int float_run(qc_compare *c, qc_exec *fx, qc_dataset *d, int pos, int idx, int strict,
                     qc_tensor **in, int *skip, qc_err *err)
{
    int rc = qc_dataset_load(d, idx, in, err);
    int64_t bad;
    *skip = 0;
    if (rc != QC_OK)
        return rc;
    if ((bad = qc_tensors_nonfinite(*in, c->m->n_inputs)) != 0) {
        *skip = 1;
        c->eval_refs_pos += pos == c->eval_refs_pos;
        return strict ? qc_errf(err, QC_EINPUT, "eval sample %s: %lld NaN/Inf values "
                                "(--strict)", qc_dataset_sample_name(d, idx), (long long)bad)
                      : QC_OK;
    }
    if ((rc = qc_exec_run(fx, *in, c->m->n_inputs, err)) != QC_OK) {
        qc_err_prefix(err, "%s", qc_dataset_sample_name(d, idx));
        return rc;
    }
    c->eval_float_runs++;
    size_t peak = qc_exec_peak_bytes(fx);
    c->eval_peak = peak > c->eval_peak ? peak : c->eval_peak;
    if (pos != c->eval_refs_pos)
        return QC_OK;
    c->eval_refs_pos++;
    return qc_cmp_refs_add(&c->eval_refs, c->m, fx, idx, err);
}

/* Keeps the better of the current best and candidate i (by metric); frees the other's model
 * when `drop` (candidate-major: at most two models alive). */
static void keep_best(qc_compare *c, int i, int metric, int drop)
{
    if (c->best < 0 || better(&c->ce[i].res, i, &c->ce[c->best].res, c->best, metric) > 0) {
        if (drop && c->best >= 0)
            qc_cmp_cand_release(&c->ce[c->best], 1);
        c->best = i;
    } else if (drop) {
        qc_cmp_cand_release(&c->ce[i], 1);
    }
}

/* ---- sample-major evaluation on several threads ----
 *
 * Candidates run side by side, one thread each at a time, every thread single-threaded
 * inside (small kernels and the per-layer sums keep a pool of two threads busy only part of
 * the time; whole candidate runs side by side keep both cores busy). A candidate's sums only
 * ever see its own samples in sample order, one run at a time, so the results are those of
 * the serial loop bit for bit, whatever thread ran what. Two float executors take turns
 * (sample s in slot s % 2): the float pass of the next sample runs while candidates still
 * work on the current one, so no thread waits at the end of each sample. */
enum { JOB_NONE = -2, JOB_FLOAT = -1 };

typedef struct eval_par {
    qc_compare                 *c;
    qc_dataset                 *d;
    const int                  *idx;
    int                         n;
    const qc_compare_eval_opts *o;
    qc_exec                    *fx[2];
    qc_exec                    *ff[2];          /* fused, outputs only: samples past the
                                                 * per-layer ones (created on first use) */
    qc_exec                    *ref[2];         /* the one that ran slot k's sample */
    qc_tensor                  *in[2];          /* copies: the dataset holds one sample */
    int                         n_in[2];        /* tensors allocated in in[k] */
    int                         skip[2];
    int                         f_next, f_busy; /* float pass: samples done, running */
    int                        *next, *busy;    /* per candidate: next sample, running */
    int64_t                     done, total;
    int                         rc, err_s, err_i; /* first error by (sample, candidate) */
    qc_err                      err;
    pthread_mutex_t             mu;
    pthread_cond_t              cv;
} eval_par;

static int copy_inputs(eval_par *p, int k, const qc_tensor *in, qc_err *err)
{
    int n = p->c->m->n_inputs;
    for (int i = 0; i < p->n_in[k]; i++)
        qc_tensor_free(&p->in[k][i]);
    p->n_in[k] = 0;
    for (int i = 0; i < n; i++) {
        int rc = qc_tensor_alloc(&p->in[k][i], in[i].dtype, in[i].ndim, in[i].dims, err);
        if (rc != QC_OK)
            return rc;
        p->n_in[k]++;
        p->in[k][i].name = in[i].name;
        if (qc_tensor_nbytes(&in[i]))
            memcpy(p->in[k][i].data, in[i].data, qc_tensor_nbytes(&in[i]));
    }
    return QC_OK;
}

/* Under p->mu: the next job (JOB_FLOAT, a candidate index, or JOB_NONE); candidates whose
 * next sample was skipped move past it. */
static int pick_job(eval_par *p, int *all_done)
{
    int lowest = p->n, best = JOB_NONE;
    *all_done = p->f_next == p->n && !p->f_busy;
    for (int i = 0; i < p->c->n; i++) {
        while (!p->busy[i] && p->next[i] < p->f_next && p->skip[p->next[i] & 1]) {
            p->next[i]++;
            p->done++;
            if (p->o->progress)
                p->o->progress(p->o->progress_user, p->done, p->total);
        }
        if (p->next[i] < lowest)
            lowest = p->next[i];
        if (p->next[i] < p->n)
            *all_done = 0;
        if (!p->busy[i] && p->next[i] < p->f_next &&
            (best < 0 || p->next[i] < p->next[best]))
            best = i;
    }
    if (p->rc != QC_OK)
        return JOB_NONE;
    /* the float pass of sample s overwrites slot s % 2: every candidate is past s - 2 */
    if (!p->f_busy && p->f_next < p->n && lowest >= p->f_next - 1)
        return JOB_FLOAT;
    return best;
}

static void run_jobs(eval_par *p)
{
    qc_compare *c = p->c;
    qc_err err = { 0 };
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int all_done, job = pick_job(p, &all_done);
        if (job == JOB_NONE) {
            int running = p->f_busy;
            for (int i = 0; i < c->n; i++)
                running |= p->busy[i];
            if (all_done || (p->rc != QC_OK && !running))
                break;
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        int rc, s = job == JOB_FLOAT ? p->f_next : p->next[job], k = s & 1;
        if (job == JOB_FLOAT)
            p->f_busy = 1;
        else
            p->busy[job] = 1;
        pthread_mutex_unlock(&p->mu);
        if (job == JOB_FLOAT) {
            qc_tensor *in;
            int skip = 0;
            /* past the per-layer samples the candidates read the outputs only: an executor
             * with elementwise chains and without keep_all gives the same bits */
            rc = QC_OK;
            p->ref[k] = p->fx[k];
            if (p->o->layer_samples > 0 && c->n_eval >= p->o->layer_samples) {
                if (!p->ff[k])
                    rc = qc_exec_new(&p->ff[k], c->m,
                                     &(qc_exec_opts){ .fuse = 1, .fuse_exact = 1 }, &err);
                p->ref[k] = p->ff[k];
            }
            if (rc == QC_OK)
                rc = float_run(c, p->ref[k], p->d, s, p->idx[s], p->o->strict, &in, &skip,
                               &err);
            if (rc == QC_OK && !skip)
                rc = copy_inputs(p, k, in, &err);
            p->skip[k] = skip;
            c->eval_skipped += skip;
            c->n_eval += !skip;
        } else {
            rc = eval_one(c, &c->ce[job], p->ref[k], p->in[k], &err);
        }
        pthread_mutex_lock(&p->mu);
        if (rc != QC_OK) {
            int ji = job == JOB_FLOAT ? -1 : job;
            if (p->rc == QC_OK || s < p->err_s || (s == p->err_s && ji < p->err_i)) {
                p->rc = rc;
                p->err = err;
                p->err_s = s;
                p->err_i = ji;
            }
        } else if (job == JOB_FLOAT) {
            p->f_next++;
        } else {
            c->quant_runs++;
            p->next[job]++;
            p->done++;
            if (p->o->progress)
                p->o->progress(p->o->progress_user, p->done, p->total);
        }
        if (job == JOB_FLOAT)
            p->f_busy = 0;
        else
            p->busy[job] = 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

static void *job_thread(void *arg)
{
    qc_par_set_serial(1);
    run_jobs(arg);
    return NULL;
}

static int eval_side_by_side(qc_compare *c, qc_dataset *d, const int *idx, int n, int threads,
                             const qc_compare_eval_opts *o, qc_err *err)
{
    qc_exec_opts keep = { .keep_all = 1 };
    eval_par p = { .c = c, .d = d, .idx = idx, .n = n, .o = o, .total = (int64_t)n * c->n };
    pthread_t th[16];
    int rc, started = 0, n_in = c->m->n_inputs + 1;
    p.fx[0] = c->fx;
    p.next = calloc((size_t)c->n, sizeof *p.next);
    p.busy = calloc((size_t)c->n, sizeof *p.busy);
    p.in[0] = calloc((size_t)n_in, sizeof *p.in[0]);
    p.in[1] = calloc((size_t)n_in, sizeof *p.in[1]);
    if (!p.next || !p.busy || !p.in[0] || !p.in[1])
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
    else
        rc = qc_exec_new(&p.fx[1], c->m, &keep, err);
    if (rc == QC_OK) {
        pthread_mutex_init(&p.mu, NULL);
        pthread_cond_init(&p.cv, NULL);
        if (threads > 16)
            threads = 16;
        for (int t = 1; t < threads; t++) {
            if (pthread_create(&th[started], NULL, job_thread, &p) != 0)
                break;          /* fewer threads: the others do the work */
            started++;
        }
        qc_par_set_serial(started > 0);
        run_jobs(&p);
        qc_par_set_serial(0);
        for (int t = 0; t < started; t++)
            pthread_join(th[t], NULL);
        pthread_cond_destroy(&p.cv);
        pthread_mutex_destroy(&p.mu);
        if ((rc = p.rc) != QC_OK)
            *err = p.err;
    }
    for (int k = 0; k < 2; k++) {
        for (int i = 0; p.in[k] && i < p.n_in[k]; i++)
            qc_tensor_free(&p.in[k][i]);
        free(p.in[k]);
    }
    qc_exec_free(p.fx[1]);
    qc_exec_free(p.ff[0]);
    qc_exec_free(p.ff[1]);
    free(p.next);
    free(p.busy);
    return rc;
}

int qc_compare_evaluate(qc_compare *c, qc_dataset *d, const int *idx, int n,
                        const qc_compare_eval_opts *o, qc_err *err)
{
    const qc_model *m = c->m;
    qc_exec_opts keep = { .keep_all = 1 };
    qc_tensor *in;
    int rc = QC_OK, skip;
    if (c->ranges_set)
        return qc_errf(err, QC_EUSAGE, "compare: candidates already evaluated");
    c->ranges_set = 1;
    if ((rc = qc_cmp_set_ranges(c, err)) != QC_OK)
        return rc;
    if (!c->fx && (rc = qc_exec_new(&c->fx, m, &keep, err)) != QC_OK)
        return rc;
    for (int i = 0; i < c->n; i++)
        if ((rc = alloc_outputs(c, &c->ce[i], err)) != QC_OK)
            return rc;
    if ((rc = qc_cmp_refs_alloc(&c->eval_refs, n, m->n_outputs, 0, err)) != QC_OK ||
        !(c->eval_refs_all = malloc(((size_t)n + 1) * sizeof *idx)))
        return rc != QC_OK ? rc : qc_errf(err, QC_ENOMEM, "out of memory");
    if (n > 0)
        memcpy(c->eval_refs_all, idx, (size_t)n * sizeof *idx);
    c->eval_refs_d = d;
    c->eval_refs_pos = 0;
    /* every candidate alive at once costs about twice its weights (the QDQ model and its
     * folded copy) and twice the float activations (the Q/DQ outputs) */
    size_t w_bytes = 0, budget = o->max_bytes ? o->max_bytes : (size_t)1 << 30;
    for (int i = 0; i < m->n_inits; i++)
        w_bytes += qc_tensor_nbytes(&m->inits[i]);
    size_t per_cand = 2 * (w_bytes + qc_cmp_calib_peak(c));
    c->sample_major = o->force_schedule == 1 ||
                      (o->force_schedule == 0 && per_cand * (size_t)c->n <= budget);
    int64_t total = (int64_t)n * c->n, done = 0;
    c->n_eval = 0;
    c->eval_skipped = 0;
    for (int i = 0; i < c->n; i++)
        c->ce[i].layer_limit = o->layer_samples > 0 ? o->layer_samples : 0;
    if (c->sample_major) {
        int threads = qc_par_threads() < c->n ? qc_par_threads() : c->n;
        rc = build_all(c, err);
        if (rc == QC_OK && threads > 1 && n > 0)
            rc = eval_side_by_side(c, d, idx, n, threads, o, err);
        for (int s = 0; s < n && rc == QC_OK && threads <= 1; s++) {
            if ((rc = float_run(c, c->fx, d, s, idx[s], o->strict, &in, &skip, err)) != QC_OK)
                break;
            c->eval_skipped += skip;
            c->n_eval += !skip;
            for (int i = 0; i < c->n && rc == QC_OK && !skip; i++)
                if ((rc = eval_one(c, &c->ce[i], c->fx, in, err)) == QC_OK)
                    c->quant_runs++;
            done += c->n;
            if (o->progress)
                o->progress(o->progress_user, done, total);
        }
        for (int i = 0; i < c->n && rc == QC_OK; i++) {
            finish_cand(&c->ce[i]);
            qc_cmp_cand_release(&c->ce[i], 0);
            keep_best(c, i, o->metric, 0);
        }
        for (int i = 0; i < c->n && rc == QC_OK; i++)
            if (i != c->best)
                qc_cmp_cand_release(&c->ce[i], 1);
        return rc;
    }
    for (int i = 0; i < c->n && rc == QC_OK; i++) {
        cand_eval *ce = &c->ce[i];
        if ((rc = build_cand(c, ce, err)) != QC_OK)
            break;
        for (int s = 0; s < n && rc == QC_OK; s++) {
            if ((rc = float_run(c, c->fx, d, s, idx[s], o->strict, &in, &skip, err)) != QC_OK)
                break;
            if (i == 0) {
                c->eval_skipped += skip;
                c->n_eval += !skip;
            }
            if (!skip && (rc = eval_one(c, ce, c->fx, in, err)) == QC_OK)
                c->quant_runs++;
            if (o->progress)
                o->progress(o->progress_user, ++done, total);
        }
        if (rc != QC_OK)
            break;
        finish_cand(ce);
        qc_cmp_cand_release(ce, 0);
        keep_best(c, i, o->metric, 1);
    }
    return rc;
}
