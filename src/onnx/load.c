/* ModelProto -> qc_model. The proto is kept as unpacked so qc_model_save can write back
 * everything we do not interpret (functions, metadata, subgraphs, unknown fields). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "onnx_priv.h"

static int convert_attr(qc_arena *a, const Onnx__AttributeProto *ap, qc_attr *at,
                        const char *what, qc_err *err)
{
    at->name = qc_arena_strdup(a, ap->name ? ap->name : "");
    at->type = ap->has_type ? (int)ap->type : QC_ATTR_UNDEFINED;
    if (at->type == QC_ATTR_UNDEFINED) {       /* IR < 4 models infer the type from fields */
        if (ap->t) at->type = QC_ATTR_TENSOR;
        else if (ap->g) at->type = QC_ATTR_GRAPH;
        else if (ap->n_floats) at->type = QC_ATTR_FLOATS;
        else if (ap->n_ints) at->type = QC_ATTR_INTS;
        else if (ap->n_strings) at->type = QC_ATTR_STRINGS;
        else if (ap->has_s) at->type = QC_ATTR_STRING;
        else if (ap->has_f) at->type = QC_ATTR_FLOAT;
        else if (ap->has_i) at->type = QC_ATTR_INT;
    }
    at->f = ap->f;
    at->i = ap->i;
    if (ap->has_s) {
        char *s = qc_arena_alloc(a, ap->s.len + 1);
        if (!s)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        if (ap->s.len)
            memcpy(s, ap->s.data, ap->s.len);
        at->s = s;
    }
    if (ap->n_floats) {
        at->floats = qc_arena_array(a, ap->n_floats, sizeof(float));
        if (!at->floats)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        memcpy(at->floats, ap->floats, ap->n_floats * sizeof(float));
    }
    if (ap->n_ints) {
        at->ints = qc_arena_array(a, ap->n_ints, sizeof(int64_t));
        if (!at->ints)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        memcpy(at->ints, ap->ints, ap->n_ints * sizeof(int64_t));
    }
    if (ap->n_strings) {
        at->strings = qc_arena_array(a, ap->n_strings, sizeof(char *));
        if (!at->strings)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        for (size_t i = 0; i < ap->n_strings; i++) {
            char *s = qc_arena_alloc(a, ap->strings[i].len + 1);
            if (!s)
                return qc_errf(err, QC_ENOMEM, "out of memory");
            if (ap->strings[i].len)
                memcpy(s, ap->strings[i].data, ap->strings[i].len);
            at->strings[i] = s;
        }
    }
    switch (at->type) {
    case QC_ATTR_FLOATS: at->n = (int64_t)ap->n_floats; break;
    case QC_ATTR_INTS: at->n = (int64_t)ap->n_ints; break;
    case QC_ATTR_STRINGS: at->n = (int64_t)ap->n_strings; break;
    default: break;
    }
    if (ap->t) {
        at->t = qc_arena_alloc(a, sizeof *at->t);
        if (!at->t)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        int rc = qc_onnx_tensor_convert(ap->t, at->t, a, NULL, what, err);
        if (rc != QC_OK)
            return rc;
        at->t->name = qc_arena_strdup(a, ap->t->name ? ap->t->name : "");
    }
    return QC_OK;
}

static void convert_value_info(qc_arena *a, const Onnx__ValueInfoProto *vi, qc_value_info *v)
{
    v->name = qc_arena_strdup(a, vi->name ? vi->name : "");
    v->ndim = -1;
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type)
        return;
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    v->dtype = tt->has_elem_type ? tt->elem_type : QC_UNDEFINED;
    if (!tt->shape || tt->shape->n_dim > QC_MAX_DIMS)
        return;
    v->ndim = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value >= 0)
            v->dims[i] = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            v->dim_params[i] = qc_arena_strdup(a, d->dim_param);
    }
}

