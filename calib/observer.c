/* Observer registry and the parts every kind shares: config checks, tensor -> channel view,
 * non-finite accounting, min/max scan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "qc_observer.h"
#include "hist.h"
#include "par.h"
#include "scan.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const qc_observer_ops *const kinds[] = {
    &qc_obs_minmax, &qc_obs_ema, &qc_obs_percentile, &qc_obs_mse, &qc_obs_entropy,
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

const char *qc_observer_methods(void)
{
    return "minmax, ema, percentile, mse, entropy";
}

void qc_obs_config_default(qc_obs_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->symmetric = 0;
    cfg->qmin = 0;
    cfg->qmax = 255;
    cfg->per_channel_axis = -1;
    cfg->ema_constant = 0.01f;
    cfg->percentile = 99.999f;
    cfg->bins = 2048;
    cfg->entropy_levels = 128;
}

static int check_config(const qc_obs_config *c, qc_err *err)
{
    if (c->qmin >= c->qmax)
        return qc_errf(err, QC_EUSAGE, "observer: qmin %d must be below qmax %d", c->qmin, c->qmax);
    if (c->per_channel_axis < -1 || c->per_channel_axis >= QC_MAX_DIMS)
        return qc_errf(err, QC_EUSAGE, "observer: per-channel axis %d out of range [-1, %d]",
                       c->per_channel_axis, QC_MAX_DIMS - 1);
    if (!(c->ema_constant > 0.0f && c->ema_constant <= 1.0f))
        return qc_errf(err, QC_EUSAGE, "observer: ema constant %g not in (0, 1]",
                       (double)c->ema_constant);
    if (!(c->percentile >= 50.0f && c->percentile <= 100.0f))
        return qc_errf(err, QC_EUSAGE, "observer: percentile %g not in [50, 100]",
                       (double)c->percentile);
    if (c->bins < 2 || c->bins > (1 << 20))
        return qc_errf(err, QC_EUSAGE, "observer: %d histogram bins, expected 2 .. %d", c->bins,
                       1 << 20);
    if (c->entropy_levels < 2 || c->entropy_levels > c->bins)
        return qc_errf(err, QC_EUSAGE, "observer: %d entropy levels, expected 2 .. bins (%d)",
                       c->entropy_levels, c->bins);
    return QC_OK;
}

void *qc_obs_alloc(qc_observer *o, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p)
        o->state_bytes += n * size;
    return p;
}

/* Per-channel bookkeeping plus the kind's own state, once the channel count is known. */
static int init_state(qc_observer *o, int n_ch, qc_err *err)
{
    o->ch_count = qc_obs_alloc(o, (size_t)n_ch, sizeof *o->ch_count);
    if (!o->ch_count)
        return qc_errf(err, QC_ENOMEM, "observer '%s': out of memory for %d channels",
                       o->ops->name, n_ch);
    o->n_channels = n_ch;
    int rc = o->ops->init(o, n_ch, err);
    if (rc != QC_OK) {             /* leave the observer as before: no channels, no state */
        o->ops->release(o);
        free(o->ch_count);
        o->ch_count = NULL;
        o->n_channels = 0;
        o->state_bytes = 0;
    }
    return rc;
}

static int new_of(qc_observer **out, const qc_observer_ops *ops, const qc_obs_config *cfg,
                  qc_err *err)
{
    qc_observer *o = calloc(1, sizeof *o);
    *out = NULL;
    if (!o)
        return qc_errf(err, QC_ENOMEM, "observer '%s': out of memory", ops->name);
    o->ops = ops;
    o->seen_lo = INFINITY;
    o->seen_hi = -INFINITY;
    if (cfg)
        o->cfg = *cfg;
    else
        qc_obs_config_default(&o->cfg);
    int rc = check_config(&o->cfg, err);
    if (rc == QC_OK && o->cfg.per_channel_axis < 0)
        rc = init_state(o, 1, err);
    if (rc != QC_OK) {
        qc_observer_free(o);
        return rc;
    }
    *out = o;
    return QC_OK;
}

