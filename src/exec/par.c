/* Persistent worker threads for kernel-level parallelism. Items are claimed from an atomic
 * counter, so the caller never waits for a worker that has not started; it only waits for
 * chunks already claimed. Workers poll briefly after a loop (layers follow each other within
 * microseconds) and then sleep on a condition variable. Without threads everything runs in
 * the caller. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "par.h"

#define MAX_THREADS 16
#define SPIN_ROUNDS 20000       /* polls (x86 pause, ~10 ns each) before a worker sleeps */

static pthread_once_t   once = PTHREAD_ONCE_INIT;
static int              n_threads = 1;
static pthread_mutex_t  run_mu = PTHREAD_MUTEX_INITIALIZER;   /* one loop at a time */
static pthread_mutex_t  wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   wake_cv = PTHREAD_COND_INITIALIZER;
static atomic_uint      generation;
static atomic_int       active;         /* workers inside the current loop */
static atomic_int       closed = 1;     /* 0 while a loop accepts workers */
static atomic_llong     next_item;
static qc_par_fn        loop_fn;
static void            *loop_ctx;
static int64_t          loop_n, loop_grain;
static _Thread_local int in_loop;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_items(void)
{
    for (;;) {
        int64_t lo = atomic_fetch_add(&next_item, loop_grain);
        if (lo >= loop_n)
            return;
        int64_t hi = lo + loop_grain < loop_n ? lo + loop_grain : loop_n;
        loop_fn(loop_ctx, lo, hi);
    }
}

static void *worker(void *arg)
{
    unsigned seen = 0;
    (void)arg;
    in_loop = 1;                /* a worker never opens a loop of its own */
    for (;;) {
        unsigned g = atomic_load(&generation);
        for (int s = 0; g == seen && s < SPIN_ROUNDS; s++) {
            cpu_relax();
            g = atomic_load(&generation);
        }
        if (g == seen) {
            pthread_mutex_lock(&wake_mu);
            while ((g = atomic_load(&generation)) == seen)
                pthread_cond_wait(&wake_cv, &wake_mu);
            pthread_mutex_unlock(&wake_mu);
        }
        seen = g;
        /* Announce, then check: the caller closes the loop before waiting for active == 0,
         * so either it sees us or we see it closed (both sides are seq_cst). */
        atomic_fetch_add(&active, 1);
        if (!atomic_load(&closed))
            run_items();
        atomic_fetch_sub(&active, 1);
    }
    return NULL;
}

/* fork(): hold the pool's locks across it so the child never inherits one mid-use, and
 * let the child (which has no workers) run every loop itself. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&run_mu);
    pthread_mutex_lock(&wake_mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&wake_mu);
    pthread_mutex_unlock(&run_mu);
}

static void fork_child(void)
{
    pthread_mutex_unlock(&wake_mu);
    pthread_mutex_unlock(&run_mu);
    n_threads = 1;
}

static void init_pool(void)
{
    const char *env = getenv("QC_THREADS");
    long n = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    int started = 1;
    if (n > 1 && pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
        n = 1;
    for (int t = 1; t < n; t++) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, worker, NULL);
        pthread_attr_destroy(&at);
        if (rc != 0)
            break;
        started++;
    }
    n_threads = started;
}

void qc_par_set_serial(int on)
{
    in_loop = on != 0;
}

int qc_par_serial(void)
{
    return in_loop;
}

int qc_par_threads(void)
{
    pthread_once(&once, init_pool);
    return n_threads;
}

void qc_par_for(int64_t n, int64_t grain, qc_par_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    pthread_once(&once, init_pool);
    if (n_threads == 1 || n <= grain || in_loop || pthread_mutex_trylock(&run_mu) != 0) {
        fn(ctx, 0, n);
        return;
    }
    in_loop = 1;
    loop_fn = fn;
    loop_ctx = ctx;
    loop_n = n;
    loop_grain = grain;
    atomic_store(&next_item, 0);
    atomic_store(&closed, 0);           /* publishes the fields above */
    pthread_mutex_lock(&wake_mu);
    atomic_fetch_add(&generation, 1);
    pthread_cond_broadcast(&wake_cv);
    pthread_mutex_unlock(&wake_mu);
    run_items();
    atomic_store(&closed, 1);
    for (long s = 0; atomic_load(&active) > 0; s++) {
        if (s < SPIN_ROUNDS)
            cpu_relax();
        else
            sched_yield();
    }
    in_loop = 0;
    pthread_mutex_unlock(&run_mu);
}

typedef struct each_job {
    qc_par_item_fn fn;
    void          *ctx;
    int           *rc;
    qc_err        *err;
} each_job;

static void each_items(void *ctx, int64_t lo, int64_t hi)
{
    each_job *j = ctx;
    for (int64_t i = lo; i < hi; i++)
        j->rc[i] = j->fn(j->ctx, i, &j->err[i]);
}

int qc_par_each(int64_t n, qc_par_item_fn fn, void *ctx, qc_err *err)
{
    if (n <= 0)
        return QC_OK;
    each_job j = { fn, ctx, calloc((size_t)n, sizeof *j.rc), calloc((size_t)n, sizeof *j.err) };
    int rc = j.rc && j.err ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
    if (rc == QC_OK)
        qc_par_for(n, 1, each_items, &j);
    for (int64_t i = 0; i < n && rc == QC_OK; i++)
        if ((rc = j.rc[i]) != QC_OK)
            *err = j.err[i];
    free(j.rc);
    free(j.err);
    return rc;
}
