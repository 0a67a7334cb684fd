/* drill/drill_svg.c — the drill's chart as a self-contained SVG (no scripts, no
 * fonts to fetch, no dependencies): per second, ok and failed requests stacked (left axis)
 * and the smallest remaining outage budget over all sidecars (right axis), on top
 * of shaded phases, with the kill, first expiry, restart and recovery marked. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drill/drill_report.h"

#define W 960
#define H 450
#define ML 70    /* margins: room for the axes' labels */
#define MR 70
#define MT 78
#define MB 52
#define PW (W - ML - MR)
#define PH (H - MT - MB)

typedef struct chart {
    FILE *f;
    double t_max;                     /* x domain [0, t_max] seconds */
    double rq_max;                    /* left axis [0, rq_max] requests/s */
    double b_max;                     /* right axis [0, b_max] seconds */
} chart;

static double cx(const chart *c, double t) { return ML + t / c->t_max * PW; }
static double cy_rq(const chart *c, double v) { return MT + PH - v / c->rq_max * PH; }
static double cy_b(const chart *c, double v)
{
    if (v < 0)
        v = 0;
    return MT + PH - v / c->b_max * PH;
}

/* 1, 2, 5 x 10^k, at least x / n. */
static double nice_step(double x, int n)
{
    double raw = x / n;
    if (raw <= 0)
        return 1;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void text(FILE *f, double x, double y, const char *anchor, const char *style,
                 const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" %s>", x, y, anchor, style);
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*p, f);
        }
    }
    fputs("</text>\n", f);
}

static const char *phase_fill(enum drill_phase p)
{
    switch (p) {
    case DRILL_PH_OUTAGE: return "#fff1c9";
    case DRILL_PH_EXPIRED: return "#fbd5d8";
    case DRILL_PH_RECOVERY: return "#d6eaf8";
    case DRILL_PH_RECOVERED: return "#d8f0dc";
    default: return NULL;
    }
}

static void phases(const chart *c, const drill_run *r)
{
    size_t i = 0;
    while (i < r->n_secs) {
        size_t k = i;
        while (k + 1 < r->n_secs && r->secs[k + 1].phase == r->secs[i].phase)
            k++;
        const char *fill = phase_fill(r->secs[i].phase);
        if (fill)
            fprintf(c->f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n",
                    cx(c, r->secs[i].t), MT, cx(c, r->secs[k].t + 1) - cx(c, r->secs[i].t), PH,
                    fill);
        i = k + 1;
    }
}

static void axes(const chart *c, const drill_run *r)
{
    FILE *f = c->f;
    const char *small = "font-size=\"11\" fill=\"#444\"";
    double xs = nice_step(c->t_max, 10);
    for (double t = 0; t <= c->t_max + 1e-9; t += xs) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n",
                cx(c, t), MT, cx(c, t), MT + PH);
        char b[32];
        snprintf(b, sizeof b, "%.0fs", t);
        text(f, cx(c, t), MT + PH + 16, "middle", small, b);
    }
    double ys = nice_step(c->rq_max, 5);
    for (double v = 0; v <= c->rq_max + 1e-9; v += ys) {
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML,
                cy_rq(c, v), ML + PW, cy_rq(c, v));
        char b[32];
        snprintf(b, sizeof b, "%.0f", v);
        text(f, ML - 6, cy_rq(c, v) + 4, "end", small, b);
    }
    double bs = nice_step(c->b_max, 5);
    for (double v = 0; v <= c->b_max + 1e-9; v += bs) {
        char b[32];
        snprintf(b, sizeof b, "%.0fs", v);
        text(f, ML + PW + 6, cy_b(c, v) + 4, "start", "font-size=\"11\" fill=\"#1f4e99\"", b);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#888\"/>\n", ML, MT, PW, PH);
    text(f, ML + PW / 2.0, H - 12, "middle", "font-size=\"12\" fill=\"#222\"",
         "seconds since traffic started (T+)");
    fprintf(f, "<text x=\"16\" y=\"%.1f\" font-size=\"12\" fill=\"#222\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 16 %.1f)\">requests per second</text>\n",
            MT + PH / 2.0, MT + PH / 2.0);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" fill=\"#1f4e99\" text-anchor=\"middle\" "
            "transform=\"rotate(90 %d %.1f)\">outage budget: seconds to the first SVID expiry"
            "</text>\n", W - 14, MT + PH / 2.0, W - 14, MT + PH / 2.0);
    (void)r;
}

/* Stacked step bands, one value per second [t, t+1): ok from 0, failed on top of ok,
 * so the band's top is every request answered in that second. Translucent fills
 * let the phase shading show through; the tops are drawn as solid lines. */
static double band_lo(const drill_second *s, int failed) { return failed ? s->ok : 0; }
static double band_hi(const drill_second *s, int failed)
{
    return failed ? (double)s->ok + s->failed : s->ok;
}

