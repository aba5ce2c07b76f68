/* percentile (ORT semantics): symmetric targets histogram |x| and take t where the CDF reaches
 * p; asymmetric targets cut (100 - p) / 2 percent on each side of the signed histogram.
 * Edge convention: the lower cut is the left edge of the bin where the CDF reaches q, the upper
 * cut the right edge of the bin where it reaches 1 - q (ORT takes that bin's left edge, which
 * clips the whole crossing bin; ours keeps at least p percent inside). Both are then clamped
 * to the observed [min, max], as ORT does. */
#include <math.h>
#include "hist.h"

static int pct_init(qc_observer *o, int n_ch, qc_err *err)
{
    return qc_hist_obs_init(o, n_ch, o->cfg.symmetric, err);
}

/* First bin whose cumulative count reaches `target`. */
static int cdf_bin(const qc_hist *h, double target)
{
    uint64_t cum = 0;
    int b;
    for (b = 0; b < h->nbins - 1; b++) {
        cum += h->counts[b];
        if ((double)cum >= target)
            break;
    }
    return b;
}

static int pct_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    const qc_hist *h = qc_hist_obs_channel(o, c);
    double p = (double)o->cfg.percentile / 100.0, total = (double)h->total;
    (void)err;
    if (h->absval) {
        double amax = fmax(fabs((double)h->lo), fabs((double)h->hi));
        float t = (float)fmin(qc_hist_edge(h, cdf_bin(h, p * total) + 1), amax);
        out->lo = -t;
        out->hi = t;
    } else {
        double q = (1.0 - p) / 2.0;
        out->lo = (float)fmax(qc_hist_edge(h, cdf_bin(h, q * total)), h->lo);
        out->hi = (float)fmin(qc_hist_edge(h, cdf_bin(h, (1.0 - q) * total) + 1), h->hi);
    }
    return QC_OK;
}

const qc_observer_ops qc_obs_percentile = {
    "percentile", pct_init, qc_hist_obs_update, qc_hist_obs_merge, pct_range,
    qc_hist_obs_release, NULL,
};
