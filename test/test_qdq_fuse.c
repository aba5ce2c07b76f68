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
        setenv("QC_FQ_AVX2", "1", 1);
        qdq_build(&t, QC_I8, 0.05f, (uint8_t)(int8_t)-5, 0.05f, (uint8_t)(int8_t)-5);
        qdq_check("int8 avx2", &t, x, n, 1);
        unsetenv("QC_FQ_AVX2");
        free(x);
    }
}

/* Values next to rounding ties (k + 0.5 steps and their float neighbours) for scales whose
 * reciprocal is inexact: where x * (1/s) and x / s round apart, the codes differ. */
static void near_ties(void)
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

/* The AVX-512 fake quantization multiplies by 1/s and takes the division only near rounding
 * boundaries (ops_qdq.c); QC_FQ_AVX2 runs the AVX2 kernel (division everywhere) instead. */
QC_TEST(qdq_fuse_near_ties_many_scales)
{
    near_ties();
    setenv("QC_FQ_AVX2", "1", 1);
    near_ties();
    unsetenv("QC_FQ_AVX2");
}

/* 300 random scales from 1e-7 to 1e3, random zero points, values anywhere in +-700 steps
 * (saturating too), on half steps and their float neighbours, and multiples of the scale. */
QC_TEST(qdq_fuse_random_scales)
{
    enum { N = 2048 };
    float *x = malloc(N * sizeof *x);
    uint32_t r = 12345;
#define NEXT() (r = r * 1664525u + 1013904223u)
    for (int it = 0; it < 300; it++) {
        float s = (float)pow(10.0, -7.0 + 10.0 * (NEXT() >> 8) / 16777216.0);
        int z = (int)(NEXT() >> 24);
        for (int i = 0; i < N; i++) {
            float k = (float)((int)(NEXT() >> 16) % 1400 - 700);
            float t = (i % 4 == 0) ? (k + 0.5f) * s : (i % 4 == 1) ? k * s
                    : (float)((NEXT() >> 8) / 16777216.0 * 1400.0 - 700.0) * s;
            x[i] = i % 4 == 3 ? nextafterf(t, (NEXT() & 1) ? INFINITY : -INFINITY) : t;
        }
        qdq_model t;
        qdq_build(&t, QC_U8, s, z, s, z);
        qdq_check("uint8 random scale", &t, x, N, 1);
        qdq_build(&t, QC_I8, s, (uint8_t)(int8_t)(z - 128), s, (uint8_t)(int8_t)(z - 128));
        qdq_check("int8 random scale", &t, x, N, 1);
    }
#undef NEXT
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

/* ---- a Conv's fake quantization and what is computed from it alone, folded into the Conv
 * as a code table (qc_exec_opts.fuse with fuse_qdq) ------------------------------------------
 * x -> Conv(w, b) -> Q/DQ(a) -> tail -> y, run with and without `fuse`: the same bytes,
 * through the AVX-512 tile kernel (3x3), the pointwise kernel (1x1) and the value-by-value
 * path (depthwise; QC_CONV_PORTABLE=1). Tails: the quantized SiLU, nothing, Sigmoid -> Q/DQ,
 * a GELU-like chain with scalar constants (T_GELU_QK: one of them a DequantizeLinear of int8
 * scalars, as quantized Mul operands are; the planner computes it and tables the chain), and
 * SiLU with a also an output (two values leave the subgraph: not tabled). */
enum { QS_NODES = 10, QS_INITS = 13 };
enum { T_SILU, T_FQ, T_SIG, T_GELU, T_TWO_EXITS, T_GELU_QK };

typedef struct qs_model {
    qc_model      m;
    qc_node       nodes[QS_NODES];
    const char   *io[QS_NODES][2][3];
    qc_attr       attrs[2];
    int64_t       pads[4];
    qc_value_info in, out[2];
    qc_tensor     inits[QS_INITS];
    float         s[3], k[2], ks;
    uint8_t       z[3];
    int8_t        kq[2];          /* T_GELU_QK's code and zero point */
    float        *w, *b;
} qs_model;

static void qs_node(qs_model *t, int i, const char *op, int n_in, const char *a,
                    const char *b, const char *c, const char *out)
{
    const char **in = t->io[i][0], **o = t->io[i][1];
    in[0] = a, in[1] = b, in[2] = c, o[0] = out;
    t->nodes[i] = (qc_node){ .name = out, .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = 1, .inputs = in, .outputs = o };
}

/* The zero points' dtype: uint8, or int8 (zero points and codes 128 lower: the same value
 * ranges). */
static int qs_zdt = QC_U8;

/* qs_row set: the kernels are 1 x k (a row; pads along w alone) */
static int qs_row;

/* c input channels, m output channels, k x k kernel (pad k / 2), `group` groups; k = 0: an
 * Identity in place of the Conv (m = c) */
static void qs_build(qs_model *t, int tail, int64_t c, int64_t m, int64_t k, int64_t group)
{
    memset(t, 0, sizeof *t);
    int64_t kh = qs_row ? 1 : k, nw = m * (c / group) * kh * k;
    t->w = malloc((size_t)nw * sizeof *t->w);
    t->b = malloc((size_t)m * sizeof *t->b);
    uint32_t r = 11;
    for (int64_t i = 0; i < nw; i++) {
        r = r * 1664525u + 1013904223u;
        t->w[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 1.2f;
    }
    for (int64_t i = 0; i < m; i++)
        t->b[i] = 0.1f * (float)(i % 7) - 0.3f;
    t->s[0] = 8.0f / 255.0f, t->z[0] = 110;    /* conv output: about -3.5 .. 4.5 */
    t->s[1] = 1.0f / 255.0f, t->z[1] = 0;      /* sigmoid: 0 .. 1 */
    t->s[2] = 4.0f / 255.0f, t->z[2] = 20;     /* x * sigmoid(x): about -0.3 .. 3.7 */
    for (int i = 0; qs_zdt == QC_I8 && i < 3; i++)
        t->z[i] = (uint8_t)(int8_t)(t->z[i] - 128);
    t->k[0] = 0.7978846f, t->k[1] = 1.0f;
    static const char *const sn[3] = { "sa", "sb", "sc" }, *const zn[3] = { "za", "zb", "zc" };
    for (int i = 0; i < 3; i++) {
        t->inits[i] = (qc_tensor){ .name = sn[i], .dtype = QC_F32, .data = &t->s[i] };
        t->inits[3 + i] = (qc_tensor){ .name = zn[i], .dtype = qs_zdt, .data = &t->z[i] };
    }
    t->inits[6] = (qc_tensor){ .name = "w", .dtype = QC_F32, .ndim = 4,
                               .dims = { m, c / group, kh, k }, .data = t->w };
    t->inits[7] = (qc_tensor){ .name = "b", .dtype = QC_F32, .ndim = 1, .dims = { m },
                               .data = t->b };
    t->inits[8] = (qc_tensor){ .name = "k1", .dtype = QC_F32, .data = &t->k[0] };
    t->inits[9] = (qc_tensor){ .name = "one", .dtype = QC_F32, .ndim = 1, .dims = { 1 },
                               .data = &t->k[1] };
    t->ks = 0.7978846f / 102.0f, t->kq[0] = 102, t->kq[1] = 0;
    t->inits[10] = (qc_tensor){ .name = "k1q", .dtype = QC_I8, .data = &t->kq[0] };
    t->inits[11] = (qc_tensor){ .name = "k1s", .dtype = QC_F32, .data = &t->ks };
    t->inits[12] = (qc_tensor){ .name = "k1z", .dtype = QC_I8, .data = &t->kq[1] };
    qs_node(t, 0, k ? "Conv" : "Identity", k ? 3 : 1, "x", "w", "b", "y0");
    for (int i = 0; i < 4; i++)
        t->pads[i] = qs_row && i % 2 == 0 ? 0 : k / 2;
    t->attrs[0] = (qc_attr){ .name = "pads", .type = QC_ATTR_INTS, .ints = t->pads, .n = 4 };
    t->attrs[1] = (qc_attr){ .name = "group", .type = QC_ATTR_INT, .i = group };
    t->nodes[0].attrs = t->attrs;
    t->nodes[0].n_attrs = k ? 2 : 0;
    qs_node(t, 1, "QuantizeLinear", 3, "y0", "sa", "za", "qa");
    qs_node(t, 2, "DequantizeLinear", 3, "qa", "sa", "za", tail == T_FQ ? "y" : "a");
    int n = 3;
    if (tail == T_SILU || tail == T_TWO_EXITS || tail == T_SIG) {
        qs_node(t, n++, "Sigmoid", 1, "a", NULL, NULL, "sg");
        qs_node(t, n++, "QuantizeLinear", 3, "sg", "sb", "zb", "qb");
        qs_node(t, n++, "DequantizeLinear", 3, "qb", "sb", "zb", tail == T_SIG ? "y" : "b1");
    }
    if (tail == T_GELU || tail == T_GELU_QK) {
        if (tail == T_GELU_QK)
            qs_node(t, n++, "DequantizeLinear", 3, "k1q", "k1s", "k1z", "k1d");
        qs_node(t, n++, "Mul", 2, "a", tail == T_GELU ? "k1" : "k1d", NULL, "g1");
        qs_node(t, n++, "Tanh", 1, "g1", NULL, NULL, "g2");
        qs_node(t, n++, "Add", 2, "g2", "one", NULL, "g3");
        qs_node(t, n++, "Mul", 2, "a", "g3", NULL, "m1");
    }
    if (tail == T_SILU || tail == T_TWO_EXITS)
        qs_node(t, n++, "Mul", 2, "a", "b1", NULL, "m1");
    if (tail == T_SILU || tail == T_TWO_EXITS || tail == T_GELU || tail == T_GELU_QK) {
        qs_node(t, n++, "QuantizeLinear", 3, "m1", "sc", "zc", "qc");
        qs_node(t, n++, "DequantizeLinear", 3, "qc", "sc", "zc", "y");
    }
    t->in = (qc_value_info){ .name = "x", .dtype = QC_F32, .ndim = -1 };
    t->out[0] = (qc_value_info){ .name = "y", .dtype = QC_F32, .ndim = -1 };
    t->out[1] = (qc_value_info){ .name = "a", .dtype = QC_F32, .ndim = -1 };
    t->m = (qc_model){ .path = "test", .opset = 13, .n_nodes = n, .n_inputs = 1,
                       .n_outputs = tail == T_TWO_EXITS ? 2 : 1, .n_inits = QS_INITS,
                       .nodes = t->nodes, .inputs = &t->in, .outputs = t->out,
                       .inits = t->inits };
}

/* Inputs next to the first FQ's rounding ties ((j + 1/2) steps and their float neighbours),
 * for the table step after an Identity; else random values. */
static int qs_ties;

/* fused: nodes skipped with fuse_qdq alone, then also with fuse */
static void qs_check(const char *what, int tail, int64_t c, int64_t m, int64_t k,
                     int64_t group, int64_t h, int64_t w, int fused_qdq, int fused_all)
{
    qs_model t;
    qs_build(&t, tail, c, m, k, group);
    int64_t n = c * h * w;
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t r = 5;
    for (int64_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = ((float)(r >> 8) / 16777216.0f - 0.45f) * 4.0f;
    }
    for (int64_t i = 0; qs_ties && i < n; i++) {
        float v = ((float)(i / 3 % 300) - 150.0f + 0.5f) * t.s[0];
        x[i] = i % 3 == 0 ? v : nextafterf(v, i % 3 == 1 ? INFINITY : -INFINITY);
    }
    x[3] = NAN, x[n / 2] = 40.0f, x[n - 2] = -40.0f;  /* NaN and saturated outputs */
    qc_err err = { 0 };
    qc_tensor in = { .name = "x", .dtype = QC_F32, .ndim = 4, .dims = { 1, c, h, w },
                     .data = x };
    qc_exec *a = NULL, *b = NULL;
    CHECK_OK(qc_exec_new(&a, &t.m, &(qc_exec_opts){ .fuse_qdq = 1 }, &err));
    CHECK_OK(qc_exec_new(&b, &t.m, &(qc_exec_opts){ .fuse_qdq = 1, .fuse = 1 }, &err));
    for (int run = 0; a && b && run < 2; run++) {      /* the second with packed weights */
        CHECK_OK(qc_exec_run(a, &in, 1, &err));
        CHECK_OK(qc_exec_run(b, &in, 1, &err));
        CHECK_INT(qc_exec_fused_nodes(a), fused_qdq);
        CHECK_INT(qc_exec_fused_nodes(b), fused_all);
        for (int o = 0; o < t.m.n_outputs; o++) {
            const qc_tensor *ya = qc_exec_output(a, o), *yb = qc_exec_output(b, o);
            if (!ya || !yb || !qc_shape_equal(ya, yb)) {
                qc_test_fail(__FILE__, __LINE__, "%s: outputs missing or shapes differ", what);
                break;
            }
            const uint32_t *ua = ya->data, *ub = yb->data;
            int64_t distinct = 0;
            for (int64_t i = 0; i < qc_tensor_numel(ya); i++) {
                distinct += i > 0 && ua[i] != ua[i - 1];
                if (ua[i] != ub[i]) {
                    qc_test_fail(__FILE__, __LINE__, "%s: output %d [%lld] = %.9g fused, %.9g "
                                 "not", what, o, (long long)i, ((float *)yb->data)[i],
                                 ((float *)ya->data)[i]);
                    break;
                }
            }
            CHECK(distinct > qc_tensor_numel(ya) / 4);    /* not a constant output */
        }
    }
    qc_exec_free(a);
    qc_exec_free(b);
    free(x);
    free(t.w);
    free(t.b);
}

QC_TEST(qdq_fuse_conv_code_table_same_bytes)
{
    /* the CPU's kernels, the portable path, the AVX2 kernels (where the CPU has AVX-512) */
    for (int path = 0; path < 3; path++) {
        if (path == 1)
            setenv("QC_CONV_PORTABLE", "1", 1);
        if (path == 2) {
            unsetenv("QC_CONV_PORTABLE");
            setenv("QC_CONV_ISA", "avx2", 1);
        }
        qs_check("SiLU, 3x3, 40 channels", T_SILU, 6, 40, 3, 1, 11, 13, 3, 8);
        qs_check("SiLU, 1x1, 20 channels", T_SILU, 24, 20, 1, 1, 9, 7, 3, 8);
        qs_check("SiLU, depthwise 3x3", T_SILU, 8, 8, 3, 8, 10, 10, 3, 8);
        qs_check("Q/DQ only, 3x3", T_FQ, 6, 40, 3, 1, 11, 13, 1, 2);
        qs_check("Sigmoid, 1x1", T_SIG, 24, 20, 1, 1, 9, 7, 2, 5);
        qs_check("GELU-like, 3x3", T_GELU, 6, 40, 3, 1, 11, 13, 2, 8);
        qs_check("GELU-like, quantized constant, 3x3", T_GELU_QK, 6, 40, 3, 1, 11, 13, 2, 9);
        qs_check("two values leave", T_TWO_EXITS, 6, 40, 3, 1, 11, 13, 3, 3);
        qs_zdt = QC_I8;     /* int8 FQs: tables with codes moved up by 128 */
        qs_check("int8: SiLU, 3x3, 40 channels", T_SILU, 6, 40, 3, 1, 11, 13, 3, 8);
        qs_check("int8: GELU-like, 3x3", T_GELU, 6, 40, 3, 1, 11, 13, 2, 8);
        qs_zdt = QC_U8;
        qs_row = 1;     /* 1-D rows, on the Winograd path where the CPU has one */
        setenv("QC_CONV_WINO", "1", 1);
        qs_check("SiLU, 1x5 row", T_SILU, 6, 40, 5, 1, 1, 70, 3, 8);
        qs_check("Q/DQ only, 1x3 row", T_FQ, 6, 40, 3, 1, 1, 70, 1, 2);
        unsetenv("QC_CONV_WINO");
        qs_row = 0;
    }
    unsetenv("QC_CONV_ISA");
}

/* Without a Conv before the FQ, the FQ's own knode becomes the table step (vector and scalar
 * paths); a lone FQ stays as it is. */
QC_TEST(qdq_fuse_code_table_step_same_bytes)
{
    for (int scalar = 0; scalar < 2; scalar++) {
        if (scalar)
            setenv("QC_QDQ_SCALAR", "1", 1);
        qs_check("SiLU after Identity", T_SILU, 6, 6, 0, 1, 11, 13, 3, 7);
        qs_check("GELU-like after Identity", T_GELU, 5, 5, 0, 1, 9, 7, 2, 7);
        qs_check("GELU-like, quantized constant, after Identity", T_GELU_QK, 5, 5, 0, 1, 9, 7,
                 2, 8);
        qs_check("Q/DQ after Identity", T_FQ, 6, 6, 0, 1, 11, 13, 1, 1);
        qs_ties = 1;    /* the table's code without a division per value (quot16) */
        qs_check("SiLU after Identity, near ties", T_SILU, 6, 6, 0, 1, 11, 13, 3, 7);
        qs_zdt = QC_I8;
        qs_check("int8: SiLU after Identity, near ties", T_SILU, 6, 6, 0, 1, 11, 13, 3, 7);
        qs_zdt = QC_U8;
        qs_ties = 0;
    }
    unsetenv("QC_QDQ_SCALAR");
}
