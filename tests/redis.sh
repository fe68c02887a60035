#!/usr/bin/env bash
# The Redis store under test (see tests/meson.build): BUILD is the build
# directory.  Starts its own servers with tools/redis.sh and stops them.
set -uo pipefail
build=$(cd "${1:?usage: redis.sh BUILD}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
pages=$build/tests/redis_pages
work=$(mktemp -d /tmp/upager-redis-XXXXXX)
fails=0
# Four free ports in a row: from 6390, else further on.
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${UPAGER_REDIS_PORT:-}" ]; then
	for base in $(seq 6390 10 6590); do
		taken $base || taken $((base + 1)) || taken $((base + 2)) || taken $((base + 3)) || break
	done
	export UPAGER_REDIS_PORT=$base
fi
trap '"$src/tools/redis.sh" stop "$work/srv" >/dev/null 2>&1; rm -rf "$work"' EXIT

eval "$("$src/tools/redis.sh" start "$work/srv" | sed 's/^/export /')" || { echo "FAIL: cannot start redis"; exit 1; }
P0=$UPAGER_REDIS_PORT P1=$((UPAGER_REDIS_PORT + 1)) P2=$((UPAGER_REDIS_PORT + 2)) P3=$((UPAGER_REDIS_PORT + 3))

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
keys() {   # total keys on the given ports
	local n=0 p
	for p in "$@"; do n=$((n + $(redis-cli -p "$p" dbsize))); done
	echo $n
}
cluster_ok() {
	local i p c
	for i in $(seq 100); do
		c=0
		for p in $P1 $P2 $P3; do
			redis-cli -p "$p" cluster info 2>/dev/null | grep -q cluster_state:ok && c=$((c + 1))
		done
		[ $c -eq 3 ] && return 0
		sleep 0.2
	done
	return 1
}
# Start redis_pages in the background (settings for it as assignments
# before the call, which bash passes on); wait up to 60 s for the line
# $wait_line in its output, "round 1 ok" unless set.  1 if it never came.
start_pages() {   # store mib rounds
	local want=${wait_line:-round 1 ok}
	# Emptied here first: the child's own redirection may come after the
	# first look below, which would then find the last run's line (CI
	# once killed a cluster node before this run had connected).
	: >"$work/out"
	"$pages" "$@" >"$work/out" 2>"$work/err" &
	pid=$!
	for i in $(seq 600); do
		grep -q "$want" "$work/out" 2>/dev/null && return 0
		kill -0 $pid 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# Wait for it to end within s seconds; sets st (exit status, 124: hung)
# and waited (milliseconds this took).
wait_pages() {
	local s=$1 i t0
	t0=$(date +%s%N)
	for i in $(seq $((s * 10))); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $pid 2>/dev/null; then
		# What each thread waits on, for the failure's report.
		{
			for t in /proc/$pid/task/*; do echo "thread $(cat "$t/comm" 2>/dev/null):"; cat "$t/stack" 2>/dev/null; done
			command -v gdb >/dev/null && timeout 60 gdb -p $pid -batch -ex "thread apply all bt" 2>/dev/null | grep "^#\|^Thread"
		} >"$work/hang" 2>&1
		kill -9 $pid; wait $pid 2>/dev/null; st=124
	else
		wait $pid; st=$?
	fi
	waited=$(( ($(date +%s%N) - t0) / 1000000 ))
}
# A fault must end the run with SIGBUS (135) or a clear error (1), never
# wrong data (3), a clean exit as if nothing happened, or a hang.
expect_fault() {
	local what=$1
	if grep -q "WRONG DATA" "$work/out"; then bad "$what: wrong data: $(grep WRONG "$work/out")"
	elif [ $st -eq 124 ]; then bad "$what: hung; its log ends: $(tail -5 "$work/err")"; cat "$work/hang"
	elif [ $st -ne 135 ] && [ $st -ne 1 ]; then bad "$what: exit $st"
	elif ! grep -q "redis store" "$work/err"; then bad "$what: no reason logged: $(tail -3 "$work/err")"
	else ok "$what: exit $st after $(grep -c "round" "$work/out") rounds; $(grep -m1 "redis store" "$work/err" | cut -c1-150)"
	fi
}

# ---- the suites, on a standalone server and on the cluster ----
# A cluster runs the standalone server's client with slot routing and
# redirections on top: fork and threads run on the cluster only, which
# saves over a minute of the suite.  On the standalone server integrity
# and kernel_io run without the compressed pool (every evicted page goes
# to Redis), on the cluster with it (the default: UPG_TEST_COMPRESS empty,
# so a case that turns the pool off keeps it off), which saves another
# 45 s.
for store in "$UPAGER_TEST_REDIS" "$UPAGER_TEST_REDIS_CLUSTER"; do
	suites="integrity fork threads kernel_io" pool=
	[ "$store" = "$UPAGER_TEST_REDIS" ] && suites="integrity kernel_io" pool=off
	for t in $suites; do
		start=$(date +%s)
		if UPG_TEST_COMPRESS=$pool UPG_TEST_STORE=$store CK_FORK=yes CK_DEFAULT_TIMEOUT=600 \
			"$build/tests/test_$t" >"$work/suite" 2>&1; then
			ok "$t on $store, pool ${pool:-on} ($(( $(date +%s) - start )) s): $(grep -m1 'Checks' "$work/suite")"
		else
			bad "$t on $store, pool ${pool:-on}"; tail -20 "$work/suite"
		fi
	done
done

# ---- a fork's placeholders ----
# The parent lists the namespaces a child will read under a placeholder
# (F<pid>.<n>) before fork(); once the child has listed them under its own
# pid, the placeholder goes, rather than a lease later.
UPG_TEST_COMPRESS=off REDIS_PAGES_FORK=3 wait_line="child ok" start_pages "$UPAGER_TEST_REDIS" 16 1
cpid=$(sed -n 's/^child ok \([0-9]*\)$/\1/p' "$work/out")
placed=-1 listed=0
for i in $(seq 20); do
	[ -n "$cpid" ] || break
	placed=$(redis-cli -p $P0 zrange upg:runs 0 -1 | grep -c " F$pid\\.")
	listed=$(redis-cli -p $P0 zrange upg:runs 0 -1 | grep -c " $cpid\$")
	[ "$placed" -eq 0 ] && [ "$listed" -gt 0 ] && break
	sleep 0.1
done
wait_pages 60
if [ $st -eq 0 ] && [ -n "$cpid" ] && [ "$placed" -eq 0 ] && [ "$listed" -gt 0 ]; then
	ok "a fork's placeholder goes once the child has listed the namespaces ($listed under pid $cpid)"
else
	bad "fork placeholder: exit $st, child ${cpid:-none}, $placed placeholder(s) of pid $pid left, $listed listed: $(tail -3 "$work/out")"
fi

# ---- a unix socket ----
if "$pages" "$UPAGER_TEST_REDIS_UNIX" 32 2 >"$work/out" 2>"$work/err" && grep -q "round 2 ok" "$work/out"; then
	ok "unix socket"
else
	bad "unix socket: $(cat "$work/out" "$work/err" | tail -5)"
fi

# Of up to 50 block values on port $1: how many are at most 3088 bytes
# (compressed), and how many were looked at.
value_sizes() {
	local short=0 total=0 k
	for k in $(redis-cli -p "$1" --scan --pattern 'upg:*:*' | head -50); do
		total=$((total + 1))
		[ "$(redis-cli -p "$1" strlen "$k")" -le 3088 ] && short=$((short + 1))
	done
	echo $short $total
}

# ---- what a run leaves: nothing after close; after kill -9, its keys
# until its lease runs out and the next start ----
redis-cli -p $P0 flushall >/dev/null
"$pages" "$UPAGER_TEST_REDIS" 16 1 >/dev/null 2>&1
n=$(keys $P0)
[ "$n" -eq 0 ] && ok "a closed run leaves no key" || bad "a closed run left $n keys"
if start_pages "$UPAGER_TEST_REDIS" 32 1000; then
	kill -9 $pid; wait $pid 2>/dev/null
	n=$(keys $P0)
	# Values go compressed: the pattern pages (about 2.5x with LZ4) are
	# far under their 4 KiB + header.
	read -r short total < <(value_sizes $P0)
	if [ $total -gt 0 ] && [ $short -eq $total ]; then
		ok "values go compressed: $short of $total sampled under 3088 bytes"
	else
		bad "values go compressed: $short of $total sampled under 3088 bytes"
	fi
	REDIS_PAGES_LOG=2 "$pages" "$UPAGER_TEST_REDIS" 8 1 >/dev/null 2>"$work/err2"
	m=$(keys $P0)
	if [ "$n" -gt 1000 ] && [ "$m" -eq 0 ] && grep -q "removed $((n - 1)) keys of 1 runs" "$work/err2"; then
		ok "kill -9: $n keys left (with upg:runs), all gone at the next start"
	else
		bad "kill -9: $n keys, then $m after the next start; $(grep removed "$work/err2")"
	fi
else
	bad "kill -9: the run did not start: $(tail -3 "$work/err")"
fi
# compress=off: whole pages (the pattern has no trailing zeros).
redis-cli -p $P0 flushall >/dev/null
if start_pages "$UPAGER_TEST_REDIS?compress=off" 32 1000; then
	kill -9 $pid; wait $pid 2>/dev/null
	read -r short total < <(value_sizes $P0)
	[ $total -gt 0 ] && [ $short -eq 0 ] && ok "compress=off: $total values sampled, all whole" ||
		bad "compress=off: $short of $total sampled values compressed"
	redis-cli -p $P0 flushall >/dev/null
else
	bad "compress=off: the run did not start: $(tail -3 "$work/err")"
fi
# A program under upager-run and the preload (which never closes its
# runtime): its output right, pages read back from Redis, and nothing
# left once upager-run has cleaned up after it.
prog='import hashlib, random
r = random.Random(7)
a = [r.randbytes(4096) for _ in range(24000)]
for _ in range(2):
    h = hashlib.sha256()
    for x in a:
        h.update(x)
print(h.hexdigest())'
# A program that carries its own hiredis (redis-cli does), under the
# preload with the Redis store: the preload's calls must reach its own
# hiredis, not the program's.
got=$(UPAGER_STORE=$UPAGER_TEST_REDIS "$build/tools/upager-run" --ram 16M -- redis-cli -p $P0 ping 2>"$work/err")
[ "$got" = PONG ] && ok "redis-cli (its own hiredis) under upager-run on the Redis store" ||
	bad "redis-cli under upager-run: '$got'; $(tail -2 "$work/err")"
py=/usr/bin/python3   # not a pyenv shim: one process
# The fork suite's runs above left their namespaces listed under fork
# placeholders, alive by their lease (60 s): counted here, they would be
# taken for this run's.
for p in $P1 $P2 $P3; do redis-cli -p $p flushall >/dev/null; done
want=$($py -c "$prog")
got=$(UPAGER_STORE=$UPAGER_TEST_REDIS_CLUSTER UPAGER_REPORT=stderr UPAGER_LOG=info "$build/tools/upager-run" --ram 24M -- $py -c "$prog" 2>"$work/err")
reads=$(grep -o "[0-9]* store read" "$work/err" | head -1)
n=$(keys $P1 $P2 $P3)
if [ "$got" = "$want" ] && [ "$n" -le 1 ] && grep -q "store redis cluster" "$work/err" && [ "${reads%% *}" -gt 1000 ]; then
	ok "python3 under upager-run on the cluster: output right, ${reads}s, $n keys left (upg:runs)"
else
	bad "python3 under upager-run: '$got' against '$want', $n keys left; $(tail -5 "$work/err")"
fi
# A paused (SIGSTOP) run keeps its keys past its lease: its pid is alive.
if start_pages "$UPAGER_TEST_REDIS?lease=2" 16 1000; then
	kill -STOP $pid
	sleep 3
	"$pages" "$UPAGER_TEST_REDIS" 8 1 >/dev/null 2>&1
	kill -CONT $pid
	sleep 1
	kill -0 $pid 2>/dev/null && ! grep -q "WRONG" "$work/out" && ok "a stopped run's keys stay past its lease" ||
		bad "a stopped run lost its pages: $(tail -3 "$work/out" "$work/err")"
	kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
fi

# ---- bad settings ----
redis-cli -p $P0 config set maxmemory-policy allkeys-lru >/dev/null
"$pages" "$UPAGER_TEST_REDIS" 8 1 >"$work/out" 2>"$work/err"; st=$?
redis-cli -p $P0 config set maxmemory-policy noeviction >/dev/null
[ $st -eq 1 ] && grep -q "noeviction" "$work/err" && ok "allkeys-lru refused: $(cut -c1-160 "$work/err")" ||
	bad "allkeys-lru: exit $st, $(cat "$work/err")"
"$pages" "redis://127.0.0.1:1" 8 1 >"$work/out" 2>"$work/err"; st=$?
[ $st -eq 1 ] && grep -q "cannot connect" "$work/err" && ok "no server: $(cut -c1-160 "$work/err")" ||
	bad "no server: exit $st, $(cat "$work/err")"
"$pages" "redis://127.0.0.1:$P0?conns=2&timeout=abc" 8 1 >"$work/out" 2>"$work/err"; st=$?
[ $st -eq 1 ] && grep -q "timeout=abc" "$work/err" && ok "bad parameter: $(cut -c1-160 "$work/err")" ||
	bad "bad parameter: exit $st, $(cat "$work/err")"
"$pages" "redis://127.0.0.1:$P0?compress=zip" 8 1 >"$work/out" 2>"$work/err"; st=$?
[ $st -eq 1 ] && grep -q "compress=zip: give lz4" "$work/err" && ok "bad compress: $(cut -c1-160 "$work/err")" ||
	bad "bad compress: exit $st, $(cat "$work/err")"

# ---- faults under a run ----
# A paused node: a clear error after the deadline, not a hang.
if start_pages "$UPAGER_TEST_REDIS?timeout=300" 32 1000; then
	spid=$(cat "$work/srv/redis-$P0.pid")
	kill -STOP "$spid"
	wait_pages 60
	kill -CONT "$spid"
	expect_fault "paused node ($waited ms)"
else
	bad "paused node: the run did not start"
fi
# A node paused while the region is filled: no reads yet, and every write
# waits out its deadline.  The fill goes on over the budget (a fault does
# not wait for batches of failing writes), then the first read fails.
"$pages" "$UPAGER_TEST_REDIS" 96 1000 >"$work/out" 2>"$work/err" &
pid=$!
spid=$(cat "$work/srv/redis-$P0.pid")
# Paused once the run has registered, so that it has opened and writes.
for i in $(seq 300); do
	redis-cli -p $P0 zrange upg:runs 0 -1 | grep -q " $pid\$" && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.01
done
kill -STOP "$spid"
wait_pages 120
kill -CONT "$spid"
if grep -q "filled" "$work/out" && grep -q "writes to the store (redis .*) fail" "$work/err"; then
	expect_fault "node paused during the fill ($waited ms)"
else
	bad "node paused during the fill: exit $st, $(grep -c filled "$work/out") filled; $(tail -3 "$work/err")"
	[ $st -eq 124 ] && cat "$work/hang"
fi
# A standalone node restarted empty.
if start_pages "$UPAGER_TEST_REDIS" 32 1000; then
	redis-cli -p $P0 shutdown nosave >/dev/null 2>&1
	redis-server --port $P0 --bind 127.0.0.1 --daemonize yes --dir "$work/srv" --pidfile "$work/srv/redis-$P0.pid" \
		--logfile "$work/srv/redis-$P0.log" --save "" --appendonly no --maxmemory-policy noeviction \
		--unixsocket "$work/srv/standalone.sock" --unixsocketperm 700 >/dev/null
	wait_pages 60
	expect_fault "node restarted empty"
else
	bad "restarted empty: the run did not start"
fi
# A cluster resharded under a run: nothing lost.
start=$(date +%s)
if REDIS_PAGES_LOG=2 start_pages "$UPAGER_TEST_REDIS_CLUSTER" 48 8; then
	from=$(redis-cli -p $P1 cluster myid) to=$(redis-cli -p $P2 cluster myid)
	redis-cli --cluster reshard 127.0.0.1:$P1 --cluster-from "$from" --cluster-to "$to" --cluster-slots 2000 \
		--cluster-yes >"$work/reshard" 2>&1 || bad "reshard failed: $(tail -3 "$work/reshard")"
	moved=$(grep -c "^Moving slot" "$work/reshard")
	wait_pages 300
	# The handlers' own connections carried reads, and the redirected ones
	# went on through the store's thread.
	if [ $st -eq 0 ] && grep -q "round 8 ok" "$work/out" && grep -q " [1-9][0-9]* MOVED" "$work/err" &&
		grep -q " [1-9][0-9]* reads answered on the handlers' own connections" "$work/err"; then
		ok "reshard of $moved slots under a run: every page right ($(( $(date +%s) - start )) s; $(grep -o "[0-9]* MOVED.*" "$work/err"))"
	else
		bad "reshard: exit $st, $(tail -3 "$work/out") $(tail -3 "$work/err")"
	fi
else
	wait_pages 60
	bad "reshard: the run did not start: exit $st, $(tail -3 "$work/out") $(tail -3 "$work/err")"
	[ $st -eq 124 ] && cat "$work/hang"
fi
# A cluster node killed: SIGBUS or an error on its pages, never wrong data.
if start_pages "$UPAGER_TEST_REDIS_CLUSTER" 32 1000; then
	kill -9 "$(cat "$work/srv/redis-$P3.pid")"
	wait_pages 120
	expect_fault "cluster node killed ($waited ms)"
else
	bad "node killed: the run did not start"
fi

echo "redis: $fails failure(s)"
[ $fails -eq 0 ]
