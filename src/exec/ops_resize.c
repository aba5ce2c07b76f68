/* Ops that change spatial extent: Resize (opsets 10, 11, 13, 18, 19), Upsample (7, 9) and
 * Pad (1 to 19). Nearest and Pad work on every executable dtype; linear and cubic on float32,
 * separably over any number of axes, with taps computed on the fly (no scratch). Integer
 * nearest upsampling of the two innermost axes (YOLO's Resize x2) has a replicate-and-memcpy
 * fast path. */
#include <math.h>
#include <string.h>
#include "ops.h"

enum { M_NEAREST, M_LINEAR, M_CUBIC };
enum { C_HALF_PIXEL, C_HALF_PIXEL_SYM, C_PYTORCH, C_ALIGN, C_ASYM, C_TF_NN, C_TF_CROP };
enum { N_ROUND_FLOOR, N_ROUND_CEIL, N_FLOOR, N_CEIL, N_SIMPLE };

/* Taps per axis (antialiased downsampling widens the kernel by 1/scale) and products of
 * taps over the outer axes of one output row. */
#define MAX_TAPS   128
#define MAX_COMBOS 1024

typedef struct rs_cfg {
    int    mode, coord, nearest, exclude_outside, antialias;
    double cubic_a, extrap;
} rs_cfg;

typedef struct rs_axis {
    int64_t in, out;
    double  scale, roi_lo, roi_hi;
    double  out_f;      /* in * scale unfloored, as the ONNX reference uses for align_corners */
    int     exact;      /* scale is out / in: divide by it as the exact ratio */
} rs_axis;

typedef struct rs_taps {
    int     n, outside;
    int64_t idx[MAX_TAPS];
    double  w[MAX_TAPS];
} rs_taps;

static const qc_tensor *opt_in(const qc_knode *n, int i)
{
    const qc_tensor *t = i < n->n_in ? n->in[i] : NULL;
    return t && qc_tensor_numel(t) > 0 ? t : NULL;   /* empty means absent (roi, scales) */
}

/* Before opset 11 (and for Upsample) there are no coordinate or rounding attributes. */
static int is_legacy(const qc_knode *n)
{
    return !strcmp(n->node->op_type, "Upsample") || n->opset < 11;
}

static int pick(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static int parse_cfg(const qc_knode *n, rs_cfg *c, qc_err *err)
{
    static const char *const modes[] = { "nearest", "linear", "cubic", "bilinear" };
    static const char *const coords[] = { "half_pixel", "half_pixel_symmetric",
                                          "pytorch_half_pixel", "align_corners", "asymmetric",
                                          "tf_half_pixel_for_nn", "tf_crop_and_resize" };
    static const char *const nearests[] = { "round_prefer_floor", "round_prefer_ceil", "floor",
                                            "ceil" };
    const char *m = qc_attr_str(n->node, "mode", "nearest");
    memset(c, 0, sizeof *c);
    c->mode = pick(m, modes, 4);
    if (c->mode == 3)
        c->mode = M_LINEAR;
    if (c->mode < 0 || (is_legacy(n) && c->mode == M_CUBIC))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "unknown mode '%s'", m);
    if (is_legacy(n)) {
        c->coord = C_ASYM;
        c->nearest = N_SIMPLE;
        return QC_OK;
    }
    const char *cs = qc_attr_str(n->node, "coordinate_transformation_mode", "half_pixel");
    const char *ns = qc_attr_str(n->node, "nearest_mode", "round_prefer_floor");
    if ((c->coord = pick(cs, coords, 7)) < 0)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "unknown coordinate_transformation_mode "
                            "'%s'", cs);
    if ((c->nearest = pick(ns, nearests, 4)) < 0)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "unknown nearest_mode '%s'", ns);
    c->cubic_a = qc_attr_float(n->node, "cubic_coeff_a", -0.75f);
    c->exclude_outside = qc_attr_int(n->node, "exclude_outside", 0) != 0;
    c->extrap = qc_attr_float(n->node, "extrapolation_value", 0.0f);
    c->antialias = n->opset >= 18 && qc_attr_int(n->node, "antialias", 0) != 0;
    return QC_OK;
}

