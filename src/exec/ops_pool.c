/* Pooling: MaxPool (optional int64 Indices), AveragePool, LpPool and their global forms.
 * 1-D and 2-D run through dedicated 2-D loops (1-D as H = 1); higher ranks through a
 * general N-d walk. */
#include <math.h>
#include <string.h>
#include "ops.h"
#include "par.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { POOL_MAX, POOL_AVG, POOL_LP };

typedef struct poolp {
    int     nsp;                                     /* spatial rank */
    int64_t planes;                                  /* N * C */
    int64_t in[QC_MAX_DIMS], out[QC_MAX_DIMS];
    int64_t k[QC_MAX_DIMS], s[QC_MAX_DIMS], d[QC_MAX_DIMS];
    int64_t pb[QC_MAX_DIMS], pe[QC_MAX_DIMS];        /* pads at begin / end */
    int     include_pad;                             /* AveragePool count_include_pad */
    float   p;                                       /* LpPool exponent */
} poolp;

/* LpPool-1 had a float `p`; later versions an int. */
static float lp_exponent(const qc_knode *n)
{
    const qc_attr *a = qc_attr_find(n->node, "p");
    if (!a)
        return 2.0f;
    return a->type == QC_ATTR_FLOAT ? a->f : (float)a->i;
}

static int ints_attr(const qc_knode *n, const char *name, int nsp, int64_t *dst, int64_t def,
                     int want, qc_err *err)
{
    int64_t cnt;
    const int64_t *v = qc_attr_ints(n->node, name, &cnt);
    if (!v) {
        for (int i = 0; i < want; i++)
            dst[i] = def;
        return QC_OK;
    }
    if (cnt != want)
        return qc_node_errf(n, err, QC_EINPUT, "attribute %s has %lld values, expected %d "
                            "for %d spatial dims", name, (long long)cnt, want, nsp);
    memcpy(dst, v, (size_t)want * sizeof *dst);
    return QC_OK;
}