int qc_observer_new(qc_observer **out, const char *method, const qc_obs_config *cfg, qc_err *err)
{
    *out = NULL;
    for (int i = 0; method && i < N_KINDS; i++)
        if (strcmp(method, kinds[i]->name) == 0)
            return new_of(out, kinds[i], cfg, err);
    return qc_errf(err, QC_EUSAGE, "unknown calibration method '%s' (valid: %s)",
                   method ? method : "(null)", qc_observer_methods());
}

int qc_observer_new_dual(qc_observer **out, const qc_obs_config *cfg, qc_err *err)
{
    return new_of(out, &qc_obs_dual, cfg, err);
}

int qc_observer_view(qc_observer **out, const qc_observer *dual, const char *method,
                     const qc_obs_config *cfg, qc_err *err)
{
    qc_observer *o = NULL;
    *out = NULL;
    if (dual->ops != &qc_obs_dual || strcmp(method, "minmax") == 0 || strcmp(method, "ema") == 0 ||
        (cfg && cfg->bins != dual->cfg.bins) ||
        (cfg ? cfg->per_channel_axis : -1) != dual->cfg.per_channel_axis)
        return qc_errf(err, QC_EUSAGE, "observer view: '%s' cannot be read as '%s' with "
                       "this configuration", dual->ops->name, method);
    int rc = qc_observer_new(&o, method, cfg, err);
    if (rc == QC_OK && !o->n_channels && dual->n_channels)
        rc = init_state(o, dual->n_channels, err);
    if (rc != QC_OK) {
        qc_observer_free(o);
        return rc;
    }
    o->nonfinite = dual->nonfinite;
    o->count = dual->count;
    o->seen_lo = dual->seen_lo;
    o->seen_hi = dual->seen_hi;
    const qc_hist_obs *ds = dual->state;
    qc_hist_obs *os = o->state;
    for (int c = 0; c < dual->n_channels; c++) {
        o->ch_count[c] = dual->ch_count[c];
        qc_hist_view(&ds->ch[c], &os->ch[c]);
    }
    *out = o;
    return QC_OK;
}

void qc_observer_free(qc_observer *o)
{
    if (!o)
        return;
    if (o->ops && o->ops->release)
        o->ops->release(o);
    free(o->ch_count);
    free(o);
}

int qc_observer_update(qc_observer *o, const qc_tensor *t, qc_err *err)
{
    char shape[128];
    o->last_lo = INFINITY;
    o->last_hi = -INFINITY;
    o->last_good = o->last_bad = 0;
    if (t->dtype != QC_F32)
        return qc_errf(err, QC_EUNSUPPORTED, "observer '%s': tensor '%s' is %s, expected float32",
                       o->ops->name, t->name ? t->name : "?", qc_dtype_name(t->dtype));
    int64_t numel = qc_tensor_numel(t);
    qc_obs_view v = { .x = t->data, .outer = 1, .inner = numel, .n_ch = 1 };
    int axis = o->cfg.per_channel_axis;
    if (axis >= 0) {
        if (axis >= t->ndim)
            return qc_errf(err, QC_ESHAPE, "observer '%s': per-channel axis %d but tensor '%s' "
                           "has shape %s", o->ops->name, axis, t->name ? t->name : "?",
                           qc_shape_str(t, shape, sizeof shape));
        int64_t n_ch = t->dims[axis];
        if (n_ch < 1 || n_ch > (1 << 24))
            return qc_errf(err, QC_ESHAPE, "observer '%s': tensor '%s' has %lld channels on "
                           "axis %d (shape %s)", o->ops->name, t->name ? t->name : "?",
                           (long long)n_ch, axis, qc_shape_str(t, shape, sizeof shape));
        if (o->n_channels && n_ch != o->n_channels)
            return qc_errf(err, QC_ESHAPE, "observer '%s': tensor '%s' has %lld channels on "
                           "axis %d (shape %s), earlier tensors had %d", o->ops->name,
                           t->name ? t->name : "?", (long long)n_ch, axis,
                           qc_shape_str(t, shape, sizeof shape), o->n_channels);
        v.n_ch = (int)n_ch;
        v.outer = 1;
        for (int d = 0; d < axis; d++)
            v.outer *= t->dims[d];
        v.inner = 1;
        for (int d = axis + 1; d < t->ndim; d++)
            v.inner *= t->dims[d];
        if (!o->n_channels) {
            int rc = init_state(o, v.n_ch, err);
            if (rc != QC_OK)
                return rc;
        }
    }
    if (numel == 0)
        return QC_OK;
    if (!t->data)
        return qc_errf(err, QC_EUSAGE, "observer '%s': tensor '%s' has no data", o->ops->name,
                       t->name ? t->name : "?");
    return o->ops->update(o, &v, err);
}

