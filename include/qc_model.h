/* The loaded model: graph, float32 weights and the original protobuf (kept so that nothing
 * we do not understand is lost on save). Everything here lives in the model's arena and is
 * freed by qc_model_free(). src/onnx is the only code that sees the protobuf types. */
#ifndef QC_MODEL_H
#define QC_MODEL_H

#include "qc_tensor.h"

enum {
    QC_ATTR_UNDEFINED = 0, QC_ATTR_FLOAT = 1, QC_ATTR_INT = 2, QC_ATTR_STRING = 3,
    QC_ATTR_TENSOR = 4, QC_ATTR_GRAPH = 5, QC_ATTR_FLOATS = 6, QC_ATTR_INTS = 7,
    QC_ATTR_STRINGS = 8, QC_ATTR_TENSORS = 9, QC_ATTR_GRAPHS = 10,
    QC_ATTR_SPARSE_TENSOR = 11, QC_ATTR_SPARSE_TENSORS = 12, QC_ATTR_TYPE_PROTO = 13,
    QC_ATTR_TYPE_PROTOS = 14
};

typedef struct qc_attr {
    const char *name;
    int         type;          /* QC_ATTR_* */
    float       f;
    int64_t     i;
    const char *s;             /* STRING (NUL-terminated copy) */
    int64_t     n;             /* element count of floats/ints/strings */
    float      *floats;
    int64_t    *ints;
    const char **strings;
    qc_tensor  *t;             /* TENSOR, converted like an initializer */
} qc_attr;

typedef struct qc_node {
    const char  *name;         /* never NULL: "" becomes "<op_type>_<index>" */
    const char  *op_type;
    const char  *domain;       /* "" for the default ONNX domain */
    int          n_inputs, n_outputs, n_attrs;
    const char **inputs;       /* "" marks an omitted optional input */
    const char **outputs;
    qc_attr     *attrs;
} qc_node;

typedef struct qc_value_info {
    const char *name;
    int         dtype;
    int         ndim;          /* -1 when the rank is unknown */
    int64_t     dims[QC_MAX_DIMS];   /* -1 for symbolic or unknown dims */
    const char *dim_params[QC_MAX_DIMS];  /* symbolic names or NULL */
} qc_value_info;

typedef struct qc_model {
    const char    *path;       /* as given to qc_model_load */
    const char    *dir;        /* folder external data is resolved against */
    int64_t        opset;      /* default domain ("" / "ai.onnx") */
    int64_t        ir_version;
    int            n_nodes, n_inputs, n_outputs, n_inits;
    qc_node       *nodes;      /* in file order */
    qc_value_info *inputs;     /* graph inputs that are not initializers */
    qc_value_info *outputs;
    qc_tensor     *inits;      /* initializers, as float32 (F16/BF16/F64 converted) or ints */
    void          *priv;       /* protobuf and arena (src/onnx only) */
} qc_model;

/* Loads and validates a model file. On failure *out is NULL and err names the file. */
int  qc_model_load(qc_model **out, const char *path, qc_err *err);
/* Same, from bytes in memory; `dir` resolves external data (may be NULL: none allowed). */
int  qc_model_load_bytes(qc_model **out, const void *bytes, size_t n, const char *dir,
                         const char *name, qc_err *err);
void qc_model_free(qc_model *m);

/* Writes the model atomically (temp file + rename). Tensors whose data came from
 * external files are written inline unless the model would exceed 2 GiB, in which case
 * every initializer larger than 1 KiB goes to "<path>.data". `external_threshold` > 0
 * forces external data above that many bytes (tests); 0 means the 2 GiB rule. */
int  qc_model_save(const qc_model *m, const char *path, size_t external_threshold, qc_err *err);

const qc_attr *qc_attr_find(const qc_node *n, const char *name);
int64_t        qc_attr_int(const qc_node *n, const char *name, int64_t def);
float          qc_attr_float(const qc_node *n, const char *name, float def);
const char    *qc_attr_str(const qc_node *n, const char *name, const char *def);
/* Borrowed INTS/FLOATS; *count receives the length (0 and NULL when absent). */
const int64_t *qc_attr_ints(const qc_node *n, const char *name, int64_t *count);
const float   *qc_attr_floats(const qc_node *n, const char *name, int64_t *count);

/* Name lookups answer from an index built at load (O(1)); models built by hand, without one,
 * get a linear search. */
const qc_tensor *qc_model_init(const qc_model *m, const char *name);
/* Index of the node producing tensor `name`, -1 if none (graph input, initializer). */
int              qc_model_producer(const qc_model *m, const char *name);
/* Node inputs that name `name` (a node reading it twice counts twice; graph outputs do not
 * count). */
int              qc_model_n_readers(const qc_model *m, const char *name);
/* The node of the i-th of those inputs (file order; a node reading it twice comes twice), -1
 * past the end. */
int              qc_model_reader(const qc_model *m, const char *name, int i);

/* Reads a serialized ONNX TensorProto (.pb) into an owned tensor (free with qc_tensor_free;
 * t->name is NULL). F16/BF16/F64 data become float32. If `name` is not NULL it receives a
 * malloc'd copy of the proto's name (free()). Errors name `path`. */
int qc_tensor_load_pb(qc_tensor *t, char **name, const char *path, qc_err *err);
int qc_tensor_parse_pb(qc_tensor *t, char **name, const void *bytes, size_t n,
                       const char *what, qc_err *err);

#endif
