/* Integer kernels that round the way onnxruntime's CPU provider does when it fuses a QDQ
 * group (qfuse.c decides which groups; see qfuse.h for the input layouts). Each one follows
 * the MLAS routine the fused onnxruntime operator calls on x86-64:
 *   QLinearConv     int32 accumulation of (x - zx) * (w - zw) plus the int32 bias, then
 *                   float(acc) * (sx * sw[m] / sy), round half to even, + zy, saturate
 *                   (MlasRequantizeOutput and the ConvSym kernels' post-processing);
 *   QLinearMatMul   the same requantization of the int32 product of A and a 2-D B;
 *   QLinearSigmoid  a 256-entry table: MlasComputeLogistic (Eigen's rational approximation,
 *                   FMA3 kernel) of each dequantized code, then MlasQuantizeLinear;
 *   QLinearMul      float((a - za) * (b - zb)) * (sa * sb / sc) + zc, rounded (SSE2 kernel);
 *   QLinearAdd      fma(a, sa/sc, fma(b, sb/sc, zc - fma(sa/sc, za, sb/sc * zb))) on the raw
 *                   codes, rounded (AVX2 kernel);
 *   QLinearSoftmax  see below: still off by one code at a few exact .5 ties (about 1 in 10^6),
 *                   so some detail of its table or sum is not reproduced yet.
 * Concat, MaxPool, Resize (nearest) and the data-movement ops need nothing here: onnxruntime's
 * table or copy gives the same codes as dequantize -> float op -> quantize. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "qfuse.h"

static inline int32_t code_at(const qc_tensor *t, int64_t i)
{
    return t->dtype == QC_I8 ? ((const int8_t *)t->data)[i] : ((const uint8_t *)t->data)[i];
}

static inline int32_t zp_at(const qc_tensor *zp, int64_t i)
{
    return zp ? code_at(zp, qc_tensor_numel(zp) == 1 ? 0 : i) : 0;
}

static inline float scalar_f(const qc_tensor *t)
{
    return ((const float *)t->data)[0];
}

/* Rounds half to even (default rounding mode), adds the zero point, saturates to dtype. */
static inline void put_code(qc_tensor *y, int64_t i, float v, int32_t zp)
{
    float r = nearbyintf(v);
    int32_t q = r != r ? 0 : r > 1e6f ? 1000000 : r < -1e6f ? -1000000 : (int32_t)r;
    q += zp;
    if (y->dtype == QC_I8)
        ((int8_t *)y->data)[i] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
    else
        ((uint8_t *)y->data)[i] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

static int need_codes(const qc_knode *n, const qc_tensor *t, qc_err *err)
{
    if (t->dtype != QC_U8 && t->dtype != QC_I8)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "onnxruntime emulation: '%s' has dtype "
                            "%s, only 8-bit codes are supported", t->name ? t->name : "?",
                            qc_dtype_name(t->dtype));
    return QC_OK;
}

/* ---- QLinearConv ------------------------------------------------------------------------ */

typedef struct qconv_state {
    double *w;          /* [M][K]: w - zw, exact in double */
    float  *wf;         /* the same in float */
    float  *scale;      /* [M]: sx * sw[m] / sy, evaluated left to right in float */
    double  wabs;       /* max over m of sum_k |w - zw|: bounds |acc| / max|x - zx| */
    int64_t m, k;
} qconv_state;

typedef struct qconv_geom {
    int64_t n, c, h, w, m, group, cg, mg, kh, kw, oh, ow, sh, sw, dh, dw, ph, pw;
} qconv_geom;

