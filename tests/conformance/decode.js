#!/usr/bin/env node
// tests/conformance/decode.js <type> <file|-> — decodes one binary protobuf message written by
// meshd with the OFFICIAL upstream protos (Envoy, xds, googleapis; Istio's CA shape from
// proto/istio since it is not in the npm deps) and prints it as JSON. google.protobuf.Any
// values are unpacked recursively ("@type" plus the decoded fields), so a serialized
// DiscoveryResponse shows its Listeners, their HttpConnectionManager, its RBAC, and so on.
// An Any whose type is unknown, or bytes that do not parse, exit 1: e2e tests rely on that.
//
//   node decode.js envoy.service.discovery.v3.DiscoveryResponse resp.bin
//   node decode.js --strict-unknown --validate envoy.config.listener.v3.Listener lds.bin
// --strict-unknown additionally fails if the bytes carry a field number the upstream type
// does not define (meshd must never emit one). --validate runs the protoc-gen-validate
// rules of the upstream protos (pgv.js), as Envoy does before accepting a resource, and
// fails listing every violation.
'use strict';

const fs = require('fs');
const roots = require('./protoroots');
const { protobuf } = roots;

// Every upstream file that defines a type meshd emits or that Envoy may send it.
const UPSTREAM_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'google/rpc/status.proto',
];

const ANY = '.google.protobuf.Any';

function fail(msg) {
  process.stderr.write(`decode.js: ${msg}\n`);
  process.exit(1);
}

function loadRoot() {
  const up = roots.loadUpstream(UPSTREAM_FILES);
  // Istio's CA messages: only in our tree. Loading them into the upstream root is safe
  // because check_protos.js has already compared them with istio/api.
  up.root.loadSync(require('path').join(roots.OUR_DIR, 'istio/v1/auth/ca.proto'), { keepCase: true });
  up.root.resolveAll();
  return up.root;
}

// Walks the raw wire bytes of `type` at every depth (sub-messages, map values, Any
// payloads): every length must fit in its parent (protobufjs' Buffer reader silently
// clamps a string that runs past the end, so decoding alone would accept truncated
// input), and with strictUnknown every field number must be one the upstream type
// defines (protobufjs silently drops unknown fields).
function walkWire(root, type, buf, where, strictUnknown) {
  const reader = protobuf.Reader.create(buf);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const id = tag >>> 3;
      const wire = tag & 7;
      const f = type.fieldsById[id];
      if (!f && strictUnknown) fail(`${where}: ${type.fullName.slice(1)} carries field number ${id}, unknown upstream`);
      if (wire !== 2) {
        reader.skipType(wire);
        continue;
      }
      const sub = reader.bytes();   // throws if the length runs past the end
      if (!f || !(f.resolvedType instanceof protobuf.Type)) continue;
      const w = `${where}.${f.name}`;
      if (f.map) {
        // map entry: key = 1, value = 2; descend into message values only
        const er = protobuf.Reader.create(sub);
        while (er.pos < er.len) {
          const et = er.uint32();
          if ((et >>> 3) === 2 && (et & 7) === 2) walkValue(root, f.resolvedType, er.bytes(), w, strictUnknown);
          else er.skipType(et & 7);
        }
      } else {
        walkValue(root, f.resolvedType, sub, w, strictUnknown);
      }
    }
  } catch (e) {
    fail(`${where}: not a valid ${type.fullName.slice(1)}: ${e.message}`);
  }
}

function walkValue(root, type, buf, where, strictUnknown) {
  if (type.fullName !== ANY) return walkWire(root, type, buf, where, strictUnknown);
  walkWire(root, type, buf, where, strictUnknown);
  const any = type.decode(buf);
  const t = lookupAny(root, any.type_url, where);
  walkWire(root, t, any.value || new Uint8Array(0), `${where}<${t.name}>`, strictUnknown);
}

