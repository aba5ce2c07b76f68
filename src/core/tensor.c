#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qc_tensor.h"

size_t qc_dtype_size(int dtype)
{
    switch (dtype) {
    case QC_F32: case QC_I32: case QC_U32: return 4;
    case QC_U8: case QC_I8: case QC_BOOL: return 1;
    case QC_U16: case QC_I16: case QC_F16: case QC_BF16: return 2;
    case QC_I64: case QC_U64: case QC_F64: return 8;
    default: return 0;
    }
}

const char *qc_dtype_name(int dtype)
{
    switch (dtype) {
    case QC_F32: return "float32";
    case QC_U8: return "uint8";
    case QC_I8: return "int8";
    case QC_U16: return "uint16";
    case QC_I16: return "int16";
    case QC_I32: return "int32";
    case QC_I64: return "int64";
    case QC_STRING: return "string";
    case QC_BOOL: return "bool";
    case QC_F16: return "float16";
    case QC_F64: return "float64";
    case QC_U32: return "uint32";
    case QC_U64: return "uint64";
    case QC_BF16: return "bfloat16";
    default: return "unknown";
    }
}

int qc_dtype_is_executable(int dtype)
{
    switch (dtype) {
    case QC_F32: case QC_U8: case QC_I8: case QC_U16: case QC_I16: case QC_I32:
    case QC_I64: case QC_BOOL:
        return 1;
    default:
        return 0;
    }
}

int64_t qc_tensor_numel(const qc_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

size_t qc_tensor_nbytes(const qc_tensor *t)
{
    return (size_t)qc_tensor_numel(t) * qc_dtype_size(t->dtype);
}

const char *qc_shape_str(const qc_tensor *t, char *buf, size_t n)
{
    size_t off = 0;
    if (n == 0)
        return buf;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ",%lld" : "%lld", (long long)t->dims[i]);
    if (off < n)
        snprintf(buf + off, n - off, "]");
    return buf;
}

int qc_shape_equal(const qc_tensor *a, const qc_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

int qc_numel_checked(const int64_t *dims, int ndim, int dtype, int64_t *numel, size_t *nbytes)
{
    int64_t n = 1;
    if (ndim < 0 || ndim > QC_MAX_DIMS)
        return QC_EINPUT;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return QC_EINPUT;
        if (dims[i] != 0 && n > INT64_MAX / dims[i])
            return QC_EINPUT;
        n *= dims[i];
    }
    size_t es = qc_dtype_size(dtype);
    if (es == 0)
        es = 1;
    if ((uint64_t)n > SIZE_MAX / es || (uint64_t)n > (uint64_t)INT64_MAX / es)
        return QC_EINPUT;
    if (numel)
        *numel = n;
    if (nbytes)
        *nbytes = (size_t)n * es;
    return QC_OK;
}

int qc_broadcast_shape(const int64_t *a, int na, const int64_t *b, int nb,
                       int64_t *out, int *nout)
{
    int n = na > nb ? na : nb;
    if (n > QC_MAX_DIMS)
        return QC_ESHAPE;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da == db || db == 1)
            out[i] = da;
        else if (da == 1)
            out[i] = db;
        else
            return QC_ESHAPE;
    }
    *nout = n;
    return QC_OK;
}

void qc_broadcast_strides(const int64_t *dims, int nd, const int64_t *out_dims, int ndim,
                          int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        int j = i - (ndim - nd);
        if (j < 0 || dims[j] == 1 || out_dims[i] == 1) {
            strides[i] = 0;
            if (j >= 0)
                s *= dims[j];
        } else {
            strides[i] = s;
            s *= dims[j];
        }
    }
}

