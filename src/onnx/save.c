/* qc_model -> file. The kept ModelProto is packed as is; tensors living in external files are
 * pulled inline, unless the model would pass protobuf's 2 GiB limit, in which case large
 * initializers go to "<path>.data". Changes to the proto are undone before returning. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "onnx_priv.h"
#include "qc_io.h"

#define PROTO_LIMIT  (((size_t)2 << 30) - ((size_t)64 << 20))  /* 2 GiB less headroom */
#define EXT_MIN      1024

typedef struct edit {
    Onnx__TensorProto  *tp;
    Onnx__TensorProto   saved;      /* shallow copy to restore */
    void               *buf;        /* bytes we allocated for raw_data */
    Onnx__StringStringEntryProto  entries[3];
    Onnx__StringStringEntryProto *entry_ptrs[3];
    char                loc[PATH_MAX], off[32], len[32];
} edit;

static size_t src_nbytes(const Onnx__TensorProto *tp)
{
    size_t nbytes;
    int dt = tp->has_data_type ? tp->data_type : 0;
    int64_t dims[QC_MAX_DIMS];
    if (tp->n_dims > QC_MAX_DIMS || qc_dtype_size(dt) == 0)
        return 0;
    for (size_t i = 0; i < tp->n_dims; i++)
        dims[i] = tp->dims[i];
    if (qc_numel_checked(dims, (int)tp->n_dims, dt, NULL, &nbytes) != QC_OK)
        return 0;
    return nbytes;
}

/* The tensor's bytes as little-endian raw data, when we can produce them without loss:
 * *owned is set when the returned buffer must be freed. NULL when it stays as it is. */
static const void *tensor_bytes(const Onnx__TensorProto *tp, const char *dir, size_t *n,
                                void **owned, qc_err *err, int *rc)
{
    int dt = tp->has_data_type ? tp->data_type : 0;
    *owned = NULL;
    *rc = QC_OK;
    *n = src_nbytes(tp);
    if (qc_onnx_is_external(tp)) {
        void *b = malloc(*n ? *n : 1);
        if (!b) {
            *rc = qc_errf(err, QC_ENOMEM, "out of memory");
            return NULL;
        }
        *rc = qc_onnx_extdata_read(tp, dir, b, *n, tp->name ? tp->name : "", err);
        if (*rc != QC_OK) {
            free(b);
            return NULL;
        }
        *owned = b;
        return b;
    }
    if (tp->has_raw_data)
        return tp->raw_data.len == *n ? tp->raw_data.data : NULL;
    if (dt == QC_F32 && tp->n_float_data * 4 == *n)
        return tp->float_data;
    if (dt == QC_I64 && tp->n_int64_data * 8 == *n)
        return tp->int64_data;
    if (dt == QC_I32 && tp->n_int32_data * 4 == *n)
        return tp->int32_data;
    if (dt == QC_F64 && tp->n_double_data * 8 == *n)
        return tp->double_data;
    return NULL;
}

static void make_raw(Onnx__TensorProto *tp, const void *bytes, size_t n)
{
    tp->has_raw_data = 1;
    tp->raw_data.data = (uint8_t *)bytes;
    tp->raw_data.len = n;
    tp->n_float_data = tp->n_int32_data = tp->n_int64_data = 0;
    tp->n_double_data = tp->n_uint64_data = 0;
    tp->has_data_location = 0;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    tp->n_external_data = 0;
}

static void make_external(edit *e, const char *loc, size_t off, size_t n)
{
    Onnx__TensorProto *tp = e->tp;
    static const char *keys[3] = { "location", "offset", "length" };
    snprintf(e->loc, sizeof e->loc, "%s", loc);
    snprintf(e->off, sizeof e->off, "%zu", off);
    snprintf(e->len, sizeof e->len, "%zu", n);
    char *vals[3] = { e->loc, e->off, e->len };
    for (int i = 0; i < 3; i++) {
        Onnx__StringStringEntryProto init = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        e->entries[i] = init;
        e->entries[i].key = (char *)keys[i];
        e->entries[i].value = vals[i];
        e->entry_ptrs[i] = &e->entries[i];
    }
    tp->has_raw_data = 0;
    tp->raw_data.len = 0;
    tp->raw_data.data = NULL;
    tp->n_float_data = tp->n_int32_data = tp->n_int64_data = 0;
    tp->n_double_data = tp->n_uint64_data = 0;
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    tp->n_external_data = 3;
    tp->external_data = e->entry_ptrs;
}

