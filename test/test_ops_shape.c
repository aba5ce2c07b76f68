/* Data-movement kernels (ops_shape.c, ops_index.c, ops_resize.c) driven directly through their
 * qc_op_def, with run(r = NULL). Expected values are hand-derived from the ONNX spec or come
 * from naive reference loops written here; the ONNX backend node tests cover the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "test.h"

#define MAX_IO 8

typedef struct op_case {
    const char *op;
    int64_t     opset;
    qc_attr     attrs[8];
    int         n_attrs;
    qc_tensor  *in[MAX_IO];
    int         n_in;
    qc_tensor   out[MAX_IO];
    int         n_out;
} op_case;

static qc_attr attr_i(const char *name, int64_t v)
{
    qc_attr a = { .name = name, .type = QC_ATTR_INT, .i = v };
    return a;
}

static qc_attr attr_f(const char *name, float v)
{
    qc_attr a = { .name = name, .type = QC_ATTR_FLOAT, .f = v };
    return a;
}

static qc_attr attr_s(const char *name, const char *v)
{
    qc_attr a = { .name = name, .type = QC_ATTR_STRING, .s = v };
    return a;
}

static qc_attr attr_ints(const char *name, int64_t *v, int64_t n)
{
    qc_attr a = { .name = name, .type = QC_ATTR_INTS, .n = n, .ints = v };
    return a;
}

/* plan-time prepare, infer, allocate, run: what the executor does for one node */
static int run_case(op_case *c, qc_err *err)
{
    static const char *names[MAX_IO] = { "a", "b", "c", "d", "e", "f", "g", "h" };
    const qc_op_def *def = qc_op_find("", c->op, c->opset);
    qc_tensor *outs[MAX_IO];
    if (!def)
        return qc_errf(err, QC_EUNSUPPORTED, "no kernel for %s", c->op);
    qc_node node = { .name = "t", .op_type = c->op, .domain = "", .n_inputs = c->n_in,
                     .n_outputs = c->n_out, .n_attrs = c->n_attrs, .inputs = names,
                     .outputs = names, .attrs = c->attrs };
    for (int i = 0; i < c->n_out; i++) {
        memset(&c->out[i], 0, sizeof c->out[i]);
        outs[i] = &c->out[i];
    }
    qc_knode kn = { .node = &node, .opset = c->opset, .n_in = c->n_in, .n_out = c->n_out,
                    .in = c->in, .out = outs };
    int rc = def->prepare ? def->prepare(&kn, err) : QC_OK;
    if (rc == QC_OK)
        rc = def->infer(&kn, err);
    for (int i = 0; rc == QC_OK && i < c->n_out; i++)
        rc = qc_tensor_alloc(&c->out[i], c->out[i].dtype, c->out[i].ndim, c->out[i].dims, err);
    if (rc == QC_OK)
        rc = def->run(&kn, NULL, err);
    return rc;
}

static void free_case(op_case *c)
{
    for (int i = 0; i < c->n_out; i++)
        qc_tensor_free(&c->out[i]);
}

static qc_tensor mk(int dtype, int ndim, const int64_t *dims)
{
    qc_tensor t;
    qc_err err;
    memset(&t, 0, sizeof t);
    if (qc_tensor_alloc(&t, dtype, ndim, dims, &err) != QC_OK)
        abort();
    return t;
}

static qc_tensor mk_i64(int n, const int64_t *v)
{
    int64_t d = n;
    qc_tensor t = mk(QC_I64, 1, &d);
    memcpy(t.data, v, (size_t)n * sizeof *v);
    return t;
}

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static void fill_random(qc_tensor *t)
{
    unsigned char *p = t->data;
    for (size_t i = 0; i < qc_tensor_nbytes(t); i++)
        p[i] = (unsigned char)rnd();
    if (t->dtype == QC_F32)
        for (int64_t i = 0; i < qc_tensor_numel(t); i++)
            ((float *)t->data)[i] = (float)(rnd() % 2001) / 100.0f - 10.0f;
}

