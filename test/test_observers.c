/* Calibration observers and range -> scale/zero point.
 * Expected ranges come from test/oracles/observers_ref.py (numpy, independent implementations),
 * run with $QC_PYTHON (default .venv/bin/python) from the repository root: the data are
 * written by this file to a temporary .bin (format in the script's docstring). Without python
 * the oracle tests fail. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "hist.h"
#include "qc_observer.h"
#include "qc_qparams.h"
#include "test.h"
#include "vlog.h"

#define ORACLE "test/oracles/observers_ref.py"

/* ---- deterministic data ---- */

static uint64_t rng = 88172645463325252ull;

static void seed(uint64_t s)                /* each test seeds: reproducible when run alone */
{
    rng = 88172645463325252ull ^ (s * 0x9e3779b97f4a7c15ull);
}

static double urand(void)                   /* xorshift64*, uniform in (0, 1) */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return ((double)((rng * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
}

static float gauss(void)
{
    return (float)(sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()));
}

#define MAX_BATCHES 16

typedef struct dataset {
    int     nb;
    int64_t sizes[MAX_BATCHES];
    int64_t n;
    float  *x;
} dataset;

static const float *batch(const dataset *d, int b)
{
    int64_t off = 0;
    for (int i = 0; i < b; i++)
        off += d->sizes[i];
    return d->x + off;
}

static void alloc_dataset(dataset *d, int nb, const int64_t *sizes)
{
    d->nb = nb;
    d->n = 0;
    for (int i = 0; i < nb; i++)
        d->n += d->sizes[i] = sizes[i];
    d->x = malloc((size_t)d->n * sizeof *d->x);
}

/* Signed, growing scale (forces re-binning), Laplace-like tails, outliers, NaN/Inf. The first
 * batch is a single 0 so the histogram starts with an all-zero grid. */
static void make_signed(dataset *d)
{
    seed(1);
    static const int64_t sizes[] = { 1, 5000, 20000, 777, 30000, 12345, 4096, 9000 };
    alloc_dataset(d, 8, sizes);
    d->x[0] = 0.0f;
    float *x = d->x + 1;
    for (int b = 1; b < d->nb; b++) {
        float scale = 0.25f * (float)b;
        for (int64_t i = 0; i < d->sizes[b]; i++) {
            float v = 0.3f + gauss();
            if (urand() < 0.05)
                v *= (float)(-log(urand()) * 3.0);      /* heavy tail */
            x[i] = scale * v;
        }
        x += d->sizes[b];
    }
    d->x[100] = NAN;
    d->x[2000] = INFINITY;
    d->x[30000] = -INFINITY;
    d->x[40000] = 40.0f;
    d->x[50000] = -15.0f;
}

/* ReLU-like: half zeros, right tail. */
static void make_relu(dataset *d)
{
    seed(2);
    static const int64_t sizes[] = { 40000, 123, 25000, 60000 };
    alloc_dataset(d, 4, sizes);
    for (int64_t i = 0; i < d->n; i++) {
        float v = gauss() + 0.1f;
        if (urand() < 0.01)
            v *= 6.0f;
        d->x[i] = v > 0 ? v : 0.0f;
    }
    d->x[7] = NAN;
}

/* Far from zero and narrow: cell indices beyond the float fast path of hist.c. */
static void make_offset(dataset *d)
{
    seed(3);
    static const int64_t sizes[] = { 3000, 17000, 9 };
    alloc_dataset(d, 3, sizes);
    for (int64_t i = 0; i < d->n; i++)
        d->x[i] = 1e6f + 50.0f * gauss() * (float)(1 + i / 10000);
}

/* ---- observers under test ---- */

enum { K_MINMAX, K_EMA, K_PCT_S, K_PCT_A, K_MSE_S, K_MSE_A, K_ENT_S, K_ENT_A, N_K };
static const char *const k_method[N_K] = { "minmax", "ema", "percentile", "percentile", "mse",
                                           "mse", "entropy", "entropy" };
static const char *const k_name[N_K] = { "minmax", "ema", "percentile_sym", "percentile_asym",
                                         "mse_sym", "mse_asym", "entropy_sym", "entropy_asym" };

static void kind_config(int k, qc_obs_config *cfg)
{
    qc_obs_config_default(cfg);
    cfg->ema_constant = 0.3f;               /* large, so that each batch visibly matters */
    if (k == K_PCT_S || k == K_MSE_S || k == K_ENT_S) {
        cfg->symmetric = 1;
        cfg->qmin = -127;
        cfg->qmax = 127;
    }
    if (k == K_PCT_S || k == K_PCT_A)
        cfg->percentile = 99.9f;            /* 99.999 keeps almost nothing out on 80k values */
}

static qc_observer *new_kind(int k)
{
    qc_obs_config cfg;
    qc_observer *o = NULL;
    qc_err err = { 0 };
    kind_config(k, &cfg);
    CHECK_OK(qc_observer_new(&o, k_method[k], &cfg, &err));
    return o;
}

static void feed(qc_observer *o, const float *x, int64_t n, int shape_variant)
{
    qc_err err = { 0 };
    qc_tensor t = { .name = "t", .dtype = QC_F32, .data = (void *)x };
    if (shape_variant % 2) {                /* shapes vary: [1, n] or [n] */
        t.ndim = 2;
        t.dims[0] = 1;
        t.dims[1] = n;
    } else {
        t.ndim = 1;
        t.dims[0] = n;
    }
    CHECK_OK(qc_observer_update(o, &t, &err));
}

static void feed_order(qc_observer *o, const dataset *d, const int *order)
{
    for (int i = 0; i < d->nb; i++) {
        int b = order ? order[i] : i;
        feed(o, batch(d, b), d->sizes[b], b);
    }
}

static qc_range range_of(const qc_observer *o, int c)
{
    qc_err err = { 0 };
    qc_range r = { NAN, NAN };
    CHECK_OK(qc_observer_range(o, c, &r, &err));
    return r;
}

static double bin_width(const qc_observer *o, int c)
{
    return qc_hist_width(qc_hist_obs_channel(o, c));
}

static int is_hist(int k)
{
    return k >= K_PCT_S;
}

/* ---- oracle ---- */

static const char *python(void)
{
    const char *p = getenv("QC_PYTHON");
    return p && *p ? p : ".venv/bin/python";
}

/* Runs `observers_ref.py mode path`; returns the number of lines read into out (or -1). */
static int run_oracle(const char *mode, const char *path, char out[][256], int max_lines)
{
    char cmd[1024];
    if (access(ORACLE, R_OK) != 0) {
        qc_test_fail(__FILE__, __LINE__, "oracle %s not found (run from the repository root)",
                     ORACLE);
        return -1;
    }
    snprintf(cmd, sizeof cmd, "'%s' " ORACLE " %s '%s'", python(), mode, path);
    FILE *p = popen(cmd, "r");
    if (!p) {
        qc_test_fail(__FILE__, __LINE__, "cannot run %s", cmd);
        return -1;
    }
    int n = 0;
    while (n < max_lines && fgets(out[n], 256, p))
        n++;
    int st = pclose(p);
    if (st != 0) {
        qc_test_fail(__FILE__, __LINE__, "%s exited with status %d (set QC_PYTHON to a python "
                     "with numpy and onnxruntime)", cmd, st);
        return -1;
    }
    return n;
}

static void temp_path(char *buf, size_t n, const char *tag)
{
    const char *dir = qc_test_build_dir();
    if (access(dir, W_OK) != 0)
        dir = "/tmp";
    snprintf(buf, n, "%s/test_observers_%s_%ld.bin", dir, tag, (long)getpid());
}

static int write_dataset(const char *path, const dataset *d)
{
    qc_obs_config s, a;
    kind_config(K_MSE_S, &s);
    kind_config(K_MSE_A, &a);
    qc_obs_config p;
    kind_config(K_PCT_A, &p);
    int32_t hdr[7] = { d->nb, a.bins, a.entropy_levels, s.qmin, s.qmax, a.qmin, a.qmax };
    float fl[2] = { p.percentile, a.ema_constant };
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(fl, sizeof fl, 1, f) == 1 &&
             fwrite(d->sizes, sizeof d->sizes[0], (size_t)d->nb, f) == (size_t)d->nb &&
             fwrite(d->x, sizeof *d->x, (size_t)d->n, f) == (size_t)d->n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void check_against_oracle(const dataset *d, const char *tag, int64_t nonfinite)
{
    char path[512], lines[N_K][256];
    temp_path(path, sizeof path, tag);
    if (write_dataset(path, d) != 0) {
        qc_test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    int n = run_oracle("ranges", path, lines, N_K);
    remove(path);
    if (n != N_K) {
        if (n >= 0)
            qc_test_fail(__FILE__, __LINE__, "oracle printed %d lines, expected %d", n, N_K);
        return;
    }
    for (int k = 0; k < N_K; k++) {
        char name[64];
        double lo, hi, w;
        if (sscanf(lines[k], "%63s %lf %lf %lf", name, &lo, &hi, &w) != 4 ||
            strcmp(name, k_name[k]) != 0) {
            qc_test_fail(__FILE__, __LINE__, "bad oracle line '%s'", lines[k]);
            continue;
        }
        qc_observer *o = new_kind(k);
        feed_order(o, d, NULL);
        qc_range r = range_of(o, 0);
        double tol = 1e-6 * fmax(fabs(lo), fabs(hi));
        if (is_hist(k)) {
            CHECK_NEAR(bin_width(o, 0), w, 0, 0);      /* same grid */
            tol += w;                                  /* within one bin */
        }
        if (!(fabs(r.lo - lo) <= tol && fabs(r.hi - hi) <= tol))
            qc_test_fail(__FILE__, __LINE__, "%s (%s): [%.9g, %.9g], oracle [%.9g, %.9g], "
                         "bin width %.3g", k_name[k], tag, (double)r.lo, (double)r.hi, lo, hi, w);
        printf("    %-16s %-6s qcal [%10.6f, %10.6f]  numpy [%10.6f, %10.6f]  bin %.3g\n",
               k_name[k], tag, (double)r.lo, (double)r.hi, lo, hi, w);
        CHECK_INT(qc_observer_nonfinite(o), nonfinite);
        qc_observer_free(o);
    }
}

QC_TEST(observers_oracle_signed)
{
    dataset d;
    make_signed(&d);
    check_against_oracle(&d, "signed", 3);
    free(d.x);
}

QC_TEST(observers_oracle_relu)
{
    dataset d;
    make_relu(&d);
    check_against_oracle(&d, "relu", 1);
    free(d.x);
}

QC_TEST(observers_oracle_offset)
{
    dataset d;
    make_offset(&d);
    check_against_oracle(&d, "offset", 0);
    free(d.x);
}

/* ---- order independence and merge ---- */

static int same_range(qc_range a, qc_range b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

QC_TEST(observers_order_independent)
{
    dataset d;
    make_signed(&d);
    static const int reversed[] = { 7, 6, 5, 4, 3, 2, 1, 0 };
    static const int shuffled[] = { 4, 0, 6, 2, 7, 1, 5, 3 };
    for (int k = 0; k < N_K; k++) {
        if (k == K_EMA)
            continue;                       /* order dependent by definition */
        qc_observer *a = new_kind(k), *b = new_kind(k), *c = new_kind(k);
        feed_order(a, &d, NULL);
        feed_order(b, &d, reversed);
        feed_order(c, &d, shuffled);
        qc_range ra = range_of(a, 0), rb = range_of(b, 0), rc = range_of(c, 0);
        double w = is_hist(k) ? bin_width(a, 0) : 0;
        /* the requirement is one bin; the power-of-two grid makes it exact */
        CHECK(fabs(ra.lo - rb.lo) <= w && fabs(ra.hi - rb.hi) <= w);
        if (!same_range(ra, rb) || !same_range(ra, rc))
            qc_test_fail(__FILE__, __LINE__, "%s: [%.9g, %.9g] / [%.9g, %.9g] / [%.9g, %.9g]",
                         k_name[k], (double)ra.lo, (double)ra.hi, (double)rb.lo,
                         (double)rb.hi, (double)rc.lo, (double)rc.hi);
        if (is_hist(k)) {
            const qc_hist *ha = qc_hist_obs_channel(a, 0), *hb = qc_hist_obs_channel(b, 0);
            CHECK(ha->k == hb->k && ha->j0 == hb->j0 &&
                  memcmp(ha->counts, hb->counts, (size_t)ha->nbins * 8) == 0);
        }
        qc_observer_free(a);
        qc_observer_free(b);
        qc_observer_free(c);
    }
    free(d.x);
}

QC_TEST(observers_merge_equals_single_pass)
{
    dataset d;
    make_signed(&d);
    qc_err err = { 0 };
    static const int shard_of[] = { 0, 1, 2, 0, 1, 2, 0, 1 };
    for (int k = 0; k < N_K; k++) {
        qc_observer *one = new_kind(k), *sh[3] = { new_kind(k), new_kind(k), new_kind(k) };
        qc_observer *empty = new_kind(k);
        feed_order(one, &d, NULL);
        for (int b = 0; b < d.nb; b++)
            feed(sh[shard_of[b]], batch(&d, b), d.sizes[b], b);
        CHECK_OK(qc_observer_merge(sh[1], empty, &err));        /* no-op */
        CHECK_OK(qc_observer_merge(empty, sh[1], &err));        /* copy */
        CHECK_OK(qc_observer_merge(sh[0], empty, &err));
        CHECK_OK(qc_observer_merge(sh[0], sh[2], &err));
        qc_range r1 = range_of(one, 0), rm = range_of(sh[0], 0);
        CHECK_INT(qc_observer_count(sh[0]), qc_observer_count(one));
        CHECK_INT(qc_observer_nonfinite(sh[0]), qc_observer_nonfinite(one));
        if (k == K_EMA) {
            /* weighted average of the shard states: lies between minmax-like extremes */
            CHECK(rm.lo <= rm.hi && rm.lo >= -20 && rm.hi <= 40);
        } else {
            double w = is_hist(k) ? bin_width(one, 0) : 0;
            CHECK(fabs(r1.lo - rm.lo) <= w && fabs(r1.hi - rm.hi) <= w);
            if (!same_range(r1, rm))
                qc_test_fail(__FILE__, __LINE__, "%s: merged [%.9g, %.9g], one pass "
                             "[%.9g, %.9g]", k_name[k], (double)rm.lo, (double)rm.hi,
                             (double)r1.lo, (double)r1.hi);
        }
        qc_observer_free(one);
        qc_observer_free(empty);
        for (int i = 0; i < 3; i++)
            qc_observer_free(sh[i]);
    }
    free(d.x);
}

QC_TEST(observers_ema_merge_weighted)
{
    qc_err err = { 0 };
    qc_observer *a = new_kind(K_EMA), *b = new_kind(K_EMA);
    float x1[] = { -1, 1 }, x2[] = { -3, 5 };
    feed(a, x1, 2, 0);                      /* a: 1 update at [-1, 1] */
    feed(b, x2, 2, 0);
    feed(b, x2, 2, 0);
    feed(b, x2, 2, 0);                      /* b: 3 updates at [-3, 5] */
    CHECK_OK(qc_observer_merge(a, b, &err));
    qc_range r = range_of(a, 0);
    CHECK_NEAR(r.lo, (-1.0 * 1 - 3.0 * 3) / 4, 1e-6, 1e-6);
    CHECK_NEAR(r.hi, (1.0 * 1 + 5.0 * 3) / 4, 1e-6, 1e-6);
    /* single-stream semantics: first update initializes, then x += c (x_new - x) */
    qc_observer *e = new_kind(K_EMA);
    feed(e, x1, 2, 0);
    feed(e, x2, 2, 0);
    r = range_of(e, 0);
    CHECK_NEAR(r.lo, -1.0f + 0.3f * (-3.0f + 1.0f), 1e-6, 1e-6);
    CHECK_NEAR(r.hi, 1.0f + 0.3f * (5.0f - 1.0f), 1e-6, 1e-6);
    qc_observer_free(a);
    qc_observer_free(b);
    qc_observer_free(e);
}

/* The point of mse: fake-quantizing with its range gives a lower error than minmax. */
static double quant_mse(const dataset *d, qc_range r, int sym, int qmin, int qmax)
{
    float s;
    int32_t zp;
    if (qc_qparams_from_range(r, sym, qmin, qmax, &s, &zp) != QC_OK)
        return INFINITY;
    double e = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < d->n; i++) {
        float v = d->x[i];
        if (!isfinite(v))
            continue;
        float q = nearbyintf(v / s) + (float)zp;
        q = q < qmin ? (float)qmin : q > qmax ? (float)qmax : q;
        double dq = ((double)q - zp) * s - v;
        e += dq * dq;
        n++;
    }
    return e / (double)n;
}

QC_TEST(observers_mse_reduces_error)
{
    dataset d;
    make_signed(&d);
    static const int groups[2][4] = { { K_MINMAX, K_PCT_A, K_MSE_A, K_ENT_A },
                                      { K_MINMAX, K_PCT_S, K_MSE_S, K_ENT_S } };
    for (int g = 0; g < 2; g++) {
        double e[4];
        printf("    quantization MSE (%s):", g ? "int8 symmetric" : "uint8");
        for (int i = 0; i < 4; i++) {
            int k = groups[g][i];
            qc_obs_config cfg;
            kind_config(k, &cfg);
            if (g && k == K_MINMAX) {
                cfg.symmetric = 1;
                cfg.qmin = -127;
                cfg.qmax = 127;
            }
            qc_observer *o = new_kind(k);
            feed_order(o, &d, NULL);
            e[i] = quant_mse(&d, range_of(o, 0), cfg.symmetric, cfg.qmin, cfg.qmax);
            printf(" %s %.3g", k_name[k], e[i]);
            qc_observer_free(o);
        }
        printf("\n");
        CHECK(e[2] < e[0]);                 /* mse beats minmax */
        CHECK(e[2] <= e[1] * 1.02 && e[2] <= e[3] * 1.02);
    }
    free(d.x);
}

/* ---- per channel ---- */

QC_TEST(observers_per_channel)
{
    seed(10);
    enum { N = 2, C = 5, H = 7, W = 11 };
    qc_err err = { 0 };
    static float x[3 * C * H * W];
    for (int i = 0; i < 3 * C * H * W; i++)
        x[i] = gauss() * (float)(1 + (i / (H * W)) % C) + 0.1f * (float)((i / (H * W)) % C);
    x[3] = NAN;                             /* channel 0 */
    for (int k = 0; k < N_K; k++) {
        qc_obs_config cfg;
        kind_config(k, &cfg);
        cfg.per_channel_axis = 1;
        cfg.bins = 256;
        cfg.entropy_levels = 32;
        qc_observer *o = NULL;
        CHECK_OK(qc_observer_new(&o, k_method[k], &cfg, &err));
        CHECK_INT(qc_observer_n_channels(o), 0);
        qc_tensor t = { .name = "w", .dtype = QC_F32, .ndim = 4, .dims = { N, C, H, W },
                        .data = x };
        CHECK_OK(qc_observer_update(o, &t, &err));
        t.dims[0] = 3;                      /* batch varies, channels do not */
        CHECK_OK(qc_observer_update(o, &t, &err));
        CHECK_INT(qc_observer_n_channels(o), C);
        CHECK_INT(qc_observer_nonfinite(o), 2);
        t.dims[0] = 1;
        t.dims[1] = C - 1;
        CHECK_INT(qc_observer_update(o, &t, &err), QC_ESHAPE);
        t.ndim = 1;
        CHECK_INT(qc_observer_update(o, &t, &err), QC_ESHAPE);
        qc_range r;
        CHECK_INT(qc_observer_range(o, C, &r, &err), QC_EUSAGE);
        /* each channel equals a per-tensor observer fed that channel's values */
        for (int c = 0; c < C; c++) {
            qc_obs_config pc = cfg;
            pc.per_channel_axis = -1;
            qc_observer *ref = NULL;
            CHECK_OK(qc_observer_new(&ref, k_method[k], &pc, &err));
            for (int rep = 0; rep < 2; rep++) {         /* the same two updates */
                int nb = rep ? 3 : N;
                float chan[3 * H * W];
                for (int n = 0; n < nb; n++)
                    memcpy(chan + n * H * W, x + (n * C + c) * H * W, H * W * sizeof *x);
                feed(ref, chan, nb * H * W, rep);
            }
            qc_range rc = range_of(o, c), rr = range_of(ref, 0);
            if (!same_range(rc, rr))
                qc_test_fail(__FILE__, __LINE__, "%s channel %d: [%g, %g], expected [%g, %g]",
                             k_name[k], c, (double)rc.lo, (double)rc.hi, (double)rr.lo,
                             (double)rr.hi);
            qc_observer_free(ref);
        }
        if (k == K_MINMAX) {                /* plain loop */
            for (int c = 0; c < C; c++) {
                float lo = INFINITY, hi = -INFINITY;
                for (int n = 0; n < 3; n++)
                    for (int i = 0; i < H * W; i++) {
                        float v = x[(n * C + c) * H * W + i];
                        if (isfinite(v)) {
                            lo = fminf(lo, v);
                            hi = fmaxf(hi, v);
                        }
                    }
                qc_range rc = range_of(o, c);
                CHECK(rc.lo == lo && rc.hi == hi);
            }
        }
        qc_observer_free(o);
    }
}

/* ---- edge cases ---- */

QC_TEST(observers_constant_tensor)
{
    qc_err err = { 0 };
    static float three[1000], zero[1000], neg[1000];
    for (int i = 0; i < 1000; i++) {
        three[i] = 3.0f;
        neg[i] = -0.25f;
    }
    for (int k = 0; k < N_K; k++) {
        const float *data[3] = { three, zero, neg };
        for (int v = 0; v < 3; v++) {
            qc_observer *o = new_kind(k);
            feed(o, data[v], 1000, 0);
            feed(o, data[v], 500, 1);
            qc_range r = range_of(o, 0);
            qc_obs_config cfg;
            kind_config(k, &cfg);
            float s = 0;
            int32_t zp = -999;
            CHECK_OK(qc_qparams_from_range(r, cfg.symmetric, cfg.qmin, cfg.qmax, &s, &zp));
            CHECK(isnormal(s) && s > 0);
            CHECK(zp >= cfg.qmin && zp <= cfg.qmax);
            float c = data[v][0];
            if (v == 1) {
                CHECK(r.lo == 0 && r.hi == 0);
                CHECK(s == 1.0f);
            } else if (cfg.symmetric) {
                CHECK(r.lo == -fabsf(c) && r.hi == fabsf(c));
            } else {
                CHECK(r.lo == c && r.hi == c);
            }
            if (v == 0 && !cfg.symmetric) {
                CHECK_NEAR(s, 3.0 / 255, 1e-7, 0);
                CHECK_INT(zp, 0);
            }
            qc_observer_free(o);
        }
    }
}

QC_TEST(observers_nonfinite_skipped)
{
    qc_err err = { 0 };
    float x[] = { 1.0f, NAN, -2.0f, INFINITY, -INFINITY, 3.0f, NAN };
    float allnan[] = { NAN, NAN, INFINITY };
    for (int k = 0; k < N_K; k++) {
        qc_observer *o = new_kind(k);
        qc_range r;
        feed(o, allnan, 3, 0);
        CHECK_INT(qc_observer_nonfinite(o), 3);
        CHECK_INT(qc_observer_range(o, 0, &r, &err), QC_EINPUT);
        CHECK(strstr(err.msg, "no finite") != NULL);
        feed(o, x, 7, 1);
        CHECK_INT(qc_observer_nonfinite(o), 7);
        CHECK_INT(qc_observer_count(o), 3);
        r = range_of(o, 0);
        CHECK(isfinite(r.lo) && isfinite(r.hi));
        CHECK(r.lo >= -3.0f && r.hi <= 3.0f);
        if (k == K_MINMAX || k == K_EMA)
            CHECK(r.lo == -2.0f && r.hi == 3.0f);
        qc_observer_free(o);
    }
}

QC_TEST(observers_memory_constant)
{
    seed(11);
    static float x[4096];
    for (int i = 0; i < 4096; i++)
        x[i] = gauss() * (float)(1 + i % 7);
    for (int k = 0; k < N_K; k++) {
        for (int pc = 0; pc < 2; pc++) {
            qc_obs_config cfg;
            qc_err err = { 0 };
            kind_config(k, &cfg);
            cfg.per_channel_axis = pc ? 1 : -1;
            qc_observer *o = NULL;
            CHECK_OK(qc_observer_new(&o, k_method[k], &cfg, &err));
            size_t at10 = 0;
            for (int u = 1; u <= 1000; u++) {
                int64_t rows = 1 + (u * 7919) % 64;             /* varying batch */
                float scale = 1.0f + (float)(u % 13);           /* and growing range */
                qc_tensor t = { .name = "t", .dtype = QC_F32, .ndim = 2, .dims = { rows, 64 },
                                .data = x };
                for (int i = 0; i < 64; i++)
                    x[i] = scale * gauss();
                CHECK_OK(qc_observer_update(o, &t, &err));
                if (u == 10)
                    at10 = qc_observer_state_bytes(o);
            }
            CHECK_INT(qc_observer_state_bytes(o), at10);
            CHECK(at10 < (size_t)(pc ? 64 : 1) * 2048 * 8 + 65536);
            qc_observer_free(o);
        }
    }
}

QC_TEST(observers_errors)
{
    qc_err err = { 0 };
    qc_observer *o = NULL, *p = NULL;
    CHECK_INT(qc_observer_new(&o, "kl", NULL, &err), QC_EUSAGE);
    CHECK(o == NULL && strstr(err.msg, "'kl'") && strstr(err.msg, "minmax") &&
          strstr(err.msg, "entropy"));
    qc_obs_config cfg;
    qc_obs_config_default(&cfg);
    cfg.qmin = 5;
    cfg.qmax = 5;
    CHECK_INT(qc_observer_new(&o, "minmax", &cfg, &err), QC_EUSAGE);
    qc_obs_config_default(&cfg);
    cfg.bins = 1;
    CHECK_INT(qc_observer_new(&o, "entropy", &cfg, &err), QC_EUSAGE);
    qc_obs_config_default(&cfg);
    cfg.percentile = 30;
    CHECK_INT(qc_observer_new(&o, "percentile", &cfg, &err), QC_EUSAGE);
    CHECK_OK(qc_observer_new(&o, "mse", NULL, &err));
    CHECK_OK(qc_observer_new(&p, "percentile", NULL, &err));
    CHECK_INT(qc_observer_merge(o, p, &err), QC_EUSAGE);
    qc_observer_free(p);
    qc_obs_config_default(&cfg);
    cfg.bins = 1024;
    CHECK_OK(qc_observer_new(&p, "mse", &cfg, &err));
    CHECK_INT(qc_observer_merge(o, p, &err), QC_EUSAGE);
    int32_t iv[4] = { 1, 2, 3, 4 };
    qc_tensor t = { .name = "ids", .dtype = QC_I32, .ndim = 1, .dims = { 4 }, .data = iv };
    CHECK_INT(qc_observer_update(o, &t, &err), QC_EUNSUPPORTED);
    CHECK(strstr(err.msg, "ids") != NULL);
    t.dtype = QC_F32;
    t.dims[0] = 0;                          /* empty tensor: nothing to see */
    CHECK_OK(qc_observer_update(o, &t, &err));
    CHECK_INT(qc_observer_count(o), 0);
    qc_observer_free(o);
    qc_observer_free(p);
}

/* ---- histogram grid ---- */

/* The cell of x on grid k, written out independently of hist.c: floor(x / 2^k) for x >= 0,
 * -floor(|x| / 2^k) - 1 for x < 0 (cells symmetric about 0; a negative value on the lattice
 * belongs to the cell below it). */
static double cell_of(double x, int k)
{
    return x < 0 ? -floor(ldexp(-x, -k)) - 1 : floor(ldexp(x, -k));
}

QC_TEST(hist_grid_minimal)
{
    seed(12);
    for (int it = 0; it < 2000; it++) {
        int nbins = it % 3 == 0 ? 2048 : 2 + (int)(urand() * 3000);
        double e = exp((urand() - 0.5) * 60);
        double lo = (urand() - 0.7) * e, hi = lo + urand() * e * (it % 5 ? 1 : 1e-7);
        if (it % 4 == 0)
            lo = 0;
        lo = (float)lo;
        hi = (float)hi;
        if (hi < lo)
            hi = lo;
        int k;
        int64_t j0;
        qc_hist_grid(nbins, lo, hi, &k, &j0);
        double cl = cell_of(lo, k), ch = cell_of(hi, k);
        CHECK(cl == (double)j0 && ch - cl <= nbins - 1);
        double a = fmax(fabs(lo), fabs(hi));
        int kf = a > 0 ? ilogb(a) - 40 : -200;
        if (k > kf)                         /* one step finer would not fit */
            CHECK(cell_of(hi, k - 1) - cell_of(lo, k - 1) > nbins - 1);
        if (hi - lo > 0 && k > kf)          /* data span at least half the bins */
            CHECK((hi - lo) / ldexp(1.0, k) >= nbins / 2.0 - 2);
    }
}

/* Every value lands in cell cell_of(x, k) - j0 of the final grid (|x| histograms:
 * floor(|x| 2^-k)), whatever path bins it (float fast path, double path, re-binning after
 * growth). */
static void check_counts(const float *x, int64_t n, int absval, const char *what)
{
    qc_obs_config cfg;
    qc_err err = { 0 };
    qc_observer *o = NULL;
    qc_obs_config_default(&cfg);
    cfg.symmetric = absval;
    cfg.bins = 1000;                        /* not a power of two */
    CHECK_OK(qc_observer_new(&o, "percentile", &cfg, &err));
    for (int64_t i = 0, step = 1; i < n; i += step, step = step * 3 + 1)
        feed(o, x + i, step < n - i ? step : n - i, (int)step);
    const qc_hist *h = qc_hist_obs_channel(o, 0);
    uint64_t *want = calloc(1000, sizeof *want), sum = 0;
    int64_t finite = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        double v = absval ? fabs((double)x[i]) : (double)x[i];
        int64_t b = (int64_t)cell_of(v, h->k) - h->j0;
        finite++;
        if (b < 0 || b >= 1000)
            qc_test_fail(__FILE__, __LINE__, "%s: value %g outside the grid", what, v);
        else
            want[b]++;
    }
    int bad = 0;
    for (int b = 0; b < 1000; b++) {
        sum += h->counts[b];
        bad += h->counts[b] != want[b];
    }
    if (bad)
        qc_test_fail(__FILE__, __LINE__, "%s (%s): %d bins differ from direct binning", what,
                     absval ? "|x|" : "x", bad);
    CHECK_INT(sum, finite);
    CHECK_INT(h->total, finite);
    free(want);
    qc_observer_free(o);
}

static void counts_cases(float *x, int n)
{
    seed(15);
    for (int absval = 0; absval < 2; absval++) {
        for (int i = 0; i < n; i++)         /* wide: bins wider than 1 */
            x[i] = 300.0f * gauss();
        /* in a small feed (scalar / 8-wide paths) and in big ones (16-wide) */
        for (int at = 5; at + 4 < n; at += 6007) {
            x[at] = -1.4e-45f;              /* scaled product underflows to -0 */
            x[at + 1] = 1.4e-45f;
            x[at + 2] = -0.0f;
            x[at + 3] = -1e-40f;
            x[at + 4] = NAN;
        }
        for (int at = 11; at + 2 < n; at += 4001) {     /* negatives on the lattice */
            x[at] = -64.0f;
            x[at + 1] = -1024.0f;
            x[at + 2] = -96.0f;
        }
        check_counts(x, n, absval, "wide");
        for (int i = 0; i < n; i++)         /* far from 0: double path */
            x[i] = 1e6f + 50.0f * gauss();
        check_counts(x, n, absval, "offset");
        for (int i = 0; i < n; i++)         /* tiny, subnormals: double path */
            x[i] = 1e-37f * gauss() * (float)(i % 7);
        check_counts(x, n, absval, "tiny");
        for (int i = 0; i < n; i++)         /* growing by 10^6 while streaming */
            x[i] = gauss() * powf(10.0f, -3.0f + 6.0f * (float)i / n);
        check_counts(x, n, absval, "growing");
    }
}

QC_TEST(hist_counts_exact)
{
    /* every binning path the CPU has (hist.c: QC_HIST_ISA caps the widest one) */
    static const char *const isa[] = { "avx2", "sse2", "scalar" };
    enum { N = 20000 };
    float *x = malloc(N * sizeof *x);
    unsetenv("QC_HIST_ISA");
    counts_cases(x, N);
    for (int p = 0; p < 3; p++) {
        setenv("QC_HIST_ISA", isa[p], 1);
        counts_cases(x, N);
    }
    unsetenv("QC_HIST_ISA");
    free(x);
}

/* A long run of one value: 36M values of 1.0 after a feed that set the range [0, 2] (so the
 * big one takes the one-pass path), all in one bin, every increment chained through the same
 * four local counts. Written when those counts were uint16 and hist.c had to flush them before
 * they overflowed (over 64 x 8 x 65535 values a feed); as uint32 they would overflow only past
 * 4 x UINT32_MAX values in one chunk, which no test can feed, so this now checks the count of
 * a long run. */
QC_TEST(hist_counts_one_bin)
{
    enum { N = 36000000 };
    qc_obs_config cfg;
    qc_err err = { 0 };
    qc_observer *o = NULL;
    float *x = malloc((size_t)N * sizeof *x), first[2] = { 0.0f, 2.0f };
    for (int i = 0; i < N; i++)
        x[i] = 1.0f;
    qc_obs_config_default(&cfg);
    CHECK_OK(qc_observer_new(&o, "percentile", &cfg, &err));
    feed(o, first, 2, 0);
    feed(o, x, N, 0);
    const qc_hist *h = qc_hist_obs_channel(o, 0);
    int64_t b = (int64_t)floor(ldexp(1.0, -h->k)) - h->j0;
    CHECK(b >= 0 && b < h->nbins);
    if (b >= 0 && b < h->nbins)
        CHECK_INT(h->counts[b], N);
    CHECK_INT(h->total, (int64_t)N + 2);
    qc_observer_free(o);
    free(x);
}

/* The dual histogram (compare's one histogram for x and |x|): read as percentile / mse /
 * entropy, it holds bit for bit what those observers hold when fed the same tensors
 * themselves (grid, counts, totals, counters), so their ranges are equal too; also after
 * merging shards, per channel, and for data one-sided, far from 0, tiny, with negatives on
 * the lattice and ranges growing while streaming. */
static void check_view(const qc_observer *dual, const qc_observer *direct, const char *method,
                       int sym, const char *what)
{
    qc_err err = { 0 };
    qc_observer *v = NULL;
    qc_obs_config cfg = direct->cfg;
    CHECK_OK(qc_observer_view(&v, dual, method, &cfg, &err));
    if (!v)
        return;
    CHECK_INT(qc_observer_n_channels(v), qc_observer_n_channels(direct));
    CHECK_INT(qc_observer_count(v), qc_observer_count(direct));
    CHECK_INT(qc_observer_nonfinite(v), qc_observer_nonfinite(direct));
    for (int c = 0; c < qc_observer_n_channels(direct); c++) {
        const qc_hist *a = qc_hist_obs_channel(v, c), *b = qc_hist_obs_channel(direct, c);
        int same = a->total == b->total && a->nbins == b->nbins && a->absval == b->absval &&
                   (!b->total || (a->k == b->k && a->j0 == b->j0 && a->lo == b->lo &&
                                  a->hi == b->hi));
        for (int i = 0; same && i < b->nbins; i++)
            same = a->counts[i] == b->counts[i];
        if (!same)
            qc_test_fail(__FILE__, __LINE__, "%s: %s%s channel %d: the view differs from the "
                         "direct histogram", what, method, sym ? " sym" : "", c);
        if (same && b->total) {
            qc_range ra = range_of(v, c), rb = range_of(direct, c);
            CHECK(ra.lo == rb.lo && ra.hi == rb.hi);
        }
    }
    qc_observer_free(v);
}

static void dual_case(const float *x, int64_t n, int axis, int bins, const char *what)
{
    static const char *const kinds[] = { "percentile", "mse", "entropy" };
    qc_err err = { 0 };
    qc_obs_config cfg;
    qc_observer *dual[2] = { NULL, NULL }, *direct[3][2];
    qc_obs_config_default(&cfg);
    cfg.bins = bins;
    cfg.per_channel_axis = axis;
    CHECK_OK(qc_observer_new_dual(&dual[0], &cfg, &err));
    CHECK_OK(qc_observer_new_dual(&dual[1], &cfg, &err));
    for (int k = 0; k < 3; k++)
        for (int sym = 0; sym < 2; sym++) {
            qc_obs_config c = cfg;
            c.symmetric = sym;
            CHECK_OK(qc_observer_new(&direct[k][sym], kinds[k], &c, &err));
        }
    /* feeds of growing size as [4, m] tensors (axis 1 per channel); the dual in two shards */
    for (int64_t i = 0, step = 8, f = 0; i + 4 <= n; i += step, step = step * 2 + 4, f++) {
        int64_t m = (step < n - i ? step : n - i) / 4;
        qc_tensor t = { .name = "t", .dtype = QC_F32, .data = (void *)(x + i), .ndim = 2,
                        .dims = { 4, m } };
        if (axis == 1)
            t.dims[0] = m, t.dims[1] = 4;
        CHECK_OK(qc_observer_update(dual[f % 2], &t, &err));
        for (int k = 0; k < 3; k++)
            for (int sym = 0; sym < 2; sym++)
                CHECK_OK(qc_observer_update(direct[k][sym], &t, &err));
    }
    CHECK_OK(qc_observer_merge(dual[0], dual[1], &err));
    for (int k = 0; k < 3; k++)
        for (int sym = 0; sym < 2; sym++) {
            if (k < 2 || !sym)              /* entropy is |x| either way */
                check_view(dual[0], direct[k][sym], kinds[k], sym, what);
            qc_observer_free(direct[k][sym]);
        }
    qc_observer_free(dual[0]);
    qc_observer_free(dual[1]);
}

QC_TEST(hist_dual_views_exact)
{
    enum { N = 60000 };
    float *x = malloc(N * sizeof *x);
    seed(21);
    for (int axis = -1; axis <= 1; axis += 2) {
        for (int i = 0; i < N; i++)         /* both signs, lattice negatives */
            x[i] = i % 97 == 0 ? -(float)(i % 13) : 3.0f * gauss();
        dual_case(x, N, axis, 2048, "signed");
        for (int i = 0; i < N; i++)         /* mostly positive: |x| grid is the finer */
            x[i] = fabsf(gauss()) * 5.0f - (i % 501 == 0 ? 0.25f : 0.0f);
        dual_case(x, N, axis, 1000, "one-sided");
        for (int i = 0; i < N; i++)         /* far from 0: the signed grid is the finer */
            x[i] = -1e4f + gauss();
        dual_case(x, N, axis, 2048, "offset");
        for (int i = 0; i < N; i++)         /* growing while streaming, tiny values, NaN */
            x[i] = i % 1009 == 0 ? NAN : gauss() * powf(10.0f, -30.0f + 33.0f * (float)i / N);
        dual_case(x, N, axis, 2048, "growing");
    }
    free(x);
}

/* minmax and ema following a dual histogram (compare: no second scan) hold what they hold
 * when fed the tensors themselves: ranges, counts, non-finite counts, the raw extremes;
 * through first updates (the dual scans separately), later ones (one pass), tensors that
 * widen the range, an all-NaN one and an empty one. */
QC_TEST(observer_follow_same_state)
{
    enum { N = 5000 };
    static const char *const kinds[] = { "minmax", "ema" };
    qc_err err = { 0 };
    qc_obs_config cfg;
    qc_observer *dual = NULL, *fol[2], *dir[2];
    float *x = malloc(N * sizeof *x);
    qc_obs_config_default(&cfg);
    CHECK_OK(qc_observer_new_dual(&dual, &cfg, &err));
    for (int k = 0; k < 2; k++) {
        CHECK_OK(qc_observer_new(&fol[k], kinds[k], &cfg, &err));
        CHECK_OK(qc_observer_new(&dir[k], kinds[k], &cfg, &err));
    }
    seed(33);
    for (int it = 0; it < 12; it++) {
        int64_t n = it == 7 ? 0 : 100 + (int64_t)(urand() * (N - 100));
        for (int64_t i = 0; i < n; i++)
            x[i] = it == 5 ? NAN : (float)(gauss() * (1 + it) + (i % 101 == 0 ? INFINITY : 0));
        qc_tensor t = { .name = "t", .dtype = QC_F32, .ndim = 1, .dims = { n }, .data = x };
        CHECK_OK(qc_observer_update(dual, &t, &err));
        for (int k = 0; k < 2; k++) {
            CHECK_OK(qc_observer_follow(fol[k], dual, &err));
            CHECK_OK(qc_observer_update(dir[k], &t, &err));
        }
    }
    for (int k = 0; k < 2; k++) {
        qc_range a = range_of(fol[k], 0), b = range_of(dir[k], 0), sa, sb;
        CHECK(a.lo == b.lo && a.hi == b.hi);
        CHECK_INT(qc_observer_count(fol[k]), qc_observer_count(dir[k]));
        CHECK_INT(qc_observer_nonfinite(fol[k]), qc_observer_nonfinite(dir[k]));
        CHECK_OK(qc_observer_seen(fol[k], &sa));
        CHECK_OK(qc_observer_seen(dir[k], &sb));
        CHECK(sa.lo == sb.lo && sa.hi == sb.hi);
    }
    CHECK(qc_observer_follow(dual, fol[0], &err) == QC_EUSAGE);   /* histograms cannot */
    for (int k = 0; k < 2; k++) {
        qc_observer_free(fol[k]);
        qc_observer_free(dir[k]);
    }
    qc_observer_free(dual);
    free(x);
}

/* ---- qparams ---- */

QC_TEST(qparams_known_values)
{
    qc_err err = { 0 };             /* CHECK_OK prints err.msg; qparams do not fill it */
    float s;
    int32_t zp;
    qc_range r = { -1.0f, 2.0f };
    CHECK_OK(qc_qparams_from_range(r, 0, 0, 255, &s, &zp));
    CHECK(s == (float)(3.0 / 255));
    CHECK_INT(zp, 85);
    r = (qc_range){ 1.0f, 3.0f };           /* widened to [0, 3] */
    CHECK_OK(qc_qparams_from_range(r, 0, 0, 255, &s, &zp));
    CHECK(s == (float)(3.0 / 255));
    CHECK_INT(zp, 0);
    r = (qc_range){ -3.0f, -1.0f };         /* widened to [-3, 0]: zp at the top */
    CHECK_OK(qc_qparams_from_range(r, 0, 0, 255, &s, &zp));
    CHECK_INT(zp, 255);
    CHECK_OK(qc_qparams_from_range(r, 0, -128, 127, &s, &zp));
    CHECK_INT(zp, 127);
    r = (qc_range){ -0.5f, 2.0f };
    CHECK_OK(qc_qparams_from_range(r, 1, -127, 127, &s, &zp));
    CHECK(s == (float)(2.0 / 127));
    CHECK_INT(zp, 0);
    CHECK_OK(qc_qparams_from_range(r, 1, 0, 255, &s, &zp));
    CHECK(s == (float)(4.0 / 255));
    CHECK_INT(zp, 128);
    CHECK_OK(qc_qparams_from_range(r, 1, -128, 127, &s, &zp));
    CHECK_INT(zp, 0);
    CHECK_OK(qc_qparams_from_range(r, 1, 0, 65535, &s, &zp));
    CHECK_INT(zp, 32768);
    r = (qc_range){ 0.0f, 0.0f };
    CHECK_OK(qc_qparams_from_range(r, 0, 0, 255, &s, &zp));
    CHECK(s == 1.0f && zp == 0);
    CHECK_OK(qc_qparams_from_range(r, 1, 0, 255, &s, &zp));
    CHECK(s == 1.0f && zp == 128);
    r = (qc_range){ 0.0f, 1e-40f };         /* denormal scale */
    CHECK_OK(qc_qparams_from_range(r, 0, 0, 255, &s, &zp));
    CHECK(s == 1.0f && zp == 0);
    r = (qc_range){ -3e38f, 3e38f };        /* hi - lo overflows float */
    CHECK_OK(qc_qparams_from_range(r, 0, 0, 255, &s, &zp));
    CHECK(isfinite(s) && s > 0);
    CHECK_INT(zp, 128);
    r = (qc_range){ NAN, 1.0f };
    CHECK_INT(qc_qparams_from_range(r, 0, 0, 255, &s, &zp), QC_EINPUT);
    r = (qc_range){ 2.0f, 1.0f };
    CHECK_INT(qc_qparams_from_range(r, 0, 0, 255, &s, &zp), QC_EINPUT);
    r = (qc_range){ 0.0f, 1.0f };
    CHECK_INT(qc_qparams_from_range(r, 0, 1, 255, &s, &zp), QC_EUSAGE);
    int qmin, qmax;
    CHECK_OK(qc_qrange(QC_U8, 0, 0, &qmin, &qmax));
    CHECK(qmin == 0 && qmax == 255);
    CHECK_OK(qc_qrange(QC_U8, 0, 1, &qmin, &qmax));
    CHECK(qmin == 0 && qmax == 127);
    CHECK_OK(qc_qrange(QC_I8, 0, 0, &qmin, &qmax));
    CHECK(qmin == -128 && qmax == 127);
    CHECK_OK(qc_qrange(QC_I8, 1, 0, &qmin, &qmax));
    CHECK(qmin == -127 && qmax == 127);
    CHECK_OK(qc_qrange(QC_I8, 1, 1, &qmin, &qmax));
    CHECK(qmin == -64 && qmax == 64);
    CHECK_OK(qc_qrange(QC_I16, 1, 0, &qmin, &qmax));
    CHECK(qmin == -32767 && qmax == 32767);
    CHECK_OK(qc_qrange(QC_U16, 0, 0, &qmin, &qmax));
    CHECK(qmin == 0 && qmax == 65535);
    CHECK_INT(qc_qrange(QC_F32, 0, 0, &qmin, &qmax), QC_EUNSUPPORTED);
}

/* Random ranges against onnxruntime's compute_scale_zp; and 0 is always exactly
 * representable with the whole widened range covered. */
QC_TEST(qparams_vs_onnxruntime)
{
    seed(13);
    enum { N = 400 };
    qc_err err = { 0 };
    static const int qr[][2] = { { 0, 255 }, { -128, 127 }, { -127, 127 }, { 0, 127 },
                                 { -64, 64 }, { 0, 65535 }, { -32768, 32767 } };
    static qc_range rs[N];
    static int sym[N], qi[N];
    char path[512];
    static char lines[N][256];
    temp_path(path, sizeof path, "qparams");
    FILE *f = fopen(path, "w");
    if (!f) {
        qc_test_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    for (int i = 0; i < N; i++) {
        double e = exp((urand() - 0.5) * 20);
        float a = (float)((urand() - 0.6) * e), b = (float)((urand() - 0.3) * e);
        if (i % 10 == 0)
            a = b = (float)((urand() - 0.5) * e);         /* zero-width */
        if (i % 17 == 0)
            a = 0;
        rs[i] = (qc_range){ fminf(a, b), fmaxf(a, b) };
        sym[i] = i % 3 == 0;
        qi[i] = i % 7;
        fprintf(f, "%.9g %.9g %d %d %d\n", (double)rs[i].lo, (double)rs[i].hi, sym[i],
                qr[qi[i]][0], qr[qi[i]][1]);
    }
    fclose(f);
    int n = run_oracle("qparams", path, lines, N);
    remove(path);
    if (n != N) {
        if (n >= 0)
            qc_test_fail(__FILE__, __LINE__, "oracle printed %d lines, expected %d", n, N);
        return;
    }
    int mismatches = 0;
    for (int i = 0; i < N; i++) {
        int qmin = qr[qi[i]][0], qmax = qr[qi[i]][1];
        float s;
        int32_t zp;
        double es;
        long ez;
        CHECK_OK(qc_qparams_from_range(rs[i], sym[i], qmin, qmax, &s, &zp));
        if (sscanf(lines[i], "%lf %ld", &es, &ez) != 2 || s != (float)es || zp != ez) {
            if (mismatches++ < 5)
                qc_test_fail(__FILE__, __LINE__, "[%.9g, %.9g] sym %d q [%d, %d]: scale %.9g "
                             "zp %d, onnxruntime %s", (double)rs[i].lo, (double)rs[i].hi,
                             sym[i], qmin, qmax, (double)s, zp, lines[i]);
        }
        /* 0 maps to zp exactly; the widened range is covered to within half a step */
        CHECK(zp >= qmin && zp <= qmax);
        double lo = fmin(rs[i].lo, 0), hi = fmax(rs[i].hi, 0);
        if (s != 1.0f || hi - lo > 1e-30) {
            /* float scale: the bounds hold up to float rounding of the range */
            double tol = 0.5 * s + 1e-6 * fmax(-lo, hi);
            CHECK((qmin - zp) * (double)s <= lo + tol);
            CHECK((qmax - zp) * (double)s >= hi - tol);
        }
    }
    CHECK_INT(mismatches, 0);
}

/* ---- speed ---- */

/* The entropy search on 256-bit registers and on the baseline's gives the same thresholds,
 * bit for bit (QC_HIST_ISA=sse2 takes the baseline; the same on a CPU without AVX2), for
 * symmetric targets and for asymmetric ones (whose level count varies by candidate). */
QC_TEST(entropy_search_paths_same)
{
    dataset ds[3];
    make_signed(&ds[0]);
    make_relu(&ds[1]);
    make_offset(&ds[2]);
    for (int i = 0; i < 3; i++) {
        for (int kind = K_ENT_S; kind <= K_ENT_A; kind++) {
            qc_range r[2];
            for (int p = 0; p < 2; p++) {
                if (p)
                    setenv("QC_HIST_ISA", "sse2", 1);
                qc_observer *o = new_kind(kind);
                feed_order(o, &ds[i], NULL);
                r[p] = range_of(o, 0);
                qc_observer_free(o);
                unsetenv("QC_HIST_ISA");
            }
            CHECK(memcmp(&r[0], &r[1], sizeof r[0]) == 0);
        }
        free(ds[i].x);
    }
}

/* The entropy search's vector log (calib/vlog.h) within one ulp of libm's on what it gets:
 * ratios of counts (1 / 2048 .. 2^40), values near 1 (where log(1 + f) loses digits to a
 * careless formula) and both sides of the sqrt(2) mantissa split. */
QC_TEST(log4d_vs_libm)
{
    seed(21);
    double worst = 0;
    for (int it = 0; it < 200000; it++) {
        qc_v4d x, y;
        for (int l = 0; l < 4; l++) {
            double u = urand();
            switch ((it + l) % 4) {
            case 0: x[l] = floor(u * 1e12 + 1) / floor(urand() * 2048 + 1); break;
            case 1: x[l] = 1.0 + (u - 0.5) * 1e-6; break;
            case 2: x[l] = ldexp(1.4142135623730951 + (u - 0.5) * 1e-3, (int)(urand() * 80) - 40);
                    break;
            default: x[l] = exp((u - 0.5) * 100); break;
            }
        }
        qc_log4d(&x, &y);
        for (int l = 0; l < 4; l++) {
            double r = log(x[l]), ulp = fabs(nextafter(r, INFINITY) - r);
            if (r == 0)
                ulp = 4.9e-324;
            double e = fabs(y[l] - r) / ulp;
            if (e > worst)
                worst = e;
        }
    }
    CHECK(worst <= 1.0);
    qc_v4d one = { 1.0, 2.0, 0.5, 1.0 / 2048 }, y;
    qc_log4d(&one, &y);
    CHECK(y[0] == 0.0);
    CHECK(y[1] == log(2.0));
    CHECK(y[2] == log(0.5));
    CHECK_NEAR(y[3], log(1.0 / 2048), 1e-16, 0);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

QC_TEST(observers_speed)
{
    seed(14);
    enum { N = 1 << 20, REPS = 5 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = gauss() * 2.0f + 0.5f;
    static const int kinds[] = { K_MINMAX, K_EMA, K_PCT_A, K_MSE_A, K_ENT_S };
    double total = 0;
    printf("    update of a 1M-element tensor (ms):");
    for (int i = 0; i < 5; i++) {
        qc_observer *o = new_kind(kinds[i]);
        feed(o, x, N, 0);                   /* warm up, fixes the grid */
        double t0 = now_ms();
        for (int r = 0; r < REPS; r++)
            feed(o, x, N, r);
        double ms = (now_ms() - t0) / REPS;
        t0 = now_ms();
        qc_range rg = range_of(o, 0);
        double rms = now_ms() - t0;
        (void)rg;
        total += ms;
        printf(" %s %.2f (range %.2f)", k_name[kinds[i]], ms, rms);
        qc_observer_free(o);
    }
    printf("; all %.2f\n", total);
    CHECK(total < 200);                     /* generous: sanitizer builds, shared cores */
    free(x);
}
