/* The one histogram of qcal's observers (percentile, mse, entropy).
 *
 * Grid: bin width w = 2^k, bins aligned on multiples of w: bin b covers
 * [(j0 + b) w, (j0 + b + 1) w). (k, j0) is a pure function of the min/max seen so far
 * (qc_hist_grid): the smallest k, not below ilogb(max|x|) - 40, for which the cells holding min
 * and max are fewer than nbins apart, and j0 the cell of min. When new values widen the range,
 * k can only grow, so each old bin falls into exactly one new bin (no smearing), and the
 * counts equal those of binning every value directly on the final grid: the histogram does not
 * depend on sample order or sharding at all. Values map to bins by floor(x * 2^-k) in double,
 * which is exact. The data span between nbins/2 and nbins bins.
 * In |x| mode (absval) j0 is 0 and the grid depends on max |x| only. */
#ifndef QC_HIST_H
#define QC_HIST_H

#include <stdint.h>
#include "qc_observer.h"

typedef struct qc_hist {
    int       nbins;
    int       absval;       /* histogram of |x| */
    int       vbins;        /* dual histogram (absval 0): the bins of the views it stands for */
    int       k;            /* bin width 2^k (valid when total > 0) */
    int64_t   j0;           /* lattice cell of bin 0 */
    float     lo, hi;       /* exact min / max of the raw finite values (not |x|) */
    uint64_t  total;
    uint64_t *counts;       /* nbins */
} qc_hist;

/* Grid for values in [lo, hi] (finite, lo <= hi; |x| mode: lo = 0). */
void   qc_hist_grid(int nbins, double lo, double hi, int *k, int64_t *j0);
/* Left edge of bin b (b may be nbins for the right edge of the last bin). */
double qc_hist_edge(const qc_hist *h, int64_t b);
double qc_hist_width(const qc_hist *h);
/* First and last non-empty bins (total > 0). */
void   qc_hist_used(const qc_hist *h, int *first, int *last);

/* A dual histogram stands for a signed and an |x| histogram of vbins bins at once (calibrate
 * compare observes both for every tensor): 2 vbins bins on the finer of their two grids, so
 * each is an exact coarsening of it (negative cells fold onto |x| cells: mcell in hist.c).
 * qc_hist_view fills `out` (nbins, absval and counts set by the caller, nbins = d->vbins) with
 * the histogram binning the same values directly would give, bit for bit. */
void   qc_hist_view(const qc_hist *d, qc_hist *out);

/* State of a histogram observer: one qc_hist per channel. */
typedef struct qc_hist_obs {
    qc_hist  *ch;
    uint64_t *scratch;      /* nbins, for re-binning */
} qc_hist_obs;

int  qc_hist_obs_init(qc_observer *o, int n_ch, int absval, qc_err *err);
int  qc_hist_obs_update(qc_observer *o, const qc_obs_view *v, qc_err *err);
int  qc_hist_obs_merge(qc_observer *o, const qc_observer *other, qc_err *err);
void qc_hist_obs_release(qc_observer *o);
static inline const qc_hist *qc_hist_obs_channel(const qc_observer *o, int c)
{
    return &((const qc_hist_obs *)o->state)->ch[c];
}

#endif
