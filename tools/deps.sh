#!/usr/bin/env bash
# tools/deps.sh — install the Debian packages meshd needs to build, test and demo.
# Idempotent and quick when everything is present: it asks dpkg first and only
# calls apt-get for what is missing. Run as root (CI and the README commands do).
set -euo pipefail

PKGS=(
  build-essential pkg-config
  openssl libssl-dev
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev protobuf-compiler
  libsqlite3-dev sqlite3
  # The PostgreSQL store backend (libpq) and the throwaway server its tests
  # start (tests/pg/pg_start.sh, make unit-pg; docs/store.md).
  libpq-dev postgresql
  libcriterion-dev
  libevent-dev libyaml-dev libhttp-parser-dev
  libnghttp2-dev  # HTTP/2 in the sidecar (http2 and grpc services; docs/dataplane.md)
  curl ca-certificates
  jq  # the e2e tests read JSON with it
  # libFuzzer targets only (make fuzz, make fuzz-smoke; docs/fuzzing.md): clang
  # and its runtime libraries (libclang_rt.fuzzer, asan, ubsan).
  clang libclang-rt-dev
  python3-grpcio python3-protobuf  # grpc C core's own xDS client, a second real proxyless client
  # (python3-grpcio is also the gRPC client and server of tests/e2e/test_sidecar_grpc.sh)
  prometheus  # promtool checks meshd's /metrics and the sidecar's /stats/prometheus (e2e)
  help2man    # make man / make install: man pages from each binary's --help
  systemd     # systemd-analyze verify checks the installed units (e2e test_install.sh)
)
# Node.js runs the wire-conformance suite (official Envoy protos from npm) and
# the real third-party xDS client. A machine that already has node+npm (from
# any source) keeps it: Debian's npm conflicts with NodeSource's nodejs.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi
# Benchmarks compare against haproxy and drive load with wrk.
if [ "${MESHD_DEPS_BENCH:-0}" = 1 ]; then
  PKGS+=(haproxy wrk valgrind)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run 'sudo tools/deps.sh' (or make as root) to install them" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
