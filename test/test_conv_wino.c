/* The Winograd convolutions through the executor, F(4x4, 3x3) (src/exec/conv_wino.c) and the
 * 1-D F(m, r) (conv_wino1d.c): against a double loop within a bound on their rounding, the
 * same bits whatever the work split, and taken by default only where they pay. */
#include <math.h>
#include "ops_ew.h"
#include "par.h"
#include "tnode.h"

typedef struct wcase {
    const char *name;
    int64_t     n, c, m, h, w, pads[4];     /* pads: h, w begins, then h, w ends */
    int         bias;
    int64_t     kh, kw;                     /* h 0: a 1-D conv on [n, c, w] (kh 1) */
} wcase;

static const wcase wcases[] = {
    { "one_tile", 1, 3, 5, 4, 4, { 1, 1, 1, 1 }, 1, 3, 3 },
    { "partial_tiles", 1, 9, 11, 13, 14, { 1, 1, 1, 1 }, 1, 3, 3 },
    { "no_pad_batch2", 2, 8, 16, 10, 19, { 0, 0, 0, 0 }, 0, 3, 3 },
    { "asym_pads", 1, 5, 7, 9, 11, { 2, 0, 1, 2 }, 1, 3, 3 },
    { "two_segments", 1, 4, 9, 6, 70, { 1, 1, 1, 1 }, 1, 3, 3 },   /* 18 tiles a row */
    { "blocks", 1, 32, 33, 44, 36, { 1, 1, 1, 1 }, 1, 3, 3 },      /* 11 x 9 tiles */
    { "default_on", 1, 12, 16, 20, 20, { 1, 1, 1, 1 }, 1, 3, 3 },  /* 12 in, 16 out, 25 tiles */
    { "default_off_c", 1, 11, 16, 20, 20, { 1, 1, 1, 1 }, 1, 3, 3 },
    { "default_off_tiles", 1, 40, 24, 14, 14, { 1, 1, 1, 1 }, 1, 3, 3 },  /* 16 tiles */
    { "pads_3", 1, 6, 16, 7, 8, { 3, 3, 3, 3 }, 1, 3, 3 },         /* outputs on padding alone */
    /* 1-D: r taps, tiles of 9 - r outputs */
    { "row_k5", 1, 16, 24, 1, 101, { 0, 2, 0, 2 }, 1, 1, 5 },      /* 26 tiles, last partial */
    { "col_k5", 1, 20, 17, 130, 1, { 2, 0, 2, 0 }, 1, 5, 1 },      /* [n, c, h, 1] as a row */
    { "conv1d_k3_batch2", 2, 9, 16, 0, 50, { 0, 1, 0, 1 }, 0, 1, 3 },
    { "row_k7_asym", 1, 5, 7, 1, 40, { 0, 3, 0, 1 }, 1, 1, 7 },
    { "row_k2", 1, 4, 8, 1, 30, { 0, 0, 0, 0 }, 1, 1, 2 },
    { "row_k6_short", 1, 8, 8, 1, 4, { 0, 2, 0, 3 }, 1, 1, 6 },   /* one tile, mostly padding */
    { "row_k2_pad_only", 1, 25, 20, 1, 29, { 0, 2, 0, 2 }, 1, 1, 2 },  /* y[0]: bias alone */
    { "row_blocks", 1, 64, 40, 1, 1300, { 0, 2, 0, 2 }, 1, 1, 5 }, /* 325 tiles */
    { "row_default_on", 1, 128, 128, 0, 128, { 0, 2, 0, 2 }, 1, 1, 5 },
    { "row_default_off_c", 1, 64, 128, 0, 512, { 0, 2, 0, 2 }, 1, 1, 5 },
    { "row_default_off_k3", 1, 128, 128, 0, 256, { 0, 1, 0, 1 }, 1, 1, 3 },
};

