#!/usr/bin/env bash
# tests/e2e/test_conformance.sh — wire conformance against the OFFICIAL Envoy protos
# (shipped in the npm package @grpc/grpc-js-xds): our proto/ subset matches upstream
# numbers and types, the checker itself catches planted mismatches, and everything the
# xDS compiler emits decodes strictly and passes Envoy's validation rules.
# In CI (CI=true) a missing node is a failure, elsewhere a skip.
. "$(dirname "$0")/lib.sh"
e2e_setup
BUILD_DIR=$(dirname "$MESH_BIN")

need_node "npm ci fetches the official protos"
check_out "our protos match upstream field numbers and types" " 0 failed" node "$CONF/check_protos.js"
check "the proto checker catches planted mismatches" "$CONF/selftest_check_protos.sh"
check "the decoder rejects bad input" "$CONF/selftest_decode.sh"
SAN_FLAGS=""
case "$BUILD_DIR" in *asan*) SAN_FLAGS="-fsanitize=address,undefined" ;; esac
check_out "compiled xDS decodes strictly with upstream protos and passes PGV rules" "decoded" \
    env BUILD="$BUILD_DIR" SAN="$SAN_FLAGS" "$CONF/xds_e2e.sh"
e2e_finish
