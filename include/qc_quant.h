/* Static quantization: choose the tensors to quantize, observe activations while the float
 * executor runs the calibration data, turn ranges into scales and rewrite the graph with
 * QuantizeLinear/DequantizeLinear in the patterns ONNX Runtime fuses into integer kernels. */
#ifndef QC_QUANT_H
#define QC_QUANT_H

#include "qc_exec.h"
#include "qc_observer.h"

typedef struct qc_quant_opts {
    const char *method;         /* observer for activations: minmax|ema|percentile|mse|entropy */
    int   per_channel;          /* weights per output channel */
    int   symmetric_act;        /* default 0: asymmetric activations */
    int   symmetric_w;          /* default 1 */
    int   act_dtype;            /* QC_U8 (default), QC_I8 or QC_I16 */
    int   reduce_range;         /* 7-bit ranges for x86 without VNNI */
    int   pair_guard;           /* default 1: int8 weight pairs onnxruntime's x86 kernels
                                 * without VNNI add in 16 bits cannot saturate them
                                 * (src/quant/pairguard.c) */
    int   concat_share;         /* default 1: a quantized Concat's inputs take its output's
                                 * range, so onnxruntime copies them instead of requantizing
                                 * (src/quant/concat_share.c) */
    int   bias_float;           /* keep Conv/Gemm biases float instead of int32 */
    float percentile;           /* default 99.999 */
    float ema_constant;         /* default 0.01 */
    int   bins;                 /* histogram bins, default 2048 */
    const char *exclude;        /* comma-separated node names left in float */
    const char *op_types;       /* comma-separated op types to quantize; NULL = default set */
    int   external_ranges;      /* activation ranges come from qc_quantizer_set_range (compare,
                                 * doctor), computed for `method` elsewhere: the quantizer's
                                 * own observers, never fed, are the smallest kind (min/max) */
} qc_quant_opts;

void qc_quant_opts_default(qc_quant_opts *o);

/* One quantized tensor, as reported and saved in the params JSON. Channel arrays have
 * n_channels entries (1 when per-tensor). */
typedef struct qc_qtensor_info {
    const char *name;
    const char *kind;           /* "activation", "weight", "bias", "constant" */
    const char *method;         /* observer name, "minmax" for weights, "shared" for data
                                 * movement outputs, "derived" for biases */
    const char *shared_with;    /* tensor whose parameters it reuses, or NULL */
    const char *derived_from;   /* activation whose ranges are this tensor's input's carried
                                 * through a monotone map (src/quant/derived.c): that input,
                                 * or NULL */
    int         dtype;          /* quantized dtype */
    int         axis;           /* -1 per-tensor */
    int         n_channels;
    const float *obs_lo, *obs_hi;   /* observed range */
    const float *lo, *hi;           /* chosen range (after clipping by the method) */
    const float *scale;
    const int32_t *zero_point;
    int64_t     nonfinite;      /* NaN/Inf values skipped by the observer */
    int         rank;           /* activations: rank seen during calibration */
    int         guard_moved;    /* weights: scale groups (channels) whose scale the pair guard
                                 * widened (src/quant/pairguard.c) */
    const char *concat_group;   /* activations sharing a Concat group's range
                                 * (src/quant/concat_share.c): the group's representative */
    float       own_lo, own_hi; /* with concat_group: the range it had before */
} qc_qtensor_info;

typedef struct qc_quantizer qc_quantizer;

/* Plans quantization of model m (prepared: constants folded). m must outlive q. */
int  qc_quantizer_new(qc_quantizer **out, const qc_model *m, const qc_quant_opts *o,
                      qc_err *err);
void qc_quantizer_free(qc_quantizer *q);
/* The executor options for a calibration pass feeding q (before the pass; on every shard's
 * quantizer): the tensors its hook reads (qc_exec_opts.hooked) and fusion around them. Decides
 * which tensors take ranges derived from their input's observation instead of their own
 * (src/quant/derived.c). The arrays belong to q. Without this call every tensor is observed
 * and an executor made without options serves. */
int  qc_quantizer_pass_opts(qc_quantizer *q, qc_exec_opts *o, qc_err *err);
/* Installs the observation hook on an executor planned on the same model. */
void qc_quantizer_attach(qc_quantizer *q, qc_exec *x);
/* The hook itself, for callers that feed several quantizers from one executor pass (same
 * signature as qc_exec_hook with the quantizer as user). */
int  qc_quantizer_observe(qc_quantizer *q, const qc_node *node, int node_index,
                          const qc_tensor *const *outs, int n_outs, qc_err *err);
/* Folds the observations of `other` (planned on the same model with the same options, fed
 * other samples) into q, as if q had seen them: exact for every method but ema (whose merge
 * weights the two states, see qc_observer_merge, unless the shards recorded through
 * qc_ema_log.h). For sample-parallel passes (qc_pass.h). */
int  qc_quantizer_merge(qc_quantizer *q, const qc_quantizer *other, qc_err *err);
/* The observer of tensor i (0 <= i < qc_quantizer_n_tensors), NULL if it has none: an exact
 * sample-parallel EMA pass records through them (qc_ema_log.h) before merging. */
qc_observer *qc_quantizer_observer(qc_quantizer *q, int i);
/* Graph inputs are not produced by a node: feed each sample's inputs here too. */
int  qc_quantizer_observe_inputs(qc_quantizer *q, const qc_tensor *inputs, int n, qc_err *err);
/* Uses a saved range for activation `name` instead of observing it (--params-in): `range` is
 * the chosen clipping range, `seen` the raw observed one (reporting), `rank` its rank.
 * Returns 1 if the tensor is one this quantizer would observe, 0 otherwise. */
int  qc_quantizer_set_range(qc_quantizer *q, const char *name, qc_range range, qc_range seen,
                            int rank);
/* Computes every range and scale (after all samples ran), then builds the QDQ model. */
int  qc_quantizer_build(qc_quantizer *q, qc_model **out, qc_err *err);

/* After build: what was quantized. Borrowed until qc_quantizer_free. */
int  qc_quantizer_n_tensors(const qc_quantizer *q);
int  qc_quantizer_tensor(const qc_quantizer *q, int i, qc_qtensor_info *info);
/* The index of tensor `name` for qc_quantizer_tensor, -1 if the quantizer has none. */
int  qc_quantizer_find(const qc_quantizer *q, const char *name);
int  qc_quantizer_n_quantized_nodes(const qc_quantizer *q);
/* Whether q's int8 weights take the pair guard (qc_quant_opts.pair_guard, symmetric int8
 * weights, uint8 activations, full range). */
int  qc_quant_pair_guarded(const qc_quantizer *q);
/* After qc_quantizer_build: Concat inputs and outputs that took their group's shared range,
 * and members of such groups that kept their own (read elsewhere, much narrower). */
void qc_quant_concat_counts(const qc_quantizer *q, int *shared, int *own);
/* Nodes left in float: the i-th one's name, op and reason. Returns 0 past the end. */
int  qc_quantizer_float_node(const qc_quantizer *q, int i, const char **name,
                             const char **op_type, const char **why);
/* The nodes left in float grouped by op type and reason, in order of first appearance. */
typedef struct qc_float_group {
    const char *op_type, *why;
    const char *example;        /* the group's first node */
    int         count;
} qc_float_group;
/* *groups (the caller frees it; NULL when there are none) and their number; -1 when out of
 * memory. */
int  qc_quantizer_float_groups(const qc_quantizer *q, qc_float_group **groups);

#endif
