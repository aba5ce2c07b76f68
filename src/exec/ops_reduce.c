/* Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSumExp/LogSum) and ArgMax/ArgMin.
 * Input dims are coalesced into alternating kept/reduced groups; when the innermost group is
 * reduced each output is one contiguous double accumulation, otherwise a block of up to
 * CHUNK outputs is accumulated side by side on the stack, so memory is read in order either
 * way and no scratch buffer is needed. */
/* FP exceptions are never inspected, and -O2's very-cheap vectorizer cost model skips loops
 * whose trip count is only known at run time: either would keep these maps scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "vect-cost-model=dynamic")
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ops.h"

#define CHUNK 256

/* How each element enters the accumulator, and what is done with the total. */
enum { K_SUM, K_ABS, K_SQ, K_EXP, K_PROD, K_MAX, K_MIN };
enum { P_NONE, P_MEAN, P_SQRT, P_LOG };

typedef struct rop {
    const char *name;
    int         kind, post;
    int         axes_input_since;   /* opset from which axes is an input, not an attribute */
} rop;

static const rop rops[] = {
    { "ReduceSum", K_SUM, P_NONE, 13 }, { "ReduceMean", K_SUM, P_MEAN, 18 },
    { "ReduceMax", K_MAX, P_NONE, 18 }, { "ReduceMin", K_MIN, P_NONE, 18 },
    { "ReduceProd", K_PROD, P_NONE, 18 }, { "ReduceL1", K_ABS, P_NONE, 18 },
    { "ReduceL2", K_SQ, P_SQRT, 18 }, { "ReduceSumSquare", K_SQ, P_NONE, 18 },
    { "ReduceLogSumExp", K_EXP, P_LOG, 18 }, { "ReduceLogSum", K_SUM, P_LOG, 18 },
};

static const rop *find_rop(const qc_knode *n)
{
    for (size_t i = 0; i < sizeof rops / sizeof rops[0]; i++)
        if (strcmp(rops[i].name, n->node->op_type) == 0)
            return &rops[i];
    return NULL;
}

static int reduce_dtype_ok(int dt)
{
    return dt == QC_F32 || dt == QC_I32 || dt == QC_I64 || dt == QC_U8 || dt == QC_I8;
}

/* Sets mask[d] for every reduced axis. An empty axes list reduces everything unless
 * noop_with_empty_axes, in which case nothing is reduced (each element is only transformed,
 * as the ONNX reference does). */
static int get_axes(const qc_knode *n, const rop *op, int rank, int *mask, qc_err *err)
{
    int64_t count = 0;
    const int64_t *attr = NULL;
    const qc_tensor *t = NULL;
    memset(mask, 0, sizeof(int) * QC_MAX_DIMS);
    if (n->opset >= op->axes_input_since) {
        if (n->n_in > 1 && n->in[1])
            t = n->in[1];
        count = t ? qc_tensor_numel(t) : 0;
    } else {
        attr = qc_attr_ints(n->node, "axes", &count);
    }
    if (count == 0) {
        if (!qc_attr_int(n->node, "noop_with_empty_axes", 0))
            for (int d = 0; d < rank; d++)
                mask[d] = 1;
        return QC_OK;
    }
    for (int64_t i = 0; i < count; i++) {
        int ax, rc;
        int64_t a = t ? qc_tensor_get_i(t, i) : attr[i];
        if ((rc = qc_norm_axis(n, a, rank, &ax, err)) != QC_OK)
            return rc;
        if (mask[ax])
            return qc_node_errf(n, err, QC_EINPUT, "axis %lld listed twice", (long long)a);
        mask[ax] = 1;
    }
    return QC_OK;
}

static int reduce_infer(qc_knode *n, qc_err *err)
{
    const rop *op = find_rop(n);
    const qc_tensor *x = n->in[0];
    int mask[QC_MAX_DIMS], nd = 0, rc;
    int64_t dims[QC_MAX_DIMS];
    if (!op)
        return qc_node_errf(n, err, QC_EINTERNAL, "no reduce kernel");
    if (!reduce_dtype_ok(x->dtype))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    if ((rc = get_axes(n, op, x->ndim, mask, err)) != QC_OK)
        return rc;
    int keep = (int)qc_attr_int(n->node, "keepdims", 1);
    for (int d = 0; d < x->ndim; d++) {
        if (!mask[d])
            dims[nd++] = x->dims[d];
        else if (keep)
            dims[nd++] = 1;
    }
    qc_set_shape(n->out[0], x->dtype, nd, dims);
    return QC_OK;
}

