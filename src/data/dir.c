#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "data.h"
#include "qc_io.h"

enum { FORM_FILES, FORM_FOLDERS };

struct qc_dataset {
    const qc_model *m;
    qc_preproc      pp;
    int             form;
    int             n, n_in;
    char          **names;          /* n sample names, sorted */
    char          **paths;          /* n * n_in files */
    signed char    *kinds;          /* n * n_in QC_SRC_* */
    qc_image_geom  *geom;           /* n_in; valid where has_geom */
    char           *has_geom;
    qc_tensor      *slots;          /* n_in owned tensors: the current sample */
    qc_image        img;
};

int qc_data_kind(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return QC_SRC_NONE;
    if (!strcasecmp(dot, ".npy"))
        return QC_SRC_NPY;
    if (!strcasecmp(dot, ".pb"))
        return QC_SRC_PB;
    if (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))
        return QC_SRC_IMAGE;
    return QC_SRC_NONE;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

typedef struct list {
    char **v;
    int    n, cap;
} list;

static int push(list *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static void list_free(list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Sample files and sub-folders of dir (dot-names and unknown extensions skipped). */
static int scan(const char *dir, list *files, list *folders, qc_err *err)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        int e = errno;
        if (e == ENOENT)
            return qc_errf(err, QC_EINPUT, "%s: no such folder", dir);
        if (e == ENOTDIR)
            return qc_errf(err, QC_EINPUT, "%s: not a folder", dir);
        return qc_errf(err, QC_EIO, "%s: cannot read folder: %s", dir, strerror(e));
    }
    int rc = QC_OK;
    struct dirent *de;
    errno = 0;
    while (rc == QC_OK && (de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *p = qc_path_join(dir, de->d_name);
        struct stat st;
        if (!p) {
            rc = qc_errf(err, QC_ENOMEM, "%s: out of memory", dir);
        } else if (stat(p, &st) != 0) {
            /* a dangling link is not a sample; anything else unreadable is an error */
            if (errno != ENOENT)
                rc = qc_errf(err, QC_EIO, "%s: %s", p, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (push(folders, de->d_name))
                rc = qc_errf(err, QC_ENOMEM, "%s: out of memory", dir);
        } else if (S_ISREG(st.st_mode) && qc_data_kind(de->d_name) != QC_SRC_NONE) {
            if (push(files, de->d_name))
                rc = qc_errf(err, QC_ENOMEM, "%s: out of memory", dir);
        }
        free(p);
        errno = 0;
    }
    if (rc == QC_OK && errno != 0)
        rc = qc_errf(err, QC_EIO, "%s: cannot read folder: %s", dir, strerror(errno));
    closedir(dp);
    return rc;
}

/* Finds the file for input k in a sample sub-folder. */
static int resolve(const char *folder, const qc_value_info *vi, int k, char **path, int *kind,
                   qc_err *err)
{
    static const char *const exts[] = { ".npy", ".pb", ".png", ".jpg", ".jpeg" };
    char base[256], name[300];
    qc_safe_filename(vi->name, base, sizeof base);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t e = 0; e < sizeof exts / sizeof exts[0]; e++) {
            if (pass == 0)
                snprintf(name, sizeof name, "%s%s", base, exts[e]);
            else if (e < 2)
                snprintf(name, sizeof name, "input_%d%s", k, exts[e]);
            else
                continue;
            char *p = qc_path_join(folder, name);
            if (!p)
                return qc_errf(err, QC_ENOMEM, "%s: out of memory", folder);
            if (is_file(p)) {
                *path = p;
                *kind = qc_data_kind(name);
                return QC_OK;
            }
            free(p);
        }
    }
    return qc_errf(err, QC_EINPUT, "%s: no file for input '%s' (expected %s.npy, %s.pb, "
                   "%s.png/.jpg or input_%d.pb)", folder, vi->name, base, base, base, k);
}

