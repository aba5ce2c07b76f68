/* calibrate: command-line front end. Dispatches to a subcommand; errors are printed once, as
 * "calibrate: <message>", and mapped to the exit status by qc_err_exit_status(). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include "cmd.h"
#include "qc_io.h"

#define QC_TOOL_VERSION "0.1.0-dev"

static const char usage[] =
    "usage: calibrate [options] --data DIR MODEL.onnx -o OUT.onnx\n"
    "       calibrate run MODEL.onnx --data DIR -o OUTDIR [options]\n"
    "       calibrate compare --data DIR [--eval DIR] MODEL.onnx [options]\n"
    "       calibrate doctor --data DIR [--eval DIR] MODEL.onnx [QUANTIZED.onnx] [options]\n"
    "\n"
    "Post-training quantization of ONNX models.\n"
    "\n"
    "commands:\n"
    "  (none)   calibrate MODEL on the samples in DIR and write a quantized model\n"
    "  run      run the float model on every sample and save its outputs as .npy\n"
    "  compare  rank calibration strategies (one float pass feeds them all) by their error\n"
    "  doctor   find what makes the quantized model wrong (data, ranges, model), with fixes\n"
    "  info     inputs, outputs and ops of a model, and whether qcal can run it\n"
    "  save     load a model and write it back (round trip; external data)\n"
    "  bench    float latency of qcal's executor on the samples in DIR\n"
    "\n"
    "DIR holds one file per sample (.npy, .pb, .png, .jpg) for single-input models, or one\n"
    "sub-folder per sample with a file per model input (<input name>.npy or input_<k>.pb).\n"
    "\n"
    "Run 'calibrate run --help' for the options of a command; 'calibrate --version' for the\n"
    "version and the OpenBLAS kernels in use.\n"
    "Exit status: 0 ok, 2 usage or input error, 3 unsupported model, 4 I/O error.\n";

int qc_cmd_fail(int code, const qc_err *err)
{
    fprintf(stderr, "calibrate: %s\n", err && err->msg[0] ? err->msg : "unknown error");
    return qc_err_exit_status(code);
}

int qc_cmd_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("calibrate: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'calibrate%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    return qc_err_exit_status(QC_EUSAGE);
}

const char *qc_cmd_optval(int argc, char **argv, int *i, const char *name, const char *alias,
                          int *missing)
{
    const char *names[2] = { name, alias };
    const char *arg = argv[*i];
    *missing = 0;
    for (int k = 0; k < 2; k++) {
        if (!names[k])
            continue;
        size_t n = strlen(names[k]);
        if (strncmp(arg, names[k], n) != 0)
            continue;
        if (arg[n] == '=') {
            (*i)++;
            return arg + n + 1;
        }
        if (arg[n] != '\0')
            continue;
        if (*i + 1 >= argc) {
            *missing = 1;
            return NULL;
        }
        *i += 2;
        return argv[*i - 1];
    }
    return NULL;
}

/* Replaced by the real calibration command (tools/cmd_calibrate.c) when it exists. */
__attribute__((weak)) int qc_cmd_calibrate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("calibrate: quantization is not implemented yet\n", stderr);
    return 3;
}

/* An interrupted run leaves no temp file behind: remove the ones being written, then die of
 * the signal as usual (SA_RESETHAND restored the default action; the raised signal is
 * delivered when the handler returns). */
static void on_signal(int sig)
{
    qc_afile_unlink_all();
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);      /* ignored stays ignored (nohup, &) */
}

/* One malloc arena unless MALLOC_ARENA_MAX says otherwise. glibc gives each thread that
 * allocates an arena of its own, and which buffers land in which arena depends on thread
 * timing: calibrate's peak RSS varied by 10 MB from run to run on ddddocr (100 samples, ema:
 * 403.4-413.3 MB in three runs) against 393.6-393.9 MB with one arena, and nudenet's entropy
 * peaked at 263.5-263.7 MB against 239.5-239.6 MB (three runs each, AMD EPYC, 2 cores; wall
 * time within the runs' spread). The worker threads allocate outside their hot loops. */
static void one_arena(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 1);
#endif
}

/* Buffers of 128 KiB and more always mmapped (unless MALLOC_MMAP_THRESHOLD_ says otherwise):
 * glibc raises its threshold to the size of each such buffer freed, after which buffers that
 * size come from the heap, which keeps what it freed; how much it keeps depends on the order
 * in which threads free. magika's peak RSS was 39-46 MB from run to run at 100 samples and
 * 39-46 MB at 1000 (`calibrate --method minmax --per-channel -q` on the bench's sample
 * folders, six and four runs), so the cost bench read growth where there was none; with the
 * fixed threshold 35.6-37.5 and 35.8-36.0 MB. */
static void fixed_mmap_threshold(void)
{
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    if (!getenv("MALLOC_MMAP_THRESHOLD_"))
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

int main(int argc, char **argv)
{
    one_arena();
    fixed_mmap_threshold();
    qc_blas_core_fix(argv);
    catch_signals();
    if (argc < 2) {
        fputs(usage, stderr);
        return qc_err_exit_status(QC_EUSAGE);
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version")) {
        printf("calibrate (qcal) %s\n", QC_TOOL_VERSION);
        qc_blas_core_print("");
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        char *help[] = { argv[0], "--help", NULL };
        fputs(usage, stdout);
        fputs("\n", stdout);
        return qc_cmd_calibrate(2, help);      /* and the options of the main command */
    }
    if (!strcmp(cmd, "run"))
        return qc_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare"))
        return qc_cmd_compare(argc - 1, argv + 1);
    if (!strcmp(cmd, "doctor"))
        return qc_cmd_doctor(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return qc_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "save"))
        return qc_cmd_save(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return qc_cmd_bench(argc - 1, argv + 1);
    return qc_cmd_calibrate(argc, argv);
}
