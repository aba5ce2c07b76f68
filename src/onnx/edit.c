/* Graph edits on the protobuf side. Nothing of the original proto is modified: edited nodes
 * are shallow copies with their own input/output arrays, the new graph and model are shallow
 * copies pointing at new node/initializer/input lists, and the result is packed and parsed
 * again into a fresh qc_model (so the new model owns all of its memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "onnx_priv.h"
#include "strmap.h"
#include "toposort.h"
#include "qc_edit.h"

typedef struct new_node {
    Onnx__NodeProto *np;
    int              after;        /* anchor: original node index, -1 = start */
    int              seq;
} new_node;

struct qc_edit {
    const qc_model    *m;
    Onnx__GraphProto  *g;
    qc_arena           arena;
    int                n_orig;
    char              *removed;      /* per original node */
    Onnx__NodeProto  **copy;         /* per original node: edited copy or NULL */
    new_node          *added;
    int                n_added, cap_added;
    Onnx__TensorProto **inits;       /* added initializers */
    int                n_inits, cap_inits;
    qc_strmap          init_at;      /* added initializer name -> its index, -1 once removed */
    qc_strmap          removed_inits;
    qc_strmap          used;         /* every name in use, for unique names */
    int64_t            opset;
    int                seq;
};

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 32;
    while (nc < need)
        nc *= 2;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static char *dup(qc_edit *e, const char *s)
{
    return qc_arena_strdup(&e->arena, s);
}

/* A name as a key: absent (NULL) ones are "", which nothing reads. */
static const char *nz(const char *s)
{
    return s ? s : "";
}

static int mark_used(qc_edit *e, const char *name)
{
    return name && name[0] ? qc_strmap_put(&e->used, name, 1) : 0;
}

int qc_edit_begin(qc_edit **out, const qc_model *m, qc_err *err)
{
    qc_model_priv *p = m->priv;
    qc_edit *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    e->m = m;
    e->g = p->proto->graph;
    e->n_orig = (int)e->g->n_node;
    e->opset = m->opset;
    e->removed = calloc((size_t)e->n_orig + 1, 1);
    e->copy = calloc((size_t)e->n_orig + 1, sizeof *e->copy);
    int bad = !e->removed || !e->copy || qc_strmap_init(&e->removed_inits, 16) != 0 ||
              qc_strmap_init(&e->init_at, 16) != 0 ||
              qc_strmap_init(&e->used, (size_t)(e->n_orig * 3 + m->n_inits + 16)) != 0;
    for (int i = 0; !bad && i < e->n_orig; i++) {
        const Onnx__NodeProto *np = e->g->node[i];
        bad |= mark_used(e, np->name);
        for (size_t k = 0; k < np->n_input; k++)
            bad |= mark_used(e, np->input[k]);
        for (size_t k = 0; k < np->n_output; k++)
            bad |= mark_used(e, np->output[k]);
    }
    for (size_t i = 0; !bad && i < e->g->n_initializer; i++)
        bad |= mark_used(e, e->g->initializer[i]->name);
    for (size_t i = 0; !bad && i < e->g->n_input; i++)
        bad |= mark_used(e, e->g->input[i]->name);
    for (size_t i = 0; !bad && i < e->g->n_output; i++)
        bad |= mark_used(e, e->g->output[i]->name);
    if (bad) {
        qc_edit_free(e);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    *out = e;
    return QC_OK;
}

void qc_edit_free(qc_edit *e)
{
    if (!e)
        return;
    free(e->removed);
    free(e->copy);
    free(e->added);
    free(e->inits);
    qc_strmap_free(&e->removed_inits);
    qc_strmap_free(&e->init_at);
    qc_strmap_free(&e->used);
    qc_arena_free(&e->arena);
    free(e);
}

/* The editable copy of original node i. */
static Onnx__NodeProto *node_copy(qc_edit *e, int i)
{
    if (e->copy[i])
        return e->copy[i];
    const Onnx__NodeProto *src = e->g->node[i];
    Onnx__NodeProto *c = qc_arena_alloc(&e->arena, sizeof *c);
    /* one spare slot for qc_edit_append_input */
    char **in = qc_arena_array(&e->arena, src->n_input + 2, sizeof(char *));
    char **out = qc_arena_array(&e->arena, src->n_output + 1, sizeof(char *));
    if (!c || !in || !out)
        return NULL;
    *c = *src;
    if (src->n_input)
        memcpy(in, src->input, src->n_input * sizeof(char *));
    if (src->n_output)
        memcpy(out, src->output, src->n_output * sizeof(char *));
    c->input = in;
    c->output = out;
    e->copy[i] = c;
    return c;
}

int qc_edit_set_input(qc_edit *e, int node, int slot, const char *name, qc_err *err)
{
    if (node < 0 || node >= e->n_orig || slot < 0 || (size_t)slot >= e->g->node[node]->n_input)
        return qc_errf(err, QC_EINTERNAL, "edit: node %d has no input %d", node, slot);
    Onnx__NodeProto *c = node_copy(e, node);
    char *s = dup(e, name);
    if (!c || !s || mark_used(e, s))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    c->input[slot] = s;
    return QC_OK;
}

int qc_edit_append_input(qc_edit *e, int node, const char *name, qc_err *err)
{
    if (node < 0 || node >= e->n_orig)
        return qc_errf(err, QC_EINTERNAL, "edit: no node %d", node);
    int fresh = !e->copy[node];
    Onnx__NodeProto *c = node_copy(e, node);
    char *s = dup(e, name);
    if (!c || !s || mark_used(e, s))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if (!fresh && c->n_input > e->g->node[node]->n_input)
        return qc_errf(err, QC_EINTERNAL, "edit: node %d already got an input", node);
    c->input[c->n_input++] = s;
    return QC_OK;
}

int qc_edit_remove_attr(qc_edit *e, int node, const char *name, qc_err *err)
{
    if (node < 0 || node >= e->n_orig)
        return qc_errf(err, QC_EINTERNAL, "edit: no node %d", node);
    Onnx__NodeProto *c = node_copy(e, node);
    if (!c)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    Onnx__AttributeProto **a = qc_arena_array(&e->arena, c->n_attribute + 1, sizeof *a);
    if (!a)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < c->n_attribute; i++)
        if (!c->attribute[i]->name || strcmp(c->attribute[i]->name, name) != 0)
            a[k++] = c->attribute[i];
    c->attribute = a;
    c->n_attribute = k;
    return QC_OK;
}

