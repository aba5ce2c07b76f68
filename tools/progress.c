#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "progress.h"

double qc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void qc_progress_start(qc_progress *p, const char *label, const char *unit, int64_t total,
                       int quiet)
{
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t0 = qc_now();
    p->last_draw = 0;
    p->drawn = 0;
}

static void fmt_duration(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void qc_progress_update(qc_progress *p, int64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    double now = qc_now();
    if (p->drawn && now - p->last_draw < 0.1 && done < p->total)
        return;
    double el = now - p->t0, rate = el > 0 ? (double)done / el : 0;
    char eta[32] = "?";
    if (rate > 0 && done <= p->total)
        fmt_duration(eta, sizeof eta, (double)(p->total - done) / rate);
    /* "\033[K" clears what a longer previous line left behind */
    fprintf(stderr, "\r%s: %lld/%lld %s  %.1f/s  ETA %s\033[K", p->label, (long long)done,
            (long long)p->total, p->unit, rate, eta);
    fflush(stderr);
    p->last_draw = now;
    p->drawn = 1;
}

void qc_progress_end(qc_progress *p)
{
    if (p->enabled && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->drawn = 0;
}
