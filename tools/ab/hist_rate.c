/* hist_rate: nanoseconds a value of a histogram observer's update (calib/hist.c's binning),
 * on one SiLU-like tensor (16 x 160 x 160, the shape of nudenet's first activation): a
 * rounded normal value through x * sigmoid(x), so most values crowd a few bins near zero as
 * real activations do. Best of 5 rounds of N/5 feeds (default N 300); run it pinned, against
 * another build's, in alternating processes (this machine's speed moves per process).
 *
 *     make build/hist_rate && QC_THREADS=1 taskset -c 1 build/hist_rate [N]
 *
 * Not part of the tests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "ab.h"
#include "qc_observer.h"
#include "qc_tensor.h"

int main(int argc, char **argv)
{
    enum { C = 16, H = 160, W = 160, N_VAL = C * H * W };
    int reps = argc > 1 ? atoi(argv[1]) : 300;
    if (reps < 5)
        reps = 5;
    float *x = malloc((size_t)N_VAL * sizeof *x);
    if (!x) {
        fprintf(stderr, "hist_rate: out of memory\n");
        return 1;
    }
    srand(1);
    for (int i = 0; i < N_VAL; i++) {
        float u = 0;
        for (int k = 0; k < 4; k++)
            u += (float)rand() / (float)RAND_MAX - 0.5f;
        u *= 3;
        x[i] = u / (1 + expf(-u));
    }
    qc_tensor t = { .dtype = QC_F32, .ndim = 4, .dims = { 1, C, H, W }, .data = x };
    qc_err err = { 0 };
    qc_observer *o = NULL;
    if (qc_observer_new(&o, "percentile", NULL, &err) != QC_OK ||
        qc_observer_update(o, &t, &err) != QC_OK) {
        fprintf(stderr, "hist_rate: %s\n", err.msg);
        return 1;
    }
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = ab_now();
        for (int i = 0; i < reps / 5; i++)
            if (qc_observer_update(o, &t, &err) != QC_OK) {
                fprintf(stderr, "hist_rate: %s\n", err.msg);
                return 1;
            }
        double ns = (ab_now() - t0) / (reps / 5) / N_VAL * 1e9;
        best = ns < best ? ns : best;
    }
    printf("hist_rate: %.3f ns a value (percentile observer, %d values a feed, best of 5 x %d "
           "feeds)\n", best, N_VAL, reps / 5);
    qc_observer_free(o);
    free(x);
    return 0;
}