int qc_observer_follow(qc_observer *o, const qc_observer *leader, qc_err *err)
{
    if (!o->ops->extremes || o->cfg.per_channel_axis >= 0 || leader->cfg.per_channel_axis >= 0)
        return qc_errf(err, QC_EUSAGE, "observer '%s' cannot follow '%s'", o->ops->name,
                       leader->ops->name);
    o->last_lo = leader->last_lo;
    o->last_hi = leader->last_hi;
    o->last_good = leader->last_good;
    o->last_bad = leader->last_bad;
    o->nonfinite += o->last_bad;
    if (!o->last_good)
        return QC_OK;
    o->seen_lo = o->last_lo < o->seen_lo ? o->last_lo : o->seen_lo;
    o->seen_hi = o->last_hi > o->seen_hi ? o->last_hi : o->seen_hi;
    o->count += o->last_good;
    o->ch_count[0] += o->last_good;
    return o->ops->extremes(o, o->last_lo, o->last_hi, err);
}

int qc_observer_merge(qc_observer *o, const qc_observer *other, qc_err *err)
{
    const qc_obs_config *a = &o->cfg, *b = &other->cfg;
    if (o->ops != other->ops)
        return qc_errf(err, QC_EUSAGE, "observer merge: kinds differ ('%s' vs '%s')",
                       o->ops->name, other->ops->name);
    if (a->symmetric != b->symmetric || a->qmin != b->qmin || a->qmax != b->qmax ||
        a->per_channel_axis != b->per_channel_axis || a->ema_constant != b->ema_constant ||
        a->percentile != b->percentile || a->bins != b->bins ||
        a->entropy_levels != b->entropy_levels)
        return qc_errf(err, QC_EUSAGE, "observer merge ('%s'): configurations differ",
                       o->ops->name);
    if (!other->n_channels)
        return QC_OK;
    if (o->n_channels && o->n_channels != other->n_channels)
        return qc_errf(err, QC_ESHAPE, "observer merge ('%s'): %d channels vs %d",
                       o->ops->name, o->n_channels, other->n_channels);
    if (!o->n_channels) {
        int rc = init_state(o, other->n_channels, err);
        if (rc != QC_OK)
            return rc;
    }
    int rc = o->ops->merge(o, other, err);
    if (rc != QC_OK)
        return rc;
    o->nonfinite += other->nonfinite;
    o->count += other->count;
    o->seen_lo = other->seen_lo < o->seen_lo ? other->seen_lo : o->seen_lo;
    o->seen_hi = other->seen_hi > o->seen_hi ? other->seen_hi : o->seen_hi;
    for (int c = 0; c < o->n_channels; c++)
        o->ch_count[c] += other->ch_count[c];
    return QC_OK;
}

int qc_observer_seen(const qc_observer *o, qc_range *out)
{
    if (!(o->seen_lo <= o->seen_hi))
        return QC_EINPUT;
    out->lo = o->seen_lo;
    out->hi = o->seen_hi;
    return QC_OK;
}

int qc_observer_range(const qc_observer *o, int channel, qc_range *out, qc_err *err)
{
    int n = o->n_channels;
    if (channel < 0 || channel >= (n ? n : 1))
        return qc_errf(err, QC_EUSAGE, "observer '%s': channel %d out of range (%d channels)",
                       o->ops->name, channel, n);
    if (!n || o->ch_count[channel] == 0)
        return qc_errf(err, QC_EINPUT, "observer '%s': channel %d saw no finite value "
                       "(%lld non-finite skipped)", o->ops->name, channel,
                       (long long)o->nonfinite);
    int rc = o->ops->range(o, channel, out, err);
    if (rc == QC_OK && !(isfinite(out->lo) && isfinite(out->hi) && out->lo <= out->hi))
        return qc_errf(err, QC_EINTERNAL, "observer '%s': channel %d: bad range [%g, %g]",
                       o->ops->name, channel, (double)out->lo, (double)out->hi);
    return rc;
}

