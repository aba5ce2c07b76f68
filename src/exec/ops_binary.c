/* Broadcasting binary ops (arithmetic, comparison, logic), the variadic Sum/Mean/Max/Min and
 * the ternary Where. One driver walks numpy broadcasting; per-dtype kernels only ever see a
 * contiguous run in one of three shapes (both contiguous, b scalar, a scalar), so the compiler
 * vectorizes the same-shape and the scalar/last-dims cases. */
/* FP exceptions are never inspected, and -O2's very-cheap vectorizer cost model skips loops
 * whose trip count is only known at run time: either would keep these maps scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "vect-cost-model=dynamic")
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "ops_ew.h"
#include "par.h"

enum {
    B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MOD, B_PRELU, B_MIN, B_MAX, B_SUM, B_MEAN,
    B_EQ, B_LT, B_GT, B_LE, B_GE, B_AND, B_OR, B_XOR, B_WHERE
};

typedef struct bop {
    const char *name;
    int         code;
} bop;

static const bop bops[] = {
    { "Add", B_ADD }, { "Sub", B_SUB }, { "Mul", B_MUL }, { "Div", B_DIV }, { "Pow", B_POW },
    { "Mod", B_MOD }, { "PRelu", B_PRELU }, { "Min", B_MIN }, { "Max", B_MAX },
    { "Sum", B_SUM }, { "Mean", B_MEAN }, { "Equal", B_EQ }, { "Less", B_LT },
    { "Greater", B_GT }, { "LessOrEqual", B_LE }, { "GreaterOrEqual", B_GE },
    { "And", B_AND }, { "Or", B_OR }, { "Xor", B_XOR }, { "Where", B_WHERE },
};

/* Kernel slots by dtype; BOOL last. */
enum { T_F32, T_U8, T_I8, T_U16, T_I16, T_I32, T_I64, T_BOOL, N_T };

static int tix(int dtype)
{
    switch (dtype) {
    case QC_F32: return T_F32;
    case QC_U8: return T_U8;
    case QC_I8: return T_I8;
    case QC_U16: return T_U16;
    case QC_I16: return T_I16;
    case QC_I32: return T_I32;
    case QC_I64: return T_I64;
    case QC_BOOL: return T_BOOL;
    default: return -1;
    }
}

/* mode 0: a and b contiguous; 1: b is one value; 2: a is one value. y may alias a. */
typedef void (*bin_fn)(const void *pa, const void *pb, void *py, int64_t n, int mode,
                       const void *ctx);

#define BIN_BODY(TA, TB, TY, EXPR)                                              \
    const TA *a = pa;                                                           \
    const TB *b = pb;                                                           \
    TY *y = py;                                                                 \
    (void)ctx;                                                                  \
    if (mode == 0) {                                                            \
        for (int64_t i = 0; i < n; i++) {                                       \
            TA A = a[i];                                                        \
            TB B = b[i];                                                        \
            y[i] = (TY)(EXPR);                                                  \
        }                                                                       \
    } else if (mode == 1) {                                                     \
        TB B = b[0];                                                            \
        for (int64_t i = 0; i < n; i++) {                                       \
            TA A = a[i];                                                        \
            y[i] = (TY)(EXPR);                                                  \
        }                                                                       \
    } else {                                                                    \
        TA A = a[0];                                                            \
        for (int64_t i = 0; i < n; i++) {                                       \
            TB B = b[i];                                                        \
            y[i] = (TY)(EXPR);                                                  \
        }                                                                       \
    }

#define DEF_BIN(name, T, TY, EXPR)                                              \
    static void name(const void *pa, const void *pb, void *py, int64_t n, int mode, \
                     const void *ctx)                                           \
    { BIN_BODY(T, T, TY, EXPR) }

/* Integer arithmetic goes through an unsigned type W so overflow wraps (as in ORT) instead of
 * being undefined behaviour. */
#define UINT_TYPES(X) X(u8, uint8_t, unsigned) X(u16, uint16_t, unsigned)
#define SINT_TYPES(X) X(i8, int8_t, unsigned) X(i16, int16_t, unsigned)                  \
                      X(i32, int32_t, uint32_t) X(i64, int64_t, uint64_t)
