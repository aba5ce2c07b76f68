/* calibrate doctor --data DIR [--eval DIR] MODEL.onnx [QUANTIZED.onnx]: why a quantized model
 * is (or will be) wrong, with the evidence and the fix. The library part is src/quant/doctor*.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "progress.h"
#include "qc_data.h"
#include "qc_doctor.h"
#include "qc_prepare.h"

static const char doc_usage[] =
    "usage: calibrate doctor --data DIR [--eval DIR] MODEL.onnx [QUANTIZED.onnx] [options]\n"
    "\n"
    "Calibrates MODEL on DIR as 'calibrate' would with the same options (or takes QUANTIZED,\n"
    "a QDQ model of MODEL), runs the quantized and the float model on held-out samples and\n"
    "prints what is wrong, worst first: severity, the tensor/node/file, what was measured and\n"
    "the fix (a flag or a data change). Checks:\n"
    "  data      NaN/Inf samples; raw 0..255 integers into a first layer that amplifies them;\n"
    "            constant inputs; calibration vs eval shift (mean moved > 0.5 std or std\n"
    "            ratio > 2); channel order (3-channel inputs: the eval colour balance,\n"
    "            channels 0 and 2 minus 1, is > 0.2 std off and 2.5x closer with 0 and 2\n"
    "            swapped); fewer than 8 samples or unstable ranges (even vs odd samples\n"
    "            differ by > 25% on most tensors)\n"
    "  ranges    zero-width ranges; outliers (max |x| > 8x the 99.99th percentile and the\n"
    "            bulk on < 16 levels); never-negative tensors quantized symmetrically;\n"
    "            saturation (> 1% of eval values outside the quantized range)\n"
    "  weights   channel imbalance (a channel > 8x the median, per-tensor scale); weight\n"
    "            scales raised so an int32 bias fits\n"
    "  model     Concat mixing ranges so an input gets < 8 levels (detection heads); NaN/Inf\n"
    "            in float execution (first node); ops fed by DequantizeLinear whose output is\n"
    "            not quantized (onnxruntime runs them in float); ops left in float; a given\n"
    "            model that rounds a decomposed normalization (LayerNorm as elementwise ops)\n"
    "            to 8 bits inside it; Concat inputs whose scale differs from the output's\n"
    "            (onnxruntime requantizes them)\n"
    "  error     per-layer SQNR; the first layer 10 dB or more below its inputs (and under\n"
    "            25 dB), and the output SQNR with it left float (--exclude its producer and\n"
    "            readers)\n"
    "  outputs   NaN/Inf or constant quantized outputs (the quantized tensor upstream);\n"
    "            output SQNR and top-1 agreement (a warning under 10 dB)\n"
    "\n"
    "options:\n"
    "  --data DIR              calibration samples (see 'calibrate --help')\n"
    "  --eval DIR              held-out samples (default: the first calibration samples,\n"
    "                          and no shift or channel-order check)\n"
    "  --limit N               only the first N calibration samples\n"
    "  --eval-limit N          samples run through both models (default 4)\n"
    "  --json FILE             findings, summary and per-layer SQNR as JSON\n"
    "  --fail-on LEVEL         exit 1 if a finding of LEVEL (error, warning, info) or worse\n"
    "                          is reported (default: exit 0 whatever the findings)\n"
    "  --all                   print every finding (default: at most 5 per check)\n"
    "  -q, --quiet             no progress line\n"
    "  --method M, --per-channel, --symmetric-activations, --percentile P and every other\n"
    "  quantization option of 'calibrate' (the model doctor builds and examines)\n"
    "  --no-prepare            skip constant and BatchNorm folding\n"
    "image options:\n";

typedef struct doc_args {
    const char *model, *quantized, *data, *eval, *json;
    long        limit, eval_limit;
    int         quiet, no_prepare, all, fail_on;
    int         matched;        /* o.per_channel set from the given model's weights */
    qc_quant_opts o;
    qc_preproc  pp;
} doc_args;