static int pool_params(const qc_knode *n, int kind, poolp *p, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int rc;
    memset(p, 0, sizeof *p);
    if (x->ndim < 3)
        return qc_node_errf(n, err, QC_ESHAPE, "input must be [N, C, spatial...], got rank %d",
                            x->ndim);
    p->nsp = x->ndim - 2;
    p->planes = x->dims[0] * x->dims[1];
    for (int i = 0; i < p->nsp; i++)
        p->in[i] = x->dims[2 + i];
    int64_t cnt;
    const int64_t *ks = qc_attr_ints(n->node, "kernel_shape", &cnt);
    if (!ks || cnt != p->nsp)
        return qc_node_errf(n, err, QC_EINPUT, "kernel_shape must have %d values", p->nsp);
    memcpy(p->k, ks, (size_t)p->nsp * sizeof *ks);
    int64_t pads[2 * QC_MAX_DIMS];
    if ((rc = ints_attr(n, "strides", p->nsp, p->s, 1, p->nsp, err)) ||
        (rc = ints_attr(n, "dilations", p->nsp, p->d, 1, p->nsp, err)) ||
        (rc = ints_attr(n, "pads", p->nsp, pads, 0, 2 * p->nsp, err)))
        return rc;
    int ceil_mode = qc_attr_int(n->node, "ceil_mode", 0) != 0;
    const char *ap = qc_attr_str(n->node, "auto_pad", "NOTSET");
    int same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER");
    int valid = !strcmp(ap, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") != 0)
        return qc_node_errf(n, err, QC_EINPUT, "unknown auto_pad '%s'", ap);
    p->include_pad = qc_attr_int(n->node, "count_include_pad", 0) != 0;
    p->p = kind == POOL_LP ? lp_exponent(n) : 0.0f;
    for (int i = 0; i < p->nsp; i++) {
        if (p->k[i] < 1 || p->s[i] < 1 || p->d[i] < 1)
            return qc_node_errf(n, err, QC_EINPUT, "kernel, strides and dilations must be "
                                "positive (axis %d)", i);
        int64_t ek = (p->k[i] - 1) * p->d[i] + 1, in = p->in[i];
        if (same_upper || same_lower) {
            p->out[i] = (in + p->s[i] - 1) / p->s[i];
            int64_t total = (p->out[i] - 1) * p->s[i] + ek - in;
            if (total < 0)
                total = 0;
            p->pb[i] = same_upper ? total / 2 : total - total / 2;
            p->pe[i] = total - p->pb[i];
            continue;
        }
        p->pb[i] = valid ? 0 : pads[i];
        p->pe[i] = valid ? 0 : pads[p->nsp + i];
        if (p->pb[i] < 0 || p->pe[i] < 0)
            return qc_node_errf(n, err, QC_EINPUT, "negative pads on axis %d", i);
        int64_t num = in + p->pb[i] + p->pe[i] - ek;
        if (num < 0)
            return qc_node_errf(n, err, QC_ESHAPE, "kernel extent %lld exceeds padded input "
                                "%lld on axis %d", (long long)ek,
                                (long long)(in + p->pb[i] + p->pe[i]), i);
        p->out[i] = (ceil_mode ? (num + p->s[i] - 1) / p->s[i] : num / p->s[i]) + 1;
        /* The last window must start inside the input or the leading pad (as PyTorch and
         * onnxruntime do), else ceil_mode would add a window that sees only padding. */
        if (ceil_mode && (p->out[i] - 1) * p->s[i] >= in + p->pb[i])
            p->out[i]--;
    }
    return QC_OK;
}

static int pool_infer_kind(qc_knode *n, int kind, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    poolp p;
    int rc;
    int int_ok = kind == POOL_MAX && (x->dtype == QC_U8 || x->dtype == QC_I8);
    if (x->dtype != QC_F32 && !int_ok)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    if ((rc = pool_params(n, kind, &p, err)))
        return rc;
    int64_t dims[QC_MAX_DIMS];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 0; i < p.nsp; i++)
        dims[2 + i] = p.out[i];
    qc_set_shape(n->out[0], x->dtype, x->ndim, dims);
    if (n->n_out > 1 && n->out[1]) {
        if (kind != POOL_MAX)
            return qc_node_errf(n, err, QC_EINPUT, "only MaxPool has a second output");
        qc_set_shape(n->out[1], QC_I64, x->ndim, dims);
    }
    return QC_OK;
}

static int maxpool_infer(qc_knode *n, qc_err *err) { return pool_infer_kind(n, POOL_MAX, err); }
static int avgpool_infer(qc_knode *n, qc_err *err) { return pool_infer_kind(n, POOL_AVG, err); }
static int lppool_infer(qc_knode *n, qc_err *err) { return pool_infer_kind(n, POOL_LP, err); }

/* Taps t in [lo, hi) of a window starting at `start` (stride d) that fall inside [0, len). */
static inline void tap_range(int64_t start, int64_t k, int64_t d, int64_t len, int64_t *lo,
                             int64_t *hi)
{
    int64_t a = start < 0 ? (-start + d - 1) / d : 0;
    int64_t b = len - start <= 0 ? 0 : (len - start + d - 1) / d;
    *lo = a;
    *hi = b < k ? b : k;
    if (*hi < *lo)
        *hi = *lo;
}

/* 2-D view of a 1-D or 2-D pool: index 0 is H (1 for 1-D), index 1 is W. */
typedef struct pool2 {
    int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw, peh, pew;
} pool2;

static void to_pool2(const poolp *p, pool2 *q)
{
    int o = p->nsp == 2 ? 1 : 0;
    q->ih = o ? p->in[0] : 1;
    q->oh = o ? p->out[0] : 1;
    q->kh = o ? p->k[0] : 1;
    q->sh = o ? p->s[0] : 1;
    q->dh = o ? p->d[0] : 1;
    q->ph = o ? p->pb[0] : 0;
    q->peh = o ? p->pe[0] : 0;
    q->iw = p->in[o];
    q->ow = p->out[o];
    q->kw = p->k[o];
    q->sw = p->s[o];
    q->dw = p->d[o];
    q->pw = p->pb[o];
    q->pew = p->pe[o];
}