/* Open-time checks for file `s*n_in+k`: .npy headers and image geometry. */
static int precheck(qc_dataset *d, int s, int k, qc_err *err)
{
    const qc_value_info *vi = &d->m->inputs[k];
    const char *path = d->paths[(size_t)s * d->n_in + k];
    int kind = d->kinds[(size_t)s * d->n_in + k];
    if (kind == QC_SRC_NPY)
        return qc_data_check_npy(path, vi, err);
    if (kind == QC_SRC_IMAGE && !d->has_geom[k]) {
        int rc = qc_image_geom_plan(vi, &d->pp, &d->geom[k], err);
        if (rc) {
            qc_err_prefix(err, "%s", path);
            return rc;
        }
        d->has_geom[k] = 1;
    }
    return QC_OK;
}

static int build(qc_dataset *d, const char *dir, list *files, list *folders, qc_err *err)
{
    const qc_model *m = d->m;
    if (files->n && folders->n)
        return qc_errf(err, QC_EINPUT, "%s: holds both sample files ('%s') and sub-folders "
                       "('%s'): use one form", dir, files->v[0], folders->v[0]);
    if (!files->n && !folders->n)
        return qc_errf(err, QC_EINPUT, "%s: no samples (expected .npy, .pb, .png or .jpg "
                       "files, or one sub-folder per sample)", dir);
    list *src = files->n ? files : folders;
    d->form = files->n ? FORM_FILES : FORM_FOLDERS;
    if (d->form == FORM_FILES && m->n_inputs != 1)
        return qc_errf(err, QC_EINPUT, "%s: files directly in the folder need a single-input "
                       "model, this one has %d inputs: use one sub-folder per sample holding "
                       "<input name>.npy", dir, m->n_inputs);
    qsort(src->v, (size_t)src->n, sizeof src->v[0], cmp_names);
    /* take the names over from the list */
    d->names = src->v;
    d->n = src->n;
    src->v = NULL;
    src->n = 0;
    size_t cells = (size_t)d->n * (size_t)d->n_in;
    d->paths = calloc(cells ? cells : 1, sizeof *d->paths);
    d->kinds = calloc(cells ? cells : 1, 1);
    if (!d->paths || !d->kinds)
        return qc_errf(err, QC_ENOMEM, "%s: out of memory", dir);
    for (int s = 0; s < d->n; s++) {
        char *p = qc_path_join(dir, d->names[s]);
        if (!p)
            return qc_errf(err, QC_ENOMEM, "%s: out of memory", dir);
        int rc = QC_OK;
        if (d->form == FORM_FILES) {
            d->paths[s] = p;
            d->kinds[s] = (signed char)qc_data_kind(d->names[s]);
        } else {
            for (int k = 0; k < d->n_in && rc == QC_OK; k++) {
                int kind = QC_SRC_NONE;
                size_t at = (size_t)s * d->n_in + k;
                rc = resolve(p, &m->inputs[k], k, &d->paths[at], &kind, err);
                d->kinds[at] = (signed char)kind;
            }
            free(p);
        }
        for (int k = 0; k < d->n_in && rc == QC_OK; k++)
            rc = precheck(d, s, k, err);
        if (rc)
            return rc;
    }
    return QC_OK;
}

int qc_dataset_open(qc_dataset **out, const char *dir, const qc_model *m,
                    const qc_preproc *pp, qc_err *err)
{
    *out = NULL;
    if (m->n_inputs < 1)
        return qc_errf(err, QC_EINPUT, "%s: the model has no inputs to feed", dir);
    qc_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    d->m = m;
    d->n_in = m->n_inputs;
    if (pp)
        d->pp = *pp;
    else
        qc_preproc_init(&d->pp);
    d->geom = calloc((size_t)d->n_in, sizeof *d->geom);
    d->has_geom = calloc((size_t)d->n_in, 1);
    d->slots = calloc((size_t)d->n_in, sizeof *d->slots);
    list files = { 0 }, folders = { 0 };
    int rc = !d->geom || !d->has_geom || !d->slots ? qc_errf(err, QC_ENOMEM, "out of memory")
                                                   : scan(dir, &files, &folders, err);
    if (rc == QC_OK)
        rc = build(d, dir, &files, &folders, err);
    list_free(&files);
    list_free(&folders);
    if (rc) {
        qc_dataset_free(d);
        return rc;
    }
    for (int k = 0; k < d->n_in; k++)
        d->slots[k].name = m->inputs[k].name;
    *out = d;
    return QC_OK;
}

int qc_dataset_count(const qc_dataset *d)
{
    return d->n;
}

