/* Errors: one line, filled by the layer that fails, prefixed by each layer above it. */
#ifndef QC_ERR_H
#define QC_ERR_H

enum {
    QC_OK = 0,
    QC_EUSAGE = -1,        /* bad command line / API misuse */
    QC_EINPUT = -2,        /* bad input file: malformed, wrong shape/dtype, NaN data */
    QC_EUNSUPPORTED = -3,  /* valid model we cannot execute (unknown op, dtype) */
    QC_EIO = -4,           /* read/write failure */
    QC_ENOMEM = -5,
    QC_ESHAPE = -6,        /* shapes that do not fit together at run time */
    QC_EINTERNAL = -7
};

typedef struct qc_err {
    int  code;
    char msg[512];
} qc_err;

/* Fills err->msg (if err is not NULL) and returns code. */
int  qc_errf(qc_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "<context>: " to err->msg. */
void qc_err_prefix(qc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Process exit status for an error code: 2 usage/input, 3 unsupported, 4 I/O, 1 other. */
int  qc_err_exit_status(int code);

#endif