static int qconv_geometry(const qc_knode *n, qconv_geom *g, qc_err *err)
{
    const qc_tensor *x = n->in[0], *w = n->in[3];
    int nsp = x->ndim - 2;
    if ((nsp != 1 && nsp != 2) || w->ndim != x->ndim)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "onnxruntime emulation: only 1-D and 2-D "
                            "convolutions");
    int64_t one[2] = { 1, 1 }, zero[4] = { 0, 0, 0, 0 }, cnt;
    const int64_t *s = qc_attr_ints(n->node, "strides", &cnt);
    if (!s || cnt != nsp)
        s = one;
    const int64_t *d = qc_attr_ints(n->node, "dilations", &cnt);
    if (!d || cnt != nsp)
        d = one;
    const int64_t *p = qc_attr_ints(n->node, "pads", &cnt);
    if (!p || cnt != 2 * nsp)
        p = zero;
    memset(g, 0, sizeof *g);
    g->n = x->dims[0];
    g->c = x->dims[1];
    g->h = nsp == 2 ? x->dims[2] : 1;
    g->w = x->dims[nsp + 1];
    g->m = w->dims[0];
    g->group = qc_attr_int(n->node, "group", 1);
    if (g->group < 1 || g->c % g->group || g->m % g->group || w->dims[1] != g->c / g->group)
        return qc_node_errf(n, err, QC_ESHAPE, "weight does not fit %lld channels in %lld "
                            "groups", (long long)g->c, (long long)g->group);
    g->cg = g->c / g->group;
    g->mg = g->m / g->group;
    g->kh = nsp == 2 ? w->dims[2] : 1;
    g->kw = w->dims[nsp + 1];
    g->sh = nsp == 2 ? s[0] : 1;
    g->sw = s[nsp - 1];
    g->dh = nsp == 2 ? d[0] : 1;
    g->dw = d[nsp - 1];
    int64_t pt = nsp == 2 ? p[0] : 0, pl = p[nsp - 1], pb = nsp == 2 ? p[2] : 0,
            pr = p[2 * nsp - 1];
    const char *ap = qc_attr_str(n->node, "auto_pad", "NOTSET");
    int64_t ekh = (g->kh - 1) * g->dh + 1, ekw = (g->kw - 1) * g->dw + 1;
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        int upper = !strcmp(ap, "SAME_UPPER");
        g->oh = (g->h + g->sh - 1) / g->sh;
        g->ow = (g->w + g->sw - 1) / g->sw;
        int64_t th = (g->oh - 1) * g->sh + ekh - g->h, tw = (g->ow - 1) * g->sw + ekw - g->w;
        th = th < 0 ? 0 : th;
        tw = tw < 0 ? 0 : tw;
        g->ph = upper ? th / 2 : th - th / 2;
        g->pw = upper ? tw / 2 : tw - tw / 2;
        return QC_OK;
    }
    if (!strcmp(ap, "VALID"))
        pt = pl = pb = pr = 0;
    g->ph = pt;
    g->pw = pl;
    if (g->sh < 1 || g->sw < 1 || g->h + pt + pb < ekh || g->w + pl + pr < ekw)
        return qc_node_errf(n, err, QC_ESHAPE, "kernel does not fit the padded input");
    g->oh = (g->h + pt + pb - ekh) / g->sh + 1;
    g->ow = (g->w + pl + pr - ekw) / g->sw + 1;
    return QC_OK;
}

static int qconv_infer(qc_knode *n, qc_err *err)
{
    qconv_geom g;
    int rc;
    if ((rc = need_codes(n, n->in[0], err)) || (rc = need_codes(n, n->in[3], err)) ||
        (rc = qconv_geometry(n, &g, err)))
        return rc;
    int64_t dims[4] = { g.n, g.m, g.oh, g.ow };
    if (n->in[0]->ndim == 3)
        dims[2] = g.ow;
    qc_set_shape(n->out[0], n->in[7] ? n->in[7]->dtype : n->in[0]->dtype, n->in[0]->ndim,
                 dims);
    return QC_OK;
}

