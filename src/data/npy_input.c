#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data.h"
#include "qc_npy.h"

/* "[batch,3,320,320]": symbolic dims by name, unknown ones as '?'. */
static const char *model_shape(const qc_value_info *vi, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < vi->ndim && o < n; i++) {
        const char *sep = i ? "," : "";
        if (vi->dims[i] >= 0)
            o += (size_t)snprintf(buf + o, n - o, "%s%lld", sep, (long long)vi->dims[i]);
        else
            o += (size_t)snprintf(buf + o, n - o, "%s%s", sep,
                                  vi->dim_params[i] ? vi->dim_params[i] : "?");
    }
    if (o < n)
        snprintf(buf + o, n - o, "]");
    return buf;
}

int qc_data_fit(const char *path, const qc_value_info *vi, int dtype, int file_dtype,
                int *ndim, int64_t *dims, qc_err *err)
{
    if (vi->dtype != QC_UNDEFINED && dtype != vi->dtype) {
        char hint[64] = "";
        if (qc_dtype_is_executable(vi->dtype))
            snprintf(hint, sizeof hint, " (save it with .astype(np.%s))",
                     vi->dtype == QC_BOOL ? "bool_" : qc_dtype_name(vi->dtype));
        return qc_errf(err, QC_EINPUT, "%s: input '%s' is %s but the file holds %s%s", path,
                       vi->name, qc_dtype_name(vi->dtype), qc_dtype_name(file_dtype), hint);
    }
    if (vi->ndim < 0)
        return QC_OK;
    int nd = *ndim;
    int64_t d[QC_MAX_DIMS];
    memcpy(d, dims, sizeof d);
    if (nd == vi->ndim - 1) {       /* the batch dim was left out */
        memmove(d + 1, d, (size_t)nd * sizeof d[0]);
        d[0] = 1;
        nd++;
    }
    int ok = nd == vi->ndim;
    for (int i = 0; ok && i < nd; i++)
        ok = vi->dims[i] < 0 || vi->dims[i] == d[i];
    if (!ok) {
        char have[160], want[256];
        qc_tensor t = { .ndim = *ndim };
        memcpy(t.dims, dims, sizeof t.dims);
        return qc_errf(err, QC_EINPUT, "%s: input '%s' has shape %s, model expects %s", path,
                       vi->name, qc_shape_str(&t, have, sizeof have),
                       model_shape(vi, want, sizeof want));
    }
    *ndim = nd;
    memcpy(dims, d, sizeof d);
    return QC_OK;
}

int qc_data_check_npy(const char *path, const qc_value_info *vi, qc_err *err)
{
    qc_npy_info info;
    int rc = qc_npy_read_header(path, &info, err);
    if (rc == QC_OK)
        rc = qc_data_fit(path, vi, info.dtype, info.file_dtype, &info.ndim, info.dims, err);
    return rc;
}

int qc_data_load_npy(const char *path, const qc_value_info *vi, qc_tensor *slot, qc_err *err)
{
    int rc = qc_npy_read_reuse(path, slot, err);
    if (rc == QC_OK)
        rc = qc_data_fit(path, vi, slot->dtype, slot->dtype, &slot->ndim, slot->dims, err);
    return rc;
}

int qc_data_reserve(qc_tensor *slot, size_t nbytes, const char *path, qc_err *err)
{
    if (slot->data && slot->capacity >= nbytes)
        return QC_OK;
    free(slot->data);
    slot->data = malloc(nbytes ? nbytes : 1);
    slot->capacity = slot->data ? nbytes : 0;
    if (!slot->data)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory for %zu bytes", path, nbytes);
    return QC_OK;
}
