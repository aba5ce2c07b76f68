/* calibrate doctor, the checks: statistics and evaluation results -> ranked findings.
 *
 * Impact scores order findings within a severity: causes (data, ranges, model) come before
 * the symptoms they produce (output errors), and within a check the larger effect first. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "doctor_priv.h"
#include "qc_io.h"
#include "quant_priv.h"

/* Thresholds (documented in the usage text of `calibrate doctor`). */
#define FEW_SAMPLES        8       /* fewer calibration samples than this: unreliable */
#define HALF_DIFF          0.25    /* ranges of the two halves differ by > 25% of the range */
#define OUTLIER_RATIO      8.0     /* max |x| / 99.99th percentile of |x| */
#define OUTLIER_LEVELS     16.0    /* ... and the bulk gets fewer levels than this */
#define IMBALANCE_RATIO    8.0     /* channel absmax / median channel absmax */
#define SATURATION         0.01    /* fraction of eval values outside the quantized range */
#define HEAD_LEVELS        8.0     /* a Concat input spread over fewer levels: collapsed */
#define SHIFT_MEAN         0.5     /* |mean_calib - mean_eval| / std_calib */
#define SHIFT_STD          2.0     /* std ratio either way */
#define SWAP_DIST          0.2     /* colour balance of calib vs eval differs by > 0.2 std */
#define SWAP_GAIN          2.5     /* ... and 2.5x less with eval channels 0 and 2 swapped */

static const char *node_name(const qc_doctor *d, int i)
{
    return i >= 0 && i < d->m->n_nodes ? d->m->nodes[i].name : "(graph input)";
}

/* Levels of scale `s` spanning [lo, hi]. */
static double levels(double lo, double hi, double s)
{
    return s > 0 ? (hi - lo) / s : INFINITY;
}

/* ---- 1. data ---- */

static int is_movement(const char *op)
{
    static const char *const ops[] = { "Slice", "Concat", "Reshape", "Transpose", "Pad",
                                       "Resize", "Identity", "Cast", "Split", "Unsqueeze",
                                       "Squeeze", "Flatten", "Upsample", "SpaceToDepth",
                                       "DepthToSpace", NULL };
    for (int i = 0; ops[i]; i++)
        if (!strcmp(op, ops[i]))
            return 1;
    return 0;
}

/* The first Conv/Gemm/MatMul reading input `name` through data movement only; -1 if none or
 * if an arithmetic op with a constant operand (a normalization) comes first. */
static int first_layer(const qc_doctor *d, const char *name, int depth)
{
    const qc_model *m = d->m;
    if (depth > 8)
        return -1;
    for (int r = 0, i, prev = -1; (i = qc_model_reader(m, name, r)) >= 0; prev = i, r++) {
        const qc_node *nd = &m->nodes[i];
        if (i == prev)                  /* a node reading it twice */
            continue;
        if (!strcmp(nd->op_type, "Conv") || !strcmp(nd->op_type, "Gemm") ||
            !strcmp(nd->op_type, "MatMul"))
            return i;
        if (is_movement(nd->op_type) && nd->n_outputs > 0) {
            int r = first_layer(d, nd->outputs[0], depth + 1);
            if (r >= 0)
                return r;
        }
    }
    return -1;
}

/* Colour balance of a 3-channel input: channel means 0 and 2 relative to channel 1, calibration
 * vs held-out, in units of the calibration std, as they are (*as_is) and with the held-out
 * channels 0 and 2 swapped. Relative to channel 1 so that a brightness change between the two
 * sets cancels: on 32 + 32 photos it moves every channel mean by 0.2-0.3 std. */
static int channel_distance(const dinput *s, double mc[3], double me[3], double *as_is,
                            double *swapped)
{
    double var = 0;
    if (s->chan_axis <= 0 || s->cn[0] < 2 || s->cn[1] < 2)
        return 0;
    for (int c = 0; c < 3; c++) {
        mc[c] = s->csum[0][c] / (double)s->cn[0];
        me[c] = s->csum[1][c] / (double)s->cn[1];
        var += fmax(s->csum2[0][c] / (double)s->cn[0] - mc[c] * mc[c], 0) / 3;
    }
    double u = fmax(sqrt(var), 1e-12);
    double c0 = mc[0] - mc[1], c2 = mc[2] - mc[1], e0 = me[0] - me[1], e2 = me[2] - me[1];
    *as_is = (fabs(c0 - e0) + fabs(c2 - e2)) / u;
    *swapped = (fabs(c0 - e2) + fabs(c2 - e0)) / u;
    return 1;
}