static void wcase_out(const wcase *wc, int64_t *yd)
{
    yd[0] = wc->n;
    yd[1] = wc->m;
    yd[2] = wc->h + wc->pads[0] + wc->pads[2] - wc->kh + 1;
    yd[3] = wc->w + wc->pads[1] + wc->pads[3] - wc->kw + 1;
    if (!wc->h)
        yd[2] = 1;
}

/* y and, per output, the sum of its terms' magnitudes (the scale of its rounding) */
static void wino_ref(const wcase *wc, const float *x, const float *w, const float *b,
                     double *y, double *mag)
{
    int64_t yd[4], h = wc->h ? wc->h : 1;
    wcase_out(wc, yd);
    for (int64_t n = 0; n < wc->n; n++)
    for (int64_t m = 0; m < wc->m; m++)
    for (int64_t oy = 0; oy < yd[2]; oy++)
    for (int64_t ox = 0; ox < yd[3]; ox++) {
        double acc = b ? b[m] : 0.0, s = b ? fabs(b[m]) : 0.0;
        for (int64_t c = 0; c < wc->c; c++)
            for (int64_t ky = 0; ky < wc->kh; ky++)
                for (int64_t kx = 0; kx < wc->kw; kx++) {
                    int64_t iy = oy + ky - wc->pads[0], ix = ox + kx - wc->pads[1];
                    if (iy < 0 || iy >= h || ix < 0 || ix >= wc->w)
                        continue;
                    double t = (double)x[((n * wc->c + c) * h + iy) * wc->w + ix] *
                               w[((m * wc->c + c) * wc->kh + ky) * wc->kw + kx];
                    acc += t;
                    s += fabs(t);
                }
        int64_t o = ((n * wc->m + m) * yd[2] + oy) * yd[3] + ox;
        y[o] = acc;
        mag[o] = s;
    }
}

typedef struct wrun {
    tnode  tn;
    float *x, *w, *b;
    int64_t yd[4], ny;
} wrun;

static void wrun_build(wrun *r, const wcase *wc, int silu)
{
    int d3 = wc->h == 0, rank = d3 ? 3 : 4;
    int64_t xd[4] = { wc->n, wc->c, wc->h, wc->w }, wd[4] = { wc->m, wc->c, wc->kh, wc->kw };
    int64_t pads[4] = { wc->pads[0], wc->pads[1], wc->pads[2], wc->pads[3] };
    static const int64_t ones[2] = { 1, 1 };
    if (d3) {
        xd[2] = wc->w, wd[2] = wc->kw;      /* [n, c, w], [m, c, kw], pads w begin, end */
        pads[0] = wc->pads[1], pads[1] = wc->pads[3];
    }
    wcase_out(wc, r->yd);
    r->ny = prod(r->yd, 4);
    r->x = rand_buf(prod(xd, rank));
    r->w = rand_buf(prod(wd, rank));
    r->b = rand_buf(wc->m);
    tn_init(&r->tn, "Conv", 13, wc->bias ? 3 : 2, 1);
    if (silu)
        tn_silu(&r->tn);
    tn_input(&r->tn, 0, QC_F32, rank, xd, r->x);
    tn_input(&r->tn, 1, QC_F32, rank, wd, r->w);
    if (wc->bias)
        tn_input(&r->tn, 2, QC_F32, 1, &wc->m, r->b);
    tn_ints(&r->tn, "strides", rank - 2, ones);
    tn_ints(&r->tn, "pads", 2 * (rank - 2), pads);
}

static void wrun_free(wrun *r)
{
    tn_free(&r->tn);
    free(r->x);
    free(r->w);
    free(r->b);
}

