#!/usr/bin/env bash
# The Docker Compose harness: a three-node NATS JetStream cluster, the
# auditor, one uploader and three downloaders in containers (docker-compose.yml),
# with fresh keys, and the scenarios that must hold across containers.
#
#   scripts/compose-test.sh                  build, start, run every scenario, tear down
#   scripts/compose-test.sh SCENARIO...      only these (handoff request nats-failover
#                                            network-cut auditor-restart intruder)
#   KEEP=1 scripts/compose-test.sh           leave the stack and integration/compose/gen/
#                                            in place at the end (prints how to remove them)
#
# stdout: one "PASS name" or "FAIL name: why" line per scenario, then
# "N passed, M failed" alone on the last line; progress goes to stderr. Exit
# 1 when a scenario failed, 2 when the harness could not start. The stack is
# always torn down (containers, networks, volumes, images of this run), on
# failure and on ctrl-c too; each run has its own compose project name.
# Needs Go, a Docker engine, and `docker compose` or `docker-compose`.
# See README.md, "The Docker Compose harness".
set -uo pipefail

cd "$(dirname "$0")/.."
root=$PWD
cdir=integration/compose
gen=$cdir/gen  # configs, keys and outputs of this run (git-ignored)
out=$gen/out
all_scenarios=(handoff request nats-failover network-cut auditor-restart intruder)

t0=$(date +%s)
log() { printf '[%3ss] %s\n' "$(($(date +%s) - t0))" "$*" >&2; }
die() {
	printf 'compose-test: error: %s\n' "$*" >&2
	exit 2
}

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=("${all_scenarios[@]}")
for s in "${scenarios[@]}"; do
	[[ " ${all_scenarios[*]} " == *" $s "* ]] || die "unknown scenario $s (the scenarios are: ${all_scenarios[*]})"
done

# One run per checkout at a time: the runs share integration/compose/gen/.
if command -v flock >/dev/null; then
	exec 9<"$root/scripts/compose-test.sh"
	flock -n 9 || die "another scripts/compose-test.sh is running in this checkout"
fi

if docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose_cmd=(docker-compose)
else
	die "neither 'docker compose' nor 'docker-compose' is installed"
fi
docker info >/dev/null 2>&1 || die "no Docker engine answers 'docker info'"

project=remaphore-ct-$(date +%s)-$$
export REMAPHORE_TAG=$project # images of this run: removed at the end
export COMPOSE_PROFILES=test  # the intruder service
compose() { "${compose_cmd[@]}" -p "$project" -f "$root/docker-compose.yml" "$@"; }

stale=$(docker ps -a --filter label=com.docker.compose.project --format '{{.Label "com.docker.compose.project"}}' | grep '^remaphore-ct-' | sort -u)
if [ -n "$stale" ]; then
	log "warning: containers of earlier runs killed before they could clean up: $(echo $stale);" \
		"remove them with: docker rm -f \$(docker ps -aq --filter label=com.docker.compose.project=PROJECT), then docker network prune / docker volume prune as fits"
fi

# ---- teardown: always, once ----------------------------------------------