static void check_data(qc_doctor *d)
{
    const qc_model *m = d->m;
    for (int i = 0; i < d->n_nf; i++)
        qc_dr_add(d, QC_SEV_ERROR, "data.nonfinite", 1000 + (double)d->nf[i].count,
                  d->nf[i].name, "clean or remove the sample (it was skipped; --strict makes "
                  "this fatal)", "%lld NaN/Inf values in a calibration sample (%d of %d samples "
                  "affected, %lld values in all)", (long long)d->nf[i].count, d->n_skipped,
                  d->n_skipped + d->n_used, (long long)d->nf_total);
    for (int i = 0; i < m->n_inputs; i++) {
        const dinput *s = &d->in[i];
        const char *name = m->inputs[i].name;
        if (s->samples == 0)
            continue;
        if (s->const_samples == s->samples)
            qc_dr_add(d, QC_SEV_ERROR, "data.constant-input", 850, name, "check the data "
                      "loader: each sample holds one repeated value",
                      "every calibration sample of this input is constant (%d of %d; last "
                      "value %g): ranges reflect no real input", s->const_samples, s->samples,
                      (double)s->const_value);
        /* raw 0..255 pixels: integer values up to 255, and a first layer that does not scale
         * them down (a model trained on raw pixels has small first-layer gains) */
        if (!s->nonint && s->lo >= 0 && s->hi > 32 && s->hi <= 255) {
            int fl = first_layer(d, name, 0);
            const dstat *o = fl >= 0 ? qc_dr_stat(d, m->nodes[fl].outputs[0]) : NULL;
            if (o && o->count > 0) {
                double gain = fmax(fabs(o->lo), fabs(o->hi)) / s->hi;
                if (gain > 0.5)
                    qc_dr_add(d, QC_SEV_ERROR, "data.raw-pixels", 800, name, "scale the data "
                              "as in training: --scale 1/255 (images; add --mean/--std if the "
                              "model was trained normalized) or divide the .npy data by 255",
                              "input values are integers in [%g, %g] (raw pixels?) and the "
                              "first layer '%s' amplifies them (output up to %.3g, gain %.2g): "
                              "the model expects normalized input", (double)s->lo,
                              (double)s->hi, m->nodes[fl].name,
                              fmax(fabs(o->lo), fabs(o->hi)), gain);
            }
        }
        if (s->esamples > 0 && s->n > 1 && s->en > 1) {
            double mc = s->sum / s->n, me = s->esum / s->en;
            double sc = sqrt(fmax(s->sum2 / s->n - mc * mc, 0));
            double se = sqrt(fmax(s->esum2 / s->en - me * me, 0));
            double dm = fabs(mc - me) / fmax(sc, 1e-12);
            double r = se > sc ? se / fmax(sc, 1e-12) : sc / fmax(se, 1e-12);
            if (dm > SHIFT_MEAN || r > SHIFT_STD)
                qc_dr_add(d, QC_SEV_WARNING, "data.shift", 700 + dm + r, name, "calibrate on "
                          "samples like the deployment data (same source and preprocessing)",
                          "calibration mean %.4g std %.4g, eval mean %.4g std %.4g (mean moved "
                          "%.2f std, std ratio %.2f)", mc, sc, me, se, dm, r);
        }
    }
    /* RGB vs BGR: the held-out colour balance matches the calibration's much better with
     * channels 0 and 2 swapped (whole-input moments, data.shift, do not see it) */
    for (int i = 0; i < m->n_inputs; i++) {
        double mc[3], me[3], d0, d1;
        if (!channel_distance(&d->in[i], mc, me, &d0, &d1) || !(d0 > SWAP_DIST) ||
            !(d1 * SWAP_GAIN < d0))
            continue;
        qc_dr_add(d, QC_SEV_WARNING, "data.channel-order", 750 + d0, m->inputs[i].name,
                  "the two sets use opposite channel orders (RGB vs BGR): re-export one in the "
                  "deployment order (--channels rgb|bgr when loading images)", "channel means "
                  "calibration (%.3g, %.3g, %.3g), eval (%.3g, %.3g, %.3g): colour balance "
                  "(channels 0, 2 minus 1) differs by %.2f std as is, %.2f std swapped (%s)",
                  mc[0], mc[1], mc[2], me[0], me[1], me[2], d0, d1,
                  d->in[i].chan_axis == 1 ? "NCHW" : "NHWC");
    }
    /* range stability: even vs odd samples */
    int n_t = 0, n_bad = 0;
    double worst = 0;
    const char *worst_name = NULL;
    qc_qtensor_info info;
    for (int i = 0; d->qm && i < qc_quantizer_n_tensors(d->q); i++) {
        if (!qc_quantizer_tensor(d->q, i, &info) || strcmp(info.kind, "activation"))
            continue;
        const dstat *s = qc_dr_stat(d, info.name);
        if (!s || s->count == 0 || !(s->hi > s->lo) || !isfinite(s->hlo[1]))
            continue;
        /* a rare outlier moves one half's range: reported as an outlier, not as this */
        double p = qc_dr_abs_quantile(s, 0.9999);
        if (p > 0 && fmax(fabs(s->lo), fabs(s->hi)) / p > OUTLIER_RATIO)
            continue;
        double diff = fmax(fabs(s->hlo[0] - s->hlo[1]), fabs(s->hhi[0] - s->hhi[1])) /
                      (s->hi - s->lo);
        n_t++;
        n_bad += diff > HALF_DIFF;
        if (diff > worst)
            worst = diff, worst_name = s->name;
    }
    if (d->n_used > 0 && (d->n_used < FEW_SAMPLES || (n_t > 0 && n_bad * 2 > n_t)))
        qc_dr_add(d, QC_SEV_WARNING, "data.few-samples", d->n_used < FEW_SAMPLES ? 800 : 400,
                  d->n_used < FEW_SAMPLES ?
                  "calibration set" : worst_name, "calibrate on more representative samples "
                  "(32 or more)", "%d calibration sample%s; ranges from the even and odd "
                  "samples differ by > %.0f%% on %d of %d tensors (worst %.0f%%%s%s)",
                  d->n_used, d->n_used == 1 ? "" : "s", HALF_DIFF * 100, n_bad, n_t,
                  worst * 100, worst_name ? ", " : "", worst_name ? worst_name : "");
}

