/* Shared by the libFuzzer targets in test/fuzz/: the library API some targets need takes a
 * path, so the input goes through a per-process temp file (on tmpfs when /dev/shm exists),
 * and every failure must keep the error contract (a known code, one non-empty line). */
#ifndef QC_FUZZ_UTIL_H
#define QC_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "qc_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[256];

static inline int fuzz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT;
}

static inline void fuzz_cleanup(void)
{
    if (fuzz_dir[0])
        nftw(fuzz_dir, fuzz_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* A folder of our own, removed at exit: under $QC_FUZZ_TMP (tools/fuzz.sh points it at a
 * tmpfs folder it removes afterwards), else /dev/shm, else $TMPDIR or /tmp. */
static inline const char *fuzz_tmpdir(void)
{
    if (fuzz_dir[0])
        return fuzz_dir;
    struct stat st;
    const char *base = getenv("QC_FUZZ_TMP");
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm"
               : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/qc-fuzz.XXXXXX", base);
    if (!mkdtemp(fuzz_dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_cleanup);
    return fuzz_dir;
}

/* Writes the input to <tmpdir>/<name> and returns that path (static buffer per name slot). */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("fuzz: open temp file");
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            perror("fuzz: write temp file");
            abort();
        }
        off += (size_t)w;
    }
    close(fd);
    return path;
}

/* The error contract every library call keeps on bad input: a known negative code and one
 * non-empty line without control characters. A violation is a finding: abort. */
static inline void fuzz_check_err(int rc, const qc_err *err)
{
    if (rc == QC_OK)
        return;
    if (rc < QC_EINTERNAL || rc > QC_EUSAGE) {
        fprintf(stderr, "fuzz: unknown error code %d\n", rc);
        abort();
    }
    if (rc == QC_EINTERNAL) {
        fprintf(stderr, "fuzz: internal error on input: %s\n", err->msg);
        abort();
    }
    if (!err->msg[0]) {
        fprintf(stderr, "fuzz: error %d with an empty message\n", rc);
        abort();
    }
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "fuzz: control character 0x%02x in message: %s\n",
                    (unsigned char)*p, err->msg);
            abort();
        }
}

#endif
