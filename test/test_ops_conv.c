/* Conv, ConvTranspose, MatMul, Gemm, pools and Q/DQ through the executor on one-node models
 * built in memory, against naive loops written straight from the ONNX definitions. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tnode.h"

/* Compares a float output with the expected values and shape, within atol + rtol |want[i]|
 * (+ mrel mag[i] with mag: Winograd's transforms round on the scale of the sum of the
 * products' magnitudes, not of the output's); reports the first mismatch. */
static void check_out_mag(const char *what, const qc_tensor *y, int ndim, const int64_t *dims,
                          const float *want, double rtol, double atol, const float *mag,
                          double mrel)
{
    if (!y)
        return;
    int ok = y->ndim == ndim && y->dtype == QC_F32;
    for (int i = 0; ok && i < ndim; i++)
        ok = y->dims[i] == dims[i];
    if (!ok) {
        char buf[128];
        qc_test_fail(__FILE__, __LINE__, "%s: output shape %s or dtype %d unexpected", what,
                     qc_shape_str(y, buf, sizeof buf), y->dtype);
        return;
    }
    const float *got = y->data;
    for (int64_t i = 0, n = prod(dims, ndim); i < n; i++) {
        if (!(fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i]) + (mag ? mrel * mag[i] : 0))) {
            qc_test_fail(__FILE__, __LINE__, "%s: y[%lld] = %.7g, expected %.7g", what,
                         (long long)i, got[i], want[i]);
            return;
        }
    }
}

static void check_out(const char *what, const qc_tensor *y, int ndim, const int64_t *dims,
                      const float *want, double rtol, double atol)
{
    check_out_mag(what, y, ndim, dims, want, rtol, atol, NULL, 0);
}

/* ---- Conv ---------------------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int         nsp;
    int64_t     n, c, m, group;
    int64_t     in[3], k[3], s[3], d[3], pads[6];   /* pads: begins then ends */
    const char *auto_pad;                          /* NULL: pass pads explicitly */
    int         bias;
} conv_case;

