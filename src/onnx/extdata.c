/* External tensor data: `location` relative to the model's folder, optional offset/length.
 * Paths may not escape the folder: a model from the internet must not read /etc/passwd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "onnx_priv.h"

int qc_onnx_is_external(const Onnx__TensorProto *tp)
{
    return tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

static int parse_u64(const char *s, unsigned long long *v)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return (errno || *end) ? -1 : 0;
}

static int location_is_safe(const char *loc)
{
    if (!loc || !*loc || loc[0] == '/' || strchr(loc, '\\'))
        return 0;
    /* reject any ".." path component */
    for (const char *p = loc; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += len;
        if (*p == '/')
            p++;
    }
    return 1;
}

/* With dst NULL only validates (location, file, size and range) without reading. */
int qc_onnx_extdata_read(const Onnx__TensorProto *tp, const char *dir, void *dst, size_t nbytes,
                         const char *what, qc_err *err)
{
    const char *loc = NULL;
    unsigned long long off = 0, len = nbytes;
    int have_len = 0;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key)
            continue;
        if (!strcmp(e->key, "location")) {
            loc = e->value;
        } else if (!strcmp(e->key, "offset")) {
            if (parse_u64(e->value, &off))
                return qc_errf(err, QC_EINPUT, "%s: bad external data offset '%s'", what,
                               e->value ? e->value : "");
        } else if (!strcmp(e->key, "length")) {
            if (parse_u64(e->value, &len))
                return qc_errf(err, QC_EINPUT, "%s: bad external data length '%s'", what,
                               e->value ? e->value : "");
            have_len = 1;
        }
    }
    if (!dir)
        return qc_errf(err, QC_EINPUT, "%s: external data is not allowed here", what);
    if (!location_is_safe(loc))
        return qc_errf(err, QC_EINPUT, "%s: external data location '%s' is empty, absolute or "
                       "leaves the model's folder", what, loc ? loc : "");
    if (have_len && len != nbytes)
        return qc_errf(err, QC_EINPUT, "%s: external data length %llu, tensor needs %zu bytes",
                       what, len, nbytes);
    size_t plen = strlen(dir) + strlen(loc) + 2;
    char *path = malloc(plen);
    if (!path)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    snprintf(path, plen, "%s/%s", dir, loc);
    int rc = QC_OK;
    /* O_NONBLOCK: a FIFO in the model's folder must fail the S_ISREG check, not hang open() */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = NULL;
    struct stat st;
    if (fd < 0) {
        rc = qc_errf(err, QC_EIO, "%s: cannot open external data '%s': %s", what, path,
                     strerror(errno));
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = qc_errf(err, QC_EINPUT, "%s: external data '%s' is not a regular file", what, path);
    } else if (off > (unsigned long long)st.st_size ||
               nbytes > (unsigned long long)st.st_size - off) {
        rc = qc_errf(err, QC_EINPUT, "%s: external data '%s' has %lld bytes, tensor needs %zu at "
                     "offset %llu", what, path, (long long)st.st_size, nbytes, off);
    } else if (!dst) {
        /* validation only: the caller allocates once the size is known to be real */
    } else if (!(f = fdopen(fd, "rb"))) {
        rc = qc_errf(err, QC_EIO, "%s: cannot read external data '%s': %s", what, path,
                     strerror(errno));
    } else if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(dst, 1, nbytes, f) != nbytes) {
        rc = qc_errf(err, QC_EIO, "%s: cannot read external data '%s'", what, path);
    }
    if (f)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}