static void band(const chart *c, const drill_run *r, int failed, const char *color,
                 double opacity)
{
    FILE *f = c->f;
    if (!r->n_secs)
        return;
    fprintf(f, "<path fill=\"%s\" fill-opacity=\"%.2f\" stroke=\"none\" d=\"", color, opacity);
    for (size_t i = 0; i < r->n_secs; i++) {
        const drill_second *s = &r->secs[i];
        fprintf(f, "%s%.1f %.1f L%.1f %.1f", i ? " L" : "M", cx(c, s->t),
                cy_rq(c, band_hi(s, failed)), cx(c, s->t + 1), cy_rq(c, band_hi(s, failed)));
    }
    for (size_t i = r->n_secs; i-- > 0;) {
        const drill_second *s = &r->secs[i];
        fprintf(f, " L%.1f %.1f L%.1f %.1f", cx(c, s->t + 1), cy_rq(c, band_lo(s, failed)),
                cx(c, s->t), cy_rq(c, band_lo(s, failed)));
    }
    fputs(" Z\"/>\n", f);
    /* The top edge, only where the band has height. */
    fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" d=\"", color);
    int pen = 0;
    for (size_t i = 0; i < r->n_secs; i++) {
        const drill_second *s = &r->secs[i];
        if (band_hi(s, failed) <= band_lo(s, failed)) {
            pen = 0;
            continue;
        }
        fprintf(f, "%s%.1f %.1f L%.1f %.1f ", pen ? "L" : "M", cx(c, s->t),
                cy_rq(c, band_hi(s, failed)), cx(c, s->t + 1), cy_rq(c, band_hi(s, failed)));
        pen = 1;
    }
    fputs("\"/>\n", f);
}

static void budget_line(const chart *c, const drill_run *r)
{
    FILE *f = c->f;
    fputs("<polyline fill=\"none\" stroke=\"#1f4e99\" stroke-width=\"2\" points=\"", f);
    for (size_t i = 0; i < r->n_secs; i++)
        fprintf(f, "%.1f,%.1f ", cx(c, r->secs[i].t + 1), cy_b(c, r->secs[i].min_budget));
    fputs("\"/>\n", f);
}

static void marker(const chart *c, double t, const char *color, const char *label, int row)
{
    if (t < 0)
        return;
    FILE *f = c->f;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
            "stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>\n", cx(c, t), MT, cx(c, t), MT + PH,
            color);
    char b[96];
    snprintf(b, sizeof b, "%s T+%.1fs", label, t);
    /* Labels sit on alternating rows so close events do not overprint. */
    double x = cx(c, t) + 4;
    const char *anchor = "start";
    if (x > ML + PW - 150) {
        x = cx(c, t) - 4;
        anchor = "end";
    }
    char style[64];
    snprintf(style, sizeof style, "font-size=\"11\" fill=\"%s\"", color);
    text(f, x, MT + 14 + row * 14, anchor, style, b);
}

static void legend(FILE *f)
{
    struct { const char *color, *label; int line; } items[] = {
        {"#2e9e44", "ok requests/s", 0},       {"#d32f2f", "failed requests/s (on top)", 0},
        {"#1f4e99", "smallest budget (s)", 1}, {"#fff1c9", "outage", 0},
        {"#fbd5d8", "SVIDs expired", 0},       {"#d6eaf8", "recovering", 0},
        {"#d8f0dc", "recovered", 0}};
    double x = ML;
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (items[i].line)
            fprintf(f, "<line x1=\"%.1f\" y1=\"61\" x2=\"%.1f\" y2=\"61\" stroke=\"%s\" "
                    "stroke-width=\"2.5\"/>\n", x, x + 14, items[i].color);
        else
            fprintf(f, "<rect x=\"%.1f\" y=\"55\" width=\"14\" height=\"12\" fill=\"%s\" "
                    "stroke=\"#999\" stroke-width=\"0.5\"/>\n", x, items[i].color);
        text(f, x + 18, 65, "start", "font-size=\"11\" fill=\"#222\"", items[i].label);
        x += 28 + 6.2 * (double)strlen(items[i].label);
    }
}

void drill_svg_render(const drill_run *r, const drill_results *res, FILE *f)
{
    chart c = {.f = f, .t_max = r->n_secs ? (double)r->n_secs : 1, .rq_max = r->o->rate,
               .b_max = (double)r->o->ttl_s};
    for (size_t i = 0; i < r->n_secs; i++) {
        double v = (double)r->secs[i].ok + r->secs[i].failed;
        if (v > c.rq_max)
            c.rq_max = v;
        if (r->secs[i].min_budget > c.b_max)
            c.b_max = r->secs[i].min_budget;
    }
    c.rq_max = ceil(c.rq_max * 1.4);   /* headroom for the event labels */
    c.b_max = ceil(c.b_max * 1.1);

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H, W, H);
    char title[200];
    snprintf(title, sizeof title, "meshd outage drill: %d client + %d server sidecars, SVID TTL "
             "%llds, %.0f req/s", r->o->n_clients, r->o->n_servers, (long long)r->o->ttl_s,
             r->o->rate);
    text(f, ML, 22, "start", "font-size=\"15\" font-weight=\"bold\" fill=\"#111\"", title);
    text(f, ML, 42, "start", "font-size=\"12\" fill=\"#333\"", res->headline);
    legend(f);
    phases(&c, r);
    axes(&c, r);
    band(&c, r, 0, "#2e9e44", 0.30);
    band(&c, r, 1, "#d32f2f", 0.55);
    budget_line(&c, r);
    marker(&c, r->killed_at, "#222", "meshd killed", 0);
    if (r->first_expiry_at >= 0 && r->restarted_at >= 0 && r->first_expiry_at < r->restarted_at)
        marker(&c, r->first_expiry_at, "#b71c1c", "first expiry", 1);
    marker(&c, r->restarted_at, "#222", "meshd restarted", 2);
    marker(&c, r->recovered_at, "#2e7d32", "recovered", 3);
    fputs("</svg>\n", f);
}

int drill_write_svg(const drill_run *r, const drill_results *res, const char *path, mesh_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %m", path);
    drill_svg_render(r, res, f);
    if (ferror(f) | fclose(f))
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %m", path);
    return MESH_OK;
}
