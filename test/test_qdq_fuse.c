/* qc_exec_opts.fuse_qdq: a QuantizeLinear -> DequantizeLinear pair run as one step gives the
 * bytes the two nodes give, on values that exercise rounding ties, saturation, NaN, infinities
 * and tails shorter than a vector; pairs that differ in parameters stay two nodes. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "qc_exec.h"

typedef struct qdq_model {
    qc_model      m;
    qc_node       nodes[2];
    const char   *q_in[3], *q_out[1], *dq_in[3], *dq_out[1];
    qc_value_info in, out;
    qc_tensor     inits[4];
    float         s, s2;
    uint8_t       z, z2;        /* int8 zero points use the same byte */
} qdq_model;

/* x -> Q(s, z) -> DQ(s or s2, z or z2) -> y; zp_dtype 0: no zero points (uint8 codes) */
static void qdq_build(qdq_model *t, int zp_dtype, float s, int z, float dq_s, int dq_z)
{
    memset(t, 0, sizeof *t);
    t->s = s, t->s2 = dq_s, t->z = (uint8_t)z, t->z2 = (uint8_t)dq_z;
    t->inits[0] = (qc_tensor){ .name = "s", .dtype = QC_F32, .ndim = 0, .data = &t->s };
    t->inits[1] = (qc_tensor){ .name = "s2", .dtype = QC_F32, .ndim = 0, .data = &t->s2 };
    t->inits[2] = (qc_tensor){ .name = "z", .dtype = zp_dtype, .ndim = 0, .data = &t->z };
    t->inits[3] = (qc_tensor){ .name = "z2", .dtype = zp_dtype, .ndim = 0, .data = &t->z2 };
    int nz = zp_dtype ? 3 : 2;
    t->q_in[0] = "x", t->q_in[1] = "s", t->q_in[2] = "z", t->q_out[0] = "q";
    t->dq_in[0] = "q", t->dq_in[1] = dq_s == s ? "s" : "s2";
    t->dq_in[2] = dq_z == z ? "z" : "z2", t->dq_out[0] = "y";
    t->nodes[0] = (qc_node){ .name = "Q", .op_type = "QuantizeLinear", .domain = "",
                             .n_inputs = nz, .n_outputs = 1, .inputs = t->q_in,
                             .outputs = t->q_out };
    t->nodes[1] = (qc_node){ .name = "DQ", .op_type = "DequantizeLinear", .domain = "",
                             .n_inputs = nz, .n_outputs = 1, .inputs = t->dq_in,
                             .outputs = t->dq_out };
    t->in = (qc_value_info){ .name = "x", .dtype = QC_F32, .ndim = -1 };
    t->out = (qc_value_info){ .name = "y", .dtype = QC_F32, .ndim = -1 };
    t->m = (qc_model){ .path = "test", .opset = 13, .n_nodes = 2, .n_inputs = 1,
                       .n_outputs = 1, .n_inits = zp_dtype ? 4 : 2, .nodes = t->nodes,
                       .inputs = &t->in, .outputs = &t->out, .inits = t->inits };
}

/* Runs the model on x with and without fuse_qdq; the outputs must be the same bytes, and
 * `fused` says whether the Q was folded in. */
static void qdq_check(const char *what, qdq_model *t, const float *x, int64_t n, int fused)
{
    qc_err err = { 0 };
    qc_tensor in = { .name = "x", .dtype = QC_F32, .ndim = 1, .dims = { n }, .data = (void *)x };
    qc_exec *a = NULL, *b = NULL;
    CHECK_OK(qc_exec_new(&a, &t->m, NULL, &err));
    CHECK_OK(qc_exec_new(&b, &t->m, &(qc_exec_opts){ .fuse_qdq = 1 }, &err));
    if (a && b) {
        CHECK_OK(qc_exec_run(a, &in, 1, &err));
        CHECK_OK(qc_exec_run(b, &in, 1, &err));
        CHECK_INT(qc_exec_fused_nodes(b), fused);
        const qc_tensor *ya = qc_exec_output(a, 0), *yb = qc_exec_output(b, 0);
        if (ya && yb && qc_shape_equal(ya, yb)) {
            const uint32_t *ua = ya->data, *ub = yb->data;
            for (int64_t i = 0; i < n; i++)
                if (ua[i] != ub[i]) {
                    qc_test_fail(__FILE__, __LINE__, "%s: y[%lld] = %.9g fused, %.9g not "
                                 "(x %.9g)", what, (long long)i, ((float *)yb->data)[i],
                                 ((float *)ya->data)[i], x[i]);
                    break;
                }
        } else {
            qc_test_fail(__FILE__, __LINE__, "%s: outputs missing or shapes differ", what);
        }
    }
    qc_exec_free(a);
    qc_exec_free(b);
}

