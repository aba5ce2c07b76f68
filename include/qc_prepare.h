/* Preparation before calibration (what users otherwise run a separate script for): fold
 * constant subgraphs (Constant nodes, Cast of FLOAT16 weights, shape arithmetic on
 * initializers) into initializers, merge duplicate nodes (same op, inputs and attributes),
 * then fold BatchNormalization into the Conv/ConvTranspose before it. The result is a new
 * model; the input is untouched. */
#ifndef QC_PREPARE_H
#define QC_PREPARE_H

#include "qc_model.h"

typedef struct qc_prep_report {
    int n_folded_nodes;         /* constant nodes replaced by initializers */
    int n_bn_folded;            /* BatchNormalization nodes folded away */
    int n_if_inlined;           /* If nodes with a constant condition replaced by a branch */
    int n_merged;               /* nodes dropped as copies of an earlier one (same op, inputs,
                                   attributes) */
} qc_prep_report;

int qc_prepare(const qc_model *in, qc_model **out, qc_prep_report *rep, qc_err *err);

#endif
