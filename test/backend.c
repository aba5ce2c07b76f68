/* ONNX backend node-test conformance runner.
 *
 *   backend_test [--dir DIR] [--exclusions FILE] [--no-fork] [-v] [FILTER]
 *
 * Runs every case folder under DIR (default: the libonnx-testdata node tests) whose name
 * contains FILTER: model.onnx plus test_data_set_N/{input,output}_K.pb. Each case runs in a
 * forked child (unless --no-fork) so that a crash, a sanitizer report or a hang fails that
 * case alone. A case whose model cannot be planned (QC_EUNSUPPORTED) is "not implemented";
 * one whose declared inputs/outputs use dtypes the executor cannot hold, or that is listed in
 * the exclusions file, is "excluded". Every other case must match the reference outputs at
 * rtol 1e-4, atol 1e-5 (integers and booleans exactly). Exit 1 if any case failed. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "qc_exec.h"
#include "qc_model.h"

#define DEFAULT_DIR   "/usr/share/libonnx-testdata/data/node"
#define DEFAULT_EXCL  "test/backend_exclusions.txt"
#define RTOL          1e-4
#define ATOL          1e-5
#define MAX_PB        64
#define CASE_TIMEOUT  120       /* seconds per case in a child */

enum { R_PASS, R_FAIL, R_NOTIMPL, R_EXCL_DTYPE, R_EXCL_LIST };

/* What a child sends back; small enough for one atomic pipe write. */
typedef struct result {
    int  status;
    char op[64];
    char why[700];
} result;

typedef struct op_stat {
    char op[64];
    int  passed, total, notimpl, excluded;
} op_stat;

static op_stat *stats;
static int      n_stats, cap_stats;
static char   **excl_names;
static int      n_excl;
static int      verbose;
static int      report_fd = -1;     /* in a forked child: where results go */

/* A child reports as soon as it knows the op, so that a crash later is still attributed. */
static void report(const result *r)
{
    if (report_fd >= 0 && write(report_fd, r, sizeof *r) != (ssize_t)sizeof *r)
        report_fd = -1;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "backend_test: out of memory\n");
        exit(2);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of `dir` that start with `prefix` (NULL: all but dot-files). */
static int list_dir(const char *dir, const char *prefix, char ***out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        names = xrealloc(names, sizeof *names * (size_t)(n + 1));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Exclusions: "test_name  reason" per line; '#' comments and blank lines ignored. */
static void load_exclusions(const char *path, int required)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (required) {
            fprintf(stderr, "backend_test: %s: %s\n", path, strerror(errno));
            exit(2);
        }
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\n' || *s == '\0')
            continue;
        s[strcspn(s, " \t\r\n")] = '\0';
        excl_names = xrealloc(excl_names, sizeof *excl_names * (size_t)(n_excl + 1));
        excl_names[n_excl++] = xstrdup(s);
    }
    fclose(f);
}

static int is_excluded(const char *name)
{
    for (int i = 0; i < n_excl; i++)
        if (!strcmp(excl_names[i], name))
            return 1;
    return 0;
}

/* The op a case is about: the first node that is not a Constant. */
static void main_op(const qc_model *m, char *op, size_t n)
{
    const char *o = m->n_nodes ? m->nodes[0].op_type : "(empty)";
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].op_type, "Constant") != 0) {
            o = m->nodes[i].op_type;
            break;
        }
    snprintf(op, n, "%s", o);
}

static int is_float_dtype(int dtype)
{
    return dtype == QC_F32 || dtype == QC_F16 || dtype == QC_F64 || dtype == QC_BF16;
}

static int same_float(double got, double exp)
{
    if (isnan(exp) || isnan(got))
        return isnan(exp) && isnan(got);
    if (isinf(exp) || isinf(got))
        return got == exp;
    return fabs(got - exp) <= ATOL + RTOL * fabs(exp);
}

