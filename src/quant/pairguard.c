/* Pair guard: int8 weights that onnxruntime's x86 integer kernels without VNNI compute exactly.
 * Those kernels (U8S8: uint8 activations, int8 weights) multiply with VPMADDUBSW, which adds
 * the products of two neighbouring reduction values into a signed 16-bit lane with saturation:
 * a * w + a' * w' with codes a, a' up to 255 saturates when w and w' have the same sign and
 * |w| + |w'| > 128. Measured on an AVX2 machine (onnxruntime 1.32, ddddocr, percentile,
 * per-channel): output SQNR 20.6 dB with the graph optimizations off (float QDQ), 15.0 dB with
 * the integer kernels. --reduce-range avoids it by halving every weight range (-3 dB there).
 *
 * Here each pair of weights that such a kernel adds together keeps |w| + |w'| <= 128 in codes:
 * where a pair exceeds it, the two codes move toward zero (the larger one by the larger half of
 * the excess), and each scale group (a channel, or the whole tensor per-tensor) takes the scale
 * between absmax / 127 and the scale at which no pair exceeds that gives the smallest squared
 * weight error, codes moved included. Pairs are neighbours in onnxruntime's reduction order:
 * Conv (NHWC): input channels c, c + 1 (c even) at one kernel position, and, with an odd
 * channel count, neighbours of the (kh, kw, c) order too; MatMul / Gemm: rows k, k + 1 (k even)
 * of B. Other readers add no pairs. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "quant_priv.h"

#define CODE_MAX   127
#define PAIR_MAX   128
#define CANDIDATES 24

typedef struct pair_list {
    int64_t *ij;                /* 2 flat indices a pair */
    int64_t  n, cap;
} pair_list;

static int add_pair(pair_list *p, int64_t i, int64_t j)
{
    if (p->n == p->cap) {
        int64_t cap = p->cap ? 2 * p->cap : 1024;
        int64_t *ij = realloc(p->ij, (size_t)cap * 2 * sizeof *ij);
        if (!ij)
            return QC_ENOMEM;
        p->ij = ij, p->cap = cap;
    }
    p->ij[2 * p->n] = i, p->ij[2 * p->n + 1] = j;
    p->n++;
    return QC_OK;
}

/* Moves the codes of same-sign pairs over PAIR_MAX toward zero (only ever smaller
 * magnitudes, so a pair fixed stays fixed whatever other pair shares a value); 1 if it did. */
static inline int fix_pair(int8_t *q, int64_t i, int64_t j)
{
    int a = q[i], b = q[j];
    /* over PAIR_MAX needs both codes nonzero (each is at most CODE_MAX), so the sign test is
     * one bit test, and comes second: most pairs are within PAIR_MAX, while which pairs have
     * one sign is a coin flip a branch mispredicts half the time */
    if (abs(a) + abs(b) <= PAIR_MAX || (a ^ b) < 0)
        return 0;
    int e = abs(a) + abs(b) - PAIR_MAX, big = (e + 1) / 2, small = e / 2;
    int da = abs(a) >= abs(b) ? big : small, db = e - da;
    q[i] = (int8_t)(a > 0 ? a - da : a + da);
    q[j] = (int8_t)(b > 0 ? b - db : b + db);
    return 1;
}

/* Where pairs go as they are found: appended to a list, or (q not NULL) fixed in the codes q
 * right away, in the same order, so without the list's 16 bytes a pair. */
typedef struct pair_sink {
    pair_list *list;
    int8_t    *q;
} pair_sink;

static inline int put_pair(pair_sink *s, int64_t i, int64_t j)
{
    if (s->q) {
        fix_pair(s->q, i, j);
        return QC_OK;
    }
    return add_pair(s->list, i, j);
}

/* The pairs of a Conv weight [M, Cg, spatial...]. */
static int conv_pairs(const qc_tensor *w, pair_sink *p)
{
    int64_t m = w->dims[0], cg = w->dims[1], sp = 1, rc = QC_OK;
    for (int d = 2; d < w->ndim; d++)
        sp *= w->dims[d];
    for (int64_t o = 0; o < m && rc == QC_OK; o++) {
        int64_t base = o * cg * sp;
        for (int64_t s = 0; s < sp && rc == QC_OK; s++)
            for (int64_t c = 0; c + 1 < cg && rc == QC_OK; c += 2)
                rc = put_pair(p, base + c * sp + s, base + (c + 1) * sp + s);
        for (int64_t k = 0; cg % 2 && k + 1 < cg * sp && rc == QC_OK; k += 2)
            rc = put_pair(p, base + (k % cg) * sp + k / cg, base + ((k + 1) % cg) * sp +
                          (k + 1) / cg);
    }
    return (int)rc;
}