/* ---- 2. ranges ---- */

/* dep[i]: node i's outputs depend on the input data (not only on initializers and shapes). */
static signed char *data_dependence(const qc_doctor *d)
{
    const qc_model *m = d->m;
    signed char *dep = calloc((size_t)m->n_nodes + 1, 1);
    qc_strmap prod;
    if (!dep || qc_strmap_init(&prod, (size_t)m->n_nodes * 2 + 16) != 0) {
        free(dep);
        return NULL;
    }
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_outputs; k++)
            if (m->nodes[i].outputs[k][0])
                qc_strmap_put(&prod, m->nodes[i].outputs[k], i);
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < m->n_nodes; i++) {
            const qc_node *nd = &m->nodes[i];
            if (dep[i] || !strcmp(nd->op_type, "Shape") || !strcmp(nd->op_type, "Size"))
                continue;
            for (int k = 0; k < nd->n_inputs && !dep[i]; k++) {
                if (!nd->inputs[k][0])
                    continue;
                int p = qc_strmap_get(&prod, nd->inputs[k]);
                for (int g = 0; p < 0 && g < m->n_inputs; g++)
                    dep[i] |= !strcmp(m->inputs[g].name, nd->inputs[k]);
                if (p >= 0 && dep[p])
                    dep[i] = 1;
            }
            changed |= dep[i];
        }
    }
    qc_strmap_free(&prod);
    return dep;
}

static void check_ranges(qc_doctor *d)
{
    qc_qtensor_info info;
    int n_one = 0;
    const char *first_one = NULL;
    double wasted = 0;
    signed char *dep = data_dependence(d);
    for (int i = 0; d->qm && i < qc_quantizer_n_tensors(d->q); i++) {
        if (!qc_quantizer_tensor(d->q, i, &info) || strcmp(info.kind, "activation") ||
            info.shared_with)
            continue;
        const dstat *s = qc_dr_stat(d, info.name);
        if (!s || s->count == 0)
            continue;
        /* computed from shapes and constants only (anchor grids, strides): constant by design */
        if (dep && s->producer >= 0 && !dep[s->producer])
            continue;
        const char *node = node_name(d, s->producer);
        double olo = info.obs_lo[0], ohi = info.obs_hi[0], sc = info.scale[0];
        double qlo, qhi;
        qc_dr_dtype_range(info.dtype, &qlo, &qhi);
        double clo = (qlo - info.zero_point[0]) * sc, chi = (qhi - info.zero_point[0]) * sc;
        char fix[200];
        if (ohi - olo <= 1e-6 * fmax(1.0, fmax(fabs(olo), fabs(ohi)))) {
            snprintf(fix, sizeof fix, "a dead branch or data that never exercises it: check "
                     "the data, or --exclude %s", node);
            qc_dr_add(d, QC_SEV_WARNING, "range.zero-width", 600, info.name, fix,
                      "constant %g over all %d calibration samples (node '%s'): zero-width "
                      "range, the scale falls back to %g", olo, d->n_used, node, sc);
            continue;
        }
        /* outliers: the bulk (99.99%% of |x|) gets few of the levels */
        double p = qc_dr_abs_quantile(s, 0.9999);
        double amax = fmax(fabs(info.lo[0]), fabs(info.hi[0]));
        if (p > 0 && amax / p > OUTLIER_RATIO) {
            double blo = fmax(info.lo[0], -p), bhi = fmin(info.hi[0], p);
            double lv = levels(fmin(blo, 0), fmax(bhi, 0), sc);
            if (lv < OUTLIER_LEVELS)
                qc_dr_add(d, QC_SEV_WARNING, "range.outliers", 500 + amax / p, info.name,
                          "--method percentile (or mse) clips the outliers", "range [%.4g, "
                          "%.4g] is %.0fx the 99.99th percentile of |x| (<= %.3g): 99.99%% of "
                          "the values use %.1f of the %g levels", (double)info.lo[0],
                          (double)info.hi[0], amax / p, p, lv, qhi - qlo);
        }
        /* one-sided tensor, symmetric grid: the negative half of the codes is never used */
        if (olo >= 0 && clo < -0.25 * chi) {
            n_one++;
            wasted += -clo / (chi - clo);
            if (!first_one)
                first_one = info.name;
        }
    }
    free(dep);
    if (n_one > 0)
        qc_dr_add(d, QC_SEV_WARNING, "range.one-sided", 450 + n_one, first_one, "drop "
                  "--symmetric-activations (asymmetric uint8 puts all 256 codes on [0, max])",
                  "%d tensor%s never negative (e.g. after ReLU) quantized symmetrically: %.0f%% "
                  "of the codes unused, resolution halved", n_one, n_one == 1 ? "" : "s",
                  100 * wasted / n_one);
    /* saturation on held-out data */
    for (int l = 0; l < d->n_layers; l++) {
        const dlayer *ly = &d->layers[l];
        if (ly->st.n == 0)
            continue;
        double sat = (double)ly->st.saturated / (double)ly->st.n;
        if (sat > SATURATION)
            qc_dr_add(d, QC_SEV_WARNING, "range.saturation", 300 + 100 * sat, ly->name,
                      "calibrate on data that covers the eval data (more or other samples); "
                      "--method minmax keeps every calibration value", "%.2f%% of the eval "
                      "values fall outside the quantized range [%.4g, %.4g] (layer SQNR %.1f "
                      "dB)", 100 * sat, (double)ly->clip_lo, (double)ly->clip_hi,
                      qc_layerstat_sqnr_db(&ly->st));
    }
}

