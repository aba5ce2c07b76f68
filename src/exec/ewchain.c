/* Elementwise chains (qc_exec_opts.fuse): the elementwise nodes computed from one value (the
 * head) and scalar constants alone, whose values nobody else reads but the last one (a tanh
 * GELU exported as nine Mul/Add/Tanh nodes: 0.5 x (1 + tanh(0.79788 (x + 0.044715 x^3)))),
 * run as one step. The step runs the members' own kernels, in order, on chunks of CHUNK
 * values, so a chunk's intermediate values stay in the core's cache instead of one tensor
 * per node going through memory; chunks run in parallel. Each member's kernel computes the
 * same arithmetic whatever the length (vector bodies and tails alike, test_qdq_fuse.c), and
 * the value at one index depends on the values at that index only: the same bits as the
 * nodes run one by one. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ops_ew.h"
#include "par.h"
#include "qfuse.h"

#define CHUNK 2048                  /* values: a member's chunk is 8 KiB */
#define CHUNKS_PER_TASK 8           /* 16384 values a task, the elementwise kernels' grain */
#define MAX_MEMBERS 32

typedef struct ew_chain {
    int               n;            /* members, in plan order; the last one writes the exit */
    qc_knode         *k;            /* the members' knodes (the last one's in[] owned here) */
    const qc_op_def **defs;
    int              *src;          /* src[i * 3 + p], member i's input p: -1 its own (a
                                     * scalar constant or none), 0 the head, j + 1 member j */
    qc_tensor        *full;         /* the run's shapes: [0] the head, [i + 1] member i */
    int               chunked;      /* this run's shapes allow chunks (float, same count) */
    int               silu;         /* Sigmoid(head), then Mul of the two: one kernel for
                                     * both (qc_ew_silu), the same bits */
} ew_chain;

/* Knode i's inputs mapped onto the tensors t[0..n] (the head and the members' values). */
static qc_knode member(const ew_chain *c, int i, qc_tensor *t, qc_tensor **ins,
                       qc_tensor **outs)
{
    qc_knode k = c->k[i];
    for (int p = 0; p < k.n_in && p < 3; p++)
        ins[p] = c->src[i * 3 + p] < 0 ? k.in[p] : &t[c->src[i * 3 + p]];
    outs[0] = &t[i + 1];
    k.in = ins;
    k.out = outs;
    return k;
}

static int chain_infer(qc_knode *kn, qc_err *err)
{
    ew_chain *c = kn->state;
    const qc_tensor *h = kn->in[0];
    int64_t numel = qc_tensor_numel(h);
    c->full[0] = *h;
    c->chunked = h->dtype == QC_F32;
    for (int i = 0; i < c->n; i++) {
        qc_tensor *ins[3], *outs[1];
        qc_knode k = member(c, i, c->full, ins, outs);
        int rc = c->defs[i]->infer(&k, err);
        if (rc != QC_OK)
            return rc;
        c->chunked &= c->full[i + 1].dtype == QC_F32 && qc_tensor_numel(&c->full[i + 1]) == numel;
    }
    qc_copy_shape(kn->out[0], &c->full[c->n]);
    return QC_OK;
}

/* Shapes the chunks do not allow: the members one by one on whole tensors. */
static int run_whole(ew_chain *c, qc_knode *kn, qc_run *r, qc_err *err)
{
    qc_tensor *t = c->full;
    int rc = QC_OK;
    t[0].data = kn->in[0]->data;
    for (int i = 1; i <= c->n; i++)
        t[i].data = NULL;
    for (int i = 0; i < c->n && rc == QC_OK; i++) {
        qc_tensor *ins[3], *outs[1];
        qc_knode k = member(c, i, t, ins, outs);
        if ((rc = c->defs[i]->infer(&k, err)) != QC_OK)
            break;
        if (i == c->n - 1)
            t[i + 1].data = kn->out[0]->data;
        else if ((rc = qc_tensor_alloc(&t[i + 1], t[i + 1].dtype, t[i + 1].ndim, t[i + 1].dims,
                                       err)) != QC_OK)
            break;
        rc = c->defs[i]->run(&k, r, err);
    }
    for (int i = 1; i < c->n; i++)
        qc_tensor_free(&t[i]);
    t[c->n].data = NULL;
    return rc;
}

typedef struct chunk_job {
    ew_chain       *c;
    const float    *head;
    float          *out;
    int64_t         numel;
    qc_run         *r;
    pthread_mutex_t mu;
    int             rc;             /* the first error's code (err holds it) */
    int64_t         rc_at;          /* ... and its chunk */
    qc_err         *err;
} chunk_job;

