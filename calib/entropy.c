/* entropy: TensorRT's KL-divergence calibration on the histogram of |x|.
 *
 * For each candidate i (number of bins kept) from L = entropy_levels up to the last non-empty
 * bin + 1 (larger i only add empty bins beyond the data):
 *   P = bins 0..i-1, with every count of bins >= i added to bin i-1 (the clipped reference);
 *   Q = the unclipped bins 0..i-1 merged into L levels (bin j goes to level floor(j * L / i)),
 *       each level's mass spread evenly over the bins of that level where P is non-zero
 *       (MXNet / ORT's expansion; bins of P that are zero stay zero);
 *   KL(P || Q), each normalized to sum 1; infinite if Q is 0 where P is not (a last level
 *   holding only outliers). Q is built from the unclipped bins, as in TensorRT's description:
 *   merging P itself would make i = L lossless (KL 0) whatever the clipping.
 * The i with the smallest KL gives t = (i + 0.5) * bin_width (TensorRT's and ncnn's
 * convention), clamped to max |x|. Ties (KL within 1e-12 nats of the minimum, far above the
 * rounding noise) go to the largest i, as in pytorch-quantization. Range: [-t, t] for
 * symmetric targets; otherwise [max(min, -t), min(max, t)] (if t falls short of one-signed
 * data, the range collapses onto the threshold and qc_qparams_from_range's zero widening makes
 * it [0, t] or [-t, 0]).
 * Bin 0 is given bin 1's count first, as NVIDIA's pytorch-quantization does: after a ReLU it
 * holds a spike of exact zeros that the merge into level 0 would spread, and the KL would then
 * favour i = L (level 0 = bin 0 alone) whatever the rest of the distribution.
 *
 * Cost: with T the total, T' = T - outliers, Pm the P-mass, M the Q-mass and n the non-zero
 * bins of each level, KL = (sum P log P - sum_levels Pm log(M / n)) / T + log(T' / T), so
 * prefix sums of c, [c != 0] and c log c make each candidate O(L): about 250k logs for
 * 2048 bins and 128 levels, four at a time (vlog.h; the level bounds without a division).
 * No histogram is smoothed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "hist.h"
#include "vlog.h"

static int ent_init(qc_observer *o, int n_ch, qc_err *err)
{
    return qc_hist_obs_init(o, n_ch, 1, err);
}

static double xlogx(double x)
{
    return x > 0 ? x * log(x) : 0.0;
}

#define KL_TIE 1e-12

/* Doubles of best_candidate's scratch (32-byte aligned): per level of a candidate its
 * Q-mass, non-zero bins and P-mass, then prefix sums and the KL of every candidate. */
static size_t scratch_len(int nbins, int levels)
{
    return 3 * (size_t)((levels + 3) & ~3) + 4 * ((size_t)nbins + 1);
}

/* sum over levels of pm log(m / n), four lanes at a time (m = n = 1 and pm = 0 where a level
 * adds nothing) */
static inline __attribute__((always_inline)) double
sum_plogq(const qc_v4d *m, const qc_v4d *n, const qc_v4d *pm, int nv)
{
    qc_v4d acc = { 0, 0, 0, 0 };
    for (int l = 0; l < nv; l++) {
        qc_v4d r = m[l] / n[l], lg;
        qc_log4d(&r, &lg);
        acc += pm[l] * lg;
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* Number of bins kept by the best candidate, or 0 if there are fewer than L bins of data.
 * pre: scratch_len doubles. */
static inline __attribute__((always_inline)) int
search(const qc_hist *h, int levels, double *pre)
{
    int nb = h->nbins, first, last;
    qc_hist_used(h, &first, &last);
    int imax = last + 1;
    if (imax <= levels)
        return 0;
    int nl = (levels + 3) & ~3;
    double *lm = pre, *ln = pre + nl, *lp = pre + 2 * nl;
    double *cnt = pre + 3 * nl, *nz = cnt + nb + 1, *plogp = nz + nb + 1, *kl = plogp + nb + 1;
    cnt[0] = nz[0] = plogp[0] = 0;
    for (int j = 0; j < nb; j++) {
        double c = (double)h->counts[j ? j : 1];        /* zero spike: see above */
        cnt[j + 1] = cnt[j] + c;
        nz[j + 1] = nz[j] + (c != 0);
        plogp[j + 1] = plogp[j] + xlogx(c);
    }
    for (int l = levels; l < nl; l++)
        lm[l] = ln[l] = 1.0, lp[l] = 0.0;
    double total = cnt[nb], best = INFINITY;
    for (int i = levels; i <= imax; i++) {
        double outl = total - cnt[i], kept = cnt[i];
        double last_bin = cnt[i] - cnt[i - 1];
        double p_last = last_bin + outl;
        double sum_plogp = plogp[i - 1] + xlogx(p_last);
        kl[i] = INFINITY;
        if (kept <= 0)
            continue;
        /* level l holds bins [ceil(l i / L), ceil((l + 1) i / L)): the ceilings step by
         * i / L with the remainder carried, no division per level */
        int qi = i / levels, ri = i % levels, s = 0, rem = levels - 1;
        for (int l = 0; l < levels; l++) {
            int e = s + qi;
            rem += ri;
            if (rem >= levels)
                rem -= levels, e++;
            double m = cnt[e] - cnt[s], n = nz[e] - nz[s];
            lm[l] = m > 0 ? m : 1.0;
            ln[l] = m > 0 ? n : 1.0;
            lp[l] = m > 0 ? m : 0.0;
            s = e;
        }
        /* the last level takes the outliers too: infinite when it held none of its own */
        if (outl > 0) {
            if (lp[levels - 1] <= 0)
                continue;
            lp[levels - 1] += outl;
            ln[levels - 1] += (p_last != 0) - (last_bin != 0);
        }
        double q = sum_plogq((const qc_v4d *)lm, (const qc_v4d *)ln, (const qc_v4d *)lp, nl / 4);
        kl[i] = (sum_plogp - q) / total + log(kept / total);
        best = fmin(best, kl[i]);
    }
    int i = imax;
    while (kl[i] > best + KL_TIE)
        i--;
    return i;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* the same operations on 256-bit registers (no FMA: the same bits as the baseline's) */
static __attribute__((target("avx2"))) int search_avx2(const qc_hist *h, int levels,
                                                       double *pre)
{
    return search(h, levels, pre);
}
#endif

/* QC_HIST_ISA=sse2 or scalar (hist.c's switch) takes the baseline: the tests compare them */
static int best_candidate(const qc_hist *h, int levels, double *pre)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const char *e = getenv("QC_HIST_ISA");
    if (__builtin_cpu_supports("avx2") && !(e && (!strcmp(e, "sse2") || !strcmp(e, "scalar"))))
        return search_avx2(h, levels, pre);
#endif
    return search(h, levels, pre);
}

static int ent_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    const qc_hist *h = qc_hist_obs_channel(o, c);
    size_t len = scratch_len(h->nbins, o->cfg.entropy_levels);
    double *pre = aligned_alloc(32, (len * sizeof *pre + 31) & ~(size_t)31);
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
    NULL,
};
