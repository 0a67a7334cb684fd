#!/usr/bin/env node
// tests/conformance/xds_client_raw.js — hand-made requests against meshd's plaintext xDS
// port, for the negative cases of tests/e2e/test_xds_client.sh that a well-behaved
// proxyless client never produces (the positive path is xds_client.js, a real client).
//
//   node xds_client_raw.js ads --server HOST:PORT --node-id ID [--type lds|rds|cds|eds|sds]
//        [--names a,b] [--expect-status NAME] [--timeout MS]
//     Opens StreamAggregatedResources in plaintext, sends one DiscoveryRequest (carrying
//     Node.id unless --node-id is ""), prints the first response as JSON
//     {"type_url","version_info","names":[...]} or the final status
//     {"status":"PERMISSION_DENIED","details":"..."}.
//   node xds_client_raw.js unary --server HOST:PORT --method PATH [--expect-status NAME]
//     Calls a unary method with an empty request and prints the status.
// Messages are encoded with the official Envoy protos shipped in @grpc/grpc-js-xds.
// Exit: 0 when the outcome is the expected one (a response, or --expect-status),
// 1 otherwise, 2 on usage errors.
'use strict';

const grpc = require('@grpc/grpc-js');
const { loadUpstream } = require('./protoroots');

const TYPES = {
  lds: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  rds: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cds: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  eds: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  sds: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
};
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

function usage(msg) {
  if (msg) console.error(`xds_client_raw: ${msg}`);
  console.error('usage: xds_client_raw.js ads --server HOST:PORT --node-id ID [--type T] ' +
                '[--names a,b] [--expect-status NAME] [--timeout MS]\n' +
                '       xds_client_raw.js unary --server HOST:PORT --method PATH [--expect-status NAME]');
  process.exit(2);
}

function parseArgs(argv) {
  const mode = argv[0];
  if (mode !== 'ads' && mode !== 'unary') usage('first argument: ads or unary');
  const o = { mode, type: 'lds', names: [], timeout: 5000 };
  for (let i = 1; i < argv.length; i += 2) {
    const a = argv[i];
    const v = argv[i + 1];
    if (v === undefined) usage(`${a} needs a value`);
    switch (a) {
      case '--server': o.server = v; break;
      case '--node-id': o.nodeId = v; break;
      case '--type':
        if (!TYPES[v]) usage(`--type ${v}: one of ${Object.keys(TYPES).join(', ')}`);
        o.type = v;
        break;
      case '--names': o.names = v === '' ? [] : v.split(','); break;
      case '--method': o.method = v; break;
      case '--expect-status':
        if (!(v in grpc.status)) usage(`--expect-status ${v}: not a gRPC status name`);
        o.expect = v;
        break;
      case '--timeout': o.timeout = Number(v); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.server) usage('--server is required');
  if (mode === 'ads' && o.nodeId === undefined) usage('--node-id is required ("" for none)');
  if (mode === 'unary' && !o.method) usage('--method is required');
  return o;
}

function finish(o, result) {
  console.log(JSON.stringify(result));
  const ok = o.expect ? result.status === o.expect : result.status === undefined;
  process.exit(ok ? 0 : 1);
}

function runAds(o) {
  const { root } = loadUpstream([
    'envoy/service/discovery/v3/discovery.proto', 'envoy/config/listener/v3/listener.proto',
    'envoy/config/route/v3/route.proto', 'envoy/config/cluster/v3/cluster.proto',
    'envoy/config/endpoint/v3/endpoint.proto',
    'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  ]);
  const Req = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const Resp = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const client = new grpc.Client(o.server, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(ADS, (m) => Buffer.from(Req.encode(m).finish()),
                                            (b) => Resp.decode(b));
  const timer = setTimeout(() => finish(o, { status: 'TIMEOUT' }), o.timeout);
  call.on('data', (resp) => {
    clearTimeout(timer);
    const names = (resp.resources || []).map((any) => {
      const T = root.lookupType(any.type_url.replace(/^type\.googleapis\.com\//, ''));
      const m = T.decode(any.value);
      return m.name || m.cluster_name || '';
    });
    call.cancel();
    finish(o, { type_url: resp.type_url, version_info: resp.version_info, names });
  });
  call.on('error', (err) => {
    clearTimeout(timer);
    finish(o, { status: STATUS_NAMES[err.code] || String(err.code), details: err.details });
  });
  const req = { type_url: TYPES[o.type], resource_names: o.names };
  if (o.nodeId !== '') req.node = { id: o.nodeId, user_agent_name: 'meshd-xds-client-raw' };
  call.write(Req.create(req));
}

function runUnary(o) {
  const client = new grpc.Client(o.server, grpc.credentials.createInsecure());
  client.makeUnaryRequest(o.method, (b) => b, (b) => b, Buffer.alloc(0),
                          { deadline: Date.now() + o.timeout }, (err) => {
    if (err) finish(o, { status: STATUS_NAMES[err.code] || String(err.code), details: err.details });
    else finish(o, { ok: true });
  });
}

const o = parseArgs(process.argv.slice(2));
if (o.mode === 'ads') runAds(o);
else runUnary(o);