static int qconv_state_of(qc_knode *n, qconv_state **out, qc_err *err)
{
    if (n->state) {
        *out = n->state;
        return QC_OK;
    }
    const qc_tensor *w = n->in[3], *sw = n->in[4], *zw = n->in[5];
    qconv_state *s = calloc(1, sizeof *s);
    if (!s)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    s->m = w->dims[0];
    s->k = qc_tensor_numel(w) / s->m;
    s->w = malloc((size_t)(s->m * s->k) * sizeof *s->w);
    s->wf = malloc((size_t)(s->m * s->k) * sizeof *s->wf);
    s->scale = malloc((size_t)s->m * sizeof *s->scale);
    if (!s->w || !s->wf || !s->scale) {
        free(s->w);
        free(s->wf);
        free(s->scale);
        free(s);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    float sx = scalar_f(n->in[1]), sy = scalar_f(n->in[6]);
    int64_t nsw = qc_tensor_numel(sw);
    for (int64_t m = 0; m < s->m; m++) {
        float swm = ((const float *)sw->data)[nsw == 1 ? 0 : m];
        s->scale[m] = sx * swm / sy;
        int32_t z = zp_at(zw, m);
        double sum = 0.0;
        for (int64_t k = 0; k < s->k; k++) {
            int32_t v = code_at(w, m * s->k + k) - z;
            s->w[m * s->k + k] = (double)v;
            s->wf[m * s->k + k] = (float)v;
            sum += v < 0 ? -v : v;
        }
        s->wabs = sum > s->wabs ? sum : s->wabs;
    }
    n->state = s;
    *out = s;
    return QC_OK;
}

static void qconv_release(qc_knode *n)
{
    qconv_state *s = n->state;
    if (s) {
        free(s->w);
        free(s->wf);
        free(s->scale);
        free(s);
    }
    n->state = NULL;
}

/* Columns of one image and group: col[(c * kh + i) * kw + j][oy * ow + ox] = x - zx, 0 in
 * the padding (onnxruntime pads with the zero point). */
static void im2col_codes(const qc_tensor *x, int64_t base, int32_t zx, const qconv_geom *g,
                         double *col)
{
    int64_t P = g->oh * g->ow;
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                double *row = col + ((c * g->kh + i) * g->kw + j) * P;
                int64_t plane = base + c * g->h * g->w;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->ph + i * g->dh;
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        int64_t ix = ox * g->sw - g->pw + j * g->dw;
                        row[oy * g->ow + ox] =
                            iy < 0 || iy >= g->h || ix < 0 || ix >= g->w ? 0.0
                            : (double)(code_at(x, plane + iy * g->w + ix) - zx);
                    }
                }
            }
}

/* Float columns from one group's x - zx (exact small integers); 1x1 stride-1 unpadded
 * convolutions read the plane directly. */
static const float *im2col_float(const float *xf, const qconv_geom *g, float *col)
{
    int64_t P = g->oh * g->ow;
    if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && !g->ph && !g->pw &&
        g->oh == g->h && g->ow == g->w)
        return xf;
    for (int64_t c = 0; c < g->cg; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                float *row = col + ((c * g->kh + i) * g->kw + j) * P;
                const float *plane = xf + c * g->h * g->w;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->ph + i * g->dh;
                    float *dst = row + oy * g->ow;
                    if (iy < 0 || iy >= g->h) {
                        memset(dst, 0, (size_t)g->ow * sizeof *dst);
                        continue;
                    }
                    const float *src = plane + iy * g->w;
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        int64_t ix = ox * g->sw - g->pw + j * g->dw;
                        dst[ox] = ix < 0 || ix >= g->w ? 0.0f : src[ix];
                    }
                }
            }
    return col;
}

static void requantize(qc_tensor *y, int64_t out, const qconv_state *s, int64_t m,
                       int32_t bias, int32_t zy, const float *accf, const double *accd,
                       int64_t P)
{
    for (int64_t p = 0; p < P; p++) {
        int32_t a = (int32_t)(accf ? accf[p] : accd[p]) + bias;
        put_code(y, out + p, (float)a * s->scale[m], zy);
    }
}

