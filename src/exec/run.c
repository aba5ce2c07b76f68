/* Runs a planned model on one set of inputs: bind symbolic dims, then per node infer shapes,
 * take output buffers from the pool, run the kernel, call the hook, release dead values. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "exec_priv.h"

void *qc_run_scratch(qc_run *r, size_t nbytes, qc_err *err)
{
    if (!r) {
        qc_errf(err, QC_EINTERNAL, "kernel needs scratch memory but has no run context");
        return NULL;
    }
    if (nbytes > r->scratch_cap) {
        size_t cap = (nbytes + 4095) & ~(size_t)4095;
        void *p = aligned_alloc(64, cap);
        if (!p) {
            qc_errf(err, QC_ENOMEM, "out of memory for %zu bytes of scratch", nbytes);
            return NULL;
        }
        free(r->scratch);
        r->scratch = p;
        r->scratch_cap = cap;
    }
    return r->scratch;
}

int qc_node_errf(const qc_knode *n, qc_err *err, int code, const char *fmt, ...)
{
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qc_errf(err, code, "node '%s' (%s): %s", n->node->name, n->node->op_type, msg);
}

int qc_need_exec(const qc_knode *n, const qc_tensor *t, qc_err *err)
{
    if (!qc_dtype_is_executable(t->dtype))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input '%s' has dtype %s, which the "
                            "executor does not support", t->name ? t->name : "?",
                            qc_dtype_name(t->dtype));
    return QC_OK;
}

void qc_set_shape(qc_tensor *t, int dtype, int ndim, const int64_t *dims)
{
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim && i < QC_MAX_DIMS; i++)
        t->dims[i] = dims[i];
}

void qc_copy_shape(qc_tensor *dst, const qc_tensor *src)
{
    qc_set_shape(dst, src->dtype, src->ndim, src->dims);
}

int qc_norm_axis(const qc_knode *n, int64_t axis, int rank, int *out, qc_err *err)
{
    if (axis < -rank || axis >= rank)
        return qc_node_errf(n, err, QC_EINPUT, "axis %lld out of range for rank %d",
                            (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return QC_OK;
}

static void drop_value(qc_exec *x, qc_value *v)
{
    if (!v->live)
        return;
    qc_pool_put(&x->pool, v->t.data, v->t.capacity);
    v->t.data = NULL;
    v->t.capacity = 0;
    v->live = 0;
}

/* A value computed once for every run (opts.cache_const) stays. */
static void release_value(qc_exec *x, qc_value *v)
{
    if (!v->pinned)
        drop_value(x, v);
}

static int alloc_value(qc_exec *x, qc_value *v, qc_err *err)
{
    size_t nbytes, cap;
    if (qc_numel_checked(v->t.dims, v->t.ndim, v->t.dtype, NULL, &nbytes) != QC_OK)
        return qc_errf(err, QC_ESHAPE, "tensor '%s': invalid shape", v->t.name);
    if (!qc_dtype_is_executable(v->t.dtype))
        return qc_errf(err, QC_EUNSUPPORTED, "tensor '%s': dtype %s is not supported by the "
                       "executor", v->t.name, qc_dtype_name(v->t.dtype));
    void *p = qc_pool_get(&x->pool, nbytes, &cap);
    if (!p)
        return qc_errf(err, QC_ENOMEM, "tensor '%s': out of memory for %zu bytes", v->t.name,
                       nbytes);
    v->t.data = p;
    v->t.capacity = cap;
    v->live = 1;
    return QC_OK;
}

/* Symbolic dims bound so far in a run: a name, its value, and where it was bound. */
typedef struct dim_binds {
    const char *name[64];
    int64_t     val[64];
    int         input[64], dim[64];
    int         n;
} dim_binds;

/* Checks one input against its declaration and binds symbolic dims consistently. A dim named
 * "?" is anonymous (Paddle2ONNX writes it for every unknown dim, several to an input). */