int qc_observer_n_channels(const qc_observer *o)
{
    return o->n_channels;
}

int64_t qc_observer_nonfinite(const qc_observer *o)
{
    return o->nonfinite;
}

int64_t qc_observer_count(const qc_observer *o)
{
    return o->count;
}

size_t qc_observer_state_bytes(const qc_observer *o)
{
    return sizeof *o + o->state_bytes;
}

const char *qc_observer_method(const qc_observer *o)
{
    return o->ops->name;
}

void qc_scan_lanes_init(qc_scan_lanes *l)
{
    for (int k = 0; k < 8; k++) {
        l->lo[k] = INFINITY;
        l->hi[k] = -INFINITY;
    }
    l->nan = 0;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* Four independent min/max chains of 8 lanes (32 values per step): one chain is bound by the
 * latency of minps, four keep up with the loads. Lane k of every chain holds elements with
 * index k mod 8, so the chains fold into the 8 lanes; which of two equal extremes wins does
 * not matter, as qc_scan_finish makes every zero +0. Returns the elements done (multiple
 * of 32). */
static __attribute__((target("avx2"))) int64_t scan_avx2(qc_scan_lanes *l, const float *x,
                                                         int64_t n)
{
    __m256 lo0 = _mm256_loadu_ps(l->lo), hi0 = _mm256_loadu_ps(l->hi);
    __m256 lo1 = lo0, lo2 = lo0, lo3 = lo0, hi1 = hi0, hi2 = hi0, hi3 = hi0;
    __m256 nan = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        lo0 = _mm256_min_ps(a, lo0), hi0 = _mm256_max_ps(a, hi0);
        lo1 = _mm256_min_ps(b, lo1), hi1 = _mm256_max_ps(b, hi1);
        lo2 = _mm256_min_ps(c, lo2), hi2 = _mm256_max_ps(c, hi2);
        lo3 = _mm256_min_ps(d, lo3), hi3 = _mm256_max_ps(d, hi3);
        nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q),
                                             _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
    }
    _mm256_storeu_ps(l->lo, _mm256_min_ps(_mm256_min_ps(lo0, lo1), _mm256_min_ps(lo2, lo3)));
    _mm256_storeu_ps(l->hi, _mm256_max_ps(_mm256_max_ps(hi0, hi1), _mm256_max_ps(hi2, hi3)));
    l->nan |= _mm256_movemask_ps(nan) != 0;
    return i;
}
#endif

void qc_scan_lanes_run(qc_scan_lanes *l, const float *x, int64_t n)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        int64_t done = scan_avx2(l, x, n);
        x += done;
        n -= done;
    }
#endif
    /* min/max comparisons skip NaN by themselves (minps returns its second operand when the
     * first is NaN) and only record whether there is any; qc_scan_finish then takes the exact
     * slow pass */
#if defined(__SSE2__)
    __m128 lo4a = _mm_loadu_ps(l->lo), lo4b = _mm_loadu_ps(l->lo + 4);
    __m128 hi4a = _mm_loadu_ps(l->hi), hi4b = _mm_loadu_ps(l->hi + 4);
    __m128 nan4 = _mm_setzero_ps();
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        __m128 a = _mm_loadu_ps(x + i), b = _mm_loadu_ps(x + i + 4);
        lo4a = _mm_min_ps(a, lo4a);
        lo4b = _mm_min_ps(b, lo4b);
        hi4a = _mm_max_ps(a, hi4a);
        hi4b = _mm_max_ps(b, hi4b);
        nan4 = _mm_or_ps(nan4, _mm_cmpunord_ps(a, b));
    }
    l->nan |= _mm_movemask_ps(nan4) != 0;
    _mm_storeu_ps(l->lo, lo4a);
    _mm_storeu_ps(l->lo + 4, lo4b);
    _mm_storeu_ps(l->hi, hi4a);
    _mm_storeu_ps(l->hi + 4, hi4b);
#else
    for (int64_t i = 0; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float v = x[i + k];
            l->lo[k] = v < l->lo[k] ? v : l->lo[k];
            l->hi[k] = v > l->hi[k] ? v : l->hi[k];
            l->nan |= v != v;
        }
#endif
}

