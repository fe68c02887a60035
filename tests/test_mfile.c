/* SPDX-License-Identifier: MIT */
/*
 * upager_map_file(): shared, private and read-only mappings of a file
 * several times the budget, at an offset, checked byte for byte against
 * pread() of the file after eviction and refault, upager_sync(),
 * upager_unmap() and upager_close(); the end of the file (zeros in the
 * last page, SIGBUS past it); a sync racing writers; kill -9 after a sync;
 * changed pages written within file_dirty_age; bad arguments.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define BUDGET (4ULL << 20)
#define FPAGES (BUDGET * 6 / 4096)  /* pages of the file from the offset on: six budgets */
#define OFFPAGES 16                  /* the mapping starts 64 KiB into the file */
#define TAIL 1000                    /* the file ends 1000 bytes into its last page */

static char path[] = "/tmp/upager-mfile-XXXXXX";
static int fd = -1;
static upager_t *up;

/* The file's size: OFFPAGES + FPAGES - 1 whole pages, then TAIL bytes. */
static off_t file_size(void)
{
	return (off_t)(OFFPAGES + FPAGES - 1) * 4096 + TAIL;
}

/* Page i of the file (from its start) holds generation gen; the last, its
 * first TAIL bytes of it. */
static void make_file(uint32_t gen)
{
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	char *buf = malloc(1 << 20);
	ck_assert_ptr_nonnull(buf);
	uint64_t pages = OFFPAGES + FPAGES;
	for (uint64_t pg = 0; pg < pages; pg += 256) {
		uint64_t n = pages - pg < 256 ? pages - pg : 256;
		for (uint64_t k = 0; k < n; k++)
			upg_t_fill(buf + k * 4096, 4096, pg + k, gen);
		size_t len = n * 4096;
		if (pg + n == pages)
			len -= 4096 - TAIL;
		ck_assert_int_eq(pwrite(fd, buf, len, (off_t)(pg * 4096)), (ssize_t)len);
	}
	free(buf);
	ck_assert_int_eq(fsync(fd), 0);
}

static void open_up(void)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET;
	up = upg_t_open_config(&cfg);
}

static void teardown(void)
{
	if (up)
		upager_close(up);
	up = NULL;
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	fd = -1;
	strcpy(path, "/tmp/upager-mfile-XXXXXX");
}

/* Does page pg of the file (from its start) hold generation gen?  The
 * last page: its TAIL bytes. */
static bool file_page_is(uint64_t pg, uint32_t gen)
{
	char want[4096], got[4096];
	upg_t_fill(want, 4096, pg, gen);
	size_t len = pg == OFFPAGES + FPAGES - 1 ? TAIL : 4096;
	if (pread(fd, got, len, (off_t)(pg * 4096)) != (ssize_t)len)
		return false;
	return !memcmp(want, got, len);
}

/* Mapping page i is file page OFFPAGES + i. */
static uint64_t bad_in_memory(const char *base, uint64_t first, uint64_t end, uint32_t gen)
{
	uint64_t bad = 0;
	for (uint64_t i = first; i < end; i++) {
		const char *p = base + i * 4096;
		if (i == FPAGES - 1) {
			char want[4096];
			upg_t_fill(want, 4096, OFFPAGES + i, gen);
			bad += memcmp(p, want, TAIL) != 0 || !upg_t_is_zero(p + TAIL, 4096 - TAIL);
		} else {
			bad += upg_t_check(p, 4096, OFFPAGES + i, gen) != 0;
		}
	}
	return bad;
}

static uint64_t bad_on_file(uint64_t first, uint64_t end, uint32_t gen)
{
	uint64_t bad = 0;
	for (uint64_t i = first; i < end; i++)
		bad += !file_page_is(OFFPAGES + i, gen);
	return bad;
}

static void write_gen(char *base, uint64_t first, uint64_t end, uint32_t gen)
{
	for (uint64_t i = first; i < end; i++) {
		if (i == FPAGES - 1) {
			char tmp[4096];
			upg_t_fill(tmp, 4096, OFFPAGES + i, gen);
			memcpy(base + i * 4096, tmp, TAIL);
		} else {
			upg_t_fill(base + i * 4096, 4096, OFFPAGES + i, gen);
		}
	}
}

