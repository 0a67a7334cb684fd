#!/usr/bin/env node
// tests/conformance/xds_e2e_check.js <dir> — checks the JSON that decode.js produced
// (with the upstream Envoy protos) from meshd's compiled fixture (xds_dump.c): type
// URLs, resource names, filter and transport socket names, SDS names, TLS 1.3, RBAC
// principals, weights, endpoints, secrets. Prints each failure; "N passed, M failed".
'use strict';

const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: xds_e2e_check.js <dir>');
  process.exit(2);
}

const WEB = 'spiffe://mesh.test/ns/default/sa/web';
const REVIEWS = 'spiffe://mesh.test/ns/default/sa/reviews';
const T = 'type.googleapis.com/';
const URL = {
  LDS: T + 'envoy.config.listener.v3.Listener',
  RDS: T + 'envoy.config.route.v3.RouteConfiguration',
  CDS: T + 'envoy.config.cluster.v3.Cluster',
  EDS: T + 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  HCM: T + 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  DTLS: T + 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  UTLS: T + 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  HRBAC: T + 'envoy.extensions.filters.http.rbac.v3.RBAC',
  NRBAC: T + 'envoy.extensions.filters.network.rbac.v3.RBAC',
  ROUTER: T + 'envoy.extensions.filters.http.router.v3.Router',
  TCP: T + 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
};

