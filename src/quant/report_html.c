/* `calibrate compare --html`: one self-contained HTML file (see qc_report.h). No script at all:
 * hover text comes from SVG <title> elements and collapsing from <details>, so the page has
 * nothing that can fail in a browser. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qc_io.h"
#include "qc_report.h"
#include "strmap.h"

/* ---- buffered atomic output: the first failure sticks, later writes are no-ops ---- */

typedef struct out {
    qc_afile f;
    char     buf[1 << 16];
    size_t   len;
    int      rc;
    qc_err  *err;
} out;

static void flush(out *o)
{
    if (o->rc == QC_OK && o->len)
        o->rc = qc_afile_write(&o->f, o->buf, o->len, o->err);
    o->len = 0;
}

__attribute__((format(printf, 2, 3)))
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->rc != QC_OK)
        return;
    for (int pass = 0; pass < 2; pass++) {
        size_t room = sizeof o->buf - o->len;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->rc = qc_errf(o->err, QC_EINTERNAL, "report: formatting failed");
            return;
        }
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        flush(o);
        if ((size_t)n >= sizeof o->buf) {   /* never: every call formats a short piece */
            o->rc = qc_errf(o->err, QC_EINTERNAL, "report: piece of %d bytes too long", n);
            return;
        }
    }
}

/* Text as HTML content or attribute value. */
static void esc(out *o, const char *s)
{
    char tmp[256];
    size_t n = 0;
    for (; s && *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        }
        if (n + 8 >= sizeof tmp) {
            tmp[n] = 0;
            put(o, "%s", tmp);
            n = 0;
        }
        if (e) {
            memcpy(tmp + n, e, strlen(e));
            n += strlen(e);
        } else {
            tmp[n++] = (unsigned char)*s < 0x20 ? '?' : *s;
        }
    }
    tmp[n] = 0;
    put(o, "%s", tmp);
}

static const char *fmt_g(char *b, size_t n, double v, int digits)
{
    if (isnan(v))
        snprintf(b, n, "-");
    else if (isinf(v))
        snprintf(b, n, v > 0 ? "inf" : "-inf");
    else
        snprintf(b, n, "%.*g", digits, v);
    return b;
}

/* ---- what is drawn ---- */

/* Activation ranges depend on (method, percentile, symmetric) only: one "kind" per such
 * triple, its lines taken from the best-ranked candidate of the kind. */
typedef struct kind {
    char tag[24];                   /* short label drawn next to the lines: "p99.99" */
    char name[64];                  /* legend: the candidate name without weight options */
    int  rep;                       /* candidates in rank order of this kind: first one */
} kind;

typedef struct ctx {
    const qc_compare     *c;
    const int            *order;
    const qc_report_info *info;
    int                   n_cands, n_t, top, bars;
    qc_strmap            *layer_of; /* per candidate: tensor name -> layer index */
    int                  *cand_kind;
    kind                 *kinds;
    int                   n_kinds;
    unsigned char        *open;     /* per observed tensor: <details open> */
} ctx;

static void kind_of(const qc_cand *cd, char *tag, size_t nt, char *name, size_t nn)
{
    const char *m = cd->o.method;
    const char *t = !strcmp(m, "minmax") ? "mm" : !strcmp(m, "entropy") ? "ent" : m;
    const char *sym = cd->o.symmetric_act ? " sym" : "";
    if (!strcmp(m, "percentile")) {
        snprintf(tag, nt, "p%s%s", cd->percentile, cd->o.symmetric_act ? "s" : "");
        snprintf(name, nn, "percentile %s%s", cd->percentile, sym);
    } else {
        snprintf(tag, nt, "%s%s", t, cd->o.symmetric_act ? "s" : "");
        snprintf(name, nn, "%s%s", m, sym);
    }
}

