/* The min/max scan shared by every observer, cut into chunks that the thread pool runs.
 *
 * The scan keeps 8 lanes (element i goes to lane i mod 8). Min and max do not depend on the
 * order values are met in, except for which of -0 and +0 a tie keeps: qc_scan_finish returns
 * +0 for both, which makes the answer independent of the chunking, of the vector width and
 * of the threads, bit for bit. Chunks start at multiples of 8 elements. */
#ifndef QC_SCAN_H
#define QC_SCAN_H

#include <stdint.h>

typedef struct qc_scan_lanes {
    float lo[8], hi[8];
    int   nan;                  /* any NaN seen */
} qc_scan_lanes;

#define QC_SCAN_MAX_CHUNKS 64
/* Tensors smaller than this are scanned (and binned) by the caller alone: a parallel loop
 * costs a wake-up and a wait, and on a busy machine the wait for a preempted worker's chunk
 * costs more than the loop saves (measured: magika's 160K-value tensors ran slower split). */
#define QC_SCAN_PAR_MIN ((int64_t)1 << 18)

void qc_scan_lanes_init(qc_scan_lanes *l);
/* Lanes over x[0, n), n a multiple of 8, continuing l. */
void qc_scan_lanes_run(qc_scan_lanes *l, const float *x, int64_t n);
/* acc := acc followed by later (the elements of `later` come after those of acc). */
void qc_scan_lanes_merge(qc_scan_lanes *acc, const qc_scan_lanes *later);
/* Exact min/max of the finite values of x[0, n) and the count of non-finite ones, given the
 * lanes of x[0, n & ~7). */
int64_t qc_scan_finish(const qc_scan_lanes *l, const float *x, int64_t n, float *mn,
                       float *mx);
/* Elements per chunk for n elements (a multiple of 8; at most QC_SCAN_MAX_CHUNKS chunks). */
int64_t qc_scan_chunk(int64_t n);

#endif