/* ---- weights and biases ---- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Output channel axis of the weight of node nd (input 1), -1 if not a weight we know. */
static int weight_axis(const qc_node *nd, const qc_tensor *w)
{
    if (!strcmp(nd->op_type, "Conv"))
        return 0;
    if (!strcmp(nd->op_type, "ConvTranspose"))
        return w->ndim > 1 ? 1 : -1;
    if (!strcmp(nd->op_type, "Gemm"))
        return qc_attr_int(nd, "transB", 0) ? 0 : 1;
    if (!strcmp(nd->op_type, "MatMul"))
        return w->ndim >= 2 ? w->ndim - 1 : -1;
    return -1;
}

static void check_weights(qc_doctor *d)
{
    const qc_model *m = d->m;
    qc_qtensor_info info;
    for (int j = 0; j < m->n_nodes; j++) {
        const qc_node *nd = &m->nodes[j];
        const qc_tensor *w = nd->n_inputs > 1 ? qc_model_init(m, nd->inputs[1]) : NULL;
        int axis = w && w->dtype == QC_F32 ? weight_axis(nd, w) : -1;
        if (axis < 0 || axis >= w->ndim)
            continue;
        if (!d->qm || !qc_quantizer_tensor(d->q, qc_quantizer_find(d->q, w->name), &info) ||
            strcmp(info.kind, "weight"))
            continue;
        int64_t nch = w->dims[axis], inner = 1, outer = 1;
        for (int k = axis + 1; k < w->ndim; k++)
            inner *= w->dims[k];
        for (int k = 0; k < axis; k++)
            outer *= w->dims[k];
        float *amax = calloc((size_t)nch + 1, sizeof *amax), *sorted = NULL;
        if (!amax)
            return;
        const float *x = w->data;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t c = 0; c < nch; c++)
                for (int64_t i = 0; i < inner; i++)
                    amax[c] = fmaxf(amax[c], fabsf(x[(o * nch + c) * inner + i]));
        /* int32 bias: a weight scale the quantizer had to grow so the bias fits (beyond
         * what the pair guard chose) */
        double worst_lv = INFINITY, worst_raise = 1;
        int worst_c = -1, moved = 0;
        float *nat = calloc((size_t)info.n_channels + 1, sizeof *nat);
        if (!nat) {
            free(amax);
            return;
        }
        for (int c = 0; c < info.n_channels; c++) {
            double a = info.n_channels == 1 ? fmax(fabs(info.lo[0]), fabs(info.hi[0]))
                                            : (double)amax[c < nch ? c : 0];
            nat[c] = (float)(d->o.q.symmetric_w ? a / 127.0 : (info.hi[c] - info.lo[c]) / 254.0);
        }
        if (qc_quant_pair_guarded(d->q) &&
            qc_pairguard_scales(m, w->name, w, info.n_channels > 1 ? axis : -1,
                                info.n_channels, nat, &moved, NULL) != QC_OK) {
            free(nat);
            free(amax);
            return;
        }
        /* a given model's own scales where it has them (the same channels), else the
         * rebuild's */
        const qc_tensor *gs = qc_dr_given_weight_scale(d, nd->name, w, axis);
        const float *scale = gs && qc_tensor_numel(gs) == info.n_channels ? gs->data
                                                                          : info.scale;
        for (int c = 0; c < info.n_channels; c++) {
            double a = info.n_channels == 1 ? fmax(fabs(info.lo[0]), fabs(info.hi[0]))
                                            : (double)amax[c < nch ? c : 0];
            double natural = nat[c];
            if (a > 0 && scale[c] > 1.01 * natural && a / scale[c] < worst_lv) {
                worst_lv = a / scale[c];
                worst_raise = scale[c] / natural;
                worst_c = c;
            }
        }
        free(nat);
        if (worst_c >= 0) {
            char fix[200];
            snprintf(fix, sizeof fix, "--bias float (keeps biases in float), or --exclude %s",
                     nd->name);
            qc_dr_add(d, worst_lv < 8 ? QC_SEV_ERROR : QC_SEV_WARNING, "model.bias-overflow",
                      600 - worst_lv, nd->name, fix, "the int32 bias would overflow with "
                      "scale = input scale x weight scale: the weight scale of '%s'%s was "
                      "raised %.3gx, its largest value now spans %.1f levels", w->name,
                      info.n_channels > 1 ? " (a channel)" : "", worst_raise, worst_lv);
        }
        if (info.n_channels == 1 && nch >= 4 && (sorted = malloc((size_t)nch * sizeof *sorted))) {
            memcpy(sorted, amax, (size_t)nch * sizeof *sorted);
            qsort(sorted, (size_t)nch, sizeof *sorted, cmp_float);
            double med = sorted[nch / 2], top = sorted[nch - 1];
            int64_t c_top = 0, n_low = 0;
            for (int64_t c = 0; c < nch; c++) {
                if (amax[c] == top)
                    c_top = c;
                n_low += amax[c] * 127.0 / top < 8.0;
            }
            if (med > 0 && top / med > IMBALANCE_RATIO)
                qc_dr_add(d, QC_SEV_WARNING, "weight.channel-imbalance", 400 + top / med,
                          nd->name, "--per-channel (one scale per output channel)",
                          "weight '%s': channel %lld spans %.3g, %.0fx the median channel "
                          "(%.3g); with one scale %lld of %lld channels get fewer than 8 "
                          "levels", w->name, (long long)c_top, top, top / med, med,
                          (long long)n_low, (long long)nch);
            free(sorted);
        }
        free(amax);
    }
}

