/* Calibration observers: streaming range estimators fed with float32 tensors.
 *
 * An observer keeps fixed-size state (never growing with the number of samples) and yields a
 * clipping range per channel. Kinds: "minmax", "ema", "percentile", "mse", "entropy".
 * Ranges become scales and zero points in qc_qparams.h, nowhere else.
 *
 * Contract common to all kinds:
 * - Only QC_F32 tensors are accepted; any shape, and the shape may change between updates
 *   (batch, spatial size, sequence length). Per-channel observers fix the channel count with the
 *   first tensor (dims[axis]); later tensors must have the same count.
 * - NaN and +-Inf values are skipped and counted (qc_observer_nonfinite); they never reach the
 *   state.
 * - Histogram kinds (percentile, mse, entropy) share one histogram (calib/hist.c) whose bin width
 *   is a power of two and whose bins are aligned on multiples of it: the grid depends only on
 *   the min/max seen so far, so the final histogram is the same whatever the sample order or
 *   sharding (bit-exact), and widening it only merges whole bins. The data occupy between
 *   bins/2 and bins bins.
 */
#ifndef QC_OBSERVER_H
#define QC_OBSERVER_H

#include <stddef.h>
#include <stdint.h>
#include "qc_err.h"
#include "qc_tensor.h"

typedef struct qc_range {
    float lo, hi;
} qc_range;

typedef struct qc_obs_config {
    int   symmetric;        /* symmetric target: percentile/mse histogram |x| and return [-t, t] */
    int   qmin, qmax;       /* target integer range (mse cost uses qmax - qmin steps) */
    int   per_channel_axis; /* -1 per tensor; else one state per index along this axis (>= 0) */
    float ema_constant;     /* ema: x += c * (x_batch - x), 0 < c <= 1; default 0.01 */
    float percentile;       /* percentile: 50 <= p <= 100; default 99.999 */
    int   bins;             /* histogram bins, 2 .. 1<<20; default 2048 */
    int   entropy_levels;   /* entropy: quantized levels of the KL search; default 128 */
} qc_obs_config;

/* Defaults: asymmetric uint8 (0..255), per tensor, 0.01, 99.999, 2048 bins, 128 levels. */
void qc_obs_config_default(qc_obs_config *cfg);

typedef struct qc_observer qc_observer;

/* Creates an observer of kind `method` (matched exactly); cfg NULL means defaults.
 * Unknown method -> QC_EUSAGE naming the valid ones; bad config -> QC_EUSAGE. */
int  qc_observer_new(qc_observer **o, const char *method, const qc_obs_config *cfg, qc_err *err);
void qc_observer_free(qc_observer *o);

/* A dual histogram observer (configuration cfg, cfg->bins the bins of its views): the state of
 * a signed and an |x| histogram at the cost of binning each value once. It has no range of
 * its own; qc_observer_view reads it as a percentile, mse or entropy observer of
 * configuration cfg (same bins and axis; percentile and mse read x, or |x| when
 * cfg->symmetric), which then holds exactly what it would have held had it seen the same
 * tensors itself. For `calibrate compare`, whose candidates need both. */
int  qc_observer_new_dual(qc_observer **o, const qc_obs_config *cfg, qc_err *err);
int  qc_observer_view(qc_observer **out, const qc_observer *dual, const char *method,
                      const qc_obs_config *cfg, qc_err *err);

/* Feeds `o` (a per-tensor minmax or ema observer) the tensor per-tensor observer `leader`
 * was just updated with, from the min/max leader's update found (no second scan): the same
 * state and counters as qc_observer_update with that tensor. QC_EUSAGE for other kinds. */
int  qc_observer_follow(qc_observer *o, const qc_observer *leader, qc_err *err);

/* Feeds one tensor (borrowed for the call only). QC_EUNSUPPORTED for non-float32 tensors,
 * QC_ESHAPE if the per-channel axis is out of range or the channel count changed. */
int  qc_observer_update(qc_observer *o, const qc_tensor *t, qc_err *err);

/* Folds `other` (same kind and config) into `o`, as if o had seen other's tensors too.
 * Exact for minmax and the histogram kinds; ema averages the two states weighted by their
 * update counts (EMA is order dependent, so no merge can be exact). */
