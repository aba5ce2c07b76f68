/* Matrix products: the qc_sgemm() wrapper over OpenBLAS, Gemm and MatMul. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <cblas.h>
#include <stdlib.h>
#include "ops.h"
#include "par.h"

/* OpenBLAS runs single-threaded; large products are split over the qc_par pool instead.
 * Its own idle threads would otherwise spin (sched_yield) for a while after every call,
 * competing with the pool's workers for the same cores. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_init(void)
{
    openblas_set_num_threads(1);
}

typedef struct gemm_split {
    int          ta, tb, by_rows;
    int64_t      m, n, k, chunk;
    float        alpha, beta;
    const float *a, *b;
    int64_t      lda, ldb, ldc;
    float       *c;
} gemm_split;

static void gemm_chunks(void *vctx, int64_t lo, int64_t hi)
{
    const gemm_split *g = vctx;
    for (int64_t t = lo; t < hi; t++) {
        int64_t total = g->by_rows ? g->m : g->n, s0 = t * g->chunk;
        int64_t len = total - s0 < g->chunk ? total - s0 : g->chunk;
        if (len <= 0)
            continue;
        if (g->by_rows)
            cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                        g->tb ? CblasTrans : CblasNoTrans, (int)len, (int)g->n, (int)g->k,
                        g->alpha, g->a + (g->ta ? s0 : s0 * g->lda), (int)g->lda, g->b,
                        (int)g->ldb, g->beta, g->c + s0 * g->ldc, (int)g->ldc);
        else
            cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                        g->tb ? CblasTrans : CblasNoTrans, (int)g->m, (int)len, (int)g->k,
                        g->alpha, g->a, (int)g->lda, g->b + (g->tb ? s0 * g->ldb : s0),
                        (int)g->ldb, g->beta, g->c + s0, (int)g->ldc);
    }
}

void qc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
              float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    pthread_once(&blas_once, blas_init);
    if (k <= 0 || alpha == 0.0f) {
        /* BLAS would reject lda = 0 here; the product is empty, only beta*C remains. */
        for (int64_t i = 0; i < m; i++) {
            float *row = c + i * ldc;
            if (beta == 0.0f)
                memset(row, 0, (size_t)n * sizeof *row);
            else if (beta != 1.0f)
                for (int64_t j = 0; j < n; j++)
                    row[j] *= beta;
        }
        return;
    }
    /* A vector operand: cblas_sgemv skips sgemm's packing. */
    if (n == 1 || m == 1) {
        int64_t len = n == 1 ? m : n, inc = n == 1 ? ldc : 1;
        if (beta == 0.0f)       /* never read C: it may hold NaN garbage */
            for (int64_t i = 0; i < len; i++)
                c[i * inc] = 0.0f;
        if (n == 1)             /* c = op(A) b */
            cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                        (int)(trans_a ? k : m), (int)(trans_a ? m : k), alpha, a, (int)lda,
                        b, (int)(trans_b ? 1 : ldb), beta, c, (int)ldc);
        else                    /* c = op(B)^T a */
            cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans,
                        (int)(trans_b ? n : k), (int)(trans_b ? k : n), alpha, b, (int)ldb,
                        a, (int)(trans_a ? lda : 1), beta, c, 1);
        return;
    }
    int nt = qc_par_threads();
    if (nt > 1 && (double)m * (double)n * (double)k >= 2e6) {
        /* Split the longer side into a few chunks (multiples of 16) per thread. */
        gemm_split g = { trans_a, trans_b, m >= n, m, n, k, 0, alpha, beta, a, b, lda, ldb,
                         ldc, c };
        int64_t total = g.by_rows ? m : n, parts = 2 * (int64_t)nt;
        g.chunk = ((total + parts - 1) / parts + 15) / 16 * 16;
        qc_par_for((total + g.chunk - 1) / g.chunk, 1, gemm_chunks, &g);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
                (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

static int check_blas_dims(const qc_knode *n, int64_t m, int64_t nn, int64_t k, qc_err *err)
{
    /* OpenBLAS takes 32-bit int sizes and leading dimensions. */
    if (m > INT_MAX || nn > INT_MAX || k > INT_MAX)
        return qc_node_errf(n, err, QC_EUNSUPPORTED,
                            "matrix product %lldx%lldx%lld is too large for BLAS",
                            (long long)m, (long long)k, (long long)nn);
    return QC_OK;
}

static int need_f32(const qc_knode *n, const qc_tensor *t, const char *what, qc_err *err)
{
    if (t->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "%s '%s' has dtype %s; only float32 "
                            "is supported", what, t->name ? t->name : "?",
                            qc_dtype_name(t->dtype));
    return QC_OK;
}

/* ---- Gemm ---------------------------------------------------------------------------- */

static int gemm_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[1];
    const qc_tensor *c = n->n_in > 2 ? n->in[2] : NULL;
    int rc;
    if ((rc = need_f32(n, a, "input A", err)) || (rc = need_f32(n, b, "input B", err)))
        return rc;
    if (c && (rc = need_f32(n, c, "input C", err)))
        return rc;
    if (a->ndim != 2 || b->ndim != 2)
        return qc_node_errf(n, err, QC_ESHAPE, "Gemm needs 2-D A and B, got ranks %d and %d",
                            a->ndim, b->ndim);
    int ta = qc_attr_int(n->node, "transA", 0) != 0, tb = qc_attr_int(n->node, "transB", 0) != 0;
    int64_t m = ta ? a->dims[1] : a->dims[0], k = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0], nn = tb ? b->dims[0] : b->dims[1];
    if (k != kb)
        return qc_node_errf(n, err, QC_ESHAPE, "Gemm inner dimensions differ: %lld vs %lld",
                            (long long)k, (long long)kb);
    if ((rc = check_blas_dims(n, m, nn, k, err)))
        return rc;
    if (c) {
        /* C must broadcast unidirectionally to [M, N]. */
        int64_t cr = 1, cc = 1;
        if (c->ndim > 2)
            return qc_node_errf(n, err, QC_ESHAPE, "Gemm C has rank %d", c->ndim);
        if (c->ndim == 2)
            cr = c->dims[0], cc = c->dims[1];
        else if (c->ndim == 1)
            cc = c->dims[0];
        if ((cr != 1 && cr != m) || (cc != 1 && cc != nn))
            return qc_node_errf(n, err, QC_ESHAPE, "Gemm C of shape [%lld,%lld] does not "
                                "broadcast to [%lld,%lld]", (long long)cr, (long long)cc,
                                (long long)m, (long long)nn);
    }
    int64_t dims[2] = { m, nn };
    qc_set_shape(n->out[0], QC_F32, 2, dims);
    return QC_OK;
}