static const conv_case conv_cases[] = {
    { "2d_basic", 2, 1, 3, 4, 1, { 7, 6 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, 0, 1 },
    { "2d_s2", 2, 2, 4, 6, 1, { 9, 8 }, { 3, 3 }, { 2, 2 }, { 1, 1 }, { 1, 1, 1, 1 }, 0, 0 },
    { "2d_asym", 2, 1, 2, 3, 1, { 6, 7 }, { 3, 2 }, { 2, 3 }, { 1, 1 }, { 0, 2, 1, 1 }, 0, 1 },
    { "2d_dil", 2, 1, 3, 2, 1, { 9, 9 }, { 3, 3 }, { 1, 2 }, { 2, 3 }, { 2, 1, 0, 3 }, 0, 1 },
    { "2d_group", 2, 1, 6, 4, 2, { 5, 5 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, 0, 1 },
    { "2d_dw", 2, 2, 5, 5, 5, { 8, 7 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 }, 0, 1 },
    { "2d_dw_s2_mult", 2, 1, 3, 6, 3, { 9, 10 }, { 5, 3 }, { 2, 2 }, { 1, 2 }, { 2, 2, 1, 2 },
      0, 1 },
    { "2d_pointwise", 2, 2, 5, 7, 1, { 4, 6 }, { 1, 1 }, { 1, 1 }, { 1, 1 }, { 0 }, 0, 1 },
    { "2d_pw_exact", 2, 1, 5, 20, 1, { 24, 32 }, { 1, 1 }, { 1, 1 }, { 1, 1 }, { 0 }, 0, 1 },
    { "2d_pw_tail", 2, 2, 3, 17, 1, { 20, 39 }, { 1, 1 }, { 1, 1 }, { 1, 1 }, { 0 }, 0, 1 },
    { "2d_pw_group", 2, 1, 4, 6, 2, { 20, 20 }, { 1, 1 }, { 1, 1 }, { 1, 1 }, { 0 }, 0, 0 },
    { "2d_m48", 2, 1, 5, 48, 1, { 6, 9 }, { 3, 3 }, { 1, 2 }, { 1, 1 }, { 1, 1, 1, 1 }, 0, 1 },
    /* 48-channel panels (conv_x86.c panel_width): three per group, stride 1; 80 and 112
     * channels are 48 + 32 and 48 + 48 + 16 when forced (QC_CONV_NV3=1), in 32s by default */
    { "2d_m144_g2", 2, 2, 4, 288, 2, { 5, 21 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 },
      0, 1 },
    { "2d_m80_s2", 2, 1, 3, 80, 1, { 7, 30 }, { 3, 3 }, { 2, 2 }, { 1, 1 }, { 1, 0, 1, 1 },
      0, 1 },
    { "2d_m112", 2, 1, 7, 112, 1, { 4, 13 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 },
      0, 0 },
    /* 24 output channels on 60-wide rows: the rows kernel by default (conv_x86.c use_rows);
     * 70 wide with row stride 2 and dilation: tiles by default, rows when forced */
    { "2d_rows_m24", 2, 1, 12, 24, 1, { 5, 60 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 },
      0, 1 },
    { "2d_rows_s2_dil", 2, 2, 6, 24, 1, { 9, 74 }, { 3, 3 }, { 2, 1 }, { 1, 2 }, { 1, 1, 1, 1 },
      0, 1 },
    { "2d_pointwise_s2", 2, 1, 5, 3, 1, { 7, 6 }, { 1, 1 }, { 2, 2 }, { 1, 1 }, { 0 }, 0, 0 },
    { "2d_same_lower", 2, 1, 2, 3, 1, { 6, 5 }, { 3, 4 }, { 2, 2 }, { 1, 1 }, { 1, 2, 0, 1 },
      "SAME_LOWER", 1 },
    { "2d_same_upper", 2, 1, 2, 3, 1, { 6, 5 }, { 3, 4 }, { 2, 2 }, { 1, 1 }, { 0, 1, 1, 2 },
      "SAME_UPPER", 1 },
    { "2d_valid", 2, 1, 2, 3, 1, { 6, 5 }, { 3, 2 }, { 2, 1 }, { 1, 1 }, { 0 }, "VALID", 0 },
    /* big enough for the im2col row tiling (columns over 8 MiB) */
    { "2d_tiled", 2, 1, 64, 4, 1, { 70, 70 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 1, 1, 1, 1 },
      0, 1 },
    { "2d_w1", 2, 1, 6, 5, 1, { 23, 1 }, { 5, 1 }, { 1, 1 }, { 1, 1 }, { 2, 0, 2, 0 }, 0, 1 },
    { "2d_w1_s2", 2, 1, 6, 5, 1, { 23, 1 }, { 3, 1 }, { 2, 1 }, { 2, 1 }, { 1, 0, 0, 0 }, 0, 0 },
    { "1d", 1, 2, 3, 4, 1, { 20 }, { 5 }, { 2 }, { 2 }, { 3, 1 }, 0, 1 },
    { "1d_dw", 1, 1, 4, 4, 4, { 11 }, { 3 }, { 1 }, { 1 }, { 1, 1 }, 0, 1 },
    { "3d", 3, 1, 2, 3, 1, { 4, 5, 6 }, { 2, 3, 2 }, { 1, 2, 1 }, { 1, 1, 2 },
      { 1, 0, 1, 0, 1, 1 }, 0, 1 },
    { "3d_group", 3, 1, 4, 2, 2, { 3, 4, 4 }, { 1, 2, 2 }, { 1, 1, 1 }, { 1, 1, 1 },
      { 0, 1, 0, 0, 0, 1 }, 0, 0 },
};

/* mag (if not NULL): each output's sum of the magnitudes of its products and bias */
static void conv_ref(const conv_case *cc, const float *x, const float *w, const float *b,
                     const int64_t *out, float *y, float *mag)
{
    int nsp = cc->nsp;
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    int64_t isz = prod(cc->in, nsp), osz = prod(out, nsp), ksz = prod(cc->k, nsp);
    for (int64_t bi = 0; bi < cc->n; bi++)
    for (int64_t m = 0; m < cc->m; m++)
    for (int64_t o = 0; o < osz; o++) {
        int64_t oi[3], rem = o;
        for (int i = nsp - 1; i >= 0; i--) {
            oi[i] = rem % out[i];
            rem /= out[i];
        }
        double acc = b ? b[m] : 0.0, sum_abs = fabs(acc);
        for (int64_t c = 0; c < cg; c++)
        for (int64_t kf = 0; kf < ksz; kf++) {
            int64_t kr = kf, off = 0, inside = 1, ki[3];
            for (int i = nsp - 1; i >= 0; i--) {
                ki[i] = kr % cc->k[i];
                kr /= cc->k[i];
            }
            for (int i = 0; i < nsp; i++) {
                int64_t v = oi[i] * cc->s[i] - cc->pads[i] + ki[i] * cc->d[i];
                inside &= v >= 0 && v < cc->in[i];
                off = off * cc->in[i] + v;
            }
            if (inside) {
                double p = (double)x[(bi * cc->c + (m / mg) * cg + c) * isz + off] *
                           w[(m * cg + c) * ksz + kf];
                acc += p;
                sum_abs += fabs(p);
            }
        }
        y[(bi * cc->m + m) * osz + o] = (float)acc;
        if (mag)
            mag[(bi * cc->m + m) * osz + o] = (float)sum_abs;
    }
}

/* qc_exec_opts.sum_only: the node's per-channel output sums (dim 1) instead of its output,
 * against the sums of the expected output; `summable` 0: the node must run instead. */
#define MAX_SUMS 512            /* output channels a case may have */

typedef struct sums_seen {
    qc_exec *x_for_hook;
    double sums[MAX_SUMS];
    int    n;                   /* -1: the node ran */
} sums_seen;

static int sums_hook(void *user, const qc_node *node, int node_index,
                     const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    sums_seen *s = user;
    int n = 0;
    (void)node, (void)node_index, (void)outs, (void)n_outs, (void)err;
    const double *v = qc_exec_node_sums(s->x_for_hook, &n);
    s->n = v ? n : -1;
    for (int i = 0; v && i < n && i < MAX_SUMS; i++)
        s->sums[i] = v[i];
    return QC_OK;
}

static void check_sums(const char *what, tnode *t, int ndim, const int64_t *yd,
                       const float *want, int summable)
{
    qc_err err = { 0 };
    const char *const names[1] = { t->nodes[0].name };
    qc_exec *x = NULL;
    sums_seen seen = { .n = -2 };
    if (qc_exec_new(&x, &t->m, &(qc_exec_opts){ .sum_only = names, .n_sum_only = 1 }, &err) ||
        (seen.x_for_hook = x, qc_exec_set_hook(x, sums_hook, &seen),
         qc_exec_run(x, t->inputs, t->m.n_inputs, &err))) {
        qc_test_fail(__FILE__, __LINE__, "%s: %s", what, err.msg);
        qc_exec_free(x);
        return;
    }
    qc_exec_free(x);
    if (!summable) {
        CHECK_INT(seen.n, -1);
        return;
    }
    int64_t ch = yd[1], inner = prod(yd + 2, ndim - 2);
    CHECK_INT(seen.n, (int)ch);
    for (int64_t c = 0; c < ch && seen.n == ch; c++) {
        double ref = 0, mag = 0;
        for (int64_t b = 0; b < yd[0]; b++)
            for (int64_t i = 0; i < inner; i++) {
                ref += want[(b * ch + c) * inner + i];
                mag += fabs(want[(b * ch + c) * inner + i]);
            }
        if (!(fabs(seen.sums[c] - ref) <= 1e-5 * mag + 1e-6)) {
            qc_test_fail(__FILE__, __LINE__, "%s: channel %lld sum %.9g, expected %.9g", what,
                         (long long)c, seen.sums[c], ref);
            return;
        }
    }
}

/* Conv case cc as a one-node model (Conv, or Conv + SiLU) on random x, w, b (the caller
 * frees them and tn); yd: the output dims. */
static void conv_case_build(const conv_case *cc, int silu, tnode *tn, float **x, float **w,
                            float **b, int64_t *yd)
{
    int nsp = cc->nsp;
    int64_t xd[5] = { cc->n, cc->c }, wd[5] = { cc->m, cc->c / cc->group };
    yd[0] = cc->n;
    yd[1] = cc->m;
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
        int64_t ek = (cc->k[i] - 1) * cc->d[i] + 1;
        yd[2 + i] = (cc->in[i] + cc->pads[i] + cc->pads[nsp + i] - ek) / cc->s[i] + 1;
    }
    *x = rand_buf(prod(xd, nsp + 2)), *w = rand_buf(prod(wd, nsp + 2));
    *b = rand_buf(cc->m);
    tn_init(tn, "Conv", 13, cc->bias ? 3 : 2, 1);
    if (silu)
        tn_silu(tn);
    tn_input(tn, 0, QC_F32, nsp + 2, xd, *x);
    tn_input(tn, 1, QC_F32, nsp + 2, wd, *w);
    int64_t one = cc->m;
    if (cc->bias)
        tn_input(tn, 2, QC_F32, 1, &one, *b);
    tn_ints(tn, "strides", nsp, cc->s);
    tn_ints(tn, "dilations", nsp, cc->d);
    if (cc->group != 1)
        tn_int(tn, "group", cc->group);
    if (cc->auto_pad)
        tn_str(tn, "auto_pad", cc->auto_pad);
    else
        tn_ints(tn, "pads", 2 * nsp, cc->pads);
}

/* Every case against conv_ref, within 1e-4 (absolute and relative) and, with mrel > 0, mrel
 * times the largest sum of products' magnitudes in the output's channel plane (Winograd's
 * bound, test_conv_wino.c: an output mixes its tile's rounding) */
static void conv_cases_check(const char *path, int silu, double mrel)
{
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        const conv_case *cc = &conv_cases[t];
        int nsp = cc->nsp;
        int64_t yd[5], len, plane;
        float *x, *w, *b;
        tnode tn;
        conv_case_build(cc, silu, &tn, &x, &w, &b, yd);
        len = prod(yd, nsp + 2), plane = prod(yd + 2, nsp);
        float *want = malloc((size_t)len * sizeof *want);
        float *mag = mrel > 0 ? malloc((size_t)len * sizeof *mag) : NULL;
        conv_ref(cc, x, w, cc->bias ? b : NULL, yd + 2, want, mag);
        for (int64_t p0 = 0; mag && p0 < len; p0 += plane) {
            float top = 0;
            for (int64_t i = p0; i < p0 + plane; i++)
                top = mag[i] > top ? mag[i] : top;
            for (int64_t i = p0; i < p0 + plane; i++)
                mag[i] = silu ? 1.1f * top : top;       /* |silu'| <= 1.1 */
        }
        if (silu)
            for (int64_t i = 0; i < len; i++)
                want[i] = (float)(want[i] / (1.0 + exp(-(double)want[i])));
        char what[96];
        snprintf(what, sizeof what, "%s (%s%s)", cc->name, path, silu ? ", silu" : "");
        check_out_mag(what, tn_run(&tn, 0), nsp + 2, yd, want, 1e-4, 1e-4, mag, mrel);
        if (!silu)
            check_sums(what, &tn, nsp + 2, yd, want, nsp <= 2);
        if (silu && tn.x)
            CHECK_INT(qc_exec_fused_nodes(tn.x), 2);        /* Sigmoid and Mul folded in */
        tn_free(&tn);
        free(x);
        free(w);
        free(b);
        free(want);
        free(mag);
    }
}

