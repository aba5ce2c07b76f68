/* calibrate compare --data DIR [--eval DIR] MODEL.onnx: every calibration strategy of a grid
 * from one float pass, each quantized model measured against the float one, ranked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cmd.h"
#include "progress.h"
#include "qc_compare.h"
#include "qc_data.h"
#include "qc_io.h"
#include "qc_prepare.h"
#include "qc_report.h"

static const char cmp_usage[] =
    "usage: calibrate compare --data DIR [--eval DIR] MODEL.onnx [options]\n"
    "\n"
    "Compares calibration strategies in one run: ONE float pass over the calibration samples\n"
    "feeds every candidate, each candidate's QDQ model is built (the model 'calibrate' writes\n"
    "with the same options) and run in qcal's executor on the eval samples against the float\n"
    "model. Prints the candidates ranked by --metric. Without --eval, every 4th sample of DIR\n"
    "(the 4th, 8th, ... in name order) is held out for evaluation and the others calibrate.\n"
    "\n"
    "candidates (default: minmax, ema, percentile 99.9/99.99/99.999, mse, entropy with\n"
    "per-channel weights and asymmetric activations, plus minmax and percentile 99.999 with\n"
    "per-tensor weights):\n"
    "  --methods LIST          comma-separated subset of minmax,ema,percentile,mse,entropy\n"
    "  --percentiles LIST      percentile candidates (default 99.9,99.99,99.999)\n"
    "  --per-channel MODE      yes, no or both (default: yes, plus the two per-tensor ones)\n"
    "  --symmetric-activations MODE  no (default), yes or both\n"
    "  --auto MODE             yes (default): also the 'auto' candidate (calibrate --method\n"
    "                          auto: each tensor's range and each weight's granularity chosen\n"
    "                          by its own quantization error); no; only\n"
    "  shared by all candidates: --activation-type T, --asymmetric-weights, --reduce-range,\n"
    "  --no-pair-guard, --no-concat-share, --bias float|int32, --bins N, --ema-constant C,\n"
    "  --exclude N1,N2, --op-types T1,T2, --no-prepare (as for 'calibrate')\n"
    "ranking and output:\n"
    "  --metric M              sqnr (default), cosine or top1 (classifier outputs [N, C])\n"
    "  --json FILE             every number: per candidate, per output, per layer\n"
    "  --html FILE             self-contained report: ranking, per-layer SQNR chart,\n"
    "                          each activation's histogram with every method's range\n"
    "  --write-best OUT.onnx   the best candidate's quantized model (the mixed one with\n"
    "                          --keep-float / --target-sqnr)\n"
    "  --write-auto OUT.onnx   auto's model after the output's confirmation (auto's own, the\n"
    "                          confirmed hybrid, or the best single method's)\n"
    "mixed precision (on the best candidate):\n"
    "  --keep-float N          leave the N most sensitive nodes in float\n"
    "  --target-sqnr DB        leave the fewest nodes in float whose eval output SQNR\n"
    "                          reaches DB; lists them\n"
    "  --sens-samples N        calibration samples measuring each node's sensitivity (output\n"
    "                          SQNR with only that node float; default 8)\n"
    "data:\n"
    "  --data DIR              calibration samples (see 'calibrate --help')\n"
    "  --eval DIR              evaluation samples (default: every 4th sample of --data)\n"
    "  --limit N               only the first N samples of --data (before the split)\n"
    "  --eval-limit N          only the first N evaluation samples\n"
    "  --layer-samples N       per-layer SQNR and saturation from the first N evaluation\n"
    "                          samples (default 8; 0: all); output metrics use every one\n"
    "  --max-memory MB         candidates evaluated side by side (one float pass per eval\n"
    "                          sample) while their models and activations fit in MB (default\n"
    "                          1024); otherwise one at a time, the float pass repeated\n"
    "  --strict                a sample with NaN/Inf is an error (default: skipped, warned)\n"
    "  -q, --quiet             no progress line and no table\n"
    "\n"
    "Metrics: output SQNR = 10 log10(sum f^2 / sum (q - f)^2) over all eval samples (the worst\n"
    "float output counts), cosine similarity (worst output), max |q - f|, top-1 agreement of\n"
    "[N, C] outputs; per quantized activation T: SQNR of the quantized model's\n"
    "DequantizeLinear output of T against the float model's T, and the fraction of T's float\n"
    "values outside the range its QuantizeLinear represents (saturation).\n"
    "image options:\n";

typedef struct cmp_args {
    const char *model, *data, *eval, *json, *best, *html;
    const char *auto_out;                       /* --write-auto */
    long        limit, eval_limit, max_mb, layer_samples;
    int         quiet, strict, no_prepare, metric, schedule;
    long        keep_float, sens_samples;       /* mixed precision: -1 when not asked */
    double      target_sqnr;                    /* NaN when not asked */
    qc_quant_opts   o;
    qc_compare_grid g;
    qc_preproc      pp;
} cmp_args;

static const char *const metric_names[] = { "sqnr", "cosine", "top1" };

