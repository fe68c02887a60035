#!/usr/bin/env bash
# Shared set-up for tools/demo.sh and tools/test.sh: install what is missing
# (Debian/Ubuntu, as root), then configure and build into ./build.
set -euo pipefail

UPAGER_PACKAGES="gcc g++ libc6-dev liburing-dev check meson ninja-build pkg-config libjemalloc-dev libsodium-dev liblz4-dev libzstd-dev libhiredis-dev redis-server sqlite3 python3 tmux"

upager_install_missing() {
	local missing=() p
	for p in $UPAGER_PACKAGES "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "upager: missing packages: ${missing[*]}" >&2
		echo "upager: run this script as root (sudo) so it can install them, or install them yourself" >&2
		exit 1
	fi
	echo "upager: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
}

upager_build() {
	local dir=${1:-build}
	shift || true
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null
	elif [ $# -gt 0 ]; then
		meson configure "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
}
