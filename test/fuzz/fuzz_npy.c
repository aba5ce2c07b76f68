/* libFuzzer target: the .npy reader (include/qc_npy.h): header alone, whole array, buffer
 * reuse across calls; a file that reads back must survive qc_npy_write -> qc_npy_read
 * unchanged (dtype, shape, bytes). */
#include "fuzz_util.h"
#include "qc_npy.h"

static qc_tensor reused;            /* kept across inputs like the dataset's sample slots */

static void round_trip(const qc_tensor *t)
{
    char out[400];
    qc_err err = { 0 };
    qc_tensor back = { 0 };
    snprintf(out, sizeof out, "%s/rt.npy", fuzz_tmpdir());
    int rc = qc_npy_write(out, t, &err);
    if (rc == QC_OK)
        rc = qc_npy_read(out, &back, &err);
    if (rc != QC_OK) {
        fprintf(stderr, "fuzz: a readable array does not round-trip: %s\n", err.msg);
        abort();
    }
    size_t n = qc_tensor_nbytes(t);
    if (back.dtype != t->dtype || !qc_shape_equal(&back, t) ||
        (n && memcmp(back.data, t->data, n) != 0)) {
        fprintf(stderr, "fuzz: round trip changed the array\n");
        abort();
    }
    qc_tensor_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("in.npy", data, size);
    qc_npy_info info;
    qc_err err = { 0 };
    int rc = qc_npy_read_header(path, &info, &err);
    fuzz_check_err(rc, &err);
    qc_tensor t = { 0 };
    int rc2 = qc_npy_read(path, &t, &err);
    fuzz_check_err(rc2, &err);
    if ((rc == QC_OK) != (rc2 == QC_OK)) {
        fprintf(stderr, "fuzz: header %s but array %s\n", rc ? "refused" : "accepted",
                rc2 ? "refused" : "accepted");
        abort();
    }
    if (rc2 == QC_OK) {
        if (t.dtype != info.dtype || t.ndim != info.ndim) {
            fprintf(stderr, "fuzz: header and array disagree on dtype or rank\n");
            abort();
        }
        round_trip(&t);
        qc_tensor_free(&t);
    }
    rc = qc_npy_read_reuse(path, &reused, &err);
    fuzz_check_err(rc, &err);
    if (reused.data && reused.capacity > ((size_t)64 << 20))
        qc_tensor_free(&reused);    /* keep the process small */
    return 0;
}
