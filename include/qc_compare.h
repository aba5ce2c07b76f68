/* Comparing calibration strategies in one run (`calibrate compare`).
 *
 * One float pass over the calibration data feeds every candidate: the candidates' activation
 * ranges come from observers shared by all candidates that can use the same state (one
 * minmax, one per EMA constant, one signed and one |x| histogram per bin count: percentile
 * at any p, mse and entropy all read the same histogram), then each candidate's quantizer gets
 * its ranges through qc_quantizer_set_range() and builds its QDQ model. The models are those
 * `calibrate --method M ...` writes with the same data, byte for byte.
 *
 * Evaluation runs each QDQ model in qcal's executor against the float model on held-out
 * samples: output SQNR, cosine similarity, max abs error, top-1 agreement of classifier-like
 * outputs ([N, C], C > 1), and per quantized activation tensor T the SQNR of the quantized
 * model's DequantizeLinear output of T against the float model's T, and the saturation rate
 * of T (fraction of the float values outside the range the quantization grid represents).
 *
 * Memory: the float model runs once per eval sample with every intermediate kept (one
 * sample's activations); when every candidate's model and executor fit in the budget they all
 * run on that sample (the float pass is shared: "sample-major"); otherwise one candidate is
 * built, evaluated and freed at a time and the float pass is repeated for each
 * ("candidate-major"). Nothing grows with the number of samples. Sample-major with
 * QC_THREADS > 1 runs whole candidate runs side by side on threads (each single-threaded;
 * a second float executor lets the next sample's float pass overlap): every candidate still
 * sees its samples in order, so the results are the same bits at any thread count.
 *
 * `--method auto` (an "auto" candidate), sensitivity and mixed precision are at the end of
 * this header (compare_auto.c, compare_sens.c); an HTML report renders the same results. */
#ifndef QC_COMPARE_H
#define QC_COMPARE_H

#include "qc_data.h"
#include "qc_quant.h"

/* ---- metrics (src/quant/metrics.c): small pure functions ---- */

/* Error of `got` against a float reference, accumulated over any number of tensors. Pairs
 * whose reference is not finite are skipped; a non-finite `got` against a finite reference is
 * counted in `nonfinite` and makes the error infinite. */
typedef struct qc_errstat {
    double  ref2, got2, dot, err2;  /* sums of r^2, g^2, r g, (g - r)^2 */
    double  max_abs;                /* max |g - r| */
    int64_t n;                      /* pairs counted */
    int64_t nonfinite;
    int64_t top1_rows, top1_agree;  /* classifier-like outputs: rows compared, argmax equal */
} qc_errstat;

void    qc_errstat_add(qc_errstat *s, const float *ref, const float *got, int64_t n);
/* Rows of `cols` scores: counts rows whose argmax (first maximum) agree. */
void    qc_errstat_add_top1(qc_errstat *s, const float *ref, const float *got, int64_t rows,
                            int64_t cols);
/* 10 log10(sum r^2 / sum (g - r)^2): +inf when the error is 0 (also when both are 0), -inf
 * when the signal is 0 but the error is not, or a value was non-finite. */
double  qc_errstat_sqnr_db(const qc_errstat *s);
/* sum r g / sqrt(sum r^2 sum g^2): 1 when both are all zero, 0 when only one is; NaN when
 * nothing was counted or a value was non-finite. */
double  qc_errstat_cosine(const qc_errstat *s);
/* Fraction of rows with the same argmax; NaN when no rows were compared. */
double  qc_errstat_top1(const qc_errstat *s);
/* Index of the first maximum of x[0..n) (NaN never wins); -1 if n <= 0. */
int64_t qc_argmax(const float *x, int64_t n);

/* One-shot forms of the above over a single pair of arrays. */
double  qc_metric_sqnr_db(const float *ref, const float *got, int64_t n);
double  qc_metric_cosine(const float *ref, const float *got, int64_t n);
double  qc_metric_max_abs(const float *ref, const float *got, int64_t n);
double  qc_metric_top1(const float *ref, const float *got, int64_t rows, int64_t cols);

/* Per-layer accumulation (the hot loop of evaluation): sums r^2 and (g - r)^2 over finite
 * references, and counts the references outside [lo, hi] (saturated by the quantizer). */
