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

/* Index of the given model's node named `name`, -1 if none (or no given model). */
static int given_node(const qc_doctor *d, const char *name)
{
    return d->given ? qc_strmap_get(&d->given_nodes, name) : -1;
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
    int i = given_node(d, node);
    int k = i >= 0 && g->nodes[i].n_inputs > 1 ? qc_model_producer(g, g->nodes[i].inputs[1]) : -1;
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
    int j = given_node(d, node);
    const char *out = j >= 0 && g->nodes[j].n_outputs > 0 ? g->nodes[j].outputs[0] : NULL;
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

/* doctor_priv.h. The nodes calibrate keeps float as normalization arithmetic
 * (qselect.c mark_statistics) whose output the given model quantizes while a reader is still
 * inside the normalization: a statistic (reduction, square root, power, reciprocal) or more of
 * its arithmetic. Their number (-1 out of memory) and the first one, in node order. */
int qc_dr_given_norm_rounded(const qc_doctor *d, const char **first, const char **first_op)
{
    const qc_model *m = d->m;
    const char *nm, *op, *why;
    qc_strmap norm;
    int n = 0;
    *first = *first_op = NULL;
    if (qc_strmap_init(&norm, (size_t)m->n_nodes + 16) != 0)
        return -1;
    for (int i = 0; qc_quantizer_float_node(d->q, i, &nm, &op, &why) && n >= 0; i++)
        if (strstr(why, "normalization arithmetic") && qc_strmap_put(&norm, nm, 1) != 0)
            n = -1;
    for (int j = 0; j < m->n_nodes && n >= 0; j++) {
        const qc_node *nd = &m->nodes[j];
        int inside = 0;
        if (qc_strmap_get(&norm, nd->name) < 0 || nd->n_outputs < 1 ||
            !(qc_dr_given_out_scale(d, nd->name) > 0))
            continue;
        for (int r = 0, i; !inside && (i = qc_model_reader(m, nd->outputs[0], r)) >= 0; r++)
            inside = qc_quant_stat_seed(m->nodes[i].op_type) ||
                     qc_strmap_get(&norm, m->nodes[i].name) >= 0;
        if (inside && n++ == 0)
            *first = nd->name, *first_op = nd->op_type;
    }
    qc_strmap_free(&norm);
    return n;
}

/* The scalar scale (bits) and zero point of Q/DQ node n of model g; 0 if not scalars. */
static int qdq_params(const qc_model *g, const qc_node *n, float *scale, int64_t *zp)
{
    const qc_tensor *s = n->n_inputs > 1 ? qc_model_init(g, n->inputs[1]) : NULL;
    const qc_tensor *z = n->n_inputs > 2 && n->inputs[2][0] ? qc_model_init(g, n->inputs[2])
                                                            : NULL;
    if (!s || s->dtype != QC_F32 || qc_tensor_numel(s) != 1 ||
        (z && qc_tensor_numel(z) != 1))
        return 0;
    *scale = ((const float *)s->data)[0];
    *zp = z ? qc_tensor_get_i(z, 0) : 0;
    return 1;
}

/* doctor_priv.h */
int qc_dr_concat_requant(const qc_model *g, int *n_concats, const char **first)
{
    int n = 0;
    *n_concats = 0;
    *first = NULL;
    for (int j = 0; j < g->n_nodes; j++) {
        const qc_node *nd = &g->nodes[j];
        float so = 0;
        int64_t zo = 0;
        int have = 0, here = 0;
        if (nd->domain[0] || strcmp(nd->op_type, "Concat") || nd->n_outputs < 1)
            continue;
        for (int r = 0, i; !have && (i = qc_model_reader(g, nd->outputs[0], r)) >= 0; r++)
            have = !strcmp(g->nodes[i].op_type, "QuantizeLinear") &&
                   !strcmp(g->nodes[i].inputs[0], nd->outputs[0]) &&
                   qdq_params(g, &g->nodes[i], &so, &zo);
        for (int k = 0; have && k < nd->n_inputs; k++) {
            int p = nd->inputs[k][0] ? qc_model_producer(g, nd->inputs[k]) : -1;
            float s;
            int64_t z;
            if (p >= 0 && !strcmp(g->nodes[p].op_type, "DequantizeLinear") &&
                qdq_params(g, &g->nodes[p], &s, &z) &&
                (memcmp(&s, &so, sizeof s) != 0 || z != zo))
                here++;
        }
        if (here && !*first)
            *first = nd->name;
        n += here;
        *n_concats += here > 0;
    }
    return n;
}
