#!/usr/bin/env node
// tests/conformance/check_protos.js — proves meshd's trimmed protos (proto/) are a
// wire-compatible subset of the official ones: every package, message, field (number, type,
// label, map key, oneof), enum value and service method we declare must exist upstream,
// identically, and in the file of the same path. Anything we left out is fine (protobuf
// skips unknown fields); anything that differs would silently corrupt what Envoy or a
// gRPC-xDS client reads. Exits 1 listing every mismatch; last line "N passed, M failed".
//
// Istio's CA proto is not in the npm deps; its upstream shape (istio/api
// security/v1alpha1/ca.proto, package istio.v1.auth) is recorded in ISTIO_CA below.
'use strict';

const roots = require('./protoroots');
const { protobuf } = roots;

const ISTIO_CA = {
  messages: {
    '.istio.v1.auth.IstioCertificateRequest': {
      csr: [1, 'string', 'optional'],
      subject_id: [2, 'string', 'optional'], // removed upstream later; listed so a reuse is caught
      validity_duration: [3, 'int64', 'optional'],
      metadata: [4, '.google.protobuf.Struct', 'optional'],
    },
    '.istio.v1.auth.IstioCertificateResponse': {
      cert_chain: [1, 'string', 'repeated'],
      root_cert: [2, '.istio.v1.auth.Roots', 'optional'],
    },
    '.istio.v1.auth.Roots': { ca_cert: [1, 'string', 'repeated'] },
  },
  services: {
    '.istio.v1.auth.IstioCertificateService': {
      CreateCertificate: ['.istio.v1.auth.IstioCertificateRequest', '.istio.v1.auth.IstioCertificateResponse', false, false],
    },
  },
};

let passed = 0;
const failures = [];
function check(ok, what) {
  if (ok) passed++;
  else failures.push(what);
}

function typeName(f) {
  return f.resolvedType ? f.resolvedType.fullName : f.type;
}
function label(f) {
  if (f.map) return `map<${f.keyType}>`;
  return f.repeated ? 'repeated' : 'optional';
}

function* walk(ns) {
  for (const obj of ns.nestedArray) {
    yield obj;
    if (obj.nestedArray && obj.nestedArray.length) yield* walk(obj);
  }
}

function compareType(ours, up, ourDirs, upDirs) {
  const name = ours.fullName;
  const ourFile = roots.relFile(ours.filename, ourDirs);
  const upFile = roots.relFile(up.filename, upDirs);
  check(ourFile === upFile, `${name}: declared in ${ourFile}, upstream in ${upFile}`);
  for (const f of ours.fieldsArray) {
    const uf = up.fields[f.name];
    if (!uf) {
      check(false, `${name}.${f.name}: no such field upstream`);
      continue;
    }
    const problems = [];
    if (f.id !== uf.id) problems.push(`number ${f.id} vs upstream ${uf.id}`);
    if (typeName(f) !== typeName(uf)) problems.push(`type ${typeName(f)} vs upstream ${typeName(uf)}`);
    if (label(f) !== label(uf)) problems.push(`label ${label(f)} vs upstream ${label(uf)}`);
    const oo = f.partOf ? f.partOf.name : null;
    const uo = uf.partOf ? uf.partOf.name : null;
    if (oo !== uo) problems.push(`oneof ${oo} vs upstream ${uo}`);
    check(problems.length === 0, `${name}.${f.name}: ${problems.join('; ')}`);
  }
  // A number we use for another field would collide with an upstream field we dropped.
  const upById = new Map(up.fieldsArray.map((f) => [f.id, f.name]));
  for (const f of ours.fieldsArray) {
    const un = upById.get(f.id);
    check(un === f.name, `${name}.${f.name} = ${f.id}: upstream uses ${f.id} for ${un}`);
  }
}

function compareEnum(ours, up, ourDirs, upDirs) {
  const name = ours.fullName;
  const ourFile = roots.relFile(ours.filename, ourDirs);
  const upFile = roots.relFile(up.filename, upDirs);
  check(ourFile === upFile, `${name}: declared in ${ourFile}, upstream in ${upFile}`);
  for (const [k, v] of Object.entries(ours.values)) {
    check(up.values[k] === v, `${name}.${k} = ${v}: upstream has ${up.values[k]}`);
  }
}