typedef struct qc_layerstat {
    double  ref2, err2;
    int64_t n, saturated, nonfinite;
} qc_layerstat;

void    qc_layerstat_add(qc_layerstat *s, const float *ref, const float *got, int64_t n,
                         float lo, float hi);
/* Block b of QC_LAYERSTAT_BLOCK values into part[b] (zeroed first), n_blocks blocks: adding
 * them to s in block order, each as qc_layerstat_add would have (a block with a non-finite
 * value redone by it), gives qc_layerstat_add's bits (blocks computed in parallel). */
#define QC_LAYERSTAT_BLOCK 512
void    qc_layerstat_blocks(qc_layerstat *part, const float *ref, const float *got,
                            int64_t n_blocks, float lo, float hi);
double  qc_layerstat_sqnr_db(const qc_layerstat *s);

/* ---- candidates ---- */

enum { QC_CMP_NO = 0, QC_CMP_YES = 1, QC_CMP_BOTH = 2, QC_CMP_DEFAULT = 3 };
enum { QC_METRIC_SQNR = 0, QC_METRIC_COSINE = 1, QC_METRIC_TOP1 = 2 };

typedef struct qc_cand {
    char          name[64];         /* "percentile 99.99 pc", "minmax pt sym" */
    char          percentile[16];   /* percentile: o.percentile as the shortest text that
                                     * reads back as the same float; "" otherwise */
    qc_quant_opts o;                /* exactly the options of the equivalent `calibrate` */
    float         clip_weight;      /* method "auto": weight of the clipping error against the
                                     * rounding error in its local cost (1: plain MSE) */
} qc_cand;

typedef struct qc_compare_grid {
    const char *methods;            /* comma list; NULL: minmax,ema,percentile,mse,entropy */
    const char *percentiles;        /* comma list; NULL: 99.9,99.99,99.999 */
    int per_channel;                /* QC_CMP_*; DEFAULT: per-channel, plus per-tensor
                                     * variants of minmax and of the highest percentile */
    int symmetric_act;              /* QC_CMP_NO (default), QC_CMP_YES, QC_CMP_BOTH */
    int auto_mode;                  /* QC_AUTO_*: "auto" candidates (--method auto) */
} qc_compare_grid;

/* auto_mode: no auto candidate (0), one per activation symmetry after the grid, or only
 * auto (what `calibrate --method auto` builds). */
enum { QC_AUTO_NONE = 0, QC_AUTO_ADD = 1, QC_AUTO_ONLY = 2 };

/* Candidates of the grid, every other option taken from `base` (activation type, bins, EMA
 * constant, exclusions...). *out is malloc'd (free()). QC_EUSAGE naming a bad list entry. */
int qc_compare_make_grid(const qc_quant_opts *base, const qc_compare_grid *g, qc_cand **out,
                         int *n, qc_err *err);

/* ---- the comparison ---- */

typedef struct qc_layer_result {
    const char *name;               /* the float tensor (prepared model's arena) */
    double      sqnr_db;            /* DequantizeLinear output vs float tensor, eval set */
    double      saturation;         /* fraction of float values outside [clip_lo, clip_hi] */
    float       clip_lo, clip_hi;   /* (qmin - zp) scale, (qmax - zp) scale */
    float       lo, hi;             /* range chosen by the method (before the zero widening) */
    int64_t     n;                  /* values compared */
} qc_layer_result;

typedef struct qc_output_result {
    const char *name;
    int         classifier;         /* [N, C] with C > 1: top-1 counted */
    qc_errstat  st;
} qc_output_result;

typedef struct qc_cand_result {
    const qc_cand *cand;
    /* over the float outputs: worst SQNR, worst cosine, largest max abs error; top-1 pooled
     * over classifier-like outputs (NaN if none) */
    double sqnr_db, cosine, max_abs, top1;
    int    n_outputs;
    qc_output_result *outputs;
    int    n_layers;
    qc_layer_result *layers;
    int    worst_layer;             /* lowest layer SQNR, -1 if no layer */
    int    n_quantized_nodes, n_float_nodes;
    int    n_eval;                  /* eval samples evaluated */
    int    n_layer_eval;            /* of those, the first ones behind the per-layer figures */
    double build_seconds, eval_seconds;
} qc_cand_result;

