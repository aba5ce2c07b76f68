/* Plans a model once: values by name, topological order, one kernel per node, and for each
 * node the values whose last consumer it is (released right after it runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exec_priv.h"
#include "qfuse.h"
#include "toposort.h"

static int add_value(qc_exec *x, const char *name, int kind, qc_err *err)
{
    int i = x->n_values++;
    x->values[i].t.name = name;
    x->values[i].kind = kind;
    x->values[i].producer = -1;
    x->values[i].last_use = -1;
    if (name[0] && qc_strmap_put(&x->names, name, i) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    return QC_OK;
}

/* Orders nodes by their data dependencies (see qc_toposort: file order is kept when valid). */
static int topo_sort(qc_exec *x, qc_err *err)
{
    const qc_model *m = x->m;
    int nn = m->n_nodes, n_edges = 0, rc = QC_OK;
    for (int i = 0; i < nn; i++)
        n_edges += m->nodes[i].n_inputs;
    int *producer = malloc(((size_t)x->n_values + 1) * sizeof *producer);
    int *dep_start = calloc((size_t)nn + 2, sizeof *dep_start);
    int *deps = calloc((size_t)n_edges + 1, sizeof *deps);
    if (!producer || !dep_start || !deps) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    for (int v = 0; v < x->n_values; v++)
        producer[v] = -1;
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < m->nodes[i].n_outputs; k++) {
            int v = m->nodes[i].outputs[k][0] ? qc_strmap_get(&x->names, m->nodes[i].outputs[k])
                                              : -1;
            if (v >= 0)
                producer[v] = i;
        }
    for (int i = 0; i < nn; i++) {
        const qc_node *n = &m->nodes[i];
        dep_start[i + 1] = dep_start[i];
        for (int k = 0; k < n->n_inputs; k++) {
            if (!n->inputs[k][0])
                continue;
            int v = qc_strmap_get(&x->names, n->inputs[k]);
            if (v < 0) {
                rc = qc_errf(err, QC_EINPUT, "node '%s' (%s): input '%s' is not produced by any "
                             "node, graph input or initializer", n->name, n->op_type,
                             n->inputs[k]);
                goto out;
            }
            if (x->values[v].kind == VAL_ACT && producer[v] >= 0)
                deps[dep_start[i + 1]++] = producer[v];
        }
    }
    int placed = qc_toposort(nn, dep_start, deps, x->order);
    if (placed < 0) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
    } else if (placed < nn) {
        char *seen = calloc((size_t)nn + 1, 1);
        for (int i = 0; seen && i < placed; i++)
            seen[x->order[i]] = 1;
        for (int i = 0; seen && i < nn; i++)
            if (!seen[i]) {
                rc = qc_errf(err, QC_EINPUT, "node '%s' (%s): graph has a cycle through it",
                             m->nodes[i].name, m->nodes[i].op_type);
                break;
            }
        if (!seen)
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
        free(seen);
    }
out:
    free(producer);
    free(dep_start);
    free(deps);
    return rc;
}

/* Kernels assume what the operator's schema guarantees: every required input present, at least
 * the minimum number of outputs. Checked here once, as onnx.checker and onnxruntime do. */
static int check_arity(const qc_node *n, int64_t opset, qc_err *err)
{
    const qc_arity *a = qc_arity_find(n->op_type, opset);
    if (!a)
        return QC_OK;
    if (n->n_inputs < a->min_in || n->n_inputs > a->max_in) {
        char want[32];
        if (a->min_in == a->max_in)
            snprintf(want, sizeof want, "%d", a->min_in);
        else
            snprintf(want, sizeof want, "%d to %d", a->min_in, a->max_in);
        return qc_errf(err, QC_EINPUT, "node '%s': %s (opset %lld) takes %s inputs, has %d",
                       n->name, n->op_type, (long long)opset, want, n->n_inputs);
    }
    for (int i = 0; i < n->n_inputs; i++) {
        int formal = i < a->n_formal ? i : a->n_formal - 1;
        if (!n->inputs[i][0] && formal >= 0 && !(a->optional >> formal & 1u))
            return qc_errf(err, QC_EINPUT, "node '%s': %s input %d is required but omitted",
                           n->name, n->op_type, i);
    }
    if (n->n_outputs < a->min_out || n->n_outputs < 1)
        return qc_errf(err, QC_EINPUT, "node '%s': %s needs at least %d output%s, has %d",
                       n->name, n->op_type, a->min_out > 1 ? a->min_out : 1,
                       a->min_out > 1 ? "s" : "", n->n_outputs);
    return QC_OK;
}

