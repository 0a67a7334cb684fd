#!/usr/bin/env bash
# tests/pg/pg_start.sh — start a throwaway PostgreSQL cluster for the tests.
#
#   url=$(tests/pg/pg_start.sh [DIR])    # DIR defaults to a new /tmp/meshd-pg-XXXXXX
#   ... MESH_TEST_PG_URL=$url ...
#   tests/pg/pg_stop.sh DIR             # DIR is also in $url's file DIR/url
#
# initdb + pg_ctl from Debian's postgresql package (/usr/lib/postgresql/*/bin)
# make a cluster in DIR listening on 127.0.0.1 only, on a random free port,
# with its Unix socket inside DIR (never /var/run/postgresql). PostgreSQL
# refuses to run as root, so as root the cluster runs as the system user
# meshtest (created here if missing). Trust authentication, fsync off: the
# cluster exists for one test run and holds nothing of value. Prints the
# superuser URL, postgres://meshtest@127.0.0.1:PORT/postgres, on stdout; the
# cluster's directory is the first line of stderr's "pg: ..." messages.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg_start: no PostgreSQL server found under /usr/lib/postgresql/*/bin;" \
       "install it with tools/deps.sh (Debian package postgresql)" >&2
  exit 1
fi

# initdb's helpers write to /dev/null as the unprivileged user: a /dev/null
# that is not the character device (replaced by a plain file) fails them.
if [ ! -c /dev/null ]; then
  echo "pg_start: /dev/null is not a character device on this machine; initdb cannot" \
       "run (restore it: mknod -m 666 /dev/null c 1 3)" >&2
  exit 1
fi

dir=${1:-}
if [ -z "$dir" ]; then
  dir=$(mktemp -d /tmp/meshd-pg-XXXXXX)
else
  mkdir -p "$dir"
fi
dir=$(cd "$dir" && pwd)

run_as=()
owner=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  owner=meshtest
  if ! id -u "$owner" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      "$owner"
  fi
  chown "$owner" "$dir"
  chmod 0700 "$dir"
  run_as=(runuser -u "$owner" --)
fi

"${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U "$owner" -A trust -E UTF8 --locale=C \
  --no-sync >"$dir/initdb.log" 2>&1 || {
  echo "pg_start: initdb failed; see $dir/initdb.log:" >&2
  tail -5 "$dir/initdb.log" >&2
  exit 1
}

# A port another process takes between the pick and the bind makes pg_ctl
# fail: try a few.
for attempt in 1 2 3 4 5; do
  port=$(shuf -i 20000-60999 -n 1)
  if "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
       -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
           -c fsync=off -c full_page_writes=off -c max_connections=200" \
       start >"$dir/pg_ctl.log" 2>&1; then
    url="postgres://$owner@127.0.0.1:$port/postgres"
    echo "$url" >"$dir/url"
    echo "pg: cluster in $dir (port $port)" >&2
    echo "$url"
    exit 0
  fi
  if [ "$attempt" = 5 ]; then
    echo "pg_start: the server did not start; see $dir/server.log:" >&2
    tail -5 "$dir/server.log" >&2 || true
    exit 1
  fi
done
