#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Check upager's forecast on a real program: run it under upager-run at a
# budget, then at 1.5 and 2 times that budget, and print the refills (faults
# that read a page back from the store or the pool) that the first run
# forecast for the larger budgets beside those the runs made, and the knee.
# The program must be one process that does the same work on every run
# (one report per run is read).
#
#   tools/forecast-check.sh [-b BUILD] RAM -- COMMAND [ARG...]
#   tools/forecast-check.sh 16M -- build/examples/kvstore 64M
#
# BUILD is the build directory (default: build).  RAM is a size such as
# 16M or 1G.  Exit status: 0 when the three runs completed, 1 when one
# failed, 2 on a bad argument.  No threshold is applied: the figures are
# printed.
set -euo pipefail

build=build
if [ "${1:-}" = -b ]; then
	if [ $# -lt 2 ]; then
		echo "$0: -b needs a build directory" >&2
		exit 2
	fi
	build=$2
	shift 2
fi
if [ $# -lt 3 ] || [ "$2" != -- ]; then
	echo "usage: $0 [-b BUILD] RAM -- COMMAND [ARG...]" >&2
	exit 2
fi
ram=$1
shift 2
run=$build/tools/upager-run
if [ ! -x "$run" ]; then
	echo "$0: $run is missing: build upager first (tools/setup.sh, or meson setup $build && ninja -C $build)" >&2
	exit 2
fi
if ! bytes=$(numfmt --from=iec "$ram" 2>/dev/null) || [ "$bytes" -lt 1048576 ]; then
	echo "$0: RAM '$ram' is not a size of 1M or more, such as 16M or 1G" >&2
	exit 2
fi
command -v python3 >/dev/null || { echo "$0: needs python3 to read the JSON reports" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
base=$((bytes / 4096 * 4096))
for k in 2 3 4; do  # halves of the budget: 1x, 1.5x, 2x (as the report's forecast takes them)
	b=$((base * k / 2))
	start=$(date +%s%N)
	if ! "$run" --ram "$b" --report="json:$dir/$k.json" -- "$@" >"$dir/$k.out" 2>&1; then
		echo "$0: the run at $b bytes failed; its output:" >&2
		tail -20 "$dir/$k.out" >&2
		exit 1
	fi
	echo "$((($(date +%s%N) - start) / 1000000))" >"$dir/$k.secs"
done

python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
runs = {}
for k in (2, 3, 4):
    try:
        runs[k] = json.load(open(f"{d}/{k}.json"))
    except (OSError, ValueError):
        sys.exit("forecast-check.sh: no single report from the run: the program must be one process "
                 "(a program that forks or execs writes one report per process)")
secs = {k: int(open(f"{d}/{k}.secs").read()) / 1000 for k in (2, 3, 4)}
refills = {k: r["store_reads"] + r["pool_hits"] for k, r in runs.items()}
base = runs[2]
mib = lambda b: b / 2**20
print(f"at {mib(base['ram_budget']):.0f} MiB: {refills[2]} refills, {secs[2]:.1f} s; "
      f"footprint {mib(base['footprint']):.0f} MiB; knee "
      + (f"{mib(base['knee']):.0f} MiB" if base["knee"] < base["footprint"] else "none (refills fall evenly)"))
for k, x in ((3, 1.5), (4, 2)):
    want = runs[k]["ram_budget"]
    f = min(base["forecast"], key=lambda e: abs(e["ram_budget"] - want))
    if f["ram_budget"] != want:
        print(f"at {x}x: the report has no forecast for {want} bytes")
        continue
    err = (f["refills"] - refills[k]) / refills[k] * 100 if refills[k] else 0
    print(f"at {x}x {mib(want):.0f} MiB: forecast {f['refills']} refills, the run made {refills[k]} "
          f"({err:+.1f}%), {secs[k]:.1f} s")
EOF
