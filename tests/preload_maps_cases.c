/* SPDX-License-Identifier: MIT */
/*
 * Run under libupager-preload.so with --ram 32M (see preload.sh): the
 * program's own anonymous mmap()s, used the ways pymalloc, V8 and the JVM
 * use them, each checked byte for byte after its pages were pushed out to
 * the store, and resident memory checked against what the budget allows
 * (a mapping left to the kernel would hold all its pages in RAM).
 * Prints one line per case; exits non-zero if any failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload_common.h"

/* --ram 32M, plus what a program holds outside upager (code, stacks,
 * glibc's own): far below any of the mappings below. */
#define RSS_MAX (80 * MIB)

static size_t nonzero_at(const void *p, size_t len)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return i * 8 + 1;
	return 0;
}

static void *anon(void *hint, size_t len, int prot, int extra)
{
	return mmap(hint, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
}

static size_t rss(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

/* Write 128 MiB through a mapping of its own, so that everything else is
 * evicted; it is unmapped again, which releases its region. */
static void push_out(void)
{
	size_t len = 128 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	if (p == MAP_FAILED)
		abort();
	for (size_t o = 0; o < len; o += 4096)
		p[o] = (char)(o >> 12 | 1);
	munmap(p, len);
}

static void plain_mapping(void)
{
	size_t len = 192 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(p != MAP_FAILED, "mmap(192M): %s", strerror(errno));
	fill(p, len, 1);
	size_t r = rss();
	CHECK(r < RSS_MAX, "resident %zu MiB after writing 192 MiB under --ram 32M: the mapping was not paged",
	      r / MIB);
	push_out();
	size_t bad = bad_at(p, len, 1);
	CHECK(!bad, "byte %zu of a 192 MiB mapping changed after eviction", bad - 1);
	CHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
	printf("ok a 192 MiB mapping is paged (resident %zu MiB) and reads back\n", r / MIB);
}

/* The JVM and V8: reserve PROT_NONE, commit with mprotect() or MAP_FIXED,
 * uncommit with MAP_FIXED PROT_NONE, commit again. */
static void reserve_commit(void)
{
	size_t len = 512 * MIB, chunk = 32 * MIB;
	char *p = anon(NULL, len, PROT_NONE, MAP_NORESERVE);
	CHECK(p != MAP_FAILED, "reserve 512M: %s", strerror(errno));
	for (int i = 0; i < 8; i++) {
		char *c = p + (size_t)i * chunk;
		if (i % 2)
			CHECK(mprotect(c, chunk, PROT_READ | PROT_WRITE) == 0, "mprotect commit: %s", strerror(errno));
		else
			CHECK(anon(c, chunk, PROT_READ | PROT_WRITE, MAP_FIXED) == c, "MAP_FIXED commit: %s",
			      strerror(errno));
		fill(c, chunk, 100 + (uint64_t)i);
	}
	size_t r = rss();
	CHECK(r < RSS_MAX, "resident %zu MiB after committing and writing 256 MiB", r / MIB);
	/* Uncommit chunk 2 the JVM's way, then commit and check it is zeros. */
	char *c2 = p + 2 * chunk;
	CHECK(anon(c2, chunk, PROT_NONE, MAP_FIXED | MAP_NORESERVE) == c2, "uncommit: %s", strerror(errno));
	push_out();
	CHECK(anon(c2, chunk, PROT_READ | PROT_WRITE, MAP_FIXED) == c2, "recommit: %s", strerror(errno));
	size_t nz = nonzero_at(c2, chunk);
	CHECK(!nz, "a chunk committed again holds old data at %zu", nz - 1);
	for (int i = 0; i < 8; i++) {
		if (i == 2)
			continue;
		size_t bad = bad_at(p + (size_t)i * chunk, chunk, 100 + (uint64_t)i);
		CHECK(!bad, "committed chunk %d lost byte %zu after eviction", i, bad - 1);
	}
	/* MAP_FIXED_NOREPLACE over live pages is refused, as by the kernel. */
	void *q = anon(p, chunk, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
	CHECK(q == MAP_FAILED && errno == EEXIST, "MAP_FIXED_NOREPLACE over a live mapping: %p, %s", q,
	      strerror(errno));
	CHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
	printf("ok reserve PROT_NONE, commit by mprotect and MAP_FIXED, uncommit, recommit: data and zeros right\n");
}

static sigjmp_buf segv_jmp;
static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

static bool faults(volatile char *a)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	sigaction(SIGSEGV, &sa, &old);
	bool hit = false;
	if (sigsetjmp(segv_jmp, 1))
		hit = true;
	else
		(void)*a;
	sigaction(SIGSEGV, &old, NULL);
	return hit;
}

/* V8 trims an over-sized reservation to alignment: munmap() of its head
 * and tail; programs unmap holes; a hint brings a hole back. */
static void partial_unmap(void)
{
	size_t len = 96 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, len, 7);
	CHECK(munmap(p, 4 * MIB) == 0, "munmap head: %s", strerror(errno));
	CHECK(munmap(p + 40 * MIB, 8 * MIB) == 0, "munmap middle: %s", strerror(errno));
	CHECK(munmap(p + len - 4 * MIB, 4 * MIB) == 0, "munmap tail: %s", strerror(errno));
	CHECK(faults(p + 41 * MIB), "an unmapped page can still be read");
	push_out();
	size_t bad = bad_at(p + 4 * MIB, 36 * MIB, 7 + 4 * MIB / 8);
	CHECK(!bad, "pages before the hole lost byte %zu", bad - 1);
	bad = bad_at(p + 48 * MIB, 44 * MIB, 7 + 48 * MIB / 8);
	CHECK(!bad, "pages after the hole lost byte %zu", bad - 1);
	/* The hole back, at its address, as zeros. */
	char *h = anon(p + 40 * MIB, 8 * MIB, PROT_READ | PROT_WRITE, 0);
	CHECK(h == p + 40 * MIB, "a hint on the hole gave %p, not %p", (void *)h, (void *)(p + 40 * MIB));
	size_t nz = nonzero_at(h, 8 * MIB);
	CHECK(!nz, "the hole mapped again holds old data at %zu", nz - 1);
	CHECK(munmap(p + 4 * MIB, len - 8 * MIB) == 0, "munmap rest: %s", strerror(errno));
	printf("ok munmap of head, middle and tail; the rest reads back; a hint maps the hole again as zeros\n");
}

static void remap(void)
{
	size_t len = 48 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, len, 11);
	/* Shrink, then grow back in place: the regrown part is zeros. */
	CHECK(mremap(p, len, len / 2, 0) == p, "mremap shrink: %s", strerror(errno));
	CHECK(mremap(p, len / 2, len, 0) == p, "mremap grow in place: %s", strerror(errno));
	size_t nz = nonzero_at(p + len / 2, len / 2);
	CHECK(!nz, "the regrown half holds old data at %zu", nz - 1);
	push_out();
	/* Grow by moving: the data comes along, the old range goes. */
	char *q = mremap(p, len, 4 * len, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED, "mremap grow by moving: %s", strerror(errno));
	size_t bad = bad_at(q, len / 2, 11);
	CHECK(!bad, "mremap moved data lost byte %zu", bad - 1);
	fill(q + len, 3 * len, 12);
	push_out();
	bad = bad_at(q + len, 3 * len, 12);
	CHECK(!bad, "the grown part lost byte %zu", bad - 1);
	CHECK(munmap(q, 4 * len) == 0, "munmap: %s", strerror(errno));
	printf("ok mremap shrinks, grows in place and grows by moving, data verified after eviction\n");
}

