/* calibrate run: the float reference outputs of every sample, as OUTDIR/<sample>/<output>.npy. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "progress.h"
#include "qc_data.h"
#include "qc_exec.h"
#include "qc_io.h"
#include "qc_npy.h"

static const char run_usage[] =
    "usage: calibrate run MODEL.onnx --data DIR -o OUTDIR [options]\n"
    "\n"
    "Runs the float model on every sample of DIR (sorted by name) and writes each output to\n"
    "OUTDIR/<sample>/<output name>.npy ('/' in names becomes '_'; a sample file's extension\n"
    "is dropped unless two samples would then share a folder).\n"
    "\n"
    "options:\n"
    "  --data DIR            calibration samples (see 'calibrate --help')\n"
    "  -o, --output OUTDIR   created if missing; existing files are replaced\n"
    "  --limit N             only the first N samples\n"
    "  -q, --quiet           no progress line\n"
    "  --emulate-ort         QDQ models: compute the groups onnxruntime fuses into integer\n"
    "                        kernels (QLinearConv, QLinearMatMul, QLinearSigmoid,\n"
    "                        QLinearSoftmax, QLinearAdd, QLinearMul) the way those kernels\n"
    "                        round, to match onnxruntime's output\n"
    "image options:\n";

typedef struct run_ctx {
    qc_model   *m;
    qc_exec    *x;
    qc_dataset *d;
    char      **dirs;               /* per sample: OUTDIR/<sample> */
    char      **files;              /* per output: sanitized "<name>.npy" */
    int         n_samples, n_out;
} run_ctx;