/* Every permutation of a 4-D int8 and a 2-D int16 transpose against an index-by-index loop. */
QC_TEST(shape_transpose_vs_naive)
{
    qc_err err;
    int64_t dims[4] = { 2, 3, 5, 7 }, perm[4];
    qc_tensor x = mk(QC_I8, 4, dims);
    fill_random(&x);
    for (int p = 0; p < 24; p++) {
        int avail[4] = { 0, 1, 2, 3 }, k = p;
        for (int i = 0; i < 4; i++) {     /* p-th permutation in factorial numbering */
            int f = 1;
            for (int j = 1; j < 4 - i; j++)
                f *= j;
            int pick = k / f, seen = -1;
            k %= f;
            for (int j = 0; j < 4; j++)
                if (avail[j] >= 0 && ++seen == pick) {
                    perm[i] = avail[j];
                    avail[j] = -1;
                    break;
                }
        }
        op_case c = { .op = "Transpose", .opset = 13, .n_in = 1, .n_out = 1, .n_attrs = 1 };
        c.attrs[0] = attr_ints("perm", perm, 4);
        c.in[0] = &x;
        CHECK_OK(run_case(&c, &err));
        const int8_t *in = x.data, *out = c.out[0].data;
        int64_t idx[4], bad = 0;
        for (idx[0] = 0; idx[0] < dims[0]; idx[0]++)
            for (idx[1] = 0; idx[1] < dims[1]; idx[1]++)
                for (idx[2] = 0; idx[2] < dims[2]; idx[2]++)
                    for (idx[3] = 0; idx[3] < dims[3]; idx[3]++) {
                        int64_t src = ((idx[0] * 3 + idx[1]) * 5 + idx[2]) * 7 + idx[3], dst = 0;
                        for (int i = 0; i < 4; i++)
                            dst = dst * dims[perm[i]] + idx[perm[i]];
                        bad += out[dst] != in[src];
                    }
        CHECK_INT(bad, 0);
        free_case(&c);
    }
    qc_tensor_free(&x);

    int64_t d2[2] = { 67, 130 };
    qc_tensor m = mk(QC_I16, 2, d2);
    fill_random(&m);
    op_case c = { .op = "Transpose", .opset = 13, .n_in = 1, .n_out = 1, .in = { &m } };
    CHECK_OK(run_case(&c, &err));
    CHECK_INT(c.out[0].dims[0], 130);
    int64_t bad = 0;
    for (int64_t i = 0; i < 67; i++)
        for (int64_t j = 0; j < 130; j++)
            bad += ((int16_t *)c.out[0].data)[j * 67 + i] != ((int16_t *)m.data)[i * 130 + j];
    CHECK_INT(bad, 0);
    free_case(&c);
    qc_tensor_free(&m);
}

QC_TEST(shape_reshape_zero_and_infer)
{
    qc_err err;
    int64_t dims[3] = { 2, 3, 4 }, s1[2] = { 0, -1 }, s2[3] = { 4, 0, 6 };
    qc_tensor x = mk(QC_I32, 3, dims), shp = mk_i64(2, s1), bad = mk_i64(3, s2);
    op_case c = { .op = "Reshape", .opset = 13, .n_in = 2, .n_out = 1, .in = { &x, &shp } };
    fill_random(&x);
    CHECK_OK(run_case(&c, &err));
    CHECK_INT(c.out[0].ndim, 2);
    CHECK_INT(c.out[0].dims[0], 2);
    CHECK_INT(c.out[0].dims[1], 12);
    CHECK(memcmp(c.out[0].data, x.data, qc_tensor_nbytes(&x)) == 0);
    free_case(&c);
    /* 4 x 3 x 6 = 72 elements from 24: a shape error that names the node */
    op_case e = { .op = "Reshape", .opset = 13, .n_in = 2, .n_out = 1, .in = { &x, &bad } };
    CHECK_INT(run_case(&e, &err), QC_ESHAPE);
    CHECK(strstr(err.msg, "node 't' (Reshape)") != NULL);
    free_case(&e);
    qc_tensor_free(&x);
    qc_tensor_free(&shp);
    qc_tensor_free(&bad);
}