typedef struct qc_compare qc_compare;

/* Plans the candidates on model m (prepared; must outlive c). Creates one quantizer per
 * candidate and one float executor for calibration. */
int  qc_compare_new(qc_compare **out, const qc_model *m, const qc_cand *cands, int n_cands,
                    qc_err *err);
void qc_compare_free(qc_compare *c);

/* The calibration samples, one float pass each that feeds every candidate, as a
 * sample-parallel pass (qc_pass.h): `jobs` shards, each with its own float executor and
 * observers (one more set of both per shard), merged into c after the pass; the EMA observers
 * record and are replayed in sample order (qc_ema_log.h). c ends as after a serial pass over
 * the samples in order, bit for bit, at any jobs. */
typedef struct qc_compare_feed {
    void *user;
    int   n;                        /* samples 0..n-1 */
    int   jobs;                     /* shards (< 1: 1; at most n are used) */
    /* Sample i's inputs for shard `shard` (each shard reads its own view of the data; the
     * inputs stay valid until the shard's next load): QC_OK, 1 to skip the sample, or an
     * error. Called concurrently for different shards. */
    int  (*load)(void *user, int shard, int i, qc_tensor **inputs, qc_err *err);
    /* Optional: sample i failed while observed (e.g. to prefix err with its name). */
    void (*failed)(void *user, int i, qc_err *err);
    /* Optional, under the pass's lock after each sample (status 0 done, 1 skipped). */
    void (*after)(void *user, int i, int status, int n_finished);
} qc_compare_feed;

int  qc_compare_observe_pass(qc_compare *c, const qc_compare_feed *f, int *used, int *skipped,
                             qc_err *err);

typedef void (*qc_compare_progress_fn)(void *user, int64_t done, int64_t total);

typedef struct qc_compare_eval_opts {
    int     metric;                 /* QC_METRIC_*: which model qc_compare_best_model keeps */
    size_t  max_bytes;              /* memory budget of sample-major evaluation; 0: 1 GiB */
    int     force_schedule;         /* 0 auto, 1 sample-major, 2 candidate-major (tests) */
    int     strict;                 /* an eval sample with NaN/Inf is an error, not skipped */
    int     layer_samples;          /* per-layer statistics from each candidate's first N
                                     * evaluated samples (0: all); the output metrics always
                                     * come from every sample */
    qc_compare_progress_fn progress;
    void   *progress_user;
} qc_compare_eval_opts;

/* Builds every candidate (after the calibration pass; once) and evaluates it on samples
 * idx[0..n) of d (a sample with NaN/Inf in a float input is skipped and counted, or with
 * o->strict is QC_EINPUT naming it). */
int  qc_compare_evaluate(qc_compare *c, qc_dataset *d, const int *idx, int n,
                         const qc_compare_eval_opts *o, qc_err *err);

int                   qc_compare_n(const qc_compare *c);
const qc_cand_result *qc_compare_result(const qc_compare *c, int i);
/* Candidate i's quantizer (what was quantized, scales...). Its ranges were given through
 * qc_quantizer_set_range, so qc_qtensor_info.method reads "minmax": the candidate's method is
 * in qc_cand_result.cand. */
const qc_quantizer   *qc_compare_quantizer(const qc_compare *c, int i);
/* Candidate indices, best first by `metric` (ties: higher SQNR, then grid order). */
void qc_compare_rank(const qc_compare *c, int metric, int *order);
/* The best candidate's model by the evaluation's metric (borrowed until qc_compare_free). */
const qc_model *qc_compare_best_model(const qc_compare *c, int *index);

typedef struct qc_compare_stats {
    int64_t float_passes;           /* float executor runs over the calibration data */
    int64_t eval_float_passes;      /* float executor runs over the eval data */
    int64_t quant_passes;           /* quantized model runs (all candidates) */
    int     n_eval, eval_skipped;   /* eval samples used / skipped (NaN/Inf) */
    int     n_observed;             /* activation tensors observed */
    int     n_observer_groups;      /* observers per tensor (shared state kinds) */
    int     sample_major;           /* schedule used */
    size_t  observer_bytes;         /* state of the shared observers */
    size_t  float_peak_bytes;       /* float executor activations at peak (calibration) */
    size_t  eval_peak_bytes;        /* float eval executor, every intermediate kept */
} qc_compare_stats;

