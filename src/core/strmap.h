/* String -> int map (open addressing). Keys are borrowed: they must outlive the map. */
#ifndef QC_STRMAP_H
#define QC_STRMAP_H

#include <stddef.h>

typedef struct qc_strmap {
    const char **keys;
    int         *vals;
    size_t       cap, count;
} qc_strmap;

int  qc_strmap_init(qc_strmap *m, size_t expected);      /* 0 or -1 on out of memory */
int  qc_strmap_put(qc_strmap *m, const char *key, int val); /* overwrites; -1 on OOM */
int  qc_strmap_get(const qc_strmap *m, const char *key);   /* -1 when absent */
void qc_strmap_free(qc_strmap *m);

#endif
