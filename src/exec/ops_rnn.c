/* Recurrent layers: RNN, GRU, LSTM (opset 7; layout from opset 14), float32. The input
 * projection X * W^T + biases is one matrix product over every time step; each step then
 * adds H(t-1) * R^T (a small product) and applies the gates. Directions forward, reverse and
 * bidirectional; sequence_lens (steps past a sequence's length give zeros and keep its last
 * state; reverse runs from its last valid step); clip; LSTM peepholes and input_forget; GRU
 * linear_before_reset; every activation of the spec with its alpha / beta. Gate orders are
 * ONNX's: LSTM i, o, f, c; GRU z, r, h. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include "ops.h"

enum { K_RNN, K_GRU, K_LSTM };
enum { A_SIGMOID, A_TANH, A_RELU, A_AFFINE, A_LEAKY, A_THRESH, A_SCALEDTANH, A_HARDSIG,
       A_ELU, A_SOFTSIGN, A_SOFTPLUS };

typedef struct act_fn {
    int   kind;
    float alpha, beta;
} act_fn;

/* What a node asks for, from its attributes and input shapes. */
typedef struct rnn_geom {
    int     kind, dirs, reverse_only, layout, input_forget, lbr;
    int64_t S, B, I, H, G;              /* steps, batch, input size, hidden size, gates */
    float   clip;                       /* <= 0: none */
    act_fn  act[2][3];                  /* per direction: f, g, h (as many as the kind uses) */
} rnn_geom;

static const struct {
    const char *name;
    int         kind, uses_alpha, uses_beta;
    float       alpha, beta;
} act_names[] = {
    { "Sigmoid", A_SIGMOID, 0, 0, 0, 0 },       { "Tanh", A_TANH, 0, 0, 0, 0 },
    { "Relu", A_RELU, 0, 0, 0, 0 },             { "Affine", A_AFFINE, 1, 1, 1.0f, 0.0f },
    { "LeakyRelu", A_LEAKY, 1, 0, 0.01f, 0 },   { "ThresholdedRelu", A_THRESH, 1, 0, 1.0f, 0 },
    { "ScaledTanh", A_SCALEDTANH, 1, 1, 1.0f, 1.0f },
    { "HardSigmoid", A_HARDSIG, 1, 1, 0.2f, 0.5f },
    { "Elu", A_ELU, 1, 0, 1.0f, 0 },            { "Softsign", A_SOFTSIGN, 0, 0, 0, 0 },
    { "Softplus", A_SOFTPLUS, 0, 0, 0, 0 },
};

static inline float act(const act_fn *a, float x)
{
    switch (a->kind) {
    case A_SIGMOID:    return 1.0f / (1.0f + expf(-x));
    case A_TANH:       return tanhf(x);
    case A_RELU:       return x > 0.0f ? x : 0.0f;
    case A_AFFINE:     return a->alpha * x + a->beta;
    case A_LEAKY:      return x >= 0.0f ? x : a->alpha * x;
    case A_THRESH:     return x > a->alpha ? x : 0.0f;
    case A_SCALEDTANH: return a->alpha * tanhf(a->beta * x);
    case A_HARDSIG:    return fmaxf(0.0f, fminf(1.0f, a->alpha * x + a->beta));
    case A_ELU:        return x >= 0.0f ? x : a->alpha * (expf(x) - 1.0f);
    case A_SOFTSIGN:   return x / (1.0f + fabsf(x));
    default:           return x > 20.0f ? x : log1pf(expf(x));       /* Softplus */
    }
}

static int kind_of(const qc_knode *n)
{
    const char *op = n->node->op_type;
    return !strcmp(op, "LSTM") ? K_LSTM : !strcmp(op, "GRU") ? K_GRU : K_RNN;
}

/* The activations attribute (names, alpha / beta consumed in order by those that take them)
 * or the kind's defaults. */
