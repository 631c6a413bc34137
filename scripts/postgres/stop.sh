#!/bin/sh
# Stop a server started by scripts/postgres/start.sh DIR (fast shutdown).
# Add --remove to delete DIR afterwards.
set -eu

dir=${1:?usage: stop.sh DIR [--remove]}
bin=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
as=""
[ "$(id -u)" = 0 ] && as="runuser -u postgres --"

if [ -f "$dir/data/postmaster.pid" ]; then
	$as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
fi
if [ "${2:-}" = "--remove" ]; then
	rm -rf "$dir"
fi
