#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qc_edit.h"
#include "qc_exec.h"
#include "qc_prepare.h"
#include "strmap.h"

/* Folding a constant that expands (Expand, Tile, ConstantOfShape) can bloat the file: such
 * nodes stay when their output passes this size and is larger than their inputs. */
#define FOLD_MAX_BYTES ((size_t)16 << 20)

static size_t node_in_bytes(const qc_model *m, const qc_exec *x, const qc_node *n)
{
    size_t b = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const qc_tensor *t = n->inputs[k][0] ? qc_exec_value(x, n->inputs[k]) : NULL;
        if (t)
            b += qc_tensor_nbytes(t);
    }
    (void)m;
    return b;
}

static int fold_constants(const qc_model *m, qc_model **out, int *n_folded, qc_err *err)
{
    qc_exec_opts opts = { .const_only = 1 };
    qc_exec *x = NULL;
    qc_edit *e = NULL;
    qc_strmap consumed;                 /* tensor names read by nodes that stay */
    char *keep = calloc((size_t)m->n_nodes + 1, 1);
    int rc, any = 0;
    *out = NULL;
    *n_folded = 0;
    if (!keep || qc_strmap_init(&consumed, (size_t)m->n_nodes * 2 + 8) != 0) {
        free(keep);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    if ((rc = qc_exec_new(&x, m, &opts, err)) != QC_OK ||
        (rc = qc_exec_run(x, NULL, 0, err)) != QC_OK)
        goto out;
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *n = &m->nodes[i];
        keep[i] = !qc_exec_node_is_const(x, i);
        if (!keep[i]) {
            for (int k = 0; k < n->n_outputs; k++) {
                const qc_tensor *t = n->outputs[k][0] ? qc_exec_value(x, n->outputs[k]) : NULL;
                size_t ob = t ? qc_tensor_nbytes(t) : 0;
                if (ob > FOLD_MAX_BYTES && ob > node_in_bytes(m, x, n))
                    keep[i] = 1;
            }
        }
        if (!keep[i])
            any = 1;
    }
    if (!any)
        goto out;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; keep[i] && k < m->nodes[i].n_inputs; k++)
            qc_strmap_put(&consumed, m->nodes[i].inputs[k], 1);
    for (int i = 0; i < m->n_outputs; i++)
        qc_strmap_put(&consumed, m->outputs[i].name, 1);
    if ((rc = qc_edit_begin(&e, m, err)) != QC_OK)
        goto out;
    for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
        const qc_node *n = &m->nodes[i];
        if (keep[i])
            continue;
        (*n_folded)++;
        rc = qc_edit_remove_node(e, i, err);
        for (int k = 0; k < n->n_outputs && rc == QC_OK; k++) {
            if (!n->outputs[k][0] || qc_strmap_get(&consumed, n->outputs[k]) < 0)
                continue;
            qc_tensor t = *qc_exec_value(x, n->outputs[k]);
            t.name = n->outputs[k];
            rc = qc_edit_add_init(e, &t, err);
        }
    }
    if (rc == QC_OK)
        rc = qc_edit_finish(e, out, err);
    else
        qc_edit_free(e);
out:
    if (rc != QC_OK)
        qc_err_prefix(err, "constant folding");
    qc_exec_free(x);
    qc_strmap_free(&consumed);
    free(keep);
    return rc;
}

static int count_readers(const qc_model *m, const char *name)
{
    int c = qc_model_n_readers(m, name);
    for (int i = 0; i < m->n_outputs; i++)
        c += !strcmp(m->outputs[i].name, name);
    return c;
}