/* Max over a 2-D window; `idx` (may be NULL) receives flat input indices, row-major or
 * column-major within the plane (storage_order). A window with no valid tap yields the
 * type's lowest value, as the padding is -inf. */
#define DEF_MAX2D(NAME, T, LOWEST)                                                          \
static void NAME(const T *x, T *y, int64_t *idx, const pool2 *q, int64_t planes, int colmaj)\
{                                                                                           \
    for (int64_t pl = 0; pl < planes; pl++) {                                               \
        const T *xp = x + pl * q->ih * q->iw;                                               \
        T *yp = y + pl * q->oh * q->ow;                                                     \
        for (int64_t oh = 0; oh < q->oh; oh++) {                                            \
            int64_t hs = oh * q->sh - q->ph, h0, h1;                                        \
            tap_range(hs, q->kh, q->dh, q->ih, &h0, &h1);                                   \
            for (int64_t ow = 0; ow < q->ow; ow++) {                                        \
                int64_t ws = ow * q->sw - q->pw, w0, w1, best = -1;                         \
                tap_range(ws, q->kw, q->dw, q->iw, &w0, &w1);                               \
                T m = (LOWEST);                                                             \
                for (int64_t a = h0; a < h1; a++) {                                         \
                    const T *row = xp + (hs + a * q->dh) * q->iw + ws;                      \
                    for (int64_t b = w0; b < w1; b++) {                                     \
                        T v = row[b * q->dw];                                               \
                        if (v > m || best < 0) {                                            \
                            m = v;                                                          \
                            best = (hs + a * q->dh) * q->iw + ws + b * q->dw;               \
                        }                                                                   \
                    }                                                                       \
                }                                                                           \
                yp[oh * q->ow + ow] = m;                                                    \
                if (idx) {                                                                  \
                    int64_t h = best < 0 ? 0 : best / q->iw, w = best < 0 ? 0 : best % q->iw;\
                    idx[pl * q->oh * q->ow + oh * q->ow + ow] = pl * q->ih * q->iw +        \
                        (colmaj ? h + w * q->ih : h * q->iw + w);                           \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

DEF_MAX2D(max2d_f32, float, -INFINITY)
DEF_MAX2D(max2d_u8, uint8_t, 0)
DEF_MAX2D(max2d_i8, int8_t, -128)

/* dst[i] = max(dst[i], src[i]). */
static inline void max_into(float *dst, const float *src, int64_t n)
{
    int64_t i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(dst + i, _mm_max_ps(_mm_loadu_ps(src + i), _mm_loadu_ps(dst + i)));
#endif
    for (; i < n; i++)
        dst[i] = src[i] > dst[i] ? src[i] : dst[i];
}

#define ROW_BUF 4096            /* floats of one padded input row for the separable path */

typedef struct max_sep {
    const float *x;
    float       *y;
    const pool2 *q;
} max_sep;

/* Float MaxPool without Indices for planes [p0, p1): per output row, first the max over
 * the kernel's rows into a -inf padded row buffer, then the max along it. */
static void max2d_sep(void *vctx, int64_t p0, int64_t p1)
{
    const max_sep *c = vctx;
    const pool2 *q = c->q;
    float vm[ROW_BUF];
    int64_t wext = (q->ow - 1) * q->sw + (q->kw - 1) * q->dw + 1;   /* padded row used */
    int64_t ncopy = wext - q->pw < q->iw ? wext - q->pw : q->iw;
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *xp = c->x + pl * q->ih * q->iw;
        float *yp = c->y + pl * q->oh * q->ow;
        for (int64_t oh = 0; oh < q->oh; oh++) {
            for (int64_t i = 0; i < wext; i++)
                vm[i] = -INFINITY;
            int64_t hs = oh * q->sh - q->ph;
            for (int64_t kh = 0; kh < q->kh; kh++) {
                int64_t ih = hs + kh * q->dh;
                if (ih >= 0 && ih < q->ih && ncopy > 0)
                    max_into(vm + q->pw, xp + ih * q->iw, ncopy);
            }
            float *yr = yp + oh * q->ow;
            for (int64_t ow = 0; ow < q->ow; ow++)
                yr[ow] = -INFINITY;
            for (int64_t kw = 0; kw < q->kw; kw++) {
                const float *src = vm + kw * q->dw;
                if (q->sw == 1)
                    max_into(yr, src, q->ow);
                else
                    for (int64_t ow = 0; ow < q->ow; ow++)
                        yr[ow] = src[ow * q->sw] > yr[ow] ? src[ow * q->sw] : yr[ow];
            }
        }
    }
}

/* Average or Lp over a 2-D window. */
static void avg2d(const float *x, float *y, const pool2 *q, int64_t planes, int kind,
                  int include_pad, float pw)
{
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * q->ih * q->iw;
        float *yp = y + pl * q->oh * q->ow;
        for (int64_t oh = 0; oh < q->oh; oh++) {
            int64_t hs = oh * q->sh - q->ph, h0, h1, ph0, ph1;
            tap_range(hs, q->kh, q->dh, q->ih, &h0, &h1);
            /* taps inside the padded extent [-ph, ih + peh) count with count_include_pad */
            tap_range(hs + q->ph, q->kh, q->dh, q->ih + q->ph + q->peh, &ph0, &ph1);
            for (int64_t ow = 0; ow < q->ow; ow++) {
                int64_t ws = ow * q->sw - q->pw, w0, w1, pw0, pw1;
                tap_range(ws, q->kw, q->dw, q->iw, &w0, &w1);
                tap_range(ws + q->pw, q->kw, q->dw, q->iw + q->pw + q->pew, &pw0, &pw1);
                float acc = 0.0f;
                for (int64_t a = h0; a < h1; a++) {
                    const float *row = xp + (hs + a * q->dh) * q->iw + ws;
                    if (kind == POOL_AVG)
                        for (int64_t b = w0; b < w1; b++)
                            acc += row[b * q->dw];
                    else if (pw == 2.0f)
                        for (int64_t b = w0; b < w1; b++)
                            acc += row[b * q->dw] * row[b * q->dw];
                    else
                        for (int64_t b = w0; b < w1; b++)
                            acc += powf(fabsf(row[b * q->dw]), pw);
                }
                float r;
                if (kind == POOL_LP) {
                    r = pw == 2.0f ? sqrtf(acc) : powf(acc, 1.0f / pw);
                } else {
                    int64_t cnt = include_pad ? (ph1 - ph0) * (pw1 - pw0)
                                              : (h1 - h0) * (w1 - w0);
                    r = cnt > 0 ? acc / (float)cnt : 0.0f;
                }
                yp[oh * q->ow + ow] = r;
            }
        }
    }
}

typedef struct avg_job {
    const float *x;
    float       *y;
    const pool2 *q;
    int          kind, include_pad;
    float        pw;
} avg_job;

static void avg2d_items(void *vctx, int64_t lo, int64_t hi)
{
    const avg_job *j = vctx;
    int64_t in = j->q->ih * j->q->iw, out = j->q->oh * j->q->ow;
    avg2d(j->x + lo * in, j->y + lo * out, j->q, hi - lo, j->kind, j->include_pad, j->pw);
}

/* General N-d pooling (float, any kind; max also for int8/uint8 via the float copy of v). */
static void pool_nd(const void *xv, void *yv, int64_t *idx, const poolp *p, int kind,
                    int dtype)
{
    int nsp = p->nsp;
    int64_t in_plane = 1, out_plane = 1, ktot = 1;
    for (int i = 0; i < nsp; i++) {
        in_plane *= p->in[i];
        out_plane *= p->out[i];
        ktot *= p->k[i];
    }
    for (int64_t pl = 0; pl < p->planes; pl++) {
        int64_t o[QC_MAX_DIMS] = { 0 };
        for (int64_t op = 0; op < out_plane; op++) {
            double acc = 0.0, best = -INFINITY;
            int64_t best_i = -1, cnt = 0, cnt_pad = 0;
            int64_t kk[QC_MAX_DIMS] = { 0 };
            for (int64_t t = 0; t < ktot; t++) {
                int64_t off = 0, inside = 1, inpad = 1;
                for (int i = 0; i < nsp; i++) {
                    int64_t c = o[i] * p->s[i] - p->pb[i] + kk[i] * p->d[i];
                    if (c < 0 || c >= p->in[i])
                        inside = 0;
                    if (c < -p->pb[i] || c >= p->in[i] + p->pe[i])
                        inpad = 0;
                    off = off * p->in[i] + c;
                }
                cnt_pad += inpad;
                if (inside) {
                    int64_t xi = pl * in_plane + off;
                    double v = dtype == QC_U8 ? ((const uint8_t *)xv)[xi]
                             : dtype == QC_I8 ? ((const int8_t *)xv)[xi]
                             : ((const float *)xv)[xi];
                    cnt++;
                    if (kind == POOL_MAX) {
                        if (v > best || best_i < 0) {
                            best = v;
                            best_i = off;
                        }
                    } else if (kind == POOL_AVG) {
                        acc += v;
                    } else {
                        acc += pow(fabs(v), p->p);
                    }
                }
                for (int i = nsp - 1; i >= 0; i--) {
                    if (++kk[i] < p->k[i])
                        break;
                    kk[i] = 0;
                }
            }
            int64_t yi = pl * out_plane + op;
            double r = kind == POOL_MAX ? best
                     : kind == POOL_LP ? pow(acc, 1.0 / p->p)
                     : (p->include_pad ? cnt_pad : cnt) > 0
                        ? acc / (double)(p->include_pad ? cnt_pad : cnt) : 0.0;
            if (dtype == QC_U8)
                ((uint8_t *)yv)[yi] = best_i < 0 ? 0 : (uint8_t)r;
            else if (dtype == QC_I8)
                ((int8_t *)yv)[yi] = best_i < 0 ? -128 : (int8_t)r;
            else
                ((float *)yv)[yi] = (float)r;
            if (idx)
                idx[yi] = pl * in_plane + (best_i < 0 ? 0 : best_i);
            for (int i = nsp - 1; i >= 0; i--) {
                if (++o[i] < p->out[i])
                    break;
                o[i] = 0;
            }
        }
    }
}

static int pool_run_kind(qc_knode *n, int kind, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    qc_tensor *ind = n->n_out > 1 ? n->out[1] : NULL;
    int64_t *idx = ind ? ind->data : NULL;
    poolp p;
    int rc;
    if ((rc = pool_params(n, kind, &p, err)))
        return rc;
    if (idx && p.nsp > 2 && qc_attr_int(n->node, "storage_order", 0))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "column-major Indices are only "
                            "supported for 1-D and 2-D MaxPool");
    if (p.nsp > 2) {
        pool_nd(x->data, n->out[0]->data, idx, &p, kind, x->dtype);
        return QC_OK;
    }
    pool2 q;
    to_pool2(&p, &q);
    int colmaj = qc_attr_int(n->node, "storage_order", 0) != 0;
    if (kind != POOL_MAX) {
        /* planes side by side on the worker threads, each computed as alone */
        avg_job j = { x->data, n->out[0]->data, &q, kind, p.include_pad, p.p };
        int64_t per = q.oh * q.ow * q.kh * q.kw;       /* rough work per plane */
        qc_par_for(p.planes, 65536 / (per + 1) + 1, avg2d_items, &j);
    }
    else if (x->dtype == QC_U8)
        max2d_u8(x->data, n->out[0]->data, idx, &q, p.planes, colmaj);
    else if (x->dtype == QC_I8)
        max2d_i8(x->data, n->out[0]->data, idx, &q, p.planes, colmaj);
    else if (!idx && q.pw + q.iw <= ROW_BUF &&
             (q.ow - 1) * q.sw + (q.kw - 1) * q.dw + 1 <= ROW_BUF) {
        max_sep c = { x->data, n->out[0]->data, &q };
        int64_t per = q.oh * q.ow * q.kh * q.kw;       /* rough work per plane */
        qc_par_for(p.planes, 65536 / (per + 1) + 1, max2d_sep, &c);
    } else {
        max2d_f32(x->data, n->out[0]->data, idx, &q, p.planes, colmaj);
    }
    return QC_OK;
}

static int maxpool_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return pool_run_kind(n, POOL_MAX, err);
}

static int avgpool_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return pool_run_kind(n, POOL_AVG, err);
}

