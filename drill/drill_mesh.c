/* drill/drill_mesh.c — the drill's throwaway mesh: work directory, binaries,
 * free ports, the mesh YAML, and the meshctl steps done in-process (CA init,
 * workload registrations with join tokens, trust bundle, config apply).
 *
 * By default the drill builds its own store inside its work directory: it never
 * registers workloads in, or applies config to, the store named by --db. Only in
 * target mode (--target) does it use that store, with every name prefixed
 * "drill<pid>-", and it removes what it added when it ends (drill_mesh_cleanup). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/join_token.h"
#include "config/mesh_config.h"
#include "drill/drill.h"

/* ---- binaries and the work directory ----------------------------------------------- */

static int find_binaries(drill_run *r, mesh_err *err)
{
    char dir[4096];
    if (r->o->bin_dir) {
        snprintf(dir, sizeof dir, "%s", r->o->bin_dir);
    } else {
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return mesh_err_set(err, MESH_EIO, "cannot find meshctl's own path "
                                "(/proc/self/exe): %s; pass --bin-dir", strerror(errno));
        self[n] = '\0';
        snprintf(dir, sizeof dir, "%s", dirname(self));
    }
    struct { const char *name; char *out; } bins[] = {
        {"meshd", r->bin_meshd}, {"mesh-sidecar", r->bin_sidecar}, {"mesh-testapp", r->bin_testapp}};
    for (size_t i = r->o->target ? 1 : 0; i < sizeof bins / sizeof bins[0]; i++) {
        int n = snprintf(bins[i].out, sizeof r->bin_meshd, "%s/%s", dir, bins[i].name);
        if (n < 0 || (size_t)n >= sizeof r->bin_meshd)
            return mesh_err_set(err, MESH_EINVAL, "--bin-dir: path too long");
        if (access(bins[i].out, X_OK) != 0)
            return mesh_err_set(err, MESH_ENOTFOUND, "%s: %s (build it with 'make', or point "
                                "--bin-dir at the directory holding meshd, mesh-sidecar and "
                                "mesh-testapp)", bins[i].out, strerror(errno));
    }
    return MESH_OK;
}

static int make_work_dir(drill_run *r, mesh_err *err)
{
    if (!r->o->dir) {
        char tmpl[] = "/tmp/meshd-drill-XXXXXX";
        if (!mkdtemp(tmpl))
            return mesh_err_set(err, MESH_EIO, "cannot create a work directory in /tmp: %s",
                                strerror(errno));
        snprintf(r->dir, sizeof r->dir, "%s", tmpl);
        r->dir_is_temp = 1;
        return MESH_OK;
    }
    if (mkdir(r->o->dir, 0700) != 0 && errno != EEXIST)
        return mesh_err_set(err, MESH_EIO, "--dir %s: cannot create it: %s", r->o->dir,
                            strerror(errno));
    char real[PATH_MAX];
    if (!realpath(r->o->dir, real))
        return mesh_err_set(err, MESH_EIO, "--dir %s: %s", r->o->dir, strerror(errno));
    /* An earlier drill's store there would make 'ca init' fail half-way. */
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof probe, "%s/meshd.db", real);
    if (access(probe, F_OK) == 0)
        return mesh_err_set(err, MESH_EEXISTS, "--dir %s already holds a drill (meshd.db); "
                            "give an empty or new directory", r->o->dir);
    snprintf(r->dir, sizeof r->dir, "%s", real);
    return MESH_OK;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    (void)sb;
    (void)type;
    (void)f;
    remove(path);
    return 0;
}

void drill_remove_tree(const char *dir)
{
    if (dir && dir[0] && strcmp(dir, "/") != 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_file(const char *path, const char *data, mode_t mode, mesh_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", path, strerror(errno));
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", path, strerror(e));
        }
        off += (size_t)n;
    }
    if (close(fd) != 0)
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", path, strerror(errno));
    return MESH_OK;
}

/* ---- ports --------------------------------------------------------------------------- */

/* Ports come from --ports (default 20000-32767, below the kernel's ephemeral
 * range, 32768+, so that an outgoing connection cannot take a port between our
 * check and the child's bind). Each candidate is checked by binding it; none is
 * handed out twice. */
typedef struct port_alloc {
    unsigned char used[65536 / 8];
    int next, lo, hi;
} port_alloc;

static int port_take(port_alloc *pa, int *out, mesh_err *err)
{
    for (int tries = 0; tries <= pa->hi - pa->lo; tries++) {
        int p = pa->next;
        pa->next = pa->next >= pa->hi ? pa->lo : pa->next + 1;
        if (pa->used[p / 8] & (1u << (p % 8)))
            continue;
        pa->used[p / 8] |= (unsigned char)(1u << (p % 8));
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return mesh_err_set(err, MESH_EIO, "socket: %s", strerror(errno));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok) {
            *out = p;
            return MESH_OK;
        }
    }
    return mesh_err_set(err, MESH_EBUSY,
                        "no free TCP port left in 127.0.0.1:%d-%d (widen --ports)", pa->lo,
                        pa->hi);
}

