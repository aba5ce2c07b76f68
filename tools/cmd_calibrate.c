/* calibrate --data DIR MODEL.onnx [-o OUT.onnx]: prepare, observe, quantize, write. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "progress.h"
#include "qc_biascorr.h"
#include "qc_compare.h"
#include "qc_data.h"
#include "qc_ema_log.h"
#include "qc_params.h"
#include "qc_pass.h"
#include "qc_prepare.h"
#include "qc_quant.h"

static const char cal_usage[] =
    "usage: calibrate --data DIR MODEL.onnx [-o OUT.onnx] [options]\n"
    "\n"
    "Runs MODEL in float32 on the samples in DIR, observes every tensor to be quantized and\n"
    "writes a QDQ model that ONNX Runtime runs with integer kernels (default OUT:\n"
    "MODEL.int8.onnx beside the input).\n"
    "\n"
    "quantization:\n"
    "  --method M              minmax (default), ema, percentile, mse, entropy, or auto:\n"
    "                          each activation gets the range (of those methods') with the\n"
    "                          least expected quantization error on its own histogram, each\n"
    "                          weight per channel or per tensor by its error ('calibrate\n"
    "                          compare' confirms it on the output)\n"
    "  --per-channel           weights per output channel (Conv axis 0, ConvTranspose 1,\n"
    "                          Gemm/MatMul the output column)\n"
    "  --symmetric-activations activations symmetric (default asymmetric)\n"
    "  --asymmetric-weights    weights asymmetric (default symmetric int8 [-127,127])\n"
    "  --symmetric-weights     (default)\n"
    "  --activation-type T     uint8 (default), int8, int16\n"
    "  --reduce-range          7-bit ranges (x86 without VNNI)\n"
    "  --no-pair-guard         int8 weights without the pair guard (by default no two\n"
    "                          weights onnxruntime's x86 kernels without VNNI add in 16 bits\n"
    "                          exceed 128 together, so those kernels cannot saturate)\n"
    "  --no-concat-share       each Concat input keeps its own range (default: a quantized\n"
    "                          Concat's inputs take its output's, so onnxruntime copies\n"
    "                          them instead of requantizing; an input read elsewhere too\n"
    "                          keeps its own if the shared range is over 4x as wide)\n"
    "  --bias float|int32      int32 biases (default) or keep them float\n"
    "  --percentile P          for --method percentile (default 99.999)\n"
    "  --ema-constant C        for --method ema (default 0.01)\n"
    "  --bins N                histogram bins (default 2048)\n"
    "  --exclude N1,N2         node names left in float\n"
    "  --op-types T1,T2        op types to quantize (default: Conv ConvTranspose Gemm MatMul\n"
    "                          Add Mul Concat pooling Resize Sigmoid Softmax Relu Clip and\n"
    "                          data movement ops)\n"
    "  --no-prepare            skip constant and BatchNorm folding\n"
    "  --no-bias-correction    keep the biases as quantized (default: bias correction: move\n"
    "                          each Conv/Gemm bias by the mean per-channel error of its\n"
    "                          output, quantized vs float, on the first --bias-samples samples)\n"
    "  --bias-samples N        samples bias correction measures (default 16)\n"
    "  --bias-verify N         keep the correction only if the output SQNR against the float\n"
    "                          model rises by " QC_BIASCORR_MARGIN_STR " dB or more on the first\n"
    "                          N of those (default 8; 0: always keep)\n"
    "data and output:\n"
    "  --data DIR              calibration samples (see 'calibrate --help')\n"
    "  --limit N               only the first N samples\n"
    "  --strict                a sample with NaN/Inf is an error (default: skipped, warned)\n"
    "  -o, --output OUT        quantized model path\n"
    "  --params-out FILE.json  every tensor's observed range, chosen range, scale, zero point\n"
    "  --params-in FILE.json   re-apply saved activation ranges (no --data needed)\n"
    "  --trt-cache FILE        also write a TensorRT calibration cache\n"
    "  --ort-overrides FILE    also write onnxruntime TensorQuantOverrides JSON\n"
    "  -q, --quiet             no progress line and no summary\n"
    "image options:\n";

typedef struct cal_args {
    const char *model, *data, *out, *params_out, *params_in, *trt_cache, *ort_overrides;
    long        limit;
    int         quiet, strict, no_prepare;
    int         bias_corr;      /* -1: default (on when there is data) */
    long        bias_samples, bias_verify;
    qc_quant_opts o;
    qc_preproc  pp;
} cal_args;

