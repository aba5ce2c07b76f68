/* Empirical bias correction (after the QDQ rewrite): the float model and the quantized model
 * run the same calibration samples; for every Conv/ConvTranspose/Gemm with a bias, the mean
 * per-output-channel difference of its output (quantized minus float, same tensor name in both
 * models) is subtracted from the bias. Quantization shifts those means systematically (rounded
 * weights, clipped activations), and downstream nonlinearities turn the shift into a bias of the
 * final outputs (e.g. detector scores too low). */
#ifndef QC_BIASCORR_H
#define QC_BIASCORR_H

#include "qc_data.h"
#include "qc_model.h"

typedef struct qc_biascorr_opts {
    int n_samples;      /* samples measured (first ones of the dataset), default 16; each
                         * node's error is measured with every upstream biased node's output
                         * replaced by the float one, so corrections do not compound */
    int n_verify;       /* the correction is kept only if the model's output SQNR against
                         * the float model rises by QC_BIASCORR_MARGIN_DB or more on the first
                         * n_verify measured samples; 0: always kept; default 8 */
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
