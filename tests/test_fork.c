/* SPDX-License-Identifier: MIT */
/*
 * fork(): a child sees the parent's memory exactly as it was at fork time,
 * including pages that were evicted to the store, while the parent goes on
 * rewriting and evicting.  Without fork support the child would read zeros
 * for every evicted page; this test fails loudly if it does.  A child that
 * outlives the parent's upager_close() gets every page first, checked and
 * decrypted like any store read.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "upg_config.h"

#define BUDGET (4ULL << 20)
#define BYTES (BUDGET * 8)
#define NPAGES (BYTES / 4096)

static upager_t *up;
static char *base;

static void setup_region_cfg(uint32_t encrypt, const char *compress)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET;
	cfg.encrypt = encrypt;
	cfg.compress = compress;
	up = upg_t_open_config(&cfg);
	void *mem;
	ck_assert_int_eq(upager_map(up, BYTES, NULL, &mem), 0);
	base = mem;
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		upg_t_fill(base + pg * 4096, 4096, pg, 1);
	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	ck_assert_uint_gt(st.evictions, NPAGES / 2);
}

static void setup_region_enc(uint32_t encrypt)
{
	setup_region_cfg(encrypt, NULL);
}

static void setup_region(void)
{
	setup_region_enc(0);
}

/* Pages of [first, last) hold generation gen: count the wrong ones. */
static uint64_t count_bad(uint64_t first, uint64_t last, uint32_t gen)
{
	uint64_t bad = 0;
	for (uint64_t pg = first; pg < last; pg++)
		bad += upg_t_check(base + pg * 4096, 4096, pg, gen) != 0;
	return bad;
}

/* Fork a child that checks every page for generation 1 once a byte
 * arrives on go[0]; the parent keeps go[1]. */
static pid_t fork_checker(int go[2])
{
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(go[1]);
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(count_bad(0, NPAGES, 1) ? 1 : 0);
	}
	close(go[0]);
	return pid;
}

struct part { uint64_t first, last, bad; };
static void *verify_part(void *arg)
{
	struct part *p = arg;
	p->bad = count_bad(p->first, p->last, 1);
	return NULL;
}

static int wait_child(pid_t pid)
{
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st), "child died with signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

/* While children hold frozen store blocks, the parent's store gets
 * fragmented (more so with pages of two sizes); eviction must still find
 * room (growing the store) instead of keeping pages over the budget. */
START_TEST(budget_holds_while_children_live)
{
	up = upg_t_open(BUDGET, 4096, "fifo", 2);
	struct upager_map_opts big = { .size = sizeof big, .page_size = 65536 };
	void *m1, *m2;
	ck_assert_int_eq(upager_map(up, BYTES / 2, &big, &m1), 0);
	ck_assert_int_eq(upager_map(up, BYTES / 2, NULL, &m2), 0);
	char *r[2] = { m1, m2 };
	uint32_t gen[2][NPAGES / 2];
	for (int k = 0; k < 2; k++)
		for (uint64_t pg = 0; pg < NPAGES / 2; pg++) {
			upg_t_fill(r[k] + pg * 4096, 4096, pg + k * NPAGES, 1);
			gen[k][pg] = 1;
		}
	pid_t kids[6];
	uint64_t rng = 5;
	for (int f = 0; f < 6; f++) {
		kids[f] = fork();
		ck_assert_int_ge(kids[f], 0);
		if (kids[f] == 0) {
			/* Slowly check the fork-time data. */
			uint64_t bad = 0;
			for (int k = 0; k < 2; k++)
				for (uint64_t pg = 0; pg < NPAGES / 2; pg++) {
					bad += upg_t_check(r[k] + pg * 4096, 4096, pg + k * NPAGES, gen[k][pg]) != 0;
					if (pg % 256 == 0)
						usleep(1000);
				}
			_exit(bad ? 1 : 0);
		}
		for (int a = 0; a < 4000; a++) {
			int k = (int)(upg_t_rand(&rng) & 1);
			uint64_t pg = upg_t_rand(&rng) % (NPAGES / 2);
			ck_assert_uint_eq(upg_t_check(r[k] + pg * 4096, 4096, pg + k * NPAGES, gen[k][pg]), 0);
			upg_t_fill(r[k] + pg * 4096, 4096, pg + k * NPAGES, ++gen[k][pg]);
		}
	}
	for (int f = 0; f < 6; f++)
		ck_assert_int_eq(wait_child(kids[f]), 0);
	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	ck_assert_msg(st.resident_peak <= BUDGET && st.overshoot_peak == 0,
		      "resident peak %llu over the budget %llu (store-full refusals %llu)",
		      (unsigned long long)st.resident_peak, (unsigned long long)BUDGET,
		      (unsigned long long)st.store_full);
	for (int k = 0; k < 2; k++)
		for (uint64_t pg = 0; pg < NPAGES / 2; pg++)
			ck_assert_uint_eq(upg_t_check(r[k] + pg * 4096, 4096, pg + k * NPAGES, gen[k][pg]), 0);
	upager_close(up);
}
END_TEST