/* opts.const_only: a node without a kernel (control flow, say) is planned as opaque: never
 * constant, so folding leaves it and what depends on it in the graph. */
static int opaque_fail(const qc_knode *n, qc_err *err)
{
    return qc_errf(err, QC_EUNSUPPORTED, "node '%s': unsupported op %s", n->node->name,
                   n->node->op_type);
}

static int opaque_infer(qc_knode *n, qc_err *err) { return opaque_fail(n, err); }

static int opaque_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return opaque_fail(n, err);
}

static const qc_op_def opaque_def = { "(opaque)", 1, opaque_infer, opaque_run, NULL, NULL,
                                      NULL };

static int plan_node(qc_exec *x, int k, qc_err *err)
{
    const qc_model *m = x->m;
    const qc_node *n = &m->nodes[x->order[k]];
    qc_knode *kn = &x->knodes[k];
    kn->node = n;
    kn->opset = m->opset;
    x->defs[k] = qc_op_find(n->domain, n->op_type, m->opset);
    if (!x->defs[k] && x->opts.const_only)
        x->defs[k] = &opaque_def;
    if (!x->defs[k])
        return qc_errf(err, QC_EUNSUPPORTED, "node '%s': unsupported op %s%s%s (opset %lld)",
                       n->name, n->domain[0] ? n->domain : "", n->domain[0] ? "." : "",
                       n->op_type, (long long)m->opset);
    int rc = check_arity(n, m->opset, err);
    if (rc != QC_OK)
        return rc;
    kn->n_in = n->n_inputs;
    kn->n_out = n->n_outputs;
    kn->in = calloc((size_t)n->n_inputs + 1, sizeof *kn->in);
    kn->out = calloc((size_t)n->n_outputs + 1, sizeof *kn->out);
    if (!kn->in || !kn->out)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < n->n_inputs; i++) {
        if (!n->inputs[i][0])
            continue;
        int v = qc_strmap_get(&x->names, n->inputs[i]);
        kn->in[i] = &x->values[v].t;
        x->values[v].last_use = k;
        if (i < 32 && x->values[v].kind == VAL_INIT)
            kn->const_in |= 1u << i;
    }
    for (int i = 0; i < n->n_outputs; i++) {
        int v;
        if (n->outputs[i][0]) {
            v = qc_strmap_get(&x->names, n->outputs[i]);
        } else {                 /* omitted optional output: a private value, dropped at once */
            rc = add_value(x, "", VAL_ACT, err);
            if (rc != QC_OK)
                return rc;
            v = x->n_values - 1;
        }
        x->values[v].producer = k;
        kn->out[i] = &x->values[v].t;
    }
    if (x->defs[k]->prepare) {
        rc = x->defs[k]->prepare(kn, err);
        if (rc != QC_OK)
            return rc;
    }
    return QC_OK;
}

/* opts.const_only: Shape or Size of a graph input whose declared dims are all fixed is a
 * constant (the run refuses inputs of any other shape), so shape arithmetic folds too. */
int qc_exec_static_shape_of(const qc_exec *x, int k)
{
    const qc_knode *kn = &x->knodes[k];
    if (!x->opts.const_only || kn->node->domain[0] || kn->n_in != 1 || !kn->in[0] ||
        (strcmp(kn->node->op_type, "Shape") && strcmp(kn->node->op_type, "Size")))
        return 0;
    const qc_value *v = (const qc_value *)kn->in[0];
    for (int i = 0; i < x->m->n_inputs; i++) {
        const qc_value_info *vi = &x->m->inputs[i];
        if (&x->values[x->input_vals[i]] != v)
            continue;
        if (vi->ndim < 0)
            return 0;
        for (int d = 0; d < vi->ndim; d++)
            if (vi->dims[d] < 0)
                return 0;
        return 1;
    }
    return 0;
}

