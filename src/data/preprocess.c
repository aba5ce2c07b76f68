#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data.h"

const char qc_preproc_usage[] =
    "  --size HxW            resize images to H x W (default: the model input's size)\n"
    "  --layout nchw|nhwc    image tensor layout (default nchw)\n"
    "  --channels rgb|bgr    channel order (default rgb)\n"
    "  --scale S             multiply 0..255 pixel values by S first (default 1/255)\n"
    "  --mean A[,B,C]        subtract per channel, after scaling (default 0)\n"
    "  --std A[,B,C]         then divide per channel (default 1)\n"
    "  --allow-nonfinite     accept NaN/Inf values in float samples\n";

void qc_preproc_init(qc_preproc *pp)
{
    memset(pp, 0, sizeof *pp);
    pp->scale = 1.0f / 255.0f;
    for (int c = 0; c < 4; c++) {
        pp->mean[c] = 0.0f;
        pp->std[c] = 1.0f;
    }
}

/* "0.5" or a fraction "1/255". */
static int parse_float(const char *s, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    if (*end == '/') {
        const char *d = end + 1;
        double den = strtod(d, &end);
        if (end == d || den == 0.0)
            return -1;
        v /= den;
    }
    if (*end || !isfinite(v) || fabs(v) > 3.0e38)
        return -1;
    *out = (float)v;
    return 0;
}

static int parse_list(const char *s, float *out, int *n)
{
    *n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n >= 4 || parse_float(tok, &out[*n]) != 0)
            return -1;
        (*n)++;
    }
    return *n > 0 ? 0 : -1;
}

/* "HxW", "H,W" or "N" (square). */
static int parse_size(const char *s, int *h, int *w)
{
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s)
        return -1;
    if (*end == 'x' || *end == 'X' || *end == ',') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t)
            return -1;
    }
    if (*end || a < 1 || b < 1 || a > 65536 || b > 65536)
        return -1;
    *h = (int)a;
    *w = (int)b;
    return 0;
}

int qc_preproc_parse_arg(qc_preproc *pp, int argc, char **argv, int *i, qc_err *err)
{
    static const char *const with_value[] = { "--size", "--layout", "--channels", "--scale",
                                              "--mean", "--std" };
    const char *arg = argv[*i];
    if (!strcmp(arg, "--allow-nonfinite")) {
        pp->allow_nonfinite = 1;
        (*i)++;
        return 1;
    }
    const char *flag = NULL, *val = NULL;
    size_t flen = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) {
        flen = strlen(with_value[k]);
        if (!strncmp(arg, with_value[k], flen) && (arg[flen] == '\0' || arg[flen] == '=')) {
            flag = with_value[k];
            break;
        }
    }
    if (!flag)
        return 0;
    int next = *i + 1;
    if (arg[flen] == '=') {
        val = arg + flen + 1;
    } else {
        if (*i + 1 >= argc)
            return qc_errf(err, QC_EUSAGE, "%s needs a value", flag);
        val = argv[*i + 1];
        next = *i + 2;
    }
    int bad = 0;
    if (!strcmp(flag, "--size")) {
        bad = parse_size(val, &pp->height, &pp->width);
    } else if (!strcmp(flag, "--layout")) {
        if (!strcmp(val, "nchw") || !strcmp(val, "NCHW"))
            pp->nhwc = 0;
        else if (!strcmp(val, "nhwc") || !strcmp(val, "NHWC"))
            pp->nhwc = 1;
        else
            bad = 1;
    } else if (!strcmp(flag, "--channels")) {
        if (!strcmp(val, "rgb") || !strcmp(val, "RGB"))
            pp->bgr = 0;
        else if (!strcmp(val, "bgr") || !strcmp(val, "BGR"))
            pp->bgr = 1;
        else
            bad = 1;
    } else if (!strcmp(flag, "--scale")) {
        bad = parse_float(val, &pp->scale);
    } else if (!strcmp(flag, "--mean")) {
        bad = parse_list(val, pp->mean, &pp->n_mean);
    } else {
        bad = parse_list(val, pp->std, &pp->n_std);
        for (int c = 0; !bad && c < pp->n_std; c++)
            if (pp->std[c] == 0.0f)
                return qc_errf(err, QC_EUSAGE, "--std '%s': values must not be zero", val);
    }
    if (bad) {
        static const char *const forms[] = { "HxW", "nchw or nhwc", "rgb or bgr",
                                             "a number such as 0.0039 or 1/255",
                                             "1 to 4 comma-separated numbers",
                                             "1 to 4 comma-separated numbers" };
        size_t k = 0;
        while (strcmp(with_value[k], flag) != 0)
            k++;
        return qc_errf(err, QC_EUSAGE, "%s '%s': expected %s", flag, val, forms[k]);
    }
    *i = next;
    return 1;
}