/* y = s * (conv(x) + b - mean) / sqrt(var + eps) + beta, per output channel. */
static int fold_one_bn(const qc_model *m, qc_edit *e, int bi, int ci, qc_err *err)
{
    const qc_node *bn = &m->nodes[bi], *cv = &m->nodes[ci];
    const qc_tensor *s = qc_model_init(m, bn->inputs[1]), *beta = qc_model_init(m, bn->inputs[2]);
    const qc_tensor *mean = qc_model_init(m, bn->inputs[3]);
    const qc_tensor *var = qc_model_init(m, bn->inputs[4]);
    const qc_tensor *w = qc_model_init(m, cv->inputs[1]);
    const qc_tensor *b = cv->n_inputs > 2 && cv->inputs[2][0] ? qc_model_init(m, cv->inputs[2])
                                                              : NULL;
    int transposed = !strcmp(cv->op_type, "ConvTranspose");
    if (!s || !beta || !mean || !var || !w || w->dtype != QC_F32 || w->ndim < 3 ||
        (cv->n_inputs > 2 && cv->inputs[2][0] && !b) ||
        (transposed && qc_attr_int(cv, "group", 1) != 1))
        return 1;                                   /* not foldable: leave it */
    int64_t oc = transposed ? w->dims[1] : w->dims[0];
    if (qc_tensor_numel(s) != oc || qc_tensor_numel(beta) != oc || qc_tensor_numel(mean) != oc ||
        qc_tensor_numel(var) != oc || (b && qc_tensor_numel(b) != oc))
        return 1;
    float eps = qc_attr_float(bn, "epsilon", 1e-5f);
    qc_tensor nw = *w, nb = { .dtype = QC_F32, .ndim = 1, .dims = { oc } };
    int rc;
    if ((rc = qc_tensor_alloc(&nw, QC_F32, w->ndim, w->dims, err)) != QC_OK)
        return rc;
    if ((rc = qc_tensor_alloc(&nb, QC_F32, 1, nb.dims, err)) != QC_OK) {
        qc_tensor_free(&nw);
        return rc;
    }
    int64_t per = qc_tensor_numel(w) / (transposed ? w->dims[0] * oc : oc);
    const float *wf = w->data;
    float *nwf = nw.data, *nbf = nb.data;
    for (int64_t c = 0; c < oc; c++) {
        double k = ((const float *)s->data)[c] /
                   sqrt((double)((const float *)var->data)[c] + eps);
        double bias = b ? ((const float *)b->data)[c] : 0.0;
        nbf[c] = (float)((bias - ((const float *)mean->data)[c]) * k +
                         ((const float *)beta->data)[c]);
        if (!transposed) {
            for (int64_t j = 0; j < per; j++)
                nwf[c * per + j] = (float)(wf[c * per + j] * k);
        } else {                                    /* [C_in, C_out, k...] */
            for (int64_t i = 0; i < w->dims[0]; i++)
                for (int64_t j = 0; j < per; j++) {
                    int64_t at = (i * oc + c) * per + j;
                    nwf[at] = (float)(wf[at] * k);
                }
        }
    }
    char nm[512];
    snprintf(nm, sizeof nm, "%s_bnfolded", cv->inputs[1]);
    nw.name = qc_edit_unique_name(e, nm);
    snprintf(nm, sizeof nm, "%s_bias_bnfolded", cv->name);
    nb.name = qc_edit_unique_name(e, nm);
    rc = qc_edit_add_init(e, &nw, err);
    if (rc == QC_OK)
        rc = qc_edit_add_init(e, &nb, err);
    if (rc == QC_OK)
        rc = qc_edit_set_input(e, ci, 1, nw.name, err);
    if (rc == QC_OK)
        rc = cv->n_inputs > 2 ? qc_edit_set_input(e, ci, 2, nb.name, err)
                              : qc_edit_append_input(e, ci, nb.name, err);
    if (rc == QC_OK)
        rc = qc_edit_set_output(e, ci, 0, bn->outputs[0], err);
    if (rc == QC_OK)
        rc = qc_edit_remove_node(e, bi, err);
    qc_tensor_free(&nw);
    qc_tensor_free(&nb);
    return rc;
}

static int fold_batchnorm(const qc_model *m, qc_model **out, int *n_folded, qc_err *err)
{
    qc_edit *e = NULL;
    int rc = QC_OK;
    *out = NULL;
    *n_folded = 0;
    for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
        const qc_node *bn = &m->nodes[i];
        if (strcmp(bn->op_type, "BatchNormalization") || bn->n_inputs < 5 || bn->n_outputs != 1)
            continue;
        int ci = qc_model_producer(m, bn->inputs[0]);
        if (ci < 0 || (strcmp(m->nodes[ci].op_type, "Conv") &&
                       strcmp(m->nodes[ci].op_type, "ConvTranspose")) ||
            m->nodes[ci].n_inputs < 2 || count_readers(m, bn->inputs[0]) != 1)
            continue;
        if (!e && (rc = qc_edit_begin(&e, m, err)) != QC_OK)
            break;
        int r = fold_one_bn(m, e, i, ci, err);
        if (r < 0)
            rc = r;
        else if (r == QC_OK)
            (*n_folded)++;
    }
    if (rc != QC_OK) {
        qc_edit_free(e);
        qc_err_prefix(err, "BatchNormalization folding");
        return rc;
    }
    return e ? qc_edit_finish(e, out, err) : QC_OK;
}

