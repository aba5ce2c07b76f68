/* ema: moving average of the per-update min and max, x += c * (x_update - x) (ORT, PyTorch).
 * The first update that has a finite value initializes; updates (or channels) without any
 * finite value are skipped. A recording observer (qc_ema_log.h) counts its values but hands
 * each update's (min, max) to a log, which folds them into the target in sample order. */
#include <math.h>
#include <stdlib.h>
#include "qc_ema_log.h"
#include "qc_observer.h"

typedef struct ema_state {
    float      *lo, *hi;
    int64_t    *n;              /* updates folded in, per channel */
    qc_ema_log *log;            /* recording (sample-parallel pass), else NULL */
    int         shard, target;
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

/* The recurrence, shared by the update and the log's replay: the same bits either way. */
static void fold(ema_state *s, float k, int c, float lo, float hi)
{
    if (s->n[c] == 0) {
        s->lo[c] = lo;
        s->hi[c] = hi;
    } else {
        s->lo[c] += k * (lo - s->lo[c]);
        s->hi[c] += k * (hi - s->hi[c]);
    }
    s->n[c]++;
}

/* One update's (lo, hi) of channel c: to the log when recording, else folded. */
static int put(qc_observer *o, int c, float lo, float hi, qc_err *err)
{
    ema_state *s = o->state;
    if (s->log)
        return qc_ema_log_put(s->log, s->shard, s->target, lo, hi, err);
    fold(s, o->cfg.ema_constant, c, lo, hi);
    return QC_OK;
}

static int ema_update(qc_observer *o, const qc_obs_view *v, qc_err *err)
{
    for (int c = 0; c < v->n_ch; c++) {
        float lo, hi;
        if (qc_obs_scan_channel(o, v, c, &lo, &hi) == 0)
            continue;
        int rc = put(o, c, lo, hi, err);
        if (rc != QC_OK)
            return rc;
    }
    return QC_OK;
}

static int ema_extremes(qc_observer *o, float lo, float hi, qc_err *err)
{
    return put(o, 0, lo, hi, err);
}

int qc_ema_observer_record(qc_observer *o, qc_ema_log *l, int shard, int target)
{
    if (!o || o->ops != &qc_obs_ema || !o->state)
        return 0;
    ema_state *s = o->state;
    s->log = l;
    s->shard = shard;
    s->target = target;
    return 1;
}

void qc_ema_observer_fold(qc_observer *o, float lo, float hi)
{
    fold(o->state, o->cfg.ema_constant, 0, lo, hi);
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
    "ema", ema_init, ema_update, ema_merge, ema_range, ema_release, ema_extremes,
};