int qc_tensor_alloc(qc_tensor *t, int dtype, int ndim, const int64_t *dims, qc_err *err)
{
    size_t nbytes;
    if (qc_numel_checked(dims, ndim, dtype, NULL, &nbytes) != QC_OK)
        return qc_errf(err, QC_EINPUT, "tensor shape too large or negative");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    t->data = calloc(nbytes ? nbytes : 1, 1);
    if (!t->data)
        return qc_errf(err, QC_ENOMEM, "out of memory allocating %zu bytes", nbytes);
    t->capacity = nbytes;
    return QC_OK;
}

void qc_tensor_free(qc_tensor *t)
{
    if (!t)
        return;
    free(t->data);
    t->data = NULL;
    t->capacity = 0;
}

int64_t qc_tensors_nonfinite(const qc_tensor *t, int n)
{
    int64_t bad = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].dtype != QC_F32)
            continue;
        const float *d = t[i].data;
        for (int64_t k = 0, len = qc_tensor_numel(&t[i]); k < len; k++)
            bad += !isfinite(d[k]);
    }
    return bad;
}

double qc_tensor_get_f(const qc_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case QC_F32: return ((const float *)t->data)[i];
    case QC_F64: return ((const double *)t->data)[i];
    case QC_U8: case QC_BOOL: return ((const uint8_t *)t->data)[i];
    case QC_I8: return ((const int8_t *)t->data)[i];
    case QC_U16: return ((const uint16_t *)t->data)[i];
    case QC_I16: return ((const int16_t *)t->data)[i];
    case QC_I32: return ((const int32_t *)t->data)[i];
    case QC_U32: return ((const uint32_t *)t->data)[i];
    case QC_I64: return (double)((const int64_t *)t->data)[i];
    case QC_U64: return (double)((const uint64_t *)t->data)[i];
    case QC_F16: return qc_half_to_float(((const uint16_t *)t->data)[i]);
    case QC_BF16: return qc_bf16_to_float(((const uint16_t *)t->data)[i]);
    default: return 0.0;
    }
}

static int64_t sat_i64(double v)
{
    if (!(v == v))
        return INT64_MIN;
    if (v >= 9.2233720368547758e18)
        return INT64_MAX;
    if (v <= -9.2233720368547758e18)
        return INT64_MIN;
    return (int64_t)v;
}

void qc_store_f(void *p, int dtype, int64_t i, double v)
{
    switch (dtype) {
    case QC_F32: ((float *)p)[i] = (float)v; break;
    case QC_U8: ((uint8_t *)p)[i] = (uint8_t)sat_i64(v); break;
    case QC_I8: ((int8_t *)p)[i] = (int8_t)sat_i64(v); break;
    case QC_U16: ((uint16_t *)p)[i] = (uint16_t)sat_i64(v); break;
    case QC_I16: ((int16_t *)p)[i] = (int16_t)sat_i64(v); break;
    case QC_I32: ((int32_t *)p)[i] = (int32_t)sat_i64(v); break;
    case QC_I64: ((int64_t *)p)[i] = sat_i64(v); break;
    case QC_BOOL: ((uint8_t *)p)[i] = v != 0.0; break;
    default: break;
    }
}

int64_t qc_tensor_get_i(const qc_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case QC_I64: return ((const int64_t *)t->data)[i];
    case QC_U64: return (int64_t)((const uint64_t *)t->data)[i];
    case QC_I32: return ((const int32_t *)t->data)[i];
    case QC_F32: case QC_F64: case QC_F16: case QC_BF16: {
        double v = qc_tensor_get_f(t, i);
        if (!(v == v))
            return 0;
        if (v >= 9.2e18)
            return INT64_MAX;
        if (v <= -9.2e18)
            return INT64_MIN;
        return (int64_t)v;
    }
    default: return (int64_t)qc_tensor_get_f(t, i);
    }
}

float qc_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {                      /* subnormal: normalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t qc_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff)
        return sign | 0x7c00 | (man ? 0x200 : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10)
            return sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++;                        /* may carry into the exponent: still correct */
    return sign | (uint16_t)half;
}

float qc_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
