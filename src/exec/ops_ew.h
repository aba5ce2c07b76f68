/* Private to the elementwise family: ops_unary.c and ops_binary.c each dispatch all of their
 * ops through one prepare/infer/run triple (the op code is resolved once, at prepare time, from
 * op_type); ops_elementwise.c lists them in the qc_ops_elementwise table. */
#ifndef QC_OPS_EW_H
#define QC_OPS_EW_H

#include "ops.h"

int  qc_ew_unary_prepare(qc_knode *n, qc_err *err);
int  qc_ew_unary_infer(qc_knode *n, qc_err *err);
int  qc_ew_unary_run(qc_knode *n, qc_run *r, qc_err *err);

/* Binary, variadic (Sum/Mean/Max/Min) and ternary (Where) broadcasting ops. */
int  qc_ew_binary_prepare(qc_knode *n, qc_err *err);
int  qc_ew_binary_infer(qc_knode *n, qc_err *err);
int  qc_ew_binary_run(qc_knode *n, qc_run *r, qc_err *err);

#endif
