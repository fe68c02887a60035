#!/usr/bin/env bash
# Redis servers for the tests of the Redis store, on loopback:
#   tools/redis.sh start DIR   a standalone server and a 3-node cluster,
#                              their data and logs in DIR; prints the
#                              UPAGER_TEST_REDIS* lines to export
#   tools/redis.sh stop DIR    stop them and remove DIR
#   tools/redis.sh env DIR     print the lines again
# Ports: UPAGER_REDIS_PORT (default 6390) for the standalone server, and
# the next three for the cluster.  Every server runs with
# maxmemory-policy noeviction and no persistence.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
base=${UPAGER_REDIS_PORT:-6390}
ports="$base $((base + 1)) $((base + 2)) $((base + 3))"

say_env() {
	echo "UPAGER_TEST_REDIS=redis://127.0.0.1:$base"
	echo "UPAGER_TEST_REDIS_UNIX=unix:$dir/standalone.sock"
	echo "UPAGER_TEST_REDIS_CLUSTER=redis://127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
}

server() {   # port [cluster]
	local p=$1 extra=()
	if [ "${2:-}" = cluster ]; then
		extra=(--cluster-enabled yes --cluster-config-file "$dir/nodes-$p.conf" --cluster-node-timeout 2000)
	else
		extra=(--unixsocket "$dir/standalone.sock" --unixsocketperm 700)
	fi
	redis-server --port "$p" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
		--pidfile "$dir/redis-$p.pid" --logfile "$dir/redis-$p.log" \
		--save "" --appendonly no --maxmemory-policy noeviction \
		--protected-mode no "${extra[@]}" >/dev/null
}

wait_up() {
	local p=$1 i
	for i in $(seq 100); do
		redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.1
	done
	echo "redis on port $p did not start: see $dir/redis-$p.log" >&2
	exit 1
}

case $cmd in
start)
	command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install redis-server" >&2; exit 1; }
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	for p in $ports; do
		if redis-cli -p "$p" ping >/dev/null 2>&1; then
			echo "port $p is taken already: stop what runs there, or set UPAGER_REDIS_PORT" >&2
			exit 1
		fi
	done
	server "$base"
	for p in $((base + 1)) $((base + 2)) $((base + 3)); do server "$p" cluster; done
	for p in $ports; do wait_up "$p"; done
	redis-cli --cluster create 127.0.0.1:$((base + 1)) 127.0.0.1:$((base + 2)) 127.0.0.1:$((base + 3)) \
		--cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log" 2>&1 ||
		{ cat "$dir/cluster-create.log" >&2; exit 1; }
	for i in $(seq 100); do
		ok=0
		for p in $((base + 1)) $((base + 2)) $((base + 3)); do
			redis-cli -p "$p" cluster info 2>/dev/null | grep -q "cluster_state:ok" && ok=$((ok + 1))
		done
		[ $ok -eq 3 ] && break
		sleep 0.1
	done
	[ $ok -eq 3 ] || { echo "the Redis cluster did not come up: see $dir/*.log" >&2; exit 1; }
	say_env
	;;
env)
	dir=$(cd "$dir" && pwd)
	say_env
	;;
stop)
	[ -d "$dir" ] || exit 0
	for p in $ports; do
		if [ -f "$dir/redis-$p.pid" ]; then
			pid=$(cat "$dir/redis-$p.pid")
			kill -CONT "$pid" 2>/dev/null || true
			kill "$pid" 2>/dev/null || true
			for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop|env DIR" >&2
	exit 2
	;;
esac
