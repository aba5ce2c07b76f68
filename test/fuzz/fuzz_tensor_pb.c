/* libFuzzer target: ONNX TensorProto bytes -> qc_tensor_parse_pb (raw_data, typed fields,
 * F16/BF16/F64 conversion; external data refused). */
#include "fuzz_util.h"
#include "qc_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qc_tensor t = { 0 };
    char *name = NULL;
    qc_err err = { 0 };
    int rc = qc_tensor_parse_pb(&t, &name, data, size, "fuzz.pb", &err);
    fuzz_check_err(rc, &err);
    if (rc == QC_OK) {
        size_t n = qc_tensor_nbytes(&t);
        if (!t.data || t.capacity < n || qc_dtype_size(t.dtype) == 0) {
            fprintf(stderr, "fuzz: parsed tensor is inconsistent (dtype %d, %zu of %zu "
                    "bytes)\n", t.dtype, t.capacity, n);
            abort();
        }
        volatile unsigned char sum = 0;     /* touch every byte: ASan checks the extent */
        for (size_t i = 0; i < n; i++)
            sum ^= ((unsigned char *)t.data)[i];
        (void)sum;
    }
    qc_tensor_free(&t);
    free(name);
    return 0;
}
