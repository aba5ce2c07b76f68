/* Empirical bias correction: measure, per output channel, how far the quantized model's
 * Conv/ConvTranspose/Gemm outputs drift from the float model's on calibration samples, and move
 * each bias by minus that drift. Samples stream through both executors one at a time, the
 * quantized run following the float one node by node from its hook (choose_lockstep), whole
 * samples side by side on shards (qc_pass.h), so memory is one sample's activations per shard
 * and executor plus one accumulator per output channel and shard.
 *
 * Each sample's per-channel sum is rounded to a multiple of 2^-ACC_BITS and accumulated as an
 * integer: integer sums do not depend on the order, so which shard saw which sample changes
 * nothing (the same bytes at any thread count). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "qc_biascorr.h"
#include "qc_edit.h"
#include "qc_exec.h"
#include "qc_pass.h"
#include "quant_priv.h"

/* finish_bias (quantizer.c) keeps int32 biases within half of int32: the integer kernel adds a
 * whole dot product to them */
#define BIAS_LIM 1073741823.0
#define ACC_BITS 24
#define ACC_LIM  4.0e17             /* |per-sample sum| * 2^ACC_BITS beyond: the node is skipped */

typedef struct target {
    const char *node;           /* node name (stable across edits) */
    const char *out;            /* its output: the same name in the float model */
    const char *bias;           /* float bias initializer, or the int32 one behind its DQ */
    const char *scale;          /* int32: the DQ's scale initializer; NULL for a float bias */
    int         n_ch;
    int         q_node;         /* its index in the quantized model */
    int         f_node;         /* the float model's node computing `out`, or -1 */
    int         bad;            /* output missing in the float model or shapes differ */
    int         slot;           /* its output in the pass's stash (qc_bc_stash_find) */
    double     *sum;            /* sum of (quantized - float) per channel, this pass */
    int64_t     count;          /* values summed per channel */
} target;

/* What one shard accumulates: per target, per-channel sums (units of 2^-ACC_BITS). */
typedef struct bc_acc {
    int64_t **acc;
    int64_t  *count;
    char     *bad;
} bc_acc;

typedef struct bc_state bc_state;

typedef struct bc_shard {
    bc_state   *st;
    qc_dataset *d;              /* the caller's for shard 0, a clone for the others */
    qc_exec    *fx, *qx;        /* float (keep_all), quantized (the current model) */
    int         n_in;
    int         cur;            /* the sample running, if its float values are stashed; -1 */
    int         n_stashed;      /* samples it measured that way */
    bc_acc      a;
} bc_shard;

struct bc_state {
    target        *t;
    int            n_t;
    const char   **names;       /* the targets' node names: summed, not run (qc_exec sum_only) */
    qc_tensor     *stash;       /* float outputs of the first n_stash samples, for verify */
    int            n_stash, n_out;
    int           *by_node;     /* node index in the quantized model -> target or -1 */
    int           *f_by_node;   /* node index in the float model -> target or -1 */
    const qc_model *float_m;
    const char   **keep;        /* the targets' outputs (the float executors without lockstep) */
    const qc_bc_stash *pass;    /* the calibration pass's float values (opts.stash), or NULL */
    int            lockstep;    /* the quantized run follows the float one (see measure) */
    bc_shard      *sh;
    int            n_sh;
};

void qc_biascorr_opts_default(qc_biascorr_opts *o)
{
    o->n_samples = 16;
    o->n_verify = 8;
    o->stash = NULL;
}

/* The bias of node n as a float initializer, or as int32 behind a DequantizeLinear with a
 * zero point of 0 (what the QDQ rewrite writes). 0 if neither, or if it is shared (one bias
 * cannot follow two nodes' errors). */