/* ---- 3. model ---- */

/* Whether tensor `name` reaches a graph output through data movement only. */
static int reaches_output(const qc_doctor *d, const char *name, int depth)
{
    const qc_model *m = d->m;
    for (int i = 0; i < m->n_outputs; i++)
        if (!strcmp(m->outputs[i].name, name))
            return 1;
    if (depth > 8)
        return 0;
    for (int r = 0, i; (i = qc_model_reader(m, name, r)) >= 0; r++) {
        const qc_node *nd = &m->nodes[i];
        if (!is_movement(nd->op_type) || nd->n_inputs < 1 || strcmp(nd->inputs[0], name))
            continue;
        for (int k = 0; k < nd->n_outputs; k++)
            if (reaches_output(d, nd->outputs[k], depth + 1))
                return 1;
    }
    return 0;
}

/* ",a,b": the data movement nodes from `name` to graph outputs (they would quantize the
 * mixed tensor again with the same scale). */
static void movement_chain(const qc_doctor *d, const char *name, char *buf, size_t size,
                           int depth)
{
    const qc_model *m = d->m;
    for (int r = 0, i, prev = -1; depth < 8 && (i = qc_model_reader(m, name, r)) >= 0;
         prev = i, r++) {
        const qc_node *nd = &m->nodes[i];
        if (i == prev || !is_movement(nd->op_type) || nd->n_inputs < 1 || nd->n_outputs < 1 ||
            strcmp(nd->inputs[0], name) || !reaches_output(d, nd->outputs[0], 0))
            continue;
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, ",%s", nd->name);
        movement_chain(d, nd->outputs[0], buf, size, depth + 1);
    }
}

static int quantized_act(const qc_doctor *d, const char *name, qc_qtensor_info *info)
{
    return qc_quantizer_tensor(d->q, qc_quantizer_find(d->q, name), info) &&
           !strcmp(info->kind, "activation");
}