/* Flat index -> "[i,j,k]" for the failure message. */
static void index_str(const qc_tensor *t, int64_t flat, char *buf, size_t n)
{
    int64_t idx[QC_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t dim = t->dims[d] > 0 ? t->dims[d] : 1;
        idx[d] = flat % dim;
        flat /= dim;
    }
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? "," : "", (long long)idx[d]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* 0 if `got` matches `exp`; otherwise 1 with the first mismatch in `why`. */
static int compare(const qc_tensor *got, const qc_tensor *exp, char *why, size_t n)
{
    char sg[128], se[128];
    if (got->dtype != exp->dtype) {
        snprintf(why, n, "dtype %s, expected %s", qc_dtype_name(got->dtype),
                 qc_dtype_name(exp->dtype));
        return 1;
    }
    if (!qc_shape_equal(got, exp)) {
        snprintf(why, n, "shape %s, expected %s", qc_shape_str(got, sg, sizeof sg),
                 qc_shape_str(exp, se, sizeof se));
        return 1;
    }
    int64_t len = qc_tensor_numel(exp);
    int flt = is_float_dtype(exp->dtype);
    int64_t bad = 0;
    int64_t first = -1;
    for (int64_t i = 0; i < len; i++) {
        int ok = flt ? same_float(qc_tensor_get_f(got, i), qc_tensor_get_f(exp, i))
                     : qc_tensor_get_i(got, i) == qc_tensor_get_i(exp, i);
        if (!ok) {
            if (first < 0)
                first = i;
            bad++;
        }
    }
    if (first < 0)
        return 0;
    index_str(exp, first, sg, sizeof sg);
    if (flt)
        snprintf(why, n, "%lld/%lld values differ; first at %s: got %.9g, expected %.9g",
                 (long long)bad, (long long)len, sg, qc_tensor_get_f(got, first),
                 qc_tensor_get_f(exp, first));
    else
        snprintf(why, n, "%lld/%lld values differ; first at %s: got %lld, expected %lld",
                 (long long)bad, (long long)len, sg, (long long)qc_tensor_get_i(got, first),
                 (long long)qc_tensor_get_i(exp, first));
    return 1;
}

/* Loaded {input,output}_K.pb files of one data set. */
typedef struct pb_set {
    int       n;
    qc_tensor t[MAX_PB];
    char     *name[MAX_PB];
} pb_set;

static void pb_set_free(pb_set *s)
{
    for (int i = 0; i < s->n; i++) {
        qc_tensor_free(&s->t[i]);
        free(s->name[i]);
    }
    s->n = 0;
}

static int pb_set_load(pb_set *s, const char *dir, const char *stem, qc_err *err)
{
    char path[4096];
    memset(s, 0, sizeof *s);
    for (int k = 0; k < MAX_PB; k++) {
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, stem, k);
        if (!is_file(path))
            break;
        int rc = qc_tensor_load_pb(&s->t[k], &s->name[k], path, err);
        if (rc != QC_OK) {
            pb_set_free(s);
            return rc;
        }
        s->n = k + 1;
    }
    return QC_OK;
}

/* Index of the pb for graph value `name`: by name (the files usually carry the graph's
 * names), else by position. -1 if none. */
static int pb_match(const pb_set *s, const char *name, int pos)
{
    for (int i = 0; i < s->n; i++)
        if (s->name[i] && !strcmp(s->name[i], name))
            return i;
    return pos < s->n ? pos : -1;
}

