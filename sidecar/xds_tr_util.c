/* sidecar/xds_tr_util.c — shared pieces of xDS -> dp_config translation:
 * addresses, durations, Any type checks, RBAC principals, TLS contexts. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sidecar/xds_translate_internal.h"

void xdsc_tr_what(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    (void)n;
}

const char *xdsc_tr_quote(const char *s, char *buf, size_t len)
{
    if (!s)
        s = "";
    size_t o = 0;
    for (size_t i = 0; s[i] && o + 4 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        if (i >= 120) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
    }
    buf[o < len ? o : len - 1] = '\0';
    return buf;
}

int xdsc_tr_address(const Envoy__Config__Core__V3__Address *a, const char *what, char *buf,
                    size_t len, mesh_err *err)
{
    if (!a || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS ||
        !a->socket_address)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing socket_address", what);
    const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
    char q[160];
    if (sa->protocol != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP)
        return mesh_err_set(err, MESH_EINVAL, "%s: only TCP addresses are supported", what);
    if (sa->resolver_name && sa->resolver_name[0])
        return mesh_err_set(err, MESH_EINVAL, "%s: custom resolver '%s' is not supported", what,
                            xdsc_tr_quote(sa->resolver_name, q, sizeof q));
    if (sa->port_specifier_case == ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_NAMED_PORT)
        return mesh_err_set(err, MESH_EINVAL, "%s: named ports are not supported", what);
    if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing port_value", what);
    if (!sa->address || !sa->address[0])
        return mesh_err_set(err, MESH_EINVAL, "%s: empty address", what);
    if (strlen(sa->address) > 253)
        return mesh_err_set(err, MESH_EINVAL, "%s: address '%s' is too long", what,
                            xdsc_tr_quote(sa->address, q, sizeof q));
    /* dp_config wants numeric addresses. meshd passes host names through
     * (docs/xds.md), so resolve them here, on the control-plane thread and
     * once per config — never on the request path. IPv4 is preferred because
     * "localhost" apps usually listen on 127.0.0.1 only. */
    char ip[INET6_ADDRSTRLEN];
    const char *host = sa->address;
    unsigned char tmp[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int g = getaddrinfo(host, NULL, &hints, &res);
        if (g != 0 || !res)
            return mesh_err_set(err, MESH_EINVAL, "%s: cannot resolve '%s': %s", what,
                                xdsc_tr_quote(host, q, sizeof q),
                                g ? gai_strerror(g) : "no address");
        const struct addrinfo *pick = res;
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (ai->ai_family == AF_INET) {
                pick = ai;
                break;
            }
        const void *raw = pick->ai_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)pick->ai_addr)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
        const char *ok = inet_ntop(pick->ai_family, raw, ip, sizeof ip);
        freeaddrinfo(res);
        if (!ok)
            return mesh_err_set(err, MESH_EINVAL, "%s: cannot resolve '%s'", what,
                                xdsc_tr_quote(host, q, sizeof q));
        host = ip;
    }
    /* dp_config_freeze checks the port range; we only put the address in the
     * "ip:port" / "[v6]:port" shape it expects. */
    int n;
    if (strchr(host, ':'))
        n = snprintf(buf, len, "[%s]:%u", host, sa->port_value);
    else
        n = snprintf(buf, len, "%s:%u", host, sa->port_value);
    if (n < 0 || (size_t)n >= len)
        return mesh_err_set(err, MESH_EINVAL, "%s: address too long", what);
    return MESH_OK;
}

int xdsc_tr_duration_ms(const Google__Protobuf__Duration *d, const char *what, int64_t *ms,
                        mesh_err *err)
{
    /* protobuf Duration allows +-10000 years; nothing sensible here exceeds a day. */
    if (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999 || d->seconds > 86400 * 365)
        return mesh_err_set(err, MESH_EINVAL, "%s: duration %llds %dns is out of range", what,
                            (long long)d->seconds, (int)d->nanos);
    *ms = d->seconds * 1000 + d->nanos / 1000000;
    /* A sub-millisecond timeout must not become "no timeout". */
    if (*ms == 0 && d->nanos > 0)
        *ms = 1;
    return MESH_OK;
}

