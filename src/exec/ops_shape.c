/* Data movement that only rearranges elements: Transpose, Reshape, Flatten, Squeeze,
 * Unsqueeze, Concat, Split, Expand, Tile (Pad lives with Resize in ops_resize.c, the
 * shape-subgraph producers Shape, Size, Constant, ConstantOfShape, Range in ops_source.c).
 * Kernels copy elements of qc_dtype_size() bytes, so every executable dtype works (shape
 * subgraphs run on int64, models feed int32 and bool too). */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "ops.h"
#include "par.h"

#define MAX_COPY_DIMS (2 * QC_MAX_DIMS)


static void copy_bytes(void *dst, const void *src, size_t nbytes)
{
    if (nbytes && dst != src)
        memcpy(dst, src, nbytes);
}

/* Row-major element strides. */
static void contig_strides(const int64_t *dims, int nd, int64_t *str)
{
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        str[i] = s;
        s *= dims[i];
    }
}

/* ---- strided copy ---------------------------------------------------------------------- */

#define STRIDED_ROW(T)                                                   \
    do {                                                                 \
        T *d_ = dst;                                                     \
        const T *s_ = src;                                               \
        for (int64_t j_ = 0; j_ < cols; j_++)                            \
            d_[j_] = s_[j_ * cs];                                        \
    } while (0)