static int bind_input(qc_exec *x, int i, const qc_tensor *in, dim_binds *b, qc_err *err)
{
    const qc_value_info *vi = &x->m->inputs[i];
    char got[128];
    if (in->dtype != vi->dtype)
        return qc_errf(err, QC_EINPUT, "input '%s': dtype %s, model expects %s", vi->name,
                       qc_dtype_name(in->dtype), qc_dtype_name(vi->dtype));
    if (in->ndim < 0 || in->ndim > QC_MAX_DIMS)
        return qc_errf(err, QC_EINPUT, "input '%s': bad rank %d", vi->name, in->ndim);
    if (vi->ndim >= 0 && in->ndim != vi->ndim)
        return qc_errf(err, QC_EINPUT, "input '%s': shape %s has rank %d, model expects rank %d",
                       vi->name, qc_shape_str(in, got, sizeof got), in->ndim, vi->ndim);
    for (int d = 0; vi->ndim >= 0 && d < vi->ndim; d++) {
        if (vi->dims[d] >= 0 && in->dims[d] != vi->dims[d])
            return qc_errf(err, QC_EINPUT, "input '%s': shape %s, model expects dim %d = %lld",
                           vi->name, qc_shape_str(in, got, sizeof got), d,
                           (long long)vi->dims[d]);
        const char *nm = vi->dim_params[d];
        if (!nm || !nm[0] || !strcmp(nm, "?"))
            continue;
        int p = 0;
        while (p < b->n && strcmp(b->name[p], nm) != 0)
            p++;
        if (p == b->n) {
            if (b->n < 64) {
                b->name[p] = nm;
                b->val[p] = in->dims[d];
                b->input[p] = i;
                b->dim[p] = d;
                b->n++;
            }
        } else if (b->val[p] != in->dims[d]) {
            return qc_errf(err, QC_EINPUT, "input '%s': dim %d ('%s') is %lld, but dim %d of "
                           "input '%s' has the same name and is %lld", vi->name, d, nm,
                           (long long)in->dims[d], b->dim[p], x->m->inputs[b->input[p]].name,
                           (long long)b->val[p]);
        }
    }
    return QC_OK;
}

/* const_only (constant folding) computes at most this much: a hostile or absurd model
 * (ConstantOfShape, Expand or Tile to gigabytes from a few bytes) leaves those nodes unfolded
 * instead of exhausting memory; a folded constant must fit in the saved model anyway. */
#define CONST_ONLY_BUDGET ((size_t)512 << 20)

/* const_only: whether node k can be computed now (its inputs were, and its outputs fit in
 * what is left of the budget); if not, it is no longer constant and stays in the graph. */
static int const_node_ok(qc_exec *x, int k, size_t *used, qc_err *err)
{
    qc_knode *kn = &x->knodes[k];
    int static_shape = qc_exec_static_shape_of(x, k);
    for (int i = 0; i < kn->n_in && !static_shape; i++) {
        const qc_value *v = (const qc_value *)kn->in[i];
        if (v && !v->live && v->kind != VAL_INIT)
            return 0;
    }
    int rc = x->defs[k]->infer(kn, err);
    if (rc != QC_OK)
        return rc;
    size_t total = 0, nb;
    for (int i = 0; i < kn->n_out; i++) {
        const qc_tensor *t = kn->out[i];
        if (qc_numel_checked(t->dims, t->ndim, t->dtype, NULL, &nb) != QC_OK ||
            nb > CONST_ONLY_BUDGET - total)
            return 0;
        total += nb;
    }
    if (total > CONST_ONLY_BUDGET - *used)
        return 0;
    *used += total;
    return 1;
}

/* opts.sum_only: the node's per-channel output sums instead of its output (*summed 1), or
 * nothing when its kernel cannot for these shapes (*summed 0: it runs). */