/* The output (a copy) with QC_CONV_WINO set to mode (NULL: unset); serial: one thread. */
static float *run_mode(wrun *r, const char *mode, int serial)
{
    if (mode)
        setenv("QC_CONV_WINO", mode, 1);
    else
        unsetenv("QC_CONV_WINO");
    qc_par_set_serial(serial);
    const qc_tensor *y = tn_run(&r->tn, 0);
    qc_par_set_serial(0);
    unsetenv("QC_CONV_WINO");
    float *out = NULL;
    if (y && prod(y->dims, y->ndim) == r->ny && y->dims[1] == r->yd[1] &&
        y->dims[y->ndim - 1] == r->yd[3]) {
        out = malloc((size_t)r->ny * sizeof *out);
        memcpy(out, y->data, (size_t)r->ny * sizeof *out);
    } else if (y) {
        qc_test_fail(__FILE__, __LINE__, "unexpected output shape");
    }
    tn_free(&r->tn);
    return out;
}

/* Winograd's rounding grows with its transforms' constants, and mixes a tile's outputs: an
 * output's error follows the largest sum of terms' magnitudes in its tile (an output whose
 * window is all padding is its bias plus the rounding of its neighbours' terms). Up to 1.8e-6
 * of that on these cases (15 float epsilons); a misplaced tap or tile, or one transform
 * constant off by 4% (1/23 for 1/24 in G), is of the order of one term. */
#define WINO_BOUND 1e-5

/* The largest of mag over the tile of output i: 4x4 outputs (3x3 kernels), else 9 - r along
 * the row or column of an r-tap 1-D kernel */
static double tile_mag(const wcase *wc, const double *mag, int64_t i)
{
    int64_t yd[4];
    wcase_out(wc, yd);
    int two_d = wc->kh == 3 && wc->kw == 3, row = wc->kh == 1 && yd[2] == 1;
    int64_t th = two_d ? 4 : row ? 1 : 9 - wc->kh, tw = two_d ? 4 : row ? 9 - wc->kw : 1;
    int64_t plane = yd[2] * yd[3], base = i - i % plane, oy = i % plane / yd[3];
    int64_t ox = i % yd[3], y0 = oy - oy % th, x0 = ox - ox % tw;
    double m = 0;
    for (int64_t y = y0; y < y0 + th && y < yd[2]; y++)
        for (int64_t x = x0; x < x0 + tw && x < yd[3]; x++)
            m = mag[base + y * yd[3] + x] > m ? mag[base + y * yd[3] + x] : m;
    return m;
}

/* Whether this CPU has the Winograd path (AVX-512, or AVX2 + FMA); without it every mode is
 * the direct one. avx512: the AVX-512 set in particular. */
static int have_wino_isa(int avx512)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (avx512)
        return __builtin_cpu_supports("avx512f");
    return __builtin_cpu_supports("avx512f") ||
           (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
#else
    (void)avx512;
    return 0;
#endif
}

static int have_wino(void)
{
    return have_wino_isa(0);
}

/* Case wc with QC_CONV_WINO=1 against wino_ref within WINO_BOUND; ran: also that Winograd
 * ran (some output differs from the direct kernels' where the CPU has the path). */
static void naive_check(const wcase *wc, int silu, int ran)
{
    wrun r;
    wrun_build(&r, wc, silu);
    double *want = malloc((size_t)r.ny * sizeof *want);
    double *mag = malloc((size_t)r.ny * sizeof *mag);
    wino_ref(wc, r.x, r.w, wc->bias ? r.b : NULL, want, mag);
    float *got = run_mode(&r, "1", 0), *direct = run_mode(&r, "0", 0);
    double worst = 0.0;
    int64_t differ = 0;
    for (int64_t i = 0; got && direct && i < r.ny; i++) {
        double v = silu ? want[i] / (1.0 + exp(-want[i])) : want[i];
        double e = fabs(got[i] - v) / (tile_mag(wc, mag, i) + 1e-30);
        worst = e > worst ? e : worst;
        differ += memcmp(&got[i], &direct[i], sizeof *got) != 0;
    }
    if (!(worst <= WINO_BOUND))
        qc_test_fail(__FILE__, __LINE__, "%s%s: error %.3g of the terms' magnitude (bound "
                     "%.1g)", wc->name, silu ? " (silu)" : "", worst, WINO_BOUND);
    if (ran && got && direct && (differ == 0) == have_wino())
        qc_test_fail(__FILE__, __LINE__, "%s%s: QC_CONV_WINO=1 %s the direct kernels' output "
                     "on this CPU", wc->name, silu ? " (silu)" : "",
                     differ ? "differs from" : "gave");
    free(got);
    free(direct);
    free(want);
    free(mag);
    wrun_free(&r);
}

