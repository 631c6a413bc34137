# Sourced by scripts/release.sh and scripts/image.sh (with $root set to the
# checkout): sets $version, $commit and $ldflags for a stamped build.
# GOFLAGS may hold -buildvcs=false (it does on the CI machine), so Go's own
# VCS stamp cannot be relied on: the commit goes in with -X like
# scripts/mailgate does.
#
#   version  $MAILGATE_VERSION, else `git describe --tags --match 'v*'`, else
#            dev-<12 hex digits of the commit>
#   commit   git rev-parse HEAD, +dirty when tracked files changed; unknown
#            outside a git checkout
app_pkg=github.com/mailgate/mailgate/internal/app
commit=unknown
if c=$(git -C "$root" rev-parse HEAD 2>/dev/null); then
	commit=$c
	if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		commit="$commit+dirty"
	fi
fi
version=${MAILGATE_VERSION:-}
if [ -z "$version" ]; then
	version=$(git -C "$root" describe --tags --match 'v*' 2>/dev/null || echo "dev-${commit:0:12}")
fi
case $version in
*[!A-Za-z0-9._-]*) echo "version $version: only letters, digits, '.', '_' and '-' (it names files and an image tag)" >&2; exit 2 ;;
esac
ldflags="-s -w -X $app_pkg.Version=$version -X $app_pkg.Commit=$commit"
