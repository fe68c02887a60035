#!/usr/bin/env bash
# Real, unmodified programs under upager-run with a RAM cap far below their
# heap: each output must be byte-identical to the uncapped run, and the
# report must show the heap was really paged (store reads and writes).
#   programs.sh BUILD_DIR [NAME...]
set -u
build=$(cd "$1" && pwd); shift
run=$build/tools/upager-run
ex=$build/examples
work=$(mktemp -d /var/tmp/upager-programs.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0 skip=0

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
	"$run" --ram "$cap" --report=json:"$work/$name.%p.json" -- "$@" >"$work/$name.capped" 2>"$work/$name.capped.err"
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
	# Every process writes a report (a program may run others, like gcc
	# runs cc1): take the one that paged the most.
	local out=0 in=0 peak=0 f o
	for f in "$work/$name".*.json; do
		[ -s "$f" ] || continue
		o=$(sed -n 's/.*"bytes_out":\([0-9]*\).*/\1/p' "$f")
		if [ "${o:-0}" -ge "$out" ]; then
			out=$o
			in=$(sed -n 's/.*"bytes_in":\([0-9]*\).*/\1/p' "$f")
			peak=$(sed -n 's/.*"resident_peak":\([0-9]*\).*/\1/p' "$f")
		fi
	done
	if [ "${out:-0}" -eq 0 ]; then
		echo "FAIL $name: nothing was swapped out: the cap $cap was not below the heap"
		fail=$((fail + 1)); return
	fi
	printf 'ok   %-14s identical output; %4d MiB out, %4d MiB in, peak %3d MiB; %3ds plain, %3ds capped\n' \
		"$name" $((out >> 20)) $((in >> 20)) $((peak >> 20)) $((t1 - t0)) $((t2 - t1))
	pass=$((pass + 1))
}

only=("$@")

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

check mawk 48M mawk 'BEGIN { for (i = 0; i < 800000; i++) a["k" i] = i * 3; s = 0; n = 0; for (k in a) { s += a[k]; n++ } print n, s }'

# gcc: a generated file big enough that cc1 needs far more than the cap.
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

[ -x "$ex/mt_containers" ] && check cxx-threads 64M "$ex/mt_containers" 160M
[ -x "$ex/kvstore" ] && check kvstore 48M "$ex/kvstore" 96M
[ -x "$ex/bigsort" ] && check bigsort 64M "$ex/bigsort" 256M
[ -x "$ex/graph" ] && check graph 40M "$ex/graph" 60M

# An honest cap: a 1 GiB heap under --ram 256M, inside a memory cgroup of
# 256 MiB + 64 MiB, must not be OOM-killed (the store uses O_DIRECT, so
# swapped-out pages do not sit in the page cache charged to the cgroup).
honest_cap() {
	if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " cgroup " ]]; then return; fi
	local cg="" v=0
	if [ -w /sys/fs/cgroup/memory ]; then
		cg=/sys/fs/cgroup/memory/upager-test-$$; v=1
	elif [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
		cg=/sys/fs/cgroup/upager-test-$$; v=2
	fi
	if [ -z "$cg" ] || ! mkdir "$cg" 2>/dev/null; then
		echo "SKIP cgroup: no writable memory cgroup (needs root and the memory controller)"
		skip=$((skip + 1)); return
	fi
	local limit=$(((256 + 64) << 20))
	if [ $v = 1 ]; then
		echo $limit >"$cg/memory.limit_in_bytes"
		[ -f "$cg/memory.memsw.limit_in_bytes" ] && echo $limit >"$cg/memory.memsw.limit_in_bytes"
	else
		echo $limit >"$cg/memory.max"; echo 0 >"$cg/memory.swap.max" 2>/dev/null
	fi
	local t0=$SECONDS
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
		"$run" --ram 256M -- "$ex/bigsort" 1G >"$work/cg.out" 2>"$work/cg.err"
	local rc=$? peak
	if [ $v = 1 ]; then peak=$(cat "$cg/memory.max_usage_in_bytes"); else peak=$(cat "$cg/memory.peak" 2>/dev/null || echo 0); fi
	rmdir "$cg" 2>/dev/null
	if [ $rc -ne 0 ]; then
		echo "FAIL cgroup: bigsort 1G under --ram 256M in a 320 MiB cgroup exited $rc (137 = OOM-killed)"
		tail -3 "$work/cg.err"; fail=$((fail + 1)); return
	fi
	printf 'ok   %-14s 1 GiB heap, --ram 256M, 320 MiB cgroup: not OOM-killed, cgroup peak %d MiB, %ds\n' \
		cgroup $((peak >> 20)) $((SECONDS - t0))
	pass=$((pass + 1))
}
[ -x "$ex/bigsort" ] && honest_cap

echo "programs: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