let passed = 0;
const failed = [];
function eq(got, want, what) {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  if (ok) passed++;
  else failed.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

function load(name) {
  return JSON.parse(fs.readFileSync(path.join(dir, name + '.json'), 'utf8'));
}
function resp(node, type) {
  const r = load(`${node}.${type}`);
  eq(r.type_url, URL[type], `${node} ${type} type_url`);
  eq(/^[0-9a-f]{16}$/.test(r.version_info), true, `${node} ${type} version_info is 16 hex`);
  for (const res of r.resources || []) eq(res['@type'], URL[type], `${node} ${type} resource @type`);
  return r.resources || [];
}
function byName(list, key = 'name') {
  const m = {};
  for (const x of list) m[x[key]] = x;
  return m;
}
function sock(addr) {
  return `${addr.socket_address.address}:${addr.socket_address.port_value}`;
}
function checkTls(common, sans, what) {
  eq(common.tls_params.tls_minimum_protocol_version, 'TLSv1_3', `${what} min TLS`);
  eq(common.tls_certificate_sds_secret_configs.map((s) => s.name), ['default'], `${what} cert SDS`);
  eq(!!common.tls_certificate_sds_secret_configs[0].sds_config.ads, true, `${what} cert SDS over ADS`);
  eq(common.tls_certificate_sds_secret_configs[0].sds_config.resource_api_version, 'V3', `${what} api V3`);
  eq(common.tls_certificates, undefined, `${what} no inline certificates/keys`);
  if (!sans) {
    eq(common.validation_context_sds_secret_config.name, 'ROOTCA', `${what} bundle SDS`);
    return;
  }
  const c = common.combined_validation_context;
  eq(c.validation_context_sds_secret_config.name, 'ROOTCA', `${what} bundle SDS`);
  eq(c.default_validation_context.match_typed_subject_alt_names.map((m) => [m.san_type, m.matcher.exact]),
    sans.map((s) => ['URI', s]), `${what} SAN matchers`);
}
function principals(rules, svc) {
  const pol = (rules.policies || {})[`allow|${svc}`];
  return pol ? pol.principals.map((p) => p.authenticated.principal_name.exact) : [];
}

// ---- web: LDS
const webL = byName(resp('web', 'LDS'));
eq(Object.keys(webL).sort(), ['inbound|15001', 'outbound|http', 'outbound|tcp|db'], 'web listeners');
{
  const l = webL['inbound|15001'];
  eq(sock(l.address), '127.0.0.1:15001', 'web inbound address');
  eq(l.traffic_direction, 'INBOUND', 'web inbound direction');
  const fc = l.filter_chains[0];
  eq(fc.transport_socket.name, 'envoy.transport_sockets.tls', 'inbound transport socket name');
  eq(fc.transport_socket.typed_config['@type'], URL.DTLS, 'inbound tls context type');
  eq(fc.transport_socket.typed_config.require_client_certificate, { value: true }, 'mTLS required');
  checkTls(fc.transport_socket.typed_config.common_tls_context, null, 'inbound');
  eq(fc.filters.map((f) => f.name), ['envoy.filters.network.http_connection_manager'], 'inbound filters');
  const hcm = fc.filters[0].typed_config;
  eq(hcm['@type'], URL.HCM, 'inbound hcm type');
  eq(hcm.http_filters.map((f) => [f.name, f.typed_config['@type']]),
    [['envoy.filters.http.rbac', URL.HRBAC], ['envoy.filters.http.router', URL.ROUTER]], 'inbound http filters');
  eq(principals(hcm.http_filters[0].typed_config.rules, 'web'), [], 'web: nobody authorised');
  eq(hcm.route_config.virtual_hosts[0].routes[0].route.cluster, 'inbound|web|local', 'inbound route');
}
{
  const l = webL['outbound|http'];
  eq(sock(l.address), '127.0.0.1:15080', 'egress address');
  const hcm = l.filter_chains[0].filters[0].typed_config;
  eq(hcm.rds.route_config_name, 'outbound|http', 'egress RDS name');
  eq(!!hcm.rds.config_source.ads, true, 'egress RDS over ADS');
  const tp = webL['outbound|tcp|db'].filter_chains[0].filters[0];
  eq([tp.name, tp.typed_config['@type'], tp.typed_config.cluster],
    ['envoy.filters.network.tcp_proxy', URL.TCP, 'outbound|db'], 'tcp egress');
}

// ---- web: RDS
{
  const rc = resp('web', 'RDS')[0];
  eq(rc.name, 'outbound|http', 'route table name');
  eq(rc.ignore_port_in_host_matching, true, 'ports ignored in host matching');
  eq(rc.virtual_hosts.map((v) => [v.name, v.domains]),
    [['route|reviews-route', ['reviews']], ['service|web', ['web']]], 'virtual hosts');
  const r0 = rc.virtual_hosts[0].routes[0];
  eq(r0.match, { prefix: '/v2', headers: [{ name: 'x-canary', string_match: { exact: '1' } }] }, 'rule 0 match');
  eq(r0.route.weighted_clusters.clusters.map((c) => [c.name, c.weight.value]),
    [['outbound|reviews', 90], ['outbound|web', 10]], 'weights');
  eq(r0.route.timeout, { seconds: '2' }, 'rule timeout');
  eq(r0.route.retry_policy.num_retries, { value: 3 }, 'retries');
  eq(rc.virtual_hosts[0].routes[1].route.timeout, { seconds: '15' }, 'default timeout');
}

// ---- web: CDS + EDS
{
  const cds = byName(resp('web', 'CDS'));
  eq(Object.keys(cds).sort(), ['inbound|web|local', 'outbound|db', 'outbound|reviews', 'outbound|web'], 'web clusters');
  const c = cds['outbound|reviews'];
  eq([c.type, c.lb_policy, c.connect_timeout], ['EDS', 'LEAST_REQUEST', { nanos: 250000000 }], 'reviews cluster');
  eq(c.eds_cluster_config.service_name, 'outbound|reviews', 'EDS service name');
  eq(c.transport_socket.typed_config['@type'], URL.UTLS, 'upstream tls type');
  checkTls(c.transport_socket.typed_config.common_tls_context, [REVIEWS], 'upstream reviews');
  eq(cds['inbound|web|local'].type, 'STATIC', 'local cluster is STATIC (a oneof member: sent explicitly)');
  eq(sock(cds['inbound|web|local'].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address),
    '127.0.0.1:8081', 'local app');
  const eds = byName(resp('web', 'EDS'), 'cluster_name');
  const le = eds['outbound|reviews'].endpoints[0].lb_endpoints;
  eq(le.map((e) => [sock(e.endpoint.address), e.health_status]), [['127.0.0.1:15002', 'HEALTHY']], 'reviews endpoints');
}

// ---- web while meshd serves reviews-1 UNHEALTHY (issue 13: endpoint health)
{
  const eds = byName(resp('web-health', 'EDS'), 'cluster_name');
  const le = eds['outbound|reviews'].endpoints[0].lb_endpoints;
  eq(le.map((e) => [sock(e.endpoint.address), e.health_status]), [['127.0.0.1:15002', 'UNHEALTHY']],
    'reviews endpoint UNHEALTHY (LbEndpoint.health_status, core.v3.HealthStatus)');
  eq(load('web-health.EDS').version_info !== load('web.EDS').version_info, true, 'a new EDS version');
  for (const t of ['CDS', 'LDS', 'RDS'])
    eq(load(`web-health.${t}`).version_info, load(`web.${t}`).version_info, `${t} unchanged by health`);
}

// ---- web with reviews' health_check, circuit_breakers, per_try_timeout (issue 13)
{
  const c = byName(resp('web-knobs', 'CDS'))['outbound|reviews'];
  const hc = (c.health_checks || [])[0] || {};
  eq([hc.timeout, hc.interval, hc.unhealthy_threshold, hc.healthy_threshold, hc.interval_jitter_percent],
    [{ seconds: '1' }, { seconds: '5' }, { value: 3 }, { value: 2 }, 10], 'health_checks[0] timing and thresholds');
  eq(hc.http_health_check && hc.http_health_check.path, '/healthz', 'http_health_check.path');
  const t = ((c.circuit_breakers || {}).thresholds || [])[0] || {};
  eq([t.priority || 'DEFAULT', t.max_connections, t.max_pending_requests, t.max_requests, t.max_retries],
    ['DEFAULT', { value: 10 }, { value: 20 }, { value: 50 }, { value: 2 }], 'circuit_breakers.thresholds[0]');
  eq(!!c.outlier_detection, true, 'outlier_detection (on by default)');
  const plain = byName(resp('web', 'CDS'))['outbound|reviews'];
  eq([plain.health_checks, plain.circuit_breakers], [undefined, undefined], 'none without the knobs');
  const r0 = resp('web-knobs', 'RDS')[0].virtual_hosts[0].routes[0];
  eq(r0.route.retry_policy.per_try_timeout, { nanos: 500000000 }, 'retry_policy.per_try_timeout');
  const preds = (r0.route.retry_policy.retry_host_predicate || []).map((p) => p.name);
  eq(preds, ['envoy.retry_host_predicates.previous_hosts'], 'previous_hosts predicate');
}

// ---- reviews and db: inbound RBAC
{
  const l = resp('reviews', 'LDS')[0];
  const hcm = l.filter_chains[0].filters[0].typed_config;
  eq(principals(hcm.http_filters[0].typed_config.rules, 'reviews'), [WEB], 'reviews allows web');
  eq(resp('reviews', 'RDS'), [], 'reviews: no route table');
  const d = resp('db', 'LDS')[0];
  const f = d.filter_chains[0].filters;
  eq(f.map((x) => [x.name, x.typed_config['@type']]),
    [['envoy.filters.network.rbac', URL.NRBAC], ['envoy.filters.network.tcp_proxy', URL.TCP]], 'db filters');
  eq(principals(f[0].typed_config.rules, 'db'), [WEB], 'db allows web');
  eq(f[1].typed_config.cluster, 'inbound|db|local', 'db local cluster');
}

// ---- HTTP/2: web and reviews as grpc services (h2-web, h2-reviews), and the plain fixture
// untouched by it
{
  const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
  const H2 = { max_concurrent_streams: { value: 100 }, initial_stream_window_size: { value: 65536 },
               initial_connection_window_size: { value: 1048576 } };
  const out = byName(resp('h2-web', 'LDS'))['outbound|http'];
  const ohcm = out.filter_chains[0].filters[0].typed_config;
  eq(ohcm.http2_protocol_options, H2, 'h2 outbound HCM http2_protocol_options (h2c prior knowledge)');
  const pout = byName(resp('web', 'LDS'))['outbound|http'].filter_chains[0].filters[0].typed_config;
  eq(pout.http2_protocol_options, undefined, 'no h2 service: outbound HCM without http2_protocol_options');
  const cds = byName(resp('h2-web', 'CDS'));
  const up = cds['outbound|reviews'];
  eq(Object.keys(up.typed_extension_protocol_options || {}), [HPO], 'outbound cluster extension key');
  const hpo = up.typed_extension_protocol_options[HPO];
  eq(hpo['@type'], T + HPO, 'HttpProtocolOptions @type');
  eq(hpo.explicit_http_config.http2_protocol_options, H2, 'explicit_http_config.http2_protocol_options');
  eq(up.transport_socket.typed_config.common_tls_context.alpn_protocols, ['h2'], 'upstream ALPN h2');
  eq(cds['inbound|web|local'].typed_extension_protocol_options[HPO].explicit_http_config.http2_protocol_options,
    H2, 'local app cluster speaks h2c');
  eq(cds['outbound|db'].typed_extension_protocol_options, undefined, 'tcp cluster: no HttpProtocolOptions');
  const pcds = byName(resp('web', 'CDS'));
  eq(pcds['outbound|reviews'].typed_extension_protocol_options, undefined, 'http cluster: no HttpProtocolOptions');
  eq(pcds['outbound|reviews'].transport_socket.typed_config.common_tls_context.alpn_protocols, undefined,
    'http cluster: no ALPN list');
  const inb = resp('h2-reviews', 'LDS')[0].filter_chains[0];
  eq(inb.transport_socket.typed_config.common_tls_context.alpn_protocols, ['h2', 'http/1.1'], 'inbound ALPN h2, http/1.1');
  const ihcm = inb.filters[0].typed_config;
  eq(ihcm.http2_protocol_options, H2, 'inbound HCM http2_protocol_options');
  eq(ihcm.codec_type, undefined, 'inbound codec AUTO (HTTP/1.1 callers still served)');
}

// ---- secrets
{
  const d = load('secret.default');
  eq(d.name, 'default', 'default name');
  eq(Buffer.from(d.tls_certificate.certificate_chain.inline_bytes, 'base64').toString().startsWith('-----BEGIN CERTIFICATE-----'),
    true, 'default chain PEM');
  eq(d.tls_certificate.private_key, undefined, 'no private key in SDS');
  const r = load('secret.ROOTCA');
  eq(r.name, 'ROOTCA', 'ROOTCA name');
  eq(Buffer.from(r.validation_context.trusted_ca.inline_bytes, 'base64').toString().split('BEGIN CERTIFICATE').length - 1,
    2, 'bundle holds both roots');
  eq(Buffer.from(r.validation_context.crl.inline_bytes, 'base64').toString().split('BEGIN X509 CRL').length - 1,
    2, 'crl holds one CRL per root');
  eq(r.validation_context.only_verify_leaf_cert_crl, true, 'CRLs checked on the leaf only');
}

for (const f of failed) console.log('FAIL ' + f);
console.log(`xds_e2e: ${passed} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
