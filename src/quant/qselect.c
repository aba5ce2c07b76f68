/* What to quantize (quant_priv.h): the op lists, each input slot's role, the tensors a
 * quantizer plans for and what marks them (normalization statistics, output paths, gates), and
 * after the pass which nodes end up quantized (their inputs float and seen; data-movement nodes
 * that move a model input or feed only float nodes stay float). quantizer.c observes and
 * computes the parameters. */
#include <stdlib.h>
#include <string.h>
#include "quant_priv.h"

static const char *const default_ops[] = {
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat", "MaxPool",
    "AveragePool", "GlobalAveragePool", "Resize", "Reshape", "Transpose", "Squeeze",
    "Unsqueeze", "Flatten", "Split", "Slice", "Sigmoid", "Relu", "Clip", "LeakyRelu",
    "Softmax", "Pad", "Gather", "Where", "DepthToSpace", "SpaceToDepth", NULL
};

static const char *const movement_ops[] = {
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "MaxPool", "Split", "Slice",
    "Gather", "Resize", "GlobalMaxPool", "Identity", "Pad", "DepthToSpace", "SpaceToDepth",
    NULL
};

static int is_one_of(const char *op, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(op, list[i]))
            return 1;
    return 0;
}

int qc_quant_is_movement(const char *op)
{
    return is_one_of(op, movement_ops);
}

int qc_quant_in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !strncmp(p, item, n))
            return 1;
        p = c ? c + 1 : p + len;
    }
    return 0;
}

/* quant_priv.h */
int qc_quant_default_op(const char *op)
{
    return is_one_of(op, default_ops);
}

static int op_selected(const qc_quant_opts *o, const char *op)
{
    return o->op_types ? qc_quant_in_list(o->op_types, op) : qc_quant_default_op(op);
}

/* Input slots of an op that carry quantizable float data, and the role of each:
 * 'a' activation, 'w' weight (per-channel axis from weight_axis), 'b' bias, 0 none. */
/* quant_priv.h */
char qc_quant_slot_role(const qc_node *n, int slot, const qc_model *m)
{
    const char *op = n->op_type;
    int is_init = qc_model_init(m, n->inputs[slot]) != NULL;
    if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose"))
        return slot == 0 ? 'a' : slot == 1 ? 'w' : slot == 2 ? 'b' : 0;
    if (!strcmp(op, "Gemm")) {
        if (slot == 0)
            return 'a';
        if (slot == 1)
            return is_init ? 'w' : 'a';
        if (slot == 2) {
            const qc_tensor *c = qc_model_init(m, n->inputs[2]);
            return c && c->ndim == 1 ? 'b' : 0;
        }
        return 0;
    }
    if (!strcmp(op, "MatMul"))
        return slot == 1 && is_init ? 'w' : slot < 2 ? 'a' : 0;
    if (!strcmp(op, "Add") || !strcmp(op, "Mul") || !strcmp(op, "Concat"))
        return 'a';
    if (!strcmp(op, "Where"))
        return slot == 1 || slot == 2 ? 'a' : 0;
    return slot == 0 ? 'a' : 0;
}

static int weight_axis(const qc_node *n, const qc_tensor *w)
{
    const char *op = n->op_type;
    if (!strcmp(op, "Conv"))
        return 0;
    if (!strcmp(op, "ConvTranspose"))
        return 1;
    if (!strcmp(op, "Gemm"))
        return qc_attr_int(n, "transB", 0) ? 0 : 1;
    if (!strcmp(op, "MatMul"))
        return w->ndim - 1;
    return -1;
}

