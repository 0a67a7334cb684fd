/* meshctl/meshctl_ca_rotate.c — `meshctl ca rotate`: CA rotation in one command, safely.
 *
 *   ca rotate [--timeout 5m] [--force]   prepare (or resume the prepared CA), wait, activate
 *   ca rotate --prepare                  publish a new CA's root in the bundle only
 *   ca rotate --activate ID [--timeout D] [--force]   wait for ID's root, then activate
 *   ca rotate --prune                    drop retired CAs whose last SVID has expired
 *
 * Prepare puts the new root in the bundle meshd pushes as ROOTCA (old and new
 * roots). The wait polls what meshd recorded: per sidecar, the roots of the
 * bundle it last ACKed (ca_rollout_check judges each one; the policy is in
 * ca.h). Activation happens only when no sidecar blocks, judged again inside
 * the activating transaction. On timeout nothing changes: the CA stays
 * prepared and published, the lagging sidecars are listed with what to do,
 * and running the command again resumes the wait. --force activates anyway
 * and names the sidecars that will fail. meshctl only touches the store, so
 * this works from any host that can open it; meshd does the pushing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "common/duration.h"
#include "meshctl/meshctl.h"
#include "meshctl/meshctl_ca.h"

#define ROTATE_DEFAULT_TIMEOUT_S 300
/* --force without --timeout: long enough for connected sidecars to ACK a
 * bundle meshd has just pushed (poll 200 ms + debounce + one round trip). */
#define ROTATE_FORCE_TIMEOUT_S 10
#define ROTATE_POLL_MS 500
#define PROGRESS_EVERY_S 10

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int blocks(enum ca_peer_state s)
{
    return s == CA_PEER_LAGGING || s == CA_PEER_OFFLINE;
}

/* "2026-11-25T10:00:00Z (3m ago)", or "never". */
static const char *when(int64_t t, int64_t now, char *buf, size_t len)
{
    if (t <= 0) {
        snprintf(buf, len, "never");
        return buf;
    }
    char at[32], d[32];
    ctl_format_time(t, at, sizeof at);
    if (now >= t) {
        duration_format(now - t, d, sizeof d);
        snprintf(buf, len, "%s (%s ago)", at, d);
    } else {
        duration_format(t - now, d, sizeof d);
        snprintf(buf, len, "%s (in %s)", at, d);
    }
    return buf;
}

static void print_peers(ctl_ctx *c, FILE *f, const ca_rollout *r, int64_t now,
                        int want_blocking)
{
    fprintf(f, "  %-24s %-44s %-8s %-32s %s\n", "NODE", "SPIFFE ID", "STATE", "LAST SEEN",
            "BUNDLE IT LAST ACKED");
    for (size_t i = 0; i < r->n_peers; i++) {
        const ca_rollout_peer *p = &r->peers[i];
        if (blocks(p->state) != want_blocking)
            continue;
        char seen[96], acked[96], bundle[128];
        if (p->connected)
            snprintf(seen, sizeof seen, "connected (to %.20s)", ctl_esc(c, p->meshd_instance));
        else
            when(p->last_seen, now, seen, sizeof seen);
        if (p->trust_acked_at)
            snprintf(bundle, sizeof bundle, "%zu root(s), %s", p->trust_roots,
                     when(p->trust_acked_at, now, acked, sizeof acked));
        else
            snprintf(bundle, sizeof bundle, "none recorded");
        fprintf(f, "  %-24.64s %-44.128s %-8s %-32s %s\n", ctl_esc(c, p->node_id),
                ctl_esc(c, p->spiffe_id), ca_peer_state_name(p->state), seen, bundle);
    }
}

static void json_time(json_out *j, const char *key, int64_t t)
{
    char buf[32];
    json_key(j, key);
    if (t <= 0) {
        json_null(j);
        return;
    }
    ctl_format_time(t, buf, sizeof buf);
    json_str(j, buf);
}

