/* Private to doctor.c (statistics, passes) and doctor_checks.c (findings). */
#ifndef QC_DOCTOR_PRIV_H
#define QC_DOCTOR_PRIV_H

#include "qc_compare.h"
#include "qc_doctor.h"
#include "strmap.h"

/* Histogram of float bit patterns >> 22: sign, exponent and the top mantissa bit, so a bin
 * spans a factor of 1.5 or 4/3 in magnitude. NaN/Inf land in their own bins (never used). */
#define DR_HBINS 1024
/* Values histogrammed per tensor per sample (strided): enough for the 99.99th percentile over
 * a calibration set, cheap next to the float pass. */
#define DR_HSAMPLES 8192

/* The fix pass (worst layer left in float) runs this many eval samples, against float outputs
 * kept from the first pass when they fit in DR_CACHE_MAX floats. */
#define DR_FIX_SAMPLES 2
#define DR_CACHE_MAX ((size_t)64 << 20)

typedef struct dstat {
    const char *name;           /* model arena */
    int         producer;       /* node index, -1 for a graph input */
    int         f32, rank;
    float       lo, hi;         /* finite extremes, all samples */
    float       hlo[2], hhi[2]; /* the same over even / odd samples */
    int64_t     count, nonfinite;
    uint32_t   *hist;           /* DR_HBINS, allocated at the first float update */
    int64_t     hist_n;
} dstat;

typedef struct dinput {         /* a float graph input */
    double  sum, sum2;
    int64_t n;
    float   lo, hi;
    int     samples, const_samples, nonint;
    float   const_value;
    double  esum, esum2;        /* held-out samples */
    int64_t en;
    int     esamples;
    /* 3-channel image-like inputs (NCHW or NHWC by the dim of size 3): per-channel sums of
     * the calibration [0] and held-out [1] samples, for a swapped channel order */
    int     chan_axis;          /* 1 or 3; 0 before the first sample, -1 not image-like */
    double  csum[2][3], csum2[2][3];
    int64_t cn[2];
} dinput;

typedef struct dlayer {         /* a quantized activation, at its DequantizeLinear */
    const char  *name;
    int          ts;            /* dstat index */
    float        clip_lo, clip_hi;
    float        sat_lo, sat_hi;    /* clip widened by half a step: beyond, values saturate */
    qc_layerstat st;
} dlayer;

typedef struct dout {           /* a float model output */
    const char *name;
    int         map[2];         /* output index in the main / fix variant, or -1 */
    int         classifier;
    qc_errstat  st[2];
    float       ref_lo, ref_hi, got_lo, got_hi;
    int64_t     cache_len;      /* elements of this output in the cache, per sample */
} dout;

typedef struct nfsample {
    char    name[128];
    int64_t count;
} nfsample;

struct qc_doctor {
    const qc_model *m;
    qc_doctor_opts  o;
    qc_quantizer   *q;
    int             set_ranges;     /* minmax: ranges from the statistics, no observer */
    qc_exec        *x;              /* float, calibration */
    dstat          *ts;
    int             n_ts;
    qc_strmap       by_name;        /* tensor name -> ts index */
    int            *node_ts;        /* node_first[i] + k -> ts index of output k, or -1 */
    int            *node_first;
    dinput         *in;             /* per model input */
    int             n_used, n_skipped;
    nfsample        nf[8];
    int             n_nf;
    int64_t         nf_total;
    int             nan_node;       /* first node producing NaN/Inf from finite inputs */
    char            nan_sample[128];
    int64_t         nan_count;
    const char     *cur_sample;
    /* evaluation */
    qc_model       *qm;             /* built QDQ model (owned) */
    const qc_model *given;
    qc_strmap       given_nodes;    /* given model: node name -> index */
    qc_model       *em[2];          /* evaluated models (constants folded), main and fix */
    qc_exec        *qx[2];
    qc_exec        *fx;             /* float, every intermediate kept */
    int             variant;        /* which model the current pass runs */
    int            *node_layer;     /* em[0] node -> layer, or -1 */
    dlayer         *layers;
    int             n_layers;
    qc_strmap       layer_by_name;
    dout           *outs;
    int             n_eval_inputs, n_evaluated, n_evaluated_fix, passes_done;
    qc_quantizer   *q2;             /* fix variant */
    qc_model       *qm2;
    char           *fix_exclude;    /* --exclude of the fix variant */
    char           *fix_nodes;      /* the nodes it adds: producer and readers of the layer */
    int             fix_layer;      /* layer whose producer is left float in the fix variant */
    int             fix_node;
    int             fix_samples;    /* samples the fix pass runs (float outputs cached) */
    float          *cache;          /* float outputs of the first fix_samples eval samples */
    size_t          cache_len, cache_cap, cache_pos;
    int             cache_bad;      /* too large or out of memory: the float model reruns */
    /* findings */
    qc_finding     *f;
    int             n_f, cap_f;
};

/* Adds a finding; printf-style evidence. Returns the finding (NULL when out of memory). */
qc_finding *qc_dr_add(qc_doctor *d, int sev, const char *check, double impact,
                      const char *subject, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* Upper edge of the bin holding the p-quantile (0..1) of |x|, from the histogram of s. */
double qc_dr_abs_quantile(const dstat *s, double p);
int    qc_dr_checks(qc_doctor *d, qc_err *err);
const dstat *qc_dr_stat(const qc_doctor *d, const char *name);
/* Integer range QuantizeLinear saturates at for a zero point of this dtype. */
void   qc_dr_dtype_range(int dtype, double *lo, double *hi);

/* doctor_given.c: what a given model (d->given) does itself; NULL, 0 when it does not say */
const qc_tensor *qc_dr_given_weight_scale(const qc_doctor *d, const char *node,
                                         const qc_tensor *w, int axis);
double qc_dr_given_out_scale(const qc_doctor *d, const char *node);
int    qc_dr_given_float_groups(const qc_model *g, qc_float_group **out);
int    qc_dr_given_norm_rounded(const qc_doctor *d, const char **first,
                                const char **first_op);
/* Inputs of Concats of QDQ model g (the given one or the doctor's) whose DequantizeLinear
 * scale or zero point differs from the Concat output's QuantizeLinear: onnxruntime's
 * QLinearConcat requantizes them. Their number; *n_concats the Concats, *first the first. */
int    qc_dr_concat_requant(const qc_model *g, int *n_concats, const char **first);

#endif
