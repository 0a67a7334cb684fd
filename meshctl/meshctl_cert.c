/* meshctl/meshctl_cert.c — `meshctl cert ...`: offline issuance, listing, inspection, and
 * revocation (ca_revoke.h: keyCompromise revokes the key), which says what happens next. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/ca_revoke.h"
#include "common/duration.h"
#include "meshctl/meshctl.h"

#define CSR_MAX_BYTES (64 * 1024)

/* Serials are stored lowercase; operators paste them from openssl output in uppercase. */
static void serial_normalise(const char *in, char *out, size_t len)
{
    size_t o = 0;
    if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
        in += 2;
    for (; *in && o + 1 < len; in++)
        if (*in != ':')
            out[o++] = (char)tolower((unsigned char)*in);
    out[o] = '\0';
}

static int read_small_file(const char *path, size_t max, char **out, mesh_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return mesh_err_set(err, MESH_EIO, "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(max + 1);
    if (!buf) {
        if (f != stdin)
            fclose(f);
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        free(buf);
        return mesh_err_set(err, MESH_EIO, "cannot read %s", path);
    }
    if (n > max) {
        free(buf);
        return mesh_err_set(err, MESH_EINVAL, "%s is larger than %zu bytes: not a CSR", path, max);
    }
    buf[n] = '\0';
    *out = buf;
    return MESH_OK;
}

/* Writes the chain to path. A regular file (or a new one) is replaced
 * atomically, so a reader never sees half a chain; anything else (/dev/null,
 * /dev/stdout, a FIFO) is written in place: renaming over it would replace a
 * device node with a file, as root even /dev/null. */
static int write_chain(const char *path, const char *pem, mesh_err *err)
{
    size_t len = strlen(pem);
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        int fd = open(path, O_WRONLY);
        ssize_t n = fd >= 0 ? write(fd, pem, len) : -1;
        int saved = errno;
        if (fd >= 0)
            close(fd);
        if (n != (ssize_t)len)
            return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", path,
                                n < 0 ? strerror(saved) : "short write");
        return MESH_OK;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, pem, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, path) != 0) {
        int saved = errno;
        if (fd >= 0)
            unlink(tmp);
        return mesh_err_set(err, MESH_EIO, "cannot write %s: %s", path, strerror(saved));
    }
    return MESH_OK;
}

static int cert_issue(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"csr", required_argument, 0, 'c'},
                                         {"id", required_argument, 0, 'i'},
                                         {"ttl", required_argument, 0, 't'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *csr_path = NULL, *id = NULL, *out_path = NULL;
    int64_t ttl = 0;
    mesh_err err = {0};
    optind = 1;
    opterr = 0;
    int ch, rc;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': csr_path = optarg; break;
        case 'i': id = optarg; break;
        case 'o': out_path = optarg; break;
        case 't':
            if ((rc = ctl_flag_duration_s(c, "--ttl", optarg, CA_MIN_SVID_TTL, CA_MAX_SVID_TTL,
                                          &ttl)))
                return rc;
            break;
        default: return ctl_bad_option(c, argc, argv, opts);
        }
    }
    if (!csr_path || !id)
        return ctl_usage_error(c, "cert issue needs --csr FILE and --id SPIFFE_ID");
    if (optind < argc)
        return ctl_usage_error(c, "unexpected argument '%s'", argv[optind]);
    char *csr = NULL;
    if (read_small_file(csr_path, CSR_MAX_BYTES, &csr, &err) != MESH_OK)
        return ctl_fail(c, &err);
    mesh_store *st = ctl_store(c);
    if (!st) {
        free(csr);
        return 1;
    }
    mesh_ca *ca = NULL;
    if (ca_load(st, &ca, &err) != MESH_OK) {
        free(csr);
        return ctl_fail(c, &err);
    }
    ca_issue_req req = {.csr_pem = csr, .authorised_id = id, .ttl_seconds = ttl,
                        .actor = "meshctl"};
    ca_issued issued = {0};
    rc = ca_issue_svid(ca, st, &req, &issued, &err);
    ca_free(ca);
    free(csr);
    if (rc != MESH_OK)
        return ctl_fail(c, &err);
    if (out_path && write_chain(out_path, issued.chain_pem, &err) != MESH_OK) {
        mesh_err_prefix(&err, "the cert %s is stored ('meshctl cert show %s' prints it), but",
                        issued.serial_hex, issued.serial_hex);
        ca_issued_free(&issued);
        return ctl_fail(c, &err);
    }
    char nb[32], na[32];
    ctl_format_time(issued.not_before, nb, sizeof nb);
    ctl_format_time(issued.not_after, na, sizeof na);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "serial", issued.serial_hex);
        json_key_str(&j, "spiffe_id", issued.spiffe_id);
        json_key_str(&j, "not_before", nb);
        json_key_str(&j, "not_after", na);
        json_key(&j, "cert_chain");
        json_arr_begin(&j);
        for (size_t i = 0; i < issued.chain_len; i++)
            json_str(&j, issued.chain[i]);
        json_arr_end(&j);
        json_obj_end(&j);
        ca_issued_free(&issued);
        return ctl_print_json(&j);
    }
    if (out_path)
        printf("issued %s for %s, valid %s .. %s, written to %s\n", issued.serial_hex,
               ctl_esc(c, issued.spiffe_id), nb, na, ctl_esc(c, out_path));
    else
        fputs(issued.chain_pem, stdout);
    ca_issued_free(&issued);
    return 0;
}

