#!/usr/bin/env bash
# Real, unmodified programs under upager-run with a RAM cap far below their
# heap: each output must be byte-identical to the uncapped run, and the
# report must show the heap was really paged (store reads and writes).
#   programs.sh BUILD_DIR [NAME...]
set -u
build=$(cd "$1" && pwd); shift
run=$build/tools/upager-run
. "$(dirname "$0")/guard.sh"
ex=$build/examples
work=$(mktemp -d /var/tmp/upager-programs.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0 skip=0

# paged_out NAME: of the reports "$work/NAME.*.json" (every process writes
# one; a program may run others, like gcc runs cc1), take the one that
# paged the most: sets out (bytes written to the store), puts (pages
# compressed into the pool), in, hits and peak, which the caller declares.
paged_out() {
	local f o p
	out=0 in=0 peak=0 puts=0 hits=0
	for f in "$work/$1".*.json; do
		[ -s "$f" ] || continue
		o=$(sed -n 's/.*"bytes_out":\([0-9]*\).*/\1/p' "$f")
		p=$(sed -n 's/.*"pool_puts":\([0-9]*\).*/\1/p' "$f")
		if [ $((${o:-0} + ${p:-0} * 4096)) -ge $((out + puts * 4096)) ]; then
			out=${o:-0} puts=${p:-0}
			in=$(sed -n 's/.*"bytes_in":\([0-9]*\).*/\1/p' "$f")
			hits=$(sed -n 's/.*"pool_hits":\([0-9]*\).*/\1/p' "$f")
			peak=$(sed -n 's/.*"resident_peak":\([0-9]*\).*/\1/p' "$f")
		fi
	done
}

# check NAME CAP CMD...: run CMD plain and under upager-run --ram CAP, compare.
check() {
	local name=$1 cap=$2; shift 2
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then return; fi
	local t0=$SECONDS
	if ! "$@" >"$work/$name.plain" 2>"$work/$name.plain.err"; then
		echo "SKIP $name: the uncapped run failed: $(tail -1 "$work/$name.plain.err")"
		skip=$((skip + 1)); return
	fi
	local t1=$SECONDS
	rm -f "$work/$name".*.json
	guard 900 "$run" --ram "$cap" --report=json:"$work/$name.%p.json" -- "$@" >"$work/$name.capped" 2>"$work/$name.capped.err"
	local rc=$? t2=$SECONDS
	if [ $rc -ne 0 ]; then
		echo "FAIL $name: exit status $rc under upager-run --ram $cap"; tail -5 "$work/$name.capped.err"
		fail=$((fail + 1)); return
	fi
	if ! cmp -s "$work/$name.plain" "$work/$name.capped"; then
		echo "FAIL $name: output differs under upager-run --ram $cap"
		diff <(head -c 2000 "$work/$name.plain") <(head -c 2000 "$work/$name.capped") | head -10
		fail=$((fail + 1)); return
	fi
	# Paged out: written to the store, or compressed into the pool.
	local out in peak puts hits
	paged_out "$name"
	if [ "${out:-0}" -eq 0 ] && [ "${puts:-0}" -eq 0 ]; then
		echo "FAIL $name: nothing was paged out: the cap $cap was not below the heap"
		fail=$((fail + 1)); return
	fi
	if [ -n "${want_pool:-}" ] && { [ "${puts:-0}" -eq 0 ] || [ "${hits:-0}" -eq 0 ]; }; then
		echo "FAIL $name: the compressed pool was not used (${puts:-0} pages in, ${hits:-0} faults served)"
		fail=$((fail + 1)); return
	fi
	printf 'ok   %-14s identical output; %4d MiB out, %4d MiB in, pool %5d MiB in, %7d hits; peak %3d MiB; %3ds plain, %3ds capped\n' \
		"$name" $((out >> 20)) $((in >> 20)) $((puts >> 8)) "${hits:-0}" $((peak >> 20)) $((t1 - t0)) $((t2 - t1))
	pass=$((pass + 1))
}

only=("$@")
# A long case named without the long tests: say so rather than pass.
if [ "${UPG_PROGRAMS_LONG:-0}" != 1 ]; then
	for n in "${only[@]}"; do
		case $n in gcc | mawk | mawk-pool-big)
			echo "SKIP $n: a long case: run with UPG_PROGRAMS_LONG=1 (meson: -Dsoak=true)"; skip=$((skip + 1)) ;;
		esac
	done