static int parse_acts(const qc_knode *n, rnn_geom *g, qc_err *err)
{
    static const int n_per[3] = { 1, 2, 3 };
    static const int defaults[3][3] = { { A_TANH }, { A_SIGMOID, A_TANH },
                                        { A_SIGMOID, A_TANH, A_TANH } };
    int per = n_per[g->kind];
    const qc_attr *a = qc_attr_find(n->node, "activations");
    int64_t n_alpha = 0, n_beta = 0, ia = 0, ib = 0;
    const float *alpha = qc_attr_floats(n->node, "activation_alpha", &n_alpha);
    const float *beta = qc_attr_floats(n->node, "activation_beta", &n_beta);
    int given = a && a->strings ? (int)a->n : 0;
    if (given && given != per && given != per * g->dirs)
        return qc_node_errf(n, err, QC_EINPUT, "%d activations given; %s takes %d a direction",
                            given, n->node->op_type, per);
    for (int d = 0; d < g->dirs; d++)
        for (int k = 0; k < per; k++) {
            act_fn *f = &g->act[d][k];
            if (!given) {
                f->kind = defaults[g->kind][k];
                continue;
            }
            const char *name = a->strings[(d * per + k) % given];
            size_t j = 0;
            while (j < sizeof act_names / sizeof *act_names &&
                   strcasecmp(act_names[j].name, name) != 0)
                j++;
            if (j == sizeof act_names / sizeof *act_names)
                return qc_node_errf(n, err, QC_EUNSUPPORTED, "activation '%s' is not one of "
                                    "the spec's", name);
            f->kind = act_names[j].kind;
            f->alpha = act_names[j].uses_alpha && ia < n_alpha ? alpha[ia++] : act_names[j].alpha;
            f->beta = act_names[j].uses_beta && ib < n_beta ? beta[ib++] : act_names[j].beta;
        }
    return QC_OK;
}

static int need_f32(const qc_knode *n, int i, int ndim, const int64_t *dims, qc_err *err)
{
    const qc_tensor *t = qc_opt_in(n, i);
    if (!t)
        return QC_OK;
    if (t->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "input %d is %s; only float32 is "
                            "supported", i, qc_dtype_name(t->dtype));
    if (t->ndim != ndim)
        return qc_node_errf(n, err, QC_ESHAPE, "input %d has rank %d, expected %d", i, t->ndim,
                            ndim);
    for (int d = 0; d < ndim; d++)
        if (dims[d] >= 0 && t->dims[d] != dims[d])
            return qc_node_errf(n, err, QC_ESHAPE, "input %d: dim %d is %lld, expected %lld", i,
                                d, (long long)t->dims[d], (long long)dims[d]);
    return QC_OK;
}

