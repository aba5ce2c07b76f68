/* File output helpers: atomic writes (temp file in the same folder, fsync, rename) so a crash
 * or a full disk never leaves a half-written file under the final name. */
#ifndef QC_IO_H
#define QC_IO_H

#include <stddef.h>
#include <stdio.h>
#include "qc_err.h"

/* A file being written to "<path>.tmp.<pid>". Every failure closes and removes the temp file
 * and returns QC_EIO (QC_ENOMEM) with a message naming `path` and strerror; after a failure
 * further writes fail and commit/abort are no-ops. */
typedef struct qc_afile {
    FILE *f;                        /* NULL once committed, aborted or failed */
    char *path;                     /* final name (malloc'd) */
    char *tmp;                      /* temp name (malloc'd) */
} qc_afile;

int  qc_afile_open(qc_afile *a, const char *path, qc_err *err);
int  qc_afile_write(qc_afile *a, const void *data, size_t n, qc_err *err);
/* Flushes, fsyncs, closes and renames onto the final name (replacing it), then releases a. */
int  qc_afile_commit(qc_afile *a, qc_err *err);
/* Removes the temp file and releases a; safe to call after commit or a failure. */
void qc_afile_abort(qc_afile *a);

/* Deletes every temp file an unfinished qc_afile is writing; async-signal-safe (for SIGINT/
 * SIGTERM handlers, which then re-raise the signal). */
void qc_afile_unlink_all(void);

/* One-shot: writes n bytes atomically. */
int  qc_write_file_atomic(const char *path, const void *data, size_t n, qc_err *err);

/* Writes a cJSON document (indented, newline-terminated) atomically; takes root (deleted,
 * also on failure). */
struct cJSON;
int  qc_write_json_atomic(struct cJSON *root, const char *path, qc_err *err);

/* Creates `path` and missing parents (mode 0777 & ~umask); fine if it already is a folder.
 * QC_EIO naming the path if it exists as something else or cannot be created. */
int  qc_mkdir_p(const char *path, qc_err *err);

/* "dir/name" (no second '/' when dir ends with one; "name" for an empty dir), malloc'd; NULL
 * when out of memory. */
char *qc_path_join(const char *dir, const char *name);

/* A tensor/input name as a single path component: '/' and '\\' become '_', control
 * characters become '_', and "", "." and ".." get a leading '_'. Writes at most n bytes
 * (truncating); returns buf. */
const char *qc_safe_filename(const char *name, char *buf, size_t n);

#endif
