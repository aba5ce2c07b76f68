#include <errno.h>
#include <math.h>
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
        if (t.derived_from)
            cJSON_AddStringToObject(o, "derived_from", t.derived_from);
        cJSON_AddStringToObject(o, "dtype", qc_dtype_name(t.dtype));
        if (t.axis >= 0)
            cJSON_AddNumberToObject(o, "axis", t.axis);
        cJSON_AddItemToObject(o, "observed_min", float_array(t.obs_lo, t.n_channels));
        cJSON_AddItemToObject(o, "observed_max", float_array(t.obs_hi, t.n_channels));
        cJSON_AddItemToObject(o, "min", float_array(t.lo, t.n_channels));
        cJSON_AddItemToObject(o, "max", float_array(t.hi, t.n_channels));
        cJSON_AddItemToObject(o, "scale", float_array(t.scale, t.n_channels));
        cJSON_AddItemToObject(o, "zero_point", int_array(t.zero_point, t.n_channels));
        if (t.guard_moved)
            cJSON_AddNumberToObject(o, "pair_guard_widened", t.guard_moved);
        if (t.concat_group) {
            cJSON_AddStringToObject(o, "concat_group", t.concat_group);
            cJSON_AddItemToObject(o, "own_min", float_array(&t.own_lo, 1));
            cJSON_AddItemToObject(o, "own_max", float_array(&t.own_hi, 1));
        }
        if (t.rank > 0)
            cJSON_AddNumberToObject(o, "rank", t.rank);
        if (t.nonfinite)
            cJSON_AddNumberToObject(o, "nonfinite_skipped", (double)t.nonfinite);
        cJSON_AddItemToObject(tensors, t.name, o);
    }
    return qc_write_json_atomic(root, path, err);
}

/* TensorRT's calibration cache: a header line, then "<tensor>: <hex of the float32 scale>"
 * with scale = absmax / 127 (TensorRT ranges are symmetric int8). Activations only. */
int qc_params_write_trt_cache(const qc_quantizer *q, const char *path, qc_err *err)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    len += (size_t)snprintf(buf, cap, "TRT-8601-EntropyCalibration2\n");
    for (int i = 0; i < qc_quantizer_n_tensors(q); i++) {
        qc_qtensor_info t;
        if (!qc_quantizer_tensor(q, i, &t) || strcmp(t.kind, "activation") != 0)
            continue;
        float lo = t.lo[0] < 0 ? -t.lo[0] : t.lo[0], hi = t.hi[0] < 0 ? -t.hi[0] : t.hi[0];
        float s = (lo > hi ? lo : hi) / 127.0f;
        uint32_t bits;
        memcpy(&bits, &s, 4);
        size_t need = strlen(t.name) + 16;
        if (len + need + 1 > cap) {
            cap = 2 * (len + need + 1);
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return qc_errf(err, QC_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s: %08x\n", t.name, bits);
    }
    int rc = qc_write_file_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

/* onnxruntime's quantize_static(extra_options={"TensorQuantOverrides": ...}) takes, per tensor,
 * a list of dicts; "rmin"/"rmax" pin the range (ORT then derives scale/zero point itself, so
 * the overrides reproduce our ranges under ORT's own rules). Activations only. */
int qc_params_write_ort_overrides(const qc_quantizer *q, const char *path, qc_err *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < qc_quantizer_n_tensors(q); i++) {
        qc_qtensor_info t;
        if (!qc_quantizer_tensor(q, i, &t) || strcmp(t.kind, "activation") != 0)
            continue;
        cJSON *list = cJSON_CreateArray(), *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rmin", t.lo[0]);
        cJSON_AddNumberToObject(o, "rmax", t.hi[0]);
        cJSON_AddNumberToObject(o, "scale", t.scale[0]);
        cJSON_AddNumberToObject(o, "zero_point", t.zero_point[0]);
        cJSON_AddStringToObject(o, "quant_type",
                                t.dtype == QC_U8 ? "QUInt8" : t.dtype == QC_I8 ? "QInt8"
                                : t.dtype == QC_I16 ? "QInt16" : "QUInt16");
        cJSON_AddItemToArray(list, o);
        cJSON_AddItemToObject(root, t.name, list);
    }
    return qc_write_json_atomic(root, path, err);
}

static int read_file(const char *path, char **out, qc_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qc_errf(err, errno == ENOENT ? QC_EINPUT : QC_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = 2 * cap + 65536 + 1;
            if (cap > ((size_t)256 << 20)) {
                free(buf);
                fclose(f);
                return qc_errf(err, QC_EINPUT, "%s: too large for a parameters file", path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return qc_errf(err, QC_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, 65536, f);
        len += got;
        if (got < 65536)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return qc_errf(err, QC_EIO, "%s: read error", path);
    }
    buf[len] = '\0';
    *out = buf;
    return QC_OK;
}

static int number_at(const cJSON *o, const char *key, double *v)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsArray(a))
        a = cJSON_GetArrayItem(a, 0);
    if (!cJSON_IsNumber(a))
        return -1;
    *v = a->valuedouble;
    return 0;
}

int qc_params_read_json(qc_quantizer *q, const char *path, int *n_applied,
                        int *n_axis_weights, qc_err *err)
{
    char *text = NULL;
    int rc = read_file(path, &text, err);
    if (rc != QC_OK)
        return rc;
    cJSON *root = cJSON_Parse(text);
    free(text);
    *n_applied = 0;
    *n_axis_weights = 0;
    const cJSON *tensors = root ? cJSON_GetObjectItemCaseSensitive(root, "tensors") : NULL;
    const cJSON *fmt = root ? cJSON_GetObjectItemCaseSensitive(root, "format") : NULL;
    if (!root || !cJSON_IsObject(tensors) || !cJSON_IsString(fmt) ||
        strcmp(fmt->valuestring, "qcal-params") != 0) {
        cJSON_Delete(root);
        return qc_errf(err, QC_EINPUT, "%s: not a qcal parameters file (written by "
                       "--params-out)", path);
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(t, "kind");
        double axis;
        if (cJSON_IsString(kind) && !strcmp(kind->valuestring, "weight") &&
            !number_at(t, "axis", &axis))
            (*n_axis_weights)++;
        if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "activation") != 0)
            continue;                   /* weights and biases come from the model itself */
        double lo, hi, olo, ohi, rank = 0;
        if (number_at(t, "min", &lo) || number_at(t, "max", &hi) || !isfinite(lo) ||
            !isfinite(hi) || lo > hi) {
            rc = qc_errf(err, QC_EINPUT, "%s: tensor '%s': missing or bad min/max", path,
                         t->string ? t->string : "");
            cJSON_Delete(root);             /* after the message: t->string lives in root */
            return rc;
        }
        if (number_at(t, "observed_min", &olo) || number_at(t, "observed_max", &ohi)) {
            olo = lo;
            ohi = hi;
        }
        number_at(t, "rank", &rank);
        if (!(rank >= 0 && rank <= QC_MAX_DIMS))    /* (int)1e308 would be undefined */
            rank = 0;
        qc_range r = { (float)lo, (float)hi }, s = { (float)olo, (float)ohi };
        *n_applied += qc_quantizer_set_range(q, t->string, r, s, (int)rank);
    }
    cJSON_Delete(root);
    return QC_OK;
}
