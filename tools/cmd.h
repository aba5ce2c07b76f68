/* Subcommands of the calibrate tool. Each takes its own argv (argv[0] is the command name)
 * and returns the process exit status: 0 ok, 2 usage/input error, 3 unsupported model,
 * 4 I/O error, 1 anything else. */
#ifndef QC_CMD_H
#define QC_CMD_H

#include "qc_err.h"
#include "qc_quant.h"

/* The default command (no verb): calibrate and quantize. argv[0] is "calibrate". */
int qc_cmd_calibrate(int argc, char **argv);
/* `calibrate run MODEL --data DIR -o OUTDIR`: float outputs of every sample as .npy. */
int qc_cmd_run(int argc, char **argv);
/* `calibrate compare --data DIR [--eval DIR] MODEL`: calibration strategies ranked. */
int qc_cmd_compare(int argc, char **argv);
/* `calibrate doctor --data DIR [--eval DIR] MODEL [QUANTIZED]`: findings, worst first. */
int qc_cmd_doctor(int argc, char **argv);

/* `calibrate info MODEL`, `calibrate save MODEL -o OUT`, `calibrate bench MODEL --data DIR`. */
/* How bench runs a model (also tools/ab/env_ab.c, so its figures are bench's): as `calibrate
 * run` does, a QDQ model's weights dequantized once and its Q/DQ pairs as one step. */
#define QC_BENCH_EXEC_OPTS { .fuse = 1, .fuse_qdq = 1, .cache_const = 1 }
int qc_cmd_info(int argc, char **argv);
int qc_cmd_save(int argc, char **argv);
int qc_cmd_bench(int argc, char **argv);
/* bench --profile (bench_profile.c): sec[i] seconds in model node i's kernel over `per`
 * sample runs (median_ms / mean_ms: the timed passes' latency per sample); prints the op
 * types and the top nodes (top > 0), writes json if given. */
int qc_bench_profile(const char *model, const qc_model *m, const double *sec, double per,
                     double median_ms, double mean_ms, int top, const char *json,
                     qc_err *err);

/* OpenBLAS's kernels (blas_core.c): the core to use instead of the one OpenBLAS picked, when
 * that one predates AVX2 and the CPU has AVX2 + FMA or AVX-512 ("Haswell", "SkylakeX"), else
 * NULL; and, when there is one and OPENBLAS_CORETYPE is unset, or when OpenBLAS loaded with
 * more than one thread, executing the tool again with OPENBLAS_CORETYPE set to it and
 * OPENBLAS_NUM_THREADS=1 (returns only if there is nothing to do or the exec failed). */
const char *qc_blas_core_better(void);
void qc_blas_core_fix(char **argv);
/* "<prefix>OpenBLAS kernels: <core> (<OpenBLAS's config string>), <n> thread(s)" on stdout
 * (--version, bench; tools/run_tests.sh and the tests read it) */
void qc_blas_core_print(const char *prefix);

/* One option of a command's table (ended by { 0 }): a string (*str takes its value), a count
 * in lo..hi (*count), or a flag without a value (*flag set to lo). */
typedef struct qc_cmd_opt {
    const char  *name, *alias;          /* alias may be NULL */
    const char **str;
    long        *count;
    int         *flag;
    long         lo, hi;
    int          say_range;             /* count error "expected LO..HI", not "a count" */
} qc_cmd_opt;
#define QC_OPT_STR(name, alias, p)    { name, alias, .str = (p) }
#define QC_OPT_COUNT(name, p, l, h)   { name, NULL, .count = (p), .lo = (l), .hi = (h) }
#define QC_OPT_RANGE(name, p, l, h)   { name, NULL, .count = (p), .lo = (l), .hi = (h), \
                                        .say_range = 1 }
#define QC_OPT_FLAG(name, alias, p, v) { name, alias, .flag = (p), .lo = (v) }

/* argv[*i] as an option of table `t` (may be NULL), then of qc_cmd_config_opt (when o and
 * config), qc_cmd_quant_opt (when o) and the image options (when pp): 1 if it was one (and *i
 * moved past it), 0 if argv[*i] is an operand, -1 after a usage error was printed (a missing
 * or bad value, an unknown option). */
