/* sidecar/run_boot.c — mesh-sidecar's identity at start: the persisted cert
 * pool if there is one (a restart during a meshd outage keeps serving), else a
 * fresh pool that trusts --ca-bundle and waits for its first SVID. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sidecar/dp_spiffe.h"
#include "sidecar/tls_util.h"
#include "sidecar/xds_persist.h"
#include "sidecar/run.h"

static int ensure_dir(const char *dir, mesh_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return mesh_err_set(err, MESH_EIO, "--state-dir %s: %s", dir, strerror(errno));
        if (mkdir(dir, 0700) != 0)
            return mesh_err_set(err, MESH_EIO, "cannot create --state-dir %s: %s", dir,
                                strerror(errno));
        return MESH_OK;
    }
    if (!S_ISDIR(st.st_mode))
        return mesh_err_set(err, MESH_EINVAL, "--state-dir %s is not a directory", dir);
    if (st.st_mode & 0077)
        log_warn("sidecar", "state directory %s is accessible to group/others (mode %03o); it "
                 "holds this sidecar's private key, consider chmod 700", dir,
                 (unsigned)(st.st_mode & 0777));
    return MESH_OK;
}

static int load_bundle_file(cert_pool *pool, const char *path, mesh_err *err)
{
    char *pem = NULL;
    int rc = xdsc_read_file(path, 1024 * 1024, &pem, NULL, err);
    if (rc == MESH_OK)
        rc = cert_pool_set_bundle(pool, pem, (int64_t)time(NULL), err);
    free(pem);
    if (rc != MESH_OK)
        mesh_err_prefix(err, "--ca-bundle %s", path);
    return rc;
}

int sc_boot_identity(const sc_opts *o, cert_pool **pool, int *first_contact, mesh_err *err)
{
    *pool = NULL;
    *first_contact = 0;
    int rc = ensure_dir(o->state_dir, err);
    if (rc != MESH_OK)
        return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->state_dir, XDSC_POOL_FILE);
    cert_pool *p = NULL;
    rc = cert_pool_load(path, &p, err);
    int64_t now = (int64_t)time(NULL);
    if (rc == MESH_ENOTFOUND) {
        if (!o->ca_bundle)
            return mesh_err_set(err, MESH_EINVAL,
                                "first contact (no cert pool in %s): --ca-bundle is required "
                                "('meshctl ca bundle > bundle.pem')", o->state_dir);
        if ((rc = cert_pool_new(&p, err)) != MESH_OK)
            return rc;
    } else if (rc != MESH_OK) {
        return mesh_err_prefix(err, "loading the cert pool");
    }
    cert_pool_info info;
    cert_pool_get_info(p, now, &info);
    if (info.n_roots == 0) {
        if (!o->ca_bundle) {
            cert_pool_free(p);
            return mesh_err_set(err, MESH_EINVAL, "the cert pool in %s has no trust bundle; "
                                "give --ca-bundle", o->state_dir);
        }
        if ((rc = load_bundle_file(p, o->ca_bundle, err)) != MESH_OK) {
            cert_pool_free(p);
            return rc;
        }
    }
    if (info.current.present) {
        if (o->spiffe_id && strcmp(o->spiffe_id, info.current.spiffe_id) != 0) {
            cert_pool_free(p);
            return mesh_err_set(err, MESH_EINVAL,
                                "--state-dir %s belongs to %s, not %s; use another state "
                                "directory (or remove this one to re-enrol)", o->state_dir,
                                info.current.spiffe_id, o->spiffe_id);
        }
        char na[32];
        tls_format_time(info.current.not_after, na, sizeof na);
        if (info.current.not_after > now)
            log_info("sidecar", "loaded SVID %s serial %s from %s: valid until %s (%lld s "
                     "left even if meshd stays away)", info.current.spiffe_id,
                     info.current.serial_hex, path, na,
                     (long long)(info.current.not_after - now));
        else
            log_warn("sidecar", "loaded SVID %s serial %s from %s: EXPIRED at %s; mTLS stays "
                     "off until meshd renews it (self-recovery with this SVID)",
                     info.current.spiffe_id, info.current.serial_hex, path, na);
        *pool = p;
        return MESH_OK;
    }
    /* No SVID yet: first contact. */
    *first_contact = 1;
    if (!o->spiffe_id) {
        cert_pool_free(p);
        return mesh_err_set(err, MESH_EINVAL, "first contact: --id spiffe://... is required");
    }
    if ((rc = dp_spiffe_check(o->spiffe_id, NULL, 0, err)) != MESH_OK) {
        cert_pool_free(p);
        return mesh_err_prefix(err, "--id");
    }
    if (!o->token && !o->token_file) {
        cert_pool_free(p);
        return mesh_err_set(err, MESH_EINVAL,
                            "first contact: a join token is required: --token-file FILE (or "
                            "--token mjt_...), from 'meshctl workload add %s'", o->spiffe_id);
    }
    /* Persisted xDS state without an identity is not ours to trust. */
    xdsc_persist_clear(o->state_dir);
    *pool = p;
    return MESH_OK;
}