static void copy_row(void *dst, const void *src, int64_t cols, int64_t cs, size_t es)
{
    if (cs == 1) {
        memcpy(dst, src, (size_t)cols * es);
        return;
    }
#ifdef __SSE2__
    if (es == 4 && cs == 2) {   /* YOLOv5's focus slices x[..., ::2]: even lanes of pairs */
        const float *s = src;
        float *d = dst;
        int64_t j = 0;
        for (; j + 5 <= cols; j += 4) {     /* reads up to s[2j + 7], the row has 2 cols - 1 */
            __m128 a = _mm_loadu_ps(s + 2 * j), b = _mm_loadu_ps(s + 2 * j + 4);
            _mm_storeu_ps(d + j, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
        }
        for (; j < cols; j++)
            memcpy(d + j, s + 2 * j, 4);
        return;
    }
#endif
    switch (es) {
    case 1: STRIDED_ROW(uint8_t); break;
    case 2: STRIDED_ROW(uint16_t); break;
    case 4: STRIDED_ROW(uint32_t); break;
    case 8: STRIDED_ROW(uint64_t); break;
    default:
        for (int64_t j = 0; j < cols; j++)
            memcpy((char *)dst + j * es, (const char *)src + j * cs * es, es);
    }
}

/* dst[i][j] = src[i + j*cs]: a transpose, tiled so that both sides stay in cache. */
#define TILED_T(T)                                                                   \
    do {                                                                             \
        T *d_ = dst;                                                                 \
        const T *s_ = src;                                                           \
        for (int64_t i0 = 0; i0 < rows; i0 += TILE)                                  \
            for (int64_t j0 = 0; j0 < cols; j0 += TILE) {                            \
                int64_t i1 = i0 + TILE < rows ? i0 + TILE : rows;                    \
                int64_t j1 = j0 + TILE < cols ? j0 + TILE : cols;                    \
                for (int64_t i = i0; i < i1; i++)                                    \
                    for (int64_t j = j0; j < j1; j++)                                \
                        d_[i * cols + j] = s_[i + j * cs];                           \
            }                                                                        \
    } while (0)

#ifdef __SSE2__
/* 4-byte elements by 4x4 register transposes: about 1.5x the scalar tiles on [84, 8400]. */
static void transpose_4x4(float *d, const float *s, int64_t rows, int64_t cols, int64_t cs)
{
    enum { TILE = 64 };
    for (int64_t i0 = 0; i0 < rows; i0 += TILE)
        for (int64_t j0 = 0; j0 < cols; j0 += TILE) {
            int64_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
            int64_t j1 = j0 + TILE < cols ? j0 + TILE : cols, i = i0;
            for (; i + 4 <= i1; i += 4) {
                int64_t j = j0;
                for (; j + 4 <= j1; j += 4) {
                    __m128 r0 = _mm_loadu_ps(s + i + j * cs);
                    __m128 r1 = _mm_loadu_ps(s + i + (j + 1) * cs);
                    __m128 r2 = _mm_loadu_ps(s + i + (j + 2) * cs);
                    __m128 r3 = _mm_loadu_ps(s + i + (j + 3) * cs);
                    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                    _mm_storeu_ps(d + i * cols + j, r0);
                    _mm_storeu_ps(d + (i + 1) * cols + j, r1);
                    _mm_storeu_ps(d + (i + 2) * cols + j, r2);
                    _mm_storeu_ps(d + (i + 3) * cols + j, r3);
                }
                for (; j < j1; j++)
                    for (int64_t k = i; k < i + 4; k++)
                        d[k * cols + j] = s[k + j * cs];
            }
            for (; i < i1; i++)
                for (int64_t j = j0; j < j1; j++)
                    d[i * cols + j] = s[i + j * cs];
        }
}
#endif

static void copy_2d(void *dst, const void *src, int64_t rows, int64_t cols, int64_t rs,
                    int64_t cs, size_t es)
{
    enum { TILE = 32 };
    if (rs == 1 && cs != 1 && rows > 1 && cols > 1 && es <= 8 && (es & (es - 1)) == 0) {
        switch (es) {
        case 1: TILED_T(uint8_t); return;
        case 2: TILED_T(uint16_t); return;
#ifdef __SSE2__
        case 4: transpose_4x4(dst, src, rows, cols, cs); return;  /* bit copies, any 4-byte type */
#else
        case 4: TILED_T(uint32_t); return;
#endif
        default: TILED_T(uint64_t); return;
        }
    }
    for (int64_t i = 0; i < rows; i++)
        copy_row((char *)dst + (size_t)(i * cols) * es, (const char *)src + i * rs * (int64_t)es,
                 cols, cs, es);
}

/* Copies of at least PAR_COPY_MIN bytes run on the thread pool in blocks of about
 * PAR_COPY_BLOCK bytes (layers of activations: 4 MB is common at 416x416); smaller ones in
 * the caller, where waking the workers would cost more than it saves. Copies are exact, so
 * the result does not depend on the split. */
#define PAR_COPY_MIN   ((size_t)256 << 10)
#define PAR_COPY_BLOCK ((size_t)64 << 10)

/* Contiguous pieces to copy (Concat, Split): n of them, each `bytes` long, piece k from
 * src + k * src_step to dst + k * dst_step; big pieces in blocks on the pool. */
typedef struct pcopy {
    char       *dst;
    const char *src;
    size_t      bytes, src_step, dst_step;
    int64_t     per;            /* blocks per piece */
} pcopy;

static void pcopy_items(void *ctx, int64_t lo, int64_t hi)
{
    const pcopy *c = ctx;
    for (int64_t it = lo; it < hi; it++) {
        int64_t k = it / c->per;
        size_t a = (size_t)(it % c->per) * PAR_COPY_BLOCK;
        size_t len = c->bytes - a < PAR_COPY_BLOCK ? c->bytes - a : PAR_COPY_BLOCK;
        memcpy(c->dst + (size_t)k * c->dst_step + a, c->src + (size_t)k * c->src_step + a, len);
    }
}

static void copy_pieces(void *dst, const void *src, int64_t n, size_t bytes, size_t dst_step,
                        size_t src_step)
{
    if ((size_t)n * bytes >= PAR_COPY_MIN && bytes >= PAR_COPY_BLOCK / 4) {
        pcopy c = { dst, src, bytes, src_step, dst_step,
                    (int64_t)((bytes + PAR_COPY_BLOCK - 1) / PAR_COPY_BLOCK) };
        qc_par_for(n * c.per, 1, pcopy_items, &c);
        return;
    }
    for (int64_t k = 0; k < n; k++)     /* small or many small pieces: here */
        memcpy((char *)dst + (size_t)k * dst_step, (const char *)src + (size_t)k * src_step,
               bytes);
}

/* A strided copy as planes (the outer axes) of rows x cols; work items are runs of `per`
 * rows in plane-major order (crossing planes when planes are small). */
typedef struct scopy {
    char       *dst;
    const char *src;
    int         outer;          /* axes before the last two */
    int64_t     d[MAX_COPY_DIMS], s[MAX_COPY_DIMS];
    int64_t     rows, cols, units, per;     /* units: planes x rows */
    size_t      es;
} scopy;

static void scopy_items(void *ctx, int64_t lo, int64_t hi)
{
    const scopy *c = ctx;
    int64_t u = lo * c->per, end = hi * c->per < c->units ? hi * c->per : c->units;
    if (u >= end)
        return;
    int64_t p = u / c->rows, r = u % c->rows, q = p, off = 0, idx[MAX_COPY_DIMS];
    for (int a = c->outer - 1; a >= 0; a--) {       /* plane p's multi-index, last axis fastest */
        idx[a] = q % c->d[a];
        off += idx[a] * c->s[a];
        q /= c->d[a];
    }
    while (u < end) {
        int64_t n = c->rows - r < end - u ? c->rows - r : end - u;
        copy_2d(c->dst + (size_t)((p * c->rows + r) * c->cols) * c->es,
                c->src + (off + r * c->s[c->outer]) * (int64_t)c->es, n, c->cols,
                c->s[c->outer], c->s[c->outer + 1], c->es);
        u += n;
        r = 0;
        p++;
        for (int a = c->outer - 1; a >= 0; a--) {   /* next plane */
            off += c->s[a];
            if (++idx[a] < c->d[a])
                break;
            off -= c->s[a] * c->d[a];
            idx[a] = 0;
        }
    }
}

void qc_strided_copy(void *dst, const void *src, int ndim, const int64_t *dims,
                     const int64_t *sstr, size_t es)
{
    scopy c = { .dst = dst, .src = src, .es = es };
    int nd = 0;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == 0)
            return;
        if (dims[i] == 1)
            continue;
        if (nd > 0 && c.s[nd - 1] == sstr[i] * dims[i]) {   /* mergeable with the previous axis */
            c.d[nd - 1] *= dims[i];
            c.s[nd - 1] = sstr[i];
            continue;
        }
        c.d[nd] = dims[i];
        c.s[nd] = sstr[i];
        nd++;
    }
    if (nd == 0) {
        memcpy(dst, src, es);
        return;
    }
    if (nd == 1 && c.s[0] == 1) {
        copy_pieces(dst, src, 1, (size_t)c.d[0] * es, 0, 0);
        return;
    }
    if (nd == 1) {              /* one strided row: a plane of one row */
        c.d[1] = c.d[0];
        c.s[1] = c.s[0];
        c.d[0] = 1;
        c.s[0] = 0;
        nd = 2;
    }
    c.outer = nd - 2;
    c.rows = c.d[nd - 2];
    c.cols = c.d[nd - 1];
    c.units = c.rows;
    for (int a = 0; a < c.outer; a++)
        c.units *= c.d[a];
    size_t row_bytes = (size_t)c.cols * es;
    if ((size_t)c.units * row_bytes < PAR_COPY_MIN) {
        c.per = c.units;
        scopy_items(&c, 0, 1);
        return;
    }
    c.per = (int64_t)(PAR_COPY_BLOCK / row_bytes) + 1;
    qc_par_for((c.units + c.per - 1) / c.per, 1, scopy_items, &c);
}

