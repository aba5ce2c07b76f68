/* Exact sample-parallel EMA (qc_ema_log.h): a ring of per-sample records, replayed in sample
 * order into the target observers as soon as the oldest sample in flight is done. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "qc_ema_log.h"

struct qc_ema_log {
    qc_observer   **tgt;            /* compacted: EMA targets only */
    int            *tmap;           /* given target index -> compact index, -1 */
    int             n_given, n_tgt;
    int             n, window;
    int             base;           /* oldest sample not replayed yet */
    float          *rec;            /* window x n_tgt x (lo, hi); lo > hi: no update */
    unsigned char  *done;           /* window */
    int             shards;
    int            *slot;           /* per shard: ring slot of its current sample, -1 */
    int             aborted;
    qc_observer   **att;            /* every attached observer (detached by free) */
    int             n_att;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
};

/* What can record: a per-tensor EMA observer. */
static int tensor_ema(const qc_observer *o)
{
    return o && !strcmp(qc_observer_method(o), "ema") && o->cfg.per_channel_axis < 0;
}

static void clear_slot(qc_ema_log *l, int slot)
{
    float *r = l->rec + (size_t)slot * (size_t)l->n_tgt * 2;
    for (int t = 0; t < l->n_tgt; t++) {
        r[2 * t] = INFINITY;
        r[2 * t + 1] = -INFINITY;
    }
    l->done[slot] = 0;
}

int qc_ema_log_new(qc_ema_log **out, qc_observer *const *targets, int n_targets,
                   int n_samples, int shards, int window, qc_err *err)
{
    *out = NULL;
    qc_ema_log *l = calloc(1, sizeof *l);
    if (!l)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    l->n_given = n_targets;
    l->n = n_samples;
    l->window = window > 0 ? window : 32;
    l->shards = shards > 0 ? shards : 1;
    l->tgt = calloc((size_t)n_targets + 1, sizeof *l->tgt);
    l->tmap = calloc((size_t)n_targets + 1, sizeof *l->tmap);
    l->slot = calloc((size_t)l->shards, sizeof *l->slot);
    l->att = calloc((size_t)n_targets * (size_t)l->shards + 1, sizeof *l->att);
    l->done = calloc((size_t)l->window, 1);
    if (!l->tgt || !l->tmap || !l->slot || !l->att || !l->done) {
        qc_ema_log_free(l);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n_targets; i++) {
        l->tmap[i] = -1;
        qc_observer *o = targets[i];
        if (!o || strcmp(qc_observer_method(o), "ema") != 0)
            continue;
        if (!tensor_ema(o)) {
            qc_ema_log_free(l);
            return qc_errf(err, QC_EUSAGE, "EMA log: per-channel EMA observers cannot record");
        }
        l->tmap[i] = l->n_tgt;
        l->tgt[l->n_tgt++] = o;
    }
    l->rec = malloc((size_t)l->window * (size_t)l->n_tgt * 2 * sizeof *l->rec + 1);
    if (!l->rec) {
        qc_ema_log_free(l);
        return qc_errf(err, QC_ENOMEM, "out of memory for the EMA log (%d x %d)", l->window,
                       l->n_tgt);
    }
    for (int s = 0; s < l->window; s++)
        clear_slot(l, s);
    for (int s = 0; s < l->shards; s++)
        l->slot[s] = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    *out = l;
    return QC_OK;
}

int qc_ema_log_attach(qc_ema_log *l, int shard, qc_observer *const *obs, qc_err *err)
{
    if (shard < 0 || shard >= l->shards)
        return qc_errf(err, QC_EUSAGE, "EMA log: shard %d of %d", shard, l->shards);
    for (int i = 0; i < l->n_given; i++) {
        if (l->tmap[i] < 0)
            continue;
        if (!tensor_ema(obs[i]))
            return qc_errf(err, QC_EUSAGE, "EMA log: shard %d: observer %d is not a "
                           "per-tensor EMA observer", shard, i);
        qc_ema_observer_record(obs[i], l, shard, l->tmap[i]);
        l->att[l->n_att++] = obs[i];
    }
    return QC_OK;
}

int qc_ema_log_begin(qc_ema_log *l, int shard, int i, qc_err *err)
{
    pthread_mutex_lock(&l->mu);
    /* the oldest sample in flight never waits (i == base is in the window): no deadlock */
    while (!l->aborted && i >= l->base + l->window)
        pthread_cond_wait(&l->cv, &l->mu);
    int aborted = l->aborted;
    if (!aborted)
        l->slot[shard] = i % l->window;
    pthread_mutex_unlock(&l->mu);
    if (aborted)
        return qc_errf(err, QC_EINTERNAL, "EMA log: an earlier sample failed");
    return QC_OK;
}

int qc_ema_log_put(qc_ema_log *l, int shard, int target, float lo, float hi, qc_err *err)
{
    /* slot[shard] was set under the lock by this thread's begin and changes only in its
     * end; the slot's records are read only after that end (under the lock) */
    int slot = l->slot[shard];
    if (slot < 0)
        return qc_errf(err, QC_EINTERNAL, "EMA log: update outside a sample (shard %d)", shard);
    float *r = l->rec + ((size_t)slot * (size_t)l->n_tgt + (size_t)target) * 2;
    if (r[0] <= r[1])
        return qc_errf(err, QC_EINTERNAL, "EMA log: observer updated twice in one sample");
    r[0] = lo;
    r[1] = hi;
    return QC_OK;
}

/* Under the lock: folds the finished samples at the front of the ring, in order. */
static void replay(qc_ema_log *l)
{
    int moved = 0;
    while (l->base < l->n && l->done[l->base % l->window]) {
        int slot = l->base % l->window;
        const float *r = l->rec + (size_t)slot * (size_t)l->n_tgt * 2;
        for (int t = 0; t < l->n_tgt; t++)
            if (r[2 * t] <= r[2 * t + 1])
                qc_ema_observer_fold(l->tgt[t], r[2 * t], r[2 * t + 1]);
        clear_slot(l, slot);
        l->base++;
        moved = 1;
    }
    if (moved)
        pthread_cond_broadcast(&l->cv);
}

void qc_ema_log_end(qc_ema_log *l, int shard, int i, int ok)
{
    pthread_mutex_lock(&l->mu);
    l->slot[shard] = -1;
    if (!ok) {
        l->aborted = 1;
        pthread_cond_broadcast(&l->cv);
    } else if (!l->aborted && i >= l->base && i < l->base + l->window) {
        l->done[i % l->window] = 1;
        replay(l);
    }
    pthread_mutex_unlock(&l->mu);
}

int qc_ema_log_finish(qc_ema_log *l, qc_err *err)
{
    pthread_mutex_lock(&l->mu);
    int base = l->base, aborted = l->aborted;
    pthread_mutex_unlock(&l->mu);
    if (aborted)
        return qc_errf(err, QC_EINTERNAL, "EMA log: a sample failed");
    if (base < l->n)
        return qc_errf(err, QC_EINTERNAL, "EMA log: sample %d never finished", base);
    return QC_OK;
}

void qc_ema_log_free(qc_ema_log *l)
{
    if (!l)
        return;
    for (int k = 0; l->att && k < l->n_att; k++)
        qc_ema_observer_record(l->att[k], NULL, 0, 0);
    if (l->rec) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    free(l->tgt);
    free(l->tmap);
    free(l->rec);
    free(l->done);
    free(l->slot);
    free(l->att);
    free(l);
}