static int add_t(qc_quantizer *q, const char *name, int kind, int producer, qc_err *err)
{
    int i = qc_strmap_get(&q->by_name, name);
    if (i >= 0)
        return i;
    if (q->n_t == q->cap_t) {
        int nc = q->cap_t ? 2 * q->cap_t : 64;
        qtensor *nt = realloc(q->t, (size_t)nc * sizeof *nt);
        if (!nt)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        q->t = nt;
        q->cap_t = nc;
    }
    i = q->n_t++;
    memset(&q->t[i], 0, sizeof q->t[i]);
    q->t[i].name = name;
    q->t[i].kind = kind;
    q->t[i].producer = producer;
    q->t[i].share_from = q->t[i].derived_from = q->t[i].concat_rep = -1;
    q->t[i].axis = -1;
    q->t[i].bias_in = q->t[i].bias_w = q->t[i].bias_node = -1;
    if (qc_strmap_put(&q->by_name, name, i) != 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    return i;
}

static const char *const stat_seeds[] = { "ReduceSum", "ReduceMean", "ReduceSumSquare",
                                          "ReduceL2", "ReduceLogSumExp", "Sqrt", "Reciprocal",
                                          "Pow", NULL };

/* quant_priv.h */
int qc_quant_stat_seed(const char *op)
{
    return is_one_of(op, stat_seeds);
}

/* Decomposed normalizations (LayerNorm written as E[x^2] - E[x]^2, softmax, RMS norms) subtract
 * nearly equal quantities: int8 error there is amplified without bound, while the arithmetic
 * costs nothing next to the convolutions and matmuls around it. Tensors derived from a
 * reduction, square, root or reciprocal, through elementwise ops only, are "statistics"; the
 * elementwise ops reading them stay float. The region ends at compute ops (MatMul, Conv...). */
static void mark_statistics(qc_quantizer *q)
{
    static const char *const flow[] = { "Add", "Sub", "Mul", "Div", "Max", "Min", "Sqrt",
                                        "Reciprocal", "Pow", "Neg", "Exp", "Log", "Expand",
                                        "Reshape", "Unsqueeze", "Squeeze", "Identity", NULL };
    const qc_model *m = q->m;
    qc_strmap stat;
    if (qc_strmap_init(&stat, (size_t)m->n_nodes + 16) != 0)
        return;
    /* nodes are in file order, which exporters keep topological; a second sweep catches the
     * rare model that is not */
    for (int sweep = 0; sweep < 2; sweep++)
        for (int i = 0; i < m->n_nodes; i++) {
            const qc_node *n = &m->nodes[i];
            int in_stat = qc_quant_stat_seed(n->op_type);
            if (!strcmp(n->op_type, "Mul") && n->n_inputs == 2 &&
                !strcmp(n->inputs[0], n->inputs[1]))
                in_stat = 1;                                    /* a square */
            for (int k = 0; k < n->n_inputs && !in_stat; k++)
                in_stat = n->inputs[k][0] && qc_strmap_get(&stat, n->inputs[k]) >= 0 &&
                          is_one_of(n->op_type, flow);
            if (!in_stat)
                continue;
            for (int k = 0; k < n->n_outputs; k++)
                if (n->outputs[k][0])
                    qc_strmap_put(&stat, n->outputs[k], 1);
            if (q->nodes[i].quantize && is_one_of(n->op_type, flow)) {
                q->nodes[i].quantize = 0;
                q->nodes[i].why = "normalization arithmetic (kept float: cancellation)";
            }
        }
    qc_strmap_free(&stat);
}

/* The "head": tensors after the last compute op (Conv, MatMul, Gemm) on the way to a graph
 * output, i.e. the model's answer: detection scores after their sigmoid, decoded boxes,
 * probabilities. A clipping method (entropy, percentile, mse) cuts exactly the rare large
 * values that matter there (a confident score: entropy took YOLO class scores from 0.85 to
 * 0.12, under the detection threshold), so those tensors always get their full observed
 * range. Also counts each tensor's node readers. */
static void mark_output_paths(qc_quantizer *q)
{
    static const char *const stop[] = { "Conv", "ConvTranspose", "MatMul", "Gemm", NULL };
    const qc_model *m = q->m;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_inputs; k++) {
            int idx = m->nodes[i].inputs[k][0] ? qc_strmap_get(&q->by_name,
                                                               m->nodes[i].inputs[k]) : -1;
            if (idx >= 0)
                q->t[idx].n_readers++;
        }
    qc_strmap out;
    if (qc_strmap_init(&out, (size_t)m->n_outputs * 4 + 16) != 0)
        return;
    for (int i = 0; i < m->n_outputs; i++)
        qc_strmap_put(&out, m->outputs[i].name, 1);
    /* walk producers backwards; file order is topological, so one reverse sweep suffices
     * for exporters' ordering and a second one covers the rest */
    for (int sweep = 0; sweep < 2; sweep++)
        for (int i = m->n_nodes - 1; i >= 0; i--) {
            const qc_node *n = &m->nodes[i];
            int feeds = 0;
            for (int k = 0; k < n->n_outputs && !feeds; k++)
                feeds = n->outputs[k][0] && qc_strmap_get(&out, n->outputs[k]) >= 0;
            if (!feeds || is_one_of(n->op_type, stop))
                continue;
            for (int k = 0; k < n->n_inputs; k++)
                if (n->inputs[k][0] && !qc_model_init(m, n->inputs[k]))
                    qc_strmap_put(&out, n->inputs[k], 1);
        }
    for (int i = 0; i < q->n_t; i++)
        if (qc_strmap_get(&out, q->t[i].name) >= 0)
            q->t[i].output_path = 1;
    qc_strmap_free(&out);
}

