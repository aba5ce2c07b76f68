/* What the measuring tools in tools/ab share: a monotonic clock, and the loop that runs two
 * sides (A and B) over a dataset's samples in one process, sample by sample, which side goes
 * first alternating, so both see the same machine load. Header-only: each tool is one file
 * linked against libqcal.a alone. */
#ifndef QC_TOOLS_AB_H
#define QC_TOOLS_AB_H

#include <time.h>
#include "qc_data.h"

static inline double ab_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One side's run on sample `in`; QC_OK or an error with err filled. */
typedef int (*ab_side_fn)(void *user, int side, const qc_tensor *in, qc_err *err);

/* `rounds` rounds over the samples of d, each sample through side 0 and side 1 in turn;
 * t[side][round] += the seconds of each call. With warmup, a first round runs uncounted
 * (weight packing, buffers). */
static inline int ab_alternate(qc_dataset *d, int rounds, int warmup, ab_side_fn fn, void *user,
                               double *const t[2], qc_err *err)
{
    int rc = QC_OK, n = qc_dataset_count(d);
    for (int r = warmup ? -1 : 0; r < rounds && rc == QC_OK; r++)
        for (int i = 0; i < n && rc == QC_OK; i++) {
            qc_tensor *in;
            if ((rc = qc_dataset_load(d, i, &in, err)) != QC_OK)
                break;
            for (int k = 0; k < 2 && rc == QC_OK; k++) {
                int b = (i + r + k) & 1;        /* which side goes first alternates */
                double t0 = ab_now();
                rc = fn(user, b, in, err);
                if (r >= 0)
                    t[b][r] += ab_now() - t0;
            }
        }
    return rc;
}

#endif