static struct upager_stats stats(void)
{
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	return st;
}

/* Shared: read it all (evicting: six budgets), change it all, sync: the
 * file holds every change; change half, unmap: the file holds those too.
 * The page cache never held the file's pages. */
START_TEST(shared_sync_and_unmap)
{
	make_file(1);
	open_up();
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, OFFPAGES * 4096, (size_t)FPAGES * 4096, UPAGER_MAP_SHARED, &m), 0);
	char *base = m;
	ck_assert_uint_eq(bad_in_memory(base, 0, FPAGES, 1), 0);
	struct upager_stats st = stats();
	ck_assert_uint_gt(st.evictions, FPAGES / 2);
	ck_assert_uint_le(st.resident_peak, BUDGET);
	/* Read back after eviction: still right, and clean pages left
	 * without I/O (nothing written yet). */
	ck_assert_uint_eq(bad_in_memory(base, 0, FPAGES, 1), 0);
	ck_assert_uint_eq(stats().writebacks, 0);

	write_gen(base, 0, FPAGES, 2);
	ck_assert_uint_eq(bad_in_memory(base, 0, FPAGES, 2), 0);  /* after eviction and refault */
	ck_assert_int_eq(upager_sync(up, base, (size_t)FPAGES * 4096, UPAGER_SYNC), 0);
	ck_assert_uint_eq(bad_on_file(0, FPAGES, 2), 0);
	for (uint64_t pg = 0; pg < OFFPAGES; pg++)
		ck_assert(file_page_is(pg, 1));  /* before the offset: untouched */
	struct stat sb;
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_eq(sb.st_size, file_size());  /* the tail's write did not extend it */

	write_gen(base, FPAGES / 2, FPAGES, 3);
	ck_assert_int_eq(upager_unmap(up, base), 0);
	ck_assert_uint_eq(bad_on_file(0, FPAGES / 2, 2), 0);
	ck_assert_uint_eq(bad_on_file(FPAGES / 2, FPAGES, 3), 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_eq(sb.st_size, file_size());
}
END_TEST

/* A page locked with mlock() amid a run of unchanged pages of a file
 * mapped read-only: the evictor drops such a run in place with one
 * MADV_DONTNEED, which the kernel refuses at the locked mapping after the
 * pages before it were zapped.  The test hook locks the middle page of
 * each run just before its zap.  Every page must still read right
 * (before, the zapped ones were taken for resident and read as zeros).
 * And in a shared mapping, a changed page that is locked is written by
 * upager_sync() and stays. */
static char *run_lo, *run_hi;
static unsigned long runs_locked;

static void lock_mid_run(uintptr_t start, size_t len, bool before)
{
	char *a = (char *)start;
	if (!before || len < 4 * 4096 || a < run_lo || a + len > run_hi)
		return;
	char *mid = a + (len / 4096 / 2) * 4096;
	if (!mlock2(mid, 4096, MLOCK_ONFAULT))
		__atomic_add_fetch(&runs_locked, 1, __ATOMIC_RELAXED);
}