/* A Sigmoid's output lies in (0, 1), mostly at both ends (gates, SiLU's second factor,
 * scores): there is no outlier tail to cut, yet mse and entropy clipped ddddocr's 80 gates to
 * a max of 0.993-0.998, at the cost of a histogram of every value. With those two methods
 * such a tensor takes its observed range, like an output path: held-out SQNR without bias
 * correction (tools/quant_report.py) ddddocr mse +1.83 dB, entropy +0.85, nudenet +0.02 /
 * +0.05. Percentile (99.999) clips them by a bin at most and keeps its own: the observed
 * range gave the same SQNR within 0.1 dB but flipped ddddocr's bias-correction decision
 * (F1 96.5% -> 94.2%); EMA keeps its own too (it costs nothing there, and the observed range
 * measured 0.2-0.4 dB worse). compare's auto evaluates every range of a gate as before. */
static void mark_gates(qc_quantizer *q)
{
    for (int i = 0; i < q->n_t; i++) {
        qtensor *t = &q->t[i];
        t->gate = t->kind == QT_ACT && qc_quant_is_gate(q->m, t->producer, &q->o);
    }
}

/* quant_priv.h */
int qc_quant_is_gate(const qc_model *m, int producer, const qc_quant_opts *o)
{
    return (!strcmp(o->method, "mse") || !strcmp(o->method, "entropy")) && producer >= 0 &&
           !strcmp(m->nodes[producer].op_type, "Sigmoid");
}