static int parse_args(cal_args *a, int argc, char **argv)
{
    const qc_cmd_opt opts[] = {
        QC_OPT_STR("--data", NULL, &a->data),
        QC_OPT_STR("--output", "-o", &a->out),
        QC_OPT_COUNT("--limit", &a->limit, 1, LONG_MAX),
        QC_OPT_STR("--params-out", NULL, &a->params_out),
        QC_OPT_STR("--params-in", NULL, &a->params_in),
        QC_OPT_STR("--trt-cache", NULL, &a->trt_cache),
        QC_OPT_STR("--ort-overrides", NULL, &a->ort_overrides),
        QC_OPT_FLAG("--strict", NULL, &a->strict, 1),
        QC_OPT_FLAG("--no-prepare", NULL, &a->no_prepare, 1),
        QC_OPT_FLAG("--bias-correction", NULL, &a->bias_corr, 1),
        QC_OPT_FLAG("--no-bias-correction", NULL, &a->bias_corr, 0),
        QC_OPT_COUNT("--bias-verify", &a->bias_verify, 0, 1000000),
        QC_OPT_COUNT("--bias-samples", &a->bias_samples, 1, 1000000),
        QC_OPT_FLAG("-q", "--quiet", &a->quiet, 1),
        { 0 },
    };
    for (int i = 1; i < argc;) {
        const char *s = argv[i];
        int r;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(cal_usage, stdout);
            fputs(qc_preproc_usage, stdout);
            return 1;
        } else if ((r = qc_cmd_parse_opt(NULL, opts, &a->o, 1, &a->pp, argc, argv, &i))) {
            if (r < 0)
                return -1;
        } else if (a->model) {
            return qc_cmd_usage_error(NULL, "more than one model ('%s', '%s')", a->model, s),
                   -1;
        } else {
            a->model = s;
            i++;
        }
    }
    if (!a->model)
        return qc_cmd_usage_error(NULL, "no model given"), -1;
    if (!a->data && !a->params_in)
        return qc_cmd_usage_error(NULL, "--data DIR is required (or --params-in FILE)"), -1;
    if (a->bias_corr == 1 && !a->data)
        return qc_cmd_usage_error(NULL, "--bias-correction needs --data DIR"), -1;
    if (a->bias_corr < 0)
        a->bias_corr = a->data != NULL;
    return 0;
}

static char *default_output(const char *model)
{
    size_t n = strlen(model);
    const char *ext = n > 5 && !strcmp(model + n - 5, ".onnx") ? model + n - 5 : model + n;
    char *out = malloc(n + 16);
    if (out)
        snprintf(out, n + 16, "%.*s.int8.onnx", (int)(ext - model), model);
    return out;
}

/* Bias correction on the first --bias-samples samples (at most --limit). */
static void bias_opts(const cal_args *a, qc_biascorr_opts *bo)
{
    qc_biascorr_opts_default(bo);
    if (a->bias_samples > 0)
        bo->n_samples = (int)a->bias_samples;
    if (a->bias_verify >= 0)
        bo->n_verify = (int)a->bias_verify;
    if (a->limit > 0 && a->limit < bo->n_samples)
        bo->n_samples = (int)a->limit;
}

static int bias_correct(const cal_args *a, const qc_model *work, qc_dataset *d,
                        const qc_model *qm, qc_model **out, qc_biascorr_stats *bst, qc_err *err)
{
    qc_biascorr_opts bo;
    bias_opts(a, &bo);
    return qc_bias_correct(work, qm, d, &bo, out, bst, err);
}

/* Whether onnxruntime's integer kernels on this CPU add products in 32 bits (VNNI), where
 * the pair guard protects nothing (it still does on the CPUs the model may be deployed to). */
static int host_has_vnni(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
#else
    return 0;
#endif
}

