/* SPDX-License-Identifier: MIT */
/*
 * White-box tests of src/domain.c, the budget a process tree shares:
 * reservations that members race for never pass the budget together; a
 * member killed with SIGKILL stops counting, unless a child still maps
 * pages it counted; the member idle longest is the
 * one asked to give pages up; bad and vanished budget files.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "domain.h"
#include "helpers.h"

#define PG 4096u

static char path[64];

static void make_tree(uint64_t budget)
{
	char err[256] = "";
	snprintf(path, sizeof path, "/dev/shm/upager-test-tree-%d", (int)getpid());
	unlink(path);
	ck_assert_msg(upg_domain_create(path, budget, err, sizeof err) == 0, "create: %s", err);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

START_TEST(test_alone)
{
	struct upg_domain d;
	char err[256];
	ck_assert_int_eq(upg_domain_join(&d, NULL, 10 * PG, err, sizeof err), 0);
	ck_assert_uint_eq(upg_domain_budget(&d), 10 * PG);
	ck_assert_uint_eq(upg_domain_reserve(&d, 4, PG, false), 4);
	upg_domain_add(&d, 4 * PG, 4 * PG, now_ns());
	ck_assert_uint_eq(upg_domain_total(&d), 4 * PG);
	/* Only what is left of the budget, then nothing; force passes it. */
	ck_assert_uint_eq(upg_domain_reserve(&d, 8, PG, false), 6);
	ck_assert_uint_eq(upg_domain_reserve(&d, 1, PG, false), 0);
	ck_assert_uint_eq(upg_domain_reserve(&d, 2, PG, true), 2);
	ck_assert_uint_eq(upg_domain_total(&d), 12 * PG);
	upg_domain_unreserve(&d, 8 * PG);
	upg_domain_add(&d, -4 * (int64_t)PG, 0, 0);
	ck_assert_uint_eq(upg_domain_total(&d), 0);
	/* Alone, a member always gives its own pages up. */
	ck_assert(upg_domain_should_evict(&d, now_ns(), now_ns()));
	upg_domain_leave(&d);
}
END_TEST

/* A member: take pages and give them back, many times; exit 0. */
static void churn(int rounds)
{
	struct upg_domain d;
	char err[256];
	if (upg_domain_join(&d, path, 0, err, sizeof err))
		_exit(3);
	for (int i = 0; i < rounds; i++) {
		uint64_t got = upg_domain_reserve(&d, 1 + (uint64_t)(i % 3), PG, false);
		if (got) {
			upg_domain_add(&d, (int64_t)(got * PG), got * PG, now_ns());
			upg_domain_add(&d, -(int64_t)(got * PG), 0, 0);
		}
	}
	upg_domain_leave(&d);
	_exit(0);
}

START_TEST(test_members_race)
{
	enum { MEMBERS = 6 };
	make_tree(16 * PG);
	pid_t pid[MEMBERS];
	for (int i = 0; i < MEMBERS; i++) {
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0)
			churn((int)upg_t_scale(200000));
	}
	for (int i = 0; i < MEMBERS; i++) {
		int st;
		waitpid(pid[i], &st, 0);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "member %d: status %#x", i, st);
	}
	size_t len;
	struct upg_domain_area *a = upg_domain_map(path, &len);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->joined, MEMBERS);
	ck_assert_uint_eq(a->total, 0);
	/* Six members racing for 16 pages: the total at its highest. */
	ck_assert_msg(a->peak <= a->budget, "the members together reached %llu bytes of a %llu budget",
		      (unsigned long long)a->peak, (unsigned long long)a->budget);
	ck_assert_uint_gt(a->peak, 0);
	munmap(a, len);
	unlink(path);
}
END_TEST

/* Fork a member of the tree at path that holds 512 pages (reserved first
 * when reserve is set, as admission does) and pauses; returns once it
 * holds them. */