/* ---- Transpose ------------------------------------------------------------------------- */

static int transpose_perm(const qc_knode *n, int rank, int *perm, qc_err *err)
{
    int64_t np;
    const int64_t *p = qc_attr_ints(n->node, "perm", &np);
    int seen[QC_MAX_DIMS] = {0};
    if (!p) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return QC_OK;
    }
    if (np != rank)
        return qc_node_errf(n, err, QC_EINPUT, "perm has %lld entries for rank %d",
                            (long long)np, rank);
    for (int i = 0; i < rank; i++) {
        int64_t a = p[i] < 0 ? p[i] + rank : p[i];
        if (a < 0 || a >= rank || seen[a]++)
            return qc_node_errf(n, err, QC_EINPUT, "perm is not a permutation of 0..%d",
                                rank - 1);
        perm[i] = (int)a;
    }
    return QC_OK;
}

static int transpose_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int perm[QC_MAX_DIMS], rc;
    int64_t dims[QC_MAX_DIMS];
    if ((rc = qc_need_exec(n, x, err)) || (rc = transpose_perm(n, x->ndim, perm, err)))
        return rc;
    for (int i = 0; i < x->ndim; i++)
        dims[i] = x->dims[perm[i]];
    qc_set_shape(n->out[0], x->dtype, x->ndim, dims);
    return QC_OK;
}

