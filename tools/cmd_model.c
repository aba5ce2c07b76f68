/* Small model utilities: `info` (inputs, outputs, ops, whether qcal can run it), `save` (load
 * and write back: the round-trip check), `bench` (latency of the executor, as `run` runs it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "progress.h"
#include "qc_data.h"
#include "qc_exec.h"
#include "qc_pass.h"

static void print_vi(const char *kind, const qc_value_info *v)
{
    printf("%s %s: %s [", kind, v->name, qc_dtype_name(v->dtype));
    for (int d = 0; d < v->ndim; d++) {
        if (v->dim_params[d])
            printf("%s%s", d ? "," : "", v->dim_params[d]);
        else if (v->dims[d] >= 0)
            printf("%s%lld", d ? "," : "", (long long)v->dims[d]);
        else
            printf("%s?", d ? "," : "");
    }
    printf("]\n");
}

int qc_cmd_info(int argc, char **argv)
{
    qc_err err = { 0 };
    qc_model *m = NULL;
    qc_exec *x = NULL;
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            puts("usage: calibrate info MODEL.onnx\n\nPrints inputs, outputs, op counts and "
                 "whether qcal's executor supports every node.");
            return 0;
        }
        return qc_cmd_usage_error("info", "expected exactly one model");
    }
    int rc = qc_model_load(&m, argv[1], &err);
    if (rc)
        return qc_cmd_fail(rc, &err);
    printf("%s: opset %lld, IR %lld, %d nodes, %d initializers\n", argv[1],
           (long long)m->opset, (long long)m->ir_version, m->n_nodes, m->n_inits);
    for (int i = 0; i < m->n_inputs; i++)
        print_vi("input", &m->inputs[i]);
    for (int i = 0; i < m->n_outputs; i++)
        print_vi("output", &m->outputs[i]);
    /* op histogram in first-seen order */
    const char **ops = calloc((size_t)m->n_nodes + 1, sizeof *ops);
    int *cnt = calloc((size_t)m->n_nodes + 1, sizeof *cnt), n_ops = 0;
    for (int i = 0; ops && cnt && i < m->n_nodes; i++) {
        int k = 0;
        while (k < n_ops && strcmp(ops[k], m->nodes[i].op_type))
            k++;
        if (k == n_ops)
            ops[n_ops++] = m->nodes[i].op_type;
        cnt[k]++;
    }
    printf("ops:");
    for (int k = 0; k < n_ops; k++)
        printf(" %s:%d", ops[k], cnt[k]);
    printf("\n");
    free(ops);
    free(cnt);
    rc = qc_exec_new(&x, m, NULL, &err);
    if (rc == QC_OK)
        printf("executor: every node supported\n");
    qc_exec_free(x);
    qc_model_free(m);
    return rc ? qc_cmd_fail(rc, &err) : 0;
}

int qc_cmd_save(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *val;
    size_t thr = 0;
    int missing;
    for (int i = 1; i < argc;) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: calibrate save MODEL.onnx -o OUT.onnx [--external-threshold BYTES]\n\n"
                 "Loads the model and writes it back unchanged (external data is pulled\n"
                 "inline unless the model passes 2 GiB, or initializers of at least BYTES\n"
                 "go to OUT.onnx.data when the threshold is given).");
            return 0;
        } else if ((val = qc_cmd_optval(argc, argv, &i, "--output", "-o", &missing)) ||
                   missing) {
            if (!val)
                return qc_cmd_usage_error("save", "%s needs a value", argv[i]);
            out = val;
        } else if ((val = qc_cmd_optval(argc, argv, &i, "--external-threshold", NULL,
                                        &missing)) || missing) {
            char *end;
            if (!val)
                return qc_cmd_usage_error("save", "%s needs a value", argv[i]);
            long long v = strtoll(val, &end, 10);
            if (*end || v <= 0)
                return qc_cmd_usage_error("save", "--external-threshold '%s': expected bytes",
                                          val);
            thr = (size_t)v;
        } else if (argv[i][0] == '-') {
            return qc_cmd_usage_error("save", "unknown option '%s'", argv[i]);
        } else if (in) {
            return qc_cmd_usage_error("save", "more than one model");
        } else {
            in = argv[i++];
        }
    }
    if (!in || !out)
        return qc_cmd_usage_error("save", "need MODEL and -o OUT");
    qc_err err = { 0 };
    qc_model *m = NULL;
    int rc = qc_model_load(&m, in, &err);
    if (rc == QC_OK)
        rc = qc_model_save(m, out, thr, &err);
    qc_model_free(m);
    return rc ? qc_cmd_fail(rc, &err) : 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct tp_shard {
    qc_dataset *d;
    qc_exec    *x;
    int         n_in;
} tp_shard;

