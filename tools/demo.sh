#!/usr/bin/env bash
# The main job: build upager and run a program that uses several times more
# memory than its RAM budget, verifying every page and printing the report.
#   bash tools/demo.sh [--ram SIZE] [--data SIZE] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/setup.sh
upager_install_missing
upager_build build
exec ./build/examples/upager-demo "$@"
