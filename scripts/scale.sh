#!/usr/bin/env bash
# Scale check: many receivers waiting on local NATS servers.
#
#   scripts/scale.sh                 5000 simulated receivers, 2000 as a burst, 300 real processes, one server
#   N=1000 BURST=500 PROCS=50 scripts/scale.sh    smaller
#   SERVERS=3 N=1500 scripts/scale.sh             a three-node cluster, the stream at replicas 3,
#                                                 receivers spread over the servers
#   LEAFS=2 N=1000 scripts/scale.sh               a hub and 2 leaf nodes, each leaf its own JetStream
#                                                 domain with a mirror of the hub's stream; receivers
#                                                 on the leafs, the sender on the hub
#   IDLE=60 N=1000 scripts/scale.sh               only the idle cost: N receivers wait 60 s, and the
#                                                 servers' CPU meanwhile is printed (HEARTBEAT=5s to
#                                                 set the receivers' heartbeat)
#   IDLE=60 PROF=/tmp/server.pprof N=5000 ...     also save the (first) server's CPU profile of
#                                                 the idle time (go tool pprof -top FILE)
#   TIMEOUT=2m                                    bound for each load tool run
#
# The simulated receivers run inside one process (integration/loadtest)
# through the same client code the remaphore command uses, each with its
# own connection and consumer; the real ones are remaphore processes.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-5000}
BURST=${BURST:-2000}
PROCS=${PROCS:-300}
SERVERS=${SERVERS:-1}
LEAFS=${LEAFS:-0}
IDLE=${IDLE:-0}
HEARTBEAT=${HEARTBEAT:-}
PROF=${PROF:-}
TIMEOUT=${TIMEOUT:-2m}
if [ "$SERVERS" -gt 1 ] && [ "$LEAFS" -gt 0 ]; then
	echo "scale.sh: SERVERS=$SERVERS and LEAFS=$LEAFS: choose one topology (a cluster, or a hub with leaf nodes)" >&2
	exit 2
fi

# Descriptors: each waiting receiver holds one in the load tool (all of
# them) and one in the server it is connected to. The servers inherit this
# shell's limit; raise the soft limit to the hard one first.
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || true
fdlim=$(ulimit -n)
spread=$((LEAFS > 0 ? LEAFS : SERVERS)) # servers the receivers spread over
if [ "$fdlim" = unlimited ]; then
	allowed=unlimited
else
	# 64 for the processes' own files (binaries, JetStream files, sockets).
	allowed=$((fdlim - 64))
fi
echo "descriptor limit (ulimit -n): soft $soft, hard $hard, used $fdlim: the load tool holds one per receiver (all $N), each server one per receiver it serves (about $(((N + spread - 1) / spread))): N up to $allowed here"
for want in "$N" "$BURST"; do
	if [ "$allowed" != unlimited ] && [ "$want" -gt "$allowed" ]; then
		echo "scale.sh: warning: $want receivers need more descriptors than ulimit -n $fdlim allows (N up to $allowed): the run will stop at the limit; raise it with ulimit -n (hard limit: /etc/security/limits.conf, LimitNOFILE= for a service)" >&2
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/remaphore-scale.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	pkill -P $$ 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/remaphore" ./cmd/remaphore
go build -o "$tmp/loadtest" ./integration/loadtest
go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2
go build -o "$tmp/nk" github.com/nats-io/nkeys/nk

