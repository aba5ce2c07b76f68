/* Empirical bias correction (after the QDQ rewrite): the float model and the quantized model
 * run the same calibration samples; for every Conv/ConvTranspose/Gemm with a bias, the mean
 * per-output-channel difference of its output (quantized minus float, same tensor name in both
 * models) is subtracted from the bias. Quantization shifts those means systematically (rounded
 * weights, clipped activations), and downstream nonlinearities turn the shift into a bias of the
 * final outputs (e.g. detector scores too low). */
#ifndef QC_BIASCORR_H
#define QC_BIASCORR_H

#include "qc_data.h"
#include "qc_exec.h"
#include "qc_model.h"

/* The float values bias correction reads, kept by the calibration pass as it computes them,
 * so that measuring runs only the quantized model: for each of samples 0..n-1, the outputs
 * of the float model's biased Conv/ConvTranspose/Gemm nodes and the model outputs. Copies of
 * the pass's values, so the same bits as a float run of the sample. All or nothing: when the
 * samples would not all fit the byte budget (the first one done tells), nothing is kept and
 * bias correction runs the float model itself, as without a stash. The pass fills different
 * samples from different threads. */
typedef struct qc_bc_stash qc_bc_stash;

/* calibrate's budget: nudenet's 16 bias samples (14.3 MB each) fit, ddddocr's (38 MB) not */
#define QC_BC_STASH_BUDGET ((size_t)256 << 20)

int  qc_bc_stash_new(qc_bc_stash **out, const qc_model *float_m, int n_samples, size_t budget,
                     qc_err *err);
void qc_bc_stash_free(qc_bc_stash *s);
/* The values it keeps (for qc_exec_opts.hooked: no fusion may compute them away). */
int  qc_bc_stash_names(const qc_bc_stash *s, const char *const **names);
/* From the pass executor's hook while sample `sample` runs (any sample: others are
 * ignored); then, after a successful run, qc_bc_stash_done with the executor for the
 * outputs. Neither fails: what does not fit is not kept. */
void qc_bc_stash_node(qc_bc_stash *s, int sample, int node_index,
                      const qc_tensor *const *outs, int n_outs);
void qc_bc_stash_done(qc_bc_stash *s, int sample, const qc_exec *x);
/* Whether sample i is complete: qc_bc_stash_value and qc_bc_stash_output give its values. */
int  qc_bc_stash_has(const qc_bc_stash *s, int i);
/* Index of value `name` (-1 if not kept); its value in sample i; output j of sample i. */
int  qc_bc_stash_find(const qc_bc_stash *s, const char *name);
const qc_tensor *qc_bc_stash_value(const qc_bc_stash *s, int i, int k);
const qc_tensor *qc_bc_stash_output(const qc_bc_stash *s, int i, int j);
/* Bytes kept (0 once it gave up). */
size_t qc_bc_stash_bytes(const qc_bc_stash *s);

typedef struct qc_biascorr_opts {
    int n_samples;      /* samples measured (first ones of the dataset), default 16; each
                         * node's error is measured with every upstream biased node's output
                         * replaced by the float one, so corrections do not compound */
    int n_verify;       /* the correction is kept only if the model's output SQNR against
                         * the float model rises by QC_BIASCORR_MARGIN_DB or more on the first
                         * n_verify measured samples; 0: always kept; default 8 */
    const qc_bc_stash *stash; /* float values of the samples a calibration pass kept (for the
                               * same float model and data set), or NULL: default */
} qc_biascorr_opts;

#define QC_BIASCORR_MARGIN_DB  0.5
/* the same as text, for messages: spelled out from the one number */
#define QC_BIASCORR_STR_(x)    #x
#define QC_BIASCORR_STR(x)     QC_BIASCORR_STR_(x)
#define QC_BIASCORR_MARGIN_STR QC_BIASCORR_STR(QC_BIASCORR_MARGIN_DB)

void qc_biascorr_opts_default(qc_biascorr_opts *o);

typedef struct qc_biascorr_stats {
    int    n_nodes;         /* biases corrected */
    int    n_samples;       /* samples measured (NaN/Inf samples are skipped) */
    int    n_stashed;       /* of them, measured with the float values of opts.stash */
    double mean_abs;        /* mean |per-channel output error| over corrected nodes: the mean
                             * |bias shift| */
    int    n_clamped;       /* int32 bias values held at the int32 limit */
    int    applied;         /* 1: *out is the corrected model; 0: verification rejected it */
    int    n_verify;        /* samples the verification ran on (0: none) */
    double sqnr_before, sqnr_after; /* output SQNR (dB, outputs pooled) on them, without and
                                     * with the correction */
} qc_biascorr_stats;

/* float_m: the (prepared) float model the QDQ model q was built from; d: a dataset opened on
 * float_m (same inputs as q). *out receives a new model (q is untouched), or NULL when the
 * verification rejected the correction (stats->applied 0: keep q); stats may be NULL.
 * Errors name the node or the sample. */
int qc_bias_correct(const qc_model *float_m, const qc_model *q, qc_dataset *d,
                    const qc_biascorr_opts *o, qc_model **out, qc_biascorr_stats *stats,
                    qc_err *err);

#endif
