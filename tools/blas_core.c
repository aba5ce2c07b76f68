/* OpenBLAS kernels for the CPU the tool runs on.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian 12's 0.3.21) picks its kernels from the CPU's model
 * number when the library loads. On a model newer than the release (5th-generation Xeon,
 * family 6 model 207, is one) it falls back to the Prescott (SSE3) kernels, although the CPU
 * has AVX-512: sgemm then runs at a fraction of its speed (magika's float latency 1.26x
 * longer in `calibrate bench`). The choice can be changed only before the library
 * initializes, by OPENBLAS_CORETYPE, read by its constructor: so when the core it picked
 * predates AVX2 and the CPU (and the OS, which must save the wider registers) has AVX2 + FMA
 * or AVX-512, calibrate executes itself once more with the matching core. A
 * OPENBLAS_CORETYPE set by the user is left alone, and so is any core OpenBLAS recognized.
 *
 * Its threads: qcal runs OpenBLAS single-threaded (qc_sgemm splits large products over its own
 * pool), but with more than one thread (OPENBLAS_NUM_THREADS, else GOTO_NUM_THREADS or
 * OMP_NUM_THREADS, else every CPU) the constructor starts workers that spin on sched_yield for
 * about 0.1 s waiting for work, taking a core from the tool's start: calibrate --method minmax
 * of magika took 0.36-0.37 s with OPENBLAS_NUM_THREADS=2 and 0.31-0.32 s with 1. So the same
 * re-execution also sets OPENBLAS_NUM_THREADS=1 (about 3 ms: the start of the process). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmd.h"

/* Cores of OpenBLAS's x86 list without AVX2 kernels. */
static int pre_avx2(const char *core)
{
    static const char *const old[] = {
        "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Core2", "Penryn",
        "Dunnington", "Nehalem", "Atom", "Sandybridge", "Athlon", "Opteron", "Opteron(SSE3)",
        "Barcelona", "Nano", "Bobcat", "Bulldozer", "Piledriver", "Steamroller", "Excavator",
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++)
        if (!strcmp(core, old[i]))
            return 1;
    return 0;
}

const char *qc_blas_core_better(void)
{
#if defined(__x86_64__)
    const char *core = openblas_get_corename();
    if (!core || !pre_avx2(core))
        return NULL;
    /* libgcc checks the OS's XSAVE state (XCR0) along with the CPUID bits */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void qc_blas_core_fix(char **argv)
{
    /* OPENBLAS_CORETYPE set: the user's choice, or this process already re-executed */
    const char *core = getenv("OPENBLAS_CORETYPE") ? NULL : qc_blas_core_better();
    /* more threads than asked (an OpenBLAS that ignores the variable): no second try */
    const char *nt = getenv("OPENBLAS_NUM_THREADS");
    int threads = openblas_get_num_threads() > 1 && !(nt && !strcmp(nt, "1"));
    if (!core && !threads)
        return;
    char *keep = nt ? strdup(nt) : NULL;     /* the user's value, for a failed exec */
    if ((!core || setenv("OPENBLAS_CORETYPE", core, 1) == 0) &&
        (!threads || setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0))
        execv("/proc/self/exe", argv);
    /* no /proc: carry on as loaded */
    if (core)
        unsetenv("OPENBLAS_CORETYPE");
    if (keep)
        setenv("OPENBLAS_NUM_THREADS", keep, 1);
    else
        unsetenv("OPENBLAS_NUM_THREADS");
    free(keep);
}

void qc_blas_core_print(const char *prefix)
{
    int n = openblas_get_num_threads();
    printf("%sOpenBLAS kernels: %s (%s), %d thread%s\n", prefix, openblas_get_corename(),
           openblas_get_config(), n, n == 1 ? "" : "s");
}
