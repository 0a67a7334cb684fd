// tests/conformance/protoroots.js — loads meshd's proto subset (proto/) and the official
// upstream protos (Envoy data-plane-api, cncf/xds, udpa, googleapis, protoc-gen-validate as
// shipped by @grpc/grpc-js-xds) into protobufjs roots, so the conformance tools can compare
// them and decode meshd's bytes with the real definitions.
'use strict';

const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');

const REPO = path.resolve(__dirname, '..', '..');
// MESH_PROTO_DIR lets the self-test point the checker at a deliberately broken copy.
const OUR_DIR = process.env.MESH_PROTO_DIR ? path.resolve(process.env.MESH_PROTO_DIR) : path.join(REPO, 'proto');
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const UPSTREAM_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d));
// The well-known types come from libprotobuf-dev, exactly as the C build uses them.
const WKT_DIR = '/usr/include';

function listOurProtos() {
  const out = [];
  (function walk(dir) {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.name.endsWith('.proto')) out.push(path.relative(OUR_DIR, p));
    }
  })(OUR_DIR);
  return out.sort();
}

function makeRoot(searchDirs) {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const d of searchDirs) {
      const p = path.join(d, target);
      if (fs.existsSync(p)) return p;
    }
    throw new Error(`cannot find import ${target} (from ${origin || 'command line'}) in ${searchDirs.join(', ')}`);
  };
  return root;
}

// Returns { root, dirs } for meshd's protos; files relative to proto/.
function loadOurs(files) {
  const dirs = [OUR_DIR, WKT_DIR];
  const root = makeRoot(dirs);
  root.loadSync(files || listOurProtos(), { keepCase: true });
  root.resolveAll();
  return { root, dirs };
}

// Loads the upstream files with the given relative paths (those that exist upstream).
function loadUpstream(files) {
  const dirs = [...UPSTREAM_DIRS, WKT_DIR];
  const root = makeRoot(dirs);
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return { root, dirs };
}

function upstreamHas(rel) {
  return UPSTREAM_DIRS.some((d) => fs.existsSync(path.join(d, rel)));
}

// Path of a loaded file relative to the include dir it came from.
function relFile(filename, dirs) {
  for (const d of dirs) {
    if (filename.startsWith(d + path.sep)) return path.relative(d, filename);
  }
  return filename;
}

module.exports = { REPO, OUR_DIR, DEPS, listOurProtos, loadOurs, loadUpstream, upstreamHas, relFile, protobuf };
