#!/usr/bin/env node
// tests/conformance/xds_client.js — a REAL proxyless gRPC client (@grpc/grpc-js +
// @grpc/grpc-js-xds, unmodified) for tests/e2e/test_xds_client.sh.
//
//   GRPC_XDS_BOOTSTRAP=bootstrap.json node xds_client.js \
//       --call plain=xds:///backend --call canary=xds:///backend,x-canary=1 \
//       --call slow=xds:///backend,@sleep_ms=3000 --call flaky=xds:///backend,@fail_first=2 \
//       [--creds insecure|xds] [--interval 100] [--deadline 1000] [--duration 60]
//
// Every --interval ms it calls meshtest.Echo/Who once per --call (LABEL=TARGET, then
// optional ",header=value" metadata and ",@field=value" request fields: sleep_ms,
// fail_first) and prints one JSON line per call (xds_client.py prints the same):
//   {"seq":3,"call":"plain","ok":true,"name":"a","canary":"","attempts":1,"peer":""}
//   {"seq":3,"call":"denied","ok":false,"code":14,"status":"UNAVAILABLE","details":"..."}
// The xds: resolver does all the work: it reads the bootstrap, opens one ADS stream to
// the server it names, subscribes LDS <host> -> RDS -> CDS -> EDS and picks a backend
// by the routes and weights it received; this program only makes calls. --creds xds uses
// xDS credentials (gRFC A29): mTLS with the bootstrap's certificate providers wherever the
// cluster carries an UpstreamTlsContext, plaintext elsewhere. Runs until
// --duration seconds have passed (0 = until SIGTERM/SIGINT).
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const xds = require('@grpc/grpc-js-xds');

const REQUEST_FIELDS = ['sleep_ms', 'fail_first'];
const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

function usage(msg) {
  if (msg) console.error(`xds_client: ${msg}`);
  console.error('usage: xds_client.js --call LABEL=xds:///HOST[,header=value...][,@field=value...] ... ' +
                '[--creds insecure|xds] [--interval MS] [--deadline MS] [--duration S]   ' +
                '(GRPC_XDS_BOOTSTRAP must be set)');
  process.exit(2);
}

function parseCall(spec) {
  const eq = spec.indexOf('=');
  if (eq <= 0) usage(`--call ${spec}: want LABEL=TARGET[,header=value...]`);
  const label = spec.slice(0, eq);
  const [target, ...hdrs] = spec.slice(eq + 1).split(',');
  if (!target.startsWith('xds:///')) usage(`--call ${spec}: the target must be xds:///HOST`);
  const headers = [];
  const fields = {};
  for (const h of hdrs) {
    const i = h.indexOf('=');
    if (i <= 0) usage(`--call ${spec}: "${h}" is not name=value`);
    const name = h.slice(0, i);
    const value = h.slice(i + 1);
    if (name.startsWith('@')) {
      if (!REQUEST_FIELDS.includes(name.slice(1)))
        usage(`--call ${spec}: request field ${name} is not one of ${REQUEST_FIELDS.join(', ')}`);
      if (!/^\d+$/.test(value)) usage(`--call ${spec}: ${name} wants a whole number`);
      fields[name.slice(1)] = Number(value);
    } else {
      headers.push([name.toLowerCase(), value]);
    }
  }
  return { label, target, headers, fields };
}

function parseArgs(argv) {
  const o = { calls: [], interval: 100, deadline: 1000, duration: 0, creds: 'insecure' };
  const num = (a, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) usage(`${a} wants a whole number, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (v === undefined) usage(`${a} needs a value`);
    i++;
    if (a === '--call') o.calls.push(parseCall(v));
    else if (a === '--interval') o.interval = num(a, v);
    else if (a === '--deadline') o.deadline = num(a, v);
    else if (a === '--duration') o.duration = num(a, v);
    else if (a === '--creds') {
      if (v !== 'insecure' && v !== 'xds') usage('--creds is insecure or xds');
      o.creds = v;
    }
    else usage(`unknown argument ${a}`);
  }
  if (o.calls.length === 0) usage('give at least one --call');
  if (!process.env.GRPC_XDS_BOOTSTRAP && !process.env.GRPC_XDS_BOOTSTRAP_CONFIG)
    usage('set GRPC_XDS_BOOTSTRAP to the bootstrap file');
  return o;
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  xds.register();
  const def = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), {
    keepCase: true, longs: String, enums: String, defaults: true,
  });
  const { Echo } = grpc.loadPackageDefinition(def).meshtest;
  // One channel per target; the process shares one xDS client (one ADS stream).
  const insecure = grpc.credentials.createInsecure();
  const creds = o.creds === 'xds' ? new xds.XdsChannelCredentials(insecure) : insecure;
  const clients = new Map();
  for (const c of o.calls) {
    if (!clients.has(c.target)) clients.set(c.target, new Echo(c.target, creds));
  }

  let seq = 0;
  let stopping = false;
  const once = (c, n) => new Promise((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of c.headers) md.add(k, v);
    const req = { ...c.fields };
    if (req.fail_first) req.key = `${c.label}-${process.pid}-${n}`;
    clients.get(c.target).Who(req, md, { deadline: Date.now() + o.deadline }, (err, reply) => {
      const line = { seq: n, call: c.label };
      if (err) {
        Object.assign(line, { ok: false, code: err.code, status: STATUS_NAMES[err.code] || '?',
                              details: err.details });
      } else {
        Object.assign(line, { ok: true, name: reply.name, canary: reply.canary,
                              attempts: reply.attempts, peer: reply.peer });
      }
      console.log(JSON.stringify(line));
      resolve();
    });
  });

  const loop = async () => {
    while (!stopping) {
      const n = ++seq;
      await Promise.all(o.calls.map((c) => once(c, n)));
      await new Promise((r) => setTimeout(r, o.interval));
    }
    for (const cl of clients.values()) cl.close();
    process.exit(0);
  };
  const stop = () => { stopping = true; };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (o.duration > 0) setTimeout(stop, o.duration * 1000).unref();
  loop();
}

main();
