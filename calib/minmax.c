/* minmax: global min and max of every finite value seen. Merge is exact. */
#include <math.h>
#include <stdlib.h>
#include "qc_observer.h"

typedef struct mm_state {
    float *lo, *hi;             /* n_channels each; +inf / -inf until a finite value arrives */
} mm_state;

static int mm_init(qc_observer *o, int n_ch, qc_err *err)
{
    mm_state *s = qc_obs_alloc(o, 1, sizeof *s);
    if (s) {
        o->state = s;
        s->lo = qc_obs_alloc(o, (size_t)n_ch, sizeof *s->lo);
        s->hi = qc_obs_alloc(o, (size_t)n_ch, sizeof *s->hi);
    }
    if (!s || !s->lo || !s->hi)
        return qc_errf(err, QC_ENOMEM, "observer 'minmax': out of memory for %d channels", n_ch);
    for (int c = 0; c < n_ch; c++) {
        s->lo[c] = INFINITY;
        s->hi[c] = -INFINITY;
    }
    return QC_OK;
}

static int mm_update(qc_observer *o, const qc_obs_view *v, qc_err *err)
{
    mm_state *s = o->state;
    (void)err;
    for (int c = 0; c < v->n_ch; c++) {
        float lo, hi;
        if (qc_obs_scan_channel(o, v, c, &lo, &hi) == 0)
            continue;
        s->lo[c] = fminf(s->lo[c], lo);
        s->hi[c] = fmaxf(s->hi[c], hi);
    }
    return QC_OK;
}

static int mm_extremes(qc_observer *o, float lo, float hi, qc_err *err)
{
    mm_state *s = o->state;
    (void)err;
    s->lo[0] = fminf(s->lo[0], lo);
    s->hi[0] = fmaxf(s->hi[0], hi);
    return QC_OK;
}

static int mm_merge(qc_observer *o, const qc_observer *other, qc_err *err)
{
    mm_state *s = o->state;
    const mm_state *t = other->state;
    (void)err;
    for (int c = 0; c < o->n_channels; c++) {
        s->lo[c] = fminf(s->lo[c], t->lo[c]);
        s->hi[c] = fmaxf(s->hi[c], t->hi[c]);
    }
    return QC_OK;
}

static int mm_range(const qc_observer *o, int c, qc_range *out, qc_err *err)
{
    const mm_state *s = o->state;
    (void)err;
    out->lo = s->lo[c];
    out->hi = s->hi[c];
    return QC_OK;
}

static void mm_release(qc_observer *o)
{
    mm_state *s = o->state;
    if (s) {
        free(s->lo);
        free(s->hi);
        free(s);
    }
    o->state = NULL;
}

const qc_observer_ops qc_obs_minmax = {
    "minmax", mm_init, mm_update, mm_merge, mm_range, mm_release, mm_extremes,
};