static void conv_cases_run(const char *path, int silu)
{
    conv_cases_check(path, silu, 0);
}

/* Every case (plain and with SiLU) run as by default, then with var set to each of vals:
 * the same bits, or a failure naming `what` */
static void same_bits_under(const char *var, const char *const *vals, int n_vals,
                            const char *what)
{
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        const conv_case *cc = &conv_cases[t];
        for (int silu = 0; silu < 2 && cc->nsp <= 2; silu++) {
            int64_t yd[5];
            float *x, *w, *b;
            tnode tn;
            conv_case_build(cc, silu, &tn, &x, &w, &b, yd);
            size_t nb = (size_t)prod(yd, cc->nsp + 2) * sizeof(float);
            const qc_tensor *y = tn_run(&tn, 0);
            float *base = y ? malloc(nb) : NULL;
            if (base)
                memcpy(base, y->data, nb);
            tn_free(&tn);
            int64_t nx = prod(tn.inputs[0].dims, cc->nsp + 2);
            for (int k = 0; base && k < n_vals; k++) {
                /* a run on other input first: its output buffer, freed, is likely the one
                 * the next run gets, so a value that run skipped keeps a wrong value */
                for (int64_t i = 0; i < nx; i++)
                    x[i] = -x[i];
                tn_run(&tn, 0);
                tn_free(&tn);
                for (int64_t i = 0; i < nx; i++)
                    x[i] = -x[i];
                setenv(var, vals[k], 1);
                y = tn_run(&tn, 0);
                if (y && memcmp(y->data, base, nb) != 0)
                    qc_test_fail(__FILE__, __LINE__, "%s%s: %s %s differ", cc->name,
                                 silu ? " (silu)" : "", what, vals[k]);
                tn_free(&tn);
                unsetenv(var);
            }
            free(base);
            free(x);
            free(w);
            free(b);
        }
    }
}

/* Tiles in blocks (conv_x86.c tiles_a_block: every panel over a block of tiles before the
 * next; on large inputs only, so forced here with QC_CONV_TB) give the same bits as without:
 * blocks of 1, 2 and 5 tiles, the last one partial, plain and with SiLU. */
QC_TEST(conv_tile_blocks_same_bits)
{
    static const char *const blocks[] = { "1", "2", "5" };
    same_bits_under("QC_CONV_TB", blocks, 3, "blocks of tiles:");
}

/* Padded inputs padded block by block (conv_x86.c pad_block_rows: inputs over L2 only, so
 * forced here; blocks of at most oh / (4 x threads) rows, many on these small planes) give
 * the same bits as the whole padded copy, and so does the whole copy forced */
QC_TEST(conv_pad_blocks_same_bits)
{
    static const char *const on[] = { "1", "0" };
    same_bits_under("QC_CONV_PADBLK", on, 2, "QC_CONV_PADBLK=");
}

/* Depthwise convolutions (src/exec/conv_dw.c) to the bit against a float loop in the order
 * they promise: the bias (+0 for none or -0), kernel rows, kernel columns, taps outside
 * skipped. Rows narrower than a vector, of one vector, of a vector and a few (the last block
 * overlapping), of 64 + 16 and longer; strides 1 and 2 (padded plane) and 3 (scalar) along
 * the row; dilation; a multiplier of 2; a kernel with a NaN (scalar for that channel, NaN
 * outputs only where a NaN tap is inside); a -0 bias. */
typedef struct dw_case {
    int64_t c, mult, h, w, kh, kw, sh, sw, dh, dw, ph, pw;
} dw_case;

static void dw_ref(const dw_case *d, const float *x, const float *w, const float *b,
                   int64_t oh_n, int64_t ow_n, float *y)
{
    for (int64_t m = 0; m < d->c * d->mult; m++) {
        const float *xc = x + (m / d->mult) * d->h * d->w;
        for (int64_t oh = 0; oh < oh_n; oh++)
            for (int64_t ow = 0; ow < ow_n; ow++) {
                float acc = b[m] != 0.0f ? b[m] : 0.0f;
                for (int64_t kh = 0; kh < d->kh; kh++) {
                    int64_t ih = oh * d->sh - d->ph + kh * d->dh;
                    for (int64_t kw = 0; kw < d->kw && ih >= 0 && ih < d->h; kw++) {
                        int64_t iw = ow * d->sw - d->pw + kw * d->dw;
                        if (iw >= 0 && iw < d->w)
                            acc += w[(m * d->kh + kh) * d->kw + kw] * xc[ih * d->w + iw];
                    }
                }
                y[(m * oh_n + oh) * ow_n + ow] = acc;
            }
    }
}

