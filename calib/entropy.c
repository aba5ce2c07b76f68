/* entropy: TensorRT's KL-divergence calibration on the histogram of |x|, against the grid the
 * target actually has.
 *
 * For each candidate i (number of bins kept) from L0 = entropy_levels up to the last non-empty
 * bin + 1 (larger i only add empty bins beyond the data):
 *   P = bins 0..i-1, with every count of bins >= i added to bin i-1 (the clipped reference);
 *   Q = the unclipped bins 0..i-1 merged into L_i levels (bin j goes to level floor(j L_i / i)),
 *       each level's mass spread evenly over the bins of that level where P is non-zero
 *       (MXNet / ORT's expansion; bins of P that are zero stay zero);
 *   KL(P || Q), each normalized to sum 1; infinite if Q is 0 where P is not (a last level
 *   holding only outliers). Q is built from the unclipped bins, as in TensorRT's description:
 *   merging P itself would make i = L lossless (KL 0) whatever the clipping.
 * L_i is the number of quantization steps the target puts on [0, t_i] (t_i = (i + 0.5) bin
 * widths, at most max |x|): TensorRT's L0 = 128 is int8's [-t, t]; an asymmetric target spends
 * its steps on [max(min, -t), min(max, t)] widened to hold 0, so one-signed data (after SiLU,
 * ReLU, a sigmoid) gets up to 2 L0: L_i = L0 * s * 2 t_i / span_i, with s the target's steps
 * over 8 bits' as a power of two (1/2 with --reduce-range, 256 for 16 bits), at most i (one
 * bin a level: only clipping costs). With 128 levels for uint8 after SiLU, the search weighed
 * clipping against twice the rounding error the model gets and cut the tails it needs:
 * ddddocr's SiLU outputs to half of percentile's width (task agreement 0.55 against 0.92).
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
 * prefix sums of c, [c != 0] and c log c make each candidate O(L_i): about 250k logs for
 * 2048 bins and 128 levels (twice that for one-signed data), four at a time (vlog.h; the level
 * bounds without a division). No histogram is smoothed. */
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

/* The target's grid as the search sees it: L_i = per2t * 2 t / span (see the top). */
typedef struct grid {
    double per2t;               /* levels on [0, t] of a range [-t, t] */
    double lo, hi, amax;        /* observed min, max, max |x| */
    int    symmetric;
    int    lmax;                /* no candidate has more levels */
} grid;

static grid make_grid(const qc_hist *h, const qc_obs_config *cfg)
{
    grid g;
    g.per2t = cfg->entropy_levels * exp2(round(log2((cfg->qmax - cfg->qmin) / 255.0)));
    g.lo = h->lo;
    g.hi = h->hi;
    g.amax = fmax(fabs(g.lo), fabs(g.hi));
    g.symmetric = cfg->symmetric;
    /* span >= min(t, max |x|) >= t / 2 for t <= max |x| */
    double lm = fmin(2 * g.per2t + 1, (double)h->nbins + 1);
    g.lmax = lm > cfg->entropy_levels ? (int)lm : cfg->entropy_levels;
    return g;
}

/* Levels of candidate i (>= 2, <= i). */
static int cand_levels(const grid *g, int i, double width)
{
    double t = fmin((i + 0.5) * width, g->amax), ratio = 1.0;
    if (!g->symmetric) {
        double lo = fmin(fmax(g->lo, -t), 0.0), hi = fmax(fmin(g->hi, t), 0.0);
        ratio = 2.0 * t / (hi - lo);
    }
    double l = floor(g->per2t * ratio + 0.5);
    return l < 2 ? 2 : l > i ? i : (int)l;
}

/* Doubles of best_candidate's scratch (32-byte aligned): per level of a candidate its
 * Q-mass, non-zero bins and P-mass, then prefix sums and the KL of every candidate. */
