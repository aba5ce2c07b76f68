/* libFuzzer target: what `calibrate` does to a model before any data is read, qc_prepare
 * (constant folding runs the executor's kernels on the file's initializers and attributes,
 * BatchNorm folding, the edit + re-parse of the result). A hostile model reaches these
 * kernels without any calibration data. Seeds: the model target's. */
#include "fuzz_util.h"
#include "qc_model.h"
#include "qc_prepare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qc_model *m = NULL, *p = NULL;
    qc_err err = { 0 };
    qc_prep_report rep;
    int rc = qc_model_load_bytes(&m, data, size, NULL, "fuzz.onnx", &err);
    fuzz_check_err(rc, &err);
    if (rc != QC_OK)
        return 0;
    rc = qc_prepare(m, &p, &rep, &err);
    fuzz_check_err(rc, &err);
    qc_model_free(p);
    qc_model_free(m);
    return 0;
}
