/* Winograd F(m, r) for float 1-D convolutions (rows: ih = oh = kh = 1, the form ops_conv.c
 * gives [N, C, L] and [N, C, L, 1] convs), r from 2 to 7 taps, stride and dilation 1, group 1:
 * each tile of m = 9 - r outputs comes from the 8 inputs under it, V = Bt d per input channel,
 * U = G g per weight (once per node, in double, cached), then for each of the 8 components a
 * product M_k = U_k V_k over the input channels, and y = At M + bias. 8 multiplies per m
 * outputs and channel pair instead of m r (2.5x fewer at r = 5, 2.25x at r = 3).
 *
 * The transforms are built, not written out: the 7 points 0, 1, -1, 2, -2, 1/2, -1/2 and
 * infinity, Bt the coefficients of the Lagrange numerators (dyadic, exact in float), G the
 * points' powers over the Lagrange denominators, At the points' powers (Lavin & Gray's
 * construction of modified Toom-Cook). The products are conv_wino.c's panel kernels (tiles on
 * lanes, every sum over the input channels in order from 0); the transforms are plain C on
 * 16-lane vectors (GCC's vector extension, one multiply and one add a term: the same bits
 * whatever registers the CPU gives them). Work items are blocks of tiles x ranges of output
 * channels, as in conv_wino.c: the same bits whatever the split and kernel set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conv_wino.h"
#include "ops_ew.h"
#include "par.h"
#include "qfuse.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "conv_x86_inl.h"

#define A1 8                        /* points: inputs a tile, components */
#define W1_LAYOUT 65                /* qc_conv_cache layout id of U (+ r) */

typedef struct w1 {
    wino_job job;                   /* first: the driver's part (nk = A1, pre = A1 + 1) */
    int      r, mo;                 /* taps, outputs a tile */
    float    bt[A1][A1], at[A1][A1];   /* at: mo rows */
} w1;

static const double pts[A1 - 1] = { 0, 1, -1, 2, -2, 0.5, -0.5 };

/* Bt (rows: components, columns: inputs), At (mo x A1) and G (A1 x r) for r taps */
static void transforms(int r, double bt[A1][A1], double at[A1][A1], double g[A1][A1])
{
    int mo = A1 + 1 - r;
    memset(bt, 0, sizeof(double[A1][A1]));
    memset(at, 0, sizeof(double[A1][A1]));
    memset(g, 0, sizeof(double[A1][A1]));
    for (int j = 0; j <= A1 - 1; j++) {
        /* row j: prod over the other finite points of (x - p); the last: over all of them */
        double c[A1 + 1] = { 1 }, f = 1;
        int deg = 0;
        for (int l = 0; l < A1 - 1; l++) {
            if (l == j)
                continue;
            for (int e = ++deg; e >= 0; e--)
                c[e] = (e > 0 ? c[e - 1] : 0) - pts[l] * c[e];
            if (j < A1 - 1)
                f *= pts[j] - pts[l];
        }
        memcpy(bt[j], c, sizeof bt[j]);
        for (int i = 0; i < mo; i++)
            at[i][j] = j < A1 - 1 ? (i ? at[i - 1][j] * pts[j] : 1) : i == mo - 1;
        for (int k = 0; k < r; k++)
            g[j][k] = j < A1 - 1 ? (k ? g[j][k - 1] * pts[j] : 1 / f) : k == r - 1;
    }
}

/* U[k] = G g per (output, input) channel pair, in double, packed for the product. */
static void pack_u(const float *w, int r, int64_t m, int64_t c, int64_t mp, float *u)
{
    double bt[A1][A1], at[A1][A1], g[A1][A1];
    transforms(r, bt, at, g);
    memset(u, 0, (size_t)(A1 * mp * c) * sizeof *u);
    for (int64_t co = 0; co < m; co++)
        for (int64_t ci = 0; ci < c; ci++) {
            const float *wt = w + (co * c + ci) * r;
            for (int k = 0; k < A1; k++) {
                double v = 0;
                for (int t = 0; t < r; t++)
                    v += g[k][t] * wt[t];
                u[(((int64_t)k * (mp / WR) + co / WR) * c + ci) * WR + co % WR] = (float)v;
            }
        }
}

/* 16 floats as one value (GCC vector extension: one zmm, two ymm or four xmm registers,
 * the same elementwise arithmetic whichever); may_alias and 4-byte alignment for loads and
 * stores anywhere in a float array */
typedef float v16 __attribute__((vector_size(64), aligned(4), may_alias));