static int transpose_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int perm[QC_MAX_DIMS], rc;
    int64_t str[QC_MAX_DIMS], sstr[QC_MAX_DIMS];
    (void)r;
    if ((rc = transpose_perm(n, x->ndim, perm, err)))
        return rc;
    contig_strides(x->dims, x->ndim, str);
    for (int i = 0; i < x->ndim; i++)
        sstr[i] = str[perm[i]];
    /* merged axes turn NCHW<->NHWC into batched 2-D transposes */
    qc_strided_copy(n->out[0]->data, x->data, x->ndim, n->out[0]->dims, sstr,
                    qc_dtype_size(x->dtype));
    return QC_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze: a new shape over the same bytes --------------- */

static int copy_run(qc_knode *n, qc_run *r, qc_err *err)
{
    (void)r;
    (void)err;
    copy_bytes(n->out[0]->data, n->in[0]->data, qc_tensor_nbytes(n->in[0]));
    return QC_OK;
}

static int reshape_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *shp = qc_opt_in(n, 1);
    int64_t dims[QC_MAX_DIMS], count, known = 1;
    const int64_t *attr = NULL;
    int allowzero = n->opset >= 14 && qc_attr_int(n->node, "allowzero", 0) != 0, infer_at = -1;
    int rc;
    if ((rc = qc_need_exec(n, x, err)))
        return rc;
    if (n->opset < 5) {
        attr = qc_attr_ints(n->node, "shape", &count);
    } else {
        if (!shp)
            return qc_node_errf(n, err, QC_EINPUT, "missing shape input");
        if (shp->ndim != 1)
            return qc_node_errf(n, err, QC_EINPUT, "shape input must be 1-D, got rank %d",
                                shp->ndim);
        count = shp->dims[0];
    }
    if (count > QC_MAX_DIMS)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "target rank %lld exceeds %d",
                            (long long)count, QC_MAX_DIMS);
    for (int i = 0; i < count; i++) {
        int64_t v = attr ? attr[i] : qc_tensor_get_i(shp, i);
        if (v == 0 && !allowzero) {
            if (i >= x->ndim)
                return qc_node_errf(n, err, QC_ESHAPE, "shape[%d] = 0 copies a dim the input "
                                    "(rank %d) does not have", i, x->ndim);
            v = x->dims[i];
        }
        if (v == -1) {
            if (infer_at >= 0)
                return qc_node_errf(n, err, QC_EINPUT, "shape has more than one -1");
            infer_at = i;
        } else if (v < 0) {
            return qc_node_errf(n, err, QC_EINPUT, "shape[%d] = %lld is invalid", i,
                                (long long)v);
        } else {
            known *= v;
        }
        dims[i] = v;
    }
    int64_t numel = qc_tensor_numel(x);
    if (infer_at >= 0) {
        if (known == 0 || numel % known)
            return qc_node_errf(n, err, QC_ESHAPE, "cannot infer the -1 dim: %lld elements "
                                "over a known product of %lld", (long long)numel,
                                (long long)known);
        dims[infer_at] = numel / known;
        known = numel;
    }
    if (known != numel)
        return qc_node_errf(n, err, QC_ESHAPE, "cannot reshape %lld elements into %lld",
                            (long long)numel, (long long)known);
    qc_set_shape(n->out[0], x->dtype, (int)count, dims);
    return QC_OK;
}