function lookupAny(root, url, where) {
  url = url || '';
  const slash = url.lastIndexOf('/');
  if (!url.startsWith('type.googleapis.com/') || slash < 0) fail(`${where}: Any with unexpected type_url "${url}"`);
  const t = root.lookup(url.slice(slash + 1));
  if (!(t instanceof protobuf.Type)) fail(`${where}: Any of unknown type ${url}`);
  return t;
}

// Renders a decoded message as JSON-ready data: only fields present on the wire (proto3 does
// not send defaults), enums by name, bytes as base64, 64-bit integers as strings, and every
// Any replaced by {"@type": url, ...its decoded fields}.
class Renderer {
  constructor(root) {
    this.root = root;
  }

  decode(type, buf, where) {
    try {
      return this.render(type, type.decode(buf), where);
    } catch (e) {
      fail(`${where}: not a valid ${type.fullName.slice(1)}: ${e.message}`);
    }
  }

  value(field, v, where) {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) {
      if (rt.fullName === ANY) {
        const t = lookupAny(this.root, v.type_url, where);
        return Object.assign({ '@type': v.type_url }, this.decode(t, v.value || new Uint8Array(0), `${where}<${t.name}>`));
      }
      return this.render(rt, v, where);
    }
    if (rt instanceof protobuf.Enum) return rt.valuesById[v] !== undefined ? rt.valuesById[v] : v;
    if (field.type === 'bytes') return Buffer.from(v).toString('base64');
    if (v !== null && typeof v === 'object' && typeof v.toNumber === 'function') return v.toString();
    return v;
  }

  render(type, msg, where) {
    const out = {};
    for (const f of type.fieldsArray) {
      const w = `${where}.${f.name}`;
      const v = msg[f.name];
      if (f.map) {
        if (!v || Object.keys(v).length === 0) continue;
        out[f.name] = {};
        for (const k of Object.keys(v).sort()) out[f.name][k] = this.value(f, v[k], `${w}[${k}]`);
      } else if (f.repeated) {
        if (!v || v.length === 0) continue;
        out[f.name] = v.map((x, i) => this.value(f, x, `${w}[${i}]`));
      } else if (f.partOf) {
        if (msg[f.partOf.name] === f.name) out[f.name] = this.value(f, v, w);
      } else if (Object.prototype.hasOwnProperty.call(msg, f.name) && v !== null && v !== undefined) {
        out[f.name] = this.value(f, v, w);
      }
    }
    return out;
  }
}

function main() {
  const args = process.argv.slice(2);
  let strict = false;
  let validate = false;
  while (args.length && args[0].startsWith('--')) {
    const opt = args.shift();
    if (opt === '--strict-unknown') strict = true;
    else if (opt === '--validate') validate = true;
    else fail(`unknown option ${opt}`);
  }
  if (args.length !== 2) fail('usage: decode.js [--strict-unknown] [--validate] <fully.qualified.Type> <file|->');
  const [typeName, file] = args;
  const root = loadRoot();
  const type = root.lookup(typeName.replace(/^type\.googleapis\.com\//, ''));
  if (!(type instanceof protobuf.Type)) fail(`unknown message type ${typeName}`);
  let buf;
  try {
    buf = fs.readFileSync(file === '-' ? 0 : file);
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  walkWire(root, type, buf, type.name, strict);
  if (validate) {
    let msg;
    try {
      msg = type.decode(buf);
    } catch (e) {
      fail(`${type.name}: not a valid ${typeName}: ${e.message}`);
    }
    const res = require('./pgv').validate(root, type, msg, type.name);
    for (const u of res.unchecked) process.stderr.write(`decode.js: note: ${u[1]} validation rule(s) of kind ${u[0]} not checked\n`);
    if (res.violations.length) fail(`violates upstream validation rules:\n  ${res.violations.join('\n  ')}`);
  }
  const obj = new Renderer(root).decode(type, buf, type.name);
  process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
}

main();