QC_TEST(conv_depthwise_exact_order)
{
    static const dw_case cases[] = {
        { 3, 1, 4, 5, 3, 3, 1, 1, 1, 1, 1, 1 },         /* narrower than a vector */
        { 4, 1, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1 },
        { 5, 2, 5, 13, 5, 5, 1, 1, 1, 1, 2, 2 },        /* 8 + an overlapping 8 */
        { 6, 1, 12, 80, 5, 5, 1, 1, 1, 1, 2, 2 },       /* 64 + 16 */
        { 3, 1, 7, 150, 3, 3, 2, 1, 1, 1, 1, 1 },
        { 4, 1, 9, 161, 3, 3, 1, 2, 1, 1, 1, 1 },       /* stride 2 along the row */
        { 3, 1, 10, 47, 5, 3, 2, 2, 2, 2, 3, 1 },       /* dilation */
        { 2, 1, 9, 40, 3, 3, 3, 3, 1, 1, 1, 1 },        /* stride 3: scalar */
        { 2, 1, 9, 30, 7, 7, 1, 1, 1, 1, 0, 0 },        /* no padding */
        { 3, 2, 6, 9, 3, 3, 2, 2, 1, 1, 1, 1 },         /* stride 2, 5 outputs a row */
        { 2, 1, 5, 4, 5, 5, 1, 1, 1, 1, 2, 2 },         /* kernel wider than the row */
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const dw_case *d = &cases[t];
        int64_t m = d->c * d->mult;
        int64_t oh = (d->h + 2 * d->ph - (d->kh - 1) * d->dh - 1) / d->sh + 1;
        int64_t ow = (d->w + 2 * d->pw - (d->kw - 1) * d->dw - 1) / d->sw + 1;
        int64_t xd[4] = { 1, d->c, d->h, d->w }, wd[4] = { m, 1, d->kh, d->kw }, yd[4] = {
            1, m, oh, ow };
        float *x = rand_buf(prod(xd, 4)), *w = rand_buf(prod(wd, 4)), *b = rand_buf(m);
        float *want = malloc((size_t)prod(yd, 4) * sizeof *want);
        b[0] = -0.0f;
        if (t == 3)
            w[d->kh * d->kw + 2] = NAN;            /* channel 1: the scalar loop */
        dw_ref(d, x, w, b, oh, ow, want);
        tnode tn;
        tn_init(&tn, "Conv", 13, 3, 1);
        tn_input(&tn, 0, QC_F32, 4, xd, x);
        tn_input(&tn, 1, QC_F32, 4, wd, w);
        tn_input(&tn, 2, QC_F32, 1, &m, b);
        tn_int(&tn, "group", d->c);
        tn_ints(&tn, "strides", 2, (const int64_t[]){ d->sh, d->sw });
        tn_ints(&tn, "dilations", 2, (const int64_t[]){ d->dh, d->dw });
        tn_ints(&tn, "pads", 4, (const int64_t[]){ d->ph, d->pw, d->ph, d->pw });
        const qc_tensor *y = tn_run(&tn, 0);
        if (y && (y->ndim != 4 || y->dims[2] != oh || y->dims[3] != ow))
            qc_test_fail(__FILE__, __LINE__, "case %zu: output shape", t);
        else if (y && memcmp(y->data, want, (size_t)prod(yd, 4) * sizeof *want) != 0)
            qc_test_fail(__FILE__, __LINE__, "case %zu: not the same bits as the ordered loop",
                         t);
        tn_free(&tn);
        free(x);
        free(w);
        free(b);
        free(want);
    }
}

QC_TEST(conv_against_naive)
{
    conv_cases_run("default", 0);
}

QC_TEST(conv_portable_against_naive)
{
    setenv("QC_CONV_PORTABLE", "1", 1);
    conv_cases_run("portable", 0);
    unsetenv("QC_CONV_PORTABLE");
}

/* Every stride-1 convolution as rows of its input (the lanes kernel), plain and with SiLU */
QC_TEST(conv_rows_against_naive)
{
    setenv("QC_CONV_ROWS", "1", 1);
    conv_cases_run("rows", 0);
    conv_cases_run("rows", 1);
    unsetenv("QC_CONV_ROWS");
}

/* 48-channel tile panels wherever more than 32 channels are left (remainders of 16 and 32
 * channels in a 48-wide panel), plain and with SiLU */
QC_TEST(conv_nv3_against_naive)
{
    setenv("QC_CONV_NV3", "1", 1);
    conv_cases_run("nv3", 0);
    conv_cases_run("nv3", 1);
    unsetenv("QC_CONV_NV3");
}

/* The AVX2 + FMA kernels (conv_avx2.c) where the CPU also has AVX-512 (elsewhere they are
 * the default ones above): tiles, rows, pointwise, plain and with SiLU */
QC_TEST(conv_avx2_against_naive)
{
    setenv("QC_CONV_ISA", "avx2", 1);
    conv_cases_run("avx2", 0);
    conv_cases_run("avx2", 1);
    setenv("QC_CONV_ROWS", "1", 1);
    conv_cases_run("avx2 rows", 0);
    conv_cases_run("avx2 rows", 1);
    unsetenv("QC_CONV_ROWS");
    unsetenv("QC_CONV_ISA");
}

/* Every 3x3 stride-1 ungrouped case as Winograd F(4x4, 3x3) (conv_wino.c; by default from 12
 * input and 16 output channels and 20 tiles), on either kernel set, plain and with SiLU. */
QC_TEST(conv_cases_as_wino)
{
    setenv("QC_CONV_WINO", "1", 1);
    conv_cases_check("wino", 0, 1e-5);
    conv_cases_check("wino", 1, 1e-5);
    setenv("QC_CONV_ISA", "avx2", 1);
    conv_cases_check("wino avx2", 0, 1e-5);
    conv_cases_check("wino avx2", 1, 1e-5);
    unsetenv("QC_CONV_ISA");
    unsetenv("QC_CONV_WINO");
}

/* The planner's Conv + x * Sigmoid(x) fusion, on every path. */
QC_TEST(conv_fused_silu)
{
    conv_cases_run("default", 1);
    setenv("QC_CONV_PORTABLE", "1", 1);
    conv_cases_run("portable", 1);
    unsetenv("QC_CONV_PORTABLE");
}

/* Not a SiLU: Mul(sigmoid, sigmoid) (the Conv's output has one reader), Mul(conv, conv)
 * (the Sigmoid's output feeds nothing). The Conv takes no activation (that would skip two
 * nodes) and the output is the unfused executor's. */
QC_TEST(conv_silu_lookalikes_not_fused)
{
    const conv_case *cc = &conv_cases[0];
    int64_t xd[4] = { cc->n, cc->c, cc->in[0], cc->in[1] }, wd[4] = { cc->m, cc->c, 3, 3 };
    float *x = rand_buf(prod(xd, 4)), *w = rand_buf(prod(wd, 4));
    for (int variant = 0; variant < 2; variant++) {
        tnode tn;
        qc_err err = { 0 };
        qc_exec *plain = NULL;
        tn_init(&tn, "Conv", 13, 2, 1);
        tn_input(&tn, 0, QC_F32, 4, xd, x);
        tn_input(&tn, 1, QC_F32, 4, wd, w);
        tn_ints(&tn, "pads", 4, cc->pads);
        tn_silu(&tn);
        if (variant == 0)
            tn.tail_io[1][0] = tn.tail_io[1][1];        /* Mul(sig, sig) */
        else
            tn.tail_io[1][1] = tn.tail_io[1][0];        /* Mul(conv, conv) */
        const qc_tensor *got = tn_run(&tn, 0), *want = NULL;
        CHECK(got != NULL);
        if (tn.x)       /* Sigmoid and Mul still make an elementwise chain (one node) */
            CHECK_INT(qc_exec_fused_nodes(tn.x), 1);
        CHECK_OK(qc_exec_new(&plain, &tn.m, NULL, &err));
        if (plain && qc_exec_run(plain, tn.inputs, tn.m.n_inputs, &err) == QC_OK)
            want = qc_exec_output(plain, 0);
        CHECK(got && want && qc_shape_equal(got, want) &&
              !memcmp(got->data, want->data, qc_tensor_nbytes(want)));
        qc_exec_free(plain);
        tn_free(&tn);
    }
    free(x);
    free(w);
}