static int tp_sample(void *user, int shard, int i, qc_err *err)
{
    tp_shard *s = (tp_shard *)user + shard;
    qc_tensor *in;
    int rc = qc_dataset_load(s->d, i, &in, err);
    return rc != QC_OK ? rc : qc_exec_run(s->x, in, s->n_in, err);
}

/* How bench runs a model, for latency and throughput alike: as `calibrate run` does
 * (cmd_run.c), a QDQ model's weights dequantized once and its Q/DQ pairs as one step. */
static const qc_exec_opts bench_opts = QC_BENCH_EXEC_OPTS;

/* The float executor the way calibration passes run it (qc_pass.h): whole samples side by
 * side, one shard per thread; shard 0 reuses x and d. t: `runs` doubles of scratch. */
static int bench_throughput(const char *path, const qc_model *m, qc_exec *x, qc_dataset *d,
                            int n, long runs, double *t, qc_err *err)
{
    int jobs = qc_pass_default_jobs();
    if (jobs > n)
        jobs = n;
    tp_shard *sh = calloc((size_t)jobs, sizeof *sh);
    int rc = sh ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
    if (rc == QC_OK)
        sh[0] = (tp_shard){ d, x, m->n_inputs };
    for (int s = 1; s < jobs && rc == QC_OK; s++) {
        sh[s].n_in = m->n_inputs;
        if ((rc = qc_dataset_clone(d, &sh[s].d, err)) == QC_OK)
            rc = qc_exec_new(&sh[s].x, m, &bench_opts, err);
    }
    qc_pass_ops ops = { sh, tp_sample, NULL };
    for (long r = -1; r < runs && rc == QC_OK; r++) {
        double t0 = qc_now();
        rc = qc_pass_run(&ops, n, jobs, NULL, NULL, err);
        if (r >= 0)
            t[r] = (qc_now() - t0) / n;
    }
    if (rc == QC_OK) {
        qsort(t, (size_t)runs, sizeof *t, cmp_d);
        printf("bench: %s: throughput %.3f ms/sample (min %.3f, max %.3f) with %d sample%s "
               "side by side over %ld runs\n", path, 1e3 * t[runs / 2], 1e3 * t[0],
               1e3 * t[runs - 1], jobs, jobs == 1 ? "" : "s", runs);
    }
    for (int s = 1; s < jobs && sh; s++) {
        qc_exec_free(sh[s].x);
        qc_dataset_free(sh[s].d);
    }
    free(sh);
    return rc;
}

