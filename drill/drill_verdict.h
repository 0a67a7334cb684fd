/* drill/drill_verdict.h — what a drill concludes (drill_verdict.c): the facts
 * derived from the record, the verdicts in an operator's words, the --expect-*
 * checks, the outcome in one line, and the exit status. Pure. */
#ifndef MESH_DRILL_DRILL_VERDICT_H
#define MESH_DRILL_DRILL_VERDICT_H

#include <stdint.h>

#include "drill/drill_model.h"

typedef struct drill_verdict {
    const char *id;                   /* zero_failures_before_expiry, first_expiry, ... */
    int pass;                         /* 1 pass, 0 fail, -1 informational */
    char text[400];
} drill_verdict;

typedef struct drill_expect {
    const char *flag;                 /* "--expect-recovery-within 30s" */
    char flag_buf[80];
    int met;
    char detail[300];
} drill_expect;

typedef struct drill_results {
    drill_verdict v[8];
    int n_v;
    drill_expect e[4];
    int n_e;
    int all_met;                      /* every expectation (1 when none was given) */
    char headline[300];               /* the outcome in one short line (chart subtitle) */
} drill_results;

/* What the verdicts, the JSON and the SVG rest on. */
typedef struct drill_facts {
    int killed, restarted, recovered;
    int expiry_in_outage;             /* some SVID expired before the restart */
    int all_expired_in_outage;        /* every SVID did, at least a second before it */
    double horizon;                   /* failures before this count as "before expiry" */
    uint64_t failed_before_expiry;
    uint64_t failed_while_expired;    /* from first expiry to the restart */
    uint64_t ok_after_all_expired;    /* whole seconds after last expiry + 1 s, before restart */
    uint64_t ok_before_expiry_in_outage;
    uint64_t failed_after_recovery;
    double first_fail_after_expiry;   /* T+, -1 */
    double recovery_s;                /* recovered - restarted, -1 */
} drill_facts;

void drill_derive(const drill_run *r, drill_facts *f);
/* Verdicts (in the order of docs/drill.md), headline and expectations. */
void drill_evaluate(const drill_run *r, drill_results *res);

/* The exit status: interrupted 130; the drill could not run (or a report or the
 * target cleanup failed) 1; a crash or an unmet expectation 3; else 0. */
int drill_exit_status(int interrupted, int could_not_run, int crashes, int all_met);

#endif
