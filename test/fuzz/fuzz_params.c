/* libFuzzer target: qc_params_read_json (--params-in) on a quantizer planned once over a tiny
 * model built here (the CLI fixture's conv.onnx: x[1,3,8,8] -> Conv(w 4x3x3x3, pads 1) -> c
 * -> Relu -> y), then qc_quantizer_build with the ranges it applied. */
#include "fuzz_util.h"
#include "onnx.pb-c.h"
#include "qc_params.h"

static qc_model *model;

static Onnx__ValueInfoProto *value_info(const char *name, int64_t c)
{
    static Onnx__TensorShapeProto__Dimension dims[2][4], *dimp[2][4];
    static Onnx__TensorShapeProto shape[2];
    static Onnx__TypeProto__Tensor tt[2];
    static Onnx__TypeProto type[2];
    static Onnx__ValueInfoProto vi[2];
    static int k;
    int64_t d[4] = { 1, c, 8, 8 };
    for (int i = 0; i < 4; i++) {
        onnx__tensor_shape_proto__dimension__init(&dims[k][i]);
        dims[k][i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dims[k][i].dim_value = d[i];
        dimp[k][i] = &dims[k][i];
    }
    onnx__tensor_shape_proto__init(&shape[k]);
    shape[k].n_dim = 4;
    shape[k].dim = dimp[k];
    onnx__type_proto__tensor__init(&tt[k]);
    tt[k].has_elem_type = 1;
    tt[k].elem_type = QC_F32;
    tt[k].shape = &shape[k];
    onnx__type_proto__init(&type[k]);
    type[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type[k].tensor_type = &tt[k];
    onnx__value_info_proto__init(&vi[k]);
    vi[k].name = (char *)name;
    vi[k].type = &type[k];
    return &vi[k++];
}

/* Builds and loads the model once: the quantizer only borrows it. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static float w[4 * 3 * 3 * 3];
    static int64_t wdims[4] = { 4, 3, 3, 3 }, pads[4] = { 1, 1, 1, 1 };
    for (int i = 0; i < 4 * 3 * 3 * 3; i++)
        w[i] = (float)((i * 37) % 17 - 8) / 8.0f;
    Onnx__TensorProto init;
    onnx__tensor_proto__init(&init);
    init.name = "w";
    init.has_data_type = 1;
    init.data_type = QC_F32;
    init.n_dims = 4;
    init.dims = wdims;
    init.has_raw_data = 1;
    init.raw_data.data = (uint8_t *)w;
    init.raw_data.len = sizeof w;
    Onnx__TensorProto *inits[1] = { &init };

    Onnx__AttributeProto pad_attr;
    onnx__attribute_proto__init(&pad_attr);
    pad_attr.name = "pads";
    pad_attr.has_type = 1;
    pad_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    pad_attr.n_ints = 4;
    pad_attr.ints = pads;
    Onnx__AttributeProto *attrs[1] = { &pad_attr };
    char *conv_in[2] = { "x", "w" }, *conv_out[1] = { "c" };
    char *relu_in[1] = { "c" }, *relu_out[1] = { "y" };
    Onnx__NodeProto conv, relu;
    onnx__node_proto__init(&conv);
    conv.name = "conv";
    conv.op_type = "Conv";
    conv.n_input = 2;
    conv.input = conv_in;
    conv.n_output = 1;
    conv.output = conv_out;
    conv.n_attribute = 1;
    conv.attribute = attrs;
    onnx__node_proto__init(&relu);
    relu.name = "relu";
    relu.op_type = "Relu";
    relu.n_input = 1;
    relu.input = relu_in;
    relu.n_output = 1;
    relu.output = relu_out;
    Onnx__NodeProto *nodes[2] = { &conv, &relu };

    Onnx__ValueInfoProto *in[1] = { value_info("x", 3) }, *out[1] = { value_info("y", 4) };
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = "conv";
    g.n_node = 2;
    g.node = nodes;
    g.n_initializer = 1;
    g.initializer = inits;
    g.n_input = 1;
    g.input = in;
    g.n_output = 1;
    g.output = out;
    Onnx__OperatorSetIdProto opset;
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    Onnx__OperatorSetIdProto *opsets[1] = { &opset };
    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    mp.has_ir_version = 1;
    mp.ir_version = 7;
    mp.graph = &g;
    mp.n_opset_import = 1;
    mp.opset_import = opsets;

    size_t n = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(n);
    qc_err err = { 0 };
    if (!buf || onnx__model_proto__pack(&mp, buf) != n ||
        qc_model_load_bytes(&model, buf, n, NULL, "params-fuzz.onnx", &err) != QC_OK) {
        fprintf(stderr, "fuzz: cannot build the params model: %s\n", err.msg);
        abort();
    }
    free(buf);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("params.json", data, size);
    qc_quant_opts o;
    qc_quantizer *q = NULL;
    qc_model *qm = NULL;
    qc_err err = { 0 };
    int n_applied = 0, n_axis = 0;
    qc_quant_opts_default(&o);
    int rc = qc_quantizer_new(&q, model, &o, &err);
    if (rc != QC_OK) {
        fprintf(stderr, "fuzz: qc_quantizer_new: %s\n", err.msg);
        abort();
    }
    rc = qc_params_read_json(q, path, &n_applied, &n_axis, &err);
    fuzz_check_err(rc, &err);
    if (rc == QC_OK && n_applied > 0) {
        rc = qc_quantizer_build(q, &qm, &err);
        fuzz_check_err(rc, &err);
        qc_model_free(qm);
    }
    qc_quantizer_free(q);
    return 0;
}