#define INT_TYPES(X) UINT_TYPES(X) SINT_TYPES(X)
#define FNS(op) { op##_f32, op##_u8, op##_i8, op##_u16, op##_i16, op##_i32, op##_i64, NULL }

DEF_BIN(add_f32, float, float, A + B)
DEF_BIN(sub_f32, float, float, A - B)
DEF_BIN(mul_f32, float, float, A * B)
DEF_BIN(div_f32, float, float, A / B)
DEF_BIN(min_f32, float, float, A < B ? A : B)
DEF_BIN(max_f32, float, float, A > B ? A : B)
DEF_BIN(prelu_f32, float, float, A < 0.0f ? A * B : A)
DEF_BIN(pow_f32, float, float, powf(A, B))
DEF_BIN(fmod_f32, float, float, fmodf(A, B))
#define X(s, T, W)                                                              \
    DEF_BIN(add_##s, T, T, (W)A + (W)B)                                         \
    DEF_BIN(sub_##s, T, T, (W)A - (W)B)                                         \
    DEF_BIN(mul_##s, T, T, (W)A * (W)B)                                         \
    DEF_BIN(min_##s, T, T, A < B ? A : B)                                       \
    DEF_BIN(max_##s, T, T, A > B ? A : B)
INT_TYPES(X)
#undef X
/* Division by zero yields 0 instead of trapping; INT_MIN / -1 wraps. C division truncates
 * toward zero, like ORT's integer Div. */
#define X(s, T, W)                                                              \
    DEF_BIN(div_##s, T, T, B == 0 ? 0 : A / B)                                  \
    DEF_BIN(fmod_##s, T, T, B == 0 ? 0 : A % B)                                 \
    DEF_BIN(mod_##s, T, T, B == 0 ? 0 : A % B)                                  \
    DEF_BIN(prelu_##s, T, T, ((void)B, A))
UINT_TYPES(X)
#undef X
#define X(s, T, W)                                                              \
    DEF_BIN(div_##s, T, T, B == 0 ? (W)0 : B == -1 ? (W)0 - (W)A : (W)(A / B))   \
    DEF_BIN(fmod_##s, T, T, B == 0 || B == -1 ? 0 : A % B)                      \
    DEF_BIN(mod_##s, T, T, pymod((int64_t)A, (int64_t)B))                       \
    DEF_BIN(prelu_##s, T, T, A < 0 ? (W)A * (W)B : (W)A)
static inline int64_t pymod(int64_t a, int64_t b)
{
    if (b == 0 || b == -1)
        return 0;
    int64_t r = a % b;
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}
SINT_TYPES(X)
#undef X

static inline float pymodf(float a, float b)
{
    float r = fmodf(a, b);
    return r != 0.0f && (r < 0.0f) != (b < 0.0f) ? r + b : r;
}
DEF_BIN(mod_f32, float, float, pymodf(A, B))

/* Comparisons and logic produce BOOL (one byte, 0 or 1). */
#define CMP_TYPES(X) X(f32, float) X(u8, uint8_t) X(i8, int8_t) X(u16, uint16_t)       \
                     X(i16, int16_t) X(i32, int32_t) X(i64, int64_t) X(b, uint8_t)
#define X(s, T)                                                                 \
    DEF_BIN(eq_##s, T, uint8_t, A == B)                                         \
    DEF_BIN(lt_##s, T, uint8_t, A < B)                                          \
    DEF_BIN(gt_##s, T, uint8_t, A > B)                                          \
    DEF_BIN(le_##s, T, uint8_t, A <= B)                                         \
    DEF_BIN(ge_##s, T, uint8_t, A >= B)
CMP_TYPES(X)
#undef X
#define CMP_FNS(op) { op##_f32, op##_u8, op##_i8, op##_u16, op##_i16, op##_i32, op##_i64, op##_b }
DEF_BIN(and_b, uint8_t, uint8_t, (A != 0) & (B != 0))
DEF_BIN(or_b, uint8_t, uint8_t, (A != 0) | (B != 0))
DEF_BIN(xor_b, uint8_t, uint8_t, (A != 0) ^ (B != 0))

/* Pow exponents that models write as constants get exact, vectorizable forms. */
DEF_BIN(sq_f32, float, float, ((void)B, A * A))
DEF_BIN(cube_f32, float, float, ((void)B, A * A * A))
DEF_BIN(sqrt_f32, float, float, ((void)B, sqrtf(A)))

static const bin_fn add_fns[N_T] = FNS(add), sub_fns[N_T] = FNS(sub), mul_fns[N_T] = FNS(mul),
    div_fns[N_T] = FNS(div), min_fns[N_T] = FNS(min), max_fns[N_T] = FNS(max),
    mod_fns[N_T] = FNS(mod), fmod_fns[N_T] = FNS(fmod), prelu_fns[N_T] = FNS(prelu),
    eq_fns[N_T] = CMP_FNS(eq), lt_fns[N_T] = CMP_FNS(lt), gt_fns[N_T] = CMP_FNS(gt),
    le_fns[N_T] = CMP_FNS(le), ge_fns[N_T] = CMP_FNS(ge),
    and_fns[N_T] = { [T_BOOL] = and_b }, or_fns[N_T] = { [T_BOOL] = or_b },
    xor_fns[N_T] = { [T_BOOL] = xor_b };

/* Mixed-dtype Pow (e.g. float ** int64, int32 ** float): computed in double, stored as the
 * base's dtype, like ORT. Rare, so a per-element dtype switch is fine. */
typedef struct pow_ctx {
    int ta, tb, ty;
} pow_ctx;

static double ld(const void *p, int dtype, int64_t i)
{
    switch (dtype) {
    case QC_F32: return ((const float *)p)[i];
    case QC_U8: return ((const uint8_t *)p)[i];
    case QC_I8: return ((const int8_t *)p)[i];
    case QC_U16: return ((const uint16_t *)p)[i];
    case QC_I16: return ((const int16_t *)p)[i];
    case QC_I32: return ((const int32_t *)p)[i];
    case QC_I64: return (double)((const int64_t *)p)[i];
    default: return 0.0;
    }
}

static void pow_mixed(const void *pa, const void *pb, void *py, int64_t n, int mode,
                      const void *ctx)
{
    const pow_ctx *c = ctx;
    for (int64_t i = 0; i < n; i++) {
        double A = ld(pa, c->ta, mode == 2 ? 0 : i), B = ld(pb, c->tb, mode == 1 ? 0 : i);
        qc_store_f(py, c->ty, i, pow(A, B));
    }
}

/* y[ty's shape] = fn(a, b) with numpy broadcasting of a and b to ty's shape. */
/* Large flat cases (same shape, or one side a scalar) are split over the thread pool. */
#define PAR_MIN  (1 << 16)
#define PAR_GRAIN (1 << 14)

typedef struct flat_job {
    bin_fn      fn;
    const char *pa, *pb;
    char       *py;
    size_t      ea, eb, ey;
    int         mode;
    const void *ctx;
} flat_job;

static void flat_chunk(void *arg, int64_t lo, int64_t hi)
{
    const flat_job *j = arg;
    j->fn(j->pa + (j->mode == 2 ? 0 : lo * (int64_t)j->ea),
          j->pb + (j->mode == 1 ? 0 : lo * (int64_t)j->eb), j->py + lo * (int64_t)j->ey, hi - lo,
          j->mode, j->ctx);
}

static void flat_run(const qc_tensor *ta, const qc_tensor *tb, qc_tensor *ty, bin_fn fn,
                     int64_t total, int mode, const void *ctx)
{
    if (total < PAR_MIN) {
        fn(ta->data, tb->data, ty->data, total, mode, ctx);
        return;
    }
    flat_job j = { fn, ta->data, tb->data, ty->data, qc_dtype_size(ta->dtype),
                   qc_dtype_size(tb->dtype), qc_dtype_size(ty->dtype), mode, ctx };
    qc_par_for(total, PAR_GRAIN, flat_chunk, &j);
}

static void bcast_run(const qc_tensor *ta, const qc_tensor *tb, qc_tensor *ty, bin_fn fn,
                      const void *ctx)
{
    int64_t total = qc_tensor_numel(ty), na = qc_tensor_numel(ta), nb = qc_tensor_numel(tb);
    const char *pa = ta->data, *pb = tb->data;
    char *py = ty->data;
    if (total == 0)
        return;
    if (na == total && nb == total) {
        flat_run(ta, tb, ty, fn, total, 0, ctx);
        return;
    }
    if (na == total && nb == 1) {
        flat_run(ta, tb, ty, fn, total, 1, ctx);
        return;
    }
    if (na == 1 && nb == total) {
        flat_run(ta, tb, ty, fn, total, 2, ctx);
        return;
    }
    int64_t sa[QC_MAX_DIMS], sb[QC_MAX_DIMS], d[QC_MAX_DIMS], ca[QC_MAX_DIMS], cb[QC_MAX_DIMS];
    int nd = ty->ndim, m = 0;
    qc_broadcast_strides(ta->dims, ta->ndim, ty->dims, nd, sa);
    qc_broadcast_strides(tb->dims, tb->ndim, ty->dims, nd, sb);
    /* Drop size-1 dims and merge neighbours that are contiguous in both inputs, so that
     * [N,C,H,W] * [C,1,1] becomes N*C runs of H*W against a scalar. */
    for (int i = 0; i < nd; i++) {
        int64_t di = ty->dims[i];
        if (di == 1)
            continue;
        if (m > 0 && ca[m - 1] == sa[i] * di && cb[m - 1] == sb[i] * di) {
            d[m - 1] *= di;
            ca[m - 1] = sa[i];
            cb[m - 1] = sb[i];
        } else {
            d[m] = di;
            ca[m] = sa[i];
            cb[m] = sb[i];
            m++;
        }
    }
    if (m == 0) {
        fn(pa, pb, py, 1, 0, ctx);
        return;
    }
    size_t ea = qc_dtype_size(ta->dtype), eb = qc_dtype_size(tb->dtype);
    size_t ey = qc_dtype_size(ty->dtype);
    int64_t inner = d[m - 1], outer = total / inner, idx[QC_MAX_DIMS] = { 0 }, oa = 0, ob = 0;
    int mode = ca[m - 1] == 0 ? 2 : cb[m - 1] == 0 ? 1 : 0;
    for (int64_t o = 0; o < outer; o++) {
        fn(pa + oa * (int64_t)ea, pb + ob * (int64_t)eb, py + o * inner * (int64_t)ey, inner,
           mode, ctx);
        for (int k = m - 2; k >= 0; k--) {
            oa += ca[k];
            ob += cb[k];
            if (++idx[k] < d[k])
                break;
            oa -= ca[k] * d[k];
            ob -= cb[k] * d[k];
            idx[k] = 0;
        }
    }
}

/* Where: cond ? x : y over three broadcast inputs, copied by element size. */
static void where_run(const qc_tensor *tc, const qc_tensor *tx, const qc_tensor *ty,
                      qc_tensor *out)
{
    const qc_tensor *t[3] = { tc, tx, ty };
    int64_t s[3][QC_MAX_DIMS], c[3][QC_MAX_DIMS], d[QC_MAX_DIMS], idx[QC_MAX_DIMS] = { 0 };
    int64_t off[3] = { 0, 0, 0 }, total = qc_tensor_numel(out);
    int nd = out->ndim, m = 0;
    size_t es = qc_dtype_size(out->dtype);
    if (total == 0)
        return;
    for (int k = 0; k < 3; k++)
        qc_broadcast_strides(t[k]->dims, t[k]->ndim, out->dims, nd, s[k]);
    for (int i = 0; i < nd; i++) {
        int64_t di = out->dims[i];
        if (di == 1)
            continue;
        if (m > 0 && c[0][m - 1] == s[0][i] * di && c[1][m - 1] == s[1][i] * di &&
            c[2][m - 1] == s[2][i] * di) {
            d[m - 1] *= di;
            for (int k = 0; k < 3; k++)
                c[k][m - 1] = s[k][i];
        } else {
            d[m] = di;
            for (int k = 0; k < 3; k++)
                c[k][m] = s[k][i];
            m++;
        }
    }
    if (m == 0) {
        d[0] = 1;
        c[0][0] = c[1][0] = c[2][0] = 0;
        m = 1;
    }
    int64_t inner = d[m - 1], outer = total / inner;
    int64_t s0 = c[0][m - 1], s1 = c[1][m - 1], s2 = c[2][m - 1];
    const uint8_t *pc = tc->data;
    const char *px = tx->data, *pw = ty->data;
    char *po = out->data;
    for (int64_t o = 0; o < outer; o++) {
        const uint8_t *cc = pc + off[0];
        const char *xx = px + off[1] * (int64_t)es, *ww = pw + off[2] * (int64_t)es;
        char *oo = po + o * inner * (int64_t)es;
#define WHERE_LOOP(T)                                                           \
        for (int64_t i = 0; i < inner; i++)                                     \
            ((T *)oo)[i] = cc[i * s0] ? ((const T *)xx)[i * s1] : ((const T *)ww)[i * s2];
        switch (es) {
        case 1: WHERE_LOOP(uint8_t) break;
        case 2: WHERE_LOOP(uint16_t) break;
        case 4: WHERE_LOOP(uint32_t) break;
        default: WHERE_LOOP(uint64_t) break;
        }
#undef WHERE_LOOP
        for (int k = m - 2; k >= 0; k--) {
            for (int j = 0; j < 3; j++)
                off[j] += c[j][k];
            if (++idx[k] < d[k])
                break;
            for (int j = 0; j < 3; j++)
                off[j] -= c[j][k] * d[k];
            idx[k] = 0;
        }
    }
}

static const bop *find_bop(const qc_knode *n)
{
    if (n->state)
        return n->state;
    for (size_t i = 0; i < sizeof bops / sizeof bops[0]; i++)
        if (strcmp(bops[i].name, n->node->op_type) == 0)
            return &bops[i];
    return NULL;
}

int qc_ew_binary_prepare(qc_knode *n, qc_err *err)
{
    const bop *op = find_bop(n);
    if (!op)
        return qc_node_errf(n, err, QC_EINTERNAL, "no elementwise kernel for %s",
                            n->node->op_type);
    n->state = (void *)op;
    return QC_OK;
}

static const bin_fn *kernels(const bop *op, const qc_knode *n)
{
    switch (op->code) {
    case B_ADD: case B_SUM: case B_MEAN: return add_fns;
    case B_SUB: return sub_fns;
    case B_MUL: return mul_fns;
    case B_DIV: return div_fns;
    case B_MOD: return qc_attr_int(n->node, "fmod", 0) ? fmod_fns : mod_fns;
    case B_PRELU: return prelu_fns;
    case B_MIN: return min_fns;
    case B_MAX: return max_fns;
    case B_EQ: return eq_fns;
    case B_LT: return lt_fns;
    case B_GT: return gt_fns;
    case B_LE: return le_fns;
    case B_GE: return ge_fns;
    case B_AND: return and_fns;
    case B_OR: return or_fns;
    case B_XOR: return xor_fns;
    default: return NULL;
    }
}

static int supported_pow_type(int dtype)
{
    return dtype == QC_F32 || dtype == QC_I32 || dtype == QC_I64;
}

int qc_ew_binary_infer(qc_knode *n, qc_err *err)
{
    const bop *op = find_bop(n);
    int nin = 0, first = -1;
    int64_t dims[QC_MAX_DIMS], tmp_dims[QC_MAX_DIMS];
    int nd = 0;
    char s1[128], s2[128];
    if (!op)
        return qc_node_errf(n, err, QC_EINTERNAL, "no elementwise kernel");
    for (int i = 0; i < n->n_in; i++) {
        const qc_tensor *t = n->in[i];
        if (!t)
            continue;
        if (first < 0) {
            first = i;
            nd = t->ndim;
            memcpy(dims, t->dims, sizeof(int64_t) * (size_t)t->ndim);
        } else {
            int tnd;
            if (qc_broadcast_shape(dims, nd, t->dims, t->ndim, tmp_dims, &tnd) != QC_OK) {
                qc_tensor tmp = { .ndim = nd };
                memcpy(tmp.dims, dims, sizeof dims);
                return qc_node_errf(n, err, QC_ESHAPE, "cannot broadcast %s with input %d %s",
                                    qc_shape_str(&tmp, s1, sizeof s1), i,
                                    qc_shape_str(t, s2, sizeof s2));
            }
            nd = tnd;
            memcpy(dims, tmp_dims, sizeof dims);
        }
        nin++;
    }
    int want = op->code == B_WHERE ? 3 : op->code >= B_MIN && op->code <= B_MEAN ? 1 : 2;
    if (nin < want || (want > 1 && nin != want) || first != 0)
        return qc_node_errf(n, err, QC_EINPUT, "expected %d inputs, got %d", want, nin);
    const qc_tensor *a = n->in[0], *b = nin > 1 ? n->in[1] : NULL;
    int dt = a->dtype, out_dt = dt;
    if (op->code == B_WHERE) {
        if (a->dtype != QC_BOOL)
            return qc_node_errf(n, err, QC_EINPUT, "condition is %s, expected bool",
                                qc_dtype_name(a->dtype));
        dt = out_dt = n->in[1]->dtype;
        if (n->in[2]->dtype != dt)
            return qc_node_errf(n, err, QC_EINPUT, "X is %s but Y is %s",
                                qc_dtype_name(dt), qc_dtype_name(n->in[2]->dtype));
        if (!qc_dtype_is_executable(dt))
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                                qc_dtype_name(dt));
    } else if (op->code == B_POW) {
        if (!supported_pow_type(a->dtype) || !supported_pow_type(b->dtype))
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "Pow of %s by %s is not supported",
                                qc_dtype_name(a->dtype), qc_dtype_name(b->dtype));
    } else {
        for (int i = 1; i < n->n_in; i++)
            if (n->in[i] && n->in[i]->dtype != dt)
                return qc_node_errf(n, err, QC_EINPUT, "input 0 is %s but input %d is %s",
                                    qc_dtype_name(dt), i, qc_dtype_name(n->in[i]->dtype));
        int k = tix(dt);
        if (k < 0 || !kernels(op, n)[k] || (op->code == B_MEAN && dt != QC_F32))
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "dtype %s is not supported",
                                qc_dtype_name(dt));
        if (op->code >= B_EQ)
            out_dt = QC_BOOL;
    }
    qc_set_shape(n->out[0], out_dt, nd, dims);
    return QC_OK;
}

static void copy_bcast(const qc_tensor *src, qc_tensor *dst)
{
    /* Broadcast copy = Where with a constant-true condition would do, but Max(x, x) is
     * simpler: any idempotent kernel of the right dtype copies with broadcasting. */
    bcast_run(src, src, dst, max_fns[tix(src->dtype)], NULL);
}

static int run_pow(qc_knode *n)
{
    const qc_tensor *a = n->in[0], *b = n->in[1];
    qc_tensor *y = n->out[0];
    if (a->dtype == QC_F32 && b->dtype == QC_F32) {
        bin_fn fn = pow_f32;
        if (qc_tensor_numel(b) == 1) {
            float e = *(const float *)b->data;
            fn = e == 2.0f ? sq_f32 : e == 3.0f ? cube_f32 : e == 0.5f ? sqrt_f32 : pow_f32;
        }
        bcast_run(a, b, y, fn, NULL);
    } else {
        pow_ctx c = { a->dtype, b->dtype, y->dtype };
        bcast_run(a, b, y, pow_mixed, &c);
    }
    return QC_OK;
}

int qc_ew_binary_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const bop *op = find_bop(n);
    qc_tensor *y = n->out[0];
    (void)r;
    if (!op)
        return qc_node_errf(n, err, QC_EINTERNAL, "no elementwise kernel");
    if (op->code == B_WHERE) {
        where_run(n->in[0], n->in[1], n->in[2], y);
        return QC_OK;
    }
    if (op->code == B_POW)
        return run_pow(n);
    bin_fn fn = kernels(op, n)[tix(n->in[0]->dtype)];
    if (op->code < B_MIN || op->code > B_MEAN) {
        bcast_run(n->in[0], n->in[1], y, fn, NULL);
        return QC_OK;
    }
    /* Variadic: fold left into y, which already has the full broadcast shape. */
    int count = 0;
    for (int i = 0; i < n->n_in; i++) {
        const qc_tensor *t = n->in[i];
        if (!t)
            continue;
        if (count == 0) {
            int j = i + 1;
            while (j < n->n_in && !n->in[j])
                j++;
            if (j < n->n_in) {
                bcast_run(t, n->in[j], y, fn, NULL);
                i = j;
                count++;
            } else {
                copy_bcast(t, y);
            }
        } else {
            bcast_run(y, t, y, fn, NULL);
        }
        count++;
    }
    if (op->code == B_MEAN && count > 1) {
        float *p = y->data;
        float c = (float)count;
        for (int64_t i = 0, len = qc_tensor_numel(y); i < len; i++)
            p[i] /= c;
    }
    return QC_OK;
}