static int build(qc_model *m, qc_model_priv *p, const char *what, qc_err *err)
{
    qc_arena *a = &p->arena;
    const Onnx__ModelProto *mp = p->proto;
    const Onnx__GraphProto *g = mp->graph;
    if (!g)
        return qc_errf(err, QC_EINPUT, "%s: model has no graph", what);
    if (g->n_node > QC_MAX_NODES || g->n_initializer > QC_MAX_INITS)
        return qc_errf(err, QC_EINPUT, "%s: graph too large (%zu nodes, %zu initializers)", what,
                       g->n_node, g->n_initializer);
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->opset = mp->n_opset_import ? 0 : 1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx"))
            m->opset = o->version;
    }
    m->nodes = qc_arena_array(a, g->n_node, sizeof *m->nodes);
    m->inits = qc_arena_array(a, g->n_initializer, sizeof *m->inits);
    m->inputs = qc_arena_array(a, g->n_input, sizeof *m->inputs);
    m->outputs = qc_arena_array(a, g->n_output, sizeof *m->outputs);
    if (!m->nodes || !m->inits || !m->inputs || !m->outputs)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        char w[400];
        snprintf(w, sizeof w, "%s: initializer '%s'", what, tp->name ? tp->name : "");
        int rc = qc_onnx_tensor_convert(tp, &m->inits[i], a, m->dir, w, err);
        if (rc != QC_OK)
            return rc;
        m->inits[i].name = qc_arena_strdup(a, tp->name ? tp->name : "");
        m->n_inits++;
    }
    /* the initializers' part of the name index (index_names does the rest) */
    if (qc_strmap_init(&p->init, (size_t)m->n_inits + 16) != 0)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
    for (int i = 0; i < m->n_inits; i++)
        if (qc_strmap_get(&p->init, m->inits[i].name) < 0 &&
            qc_strmap_put(&p->init, m->inits[i].name, i) != 0)
            return qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
    /* an input with a default value (an initializer of the same name; older exporters list
     * every weight so) is treated as a weight */
    for (size_t i = 0; i < g->n_input; i++)
        if (!g->input[i]->name || qc_strmap_get(&p->init, g->input[i]->name) < 0)
            convert_value_info(a, g->input[i], &m->inputs[m->n_inputs++]);
    for (size_t i = 0; i < g->n_output; i++)
        convert_value_info(a, g->output[i], &m->outputs[m->n_outputs++]);
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *np = g->node[i];
        qc_node *n = &m->nodes[i];
        char nm[64];
        n->op_type = qc_arena_strdup(a, np->op_type ? np->op_type : "");
        if (np->name && np->name[0]) {
            n->name = qc_arena_strdup(a, np->name);
        } else {
            snprintf(nm, sizeof nm, "%s_%zu", n->op_type, i);
            n->name = qc_arena_strdup(a, nm);
        }
        n->domain = qc_arena_strdup(a, np->domain ? np->domain : "");
        n->n_inputs = (int)np->n_input;
        n->n_outputs = (int)np->n_output;
        n->n_attrs = (int)np->n_attribute;
        n->inputs = qc_arena_array(a, np->n_input, sizeof(char *));
        n->outputs = qc_arena_array(a, np->n_output, sizeof(char *));
        n->attrs = qc_arena_array(a, np->n_attribute, sizeof(qc_attr));
        if (!n->inputs || !n->outputs || !n->attrs || !n->name)
            return qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
        for (size_t k = 0; k < np->n_input; k++)
            n->inputs[k] = qc_arena_strdup(a, np->input[k]);
        for (size_t k = 0; k < np->n_output; k++)
            n->outputs[k] = qc_arena_strdup(a, np->output[k]);
        for (size_t k = 0; k < np->n_attribute; k++) {
            char w[400];
            snprintf(w, sizeof w, "%s: node '%s' (%s) attribute '%s'", what, n->name,
                     n->op_type, np->attribute[k]->name ? np->attribute[k]->name : "");
            int rc = convert_attr(a, np->attribute[k], &n->attrs[k], w, err);
            if (rc != QC_OK)
                return rc;
        }
        m->n_nodes++;
    }
    return QC_OK;
}

/* protobuf-c unpacks nested messages recursively with no depth limit: subgraphs nested a
 * hundred thousand deep (a few MB) overflow the stack. Walk the wire format first, bounded
 * like protobuf's own parsers (onnx and onnxruntime cannot load deeper models either).
 * Malformed bytes are left for protobuf-c to report. */
#define MAX_NESTING 100

static int read_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *i < n; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 1;
    }
    return 0;
}

