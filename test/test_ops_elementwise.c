/* Elementwise, reduce and norm kernels called directly (infer, allocate, run with r = NULL),
 * against expectations written out by hand or computed with plain loops. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "ops.h"
#include "ops_ew.h"
#include "qc_exec.h"

typedef struct knode {
    qc_node   node;
    qc_knode  k;
    qc_attr   attrs[8];
    qc_tensor ins[4], outs[3];
    qc_tensor *in[4], *out[3];
    const qc_op_def *def;
} knode;

static const qc_op_def *find_def(const char *op, int64_t opset)
{
    const qc_op_def *tables[] = { qc_ops_elementwise, qc_ops_reduce, qc_ops_norm };
    const qc_op_def *best = NULL;
    for (int t = 0; t < 3; t++)
        for (const qc_op_def *d = tables[t]; d->op_type; d++)
            if (strcmp(d->op_type, op) == 0 && d->since_opset <= opset &&
                (!best || d->since_opset > best->since_opset))
                best = d;
    return best;
}

static void kn_init(knode *kn, const char *op, int64_t opset, int n_in, int n_out)
{
    memset(kn, 0, sizeof *kn);
    kn->node.name = "n";
    kn->node.op_type = op;
    kn->node.domain = "";
    kn->node.attrs = kn->attrs;
    kn->k.node = &kn->node;
    kn->k.opset = opset;
    kn->k.n_in = n_in;
    kn->k.n_out = n_out;
    kn->k.in = kn->in;
    kn->k.out = kn->out;
    for (int i = 0; i < n_out; i++)
        kn->out[i] = &kn->outs[i];
    kn->def = find_def(op, opset);
}

static qc_attr *kn_attr(knode *kn, const char *name, int type)
{
    qc_attr *a = &kn->attrs[kn->node.n_attrs++];
    a->name = name;
    a->type = type;
    return a;
}

/* Input i: a tensor over caller-owned data (the kernels never write inputs). */
static void kn_in(knode *kn, int i, int dtype, int ndim, const int64_t *dims, const void *data)
{
    qc_tensor *t = &kn->ins[i];
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->dims[d] = dims[d];
    t->data = (void *)data;
    kn->in[i] = t;
}

/* prepare, infer, allocate outputs, run; returns the first failing code. */
static int kn_run(knode *kn, qc_err *err)
{
    int rc;
    if (!kn->def)
        return qc_errf(err, QC_EUNSUPPORTED, "no def for %s", kn->node.op_type);
    if (kn->def->prepare && (rc = kn->def->prepare(&kn->k, err)) != QC_OK)
        return rc;
    if ((rc = kn->def->infer(&kn->k, err)) != QC_OK)
        return rc;
    for (int i = 0; i < kn->k.n_out; i++) {
        qc_tensor *o = kn->out[i];
        if ((rc = qc_tensor_alloc(o, o->dtype, o->ndim, o->dims, err)) != QC_OK)
            return rc;
    }
    return kn->def->run(&kn->k, NULL, err);
}

static void kn_free(knode *kn)
{
    if (kn->def && kn->def->release)
        kn->def->release(&kn->k);
    for (int i = 0; i < kn->k.n_out; i++)
        qc_tensor_free(&kn->outs[i]);
}

static void fill(float *p, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f * 4.0f - 2.0f;
    }
}

QC_TEST(ew_add_broadcast_2x3x4_3x1)
{
    qc_err err = { 0 };
    knode kn;
    float a[24], b[3];
    fill(a, 24, 1);
    fill(b, 3, 2);
    kn_init(&kn, "Add", 14, 2, 1);
    kn_in(&kn, 0, QC_F32, 3, (int64_t[]){ 2, 3, 4 }, a);
    kn_in(&kn, 1, QC_F32, 2, (int64_t[]){ 3, 1 }, b);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(kn.outs[0].ndim, 3);
    CHECK_INT(kn.outs[0].dims[0] * 100 + kn.outs[0].dims[1] * 10 + kn.outs[0].dims[2], 234);
    const float *y = kn.outs[0].data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                CHECK_NEAR(y[(i * 3 + j) * 4 + k], a[(i * 3 + j) * 4 + k] + b[j], 0, 0);
    kn_free(&kn);
}

