#!/usr/bin/env bash
# The preload library's own cases, under a budget far below what they use,
# plus what upager-run does with exit statuses and bad settings.
#   preload.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
. "$(dirname "$0")/guard.sh"
# upager-run, killed with a dump of its processes should it hang.
run=upager_run
upager_run() { guard 240 "$build/tools/upager-run" "$@"; }
cases=$build/tests/preload_cases
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

if "$run" --ram 32M -- "$cases"; then ok "preload cases under --ram 32M"; else bad "preload cases under --ram 32M"; fi
if "$run" --ram 32M -- "$build/tests/preload_maps_cases"; then ok "mmap cases under --ram 32M"; else bad "mmap cases under --ram 32M"; fi
# A program using the API gets the preload's runtime under it, its own alone.
if "$run" --ram 32M -- "$build/tests/preload_api_case" $((32 << 20)); then ok "the API under the preload: one runtime"
else bad "the API under the preload"; fi
if UPAGER_STORE=/var/tmp "$build/tests/preload_api_case" $((8 << 20)); then ok "the API alone: its own runtime"
else bad "the API alone"; fi

"$run" --ram 32M -- "$cases" 42; rc=$?
[ $rc -eq 42 ] && ok "exit status 42 passes through" || bad "exit status: got $rc, want 42"
"$run" --ram 32M -- sh -c 'kill -TERM $$'; rc=$?
[ $rc -eq $((128 + 15)) ] && ok "death by SIGTERM shows as 143" || bad "signal: got $rc, want 143"
# Without locked memory for the bounce buffers (no CAP_IPC_LOCK, ulimit -l
# 1 MiB: room for the rings, not for 4 MiB of buffers), store reads go
# unregistered: a warning that names the limit, and every page still right.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	out=$(ulimit -l 1024; setpriv --inh-caps=-ipc_lock --ambient-caps=-ipc_lock --bounding-set=-ipc_lock \
		env UPAGER_STORE=/var/tmp UPAGER_RAM=32M LD_PRELOAD="$build/libupager-preload.so" "$cases" 2>&1)
	if echo "$out" | grep -q "preload cases: all correct" && echo "$out" | grep -q "ulimit -l"; then
		ok "no locked memory: unregistered store reads, warned, data right"
	else
		bad "no locked memory: '$(echo "$out" | grep -v "^ok" | head -3)'"
	fi
fi
# upager-run waits for the program: a signal sent to upager-run reaches it.
"$build/tools/upager-run" --ram 32M -- sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done' & sup=$!
sleep 1; kill -TERM $sup; wait $sup; rc=$?
[ $rc -eq 7 ] && ok "SIGTERM to upager-run reaches the program (it exits 7)" || bad "SIGTERM forwarding: got $rc, want 7"
# Its budget file is gone afterwards, and the tree's line is printed.
"$build/tools/upager-run" --ram 32M --report -- sh -c "$cases 0 && $cases 0" 2>"$build/tree-report.txt" >/dev/null & sup=$!
wait $sup
out=$(cat "$build/tree-report.txt"); rm -f "$build/tree-report.txt"
if echo "$out" | grep -q "upager tree: 3 processes shared the 32.0 MiB budget" && [ ! -e /dev/shm/upager-tree-$sup ]; then
	ok "the tree's report line; its budget file removed"
else
	bad "tree report or budget file: '$(echo "$out" | grep tree)', $(ls /dev/shm/upager-tree-$sup 2>&1)"
fi
# A process of the tree that becomes another user (runuser, a daemon
# dropping root) may not open the tree's file, nor, here, use userfaultfd:
# it runs, unpaged, and says so; its output is that of a plain run.
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && id nobody >/dev/null 2>&1 &&
	[ "$(sysctl -n vm.unprivileged_userfaultfd 2>/dev/null)" = 0 ]; then
	prog='import hashlib; x = bytes(range(256)) * (96 << 12); print(hashlib.sha256(x).hexdigest())'
	want=$(/usr/bin/python3 -c "$prog")
	out=$("$run" --ram 16M -- runuser -u nobody -- /usr/bin/python3 -c "$prog" 2>"$build/other-user.err"); rc=$?
	if [ $rc -eq 0 ] && [ "$out" = "$want" ] && grep -q "runs as another user than upager-run" "$build/other-user.err"; then
		ok "a process that becomes another user runs unpaged, warned, output right"
	else
		bad "another user: exit $rc, output '$out', want '$want', stderr '$(cat "$build/other-user.err")'"
	fi
	rm -f "$build/other-user.err"
