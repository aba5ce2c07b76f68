/* Private to src/onnx: the protobuf side of a qc_model. */
#ifndef QC_ONNX_PRIV_H
#define QC_ONNX_PRIV_H

#include "onnx.pb-c.h"
#include "qc_model.h"
#include "arena.h"
#include "strmap.h"

/* Files larger than this are refused before reading (protobuf cannot hold more anyway). */
#define QC_MAX_MODEL_BYTES ((size_t)2 << 30)
#define QC_MAX_NODES       (1 << 22)
#define QC_MAX_INITS       (1 << 22)

typedef struct qc_model_priv {
    qc_arena           arena;
    Onnx__ModelProto  *proto;       /* owned: protobuf_c unpack result */
    /* name -> first producing node / initializer / the node inputs naming it, built
     * once the model is complete, so qc_model_producer, qc_model_init and qc_model_n_readers
     * answer in O(1) on models of any size */
    qc_strmap          producer, init, readers;
    int               *rstart, *rlist;  /* readers: name id -> nodes [rstart[id], rstart[id+1]) */
    int                indexed;
} qc_model_priv;

/* TensorProto -> tensor in the arena (or malloc when arena is NULL). Converts F16/BF16/F64 to
 * F32; reads external data relative to dir (NULL forbids it). `what` names the source. */
int qc_onnx_tensor_convert(const Onnx__TensorProto *tp, qc_tensor *t, qc_arena *arena,
                           const char *dir, const char *what, qc_err *err);
/* Reads an external-data reference (location, offset, length) into dst; with dst NULL it only
 * validates the location, the file and the byte range. */
int qc_onnx_extdata_read(const Onnx__TensorProto *tp, const char *dir, void *dst, size_t nbytes,
                         const char *what, qc_err *err);
int qc_onnx_is_external(const Onnx__TensorProto *tp);

#endif