static int bias_of(const qc_model *m, const qc_node *n, target *t)
{
    const char *b = n->inputs[2];
    const qc_tensor *bt = qc_model_init(m, b);
    if (qc_model_n_readers(m, b) != 1)
        return 0;
    if (bt) {
        if (bt->dtype != QC_F32)
            return 0;
        t->bias = b, t->scale = NULL, t->n_ch = (int)qc_tensor_numel(bt);
        return t->n_ch > 0;
    }
    int p = qc_model_producer(m, b);
    if (p < 0 || strcmp(m->nodes[p].op_type, "DequantizeLinear") || m->nodes[p].n_inputs < 2)
        return 0;
    const qc_node *dq = &m->nodes[p];
    const qc_tensor *qb = qc_model_init(m, dq->inputs[0]), *s = qc_model_init(m, dq->inputs[1]);
    const qc_tensor *zp = dq->n_inputs > 2 && dq->inputs[2][0] ? qc_model_init(m, dq->inputs[2])
                                                               : NULL;
    if (!qb || qb->dtype != QC_I32 || !s || s->dtype != QC_F32 ||
        qc_model_n_readers(m, dq->inputs[0]) != 1)
        return 0;
    int64_t nb = qc_tensor_numel(qb), ns = qc_tensor_numel(s);
    if (nb < 1 || (ns != 1 && ns != nb))
        return 0;
    for (int64_t c = 0; zp && c < qc_tensor_numel(zp); c++)
        if (qc_tensor_get_i(zp, c) != 0)
            return 0;
    t->bias = dq->inputs[0], t->scale = dq->inputs[1], t->n_ch = (int)nb;
    return 1;
}

static int find_targets(const qc_model *q, bc_state *st, qc_err *err)
{
    st->t = calloc((size_t)q->n_nodes + 1, sizeof *st->t);
    st->by_node = malloc(((size_t)q->n_nodes + 1) * sizeof *st->by_node);
    if (!st->t || !st->by_node)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < q->n_nodes; i++) {
        target *t = &st->t[st->n_t];
        st->by_node[i] = -1;
        if (!qc_quant_biased_node(&q->nodes[i]) || !bias_of(q, &q->nodes[i], t))
            continue;
        t->node = q->nodes[i].name;
        t->out = q->nodes[i].outputs[0];
        t->q_node = i;
        if (!(t->sum = calloc((size_t)t->n_ch, sizeof *t->sum)))
            return qc_errf(err, QC_ENOMEM, "out of memory");
        st->by_node[i] = st->n_t++;
    }
    return QC_OK;
}

/* sum(a) over n values: eight float lanes over blocks of DIFF_BLOCK values (short enough for
 * float), each block added to a double; a fixed order, so the same bits always. */
#define DIFF_BLOCK 512

static double chan_sum(const float *a, int64_t n)
{
    double s = 0;
    for (int64_t j0 = 0; j0 < n; j0 += DIFF_BLOCK) {
        int64_t end = n - j0 < DIFF_BLOCK ? n : j0 + DIFF_BLOCK, j = j0;
        float lane[8] = { 0 };
        for (; j + 8 <= end; j += 8)
            for (int l = 0; l < 8; l++)
                lane[l] += a[j + l];
        double blk = 0;
        for (int l = 0; l < 8; l++)
            blk += lane[l];
        for (; j < end; j++)
            blk += a[j];
        s += blk;
    }
    return s;
}