static void advice(void)
{
	size_t len = 32 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, len, 21);
	push_out();
	CHECK(madvise(p, 8 * MIB, MADV_DONTNEED) == 0, "MADV_DONTNEED: %s", strerror(errno));
	CHECK(madvise(p + 8 * MIB, 8 * MIB, MADV_FREE) == 0, "MADV_FREE: %s", strerror(errno));
	CHECK(madvise(p, len, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE: %s", strerror(errno));
	size_t nz = nonzero_at(p, 8 * MIB);
	CHECK(!nz, "MADV_DONTNEED left data at %zu", nz - 1);
	size_t bad = bad_at(p + 16 * MIB, 16 * MIB, 21 + 16 * MIB / 8);
	CHECK(!bad, "pages next to the discarded ones lost byte %zu", bad - 1);
	/* A discarded part is written again and pushed out. */
	fill(p, 16 * MIB, 22);
	push_out();
	bad = bad_at(p, 16 * MIB, 22);
	CHECK(!bad, "discarded pages written again lost byte %zu", bad - 1);
	munmap(p, len);
	printf("ok MADV_DONTNEED and MADV_FREE discard, MADV_HUGEPAGE is ignored, neighbours intact\n");
}

/* mlock() of part of a paged mapping: those pages stay in RAM, unwritten,
 * while the rest is evicted around them.  mlockall() is refused with
 * EPERM (it would lock every page of upager's reservations in RAM, and
 * fill the machine's memory), and memory stays paged after it. */
static void locking(void)
{
	size_t len = 32 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, len, 31);
	size_t bad;
	if (mlock(p + 4 * MIB, MIB) == 0) {
		push_out();
		push_out();
		bad = bad_at(p, len, 31);
		CHECK(!bad, "a mapping with 1 MiB locked lost byte %zu", bad - 1);
		CHECK(munlock(p + 4 * MIB, MIB) == 0, "munlock: %s", strerror(errno));
	} else {
		printf("skip mlock() of 1 MiB: %s (RLIMIT_MEMLOCK)\n", strerror(errno));
	}
	/* MCL_ONFAULT, so that were the call to reach the kernel, it would
	 * fail this check rather than fill the machine's memory. */
	errno = 0;
	int rc = mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
	CHECK(rc == -1 && errno == EPERM, "mlockall() returned %d (%s), not -1 with EPERM", rc, strerror(errno));
	if (!rc)
		munlockall();
	char *q = anon(NULL, 4 * len, PROT_READ | PROT_WRITE, 0);
	CHECK(q != MAP_FAILED, "mmap after mlockall(): %s", strerror(errno));
	fill(q, 4 * len, 32);
	size_t r = rss();
	CHECK(r <= RSS_MAX, "after mlockall(), 128 MiB written left %zu MiB resident", r / MIB);
	bad = bad_at(q, 4 * len, 32);
	CHECK(!bad, "128 MiB written after mlockall() lost byte %zu", bad - 1);
	munmap(q, 4 * len);
	munmap(p, len);
	printf("ok mlock() of part of a mapping keeps every byte; mlockall() refused with EPERM, memory still paged\n");
}