static int setup(ctx *x, qc_err *err)
{
    const qc_compare *c = x->c;
    x->layer_of = calloc((size_t)x->n_cands, sizeof *x->layer_of);
    x->cand_kind = calloc((size_t)x->n_cands, sizeof *x->cand_kind);
    x->kinds = calloc((size_t)x->n_cands, sizeof *x->kinds);
    x->open = calloc((size_t)x->n_t + 1, 1);
    if (!x->layer_of || !x->cand_kind || !x->kinds || !x->open)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    for (int i = 0; i < x->n_cands; i++) {
        const qc_cand_result *r = qc_compare_result(c, i);
        if (qc_strmap_init(&x->layer_of[i], (size_t)r->n_layers + 16) != 0)
            return qc_errf(err, QC_ENOMEM, "out of memory");
        for (int l = 0; l < r->n_layers; l++)
            if (qc_strmap_put(&x->layer_of[i], r->layers[l].name, l) != 0)
                return qc_errf(err, QC_ENOMEM, "out of memory");
    }
    /* kinds in grid order (stable colours), represented by their best-ranked candidate */
    for (int i = 0; i < x->n_cands; i++) {
        kind k;
        kind_of(qc_compare_result(c, i)->cand, k.tag, sizeof k.tag, k.name, sizeof k.name);
        int j = 0;
        while (j < x->n_kinds && strcmp(x->kinds[j].tag, k.tag) != 0)
            j++;
        if (j == x->n_kinds) {
            k.rep = -1;
            x->kinds[x->n_kinds++] = k;
        }
        x->cand_kind[i] = j;
    }
    for (int r = x->n_cands - 1; r >= 0; r--)
        x->kinds[x->cand_kind[x->order[r]]].rep = x->order[r];
    return QC_OK;
}

static void release(ctx *x)
{
    for (int i = 0; x->layer_of && i < x->n_cands; i++)
        qc_strmap_free(&x->layer_of[i]);
    free(x->layer_of);
    free(x->cand_kind);
    free(x->kinds);
    free(x->open);
}

static const qc_layer_result *layer(const ctx *x, int cand, const char *tensor)
{
    int l = qc_strmap_get(&x->layer_of[cand], tensor);
    return l >= 0 ? &qc_compare_result(x->c, cand)->layers[l] : NULL;
}

/* ---- page ---- */

/* Method colours (Tableau 10 + 2): stroke and fill through one custom property. */
static const char *const palette[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                       "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
                                       "#393b79", "#637939" };
#define N_PAL ((int)(sizeof palette / sizeof palette[0]))

static void head(out *o, const ctx *x)
{
    put(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width\">\n<title>qcal compare: ");
    esc(o, x->info->model_path ? x->info->model_path : "model");
    put(o, "</title>\n<style>\n"
           "body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;max-width:1240px}\n"
           "h1{font-size:20px}h2{font-size:17px;margin-top:28px}\n"
           "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;"
           "text-align:right;white-space:nowrap}th{background:#f3f3f3}\n"
           "td.l,th.l{text-align:left}tr.best td{font-weight:600}\n"
           ".sw{display:inline-block;width:10px;height:10px;margin-right:4px;"
           "background:var(--c)}\n"
           "details{border-top:1px solid #e4e4e4;padding:3px 0}"
           "summary{cursor:pointer;font-family:monospace;font-size:13px}\n"
           "summary b{font-weight:600}.mut{color:#777}\n"
           "svg{display:block;font:10px sans-serif}svg .ax{stroke:#999;fill:none}"
           "svg .gr{stroke:#eee}svg .e{text-anchor:end}svg .m{text-anchor:middle}\n"
           "svg .bar{fill:#9fb7d3}svg .z{stroke:#bbb;stroke-dasharray:3 3}\n"
           "svg .t{stroke:var(--c);stroke-width:1.5}svg text.t{fill:var(--c);stroke:none}\n"
           "svg .s{stroke:var(--c);fill:none;stroke-width:1.5}"
           "svg circle.s{fill:var(--c);stroke:none}svg circle.inf{fill:#fff;stroke:var(--c)}\n"
           "table.m td{font-size:12px;padding:0 6px}\n");
    for (int i = 0; i < N_PAL; i++)
        put(o, ".k%d{--c:%s}", i, palette[i]);
    put(o, "\n</style>\n</head>\n<body>\n");
}