static int assign_ports(drill_run *r, mesh_err *err)
{
    port_alloc *pa = calloc(1, sizeof *pa);
    if (!pa)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    pa->lo = r->o->port_lo;
    pa->hi = r->o->port_hi;
    /* Start somewhere different each run so concurrent drills rarely collide. */
    pa->next = pa->lo + (int)(((unsigned)getpid() * 7919u + (unsigned)time(NULL)) %
                              (unsigned)(pa->hi - pa->lo + 1));
    int rc = r->o->target ? MESH_OK : port_take(pa, &r->meshd_port, err);
    r->replica_port[0] = r->meshd_port;
    for (int k = 1; rc == MESH_OK && k < r->o->replicas; k++)
        rc = port_take(pa, &r->replica_port[k], err);
    for (int k = 0; k < r->o->replicas; k++)
        snprintf(r->replica_addr[k], sizeof r->replica_addr[k], "127.0.0.1:%d",
                 r->replica_port[k]);
    for (int i = 0; rc == MESH_OK && i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        if ((rc = port_take(pa, &s->port_in, err)) != MESH_OK ||
            (rc = port_take(pa, &s->port_admin, err)) != MESH_OK ||
            (rc = port_take(pa, &s->port_app, err)) != MESH_OK)
            break;
        if (s->role == DRILL_CLIENT)
            rc = port_take(pa, &s->port_out, err);
    }
    free(pa);
    if (r->o->target)
        snprintf(r->meshd_addr, sizeof r->meshd_addr, "%s", r->o->target);
    else
        snprintf(r->meshd_addr, sizeof r->meshd_addr, "127.0.0.1:%d", r->meshd_port);
    return rc;
}

/* ---- in-process meshctl: CA, registrations, tokens, bundle, config ------------------ */

static int register_workloads(drill_run *r, mesh_err *err)
{
    char tdir[4200];
    snprintf(tdir, sizeof tdir, "%s/tokens", r->dir);
    if (mkdir(tdir, 0700) != 0 && errno != EEXIST)
        return mesh_err_set(err, MESH_EIO, "cannot create %s: %s", tdir, strerror(errno));
    /* One transaction: either every drill workload can join or none is registered. */
    int rc = store_begin(r->st, err);
    if (rc != MESH_OK)
        return rc;
    for (int i = 0; i < r->n_sc && rc == MESH_OK; i++) {
        drill_sidecar *s = &r->sc[i];
        char addr[32], path[4300];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port_in);
        char *token = NULL;
        if ((rc = store_registration_add(r->st, s->name, s->spiffe_id, "meshctl:drill", addr, err)) !=
                MESH_OK ||
            (rc = join_token_create(r->st, s->name, s->spiffe_id, 3600, &token, err)) != MESH_OK)
            break;
        /* The token goes only into a 0600 file the sidecar reads (never argv, never logs). */
        snprintf(path, sizeof path, "%s/%s.token", tdir, s->name);
        size_t tl = strlen(token);
        char *line = malloc(tl + 2);
        if (!line) {
            free(token);
            rc = mesh_err_set(err, MESH_ENOMEM, "out of memory");
            break;
        }
        memcpy(line, token, tl);
        line[tl] = '\n';
        line[tl + 1] = '\0';
        rc = write_file(path, line, 0600, err);
        memset(line, 0, tl);
        memset(token, 0, tl);
        free(line);
        free(token);
    }
    if (rc == MESH_OK)
        rc = store_audit(r->st, "meshctl", "drill.register", r->dir, "", 1, err);
    if (rc == MESH_OK)
        rc = store_commit(r->st, err);
    if (rc != MESH_OK)
        store_rollback(r->st);
    return rc;
}

static int apply_config(drill_run *r, mesh_err *err)
{
    char *yaml = drill_mesh_yaml(r);
    if (!yaml)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory building the mesh YAML");
    char path[4200];
    snprintf(path, sizeof path, "%s/drill-mesh.yaml", r->dir);
    int rc = write_file(path, yaml, 0644, err);
    free(yaml);
    if (rc != MESH_OK)
        return rc;
    mesh_config cfg = {0};
    if ((rc = mesh_config_parse_file(path, &cfg, err)) != MESH_OK)
        return mesh_err_prefix(err, "the generated mesh config is invalid (a drill bug)");
    int changed = 0;
    rc = mesh_config_apply(r->st, &cfg, &changed, err);
    mesh_config_free(&cfg);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "applying the drill's mesh config");
    store_audit(r->st, "meshctl", "config.apply", path, "drill", 1, NULL);
    return MESH_OK;
}

/* Target mode: the running meshd's store, which must hold a CA. */
static int open_target_store(drill_run *r, mesh_err *err)
{
    int rc = store_open(&r->st, r->o->db_path, err);
    if (rc != MESH_OK)
        return mesh_err_prefix(err, "--target's store");
    char *td = NULL;
    if (store_setting_get(r->st, "trust_domain", &td, err) != MESH_OK)
        return mesh_err_set(err, MESH_ENOTFOUND, "%s has no CA: is it the store of the meshd "
                            "at %s?", r->o->db_path, r->o->target);
    snprintf(r->td, sizeof r->td, "%s", td);
    free(td);
    return MESH_OK;
}

