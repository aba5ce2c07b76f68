/* Sensitivity (each quantized node left in float alone) and mixed precision (--keep-float N,
 * --target-sqnr DB): variants of one evaluated candidate with the same ranges, built with
 * --exclude and measured against the float model's outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compare_priv.h"
#include "par.h"
#include "qc_prepare.h"
#include "quant_priv.h"

typedef struct sens_state {
    int             base;
    double          base_sqnr;
    int             n;
    qc_sens_layer  *l;
    const char    **fl;         /* l[i].node */
    qc_mixed_result mr;
    qc_model       *mixed;
    qc_auto_confirm ac;
    qc_model       *confirmed;
} sens_state;

typedef struct vres {
    double sqnr, cosine, max_abs, top1;
} vres;

void qc_cmp_refs_free(refset *rs, int n_out)
{
    for (int i = 0; rs->ref && i < rs->n * n_out; i++)
        free(rs->ref[i]);
    for (int i = 0; rs->in && i < rs->n_in; i++)
        qc_tensor_free(&rs->in[i]);
    free(rs->in);
    free(rs->ref);
    free(rs->idx);
    free(rs->numel);
    free(rs->cols);
    memset(rs, 0, sizeof *rs);
}

int qc_cmp_refs_alloc(refset *rs, int n, int n_out, int n_in, qc_err *err)
{
    size_t cells = (size_t)(n + 1) * (size_t)(n_out + 1);
    memset(rs, 0, sizeof *rs);
    rs->idx = calloc((size_t)n + 1, sizeof *rs->idx);
    rs->ref = calloc(cells, sizeof *rs->ref);
    rs->numel = calloc(cells, sizeof *rs->numel);
    rs->cols = calloc(cells, sizeof *rs->cols);
    if (n_in)
        rs->in = calloc((size_t)(n + 1) * (size_t)(n_in + 1), sizeof *rs->in);
    if (!rs->idx || !rs->ref || !rs->numel || !rs->cols || (n_in && !rs->in))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    return QC_OK;
}

int qc_cmp_refs_add(refset *rs, const qc_model *m, const qc_exec *fx, int idx, qc_err *err)
{
    int no = m->n_outputs;
    for (int o = 0; o < no; o++) {
        const qc_tensor *t = qc_exec_output(fx, o);
        size_t k = (size_t)rs->n * (size_t)no + (size_t)o;
        if (!t || t->dtype != QC_F32)
            continue;
        rs->numel[k] = qc_tensor_numel(t);
        rs->cols[k] = t->ndim == 2 && t->dims[1] > 1 ? t->dims[1] : 0;
        if (!(rs->ref[k] = malloc((size_t)rs->numel[k] * sizeof(float) + 1)))
            return qc_errf(err, QC_ENOMEM, "out of memory");
        memcpy(rs->ref[k], t->data, (size_t)rs->numel[k] * sizeof(float));
    }
    rs->idx[rs->n++] = idx;
    return QC_OK;
}

static int refs_make(qc_compare *c, qc_dataset *d, const int *idx, int n, int keep_inputs,
                     refset *rs, qc_err *err)
{
    const qc_model *m = c->m;
    int rc = qc_cmp_refs_alloc(rs, n, m->n_outputs, keep_inputs ? m->n_inputs : 0, err);
    if (rc != QC_OK)
        return rc;
    if (!c->fx && (rc = qc_exec_new(&c->fx, m, NULL, err)) != QC_OK)
        return rc;
    for (int s = 0; s < n; s++) {
        qc_tensor *in;
        if ((rc = qc_dataset_load(d, idx[s], &in, err)) != QC_OK)
            return rc;
        if (qc_tensors_nonfinite(in, m->n_inputs))
            continue;
        if ((rc = qc_exec_run(c->fx, in, m->n_inputs, err)) != QC_OK) {
            qc_err_prefix(err, "%s", qc_dataset_sample_name(d, idx[s]));
            return rc;
        }
        for (int i = 0; rs->in && i < m->n_inputs; i++) {
            qc_tensor *t = &rs->in[rs->n_in];
            if ((rc = qc_tensor_alloc(t, in[i].dtype, in[i].ndim, in[i].dims, err)) != QC_OK)
                return rc;
            rs->n_in++;
            t->name = in[i].name;
            if (qc_tensor_nbytes(&in[i]))
                memcpy(t->data, in[i].data, qc_tensor_nbytes(&in[i]));
        }
        if ((rc = qc_cmp_refs_add(rs, m, c->fx, idx[s], err)) != QC_OK)
            return rc;
    }
    return QC_OK;
}