const char *qc_dataset_sample_name(const qc_dataset *d, int i)
{
    return i >= 0 && i < d->n ? d->names[i] : NULL;
}

static int check_finite(const char *path, const qc_tensor *t, qc_err *err)
{
    if (t->dtype != QC_F32)
        return QC_OK;
    const float *v = t->data;
    int64_t n = qc_tensor_numel(t), bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += !isfinite(v[i]);
    if (bad)
        return qc_errf(err, QC_EINPUT, "%s: input '%s' has %lld NaN/Inf value%s (of %lld); "
                       "pass --allow-nonfinite to use it anyway", path, t->name,
                       (long long)bad, bad > 1 ? "s" : "", (long long)n);
    return QC_OK;
}

int qc_dataset_load(qc_dataset *d, int i, qc_tensor **inputs, qc_err *err)
{
    if (i < 0 || i >= d->n)
        return qc_errf(err, QC_EUSAGE, "sample %d out of range (dataset has %d)", i, d->n);
    for (int k = 0; k < d->n_in; k++) {
        const qc_value_info *vi = &d->m->inputs[k];
        const char *path = d->paths[(size_t)i * d->n_in + k];
        qc_tensor *slot = &d->slots[k];
        int rc;
        switch (d->kinds[(size_t)i * d->n_in + k]) {
        case QC_SRC_NPY:
            rc = qc_data_load_npy(path, vi, slot, err);
            break;
        case QC_SRC_PB:
            rc = qc_data_load_pb(path, vi, slot, err);
            break;
        default:
            rc = qc_image_decode(&d->img, path, err);
            if (rc == QC_OK)
                rc = qc_image_to_tensor(&d->img, &d->geom[k], &d->pp, slot, path, err);
            break;
        }
        slot->name = vi->name;
        if (rc == QC_OK && !d->pp.allow_nonfinite)
            rc = check_finite(path, slot, err);
        if (rc)
            return rc;
    }
    *inputs = d->slots;
    return QC_OK;
}

int qc_dataset_clone(const qc_dataset *d, qc_dataset **out, qc_err *err)
{
    size_t cells = (size_t)d->n * (size_t)d->n_in;
    qc_dataset *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    c->m = d->m;
    c->pp = d->pp;
    c->form = d->form;
    c->n_in = d->n_in;
    c->names = calloc((size_t)d->n + 1, sizeof *c->names);
    c->paths = calloc(cells + 1, sizeof *c->paths);
    c->kinds = malloc(cells + 1);
    c->geom = calloc((size_t)d->n_in, sizeof *c->geom);
    c->has_geom = calloc((size_t)d->n_in, 1);
    c->slots = calloc((size_t)d->n_in, sizeof *c->slots);
    int ok = c->names && c->paths && c->kinds && c->geom && c->has_geom && c->slots;
    if (ok) {
        c->n = d->n;                /* qc_dataset_free frees n names, n * n_in paths */
        memcpy(c->kinds, d->kinds, cells);
        memcpy(c->geom, d->geom, (size_t)d->n_in * sizeof *c->geom);
        memcpy(c->has_geom, d->has_geom, (size_t)d->n_in);
        for (int k = 0; k < d->n_in; k++)
            c->slots[k].name = d->slots[k].name;
    }
    for (int s = 0; ok && s < d->n; s++)
        ok = (c->names[s] = strdup(d->names[s])) != NULL;
    for (size_t i = 0; ok && i < cells; i++)
        ok = (c->paths[i] = strdup(d->paths[i])) != NULL;
    if (!ok) {
        qc_dataset_free(c);
        return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    *out = c;
    return QC_OK;
}

void qc_dataset_free(qc_dataset *d)
{
    if (!d)
        return;
    size_t cells = (size_t)d->n * (size_t)d->n_in;
    for (int s = 0; d->names && s < d->n; s++)
        free(d->names[s]);
    for (size_t c = 0; d->paths && c < cells; c++)
        free(d->paths[c]);
    for (int k = 0; d->slots && k < d->n_in; k++)
        qc_tensor_free(&d->slots[k]);
    free(d->names);
    free(d->paths);
    free(d->kinds);
    free(d->geom);
    free(d->has_geom);
    free(d->slots);
    qc_image_free(&d->img);
    free(d);
}