static int sum_node(qc_exec *x, qc_knode *kn, const qc_op_def *def, int *summed, qc_err *err)
{
    const qc_tensor *y = kn->out[0];
    *summed = 0;
    if (y->ndim < 2 || y->dtype != QC_F32)
        return QC_OK;
    size_t n = (size_t)y->dims[1];
    if (n + 1 > x->sums_cap) {
        double *p = realloc(x->sums, (n + 1) * sizeof *p);
        if (!p)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        x->sums = p, x->sums_cap = n + 1;
    }
    int rc = def->sums(kn, x->sums, err);
    if (rc < 0)
        return rc;
    *summed = rc == QC_OK;
    x->n_sums = *summed ? (int)n : -1;
    return QC_OK;
}

const double *qc_exec_node_sums(const qc_exec *x, int *n_ch)
{
    if (x->n_sums < 0 || !x->sums)
        return NULL;
    if (n_ch)
        *n_ch = x->n_sums;
    return x->sums;
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_node(qc_exec *x, int k, qc_err *err)
{
    qc_knode *kn = &x->knodes[k];
    const qc_op_def *def = x->defs[k];
    int rc = def->infer(kn, err);
    if (rc != QC_OK)
        return rc;
    for (int i = 0; i < kn->n_out; i++) {
        qc_value *v = (qc_value *)kn->out[i];   /* t is the first member of qc_value */
        drop_value(x, v);                       /* keep_all: a value from the previous run;
                                                 * cache_const: a first run that failed */
        if ((rc = alloc_value(x, v, err)) != QC_OK) {
            qc_err_prefix(err, "node '%s' (%s)", kn->node->name, kn->node->op_type);
            return rc;
        }
    }
    int summed = 0;
    x->n_sums = -1;
    if (x->sum_only && x->sum_only[k] && (rc = sum_node(x, kn, def, &summed, err)) != QC_OK)
        return rc;
    double t0 = x->prof ? mono_seconds() : 0;
    if (!summed && (rc = def->run(kn, &x->run, err)) != QC_OK)
        return rc;
    if (x->prof)
        x->prof[kn->node - x->m->nodes] += mono_seconds() - t0;
    if (x->hook &&
        (rc = x->hook(x->hook_user, kn->node, (int)(kn->node - x->m->nodes),
                      (const qc_tensor *const *)kn->out, kn->n_out, err)) != QC_OK)
        return rc;
    if (!x->opts.keep_all)
        for (int r = x->release_start[k]; r < x->release_start[k + 1]; r++)
            release_value(x, &x->values[x->release_list[r]]);
    return QC_OK;
}

/* Releases the previous run's values and binds the inputs (symbolic dims, copies). */
static int bind_inputs(qc_exec *x, const qc_tensor *inputs, int n_inputs, qc_err *err)
{
    dim_binds b;
    int rc;
    b.n = 0;
    for (int v = 0; v < x->n_values; v++)
        if (x->values[v].kind != VAL_INIT)
            release_value(x, &x->values[v]);
    for (int i = 0; i < n_inputs; i++) {
        if ((rc = bind_input(x, i, &inputs[i], &b, err)) != QC_OK)
            return rc;
        qc_value *v = &x->values[x->input_vals[i]];
        qc_set_shape(&v->t, inputs[i].dtype, inputs[i].ndim, inputs[i].dims);
        if ((rc = alloc_value(x, v, err)) != QC_OK)
            return rc;
        if (qc_tensor_nbytes(&inputs[i]))
            memcpy(v->t.data, inputs[i].data, qc_tensor_nbytes(&inputs[i]));
        if (v->last_use < 0 && !v->is_output)
            release_value(x, v);
    }
    x->next_k = 0;
    return QC_OK;
}

/* Plan nodes next_k .. end - 1 of a run (not const_only). */
static int run_to(qc_exec *x, int end, qc_err *err)
{
    int rc = QC_OK;
    for (; x->next_k < end && rc == QC_OK; x->next_k++) {
        int k = x->next_k;
        if (!x->skip[k] && !(x->cache_ready && x->cached[k]))
            rc = run_node(x, k, err);
    }
    return rc;
}

static int run_done(qc_exec *x, int rc)
{
    qc_pool_trim(&x->pool);
    if (rc == QC_OK) {
        x->n_runs++;
        x->cache_ready = x->cached != NULL;
    }
    return rc;
}

int qc_exec_run(qc_exec *x, const qc_tensor *inputs, int n_inputs, qc_err *err)
{
    int rc;
    if (!x->opts.const_only)
        return (rc = qc_exec_begin(x, inputs, n_inputs, err)) != QC_OK ? rc
                                                                       : qc_exec_finish(x, err);
    if ((rc = bind_inputs(x, NULL, 0, err)) != QC_OK)
        return rc;
    /* graph inputs with fixed declared dims carry them (no data) for Shape / Size */
    for (int i = 0; i < x->m->n_inputs; i++) {
        const qc_value_info *vi = &x->m->inputs[i];
        qc_value *v = &x->values[x->input_vals[i]];
        if (vi->ndim >= 0 && !v->live)
            qc_set_shape(&v->t, vi->dtype, vi->ndim, vi->dims);
    }
    size_t const_used = 0;
    for (int k = 0; k < x->n_knodes; k++) {
        if (!x->is_const[k] || x->skip[k] || (x->cache_ready && x->cached[k]))
            continue;
        int ok = const_node_ok(x, k, &const_used, err);
        if (ok < 0) {
            rc = ok;
            break;
        }
        if (!ok) {
            x->is_const[k] = 0;
            continue;
        }
        if ((rc = run_node(x, k, err)) != QC_OK)
            break;
    }
    return run_done(x, rc);
}

int qc_exec_begin(qc_exec *x, const qc_tensor *inputs, int n_inputs, qc_err *err)
{
    if (x->opts.const_only)
        return qc_errf(err, QC_EUSAGE, "a const_only executor runs with qc_exec_run");
    if (n_inputs != x->m->n_inputs)
        return qc_errf(err, QC_EINPUT, "model has %d inputs, %d given", x->m->n_inputs,
                       n_inputs);
    return bind_inputs(x, inputs, n_inputs, err);
}

int qc_exec_node_pos(const qc_exec *x, int node)
{
    return node >= 0 && node < x->n_knodes ? x->pos[node] : -1;
}

int qc_exec_step_to(qc_exec *x, int node, qc_err *err)
{
    int end = x->next_k;
    while (end < x->n_knodes && x->order[end] != node)
        end++;
    if (end == x->n_knodes)
        return qc_errf(err, QC_EINTERNAL, "node %d is not ahead in the plan", node);
    return run_to(x, end + 1, err);
}

int qc_exec_finish(qc_exec *x, qc_err *err)
{
    return run_done(x, run_to(x, x->n_knodes, err));
}

int qc_exec_n_outputs(const qc_exec *x)
{
    return x->m->n_outputs;
}

const qc_tensor *qc_exec_output(const qc_exec *x, int i)
{
    if (i < 0 || i >= x->m->n_outputs)
        return NULL;
    const qc_value *v = &x->values[x->output_vals[i]];
    return v->live || v->kind == VAL_INIT ? &v->t : NULL;
}

const qc_tensor *qc_exec_value(const qc_exec *x, const char *name)
{
    int v = qc_strmap_get(&x->names, name);
    if (v < 0)
        return NULL;
    return x->values[v].live || x->values[v].kind == VAL_INIT ? &x->values[v].t : NULL;
}

const double *qc_exec_node_seconds(const qc_exec *x)
{
    return x->prof;
}

void qc_exec_profile_reset(qc_exec *x)
{
    if (x->prof)
        memset(x->prof, 0, (size_t)x->m->n_nodes * sizeof *x->prof);
}

int64_t qc_exec_runs(const qc_exec *x)
{
    return x->n_runs;
}

size_t qc_exec_peak_bytes(const qc_exec *x)
{
    return x->pool.bytes_peak;
}

int qc_exec_fused_nodes(const qc_exec *x)
{
    int n = 0;
    for (int k = 0; k < x->n_knodes; k++)
        n += x->skip[k] != 0;
    return n;
}
