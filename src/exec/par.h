/* A tiny persistent thread pool for kernels (private to src/exec). */
#ifndef QC_PAR_H
#define QC_PAR_H

#include <stdint.h>
#include "qc_err.h"

/* Processes items [lo, hi) of a parallel loop. */
typedef void (*qc_par_fn)(void *ctx, int64_t lo, int64_t hi);

/* Threads a loop may use: QC_THREADS if set, else the online CPUs (1..16). */
int  qc_par_threads(void);
/* Runs fn over [0, n) in chunks of `grain` items claimed dynamically by the caller and the
 * pool's workers; returns when every item is done. A worker that wakes late simply finds
 * nothing left, so a busy machine degrades to serial execution instead of waiting. Nested
 * or concurrent loops run serially in the caller. */
void qc_par_for(int64_t n, int64_t grain, qc_par_fn fn, void *ctx);

/* Item i of qc_par_each: QC_OK, or an error code with err filled. */
typedef int (*qc_par_item_fn)(void *ctx, int64_t i, qc_err *err);
/* fn over items [0, n) as qc_par_for runs them (one at a time): QC_OK, or the error of the
 * lowest failing item, the one a serial loop stopping at its first error would report (the
 * items after it still ran). */
int  qc_par_each(int64_t n, qc_par_item_fn fn, void *ctx, qc_err *err);

/* 1 when a qc_par_for called from this thread would run serially whatever its size (inside
 * a loop's item, or after qc_par_set_serial(1)): kernels then need not split work. */
int  qc_par_serial(void);

/* A per-thread scratch slot for a loop's items: claims one of the n (<= 64) slots whose
 * bits in *busy are clear (atomically; at most one item a thread runs at once, so with n the
 * loop's threads one is always free) and returns its index; qc_slot_release gives it back. */
static inline int qc_slot_claim(unsigned long *busy, int n)
{
    for (int s = 0;; s = (s + 1) % n)
        if (!(__atomic_fetch_or(busy, 1ul << s, __ATOMIC_ACQUIRE) & (1ul << s)))
            return s;
}

static inline void qc_slot_release(unsigned long *busy, int s)
{
    __atomic_fetch_and(busy, ~(1ul << s), __ATOMIC_RELEASE);
}

/* on != 0: every qc_par_for called from this thread runs serially in it (threads that run
 * whole samples side by side, each on one core); 0 restores the pool. */
void qc_par_set_serial(int on);

#endif
