/* Bump allocator: many small allocations, one free. Used for the model's graph and names. */
#ifndef QC_ARENA_H
#define QC_ARENA_H

#include <stddef.h>

typedef struct qc_arena_chunk qc_arena_chunk;
typedef struct qc_arena {
    qc_arena_chunk *head;
    size_t          total;     /* bytes handed out, for reporting */
} qc_arena;

/* Zeroed, 16-byte aligned memory; NULL on overflow or out of memory. */
void *qc_arena_alloc(qc_arena *a, size_t nbytes);
/* n elements of `size` bytes with an overflow check. */
void *qc_arena_array(qc_arena *a, size_t n, size_t size);
char *qc_arena_strdup(qc_arena *a, const char *s);
void  qc_arena_free(qc_arena *a);

#endif