static int run_data_set(const qc_model *m, qc_exec *x, const char *dsdir, result *res)
{
    qc_err err = {0};
    pb_set in, out;
    int status = R_FAIL;
    const char *ds = strrchr(dsdir, '/') + 1;
    qc_tensor *feeds = calloc((size_t)m->n_inputs + 1, sizeof *feeds);

    if (pb_set_load(&in, dsdir, "input", &err) != QC_OK) {
        int code = err.code;
        snprintf(res->why, sizeof res->why, "%s", err.msg);
        free(feeds);
        return code == QC_EUNSUPPORTED ? R_EXCL_DTYPE : R_FAIL;
    }
    if (pb_set_load(&out, dsdir, "output", &err) != QC_OK) {
        int code = err.code;
        snprintf(res->why, sizeof res->why, "%s", err.msg);
        pb_set_free(&in);
        free(feeds);
        return code == QC_EUNSUPPORTED ? R_EXCL_DTYPE : R_FAIL;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        int k = pb_match(&in, m->inputs[i].name, i);
        if (k < 0) {
            snprintf(res->why, sizeof res->why, "%s: no input_N.pb for graph input '%s'",
                     ds, m->inputs[i].name);
            goto done;
        }
        feeds[i] = in.t[k];
        feeds[i].name = m->inputs[i].name;
    }
    if (qc_exec_run(x, feeds, m->n_inputs, &err) != QC_OK) {
        snprintf(res->why, sizeof res->why, "%s: run: %s", ds, err.msg);
        goto done;
    }
    if (out.n == 0) {
        snprintf(res->why, sizeof res->why, "%s: no output_N.pb", ds);
        goto done;
    }
    for (int k = 0; k < out.n; k++) {
        int j = -1;
        for (int o = 0; o < m->n_outputs; o++)
            if (out.name[k] && !strcmp(out.name[k], m->outputs[o].name))
                j = o;
        if (j < 0)
            j = k;
        if (j >= qc_exec_n_outputs(x) || !qc_exec_output(x, j)) {
            snprintf(res->why, sizeof res->why, "%s: output %d missing (model has %d)", ds,
                     k, qc_exec_n_outputs(x));
            goto done;
        }
        char why[600];
        if (compare(qc_exec_output(x, j), &out.t[k], why, sizeof why)) {
            snprintf(res->why, sizeof res->why, "%s: output '%s': %s", ds,
                     m->outputs[j].name, why);
            goto done;
        }
    }
    status = R_PASS;
done:
    pb_set_free(&in);
    pb_set_free(&out);
    free(feeds);
    return status;
}

static const char *bad_declared_dtype(const qc_model *m, char *buf, size_t n)
{
    for (int i = 0; i < m->n_inputs + m->n_outputs; i++) {
        const qc_value_info *v = i < m->n_inputs ? &m->inputs[i] : &m->outputs[i - m->n_inputs];
        if (!qc_dtype_is_executable(v->dtype)) {
            snprintf(buf, n, "%s '%s' is %s", i < m->n_inputs ? "input" : "output", v->name,
                     v->dtype ? qc_dtype_name(v->dtype) : "not a tensor");
            return buf;
        }
    }
    return NULL;
}

static void run_case(const char *root, const char *name, result *res)
{
    char path[4096];
    qc_err err = {0};
    qc_model *m = NULL;
    qc_exec *x = NULL;
    char **sets = NULL;
    int n_sets = 0;

    memset(res, 0, sizeof *res);
    res->status = R_FAIL;
    snprintf(res->op, sizeof res->op, "(unloadable)");
    snprintf(path, sizeof path, "%s/%s/model.onnx", root, name);
    int rc = qc_model_load(&m, path, &err);
    if (rc != QC_OK) {
        res->status = rc == QC_EUNSUPPORTED ? R_NOTIMPL : R_FAIL;
        snprintf(res->why, sizeof res->why, "load: %s", err.msg);
        return;
    }
    main_op(m, res->op, sizeof res->op);
    snprintf(res->why, sizeof res->why, "died");
    report(res);
    res->why[0] = '\0';
    if (is_excluded(name)) {
        res->status = R_EXCL_LIST;
        goto done;
    }
    char buf[300];
    if (bad_declared_dtype(m, buf, sizeof buf)) {
        res->status = R_EXCL_DTYPE;
        snprintf(res->why, sizeof res->why, "%s", buf);
        goto done;
    }
    rc = qc_exec_new(&x, m, NULL, &err);
    if (rc != QC_OK) {
        res->status = rc == QC_EUNSUPPORTED ? R_NOTIMPL : R_FAIL;
        snprintf(res->why, sizeof res->why, "plan: %s", err.msg);
        goto done;
    }
    snprintf(path, sizeof path, "%s/%s", root, name);
    n_sets = list_dir(path, "test_data_set_", &sets);
    if (n_sets <= 0) {
        snprintf(res->why, sizeof res->why, "no test_data_set_* folders");
        goto done;
    }
    for (int s = 0; s < n_sets; s++) {
        char dsdir[4096];
        snprintf(dsdir, sizeof dsdir, "%s/%s/%s", root, name, sets[s]);
        res->status = run_data_set(m, x, dsdir, res);
        if (res->status != R_PASS)
            break;
    }
done:
    if (sets)
        free_names(sets, n_sets);
    qc_exec_free(x);
    qc_model_free(m);
}