/* Odometer over a set of dims with input strides. */
typedef struct odo {
    int     n;
    int64_t d[QC_MAX_DIMS], s[QC_MAX_DIMS], i[QC_MAX_DIMS], off, total;
} odo;

static void odo_reset(odo *o)
{
    memset(o->i, 0, sizeof o->i);
    o->off = 0;
}

static void odo_next(odo *o)
{
    for (int k = o->n - 1; k >= 0; k--) {
        o->off += o->s[k];
        if (++o->i[k] < o->d[k])
            return;
        o->off -= o->s[k] * o->d[k];
        o->i[k] = 0;
    }
}

typedef struct rplan {
    odo     kept, red;      /* groups other than the innermost one */
    int64_t inner;          /* length of the innermost (contiguous) group */
    int     inner_reduced;
    double  count;          /* elements per output, for the mean */
} rplan;

static void make_plan(const qc_tensor *x, const int *mask, rplan *p)
{
    int64_t d[QC_MAX_DIMS], s[QC_MAX_DIMS];
    int f[QC_MAX_DIMS], m = 0;
    p->count = 1.0;
    for (int i = 0; i < x->ndim; i++) {
        if (mask[i])
            p->count *= (double)x->dims[i];
        if (x->dims[i] == 1)
            continue;
        if (m > 0 && f[m - 1] == mask[i]) {
            d[m - 1] *= x->dims[i];
        } else {
            d[m] = x->dims[i];
            f[m++] = mask[i];
        }
    }
    if (m == 0) {
        d[0] = 1;
        f[m++] = 1;
    }
    s[m - 1] = 1;
    for (int i = m - 2; i >= 0; i--)
        s[i] = s[i + 1] * d[i + 1];
    p->kept.n = p->red.n = 0;
    p->kept.total = p->red.total = 1;
    for (int i = 0; i < m - 1; i++) {
        odo *o = f[i] ? &p->red : &p->kept;
        o->d[o->n] = d[i];
        o->s[o->n++] = s[i];
        o->total *= d[i];
    }
    p->inner = d[m - 1];
    p->inner_reduced = f[m - 1];
}

static double init_of(int kind)
{
    return kind == K_PROD ? 1.0 : kind == K_MAX ? -INFINITY : kind == K_MIN ? INFINITY : 0.0;
}

static double post(int post, double acc, double count)
{
    switch (post) {
    case P_MEAN: return acc / count;
    case P_SQRT: return sqrt(acc);
    case P_LOG: return log(acc);
    default: return acc;
    }
}

static int64_t sat_i64(double v)
{
    if (!(v == v))
        return 0;
    if (v >= 9.2233720368547758e18)
        return INT64_MAX;
    if (v <= -9.2233720368547758e18)
        return INT64_MIN;
    return (int64_t)v;
}

/* Accumulates src[0..len) into *acc (contiguous) or acc[0..len) (one per element). */
/* The contiguous case keeps four partial accumulators to break the add latency chain. The
 * per-element case rounds every step to the input type (RND): onnxruntime accumulates float32
 * reductions over outer axes sequentially in float32, and models such as layer norms written
 * as E[x^2] - E[x]^2 are so ill-conditioned that matching it matters more than a more exact
 * sum (double then float rounding equals float rounding for +, * by the 2p+2 rule). */
#define ACC_LOOP(T, EXPR_ONE, EXPR_VEC)                                         \
    if (one) {                                                                  \
        double p4[4] = { *acc, init, init, init };                              \
        int64_t i4 = 0;                                                         \
        for (; i4 + 4 <= len; i4 += 4)                                          \
            for (int j = 0; j < 4; j++) {                                       \
                double v = (double)src[i4 + j], a = p4[j];                      \
                EXPR_ONE;                                                       \
                p4[j] = a;                                                      \
            }                                                                   \
        for (; i4 < len; i4++) {                                                \
            double v = (double)src[i4], a = p4[0];                              \
            EXPR_ONE;                                                           \
            p4[0] = a;                                                          \
        }                                                                       \
        *acc = combine(kind, combine(kind, p4[0], p4[1]), combine(kind, p4[2], p4[3])); \
    } else {                                                                    \
        for (int64_t i = 0; i < len; i++) {                                     \
            double v = (double)src[i], a = acc[i];                              \
            EXPR_VEC;                                                           \
            acc[i] = RND(a);                                                    \
        }                                                                       \
    }
