/* GridSample (opsets 16 and 20), 2-D: Y[n, c, i, j] = X[n, c] sampled at grid[n, i, j] = (x, y)
 * in [-1, 1], nearest / (bi)linear / (bi)cubic (Keys, a = -0.75), padding zeros / border /
 * reflection, align_corners. Coordinates outside the border are clamped or reflected first
 * (as the ONNX reference does; for linear and nearest that gives what padding each pixel
 * gives), then every pixel fetched is padded; cubic pads its 16 pixels only, as onnxruntime
 * and PyTorch do (the reference clamps the point first and differs near the border).
 * Linear and cubic interpolate along x within each row, then along y. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ops.h"

enum { GS_LINEAR, GS_NEAREST, GS_CUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECT };

typedef struct gs_opts {
    int mode, pad, align;
} gs_opts;

static int gs_parse(const qc_knode *n, gs_opts *o, qc_err *err)
{
    const char *m = qc_attr_str(n->node, "mode", n->opset >= 20 ? "linear" : "bilinear");
    const char *p = qc_attr_str(n->node, "padding_mode", "zeros");
    o->mode = !strcmp(m, "nearest") ? GS_NEAREST
            : (!strcmp(m, "linear") || !strcmp(m, "bilinear")) ? GS_LINEAR
            : (!strcmp(m, "cubic") || !strcmp(m, "bicubic")) ? GS_CUBIC : -1;
    o->pad = !strcmp(p, "zeros") ? GS_ZEROS : !strcmp(p, "border") ? GS_BORDER
           : !strcmp(p, "reflection") ? GS_REFLECT : -1;
    o->align = qc_attr_int(n->node, "align_corners", 0) != 0;
    if (o->mode < 0 || o->pad < 0)
        return qc_node_errf(n, err, QC_EINPUT, "mode '%s' or padding_mode '%s' unknown", m, p);
    return QC_OK;
}

static int gs_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *g = qc_opt_in(n, 1);
    gs_opts o;
    int rc = gs_parse(n, &o, err);
    if (rc != QC_OK)
        return rc;
    if (!g || x->dtype != QC_F32 || g->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "X and grid must be float32");
    if (x->ndim != 4)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "only 2-D sampling (X of rank 4) is "
                            "supported, X has rank %d", x->ndim);
    if (g->ndim != 4 || g->dims[0] != x->dims[0] || g->dims[3] != 2)
        return qc_node_errf(n, err, QC_ESHAPE, "grid must be [N, H_out, W_out, 2]");
    int64_t dims[4] = { x->dims[0], x->dims[1], g->dims[1], g->dims[2] };
    qc_set_shape(n->out[0], QC_F32, 4, dims);
    return QC_OK;
}

static float reflect(float v, float lo, float hi)
{
    float range = hi - lo;
    if (!(range > 0.0f))                /* a dim of 1 with align_corners */
        return lo;
    if (v < lo) {
        float d = lo - v;
        int64_t k = (int64_t)(d / range);
        float r = d - (float)k * range;
        return k % 2 == 0 ? lo + r : hi - r;
    }
    if (v > hi) {
        float d = v - hi;
        int64_t k = (int64_t)(d / range);
        float r = d - (float)k * range;
        return k % 2 == 0 ? hi - r : lo + r;
    }
    return v;
}

typedef struct gs_plane {
    const float *x;
    int64_t      h, w;
    float        lo[2], hi[2];          /* borders of y and x */
    int          pad;
} gs_plane;

/* Index i of a dim of size d, padded; -1 for a zero. */
static int64_t pad_index(const gs_plane *p, int64_t i, int64_t d, int axis)
{
    if (i >= 0 && i < d)
        return i;
    if (p->pad == GS_ZEROS)
        return -1;
    if (p->pad == GS_BORDER)
        return i < 0 ? 0 : d - 1;
    int64_t r = (int64_t)reflect((float)i, p->lo[axis], p->hi[axis]);
    return r < 0 ? 0 : r >= d ? d - 1 : r;
}

static float pixel(const gs_plane *p, int64_t r, int64_t c)
{
    int64_t pr = pad_index(p, r, p->h, 0), pc = pad_index(p, c, p->w, 1);
    return pr < 0 || pc < 0 ? 0.0f : p->x[pr * p->w + pc];
}