static int resize_prepare(qc_knode *n, qc_err *err)
{
    rs_cfg c;
    return parse_cfg(n, &c, err);
}

/* Antialiased kernels stretch by 1/scale: tap count and the offset of the first tap. */
static int64_t aa_taps(const rs_cfg *c, double scale, int64_t *start)
{
    double s0 = floor((c->mode == M_LINEAR ? -1.0 : -2.0) / scale) + 1;
    if (!(s0 > -1e6))
        return INT64_MAX;
    if (start)
        *start = (int64_t)s0;
    return 2 - 2 * (int64_t)s0;
}

/* Output length, scale and roi of every axis of x. */
static int geometry(const qc_knode *n, const rs_cfg *c, const qc_tensor *x, rs_axis *ax,
                    qc_err *err)
{
    int rank = x->ndim, axes[QC_MAX_DIMS], k = rank;
    const qc_tensor *roi = NULL, *sc = NULL, *sz = NULL;
    const float *sa = NULL;
    int64_t count;
    for (int a = 0; a < rank; a++) {
        ax[a] = (rs_axis){ x->dims[a], x->dims[a], 1.0, 0.0, 1.0, (double)x->dims[a], 1 };
        axes[a] = a;
    }
    if (!strcmp(n->node->op_type, "Upsample") && n->opset < 9) {
        sa = qc_attr_floats(n->node, "scales", &count);
    } else if (is_legacy(n)) {
        sc = opt_in(n, 1);
    } else {
        roi = opt_in(n, 1);
        sc = opt_in(n, 2);
        sz = opt_in(n, 3);
        const int64_t *aa = n->opset >= 18 ? qc_attr_ints(n->node, "axes", &count) : NULL;
        if (aa) {
            int seen[QC_MAX_DIMS] = {0};
            if (count > rank)
                return qc_node_errf(n, err, QC_EINPUT, "%lld axes for rank %d",
                                    (long long)count, rank);
            for (k = 0; k < count; k++) {
                int rc = qc_norm_axis(n, aa[k], rank, &axes[k], err);
                if (rc)
                    return rc;
                if (seen[axes[k]]++)
                    return qc_node_errf(n, err, QC_EINPUT, "axis %d repeated", axes[k]);
            }
        }
        if (sc && sz)
            return qc_node_errf(n, err, QC_EINPUT, "scales and sizes are both given");
    }
    if (!sa && !sc && !sz)
        return qc_node_errf(n, err, QC_EINPUT, "neither scales nor sizes is given");
    if ((sa ? count : qc_tensor_numel(sc ? sc : sz)) != k)
        return qc_node_errf(n, err, QC_EINPUT, "%s has %lld entries, expected %d",
                            sz ? "sizes" : "scales",
                            (long long)(sa ? count : qc_tensor_numel(sc ? sc : sz)), k);
    if (roi && c->coord == C_TF_CROP) {
        if (qc_tensor_numel(roi) != 2 * k)
            return qc_node_errf(n, err, QC_EINPUT, "roi has %lld entries, expected %d",
                                (long long)qc_tensor_numel(roi), 2 * k);
        for (int i = 0; i < k; i++) {
            ax[axes[i]].roi_lo = qc_tensor_get_f(roi, i);
            ax[axes[i]].roi_hi = qc_tensor_get_f(roi, i + k);
        }
    }
    if (sz) {
        const char *pol = n->opset >= 18 ? qc_attr_str(n->node, "keep_aspect_ratio_policy",
                                                       "stretch") : "stretch";
        int keep = !strcmp(pol, "not_larger") ? 1 : !strcmp(pol, "not_smaller") ? 2 : 0;
        double s = keep == 1 ? INFINITY : 0.0;
        if (!keep && strcmp(pol, "stretch"))
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "unknown keep_aspect_ratio_policy "
                                "'%s'", pol);
        for (int i = 0; i < k; i++) {
            rs_axis *a = &ax[axes[i]];
            a->out = qc_tensor_get_i(sz, i);
            if (a->out < 0 || (a->in == 0 && a->out > 0))
                return qc_node_errf(n, err, QC_EINPUT, "cannot resize axis %d from %lld to "
                                    "%lld", axes[i], (long long)a->in, (long long)a->out);
            a->scale = a->in ? (double)((float)a->out / (float)a->in) : 1.0;
            a->out_f = (double)a->out;
            a->exact = !keep;
            s = keep == 1 ? fmin(s, a->scale) : fmax(s, a->scale);   /* float values */
        }
        for (int i = 0; keep && i < k; i++) {
            rs_axis *a = &ax[axes[i]];
            a->scale = s;
            a->out = (int64_t)floor(s * (double)a->in + 0.5);
            a->out_f = s * (double)a->in;
            a->exact = 0;
        }
    } else {
        for (int i = 0; i < k; i++) {
            rs_axis *a = &ax[axes[i]];
            a->scale = sa ? sa[i] : (double)(float)qc_tensor_get_f(sc, i);
            if (!(a->scale > 0) || a->scale * (double)a->in > 9e18)
                return qc_node_errf(n, err, QC_EINPUT, "invalid scale %g on axis %d", a->scale,
                                    axes[i]);
            a->out_f = a->scale * (double)a->in;
            a->out = (int64_t)((float)a->scale * (float)a->in);   /* as onnxruntime */
            a->exact = a->out == a->in && a->scale == 1.0;
        }
    }
    for (int a = 0; a < rank && c->antialias && c->mode != M_NEAREST; a++)
        if (ax[a].scale < 1.0 && aa_taps(c, ax[a].scale, NULL) > MAX_TAPS)
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "antialiased downsampling by %g needs "
                                "more than %d taps", ax[a].scale, MAX_TAPS);
    return QC_OK;
}

