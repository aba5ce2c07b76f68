/* `calibrate bench --profile N / --profile-json FILE`: where the executor's time goes, per op
 * type and per node (qc_exec_node_seconds), from the timed single-sample runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cmd.h"
#include "qc_io.h"

typedef struct op_row {
    const char *op;
    double      sec;
    int         nodes;
} op_row;

static const double *g_sec;    /* qsort's comparators below read the profile through it */

static int by_node_time(const void *a, const void *b)
{
    double x = g_sec[*(const int *)a], y = g_sec[*(const int *)b];
    return x > y ? -1 : x < y ? 1 : *(const int *)a - *(const int *)b;
}

static int by_op_time(const void *a, const void *b)
{
    const op_row *x = a, *y = b;
    return x->sec > y->sec ? -1 : x->sec < y->sec ? 1 : strcmp(x->op, y->op);
}

static int write_profile_json(const char *path, const char *model, const qc_model *m,
                              const double *sec, double per, double median_ms, double mean_ms,
                              qc_err *err)
{
    cJSON *root = cJSON_CreateObject(), *nodes = cJSON_CreateArray();
    if (!root || !nodes) {
        cJSON_Delete(root);
        cJSON_Delete(nodes);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(root, "format", "qcal-profile");
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddNumberToObject(root, "median_ms", median_ms);
    cJSON_AddNumberToObject(root, "mean_ms", mean_ms);     /* >= kernel_ms: same runs */
    double total = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const qc_node *n = &m->nodes[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "name", n->name);
        cJSON_AddStringToObject(o, "op", n->op_type);
        cJSON_AddStringToObject(o, "output", n->n_outputs > 0 ? n->outputs[0] : "");
        cJSON_AddNumberToObject(o, "ms", 1e3 * sec[i] / per);
        cJSON_AddItemToArray(nodes, o);
        total += sec[i];
    }
    cJSON_AddNumberToObject(root, "kernel_ms", 1e3 * total / per);
    cJSON_AddItemToObject(root, "nodes", nodes);
    return qc_write_json_atomic(root, path, err);
}

int qc_bench_profile(const char *model, const qc_model *m, const double *sec, double per,
                     double median_ms, double mean_ms, int top, const char *json,
                     qc_err *err)
{
    int *idx = malloc(((size_t)m->n_nodes + 1) * sizeof *idx);
    op_row *ops = calloc((size_t)m->n_nodes + 1, sizeof *ops);
    if (!idx || !ops) {
        free(idx);
        free(ops);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    double total = 0;
    int n_ops = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        idx[i] = i;
        total += sec[i];
        int k = 0;
        while (k < n_ops && strcmp(ops[k].op, m->nodes[i].op_type))
            k++;
        if (k == n_ops)
            ops[n_ops++].op = m->nodes[i].op_type;
        ops[k].sec += sec[i];
        ops[k].nodes += sec[i] > 0;
    }
    if (top > 0) {
        g_sec = sec;
        qsort(idx, (size_t)m->n_nodes, sizeof *idx, by_node_time);
        qsort(ops, (size_t)n_ops, sizeof *ops, by_op_time);
        /* both means over the same runs (a median would not bound the mean) */
        printf("bench: profile of the timed runs: kernels %.3f ms/sample of %.3f on average "
               "(the rest: planning, buffers, hooks)\n", 1e3 * total / per, mean_ms);
        printf("  %-24s %10s %7s %6s\n", "op type", "ms/sample", "share", "nodes");
        for (int k = 0; k < n_ops && ops[k].sec > 0; k++)
            printf("  %-24.24s %10.3f %6.1f%% %6d\n", ops[k].op, 1e3 * ops[k].sec / per,
                   total > 0 ? 100 * ops[k].sec / total : 0, ops[k].nodes);
        printf("  %-40s %-14s %10s %7s\n", "node (first output)", "op", "ms/sample", "share");
        for (int r = 0; r < top && r < m->n_nodes && sec[idx[r]] > 0; r++) {
            const qc_node *n = &m->nodes[idx[r]];
            char label[96];
            snprintf(label, sizeof label, "%s (%s)", n->name, n->n_outputs ? n->outputs[0] : "");
            printf("  %-40.40s %-14.14s %10.3f %6.1f%%\n", label, n->op_type,
                   1e3 * sec[idx[r]] / per, total > 0 ? 100 * sec[idx[r]] / total : 0);
        }
    }
    free(idx);
    free(ops);
    return json ? write_profile_json(json, model, m, sec, per, median_ms, mean_ms, err)
                : QC_OK;
}