QC_TEST(shape_concat_split_roundtrip)
{
    qc_err err;
    int64_t da[3] = { 2, 3, 4 }, db[3] = { 2, 0, 4 }, dc[3] = { 2, 5, 4 };
    qc_tensor a = mk(QC_I64, 3, da), b = mk(QC_I64, 3, db), cc = mk(QC_I64, 3, dc);
    fill_random(&a);
    fill_random(&cc);
    op_case c = { .op = "Concat", .opset = 13, .n_in = 3, .n_out = 1, .n_attrs = 1,
                  .in = { &a, &b, &cc } };
    c.attrs[0] = attr_i("axis", -2);
    CHECK_OK(run_case(&c, &err));
    CHECK_INT(c.out[0].dims[1], 8);
    int64_t sizes[2] = { 3, 5 };
    qc_tensor sp = mk_i64(2, sizes);
    op_case s = { .op = "Split", .opset = 13, .n_in = 2, .n_out = 2, .n_attrs = 1,
                  .in = { &c.out[0], &sp } };
    s.attrs[0] = attr_i("axis", 1);
    CHECK_OK(run_case(&s, &err));
    CHECK(memcmp(s.out[0].data, a.data, qc_tensor_nbytes(&a)) == 0);
    CHECK(memcmp(s.out[1].data, cc.data, qc_tensor_nbytes(&cc)) == 0);
    free_case(&s);
    /* opset 18 num_outputs: 7 rows into 3 parts of 3, 3, 1 */
    int64_t d7[1] = { 7 };
    qc_tensor seven = mk(QC_F32, 1, d7);
    op_case u = { .op = "Split", .opset = 18, .n_in = 1, .n_out = 3, .n_attrs = 1,
                  .in = { &seven } };
    u.attrs[0] = attr_i("num_outputs", 3);
    CHECK_OK(run_case(&u, &err));
    CHECK_INT(u.out[0].dims[0], 3);
    CHECK_INT(u.out[2].dims[0], 1);
    free_case(&u);
    free_case(&c);
    qc_tensor_free(&a);
    qc_tensor_free(&b);
    qc_tensor_free(&cc);
    qc_tensor_free(&sp);
    qc_tensor_free(&seven);
}

/* Copies of 256 KiB and more run on the thread pool in blocks (ops_shape.c PAR_COPY_MIN):
 * YOLOv5's focus slices, a channel Concat and Split of 1x48x52x52-sized parts, a Concat whose
 * parts repeat per outer index, a big 4-D transpose and one of 3001 small planes, each
 * against a naive loop. */
