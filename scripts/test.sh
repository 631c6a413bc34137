#!/usr/bin/env bash
# The whole test suite: the README's second command, and what CI runs
# (.ci/run). Installs what is missing (Debian packages as root, Go from the
# module proxy), then: gofmt, go vet, every test with the race detector in
# shuffled order against real servers (Dovecot, PostgreSQL, Postfix, Chromium,
# MSAL), and a short run of every fuzz target.
#
#   scripts/test.sh              everything
#   FUZZTIME=30s scripts/test.sh longer fuzzing
#   scripts/test.sh -run TestX ./internal/oauth/   extra args go to 'go test'
set -euo pipefail
cd "$(dirname "$0")/.."

GO=$(scripts/install-deps.sh --print-go)
export PATH="$(dirname "$GO"):$PATH"
export GOTOOLCHAIN=local
# tests that need a real server fail, not skip, when it is missing
export MAILGATE_REQUIRE_INTEGRATION=1
FUZZTIME=${FUZZTIME:-4s}

step() { printf '\n== %s\n' "$*" >&2; }

if [ $# -gt 0 ]; then
	step "go test $*"
	exec go test -race -shuffle=on "$@"
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2; echo "$unformatted" >&2; exit 1
fi

step "go vet"
go vet ./...

step "go build (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/mailgate

step "go test -race -shuffle=on ./..."
go test -race -shuffle=on -timeout 25m ./...

step "fuzz (each target for $FUZZTIME)"
# every 'func FuzzXxx(' in a _test.go file, run from its package directory
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	dir=$(dirname "$f")
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "fuzz $dir $fn" >&2
		# one worker: the fuzz coordinator on a loaded 2-core machine
		# sometimes gives up on a busy worker ("context deadline exceeded");
		# that one infrastructure error is retried once, a finding never is
		# (a finding writes its input under testdata/fuzz and fails again)
		for attempt in 1 2; do
			if out=$(go test -run='^$' -fuzz="^$fn\$" -fuzztime="$FUZZTIME" -parallel=1 "$dir" 2>&1); then
				break
			fi
			if [ "$attempt" = 1 ] && echo "$out" | grep -q "context deadline exceeded" && ! echo "$out" | grep -q "Failing input written"; then
				echo "fuzz $fn: coordinator timeout, retrying once" >&2
				continue
			fi
			echo "$out" >&2
			exit 1
		done
	done
done

step "all tests passed"