/* The float outputs on eval samples (d, idx, n): those the evaluation kept
 * (qc_compare.eval_refs) when it is that set, else made into *own; *own is the caller's to
 * free either way (qc_cmp_refs_free). */
static int eval_refs(qc_compare *c, qc_dataset *d, const int *idx, int n, refset *own,
                     const refset **out, qc_err *err)
{
    memset(own, 0, sizeof *own);
    *out = own;
    if (c->eval_refs_all && c->eval_refs_d == d && c->eval_refs_pos == n &&
        memcmp(c->eval_refs_all, idx, (size_t)n * sizeof *idx) == 0) {
        *out = &c->eval_refs;
        return QC_OK;
    }
    return refs_make(c, d, idx, n, 0, own, err);
}

/* Hybrid ranges: tensor k takes auto candidate `ace`'s range where sw[k] is set. */
typedef struct hybrid {
    const cand_eval     *ace;
    const unsigned char *sw;
} hybrid;

/* The ranges candidate ce was given (qc_cmp_set_ranges), for another quantizer. */
static int set_ranges_like(qc_compare *c, const cand_eval *ce, const hybrid *hy,
                           qc_quantizer *q, qc_err *err)
{
    for (int k = 0; k < c->n_t; k++) {
        const otensor *t = &c->t[k];
        const qc_observer *o = t->obs[ce->group];
        qc_range r, seen;
        if (t->seen_dtype != QC_F32 || qc_observer_count(o) == 0 ||
            qc_observer_seen(o, &seen) != QC_OK)
            continue;
        if (hy && hy->sw[k] && qc_cmp_auto_chosen(hy->ace, k, &r)) {
            ;
        } else if (ce->au) {
            if (!qc_cmp_auto_chosen(ce, k, &r))
                continue;
        } else {
            int rc = qc_cmp_tensor_range(c, k, ce->group, &ce->cand->o, &r, err);
            if (rc != QC_OK)
                return rc;
        }
        qc_quantizer_set_range(q, t->name, r, seen, t->rank);
    }
    return QC_OK;
}

/* A node left float reads float data. The QDQ rewrite gives every reader of a quantized
 * activation its DequantizeLinear output, and onnxruntime (WeightBiasQuantization, 1.2x)
 * then quantizes the weights of a Conv / Gemm / MatMul sitting between a DequantizeLinear
 * and a QuantizeLinear by itself: the layer would not be float there. So the nodes of
 * `list` read the tensor before its QuantizeLinear instead. */
static int float_inputs(qc_model **qm, const char *list, qc_err *err)
{
    const qc_model *m = *qm;
    qc_edit *e;
    int rc = qc_edit_begin(&e, m, err), changed = 0;
    for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
        const qc_node *nd = &m->nodes[i];
        if (!nd->name || !qc_quant_in_list(list, nd->name))
            continue;
        for (int k = 0; k < nd->n_inputs && rc == QC_OK; k++) {
            int dq = nd->inputs[k][0] ? qc_model_producer(m, nd->inputs[k]) : -1;
            if (dq < 0 || strcmp(m->nodes[dq].op_type, "DequantizeLinear") != 0)
                continue;
            int q = qc_model_producer(m, m->nodes[dq].inputs[0]);
            if (q < 0 || strcmp(m->nodes[q].op_type, "QuantizeLinear") != 0)
                continue;               /* a weight's DequantizeLinear reads an initializer */
            rc = qc_edit_set_input(e, i, k, m->nodes[q].inputs[0], err);
            changed++;
        }
    }
    if (rc != QC_OK || !changed) {
        qc_edit_free(e);
        return rc;
    }
    qc_model *nm;
    if ((rc = qc_edit_finish(e, &nm, err)) == QC_OK) {
        qc_model_free(*qm);
        *qm = nm;
    }
    return rc;
}

/* Candidate `base` with the nodes of `extra` (comma list) also left in float, measured on
 * the reference samples; *keep receives its QDQ model if asked. */
