/* Raising a model's opset for Q/DQ (10), per-axis Q/DQ (13) or 16-bit Q/DQ (21) must not change
 * what its other nodes compute. Ops whose signature or semantics changed on the way are
 * rewritten (attributes that became inputs); the few we cannot rewrite safely are refused with
 * a message saying what to do instead. ORT's quantizer only bumps the number. */
#include <stdio.h>
#include <string.h>
#include "quant_priv.h"

/* Moves INTS attribute `attr` to a new int64 initializer appended as input `slot`. */
static int attr_to_input(qc_edit *e, const qc_node *n, int idx, const char *attr, int slot,
                         qc_err *err)
{
    int64_t count;
    const int64_t *v = qc_attr_ints(n, attr, &count);
    if (!v)
        return QC_OK;                   /* absent: the input stays omitted too */
    char buf[512];
    snprintf(buf, sizeof buf, "%s_%s", n->name, attr);
    qc_tensor t = { .name = qc_edit_unique_name(e, buf), .dtype = QC_I64, .ndim = 1,
                    .dims = { count }, .data = (void *)v };
    int rc = qc_edit_add_init(e, &t, err);
    for (int k = n->n_inputs; rc == QC_OK && k < slot; k++)
        rc = qc_edit_append_input(e, idx, "", err);
    if (rc == QC_OK)
        rc = qc_edit_append_input(e, idx, t.name, err);
    if (rc == QC_OK)
        rc = qc_edit_remove_attr(e, idx, attr, err);
    return rc;
}

static int float_attr_to_input(qc_edit *e, const qc_node *n, int idx, const char *attr,
                               float def, int present_only, qc_err *err)
{
    const qc_attr *a = qc_attr_find(n, attr);
    if (!a && present_only)
        return qc_edit_append_input(e, idx, "", err);
    float v = a ? a->f : def;
    char buf[512];
    snprintf(buf, sizeof buf, "%s_%s", n->name, attr);
    qc_tensor t = { .name = qc_edit_unique_name(e, buf), .dtype = QC_F32, .ndim = 0,
                    .data = &v };
    int rc = qc_edit_add_init(e, &t, err);
    if (rc == QC_OK)
        rc = qc_edit_append_input(e, idx, t.name, err);
    if (rc == QC_OK && a)
        rc = qc_edit_remove_attr(e, idx, attr, err);
    return rc;
}

static int refuse(const qc_node *n, int64_t from, int64_t to, const char *why, qc_err *err)
{
    return qc_errf(err, QC_EUNSUPPORTED, "node '%s' (%s): quantization needs opset %lld but the "
                   "model is opset %lld, and %s; convert the model to opset %lld first (e.g. "
                   "onnx.version_converter)%s", n->name, n->op_type, (long long)to,
                   (long long)from, why, (long long)to,
                   to >= 13 && from >= 10 ? " or drop --per-channel" : "");
}

int qc_opset_upgrade(qc_edit *e, const qc_quantizer *q, qc_err *err)
{
    const qc_model *m = q->m;
    int64_t from = m->opset, to = qc_edit_opset(e);
    int rc = QC_OK;
    if (to <= from)
        return QC_OK;
    for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
        const qc_node *n = &m->nodes[i];
        const char *op = n->op_type;
        if (n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
            continue;
        if (from < 10 && (!strcmp(op, "Slice") || !strcmp(op, "TopK") ||
                          !strcmp(op, "Upsample") || !strcmp(op, "Resize")))
            return refuse(n, from, to, "its inputs changed at opset 10", err);
        if (from < 11 && !strcmp(op, "Resize"))
            return refuse(n, from, to, "Resize's inputs and coordinate mode changed at 11",
                          err);
        if (from < 11 && !strcmp(op, "Clip")) {
            rc = float_attr_to_input(e, n, i, "min", -3.4028234663852886e38f, 1, err);
            if (rc == QC_OK && qc_attr_find(n, "max"))
                rc = float_attr_to_input(e, n, i, "max", 3.4028234663852886e38f, 0, err);
        } else if (from < 11 && !strcmp(op, "Pad")) {
            rc = attr_to_input(e, n, i, "pads", 1, err);
            if (rc == QC_OK && qc_attr_find(n, "value"))
                rc = float_attr_to_input(e, n, i, "value", 0.0f, 0, err);
        } else if (from < 12 && !strcmp(op, "Dropout")) {
            rc = qc_edit_remove_attr(e, i, "ratio", err);   /* inference: ratio unused */
        } else if (from < 13 && to >= 13 &&
                   (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") ||
                    !strcmp(op, "ReduceSum"))) {
            rc = attr_to_input(e, n, i, "axes", 1, err);
        } else if (from < 13 && to >= 13 && !strcmp(op, "Split")) {
            rc = attr_to_input(e, n, i, "split", 1, err);
        } else if (from < 13 && to >= 13 &&
                   (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax") ||
                    !strcmp(op, "Hardmax"))) {
            /* < 13 flattens to 2-D at `axis` (default 1); >= 13 normalizes over one axis.
             * Same result when axis is the last one: then set it explicitly. */
            int idx = qc_strmap_get(&q->by_name, n->inputs[0]);
            int rank = idx >= 0 ? q->t[idx].rank : 0;
            int64_t axis = qc_attr_int(n, "axis", 1);
            if (rank <= 0)
                return refuse(n, from, to, "its input rank is unknown (softmax semantics "
                              "changed at 13)", err);
            if (axis < 0)
                axis += rank;
            if (axis != rank - 1)
                return refuse(n, from, to, "it normalizes over several axes, which opset 13 "
                              "cannot express in one node", err);
            rc = qc_edit_set_attr_int(e, i, "axis", axis, err);
        }
    }
    return rc;
}
