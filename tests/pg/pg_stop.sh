#!/usr/bin/env bash
# tests/pg/pg_stop.sh DIR — stop the cluster tests/pg/pg_start.sh made in DIR
# and remove DIR. Safe to call twice, and on a DIR whose server already died.
set -euo pipefail
dir=${1:?usage: pg_stop.sh DIR}
[ -d "$dir" ] || exit 0
if [ ! -e "$dir/url" ] && [ ! -d "$dir/data" ]; then
  echo "pg_stop: $dir is not a cluster made by pg_start.sh; leaving it alone" >&2
  exit 1
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ]; then
  run_as=()
  if [ "$(id -u)" -eq 0 ]; then
    run_as=(runuser -u "$(stat -c %U "$dir/data")" --)
  fi
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
fi
rm -rf "$dir"