#define ACC_CASES(T)                                                            \
    switch (kind) {                                                             \
    case K_SUM: ACC_LOOP(T, a += v, a += v) break;                              \
    case K_ABS: ACC_LOOP(T, a += fabs(v), a += fabs(v)) break;                  \
    case K_SQ: ACC_LOOP(T, a += v * v, a += v * v) break;                       \
    case K_EXP: ACC_LOOP(T, a += exp(v), a += exp(v)) break;                    \
    case K_PROD: ACC_LOOP(T, a *= v, a *= v) break;                             \
    case K_MAX: ACC_LOOP(T, a = v > a ? v : a, a = v > a ? v : a) break;        \
    default: ACC_LOOP(T, a = v < a ? v : a, a = v < a ? v : a) break;           \
    }

static inline double combine(int kind, double a, double b)
{
    switch (kind) {
    case K_PROD: return a * b;
    case K_MAX: return a > b ? a : b;
    case K_MIN: return a < b ? a : b;
    default: return a + b;
    }
}

#define DEF_ACC(s, T)                                                           \
    static void acc_##s(const void *p, int64_t len, double *acc, int one, int kind) \
    {                                                                           \
        const T *src = p;                                                       \
        double init = init_of(kind);                                            \
        ACC_CASES(T)                                                            \
    }
#define RND(a) ((double)(float)(a))
DEF_ACC(f32, float)
#undef RND
#define RND(a) (a)
DEF_ACC(i32, int32_t)
DEF_ACC(i64, int64_t)
DEF_ACC(u8, uint8_t)
DEF_ACC(i8, int8_t)

static void store(void *y, int dt, int64_t i, double v)
{
    switch (dt) {
    case QC_F32: ((float *)y)[i] = (float)v; break;
    case QC_I32: ((int32_t *)y)[i] = (int32_t)sat_i64(v); break;
    case QC_I64: ((int64_t *)y)[i] = sat_i64(v); break;
    case QC_U8: ((uint8_t *)y)[i] = (uint8_t)sat_i64(v); break;
    case QC_I8: ((int8_t *)y)[i] = (int8_t)sat_i64(v); break;
    default: break;
    }
}

static int reduce_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const rop *op = find_rop(n);
    const qc_tensor *x = n->in[0];
    qc_tensor *y = n->out[0];
    int mask[QC_MAX_DIMS], rc;
    rplan p;
    (void)r;
    if ((rc = get_axes(n, op, x->ndim, mask, err)) != QC_OK)
        return rc;
    make_plan(x, mask, &p);
    int kind = op->kind, dt = x->dtype;
    size_t es = qc_dtype_size(dt);
    const char *px = x->data;
    void (*acc_fn)(const void *, int64_t, double *, int, int) =
        dt == QC_F32 ? acc_f32 : dt == QC_I32 ? acc_i32 : dt == QC_I64 ? acc_i64 :
        dt == QC_U8 ? acc_u8 : acc_i8;
    double init = init_of(kind);
    if (qc_tensor_numel(x) == 0) {
        for (int64_t i = 0, len = qc_tensor_numel(y); i < len; i++)
            store(y->data, dt, i, post(op->post, init, p.count));
        return QC_OK;
    }
    int64_t o = 0;
    odo_reset(&p.kept);
    for (int64_t k = 0; k < p.kept.total; k++, odo_next(&p.kept)) {
        if (p.inner_reduced) {
            double acc = init;
            odo_reset(&p.red);
            for (int64_t j = 0; j < p.red.total; j++, odo_next(&p.red))
                acc_fn(px + (p.kept.off + p.red.off) * (int64_t)es, p.inner, &acc, 1, kind);
            store(y->data, dt, o++, post(op->post, acc, p.count));
            continue;
        }
        for (int64_t c0 = 0; c0 < p.inner; c0 += CHUNK) {
            double acc[CHUNK];
            int64_t len = p.inner - c0 < CHUNK ? p.inner - c0 : CHUNK;
            for (int64_t i = 0; i < len; i++)
                acc[i] = init;
            odo_reset(&p.red);
            for (int64_t j = 0; j < p.red.total; j++, odo_next(&p.red))
                acc_fn(px + (p.kept.off + p.red.off + c0) * (int64_t)es, len, acc, 0, kind);
            for (int64_t i = 0; i < len; i++)
                store(y->data, dt, o + c0 + i, post(op->post, acc[i], p.count));
        }
        o += p.inner;
    }
    return QC_OK;
}