void qc_compare_get_stats(const qc_compare *c, qc_compare_stats *s);

/* ---- observed tensors, read-only (reports) ---- */

/* One observed activation and its calibration histogram: the shared signed one when a
 * candidate histograms x, else the |x| one (entropy, symmetric candidates); counts is NULL
 * when no candidate uses a histogram (minmax and ema only) or the tensor was never seen as
 * float. Bin b covers [edge0 + b width, edge0 + (b + 1) width). Borrowed until the next
 * qc_compare_observe_pass or qc_compare_free. */
typedef struct qc_compare_hist {
    const char     *name;           /* prepared model's arena */
    int             producer;       /* node index, -1 for a graph input */
    int             absval;         /* histogram of |x| (the axis, also without counts) */
    int             nbins;          /* 0 when counts is NULL */
    double          edge0, width;
    const uint64_t *counts;
    uint64_t        total;          /* finite values seen */
    float           seen_lo, seen_hi;   /* raw min / max (0, 0 if none) */
} qc_compare_hist;

/* Observed activations, in graph order (graph inputs first, then node outputs). */
int qc_compare_n_tensors(const qc_compare *c);
/* QC_OK and *h for tensor i (0 <= i < qc_compare_n_tensors), QC_EUSAGE otherwise. */
int qc_compare_tensor_hist(const qc_compare *c, int i, qc_compare_hist *h, qc_err *err);

/* ---- --method auto (src/quant/compare_auto.c) ----
 *
 * The "auto" candidate chooses each activation's range separately: every range the single
 * methods would give the tensor (minmax, ema, percentile 99.9 / 99.99 / 99.999, mse,
 * entropy, from the shared observers) is costed on the tensor's calibration histogram as the
 * expected squared error of quantize-dequantize with that range's actual scale and zero
 * point: rounding error step^2 / 12 for the values inside the representable interval plus
 * clip_weight times the squared distance of the values outside it (each bin's values spread
 * uniformly over the bin); the cheapest range wins. Each weight (Conv, Gemm, MatMul) is
 * quantized per channel or per tensor, whichever gives the smaller squared weight error (the
 * layer output error for uncorrelated inputs is that error times E[x^2], the same factor for
 * both). The output confirms it: auto is evaluated like every other candidate. */
#define QC_AUTO_CLIP_WEIGHT 1.0f

typedef struct qc_auto_info {
    int            n_options;       /* ranges chosen among */
    const qc_cand *options;         /* their single-method candidates (activations only) */
    const int     *option_tensors;  /* tensors that chose each option */
    int            n_tensors;       /* activation tensors observed */
    const char *const *tensor;      /* their names (prepared model) */
    const int     *choice;          /* option per tensor, -1 if it got no range */
    const double  *cost;            /* expected squared error per value of the chosen range */
    int            n_weights;       /* weights that could be per channel */
    int            n_weights_per_tensor;   /* of which auto quantizes per tensor */
} qc_auto_info;

/* Candidate i's choices (after qc_compare_evaluate or qc_compare_build_one); 0 if candidate
 * i is not an auto candidate, 1 if *info was filled (borrowed until qc_compare_free). */
int qc_compare_auto_info(const qc_compare *c, int i, qc_auto_info *info);

/* Builds candidate i's model without evaluating anything (after the calibration pass;
 * then qc_compare_evaluate can no longer run): `calibrate --method auto`. *out is
 * borrowed until qc_compare_free. */
int qc_compare_build_one(qc_compare *c, int i, const qc_model **out, qc_err *err);

/* ---- sensitivity and mixed precision (src/quant/compare_sens.c) ----
 *
 * The sensitivity of a node is the output SQNR of candidate `base` with only that node left
 * in float (--exclude NODE), on samples the caller gives: calibration samples, so that the
 * eval set stays held out for the mixed-precision check. Leaving one node in float and
 * quantizing one node alone cost the same (one model per node); the first measures directly
 * what mixed precision buys, so nodes go float in the order of the SQNR they recover.
 * Data-movement nodes (Reshape, Transpose, MaxPool...) reuse their input's scale and are
 * not measured: they come last in the order. */
