/* The calibration pass's copies of the float values bias correction reads (qc_biascorr.h).
 * Measuring a bias sample otherwise runs the float model on it once more, beside the quantized
 * one: on nudenet (YOLOv8n) 20 of a sample's 28.5 ms. The pass computed those values already;
 * kept, the measure runs the quantized model alone. Budgeted: nudenet keeps 14.3 MB a sample
 * (its 64 biased Conv outputs at 320x320), ddddocr 38 MB. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "qc_biascorr.h"

#define HUGE_PAGE ((size_t)2 << 20)
#define ALIGN     64

struct qc_bc_stash {
    const char **names;         /* the biased nodes' outputs (the model's arena) */
    int          n_names, n_out, n_samples, n_nodes;
    int         *slot_by_node;  /* model node index -> name index, or -1 */
    qc_tensor   *v;             /* [sample][name] */
    qc_tensor   *out;           /* [sample][output] */
    char        *state;         /* per sample: 0 filling, 1 complete, 2 dropped */
    /* The copies' memory: one reservation of the budget, handed out by an atomic bump
     * offset (the pass's threads), returned all at once. Fresh pages fault in as they are
     * written; 4 KiB pages made a page fault every 4 KiB copied (on nudenet the copies cost
     * 130 ms of CPU, mostly faults: perf record), so the reservation asks for huge pages
     * (2 MiB: a fault each), where the kernel has them. Space of a dropped sample is not
     * reused: a sample is dropped only once the budget is spent. */
    char        *base, *map;
    size_t       budget, map_len, used;
};

static int biased(const qc_node *n)
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
    if (budget > 0) {
        s->map_len = budget + HUGE_PAGE;
        void *p = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            s->budget = 0;          /* nothing kept: every sample measured with a float run */
        } else {
            s->map = p;
            s->base = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
        }
    }
    size_t nv = (size_t)s->n_samples;
    s->names = calloc((size_t)m->n_nodes + 1, sizeof *s->names);
    s->slot_by_node = malloc(((size_t)m->n_nodes + 1) * sizeof *s->slot_by_node);
    s->state = calloc(nv + 1, 1);
    s->out = calloc(nv * (size_t)s->n_out + 1, sizeof *s->out);
    if (!s->names || !s->slot_by_node || !s->state || !s->out) {
        qc_bc_stash_free(s);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < m->n_nodes; i++) {
        s->slot_by_node[i] = -1;
        if (biased(&m->nodes[i]) && m->nodes[i].outputs[0][0]) {
            s->slot_by_node[i] = s->n_names;
            s->names[s->n_names++] = m->nodes[i].outputs[0];
        }
    }
    if (!(s->v = calloc(nv * (size_t)s->n_names + 1, sizeof *s->v))) {
        qc_bc_stash_free(s);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    *out = s;
    return QC_OK;
}

/* Forgets sample i's copies (only the thread running sample i calls this during the pass). */
static void drop(qc_bc_stash *s, int i)
{
    for (int k = 0; k < s->n_names; k++)
        memset(&s->v[(size_t)i * s->n_names + k], 0, sizeof *s->v);
    for (int j = 0; j < s->n_out; j++)
        memset(&s->out[(size_t)i * s->n_out + j], 0, sizeof *s->out);
    s->state[i] = 2;
}

void qc_bc_stash_free(qc_bc_stash *s)
{
    if (!s)
        return;
    if (s->map)
        munmap(s->map, s->map_len);
    free(s->names);
    free(s->slot_by_node);
    free(s->v);
    free(s->out);
    free(s->state);
    free(s);
}

int qc_bc_stash_names(const qc_bc_stash *s, const char *const **names)
{
    *names = s->names;
    return s->n_names;
}

/* A copy of t into *dst within the budget: 1 kept, 0 over budget (nothing kept). */
static int keep(qc_bc_stash *s, qc_tensor *dst, const qc_tensor *t)
{
    size_t nb = qc_tensor_nbytes(t), len = (nb + ALIGN - 1) / ALIGN * ALIGN;
    size_t at = __atomic_fetch_add(&s->used, len, __ATOMIC_RELAXED);
    if (at > s->budget || len > s->budget - at)
        return 0;                   /* used stays past the budget: nothing else fits */
    *dst = *t;
    dst->name = NULL;
    dst->data = s->base + at;
    dst->capacity = len;
    memcpy(dst->data, t->data, nb);
    return 1;
}

void qc_bc_stash_node(qc_bc_stash *s, int sample, int node_index,
                      const qc_tensor *const *outs, int n_outs)
{
    if (sample < 0 || sample >= s->n_samples || s->state[sample] || node_index < 0 ||
        node_index >= s->n_nodes || n_outs < 1)
        return;
    int k = s->slot_by_node[node_index];
    if (k >= 0 && !keep(s, &s->v[(size_t)sample * s->n_names + k], outs[0]))
        drop(s, sample);            /* measured with a float run instead */
}

void qc_bc_stash_done(qc_bc_stash *s, int sample, const qc_exec *x)
{
    if (sample < 0 || sample >= s->n_samples || s->state[sample])
        return;
    for (int k = 0; k < s->n_names; k++)
        if (!s->v[(size_t)sample * s->n_names + k].data) {
            drop(s, sample);        /* a biased node the run did not reach: nothing to use */
            return;
        }
    for (int j = 0; j < s->n_out; j++) {
        const qc_tensor *f = qc_exec_output(x, j);
        qc_tensor *dst = &s->out[(size_t)sample * s->n_out + j];
        if (!f || f->dtype != QC_F32)
            continue;               /* nothing to compare (as measure_sample) */
        if (!keep(s, dst, f)) {
            drop(s, sample);
            return;
        }
    }
    s->state[sample] = 1;
}

int qc_bc_stash_has(const qc_bc_stash *s, int i)
{
    return s && i >= 0 && i < s->n_samples && s->state[i] == 1;
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
    if (!s)
        return 0;
    size_t used = __atomic_load_n(&s->used, __ATOMIC_RELAXED);
    return used < s->budget ? used : s->budget;
}
