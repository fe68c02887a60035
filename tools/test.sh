#!/usr/bin/env bash
# Build upager and run the whole test suite.  Extra arguments go to
# `meson test` (for example --suite unit).  Long soak tests need
# `meson configure build -Dsoak=true` and `--suite slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/setup.sh
upager_install_missing
upager_build build
rc=0
meson test -C build --print-errorlogs "$@" || rc=$?
log=build/meson-logs/testlog.json
if [ -f "$log" ]; then
	python3 - "$log" <<'PY'
import json, sys
counts = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        r = json.loads(line)["result"]
        counts[r] = counts.get(r, 0) + 1
ok = counts.get("OK", 0) + counts.get("EXPECTEDFAIL", 0)
skip = counts.get("SKIP", 0)
bad = sum(v for k, v in counts.items() if k not in ("OK", "EXPECTEDFAIL", "SKIP"))
print(f"tests: {ok} passed, {bad} failed, {skip} skipped")
PY
fi
exit $rc