typedef struct qc_sens_layer {
    const char *node, *op_type;     /* prepared model's arena */
    double      sqnr_db;            /* output SQNR with this node float; NaN: not measured */
} qc_sens_layer;

/* Measures every quantized node of candidate `base` (after qc_compare_evaluate) on samples
 * idx[0..n) of d (NaN/Inf samples skipped). */
int  qc_compare_sensitivity(qc_compare *c, int base, qc_dataset *d, const int *idx, int n,
                            qc_err *err);
int  qc_compare_n_sens(const qc_compare *c);
/* Most sensitive first (highest SQNR when left float); NULL past the end. */
const qc_sens_layer *qc_compare_sens(const qc_compare *c, int i);
/* The base candidate's output SQNR on the sensitivity samples, its index. */
double qc_compare_sens_base(const qc_compare *c, int *base);

typedef struct qc_mixed_result {
    int     n_float;                /* nodes left in float, the most sensitive first */
    const char *const *float_nodes;
    double  target_db;              /* NaN with keep_float */
    int     reached;                /* sqnr_db >= target_db */
    double  sqnr_db, cosine, max_abs, top1;     /* on the eval samples, as qc_cand_result */
    double  base_sqnr_db;           /* the base candidate, same samples */
    int     n_eval, n_models;       /* eval samples; mixed models evaluated */
    const qc_model *model;          /* the mixed QDQ model (borrowed until qc_compare_free) */
} qc_mixed_result;

/* After qc_compare_sensitivity. keep_float >= 0: that many of the most sensitive nodes float.
 * keep_float < 0: the fewest reaching target_db on eval samples idx[0..n): counts 1, 2, 4...
 * until one reaches it, then bisection below it (each probe is a full evaluation; the answer
 * was measured to reach the target, or it is all nodes float, which is the float model). */
int  qc_compare_mixed(qc_compare *c, qc_dataset *d, const int *idx, int n, int keep_float,
                      double target_db, qc_err *err);
const qc_mixed_result *qc_compare_mixed_result(const qc_compare *c);

/* ---- auto confirmed on the output (compare_sens.c) ----
 *
 * The local cost does not see how a tensor's error reaches the output. When auto's own
 * choice loses to the best single method S on the eval set, hybrids are built: S's ranges
 * and weights, except the tensors where S's range costs more than tau times auto's (tau =
 * 2, 8, 32). S and the hybrids are measured on calibration samples (the eval set stays
 * held out for the answer), the best of them is "auto" and is then evaluated on the eval
 * set; when that is S itself, auto falls back to S. */
typedef struct qc_auto_confirm {
    int     auto_cand, single;      /* candidate indices: auto, the best single method */
    double  tau;                    /* the hybrid chosen; 0: S itself (fallback) */
    int     n_switched;             /* tensors given auto's range */
    int     n_calib;                /* calibration samples of the choice */
    int     n_hybrids;              /* hybrids measured; 0: none had a tensor to switch (S's
                                     * range never cost 2x auto's), so none differs from S
                                     * and nothing was run: S's evaluation stands */
    double  calib_single_db, calib_db;      /* S and the chosen one on them */
    double  sqnr_db, cosine, max_abs, top1; /* the chosen one on the eval samples */
    const qc_model *model;          /* its QDQ model (borrowed until qc_compare_free) */
} qc_auto_confirm;

/* After qc_compare_evaluate: if the best auto candidate ranks below the best single method by
 * `metric`, chooses among S and the hybrids on calibration samples cidx[0..cn) of cd and
 * evaluates the choice on eval samples eidx[0..en) of ed. Nothing to do (returns QC_OK,
 * qc_compare_auto_confirmed NULL) when auto already wins or there is no auto candidate. */
int  qc_compare_auto_confirm(qc_compare *c, int metric, qc_dataset *cd, const int *cidx,
                             int cn, qc_dataset *ed, const int *eidx, int en, qc_err *err);
const qc_auto_confirm *qc_compare_auto_confirmed(const qc_compare *c);

#endif
