#!/usr/bin/env bash
# upager-top, the live view: a tree of two paging programs under one
# --ram 8M, watched in a terminal (tmux: capture-pane twice, its figures
# must move; C-c must end it cleanly), and with --once --json (two
# snapshots: counters grow, the members' resident bytes add up to the
# tree's).  Bad arguments and a tree that has ended get clear errors.
#   top.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
. "$(dirname "$0")/guard.sh"
top=$build/tools/upager-top
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
work=$(mktemp -d)
session=upager-top-test-$$
trap 'tmux kill-session -t "$session" 2>/dev/null; kill $runner 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

if ! command -v tmux >/dev/null; then
	echo "SKIP: tmux is not installed (tools/setup.sh installs it)"; exit 77
fi

# The tree: kvstore and graph, each well over the budget, run again and
# again until the checks are done (the file stop).
guard 240 "$build/tools/upager-run" --ram 8M -- sh -c \
	"while [ ! -e $work/stop ]; do $build/examples/kvstore 16M >> $work/kv.out || exit 1; done &
	 while [ ! -e $work/stop ]; do $build/examples/graph 12M >> $work/graph.out || exit 1; done; wait \$!" \
	>/dev/null 2>"$work/run.err" &
runner=$!
tree=
for _ in $(seq 50); do
	sleep 0.1
	tree=$(ls /dev/shm/upager-tree-* 2>/dev/null | while read -r f; do
		p=${f##*-};
			grep -q "kvstore 16M" /proc/$p/cmdline 2>/dev/null && echo "$p"; done | head -1)
	[ -n "$tree" ] && break
done
if [ -z "$tree" ]; then
	bad "the tree's file did not appear"; echo "top: $pass passed, $fail failed"; exit 1
fi
sleep 2  # both programs paging

tmux new-session -d -s "$session" -x 150 -y 30 "$top --interval 0.5 $tree; echo upager-top-exited \$?; sleep 30"
sleep 2
tmux capture-pane -p -t "$session" >"$work/a.txt"
sleep 2
tmux capture-pane -p -t "$session" >"$work/b.txt"
if grep -q "budget 8.0 MiB" "$work/a.txt" && grep -q " kvstore " "$work/a.txt" && grep -q " graph " "$work/a.txt"; then
	ok "the terminal view shows the tree's budget and both programs"
else
	bad "the terminal view lacks the budget or a program:"; cat "$work/a.txt"
fi
row() { grep " $2 " "$1" | head -1 | awk '{print $3, $5, $6, $7, $8}'; }
if [ -n "$(row "$work/a.txt" kvstore)" ] && [ "$(row "$work/a.txt" kvstore)" != "$(row "$work/b.txt" kvstore)" ]; then
	ok "its figures move: kvstore '$(row "$work/a.txt" kvstore)' then '$(row "$work/b.txt" kvstore)'"
else
	bad "the figures did not move between two captures 2 s apart:"; cat "$work/a.txt" "$work/b.txt"
fi
tmux send-keys -t "$session" C-c
sleep 1
tmux capture-pane -p -t "$session" >"$work/c.txt"
if grep -q "upager-top-exited 0" "$work/c.txt"; then ok "C-c ends it cleanly (exit 0)"
else bad "C-c did not end it with status 0:"; tail -5 "$work/c.txt"; fi
tmux kill-session -t "$session" 2>/dev/null

# Two JSON snapshots a second apart, of the same kvstore and graph
# processes: each runs again and again, so a pair that spans a restart is
# taken again (up to five times).
for _ in 1 2 3 4 5; do
	"$top" --once --json "$tree" >"$work/j1.json" && sleep 1 && "$top" --once --json "$tree" >"$work/j2.json"
	verdict=$(python3 - "$work/j1.json" "$work/j2.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
def by(s): return {p["comm"]: p for p in s["processes"]}
pa, pb = by(a), by(b)
if any(k not in pa or k not in pb or pa[k]["pid"] != pb[k]["pid"] for k in ("kvstore", "graph")):
    print("again")
    sys.exit(0)
grew = all(pb[k]["evictions"] > pa[k]["evictions"] for k in ("kvstore", "graph"))
members = sum(p["resident"] for p in b["processes"])
# The tree's total also holds room reserved for reads in flight.
adds = abs(b["resident"] - members) <= max(b["budget"] // 8, 1 << 20)
within = b["resident_peak"] <= b["budget"] * 9 // 8 and all(p["thrashing"] in (True, False) for p in b["processes"])
print("ok" if grew and adds and within else "bad", len(b["processes"]), b["resident"] >> 20, members >> 20,
      b["budget"] >> 20, pb["kvstore"]["evictions"] - pa["kvstore"]["evictions"])
PY
)
	[ "$verdict" = again ] || break
done
set -- $verdict
if [ "${1:-}" = ok ]; then
	ok "--once --json: $2 processes, tree $3 MiB = members $4 MiB of $5; kvstore evicted $6 pages in a second"
else
	bad "--once --json: $verdict"; head -c 600 "$work/j2.json"; echo
fi

# Bad arguments, and a tree that has ended.
"$top" --interval 0 "$tree" 2>"$work/e1" && bad "--interval 0 was taken" ||
	{ grep -q "0.1 to 60" "$work/e1" && ok "--interval 0: $(cat "$work/e1")" || bad "--interval 0: $(cat "$work/e1")"; }
touch "$work/stop"
wait $runner
rc=$?
runs=$(grep -c "verify=OK" "$work/kv.out")
if [ $rc -eq 0 ] && [ "$runs" -ge 1 ] && [ "$runs" -eq "$(wc -l <"$work/kv.out")" ] && [ -s "$work/graph.out" ]; then
	ok "the tree's programs ran to the end, $runs kvstore runs verified"
else bad "the watched tree failed: exit $rc, $(tail -2 "$work/run.err")"; fi
"$top" --once "$tree" 2>"$work/e2" && bad "an ended tree was shown" ||
	{ grep -q "not a running tree" "$work/e2" && ok "an ended tree: $(cat "$work/e2")" || bad "an ended tree: $(cat "$work/e2")"; }

echo "top: $pass passed, $fail failed"
[ $fail -eq 0 ]