static void json_rollout(json_out *j, const ca_rollout *r)
{
    json_key_str(j, "root_sha256", r->root_sha256);
    json_key(j, "sidecars");
    json_obj_begin(j);
    for (int s = 0; s < CA_PEER_STATE_COUNT; s++)
        json_key_int(j, ca_peer_state_name((enum ca_peer_state)s), (int64_t)r->count[s]);
    json_obj_end(j);
    for (int want = 1; want >= 0; want--) {
        json_key(j, want ? "lagging" : "not_blocking");
        json_arr_begin(j);
        for (size_t i = 0; i < r->n_peers; i++) {
            const ca_rollout_peer *p = &r->peers[i];
            if (blocks(p->state) != want || p->state == CA_PEER_READY)
                continue;
            json_obj_begin(j);
            json_key_str(j, "node_id", p->node_id);
            json_key_str(j, "spiffe_id", p->spiffe_id);
            json_key_str(j, "state", ca_peer_state_name(p->state));
            json_key_bool(j, "connected", p->connected);
            json_key_str(j, "meshd_instance", p->meshd_instance);
            json_time(j, "last_seen", p->last_seen);
            json_time(j, "svid_not_after", p->svid_not_after);
            json_time(j, "bundle_acked_at", p->trust_acked_at);
            json_key_int(j, "bundle_roots", (int64_t)p->trust_roots);
            json_obj_end(j);
        }
        json_arr_end(j);
    }
}

static const char RECOVER_HINT[] =
    "restart it with a current --ca-bundle ('meshctl ca bundle > bundle.pem') or a new "
    "join token ('meshctl workload token <spiffe-id>'); its state directory can stay";

/* One progress line: "2 of 3 sidecar(s) trust it; waiting for web-1 (offline), ...". */
static void progress(ctl_ctx *c, FILE *f, const ca_rollout *r, int64_t elapsed_s)
{
    size_t blocking = ca_rollout_blocking(r);
    fprintf(f, "  [%llds] %zu of %zu sidecar(s) trust the new root; waiting for",
            (long long)elapsed_s, r->count[CA_PEER_READY],
            r->count[CA_PEER_READY] + blocking);
    size_t shown = 0;
    for (size_t i = 0; i < r->n_peers; i++) {
        if (!blocks(r->peers[i].state))
            continue;
        if (shown++ == 5) {
            fprintf(f, ", ... (%zu more)", blocking - 5);
            break;
        }
        fprintf(f, "%s %.64s (%s)", shown > 1 ? "," : "", ctl_esc(c, r->peers[i].node_id),
                ca_peer_state_name(r->peers[i].state));
    }
    fputc('\n', f);
    fflush(f);
}

/* Polls until no sidecar blocks or timeout_s passed; then tries to activate
 * (force: regardless). *r holds the last judgement. Returns MESH_OK when
 * activated, MESH_EBUSY when refused, another code on error. */
static int wait_and_activate(ctl_ctx *c, mesh_store *st, int64_t ca_id, int64_t timeout_s,
                             int force, ca_rollout *r, int64_t *waited_ms, mesh_err *err)
{
    FILE *pf = c->json ? stderr : stdout;
    int64_t start = mono_ms(), last_print = -1;
    size_t last_blocking = (size_t)-1;
    for (;;) {
        int64_t elapsed = mono_ms() - start;
        ca_rollout_free(r);
        int rc = ca_rollout_check(st, ca_id, ctl_now(), r, err);
        if (rc != MESH_OK)
            return rc;
        size_t blocking = ca_rollout_blocking(r);
        int out_of_time = elapsed >= timeout_s * 1000;
        if (blocking == 0 || out_of_time) {
            ca_rollout_free(r);
            *waited_ms = elapsed;
            rc = ca_activate_safely(st, ca_id, ctl_now(), force, r, err);
            /* A sidecar that appeared between the look and the switch: keep waiting. */
            if (rc != MESH_EBUSY || out_of_time)
                return rc;
        } else if (blocking != last_blocking || last_print < 0 ||
                   elapsed - last_print >= PROGRESS_EVERY_S * 1000) {
            progress(c, pf, r, elapsed / 1000);
            last_print = elapsed;
            last_blocking = blocking;
        }
        sleep_ms(ROTATE_POLL_MS);
    }
}