/* B of a product, rows k, k + 1 for every column; transposed: B is [N, K]. */
static int matmul_pairs(const qc_tensor *w, int trans, pair_sink *p)
{
    int64_t rows = trans ? w->dims[1] : w->dims[0], cols = trans ? w->dims[0] : w->dims[1];
    int rc = QC_OK;
    for (int64_t k = 0; k + 1 < rows && rc == QC_OK; k += 2)
        for (int64_t n = 0; n < cols && rc == QC_OK; n++)
            rc = trans ? put_pair(p, n * rows + k, n * rows + k + 1)
                       : put_pair(p, k * cols + n, (k + 1) * cols + n);
    return rc;
}

static int collect_pairs(const qc_model *m, const char *name, const qc_tensor *w, pair_sink *p)
{
    int rc = QC_OK;
    for (int i = 0; i < m->n_nodes && rc == QC_OK; i++) {
        const qc_node *n = &m->nodes[i];
        if (n->domain[0] || n->n_inputs < 2 || strcmp(n->inputs[1], name))
            continue;
        if (!strcmp(n->op_type, "Conv") && w->ndim >= 3)
            rc = conv_pairs(w, p);
        else if (!strcmp(n->op_type, "MatMul") && w->ndim == 2)
            rc = matmul_pairs(w, 0, p);
        else if (!strcmp(n->op_type, "Gemm") && w->ndim == 2)
            rc = matmul_pairs(w, (int)qc_attr_int(n, "transB", 0), p);
    }
    return rc;
}

/* The code of w at scale 1 / inv: w * inv rounded to the nearest, ties to even (nearbyint in
 * the default rounding mode; a libm call on baseline x86-64), clipped to +-CODE_MAX. Inline by
 * the 1.5 * 2^52 trick, exact for |x| < 2^51; beyond, the sum keeps x's sign and a magnitude
 * over CODE_MAX, and infinities and NaN pass through, so after the clip every x gets
 * nearbyint's code (x is at most CODE_MAX in magnitude anyway: a candidate scale is never
 * below absmax / CODE_MAX). No branch; run_avx2 below does the same with max / min. */
static inline double code_of(float w, double inv)
{
    const double magic = 6755399441055744.0;        /* 1.5 * 2^52 */
    double c = (w * inv + magic) - magic;           /* kept as written without -ffast-math */
    return c < -CODE_MAX ? -CODE_MAX : c > CODE_MAX ? CODE_MAX : c;
}

static inline double sq(double d)
{
    return d * d;
}