static int parse_mode(const char *s, int *mode)
{
    if (!strcmp(s, "yes"))
        *mode = QC_CMP_YES;
    else if (!strcmp(s, "no"))
        *mode = QC_CMP_NO;
    else if (!strcmp(s, "both"))
        *mode = QC_CMP_BOTH;
    else
        return -1;
    return 0;
}

static int parse_args(cmp_args *a, int argc, char **argv)
{
    const qc_cmd_opt opts[] = {
        QC_OPT_STR("--data", NULL, &a->data),
        QC_OPT_STR("--eval", NULL, &a->eval),
        QC_OPT_STR("--json", NULL, &a->json),
        QC_OPT_STR("--html", NULL, &a->html),
        QC_OPT_STR("--write-best", NULL, &a->best),
        QC_OPT_STR("--methods", NULL, &a->g.methods),
        QC_OPT_STR("--percentiles", NULL, &a->g.percentiles),
        QC_OPT_STR("--write-auto", NULL, &a->auto_out),
        QC_OPT_RANGE("--keep-float", &a->keep_float, 0, 1L << 30),
        QC_OPT_RANGE("--sens-samples", &a->sens_samples, 1, 1L << 30),
        QC_OPT_RANGE("--limit", &a->limit, 1, 1L << 30),
        QC_OPT_RANGE("--eval-limit", &a->eval_limit, 1, 1L << 30),
        QC_OPT_RANGE("--layer-samples", &a->layer_samples, 0, 1L << 30),
        QC_OPT_RANGE("--max-memory", &a->max_mb, 1, 1L << 24),
        QC_OPT_FLAG("--strict", NULL, &a->strict, 1),
        QC_OPT_FLAG("--no-prepare", NULL, &a->no_prepare, 1),
        QC_OPT_FLAG("-q", "--quiet", &a->quiet, 1),
        { 0 },
    };
    int missing;
    const char *val;
    for (int i = 1; i < argc;) {
        const char *s = argv[i];
        int r;
#define OPT(name)                                                                          \
    ((val = qc_cmd_optval(argc, argv, &i, name, NULL, &missing)) != NULL ||               \
     (missing && (qc_cmd_usage_error("compare", "%s needs a value", s), 1)))
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(cmp_usage, stdout);
            fputs(qc_preproc_usage, stdout);
            return 1;
        } else if (OPT("--per-channel")) {
            if (!val) return -1;
            if (parse_mode(val, &a->g.per_channel))
                return qc_cmd_usage_error("compare", "--per-channel '%s': expected yes, no or "
                                          "both", val), -1;
        } else if (OPT("--symmetric-activations")) {
            if (!val) return -1;
            if (parse_mode(val, &a->g.symmetric_act))
                return qc_cmd_usage_error("compare", "--symmetric-activations '%s': expected "
                                          "yes, no or both", val), -1;
        } else if (OPT("--auto")) {
            if (!val) return -1;
            if (!strcmp(val, "yes") || !strcmp(val, "no") || !strcmp(val, "only"))
                a->g.auto_mode = val[0] == 'y' ? QC_AUTO_ADD : val[0] == 'n' ? QC_AUTO_NONE
                                                                          : QC_AUTO_ONLY;
            else
                return qc_cmd_usage_error("compare", "--auto '%s': expected yes, no or only",
                                          val), -1;
        } else if (OPT("--target-sqnr")) {
            char *end;
            if (!val) return -1;
            a->target_sqnr = strtod(val, &end);
            if (*end || end == val || !isfinite(a->target_sqnr))
                return qc_cmd_usage_error("compare", "--target-sqnr '%s': expected a number "
                                          "of dB", val), -1;
        } else if (OPT("--metric")) {
            if (!val) return -1;
            a->metric = -1;
            for (int k = 0; k < 3; k++)
                if (!strcmp(val, metric_names[k]))
                    a->metric = k;
            if (a->metric < 0)
                return qc_cmd_usage_error("compare", "--metric '%s': expected sqnr, cosine or "
                                          "top1", val), -1;
        } else if (OPT("--schedule")) {         /* tests: force an evaluation order */
            if (!val) return -1;
            if (!strcmp(val, "sample-major"))
                a->schedule = 1;
            else if (!strcmp(val, "candidate-major"))
                a->schedule = 2;
            else
                return qc_cmd_usage_error("compare", "--schedule '%s': expected sample-major "
                                          "or candidate-major", val), -1;
        } else if ((r = qc_cmd_parse_opt("compare", opts, &a->o, 0, &a->pp, argc, argv, &i))) {
            if (r < 0)
                return -1;
        } else if (a->model) {
            return qc_cmd_usage_error("compare", "more than one model ('%s', '%s')", a->model,
                                      s), -1;
        } else {
            a->model = s;
            i++;
        }
#undef OPT
    }
    if (!a->model)
        return qc_cmd_usage_error("compare", "no model given"), -1;
    if (!a->data)
        return qc_cmd_usage_error("compare", "--data DIR is required"), -1;
    if (a->auto_out && a->g.auto_mode == QC_AUTO_NONE)
        return qc_cmd_usage_error("compare", "--write-auto needs the auto candidate (not "
                                  "--auto no)"), -1;
    if (a->keep_float >= 0 && !isnan(a->target_sqnr))
        return qc_cmd_usage_error("compare", "--keep-float and --target-sqnr exclude each "
                                  "other"), -1;
    return 0;
}