static void report_refusal(ctl_ctx *c, const ca_rollout *r, int64_t waited_ms)
{
    int64_t now = ctl_now();
    size_t blocking = ca_rollout_blocking(r);
    char waited[32];
    duration_format(waited_ms / 1000, waited, sizeof waited);
    char msg[512];
    snprintf(msg, sizeof msg,
             "not activating CA %lld: %zu sidecar(s) have not ACKed a trust bundle holding its "
             "root after %s",
             (long long)r->ca_id, blocking, waited);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "step", "refused");
        json_key_int(&j, "ca_id", r->ca_id);
        json_key_str(&j, "error", msg);
        json_key_str(&j, "code", mesh_status_name(MESH_EBUSY));
        json_key_int(&j, "waited_ms", waited_ms);
        json_rollout(&j, r);
        json_key_str(&j, "hint", "the CA stays prepared and published; bring the sidecars back "
                                 "and run 'meshctl ca rotate' again, or activate with --force "
                                 "(the lagging sidecars then fail until they get a current "
                                 "bundle)");
        json_obj_end(&j);
        ctl_print_json(&j);
        return;
    }
    fprintf(stderr, "meshctl: %s:\n", msg);
    print_peers(c, stderr, r, now, 1);
    fprintf(stderr,
            "CA %lld stays prepared and published in the bundle; nothing else changed.\n"
            "To proceed:\n"
            "  - bring the sidecars listed back (connected sidecars get the bundle within a "
            "second;\n    a sidecar that stays connected but never ACKs may not subscribe to "
            "ROOTCA, and\n    if meshd is down no sidecar can get it) and run 'meshctl ca rotate' "
            "again to resume; or\n"
            "  - 'meshctl ca rotate --force' to activate anyway: the sidecars listed then fail "
            "to verify\n    meshd and peers with new SVIDs until each is recovered: %s.\n",
            (long long)r->ca_id, RECOVER_HINT);
    if (r->count[CA_PEER_GONE])
        fprintf(stderr, "(%zu sidecar(s) gone longer than the recovery grace do not block.)\n",
                r->count[CA_PEER_GONE]);
}

static void warn_forced(ctl_ctx *c, const ca_rollout *r)
{
    fprintf(stderr,
            "meshctl: WARNING: CA %lld activated by --force although %zu sidecar(s) do not "
            "trust its root.\nThese will fail to verify meshd, and peers with SVIDs from CA "
            "%lld, until each is recovered\n(%s):\n",
            (long long)r->ca_id, ca_rollout_blocking(r), (long long)r->ca_id, RECOVER_HINT);
    print_peers(c, stderr, r, ctl_now(), 1);
}

/* What keeps the retired CAs in the bundle, for the success message. */
static void report_retired(ctl_ctx *c, mesh_store *st, json_out *j)
{
    ca_retired *ret = NULL;
    size_t n = 0;
    mesh_err err = {0};
    int64_t now = ctl_now();
    if (ca_retired_list(st, now, &ret, &n, &err) != MESH_OK)
        n = 0;
    if (j) {
        json_key(j, "retired");
        json_arr_begin(j);
    }
    for (size_t i = 0; i < n; i++) {
        if (j) {
            json_obj_begin(j);
            json_key_int(j, "ca_id", ret[i].ca_id);
            json_key_int(j, "live_svids", ret[i].live);
            json_time(j, "prunable_at", ret[i].live ? ret[i].last_not_after + 1 : now);
            json_obj_end(j);
            continue;
        }
        char t[96];
        if (ret[i].live)
            printf("CA %lld is retired: it stays in the bundle while %lld SVID(s) it signed are "
                   "unexpired (the last expires %s);\nmeshd then removes it by itself (or "
                   "'meshctl ca rotate --prune').\n",
                   (long long)ret[i].ca_id, (long long)ret[i].live,
                   when(ret[i].last_not_after, now, t, sizeof t));
        else
            printf("CA %lld is retired and has no unexpired SVID: meshd removes it from the "
                   "bundle shortly (or 'meshctl ca rotate --prune').\n",
                   (long long)ret[i].ca_id);
    }
    if (j)
        json_arr_end(j);
    free(ret);
}

