/* sidecar/xds_tr_listener.c — LDS Listener -> dp_listener.
 *
 * The data plane has four listener kinds; which one a Listener is follows
 * from its single filter chain: a DownstreamTlsContext transport socket makes
 * it inbound (mTLS), and the terminal network filter (http_connection_manager
 * or tcp_proxy) makes it HTTP or TCP. Authorisation comes from the RBAC filter
 * (http or network); an inbound listener without one denies every caller
 * (fail closed, matching meshd's "no authorization entry = deny all"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/http/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/rbac/v3/rbac.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "sidecar/xds_translate.h"
#include "sidecar/xds_translate_internal.h"

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

/* What the filters of one chain amount to. */
typedef struct chain_facts {
    bool tls;
    bool alpn_h2;               /* the DownstreamTlsContext offers "h2" */
    bool have_rbac;
    xdsc_names allowed;
    Hcm *hcm;                   /* owned; terminal filter when set */
    Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tcp;  /* owned */
} chain_facts;

static void facts_free(chain_facts *f)
{
    xdsc_names_free(&f->allowed);
    if (f->hcm)
        envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(
            f->hcm, NULL);
    if (f->tcp)
        envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__free_unpacked(f->tcp, NULL);
}

static int downstream_tls(const Envoy__Config__Core__V3__TransportSocket *ts, const char *what,
                          bool *alpn_h2, mesh_err *err)
{
    char w[400];
    xdsc_tr_what(w, sizeof w, "%s: transport_socket", what);
    if (ts->config_type_case != ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG)
        return mesh_err_set(err, MESH_EINVAL, "%s: missing typed_config", w);
    int rc = xdsc_tr_any_is(ts->typed_config, XDS_TYPE_URL_DOWNSTREAM_TLS, w, err);
    if (rc != MESH_OK)
        return rc;
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
        envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__unpack(
            NULL, ts->typed_config->value.len, ts->typed_config->value.data);
    if (!d)
        return mesh_err_set(err, MESH_EINVAL, "%s: DownstreamTlsContext does not decode", w);
    if (!d->require_client_certificate || !d->require_client_certificate->value)
        rc = mesh_err_set(err, MESH_EINVAL,
                          "%s: require_client_certificate must be true (inbound listeners are "
                          "mTLS only)", w);
    else
        rc = xdsc_tr_tls_context(d->common_tls_context, w, NULL, err);
    for (size_t i = 0; rc == MESH_OK && i < d->common_tls_context->n_alpn_protocols; i++)
        if (strcmp(d->common_tls_context->alpn_protocols[i], "h2") == 0)
            *alpn_h2 = true;
    envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__free_unpacked(d, NULL);
    return rc;
}

static int network_rbac(const Google__Protobuf__Any *tc, const char *what, chain_facts *f,
                        mesh_err *err)
{
    Envoy__Extensions__Filters__Network__Rbac__V3__RBAC *r =
        envoy__extensions__filters__network__rbac__v3__rbac__unpack(NULL, tc->value.len,
                                                                    tc->value.data);
    if (!r)
        return mesh_err_set(err, MESH_EINVAL, "%s: network RBAC does not decode", what);
    int rc = MESH_OK;
    if (f->have_rbac)
        rc = mesh_err_set(err, MESH_EINVAL, "%s: more than one RBAC filter is not supported", what);
    else if (r->enforcement_type !=
             ENVOY__EXTENSIONS__FILTERS__NETWORK__RBAC__V3__RBAC__ENFORCEMENT_TYPE__ONE_TIME_ON_FIRST_BYTE)
        rc = mesh_err_set(err, MESH_EINVAL, "%s: only ONE_TIME_ON_FIRST_BYTE enforcement is "
                          "supported", what);
    else
        rc = xdsc_tr_rbac(r->rules, what, &f->allowed, err);
    /* Shadow rules only log in Envoy; ignoring them changes no decision. */
    f->have_rbac = true;
    envoy__extensions__filters__network__rbac__v3__rbac__free_unpacked(r, NULL);
    return rc;
}