/* ---- report ---- */

/* JSON has no infinities: an exact match's SQNR is the string "inf" (Python's float()
 * reads it), an undefined value (nothing compared) is null. */
static cJSON *num(double v)
{
    if (isnan(v))
        return cJSON_CreateNull();
    if (isinf(v))
        return cJSON_CreateString(v > 0 ? "inf" : "-inf");
    return cJSON_CreateNumber(v);
}

static void add_num(cJSON *o, const char *k, double v)
{
    cJSON_AddItemToObject(o, k, num(v));
}

/* The `calibrate` arguments that write exactly the model evaluated: candidates are compared
 * as quantized, before the bias correction calibrate applies by default. */
static cJSON *cand_args(const qc_cand *c)
{
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString("--method"));
    cJSON_AddItemToArray(a, cJSON_CreateString(c->o.method));
    cJSON_AddItemToArray(a, cJSON_CreateString("--no-bias-correction"));
    if (!strcmp(c->o.method, "auto")) {
        if (c->o.symmetric_act)
            cJSON_AddItemToArray(a, cJSON_CreateString("--symmetric-activations"));
        return a;
    }
    if (c->percentile[0]) {
        cJSON_AddItemToArray(a, cJSON_CreateString("--percentile"));
        cJSON_AddItemToArray(a, cJSON_CreateString(c->percentile));
    }
    if (c->o.per_channel)
        cJSON_AddItemToArray(a, cJSON_CreateString("--per-channel"));
    if (c->o.symmetric_act)
        cJSON_AddItemToArray(a, cJSON_CreateString("--symmetric-activations"));
    return a;
}

