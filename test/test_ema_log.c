/* Exact sample-parallel EMA (qc_ema_log.h): sharded passes give the serial pass's bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "qc_ema_log.h"
#include "qc_pass.h"
#include "test.h"

#define N_SAMPLES 150
#define N_OBS 3                 /* two EMA observers (different constants) and a minmax one */
#define MAX_SHARDS 4

typedef struct ema_fx {
    float       *x[N_SAMPLES];
    int64_t      len[N_SAMPLES];
    int          fail_at;
    int          shard_used[MAX_SHARDS];
    qc_ema_log  *log;
    qc_observer *obs[MAX_SHARDS][N_OBS];
} ema_fx;

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Samples of varied length and scale; every 11th holds no finite value, every 13th is
 * skipped by the pass. */
static void make_samples(ema_fx *f)
{
    uint32_t s = 12345;
    for (int i = 0; i < N_SAMPLES; i++) {
        f->len[i] = 1 + rnd(&s) % 3000;
        f->x[i] = malloc((size_t)f->len[i] * sizeof *f->x[i]);
        float scale = 0.01f + (float)(rnd(&s) % 1000) / 37.0f, shift = (float)(rnd(&s) % 200);
        for (int64_t k = 0; k < f->len[i]; k++)
            f->x[i][k] = i % 11 == 0 ? NAN
                                     : ((float)(rnd(&s) % 65536) / 65536.0f - 0.5f) * scale -
                                       shift / 7.0f;
        if (i % 5 == 0 && i % 11 != 0)
            f->x[i][f->len[i] / 2] = INFINITY;
    }
}

static int new_observers(qc_observer **obs, qc_err *err)
{
    qc_obs_config cfg;
    qc_obs_config_default(&cfg);
    int rc = qc_observer_new(&obs[0], "ema", &cfg, err);
    cfg.ema_constant = 0.3f;
    if (rc == QC_OK)
        rc = qc_observer_new(&obs[1], "ema", &cfg, err);
    if (rc == QC_OK)
        rc = qc_observer_new(&obs[2], "minmax", &cfg, err);
    return rc;
}

static int feed(qc_observer **obs, const ema_fx *f, int i, qc_err *err)
{
    qc_tensor t = { .dtype = QC_F32, .ndim = 1, .dims = { f->len[i] }, .data = f->x[i] };
    for (int k = 0; k < N_OBS; k++) {
        int rc = qc_observer_update(obs[k], &t, err);
        if (rc != QC_OK)
            return rc;
    }
    return QC_OK;
}

static int fx_sample(void *user, int shard, int i, qc_err *err)
{
    ema_fx *f = user;
    int rc = qc_ema_log_begin(f->log, shard, i, err);
    if (rc != QC_OK)
        return rc;
    /* long enough for every shard to take samples (and for the window to fill) */
    nanosleep(&(struct timespec){ 0, 50000 + 20000 * (i % 7) }, NULL);
    if (i == f->fail_at)
        rc = qc_errf(err, QC_EINPUT, "sample %d is bad", i);
    else if (i % 13 == 0)
        rc = 1;
    else
        rc = feed(f->obs[shard], f, i, err);
    f->shard_used[shard] = 1;       /* only ever set to 1: a benign flag */
    qc_ema_log_end(f->log, shard, i, rc >= 0);
    return rc;
}

/* The pass on `jobs` shards with a ring of `window` samples; shard 0 feeds obs[0] (the
 * targets). Returns the pass's status. */
static int sharded(ema_fx *f, int jobs, int window, qc_err *err)
{
    int rc = QC_OK;
    for (int s = 0; s < jobs && rc == QC_OK; s++)
        rc = new_observers(f->obs[s], err);
    if (rc == QC_OK)
        rc = qc_ema_log_new(&f->log, f->obs[0], N_OBS, N_SAMPLES, jobs, window, err);
    for (int s = 0; s < jobs && rc == QC_OK; s++)
        rc = qc_ema_log_attach(f->log, s, f->obs[s], err);
    qc_pass_ops ops = { f, fx_sample, NULL };
    if (rc == QC_OK)
        rc = qc_pass_run(&ops, N_SAMPLES, jobs, NULL, NULL, err);
    if (rc == QC_OK)
        rc = qc_ema_log_finish(f->log, err);
    qc_ema_log_free(f->log);
    f->log = NULL;
    for (int s = 1; s < jobs; s++)
        for (int k = 0; k < N_OBS; k++) {
            if (rc == QC_OK)
                rc = qc_observer_merge(f->obs[0][k], f->obs[s][k], err);
            qc_observer_free(f->obs[s][k]);
            f->obs[s][k] = NULL;
        }
    return rc;
}