/* Weights as an initializer take the packed-weight cache; a second run with new input must
 * not reuse anything but the weights. */
QC_TEST(conv_cached_weights_two_runs)
{
    const conv_case *cc = &conv_cases[1];              /* 2d_s2 */
    int64_t xd[4] = { cc->n, cc->c, cc->in[0], cc->in[1] }, wd[4] = { cc->m, cc->c, 3, 3 };
    int64_t yd[4] = { cc->n, cc->m, 5, 4 };
    float *w = rand_buf(prod(wd, 4)), *want = malloc((size_t)prod(yd, 4) * sizeof *want);
    qc_tensor init = { .name = "in1", .dtype = QC_F32, .ndim = 4, .data = w };
    memcpy(init.dims, wd, sizeof wd);
    tnode tn;
    qc_err err = { 0 };
    tn_init(&tn, "Conv", 13, 2, 1);
    tn.m.n_inputs = 1;                                 /* in1 is the initializer */
    tn.m.n_inits = 1;
    tn.m.inits = &init;
    tn.ins[0].dtype = QC_F32;
    tn_ints(&tn, "strides", 2, cc->s);
    tn_ints(&tn, "pads", 4, cc->pads);
    CHECK_OK(qc_exec_new(&tn.x, &tn.m, NULL, &err));
    for (int run = 0; run < 2 && tn.x; run++) {
        float *x = rand_buf(prod(xd, 4));
        conv_ref(cc, x, w, NULL, yd + 2, want, NULL);
        tn_input(&tn, 0, QC_F32, 4, xd, x);
        CHECK_OK(qc_exec_run(tn.x, tn.inputs, 1, &err));
        check_out(run ? "second run" : "first run", qc_exec_output(tn.x, 0), 4, yd, want,
                  1e-4, 1e-4);
        free(x);
    }
    tn_free(&tn);
    free(w);
    free(want);
}

/* A run in steps (qc_exec_begin / qc_exec_step_to / qc_exec_finish) gives qc_exec_run's bits;
 * after a step to the Conv its output is live and the Mul's not yet computed; a step to a
 * node already behind is an error. Conv -> Sigmoid -> Mul, unfused. */
QC_TEST(exec_run_in_steps)
{
    const conv_case *cc = &conv_cases[1];
    int64_t xd[4] = { cc->n, cc->c, cc->in[0], cc->in[1] }, wd[4] = { cc->m, cc->c, 3, 3 };
    float *x = rand_buf(prod(xd, 4)), *w = rand_buf(prod(wd, 4));
    tnode tn;
    qc_err err = { 0 };
    qc_exec *y = NULL;
    const qc_tensor *want = NULL;
    tn_init(&tn, "Conv", 13, 2, 1);
    tn_input(&tn, 0, QC_F32, 4, xd, x);
    tn_input(&tn, 1, QC_F32, 4, wd, w);
    tn_ints(&tn, "strides", 2, cc->s);
    tn_ints(&tn, "pads", 4, cc->pads);
    tn_silu(&tn);
    CHECK_OK(qc_exec_new(&tn.x, &tn.m, NULL, &err));      /* unfused, as the steps run */
    if (tn.x && qc_exec_run(tn.x, tn.inputs, tn.m.n_inputs, &err) == QC_OK)
        want = qc_exec_output(tn.x, 0);
    CHECK(want != NULL);
    CHECK_OK(qc_exec_new(&y, &tn.m, NULL, &err));
    if (want && y) {
        CHECK_OK(qc_exec_begin(y, tn.inputs, tn.m.n_inputs, &err));
        CHECK_OK(qc_exec_step_to(y, 0, &err));
        CHECK(qc_exec_value(y, "conv_out") != NULL);
        CHECK(qc_exec_output(y, 0) == NULL);
        CHECK(qc_exec_step_to(y, 0, &err) == QC_EINTERNAL);
        CHECK_OK(qc_exec_finish(y, &err));
        const qc_tensor *got = qc_exec_output(y, 0);
        CHECK(got && qc_shape_equal(got, want) &&
              !memcmp(got->data, want->data, qc_tensor_nbytes(want)));
        CHECK_INT(qc_exec_runs(y), 1);
        CHECK_INT(qc_exec_node_pos(y, 2), 2);
        CHECK_INT(qc_exec_node_pos(y, 3), -1);
    }
    qc_exec_free(y);
    tn_free(&tn);
    free(x);
    free(w);
}

QC_TEST(conv_rejects_bad_group)
{
    int64_t xd[4] = { 1, 3, 4, 4 }, wd[4] = { 2, 2, 3, 3 };
    float x[48] = { 0 }, w[36] = { 0 };
    tnode tn;
    qc_err err = { 0 };
    tn_init(&tn, "Conv", 13, 2, 1);
    tn_input(&tn, 0, QC_F32, 4, xd, x);
    tn_input(&tn, 1, QC_F32, 4, wd, w);
    tn_int(&tn, "group", 2);
    CHECK(qc_exec_new(&tn.x, &tn.m, NULL, &err) == QC_OK);
    CHECK(qc_exec_run(tn.x, tn.inputs, 2, &err) != QC_OK);
    CHECK(strstr(err.msg, "Conv") != NULL);
    tn_free(&tn);
}

/* ---- ConvTranspose ------------------------------------------------------------------- */

typedef struct convt_case {
    const char *name;
    int         nsp;
    int64_t     n, c, m, group;                    /* m: total output channels */
    int64_t     in[3], k[3], s[3], d[3], pads[6], opad[3];
    int         bias;
} convt_case;

static const convt_case convt_cases[] = {
    { "2d_basic", 2, 1, 2, 3, 1, { 3, 4 }, { 3, 3 }, { 1, 1 }, { 1, 1 }, { 0 }, { 0 }, 1 },
    { "2d_strided", 2, 2, 3, 2, 1, { 4, 3 }, { 3, 2 }, { 3, 2 }, { 1, 1 }, { 1, 0, 1, 1 },
      { 1, 1 }, 1 },
    { "2d_dil_group", 2, 1, 4, 6, 2, { 5, 4 }, { 2, 3 }, { 2, 1 }, { 2, 2 }, { 0, 1, 1, 0 },
      { 0, 0 }, 0 },
    { "2d_pointwise", 2, 1, 3, 4, 1, { 3, 5 }, { 1, 1 }, { 1, 1 }, { 1, 1 }, { 0 }, { 0 }, 1 },
    { "1d", 1, 1, 2, 3, 1, { 6 }, { 4 }, { 2 }, { 1 }, { 1, 2 }, { 1 }, 1 },
    { "3d", 3, 1, 2, 2, 1, { 2, 3, 3 }, { 2, 2, 3 }, { 2, 1, 2 }, { 1, 2, 1 },
      { 0, 1, 1, 1, 0, 0 }, { 1, 0, 0 }, 1 },
};