int qc_edit_set_attr_int(qc_edit *e, int node, const char *name, int64_t value, qc_err *err)
{
    int rc = qc_edit_remove_attr(e, node, name, err);
    if (rc != QC_OK)
        return rc;
    Onnx__NodeProto *c = e->copy[node];
    Onnx__AttributeProto **a = qc_arena_array(&e->arena, c->n_attribute + 2, sizeof *a);
    Onnx__AttributeProto *at = qc_arena_alloc(&e->arena, sizeof *at);
    Onnx__AttributeProto init = ONNX__ATTRIBUTE_PROTO__INIT;
    if (!a || !at)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    *at = init;
    at->name = dup(e, name);
    at->has_type = 1;
    at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    at->has_i = 1;
    at->i = value;
    if (c->n_attribute)
        memcpy(a, c->attribute, c->n_attribute * sizeof *a);
    a[c->n_attribute++] = at;
    c->attribute = a;
    return at->name ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
}

int qc_edit_set_output(qc_edit *e, int node, int slot, const char *name, qc_err *err)
{
    if (node < 0 || node >= e->n_orig || slot < 0 ||
        (size_t)slot >= e->g->node[node]->n_output)
        return qc_errf(err, QC_EINTERNAL, "edit: node %d has no output %d", node, slot);
    Onnx__NodeProto *c = node_copy(e, node);
    char *s = dup(e, name);
    if (!c || !s || mark_used(e, s))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    c->output[slot] = s;
    return QC_OK;
}

int qc_edit_remove_node(qc_edit *e, int node, qc_err *err)
{
    if (node < 0 || node >= e->n_orig)
        return qc_errf(err, QC_EINTERNAL, "edit: no node %d", node);
    e->removed[node] = 1;
    return QC_OK;
}