static int resize_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    rs_cfg c;
    rs_axis ax[QC_MAX_DIMS];
    int64_t dims[QC_MAX_DIMS];
    int rc;
    if (!qc_dtype_is_executable(x->dtype))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    if ((rc = parse_cfg(n, &c, err)) || (rc = geometry(n, &c, x, ax, err)))
        return rc;
    if (c.mode != M_NEAREST && x->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "%s mode supports float32 only, got %s",
                            c.mode == M_LINEAR ? "linear" : "cubic", qc_dtype_name(x->dtype));
    for (int a = 0; a < x->ndim; a++)
        dims[a] = ax[a].out;
    qc_set_shape(n->out[0], x->dtype, x->ndim, dims);
    return QC_OK;
}

/* v / scale. Given sizes, the exact ratio in / out: 2 / (4.f / 7.f) = 3.4999998f would turn a
 * nearest tie (7 -> 4, x = 2: 3.5) the wrong way. */
static float unscale(const rs_axis *a, float v)
{
    return a->exact ? v * (float)a->in / (float)a->out : v / (float)a->scale;
}

/* Output coordinate -> input coordinate in float arithmetic, as onnxruntime and the ONNX test
 * data compute it: in double, 11.5f / 2.3f - 0.5f would not be the 4.5 tie they round. */
static double src_coord(const rs_cfg *c, const rs_axis *a, int64_t x)
{
    float xr = (float)x, in = (float)a->in, out = (float)a->out, s = (float)a->scale;
    float lo = (float)a->roi_lo, hi = (float)a->roi_hi;
    switch (c->coord) {
    case C_HALF_PIXEL:
        return unscale(a, xr + 0.5f) - 0.5f;
    case C_HALF_PIXEL_SYM: {
        float adj = out / (s * in), center = in / 2;
        return center * (1 - adj) + unscale(a, xr + 0.5f) - 0.5f;
    }
    case C_PYTORCH:
        return a->out > 1 ? unscale(a, xr + 0.5f) - 0.5f : 0.0f;
    case C_ALIGN: {  /* onnxruntime divides by out - 1: differs when in * scale is fractional */
        float of = (float)a->out_f;
        return of == 1 ? 0.0f : xr * (in - 1) / (of - 1);
    }
    case C_TF_NN:
        return unscale(a, xr + 0.5f);
    case C_TF_CROP:
        return a->out > 1 ? lo * (in - 1) + xr * (hi - lo) * (in - 1) / (out - 1)
                          : (float)(0.5 * (lo + hi) * (in - 1));
    default:
        return unscale(a, xr);
    }
}

