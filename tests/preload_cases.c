/* SPDX-License-Identifier: MIT */
/*
 * Run under libupager-preload.so with a small budget (see preload.sh): the
 * malloc family through upager, checked byte for byte after the heap has
 * been pushed out to the store.  Prints one line per case; exits non-zero on
 * the first failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload_common.h"

/* Allocate and write well over the budget so older blocks are evicted. */
static void push_out(void)
{
	enum { N = 48 };
	static void *junk[N];
	for (int i = 0; i < N; i++) {
		junk[i] = malloc(4 * MIB);
		memset(junk[i], i + 1, 4 * MIB);
	}
	for (int i = 0; i < N; i++)
		free(junk[i]);
}

static void realloc_growth(void)
{
	size_t len = 64 * MIB;
	char *p = malloc(len);
	CHECK(p, "malloc(64M)");
	fill(p, len, 1);
	push_out();
	for (size_t n = len * 2; n <= 256 * MIB; n *= 2) {
		p = realloc(p, n);
		CHECK(p, "realloc(%zu)", n);
		size_t bad = bad_at(p, len, 1);
		CHECK(!bad, "realloc to %zu MiB lost byte %zu", n / MIB, bad - 1);
		push_out();
	}
	free(p);
	printf("ok realloc growth of a cold 64 MiB block to 256 MiB keeps its bytes\n");
}

static void calloc_zero(void)
{
	for (int round = 0; round < 8; round++) {
		size_t len = (size_t)(1 + round) * MIB;
		char *p = malloc(len);
		memset(p, 0xee, len);
		free(p);
		push_out();
		char *q = calloc(1, len);
		CHECK(q, "calloc");
		for (size_t i = 0; i < len; i++)
			CHECK(!q[i], "calloc(%zu) byte %zu is %#x after reuse", len, i, (unsigned char)q[i]);
		free(q);
		int *small = calloc(1000, sizeof(int));
		for (int i = 0; i < 1000; i++)
			CHECK(!small[i], "calloc(1000 ints)[%d] = %d", i, small[i]);
		free(small);
	}
	printf("ok calloc memory is zero after the range was used and evicted\n");
}

static void alignments(void)
{
	for (size_t a = 16; a <= 64 * MIB; a *= 2) {
		void *p = NULL;
		CHECK(!posix_memalign(&p, a, a + 100), "posix_memalign(%zu)", a);
		CHECK(((uintptr_t)p & (a - 1)) == 0, "posix_memalign(%zu) gave %p", a, p);
		memset(p, 1, a + 100);
		void *q = aligned_alloc(a, a);
		CHECK(q && ((uintptr_t)q & (a - 1)) == 0, "aligned_alloc(%zu) gave %p", a, q);
		void *r = memalign(a, 100);
		CHECK(r && ((uintptr_t)r & (a - 1)) == 0, "memalign(%zu) gave %p", a, r);
		CHECK(malloc_usable_size(p) >= a + 100, "malloc_usable_size %zu < %zu", malloc_usable_size(p), a + 100);
		free(p);
		free(q);
		free(r);
	}
	void *v = valloc(10);
	void *pv = pvalloc(10);
	CHECK(((uintptr_t)v & 4095) == 0 && ((uintptr_t)pv & 4095) == 0, "valloc/pvalloc not page aligned");
	CHECK(malloc_usable_size(pv) >= 4096, "pvalloc rounds to a page");
	free(v);
	free(pv);
	void *bad = NULL;
	CHECK(posix_memalign(&bad, 24, 10) == EINVAL, "posix_memalign(24) must be EINVAL");
	errno = 0;
	volatile size_t huge = SIZE_MAX / 2;
	CHECK(!reallocarray(NULL, huge, 4) && errno == ENOMEM, "reallocarray overflow");
	printf("ok alignments from 16 B to 64 MiB, valloc, pvalloc, reallocarray overflow\n");
}

struct xfer { void **slots; int n; };
static void *producer(void *arg)
{
	struct xfer *x = arg;
	for (int i = 0; i < x->n; i++) {
		size_t len = 64 + (size_t)(mix(i) % 65536);
		x->slots[i] = malloc(len);
		fill(x->slots[i], len & ~7UL, i);
	}
	return NULL;
}