static int nesting_ok(const uint8_t *p, size_t n, const ProtobufCMessageDescriptor *d,
                      int depth)
{
    if (depth > MAX_NESTING)
        return 0;
    for (size_t i = 0; i < n;) {
        uint64_t key, len;
        if (!read_varint(p, n, &i, &key))
            return 1;
        switch (key & 7) {
        case 0:
            if (!read_varint(p, n, &i, &len))
                return 1;
            break;
        case 1:
            i += 8;
            break;
        case 5:
            i += 4;
            break;
        case 2: {
            if (!read_varint(p, n, &i, &len) || len > n - i)
                return 1;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !nesting_ok(p + i, (size_t)len, f->descriptor, depth + 1))
                return 0;
            i += (size_t)len;
            break;
        }
        default:
            return 1;
        }
    }
    return 1;
}

/* The lookups' index: the first producer of each name, as the linear search it replaces finds
 * (a valid model has one; build indexes the initializers alike), and the readers of each name
 * (a dense id per name read, then the reading nodes in file order, one entry per input slot). */
static int index_names(const qc_model *m, qc_model_priv *p)
{
    if (qc_strmap_init(&p->producer, (size_t)m->n_nodes * 2 + 16) != 0 ||
        qc_strmap_init(&p->readers, (size_t)m->n_nodes * 2 + 16) != 0)
        return QC_ENOMEM;
    size_t n_slots = 0;
    int n_ids = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        for (int k = 0; k < m->nodes[i].n_outputs; k++)
            if (qc_strmap_get(&p->producer, m->nodes[i].outputs[k]) < 0 &&
                qc_strmap_put(&p->producer, m->nodes[i].outputs[k], i) != 0)
                return QC_ENOMEM;
        for (int k = 0; k < m->nodes[i].n_inputs; k++, n_slots++)
            if (qc_strmap_get(&p->readers, m->nodes[i].inputs[k]) < 0 &&
                qc_strmap_put(&p->readers, m->nodes[i].inputs[k], n_ids++) != 0)
                return QC_ENOMEM;
    }
    p->rstart = calloc((size_t)n_ids + 2, sizeof *p->rstart);
    p->rlist = malloc((n_slots + 1) * sizeof *p->rlist);
    int *fill = calloc((size_t)n_ids + 1, sizeof *fill);
    if (!p->rstart || !p->rlist || !fill) {
        free(fill);
        return QC_ENOMEM;
    }
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_inputs; k++)
            p->rstart[qc_strmap_get(&p->readers, m->nodes[i].inputs[k]) + 1]++;
    for (int id = 0; id < n_ids; id++)
        p->rstart[id + 1] += p->rstart[id];
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_inputs; k++) {
            int id = qc_strmap_get(&p->readers, m->nodes[i].inputs[k]);
            p->rlist[p->rstart[id] + fill[id]++] = i;
        }
    free(fill);
    p->indexed = 1;
    return QC_OK;
}

int qc_model_load_bytes(qc_model **out, const void *bytes, size_t n, const char *dir,
                        const char *name, qc_err *err)
{
    *out = NULL;
    const char *what = name ? name : "<memory>";
    qc_model_priv *p = calloc(1, sizeof *p);
    if (!p)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
    qc_model *m = qc_arena_alloc(&p->arena, sizeof *m);
    if (!m) {
        free(p);
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
    }
    m->priv = p;
    m->path = qc_arena_strdup(&p->arena, what);
    m->dir = dir ? qc_arena_strdup(&p->arena, dir) : NULL;
    int rc;
    if (!nesting_ok(bytes, n, &onnx__model_proto__descriptor, 0)) {
        qc_model_free(m);
        return qc_errf(err, QC_EINPUT, "%s: messages nested more than %d deep (subgraphs "
                       "inside subgraphs): refused", what, MAX_NESTING);
    }
    p->proto = onnx__model_proto__unpack(NULL, n, bytes);
    if (!p->proto)
        rc = qc_errf(err, QC_EINPUT, "%s: not a valid ONNX model (protobuf parse failed)", what);
    else
        rc = build(m, p, what, err);
    if (rc == QC_OK && (rc = index_names(m, p)) != QC_OK)
        rc = qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
    if (rc != QC_OK) {
        qc_model_free(m);
        return rc;
    }
    *out = m;
    return QC_OK;
}

