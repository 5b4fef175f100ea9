#!/usr/bin/env bash
# The quick start: a real NATS server with JetStream and nkey auth in a
# temporary directory, fresh keys for an uploader and three downloaders,
# the auditor recording every message, and the spec's S3 hand-off, a
# refused verb, a destination filter and a request with every answer, one
# of them failing (exit 4); then what the auditor recorded, and its check
# of every signature. Everything is removed at the end.
#
#   scripts/demo.sh            run it (needs only Go)
#   KEEP=1 scripts/demo.sh     keep the temporary directory to look at
set -euo pipefail

cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/remaphore-demo.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Building remaphore, remaphore-audit and the NATS server (go tool nats-server)"
mkdir -p "$tmp/bin"
go build -o "$tmp/bin/remaphore" ./cmd/remaphore
go build -o "$tmp/bin/remaphore-audit" ./cmd/remaphore-audit
go build -o "$tmp/bin/nats-server" github.com/nats-io/nats-server/v2
go build -o "$tmp/bin/nk" github.com/nats-io/nkeys/nk
export PATH="$tmp/bin:$PATH"

say "Starting nats-server with JetStream and nkey authentication"
nk -gen user -pubout > "$tmp/nats-user.txt"
sed -n 1p "$tmp/nats-user.txt" > "$tmp/nats.nk" # the seed: remaphore's credentials file
chmod 600 "$tmp/nats.nk"
nkey_pub=$(sed -n 2p "$tmp/nats-user.txt")
port=$((20000 + RANDOM % 20000))
cat > "$tmp/nats.conf" <<CONF
listen: 127.0.0.1:$port
jetstream { store_dir: "$tmp/js" }
authorization { users = [ { nkey: $nkey_pub } ] }
CONF
nats-server -c "$tmp/nats.conf" > "$tmp/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "nats-server listening on 127.0.0.1:$port"

say "Writing configs with fresh keys (remaphore -C)"
nodes=(uploader dl-east dl-west dl-paris)
declare -A dest=([uploader]=com.demo.us.uploader [dl-east]=com.demo.us.east [dl-west]=com.demo.us.west [dl-paris]=com.demo.eu.paris)
declare -A pub
for n in "${nodes[@]}"; do
	remaphore -C |
		sed -e "s#^server: .*#server: nats://127.0.0.1:$port#" \
			-e "s#^credentials: .*#credentials: $tmp/nats.nk#" \
			-e "s#^destination: .*#destination: ${dest[$n]}#" \
			-e '/^\[ Peers \]/,$d' > "$tmp/$n.conf"
	chmod 600 "$tmp/$n.conf"
	pub[$n]=$(sed -n 's/^default_identity: //p' "$tmp/$n.conf")
	echo "$n: destination ${dest[$n]}, key ${pub[$n]}"
done
# The uploader may send ping and deploy; the downloaders trust it for ping
# only. The uploader trusts the downloaders' answers to its requests.
sed -i "s/^\(${pub[uploader]} .*\) \[ping\]$/\1 [ping, deploy]/" "$tmp/uploader.conf"
{
	echo "[ Peers ]"
	for n in dl-east dl-west dl-paris; do echo "${dest[$n]} ${pub[$n]} [ping]"; done
} >> "$tmp/uploader.conf"
for n in dl-east dl-west dl-paris; do
	printf '[ Peers ]\n%s %s [ping]\n' "${dest[uploader]}" "${pub[uploader]}" >> "$tmp/$n.conf"
done
echo "--- $tmp/dl-east.conf (without comments):"
grep -v '^#' "$tmp/dl-east.conf" | grep -v '^$' | sed 's/^\([^ ]* \)[^ ]\{60,\} /\1<private key> /'

# The auditor signs nothing: no identities, the four nodes as its peers
# with what each may send, and its database.
{
	printf 'server: nats://127.0.0.1:%s\ncredentials: %s\ndestination: com.demo.audit\naudit_db: %s\n' \
		"$port" "$tmp/nats.nk" "$tmp/audit.db"
	echo "[ Peers ]"
	echo "${dest[uploader]} ${pub[uploader]} [ping, deploy]"
	for n in dl-east dl-west dl-paris; do echo "${dest[$n]} ${pub[$n]} [ping]"; done
} > "$tmp/audit.conf"
chmod 600 "$tmp/audit.conf"

# wait_ready FILE...: until each receiver has logged that it is listening.
wait_ready() {
	for f in "$@"; do
		for _ in $(seq 100); do grep -q 'msg=ready' "$f" 2>/dev/null && break; sleep 0.05; done
	done
}