static void cert_json(json_out *j, const store_cert *ct, int with_pem)
{
    char nb[32], na[32];
    ctl_format_time(ct->not_before, nb, sizeof nb);
    ctl_format_time(ct->not_after, na, sizeof na);
    json_obj_begin(j);
    json_key_str(j, "serial", ct->serial_hex);
    json_key_str(j, "spiffe_id", ct->spiffe_id);
    json_key_str(j, "instance", ct->instance ? ct->instance : "");
    json_key_str(j, "not_before", nb);
    json_key_str(j, "not_after", na);
    json_key_int(j, "seconds_left", ct->not_after - ctl_now());
    json_key_str(j, "pubkey_sha256", ct->pubkey_sha256);
    json_key_int(j, "ca_id", ct->ca_id);
    json_key_bool(j, "revoked", ct->revoked);
    if (ct->revoked)
        json_key_str(j, "revoke_reason", ct->revoke_reason);
    if (with_pem)
        json_key_str(j, "cert_pem", ct->cert_pem);
    json_obj_end(j);
}

static int cert_list(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"id", required_argument, 0, 'i'},
                                         {"all", no_argument, 0, 'a'},
                                         {0, 0, 0, 0}};
    const char *id = NULL;
    int all = 0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'i')
            id = optarg;
        else if (ch == 'a')
            all = 1;
        else
            return ctl_bad_option(c, argc, argv, opts);
    }
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    store_cert *list = NULL;
    size_t n = 0;
    if (store_cert_list(st, id, all, ctl_now(), &list, &n, &err) != MESH_OK)
        return ctl_fail(c, &err);
    json_out j;
    json_init(&j);
    if (c->json)
        json_arr_begin(&j);
    else
        printf("%-34s %-52s %-21s %-10s %s\n", "SERIAL", "SPIFFE ID", "NOT AFTER", "LEFT",
               "STATUS");
    for (size_t i = 0; i < n; i++) {
        if (c->json) {
            cert_json(&j, &list[i], 0);
            continue;
        }
        char na[32], left[32];
        ctl_format_time(list[i].not_after, na, sizeof na);
        int64_t secs = list[i].not_after - ctl_now();
        duration_format(secs > 0 ? secs : 0, left, sizeof left);
        printf("%-34s %-52s %-21s %-10s %s\n", ctl_esc(c, list[i].serial_hex),
               ctl_esc(c, list[i].spiffe_id), na, left,
               list[i].revoked ? "revoked" : secs <= 0 ? "expired" : "valid");
    }
    store_cert_free_list(list, n);
    return ctl_print_list(c, &j);
}