static int hook(void *user, const qc_node *node, int node_index, const qc_tensor *const *outs,
                int n_outs, qc_err *err)
{
    bc_shard *sh = user;
    bc_state *st = sh->st;
    (void)node, (void)err;
    int k = st->by_node[node_index], n_sums = 0;
    if (k < 0 || n_outs < 1)
        return QC_OK;
    const target *t = &st->t[k];
    const qc_tensor *qy = outs[0];
    const qc_tensor *fy = sh->cur >= 0 ? qc_bc_stash_value(st->pass, sh->cur, t->slot)
                                       : qc_exec_value(sh->fx, qy->name);
    /* summed instead of run (sum_only): the output is ours to fill, with the float value */
    const double *sums = qc_exec_node_sums(sh->qx, &n_sums);
    int comparable = fy && fy->dtype == QC_F32 && qy->dtype == QC_F32 &&
                     qc_shape_equal(fy, qy) && qy->ndim >= 2 && qy->dims[1] == t->n_ch;
    if (sums)
        comparable ? memcpy(qy->data, fy->data, qc_tensor_nbytes(qy))
                   : memset(qy->data, 0, qc_tensor_nbytes(qy));
    if (sh->a.bad[k])
        return QC_OK;
    if (!comparable || (sums && n_sums != t->n_ch)) {
        sh->a.bad[k] = 1;           /* nothing comparable: leave this bias alone */
        return QC_OK;
    }
    int64_t outer = qy->dims[0], inner = 1;
    for (int d = 2; d < qy->ndim; d++)
        inner *= qy->dims[d];
    const float *a = qy->data, *b = fy->data;
    for (int c = 0; c < t->n_ch; c++) {
        double s = sums ? sums[c] : 0;
        for (int64_t o = 0; o < outer; o++) {
            int64_t at = (o * t->n_ch + c) * inner;
            s += (sums ? 0 : chan_sum(a + at, inner)) - chan_sum(b + at, inner);
        }
        s = ldexp(s, ACC_BITS);
        if (!(fabs(s) < ACC_LIM)) {
            sh->a.bad[k] = 1;       /* NaN/Inf or absurd: not a drift a bias can follow */
            return QC_OK;
        }
        sh->a.acc[k][c] += llrint(s);
    }
    sh->a.count[k] += outer * inner;
    /* Downstream targets must see the float value: their error is then only what the
     * quantization between two biased nodes adds (the segment's own bias, which a correction
     * here can cancel), not the upstream errors their own upstream corrections will remove.
     * Measuring the accumulated error instead over-corrects: every node would also cancel
     * what its ancestors cancel, and the shifts compound along a deep chain (one pass took
     * YOLOv8n's detection F1 from 0.92 to 0). */
    if (!sums)
        memcpy(qy->data, fy->data, qc_tensor_nbytes(qy));
    return QC_OK;
}

static void acc_free(bc_acc *a, int n_t)
{
    for (int k = 0; a->acc && k < n_t; k++)
        free(a->acc[k]);
    free(a->acc);
    free(a->count);
    free(a->bad);
    memset(a, 0, sizeof *a);
}

static int acc_alloc(bc_acc *a, const bc_state *st, qc_err *err)
{
    a->acc = calloc((size_t)st->n_t + 1, sizeof *a->acc);
    a->count = calloc((size_t)st->n_t + 1, sizeof *a->count);
    a->bad = calloc((size_t)st->n_t + 1, 1);
    int ok = a->acc && a->count && a->bad;
    for (int k = 0; ok && k < st->n_t; k++)
        ok = (a->acc[k] = calloc((size_t)st->t[k].n_ch, sizeof *a->acc[k])) != NULL;
    return ok ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
}

/* Lockstep: the float run's hook at a target's node runs the quantized model up to that
 * target, whose hook (above) reads the float output while it is alive and hot in cache. */
static int float_hook(void *user, const qc_node *node, int node_index,
                      const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    bc_shard *sh = user;
    (void)node, (void)outs, (void)n_outs;
    int k = sh->st->f_by_node[node_index];
    return k < 0 ? QC_OK : qc_exec_step_to(sh->qx, sh->st->t[k].q_node, err);
}

