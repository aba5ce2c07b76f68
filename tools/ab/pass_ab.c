/* pass_ab: the calibration pass in two ways side by side in one process, alternating per
 * sample, one thread (QC_THREADS=1 is the caller's): A observes every activation on an
 * executor without options (calibrate before commit d4d1ca4), B runs as calibrate does now
 * (qc_quantizer_pass_opts: derived gate ranges, fusion around the hooked tensors). Wall-clock
 * runs of whole commands on a shared machine move by more than the few percent this measures;
 * alternating sample by sample in one process puts both sides under the same load.
 *
 *     make build/pass_ab
 *     QC_THREADS=1 build/pass_ab MODEL DATA_DIR METHOD [ROUNDS]
 *
 * Prints the milliseconds per sample of each side (observation included) and their ratio. */
#include <stdio.h>
#include <stdlib.h>
#include "ab.h"
#include "qc_data.h"
#include "qc_exec.h"
#include "qc_model.h"
#include "qc_prepare.h"
#include "qc_quant.h"

typedef struct pass_sides {
    qc_exec      *x[2];
    qc_quantizer *q[2];
    int           n_in;
} pass_sides;

/* side b: its quantizer observes the inputs, its executor runs (and its hook observes) */
static int run_side(void *user, int b, const qc_tensor *in, qc_err *err)
{
    pass_sides *p = user;
    int rc = qc_quantizer_observe_inputs(p->q[b], in, p->n_in, err);
    return rc == QC_OK ? qc_exec_run(p->x[b], in, p->n_in, err) : rc;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: pass_ab MODEL DATA_DIR METHOD [ROUNDS]\n");
        return 2;
    }
    int rounds = argc == 5 ? atoi(argv[4]) : 2;
    qc_err err = { 0 };
    qc_model *m0 = NULL, *prep = NULL;
    qc_exec *x[2] = { NULL, NULL };
    qc_quantizer *q[2] = { NULL, NULL };
    qc_dataset *d = NULL;
    qc_preproc pp;
    qc_prep_report rep = { 0 };
    qc_quant_opts o;
    qc_exec_opts xo;
    qc_preproc_init(&pp);
    qc_quant_opts_default(&o);
    o.method = argv[3];
    o.per_channel = 1;
    int rc = qc_model_load(&m0, argv[1], &err);
    if (rc == QC_OK)
        rc = qc_prepare(m0, &prep, &rep, &err);
    const qc_model *m = prep ? prep : m0;
    for (int b = 0; b < 2 && rc == QC_OK; b++)
        rc = qc_quantizer_new(&q[b], m, &o, &err);
    if (rc == QC_OK && (rc = qc_exec_new(&x[0], m, NULL, &err)) == QC_OK &&
        (rc = qc_quantizer_pass_opts(q[1], &xo, &err)) == QC_OK)
        rc = qc_exec_new(&x[1], m, &xo, &err);
    if (rc == QC_OK)
        rc = qc_dataset_open(&d, argv[2], m, &pp, &err);
    int n = d ? qc_dataset_count(d) : 0;
    for (int b = 0; b < 2 && rc == QC_OK; b++)
        qc_quantizer_attach(q[b], x[b]);
    double *tr[2] = { calloc((size_t)rounds + 1, sizeof(double)),
                      calloc((size_t)rounds + 1, sizeof(double)) }, t[2] = { 0, 0 };
    if (rc == QC_OK && (!tr[0] || !tr[1]))
        rc = qc_errf(&err, QC_ENOMEM, "out of memory");
    pass_sides p = { { x[0], x[1] }, { q[0], q[1] }, m ? m->n_inputs : 0 };
    if (rc == QC_OK)
        rc = ab_alternate(d, rounds, 0, run_side, &p, tr, &err);
    for (int r = 0; rc == QC_OK && r < rounds; r++)
        t[0] += tr[0][r], t[1] += tr[1][r];
    free(tr[0]);
    free(tr[1]);
    if (rc == QC_OK && n > 0 && rounds > 0)
        printf("pass_ab: %s %s: A (every tensor observed) %.2f ms/sample, B (as calibrate) "
               "%.2f ms/sample, B/A %.3f over %d x %d samples\n", argv[1], o.method,
               1e3 * t[0] / rounds / n, 1e3 * t[1] / rounds / n, t[1] / t[0], rounds, n);
    else if (rc != QC_OK)
        fprintf(stderr, "pass_ab: %s\n", err.msg);
    for (int b = 0; b < 2; b++) {
        qc_exec_free(x[b]);
        qc_quantizer_free(q[b]);
    }
    qc_dataset_free(d);
    qc_model_free(prep);
    qc_model_free(m0);
    return rc == QC_OK ? 0 : 1;
}