static cJSON *cand_json(const qc_cand_result *r, int rank)
{
    cJSON *o = cJSON_CreateObject(), *outs = cJSON_CreateArray(), *l = cJSON_CreateObject();
    const qc_cand *c = r->cand;
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddNumberToObject(o, "rank", rank);
    cJSON_AddStringToObject(o, "method", c->o.method);
    if (!strcmp(c->o.method, "percentile"))
        cJSON_AddNumberToObject(o, "percentile", (double)c->o.percentile);
    cJSON_AddBoolToObject(o, "per_channel", c->o.per_channel);
    cJSON_AddBoolToObject(o, "symmetric_activations", c->o.symmetric_act);
    cJSON_AddItemToObject(o, "calibrate_args", cand_args(c));
    add_num(o, "sqnr_db", r->sqnr_db);
    add_num(o, "cosine", r->cosine);
    add_num(o, "max_abs", r->max_abs);
    add_num(o, "top1", r->top1);
    cJSON_AddNumberToObject(o, "eval_samples", r->n_eval);
    cJSON_AddNumberToObject(o, "layer_eval_samples", r->n_layer_eval);
    cJSON_AddNumberToObject(o, "quantized_nodes", r->n_quantized_nodes);
    cJSON_AddNumberToObject(o, "float_nodes", r->n_float_nodes);
    add_num(o, "build_seconds", r->build_seconds);
    add_num(o, "eval_seconds", r->eval_seconds);
    if (r->worst_layer >= 0) {
        cJSON *w = cJSON_CreateObject();
        cJSON_AddStringToObject(w, "name", r->layers[r->worst_layer].name);
        add_num(w, "sqnr_db", r->layers[r->worst_layer].sqnr_db);
        cJSON_AddItemToObject(o, "worst_layer", w);
    }
    for (int i = 0; i < r->n_outputs; i++) {
        const qc_output_result *out = &r->outputs[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", out->name);
        add_num(j, "sqnr_db", qc_errstat_sqnr_db(&out->st));
        add_num(j, "cosine", qc_errstat_cosine(&out->st));
        add_num(j, "max_abs", out->st.max_abs);
        add_num(j, "top1", qc_errstat_top1(&out->st));
        cJSON_AddNumberToObject(j, "values", (double)out->st.n);
        cJSON_AddItemToArray(outs, j);
    }
    cJSON_AddItemToObject(o, "outputs", outs);
    const char *keys[] = { "name", "sqnr_db", "saturation", "clip_min", "clip_max", "min",
                           "max", "values" };
    cJSON *arr[8];
    for (int k = 0; k < 8; k++) {
        arr[k] = cJSON_CreateArray();
        cJSON_AddItemToObject(l, keys[k], arr[k]);
    }
    for (int i = 0; i < r->n_layers; i++) {
        const qc_layer_result *x = &r->layers[i];
        cJSON_AddItemToArray(arr[0], cJSON_CreateString(x->name));
        cJSON_AddItemToArray(arr[1], num(x->sqnr_db));
        cJSON_AddItemToArray(arr[2], num(x->saturation));
        cJSON_AddItemToArray(arr[3], num(x->clip_lo));
        cJSON_AddItemToArray(arr[4], num(x->clip_hi));
        cJSON_AddItemToArray(arr[5], num(x->lo));
        cJSON_AddItemToArray(arr[6], num(x->hi));
        cJSON_AddItemToArray(arr[7], cJSON_CreateNumber((double)x->n));
    }
    cJSON_AddItemToObject(o, "layers", l);
    return o;
}

/* What auto chose: per option the tensors that took its range, per tensor the option. */
static void auto_json(cJSON *o, const qc_compare *c, int i)
{
    qc_auto_info ai;
    if (!qc_compare_auto_info(c, i, &ai))
        return;
    cJSON *a = cJSON_CreateObject(), *opts = cJSON_CreateArray(), *t = cJSON_CreateObject();
    cJSON *tn = cJSON_CreateArray(), *tc = cJSON_CreateArray(), *tm = cJSON_CreateArray();
    for (int k = 0; k < ai.n_options; k++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", ai.options[k].name);
        cJSON_AddNumberToObject(x, "tensors", ai.option_tensors[k]);
        cJSON_AddItemToArray(opts, x);
    }
    for (int k = 0; k < ai.n_tensors; k++) {
        if (ai.choice[k] < 0)
            continue;
        cJSON_AddItemToArray(tn, cJSON_CreateString(ai.tensor[k]));
        cJSON_AddItemToArray(tc, cJSON_CreateString(ai.options[ai.choice[k]].name));
        cJSON_AddItemToArray(tm, num(ai.cost[k]));
    }
    cJSON_AddItemToObject(t, "name", tn);
    cJSON_AddItemToObject(t, "choice", tc);
    cJSON_AddItemToObject(t, "local_mse", tm);
    cJSON_AddItemToObject(a, "options", opts);
    cJSON_AddItemToObject(a, "tensors", t);
    cJSON_AddNumberToObject(a, "weights", ai.n_weights);
    cJSON_AddNumberToObject(a, "weights_per_tensor", ai.n_weights_per_tensor);
    cJSON_AddItemToObject(o, "auto", a);
}

static void fmt_db(char *buf, size_t n, double v);

/* The best auto candidate and the best single-method one in the ranking (-1 if none). */
static void auto_and_single(const qc_compare *c, const int *order, int *ia, int *is)
{
    *ia = *is = -1;
    for (int i = 0; i < qc_compare_n(c); i++) {
        int au = !strcmp(qc_compare_result(c, order[i])->cand->o.method, "auto");
        if (au && *ia < 0)
            *ia = order[i];
        if (!au && *is < 0)
            *is = order[i];
    }
}

static double metric_value(const qc_cand_result *r, int metric)
{
    double v = metric == QC_METRIC_COSINE ? r->cosine : metric == QC_METRIC_TOP1 ? r->top1
                                                                                 : r->sqnr_db;
    return isnan(v) ? -INFINITY : v;
}

/* What --method auto amounts to after the output's confirmation: auto's own choice when it
 * ranks above every single method, else the confirmed hybrid when it is at least as good
 * on the eval set as the best single method S, else S (fallback). */
typedef struct auto_final {
    const char *name;
    double      sqnr_db, metric;
    int         fallback, hybrid;
} auto_final;

static void final_auto(const qc_compare *c, const int *order, int metric, auto_final *f)
{
    static char name[96];
    int ia, is;
    auto_and_single(c, order, &ia, &is);
    const qc_cand_result *ra = qc_compare_result(c, ia), *rs = qc_compare_result(c, is);
    const qc_auto_confirm *ac = qc_compare_auto_confirmed(c);
    memset(f, 0, sizeof *f);
    int pa = 0, ps = 0;
    while (order[pa] != ia)
        pa++;
    while (order[ps] != is)
        ps++;
    if (pa < ps) {
        f->name = ra->cand->name;
        f->sqnr_db = ra->sqnr_db;
        f->metric = metric_value(ra, metric);
        return;
    }
    if (ac && ac->tau > 0) {
        qc_cand_result h = { .sqnr_db = ac->sqnr_db, .cosine = ac->cosine, .top1 = ac->top1 };
        double hm = metric_value(&h, metric), sm = metric_value(rs, metric);
        if (hm > sm || (hm == sm && ac->sqnr_db >= rs->sqnr_db)) {
            snprintf(name, sizeof name, "auto = %.40s + %d auto ranges", rs->cand->name,
                     ac->n_switched);
            f->name = name;
            f->sqnr_db = ac->sqnr_db;
            f->metric = hm;
            f->hybrid = 1;
            return;
        }
    }
    f->name = rs->cand->name;
    f->sqnr_db = rs->sqnr_db;
    f->metric = metric_value(rs, metric);
    f->fallback = 1;
}

/* auto against the best single method (the output's confirmation), sensitivity, mixed. */
static void extras_json(cJSON *root, const qc_compare *c, const int *order, int metric)
{
    int ia, is;
    auto_and_single(c, order, &ia, &is);
    if (ia >= 0 && is >= 0) {
        const qc_cand_result *ra = qc_compare_result(c, ia), *rs = qc_compare_result(c, is);
        const qc_auto_confirm *ac = qc_compare_auto_confirmed(c);
        auto_final f;
        final_auto(c, order, metric, &f);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "auto", ra->cand->name);
        add_num(o, "auto_local_sqnr_db", ra->sqnr_db);
        add_num(o, "auto_local_metric", metric_value(ra, metric));
        cJSON_AddStringToObject(o, "best_single", rs->cand->name);
        add_num(o, "best_single_sqnr_db", rs->sqnr_db);
        add_num(o, "best_single_metric", metric_value(rs, metric));
        if (ac) {
            cJSON *j = cJSON_CreateObject();
            add_num(j, "tau", ac->tau);
            cJSON_AddNumberToObject(j, "tensors_switched", ac->n_switched);
            cJSON_AddNumberToObject(j, "hybrids_measured", ac->n_hybrids);
            cJSON_AddNumberToObject(j, "calib_samples", ac->n_calib);
            add_num(j, "calib_best_single_sqnr_db", ac->calib_single_db);
            add_num(j, "calib_sqnr_db", ac->calib_db);
            add_num(j, "sqnr_db", ac->sqnr_db);
            add_num(j, "cosine", ac->cosine);
            add_num(j, "max_abs", ac->max_abs);
            add_num(j, "top1", ac->top1);
            cJSON_AddItemToObject(o, "confirmation", j);
        }
        cJSON_AddStringToObject(o, "final", f.name);
        cJSON_AddBoolToObject(o, "fallback", f.fallback);
        add_num(o, "final_sqnr_db", f.sqnr_db);
        add_num(o, "final_metric", f.metric);
        add_num(o, "sqnr_gain_db", f.sqnr_db - rs->sqnr_db);
        add_num(o, "metric_gain", f.metric - metric_value(rs, metric));
        cJSON_AddItemToObject(root, "auto_vs_best_single", o);
    }
    int base, n = qc_compare_n_sens(c);
    double base_db = qc_compare_sens_base(c, &base);
    if (n > 0) {
        cJSON *sv = cJSON_CreateObject(), *l = cJSON_CreateArray();
        cJSON_AddStringToObject(sv, "base", qc_compare_result(c, base)->cand->name);
        add_num(sv, "base_sqnr_db", base_db);
        for (int i = 0; i < n; i++) {
            const qc_sens_layer *x = qc_compare_sens(c, i);
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "node", x->node);
            cJSON_AddStringToObject(j, "op_type", x->op_type);
            add_num(j, "sqnr_db_float", x->sqnr_db);
            cJSON_AddItemToArray(l, j);
        }
        cJSON_AddItemToObject(sv, "nodes", l);
        cJSON_AddItemToObject(root, "sensitivity", sv);
    }
    const qc_mixed_result *mr = qc_compare_mixed_result(c);
    if (mr) {
        cJSON *o = cJSON_CreateObject(), *fl = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "base", qc_compare_result(c, base)->cand->name);
        add_num(o, "target_sqnr_db", mr->target_db);
        if (!isnan(mr->target_db))
            cJSON_AddBoolToObject(o, "reached", mr->reached);
        cJSON_AddNumberToObject(o, "n_float", mr->n_float);
        for (int i = 0; i < mr->n_float; i++)
            cJSON_AddItemToArray(fl, cJSON_CreateString(mr->float_nodes[i]));
        cJSON_AddItemToObject(o, "float_nodes", fl);
        add_num(o, "sqnr_db", mr->sqnr_db);
        add_num(o, "cosine", mr->cosine);
        add_num(o, "max_abs", mr->max_abs);
        add_num(o, "top1", mr->top1);
        add_num(o, "base_sqnr_db", mr->base_sqnr_db);
        cJSON_AddNumberToObject(o, "eval_samples", mr->n_eval);
        cJSON_AddNumberToObject(o, "models_evaluated", mr->n_models);
        cJSON_AddItemToObject(root, "mixed", o);
    }
}