/* qc_pairguard_group_error's first loop over members in a row, with AVX2: the four running
 * sums are the lanes, each value's operations those of code_of and sq in their order (no
 * FMA), so the same sums; max / min give code_of's clip, NaN included. Returns the members
 * done. On the AMD EPYC, calibrate's fixed cost on nudenet (--limit 2 --no-bias-correction,
 * mostly this search) went from 0.40-0.57 to 0.32-0.34 s of CPU (six and three runs).
 * have_avx2: the CPU has it and QC_PAIRGUARD_ISA is not "scalar" (test_pairguard.c compares
 * the two, and the errors themselves bit for bit). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
static int have_avx2(void)
{
    const char *e = getenv("QC_PAIRGUARD_ISA");
    return __builtin_cpu_supports("avx2") && !(e && !strcmp(e, "scalar"));
}

static __attribute__((target("avx2"))) int64_t run_avx2(const float *w, int8_t *q, int64_t n,
                                                        double s, double inv, double *e)
{
    const __m256d vinv = _mm256_set1_pd(inv), vs = _mm256_set1_pd(s);
    const __m256d magic = _mm256_set1_pd(6755399441055744.0);
    const __m256d lo = _mm256_set1_pd(-CODE_MAX), hi = _mm256_set1_pd(CODE_MAX);
    __m256d acc = _mm256_loadu_pd(e);
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(w + k));
        __m256d c = _mm256_sub_pd(_mm256_add_pd(_mm256_mul_pd(v, vinv), magic), magic);
        c = _mm256_min_pd(hi, _mm256_max_pd(lo, c));
        __m128i ci = _mm256_cvttpd_epi32(c);
        int32_t b = _mm_cvtsi128_si32(_mm_packs_epi16(_mm_packs_epi32(ci, ci), ci));
        memcpy(q + k, &b, 4);
        __m256d d = _mm256_sub_pd(v, _mm256_mul_pd(vs, c));
        acc = _mm256_add_pd(acc, _mm256_mul_pd(d, d));
    }
    _mm256_storeu_pd(e, acc);
    return k;
}
#else
static int have_avx2(void)
{
    return 0;
}

static int64_t run_avx2(const float *w, int8_t *q, int64_t n, double s, double inv, double *e)
{
    (void)w, (void)q, (void)n, (void)s, (void)inv, (void)e;
    return 0;
}
#endif

/* quant_priv.h (exposed for test_pairguard.c). Squared error of scale group members (flat
 * indices idx[0, n), or with idx NULL base .. base + n - 1) at scale s, codes fixed.
 * The codes by a multiplication (the search only ranks candidate scales; qdq.c writes the
 * chosen one's codes by QuantizeLinear's division, and fixes them the same way). The error of
 * the rounded codes in four running sums (one would be a chain of dependent additions), then
 * each pair fix replaces its two values' terms. */
double qc_pairguard_group_error(const float *w, const int64_t *idx, int64_t base, int64_t n,
                                const int64_t *ij, int64_t n_pairs, int8_t *q, double s,
                                int avx2)
{
    double inv = 1.0 / s, e[4] = { 0, 0, 0, 0 };
    int64_t k = 0;
    if (avx2 && n > 0 && (!idx || idx[n - 1] - idx[0] == n - 1)) {
        /* the members in a row (a Conv channel; idx ascends) */
        int64_t first = idx ? idx[0] : base;
        k = run_avx2(w + first, q + first, n, s, inv, e);
    } else {
        for (; k + 4 <= n; k += 4)
            for (int u = 0; u < 4; u++) {
                int64_t at = idx ? idx[k + u] : base + k + u;
                float v = w[at];
                double c = code_of(v, inv);
                q[at] = (int8_t)c;
                e[u] += sq(v - s * c);
            }
    }
    for (; k < n; k++) {
        int64_t at = idx ? idx[k] : base + k;
        double c = code_of(w[at], inv);
        q[at] = (int8_t)c;
        e[0] += sq(w[at] - s * c);
    }
    double fix = 0;
    for (int64_t p = 0; p < n_pairs; p++) {
        int64_t i = ij[2 * p], j = ij[2 * p + 1];
        int a = q[i], b = q[j];
        if (fix_pair(q, i, j))
            fix += sq(w[i] - s * q[i]) + sq(w[j] - s * q[j]) - sq(w[i] - s * a) - sq(w[j] - s * b);
    }
    return (e[0] + e[1]) + (e[2] + e[3]) + fix;
}

/* The scale group of flat index i: its channel (inner values a channel run, n_ch channels),
 * or 0 with one group. Both values of a pair are in one output channel, so in one group. */
static inline int64_t group_of(int64_t i, int64_t inner, int n_ch)
{
    return n_ch <= 1 ? 0 : (i / inner) % n_ch;
}

/* The pairs (two flat indices each, *ij malloc'd, NULL when none) of weight `name` of m that
 * onnxruntime's kernels add in 16 bits, by the nodes reading it. */
static int pairs_of(const qc_model *m, const char *name, const qc_tensor *w, int64_t **ij,
                    int64_t *n_pairs, qc_err *err)
{
    pair_list p = { NULL, 0, 0 };
    pair_sink sink = { &p, NULL };
    *ij = NULL;
    *n_pairs = 0;
    if (w->dtype != QC_F32 || collect_pairs(m, name, w, &sink) != QC_OK) {
        free(p.ij);
        return w->dtype != QC_F32 ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
    }
    *ij = p.ij;
    *n_pairs = p.n;
    return QC_OK;
}

