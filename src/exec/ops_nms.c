/* NonMaxSuppression (opset 10): for each batch and class, the boxes scoring above
 * score_threshold, best first (equal scores: lower box index first), each kept unless it
 * overlaps an already kept box by IoU > iou_threshold, at most max_output_boxes_per_class.
 * Output [selected, 3] int64 (batch, class, box) in that order. The selection is computed by
 * infer() (the output's length depends on it) into the node's state; run() copies it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

typedef struct nms_state {
    int64_t *sel;                       /* 3 per selected box */
    int64_t  n, cap;
} nms_state;

typedef struct cand {
    float   score;
    int64_t box;
} cand;

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->box < y->box ? -1 : x->box > y->box;
}

/* Box i as (y1, x1, y2, x2) with y1 <= y2, x1 <= x2. */
static void corners(const float *b, int center, float *c)
{
    if (center) {                       /* x_center, y_center, width, height */
        c[0] = b[1] - b[3] / 2, c[2] = b[1] + b[3] / 2;
        c[1] = b[0] - b[2] / 2, c[3] = b[0] + b[2] / 2;
        return;
    }
    c[0] = b[0] < b[2] ? b[0] : b[2], c[2] = b[0] < b[2] ? b[2] : b[0];
    c[1] = b[1] < b[3] ? b[1] : b[3], c[3] = b[1] < b[3] ? b[3] : b[1];
}

static int overlaps(const float *a, const float *b, float thr)
{
    float area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
    if (area_a <= 0.0f || area_b <= 0.0f)
        return 0;
    float ih = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    float iw = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    if (ih <= 0.0f || iw <= 0.0f)
        return 0;
    float inter = ih * iw;
    return inter / (area_a + area_b - inter) > thr;
}

static int nms_prepare(qc_knode *n, qc_err *err)
{
    if (!(n->state = calloc(1, sizeof(nms_state))))
        return qc_errf(err, QC_ENOMEM, "out of memory");
    return QC_OK;
}

static void nms_release(qc_knode *n)
{
    nms_state *s = n->state;
    if (s)
        free(s->sel);
    free(s);
    n->state = NULL;
}

static int push(nms_state *s, int64_t b, int64_t c, int64_t box)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        int64_t *p = realloc(s->sel, (size_t)cap * 3 * sizeof *p);
        if (!p)
            return QC_ENOMEM;
        s->sel = p;
        s->cap = cap;
    }
    s->sel[3 * s->n] = b, s->sel[3 * s->n + 1] = c, s->sel[3 * s->n + 2] = box;
    s->n++;
    return QC_OK;
}

static int nms_infer(qc_knode *n, qc_err *err)
{
    nms_state *s = n->state;
    const qc_tensor *boxes = n->in[0], *scores = qc_opt_in(n, 1);
    const qc_tensor *mo = qc_opt_in(n, 2), *it = qc_opt_in(n, 3), *st = qc_opt_in(n, 4);
    if (!scores || boxes->dtype != QC_F32 || scores->dtype != QC_F32)
        return qc_node_errf(n, err, QC_EUNSUPPORTED, "boxes and scores must be float32");
    if (boxes->ndim != 3 || boxes->dims[2] != 4 || scores->ndim != 3 ||
        scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return qc_node_errf(n, err, QC_ESHAPE, "boxes must be [batches, boxes, 4] and scores "
                            "[batches, classes, boxes]");
    if ((mo && (mo->dtype != QC_I64 || qc_tensor_numel(mo) != 1)) ||
        (it && (it->dtype != QC_F32 || qc_tensor_numel(it) != 1)) ||
        (st && (st->dtype != QC_F32 || qc_tensor_numel(st) != 1)))
        return qc_node_errf(n, err, QC_EINPUT, "max_output_boxes_per_class (int64), "
                            "iou_threshold and score_threshold (float) must be scalars");
    int64_t max_out = mo ? ((const int64_t *)mo->data)[0] : 0;
    float iou = it ? ((const float *)it->data)[0] : 0.0f;
    int use_st = st != NULL;
    float score_thr = st ? ((const float *)st->data)[0] : 0.0f;
    int center = qc_attr_int(n->node, "center_point_box", 0) != 0;
    int64_t NB = boxes->dims[0], NC = scores->dims[1], NS = boxes->dims[1];
    s->n = 0;
    cand *c = max_out > 0 && NS > 0 ? malloc((size_t)NS * sizeof *c) : NULL;
    float *kept = max_out > 0 && NS > 0 ? malloc((size_t)NS * 4 * sizeof *kept) : NULL;
    int rc = QC_OK;
    if (max_out > 0 && NS > 0 && (!c || !kept))
        rc = QC_ENOMEM;
    for (int64_t b = 0; rc == QC_OK && max_out > 0 && b < NB; b++)
        for (int64_t k = 0; rc == QC_OK && k < NC; k++) {
            const float *sc = (const float *)scores->data + (b * NC + k) * NS;
            const float *bx = (const float *)boxes->data + b * NS * 4;
            int64_t m = 0, taken = 0;
            for (int64_t i = 0; i < NS; i++)
                if (!use_st || sc[i] > score_thr)
                    c[m++] = (cand){ sc[i], i };
            qsort(c, (size_t)m, sizeof *c, by_score);
            for (int64_t i = 0; i < m && taken < max_out; i++) {
                float box[4];
                int drop = 0;
                corners(bx + c[i].box * 4, center, box);
                for (int64_t j = 0; j < taken && !drop; j++)
                    drop = overlaps(kept + j * 4, box, iou);
                if (drop)
                    continue;
                memcpy(kept + taken * 4, box, sizeof box);
                taken++;
                rc = push(s, b, k, c[i].box);
            }
        }
    free(c);
    free(kept);
    if (rc != QC_OK)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    int64_t dims[2] = { s->n, 3 };
    qc_set_shape(n->out[0], QC_I64, 2, dims);
    return QC_OK;
}

static int nms_run(qc_knode *n, qc_run *r, qc_err *err)
{
    const nms_state *s = n->state;
    (void)r;
    (void)err;
    if (s->n)
        memcpy(n->out[0]->data, s->sel, (size_t)s->n * 3 * sizeof *s->sel);
    return QC_OK;
}

const qc_op_def qc_ops_nms[] = {
    { "NonMaxSuppression", 10, nms_infer, nms_run, nms_prepare, nms_release, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL, NULL },
};
