/* onnxruntime emulation for QDQ models (qc_exec_opts.emulate_ort): qfuse.c finds the
 * DequantizeLinear -> op -> QuantizeLinear groups that onnxruntime's QDQ transformers fuse
 * into integer kernels, and ops_qlinear.c computes them the way those kernels round. */
#ifndef QC_QFUSE_H
#define QC_QFUSE_H

#include "exec_priv.h"

/* Rewrites matched groups into one qlinear knode each (the Q and, when no one else reads
 * them, the DQ nodes are skipped) and recomputes liveness. Planning-time only. */
int qc_qfuse(qc_exec *x, qc_err *err);

/* The fused kernels. Input layouts follow onnxruntime's operators (a missing zero point is
 * NULL):
 *   conv:    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp [, bias int32]  (QLinearConv)
 *   sigmoid: x, x_scale, x_zp, y_scale, y_zp                        (QLinearSigmoid)
 *   add/mul: a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp      (QLinearAdd/Mul)
 * The conv def reads the original Conv node's attributes. */
/* qc_exec_opts.fuse_qdq: each QuantizeLinear read by one DequantizeLinear with the same
 * per-tensor 8-bit scale and zero point becomes one qc_fake_quant step in the DQ's knode (the
 * Q is skipped); recomputes liveness. Planning-time only. */
int qc_qdq_fuse(qc_exec *x, qc_err *err);

/* After qc_qdq_fuse, with qc_exec_opts.fuse: an 8-bit FQ (int8 as uint8 with codes and zero
 * point moved up by 128) and the elementwise nodes that compute
 * from its output and scalar constants alone (e.g. the quantized SiLU: Sigmoid -> FQ -> Mul ->
 * FQ; a GELU written as Mul/Tanh/Add) become one step that computes the FQ's code and looks
 * the subgraph's one outside-read value up in a 256-entry table, filled by running the
 * subgraph's kernels on the 256 codes' values: the same bits. The step is the producing Conv
 * when the FQ is its only reader (QC_ACT_QLUT), else the FQ's knode (qc_code_table). At most
 * QC_LUT_MAX_NODES nodes a table; recomputes liveness. Planning-time only. */
/* After qc_qdq_fuse: each Conv whose input is a fake quantization's output (group 1) and
 * whose weights are int8 codes behind a DequantizeLinear (zero points 0, per-tensor or
 * per-output-channel scales) gets qc_knode.wq & co., so its kernel may run on the codes
 * (conv_i8_x86.c). Planning-time only. */
int qc_iconv_mark(qc_exec *x);

/* Whether knode kn runs the default-domain operator op. */
int qc_fuse_is_op(const qc_knode *kn, const char *op);
/* Whether knode j computes its one output elementwise from values in v (n_v of them, at least
 * one) and scalar float constants (an FQ knode counts: its scale and zero point are
 * constants). */
int qc_fuse_ew_eligible(const qc_exec *x, int j, const qc_tensor *const *v, int n_v);
/* Whether t is a graph output or read by a non-skipped knode other than s[0..n). */
int qc_fuse_read_outside(const qc_exec *x, const qc_tensor *t, const int *s, int n);
/* Plan index at or after t's last reader (qc_value.last_use; -1: none). Exact after
 * qc_fuse_relive; within the fusion passes that scan for readers (Q/DQ pairs, the
 * onnxruntime groups, tables, chains) the values asked about only lose readers, and a chain
 * step that starts reading its head raises the head's: an upper bound, so the scans stop
 * there instead of at the end of the plan. */
int qc_fuse_last_reader(const qc_exec *x, const qc_tensor *t);
/* Liveness after a fusion: each value's last running reader. */
void qc_fuse_relive(qc_exec *x);

/* With qc_exec_opts.fuse, after the QDQ fusions: the elementwise nodes computed from one value
 * and scalar constants alone, with one value read elsewhere (a tanh GELU written as nine
 * Mul/Add/Tanh nodes), become one step in the last one's knode that runs their kernels chunk
 * by chunk (ewchain.c); the same bits. Recomputes liveness. Planning-time only. */
int qc_ew_chain_fuse(qc_exec *x, qc_err *err);

#define QC_LUT_MAX_NODES 64
int qc_qlut_fuse(qc_exec *x, qc_err *err);
extern const qc_op_def qc_fake_quant;        /* x, scale [, zero point] -> float */
extern const qc_op_def qc_code_table;        /* the same inputs -> lut[code] (qc_qlut_fuse) */
/* y[0, len) = lut[code of x] (q: scale, uint8 zero point; x == y allowed), the codes as the
 * QuantizeLinear kernels give them: the table step's arithmetic, for the conv's fallback. */
void qc_code_table_apply(const float *q, const float *lut, const float *x, float *y,
                         int64_t len);

extern const qc_op_def qc_qlinear_conv;
extern const qc_op_def qc_qlinear_matmul;     /* a, a_scale, a_zp, b (2-D), ..., y_zp */
extern const qc_op_def qc_qlinear_sigmoid;
extern const qc_op_def qc_qlinear_softmax;    /* same layout as sigmoid; uint8 only */
extern const qc_op_def qc_qlinear_add;
extern const qc_op_def qc_qlinear_mul;

#endif
