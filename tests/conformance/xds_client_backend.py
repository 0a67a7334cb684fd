#!/usr/bin/python3
"""tests/conformance/xds_client_backend.py — a gRPC server on grpc C core (Debian's
python3-grpcio) for the real-client tests, the twin of xds_client_backend.js.

  xds_client_backend.py --name NAME --listen HOST:PORT [--xds] [--max-connection-age-ms N]

meshtest.Echo/Who answers {name: NAME, canary: <x-canary header or "">, attempts, peer}:
  - sleep_ms in the request delays the answer (timeouts);
  - fail_first N fails the first N attempts carrying the same key with UNAVAILABLE, and
    `attempts` counts them (retries);
  - peer is the caller's SPIFFE ID from the TLS auth context, "" in plaintext.
Without --xds it is a plain server in plaintext: a mesh workload's `app` that a proxyless
client reaches directly. With --xds it is a proxyless (xDS-enabled) server, gRFC A36: it
asks the control plane of GRPC_XDS_BOOTSTRAP for the listener named by the bootstrap's
server_listener_resource_name_template and serves with xDS credentials (gRFC A29), i.e. the
mTLS and RBAC that listener carries; until the listener arrives it does not serve.
--max-connection-age-ms closes connections after that long (clients reconnect, so every
reconnect makes a new TLS handshake). Prints {"listening": "HOST:PORT", ...} once bound;
exits on SIGTERM/SIGINT.
"""
import json
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import meshtest_echo


def usage(msg=None):
    if msg:
        print('xds_client_backend.py: ' + msg, file=sys.stderr)
    print('usage: xds_client_backend.py --name NAME --listen HOST:PORT [--xds] '
          '[--max-connection-age-ms N]', file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    o = {'name': None, 'listen': None, 'xds': False, 'max_age': 0}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == '--xds':
            o['xds'] = True
            i += 1
            continue
        if i + 1 >= len(argv):
            usage('%s needs a value' % a)
        v = argv[i + 1]
        i += 2
        if a == '--name':
            o['name'] = v
        elif a == '--listen':
            o['listen'] = v
        elif a == '--max-connection-age-ms':
            if not v.isdigit():
                usage('--max-connection-age-ms wants a whole number')
            o['max_age'] = int(v)
        else:
            usage('unknown argument ' + a)
    if not o['name']:
        usage('--name is required')
    if not o['listen'] or ':' not in o['listen']:
        usage('--listen HOST:PORT is required')
    return o


def main():
    o = parse_args(sys.argv[1:])
    pb = meshtest_echo.load()
    attempts = {}
    lock = threading.Lock()

    def who(req, ctx):
        md = dict(ctx.invocation_metadata())
        n = 1
        if req.key:
            with lock:
                n = attempts.get(req.key, 0) + 1
                attempts[req.key] = n
        if n <= req.fail_first:
            ctx.abort(grpc.StatusCode.UNAVAILABLE, 'attempt %d of %s fails on purpose' % (n, req.key))
        if req.sleep_ms:
            time.sleep(req.sleep_ms / 1000.0)
        auth = ctx.auth_context() or {}
        peer = b''.join(auth.get('peer_spiffe_id', [])).decode(errors='replace')
        return pb.Reply(name=o['name'], canary=md.get('x-canary', ''), attempts=n, peer=peer)

    handler = grpc.method_handlers_generic_handler('meshtest.Echo', {
        'Who': grpc.unary_unary_rpc_method_handler(
            who, request_deserializer=pb.WhoRequest.FromString,
            response_serializer=pb.Reply.SerializeToString),
    })
    options = [('grpc.max_connection_age_ms', o['max_age'])] if o['max_age'] else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[handler],
                         options=options, xds=o['xds'])
    if o['xds']:
        creds = grpc.xds_server_credentials(grpc.insecure_server_credentials())
        port = server.add_secure_port(o['listen'], creds)
    else:
        port = server.add_insecure_port(o['listen'])
    if port == 0:
        sys.exit('xds_client_backend.py: cannot listen on ' + o['listen'])
    server.start()
    print(json.dumps({'listening': o['listen'], 'name': o['name'], 'xds': o['xds']}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(1).wait()


if __name__ == '__main__':
    main()
