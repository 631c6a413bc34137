#!/bin/sh
# Start a private PostgreSQL 15 (Debian's postgresql-15 package) for
# development or manual tests: data in DIR, TCP on 127.0.0.1:PORT only,
# trust authentication, no Unix socket. Prints the DSN to use with
# `mailgate` (store.Open) on stdout. Stop it with scripts/postgres/stop.sh DIR.
#
#   scripts/postgres/start.sh /tmp/mgpg 55432
#
# The Go tests do not need this script: internal/pgtest does the same
# from Go. As root, the server runs as the postgres user (initdb and
# postgres refuse root), so DIR and its parents must be reachable by it.
set -eu

dir=${1:?usage: start.sh DIR [PORT]}
port=${2:-55432}
bin=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

[ -x "$bin/initdb" ] || { echo "start.sh: $bin/initdb missing: apt-get install postgresql-15" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
as=""
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
	chmod 700 "$dir"
	as="runuser -u postgres --"
fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
	$as "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-instructions >/dev/null
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
CONF
fi

$as "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 -o "-p $port" start >/dev/null
echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
