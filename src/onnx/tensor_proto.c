/* TensorProto -> qc_tensor: raw_data, typed fields, external data; F16/BF16/F64 become F32. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "onnx_priv.h"

static void *alloc_in(qc_arena *arena, size_t n)
{
    if (arena)
        return qc_arena_alloc(arena, n ? n : 1);
    return calloc(n ? n : 1, 1);
}

/* Storage dtype after conversion for execution. */
static int exec_dtype(int src)
{
    switch (src) {
    case QC_F16: case QC_BF16: case QC_F64: return QC_F32;
    default: return src;
    }
}

/* Converts n elements of src (dtype `sd`, little-endian bytes) into dst of exec_dtype(sd). */
static void convert_raw(void *dst, const unsigned char *src, int sd, int64_t n)
{
    float *f = dst;
    switch (sd) {
    case QC_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            f[i] = qc_half_to_float(h);
        }
        break;
    case QC_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            f[i] = qc_bf16_to_float(h);
        }
        break;
    case QC_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            f[i] = (float)d;
        }
        break;
    default:
        if (n > 0)                  /* an empty tensor may have no data pointer at all */
            memcpy(dst, src, (size_t)n * qc_dtype_size(sd));
    }
}

/* Typed-field storage: which repeated field holds this dtype and how many values it has. */
static int typed_count(const Onnx__TensorProto *tp, int dt, size_t *count)
{
    switch (dt) {
    case QC_F32: *count = tp->n_float_data; return 0;
    case QC_I32: case QC_I16: case QC_I8: case QC_U16: case QC_U8: case QC_BOOL:
    case QC_F16: case QC_BF16: *count = tp->n_int32_data; return 0;
    case QC_I64: *count = tp->n_int64_data; return 0;
    case QC_F64: *count = tp->n_double_data; return 0;
    case QC_U32: case QC_U64: *count = tp->n_uint64_data; return 0;
    default: return -1;
    }
}

static void convert_typed(void *dst, const Onnx__TensorProto *tp, int dt, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case QC_F32: ((float *)dst)[i] = tp->float_data[i]; break;
        case QC_I32: ((int32_t *)dst)[i] = tp->int32_data[i]; break;
        case QC_I16: ((int16_t *)dst)[i] = (int16_t)tp->int32_data[i]; break;
        case QC_I8: ((int8_t *)dst)[i] = (int8_t)tp->int32_data[i]; break;
        case QC_U16: ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i]; break;
        case QC_U8: ((uint8_t *)dst)[i] = (uint8_t)tp->int32_data[i]; break;
        case QC_BOOL: ((uint8_t *)dst)[i] = tp->int32_data[i] != 0; break;
        case QC_F16: ((float *)dst)[i] = qc_half_to_float((uint16_t)tp->int32_data[i]); break;
        case QC_BF16: ((float *)dst)[i] = qc_bf16_to_float((uint16_t)tp->int32_data[i]); break;
        case QC_I64: ((int64_t *)dst)[i] = tp->int64_data[i]; break;
        case QC_F64: ((float *)dst)[i] = (float)tp->double_data[i]; break;
        case QC_U32: ((uint32_t *)dst)[i] = (uint32_t)tp->uint64_data[i]; break;
        case QC_U64: ((uint64_t *)dst)[i] = tp->uint64_data[i]; break;
        }
    }
}