QC_TEST(shape_big_copies_vs_naive)
{
    qc_err err;
    int64_t dx[4] = { 1, 3, 208, 402 };
    qc_tensor x = mk(QC_F32, 4, dx);
    fill_random(&x);
    const float *xv = x.data;
    /* x[:, :, 1::2, ::2] */
    int64_t st[2] = { 1, 0 }, en[2] = { INT64_MAX, INT64_MAX }, ax[2] = { 2, 3 }, sp[2] = { 2, 2 };
    qc_tensor ts = mk_i64(2, st), te = mk_i64(2, en), ta = mk_i64(2, ax), tp = mk_i64(2, sp);
    op_case sl = { .op = "Slice", .opset = 13, .n_in = 5, .n_out = 1,
                   .in = { &x, &ts, &te, &ta, &tp } };
    CHECK_OK(run_case(&sl, &err));
    CHECK_INT(sl.out[0].dims[2], 104);
    CHECK_INT(sl.out[0].dims[3], 201);
    int64_t bad = 0;
    const float *sv = sl.out[0].data;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t h = 0; h < 104; h++)
            for (int64_t w = 0; w < 201; w++)
                bad += sv[(c * 104 + h) * 201 + w] != xv[(c * 208 + 2 * h + 1) * 402 + 2 * w];
    CHECK_INT(bad, 0);
    /* Concat along channels of three parts, then Split back; and along axis 2 (outer 3) */
    for (int axis = 1; axis <= 2; axis++) {
        int64_t d0[4] = { 1, 3, 208, 402 }, d1[4] = { 1, 3, 208, 402 };
        d0[axis] = axis == 1 ? 1 : 50;
        d1[axis] = axis == 1 ? 2 : 158;
        qc_tensor a = mk(QC_F32, 4, d0), b = mk(QC_F32, 4, d1);
        fill_random(&a);
        fill_random(&b);
        op_case cc = { .op = "Concat", .opset = 13, .n_in = 3, .n_out = 1, .n_attrs = 1,
                       .in = { &a, &x, &b } };
        cc.attrs[0] = attr_i("axis", axis);
        CHECK_OK(run_case(&cc, &err));
        int64_t sizes[3] = { d0[axis], dx[axis], d1[axis] };
        qc_tensor spl = mk_i64(3, sizes);
        op_case sp3 = { .op = "Split", .opset = 13, .n_in = 2, .n_out = 3, .n_attrs = 1,
                        .in = { &cc.out[0], &spl } };
        sp3.attrs[0] = attr_i("axis", axis);
        CHECK_OK(run_case(&sp3, &err));
        CHECK(memcmp(sp3.out[0].data, a.data, qc_tensor_nbytes(&a)) == 0);
        CHECK(memcmp(sp3.out[1].data, x.data, qc_tensor_nbytes(&x)) == 0);
        CHECK(memcmp(sp3.out[2].data, b.data, qc_tensor_nbytes(&b)) == 0);
        /* the concatenation itself, element by element */
        int64_t inner = 402 * (axis == 1 ? 208 : 1), outer = axis == 1 ? 1 : 3, len = 0;
        const qc_tensor *parts[3] = { &a, &x, &b };
        const float *cv = cc.out[0].data;
        bad = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int k = 0; k < 3; k++) {
                int64_t n = parts[k]->dims[axis] * inner;
                const float *pv = (const float *)parts[k]->data + o * n;
                for (int64_t i = 0; i < n; i++)
                    bad += *cv++ != pv[i];
                len += n;
            }
        CHECK_INT(bad, 0);
        CHECK_INT(len, qc_tensor_numel(&cc.out[0]));
        free_case(&sp3);
        free_case(&cc);
        qc_tensor_free(&spl);
        qc_tensor_free(&a);
        qc_tensor_free(&b);
    }
    /* Transpose [1, 3, 208, 402] -> [402, 1, 208, 3] */
    int64_t perm[4] = { 3, 0, 2, 1 };
    op_case tr = { .op = "Transpose", .opset = 13, .n_in = 1, .n_out = 1, .n_attrs = 1,
                   .in = { &x } };
    tr.attrs[0] = attr_ints("perm", perm, 4);
    CHECK_OK(run_case(&tr, &err));
    const float *tv = tr.out[0].data;
    bad = 0;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t h = 0; h < 208; h++)
            for (int64_t w = 0; w < 402; w++)
                bad += tv[(w * 208 + h) * 3 + c] != xv[(c * 208 + h) * 402 + w];
    CHECK_INT(bad, 0);
    free_case(&tr);
    /* many small planes: work items of rows start inside a plane and cross into the next */
    int64_t ds[3] = { 3001, 8, 4 }, perm2[3] = { 0, 2, 1 };
    qc_tensor sm = mk(QC_F32, 3, ds);
    fill_random(&sm);
    op_case t2 = { .op = "Transpose", .opset = 13, .n_in = 1, .n_out = 1, .n_attrs = 1,
                   .in = { &sm } };
    t2.attrs[0] = attr_ints("perm", perm2, 3);
    CHECK_OK(run_case(&t2, &err));
    const float *s2 = sm.data, *o2 = t2.out[0].data;
    bad = 0;
    for (int64_t p = 0; p < 3001; p++)
        for (int64_t i = 0; i < 8; i++)
            for (int64_t j = 0; j < 4; j++)
                bad += o2[(p * 4 + j) * 8 + i] != s2[(p * 8 + i) * 4 + j];
    CHECK_INT(bad, 0);
    free_case(&t2);
    qc_tensor_free(&sm);
    free_case(&sl);
    qc_tensor_free(&x);
    qc_tensor_free(&ts);
    qc_tensor_free(&te);
    qc_tensor_free(&ta);
    qc_tensor_free(&tp);
}

