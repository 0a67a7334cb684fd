#!/usr/bin/python3
"""tests/conformance/xds_client.py — a REAL proxyless gRPC client on grpc C core's own xDS
client (Debian's python3-grpcio, unmodified), the twin of xds_client.js.

  GRPC_XDS_BOOTSTRAP=bootstrap.json /usr/bin/python3 xds_client.py \\
      --call plain=xds:///backend --call canary=xds:///backend,x-canary=1 \\
      --call slow=xds:///backend,@sleep_ms=3000 --call flaky=xds:///backend,@fail_first=2 \\
      [--creds insecure|xds] [--interval 100] [--deadline 1000] [--duration 60]

Every --interval ms it calls meshtest.Echo/Who once per --call (LABEL=TARGET, then optional
",header=value" metadata and ",@field=value" request fields: sleep_ms, fail_first) and
prints one JSON line per call:
  {"seq":3,"call":"plain","ok":true,"name":"a","canary":"","attempts":1,"peer":""}
  {"seq":3,"call":"denied","ok":false,"code":14,"status":"UNAVAILABLE","details":"..."}
grpc core's xds resolver does all the work: it reads the bootstrap, opens one ADS stream,
subscribes LDS <host> -> RDS -> CDS -> EDS and picks a backend by the routes and weights it
received. --creds xds uses xDS credentials (gRFC A29): mTLS with the certificate providers
of the bootstrap wherever the cluster carries an UpstreamTlsContext, plaintext elsewhere.
Runs until --duration seconds have passed (0 = until SIGTERM/SIGINT).
"""
import json
import os
import signal
import sys
import threading
import time

import grpc
import grpc.experimental

import meshtest_echo

REQUEST_FIELDS = ('sleep_ms', 'fail_first')


def usage(msg=None):
    if msg:
        print('xds_client.py: ' + msg, file=sys.stderr)
    print('usage: xds_client.py --call LABEL=xds:///HOST[,header=value...][,@field=value...] ... '
          '[--creds insecure|xds] [--interval MS] [--deadline MS] [--duration S]  '
          '(GRPC_XDS_BOOTSTRAP must be set)', file=sys.stderr)
    sys.exit(2)


def parse_call(spec):
    label, eq, rest = spec.partition('=')
    if not eq or not label:
        usage('--call %s: want LABEL=TARGET[,header=value...]' % spec)
    target, *extras = rest.split(',')
    if not target.startswith('xds:///'):
        usage('--call %s: the target must be xds:///HOST' % spec)
    headers, fields = [], {}
    for x in extras:
        name, eq, value = x.partition('=')
        if not eq or not name:
            usage('--call %s: "%s" is not name=value' % (spec, x))
        if name.startswith('@'):
            if name[1:] not in REQUEST_FIELDS:
                usage('--call %s: request field %s is not one of %s' % (spec, name, REQUEST_FIELDS))
            if not value.isdigit():
                usage('--call %s: %s wants a whole number' % (spec, name))
            fields[name[1:]] = int(value)
        else:
            headers.append((name.lower(), value))
    return {'label': label, 'target': target, 'headers': headers, 'fields': fields}


def parse_args(argv):
    o = {'calls': [], 'interval': 100, 'deadline': 1000, 'duration': 0, 'creds': 'insecure'}
    i = 0
    while i < len(argv):
        a = argv[i]
        if i + 1 >= len(argv):
            usage('%s needs a value' % a)
        v = argv[i + 1]
        i += 2
        if a == '--call':
            o['calls'].append(parse_call(v))
        elif a in ('--interval', '--deadline', '--duration'):
            if not v.isdigit():
                usage('%s wants a whole number, got "%s"' % (a, v))
            o[a[2:]] = int(v)
        elif a == '--creds':
            if v not in ('insecure', 'xds'):
                usage('--creds is insecure or xds')
            o['creds'] = v
        else:
            usage('unknown argument ' + a)
    if not o['calls']:
        usage('give at least one --call')
    if not os.environ.get('GRPC_XDS_BOOTSTRAP') and not os.environ.get('GRPC_XDS_BOOTSTRAP_CONFIG'):
        usage('set GRPC_XDS_BOOTSTRAP to the bootstrap file')
    return o


def main():
    o = parse_args(sys.argv[1:])
    pb = meshtest_echo.load()
    insecure = grpc.experimental.insecure_channel_credentials()
    creds = grpc.xds_channel_credentials(insecure) if o['creds'] == 'xds' else insecure
    # One channel per target; the process shares one xDS client (one ADS stream).
    stubs = {}
    channels = []
    for c in o['calls']:
        if c['target'] not in stubs:
            ch = grpc.secure_channel(c['target'], creds)
            channels.append(ch)
            stubs[c['target']] = ch.unary_unary(
                meshtest_echo.METHOD, request_serializer=pb.WhoRequest.SerializeToString,
                response_deserializer=pb.Reply.FromString)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if o['duration'] > 0:
        timer = threading.Timer(o['duration'], stop.set)
        timer.daemon = True
        timer.start()
    out_lock = threading.Lock()

    def emit(line):
        with out_lock:
            print(json.dumps(line, separators=(',', ':')), flush=True)

    seq = 0
    while not stop.is_set():
        seq += 1
        pending = []
        for c in o['calls']:
            req = pb.WhoRequest(**c['fields'])
            if req.fail_first:
                req.key = '%s-%d-%d' % (c['label'], os.getpid(), seq)
            fut = stubs[c['target']].future(req, timeout=o['deadline'] / 1000.0,
                                            metadata=c['headers'] or None)
            pending.append((c, fut))
        for c, fut in pending:
            line = {'seq': seq, 'call': c['label']}
            try:
                r = fut.result()
                line.update(ok=True, name=r.name, canary=r.canary, attempts=r.attempts, peer=r.peer)
            except grpc.RpcError as e:
                line.update(ok=False, code=e.code().value[0], status=e.code().name,
                            details=e.details())
            emit(line)
        stop.wait(o['interval'] / 1000.0)
    for ch in channels:
        ch.close()


if __name__ == '__main__':
    main()