static int check_model(qc_doctor *d, qc_err *err)
{
    const qc_model *m = d->m;
    qc_qtensor_info info;
    /* Concat mixing ranges so different that an input collapses to a few levels (box
     * coordinates and class scores in one tensor); in a given model, at the scale it
     * quantizes the Concat with (its output range: the union of the inputs') */
    for (int j = 0; d->qm && j < m->n_nodes; j++) {
        const qc_node *nd = &m->nodes[j];
        double sc, ohi, owidth;
        if (strcmp(nd->op_type, "Concat") || nd->n_outputs < 1)
            continue;
        if (d->given) {
            double lo = INFINITY, hi = -INFINITY;
            for (int k = 0; k < nd->n_inputs; k++) {
                const dstat *s = qc_dr_stat(d, nd->inputs[k]);
                if (s && s->count > 0)
                    lo = fmin(lo, s->lo), hi = fmax(hi, s->hi);
            }
            if (!((sc = qc_dr_given_out_scale(d, nd->name)) > 0) || !(hi > lo))
                continue;
            ohi = hi, owidth = hi - lo;
        } else if (quantized_act(d, nd->outputs[0], &info)) {
            sc = info.scale[0], ohi = info.obs_hi[0], owidth = info.obs_hi[0] - info.obs_lo[0];
        } else {
            continue;
        }
        int tail = reaches_output(d, nd->outputs[0], 0);
        for (int k = 0; k < nd->n_inputs; k++) {
            const dstat *s = qc_dr_stat(d, nd->inputs[k]);
            if (!s || s->count == 0 || !(s->hi > s->lo))
                continue;
            double w = s->hi - s->lo, lv = levels(s->lo, s->hi, sc);
            if (lv < HEAD_LEVELS && owidth > 16 * w) {
                char fix[512], chain[160] = "";
                movement_chain(d, nd->outputs[0], chain, sizeof chain, 0);
                snprintf(fix, sizeof fix, "--exclude %s%s (keep the tensor mixing them in "
                         "float)", nd->name, chain);
                qc_dr_add(d, tail ? QC_SEV_ERROR : QC_SEV_WARNING, "model.head-mix",
                          700 + 10 / fmax(lv, 0.1), nd->name, fix, "Concat%s mixes input '%s' "
                          "in [%.3g, %.3g] with others up to %.3g: at scale %.3g that input "
                          "gets %.1f levels (scores collapse to 0)", tail ? " before an output"
                          : "", s->name, (double)s->lo, (double)s->hi, ohi, sc, lv);
                break;
            }
        }
    }
    /* a given model that rounds the arithmetic of a decomposed normalization to 8 bits inside
     * the normalization (what calibrate keeps float: qselect.c mark_statistics; the last
     * node's output, which the next Conv or MatMul reads, is quantized either way) */
    const char *first = NULL, *first_op = NULL;
    int n_norm = d->given && d->qm ? qc_dr_given_norm_rounded(d, &first, &first_op) : 0;
    if (n_norm < 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if (n_norm > 0)
        qc_dr_add(d, QC_SEV_WARNING, "model.norm-quantized", 650 + n_norm, first,
                  "keep normalization arithmetic in float: calibrate does (or exclude these "
                  "nodes in the tool that made the model)", "%d node%s of decomposed "
                  "normalizations (LayerNorm, RMS norm or softmax as elementwise ops) quantize "
                  "their output, e.g. '%s' (%s): they subtract or divide nearly equal values, "
                  "whose 8-bit error the rest of the normalization amplifies", n_norm,
                  n_norm == 1 ? "" : "s", first, first_op);
    if (d->nan_node >= 0) {
        const qc_node *nd = &m->nodes[d->nan_node];
        qc_dr_add(d, QC_SEV_ERROR, "model.float-nan", 900, nd->name, "the float model fails on "
                  "this data: check the preprocessing (range, dtype) or the model",
                  "the float model produces %lld NaN/Inf values at node '%s' (%s) from finite "
                  "inputs (first seen on sample %s)", (long long)d->nan_count, nd->name,
                  nd->op_type, d->nan_sample);
    }
    /* ops left in float, grouped by op and reason */
    qc_float_group *g = NULL;
    int n_g = d->given ? qc_dr_given_float_groups(d->given, &g)
                       : d->qm ? qc_quantizer_float_groups(d->q, &g) : 0;
    if (n_g < 0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int k = 0; k < n_g; k++)
        qc_dr_add(d, QC_SEV_INFO, "model.float-ops", 100 + g[k].count, g[k].example,
                  "--op-types adds op types; excluded nodes stay float by request",
                  "%d %s node%s left in float (%s), e.g. '%s'", g[k].count, g[k].op_type,
                  g[k].count == 1 ? "" : "s", g[k].why, g[k].example);
    free(g);
    /* placement onnxruntime runs in float: an op fed by DequantizeLinear whose output is not
     * quantized (not read by a QuantizeLinear) is not fused into an integer kernel */
    const qc_model *qm = d->given ? d->given : d->qm;
    for (int j = 0; qm && j < qm->n_nodes; j++) {
        const qc_node *nd = &qm->nodes[j];
        static const char *const fusable[] = { "Conv", "ConvTranspose", "Gemm", "MatMul",
                                               "Add", "Mul", "Concat", NULL };
        int f = 0, n_dq = 0, fed = 0;
        while (fusable[f] && strcmp(fusable[f], nd->op_type))
            f++;
        if (!fusable[f] || nd->n_outputs < 1)
            continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int p = nd->inputs[k][0] ? qc_model_producer(qm, nd->inputs[k]) : -1;
            n_dq += p >= 0 && !strcmp(qm->nodes[p].op_type, "DequantizeLinear");
        }
        if (n_dq == 0)
            continue;
        for (int r = 0, i; !fed && (i = qc_model_reader(qm, nd->outputs[0], r)) >= 0; r++)
            fed = !strcmp(qm->nodes[i].op_type, "QuantizeLinear") &&
                  !strcmp(qm->nodes[i].inputs[0], nd->outputs[0]);
        if (!fed)
            qc_dr_add(d, QC_SEV_INFO, "model.unfused", 150, nd->name, "intended for graph "
                      "outputs; elsewhere quantize the consumer (--op-types) or exclude the "
                      "node", "%s reads %d DequantizeLinear input%s but its output is not "
                      "quantized: onnxruntime runs it in float (no integer kernel)",
                      nd->op_type, n_dq, n_dq == 1 ? "" : "s");
    }
    /* Concat inputs onnxruntime requantizes: avoidable unless calibrate kept them on purpose
     * (a rebuild with shared Concat scales: only inputs read elsewhere and much narrower) */
    int n_cat = 0;
    const char *first_cat = NULL;
    int n_req = qm && (d->given || !d->o.q.concat_share)
                    ? qc_dr_concat_requant(qm, &n_cat, &first_cat) : 0;
    if (n_req)
        qc_dr_add(d, QC_SEV_INFO, "model.concat-requant", 140 + n_req, first_cat,
                  d->given ? "calibrate's default gives a Concat's inputs its output's scale "
                             "(unless other nodes read one whose own range is 4x narrower)"
                           : "drop --no-concat-share",
                  "%d input%s of %d Concat%s (e.g. '%s') with a scale or zero point other than "
                  "the output's: onnxruntime's QLinearConcat requantizes them (a lookup per "
                  "byte, a second rounding) instead of copying", n_req, n_req == 1 ? "" : "s",
                  n_cat, n_cat == 1 ? "" : "s", first_cat);
    return QC_OK;
}