void qc_pairguard_fix_weight(const qc_model *m, const char *name, const qc_tensor *w, int8_t *q)
{
    pair_sink sink = { NULL, q };
    if (w->dtype == QC_F32)
        collect_pairs(m, name, w, &sink);   /* fixing allocates nothing: cannot fail */
}

int qc_pairguard_scales(const qc_model *m, const char *name, const qc_tensor *w, int axis,
                        int n_ch, float *scale, int *n_moved, qc_err *err)
{
    int64_t *ij = NULL, n_pairs = 0, n = qc_tensor_numel(w);
    int rc = pairs_of(m, name, w, &ij, &n_pairs, err);
    *n_moved = 0;
    if (rc != QC_OK || n_pairs == 0) {
        free(ij);
        return rc;
    }
    int groups = axis >= 0 ? n_ch : 1;
    int64_t inner = 1;
    for (int d = axis + 1; axis >= 0 && d < w->ndim; d++)
        inner *= w->dims[d];
    int64_t *start = calloc((size_t)groups + 1, sizeof *start);
    int64_t *pstart = calloc((size_t)groups + 1, sizeof *pstart);
    int64_t *idx = NULL, *pij = NULL;
    int8_t *q = malloc((size_t)n);
    if (!start || !pstart || !q) {
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
        goto out;
    }
    /* members and pairs of each group; pairs in group order as found (a Conv's, by output
     * channel) and members in a row (one group, or channels on axis 0: inner values each)
     * need no index, else a counting sort makes them. In a row, group g is the values
     * g * inner .. (g + 1) * inner - 1 (all n with one group), so a value's or a pair's group
     * needs no division (those 64-bit divisions were over a third of this function's own
     * time on nudenet: perf annotate) */
    int in_order = 1, rows = groups == 1 || (axis == 0 && n_ch == w->dims[0]);
    int64_t g_len = groups == 1 ? n : inner;
    for (int64_t i = 0; rows && i < n; i += g_len)
        start[i / g_len + 1] = n - i < g_len ? n - i : g_len;
    for (int64_t i = 0; !rows && i < n; i++)
        start[group_of(i, inner, groups) + 1]++;
    for (int64_t k = 0, prev = 0, lo = 0, hi = g_len; k < n_pairs; k++) {
        int64_t at = ij[2 * k], g = prev;       /* mostly the group of the pair before */
        if (!rows || at < lo || at >= hi) {
            g = group_of(at, inner, groups);
            lo = g * g_len, hi = lo + g_len;
        }
        pstart[g + 1]++;
        in_order &= g >= prev;
        prev = g;
    }
    for (int g = 0; g < groups; g++)
        start[g + 1] += start[g], pstart[g + 1] += pstart[g];
    if (!rows && !(idx = malloc((size_t)n * sizeof *idx)))
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
    if (rc == QC_OK && !in_order && !(pij = malloc((size_t)n_pairs * 2 * sizeof *pij)))
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
    if (rc == QC_OK && (idx || pij)) {
        int64_t *fill = calloc((size_t)groups + 1, sizeof *fill);
        if (!fill) {
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
            goto out;
        }
        for (int64_t i = 0; idx && i < n; i++) {
            int64_t g = group_of(i, inner, groups);
            idx[start[g] + fill[g]++] = i;
        }
        memset(fill, 0, ((size_t)groups + 1) * sizeof *fill);
        for (int64_t k = 0; pij && k < n_pairs; k++) {
            int64_t g = group_of(ij[2 * k], inner, groups), at = pstart[g] + fill[g]++;
            pij[2 * at] = ij[2 * k], pij[2 * at + 1] = ij[2 * k + 1];
        }
        free(fill);
    }
    if (rc != QC_OK)
        goto out;
    const float *wd = w->data;
    const int64_t *pairs = pij ? pij : ij;
    int avx2 = have_avx2();
    for (int g = 0; g < groups; g++) {
        const int64_t *gi = idx ? idx + start[g] : NULL, *gp = pairs + 2 * pstart[g];
        int64_t gn = start[g + 1] - start[g], gpn = pstart[g + 1] - pstart[g];
        double s0 = scale[g], s_free = s0;
        for (int64_t k = 0; k < gpn; k++) {
            /* without branches: which pairs have one sign is a coin flip (weights are
             * finite here: qc_quant_channel_minmax rejected NaN / Inf before) */
            float a = wd[gp[2 * k]], b = wd[gp[2 * k + 1]];
            int same = ((a > 0) & (b > 0)) | ((a < 0) & (b < 0));
            double v = same ? (fabs(a) + fabs(b)) / PAIR_MAX : 0;
            s_free = v > s_free ? v : s_free;
        }
        if (!(s0 > 0) || gpn == 0)
            continue;
        double best_s = s0;
        double best_e = qc_pairguard_group_error(wd, gi, start[g], gn, gp, gpn, q, s0, avx2);
        for (int c = 1; s_free > s0 && c <= CANDIDATES; c++) {
            double s = (float)(s0 * pow(s_free / s0, (double)c / CANDIDATES)); /* as stored */
            double e = qc_pairguard_group_error(wd, gi, start[g], gn, gp, gpn, q, s, avx2);
            if (e < best_e)
                best_e = e, best_s = s;
        }
        *n_moved += best_s != s0;
        scale[g] = (float)best_s;
    }
out:
    free(start);
    free(pstart);
    free(idx);
    free(pij);
    free(q);
    free(ij);
    return rc;
}