QC_TEST(ew_mul_outer_broadcast_and_scalar)
{
    qc_err err = { 0 };
    knode kn;
    float a[4] = { 1, 2, 3, 4 }, b[3] = { 10, 20, 30 }, s = -2.0f;
    kn_init(&kn, "Mul", 14, 2, 1);
    kn_in(&kn, 0, QC_F32, 2, (int64_t[]){ 1, 4 }, a);
    kn_in(&kn, 1, QC_F32, 2, (int64_t[]){ 3, 1 }, b);
    CHECK_OK(kn_run(&kn, &err));
    const float *y = kn.outs[0].data;
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++)
            CHECK_NEAR(y[j * 4 + k], a[k] * b[j], 0, 0);
    kn_free(&kn);
    kn_init(&kn, "Sub", 14, 2, 1);
    kn_in(&kn, 0, QC_F32, 0, NULL, &s);
    kn_in(&kn, 1, QC_F32, 1, (int64_t[]){ 4 }, a);
    CHECK_OK(kn_run(&kn, &err));
    for (int k = 0; k < 4; k++)
        CHECK_NEAR(((float *)kn.outs[0].data)[k], s - a[k], 0, 0);
    kn_free(&kn);
}

QC_TEST(ew_int_div_truncates_and_mod_follows_divisor)
{
    qc_err err = { 0 };
    knode kn;
    int32_t a[5] = { -7, 7, -7, 7, 5 }, b[5] = { 2, -2, -2, 2, 0 };
    int32_t div[5] = { -3, -3, 3, 3, 0 }, mod[5] = { 1, -1, -1, 1, 0 };
    int32_t fmod[5] = { -1, 1, -1, 1, 0 };
    kn_init(&kn, "Div", 14, 2, 1);
    kn_in(&kn, 0, QC_I32, 1, (int64_t[]){ 5 }, a);
    kn_in(&kn, 1, QC_I32, 1, (int64_t[]){ 5 }, b);
    CHECK_OK(kn_run(&kn, &err));
    for (int i = 0; i < 5; i++)
        CHECK_INT(((int32_t *)kn.outs[0].data)[i], div[i]);
    kn_free(&kn);
    for (int f = 0; f < 2; f++) {
        kn_init(&kn, "Mod", 13, 2, 1);
        kn_attr(&kn, "fmod", QC_ATTR_INT)->i = f;
        kn_in(&kn, 0, QC_I32, 1, (int64_t[]){ 5 }, a);
        kn_in(&kn, 1, QC_I32, 1, (int64_t[]){ 5 }, b);
        CHECK_OK(kn_run(&kn, &err));
        for (int i = 0; i < 5; i++)
            CHECK_INT(((int32_t *)kn.outs[0].data)[i], f ? fmod[i] : mod[i]);
        kn_free(&kn);
    }
}

QC_TEST(ew_compare_bool_and_variadic_max)
{
    qc_err err = { 0 };
    knode kn;
    int64_t a[3] = { 1, 5, 3 }, b = 3;
    float x[2] = { 1, 9 }, y[3] = { 4, 2, 0 }, z = 5;
    kn_init(&kn, "Less", 13, 2, 1);
    kn_in(&kn, 0, QC_I64, 1, (int64_t[]){ 3 }, a);
    kn_in(&kn, 1, QC_I64, 1, (int64_t[]){ 1 }, &b);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(kn.outs[0].dtype, QC_BOOL);
    const uint8_t *o = kn.outs[0].data;
    CHECK(o[0] == 1 && o[1] == 0 && o[2] == 0);
    kn_free(&kn);
    kn_init(&kn, "Max", 13, 3, 1);
    kn_in(&kn, 0, QC_F32, 2, (int64_t[]){ 2, 1 }, x);
    kn_in(&kn, 1, QC_F32, 1, (int64_t[]){ 3 }, y);
    kn_in(&kn, 2, QC_F32, 0, NULL, &z);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(qc_tensor_numel(&kn.outs[0]), 6);
    const float *m = kn.outs[0].data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            CHECK_NEAR(m[i * 3 + j], fmaxf(fmaxf(x[i], y[j]), z), 0, 0);
    kn_free(&kn);
}

