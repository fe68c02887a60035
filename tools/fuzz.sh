#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz) with clang and run each for a
# while, starting from the committed seed corpus.
#
#   tools/fuzz.sh [-t SECONDS] [TARGET...]
#
#   -t SECONDS  time per target (default: $FUZZ_TIME, or 60)
#   TARGET      fuzz_size, fuzz_options, fuzz_run_args (default: all)
#
# Builds into ./build-fuzz.  Inputs that find new paths are kept in
# build-fuzz/corpus/TARGET (the committed seeds in tests/fuzz/corpus/TARGET
# are only read); a crashing input is written to
# build-fuzz/artifacts/TARGET-crash-* and can be replayed with
#   build-fuzz/tests/fuzz/TARGET FILE
# Add it to the unit tests as a regression case when you fix it.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/setup.sh

time_each=${FUZZ_TIME:-60}
if [ "${1:-}" = -t ]; then
	time_each=$2
	shift 2
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_size fuzz_options fuzz_run_args)

upager_install_missing clang
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang nice -n 10 meson setup build-fuzz -Dfuzz=true -Dtests=false >/dev/null
fi
nice -n 10 ninja -C build-fuzz $(printf 'tests/fuzz/%s ' "${targets[@]}") >/dev/null

mkdir -p build-fuzz/artifacts
summary=() rc=0
for t in "${targets[@]}"; do
	seeds=tests/fuzz/corpus/$t work=build-fuzz/corpus/$t log=build-fuzz/$t.log
	mkdir -p "$work"
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	echo "fuzz: $t for ${time_each}s (log: $log)"
	r=0
	nice -n 10 "build-fuzz/tests/fuzz/$t" -max_total_time="$time_each" -print_final_stats=1 \
		-rss_limit_mb=1024 -artifact_prefix="build-fuzz/artifacts/$t-" "${dict[@]}" \
		"$work" "$seeds" >"$log" 2>&1 || r=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
	if [ $r -eq 0 ]; then
		summary+=("$t: ok, ${runs:-?} runs in ${time_each}s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) inputs")
	else
		rc=1
		art=$(ls -t build-fuzz/artifacts/"$t"-* 2>/dev/null | head -1 || true)
		summary+=("$t: FAILED (exit $r) after ${runs:-?} runs; input: ${art:-none}; see $log")
		grep -m3 -E 'ERROR|runtime error|fuzz_' "$log" | sed 's/^/    /' || true
	fi
done
echo
printf 'fuzz: %s\n' "${summary[@]}"
exit $rc
