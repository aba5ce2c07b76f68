/* Private to src/quant: the quantization plan shared by qselect.c (selection), quantizer.c
 * (observation, ranges) and qdq.c (graph rewrite). */
#ifndef QC_QUANT_PRIV_H
#define QC_QUANT_PRIV_H

#include "qc_edit.h"
#include "qc_observer.h"
#include "qc_quant.h"
#include "strmap.h"

enum { QT_ACT, QT_WEIGHT, QT_BIAS, QT_CONST };

/* derived.c, the rule calibrate and compare share. A monotone map: a one-input function
 * node whose output's ranges can be its input's carried through (derived.c's header). */
enum { QC_QMAP_SIGMOID, QC_QMAP_TANH, QC_QMAP_MUL, QC_QMAP_DIV, QC_QMAP_ADD, QC_QMAP_SUB };
typedef struct qc_qmap {
    int   kind;                 /* QC_QMAP_* */
    float c;                    /* the constant operand (MUL, DIV: positive) */
} qc_qmap;

typedef struct qtensor {
    const char  *name;          /* model arena */
    int          kind;          /* QT_* */
    int          producer;      /* node index, -1 for graph inputs and initializers */
    int          share_from;    /* qtensor index whose parameters this one reuses, or -1 */
    int          axis;          /* per-channel axis (weights), -1 per-tensor */
    int          axis_conflict; /* consumers disagree on the axis: fall back to per-tensor */
    int          bias_node;     /* QT_BIAS: the Conv/Gemm it belongs to */
    int          bias_in, bias_w; /* QT_BIAS: qtensor indices of the input and weight */
    int          seen_dtype;    /* dtype observed at run time (activations), 0 = never seen */
    int          rank;          /* rank observed at run time (0 = unknown) */
    int          used;          /* referenced by a quantized node: gets Q/DQ */
    int          moved_input;   /* a model input that float data-movement nodes move, or
                                 * their output (mark_input_movers): its readers' scale comes
                                 * from it even though it is not quantized itself */
    int          n_readers;     /* node inputs reading it (graph outputs not counted) */
    int          output_path;   /* reaches a graph output through data movement only */
    int          gate;          /* a Sigmoid's output under mse or entropy: takes its
                                 * observed range (mark_gates) */
    int          derived_from;  /* a monotone map's output whose ranges are its input's
                                 * carried through the map (derived.c): that qtensor (maybe
                                 * derived itself), else -1 */
    qc_qmap      map;           /* with derived_from: the map */
    int         *union_of;      /* a Concat output whose histogram is the merge of these
                                 * qtensors' (derived.c) instead of its own observation */
    int          n_union;       /* entries of union_of; 0: observed itself */
    int          done;          /* parameters computed */
    int          guard_moved;   /* weights: scale groups the pair guard widened */
    int          concat_rep;    /* shares a Concat group's range (concat_share.c): the
                                 * group's representative qtensor, else -1 */
    float        own_lo, own_hi; /* with concat_rep: its range before */
    qc_observer *obs;
    int          has_range;     /* `range` holds the observer's range (computed ahead, in
                                 * parallel over tensors: histogram searches are the slow part) */
    qc_range     range;
    int          fixed;         /* range given by --params-in instead of observed */
    qc_range     fixed_range, fixed_seen;
    /* results, n_ch entries each */
    int          qdtype, n_ch;
    float       *obs_lo, *obs_hi, *lo, *hi, *scale;
    int32_t     *zp;
} qtensor;

typedef struct qnode {
    int quantize;               /* candidate: op type selected and not excluded */
    int final;                  /* quantized after checking dtypes */
    const char *why;            /* reason it stays float */
    int float_feed;             /* a data-movement node only float-reading nodes read: it reads
                                 * float too (mark_float_feeds) */
    int input_mover;            /* a data-movement node moving a model input: float
                                 * (mark_input_movers) */
} qnode;

struct qc_quantizer {
    const qc_model *m;
    qc_quant_opts   o;
    qtensor        *t;
    int             n_t, cap_t;
    qc_strmap       by_name;        /* tensor name -> qtensor index */
    qnode          *nodes;          /* per model node */
    int            *out_start, *out_list;  /* node -> qtensor indices of its observed outputs */
    int             act_qmin, act_qmax, w_qmin, w_qmax;
    int             n_quantized;
    const char    **hooked;         /* qc_quantizer_pass_opts: the tensors the pass observes */
    int            *float_nodes;    /* after build: the nodes left float, in file order */
    int             n_float_nodes;
    char            float_why[64];
    struct qc_pg_cache *pg_cache;   /* borrowed (qc_quant_share_guard), or NULL */
    int             n_concat_shared, n_concat_own;  /* concat_share.c, after build */
};

