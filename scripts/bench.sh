#!/usr/bin/env bash
# Benchmarks, each beside its peer in the same run on the same local NATS
# server (started in-process by the Go benchmarks), printed as a table of
# medians and ratios (ours / theirs).
#
#   scripts/bench.sh             5 repetitions
#   COUNT=10 scripts/bench.sh    more
#
# natscli is installed from the Go module proxy at a pinned version into a
# cache directory, never onto the system.
set -euo pipefail
cd "$(dirname "$0")/.."

NATSCLI_VERSION=v0.5.0
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-20x}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/remaphore-bench
mkdir -p "$cache/bin"
if [ ! -x "$cache/bin/nats-$NATSCLI_VERSION" ]; then
	echo "installing natscli $NATSCLI_VERSION (once) ..." >&2
	GOBIN="$cache/bin" go install "github.com/nats-io/natscli/nats@$NATSCLI_VERSION"
	mv "$cache/bin/nats" "$cache/bin/nats-$NATSCLI_VERSION"
fi
export NATS_CLI="$cache/bin/nats-$NATSCLI_VERSION"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "running benchmarks: -count $COUNT -benchtime $BENCHTIME ..." >&2
# Microbenchmarks at go test's own benchtime; whole-process ones at a fixed
# count (each iteration starts processes).
go test -run NONE -bench . -count "$COUNT" -benchmem ./sign/ | tee "$out" >&2
go test -run NONE -bench . -benchtime "$BENCHTIME" -count "$COUNT" -benchmem ./integration/bench/ | tee -a "$out" >&2

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
echo
# Median ns/op per benchmark, then the ratios the targets are set on.
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 2; i <= NF; i++) if ($(i+1) == "ns/op") { v[name] = v[name] " " $i }
}
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function ms(x) { return sprintf("%.2f ms", x / 1e6) }
function us(x) { return sprintf("%.1f µs", x / 1e3) }
function row(what, ours, theirs, target, unit,   r) {
	if (!(ours in m) || !(theirs in m)) { printf "| %s | %s | %s | n/a | %s |\n", what, (ours in m) ? unit(m[ours]) : "-", (theirs in m) ? unit(m[theirs]) : "-", target; return }
	r = m[ours] / m[theirs]
	printf "| %s | %s | %s | %.2f | %s |\n", what, (unit == "us") ? us(m[ours]) : ms(m[ours]), (unit == "us") ? us(m[theirs]) : ms(m[theirs]), r, target
}
END {
	for (k in v) m[k] = median(v[k])
	print "| comparison | ours (median) | theirs (median) | ratio | target |"
	print "|---|---|---|---|---|"
	row("remaphore -s vs minimal Go JetStream publisher", "BenchmarkSend/remaphore", "BenchmarkSend/minpub", "<= 1.3", "ms")
	row("remaphore -s vs nats pub --jetstream", "BenchmarkSend/remaphore", "BenchmarkSend/natscli", "<= 0.4", "ms")
	row("send to exit of waiting receiver vs minimal pub + ordered-consumer waiter", "BenchmarkEndToEnd/remaphore", "BenchmarkEndToEnd/minimal", "<= 1.3", "ms")
	row("send to exit of waiting receiver vs nats pub + nats sub --count 1", "BenchmarkEndToEnd/remaphore", "BenchmarkEndToEnd/natscli", "<= 0.6", "ms")
	row("request to 50 responders until all replied vs nats req --replies 50 + 50 nats reply --command", "BenchmarkRequest/remaphore", "BenchmarkRequest/natscli", "<= 1.5", "ms")
	row("Seal, 64 B payload vs bare ed25519 sign", "BenchmarkSeal/64B", "BenchmarkBareEd25519Sign/64B", "<= 1.2", "us")
	row("Open, 64 B payload vs bare ed25519 verify", "BenchmarkOpen/64B", "BenchmarkBareEd25519Verify/64B", "<= 1.2", "us")
	row("Seal, 4 KiB payload vs bare ed25519 sign", "BenchmarkSeal/4KiB", "BenchmarkBareEd25519Sign/4KiB", "<= 1.2", "us")
	row("Open, 4 KiB payload vs bare ed25519 verify", "BenchmarkOpen/4KiB", "BenchmarkBareEd25519Verify/4KiB", "<= 1.2", "us")
}' "$out"
