/* env_ab: the float executor (as `calibrate bench` runs it) under two values of one
 * environment variable, alternating sample by sample in one process, so both sides see the
 * same machine load (whole-command timings on a shared machine move by 10-40%). For the
 * kernel switches read at run time (QC_CONV_TB, QC_CONV_ROWS, QC_CONV_NV3, ...); an empty
 * value unsets the variable.
 *
 *     make build/env_ab
 *     build/env_ab MODEL DATA_DIR VAR A B [ROUNDS]
 *
 * Prints each side's milliseconds per sample (median over the rounds of each round's mean)
 * and B/A, the median of the per-round ratios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ab.h"
#include "qc_data.h"
#include "qc_exec.h"
#include "qc_model.h"
#include "../cmd.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void set_side(const char *var, const char *val)
{
    if (val[0])
        setenv(var, val, 1);
    else
        unsetenv(var);
}

typedef struct env_sides {
    qc_exec    *x;
    int         n_in;
    const char *var, *val[2];
} env_sides;

/* side b: the variable set to its value, then one run */
static int run_side(void *user, int b, const qc_tensor *in, qc_err *err)
{
    env_sides *e = user;
    set_side(e->var, e->val[b]);
    return qc_exec_run(e->x, in, e->n_in, err);
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: env_ab MODEL DATA_DIR VAR A B [ROUNDS]\n");
        return 2;
    }
    const char *var = argv[3], *val[2] = { argv[4], argv[5] };
    int rounds = argc == 7 ? atoi(argv[6]) : 10;
    if (rounds < 1)
        rounds = 1;
    qc_err err = { 0 };
    qc_model *m = NULL;
    qc_exec *x = NULL;
    qc_dataset *d = NULL;
    qc_preproc pp;
    qc_preproc_init(&pp);
    qc_exec_opts xo = QC_BENCH_EXEC_OPTS;
    double *t[2] = { calloc((size_t)rounds, sizeof(double)),
                     calloc((size_t)rounds, sizeof(double)) };
    double *ratio = calloc((size_t)rounds, sizeof(double));
    int rc = t[0] && t[1] && ratio ? qc_model_load(&m, argv[1], &err) : QC_ENOMEM;
    if (rc == QC_OK)
        rc = qc_exec_new(&x, m, &xo, &err);
    if (rc == QC_OK)
        rc = qc_dataset_open(&d, argv[2], m, &pp, &err);
    int n = rc == QC_OK ? qc_dataset_count(d) : 0;
    /* a first round warms both sides up (weight packing, buffers) and is not counted */
    env_sides e = { x, m ? m->n_inputs : 0, var, { val[0], val[1] } };
    if (rc == QC_OK)
        rc = ab_alternate(d, rounds, 1, run_side, &e, t, &err);
    if (rc == QC_OK && n > 0) {
        for (int r = 0; r < rounds; r++)
            ratio[r] = t[1][r] / t[0][r];
        double q = median(ratio, rounds), a = median(t[0], rounds), b = median(t[1], rounds);
        printf("env_ab: %s: %s=%s %.3f ms/sample, %s=%s %.3f ms/sample, B/A %.3f "
               "(median of %d rounds x %d samples)\n", argv[1], var, val[0], 1e3 * a / n, var,
               val[1], 1e3 * b / n, q, rounds, n);
    } else if (rc != QC_OK) {
        fprintf(stderr, "env_ab: %s\n", rc == QC_ENOMEM && !err.msg[0] ? "out of memory"
                                                                        : err.msg);
    }
    qc_exec_free(x);
    qc_dataset_free(d);
    qc_model_free(m);
    free(t[0]);
    free(t[1]);
    free(ratio);
    return rc == QC_OK ? 0 : 1;
}
