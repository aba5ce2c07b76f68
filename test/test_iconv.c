/* The integer convolution of simulated quantized runs (qc_exec_opts.fuse_qdq; conv_i8_x86.c):
 * x -> Q/DQ(sx, zx) -> Conv(DQ(int8 w, per-channel or per-tensor scales), float bias) -> y on
 * padded, strided, dilated, pointwise and 1-D shapes, channel counts off the kernel's 4 / 16 /
 * 32 steps, uint8 and int8 codes at both ends of their range, weights at -128 and 127. Against
 * the exact result (double sums of the dequantized values) the integer path is one rounding
 * away (its sum is exact); the float path on the same values (QC_ICONV=0) is near but rounds
 * every product. The AVX2 tiles (VPMADDUBSW) run where the weights' channel pairs fit 16-bit
 * sums (the "fit" cases, also with QC_ICONV=avx2 on a VNNI CPU); elsewhere without AVX-512
 * VNNI the integer run must give the float path's bits. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "qc_exec.h"

typedef struct ic_case {
    const char *what;
    int64_t batch, c, m, kh, kw, ih, iw, stride, pad, dil;
    int     i8;                 /* int8 input codes (else uint8) */
    int     per_channel;
    int     fit;                /* weight pairs made to fit the AVX2 tiles (conv_i8_x86.c) */
} ic_case;

typedef struct ic_model {
    qc_model      m;
    qc_node       nodes[4];
    const char   *io[4][2][3];
    qc_attr       attrs[5];
    int64_t       pads[4], strides[2], dils[2], kshape[2];
    qc_value_info in, out;
    qc_tensor     inits[7];
    float         sx, *ws, *b;
    uint8_t       zx;
    int8_t        zw, *wq;
} ic_model;

static void ic_node(ic_model *t, int i, const char *op, int n_in, const char *a, const char *b,
                    const char *c, const char *out)
{
    const char **in = t->io[i][0], **o = t->io[i][1];
    in[0] = a, in[1] = b, in[2] = c, o[0] = out;
    t->nodes[i] = (qc_node){ .name = out, .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = 1, .inputs = in, .outputs = o };
}

static uint32_t ic_rand(uint32_t *r)
{
    *r = *r * 1664525u + 1013904223u;
    return *r >> 8;
}

static void ic_build(ic_model *t, const ic_case *k)
{
    memset(t, 0, sizeof *t);
    int64_t nw = k->m * k->c * k->kh * k->kw, ns = k->per_channel ? k->m : 1;
    t->wq = malloc((size_t)nw);
    t->ws = malloc((size_t)ns * sizeof *t->ws);
    t->b = malloc((size_t)k->m * sizeof *t->b);
    uint32_t r = 7;
    for (int64_t i = 0; i < nw; i++)
        t->wq[i] = (int8_t)((int)(ic_rand(&r) % 256) - 128);
    t->wq[0] = -128, t->wq[nw - 1] = 127;
    /* fit: channels (c, c + 1), c even, of the same sign keep |w| + |w'| <= 128 at each
     * kernel position, the smaller one cut (so -128 and 127 stay, beside a 0 or a 1);
     * pairs of opposite signs stay as drawn (-128 beside 127 sums within 16 bits) */
    int64_t sp = k->kh * k->kw;
    for (int64_t m = 0; k->fit && m < k->m; m++)
        for (int64_t c = 0; c + 1 < k->c; c += 2)
            for (int64_t j = 0; j < sp; j++) {
                int8_t *a = &t->wq[(m * k->c + c) * sp + j], *b = a + sp;
                int big = abs(*a) > abs(*b) ? abs(*a) : abs(*b);
                int8_t *small = abs(*a) > abs(*b) ? b : a;
                if ((*a < 0) == (*b < 0) && abs(*a) + abs(*b) > 128)
                    *small = (int8_t)(*small < 0 ? big - 128 : 128 - big);
            }
    for (int64_t i = 0; i < ns; i++)
        t->ws[i] = 0.002f + 0.0005f * (float)(i % 5);
    for (int64_t i = 0; i < k->m; i++)
        t->b[i] = 0.05f * (float)(i % 9) - 0.2f;
    t->sx = 0.037f;
    t->zx = k->i8 ? (uint8_t)(int8_t)-9 : 117;
    int zdt = k->i8 ? QC_I8 : QC_U8;
    t->inits[0] = (qc_tensor){ .name = "sx", .dtype = QC_F32, .data = &t->sx };
    t->inits[1] = (qc_tensor){ .name = "zx", .dtype = zdt, .data = &t->zx };
    t->inits[2] = (qc_tensor){ .name = "wq", .dtype = QC_I8, .ndim = 4,
                               .dims = { k->m, k->c, k->kh, k->kw }, .data = t->wq };
    t->inits[3] = (qc_tensor){ .name = "ws", .dtype = QC_F32, .ndim = k->per_channel,
                               .dims = { k->m }, .data = t->ws };
    t->inits[4] = (qc_tensor){ .name = "zw", .dtype = QC_I8, .data = &t->zw };
    t->inits[5] = (qc_tensor){ .name = "b", .dtype = QC_F32, .ndim = 1, .dims = { k->m },
                               .data = t->b };
    ic_node(t, 0, "QuantizeLinear", 3, "x", "sx", "zx", "qx");
    ic_node(t, 1, "DequantizeLinear", 3, "qx", "sx", "zx", "dx");
    ic_node(t, 2, "DequantizeLinear", k->per_channel ? 2 : 3, "wq", "ws", "zw", "w");
    ic_node(t, 3, "Conv", 3, "dx", "w", "b", "y");
    for (int i = 0; i < 4; i++)
        t->pads[i] = i % 2 && k->kw == 1 ? 0 : k->pad;  /* [N, C, H, 1]: no padding along W */
    t->strides[0] = t->strides[1] = k->stride;
    t->dils[0] = t->dils[1] = k->dil;
    t->kshape[0] = k->kh, t->kshape[1] = k->kw;
    t->attrs[0] = (qc_attr){ .name = "pads", .type = QC_ATTR_INTS, .ints = t->pads, .n = 4 };
    t->attrs[1] = (qc_attr){ .name = "strides", .type = QC_ATTR_INTS, .ints = t->strides,
                             .n = 2 };
    t->attrs[2] = (qc_attr){ .name = "dilations", .type = QC_ATTR_INTS, .ints = t->dils,
                             .n = 2 };
    t->attrs[3] = (qc_attr){ .name = "kernel_shape", .type = QC_ATTR_INTS, .ints = t->kshape,
                             .n = 2 };
    t->attrs[4] = (qc_attr){ .name = "axis", .type = QC_ATTR_INT, .i = 0 };
    t->nodes[2].attrs = &t->attrs[4];
    t->nodes[2].n_attrs = 1;
    t->nodes[3].attrs = t->attrs;
    t->nodes[3].n_attrs = 4;
    t->in = (qc_value_info){ .name = "x", .dtype = QC_F32, .ndim = -1 };
    t->out = (qc_value_info){ .name = "y", .dtype = QC_F32, .ndim = -1 };
    t->m = (qc_model){ .path = "test", .opset = 13, .n_nodes = 4, .n_inputs = 1,
                       .n_outputs = 1, .n_inits = 6, .nodes = t->nodes, .inputs = &t->in,
                       .outputs = &t->out, .inits = t->inits };
}