static int gemm_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[1];
    const qc_tensor *c = n->n_in > 2 ? n->in[2] : NULL;
    float *y = n->out[0]->data;
    int ta = qc_attr_int(n->node, "transA", 0) != 0, tb = qc_attr_int(n->node, "transB", 0) != 0;
    float alpha = qc_attr_float(n->node, "alpha", 1.0f);
    float beta = qc_attr_float(n->node, "beta", 1.0f);
    int64_t m = n->out[0]->dims[0], nn = n->out[0]->dims[1];
    int64_t k = ta ? a->dims[0] : a->dims[1];
    (void)r; (void)err;
    float gbeta = 0.0f;
    if (c && beta != 0.0f) {
        const float *cd = c->data;
        int64_t cr = c->ndim == 2 ? c->dims[0] : 1;
        int64_t cc = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
        int64_t rs = cr == 1 ? 0 : cc, cs = cc == 1 ? 0 : 1;
        for (int64_t i = 0; i < m; i++) {
            float *yr = y + i * nn;
            const float *crow = cd + i * rs;
            if (cs)
                for (int64_t j = 0; j < nn; j++)
                    yr[j] = beta * crow[j];
            else
                for (int64_t j = 0; j < nn; j++)
                    yr[j] = beta * crow[0];
        }
        gbeta = 1.0f;
    }
    qc_sgemm(ta, tb, m, nn, k, alpha, a->data, a->dims[1], b->data, b->dims[1], gbeta, y, nn);
    return QC_OK;
}