static int chain_filters(const Envoy__Config__Listener__V3__FilterChain *fc, const char *what,
                         chain_facts *f, mesh_err *err)
{
    char w[448], q[160];
    for (size_t i = 0; i < fc->n_filters; i++) {
        const Envoy__Config__Listener__V3__Filter *flt = fc->filters[i];
        xdsc_tr_what(w, sizeof w, "%s: filters[%zu] '%s'", what, i,
                 xdsc_tr_quote(flt->name, q, sizeof q));
        if (f->hcm || f->tcp)
            return mesh_err_set(err, MESH_EINVAL, "%s: follows the terminal filter", w);
        if (flt->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
            !flt->typed_config)
            return mesh_err_set(err, MESH_EINVAL, "%s: missing typed_config", w);
        const Google__Protobuf__Any *tc = flt->typed_config;
        const char *url = tc->type_url ? tc->type_url : "";
        if (tc->value.len > XDSC_MAX_RESOURCE_BYTES)
            return mesh_err_set(err, MESH_EINVAL, "%s: typed_config is too large", w);
        if (strcmp(url, XDS_TYPE_URL_HCM) == 0) {
            f->hcm = envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
                NULL, tc->value.len, tc->value.data);
            if (!f->hcm)
                return mesh_err_set(err, MESH_EINVAL, "%s: HttpConnectionManager does not decode",
                                    w);
        } else if (strcmp(url, XDS_TYPE_URL_TCP_PROXY) == 0) {
            f->tcp = envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__unpack(
                NULL, tc->value.len, tc->value.data);
            if (!f->tcp)
                return mesh_err_set(err, MESH_EINVAL, "%s: TcpProxy does not decode", w);
        } else if (strcmp(url, XDS_TYPE_URL_NET_RBAC) == 0) {
            int rc = network_rbac(tc, w, f, err);
            if (rc != MESH_OK)
                return rc;
        } else {
            return mesh_err_set(err, MESH_EINVAL, "%s: unsupported network filter type '%s'", w,
                                xdsc_tr_quote(url, q, sizeof q));
        }
    }
    if (!f->hcm && !f->tcp)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: no terminal filter (http_connection_manager or tcp_proxy)", what);
    return MESH_OK;
}

/* HTTP filters: optional RBAC first, router last. */
static int http_filters(const Hcm *h, const char *what, bool inbound, chain_facts *f,
                        mesh_err *err)
{
    char w[448], q[160];
    bool router = false;
    for (size_t i = 0; i < h->n_http_filters; i++) {
        const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter *hf =
            h->http_filters[i];
        xdsc_tr_what(w, sizeof w, "%s: http_filters[%zu] '%s'", what, i,
                 xdsc_tr_quote(hf->name, q, sizeof q));
        if (router)
            return mesh_err_set(err, MESH_EINVAL, "%s: follows the router filter", w);
        if (hf->disabled)
            continue;
        const Google__Protobuf__Any *tc =
            hf->config_type_case ==
                    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG
                ? hf->typed_config
                : NULL;
        const char *url = tc && tc->type_url ? tc->type_url : "";
        if (strcmp(url, XDS_TYPE_URL_ROUTER) == 0) {
            router = true;
        } else if (strcmp(url, XDS_TYPE_URL_HTTP_RBAC) == 0) {
            if (!inbound)
                return mesh_err_set(err, MESH_EINVAL,
                                    "%s: RBAC on an outbound listener is not supported", w);
            if (f->have_rbac)
                return mesh_err_set(err, MESH_EINVAL,
                                    "%s: more than one RBAC filter is not supported", w);
            Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *r =
                envoy__extensions__filters__http__rbac__v3__rbac__unpack(NULL, tc->value.len,
                                                                         tc->value.data);
            if (!r)
                return mesh_err_set(err, MESH_EINVAL, "%s: http RBAC does not decode", w);
            int rc = xdsc_tr_rbac(r->rules, w, &f->allowed, err);
            envoy__extensions__filters__http__rbac__v3__rbac__free_unpacked(r, NULL);
            if (rc != MESH_OK)
                return rc;
            f->have_rbac = true;
        } else if (hf->is_optional) {
            /* Envoy skips optional filters it does not know; so do we. */
            continue;
        } else {
            return mesh_err_set(err, MESH_EINVAL, "%s: unsupported http filter type '%s'", w,
                                url[0] ? xdsc_tr_quote(url, q, sizeof q) : "(none)");
        }
    }
    if (!router)
        return mesh_err_set(err, MESH_EINVAL, "%s: http_filters must end with the router", what);
    return MESH_OK;
}

/* Inbound HTTP routes everything to the local app: the inline route config
 * must name exactly one cluster. Its first route's timeout applies. */
static int inbound_route(const Hcm *h, const char *what, dp_listener *l, mesh_err *err)
{
    if (h->route_specifier_case !=
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG ||
        !h->route_config)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: inbound HTTP listeners need an inline route_config to the local "
                            "app (rds is not supported here)", what);
    char w[448];
    xdsc_tr_what(w, sizeof w, "%s: route_config", what);
    dp_route_table rt;
    int rc = xdsc_tr_route_table_build(h->route_config, w, &rt, err);
    bool first = true;
    for (size_t v = 0; rc == MESH_OK && v < rt.n_vhosts; v++) {
        for (size_t r = 0; rc == MESH_OK && r < rt.vhosts[v].n_routes; r++) {
            const dp_route *dr = &rt.vhosts[v].routes[r];
            for (size_t c = 0; c < dr->n_clusters; c++) {
                if (first) {
                    l->local_cluster = dr->clusters[c].cluster;
                    l->timeout_ms = dr->timeout_ms;
                    first = false;
                } else if (strcmp(l->local_cluster, dr->clusters[c].cluster) != 0) {
                    rc = mesh_err_set(err, MESH_EINVAL,
                                      "%s: inbound routes must all target one local cluster "
                                      "(found '%s' and '%s')", w, l->local_cluster,
                                      dr->clusters[c].cluster);
                    break;
                }
            }
        }
    }
    if (rc == MESH_OK && first)
        rc = mesh_err_set(err, MESH_EINVAL, "%s: no route to the local app", w);
    xdsc_tr_route_table_release(&rt);
    /* local_cluster borrows from h->route_config, which outlives l. */
    return rc;
}

