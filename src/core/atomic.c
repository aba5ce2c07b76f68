#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>
#include "qc_io.h"

/* Temp files being written, for qc_afile_unlink_all() from a signal handler. A slot holds a
 * copy of the temp name from before open() until after rename()/unlink(), so whenever the
 * file can exist its name is here; copies in static storage, so a handler running on another
 * thread never reads freed memory. Only the writing thread fills and clears slots. */
#define MAX_PENDING 16
static char pending_name[MAX_PENDING][PATH_MAX];
static volatile sig_atomic_t pending_used[MAX_PENDING];

static void track(const char *tmp)
{
    size_t n = strlen(tmp) + 1;
    for (int i = 0; n <= PATH_MAX && i < MAX_PENDING; i++)
        if (!pending_used[i]) {
            memcpy(pending_name[i], tmp, n);
            __atomic_signal_fence(__ATOMIC_SEQ_CST);    /* the name before the flag */
            pending_used[i] = 1;
            return;
        }
}

static void untrack(const char *tmp)
{
    for (int i = 0; tmp && i < MAX_PENDING; i++)
        if (pending_used[i] && !strcmp(pending_name[i], tmp))
            pending_used[i] = 0;
}

/* Async-signal-safe (unlink only): removes every temp file still being written. For a
 * SIGINT/SIGTERM handler in the tool, which then re-raises the signal. */
void qc_afile_unlink_all(void)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_used[i])
            unlink(pending_name[i]);
}

static void release(qc_afile *a)
{
    untrack(a->tmp);
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

/* Closes and removes the temp file, keeping errno for the message. */
static int fail(qc_afile *a, qc_err *err, const char *what, int errnum)
{
    int code = qc_errf(err, QC_EIO, "%s: %s: %s", a->path ? a->path : "?", what,
                       strerror(errnum));
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    release(a);
    return code;
}

int qc_afile_open(qc_afile *a, const char *path, qc_err *err)
{
    a->f = NULL;
    a->path = strdup(path);
    size_t n = strlen(path) + 32;
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        release(a);
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", path);
    }
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    track(a->tmp);                          /* registered before the file exists */
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        int code = qc_errf(err, QC_EIO, "%s: cannot create: %s", path, strerror(e));
        release(a);
        return code;
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        return fail(a, err, "cannot open", e);
    }
    return QC_OK;
}

int qc_afile_write(qc_afile *a, const void *data, size_t n, qc_err *err)
{
    if (!a->f)
        return qc_errf(err, QC_EIO, "%s: write after a failed or finished write",
                       a->path ? a->path : "?");
    if (n && fwrite(data, 1, n, a->f) != n)
        return fail(a, err, "write failed", errno ? errno : EIO);
    return QC_OK;
}

/* Best effort: makes the rename itself durable. Failure is not an error (some filesystems
 * refuse fsync on folders) since the data is already on disk. */
static void sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

int qc_afile_commit(qc_afile *a, qc_err *err)
{
    if (!a->f)
        return qc_errf(err, QC_EIO, "%s: commit after a failed or finished write",
                       a->path ? a->path : "?");
    if (fflush(a->f) != 0)
        return fail(a, err, "write failed", errno);
    if (fsync(fileno(a->f)) != 0 && errno != EINVAL && errno != EROFS)
        return fail(a, err, "fsync failed", errno);
    FILE *f = a->f;
    a->f = NULL;
    if (fclose(f) != 0)
        return fail(a, err, "close failed", errno);
    if (rename(a->tmp, a->path) != 0)
        return fail(a, err, "cannot rename temp file", errno);
    sync_parent(a->path);
    release(a);
    return QC_OK;
}

void qc_afile_abort(qc_afile *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    release(a);
}

int qc_write_file_atomic(const char *path, const void *data, size_t n, qc_err *err)
{
    qc_afile a;
    int rc = qc_afile_open(&a, path, err);
    if (rc == QC_OK)
        rc = qc_afile_write(&a, data, n, err);
    if (rc == QC_OK)
        rc = qc_afile_commit(&a, err);
    return rc;
}

static int mkdir_one(const char *path, qc_err *err)
{
    struct stat st;
    if (mkdir(path, 0777) == 0)
        return QC_OK;
    int e = errno;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return QC_OK;
        return qc_errf(err, QC_EIO, "%s: exists and is not a folder", path);
    }
    return qc_errf(err, QC_EIO, "%s: cannot create folder: %s", path, strerror(e));
}

int qc_mkdir_p(const char *path, qc_err *err)
{
    size_t n = strlen(path);
    char *p = malloc(n + 1);
    if (!p)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", path);
    memcpy(p, path, n + 1);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    int rc = QC_OK;
    /* Parents first; a component that already exists as a folder is fine. */
    for (size_t i = 1; i < n && rc == QC_OK; i++) {
        if (p[i] != '/' || p[i - 1] == '/')
            continue;
        p[i] = '\0';
        rc = mkdir_one(p, err);
        p[i] = '/';
    }
    if (rc == QC_OK && n > 0)
        rc = mkdir_one(p, err);
    free(p);
    return rc;
}

char *qc_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *p = malloc(a + (size_t)slash + b + 1);
    if (p) {
        memcpy(p, dir, a);
        if (slash)
            p[a] = '/';
        memcpy(p + a + slash, name, b + 1);
    }
    return p;
}

const char *qc_safe_filename(const char *name, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    size_t o = 0;
    if (!name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
        buf[o++] = '_';
    for (const char *s = name; *s && o + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;
        buf[o++] = (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) ? '_' : (char)c;
    }
    buf[o < n ? o : n - 1] = '\0';
    return buf;
}

int qc_write_json_atomic(cJSON *root, const char *path, qc_err *err)
{
    char *s = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!s)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    size_t n = strlen(s);
    s[n] = '\n';                        /* replaces the terminator: written by length */
    int rc = qc_write_file_atomic(path, s, n + 1, err);
    free(s);
    return rc;
}
