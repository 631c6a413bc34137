#!/usr/bin/env bash
# Builds mailgate's container image from this checkout without any registry:
# stages a build context (a static binary stamped with version and commit,
# Debian's CA certificates and tzdata, /etc/passwd with the mailgate user)
# and builds the Containerfile (FROM scratch) with podman, tagged
# localhost/mailgate:latest and localhost/mailgate:VERSION. Installs podman
# and runc with apt-get when missing (as root), as scripts/test.sh does.
#
#   scripts/image.sh                 podman
#   ENGINE=docker scripts/image.sh   docker (or any engine taking podman's build flags)
#   MAILGATE_VERSION=v1.2.0 scripts/image.sh  the version to stamp and tag (scripts/buildinfo.sh)
#
# Prints the version tag on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${ENGINE:-podman}

if [ "$ENGINE" = podman ] && ! { command -v podman && command -v runc; } >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "image: podman and runc are missing: run as root or sudo apt-get install podman runc uidmap slirp4netns" >&2
		exit 1
	fi
	echo "image: installing podman runc uidmap slirp4netns" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends podman runc uidmap slirp4netns >&2
fi
GO=$("$root/scripts/install-deps.sh" --go-only)
# shellcheck source=scripts/buildinfo.sh
. "$root/scripts/buildinfo.sh"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
rootfs=$ctx/rootfs
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/usr/share" "$rootfs/tmp" "$ctx/state"
chmod 1777 "$rootfs/tmp"
(cd "$root" && CGO_ENABLED=0 GOOS=linux GOTOOLCHAIN=local "$GO" build -trimpath -ldflags "$ldflags" -o "$rootfs/usr/local/bin/mailgate" ./cmd/mailgate)
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
cp -a /usr/share/zoneinfo "$rootfs/usr/share/"
cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
mailgate:x:10001:10001:mailgate:/var/lib/mailgate:/sbin/nologin
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
mailgate:x:10001:
GROUP
cp "$root/Containerfile" "$ctx/Containerfile"

# --format docker: the OCI image format has no HEALTHCHECK
"$ENGINE" build --format docker --layers=false -f "$ctx/Containerfile" \
	-t localhost/mailgate:latest -t "localhost/mailgate:$version" "$ctx" >&2
echo "image: built localhost/mailgate:latest and localhost/mailgate:$version (commit $commit)" >&2
echo "localhost/mailgate:$version"
