/* What a given QDQ model (calibrate doctor MODEL QUANTIZED) does with the model: its weights'
 * scheme and scales, the scale of a node's output, its float nodes, where it rounds a
 * normalization. The doctor's checks use these so that they describe the given model, not a
 * rebuild with the doctor's options. */
#include <stdlib.h>
#include <string.h>
#include "doctor_priv.h"
#include "quant_priv.h"

/* qc_doctor.h */
int qc_doctor_match_given(qc_quant_opts *o, const qc_model *given)
{
    int seen = 0, per_channel = 0;
    for (int i = 0; i < given->n_nodes && !per_channel; i++) {
        const qc_node *n = &given->nodes[i];
        if (n->domain[0] || strcmp(n->op_type, "DequantizeLinear") || n->n_inputs < 2)
            continue;
        const qc_tensor *w = qc_model_init(given, n->inputs[0]);
        const qc_tensor *s = qc_model_init(given, n->inputs[1]);
        if (!w || !s || (w->dtype != QC_I8 && w->dtype != QC_U8))
            continue;               /* an activation's, or an int32 bias */
        seen = 1;
        per_channel = qc_tensor_numel(s) > 1;
    }
    if (!seen || o->per_channel == per_channel)
        return 0;
    o->per_channel = per_channel;
    return 1;
}

/* The scales of node `node`'s weight in the given model: those of the DequantizeLinear of an
 * int8 initializer into its weight input, when that initializer is weight w as prepared here,
 * quantized along `axis` or per tensor (dequantized, within 14 dB SQNR of w: rounding, the
 * pair guard and scales raised for a bias stay far above that; BatchNorm left unfolded in the
 * given model does not). NULL otherwise (no given model; a weight it quantizes at run time,
 * as onnxruntime does with Constant-node weights; other weights): the rebuild's are used. */
const qc_tensor *qc_dr_given_weight_scale(const qc_doctor *d, const char *node,
                                         const qc_tensor *w, int axis)
{
    const qc_model *g = d->given;
    int k = -1;
    for (int i = 0; g && node[0] && i < g->n_nodes && k < 0; i++)
        if (!strcmp(g->nodes[i].name, node) && g->nodes[i].n_inputs > 1)
            k = qc_model_producer(g, g->nodes[i].inputs[1]);
    if (k < 0 || strcmp(g->nodes[k].op_type, "DequantizeLinear") || g->nodes[k].n_inputs < 2)
        return NULL;
    const qc_tensor *q = qc_model_init(g, g->nodes[k].inputs[0]);
    const qc_tensor *sc = qc_model_init(g, g->nodes[k].inputs[1]);
    if (!q || q->dtype != QC_I8 || !sc || sc->dtype != QC_F32 || !qc_shape_equal(q, w))
        return NULL;
    int64_t nch = w->dims[axis], ns = qc_tensor_numel(sc), inner = 1;
    if (ns != 1 && ns != nch)
        return NULL;
    for (int a = axis + 1; a < w->ndim; a++)
        inner *= w->dims[a];
    const int8_t *qd = q->data;
    const float *wd = w->data, *sd = sc->data;
    double energy = 0, err = 0;
    for (int64_t i = 0; i < qc_tensor_numel(w); i++) {
        double v = qd[i] * (double)sd[ns == 1 ? 0 : (i / inner) % nch] - wd[i];
        energy += (double)wd[i] * wd[i];
        err += v * v;
    }
    return err < 0.04 * energy ? sc : NULL;
}

/* The scale the given model quantizes node `node`'s first output with (a QuantizeLinear
 * reading it, one scale); 0 if none. By node name: tools rename a graph output's tensor
 * (onnxruntime: "<output>_QuantizeLinear_Input"), not the node. */
double qc_dr_given_out_scale(const qc_doctor *d, const char *node)
{
    const qc_model *g = d->given;
    const char *out = NULL;
    for (int i = 0; g && node[0] && i < g->n_nodes && !out; i++)
        if (!strcmp(g->nodes[i].name, node) && g->nodes[i].n_outputs > 0)
            out = g->nodes[i].outputs[0];
    for (int r = 0, i; out && (i = qc_model_reader(g, out, r)) >= 0; r++) {
        const qc_node *nd = &g->nodes[i];
        if (strcmp(nd->op_type, "QuantizeLinear") || nd->n_inputs < 2 ||
            strcmp(nd->inputs[0], out))
            continue;
        const qc_tensor *sc = qc_model_init(g, nd->inputs[1]);
        if (sc && sc->dtype == QC_F32 && qc_tensor_numel(sc) == 1)
            return ((const float *)sc->data)[0];
    }
    return 0;
}

/* The given model's nodes that run on float data, grouped by op type as
 * qc_quantizer_float_groups does for a model the doctor builds: those reading no
 * DequantizeLinear output, and those of an op type qcal does not quantize (no integer kernel
 * in onnxruntime either: it dequantizes their inputs). */
int qc_dr_given_float_groups(const qc_model *g, qc_float_group **out)
{
    qc_float_group *gr = calloc((size_t)g->n_nodes + 1, sizeof *gr);
    int n = 0;
    if (!(*out = gr))
        return -1;
    for (int j = 0; j < g->n_nodes; j++) {
        const qc_node *nd = &g->nodes[j];
        int dq = 0, k = 0;
        if (!strcmp(nd->op_type, "QuantizeLinear") || !strcmp(nd->op_type, "DequantizeLinear") ||
            !strcmp(nd->op_type, "Constant"))
            continue;
        for (int i = 0; i < nd->n_inputs && !dq; i++) {
            int p = nd->inputs[i][0] ? qc_model_producer(g, nd->inputs[i]) : -1;
            dq = p >= 0 && !strcmp(g->nodes[p].op_type, "DequantizeLinear");
        }
        if (dq && (qc_quant_default_op(nd->op_type) || qc_quant_is_movement(nd->op_type)))
            continue;
        while (k < n && strcmp(gr[k].op_type, nd->op_type))
            k++;
        if (k == n)
            gr[n++] = (qc_float_group){ nd->op_type, dq ? "op type not quantized"
                                        : "no DequantizeLinear input in the given model",
                                        nd->name, 0 };
        gr[k].count++;
    }
    return n;
}

/* Node `name` of the prepared model is normalization arithmetic calibrate keeps float. */
static int norm_arith(const qc_doctor *d, const char *name)
{
    const char *nm, *op, *why;
    for (int i = 0; qc_quantizer_float_node(d->q, i, &nm, &op, &why); i++)
        if (!strcmp(nm, name))
            return strstr(why, "normalization arithmetic") != NULL;
    return 0;
}

/* doctor_priv.h. The given model quantizes node `name`'s output, and a reader of it is still
 * inside the normalization: a statistic (reduction, square root, power, reciprocal) or more
 * of its arithmetic. */
int qc_dr_given_rounds_norm(const qc_doctor *d, const char *name)
{
    const qc_model *m = d->m;
    int j = 0;
    while (j < m->n_nodes && strcmp(m->nodes[j].name, name))
        j++;
    if (j == m->n_nodes || m->nodes[j].n_outputs < 1 || !(qc_dr_given_out_scale(d, name) > 0))
        return 0;
    for (int r = 0, i; (i = qc_model_reader(m, m->nodes[j].outputs[0], r)) >= 0; r++) {
        const qc_node *rd = &m->nodes[i];
        if (qc_quant_stat_seed(rd->op_type) || norm_arith(d, rd->name))
            return 1;
    }
    return 0;
}