static void print_bias_summary(const qc_biascorr_stats *b, size_t stash_bytes)
{
    if (!b->n_samples) {
        printf("calibrate: bias correction: no Conv/ConvTranspose/Gemm bias to correct\n");
        return;
    }
    printf("calibrate: bias correction: %d biases, mean shift %.3g (measured on %d samples",
           b->n_nodes, b->mean_abs, b->n_samples);
    if (b->n_stashed)
        printf(", %d with the float values the calibration pass kept, %.*f MB", b->n_stashed,
               stash_bytes < 10000000 ? 2 : 0, stash_bytes / 1e6);
    printf(")");
    if (b->n_verify && b->applied)
        printf("; output SQNR %.2f -> %.2f dB on %d of them: kept", b->sqnr_before,
               b->sqnr_after, b->n_verify);
    else if (b->n_verify)
        printf("; output SQNR %.2f -> %.2f dB on %d of them: not kept (%sbiases left as "
               "quantized)", b->sqnr_before, b->sqnr_after, b->n_verify,
               b->sqnr_after > b->sqnr_before ? "a gain under " QC_BIASCORR_MARGIN_STR " dB; "
                                              : "");
    printf("\n");
}

/* --method auto: the compare machinery with only the auto candidate (one float pass). */
static int calibrate_auto(const cal_args *a, const char *out_path, qc_err *err)
{
    qc_model *m = NULL, *prep = NULL;
    qc_dataset *d = NULL;
    qc_compare *c = NULL;
    qc_cand *cands = NULL;
    qc_progress prog = { 0 };
    const qc_model *qm = NULL;
    qc_compare_grid g = { .per_channel = QC_CMP_YES,
                          .symmetric_act = a->o.symmetric_act ? QC_CMP_YES : QC_CMP_NO,
                          .auto_mode = QC_AUTO_ONLY };
    int n_cands = 0, used = 0, skipped = 0, n = 0;
    double t0 = qc_now();
    if (a->params_in)
        return qc_errf(err, QC_EUSAGE, "--method auto chooses ranges from histograms: give "
                       "--data, not --params-in");
    int rc = qc_compare_make_grid(&a->o, &g, &cands, &n_cands, err);
    if (rc == QC_OK)
        rc = qc_model_load(&m, a->model, err);
    if (rc == QC_OK && !a->no_prepare)
        rc = qc_prepare(m, &prep, NULL, err);
    const qc_model *work = prep ? prep : m;
    if (rc == QC_OK)
        rc = qc_dataset_open(&d, a->data, work, &a->pp, err);
    if (rc == QC_OK)
        rc = qc_compare_new(&c, work, cands, n_cands, err);
    if (rc == QC_OK) {
        n = qc_dataset_count(d);
        if (a->limit > 0 && a->limit < n)
            n = (int)a->limit;
        qc_progress_start(&prog, "calibrate", "samples", n, a->quiet);
    }
    if (rc == QC_OK)
        rc = qc_cmd_compare_pass(c, d, a->data, a->strict, NULL, n, work->n_inputs, &prog,
                                 &used, &skipped, err);
    qc_progress_end(&prog);
    if (rc == QC_OK && used == 0)
        rc = qc_errf(err, QC_EINPUT, "%s: no usable calibration sample", a->data);
    if (rc == QC_OK)
        rc = qc_compare_build_one(c, 0, &qm, err);
    qc_model *bcm = NULL;
    qc_biascorr_stats bst = { 0 };
    if (rc == QC_OK && a->bias_corr &&
        (rc = bias_correct(a, work, d, qm, &bcm, &bst, err)) == QC_OK && bcm)
        qm = bcm;
    if (rc == QC_OK)
        rc = qc_model_save(qm, out_path, 0, err);
    const qc_quantizer *q = rc == QC_OK ? qc_compare_quantizer(c, 0) : NULL;
    if (rc == QC_OK && a->params_out)
        rc = qc_params_write_json(q, a->params_out, err);
    if (rc == QC_OK && a->trt_cache)
        rc = qc_params_write_trt_cache(q, a->trt_cache, err);
    if (rc == QC_OK && a->ort_overrides)
        rc = qc_params_write_ort_overrides(q, a->ort_overrides, err);
    if (rc == QC_OK && !a->quiet) {
        qc_auto_info ai;
        qc_compare_auto_info(c, 0, &ai);
        printf("calibrate: %d sample%s (%d skipped), method auto; activation ranges:", used,
               used == 1 ? "" : "s", skipped);
        for (int k = 0; k < ai.n_options; k++)
            if (ai.option_tensors[k])
                printf(" %s x%d", ai.options[k].o.method[0] == 'p' ? ai.options[k].name
                                                                   : ai.options[k].o.method,
                       ai.option_tensors[k]);
        printf("; %d of %d weights per tensor\n", ai.n_weights_per_tensor, ai.n_weights);
        printf("calibrate: %d nodes quantized\n", qc_quantizer_n_quantized_nodes(q));
        if (a->bias_corr)
            print_bias_summary(&bst, 0);
        printf("calibrate: wrote %s (%.2f s)\n", out_path, qc_now() - t0);
    }
    qc_model_free(bcm);
    qc_compare_free(c);
    qc_dataset_free(d);
    qc_model_free(prep);
    qc_model_free(m);
    free(cands);
    return rc;
}