START_TEST(child_sees_fork_time_data)
{
	setup_region();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Slowly, so the parent rewrites and evicts meanwhile. */
		uint64_t bad = 0;
		for (int pass = 0; pass < 2; pass++)
			bad += count_bad(0, NPAGES, 1);
		_exit(bad ? 1 : 0);
	}
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		upg_t_fill(base + pg * 4096, 4096, pg, 2);
	ck_assert_int_eq(wait_child(pid), 0);
	ck_assert_uint_eq(count_bad(0, NPAGES, 2), 0);
	upager_close(up);
}
END_TEST

/* The parent closes its runtime while the child still has evicted pages to
 * read; the child reads them after that, with no upager serving it.  With
 * encryption the store holds ciphertext: the child must get plaintext. */
START_TEST(child_outlives_close)
{
#ifndef UPG_HAVE_SODIUM
	if (_i == 1)
		return;
#endif
	setup_region_enc((uint32_t)_i);
	int go[2];
	pid_t pid = fork_checker(go);
	ck_assert_int_eq(upager_close(up), 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	close(go[1]);
	ck_assert_int_eq(wait_child(pid), 0);
}
END_TEST

/* The child pages on its own: its budget holds while it reads eight
 * budgets' worth, it evicts, and its API answers. */
START_TEST(child_is_budgeted)
{
	setup_region();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint64_t bad = count_bad(0, NPAGES, 1);
		struct upager_stats st = { .size = sizeof st };
		if (upager_stats(up, &st))
			_exit(2);
		/* Its budget counts what it brought in; the pages it
		 * inherited in RAM are the parent's to count (shared,
		 * copy-on-write) until it writes them: at most a budget more. */
		if (st.resident_peak > 2 * BUDGET || !st.evictions || !st.store_reads) {
			fprintf(stderr, "child: resident peak %llu, %llu evictions, %llu store reads\n",
				(unsigned long long)st.resident_peak, (unsigned long long)st.evictions,
				(unsigned long long)st.store_reads);
			_exit(3);
		}
		_exit(bad ? 1 : 0);
	}
	int rc = wait_child(pid);
	ck_assert_msg(rc == 0, "the child exited %d: it read wrong data (1), or paged over its budget or not at all (3)",
		      rc);
	ck_assert_uint_eq(count_bad(0, NPAGES, 1), 0);
	upager_close(up);
}
END_TEST

/* Pages of the region in RAM here that another process maps too (pagemap's
 * "exclusively mapped" bit clear): those are counted in the parent. */
static uint64_t still_shared_bytes(void)
{
	FILE *f = fopen("/proc/self/pagemap", "rb");
	if (!f)
		return UINT64_MAX;
	uint64_t n = 0;
	uint64_t e;
	if (fseek(f, (long)((uintptr_t)base / 4096 * 8), SEEK_SET) == 0) {
		for (uint64_t pg = 0; pg < NPAGES && fread(&e, sizeof e, 1, f) == 1; pg++)
			n += (e >> 63 & 1) && !(e >> 56 & 1);
	}
	fclose(f);
	return n * 4096;
}

/* The pages a child inherits in RAM are counted in the parent while both
 * map them.  When the parent writes its copies (copy-on-write gives it new
 * pages), the child's are its alone: it must count them and keep to its
 * budget, not hold a budget of its own pages and all of those besides.
 * Those the parent still maps (the first page of each fault-around cluster
 * can stay in its policy's small queue through the fill) stay counted there,
 * so the child's resident memory less those must fit its budget. */