struct qc_preproc;
int qc_cmd_parse_opt(const char *cmd, const qc_cmd_opt *t, qc_quant_opts *o, int config,
                     struct qc_preproc *pp, int argc, char **argv, int *i);
/* 1 with *val set if argv[*i] is option `name` (or `alias`) with its value (*i moved past
 * it), -1 after a "needs a value" usage error, 0 if argv[*i] is something else. */
int qc_cmd_value(const char *cmd, int argc, char **argv, int *i, const char *name,
                 const char *alias, const char **val);
/* `val`, the value of option `opt`, as an integer in lo..hi into *out: 0, or -1 after the
 * usage error "OPT 'VAL': expected a count" ("expected LO..HI" with say_range). */
int qc_cmd_count(const char *cmd, const char *opt, const char *val, long lo, long hi,
                 int say_range, long *out);

/* Quantization options shared by calibrate and compare (--activation-type, --bias,
 * --ema-constant, --bins, --exclude, --op-types, --symmetric-weights, --asymmetric-weights,
 * --reduce-range): 1 if argv[*i] was one (and *i moved past it), 0 if not, -1 after a usage
 * error was printed. */
int qc_cmd_quant_opt(qc_quant_opts *o, int argc, char **argv, int *i, const char *cmd);
/* The same for the options that pick one configuration (--method, --percentile,
 * --per-channel, --symmetric-activations): `calibrate` and `doctor`; `compare` takes lists. */
int qc_cmd_config_opt(qc_quant_opts *o, int argc, char **argv, int *i, const char *cmd);

/* The samples of a sample-parallel calibration pass (qc_pass.h) as the commands read them:
 * shard s reads its own clone of the data set (d[0] is the caller's); a sample with NaN/Inf
 * values is an error with `strict`, else skipped with a one-line warning (after clearing the
 * progress line). */
struct qc_dataset;
struct qc_progress;
typedef struct qc_cmd_feed {
    struct qc_dataset **d;          /* per shard */
    int                 jobs;
    const char         *dir;
    int                 strict, n_inputs;
    const int          *idx;        /* pass sample i is dataset sample idx[i]; NULL: i */
    int64_t            *bad;        /* NaN/Inf count of each skipped sample */
    struct qc_progress *prog;
} qc_cmd_feed;
/* `jobs` shards over pass samples 0..n-1; qc_cmd_feed_close also after a failure. */
int  qc_cmd_feed_open(qc_cmd_feed *f, struct qc_dataset *d, int jobs, const char *dir,
                      int strict, int n_inputs, const int *idx, int n,
                      struct qc_progress *prog, qc_err *err);
void qc_cmd_feed_close(qc_cmd_feed *f);
/* Pass sample i's inputs on `shard`: QC_OK, 1 to skip it (NaN/Inf), or an error. */
int  qc_cmd_feed_load(void *feed, int shard, int i, qc_tensor **in, qc_err *err);
/* Prefixes err with sample i's path ("DIR/NAME"). */
void qc_cmd_feed_failed(void *feed, int i, qc_err *err);
/* After sample i, under the pass's lock (status 1: skipped): the warning, the progress. */
void qc_cmd_feed_after(void *feed, int i, int status, int n_finished);

/* The calibration samples idx[0..n) of d (idx NULL: 0..n-1) through qc_compare_observe_pass,
 * side by side on qc_pass_default_jobs() shards, read through a qc_cmd_feed. */
struct qc_compare;
int qc_cmd_compare_pass(struct qc_compare *c, struct qc_dataset *d, const char *dir, int strict,
                        const int *idx, int n, int n_inputs, struct qc_progress *prog, int *used,
                        int *skipped, qc_err *err);

/* Prints "calibrate: <err->msg>" once on stderr; returns the exit status for `code`. */
int qc_cmd_fail(int code, const qc_err *err);
/* Prints "calibrate: <message>" and "Try 'calibrate[ cmd] --help'." and returns 2. */
int qc_cmd_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of option argv[*i] ("--opt value" or "--opt=value") if argv[*i] is `name` (or
 * `alias`, may be NULL); advances *i past it. NULL if argv[*i] is another option; sets
 * *missing if the value is absent. */
const char *qc_cmd_optval(int argc, char **argv, int *i, const char *name, const char *alias,
                          int *missing);

#endif