QC_TEST(ew_where_broadcast_int64)
{
    qc_err err = { 0 };
    knode kn;
    uint8_t c[2] = { 1, 0 };
    int64_t x[3] = { 1, 2, 3 }, y = -1;
    kn_init(&kn, "Where", 16, 3, 1);
    kn_in(&kn, 0, QC_BOOL, 2, (int64_t[]){ 2, 1 }, c);
    kn_in(&kn, 1, QC_I64, 1, (int64_t[]){ 3 }, x);
    kn_in(&kn, 2, QC_I64, 0, NULL, &y);
    CHECK_OK(kn_run(&kn, &err));
    const int64_t *o = kn.outs[0].data;
    int64_t want[6] = { 1, 2, 3, -1, -1, -1 };
    for (int i = 0; i < 6; i++)
        CHECK_INT(o[i], want[i]);
    kn_free(&kn);
}

QC_TEST(ew_cast_float_to_int_truncates)
{
    qc_err err = { 0 };
    knode kn;
    float x[6] = { -2.7f, -0.5f, 0.5f, 2.7f, 1e20f, NAN };
    int64_t want[6] = { -2, 0, 0, 2, INT64_MIN, INT64_MIN };
    kn_init(&kn, "Cast", 13, 1, 1);
    kn_attr(&kn, "to", QC_ATTR_INT)->i = QC_I64;
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ 6 }, x);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(kn.outs[0].dtype, QC_I64);
    for (int i = 0; i < 6; i++)
        CHECK_INT(((int64_t *)kn.outs[0].data)[i], want[i]);
    kn_free(&kn);

    kn_init(&kn, "Cast", 13, 1, 1);
    kn_attr(&kn, "to", QC_ATTR_INT)->i = QC_BOOL;
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ 6 }, x);
    CHECK_OK(kn_run(&kn, &err));
    CHECK(memcmp(kn.outs[0].data, (uint8_t[]){ 1, 1, 1, 1, 1, 1 }, 6) == 0);
    kn_free(&kn);

    kn_init(&kn, "Cast", 13, 1, 1);
    kn_attr(&kn, "to", QC_ATTR_INT)->i = QC_F16;
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ 6 }, x);
    CHECK_INT(kn_run(&kn, &err), QC_EUNSUPPORTED);
    CHECK(strstr(err.msg, "float16") != NULL);
    kn_free(&kn);
}

QC_TEST(ew_clip_inputs_and_attrs)
{
    qc_err err = { 0 };
    knode kn;
    float x[4] = { -3, -0.2f, 0.4f, 9 }, hi = 1.0f;
    kn_init(&kn, "Clip", 13, 3, 1);
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ 4 }, x);
    kn_in(&kn, 2, QC_F32, 0, NULL, &hi);
    CHECK_OK(kn_run(&kn, &err));
    const float *y = kn.outs[0].data;
    CHECK(y[0] == -3 && y[1] == -0.2f && y[2] == 0.4f && y[3] == 1);
    kn_free(&kn);
    kn_init(&kn, "Clip", 6, 1, 1);
    kn_attr(&kn, "min", QC_ATTR_FLOAT)->f = 0.0f;
    kn_attr(&kn, "max", QC_ATTR_FLOAT)->f = 6.0f;
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ 4 }, x);
    CHECK_OK(kn_run(&kn, &err));
    y = kn.outs[0].data;
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0.4f && y[3] == 6);
    kn_free(&kn);
}