static int qconv_run(qc_knode *n, qc_run *r, qc_err *err)
{
    qconv_geom g;
    qconv_state *s = NULL;
    int rc;
    if ((rc = qconv_geometry(n, &g, err)) || (rc = qconv_state_of(n, &s, err)))
        return rc;
    const qc_tensor *x = n->in[0], *b = n->n_in > 8 ? n->in[8] : NULL;
    qc_tensor *y = n->out[0];
    int32_t zx = zp_at(n->in[2], 0), zy = zp_at(n->in[7], 0);
    int64_t P = g.oh * g.ow, K = g.cg * g.kh * g.kw, HW = g.h * g.w;
    /* Every partial sum of the int32 accumulation is an integer no larger than
     * wabs * max|x - zx|: below 2^24 float sums are exact in any order (sgemm), else
     * double is (|acc| < 2^53). */
    int32_t xmax = x->dtype == QC_I8 ? (zx + 128 > 127 - zx ? zx + 128 : 127 - zx)
                                     : (zx > 255 - zx ? zx : 255 - zx);
    int exact_f = s->wabs * (double)xmax < 16777216.0;
    size_t need = exact_f ? (size_t)(g.c * HW + K * P + g.mg * P) * sizeof(float)
                          : (size_t)(K * P + g.mg * P) * sizeof(double);
    void *scratch = qc_run_scratch(r, need, err);
    if (!scratch)
        return QC_ENOMEM;
    for (int64_t im = 0; im < g.n; im++) {
        float *xf = scratch, *colf = xf + g.c * HW, *accf = colf + K * P;
        double *cold = scratch, *accd = cold + K * P;
        if (exact_f)
            for (int64_t i = 0; i < g.c * HW; i++)
                xf[i] = (float)(code_at(x, im * g.c * HW + i) - zx);
        for (int64_t gr = 0; gr < g.group; gr++) {
            if (exact_f) {
                const float *col = im2col_float(xf + gr * g.cg * HW, &g, colf);
                qc_sgemm(0, 0, g.mg, P, K, 1.0f, s->wf + gr * g.mg * K, K, col, P, 0.0f, accf,
                         P);
            } else {
                im2col_codes(x, (im * g.c + gr * g.cg) * HW, zx, &g, cold);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.mg, (int)P,
                            (int)K, 1.0, s->w + gr * g.mg * K, (int)K, cold, (int)P, 0.0,
                            accd, (int)P);
            }
            for (int64_t mm = 0; mm < g.mg; mm++) {
                int64_t m = gr * g.mg + mm;
                requantize(y, (im * g.m + m) * P, s, m, b ? ((const int32_t *)b->data)[m] : 0,
                           zy, exact_f ? accf + mm * P : NULL,
                           exact_f ? NULL : accd + mm * P, P);
            }
        }
    }
    return QC_OK;
}

const qc_op_def qc_qlinear_conv = { "QLinearConv", 1, qconv_infer, qconv_run, NULL,
                                    qconv_release, NULL };

/* ---- QLinearMatMul --------------------------------------------------------------------- */

/* A [..., M, K] times a 2-D B [K, N] (per-tensor or per-column scale): the int32 sum of
 * (a - za) * (b - zb[n]) (exact in double), then MlasRequantizeOutput like QLinearConv with
 * scale sa * sb[n] / sy. */
static int qmatmul_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[3];
    int rc;
    if ((rc = need_codes(n, a, err)) || (rc = need_codes(n, b, err)))
        return rc;
    if (a->ndim < 2 || b->ndim != 2 || a->dims[a->ndim - 1] != b->dims[0])
        return qc_node_errf(n, err, QC_ESHAPE, "onnxruntime emulation: needs A [..., M, K] "
                            "and a 2-D B [K, N]");
    int64_t dims[QC_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->ndim - 1] = b->dims[1];
    qc_set_shape(n->out[0], n->in[7] ? n->in[7]->dtype : a->dtype, a->ndim, dims);
    return QC_OK;
}