fi

# The sizes of the cases in a memory cgroup below: two to five times their
# cap here, or their full sizes with the long tests (-Dsoak=true), which run
# 1.5 to 7 times as long (python3, node and java build 350 to 470 MiB).
if [ "${UPG_PROGRAMS_LONG:-0}" = 1 ]; then
	py_keys=1800000 map_keys=1150000 least_mib=350 sort_size=512M table_size=256M table_updates=50K
else
	py_keys=1300000 map_keys=700000 least_mib=224 sort_size=320M table_size=160M table_updates=25K
fi

# Python under PYTHONMALLOC=malloc sends every object to malloc.
export PYTHONMALLOC=malloc

check python 96M python3 -c '
import os
os.environ["PYTHONHASHSEED"] = "0"
d = {}
for i in range(1000000):
    d["k%d" % i] = ("v%d" % (i * 7)) * 4
s = 0
for k, v in d.items():
    s = (s * 31 + len(k) + len(v)) % 1000000007
print(len(d), s)
'
awk 'BEGIN { srand(7); for (i = 0; i < 2500000; i++) printf "%08d %s\n", int(rand() * 1e8), i }' >"$work/lines.txt"
check sort 64M sort -S 160M "$work/lines.txt"

if command -v sqlite3 >/dev/null; then
	cat >"$work/db.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000)
INSERT INTO t SELECT x, printf('key%08d', (x * 7919) % 400000), zeroblob(200) || printf('%d', x) FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(length(v)), min(k), max(k) FROM t;
SELECT k, id FROM t ORDER BY k LIMIT 3 OFFSET 200000;
SQL
	check sqlite3 64M sqlite3 -cmd 'PRAGMA cache_size=-400000' :memory: ".read $work/db.sql"
else
	echo "SKIP sqlite3: not installed"; skip=$((skip + 1))
fi

check perl 96M perl -e 'my %h; for my $i (1 .. 500000) { $h{"k$i"} = "v" x ($i % 50) . $i } my $s = 0; $s = ($s * 31 + length($_) + length($h{$_})) % 1000000007 for sort keys %h; print scalar(keys %h), " $s\n"'

# A text heap that compresses (awk's hash of 300k lines, 42 MiB at its
# peak) under a cap of 36 MiB, with the compressed pool on (the default):
# the pool must take pages and serve faults.  The long tests (-Dsoak=true)
# also run 600k lines (about 70 MiB) under two thirds of it, which thrashes
# for minutes, and a hash of 800k numbers.
hash='{ a[$1] = $0 } END { n = 0; s = 0; for (k in a) { n++; s += length(a[k]) } print n, s }'
text_lines() { # N FILE
	awk -v n="$1" 'BEGIN { srand(11); for (i = 0; i < n; i++) printf "%08d row %d of the table\n", int(rand() * 1e8), i }' >"$2"
}
text_lines 300000 "$work/text.txt"
want_pool=1 check mawk-pool 36M mawk "$hash" "$work/text.txt"
if [ "${UPG_PROGRAMS_LONG:-0}" = 1 ]; then
	text_lines 600000 "$work/text2.txt"
	want_pool=1 check mawk-pool-big 56M mawk "$hash" "$work/text2.txt"
	check mawk 48M mawk 'BEGIN { for (i = 0; i < 800000; i++) a["k" i] = i * 3; s = 0; n = 0; for (k in a) { s += a[k]; n++ } print n, s }'
fi

# gcc: a generated file big enough that cc1 needs far more than the cap.
# It runs for minutes under the cap: with the long tests only (-Dsoak=true).
if [ "${UPG_PROGRAMS_LONG:-0}" = 1 ]; then
	python3 - "$work/big.c" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(6000):
        f.write(f"int f{i}(int x) {{ int a[8] = {{{','.join(str((i * j) % 97) for j in range(8))}}}; "
                f"for (int k = 0; k < 8; k++) x = x * 31 + a[k] + (x >> 3); return x ^ {i}; }}\n")
    f.write("int main(void) { int s = 0;\n")
    for i in range(6000):
        f.write(f"s += f{i}({i});\n")
    f.write('return s & 1; }\n')