int qc_cmd_bench(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *val, *prof_json = NULL;
    long runs = 10, prof_top = 0;
    int missing;
    qc_preproc pp;
    qc_err err = { 0 };
    qc_preproc_init(&pp);
    for (int i = 1; i < argc;) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: calibrate bench MODEL.onnx --data DIR [--runs N] [--profile N]\n"
                 "                       [--profile-json FILE]\n\n"
                 "Latency of qcal's executor, run as `calibrate run` runs it (a QDQ model's\n"
                 "weights dequantized once, its Q/DQ pairs as one step): one warm-up pass over\n"
                 "the samples, then N timed passes; prints the median milliseconds per sample.\n"
                 "Then throughput:\n"
                 "N passes with one sample per thread side by side (QC_THREADS threads, each\n"
                 "single-threaded, loading included), as calibration passes run; prints the\n"
                 "median wall milliseconds per sample.\n\n"
                 "--profile N: after the timed passes, the kernel time per op type and of the N\n"
                 "slowest nodes (ms per sample, averaged over the timed passes).\n"
                 "--profile-json FILE: every node's kernel time as JSON (tools/profile_vs_ort.py\n"
                 "sets it beside onnxruntime's profiler, node by node).");
            return 0;
        } else if ((val = qc_cmd_optval(argc, argv, &i, "--data", NULL, &missing)) ||
                   missing) {
            if (!val)
                return qc_cmd_usage_error("bench", "--data needs a value");
            data = val;
        } else if ((val = qc_cmd_optval(argc, argv, &i, "--runs", NULL, &missing)) ||
                   missing) {
            char *end;
            runs = val ? strtol(val, &end, 10) : 0;
            if (!val || *end || runs < 1)
                return qc_cmd_usage_error("bench", "--runs expects a count >= 1");
        } else if ((val = qc_cmd_optval(argc, argv, &i, "--profile", NULL, &missing)) ||
                   missing) {
            char *end;
            prof_top = val ? strtol(val, &end, 10) : -1;
            if (!val || *end || prof_top < 1 || prof_top > 100000)
                return qc_cmd_usage_error("bench", "--profile expects a count of nodes >= 1");
        } else if ((val = qc_cmd_optval(argc, argv, &i, "--profile-json", NULL, &missing)) ||
                   missing) {
            if (!val)
                return qc_cmd_usage_error("bench", "--profile-json needs a file");
            prof_json = val;
        } else if ((r = qc_preproc_parse_arg(&pp, argc, argv, &i, &err)) != 0) {
            if (r < 0)
                return qc_cmd_usage_error("bench", "%s", err.msg);
        } else if (argv[i][0] == '-') {
            return qc_cmd_usage_error("bench", "unknown option '%s'", argv[i]);
        } else {
            model = argv[i++];
        }
    }
    if (!model || !data)
        return qc_cmd_usage_error("bench", "need MODEL and --data DIR");
    qc_model *m = NULL;
    qc_exec *x = NULL;
    qc_dataset *d = NULL;
    double *t = calloc((size_t)runs, sizeof *t);
    int rc = t ? qc_model_load(&m, model, &err) : qc_errf(&err, QC_ENOMEM, "out of memory");
    qc_exec_opts xo = bench_opts;
    xo.profile = prof_top > 0 || prof_json;
    if (rc == QC_OK)
        rc = qc_exec_new(&x, m, &xo, &err);
    if (rc == QC_OK)
        rc = qc_dataset_open(&d, data, m, &pp, &err);
    int n = rc == QC_OK ? qc_dataset_count(d) : 0;
    /* samples are loaded once per pass outside the timed region */
    for (long r = -1; r < runs && rc == QC_OK; r++) {
        double total = 0;
        for (int i = 0; i < n && rc == QC_OK; i++) {
            qc_tensor *in;
            if ((rc = qc_dataset_load(d, i, &in, &err)) != QC_OK)
                break;
            double t0 = qc_now();
            rc = qc_exec_run(x, in, m->n_inputs, &err);
            total += qc_now() - t0;
        }
        if (r >= 0)
            t[r] = total / (n ? n : 1);
        else
            qc_exec_profile_reset(x);       /* the timed passes only */
    }
    double median = 0, mean = 0;
    if (rc == QC_OK) {
        for (long r = 0; r < runs; r++)
            mean += 1e3 * t[r] / (double)runs;
        qsort(t, (size_t)runs, sizeof *t, cmp_d);
        median = 1e3 * t[runs / 2];
        printf("bench: %s: median %.3f ms/sample (min %.3f, max %.3f) over %ld runs of %d "
               "samples, peak activations %.1f MiB\n", model, 1e3 * t[runs / 2], 1e3 * t[0],
               1e3 * t[runs - 1], runs, n, qc_exec_peak_bytes(x) / 1048576.0);
    }
    if (rc == QC_OK && n > 0 && qc_exec_node_seconds(x))
        rc = qc_bench_profile(model, m, qc_exec_node_seconds(x), (double)runs * n, median,
                              mean, (int)prof_top, prof_json, &err);
    if (rc == QC_OK && n > 0)
        rc = bench_throughput(model, m, x, d, n, runs, t, &err);
    if (rc == QC_OK)
        qc_blas_core_print("bench: ");
    free(t);
    qc_dataset_free(d);
    qc_exec_free(x);
    qc_model_free(m);
    return rc ? qc_cmd_fail(rc, &err) : 0;
}
