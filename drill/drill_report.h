/* drill/drill_report.h — the drill's outputs: the terminal summary and the CSV
 * (drill_report.c), the JSON report (drill_json.c) and the SVG chart
 * (drill_svg.c). Pure: each renders the record and its results into a FILE or a
 * json_out; the write_* wrappers only open, write and close the named file. */
#ifndef MESH_DRILL_DRILL_REPORT_H
#define MESH_DRILL_DRILL_REPORT_H

#include <stdio.h>

#include "common/error.h"
#include "common/json_out.h"
#include "drill/drill_model.h"
#include "drill/drill_verdict.h"

void drill_print_summary(const drill_run *r, const drill_results *res, FILE *f);

/* The per-second table: the documented columns first, one row per second. */
void drill_print_csv(const drill_run *r, FILE *f);
int drill_write_csv(const drill_run *r, const char *path, mesh_err *err);   /* "-" = stdout */

/* The JSON report (docs/drill.md, "Outputs") as one object into j. */
void drill_json_build(const drill_run *r, const drill_results *res, json_out *j);
int drill_write_json(const drill_run *r, const drill_results *res, const char *path,
                     mesh_err *err);   /* "-" = stdout */

/* The chart: a self-contained SVG document. */
void drill_svg_render(const drill_run *r, const drill_results *res, FILE *f);
int drill_write_svg(const drill_run *r, const drill_results *res, const char *path,
                    mesh_err *err);

/* An output file, or stdout for "-"; drill_close_out reports write errors. */
FILE *drill_open_out(const char *path, mesh_err *err);
int drill_close_out(FILE *f, const char *path, mesh_err *err);

#endif