int qc_onnx_tensor_convert(const Onnx__TensorProto *tp, qc_tensor *t, qc_arena *arena,
                           const char *dir, const char *what, qc_err *err)
{
    int sd = tp->has_data_type ? tp->data_type : QC_UNDEFINED;
    int64_t numel;
    size_t src_bytes;
    memset(t, 0, sizeof *t);
    if (tp->n_dims > QC_MAX_DIMS)
        return qc_errf(err, QC_EUNSUPPORTED, "%s: %zu dims, at most %d supported", what,
                       tp->n_dims, QC_MAX_DIMS);
    t->ndim = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        t->dims[i] = tp->dims[i];
    if (tp->segment)
        return qc_errf(err, QC_EUNSUPPORTED, "%s: segmented tensors are not supported", what);
    if (sd == QC_STRING || sd == QC_UNDEFINED || qc_dtype_size(sd) == 0) {
        /* kept in the proto, never executed: leave data NULL */
        t->dtype = sd;
        return QC_OK;
    }
    if (qc_numel_checked(t->dims, t->ndim, sd, &numel, &src_bytes) != QC_OK)
        return qc_errf(err, QC_EINPUT, "%s: invalid or too large shape", what);
    /* Check the stored size before allocating: a few bytes of header may claim gigabytes. */
    int dd = exec_dtype(sd), ext = qc_onnx_is_external(tp);
    size_t count = 0;
    if (ext) {
        int rc = qc_onnx_extdata_read(tp, dir, NULL, src_bytes, what, err);
        if (rc != QC_OK)
            return rc;
    } else if (tp->has_raw_data) {
        if (tp->raw_data.len != src_bytes)
            return qc_errf(err, QC_EINPUT, "%s: raw_data has %zu bytes, shape and dtype %s need "
                           "%zu", what, tp->raw_data.len, qc_dtype_name(sd), src_bytes);
    } else if (typed_count(tp, sd, &count) != 0) {
        return qc_errf(err, QC_EUNSUPPORTED, "%s: dtype %s not supported", what,
                       qc_dtype_name(sd));
    } else if ((int64_t)count != numel) {
        return qc_errf(err, QC_EINPUT, "%s: %zu values stored, shape needs %lld", what, count,
                       (long long)numel);
    }
    size_t dst_bytes = (size_t)numel * qc_dtype_size(dd);
    t->dtype = dd;
    void *dst = alloc_in(arena, dst_bytes);
    if (!dst)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory for %zu bytes", what, dst_bytes);
    t->data = dst;
    t->capacity = dst_bytes;
    int rc = QC_OK;
    if (ext) {
        if (dd == sd) {
            rc = qc_onnx_extdata_read(tp, dir, dst, src_bytes, what, err);
        } else {
            unsigned char *tmp = malloc(src_bytes ? src_bytes : 1);
            if (!tmp)
                rc = qc_errf(err, QC_ENOMEM, "%s: out of memory", what);
            else if ((rc = qc_onnx_extdata_read(tp, dir, tmp, src_bytes, what, err)) == QC_OK)
                convert_raw(dst, tmp, sd, numel);
            free(tmp);
        }
    } else if (tp->has_raw_data) {
        convert_raw(dst, tp->raw_data.data, sd, numel);
    } else {
        convert_typed(dst, tp, sd, numel);
    }
    if (rc != QC_OK && !arena) {
        free(dst);
        t->data = NULL;
    }
    return rc;
}

int qc_tensor_parse_pb(qc_tensor *t, char **name, const void *bytes, size_t n,
                       const char *what, qc_err *err)
{
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, n, bytes);
    if (name)
        *name = NULL;
    memset(t, 0, sizeof *t);
    if (!tp)
        return qc_errf(err, QC_EINPUT, "%s: not a valid ONNX TensorProto", what);
    int rc = qc_onnx_tensor_convert(tp, t, NULL, NULL, what, err);
    if (rc == QC_OK && !t->data)
        rc = qc_errf(err, QC_EUNSUPPORTED, "%s: dtype %s cannot be used as data", what,
                     qc_dtype_name(t->dtype));
    if (rc == QC_OK && name && tp->name)
        *name = strdup(tp->name);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return rc;
}

int qc_tensor_load_pb(qc_tensor *t, char **name, const char *path, qc_err *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    memset(t, 0, sizeof *t);
    if (name)
        *name = NULL;
    if (!f)
        return qc_errf(err, errno == ENOENT ? QC_EINPUT : QC_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return qc_errf(err, QC_EINPUT, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > QC_MAX_MODEL_BYTES) {
        fclose(f);
        return qc_errf(err, QC_EINPUT, "%s: file too large (%lld bytes)", path,
                       (long long)st.st_size);
    }
    size_t n = (size_t)st.st_size;
    void *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    int rc = got == n ? qc_tensor_parse_pb(t, name, buf, n, path, err)
                      : qc_errf(err, QC_EIO, "%s: read error", path);
    free(buf);
    return rc;
}