static int qmatmul_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[3], *sb = n->in[4], *zb = n->in[5];
    qc_tensor *y = n->out[0];
    int64_t K = b->dims[0], N = b->dims[1], M = qc_tensor_numel(a) / K;
    int64_t nsb = qc_tensor_numel(sb);
    float sa = scalar_f(n->in[1]), sy = scalar_f(n->in[6]);
    int32_t za = zp_at(n->in[2], 0), zy = zp_at(n->in[7], 0);
    double *ad = qc_run_scratch(r, (size_t)(M * K + K * N + M * N) * sizeof(double), err);
    if (!ad)
        return QC_ENOMEM;
    double *bd = ad + M * K, *acc = bd + K * N;
    for (int64_t i = 0; i < M * K; i++)
        ad[i] = (double)(code_at(a, i) - za);
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++)
            bd[k * N + j] = (double)(code_at(b, k * N + j) - zp_at(zb, j));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0, ad,
                (int)K, bd, (int)N, 0.0, acc, (int)N);
    for (int64_t j = 0; j < N; j++) {
        float scale = sa * ((const float *)sb->data)[nsb == 1 ? 0 : j] / sy;
        for (int64_t i = 0; i < M; i++)
            put_code(y, i * N + j, (float)(int32_t)acc[i * N + j] * scale, zy);
    }
    return QC_OK;
}

const qc_op_def qc_qlinear_matmul = { "QLinearMatMul", 1, qmatmul_infer, qmatmul_run, NULL,
                                      NULL, NULL };

/* ---- QLinearSigmoid ------------------------------------------------------------------- */

/* MlasLogisticKernelFma3: Eigen's rational approximation on [-18, 18]. */
static float mlas_logistic(float v)
{
    v = v < -18.0f ? -18.0f : v > 18.0f ? 18.0f : v;
    float v2 = v * v;
    float p = fmaf(v2, 4.37031012579801e-11f, 1.15627324459942e-07f);
    p = fmaf(v2, p, 6.08574864600143e-05f);
    p = fmaf(v2, p, 8.51377133304701e-03f);
    p = fmaf(v2, p, 2.48287947061529e-01f);
    float q = fmaf(v2, 6.10247389755681e-13f, 5.76102136993427e-09f);
    q = fmaf(v2, q, 6.29106785017040e-06f);
    q = fmaf(v2, q, 1.70198817374094e-03f);
    q = fmaf(v2, q, 1.16817656904453e-01f);
    q = fmaf(v2, q, 9.93151921023180e-01f);
    float y = v * p / q + 0.5f;
    return y < 0.0f ? 0.0f : y;
}

static int qsigmoid_infer(qc_knode *n, qc_err *err)
{
    int rc = need_codes(n, n->in[0], err);
    if (rc)
        return rc;
    qc_copy_shape(n->out[0], n->in[0]);
    if (n->in[4])
        n->out[0]->dtype = n->in[4]->dtype;
    return QC_OK;
}

static int qsigmoid_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    qc_tensor *y = n->out[0];
    float sx = scalar_f(n->in[1]), sy = scalar_f(n->in[3]);
    int32_t zx = zp_at(n->in[2], 0), zy = zp_at(n->in[4], 0);
    uint8_t table[256];
    qc_tensor t = { .dtype = y->dtype, .ndim = 1, .dims = { 256 }, .data = table };
    (void)r;
    (void)err;
    for (int i = 0; i < 256; i++) {
        int32_t code = x->dtype == QC_I8 ? (int8_t)i : i;
        /* MlasQuantizeLinear: divide, round, add the zero point, saturate */
        put_code(&t, i, mlas_logistic(sx * (float)(code - zx)) / sy, zy);
    }
    const uint8_t *xs = x->data;
    uint8_t *ys = y->data;
    int64_t cnt = qc_tensor_numel(x);
    for (int64_t i = 0; i < cnt; i++)
        ys[i] = table[xs[i]];
    return QC_OK;
}

