/* Sample-parallel passes (qc_pass.h): every sample once, counts, the reported error. */
#include <stdatomic.h>
#include <string.h>
#include "qc_pass.h"
#include "test.h"

#define N 200

typedef struct pass_fx {
    atomic_int seen[N];
    int        fail_at[2];              /* samples that fail (-1: none) */
    int        skip_every;
    int        after_calls, last_finished, after_monotonic;
} pass_fx;

static int fx_sample(void *user, int shard, int i, qc_err *err)
{
    pass_fx *f = user;
    (void)shard;
    atomic_fetch_add(&f->seen[i], 1);
    if (i == f->fail_at[0] || i == f->fail_at[1])
        return qc_errf(err, QC_EINPUT, "sample %d is bad", i);
    return f->skip_every && i % f->skip_every == 0;
}

static void fx_after(void *user, int i, int status, int n_finished)
{
    pass_fx *f = user;
    (void)i;
    (void)status;
    f->after_calls++;
    f->after_monotonic &= n_finished == f->last_finished + 1;
    f->last_finished = n_finished;
}

static void run_fx(pass_fx *f, int jobs, int *rc, int *used, int *skipped, qc_err *err)
{
    qc_pass_ops ops = { f, fx_sample, fx_after };
    f->after_monotonic = 1;
    *rc = qc_pass_run(&ops, N, jobs, used, skipped, err);
}

QC_TEST(pass_every_sample_once)
{
    for (int jobs = 1; jobs <= 4; jobs++) {
        pass_fx f = { .fail_at = { -1, -1 }, .skip_every = 7 };
        int rc, used = -1, skipped = -1;
        qc_err err = { 0 };
        run_fx(&f, jobs, &rc, &used, &skipped, &err);
        CHECK_OK(rc);
        int once = 1;
        for (int i = 0; i < N; i++)
            once &= atomic_load(&f.seen[i]) == 1;
        CHECK(once);
        CHECK_INT(skipped, (N + 6) / 7);
        CHECK_INT(used, N - (N + 6) / 7);
        CHECK_INT(f.after_calls, N);
        CHECK(f.after_monotonic);
    }
}

QC_TEST(pass_reports_lowest_failed_sample)
{
    for (int jobs = 1; jobs <= 3; jobs++) {
        pass_fx f = { .fail_at = { 150, 40 } };
        int rc, used, skipped;
        qc_err err = { 0 };
        run_fx(&f, jobs, &rc, &used, &skipped, &err);
        CHECK_INT(rc, QC_EINPUT);
        CHECK(strstr(err.msg, "sample 40 is bad") != NULL);
        CHECK(used < N);
    }
}