static int measure_sample(void *user, int shard, int i, qc_err *err)
{
    bc_shard *sh = (bc_shard *)user + shard;
    qc_tensor *in;
    int n_in = sh->n_in;
    int rc = qc_dataset_load(sh->d, i, &in, err);
    if (rc != QC_OK)
        return rc;
    if (qc_tensors_nonfinite(in, n_in))
        return 1;                   /* calibration skipped (and reported) it too */
    bc_state *st = sh->st;
    sh->cur = qc_bc_stash_has(st->pass, i) ? i : -1;
    if (sh->cur >= 0) {
        rc = qc_exec_run(sh->qx, in, n_in, err);    /* the hook reads the stash */
        sh->n_stashed++;
    } else if (!sh->fx) {
        rc = qc_errf(err, QC_EINTERNAL, "no float values stashed and no float executor");
    } else if (st->lockstep) {
        if ((rc = qc_exec_begin(sh->qx, in, n_in, err)) == QC_OK &&
            (rc = qc_exec_run(sh->fx, in, n_in, err)) == QC_OK)
            rc = qc_exec_finish(sh->qx, err);
    } else if ((rc = qc_exec_run(sh->fx, in, n_in, err)) == QC_OK) {
        rc = qc_exec_run(sh->qx, in, n_in, err);
    }
    if (rc != QC_OK) {
        qc_err_prefix(err, "sample %s", qc_dataset_sample_name(sh->d, i));
        return rc;
    }
    /* the float outputs verification compares with (each sample has its own slots) */
    for (int j = 0; i < st->n_stash && j < st->n_out && rc == QC_OK; j++) {
        const qc_tensor *f = sh->cur >= 0 ? qc_bc_stash_output(st->pass, i, j)
                                          : qc_exec_output(sh->fx, j);
        qc_tensor *dst = &st->stash[(size_t)i * st->n_out + j];
        if (!f || f->dtype != QC_F32)
            continue;               /* nothing to compare */
        if ((rc = qc_tensor_alloc(dst, QC_F32, f->ndim, f->dims, err)) == QC_OK)
            memcpy(dst->data, f->data, qc_tensor_nbytes(f));
    }
    return rc;
}

/* Lockstep needs the targets in the same order in both plans: when the float run reaches
 * target k, every target the quantized plan runs before k must be behind too. Else (or with
 * no target in the float model) the float executors are made again keeping the targets'
 * outputs, and each sample runs the float model, then the quantized one. */
static int choose_lockstep(bc_state *st, qc_err *err)
{
    const bc_shard *sh = &st->sh[0];
    int *pos = malloc(2 * ((size_t)st->n_t + 1) * sizeof *pos);  /* float, quantized plan */
    int ok = pos != NULL, n = 0, rc = QC_OK;
    for (int a = 0; a < st->n_t && ok; a++) {
        const target *t = &st->t[a];
        pos[2 * a] = t->f_node < 0 ? -1 : qc_exec_node_pos(sh->fx, t->f_node);
        pos[2 * a + 1] = qc_exec_node_pos(sh->qx, t->q_node);
        if (t->f_node < 0)
            continue;
        ok = pos[2 * a] >= 0 && pos[2 * a + 1] >= 0;
        n++;
        for (int b = 0; b < a && ok; b++)
            ok = st->t[b].f_node < 0 ||
                 (pos[2 * a] < pos[2 * b]) == (pos[2 * a + 1] < pos[2 * b + 1]);
    }
    free(pos);
    st->lockstep = ok && n > 0;
    const qc_exec_opts fo = { .keep = st->keep, .n_keep = st->n_t, .fuse = 1, .fuse_exact = 1 };
    for (int s = 0; s < st->n_sh && rc == QC_OK; s++) {
        if (st->lockstep) {
            qc_exec_set_hook(st->sh[s].fx, float_hook, &st->sh[s]);
            continue;
        }
        qc_exec_free(st->sh[s].fx);
        st->sh[s].fx = NULL;
        rc = qc_exec_new(&st->sh[s].fx, st->float_m, &fo, err);
    }
    return rc;
}

/* Every sample through both models on every shard; the shards' integer sums add up into
 * each target's per-channel mean drift. q: the model the targets were found in. */
