/* Sample-parallel passes: runs samples 0..n-1 through several independent shards at once (each
 * shard typically owns an executor, its observers and its own view of the data set), one
 * thread per shard, each thread single-threaded inside. On small models a sample keeps two
 * cores busy only part of the time (thread hand-offs, serial glue between kernels, observers
 * of small tensors); whole samples side by side keep them busy.
 *
 * Shards claim samples in increasing order. The caller merges shard results after the pass,
 * in shard order; results that depend on which shard saw which sample must not be computed
 * this way (EMA observers record and replay in sample order instead: qc_ema_log.h). */
#ifndef QC_PASS_H
#define QC_PASS_H

#include "qc_err.h"

typedef struct qc_pass_ops {
    void *user;
    /* Processes sample i on shard `shard` (0..jobs-1; shard 0 runs in the calling thread).
     * Called concurrently for different shards. Returns QC_OK, 1 to count the sample as
     * skipped, or a negative error with err filled (the pass then stops claiming samples). */
    int  (*sample)(void *user, int shard, int i, qc_err *err);
    /* Optional, called under the pass's lock after each sample with its status (0 done,
     * 1 skipped): progress and messages. */
    void (*after)(void *user, int i, int status, int n_finished);
} qc_pass_ops;

/* Threads a pass uses by default: QC_THREADS if set, else the online CPUs (1..16). */
int qc_pass_default_jobs(void);

/* Runs the pass on `jobs` shards (jobs < 1 means 1; the caller has state for shards
 * 0..jobs-1 and gains nothing from more shards than samples). On error returns the
 * error of the lowest-numbered failed sample (the one a serial pass would have reported).
 * *used and *skipped (may be NULL) count samples processed and skipped. */
int qc_pass_run(const qc_pass_ops *ops, int n, int jobs, int *used, int *skipped, qc_err *err);

#endif
