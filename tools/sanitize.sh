#!/usr/bin/env bash
# Build upager with sanitizers and run the unit and integration suites.
#
#   tools/sanitize.sh [asan] [tsan]      (default: both)
#
#   asan: AddressSanitizer + UndefinedBehaviorSanitizer, in ./build-asan
#   tsan: ThreadSanitizer, in ./build-tsan
#
# Any sanitizer report fails the test it comes from (halt_on_error), and
# the script ends with one line per build.  Extra `meson test` arguments can
# be given in $SANITIZE_TEST_ARGS.
#
# What is not run, and why (each skips exactly that):
#   both  suite 'programs' (tests 'programs' and 'preload'): they run
#         unmodified programs (python3, sort, gcc, ...) with the preload
#         library, which replaces malloc.  A sanitizer runtime has to be the
#         first library loaded and replaces malloc itself, so an instrumented
#         preload library either refuses to load into those programs or, with
#         the runtime preloaded first, never gets a single malloc call.
#   tsan  test 'scale': it bounds the RssAnon growth of a 1 TiB region with
#         256 MiB touched at 16 MiB over the data; ThreadSanitizer's shadow
#         of the touched pages (about 1 GiB) counts in RssAnon.  Its data
#         paths run under tsan in 'integrity' and 'fullstore'.
#   tsan  test 'kernel_swap': it holds the process in a 48 MiB memory
#         cgroup so that the kernel swaps part of it out; ThreadSanitizer's
#         shadow memory alone is more than that, and the kernel kills the
#         test.  Its data paths run under ASan, and under tsan in 'integrity'.
#   tsan  in test 'fork', the case child_threads (it returns early under
#         __SANITIZE_THREAD__): ThreadSanitizer cannot start threads in the
#         child of a multithreaded fork.  die_after_fork=0 lets the other fork
#         cases, whose children start no threads, run.
#   tsan  in test 'threads', the case threads_exit_mid_fault (it returns
#         early under __SANITIZE_THREAD__): ThreadSanitizer holds a signal
#         until the thread next calls into its runtime, and the readers,
#         spinning over paged memory, never do, so they are never killed
#         and the test waits for them until its timeout.
#   tsan  tools/tsan.supp: the evictor's atomic add of zero to application
#         pages (unshare_page) races with the program's plain accesses by
#         design.
# ASan and UBSan run everything else, fork and the 1 TiB reservation
# included (ASan does not shadow MAP_NORESERVE regions until they are used).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/setup.sh

kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(asan tsan)
upager_install_missing

summary=() rc=0
for kind in "${kinds[@]}"; do
	dir=build-$kind
	skip=()
	case $kind in
	asan)
		sanitize=address,undefined
		mult=2
		export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		;;
	tsan)
		sanitize=thread
		# 64 threads faulting at 8x oversubscription run 5-15x slower.
		mult=3
		export TSAN_OPTIONS="halt_on_error=1 die_after_fork=0 second_deadlock_stack=1 suppressions=$PWD/tools/tsan.supp"
		skip=(scale kernel_swap)
		;;
	*)
		echo "sanitize: unknown kind '$kind' (asan or tsan)" >&2
		exit 2
		;;
	esac
	echo "sanitize: $kind: building $dir (-Db_sanitize=$sanitize)"
	if [ ! -f "$dir/build.ninja" ]; then
		# b_lundef=false: the shared library leaves the sanitizer
		# runtime's symbols to the executable.
		nice -n 10 meson setup "$dir" -Db_sanitize=$sanitize -Db_lundef=false >/dev/null
	fi
	nice -n 10 ninja -C "$dir" >/dev/null

	# The unit and integration tests, minus the exceptions above.
	tests=()
	for t in $(meson test -C "$dir" --list --suite unit --suite integration 2>/dev/null | sed 's/.* \/ //'); do
		[[ " ${skip[*]} " == *" $t "* ]] || tests+=("$t")
	done
	r=0
	# shellcheck disable=SC2086
	nice -n 10 meson test -C "$dir" --print-errorlogs --num-processes 1 --timeout-multiplier "$mult" ${SANITIZE_TEST_ARGS:-} "${tests[@]}" \
		>"$dir/sanitize.log" 2>&1 || r=$?
	grep -E '^ *[0-9]+/[0-9]+ ' "$dir/sanitize.log" | sed "s/^/  $kind /" || true
	reports=$(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' \
		"$dir/sanitize.log" || true)
	line=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
c = {}
for l in open(sys.argv[1]):
    if l.strip():
        r = json.loads(l)["result"]
        c[r] = c.get(r, 0) + 1
ok = c.get("OK", 0)
bad = sum(v for k, v in c.items() if k not in ("OK", "SKIP"))
print(f"{ok} passed, {bad} failed, {c.get('SKIP', 0)} skipped")
PY
)
	[ $r -eq 0 ] || rc=1
	summary+=("$kind ($sanitize): $line, $reports sanitizer reports; not run: programs suite${skip:+, ${skip[*]}}; log $dir/sanitize.log")
done
echo
printf 'sanitize: %s\n' "${summary[@]}"
exit $rc