static void print_extras(const qc_compare *c, const int *order, int metric)
{
    int ia, is;
    char x[16], y[16];
    auto_and_single(c, order, &ia, &is);
    if (ia >= 0 && is >= 0) {
        const qc_cand_result *rs = qc_compare_result(c, is);
        const qc_auto_confirm *ac = qc_compare_auto_confirmed(c);
        auto_final f;
        final_auto(c, order, metric, &f);
        fmt_db(x, sizeof x, ac ? ac->sqnr_db : NAN);
        if (ac && ac->tau > 0)
            printf("compare: auto's hybrid (chosen on %d calibration samples): %.30s + auto's "
                   "range on %d tensors: %s dB\n", ac->n_calib, rs->cand->name, ac->n_switched,
                   x);
        else if (ac && !ac->n_hybrids)
            printf("compare: auto's hybrids: none to try (no tensor's range under %s costs "
                   "twice auto's)\n", rs->cand->name);
        else if (ac)
            printf("compare: auto's hybrids: none beat %s on %d calibration samples\n",
                   rs->cand->name, ac->n_calib);
        fmt_db(x, sizeof x, f.sqnr_db);
        fmt_db(y, sizeof y, rs->sqnr_db);
        printf("compare: best single method: %s, %s dB\n", rs->cand->name, y);
        printf("compare: auto: %s%s, %s dB (%+.2f dB)\n", f.fallback ? "fallback to " : "",
               f.name, x, f.sqnr_db - rs->sqnr_db);
    }
    const qc_mixed_result *mr = qc_compare_mixed_result(c);
    int base, n = qc_compare_n_sens(c);
    double base_db = qc_compare_sens_base(c, &base);
    if (!mr)
        return;
    fmt_db(x, sizeof x, base_db);
    printf("sensitivity of %s (output SQNR dB with only that node float; all quantized: "
           "%s):\n", qc_compare_result(c, base)->cand->name, x);
    for (int i = 0; i < n && i < 10; i++) {
        const qc_sens_layer *l = qc_compare_sens(c, i);
        const char *nm = l->node;
        size_t len = strlen(nm);
        fmt_db(x, sizeof x, l->sqnr_db);
        printf("%4d  %-60s %-14.14s %7s\n", i + 1, len > 60 ? nm + len - 60 : nm, l->op_type,
               x);
    }
    fmt_db(x, sizeof x, mr->sqnr_db);
    fmt_db(y, sizeof y, mr->base_sqnr_db);
    printf("mixed: %d node%s float: eval SQNR %s dB (all quantized %s dB)", mr->n_float,
           mr->n_float == 1 ? "" : "s", x, y);
    if (!isnan(mr->target_db))
        printf(", target %.2f dB %s", mr->target_db, mr->reached ? "reached" : "NOT reached");
    printf(" (%d models evaluated)\n", mr->n_models);
    for (int i = 0; i < mr->n_float; i++)
        printf("  float: %s\n", mr->float_nodes[i]);
}

