/* Einsum (opset 12), float32, one or two operands, explicit or implicit output, ellipsis,
 * broadcasting of size-1 dims. Each operand is first gathered into [batch, kept, contracted]
 * order (labels only it has and the output lacks are summed there), then one matrix product
 * per batch index gives [batch, kept A, kept B], which a last gather puts in the output's
 * order. A label repeated within one operand (a diagonal) is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

#define MAX_LABELS 64                   /* 52 letters, then the ellipsis dims */
#define MAX_TERM   (QC_MAX_DIMS)

typedef struct ein {
    int     n_ops;
    int     term[2][MAX_TERM], rank[2];  /* labels of each operand's dims */
    int     out[MAX_TERM], n_out;
    int64_t size[MAX_LABELS];
    int     in_op[MAX_LABELS][2], in_out[MAX_LABELS], used[MAX_LABELS];
} ein;

static int letter(char c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' : c >= 'A' && c <= 'Z' ? 26 + c - 'A' : -1;
}

/* One term ("ij", "...k"): labels into t; the ellipsis stands for e_dims dims, labelled
 * 52.. right-aligned among the n_ell of the widest ellipsis. */
static int parse_term(const qc_knode *n, const char *s, size_t len, int e_dims, int n_ell,
                      int *t, int *nt, qc_err *err)
{
    int k = 0, saw_ell = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ')
            continue;
        if (s[i] == '.') {
            if (saw_ell || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                return qc_node_errf(n, err, QC_EINPUT, "bad ellipsis in equation");
            saw_ell = 1;
            i += 2;
            if (e_dims < 0 || e_dims > n_ell || k + e_dims > MAX_TERM)
                return qc_node_errf(n, err, QC_EINPUT, "ellipsis does not fit the rank");
            for (int j = 0; j < e_dims; j++)
                t[k++] = 52 + n_ell - e_dims + j;
            continue;
        }
        int l = letter(s[i]);
        if (l < 0)
            return qc_node_errf(n, err, QC_EINPUT, "equation has '%c'", s[i]);
        if (k >= MAX_TERM)
            return qc_node_errf(n, err, QC_EINPUT, "equation term longer than %d", MAX_TERM);
        t[k++] = l;
    }
    *nt = k;
    return QC_OK;
}

static int count_letters(const char *s, size_t len)
{
    int c = 0;
    for (size_t i = 0; i < len; i++)
        c += letter(s[i]) >= 0;
    return c;
}