static int cert_show(ctl_ctx *c, int argc, char **argv)
{
    if (argc != 2)
        return ctl_usage_error(c, "cert show needs one SERIAL (see 'meshctl cert list')");
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    mesh_err err = {0};
    store_cert ct = {0};
    char serial[128];
    serial_normalise(argv[1], serial, sizeof serial);
    if (store_cert_get(st, serial, &ct, &err) != MESH_OK)
        return ctl_fail(c, &err);
    if (c->json) {
        json_out j;
        json_init(&j);
        cert_json(&j, &ct, 1);
        store_cert_free(&ct);
        return ctl_print_json(&j);
    }
    char nb[32], na[32], left[32];
    ctl_format_time(ct.not_before, nb, sizeof nb);
    ctl_format_time(ct.not_after, na, sizeof na);
    int64_t secs = ct.not_after - ctl_now();
    duration_format(secs > 0 ? secs : 0, left, sizeof left);
    printf("serial         %s\nspiffe id      %s\nnot before     %s\nnot after      %s (%s left)\n"
           "public key     sha256:%s\nsigned by CA   %lld\nstatus         %s%s%s\n%s",
           ctl_esc(c, ct.serial_hex), ctl_esc(c, ct.spiffe_id), nb, na, left,
           ctl_esc(c, ct.pubkey_sha256), (long long)ct.ca_id,
           ct.revoked ? "revoked" : secs <= 0 ? "expired" : "valid", ct.revoked ? ": " : "",
           ct.revoked ? ctl_esc(c, ct.revoke_reason) : "", ctl_esc_lines(c, ct.cert_pem));
    store_cert_free(&ct);
    return 0;
}

/* Whether the workload needs a new join token after this revocation:
 * "yes", "no" or "unless-other-valid-cert". A revoked certificate cannot
 * authenticate a renewal (except a superseded one re-keying), so only a
 * sidecar holding another valid certificate renews by itself. */
static const char *token_need(const ca_revoke_result *r)
{
    if (r->reason == CA_REASON_SUPERSEDED)
        return "no";
    size_t others = r->other_key_valid +
                    (r->reason == CA_REASON_KEY_COMPROMISE ? 0 : r->same_key_valid);
    return others == 0 ? "yes" : "unless-other-valid-cert";
}

static void revoke_text(ctl_ctx *c, const ca_revoke_result *r)
{
    /* The store's names, escaped like every meshctl text output. */
    const char *reason = ca_revoke_reason_name(r->reason);
    printf("revoked %zu certificate(s) of %s (%s):", r->n_serials, ctl_esc(c, r->spiffe_id),
           reason);
    for (size_t i = 0; i < r->n_serials; i++)
        printf(" %s", ctl_esc(c, r->serials[i]));
    printf("\n");
    /* After the loop: ctl_esc reuses its buffers after CTL_ESC_RING calls. */
    const char *id = ctl_esc(c, r->spiffe_id);
    if (r->reason == CA_REASON_KEY_COMPROMISE)
        printf("key sha256:%.16s... is recorded as compromised: meshd never certifies it again "
               "(renewal, same-key rotation, expired-SVID recovery, join token, 'meshctl cert "
               "issue')\n", r->pubkey_sha256);
    printf("next:\n"
           "  - meshd signs a new CRL and pushes it with the trust bundle (SDS 'ROOTCA') to "
           "every connected sidecar within about a second; each one then refuses %s at the "
           "handshake and closes live connections made with %s. Sidecars that are offline, or "
           "all of them while meshd is down, get it when they reconnect and keep enforcing "
           "the CRL they have meanwhile.\n",
           r->n_serials > 1 ? "these certificates" : "this certificate",
           r->n_serials > 1 ? "them" : "it");
    const char *need = token_need(r);
    if (r->reason == CA_REASON_SUPERSEDED) {
        printf("  - the workload re-keys by itself: its sidecar renews over mTLS with a new key "
               "(a superseded certificate may authenticate that one renewal); no new token "
               "is needed.\n");
    } else {
        printf("  - the workload needs a new key%s. ",
               r->reason == CA_REASON_KEY_COMPROMISE ? "" : " or another valid certificate");
        if (strcmp(need, "yes") == 0)
            printf("No valid certificate of %s is left, so its sidecar cannot renew over mTLS "
                   "(a revoked certificate authenticates nothing): it needs a new join token.\n",
                   id);
        else
            printf("%zu valid certificate(s) of %s remain%s: a sidecar holding one keeps "
                   "serving and renews with a new key by itself; a sidecar that held only the "
                   "revoked one needs a new join token.\n",
                   r->other_key_valid +
                       (r->reason == CA_REASON_KEY_COMPROMISE ? 0 : r->same_key_valid),
                   id, r->reason == CA_REASON_KEY_COMPROMISE ? " (with other keys)" : "");
        printf("    meshctl workload token %s   (write it to the sidecar's --token-file; it "
               "enrols with a fresh key without a restart)\n", id);
    }
    if (r->reason != CA_REASON_KEY_COMPROMISE && r->same_key_valid > 0)
        printf("  - note: %zu other valid certificate(s) share this key and stay valid; if the "
               "key itself was exposed, revoke with --reason keyCompromise.\n",
               r->same_key_valid);
}