/* y computed in double from the codes the Q gives x (round half to even, saturated) */
static double *ic_exact(const ic_case *k, const ic_model *t, const float *x, int64_t oh,
                        int64_t ow)
{
    double *y = malloc((size_t)(k->batch * k->m * oh * ow) * sizeof *y);
    int lo = k->i8 ? -128 : 0, hi = k->i8 ? 127 : 255, zx = k->i8 ? (int8_t)t->zx : t->zx;
    for (int64_t n = 0; n < k->batch; n++)
        for (int64_t m = 0; m < k->m; m++)
            for (int64_t p = 0; p < oh * ow; p++) {
                int64_t oy = p / ow, ox = p % ow;
                double s = 0;
                for (int64_t c = 0; c < k->c; c++)
                    for (int64_t a = 0; a < k->kh; a++)
                        for (int64_t b = 0; b < k->kw; b++) {
                            int64_t iy = oy * k->stride - k->pad + a * k->dil;
                            int64_t ix = ox * k->stride - (k->kw == 1 ? 0 : k->pad) +
                                         b * k->dil;
                            if (iy < 0 || iy >= k->ih || ix < 0 || ix >= k->iw)
                                continue;
                            float v = x[((n * k->c + c) * k->ih + iy) * k->iw + ix] / t->sx;
                            double q = nearbyint(v) + zx;
                            q = q < lo ? lo : q > hi ? hi : q;
                            s += (q - zx) * t->wq[((m * k->c + c) * k->kh + a) * k->kw + b];
                        }
                double sc = (double)t->sx * t->ws[k->per_channel ? m : 0];
                y[(n * k->m + m) * oh * ow + p] = s * sc + t->b[m];
            }
    return y;
}