static int listener_from(const Envoy__Config__Listener__V3__Listener *ls, const char *what,
                         chain_facts *f, dp_listener *l, char *addr, size_t addr_len,
                         mesh_err *err)
{
    char w[400];
    memset(l, 0, sizeof *l);
    l->name = ls->name;
    if (ls->api_listener)
        return mesh_err_set(err, MESH_EINVAL, "%s: api_listener is not supported", what);
    if (ls->bind_to_port && !ls->bind_to_port->value)
        return mesh_err_set(err, MESH_EINVAL, "%s: bind_to_port false is not supported", what);
    xdsc_tr_what(w, sizeof w, "%s: address", what);
    int rc = xdsc_tr_address(ls->address, w, addr, addr_len, err);
    if (rc != MESH_OK)
        return rc;
    l->address = addr;
    if (ls->n_filter_chains != 1)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: expected exactly one filter chain, got %zu (filter chain "
                            "matching is not supported)", what, ls->n_filter_chains);
    const Envoy__Config__Listener__V3__FilterChain *fc = ls->filter_chains[0];
    xdsc_tr_what(w, sizeof w, "%s: filter_chains[0]", what);
    if (fc->transport_socket) {
        rc = downstream_tls(fc->transport_socket, w, &f->alpn_h2, err);
        if (rc != MESH_OK)
            return rc;
        f->tls = true;
    }
    rc = chain_filters(fc, w, f, err);
    if (rc != MESH_OK)
        return rc;
    if (f->have_rbac && !f->tls)
        return mesh_err_set(err, MESH_EINVAL,
                            "%s: RBAC needs a peer identity; it is only supported on mTLS "
                            "(inbound) listeners", w);
    if (f->hcm) {
        char hw[448];
        xdsc_tr_what(hw, sizeof hw, "%s: http_connection_manager", w);
        rc = http_filters(f->hcm, hw, f->tls, f, err);
        if (rc == MESH_OK)
            rc = xdsc_tr_listener_h2(f->hcm, f->tls, f->alpn_h2, hw, &l->h2, err);
        if (rc != MESH_OK)
            return rc;
        if (f->tls) {
            l->kind = DP_LISTENER_INBOUND_HTTP;
            rc = inbound_route(f->hcm, hw, l, err);
        } else {
            l->kind = DP_LISTENER_OUTBOUND_HTTP;
            if (f->hcm->route_specifier_case !=
                    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS ||
                !f->hcm->rds || !f->hcm->rds->route_config_name[0])
                return mesh_err_set(err, MESH_EINVAL,
                                    "%s: outbound HTTP listeners need rds.route_config_name",
                                    hw);
            const Envoy__Config__Core__V3__ConfigSource *cs = f->hcm->rds->config_source;
            if (cs && cs->config_source_specifier_case ==
                          ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_PATH)
                return mesh_err_set(err, MESH_EINVAL, "%s: file-based RDS is not supported", hw);
            l->route_table = f->hcm->rds->route_config_name;
        }
        if (rc != MESH_OK)
            return rc;
    } else {
        char tw[448];
        xdsc_tr_what(tw, sizeof tw, "%s: tcp_proxy", w);
        if (f->tcp->cluster_specifier_case !=
                ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER ||
            !f->tcp->cluster[0])
            return mesh_err_set(err, MESH_EINVAL, "%s: needs a cluster", tw);
        if (f->tls) {
            l->kind = DP_LISTENER_INBOUND_TCP;
            l->local_cluster = f->tcp->cluster;
        } else {
            l->kind = DP_LISTENER_OUTBOUND_TCP;
            l->cluster = f->tcp->cluster;
        }
    }
    /* Unset RBAC on inbound = empty allow list = deny every caller. */
    l->allowed_ids = f->allowed.v;
    l->n_allowed = f->allowed.n;
    return MESH_OK;
}

int xdsc_translate_listener(dp_config *cfg, const uint8_t *data, size_t len, mesh_err *err)
{
    Envoy__Config__Listener__V3__Listener *ls =
        envoy__config__listener__v3__listener__unpack(NULL, len, data);
    if (!ls)
        return mesh_err_set(err, MESH_EINVAL, "Listener does not decode");
    char what[320], q[160], addr[96];
    xdsc_tr_what(what, sizeof what, "listener '%s'", xdsc_tr_quote(ls->name, q, sizeof q));
    chain_facts f = {0};
    dp_listener l;
    int rc;
    if (!ls->name[0])
        rc = mesh_err_set(err, MESH_EINVAL, "Listener without a name");
    else
        rc = listener_from(ls, what, &f, &l, addr, sizeof addr, err);
    if (rc == MESH_OK)
        rc = dp_config_add_listener(cfg, &l, err);
    facts_free(&f);
    envoy__config__listener__v3__listener__free_unpacked(ls, NULL);
    return rc;
}