# The original stdout and stderr: a signal's trap may run while a function's
# output is redirected to a file, and teardown must still print here.
exec 7>&1 8>&2
started=0
current="" # the scenario running now
failed_any=0
passed=0
failed=0
pids=()
teardown() {
	local rc=$?
	exec 1>&7 2>&8
	trap '' INT TERM HUP
	trap - EXIT
	if [ -n "$current" ]; then
		echo "FAIL $current: interrupted (exit $rc)"
		failed=$((failed + 1))
		failed_any=1
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	if [ "$started" = 1 ]; then
		if [ "$failed_any" = 1 ] || [ "$rc" != 0 ]; then collect_logs; fi
		if [ "${KEEP:-}" = 1 ]; then
			log "KEEP=1: the stack is still running; remove it with:"
			log "  REMAPHORE_TAG=$project COMPOSE_PROFILES=test ${compose_cmd[*]} -p $project down -v --remove-orphans --rmi all"
		else
			log "tearing down (down -v --remove-orphans --rmi all)"
			compose down -v --remove-orphans --rmi all -t 5 >"$gen/down.log" 2>&1 ||
				log "warning: compose down failed; see $gen/down.log"
		fi
	fi
	wait 2>/dev/null
	if [ "${KEEP:-}" = 1 ] || [ "$failed_any" = 1 ] || [ "$rc" != 0 ]; then
		[ -d "$gen" ] && log "kept $gen (configs with test keys, outputs in out/, service logs in logs/)"
	else
		rm -rf "$gen" "$cdir/bin"
	fi
	log "done in $(($(date +%s) - t0))s"
	if [ $((passed + failed)) -gt 0 ]; then
		echo "$passed passed, $failed failed"
		[ "$failed" = 0 ] || [ "$rc" != 0 ] || rc=1
	fi
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

collect_logs() {
	mkdir -p "$gen/logs"
	local s
	for s in nats1 nats2 nats3 auditor uploader dl-east dl-west dl-paris intruder; do
		compose logs --no-color -t "$s" >"$gen/logs/$s.log" 2>&1
	done
	log "service logs in $gen/logs/, scenario outputs in $out/; the last lines of each:"
	for s in "$gen"/logs/*.log "$out"/*.err; do
		[ -s "$s" ] || continue
		printf -- '--- %s\n' "$s" >&2
		tail -n 15 "$s" >&2
	done
}

# ---- build -----------------------------------------------------------------

ensure_busybox() {
	# Missing, or Debian's dynamically linked busybox (which cannot run in
	# a FROM scratch image): install busybox-static, which replaces it.
	if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
		[ "$(id -u)" = 0 ] || die "/bin/busybox is missing or not static: install Debian's busybox-static (apt-get install busybox-static)"
		log "installing busybox-static (a static /bin/busybox for the images' shell)"
		export DEBIAN_FRONTEND=noninteractive
		{ apt-get install -y busybox-static || { apt-get update && apt-get install -y busybox-static; }; } \
			>"$cdir/bin/apt.log" 2>&1 || die "apt-get install busybox-static failed; see $cdir/bin/apt.log"
	fi
	if ldd /bin/busybox >/dev/null 2>&1; then
		die "/bin/busybox is dynamically linked and cannot run in a FROM scratch image: install busybox-static"
	fi
	cp /bin/busybox "$cdir/bin/busybox"
}

build() {
	mkdir -p "$cdir/bin"
	log "building remaphore, remaphore-audit and nats-server (static, CGO_ENABLED=0)"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$cdir/bin/" \
		./cmd/remaphore ./cmd/remaphore-audit github.com/nats-io/nats-server/v2 ||
		die "go build failed"
	ensure_busybox
}

# ---- configs and keys --------------------------------------------------------

declare -A dest=(
	[auditor]=com.remaphore.audit
	[uploader]=com.remaphore.us.uploader
	[dl-east]=com.remaphore.us.east
	[dl-west]=com.remaphore.us.west
	[dl-paris]=com.remaphore.eu.paris
	[intruder]=com.remaphore.xx.intruder
)
# Failover order of each node. dl-east and the uploader list nats1 first:
# nats-failover kills nats1 under a waiting dl-east, and the uploader's send
# must then go through another server.
declare -A servers=(
	[auditor]="nats3 nats2 nats1"
	[uploader]="nats1 nats2 nats3"
	[dl-east]="nats1 nats2 nats3"
	[dl-west]="nats2 nats3 nats1"
	[dl-paris]="nats3 nats1 nats2"
	[intruder]="nats2 nats1 nats3"
)
downloaders=(dl-east dl-west dl-paris)
declare -A pub

# Each node's NATS role in the least-privilege layout
# (integration/compose/auth.conf.tmpl): the downloaders only wait and
# answer, so they may not publish a message. The intruder holds the
# credentials of a host that both sends and waits: the most a compromised
# host holds.
declare -A role=(
	[auditor]=AUDITOR
	[uploader]=SENDER
	[dl-east]=RECEIVER
	[dl-west]=RECEIVER
	[dl-paris]=RECEIVER
	[intruder]=SENDER_RECEIVER
)
# The account's consumer cap; the stream's own (max_consumers in every
# config) may not exceed it, or the server refuses to create the stream.
max_consumers=1000

generate() {
	rm -rf "$gen"
	mkdir -p "$out"
	chmod 700 "$gen"
	log "writing configs with fresh keys into $gen (remaphore -C, go tool nk)"
	# One NATS user per node: its seed is that container's credentials
	# file; the servers know only the public keys, each with its role.
	local n nk users=""
	for n in auditor uploader "${downloaders[@]}" intruder; do
		nk=$(go tool nk -gen user -pubout) || die "go tool nk failed"
		sed -n 1p <<<"$nk" >"$gen/$n.nk"
		chmod 600 "$gen/$n.nk"
		users+="      # $n"$'\n'"      { nkey: $(sed -n 2p <<<"$nk"), permissions: \$${role[$n]} }"$'\n'
	done
	awk -v users="${users%$'\n'}" -v maxc="$max_consumers" '
		{ gsub(/@MAX_CONSUMERS@/, maxc); gsub(/@MAX_FILE@/, "10GB"); gsub(/@MAX_CONNECTIONS@/, "100") }
		{ gsub(/@AUDIT_CONSUMER@/, "remaphore-audit") } # its -name (audit.Dockerfile)
		$0 == "@USERS@" { $0 = users }
		{ print }' "$cdir/auth.conf.tmpl" >"$gen/auth.conf"
	local i j routes
	for i in 1 2 3; do
		routes=""
		for j in 1 2 3; do
			[ "$i" = "$j" ] || routes+="    nats://nats$j:6222"$'\n'
		done
		{
			awk -v name="nats$i" -v routes="${routes%$'\n'}" \
				'{ gsub(/@NAME@/, name); if ($0 == "@ROUTES@") $0 = routes; print }' "$cdir/nats.conf.tmpl"
			cat "$gen/auth.conf"
		} >"$gen/nats$i.conf"
	done

	local s srv
	for n in auditor uploader "${downloaders[@]}" intruder; do
		srv=""
		for s in ${servers[$n]}; do srv+="server: nats://$s:4222\\n"; done
		"$cdir/bin/remaphore" -C | sed \
			-e "s#^server: .*#${srv%\\n}#" \
			-e "s#^credentials: .*#credentials: /etc/remaphore/nats.nk#" \
			-e "s#^destination: .*#destination: ${dest[$n]}#" \
			-e "s#^allow_skew: .*#allow_skew: 30s\\nreplicas: 3\\nmax_consumers: $max_consumers#" \
			-e '/^# Nodes that may send to this one/,$d' >"$gen/$n.conf"
		pub[$n]=$(sed -n 's/^default_identity: //p' "$gen/$n.conf")
		[ -n "${pub[$n]}" ] || die "remaphore -C wrote no default_identity"
	done
	# The auditor signs nothing: no private key, only its database.
	sed -i -e '/^default_identity:/d' -e '/^# Local identities/,$d' \
		-e 's#^replicas: 3#replicas: 3\naudit_db: /var/lib/remaphore-audit/audit.db#' "$gen/auditor.conf"

	# Who trusts whom: the downloaders trust the uploader for ping; the
	# uploader trusts the downloaders' answers to its requests; the auditor
	# trusts all four. No one lists the intruder.
	peer() { echo "${dest[$1]} ${pub[$1]} [ping]"; }
	{
		echo "[ Peers ]"
		for n in "${downloaders[@]}"; do peer "$n"; done
	} >>"$gen/uploader.conf"
	for n in "${downloaders[@]}"; do
		printf '[ Peers ]\n%s\n' "$(peer uploader)" >>"$gen/$n.conf"
	done
	{
		echo "[ Peers ]"
		for n in uploader "${downloaders[@]}"; do peer "$n"; done
	} >>"$gen/auditor.conf"
	chmod 600 "$gen"/*.conf
}

# ---- running things in the containers ------------------------------------

declare -A cid
# container_ids SERVICE...: look up the containers' ids.
container_ids() {
	local s
	for s in "$@"; do
		cid[$s]=$(compose ps -q "$s")
		[ -n "${cid[$s]}" ] || die "no container for service $s"
	done
}

# dx SERVICE CMD...: run a command in a service's container.
dx() {
	local s=$1
	shift
	docker exec "${cid[$s]}" "$@"
}

# bg NAME SERVICE ARGS...: remaphore ARGS in SERVICE in the background;
# stdout, stderr and exit code land in $out/NAME.out, .err, .rc.
bg() {
	local name=$1 s=$2
	shift 2
	rm -f "$out/$name.rc"
	(
		docker exec "${cid[$s]}" remaphore -log info "$@" >"$out/$name.out" 2>"$out/$name.err"
		echo $? >"$out/$name.rc"
	) &
	pids+=($!)
}

# wait_ready NAME...: until each background receiver logs that it listens.
wait_ready() {
	local n i
	for n in "$@"; do
		for i in $(seq 200); do
			grep -q 'msg=ready' "$out/$n.err" 2>/dev/null && continue 2
			[ -s "$out/$n.rc" ] && break
			sleep 0.1
		done
		why="$n did not get ready (exit $(cat "$out/$n.rc" 2>/dev/null || echo none)): $(grep -m1 -E 'error|level=WARN' "$out/$n.err" 2>/dev/null)"
		return 1
	done
}

# wait_rc NAME SECONDS: until the background command NAME has exited;
# prints its exit code ("none" when it is still running).
wait_rc() {
	local i
	for i in $(seq $(($2 * 10))); do
		[ -s "$out/$1.rc" ] && break
		sleep 0.1
	done
	cat "$out/$1.rc" 2>/dev/null || echo none
}

# status RC: wait_rc's answer in words.
status() { if [ "$1" = none ]; then echo "was still running at the deadline"; else echo "exited $1"; fi; }

# send NAME SERVICE ARGS...: remaphore ARGS in SERVICE, in the foreground.
send() {
	local name=$1 s=$2
	shift 2
	dx "$s" remaphore "$@" >"$out/$name.out" 2>"$out/$name.err"
	local rc=$?
	[ "$rc" = 0 ] || why="$s: remaphore $* exited $rc: $(grep -m1 '^remaphore: ' "$out/$name.err" || tail -n1 "$out/$name.err")"
	return "$rc"
}

# http SERVER PATH: a NATS server's monitoring endpoint, read from inside
# the network (busybox wget in the uploader's container).
# (busybox 1.35 wget -T crashes: bound it with timeout instead.)
http() { dx uploader timeout 3 wget -q -O - "http://$1:8222$2" 2>/dev/null; }

# healthy SERVER: the server answers /healthz with ok (JetStream current).
healthy() { [[ $(http "$1" /healthz) == *'"ok"'* ]]; }

# count FILE STRING...: how many lines of FILE hold every STRING.
count() {
	local f=$1
	shift
	awk -v pats="$(printf '%s\n' "$@")" \
		'BEGIN { n = split(pats, p, "\n") } { for (i = 1; i <= n; i++) if (!index($0, p[i])) next; c++ } END { print c + 0 }' "$f"
}

# stream_last: the stream's last sequence: the highest any server reports
# (a follower may lag behind the leader).
stream_last() {
	local s v max=""
	for s in nats1 nats2 nats3; do
		v=$(http "$s" '/jsz?streams=true' | tr -d ' \n' | sed -n 's/.*"name":"REMAPHORE"//p' | grep -o '"last_seq":[0-9]*' | head -n1 | cut -d: -f2)
		[ -n "$v" ] && { [ -z "$max" ] || [ "$v" -gt "$max" ]; } && max=$v
	done
	[ -n "$max" ] && echo "$max"
}

# audit CMD ARGS...: remaphore-audit in the auditor's container.
audit() { dx auditor /usr/local/bin/remaphore-audit "$@" -c /etc/remaphore/remaphore.conf; }

# audit_caught_up SECONDS: until the auditor has stored the stream's last
# sequence.
audit_caught_up() {
	local i last seq=""
	for i in $(seq $(($1 * 2))); do
		last=$(stream_last) && seq=$(audit stats -json 2>/dev/null | grep -o '"last_seq":[0-9]*' | head -n1 | cut -d: -f2)
		[ -n "$seq" ] && [ "$seq" = "$last" ] && return 0
		sleep 0.5
	done
	why="the auditor did not catch up in ${1}s: it stored up to seq ${seq:-?}, the stream holds ${last:-?}"
	return 1
}

# ---- the scenarios ---------------------------------------------------------
# Each returns non-zero with $why set when it fails.

# 1. The spec's S3 hand-off: three downloaders wait for upload_done; the
# uploader signals once; each runs its download step.
s_handoff() {
	local d rc
	for d in "${downloaders[@]}"; do
		bg "handoff-$d" "$d" -u upload_done -t 30s sh -c 'echo "$REMAPHORE_DESTMATCH downloads: $1"'
	done
	wait_ready "${downloaders[@]/#/handoff-}" || return 1
	send handoff-send uploader -s -u upload_done "bigfile is in s3://bucket/" || return 1
	for d in "${downloaders[@]}"; do
		rc=$(wait_rc "handoff-$d" 40)
		[ "$rc" = 0 ] || { why="$d $(status "$rc"): $(grep -m1 'rejected\|error' "$out/handoff-$d.err")"; return 1; }
		grep -qx "${dest[$d]} downloads: bigfile is in s3://bucket/" "$out/handoff-$d.out" ||
			{ why="$d ran its script with other input: $(head -c 200 "$out/handoff-$d.out")"; return 1; }
	done
}

# 2. A request from the uploader to every downloader: all three answer,
# three records come back.
s_request() {
	local d rc
	for d in "${downloaders[@]}"; do
		bg "request-$d" "$d" -o -t 30s sh -c 'echo "$REMAPHORE_DESTMATCH is up"'
	done
	wait_ready "${downloaders[@]/#/request-}" || return 1
	send request uploader -r -t 20s -D 'com.remaphore.**' -u status-check status || return 1
	local records
	records=$(grep -c . "$out/request.out")
	[ "$records" = 3 ] || { why="expected 3 records, got $records: $(tr '\n' '|' <"$out/request.out")"; return 1; }
	for d in "${downloaders[@]}"; do
		grep -qx "${dest[$d]},0,${dest[$d]} is up" "$out/request.out" ||
			{ why="no record from $d: $(tr '\n' '|' <"$out/request.out")"; return 1; }
		rc=$(wait_rc "request-$d" 10)
		[ "$rc" = 0 ] || { why="responder $d $(status "$rc")"; return 1; }
	done
}

# 3. The server a waiting downloader is connected to dies: the downloader
# fails over, the send goes through another server, the downloader gets it.
s_nats_failover() {
	bg failover dl-east -u failover -t 90s sh -c 'echo "$REMAPHORE_DESTMATCH got: $1"'
	wait_ready failover || return 1
	[[ $(http nats1 '/connz?limit=1000') == *"remaphore ${dest[dl-east]}"* ]] ||
		{ why="dl-east is not connected to nats1, the first server in its config"; return 1; }
	log "  killing nats1, the server dl-east is connected to"
	docker kill "${cid[nats1]}" >/dev/null || { why="docker kill nats1 failed"; return 1; }
	local ok=1 rc
	# A stream or meta leader on nats1 is re-elected among nats2 and nats3
	# first: a publish sent while the stream has no leader is not stored.
	wait_leaders nats1 || ok=0
	[ "$ok" = 1 ] && { send failover-send uploader -s -t 20s -u failover "sent while nats1 is down" || ok=0; }
	if [ "$ok" = 1 ]; then
		rc=$(wait_rc failover 60)
		if [ "$rc" != 0 ]; then
			why="dl-east $(status "$rc") after nats1 was killed: $(grep -m1 'error\|WARN' "$out/failover.err")"
			ok=0
		elif ! grep -qx "${dest[dl-east]} got: sent while nats1 is down" "$out/failover.out"; then
			why="dl-east's script got other input: $(head -c 200 "$out/failover.out")"
			ok=0
		elif ! grep -q 'reconnected to NATS' "$out/failover.err"; then
			why="dl-east never reconnected: was it on nats1?"
			ok=0
		fi
	fi
	# Bring nats1 back for the scenarios after this one.
	docker start "${cid[nats1]}" >/dev/null
	local i
	for i in $(seq 60); do
		healthy nats1 && break
		sleep 0.5
	done
	healthy nats1 || { [ "$ok" = 0 ] || why="nats1 did not come back healthy"; return 1; }
	[ "$ok" = 1 ]
}

# wait_leaders DEAD: until a live server reports the stream's leader on a
# live server, and a meta leader too.
wait_leaders() {
	local i s j
	for i in $(seq 60); do
		for s in nats2 nats3; do
			[ "$s" = "$1" ] && continue
			j=$(http "$s" '/jsz?streams=true' | tr -d ' \n')
			if grep -q '"meta_cluster":{[^}]*"leader":"nats' <<<"$j" &&
				! grep -q "\"meta_cluster\":{[^}]*\"leader\":\"$1\"" <<<"$j" &&
				grep -q '"cluster":{[^}]*"leader":"nats' <<<"$j" &&
				! grep -q "\"cluster\":{[^}]*\"leader\":\"$1\"" <<<"$j"; then
				return 0
			fi
		done
		sleep 0.5
	done
	why="no stream and meta leader among the live servers 30s after $1 went down"
	return 1
}

# 4. A downloader's network is cut while the message is sent; it receives
# the message once the network is back (within allow_skew: 30s).
s_network_cut() {
	bg netcut dl-west -u netcut -t 90s sh -c 'echo "$REMAPHORE_DESTMATCH got: $1"'
	wait_ready netcut || return 1
	local net ip
	net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "${cid[dl-west]}")
	ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${cid[dl-west]}")
	log "  cutting dl-west ($ip) off $net"
	docker network disconnect "$net" "${cid[dl-west]}" || { why="docker network disconnect failed"; return 1; }
	local ok=1 rc
	send netcut-send uploader -s -u netcut "sent while dl-west is cut off" || ok=0
	sleep 6
	if [ "$ok" = 1 ] && [ -e "$out/netcut.rc" ]; then
		why="dl-west exited ($(cat "$out/netcut.rc")) while cut off: $(grep -m1 'error\|WARN' "$out/netcut.err")"
		ok=0
	fi
	docker network connect --alias dl-west "$net" "${cid[dl-west]}" ||
		{ why="docker network connect failed"; return 1; }
	log "  dl-west is back on $net ($(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${cid[dl-west]}"))"
	[ "$ok" = 1 ] || return 1
	rc=$(wait_rc netcut 60)
	[ "$rc" = 0 ] || { why="dl-west $(status "$rc") after its network came back: $(grep -m1 'rejected\|error' "$out/netcut.err")"; return 1; }
	grep -qx "${dest[dl-west]} got: sent while dl-west is cut off" "$out/netcut.out" ||
		{ why="dl-west's script got other input: $(head -c 200 "$out/netcut.out")"; return 1; }
}

# 5. The auditor is killed (SIGKILL) while messages stream in, and
# restarted: in the end it holds every message of the stream exactly once
# and verify passes.
s_auditor_restart() {
	local n=40
	audit_caught_up 30 || return 1
	rm -f "$out/audit-send.rc"
	(
		docker exec "${cid[uploader]}" sh -c '
			for i in $(seq '"$n"'); do
				remaphore -s -u "audit-$i" -D com.remaphore.nowhere "audit message $i" && echo "sent audit-$i"
				sleep 0.1
			done' >"$out/audit-send.out" 2>"$out/audit-send.err"
		echo $? >"$out/audit-send.rc"
	) &
	pids+=($!)
	sleep 1.5
	log "  SIGKILL to the auditor, $(grep -c . "$out/audit-send.out") of $n sent"
	docker kill -s KILL "${cid[auditor]}" >/dev/null || { why="docker kill auditor failed"; return 1; }
	sleep 2
	log "  restarting the auditor, $(grep -c . "$out/audit-send.out") of $n sent"
	docker start "${cid[auditor]}" >/dev/null || { why="docker start auditor failed"; return 1; }
	[ ! -e "$out/audit-send.rc" ] || { why="the sends ended before the auditor was restarted: not mid-run"; return 1; }
	local rc
	rc=$(wait_rc audit-send 60)
	[ "$rc" = 0 ] || { why="the sender loop $(status "$rc"): $(head -n1 "$out/audit-send.err")"; return 1; }
	local sent
	sent=$(grep -c '^sent audit-' "$out/audit-send.out")
	[ "$sent" = "$n" ] || { why="only $sent of $n messages were sent"; return 1; }
	audit_caught_up 30 || return 1
	local last
	last=$(stream_last) || { why="cannot read the stream's last sequence"; return 1; }
	audit query -json >"$out/audit-accepted.json" 2>"$out/audit-query.err" || { why="query failed: $(head -n1 "$out/audit-query.err")"; return 1; }
	audit query -json -rejected >"$out/audit-rejected.json" 2>>"$out/audit-query.err" || { why="query -rejected failed: $(head -n1 "$out/audit-query.err")"; return 1; }
	# Every stream sequence 1..last exactly once, accepted or refused.
	local seqs
	seqs=$(awk 'match($0, /"seq":[0-9]+/) { print substr($0, RSTART + 6, RLENGTH - 6) }' "$out/audit-accepted.json" "$out/audit-rejected.json" | sort -n)
	local bad
	bad=$(awk -v last="$last" '{ if ($1 != NR) { print "seq " $1 " at place " NR; exit } } END { if (NR != last) print NR " records for " last " stream messages" }' <<<"$seqs")
	[ -z "$bad" ] || { why="the audit does not hold each stream message exactly once: $bad"; return 1; }
	# Each of the n messages once, accepted.
	local i c
	for i in $(seq "$n"); do
		c=$(count "$out/audit-accepted.json" '"verdict":"accepted"' "\"uuid\":\"audit-$i\"")
		[ "$c" = 1 ] || { why="audit-$i is recorded $c times as accepted"; return 1; }
	done
	audit verify >"$out/audit-verify.out" 2>&1 || { why="verify: $(tail -n1 "$out/audit-verify.out")"; return 1; }
	log "  audit: $(tail -n1 "$out/audit-verify.out")"
}

# 6. The intruder: a compromised host whose NATS user may send, with a key
# no one trusts. Every downloader refuses its message (exit 1 at -t,
# reason=unknown-sender) and the auditor records it as refused. A waiting
# host's credentials cannot store a message at all: the server refuses the
# publish. A junk flood from the intruder's credentials, with the
# uploader's messages between, leaves every peer message recorded.
s_intruder() {
	local d rc
	for d in "${downloaders[@]}"; do
		bg "intruder-$d" "$d" -u intruder -t 6s sh -c 'echo "$REMAPHORE_DESTMATCH ran: $1"'
	done
	wait_ready "${downloaders[@]/#/intruder-}" || return 1
	send intruder-send intruder -s -u intruder "rm -rf /" || return 1
	for d in "${downloaders[@]}"; do
		rc=$(wait_rc "intruder-$d" 20)
		[ "$rc" = 1 ] || { why="$d $(status "$rc") (want 1: nothing accepted): $(head -c 200 "$out/intruder-$d.out")"; return 1; }
		grep -q 'reason=unknown-sender' "$out/intruder-$d.err" || { why="$d did not log reason=unknown-sender"; return 1; }
		[ ! -s "$out/intruder-$d.out" ] || { why="$d ran its script: $(head -c 200 "$out/intruder-$d.out")"; return 1; }
	done
	audit_caught_up 30 || return 1
	audit query -json -rejected -uuid intruder >"$out/intruder-rejected.json" 2>"$out/intruder-query.err" ||
		{ why="query -rejected failed: $(head -n1 "$out/intruder-query.err")"; return 1; }
	local c
	c=$(count "$out/intruder-rejected.json" '"verdict":"rejected"' '"reason":"unknown-sender"' "\"sender\":\"${pub[intruder]}\"")
	[ "$c" = 1 ] || { why="the audit holds $c refused (unknown-sender) records of the intruder's message, want 1"; return 1; }
	audit query -json -uuid intruder >"$out/intruder-accepted.json" 2>>"$out/intruder-query.err"
	[ ! -s "$out/intruder-accepted.json" ] || { why="the audit holds the intruder's message as accepted"; return 1; }

	# A downloader's NATS user may not publish a message: remaphore -s
	# with its credentials (and its valid key) fails at once, exit 3, and
	# the stream stores nothing.
	local before after
	before=$(stream_last) || { why="cannot read the stream's last sequence"; return 1; }
	rc=0
	dx dl-east remaphore -s -t 10s -u forged-by-dl-east "rm -rf /" >"$out/waiter-send.out" 2>"$out/waiter-send.err" || rc=$?
	[ "$rc" = 3 ] || { why="remaphore -s with dl-east's NATS credentials exited $rc, want 3 (refused by the server): $(tail -n1 "$out/waiter-send.err")"; return 1; }
	grep -q 'may not publish on remaphore.msg.all' "$out/waiter-send.err" ||
		{ why="dl-east's refused send does not say why: $(tail -n1 "$out/waiter-send.err")"; return 1; }
	after=$(stream_last)
	[ "$after" = "$before" ] || { why="the stream went from seq $before to $after after dl-east's refused send"; return 1; }
	log "  dl-east's credentials: $(grep -m1 -o 'this NATS user may not publish on [^ ]*' "$out/waiter-send.err")"

	# The flood: junk messages of about 60 KB from the intruder while the
	# uploader sends its own.
	local junk=150 peers=20
	rm -f "$out/flood-junk.rc"
	(
		docker exec "${cid[intruder]}" sh -c '
			junk=$(yes junk | head -c 60000 | tr -d "\n")
			for i in $(seq '"$junk"'); do
				remaphore -s -u "flood-junk-$i" -D com.remaphore.nowhere "$junk" || exit 1
			done' >"$out/flood-junk.out" 2>"$out/flood-junk.err"
		echo $? >"$out/flood-junk.rc"
	) &
	pids+=($!)
	sleep 1
	dx uploader sh -c '
		for i in $(seq '"$peers"'); do
			remaphore -s -u "flood-peer-$i" -D com.remaphore.nowhere "peer message $i" || exit 1
			sleep 0.2
		done' >"$out/flood-peer.out" 2>"$out/flood-peer.err" ||
		{ why="the uploader's sends during the flood failed: $(tail -n1 "$out/flood-peer.err")"; return 1; }
	rc=$(wait_rc flood-junk 120)
	[ "$rc" = 0 ] || { why="the intruder's flood $(status "$rc"): $(tail -n1 "$out/flood-junk.err")"; return 1; }
	audit_caught_up 60 || return 1
	audit query -json >"$out/flood-accepted.json" 2>"$out/flood-query.err" || { why="query failed: $(head -n1 "$out/flood-query.err")"; return 1; }
	audit query -json -rejected >"$out/flood-rejected.json" 2>>"$out/flood-query.err" || { why="query -rejected failed: $(head -n1 "$out/flood-query.err")"; return 1; }
	local i
	for i in $(seq "$peers"); do
		c=$(count "$out/flood-accepted.json" '"verdict":"accepted"' "\"uuid\":\"flood-peer-$i\"")
		[ "$c" = 1 ] || { why="flood-peer-$i is recorded $c times as accepted, want 1"; return 1; }
	done
	c=$(grep -c '"uuid":"flood-junk-' "$out/flood-rejected.json")
	[ "$c" = "$junk" ] || { why="the audit holds $c refused junk messages, want $junk"; return 1; }
	[ ! -s "$out/flood-accepted.json" ] || ! grep -q '"uuid":"flood-junk-' "$out/flood-accepted.json" ||
		{ why="the audit holds junk as accepted"; return 1; }
	audit verify >"$out/flood-verify.out" 2>&1 || { why="verify after the flood: $(tail -n1 "$out/flood-verify.out")"; return 1; }
	log "  flood: $junk junk messages of 60 KB, $peers peer messages all recorded; $(tail -n1 "$out/flood-verify.out")"
}

# ---- main --------------------------------------------------------------------

build
generate
started=1
# The images are built with docker build, not compose build: recent
# `docker compose` versions need buildx to build, which the engine may lack.
# docker-compose.yml names the same Dockerfiles and tags.
log "building the images (FROM scratch), tag $project"
for img in nats remaphore audit; do
	docker build -f "$cdir/$img.Dockerfile" -t "remaphore-compose/$img:$project" "$cdir" >>"$gen/build.log" 2>&1 ||
		die "docker build of $cdir/$img.Dockerfile failed; see $gen/build.log"
done
# Compose mounts secrets as they are on the host (it cannot set their
# owner), and remaphore refuses a config or credentials file owned by a
# user other than root or itself, as ssh does. The containers run as root:
# when this script is not root, give the files to root with a throwaway
# container (a rootless engine maps its root to this user: there the files
# already show as root's, and the chown changes nothing). They stay
# deletable: $gen is this user's directory.
if [ "$(id -u)" != 0 ]; then
	docker run --rm --network none -v "$gen:/gen" "remaphore-compose/remaphore:$project" \
		sh -c 'chown 0:0 /gen/*.conf /gen/*.nk' >>"$gen/build.log" 2>&1 ||
		die "could not give the generated configs to root; see $gen/build.log"
fi
log "starting the NATS cluster, the auditor and the nodes with ${compose_cmd[*]}, project $project"
compose up -d --no-build nats1 nats2 nats3 auditor uploader "${downloaders[@]}" intruder >"$gen/up.log" 2>&1 ||
	die "compose up failed; see $gen/up.log"
container_ids nats1 nats2 nats3 auditor uploader "${downloaders[@]}" intruder

# In the least-privilege layout only the auditor's NATS user may create the
# stream (replicas: 3, which needs all three servers): the cluster is ready
# when the auditor is. Until then it exits with a NATS error and Docker
# starts it again (restart: unless-stopped).
log "waiting for the JetStream cluster and the auditor (which creates the stream)"
auditor_ready() { [[ $(docker logs "${cid[auditor]}" 2>&1) == *msg=ready* ]]; }
for i in $(seq 180); do
	auditor_ready && break
	sleep 0.5
done
auditor_ready || { failed_any=1; die "the auditor did not get ready within 90s: $(docker logs --tail 3 "${cid[auditor]}" 2>&1)"; }
# A sender's first message: the stream takes it.
ready=0
for i in $(seq 30); do
	if dx uploader remaphore -s -t 5s -u harness-start -D com.remaphore.nowhere "harness start" >"$out/start.out" 2>"$out/start.err"; then
		ready=1
		break
	fi
	sleep 1
done
[ "$ready" = 1 ] || { failed_any=1; die "the uploader could not store a message within 30s: $(tail -n1 "$out/start.err")"; }
log "stack ready"

for s in "${scenarios[@]}"; do
	why=""
	ts=$(date +%s)
	log "scenario $s"
	current=$s
	if "s_${s//-/_}"; then
		echo "PASS $s"
		passed=$((passed + 1))
	else
		echo "FAIL $s: ${why:-failed}"
		failed=$((failed + 1))
		failed_any=1
	fi
	current=""
	log "scenario $s took $(($(date +%s) - ts))s"
done
[ "$failed" = 0 ] # the summary line is printed by teardown, after it