const qc_op_def qc_qlinear_sigmoid = { "QLinearSigmoid", 1, qsigmoid_infer, qsigmoid_run, NULL,
                                       NULL, NULL };

/* ---- QLinearSoftmax ------------------------------------------------------------------- */

/* onnxruntime's QLinearSoftmax ignores the input zero point (softmax is shift invariant): a
 * float table of exp((i - 255 + shift) * sx) for the codes, read shifted so that the row's
 * largest code reads entry 255; MlasQuantizeSoftmaxU8KernelAvx512 then sums the entries (16
 * lanes over blocks of 32, a fixed reduction tree, the rest in order) and writes
 * round(fma(e, (1 / sum) * floor(1 / sy), zy)), saturated. */
/* Choices made by measurement against onnxruntime 1.32 (test/oracles/qlinear_check.py):
 * logf for the shift, exp in double for the table, this sum order. */
static float qsoftmax_sum(const float *t, const uint8_t *x, int64_t d, int64_t stride)
{
    float lane[16] = { 0 };
    int64_t i = 0;
    for (; i + 32 <= d; i += 32)
        for (int h = 0; h < 32; h += 16)
            for (int l = 0; l < 16; l++)
                lane[l] += t[x[(i + h + l) * stride]];
    float c[4];
    for (int j = 0; j < 4; j++)
        c[j] = (lane[j] + lane[4 + j]) + (lane[8 + j] + lane[12 + j]);
    float total = (c[0] + c[1]) + (c[2] + c[3]);
    for (; i < d; i++)
        total += t[x[i * stride]];
    return total;
}

static int qsoftmax_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    qc_tensor *y = n->out[0];
    int rank = x->ndim, axis, rc;
    int64_t def = n->opset >= 13 ? -1 : 1;
    (void)r;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", def), rank, &axis, err)))
        return rc;
    if (x->dtype != QC_U8)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "onnxruntime emulation: uint8 only");
    int64_t outer = 1, d = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis; i < rank; i++) {
        if (i == axis || n->opset < 13)
            d *= x->dims[i];
        else
            inner *= x->dims[i];
    }
    if (d == 0 || outer * d * inner == 0)
        return QC_OK;
    float sx = scalar_f(n->in[1]), ys = floorf(1.0f / scalar_f(n->in[3]));
    int32_t zy = zp_at(n->in[4], 0);
    double shift = logf(3.402823466e38f / (float)d);      /* std::log(float) there */
    shift = (shift - 5.0 > 0.0 ? shift - 5.0 : 0.0) / (double)sx;
    float table[256];
    for (int i = 0; i < 256; i++)
        table[i] = (float)exp(((double)i - 255.0 + shift) * (double)sx);
    const uint8_t *xs = x->data;
    uint8_t *ys8 = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * d * inner + in;
            uint8_t mx = 0;
            for (int64_t k = 0; k < d; k++)
                mx = xs[base + k * inner] > mx ? xs[base + k * inner] : mx;
            const float *t = table + 255 - mx;
            float scale = (1.0f / qsoftmax_sum(t, xs + base, d, inner)) * ys;
            for (int64_t k = 0; k < d; k++) {
                float v = nearbyintf(fmaf(t[xs[base + k * inner]], scale, (float)zy));
                ys8[base + k * inner] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
            }
        }
    return QC_OK;
}

const qc_op_def qc_qlinear_softmax = { "QLinearSoftmax", 1, qsigmoid_infer, qsoftmax_run, NULL,
                                       NULL, NULL };

/* ---- QLinearAdd / QLinearMul ---------------------------------------------------------- */

static int qbin_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[3];
    int rc, nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t dims[QC_MAX_DIMS];
    if ((rc = need_codes(n, a, err)) || (rc = need_codes(n, b, err)))
        return rc;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return qc_node_errf(n, err, QC_ESHAPE, "shapes do not broadcast on axis %d", i);
        dims[i] = da == 1 ? db : da;
    }
    qc_set_shape(n->out[0], n->in[7] ? n->in[7]->dtype : a->dtype, nd, dims);
    return QC_OK;
}