/* quant_priv.h */
int qc_quant_select_tensors(qc_quantizer *q, qc_err *err)
{
    const qc_model *m = q->m;
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *n = &m->nodes[i];
        qnode *qn = &q->nodes[i];
        if (!op_selected(&q->o, n->op_type)) {
            qn->why = "op type not quantized";
            continue;
        }
        if (q->o.exclude && qc_quant_in_list(q->o.exclude, n->name)) {
            qn->why = "excluded by --exclude";
            continue;
        }
        qn->quantize = 1;
    }
    mark_statistics(q);
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *n = &m->nodes[i];
        if (!q->nodes[i].quantize)
            continue;
        int w_idx = -1, a_idx = -1;
        for (int k = 0; k < n->n_inputs; k++) {
            if (!n->inputs[k][0])
                continue;
            char role = qc_quant_slot_role(n, k, m);
            const qc_tensor *init = qc_model_init(m, n->inputs[k]);
            int idx;
            if (!role)
                continue;
            if (role == 'w' || role == 'b' || (role == 'a' && init)) {
                if (!init || init->dtype != QC_F32)
                    continue;
                int kind = role == 'w' ? QT_WEIGHT : role == 'b' ? QT_BIAS : QT_CONST;
                if ((idx = add_t(q, n->inputs[k], kind, -1, err)) < 0)
                    return idx;
                qtensor *t = &q->t[idx];
                if (t->kind != kind) {          /* used as weight by one node, data by another */
                    if (t->kind == QT_BIAS || kind == QT_BIAS)
                        t->kind = QT_CONST;
                    else if (kind == QT_WEIGHT)
                        t->kind = QT_WEIGHT;
                }
                if (kind == QT_WEIGHT) {
                    int ax = q->o.per_channel ? weight_axis(n, init) : -1;
                    if (t->axis >= 0 && ax != t->axis)
                        t->axis_conflict = 1;
                    if (t->axis < 0 || ax == t->axis)
                        t->axis = ax;
                    w_idx = idx;
                }
                if (kind == QT_BIAS) {
                    if (t->bias_node >= 0 && t->bias_node != i)
                        t->kind = QT_CONST;     /* shared bias: no single input scale */
                    t->bias_node = i;
                }
                t->seen_dtype = QC_F32;
            } else {
                if ((idx = add_t(q, n->inputs[k], QT_ACT, qc_model_producer(m, n->inputs[k]),
                                 err)) < 0)
                    return idx;
                if (k == 0)
                    a_idx = idx;
            }
        }
        for (int k = 0; k < n->n_inputs; k++) {     /* link biases to their scales */
            int idx = n->inputs[k][0] ? qc_strmap_get(&q->by_name, n->inputs[k]) : -1;
            if (idx >= 0 && q->t[idx].kind == QT_BIAS && q->t[idx].bias_node == i) {
                q->t[idx].bias_in = a_idx;
                q->t[idx].bias_w = w_idx;
                if (a_idx < 0 || w_idx < 0)
                    q->t[idx].kind = QT_CONST;
            }
        }
        for (int k = 0; k < n->n_outputs; k++) {
            if (!n->outputs[k][0])
                continue;
            if ((!strcmp(n->op_type, "MaxPool") || !strcmp(n->op_type, "TopK")) && k > 0)
                continue;                           /* indices */
            int idx = add_t(q, n->outputs[k], QT_ACT, i, err);
            if (idx < 0)
                return idx;
            if (qc_quant_is_movement(n->op_type) && n->n_inputs > 0) {
                int src = qc_strmap_get(&q->by_name, n->inputs[0]);
                if (src >= 0 && q->t[src].kind == QT_ACT)
                    q->t[idx].share_from = src;
            }
        }
    }
    mark_output_paths(q);
    mark_gates(q);
    return QC_OK;
}

/* qnode.float_feed (see qc_quant_reads_float): a data-movement node whose outputs are read,
 * and only by nodes that read float data (a Conv/Gemm/MatMul left float, or another such
 * movement node), is left float and reads float: were it quantized it would carry a
 * DequantizeLinear that onnxruntime moves in front of the float node and then quantizes that
 * node (measured: a --target-sqnr variant of magika whose float Conv read a Transpose of a
 * quantized Slice, 37.8 dB in qcal, 31.0 dB in onnxruntime with WeightBiasQuantization, 38.0
 * without). Reverse file order (topological), twice for any other order. */
static void mark_float_feeds(qc_quantizer *q)
{
    const qc_model *m = q->m;
    for (int j = 0; j < m->n_nodes; j++)
        q->nodes[j].float_feed = 0;
    for (int sweep = 0; sweep < 2; sweep++)
        for (int j = m->n_nodes - 1; j >= 0; j--) {
            const qc_node *n = &m->nodes[j];
            if (q->nodes[j].float_feed || !qc_quant_is_movement(n->op_type))
                continue;
            int readers = 0, float_readers = 0;
            for (int o = 0; o < n->n_outputs; o++) {
                if (!n->outputs[o][0])
                    continue;
                for (int i = 0; i < m->n_outputs; i++)
                    readers += !strcmp(m->outputs[i].name, n->outputs[o]);  /* never float */
                for (int r = 0, k; (k = qc_model_reader(m, n->outputs[o], r)) >= 0; r++) {
                    readers++;
                    float_readers += qc_quant_reads_float(q, k);
                }
            }
            if (readers > 0 && float_readers == readers) {
                q->nodes[j].float_feed = 1;
                if (q->nodes[j].final)
                    q->nodes[j].why = "only float Conv/Gemm/MatMul read it";
                q->nodes[j].final = 0;
            }
        }
}