START_TEST(locked_pages)
{
	make_file(1);
	open_up();
	int ro = open(path, O_RDONLY);
	ck_assert_int_ge(ro, 0);
	void *m;
	ck_assert_int_eq(upager_map_file(up, ro, OFFPAGES * 4096, (size_t)(FPAGES - 1) * 4096, UPAGER_MAP_RDONLY, &m), 0);
	char *base = m;
	uint64_t n = FPAGES - 1, lk = FPAGES / 4;
	if (mlock(base, 4096)) {
		printf("locked_pages: skipped, mlock() refused here: %s\n", strerror(errno));
		ck_assert_int_eq(upager_unmap(up, base), 0);
		close(ro);
		return;
	}
	ck_assert_int_eq(munlock(base, 4096), 0);
	run_lo = base;
	run_hi = base + n * 4096;
	__atomic_store_n(&runs_locked, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&upg_own_zap_test, lock_mid_run, __ATOMIC_RELEASE);
	for (int round = 0; round < 2; round++)
		ck_assert_uint_eq(bad_in_memory(base, 0, n, 1), 0);
	__atomic_store_n(&upg_own_zap_test, NULL, __ATOMIC_RELEASE);
	unsigned long locked = __atomic_load_n(&runs_locked, __ATOMIC_RELAXED);
	ck_assert_msg(locked > 0, "no run of unchanged pages was dropped in place");
	ck_assert_uint_eq(bad_in_memory(base, 0, n, 1), 0);
	printf("locked_pages: %lu runs refused at a page locked amid them, every page right\n", locked);
	ck_assert_int_eq(munlock(base, n * 4096), 0);
	ck_assert_int_eq(upager_unmap(up, base), 0);
	close(ro);

	ck_assert_int_eq(upager_map_file(up, fd, OFFPAGES * 4096, (size_t)FPAGES * 4096, UPAGER_MAP_SHARED, &m), 0);
	base = m;
	ck_assert_int_eq(mlock(base + lk * 4096, 4096), 0);
	write_gen(base, lk, lk + 1, 2);
	ck_assert_int_eq(upager_sync(up, base, (size_t)FPAGES * 4096, UPAGER_SYNC), 0);
	ck_assert_uint_eq(bad_on_file(lk, lk + 1, 2), 0);
	ck_assert_uint_eq(bad_in_memory(base, FPAGES / 2, FPAGES, 1), 0);  /* pressure */
	ck_assert_uint_eq(bad_in_memory(base, lk, lk + 1, 2), 0);
	ck_assert_int_eq(munlock(base + lk * 4096, 4096), 0);
	ck_assert_int_eq(upager_unmap(up, base), 0);
	ck_assert_uint_eq(bad_on_file(lk, lk + 1, 2), 0);
	ck_assert_uint_eq(bad_on_file(0, lk, 1), 0);
}
END_TEST

/* upager_close() writes what changed. */
START_TEST(shared_close_writes)
{
	make_file(1);
	open_up();
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, OFFPAGES * 4096, (size_t)FPAGES * 4096, UPAGER_MAP_SHARED, &m), 0);
	write_gen(m, 0, FPAGES, 4);
	ck_assert_int_eq(upager_close(up), 0);
	up = NULL;
	ck_assert_uint_eq(bad_on_file(0, FPAGES, 4), 0);
}
END_TEST

/* Private: changes stay in memory (through eviction to the store and
 * back) and never reach the file. */
START_TEST(private_never_reaches_file)
{
	make_file(1);
	open_up();
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, OFFPAGES * 4096, (size_t)FPAGES * 4096, UPAGER_MAP_PRIVATE, &m), 0);
	char *base = m;
	ck_assert_uint_eq(bad_in_memory(base, 0, FPAGES, 1), 0);
	write_gen(base, 0, FPAGES / 2, 5);
	ck_assert_uint_eq(bad_in_memory(base, 0, FPAGES / 2, 5), 0);
	ck_assert_uint_eq(bad_in_memory(base, FPAGES / 2, FPAGES, 1), 0);
	ck_assert_uint_eq(bad_in_memory(base, 0, FPAGES / 2, 5), 0);
	ck_assert_uint_gt(stats().writebacks, 0);  /* to the store */
	ck_assert_int_eq(upager_sync(up, base, 4096, UPAGER_SYNC), 0);  /* nothing to do */
	ck_assert_int_eq(upager_unmap(up, base), 0);
	ck_assert_uint_eq(bad_on_file(0, FPAGES, 1), 0);
}
END_TEST

/* Read-only: read twice through eviction; a length past the end of the
 * file is refused. */
