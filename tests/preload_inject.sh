#!/usr/bin/env bash
# Store failures injected under an unmodified program (examples/bigsort,
# which sorts 32 MiB of records in a malloc'ed heap, paged by the preload
# library over the fault-injection build at an 8 MiB budget):
#   - transient read and write failures, and persistent write failures:
#     the output is byte-identical to the plain run, and the report counts
#     the failures (and the overshoot when writes never succeed);
#   - persistent read failures: the program dies of SIGBUS with a message
#     naming the page; it never produces output from wrong data.
#   preload_inject.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
lib=$build/libupager-preload-fi.so
work=$(mktemp -d /var/tmp/upager-inject.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

prog=("$build/examples/bigsort" 32M)
"${prog[@]}" >"$work/plain"

# run NAME SPEC: the program under the preload with UPAGER_INJECT=SPEC; sets rc.
run() {
	env UPAGER_RAM=8M UPAGER_STORE=/var/tmp UPAGER_INJECT="$2" UPAGER_REPORT="json:$work/$1.json" \
		LD_PRELOAD="$lib" "${prog[@]}" >"$work/$1.out" 2>"$work/$1.err"
	rc=$?
}
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$work/$1.json"; }

for spec in read:200:eio:once read:50:short:once write:20:eio:once write:1:enospc:always write:1:short:always \
	extend:1:enospc:once extend:1:eio:always; do
	name=${spec//:/_}
	run "$name" "$spec"
	if [ $rc -ne 0 ] || ! cmp -s "$work/plain" "$work/$name.out"; then
		bad "$spec: exit $rc, output $(cmp -s "$work/plain" "$work/$name.out" && echo same || echo DIFFERENT)"
		tail -3 "$work/$name.err"
		continue
	fi
	op=${spec%%:*}
	case $op in
	read) n=$(field "$name" read_errors); want="read_errors = 1" ; [ "$n" = 1 ] ;;
	write) n=$(field "$name" write_errors); want="write_errors >= 1"; [ "${n:-0}" -ge 1 ] ;;
	extend) n=$(field "$name" overshoot_peak)
		if [[ $spec == *:once ]]; then want="overshoot peak"; true
		else want="overshoot while the store could not grow"; [ "${n:-0}" -gt 0 ]; fi ;;
	esac
	if [ $? -ne 0 ]; then bad "$spec: output right but the report lacks $want: $(cat "$work/$name.json")"; continue; fi
	if [[ $spec == write:*:always ]] && [ "$(field "$name" overshoot_peak)" -eq 0 ]; then
		bad "$spec: writes never succeed yet no overshoot was reported"; continue
	fi
	ok "$spec: output identical, report: $want ($n)"
done

run poison read:200:eio:always
if [ $rc -eq $((128 + 7)) ] && grep -q "raises SIGBUS" "$work/poison.err" && ! cmp -s "$work/plain" "$work/poison.out"; then
	ok "read:200:eio:always: killed by SIGBUS, '$(grep -m1 "raises SIGBUS" "$work/poison.err")'"
else
	bad "read:200:eio:always: exit $rc (want 135, SIGBUS); stderr: $(tail -2 "$work/poison.err")"
fi
echo "preload_inject: $pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