"$tmp/nk" -gen user -pubout > "$tmp/user.txt"
sed -n 1p "$tmp/user.txt" > "$tmp/user.nk"
chmod 600 "$tmp/user.nk"
leafpw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
base=$((20000 + RANDOM % 20000))
# Server i (0-based) listens on base+10i, monitors on +1, routes on +2,
# takes leaf connections on +3. With LEAFS, server 0 is the hub.
nservers=$((LEAFS > 0 ? LEAFS + 1 : SERVERS))
port() { echo $((base + 10 * $1 + ${2:-0})); }
for i in $(seq 0 $((nservers - 1))); do
	{
		echo "server_name: n$i"
		echo "listen: 127.0.0.1:$(port "$i")"
		echo "http: 127.0.0.1:$(port "$i" 1)"
		echo "max_payload: 2MB"
		if [ -n "$PROF" ] && [ "$i" -eq 0 ]; then echo "prof_port: $(port 0 4)"; fi
		echo "authorization { users = [ { nkey: $(sed -n 2p "$tmp/user.txt") } ] }"
		if [ "$LEAFS" -gt 0 ] && [ "$i" -eq 0 ]; then
			echo "jetstream { store_dir: \"$tmp/js$i\", domain: hub }"
			echo "leafnodes { listen: 127.0.0.1:$(port 0 3), authorization { user: leaf, password: $leafpw } }"
		elif [ "$LEAFS" -gt 0 ]; then
			echo "jetstream { store_dir: \"$tmp/js$i\", domain: leaf$i }"
			echo "leafnodes { remotes = [ { url: \"nats-leaf://leaf:$leafpw@127.0.0.1:$(port 0 3)\" } ] }"
		else
			echo "jetstream { store_dir: \"$tmp/js$i\" }"
			if [ "$SERVERS" -gt 1 ]; then
				routes=$(for j in $(seq 0 $((SERVERS - 1))); do if [ "$j" -ne "$i" ]; then printf 'nats-route://127.0.0.1:%s, ' "$(port "$j" 2)"; fi; done)
				echo "cluster { name: scale, listen: 127.0.0.1:$(port "$i" 2), routes: [ ${routes%, } ] }"
			fi
		fi
	} > "$tmp/nats$i.conf"
done
url() { echo "nats://127.0.0.1:$(port "$1")"; }
list() { local IFS=,; echo "$*"; }
hubs=() leafs=() monitors=()
for i in $(seq 0 $((nservers - 1))); do
	monitors+=("http://127.0.0.1:$(port "$i" 1)")
	if [ "$LEAFS" -gt 0 ] && [ "$i" -gt 0 ]; then leafs+=("$(url "$i")"); else hubs+=("$(url "$i")"); fi
done
replicas=$((SERVERS >= 3 ? 3 : 1))