/* ---- 4 and 5. error attribution, outputs ---- */

/* The quantized tensor nearest upstream of `name` along first data inputs, -1 if none. */
static int upstream_layer(const qc_doctor *d, const char *name)
{
    for (int depth = 0; name && depth < 16; depth++) {
        int l = qc_strmap_get(&d->layer_by_name, name);
        if (l >= 0)
            return l;
        const dstat *s = qc_dr_stat(d, name);
        const qc_node *nd = s && s->producer >= 0 ? &d->m->nodes[s->producer] : NULL;
        name = NULL;
        for (int k = 0; nd && k < nd->n_inputs && !name; k++)
            if (nd->inputs[k][0] && qc_dr_stat(d, nd->inputs[k]))
                name = nd->inputs[k];
    }
    return -1;
}

/* "producer,reader,...": the nodes to exclude so that the tensor of layer l stays float. */
static void layer_nodes(const qc_doctor *d, int l, char *buf, size_t size)
{
    const char *t = d->layers[l].name;
    int p = d->ts[d->layers[l].ts].producer;
    size_t pos = (size_t)snprintf(buf, size, "%s", p >= 0 ? d->m->nodes[p].name : "");
    for (int r = 0, i, prev = -1; pos < size && (i = qc_model_reader(d->m, t, r)) >= 0;
         prev = i, r++) {
        const qc_node *nd = &d->m->nodes[i];
        if (i != prev && i != p)
            pos += (size_t)snprintf(buf + pos, size - pos, "%s%s", pos ? "," : "", nd->name);
    }
}

static void check_eval(qc_doctor *d)
{
    qc_doctor_summary sum;
    qc_doctor_get_summary(d, &sum);
    if (d->n_evaluated == 0)
        return;
    for (int i = 0; i < d->m->n_outputs; i++) {
        const dout *o = &d->outs[i];
        if (o->map[0] < 0)
            continue;
        if (o->st[0].nonfinite > 0) {
            const char *where = NULL;
            for (int l = 0; l < d->n_layers && !where; l++)
                if (d->layers[l].st.nonfinite > 0)
                    where = d->layers[l].name;
            qc_dr_add(d, QC_SEV_ERROR, "output.nonfinite", 300, o->name, "see the findings "
                      "above for the tensor where it starts; --exclude the node producing it",
                      "the quantized model outputs %lld NaN/Inf values where the float model "
                      "is finite%s%s", (long long)o->st[0].nonfinite,
                      where ? "; first quantized tensor with NaN/Inf: " : "", where ? where : "");
        } else if (o->got_hi == o->got_lo && o->ref_hi > o->ref_lo) {
            /* the quantized tensor feeding the output: one step of it spans the whole float
             * output, or its producer (a quantized constant) rounds the output away */
            int l = upstream_layer(d, o->name);
            char fix[200] = "find the quantized tensor that collapses (head-mix, zero-width "
                            "findings); --exclude it", where[160] = "";
            if (l >= 0) {
                const dlayer *ly = &d->layers[l];
                char nodes[120];
                layer_nodes(d, l, nodes, sizeof nodes);
                snprintf(fix, sizeof fix, "--exclude %s (keeps '%.40s' float)", nodes,
                         ly->name);
                snprintf(where, sizeof where, "; nearest quantized tensor upstream: '%.40s', "
                         "step %.3g on [%.3g, %.3g]", ly->name,
                         2.0 * ((double)ly->sat_hi - ly->clip_hi), (double)ly->clip_lo,
                         (double)ly->clip_hi);
            }
            qc_dr_add(d, QC_SEV_ERROR, "output.constant", 200, o->name, fix,
                      "the quantized model's output is constant (%g) on %d eval samples; the "
                      "float output spans [%g, %g]%s", (double)o->got_lo, d->n_evaluated,
                      (double)o->ref_lo, (double)o->ref_hi, where);
        }
    }
    double q = sum.output_sqnr_db;
    if (d->fix_layer >= 0) {
        const dlayer *ly = &d->layers[d->fix_layer];
        const char *node = d->m->nodes[d->fix_node].name;
        double own = qc_layerstat_sqnr_db(&ly->st), q2 = NAN;
        for (int i = 0; i < d->m->n_outputs && d->n_evaluated_fix > 0; i++) {
            const dout *o = &d->outs[i];
            if (o->map[1] < 0 || (o->st[1].n == 0 && o->st[1].nonfinite == 0))
                continue;
            double s = qc_errstat_sqnr_db(&o->st[1]);
            q2 = isnan(q2) || s < q2 ? s : q2;
        }
        const char *nodes = d->fix_nodes ? d->fix_nodes : node;
        char fix[200];
        int named = 0;
        for (int i = 0; i < d->n_f; i++)
            named |= !strcmp(d->f[i].subject, ly->name);
        if (q2 - q >= 3 && named)
            snprintf(fix, sizeof fix, "--exclude %s (or fix its range: see the findings for "
                     "'%s')", nodes, ly->name);
        else if (q2 - q >= 3)
            snprintf(fix, sizeof fix, "--exclude %s (no other check explains the error of "
                     "'%s')", nodes, ly->name);
        else
            snprintf(fix, sizeof fix, "leaving it float alone recovers little: the error "
                     "comes from several layers");
        char with[96] = "";
        if (!isnan(q2))
            snprintf(with, sizeof with, "; with it in float (--exclude %.40s): %.1f dB "
                     "(%+.1f dB)", nodes, q2, q2 - q);
        qc_dr_add(d, q < 20 && q2 - q >= 3 ? QC_SEV_WARNING : QC_SEV_INFO, "error.attribution",
                  350 + (isnan(q2) ? 0 : q2 - q), ly->name, fix, "first layer where the error "
                  "jumps: SQNR %.1f dB at '%s' (node '%s'); output SQNR %.1f dB%s", own,
                  ly->name, node, q, with);
    }
    /* a good result is a summary, listed after every info finding that names a problem; a
     * bad one points at the findings that explain it, or, when no check found a cause (the
     * error spread over the graph, a weight or input no check covers), at the search for the
     * nodes to keep float */
    int explained = 0;
    for (int i = 0; i < d->n_f; i++)
        explained |= d->f[i].severity >= QC_SEV_WARNING;
    char top1[64] = "";
    if (!isnan(sum.top1))
        snprintf(top1, sizeof top1, ", top-1 agreement %.1f%%", 100 * sum.top1);
    qc_dr_add(d, q < 10 ? QC_SEV_WARNING : QC_SEV_INFO, "output.agreement", q < 10 ? 300 : 0,
              "outputs", q >= 10 ? "" : explained ? "see the findings above" : "no check "
              "found a single cause: calibrate compare --target-sqnr 20 lists the nodes to keep "
              "float", "worst output SQNR %.1f dB over %d eval sample%s%s", q, d->n_evaluated,
              d->n_evaluated == 1 ? "" : "s", top1);
}