static int parse_args(doc_args *a, int argc, char **argv)
{
    const qc_cmd_opt opts[] = {
        QC_OPT_STR("--data", NULL, &a->data),
        QC_OPT_STR("--eval", NULL, &a->eval),
        QC_OPT_STR("--json", NULL, &a->json),
        QC_OPT_COUNT("--limit", &a->limit, 1, LONG_MAX),
        QC_OPT_COUNT("--eval-limit", &a->eval_limit, 1, LONG_MAX),
        QC_OPT_FLAG("--no-prepare", NULL, &a->no_prepare, 1),
        QC_OPT_FLAG("--all", NULL, &a->all, 1),
        QC_OPT_FLAG("-q", "--quiet", &a->quiet, 1),
        { 0 },
    };
    for (int i = 1; i < argc;) {
        const char *s = argv[i], *val;
        int r;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(doc_usage, stdout);
            fputs(qc_preproc_usage, stdout);
            return 1;
        } else if ((r = qc_cmd_value("doctor", argc, argv, &i, "--fail-on", NULL, &val)) != 0) {
            if (r < 0)
                return -1;
            a->fail_on = !strcmp(val, "error") ? QC_SEV_ERROR
                       : !strcmp(val, "warning") ? QC_SEV_WARNING
                       : !strcmp(val, "info") ? QC_SEV_INFO : -2;
            if (a->fail_on == -2)
                return qc_cmd_usage_error("doctor", "--fail-on '%s': expected error, warning "
                                          "or info", val), -1;
        } else if ((r = qc_cmd_parse_opt("doctor", opts, &a->o, 1, &a->pp, argc, argv, &i))) {
            if (r < 0)
                return -1;
        } else if (!a->model) {
            a->model = s, i++;
        } else if (!a->quantized) {
            a->quantized = s, i++;
        } else {
            return qc_cmd_usage_error("doctor", "more than two models ('%s', '%s', '%s')",
                                      a->model, a->quantized, s), -1;
        }
    }
    if (!a->model)
        return qc_cmd_usage_error("doctor", "no model given"), -1;
    if (!a->data)
        return qc_cmd_usage_error("doctor", "--data DIR is required"), -1;
    return 0;
}

/* Prints `text` after `head`, wrapped at 100 columns with continuation lines indented to the
 * width of `head`. */
static void print_wrapped(const char *head, const char *text)
{
    int indent = (int)strlen(head), col = indent;
    fputs(head, stdout);
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (!w)
            break;
        if (col > indent && col + 1 + (int)w > 100) {
            printf("\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            putchar(' ');
            col++;
        }
        fwrite(p, 1, w, stdout);
        col += (int)w;
        p += w;
    }
    putchar('\n');
}

static void print_report(const qc_doctor *dr, const doc_args *a, const double *t)
{
    qc_doctor_summary s;
    qc_doctor_get_summary(dr, &s);
    int counts[3] = { 0 };
    for (int i = 0; i < qc_doctor_n_findings(dr); i++)
        counts[qc_doctor_finding(dr, i)->severity]++;
    printf("doctor: %d calibration sample%s (%d skipped), %d evaluated%s\n", s.n_calib,
           s.n_calib == 1 ? "" : "s", s.n_skipped, s.n_evaluated,
           a->eval ? "" : " (from --data: no --eval)");
    printf("doctor: %.2f s (load and prepare %.2f, calibration pass %.2f, build %.2f, "
           "evaluation %.2f)\n", t[4] - t[0], t[1] - t[0], t[2] - t[1], t[3] - t[2],
           t[4] - t[3]);
    if (a->quantized)
        printf("doctor: evaluating %s (given)%s\n", a->quantized,
               !a->matched ? "" : a->o.per_channel ? "; weights per channel as in it"
                                                   : "; weights per tensor as in it");
    else if (s.quantized)
        printf("doctor: built with the options given: %d nodes quantized, %d left in float\n",
               s.n_quantized_nodes, s.n_float_nodes);
    printf("doctor: %d error%s, %d warning%s, %d info\n", counts[2], counts[2] == 1 ? "" : "s",
           counts[1], counts[1] == 1 ? "" : "s", counts[0]);
    int shown = 0;
    for (int i = 0; i < qc_doctor_n_findings(dr); i++) {
        const qc_finding *f = qc_doctor_finding(dr, i);
        int same = 0, more = 0;
        for (int k = 0; k < i; k++)
            same += !strcmp(qc_doctor_finding(dr, k)->check, f->check);
        if (!a->all && same >= 5) {
            if (same == 5) {
                for (int k = i; k < qc_doctor_n_findings(dr); k++)
                    more += !strcmp(qc_doctor_finding(dr, k)->check, f->check);
                printf("    ... %d more %s finding%s (--all or --json)\n", more, f->check,
                       more == 1 ? "" : "s");
            }
            continue;
        }
        char head[256];
        snprintf(head, sizeof head, "%2d. %-7s %s: ", ++shown, qc_doctor_severity_name(
                 f->severity), f->check);
        print_wrapped(head, f->subject);
        print_wrapped("    evidence: ", f->evidence);
        if (f->fix[0])
            print_wrapped("    fix:      ", f->fix);
    }
}

/* Feeds the eval samples (the calibration set without --eval) to the doctor: every sample's
 * input statistics once, the first `limit` through both models on every pass. */