static int geom_of(const qc_knode *n, rnn_geom *g, qc_err *err)
{
    memset(g, 0, sizeof *g);
    g->kind = kind_of(n);
    g->G = g->kind == K_LSTM ? 4 : g->kind == K_GRU ? 3 : 1;
    const char *dir = qc_attr_str(n->node, "direction", "forward");
    g->dirs = !strcmp(dir, "bidirectional") ? 2 : 1;
    g->reverse_only = !strcmp(dir, "reverse");
    if (g->dirs == 1 && !g->reverse_only && strcmp(dir, "forward") != 0)
        return qc_node_errf(n, err, QC_EINPUT, "direction '%s' is not forward, reverse or "
                            "bidirectional", dir);
    g->layout = n->opset >= 14 ? (int)qc_attr_int(n->node, "layout", 0) : 0;
    g->input_forget = (int)qc_attr_int(n->node, "input_forget", 0);
    g->lbr = (int)qc_attr_int(n->node, "linear_before_reset", 0);
    g->clip = qc_attr_find(n->node, "clip") ? qc_attr_float(n->node, "clip", 0.0f) : 0.0f;
    const qc_tensor *x = qc_opt_in(n, 0), *w = qc_opt_in(n, 1), *r = qc_opt_in(n, 2);
    if (!x || !w || !r)
        return qc_node_errf(n, err, QC_EINPUT, "needs X, W and R");
    if (x->ndim != 3 || w->ndim != 3)
        return qc_node_errf(n, err, QC_ESHAPE, "X and W must be 3-D (got ranks %d and %d)",
                            x->ndim, w->ndim);
    g->S = x->dims[g->layout ? 1 : 0];
    g->B = x->dims[g->layout ? 0 : 1];
    g->I = x->dims[2];
    g->H = qc_attr_int(n->node, "hidden_size", w->dims[1] / g->G);
    if (g->H <= 0 || g->H > w->dims[1] || w->dims[1] != g->G * g->H)
        return qc_node_errf(n, err, QC_ESHAPE, "W has %lld rows, expected %lld gates x hidden "
                            "size %lld", (long long)w->dims[1], (long long)g->G,
                            (long long)g->H);
    int64_t D = g->dirs, GH = g->G * g->H, rows_w[3] = { D, GH, g->I }, rows_r[3] = { D, GH, g->H };
    int64_t bd[2] = { D, 2 * GH }, sl[1] = { g->B }, p[2] = { D, 3 * g->H };
    int64_t st[3] = { g->layout ? g->B : D, g->layout ? D : g->B, g->H };
    int rc;
    if ((rc = need_f32(n, 0, 3, (int64_t[3]){ -1, -1, -1 }, err)) != QC_OK ||
        (rc = need_f32(n, 1, 3, rows_w, err)) != QC_OK ||
        (rc = need_f32(n, 2, 3, rows_r, err)) != QC_OK ||
        (rc = need_f32(n, 3, 2, bd, err)) != QC_OK ||
        (rc = need_f32(n, 5, 3, st, err)) != QC_OK ||
        (g->kind == K_LSTM && ((rc = need_f32(n, 6, 3, st, err)) != QC_OK ||
                               (rc = need_f32(n, 7, 2, p, err)) != QC_OK)))
        return rc;
    const qc_tensor *lens = qc_opt_in(n, 4);
    if (lens && (lens->dtype != QC_I32 || lens->ndim != 1 || lens->dims[0] != sl[0]))
        return qc_node_errf(n, err, QC_ESHAPE, "sequence_lens must be int32 [%lld]",
                            (long long)g->B);
    return parse_acts(n, g, err);
}

static int rnn_infer(qc_knode *n, qc_err *err)
{
    rnn_geom g;
    int rc = geom_of(n, &g, err);
    if (rc != QC_OK)
        return rc;
    int64_t D = g.dirs;
    int64_t y[4] = { g.S, D, g.B, g.H }, yl[4] = { g.B, g.S, D, g.H };
    int64_t s[3] = { D, g.B, g.H }, sl[3] = { g.B, D, g.H };
    for (int i = 0; i < n->n_out && i < 3; i++)
        if (n->out[i])
            qc_set_shape(n->out[i], QC_F32, i ? 3 : 4, i ? (g.layout ? sl : s) : (g.layout ? yl : y));
    return QC_OK;
}

static inline float clipped(const rnn_geom *g, float v)
{
    return g->clip > 0.0f ? fminf(g->clip, fmaxf(-g->clip, v)) : v;
}

/* The input projection of batch row b at `step` of a direction (backward: from its last
 * valid step), NULL past the row's sequence length. */
static const float *step_row(const rnn_geom *g, const float *xw, const int32_t *lens,
                             int backward, int64_t b, int64_t step, int64_t *t)
{
    int64_t len = lens ? lens[b] : g->S;
    if (step >= len)
        return NULL;
    *t = backward ? len - 1 - step : step;
    return xw + (g->layout ? b * g->S + *t : *t * g->B + b) * g->G * g->H;
}

/* One direction d over every step. xw: X * W^T + Wb (+ Rb except GRU's h gate) for every
 * row of X ([S*B or B*S][G*H]); h, c: the state [B][H], updated in place; gates: [B][G*H];
 * rh: GRU's r * H(t-1) [B][H]. Writes Y (if any). */
