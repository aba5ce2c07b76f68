/* A tiny persistent thread pool for kernels (private to src/exec). */
#ifndef QC_PAR_H
#define QC_PAR_H

/* Body of a parallel region: called once per thread with tid in [0, nthreads). */
typedef void (*qc_par_fn)(void *ctx, int tid, int nthreads);

/* Threads a region uses: QC_THREADS if set, else the online CPUs (1..16). */
int  qc_par_threads(void);
/* Runs fn on every pool thread (the caller is thread 0) and returns when all have finished.
 * Nested or concurrent calls run serially in the caller with nthreads = 1, so callers must
 * partition work by (tid, nthreads) and never assume a particular count. */
void qc_par_run(qc_par_fn fn, void *ctx);

#endif
