/* Private interface between the executor and the operator families (src/exec/ops_*.c). */
#ifndef QC_OPS_H
#define QC_OPS_H

#include "qc_exec.h"

typedef struct qc_run qc_run;

/* One planned node. in[i] is NULL for an omitted optional input. Before infer() runs, every
 * present input holds data; infer() must set dtype, ndim and dims of every out[i]; the
 * executor then allocates out[i]->data (nbytes from dtype and dims) and calls run(). */
typedef struct qc_knode {
    const qc_node   *node;
    int64_t          opset;     /* model opset of the node's domain */
    int              n_in, n_out;
    qc_tensor      **in;
    qc_tensor      **out;
    void            *state;     /* kernel-private, set by prepare(), freed by release() */
    int              act;       /* activation fused in by the planner (QC_ACT_*) */
    float            qact[2];   /* QC_ACT_QLUT: scale and uint8 zero point of the fake
                                 * quantization ... */
    float           *lut;       /* ... and the output for each of its 256 codes (owned) */
    uint32_t         const_in;  /* bit i: input i is an initializer (data never changes) */
    /* Conv with fuse_qdq (qc_iconv_mark): its input holds a per-tensor 8-bit fake
     * quantization's values (scale xs; xzp: the zero point as a uint8 code, +128 for int8)
     * and its weights dequantize int8 codes wq (per-tensor or per-output-channel scales wqs,
     * zero points 0), so the kernel may compute in integers. wq NULL: it may not. */
    const int8_t    *wq;
    const float     *wqs;
    int64_t          n_wqs;
    float            xs;
    int              xzp;
} qc_knode;

/* Activations the planner folds into the producing kernel (only when no hook or keep_all
 * needs the tensors in between): Conv -> x * Sigmoid(x); in a QDQ model with fuse_qdq, a
 * Conv's fake quantization and the elementwise nodes computed from its output alone
 * (QC_ACT_QLUT: the kernel computes the code and looks the result up in a 256-entry table the
 * planner filled with those nodes' kernels, qfuse.c; the same bits). */
enum { QC_ACT_NONE = 0, QC_ACT_SILU = 1, QC_ACT_QLUT = 2 };

static inline int qc_knode_input_is_const(const qc_knode *n, int i)
{
    return i < 32 && (n->const_in >> i & 1u);
}

typedef struct qc_op_def {
    const char *op_type;
    int         since_opset;    /* the def with the largest since_opset <= model opset wins */
    int  (*infer)(qc_knode *n, qc_err *err);
    int  (*run)(qc_knode *n, qc_run *r, qc_err *err);
    /* optional: plan-time checks/precomputation (attributes only; no input data yet) */
    int  (*prepare)(qc_knode *n, qc_err *err);
    void (*release)(qc_knode *n);
    /* optional (qc_exec_opts.sum_only): the sum of output 0 over every dim but dim 1, per
     * index of dim 1, into sums, without computing the output. Returns 1 when it cannot
     * for this node's shapes (the node then runs). */
    int  (*sums)(const qc_knode *n, double *sums, qc_err *err);
} qc_op_def;

/* How many inputs/outputs a node of an ONNX operator version must have (src/exec/arity.c,
 * generated from the onnx package's schemas by tools/gen_arity.py). */
typedef struct qc_arity {
    const char *op_type;
    int         since_opset;
    int         min_in, max_in;
    int         n_formal;       /* formal inputs; later inputs belong to the last (variadic) */
    unsigned    optional;       /* bit i: formal input i may be omitted (empty name) */
    int         min_out;
} qc_arity;

extern const qc_arity qc_arity_table[];
extern const int qc_arity_count;

/* The schema of op_type (default domain) at `opset`, or NULL when onnx has none. */
const qc_arity *qc_arity_find(const char *op_type, int64_t opset);

/* Per-run scratch memory (e.g. im2col), reused across nodes; valid until the next call. */
void *qc_run_scratch(qc_run *r, size_t nbytes, qc_err *err);

/* All matrix products go through here (row-major C = alpha*op(A)*op(B) + beta*C). */
void qc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
              float *c, int64_t ldc);

/* Input i, or NULL when omitted or past the node's inputs. */
static inline const qc_tensor *qc_opt_in(const qc_knode *n, int i)
{
    return i < n->n_in ? n->in[i] : NULL;
}

/* QC_EUNSUPPORTED naming the node and dtype unless t is of an executable dtype. */
int qc_need_exec(const qc_knode *n, const qc_tensor *t, qc_err *err);

/* Error helpers that name the node. */
int qc_node_errf(const qc_knode *n, qc_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Shape helpers for infer(). */
void qc_set_shape(qc_tensor *t, int dtype, int ndim, const int64_t *dims);
void qc_copy_shape(qc_tensor *dst, const qc_tensor *src); /* dtype too */
/* Normalizes a possibly negative axis against rank; QC_EINPUT if out of range. */
int  qc_norm_axis(const qc_knode *n, int64_t axis, int rank, int *out, qc_err *err);

/* Copies an ndim strided view of src (element strides sstr, element size es) into dense dst. */
void qc_strided_copy(void *dst, const void *src, int ndim, const int64_t *dims,
                     const int64_t *sstr, size_t es);

/* Family tables, each ending with a zeroed entry; registry.c lists them. */
extern const qc_op_def qc_ops_elementwise[];
extern const qc_op_def qc_ops_reduce[];
extern const qc_op_def qc_ops_norm[];
extern const qc_op_def qc_ops_shape[];
extern const qc_op_def qc_ops_source[];
extern const qc_op_def qc_ops_index[];
extern const qc_op_def qc_ops_conv[];
extern const qc_op_def qc_ops_gemm[];
extern const qc_op_def qc_ops_pool[];
extern const qc_op_def qc_ops_resize[];
extern const qc_op_def qc_ops_qdq[];
extern const qc_op_def qc_ops_rnn[];
extern const qc_op_def qc_ops_space[];
extern const qc_op_def qc_ops_nms[];
extern const qc_op_def qc_ops_einsum[];
extern const qc_op_def qc_ops_gridsample[];
extern const qc_op_def qc_ops_misc[];

const qc_op_def *qc_op_find(const char *domain, const char *op_type, int64_t opset);

#endif
