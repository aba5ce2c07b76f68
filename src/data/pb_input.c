#include <stdlib.h>
#include "data.h"

int qc_data_load_pb(const char *path, const qc_value_info *vi, qc_tensor *slot, qc_err *err)
{
    qc_tensor t = { 0 };
    /* The loader allocates its own buffer; it replaces the slot's so one sample stays live. */
    int rc = qc_tensor_load_pb(&t, NULL, path, err);
    if (rc)
        return rc;
    if (!qc_dtype_size(t.dtype)) {
        rc = qc_errf(err, QC_EINPUT, "%s: input '%s': %s tensors cannot be fed to the model",
                     path, vi->name, qc_dtype_name(t.dtype));
        qc_tensor_free(&t);
        return rc;
    }
    free(slot->data);
    const char *name = slot->name;
    *slot = t;
    slot->name = name;
    if (!slot->capacity)
        slot->capacity = qc_tensor_nbytes(slot);
    return qc_data_fit(path, vi, slot->dtype, slot->dtype, &slot->ndim, slot->dims, err);
}