static int measure(const qc_model *q, int n, bc_state *st, int *used, int *n_stashed,
                   qc_err *err)
{
    int rc = QC_OK;
    for (int s = 0; s < st->n_sh && rc == QC_OK; s++) {
        bc_shard *sh = &st->sh[s];
        /* fuse: the hook only reads the summed nodes' outputs, which stay as they are (a
         * summed Conv takes no code table; the table step after it reads what the hook
         * wrote) */
        if ((rc = acc_alloc(&sh->a, st, err)) == QC_OK &&
            (rc = qc_exec_new(&sh->qx, q, &(qc_exec_opts){
                 .cache_const = 1, .fuse_qdq = 1, .fuse = 1, .sum_only = st->names,
                 .n_sum_only = st->n_t }, err)) == QC_OK)
            qc_exec_set_hook(sh->qx, hook, sh);
    }
    if (rc == QC_OK && st->sh[0].fx)
        rc = choose_lockstep(st, err);
    qc_pass_ops ops = { st->sh, measure_sample, NULL };
    if (rc == QC_OK)
        rc = qc_pass_run(&ops, n, st->n_sh, used, NULL, err);
    for (int s = 0; s < st->n_sh && rc == QC_OK; s++)
        *n_stashed += st->sh[s].n_stashed;
    for (int k = 0; k < st->n_t && rc == QC_OK; k++) {
        target *t = &st->t[k];
        t->count = 0;
        for (int s = 0; s < st->n_sh; s++) {
            t->bad |= st->sh[s].a.bad[k];
            t->count += st->sh[s].a.count[k];
        }
        for (int c = 0; c < t->n_ch; c++) {
            int64_t v = 0;
            for (int s = 0; s < st->n_sh; s++)
                v += st->sh[s].a.acc[k][c];
            t->sum[c] = ldexp((double)v, -ACC_BITS);
        }
    }
    return rc;
}

static double mean_abs_err(const bc_state *st)
{
    double s = 0;
    int64_t n = 0;
    for (int k = 0; k < st->n_t; k++) {
        const target *t = &st->t[k];
        if (t->bad || !t->count)
            continue;
        for (int c = 0; c < t->n_ch; c++)
            s += fabs(t->sum[c] / (double)t->count);
        n += t->n_ch;
    }
    return n ? s / (double)n : 0;
}

static int correct_one(qc_edit *e, const qc_model *cur, const target *t, int *n_clamped,
                       qc_err *err)
{
    const qc_tensor *b = qc_model_init(cur, t->bias);
    int rc;
    if (!b || qc_tensor_numel(b) != t->n_ch)
        return qc_errf(err, QC_EINTERNAL, "node '%s': bias '%s' changed", t->node, t->bias);
    qc_tensor nb = *b;
    if (!(nb.data = malloc((size_t)t->n_ch * qc_dtype_size(b->dtype))))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if (!t->scale) {
        for (int c = 0; c < t->n_ch; c++)
            ((float *)nb.data)[c] = (float)(((const float *)b->data)[c] -
                                            t->sum[c] / (double)t->count);
    } else {
        /* same scale (input scale x weight scale): the int32 invariant stays as built */
        const qc_tensor *s = qc_model_init(cur, t->scale);
        int64_t ns = qc_tensor_numel(s);
        for (int c = 0; c < t->n_ch; c++) {
            double sc = ((const float *)s->data)[ns == 1 ? 0 : c];
            double v = ((const int32_t *)b->data)[c] -
                       nearbyint(t->sum[c] / (double)t->count / sc);
            if (fabs(v) > BIAS_LIM)
                v = v < 0 ? -BIAS_LIM : BIAS_LIM, (*n_clamped)++;
            ((int32_t *)nb.data)[c] = (int32_t)v;
        }
    }
    rc = qc_edit_remove_init(e, t->bias, err);
    if (rc == QC_OK)
        rc = qc_edit_add_init(e, &nb, err);
    free(nb.data);
    return rc;
}

static int apply(const qc_model *cur, const bc_state *st, qc_model **next, int *n_nodes,
                 int *n_clamped, qc_err *err)
{
    qc_edit *e = NULL;
    int rc = qc_edit_begin(&e, cur, err);
    *n_nodes = 0;
    for (int k = 0; k < st->n_t && rc == QC_OK; k++) {
        if (st->t[k].bad || !st->t[k].count)
            continue;
        rc = correct_one(e, cur, &st->t[k], n_clamped, err);
        (*n_nodes)++;
    }
    if (rc != QC_OK) {
        qc_edit_free(e);
        return rc;
    }
    return qc_edit_finish(e, next, err);
}

