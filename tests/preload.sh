#!/usr/bin/env bash
# The preload library's own cases, under a budget far below what they use,
# plus what upager-run does with exit statuses and bad settings.
#   preload.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
run=$build/tools/upager-run
cases=$build/tests/preload_cases
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

if "$run" --ram 32M -- "$cases"; then ok "preload cases under --ram 32M"; else bad "preload cases under --ram 32M"; fi

"$run" --ram 32M -- "$cases" 42; rc=$?
[ $rc -eq 42 ] && ok "exit status 42 passes through" || bad "exit status: got $rc, want 42"
"$run" --ram 32M -- sh -c 'kill -TERM $$'; rc=$?
[ $rc -eq $((128 + 15)) ] && ok "death by SIGTERM shows as 143" || bad "signal: got $rc, want 143"
"$run" --ram 32M -- /nonexistent/prog 2>/dev/null; rc=$?
[ $rc -eq 127 ] && ok "a missing command gives 127" || bad "missing command: got $rc, want 127"

# Bad values: upager-run stops before the program runs ...
for kv in "--ram 12Q" "--ram -1" "--page 3000" "--policy lru" "--handlers 0" "--store-max 1.G"; do
	out=$("$run" $kv -- true 2>&1); rc=$?
	[ $rc -eq 2 ] && [ -n "$out" ] && ok "upager-run $kv: exit 2, '$(echo "$out" | head -1)'" ||
		bad "upager-run $kv: exit $rc, message '$out'"
done
# ... and so does the preload library used directly, naming the variable.
for kv in UPAGER_RAM=12Q UPAGER_PAGE=3000 UPAGER_POLICY=lru UPAGER_LOG=loud UPAGER_STORE=/nonexistent/dir; do
	out=$(env "$kv" LD_PRELOAD="$build/libupager-preload.so" true 2>&1); rc=$?
	var=${kv%%=*}
	if [ $rc -ne 0 ] && { echo "$out" | grep -q "$var" || [ "$var" = UPAGER_STORE ]; } && [ -n "$out" ]; then
		ok "LD_PRELOAD with $kv: exit $rc, '$(echo "$out" | head -1)'"
	else
		bad "LD_PRELOAD with $kv: exit $rc, message '$out'"
	fi
done

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
echo "preload: $pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
