/* qc_exec_opts.fuse, elementwise chains (src/exec/ewchain.c): the nodes computed from one
 * value and scalar constants run chunk by chunk as one step give the bytes the nodes give one
 * by one; chains with a second value read elsewhere, or a non-scalar operand, are not formed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "qc_exec.h"

#define EW_NODES 12

enum { C_GELU, C_GELU_LEAK, C_BCAST, C_INT, C_SILU, C_SILU_SWAP };

typedef struct ew_model {
    qc_model      m;
    qc_node       nodes[EW_NODES];
    const char   *io[EW_NODES][2][2];
    qc_value_info in, out[2];
    qc_tensor     inits[5];
    float         k[4], row[3];
} ew_model;

static void ew_node(ew_model *t, int i, const char *op, const char *a, const char *b,
                    const char *out)
{
    const char **in = t->io[i][0], **o = t->io[i][1];
    in[0] = a, in[1] = b, o[0] = out;
    t->nodes[i] = (qc_node){ .name = out, .op_type = op, .domain = "", .n_inputs = b ? 2 : 1,
                             .n_outputs = 1, .inputs = in, .outputs = o };
}

/* x -> Identity -> a, then the tanh GELU as Keras exports it (constants first in some nodes,
 * a [1,1,1] one that raises the rank); C_GELU_LEAK: one value in between is a graph output
 * too; C_BCAST: a per-column constant in the chain; C_INT: int32 Neg -> Abs. */
static void ew_build(ew_model *t, int kind)
{
    memset(t, 0, sizeof *t);
    t->k[0] = 0.044715f, t->k[1] = 0.7978846f, t->k[2] = 1.0f, t->k[3] = 0.5f;
    t->row[0] = 0.5f, t->row[1] = -1.0f, t->row[2] = 2.0f;
    static const char *const kn[4] = { "c1", "c2", "one", "half" };
    for (int i = 0; i < 4; i++)
        t->inits[i] = (qc_tensor){ .name = kn[i], .dtype = QC_F32, .data = &t->k[i] };
    t->inits[2].ndim = 3;
    t->inits[2].dims[0] = t->inits[2].dims[1] = t->inits[2].dims[2] = 1;
    t->inits[4] = (qc_tensor){ .name = "row", .dtype = QC_F32, .ndim = 1, .dims = { 3 },
                               .data = t->row };
    int n = 0;
    ew_node(t, n++, "Identity", "x", NULL, "a");
    if (kind == C_INT) {
        ew_node(t, n++, "Neg", "a", NULL, "g1");
        ew_node(t, n++, "Abs", "g1", NULL, "y");
    } else if (kind == C_SILU || kind == C_SILU_SWAP) {
        ew_node(t, n++, "Sigmoid", "a", NULL, "g1");
        ew_node(t, n++, "Mul", kind == C_SILU ? "a" : "g1", kind == C_SILU ? "g1" : "a", "y");
    } else {
        ew_node(t, n++, "Mul", "c1", "a", "g1");
        ew_node(t, n++, "Mul", "a", "g1", "g2");
        ew_node(t, n++, "Mul", "a", "g2", "g3");
        ew_node(t, n++, "Add", "a", "g3", "g4");
        ew_node(t, n++, "Mul", "c2", "g4", "g5");
        ew_node(t, n++, "Tanh", "g5", NULL, "g6");
        ew_node(t, n++, "Add", "one", "g6", "g7");
        ew_node(t, n++, kind == C_BCAST ? "Div" : "Mul", kind == C_BCAST ? "g7" : "half",
                kind == C_BCAST ? "row" : "g7", "g8");
        ew_node(t, n++, "Mul", "a", "g8", "y");
    }
    t->in = (qc_value_info){ .name = "x", .dtype = kind == C_INT ? QC_I32 : QC_F32, .ndim = -1 };
    t->out[0] = (qc_value_info){ .name = "y", .dtype = t->in.dtype, .ndim = -1 };
    t->out[1] = (qc_value_info){ .name = "g4", .dtype = QC_F32, .ndim = -1 };
    t->m = (qc_model){ .path = "test", .opset = 13, .n_nodes = n, .n_inputs = 1,
                       .n_outputs = kind == C_GELU_LEAK ? 2 : 1, .n_inits = 5,
                       .nodes = t->nodes, .inputs = &t->in, .outputs = t->out,
                       .inits = t->inits };
}