/* The JVM maps its class-data archive with MAP_FIXED into space it
 * reserved: a file mapping inside a region. */
static void file_over_region(void)
{
	size_t len = 64 * MIB, flen = 2 * MIB;
	char path[] = "/var/tmp/upager-maps-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	unlink(path);
	char *buf = malloc(flen);
	fill(buf, flen, 31);
	CHECK(write(fd, buf, flen) == (ssize_t)flen, "write: %s", strerror(errno));
	char *p = anon(NULL, len, PROT_NONE, MAP_NORESERVE);
	CHECK(p != MAP_FAILED, "reserve: %s", strerror(errno));
	CHECK(mprotect(p + flen, len - flen, PROT_READ | PROT_WRITE) == 0, "commit: %s", strerror(errno));
	fill(p + flen, len - flen, 32);
	char *f = mmap(p, flen, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
	CHECK(f == p, "file MAP_FIXED over the reservation: %s", strerror(errno));
	push_out();
	size_t bad = bad_at(f, flen, 31);
	CHECK(!bad, "the file mapping reads wrong at %zu", bad - 1);
	bad = bad_at(p + flen, len - flen, 32);
	CHECK(!bad, "the region beside the file mapping lost byte %zu", bad - 1);
	/* Unmap the file part, then use that range as anonymous memory. */
	CHECK(munmap(f, flen) == 0, "munmap of the file part: %s", strerror(errno));
	CHECK(faults(p), "the unmapped file part can still be read");
	CHECK(anon(p, flen, PROT_READ | PROT_WRITE, MAP_FIXED) == p, "anonymous MAP_FIXED there: %s",
	      strerror(errno));
	size_t nz = nonzero_at(p, flen);
	CHECK(!nz, "the range after the file mapping is not zeros at %zu", nz - 1);
	fill(p, flen, 33);
	push_out();
	bad = bad_at(p, flen, 33);
	CHECK(!bad, "the range after the file mapping lost byte %zu after eviction", bad - 1);
	munmap(p, len);
	close(fd);
	free(buf);
	printf("ok a file mapped with MAP_FIXED inside a region, then unmapped and replaced by anonymous memory\n");
}

static void small_and_shared(void)
{
	/* Below UPAGER_MMAP, and shared mappings: the kernel's, and they work. */
	char *s = anon(NULL, 16384, PROT_READ | PROT_WRITE, 0);
	char *sh = mmap(NULL, 8 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(s != MAP_FAILED && sh != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(s, 16384, 41);
	fill(sh, 8 * MIB, 42);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		fill(sh, MIB, 43);  /* the parent sees this */
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	push_out();
	CHECK(!bad_at(s, 16384, 41), "a small mapping changed");
	CHECK(!bad_at(sh, MIB, 43), "a shared mapping does not show the child's write");
	CHECK(!bad_at(sh + MIB, 7 * MIB, 42 + MIB / 8), "a shared mapping changed");
	munmap(s, 16384);
	munmap(sh, 8 * MIB);
	printf("ok small private and shared mappings stay with the kernel and work\n");
}

static void fork_sees_mappings(void)
{
	size_t len = 96 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, len, 51);
	push_out();
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(bad_at(p, len, 51) ? 1 : 0);
	fill(p, len, 52);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child saw wrong data in a mapping (status %#x)", st);
	CHECK(!bad_at(p, len, 52), "the parent's mapping changed");
	munmap(p, len);
	printf("ok a forked child sees a mapping as at fork time, evicted pages included\n");
}

/* Threads mapping, writing, checking and unmapping at once. */
/* MADV_WIPEONFORK on part of a mapping: the child gets that part as
 * zeros, the rest as at fork time, evicted pages included; the parent
 * keeps all of it.  The wiped part stays paged in the child: its own 96
 * MiB written there, three times the budget, leave resident memory near
 * the budget and read back.  (Before, the child read the parent's pages
 * there.) */
static void fork_wipes(void)
{
	size_t w0 = 8 * MIB, wl = 96 * MIB, len = w0 + wl + 8 * MIB;
	char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, len, 61);
	CHECK(madvise(p + w0, wl, MADV_WIPEONFORK) == 0, "MADV_WIPEONFORK: %s", strerror(errno));
	push_out();
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int rc = nonzero_at(p + w0, wl) ? 1 : 0;
		rc |= bad_at(p, w0, 61) ? 2 : 0;
		rc |= bad_at(p + w0 + wl, len - w0 - wl, 61 + (w0 + wl) / 8) ? 4 : 0;
		/* Its own writes there stay its own, and paged. */
		fill(p + w0, wl, 62);
		rc |= rss() > RSS_MAX ? 16 : 0;
		push_out();
		rc |= bad_at(p + w0, wl, 62) ? 8 : 0;
		_exit(rc);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the child saw wrong data or held too much (status %#x: 1 the wiped part not zeros, 2 and 4 the rest "
	      "wrong, 8 its own writes lost, 16 resident memory over %d MiB)", st, (int)(RSS_MAX / MIB));
	size_t bad = bad_at(p, len, 61);
	CHECK(!bad, "the parent's mapping lost byte %zu", bad - 1);
	munmap(p, len);
	printf("ok MADV_WIPEONFORK: the child gets that part as zeros, paged, the rest as at fork time; the parent keeps it\n");
}

static void *churn(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	for (int round = 0; round < 12; round++) {
		size_t len = (size_t)(1 + (mix(id * 100 + (uint64_t)round) % 8)) * MIB;
		char *p = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
		if (p == MAP_FAILED)
			return (void *)1;
		uint64_t seed = id * 1000 + (uint64_t)round;
		fill(p, len, seed);
		sched_yield();
		if (bad_at(p, len, seed) || munmap(p, len))
			return (void *)2;
	}
	return NULL;
}

static void threads_churn(void)
{
	enum { T = 6 };
	pthread_t t[T];
	size_t len = 64 * MIB;
	char *keep = anon(NULL, len, PROT_READ | PROT_WRITE, 0);
	CHECK(keep != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(keep, len, 61);
	for (int i = 0; i < T; i++)
		pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
	int bad_threads = 0;
	for (int i = 0; i < T; i++) {
		void *rv;
		pthread_join(t[i], &rv);
		bad_threads += rv != NULL;
	}
	CHECK(!bad_threads, "%d threads saw wrong data in their own mappings", bad_threads);
	push_out();
	size_t bad = bad_at(keep, len, 61);
	CHECK(!bad, "a mapping lost byte %zu while other threads mapped and unmapped", bad - 1);
	munmap(keep, len);
	printf("ok %d threads map, check and unmap at once; a long-lived mapping reads back\n", T);
}

int main(void)
{
	plain_mapping();
	reserve_commit();
	partial_unmap();
	remap();
	advice();
	locking();
	file_over_region();
	small_and_shared();
	fork_sees_mappings();
	fork_wipes();
	threads_churn();
	printf("preload mmap cases: %s\n", failures ? "FAILED" : "all correct");
	return failures ? 1 : 0;
}