fi
"$run" --ram 32M -- /nonexistent/prog 2>/dev/null; rc=$?
[ $rc -eq 127 ] && ok "a missing command gives 127" || bad "missing command: got $rc, want 127"

# The report reaches the user although the program closed its stderr (ls
# and sort do, before exit) ...
for prog in "ls /" "sort /dev/null"; do
	out=$("$run" --ram 16M --report -- $prog 2>&1 >/dev/null)
	echo "$out" | grep -q "kernel RSS" && echo "$out" | grep -q "upager report" &&
		ok "--report of '$prog' reaches stderr" || bad "--report of '$prog': '$out'"
done
# ... sets the kernel's figures beside upager's in JSON ...
out=$("$run" --ram 16M --report=json -- ls / 2>&1 >/dev/null)
if echo "$out" | python3 -c 'import json, sys; r = json.load(sys.stdin)
assert r["kernel_rss_peak"] > 0 and r["outside_peak"] <= r["kernel_rss_peak"], r
assert r["mmap_min"] == 65536 and r["mostly_outside"] is False, r
for k in ("pool_puts", "pool_hits", "pool_rejects", "pool_writebacks", "pool_drops", "pool_skips", "pool_share_most"):
    assert isinstance(r[k], int) and r[k] >= 0, (k, r)'; then
	ok "--report=json has the kernel's peak RSS and what stayed outside"
else
	bad "--report=json: '$out'"
fi
# ... and warns when most of the memory escaped the cap (a shared mapping).
out=$("$run" --ram 16M --report -- python3 -c 'import mmap; m = mmap.mmap(-1, 96 << 20); m.write(b"x" * (96 << 20))' 2>&1)
echo "$out" | grep -q "warning  *most of this program's memory stayed outside upager" &&
	ok "a program whose memory escapes gets the warning" || bad "no warning for escaped memory: '$out'"
# A budget well above python's own 16 MiB or so outside the heap: at 16M
# the two were even, and the warning (most stayed outside) came and went.
out=$("$run" --ram 48M --report -- python3 -c 'x = bytearray(96 << 20)' 2>&1)
echo "$out" | grep -q "warning" && bad "warning for a program upager paged: '$out'" ||
	ok "a program upager paged gets no warning"
# ... and its report says how the evictor took the pages out: bytearray's
# pages leave in runs of neighbours.
took=$(echo "$out" | sed -n 's/^  eviction  *[0-9]* pages: .*; taken out \([0-9]*\) pages in \([0-9]*\) calls ([0-9.]* a call), \([0-9]*\) alone$/\1 \2 \3/p')
read -r tp tc ta <<<"$took"
[ -n "${ta:-}" ] && [ "$tc" -gt 0 ] && [ $((tc * 8)) -le "$tp" ] && [ "$ta" -le "$tc" ] &&
	ok "the report's take-out figures: $tp pages in $tc calls, $ta alone" ||
	bad "take-out figures in the report: '$(echo "$out" | grep eviction)'"

# Bad values: upager-run stops before the program runs ...
for kv in "--ram 12Q" "--ram -1" "--page 3000" "--policy lru" "--handlers 0" "--store-max 1.G" \
	"--ram 4095" "--ram 32K --page 64K" "--page 5000"; do
	out=$("$run" $kv -- true 2>&1); rc=$?
	[ $rc -eq 2 ] && [ -n "$out" ] && ok "upager-run $kv: exit 2, '$(echo "$out" | head -1)'" ||
		bad "upager-run $kv: exit $rc, message '$out'"
done
# ... and so does the preload library used directly, naming the variable.
for kv in UPAGER_RAM=12Q UPAGER_PAGE=3000 UPAGER_POLICY=lru UPAGER_LOG=loud UPAGER_STORE=/nonexistent/dir UPAGER_MMAP=12Q UPAGER_MMAP=1K; do
	out=$(env "$kv" LD_PRELOAD="$build/libupager-preload.so" true 2>&1); rc=$?
	var=${kv%%=*}
	if [ $rc -ne 0 ] && { echo "$out" | grep -q "$var" || [ "$var" = UPAGER_STORE ]; } && [ -n "$out" ]; then
		ok "LD_PRELOAD with $kv: exit $rc, '$(echo "$out" | head -1)'"
	else
		bad "LD_PRELOAD with $kv: exit $rc, message '$out'"
	fi
