#!/usr/bin/env bash
# Scale check: many receivers waiting on one local NATS server.
#
#   scripts/scale.sh                 5000 simulated receivers, 2000 as a burst, 300 real processes
#   N=1000 BURST=500 PROCS=50 scripts/scale.sh    smaller
#
# The simulated receivers run inside one process (integration/loadtest)
# through the same client code the remaphore command uses, each with its
# own connection and consumer; the real ones are remaphore processes.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-5000}
BURST=${BURST:-2000}
PROCS=${PROCS:-300}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d "${TMPDIR:-/tmp}/remaphore-scale.XXXXXX")
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
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
port=$((20000 + RANDOM % 20000))
mport=$((port + 1))
cat > "$tmp/nats.conf" <<CONF
listen: 127.0.0.1:$port
http: 127.0.0.1:$mport
max_payload: 2MB
jetstream { store_dir: "$tmp/js" }
authorization { users = [ { nkey: $(sed -n 2p "$tmp/user.txt") } ] }
CONF
# Each phase gets a fresh server, so its memory figures are its own.
start_server() {
	rm -rf "$tmp/js"
	"$tmp/nats-server" -c "$tmp/nats.conf" > "$tmp/nats.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}
stop_server() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}
start_server
echo "nats-server $("$tmp/nats-server" --version) on 127.0.0.1:$port, fd limit $(ulimit -n), $(nproc) cores"

lt() { "$tmp/loadtest" -server "nats://127.0.0.1:$port" -creds "$tmp/user.nk" -monitor "http://127.0.0.1:$mport" -remaphore "$tmp/remaphore" "$@"; }
status=0
echo; echo "== $N simulated receivers"
lt -n "$N" || status=1
stop_server; start_server
echo; echo "== $BURST simulated receivers started within one second"
lt -n "$BURST" -burst || status=1
stop_server; start_server

echo; echo "== $PROCS real remaphore processes, one send"
key=$("$tmp/remaphore" -C | sed -n 's/^default_identity: //p')
"$tmp/remaphore" -C | sed -e "s#^server: .*#server: nats://127.0.0.1:$port#" -e "s#^credentials: .*#credentials: $tmp/user.nk#" > "$tmp/r.conf"
chmod 600 "$tmp/r.conf"
mkdir -p "$tmp/procs"
start=$(date +%s.%N)
pids=()
for i in $(seq "$PROCS"); do
	( "$tmp/remaphore" -c "$tmp/r.conf" -log info -u scale -t 120s 2> "$tmp/procs/$i.err"; echo $? > "$tmp/procs/$i.rc" ) &
	pids+=($!)
done
for _ in $(seq 1200); do
	ready=$({ grep -l 'msg=ready' "$tmp"/procs/*.err 2>/dev/null || true; } | wc -l)
	[ "$ready" -ge "$PROCS" ] && break
	sleep 0.1
done
echo "  ready: $ready/$PROCS in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"
peak=0
for p in $(pgrep -f "$tmp/remaphore -c $tmp/r.conf"); do
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
	if [ "${hwm:-0}" -gt "$peak" ]; then peak=$hwm; fi
done
sent=$(date +%s.%N)
"$tmp/remaphore" -c "$tmp/r.conf" -s -u scale
wait "${pids[@]}" || true
echo "  all exited $(awk -v a="$sent" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s after the send"
ok=$({ grep -l '^0$' "$tmp"/procs/*.rc || true; } | wc -l)
echo "  exit 0: $ok/$PROCS; peak RSS of one waiting receiver: $((peak / 1024)) MiB ($peak KiB)"
[ "$ok" -eq "$PROCS" ] || { status=1; grep -h . "$tmp"/procs/*.err | grep -v 'level=INFO' | sort | uniq -c | head; }
echo; echo "server consumers left: $(curl -s "http://127.0.0.1:$mport/jsz?consumers=true" 2>/dev/null | grep -o '"consumers": *[0-9]*' | head -1 || echo unknown)"
exit $status
