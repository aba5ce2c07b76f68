/* qc_sgemm against a plain triple loop: every transpose combination, alpha/beta, vector
 * shapes (the sgemv route), padded leading dimensions and an empty inner dimension. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "ops.h"
#include "qc_exec.h"

static uint32_t rng = 12345;

static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Row-major reference; element (i, j) of op(A) is a[i*lda + j] or a[j*lda + i]. */
static void ref_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                float av = ta ? a[p * lda + i] : a[i * lda + p];
                float bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += (double)av * bv;
            }
            double old = beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * s + old);
        }
    }
}

static int check_case(int ta, int tb, int m, int n, int k, int pad, float alpha, float beta)
{
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    int arows = ta ? k : m, brows = tb ? n : k;
    if (lda < 1)
        lda = 1;
    if (ldb < 1)
        ldb = 1;
    size_t na = (size_t)arows * lda + 1, nb = (size_t)brows * ldb + 1, nc = (size_t)m * ldc + 1;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *c = malloc(nc * sizeof *c), *ref = malloc(nc * sizeof *ref);
    for (size_t i = 0; i < na; i++)
        a[i] = frand();
    for (size_t i = 0; i < nb; i++)
        b[i] = frand();
    for (size_t i = 0; i < nc; i++)
        c[i] = ref[i] = frand();
    ref_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, ref, ldc);
    qc_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    int bad = 0;
    for (int i = 0; i < m && !bad; i++) {
        for (int j = 0; j < n; j++) {
            double got = c[i * ldc + j], want = ref[i * ldc + j];
            if (fabs(got - want) > 1e-4 + 1e-4 * fabs(want)) {
                qc_test_fail(__FILE__, __LINE__, "ta=%d tb=%d m=%d n=%d k=%d pad=%d "
                             "alpha=%g beta=%g: c[%d,%d] = %.7g, expected %.7g", ta, tb, m, n,
                             k, pad, alpha, beta, i, j, got, want);
                bad = 1;
                break;
            }
        }
    }
    /* Padding columns between rows must be left alone. */
    for (int i = 0; i < m && !bad; i++)
        for (int j = n; j < ldc; j++)
            if (c[i * ldc + j] != ref[i * ldc + j]) {
                qc_test_fail(__FILE__, __LINE__, "padding of row %d touched", i);
                bad = 1;
                break;
            }
    free(a);
    free(b);
    free(c);
    free(ref);
    return bad;
}

QC_TEST(sgemm_transpose_combos)
{
    static const int shapes[][3] = {
        { 7, 5, 3 }, { 1, 9, 4 }, { 6, 1, 5 }, { 1, 1, 8 }, { 33, 17, 65 }, { 64, 100, 27 },
        { 3, 4, 0 },
    };
    static const float ab[][2] = { { 1.0f, 0.0f }, { 0.5f, 1.0f }, { -2.0f, 0.25f } };
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int pad = 0; pad < 2; pad++)
                    for (size_t q = 0; q < sizeof ab / sizeof ab[0]; q++)
                        check_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], pad * 3,
                                   ab[q][0], ab[q][1]);
}

QC_TEST(sgemm_beta_zero_ignores_nan)
{
    /* With beta = 0, C's old contents (uninitialized buffers) must not leak into the result. */
    float a[6] = { 1, 2, 3, 4, 5, 6 }, b[3] = { 1, 1, 1 }, c[2] = { NAN, NAN };
    qc_sgemm(0, 0, 2, 1, 3, 1.0f, a, 3, b, 1, 0.0f, c, 1);
    CHECK_NEAR(c[0], 6.0, 0, 1e-6);
    CHECK_NEAR(c[1], 15.0, 0, 1e-6);
    float d[2] = { NAN, NAN };
    qc_sgemm(0, 0, 1, 2, 3, 1.0f, b, 3, a, 2, 0.0f, d, 2);
    CHECK_NEAR(d[0], 9.0, 0, 1e-6);
    CHECK_NEAR(d[1], 12.0, 0, 1e-6);
    float g[4] = { NAN, NAN, NAN, NAN };
    qc_sgemm(0, 1, 2, 2, 3, 1.0f, a, 3, a, 3, 0.0f, g, 2);
    CHECK_NEAR(g[0], 14.0, 0, 1e-6);
    CHECK_NEAR(g[3], 77.0, 0, 1e-6);
    float e[4] = { NAN, NAN, NAN, NAN };
    qc_sgemm(0, 0, 2, 2, 0, 1.0f, a, 1, b, 1, 0.0f, e, 2);
    for (int i = 0; i < 4; i++)
        CHECK(e[i] == 0.0f);
}