/* HardSigmoid and HardSwish: the clamp to [0, 1] at both ends, over a vector's worth of values
 * and a tail; NaN stays NaN (HardSigmoid gave 1 when its clamp was fmaxf / fminf), +-inf give
 * the ends (HardSwish: inf times 1, -inf times 0 is NaN, as in the formula). */
QC_TEST(ew_hard_sigmoid_swish_clamps)
{
    qc_err err = { 0 };
    knode kn;
    float x[11] = { -4, -3, -1, 0, 1.5f, 3, 4, NAN, INFINITY, -INFINITY, 2.5f };
    kn_init(&kn, "HardSigmoid", 6, 1, 1);
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ 11 }, x);
    CHECK_OK(kn_run(&kn, &err));
    const float *y = kn.outs[0].data;
    for (int i = 0; i < 11; i++) {
        float t = 0.2f * x[i] + 0.5f, want = t < 0 ? 0 : t > 1 ? 1 : t;
        CHECK(isnan(x[i]) ? isnan(y[i]) : y[i] == want);
    }
    kn_free(&kn);
    kn_init(&kn, "HardSwish", 14, 1, 1);
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ 11 }, x);
    CHECK_OK(kn_run(&kn, &err));
    y = kn.outs[0].data;
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == -1 * (-1.0f / 6.0f + 0.5f) && y[3] == 0);
    CHECK(y[5] == 3 && y[6] == 4 && isnan(y[7]) && isinf(y[8]) && y[8] > 0 && isnan(y[9]));
    CHECK(y[4] == 1.5f * (1.5f * (1.0f / 6.0f) + 0.5f));
    kn_free(&kn);
}

QC_TEST(ew_softmax_rows_sum_to_one)
{
    qc_err err = { 0 };
    knode kn;
    float x[3 * 5 * 4];
    fill(x, 60, 3);
    x[7] = 1000.0f;                      /* must not overflow */
    for (int axis = -1; axis >= -3; axis--) {
        kn_init(&kn, "Softmax", 13, 1, 1);
        kn_attr(&kn, "axis", QC_ATTR_INT)->i = axis;
        kn_in(&kn, 0, QC_F32, 3, (int64_t[]){ 3, 5, 4 }, x);
        CHECK_OK(kn_run(&kn, &err));
        const float *y = kn.outs[0].data;
        int64_t st = axis == -1 ? 1 : axis == -2 ? 4 : 20;
        int64_t len = axis == -1 ? 4 : axis == -2 ? 5 : 3;
        for (int64_t base = 0; base < 60; base++) {
            if ((base / st) % len != 0)
                continue;          /* first element of each normalized line */
            double s = 0.0;
            for (int64_t k = 0; k < len; k++)
                s += y[base + k * st];
            CHECK_NEAR(s, 1.0, 1e-5, 1e-6);
        }
        kn_free(&kn);
    }
    /* opset < 13: coerced to 2D at axis 1, so each [5,4] block sums to 1 */
    kn_init(&kn, "Softmax", 11, 1, 1);
    kn_in(&kn, 0, QC_F32, 3, (int64_t[]){ 3, 5, 4 }, x);
    CHECK_OK(kn_run(&kn, &err));
    for (int b = 0; b < 3; b++) {
        double s = 0.0;
        for (int i = 0; i < 20; i++)
            s += ((float *)kn.outs[0].data)[b * 20 + i];
        CHECK_NEAR(s, 1.0, 1e-5, 1e-6);
    }
    kn_free(&kn);
}

