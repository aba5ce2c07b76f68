/* Activation buffers: blocks return here after their value's last consumer and are handed to
 * the next value that fits, so a model run with the same shapes again allocates nothing and
 * peak memory is the live set, not the graph. */
#include <stdlib.h>
#include "exec_priv.h"

void *qc_pool_get(qc_pool *p, size_t nbytes, size_t *cap)
{
    int best = -1;
    size_t need = nbytes ? nbytes : 1;
    /* 64-byte alignment keeps SIMD loads aligned for the kernels */
    size_t rounded = (need + 63) & ~(size_t)63;
    for (int i = 0; i < p->n_free; i++) {
        size_t c = p->free[i].cap;
        /* best fit, but never hand a large block to a small tensor */
        if (c >= need && c <= 2 * need + 65536 && (best < 0 || c < p->free[best].cap))
            best = i;
        if (c == rounded)           /* every cap is a rounded size: none fits better */
            break;
    }
    if (best >= 0) {
        void *ptr = p->free[best].ptr;
        *cap = p->free[best].cap;
        p->free[best] = p->free[--p->n_free];
        return ptr;
    }
    void *ptr = aligned_alloc(64, rounded);
    if (!ptr)
        return NULL;
    *cap = rounded;
    p->bytes_now += rounded;
    if (p->bytes_now > p->bytes_peak)
        p->bytes_peak = p->bytes_now;
    return ptr;
}

void qc_pool_put(qc_pool *p, void *ptr, size_t cap)
{
    if (!ptr)
        return;
    if (p->n_free == p->cap_free) {
        int nc = p->cap_free ? 2 * p->cap_free : 64;
        qc_block *nb = realloc(p->free, (size_t)nc * sizeof *nb);
        if (!nb) {                  /* cannot remember it: give it back to the system */
            free(ptr);
            p->bytes_now -= cap;
            return;
        }
        p->free = nb;
        p->cap_free = nc;
    }
    p->free[p->n_free].ptr = ptr;
    p->free[p->n_free].cap = cap;
    p->free[p->n_free].used_this_run = 1;
    p->n_free++;
}

void qc_pool_trim(qc_pool *p)
{
    int k = 0;
    for (int i = 0; i < p->n_free; i++) {
        if (p->free[i].used_this_run) {
            p->free[i].used_this_run = 0;
            p->free[k++] = p->free[i];
        } else {
            free(p->free[i].ptr);
            p->bytes_now -= p->free[i].cap;
        }
    }
    p->n_free = k;
}

void qc_pool_free(qc_pool *p)
{
    for (int i = 0; i < p->n_free; i++)
        free(p->free[i].ptr);
    free(p->free);
    p->free = NULL;
    p->n_free = p->cap_free = 0;
    p->bytes_now = 0;
}
