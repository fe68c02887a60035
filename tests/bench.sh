#!/usr/bin/env bash
# upager-bench compare, small: upager and the kernel's swap (when this
# machine allows a cgroup and a swap file) run the same workloads, every
# page is verified on both sides, and the report holds what README's
# Performance section is made from: the table, the device's limits at the
# thread counts, and the JSON form.  A bad argument is refused with a
# message naming it.
#   bench.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
bench=$build/tools/upager-bench
work=$(mktemp -d /var/tmp/upager-bench-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

"$bench" compare --quick --ram 16M --data 64M --workload seq-read,rand-read,rand-rmw --threads 1,2 \
	--json "$work/c.json" --quiet >"$work/out" 2>"$work/err"
rc=$?
cat "$work/out"
[ $rc -eq 0 ] || { bad "exit status $rc"; tail -5 "$work/err"; }
grep -q "every page verified" "$work/out" || bad "no 'every page verified' line"

python3 - "$work/c.json" "$work/out" <<'PY' || fail=1
import json, sys
c = json.load(open(sys.argv[1]))
out = open(sys.argv[2]).read()
errs = []
res = c["results"]
got = sorted((r["workload"], r["threads"]) for r in res)
want = sorted([("seq-read", 1), ("rand-read", 1), ("rand-read", 2), ("rand-rmw", 1), ("rand-rmw", 2)])
if got != want:
    errs.append(f"runs {got}, expected {want}")
kernel = c["kernel_side"]["ran"]
for r in res:
    name = f'{r["workload"]}/{r["threads"]}'
    u = r["upager"]
    if u is None:
        errs.append(f"{name}: no upager row")
        continue
    if u["bad_words"] != 0:
        errs.append(f"{name}: upager {u['bad_words']} wrong words")
    # 64 MiB over a 16 MiB budget: the store must really have been used.
    if r["workload"] != "seq-read" and (u["store_reads"] == 0 or u["evictions"] == 0):
        errs.append(f"{name}: upager made {u['store_reads']} store reads and {u['evictions']} evictions")
    # The evictor's cost per evicted page: its own thread's CPU, so
    # positive and below the whole of upager's threads.
    if u["evictions"] and not (0 < u["cpu_s_evictor"] <= u["cpu_s_pager_threads"] + 1e-3
                               and u["cpu_s_per_eviction"] > 0):
        errs.append(f"{name}: evictor CPU {u['cpu_s_evictor']} s of {u['cpu_s_pager_threads']} s, "
                    f"per eviction {u['cpu_s_per_eviction']}")
    if kernel:
        k = r["kernel"]
        if k is None:
            errs.append(f"{name}: the kernel side ran but has no row")
        elif k["bad_words"] != 0:
            errs.append(f"{name}: kernel {k['bad_words']} wrong words")
        elif r["ratio"] is None or not r["ratio"] > 0:
            errs.append(f"{name}: ratio {r['ratio']}")
dev = c["device"]
if dev["ran"]:
    qd = dev.get("randread_4k_iops_by_qd", {})
    if sorted(qd) != ["1", "2"] or not all(v > 0 for v in qd.values()):
        errs.append(f"device IOPS by queue depth {qd}, expected positive figures for 1 and 2")
    for w in ("rand-read", "rand-rmw"):
        for t in (1, 2):
            if not any(l.split()[:3] == [w, str(t), "thr"] for l in out.splitlines()):
                errs.append(f"no device-ceiling line for {w} at {t} thread(s)")
else:
    print(f"note: device not measured: {dev['why']}")
if not kernel:
    print(f"note: kernel side not run: {c['kernel_side']['why']}")
for e in errs:
    print("FAIL:", e)
sys.exit(1 if errs else 0)
PY

# Bad input: a clear message naming the option, exit status 2.
"$bench" compare --threads 0 >"$work/bad" 2>&1
rc=$?
[ $rc -eq 2 ] || bad "--threads 0: exit status $rc, expected 2"
grep -q -- "--threads" "$work/bad" || { bad "--threads 0: the message does not name --threads"; cat "$work/bad"; }

[ $fail -eq 0 ] && echo "bench: OK"
exit $fail
