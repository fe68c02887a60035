/* SPDX-License-Identifier: MIT */
/*
 * Life cycle (issue #5): runtimes opened and closed over and over, with
 * paging (and now and then a fork) in between, leave no file descriptor,
 * no thread and no file in the store directory behind; neither do failed
 * opens, nor regions mapped and unmapped in one runtime.  A child paging to
 * a store directory and killed with SIGKILL in the middle leaves the
 * directory empty.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define PSIZE 4096u

static char store_dir[64];

static void make_store_dir(void)
{
	/* /var/tmp: a disk file system (the store needs O_DIRECT). */
	snprintf(store_dir, sizeof store_dir, "/var/tmp/upager-lifecycle-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(store_dir));
}

static void remove_store_dir(void)
{
	ck_assert_int_eq(upg_t_count_dir(store_dir), 0);
	ck_assert_int_eq(rmdir(store_dir), 0);
}

static upager_t *open_in_dir(uint64_t budget, uint32_t handlers, const char *policy)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = budget;
	cfg.store_path = store_dir;
	cfg.handler_threads = handlers;
	if (policy)
		cfg.policy = policy;
	cfg.log = upg_t_log;
	cfg.log_level = UPAGER_LOG_WARN;
	upg_t_config_env(&cfg);
	char err[512];
	upager_t *up = NULL;
	int rc = upager_open(&cfg, &up, err, sizeof err);
	ck_assert_msg(rc == 0, "upager_open: %s (%s)", err, strerror(-rc));
	return up;
}

static uint64_t count_bad(const char *base, uint64_t npages, uint32_t gen)
{
	uint64_t bad = 0;
	for (uint64_t pg = 0; pg < npages; pg++)
		bad += upg_t_check(base + pg * PSIZE, PSIZE, pg, gen) != 0;
	return bad;
}

#if defined(__SANITIZE_THREAD__)
static void *nothing(void *arg)
{
	return arg;
}
#endif

START_TEST(open_close_cycles)
{
	make_store_dir();
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer starts a background thread of its own with the
	 * process's first pthread_create(): have it running before counting. */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, nothing, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
#endif
	static const char *policies[] = { "s3fifo", "clock", "fifo" };
	const uint64_t budget = 512 << 10, bytes = budget * 4, npages = bytes / PSIZE;
	int fds0 = upg_t_count_fds();
	int tasks0 = upg_t_tasks_settle(1);
#if !defined(__SANITIZE_THREAD__)
	ck_assert_int_eq(tasks0, 1);  /* (ThreadSanitizer runs a thread of its own) */
#endif
	int cycles = (int)upg_t_scale(150);
	for (int i = 0; i < cycles; i++) {
		upager_t *up = open_in_dir(budget, 1 + (uint32_t)(i % 2), policies[i % 3]);
		void *mem;
		ck_assert_int_eq(upager_map(up, bytes, NULL, &mem), 0);
		char *base = mem;
		for (uint64_t pg = 0; pg < npages; pg++)
			upg_t_fill(base + pg * PSIZE, PSIZE, pg, (uint32_t)i);
		ck_assert_msg(upg_t_store_fd(getpid(), store_dir, NULL) >= 0, "cycle %d: the store is not in %s", i, store_dir);
		ck_assert_int_eq(upg_t_count_dir(store_dir), 0);
		if (i % 10 == 9) {
			pid_t pid = fork();
			ck_assert_int_ge(pid, 0);
			if (pid == 0)
				_exit(count_bad(base, npages, (uint32_t)i) ? 1 : 0);
			int st;
			ck_assert_int_eq(waitpid(pid, &st, 0), pid);
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cycle %d: child status %#x", i, st);
		}
		ck_assert_uint_eq(count_bad(base, npages, (uint32_t)i), 0);
		struct upager_stats st = { .size = sizeof st };
		ck_assert_int_eq(upager_stats(up, &st), 0);
		ck_assert_uint_gt(st.store_reads, 0);
		if (i % 2)
			ck_assert_int_eq(upager_unmap(up, mem), 0);  /* else upager_close releases it */
		ck_assert_int_eq(upager_close(up), 0);
		int fds = upg_t_count_fds();
		ck_assert_msg(fds == fds0, "cycle %d: %d descriptors open, %d before", i, fds, fds0);
		int tasks = upg_t_tasks_settle(tasks0);
		char names[512];
		ck_assert_msg(tasks == tasks0, "cycle %d: %d threads, %d before (now %s)", i, tasks, tasks0,
			      upg_t_task_names(names, sizeof names));
		ck_assert_int_eq(upg_t_count_dir(store_dir), 0);
	}
	printf("lifecycle: %d open/page/close cycles, %d descriptors and %d thread(s) throughout\n", cycles, fds0,
	       tasks0);
	remove_store_dir();
}
END_TEST