int qc_model_load(qc_model **out, const char *path, qc_err *err)
{
    *out = NULL;
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return qc_errf(err, errno == ENOENT ? QC_EINPUT : QC_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return qc_errf(err, QC_EINPUT, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > QC_MAX_MODEL_BYTES) {
        fclose(f);
        return qc_errf(err, QC_EINPUT, "%s: %lld bytes is over protobuf's 2 GiB limit (large "
                       "models keep weights in external data)", path, (long long)st.st_size);
    }
    if (st.st_size == 0) {
        fclose(f);
        return qc_errf(err, QC_EINPUT, "%s: empty file", path);
    }
    size_t n = (size_t)st.st_size;
    void *buf = malloc(n);
    if (!buf) {
        fclose(f);
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        return qc_errf(err, QC_EIO, "%s: read error", path);
    }
    char *tmp = strdup(path);
    int rc = tmp ? qc_model_load_bytes(out, buf, n, dirname(tmp), path, err)
                 : qc_errf(err, QC_ENOMEM, "out of memory");
    free(tmp);
    free(buf);
    return rc;
}

void qc_model_free(qc_model *m)
{
    if (!m)
        return;
    qc_model_priv *p = m->priv;
    if (p->proto)
        onnx__model_proto__free_unpacked(p->proto, NULL);
    qc_strmap_free(&p->producer);
    qc_strmap_free(&p->init);
    qc_strmap_free(&p->readers);
    free(p->rstart);
    free(p->rlist);
    qc_arena_free(&p->arena);   /* m itself lives in the arena */
    free(p);
}

const qc_attr *qc_attr_find(const qc_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

int64_t qc_attr_int(const qc_node *n, const char *name, int64_t def)
{
    const qc_attr *a = qc_attr_find(n, name);
    return a && a->type == QC_ATTR_INT ? a->i : def;
}

float qc_attr_float(const qc_node *n, const char *name, float def)
{
    const qc_attr *a = qc_attr_find(n, name);
    return a && a->type == QC_ATTR_FLOAT ? a->f : def;
}

const char *qc_attr_str(const qc_node *n, const char *name, const char *def)
{
    const qc_attr *a = qc_attr_find(n, name);
    return a && a->type == QC_ATTR_STRING && a->s ? a->s : def;
}

const int64_t *qc_attr_ints(const qc_node *n, const char *name, int64_t *count)
{
    const qc_attr *a = qc_attr_find(n, name);
    if (!a || a->type != QC_ATTR_INTS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->ints;
}

const float *qc_attr_floats(const qc_node *n, const char *name, int64_t *count)
{
    const qc_attr *a = qc_attr_find(n, name);
    if (!a || a->type != QC_ATTR_FLOATS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->floats;
}

const qc_tensor *qc_model_init(const qc_model *m, const char *name)
{
    const qc_model_priv *p = m->priv;
    if (p && p->indexed) {
        int i = qc_strmap_get(&p->init, name);
        return i >= 0 ? &m->inits[i] : NULL;
    }
    for (int i = 0; i < m->n_inits; i++)    /* models built by hand (tests) */
        if (!strcmp(m->inits[i].name, name))
            return &m->inits[i];
    return NULL;
}

int qc_model_producer(const qc_model *m, const char *name)
{
    const qc_model_priv *p = m->priv;
    if (p && p->indexed)
        return qc_strmap_get(&p->producer, name);
    for (int i = 0; i < m->n_nodes; i++)    /* models built by hand (tests) */
        for (int k = 0; k < m->nodes[i].n_outputs; k++)
            if (!strcmp(m->nodes[i].outputs[k], name))
                return i;
    return -1;
}

int qc_model_n_readers(const qc_model *m, const char *name)
{
    const qc_model_priv *p = m->priv;
    int c = 0;
    if (p && p->indexed)
        return (c = qc_strmap_get(&p->readers, name)) < 0 ? 0 : p->rstart[c + 1] - p->rstart[c];
    for (int i = 0; i < m->n_nodes; i++)    /* models built by hand (tests) */
        for (int k = 0; k < m->nodes[i].n_inputs; k++)
            c += !strcmp(m->nodes[i].inputs[k], name);
    return c;
}

int qc_model_reader(const qc_model *m, const char *name, int i)
{
    const qc_model_priv *p = m->priv;
    if (i < 0)
        return -1;
    if (p && p->indexed) {
        int id = qc_strmap_get(&p->readers, name);
        return id >= 0 && i < p->rstart[id + 1] - p->rstart[id] ? p->rlist[p->rstart[id] + i]
                                                                 : -1;
    }
    for (int j = 0; j < m->n_nodes; j++)    /* models built by hand (tests) */
        for (int k = 0; k < m->nodes[j].n_inputs; k++)
            if (!strcmp(m->nodes[j].inputs[k], name) && i-- == 0)
                return j;
    return -1;
}