static int64_t round_nearest(const rs_cfg *c, const rs_axis *a, double x)
{
    double f = floor(x);
    switch (c->nearest) {
    case N_ROUND_FLOOR: return (int64_t)(x == f + 0.5 ? f : round(x));
    case N_ROUND_CEIL: return (int64_t)(x == f + 0.5 ? f + 1 : round(x));
    case N_FLOOR: return (int64_t)f;
    case N_CEIL: return (int64_t)ceil(x);
    default: return (int64_t)(a->scale < 1.0 ? ceil(x) : f);  /* onnxruntime's pre-11 rule */
    }
}

static void cubic_coeffs(double r, double A, double *w)
{
    double t = r + 1, u = 1 - r, v = 2 - r;
    w[0] = ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
    w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    w[2] = ((A + 2) * u - (A + 3)) * u * u + 1;
    w[3] = ((A * v - 5 * A) * v + 8 * A) * v - 4 * A;
}

static double cubic_kernel(double x, double A)
{
    x = fabs(x);
    if (x <= 1)
        return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2)
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

static int64_t clampi(int64_t v, int64_t hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

/* Input taps (index, weight) of output coordinate x on one axis; zero weights dropped. */
static void taps_for(const rs_cfg *c, const rs_axis *a, int64_t x, rs_taps *t)
{
    double xo = src_coord(c, a, x), last = (double)(a->in - 1);
    t->n = 0;
    t->outside = c->coord == C_TF_CROP && (xo < 0 || xo > last);
    if (t->outside)
        return;
    if (c->mode == M_NEAREST) {
        t->idx[0] = clampi(round_nearest(c, a, xo), a->in - 1);
        t->w[0] = 1.0;
        t->n = 1;
        return;
    }
    double f = floor(xo), r = xo - f, w[MAX_TAPS], sum = 0;
    int64_t first = -1, count = 4;
    int norm = c->exclude_outside;
    if (c->antialias && a->scale < 1.0) {   /* kernel widened by 1/scale, normalized */
        count = aa_taps(c, a->scale, &first);
        for (int64_t i = 0; i < count; i++) {
            double d = a->scale * ((double)(first + i) - r);
            w[i] = c->mode == M_LINEAR ? fmax(0.0, 1.0 - fabs(d)) : cubic_kernel(d, c->cubic_a);
        }
        norm = 1;
    } else if (c->mode == M_LINEAR) {
        xo = xo < 0 ? 0 : xo > last ? last : xo;
        f = floor(xo);
        w[0] = 1.0 - (xo - f);
        w[1] = xo - f;
        first = 0;
        count = 2;
    } else {
        cubic_coeffs(r, c->cubic_a, w);
    }
    for (int64_t i = 0; i < count; i++) {
        int64_t idx = (int64_t)f + first + i;
        if (c->exclude_outside && (idx < 0 || idx >= a->in))
            w[i] = 0;
        sum += w[i];
    }
    for (int64_t i = 0; i < count; i++) {
        double wi = norm && sum != 0 ? w[i] / sum : w[i];
        if (wi == 0)
            continue;
        t->idx[t->n] = clampi((int64_t)f + first + i, a->in - 1);
        t->w[t->n++] = wi;
    }
}

static void store_scalar(void *dst, int dtype, double v)
{
    switch (dtype) {
    case QC_F32: *(float *)dst = (float)v; break;
    case QC_U8: *(uint8_t *)dst = (uint8_t)v; break;
    case QC_BOOL: *(uint8_t *)dst = v != 0; break;
    case QC_I8: *(int8_t *)dst = (int8_t)v; break;
    case QC_U16: *(uint16_t *)dst = (uint16_t)v; break;
    case QC_I16: *(int16_t *)dst = (int16_t)v; break;
    case QC_I32: *(int32_t *)dst = (int32_t)v; break;
    case QC_I64: *(int64_t *)dst = (int64_t)v; break;
    default: break;
    }
}

/* Nearest with integer factors on the two innermost axes and identity elsewhere: each input
 * element is repeated fw times along a row, each row fh times. */
static int nearest_fast(const rs_cfg *c, const rs_axis *ax, int nd, const qc_tensor *x,
                        qc_tensor *y)
{
    rs_taps t;
    if (nd < 2 || c->coord == C_TF_CROP)
        return 0;
    for (int a = 0; a < nd; a++) {
        int64_t f = ax[a].in ? ax[a].out / ax[a].in : 0;
        if (f < 1 || ax[a].out != f * ax[a].in || (a < nd - 2 && f != 1))
            return 0;
        for (int64_t i = 0; i < ax[a].out; i++) {
            taps_for(c, &ax[a], i, &t);
            if (t.idx[0] != i / f)
                return 0;
        }
    }
    size_t es = qc_dtype_size(x->dtype);
    int64_t h = ax[nd - 2].in, w = ax[nd - 1].in, fh = ax[nd - 2].out / h;
    int64_t fw = ax[nd - 1].out / w, ow = w * fw, rows = qc_tensor_numel(x) / w;
    const char *in = x->data;
    char *out = y->data;
    size_t orow = (size_t)ow * es;
    for (int64_t r = 0; r < rows; r++, in += (size_t)w * es) {
        if (es == 4 && fw == 2) {
            const uint32_t *s = (const uint32_t *)in;
            uint32_t *d = (uint32_t *)out;
            for (int64_t j = 0; j < w; j++)
                d[2 * j] = d[2 * j + 1] = s[j];
        } else if (es == 4) {
            const uint32_t *s = (const uint32_t *)in;
            uint32_t *d = (uint32_t *)out;
            for (int64_t j = 0; j < w; j++)
                for (int64_t k = 0; k < fw; k++)
                    d[j * fw + k] = s[j];
        } else {
            for (int64_t j = 0; j < w; j++)
                for (int64_t k = 0; k < fw; k++)
                    memcpy(out + (size_t)(j * fw + k) * es, in + (size_t)j * es, es);
        }
        for (int64_t k = 1; k < fh; k++)
            memcpy(out + (size_t)k * orow, out, orow);
        out += (size_t)fh * orow;
    }
    return 1;
}

/* Taps of the innermost axis are computed once per chunk of output columns, then reused by
 * every row: a 32 KiB table on the stack instead of scratch memory. */
#define CHUNK_TAPS 2048

/* Interpolation weights (off, wt) of one output row: products of the outer axes' taps. */
static int row_combos(const qc_knode *n, const rs_cfg *c, const rs_axis *ax, int nd,
                      const int64_t *idx, const int64_t *str, int64_t *off, float *wt,
                      int *nc_out, qc_err *err)
{
    rs_taps t;
    int nc = 1;
    off[0] = 0;
    wt[0] = 1.0f;
    for (int a = 0; a < nd - 1; a++) {
        taps_for(c, &ax[a], idx[a], &t);
        if (t.outside) {
            *nc_out = 0;
            return QC_OK;
        }
        if (nc * t.n > MAX_COMBOS)
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "too many interpolation taps "
                                "(resizing %d axes)", nd);
        for (int i = nc - 1; i >= 0; i--)       /* expand combo i into t.n combos in place */
            for (int j = t.n - 1; j >= 0; j--) {
                off[i * t.n + j] = off[i] + t.idx[j] * str[a];
                wt[i * t.n + j] = wt[i] * (float)t.w[j];
            }
        nc *= t.n;
    }
    *nc_out = nc;
    return QC_OK;
}