QC_TEST(convtranspose_against_naive)
{
    for (size_t t = 0; t < sizeof convt_cases / sizeof convt_cases[0]; t++) {
        const convt_case *cc = &convt_cases[t];
        int nsp = cc->nsp;
        int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
        int64_t xd[5] = { cc->n, cc->c }, wd[5] = { cc->c, mg }, yd[5] = { cc->n, cc->m };
        for (int i = 0; i < nsp; i++) {
            xd[2 + i] = cc->in[i];
            wd[2 + i] = cc->k[i];
            yd[2 + i] = cc->s[i] * (cc->in[i] - 1) + cc->opad[i] + (cc->k[i] - 1) * cc->d[i] +
                        1 - cc->pads[i] - cc->pads[nsp + i];
        }
        int64_t isz = prod(cc->in, nsp), osz = prod(yd + 2, nsp), ksz = prod(cc->k, nsp);
        float *x = rand_buf(prod(xd, nsp + 2)), *w = rand_buf(prod(wd, nsp + 2));
        float *b = rand_buf(cc->m), *want = calloc((size_t)prod(yd, nsp + 2), sizeof *want);
        for (int64_t bi = 0; bi < cc->n; bi++) {
            for (int64_t m = 0; m < cc->m; m++)
                for (int64_t o = 0; o < osz; o++)
                    want[(bi * cc->m + m) * osz + o] = cc->bias ? b[m] : 0.0f;
            for (int64_t c = 0; c < cc->c; c++)
            for (int64_t i = 0; i < isz; i++)
            for (int64_t mm = 0; mm < mg; mm++)
            for (int64_t kf = 0; kf < ksz; kf++) {
                int64_t ii[3], ki[3], ir = i, kr = kf, off = 0, inside = 1;
                for (int a = nsp - 1; a >= 0; a--) {
                    ii[a] = ir % cc->in[a];
                    ir /= cc->in[a];
                    ki[a] = kr % cc->k[a];
                    kr /= cc->k[a];
                }
                for (int a = 0; a < nsp; a++) {
                    int64_t v = ii[a] * cc->s[a] - cc->pads[a] + ki[a] * cc->d[a];
                    inside &= v >= 0 && v < yd[2 + a];
                    off = off * yd[2 + a] + v;
                }
                int64_t m = (c / cg) * mg + mm;
                if (inside)
                    want[(bi * cc->m + m) * osz + off] +=
                        x[(bi * cc->c + c) * isz + i] * w[(c * mg + mm) * ksz + kf];
            }
        }
        tnode tn;
        tn_init(&tn, "ConvTranspose", 13, cc->bias ? 3 : 2, 1);
        tn_input(&tn, 0, QC_F32, nsp + 2, xd, x);
        tn_input(&tn, 1, QC_F32, nsp + 2, wd, w);
        int64_t nb = cc->m;
        if (cc->bias)
            tn_input(&tn, 2, QC_F32, 1, &nb, b);
        tn_ints(&tn, "strides", nsp, cc->s);
        tn_ints(&tn, "dilations", nsp, cc->d);
        tn_ints(&tn, "pads", 2 * nsp, cc->pads);
        tn_ints(&tn, "output_padding", nsp, cc->opad);
        if (cc->group != 1)
            tn_int(&tn, "group", cc->group);
        check_out(cc->name, tn_run(&tn, 0), nsp + 2, yd, want, 1e-4, 1e-4);
        tn_free(&tn);
        free(x);
        free(w);
        free(b);
        free(want);
    }
}

/* ---- MatMul / Gemm ------------------------------------------------------------------- */

static void matmul_case(const char *name, int na, const int64_t *ad, int nb, const int64_t *bd,
                        int ny, const int64_t *yd)
{
    int64_t m = na == 1 ? 1 : ad[na - 2], k = ad[na - 1], n = nb == 1 ? 1 : bd[nb - 1];
    int64_t nbatch = prod(yd, ny) / (m * n);
    int nbd = ny - (na > 1) - (nb > 1);        /* output batch rank */
    float *a = rand_buf(prod(ad, na)), *b = rand_buf(prod(bd, nb));
    float *want = malloc((size_t)prod(yd, ny) * sizeof *want);
    for (int64_t t = 0; t < nbatch; t++) {
        /* unravel t over the output batch dims, then ravel into A's and B's batch dims */
        int64_t idx[8], rem = t, ao = 0, bo = 0;
        for (int i = nbd - 1; i >= 0; i--) {
            idx[i] = rem % yd[i];
            rem /= yd[i];
        }
        int abd = na > 2 ? na - 2 : 0, bbd = nb > 2 ? nb - 2 : 0;
        for (int i = 0; i < abd; i++)
            ao = ao * ad[i] + (ad[i] == 1 ? 0 : idx[nbd - abd + i]);
        for (int i = 0; i < bbd; i++)
            bo = bo * bd[i] + (bd[i] == 1 ? 0 : idx[nbd - bbd + i]);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0.0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)a[ao * m * k + i * k + p] * b[bo * k * n + p * n + j];
                want[t * m * n + i * n + j] = (float)s;
            }
    }
    tnode tn;
    tn_init(&tn, "MatMul", 13, 2, 1);
    tn_input(&tn, 0, QC_F32, na, ad, a);
    tn_input(&tn, 1, QC_F32, nb, bd, b);
    check_out(name, tn_run(&tn, 0), ny, yd, want, 1e-4, 1e-5);
    tn_free(&tn);
    free(a);
    free(b);
    free(want);
}

QC_TEST(matmul_numpy_semantics)
{
    matmul_case("2d", 2, (int64_t[]){ 3, 4 }, 2, (int64_t[]){ 4, 5 }, 2, (int64_t[]){ 3, 5 });
    matmul_case("vec_mat", 1, (int64_t[]){ 4 }, 2, (int64_t[]){ 4, 5 }, 1, (int64_t[]){ 5 });
    matmul_case("mat_vec", 2, (int64_t[]){ 3, 4 }, 1, (int64_t[]){ 4 }, 1, (int64_t[]){ 3 });
    matmul_case("vec_vec", 1, (int64_t[]){ 4 }, 1, (int64_t[]){ 4 }, 0, (int64_t[]){ 1 });
    matmul_case("fold_batch", 3, (int64_t[]){ 2, 3, 4 }, 2, (int64_t[]){ 4, 5 }, 3,
                (int64_t[]){ 2, 3, 5 });
    matmul_case("b_batched", 2, (int64_t[]){ 3, 4 }, 3, (int64_t[]){ 2, 4, 5 }, 3,
                (int64_t[]){ 2, 3, 5 });
    matmul_case("broadcast", 4, (int64_t[]){ 2, 1, 3, 4 }, 3, (int64_t[]){ 3, 4, 2 }, 4,
                (int64_t[]){ 2, 3, 3, 2 });
    matmul_case("batch_vec", 3, (int64_t[]){ 2, 3, 4 }, 1, (int64_t[]){ 4 }, 2,
                (int64_t[]){ 2, 3 });
    matmul_case("vec_batch", 1, (int64_t[]){ 4 }, 3, (int64_t[]){ 2, 4, 3 }, 2,
                (int64_t[]){ 2, 3 });
}

