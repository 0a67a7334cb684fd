// tests/conformance/pgv.js — checks a decoded message against the protoc-gen-validate
// rules written in the upstream Envoy protos ((validate.rules) / (validate.required)).
// Envoy runs these same rules on every resource it receives and NACKs a violation,
// so a violation here is a config Envoy would reject. Only the rule kinds Envoy's
// xDS types use are implemented; any other rule met is counted as "unchecked" and
// reported, never silently passed.
'use strict';

const { protobuf } = require('./protoroots');

const WRAPPERS = {
  '.google.protobuf.UInt32Value': 'uint32', '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32', '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.DoubleValue': 'double', '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.BoolValue': 'bool', '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};
const NUMERIC = ['uint32', 'uint64', 'int32', 'int64', 'sint32', 'sint64', 'fixed32', 'fixed64',
  'sfixed32', 'sfixed64', 'double', 'float'];

function num(v) {
  if (v !== null && typeof v === 'object' && typeof v.toNumber === 'function') return v.toNumber();
  if (typeof v === 'string') return Number(v);
  return v;
}
function durNanos(d) {
  if (!d) return 0;
  return num(d.seconds || 0) * 1e9 + num(d.nanos || 0);
}

class Validator {
  constructor(root) {
    this.root = root;
    this.violations = [];
    this.unchecked = new Map();
    this.checked = 0;
  }

  bad(where, msg) {
    this.violations.push(`${where}: ${msg}`);
  }
  skip(kind) {
    this.unchecked.set(kind, (this.unchecked.get(kind) || 0) + 1);
  }

  rulesOf(obj, name) {
    for (const o of obj.parsedOptions || []) if (o[name] !== undefined) return o[name];
    return undefined;
  }

  message(type, msg, where) {
    for (const oneof of type.oneofsArray) {
      if (this.rulesOf(oneof, '(validate.required)') === true) {
        this.checked++;
        if (!msg[oneof.name]) this.bad(where, `oneof ${oneof.name} is required`);
      }
    }
    for (const f of type.fieldsArray) {
      const w = `${where}.${f.name}`;
      const rules = this.rulesOf(f, '(validate.rules)');
      const v = msg[f.name];
      const present = f.partOf ? msg[f.partOf.name] === f.name
        : f.repeated || f.map ? true : Object.prototype.hasOwnProperty.call(msg, f.name) && v !== null;
      // Rules of a oneof member apply only when that member is the one set.
      if (rules && (present || !f.partOf)) this.field(f, rules, present ? v : undefined, w);
      if (!present || !(f.resolvedType instanceof protobuf.Type)) continue;
      if (rules && rules.message && rules.message.skip) continue;
      if (f.map) for (const k of Object.keys(v || {})) this.sub(f.resolvedType, v[k], `${w}[${k}]`);
      else if (f.repeated) (v || []).forEach((x, i) => this.sub(f.resolvedType, x, `${w}[${i}]`));
      else this.sub(f.resolvedType, v, w);
    }
  }

  sub(type, v, where) {
    if (type.fullName === '.google.protobuf.Any') {
      const url = v.type_url || '';
      const t = this.root.lookup(url.slice(url.lastIndexOf('/') + 1));
      if (!(t instanceof protobuf.Type)) return this.bad(where, `Any of unknown type ${url}`);
      let inner;
      try {
        inner = t.decode(v.value || new Uint8Array(0));
      } catch (e) {
        return this.bad(where, `Any ${url} does not decode: ${e.message}`);
      }
      return this.message(t, inner, `${where}<${t.name}>`);
    }
    this.message(type, v, where);
  }

  field(f, rules, v, where) {
    for (const kind of Object.keys(rules)) {
      const r = rules[kind];
      if (kind === 'message') {
        this.checked++;
        if (r.required && v === undefined) this.bad(where, 'is required');
      } else if (kind === 'repeated') {
        this.repeated(f, r, v || [], where);
      } else if (kind === 'map') {
        this.map(r, v || {}, where);
      } else if (f.repeated || f.map) {
        this.skip(`${kind} on repeated`);
      } else {
        this.scalar(f, kind, r, v, where);
      }
    }
  }

  repeated(f, r, list, where) {
    this.checked++;
    if (r.min_items !== undefined && list.length < num(r.min_items)) this.bad(where, `needs at least ${r.min_items} item(s), has ${list.length}`);
    if (r.max_items !== undefined && list.length > num(r.max_items)) this.bad(where, `allows at most ${r.max_items} item(s), has ${list.length}`);
    if (r.unique) {
      const seen = new Set(list.map((x) => JSON.stringify(x)));
      if (seen.size !== list.length) this.bad(where, 'items must be unique');
    }
    if (r.items) {
      for (const kind of Object.keys(r.items)) {
        list.forEach((x, i) => this.scalar(f, kind, r.items[kind], x, `${where}[${i}]`));
      }
    }
    for (const k of Object.keys(r)) if (!['min_items', 'max_items', 'unique', 'items', 'ignore_empty'].includes(k)) this.skip(`repeated.${k}`);
  }

  map(r, m, where) {
    this.checked++;
    const n = Object.keys(m).length;
    if (r.min_pairs !== undefined && n < num(r.min_pairs)) this.bad(where, `needs at least ${r.min_pairs} entries`);
    if (r.max_pairs !== undefined && n > num(r.max_pairs)) this.bad(where, `allows at most ${r.max_pairs} entries`);
    if (r.keys && r.keys.string) for (const k of Object.keys(m)) this.string(r.keys.string, k, `${where} key "${k}"`);
    for (const k of Object.keys(r)) if (!['min_pairs', 'max_pairs', 'keys', 'values', 'no_sparse'].includes(k)) this.skip(`map.${k}`);
    if (r.values) this.skip('map.values');
  }

  scalar(f, kind, r, v, where) {
    // Rules on a wrapper field (UInt32Value, ...) apply to its value when set.
    const wrapped = f.resolvedType && WRAPPERS[f.resolvedType.fullName];
    if (wrapped && v && typeof v === 'object' && !Array.isArray(v) && 'value' in v) v = v.value;
    else if (wrapped && v && typeof v === 'object') v = wrapped === 'bool' ? false : wrapped === 'string' ? '' : 0;
    if (kind === 'string') return this.string(r, v, where, wrapped === undefined && v === undefined ? '' : v);
    if (kind === 'bytes') {
      this.checked++;
      const len = v ? v.length : 0;
      if (r.min_len !== undefined && len < num(r.min_len)) this.bad(where, `needs at least ${r.min_len} bytes`);
      if (r.max_len !== undefined && len > num(r.max_len)) this.bad(where, `allows at most ${r.max_len} bytes`);
      for (const k of Object.keys(r)) if (!['min_len', 'max_len'].includes(k)) this.skip(`bytes.${k}`);
      return;
    }
    if (NUMERIC.includes(kind)) {
      if (wrapped && v === undefined) return; // unset wrapper: rules apply only when set
      const x = num(v === undefined ? 0 : v);
      this.checked++;
      if (r.const !== undefined && x !== num(r.const)) this.bad(where, `must be ${r.const}, is ${x}`);
      if (r.gt !== undefined && !(x > num(r.gt))) this.bad(where, `must be > ${r.gt}, is ${x}`);
      if (r.gte !== undefined && !(x >= num(r.gte))) this.bad(where, `must be >= ${r.gte}, is ${x}`);
      if (r.lt !== undefined && !(x < num(r.lt))) this.bad(where, `must be < ${r.lt}, is ${x}`);
      if (r.lte !== undefined && !(x <= num(r.lte))) this.bad(where, `must be <= ${r.lte}, is ${x}`);
      if (r.in !== undefined && ![].concat(r.in).map(num).includes(x)) this.bad(where, `must be one of ${r.in}`);
      if (r.not_in !== undefined && [].concat(r.not_in).map(num).includes(x)) this.bad(where, `must not be ${x}`);
      return;
    }
    if (kind === 'enum') {
      this.checked++;
      const e = f.resolvedType;
      const x = v === undefined ? 0 : v;
      if (r.defined_only && e instanceof protobuf.Enum && e.valuesById[x] === undefined) this.bad(where, `enum value ${x} is not defined`);
      if (r.const !== undefined && x !== num(r.const)) this.bad(where, `must be ${r.const}`);
      if (r.in !== undefined && ![].concat(r.in).map(num).includes(x)) this.bad(where, `enum value ${x} is not allowed here`);
      if (r.not_in !== undefined && [].concat(r.not_in).map(num).includes(x)) this.bad(where, `enum value ${x} is not allowed here`);
      for (const k of Object.keys(r)) if (!['defined_only', 'const', 'in', 'not_in'].includes(k)) this.skip(`enum.${k}`);
      return;
    }
    if (kind === 'duration') {
      this.checked++;
      if (r.required && v === undefined) return this.bad(where, 'is required');
      if (v === undefined) return;
      const n = durNanos(v);
      if (r.gt !== undefined && !(n > durNanos(r.gt))) this.bad(where, `must be > ${JSON.stringify(r.gt)}`);
      if (r.gte !== undefined && !(n >= durNanos(r.gte))) this.bad(where, `must be >= ${JSON.stringify(r.gte)}`);
      if (r.lt !== undefined && !(n < durNanos(r.lt))) this.bad(where, `must be < ${JSON.stringify(r.lt)}`);
      if (r.lte !== undefined && !(n <= durNanos(r.lte))) this.bad(where, `must be <= ${JSON.stringify(r.lte)}`);
      return;
    }
    if (kind === 'any') {
      this.checked++;
      if (r.required && v === undefined) this.bad(where, 'is required');
      return;
    }
    if (kind === 'bool') {
      this.checked++;
      if (r.const !== undefined && !!v !== r.const) this.bad(where, `must be ${r.const}`);
      return;
    }
    this.skip(kind);
  }

  string(r, v, where) {
    const s = v === undefined || v === null ? '' : String(v);
    this.checked++;
    const chars = [...s].length;
    const bytes = Buffer.byteLength(s);
    if (r.min_len !== undefined && chars < num(r.min_len)) this.bad(where, `needs at least ${r.min_len} character(s), is "${s}"`);
    if (r.max_len !== undefined && chars > num(r.max_len)) this.bad(where, `allows at most ${r.max_len} characters`);
    if (r.min_bytes !== undefined && bytes < num(r.min_bytes)) this.bad(where, `needs at least ${r.min_bytes} byte(s)`);
    if (r.max_bytes !== undefined && bytes > num(r.max_bytes)) this.bad(where, `allows at most ${r.max_bytes} bytes`);
    if (r.prefix !== undefined && !s.startsWith(r.prefix)) this.bad(where, `must start with "${r.prefix}"`);
    if (r.in !== undefined && ![].concat(r.in).includes(s)) this.bad(where, `must be one of ${r.in}`);
    if (r.not_in !== undefined && [].concat(r.not_in).includes(s)) this.bad(where, `must not be "${s}"`);
    if (r.well_known_regex !== undefined) {
      // Envoy's two: header names (RFC 7230 token, or a pseudo-header) and values
      // (no NUL/CR/LF when strict is false, which is how Envoy uses it).
      if (r.well_known_regex === 'HTTP_HEADER_NAME' && s !== '' && !/^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/.test(s)) this.bad(where, `"${s}" is not an HTTP header name`);
      else if (r.well_known_regex === 'HTTP_HEADER_VALUE' && /[\0\r\n]/.test(s)) this.bad(where, 'is not an HTTP header value');
      else if (!['HTTP_HEADER_NAME', 'HTTP_HEADER_VALUE'].includes(r.well_known_regex)) this.skip(`string.well_known_regex.${r.well_known_regex}`);
    }
    for (const k of Object.keys(r)) {
      if (!['min_len', 'max_len', 'min_bytes', 'max_bytes', 'prefix', 'in', 'not_in', 'well_known_regex', 'strict', 'ignore_empty'].includes(k)) this.skip(`string.${k}`);
    }
  }
}

// Validates msg (a decoded protobufjs message of `type`). Returns { violations, unchecked, checked }.
function validate(root, type, msg, where) {
  const v = new Validator(root);
  v.message(type, msg, where);
  return { violations: v.violations, unchecked: [...v.unchecked.entries()], checked: v.checked };
}

module.exports = { validate };