static int resize_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    qc_tensor *y = n->out[0];
    rs_cfg c;
    rs_axis ax[QC_MAX_DIMS];
    int64_t str[QC_MAX_DIMS], off[MAX_COMBOS], s = 1, ci[CHUNK_TAPS];
    float wt[MAX_COMBOS], cw[CHUNK_TAPS];
    int32_t cn[CHUNK_TAPS];
    rs_taps t;
    int rc, nd = x->ndim;
    size_t es = qc_dtype_size(x->dtype);
    unsigned char extrap[8];
    (void)r;
    if ((rc = parse_cfg(n, &c, err)) || (rc = geometry(n, &c, x, ax, err)))
        return rc;
    if (qc_tensor_numel(y) == 0)
        return QC_OK;
    if (nd == 0) {
        memcpy(y->data, x->data, es);
        return QC_OK;
    }
    if (c.mode == M_NEAREST && nearest_fast(&c, ax, nd, x, y))
        return QC_OK;
    store_scalar(extrap, x->dtype, c.extrap);
    for (int a = nd - 1; a >= 0; a--) {
        str[a] = s;
        s *= x->dims[a];
    }
    const rs_axis *al = &ax[nd - 1];
    int64_t w = al->out, rows = qc_tensor_numel(y) / w;
    int64_t nt = c.mode == M_NEAREST ? 1 : c.mode == M_LINEAR ? 2 : 4;
    if (c.mode != M_NEAREST && c.antialias && al->scale < 1.0)
        nt = aa_taps(&c, al->scale, NULL);
    int64_t chunk = CHUNK_TAPS / nt;
    for (int64_t j0 = 0; j0 < w; j0 += chunk) {
        int64_t j1 = j0 + chunk < w ? j0 + chunk : w, idx[QC_MAX_DIMS] = {0};
        for (int64_t j = j0; j < j1; j++) {
            taps_for(&c, al, j, &t);
            cn[j - j0] = t.outside ? -1 : t.n;
            for (int k = 0; k < nt; k++) {      /* padded with zero-weight taps */
                ci[(j - j0) * nt + k] = k < t.n ? t.idx[k] : t.n ? t.idx[0] : 0;
                cw[(j - j0) * nt + k] = k < t.n ? (float)t.w[k] : 0.0f;
            }
        }
        for (int64_t row = 0; row < rows; row++) {
            int nc = 0;
            if ((rc = row_combos(n, &c, ax, nd, idx, str, off, wt, &nc, err)))
                return rc;
            char *out = (char *)y->data + (row * w + j0) * (int64_t)es;
            if (c.mode == M_NEAREST) {
                const char *in = (const char *)x->data + off[0] * (int64_t)es;
                for (int64_t j = 0; j < j1 - j0; j++, out += es) {
                    const char *src = nc && cn[j] > 0 ? in + ci[j] * (int64_t)es
                                                      : (const char *)extrap;
                    if (es == 4)
                        memcpy(out, src, 4);
                    else
                        memcpy(out, src, es);
                }
            } else if (nt == 2 && nc >= 1 && nc <= 2 && c.coord != C_TF_CROP) {
                /* bilinear: two rows of two taps, branch-free */
                const float *p0 = (const float *)x->data + off[0];
                const float *p1 = (const float *)x->data + off[nc - 1];
                float a0 = wt[0], a1 = nc == 2 ? wt[1] : 0.0f, *o = (float *)out;
                for (int64_t j = 0; j < j1 - j0; j++) {
                    int64_t i0 = ci[2 * j], i1 = ci[2 * j + 1];
                    float w0 = cw[2 * j], w1 = cw[2 * j + 1];
                    o[j] = a0 * (w0 * p0[i0] + w1 * p0[i1]) + a1 * (w0 * p1[i0] + w1 * p1[i1]);
                }
            } else {
                float *o = (float *)out;
                for (int64_t j = 0; j < j1 - j0; j++) {
                    const int64_t *ii = ci + j * nt;
                    const float *ww = cw + j * nt;
                    float acc = 0;
                    if (!nc || cn[j] < 0) {
                        o[j] = (float)c.extrap;
                        continue;
                    }
                    for (int i = 0; i < nc; i++) {
                        const float *p = (const float *)x->data + off[i];
                        float v = 0;
                        for (int k = 0; k < nt; k++)
                            v += ww[k] * p[ii[k]];
                        acc += wt[i] * v;
                    }
                    o[j] = acc;
                }
            }
            for (int a = nd - 2; a >= 0; a--) {
                if (++idx[a] < ax[a].out)
                    break;
                idx[a] = 0;
            }
        }
    }
    return QC_OK;
}

