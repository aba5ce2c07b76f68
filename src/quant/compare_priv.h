/* Private to compare.c (candidates, calibration pass) and compare_eval.c (builds, metrics). */
#ifndef QC_COMPARE_PRIV_H
#define QC_COMPARE_PRIV_H

#include "qc_compare.h"
#include "qc_observer.h"
#include "quant_priv.h"

enum { G_MINMAX = 1, G_EMA, G_HIST };

/* Observer state shared by the candidates whose ranges can be computed from it. Compared
 * with memcmp: zero-initialized, padding included. */
typedef struct ogroup {
    int   kind;                 /* G_* */
    int   absval, bins;         /* G_HIST */
    float ema_c;                /* G_EMA */
} ogroup;

/* An activation the candidates observe. */
typedef struct otensor {
    const char   *name;         /* prepared model's arena */
    int           producer;     /* node index, -1 for a graph input */
    int           no_hist;      /* its range never comes from the method (an output path or a
                                 * shared tensor: qc_quant_range_from_method), so histogram
                                 * groups observe it by min/max, as calibrate does */
    int           seen_dtype, rank;
    int           map_src;      /* a monotone map's output (derived.c): its input's index
                                 * here when neither is an output path nor shared, else -1;
                                 * where options derive the map's range (qc_quant_map_derives,
                                 * not from a gate), it is the input's carried through, as
                                 * calibrate derives it */
    qc_qmap       map;
    int          *union_of;     /* a Concat output whose histograms are merged from these
                                 * tensors' after the pass (derived.c's rule, as calibrate
                                 * does): its histogram groups do not observe it; or NULL
                                 * (also once merged) */
    int           n_union;
    qc_observer **obs;          /* one per group */
} otensor;

typedef struct cand_eval {
    struct qc_compare *c;
    const qc_cand *cand;
    int            group;
    qc_quantizer  *q;
    qc_model      *qm;          /* built QDQ model */
    qc_model      *em;          /* qm with constants folded, as evaluated */
    qc_exec       *qx;          /* runs em; with the hook until the layer samples are done,
                                 * then replaced by one that fuses (qc_exec_opts.fuse) */
    int            qx_fused;    /* qx is that one */
    qc_exec       *ref;         /* float executor holding the sample being evaluated */
    int           *node_layer;  /* em node index -> layer (its DequantizeLinear), or -1 */
    int           *out_map;     /* float model output i -> em output index, or -1 */
    qc_layerstat  *lst;         /* n_layers accumulators */
    int            layer_limit; /* per-layer sums over the first layer_limit samples (0: all) */
    qc_cand_result res;
    int            finished;
    qc_layerstat  *lpart;       /* per-block layer sums of one tensor (compare_eval.c) */
    int64_t        lpart_cap;
    struct auto_state *au;      /* --method auto (compare_auto.c), NULL otherwise */
} cand_eval;

/* The float model's outputs on a set of samples, kept for every variant (compare_sens.c). */
typedef struct refset {
    int      n;                 /* samples kept (NaN/Inf inputs skipped) */
    int     *idx;               /* their dataset indices */
    float  **ref;               /* [sample * n_outputs + output], NULL if not float */
    int64_t *numel, *cols;      /* cols: C of a classifier-like [N, C] output, else 0 */
    qc_tensor *in;              /* [sample * n_inputs + input]: copies, so that variants run
                                 * side by side without sharing the data set (the few
                                 * calibration samples of sensitivity and auto), or NULL */
    int      n_in;              /* tensors allocated in `in` */
} refset;

struct qc_compare {
    const qc_model *m;
    qc_cand        *cands;
    int             n;
    cand_eval      *ce;
    ogroup         *groups;
    int             n_groups;
    otensor        *t;
    int             n_t;
    int            *input_t;                /* graph input -> otensor index or -1 */
    int            *node_start, *node_list; /* node -> otensor indices of its outputs */
    struct cshard  *own;                    /* a one-shard pass's updates (compare.c) */
    qc_exec        *x;                      /* float, calibration */
    int64_t         shard_runs;             /* float runs of the pass's other shards */
    size_t          shard_peak;             /* their executors' peak */
    qc_exec        *fx;                     /* float, eval: every intermediate kept */
    size_t          observer_bytes, eval_peak;
    int             ranges_set;
    int             n_eval, eval_skipped, sample_major, best;
    int64_t         eval_float_runs, quant_runs;
    /* The evaluation's float outputs, reused by auto's confirmation and mixed precision on
     * the same eval set instead of running the float model again: eval_refs_all[0, n) are
     * the set's indices, eval_refs_pos how many the float runs have reached */
    refset          eval_refs;
    const qc_dataset *eval_refs_d;
    int            *eval_refs_all;
    int             eval_refs_pos;
    struct sens_state *sens;                /* compare_sens.c, NULL until used */
    qc_pg_cache    *pg_cache;               /* pair-guard scales: candidates and mixed
                                             * precision quantize the same weights */
};