/* ArgMax / ArgMin over one axis: [outer, R, inner] with the best value of up to CHUNK inner
 * positions kept on the stack. */
static int arg_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int axis, rc, nd = 0;
    int64_t dims[QC_MAX_DIMS];
    if (!reduce_dtype_ok(x->dtype))
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                            qc_dtype_name(x->dtype));
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)) != QC_OK)
        return rc;
    if (x->dims[axis] == 0)
        return qc_node_errf(n, err, QC_EINPUT, "%s over an empty axis", n->node->op_type);
    int keep = (int)qc_attr_int(n->node, "keepdims", 1);
    for (int d = 0; d < x->ndim; d++) {
        if (d != axis)
            dims[nd++] = x->dims[d];
        else if (keep)
            dims[nd++] = 1;
    }
    qc_set_shape(n->out[0], QC_I64, nd, dims);
    return QC_OK;
}

#define ARG_IMPL(T)                                                             \
    do {                                                                        \
        const T *X = x->data;                                                   \
        for (int64_t o = 0; o < outer; o++) {                                   \
            for (int64_t c0 = 0; c0 < inner; c0 += CHUNK) {                     \
                T best[CHUNK];                                                  \
                int64_t len = inner - c0 < CHUNK ? inner - c0 : CHUNK;          \
                int64_t *yi = Y + o * inner + c0;                               \
                const T *base = X + o * R * inner + c0;                         \
                for (int64_t i = 0; i < len; i++) {                             \
                    best[i] = base[i];                                          \
                    yi[i] = 0;                                                  \
                }                                                               \
                for (int64_t k = 1; k < R; k++) {                               \
                    const T *row = base + k * inner;                            \
                    for (int64_t i = 0; i < len; i++) {                         \
                        T v = row[i];                                           \
                        int take = is_min ? (v < best[i] || (last && v == best[i])) \
                                          : (v > best[i] || (last && v == best[i])); \
                        if (take) {                                             \
                            best[i] = v;                                        \
                            yi[i] = k;                                          \
                        }                                                       \
                    }                                                           \
                }                                                               \
            }                                                                   \
        }                                                                       \
    } while (0)

static int arg_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t *Y = n->out[0]->data;
    int axis, rc;
    (void)r;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)) != QC_OK)
        return rc;
    int is_min = strcmp(n->node->op_type, "ArgMin") == 0;
    int last = (int)qc_attr_int(n->node, "select_last_index", 0) != 0;
    int64_t outer = 1, inner = 1, R = x->dims[axis];
    for (int d = 0; d < axis; d++)
        outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    switch (x->dtype) {
    case QC_F32: ARG_IMPL(float); break;
    case QC_I32: ARG_IMPL(int32_t); break;
    case QC_I64: ARG_IMPL(int64_t); break;
    case QC_U8: ARG_IMPL(uint8_t); break;
    case QC_I8: ARG_IMPL(int8_t); break;
    default: break;
    }
    return QC_OK;
}

const qc_op_def qc_ops_reduce[] = {
    { "ReduceSum", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceMean", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceMax", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceMin", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceProd", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceL1", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceL2", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceSumSquare", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceLogSumExp", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ReduceLogSum", 1, reduce_infer, reduce_run, NULL, NULL, NULL },
    { "ArgMax", 1, arg_infer, arg_run, NULL, NULL, NULL },
    { "ArgMin", 1, arg_infer, arg_run, NULL, NULL, NULL },
    { 0 }
};
