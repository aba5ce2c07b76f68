/* NumPy .npy files (format versions 1, 2 and 3; C order, little-endian only).
 * Readable dtypes: <f4, <f8 and <f2 (both converted to float32), <i8 <i4 <i2 |i1,
 * <u8 <u4 <u2 |u1, |b1. Every size in the header is checked against the file length. */
#ifndef QC_NPY_H
#define QC_NPY_H

#include "qc_tensor.h"

typedef struct qc_npy_info {
    int     dtype;                  /* dtype of the tensor qc_npy_read returns */
    int     file_dtype;             /* as stored (QC_F64, QC_F16 differ from dtype) */
    int     ndim;                   /* 0 for a scalar */
    int64_t dims[QC_MAX_DIMS];
    long    data_offset;            /* bytes before the array data */
} qc_npy_info;

/* Reads and validates the header only (including the data size against the file size).
 * QC_EIO if the file cannot be opened/read, QC_EINPUT if it is not a usable .npy; the
 * message starts with `path`. */
int qc_npy_read_header(const char *path, qc_npy_info *info, qc_err *err);

/* Reads the whole array into `t` (overwritten: dtype, shape, a fresh malloc'd buffer; free
 * with qc_tensor_free). t->name is left unchanged. */
int qc_npy_read(const char *path, qc_tensor *t, qc_err *err);

/* Same, but t->data (if not NULL) is a malloc'd buffer of t->capacity bytes owned by t that
 * is reused when large enough and reallocated otherwise. On failure the shape is undefined
 * but t->data/t->capacity stay consistent. */
int qc_npy_read_reuse(const char *path, qc_tensor *t, qc_err *err);

/* Writes `t` (any dtype with a numpy equivalent: not bfloat16/string) atomically: the file
 * appears complete under `path` or not at all. Header version 1 (2 if the shape needs it),
 * padded to 64 bytes. */
int qc_npy_write(const char *path, const qc_tensor *t, qc_err *err);

#endif