int qc_edit_remove_init(qc_edit *e, const char *name, qc_err *err)
{
    char *s = dup(e, name);
    if (!s || qc_strmap_put(&e->removed_inits, s, 1) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    int i = qc_strmap_get(&e->init_at, name);   /* an added one of that name goes too */
    if (i >= 0) {
        e->inits[i] = e->inits[--e->n_inits];
        if (qc_strmap_put(&e->init_at, s, -1) != 0 ||
            (i < e->n_inits && qc_strmap_put(&e->init_at, nz(e->inits[i]->name), i) != 0))
            return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    return QC_OK;
}

int qc_edit_add_init(qc_edit *e, const qc_tensor *t, qc_err *err)
{
    size_t nbytes;
    if (!qc_dtype_is_executable(t->dtype) ||
        qc_numel_checked(t->dims, t->ndim, t->dtype, NULL, &nbytes) != QC_OK)
        return qc_errf(err, QC_EINTERNAL, "edit: initializer '%s' has a bad dtype or shape",
                       t->name);
    Onnx__TensorProto *tp = qc_arena_alloc(&e->arena, sizeof *tp);
    int64_t *dims = qc_arena_array(&e->arena, (size_t)t->ndim + 1, sizeof(int64_t));
    uint8_t *data = qc_arena_alloc(&e->arena, nbytes ? nbytes : 1);
    char *name = dup(e, t->name);
    if (!tp || !dims || !data || !name || mark_used(e, name) ||
        grow((void **)&e->inits, &e->cap_inits, e->n_inits + 1, sizeof *e->inits))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
    *tp = init;
    memcpy(dims, t->dims, (size_t)t->ndim * sizeof(int64_t));
    if (nbytes)
        memcpy(data, t->data, nbytes);
    tp->name = name;
    tp->n_dims = (size_t)t->ndim;
    tp->dims = dims;
    tp->has_data_type = 1;
    tp->data_type = t->dtype;
    tp->has_raw_data = 1;
    tp->raw_data.data = data;
    tp->raw_data.len = nbytes;
    int i = qc_strmap_get(&e->init_at, name);
    if (i >= 0) {
        e->inits[i] = tp;
        return QC_OK;
    }
    /* replacing an original initializer of the same name */
    if (qc_strmap_put(&e->removed_inits, name, 1) != 0 ||
        qc_strmap_put(&e->init_at, name, e->n_inits) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    e->inits[e->n_inits++] = tp;
    return QC_OK;
}

int qc_edit_add_node(qc_edit *e, int after, const char *op_type, const char *name,
                     int n_in, const char *const *in, int n_out, const char *const *out,
                     const qc_edit_attr *attrs, int n_attrs, qc_err *err)
{
    Onnx__NodeProto *np = qc_arena_alloc(&e->arena, sizeof *np);
    char **ins = qc_arena_array(&e->arena, (size_t)n_in + 1, sizeof(char *));
    char **outs = qc_arena_array(&e->arena, (size_t)n_out + 1, sizeof(char *));
    Onnx__AttributeProto **aps = qc_arena_array(&e->arena, (size_t)n_attrs + 1, sizeof *aps);
    if (!np || !ins || !outs || !aps ||
        grow((void **)&e->added, &e->cap_added, e->n_added + 1, sizeof *e->added))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
    *np = init;
    np->op_type = dup(e, op_type);
    np->name = dup(e, name);
    np->domain = dup(e, "");
    int bad = !np->op_type || !np->name || !np->domain || mark_used(e, np->name);
    for (int i = 0; i < n_in; i++)
        bad |= !(ins[i] = dup(e, in[i])) || mark_used(e, ins[i]);
    for (int i = 0; i < n_out; i++)
        bad |= !(outs[i] = dup(e, out[i])) || mark_used(e, outs[i]);
    for (int i = 0; i < n_attrs && !bad; i++) {
        Onnx__AttributeProto ainit = ONNX__ATTRIBUTE_PROTO__INIT;
        Onnx__AttributeProto *a = qc_arena_alloc(&e->arena, sizeof *a);
        if (!a) {
            bad = 1;
            break;
        }
        *a = ainit;
        a->name = dup(e, attrs[i].name);
        a->has_type = 1;
        a->type = (Onnx__AttributeProto__AttributeType)attrs[i].type;
        if (attrs[i].type == QC_ATTR_INT) {
            a->has_i = 1;
            a->i = attrs[i].i;
        } else if (attrs[i].type == QC_ATTR_FLOAT) {
            a->has_f = 1;
            a->f = attrs[i].f;
        } else {
            char *s = dup(e, attrs[i].s ? attrs[i].s : "");
            bad |= !s;
            a->has_s = 1;
            a->s.data = (uint8_t *)s;
            a->s.len = s ? strlen(s) : 0;
        }
        bad |= !a->name;
        aps[i] = a;
    }
    if (bad)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    np->n_input = (size_t)n_in;
    np->input = ins;
    np->n_output = (size_t)n_out;
    np->output = outs;
    np->n_attribute = (size_t)n_attrs;
    np->attribute = aps;
    e->added[e->n_added].np = np;
    e->added[e->n_added].after = after < -1 ? -1 : after;
    e->added[e->n_added].seq = e->seq++;
    return e->n_added++;
}

void qc_edit_require_opset(qc_edit *e, int64_t opset)
{
    if (opset > e->opset)
        e->opset = opset;
}

int64_t qc_edit_opset(const qc_edit *e)
{
    return e->opset;
}

const char *qc_edit_unique_name(qc_edit *e, const char *base)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", base);
    for (int k = 1; qc_strmap_get(&e->used, buf) >= 0; k++)
        snprintf(buf, sizeof buf, "%s_%d", base, k);
    char *s = dup(e, buf);
    if (s)
        mark_used(e, s);
    return s;
}

/* Position keys: original node i sorts at 2i+2, nodes added after it at 2i+3 (by seq), nodes
 * added at the start at 1. The toposort then keeps this order wherever data allows. */
typedef struct slot {
    Onnx__NodeProto *np;
    int64_t          key;
} slot;

static int cmp_slot(const void *a, const void *b)
{
    int64_t ka = ((const slot *)a)->key, kb = ((const slot *)b)->key;
    return ka < kb ? -1 : ka > kb;
}

static int order_nodes(qc_edit *e, Onnx__NodeProto ***out_nodes, size_t *out_n, qc_err *err)
{
    int n = 0, rc = QC_OK, n_edges = 0;
    slot *s = calloc((size_t)(e->n_orig + e->n_added) + 1, sizeof *s);
    if (!s)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < e->n_orig; i++)
        if (!e->removed[i]) {
            s[n].np = e->copy[i] ? e->copy[i] : e->g->node[i];
            s[n++].key = (int64_t)(2 * i + 2) << 24;
        }
    for (int i = 0; i < e->n_added; i++) {
        s[n].np = e->added[i].np;
        s[n++].key = ((int64_t)(2 * e->added[i].after + 3) << 24) + e->added[i].seq;
    }
    qsort(s, (size_t)n, sizeof *s, cmp_slot);
    for (int i = 0; i < n; i++)
        n_edges += (int)s[i].np->n_input;
    qc_strmap prod;
    int *dep_start = calloc((size_t)n + 2, sizeof *dep_start);
    int *deps = calloc((size_t)n_edges + 1, sizeof *deps);
    int *order = calloc((size_t)n + 1, sizeof *order);
    Onnx__NodeProto **nodes = qc_arena_array(&e->arena, (size_t)n + 1, sizeof *nodes);
    if (qc_strmap_init(&prod, (size_t)n * 2) != 0 || !dep_start || !deps || !order || !nodes) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < s[i].np->n_output; k++)
            if (s[i].np->output[k][0] && qc_strmap_put(&prod, s[i].np->output[k], i) != 0)
                rc = qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < n && rc == QC_OK; i++) {
        dep_start[i + 1] = dep_start[i];
        for (size_t k = 0; k < s[i].np->n_input; k++) {
            int p = s[i].np->input[k][0] ? qc_strmap_get(&prod, s[i].np->input[k]) : -1;
            if (p >= 0)
                deps[dep_start[i + 1]++] = p;
        }
    }
    if (rc == QC_OK) {
        int placed = qc_toposort(n, dep_start, deps, order);
        if (placed != n)
            rc = qc_errf(err, QC_EINTERNAL, "edit: the edited graph has a cycle");
    }
    for (int i = 0; i < n && rc == QC_OK; i++)
        nodes[i] = s[order[i]].np;
    *out_nodes = nodes;
    *out_n = (size_t)n;