static int init_own_store(drill_run *r, mesh_err *err)
{
    char db[4200], keys[4200];
    snprintf(db, sizeof db, "%s/meshd.db", r->dir);
    snprintf(keys, sizeof keys, "%s/ca-keys", r->dir);
    store_open_opts create = {.create = 1};
    int rc = store_open_with(&r->st, db, &create, err);
    if (rc != MESH_OK)
        return rc;
    ca_init_opts co = {.trust_domain = r->td, .key_dir = keys};
    int64_t ca_id = 0;
    if ((rc = ca_init(r->st, &co, &ca_id, err)) != MESH_OK)
        return mesh_err_prefix(err, "ca init");
    return MESH_OK;
}

int drill_mesh_prepare(drill_run *r, mesh_err *err)
{
    int rc;
    if ((rc = find_binaries(r, err)) != MESH_OK || (rc = make_work_dir(r, err)) != MESH_OK)
        return rc;
    snprintf(r->td, sizeof r->td, "%s", r->o->trust_domain);
    if (r->o->target) {
        snprintf(r->prefix, sizeof r->prefix, "drill%d-", (int)getpid());
        if ((rc = open_target_store(r, err)) != MESH_OK)
            return rc;
    }
    snprintf(r->svc_server, sizeof r->svc_server, "%sdrill-server", r->prefix);
    snprintf(r->svc_client, sizeof r->svc_client, "%sdrill-client", r->prefix);
    for (int i = 0; i < r->n_sc; i++) {
        drill_sidecar *s = &r->sc[i];
        int k = s->role == DRILL_CLIENT ? i + 1 : i - r->o->n_clients + 1;
        snprintf(s->name, sizeof s->name, "%.24s%s-%d", r->prefix,
                 s->role == DRILL_CLIENT ? "client" : "server", k);
        snprintf(s->spiffe_id, sizeof s->spiffe_id, "spiffe://%s/ns/%s/sa/%s", r->td,
                 r->o->target ? "meshd-drill" : "drill", s->name);
    }
    if ((rc = assign_ports(r, err)) != MESH_OK)
        return rc;
    char state[4200];
    snprintf(state, sizeof state, "%s/state", r->dir);
    if (mkdir(state, 0700) != 0 && errno != EEXIST)
        return mesh_err_set(err, MESH_EIO, "cannot create %s: %s", state, strerror(errno));
    if (!r->o->target && (rc = init_own_store(r, err)) != MESH_OK)
        return rc;

    char bundle_path[4200];
    snprintf(bundle_path, sizeof bundle_path, "%s/bundle.pem", r->dir);
    char *pem = NULL;
    if ((rc = ca_bundle_pem(r->st, &pem, err)) != MESH_OK)
        return rc;
    rc = write_file(bundle_path, pem, 0644, err);
    free(pem);
    if (rc != MESH_OK || (rc = register_workloads(r, err)) != MESH_OK)
        return rc;
    r->mesh_written = 1;
    return apply_config(r, err);
}

/* Target mode: everything the drill added, in an order the config accepts
 * (a service goes last, once nothing refers to it). Going on past a failure
 * removes as much as possible; the first error is returned. */
int drill_mesh_cleanup(drill_run *r, mesh_err *err)
{
    if (!r->o->target || !r->mesh_written || !r->st)
        return MESH_OK;
    int first = MESH_OK;
    mesh_err e;
    struct { const char *kind, *name; } del[] = {
        {"route", r->svc_server}, {"authorization", r->svc_server},
        {"authorization", r->svc_client}};
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++) {
        int rc = mesh_config_delete(r->st, del[i].kind, del[i].name, &e);
        if (rc != MESH_OK && rc != MESH_ENOTFOUND && first == MESH_OK) {
            first = rc;
            *err = e;
        }
    }
    for (int i = 0; i < r->n_sc; i++) {
        int rc = mesh_config_delete(r->st, "workload", r->sc[i].name, &e);
        if (rc != MESH_OK && rc != MESH_ENOTFOUND && first == MESH_OK) {
            first = rc;
            *err = e;
        }
        rc = store_registration_remove(r->st, r->sc[i].name, r->sc[i].spiffe_id, &e);
        if (rc != MESH_OK && rc != MESH_ENOTFOUND && first == MESH_OK) {
            first = rc;
            *err = e;
        }
    }
    const char *svcs[] = {r->svc_server, r->svc_client};
    for (size_t i = 0; i < 2; i++) {
        int rc = mesh_config_delete(r->st, "service", svcs[i], &e);
        if (rc != MESH_OK && rc != MESH_ENOTFOUND && first == MESH_OK) {
            first = rc;
            *err = e;
        }
    }
    store_audit(r->st, "meshctl", "drill.cleanup", r->prefix, first == MESH_OK ? "" : err->msg,
                first == MESH_OK, NULL);
    if (first == MESH_OK)
        r->mesh_written = 0;
    return first;
}