function compareService(ours, up) {
  const name = ours.fullName;
  for (const m of ours.methodsArray) {
    const um = up.methods[m.name];
    if (!um) {
      check(false, `${name}/${m.name}: no such method upstream`);
      continue;
    }
    m.resolve();
    um.resolve();
    const problems = [];
    if (m.resolvedRequestType.fullName !== um.resolvedRequestType.fullName)
      problems.push(`request ${m.resolvedRequestType.fullName} vs ${um.resolvedRequestType.fullName}`);
    if (m.resolvedResponseType.fullName !== um.resolvedResponseType.fullName)
      problems.push(`response ${m.resolvedResponseType.fullName} vs ${um.resolvedResponseType.fullName}`);
    if (!!m.requestStream !== !!um.requestStream) problems.push('request streaming differs');
    if (!!m.responseStream !== !!um.responseStream) problems.push('response streaming differs');
    check(problems.length === 0, `${name}/${m.name}: ${problems.join('; ')}`);
  }
}

function checkIstio(ourRoot) {
  for (const [tn, fields] of Object.entries(ISTIO_CA.messages)) {
    const t = ourRoot.lookup(tn);
    if (!(t instanceof protobuf.Type)) {
      check(false, `${tn}: missing from proto/istio`);
      continue;
    }
    for (const f of t.fieldsArray) {
      const exp = fields[f.name];
      if (!exp) {
        check(false, `${tn}.${f.name}: not in Istio's ca.proto`);
        continue;
      }
      const got = [f.id, typeName(f), label(f)];
      check(JSON.stringify(got) === JSON.stringify(exp), `${tn}.${f.name}: ${JSON.stringify(got)} vs Istio ${JSON.stringify(exp)}`);
    }
  }
  for (const [sn, methods] of Object.entries(ISTIO_CA.services)) {
    const s = ourRoot.lookup(sn);
    if (!(s instanceof protobuf.Service)) {
      check(false, `${sn}: missing from proto/istio`);
      continue;
    }
    for (const m of s.methodsArray) {
      m.resolve();
      const exp = methods[m.name];
      const got = [m.resolvedRequestType.fullName, m.resolvedResponseType.fullName, !!m.requestStream, !!m.responseStream];
      check(!!exp && JSON.stringify(got) === JSON.stringify(exp), `${sn}/${m.name}: ${JSON.stringify(got)} vs Istio ${JSON.stringify(exp)}`);
    }
  }
}

function main() {
  const files = roots.listOurProtos();
  const ours = roots.loadOurs(files);
  const upstreamFiles = files.filter((f) => !f.startsWith('istio/'));
  for (const f of upstreamFiles) check(roots.upstreamHas(f), `proto/${f}: no upstream file of that path`);
  const up = roots.loadUpstream(upstreamFiles.filter(roots.upstreamHas));

  let declared = 0;
  for (const obj of walk(ours.root)) {
    const full = obj.fullName;
    if (full.startsWith('.google.protobuf.')) continue; // libprotobuf-dev's own files
    if (full.startsWith('.istio.')) continue;           // checked against ISTIO_CA
    if (!(obj instanceof protobuf.Type || obj instanceof protobuf.Enum || obj instanceof protobuf.Service)) continue;
    declared++;
    const u = up.root.lookup(full);
    if (!u || u.constructor !== obj.constructor) {
      check(false, `${full}: no ${obj.constructor.name.toLowerCase()} of that name upstream`);
      continue;
    }
    if (obj instanceof protobuf.Type) compareType(obj, u, ours.dirs, up.dirs);
    else if (obj instanceof protobuf.Enum) compareEnum(obj, u, ours.dirs, up.dirs);
    else compareService(obj, u);
  }
  checkIstio(ours.root);

  for (const f of failures) console.log('MISMATCH ' + f);
  console.log(`${declared} upstream messages/enums/services compared`);
  console.log(`${passed} passed, ${failures.length} failed`);
  process.exit(failures.length ? 1 : 0);
}

main();