static int same_bits(const qc_observer *a, const qc_observer *b)
{
    qc_range ra, rb;
    qc_err err = { 0 };
    if (qc_observer_range(a, 0, &ra, &err) != QC_OK || qc_observer_range(b, 0, &rb, &err))
        return 0;
    return !memcmp(&ra, &rb, sizeof ra) && qc_observer_count(a) == qc_observer_count(b) &&
           qc_observer_nonfinite(a) == qc_observer_nonfinite(b) &&
           a->seen_lo == b->seen_lo && a->seen_hi == b->seen_hi;
}

QC_TEST(ema_log_sharded_equals_serial)
{
    ema_fx f = { .fail_at = -1 };
    qc_observer *ref[N_OBS] = { 0 };
    qc_err err = { 0 };
    make_samples(&f);
    CHECK_OK(new_observers(ref, &err));
    for (int i = 0; i < N_SAMPLES; i++)
        if (i % 13 != 0)
            CHECK_OK(feed(ref, &f, i, &err));
    static const int windows[] = { 1, 2, 5, 0 };
    for (int jobs = 1; jobs <= MAX_SHARDS; jobs++)
        for (int w = 0; w < 4; w++) {
            memset(f.shard_used, 0, sizeof f.shard_used);
            CHECK_OK(sharded(&f, jobs, windows[w], &err));
            CHECK(f.shard_used[jobs - 1]);      /* the shards did run side by side */
            for (int k = 0; k < N_OBS; k++) {
                if (!same_bits(f.obs[0][k], ref[k]))
                    qc_test_fail(__FILE__, __LINE__, "jobs %d window %d observer %d differs",
                                 jobs, windows[w], k);
                qc_observer_free(f.obs[0][k]);
                f.obs[0][k] = NULL;
            }
        }
    /* and the EMA merge of a pass that did not record would not have matched */
    qc_observer *a[N_OBS], *b[N_OBS];
    CHECK_OK(new_observers(a, &err));
    CHECK_OK(new_observers(b, &err));
    for (int i = 0; i < N_SAMPLES; i++)
        if (i % 13 != 0)
            CHECK_OK(feed(i % 2 ? b : a, &f, i, &err));
    CHECK_OK(qc_observer_merge(a[0], b[0], &err));
    CHECK(!same_bits(a[0], ref[0]));
    for (int k = 0; k < N_OBS; k++) {
        qc_observer_free(a[k]);
        qc_observer_free(b[k]);
        qc_observer_free(ref[k]);
    }
    for (int i = 0; i < N_SAMPLES; i++)
        free(f.x[i]);
}

QC_TEST(ema_log_failure_releases_waiters)
{
    ema_fx f = { .fail_at = 40 };
    qc_err err = { 0 };
    make_samples(&f);
    for (int jobs = 2; jobs <= MAX_SHARDS; jobs++) {
        int rc = sharded(&f, jobs, 2, &err);
        CHECK_INT(rc, QC_EINPUT);
        CHECK(strstr(err.msg, "sample 40 is bad") != NULL);
        for (int k = 0; k < N_OBS; k++) {
            qc_observer_free(f.obs[0][k]);
            f.obs[0][k] = NULL;
        }
    }
    for (int i = 0; i < N_SAMPLES; i++)
        free(f.x[i]);
}

QC_TEST(ema_log_refuses_per_channel)
{
    qc_obs_config cfg;
    qc_observer *o = NULL;
    qc_ema_log *l = NULL;
    qc_err err = { 0 };
    qc_obs_config_default(&cfg);
    cfg.per_channel_axis = 0;
    CHECK_OK(qc_observer_new(&o, "ema", &cfg, &err));
    CHECK_INT(qc_ema_log_new(&l, &o, 1, 10, 2, 4, &err), QC_EUSAGE);
    CHECK(l == NULL);
    qc_observer_free(o);
}