/* Per-column sums of Gemm's output without computing it (qc_op_def.sums): the column sums
 * of A times B, plus C's. */
static int gemm_sums(const qc_knode *n, double *sums, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[1];
    const qc_tensor *c = n->n_in > 2 ? n->in[2] : NULL;
    int ta = qc_attr_int(n->node, "transA", 0) != 0, tb = qc_attr_int(n->node, "transB", 0) != 0;
    double alpha = qc_attr_float(n->node, "alpha", 1.0f);
    double beta = qc_attr_float(n->node, "beta", 1.0f);
    int64_t m = n->out[0]->dims[0], nn = n->out[0]->dims[1];
    int64_t k = ta ? a->dims[0] : a->dims[1];
    const float *ad = a->data, *bd = b->data;
    double *ca = calloc((size_t)k + 1, sizeof *ca);
    if (!ca)
        return qc_node_errf(n, err, QC_ENOMEM, "out of memory");
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++)
            ca[j] += ad[ta ? j * m + i : i * k + j];
    for (int64_t j = 0; j < nn; j++) {
        double v = 0;
        for (int64_t l = 0; l < k; l++)
            v += ca[l] * bd[tb ? j * k + l : l * nn + j];
        sums[j] = alpha * v;
    }
    free(ca);
    if (c && beta != 0.0) {
        const float *cd = c->data;
        int64_t cr = c->ndim == 2 ? c->dims[0] : 1;
        int64_t cc = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
        for (int64_t j = 0; j < nn; j++) {
            double v = 0;
            for (int64_t i = 0; i < cr; i++)
                v += cd[i * cc + (cc == 1 ? 0 : j)];
            sums[j] += beta * v * (double)(cr == 1 ? m : 1);
        }
    }
    return QC_OK;
}

/* ---- MatMul (numpy semantics) -------------------------------------------------------- */

typedef struct mm_shape {
    int64_t m, k, n;
    int     nbatch_dims;                 /* rank of the broadcast batch shape */
    int64_t batch[QC_MAX_DIMS];
    int64_t a_batch[QC_MAX_DIMS], b_batch[QC_MAX_DIMS];   /* left-padded with 1 */
} mm_shape;

static int mm_shape_of(const qc_knode *n, const qc_tensor *a, const qc_tensor *b, mm_shape *s,
                       qc_err *err)
{
    if (a->ndim < 1 || b->ndim < 1)
        return qc_node_errf(n, err, QC_ESHAPE, "MatMul inputs must have rank >= 1, got %d "
                            "and %d", a->ndim, b->ndim);
    s->m = a->ndim == 1 ? 1 : a->dims[a->ndim - 2];
    s->k = a->dims[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->dims[0] : b->dims[b->ndim - 2];
    s->n = b->ndim == 1 ? 1 : b->dims[b->ndim - 1];
    if (s->k != kb)
        return qc_node_errf(n, err, QC_ESHAPE, "MatMul inner dimensions differ: %lld vs %lld",
                            (long long)s->k, (long long)kb);
    int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = b->ndim > 2 ? b->ndim - 2 : 0;
    int nd = na > nb ? na : nb;
    s->nbatch_dims = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - na), ib = i - (nd - nb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return qc_node_errf(n, err, QC_ESHAPE, "MatMul batch dims do not broadcast "
                                "(%lld vs %lld at batch axis %d)", (long long)da,
                                (long long)db, i);
        s->a_batch[i] = da;
        s->b_batch[i] = db;
        s->batch[i] = da == 1 ? db : da;
    }
    return check_blas_dims(n, s->m, s->n, s->k, err);
}