static void cross_thread_free(void)
{
	enum { N = 4000 };
	void **slots = calloc(N, sizeof *slots);
	struct xfer x = { slots, N };
	pthread_t t;
	pthread_create(&t, NULL, producer, &x);
	pthread_join(t, NULL);
	push_out();
	for (int i = 0; i < N; i++) {
		size_t len = 64 + (size_t)(mix(i) % 65536);
		size_t bad = bad_at(slots[i], len & ~7UL, i);
		CHECK(!bad, "block %d made by another thread lost byte %zu", i, bad - 1);
		free(slots[i]);
	}
	free(slots);
	printf("ok blocks made by one thread verify and free in another\n");
}

static void syscalls_cold(void)
{
	size_t len = 32 * MIB;
	char *src = malloc(len), *dst = malloc(len);
	fill(src, len, 77);
	memset(dst, 0x55, len);
	push_out();
	char path[] = "/var/tmp/upager-preload-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	unlink(path);
	CHECK(write(fd, src, len) == (ssize_t)len, "write(2) from cold heap pages: %s", strerror(errno));
	CHECK(pread(fd, dst, len, 0) == (ssize_t)len, "read(2) into cold heap pages: %s", strerror(errno));
	close(fd);
	size_t bad = bad_at(dst, len, 77);
	CHECK(!bad, "data read(2) into the heap differs at %zu", bad - 1);
	free(src);
	free(dst);
	printf("ok write(2) from and read(2) into cold heap pages\n");
}

static void fork_child(void)
{
	size_t len = 96 * MIB;
	char *p = malloc(len);
	fill(p, len, 5);
	push_out();
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(bad_at(p, len, 5) ? 1 : 0);
	fill(p, len, 6);  /* the parent moves on meanwhile */
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child of fork() saw wrong heap data (status %#x)", st);
	CHECK(!bad_at(p, len, 6), "the parent's data changed");
	free(p);
	printf("ok a forked child sees the heap as at fork time, evicted pages included\n");
}

/* What fork() itself touches in the heap: glibc reads its NSS state (made
 * by the first getpwuid()) in the parent, after the fork handlers, and
 * resets the lock of every open FILE in the child before the child's
 * handler runs.  Both are malloc'd, so both are in the store here. */
static void fork_glibc_state(void)
{
	CHECK(getpwuid(getuid()), "getpwuid");
	char path[] = "/tmp/upager-fork-file-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	FILE *f = fdopen(fd, "w+");
	CHECK(f, "fdopen");
	for (int i = 0; i < 1000; i++)
		fprintf(f, "line %d\n", i);
	fflush(f);
	size_t len = 32 * MIB;
	char *p = malloc(len);
	fill(p, len, 9);
	for (int round = 0; round < 8; round++) {
		push_out();  /* the NSS state and the FILE go to the store */
		pid_t pid = fork();
		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			char line[64];
			rewind(f);
			for (int i = 0; i < 1000; i++) {
				char want[64];
				snprintf(want, sizeof want, "line %d\n", i);
				if (!fgets(line, sizeof line, f) || strcmp(line, want))
					_exit(2);
			}
			_exit(bad_at(p, len, 9) ? 1 : 0);
		}
		int st;
		waitpid(pid, &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: the child saw a wrong %s (status %#x)", round,
		      WEXITSTATUS(st) == 2 ? "FILE" : "heap", st);
	}
	fclose(f);
	unlink(path);
	CHECK(!bad_at(p, len, 9), "the parent's data changed");
	free(p);
	printf("ok fork() with glibc's NSS state and an open FILE in the store: parent and 8 children right\n");
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		/* The exit status passes through upager-run. */
		return atoi(argv[1]);
	}
	realloc_growth();
	calloc_zero();
	alignments();
	cross_thread_free();
	syscalls_cold();
	fork_child();
	fork_glibc_state();
	printf("preload cases: %s\n", failures ? "FAILED" : "all correct");
	return failures ? 1 : 0;
}