/* A node is constant when every input is an initializer or a constant node's output and the
 * op is deterministic. DequantizeLinear stays: folding it would undo existing quantization. */
static int mark_constants(qc_exec *x, qc_err *err)
{
    static const char *never[] = { "RandomNormal", "RandomUniform", "RandomNormalLike",
                                   "RandomUniformLike", "Multinomial", "Bernoulli",
                                   "DequantizeLinear", "QuantizeLinear", NULL };
    char *cval = calloc((size_t)x->n_values + 1, 1);
    x->is_const = calloc((size_t)x->n_knodes + 1, 1);
    if (!cval || !x->is_const) {
        free(cval);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int v = 0; v < x->n_values; v++)
        cval[v] = x->values[v].kind == VAL_INIT;
    for (int k = 0; k < x->n_knodes; k++) {
        const qc_knode *kn = &x->knodes[k];
        int c = x->defs[k] != &opaque_def;
        for (int i = 0; never[i]; i++)
            if (!strcmp(kn->node->op_type, never[i]))
                c = 0;
        int shape_only = qc_exec_static_shape_of(x, k);
        for (int i = 0; i < kn->n_in && c && !shape_only; i++)
            if (kn->in[i] && !cval[(qc_value *)kn->in[i] - x->values])
                c = 0;
        x->is_const[k] = (char)c;
        for (int i = 0; i < kn->n_out; i++)
            cval[(qc_value *)kn->out[i] - x->values] = (char)c;
    }
    free(cval);
    return QC_OK;
}

/* opts.cache_const: nodes whose inputs are all initializers or cached values (any
 * deterministic op, DequantizeLinear included: this only avoids recomputing it) keep their
 * outputs; their readers see those inputs as constant. */
static int mark_cached(qc_exec *x, qc_err *err)
{
    static const char *never[] = { "RandomNormal", "RandomUniform", "RandomNormalLike",
                                   "RandomUniformLike", "Multinomial", "Bernoulli", NULL };
    x->cached = calloc((size_t)x->n_knodes + 1, 1);
    if (!x->cached)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int k = 0; k < x->n_knodes; k++) {
        qc_knode *kn = &x->knodes[k];
        int c = !x->skip[k];
        for (int i = 0; never[i] && c; i++)
            c = strcmp(kn->node->op_type, never[i]) != 0;
        for (int i = 0; i < kn->n_in && c; i++)
            if (kn->in[i]) {
                const qc_value *v = (const qc_value *)kn->in[i];
                c = v->kind == VAL_INIT || v->pinned;
            }
        for (int i = 0; i < kn->n_out && c; i++)
            c = !((qc_value *)kn->out[i])->is_output;    /* outputs: fresh each run */
        x->cached[k] = (char)c;
        for (int i = 0; i < kn->n_out && c; i++)
            ((qc_value *)kn->out[i])->pinned = 1;
    }
    for (int k = 0; k < x->n_knodes; k++)
        for (int i = 0; i < x->knodes[k].n_in && i < 32; i++)
            if (x->knodes[k].in[i] && ((qc_value *)x->knodes[k].in[i])->pinned)
                x->knodes[k].const_in |= 1u << i;
    return QC_OK;
}

int qc_exec_node_is_const(const qc_exec *x, int node_index)
{
    if (node_index < 0 || node_index >= x->n_knodes)
        return 0;
    return x->is_const[x->pos[node_index]];
}