/* rows x 3 inputs; fused: nodes the fusing executor skips */
static void ew_check(const char *what, int kind, int64_t rows, int fused)
{
    ew_model t;
    ew_build(&t, kind);
    int64_t n = rows * 3;
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t r = 7;
    for (int64_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 12.0f;
        if (kind == C_INT)
            ((int32_t *)x)[i] = (int32_t)(r >> 4) - (1 << 27);
    }
    if (kind != C_INT)
        x[1] = NAN, x[n / 2] = INFINITY, x[n - 1] = -INFINITY;
    qc_err err = { 0 };
    qc_tensor in = { .name = "x", .dtype = t.in.dtype, .ndim = 2, .dims = { rows, 3 },
                     .data = x };
    qc_exec *a = NULL, *b = NULL;
    CHECK_OK(qc_exec_new(&a, &t.m, &(qc_exec_opts){ 0 }, &err));
    CHECK_OK(qc_exec_new(&b, &t.m, &(qc_exec_opts){ .fuse = 1 }, &err));
    for (int run = 0; a && b && run < 2; run++) {
        CHECK_OK(qc_exec_run(a, &in, 1, &err));
        CHECK_OK(qc_exec_run(b, &in, 1, &err));
        CHECK_INT(qc_exec_fused_nodes(a), 0);
        CHECK_INT(qc_exec_fused_nodes(b), fused);
        for (int o = 0; o < t.m.n_outputs; o++) {
            const qc_tensor *ya = qc_exec_output(a, o), *yb = qc_exec_output(b, o);
            if (!ya || !yb || !qc_shape_equal(ya, yb) || ya->dtype != yb->dtype) {
                qc_test_fail(__FILE__, __LINE__, "%s: outputs missing or shapes differ", what);
                break;
            }
            if (o == 0)                                 /* [1,1,1] raised the GELU's rank */
                CHECK_INT(ya->ndim, kind == C_INT || kind >= C_SILU ? 2 : 3);
            if (memcmp(ya->data, yb->data, qc_tensor_nbytes(ya)) != 0)
                qc_test_fail(__FILE__, __LINE__, "%s: output %d differs fused", what, o);
        }
    }
    qc_exec_free(a);
    qc_exec_free(b);
    free(x);
}

QC_TEST(ew_chain_same_bytes)
{
    ew_check("GELU, 7 rows (one short chunk)", C_GELU, 7, 8);
    ew_check("GELU, 30001 rows (tasks in parallel, a tail)", C_GELU, 30001, 8);
    ew_check("int32 Neg -> Abs (whole tensors)", C_INT, 5000, 1);
    /* x * Sigmoid(x): one kernel for the two (qc_ew_silu), either operand order */
    ew_check("SiLU, 5 rows", C_SILU, 5, 1);
    ew_check("SiLU, 30001 rows", C_SILU, 30001, 1);
    ew_check("SiLU as Mul(Sigmoid(x), x), 30001 rows", C_SILU_SWAP, 30001, 1);
}

QC_TEST(ew_chain_not_formed)
{
    /* g4 is read outside: from a, two values leave; from g4, Mul..Mul (4 nodes, exit g8,
     * which y reads with a) */
    ew_check("a value in between is a graph output", C_GELU_LEAK, 1000, 3);
    /* the per-column Div leaves the chain: from a, Mul..Add (7 nodes, exit g7) */
    ew_check("a non-scalar operand", C_BCAST, 1000, 6);
}

/* qc_exec_opts.hooked: a value the hook reads is not fused away (the chain around it forms as
 * around a graph output) and the hook sees it, with the unfused bits; unlike keep it is not
 * held after the run. */
typedef struct hook_seen {
    int      calls;
    uint64_t sum;               /* of g4's bits */
} hook_seen;

static int seen_hook(void *user, const qc_node *node, int node_index,
                     const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    hook_seen *h = user;
    (void)node, (void)node_index, (void)err;
    for (int i = 0; i < n_outs; i++)
        if (!strcmp(outs[i]->name, "g4")) {
            const uint32_t *b = outs[i]->data;
            h->calls++;
            for (int64_t j = 0; j < qc_tensor_numel(outs[i]); j++)
                h->sum = h->sum * 31 + b[j];
        }
    return QC_OK;
}

QC_TEST(ew_chain_hooked)
{
    ew_model t;
    ew_build(&t, C_GELU);
    float x[3000];
    for (int i = 0; i < 3000; i++)
        x[i] = (float)((i * 37) % 1000) / 100.0f - 5.0f;
    qc_tensor in = { .name = "x", .dtype = QC_F32, .ndim = 2, .dims = { 1000, 3 }, .data = x };
    static const char *const hooked[] = { "g4" };
    hook_seen ha = { 0 }, hb = { 0 };
    qc_err err = { 0 };
    qc_exec *a = NULL, *b = NULL;
    CHECK_OK(qc_exec_new(&a, &t.m, &(qc_exec_opts){ 0 }, &err));
    CHECK_OK(qc_exec_new(&b, &t.m, &(qc_exec_opts){ .fuse = 1, .fuse_exact = 1,
                                                   .hooked = hooked, .n_hooked = 1 }, &err));
    if (!a || !b)
        return;
    qc_exec_set_hook(a, seen_hook, &ha);
    qc_exec_set_hook(b, seen_hook, &hb);
    CHECK_OK(qc_exec_run(a, &in, 1, &err));
    CHECK_OK(qc_exec_run(b, &in, 1, &err));
    /* the same chain as with g4 a graph output (ew_chain_not_formed): from g4, Mul..Mul */
    CHECK_INT(qc_exec_fused_nodes(b), 3);
    CHECK_INT(hb.calls, 1);
    CHECK(ha.calls == 1 && ha.sum == hb.sum);
    CHECK(qc_exec_value(b, "g4") == NULL);
    const qc_tensor *ya = qc_exec_output(a, 0), *yb = qc_exec_output(b, 0);
    CHECK(ya && yb && !memcmp(ya->data, yb->data, qc_tensor_nbytes(ya)));
    qc_exec_free(a);
    qc_exec_free(b);
}
