#!/usr/bin/python3
"""tests/e2e/grpc_client.py — the gRPC client (python3-grpcio) of test_sidecar_grpc.sh: one
case per run against TARGET (a sidecar's outbound listener, h2c with prior knowledge) with
:authority AUTHORITY; prints what it saw and exits 0 when it is what the case expects.
usage: grpc_client.py TARGET AUTHORITY CASE [ARG]"""
import sys
import time

import grpc

target, authority, case = sys.argv[1], sys.argv[2], sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else None
MB = 1024 * 1024
ch = grpc.insecure_channel(target, options=[
    ("grpc.default_authority", authority),
    ("grpc.enable_http_proxy", 0),
    ("grpc.max_receive_message_length", 32 * MB),
    ("grpc.max_send_message_length", 32 * MB),
])


def uu(m):
    return ch.unary_unary("/mesh.Test/" + m)


def out(ok, what):
    print(("ok " if ok else "FAIL ") + what)
    sys.exit(0 if ok else 1)


try:
    if case == "unary":
        resp, call = uu("Unary").with_call(b"hello", timeout=10)
        trailers = dict(call.trailing_metadata())
        out(resp.endswith(b":hello") and trailers.get("x-trailer") == resp.split(b":")[0].decode(),
            "unary %r trailers %r" % (resp, trailers))
    elif case == "who":
        resp = uu("Who")(b"", timeout=10).decode()
        print(resp)
        out(arg in resp, "xfcc %r" % resp)
    elif case == "stream":
        n = int(arg)
        msgs = list(ch.unary_stream("/mesh.Test/ServerStream")(str(n).encode(), timeout=30))
        out(len(msgs) == n and msgs[-1].endswith(b":%d" % (n - 1)), "%d messages" % len(msgs))
    elif case == "bidi":
        n = int(arg)
        sent = [b"m%05d" % i for i in range(n)]
        got = list(ch.stream_stream("/mesh.Test/Bidi")(iter(sent), timeout=60))
        out(got == sent, "bidi %d sent, %d back in order: %s" % (n, len(got), got == sent))
    elif case == "stall":       # 1 MiB messages; read one, stall ARG seconds, read the rest
        n, pause = 128, float(arg)
        it = ch.unary_stream("/mesh.Test/Flood")(str(n).encode(), timeout=120)
        got = len(next(it))
        print("stalling", flush=True)
        time.sleep(pause)
        count = 1 + sum(1 for _ in it)
        out(count == n and got == 1024 * 1024, "stalled reader got %d of %d messages" % (count, n))
    elif case == "big":
        body = bytes(range(256)) * (16 * MB // 256)
        resp = uu("Unary")(body, timeout=60)
        out(resp.endswith(b":" + body), "16 MB round trip, %d bytes back" % len(resp))
    elif case == "deadline":
        t0 = time.time()
        try:
            uu("Sleep")(b"5", timeout=0.5)
            out(False, "no deadline error")
        except grpc.RpcError as e:
            out(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.time() - t0 < 3,
                "%s after %.2fs" % (e.code(), time.time() - t0))
    elif case == "slow":        # no client deadline: the sidecar's route timeout answers
        t0 = time.time()
        try:
            uu("Sleep")(b"5")
            out(False, "no timeout")
        except grpc.RpcError as e:
            out(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and
                e.details() == "upstream request timeout" and time.time() - t0 < 4,
                "%s %r after %.2fs" % (e.code(), e.details(), time.time() - t0))
    elif case == "cancel":
        fut = uu("Sleep").future(b"5", timeout=10)
        time.sleep(0.5)
        fut.cancel()
        out(fut.cancelled(), "cancelled")
    elif case == "error":
        try:
            uu("Fail")(b"", timeout=10)
            out(False, "no error")
        except grpc.RpcError as e:
            out(e.code() == grpc.StatusCode.NOT_FOUND and e.details() == "no such thing",
                "%s %r" % (e.code(), e.details()))
    elif case == "code":        # an expected status for /mesh.Test/Unary, e.g. PERMISSION_DENIED
        try:
            uu("Unary")(b"x", timeout=10)
            out(False, "no error")
        except grpc.RpcError as e:
            out(e.code().name == arg, "%s %r" % (e.code(), e.details()))
    elif case == "spread":      # N unary calls on one channel: the backends that answered
        seen = {}
        for _ in range(int(arg)):
            who_ = uu("Unary")(b"x", timeout=10).split(b":")[0].decode()
            seen[who_] = seen.get(who_, 0) + 1
        print(" ".join("%s=%d" % kv for kv in sorted(seen.items())))
        out(len(seen) == 2 and min(seen.values()) >= int(arg) // 4, "spread %r" % seen)
    else:
        sys.exit("unknown case " + case)
except grpc.RpcError as e:
    out(False, "%s: %s %r" % (case, e.code(), e.details()))