static void free_state(bc_state *st)
{
    for (int s = 0; st->sh && s < st->n_sh; s++) {
        qc_exec_free(st->sh[s].fx);
        qc_exec_free(st->sh[s].qx);
        acc_free(&st->sh[s].a, st->n_t);
        if (s > 0)
            qc_dataset_free(st->sh[s].d);
    }
    free(st->sh);
    for (int k = 0; k < st->n_t; k++)
        free(st->t[k].sum);
    for (int i = 0; st->stash && i < st->n_stash * st->n_out; i++)
        qc_tensor_free(&st->stash[i]);
    free(st->stash);
    free(st->names);
    free(st->keep);
    free(st->t);
    free(st->by_node);
    free(st->f_by_node);
    memset(st, 0, sizeof *st);
}

/* ---- Verification: the corrected model only replaces the quantized one if its outputs are
 * closer to the float model's on other calibration samples. A correction measured one node
 * at a time can still make the whole model worse (measured: ddddocr with --method auto or ema,
 * output SQNR -5 to -9 dB), and a tool that silently does that cannot be a default. */

typedef struct vf_state {
    bc_shard        *sh;        /* the datasets of the measuring shards */
    const qc_tensor *f;         /* float outputs of samples first.., n_out each (stash) */
    qc_exec         *x[2];      /* the model as quantized (job 0) and as corrected (job 1) */
    int              first, n, n_out;
    double          *e;         /* per sample and output: float energy, error 0, error 1 */
    int              used;      /* samples job 0 ran (NaN/Inf ones are skipped) */
} vf_state;

static void sq_err(const qc_tensor *f, const qc_tensor *q, double *energy, double *err)
{
    *energy = *err = 0;
    if (!f || !q || f->dtype != QC_F32 || q->dtype != QC_F32 || !qc_shape_equal(f, q))
        return;
    const float *a = f->data, *b = q->data;
    for (int64_t i = 0; i < qc_tensor_numel(f); i++) {
        double d = (double)b[i] - a[i];
        *energy += (double)a[i] * a[i];
        *err += d * d;
    }
}

/* Job j runs model j over the stage's samples in order: one executor per model, so each
 * model's weights are dequantized and packed once, and the two models run side by side. */
static int verify_job(void *user, int shard, int j, qc_err *err)
{
    vf_state *v = user;
    bc_shard *sh = &v->sh[shard];
    for (int i = 0; i < v->n; i++) {
        qc_tensor *in;
        int rc = qc_dataset_load(sh->d, v->first + i, &in, err);
        if (rc != QC_OK)
            return rc;
        if (qc_tensors_nonfinite(in, sh->n_in))
            continue;
        if ((rc = qc_exec_run(v->x[j], in, sh->n_in, err)) != QC_OK) {
            qc_err_prefix(err, "sample %s", qc_dataset_sample_name(sh->d, v->first + i));
            return rc;
        }
        v->used += j == 0;
        for (int k = 0; k < v->n_out; k++) {
            double *e = &v->e[((size_t)i * v->n_out + k) * 3], energy;
            /* the float energy once (job 0's), each job's error in its own slot */
            sq_err(&v->f[(size_t)i * v->n_out + k], qc_exec_output(v->x[j], k),
                   j ? &energy : &e[0], &e[1 + j]);
        }
    }
    return QC_OK;
}

/* Verification stops after VERIFY_FIRST samples when they already give a clear verdict (the
 * output SQNR moved by VERIFY_CLEAR_DB or more, either way): the cases the guard exists for
 * move it by 5-10 dB (ddddocr, ema and auto), and a correction that helps moves it by 2-7. */
#define VERIFY_FIRST    4
#define VERIFY_CLEAR_DB 1.0

/* Output SQNR (dB, all outputs pooled) of q0 and q1 on samples first..first+n-1 (or the first
 * VERIFY_FIRST of them, see above), against the float outputs measuring stashed. */