done

# Hostile store locations: the program is not started (its marker file never
# appears), the exit status is 127, and the message names UPAGER_STORE.
tmp=$(mktemp -d /var/tmp/upager-preload-XXXXXX)
touch "$tmp/file"
check_store() { # WHAT STORE [RUNNER...]
	local what=$1 store=$2 out rc
	shift 2
	rm -f "$tmp/ran"
	out=$(UPAGER_STORE=$store "$@" sh -c "touch '$tmp/ran'" 2>&1); rc=$?
	if [ $rc -eq 127 ] && [ ! -e "$tmp/ran" ] && echo "$out" | grep -q UPAGER_STORE &&
		echo "$out" | grep -q "not started"; then
		ok "$what: exit 127, '$(echo "$out" | head -1)'"
	else
		bad "$what: exit $rc, ran: $([ -e "$tmp/ran" ] && echo yes || echo no), message '$out'"
	fi
}
for store in /dev/null /dev/shm /nonexistent-upager-dir/ /nonexistent-upager-dir/store "$tmp/file/store"; do
	check_store "upager-run --store $store" "$store" "$run" --ram 32M --
	check_store "LD_PRELOAD with UPAGER_STORE=$store" "$store" env LD_PRELOAD="$build/libupager-preload.so"
done
# A read-only bind mount of a disk directory, in a private mount namespace.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && mkdir "$tmp/ro" &&
	unshare -m true 2>/dev/null; then
	out=$(unshare -m bash -c "mount --make-rprivate / && mount --bind '$tmp/ro' '$tmp/ro' &&
		mount -o remount,bind,ro '$tmp/ro' && UPAGER_STORE='$tmp/ro' '$build/tools/upager-run' --ram 32M -- sh -c \"touch '$tmp/ran'\"" 2>&1)
	rc=$?
	if [ $rc -eq 127 ] && [ ! -e "$tmp/ran" ] && echo "$out" | grep -q "Read-only file system" &&
		echo "$out" | grep -q UPAGER_STORE; then
		ok "a read-only bind mount: exit 127, '$(echo "$out" | head -1)'"
	else
		bad "a read-only bind mount: exit $rc, message '$out'"
	fi
fi
rm -rf "$tmp"

# Without privilege, the message names the three fixes.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ "$(cat /proc/sys/vm/unprivileged_userfaultfd)" = 0 ]; then
	out=$(UPAGER_STORE=/var/tmp setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		env LD_PRELOAD="$build/libupager-preload.so" true 2>&1); rc=$?
	if [ $rc -ne 0 ] && echo "$out" | grep -q CAP_SYS_PTRACE && echo "$out" | grep -q unprivileged_userfaultfd &&
		echo "$out" | grep -q /dev/userfaultfd; then
		ok "unprivileged: exit $rc with the three fixes named"
	else
		bad "unprivileged: exit $rc, message '$out'"
	fi
fi
# The HTML report: the forecast's curve and three timeline panels as SVG,
# each with points, around the text report; the program's output right.
html=$(mktemp -d)
"$run" --ram 8M --report=html:"$html/r.html" -- "$build/examples/kvstore" 16M >"$html/out" 2>"$html/err"; rc=$?
svgs=$(grep -c "<svg" "$html/r.html" 2>/dev/null)
pts=$(grep -o '<polyline[^>]*points="[^"]*"' "$html/r.html" 2>/dev/null | awk -F'points="' '{print split($2, a, " ")}' | sort -n | head -1)
if [ $rc -eq 0 ] && grep -q "verify=OK" "$html/out" && [ "$svgs" -eq 4 ] && [ "${pts:-0}" -ge 3 ] &&
	grep -q "With more RAM" "$html/r.html" && grep -q "budget" "$html/r.html" && grep -q "store read" "$html/r.html"; then
	ok "--report=html:FILE: $svgs plots, the fewest points $pts, the text report inside"
else
	bad "--report=html:FILE: exit $rc, $svgs plots, fewest points ${pts:-none}: $(tail -2 "$html/err")"
fi
"$run" --report=html -- true 2>"$html/err"; rc=$?
if [ $rc -eq 2 ] && grep -q "html:FILE" "$html/err"; then ok "--report=html without a file: $(head -1 "$html/err")"
else bad "--report=html without a file: exit $rc, $(cat "$html/err")"; fi
rm -rf "$html"

echo "preload: $pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