void qc_cmp_obs_config(const qc_quant_opts *o, qc_obs_config *cfg);
int  qc_cmp_range(const qc_observer *shared, const qc_quant_opts *o, qc_range *r, qc_err *err);
/* compare_ranges.c: tensor k's range under options o from observer group g (which must have
 * seen it): qc_cmp_range, but a map's output's where o derives it is its input's carried
 * through the map, as calibrate derives it (otensor.map_src, src/quant/derived.c). */
int  qc_cmp_tensor_range(const struct qc_compare *c, int k, int g, const qc_quant_opts *o,
                         qc_range *r, qc_err *err);
/* Whether a shared observer holds a histogram: a histogram group's do, except those of
 * otensor.no_hist tensors (min/max). */
int  qc_cmp_has_hist(const qc_observer *o);
int  qc_cmp_set_ranges(qc_compare *c, qc_err *err);
/* Peak activation bytes of the calibration pass's float executors. */
size_t qc_cmp_calib_peak(const qc_compare *c);
/* Frees a candidate's executor and evaluated model and, if `model`, its built model too. */
void qc_cmp_cand_release(cand_eval *ce, int model);
/* The observer state group a candidate's activation ranges come from (compare.c). */
void qc_cmp_group_of(const qc_quant_opts *o, ogroup *g);
/* A new observer for tensor state of group gi (NULL, QC_OK: an |x| group fed through its
 * dual histogram until qc_cmp_split_duals); no_hist: min/max whatever the group. */
int  qc_cmp_group_new_observer(const qc_compare *c, int gi, int no_hist, qc_observer **obs,
                               qc_err *err);
/* After a pass: each dual histogram becomes its x and |x| groups' observers. */
int  qc_cmp_split_duals(qc_compare *c, qc_err *err);
/* Index of group g in c->groups, added if new (c->groups grows). */
int  qc_cmp_group_index(qc_compare *c, const ogroup *g, qc_err *err);

/* compare_auto.c: the "auto" candidates. Setup (after the candidates' quantizers exist,
 * before the tensors are planned) adds the observer groups auto chooses among and decides
 * each weight's per-tensor / per-channel quantization. */
int  qc_cmp_auto_setup(qc_compare *c, qc_err *err);
int  qc_cmp_auto_prepare(qc_compare *c, cand_eval *ce, qc_err *err);
/* The ranges auto chooses among: option o's observer group and single-method options. */
int  qc_cmp_auto_n_options(const cand_eval *ce);
void qc_cmp_auto_option(const cand_eval *ce, int o, int *group, const qc_quant_opts **opts);
/* Picks tensor k's range among the options' ranges ro[] (after auto_prepare; writes only
 * tensor k's entries: tensors in parallel), then auto_count tallies the choices. */
void qc_cmp_auto_pick(qc_compare *c, cand_eval *ce, int k, const qc_range *ro, qc_range *r);
void qc_cmp_auto_count(cand_eval *ce);
void qc_cmp_auto_free(cand_eval *ce);
/* Applies auto's weight decisions to another quantizer planned on the same model. */
void qc_cmp_auto_apply_weights(const cand_eval *ce, qc_quantizer *q);
/* The range auto chose for tensor k (after the ranges were set); 0 if none. */
int  qc_cmp_auto_chosen(const cand_eval *ce, int k, qc_range *r);
/* Local cost (qc_compare.h) of range r for tensor k, on auto candidate ace's histogram. */
double qc_cmp_auto_cost(qc_compare *c, const cand_eval *ace, int k, qc_range r);
/* compare_eval.c: the ranking's metric value (NaN -> -inf) and order (a before b). */
double qc_cmp_metric(const qc_cand_result *r, int metric);
int    qc_cmp_better(const qc_cand_result *a, int ia, const qc_cand_result *b, int ib,
                     int metric);
/* compare_sens.c */
void qc_cmp_sens_free(qc_compare *c);
/* A refset for n samples (with room for n_in input copies each when n_in > 0); freeing it
 * (also after a failed alloc) with qc_cmp_refs_free. */
int  qc_cmp_refs_alloc(refset *rs, int n, int n_out, int n_in, qc_err *err);
void qc_cmp_refs_free(refset *rs, int n_out);
/* Appends fx's float outputs as sample idx's references. */
int  qc_cmp_refs_add(refset *rs, const qc_model *m, const qc_exec *fx, int idx, qc_err *err);

#endif
