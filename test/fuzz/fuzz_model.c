/* libFuzzer target: bytes -> qc_model_load_bytes -> qc_exec_new (topological order, op
 * resolution, kernel prepare, liveness). External data is refused (dir = NULL); the
 * fuzz_model_extdata target includes this file with FUZZ_EXTDATA to allow it from a folder of
 * known files and to write the loaded model back with qc_model_save. */
#include <sys/stat.h>
#include "fuzz_util.h"
#include "qc_exec.h"
#include "qc_model.h"

#ifdef FUZZ_EXTDATA
static char model_dir[300];

static void put(const char *name, size_t n)
{
    unsigned char buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", model_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        perror("fuzz: writing external data");
        abort();
    }
}

/* The model folder: data files the seeds reference ("w.bin", "sub/w.bin") and things a
 * hostile location might point at: a folder, a FIFO (must not block), a symlink to a device. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[400];
    snprintf(model_dir, sizeof model_dir, "%s/model", fuzz_tmpdir());
    snprintf(path, sizeof path, "%s/sub", model_dir);
    if (mkdir(model_dir, 0700) != 0 || mkdir(path, 0700) != 0) {
        perror("fuzz: mkdir");
        abort();
    }
    put("w.bin", 4096);
    put("sub/w.bin", 256);
    put("empty.bin", 0);
    snprintf(path, sizeof path, "%s/folder", model_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/fifo", model_dir);
    mkfifo(path, 0600);
    snprintf(path, sizeof path, "%s/zero", model_dir);
    if (symlink("/dev/zero", path) != 0)
        perror("fuzz: symlink");
    return 0;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qc_model *m = NULL;
    qc_exec *x = NULL;
    qc_err err = { 0 };
#ifdef FUZZ_EXTDATA
    const char *dir = model_dir;
#else
    const char *dir = NULL;
#endif
    int rc = qc_model_load_bytes(&m, data, size, dir, "fuzz.onnx", &err);
    fuzz_check_err(rc, &err);
    if (rc != QC_OK)
        return 0;
    rc = qc_exec_new(&x, m, NULL, &err);
    fuzz_check_err(rc, &err);
    qc_exec_free(x);
#ifdef FUZZ_EXTDATA
    /* Write it back: inline, or with every initializer of 64 bytes or more external. */
    char out[400];
    snprintf(out, sizeof out, "%s/out.onnx", fuzz_tmpdir());
    rc = qc_model_save(m, out, size % 2 ? 64 : 0, &err);
    fuzz_check_err(rc, &err);
#endif
    qc_model_free(m);
    return 0;
}