static int verify(bc_state *st, const qc_model *q0, const qc_model *q1, int first, int n,
                  qc_biascorr_stats *stats, qc_err *err)
{
    const qc_exec_opts xo = { .cache_const = 1, .fuse_qdq = 1, .fuse = 1 };
    vf_state v = { st->sh, NULL, { NULL, NULL }, 0, 0, st->n_out, NULL, 0 };
    double *e = calloc((size_t)n * (size_t)(v.n_out + 1) * 3, sizeof *e);
    int rc = e ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
    if (rc == QC_OK)
        rc = qc_exec_new(&v.x[0], q0, &xo, err);
    if (rc == QC_OK)
        rc = qc_exec_new(&v.x[1], q1, &xo, err);
    qc_pass_ops ops = { &v, verify_job, NULL };
    stats->n_verify = 0;
    for (int done = 0; rc == QC_OK && done < n;) {
        int cnt = done == 0 && n > VERIFY_FIRST ? VERIFY_FIRST : n - done;
        v.first = first + done;
        v.n = cnt;
        v.f = st->stash + (size_t)v.first * st->n_out;
        v.e = e + (size_t)done * v.n_out * 3;
        v.used = 0;
        rc = qc_pass_run(&ops, 2, st->n_sh < 2 ? st->n_sh : 2, NULL, NULL, err);
        stats->n_verify += v.used;
        done += cnt;
        double sum[3] = { 0, 0, 0 };
        for (size_t k = 0; rc == QC_OK && k < (size_t)done * v.n_out * 3; k++)
            sum[k % 3] += e[k];
        stats->sqnr_before = 10 * log10(sum[0] / fmax(sum[1], 1e-300));
        stats->sqnr_after = 10 * log10(sum[0] / fmax(sum[2], 1e-300));
        if (!(fabs(stats->sqnr_after - stats->sqnr_before) < VERIFY_CLEAR_DB))
            break;
    }
    qc_exec_free(v.x[0]);
    qc_exec_free(v.x[1]);
    free(e);
    return rc;
}