static pid_t member_holding_512(bool reserve)
{
	int ready[2];
	ck_assert_int_eq(pipe(ready), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct upg_domain d;
		char err[256];
		if (upg_domain_join(&d, path, 0, err, sizeof err))
			_exit(3);
		if (reserve)
			upg_domain_reserve(&d, 512, PG, false);
		upg_domain_add(&d, 512 * PG, reserve ? 512 * PG : 0, now_ns());
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(ready[1]);
	return pid;
}

START_TEST(test_killed_member)
{
	make_tree(1024 * PG);
	pid_t pid = member_holding_512(true);
	struct upg_domain me;
	char err[256];
	ck_assert_int_eq(upg_domain_join(&me, path, 0, err, sizeof err), 0);
	ck_assert_uint_eq(upg_domain_total(&me), 512 * PG);
	/* Alive and idler than us (we have brought nothing in): its turn. */
	upg_domain_add(&me, PG, 0, now_ns());
	ck_assert(!upg_domain_should_evict(&me, now_ns(), now_ns()));
	kill(pid, SIGKILL);
	/* Killed without leaving, and a zombie still (its parent, us, may be
	 * waiting for a page): the next look reaps it. */
	siginfo_t si;
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	upg_domain_reap(&me, now_ns());
	ck_assert_uint_eq(upg_domain_total(&me), PG);
	ck_assert(upg_domain_should_evict(&me, now_ns(), now_ns()));
	waitpid(pid, NULL, 0);
	upg_domain_add(&me, -(int64_t)PG, 0, 0);
	upg_domain_leave(&me);
	unlink(path);
}
END_TEST

/* A killed parent's slot counts the pages its forked child still maps
 * copy-on-write: it stays counted until the child, which named it, has
 * counted them itself; only then is it reaped. */
START_TEST(test_killed_parent_waits_for_sharer)
{
	make_tree(1024 * PG);
	pid_t pid = member_holding_512(false);
	struct upg_domain me;
	char err[256];
	ck_assert_int_eq(upg_domain_join(&me, path, 0, err, sizeof err), 0);
	upg_domain_shares_with(&me, pid);
	upg_domain_add(&me, PG, 0, now_ns());
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	upg_domain_reap(&me, now_ns());
	ck_assert_uint_eq(upg_domain_total(&me), 513 * PG);
	/* The sharer counts what it shared, and lets the slot go. */
	upg_domain_add(&me, 512 * PG, 0, now_ns());
	upg_domain_shares_with(&me, 0);
	upg_domain_reap(&me, now_ns());
	ck_assert_uint_eq(upg_domain_total(&me), 513 * PG);
	upg_domain_add(&me, -513 * (int64_t)PG, 0, 0);
	upg_domain_leave(&me);
	unlink(path);
}
END_TEST

START_TEST(test_idlest_gives)
{
	make_tree(4096 * PG);
	struct upg_domain a, b;
	char err[256];
	ck_assert_int_eq(upg_domain_join(&a, path, 0, err, sizeof err), 0);
	ck_assert_int_eq(upg_domain_join(&b, path, 0, err, sizeof err), 0);
	uint64_t t = now_ns();
	upg_domain_add(&a, 1024 * PG, 0, t - 1000000);  /* a brought pages in 1 ms ago */
	upg_domain_add(&b, 1024 * PG, 0, t);             /* b just now */
	ck_assert(upg_domain_should_evict(&a, t, t));
	ck_assert(!upg_domain_should_evict(&b, t, t));
	/* After the wait with no relief, everyone evicts its own. */
	ck_assert(upg_domain_should_evict(&b, t + UPG_DOMAIN_WAIT_NS, t));
	/* A member holding almost nothing is not waited for. */
	upg_domain_add(&a, -1023 * (int64_t)PG, 0, 0);
	ck_assert(upg_domain_should_evict(&b, t, t));
	upg_domain_add(&a, -(int64_t)PG, 0, 0);
	upg_domain_add(&b, -1024 * (int64_t)PG, 0, 0);
	upg_domain_leave(&a);
	upg_domain_leave(&b);
	unlink(path);
}
END_TEST

START_TEST(test_bad_files)
{
	struct upg_domain d;
	char err[256] = "";
	/* A file that is not a tree's: refused, naming the variable. */
	char bogus[] = "/dev/shm/upager-test-bogus-XXXXXX";
	int fd = mkstemp(bogus);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello", 5), 5);
	close(fd);
	ck_assert_int_eq(upg_domain_join(&d, bogus, PG, err, sizeof err), -EINVAL);
	ck_assert_msg(strstr(err, "UPAGER_TREE") && strstr(err, "upager-run"), "message: %s", err);
	unlink(bogus);
	/* A tree whose upager-run has ended: a budget of its own. */
	ck_assert_int_eq(upg_domain_join(&d, "/dev/shm/upager-test-gone-0", 7 * PG, err, sizeof err), 1);
	ck_assert_uint_eq(upg_domain_budget(&d), 7 * PG);
	upg_domain_leave(&d);
	/* A full tree. */
	make_tree(PG);
	struct upg_domain *m = calloc(UPG_DOMAIN_SLOTS, sizeof *m);
	for (int i = 0; i < UPG_DOMAIN_SLOTS; i++)
		ck_assert_int_eq(upg_domain_join(&m[i], path, 0, err, sizeof err), 0);
	ck_assert_int_eq(upg_domain_join(&d, path, 0, err, sizeof err), -EUSERS);
	ck_assert_msg(strstr(err, "256 processes"), "message: %s", err);
	for (int i = 0; i < UPG_DOMAIN_SLOTS; i++)
		upg_domain_leave(&m[i]);
	free(m);
	unlink(path);
}
END_TEST

/* A process that execs is a new image of the same pid: the slot its old
 * image held must stop counting when the new one joins. */
START_TEST(test_exec_leaves_slot)
{
	make_tree(1024 * PG);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct upg_domain d;
		char err[256];
		if (upg_domain_join(&d, path, 0, err, sizeof err))
			_exit(3);
		upg_domain_reserve(&d, 256, PG, false);
		upg_domain_add(&d, 256 * PG, 256 * PG, now_ns());
		execl("/proc/self/exe", "test_domain", "--join", path, (char *)NULL);
		_exit(4);
	}
	int st;
	waitpid(pid, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the exec'd image found its old image's pages still counted (status %#x)", st);
	unlink(path);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--join")) {
		/* test_exec_leaves_slot's new image: join, then the total must
		 * hold nothing of the old image. */
		struct upg_domain d;
		char err[256];
		if (upg_domain_join(&d, argv[2], 0, err, sizeof err))
			return 3;
		int rc = upg_domain_total(&d) == 0 ? 0 : 1;
		upg_domain_leave(&d);
		return rc;
	}
	Suite *s = suite_create("domain");
	TCase *tc = tcase_create("domain");
	tcase_add_test(tc, test_alone);
	tcase_add_test(tc, test_members_race);
	tcase_add_test(tc, test_killed_member);
	tcase_add_test(tc, test_killed_parent_waits_for_sharer);
	tcase_add_test(tc, test_idlest_gives);
	tcase_add_test(tc, test_bad_files);
	tcase_add_test(tc, test_exec_leaves_slot);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