/* qselect.c: item is one of the entries of a comma-separated list (--exclude, --op-types). */
int qc_quant_in_list(const char *list, const char *item);
/* qselect.c: the tensors q plans for (qc_quantizer_new; the qtensors and qnode.quantize). */
int  qc_quant_select_tensors(qc_quantizer *q, qc_err *err);
/* qselect.c: the role of input slot `slot` of node n: 'a' activation, 'w' weight, 'b' bias, 0
 * none (not quantized data). */
char qc_quant_slot_role(const qc_node *n, int slot, const qc_model *m);
/* qselect.c, after the pass: qnode.final and why for every node (quantized when every tensor
 * it would quantize turned out float and seen; data-movement nodes moving a model input or
 * feeding only float nodes stay float), and q->float_nodes. */
int  qc_quant_finalize_nodes(qc_quantizer *q, qc_err *err);
/* quantizer.c: min / max of x[0, n) per channel, laid out [outer][ch][inner] (per tensor: ch
 * 1, inner n), folded into lo[c] / hi[c] from the caller's start values; 0 if a value is NaN
 * or Inf (const_ranges and compare's weight error share it). */
int qc_quant_channel_minmax(const float *x, int64_t n, int64_t inner, int64_t ch, float *lo,
                            float *hi);

/* concat_share.c: after every used tensor's parameters, before the biases': each quantized
 * Concat's inputs take its output's range (see there). */
int qc_quant_share_concat_scales(qc_quantizer *q, qc_err *err);

/* derived.c: after the pass (and the shards' merge), each Concat output with union sources
 * gets their observers merged into its own, which saw nothing. Once per quantizer. */
int     qc_quant_union_fill(qc_quantizer *q, qc_err *err);
/* derived.c: after the pass, a derived tensor takes its root's dtype and rank; its observed
 * range and chosen range (what compute_params would take from its own observer).
 * obs_count: its root's observer count (a derived tensor's own observer sees nothing). */
void    qc_quant_derived_seen(qc_quantizer *q);
int     qc_quant_derived_ranges(const qc_quantizer *q, const qtensor *t, int seen,
                                qc_range *range, qc_range *observed, qc_err *err);
int64_t qc_quant_obs_count(const qc_quantizer *q, const qtensor *t);
/* derived.c: the qtensor whose observer saw t's values: t, or the root of its derivation. */
const qtensor *qc_quant_observed(const qc_quantizer *q, const qtensor *t);
/* derived.c, the monotone-map rule calibrate and compare share (qc_qmap, above). */
/* The input of tensor `name` if node `producer` (default domain) writes it as a monotone map
 * of that input (*map filled in), else NULL. */
const char *qc_quant_map_input(const qc_model *m, int producer, const char *name, qc_qmap *map);
/* Whether options o take a map's output's method range as the map of its input's (minmax
 * always; a scaling under every histogram method; anything under asymmetric percentile). */
int         qc_quant_map_derives(const qc_qmap *map, const qc_quant_opts *o);
/* The map's value at x, the executor's bits (qc_exec_sigmoid, qc_exec_tanh, float ops). */
float       qc_quant_map_apply(const qc_qmap *map, float x);
qc_range    qc_quant_map_range(const qc_qmap *map, qc_range r);
/* qselect.c: whether node `producer`'s output is a gate under options o (mark_gates: it
 * takes its observed range), so no method range derives from it. */
int         qc_quant_is_gate(const qc_model *m, int producer, const qc_quant_opts *o);
/* derived.c, the Concat rule calibrate and compare share: when node `producer` is the Concat
 * writing `name` and each of its inputs either passes peer() (has a histogram the pass fills),
 * or is one of a Split's outputs that are all inputs exactly once and whose input passes
 * peer(), or is a nearest integer-factor Resize's output whose input passes peer(), the
 * tensors whose histograms merge into its (src: at most QC_QUANT_UNION_REPEAT times the
 * node's input count; a Split's group once, as its input; a Resize's input once per copy of
 * each value); else 0. */
#define QC_QUANT_UNION_REPEAT 64
/* The src entries qc_quant_concat_union may fill for any tensor of m (at least 1). */
int qc_quant_union_cap(const qc_model *m);
int qc_quant_concat_union(const qc_model *m, int producer, const char *name,
                          int (*peer)(void *user, const char *tensor), void *user,
                          const char **src);