QC_TEST(shape_slice_negative_steps_and_clamps)
{
    qc_err err;
    int64_t d[1] = { 10 };
    qc_tensor x = mk(QC_F32, 1, d);
    for (int i = 0; i < 10; i++)
        ((float *)x.data)[i] = (float)i;
    /* x[INT64_MAX:-INT64_MAX-ish:-3] = 9, 6, 3, 0 */
    int64_t st[1] = { INT64_MAX }, en[1] = { INT64_MIN }, ax[1] = { 0 }, sp[1] = { -3 };
    qc_tensor ts = mk_i64(1, st), te = mk_i64(1, en), ta = mk_i64(1, ax), tp = mk_i64(1, sp);
    op_case c = { .op = "Slice", .opset = 13, .n_in = 5, .n_out = 1,
                  .in = { &x, &ts, &te, &ta, &tp } };
    CHECK_OK(run_case(&c, &err));
    CHECK_INT(c.out[0].dims[0], 4);
    const float *y = c.out[0].data;
    CHECK(y[0] == 9 && y[1] == 6 && y[2] == 3 && y[3] == 0);
    free_case(&c);
    /* opset 1 attributes: x[-4:1000] = 6..9 */
    int64_t a_st[1] = { -4 }, a_en[1] = { 1000 };
    op_case o = { .op = "Slice", .opset = 1, .n_in = 1, .n_out = 1, .n_attrs = 2, .in = { &x } };
    o.attrs[0] = attr_ints("starts", a_st, 1);
    o.attrs[1] = attr_ints("ends", a_en, 1);
    CHECK_OK(run_case(&o, &err));
    CHECK_INT(o.out[0].dims[0], 4);
    CHECK(((float *)o.out[0].data)[0] == 6);
    free_case(&o);
    /* x7[::2] of a 7-element tensor: the vector path must not read past element 6 (ASan) */
    int64_t d7 = 7, s0[1] = { 0 }, two[1] = { 2 };
    qc_tensor x7 = mk(QC_F32, 1, &d7), t0 = mk_i64(1, s0), t2 = mk_i64(1, two);
    for (int i = 0; i < 7; i++)
        ((float *)x7.data)[i] = (float)i;
    op_case h = { .op = "Slice", .opset = 13, .n_in = 5, .n_out = 1,
                  .in = { &x7, &t0, &ts, &ta, &t2 } };
    CHECK_OK(run_case(&h, &err));
    CHECK_INT(h.out[0].dims[0], 4);
    CHECK(((float *)h.out[0].data)[3] == 6);
    free_case(&h);
    qc_tensor_free(&x7);
    qc_tensor_free(&t0);
    qc_tensor_free(&t2);
    qc_tensor_free(&x);
    qc_tensor_free(&ts);
    qc_tensor_free(&te);
    qc_tensor_free(&ta);
    qc_tensor_free(&tp);
}

QC_TEST(shape_gather_negative_and_out_of_range)
{
    qc_err err;
    int64_t dd[2] = { 3, 2 }, di[1] = { 3 };
    qc_tensor x = mk(QC_BOOL, 2, dd), ind = mk(QC_I32, 1, di);
    uint8_t xv[6] = { 1, 0, 0, 1, 1, 1 };
    int32_t iv[3] = { -1, 0, 1 };
    memcpy(x.data, xv, 6);
    memcpy(ind.data, iv, sizeof iv);
    op_case c = { .op = "Gather", .opset = 13, .n_in = 2, .n_out = 1, .in = { &x, &ind } };
    CHECK_OK(run_case(&c, &err));
    const uint8_t *y = c.out[0].data;
    CHECK(y[0] == 1 && y[1] == 1 && y[2] == 1 && y[3] == 0 && y[4] == 0 && y[5] == 1);
    free_case(&c);
    ((int32_t *)ind.data)[1] = 3;
    op_case e = { .op = "Gather", .opset = 13, .n_in = 2, .n_out = 1, .in = { &x, &ind } };
    CHECK_INT(run_case(&e, &err), QC_EINPUT);
    free_case(&e);
    qc_tensor_free(&x);
    qc_tensor_free(&ind);
}

/* TopK against a stable selection: ties go to the smaller index, as ONNX specifies. */
QC_TEST(shape_topk_ties_vs_naive)
{
    qc_err err;
    for (int trial = 0; trial < 24; trial++) {
        int64_t d[3] = { 2, 3 + trial % 29, 1 + trial % 3 }, kk = 1 + (int64_t)(rnd() % 3);
        int largest = trial % 2, axis = 1;
        if (kk > d[1])
            kk = d[1];
        qc_tensor x = mk(QC_F32, 3, d), kt = mk_i64(1, &kk);
        for (int64_t i = 0; i < qc_tensor_numel(&x); i++)
            ((float *)x.data)[i] = (float)(rnd() % 4);
        op_case c = { .op = "TopK", .opset = 11, .n_in = 2, .n_out = 2, .n_attrs = 2,
                      .in = { &x, &kt } };
        c.attrs[0] = attr_i("axis", axis);
        c.attrs[1] = attr_i("largest", largest);
        CHECK_OK(run_case(&c, &err));
        int64_t bad = 0, used[64];
        for (int64_t o = 0; o < d[0]; o++)
            for (int64_t in = 0; in < d[2]; in++) {
                memset(used, 0, sizeof used);
                for (int64_t j = 0; j < kk; j++) {   /* naive: best unused, earliest first */
                    int64_t best = -1;
                    for (int64_t i = 0; i < d[1]; i++) {
                        float v = ((float *)x.data)[(o * d[1] + i) * d[2] + in];
                        float b = best < 0 ? 0 : ((float *)x.data)[(o * d[1] + best) * d[2] + in];
                        if (!used[i] && (best < 0 || (largest ? v > b : v < b)))
                            best = i;
                    }
                    used[best] = 1;
                    int64_t at = (o * kk + j) * d[2] + in;
                    bad += ((int64_t *)c.out[1].data)[at] != best;
                    bad += ((float *)c.out[0].data)[at] !=
                           ((float *)x.data)[(o * d[1] + best) * d[2] + in];
                }
            }
        CHECK_INT(bad, 0);
        free_case(&c);
        qc_tensor_free(&x);
        qc_tensor_free(&kt);
    }
}