static int cert_revoke(ctl_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"reason", required_argument, 0, 'r'}, {0, 0, 0, 0}};
    const char *reason = "unspecified";
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'r')
            reason = optarg;
        else
            return ctl_bad_option(c, argc, argv, opts);
    }
    if (optind + 1 != argc)
        return ctl_usage_error(c, "cert revoke needs one SERIAL");
    mesh_err err = {0};
    int code;
    if (ca_revoke_reason_parse(reason, &code, &err) != MESH_OK)
        return ctl_usage_error(c, "--reason: %s", err.msg);
    char serial[128];
    serial_normalise(argv[optind], serial, sizeof serial);
    mesh_store *st = ctl_store(c);
    if (!st)
        return 1;
    ca_revoke_result r;
    if (ca_revoke(st, serial, reason, "meshctl", ctl_now(), &r, &err) != MESH_OK)
        return ctl_fail(c, &err);
    if (c->json) {
        json_out j;
        json_init(&j);
        json_obj_begin(&j);
        json_key_str(&j, "serial", serial);
        json_key_str(&j, "reason", ca_revoke_reason_name(r.reason));
        json_key_str(&j, "spiffe_id", r.spiffe_id);
        json_key(&j, "revoked");
        json_arr_begin(&j);
        for (size_t i = 0; i < r.n_serials; i++)
            json_str(&j, r.serials[i]);
        json_arr_end(&j);
        json_key_str(&j, "pubkey_sha256", r.pubkey_sha256);
        json_key_bool(&j, "key_compromised", r.reason == CA_REASON_KEY_COMPROMISE);
        json_key_bool(&j, "needs_new_key", r.reason == CA_REASON_KEY_COMPROMISE ||
                                                r.reason == CA_REASON_SUPERSEDED);
        json_key_str(&j, "needs_new_token", token_need(&r));
        json_key_int(&j, "other_key_valid", (int64_t)r.other_key_valid);
        json_key_int(&j, "same_key_valid", (int64_t)r.same_key_valid);
        json_obj_end(&j);
        ca_revoke_result_free(&r);
        return ctl_print_json(&j);
    }
    revoke_text(c, &r);
    ca_revoke_result_free(&r);
    return 0;
}

int ctl_cmd_cert(ctl_ctx *c, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error(c, "cert needs a subcommand: issue, list, show, revoke");
    if (strcmp(argv[1], "issue") == 0)
        return cert_issue(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return cert_list(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0 || strcmp(argv[1], "inspect") == 0)
        return cert_show(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return cert_revoke(c, argc - 1, argv + 1);
    return ctl_usage_error(c, "unknown cert subcommand '%s' (issue, list, show, revoke)", argv[1]);
}
