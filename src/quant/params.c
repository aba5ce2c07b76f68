#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "qc_io.h"
#include "qc_params.h"

static cJSON *float_array(const float *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

static cJSON *int_array(const int32_t *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

int qc_params_write_json(const qc_quantizer *q, const char *path, qc_err *err)
{
    cJSON *root = cJSON_CreateObject(), *tensors = cJSON_CreateObject();
    if (!root || !tensors) {
        cJSON_Delete(root);
        cJSON_Delete(tensors);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(root, "format", "qcal-params");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddItemToObject(root, "tensors", tensors);
    for (int i = 0; i < qc_quantizer_n_tensors(q); i++) {
        qc_qtensor_info t;
        if (!qc_quantizer_tensor(q, i, &t))
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", t.kind);
        cJSON_AddStringToObject(o, "method", t.method);
        if (t.shared_with)
            cJSON_AddStringToObject(o, "shared_with", t.shared_with);
        cJSON_AddStringToObject(o, "dtype", qc_dtype_name(t.dtype));
        if (t.axis >= 0)
            cJSON_AddNumberToObject(o, "axis", t.axis);
        cJSON_AddItemToObject(o, "observed_min", float_array(t.obs_lo, t.n_channels));
        cJSON_AddItemToObject(o, "observed_max", float_array(t.obs_hi, t.n_channels));
        cJSON_AddItemToObject(o, "min", float_array(t.lo, t.n_channels));
        cJSON_AddItemToObject(o, "max", float_array(t.hi, t.n_channels));
        cJSON_AddItemToObject(o, "scale", float_array(t.scale, t.n_channels));
        cJSON_AddItemToObject(o, "zero_point", int_array(t.zero_point, t.n_channels));
        if (t.nonfinite)
            cJSON_AddNumberToObject(o, "nonfinite_skipped", (double)t.nonfinite);
        cJSON_AddItemToObject(tensors, t.name, o);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    size_t n = strlen(s);
    s[n] = '\n';
    int rc = qc_write_file_atomic(path, s, n + 1, err);
    free(s);
    return rc;
}
