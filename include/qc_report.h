/* The HTML report of `calibrate compare --html FILE` (src/quant/report_html.c).
 *
 * One self-contained file: no script, no external reference of any kind (styles inline,
 * charts as inline SVG), so it opens offline and anywhere. Contents: the ranking table (the
 * terminal table's columns), the per-layer SQNR of the best `top` candidates along graph
 * order, and for every observed activation its calibration histogram (log counts, at most
 * `bars` bars) with each method's range [lo, hi] drawn as labelled vertical lines, in a
 * <details> element (the worst layers of the charted candidates start open).
 *
 * Methods: candidates that differ only in their weight options get the same activation
 * ranges, so each tensor shows one line pair per (method, percentile, symmetric) taken from
 * the best-ranked candidate of that kind. */
#ifndef QC_REPORT_H
#define QC_REPORT_H

#include "qc_compare.h"
#include "qc_model.h"

typedef struct qc_report_info {
    const qc_model *model;          /* the compared model: producers' op types; may be NULL */
    const char     *model_path;     /* shown in the title; may be NULL */
    const char     *data, *eval;    /* shown; eval NULL: held out from data */
    const char     *metric;         /* ranking metric's name ("sqnr") */
    int             n_calib;        /* calibration samples used */
    int             top;            /* candidates in the per-layer chart; 0: 3 */
    int             bars;           /* histogram bars at most (8..1024); 0: 96 */
} qc_report_info;

/* Writes the report atomically to `path` after qc_compare_evaluate; order[0..n) is the
 * ranking (qc_compare_rank). QC_EIO naming the path, QC_ENOMEM. */
int qc_report_html(const char *path, const qc_compare *c, const int *order,
                   const qc_report_info *info, qc_err *err);

#endif