static int ein_parse(const qc_knode *n, ein *e, qc_err *err)
{
    memset(e, 0, sizeof *e);
    const char *eq = qc_attr_str(n->node, "equation", NULL);
    if (!eq)
        return qc_node_errf(n, err, QC_EINPUT, "no equation");
    e->n_ops = n->n_in;
    if (e->n_ops < 1 || e->n_ops > 2)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "%d operands; only 1 or 2 are supported",
                            e->n_ops);
    const char *arrow = strstr(eq, "->"), *lhs_end = arrow ? arrow : eq + strlen(eq);
    const char *comma = memchr(eq, ',', (size_t)(lhs_end - eq));
    if ((comma != NULL) != (e->n_ops == 2) || (comma && memchr(comma + 1, ',',
                                                             (size_t)(lhs_end - comma - 1))))
        return qc_node_errf(n, err, QC_EINPUT, "equation '%s' does not name %d operand%s", eq,
                            e->n_ops, e->n_ops == 1 ? "" : "s");
    const char *ts[2] = { eq, comma ? comma + 1 : NULL };
    size_t tl[2] = { (size_t)((comma ? comma : lhs_end) - eq),
                     comma ? (size_t)(lhs_end - comma - 1) : 0 };
    int n_ell = 0, rc;
    for (int o = 0; o < e->n_ops; o++) {
        const qc_tensor *x = n->in[o];
        if (!x || x->dtype != QC_F32)
            return qc_node_errf(n, err, QC_EUNSUPPORTED, "operand %d must be float32", o);
        int letters = count_letters(ts[o], tl[o]), has_ell = memchr(ts[o], '.', tl[o]) != NULL;
        if (letters > x->ndim || (!has_ell && letters != x->ndim))
            return qc_node_errf(n, err, QC_ESHAPE, "operand %d has rank %d, its term names %d "
                                "dims", o, x->ndim, letters);
        if (has_ell && x->ndim - letters > n_ell)
            n_ell = x->ndim - letters;
    }
    for (int o = 0; o < e->n_ops; o++) {
        int e_dims = n->in[o]->ndim - count_letters(ts[o], tl[o]);
        if ((rc = parse_term(n, ts[o], tl[o], e_dims, n_ell, e->term[o], &e->rank[o],
                             err)) != QC_OK)
            return rc;
        if (e->rank[o] != n->in[o]->ndim)
            return qc_node_errf(n, err, QC_ESHAPE, "operand %d: the term names %d dims, the "
                                "tensor has %d", o, e->rank[o], n->in[o]->ndim);
        for (int d = 0; d < e->rank[o]; d++) {
            int l = e->term[o][d];
            int64_t sz = n->in[o]->dims[d];
            if (e->in_op[l][o])
                return qc_node_errf(n, err, QC_EUNSUPPORTED, "a label repeated within one "
                                    "operand (a diagonal) is not supported");
            e->in_op[l][o] = 1;
            if (e->used[l] && e->size[l] != sz && e->size[l] != 1 && sz != 1)
                return qc_node_errf(n, err, QC_ESHAPE, "label sizes %lld and %lld do not "
                                    "broadcast", (long long)e->size[l], (long long)sz);
            if (!e->used[l] || e->size[l] == 1)
                e->size[l] = sz;
            e->used[l] = 1;
        }
    }
    if (arrow) {
        const char *r = arrow + 2;
        if ((rc = parse_term(n, r, strlen(r), n_ell, n_ell, e->out, &e->n_out, err)) != QC_OK)
            return rc;
        for (int i = 0; i < e->n_out; i++) {
            int l = e->out[i];
            if (!e->used[l] || e->in_out[l])
                return qc_node_errf(n, err, QC_EINPUT, "output label %s",
                                    e->used[l] ? "repeated" : "not in any operand");
            e->in_out[l] = 1;
        }
    } else {                            /* ellipsis dims, then letters used once, a..Z */
        for (int l = 52; l < 52 + n_ell; l++)
            e->out[e->n_out++] = l, e->in_out[l] = 1;
        for (int l = 0; l < 52; l++)
            if (e->used[l] && e->in_op[l][0] + e->in_op[l][1] == 1 && e->n_out < MAX_TERM)
                e->out[e->n_out++] = l, e->in_out[l] = 1;
    }
    return QC_OK;
}

static int einsum_infer(qc_knode *n, qc_err *err)
{
    ein e;
    int rc = ein_parse(n, &e, err);
    if (rc != QC_OK)
        return rc;
    int64_t dims[QC_MAX_DIMS];
    for (int i = 0; i < e.n_out; i++)
        dims[i] = e.size[e.out[i]];
    qc_set_shape(n->out[0], QC_F32, e.n_out, dims);
    return QC_OK;
}

/* dst[index over labels dl] = sum over labels sl of src; src strides per label in str (0
 * for a broadcast or absent label). */
static void gather_sum(float *dst, const float *src, const ein *e, const int *dl, int ndl,
                       const int *sl, int nsl, const int64_t *str)
{
    int64_t di[3 * MAX_TERM] = { 0 }, total = 1, inner = 1;
    for (int i = 0; i < ndl; i++)
        total *= e->size[dl[i]];
    for (int i = 0; i < nsl; i++)
        inner *= e->size[sl[i]];
    for (int64_t o = 0; o < total; o++) {
        int64_t base = 0;
        for (int i = 0; i < ndl; i++)
            base += di[i] * str[dl[i]];
        float acc = 0.0f;
        int64_t si[MAX_TERM] = { 0 };
        for (int64_t k = 0; k < inner; k++) {
            int64_t off = base;
            for (int i = 0; i < nsl; i++)
                off += si[i] * str[sl[i]];
            acc += src[off];
            for (int i = nsl - 1; i >= 0 && ++si[i] == e->size[sl[i]]; i--)
                si[i] = 0;
        }
        dst[o] = acc;
        for (int i = ndl - 1; i >= 0 && ++di[i] == e->size[dl[i]]; i--)
            di[i] = 0;
    }
}

static void strides_of(const ein *e, const qc_tensor *x, int o, int64_t *str)
{
    int64_t s = 1;
    memset(str, 0, MAX_LABELS * sizeof *str);
    for (int d = e->rank[o] - 1; d >= 0; d--) {
        int l = e->term[o][d];
        str[l] = x->dims[d] == 1 && e->size[l] != 1 ? 0 : s;
        s *= x->dims[d];
    }
}