static int matmul_infer(qc_knode *n, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[1];
    int rc;
    mm_shape s;
    if ((rc = need_f32(n, a, "input A", err)) || (rc = need_f32(n, b, "input B", err)))
        return rc;
    if ((rc = mm_shape_of(n, a, b, &s, err)))
        return rc;
    int64_t dims[QC_MAX_DIMS];
    int nd = s.nbatch_dims;
    memcpy(dims, s.batch, (size_t)nd * sizeof dims[0]);
    if (a->ndim > 1)
        dims[nd++] = s.m;
    if (b->ndim > 1)
        dims[nd++] = s.n;
    qc_set_shape(n->out[0], QC_F32, nd, dims);
    return QC_OK;
}

/* ---- MatMul with a mostly-zero A (one-hot encodings: magika multiplies a [2048, 257]
 * one-hot by its embedding) ----
 * Y = A B as the sum over A's nonzeros a_ik of a_ik B[k, :]: for a one-hot row that is one
 * row of B scaled, where sgemm does K times the work. Taken when the first SP_PROBE values
 * of A are at least 7/8 zeros and B is finite (skipping a zero must not hide 0 x Inf = NaN);
 * a row block that turns out denser (more than a quarter nonzero) goes to sgemm. The sums
 * add the nonzero products in order of k: with one nonzero a row (one-hot) the values are
 * sgemm's exactly (a b rounded once, then exact zeros added); otherwise they differ from
 * sgemm's in the order of additions only. */
#define SP_PROBE 4096
#define SP_ROWS  64             /* rows a parallel item */

typedef struct sparse_mm {
    const float *a, *b;
    float       *y;
    int64_t      m, n, k;
} sparse_mm;

/* y += a * B[k, :] for each nonzero a = ar[k] of the row; returns the nonzeros. */
static int64_t sparse_row(const sparse_mm *s, const float *ar, float *restrict yr)
{
    int64_t nz = 0;
    for (int64_t k = 0; k < s->k; k++) {
        float a = ar[k];
        if (a == 0.0f)
            continue;
        const float *restrict br = s->b + k * s->n;
        for (int64_t j = 0; j < s->n; j++)
            yr[j] += a * br[j];
        nz++;
    }
    return nz;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* y += a b over n values: a * b[j] rounded, then added (as sparse_row's loop) */
static inline __attribute__((always_inline, target("avx2"))) void
axpy_avx2(float *restrict y, float a, const float *restrict b, int64_t n)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_loadu_ps(y + j),
                                              _mm256_mul_ps(va, _mm256_loadu_ps(b + j))));
    for (; j < n; j++)
        y[j] += a * b[j];
}

/* The same, finding the nonzeros 8 at a time (the zeros are most of the row). */
static __attribute__((target("avx2"))) int64_t sparse_row_avx2(const sparse_mm *s,
                                                               const float *ar,
                                                               float *restrict yr)
{
    int64_t nz = 0, k0 = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (; k0 + 8 <= s->k; k0 += 8) {
        unsigned m = (unsigned)_mm256_movemask_ps(
            _mm256_cmp_ps(_mm256_loadu_ps(ar + k0), zero, _CMP_NEQ_UQ));
        for (; m; m &= m - 1, nz++)
            axpy_avx2(yr, ar[k0 + __builtin_ctz(m)], s->b + (k0 + __builtin_ctz(m)) * s->n,
                      s->n);
    }
    for (int64_t k = k0; k < s->k; k++)       /* the tail */
        if (ar[k] != 0.0f)
            axpy_avx2(yr, ar[k], s->b + k * s->n, s->n), nz++;
    return nz;
}
#endif