START_TEST(rdonly_reads)
{
	make_file(1);
	open_up();
	int ro = open(path, O_RDONLY);
	ck_assert_int_ge(ro, 0);
	void *m;
	ck_assert_int_eq(upager_map_file(up, ro, OFFPAGES * 4096, (size_t)FPAGES * 4096 + 4096, UPAGER_MAP_RDONLY, &m),
			 -ENXIO);
	ck_assert_int_eq(upager_map_file(up, ro, OFFPAGES * 4096, (size_t)(FPAGES - 1) * 4096 + TAIL,
					 UPAGER_MAP_RDONLY, &m), 0);
	for (int round = 0; round < 2; round++)
		ck_assert_uint_eq(bad_in_memory(m, 0, FPAGES, 1), 0);
	ck_assert_uint_gt(stats().evictions, FPAGES / 2);
	ck_assert_uint_eq(stats().writebacks, 0);
	ck_assert_int_eq(upager_unmap(up, m), 0);
	close(ro);
	ck_assert_uint_eq(bad_on_file(0, FPAGES, 1), 0);
}
END_TEST

static void touch(void *p)
{
	*(volatile char *)p;
}

/* Past the end: zeros within the last page, SIGBUS on a page wholly past
 * it (a shared mapping may be longer than the file, as with mmap). */
START_TEST(end_of_file)
{
	make_file(1);
	open_up();
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, OFFPAGES * 4096, (size_t)(FPAGES + 2) * 4096, UPAGER_MAP_SHARED, &m),
			 0);
	char *base = m;
	ck_assert_uint_eq(bad_in_memory(base, FPAGES - 1, FPAGES, 1), 0);
	ck_assert_int_eq(upg_t_sigbus(touch, base + (size_t)FPAGES * 4096), 1);
	ck_assert_int_eq(upg_t_sigbus(touch, base + (size_t)(FPAGES + 1) * 4096 + 100), 1);
	ck_assert_int_eq(upg_t_sigbus(touch, base), 0);
}
END_TEST

struct racer {
	char *base;
	volatile int stop;
	uint64_t rounds;
};

/* Writes a running count into the first word of every page, over and over. */
static void *race_writer(void *arg)
{
	struct racer *rc = arg;
	uint64_t n = 0;
	while (!rc->stop) {
		for (uint64_t i = 0; i < FPAGES - 1 && !rc->stop; i++)
			*(volatile uint64_t *)(rc->base + i * 4096) = ++n;
		rc->rounds++;
	}
	return NULL;
}

/* A sync racing a writer loses no write: after the writer stops and a
 * last sync, the file is the memory, page for page. */
START_TEST(sync_races_writers)
{
	make_file(1);
	open_up();
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, OFFPAGES * 4096, (size_t)FPAGES * 4096, UPAGER_MAP_SHARED, &m), 0);
	struct racer rc = { .base = m };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, race_writer, &rc), 0);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(upager_sync(up, m, (size_t)FPAGES * 4096, i % 4 == 3 ? UPAGER_ASYNC : UPAGER_SYNC), 0);
	rc.stop = 1;
	pthread_join(t, NULL);
	ck_assert_int_eq(upager_sync(up, m, (size_t)FPAGES * 4096, UPAGER_SYNC), 0);
	char *got = malloc(4096);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < FPAGES - 1; i++) {
		ck_assert_int_eq(pread(fd, got, 4096, (off_t)((OFFPAGES + i) * 4096)), 4096);
		bad += memcmp(got, (char *)m + i * 4096, 4096) != 0;
	}
	free(got);
	ck_assert_msg(bad == 0, "%llu pages differ between the file and memory after %llu rounds",
		      (unsigned long long)bad, (unsigned long long)rc.rounds);
	ck_assert_uint_gt(rc.rounds, 0);
}
END_TEST

/* kill -9 after a sync: every synced page is on the file; pages changed
 * after it hold, whole, either what was synced or the change. */
START_TEST(kill_after_sync)
{
	make_file(1);
	int ready[2];
	ck_assert_int_eq(pipe(ready), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		open_up();
		void *m;
		if (upager_map_file(up, fd, OFFPAGES * 4096, (size_t)FPAGES * 4096, UPAGER_MAP_SHARED, &m))
			_exit(2);
		write_gen(m, 0, FPAGES, 6);
		if (upager_sync(up, m, (size_t)FPAGES * 4096, UPAGER_SYNC))
			_exit(3);
		write_gen(m, 0, FPAGES / 4, 7);
		(void)!write(ready[1], "r", 1);
		for (;;)
			write_gen(m, 0, FPAGES / 4, 7);
	}
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	usleep(100 * 1000);
	kill(pid, SIGKILL);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	uint64_t bad = 0;
	for (uint64_t i = 0; i < FPAGES / 4; i++)
		bad += !file_page_is(OFFPAGES + i, 6) && !file_page_is(OFFPAGES + i, 7);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(bad_on_file(FPAGES / 4, FPAGES, 6), 0);
	close(ready[0]);
	close(ready[1]);
}
END_TEST