/* Element strides of t viewed at rank nd under broadcasting (0 on broadcast axes). */
static void bcast_strides(const qc_tensor *t, int nd, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int it = i - (nd - t->ndim);
        int64_t d = it >= 0 ? t->dims[it] : 1;
        st[i] = d == 1 && dims[i] != 1 ? 0 : s;
        s *= d;
    }
}

typedef struct qbin_args {
    float   ra, rb, fixed;      /* add: sa/sc, sb/sc, folded zero points */
    float   ratio, zc;          /* mul: sa * sb / sc, zc */
    int32_t za, zb, zcode;
    int     scalar_a, scalar_b;
} qbin_args;

static inline float qadd_value(const qbin_args *q, int32_t a, int32_t b)
{
    /* the scalar operand is folded into the constant with a plain multiply and add */
    if (q->scalar_b)
        return fmaf((float)a, q->ra, q->fixed + (float)b * q->rb);
    if (q->scalar_a)
        return fmaf((float)b, q->rb, q->fixed + (float)a * q->ra);
    return fmaf((float)a, q->ra, fmaf((float)b, q->rb, q->fixed));
}

static int qbin_run_common(qc_knode *n, int is_add, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[3];
    qc_tensor *y = n->out[0];
    float sa = scalar_f(n->in[1]), sb = scalar_f(n->in[4]), sc = scalar_f(n->in[6]);
    qbin_args q = { 0 };
    q.za = zp_at(n->in[2], 0);
    q.zb = zp_at(n->in[5], 0);
    q.zcode = zp_at(n->in[7], 0);
    q.ra = sa / sc;
    q.rb = sb / sc;
    /* MlasQLinearAddKernelAvx2Helper's constant zc - (ra * za + rb * zb), as its compiler
     * contracted it: fma(ra, za, rb * zb). The other two roundings disagree with onnxruntime
     * on some code pairs (test/oracles/qlinear_check.py add_all_code_pairs). */
    q.fixed = (float)q.zcode - fmaf(q.ra, (float)q.za, q.rb * (float)q.zb);
    q.ratio = sa * sb / sc;
    q.zc = (float)q.zcode;
    q.scalar_a = qc_tensor_numel(a) == 1 && qc_tensor_numel(b) != 1;
    q.scalar_b = qc_tensor_numel(b) == 1;
    (void)err;
    int nd = y->ndim;
    int64_t sta[QC_MAX_DIMS], stb[QC_MAX_DIMS], idx[QC_MAX_DIMS] = { 0 };
    bcast_strides(a, nd, y->dims, sta);
    bcast_strides(b, nd, y->dims, stb);
    int64_t total = qc_tensor_numel(y), ia = 0, ib = 0;
    for (int64_t i = 0; i < total; i++) {
        int32_t va = code_at(a, ia), vb = code_at(b, ib);
        float v = is_add ? qadd_value(&q, va, vb)
                         : (float)((va - q.za) * (vb - q.zb)) * q.ratio + q.zc;
        put_code(y, i, v, 0);
        for (int d = nd - 1; d >= 0; d--) {          /* odometer over the output index */
            ia += sta[d];
            ib += stb[d];
            if (++idx[d] < y->dims[d])
                break;
            ia -= sta[d] * idx[d];
            ib -= stb[d] * idx[d];
            idx[d] = 0;
        }
    }
    return QC_OK;
}

static int qadd_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return qbin_run_common(n, 1, err);
}

static int qmul_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return qbin_run_common(n, 0, err);
}

const qc_op_def qc_qlinear_add = { "QLinearAdd", 1, qbin_infer, qadd_run, NULL, NULL, NULL };
const qc_op_def qc_qlinear_mul = { "QLinearMul", 1, qbin_infer, qmul_run, NULL, NULL, NULL };