static int eval_passes(qc_doctor *dr, qc_dataset *de, int n_ev, int limit, int stats,
                       const char *dir, int n_inputs, qc_err *err)
{
    int rc = 0;
    for (int pass = 0;; pass++) {
        int ran = 0;
        if (pass > 0)
            limit = rc;
        for (int i = 0; i < n_ev; i++) {
            qc_tensor *in;
            if (pass > 0 && ran >= limit)
                break;
            if (!stats && ran >= limit)
                break;
            if ((rc = qc_dataset_load(de, i, &in, err)) != QC_OK)
                return rc;
            if (pass == 0 && stats)
                qc_doctor_eval_input(dr, in, n_inputs);
            if (ran < limit) {
                rc = qc_doctor_eval_sample(dr, in, n_inputs, err);
                if (rc < 0) {
                    qc_err_prefix(err, "%s/%s", dir, qc_dataset_sample_name(de, i));
                    return rc;
                }
                ran += rc == QC_OK;
            }
        }
        if ((rc = qc_doctor_next_pass(dr, err)) <= 0)
            return rc;
    }
}

int qc_cmd_doctor(int argc, char **argv)
{
    doc_args a = { .limit = -1, .eval_limit = 4, .fail_on = -1 };
    qc_err err = { 0 };
    qc_quant_opts_default(&a.o);
    qc_preproc_init(&a.pp);
    int pr = parse_args(&a, argc, argv);
    if (pr)
        return pr > 0 ? 0 : 2;
    a.pp.allow_nonfinite = 1;           /* NaN/Inf samples are findings, not errors */

    qc_model *m = NULL, *prep = NULL, *given = NULL;
    qc_dataset *d = NULL, *de = NULL;
    qc_doctor *dr = NULL;
    qc_progress prog = { 0 };
    int n = 0;
    double t[5] = { qc_now(), 0, 0, 0, 0 };
    int rc = qc_model_load(&m, a.model, &err);
    if (rc == QC_OK && !a.no_prepare)
        rc = qc_prepare(m, &prep, NULL, &err);
    const qc_model *work = prep ? prep : m;
    if (rc == QC_OK && a.quantized)
        rc = qc_model_load(&given, a.quantized, &err);
    /* the weight checks look at the given model's weights as it quantized them */
    if (rc == QC_OK && given)
        a.matched = qc_doctor_match_given(&a.o, given);
    if (rc == QC_OK)
        rc = qc_dataset_open(&d, a.data, work, &a.pp, &err);
    if (rc == QC_OK && a.eval)
        rc = qc_dataset_open(&de, a.eval, work, &a.pp, &err);
    if (rc == QC_OK) {
        qc_doctor_opts o = { .q = a.o };
        n = qc_dataset_count(d);
        if (a.limit > 0 && a.limit < n)
            n = (int)a.limit;
        o.n_calib = n;
        rc = qc_doctor_new(&dr, work, &o, &err);
    }
    t[1] = qc_now();
    if (rc == QC_OK)
        qc_progress_start(&prog, "doctor", "samples", n, a.quiet);
    for (int i = 0; i < n && rc == QC_OK; i++) {
        qc_tensor *in;
        if ((rc = qc_dataset_load(d, i, &in, &err)) == QC_OK) {
            char file[512];
            snprintf(file, sizeof file, "%s/%s", a.data, qc_dataset_sample_name(d, i));
            rc = qc_doctor_calib_sample(dr, file, in, work->n_inputs, &err);
            rc = rc == 1 ? QC_OK : rc;
        }
        qc_progress_update(&prog, i + 1);
    }
    qc_progress_end(&prog);
    t[2] = qc_now();
    if (rc == QC_OK)
        rc = qc_doctor_build(dr, given, &err);
    t[3] = qc_now();
    if (rc == QC_OK) {
        qc_dataset *src = de ? de : d;
        int n_ev = de ? qc_dataset_count(de) : n;
        rc = eval_passes(dr, src, n_ev, (int)a.eval_limit, de != NULL, de ? a.eval : a.data,
                         work->n_inputs, &err);
    }
    if (rc == QC_OK)
        rc = qc_doctor_finish(dr, &err);
    t[4] = qc_now();
    if (rc == QC_OK && a.json)
        rc = qc_doctor_write_json(dr, a.json, &err);
    int worst = -1;
    if (rc == QC_OK) {
        print_report(dr, &a, t);
        for (int i = 0; i < qc_doctor_n_findings(dr); i++)
            if (qc_doctor_finding(dr, i)->severity > worst)
                worst = qc_doctor_finding(dr, i)->severity;
    }
    qc_doctor_free(dr);
    qc_dataset_free(d);
    qc_dataset_free(de);
    qc_model_free(given);
    qc_model_free(prep);
    qc_model_free(m);
    if (rc)
        return qc_cmd_fail(rc, &err);
    return a.fail_on >= 0 && worst >= a.fail_on ? 1 : 0;
}
