/* The pair guard's scale search (src/quant/pairguard.c) gives the same scales with its AVX2
 * loop as with the scalar one (QC_PAIRGUARD_ISA=scalar), on a Conv weight (channels in a row:
 * the AVX2 loop, with a tail) and a MatMul weight (columns strided: the scalar loop both
 * times), per channel and per tensor; and it widens some scales, so the search ran. It only
 * sees the errors through the scales they choose: the AVX2 loop's squared errors scaled by
 * 1.01 fail it, by 1.003 or 1.001 they do not (checked at fdc7169; 4096 channels did not
 * catch 1.001 either), so pairguard_group_error_avx2_bits below compares the errors and codes
 * themselves, bit for bit (a factor of 1.0000001 fails it). */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "quant_priv.h"

/* absmax / 127 of each group (channel `axis` of n_ch, or the whole tensor) */
static void start_scales(const float *w, int64_t n, int64_t inner, int n_ch, float *scale)
{
    float lo[1024] = { 0 }, hi[1024] = { 0 };
    qc_quant_channel_minmax(w, n, inner, n_ch, lo, hi);
    for (int c = 0; c < n_ch; c++)
        scale[c] = (-lo[c] > hi[c] ? -lo[c] : hi[c]) / 127.0f;
}

static void search_both(const qc_model *m, const char *name, const qc_tensor *w, int axis,
                        int n_ch, int64_t inner, int *moved)
{
    float a[1024], b[1024];
    int ma = 0, mb = 0;
    qc_err err = { 0 };
    int64_t n = qc_tensor_numel(w);
    start_scales(w->data, n, inner, n_ch, a);
    start_scales(w->data, n, inner, n_ch, b);
    unsetenv("QC_PAIRGUARD_ISA");
    CHECK_OK(qc_pairguard_scales(m, name, w, axis, n_ch, a, &ma, &err));
    setenv("QC_PAIRGUARD_ISA", "scalar", 1);
    CHECK_OK(qc_pairguard_scales(m, name, w, axis, n_ch, b, &mb, &err));
    unsetenv("QC_PAIRGUARD_ISA");
    CHECK_INT(ma, mb);
    CHECK(memcmp(a, b, (size_t)n_ch * sizeof *a) == 0);
    *moved = ma;
}