/* Changed pages reach the file within file_dirty_age (1 s here), with no
 * sync and no eviction (a quarter of the budget is changed). */
START_TEST(dirty_age_writes)
{
	make_file(1);
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET;
	cfg.file_dirty_age = 1;
	up = upg_t_open_config(&cfg);
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, OFFPAGES * 4096, (size_t)FPAGES * 4096, UPAGER_MAP_SHARED, &m), 0);
	uint64_t n = BUDGET / 4 / 4096;
	write_gen(m, 0, n, 8);
	ck_assert_uint_eq(stats().evictions, 0);
	uint64_t bad = n;
	for (int i = 0; i < 40 && bad; i++) {
		usleep(100 * 1000);
		bad = bad_on_file(0, n, 8);
	}
	ck_assert_msg(bad == 0, "%llu of %llu changed pages not on the file 4 s after the change, with an age of 1 s",
		      (unsigned long long)bad, (unsigned long long)n);
	ck_assert_uint_eq(bad_on_file(n, FPAGES, 1), 0);
	ck_assert_uint_eq(bad_in_memory(m, 0, n, 8), 0);
}
END_TEST

START_TEST(bad_arguments)
{
	make_file(1);
	open_up();
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, 100, 4096, UPAGER_MAP_SHARED, &m), -EINVAL);
	ck_assert_int_eq(upager_map_file(up, fd, 0, 0, UPAGER_MAP_SHARED, &m), -EINVAL);
	ck_assert_int_eq(upager_map_file(up, fd, 0, 4096, 7, &m), -EINVAL);
	ck_assert_int_eq(upager_map_file(up, 9999, 0, 4096, UPAGER_MAP_PRIVATE, &m), -EBADF);
	int wo = open(path, O_WRONLY);
	ck_assert_int_eq(upager_map_file(up, wo, 0, 4096, UPAGER_MAP_PRIVATE, &m), -EBADF);
	close(wo);
	int ap = open(path, O_RDWR | O_APPEND);
	ck_assert_int_eq(upager_map_file(up, ap, 0, 4096, UPAGER_MAP_SHARED, &m), -EACCES);
	close(ap);
	int ro = open(path, O_RDONLY);
	ck_assert_int_eq(upager_map_file(up, ro, 0, 4096, UPAGER_MAP_SHARED, &m), -EACCES);
	close(ro);
	int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(upager_map_file(up, dir, 0, 4096, UPAGER_MAP_RDONLY, &m), -ENODEV);
	close(dir);
	/* upager_sync() on anonymous memory. */
	void *anon;
	ck_assert_int_eq(upager_map(up, 4096, NULL, &anon), 0);
	ck_assert_int_eq(upager_sync(up, anon, 4096, UPAGER_SYNC), -EINVAL);
	ck_assert_int_eq(upager_map_file(up, fd, 0, 4096, UPAGER_MAP_SHARED, &m), 0);
	ck_assert_int_eq(upager_sync(up, m, 4096, 0), -EINVAL);
	ck_assert_int_eq(upager_sync(up, m, 8192, UPAGER_SYNC), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("mfile");
	TCase *tc = tcase_create("mfile");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, shared_sync_and_unmap);
	tcase_add_test(tc, locked_pages);
	tcase_add_test(tc, shared_close_writes);
	tcase_add_test(tc, private_never_reaches_file);
	tcase_add_test(tc, rdonly_reads);
	tcase_add_test(tc, end_of_file);
	tcase_add_test(tc, sync_races_writers);
	tcase_add_test(tc, kill_after_sync);
	tcase_add_test(tc, dirty_age_writes);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