/* ---- Pad: modes constant, reflect, edge, wrap; attribute form before opset 11 ---------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

static int pad_mode(const qc_knode *n, int *mode, qc_err *err)
{
    const char *m = qc_attr_str(n->node, "mode", "constant");
    if (!strcmp(m, "constant"))
        *mode = PAD_CONSTANT;
    else if (!strcmp(m, "reflect"))
        *mode = PAD_REFLECT;
    else if (!strcmp(m, "edge"))
        *mode = PAD_EDGE;
    else if (!strcmp(m, "wrap"))
        *mode = PAD_WRAP;
    else
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "unknown mode '%s'", m);
    return QC_OK;
}

/* Begin/end pads per axis (pb[a], pe[a]) and, for mode constant, the fill value bytes. */
static int pad_params(const qc_knode *n, const qc_tensor *x, int64_t *pb, int64_t *pe,
                      unsigned char *fill, qc_err *err)
{
    int rank = x->ndim, axes[QC_MAX_DIMS], k = rank;
    int64_t count = 0;
    const int64_t *pa = NULL;
    const qc_tensor *pt = NULL, *cv = NULL, *at = NULL;
    for (int i = 0; i < rank; i++) {
        pb[i] = pe[i] = 0;
        axes[i] = i;
    }
    memset(fill, 0, 8);
    if (n->opset < 11) {
        pa = qc_attr_ints(n->node, qc_attr_find(n->node, "pads") ? "pads" : "paddings", &count);
        store_scalar(fill, x->dtype, qc_attr_float(n->node, "value", 0.0f));
    } else {
        pt = n->n_in > 1 ? n->in[1] : NULL;
        cv = opt_in(n, 2);
        at = n->opset >= 18 && n->n_in > 3 ? n->in[3] : NULL;
        if (!pt)
            return qc_node_errf(n, err, QC_EINPUT, "missing pads input");
        count = qc_tensor_numel(pt);
        if (cv && qc_tensor_numel(cv) > 0) {
            if (cv->dtype == x->dtype)
                memcpy(fill, cv->data, qc_dtype_size(x->dtype));
            else
                store_scalar(fill, x->dtype, qc_tensor_get_f(cv, 0));
        }
    }
    if (at) {
        k = (int)qc_tensor_numel(at);
        if (k > rank)
            return qc_node_errf(n, err, QC_EINPUT, "%d axes for rank %d", k, rank);
        for (int i = 0; i < k; i++) {
            int rc = qc_norm_axis(n, qc_tensor_get_i(at, i), rank, &axes[i], err);
            if (rc)
                return rc;
        }
    }
    if (count != 2 * k)
        return qc_node_errf(n, err, QC_EINPUT, "pads has %lld entries, expected %d",
                            (long long)count, 2 * k);
    for (int i = 0; i < k; i++) {
        pb[axes[i]] = pa ? pa[i] : qc_tensor_get_i(pt, i);
        pe[axes[i]] = pa ? pa[i + k] : qc_tensor_get_i(pt, i + k);
    }
    return QC_OK;
}