static int variant_h(qc_compare *c, int base, const hybrid *hy, const char *extra,
                     qc_dataset *d, const refset *rs, vres *v, qc_model **keep, qc_err *err)
{
    const qc_model *m = c->m;
    cand_eval *ce = &c->ce[base];
    qc_quant_opts o = ce->cand->o;
    char *ex = NULL;
    qc_quantizer *q = NULL;
    qc_model *qm = NULL, *em = NULL;
    qc_exec *x = NULL;
    int no = m->n_outputs, rc = QC_OK;
    int *map = calloc((size_t)no + 1, sizeof *map);
    qc_errstat *st = calloc((size_t)no + 1, sizeof *st);
    o.external_ranges = 1;              /* ranges come from set_ranges_like */
    if (extra && *extra) {
        size_t len = strlen(extra) + (o.exclude ? strlen(o.exclude) + 1 : 0) + 1;
        if ((ex = malloc(len)) != NULL)
            snprintf(ex, len, "%s%s%s", o.exclude ? o.exclude : "", o.exclude ? "," : "",
                     extra);
        o.exclude = ex;
    }
    if (!map || !st || (extra && *extra && !ex)) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = qc_quantizer_new(&q, m, &o, err)) != QC_OK)
        goto done;
    qc_quant_share_guard(q, c->pg_cache);
    qc_cmp_auto_apply_weights(ce, q);
    if ((rc = set_ranges_like(c, ce, hy, q, err)) != QC_OK ||
        (rc = qc_quantizer_build(q, &qm, err)) != QC_OK ||
        (extra && *extra && (rc = float_inputs(&qm, extra, err)) != QC_OK) ||
        (rc = qc_prepare(qm, &em, NULL, err)) != QC_OK ||
        (rc = qc_exec_new(&x, em, &(qc_exec_opts){ .cache_const = 1, .fuse_qdq = 1,
                                                   .fuse = 1 }, err)) != QC_OK)
        goto done;
    for (int i = 0; i < no; i++) {
        map[i] = -1;
        for (int k = 0; k < em->n_outputs; k++)
            if (!strcmp(em->outputs[k].name, m->outputs[i].name))
                map[i] = k;
    }
    for (int s = 0; s < rs->n && rc == QC_OK; s++) {
        qc_tensor *in = rs->in ? rs->in + (size_t)s * (size_t)m->n_inputs : NULL;
        if ((!in && (rc = qc_dataset_load(d, rs->idx[s], &in, err)) != QC_OK) ||
            (rc = qc_exec_run(x, in, m->n_inputs, err)) != QC_OK)
            break;
        for (int i = 0; i < no; i++) {
            size_t k = (size_t)s * (size_t)no + (size_t)i;
            const qc_tensor *got = map[i] >= 0 ? qc_exec_output(x, map[i]) : NULL;
            if (!rs->ref[k] || !got)
                continue;
            if (got->dtype != QC_F32 || qc_tensor_numel(got) != rs->numel[k]) {
                rc = qc_errf(err, QC_EINTERNAL, "output '%s' differs in shape or type from "
                             "the float model's", m->outputs[i].name);
                break;
            }
            qc_errstat_add(&st[i], rs->ref[k], got->data, rs->numel[k]);
            if (rs->cols[k])
                qc_errstat_add_top1(&st[i], rs->ref[k], got->data, rs->numel[k] / rs->cols[k],
                                    rs->cols[k]);
        }
    }
    if (rc != QC_OK)
        goto done;
    /* as compare's candidates: the worst output counts, top-1 pooled */
    int any = 0;
    int64_t rows = 0, agree = 0;
    v->sqnr = v->cosine = NAN;
    v->max_abs = 0;
    for (int i = 0; i < no; i++) {
        if (!st[i].n && !st[i].nonfinite)
            continue;
        double s = qc_errstat_sqnr_db(&st[i]), cs = qc_errstat_cosine(&st[i]);
        v->sqnr = !any || s < v->sqnr ? s : v->sqnr;
        v->cosine = !any || isnan(cs) || cs < v->cosine ? cs : v->cosine;
        v->max_abs = st[i].nonfinite ? INFINITY : fmax(v->max_abs, st[i].max_abs);
        rows += st[i].top1_rows;
        agree += st[i].top1_agree;
        any = 1;
    }
    v->top1 = rows ? (double)agree / (double)rows : NAN;
    if (keep) {
        *keep = qm;
        qm = NULL;
    }
