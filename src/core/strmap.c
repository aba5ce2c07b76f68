#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "strmap.h"

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;          /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

int qc_strmap_init(qc_strmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2 + 1)
        cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->count = 0;
    if (!m->keys || !m->vals) {
        qc_strmap_free(m);
        return -1;
    }
    return 0;
}

static int grow(qc_strmap *m)
{
    qc_strmap n;
    if (qc_strmap_init(&n, m->cap) != 0)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            qc_strmap_put(&n, m->keys[i], m->vals[i]);
    qc_strmap_free(m);
    *m = n;
    return 0;
}

int qc_strmap_put(qc_strmap *m, const char *key, int val)
{
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->count++;
    }
    m->vals[i] = val;
    return 0;
}

int qc_strmap_get(const qc_strmap *m, const char *key)
{
    if (!m->cap)
        return -1;
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key))
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void qc_strmap_free(qc_strmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = 0;
}