/* dst[l] = sum over the terms in order of c[t] src[t][l] (n >= 1 terms), l < len (a multiple
 * of 16), each 16 lanes summed in registers */
static inline __attribute__((always_inline)) void
combine(float *dst, const float *const *src, const float *c, int n, int64_t len)
{
    for (int64_t l = 0; l < len; l += 16) {
        v16 acc = c[0] * *(const v16 *)(src[0] + l);
        for (int t = 1; t < n; t++)
            acc += c[t] * *(const v16 *)(src[t] + l);
        *(v16 *)(dst + l) = acc;
    }
}

/* V[k][ci][lane] for tiles t0.. (ntb of them; lanes past them hold what the row has there,
 * never stored): the row from tile t0 split into its mo phases (ph[p][q] = input q mo + p of
 * the stretch, 0 outside the row), so that input j of the lanes' tiles is phase j % mo from
 * q = j / mo on; then V[k] = sum over j in order of Bt[k][j] times that (zero terms left out). */
QC_EW_SIMD_CLONES
static void input_transform(const wino_job *job, const float *xb, int64_t t0, int64_t ntb,
                            int64_t ldv, float *ph, float *v)
{
    const w1 *w = (const w1 *)job;
    const qc_conv2d *cv = job->cv;
    (void)ntb;
    int mo = w->mo;
    int64_t nq = ldv + (A1 - 1) / mo + 1, s0 = t0 * mo - cv->pw;
    /* q in [qa, qb): the whole group of mo inputs inside the row */
    int64_t qa = s0 >= 0 ? 0 : (-s0 + mo - 1) / mo;
    int64_t qb = cv->iw - mo - s0 < 0 ? 0 : (cv->iw - mo - s0) / mo + 1;
    qa = qa > nq ? nq : qa;
    qb = qb < qa ? qa : qb > nq ? nq : qb;
    const float *src[A1][A1];
    float cf[A1][A1];
    int nterm[A1];
    for (int k = 0; k < A1; k++) {
        nterm[k] = 0;
        for (int j = 0; j < A1; j++)
            if (w->bt[k][j] != 0.0f) {
                src[k][nterm[k]] = ph + (j % mo) * nq + j / mo;
                cf[k][nterm[k]++] = w->bt[k][j];
            }
    }
    for (int64_t ci = 0; ci < job->c; ci++) {
        const float *x = xb + ci * cv->iw;
        for (int p = 0; p < mo; p++) {
            float *php = ph + p * nq;
            for (int64_t q = 0; q < qa; q++) {
                int64_t i = s0 + q * mo + p;
                php[q] = i >= 0 && i < cv->iw ? x[i] : 0.0f;
            }
            for (int64_t q = qa, i = s0 + qa * mo + p; q < qb; q++, i += mo)
                php[q] = x[i];
            for (int64_t q = qb; q < nq; q++) {
                int64_t i = s0 + q * mo + p;
                php[q] = i >= 0 && i < cv->iw ? x[i] : 0.0f;
            }
        }
        for (int k = 0; k < A1; k++)
            combine(v + ((int64_t)k * job->c + ci) * ldv, src[k], cf[k], nterm[k], ldv);
    }
}

/* y of output channels [co0, co1) for tiles t0.. from M ([k][co - co0][lane]): output i of
 * tile l = sum over k in order of At[i][k] M[k][l] (zero terms left out; into q[i][l]), plus
 * the bias; then the activation over the row's stretch, as the unfused nodes compute it. */
QC_EW_SIMD_CLONES
static void output_transform(const wino_job *job, int64_t bi, int64_t t0, int64_t ntb,
                             int64_t co0, int64_t co1, int64_t ldv, const float *mo, float *q)
{
    const w1 *w = (const w1 *)job;
    const qc_conv2d *cv = job->cv;
    int64_t rows = co1 - co0, x0 = t0 * w->mo;
    int64_t x1 = (t0 + ntb) * w->mo < cv->ow ? (t0 + ntb) * w->mo : cv->ow;
    const float *src[A1][A1];
    float cf[A1][A1];
    int nterm[A1];
    for (int64_t co = co0; co < co1 && co < job->m; co++) {
        for (int i = 0; i < w->mo; i++) {
            nterm[i] = 0;
            for (int k = 0; k < A1; k++)
                if (w->at[i][k] != 0.0f) {
                    src[i][nterm[i]] = mo + ((int64_t)k * rows + co - co0) * ldv;
                    cf[i][nterm[i]++] = w->at[i][k];
                }
            combine(q + i * ldv, src[i], cf[i], nterm[i], ldv);
        }
        float *y = cv->y + (bi * job->m + co) * cv->ow;
        float bias = cv->bias ? cv->bias[co] : 0.0f;
        for (int64_t l = 0, x = x0; x < x1; l++)
            for (int i = 0; i < w->mo && x < x1; i++, x++)
                y[x] = q[i * ldv + l] + bias;
        if (cv->act == QC_CONV_SILU)
            (void)qc_ew_silu(y + x0, y + x0, x1 - x0);     /* NaN: a NaN either way */
        else if (cv->act == QC_CONV_QLUT)
            qc_code_table_apply(cv->qact, cv->lut, y + x0, y + x0, x1 - x0);
    }
}