/* One shard of the observation pass: its own executor and observers (shard 0 uses the
 * caller's); its view of the data set is the feed's. */
typedef struct cal_shard {
    qc_exec      *x;
    qc_quantizer *q;
    qc_bc_stash  *stash;            /* bias correction's float values, or NULL */
    int           sample;           /* the sample running */
} cal_shard;

typedef struct cal_pass {
    const qc_model *work;
    cal_shard      *sh;
    qc_cmd_feed     feed;
    qc_ema_log     *log;            /* ema on several shards, else NULL */
} cal_pass;

/* The stash's byte budget: QC_BC_STASH_BYTES (tests: 0, or one too small for every bias
 * sample, keeps nothing; a large one lets ddddocr's fit), else QC_BC_STASH_BUDGET. */
static size_t stash_budget(void)
{
    const char *e = getenv("QC_BC_STASH_BYTES");
    char *end;
    unsigned long long v = e && *e ? strtoull(e, &end, 10) : 0;
    return e && *e && !*end ? (size_t)v : QC_BC_STASH_BUDGET;
}

/* The pass executor's hook: the stash, then the observers. */
static int cal_hook(void *user, const qc_node *node, int node_index,
                    const qc_tensor *const *outs, int n_outs, qc_err *err)
{
    cal_shard *s = user;
    if (s->stash)
        qc_bc_stash_node(s->stash, s->sample, node_index, outs, n_outs);
    return qc_quantizer_observe(s->q, node, node_index, outs, n_outs, err);
}

/* A pass executor for q's observers: what they read, and the stash's values, hooked (not
 * fused away). */
static int pass_exec_new(qc_quantizer *q, const qc_model *work, const qc_bc_stash *stash,
                         qc_exec **x, qc_err *err)
{
    qc_exec_opts xo = { 0 };
    int rc = qc_quantizer_pass_opts(q, &xo, err);
    const char *const *sn = NULL;
    int n_sn = stash ? qc_bc_stash_names(stash, &sn) : 0;
    const char **names = rc == QC_OK ? malloc(((size_t)xo.n_hooked + n_sn + 1) * sizeof *names)
                                     : NULL;
    if (rc == QC_OK && !names)
        rc = qc_errf(err, QC_ENOMEM, "out of memory");
    if (rc == QC_OK) {
        for (int i = 0; i < xo.n_hooked; i++)
            names[i] = xo.hooked[i];
        for (int i = 0; i < n_sn; i++)
            names[xo.n_hooked + i] = sn[i];
        xo.hooked = names;
        xo.n_hooked += n_sn;
        rc = qc_exec_new(x, work, &xo, err);    /* reads the names only here */
    }
    free(names);
    return rc;
}