/* ---- merging duplicate nodes (common subexpressions) ----
 * Two nodes with the same op, the same inputs and the same attributes compute the same
 * values: the later one is dropped and its readers read the first one's outputs. Exported
 * models carry such copies (YOLOX's focus layer slices the image twice the same way); the
 * quantized graph would slice, quantize and time each copy. Nodes are compared in file order,
 * inputs through the merges already made, so chains of copies merge too. */

typedef struct keybuf {
    char  *p;
    size_t len, cap;
    int    bad;                 /* something that cannot be compared: the node stays */
} keybuf;

static void key_put(keybuf *k, const void *b, size_t n)
{
    if (k->bad || !n)
        return;
    if (k->len + n + 1 > k->cap) {
        size_t cap = (k->len + n + 1) * 2;
        char *q = realloc(k->p, cap);
        if (!q) {
            k->bad = -1;
            return;
        }
        k->p = q, k->cap = cap;
    }
    memcpy(k->p + k->len, b, n);
    k->len += n;
    k->p[k->len] = 0;
}

/* A length-prefixed string, so no name can run into the next one. */
static void key_str(keybuf *k, const char *s)
{
    char pre[24];
    size_t n = s ? strlen(s) : 0;
    int w = snprintf(pre, sizeof pre, "%zu:", n);
    key_put(k, pre, (size_t)w);
    key_put(k, s, n);
}

/* Binary data as hex: the key is a C string (strmap), and numbers hold zero bytes. */
static void key_bin(keybuf *k, const void *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = b;
    key_put(k, "#", 1);
    for (size_t j = 0; j < n; j++) {
        char h[2] = { hex[u[j] >> 4], hex[u[j] & 15] };
        key_put(k, h, 2);
    }
    key_put(k, ";", 1);
}

/* Values that the serialized key cannot hold: subgraphs, sparse tensors, types, and tensor
 * attributes over 256 bytes (a Constant that large was folded into an initializer). */
static void key_attr(keybuf *k, const qc_attr *a)
{
    char hdr[32];
    key_str(k, a->name);
    snprintf(hdr, sizeof hdr, "%d", a->type);
    key_str(k, hdr);
    switch (a->type) {
    case QC_ATTR_FLOAT:
        key_bin(k, &a->f, sizeof a->f);
        break;
    case QC_ATTR_INT:
        key_bin(k, &a->i, sizeof a->i);
        break;
    case QC_ATTR_STRING:
        key_str(k, a->s);
        break;
    case QC_ATTR_FLOATS:
        key_bin(k, a->floats, (size_t)a->n * sizeof *a->floats);
        break;
    case QC_ATTR_INTS:
        key_bin(k, a->ints, (size_t)a->n * sizeof *a->ints);
        break;
    case QC_ATTR_STRINGS:
        key_bin(k, &a->n, sizeof a->n);
        for (int64_t j = 0; j < a->n; j++)
            key_str(k, a->strings[j]);
        break;
    case QC_ATTR_TENSOR:
        if (!a->t || !a->t->data || !qc_dtype_size(a->t->dtype) ||
            qc_tensor_nbytes(a->t) > 256) {
            k->bad = 1;
            break;
        }
        key_bin(k, &a->t->dtype, sizeof a->t->dtype);
        key_bin(k, a->t->dims, (size_t)a->t->ndim * sizeof *a->t->dims);
        key_bin(k, a->t->data, qc_tensor_nbytes(a->t));
        break;
    default:
        k->bad = 1;
    }
}

static int has_subgraph(const qc_node *n)
{
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == QC_ATTR_GRAPH || n->attrs[a].type == QC_ATTR_GRAPHS)
            return 1;
    return 0;
}

