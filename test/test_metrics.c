/* Metrics of `calibrate compare` (src/quant/metrics.c) against hand-computed values, the
 * candidate grid, and the shared-observer ranges against each kind's own observer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "compare_priv.h"
#include "qc_compare.h"
#include "test.h"

QC_TEST(metrics_hand_values)
{
    const float ref[] = { 1, 2, 3, 4 }, got[] = { 1, 2, 3, 5 };
    /* sum r^2 = 30, sum (g - r)^2 = 1, sum r g = 34, sum g^2 = 39 */
    CHECK_NEAR(qc_metric_sqnr_db(ref, got, 4), 14.771212547196624, 1e-12, 0);
    CHECK_NEAR(qc_metric_cosine(ref, got, 4), 0.9939990885479664, 1e-12, 0);
    CHECK_NEAR(qc_metric_max_abs(ref, got, 4), 1.0, 0, 0);
    const float neg[] = { -1, 0.5f, 0, 2 }, neg_got[] = { -0.75f, 0.5f, 0.25f, 1 };
    /* sum r^2 = 5.25, err^2 = 0.0625 + 0 + 0.0625 + 1 = 1.125, max 1;
     * dot = 0.75 + 0.25 + 0 + 2 = 3, sum g^2 = 0.5625 + 0.25 + 0.0625 + 1 = 1.875 */
    CHECK_NEAR(qc_metric_sqnr_db(neg, neg_got, 4), 10 * log10(5.25 / 1.125), 1e-12, 0);
    CHECK_NEAR(qc_metric_cosine(neg, neg_got, 4), 3 / sqrt(5.25 * 1.875), 1e-12, 0);
    CHECK_NEAR(qc_metric_max_abs(neg, neg_got, 4), 1.0, 0, 0);
}

QC_TEST(metrics_edge_cases)
{
    const float a[] = { 1, -2, 3 }, z[] = { 0, 0, 0 };
    CHECK(isinf(qc_metric_sqnr_db(a, a, 3)) && qc_metric_sqnr_db(a, a, 3) > 0);
    CHECK_NEAR(qc_metric_cosine(a, a, 3), 1.0, 1e-15, 0);
    CHECK(isinf(qc_metric_sqnr_db(z, z, 3)) && qc_metric_sqnr_db(z, z, 3) > 0);
    CHECK_NEAR(qc_metric_cosine(z, z, 3), 1.0, 0, 0);
    CHECK(isinf(qc_metric_sqnr_db(z, a, 3)) && qc_metric_sqnr_db(z, a, 3) < 0);
    CHECK_NEAR(qc_metric_cosine(z, a, 3), 0.0, 0, 0);
    CHECK_NEAR(qc_metric_cosine(a, z, 3), 0.0, 0, 0);
    /* a NaN reference is skipped; a NaN result against a finite reference is the worst */
    const float rn[] = { NAN, 1, 2 }, gn[] = { 5, 1, 3 };
    CHECK_NEAR(qc_metric_sqnr_db(rn, gn, 3), 10 * log10(5.0 / 1.0), 1e-12, 0);
    const float r2[] = { 1, 2, 3 }, g2[] = { 1, NAN, 3 };
    qc_errstat s;
    memset(&s, 0, sizeof s);
    qc_errstat_add(&s, r2, g2, 3);
    CHECK_INT(s.nonfinite, 1);
    CHECK_INT(s.n, 2);
    CHECK(isinf(qc_errstat_sqnr_db(&s)) && qc_errstat_sqnr_db(&s) < 0);
    CHECK(isnan(qc_errstat_cosine(&s)));
    CHECK(isinf(qc_metric_max_abs(r2, g2, 3)));
    memset(&s, 0, sizeof s);
    CHECK(isnan(qc_errstat_top1(&s)));
    CHECK(isnan(qc_errstat_cosine(&s)));
}

