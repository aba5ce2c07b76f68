/* Private state of the executor, shared by plan.c, run.c and pool.c. */
#ifndef QC_EXEC_PRIV_H
#define QC_EXEC_PRIV_H

#include "ops.h"
#include "strmap.h"

enum { VAL_INPUT, VAL_INIT, VAL_ACT };

typedef struct qc_value {
    qc_tensor  t;
    int        kind;          /* VAL_* */
    int        producer;      /* plan index of the producing node, -1 for inputs/inits */
    int        last_use;      /* plan index of the last consumer; -1 if none */
    int        is_output;     /* a graph output: survives until the next run */
    int        no_fuse;       /* a graph output, kept (opts.keep) or hooked (opts.hooked):
                               * no fusion may compute it away */
    int        live;          /* holds a pool buffer right now */
    int        pinned;        /* opts.cache_const: computed once, kept across runs */
    int        owned;         /* VAL_INIT whose data the executor computed and frees (a
                               * constant folded at plan time, qfuse.c) */
    int        grid;          /* QC_U8/QC_I8: every value is a fake quantization's output,
                               * (code - grid_zp) * grid_s (qc_qdq_fuse); 0: unknown */
    float      grid_s;
    int        grid_zp;
} qc_value;

typedef struct qc_block {
    void  *ptr;
    size_t cap;
    int    used_this_run;
} qc_block;

typedef struct qc_pool {
    qc_block *free;           /* blocks ready for reuse */
    int       n_free, cap_free;
    size_t    bytes_now, bytes_peak;
} qc_pool;

struct qc_run {
    void  *scratch;
    size_t scratch_cap;
};

struct qc_exec {
    const qc_model   *m;
    qc_exec_opts      opts;
    int               n_values;
    qc_value         *values;
    qc_strmap         names;          /* value name -> index */
    int               n_knodes;
    qc_knode         *knodes;         /* in topological order */
    const qc_op_def **defs;
    int              *order;          /* plan index -> model node index */
    int              *pos;            /* model node index -> plan index */
    char             *is_const;       /* per plan index: all inputs are constants */
    char             *skip;           /* per plan index: fused into another node */
    char             *cached;         /* per plan index: opts.cache_const computes it once */
    char             *sum_only;       /* per plan index: opts.sum_only names it */
    double           *sums;           /* the sums of the node being summed, or NULL */
    size_t            sums_cap;
    int               n_sums;
    int               cache_ready;    /* a run has completed: cached nodes hold their values */
    int              *input_vals;     /* model input i -> value index */
    int              *output_vals;    /* model output i -> value index */
    int              *release_start;  /* values to release after node k: */
    int              *release_list;   /*   release_list[release_start[k] .. [k+1]) */
    qc_exec_hook      hook;
    void             *hook_user;
    qc_pool           pool;
    struct qc_run     run;
    int64_t           n_runs;
    int               next_k;         /* the next plan index of a run in steps */
    double           *prof;           /* opts.profile: seconds per model node index */
};

void *qc_pool_get(qc_pool *p, size_t nbytes, size_t *cap);
void  qc_pool_put(qc_pool *p, void *ptr, size_t cap);
void  qc_pool_trim(qc_pool *p);     /* frees blocks not reused during the last run */
void  qc_pool_free(qc_pool *p);

/* opts.const_only: node k is Shape / Size of a graph input with fixed declared dims (plan.c). */
int qc_exec_static_shape_of(const qc_exec *x, int k);

/* The knodes reading each value, skipped ones left out, in plan order (a knode once per input
 * slot naming it): value v's readers are list[start[v] .. start[v + 1]) (plan.c). */
typedef struct qc_readers {
    int *start, *list;
} qc_readers;
int  qc_readers_build(const qc_exec *x, qc_readers *r, qc_err *err);
void qc_readers_free(qc_readers *r);

#endif