static int pad_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t pb[QC_MAX_DIMS], pe[QC_MAX_DIMS], dims[QC_MAX_DIMS];
    unsigned char fill[8];
    int mode, rc;
    if (!qc_dtype_is_executable(x->dtype))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    if ((rc = pad_mode(n, &mode, err)) ||
        (rc = pad_params(n, x, pb, pe, fill, err)))
        return rc;
    for (int i = 0; i < x->ndim; i++) {
        dims[i] = x->dims[i] + pb[i] + pe[i];
        if (dims[i] < 0)
            return qc_node_errf(n, err, QC_ESHAPE, "pads make axis %d negative", i);
        if (mode != PAD_CONSTANT && x->dims[i] == 0 && dims[i] > 0)
            return qc_node_errf(n, err, QC_ESHAPE, "cannot pad empty axis %d in this mode", i);
    }
    qc_set_shape(n->out[0], x->dtype, x->ndim, dims);
    return QC_OK;
}

/* Source index on an axis of length d for output index o shifted by the begin pad. */
static int64_t pad_src(int mode, int64_t i, int64_t d)
{
    if (i >= 0 && i < d)
        return i;
    switch (mode) {
    case PAD_EDGE:
        return i < 0 ? 0 : d - 1;
    case PAD_REFLECT: {
        if (d == 1)
            return 0;
        int64_t p = 2 * (d - 1), m = ((i % p) + p) % p;
        return m < d ? m : p - m;
    }
    case PAD_WRAP:
        return ((i % d) + d) % d;
    default:
        return -1;
    }
}

