/* mse: the clipping range minimizing the expected squared quantization error.
 *
 * Cost model (PyTorch HistogramObserver's, in bin units): values inside [lo, hi] cost
 * delta^2 / 12 each (rounding error of a uniform quantizer), with
 * delta = (max(hi, 0) - min(lo, 0)) / (qmax - qmin) because the quantizer always includes 0;
 * values outside cost their squared distance to the nearest bound, each bin's values spread
 * uniformly over the bin: c * ((center - bound)^2 + 1/12). Candidate bounds are bin edges; a
 * lower bound above 0 (or upper below 0) is never a candidate other than the data's own first
 * (last) bin, since the zero-including quantizer would not clip there.
 *
 * Search: PyTorch walks the two bounds inward greedily and stops at the first increase; we
 * instead find the exact minimum over all (lo, hi) pairs, pruned by the clipping costs alone
 * (clip(lo) + clip(hi) >= best rules out every tighter pair), which is cheap: clipping cost
 * grows quadratically once past the tails. Symmetric targets search t over the |x| histogram
 * (range [-t, t], delta = 2t / (qmax - qmin)). Result clamped to the observed [min, max]. */
#include <math.h>
#include <stdlib.h>
#include "hist.h"

static int mse_init(qc_observer *o, int n_ch, qc_err *err)
{
    return qc_hist_obs_init(o, n_ch, o->cfg.symmetric, err);
}

/* up[b]: cost of clipping the bins above b to the right edge of b (b in [first, last]). */
static void clip_costs_up(const uint64_t *cnt, int first, int last, double *up)
{
    double d0 = 0, d1 = 0, d2 = 0;      /* sums of c, c * (u - H), c * (u - H)^2; H = bound */
    up[last] = 0;
    for (int b = last - 1; b >= first; b--) {
        d2 += 2 * d1 + d0;              /* bound moves down one bin */
        d1 += d0;
        double c = (double)cnt[b + 1];  /* bin b + 1 now lies above, center 0.5 from bound */
        d0 += c;
        d1 += 0.5 * c;
        d2 += 0.25 * c;
        up[b] = d2 + d0 / 12.0;
    }
}

/* down[a]: cost of clipping the bins below a to the left edge of a. */
static void clip_costs_down(const uint64_t *cnt, int first, int last, double *down)
{
    double d0 = 0, d1 = 0, d2 = 0;
    down[first] = 0;
    for (int a = first + 1; a <= last; a++) {
        d2 += 2 * d1 + d0;
        d1 += d0;
        double c = (double)cnt[a - 1];
        d0 += c;
        d1 += 0.5 * c;
        d2 += 0.25 * c;
        down[a] = d2 + d0 / 12.0;
    }
}

static int mse_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    const qc_hist *h = qc_hist_obs_channel(o, c);
    int nb = h->nbins, first, last;
    double n_steps = (double)o->cfg.qmax - o->cfg.qmin;
    double *up = malloc((size_t)nb * sizeof *up), *down = malloc((size_t)nb * sizeof *down);
    double *cum = malloc(((size_t)nb + 1) * sizeof *cum);   /* cum[b + 1]: bins 0..b */
    if (!up || !down || !cum) {
        free(up);
        free(down);
        free(cum);
        return qc_errf(err, QC_ENOMEM, "observer 'mse': out of memory");
    }
    qc_hist_used(h, &first, &last);
    cum[0] = 0;
    for (int b = 0; b < nb; b++)
        cum[b + 1] = cum[b] + (double)h->counts[b];
    clip_costs_up(h->counts, first, last, up);
    if (h->absval) {
        int best_b = last;
        double best = INFINITY;
        for (int b = last; b >= first && up[b] < best; b--) {
            double delta = 2.0 * (b + 1) / n_steps;
            double cost = up[b] + cum[b + 1] * delta * delta / 12.0;
            if (cost < best) {
                best = cost;
                best_b = b;
            }
        }
        double amax = fmax(fabs((double)h->lo), fabs((double)h->hi));
        float t = (float)fmin(qc_hist_edge(h, best_b + 1), amax);
        out->lo = -t;
        out->hi = t;
    } else {
        clip_costs_down(h->counts, first, last, down);
        int64_t j0 = h->j0;
        int best_a = first, best_b = last;
        double best = INFINITY;
        for (int a = first; a <= last; a++) {
            if ((a > first && j0 + a > 0) || down[a] >= best)
                break;
            for (int b = last; b >= a; b--) {
                if ((b < last && j0 + b + 1 < 0) || down[a] + up[b] >= best)
                    break;
                double lo_u = (double)(j0 + a), hi_u = (double)(j0 + b + 1);
                double delta = (fmax(hi_u, 0.0) - fmin(lo_u, 0.0)) / n_steps;
                double cost = down[a] + up[b] + (cum[b + 1] - cum[a]) * delta * delta / 12.0;
                if (cost < best) {
                    best = cost;
                    best_a = a;
                    best_b = b;
                }
            }
        }
        out->lo = (float)fmax(qc_hist_edge(h, best_a), h->lo);
        out->hi = (float)fmin(qc_hist_edge(h, best_b + 1), h->hi);
    }
    free(up);
    free(down);
    free(cum);
    return QC_OK;
}

const qc_observer_ops qc_obs_mse = {
    "mse", mse_init, qc_hist_obs_update, qc_hist_obs_merge, mse_range, qc_hist_obs_release, NULL,
};