# start NODE ARGS...: a receiver in the background; its exit code lands in
# $tmp/NODE.rc and its output in $tmp/NODE.out / .err.
start() {
	local n=$1; shift
	: > "$tmp/$n.err"
	( set +e; remaphore -c "$tmp/$n.conf" -log info "$@" > "$tmp/$n.out" 2> "$tmp/$n.err"; echo $? > "$tmp/$n.rc" ) &
	pids+=($!)
}
# results NODE=CODE...: each receiver's exit code and output; the demo
# fails when a code is not the one the step shows.
results() {
	wait "${pids[@]:2}" 2>/dev/null || true
	for nc in "$@"; do
		local n=${nc%=*} want=${nc#*=} got
		got=$(cat "$tmp/$n.rc")
		printf '  %-9s exit %s  %s\n' "$n" "$got" "$(tr '\n' ' ' < "$tmp/$n.out")"
		grep -h 'rejected message' "$tmp/$n.err" | sed 's/^/      log: /' || true
		[ "$got" = "$want" ] || { echo "demo: $n exited $got, expected $want" >&2; exit 1; }
	done
	pids=("${pids[@]:0:2}")
}

say "The auditor: records every message on the stream in its own database"
remaphore-audit run -c "$tmp/audit.conf" -log info > "$tmp/audit.out" 2> "$tmp/audit.err" &
pids+=($!)
wait_ready "$tmp/audit.err"
grep -q 'msg=ready' "$tmp/audit.err" || { echo "demo: the auditor did not start:" >&2; cat "$tmp/audit.err" >&2; exit 1; }
echo "remaphore-audit run -c $tmp/audit.conf (database $tmp/audit.db)"

say "1. The S3 hand-off: three downloaders wait for upload_done"
for n in dl-east dl-west dl-paris; do
	start "$n" -u upload_done -t 30s sh -c 'echo "got $0: $1 (sent by $REMAPHORE_SENDER)"'
done
wait_ready "$tmp"/dl-*.err
run remaphore -c "$tmp/uploader.conf" -s -u upload_done "bigfile is in s3://bucket/"
results dl-east=0 dl-west=0 dl-paris=0

say "2. A verb the downloaders do not allow: deploy is refused (exit 1 at -t)"
for n in dl-east dl-west dl-paris; do start "$n" -o -t 2s; done
wait_ready "$tmp"/dl-*.err
run remaphore -c "$tmp/uploader.conf" -s -v deploy "rm -rf /"
results dl-east=1 dl-west=1 dl-paris=1

say "3. A destination filter: only com.demo.us.* acts"
for n in dl-east dl-west dl-paris; do start "$n" -o -t 2s; done
wait_ready "$tmp"/dl-*.err
run remaphore -c "$tmp/uploader.conf" -s -D 'com.demo.us.*' "US hosts only"
results dl-east=0 dl-west=0 dl-paris=1

say "4. Request and response: every downloader answers with its script's output; paris fails"
for n in dl-east dl-west dl-paris; do
	start "$n" -o -t 10s sh -c 'echo "$REMAPHORE_DESTMATCH is up"; [ "$REMAPHORE_DESTMATCH" != com.demo.eu.paris ] || { echo "disk 91% full"; exit 3; }'
done
wait_ready "$tmp"/dl-*.err
rc=0
run remaphore -c "$tmp/uploader.conf" -r -t 10s -D 'com.demo.**' status || rc=$?
echo "remaphore -r exited $rc: everyone answered, one with a non-zero exit code (4), so"
echo "'remaphore -r status && deploy' would not deploy"
[ "$rc" = 4 ] || { echo "demo: expected exit code 4 from -r, got $rc" >&2; exit 1; }
wait "${pids[@]:2}" 2>/dev/null || true
pids=("${pids[@]:0:2}")

say "5. What the auditor recorded (it lets readers in whenever it has caught up)"
# Every message and reply above: 1 + 1 + 1 sends, 1 request, 3 replies.
for _ in $(seq 100); do
	n=$(remaphore-audit stats -c "$tmp/audit.conf" -json | sed -n 's/^{"accepted":\([0-9]*\),.*/\1/p')
	[ "${n:-0}" -ge 7 ] && break
	sleep 0.1
done
[ "${n:-0}" = 7 ] || { echo "demo: the auditor recorded ${n:-0} accepted messages, expected 7" >&2; exit 1; }
run remaphore-audit query -c "$tmp/audit.conf"
run remaphore-audit verify -c "$tmp/audit.conf"

say "Done. Exit codes: 0 received/all answered 0, 1 timeout/responder missing, 2 usage/config, 3 NATS, 4 script failed/a responder answered non-zero."