typedef struct run_info {
    int    n_calib, calib_skipped;
    double t_prepare, t_calib, t_eval, t_total;
} run_info;

static int write_json(const cmp_args *a, const qc_compare *c, const int *order,
                      const run_info *ri, qc_err *err)
{
    qc_compare_stats st;
    qc_compare_get_stats(c, &st);
    cJSON *root = cJSON_CreateObject(), *cands = cJSON_CreateArray();
    cJSON *rank = cJSON_CreateArray(), *secs = cJSON_CreateObject();
    if (!root || !cands || !rank || !secs) {
        cJSON_Delete(root);
        cJSON_Delete(cands);
        cJSON_Delete(rank);
        cJSON_Delete(secs);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(root, "format", "qcal-compare");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "model", a->model);
    cJSON_AddStringToObject(root, "data", a->data);
    if (a->eval)
        cJSON_AddStringToObject(root, "eval", a->eval);
    else
        cJSON_AddStringToObject(root, "eval_split", "every 4th sample of data");
    cJSON_AddStringToObject(root, "metric", metric_names[a->metric]);
    cJSON_AddNumberToObject(root, "calib_samples", ri->n_calib);
    cJSON_AddNumberToObject(root, "calib_skipped", ri->calib_skipped);
    cJSON_AddNumberToObject(root, "float_passes", (double)st.float_passes);
    cJSON_AddNumberToObject(root, "eval_samples", st.n_eval);
    cJSON_AddNumberToObject(root, "eval_skipped", st.eval_skipped);
    cJSON_AddNumberToObject(root, "eval_float_passes", (double)st.eval_float_passes);
    cJSON_AddNumberToObject(root, "quantized_passes", (double)st.quant_passes);
    cJSON_AddStringToObject(root, "schedule", st.sample_major ? "sample-major"
                                                              : "candidate-major");
    cJSON_AddNumberToObject(root, "observed_tensors", st.n_observed);
    cJSON_AddNumberToObject(root, "observers_per_tensor", st.n_observer_groups);
    cJSON_AddNumberToObject(root, "observer_bytes", (double)st.observer_bytes);
    cJSON_AddNumberToObject(root, "float_peak_bytes", (double)st.float_peak_bytes);
    cJSON_AddNumberToObject(root, "eval_peak_bytes", (double)st.eval_peak_bytes);
    add_num(secs, "prepare", ri->t_prepare);
    add_num(secs, "calibrate", ri->t_calib);
    add_num(secs, "build_and_evaluate", ri->t_eval);
    add_num(secs, "total", ri->t_total);
    cJSON_AddItemToObject(root, "seconds", secs);
    int n = qc_compare_n(c);
    cJSON_AddStringToObject(root, "best", qc_compare_result(c, order[0])->cand->name);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(rank, cJSON_CreateString(qc_compare_result(c, order[i])->cand->name));
    cJSON_AddItemToObject(root, "ranking", rank);
    for (int i = 0; i < n; i++) {
        int r = 0;
        while (order[r] != i)
            r++;
        cJSON *cj = cand_json(qc_compare_result(c, i), r + 1);
        auto_json(cj, c, i);
        cJSON_AddItemToArray(cands, cj);
    }
    cJSON_AddItemToObject(root, "candidates", cands);
    extras_json(root, c, order, a->metric);
    return qc_write_json_atomic(root, a->json, err);
}

static void fmt_db(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else if (isinf(v))
        snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, n, "%.2f", v);
}

