#!/usr/bin/env bash
# Builds the remaphore packages with nfpm (pinned as a tool in go.mod):
#
#   scripts/package.sh VERSION
#
# writes dist/remaphore_VERSION_ARCH.deb and dist/remaphore-VERSION-1.ARCH.rpm
# (nfpm's names) for amd64 and arm64. ARCHS="amd64" and FORMATS="deb" pick
# fewer (CI builds the amd64 .deb only). The binaries are static
# (CGO_ENABLED=0), built with -trimpath; see deploy/nfpm.yaml for the
# package's contents.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/package.sh VERSION   (for example 1.2.0; a leading v is dropped)" >&2; exit 2; }
[ $# -eq 1 ] || usage
VERSION=${1#v}
# Both formats accept these characters; rpm refuses '-' in a version and
# dpkg wants a leading digit.
if ! [[ $VERSION =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
	echo "package.sh: version '$1' is not a package version: digits first, then letters, digits, '.', '+' or '~' (no '-')" >&2
	exit 2
fi
ARCHS=${ARCHS:-amd64 arm64}
FORMATS=${FORMATS:-deb rpm}

export CGO_ENABLED=0
# The VCS revision goes into the build info when the tree is a git checkout.
buildvcs=auto
# The package version for `-version`. internal/version reads the build info;
# the linker sets this variable when the package exists and has it, and
# ignores -X for a variable that does not exist.
ldflags="-s -w -X github.com/remaphore/remaphore/internal/version.Package=$VERSION"

NFPM=dist/build/nfpm
mkdir -p dist/build
go build -o "$NFPM" github.com/goreleaser/nfpm/v2/cmd/nfpm

# Reproducible: the changelog's date, and the files' times in the packages
# (nfpm reads SOURCE_DATE_EPOCH), are the commit's when there is one.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# deploy/nfpm.yaml takes the built files from dist/build/stage (nfpm does
# not expand variables in file paths): the loop below fills it per arch.
stage=dist/build/stage
rm -rf "$stage"
mkdir -p "$stage"
{
	echo "remaphore ($VERSION) unstable; urgency=medium"
	echo
	echo "  * Package of remaphore $VERSION; see the project's git history."
	echo
	echo " -- remaphore maintainers <maintainers@users.noreply.r-seed-fe73a5a3.example>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -n -9 >"$stage/changelog.gz"

# The host's own build of the binaries, for what the packages hold of their
# output: the example config and the manual pages.
host=dist/build/host
mkdir -p "$host"
go build -o "$host/remaphore" ./cmd/remaphore
go build -o "$host/remaphore-audit" ./cmd/remaphore-audit

# The example in the docs is remaphore -C's own, its keys replaced: a key in
# the package would be the same on every host. postinst writes the host's
# config with a fresh key.
"$host/remaphore" -C |
	sed -E 's/\<[1-9A-HJ-NP-Za-km-z]{80,90}\>/PRIVATEKEY/g; s/\<[1-9A-HJ-NP-Za-km-z]{40,46}\>/PUBLICKEY/g' \
		>"$stage/remaphore.conf.example"
if grep -Eq '[1-9A-HJ-NP-Za-km-z]{40,}' "$stage/remaphore.conf.example"; then
	echo "package.sh: the example config still holds a key; fix the sed above" >&2
	exit 1
fi

# A manual page per binary: its -h text as it is, and where the rest is.
# In roff a backslash is written \e, and a line starting with . or ' needs \&.
manpage() { # name, one-line summary, FILES and SEE ALSO roff
	local name=$1 summary=$2 tail=$3
	{
		echo ".TH ${name^^} 1 \"$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)\" \"$name $VERSION\" \"User Commands\""
		echo ".SH NAME"
		echo "$name \\- $summary"
		echo ".SH SYNOPSIS AND OPTIONS"
		echo ".nf"
		"$host/$name" -h 2>&1 | sed -e 's/\\/\\e/g' -e "s/^[.']/\\\\\&&/"
		echo ".fi"
		echo "$tail"
	} | gzip -n -9 >"$stage/$name.1.gz"
}
manpage remaphore "remote semaphore: signed signals between hosts over NATS JetStream" '.SH FILES
.TP
.I /etc/remaphore/remaphore.conf
the configuration (written with a fresh key when the package is installed)
.SH SEE ALSO
.BR remaphore-audit (1);
the full manual is README.md in the source,
https://github.com/remaphore/remaphore'
manpage remaphore-audit "records every remaphore message in a bbolt database" '.SH FILES
.TP
.I /etc/remaphore/audit.conf
the configuration of the packaged service (example:
.IR /usr/share/doc/remaphore/examples/audit.conf )
.TP
.I /var/lib/remaphore/audit.db
the database of the packaged service
.SH SEE ALSO
.BR remaphore (1),
.BR systemctl (1);
the full manual is cmd/remaphore-audit/README.md in the source,
https://github.com/remaphore/remaphore'

# The maintainer scripts, per format (see deploy/postinst.sh).
for format in deb rpm; do
	invoke=systemctl
	[ "$format" = deb ] && invoke=deb-systemd-invoke
	mkdir -p "$stage/$format"
	for s in postinst prerm postrm; do
		sed "/^[[:space:]]*#/!s/@INVOKE@/$invoke/g" "deploy/$s.sh" >"$stage/$format/$s"
	done
done

for arch in $ARCHS; do
	case $arch in
	amd64 | arm64) ;;
	*) echo "package.sh: ARCHS holds '$arch'; the packages are built for amd64 and arm64" >&2; exit 2 ;;
	esac
	for cmd in remaphore remaphore-audit; do
		GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=$buildvcs -ldflags="$ldflags" \
			-o "$stage/$cmd" "./cmd/$cmd"
	done
	for format in $FORMATS; do
		VERSION=$VERSION ARCH=$arch "$NFPM" package --config deploy/nfpm.yaml \
			--packager "$format" --target dist/
	done
done
ls -l dist/*.deb dist/*.rpm 2>/dev/null || true