/* qdq.c: writes the QDQ model from a computed plan. */
int qc_quant_rewrite(qc_quantizer *q, qc_model **out, qc_err *err);
/* Node `node` is a Conv/ConvTranspose/Gemm/MatMul left float: it reads the float tensors, not
 * their DequantizeLinear outputs, because between a DequantizeLinear and a QuantizeLinear
 * onnxruntime (WeightBiasQuantization, 1.32) quantizes a float node's weights itself and fuses
 * it into an integer kernel, undoing --exclude. So does a data-movement node read only by such
 * nodes (qnode.float_feed): onnxruntime moves a DequantizeLinear forward through Transpose,
 * Reshape and the like, and the float node behind it is then quantized all the same. */
int qc_quant_reads_float(const qc_quantizer *q, int node);
/* opset.c: rewrites nodes whose signature changed between the model's opset and the edit's
 * target opset (attributes that became inputs), or refuses with advice. */
int qc_opset_upgrade(qc_edit *e, const qc_quantizer *q, qc_err *err);
/* Data-movement ops whose output reuses the input's scale and zero point. */
int qc_quant_is_movement(const char *op_type);
/* An op type quantized by default (the --op-types default list). */
int qc_quant_default_op(const char *op_type);
/* An op computing a statistic (a reduction, square root, power, reciprocal): where the
 * normalization arithmetic calibrate keeps float starts (qselect.c mark_statistics). */
int qc_quant_stat_seed(const char *op_type);
/* percentile, mse or entropy: the methods that keep a histogram */
int qc_quant_is_hist_method(const char *method);
/* Whether activation `name`'s range can come from the method: not for an output path (its
 * observed range) nor a shared tensor (its source's), which make_observers gives a min/max
 * observer under a histogram method (compare does the same). Method-independent. */
int qc_quant_range_from_method(const qc_quantizer *q, const char *name);

/* pairguard.c (whether a quantizer's weights take the guard: qc_quant_pair_guarded,
 * qc_quant.h). The codes q of weight `name` (w: its float values) with every same-sign pair
 * over 128 in magnitude moved toward zero, the pairs fixed as they are found (no list). */
void qc_pairguard_fix_weight(const qc_model *m, const char *name, const qc_tensor *w, int8_t *q);
/* The scale search's squared error of a scale group (flat indices idx[0, n), or with idx NULL
 * base .. base + n - 1) at scale s, its codes (fixed for the pairs ij) written to q; avx2
 * (only on a CPU with it): members in a row by the AVX2 loop, which must give the same bits.
 * Exposed for test_pairguard.c. */
double qc_pairguard_group_error(const float *w, const int64_t *idx, int64_t base, int64_t n,
                                const int64_t *ij, int64_t n_pairs, int8_t *q, double s,
                                int avx2);
/* Each scale group's scale (n_ch of them on axis, or one) raised where that lowers the squared
 * weight error once the pairs' codes are fixed; *n_moved: the groups whose scale changed. */
int  qc_pairguard_scales(const qc_model *m, const char *name, const qc_tensor *w, int axis,
                         int n_ch, float *scale, int *n_moved, qc_err *err);
/* Guarded scales kept for the quantizers of one model that ask for the same weight, axis and
 * start scales (compare's candidates, mixed precision): qc_pairguard_scales once per distinct
 * question. Thread-safe; the quantizers borrow it (qc_quant_share_guard). */
typedef struct qc_pg_cache qc_pg_cache;
int  qc_pg_cache_new(qc_pg_cache **out, qc_err *err);
void qc_pg_cache_free(qc_pg_cache *c);
int  qc_pg_cache_size(qc_pg_cache *c);       /* searches kept (tests) */
/* qc_pairguard_scales through cache c (NULL: none). */
int  qc_pairguard_scales_shared(qc_pg_cache *c, const qc_model *m, const char *name,
                                const qc_tensor *w, int axis, int n_ch, float *scale,
                                int *n_moved, qc_err *err);
/* Quantizer q takes its guarded weight scales through c (borrowed; NULL: its own). */
void qc_quant_share_guard(qc_quantizer *q, qc_pg_cache *c);

/* A Conv / ConvTranspose / Gemm with a bias input (bias correction's targets; bcstash.c) */
int qc_quant_biased_node(const qc_node *n);

#endif