static int lppool_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    return pool_run_kind(n, POOL_LP, err);
}

/* ---- global pools -------------------------------------------------------------------- */

static int global_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    if (x->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    if (x->ndim < 2)
        return qc_node_errf(n, err, QC_ESHAPE, "input must be [N, C, ...], got rank %d",
                            x->ndim);
    int64_t dims[QC_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        dims[i] = i < 2 ? x->dims[i] : 1;
    qc_set_shape(n->out[0], QC_F32, x->ndim, dims);
    return QC_OK;
}

typedef struct global_ctx {
    const float *x;
    float       *y;
    int64_t      len;
    int          kind;
    float        p;
} global_ctx;

/* Planes [p0, p1) of a global pool. */
static void global_planes(void *vctx, int64_t p0, int64_t p1)
{
    const global_ctx *c = vctx;
    int64_t len = c->len;
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *v = c->x + pl * len;
        int64_t i = 0;
        if (c->kind == POOL_MAX) {
            float m = -INFINITY;
#if defined(__SSE2__)
            __m128 mv = _mm_set1_ps(-INFINITY);
            for (; i + 4 <= len; i += 4)
                mv = _mm_max_ps(_mm_loadu_ps(v + i), mv);
            float t[4];
            _mm_storeu_ps(t, mv);
            for (int j = 0; j < 4; j++)
                m = t[j] > m ? t[j] : m;
#endif
            for (; i < len; i++)
                m = v[i] > m ? v[i] : m;
            c->y[pl] = m;
        } else if (c->kind == POOL_AVG) {
            /* Several accumulators: shorter dependency chain, vectorizable, and less
             * rounding drift on large planes. */
            float acc[8] = { 0 };
            for (; i + 8 <= len; i += 8)
                for (int j = 0; j < 8; j++)
                    acc[j] += v[i + j];
            float s = 0.0f;
            for (; i < len; i++)
                s += v[i];
            for (int j = 0; j < 8; j++)
                s += acc[j];
            c->y[pl] = len > 0 ? s / (float)len : 0.0f;
        } else {
            double s = 0.0;
            for (; i < len; i++)
                s += pow(fabs(v[i]), c->p);
            c->y[pl] = (float)pow(s, 1.0 / c->p);
        }
    }
}