/* Flushes a finished temp file to disk without renaming it (the FILE stays open). */
static int sync_tmp(qc_afile *a, qc_err *err)
{
    if (fflush(a->f) == 0 && (fsync(fileno(a->f)) == 0 || errno == EINVAL || errno == EROFS))
        return QC_OK;
    int code = qc_errf(err, QC_EIO, "%s: write failed: %s", a->path, strerror(errno));
    qc_afile_abort(a);
    return code;
}

/* Packs the model into its temp file; only when both it and the external data file (`data`,
 * may be NULL) are complete on disk are they renamed, data first: a full disk or a signal
 * never leaves a new .data beside an old model (or replaces the .data of the previous
 * output) unless the new model follows it a rename later. */
static int pack_and_write(const Onnx__ModelProto *mp, const char *path, qc_afile *data,
                          qc_err *err)
{
    size_t n = onnx__model_proto__get_packed_size(mp);
    if (n > ((size_t)2 << 30))
        return qc_errf(err, QC_EINPUT, "%s: model would be %zu bytes, over protobuf's 2 GiB "
                       "limit", path, n);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory packing %zu bytes", path, n);
    size_t got = onnx__model_proto__pack(mp, buf);
    qc_afile a;
    int rc = got == n ? qc_afile_open(&a, path, err)
                      : qc_errf(err, QC_EINTERNAL, "%s: protobuf packed %zu of %zu bytes", path,
                                got, n);
    if (rc == QC_OK)
        rc = qc_afile_write(&a, buf, n, err);
    free(buf);
    if (rc == QC_OK && data && (rc = sync_tmp(&a, err)) == QC_OK &&
        (rc = qc_afile_commit(data, err)) != QC_OK)
        qc_afile_abort(&a);
    if (rc == QC_OK)
        rc = qc_afile_commit(&a, err);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int qc_model_save(const qc_model *m, const char *path, size_t external_threshold, qc_err *err)
{
    qc_model_priv *p = m->priv;
    Onnx__GraphProto *g = p->proto->graph;
    char rin[PATH_MAX], rout[PATH_MAX];
    if (realpath(m->path, rin) && realpath(path, rout) && !strcmp(rin, rout))
        return qc_errf(err, QC_EUSAGE, "%s: output would overwrite the input model", path);
    size_t n_init = g ? g->n_initializer : 0;
    edit *ed = calloc(n_init + 1, sizeof *ed);
    if (!ed)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    int rc = QC_OK, n_ed = 0;
    size_t total = onnx__model_proto__get_packed_size(p->proto);
    for (size_t i = 0; i < n_init; i++)
        if (qc_onnx_is_external(g->initializer[i]))
            total += src_nbytes(g->initializer[i]);
    int external = external_threshold > 0 || total > PROTO_LIMIT;
    size_t thr = external_threshold > 0 ? external_threshold : EXT_MIN;
    qc_afile data = { 0 };
    char *data_path = NULL;
    size_t offset = 0;
    if (external) {
        size_t len = strlen(path) + 6;
        data_path = malloc(len);
        if (!data_path) {
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(data_path, len, "%s.data", path);
        if ((rc = qc_afile_open(&data, data_path, err)) != QC_OK)
            goto done;
    }
    for (size_t i = 0; i < n_init && rc == QC_OK; i++) {
        Onnx__TensorProto *tp = g->initializer[i];
        int ext = qc_onnx_is_external(tp);
        if (!ext && !external)
            continue;
        size_t n;
        void *owned;
        const void *bytes = tensor_bytes(tp, m->dir, &n, &owned, err, &rc);
        if (rc != QC_OK)
            break;
        if (!bytes)
            continue;           /* a dtype we only keep as it is */
        if (!ext && n < thr) {
            free(owned);
            continue;
        }
        edit *e = &ed[n_ed++];
        e->tp = tp;
        e->saved = *tp;
        e->buf = owned;
        if (external && n >= thr) {
            static const char zeros[64];
            size_t pad = (64 - offset % 64) % 64;   /* aligned for mmap-ing runtimes */
            if ((rc = qc_afile_write(&data, zeros, pad, err)) != QC_OK ||
                (rc = qc_afile_write(&data, bytes, n, err)) != QC_OK)
                break;
            offset += pad;
            make_external(e, base_name(data_path), offset, n);
            offset += n;
        } else {
            make_raw(tp, bytes, n);
        }
    }
    if (rc == QC_OK && external)
        rc = sync_tmp(&data, err);
    if (rc == QC_OK)
        rc = pack_and_write(p->proto, path, external ? &data : NULL, err);
done:
    if (external)
        qc_afile_abort(&data);
    for (int i = 0; i < n_ed; i++) {
        *ed[i].tp = ed[i].saved;
        free(ed[i].buf);
    }
    free(ed);
    free(data_path);
    return rc;
}