/* dst = a, b, c one after the other; returns the length. */
static int cat3(int *dst, const int *a, int na, const int *b, int nb, const int *c, int nc)
{
    memcpy(dst, a, (size_t)na * sizeof *dst);
    memcpy(dst + na, b, (size_t)nb * sizeof *dst);
    memcpy(dst + na + nb, c, (size_t)nc * sizeof *dst);
    return na + nb + nc;
}

static int einsum_run(qc_knode *n, qc_run *r, qc_err *err)
{
    ein e;
    int rc = ein_parse(n, &e, err);
    if (rc != QC_OK)
        return rc;
    int64_t str[2][MAX_LABELS];
    for (int o = 0; o < e.n_ops; o++)
        strides_of(&e, n->in[o], o, str[o]);
    float *y = n->out[0]->data;
    if (e.n_ops == 1) {
        int sl[MAX_TERM], nsl = 0;
        for (int d = 0; d < e.rank[0]; d++)
            if (!e.in_out[e.term[0][d]])
                sl[nsl++] = e.term[0][d];
        gather_sum(y, n->in[0]->data, &e, e.out, e.n_out, sl, nsl, str[0]);
        return QC_OK;
    }
    /* labels by role, in output order for the kept ones */
    int bl[MAX_TERM], al[MAX_TERM], cl[MAX_TERM], brl[MAX_TERM], s0[MAX_TERM], s1[MAX_TERM];
    int nb = 0, na = 0, nc = 0, nbr = 0, ns0 = 0, ns1 = 0;
    int64_t M = 1, N = 1, K = 1, NB = 1;
    for (int i = 0; i < e.n_out; i++) {
        int l = e.out[i];
        if (e.in_op[l][0] && e.in_op[l][1])
            bl[nb++] = l, NB *= e.size[l];
        else if (e.in_op[l][0])
            al[na++] = l, M *= e.size[l];
        else
            brl[nbr++] = l, N *= e.size[l];
    }
    for (int l = 0; l < MAX_LABELS; l++) {
        if (!e.used[l] || e.in_out[l])
            continue;
        if (e.in_op[l][0] && e.in_op[l][1])
            cl[nc++] = l, K *= e.size[l];
        else if (e.in_op[l][0])
            s0[ns0++] = l;
        else
            s1[ns1++] = l;
    }
    /* broadcast labels take their size from the other operand: bound the products */
    if ((double)NB * M * K + (double)NB * K * N + (double)NB * M * N > (double)(1LL << 36))
        return qc_node_errf(n, err, QC_ENOMEM, "intermediate products of %.3g values: too "
                            "large", (double)NB * M * K + (double)NB * K * N +
                            (double)NB * M * N);
    size_t fa = (size_t)(NB * M * K), fb = (size_t)(NB * K * N), fc = (size_t)(NB * M * N);
    float *s = qc_run_scratch(r, (fa + fb + fc) * sizeof(float), err);
    if (!s)
        return err && err->code ? err->code : QC_ENOMEM;
    float *A = s, *Bm = A + fa, *C = Bm + fb;
    int la[3 * MAX_TERM], lb[3 * MAX_TERM], lc[3 * MAX_TERM], k;
    k = cat3(la, bl, nb, al, na, cl, nc);
    gather_sum(A, n->in[0]->data, &e, la, k, s0, ns0, str[0]);
    k = cat3(lb, bl, nb, cl, nc, brl, nbr);
    gather_sum(Bm, n->in[1]->data, &e, lb, k, s1, ns1, str[1]);
    if (K == 0)
        memset(C, 0, fc * sizeof *C);
    for (int64_t b = 0; K > 0 && b < NB; b++)
        qc_sgemm(0, 0, M, N, K, 1.0f, A + b * M * K, K, Bm + b * K * N, N, 0.0f, C + b * M * N, N);
    /* C is [batch, kept A, kept B]: its strides by label, then the output's order */
    int64_t cs[MAX_LABELS] = { 0 }, st = 1;
    k = cat3(lc, bl, nb, al, na, brl, nbr);
    for (int i = k - 1; i >= 0; i--) {
        cs[lc[i]] = st;
        st *= e.size[lc[i]];
    }
    gather_sum(y, C, &e, e.out, e.n_out, NULL, 0, cs);
    return QC_OK;
}

const qc_op_def qc_ops_einsum[] = {
    { "Einsum", 12, einsum_infer, einsum_run, NULL, NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL, NULL },
};
