/* One-node models built in memory for the executor's op tests (test_ops_conv.c,
 * test_conv_wino.c): the node, its inputs, an optional SiLU tail; a seeded random source. */
#ifndef QC_TEST_TNODE_H
#define QC_TEST_TNODE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "qc_exec.h"

typedef struct tnode {
    qc_model      m;
    qc_node       nodes[3];     /* the op; [1],[2]: Sigmoid and Mul of a SiLU tail */
    const char   *tail_io[2][2];
    const char   *mid_names[1];
    int           silu;
    qc_value_info ins[4], outs[2];
    const char   *in_names[4], *out_names[2];
    qc_attr       attrs[12];
    int64_t       ints[12][16];
    qc_tensor     inputs[4];
    qc_exec      *x;
} tnode;

static const char *const in_name[4] = { "in0", "in1", "in2", "in3" };
static const char *const out_name[2] = { "out0", "out1" };

static inline void tn_init(tnode *t, const char *op, int64_t opset, int n_in, int n_out)
{
    memset(t, 0, sizeof *t);
    t->nodes[0].name = op;
    t->nodes[0].op_type = op;
    t->nodes[0].domain = "";
    t->nodes[0].n_inputs = n_in;
    t->nodes[0].n_outputs = n_out;
    t->nodes[0].inputs = t->in_names;
    t->nodes[0].outputs = t->out_names;
    t->nodes[0].attrs = t->attrs;
    for (int i = 0; i < n_in; i++) {
        t->in_names[i] = in_name[i];
        t->ins[i].name = in_name[i];
        t->ins[i].ndim = -1;
    }
    for (int i = 0; i < n_out; i++) {
        t->out_names[i] = out_name[i];
        t->outs[i].name = out_name[i];
        t->outs[i].ndim = -1;
    }
    t->m.path = "test";
    t->m.opset = opset;
    t->m.n_nodes = 1;
    t->m.nodes = t->nodes;
    t->m.n_inputs = n_in;
    t->m.inputs = t->ins;
    t->m.n_outputs = n_out;
    t->m.outputs = t->outs;
}

static inline qc_attr *tn_attr(tnode *t, const char *name, int type)
{
    qc_attr *a = &t->attrs[t->nodes[0].n_attrs++];
    a->name = name;
    a->type = type;
    return a;
}

static inline void tn_ints(tnode *t, const char *name, int n, const int64_t *v)
{
    int slot = t->nodes[0].n_attrs;
    qc_attr *a = tn_attr(t, name, QC_ATTR_INTS);
    memcpy(t->ints[slot], v, (size_t)n * sizeof *v);
    a->ints = t->ints[slot];
    a->n = n;
}

static inline void tn_int(tnode *t, const char *name, int64_t v)
{
    tn_attr(t, name, QC_ATTR_INT)->i = v;
}

static inline void tn_float(tnode *t, const char *name, float v)
{
    tn_attr(t, name, QC_ATTR_FLOAT)->f = v;
}

static inline void tn_str(tnode *t, const char *name, const char *v)
{
    tn_attr(t, name, QC_ATTR_STRING)->s = v;
}

static inline void tn_input(tnode *t, int i, int dtype, int ndim, const int64_t *dims,
                            const void *d)
{
    qc_tensor *in = &t->inputs[i];
    in->name = in_name[i];
    in->dtype = dtype;
    in->ndim = ndim;
    if (ndim > 0)
        memcpy(in->dims, dims, (size_t)ndim * sizeof *dims);
    in->data = (void *)d;
    t->ins[i].dtype = dtype;
}

/* Appends x * Sigmoid(x) after the op (output "out0" moves to the Mul), which the planner
 * fuses into the Conv kernel (qc_exec_opts.fuse). */
static inline void tn_silu(tnode *t)
{
    static const char *const mid = "conv_out", *const sig = "sig_out";
    t->silu = 1;
    t->mid_names[0] = mid;
    t->nodes[0].outputs = t->mid_names;
    t->tail_io[0][0] = mid;
    t->tail_io[0][1] = sig;
    t->tail_io[1][0] = mid;
    t->tail_io[1][1] = sig;
    t->nodes[1] = (qc_node){ .name = "sig", .op_type = "Sigmoid", .domain = "", .n_inputs = 1,
                             .n_outputs = 1, .inputs = t->tail_io[0],
                             .outputs = &t->tail_io[0][1] };
    t->nodes[2] = (qc_node){ .name = "mul", .op_type = "Mul", .domain = "", .n_inputs = 2,
                             .n_outputs = 1, .inputs = t->tail_io[1], .outputs = t->out_names };
    t->m.n_nodes = 3;
}

/* Plans and runs; returns output k or NULL (failure reported). Call tn_free after. */
static inline const qc_tensor *tn_run(tnode *t, int k)
{
    qc_err err = { 0 };
    qc_exec_opts opts = { .fuse = t->silu };
    if (qc_exec_new(&t->x, &t->m, &opts, &err) != QC_OK ||
        qc_exec_run(t->x, t->inputs, t->m.n_inputs, &err) != QC_OK) {
        qc_test_fail(__FILE__, __LINE__, "%s: %s", t->nodes[0].op_type, err.msg);
        return NULL;
    }
    return qc_exec_output(t->x, k);
}

static inline void tn_free(tnode *t)
{
    qc_exec_free(t->x);
    t->x = NULL;
}

static uint32_t rng = 2024;

static inline float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static inline float *rand_buf(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static inline int64_t prod(const int64_t *d, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= d[i];
    return p;
}

#endif
