#include <stdlib.h>
#include "toposort.h"

static void heap_push(int *h, int *n, int v)
{
    int i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static int heap_pop(int *h, int *n)
{
    int top = h[0], v = h[--(*n)], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

int qc_toposort(int n, const int *dep_start, const int *deps, int *order)
{
    int n_edges = dep_start[n], done = 0, n_heap = 0;
    int *pending = calloc((size_t)n + 1, sizeof *pending);
    int *rstart = calloc((size_t)n + 2, sizeof *rstart);   /* reverse edges: dependents */
    int *rlist = calloc((size_t)n_edges + 1, sizeof *rlist);
    int *fill = calloc((size_t)n + 1, sizeof *fill);
    int *heap = calloc((size_t)n + 1, sizeof *heap);
    if (!pending || !rstart || !rlist || !fill || !heap) {
        done = -1;
        goto out;
    }
    for (int i = 0; i < n; i++)
        for (int e = dep_start[i]; e < dep_start[i + 1]; e++) {
            pending[i]++;
            rstart[deps[e] + 1]++;
        }
    for (int i = 0; i < n; i++)
        rstart[i + 1] += rstart[i];
    for (int i = 0; i < n; i++)
        for (int e = dep_start[i]; e < dep_start[i + 1]; e++)
            rlist[rstart[deps[e]] + fill[deps[e]]++] = i;
    for (int i = 0; i < n; i++)
        if (!pending[i])
            heap_push(heap, &n_heap, i);
    while (n_heap > 0) {
        int i = heap_pop(heap, &n_heap);
        order[done++] = i;
        for (int e = rstart[i]; e < rstart[i + 1]; e++)
            if (--pending[rlist[e]] == 0)
                heap_push(heap, &n_heap, rlist[e]);
    }
out:
    free(pending);
    free(rstart);
    free(rlist);
    free(fill);
    free(heap);
    return done;
}