/* ---- Shared results: one search per weight, axis and start scales for many quantizers ---- */

typedef struct pg_entry {
    const qc_model  *m;
    const qc_tensor *w;
    int              axis, n_ch, moved;
    float           *in, *out;      /* start scales, guarded scales: n_ch each */
} pg_entry;

struct qc_pg_cache {
    pthread_mutex_t mu;
    pg_entry       *e;
    int             n, cap;
};

int qc_pg_cache_new(qc_pg_cache **out, qc_err *err)
{
    qc_pg_cache *c = calloc(1, sizeof *c);
    if (!c || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    *out = c;
    return QC_OK;
}

void qc_pg_cache_free(qc_pg_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        free(c->e[i].in);           /* out lives in the same block */
    free(c->e);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int qc_pg_cache_size(qc_pg_cache *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static const pg_entry *pg_find(const qc_pg_cache *c, const qc_model *m, const qc_tensor *w,
                               int axis, int n_ch, const float *scale)
{
    for (int i = 0; i < c->n; i++) {
        const pg_entry *e = &c->e[i];
        if (e->m == m && e->w == w && e->axis == axis && e->n_ch == n_ch &&
            !memcmp(e->in, scale, (size_t)n_ch * sizeof *scale))
            return e;
    }
    return NULL;
}

int qc_pairguard_scales_shared(qc_pg_cache *c, const qc_model *m, const char *name,
                               const qc_tensor *w, int axis, int n_ch, float *scale,
                               int *n_moved, qc_err *err)
{
    if (!c || n_ch < 1)
        return qc_pairguard_scales(m, name, w, axis, n_ch, scale, n_moved, err);
    size_t nb = (size_t)n_ch * sizeof *scale;
    pthread_mutex_lock(&c->mu);
    const pg_entry *hit = pg_find(c, m, w, axis, n_ch, scale);
    if (hit) {
        memcpy(scale, hit->out, nb);
        *n_moved = hit->moved;
    }
    pthread_mutex_unlock(&c->mu);
    if (hit)
        return QC_OK;
    /* searched outside the lock (weights are searched side by side); two quantizers asking
     * at once both search and get the same scales, the first one's are kept */
    float *in = malloc(2 * nb);
    if (in)
        memcpy(in, scale, nb);
    int rc = qc_pairguard_scales(m, name, w, axis, n_ch, scale, n_moved, err);
    if (rc != QC_OK || !in) {
        free(in);
        return rc;                  /* no memory to keep it: only the sharing is lost */
    }
    memcpy(in + n_ch, scale, nb);
    pthread_mutex_lock(&c->mu);
    int keep = !pg_find(c, m, w, axis, n_ch, in);
    if (keep && c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        pg_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (e)
            c->e = e, c->cap = cap;
        keep = e != NULL;
    }
    if (keep)
        c->e[c->n++] = (pg_entry){ m, w, axis, n_ch, *n_moved, in, in + n_ch };
    pthread_mutex_unlock(&c->mu);
    if (!keep)
        free(in);
    return QC_OK;
}
