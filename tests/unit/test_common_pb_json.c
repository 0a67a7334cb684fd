/* tests/unit/test_common_pb_json.c — protobuf-c messages as proto3 JSON (for
 * the sidecar's Envoy-shaped /config_dump): field names, defaults left out,
 * oneofs, enums, 64-bit integers, Duration, Any unpacked by type URL,
 * redaction of private keys, and bounded depth. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/pb_json.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"

static const ProtobufCMessageDescriptor *resolve(const char *url)
{
    if (strcmp(url, "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                    "UpstreamTlsContext") == 0)
        return &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor;
    if (strcmp(url, "type.googleapis.com/google.protobuf.Duration") == 0)
        return &google__protobuf__duration__descriptor;
    return NULL;
}

static const char *const redact[] = {"private_key", NULL};
static const pb_json_opts opts = {.resolve = resolve, .redact = redact};

static char *to_json(const ProtobufCMessage *m)
{
    json_out j;
    json_init(&j);
    pb_json_write(&j, m, &opts);
    char *s = strdup(json_text(&j));
    json_free(&j);
    return s;
}

Test(pb_json, cluster_with_any_and_duration)
{
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext tls =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__UPSTREAM_TLS_CONTEXT__INIT;
    tls.sni = "backend";
    size_t n = protobuf_c_message_get_packed_size(&tls.base);
    uint8_t *buf = malloc(n);
    protobuf_c_message_pack(&tls.base, buf);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                   "UpstreamTlsContext";
    any.value.data = buf;
    any.value.len = n;
    Envoy__Config__Core__V3__TransportSocket ts = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT;
    ts.name = "envoy.transport_sockets.tls";
    ts.config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts.typed_config = &any;
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = 1;
    d.nanos = 500000000;
    Envoy__Config__Cluster__V3__Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
    c.name = "outbound|backend";
    c.connect_timeout = &d;
    c.lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
    c.cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
    c.type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
    c.transport_socket = &ts;
    char *s = to_json(&c.base);
    cr_assert_not_null(strstr(s, "\"name\":\"outbound|backend\""), "%s", s);
    cr_assert_not_null(strstr(s, "\"type\":\"EDS\""), "%s", s);
    cr_assert_not_null(strstr(s, "\"connect_timeout\":\"1.500s\""), "%s", s);
    cr_assert_not_null(strstr(s, "\"lb_policy\":\"LEAST_REQUEST\""), "%s", s);
    cr_assert_not_null(strstr(s, "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy."
                                 "extensions.transport_sockets.tls.v3.UpstreamTlsContext\","
                                 "\"sni\":\"backend\"}"), "%s", s);
    cr_assert_null(strstr(s, "per_connection_buffer_limit_bytes"), "defaults are left out: %s", s);
    free(s);
    free(buf);
}

Test(pb_json, unknown_any_keeps_its_bytes)
{
    uint8_t bytes[] = {0x0a, 0x01, 'x'};
    json_out j;
    json_init(&j);
    pb_json_write_any(&j, "type.googleapis.com/some.Unknown", bytes, sizeof bytes, &opts);
    cr_assert_str_eq(json_text(&j), "{\"@type\":\"type.googleapis.com/some.Unknown\","
                                    "\"value\":\"CgF4\"}");
    json_free(&j);
    /* a known type whose bytes do not decode: opaque too */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    json_init(&j);
    pb_json_write_any(&j, "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                          "UpstreamTlsContext", junk, sizeof junk, &opts);
    cr_assert_not_null(strstr(json_text(&j), "\"value\":\"////\""), "%s", json_text(&j));
    json_free(&j);
    /* a well-known type inside Any goes under "value" */
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = 30;
    uint8_t db[16];
    size_t dn = protobuf_c_message_pack(&d.base, db);
    json_init(&j);
    pb_json_write_any(&j, "type.googleapis.com/google.protobuf.Duration", db, dn, &opts);
    cr_assert_str_eq(json_text(&j), "{\"@type\":\"type.googleapis.com/google.protobuf.Duration\","
                                    "\"value\":\"30s\"}");
    json_free(&j);
}

/* Envoy redacts private keys in its config dump; so do we. */
Test(pb_json, private_key_is_redacted)
{
    Envoy__Config__Core__V3__DataSource key = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    key.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    key.inline_string = "-----BEGIN PRIVATE KEY-----secret";
    Envoy__Config__Core__V3__DataSource chain = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__INIT;
    chain.specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
    chain.inline_string = "-----BEGIN CERTIFICATE-----";
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate tc =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__TLS_CERTIFICATE__INIT;
    tc.private_key = &key;
    tc.certificate_chain = &chain;
    Envoy__Extensions__TransportSockets__Tls__V3__Secret sec =
        ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__INIT;
    sec.name = "default";
    sec.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
    sec.tls_certificate = &tc;
    char *s = to_json(&sec.base);
    cr_assert_null(strstr(s, "secret"), "the key never shows: %s", s);
    cr_assert_not_null(strstr(s, "\"private_key\":\"[redacted]\""), "%s", s);
    cr_assert_not_null(strstr(s, "\"certificate_chain\":{\"inline_string\":\"-----BEGIN "
                                 "CERTIFICATE-----\"}"), "%s", s);
    free(s);
}

Test(pb_json, negative_and_whole_durations)
{
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = -2;
    d.nanos = -250000000;
    char *s = to_json(&d.base);
    cr_assert_str_eq(s, "\"-2.250s\"");
    free(s);
    d.seconds = 0;
    d.nanos = 1;
    s = to_json(&d.base);
    cr_assert_str_eq(s, "\"0.000000001s\"");
    free(s);
}