static size_t scratch_len(int nbins, int lmax)
{
    return 3 * (size_t)((lmax + 3) & ~3) + 4 * ((size_t)nbins + 1);
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
search(const qc_hist *h, int levels, const grid *g, double *pre)
{
    int nb = h->nbins, first, last;
    qc_hist_used(h, &first, &last);
    int imax = last + 1;
    if (imax <= levels)
        return 0;
    int nl = (g->lmax + 3) & ~3;
    double width = qc_hist_width(h);
    double *lm = pre, *ln = pre + nl, *lp = pre + 2 * nl;
    double *cnt = pre + 3 * nl, *nz = cnt + nb + 1, *plogp = nz + nb + 1, *kl = plogp + nb + 1;
    cnt[0] = nz[0] = plogp[0] = 0;
    for (int j = 0; j < nb; j++) {
        double c = (double)h->counts[j ? j : 1];        /* zero spike: see above */
        cnt[j + 1] = cnt[j] + c;
        nz[j + 1] = nz[j] + (c != 0);
        plogp[j + 1] = plogp[j] + xlogx(c);
    }
    double total = cnt[nb], best = INFINITY;
    for (int i = levels; i <= imax; i++) {
        int li = cand_levels(g, i, width), nv = (li + 3) >> 2;
        for (int l = li; l < 4 * nv; l++)
            lm[l] = ln[l] = 1.0, lp[l] = 0.0;
        double outl = total - cnt[i], kept = cnt[i];
        double last_bin = cnt[i] - cnt[i - 1];
        double p_last = last_bin + outl;
        double sum_plogp = plogp[i - 1] + xlogx(p_last);
        kl[i] = INFINITY;
        if (kept <= 0)
            continue;
        /* level l holds bins [ceil(l i / L), ceil((l + 1) i / L)): the ceilings step by
         * i / L with the remainder carried, no division per level */
        int qi = i / li, ri = i % li, s = 0, rem = li - 1;
        for (int l = 0; l < li; l++) {
            int e = s + qi;
            rem += ri;
            if (rem >= li)
                rem -= li, e++;
            double m = cnt[e] - cnt[s], n = nz[e] - nz[s];
            lm[l] = m > 0 ? m : 1.0;
            ln[l] = m > 0 ? n : 1.0;
            lp[l] = m > 0 ? m : 0.0;
            s = e;
        }
        /* the last level takes the outliers too: infinite when it held none of its own */
        if (outl > 0) {
            if (lp[li - 1] <= 0)
                continue;
            lp[li - 1] += outl;
            ln[li - 1] += (p_last != 0) - (last_bin != 0);
        }
        double q = sum_plogq((const qc_v4d *)lm, (const qc_v4d *)ln, (const qc_v4d *)lp, nv);
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
                                                       const grid *g, double *pre)
{
    return search(h, levels, g, pre);
}
#endif

/* QC_HIST_ISA=sse2 or scalar (hist.c's switch) takes the baseline: the tests compare them */
static int best_candidate(const qc_hist *h, int levels, const grid *g, double *pre)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const char *e = getenv("QC_HIST_ISA");
    if (__builtin_cpu_supports("avx2") && !(e && (!strcmp(e, "sse2") || !strcmp(e, "scalar"))))
        return search_avx2(h, levels, g, pre);
#endif
    return search(h, levels, g, pre);
}

static int ent_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    const qc_hist *h = qc_hist_obs_channel(o, c);
    grid g = make_grid(h, &o->cfg);
    size_t len = scratch_len(h->nbins, g.lmax);
    double *pre = aligned_alloc(32, (len * sizeof *pre + 31) & ~(size_t)31);
    if (!pre)
        return qc_errf(err, QC_ENOMEM, "observer 'entropy': out of memory");
    int i = best_candidate(h, o->cfg.entropy_levels, &g, pre);
    free(pre);
    float t = (float)(i ? fmin((i + 0.5) * qc_hist_width(h), g.amax) : g.amax);
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