/* mode: QC_ICONV for the integer run ("1": the CPU's best tiles, "avx2": never VNNI). */
static void ic_check(const ic_case *k, const char *mode)
{
    ic_model t;
    ic_build(&t, k);
    int64_t n = k->batch * k->c * k->ih * k->iw;
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t r = 3;
    for (int64_t i = 0; i < n; i++)     /* beyond the codes' range at both ends */
        x[i] = ((float)ic_rand(&r) / 16777216.0f - 0.5f) * 11.0f;
    qc_err err = { 0 };
    qc_tensor in = { .name = "x", .dtype = QC_F32, .ndim = 4,
                     .dims = { k->batch, k->c, k->ih, k->iw }, .data = x };
    qc_exec *xi = NULL, *xf = NULL;
    const qc_exec_opts o = { .cache_const = 1, .fuse_qdq = 1 };
    CHECK_OK(qc_exec_new(&xi, &t.m, &o, &err));
    setenv("QC_ICONV", "0", 1);
    CHECK_OK(qc_exec_new(&xf, &t.m, &o, &err));
    for (int run = 0; xi && xf && run < 2; run++) {      /* the second with packed weights */
        setenv("QC_ICONV", mode, 1);
        CHECK_OK(qc_exec_run(xi, &in, 1, &err));
        setenv("QC_ICONV", "0", 1);
        CHECK_OK(qc_exec_run(xf, &in, 1, &err));
        const qc_tensor *yi = qc_exec_output(xi, 0), *yf = qc_exec_output(xf, 0);
        if (!yi || !yf || yi->ndim != 4) {
            qc_test_fail(__FILE__, __LINE__, "%s: no output", k->what);
            break;
        }
        double *e = ic_exact(k, &t, x, yi->dims[2], yi->dims[3]);
        const float *a = yi->data, *b = yf->data;
        int64_t differ = 0, len = qc_tensor_numel(yi);
        double worst_i = 0, worst_f = 0, mag = 0;
        for (int64_t i = 0; i < len; i++)
            mag = fmax(mag, fabs(e[i]));
        for (int64_t i = 0; i < len; i++) {
            worst_i = fmax(worst_i, fabs(a[i] - e[i]) / mag);
            worst_f = fmax(worst_f, fabs(b[i] - e[i]) / mag);
            differ += a[i] != b[i];
        }
        /* relative to the largest output: integer, the exact sum then two or three roundings
         * (a few 2^-24); float, one rounding per product */
        if (!(worst_i < 5e-7) || !(worst_f < 1e-4))
            qc_test_fail(__FILE__, __LINE__, "%s: relative error %.3g (integer), %.3g (float)",
                         k->what, worst_i, worst_f);
        __builtin_cpu_init();
        int vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                   strcmp(mode, "avx2") != 0;
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        int integer = vnni || (avx2 && k->fit);
        if (integer && k->stride <= 2 && !differ)   /* the integer path did not run */
            qc_test_fail(__FILE__, __LINE__, "%s (%s): the same bits as the float path",
                         k->what, mode);
        if (!integer && differ)     /* pairs that do not fit must take the float path */
            qc_test_fail(__FILE__, __LINE__, "%s (%s): %lld values differ from the float "
                         "path", k->what, mode, (long long)differ);
        free(e);
    }
    unsetenv("QC_ICONV");
    qc_exec_free(xi);
    qc_exec_free(xf);
    free(x);
    free(t.wq);
    free(t.ws);
    free(t.b);
}

QC_TEST(iconv_matches_exact)
{
    static const ic_case cases[] = {
        { "3x3 pad 1, 6 -> 40 ch", 1, 6, 40, 3, 3, 11, 13, 1, 1, 1, 0, 1, 0 },
        { "1x1, 24 -> 20 ch, int8 codes", 1, 24, 20, 1, 1, 9, 7, 1, 0, 1, 1, 1, 0 },
        { "1x1 on a 24x24 plane, 35 -> 70 ch", 1, 35, 70, 1, 1, 24, 24, 1, 0, 1, 0, 1, 0 },
        { "3x3 stride 2, 5 -> 33 ch, per tensor", 2, 5, 33, 3, 3, 17, 16, 2, 1, 1, 0, 0, 0 },
        { "3x3 dilation 2, 16 -> 16 ch", 1, 16, 16, 3, 3, 14, 15, 1, 2, 2, 1, 1, 0 },
        { "5x1 (1-D along H), 7 -> 64 ch", 1, 7, 64, 5, 1, 40, 1, 1, 2, 1, 0, 1, 0 },
        { "2x3 no padding, 3 -> 9 ch", 1, 3, 9, 2, 3, 8, 30, 1, 0, 1, 0, 1, 0 },
        /* weights that fit the AVX2 tiles: 16-channel panels, 1-vector tails, 4-5 positions */
        { "fit: 3x3 pad 1, 6 -> 40 ch", 1, 6, 40, 3, 3, 11, 13, 1, 1, 1, 0, 1, 1 },
        { "fit: 3x3 stride 2, 5 -> 33 ch, per tensor", 2, 5, 33, 3, 3, 17, 16, 2, 1, 1, 0, 0,
          1 },
        { "fit: 1x1, 24 -> 20 ch, int8 codes", 1, 24, 20, 1, 1, 9, 7, 1, 0, 1, 1, 1, 1 },
        { "fit: 1x1 on a 24x24 plane, 35 -> 70 ch", 1, 35, 70, 1, 1, 24, 24, 1, 0, 1, 0, 1, 1 },
        { "fit: 3x3 dilation 2, 16 -> 8 ch", 1, 16, 8, 3, 3, 14, 15, 1, 2, 2, 1, 1, 1 },
        { "fit: 3x3, 13 -> 16 ch on a 4-wide row", 1, 13, 16, 3, 3, 9, 4, 1, 1, 1, 0, 1, 1 },
        { "fit: 5x1 (1-D along H), 7 -> 64 ch", 1, 7, 64, 5, 1, 40, 1, 1, 2, 1, 0, 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ic_check(&cases[i], "1");
        ic_check(&cases[i], "avx2");
    }
}
