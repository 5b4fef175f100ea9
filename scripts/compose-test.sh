#!/usr/bin/env bash
# The Docker Compose harness (integration/compose/README.md): checks what it
# needs, then runs the Go test that builds the stack, runs the scenarios and
# tears it down.
#
#   scripts/compose-test.sh                   every scenario
#   scripts/compose-test.sh SCENARIO...       only these (handoff request nats-failover
#                                             network-cut auditor-restart intruder)
#   KEEP=1 scripts/compose-test.sh            leave the stack and integration/compose/gen/ up
#
# Exit 0 when every scenario passed, 1 when one failed or the stack could not
# start (go test's), 2 when a prerequisite is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { printf 'compose-test: error: %s\n' "$*" >&2; exit 2; }

command -v go >/dev/null || die "go is not installed"
docker info >/dev/null 2>&1 || die "no Docker engine answers 'docker info'"
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null ||
	die "neither 'docker compose' nor 'docker-compose' is installed"
# The images' shell: Debian's busybox is dynamically linked and cannot run in
# a FROM scratch image; busybox-static replaces it.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || die "/bin/busybox is missing or not static: install Debian's busybox-static (apt-get install busybox-static)"
	echo "compose-test: installing busybox-static (a static /bin/busybox for the images' shell)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt_log=$(mktemp)
	{ apt-get install -y busybox-static || { apt-get update && apt-get install -y busybox-static; }; } >"$apt_log" 2>&1 ||
		die "apt-get install busybox-static failed; see $apt_log"
	rm -f "$apt_log"
fi

args=()
[ $# -eq 0 ] || args=(-args -scenarios "$(IFS=,; echo "$*")")
exec go test -tags compose -count=1 -timeout 15m -v ./integration/compose/ "${args[@]}"