/* Output folder of each sample: the name without its extension, unless that collides. */
static int sample_dirs(run_ctx *c, const char *outdir, qc_err *err)
{
    int n = c->n_samples, strip = 1;
    char **stems = calloc((size_t)n + 1, sizeof *stems);
    c->dirs = calloc((size_t)n + 1, sizeof *c->dirs);
    if (!stems || !c->dirs) {
        free(stems);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    int rc = QC_OK;
    for (int i = 0; i < n && rc == QC_OK; i++) {
        const char *name = qc_dataset_sample_name(c->d, i);
        const char *dot = strrchr(name, '.');
        size_t len = dot && dot != name ? (size_t)(dot - name) : strlen(name);
        if (!(stems[i] = strndup(name, len)))
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
    }
    /* names are sorted, but stems of "a.npy", "a.b.npy", "a.png" need not be adjacent */
    for (int i = 0; i < n && rc == QC_OK && strip; i++)
        for (int j = i + 1; j < n && strip; j++)
            strip = strcmp(stems[i], stems[j]) != 0;
    for (int i = 0; i < n && rc == QC_OK; i++) {
        char safe[512];
        qc_safe_filename(strip ? stems[i] : qc_dataset_sample_name(c->d, i), safe,
                         sizeof safe);
        if (!(c->dirs[i] = qc_path_join(outdir, safe)))
            rc = qc_errf(err, QC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        free(stems[i]);
    free(stems);
    return rc;
}

static int output_files(run_ctx *c, qc_err *err)
{
    c->files = calloc((size_t)c->n_out + 1, sizeof *c->files);
    if (!c->files)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int j = 0; j < c->n_out; j++) {
        char safe[480], name[512];
        qc_safe_filename(c->m->outputs[j].name, safe, sizeof safe);
        snprintf(name, sizeof name, "%s.npy", safe);
        /* "a/b" and "a_b" would share a file: number the later one until it is free */
        for (int k = 0, suffix = j; k < j; k++)
            if (!strcmp(c->files[k], name)) {
                snprintf(name, sizeof name, "%s_%d.npy", safe, suffix++);
                k = -1;
            }
        if (!(c->files[j] = strdup(name)))
            return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    return QC_OK;
}

static int run_sample(run_ctx *c, int i, const char *data, qc_err *err)
{
    qc_tensor *in;
    int rc = qc_dataset_load(c->d, i, &in, err);
    if (rc)
        return rc;
    rc = qc_exec_run(c->x, in, c->m->n_inputs, err);
    if (rc) {
        qc_err_prefix(err, "%s/%s", data, qc_dataset_sample_name(c->d, i));
        return rc;
    }
    if ((rc = qc_mkdir_p(c->dirs[i], err)))
        return rc;
    for (int j = 0; j < c->n_out && rc == QC_OK; j++) {
        const qc_tensor *t = qc_exec_output(c->x, j);
        char *path = qc_path_join(c->dirs[i], c->files[j]);
        if (!path)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        rc = t ? qc_npy_write(path, t, err)
               : qc_errf(err, QC_EINTERNAL, "output '%s' was not computed",
                         c->m->outputs[j].name);
        free(path);
    }
    return rc;
}

int qc_cmd_run(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *outdir = NULL;
    long limit = -1;
    int quiet = 0, emulate_ort = 0;
    qc_preproc pp;
    qc_err err = { 0 };
    qc_preproc_init(&pp);
    const qc_cmd_opt opts[] = {
        QC_OPT_STR("--data", NULL, &data),
        QC_OPT_STR("--output", "-o", &outdir),
        QC_OPT_COUNT("--limit", &limit, 0, LONG_MAX),
        QC_OPT_FLAG("-q", "--quiet", &quiet, 1),
        QC_OPT_FLAG("--emulate-ort", NULL, &emulate_ort, 1),
        { 0 },
    };
    for (int i = 1; i < argc;) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(run_usage, stdout);
            fputs(qc_preproc_usage, stdout);
            return 0;
        } else if ((r = qc_cmd_parse_opt("run", opts, NULL, 0, &pp, argc, argv, &i))) {
            if (r < 0)
                return qc_err_exit_status(QC_EUSAGE);
        } else if (model) {
            return qc_cmd_usage_error("run", "more than one model ('%s', '%s')", model, a);
        } else {
            model = a;
            i++;
        }
    }
    if (!model)
        return qc_cmd_usage_error("run", "no model given");
    if (!data)
        return qc_cmd_usage_error("run", "--data DIR is required");
    if (!outdir)
        return qc_cmd_usage_error("run", "-o OUTDIR is required");

    run_ctx c = { 0 };
    qc_progress prog = { 0 };
    double t0 = qc_now();
    int rc = qc_model_load(&c.m, model, &err);
    if (rc == QC_OK)
        rc = qc_exec_new(&c.x, c.m, &(qc_exec_opts){ .fuse = 1, .emulate_ort = emulate_ort,
                                                   .fuse_qdq = 1, .cache_const = 1 },
                         &err);
    if (rc == QC_OK)
        rc = qc_dataset_open(&c.d, data, c.m, &pp, &err);
    if (rc == QC_OK) {
        c.n_samples = qc_dataset_count(c.d);
        if (limit >= 0 && limit < c.n_samples)
            c.n_samples = (int)limit;
        c.n_out = c.m->n_outputs;
        rc = qc_mkdir_p(outdir, &err);
    }
    if (rc == QC_OK)
        rc = sample_dirs(&c, outdir, &err);
    if (rc == QC_OK)
        rc = output_files(&c, &err);
    if (rc == QC_OK) {
        qc_progress_start(&prog, "run", "samples", c.n_samples, quiet);
        for (int i = 0; i < c.n_samples && rc == QC_OK; i++) {
            rc = run_sample(&c, i, data, &err);
            qc_progress_update(&prog, i + 1);
        }
        qc_progress_end(&prog);
    }
    if (rc == QC_OK) {
        double dt = qc_now() - t0;
        printf("run: %d sample%s, %d output%s each -> %s (%.2f s)\n", c.n_samples,
               c.n_samples == 1 ? "" : "s", c.n_out, c.n_out == 1 ? "" : "s", outdir, dt);
    }
    for (int i = 0; c.dirs && i < c.n_samples; i++)
        free(c.dirs[i]);
    for (int j = 0; c.files && j < c.n_out; j++)
        free(c.files[j]);
    free(c.dirs);
    free(c.files);
    qc_dataset_free(c.d);
    qc_exec_free(c.x);
    qc_model_free(c.m);
    return rc ? qc_cmd_fail(rc, &err) : 0;
}