static const char *vi_shape(const qc_value_info *vi, char *buf, size_t n)
{
    qc_tensor t = { .ndim = vi->ndim };
    memcpy(t.dims, vi->dims, sizeof t.dims);
    return qc_shape_str(&t, buf, n);
}

int qc_image_geom_plan(const qc_value_info *vi, const qc_preproc *pp, qc_image_geom *g,
                       qc_err *err)
{
    char shape[160];
    int64_t d[4] = { -1, -1, -1, -1 };
    g->dtype = vi->dtype == QC_UNDEFINED ? QC_F32 : vi->dtype;
    if (g->dtype != QC_F32 && g->dtype != QC_U8)
        return qc_errf(err, QC_EINPUT, "input '%s' is %s: images can only feed float32 or "
                       "uint8 inputs", vi->name, qc_dtype_name(vi->dtype));
    g->rank = vi->ndim < 0 ? 4 : vi->ndim;
    if (g->rank != 3 && g->rank != 4)
        return qc_errf(err, QC_EINPUT, "input '%s' has shape %s: images need a 4-d (or 3-d) "
                       "input", vi->name, vi_shape(vi, shape, sizeof shape));
    int off = 4 - g->rank;          /* a 3-d input has no batch dim */
    for (int i = 0; vi->ndim >= 0 && i < vi->ndim; i++)
        d[off + i] = vi->dims[i];
    if (d[0] > 1 || d[0] == 0)
        return qc_errf(err, QC_EINPUT, "input '%s' has shape %s: images feed a batch of 1",
                       vi->name, vi_shape(vi, shape, sizeof shape));
    int64_t c = pp->nhwc ? d[3] : d[1], mh = pp->nhwc ? d[1] : d[2];
    int64_t mw = pp->nhwc ? d[2] : d[3];
    if (c < 0)
        c = 3;
    if (c != 1 && c != 3) {
        int64_t other = pp->nhwc ? d[1] : d[3];
        return qc_errf(err, QC_EINPUT, "input '%s' has shape %s: %lld channels in %s layout "
                       "(images give 1 or 3)%s", vi->name, vi_shape(vi, shape, sizeof shape),
                       (long long)c, pp->nhwc ? "NHWC" : "NCHW",
                       other == 1 || other == 3
                           ? (pp->nhwc ? "; try --layout nchw" : "; try --layout nhwc") : "");
    }
    g->c = (int)c;
    if (pp->height > 0) {
        if ((mh >= 0 && mh != pp->height) || (mw >= 0 && mw != pp->width))
            return qc_errf(err, QC_EINPUT, "input '%s' has shape %s but --size is %dx%d",
                           vi->name, vi_shape(vi, shape, sizeof shape), pp->height,
                           pp->width);
        g->h = pp->height;
        g->w = pp->width;
    } else {
        if (mh < 0 || mw < 0)
            return qc_errf(err, QC_EINPUT, "input '%s' has shape %s with a symbolic height or "
                           "width: pass --size HxW", vi->name,
                           vi_shape(vi, shape, sizeof shape));
        if (mh > 65536 || mw > 65536 || mh == 0 || mw == 0)
            return qc_errf(err, QC_EINPUT, "input '%s' has shape %s: unsupported image size",
                           vi->name, vi_shape(vi, shape, sizeof shape));
        g->h = (int)mh;
        g->w = (int)mw;
    }
    if ((pp->n_mean > 1 && pp->n_mean != g->c) || (pp->n_std > 1 && pp->n_std != g->c))
        return qc_errf(err, QC_EUSAGE, "--mean/--std have %d/%d values but input '%s' has %d "
                       "channel%s", pp->n_mean, pp->n_std, vi->name, g->c,
                       g->c > 1 ? "s" : "");
    return QC_OK;
}