static int pass_sample(void *user, int shard, int i, qc_err *err)
{
    cal_pass *p = user;
    cal_shard *s = &p->sh[shard];
    qc_tensor *in;
    int rc = p->log ? qc_ema_log_begin(p->log, shard, i, err) : QC_OK;
    if (rc != QC_OK)
        return rc;
    s->sample = i;
    rc = qc_cmd_feed_load(&p->feed, shard, i, &in, err);
    if (rc == QC_OK && (rc = qc_quantizer_observe_inputs(s->q, in, p->work->n_inputs, err)) ==
        QC_OK && (rc = qc_exec_run(s->x, in, p->work->n_inputs, err)) != QC_OK)
        qc_cmd_feed_failed(&p->feed, i, err);
    if (rc == QC_OK && s->stash)
        qc_bc_stash_done(s->stash, i, s->x);
    if (p->log)
        qc_ema_log_end(p->log, shard, i, rc >= 0);
    return rc;
}

/* ema: the shards' observers record, and the log folds the records into q's in sample order
 * (qc_ema_log.h), so the result is that of a serial pass. */
static int ema_log_setup(cal_pass *p, qc_quantizer *q, int n, int jobs, qc_err *err)
{
    int n_t = qc_quantizer_n_tensors(q);
    qc_observer **obs = calloc((size_t)n_t + 1, sizeof *obs);
    int rc = obs ? QC_OK : qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; rc == QC_OK && i < n_t; i++)
        obs[i] = qc_quantizer_observer(q, i);
    if (rc == QC_OK)
        rc = qc_ema_log_new(&p->log, obs, n_t, n, jobs, 0, err);
    for (int s = 0; rc == QC_OK && s < jobs; s++) {
        for (int i = 0; i < n_t; i++)
            obs[i] = qc_quantizer_observer(p->sh[s].q, i);
        rc = qc_ema_log_attach(p->log, s, obs, err);
    }
    free(obs);
    return rc;
}

static void pass_after(void *user, int i, int status, int n_finished)
{
    qc_cmd_feed_after(&((cal_pass *)user)->feed, i, status, n_finished);
}

/* Feeds samples 0..n-1 to q. Whole samples run side by side, one shard per thread (each
 * single-threaded), and the shards' observers are merged into q: exact for every method (ema
 * through qc_ema_log.h; --params-in runs as one shard). */
static int observe_pass(const cal_args *a, const qc_model *work, qc_dataset *d, qc_exec *x,
                        qc_quantizer *q, qc_bc_stash *stash, int n, qc_progress *prog,
                        int *used, int *skipped, qc_err *err)
{
    int jobs = qc_pass_default_jobs();
    if (a->params_in)
        jobs = 1;
    if (jobs > n)
        jobs = n > 0 ? n : 1;
    cal_pass p = { work, calloc((size_t)jobs, sizeof *p.sh), { 0 }, NULL };
    cal_shard *sh = p.sh;
    int rc = sh ? qc_cmd_feed_open(&p.feed, d, jobs, a->data, a->strict, work->n_inputs, NULL,
                                   n, prog, err)
                : qc_errf(err, QC_ENOMEM, "out of memory");
    if (rc == QC_OK)
        sh[0] = (cal_shard){ x, q, stash, -1 };
    for (int s = 1; s < jobs && rc == QC_OK; s++) {
        sh[s].stash = stash;
        if ((rc = qc_quantizer_new(&sh[s].q, work, &a->o, err)) == QC_OK)
            rc = pass_exec_new(sh[s].q, work, stash, &sh[s].x, err);
    }
    for (int s = 0; s < jobs && rc == QC_OK; s++)
        qc_exec_set_hook(sh[s].x, cal_hook, &sh[s]);
    qc_pass_ops ops = { &p, pass_sample, pass_after };
    if (rc == QC_OK && jobs > 1 && !strcmp(a->o.method, "ema"))
        rc = ema_log_setup(&p, q, n, jobs, err);
    if (rc == QC_OK)
        rc = qc_pass_run(&ops, n, jobs, used, skipped, err);
    if (rc == QC_OK && p.log)
        rc = qc_ema_log_finish(p.log, err);
    qc_ema_log_free(p.log);         /* detaches the observers before they are merged, freed */
    for (int s = 1; s < jobs && sh; s++) {
        if (rc == QC_OK)
            rc = qc_quantizer_merge(q, sh[s].q, err);
        qc_quantizer_free(sh[s].q);
        qc_exec_free(sh[s].x);
    }
    qc_cmd_feed_close(&p.feed);
    free(sh);
    return rc;
}