QC_TEST(metrics_top1)
{
    const float ref[] = { 0.1f, 0.7f, 0.2f,   0.5f, 0.4f, 0.1f,   1, 1, 0 };
    const float got[] = { 0.2f, 0.6f, 0.2f,   0.3f, 0.6f, 0.1f,   0, 2, 2 };
    /* argmax: row 0: 1 vs 1; row 1: 0 vs 1; row 2: 0 (first of the tie) vs 1 */
    CHECK_NEAR(qc_metric_top1(ref, got, 3, 3), 1.0 / 3.0, 1e-15, 0);
    CHECK_NEAR(qc_metric_top1(ref, ref, 3, 3), 1.0, 0, 0);
    const float x[] = { NAN, 1, 3, 3 };
    CHECK_INT(qc_argmax(x, 4), 2);
    CHECK_INT(qc_argmax(x, 0), -1);
    const float all_nan[] = { NAN, NAN };
    CHECK_INT(qc_argmax(all_nan, 2), 0);
}

QC_TEST(metrics_layer_saturation)
{
    const float ref[] = { -2, -1, 0, 1, 2, 3 }, got[] = { -1.5f, -1, 0, 1, 2, 2.5f };
    qc_layerstat s;
    memset(&s, 0, sizeof s);
    qc_layerstat_add(&s, ref, got, 6, -1.5f, 2.5f);
    /* outside [-1.5, 2.5]: -2 and 3; err^2 = 0.25 + 0.25; ref^2 = 19 */
    CHECK_INT(s.saturated, 2);
    CHECK_INT(s.n, 6);
    CHECK_NEAR(qc_layerstat_sqnr_db(&s), 15.797835966168101, 1e-12, 0);
}

/* The SSE2 block path (blocks of 512) against a plain double loop, with a block holding a
 * NaN (exact fallback) and a tail. */
QC_TEST(metrics_long_arrays)
{
    enum { N = 2000 };
    float *r = malloc(N * sizeof *r), *g = malloc(N * sizeof *g);
    CHECK(r && g);
    if (!r || !g) {
        free(r);
        free(g);
        return;
    }
    for (int i = 0; i < N; i++) {
        r[i] = (float)(i / 1000.0 - 1.0);           /* -1 .. 0.999 */
        g[i] = r[i] + ((i % 3) - 1) * 0.125f;
    }
    double r2 = 0, e2 = 0, g2 = 0, dot = 0, mx = 0;
    for (int i = 0; i < N; i++) {
        double d = (double)g[i] - r[i];
        r2 += (double)r[i] * r[i];
        g2 += (double)g[i] * g[i];
        dot += (double)r[i] * g[i];
        e2 += d * d;
        mx = fabs(d) > mx ? fabs(d) : mx;
    }
    CHECK_NEAR(qc_metric_sqnr_db(r, g, N), 10 * log10(r2 / e2), 1e-5, 0);
    CHECK_NEAR(qc_metric_cosine(r, g, N), dot / sqrt(r2 * g2), 1e-6, 0);
    CHECK_NEAR(qc_metric_max_abs(r, g, N), mx, 0, 0);
    qc_layerstat s;
    memset(&s, 0, sizeof s);
    qc_layerstat_add(&s, r, g, N, -0.5f, 0.5f);
    CHECK_INT(s.saturated, 999);                    /* i < 500 and i > 1500 */
    CHECK_INT(s.n, N);
    CHECK_NEAR(qc_layerstat_sqnr_db(&s), 10 * log10(r2 / e2), 1e-5, 0);
    /* a NaN reference inside the second block: skipped, exactly */
    double rn = r[700];
    r[700] = NAN;
    double d700 = (double)g[700] - rn;
    memset(&s, 0, sizeof s);
    qc_layerstat_add(&s, r, g, N, -0.5f, 0.5f);
    CHECK_INT(s.n, N - 1);
    CHECK_NEAR(s.err2, e2 - d700 * d700, 1e-5, 0);
    CHECK_NEAR(qc_metric_sqnr_db(r, g, N), 10 * log10((r2 - rn * rn) / (e2 - d700 * d700)),
               1e-5, 0);
    free(r);
    free(g);
}