PY
	check gcc 64M sh -c "gcc -O2 -c '$work/big.c' -o '$work/big.o' && sha256sum < '$work/big.o'"
fi

[ -x "$ex/mt_containers" ] && check cxx-threads 64M "$ex/mt_containers" 160M
[ -x "$ex/kvstore" ] && check kvstore 48M "$ex/kvstore" 96M
[ -x "$ex/graph" ] && check graph 28M "$ex/graph" 40M

# A memory cgroup with no swap is the honest judge of a cap.
# in_cgroup LIMIT_BYTES OUT ERR CMD...: run CMD in a fresh one; sets cg_rc,
# cg_peak (bytes, the cgroup's own high-water mark) and cg_secs.  Returns 1,
# with cg_why saying why (the caller says SKIP), when no memory cgroup can be
# made here, or when swap is on and the cgroup cannot keep CMD out of it
# (its pages would go to the kernel's swap, and the cap would prove nothing).
cg_v=0
if [ -w /sys/fs/cgroup/memory ]; then cg_v=1
elif [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then cg_v=2
fi
in_cgroup() {
	local limit=$1 out=$2 err=$3 cg; shift 3
	if [ $cg_v = 1 ]; then cg=/sys/fs/cgroup/memory/upager-test-$$-$RANDOM; else cg=/sys/fs/cgroup/upager-test-$$-$RANDOM; fi
	cg_why="no writable memory cgroup (needs root and the memory controller)"
	if [ $cg_v = 0 ] || ! mkdir "$cg" 2>/dev/null; then
		return 1
	fi
	local swap_capped=0
	if [ $cg_v = 1 ]; then
		echo "$limit" >"$cg/memory.limit_in_bytes"
		[ -f "$cg/memory.memsw.limit_in_bytes" ] && echo "$limit" >"$cg/memory.memsw.limit_in_bytes" 2>/dev/null &&
			[ "$(cat "$cg/memory.memsw.limit_in_bytes")" = "$(cat "$cg/memory.limit_in_bytes")" ] && swap_capped=1
	else
		echo "$limit" >"$cg/memory.max"
		echo 0 >"$cg/memory.swap.max" 2>/dev/null && [ "$(cat "$cg/memory.swap.max")" = 0 ] && swap_capped=1
	fi
	if [ $swap_capped = 0 ] && [ "$(awk 'NR > 1' /proc/swaps | wc -l)" -gt 0 ]; then
		cg_why="swap is on ($(awk 'NR > 1 { printf "%s%s", (n++ ? ", " : ""), $1 }' /proc/swaps)) and the memory cgroup cannot keep the program out of it"
		if [ $cg_v = 1 ] && [ ! -f "$cg/memory.memsw.limit_in_bytes" ]; then cg_why+=" (no memory.memsw.limit_in_bytes: boot with swapaccount=1)"; fi
		cg_why+=", so the cap would prove nothing; run swapoff -a first"
		rmdir "$cg" 2>/dev/null
		return 1
	fi
	local t0=$SECONDS
	guard 900 sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" "$@" >"$out" 2>"$err"
	cg_rc=$? cg_secs=$((SECONDS - t0))
	if [ $cg_v = 1 ]; then cg_peak=$(cat "$cg/memory.max_usage_in_bytes"); else cg_peak=$(cat "$cg/memory.peak" 2>/dev/null || echo 0); fi
	rmdir "$cg" 2>/dev/null
	return 0
}

# An honest cap: bigsort with a heap of 320 MiB (512 with the long tests)
# under --ram 128M, inside a memory cgroup of 128 MiB + 64 MiB, as whole()
# runs the programs below (the store uses O_DIRECT, so swapped-out pages do
# not sit in the page cache charged to the cgroup).  With no memory cgroup
# to be had, bigsort 256M runs at --ram 64M without one, as "bigsort".
honest_cap() {
	if [ $cg_v = 0 ]; then
		check bigsort 64M "$ex/bigsort" 256M
		return
	fi
	whole 128M cgroup "$ex/bigsort" "$sort_size"
}

# Whole programs whose heaps are their own mmap()s (pymalloc's arenas, V8,
# the JVM), each building about twice the cap here (250 to 310 MiB), or
# well over 350 MiB with the long tests (see the sizes above): at --ram
# 128M inside a cgroup of 128 + 64 MiB with no swap, the output must match
# the uncapped run, nothing may be OOM-killed, and the report must show
# pages out.  The cgroup's limit is
# what node and java would size their heaps from, so they are told their
# heap size, as a user would.
# whole CAP NAME CMD...
whole() {
	local cap=$1 name=$2; shift 2
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then return; fi
	local t0=$SECONDS
	if ! /usr/bin/time -f %M -o "$work/$name.rss" "$@" >"$work/$name.plain" 2>"$work/$name.plain.err"; then
		echo "SKIP $name: the uncapped run failed: $(tail -1 "$work/$name.plain.err")"
		skip=$((skip + 1)); return
	fi
	local plain_secs=$((SECONDS - t0)) plain_kb
	plain_kb=$(tail -1 "$work/$name.rss")
	if [ "$plain_kb" -lt $((least_mib << 10)) ]; then
		echo "FAIL $name: the uncapped run used only $((plain_kb >> 10)) MiB, under $least_mib: not a test of a 128M cap"
		fail=$((fail + 1)); return
	fi
	local cap_b
	cap_b=$(( ${cap%M} << 20 ))
	rm -f "$work/$name".*.json
	if ! in_cgroup $((cap_b + (64 << 20))) "$work/$name.capped" "$work/$name.capped.err" \
		"$run" --ram "$cap" --report=json:"$work/$name.%p.json" -- "$@"; then
		echo "SKIP $name: $cg_why"
		skip=$((skip + 1)); return
	fi
	if [ $cg_rc -ne 0 ]; then
		echo "FAIL $name: exit status $cg_rc at --ram $cap in a cgroup of $cap + 64 MiB (137 = OOM-killed)"
		tail -5 "$work/$name.capped.err"; fail=$((fail + 1)); return
	fi
	if ! cmp -s "$work/$name.plain" "$work/$name.capped"; then
		echo "FAIL $name: output differs at --ram $cap"
		diff <(head -c 2000 "$work/$name.plain") <(head -c 2000 "$work/$name.capped") | head -10
		fail=$((fail + 1)); return
	fi
	local out in peak puts hits
	paged_out "$name"
	if [ "$out" -eq 0 ] && [ "$puts" -eq 0 ]; then
		echo "FAIL $name: nothing was paged out at --ram $cap (no report, or the cap was not below its heap)"
		fail=$((fail + 1)); return
	fi
	printf 'ok   %-14s identical output; plain %4d MiB RSS in %3ds; --ram %s in a %d MiB cgroup: peak %3d MiB in %3ds; %d MiB out, pool %d MiB in\n' \
		"$name" $((plain_kb >> 10)) $plain_secs "$cap" $(((cap_b >> 20) + 64)) $((cg_peak >> 20)) $cg_secs \
		$((out >> 20)) $((puts >> 8))
	pass=$((pass + 1))
}

# A tree of processes shares one budget: four python3 processes of about
# 130 MiB each, started together by one shell, under one --ram 128M inside
# a cgroup of 128 + 160 MiB.  Each process's report carries the tree's
# resident total at its highest, taken at every change: it must not pass
# the budget.
tree() {
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " tree " ]]; then return; fi
	cat >"$work/part.py" <<'PY'