static float *qdq_inputs(int64_t n, float s)
{
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t r = 7;
    for (int64_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        /* half the values on exact ties k + 0.5 steps, the rest anywhere in +-300 steps */
        int64_t k = (int64_t)(r >> 16) % 600 - 300;
        x[i] = (i & 1) ? ((float)k + 0.5f) * s : (float)((r >> 8) & 0xffffff) / 16777216.0f *
                                                      600.0f * s - 300.0f * s;
    }
    if (n > 5) {
        x[1] = NAN, x[2] = INFINITY, x[3] = -INFINITY, x[4] = -0.0f, x[5] = 1e30f;
    }
    return x;
}

QC_TEST(qdq_fuse_same_bytes)
{
    /* 100003: parallel blocks and a tail shorter than a vector */
    const int64_t sizes[] = { 1, 7, 37, 4096, 100003 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *x = qdq_inputs(n, 0.05f);
        qdq_model t;
        qdq_build(&t, QC_U8, 0.05f, 128, 0.05f, 128);
        qdq_check("uint8", &t, x, n, 1);
        qdq_build(&t, QC_U8, 0.05f, 3, 0.05f, 3);
        qdq_check("uint8 zero point 3", &t, x, n, 1);
        qdq_build(&t, QC_I8, 0.05f, (uint8_t)(int8_t)-5, 0.05f, (uint8_t)(int8_t)-5);
        qdq_check("int8", &t, x, n, 1);
        qdq_build(&t, 0, 0.05f, 0, 0.05f, 0);
        qdq_check("no zero point", &t, x, n, 1);
        setenv("QC_QDQ_SCALAR", "1", 1);
        qdq_build(&t, QC_U8, 0.05f, 128, 0.05f, 128);
        qdq_check("uint8 scalar", &t, x, n, 1);
        unsetenv("QC_QDQ_SCALAR");
        free(x);
    }
}

/* Values next to rounding ties (k + 0.5 steps and their float neighbours) for scales whose
 * reciprocal is inexact: where x * (1/s) and x / s round apart, the codes differ. */
QC_TEST(qdq_fuse_near_ties_many_scales)
{
    const float scales[] = { 0.05f, 0.0123457f, 3.3e-3f, 0.7f, 1.0f / 255.0f, 9.87654e-5f };
    enum { N = 6000 };
    float *x = malloc(N * sizeof *x);
    for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
        float s = scales[k];
        for (int i = 0; i < N; i++) {
            float t = ((float)(i / 3 % 1000) - 500.0f + 0.5f) * s;
            x[i] = i % 3 == 0 ? t : nextafterf(t, i % 3 == 1 ? INFINITY : -INFINITY);
        }
        qdq_model t;
        qdq_build(&t, QC_U8, s, 128, s, 128);
        qdq_check("uint8 near ties", &t, x, N, 1);
        qdq_build(&t, QC_I8, s, 0, s, 0);
        qdq_check("int8 near ties", &t, x, N, 1);
    }
    free(x);
}

QC_TEST(qdq_fuse_needs_same_parameters)
{
    float *x = qdq_inputs(64, 0.05f);
    qdq_model t;
    qdq_build(&t, QC_U8, 0.05f, 128, 0.1f, 128);
    qdq_check("other scale", &t, x, 64, 0);
    qdq_build(&t, QC_U8, 0.05f, 128, 0.05f, 120);
    qdq_check("other zero point", &t, x, 64, 0);
    free(x);
}