START_TEST(child_counts_pages_its_parent_let_go)
{
	/* No pool: one the child inherits is counted in the parent until the
	 * child changes it (upg_pool_own()), which is another matter. */
	setup_region_cfg(0, "off");
	int go[2], done[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Half a budget of its own pages from the store, so that
		 * nothing needs evicting while the pages it inherited (the
		 * last ones filled, in RAM at the fork) are counted in the
		 * parent: when they become its own, only counting them
		 * brings its resident memory back under the budget. */
		uint64_t bad = count_bad(0, BUDGET / 2 / 4096, 1);
		(void)!write(done[1], "c", 1);
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		/* Its evictor looks every 50 ms; on a busy machine it may run
		 * late: up to 5 s.  Without the count, resident stays over. */
		struct upager_stats st = { .size = sizeof st };
		uint64_t shared = 0;
		for (int i = 0; i < 100; i++) {
			usleep(50 * 1000);
			if (upager_stats(up, &st))
				_exit(2);
			shared = still_shared_bytes();
			if (shared == UINT64_MAX)
				_exit(4);
			if (st.resident_bytes <= BUDGET + shared)
				break;
		}
		/* Most of the parent's pages at the fork were its last ones,
		 * which it has rewritten: a budget's worth shared still
		 * would mean the check below proves nothing. */
		if (st.resident_bytes > BUDGET + shared || shared > BUDGET / 4) {
			fprintf(stderr, "child: %llu bytes resident (%llu in the pool, %llu still mapped by the parent) "
				"over its budget of %llu after its parent let its pages go\n",
				(unsigned long long)st.resident_bytes, (unsigned long long)st.pool_bytes,
				(unsigned long long)shared, (unsigned long long)BUDGET);
			_exit(3);
		}
		_exit(bad || count_bad(0, NPAGES, 1) ? 1 : 0);
	}
	char c;
	ck_assert_int_eq(read(done[0], &c, 1), 1);
	for (uint64_t pg = NPAGES / 2; pg < NPAGES; pg++)
		upg_t_fill(base + pg * 4096, 4096, pg, 2);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	int rc = wait_child(pid);
	ck_assert_msg(rc == 0, "the child exited %d: it read wrong data (1), or held its inherited pages over its "
		      "budget uncounted (3), or could not read its pagemap (4)", rc);
	ck_assert_uint_eq(count_bad(0, NPAGES / 2, 1), 0);
	ck_assert_uint_eq(count_bad(NPAGES / 2, NPAGES, 2), 0);
	for (int i = 0; i < 2; i++)
		close(go[i]), close(done[i]);
	upager_close(up);
}
END_TEST

/* No process waits on another's threads: a child whose parent is killed
 * with SIGKILL while it reads goes on, and reads every page right. */
START_TEST(child_outlives_killed_parent)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	int ready[2], result[2];
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(result), 0);
	pid_t parent = fork();
	ck_assert_int_ge(parent, 0);
	if (parent == 0) {
		setup_region();
		pid_t c = fork();
		if (c == 0) {
			uint64_t bad = count_bad(0, NPAGES / 8, 1);
			(void)!write(ready[1], "r", 1);
			bad += count_bad(NPAGES / 8, NPAGES, 1);
			(void)!write(result[1], &bad, sizeof bad);
			_exit(0);
		}
		for (;;)
			upg_t_fill(base + (upg_t_rand(&(uint64_t){ (uint64_t)c }) % NPAGES) * 4096, 4096, 0, 5);
	}
	close(ready[1]);
	close(result[1]);
	char ch;
	ck_assert_int_eq(read(ready[0], &ch, 1), 1);
	kill(parent, SIGKILL);
	uint64_t bad = UINT64_MAX;
	ck_assert_msg(read(result[0], &bad, sizeof bad) == (ssize_t)sizeof bad, "the child never finished");
	ck_assert_uint_eq(bad, 0);
	while (wait(NULL) > 0)
		;
	close(ready[0]);
	close(result[0]);
}
END_TEST

START_TEST(child_threads)
{
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer cannot start threads in the child of a
	 * multithreaded fork ("dup thread with used id"); tools/sanitize.sh. */
	fprintf(stderr, "child_threads: not run under ThreadSanitizer\n");
	return;
#endif
	setup_region();
	pid_t pid = fork();
	if (pid == 0) {
		pthread_t t[4];
		struct part p[4];
		for (int i = 0; i < 4; i++) {
			p[i] = (struct part){ NPAGES * i / 4, NPAGES * (i + 1) / 4, 0 };
			pthread_create(&t[i], NULL, verify_part, &p[i]);
		}
		uint64_t bad = 0;
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			bad += p[i].bad;
		}
		_exit(bad ? 1 : 0);
	}
	for (uint64_t pg = 0; pg < NPAGES; pg += 2)
		upg_t_fill(base + pg * 4096, 4096, pg, 3);
	ck_assert_int_eq(wait_child(pid), 0);
	upager_close(up);
}
END_TEST