# Each phase gets fresh servers, so its memory figures are its own.
start_servers() {
	pids=()
	for i in $(seq 0 $((nservers - 1))); do
		rm -rf "$tmp/js$i"
		"$tmp/nats-server" -c "$tmp/nats$i.conf" > "$tmp/nats$i.log" 2>&1 &
		pids+=($!)
	done
	# The monitoring port answers before the client port listens: wait
	# for both, and for JetStream.
	for i in $(seq 0 $((nservers - 1))); do
		local up=
		for _ in $(seq 300); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$(port "$i")") 2>/dev/null &&
				curl -sf "http://127.0.0.1:$(port "$i" 1)/healthz?js-enabled-only=true" > /dev/null 2>&1; then
				up=1
				break
			fi
			sleep 0.1
		done
		if [ -z "$up" ]; then
			echo "scale.sh: server $i (127.0.0.1:$(port "$i")) not ready after 30 s; its log:" >&2
			tail -20 "$tmp/nats$i.log" >&2
			exit 3
		fi
	done
	if [ "$LEAFS" -gt 0 ]; then
		for _ in $(seq 200); do
			[ "$(curl -s "http://127.0.0.1:$(port 0 1)/leafz" | grep -o '"leafnodes": *[0-9]*' | grep -o '[0-9]*$')" = "$LEAFS" ] && break
			sleep 0.1
		done
	fi
}
stop_servers() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
start_servers
topology="one server"
[ "$SERVERS" -gt 1 ] && topology="a cluster of $SERVERS servers, stream replicas $replicas"
[ "$LEAFS" -gt 0 ] && topology="a hub and $LEAFS leaf nodes (domains hub, leaf1..leaf$LEAFS), receivers on the leafs' mirrors"
echo "nats-server $("$tmp/nats-server" --version): $topology; $(list "${hubs[@]}" "${leafs[@]}"); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

lt() {
	local extra=()
	[ "$LEAFS" -gt 0 ] && extra+=(-leafs "$(list "${leafs[@]}")")
	[ -n "$HEARTBEAT" ] && extra+=(-heartbeat "$HEARTBEAT")
	"$tmp/loadtest" -server "$(list "${hubs[@]}")" -replicas "$replicas" -creds "$tmp/user.nk" \
		-monitor "$(list "${monitors[@]}")" -server-pids "$(list "${pids[@]}")" -remaphore "$tmp/remaphore" \
		-timeout "$TIMEOUT" "${extra[@]}" "$@"
}
status=0
# After a failed run: what the servers said about their descriptors.
server_fds() {
	local n
	n=$(cat "$tmp"/nats*.log | grep -c 'too many open files' || true)
	[ "$n" -gt 0 ] && echo "  the servers logged 'too many open files' $n times (ulimit -n $fdlim)"
	return 0
}
if [ "$IDLE" -gt 0 ]; then
	echo; echo "== idle cost: $N simulated receivers waiting ${IDLE}s (heartbeat ${HEARTBEAT:-default})"
	prof=()
	[ -n "$PROF" ] && prof=(-pprof "http://127.0.0.1:$(port 0 4)" -pprof-out "$PROF")
	lt -n "$N" -idle "${IDLE}s" -core=false "${prof[@]}" || { status=1; server_fds; }
	exit $status
fi
echo; echo "== $N simulated receivers"
lt -n "$N" || { status=1; server_fds; }
stop_servers; start_servers
echo; echo "== $BURST simulated receivers started within one second"
lt -n "$BURST" -burst || { status=1; server_fds; }

echo; echo "== $PROCS real remaphore processes, one send"
"$tmp/remaphore" -C | grep -v '^server: ' | sed -e "s#^credentials: .*#credentials: $tmp/user.nk#" > "$tmp/template.conf"
# Process i's config: its place in the topology first (as the simulated
# receivers: the i-th server of the cluster first, or the i-th leaf with
# its mirror, which the burst phase created). One key for all: the sender
# is its own peer.
conf() { # conf FILE SERVER... [STREAM]
	local f=$1 head="" s
	shift
	for s in "$@"; do
		if [ "${s#nats://}" != "$s" ]; then head+="server: $s"$'\n'; else head+="stream: $s"$'\n'; fi
	done
	head+="replicas: $replicas"$'\n'
	{ printf '%s' "$head"; cat "$tmp/template.conf"; } > "$f"
	chmod 600 "$f"
}
conf "$tmp/s.conf" "${hubs[@]}"
confs=()
if [ "$LEAFS" -gt 0 ]; then
	for l in "${leafs[@]}"; do confs+=("$tmp/r${#confs[@]}.conf"); conf "${confs[-1]}" "$l" REMAPHORE_LEAF; done
else
	for i in "${!hubs[@]}"; do confs+=("$tmp/r$i.conf"); conf "${confs[-1]}" "${hubs[@]:$i}" "${hubs[@]:0:$i}"; done
fi
mkdir -p "$tmp/procs"
start=$(date +%s.%N)
ppids=()
for i in $(seq "$PROCS"); do
	( "$tmp/remaphore" -c "${confs[$((i % ${#confs[@]}))]}" -log info -u scale -t 120s 2> "$tmp/procs/$i.err"; echo $? > "$tmp/procs/$i.rc" ) &
	ppids+=($!)
done
ready=0
for _ in $(seq 1200); do
	ready=$({ grep -l 'msg=ready' "$tmp"/procs/*.err 2>/dev/null || true; } | wc -l)
	[ "$ready" -ge "$PROCS" ] && break
	sleep 0.1
done
echo "  ready: $ready/$PROCS in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"
peak=0
for p in $(pgrep -f "$tmp/remaphore -c $tmp/r"); do
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
	if [ "${hwm:-0}" -gt "$peak" ]; then peak=$hwm; fi
done
sent=$(date +%s.%N)
"$tmp/remaphore" -c "$tmp/s.conf" -s -u scale
wait "${ppids[@]}" || true
echo "  all exited $(awk -v a="$sent" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s after the send"
ok=$({ grep -l '^0$' "$tmp"/procs/*.rc || true; } | wc -l)
echo "  exit 0: $ok/$PROCS; peak RSS of one waiting receiver: $((peak / 1024)) MiB ($peak KiB)"
[ "$ok" -eq "$PROCS" ] || { status=1; grep -h . "$tmp"/procs/*.err | grep -v 'level=INFO' | sort | uniq -c | head; }
left=0
for m in "${monitors[@]}"; do
	c=$(curl -s "$m/jsz" 2>/dev/null | grep -o '"consumers": *[0-9]*' | head -1 | grep -o '[0-9]*$' || echo 0)
	left=$((left + ${c:-0}))
done
echo; echo "server consumers left: $left; load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$status" -eq 0 ] || echo "scale.sh: FAILED: not every receiver accepted the send (see the final lines above)" >&2
exit $status