int xdsc_tr_any_is(const Google__Protobuf__Any *any, const char *want, const char *what,
                   mesh_err *err)
{
    char q[160];
    if (!any)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing typed_config", what);
    if (!any->type_url || strcmp(any->type_url, want) != 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: expected type '%s', got '%s'", what, want,
                            xdsc_tr_quote(any->type_url, q, sizeof q));
    if (any->value.len > XDSC_MAX_RESOURCE_BYTES)
        return mesh_err_set(err, MESH_EINVAL, "%s: typed_config is too large", what);
    return MESH_OK;
}

/* ---- RBAC ------------------------------------------------------------------------ */

static int rbac_principal(const Envoy__Config__Rbac__V3__Principal *p, const char *what,
                          int depth, xdsc_names *ids, mesh_err *err)
{
    char q[160];
    if (depth > 8)
        return mesh_err_set(err, MESH_EINVAL, "%s: principals nested too deeply", what);
    switch (p->identifier_case) {
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_AUTHENTICATED: {
        const Envoy__Type__Matcher__V3__StringMatcher *m =
            p->authenticated ? p->authenticated->principal_name : NULL;
        if (!m || m->match_pattern_case != ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT)
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: only exact principal_name matchers (SPIFFE IDs) are "
                                "supported", what);
        if (m->ignore_case)
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: ignore_case principal matchers are not supported "
                                "(SPIFFE IDs are case-sensitive)", what);
        if (strncmp(m->exact, "spiffe://", 9) != 0)
            return mesh_err_set(err, MESH_EINVAL, "%s: principal '%s' is not a SPIFFE ID", what,
                                xdsc_tr_quote(m->exact, q, sizeof q));
        return xdsc_names_add(ids, m->exact) == MESH_OK
                   ? MESH_OK
                   : mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_OR_IDS:
        for (size_t i = 0; p->or_ids && i < p->or_ids->n_ids; i++) {
            int rc = rbac_principal(p->or_ids->ids[i], what, depth + 1, ids, err);
            if (rc != MESH_OK)
                return rc;
        }
        return MESH_OK;
    case ENVOY__CONFIG__RBAC__V3__PRINCIPAL__IDENTIFIER_ANY:
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: principal 'any' is not supported; list the allowed SPIFFE IDs",
                            what);
    default:
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: unsupported principal kind (only authenticated SPIFFE IDs and "
                            "or_ids)", what);
    }
}

static bool permission_is_any(const Envoy__Config__Rbac__V3__Permission *p)
{
    if (p->rule_case == ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_ANY)
        return p->any;
    if (p->rule_case == ENVOY__CONFIG__RBAC__V3__PERMISSION__RULE_OR_RULES && p->or_rules) {
        for (size_t i = 0; i < p->or_rules->n_rules; i++)
            if (permission_is_any(p->or_rules->rules[i]))
                return true;
    }
    return false;
}

int xdsc_tr_rbac(const Envoy__Config__Rbac__V3__RBAC *rules, const char *what, xdsc_names *ids,
                 mesh_err *err)
{
    char w[320];
    if (!rules)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: RBAC filter without rules would allow every caller; not "
                            "supported", what);
    if (rules->action != ENVOY__CONFIG__RBAC__V3__RBAC__ACTION__ALLOW)
        return mesh_err_set(err, MESH_EINVAL, "%s: only action ALLOW is supported", what);
    for (size_t i = 0; i < rules->n_policies; i++) {
        const Envoy__Config__Rbac__V3__RBAC__PoliciesEntry *e = rules->policies[i];
        xdsc_tr_what(w, sizeof w, "%s: policy '%s'", what, e->key ? e->key : "");
        const Envoy__Config__Rbac__V3__Policy *pol = e->value;
        if (!pol)
            continue;   /* an empty policy matches nothing */
        if (pol->n_permissions == 0)
            continue;   /* Envoy: a policy needs a permission to match */
        for (size_t j = 0; j < pol->n_permissions; j++) {
            if (!permission_is_any(pol->permissions[j]))
                return mesh_err_set(err, MESH_EINVAL,
                                    "%s: only 'any' permissions are supported (per-path or "
                                    "per-port rules are not)", w);
        }
        for (size_t j = 0; j < pol->n_principals; j++) {
            int rc = rbac_principal(pol->principals[j], w, 0, ids, err);
            if (rc != MESH_OK)
                return rc;
        }
    }
    return MESH_OK;
}

/* ---- TLS contexts -------------------------------------------------------------------- */

