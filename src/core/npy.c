#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "qc_io.h"
#include "qc_npy.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define MAX_HEADER (1 << 20)        /* numpy itself refuses headers past a few KiB */

static const struct {
    const char *code;               /* descr without the byte-order character */
    int         dtype;
} kinds[] = {
    { "f4", QC_F32 }, { "f8", QC_F64 }, { "f2", QC_F16 },
    { "i8", QC_I64 }, { "i4", QC_I32 }, { "i2", QC_I16 }, { "i1", QC_I8 },
    { "u8", QC_U64 }, { "u4", QC_U32 }, { "u2", QC_U16 }, { "u1", QC_U8 },
    { "b1", QC_BOOL },
};

/* ---- header parsing: a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), } ---- */

typedef struct parser {
    const char *p, *end;
    const char *path;
    qc_err     *err;
} parser;

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
                               *ps->p == '\r'))
        ps->p++;
}

static int bad(parser *ps, const char *what)
{
    return qc_errf(ps->err, QC_EINPUT, "%s: malformed .npy header: %s", ps->path, what);
}

static int expect(parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return bad(ps, what);
    }
    ps->p++;
    return QC_OK;
}

static int parse_str(parser *ps, char *buf, size_t n)
{
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return bad(ps, "expected a quoted string");
    char q = *ps->p++;
    size_t o = 0;
    while (ps->p < ps->end && *ps->p != q) {
        if (o + 1 >= n)
            return bad(ps, "string too long");
        buf[o++] = *ps->p++;
    }
    if (ps->p >= ps->end)
        return bad(ps, "unterminated string");
    ps->p++;
    buf[o] = '\0';
    return QC_OK;
}

static int parse_bool(parser *ps, int *v)
{
    skip_ws(ps);
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 4 && !memcmp(ps->p, "True", 4)) {
        *v = 1;
        ps->p += 4;
    } else if (left >= 5 && !memcmp(ps->p, "False", 5)) {
        *v = 0;
        ps->p += 5;
    } else {
        return bad(ps, "fortran_order is not True or False");
    }
    return QC_OK;
}

static int parse_shape(parser *ps, int *ndim, int64_t *dims)
{
    int rc = expect(ps, '(');
    if (rc)
        return rc;
    *ndim = 0;
    for (;;) {
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ')') {
            ps->p++;
            return QC_OK;
        }
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return bad(ps, "shape entry is not a non-negative integer");
        int64_t v = 0;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return bad(ps, "shape entry too large");
            v = v * 10 + (*ps->p++ - '0');
        }
        if (ps->p < ps->end && *ps->p == 'L')    /* Python 2 long */
            ps->p++;
        if (*ndim >= QC_MAX_DIMS)
            return qc_errf(ps->err, QC_EINPUT, "%s: more than %d dimensions", ps->path,
                           QC_MAX_DIMS);
        dims[(*ndim)++] = v;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',')
            ps->p++;
        else if (ps->p >= ps->end || *ps->p != ')')
            return bad(ps, "expected ',' or ')' in shape");
    }
}

static int parse_descr(const char *path, const char *d, int *dtype, qc_err *err)
{
    char order = d[0];
    const char *code = d + 1;
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        code = d;
        order = '=';
    }
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(code, kinds[i].code) != 0)
            continue;
        size_t es = qc_dtype_size(kinds[i].dtype);
        if (order == '>' && es > 1)
            return qc_errf(err, QC_EINPUT, "%s: big-endian data ('%s') is not supported: "
                           "save it with a.astype('<%s')", path, d, code);
        if (order == '|' && es > 1)
            return qc_errf(err, QC_EINPUT, "%s: invalid dtype '%s'", path, d);
        *dtype = kinds[i].dtype;
        return QC_OK;
    }
    return qc_errf(err, QC_EINPUT, "%s: unsupported dtype '%s' (supported: float32/64/16, "
                   "int8..64, uint8..64, bool)", path, d);
}

