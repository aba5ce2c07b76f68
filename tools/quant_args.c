/* What the commands share: option parsing (a table of string, count and flag options, the
 * options that set qc_quant_opts fields, the image options, the usage errors), and how a
 * calibration sample is loaded (NaN/Inf: skipped with a warning, or --strict), and the
 * sample-parallel calibration pass of the commands built on qc_compare. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "progress.h"
#include "qc_compare.h"
#include "qc_data.h"
#include "qc_pass.h"

static int read_sample(qc_dataset *d, int i, int n_inputs, const char *dir, int strict,
                       qc_tensor **in, int64_t *bad, qc_err *err)
{
    int rc = qc_dataset_load(d, i, in, err);
    if (rc != QC_OK)
        return rc;
    *bad = qc_tensors_nonfinite(*in, n_inputs);
    if (!*bad)
        return QC_OK;
    if (strict)
        return qc_errf(err, QC_EINPUT, "%s/%s: %lld NaN/Inf values (--strict)", dir,
                       qc_dataset_sample_name(d, i), (long long)*bad);
    return 1;
}

int qc_cmd_feed_open(qc_cmd_feed *f, qc_dataset *d, int jobs, const char *dir, int strict,
                     int n_inputs, const int *idx, int n, qc_progress *prog, qc_err *err)
{
    *f = (qc_cmd_feed){ calloc((size_t)jobs + 1, sizeof *f->d), jobs, dir, strict, n_inputs,
                        idx, calloc((size_t)n + 1, sizeof *f->bad), prog };
    if (!f->d || !f->bad)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    f->d[0] = d;
    for (int s = 1; s < jobs; s++) {
        int rc = qc_dataset_clone(d, &f->d[s], err);
        if (rc != QC_OK)
            return rc;
    }
    return QC_OK;
}

void qc_cmd_feed_close(qc_cmd_feed *f)
{
    for (int s = 1; f->d && s < f->jobs; s++)
        qc_dataset_free(f->d[s]);
    free(f->d);
    free(f->bad);
    memset(f, 0, sizeof *f);
}

static int feed_index(const qc_cmd_feed *f, int i)
{
    return f->idx ? f->idx[i] : i;
}

int qc_cmd_feed_load(void *user, int shard, int i, qc_tensor **in, qc_err *err)
{
    qc_cmd_feed *f = user;
    return read_sample(f->d[shard], feed_index(f, i), f->n_inputs, f->dir, f->strict, in,
                       &f->bad[i], err);
}

void qc_cmd_feed_failed(void *user, int i, qc_err *err)
{
    qc_cmd_feed *f = user;
    qc_err_prefix(err, "%s/%s", f->dir, qc_dataset_sample_name(f->d[0], feed_index(f, i)));
}

void qc_cmd_feed_after(void *user, int i, int status, int n_finished)
{
    qc_cmd_feed *f = user;
    if (status == 1) {
        qc_progress_end(f->prog);
        fprintf(stderr, "calibrate: warning: %s/%s: %lld NaN/Inf values, sample skipped\n",
                f->dir, qc_dataset_sample_name(f->d[0], feed_index(f, i)),
                (long long)f->bad[i]);
    }
    qc_progress_update(f->prog, n_finished);
}

int qc_cmd_compare_pass(qc_compare *c, qc_dataset *d, const char *dir, int strict,
                        const int *idx, int n, int n_inputs, qc_progress *prog, int *used,
                        int *skipped, qc_err *err)
{
    int jobs = qc_pass_default_jobs();
    jobs = jobs > n ? (n > 0 ? n : 1) : jobs;
    qc_cmd_feed f;
    int rc = qc_cmd_feed_open(&f, d, jobs, dir, strict, n_inputs, idx, n, prog, err);
    qc_compare_feed cf = { .user = &f, .n = n, .jobs = jobs, .load = qc_cmd_feed_load,
                           .failed = qc_cmd_feed_failed, .after = qc_cmd_feed_after };
    if (rc == QC_OK)
        rc = qc_compare_observe_pass(c, &cf, used, skipped, err);
    qc_cmd_feed_close(&f);
    return rc;
}

int qc_cmd_config_opt(qc_quant_opts *o, int argc, char **argv, int *i, const char *cmd)
{
    const char *s = argv[*i], *val;
    int missing;
    if (!strcmp(s, "--per-channel") || !strcmp(s, "--symmetric-activations")) {
        if (s[2] == 'p')
            o->per_channel = 1;
        else
            o->symmetric_act = 1;
        (*i)++;
        return 1;
    }
    if ((val = qc_cmd_optval(argc, argv, i, "--method", NULL, &missing)) || missing) {
        if (!val)
            return qc_cmd_usage_error(cmd, "%s needs a value", s), -1;
        o->method = val;
        return 1;
    }
    if ((val = qc_cmd_optval(argc, argv, i, "--percentile", NULL, &missing)) || missing) {
        char *end;
        if (!val)
            return qc_cmd_usage_error(cmd, "%s needs a value", s), -1;
        o->percentile = strtof(val, &end);
        if (*end || end == val || !(o->percentile > 0 && o->percentile <= 100))
            return qc_cmd_usage_error(cmd, "--percentile '%s': expected (0, 100]", val), -1;
        return 1;
    }
    return 0;
}

int qc_cmd_quant_opt(qc_quant_opts *o, int argc, char **argv, int *i, const char *cmd)
{
    const char *s = argv[*i], *val;
    int missing;
    static const char *const valued[] = { "--activation-type", "--bias", "--ema-constant",
                                          "--bins", "--exclude", "--op-types", NULL };
    if (!strcmp(s, "--symmetric-weights") || !strcmp(s, "--asymmetric-weights")) {
        o->symmetric_w = s[2] == 's';
        (*i)++;
        return 1;
    }
    if (!strcmp(s, "--reduce-range")) {
        o->reduce_range = 1;
        (*i)++;
        return 1;
    }
    if (!strcmp(s, "--no-pair-guard")) {
        o->pair_guard = 0;
        (*i)++;
        return 1;
    }
    if (!strcmp(s, "--no-concat-share")) {
        o->concat_share = 0;
        (*i)++;
        return 1;
    }
    for (int k = 0; valued[k]; k++) {
        if (!(val = qc_cmd_optval(argc, argv, i, valued[k], NULL, &missing)) && !missing)
            continue;
        if (!val)
            return qc_cmd_usage_error(cmd, "%s needs a value", s), -1;
        char *end;
        switch (k) {
        case 0:
            if (!strcmp(val, "uint8"))
                o->act_dtype = QC_U8;
            else if (!strcmp(val, "int8"))
                o->act_dtype = QC_I8;
            else if (!strcmp(val, "int16"))
                o->act_dtype = QC_I16;
            else
                return qc_cmd_usage_error(cmd, "--activation-type '%s': expected uint8, int8 or "
                                          "int16", val), -1;
            break;
        case 1:
            if (strcmp(val, "float") && strcmp(val, "int32"))
                return qc_cmd_usage_error(cmd, "--bias '%s': expected float or int32", val), -1;
            o->bias_float = !strcmp(val, "float");
            break;
        case 2:
            o->ema_constant = strtof(val, &end);
            if (*end || !(o->ema_constant > 0 && o->ema_constant <= 1))
                return qc_cmd_usage_error(cmd, "--ema-constant '%s': expected (0, 1]", val), -1;
            break;
        case 3: {
            long b = strtol(val, &end, 10);
            if (*end || end == val || b < 128 || b > (1 << 16))
                return qc_cmd_usage_error(cmd, "--bins '%s': expected 128..65536", val), -1;
            o->bins = (int)b;
            break;
        }
        case 4:
            o->exclude = val;
            break;
        default:
            o->op_types = val;
            break;
        }
        return 1;
    }
    return 0;
}

int qc_cmd_value(const char *cmd, int argc, char **argv, int *i, const char *name,
                 const char *alias, const char **val)
{
    const char *s = argv[*i];
    int missing;
    if ((*val = qc_cmd_optval(argc, argv, i, name, alias, &missing)) != NULL)
        return 1;
    if (missing)
        return qc_cmd_usage_error(cmd, "%s needs a value", s), -1;
    return 0;
}

int qc_cmd_count(const char *cmd, const char *opt, const char *val, long lo, long hi,
                 int say_range, long *out)
{
    char *end;
    long v = strtol(val, &end, 10);
    if (!*end && end != val && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    if (say_range)
        return qc_cmd_usage_error(cmd, "%s '%s': expected %ld..%ld", opt, val, lo, hi), -1;
    return qc_cmd_usage_error(cmd, "%s '%s': expected a count", opt, val), -1;
}

int qc_cmd_parse_opt(const char *cmd, const qc_cmd_opt *t, qc_quant_opts *o, int config,
                     qc_preproc *pp, int argc, char **argv, int *i)
{
    const char *s = argv[*i], *val;
    qc_err err = { 0 };
    int r;
    for (; t && t->name; t++) {
        if (t->flag) {
            if (strcmp(s, t->name) && (!t->alias || strcmp(s, t->alias)))
                continue;
            *t->flag = (int)t->lo;
            (*i)++;
            return 1;
        }
        if ((r = qc_cmd_value(cmd, argc, argv, i, t->name, t->alias, &val)) <= 0) {
            if (r < 0)
                return -1;
            continue;
        }
        if (t->str) {
            *t->str = val;
            return 1;
        }
        return qc_cmd_count(cmd, t->name, val, t->lo, t->hi, t->say_range, t->count) ? -1 : 1;
    }
    if (o && config && (r = qc_cmd_config_opt(o, argc, argv, i, cmd)) != 0)
        return r;
    if (o && (r = qc_cmd_quant_opt(o, argc, argv, i, cmd)) != 0)
        return r;
    if (pp && (r = qc_preproc_parse_arg(pp, argc, argv, i, &err)) != 0)
        return r < 0 ? (qc_cmd_usage_error(cmd, "%s", err.msg), -1) : 1;
    if (s[0] == '-' && s[1])
        return qc_cmd_usage_error(cmd, "unknown option '%s'", s), -1;
    return 0;
}