/* Runs the case in a child; a crash, sanitizer abort, leak report or hang is a failure. */
static void run_case_forked(const char *root, const char *name, result *res)
{
    int fd[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(fd) != 0) {
        run_case(root, name, res);
        return;
    }
    FILE *errf = tmpfile();         /* the child's stderr, to quote a sanitizer report */
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        if (errf)
            fclose(errf);
        run_case(root, name, res);
        return;
    }
    if (pid == 0) {
        result r;
        close(fd[0]);
        if (errf)
            dup2(fileno(errf), 2);
        report_fd = fd[1];
        alarm(CASE_TIMEOUT);
        run_case(root, name, &r);
        report(&r);
        int ok = report_fd >= 0;
        close(fd[1]);
        free_names(excl_names, n_excl);
        free(stats);
        exit(ok ? 0 : 1);
    }
    close(fd[1]);
    /* keep the last complete report */
    result buf;
    size_t got = 0, n_full = 0;
    for (;;) {
        ssize_t k = read(fd[0], (char *)&buf + got, sizeof buf - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got == sizeof buf) {
            *res = buf;
            n_full++;
            got = 0;
        }
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    char quote[300] = "";
    if (errf) {
        char line[1024];
        rewind(errf);
        while (fgets(line, sizeof line, errf)) {
            fputs(line, stderr);
            if (!quote[0] && (strstr(line, "runtime error") || strstr(line, "ERROR: ")))
                snprintf(quote, sizeof quote, "%.*s", (int)strcspn(line, "\n"), line);
        }
        fclose(errf);
    }
    if (!n_full) {
        memset(res, 0, sizeof *res);
        snprintf(res->op, sizeof res->op, "(unloadable)");
        snprintf(res->why, sizeof res->why, "died while loading the model");
    }
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        res->status = R_FAIL;
        snprintf(res->why, sizeof res->why, "%s (signal %d: %s)",
                 sig == SIGALRM ? "timed out" : "crashed", sig, strsignal(sig));
    } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        /* sanitizers report on stderr and exit non-zero (LeakSanitizer after the result) */
        res->status = R_FAIL;
        snprintf(res->why, sizeof res->why, "exit status %d: %s", WEXITSTATUS(st),
                 quote[0] ? quote : "see stderr");
    }
}

static op_stat *stat_for(const char *op)
{
    for (int i = 0; i < n_stats; i++)
        if (!strcmp(stats[i].op, op))
            return &stats[i];
    if (n_stats == cap_stats) {
        cap_stats = cap_stats ? 2 * cap_stats : 64;
        stats = xrealloc(stats, sizeof *stats * (size_t)cap_stats);
    }
    op_stat *s = &stats[n_stats++];
    memset(s, 0, sizeof *s);
    snprintf(s->op, sizeof s->op, "%s", op);
    return s;
}

static int cmp_stat(const void *a, const void *b)
{
    return strcmp(((const op_stat *)a)->op, ((const op_stat *)b)->op);
}

