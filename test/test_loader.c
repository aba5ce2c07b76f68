/* Loader, writer and planner tests on models built in memory with the generated protobuf
 * code (tests may see Onnx__* types; the library outside src/onnx may not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "onnx.pb-c.h"
#include "qc_exec.h"
#include "qc_model.h"
#include "test.h"

typedef struct mb {                 /* a tiny model builder */
    Onnx__ModelProto        model;
    Onnx__GraphProto        graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__NodeProto         nodes[8], *node_ptrs[8];
    Onnx__TensorProto       inits[8], *init_ptrs[8];
    Onnx__ValueInfoProto    vis[8], *in_ptrs[4], *out_ptrs[4];
    Onnx__TypeProto         types[8];
    Onnx__TypeProto__Tensor ttypes[8];
    Onnx__TensorShapeProto  shapes[8];
    Onnx__TensorShapeProto__Dimension dims[8][4], *dim_ptrs[8][4];
    char                   *node_io[8][2][3];
    int                     n_vi;
} mb;

static void mb_init(mb *b, int64_t opset)
{
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto o = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    memset(b, 0, sizeof *b);
    b->model = m;
    b->graph = g;
    b->opset = o;
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.graph = &b->graph;
    b->graph.name = "g";
    b->graph.node = b->node_ptrs;
    b->graph.initializer = b->init_ptrs;
    b->graph.input = b->in_ptrs;
    b->graph.output = b->out_ptrs;
}

