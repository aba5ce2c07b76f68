/* Tensors: a dtype, a shape and a buffer. Dtype codes are ONNX TensorProto.DataType values. */
#ifndef QC_TENSOR_H
#define QC_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "qc_err.h"

#define QC_MAX_DIMS 8

enum {
    QC_UNDEFINED = 0,
    QC_F32 = 1, QC_U8 = 2, QC_I8 = 3, QC_U16 = 4, QC_I16 = 5, QC_I32 = 6, QC_I64 = 7,
    QC_STRING = 8, QC_BOOL = 9, QC_F16 = 10, QC_F64 = 11, QC_U32 = 12, QC_U64 = 13,
    QC_BF16 = 16
};

typedef struct qc_tensor {
    const char *name;               /* borrowed (model arena or caller) */
    int         dtype;              /* QC_F32, QC_I64, ... */
    int         ndim;
    int64_t     dims[QC_MAX_DIMS];
    void       *data;               /* owned by whoever created the tensor */
    size_t      capacity;           /* bytes allocated behind data (executor buffers) */
} qc_tensor;

/* Bytes per element, 0 for dtypes the executor cannot hold (string, undefined). */
size_t      qc_dtype_size(int dtype);
const char *qc_dtype_name(int dtype);
int         qc_dtype_is_executable(int dtype);

int64_t qc_tensor_numel(const qc_tensor *t);
size_t  qc_tensor_nbytes(const qc_tensor *t);
/* "[1,3,224,224]" into buf; returns buf. */
const char *qc_shape_str(const qc_tensor *t, char *buf, size_t n);
int     qc_shape_equal(const qc_tensor *a, const qc_tensor *b);

/* Checked element count: fails on negative dims or int64/size_t overflow. */
int qc_numel_checked(const int64_t *dims, int ndim, int dtype, int64_t *numel, size_t *nbytes);

/* numpy broadcasting of two shapes; QC_ESHAPE if incompatible. */
int qc_broadcast_shape(const int64_t *a, int na, const int64_t *b, int nb,
                       int64_t *out, int *nout);
/* Strides (in elements) of `t` broadcast to `ndim` dims of `out_dims`; 0 where broadcast. */
void qc_broadcast_strides(const int64_t *dims, int nd, const int64_t *out_dims, int ndim,
                          int64_t *strides);

/* Standalone owned tensors (data from malloc). qc_tensor_free frees data only. */
int  qc_tensor_alloc(qc_tensor *t, int dtype, int ndim, const int64_t *dims, qc_err *err);
void qc_tensor_free(qc_tensor *t);
/* NaN/Inf values in the float32 tensors among t[0..n) (other dtypes count 0). */
int64_t qc_tensors_nonfinite(const qc_tensor *t, int n);
/* Value i of a tensor of any integer/float dtype as double / int64 (for shape inputs). */
double  qc_tensor_get_f(const qc_tensor *t, int64_t i);
int64_t qc_tensor_get_i(const qc_tensor *t, int64_t i);
/* Writes v as element i of a buffer of an executable dtype: integers go through int64
 * (saturated; NaN as INT64_MIN) and a C cast, bool is v != 0. */
void    qc_store_f(void *p, int dtype, int64_t i, double v);

float    qc_half_to_float(uint16_t h);
uint16_t qc_float_to_half(float f);
float    qc_bf16_to_float(uint16_t h);

#endif
