#!/usr/bin/python3
"""tests/e2e/grpc_app.py — a gRPC server (Debian's python3-grpcio, generic handlers, raw
bytes: no protoc step) for test_sidecar_grpc.sh. Service mesh.Test:
  Unary        -> b"<name>:" + request, trailing metadata x-trailer: <name>
  Who          -> the x-forwarded-client-cert the sidecar set
  ServerStream -> int(request) messages b"<name>:<i>"
  Bidi         -> echoes every message
  Sleep        -> sleeps float(request) seconds, noting a cancellation in <dir>/cancelled-<name>
  Flood        -> int(request) messages of 1 MiB (the slow-reader test)
  Fail         -> NOT_FOUND "no such thing" with no message sent (a trailers-only response)
usage: grpc_app.py HOST:PORT NAME DIR"""
import os
import sys
import time
from concurrent import futures

import grpc

addr, name, state_dir = sys.argv[1], sys.argv[2], sys.argv[3]
tag = name.encode()


def unary(req, ctx):
    ctx.set_trailing_metadata((("x-trailer", name),))
    return tag + b":" + req


def who(req, ctx):
    md = dict(ctx.invocation_metadata())
    return md.get("x-forwarded-client-cert", "").encode()


def server_stream(req, ctx):
    for i in range(int(req)):
        yield tag + b":%d" % i


def flood(req, ctx):
    chunk = b"f" * (1024 * 1024)
    for _ in range(int(req)):
        yield chunk


def bidi(it, ctx):
    for m in it:
        yield m


def sleep(req, ctx):
    end = time.time() + float(req)
    while time.time() < end:
        if not ctx.is_active():     # the client's RST_STREAM reached us through the mesh
            with open(os.path.join(state_dir, "cancelled-" + name), "a") as f:
                f.write("cancelled\n")
            return b""
        time.sleep(0.02)
    return b"slept"


def fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


MB = 1024 * 1024
handlers = grpc.method_handlers_generic_handler("mesh.Test", {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Who": grpc.unary_unary_rpc_method_handler(who),
    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    "Flood": grpc.unary_stream_rpc_method_handler(flood),
    "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                     options=[("grpc.max_receive_message_length", 32 * MB),
                              ("grpc.max_send_message_length", 32 * MB)])
server.add_generic_rpc_handlers((handlers,))
if server.add_insecure_port(addr) == 0:
    sys.exit("grpc_app: cannot listen on " + addr)
server.start()
print("grpc_app %s listening on %s" % (name, addr), flush=True)
server.wait_for_termination()