static int flatten_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t axis = qc_attr_int(n->node, "axis", 1), dims[2] = {1, 1};
    int rc;
    if ((rc = qc_need_exec(n, x, err)))
        return rc;
    if (axis < 0)
        axis += x->ndim;
    if (axis < 0 || axis > x->ndim)
        return qc_node_errf(n, err, QC_EINPUT, "axis %lld out of range for rank %d",
                            (long long)qc_attr_int(n->node, "axis", 1), x->ndim);
    for (int i = 0; i < x->ndim; i++)
        dims[i >= axis] *= x->dims[i];
    qc_set_shape(n->out[0], x->dtype, 2, dims);
    return QC_OK;
}

/* Axes of Squeeze/Unsqueeze: attribute before opset 13, optional input after. */
static int get_axes(const qc_knode *n, int64_t *axes, int *count, qc_err *err)
{
    const qc_tensor *t = qc_opt_in(n, 1);
    int64_t c = 0;
    if (n->opset < 13) {
        const int64_t *a = qc_attr_ints(n->node, "axes", &c);
        if (c > QC_MAX_DIMS)
            return qc_node_errf(n, err, QC_EINPUT, "too many axes (%lld)", (long long)c);
        for (int64_t i = 0; i < c; i++)
            axes[i] = a[i];
    } else if (t) {
        c = qc_tensor_numel(t);
        if (c > QC_MAX_DIMS)
            return qc_node_errf(n, err, QC_EINPUT, "too many axes (%lld)", (long long)c);
        for (int64_t i = 0; i < c; i++)
            axes[i] = qc_tensor_get_i(t, i);
    }
    *count = (int)c;
    return QC_OK;
}

static int squeeze_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t axes[QC_MAX_DIMS], dims[QC_MAX_DIMS];
    int count, drop[QC_MAX_DIMS] = {0}, nd = 0, rc;
    if ((rc = qc_need_exec(n, x, err)) || (rc = get_axes(n, axes, &count, err)))
        return rc;
    for (int i = 0; i < count; i++) {
        int a;
        if ((rc = qc_norm_axis(n, axes[i], x->ndim, &a, err)))
            return rc;
        if (x->dims[a] != 1)
            return qc_node_errf(n, err, QC_ESHAPE, "cannot squeeze axis %d of size %lld", a,
                                (long long)x->dims[a]);
        drop[a] = 1;
    }
    for (int i = 0; i < x->ndim; i++)
        if (!(count ? drop[i] : x->dims[i] == 1))
            dims[nd++] = x->dims[i];
    qc_set_shape(n->out[0], x->dtype, nd, dims);
    return QC_OK;
}

static int unsqueeze_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int64_t axes[QC_MAX_DIMS], dims[QC_MAX_DIMS];
    int count, ins[QC_MAX_DIMS] = {0}, rc;
    if ((rc = qc_need_exec(n, x, err)) || (rc = get_axes(n, axes, &count, err)))
        return rc;
    int rank = x->ndim + count;
    if (rank > QC_MAX_DIMS)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "output rank %d exceeds %d", rank,
                            QC_MAX_DIMS);
    for (int i = 0; i < count; i++) {
        int a;
        if ((rc = qc_norm_axis(n, axes[i], rank, &a, err)))
            return rc;
        if (ins[a]++)
            return qc_node_errf(n, err, QC_EINPUT, "axis %d repeated", a);
    }
    for (int i = 0, j = 0; i < rank; i++)
        dims[i] = ins[i] ? 1 : x->dims[j++];
    qc_set_shape(n->out[0], x->dtype, rank, dims);
    return QC_OK;
}

/* ---- Concat, Split --------------------------------------------------------------------- */

static int concat_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x0 = n->in[0];
    int axis, rc;
    int64_t dims[QC_MAX_DIMS];
    if (n->n_in < 1 || !x0)
        return qc_node_errf(n, err, QC_EINPUT, "needs at least one input");
    if ((rc = qc_need_exec(n, x0, err)) ||
        (rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", n->opset < 4 ? 1 : 0), x0->ndim,
                           &axis, err)))
        return rc;
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const qc_tensor *x = n->in[i];
        if (!x || x->dtype != x0->dtype || x->ndim != x0->ndim)
            return qc_node_errf(n, err, QC_ESHAPE, "input %d differs in dtype or rank from "
                                "input 0", i);
        for (int d = 0; d < x->ndim; d++)
            if (d != axis && x->dims[d] != x0->dims[d])
                return qc_node_errf(n, err, QC_ESHAPE, "input %d has dim %d = %lld, input 0 "
                                    "has %lld", i, d, (long long)x->dims[d],
                                    (long long)x0->dims[d]);
        dims[axis] += x->dims[axis];
    }
    qc_set_shape(n->out[0], x0->dtype, x0->ndim, dims);
    return QC_OK;
}