import hashlib, sys
seed = int(sys.argv[1])
d = {}
for i in range(600000):
    d["key%d-%d" % (seed, i)] = "value-%d-" % (i * 7 + seed) * 3
h = hashlib.sha256()
for k in sorted(d):
    h.update(k.encode()); h.update(d[k].encode())
print(seed, len(d), h.hexdigest())
PY
	cat >"$work/four.sh" <<SH
for s in 1 2 3 4; do env -u PYTHONMALLOC /usr/bin/python3 "$work/part.py" \$s > "$work/four.\$s" & done
wait
cat "$work/four.1" "$work/four.2" "$work/four.3" "$work/four.4"
SH
	local t0=$SECONDS
	sh "$work/four.sh" >"$work/tree.plain" 2>&1
	local plain_secs=$((SECONDS - t0))
	rm -f "$work"/tree.*.json
	if ! in_cgroup $(((128 + 160) << 20)) "$work/tree.capped" "$work/tree.capped.err" \
		env UPAGER_LOG=info "$run" --ram 128M --report=json:"$work/tree.%p.json" -- sh "$work/four.sh"; then
		echo "SKIP tree: $cg_why"
		skip=$((skip + 1)); return
	fi
	if [ $cg_rc -ne 0 ] || [ "$(wc -l <"$work/tree.plain")" -ne 4 ] || ! cmp -s "$work/tree.plain" "$work/tree.capped"; then
		echo "FAIL tree: exit $cg_rc (137 = OOM-killed), or outputs differ from the uncapped run"
		diff "$work/tree.plain" "$work/tree.capped" | head -5; tail -3 "$work/tree.capped.err"
		fail=$((fail + 1)); return
	fi
	local verdict
	verdict=$(cat "$work"/tree.*.json | python3 -c '
import json, sys
rs = [json.loads(l) for l in sys.stdin if l.strip()]
big = [r for r in rs if r["bytes_out"] > 0]
peak = max(r["tree_resident_peak"] for r in rs)
budget = rs[0]["tree_budget"]
ok = len(big) >= 4 and peak <= budget and all(r["tree_budget"] == budget for r in rs)
print(("ok" if ok else "bad"), len(rs), len(big), peak >> 20, budget >> 20, sum(r["resident_peak"] for r in big) >> 20, (peak - budget) >> 10)')
	set -- $verdict
	if [ "$1" != ok ]; then
		echo "FAIL tree: $2 reports, $3 paged; the tree's paged memory peaked at $4 MiB against a budget of $5 MiB ($7 KiB over)"
		grep -h "over the budget\|over it" "$work/tree.capped.err" | sort | uniq -c | head -5
		fail=$((fail + 1)); return
	fi
	printf 'ok   %-14s 4 x python3 under one --ram 128M in a 288 MiB cgroup: identical output; tree paged peak %d MiB of %d (the processes'"'"' own peaks add up to %d); cgroup peak %d MiB; %ds plain, %ds capped\n' \
		tree "$4" "$5" "$6" $((cg_peak >> 20)) $plain_secs $cg_secs
	pass=$((pass + 1))
}
tree