static int parse_header(const char *path, const char *h, size_t n, qc_npy_info *info,
                        qc_err *err)
{
    parser ps = { h, h + n, path, err };
    int rc, have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    char key[32], descr[64];
    if ((rc = expect(&ps, '{')))
        return rc;
    for (;;) {
        skip_ws(&ps);
        if (ps.p < ps.end && *ps.p == '}')
            break;
        if ((rc = parse_str(&ps, key, sizeof key)) || (rc = expect(&ps, ':')))
            return rc;
        if (!strcmp(key, "descr")) {
            skip_ws(&ps);
            if (ps.p < ps.end && *ps.p == '[')
                return qc_errf(err, QC_EINPUT, "%s: structured arrays are not supported",
                               path);
            rc = parse_str(&ps, descr, sizeof descr);
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            rc = parse_bool(&ps, &fortran);
            have_order = 1;
        } else if (!strcmp(key, "shape")) {
            rc = parse_shape(&ps, &info->ndim, info->dims);
            have_shape = 1;
        } else {
            char what[64];
            snprintf(what, sizeof what, "unexpected key '%s'", key);
            return bad(&ps, what);
        }
        if (rc)
            return rc;
        skip_ws(&ps);
        if (ps.p < ps.end && *ps.p == ',')
            ps.p++;
        else if (ps.p >= ps.end || *ps.p != '}')
            return bad(&ps, "expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape)
        return bad(&ps, "missing 'descr', 'fortran_order' or 'shape'");
    if ((rc = parse_descr(path, descr, &info->file_dtype, err)))
        return rc;
    if (fortran && info->ndim > 1)
        return qc_errf(err, QC_EINPUT, "%s: Fortran-order arrays are not supported: save "
                       "it with np.ascontiguousarray(a)", path);
    info->dtype = info->file_dtype == QC_F64 || info->file_dtype == QC_F16 ? QC_F32
                                                                          : info->file_dtype;
    return QC_OK;
}

static uint32_t le32(const unsigned char *b)
{
    return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Parses the header from an open file, leaving the file positioned at the data. */
static int read_header(FILE *f, const char *path, qc_npy_info *info, qc_err *err)
{
    unsigned char pre[12];
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return qc_errf(err, QC_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return qc_errf(err, QC_EINPUT, "%s: not a regular file", path);
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return qc_errf(err, QC_EINPUT, "%s: not a .npy file (bad magic)", path);
    size_t hlen, off;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        off = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2)
            return qc_errf(err, QC_EINPUT, "%s: truncated .npy header", path);
        hlen = le32(pre + 8);
        off = 12;
    } else {
        return qc_errf(err, QC_EINPUT, "%s: unsupported .npy format version %d.%d", path,
                       pre[6], pre[7]);
    }
    if (hlen > MAX_HEADER || (off_t)(off + hlen) > st.st_size)
        return qc_errf(err, QC_EINPUT, "%s: truncated .npy header (%zu bytes announced, "
                       "file has %lld)", path, hlen, (long long)st.st_size);
    char *h = malloc(hlen ? hlen : 1);
    if (!h)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", path);
    int rc;
    if (fread(h, 1, hlen, f) != hlen)
        rc = qc_errf(err, QC_EIO, "%s: read failed", path);
    else
        rc = parse_header(path, h, hlen, info, err);
    free(h);
    if (rc)
        return rc;
    info->data_offset = (long)(off + hlen);

    int64_t numel;
    size_t nbytes;
    char shape[160];
    qc_tensor tmp = { .ndim = info->ndim, .dtype = info->file_dtype };
    memcpy(tmp.dims, info->dims, sizeof tmp.dims);
    qc_shape_str(&tmp, shape, sizeof shape);
    if (qc_numel_checked(info->dims, info->ndim, info->file_dtype, &numel, &nbytes) != QC_OK)
        return qc_errf(err, QC_EINPUT, "%s: shape %s is too large", path, shape);
    uint64_t have = (uint64_t)st.st_size - (uint64_t)info->data_offset;
    if (have < nbytes)
        return qc_errf(err, QC_EINPUT, "%s: truncated: shape %s of %s needs %zu data bytes, "
                       "file has %llu", path, shape, qc_dtype_name(info->file_dtype), nbytes,
                       (unsigned long long)have);
    if (have > nbytes)
        return qc_errf(err, QC_EINPUT, "%s: %llu unexpected bytes after the %s %s data",
                       path, (unsigned long long)(have - nbytes), shape,
                       qc_dtype_name(info->file_dtype));
    return QC_OK;
}

static int open_read(FILE **f, const char *path, qc_err *err)
{
    *f = fopen(path, "rb");
    if (!*f)
        return qc_errf(err, errno == ENOENT || errno == ENOTDIR ? QC_EINPUT : QC_EIO,
                       "%s: cannot open: %s", path, strerror(errno));
    return QC_OK;
}

int qc_npy_read_header(const char *path, qc_npy_info *info, qc_err *err)
{
    FILE *f;
    int rc = open_read(&f, path, err);
    if (rc)
        return rc;
    rc = read_header(f, path, info, err);
    fclose(f);
    return rc;
}

/* Reads numel elements of a float64/float16 file as float32, in chunks. */
static int read_converted(FILE *f, const char *path, int file_dtype, float *dst, int64_t numel,
                          qc_err *err)
{
    union { double d[512]; uint16_t h[2048]; } buf;
    size_t es = qc_dtype_size(file_dtype), per = sizeof buf / es;
    for (int64_t i = 0; i < numel;) {
        size_t k = (size_t)(numel - i) < per ? (size_t)(numel - i) : per;
        if (fread(&buf, es, k, f) != k)
            return qc_errf(err, QC_EIO, "%s: read failed", path);
        for (size_t j = 0; j < k; j++)
            dst[i + (int64_t)j] = file_dtype == QC_F64 ? (float)buf.d[j]
                                                       : qc_half_to_float(buf.h[j]);
        i += (int64_t)k;
    }
    return QC_OK;
}

static int read_array(const char *path, qc_tensor *t, int reuse, qc_err *err)
{
    qc_npy_info info;
    FILE *f;
    int rc = open_read(&f, path, err);
    if (rc)
        return rc;
    rc = read_header(f, path, &info, err);
    if (rc)
        goto done;
    int64_t numel;
    size_t nbytes;
    qc_numel_checked(info.dims, info.ndim, info.dtype, &numel, &nbytes);   /* checked above */
    if (!reuse || !t->data || t->capacity < nbytes) {
        if (reuse)
            free(t->data);
        t->data = malloc(nbytes ? nbytes : 1);
        t->capacity = t->data ? nbytes : 0;
        if (!t->data) {
            rc = qc_errf(err, QC_ENOMEM, "%s: out of memory for %zu bytes", path, nbytes);
            goto done;
        }
    }
    t->dtype = info.dtype;
    t->ndim = info.ndim;
    memcpy(t->dims, info.dims, sizeof t->dims);
    if (info.file_dtype != info.dtype)
        rc = read_converted(f, path, info.file_dtype, t->data, numel, err);
    else if (nbytes && fread(t->data, 1, nbytes, f) != nbytes)
        rc = qc_errf(err, QC_EIO, "%s: read failed", path);
    if (info.dtype == QC_BOOL && rc == QC_OK) {
        /* numpy bools are 0/1 bytes; normalize anything else so kernels can trust it */
        unsigned char *b = t->data;
        for (size_t i = 0; i < nbytes; i++)
            b[i] = b[i] != 0;
    }
    if (rc && !reuse) {
        free(t->data);
        t->data = NULL;
        t->capacity = 0;
    }
done:
    fclose(f);
    return rc;
}

int qc_npy_read(const char *path, qc_tensor *t, qc_err *err)
{
    t->data = NULL;
    t->capacity = 0;
    return read_array(path, t, 0, err);
}

int qc_npy_read_reuse(const char *path, qc_tensor *t, qc_err *err)
{
    return read_array(path, t, 1, err);
}

static const char *descr_of(int dtype)
{
    switch (dtype) {
    case QC_F32: return "<f4";
    case QC_F64: return "<f8";
    case QC_F16: return "<f2";
    case QC_I64: return "<i8";
    case QC_I32: return "<i4";
    case QC_I16: return "<i2";
    case QC_I8: return "|i1";
    case QC_U64: return "<u8";
    case QC_U32: return "<u4";
    case QC_U16: return "<u2";
    case QC_U8: return "|u1";
    case QC_BOOL: return "|b1";
    default: return NULL;
    }
}

int qc_npy_write(const char *path, const qc_tensor *t, qc_err *err)
{
    const char *descr = descr_of(t->dtype);
    if (!descr)
        return qc_errf(err, QC_EUNSUPPORTED, "%s: cannot write %s data as .npy", path,
                       qc_dtype_name(t->dtype));
    size_t nbytes;
    if (qc_numel_checked(t->dims, t->ndim, t->dtype, NULL, &nbytes) != QC_OK)
        return qc_errf(err, QC_EINPUT, "%s: invalid tensor shape", path);
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(h + n, sizeof h - (size_t)n, "%lld, ", (long long)t->dims[i]);
    if (t->ndim > 1)
        n -= 2;                     /* "(2, 3)" but "(5,)" */
    else if (t->ndim == 1)
        n -= 1;
    n += snprintf(h + n, sizeof h - (size_t)n, "), }");
    /* magic(6) + version(2) + length(2), header padded with spaces and a final '\n' */
    size_t pre = 10, total = pre + (size_t)n + 1;
    total = (total + 63) / 64 * 64;
    size_t hlen = total - pre;
    memset(h + n, ' ', hlen - (size_t)n - 1);
    h[hlen - 1] = '\n';
    unsigned char magic[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8) };
    qc_afile a;
    int rc = qc_afile_open(&a, path, err);
    if (rc == QC_OK)
        rc = qc_afile_write(&a, magic, sizeof magic, err);
    if (rc == QC_OK)
        rc = qc_afile_write(&a, h, hlen, err);
    if (rc == QC_OK)
        rc = qc_afile_write(&a, t->data, nbytes, err);
    if (rc == QC_OK)
        rc = qc_afile_commit(&a, err);
    return rc;
}
