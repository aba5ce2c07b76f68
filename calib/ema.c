/* ema: moving average of the per-update min and max, x += c * (x_update - x) (ORT, PyTorch).
 * The first update that has a finite value initializes; updates (or channels) without any
 * finite value are skipped. */
#include <math.h>
#include <stdlib.h>
#include "qc_observer.h"

typedef struct ema_state {
    float   *lo, *hi;
    int64_t *n;                 /* updates folded in, per channel */
} ema_state;

static int ema_init(qc_observer *o, int n_ch, qc_err *err)
{
    ema_state *s = qc_obs_alloc(o, 1, sizeof *s);
    if (s) {
        o->state = s;
        s->lo = qc_obs_alloc(o, (size_t)n_ch, sizeof *s->lo);
        s->hi = qc_obs_alloc(o, (size_t)n_ch, sizeof *s->hi);
        s->n = qc_obs_alloc(o, (size_t)n_ch, sizeof *s->n);
    }
    if (!s || !s->lo || !s->hi || !s->n)
        return qc_errf(err, QC_ENOMEM, "observer 'ema': out of memory for %d channels", n_ch);
    return QC_OK;
}

static int ema_update(qc_observer *o, const qc_obs_view *v, qc_err *err)
{
    ema_state *s = o->state;
    float k = o->cfg.ema_constant;
    (void)err;
    for (int c = 0; c < v->n_ch; c++) {
        float lo, hi;
        if (qc_obs_scan_channel(o, v, c, &lo, &hi) == 0)
            continue;
        if (s->n[c] == 0) {
            s->lo[c] = lo;
            s->hi[c] = hi;
        } else {
            s->lo[c] += k * (lo - s->lo[c]);
            s->hi[c] += k * (hi - s->hi[c]);
        }
        s->n[c]++;
    }
    return QC_OK;
}

/* Weighted by update counts: two shards of a long stream each converge to the same
 * stationary range, and the average is what a single pass would approach. */
static int ema_merge(qc_observer *o, const qc_observer *other, qc_err *err)
{
    ema_state *s = o->state;
    const ema_state *t = other->state;
    (void)err;
    for (int c = 0; c < o->n_channels; c++) {
        if (t->n[c] == 0)
            continue;
        if (s->n[c] == 0) {
            s->lo[c] = t->lo[c];
            s->hi[c] = t->hi[c];
        } else {
            double na = (double)s->n[c], nb = (double)t->n[c];
            s->lo[c] = (float)((na * s->lo[c] + nb * t->lo[c]) / (na + nb));
            s->hi[c] = (float)((na * s->hi[c] + nb * t->hi[c]) / (na + nb));
        }
        s->n[c] += t->n[c];
    }
    return QC_OK;
}

static int ema_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    const ema_state *s = o->state;
    (void)err;
    out->lo = s->lo[c];
    out->hi = fmaxf(s->hi[c], s->lo[c]);    /* both are averages of lo <= hi pairs */
    return QC_OK;
}

static void ema_release(qc_observer *o)
{
    ema_state *s = o->state;
    if (s) {
        free(s->lo);
        free(s->hi);
        free(s->n);
        free(s);
    }
    o->state = NULL;
}

const qc_observer_ops qc_obs_ema = {
    "ema", ema_init, ema_update, ema_merge, ema_range, ema_release,
};