START_TEST(child_writes_discards_and_forks)
{
	setup_region();
	pid_t pid = fork();
	if (pid == 0) {
		/* Its own writes stay its own; a discard reads back as zeros;
		 * a grandchild still sees the fork-time data. */
		for (uint64_t pg = 0; pg < NPAGES / 4; pg++)
			upg_t_fill(base + pg * 4096, 4096, pg, 9);
		madvise(base + NPAGES / 2 * 4096, 64 * 4096, MADV_DONTNEED);
		if (!upg_t_is_zero(base + NPAGES / 2 * 4096, 64 * 4096))
			_exit(2);
		pid_t g = fork();
		if (g == 0)
			_exit(count_bad(NPAGES * 3 / 4, NPAGES, 1) ? 1 : 0);
		int st;
		waitpid(g, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			_exit(3);
		if (count_bad(0, NPAGES / 4, 9) || count_bad(NPAGES / 4, NPAGES / 2, 1))
			_exit(4);
		_exit(0);
	}
	ck_assert_int_eq(wait_child(pid), 0);
	/* The parent's view is untouched by the child. */
	ck_assert_uint_eq(count_bad(0, NPAGES, 1), 0);
	upager_close(up);
}
END_TEST

START_TEST(store_slots_return_after_child)
{
	setup_region();
	pid_t pid = fork();
	if (pid == 0) {
		usleep(100000);
		_exit(count_bad(0, 16, 1) ? 1 : 0);
	}
	/* Discard everything while the child still reads its snapshot. */
	madvise(base, BYTES, MADV_DONTNEED);
	ck_assert_int_eq(wait_child(pid), 0);
	struct upager_stats st = { .size = sizeof st };
	for (int i = 0; i < 200; i++) {  /* the hang-up is seen asynchronously */
		upager_stats(up, &st);
		if (!st.store_slots_used)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(st.store_slots_used, 0);
	upager_close(up);
}
END_TEST

/* Store blocks the parent let go of while children still read them stay
 * reserved until the last child that reads them is done: child A holds the
 * fork-time data; the parent discards it all, child B comes and goes (its
 * end must not hand A's blocks back), and the parent writes new data over
 * the store.  A then reads its snapshot. */
START_TEST(first_child_keeps_blocks_after_second_ends)
{
	setup_region();
	int go[2];
	pid_t a = fork_checker(go);
	madvise(base, BYTES, MADV_DONTNEED);
	pid_t b = fork();
	ck_assert_int_ge(b, 0);
	if (b == 0)
		_exit(0);
	ck_assert_int_eq(wait_child(b), 0);
	usleep(200000);  /* the hang-up of B is seen asynchronously */
	/* Rounds of fresh data, each discarded but the last, so that new
	 * blocks are taken all over the store. */
	for (int pass = 2; pass < 8; pass++) {
		if (pass > 2)
			madvise(base, BYTES, MADV_DONTNEED);
		for (uint64_t pg = 0; pg < NPAGES; pg++)
			upg_t_fill(base + pg * 4096, 4096, pg + NPAGES, (uint32_t)pass);
	}
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	close(go[1]);
	ck_assert_msg(wait_child(a) == 0, "the first child read wrong data");
	for (uint64_t pg = 0; pg < NPAGES; pg++)
		ck_assert_uint_eq(upg_t_check(base + pg * 4096, 4096, pg + NPAGES, 7), 0);
	upager_close(up);
}
END_TEST

START_TEST(fork_exec_is_cheap)
{
	setup_region();
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 20; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		ck_assert_int_eq(wait_child(pid), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("fork+exec+wait of /bin/true with %llu MiB in the region: %.2f ms each\n",
	       (unsigned long long)(BYTES >> 20), ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / 20);
	ck_assert_uint_eq(count_bad(0, NPAGES, 1), 0);
	upager_close(up);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fork");
	TCase *tc = tcase_create("fork");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, child_sees_fork_time_data);
	tcase_add_test(tc, child_threads);
	tcase_add_test(tc, child_is_budgeted);
	tcase_add_test(tc, child_counts_pages_its_parent_let_go);
	tcase_add_test(tc, child_outlives_killed_parent);
	tcase_add_loop_test(tc, child_outlives_close, 0, 2);
	tcase_add_test(tc, child_writes_discards_and_forks);
	tcase_add_test(tc, store_slots_return_after_child);
	tcase_add_test(tc, budget_holds_while_children_live);
	tcase_add_test(tc, first_child_keeps_blocks_after_second_ends);
	tcase_add_test(tc, fork_exec_is_cheap);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
