/* The calibration pass's copies of the float values bias correction reads (qc_biascorr.h).
 * Measuring a bias sample otherwise runs the float model on it once more, beside the quantized
 * one: on nudenet (YOLOv8n) 20 of a sample's 28.5 ms. The pass computed those values already;
 * kept, the measure runs the quantized model alone. Budgeted: nudenet keeps 14.3 MB a sample
 * (its 64 biased Conv outputs at 320x320), 229 MB for its 16 bias samples; ddddocr would keep
 * 38 MB a sample and does not fit. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "qc_biascorr.h"
#include "quant_priv.h"

#define ALIGN 64

struct qc_bc_stash {
    const char **names;         /* the biased nodes' outputs (the model's arena) */
    int          n_names, n_out, n_samples, n_nodes;
    int         *slot_by_node;  /* model node index -> name index, or -1 */
    qc_tensor   *v;             /* [sample][name] */
    qc_tensor   *out;           /* [sample][output] */
    char        *done;          /* per sample: its values are all here */
    /* All or nothing: once the samples cannot all fit, the stash gives up (`failed`, set by
     * any thread) and its pages go back to the system. A partial stash would save part of
     * the float runs but keep both its memory and the float executors'. The first sample
     * done tells the size of all (the same shapes: a model whose shapes vary by sample fails
     * when the budget runs out). */
    int          failed;
    /* The copies' memory: one reservation of the budget, handed out by an atomic bump
     * offset (the pass's threads), returned all at once. Its pages fault in as they are
     * first written, 4 KiB at a time: on nudenet most of the copies' cost (perf record of a
     * minmax run: ~0.15 s of CPU in page faults under the copies). Not huge pages: asked
     * for with MADV_HUGEPAGE, filling 229 MB took 0.05 s, or 0.5 s when the kernel
     * compacted memory first (this machine's THP defrag setting is "madvise"). */
    char        *base;
    size_t       budget, used;
};

/* quant_priv.h */
int qc_quant_biased_node(const qc_node *n)
{
    return n->domain[0] == 0 && n->n_inputs >= 3 && n->inputs[2][0] && n->n_outputs >= 1 &&
           (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose") ||
            !strcmp(n->op_type, "Gemm"));
}

