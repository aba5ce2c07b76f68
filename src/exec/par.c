/* Persistent worker threads for kernel-level parallelism. Workers spin briefly after a region
 * (layers follow each other within microseconds) and then sleep on a condition variable.
 * If threads cannot be created everything runs in the caller. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "par.h"

#define MAX_THREADS 16
#define SPIN_ROUNDS 200000      /* ~100 us of polling before a worker sleeps */

static pthread_once_t   once = PTHREAD_ONCE_INIT;
static int              n_threads = 1;
static pthread_mutex_t  run_mu = PTHREAD_MUTEX_INITIALIZER;   /* one region at a time */
static pthread_mutex_t  wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   wake_cv = PTHREAD_COND_INITIALIZER;
static atomic_uint      generation;
static atomic_int       pending;
static qc_par_fn        job_fn;
static void            *job_ctx;
static _Thread_local int in_region;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *arg)
{
    int tid = (int)(intptr_t)arg;
    unsigned seen = 0;
    in_region = 1;              /* a worker never opens a region of its own */
    for (;;) {
        unsigned g = atomic_load_explicit(&generation, memory_order_acquire);
        for (int s = 0; g == seen && s < SPIN_ROUNDS; s++) {
            cpu_relax();
            g = atomic_load_explicit(&generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&wake_mu);
            while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&wake_cv, &wake_mu);
            pthread_mutex_unlock(&wake_mu);
        }
        seen = g;
        job_fn(job_ctx, tid, n_threads);
        atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
    }
    return NULL;
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
    for (int t = 1; t < n; t++) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, worker, (void *)(intptr_t)t);
        pthread_attr_destroy(&at);
        if (rc != 0)
            break;
        started++;
    }
    /* Workers read n_threads only after the first region is published. */
    n_threads = started;
}

int qc_par_threads(void)
{
    pthread_once(&once, init_pool);
    return n_threads;
}

void qc_par_run(qc_par_fn fn, void *ctx)
{
    pthread_once(&once, init_pool);
    if (n_threads == 1 || in_region || pthread_mutex_trylock(&run_mu) != 0) {
        fn(ctx, 0, 1);
        return;
    }
    in_region = 1;
    job_fn = fn;
    job_ctx = ctx;
    atomic_store_explicit(&pending, n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&wake_mu);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake_cv);
    pthread_mutex_unlock(&wake_mu);
    fn(ctx, 0, n_threads);
    for (long s = 0; atomic_load_explicit(&pending, memory_order_acquire) > 0; s++) {
        if (s < SPIN_ROUNDS)
            cpu_relax();
        else
            sched_yield();
    }
    in_region = 0;
    pthread_mutex_unlock(&run_mu);
}