/* Source coordinate of output index o for half-pixel-centre bilinear resizing, as
 * cv2.resize(INTER_LINEAR) and onnx Resize(half_pixel) without antialiasing. */
static void src_coord(int o, int out_n, int in_n, int *i0, int *i1, float *frac)
{
    double s = ((double)o + 0.5) * in_n / out_n - 0.5;
    if (s < 0)
        s = 0;
    int a = (int)s;
    if (a > in_n - 1)
        a = in_n - 1;
    *i0 = a;
    *i1 = a + 1 < in_n ? a + 1 : in_n - 1;
    *frac = (float)(s - a);
    if (*i1 == a)
        *frac = 0.0f;
}

int qc_image_to_tensor(const qc_image *img, const qc_image_geom *g, const qc_preproc *pp,
                       qc_tensor *slot, const char *path, qc_err *err)
{
    const int C = g->c, H = g->h, W = g->w;
    size_t plane = (size_t)H * W, nbytes = plane * C * qc_dtype_size(g->dtype);
    int rc = qc_data_reserve(slot, nbytes, path, err);
    if (rc)
        return rc;
    slot->dtype = g->dtype;
    slot->ndim = g->rank;
    int64_t *d = slot->dims, *p = g->rank == 4 ? d + 1 : d;
    if (g->rank == 4)
        d[0] = 1;
    p[0] = pp->nhwc ? H : C;
    p[1] = pp->nhwc ? W : H;
    p[2] = pp->nhwc ? C : W;
    float mean[3], std[3];
    for (int c = 0; c < C; c++) {
        mean[c] = pp->n_mean == 0 ? 0.0f : pp->mean[pp->n_mean == 1 ? 0 : c];
        std[c] = pp->n_std == 0 ? 1.0f : pp->std[pp->n_std == 1 ? 0 : c];
    }
    const size_t stride = (size_t)img->width * 3;
    float *f = g->dtype == QC_F32 ? slot->data : NULL;
    uint8_t *u = g->dtype == QC_U8 ? slot->data : NULL;
    for (int y = 0; y < H; y++) {
        int y0, y1;
        float fy;
        src_coord(y, H, img->height, &y0, &y1, &fy);
        const uint8_t *r0 = img->rgb + (size_t)y0 * stride, *r1 = img->rgb + (size_t)y1 * stride;
        for (int x = 0; x < W; x++) {
            int x0, x1;
            float fx, px[3];
            src_coord(x, W, img->width, &x0, &x1, &fx);
            for (int k = 0; k < 3; k++) {
                float top = r0[x0 * 3 + k] + fx * (r0[x1 * 3 + k] - r0[x0 * 3 + k]);
                float bot = r1[x0 * 3 + k] + fx * (r1[x1 * 3 + k] - r1[x0 * 3 + k]);
                px[k] = top + fy * (bot - top);
            }
            for (int c = 0; c < C; c++) {
                float v = C == 1 ? 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2]
                                 : px[pp->bgr ? 2 - c : c];
                size_t at = pp->nhwc ? ((size_t)y * W + x) * C + c
                                     : (size_t)c * plane + (size_t)y * W + x;
                if (f)
                    f[at] = (v * pp->scale - mean[c]) / std[c];
                else
                    u[at] = (uint8_t)lrintf(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    return QC_OK;
}