static int concat_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *y = n->out[0];
    int axis, rc;
    size_t es = qc_dtype_size(y->dtype);
    (void)r;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", n->opset < 4 ? 1 : 0), y->ndim,
                           &axis, err)))
        return rc;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= y->dims[d];
    for (int d = axis + 1; d < y->ndim; d++)
        inner *= y->dims[d];
    size_t out_row = (size_t)(y->dims[axis] * inner) * es, at = 0;
    for (int i = 0; i < n->n_in; i++) {
        const qc_tensor *x = n->in[i];
        size_t row = (size_t)(x->dims[axis] * inner) * es;
        if (row == 0)
            continue;
        copy_pieces((char *)y->data + at, x->data, outer, row, out_row, row);
        at += row;
    }
    return QC_OK;
}

/* Length of output `i` of Split along an axis of length `len`. */
static int split_len(const qc_knode *n, int i, int64_t len, int64_t *out, qc_err *err)
{
    const qc_tensor *st = n->opset >= 13 ? qc_opt_in(n, 1) : NULL;
    int64_t count = 0;
    const int64_t *sa = n->opset < 13 ? qc_attr_ints(n->node, "split", &count) : NULL;
    if (st && qc_tensor_numel(st) == 0)
        st = NULL;      /* an empty split input means "split evenly" */
    if (st)
        count = qc_tensor_numel(st);
    if (st || sa) {
        if (count != n->n_out)
            return qc_node_errf(n, err, QC_EINPUT, "split has %lld entries for %d outputs",
                                (long long)count, n->n_out);
        *out = st ? qc_tensor_get_i(st, i) : sa[i];
        return *out < 0 ? qc_node_errf(n, err, QC_EINPUT, "negative split size") : QC_OK;
    }
    int64_t parts = n->n_out;
    if (n->opset >= 18 && qc_attr_find(n->node, "num_outputs")) {
        parts = qc_attr_int(n->node, "num_outputs", 0);
        if (parts != n->n_out)
            return qc_node_errf(n, err, QC_EINPUT, "num_outputs %lld but %d outputs",
                                (long long)parts, n->n_out);
    }
    if (n->opset >= 18) {   /* uneven: the last chunk is smaller */
        int64_t chunk = (len + parts - 1) / parts, start = chunk * i;
        *out = start >= len ? 0 : (len - start < chunk ? len - start : chunk);
        return QC_OK;
    }
    if (len % parts)
        return qc_node_errf(n, err, QC_ESHAPE, "axis length %lld does not split evenly into "
                            "%lld parts", (long long)len, (long long)parts);
    *out = len / parts;
    return QC_OK;
}

static int split_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int axis, rc;
    int64_t dims[QC_MAX_DIMS], total = 0;
    if ((rc = qc_need_exec(n, x, err)) ||
        (rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < n->n_out; i++) {
        if ((rc = split_len(n, i, x->dims[axis], &dims[axis], err)))
            return rc;
        total += dims[axis];
        qc_set_shape(n->out[i], x->dtype, x->ndim, dims);
    }
    if (total != x->dims[axis])
        return qc_node_errf(n, err, QC_ESHAPE, "split sizes sum to %lld, axis length is %lld",
                            (long long)total, (long long)x->dims[axis]);
    return QC_OK;
}

static int split_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0];
    int axis, rc;
    size_t es = qc_dtype_size(x->dtype);
    (void)r;
    if ((rc = qc_norm_axis(n, qc_attr_int(n->node, "axis", 0), x->ndim, &axis, err)))
        return rc;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    size_t in_row = (size_t)(x->dims[axis] * inner) * es, at = 0;
    for (int i = 0; i < n->n_out; i++) {
        const qc_tensor *y = n->out[i];
        size_t row = (size_t)(y->dims[axis] * inner) * es;
        if (row == 0)
            continue;
        copy_pieces(y->data, (const char *)x->data + at, outer, row, row, in_row);
        at += row;
    }
    return QC_OK;
}