int qc_readers_build(const qc_exec *x, qc_readers *r, qc_err *err)
{
    size_t n_slots = 0;
    for (int k = 0; k < x->n_knodes; k++)
        n_slots += (size_t)x->knodes[k].n_in;
    r->start = calloc((size_t)x->n_values + 2, sizeof *r->start);
    r->list = malloc((n_slots + 1) * sizeof *r->list);
    int *fill = calloc((size_t)x->n_values + 1, sizeof *fill);
    if (!r->start || !r->list || !fill) {
        free(fill);
        qc_readers_free(r);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < x->n_knodes; k++)
            for (int i = 0; i < x->knodes[k].n_in && !x->skip[k]; i++) {
                if (!x->knodes[k].in[i])
                    continue;
                int v = (int)((const qc_value *)x->knodes[k].in[i] - x->values);
                if (pass == 0)
                    r->start[v + 1]++;
                else
                    r->list[r->start[v] + fill[v]++] = k;
            }
        for (int v = 0; pass == 0 && v < x->n_values; v++)
            r->start[v + 1] += r->start[v];
    }
    free(fill);
    return QC_OK;
}

void qc_readers_free(qc_readers *r)
{
    free(r->start);
    free(r->list);
    r->start = r->list = NULL;
}

/* Conv -> Sigmoid -> Mul(conv, sigmoid) (SiLU, as exported by YOLOv5/v8) becomes one Conv that
 * writes the Mul's output. Only the Conv family knows how (qc_knode.act). The readers are
 * indexed once: a fusion only retires the values it fuses, so the other lists stay true. */
static int fuse_activations(qc_exec *x, qc_err *err)
{
    qc_readers ri;
    if (qc_readers_build(x, &ri, err) != QC_OK)
        return QC_ENOMEM;
    for (int k = 0; k < x->n_knodes; k++) {
        qc_knode *c = &x->knodes[k];
        if (strcmp(c->node->op_type, "Conv") || c->n_out != 1 || x->skip[k])
            continue;
        qc_value *cv = (qc_value *)c->out[0];
        int v = (int)(cv - x->values), r0 = ri.start[v];
        if (cv->no_fuse || ri.start[v + 1] - r0 != 2 || ri.list[r0] == ri.list[r0 + 1])
            continue;
        /* the Sigmoid and the Mul, in either order */
        int sk = ri.list[r0], mk = ri.list[r0 + 1];
        if (strcmp(x->knodes[sk].node->op_type, "Sigmoid")) {
            sk = ri.list[r0 + 1];
            mk = ri.list[r0];
        }
        const qc_knode *s = &x->knodes[sk], *o = &x->knodes[mk];
        if (strcmp(s->node->op_type, "Sigmoid") || s->n_in != 1 || s->n_out < 1 ||
            ((qc_value *)s->out[0])->no_fuse)
            continue;
        int sv = (int)((const qc_value *)s->out[0] - x->values);
        if (ri.start[sv + 1] - ri.start[sv] != 1 || ri.list[ri.start[sv]] != mk ||
            strcmp(o->node->op_type, "Mul") || o->n_in != 2 ||
            !((o->in[0] == c->out[0] && o->in[1] == s->out[0]) ||
              (o->in[1] == c->out[0] && o->in[0] == s->out[0])))
            continue;
        c->act = QC_ACT_SILU;
        c->out[0] = x->knodes[mk].out[0];
        ((qc_value *)c->out[0])->producer = k;
        x->skip[sk] = x->skip[mk] = 1;
    }
    qc_readers_free(&ri);
    return QC_OK;
}

static int build_release_lists(qc_exec *x, qc_err *err)
{
    int *count = calloc((size_t)x->n_knodes + 1, sizeof *count);
    x->release_start = calloc((size_t)x->n_knodes + 2, sizeof *x->release_start);
    x->release_list = calloc((size_t)x->n_values + 1, sizeof *x->release_list);
    if (!count || !x->release_start || !x->release_list) {
        free(count);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int v = 0; v < x->n_values; v++) {
        qc_value *val = &x->values[v];
        if (val->kind == VAL_INIT || val->is_output)
            continue;
        int at = val->last_use >= 0 ? val->last_use : val->producer;
        if (at < 0)
            continue;               /* an unused graph input: released after binding */
        val->last_use = at;
        count[at]++;
    }
    for (int k = 0; k < x->n_knodes; k++)
        x->release_start[k + 1] = x->release_start[k] + count[k];
    memset(count, 0, (size_t)x->n_knodes * sizeof *count);
    for (int v = 0; v < x->n_values; v++) {
        qc_value *val = &x->values[v];
        if (val->kind == VAL_INIT || val->is_output || val->last_use < 0)
            continue;
        int at = val->last_use;
        x->release_list[x->release_start[at] + count[at]++] = v;
    }
    free(count);
    return QC_OK;
}