int qc_bc_stash_new(qc_bc_stash **out, const qc_model *m, int n_samples, size_t budget,
                    qc_err *err)
{
    qc_bc_stash *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    s->n_samples = n_samples > 0 ? n_samples : 0;
    s->n_out = m->n_outputs;
    s->n_nodes = m->n_nodes;
    s->budget = budget;
    size_t nv = (size_t)s->n_samples;
    s->names = calloc((size_t)m->n_nodes + 1, sizeof *s->names);
    s->slot_by_node = malloc(((size_t)m->n_nodes + 1) * sizeof *s->slot_by_node);
    s->done = calloc(nv + 1, 1);
    s->out = calloc(nv * (size_t)s->n_out + 1, sizeof *s->out);
    if (!s->names || !s->slot_by_node || !s->done || !s->out) {
        qc_bc_stash_free(s);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < m->n_nodes; i++) {
        s->slot_by_node[i] = -1;
        if (qc_quant_biased_node(&m->nodes[i]) && m->nodes[i].outputs[0][0]) {
            s->slot_by_node[i] = s->n_names;
            s->names[s->n_names++] = m->nodes[i].outputs[0];
        }
    }
    if (!(s->v = calloc(nv * (size_t)s->n_names + 1, sizeof *s->v))) {
        qc_bc_stash_free(s);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    void *p = budget > 0 ? mmap(NULL, budget, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                         : MAP_FAILED;
    if (p == MAP_FAILED)
        s->failed = 1;              /* nothing kept: every sample measured with a float run */
    else
        s->base = p;
    *out = s;
    return QC_OK;
}

void qc_bc_stash_free(qc_bc_stash *s)
{
    if (!s)
        return;
    if (s->base)
        munmap(s->base, s->budget);
    free(s->names);
    free(s->slot_by_node);
    free(s->v);
    free(s->out);
    free(s->done);
    free(s);
}

int qc_bc_stash_names(const qc_bc_stash *s, const char *const **names)
{
    *names = s->names;
    return s->n_names;
}

static int failed(const qc_bc_stash *s)
{
    return __atomic_load_n(&s->failed, __ATOMIC_RELAXED);
}

/* Gives up (any thread, once or more): the pages go back, the reservation stays until
 * qc_bc_stash_free, so a copy still running on another thread writes into mapped memory. */
static void give_up(qc_bc_stash *s)
{
    if (!__atomic_exchange_n(&s->failed, 1, __ATOMIC_RELAXED) && s->base)
        (void)madvise(s->base, s->budget, MADV_DONTNEED);
}

/* The bytes a copy of nb bytes takes in the reservation */
static size_t padded(size_t nb)
{
    return (nb + ALIGN - 1) / ALIGN * ALIGN;
}

/* A copy of t into *dst within the budget, or giving up. */
static void keep(qc_bc_stash *s, qc_tensor *dst, const qc_tensor *t)
{
    size_t nb = qc_tensor_nbytes(t), len = padded(nb);
    size_t at = __atomic_fetch_add(&s->used, len, __ATOMIC_RELAXED);
    if (at > s->budget || len > s->budget - at) {
        give_up(s);
        return;
    }
    *dst = *t;
    dst->name = NULL;
    dst->data = s->base + at;
    dst->capacity = len;
    if (nb)
        memcpy(dst->data, t->data, nb);
}

void qc_bc_stash_node(qc_bc_stash *s, int sample, int node_index,
                      const qc_tensor *const *outs, int n_outs)
{
    if (sample < 0 || sample >= s->n_samples || node_index < 0 || node_index >= s->n_nodes ||
        n_outs < 1 || s->slot_by_node[node_index] < 0 || failed(s))
        return;
    keep(s, &s->v[(size_t)sample * s->n_names + s->slot_by_node[node_index]], outs[0]);
}

void qc_bc_stash_done(qc_bc_stash *s, int sample, const qc_exec *x)
{
    if (sample < 0 || sample >= s->n_samples || failed(s))
        return;
    size_t bytes = 0;
    for (int k = 0; k < s->n_names; k++) {
        const qc_tensor *t = &s->v[(size_t)sample * s->n_names + k];
        if (!t->data) {
            give_up(s);             /* a biased node the run did not reach */
            return;
        }
        bytes += t->capacity;
    }
    for (int j = 0; j < s->n_out; j++) {
        const qc_tensor *f = qc_exec_output(x, j);
        if (!f || f->dtype != QC_F32)
            continue;               /* nothing to compare (as measure_sample) */
        keep(s, &s->out[(size_t)sample * s->n_out + j], f);
        bytes += padded(qc_tensor_nbytes(f));
    }
    /* the first samples done (shards claim them in order) tell whether all will fit */
    if (bytes > s->budget / (size_t)s->n_samples)
        give_up(s);
    s->done[sample] = 1;
}

int qc_bc_stash_has(const qc_bc_stash *s, int i)
{
    return s && i >= 0 && i < s->n_samples && s->done[i] && !failed(s);
}

int qc_bc_stash_find(const qc_bc_stash *s, const char *name)
{
    for (int k = 0; s && k < s->n_names; k++)
        if (!strcmp(s->names[k], name))
            return k;
    return -1;
}

const qc_tensor *qc_bc_stash_value(const qc_bc_stash *s, int i, int k)
{
    return qc_bc_stash_has(s, i) && k >= 0 && k < s->n_names ? &s->v[(size_t)i * s->n_names + k]
                                                              : NULL;
}

const qc_tensor *qc_bc_stash_output(const qc_bc_stash *s, int i, int j)
{
    if (!qc_bc_stash_has(s, i) || j < 0 || j >= s->n_out)
        return NULL;
    const qc_tensor *t = &s->out[(size_t)i * s->n_out + j];
    return t->data ? t : NULL;
}

size_t qc_bc_stash_bytes(const qc_bc_stash *s)
{
    return s && !failed(s) ? __atomic_load_n(&s->used, __ATOMIC_RELAXED) : 0;
}
