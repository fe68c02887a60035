# Sourced by the shell tests.  guard SECONDS CMD...: run CMD in a session of
# its own and return its exit status; should it take longer than SECONDS,
# print what every process of that session is doing (thread states, kernel
# wait channels, and gdb backtraces when gdb is here), kill the session and
# return 124.  A hang then fails one case, with the evidence, instead of
# the whole test timing out in silence.

guard_dump() { # SID
	local sid=$1 pid t n=0
	echo "HANG: still running after the time limit; its processes:" >&2
	for pid in $(ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s { print $1 }'); do
		echo "  pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | head -c 200)" >&2
		for t in /proc/"$pid"/task/*; do
			echo "    thread ${t##*/} $(cat "$t/comm" 2>/dev/null) state $(awk '{ print $3 }' "$t/stat" 2>/dev/null)" \
				"waiting in $(cat "$t/wchan" 2>/dev/null)" >&2
		done
		if command -v gdb >/dev/null && [ $n -lt 6 ]; then
			n=$((n + 1))
			timeout 30 gdb -p "$pid" -batch -ex "thread apply all bt 12" 2>/dev/null |
				grep -E '^(#|Thread)' | sed 's/^/      /' >&2
		fi
	done
}

guard() { # SECONDS CMD...
	local limit=$1 pid tick=0
	shift
	setsid "$@" &
	pid=$!
	guard_pid=$pid
	while kill -0 "$pid" 2>/dev/null; do
		if [ $tick -ge $((limit * 10)) ]; then
			guard_dump "$pid"
			kill -9 -- -"$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 124
		fi
		sleep 0.1
		tick=$((tick + 1))
	done
	guard_pid=
	wait "$pid"
}

# Killed itself (meson's timeout), take the guarded session along.
guard_pid=
guard_stop() {
	[ -n "$guard_pid" ] && kill -9 -- -"$guard_pid" 2>/dev/null
	exit 143
}
trap guard_stop TERM INT