/* opts.sum_only: the named nodes whose kernel can sum its output per channel. */
static int mark_sum_only(qc_exec *x, qc_err *err)
{
    qc_strmap want;             /* bias correction names thousands of nodes on deep models */
    if (!(x->sum_only = calloc((size_t)x->n_knodes + 1, 1)) ||
        qc_strmap_init(&want, (size_t)x->opts.n_sum_only + 16) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    int rc = QC_OK;
    for (int i = 0; i < x->opts.n_sum_only && rc == QC_OK; i++)
        if (qc_strmap_put(&want, x->opts.sum_only[i], 1) != 0)
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
    for (int k = 0; k < x->n_knodes && rc == QC_OK; k++) {
        const char *name = x->knodes[k].node->name;
        x->sum_only[k] = x->defs[k]->sums && name[0] && qc_strmap_get(&want, name) >= 0;
    }
    qc_strmap_free(&want);
    return rc;
}

int qc_exec_new(qc_exec **out, const qc_model *m, const qc_exec_opts *opts, qc_err *err)
{
    int rc;
    *out = NULL;
    qc_exec *x = calloc(1, sizeof *x);
    if (!x)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    x->m = m;
    if (opts)
        x->opts = *opts;
    int max_values = m->n_inputs + m->n_inits;
    for (int i = 0; i < m->n_nodes; i++)
        max_values += m->nodes[i].n_outputs;
    x->values = calloc((size_t)max_values + 1, sizeof *x->values);
    x->knodes = calloc((size_t)m->n_nodes + 1, sizeof *x->knodes);
    x->defs = calloc((size_t)m->n_nodes + 1, sizeof *x->defs);
    x->order = calloc((size_t)m->n_nodes + 1, sizeof *x->order);
    x->pos = calloc((size_t)m->n_nodes + 1, sizeof *x->pos);
    x->input_vals = calloc((size_t)m->n_inputs + 1, sizeof *x->input_vals);
    x->output_vals = calloc((size_t)m->n_outputs + 1, sizeof *x->output_vals);
    if (!x->values || !x->knodes || !x->defs || !x->order || !x->pos || !x->input_vals ||
        !x->output_vals || qc_strmap_init(&x->names, (size_t)max_values) != 0) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->n_inits; i++) {
        if ((rc = add_value(x, m->inits[i].name, VAL_INIT, err)) != QC_OK)
            goto fail;
        x->values[x->n_values - 1].t = m->inits[i];
    }
    for (int i = 0; i < m->n_inputs; i++) {
        const qc_value_info *vi = &m->inputs[i];
        if (!qc_dtype_is_executable(vi->dtype)) {
            rc = qc_errf(err, QC_EUNSUPPORTED, "graph input '%s' has dtype %s, which the "
                         "executor does not support", vi->name, qc_dtype_name(vi->dtype));
            goto fail;
        }
        if ((rc = add_value(x, vi->name, VAL_INPUT, err)) != QC_OK)
            goto fail;
        x->input_vals[i] = x->n_values - 1;
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *n = &m->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            if (!n->outputs[k][0])
                continue;
            if (qc_strmap_get(&x->names, n->outputs[k]) >= 0) {
                rc = qc_errf(err, QC_EINPUT, "node '%s' (%s): output '%s' is defined twice",
                             n->name, n->op_type, n->outputs[k]);
                goto fail;
            }
            if ((rc = add_value(x, n->outputs[k], VAL_ACT, err)) != QC_OK)
                goto fail;
        }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        int v = qc_strmap_get(&x->names, m->outputs[i].name);
        if (v < 0) {
            rc = qc_errf(err, QC_EINPUT, "graph output '%s' is not produced by the graph",
                         m->outputs[i].name);
            goto fail;
        }
        x->output_vals[i] = v;
        x->values[v].is_output = x->values[v].no_fuse = 1;
    }
    if ((rc = topo_sort(x, err)) != QC_OK)
        goto fail;
    x->n_knodes = m->n_nodes;
    for (int k = 0; k < m->n_nodes; k++)
        x->pos[x->order[k]] = k;
    for (int k = 0; k < m->n_nodes; k++)
        if ((rc = plan_node(x, k, err)) != QC_OK)
            goto fail;
    if ((rc = mark_constants(x, err)) != QC_OK)
        goto fail;
    if (x->opts.profile &&
        !(x->prof = calloc((size_t)m->n_nodes + 1, sizeof *x->prof))) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(x->skip = calloc((size_t)x->n_knodes + 1, 1))) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < x->opts.n_keep; i++) {
        int v = qc_strmap_get(&x->names, x->opts.keep[i]);
        if (v >= 0)
            x->values[v].is_output = x->values[v].no_fuse = 1;
    }
    for (int i = 0; i < x->opts.n_hooked; i++) {
        int v = qc_strmap_get(&x->names, x->opts.hooked[i]);
        if (v >= 0)
            x->values[v].no_fuse = 1;
    }
    if (x->opts.n_sum_only > 0 && !x->opts.keep_all && !x->opts.const_only &&
        (rc = mark_sum_only(x, err)) != QC_OK)
        goto fail;
    if (x->opts.fuse && !x->opts.fuse_exact && !x->opts.keep_all && !x->opts.const_only &&
        (rc = fuse_activations(x, err)) != QC_OK)
        goto fail;
    if (x->opts.emulate_ort && !x->opts.keep_all && !x->opts.const_only &&
        (rc = qc_qfuse(x, err)) != QC_OK)         /* onnxruntime emulation: qfuse.c */
        goto fail;
    else if (x->opts.fuse_qdq && !x->opts.emulate_ort && !x->opts.keep_all &&
             !x->opts.const_only &&
             ((rc = qc_qdq_fuse(x, err)) != QC_OK ||
              (x->opts.fuse && (rc = qc_qlut_fuse(x, err)) != QC_OK) ||
              (rc = qc_iconv_mark(x)) != QC_OK))
        goto fail;
    if (x->opts.fuse && !x->opts.keep_all && !x->opts.const_only && !x->opts.emulate_ort &&
        (rc = qc_ew_chain_fuse(x, err)) != QC_OK)
        goto fail;
    if (x->opts.keep_all || x->opts.const_only)
        for (int v = 0; v < x->n_values; v++)
            x->values[v].is_output = 1;
    else if (x->opts.cache_const && (rc = mark_cached(x, err)) != QC_OK)
        goto fail;
    if ((rc = build_release_lists(x, err)) != QC_OK)
        goto fail;
    *out = x;
    return QC_OK;
fail:
    qc_exec_free(x);
    return rc;
}

void qc_exec_set_hook(qc_exec *x, qc_exec_hook hook, void *user)
{
    x->hook = hook;
    x->hook_user = user;
}

void qc_exec_free(qc_exec *x)
{
    if (!x)
        return;
    for (int k = 0; k < x->n_knodes; k++) {
        if (x->defs && x->defs[k] && x->defs[k]->release && x->knodes[k].node)
            x->defs[k]->release(&x->knodes[k]);
        free(x->knodes[k].in);
        free(x->knodes[k].out);
        free(x->knodes[k].lut);
    }
    if (x->values)
        for (int v = 0; v < x->n_values; v++)
            if (x->values[v].live || x->values[v].owned)
                free(x->values[v].t.data);
    qc_pool_free(&x->pool);
    free(x->run.scratch);
    qc_strmap_free(&x->names);
    free(x->values);
    free(x->knodes);
    free(x->defs);
    free(x->order);
    free(x->pos);
    free(x->is_const);
    free(x->skip);
    free(x->cached);
    free(x->sum_only);
    free(x->sums);
    free(x->prof);
    free(x->input_vals);
    free(x->output_vals);
    free(x->release_start);
    free(x->release_list);
    free(x);
}
