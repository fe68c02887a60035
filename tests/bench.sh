#!/usr/bin/env bash
# upager-bench compare, small: the four sides (kernel swap, kernel swap +
# zswap, upager with its compressed pool, upager with the pool off; the
# kernel's only when this machine allows a cgroup and a swap file) run the
# same workloads over heap-like data, every page is verified on every side,
# and the report holds what README's Performance section is made from: the
# table, the device's limits at the thread counts, the pool's figures, and
# the JSON and CSV forms.  zswap's parameters and vm.page-cluster read the
# same afterwards, and nothing the run made is left.  A second, shorter run
# over random data checks that the pool refuses it.  Then the plain mode's
# --forecast and --warmup, file mode and floor.  Bad arguments are refused
# with a message naming them.
#   bench.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
bench=$build/tools/upager-bench
work=$(mktemp -d /var/tmp/upager-bench-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# What compare may change on the machine, to compare before and after.
machine_state() {
	grep -r . /sys/module/zswap/parameters/ /proc/sys/vm/page-cluster 2>/dev/null
	mount | grep -c ' type debugfs '
}
machine_state >"$work/state.before"

"$bench" compare --quick --ram 16M --data 64M --workload seq-read,rand-read,rand-rmw --threads 1,2 \
	--json "$work/c.json" --csv "$work/c.csv" --quiet >"$work/out" 2>"$work/err"
rc=$?
pid_note=$(grep -o 'upager-bench-swap-[0-9]*' "$work/out" | head -1)
cat "$work/out"
[ $rc -eq 0 ] || { bad "exit status $rc"; tail -5 "$work/err"; }
grep -q "every page verified" "$work/out" || bad "no 'every page verified' line"

machine_state >"$work/state.after"
diff "$work/state.before" "$work/state.after" >"$work/state.diff" ||
	{ bad "zswap's parameters, vm.page-cluster or debugfs differ after the run:"; cat "$work/state.diff"; }
if [ -n "$pid_note" ]; then
	pid=${pid_note##*-}
	swapon --show=NAME --noheadings 2>/dev/null | grep -q "upager-bench-swap-$pid" && bad "swap file of pid $pid still on"
	ls /run/upager-bench-zswap-"$pid" >/dev/null 2>&1 && bad "/run/upager-bench-zswap-$pid left behind"
	find /sys/fs/cgroup -maxdepth 6 -type d -name "upager-bench-$pid" 2>/dev/null | grep -q . &&
		bad "cgroup upager-bench-$pid left behind"
fi

python3 - "$work/c.json" "$work/out" "$work/c.csv" <<'PY' || fail=1
import csv, json, sys
c = json.load(open(sys.argv[1]))
out = open(sys.argv[2]).read()
rows = list(csv.DictReader(open(sys.argv[3])))
errs = []
cfg = c["config"]
if cfg.get("content") != "heap":
    errs.append(f"config content {cfg.get('content')!r}, expected 'heap' (the default)")
# Heap data is tuned to 2.5 to 3.5x with LZ4, the checked words included.
if not 2.5 <= (cfg.get("content_lz4_ratio") or 0) <= 3.5:
    errs.append(f"content_lz4_ratio {cfg.get('content_lz4_ratio')}, expected 2.5 to 3.5 for heap data")
if "heap" not in out.split("content", 1)[-1].split("\n", 1)[0]:
    errs.append("the header has no content line naming heap")
if sorted(cfg.get("sides", [])) != sorted(["kernel", "zswap", "upager", "upager-nopool"]):
    errs.append(f"config sides {cfg.get('sides')}, expected all four")

res = c["results"]
got = sorted((r["workload"], r["threads"]) for r in res)
want = sorted([("seq-read", 1), ("rand-read", 1), ("rand-read", 2), ("rand-rmw", 1), ("rand-rmw", 2)])
if got != want:
    errs.append(f"runs {got}, expected {want}")
kernel = c["kernel_side"]["ran"]
zs = c["zswap_side"]
sides = ["upager", "upager_nopool"] + (["kernel"] if kernel else []) + (["zswap"] if zs["ran"] else [])
for r in res:
    name = f'{r["workload"]}/{r["threads"]}'
    for side in sides:
        row = r.get(side)
        if row is None or "why" in row:
            errs.append(f"{name}: no {side} row: {row and row.get('why')}")
            continue
        if row["bad_words"] != 0:
            errs.append(f"{name}: {side} {row['bad_words']} wrong words")
        if row["content"] != "heap":
            errs.append(f"{name}: {side} row content {row['content']!r}")
        h = row["pool_hit_share"]
        if h is not None and not 0 <= h <= 1:
            errs.append(f"{name}: {side} pool hit share {h}")
    u, n = r["upager"], r["upager_nopool"]
    if "why" in u or "why" in n:
        continue
    # 64 MiB over a 16 MiB budget: the store must really have been used,
    # and with the pool on, the pool too.
    if r["workload"] != "seq-read":
        for side, row in (("upager", u), ("upager-nopool", n)):
            if row["store_reads"] == 0 or row["evictions"] == 0:
                errs.append(f"{name}: {side} made {row['store_reads']} store reads and {row['evictions']} evictions")
        if not (u["pool_puts"] > 0 and u["pool_hits"] > 0 and u["pool_hit_share"] is not None
                and 0 < u["pool_hit_share"] < 1):
            errs.append(f"{name}: upager's pool: {u['pool_puts']} puts, {u['pool_hits']} hits, "
                        f"hit share {u['pool_hit_share']}")
        # The pool's own ratio: the LZ4 ratio less the size classes' slack.
        if not (u["pool_ratio"] and 1.5 < u["pool_ratio"] <= cfg["content_lz4_ratio"] + 0.1):
            errs.append(f"{name}: upager's pool ratio {u['pool_ratio']} with LZ4 at {cfg['content_lz4_ratio']}")
    if n["pool_puts"] or n["pool_hits"] or n["pool_bytes"] or n["pool_hit_share"] is not None:
        errs.append(f"{name}: the pool-off side used a pool: {n['pool_puts']} puts, {n['pool_hits']} hits")
    # The evictor's cost per evicted page: its own thread's CPU, so
    # positive and below the whole of upager's threads.
    for side, row in (("upager", u), ("upager-nopool", n)):
        if row["evictions"] and not (0 < row["cpu_s_evictor"] <= row["cpu_s_pager_threads"] + 1e-3
                                     and row["cpu_s_per_eviction"] > 0):
            errs.append(f"{name}: {side} evictor CPU {row['cpu_s_evictor']} s of {row['cpu_s_pager_threads']} s, "
                        f"per eviction {row['cpu_s_per_eviction']}")
    # How the evictor took its victims out: counted, and a sequential
    # pass's pages in runs of neighbours.
    for side, row in (("upager", u), ("upager-nopool", n)):
        calls, pages, alone = row["takeout_calls"], row["takeout_pages"], row["takeout_alone"]
        if row["evictions"] and not (0 < calls and alone <= calls <= pages):
            errs.append(f"{name}: {side} took {pages} pages out in {calls} calls, {alone} alone")
        elif r["workload"] == "seq-read" and calls * 8 > pages:
            errs.append(f"{name}: {side} took {pages} pages of a sequential pass out in {calls} calls (runs expected)")
    if kernel and "why" not in r["kernel"] and not (r["ratio"] and r["ratio"] > 0):
        errs.append(f"{name}: ratio {r['ratio']}")
    if zs["ran"] and "why" not in r["zswap"]:
        z = r["zswap"]
        if not (r["ratio_zswap"] and r["ratio_zswap"] > 0):
            errs.append(f"{name}: ratio_zswap {r['ratio_zswap']}")
        if zs["debugfs"] and not (z["pool_bytes"] > 0 and z["pool_ratio"] and z["pool_ratio"] > 1):
            errs.append(f"{name}: zswap's pool {z['pool_bytes']} bytes, ratio {z['pool_ratio']}")
if zs["ran"]:
    for k in ("compressor", "enabled_before", "compressor_before", "max_pool_percent", "page_cluster",
              "page_cluster_before", "pool_charged_to_cgroup"):
        if k not in zs:
            errs.append(f"zswap_side has no {k}")
    if zs.get("debugfs") and zs.get("pool_charged_to_cgroup") is None:
        errs.append(f"zswap_side: whether the pool is charged was not determined: {zs.get('charge_evidence')}")
    if "zswap and the memory cgroup" not in out:
        errs.append("no line on zswap and the memory cgroup")
elif kernel:
    print(f"note: zswap side not run: {zs.get('why')}")
for t in ("tiers: rand-read upager/kernel swap, heap data", "tiers: rand-read upager/zswap, heap data",
          "tiers: sequential rows, upager/upager pool off"):
    x = [g for g in c["targets"] if g["target"] == t]
    if len(x) != 1 or not x[0]["value"]:
        errs.append(f"target {t!r}: {x}")
if not any(l.split()[:1] in (["PASS"], ["MISS"]) for l in out.splitlines()):
    errs.append("no PASS or MISS in the targets")
want_cols = {"backend", "content", "content_lz4_ratio", "pool_hit_share", "pool_ratio", "pool_bytes"}
if not rows or not want_cols <= set(rows[0]):
    errs.append(f"CSV columns lack {sorted(want_cols - set(rows[0] if rows else []))}")
elif sorted({r["backend"] for r in rows}) != sorted(s.replace("_", "-") for s in sides):
    errs.append(f"CSV backends {sorted({r['backend'] for r in rows})}")
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

# Random data: LZ4 gains nothing, the pool refuses every page, and the data
# still verifies with the pool on and off, in each of three runs a side
# (--repeat: the row is the run of median rate, its range beside it).
"$bench" compare --quick --ram 16M --data 64M --workload rand-rmw --threads 1 --sides upager,upager-nopool \
	--content random --no-device --repeat 3 --json "$work/r.json" --quiet >"$work/rout" 2>"$work/rerr"
rc=$?
[ $rc -eq 0 ] || { bad "--content random: exit status $rc"; tail -5 "$work/rerr"; }
python3 - "$work/r.json" <<'PY' || fail=1
import json, sys
c = json.load(open(sys.argv[1]))
errs = []
if c["config"]["content"] != "random" or not c["config"]["content_lz4_ratio"] < 1.05:
    errs.append(f"content {c['config']['content']}, LZ4 ratio {c['config']['content_lz4_ratio']}: expected random, < 1.05")
if not c["verified"]:
    errs.append("not verified")
for r in c["results"]:
    u, n = r["upager"], r["upager_nopool"]
    if "why" in u or "why" in n:
        errs.append(f"a side did not run: {u.get('why')} {n.get('why')}")
        continue
    if u["bad_words"] or n["bad_words"]:
        errs.append(f"wrong words: {u['bad_words']} with the pool, {n['bad_words']} without")
    if not (u["pool_rejects"] > 0 and u["pool_puts"] == 0 and u["pool_hits"] == 0):
        errs.append(f"random data: the pool took {u['pool_puts']} pages and refused {u['pool_rejects']}")
    if r["ratio_nopool"] is None or not r["ratio_nopool"] > 0:
        errs.append(f"ratio_nopool {r['ratio_nopool']}")
    for k, s in (("upager", u), ("upager_nopool", n)):
        runs, lo, hi = r.get(k + "_runs"), r.get(k + "_rate_min"), r.get(k + "_rate_max")
        if runs != 3 or r.get(k + "_failed") != 0 or lo is None or not lo - 0.1 <= s["accesses_per_s"] <= hi + 0.1:
            errs.append(f"--repeat 3, {k}: {runs} runs ({r.get(k + '_failed')} failed), rate {s['accesses_per_s']} against {lo} to {hi}")
if c["config"].get("repeat") != 3:
    errs.append(f"config repeat {c['config'].get('repeat')}")
x = [t for t in c["targets"] if t["target"].startswith("tiers: random data")]
if len(x) != 1 or x[0]["met"] is None:
    errs.append(f"random-data target not measured: {x}")
for e in errs:
    print("FAIL (random data):", e)
sys.exit(1 if errs else 0)
PY

# --forecast: the forecast from a run beside real runs at 1.5x and 2x,
# every page verified at each budget; the figures themselves are a
# benchmark's (README), not checked here beyond being there.
"$bench" --ram 16M --data 64M --workload zipf --forecast --quiet >"$work/fc" 2>&1
rc=$?
[ $rc -eq 0 ] || { bad "--forecast: exit status $rc"; cat "$work/fc"; }
grep -q "every page verified" "$work/fc" || bad "--forecast: not every page verified"
grep -Eq '^forecast  zipf, 1 thread: [0-9]+ refills at 16 MiB; 1.5x 24 MiB: forecast [0-9]+, run [1-9][0-9]* \([-+][0-9.]+%\); 2x 32 MiB: forecast [0-9]+, run [1-9][0-9]* \([-+][0-9.]+%\); (knee [0-9]+ MiB|no knee up to [0-9]+ MiB)$' "$work/fc" ||
	{ bad "--forecast: no forecast line"; cat "$work/fc"; }
"$bench" compare --forecast >"$work/bad" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--forecast belongs to the plain mode" "$work/bad" ||
	{ bad "compare --forecast: exit status $rc, expected 2 and a message"; cat "$work/bad"; }

# tools/forecast-check.sh: the same for a program under upager-run.
check=$(dirname "$0")/../tools/forecast-check.sh
bash "$check" -b "$build" 4M -- "$build/examples/kvstore" 16M >"$work/fcc" 2>&1
rc=$?
[ $rc -eq 0 ] || { bad "forecast-check.sh: exit status $rc"; cat "$work/fcc"; }
for x in '^at 4 MiB: [1-9][0-9]* refills, ' '^at 1.5x 6 MiB: forecast [0-9]+ refills, the run made [1-9][0-9]* \([-+][0-9.]+%\)' \
	'^at 2x 8 MiB: forecast [0-9]+ refills, the run made [1-9][0-9]* \([-+][0-9.]+%\)'; do
	grep -Eq "$x" "$work/fcc" || { bad "forecast-check.sh: no line like $x"; cat "$work/fcc"; }
done
bash "$check" -b "$build" 4X -- true >"$work/bad" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "RAM '4X' is not a size" "$work/bad" || { bad "forecast-check.sh 4X: exit status $rc"; cat "$work/bad"; }

# --warmup: untimed accesses before the timed phase.  Right after the fill
# RAM holds the fill's last pages side by side, and the first evictions
# take them out in long runs; after a warm-up the timed phase evicts pages
# the random accesses left scattered, alone.  So the timed phase's share
# of pages taken out alone must rise, while its figures stay its own: the
# accesses as asked, no more refills than they can make.  zipf, which
# writes, checks every page after a warm-up too.
for w in 0 24K; do
	"$bench" --ram 16M --data 64M --workload rand-read --threads 2 --accesses 4K --warmup $w --quiet \
		--json "$work/warm$w.json" >"$work/warm$w" 2>&1 ||
		{ bad "--warmup $w: exit status $?"; cat "$work/warm$w"; }
	grep -q "every page verified" "$work/warm$w" || bad "--warmup $w: not every page verified"
done
"$bench" --ram 16M --data 64M --workload zipf --threads 2 --accesses 4K --warmup 40K --quiet \
	--json "$work/warmz.json" >"$work/warmz" 2>&1 || { bad "--warmup zipf: exit status $?"; cat "$work/warmz"; }
grep -q "every page verified" "$work/warmz" || bad "--warmup zipf: not every page verified"
grep -q "random workloads warmed up by 24576 untimed accesses" "$work/warm24K" ||
	bad "--warmup: the header does not say so"
python3 - "$work/warm0.json" "$work/warm24K.json" "$work/warmz.json" <<'PY' || fail=1
import json, sys
errs = []
def timed(f, warm):
    d = json.load(open(f))
    r = d["results"][0]
    if d["config"]["warmup"] != warm:
        errs.append(f"{f}: warmup {d['config']['warmup']} in the settings, asked {warm}")
    if r["accesses"] != 4096:
        errs.append(f"{f}: {r['accesses']} timed accesses, asked 4096")
    if not 0 < r["pages_touched"] <= 4096:
        errs.append(f"{f}: {r['pages_touched']} pages touched in 4096 accesses")
    # One refill at most per timed access (the warm-up's would be thousands).
    if r["store_reads"] + r["pool_hits"] > 4096:
        errs.append(f"{f}: {r['store_reads']} store reads and {r['pool_hits']} pool hits in 4096 accesses")
    return r["takeout_alone"] / max(r["takeout_pages"], 1)
a0, a1 = timed(sys.argv[1], 0), timed(sys.argv[2], 24576)
timed(sys.argv[3], 40960)
print(f"--warmup: pages taken out alone in the timed phase: {a0:.2f} cold, {a1:.2f} after 24576 accesses")
if not a1 >= a0 + 0.25:
    errs.append("--warmup did not change what the timed phase evicts")
for e in errs:
    print("FAIL:", e)
sys.exit(1 if errs else 0)
PY
"$bench" --warmup lots >"$work/bad" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--warmup" "$work/bad" || { bad "--warmup lots: exit status $rc, expected 2"; cat "$work/bad"; }
# A warm-up no chosen workload makes is refused, naming those that do.
"$bench" --ram 8M --data 32M --workload seq-read,stride --warmup 1K >"$work/bad" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "no workload chosen (seq-read, stride) is warmed up; it applies to rand-read, rand-rmw, zipf" "$work/bad" ||
	{ bad "--warmup with seq-read and stride only: exit status $rc, expected 2"; cat "$work/bad"; }

# file mode, small: every workload on upager and mmap-random, the data
# checked by the tool (exit status 1 on a wrong page or a lost update).
"$bench" file --ram 8M --data 64M --accesses 2000 --sides upager,mmap-random >"$work/file" 2>&1
rc=$?
[ $rc -eq 0 ] || { bad "file: exit status $rc"; cat "$work/file"; }
grep -q "FAILED" "$work/file" && { bad "file: a run failed"; cat "$work/file"; }
for w in scan rand-read rand-update; do
	grep -Eq "^  $w +upager/mmap-random [0-9.]+x$" "$work/file" || { bad "file: no ratio for $w"; cat "$work/file"; }
done

# floor: the round trip's four ways, the take-out's five (the two with
# process_madvise() may be unavailable: a process advises itself so from
# Linux 6.13), the disk and the
# kernel's fault, and the bounds, each a figure; a bad value refused with the
# option named.
"$bench" floor --faults 5000 --reads 2000 --file-size 64M >"$work/floor" 2>&1
rc=$?
[ $rc -eq 0 ] || { bad "floor: exit status $rc"; cat "$work/floor"; }
for x in '^  answerer sleeping in poll\(\) between faults +[0-9.]+ us$' '^  answerer spinning on the descriptor +[0-9.]+ us$' \
	'^  both threads on one CPU +[0-9.]+ us$' '^  in the faulting thread \(SIGBUS handler\) +[0-9.]+ us$' \
	'^  a fault it serves from RAM \(a compressed pool\) takes at least [0-9.]+ us' '^  answered in the faulting thread, a read\(\) into a missing page failed with EFAULT' \
	'^  4 KiB O_DIRECT random read, depth 1, io_uring +[0-9.]+ us$' \
	'^  kernel fault, MAP_SHARED \+ MADV_RANDOM +[0-9.]+ us$' '^    at most [0-9.]+x the kernel.s fault on a MADV_RANDOM mapping' \
	'^taking pages out of a region with UFFDIO_MOVE \(as an evictor does\), 4608 pages:$' \
	'^  one page a call, another thread running +[0-9.]+ us a page$' \
	'^  64 neighbours a call, another thread running +[0-9.]+ us a page$' \
	'^  one page a call, no other thread running +[0-9.]+ us a page$' \
	'^dropping them with process_madvise\(MADV_DONTNEED\), no REMOVE events asked' \
	'^  64 scattered a call, another thread running +([0-9.]+ us a page|unavailable: .*process_madvise.*)$' \
	'^  512 scattered a call, another thread running +([0-9.]+ us a page|unavailable: .*process_madvise.*)$'; do
	grep -Eq "$x" "$work/floor" || { bad "floor: no line like $x"; cat "$work/floor"; }
done
ls /var/tmp/upager-bench-floor-* /tmp/upager-bench-floor-* >/dev/null 2>&1 && bad "floor: its file was left behind"
"$bench" floor --faults 12 >"$work/bad" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--faults needs a number of at least 1000" "$work/bad" ||
	{ bad "floor --faults 12: exit status $rc, expected 2 and a message"; cat "$work/bad"; }

# Bad input: a clear message naming the option, exit status 2.
refused() { # option value
	"$bench" compare "$1" "$2" >"$work/bad" 2>&1
	rc=$?
	[ $rc -eq 2 ] || bad "$1 $2: exit status $rc, expected 2"
	grep -q -- "$1" "$work/bad" || { bad "$1 $2: the message does not name $1"; cat "$work/bad"; }
}
refused --threads 0
refused --content bogus
refused --sides kernel,bogus
refused --repeat 0
refused --repeat 10

[ $fail -eq 0 ] && echo "bench: OK"
exit $fail