static void run_dir(const rnn_geom *g, int d, int backward, const float *xw, const float *R,
                    const float *rb, const float *P, const int32_t *lens, float *h, float *c,
                    float *gates, float *rh, float *Y)
{
    int64_t B = g->B, H = g->H, GH = g->G * H, S = g->S, D = g->dirs;
    const act_fn *f = &g->act[d][0], *gg = &g->act[d][1], *hh = &g->act[d][2];
    for (int64_t step = 0; step < S; step++) {
        /* gates = H(t-1) * R^T; for GRU without linear_before_reset the h gate's product
         * waits for r */
        int64_t ng = g->kind == K_GRU && !g->lbr ? 2 * H : GH;
        qc_sgemm(0, 1, B, ng, H, 1.0f, h, H, R, H, 0.0f, gates, GH);
        for (int64_t b = 0; b < B; b++) {
            int64_t t;
            const float *xr = step_row(g, xw, lens, backward, b, step, &t);
            if (!xr)
                continue;
            float *gr = gates + b * GH, *hb = h + b * H;
            if (g->kind == K_RNN) {
                for (int64_t j = 0; j < H; j++)
                    hb[j] = act(f, clipped(g, xr[j] + gr[j]));
            } else if (g->kind == K_GRU) {
                for (int64_t j = 0; j < 2 * H; j++)         /* z, r */
                    gr[j] = act(f, clipped(g, xr[j] + gr[j]));
                if (!g->lbr)
                    for (int64_t j = 0; j < H; j++)
                        rh[b * H + j] = gr[H + j] * hb[j];
            } else {
                float *cb = c + b * H;
                for (int64_t j = 0; j < H; j++) {
                    float gi = xr[j] + gr[j], go = xr[H + j] + gr[H + j];
                    float gf = xr[2 * H + j] + gr[2 * H + j], gc = xr[3 * H + j] + gr[3 * H + j];
                    if (P) {
                        gi += P[j] * cb[j];
                        gf += P[2 * H + j] * cb[j];
                    }
                    float i_ = act(f, clipped(g, gi));
                    float f_ = g->input_forget ? 1.0f - i_ : act(f, clipped(g, gf));
                    float c_ = act(gg, clipped(g, gc));
                    cb[j] = f_ * cb[j] + i_ * c_;
                    if (P)
                        go += P[H + j] * cb[j];
                    hb[j] = act(f, clipped(g, go)) * act(hh, cb[j]);
                }
            }
        }
        if (g->kind == K_GRU) {
            if (!g->lbr)            /* (r * H(t-1)) * Rh^T */
                qc_sgemm(0, 1, B, H, H, 1.0f, rh, H, R + 2 * H * H, H, 0.0f, gates + 2 * H, GH);
            for (int64_t b = 0; b < B; b++) {
                int64_t t;
                const float *xr = step_row(g, xw, lens, backward, b, step, &t);
                if (!xr)
                    continue;
                float *gr = gates + b * GH, *hb = h + b * H;
                for (int64_t j = 0; j < H; j++) {
                    /* the h gate's recurrent bias rides inside the reset with lbr */
                    float hr = g->lbr ? gr[H + j] * (gr[2 * H + j] + rb[2 * H + j])
                                      : gr[2 * H + j] + rb[2 * H + j];
                    float ht = act(gg, clipped(g, xr[2 * H + j] + hr));
                    hb[j] = (1.0f - gr[j]) * ht + gr[j] * hb[j];
                }
            }
        }
        for (int64_t b = 0; Y && b < B; b++) {
            int64_t t;
            if (!step_row(g, xw, lens, backward, b, step, &t))
                continue;
            float *yr = Y + (g->layout ? (b * S + t) * D + d : (t * D + d) * B + b) * H;
            memcpy(yr, h + b * H, (size_t)H * sizeof *yr);
        }
    }
}