static int check_sds_ref(const Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *s,
                         const char *want, const char *what, mesh_err *err)
{
    char q[160];
    if (!s || !s->name || strcmp(s->name, want) != 0)
        return mesh_err_set(err, MESH_EINVAL, "%s: SDS secret '%s' is not served to sidecars "
                            "(expected '%s')", what,
                            xdsc_tr_quote(s ? s->name : "", q, sizeof q), want);
    if (s->sds_config &&
        s->sds_config->config_source_specifier_case ==
            ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_PATH)
        return mesh_err_set(err, MESH_EINVAL, "%s: file-based SDS is not supported", what);
    return MESH_OK;
}

static int san_matchers(const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *v,
                        const char *what, xdsc_names *san_ids, mesh_err *err)
{
    char q[160];
    if (!v)
        return MESH_OK;
    if ((v->trusted_ca && v->trusted_ca->specifier_case !=
                              ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER__NOT_SET) ||
        v->n_verify_certificate_hash || v->n_verify_certificate_spki || v->crl ||
        v->allow_expired_certificate ||
        v->trust_chain_verification !=
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__CERTIFICATE_VALIDATION_CONTEXT__TRUST_CHAIN_VERIFICATION__VERIFY_TRUST_CHAIN)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: only SAN matchers may be set next to the ROOTCA bundle (inline "
                            "CAs, pins, CRLs, expired or untrusted peers are not supported)", what);
    for (size_t i = 0; i < v->n_match_typed_subject_alt_names; i++) {
        const Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
            v->match_typed_subject_alt_names[i];
        if (m->san_type != ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__URI)
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: match_typed_subject_alt_names[%zu]: only URI SANs (SPIFFE "
                                "IDs) are supported", what, i);
        if (!m->matcher ||
            m->matcher->match_pattern_case != ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT ||
            m->matcher->ignore_case)
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: match_typed_subject_alt_names[%zu]: only exact, "
                                "case-sensitive matchers are supported", what, i);
        if (strncmp(m->matcher->exact, "spiffe://", 9) != 0)
            return mesh_err_set(err, MESH_EINVAL,
                                "%s: match_typed_subject_alt_names[%zu]: '%s' is not a SPIFFE ID",
                                what, i, xdsc_tr_quote(m->matcher->exact, q, sizeof q));
        if (san_ids && xdsc_names_add(san_ids, m->matcher->exact) != MESH_OK)
            return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    }
    return MESH_OK;
}

int xdsc_tr_tls_context(const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *c,
                        const char *what, xdsc_names *san_ids, mesh_err *err)
{
    if (!c)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing common_tls_context", what);
    if (c->tls_params && c->tls_params->tls_maximum_protocol_version !=
                             ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLS_AUTO &&
        c->tls_params->tls_maximum_protocol_version <
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_PARAMETERS__TLS_PROTOCOL__TLSv1_3)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: tls_maximum_protocol_version below TLS 1.3; the sidecar speaks "
                            "TLS 1.3 only", what);
    if (c->n_tls_certificates)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: inline tls_certificates are not supported (the sidecar's key "
                            "never leaves it; use SDS '%s')", what, XDSC_SECRET_DEFAULT);
    if (c->n_tls_certificate_sds_secret_configs != 1)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: expected exactly one tls_certificate_sds_secret_configs ('%s'), "
                            "got %zu", what, XDSC_SECRET_DEFAULT,
                            c->n_tls_certificate_sds_secret_configs);
    int rc = check_sds_ref(c->tls_certificate_sds_secret_configs[0], XDSC_SECRET_DEFAULT, what, err);
    if (rc != MESH_OK)
        return rc;
    switch (c->validation_context_type_case) {
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG:
        return check_sds_ref(c->validation_context_sds_secret_config, XDSC_SECRET_ROOTCA, what, err);
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT: {
        const Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext
            *cv = c->combined_validation_context;
        if (!cv)
            return mesh_err_set(err, MESH_EINVAL, "%s: empty combined_validation_context", what);
        rc = check_sds_ref(cv->validation_context_sds_secret_config, XDSC_SECRET_ROOTCA, what, err);
        if (rc != MESH_OK)
            return rc;
        return san_matchers(cv->default_validation_context, what, san_ids, err);
    }
    case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT:
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: inline validation_context is not supported (peers are verified "
                            "against SDS '%s')", what, XDSC_SECRET_ROOTCA);
    default:
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: no peer validation configured (expected SDS '%s'); refusing to "
                            "accept unverified peers", what, XDSC_SECRET_ROOTCA);
    }
}
