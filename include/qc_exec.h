/* The float reference executor. qc_exec_new() plans once (topological order, one kernel per
 * node, liveness); qc_exec_run() binds symbolic dims from the actual inputs, infers shapes
 * node by node and runs. Intermediate buffers return to a pool after their last consumer, so
 * peak memory tracks the live set. */
#ifndef QC_EXEC_H
#define QC_EXEC_H

#include "qc_model.h"

typedef struct qc_exec qc_exec;

/* Called after every node with its outputs (valid only during the call unless kept).
 * Return non-zero (an error code with err filled) to stop the run. */
typedef int (*qc_exec_hook)(void *user, const qc_node *node, int node_index,
                            const qc_tensor *const *outs, int n_outs, qc_err *err);

typedef struct qc_exec_opts {
    int keep_all;               /* keep every intermediate after the run (debug, tests) */
    int const_only;             /* run only nodes computable from initializers alone, keep
                                 * their outputs, take no inputs (constant folding) */
    int fuse;                   /* fold activations into their producer (Conv + SiLU; with
                                 * fuse_qdq also a QDQ model's quantized SiLU, Conv -> Q/DQ ->
                                 * Sigmoid -> Q/DQ -> Mul -> Q/DQ, the same values): faster,
                                 * but the tensors in between are never computed, so no hook
                                 * may need them */
    int profile;                /* time every step's kernel (qc_exec_node_seconds) */
    int fuse_exact;             /* with fuse: only the fusions that give every output the
                                 * unfused bits (elementwise chains), not Conv + SiLU, whose
                                 * epilogue computes the sigmoid its own way */
    int emulate_ort;            /* QDQ models: run the DQ -> op -> Q groups onnxruntime fuses
                                 * (Conv, MatMul, Sigmoid, Softmax, Add, Mul) as its integer
                                 * kernels round (src/exec/qfuse.c); the fused op's hook call
                                 * sees the Q's output. Ignored with keep_all or const_only */
    const char *const *keep;    /* n_keep value names kept after each run like graph outputs
                                 * (qc_exec_value), the rest freed at their last use: what
                                 * keep_all does for every value, for a few (read by
                                 * qc_exec_new only) */
    int n_keep;
    int cache_const;            /* compute nodes that depend on initializers alone (QDQ
                                 * models: the weights' DequantizeLinear) in the first run and
                                 * keep their outputs, so later runs skip them and kernels
                                 * cache what they derive from them (packed weights); the hook
                                 * sees those nodes in the first run only. Ignored with
                                 * keep_all or const_only */
    int fuse_qdq;               /* QDQ models: each QuantizeLinear read by one DequantizeLinear
                                 * with the same per-tensor 8-bit parameters runs with it as
                                 * one step, the same values without the integer tensor in
                                 * between (no hook call for the Q). Ignored with keep_all,
                                 * const_only or emulate_ort */
    const char *const *sum_only; /* n_sum_only node names: instead of computing the node's
                                 * output, its per-channel sums (output 0 summed over every
                                 * dim but dim 1, in double), read in the hook with
                                 * qc_exec_node_sums; the output's values are then left
                                 * unspecified for the hook to fill. Conv (1-D, 2-D) and Gemm
                                 * can; other nodes run as usual */
    int n_sum_only;
    const char *const *hooked;  /* n_hooked value names the hook reads as they are computed:
                                 * no fusion computes them away (unlike keep, they are freed
                                 * at their last use as usual); what a pass that observes a
                                 * few tensors fuses around (read by qc_exec_new only) */
    int n_hooked;
} qc_exec_opts;

/* `m` must outlive the executor. Fails with QC_EUNSUPPORTED naming op, node and opset. */
int  qc_exec_new(qc_exec **out, const qc_model *m, const qc_exec_opts *opts, qc_err *err);
void qc_exec_free(qc_exec *x);
void qc_exec_set_hook(qc_exec *x, qc_exec_hook hook, void *user);

/* inputs[i] feeds model input i (qc_model.inputs order); the data is copied in. */
int  qc_exec_run(qc_exec *x, const qc_tensor *inputs, int n_inputs, qc_err *err);
/* The same run in steps (not const_only): qc_exec_begin binds the inputs, qc_exec_step_to
 * runs the plan up to and including model node `node` (file index; an error if it is not
 * ahead), qc_exec_finish runs the rest; begin + finish is qc_exec_run. Lets one executor
 * follow another from the other's hook (bias correction). */
int  qc_exec_begin(qc_exec *x, const qc_tensor *inputs, int n_inputs, qc_err *err);
int  qc_exec_step_to(qc_exec *x, int node, qc_err *err);
int  qc_exec_finish(qc_exec *x, qc_err *err);
/* Plan position of model node `node` (file index), or -1 if it has none. */
int  qc_exec_node_pos(const qc_exec *x, int node);
/* Borrowed until the next run or qc_exec_free. */
int              qc_exec_n_outputs(const qc_exec *x);
const qc_tensor *qc_exec_output(const qc_exec *x, int i);
/* Any value by name after a run (NULL if freed or unknown); needs keep_all for internals. */
const qc_tensor *qc_exec_value(const qc_exec *x, const char *name);
/* With const_only: whether node i of the model (file index) was computed from constants. */
int              qc_exec_node_is_const(const qc_exec *x, int node_index);
/* Nodes folded into their producer by qc_exec_opts.fuse (they never run on their own). */
int              qc_exec_fused_nodes(const qc_exec *x);
/* In the hook of a sum_only node that was summed instead of run: its n_ch per-channel
 * sums; NULL otherwise (the node ran, its output holds the values). */
const double    *qc_exec_node_sums(const qc_exec *x, int *n_ch);
/* opts.profile: seconds spent in each node's kernel since the executor was made or
 * qc_exec_profile_reset, indexed by model node (file) index, n_nodes entries; a fused step
 * counts under the node that runs it (the others stay 0). NULL without opts.profile. */
const double    *qc_exec_node_seconds(const qc_exec *x);
void             qc_exec_profile_reset(qc_exec *x);
/* Number of completed qc_exec_run calls (tests count executor passes). */
int64_t          qc_exec_runs(const qc_exec *x);
/* The Sigmoid and Tanh kernels' value at x, the same bits (derived ranges,
 * src/quant/derived.c). */
float            qc_exec_sigmoid(float x);
float            qc_exec_tanh(float x);
/* Bytes of activation buffers currently allocated / at peak. */
size_t           qc_exec_peak_bytes(const qc_exec *x);

#endif
