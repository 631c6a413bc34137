#!/usr/bin/env bash
# Installs what the test suite needs on a Debian 12 machine, when it is missing:
# the Debian packages (as root, with apt-get) and, if no Go 1.26 is found, the Go
# toolchain from the Go module proxy. Prints what it did; changes nothing that
# is already there.
#
#   scripts/install-deps.sh             Debian packages and Go
#   scripts/install-deps.sh --print-go  the same, then print the go binary's path
#   scripts/install-deps.sh --go-only   only Go (what scripts/mailgate needs); prints its path
set -euo pipefail
mode=${1:-}

GO_VERSION=1.26.8
PACKAGES=(
	# the real mail server the agents and senders are tested against
	dovecot-core dovecot-imapd dovecot-pop3d dovecot-submissiond dovecot-lmtpd
	# Dovecot's Lua passdb asks the emulator whether a token may open a mailbox
	dovecot-auth-lua
	# relays what Dovecot's submission service accepts back into the mailbox
	postfix
	# the store's second dialect
	postgresql
	# the independent client that cross-checks the Entra ID emulator
	python3 python3-msal
	# the console's browser tests
	chromium
	# peers the benchmarks compare against
	msmtp getmail6 fetchmail
	# the container image is built and run with podman (runc: crun's default
	# rlimits are refused in some sandboxes); the systemd unit is checked
	# with systemd-analyze verify
	podman runc uidmap slirp4netns systemd
	# used by the harness scripts
	curl openssl ca-certificates unzip procps
)

if [ "$mode" = --go-only ]; then
	PACKAGES=(curl unzip ca-certificates)
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "install-deps: installing ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		# Postfix asks how to configure itself; the tests run their own instance.
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		apt-get update -q >&2
		# policy-rc.d may forbid starting system daemons; the tests start their own
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
	else
		echo "install-deps: missing Debian packages: ${missing[*]}" >&2
		echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
	fi
fi

# Go: use the one on PATH or in /usr/local/go if it is new enough, else fetch
# the official toolchain zip from the Go module proxy (the same bytes
# 'go install golang.org/toolchain@…' would use).
have_go() {
	local g=$1
	[ -x "$g" ] || return 1
	local v
	v=$("$g" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	[ "$(printf '%s\n' 1.26 "$v" | sort -V | head -n1)" = 1.26 ]
}
gobin=""
for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go "$HOME/.cache/mailgate/go$GO_VERSION/go/bin/go"; do
	if [ -n "$g" ] && have_go "$g"; then gobin=$g; break; fi
done
if [ -z "$gobin" ]; then
	dir="$HOME/.cache/mailgate/go$GO_VERSION"
	proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%,*}
	echo "install-deps: fetching Go $GO_VERSION from $proxy" >&2
	mkdir -p "$dir"
	curl -fsSL -o "$dir/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$(dpkg --print-architecture).zip"
	(cd "$dir" && unzip -q -o go.zip && rm go.zip)
	# the zip holds golang.org/toolchain@…/ ; give it a stable name
	mv "$dir"/golang.org/toolchain@*/ "$dir/go" && rm -rf "$dir/golang.org"
	chmod +x "$dir/go/bin/"* "$dir/go/pkg/tool/"*/* 2>/dev/null || true
	gobin="$dir/go/bin/go"
fi
if [ "$mode" = --print-go ] || [ "$mode" = --go-only ]; then
	echo "$gobin"
fi