/* Ops whose outputs differ from call to call. */
static int is_random(const qc_node *n)
{
    static const char *const ops[] = { "RandomNormal", "RandomUniform", "RandomNormalLike",
                                       "RandomUniformLike", "Multinomial", "Bernoulli",
                                       "Dropout" };
    for (size_t j = 0; j < sizeof ops / sizeof *ops; j++)
        if (!strcmp(n->op_type, ops[j]))
            return 1;
    return 0;
}

/* What tensor `name` is after the merges in canon[] (its own name if not merged away). */
static const char *merged_name(const qc_model *m, const int *canon, const char *name)
{
    int p = name[0] ? qc_model_producer(m, name) : -1;
    if (p < 0 || canon[p] < 0)
        return name;
    for (int k = 0; k < m->nodes[p].n_outputs; k++)
        if (!strcmp(m->nodes[p].outputs[k], name))
            return m->nodes[canon[p]].outputs[k];
    return name;
}

/* Whether node i may be dropped for node c (same key): the same outputs are present, and
 * none of i's is a graph output (that name must stay). */
static int can_merge(const qc_model *m, const qc_strmap *graph_out, int i, int c)
{
    const qc_node *n = &m->nodes[i], *o = &m->nodes[c];
    if (n->n_outputs != o->n_outputs)
        return 0;
    for (int k = 0; k < n->n_outputs; k++)
        if (!n->outputs[k][0] != !o->outputs[k][0] ||
            (n->outputs[k][0] && qc_strmap_get(graph_out, n->outputs[k]) >= 0))
            return 0;
    return 1;
}

static int node_key(const qc_model *m, const int *canon, int i, keybuf *k)
{
    const qc_node *n = &m->nodes[i];
    k->len = 0, k->bad = 0;
    if (n->n_inputs == 0 || is_random(n))     /* no subgraphs: merge_duplicates */
        return 0;
    key_str(k, n->op_type);
    key_str(k, n->domain);
    key_bin(k, &n->n_inputs, sizeof n->n_inputs);
    for (int j = 0; j < n->n_inputs; j++)
        key_str(k, merged_name(m, canon, n->inputs[j]));
    for (int a = 0; a < n->n_attrs; a++)
        key_attr(k, &n->attrs[a]);
    return k->bad < 0 ? QC_ENOMEM : !k->bad;
}

static int merge_duplicates(const qc_model *m, qc_model **out, int *n_merged, qc_err *err)
{
    qc_strmap seen, graph_out;
    keybuf k = { 0 };
    char **keys = calloc((size_t)m->n_nodes + 1, sizeof *keys);
    int *canon = malloc(((size_t)m->n_nodes + 1) * sizeof *canon);
    int rc = QC_OK, n_keys = 0;
    qc_edit *e = NULL;
    *out = NULL;
    *n_merged = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (has_subgraph(&m->nodes[i])) {   /* a branch may read any value by its name */
            free(keys);
            free(canon);
            return QC_OK;
        }
    if (!keys || !canon || qc_strmap_init(&seen, (size_t)m->n_nodes * 2 + 8) != 0) {
        free(keys);
        free(canon);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    if (qc_strmap_init(&graph_out, (size_t)m->n_outputs * 2 + 8) != 0) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->n_outputs; i++)
        qc_strmap_put(&graph_out, m->outputs[i].name, 1);
    for (int i = 0; i < m->n_nodes; i++)
        canon[i] = -1;
    for (int i = 0; i < m->n_nodes; i++) {
        int r = node_key(m, canon, i, &k);
        if (r < 0) {
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
            break;
        }
        if (!r)
            continue;
        int c = qc_strmap_get(&seen, k.p);
        if (c >= 0 && can_merge(m, &graph_out, i, c)) {
            canon[i] = c;
            (*n_merged)++;
        } else if (c < 0) {
            if (!(keys[n_keys] = strdup(k.p)) || qc_strmap_put(&seen, keys[n_keys], i) != 0) {
                rc = qc_errf(err, QC_ENOMEM, "out of memory");
                break;
            }
            n_keys++;
        }
    }
    if (rc == QC_OK && *n_merged && (rc = qc_edit_begin(&e, m, err)) == QC_OK) {
        for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
            const qc_node *n = &m->nodes[i];
            if (canon[i] >= 0) {
                rc = qc_edit_remove_node(e, i, err);
                continue;
            }
            for (int j = 0; j < n->n_inputs && rc == QC_OK; j++) {
                const char *to = merged_name(m, canon, n->inputs[j]);
                if (to != n->inputs[j])
                    rc = qc_edit_set_input(e, i, j, to, err);
            }
        }
        if (rc == QC_OK)
            rc = qc_edit_finish(e, out, err);
        else
            qc_edit_free(e);
    }
    qc_strmap_free(&graph_out);