static void sparse_rows(void *ctx, int64_t lo, int64_t hi)
{
    const sparse_mm *s = ctx;
#if defined(__x86_64__) && defined(__GNUC__)
    int avx2 = __builtin_cpu_supports("avx2");
#endif
    for (int64_t blk = lo; blk < hi; blk++) {
        int64_t r0 = blk * SP_ROWS, r1 = r0 + SP_ROWS < s->m ? r0 + SP_ROWS : s->m, nz = 0;
        int dense = 0;
        for (int64_t i = r0; i < r1 && !dense; i++) {
            const float *ar = s->a + i * s->k;
            float *yr = s->y + i * s->n;
            memset(yr, 0, (size_t)s->n * sizeof *yr);
#if defined(__x86_64__) && defined(__GNUC__)
            nz += avx2 ? sparse_row_avx2(s, ar, yr) : sparse_row(s, ar, yr);
#else
            nz += sparse_row(s, ar, yr);
#endif
            dense = 4 * nz > (i - r0 + 1) * s->k;
        }
        if (dense)                      /* dense after all: the whole block by sgemm */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)s->n,
                        (int)s->k, 1.0f, s->a + r0 * s->k, (int)s->k, s->b, (int)s->n, 0.0f,
                        s->y + r0 * s->n, (int)s->n);
    }
}

static int sparse_matmul(const float *a, const float *b, float *y, int64_t m, int64_t n,
                         int64_t k)
{
    int64_t probe = m * k < SP_PROBE ? m * k : SP_PROBE, nz = 0;
    if (m < 2 * SP_ROWS || n < 8 || k < 16)
        return 0;
    for (int64_t i = 0; i < probe; i++)
        nz += a[i] != 0.0f;
    if (8 * nz > probe)
        return 0;
    for (int64_t i = 0; i < k * n; i++)
        if (!isfinite(b[i]))
            return 0;
    pthread_once(&blas_once, blas_init);
    sparse_mm s = { a, b, y, m, n, k };
    qc_par_for((m + SP_ROWS - 1) / SP_ROWS, 1, sparse_rows, &s);
    return 1;
}

static int matmul_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const qc_tensor *a = n->in[0], *b = n->in[1];
    const float *ad = a->data, *bd = b->data;
    float *y = n->out[0]->data;
    mm_shape s;
    int rc;
    (void)r;
    if ((rc = mm_shape_of(n, a, b, &s, err)))
        return rc;
    int64_t na = 1, nb = 1, nbatch = 1;
    for (int i = 0; i < s.nbatch_dims; i++) {
        na *= s.a_batch[i];
        nb *= s.b_batch[i];
        nbatch *= s.batch[i];
    }
    int64_t ldb = b->ndim == 1 ? 1 : s.n;
    if (nb == 1) {
        /* A's batch is the output's: one product with the batch folded into M. */
        if (na * s.m > INT_MAX)
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "MatMul too large for BLAS");
        if (b->ndim > 1 && sparse_matmul(ad, bd, y, na * s.m, s.n, s.k))
            return QC_OK;
        qc_sgemm(0, 0, na * s.m, s.n, s.k, 1.0f, ad, s.k, bd, ldb, 0.0f, y, s.n);
        return QC_OK;
    }
    int64_t as[QC_MAX_DIMS], bs[QC_MAX_DIMS], idx[QC_MAX_DIMS] = { 0 };
    qc_broadcast_strides(s.a_batch, s.nbatch_dims, s.batch, s.nbatch_dims, as);
    qc_broadcast_strides(s.b_batch, s.nbatch_dims, s.batch, s.nbatch_dims, bs);
    int64_t amat = s.m * s.k, bmat = s.k * s.n, ymat = s.m * s.n;
    int64_t ao = 0, bo = 0;
    for (int64_t t = 0; t < nbatch; t++) {
        qc_sgemm(0, 0, s.m, s.n, s.k, 1.0f, ad + ao * amat, s.k, bd + bo * bmat, ldb, 0.0f,
                 y + t * ymat, s.n);
        for (int i = s.nbatch_dims - 1; i >= 0; i--) {
            ao += as[i];
            bo += bs[i];
            if (++idx[i] < s.batch[i])
                break;
            ao -= as[i] * s.batch[i];
            bo -= bs[i] * s.batch[i];
            idx[i] = 0;
        }
    }
    return QC_OK;
}

const qc_op_def qc_ops_gemm[] = {
    { "Gemm",   1, gemm_infer,   gemm_run,   NULL, NULL, gemm_sums },
    { "MatMul", 1, matmul_infer, matmul_run, NULL, NULL, NULL },
    { 0 }
};
