/* The QDQ rewrite: activations get QuantizeLinear -> DequantizeLinear right after their
 * producer (every consumer reads the DequantizeLinear output, so ONNX Runtime sees
 * DQ -> op -> Q groups it can fuse); constants are stored quantized behind one
 * DequantizeLinear that keeps the constant's name, so a weight shared by several nodes is
 * quantized once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quant_priv.h"

typedef struct names {
    const char *scale, *zp, *q, *dq;
} names;

static int add_params(qc_edit *e, const qtensor *t, names *nm, qc_err *err)
{
    char buf[600];
    int64_t dims[1] = { t->n_ch };
    int per_axis = t->axis >= 0;
    qc_tensor s = { .dtype = QC_F32, .ndim = per_axis, .dims = { dims[0] },
                    .data = t->scale };
    qc_tensor z = { .dtype = t->qdtype, .ndim = per_axis, .dims = { dims[0] } };
    size_t es = qc_dtype_size(t->qdtype);
    unsigned char *zd = calloc((size_t)t->n_ch, es);
    if (!zd)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int c = 0; c < t->n_ch; c++) {
        switch (t->qdtype) {
        case QC_U8: zd[c] = (uint8_t)t->zp[c]; break;
        case QC_I8: ((int8_t *)zd)[c] = (int8_t)t->zp[c]; break;
        case QC_U16: ((uint16_t *)zd)[c] = (uint16_t)t->zp[c]; break;
        case QC_I16: ((int16_t *)zd)[c] = (int16_t)t->zp[c]; break;
        default: ((int32_t *)zd)[c] = t->zp[c]; break;
        }
    }
    z.data = zd;
    snprintf(buf, sizeof buf, "%s_scale", t->name);
    s.name = nm->scale = qc_edit_unique_name(e, buf);
    snprintf(buf, sizeof buf, "%s_zero_point", t->name);
    z.name = nm->zp = qc_edit_unique_name(e, buf);
    int rc = qc_edit_add_init(e, &s, err);
    if (rc == QC_OK)
        rc = qc_edit_add_init(e, &z, err);
    free(zd);
    return rc;
}

static void type_range(int dtype, int64_t *lo, int64_t *hi)
{
    switch (dtype) {
    case QC_U8: *lo = 0; *hi = 255; break;
    case QC_I8: *lo = -128; *hi = 127; break;
    case QC_U16: *lo = 0; *hi = 65535; break;
    case QC_I16: *lo = -32768; *hi = 32767; break;
    default: *lo = INT32_MIN; *hi = INT32_MAX; break;
    }
}

/* nearbyint(x) in the default rounding mode (half to even) without a libm call: adding and
 * removing 1.5 * 2^52 rounds |x| < 2^51 to an integer; larger values (or inf) saturate the
 * code either way. */
static inline double round_even(double x)
{
    return fabs(x) < 0x1p51 ? (x + 0x1.8p52) - 0x1.8p52 : x;
}

/* QuantizeLinear semantics: round half to even, add zero point, saturate. */
static int quantize_const(qc_edit *e, const qc_quantizer *q, const qtensor *t, const char *qname,
                          qc_err *err)
{
    const qc_tensor *w = qc_model_init(q->m, t->name);
    int64_t n = qc_tensor_numel(w), inner = 1, lo, hi;
    for (int d = t->axis + 1; t->axis >= 0 && d < w->ndim; d++)
        inner *= w->dims[d];
    type_range(t->qdtype, &lo, &hi);
    if (t->kind == QT_WEIGHT) {       /* narrow (e.g. [-127,127], reduce-range) weight codes */
        lo = q->w_qmin;
        hi = q->w_qmax;
    }
    size_t es = qc_dtype_size(t->qdtype);
    qc_tensor out = *w;
    out.name = qname;
    out.dtype = t->qdtype;
    out.data = malloc((size_t)(n ? n : 1) * es);
    if (!out.data)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    const float *src = w->data;
    if (t->axis < 0)
        inner = n;
    /* [outer][channel][inner]: one channel per run of inner values */
#define QUANT_RUN(T)                                                                        \
    for (int64_t i = 0; i < m; i++) {                                                       \
        double v = round_even((double)src[at + i] / s) + z;                                 \
        ((T *)out.data)[at + i] = (T)(v < (double)lo ? lo : v > (double)hi ? hi : (int64_t)v); \
    }
    for (int64_t at = 0; at < n; at += inner) {
        int c = t->axis >= 0 ? (int)((at / inner) % t->n_ch) : 0;
        double s = t->scale[c], z = t->zp[c];
        int64_t m = n - at < inner ? n - at : inner;
        switch (t->qdtype) {
        case QC_U8: QUANT_RUN(uint8_t); break;
        case QC_I8: QUANT_RUN(int8_t); break;
        case QC_U16: QUANT_RUN(uint16_t); break;
        case QC_I16: QUANT_RUN(int16_t); break;
        default: QUANT_RUN(int32_t); break;
        }
    }
#undef QUANT_RUN
    if (t->kind == QT_WEIGHT && t->qdtype == QC_I8 && qc_quant_pair_guarded(q))
        qc_pairguard_fix_weight(q->m, t->name, w, out.data);
    int rc = qc_edit_add_init(e, &out, err);
    free(out.data);
    return rc;
}