QC_TEST(conv_wino_against_naive)
{
    for (size_t t = 0; t < sizeof wcases / sizeof wcases[0]; t++)
        for (int silu = 0; silu < 2; silu++)
            naive_check(&wcases[t], silu, 1);
}

/* 1-D convolutions of random shapes (1 to 7 taps, 1 to 40 channels, 1 to 300 long, pads up
 * to r + 1 at either end, the three layouts) against the double loop. */
QC_TEST(conv_wino1d_random_shapes)
{
    uint32_t s = 77;
    for (int k = 0; k < 60; k++) {
        int64_t v[8];
        for (int i = 0; i < 8; i++) {
            s = s * 1664525u + 1013904223u;
            v[i] = (int64_t)(s >> 8);
        }
        int64_t r = 1 + v[0] % 7, pb = v[1] % (r + 2), pe = v[2] % (r + 2), len = 1 + v[3] % 300;
        int form = (int)(v[4] % 3);         /* [n, c, l], [n, c, 1, l], [n, c, l, 1] */
        if (len + pb + pe - r + 1 < 1)
            continue;
        wcase wc = { "random_1d", 1 + v[5] % 2, 1 + v[6] % 40, 1 + v[7] % 40, form == 0 ? 0 : 1,
                     len, { 0, pb, 0, pe }, (int)(v[0] / 7 % 2), 1, r };
        if (form == 2)      /* the column form: along h */
            wc.h = len, wc.w = 1, wc.kh = r, wc.kw = 1,
            wc.pads[0] = pb, wc.pads[1] = 0, wc.pads[2] = pe, wc.pads[3] = 0;
        naive_check(&wc, 0, 0);
    }
}

/* The AVX2 set (QC_CONV_ISA=avx2, as on a CPU without AVX-512) does the AVX-512 set's
 * operations in the same order on 8 lanes: the same bits, plain and with SiLU, and so does
 * its split serial or threaded. */
QC_TEST(conv_wino_avx2_same_bits)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (!have_wino_isa(1) || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return;
#else
    return;
#endif
    for (size_t t = 0; t < sizeof wcases / sizeof wcases[0]; t++)
        for (int silu = 0; silu < 2; silu++) {
            wrun r;
            wrun_build(&r, &wcases[t], silu);
            const char *isa = getenv("QC_CONV_ISA");
            char *keep = isa ? strdup(isa) : NULL;
            unsetenv("QC_CONV_ISA");
            float *a = run_mode(&r, "1", 0);
            setenv("QC_CONV_ISA", "avx2", 1);
            float *b = run_mode(&r, "1", 0), *c = run_mode(&r, "1", 1);
            float *direct = run_mode(&r, "0", 0);
            if (keep)
                setenv("QC_CONV_ISA", keep, 1);
            else
                unsetenv("QC_CONV_ISA");
            free(keep);
            if (a && b && c && memcmp(a, b, (size_t)r.ny * sizeof *a) != 0)
                qc_test_fail(__FILE__, __LINE__, "%s%s: the AVX2 and AVX-512 sets differ",
                             wcases[t].name, silu ? " (silu)" : "");
            if (b && c && memcmp(b, c, (size_t)r.ny * sizeof *b) != 0)
                qc_test_fail(__FILE__, __LINE__, "%s%s: AVX2 serial and threaded runs differ",
                             wcases[t].name, silu ? " (silu)" : "");
            if (b && direct && !memcmp(b, direct, (size_t)r.ny * sizeof *b))
                qc_test_fail(__FILE__, __LINE__, "%s%s: QC_CONV_ISA=avx2 QC_CONV_WINO=1 gave "
                             "the direct kernels' output", wcases[t].name, silu ? " (silu)" : "");
            free(a);
            free(b);
            free(c);
            free(direct);
            wrun_free(&r);
        }
}

