#!/bin/sh
# Build step for libupager-preload.so: copy Debian's libjemalloc_pic.a with
# every symbol it defines renamed to upgje_*, so the preload library can wrap
# it without exporting or clashing with anything, and with its memory
# system calls redirected to upager's region allocator.
#   jemalloc-rename.sh CC OUTPUT.a
set -eu
cc=$1
out=$2
ar=$($cc -print-file-name=libjemalloc_pic.a)
if [ ! -f "$ar" ]; then
	echo "libjemalloc_pic.a not found: install libjemalloc-dev (apt-get install libjemalloc-dev)" >&2
	exit 1
fi
syms=$out.syms
nm -g --defined-only "$ar" | awk 'NF == 3 { print $3 " upgje_" $3 }' | sort -u > "$syms"
cat >> "$syms" <<'MAP'
mmap upg_pl_mmap
munmap upg_pl_munmap
madvise upg_pl_madvise
sbrk upg_pl_sbrk
secure_getenv upg_pl_secure_getenv
MAP
objcopy --redefine-syms="$syms" "$ar" "$out"
