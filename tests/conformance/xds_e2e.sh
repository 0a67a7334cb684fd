#!/bin/sh
# tests/conformance/xds_e2e.sh — compiles the unit-test fixture with meshd's xDS
# compiler (xds_dump.c), then decodes every DiscoveryResponse and Secret with the
# OFFICIAL Envoy protos (decode.js --strict-unknown --validate: a field number Envoy
# does not define, or a value breaking Envoy's validation rules, fails) and checks the
# decoded content (xds_e2e_check.js; the proxyless gRPC view: xds_client_check.js, which
# also runs @grpc/grpc-js-xds's own validation). When the library also holds sidecar/, the same
# output goes through mesh-sidecar's own translator (xds_sidecar_check.c).
#
#   BUILD=build-x LIB_DIRS="common sds" tests/conformance/xds_e2e.sh
#   (an ASan library needs the same flags for xds_dump: SAN="-fsanitize=address,undefined")
# Needs $BUILD/libmesh.a (built here through the Makefile if missing). Skips (exit
# 0 with a notice) when node or tests/conformance/node_modules is missing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
cd "$repo"

if ! command -v node >/dev/null 2>&1; then
    echo "xds_e2e: SKIP: node is not installed"; exit 0
fi
if [ ! -d "$here/node_modules/@grpc/grpc-js-xds" ]; then
    echo "xds_e2e: SKIP: run 'npm ci' in tests/conformance first"; exit 0
fi

if [ ! -f "$BUILD/libmesh.a" ]; then
    make -s BUILD="$BUILD" ${LIB_DIRS:+LIB_DIRS="$LIB_DIRS"} "$BUILD/libmesh.a"
fi
tmp=$(mktemp -d /tmp/meshd-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror ${SAN:-} -I. -I"$BUILD/gen" -o "$tmp/xds_dump" \
    "$here/xds_dump.c" "$BUILD/libmesh.a" -lprotobuf-c -lssl -lcrypto
mkdir "$tmp/out"
"$tmp/xds_dump" "$tmp/out"

n=0
for f in "$tmp"/out/*.bin; do
    base=$(basename "$f" .bin)
    case "$base" in
        secret.*) type=envoy.extensions.transport_sockets.tls.v3.Secret ;;
        *) type=envoy.service.discovery.v3.DiscoveryResponse ;;
    esac
    node "$here/decode.js" --strict-unknown --validate "$type" "$f" > "$tmp/out/$base.json"
    n=$((n + 1))
done
echo "xds_e2e: decoded $n files with the upstream protos"
node "$here/xds_e2e_check.js" "$tmp/out"
# The proxyless gRPC view: its content, and @grpc/grpc-js-xds's own resource validation.
node "$here/xds_client_check.js" "$tmp/out"

if nm "$BUILD/libmesh.a" 2>/dev/null | grep -q ' T xdsc_translate_table$'; then
    cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror ${SAN:-} -I. -I"$BUILD/gen" \
        -o "$tmp/xds_sidecar_check" "$here/xds_sidecar_check.c" "$BUILD/libmesh.a" \
        -lprotobuf-c -levent -levent_openssl -levent_pthreads -lssl -lcrypto -lpthread -lm
    "$tmp/xds_sidecar_check"
else
    echo "xds_e2e: sidecar/ not in $BUILD/libmesh.a: skipping the sidecar acceptance check"
fi
