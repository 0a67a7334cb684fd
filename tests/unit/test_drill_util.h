/* tests/unit/test_drill_util.h — helpers for the drill's unit tests: a drill
 * record built without processes, a strict JSON parser (RFC 8259: no trailing
 * commas, no duplicate keys, no NaN, exact number and string grammar) and a
 * strict XML well-formedness checker with a small element tree, so the reports
 * are read back by a parser rather than searched for substrings; and a check by
 * Python's json / xml.etree, parsers nobody here wrote, where python3 exists. */
#ifndef MESH_TESTS_DRILL_UTIL_H
#define MESH_TESTS_DRILL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "drill/drill_model.h"

/* ---- a record without processes ------------------------------------------------- */
/* Options at their defaults, quiet; n clients + k servers named client-1.. and
 * server-1.., SPIFFE IDs in drill.example, distinct ports; wall_t0 = TDR_WALL0.
 * Free with tdr_run_free (also frees the options). */
#define TDR_WALL0 1767225600.0        /* 2026-01-01T00:00:00Z */
drill_run *tdr_run(int n_clients, int n_servers);
void tdr_run_free(drill_run *r);
/* Gives sidecar s an SVID with this serial expiring at T+expires_t (present). */
void tdr_svid(drill_run *r, drill_sidecar *s, const char *serial, double expires_t);
/* Appends a finished second (its ok/failed counts only). */
drill_second *tdr_second(drill_run *r, int t, enum drill_phase phase, unsigned ok,
                         unsigned failed);
/* Counts n requests of client 0 at T+t in phase ph (drill_count). */
void tdr_requests(drill_run *r, double t, enum drill_phase ph, int ok, int n, const char *desc);

/* A whole drill like test_drill.sh's first run, through the pure rules: 3
 * clients + 2 servers, 15 s SVIDs, 60 req/s, killed at T+3, SVIDs expiring at
 * T+15 (client-1..3) and T+16 (servers), restart at T+22 (the last expiry's
 * second + 5 s), every SVID renewed and synced by T+23, recovered at T+25;
 * traffic clean before the expiry and failing from T+15.5 to the restart. */
drill_run *tdr_full_drill(void);

/* ---- capturing stdout ------------------------------------------------------------ */
void tdr_capture_start(void);
char *tdr_capture_end(void);          /* what was written to stdout since, malloc'd */

/* ---- a strict JSON parser ---------------------------------------------------------- */
enum tj_type { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ };
typedef struct tj {
    enum tj_type type;
    int b;
    double num;
    char *str;                        /* TJ_STR (NUL-free strings only) */
    struct tj *items;                 /* TJ_ARR / TJ_OBJ */
    char **keys;                      /* TJ_OBJ */
    size_t n;
} tj;
/* NULL (and a reason in err) unless text is exactly one valid JSON value. */
tj *tj_parse(const char *text, char *err, size_t errlen);
void tj_free(tj *v);
/* "result.recovered", "sidecars.0.name": NULL if any step is missing. */
const tj *tj_at(const tj *v, const char *path);
int tj_has(const tj *obj, const char *key);

/* ---- a strict XML checker ---------------------------------------------------------- */
typedef struct tx_attr {
    char *name, *value;               /* value with entities decoded */
} tx_attr;
typedef struct tx_el {
    char *name;
    tx_attr *attrs;
    size_t n_attrs;
    char *text;                       /* character data directly inside, decoded */
    struct tx_el **kids;
    size_t n_kids;
} tx_el;
/* The root element of a well-formed document (optional XML declaration, one
 * root, balanced tags, quoted unique attributes, only the five predefined and
 * numeric entities, no markup characters in text), or NULL with a reason. */
tx_el *tx_parse(const char *doc, char *err, size_t errlen);
void tx_free(tx_el *e);
const char *tx_attr_get(const tx_el *e, const char *name);
/* Visits every element below and including e, depth first. */
void tx_walk(const tx_el *e, void (*fn)(const tx_el *el, void *arg), void *arg);

/* ---- parsers nobody here wrote ------------------------------------------------------ */
/* 1 if python3's json (strict: no NaN, no duplicate keys) / xml.etree accepts the
 * text, 0 if it refuses, -1 if python3 cannot be run here. */
int tdr_python_accepts_json(const char *text);
int tdr_python_accepts_xml(const char *text);

#endif