static int rnn_run(qc_knode *n, qc_run *r, qc_err *err)
{
    rnn_geom g;
    int rc = geom_of(n, &g, err);
    if (rc != QC_OK)
        return rc;
    const qc_tensor *lens_t = qc_opt_in(n, 4);
    const int32_t *lens = lens_t ? lens_t->data : NULL;
    for (int64_t b = 0; lens && b < g.B; b++)
        if (lens[b] < 0 || lens[b] > g.S)
            return qc_node_errf(n, err, QC_EINPUT, "sequence_lens[%lld] = %d, outside 0..%lld",
                                (long long)b, lens[b], (long long)g.S);
    int64_t H = g.H, B = g.B, GH = g.G * H, rows = g.S * g.B, D = g.dirs;
    size_t floats = (size_t)(rows * GH + B * GH + 3 * B * H + 2 * GH);
    float *s = qc_run_scratch(r, floats * sizeof(float), err);
    if (!s)
        return err && err->code ? err->code : QC_ENOMEM;
    float *xw = s, *gates = xw + rows * GH, *h = gates + B * GH, *c = h + B * H, *rh = c + B * H;
    float *bias = rh + B * H, *rbias = bias + GH;
    float *Y = n->n_out > 0 && n->out[0] ? n->out[0]->data : NULL;
    float *Yh = n->n_out > 1 && n->out[1] ? n->out[1]->data : NULL;
    float *Yc = n->n_out > 2 && n->out[2] ? n->out[2]->data : NULL;
    if (Y)
        memset(Y, 0, (size_t)(g.S * D * B * H) * sizeof *Y);
    const qc_tensor *Bt = qc_opt_in(n, 3), *h0 = qc_opt_in(n, 5);
    const qc_tensor *c0 = g.kind == K_LSTM ? qc_opt_in(n, 6) : NULL;
    const qc_tensor *Pt = g.kind == K_LSTM ? qc_opt_in(n, 7) : NULL;
    for (int d = 0; d < D; d++) {
        const float *W = (const float *)n->in[1]->data + d * GH * g.I;
        const float *R = (const float *)n->in[2]->data + d * GH * H;
        for (int64_t j = 0; j < GH; j++) {
            const float *bd = Bt ? (const float *)Bt->data + d * 2 * GH : NULL;
            rbias[j] = bd ? bd[GH + j] : 0.0f;
            /* GRU's h gate keeps its recurrent bias apart (it meets r first) */
            bias[j] = (bd ? bd[j] : 0.0f) + (g.kind == K_GRU && j >= 2 * H ? 0.0f : rbias[j]);
        }
        for (int64_t i = 0; i < rows; i++)
            memcpy(xw + i * GH, bias, (size_t)GH * sizeof *xw);
        qc_sgemm(0, 1, rows, GH, g.I, 1.0f, n->in[0]->data, g.I, W, g.I, 1.0f, xw, GH);
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++) {
                int64_t at = (g.layout ? b * D + d : d * B + b) * H + j;
                h[b * H + j] = h0 ? ((const float *)h0->data)[at] : 0.0f;
                c[b * H + j] = c0 ? ((const float *)c0->data)[at] : 0.0f;
            }
        run_dir(&g, d, d == 1 || g.reverse_only, xw, R, rbias,
                Pt ? (const float *)Pt->data + d * 3 * H : NULL, lens, h, c, gates, rh, Y);
        for (int64_t b = 0; b < B; b++) {
            int64_t at = (g.layout ? b * D + d : d * B + b) * H;
            if (Yh)
                memcpy(Yh + at, h + b * H, (size_t)H * sizeof *Yh);
            if (Yc)
                memcpy(Yc + at, c + b * H, (size_t)H * sizeof *Yc);
        }
    }
    return QC_OK;
}

const qc_op_def qc_ops_rnn[] = {
    { "RNN", 7, rnn_infer, rnn_run, NULL, NULL, NULL },
    { "GRU", 7, rnn_infer, rnn_run, NULL, NULL, NULL },
    { "LSTM", 7, rnn_infer, rnn_run, NULL, NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL, NULL },
};
