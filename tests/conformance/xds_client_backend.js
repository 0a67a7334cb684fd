#!/usr/bin/env node
// tests/conformance/xds_client_backend.js --name NAME --listen HOST:PORT
//
// A plain gRPC server (@grpc/grpc-js, no xDS) for the real-client tests
// (tests/e2e/test_xds_client*.sh): meshtest.Echo/Who answers {name: NAME, canary:
// <x-canary header or "">, attempts, peer: ""}; sleep_ms in the request delays the
// answer, fail_first N fails the first N attempts with the same key with UNAVAILABLE
// (xds_client_backend.py behaves the same). It is a mesh workload's `app`; the proxyless
// client reaches it directly through the endpoints meshd serves. Prints one JSON line
// {"listening": "HOST:PORT"} once bound; exits on SIGTERM/SIGINT.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function usage(msg) {
  if (msg) console.error(`xds_client_backend: ${msg}`);
  console.error('usage: xds_client_backend.js --name NAME --listen HOST:PORT');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--name' || a === '--listen') {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      o[a.slice(2)] = argv[++i];
    } else {
      usage(`unknown argument ${a}`);
    }
  }
  if (!o.name) usage('--name is required');
  if (!o.listen || !/^[^\s]+:\d+$/.test(o.listen)) usage('--listen HOST:PORT is required');
  return o;
}

function loadEcho() {
  const def = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), {
    keepCase: true, longs: String, enums: String, defaults: true,
  });
  return grpc.loadPackageDefinition(def).meshtest;
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const meshtest = loadEcho();
  const server = new grpc.Server();
  const attempts = new Map();
  server.addService(meshtest.Echo.service, {
    Who(call, callback) {
      const req = call.request;
      let n = 1;
      if (req.key) {
        n = (attempts.get(req.key) || 0) + 1;
        attempts.set(req.key, n);
      }
      if (n <= req.fail_first) {
        callback({ code: grpc.status.UNAVAILABLE, details: `attempt ${n} of ${req.key} fails on purpose` });
        return;
      }
      const canary = call.metadata.get('x-canary');
      const reply = { name: o.name, canary: canary.length ? String(canary[0]) : '', attempts: n, peer: '' };
      setTimeout(() => callback(null, reply), req.sleep_ms || 0);
    },
  });
  server.bindAsync(o.listen, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      console.error(`xds_client_backend: cannot listen on ${o.listen}: ${err.message}`);
      process.exit(1);
    }
    console.log(JSON.stringify({ listening: o.listen, name: o.name }));
  });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