/* Fits the 100-column table: long layer names keep their tail. */
static void print_table(const qc_compare *c, const int *order)
{
    char sq[16], cs[16], t1[16], wl[64], wdb[16];
    printf("%4s  %-24s %7s %9s %9s %6s  %s\n", "rank", "candidate", "SQNR dB", "cosine",
           "max abs", "top-1", "worst layer (SQNR dB)");
    for (int i = 0; i < qc_compare_n(c); i++) {
        const qc_cand_result *r = qc_compare_result(c, order[i]);
        fmt_db(sq, sizeof sq, r->sqnr_db);
        if (isnan(r->cosine))
            snprintf(cs, sizeof cs, "-");
        else
            snprintf(cs, sizeof cs, "%.6f", r->cosine);
        if (isnan(r->top1))
            snprintf(t1, sizeof t1, "-");
        else
            snprintf(t1, sizeof t1, "%.1f%%", 100.0 * r->top1);
        wl[0] = wdb[0] = 0;
        if (r->worst_layer >= 0) {
            const char *nm = r->layers[r->worst_layer].name;
            size_t len = strlen(nm), room = 26;
            if (len > room)
                snprintf(wl, sizeof wl, "..%s", nm + len - (room - 2));
            else
                snprintf(wl, sizeof wl, "%s", nm);
            fmt_db(wdb, sizeof wdb, r->layers[r->worst_layer].sqnr_db);
        }
        printf("%4d  %-24.24s %7s %9s %9.3g %6s  %-26s %6s\n", i + 1, r->cand->name, sq, cs,
               r->max_abs, t1, wl, wdb);
    }
}

static void progress_cb(void *user, int64_t done, int64_t total)
{
    (void)total;
    qc_progress_update(user, done);
}