int  qc_observer_merge(qc_observer *o, const qc_observer *other, qc_err *err);

/* Range of channel `channel` (0 for per-tensor observers). QC_EINPUT if that channel has seen
 * no finite value; QC_EUSAGE if channel is out of range. The range is finite, lo <= hi, and
 * lies within the observed [min, max] (it need not include 0: qc_qparams_from_range does that;
 * symmetric percentile/mse/entropy ranges are [-t, t]). */
int  qc_observer_range(const qc_observer *o, int channel, qc_range *out, qc_err *err);

/* 1 for per-tensor observers; dims[axis] of the first tensor for per-channel ones (0 before). */
int  qc_observer_n_channels(const qc_observer *o);
/* Number of NaN/Inf values skipped so far. */
int64_t qc_observer_nonfinite(const qc_observer *o);
/* The raw [min, max] of every finite value seen (all channels); QC_EINPUT if none. */
int     qc_observer_seen(const qc_observer *o, qc_range *out);
/* Number of finite values observed so far (all channels). */
int64_t qc_observer_count(const qc_observer *o);
/* Bytes of state owned by the observer; constant after the first update. */
size_t  qc_observer_state_bytes(const qc_observer *o);
const char *qc_observer_method(const qc_observer *o);
/* "minmax, ema, percentile, mse, entropy" */
const char *qc_observer_methods(void);

/* ---- For observer implementations (calib/) only. ---- */

/* A float32 tensor seen as [outer, n_ch, inner]: element (o, c, i) is
 * x[(o * n_ch + c) * inner + i]. Per-tensor observers see n_ch = 1, outer = 1. */
typedef struct qc_obs_view {
    const float *x;
    int64_t      outer, inner;
    int          n_ch;
} qc_obs_view;

typedef struct qc_observer_ops {
    const char *name;
    /* Allocates state for n_ch channels (through qc_obs_alloc); called once, at creation for
     * per-tensor observers, at the first update or merge for per-channel ones. */
    int  (*init)(qc_observer *o, int n_ch, qc_err *err);
    int  (*update)(qc_observer *o, const qc_obs_view *v, qc_err *err);
    int  (*merge)(qc_observer *o, const qc_observer *other, qc_err *err);
    /* channel has seen >= 1 finite value (checked by the caller) */
    int  (*range)(const qc_observer *o, int channel, qc_range *out, qc_err *err);
    void (*release)(qc_observer *o);
    /* Optional, for kinds whose per-tensor update depends only on the tensor's finite min and
     * max (minmax, ema): that update, given them (qc_observer_follow). */
    int  (*extremes)(qc_observer *o, float lo, float hi, qc_err *err);
} qc_observer_ops;

struct qc_observer {
    const qc_observer_ops *ops;
    qc_obs_config cfg;
    int      n_channels;        /* 0 until state exists */
    int64_t  nonfinite;
    int64_t  count;
    float    seen_lo, seen_hi;  /* raw extremes of all finite values (reporting) */
    int64_t *ch_count;          /* finite values per channel (n_channels entries) */
    float    last_lo, last_hi;  /* the last update's finite extremes and counts (per-tensor */
    int64_t  last_good, last_bad;   /* observers; qc_observer_follow) */
    size_t   state_bytes;
    void    *state;             /* kind-specific */
};

/* calloc that accounts into o->state_bytes; NULL on failure. */
void   *qc_obs_alloc(qc_observer *o, size_t n, size_t size);
/* Min and max of the finite values of x[0..n) (mn = +inf, mx = -inf if none);
 * returns the number of non-finite values. */
int64_t qc_obs_scan(const float *x, int64_t n, float *mn, float *mx);
/* qc_obs_scan over the `outer` runs of channel c; adds the counts to o->nonfinite, o->count and
 * o->ch_count[c] (each kind scans each channel exactly once per update). Returns the number of
 * finite values. */
int64_t qc_obs_scan_channel(qc_observer *o, const qc_obs_view *v, int c, float *mn, float *mx);

extern const qc_observer_ops qc_obs_minmax, qc_obs_ema, qc_obs_percentile, qc_obs_mse,
                             qc_obs_entropy, qc_obs_dual;

#endif