static int global_run_kind(qc_knode *n, int kind)
{
    const qc_tensor *x = n->in[0];
    global_ctx c = { x->data, n->out[0]->data, 1, kind,
                     kind == POOL_LP ? lp_exponent(n) : 0.0f };
    int64_t planes = x->dims[0] * x->dims[1];
    for (int i = 2; i < x->ndim; i++)
        c.len *= x->dims[i];
    qc_par_for(planes, 32768 / (c.len + 1) + 1, global_planes, &c);
    return QC_OK;
}

static int gap_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r; (void)err;
    return global_run_kind(n, POOL_AVG);
}

static int gmp_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r; (void)err;
    return global_run_kind(n, POOL_MAX);
}

static int glp_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r; (void)err;
    return global_run_kind(n, POOL_LP);
}

const qc_op_def qc_ops_pool[] = {
    { "MaxPool",           1, maxpool_infer, maxpool_run, NULL, NULL, NULL },
    { "AveragePool",       1, avgpool_infer, avgpool_run, NULL, NULL, NULL },
    { "LpPool",            1, lppool_infer,  lppool_run,  NULL, NULL, NULL },
    { "GlobalAveragePool", 1, global_infer,  gap_run,     NULL, NULL, NULL },
    { "GlobalMaxPool",     1, global_infer,  gmp_run,     NULL, NULL, NULL },
    { "GlobalLpPool",      1, global_infer,  glp_run,     NULL, NULL, NULL },
    { 0 }
};
