/* Resolves a node's op type to its kernel, once per node at plan time. */
#include <string.h>
#include "ops.h"

static const qc_op_def *const families[] = {
    qc_ops_elementwise, qc_ops_reduce, qc_ops_norm, qc_ops_shape, qc_ops_source,
    qc_ops_index, qc_ops_conv, qc_ops_gemm, qc_ops_pool, qc_ops_resize, qc_ops_qdq,
    qc_ops_rnn, qc_ops_space, qc_ops_nms, qc_ops_einsum, qc_ops_gridsample, qc_ops_misc,
};

const qc_op_def *qc_op_find(const char *domain, const char *op_type, int64_t opset)
{
    const qc_op_def *best = NULL;
    if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0)
        return NULL;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        for (const qc_op_def *d = families[f]; d && d->op_type; d++) {
            if (strcmp(d->op_type, op_type) != 0 || d->since_opset > opset)
                continue;
            if (!best || d->since_opset > best->since_opset)
                best = d;
        }
    }
    return best;
}

const qc_arity *qc_arity_find(const char *op_type, int64_t opset)
{
    int lo = 0, hi = qc_arity_count;        /* first row of op_type: rows sorted by name */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(qc_arity_table[mid].op_type, op_type) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const qc_arity *best = NULL;
    for (int i = lo; i < qc_arity_count && !strcmp(qc_arity_table[i].op_type, op_type); i++)
        if (qc_arity_table[i].since_opset <= opset)
            best = &qc_arity_table[i];
    return best;
}