static void cubic_coeffs(float t, float *c)
{
    const float a = -0.75f;
    float x = fabsf(t), x1 = x + 1, y1 = 1 - x, y2 = 2 - x;
    c[0] = ((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a;
    c[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
    c[2] = ((a + 2) * y1 - (a + 3)) * y1 * y1 + 1;
    c[3] = ((a * y2 - 5 * a) * y2 + 8 * a) * y2 - 4 * a;
}

static float sample(const gs_plane *p, int mode, float y, float x)
{
    if (mode == GS_NEAREST)
        return pixel(p, (int64_t)y, (int64_t)x);
    int taps = mode == GS_CUBIC ? 4 : 2, off = mode == GS_CUBIC ? -1 : 0;
    float x0 = floorf(x), y0 = floorf(y), cx[4], cy[4], rows[4];
    if (mode == GS_CUBIC) {
        cubic_coeffs(x - x0, cx);
        cubic_coeffs(y - y0, cy);
    } else {
        cx[1] = fabsf(x - x0), cx[0] = 1 - cx[1];
        cy[1] = fabsf(y - y0), cy[0] = 1 - cy[1];
    }
    for (int a = 0; a < taps; a++) {
        float s = 0.0f;
        for (int b = 0; b < taps; b++)
            s += cx[b] * pixel(p, (int64_t)y0 + off + a, (int64_t)x0 + off + b);
        rows[a] = s;
    }
    float v = 0.0f;
    for (int a = 0; a < taps; a++)
        v += cy[a] * rows[a];
    return v;
}

static int gs_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *g = n->in[1];
    gs_opts o;
    int rc = gs_parse(n, &o, err);
    (void)r;
    if (rc != QC_OK)
        return rc;
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t HO = g->dims[1], WO = g->dims[2];
    float *y = n->out[0]->data;
    gs_plane p = { .h = H, .w = W, .pad = o.pad };
    p.lo[0] = p.lo[1] = o.align ? 0.0f : -0.5f;
    p.hi[0] = o.align ? (float)H - 1 : (float)H - 0.5f;
    p.hi[1] = o.align ? (float)W - 1 : (float)W - 0.5f;
    for (int64_t b = 0; b < N; b++)
        for (int64_t i = 0; i < HO * WO; i++) {
            const float *gp = (const float *)g->data + (b * HO * WO + i) * 2;
            float cx = o.align ? (gp[0] + 1) / 2.0f * (float)(W - 1)
                               : ((gp[0] + 1) * (float)W - 1) / 2.0f;
            float cy = o.align ? (gp[1] + 1) / 2.0f * (float)(H - 1)
                               : ((gp[1] + 1) * (float)H - 1) / 2.0f;
            /* far outside every plane either way, and integer conversions stay defined */
            cx = cx < -1e9f ? -1e9f : cx > 1e9f ? 1e9f : cx;
            cy = cy < -1e9f ? -1e9f : cy > 1e9f ? 1e9f : cy;
            if (o.mode == GS_NEAREST)
                cx = nearbyintf(cx), cy = nearbyintf(cy);
            float *c2[2] = { &cy, &cx };
            int64_t dim[2] = { H, W };
            for (int a = 0; a < 2 && o.mode != GS_CUBIC; a++) {
                float v = *c2[a];
                if (v >= p.lo[a] && v <= p.hi[a])
                    continue;
                if (o.pad == GS_BORDER)
                    *c2[a] = v < 0 ? 0.0f : v > (float)(dim[a] - 1) ? (float)(dim[a] - 1) : v;
                else if (o.pad == GS_REFLECT)
                    *c2[a] = reflect(v, p.lo[a], p.hi[a]);
            }
            for (int64_t c = 0; c < C; c++) {
                p.x = (const float *)x->data + (b * C + c) * H * W;
                y[(b * C + c) * HO * WO + i] = isfinite(cx) && isfinite(cy)
                                                   ? sample(&p, o.mode, cy, cx) : NAN;
            }
        }
    return QC_OK;
}

const qc_op_def qc_ops_gridsample[] = {
    { "GridSample", 16, gs_infer, gs_run, NULL, NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL, NULL },
};