static void pack_job(const wino_job *j, float *u)
{
    pack_u(j->cv->w, ((const w1 *)j)->r, j->m, j->c, j->mp, u);
}

int qc_conv1d_wino(const qc_conv2d *cv, int vw, qc_run *r, qc_err *err)
{
    int mode = qc_wino_mode();
    if (mode == 0 || cv->wq || cv->group != 1 || cv->ih != 1 || cv->oh != 1 || cv->kh != 1 ||
        cv->ph != 0 || cv->kw < 2 || cv->kw > A1 - 1 || cv->sw != 1 || cv->dw != 1 ||
        cv->ow < 1 || cv->iw > INT32_MAX / 2 || cv->ow > INT32_MAX / 2)
        return QC_EUNSUPPORTED;
    w1 w;
    memset(&w, 0, sizeof w);
    wino_job *j = &w.job;
    w.r = (int)cv->kw;
    w.mo = A1 + 1 - w.r;
    j->nt = (cv->ow + w.mo - 1) / w.mo;
    /* Where it pays on the Zen 4 it was measured on (tools/conv1d_sweep.py: calibrate bench,
     * one thread, one-conv models with c = m in 8..128 and 256 -> 512 channels, 32 to 512
     * outputs, r = 2..7): from 128 channels in and out and 128 outputs (256 at r = 3),
     * 1.16-2x the direct kernels; below, the transforms (per channel, not per channel pair)
     * and the lanes past the last tile cost about what the multiplies save (64 -> 64:
     * 0.65-0.95x at r = 3, 0.95-1.2x at 7, 1-1.44x at 5; 16 -> 16: 0.3-0.65x); at r = 2 (1.75x
     * fewer multiplies) only 256 -> 512 channels on 512 outputs gained (1.17x). */
    if (mode < 0 && (w.r < 3 || cv->c < 128 || cv->m < 128 || cv->ow < (w.r == 3 ? 256 : 128)))
        return QC_EUNSUPPORTED;
    j->k = qc_wino_kern(vw);
    if (!j->k)
        return QC_EUNSUPPORTED;
    double bt[A1][A1], at[A1][A1], g[A1][A1];
    transforms(w.r, bt, at, g);
    for (int i = 0; i < A1; i++)
        for (int k = 0; k < A1; k++)
            w.bt[i][k] = (float)bt[i][k], w.at[i][k] = (float)at[i][k];
    j->cv = cv;
    j->in = input_transform;
    j->out = output_transform;
    j->nk = A1;
    j->pre = A1 + 1;            /* input_transform's phases, then output_transform's rows */
    j->c = cv->c;
    j->m = cv->m;
    j->mp = (cv->m + WR - 1) / WR * WR;
    int threads = qc_par_serial() ? 1 : qc_par_threads();
    /* Blocks of tiles near V and M of 512 KiB (48 to 240 tiles), fewer while threads lack
     * two items each (not under 48), then output channel parts (qc_wino_run). */
    int64_t want = 2 * threads;
    int64_t tb = (int64_t)(512 * 1024) / (A1 * (j->c + j->mp) * (int64_t)sizeof(float));
    tb = tb < 48 ? 48 : tb > 240 ? 240 : tb;
    int64_t nb = (j->nt + tb - 1) / tb;
    while (cv->batch * nb < want && (j->nt + nb) / (nb + 1) >= 48)
        nb++;
    j->tb = (j->nt + nb - 1) / nb;
    j->nblk = (j->nt + j->tb - 1) / j->tb;
    return qc_wino_run(j, threads, align64((size_t)(A1 * j->mp * j->c) * sizeof(float)),
                       W1_LAYOUT + w.r, pack_job, r, err);
}

#else

int qc_conv1d_wino(const qc_conv2d *cv, int vw, qc_run *r, qc_err *err)
{
    (void)cv; (void)vw; (void)r; (void)err;
    return QC_EUNSUPPORTED;
}

#endif