int qc_quant_reads_float(const qc_quantizer *q, int node)
{
    const char *op = q->m->nodes[node].op_type;
    return q->nodes[node].float_feed ||
           (!q->nodes[node].final && (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") ||
                                      !strcmp(op, "Gemm") || !strcmp(op, "MatMul")));
}

int qc_quant_rewrite(qc_quantizer *q, qc_model **out, qc_err *err)
{
    const qc_model *m = q->m;
    qc_edit *e = NULL;
    names *nm = calloc((size_t)q->n_t + 1, sizeof *nm);
    int rc;
    if (!nm)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    if ((rc = qc_edit_begin(&e, m, err)) != QC_OK)
        goto fail;
    qc_edit_require_opset(e, 10);
    if (q->o.act_dtype == QC_I16 || q->o.act_dtype == QC_U16)
        qc_edit_require_opset(e, 21);
    for (int i = 0; i < q->n_t && rc == QC_OK; i++) {
        qtensor *t = &q->t[i];
        char buf[600];
        if (!t->used)
            continue;
        if (t->axis >= 0)
            qc_edit_require_opset(e, 13);
        if ((rc = add_params(e, t, &nm[i], err)) != QC_OK)
            break;
        qc_edit_attr axis = { .name = "axis", .type = QC_ATTR_INT, .i = t->axis };
        int n_attr = t->axis >= 0;
        if (t->kind == QT_ACT) {
            snprintf(buf, sizeof buf, "%s_QuantizeLinear_Output", t->name);
            nm[i].q = qc_edit_unique_name(e, buf);
            snprintf(buf, sizeof buf, "%s_DequantizeLinear_Output", t->name);
            nm[i].dq = qc_edit_unique_name(e, buf);
            const char *qin[3] = { t->name, nm[i].scale, nm[i].zp };
            const char *dqin[3] = { nm[i].q, nm[i].scale, nm[i].zp };
            snprintf(buf, sizeof buf, "%s_QuantizeLinear", t->name);
            const char *qn = qc_edit_unique_name(e, buf);
            rc = qc_edit_add_node(e, t->producer, "QuantizeLinear", qn, 3, qin, 1, &nm[i].q,
                                  &axis, n_attr, err);
            snprintf(buf, sizeof buf, "%s_DequantizeLinear", t->name);
            const char *dqn = qc_edit_unique_name(e, buf);
            if (rc >= 0)
                rc = qc_edit_add_node(e, t->producer, "DequantizeLinear", dqn, 3, dqin, 1,
                                      &nm[i].dq, &axis, n_attr, err);
            rc = rc >= 0 ? QC_OK : rc;
        } else {
            snprintf(buf, sizeof buf, "%s_quantized", t->name);
            const char *qname = qc_edit_unique_name(e, buf);
            const char *dqin[3] = { qname, nm[i].scale, nm[i].zp };
            snprintf(buf, sizeof buf, "%s_DequantizeLinear", t->name);
            const char *dqn = qc_edit_unique_name(e, buf);
            if ((rc = quantize_const(e, q, t, qname, err)) == QC_OK &&
                (rc = qc_edit_remove_init(e, t->name, err)) == QC_OK)
                rc = qc_edit_add_node(e, -1, "DequantizeLinear", dqn, 3, dqin, 1, &t->name,
                                      &axis, n_attr, err);
            rc = rc >= 0 ? QC_OK : rc;
        }
    }
    /* every reader of a quantized activation reads its DequantizeLinear output, except a
     * Conv/Gemm/MatMul left float and the data movement leading only to such nodes
     * (qc_quant_reads_float) */
    for (int j = 0; j < m->n_nodes && rc == QC_OK; j++) {
        if (qc_quant_reads_float(q, j))
            continue;
        for (int k = 0; k < m->nodes[j].n_inputs && rc == QC_OK; k++) {
            const char *in = m->nodes[j].inputs[k];
            int idx = in[0] ? qc_strmap_get(&q->by_name, in) : -1;
            if (idx >= 0 && q->t[idx].used && q->t[idx].kind == QT_ACT)
                rc = qc_edit_set_input(e, j, k, nm[idx].dq, err);
        }
    }
    if (rc == QC_OK)
        rc = qc_opset_upgrade(e, q, err);
    if (rc == QC_OK) {
        rc = qc_edit_finish(e, out, err);
        e = NULL;
    }
fail:
    qc_edit_free(e);
    free(nm);
    if (rc != QC_OK)
        qc_err_prefix(err, "QDQ rewrite");
    return rc;
}
