/* SPDX-License-Identifier: MIT */
/*
 * Privilege: without the right to a userfaultfd that handles kernel-mode
 * faults, upager_open() fails with -EPERM and a message that lists every
 * way to get it: root or CAP_SYS_PTRACE, vm.unprivileged_userfaultfd, or
 * access to /dev/userfaultfd.  CAP_SYS_PTRACE alone is enough.
 *
 * The test forks a child that becomes uid/gid 65534 (nobody), which drops
 * every capability.  The store is a world-writable directory, so that the
 * only thing missing is the privilege.  The child reports through a pipe.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "upager.h"

#define NOBODY 65534
#define MIB (1ULL << 20)

struct child_result {
	char setup_err[256];   /* non-empty: the child could not get into the wanted state */
	unsigned long long cap_eff;
	int rc;
	int out_untouched;
	char msg[1024];
	/* for the paging run */
	int map_rc;
	unsigned long long evictions, store_reads;
	long long bad_page;   /* -1: every page verified */
};

static char store_dir[64];

static int drop_to_nobody(int keep_ptrace, char *err, size_t errlen)
{
	if (keep_ptrace && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) {
		snprintf(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
		return -1;
	}
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY)) {
		snprintf(err, errlen, "dropping to uid/gid %d: %s", NOBODY, strerror(errno));
		return -1;
	}
	if (keep_ptrace) {
		struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
		struct __user_cap_data_struct d[2];
		memset(d, 0, sizeof d);
		d[CAP_SYS_PTRACE / 32].effective = 1u << (CAP_SYS_PTRACE % 32);
		d[CAP_SYS_PTRACE / 32].permitted = 1u << (CAP_SYS_PTRACE % 32);
		if (syscall(SYS_capset, &h, d)) {
			snprintf(err, errlen, "capset(CAP_SYS_PTRACE): %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static unsigned long long cap_eff(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long v = ~0ULL;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static upager_t *const SENTINEL = (upager_t *)(uintptr_t)0x5e47;

/* In the child: drop privileges, open, and (when it opened) page a little. */
static void child_main(int keep_ptrace, int wfd)
{
	struct child_result res;
	memset(&res, 0, sizeof res);
	res.bad_page = -1;
	if (drop_to_nobody(keep_ptrace, res.setup_err, sizeof res.setup_err) == 0) {
		res.cap_eff = cap_eff();
		/* The store directory really is usable by this user. */
		char probe[128];
		snprintf(probe, sizeof probe, "%s/probe", store_dir);
		int fd = open(probe, O_CREAT | O_RDWR | O_EXCL, 0600);
		if (fd < 0) {
			snprintf(res.setup_err, sizeof res.setup_err, "uid %d cannot create %s: %s", NOBODY, probe,
				 strerror(errno));
		} else {
			close(fd);
			unlink(probe);
			struct upager_config cfg;
			upager_config_init(&cfg);
			cfg.ram_budget = 4 * MIB;
			cfg.store_path = store_dir;
			upager_t *up = SENTINEL;
			res.rc = upager_open(&cfg, &up, res.msg, sizeof res.msg);
			res.out_untouched = up == SENTINEL;
			if (res.rc == 0) {
				size_t len = 16 * MIB, n = len / 4096;
				void *a = NULL;
				res.map_rc = upager_map(up, len, NULL, &a);
				if (!res.map_rc) {
					char *b = a;
					for (size_t i = 0; i < n; i++)
						upg_t_fill(b + i * 4096, 4096, i, 1);
					for (size_t i = 0; i < n && res.bad_page < 0; i++)
						if (upg_t_check(b + i * 4096, 4096, i, 1))
							res.bad_page = (long long)i;
					struct upager_stats st = { .size = sizeof st };
					upager_stats(up, &st);
					res.evictions = st.evictions;
					res.store_reads = st.store_reads;
					upager_unmap(up, a);
				}
				upager_close(up);
			}
		}
	}
	ssize_t w = write(wfd, &res, sizeof res);
	_exit(w == (ssize_t)sizeof res ? 0 : 1);
}

static void child_entry(void *arg, int wfd)
{
	child_main(*(int *)arg, wfd);
}

static void run_child(int keep_ptrace, struct child_result *res)
{
	upg_t_run_child(child_entry, &keep_ptrace, res, sizeof *res, "the unprivileged child died");
	ck_assert_msg(!res->setup_err[0], "child set-up: %s", res->setup_err);
}

static void setup(void)
{
	snprintf(store_dir, sizeof store_dir, "/var/tmp/upager-priv-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(store_dir));
	ck_assert_int_eq(chmod(store_dir, 0777), 0);
}

static void teardown(void)
{
	rmdir(store_dir);
}

START_TEST(test_unprivileged_gets_eperm)
{
	struct child_result res;
	run_child(0, &res);
	ck_assert_msg(res.cap_eff == 0, "uid %d still has capabilities %#llx", NOBODY, res.cap_eff);
	ck_assert_msg(res.rc == -EPERM, "upager_open as uid %d returned %d (%s), expected -EPERM; message: %s",
		      NOBODY, res.rc, res.rc ? strerror(-res.rc) : "success", res.msg);
	ck_assert_msg(res.out_untouched, "upager_open wrote *out although it failed");
	ck_assert_msg(!strchr(res.msg, '\n'), "the message is not one line: %s", res.msg);
	static const char *const fixes[] = { "CAP_SYS_PTRACE", "root", "vm.unprivileged_userfaultfd",
					     "/dev/userfaultfd" };
	for (size_t i = 0; i < sizeof fixes / sizeof fixes[0]; i++)
		ck_assert_msg(strstr(res.msg, fixes[i]), "the -EPERM message does not mention '%s': %s", fixes[i],
			      res.msg);
}
END_TEST

/* The message says CAP_SYS_PTRACE is enough: uid 65534 with that one
 * capability opens a runtime and pages through the same store. */
START_TEST(test_cap_sys_ptrace_is_enough)
{
	struct child_result res;
	run_child(1, &res);
	ck_assert_msg(res.cap_eff == 1ULL << CAP_SYS_PTRACE, "capabilities are %#llx, not just CAP_SYS_PTRACE",
		      res.cap_eff);
	ck_assert_msg(res.rc == 0, "upager_open as uid %d with CAP_SYS_PTRACE returned %d (%s): %s", NOBODY, res.rc,
		      strerror(-res.rc), res.msg);
	ck_assert_int_eq(res.map_rc, 0);
	ck_assert_msg(res.evictions > 0, "16 MiB through a 4 MiB budget evicted nothing");
	ck_assert_msg(res.store_reads > 0, "nothing was read back from the store");
	ck_assert_msg(res.bad_page < 0, "page %lld did not verify", res.bad_page);
}
END_TEST

/* The same store directory works for root: the -EPERM above is about the
 * privilege, not the store. */
START_TEST(test_root_same_store_works)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = 4 * MIB;
	cfg.store_path = store_dir;
	char err[512] = "";
	upager_t *up = NULL;
	int rc = upager_open(&cfg, &up, err, sizeof err);
	ck_assert_msg(rc == 0, "upager_open as root with store %s: %s", store_dir, err);
	void *a = NULL;
	size_t n = 16 * MIB / 4096;
	ck_assert_int_eq(upager_map(up, n * 4096, NULL, &a), 0);
	char *b = a;
	for (size_t i = 0; i < n; i++)
		upg_t_fill(b + i * 4096, 4096, i, 1);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(!upg_t_check(b + i * 4096, 4096, i, 1), "page %zu", i);
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_int_eq(upager_unmap(up, a), 0);
	ck_assert_int_eq(upager_close(up), 0);
}
END_TEST

/* Is there already a way for uid 65534 to get a kernel-mode userfaultfd?
 * Then the -EPERM case cannot be tested here.  Returns a reason or NULL. */
static const char *unprivileged_has_uffd(void)
{
	static char why[256];
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
		if (v) {
			snprintf(why, sizeof why, "vm.unprivileged_userfaultfd is %d: every user may use userfaultfd", v);
			return why;
		}
	}
	int p[2];
	if (pipe(p))
		return "pipe failed";
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		char r = '0';
		char err[256];
		if (drop_to_nobody(0, err, sizeof err))
			r = 'E';
		else if (open("/dev/userfaultfd", O_RDWR | O_CLOEXEC) >= 0)
			r = 'D';
		else if (syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK) >= 0)
			r = 'S';
		(void)!write(p[1], &r, 1);
		_exit(0);
	}
	close(p[1]);
	char r = 'E';
	(void)!read(p[0], &r, 1);
	close(p[0]);
	waitpid(pid, NULL, 0);
	if (r == 'D')
		return "/dev/userfaultfd is accessible to uid 65534";
	if (r == 'S')
		return "uid 65534 can create a userfaultfd without privilege";
	return NULL; /* 'E': the test itself reports why it cannot drop privileges */
}

int main(void)
{
	if (geteuid() != 0) {
		printf("skip: already running unprivileged (euid %d); this test needs root to drop from\n",
		       (int)geteuid());
		return UPG_T_SKIP;
	}
	const char *why = unprivileged_has_uffd();
	if (why) {
		printf("skip: %s, so upager_open cannot be refused\n", why);
		return UPG_T_SKIP;
	}
	Suite *s = suite_create("privilege");
	TCase *tc = tcase_create("privilege");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_unprivileged_gets_eperm);
	tcase_add_test(tc, test_cap_sys_ptrace_is_enough);
	tcase_add_test(tc, test_root_same_store_works);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	fflush(stdout);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