int qc_bias_correct(const qc_model *float_m, const qc_model *q, qc_dataset *d,
                    const qc_biascorr_opts *o, qc_model **out, qc_biascorr_stats *stats,
                    qc_err *err)
{
    qc_biascorr_opts def;
    qc_biascorr_stats st_local;
    bc_state st = { 0 };
    qc_model *owned = NULL;
    if (!o)
        qc_biascorr_opts_default(&def), o = &def;
    if (!stats)
        stats = &st_local;
    memset(stats, 0, sizeof *stats);
    *out = NULL;
    int n = qc_dataset_count(d);
    if (o->n_samples > 0 && o->n_samples < n)
        n = o->n_samples;
    st.n_sh = qc_pass_default_jobs();
    if (st.n_sh > n)
        st.n_sh = n > 0 ? n : 1;
    int rc = find_targets(q, &st, err);
    if (rc == QC_OK && st.n_t == 0) {
        free_state(&st);            /* nothing to correct: no pass, *out NULL, applied 0 */
        return QC_OK;
    }
    st.n_out = float_m->n_outputs;
    st.float_m = float_m;
    st.n_stash = o->n_verify < n ? o->n_verify : n;
    if (st.n_stash < 0)
        st.n_stash = 0;
    if (rc == QC_OK && (!(st.sh = calloc((size_t)st.n_sh, sizeof *st.sh)) ||
                        !(st.keep = calloc((size_t)st.n_t, sizeof *st.keep)) ||
                        !(st.f_by_node = malloc(((size_t)float_m->n_nodes + 1) *
                                                sizeof *st.f_by_node)) ||
                        !(st.names = calloc((size_t)st.n_t, sizeof *st.names)) ||
                        !(st.stash = calloc((size_t)st.n_stash * st.n_out + 1,
                                            sizeof *st.stash))))
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
    /* without lockstep (measure) the float executor keeps what the hook compares (the biased
     * nodes' outputs), not every value: on ddddocr that is a third of the memory keep_all
     * takes; with it, nothing */
    for (int i = 0; rc == QC_OK && i < float_m->n_nodes; i++)
        st.f_by_node[i] = -1;
    for (int k = 0; rc == QC_OK && k < st.n_t; k++) {
        st.keep[k] = st.t[k].out, st.names[k] = st.t[k].node;
        st.t[k].f_node = qc_model_producer(float_m, st.t[k].out);
        if (st.t[k].f_node >= 0)
            st.f_by_node[st.t[k].f_node] = k;
    }
    /* the pass's stash serves if it holds every target's output */
    st.pass = o->stash;
    for (int k = 0; rc == QC_OK && st.pass && k < st.n_t; k++)
        if ((st.t[k].slot = qc_bc_stash_find(st.pass, st.t[k].out)) < 0)
            st.pass = NULL;
    int need_float = 0;
    for (int i = 0; i < n; i++)
        need_float |= !qc_bc_stash_has(st.pass, i);
    /* the float run's hook reads the targets' outputs; around them elementwise chains fuse
     * (a SiLU's Sigmoid and Mul as one step), with the same bits */
    const qc_exec_opts fo = { .fuse = 1, .fuse_exact = 1, .hooked = st.keep, .n_hooked = st.n_t };
    for (int s = 0; s < st.n_sh && rc == QC_OK; s++) {
        st.sh[s].st = &st;
        st.sh[s].cur = -1;
        st.sh[s].n_in = float_m->n_inputs;
        if (s == 0)
            st.sh[s].d = d;
        else
            rc = qc_dataset_clone(d, &st.sh[s].d, err);
        if (rc == QC_OK && need_float)
            rc = qc_exec_new(&st.sh[s].fx, float_m, &fo, err);
    }
    int used = 0;
    if (rc == QC_OK && (rc = measure(q, n, &st, &used, &stats->n_stashed, err)) == QC_OK &&
        used == 0)
        rc = qc_errf(err, QC_EINPUT, "no usable sample");
    if (rc == QC_OK) {
        stats->n_samples = used;
        stats->mean_abs = mean_abs_err(&st);
        rc = apply(q, &st, &owned, &stats->n_nodes, &stats->n_clamped, err);
    }
    if (rc != QC_OK) {
        free_state(&st);
        qc_model_free(owned);
        qc_err_prefix(err, "bias correction");
        return rc;
    }
    stats->applied = 1;
    if (o->n_verify > 0) {
        /* the first measured samples: other samples would judge the correction more
         * fairly, but 8 of them say little (ddddocr, minmax: +6.7 dB on the 16 measured and
         * on held-out data, -0.1 dB on the next 8), while harm shows on the measured ones
         * too (auto: -6.2 dB on them, -9.6 dB held out) */
        int nv = o->n_verify < n ? o->n_verify : n;
        if ((rc = verify(&st, q, owned, 0, nv, stats, err)) != QC_OK) {
            qc_model_free(owned);
            qc_err_prefix(err, "bias correction (verification)");
            free_state(&st);
            return rc;
        }
        /* kept only for a gain of QC_BIASCORR_MARGIN_DB or more: the verification samples
         * are measured ones, so the figure flatters the correction. Measured on nudenet and
         * ddddocr, 5 methods, --bias-samples 4 / 8 / 16 (calibrate's verification line, and
         * `tools/quant_report.py --calibrate-args "--bias-verify 0 --bias-samples N"` against
         * --no-bias-correction, held out): ddddocr entropy at 8 gained 0.23 dB here and lost
         * 1.71 dB held out; no gain under 0.5 dB was worth more than 0.2 dB held out; every
         * decision at the default 16 stays (the smallest kept gain: ddddocr percentile, +0.59
         * dB, +0.81 dB held out) */
        stats->applied = stats->n_verify > 0 &&
                         stats->sqnr_after >= stats->sqnr_before + QC_BIASCORR_MARGIN_DB;
    }
    free_state(&st);
    if (!stats->applied) {
        qc_model_free(owned);
        return QC_OK;
    }
    *out = owned;
    return QC_OK;
}