out:
    qc_strmap_free(&prod);
    free(s);
    free(dep_start);
    free(deps);
    free(order);
    return rc;
}

/* Names a file may leave out (protobuf-c gives NULL for an absent optional string). */
/* Marks the names node n reads, and those its subgraphs read from outside them (a branch
 * may read any value of the enclosing graphs by name), as referenced. */
static void add_refs(qc_strmap *refs, const Onnx__NodeProto *n, int depth)
{
    for (size_t k = 0; k < n->n_input; k++)
        qc_strmap_put(refs, n->input[k], 1);
    for (size_t a = 0; a < n->n_attribute && depth < 64; a++) {
        const Onnx__AttributeProto *ap = n->attribute[a];
        for (size_t gi = 0; gi < ap->n_graphs + (ap->g != NULL); gi++) {
            const Onnx__GraphProto *sg = gi < ap->n_graphs ? ap->graphs[gi] : ap->g;
            for (size_t i = 0; sg && i < sg->n_node; i++)
                add_refs(refs, sg->node[i], depth + 1);
        }
    }
}

int qc_edit_inline_if(qc_edit *e, int node, int cond, qc_err *err)
{
    if (node < 0 || node >= e->n_orig || e->removed[node] || e->copy[node])
        return qc_errf(err, QC_EINTERNAL, "edit: node %d cannot be inlined", node);
    const Onnx__NodeProto *np = e->g->node[node];
    const char *which = cond ? "then_branch" : "else_branch";
    const Onnx__GraphProto *b = NULL;
    for (size_t a = 0; a < np->n_attribute && !b; a++)
        if (np->attribute[a]->name && !strcmp(np->attribute[a]->name, which))
            b = np->attribute[a]->g;
    if (!b || b->n_output != np->n_output || b->n_sparse_initializer)
        return qc_errf(err, QC_EUNSUPPORTED, "If node '%s': its %s cannot be inlined",
                       nz(np->name), which);
    /* the branch's own names must not clash with the graph's */
    for (size_t i = 0; i < b->n_node; i++)
        for (size_t k = 0; k < b->node[i]->n_output; k++)
            if (b->node[i]->output[k][0] && qc_strmap_get(&e->used, b->node[i]->output[k]) >= 0)
                return qc_errf(err, QC_EUNSUPPORTED, "If node '%s': %s value '%s' clashes "
                               "with a name of the graph", nz(np->name), which,
                               b->node[i]->output[k]);
    for (size_t i = 0; i < b->n_initializer; i++)
        if (qc_strmap_get(&e->used, nz(b->initializer[i]->name)) >= 0)
            return qc_errf(err, QC_EUNSUPPORTED, "If node '%s': %s initializer '%s' clashes "
                           "with a name of the graph", nz(np->name), which,
                           nz(b->initializer[i]->name));
    if (grow((void **)&e->added, &e->cap_added, e->n_added + (int)b->n_node + 1,
             sizeof *e->added) ||
        grow((void **)&e->inits, &e->cap_inits, e->n_inits + (int)b->n_initializer + 1,
             sizeof *e->inits))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    /* the branch's nodes and initializers, shared with the original proto (never modified) */
    for (size_t i = 0; i < b->n_node; i++) {
        Onnx__NodeProto *bn = b->node[i];
        for (size_t k = 0; k < bn->n_output; k++)
            if (mark_used(e, bn->output[k]))
                return qc_errf(err, QC_ENOMEM, "out of memory");
        e->added[e->n_added].np = bn;
        e->added[e->n_added].after = node;
        e->added[e->n_added++].seq = e->seq++;
    }
    for (size_t i = 0; i < b->n_initializer; i++) {
        Onnx__TensorProto *t = b->initializer[i];
        if (mark_used(e, nz(t->name)) || qc_strmap_put(&e->init_at, nz(t->name), e->n_inits))
            return qc_errf(err, QC_ENOMEM, "out of memory");
        e->inits[e->n_inits++] = t;
    }
    /* the If's outputs: Identity of the branch's */
    for (size_t i = 0; i < np->n_output; i++) {
        if (!np->output[i][0])
            continue;
        const char *in = nz(b->output[i]->name), *outn = np->output[i];
        char base[96];
        snprintf(base, sizeof base, "%s_%s_out%zu", nz(np->name), cond ? "then" : "else", i);
        int rc = qc_edit_add_node(e, node, "Identity", qc_edit_unique_name(e, base), 1, &in, 1,
                                  &outn, NULL, 0, err);
        if (rc < 0)
            return rc;
    }
    return qc_edit_remove_node(e, node, err);
}