static int is_graph_input(const qc_model *m, const char *name)
{
    for (int i = 0; i < m->n_inputs; i++)
        if (!strcmp(m->inputs[i].name, name))
            return 1;
    return 0;
}

static void mark_moved(qc_quantizer *q, const char *name)
{
    int idx = name[0] ? qc_strmap_get(&q->by_name, name) : -1;
    if (idx >= 0)
        q->t[idx].moved_input = 1;
}

/* A data-movement node that moves a model input (directly or through other such nodes) stays
 * float: the input is quantized where a computing node reads it, as onnxruntime's quantizer
 * places it. Same codes either way (moving values commutes with rounding them), but not the
 * same speed: onnxruntime slices uint8 along the last axis at 2.1 ns a value against 0.9 for
 * float (YOLOX's focus layer on ddddocr's detector, its profiler, 281 against 120 us a Slice;
 * 1.3 ms of a 17 ms model). File order (topological: producers first), twice for any other
 * order. */
static void mark_input_movers(qc_quantizer *q)
{
    const qc_model *m = q->m;
    for (int j = 0; j < m->n_nodes; j++)
        q->nodes[j].input_mover = 0;
    for (int i = 0; i < q->n_t; i++)
        q->t[i].moved_input = 0;
    for (int sweep = 0; sweep < 2; sweep++)
        for (int j = 0; j < m->n_nodes; j++) {
            const qc_node *n = &m->nodes[j];
            qnode *qn = &q->nodes[j];
            if (qn->input_mover || !qn->final || !qc_quant_is_movement(n->op_type) ||
                n->n_inputs < 1 || !n->inputs[0][0])
                continue;
            int p = qc_model_producer(m, n->inputs[0]);
            if (p >= 0 ? q->nodes[p].input_mover : is_graph_input(m, n->inputs[0])) {
                qn->input_mover = 1;
                qn->final = 0;
                qn->why = "moves a model input (quantized where a computing node reads it)";
                mark_moved(q, n->inputs[0]);
                for (int k = 0; k < n->n_outputs; k++)
                    mark_moved(q, n->outputs[k]);
            }
        }
}

/* quant_priv.h */
int qc_quant_finalize_nodes(qc_quantizer *q, qc_err *err)
{
    const qc_model *m = q->m;
    /* a node is quantized when every tensor it would quantize turned out to be float */
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *n = &m->nodes[i];
        qnode *qn = &q->nodes[i];
        qn->final = qn->quantize;
        for (int k = 0; k < n->n_inputs && qn->final; k++) {
            int idx = n->inputs[k][0] ? qc_strmap_get(&q->by_name, n->inputs[k]) : -1;
            if (idx < 0 || !qc_quant_slot_role(n, k, m))
                continue;
            if (q->t[idx].seen_dtype != QC_F32) {
                qn->final = 0;
                qn->why = q->t[idx].seen_dtype ? "input is not float" : "input never computed";
            } else if (q->t[idx].obs && !q->t[idx].fixed &&
                       qc_quant_obs_count(q, &q->t[idx]) == 0) {
                qn->final = 0;
                qn->why = "input had no finite value in the calibration data";
            }
        }
    }
    mark_input_movers(q);
    mark_float_feeds(q);
    free(q->float_nodes);
    q->n_float_nodes = 0;
    if (!(q->float_nodes = malloc(((size_t)m->n_nodes + 1) * sizeof *q->float_nodes)))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_nodes; i++)
        if (!q->nodes[i].final)
            q->float_nodes[q->n_float_nodes++] = i;
    return QC_OK;
}