void qc_scan_lanes_merge(qc_scan_lanes *acc, const qc_scan_lanes *later)
{
    for (int k = 0; k < 8; k++) {
        acc->lo[k] = later->lo[k] < acc->lo[k] ? later->lo[k] : acc->lo[k];
        acc->hi[k] = later->hi[k] > acc->hi[k] ? later->hi[k] : acc->hi[k];
    }
    acc->nan |= later->nan;
}

int64_t qc_scan_finish(const qc_scan_lanes *l, const float *x, int64_t n, float *mn, float *mx)
{
    /* lanes 0-3 and 4-7 meet as minps(a, b) did (b on ties), then one by one */
    float lo = INFINITY, hi = -INFINITY;
    int64_t nan = l->nan, i;
    for (int k = 0; k < 4; k++) {
        float a = l->lo[k] < l->lo[k + 4] ? l->lo[k] : l->lo[k + 4];
        float b = l->hi[k] > l->hi[k + 4] ? l->hi[k] : l->hi[k + 4];
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    for (i = n & ~(int64_t)7; i < n; i++) {
        float v = x[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        nan += v != v;
    }
    if (nan == 0 && lo != -INFINITY && hi != INFINITY) {
        *mn = lo + 0.0f;        /* -0 -> +0: lanes may keep either zero of a tie */
        *mx = hi + 0.0f;
        return 0;
    }
    /* some NaN or infinity: exact count */
    int64_t bad = 0;
    lo = INFINITY;
    hi = -INFINITY;
    for (i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            bad++;
            continue;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *mn = lo + 0.0f;
    *mx = hi + 0.0f;
    return bad;
}

int64_t qc_scan_chunk(int64_t n)
{
    int64_t c = (n + QC_SCAN_MAX_CHUNKS - 1) / QC_SCAN_MAX_CHUNKS;
    c = (c + 7) & ~(int64_t)7;
    return c < 16384 ? 16384 : c;
}

typedef struct scan_job {
    const float   *x;
    int64_t        n, chunk;    /* n: a multiple of 8 */
    qc_scan_lanes *part;        /* per chunk */
} scan_job;

static void scan_chunks(void *ctx, int64_t lo, int64_t hi)
{
    scan_job *j = ctx;
    for (int64_t c = lo; c < hi; c++) {
        int64_t a = c * j->chunk, len = j->n - a < j->chunk ? j->n - a : j->chunk;
        qc_scan_lanes_init(&j->part[c]);
        qc_scan_lanes_run(&j->part[c], j->x + a, len);
    }
}

int64_t qc_obs_scan(const float *x, int64_t n, float *mn, float *mx)
{
    qc_scan_lanes part[QC_SCAN_MAX_CHUNKS];
    scan_job j = { .x = x, .n = n & ~(int64_t)7, .part = part };
    j.chunk = qc_scan_chunk(j.n);
    int64_t n_chunks = (j.n + j.chunk - 1) / j.chunk;
    if (n_chunks > 1 && j.n >= QC_SCAN_PAR_MIN) {
        qc_par_for(n_chunks, 1, scan_chunks, &j);
        for (int64_t c = 1; c < n_chunks; c++)
            qc_scan_lanes_merge(&part[0], &part[c]);
    } else {
        qc_scan_lanes_init(&part[0]);
        qc_scan_lanes_run(&part[0], x, j.n);
    }
    return qc_scan_finish(&part[0], x, n, mn, mx);
}

int64_t qc_obs_scan_channel(qc_observer *o, const qc_obs_view *v, int c, float *mn, float *mx)
{
    float lo = INFINITY, hi = -INFINITY;
    int64_t bad = 0;
    for (int64_t k = 0; k < v->outer; k++) {
        float a, b;
        bad += qc_obs_scan(v->x + (k * v->n_ch + c) * v->inner, v->inner, &a, &b);
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    *mn = lo;
    *mx = hi;
    int64_t good = v->outer * v->inner - bad;
    o->last_lo = lo;
    o->last_hi = hi;
    o->last_bad = bad;
    o->last_good = good;
    o->seen_lo = lo < o->seen_lo ? lo : o->seen_lo;
    o->seen_hi = hi > o->seen_hi ? hi : o->seen_hi;
    o->nonfinite += bad;
    o->count += good;
    o->ch_count[c] += good;
    return good;
}