/* ---- Expand, Tile ---------------------------------------------------------------------- */

static int expand_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *shp = qc_opt_in(n, 1);
    int64_t want[QC_MAX_DIMS], dims[QC_MAX_DIMS];
    int nd, rc;
    if ((rc = qc_need_exec(n, x, err)))
        return rc;
    if (!shp || shp->ndim != 1 || shp->dims[0] > QC_MAX_DIMS)
        return qc_node_errf(n, err, QC_EINPUT, "shape input must be 1-D with at most %d "
                            "entries", QC_MAX_DIMS);
    for (int i = 0; i < shp->dims[0]; i++)
        want[i] = qc_tensor_get_i(shp, i);
    if (qc_broadcast_shape(x->dims, x->ndim, want, (int)shp->dims[0], dims, &nd))
        return qc_node_errf(n, err, QC_ESHAPE, "input does not broadcast to the given shape");
    qc_set_shape(n->out[0], x->dtype, nd, dims);
    return QC_OK;
}

static int expand_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *y = n->out[0];
    int64_t sstr[QC_MAX_DIMS];
    (void)r;
    (void)err;
    qc_broadcast_strides(x->dims, x->ndim, y->dims, y->ndim, sstr);
    qc_strided_copy(y->data, x->data, y->ndim, y->dims, sstr, qc_dtype_size(x->dtype));
    return QC_OK;
}

static int tile_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *x = n->in[0], *rep = qc_opt_in(n, 1);
    int64_t dims[QC_MAX_DIMS];
    int rc;
    if ((rc = qc_need_exec(n, x, err)))
        return rc;
    if (!rep || qc_tensor_numel(rep) != x->ndim)
        return qc_node_errf(n, err, QC_EINPUT, "repeats must have %d entries", x->ndim);
    for (int i = 0; i < x->ndim; i++) {
        int64_t k = qc_tensor_get_i(rep, i);
        if (k < 0)
            return qc_node_errf(n, err, QC_EINPUT, "negative repeat %lld", (long long)k);
        dims[i] = x->dims[i] * k;
    }
    qc_set_shape(n->out[0], x->dtype, x->ndim, dims);
    return QC_OK;
}

static int tile_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *x = n->in[0], *y = n->out[0];
    int64_t str[QC_MAX_DIMS], dims[MAX_COPY_DIMS], sstr[MAX_COPY_DIMS];
    (void)r;
    (void)err;
    /* output axis a viewed as [repeat_a, dim_a]: row-major order is the same */
    contig_strides(x->dims, x->ndim, str);
    for (int i = 0; i < x->ndim; i++) {
        dims[2 * i] = x->dims[i] ? y->dims[i] / x->dims[i] : 0;
        dims[2 * i + 1] = x->dims[i];
        sstr[2 * i] = 0;
        sstr[2 * i + 1] = str[i];
    }
    qc_strided_copy(y->data, x->data, 2 * x->ndim, dims, sstr, qc_dtype_size(x->dtype));
    return QC_OK;
}

const qc_op_def qc_ops_shape[] = {
    { "Transpose", 1, transpose_infer, transpose_run, NULL, NULL, NULL },
    { "Reshape", 1, reshape_infer, copy_run, NULL, NULL, NULL },
    { "Flatten", 1, flatten_infer, copy_run, NULL, NULL, NULL },
    { "Squeeze", 1, squeeze_infer, copy_run, NULL, NULL, NULL },
    { "Unsqueeze", 1, unsqueeze_infer, copy_run, NULL, NULL, NULL },
    { "Concat", 1, concat_infer, concat_run, NULL, NULL, NULL },
    { "Split", 1, split_infer, split_run, NULL, NULL, NULL },
    { "Expand", 8, expand_infer, expand_run, NULL, NULL, NULL },
    { "Tile", 6, tile_infer, tile_run, NULL, NULL, NULL },
    { 0 }
};