done:
    if (rc != QC_OK && extra && *extra && !strchr(extra, ','))
        qc_err_prefix(err, "node '%s' left float", extra);
    qc_exec_free(x);
    qc_model_free(em);
    qc_model_free(qm);
    qc_quantizer_free(q);
    free(ex);
    free(map);
    free(st);
    return rc;
}

static int variant(qc_compare *c, int base, const char *extra, qc_dataset *d, const refset *rs,
                   vres *v, qc_model **keep, qc_err *err)
{
    return variant_h(c, base, NULL, extra, d, rs, v, keep, err);
}

/* Variants side by side (each builds its own quantizer, model and executor, runs the inputs
 * stored in rs, and touches nothing shared): the results of the serial loop, and its first
 * error (lowest index). */
typedef struct vjob {
    const hybrid *hy;
    const char   *extra;
    int           run;          /* 0: not measured */
    vres          v;
} vjob;

typedef struct vjobs {
    qc_compare   *c;
    int           base;
    const refset *rs;
    vjob         *j;
} vjobs;

static int vjob_item(void *ctx, int64_t i, qc_err *err)
{
    vjobs *vs = ctx;
    vjob *j = &vs->j[i];
    return j->run ? variant_h(vs->c, vs->base, j->hy, j->extra, NULL, vs->rs, &j->v, NULL, err)
                  : QC_OK;
}

static int run_variants(qc_compare *c, int base, const refset *rs, vjob *j, int n, qc_err *err)
{
    vjobs vs = { c, base, rs, j };
    return qc_par_each(n, vjob_item, &vs, err);
}

void qc_cmp_sens_free(qc_compare *c)
{
    sens_state *ss = c->sens;
    if (!ss)
        return;
    free(ss->l);
    free(ss->fl);
    qc_model_free(ss->mixed);
    qc_model_free(ss->confirmed);
    free(ss);
    c->sens = NULL;
}

static sens_state *state(qc_compare *c)
{
    if (!c->sens) {
        c->sens = calloc(1, sizeof *c->sens);
        if (c->sens)
            c->sens->ac.auto_cand = -1;
    }
    return c->sens;
}

/* x goes before y: measured first, then the higher SQNR when float */
static int before(const qc_sens_layer *x, const qc_sens_layer *y)
{
    if (isnan(y->sqnr_db))
        return !isnan(x->sqnr_db);
    return !isnan(x->sqnr_db) && x->sqnr_db > y->sqnr_db;
}

int qc_compare_sensitivity(qc_compare *c, int base, qc_dataset *d, const int *idx, int n,
                           qc_err *err)
{
    const qc_model *m = c->m;
    refset rs = { 0 };
    vres v;
    vjob *jobs = NULL;
    int rc;
    if (base < 0 || base >= c->n || !c->ce[base].res.n_eval)
        return qc_errf(err, QC_EUSAGE, "sensitivity: candidate %d was not evaluated", base);
    sens_state *ss = state(c);
    if (!ss)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    free(ss->l);
    free(ss->fl);
    qc_model_free(ss->mixed);
    ss->l = NULL;
    ss->fl = NULL;
    ss->mixed = NULL;
    ss->n = 0;
    memset(&ss->mr, 0, sizeof ss->mr);
    ss->base = base;
    ss->mr.target_db = NAN;
    const qc_quantizer *q = c->ce[base].q;
    if ((rc = refs_make(c, d, idx, n, 1, &rs, err)) != QC_OK)
        goto done;
    if (rs.n == 0) {
        rc = qc_errf(err, QC_EINPUT, "sensitivity: no usable sample");
        goto done;
    }
    if ((rc = variant(c, base, NULL, d, &rs, &v, NULL, err)) != QC_OK)
        goto done;
    ss->base_sqnr = v.sqnr;
    ss->l = calloc((size_t)m->n_nodes + 1, sizeof *ss->l);
    ss->fl = calloc((size_t)m->n_nodes + 1, sizeof *ss->fl);
    if (!ss->l || !ss->fl) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto done;
    }
    if (!(jobs = calloc((size_t)m->n_nodes + 1, sizeof *jobs))) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *nd = &m->nodes[i];
        /* --exclude takes a comma list of names: unnamed nodes cannot be named there */
        if (!q->nodes[i].final || !nd->name || !nd->name[0] || strchr(nd->name, ','))
            continue;
        qc_sens_layer *l = &ss->l[ss->n];
        l->node = nd->name;
        l->op_type = nd->op_type;
        l->sqnr_db = NAN;
        jobs[ss->n].extra = nd->name;
        jobs[ss->n++].run = !qc_quant_is_movement(nd->op_type);
    }
    if ((rc = run_variants(c, base, &rs, jobs, ss->n, err)) != QC_OK)
        goto done;
    for (int i = 0; i < ss->n; i++)
        if (jobs[i].run)
            ss->l[i].sqnr_db = jobs[i].v.sqnr;
    for (int i = 1; i < ss->n; i++) {     /* stable: ties keep the file order */
        qc_sens_layer x = ss->l[i];
        int k = i;
        for (; k > 0 && before(&x, &ss->l[k - 1]); k--)
            ss->l[k] = ss->l[k - 1];
        ss->l[k] = x;
    }
    for (int i = 0; i < ss->n; i++)
        ss->fl[i] = ss->l[i].node;