QC_TEST(pairguard_avx2_same_scales)
{
    /* Conv weight [1024, 6, 3, 3] (54 a channel: 13 blocks of 4 and a tail of 2) and MatMul
     * weight [24, 16] (channels are columns) */
    enum { CM = 1024, CC = 6, KS = 9, MK = 24, MN = 16 };
    static float wc[CM * CC * KS], wm[MK * MN];
    unsigned seed = 12345;
    for (int i = 0; i < CM * CC * KS + MK * MN; i++) {
        seed = seed * 1103515245u + 12345u;
        float v = (float)((seed >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
        /* mostly large same-sign neighbours, so that many pairs exceed 128 in codes */
        float x = v * v * (v < 0 ? -0.9f : 1.0f) + 0.3f;
        if (i < CM * CC * KS)
            wc[i] = x;
        else
            wm[i - CM * CC * KS] = x;
    }
    const char *conv_in[] = { "x", "wc" }, *mm_in[] = { "x", "wm" }, *outs[] = { "y" };
    qc_node nodes[2] = {
        { "conv", "Conv", "", 2, 1, 0, conv_in, outs, NULL },
        { "mm", "MatMul", "", 2, 1, 0, mm_in, outs, NULL },
    };
    qc_model m;
    memset(&m, 0, sizeof m);
    m.nodes = nodes;
    m.n_nodes = 2;
    qc_tensor tc = { 0 }, tm = { 0 };
    tc.name = "wc", tc.dtype = QC_F32, tc.ndim = 4, tc.data = wc;
    tc.dims[0] = CM, tc.dims[1] = CC, tc.dims[2] = 3, tc.dims[3] = 3;
    tm.name = "wm", tm.dtype = QC_F32, tm.ndim = 2, tm.data = wm;
    tm.dims[0] = MK, tm.dims[1] = MN;
    int moved_c, moved_ct, moved_m, moved_mt;
    search_both(&m, "wc", &tc, 0, CM, CC * KS, &moved_c);
    search_both(&m, "wc", &tc, -1, 1, 1, &moved_ct);
    search_both(&m, "wm", &tm, 1, MN, 1, &moved_m);
    search_both(&m, "wm", &tm, -1, 1, 1, &moved_mt);
    CHECK(moved_c > 0);
    CHECK(moved_m > 0);
}

/* Scales through a shared cache (compare's candidates) are the search's own: on the first
 * request, on a repeat (kept once: the cache does not grow), per tensor beside per channel,
 * and from other start scales (a new search, not the kept one). */
QC_TEST(pairguard_shared_same_scales)
{
    enum { CM = 40, CC = 6, KS = 9 };
    static float wc[CM * CC * KS];
    unsigned seed = 777;
    for (int i = 0; i < CM * CC * KS; i++) {
        seed = seed * 1103515245u + 12345u;
        float v = (float)((seed >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
        wc[i] = v * v * (v < 0 ? -0.9f : 1.0f) + 0.3f;
    }
    const char *conv_in[] = { "x", "wc" }, *outs[] = { "y" };
    qc_node node = { "conv", "Conv", "", 2, 1, 0, conv_in, outs, NULL };
    qc_model m;
    memset(&m, 0, sizeof m);
    m.nodes = &node;
    m.n_nodes = 1;
    qc_tensor tc = { 0 };
    tc.name = "wc", tc.dtype = QC_F32, tc.ndim = 4, tc.data = wc;
    tc.dims[0] = CM, tc.dims[1] = CC, tc.dims[2] = 3, tc.dims[3] = 3;
    qc_err err = { 0 };
    qc_pg_cache *c = NULL;
    CHECK_OK(qc_pg_cache_new(&c, &err));
    if (!c)
        return;
    /* {axis, channels, start factor}: the 4th asks again, the 5th from doubled starts */
    const int cfg[][3] = { { 0, CM, 1 }, { 0, CM, 1 }, { -1, 1, 1 }, { 0, CM, 1 }, { 0, CM, 2 } };
    const int size_after[] = { 1, 1, 2, 2, 3 };
    for (int k = 0; k < 5; k++) {
        int axis = cfg[k][0], n_ch = cfg[k][1], md = -1, ms = -1;
        float direct[CM], shared[CM];
        start_scales(wc, CM * CC * KS, axis < 0 ? 1 : CC * KS, n_ch, direct);
        for (int i = 0; i < n_ch; i++)
            direct[i] *= (float)cfg[k][2], shared[i] = direct[i];
        CHECK_OK(qc_pairguard_scales(&m, "wc", &tc, axis, n_ch, direct, &md, &err));
        CHECK_OK(qc_pairguard_scales_shared(c, &m, "wc", &tc, axis, n_ch, shared, &ms, &err));
        CHECK(memcmp(direct, shared, (size_t)n_ch * sizeof *direct) == 0);
        CHECK_INT(ms, md);
        CHECK_INT(qc_pg_cache_size(c), size_after[k]);
        CHECK(k > 0 || md > 0);     /* the search moved scales: there is something to keep */
    }
    qc_pg_cache_free(c);
}

/* The AVX2 loop gives qc_pairguard_group_error the very bits of the scalar one: errors and
 * codes, for Conv-like groups in a row (starts at every offset mod 4, lengths with tails of
 * 0-3), over scales from below absmax / 127 (codes clipped) to above it, pairs included; and
 * so does the row without an index (idx NULL, from base). */
QC_TEST(pairguard_group_error_avx2_bits)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (!__builtin_cpu_supports("avx2"))
        return;
    enum { N = 4096 };
    static float w[N];
    static int8_t qa[N], qb[N], qc[N];
    static int64_t idx[N];
    unsigned seed = 777;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        float v = (float)((seed >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
        w[i] = v * v * v * 3.0f + 0.2f * v;
    }
    int64_t ij[] = { 0, 1, 2, 3, 10, 11 };
    int checked = 0;
    for (int start = 0; start < 4; start++)
        for (int n = 1; n <= 203; n += 17) {
            float amax = 0;
            for (int k = 0; k < n; k++) {
                idx[k] = start + 16 * n + k;       /* < 3200 */
                float a = w[idx[k]] < 0 ? -w[idx[k]] : w[idx[k]];
                amax = a > amax ? a : amax;
            }
            int64_t pij[6];
            int np = n > 11 ? 3 : 0;
            for (int p = 0; p < 2 * np; p++)
                pij[p] = idx[ij[p]];
            for (double f = 0.5; f <= 2.0; f += 0.125) {
                double sc = amax / 127.0 * f;
                memset(qa, 0, sizeof qa);
                memset(qb, 0, sizeof qb);
                double ea = qc_pairguard_group_error(w, idx, 0, n, pij, np, qa, sc, 1);
                double eb = qc_pairguard_group_error(w, idx, 0, n, pij, np, qb, sc, 0);
                CHECK(memcmp(&ea, &eb, sizeof ea) == 0);
                CHECK(memcmp(qa, qb, sizeof qa) == 0);
                /* the same members as a row from idx[0] (no index), both loops */
                for (int v = 0; v < 2; v++) {
                    memset(qc, 0, sizeof qc);
                    double ec = qc_pairguard_group_error(w, NULL, idx[0], n, pij, np, qc, sc, v);
                    CHECK(memcmp(&ec, &eb, sizeof ec) == 0);
                    CHECK(memcmp(qc, qb, sizeof qc) == 0);
                }
                checked++;
            }
        }
    CHECK(checked == 4 * 12 * 13);
#endif
}

