/* `calibrate doctor`: why a quantized model is (or will be) wrong, with the evidence and the fix.
 *
 * One float pass over the calibration data feeds everything: the quantizer that builds the
 * QDQ model (the user's options), and per-tensor statistics (exact min/max, min/max of the even
 * and odd samples, NaN/Inf counts, a strided histogram of float exponents giving percentiles
 * of |x| to within a factor sqrt(2)). The evaluation then runs the float model and the
 * quantized model (built, or given) on a few held-out samples: per-layer SQNR, saturation and
 * output agreement. Findings are ranked: error > warning > info, then by impact.
 *
 * Call order: qc_doctor_new; qc_doctor_calib_sample for each calibration sample;
 * qc_doctor_build; qc_doctor_eval_input for every eval sample (statistics only) and
 * qc_doctor_eval_sample for the ones evaluated; while qc_doctor_next_pass() returns N > 0,
 * feed the first N of them again through qc_doctor_eval_sample; qc_doctor_finish. */
#ifndef QC_DOCTOR_H
#define QC_DOCTOR_H

#include "qc_quant.h"

enum { QC_SEV_INFO = 0, QC_SEV_WARNING = 1, QC_SEV_ERROR = 2 };

typedef struct qc_finding {
    int    severity;            /* QC_SEV_* */
    const char *check;          /* stable id: "data.nonfinite", "range.one-sided", ... */
    char   subject[160];        /* file, tensor or node concerned */
    char   evidence[320];       /* what was measured */
    char   fix[200];            /* a flag or a data change */
    double impact;              /* orders findings of one severity (larger first) */
} qc_finding;

typedef struct qc_doctor_opts {
    qc_quant_opts q;            /* the options the model is (to be) quantized with */
    int n_calib;                /* calibration samples that will be fed (for messages) */
} qc_doctor_opts;

typedef struct qc_doctor qc_doctor;

/* Sets o->per_channel to what QDQ model `given` does with its weights: per channel if one of
 * its weights (an int8 or uint8 initializer into a DequantizeLinear) has a scale per channel,
 * per tensor if they all have one scale; unchanged without quantized weights. The weight
 * checks then describe the given model, not a rebuild with other options. Returns 1 if it
 * changed o->per_channel. */
int  qc_doctor_match_given(qc_quant_opts *o, const qc_model *given);

/* m: the prepared float model (must outlive the doctor). */
int  qc_doctor_new(qc_doctor **out, const qc_model *m, const qc_doctor_opts *o, qc_err *err);
void qc_doctor_free(qc_doctor *d);

/* One calibration sample (inputs in model input order). A sample with NaN/Inf in a float
 * input is recorded as a finding and skipped: returns 1 then, QC_OK when used. */
int  qc_doctor_calib_sample(qc_doctor *d, const char *file, const qc_tensor *in, int n,
                            qc_err *err);

/* Builds the QDQ model from the calibration (or, if `given` is not NULL, evaluates that
 * quantized model instead; it must outlive the doctor). */
int  qc_doctor_build(qc_doctor *d, const qc_model *given, qc_err *err);
/* Input statistics of a held-out sample (distribution shift); cheap, no model run. */
void qc_doctor_eval_input(qc_doctor *d, const qc_tensor *in, int n);
/* Runs float and quantized models on one held-out sample. Samples with NaN/Inf are ignored
 * (returns 1). */
int  qc_doctor_eval_sample(qc_doctor *d, const qc_tensor *in, int n, qc_err *err);
/* After the evaluated samples: N > 0 if another pass over the first N of the same samples,
 * in the same order, is wanted (the model with the layer where the error jumps left in float,
 * to measure what fixing it recovers), else 0. */
int  qc_doctor_next_pass(qc_doctor *d, qc_err *err);
/* Runs every check and ranks the findings. */
int  qc_doctor_finish(qc_doctor *d, qc_err *err);

int               qc_doctor_n_findings(const qc_doctor *d);
const qc_finding *qc_doctor_finding(const qc_doctor *d, int i);
const char       *qc_doctor_severity_name(int severity);

/* Summary figures (for the report header and the JSON). */
typedef struct qc_doctor_summary {
    int    n_calib, n_skipped, n_eval_inputs, n_evaluated;
    int    n_quantized_nodes, n_float_nodes, n_layers;
    double output_sqnr_db;      /* worst output, NaN if not evaluated */
    double top1;                /* NaN if no classifier-like output */
    const qc_model *quantized;  /* the model evaluated (built or given) */
} qc_doctor_summary;
void qc_doctor_get_summary(const qc_doctor *d, qc_doctor_summary *s);

/* The built QDQ model (NULL if a model was given). Borrowed until qc_doctor_free. */
const qc_model *qc_doctor_built_model(const qc_doctor *d);

/* Findings and summary as JSON (atomic write). */
int  qc_doctor_write_json(const qc_doctor *d, const char *path, qc_err *err);

#endif
