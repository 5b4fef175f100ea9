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
# count (each iteration starts processes); the fan-out (200 processes an
# iteration) and the auditor (a 100,000-message backlog; a flood of 100,000
# from a key that is not a peer with 1,000 peer messages; a 1,000,000-record
# store, built once and cached in $TMPDIR) at a few.
go test -run NONE -bench . -count "$COUNT" -benchmem ./sign/ | tee "$out" >&2
go test -run NONE -bench . -count "$COUNT" ./internal/edverify/ | tee -a "$out" >&2
go test -run NONE -bench 'Send|EndToEnd|Request' -benchtime "$BENCHTIME" -count "$COUNT" ./integration/bench/ | tee -a "$out" >&2
go test -run NONE -bench 'Fanout' -benchtime 2x -count 3 ./integration/bench/ | tee -a "$out" >&2
go test -run NONE -bench 'IngestBacklog|IngestFlood' -benchtime 1x -count 3 -timeout 30m ./audit/ingest/ | tee -a "$out" >&2
go test -run NONE -bench 'QueryUUID|QueryTimePage$|Verify' -benchtime 1x -count 3 -timeout 30m ./audit/ | tee -a "$out" >&2

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# Medians per benchmark and unit, then the ratios the targets are set on.
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) v[name SUBSEP $(i+1)] = v[name SUBSEP $(i+1)] " " $i
}
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function show(x, unit) {
	if (unit == "ns/op") return x >= 1e6 ? sprintf("%.2f ms", x / 1e6) : sprintf("%.1f µs", x / 1e3)
	return sprintf("%.0f %s", x, unit)
}
# row: ours and theirs in the same unit; ratio ours/theirs.
function row(what, ours, theirs, unit, target,   a, b) {
	a = ours SUBSEP unit; b = theirs SUBSEP unit
	if (!(a in m) || !(b in m)) { printf "| %s | %s | %s | n/a | %s |\n", what, (a in m) ? show(m[a], unit) : "-", (b in m) ? show(m[b], unit) : "not run", target; return }
	printf "| %s | %s | %s | %.2f | %s |\n", what, show(m[a], unit), show(m[b], unit), m[a] / m[b], target
}
# one: a single figure against an absolute target.
function one(what, name, unit, target, scale, shown,   a) {
	a = name SUBSEP unit
	printf "| %s | %s | | | %s |\n", what, (a in m) ? sprintf("%.2f %s", m[a] * scale, shown) : "not run", target
}
END {
	for (k in v) m[k] = median(v[k])
	print "| comparison | ours (median) | theirs (median) | ratio | target |"
	print "|---|---|---|---|---|"
	row("remaphore -s vs minimal Go JetStream publisher", "BenchmarkSend/remaphore", "BenchmarkSend/minpub", "ns/op", "<= 1.3")
	row("remaphore -s vs nats pub --jetstream", "BenchmarkSend/remaphore", "BenchmarkSend/natscli", "ns/op", "<= 0.4")
	row("send to exit of waiting receiver vs minimal pub + ordered-consumer waiter", "BenchmarkEndToEnd/remaphore", "BenchmarkEndToEnd/minimal", "ns/op", "<= 1.3")
	row("send to exit of waiting receiver vs nats pub + nats sub --count 1", "BenchmarkEndToEnd/remaphore", "BenchmarkEndToEnd/natscli", "ns/op", "<= 0.6")
	row("one send to 200 waiting receivers until the last exited vs 200 nats sub --count 1", "BenchmarkFanout/remaphore", "BenchmarkFanout/natscli", "ns/op", "<= 1.5")
	one("peak memory of one waiting receiver (VmHWM)", "BenchmarkFanout/remaphore", "peak-MiB/receiver", "<= 15 MiB", 1, "MiB")
	row("request to 50 responders until all replied vs nats req --replies 50 + 50 nats reply --command", "BenchmarkRequest/remaphore", "BenchmarkRequest/natscli", "ns/op", "<= 1.5")
	row("Seal, 64 B payload vs bare ed25519 sign", "BenchmarkSeal/64B", "BenchmarkBareEd25519Sign/64B", "ns/op", "<= 1.2")
	row("Open, 64 B payload vs bare ed25519 verify", "BenchmarkOpen/64B", "BenchmarkBareEd25519Verify/64B", "ns/op", "<= 1.2")
	row("Seal, 4 KiB payload vs bare ed25519 sign", "BenchmarkSeal/4KiB", "BenchmarkBareEd25519Sign/4KiB", "ns/op", "<= 1.2")
	row("Open, 4 KiB payload vs bare ed25519 verify", "BenchmarkOpen/4KiB", "BenchmarkBareEd25519Verify/4KiB", "ns/op", "<= 1.2")
	row("auditor ingest of a backlog vs a bare consumer that fetches and acks (msgs/s)", "BenchmarkIngestBacklog/auditor", "BenchmarkIngestBacklog/bare-ackall", "msgs/s", ">= 0.5 and >= 20000 msgs/s")
	row("auditor ingest of a flood from an unknown key (100,000, with 1,000 peer messages) vs a bare consumer (msgs/s)", "BenchmarkIngestFlood/auditor", "BenchmarkIngestFlood/bare-ackall", "msgs/s", ">= 0.5")
	row("the same flood: CPU per message (the process, its NATS server included), auditor vs bare consumer", "BenchmarkIngestFlood/auditor", "BenchmarkIngestFlood/bare-ackall", "cpu-ns/msg", "reported (<= 2 is the 0.5x above on an idle machine)")
	one("audit query -uuid over 1,000,000 records", "BenchmarkQueryUUID", "ns/op", "< 10 ms", 1e-6, "ms")
	one("audit 100-record time-range page over 1,000,000 records", "BenchmarkQueryTimePage", "ns/op", "< 20 ms", 1e-6, "ms")
	row("warm per-key verifier (internal/edverify) vs crypto/ed25519 verify", "BenchmarkVerify/edverify", "BenchmarkVerify/crypto-ed25519", "ns/op", "reported")
	row("audit verify vs bare ed25519 verify, one CPU (records/s)", "BenchmarkVerify/store", "BenchmarkVerify/bare-ed25519-1cpu", "records/s", "reported")
	row("audit verify vs bare ed25519 verify, all CPUs (records/s)", "BenchmarkVerify/store", "BenchmarkVerify/bare-ed25519-allcpus", "records/s", "reported")
}' "$out"