static void ranking(out *o, const ctx *x)
{
    char sq[32], cs[32], mx[32], t1[32], wdb[32];
    const qc_report_info *in = x->info;
    put(o, "<h1>qcal compare: ");
    esc(o, in->model_path ? in->model_path : "model");
    put(o, "</h1>\n<p>%d candidates; %d calibration samples from <code>", x->n_cands,
        in->n_calib);
    esc(o, in->data ? in->data : "?");
    put(o, "</code>; %d eval samples from <code>", qc_compare_result(x->c, 0)->n_eval);
    esc(o, in->eval ? in->eval : "every 4th sample of the data");
    put(o, "</code> (per-layer figures from the first %d); %d observed activations; ranked by "
        "<b>", qc_compare_result(x->c, 0)->n_layer_eval, x->n_t);
    esc(o, in->metric ? in->metric : "sqnr");
    put(o, "</b>.</p>\n<h2>Ranking</h2>\n<table id=\"ranking\">\n<tr><th>rank</th>"
           "<th class=\"l\">candidate</th><th>SQNR dB</th><th>cosine</th><th>max abs</th>"
           "<th>top-1</th><th class=\"l\">worst layer</th><th>SQNR dB</th>"
           "<th>quantized / float nodes</th></tr>\n");
    for (int i = 0; i < x->n_cands; i++) {
        const qc_cand_result *r = qc_compare_result(x->c, x->order[i]);
        if (isfinite(r->sqnr_db))
            snprintf(sq, sizeof sq, "%.2f", r->sqnr_db);
        else
            fmt_g(sq, sizeof sq, r->sqnr_db, 4);
        if (isnan(r->cosine))
            snprintf(cs, sizeof cs, "-");
        else
            snprintf(cs, sizeof cs, "%.6f", r->cosine);
        fmt_g(mx, sizeof mx, r->max_abs, 3);
        if (isnan(r->top1))
            snprintf(t1, sizeof t1, "-");
        else
            snprintf(t1, sizeof t1, "%.1f%%", 100.0 * r->top1);
        put(o, "<tr%s><td>%d</td><td class=\"l\">", i == 0 ? " class=\"best\"" : "", i + 1);
        if (i < x->top)
            put(o, "<span class=\"sw k%d\"></span>", i % N_PAL);
        esc(o, r->cand->name);
        put(o, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"l\">", sq, cs, mx,
            t1);
        wdb[0] = 0;
        if (r->worst_layer >= 0) {
            esc(o, r->layers[r->worst_layer].name);
            fmt_g(wdb, sizeof wdb, r->layers[r->worst_layer].sqnr_db, 4);
        }
        put(o, "</td><td>%s</td><td>%d / %d</td></tr>\n", wdb, r->n_quantized_nodes,
            r->n_float_nodes);
    }
    put(o, "</table>\n");
}

/* Sections that start open: the first tensor (1) and the worst layer of every charted
 * candidate (2), whose index goes to worst[k] (-1 if none). */
static void mark_open(ctx *x, int *worst)
{
    if (x->n_t > 0)
        x->open[0] = 1;
    for (int k = 0; k < x->top; k++) {
        const qc_cand_result *r = qc_compare_result(x->c, x->order[k]);
        worst[k] = -1;
        for (int t = 0; r->worst_layer >= 0 && t < x->n_t; t++) {
            qc_compare_hist h;
            qc_err e;
            if (qc_compare_tensor_hist(x->c, t, &h, &e) == QC_OK &&
                !strcmp(h.name, r->layers[r->worst_layer].name)) {
                x->open[t] = 2;
                worst[k] = t;
            }
        }
    }
}

/* ---- per-layer SQNR chart ---- */

enum { CW = 1200, CH = 340, CL = 52, CR = 12, CT = 14, CB = 34 };