static int pad_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *y = n->out[0];
    int64_t pb[QC_MAX_DIMS], pe[QC_MAX_DIMS], str[QC_MAX_DIMS], idx[QC_MAX_DIMS] = {0};
    unsigned char fill[8];
    int mode, rc, nd = x->ndim;
    size_t es = qc_dtype_size(x->dtype);
    (void)r;
    if ((rc = pad_mode(n, &mode, err)) || (rc = pad_params(n, x, pb, pe, fill, err)))
        return rc;
    if (qc_tensor_numel(y) == 0)
        return QC_OK;
    if (nd == 0) {
        memcpy(y->data, x->data, es);
        return QC_OK;
    }
    int64_t s = 1;
    for (int a = nd - 1; a >= 0; a--) {
        str[a] = s;
        s *= x->dims[a];
    }
    int64_t w = y->dims[nd - 1], d = x->dims[nd - 1], lo = pb[nd - 1];
    /* output columns [c0, c1) copy input columns straight */
    int64_t c0 = lo < 0 ? 0 : lo, c1 = d + lo < w ? d + lo : w;
    char *out = y->data;
    const char *in = x->data;
    for (;;) {
        int64_t off = 0;
        int outside = 0;
        for (int a = 0; a < nd - 1; a++) {
            int64_t s = pad_src(mode, idx[a] - pb[a], x->dims[a]);
            if (s < 0)
                outside = 1;
            off += s * str[a];
        }
        if (outside) {
            for (int64_t j = 0; j < w; j++)
                memcpy(out + j * (int64_t)es, fill, es);
        } else {
            const char *row = in + off * (int64_t)es;
            for (int64_t j = 0; j < w; j++) {
                if (j == c0 && c1 > c0) {
                    memcpy(out + j * (int64_t)es, row + (j - lo) * (int64_t)es,
                           (size_t)(c1 - c0) * es);
                    j = c1 - 1;
                    continue;
                }
                int64_t s = pad_src(mode, j - lo, d);
                memcpy(out + j * (int64_t)es, s < 0 ? (const char *)fill : row + s * (int64_t)es,
                       es);
            }
        }
        out += w * (int64_t)es;
        int a = nd - 2;
        for (; a >= 0; a--) {
            if (++idx[a] < y->dims[a])
                break;
            idx[a] = 0;
        }
        if (a < 0)
            break;
    }
    return QC_OK;
}

const qc_op_def qc_ops_resize[] = {
    { "Resize", 10, resize_infer, resize_run, resize_prepare, NULL, NULL },
    { "Upsample", 7, resize_infer, resize_run, resize_prepare, NULL, NULL },
    { "Pad", 1, pad_infer, pad_run, NULL, NULL, NULL },
    { 0 }
};