QC_TEST(gemm_bias_broadcast)
{
    /* A^T (K=3 x M=2), B^T (N=4 x K=3), C [M,1]; alpha 0.5, beta 2. */
    float a[6] = { 1, 2, 3, 4, 5, 6 }, b[12], c[2] = { 10, -10 }, want[8];
    for (int i = 0; i < 12; i++)
        b[i] = (float)(i - 5);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            float s = 0;
            for (int p = 0; p < 3; p++)
                s += a[p * 2 + i] * b[j * 3 + p];
            want[i * 4 + j] = 0.5f * s + 2.0f * c[i];
        }
    tnode tn;
    tn_init(&tn, "Gemm", 13, 3, 1);
    tn_input(&tn, 0, QC_F32, 2, (int64_t[]){ 3, 2 }, a);
    tn_input(&tn, 1, QC_F32, 2, (int64_t[]){ 4, 3 }, b);
    tn_input(&tn, 2, QC_F32, 2, (int64_t[]){ 2, 1 }, c);
    tn_int(&tn, "transA", 1);
    tn_int(&tn, "transB", 1);
    tn_float(&tn, "alpha", 0.5f);
    tn_float(&tn, "beta", 2.0f);
    check_out("gemm", tn_run(&tn, 0), 2, (int64_t[]){ 2, 4 }, want, 1e-6, 1e-5);
    check_sums("gemm", &tn, 2, (int64_t[]){ 2, 4 }, want, 1);
    tn_free(&tn);
}

/* ---- pools --------------------------------------------------------------------------- */

QC_TEST(maxpool_indices_and_ceil)
{
    /* 1x1x4x6, kernel 2x3, stride 2, ceil_mode: output 2x3, the last column of windows
     * clipped at the edge. */
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)((i * 7) % 24);
    tnode tn;
    tn_init(&tn, "MaxPool", 12, 1, 2);
    tn_input(&tn, 0, QC_F32, 4, (int64_t[]){ 1, 1, 4, 6 }, x);
    tn_ints(&tn, "kernel_shape", 2, (int64_t[]){ 2, 3 });
    tn_ints(&tn, "strides", 2, (int64_t[]){ 2, 2 });
    tn_int(&tn, "ceil_mode", 1);
    const qc_tensor *y = tn_run(&tn, 0);
    const qc_tensor *ind = tn.x ? qc_exec_output(tn.x, 1) : NULL;
    int64_t yd[4] = { 1, 1, 2, 3 };
    float want[6];
    int64_t want_i[6];
    for (int oh = 0; oh < 2; oh++)
        for (int ow = 0; ow < 3; ow++) {
            float m = -1;
            int64_t at = -1;
            for (int h = oh * 2; h < oh * 2 + 2 && h < 4; h++)
                for (int w = ow * 2; w < ow * 2 + 3 && w < 6; w++)
                    if (x[h * 6 + w] > m) {
                        m = x[h * 6 + w];
                        at = h * 6 + w;
                    }
            want[oh * 3 + ow] = m;
            want_i[oh * 3 + ow] = at;
        }
    check_out("maxpool", y, 4, yd, want, 0, 0);
    CHECK(ind && ind->dtype == QC_I64);
    if (ind && ind->dtype == QC_I64)
        for (int i = 0; i < 6; i++)
            CHECK_INT(((const int64_t *)ind->data)[i], want_i[i]);
    tn_free(&tn);
}

QC_TEST(avgpool_count_include_pad)
{
    float x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    for (int inc = 0; inc < 2; inc++) {
        tnode tn;
        tn_init(&tn, "AveragePool", 11, 1, 1);
        tn_input(&tn, 0, QC_F32, 4, (int64_t[]){ 1, 1, 3, 3 }, x);
        tn_ints(&tn, "kernel_shape", 2, (int64_t[]){ 2, 2 });
        tn_ints(&tn, "pads", 4, (int64_t[]){ 1, 1, 0, 0 });
        tn_int(&tn, "count_include_pad", inc);
        /* windows: {1}, {1,2}, {2,3} / {1,4}, {1,2,4,5}, ... */
        float want0[9] = { 1, 1.5f, 2.5f, 2.5f, 3, 4, 5.5f, 6, 7 };
        float want1[9] = { 0.25f, 0.75f, 1.25f, 1.25f, 3, 4, 2.75f, 6, 7 };
        check_out(inc ? "include_pad" : "exclude_pad", tn_run(&tn, 0), 4,
                  (int64_t[]){ 1, 1, 3, 3 }, inc ? want1 : want0, 1e-6, 1e-6);
        tn_free(&tn);
    }
}

QC_TEST(global_pools)
{
    float x[2 * 3 * 5];
    for (int i = 0; i < 30; i++)
        x[i] = (float)((i * 11) % 17) - 8.0f;
    float want_avg[6], want_max[6];
    for (int p = 0; p < 6; p++) {
        float s = 0, m = -1e30f;
        for (int i = 0; i < 5; i++) {
            s += x[p * 5 + i];
            m = x[p * 5 + i] > m ? x[p * 5 + i] : m;
        }
        want_avg[p] = s / 5;
        want_max[p] = m;
    }
    const char *ops[2] = { "GlobalAveragePool", "GlobalMaxPool" };
    for (int k = 0; k < 2; k++) {
        tnode tn;
        tn_init(&tn, ops[k], 13, 1, 1);
        tn_input(&tn, 0, QC_F32, 3, (int64_t[]){ 2, 3, 5 }, x);
        check_out(ops[k], tn_run(&tn, 0), 3, (int64_t[]){ 2, 3, 1 }, k ? want_max : want_avg,
                  1e-6, 1e-6);
        tn_free(&tn);
    }
}

/* ---- QuantizeLinear / DequantizeLinear ----------------------------------------------- */