/* Opens that fail part of the way leave nothing behind either. */
START_TEST(failed_opens)
{
	int fds0 = upg_t_count_fds();
	int tasks0 = upg_t_tasks_settle(1);
	struct stat sb;
	int have_shm = !stat("/dev/shm", &sb) && S_ISDIR(sb.st_mode);
	for (int i = 0; i < 100; i++) {
		struct upager_config cfg;
		upager_config_init(&cfg);
		cfg.ram_budget = 1 << 20;
		char err[512];
		upager_t *up = NULL;
		cfg.store_path = "/nonexistent/upager-store";
		ck_assert_int_eq(upager_open(&cfg, &up, err, sizeof err), -ENOENT);
		if (have_shm) {
			cfg.store_path = "/dev/shm";  /* tmpfs: refused after the userfaultfd is open */
			ck_assert_int_eq(upager_open(&cfg, &up, err, sizeof err), -EINVAL);
		}
		cfg.store_path = NULL;
		cfg.handler_threads = 0;
		ck_assert_int_eq(upager_open(&cfg, &up, err, sizeof err), -EINVAL);
		ck_assert_ptr_null(up);
	}
	ck_assert_int_eq(upg_t_count_fds(), fds0);
	ck_assert_int_eq(upg_t_tasks_settle(tasks0), tasks0);
}
END_TEST

/* Threads other than the kernel's io_uring workers, which come and go
 * with the store's I/O while a runtime is open. */
static int own_threads(void)
{
	int tids[256], keep[256];
	int n = upg_t_tasks(tids, 256);
	return upg_t_new_threads(NULL, 0, tids, n, keep, 256);
}

/* Regions mapped, paged and unmapped in one runtime give back every slot,
 * byte and descriptor. */
START_TEST(map_unmap_cycles)
{
	make_store_dir();
	upager_t *up = open_in_dir(512 << 10, 1, NULL);
	int fds0 = upg_t_count_fds();
	int tasks0 = own_threads();
	const uint64_t bytes = 1 << 20, npages = bytes / PSIZE;
	int cycles = (int)upg_t_scale(60);
	for (int i = 0; i < cycles; i++) {
		void *a, *b;
		ck_assert_int_eq(upager_map(up, bytes, NULL, &a), 0);
		struct upager_map_opts mo = { .size = sizeof mo, .page_size = 16384 };
		ck_assert_int_eq(upager_map(up, bytes, &mo, &b), 0);
		for (uint64_t pg = 0; pg < npages; pg++) {
			upg_t_fill((char *)a + pg * PSIZE, PSIZE, pg, (uint32_t)i);
			upg_t_fill((char *)b + pg * PSIZE, PSIZE, pg, (uint32_t)i + 1);
		}
		ck_assert_uint_eq(count_bad(a, npages, (uint32_t)i), 0);
		ck_assert_uint_eq(count_bad(b, npages, (uint32_t)i + 1), 0);
		ck_assert_int_eq(upager_unmap(up, i % 2 ? a : b), 0);
		ck_assert_int_eq(upager_unmap(up, i % 2 ? b : a), 0);
		struct upager_stats st = { .size = sizeof st };
		ck_assert_int_eq(upager_stats(up, &st), 0);
		ck_assert_uint_eq(st.regions, 0);
		ck_assert_uint_eq(st.resident_bytes, 0);
		ck_assert_msg(st.store_slots_used == 0, "cycle %d: %llu store slots still used", i,
			      (unsigned long long)st.store_slots_used);
		ck_assert_uint_gt(st.writebacks, 0);
	}
	ck_assert_int_eq(upg_t_count_fds(), fds0);
	ck_assert_int_eq(own_threads(), tasks0);
	ck_assert_int_eq(upager_close(up), 0);
	remove_store_dir();
}
END_TEST

/* The child pages to the store directory until it is killed. */
static void paging_child(int wfd)
{
	upager_t *up = open_in_dir(1 << 20, 2, NULL);
	const uint64_t bytes = 8 << 20, npages = bytes / PSIZE;
	void *mem;
	if (upager_map(up, bytes, NULL, &mem))
		_exit(2);
	char *base = mem;
	for (uint32_t gen = 1;; gen++) {
		for (uint64_t pg = 0; pg < npages; pg++)
			upg_t_fill(base + pg * PSIZE, PSIZE, pg, gen);
		if (count_bad(base, npages, gen))
			_exit(3);
		if (gen == 1 && write(wfd, "x", 1) != 1)
			_exit(4);
	}
}

START_TEST(kill9_leaves_store_dir_empty)
{
	make_store_dir();
	uint64_t seed = 3;
	for (int round = 0; round < 5; round++) {
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		fflush(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(p[0]);
			paging_child(p[1]);
		}
		close(p[1]);
		char c;
		ck_assert_int_eq(read(p[0], &c, 1), 1);  /* it has written and read back its store */
		close(p[0]);
		ck_assert_msg(upg_t_store_fd(pid, store_dir, NULL) >= 0, "the child's store is not in %s", store_dir);
		ck_assert_int_eq(upg_t_count_dir(store_dir), 0);
		usleep((useconds_t)(upg_t_rand(&seed) % 50000));
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		int st;
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %#x", st);
		ck_assert_int_eq(upg_t_count_dir(store_dir), 0);
	}
	remove_store_dir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, open_close_cycles);
	tcase_add_test(tc, failed_opens);
	tcase_add_test(tc, map_unmap_cycles);
	tcase_add_test(tc, kill9_leaves_store_dir_empty);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
