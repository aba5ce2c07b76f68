#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"

struct qc_arena_chunk {
    qc_arena_chunk *next;
    size_t          used, cap;
    _Alignas(16) unsigned char mem[];
};

#define CHUNK_MIN (64 * 1024)

void *qc_arena_alloc(qc_arena *a, size_t nbytes)
{
    size_t need = (nbytes + 15) & ~(size_t)15;
    if (need < nbytes)
        return NULL;
    qc_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > CHUNK_MIN ? need : CHUNK_MIN;
        if (cap > SIZE_MAX - sizeof *c)
            return NULL;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        /* a big allocation gets its own chunk behind the current one, so the
         * current chunk's free space is not wasted */
        if (a->head && cap == need && need > CHUNK_MIN / 4) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->mem + c->used;
    c->used += need;
    a->total += need;
    memset(p, 0, need);
    return p;
}

void *qc_arena_array(qc_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t nb = n * size;
    return qc_arena_alloc(a, nb ? nb : 1);
}

char *qc_arena_strdup(qc_arena *a, const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *d = qc_arena_alloc(a, n);
    if (d)
        memcpy(d, s ? s : "", n);
    return d;
}

void qc_arena_free(qc_arena *a)
{
    qc_arena_chunk *c = a->head;
    while (c) {
        qc_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