done:
    qc_cmp_refs_free(&rs, m->n_outputs);
    free(jobs);
    if (rc != QC_OK)
        ss->n = 0;
    return rc;
}

int qc_compare_n_sens(const qc_compare *c)
{
    return c->sens ? c->sens->n : 0;
}

const qc_sens_layer *qc_compare_sens(const qc_compare *c, int i)
{
    return c->sens && i >= 0 && i < c->sens->n ? &c->sens->l[i] : NULL;
}

double qc_compare_sens_base(const qc_compare *c, int *base)
{
    if (base)
        *base = c->sens ? c->sens->base : -1;
    return c->sens ? c->sens->base_sqnr : NAN;
}

/* The first k nodes of the sensitivity order as an --exclude list. */
static char *join(const sens_state *ss, int k)
{
    size_t len = 1;
    for (int i = 0; i < k; i++)
        len += strlen(ss->fl[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p = 0;
    for (int i = 0; i < k; i++)
        p += sprintf(p, "%s%s", i ? "," : "", ss->fl[i]);
    return s;
}

/* Evaluates the mixed model with the k most sensitive nodes float; it becomes the answer
 * (ss->mixed, ss->mr) if keep says so: always (1), or if it reaches target (2). */
static int probe(qc_compare *c, qc_dataset *d, const refset *rs, int k, int keep,
                 double target, vres *v, qc_err *err)
{
    sens_state *ss = c->sens;
    qc_model *qm = NULL;
    char *ex = join(ss, k);
    if (!ex)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    int rc = variant(c, ss->base, ex, d, rs, v, &qm, err);
    free(ex);
    ss->mr.n_models++;
    if (rc != QC_OK)
        return rc;
    if (keep == 1 || (keep == 2 && v->sqnr >= target)) {
        qc_model_free(ss->mixed);
        ss->mixed = qm;
        ss->mr.n_float = k;
        ss->mr.sqnr_db = v->sqnr;
        ss->mr.cosine = v->cosine;
        ss->mr.max_abs = v->max_abs;
        ss->mr.top1 = v->top1;
        ss->mr.model = qm;
        ss->mr.float_nodes = ss->fl;
    } else {
        qc_model_free(qm);
    }
    return QC_OK;
}

int qc_compare_mixed(qc_compare *c, qc_dataset *d, const int *idx, int n, int keep_float,
                     double target_db, qc_err *err)
{
    sens_state *ss = c->sens;
    refset rs;
    vres v;
    int rc;
    if (!ss)
        return qc_errf(err, QC_EUSAGE, "mixed precision: no sensitivity measured");
    ss->mr.n_models = 0;
    ss->mr.target_db = keep_float >= 0 ? NAN : target_db;
    const refset *rp;
    if ((rc = eval_refs(c, d, idx, n, &rs, &rp, err)) != QC_OK)
        goto done;
    if (rp->n == 0) {
        rc = qc_errf(err, QC_EINPUT, "mixed precision: no usable eval sample");
        goto done;
    }
    ss->mr.n_eval = rp->n;
    if ((rc = probe(c, d, rp, 0, 1, target_db, &v, err)) != QC_OK)
        goto done;
    ss->mr.base_sqnr_db = v.sqnr;
    if (keep_float > 0) {
        rc = probe(c, d, rp, keep_float < ss->n ? keep_float : ss->n, 1, target_db, &v,
                   err);
        goto done;
    }
    if (keep_float == 0 || v.sqnr >= target_db)
        goto done;
    /* fail: a count measured below the target; ok: one measured at or above it (when all
     * nodes are float nothing is quantized: the float model itself). Galloping first: a few
     * nodes often hold most of the error, and the SQNR need not grow monotonically with
     * the count, so the small counts are tried before any bisection. */
    int fail = 0, ok = ss->n;
    for (int k = 1; k < ss->n && rc == QC_OK; k *= 2) {
        if ((rc = probe(c, d, rp, k, 2, target_db, &v, err)) != QC_OK)
            goto done;
        if (v.sqnr >= target_db) {
            ok = k;
            break;
        }
        fail = k;
    }
    if (ok == ss->n &&
        ((rc = probe(c, d, rp, ok, 1, target_db, &v, err)) != QC_OK || v.sqnr < target_db))
        goto done;
    while (ok - fail > 1 && rc == QC_OK) {
        int mid = fail + (ok - fail) / 2;
        if ((rc = probe(c, d, rp, mid, 2, target_db, &v, err)) != QC_OK)
            break;
        if (v.sqnr >= target_db)
            ok = mid;
        else
            fail = mid;
    }
done:
    if (keep_float < 0)
        ss->mr.reached = rc == QC_OK && ss->mr.sqnr_db >= target_db;
    qc_cmp_refs_free(&rs, c->m->n_outputs);
    return rc;
}

const qc_mixed_result *qc_compare_mixed_result(const qc_compare *c)
{
    return c->sens && c->sens->mr.model ? &c->sens->mr : NULL;
}

/* ---- auto confirmed on the output ---- */

static double vmetric(const vres *v, int metric)
{
    double x = metric == QC_METRIC_COSINE ? v->cosine : metric == QC_METRIC_TOP1 ? v->top1
                                                                                 : v->sqnr;
    return isnan(x) ? -INFINITY : x;
}

/* a strictly better than b: by metric, then SQNR */
static int vbetter(const vres *a, const vres *b, int metric)
{
    double x = vmetric(a, metric), y = vmetric(b, metric);
    return x != y ? x > y : vmetric(a, QC_METRIC_SQNR) > vmetric(b, QC_METRIC_SQNR);
}

/* sw[k]: S's range for tensor k costs more than tau times auto's. */
static int switches(const double *cs, const double *ca, int n, double tau, unsigned char *sw)
{
    int n_sw = 0;
    for (int k = 0; k < n; k++) {
        sw[k] = ca[k] >= 0 && cs[k] > tau * ca[k];
        n_sw += sw[k];
    }
    return n_sw;
}

/* The choice is S itself: its evaluation stands. */
static void take_single(qc_auto_confirm *ac, const qc_cand_result *r)
{
    ac->sqnr_db = r->sqnr_db;
    ac->cosine = r->cosine;
    ac->max_abs = r->max_abs;
    ac->top1 = r->top1;
}

int qc_compare_auto_confirm(qc_compare *c, int metric, qc_dataset *cd, const int *cidx,
                            int cn, qc_dataset *ed, const int *eidx, int en, qc_err *err)
{
    enum { N_TAU = 3 };
    static const double taus[N_TAU] = { 2, 8, 32 };
    int *order = malloc(((size_t)c->n + 1) * sizeof *order), ia = -1, is = -1, rc = QC_OK;
    double *cs = calloc((size_t)c->n_t + 1, sizeof *cs);
    double *ca = calloc((size_t)c->n_t + 1, sizeof *ca);
    unsigned char *sw = calloc(((size_t)c->n_t + 1) * N_TAU, 1);
    hybrid hys[N_TAU];
    vjob vj[N_TAU + 1];
    memset(vj, 0, sizeof vj);
    sens_state *ss = state(c);
    refset rs = { 0 };
    vres vs, v, best;
    double tau = 0;
    if (!order || !cs || !ca || !sw || !ss) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto done;
    }
    qc_model_free(ss->confirmed);
    ss->confirmed = NULL;
    memset(&ss->ac, 0, sizeof ss->ac);
    ss->ac.auto_cand = -1;
    qc_compare_rank(c, metric, order);
    for (int i = 0; i < c->n; i++) {
        int au = c->ce[order[i]].au != NULL;
        if (au && ia < 0)
            ia = order[i];
        if (!au && is < 0)
            is = order[i];
    }
    if (ia < 0 || is < 0 || !c->ce[ia].res.n_eval || !c->ce[is].res.n_eval)
        goto done;
    const cand_eval *ace = &c->ce[ia], *sce = &c->ce[is];
    if (qc_cmp_better(&ace->res, ia, &sce->res, is, metric) ||
        (qc_cmp_metric(&ace->res, metric) == qc_cmp_metric(&sce->res, metric) &&
         ace->res.sqnr_db >= sce->res.sqnr_db))
        goto done;                  /* auto already at least as good as every single method */
    for (int k = 0; k < c->n_t; k++) {
        const otensor *t = &c->t[k];
        const qc_observer *o = t->obs[sce->group];
        qc_range ra, rsr;
        ca[k] = -1;
        if (t->seen_dtype != QC_F32 || qc_observer_count(o) == 0 ||
            !qc_cmp_auto_chosen(ace, k, &ra))
            continue;
        if ((rc = qc_cmp_range(o, &sce->cand->o, &rsr, err)) != QC_OK)
            goto done;
        ca[k] = qc_cmp_auto_cost(c, ace, k, ra);
        cs[k] = qc_cmp_auto_cost(c, ace, k, rsr);
    }
    /* S and the hybrids with a switch, side by side; chosen in this order */
    for (int i = 0; i < N_TAU; i++) {
        hys[i] = (hybrid){ ace, sw + (size_t)i * ((size_t)c->n_t + 1) };
        vj[i + 1].hy = &hys[i];
        vj[i + 1].run = switches(cs, ca, c->n_t, taus[i], sw + (size_t)i * ((size_t)c->n_t + 1))
                        > 0;
    }
    vj[0].run = 1;
    int n_hy = 0;
    for (int i = 0; i < N_TAU; i++)
        n_hy += vj[i + 1].run;
    ss->ac.auto_cand = ia;
    ss->ac.single = is;
    ss->ac.n_hybrids = n_hy;
    if (n_hy == 0) {                /* every hybrid is S: nothing to run */
        ss->ac.calib_single_db = ss->ac.calib_db = NAN;
        take_single(&ss->ac, &sce->res);
        goto done;
    }
    if ((rc = refs_make(c, cd, cidx, cn, 1, &rs, err)) != QC_OK ||
        (rc = run_variants(c, is, &rs, vj, N_TAU + 1, err)) != QC_OK)
        goto done;
    vs = best = vj[0].v;
    for (int i = 0; i < N_TAU; i++)
        if (vj[i + 1].run && vbetter(&vj[i + 1].v, &best, metric)) {
            best = vj[i + 1].v;
            tau = taus[i];
        }
    ss->ac.tau = tau;
    ss->ac.n_calib = rs.n;
    ss->ac.calib_single_db = vs.sqnr;
    ss->ac.calib_db = best.sqnr;
    qc_cmp_refs_free(&rs, c->m->n_outputs);
    if (tau == 0) {
        take_single(&ss->ac, &sce->res);
        goto done;
    }
    hybrid hy = { ace, sw };
    ss->ac.n_switched = switches(cs, ca, c->n_t, tau, sw);
    const refset *er;
    if ((rc = eval_refs(c, ed, eidx, en, &rs, &er, err)) != QC_OK ||
        (rc = variant_h(c, is, &hy, NULL, ed, er, &v, &ss->confirmed, err)) != QC_OK)
        goto done;
    ss->ac.sqnr_db = v.sqnr;
    ss->ac.cosine = v.cosine;
    ss->ac.max_abs = v.max_abs;
    ss->ac.top1 = v.top1;
    ss->ac.model = ss->confirmed;
done:
    qc_cmp_refs_free(&rs, c->m->n_outputs);
    free(order);
    free(cs);
    free(ca);
    free(sw);
    return rc;
}

const qc_auto_confirm *qc_compare_auto_confirmed(const qc_compare *c)
{
    const qc_auto_confirm *ac = c->sens ? &c->sens->ac : NULL;
    return ac && ac->auto_cand >= 0 && (ac->n_calib || !ac->n_hybrids) ? ac : NULL;
}
