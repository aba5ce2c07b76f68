#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "qc_err.h"

/* Messages quote names and strings from input files: a control character there (a newline,
 * an escape sequence) would break the one-line contract or drive the terminal. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

int qc_errf(qc_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        one_line(err->msg);
        err->code = code;
    }
    return code;
}

void qc_err_prefix(qc_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char pre[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t cap = sizeof err->msg - 1, lp = strlen(pre), lo = strlen(old);
    if (lp > cap - 2)
        lp = cap - 2;
    memcpy(err->msg, pre, lp);
    memcpy(err->msg + lp, ": ", 2);
    if (lo > cap - lp - 2)
        lo = cap - lp - 2;
    memcpy(err->msg + lp + 2, old, lo);
    err->msg[lp + 2 + lo] = '\0';
    one_line(err->msg);
}

int qc_err_exit_status(int code)
{
    switch (code) {
    case QC_OK: return 0;
    case QC_EUSAGE:
    case QC_EINPUT:
    case QC_ESHAPE: return 2;
    case QC_EUNSUPPORTED: return 3;
    case QC_EIO: return 4;
    default: return 1;
    }
}