int qc_dr_checks(qc_doctor *d, qc_err *err)
{
    int n0 = d->n_f;
    check_data(d);
    check_ranges(d);
    check_weights(d);
    int rc = check_model(d, err);
    if (rc != QC_OK)
        return rc;
    check_eval(d);
    for (int i = n0; i < d->n_f; i++)
        if (!d->f[i].check)
            return qc_errf(err, QC_EINTERNAL, "doctor: incomplete finding");
    if (d->n_f < n0)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    return QC_OK;
}

/* ---- JSON ---- */

int qc_doctor_write_json(const qc_doctor *d, const char *path, qc_err *err)
{
    qc_doctor_summary s;
    qc_doctor_get_summary(d, &s);
    cJSON *root = cJSON_CreateObject(), *fs = cJSON_CreateArray(), *ls = cJSON_CreateArray();
    cJSON *sum = cJSON_CreateObject();
    if (!root || !fs || !ls || !sum) {
        cJSON_Delete(root);
        cJSON_Delete(fs);
        cJSON_Delete(ls);
        cJSON_Delete(sum);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(root, "format", "qcal-doctor");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddNumberToObject(sum, "calibration_samples", s.n_calib);
    cJSON_AddNumberToObject(sum, "skipped_samples", s.n_skipped);
    cJSON_AddNumberToObject(sum, "eval_samples", s.n_evaluated);
    cJSON_AddNumberToObject(sum, "quantized_nodes", s.n_quantized_nodes);
    cJSON_AddNumberToObject(sum, "float_nodes", s.n_float_nodes);
    if (isfinite(s.output_sqnr_db))
        cJSON_AddNumberToObject(sum, "output_sqnr_db", s.output_sqnr_db);
    if (!isnan(s.top1))
        cJSON_AddNumberToObject(sum, "top1", s.top1);
    cJSON_AddItemToObject(root, "summary", sum);
    cJSON_AddItemToObject(root, "findings", fs);
    for (int i = 0; i < d->n_f; i++) {
        const qc_finding *f = &d->f[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "severity", qc_doctor_severity_name(f->severity));
        cJSON_AddStringToObject(o, "check", f->check);
        cJSON_AddStringToObject(o, "subject", f->subject);
        cJSON_AddStringToObject(o, "evidence", f->evidence);
        cJSON_AddStringToObject(o, "fix", f->fix);
        cJSON_AddItemToArray(fs, o);
    }
    cJSON_AddItemToObject(root, "layers", ls);
    for (int l = 0; l < d->n_layers; l++) {
        const dlayer *ly = &d->layers[l];
        cJSON *o = cJSON_CreateObject();
        double q = qc_layerstat_sqnr_db(&ly->st);
        cJSON_AddStringToObject(o, "tensor", ly->name);
        cJSON_AddStringToObject(o, "node", node_name(d, d->ts[ly->ts].producer));
        if (isfinite(q))
            cJSON_AddNumberToObject(o, "sqnr_db", q);
        else
            cJSON_AddStringToObject(o, "sqnr_db", q > 0 ? "inf" : "-inf");
        cJSON_AddNumberToObject(o, "saturation", ly->st.n ? (double)ly->st.saturated /
                                                            (double)ly->st.n : 0.0);
        cJSON_AddItemToArray(ls, o);
    }
    return qc_write_json_atomic(root, path, err);
}