int qc_edit_finish(qc_edit *e, qc_model **out, qc_err *err)
{
    qc_model_priv *p = e->m->priv;
    Onnx__ModelProto mp = *p->proto;
    Onnx__GraphProto g = *e->g;
    Onnx__OperatorSetIdProto **ops = NULL, opset;
    uint8_t *buf = NULL;
    int rc;
    *out = NULL;
    if ((rc = order_nodes(e, &g.node, &g.n_node, err)) != QC_OK)
        goto out;
    g.initializer = qc_arena_array(&e->arena, e->g->n_initializer + (size_t)e->n_inits + 1,
                                   sizeof *g.initializer);
    g.input = qc_arena_array(&e->arena, e->g->n_input + 1, sizeof *g.input);
    ops = qc_arena_array(&e->arena, mp.n_opset_import + 1, sizeof *ops);
    if (!g.initializer || !g.input || !ops) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    /* initializers nobody reads any more (weights replaced by quantized or folded ones) go */
    qc_strmap refs;
    if (qc_strmap_init(&refs, g.n_node * 3 + 16) != 0) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < g.n_node; i++)
        add_refs(&refs, g.node[i], 0);
    for (size_t i = 0; i < g.n_output; i++)
        qc_strmap_put(&refs, nz(g.output[i]->name), 1);
    g.n_initializer = 0;
    for (size_t i = 0; i < e->g->n_initializer; i++) {
        const char *nm = nz(e->g->initializer[i]->name);
        if (qc_strmap_get(&e->removed_inits, nm) < 0 && qc_strmap_get(&refs, nm) >= 0)
            g.initializer[g.n_initializer++] = e->g->initializer[i];
        else if (qc_strmap_get(&e->removed_inits, nm) < 0)
            qc_strmap_put(&e->removed_inits, nm, 1);    /* drop its graph input too */
    }
    for (int i = 0; i < e->n_inits; i++)
        if (qc_strmap_get(&refs, nz(e->inits[i]->name)) >= 0)
            g.initializer[g.n_initializer++] = e->inits[i];
    qc_strmap_free(&refs);
    g.n_input = 0;
    for (size_t i = 0; i < e->g->n_input; i++) {   /* the model's index knows its initializers */
        const char *nm = nz(e->g->input[i]->name);
        if (!(qc_model_init(e->m, nm) && qc_strmap_get(&e->removed_inits, nm) >= 0))
            g.input[g.n_input++] = e->g->input[i];
    }
    /* opset: replace the default domain's entry when raised, add one if missing */
    size_t n_ops = 0;
    int have_default = 0;
    Onnx__OperatorSetIdProto oinit = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset = oinit;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = e->opset;
    for (size_t i = 0; i < mp.n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp.opset_import[i];
        if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) {
            have_default = 1;
            ops[n_ops++] = o->version < e->opset ? &opset : mp.opset_import[i];
        } else {
            ops[n_ops++] = mp.opset_import[i];
        }
    }
    if (!have_default)
        ops[n_ops++] = &opset;
    mp.opset_import = ops;
    mp.n_opset_import = n_ops;
    /* ONNX ties each opset to a minimum IR version (checker and runtimes enforce it) */
    int64_t ir = e->opset >= 21 ? 10 : e->opset >= 19 ? 9 : e->opset >= 15 ? 8
               : e->opset >= 13 ? 7 : 0;
    if (mp.ir_version < ir) {
        mp.has_ir_version = 1;
        mp.ir_version = ir;
    }
    mp.graph = &g;
    size_t n = onnx__model_proto__get_packed_size(&mp);
    buf = malloc(n ? n : 1);
    if (!buf) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    onnx__model_proto__pack(&mp, buf);
    rc = qc_model_load_bytes(out, buf, n, e->m->dir, e->m->path, err);
out:
    free(buf);
    qc_edit_free(e);
    return rc;
}