static void run_chunks(void *ctx, int64_t lo, int64_t hi)
{
    chunk_job *j = ctx;
    ew_chain *c = j->c;
    qc_tensor t[MAX_MEMBERS + 1];
    qc_err err = { 0 };
    int rc = QC_OK;
    int64_t at = lo;
    float *buf = malloc((size_t)c->n * CHUNK * sizeof *buf);
    if (!buf)
        rc = qc_errf(&err, QC_ENOMEM, "out of memory");
    for (int64_t ch = lo * CHUNKS_PER_TASK; rc == QC_OK && ch < hi * CHUNKS_PER_TASK; ch++) {
        int64_t off = ch * CHUNK, len = j->numel - off < CHUNK ? j->numel - off : CHUNK;
        if (len <= 0)
            break;
        at = ch;
        memset(t, 0, (size_t)(c->n + 1) * sizeof *t);
        qc_set_shape(&t[0], QC_F32, 1, &len);
        t[0].data = (void *)(j->head + off);
        for (int i = 0; i < c->n && rc == QC_OK; i++) {
            qc_tensor *ins[3], *outs[1];
            qc_knode k = member(c, i, t, ins, outs);
            if ((rc = c->defs[i]->infer(&k, &err)) != QC_OK)
                break;
            t[i + 1].data = i == c->n - 1 ? (void *)(j->out + off) : (void *)(buf + i * CHUNK);
            rc = c->defs[i]->run(&k, j->r, &err);
        }
    }
    free(buf);
    if (rc != QC_OK) {
        pthread_mutex_lock(&j->mu);
        if (j->rc == QC_OK || at < j->rc_at) {
            j->rc = rc, j->rc_at = at;
            *j->err = err;
        }
        pthread_mutex_unlock(&j->mu);
    }
}

/* A SiLU chain's tasks: one kernel for both nodes; a task with a NaN runs them instead */
static void silu_tasks(void *ctx, int64_t lo, int64_t hi)
{
    chunk_job *j = ctx;
    int64_t per = (int64_t)CHUNK * CHUNKS_PER_TASK;
    for (int64_t t = lo; t < hi; t++) {
        int64_t a = t * per, n = j->numel - a < per ? j->numel - a : per;
        if (qc_ew_silu(j->head + a, j->out + a, n))
            run_chunks(j, t, t + 1);
    }
}

static int chain_run(qc_knode *kn, qc_run *r, qc_err *err)
{
    ew_chain *c = kn->state;
    if (!c->chunked)
        return run_whole(c, kn, r, err);
    chunk_job j = { .c = c, .head = kn->in[0]->data, .out = kn->out[0]->data,
                    .numel = qc_tensor_numel(kn->in[0]), .r = r, .rc = QC_OK, .err = err };
    int64_t per = (int64_t)CHUNK * CHUNKS_PER_TASK;
    pthread_mutex_init(&j.mu, NULL);
    /* (the fallback re-reads the head: not when the output overwrote it) */
    int silu = c->silu && j.out != j.head;
    qc_par_for((j.numel + per - 1) / per, 1, silu ? silu_tasks : run_chunks, &j);
    pthread_mutex_destroy(&j.mu);
    return j.rc;
}

static void chain_release(qc_knode *kn)
{
    ew_chain *c = kn->state;
    if (!c)
        return;
    qc_knode *last = &c->k[c->n - 1];
    if (c->defs[c->n - 1]->release)
        c->defs[c->n - 1]->release(last);
    free(last->in);
    free(c->k);
    free(c->defs);
    free(c->src);
    free(c->full);
    free(c);
    kn->state = NULL;
}

static const qc_op_def ew_chain_def = { "ElementwiseChain", 1, chain_infer, chain_run, NULL,
                                        chain_release, NULL };

static int plain(const qc_exec *x, int j)
{
    return !x->skip[j] && !x->is_const[j] && !(x->sum_only && x->sum_only[j]) &&
           !(x->cached && x->cached[j]) && x->defs[j] != &qc_fake_quant &&
           x->defs[j] != &qc_code_table && x->defs[j] != &ew_chain_def &&
           x->knodes[j].act == QC_ACT_NONE;
}

/* The chain from the value knode h writes: its members s[0..*n) (none when there is no
 * chain of two nodes or more with one exit, the last member). The candidates are the
 * readers of the chain's values, in plan order: one cursor per value's reader list. */