int qc_cmd_compare(int argc, char **argv)
{
    cmp_args a = { .limit = -1, .keep_float = -1, .sens_samples = 8, .layer_samples = 8,
                   .target_sqnr = NAN,
                   .g = { .per_channel = QC_CMP_DEFAULT, .symmetric_act = QC_CMP_NO,
                          .auto_mode = QC_AUTO_ADD } };
    qc_err err = { 0 };
    qc_quant_opts_default(&a.o);
    qc_preproc_init(&a.pp);
    int pr = parse_args(&a, argc, argv);
    if (pr)
        return pr > 0 ? 0 : 2;
    a.pp.allow_nonfinite = 1;           /* checked here: skipped with a warning, or --strict */

    qc_model *m = NULL, *prep = NULL;
    qc_dataset *d = NULL, *de = NULL;
    qc_compare *c = NULL;
    qc_cand *cands = NULL;
    qc_progress prog = { 0 };
    int *calib_idx = NULL, *eval_idx = NULL, *order = NULL, n_cands = 0, n_cal = 0, n_ev = 0;
    run_info ri = { 0 };
    double t0 = qc_now(), t1;
    int rc = qc_compare_make_grid(&a.o, &a.g, &cands, &n_cands, &err);
    if (rc != QC_OK)
        return qc_cmd_usage_error("compare", "%s", err.msg);
    if (rc == QC_OK)
        rc = qc_model_load(&m, a.model, &err);
    if (rc == QC_OK && !a.no_prepare)
        rc = qc_prepare(m, &prep, NULL, &err);
    const qc_model *work = prep ? prep : m;
    ri.t_prepare = qc_now() - t0;
    if (rc == QC_OK)
        rc = qc_dataset_open(&d, a.data, work, &a.pp, &err);
    if (rc == QC_OK && a.eval)
        rc = qc_dataset_open(&de, a.eval, work, &a.pp, &err);
    if (rc == QC_OK) {
        int n = qc_dataset_count(d);
        if (a.limit > 0 && a.limit < n)
            n = (int)a.limit;
        int n_e = de ? qc_dataset_count(de) : n;
        calib_idx = calloc((size_t)n + 1, sizeof *calib_idx);
        eval_idx = calloc((size_t)n_e + 1, sizeof *eval_idx);
        order = calloc((size_t)n_cands + 1, sizeof *order);
        if (!calib_idx || !eval_idx || !order)
            rc = qc_errf(&err, QC_ENOMEM, "out of memory");
        for (int i = 0; rc == QC_OK && i < n; i++) {
            if (!de && i % 4 == 3)
                eval_idx[n_ev++] = i;
            else
                calib_idx[n_cal++] = i;
        }
        for (int i = 0; rc == QC_OK && de && i < n_e; i++)
            eval_idx[n_ev++] = i;
        if (a.eval_limit > 0 && a.eval_limit < n_ev)
            n_ev = (int)a.eval_limit;
        if (rc == QC_OK && n_ev == 0)
            rc = qc_errf(&err, QC_EINPUT, "%s: no evaluation sample (%s)", de ? a.eval : a.data,
                         de ? "empty folder" : "fewer than 4 samples to hold every 4th out; "
                         "give --eval DIR");
    }
    if (rc == QC_OK)
        rc = qc_compare_new(&c, work, cands, n_cands, &err);
    t1 = qc_now();
    qc_progress_start(&prog, "compare: calibrate", "samples", n_cal, a.quiet);
    if (rc == QC_OK)
        rc = qc_cmd_compare_pass(c, d, a.data, a.strict, calib_idx, n_cal, work->n_inputs,
                                 &prog, &ri.n_calib, &ri.calib_skipped, &err);
    qc_progress_end(&prog);
    if (rc == QC_OK && ri.n_calib == 0)
        rc = qc_errf(&err, QC_EINPUT, "%s: no usable calibration sample", a.data);
    ri.t_calib = qc_now() - t1;
    t1 = qc_now();
    if (rc == QC_OK) {
        qc_compare_eval_opts eo = {
            .metric = a.metric, .max_bytes = (size_t)(a.max_mb ? a.max_mb : 1024) << 20,
            .force_schedule = a.schedule, .strict = a.strict,
            .layer_samples = (int)a.layer_samples, .progress = progress_cb,
            .progress_user = &prog,
        };
        qc_progress_start(&prog, "compare: evaluate", "runs", (int64_t)n_ev * n_cands,
                          a.quiet);
        rc = qc_compare_evaluate(c, de ? de : d, eval_idx, n_ev, &eo, &err);
        qc_progress_end(&prog);
    }
    ri.t_eval = qc_now() - t1;
    if (rc == QC_OK) {
        qc_compare_stats st;
        qc_compare_get_stats(c, &st);
        if (st.eval_skipped)
            fprintf(stderr, "calibrate: warning: %d eval sample%s with NaN/Inf skipped\n",
                    st.eval_skipped, st.eval_skipped == 1 ? "" : "s");
        if (st.n_eval == 0)
            rc = qc_errf(&err, QC_EINPUT, "%s: no usable evaluation sample",
                         de ? a.eval : a.data);
    }
    if (rc == QC_OK)
        qc_compare_rank(c, a.metric, order);
    if (rc == QC_OK && a.metric == QC_METRIC_TOP1 &&
        isnan(qc_compare_result(c, order[0])->top1))
        fprintf(stderr, "calibrate: warning: no classifier-like output ([N, C], C > 1): "
                "ranked by SQNR\n");
    int n_sens = n_cal < a.sens_samples ? n_cal : (int)a.sens_samples;
    if (rc == QC_OK && a.g.auto_mode == QC_AUTO_ADD)
        rc = qc_compare_auto_confirm(c, a.metric, d, calib_idx, n_sens, de ? de : d, eval_idx,
                                     n_ev, &err);
    auto_final af = { 0 };
    if (rc == QC_OK && a.g.auto_mode == QC_AUTO_ADD)
        final_auto(c, order, a.metric, &af);
    if (rc == QC_OK && (a.keep_float >= 0 || !isnan(a.target_sqnr))) {
        rc = qc_compare_sensitivity(c, order[0], d, calib_idx, n_sens, &err);
        if (rc == QC_OK)
            rc = qc_compare_mixed(c, de ? de : d, eval_idx, n_ev, (int)a.keep_float,
                                  a.target_sqnr, &err);
    }
    const qc_mixed_result *mixed = rc == QC_OK ? qc_compare_mixed_result(c) : NULL;
    const qc_model *bm = mixed ? mixed->model : rc == QC_OK ? qc_compare_best_model(c, NULL)
                                                            : NULL;
    if (rc == QC_OK && a.auto_out) {
        /* auto's own model when it ranks first, the hybrid when it won, else the fallback;
         * the first and the last are the best candidate */
        const qc_model *am = af.hybrid ? qc_compare_auto_confirmed(c)->model
                                       : qc_compare_best_model(c, NULL);
        rc = am ? qc_model_save(am, a.auto_out, 0, &err)
                : qc_errf(&err, QC_EINTERNAL, "auto's model was not kept");
    }
    if (rc == QC_OK && a.best) {
        if (!bm)
            rc = qc_errf(&err, QC_EINTERNAL, "no best model kept");
        else
            rc = qc_model_save(bm, a.best, 0, &err);
    }
    ri.t_total = qc_now() - t0;
    if (rc == QC_OK && a.json)
        rc = write_json(&a, c, order, &ri, &err);
    if (rc == QC_OK && a.html) {
        qc_report_info hi = { .model = work, .model_path = a.model, .data = a.data,
                              .eval = a.eval, .metric = metric_names[a.metric],
                              .n_calib = ri.n_calib };
        rc = qc_report_html(a.html, c, order, &hi, &err);
    }
    if (rc == QC_OK && !a.quiet) {
        qc_compare_stats st;
        qc_compare_get_stats(c, &st);
        print_table(c, order);
        printf("compare: %d candidates, %lld float passes over %d calibration samples (%d "
               "skipped), %d observers/tensor\n", n_cands, (long long)st.float_passes,
               ri.n_calib, ri.calib_skipped, st.n_observer_groups);
        printf("compare: %d eval samples%s, %s; per-layer figures from %d of them\n",
               st.n_eval, de ? "" : " (every 4th of --data)",
               st.sample_major ? "candidates side by side" : "one candidate at a time",
               qc_compare_result(c, 0)->n_layer_eval);
        printf("compare: best by %s: %s (%.2f s: calibrate %.2f, build + evaluate %.2f)\n",
               metric_names[a.metric], qc_compare_result(c, order[0])->cand->name, ri.t_total,
               ri.t_calib, ri.t_eval);
        print_extras(c, order, a.metric);
        if (a.best)
            printf("compare: wrote %s\n", a.best);
    }
    qc_compare_free(c);
    qc_dataset_free(d);
    qc_dataset_free(de);
    qc_model_free(prep);
    qc_model_free(m);
    free(cands);
    free(calib_idx);
    free(eval_idx);
    free(order);
    return rc ? qc_cmd_fail(rc, &err) : 0;
}
