#!/usr/bin/env python3
"""tests/e2e/pb_groups_msgs.py - writes requests that carry unknown protobuf groups.

A client built against a newer schema than meshd's may send a field meshd does not know
with the (deprecated) group wire types 3/4; the official runtimes skip it and so must
meshd (issue 12). These are written byte by byte, as such an encoder puts them on the
wire (no protobuf library here has a schema with groups in it).

    pb_groups_msgs.py OUT_DIR NODE_ID      e2e messages (test_hostile_grpc.sh)
    pb_groups_msgs.py --seeds CORPUS_DIR   the fuzz_pb_groups seed corpus
"""
import os
import sys

SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(num, wt):
    return varint((num << 3) | wt)


def ld(num, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return tag(num, 2) + varint(len(payload)) + payload


def group(num, inner=b""):
    """An unknown group holding a field of every other wire type, and `inner`."""
    body = (tag(1, 0) + varint(300) + tag(2, 1) + b"\xaa" * 8 + tag(3, 5) + b"\xbb" * 4
            + ld(4, "a field of a newer schema") + inner)
    return tag(num, 3) + body + tag(num, 4)


def node(node_id, extra=b""):
    return ld(1, node_id) + group(50, group(51)) + extra + ld(6, "envoy")


def sotw_request(node_id, names, type_url=SECRET):
    """SotW request with a nested group at top level and a group inside Node."""
    body = group(1000, group(1001)) + ld(2, node(node_id))
    body += b"".join(ld(3, n) for n in names) + ld(4, type_url)
    return body + group(99)


def delta_request(node_id):
    entry = ld(1, "c1") + group(9) + ld(2, "v1")  # initial_resource_versions entry
    return ld(1, node(node_id)) + ld(2, CLUSTER) + group(99) + ld(3, "*") + ld(5, entry)


def csr_request():
    """No CSR at all, but a group: decodes, then is refused for the missing CSR."""
    return group(20) + tag(3, 0) + varint(3600)


def bad_group(num=99):
    """A group that another field's end tag closes: a broken encoder."""
    return ld(4, SECRET) + tag(num, 3) + tag(1, 0) + varint(7) + tag(num - 1, 4)


def deep_request(levels):
    """Node.metadata: Structs nested `levels` deep (protobuf-c recursed until its stack
    ran out). Each nested message is its parent's last field, so the prefixes are
    computed inside out and joined once."""
    chunks, size = [], 0
    for _ in range(levels):
        value = tag(5, 2) + varint(size)              # Value{struct_value: inner}
        size += len(value)
        entry_value = tag(2, 2) + varint(size)        # entry{value}
        size += len(entry_value)
        key = ld(1, "k")                              # entry{key}
        size += len(key)
        fields = tag(1, 2) + varint(size)             # Struct{fields: entry}
        size += len(fields)
        chunks.append(fields + key + entry_value + value)
    meta = tag(3, 2) + varint(size)
    size += len(meta)
    node_id = ld(1, "deep-node")
    size += len(node_id)
    head = tag(2, 2) + varint(size) + node_id + meta
    return head + b"".join(reversed(chunks)) + ld(4, SECRET)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        d = sys.argv[2]
        os.makedirs(d, exist_ok=True)
        # First byte: 0 DiscoveryRequest, 1 DeltaDiscoveryRequest, 2 IstioCertificateRequest.
        write(os.path.join(d, "sotw_groups"), b"\0" + sotw_request("seed-node", ["default"]))
        write(os.path.join(d, "sotw_bad_group"), b"\0" + bad_group())
        write(os.path.join(d, "sotw_known_as_group"), b"\0" + tag(2, 3) + tag(2, 4))
        write(os.path.join(d, "delta_groups"), b"\1" + delta_request("seed-node"))
        write(os.path.join(d, "csr_group"), b"\2" + csr_request())
        write(os.path.join(d, "no_group"), b"\0" + ld(2, ld(1, "n")) + ld(4, SECRET))
        return
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    d, node_id = sys.argv[1], sys.argv[2]
    write(os.path.join(d, "sotw_groups.bin"), sotw_request(node_id, ["default", "ROOTCA"]))
    write(os.path.join(d, "sotw_bad_group.bin"), bad_group())
    write(os.path.join(d, "delta_groups.bin"), delta_request(node_id))
    write(os.path.join(d, "csr_group.bin"), csr_request())
    write(os.path.join(d, "csr_bad_group.bin"), tag(20, 3) + ld(1, "x"))
    write(os.path.join(d, "deep.bin"), deep_request(30000))


if __name__ == "__main__":
    main()