out:
    if (rc != QC_OK)
        qc_err_prefix(err, "merging duplicate nodes");
    for (int j = 0; j < n_keys; j++)
        free(keys[j]);
    free(keys);
    free(canon);
    free(k.p);
    qc_strmap_free(&seen);
    return rc;
}

/* If nodes whose condition folded to a constant become the branch taken (then folded in
 * turn: a branch may hold constants and If nodes of its own). *out NULL when none. */
static int inline_ifs(const qc_model *m, qc_model **out, int *n_inlined, qc_err *err)
{
    qc_edit *e = NULL;
    int rc = QC_OK;
    *out = NULL;
    for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
        const qc_node *n = &m->nodes[i];
        const qc_tensor *c = n->n_inputs == 1 && !strcmp(n->op_type, "If") && !n->domain[0]
                                 ? qc_model_init(m, n->inputs[0]) : NULL;
        if (!c || qc_tensor_numel(c) != 1 || !qc_dtype_is_executable(c->dtype))
            continue;
        if (!e && (rc = qc_edit_begin(&e, m, err)) != QC_OK)
            return rc;
        rc = qc_edit_inline_if(e, i, qc_tensor_get_f(c, 0) != 0.0, err);
        if (rc == QC_EUNSUPPORTED) {            /* a name clash: the If stays */
            rc = QC_OK;
            if (err)
                err->code = QC_OK, err->msg[0] = 0;
            continue;
        }
        if (rc == QC_OK)
            (*n_inlined)++;
    }
    if (rc != QC_OK || !*n_inlined) {
        qc_edit_free(e);
        return rc;
    }
    if ((rc = qc_edit_finish(e, out, err)) == QC_EINTERNAL) {
        /* a branch read a value computed after its If: an invalid model, not our bug */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = qc_errf(err, QC_EINPUT, "If with a constant condition: its branch reads a value "
                     "computed after it (%s)", why);
    }
    return rc;
}

int qc_prepare(const qc_model *in, qc_model **out, qc_prep_report *rep, qc_err *err)
{
    qc_model *a = NULL, *b = NULL;
    qc_prep_report r = { 0 };
    int rc = fold_constants(in, &a, &r.n_folded_nodes, err);
    for (int round = 0; rc == QC_OK && round < 8; round++) {
        int n_if = 0, n_f = 0;
        qc_model *c = NULL, *d = NULL;
        if ((rc = inline_ifs(a ? a : in, &c, &n_if, err)) != QC_OK || !c)
            break;
        r.n_if_inlined += n_if;
        qc_model_free(a);
        a = c;
        if ((rc = fold_constants(a, &d, &n_f, err)) == QC_OK && d) {
            qc_model_free(a);
            a = d;
            r.n_folded_nodes += n_f;
        }
    }
    if (rc == QC_OK) {
        qc_model *c = NULL;
        if ((rc = merge_duplicates(a ? a : in, &c, &r.n_merged, err)) == QC_OK && c) {
            qc_model_free(a);
            a = c;
        }
    }
    if (rc == QC_OK)
        rc = fold_batchnorm(a ? a : in, &b, &r.n_bn_folded, err);
    if (rc != QC_OK) {
        qc_model_free(a);
        return rc;
    }
    if (b) {
        qc_model_free(a);
        a = b;
    }
    if (!a) {       /* nothing to change: a private copy keeps ownership simple */
        qc_edit *e;
        if ((rc = qc_edit_begin(&e, in, err)) != QC_OK || (rc = qc_edit_finish(e, &a, err)))
            return rc;
    }
    if (rep)
        *rep = r;
    *out = a;
    return QC_OK;
}