# A forked child verifies its parent's whole 512 MiB heap, as at fork time,
# at --ram 128M in a cgroup of 128 + 64 MiB: while the parent rewrites it,
# and again with the parent killed with SIGKILL half-way.  The child pages
# on its own, under the tree's budget, and needs nothing of its parent.
forked() {
	local mode=$1 name=fork-$1
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then return; fi
	if ! in_cgroup $(((128 + 64) << 20)) "$work/$name.out" "$work/$name.err" \
		"$run" --ram 128M -- "$build/tests/fork_verify" 512 "$mode"; then
		echo "SKIP $name: $cg_why"
		skip=$((skip + 1)); return
	fi
	if [ $cg_rc -ne 0 ] || ! grep -q "^ok " "$work/$name.out"; then
		echo "FAIL $name: exit $cg_rc (137 = OOM-killed): $(tail -2 "$work/$name.err")"
		fail=$((fail + 1)); return
	fi
	printf 'ok   %-14s %s; cgroup peak %d MiB of 192, %ds\n' "$name" "$(sed 's/^ok //' "$work/$name.out")" \
		$((cg_peak >> 20)) $cg_secs
	pass=$((pass + 1))
}
forked rewrite
forked kill

# python3's os.fork() with its heap mostly evicted: the child's own threads
# read the locale python set up (malloc'd) as they start, so that data
# must be in RAM at the fork (this hung every time before).  The child
# hashes the heap as it was at the fork, the parent after.
cat >"$work/forkpy.py" <<'PY'
import hashlib, os, random
r = random.Random(11)
a = [r.randbytes(4096) for _ in range(12000)]
pid = os.fork()
h = hashlib.sha256()
for x in a:
    h.update(x)
