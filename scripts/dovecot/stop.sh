#!/bin/bash
# Stops the Dovecot started by start.sh ROOT: SIGTERM to the master, then
# SIGKILL after 5 seconds.
set -uo pipefail
root=${1:?usage: stop.sh ROOT}
pidfile="$root/run/master.pid"
[ -s "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
kill -TERM "$pid" 2>/dev/null || exit 0
for _ in $(seq 1 50); do
	kill -0 "$pid" 2>/dev/null || exit 0
	sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
pkill -KILL -f "dovecot -c $root/etc/dovecot.conf" 2>/dev/null
exit 0