static void find_chain(const qc_exec *x, const qc_readers *ri, int h, int *s, int *n)
{
    const qc_tensor *v[MAX_MEMBERS + 1];
    int cur[MAX_MEMBERS + 1], end[MAX_MEMBERS + 1], last = h;
    v[0] = x->knodes[h].out[0];
    *n = 0;
    for (;;) {
        for (int i = 0; i <= *n; i++) {     /* a new value's cursor starts at its list */
            if (i == *n) {
                int vi = (int)((const qc_value *)v[i] - x->values);
                cur[i] = ri->start[vi];
                end[i] = ri->start[vi + 1];
            }
            while (cur[i] < end[i] && ri->list[cur[i]] <= last)
                cur[i]++;
        }
        int j = -1;
        for (int i = 0; i <= *n; i++)
            if (cur[i] < end[i] && (j < 0 || ri->list[cur[i]] < j))
                j = ri->list[cur[i]];
        if (j < 0 || *n >= MAX_MEMBERS)
            break;
        last = j;
        if (!plain(x, j) || !qc_fuse_ew_eligible(x, j, v, *n + 1))
            continue;
        s[*n] = j;
        v[++*n] = x->knodes[j].out[0];
    }
    for (int i = 1; i <= *n; i++)
        if (qc_fuse_read_outside(x, v[i], s, *n) != (i == *n)) {
            *n = 0;
            return;
        }
    if (*n < 2)
        *n = 0;
}

/* Knode s[n - 1] becomes the chain step reading the head; the others are skipped. */
static int take_chain(qc_exec *x, int h, const int *s, int n, qc_err *err)
{
    ew_chain *c = calloc(1, sizeof *c);
    qc_tensor **in = calloc(2, sizeof *in);
    if (c) {
        c->n = n;
        c->k = calloc((size_t)n, sizeof *c->k);
        c->defs = calloc((size_t)n, sizeof *c->defs);
        c->src = malloc((size_t)n * 3 * sizeof *c->src);
        c->full = calloc((size_t)n + 1, sizeof *c->full);
    }
    if (!c || !in || !c->k || !c->defs || !c->src || !c->full) {
        if (c)
            free(c->k), free(c->defs), free(c->src), free(c->full);
        free(c), free(in);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    const qc_tensor *head = x->knodes[h].out[0];
    for (int i = 0; i < n; i++) {
        const qc_knode *o = &x->knodes[s[i]];
        c->k[i] = *o;
        c->defs[i] = x->defs[s[i]];
        for (int p = 0; p < 3; p++) {
            c->src[i * 3 + p] = -1;
            if (p >= o->n_in || !o->in[p])
                continue;
            if (o->in[p] == head)
                c->src[i * 3 + p] = 0;
            for (int q = 0; q < i; q++)
                if (o->in[p] == x->knodes[s[q]].out[0])
                    c->src[i * 3 + p] = q + 1;
        }
    }
    /* Sigmoid(head), then Mul of the head (src 0) and the Sigmoid (src 1), in either order */
    c->silu = n == 2 && qc_fuse_is_op(&c->k[0], "Sigmoid") && c->src[0] == 0 &&
              qc_fuse_is_op(&c->k[1], "Mul") && c->k[1].n_in == 2 &&
              ((c->src[3] == 0 && c->src[4] == 1) || (c->src[3] == 1 && c->src[4] == 0));
    qc_knode *kn = &x->knodes[s[n - 1]];
    in[0] = (qc_tensor *)head;
    kn->in = in;                    /* the member's own in[] now belongs to the chain */
    kn->n_in = 1;
    kn->const_in = 0;
    kn->state = c;
    qc_value *hv = (qc_value *)head;    /* its last reader may be later now (qfuse.h) */
    if (hv->last_use < s[n - 1])
        hv->last_use = s[n - 1];
    x->defs[s[n - 1]] = &ew_chain_def;
    for (int i = 0; i < n - 1; i++)
        x->skip[s[i]] = 1;
    return QC_OK;
}

int qc_ew_chain_fuse(qc_exec *x, qc_err *err)
{
    int s[MAX_MEMBERS], n, rc = QC_OK;
    qc_readers ri;                      /* taken before any chain: a chain's last member
                                         * then reads its head instead, but it is no
                                         * candidate for a later chain (not plain) and no
                                         * later chain's values are read by it */
    if (qc_readers_build(x, &ri, err) != QC_OK)
        return QC_ENOMEM;
    for (int h = 0; h < x->n_knodes && rc == QC_OK; h++) {
        if (x->skip[h] || x->is_const[h] || x->knodes[h].n_out < 1 || !x->knodes[h].out[0])
            continue;
        find_chain(x, &ri, h, s, &n);
        if (n > 0)
            rc = take_chain(x, h, s, n, err);
    }
    qc_readers_free(&ri);
    qc_fuse_relive(x);
    return rc;
}