if pid == 0:
    os.write(1, ("child  " + h.hexdigest() + "\n").encode())
    os._exit(0)
_, st = os.waitpid(pid, 0)
print("parent", h.hexdigest(), "child status", st)
PY
check fork-python 16M /usr/bin/python3 "$work/forkpy.py"

cat >"$work/dict.py" <<PY
import hashlib
d = {}
for i in range($py_keys):
    d["key%d" % i] = "value-%d-" % (i * 7) * 3
h = hashlib.sha256()
for k in sorted(d):
    h.update(k.encode()); h.update(d[k].encode())
print(len(d), h.hexdigest())
PY
whole 128M python-pymalloc env -u PYTHONMALLOC /usr/bin/python3 "$work/dict.py"

if command -v node >/dev/null; then
	cat >"$work/map.js" <<JS
const crypto = require('crypto');
const m = new Map();
for (let i = 0; i < $map_keys; i++) m.set('key' + i, ('value-' + (i * 7) + '-').repeat(3));
const keys = [...m.keys()].sort();
const h = crypto.createHash('sha256');
for (const k of keys) { h.update(k); h.update(m.get(k)); }
console.log(m.size, h.digest('hex'));
JS
	whole 128M node node --max-old-space-size=2048 "$work/map.js"
else
	echo "SKIP node: not installed"; skip=$((skip + 1))
fi

if command -v java >/dev/null; then
	cat >"$work/Big.java" <<JAVA
import java.util.*; import java.security.*;
public class Big { public static void main(String[] a) throws Exception {
  HashMap<String,String> m = new HashMap<>();
  for (int i = 0; i < $map_keys; i++) { String v = "value-" + (i * 7) + "-"; m.put("key" + i, v + v + v); }
  ArrayList<String> keys = new ArrayList<>(m.keySet()); Collections.sort(keys);
  MessageDigest h = MessageDigest.getInstance("SHA-256");
  for (String k : keys) { h.update(k.getBytes("UTF-8")); h.update(m.get(k).getBytes("UTF-8")); }
  StringBuilder sb = new StringBuilder(); for (byte b : h.digest()) sb.append(String.format("%02x", b));
  System.out.println(m.size() + " " + sb);
}}
JAVA
	whole 128M java java -Xmx2g "$work/Big.java"
else
	echo "SKIP java: not installed"; skip=$((skip + 1))
fi

[ -x "$ex/bigsort" ] && honest_cap

# A file mapping under a cap: filetable (examples/filetable.c) builds a
# table of 160 MiB (256 with the long tests) of records in a file through
# upager_map_file(), searches it and updates it in place 25K times (50K),
# syncs, and checks every record on the file, with a 32 MiB budget inside
# a memory cgroup of 32 + 32 MiB.  The file's pages never sit in the page
# cache charged to the cgroup: it must not be OOM-killed, and its peak must
# stay near the budget.
file_cap() {
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " filetable " ]]; then return; fi
	if ! in_cgroup $(((32 + 32) << 20)) "$work/ft.out" "$work/ft.err" env TMPDIR="$work" \
		"$ex/filetable" --ram 32M --data "$table_size" --updates "$table_updates"; then
		echo "SKIP filetable: $cg_why"
		skip=$((skip + 1)); return
	fi
	if [ $cg_rc -ne 0 ] || ! grep -q "every record right on the file" "$work/ft.out"; then
		echo "FAIL filetable: exited $cg_rc (137 = OOM-killed): $(cat "$work/ft.out") $(tail -3 "$work/ft.err")"
		fail=$((fail + 1)); return
	fi
	printf 'ok   %-14s %s file, --ram 32M, 64 MiB cgroup: every record right, cgroup peak %d MiB, %ds\n' \
		filetable "$table_size" $((cg_peak >> 20)) $cg_secs
	sed 's/^/     /' "$work/ft.err" | tail -1
	pass=$((pass + 1))
}
[ -x "$ex/filetable" ] && file_cap

echo "programs: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
