#!/usr/bin/env bash
# Cross-builds mailgate's release binaries from this checkout into dist/:
# static (CGO_ENABLED=0), -trimpath, stamped with the version and the commit
# (scripts/buildinfo.sh), one per platform, named mailgate-VERSION-OS-ARCH,
# plus SHA256SUMS (check with `sha256sum -c SHA256SUMS` in dist/) and
# CHANGELOG-VERSION.md, the release notes: CHANGELOG.md's "Unreleased"
# section (or the section of VERSION once it has been renamed) under the
# version's heading.
#
#   scripts/release.sh                        every platform, version from git describe
#   MAILGATE_VERSION=v1.2.0 scripts/release.sh
#   PLATFORMS="linux/amd64 darwin/arm64" scripts/release.sh
#   DIST=/tmp/out scripts/release.sh          another output directory
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
DIST=${DIST:-$root/dist}
GO=$("$root/scripts/install-deps.sh" --go-only)
# shellcheck source=scripts/buildinfo.sh
. "$root/scripts/buildinfo.sh"

mkdir -p "$DIST"
files=()
for p in $PLATFORMS; do
	os=${p%/*} arch=${p#*/}
	out=mailgate-$version-$os-$arch
	echo "release: $out" >&2
	(cd "$root" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOTOOLCHAIN=local "$GO" build -trimpath -ldflags "$ldflags" -o "$DIST/$out" ./cmd/mailgate)
	files+=("$out")
done
(cd "$DIST" && sha256sum "${files[@]}" >SHA256SUMS)

# the release notes: the version's section of CHANGELOG.md, else Unreleased
notes=$DIST/CHANGELOG-$version.md
awk -v v="$version" -v date="$(date -u +%Y-%m-%d)" '
	/^## \[/ {
		name = $2; gsub(/[\[\]]/, "", name)
		if (found) exit
		if (name == v) { found = 1; print; next }
		if (name == "Unreleased" && !unrel) { unrel = 1; keep = 1; buf = "## [" v "] - " date "\n"; next }
		keep = 0
		next
	}
	found { print; next }
	keep { buf = buf $0 "\n" }
	END { if (!found) printf "%s", buf }
' "$root/CHANGELOG.md" >"$notes"
if ! grep -q '^## \[' "$notes"; then
	echo "release: CHANGELOG.md has neither a [$version] nor an [Unreleased] section" >&2
	exit 1
fi
echo "release: $version (commit $commit) in $DIST: ${files[*]} SHA256SUMS $(basename "$notes")" >&2
cat "$notes"