static int prune_cmd(ctl_ctx *c, mesh_store *st)
{
    mesh_err err = {0};
    int64_t now = ctl_now();
    ca_retired *ret = NULL;
    size_t n = 0;
    if (ca_retired_list(st, now, &ret, &n, &err) != MESH_OK)
        return ctl_fail(c, &err);
    int removed = 0;
    if (ca_prune(st, now, &removed, &err) != MESH_OK) {
        free(ret);
        return ctl_fail(c, &err);
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        kept += ret[i].live > 0;
    json_out j;
    json_init(&j);
    if (c->json) {
        json_obj_begin(&j);
        json_key_str(&j, "step", removed || !kept ? "pruned" : "refused");
        json_key_int(&j, "removed", removed);
        json_key(&j, "kept");
        json_arr_begin(&j);
    } else if (removed) {
        printf("%d retired CA(s) removed from the trust bundle.\n", removed);
    } else if (!kept) {
        printf("nothing to prune: no retired CA.\n");
    }
    for (size_t i = 0; i < n; i++) {
        if (!ret[i].live)
            continue;
        char t[96];
        if (c->json) {
            json_obj_begin(&j);
            json_key_int(&j, "ca_id", ret[i].ca_id);
            json_key_int(&j, "live_svids", ret[i].live);
            json_time(&j, "prunable_at", ret[i].last_not_after + 1);
            json_obj_end(&j);
        } else {
            fprintf(stderr,
                    "meshctl: not pruning CA %lld: %lld SVID(s) it signed are unexpired; the "
                    "last expires %s.\nRemoving its root now would make them fail "
                    "verification everywhere. meshd removes it by itself then;\nor run "
                    "'meshctl ca rotate --prune' again after that time.\n",
                    (long long)ret[i].ca_id, (long long)ret[i].live,
                    when(ret[i].last_not_after + 1, now, t, sizeof t));
        }
    }
    free(ret);
    if (c->json) {
        json_arr_end(&j);
        if (!removed && kept)
            json_key_str(&j, "error", "retired CAs still sign unexpired SVIDs; see 'kept'");
        json_obj_end(&j);
        ctl_print_json(&j);
    }
    return !removed && kept ? 1 : 0;
}

static const char *state_of(mesh_store *st, int64_t id, char *buf, size_t len, mesh_err *err)
{
    store_ca *list = NULL;
    size_t n = 0;
    if (store_ca_list(st, &list, &n, err) != MESH_OK)
        return NULL;
    const char *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (list[i].id == id) {
            snprintf(buf, len, "%s", list[i].state);
            found = buf;
        }
    store_ca_free_list(list, n);
    if (!found)
        mesh_err_set(err, MESH_ENOTFOUND, "no CA %lld ('meshctl ca show' lists them)",
                     (long long)id);
    return found;
}

/* Prepares a new CA, or picks up the one an earlier run prepared. */
static int prepare_step(ctl_ctx *c, mesh_store *st, ctl_ca_args *a, int resume, int64_t *id,
                        mesh_err *err)
{
    int64_t prepared = 0;
    if (resume && ca_prepared_id(st, &prepared, err) == MESH_OK) {
        if (a->material)
            return mesh_err_set(err, MESH_EEXISTS,
                                "CA %lld is already prepared; run 'meshctl ca rotate' without "
                                "key or import options to continue with it",
                                (long long)prepared);
        *id = prepared;
        if (!c->json)
            printf("CA %lld was prepared earlier; continuing the rotation with it.\n",
                   (long long)prepared);
        return MESH_OK;
    }
    mesh_err_clear(err);
    int rc = ca_prepare(st, &a->o, id, err);
    if (rc == MESH_OK && !c->json)
        printf("CA %lld prepared: its root is now in the trust bundle (ROOTCA holds the old "
               "and new roots);\nit signs nothing until activated.\n",
               (long long)*id);
    return rc;
}

int ctl_ca_rotate(ctl_ctx *c, int argc, char **argv)
{
    ctl_ca_args a;
    int rc = ctl_ca_parse(c, argc, argv, &a);
    if (rc)
        return rc;
    if ((a.mode == 'p' || a.mode == 'P') && (a.force || a.timeout_s >= 0))
        return ctl_usage_error(c, "--timeout and --force go with the activation ('ca rotate' or "
                                  "'ca rotate --activate ID')");
    if ((a.mode == 'a' || a.mode == 'P') && a.material)
        return ctl_usage_error(c, "key and import options belong to preparing a CA");
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    char *td = NULL;
    if (store_setting_get(st, "trust_domain", &td, &err) != MESH_OK) {
        mesh_err_set(&err, MESH_ENOTFOUND, "no CA to rotate: run 'meshctl ca init' first");
        return ctl_fail(c, &err);
    }
    if (!a.o.trust_domain)
        a.o.trust_domain = td;
    if (a.mode == 'P') {
        rc = prune_cmd(c, st);
        free(td);
        return rc;
    }
    int64_t id = a.activate_id;
    if (a.mode == 0 || a.mode == 'p') {
        if (prepare_step(c, st, &a, a.mode == 0, &id, &err) != MESH_OK)
            goto fail;
    } else {
        char state[32];
        if (!state_of(st, id, state, sizeof state, &err))
            goto fail;
        if (strcmp(state, "prepared") != 0) {
            mesh_err_set(&err, MESH_EINVAL, "CA %lld is %s; only a prepared CA can be activated",
                         (long long)id, state);
            goto fail;
        }
    }
    free(td);
    td = NULL;
    if (a.mode == 'p') {
        if (c->json) {
            json_out j;
            json_init(&j);
            json_obj_begin(&j);
            json_key_str(&j, "step", "prepared");
            json_key_int(&j, "ca_id", id);
            json_obj_end(&j);
            return ctl_print_json(&j);
        }
        printf("Activate it with 'meshctl ca rotate --activate %lld' (it waits until every "
               "sidecar trusts the new root).\n", (long long)id);
        return 0;
    }

    int64_t timeout = a.timeout_s >= 0 ? a.timeout_s
                                       : a.force ? ROTATE_FORCE_TIMEOUT_S : ROTATE_DEFAULT_TIMEOUT_S;
    if (!c->json) {
        char t[32];
        duration_format(timeout, t, sizeof t);
        printf("Waiting up to %s for every sidecar to ACK a trust bundle holding CA %lld's "
               "root...\n", t, (long long)id);
        fflush(stdout);
    }
    ca_rollout r;
    memset(&r, 0, sizeof r);
    int64_t waited = 0;
    rc = wait_and_activate(c, st, id, timeout, a.force, &r, &waited, &err);
    if (rc == MESH_EBUSY) {
        report_refusal(c, &r, waited);
        ca_rollout_free(&r);
        return 1;
    }
    if (rc != MESH_OK) {
        ca_rollout_free(&r);
        goto fail;
    }
    size_t forced = ca_rollout_blocking(&r);
    if (forced)
        warn_forced(c, &r);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "step", "activated");
        json_key_int(&j, "ca_id", id);
        json_key_bool(&j, "forced", forced > 0);
        json_key_int(&j, "waited_ms", waited);
        json_rollout(&j, &r);
        report_retired(c, st, &j);
        json_obj_end(&j);
        ca_rollout_free(&r);
        return ctl_print_json(&j);
    }
    char w[32];
    duration_format(waited / 1000, w, sizeof w);
    printf("CA %lld is now active (%zu sidecar(s) trusted its root after %s): meshd re-signs "
           "every connected\nSVID and its own serving certificate from it now; the rest renew "
           "from it as they reconnect.\n",
           (long long)id, r.count[CA_PEER_READY], w);
    if (r.count[CA_PEER_GONE])
        printf("%zu sidecar(s) gone longer than the recovery grace were not waited for.\n",
               r.count[CA_PEER_GONE]);
    ca_rollout_free(&r);
    report_retired(c, st, NULL);
    return 0;
fail:
    free(td);
    return ctl_fail(c, &err);
}
