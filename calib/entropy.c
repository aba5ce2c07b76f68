/* entropy: TensorRT's KL-divergence calibration on the histogram of |x|.
 *
 * For each candidate i (number of bins kept) from L = entropy_levels up to the last non-empty
 * bin + 1 (larger i only add empty bins beyond the data):
 *   P = bins 0..i-1, with every count of bins >= i added to bin i-1;
 *   Q = P merged into L levels (bin j goes to level floor(j * L / i)), each level's mass then
 *       spread evenly over the bins of that level where P is non-zero;
 *   KL(P || Q) with both normalized (they have the same mass, and Q > 0 wherever P > 0, so no
 *   smoothing is needed).
 * The i with the smallest KL (first on ties) gives t = (i + 0.5) * bin_width (TensorRT's and
 * ncnn's convention), clamped to max |x|. Range: [-t, t] for symmetric targets; otherwise
 * [max(min, -t), min(max, t)] (if t falls short of one-signed data, the range collapses onto
 * the threshold and qc_qparams_from_range's zero widening makes it [0, t] or [-t, 0]).
 *
 * Cost: KL * total = sum P log P - sum_levels M log(M / n) (M level mass, n its non-zero bins),
 * so prefix sums of c, [c != 0] and c log c make each candidate O(L): about 250k logs for
 * 2048 bins and 128 levels. */
#include <math.h>
#include <stdlib.h>
#include "hist.h"

static int ent_init(qc_observer *o, int n_ch, qc_err *err)
{
    return qc_hist_obs_init(o, n_ch, 1, err);
}

static double xlogx(double x)
{
    return x > 0 ? x * log(x) : 0.0;
}

/* Number of bins kept by the best candidate, or 0 if there are fewer than L bins of data. */
static int best_candidate(const qc_hist *h, int levels, double *pre)
{
    int nb = h->nbins, first, last;
    qc_hist_used(h, &first, &last);
    int imax = last + 1;
    if (imax <= levels)
        return 0;
    double *cnt = pre, *nz = pre + nb + 1, *plogp = pre + 2 * (nb + 1);
    cnt[0] = nz[0] = plogp[0] = 0;
    for (int j = 0; j < nb; j++) {
        double c = (double)h->counts[j];
        cnt[j + 1] = cnt[j] + c;
        nz[j + 1] = nz[j] + (c != 0);
        plogp[j + 1] = plogp[j] + xlogx(c);
    }
    double total = cnt[nb], best = INFINITY;
    int best_i = imax;
    for (int i = levels; i <= imax; i++) {
        double outl = total - cnt[i];
        double last_bin = (double)h->counts[i - 1];
        double p_last = last_bin + outl;
        double sum_plogp = plogp[i - 1] + xlogx(p_last);
        double sum_mlogq = 0;
        for (int l = 0; l < levels; l++) {
            /* level l holds bins [ceil(l i / L), ceil((l + 1) i / L)) */
            int64_t s = ((int64_t)l * i + levels - 1) / levels;
            int64_t e = ((int64_t)(l + 1) * i + levels - 1) / levels;
            double m = cnt[e] - cnt[s], n = nz[e] - nz[s];
            if (l == levels - 1) {
                m += outl;
                n += (p_last != 0) - (last_bin != 0);
            }
            if (m > 0)
                sum_mlogq += m * log(m / n);
        }
        double kl = (sum_plogp - sum_mlogq) / total;
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    return best_i;
}

static int ent_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    const qc_hist *h = qc_hist_obs_channel(o, c);
    double *pre = malloc(3 * ((size_t)h->nbins + 1) * sizeof *pre);
    if (!pre)
        return qc_errf(err, QC_ENOMEM, "observer 'entropy': out of memory");
    int i = best_candidate(h, o->cfg.entropy_levels, pre);
    free(pre);
    double amax = fmax(fabs((double)h->lo), fabs((double)h->hi));
    float t = (float)(i ? fmin((i + 0.5) * qc_hist_width(h), amax) : amax);
    if (o->cfg.symmetric) {
        out->lo = -t;
        out->hi = t;
    } else {
        out->lo = fmaxf(h->lo, -t);
        out->hi = fminf(h->hi, t);
        if (out->lo > out->hi) {
            if (h->lo > 0)
                out->lo = out->hi;
            else
                out->hi = out->lo;
        }
    }
    return QC_OK;
}

const qc_observer_ops qc_obs_entropy = {
    "entropy", ent_init, qc_hist_obs_update, qc_hist_obs_merge, ent_range, qc_hist_obs_release,
};
