/* A one-line progress display on stderr, only when stderr is a terminal: done/total, rate,
 * ETA, redrawn in place at most ten times a second. Silent otherwise, so logs stay clean. */
#ifndef QC_PROGRESS_H
#define QC_PROGRESS_H

#include <stdint.h>

typedef struct qc_progress {
    int         enabled;
    const char *label;              /* borrowed, e.g. "run" */
    const char *unit;               /* borrowed, e.g. "samples" */
    int64_t     total, done;
    double      t0, last_draw;
    int         drawn;              /* a line is on screen */
} qc_progress;

/* Seconds on a monotonic clock. */
double qc_now(void);

/* `quiet` forces the display off. */
void qc_progress_start(qc_progress *p, const char *label, const char *unit, int64_t total,
                       int quiet);
void qc_progress_update(qc_progress *p, int64_t done);
/* Erases the line (call before printing anything else, errors included). */
void qc_progress_end(qc_progress *p);

#endif