/* ---- MatMul with a mostly-zero A (ops_gemm.c sparse_matmul), through the executor ---- */

static const char *mm_in[2] = { "a", "b" }, *mm_out[1] = { "y" };

/* y = a [m, k] x b [k, n] (b an initializer) on the executor; y_out gets m * n values. */
static void run_matmul(const float *a, float *b, int m, int n, int k, float *y_out)
{
    qc_err err = { 0 };
    qc_node node = { .name = "mm", .op_type = "MatMul", .domain = "", .n_inputs = 2,
                     .n_outputs = 1, .inputs = mm_in, .outputs = mm_out };
    qc_tensor init = { .name = "b", .dtype = QC_F32, .ndim = 2, .dims = { k, n }, .data = b };
    qc_value_info in = { .name = "a", .dtype = QC_F32, .ndim = -1 };
    qc_value_info out = { .name = "y", .dtype = QC_F32, .ndim = -1 };
    qc_model mdl = { .path = "test", .opset = 13, .n_nodes = 1, .n_inputs = 1, .n_outputs = 1,
                     .n_inits = 1, .nodes = &node, .inputs = &in, .outputs = &out,
                     .inits = &init };
    qc_tensor x = { .name = "a", .dtype = QC_F32, .ndim = 2, .dims = { m, k },
                    .data = (void *)a };
    qc_exec *e = NULL;
    CHECK_OK(qc_exec_new(&e, &mdl, NULL, &err));
    if (e && qc_exec_run(e, &x, 1, &err) == QC_OK)
        memcpy(y_out, qc_exec_output(e, 0)->data, (size_t)m * n * sizeof *y_out);
    else
        CHECK_OK(err.code);
    qc_exec_free(e);
}

/* one-hot rows: the same bits as sgemm; a few nonzeros a row, and rows that turn dense
 * (the block then goes to sgemm), within float rounding of the exact product; an Inf in B
 * keeps 0 x Inf = NaN (dense path) */
QC_TEST(matmul_sparse_a)
{
    enum { M = 300, N = 40, K = 77 };
    float *a = calloc(M * K, sizeof *a), *b = malloc(K * N * sizeof *b);
    float *y = malloc(M * N * sizeof *y), *want = malloc(M * N * sizeof *want);
    for (int i = 0; i < K * N; i++)
        b[i] = frand();
    for (int i = 0; i < M; i++)
        a[i * K + (i * 7) % K] = i % 5 ? 1.0f : frand();
    run_matmul(a, b, M, N, K, y);
    qc_sgemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, want, N);
    CHECK(memcmp(y, want, M * N * sizeof *y) == 0);
    for (int i = 0; i < M; i++)                 /* 3 a row; rows 200.. dense */
        for (int j = 0; j < K; j++)
            a[i * K + j] = i >= 200 || j % 31 == i % 31 ? frand() : 0.0f;
    run_matmul(a, b, M, N, K, y);
    ref_gemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, want, N);
    int bad = 0;
    for (int i = 0; i < M * N; i++)
        bad += !(fabsf(y[i] - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i]));
    CHECK_INT(bad, 0);
    memset(a, 0, M * K * sizeof *a);
    for (int i = 0; i < M; i++)
        a[i * K + 3] = 1.0f;
    b[5 * N + 2] = INFINITY;                    /* row 5 of B: every y[:, 2] is 0 x Inf */
    run_matmul(a, b, M, N, K, y);
    CHECK(isnan(y[2]) && isnan(y[(M - 1) * N + 2]) && isfinite(y[3]));
    free(a);
    free(b);
    free(y);
    free(want);
}
