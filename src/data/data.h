/* Private interface between the files of src/data. */
#ifndef QC_DATA_PRIV_H
#define QC_DATA_PRIV_H

#include <stdint.h>
#include "qc_data.h"

enum { QC_SRC_NONE = -1, QC_SRC_NPY = 0, QC_SRC_PB = 1, QC_SRC_IMAGE = 2 };

/* Source kind from a file name's extension (case-insensitive); QC_SRC_NONE if unknown. */
int qc_data_kind(const char *name);

/* Checks a tensor file's dtype and shape against the model input, prepending a batch dim
 * of 1 when the file has one dim less. `file_dtype` is the stored dtype, for messages.
 * Errors name `path` and the input. */
int qc_data_fit(const char *path, const qc_value_info *vi, int dtype, int file_dtype,
                int *ndim, int64_t *dims, qc_err *err);

/* npy_input.c / pb_input.c: load into `slot` (an owned tensor whose buffer is reused),
 * checked with qc_data_fit. */
int qc_data_check_npy(const char *path, const qc_value_info *vi, qc_err *err);
int qc_data_load_npy(const char *path, const qc_value_info *vi, qc_tensor *slot, qc_err *err);
int qc_data_load_pb(const char *path, const qc_value_info *vi, qc_tensor *slot, qc_err *err);

/* image.c: 8-bit RGB pixels, rows packed (stride 3 * width); buffer reused across decodes. */
typedef struct qc_image {
    uint8_t *rgb;
    size_t   capacity;
    int      width, height;
} qc_image;

/* Decodes a PNG or JPEG (recognized by content, not extension). */
int  qc_image_decode(qc_image *img, const char *path, qc_err *err);
void qc_image_free(qc_image *img);

/* preprocess.c: the tensor an image becomes for one model input, decided once at open. */
typedef struct qc_image_geom {
    int dtype;                      /* QC_F32 or QC_U8 */
    int rank;                       /* 3 (no batch dim) or 4 */
    int c, h, w;
} qc_image_geom;

int qc_image_geom_plan(const qc_value_info *vi, const qc_preproc *pp, qc_image_geom *g,
                       qc_err *err);
/* Resizes and normalizes `img` into `slot` (buffer reused when large enough). */
int qc_image_to_tensor(const qc_image *img, const qc_image_geom *g, const qc_preproc *pp,
                       qc_tensor *slot, const char *path, qc_err *err);

/* Makes slot->data hold at least nbytes (contents undefined). */
int qc_data_reserve(qc_tensor *slot, size_t nbytes, const char *path, qc_err *err);

#endif