QC_TEST(ew_reduce_sum_axes_input_keepdims_noop)
{
    qc_err err = { 0 };
    knode kn;
    float x[24];
    int64_t axes = -2;
    fill(x, 24, 4);
    kn_init(&kn, "ReduceSum", 13, 2, 1);
    kn_attr(&kn, "keepdims", QC_ATTR_INT)->i = 0;
    kn_in(&kn, 0, QC_F32, 3, (int64_t[]){ 2, 3, 4 }, x);
    kn_in(&kn, 1, QC_I64, 1, (int64_t[]){ 1 }, &axes);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(kn.outs[0].ndim, 2);
    CHECK_INT(kn.outs[0].dims[1], 4);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            double s = 0;
            for (int j = 0; j < 3; j++)
                s += x[(i * 3 + j) * 4 + k];
            CHECK_NEAR(((float *)kn.outs[0].data)[i * 4 + k], s, 1e-6, 1e-6);
        }
    kn_free(&kn);
    /* empty axes with noop_with_empty_axes: a copy */
    kn_init(&kn, "ReduceSum", 13, 2, 1);
    kn_attr(&kn, "noop_with_empty_axes", QC_ATTR_INT)->i = 1;
    kn_in(&kn, 0, QC_F32, 3, (int64_t[]){ 2, 3, 4 }, x);
    kn_in(&kn, 1, QC_I64, 1, (int64_t[]){ 0 }, &axes);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(qc_tensor_numel(&kn.outs[0]), 24);
    CHECK(memcmp(kn.outs[0].data, x, sizeof x) == 0);
    kn_free(&kn);
    /* ReduceMean before opset 18: axes attribute, all-but-one reduced */
    kn_init(&kn, "ReduceMean", 13, 1, 1);
    qc_attr *a = kn_attr(&kn, "axes", QC_ATTR_INTS);
    int64_t ax2[2] = { 0, 2 };
    a->ints = ax2;
    a->n = 2;
    kn_in(&kn, 0, QC_F32, 3, (int64_t[]){ 2, 3, 4 }, x);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(kn.outs[0].ndim, 3);
    for (int j = 0; j < 3; j++) {
        double s = 0;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++)
                s += x[(i * 3 + j) * 4 + k];
        CHECK_NEAR(((float *)kn.outs[0].data)[j], s / 8, 1e-6, 1e-6);
    }
    kn_free(&kn);
}

QC_TEST(ew_argmax_select_last_index)
{
    qc_err err = { 0 };
    knode kn;
    float x[6] = { 1, 3, 3, 2, 0, 2 };
    for (int last = 0; last < 2; last++) {
        kn_init(&kn, "ArgMax", 13, 1, 1);
        kn_attr(&kn, "axis", QC_ATTR_INT)->i = 1;
        kn_attr(&kn, "select_last_index", QC_ATTR_INT)->i = last;
        kn_in(&kn, 0, QC_F32, 2, (int64_t[]){ 2, 3 }, x);
        CHECK_OK(kn_run(&kn, &err));
        const int64_t *y = kn.outs[0].data;
        CHECK_INT(kn.outs[0].dims[1], 1);
        CHECK_INT(y[0], last ? 2 : 1);
        CHECK_INT(y[1], last ? 2 : 0);
        kn_free(&kn);
    }
}