QC_TEST(quantize_rounds_half_even_and_saturates)
{
    float x[8] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 1000.0f, -1000.0f, 0.26f };
    float scale = 0.5f;
    int8_t zp = 1;
    /* x/scale = 1, 3, 5, -1, -3, 2000, -2000, 0.52 -> +1 */
    int8_t want[8] = { 2, 4, 6, 0, -2, 127, -128, 2 };
    tnode tn;
    tn_init(&tn, "QuantizeLinear", 13, 3, 1);
    tn_input(&tn, 0, QC_F32, 1, (int64_t[]){ 8 }, x);
    tn_input(&tn, 1, QC_F32, 0, NULL, &scale);
    tn_input(&tn, 2, QC_I8, 0, NULL, &zp);
    const qc_tensor *y = tn_run(&tn, 0);
    CHECK(y && y->dtype == QC_I8);
    if (y && y->dtype == QC_I8)
        for (int i = 0; i < 8; i++)
            CHECK_INT(((const int8_t *)y->data)[i], want[i]);
    tn_free(&tn);
    /* ties: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (uint8, no zero point) */
    float t[3] = { 0.5f, 1.5f, 2.5f }, one = 1.0f;
    tn_init(&tn, "QuantizeLinear", 13, 2, 1);
    tn_input(&tn, 0, QC_F32, 1, (int64_t[]){ 3 }, t);
    tn_input(&tn, 1, QC_F32, 0, NULL, &one);
    y = tn_run(&tn, 0);
    CHECK(y && y->dtype == QC_U8);
    if (y && y->dtype == QC_U8) {
        CHECK_INT(((const uint8_t *)y->data)[0], 0);
        CHECK_INT(((const uint8_t *)y->data)[1], 2);
        CHECK_INT(((const uint8_t *)y->data)[2], 2);
    }
    tn_free(&tn);
}

QC_TEST(quantize_per_axis_and_blocked)
{
    /* x [2,4]: per-axis on axis 1 (4 scales), then blocked on axis 1 with block 2. */
    float x[8] = { 1, 2, 3, 4, -1, -2, -3, -4 };
    float sc4[4] = { 1, 2, 4, 8 };
    int16_t zp4[4] = { 0, 10, -10, 100 };
    int16_t want4[8] = { 1, 11, -9, 100, -1, 9, -11, 100 };
    tnode tn;
    tn_init(&tn, "QuantizeLinear", 13, 3, 1);
    tn_input(&tn, 0, QC_F32, 2, (int64_t[]){ 2, 4 }, x);
    tn_input(&tn, 1, QC_F32, 1, (int64_t[]){ 4 }, sc4);
    tn_input(&tn, 2, QC_I16, 1, (int64_t[]){ 4 }, zp4);
    const qc_tensor *y = tn_run(&tn, 0);
    if (y && y->dtype == QC_I16)
        for (int i = 0; i < 8; i++)
            CHECK_INT(((const int16_t *)y->data)[i], want4[i]);
    else
        CHECK(0);
    tn_free(&tn);

    float scb[4] = { 1, 2, 0.5f, 0.25f };        /* [2, 2]: rows x blocks */
    uint8_t want_b[8] = { 1, 2, 2, 2, 0, 0, 0, 0 };
    tn_init(&tn, "QuantizeLinear", 21, 2, 1);
    tn_input(&tn, 0, QC_F32, 2, (int64_t[]){ 2, 4 }, x);
    tn_input(&tn, 1, QC_F32, 2, (int64_t[]){ 2, 2 }, scb);
    tn_int(&tn, "block_size", 2);
    y = tn_run(&tn, 0);
    if (y && y->dtype == QC_U8)
        for (int i = 0; i < 8; i++)
            CHECK_INT(((const uint8_t *)y->data)[i], want_b[i]);
    else
        CHECK(0);
    tn_free(&tn);
}

QC_TEST(dequantize_int32_and_axis)
{
    int32_t q[4] = { 100000000, -7, 0, 2147483647 };
    float s = 0.5f;
    tnode tn;
    tn_init(&tn, "DequantizeLinear", 13, 2, 1);
    tn_input(&tn, 0, QC_I32, 1, (int64_t[]){ 4 }, q);
    tn_input(&tn, 1, QC_F32, 0, NULL, &s);
    float want[4] = { 50000000.0f, -3.5f, 0.0f, 1073741823.5f };
    check_out("int32", tn_run(&tn, 0), 1, (int64_t[]){ 4 }, want, 1e-7, 0);
    tn_free(&tn);

    uint8_t q8[6] = { 0, 128, 255, 10, 20, 30 };
    float sc[3] = { 1.0f, 0.5f, 2.0f };
    uint8_t zp[3] = { 128, 0, 255 };
    float want8[6] = { -128, 64, 0, -118, 10, -450 };
    tn_init(&tn, "DequantizeLinear", 13, 3, 1);
    tn_input(&tn, 0, QC_U8, 2, (int64_t[]){ 2, 3 }, q8);
    tn_input(&tn, 1, QC_F32, 1, (int64_t[]){ 3 }, sc);
    tn_input(&tn, 2, QC_U8, 1, (int64_t[]){ 3 }, zp);
    tn_int(&tn, "axis", -1);
    check_out("axis", tn_run(&tn, 0), 2, (int64_t[]){ 2, 3 }, want8, 0, 0);
    tn_free(&tn);
}

/* The vectorized per-tensor uint8 Q/DQ paths against the scalar ones (QC_QDQ_SCALAR), on data
 * with ties, saturation in both directions, NaN and a tail that is not a multiple of 8. */
QC_TEST(qdq_u8_fast_path_matches_scalar)
{
    enum { N = 1003 };
    static float x[N];
    float scale = 0.25f;
    uint8_t zp = 37;
    for (int i = 0; i < N; i++)
        x[i] = (float)(i % 211 - 105) * 0.125f;          /* multiples of half a step: ties */
    x[5] = 1e9f;
    x[6] = -1e9f;
    x[7] = NAN;
    x[N - 1] = 63.875f;
    uint8_t q[2][N];
    float d[2][N];
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            setenv("QC_QDQ_SCALAR", "1", 1);
        tnode tn;
        tn_init(&tn, "QuantizeLinear", 13, 3, 1);
        tn_input(&tn, 0, QC_F32, 1, (int64_t[]){ N }, x);
        tn_input(&tn, 1, QC_F32, 0, NULL, &scale);
        tn_input(&tn, 2, QC_U8, 0, NULL, &zp);
        const qc_tensor *y = tn_run(&tn, 0);
        CHECK(y && y->dtype == QC_U8);
        if (y)
            memcpy(q[pass], y->data, N);
        tn_free(&tn);
        tn_init(&tn, "DequantizeLinear", 13, 3, 1);
        tn_input(&tn, 0, QC_U8, 1, (int64_t[]){ N }, q[pass]);
        tn_input(&tn, 1, QC_F32, 0, NULL, &scale);
        tn_input(&tn, 2, QC_U8, 0, NULL, &zp);
        y = tn_run(&tn, 0);
        CHECK(y && y->dtype == QC_F32);
        if (y)
            memcpy(d[pass], y->data, N * sizeof(float));
        tn_free(&tn);
    }
    unsetenv("QC_QDQ_SCALAR");
    int bad_q = 0, bad_d = 0;
    for (int i = 0; i < N; i++) {
        bad_q += q[0][i] != q[1][i];
        bad_d += memcmp(&d[0][i], &d[1][i], sizeof(float)) != 0;
    }
    CHECK_INT(bad_q, 0);
    CHECK_INT(bad_d, 0);
    CHECK_INT(q[0][5], 255);
    CHECK_INT(q[0][6], 0);
    CHECK_INT(q[0][7], 37);                               /* NaN -> zero point */
    CHECK_INT(q[0][100], 35);                             /* -2.5 steps: tie to even, -2 */
}