/* numpy.pad semantics per mode, pads larger than the axis included. */
static int64_t pad_ref(const char *mode, int64_t i, int64_t d)
{
    if (i >= 0 && i < d)
        return i;
    if (!strcmp(mode, "edge"))
        return i < 0 ? 0 : d - 1;
    if (!strcmp(mode, "wrap"))
        return ((i % d) + d) % d;
    if (!strcmp(mode, "reflect")) {
        while (i < 0 || i >= d)
            i = i < 0 ? -i : 2 * (d - 1) - i;
        return i;
    }
    return -1;
}

QC_TEST(shape_pad_modes_vs_naive)
{
    static const char *modes[4] = { "constant", "reflect", "edge", "wrap" };
    qc_err err;
    int64_t d[2] = { 3, 4 }, pads[4] = { 5, -1, 2, 7 };
    qc_tensor x = mk(QC_I32, 2, d), tp = mk_i64(4, pads), cv = mk(QC_I32, 0, NULL);
    fill_random(&x);
    *(int32_t *)cv.data = -77;
    for (int m = 0; m < 4; m++) {
        op_case c = { .op = "Pad", .opset = 19, .n_in = 3, .n_out = 1, .n_attrs = 1,
                      .in = { &x, &tp, &cv } };
        c.attrs[0] = attr_s("mode", modes[m]);
        CHECK_OK(run_case(&c, &err));
        CHECK_INT(c.out[0].dims[0], 10);
        CHECK_INT(c.out[0].dims[1], 10);
        int64_t bad = 0;
        for (int64_t i = 0; i < 10; i++)
            for (int64_t j = 0; j < 10; j++) {
                int64_t si = pad_ref(modes[m], i - 5, 3), sj = pad_ref(modes[m], j + 1, 4);
                int32_t want = si < 0 || sj < 0 ? -77 : ((int32_t *)x.data)[si * 4 + sj];
                bad += ((int32_t *)c.out[0].data)[i * 10 + j] != want;
            }
        CHECK_INT(bad, 0);
        free_case(&c);
    }
    qc_tensor_free(&x);
    qc_tensor_free(&tp);
    qc_tensor_free(&cv);
}

/* YOLO's Resize: nearest x2 (asymmetric, floor) on NCHW goes through the fast path. */
QC_TEST(shape_resize_nearest_x2)
{
    qc_err err;
    int64_t d[4] = { 1, 3, 5, 6 }, d4 = 4;
    float sc[4] = { 1, 1, 2, 2 };
    qc_tensor x = mk(QC_F32, 4, d), s = mk(QC_F32, 1, &d4);
    fill_random(&x);
    memcpy(s.data, sc, sizeof sc);
    op_case c = { .op = "Resize", .opset = 13, .n_in = 3, .n_out = 1, .n_attrs = 3,
                  .in = { &x, NULL, &s } };
    c.attrs[0] = attr_s("mode", "nearest");
    c.attrs[1] = attr_s("coordinate_transformation_mode", "asymmetric");
    c.attrs[2] = attr_s("nearest_mode", "floor");
    CHECK_OK(run_case(&c, &err));
    CHECK_INT(c.out[0].dims[2], 10);
    CHECK_INT(c.out[0].dims[3], 12);
    int64_t bad = 0;
    for (int64_t ch = 0; ch < 3; ch++)
        for (int64_t i = 0; i < 10; i++)
            for (int64_t j = 0; j < 12; j++)
                bad += ((float *)c.out[0].data)[(ch * 10 + i) * 12 + j] !=
                       ((float *)x.data)[(ch * 5 + i / 2) * 6 + j / 2];
    CHECK_INT(bad, 0);
    free_case(&c);
    qc_tensor_free(&x);
    qc_tensor_free(&s);
}