static Onnx__ValueInfoProto *mb_vi(mb *b, char *name, int dtype, int ndim, const int64_t *dims)
{
    int k = b->n_vi++;
    Onnx__ValueInfoProto vi = ONNX__VALUE_INFO_PROTO__INIT;
    Onnx__TypeProto tp = ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
    Onnx__TensorShapeProto sp = ONNX__TENSOR_SHAPE_PROTO__INIT;
    b->vis[k] = vi;
    b->types[k] = tp;
    b->ttypes[k] = tt;
    b->shapes[k] = sp;
    b->vis[k].name = name;
    b->vis[k].type = &b->types[k];
    b->types[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->types[k].tensor_type = &b->ttypes[k];
    b->ttypes[k].has_elem_type = 1;
    b->ttypes[k].elem_type = dtype;
    b->ttypes[k].shape = &b->shapes[k];
    b->shapes[k].n_dim = (size_t)ndim;
    b->shapes[k].dim = b->dim_ptrs[k];
    for (int d = 0; d < ndim; d++) {
        Onnx__TensorShapeProto__Dimension dm = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        b->dims[k][d] = dm;
        if (dims[d] >= 0) {
            b->dims[k][d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            b->dims[k][d].dim_value = dims[d];
        } else {
            b->dims[k][d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            b->dims[k][d].dim_param = "N";
        }
        b->dim_ptrs[k][d] = &b->dims[k][d];
    }
    return &b->vis[k];
}

static void mb_node(mb *b, char *op, char *name, char *in0, char *in1, char *out)
{
    size_t k = b->graph.n_node++;
    Onnx__NodeProto n = ONNX__NODE_PROTO__INIT;
    b->nodes[k] = n;
    b->nodes[k].op_type = op;
    b->nodes[k].name = name;
    b->node_io[k][0][0] = in0;
    b->node_io[k][0][1] = in1;
    b->node_io[k][1][0] = out;
    b->nodes[k].n_input = in1 ? 2 : 1;
    b->nodes[k].input = b->node_io[k][0];
    b->nodes[k].n_output = 1;
    b->nodes[k].output = b->node_io[k][1];
    b->node_ptrs[k] = &b->nodes[k];
}

static Onnx__TensorProto *mb_init_tensor(mb *b, char *name, int dtype, int ndim, int64_t *dims)
{
    size_t k = b->graph.n_initializer++;
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    b->inits[k] = t;
    b->inits[k].name = name;
    b->inits[k].has_data_type = 1;
    b->inits[k].data_type = dtype;
    b->inits[k].n_dims = (size_t)ndim;
    b->inits[k].dims = dims;
    b->init_ptrs[k] = &b->inits[k];
    return &b->inits[k];
}

static int mb_load(mb *b, qc_model **m, const char *dir, qc_err *err)
{
    size_t n = onnx__model_proto__get_packed_size(&b->model);
    uint8_t *buf = malloc(n);
    onnx__model_proto__pack(&b->model, buf);
    int rc = qc_model_load_bytes(m, buf, n, dir, "test.onnx", err);
    free(buf);
    return rc;
}

/* Graph input x and output y, both float [N, 4], then mb_load. */
static int mb_load_xy(mb *b, qc_model **m, qc_err *err)
{
    static const int64_t shp[2] = { -1, 4 };
    b->in_ptrs[0] = mb_vi(b, "x", 1, 2, shp);
    b->out_ptrs[0] = mb_vi(b, "y", 1, 2, shp);
    b->graph.n_input = 1;
    b->graph.n_output = 1;
    return mb_load(b, m, NULL, err);
}

QC_TEST(loader_initializer_encodings)
{
    mb b;
    qc_err err = { 0 };
    qc_model *m = NULL;
    int64_t d3[1] = { 3 };
    uint16_t half[3] = { 0x3c00, 0xc000, 0x3555 };      /* 1, -2, 0.333251953125 */
    uint16_t bf[3] = { 0x3f80, 0xc040, 0x0000 };        /* 1, -3, 0 */
    float fl[3] = { 1.5f, -2.5f, 4.0f };
    int64_t i64[3] = { 7, -8, 9 };
    int32_t h32[3] = { 0x3c00, 0x4000, 0x7c00 };        /* typed float16: 1, 2, inf */
    mb_init(&b, 13);
    Onnx__TensorProto *t = mb_init_tensor(&b, "h", 10, 1, d3);
    t->has_raw_data = 1;
    t->raw_data.len = sizeof half;
    t->raw_data.data = (uint8_t *)half;
    t = mb_init_tensor(&b, "bf", 16, 1, d3);
    t->has_raw_data = 1;
    t->raw_data.len = sizeof bf;
    t->raw_data.data = (uint8_t *)bf;
    t = mb_init_tensor(&b, "f", 1, 1, d3);
    t->n_float_data = 3;
    t->float_data = fl;
    t = mb_init_tensor(&b, "i", 7, 1, d3);
    t->n_int64_data = 3;
    t->int64_data = i64;
    t = mb_init_tensor(&b, "h32", 10, 1, d3);
    t->n_int32_data = 3;
    t->int32_data = h32;
    CHECK_OK(mb_load(&b, &m, NULL, &err));
    if (!m)
        return;
    const qc_tensor *h = qc_model_init(m, "h"), *bft = qc_model_init(m, "bf");
    const qc_tensor *f = qc_model_init(m, "f"), *i = qc_model_init(m, "i");
    const qc_tensor *h2 = qc_model_init(m, "h32");
    CHECK(h && bft && f && i && h2);
    if (h && bft && f && i && h2) {
        CHECK_INT(h->dtype, QC_F32);
        CHECK_NEAR(((float *)h->data)[0], 1.0, 0, 0);
        CHECK_NEAR(((float *)h->data)[1], -2.0, 0, 0);
        CHECK_NEAR(((float *)h->data)[2], 0.333251953125, 0, 0);
        CHECK_NEAR(((float *)bft->data)[1], -3.0, 0, 0);
        CHECK_NEAR(((float *)f->data)[2], 4.0, 0, 0);
        CHECK_INT(i->dtype, QC_I64);
        CHECK_INT(((int64_t *)i->data)[1], -8);
        CHECK_NEAR(((float *)h2->data)[1], 2.0, 0, 0);
        CHECK(isinf(((float *)h2->data)[2]));
    }
    qc_model_free(m);
}

QC_TEST(loader_bad_raw_length)
{
    mb b;
    qc_err err = { 0 };
    qc_model *m = NULL;
    int64_t d4[1] = { 4 };
    float fl[3] = { 1, 2, 3 };
    mb_init(&b, 13);
    Onnx__TensorProto *t = mb_init_tensor(&b, "w", 1, 1, d4);
    t->has_raw_data = 1;
    t->raw_data.len = sizeof fl;
    t->raw_data.data = (uint8_t *)fl;
    CHECK_INT(mb_load(&b, &m, NULL, &err), QC_EINPUT);
    CHECK(m == NULL);
    CHECK(strstr(err.msg, "initializer 'w'") != NULL);
    CHECK(strstr(err.msg, "12 bytes") != NULL);
}

QC_TEST(loader_malformed_and_truncated)
{
    qc_err err = { 0 };
    qc_model *m = NULL;
    const char junk[] = "this is not a protobuf \xff\xff\xff\xff";
    CHECK_INT(qc_model_load_bytes(&m, junk, sizeof junk, NULL, "junk.onnx", &err), QC_EINPUT);
    CHECK(strstr(err.msg, "junk.onnx") != NULL);
    mb b;
    int64_t d3[1] = { 3 };
    float fl[3] = { 1, 2, 3 };
    mb_init(&b, 13);
    Onnx__TensorProto *t = mb_init_tensor(&b, "w", 1, 1, d3);
    t->n_float_data = 3;
    t->float_data = fl;
    size_t n = onnx__model_proto__get_packed_size(&b.model);
    uint8_t *buf = malloc(n);
    onnx__model_proto__pack(&b.model, buf);
    int truncated_failed = 0;
    for (size_t cut = 1; cut < n; cut++) {
        qc_model *mm = NULL;
        if (qc_model_load_bytes(&mm, buf, cut, NULL, "cut.onnx", &err) != QC_OK)
            truncated_failed++;
        qc_model_free(mm);
    }
    CHECK(truncated_failed > 0);
    free(buf);
    CHECK_INT(qc_model_load(&m, "/nonexistent/model.onnx", &err), QC_EINPUT);
    CHECK(strstr(err.msg, "/nonexistent/model.onnx") != NULL);
    CHECK_INT(qc_model_load(&m, "/tmp", &err), QC_EINPUT);
}

static char *make_tmpdir(void)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/qc-test-XXXXXX");
    return mkdtemp(dir);
}

QC_TEST(loader_external_data)
{
    qc_err err = { 0 };
    qc_model *m = NULL;
    char *dir = make_tmpdir(), path[256];
    float vals[6] = { 9, 9, 1.25f, -2.5f, 3.75f, 9 };
    snprintf(path, sizeof path, "%s/w.bin", dir);
    FILE *f = fopen(path, "wb");
    fwrite(vals, 1, sizeof vals, f);
    fclose(f);
    mb b;
    int64_t d3[1] = { 3 };
    Onnx__StringStringEntryProto e[3], *ep[3];
    char *keys[3] = { "location", "offset", "length" };
    char *good[3] = { "w.bin", "8", "12" };
    for (int i = 0; i < 3; i++) {
        Onnx__StringStringEntryProto init = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        e[i] = init;
        e[i].key = keys[i];
        e[i].value = good[i];
        ep[i] = &e[i];
    }
    mb_init(&b, 13);
    Onnx__TensorProto *t = mb_init_tensor(&b, "w", 1, 1, d3);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    t->n_external_data = 3;
    t->external_data = ep;
    CHECK_OK(mb_load(&b, &m, dir, &err));
    if (m) {
        const float *w = qc_model_init(m, "w")->data;
        CHECK_NEAR(w[0], 1.25, 0, 0);
        CHECK_NEAR(w[2], 3.75, 0, 0);
        /* save inline, forced external, and reload both */
        char out[256];
        snprintf(out, sizeof out, "%s/inline.onnx", dir);
        CHECK_OK(qc_model_save(m, out, 0, &err));
        qc_model *m2 = NULL;
        CHECK_OK(qc_model_load(&m2, out, &err));
        if (m2)
            CHECK_NEAR(((float *)qc_model_init(m2, "w")->data)[1], -2.5, 0, 0);
        qc_model_free(m2);
        snprintf(out, sizeof out, "%s/ext.onnx", dir);
        CHECK_OK(qc_model_save(m, out, 4, &err));
        m2 = NULL;
        CHECK_OK(qc_model_load(&m2, out, &err));
        if (m2)
            CHECK_NEAR(((float *)qc_model_init(m2, "w")->data)[2], 3.75, 0, 0);
        qc_model_free(m2);
        snprintf(out, sizeof out, "%s/ext.onnx.data", dir);
        CHECK(access(out, F_OK) == 0);
        unlink(out);
        snprintf(out, sizeof out, "%s/ext.onnx", dir);
        unlink(out);
        snprintf(out, sizeof out, "%s/inline.onnx", dir);
        unlink(out);
    }
    qc_model_free(m);
    /* escaping paths and bad lengths are refused */
    const char *bad_loc[] = { "../w.bin", "/etc/passwd", "a/../../w.bin" };
    for (int i = 0; i < 3; i++) {
        e[0].value = (char *)bad_loc[i];
        m = NULL;
        CHECK_INT(mb_load(&b, &m, dir, &err), QC_EINPUT);
        CHECK(strstr(err.msg, "leaves the model's folder") != NULL);
    }
    e[0].value = "w.bin";
    e[2].value = "16";
    CHECK_INT(mb_load(&b, &m, dir, &err), QC_EINPUT);
    e[2].value = "12";
    e[1].value = "20";
    CHECK_INT(mb_load(&b, &m, dir, &err), QC_EINPUT);
    CHECK(strstr(err.msg, "needs 12") != NULL);
    unlink(path);
    rmdir(dir);
}

/* qc_model_producer / qc_model_init / qc_model_n_readers answer from an index built at load:
 * the same answers as the linear search a hand-built model (no index) gets, for every name
 * and a missing one. */
QC_TEST(loader_name_lookups_indexed)
{
    qc_err err = { 0 };
    qc_model *m = NULL;
    mb b;
    int64_t d1[1] = { 1 };
    float one = 1.0f, two = 2.0f;
    mb_init(&b, 13);
    mb_node(&b, "Add", "add", "r1", "c1", "s");
    mb_node(&b, "Mul", "mul", "s", "c2", "y");
    mb_node(&b, "Relu", "relu1", "x", NULL, "r1");
    mb_node(&b, "Mul", "sq", "x", "x", "x2");           /* reads x twice */
    Onnx__TensorProto *t = mb_init_tensor(&b, "c1", 1, 1, d1);
    t->n_float_data = 1;
    t->float_data = &one;
    t = mb_init_tensor(&b, "c2", 1, 1, d1);
    t->n_float_data = 1;
    t->float_data = &two;
    CHECK_OK(mb_load_xy(&b, &m, &err));
    if (!m)
        return;
    qc_model plain = *m;
    plain.priv = NULL;                  /* the linear search */
    const char *names[] = { "x", "r1", "s", "y", "c1", "c2", "missing", "" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        CHECK_INT(qc_model_producer(m, names[i]), qc_model_producer(&plain, names[i]));
        CHECK(qc_model_init(m, names[i]) == qc_model_init(&plain, names[i]));
        CHECK_INT(qc_model_n_readers(m, names[i]), qc_model_n_readers(&plain, names[i]));
        for (int r = -1; r <= qc_model_n_readers(&plain, names[i]) + 1; r++)
            CHECK_INT(qc_model_reader(m, names[i], r), qc_model_reader(&plain, names[i], r));
    }
    /* readers in file order, once per input slot */
    CHECK_INT(qc_model_n_readers(m, "x"), 3);
    CHECK_INT(qc_model_reader(m, "x", 0), 2);
    CHECK_INT(qc_model_reader(m, "x", 1), 3);
    CHECK_INT(qc_model_reader(m, "x", 2), 3);
    CHECK_INT(qc_model_reader(m, "x", 3), -1);
    CHECK_INT(qc_model_reader(m, "s", 0), 1);
    CHECK_INT(qc_model_reader(m, "y", 0), -1);
    CHECK_INT(qc_model_n_readers(m, "s"), 1);
    CHECK_INT(qc_model_n_readers(m, "y"), 0);
    CHECK_INT(qc_model_producer(m, "r1"), 2);
    CHECK_INT(qc_model_producer(m, "y"), 1);
    CHECK_INT(qc_model_producer(m, "c1"), -1);
    CHECK(qc_model_init(m, "c2") == &m->inits[1]);
    CHECK(qc_model_init(m, "s") == NULL);
    qc_model_free(m);
}

/* Symbolic dims: one name binds one value across the inputs (the error names both dims);
 * "?" (Paddle2ONNX's unknown, several to an input) binds nothing. */
QC_TEST(exec_symbolic_dims_bind_by_name)
{
    static const int64_t dyn[2] = { -1, -1 };
    float in[8] = { 0 };
    qc_tensor t = { .dtype = QC_F32, .ndim = 2, .dims = { 2, 4 }, .data = in };
    for (int anon = 0; anon < 2; anon++) {
        qc_err err = { 0 };
        qc_model *m = NULL;
        qc_exec *x = NULL;
        mb b;
        mb_init(&b, 13);
        mb_node(&b, "Relu", "relu", "x", NULL, "y");
        b.in_ptrs[0] = mb_vi(&b, "x", 1, 2, dyn);         /* [N, N] */
        b.out_ptrs[0] = mb_vi(&b, "y", 1, 2, dyn);
        if (anon)
            b.dims[0][0].dim_param = b.dims[0][1].dim_param = "?";
        b.graph.n_input = 1;
        b.graph.n_output = 1;
        CHECK_OK(mb_load(&b, &m, NULL, &err));
        if (m)
            CHECK_OK(qc_exec_new(&x, m, NULL, &err));
        if (x && anon) {
            CHECK_OK(qc_exec_run(x, &t, 1, &err));
        } else if (x) {
            CHECK_INT(qc_exec_run(x, &t, 1, &err), QC_EINPUT);
            CHECK(strstr(err.msg, "input 'x': dim 1 ('N') is 4, but dim 0 of input 'x' has the "
                          "same name and is 2") != NULL);
            t.dims[1] = 2;
            CHECK_OK(qc_exec_run(x, &t, 1, &err));          /* [2, 2] agrees */
            t.dims[1] = 4;
        }
        qc_exec_free(x);
        qc_model_free(m);
    }
}

QC_TEST(exec_plan_order_liveness_and_errors)
{
    qc_err err = { 0 };
    qc_model *m = NULL;
    qc_exec *x = NULL;
    mb b;
    int64_t shp[2] = { -1, 4 };
    mb_init(&b, 13);
    /* nodes deliberately out of order: y = relu(relu(x) + x) */
    mb_node(&b, "Add", "add", "r1", "x", "s");
    mb_node(&b, "Relu", "relu2", "s", NULL, "y");
    mb_node(&b, "Relu", "relu1", "x", NULL, "r1");
    CHECK_OK(mb_load_xy(&b, &m, &err));
    if (!m)
        return;
    CHECK_OK(qc_exec_new(&x, m, NULL, &err));
    if (x) {
        float in[8] = { -1, 2, -3, 4, 5, -6, 7, -8 };
        qc_tensor t = { .dtype = QC_F32, .ndim = 2, .dims = { 2, 4 }, .data = in };
        CHECK_OK(qc_exec_run(x, &t, 1, &err));
        const qc_tensor *y = qc_exec_output(x, 0);
        CHECK(y != NULL);
        if (y) {
            CHECK_NEAR(((float *)y->data)[0], 0, 0, 0);      /* relu(0 + -1) */
            CHECK_NEAR(((float *)y->data)[1], 4, 0, 0);
            CHECK_NEAR(((float *)y->data)[4], 10, 0, 0);
        }
        /* symbolic batch binds to whatever comes */
        t.dims[0] = 1;
        CHECK_OK(qc_exec_run(x, &t, 1, &err));
        CHECK_INT(qc_exec_output(x, 0)->dims[0], 1);
        CHECK_INT(qc_exec_runs(x), 2);
        /* wrong static dim and wrong dtype name the input */
        t.dims[1] = 8;
        t.dims[0] = 1;
        CHECK_INT(qc_exec_run(x, &t, 1, &err), QC_EINPUT);
        CHECK(strstr(err.msg, "input 'x'") != NULL);
        t.dims[1] = 4;
        t.dtype = QC_I64;
        CHECK_INT(qc_exec_run(x, &t, 1, &err), QC_EINPUT);
        /* intermediates are released: peak is at most ~3 live [2,4] tensors (plus rounding) */
        CHECK(qc_exec_peak_bytes(x) <= 4 * 64);
    }
    qc_exec_free(x);
    qc_model_free(m);
    /* an unknown op names type, node and opset */
    mb_init(&b, 13);
    mb_node(&b, "FancyOp", "fancy1", "x", NULL, "y");
    b.in_ptrs[0] = mb_vi(&b, "x", 1, 2, shp);
    b.out_ptrs[0] = mb_vi(&b, "y", 1, 2, shp);
    b.graph.n_input = 1;
    b.graph.n_output = 1;
    CHECK_OK(mb_load(&b, &m, NULL, &err));
    if (m) {
        CHECK_INT(qc_exec_new(&x, m, NULL, &err), QC_EUNSUPPORTED);
        CHECK(strstr(err.msg, "FancyOp") && strstr(err.msg, "fancy1") &&
              strstr(err.msg, "opset 13"));
        qc_model_free(m);
    }
    /* a cycle and a dangling input are errors, not hangs */
    mb_init(&b, 13);
    mb_node(&b, "Relu", "a", "q", NULL, "p");
    mb_node(&b, "Relu", "b", "p", NULL, "q");
    b.out_ptrs[0] = mb_vi(&b, "q", 1, 2, shp);
    b.graph.n_output = 1;
    CHECK_OK(mb_load(&b, &m, NULL, &err));
    if (m) {
        CHECK_INT(qc_exec_new(&x, m, NULL, &err), QC_EINPUT);
        CHECK(strstr(err.msg, "cycle") != NULL);
        qc_model_free(m);
    }
    mb_init(&b, 13);
    mb_node(&b, "Relu", "a", "nowhere", NULL, "p");
    b.out_ptrs[0] = mb_vi(&b, "p", 1, 2, shp);
    b.graph.n_output = 1;
    CHECK_OK(mb_load(&b, &m, NULL, &err));
    if (m) {
        CHECK_INT(qc_exec_new(&x, m, NULL, &err), QC_EINPUT);
        CHECK(strstr(err.msg, "'nowhere'") != NULL);
        qc_model_free(m);
    }
}