int qc_cmd_calibrate(int argc, char **argv)
{
    cal_args a = { .limit = -1, .bias_corr = -1, .bias_verify = -1 };
    qc_err err = { 0 };
    qc_quant_opts_default(&a.o);
    qc_preproc_init(&a.pp);
    int pr = parse_args(&a, argc, argv);
    if (pr)
        return pr > 0 ? 0 : 2;
    a.pp.allow_nonfinite = 1;          /* checked here: skipped with a warning, or --strict */

    qc_model *m = NULL, *prep = NULL, *qm = NULL;
    qc_exec *x = NULL;
    qc_dataset *d = NULL;
    qc_quantizer *q = NULL;
    qc_prep_report rep = { 0 };
    qc_progress prog = { 0 };
    char *out = a.out ? NULL : default_output(a.model);
    const char *out_path = a.out ? a.out : out;
    double t0 = qc_now(), t_pass = 0;
    int used = 0, skipped = 0, n = 0;
    if (out_path && !strcmp(a.o.method, "auto")) {
        int rc = calibrate_auto(&a, out_path, &err);
        free(out);
        return rc ? qc_cmd_fail(rc, &err) : 0;
    }
    int rc = out_path ? qc_model_load(&m, a.model, &err) : qc_errf(&err, QC_ENOMEM, "no memory");
    if (rc == QC_OK && !a.no_prepare)
        rc = qc_prepare(m, &prep, &rep, &err);
    const qc_model *work = prep ? prep : m;
    if (rc == QC_OK)
        rc = qc_quantizer_new(&q, work, &a.o, &err);
    int n_applied = 0, n_axis = 0;
    if (rc == QC_OK && a.params_in)
        rc = qc_params_read_json(q, a.params_in, &n_applied, &n_axis, &err);
    if (rc == QC_OK && n_axis > 0 && !a.o.per_channel)
        fprintf(stderr, "calibrate: warning: %s holds %d weight%s per channel; without "
                "--per-channel they are quantized per tensor\n", a.params_in, n_axis,
                n_axis == 1 ? "" : "s");
    /* bias correction's float values, kept by the pass (not with --params-in: one shard,
     * observing nothing, and a float run of its own) */
    qc_bc_stash *stash = NULL;
    qc_biascorr_opts bo;
    bias_opts(&a, &bo);
    size_t budget = stash_budget();
    if (rc == QC_OK && a.bias_corr && !a.params_in && budget > 0)
        rc = qc_bc_stash_new(&stash, work, bo.n_samples, budget, &err);
    bo.stash = stash;               /* bias correction reads what the pass keeps in it */
    qc_exec_opts xo = { 0 };
    if (rc == QC_OK && !a.params_in)
        rc = pass_exec_new(q, work, stash, &x, &err);   /* the shards': observe_pass */
    else if (rc == QC_OK)
        rc = qc_exec_new(&x, work, &xo, &err);
    if (rc == QC_OK && a.data)
        rc = qc_dataset_open(&d, a.data, work, &a.pp, &err);
    if (rc == QC_OK && d) {
        n = qc_dataset_count(d);
        if (a.limit > 0 && a.limit < n)
            n = (int)a.limit;
        qc_progress_start(&prog, "calibrate", "samples", n, a.quiet);
        t_pass = qc_now();
        rc = observe_pass(&a, work, d, x, q, stash, n, &prog, &used, &skipped, &err);
        t_pass = qc_now() - t_pass;
        qc_progress_end(&prog);
        qc_exec_free(x);            /* its buffers are not needed for what follows */
        x = NULL;
    }
    if (rc == QC_OK && used == 0 && !a.params_in)
        rc = qc_errf(&err, QC_EINPUT, "%s: no usable calibration sample", a.data);
    if (rc == QC_OK)
        rc = qc_quantizer_build(q, &qm, &err);
    qc_biascorr_stats bst = { 0 };
    qc_model *bcm = NULL;
    double t_bc = qc_now();
    if (rc == QC_OK && a.bias_corr &&
        (rc = qc_bias_correct(work, qm, d, &bo, &bcm, &bst, &err)) == QC_OK && bcm) {
        qc_model_free(qm);
        qm = bcm;
    }
    t_bc = qc_now() - t_bc;
    size_t stash_bytes = qc_bc_stash_bytes(stash);
    qc_bc_stash_free(stash);
    stash = NULL;
    if (rc == QC_OK)
        rc = qc_model_save(qm, out_path, 0, &err);
    if (rc == QC_OK && a.params_out)
        rc = qc_params_write_json(q, a.params_out, &err);
    if (rc == QC_OK && a.trt_cache)
        rc = qc_params_write_trt_cache(q, a.trt_cache, &err);
    if (rc == QC_OK && a.ort_overrides)
        rc = qc_params_write_ort_overrides(q, a.ort_overrides, &err);
    if (rc == QC_OK && !a.quiet) {
        int n_t = 0, n_float = 0;
        qc_qtensor_info info;
        int w_scales = 0, w_moved = 0;
        for (int i = 0; i < qc_quantizer_n_tensors(q); i++)
            if (qc_quantizer_tensor(q, i, &info)) {
                n_t++;
                if (!strcmp(info.kind, "weight") && info.dtype == QC_I8)
                    w_scales += info.n_channels, w_moved += info.guard_moved;
            }
        const char *nm, *op, *why;
        while (qc_quantizer_float_node(q, n_float, &nm, &op, &why))
            n_float++;
        if (a.params_in)
            printf("calibrate: %d activation ranges from %s\n", n_applied, a.params_in);
        printf("calibrate: %d sample%s (%d skipped), method %s%s; folded %d constant and %d "
               "BatchNorm nodes", used, used == 1 ? "" : "s", skipped, a.o.method,
               a.o.per_channel ? ", per-channel weights" : "", rep.n_folded_nodes,
               rep.n_bn_folded);
        if (rep.n_if_inlined)
            printf("; %d If node%s with a constant condition replaced by its branch",
                   rep.n_if_inlined, rep.n_if_inlined == 1 ? "" : "s");
        if (rep.n_merged)
            printf("; merged %d duplicate node%s", rep.n_merged, rep.n_merged == 1 ? "" : "s");
        printf("\n");
        printf("calibrate: %d tensors quantized, %d nodes quantized, %d left in float\n", n_t,
               qc_quantizer_n_quantized_nodes(q), n_float);
        /* the float nodes grouped by op and reason, in order of first appearance */
        qc_float_group *g = NULL;
        int n_g = qc_quantizer_float_groups(q, &g);
        for (int k = 0; k < n_g; k++)
            printf("  float: %-20s x%-4d %s\n", g[k].op_type, g[k].count, g[k].why);
        free(g);
        if (qc_quant_pair_guarded(q) && w_scales > 0)
            printf("calibrate: pair guard: %d of %d weight scales widened (int8 weight pairs "
                   "onnxruntime's x86 kernels without VNNI add in 16 bits; --no-pair-guard: "
                   "off%s)\n", w_moved, w_scales,
                   host_has_vnni() ? "; this CPU has VNNI and does not need it" : "");
        int c_shared, c_own;
        qc_quant_concat_counts(q, &c_shared, &c_own);
        if (c_shared)   /* an own range is counted only in a group that shares */
            printf("calibrate: concat scales: %d Concat inputs and outputs share their group's "
                   "range (onnxruntime copies instead of requantizing)", c_shared);
        if (c_own)
            printf("; %d kept their own (read elsewhere, the shared range over 4x as wide)",
                   c_own);
        if (c_shared)
            printf("\n");
        if (a.bias_corr)
            print_bias_summary(&bst, stash_bytes);
        printf("calibrate: wrote %s (%.2f s", out_path, qc_now() - t0);
        if (d)
            printf(": calibration pass %.2f", t_pass);
        if (a.bias_corr)
            printf(", bias correction %.2f", t_bc);
        printf(")\n");
    }
    qc_bc_stash_free(stash);
    qc_quantizer_free(q);
    qc_dataset_free(d);
    qc_exec_free(x);
    qc_model_free(qm);
    qc_model_free(prep);
    qc_model_free(m);
    free(out);
    return rc ? qc_cmd_fail(rc, &err) : 0;
}