/* The ONNX spec's bilinear half_pixel example: [[1,2],[3,4]] to 4x4. */
QC_TEST(shape_resize_linear_half_pixel)
{
    static const float want[16] = { 1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f,
                                    2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4 };
    qc_err err;
    int64_t d[4] = { 1, 1, 2, 2 }, d4 = 4, sz[4] = { 1, 1, 4, 4 };
    qc_tensor x = mk(QC_F32, 4, d), sizes = mk_i64(4, sz), roi = mk(QC_F32, 1, &d4);
    float xv[4] = { 1, 2, 3, 4 };
    memcpy(x.data, xv, sizeof xv);
    roi.dims[0] = 0;      /* empty roi and scales mean absent */
    op_case c = { .op = "Resize", .opset = 11, .n_in = 4, .n_out = 1, .n_attrs = 1,
                  .in = { &x, &roi, &roi, &sizes } };
    c.attrs[0] = attr_s("mode", "linear");
    CHECK_OK(run_case(&c, &err));
    for (int i = 0; i < 16; i++)
        CHECK_NEAR(((float *)c.out[0].data)[i], want[i], 1e-6, 1e-6);
    free_case(&c);
    qc_tensor_free(&x);
    qc_tensor_free(&sizes);
    qc_tensor_free(&roi);
}

QC_TEST(shape_expand_range_constant)
{
    qc_err err;
    int64_t one = 1, shp[2] = { 2, 3 };
    qc_tensor x = mk(QC_BOOL, 1, &one), ts = mk_i64(2, shp);
    *(uint8_t *)x.data = 1;
    op_case c = { .op = "Expand", .opset = 13, .n_in = 2, .n_out = 1, .in = { &x, &ts } };
    CHECK_OK(run_case(&c, &err));
    CHECK_INT(qc_tensor_numel(&c.out[0]), 6);
    CHECK(((uint8_t *)c.out[0].data)[5] == 1);
    free_case(&c);

    qc_tensor st = mk(QC_I64, 0, NULL), li = mk(QC_I64, 0, NULL), de = mk(QC_I64, 0, NULL);
    *(int64_t *)st.data = 10;
    *(int64_t *)li.data = -7;
    *(int64_t *)de.data = -3;
    op_case r = { .op = "Range", .opset = 11, .n_in = 3, .n_out = 1, .in = { &st, &li, &de } };
    CHECK_OK(run_case(&r, &err));
    CHECK_INT(r.out[0].dims[0], 6);     /* 10 7 4 1 -2 -5 */
    CHECK_INT(((int64_t *)r.out[0].data)[5], -5);
    free_case(&r);

    int64_t vals[3] = { 4, 5, 6 };
    op_case k = { .op = "Constant", .opset = 13, .n_out = 1, .n_attrs = 1 };
    k.attrs[0] = attr_ints("value_ints", vals, 3);
    CHECK_OK(run_case(&k, &err));
    CHECK_INT(k.out[0].dtype, QC_I64);
    CHECK_INT(((int64_t *)k.out[0].data)[2], 6);
    free_case(&k);
    op_case f = { .op = "Constant", .opset = 13, .n_out = 1, .n_attrs = 1 };
    f.attrs[0] = attr_f("value_float", 2.5f);
    CHECK_OK(run_case(&f, &err));
    CHECK_INT(f.out[0].ndim, 0);
    CHECK(*(float *)f.out[0].data == 2.5f);
    free_case(&f);
    qc_tensor_free(&x);
    qc_tensor_free(&ts);
    qc_tensor_free(&st);
    qc_tensor_free(&li);
    qc_tensor_free(&de);
}

QC_TEST(shape_rejects_float16)
{
    qc_err err;
    int64_t d[2] = { 2, 2 };
    qc_tensor x = mk(QC_F16, 2, d);
    op_case c = { .op = "Transpose", .opset = 13, .n_in = 1, .n_out = 1, .in = { &x } };
    CHECK_INT(run_case(&c, &err), QC_EUNSUPPORTED);
    CHECK(strstr(err.msg, "float16") != NULL);
    free_case(&c);
    qc_tensor_free(&x);
}