/* Blocks of tile rows and output channel parts follow the threads (two items a thread,
 * one block on one thread): every output the same bits either way. */
QC_TEST(conv_wino_same_bits_any_split)
{
    for (size_t t = 0; t < sizeof wcases / sizeof wcases[0]; t++) {
        wrun r;
        wrun_build(&r, &wcases[t], 0);
        float *a = run_mode(&r, "1", 0), *b = run_mode(&r, "1", 1);
        if (a && b && memcmp(a, b, (size_t)r.ny * sizeof *a) != 0)
            qc_test_fail(__FILE__, __LINE__, "%s: serial and threaded runs differ",
                         wcases[t].name);
        free(a);
        free(b);
        wrun_free(&r);
    }
}

/* Whether the default runs Winograd on case wc: 3x3 from 12 channels in, 16 out and 20 tiles;
 * 1-D from 3 taps, 128 channels in and out and 128 outputs (256 at 3 taps). */
static int default_wino(const wcase *wc)
{
    int64_t yd[4];
    wcase_out(wc, yd);
    if (wc->kh == 3 && wc->kw == 3) {
        int64_t tiles = ((yd[2] + 3) / 4) * ((yd[3] + 3) / 4);
        return wc->c >= 12 && wc->m >= 16 && tiles >= 20;
    }
    int row = wc->kh == 1 && yd[2] == 1;
    int64_t r = row ? wc->kw : wc->kh, ol = row ? yd[3] : yd[2];
    return r >= 3 && wc->c >= 128 && wc->m >= 128 && ol >= (r == 3 ? 256 : 128);
}

/* Unset, it runs where it pays and nowhere else, the same shapes with either set. */
QC_TEST(conv_wino_default_choice)
{
    for (size_t t = 0; t < sizeof wcases / sizeof wcases[0]; t++) {
        const wcase *wc = &wcases[t];
        int expect = have_wino() && default_wino(wc);
        wrun r;
        wrun_build(&r, wc, 0);
        float *def = run_mode(&r, NULL, 0), *on = run_mode(&r, expect ? "1" : "0", 0);
        if (def && on && memcmp(def, on, (size_t)r.ny * sizeof *def) != 0)
            qc_test_fail(__FILE__, __LINE__, "%s: by default not the %s kernels' output",
                         wc->name, expect ? "Winograd" : "direct");
        free(def);
        free(on);
        wrun_free(&r);
    }
}

/* On the 1-D path a fused SiLU gives the bits of the unfused Sigmoid and Mul (qc_ew_silu) on
 * the conv's output. (The 3x3 path and the direct kernels have their own, silu16: within an
 * ulp or two of those.) */
QC_TEST(conv_wino_silu_as_unfused)
{
    for (size_t t = 0; t < sizeof wcases / sizeof wcases[0]; t++) {
        if (wcases[t].kh == 3 && wcases[t].kw == 3)
            continue;
        wrun a, b;
        uint32_t seed = rng;
        wrun_build(&a, &wcases[t], 1);
        float *fused = run_mode(&a, "1", 0);
        rng = seed;                     /* the same x, w and b again */
        wrun_build(&b, &wcases[t], 0);
        float *lin = run_mode(&b, "1", 0);
        if (fused && lin) {
            qc_ew_silu(lin, lin, b.ny);
            int64_t i = 0;
            while (i < b.ny && !memcmp(&fused[i], &lin[i], sizeof *lin))
                i++;
            if (i < b.ny)
                qc_test_fail(__FILE__, __LINE__, "%s: y[%lld] = %.9g fused, %.9g unfused",
                             wcases[t].name, (long long)i, fused[i], lin[i]);
        }
        free(fused);
        free(lin);
        wrun_free(&a);
        wrun_free(&b);
    }
}
