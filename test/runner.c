/* Runs the registered tests whose name contains argv[1] (all without argument).
 * Closing line: "N passed, N failed"; exit 1 on any failure. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"

#define MAX_TESTS 1024

static struct { const char *name; qc_test_fn fn; } tests[MAX_TESTS];
static int n_tests, cur_failed;

void qc_test_register(const char *name, qc_test_fn fn)
{
    if (n_tests < MAX_TESTS) {
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        n_tests++;
    }
}

void qc_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    cur_failed++;
}

const char *qc_test_build_dir(void)
{
    const char *d = getenv("QC_BUILD_DIR");
    return d ? d : "build";
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    /* run in name order so output is stable whatever the link order */
    const char *names[MAX_TESTS];
    for (int i = 0; i < n_tests; i++)
        names[i] = tests[i].name;
    qsort(names, (size_t)n_tests, sizeof names[0], cmp);
    for (int k = 0; k < n_tests; k++) {
        int i = 0;
        while (strcmp(tests[i].name, names[k]) != 0)
            i++;
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        cur_failed = 0;
        tests[i].fn();
        printf("%s %s\n", cur_failed ? "FAIL" : "ok  ", tests[i].name);
        fflush(stdout);
        if (cur_failed)
            failed++;
        else
            passed++;
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