static void usage(void)
{
    fprintf(stderr, "usage: backend_test [--dir DIR] [--exclusions FILE] [--no-fork] [-v] "
            "[FILTER]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *root = DEFAULT_DIR, *filter = NULL, *excl = DEFAULT_EXCL;
    int use_fork = 1, excl_required = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            root = argv[++i];
        else if (!strcmp(argv[i], "--exclusions") && i + 1 < argc) {
            excl = argv[++i];
            excl_required = 1;
        } else if (!strcmp(argv[i], "--no-fork"))
            use_fork = 0;
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (argv[i][0] == '-' || filter)
            usage();
        else
            filter = argv[i];
    }
    if (!is_dir(root)) {
        fprintf(stderr, "backend_test: %s: no such folder\n", root);
        return 2;
    }
    char excl_buf[4096];
    if (!excl_required && !is_file(excl)) {
        /* run from elsewhere than the source root: try next to the binary (build/../test) */
        const char *slash = strrchr(argv[0], '/');
        int len = slash ? (int)(slash - argv[0]) : 1;
        snprintf(excl_buf, sizeof excl_buf, "%.*s/../%s", len, slash ? argv[0] : ".",
                 DEFAULT_EXCL);
        excl = excl_buf;
    }
    load_exclusions(excl, excl_required);

    char **cases = NULL;
    int n_cases = list_dir(root, NULL, &cases);
    int passed = 0, failed = 0, notimpl = 0, ex_dtype = 0, ex_list = 0;
    for (int c = 0; c < n_cases; c++) {
        char mpath[4096];
        if (filter && !strstr(cases[c], filter))
            continue;
        snprintf(mpath, sizeof mpath, "%s/%s/model.onnx", root, cases[c]);
        if (!is_file(mpath))
            continue;
        result r;
        if (use_fork)
            run_case_forked(root, cases[c], &r);
        else
            run_case(root, cases[c], &r);
        op_stat *s = stat_for(r.op);
        switch (r.status) {
        case R_PASS:
            passed++, s->passed++, s->total++;
            if (verbose)
                printf("ok       %s\n", cases[c]);
            break;
        case R_FAIL:
            failed++, s->total++;
            printf("FAILED   %s (%s): %s\n", cases[c], r.op, r.why);
            break;
        case R_NOTIMPL:
            notimpl++, s->notimpl++;
            if (verbose)
                printf("notimpl  %s (%s): %s\n", cases[c], r.op, r.why);
            break;
        case R_EXCL_DTYPE:
            ex_dtype++, s->excluded++;
            if (verbose)
                printf("excluded %s (%s): dtype: %s\n", cases[c], r.op, r.why);
            break;
        default:
            ex_list++, s->excluded++;
            if (verbose)
                printf("excluded %s: listed in %s\n", cases[c], excl);
            break;
        }
        fflush(stdout);
    }
    free_names(cases, n_cases);

    if (n_stats)
        qsort(stats, (size_t)n_stats, sizeof *stats, cmp_stat);
    printf("\n%-28s %9s %8s %8s\n", "op", "passed", "notimpl", "excluded");
    for (int i = 0; i < n_stats; i++) {
        if (!stats[i].total)
            continue;
        char pt[32];
        snprintf(pt, sizeof pt, "%d/%d", stats[i].passed, stats[i].total);
        printf("%-28s %9s %8d %8d%s\n", stats[i].op, pt, stats[i].notimpl, stats[i].excluded,
               stats[i].passed < stats[i].total ? "  <-- failing" : "");
    }
    printf("not implemented: %d cases", notimpl);
    int first = 1;
    for (int i = 0; i < n_stats; i++)
        if (stats[i].notimpl && !stats[i].total) {
            printf("%s%s(%d)", first ? ": " : " ", stats[i].op, stats[i].notimpl);
            first = 0;
        }
    printf("\nexcluded: %d cases (%d dtype, %d listed in %s)\n", ex_dtype + ex_list, ex_dtype,
           ex_list, excl);
    printf("backend: %d passed, %d failed\n", passed, failed);
    free_names(excl_names, n_excl);
    free(stats);
    return failed ? 1 : 0;
}