/* qc_layerstat_blocks + the in-order merge compare_eval.c does = one qc_layerstat_add, bit for
 * bit, with NaN/Inf sprinkled in (blocks holding them are redone by qc_layerstat_add). */
QC_TEST(metrics_layer_blocks_same_bits)
{
    const int64_t B = QC_LAYERSTAT_BLOCK;
    uint32_t seed = 7;
    for (int t = 0; t < 60; t++) {
        int64_t n = 1 + (int64_t)(t * 977 % 20000);
        float *r = malloc((size_t)n * sizeof *r), *g = malloc((size_t)n * sizeof *g);
        qc_layerstat *part = malloc((size_t)(n / B + 1) * sizeof *part);
        for (int64_t i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            r[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (float)(1 << (t % 8));
            g[i] = r[i] * (1.0f + ((float)(seed & 255) / 256.0f - 0.5f) * 0.1f);
        }
        if (t % 3 == 0)
            r[n / 2] = NAN;
        if (t % 5 == 0)
            g[n - 1] = INFINITY;
        qc_layerstat a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        qc_layerstat_add(&a, r, g, n, -0.3f, 0.2f);
        int64_t nb = n / B;
        qc_layerstat_blocks(part, r, g, nb, -0.3f, 0.2f);
        for (int64_t k = 0; k < nb; k++) {
            const qc_layerstat *p = &part[k];
            if (p->n != B || p->nonfinite) {
                qc_layerstat_add(&b, r + k * B, g + k * B, B, -0.3f, 0.2f);
                continue;
            }
            b.ref2 += p->ref2;
            b.err2 += p->err2;
            b.n += p->n;
            b.saturated += p->saturated;
        }
        qc_layerstat_add(&b, r + nb * B, g + nb * B, n - nb * B, -0.3f, 0.2f);
        CHECK(memcmp(&a, &b, sizeof a) == 0);
        free(r);
        free(g);
        free(part);
    }
}

QC_TEST(compare_grid)
{
    qc_err err = { 0 };
    qc_quant_opts base;
    qc_quant_opts_default(&base);
    qc_compare_grid g = { .per_channel = QC_CMP_DEFAULT, .symmetric_act = QC_CMP_NO };
    qc_cand *c = NULL;
    int n = 0;
    CHECK_OK(qc_compare_make_grid(&base, &g, &c, &n, &err));
    CHECK_INT(n, 9);
    const char *want[] = { "minmax pc", "ema pc", "percentile 99.9 pc", "percentile 99.99 pc",
                           "percentile 99.999 pc", "mse pc", "entropy pc", "minmax pt",
                           "percentile 99.999 pt" };
    for (int i = 0; i < n && i < 9; i++) {
        if (strcmp(c[i].name, want[i]) != 0)
            qc_test_fail(__FILE__, __LINE__, "candidate %d is '%s', expected '%s'", i,
                         c[i].name, want[i]);
        CHECK_INT(c[i].o.per_channel, i < 7);
        CHECK_INT(c[i].o.symmetric_act, 0);
        CHECK_INT(c[i].o.act_dtype, QC_U8);
    }
    if (n == 9) {
        CHECK(c[3].o.percentile == 99.99f);
        CHECK(c[8].o.percentile == 99.999f);
    }
    free(c);
    g.per_channel = QC_CMP_BOTH;
    g.symmetric_act = QC_CMP_BOTH;
    CHECK_OK(qc_compare_make_grid(&base, &g, &c, &n, &err));
    CHECK_INT(n, 28);
    free(c);
    g = (qc_compare_grid){ .methods = "percentile", .percentiles = "99.9,99.99",
                           .per_channel = QC_CMP_DEFAULT };
    CHECK_OK(qc_compare_make_grid(&base, &g, &c, &n, &err));
    CHECK_INT(n, 3);
    if (n == 3)
        CHECK(!strcmp(c[2].name, "percentile 99.99 pt"));
    free(c);
    g = (qc_compare_grid){ .methods = "percentile", .percentiles = "99.99999,99.9999",
                           .per_channel = QC_CMP_YES };
    CHECK_OK(qc_compare_make_grid(&base, &g, &c, &n, &err));
    CHECK_INT(n, 2);
    if (n == 2) {                   /* "%g" would print 100 */
        CHECK(!strcmp(c[0].percentile, "99.99999"));
        CHECK(!strcmp(c[0].name, "percentile 99.99999 pc"));
        CHECK(!strcmp(c[1].percentile, "99.9999"));
    }
    free(c);
    g = (qc_compare_grid){ .methods = "minmax,kl", .per_channel = QC_CMP_YES };
    CHECK_INT(qc_compare_make_grid(&base, &g, &c, &n, &err), QC_EUSAGE);
    CHECK(strstr(err.msg, "'kl'") != NULL);
    g = (qc_compare_grid){ .percentiles = "99.9,101", .per_channel = QC_CMP_YES };
    CHECK_INT(qc_compare_make_grid(&base, &g, &c, &n, &err), QC_EUSAGE);
    g = (qc_compare_grid){ .methods = "mse,,ema", .per_channel = QC_CMP_YES };
    CHECK_INT(qc_compare_make_grid(&base, &g, &c, &n, &err), QC_EUSAGE);
    g = (qc_compare_grid){ .methods = "mse,mse", .per_channel = QC_CMP_YES };
    CHECK_INT(qc_compare_make_grid(&base, &g, &c, &n, &err), QC_EUSAGE);
}

/* One shared histogram answers for percentile (any p), mse and entropy exactly as each
 * kind's own observer would: compare's models are then those of `calibrate --method`. */
QC_TEST(compare_shared_ranges)
{
    qc_err err = { 0 };
    uint64_t s = 12345;
    enum { N = 5000 };
    float *x = malloc(N * sizeof *x);
    CHECK(x != NULL);
    if (!x)
        return;
    for (int i = 0; i < N; i++) {                   /* skewed, heavy-tailed */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        x[i] = (float)(i % 5 == 0 ? -log(u) * 4 : -log(u) - 0.5);
    }
    qc_tensor t = { .name = "x", .dtype = QC_F32, .ndim = 1, .dims = { N }, .data = x };
    const char *methods[] = { "percentile", "mse", "entropy", "minmax", "ema" };
    for (int sym = 0; sym < 2; sym++)
        for (int k = 0; k < 5; k++) {
            qc_quant_opts o;
            qc_quant_opts_default(&o);
            o.method = methods[k];
            o.symmetric_act = sym;
            o.percentile = 99.9f;
            qc_obs_config own_cfg, sh_cfg;
            qc_cmp_obs_config(&o, &own_cfg);
            qc_obs_config_default(&sh_cfg);
            sh_cfg.symmetric = k == 2 ? 1 : sym;    /* the state compare shares */
            const char *sh_kind = k < 3 ? "percentile" : methods[k];
            qc_observer *own = NULL, *sh = NULL;
            qc_range a = { 0, 0 }, b = { 1, 1 };
            CHECK_OK(qc_observer_new(&own, methods[k], &own_cfg, &err));
            CHECK_OK(qc_observer_new(&sh, sh_kind, &sh_cfg, &err));
            if (own && sh) {
                CHECK_OK(qc_observer_update(own, &t, &err));
                CHECK_OK(qc_observer_update(sh, &t, &err));
                CHECK_OK(qc_observer_range(own, 0, &a, &err));
                CHECK_OK(qc_cmp_range(sh, &o, &b, &err));
                if (a.lo != b.lo || a.hi != b.hi)
                    qc_test_fail(__FILE__, __LINE__, "%s sym %d: own [%g, %g], shared [%g, %g]",
                                 methods[k], sym, (double)a.lo, (double)a.hi, (double)b.lo,
                                 (double)b.hi);
            }
            qc_observer_free(own);
            qc_observer_free(sh);
        }
    free(x);
}