QC_TEST(ew_layernorm_outputs)
{
    qc_err err = { 0 };
    knode kn;
    float x[2 * 6], s[6], b[6];
    fill(x, 12, 5);
    fill(s, 6, 6);
    fill(b, 6, 7);
    kn_init(&kn, "LayerNormalization", 17, 3, 3);
    kn_in(&kn, 0, QC_F32, 2, (int64_t[]){ 2, 6 }, x);
    kn_in(&kn, 1, QC_F32, 1, (int64_t[]){ 6 }, s);
    kn_in(&kn, 2, QC_F32, 1, (int64_t[]){ 6 }, b);
    CHECK_OK(kn_run(&kn, &err));
    CHECK_INT(kn.outs[1].ndim, 2);
    CHECK_INT(kn.outs[1].dims[1], 1);
    for (int r = 0; r < 2; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < 6; j++)
            m += x[r * 6 + j] / 6.0;
        for (int j = 0; j < 6; j++)
            v += (x[r * 6 + j] - m) * (x[r * 6 + j] - m) / 6.0;
        double inv = 1.0 / sqrt(v + 1e-5);
        CHECK_NEAR(((float *)kn.outs[1].data)[r], m, 1e-5, 1e-6);
        CHECK_NEAR(((float *)kn.outs[2].data)[r], inv, 1e-5, 1e-6);
        for (int j = 0; j < 6; j++)
            CHECK_NEAR(((float *)kn.outs[0].data)[r * 6 + j],
                       (x[r * 6 + j] - m) * inv * s[j] + b[j], 1e-4, 1e-5);
    }
    kn_free(&kn);
}

QC_TEST(ew_bad_broadcast_names_node)
{
    qc_err err = { 0 };
    knode kn;
    float a[6] = { 0 }, b[4] = { 0 };
    kn_init(&kn, "Add", 14, 2, 1);
    kn_in(&kn, 0, QC_F32, 2, (int64_t[]){ 2, 3 }, a);
    kn_in(&kn, 1, QC_F32, 1, (int64_t[]){ 4 }, b);
    CHECK_INT(kn_run(&kn, &err), QC_ESHAPE);
    CHECK(strstr(err.msg, "[2,3]") != NULL && strstr(err.msg, "[4]") != NULL);
    kn_free(&kn);
}

/* Sigmoid and the SiLU kernel (qc_ew_silu, and its clones whatever the CPU) give
 * qc_exec_sigmoid's bits, whichever code the CPU runs (ops_unary.c: AVX2 intrinsics, AVX-512 /
 * AVX2 / baseline clones): on a million bit
 * patterns spread over every exponent, NaN, infinities and subnormals among them, a count
 * that leaves a tail. */
QC_TEST(ew_sigmoid_silu_bits)
{
    enum { N = (1 << 20) + 5 };
    qc_err err = { 0 };
    float *x = malloc(N * sizeof *x), *s = malloc(N * sizeof *s);
    CHECK(x && s);
    if (!x || !s) {
        free(x);
        free(s);
        return;
    }
    for (uint32_t i = 0; i < N; i++) {
        uint32_t u = i * 4093u + (i >> 7);         /* 4093 * 2^20 wraps 2^32 about 1000 times */
        memcpy(&x[i], &u, 4);
    }
    knode kn;
    kn_init(&kn, "Sigmoid", 13, 1, 1);
    kn_in(&kn, 0, QC_F32, 1, (int64_t[]){ N }, x);
    CHECK_OK(kn_run(&kn, &err));
    const float *y = kn.outs[0].data;
    int64_t sig_bad = 0, silu_bad = 0, nans = 0;
    for (int i = 0; y && i < N; i++) {
        float want = qc_exec_sigmoid(x[i]);
        nans += x[i] != x[i];
        sig_bad += x[i] == x[i] ? memcmp(&y[i], &want, 4) != 0 : y[i] == y[i];
    }
    kn_free(&kn);
    CHECK(nans > 0);
    for (int path = 0; path < 2; path++) {
        CHECK_INT(path ? qc_ew_silu_clone(x, s, N) : qc_ew_silu(x, s, N), 1);
        for (int i = 0; i < N; i++) {
            float want = x[i] * qc_exec_sigmoid(x[i]);
            silu_bad += x[i] == x[i] && memcmp(&s[i], &want, 4) != 0;
        }
    }
    CHECK_INT(sig_bad, 0);
    CHECK_INT(silu_bad, 0);
    fill(x, 1003, 7);                               /* no NaN: 0 */
    CHECK_INT(qc_ew_silu(x, s, 1003), 0);
    free(x);
    free(s);
}