static void sqnr_chart(out *o, ctx *x, const int *worst, qc_err *err)
{
    int *idx = malloc(((size_t)x->n_t + 1) * sizeof *idx), n = 0;
    if (!idx) {
        o->rc = qc_errf(err, QC_ENOMEM, "out of memory");
        return;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int t = 0; t < x->n_t; t++) {
        qc_compare_hist h;
        int any = 0;
        if (qc_compare_tensor_hist(x->c, t, &h, err) != QC_OK)
            continue;
        for (int k = 0; k < x->top; k++) {
            const qc_layer_result *l = layer(x, x->order[k], h.name);
            if (!l)
                continue;
            any = 1;
            if (isfinite(l->sqnr_db)) {
                lo = fmin(lo, l->sqnr_db);
                hi = fmax(hi, l->sqnr_db);
            }
        }
        if (any)
            idx[n++] = t;
    }
    put(o, "<h2>Per-layer SQNR, best %d candidates</h2>\n<p class=\"mut\">SQNR (dB) of each "
           "quantized activation (the DequantizeLinear output against the float tensor, eval "
           "set) in graph order; hover a point for the tensor. Exact layers (inf) are hollow "
           "markers on the top edge.</p>\n", x->top);
    if (n == 0 || !(lo <= hi)) {
        put(o, "<p>No quantized activation with a finite SQNR.</p>\n");
        free(idx);
        return;
    }
    /* 10 dB grid lines over the finite values */
    lo = floor(lo / 10) * 10;
    hi = ceil(hi / 10) * 10;
    if (hi - lo < 10)
        hi = lo + 10;
    double pw = CW - CL - CR, ph = CH - CT - CB;
    double dx = n > 1 ? pw / (n - 1) : 0;
    put(o, "<svg id=\"sqnr\" viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\">\n", CW, CH);
    double step = hi - lo > 120 ? 20 : 10;
    for (double v = lo; v <= hi + 1e-9; v += step) {
        double y = CT + ph * (hi - v) / (hi - lo);
        put(o, "<line class=\"gr\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
               "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", CL, CW - CR, y, y,
            CL - 4, y + 3, v);
    }
    int tick = n > 20 ? (n + 19) / 20 : 1;
    for (int i = 0; i < n; i += tick)
        put(o, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>", CL + i * dx,
            CH - CB + 14, idx[i]);
    put(o, "\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">observed activation (graph "
           "order)</text><text x=\"12\" y=\"%d\" transform=\"rotate(-90 12 %d)\" "
           "text-anchor=\"middle\">dB</text>\n<rect class=\"ax\" x=\"%d\" y=\"%d\" "
           "width=\"%.0f\" height=\"%.0f\"/>\n", CL + (int)pw / 2, CH - 4, CT + (int)ph / 2,
           CT + (int)ph / 2, CL, CT, pw, ph);
    for (int k = x->top - 1; k >= 0; k--) {
        int cand = x->order[k];
        const char *cname = qc_compare_result(x->c, cand)->cand->name;
        put(o, "<g class=\"k%d\" data-cand=\"", k % N_PAL);
        esc(o, cname);
        put(o, "\"><path class=\"s\" d=\"");
        int pen = 0;
        for (int i = 0; i < n; i++) {
            qc_compare_hist h;
            qc_compare_tensor_hist(x->c, idx[i], &h, err);
            const qc_layer_result *l = layer(x, cand, h.name);
            if (!l || !isfinite(l->sqnr_db)) {
                pen = 0;
                continue;
            }
            double v = fmin(fmax(l->sqnr_db, lo), hi);
            put(o, "%c%.1f %.1f", pen ? 'L' : 'M', CL + i * dx, CT + ph * (hi - v) / (hi - lo));
            pen = 1;
        }
        put(o, "\"/>\n");
        for (int i = 0; i < n; i++) {
            char b[32];
            qc_compare_hist h;
            qc_compare_tensor_hist(x->c, idx[i], &h, err);
            const qc_layer_result *l = layer(x, cand, h.name);
            if (!l || isnan(l->sqnr_db))
                continue;
            double v = fmin(fmax(l->sqnr_db, lo), hi);
            put(o, "<circle class=\"s%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"><title>#%d ",
                isinf(l->sqnr_db) ? " inf" : "", CL + i * dx, CT + ph * (hi - v) / (hi - lo),
                isinf(l->sqnr_db) ? "3.5" : "2.2", idx[i]);
            esc(o, h.name);
            put(o, ": %s dB (", fmt_g(b, sizeof b, l->sqnr_db, 4));
            esc(o, cname);
            put(o, ")</title></circle>");
        }
        put(o, "</g>\n");
    }
    put(o, "</svg>\n<p>");
    for (int k = 0; k < x->top; k++) {
        put(o, "<span class=\"k%d\"><span class=\"sw\"></span>", k % N_PAL);
        esc(o, qc_compare_result(x->c, x->order[k])->cand->name);
        put(o, "</span> &nbsp; ");
    }
    put(o, "</p>\n<p>Worst layer: ");
    for (int k = 0; k < x->top; k++) {
        const qc_cand_result *r = qc_compare_result(x->c, x->order[k]);
        char b[32];
        if (worst[k] < 0)
            continue;
        put(o, "%s", k ? "; " : "");
        esc(o, r->cand->name);
        put(o, " <a href=\"#t%d\">#%d ", worst[k], worst[k]);
        esc(o, r->layers[r->worst_layer].name);
        put(o, "</a> (%s dB)", fmt_g(b, sizeof b, r->layers[r->worst_layer].sqnr_db, 4));
    }
    put(o, "</p>\n");
    free(idx);
}

/* ---- one tensor: histogram and threshold lines ---- */

enum { HW = 720, HL = 46, HR = 14, HPH = 150, HB = 28, LROW = 12, MAXROWS = 8 };

typedef struct vline {
    double v;                       /* value (data units) */
    double px;
    int    kind;
    int    hi;                      /* upper end of the range */
    int    row;
    char   text[96];                /* merged tags of lines at the same pixel */
    int    labelled;
} vline;

static int cmp_vline(const void *a, const void *b)
{
    const vline *p = a, *q = b;
    return p->px < q->px ? -1 : p->px > q->px ? 1 : p->kind - q->kind;
}

static void tensor_section(out *o, ctx *x, int t, qc_err *err)
{
    qc_compare_hist h;
    char b1[32], b2[32], b3[32];
    int rc = qc_compare_tensor_hist(x->c, t, &h, err);
    if (rc != QC_OK) {
        o->rc = rc;
        return;
    }
    const qc_layer_result *best = layer(x, x->order[0], h.name);
    put(o, "<details id=\"t%d\"%s><summary><b>#%d ", t,
        x->open[t] == 2 ? " class=\"worst\" open" : x->open[t] ? " open" : "", t);
    esc(o, h.name);
    put(o, "</b>");
    if (x->info->model && h.producer >= 0 && h.producer < x->info->model->n_nodes) {
        put(o, " <span class=\"mut\">");
        esc(o, x->info->model->nodes[h.producer].op_type);
        put(o, "</span>");
    } else if (h.producer < 0) {
        put(o, " <span class=\"mut\">graph input</span>");
    }
    put(o, " &nbsp;range [%s, %s]", fmt_g(b1, sizeof b1, h.seen_lo, 4),
        fmt_g(b2, sizeof b2, h.seen_hi, 4));
    if (best)
        put(o, " &nbsp;SQNR %s dB", fmt_g(b3, sizeof b3, best->sqnr_db, 4));
    else
        put(o, " &nbsp;<span class=\"mut\">not quantized by the best candidate</span>");
    put(o, "</summary>\n");

    /* lines: each kind's [lo, hi]; on a |x| histogram their magnitudes */
    vline *ln = calloc((size_t)x->n_kinds * 2 + 1, sizeof *ln);
    if (!ln) {
        o->rc = qc_errf(err, QC_ENOMEM, "out of memory");
        return;
    }
    int nl = 0;
    double xmin = h.absval ? 0 : h.seen_lo, xmax = h.absval ? fmax(fabs(h.seen_lo),
                                                                     fabs(h.seen_hi)) : h.seen_hi;
    for (int k = 0; k < x->n_kinds; k++) {
        const qc_layer_result *l = x->kinds[k].rep >= 0 ? layer(x, x->kinds[k].rep, h.name)
                                                        : NULL;
        if (!l)
            continue;
        double a = h.absval ? fabs(l->lo) : l->lo, z = h.absval ? fabs(l->hi) : l->hi;
        ln[nl++] = (vline){ .v = a, .kind = k, .hi = 0 };
        if (z != a)
            ln[nl++] = (vline){ .v = z, .kind = k, .hi = 1 };
        xmin = fmin(xmin, fmin(a, z));
        xmax = fmax(xmax, fmax(a, z));
    }
    if (!(xmax > xmin)) {
        double d = fabs(xmax) * 0.01 + 1e-6;
        xmin -= d;
        xmax += d;
    }
    double pw = HW - HL - HR;
    for (int i = 0; i < nl; i++)
        ln[i].px = HL + pw * (ln[i].v - xmin) / (xmax - xmin);
    qsort(ln, (size_t)nl, sizeof *ln, cmp_vline);
    /* labels: lines on the same pixel share one; greedy rows so labels do not overlap */
    double row_end[MAXROWS] = { 0 };
    int rows = 0, last = -1;
    for (int i = 0; i < nl; i++) {
        if (last >= 0 && fabs(ln[i].px - ln[last].px) < 0.5) {
            size_t len = strlen(ln[last].text);
            if (ln[i].kind != ln[last].kind)
                snprintf(ln[last].text + len, sizeof ln[last].text - len, ",%s",
                         x->kinds[ln[i].kind].tag);
            continue;
        }
        snprintf(ln[i].text, sizeof ln[i].text, "%s", x->kinds[ln[i].kind].tag);
        ln[i].labelled = 1;
        last = i;
    }
    for (int i = 0; i < nl; i++) {
        if (!ln[i].labelled)
            continue;
        double w = 5.6 * (double)strlen(ln[i].text) + 4, s = ln[i].px - w / 2;
        s = fmin(fmax(s, 0), HW - w);
        int r = 0;
        while (r < rows && row_end[r] > s)
            r++;
        if (r == MAXROWS)
            r = MAXROWS - 1;
        if (r == rows)
            rows++;
        row_end[r] = s + w;
        ln[i].row = r;
    }
    int top = 6 + LROW * rows, hh = top + HPH + HB;
    put(o, "<svg class=\"hist\" viewBox=\"0 0 %d %d\" width=\"%d\" data-absval=\"%d\" "
           "role=\"img\">\n", HW, hh, HW, h.absval);
    /* bars: the histogram re-binned onto at most x->bars equal bars over [xmin, xmax] */
    if (h.counts && h.nbins > 0) {
        int nb = x->bars;
        uint64_t *bc = calloc((size_t)nb, sizeof *bc), cmax = 0;
        if (!bc) {
            free(ln);
            o->rc = qc_errf(err, QC_ENOMEM, "out of memory");
            return;
        }
        for (int b = 0; b < h.nbins; b++) {
            if (!h.counts[b])
                continue;
            double mid = h.edge0 + (b + 0.5) * h.width;
            int k = (int)floor((mid - xmin) / (xmax - xmin) * nb);
            k = k < 0 ? 0 : k >= nb ? nb - 1 : k;
            bc[k] += h.counts[b];
        }
        uint64_t sum = 0;
        for (int k = 0; k < nb; k++) {
            cmax = bc[k] > cmax ? bc[k] : cmax;
            sum += bc[k];
        }
        double lmax = log10(1.0 + (double)cmax), base = top + HPH;
        for (int d = 0; cmax > 0 && d <= (int)lmax; d += lmax > 6 ? 2 : 1) {
            double y = base - HPH * log10(1.0 + pow(10, d)) / lmax;
            put(o, "<path class=\"ax\" d=\"M%d %.0fh4\"/><text class=\"e\" x=\"%d\" "
                   "y=\"%.0f\">1e%d</text>", HL - 4, y, HL - 5, y + 3, d);
        }
        put(o, "\n");
        put(o, "<path class=\"bar\" d=\"M%d %.0f", HL, base);
        for (int k = 0; k < nb && cmax > 0; k++) {
            double y = base - HPH * log10(1.0 + (double)bc[k]) / lmax;
            put(o, "V%.0fH%.1f", y, HL + pw * (k + 1) / nb);
        }
        put(o, "V%.0fZ\"><title>%s histogram, %llu values, log counts</title></path>\n", base,
            h.absval ? "|x|" : "x", (unsigned long long)sum);
        free(bc);
    } else {
        put(o, "<text x=\"%d\" y=\"%d\">no histogram (no histogram-based candidate, or "
               "not seen as float)</text>\n", HL + 6, top + HPH / 2);
    }
    if (xmin < 0 && xmax > 0) {
        double z = HL + pw * (0 - xmin) / (xmax - xmin);
        put(o, "<line class=\"z\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>\n", z, z, top,
            top + HPH);
    }
    put(o, "<rect class=\"ax\" x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%d\"/>\n", HL, top, pw,
        HPH);
    for (int i = 0; i <= 4; i++) {
        double v = xmin + (xmax - xmin) * i / 4;
        put(o, "<text class=\"m\" x=\"%.0f\" y=\"%d\">%s</text>", HL + pw * i / 4,
            top + HPH + 13, fmt_g(b1, sizeof b1, v, 4));
    }
    put(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", HW - HR, hh - 2,
        h.absval ? "|x|" : "x");
    for (int i = nl - 1; i >= 0; i--) {     /* reversed: a merged label's colour on top */
        const kind *k = &x->kinds[ln[i].kind];
        put(o, "<line class=\"t k%d\" data-m=\"", ln[i].kind % N_PAL);
        esc(o, k->tag);
        put(o, "\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"><title>", ln[i].px, ln[i].px,
            top - 2, top + HPH);
        esc(o, k->name);
        put(o, " %s = %s</title></line>\n", ln[i].hi ? "hi" : "lo",
            fmt_g(b1, sizeof b1, ln[i].v, 6));
    }
    for (int i = 0; i < nl; i++) {
        if (!ln[i].labelled)
            continue;
        double w = 5.6 * (double)strlen(ln[i].text) + 4;
        double cx = fmin(fmax(ln[i].px, w / 2), HW - w / 2);
        put(o, "<text class=\"t m k%d\" x=\"%.1f\" y=\"%d\">",
            ln[i].kind % N_PAL, cx, 4 + LROW * (ln[i].row + 1) - 2);
        esc(o, ln[i].text);
        put(o, "</text>\n");
    }
    put(o, "</svg>\n");
    free(ln);

    /* the numbers behind the lines */
    put(o, "<table class=\"m\"><tr><th class=\"l\">method</th><th>lo</th><th>hi</th>"
           "<th>clip lo</th><th>clip hi</th><th>SQNR dB</th><th>saturation</th>"
           "<th class=\"l\">from candidate</th></tr>\n");
    for (int k = 0; k < x->n_kinds; k++) {
        const qc_layer_result *l = x->kinds[k].rep >= 0 ? layer(x, x->kinds[k].rep, h.name)
                                                        : NULL;
        if (!l)
            continue;
        char c1[32], c2[32], c3[32];
        put(o, "<tr><td class=\"l\"><span class=\"sw k%d\"></span>", k % N_PAL);
        esc(o, x->kinds[k].tag);
        put(o, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%.3g%%</td>"
               "<td class=\"l\">", fmt_g(b1, sizeof b1, l->lo, 5), fmt_g(b2, sizeof b2, l->hi, 5),
            fmt_g(c1, sizeof c1, l->clip_lo, 5), fmt_g(c2, sizeof c2, l->clip_hi, 5),
            fmt_g(c3, sizeof c3, l->sqnr_db, 4), 100.0 * l->saturation);
        esc(o, qc_compare_result(x->c, x->kinds[k].rep)->cand->name);
        put(o, "</td></tr>\n");
    }
    put(o, "</table>\n</details>\n");
}

static void tensors(out *o, ctx *x, qc_err *err)
{
    put(o, "<h2>Activations: histograms and clipping thresholds</h2>\n<p class=\"mut\">Each "
           "observed activation's calibration histogram (log counts) with every method's range "
           "[lo, hi] as vertical lines: ");
    for (int k = 0; k < x->n_kinds; k++) {
        put(o, "%s<span class=\"k%d\"><span class=\"sw\"></span>", k ? ", " : "", k % N_PAL);
        esc(o, x->kinds[k].tag);
        put(o, "</span> = ");
        esc(o, x->kinds[k].name);
    }
    put(o, ". Candidates that differ only in weight options share their activation ranges; "
           "the table under each chart has the numbers (clip = the range the integer grid "
           "represents).</p>\n");
    for (int t = 0; t < x->n_t && o->rc == QC_OK; t++)
        tensor_section(o, x, t, err);
}

int qc_report_html(const char *path, const qc_compare *c, const int *order,
                   const qc_report_info *info, qc_err *err)
{
    out *o = calloc(1, sizeof *o);
    if (!o)
        return qc_errf(err, QC_ENOMEM, "out of memory");
    ctx x = { .c = c, .order = order, .info = info, .n_cands = qc_compare_n(c),
              .n_t = qc_compare_n_tensors(c) };
    x.top = info->top > 0 ? info->top : 3;
    x.top = x.top < x.n_cands ? x.top : x.n_cands;
    x.bars = info->bars > 0 ? info->bars : 96;
    x.bars = x.bars < 8 ? 8 : x.bars > 1024 ? 1024 : x.bars;
    o->err = err;
    int rc = setup(&x, err);
    if (rc == QC_OK && (rc = qc_afile_open(&o->f, path, err)) == QC_OK) {
        head(o, &x);
        ranking(o, &x);
        int worst[64];
        x.top = x.top < 64 ? x.top : 64;
        mark_open(&x, worst);
        sqnr_chart(o, &x, worst, err);
        tensors(o, &x, err);
        put(o, "<p class=\"mut\">Generated by qcal calibrate compare.</p>\n</body>\n</html>\n");
        flush(o);
        rc = o->rc;
        if (rc == QC_OK)
            rc = qc_afile_commit(&o->f, err);
        else
            qc_afile_abort(&o->f);
    }
    release(&x);
    free(o);
    return rc;
}
