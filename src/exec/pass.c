/* Sample-parallel passes (qc_pass.h): one thread per shard, samples claimed in order from a
 * shared counter under one lock, so claiming, progress and messages stay in sample order. */
#include <pthread.h>
#include <stdlib.h>
#include "par.h"
#include "qc_pass.h"

typedef struct pass_state {
    const qc_pass_ops *ops;
    int             n, next, finished, used, skipped;
    int             failed_at;          /* lowest failed sample, n if none */
    int             rc;
    qc_err          err;
    pthread_mutex_t mu;
} pass_state;

typedef struct shard_arg {
    pass_state *p;
    int         shard;
} shard_arg;

static void run_shard(pass_state *p, int shard)
{
    qc_err err = { 0 };
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->failed_at < p->n ? p->n : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            return;
        int rc = p->ops->sample(p->ops->user, shard, i, &err);
        pthread_mutex_lock(&p->mu);
        if (rc < 0) {
            if (i < p->failed_at) {
                p->failed_at = i;
                p->rc = rc;
                p->err = err;
            }
        } else {
            p->finished++;
            if (rc == 0)
                p->used++;
            else
                p->skipped++;
            if (p->ops->after)
                p->ops->after(p->ops->user, i, rc, p->finished);
        }
        pthread_mutex_unlock(&p->mu);
    }
}

static void *shard_main(void *arg)
{
    shard_arg *a = arg;
    qc_par_set_serial(1);
    run_shard(a->p, a->shard);
    return NULL;
}

int qc_pass_default_jobs(void)
{
    return qc_par_threads();
}

int qc_pass_run(const qc_pass_ops *ops, int n, int jobs, int *used, int *skipped, qc_err *err)
{
    pass_state p = { .ops = ops, .n = n, .failed_at = n };
    if (jobs < 1)
        jobs = 1;
    pthread_t *th = jobs > 1 ? calloc((size_t)jobs, sizeof *th) : NULL;
    shard_arg *args = jobs > 1 ? calloc((size_t)jobs, sizeof *args) : NULL;
    if (jobs > 1 && (!th || !args)) {
        free(th);
        free(args);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&p.mu, NULL);
    int started = 1;
    for (int s = 1; s < jobs; s++) {
        args[s] = (shard_arg){ &p, s };
        if (pthread_create(&th[s], NULL, shard_main, &args[s]) != 0)
            break;              /* fewer threads: the remaining shards just stay idle */
        started++;
    }
    /* shard 0 in the calling thread, serial too when others run beside it */
    if (started > 1)
        qc_par_set_serial(1);
    run_shard(&p, 0);
    if (started > 1)
        qc_par_set_serial(0);
    for (int s = 1; s < started; s++)
        pthread_join(th[s], NULL);
    pthread_mutex_destroy(&p.mu);
    free(th);
    free(args);
    if (used)
        *used = p.used;
    if (skipped)
        *skipped = p.skipped;
    if (p.failed_at < n) {
        *err = p.err;
        return p.rc;
    }
    return QC_OK;
}
