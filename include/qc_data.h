/* Calibration data: a folder of samples turned into model input tensors, one sample at a time.
 *
 * Folder forms:
 *  (a) one file per sample directly in the folder (single-input models only): .npy, .pb
 *      (ONNX TensorProto), .png, .jpg/.jpeg;
 *  (b) one sub-folder per sample holding one file per model input, named
 *      "<input name>.npy|.pb|.png|.jpg|.jpeg" ('/' in the name as '_') or "input_<k>.pb|.npy"
 *      (k = position in the model's inputs, as in ONNX test_data_set folders).
 * Files with other extensions and names starting with '.' are ignored. Samples are sorted
 * by name (strcmp). Tensor files must hold the model input's dtype (float64/float16 files
 * are read as float32); a tensor whose rank is one less than the model input gets a leading
 * batch dim of 1; declared dims are checked (symbolic dims accept anything). */
#ifndef QC_DATA_H
#define QC_DATA_H

#include "qc_model.h"

/* Image preprocessing. Pixels are decoded as 8-bit RGB, resized bilinearly (half-pixel
 * centers, no antialiasing, no rounding) to height x width, optionally reordered to BGR,
 * then value = (pixel * scale - mean[c]) / std[c] with c in the model's channel order.
 * A 1-channel model input gets luma 0.299 R + 0.587 G + 0.114 B. A uint8 model input gets
 * the resized pixels rounded, without scale/mean/std. */
typedef struct qc_preproc {
    int   height, width;            /* --size HxW; 0 = the model input's static dims */
    int   nhwc;                     /* --layout nhwc (default nchw) */
    int   bgr;                      /* --channels bgr (default rgb) */
    float scale;                    /* --scale (default 1/255) */
    float mean[4], std[4];          /* --mean a,b,c --std a,b,c (default 0 and 1) */
    int   n_mean, n_std;            /* 0 = defaults; 1 = same for every channel */
    int   allow_nonfinite;          /* --allow-nonfinite: accept NaN/Inf in float samples */
} qc_preproc;

/* Defaults: nchw, rgb, scale 1/255, mean 0, std 1, size from the model. */
void qc_preproc_init(qc_preproc *pp);

/* Parses one preprocessing flag at argv[*i] ("--flag value" or "--flag=value"). Returns 1
 * and advances *i past the flag (and its value) if it was one, 0 if argv[*i] is not a
 * preprocessing flag, or QC_EUSAGE with a message naming the flag. */
int qc_preproc_parse_arg(qc_preproc *pp, int argc, char **argv, int *i, qc_err *err);

/* Help text for the flags above (lines indented by two spaces, ending in '\n'). */
extern const char qc_preproc_usage[];

typedef struct qc_dataset qc_dataset;

/* Scans `dir` and checks what can be checked without reading the data (file presence, .npy
 * headers, image input shapes). `m` must outlive the dataset; `pp` (NULL: defaults) is
 * copied. QC_EINPUT/QC_EIO naming the folder or file on failure; *out is NULL then. */
int  qc_dataset_open(qc_dataset **out, const char *dir, const qc_model *m,
                     const qc_preproc *pp, qc_err *err);
int  qc_dataset_count(const qc_dataset *d);
/* Sample i's file or sub-folder name (borrowed until qc_dataset_free). */
const char *qc_dataset_sample_name(const qc_dataset *d, int i);
/* Loads sample i; *inputs receives an array of m->n_inputs tensors in model input order,
 * ready for qc_exec_run(x, *inputs, m->n_inputs, err). The tensors are owned by the dataset
 * and valid until the next load or qc_dataset_free; only one sample is held at a time.
 * Errors (QC_EINPUT, QC_EIO, QC_ENOMEM) name the file; NaN/Inf in a float sample is
 * QC_EINPUT with the count unless pp->allow_nonfinite. */
int  qc_dataset_load(qc_dataset *d, int i, qc_tensor **inputs, qc_err *err);
void qc_dataset_free(qc_dataset *d);
/* A second handle on the same samples (the same file list, no rescan) with its own loading
 * buffers, so two threads can load at once (sample-parallel passes, qc_pass.h). */
int  qc_dataset_clone(const qc_dataset *d, qc_dataset **out, qc_err *err);

#endif
