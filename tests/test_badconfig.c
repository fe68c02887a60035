/* SPDX-License-Identifier: MIT */
/*
 * Bad configurations and bad API calls: each gives its documented error code
 * and, for upager_open(), a one-line message that names what to change.
 * Nothing crashes, and output parameters are left alone on failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* unshare, CLONE_NEWNS */
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "upager.h"

#define MIB (1ULL << 20)

static upager_t *const SENTINEL = (upager_t *)(uintptr_t)0x5e47;

static void base_config(struct upager_config *cfg)
{
	upager_config_init(cfg);
	cfg->ram_budget = 4 * MIB;
}

/* upager_open() must fail with want (0: any negative errno) and a message
 * holding every string of must[] (NULL-terminated); returns the message. */
static const char *expect_open_fail(const struct upager_config *cfg, int want, const char *const *must)
{
	static char err[1024];
	memset(err, 'x', sizeof err);
	err[sizeof err - 1] = 0;
	upager_t *up = SENTINEL;
	int rc = upager_open(cfg, &up, err, sizeof err);
	if (rc == 0)
		upager_close(up);
	if (want)
		ck_assert_msg(rc == want, "upager_open returned %d (%s), expected %d (%s); message: %s", rc,
			      rc ? strerror(-rc) : "success", want, strerror(-want), rc ? err : "(none)");
	else
		ck_assert_msg(rc < 0, "upager_open returned %d, expected an error", rc);
	ck_assert_msg(up == SENTINEL, "upager_open wrote *out although it failed");
	ck_assert_msg(memchr(err, 0, sizeof err) != NULL, "the message is not NUL-terminated");
	ck_assert_msg(err[0] && strlen(err) > 10, "the message is empty or too short: '%s'", err);
	ck_assert_msg(!strchr(err, '\n'), "the message is not one line: '%s'", err);
	for (size_t i = 0; must && must[i]; i++)
		ck_assert_msg(strstr(err, must[i]), "the message does not mention '%s': %s", must[i], err);
	return err;
}

#define MUST(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* upager_config_validate() refuses what upager_open() refuses for the
 * config alone, with the same code and message. */
static void expect_validate_fail(const struct upager_config *cfg, int want)
{
	char a[1024] = "", b[1024] = "";
	upager_t *up = SENTINEL;
	int rc = upager_config_validate(cfg, a, sizeof a);
	ck_assert_msg(rc == want, "upager_config_validate returned %d, expected %d; message: %s", rc, want, a);
	ck_assert_int_eq(upager_open(cfg, &up, b, sizeof b), want);
	ck_assert_msg(a[0] && !strcmp(a, b), "upager_config_validate said '%s', upager_open said '%s'", a, b);
}

/* ---- upager_open ---- */

START_TEST(test_budget_zero)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.ram_budget = 0;
	expect_open_fail(&cfg, -EINVAL, MUST("ram_budget", "UPAGER_RAM"));
	expect_validate_fail(&cfg, -EINVAL);
}
END_TEST

START_TEST(test_page_size_3000)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.page_size = 3000;
	expect_open_fail(&cfg, -EINVAL, MUST("3000", "page_size", "UPAGER_PAGE"));
	expect_validate_fail(&cfg, -EINVAL);
}
END_TEST

START_TEST(test_store_missing_directory)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.store_path = "/nonexistent-dir/sub/store";
	expect_open_fail(&cfg, -ENOENT, MUST("/nonexistent-dir/sub/store", "UPAGER_STORE"));
	/* The same for a missing directory given as a directory. */
	cfg.store_path = "/nonexistent-dir/sub/";
	expect_open_fail(&cfg, -ENOENT, MUST("/nonexistent-dir/sub"));
	/* ... also when its parent exists (open(O_CREAT) says EISDIR). */
	cfg.store_path = "/nonexistent-upager-store-dir/";
	expect_open_fail(&cfg, -ENOENT, MUST("/nonexistent-upager-store-dir/", "does not exist", "UPAGER_STORE"));
}
END_TEST

/* A budget of less than one page cannot hold the page being faulted in. */
START_TEST(test_budget_under_one_page)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.ram_budget = 4095;
	expect_open_fail(&cfg, -EINVAL, MUST("4095", "one page", "UPAGER_RAM"));
	expect_validate_fail(&cfg, -EINVAL);
	/* One page is the least, and it counts in the configured page size. */
	cfg.page_size = 64 << 10;
	cfg.ram_budget = 32 << 10;
	expect_open_fail(&cfg, -EINVAL, MUST("32768", "65536", "UPAGER_RAM"));
	expect_validate_fail(&cfg, -EINVAL);
}
END_TEST

START_TEST(test_page_size_not_power_of_two)
{
	static const uint32_t bad[] = { 0, 2048, 4097, 12288, 65535, 3u << 20 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct upager_config cfg;
		char num[16];
		base_config(&cfg);
		cfg.page_size = bad[i];
		snprintf(num, sizeof num, "(%u)", bad[i]);
		expect_open_fail(&cfg, -EINVAL, MUST(num, "power-of-two", "UPAGER_PAGE"));
		expect_validate_fail(&cfg, -EINVAL);
	}
}
END_TEST

/* Character devices, FIFOs and sockets cannot hold pages. */
START_TEST(test_store_not_a_file)
{
	static const char *const devices[] = { "/dev/null", "/dev/zero", "/dev/full" };
	struct upager_config cfg;
	base_config(&cfg);
	for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
		cfg.store_path = devices[i];
		expect_open_fail(&cfg, -EINVAL, MUST(devices[i], "character device", "UPAGER_STORE"));
	}
	/* A FIFO: refused at once (an open() of it could block). */
	char fifo[] = "/var/tmp/upager-fifo-XXXXXX";
	int fd = mkstemp(fifo);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(fifo);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	cfg.store_path = fifo;
	expect_open_fail(&cfg, -EINVAL, MUST(fifo, "FIFO", "UPAGER_STORE"));
	unlink(fifo);
}
END_TEST

/* A path that runs through a regular file. */
START_TEST(test_store_under_a_file)
{
	char file[] = "/var/tmp/upager-file-XXXXXX", path[64];
	int fd = mkstemp(file);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(path, sizeof path, "%s/store", file);
	struct upager_config cfg;
	base_config(&cfg);
	cfg.store_path = path;
	expect_open_fail(&cfg, -ENOTDIR, MUST(path, "not a directory", "UPAGER_STORE"));
	unlink(file);
}
END_TEST

static char open_log[4096];

static void keep_log(void *arg, int level, const char *msg)
{
	size_t n = strlen(open_log);
	snprintf(open_log + n, sizeof open_log - n, "%s\n", msg);
}

/* A regular file is documented to be used as it is and overwritten: pages
 * evicted to it come back intact, and closing empties it. */
START_TEST(test_store_regular_file_is_used)
{
	char file[] = "/var/tmp/upager-store-XXXXXX";
	int fd = mkstemp(file);
	ck_assert_int_ge(fd, 0);
	char junk[8192];
	memset(junk, 0xa5, sizeof junk);
	ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);

	struct upager_config cfg;
	base_config(&cfg);
	cfg.ram_budget = 1 * MIB;
	cfg.store_path = file;
	upager_t *u = NULL;
	char err[512] = "";
	ck_assert_msg(upager_open(&cfg, &u, err, sizeof err) == 0, "%s", err);
	char *a = NULL;
	const size_t len = 8 * MIB, pages = len / 4096;
	ck_assert_int_eq(upager_map(u, len, NULL, (void **)&a), 0);
	for (size_t i = 0; i < pages; i++)
		upg_t_fill(a + i * 4096, 4096, i, 7);
	for (size_t i = 0; i < pages; i++)
		ck_assert_msg(!upg_t_check(a + i * 4096, 4096, i, 7), "page %zu is wrong", i);
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(u, &st), 0);
	ck_assert_msg(st.writebacks > 0 && st.store_reads > 0, "the store file was not used: %llu writes, %llu reads",
		      (unsigned long long)st.writebacks, (unsigned long long)st.store_reads);
	struct stat sb;
	ck_assert_int_eq(stat(file, &sb), 0);
	ck_assert_msg(sb.st_size >= (off_t)(st.writebacks * 4096 / 2), "the store file is only %lld bytes",
		      (long long)sb.st_size);
	ck_assert_int_eq(upager_unmap(u, a), 0);
	ck_assert_int_eq(upager_close(u), 0);
	ck_assert_int_eq(stat(file, &sb), 0);
	ck_assert_msg(sb.st_size == 0, "the store file keeps %lld bytes after close", (long long)sb.st_size);
	unlink(file);
}
END_TEST

/*
 * A directory the process may not write to.  Root writes anywhere, so the
 * child drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH first; it keeps what
 * userfaultfd needs.
 */
struct nowrite_result {
	char setup_err[128];
	int rc[2];
	char msg[2][1024];
};

static void nowrite_child(void *arg, int wfd)
{
	const char *dir = arg;
	struct nowrite_result res;
	memset(&res, 0, sizeof res);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) == 0) {
		data[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
		if (syscall(SYS_capset, &hdr, data))
			snprintf(res.setup_err, sizeof res.setup_err, "capset: %s", strerror(errno));
	}
	char file[256];
	snprintf(file, sizeof file, "%s/store", dir);
	const char *paths[2] = { dir, file };
	for (int i = 0; i < 2 && !res.setup_err[0]; i++) {
		struct upager_config cfg;
		base_config(&cfg);
		cfg.store_path = paths[i];
		upager_t *u = NULL;
		res.rc[i] = upager_open(&cfg, &u, res.msg[i], sizeof res.msg[i]);
		if (!res.rc[i])
			upager_close(u);
	}
	ssize_t n = write(wfd, &res, sizeof res);
	_exit(n == (ssize_t)sizeof res ? 0 : 1);
}

START_TEST(test_store_dir_not_writable)
{
	char dir[] = "/var/tmp/upager-ro-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0555), 0);
	struct nowrite_result res;
	upg_t_run_child(nowrite_child, dir, &res, sizeof res, "the unwritable-directory child failed");
	rmdir(dir);
	ck_assert_msg(!res.setup_err[0], "%s", res.setup_err);
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(res.rc[i] == -EACCES, "%s: upager_open returned %d (%s), expected -EACCES; message: %s",
			      i ? "a store file in it" : "the directory", res.rc[i], strerror(-res.rc[i]), res.msg[i]);
		ck_assert_msg(strstr(res.msg[i], dir) && strstr(res.msg[i], "writable") &&
			      strstr(res.msg[i], "UPAGER_STORE"), "the message does not say what to change: %s",
			      res.msg[i]);
	}
}
END_TEST

/* The default store lives in $TMPDIR; when that is tmpfs, the documented
 * fallback is /var/tmp. */
START_TEST(test_default_store_tmpdir_on_tmpfs)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.log = keep_log;
	cfg.log_level = UPAGER_LOG_INFO;
	setenv("TMPDIR", "/dev/shm", 1);
	upager_t *u = NULL;
	char err[512] = "";
	open_log[0] = '\0';
	ck_assert_msg(upager_open(&cfg, &u, err, sizeof err) == 0, "TMPDIR=/dev/shm: %s", err);
	ck_assert_int_eq(upager_close(u), 0);
	ck_assert_msg(strstr(open_log, "unlinked file in /var/tmp"), "the store is not in /var/tmp: %s", open_log);

	/* A missing $TMPDIR is an error that names it. */
	setenv("TMPDIR", "/nonexistent-upager-tmpdir", 1);
	expect_open_fail(&cfg, -ENOENT, MUST("/nonexistent-upager-tmpdir", "UPAGER_STORE"));
	unsetenv("TMPDIR");
}
END_TEST

START_TEST(test_store_under_proc)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.store_path = "/proc/upager-store";
	const char *msg = expect_open_fail(&cfg, 0, MUST("/proc/upager-store"));
	(void)msg;
}
END_TEST

/*
 * Stores on mounts made for the test, in a private mount namespace of a
 * forked child (so nothing leaks into the test process or the system).  The
 * child reports each upager_open() result through a pipe.
 */
struct ns_result {
	char setup_err[256]; /* non-empty: the child could not set up */
	char dir[64];
	int rc[2];
	char msg[2][1024];
};

enum ns_mount {
	NS_TMPFS,         /* a fresh tmpfs */
	NS_TMPFS_RO,      /* a fresh read-only tmpfs */
	NS_BIND_RO,       /* a directory of /var/tmp (a disk), bound read-only */
};

static int ns_mount(enum ns_mount how, const char *dir)
{
	switch (how) {
	case NS_TMPFS:
		return mount("tmpfs", dir, "tmpfs", 0, "size=16m");
	case NS_TMPFS_RO:
		return mount("tmpfs", dir, "tmpfs", MS_RDONLY, "size=16m");
	case NS_BIND_RO:
		/* Read-only takes a second, remounting call for a bind mount. */
		if (mount(dir, dir, NULL, MS_BIND, NULL))
			return -1;
		return mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
	}
	return -1;
}

static void ns_child(enum ns_mount how, int wfd)
{
	struct ns_result res;
	memset(&res, 0, sizeof res);
	char tmp_dir[] = "/tmp/upager-ns-XXXXXX", disk_dir[] = "/var/tmp/upager-ns-XXXXXX";
	char *dir = how == NS_BIND_RO ? disk_dir : tmp_dir;
	if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		snprintf(res.setup_err, sizeof res.setup_err, "unshare(CLONE_NEWNS): %s", strerror(errno));
	} else if (!mkdtemp(dir)) {
		snprintf(res.setup_err, sizeof res.setup_err, "mkdtemp: %s", strerror(errno));
	} else if (ns_mount(how, dir)) {
		snprintf(res.setup_err, sizeof res.setup_err, "mount on %s: %s", dir, strerror(errno));
		umount2(dir, MNT_DETACH);
		rmdir(dir);
	} else {
		snprintf(res.dir, sizeof res.dir, "%s", dir);
		char file[128];
		snprintf(file, sizeof file, "%s/store", dir);
		const char *paths[2] = { dir, file }; /* a directory (O_TMPFILE there), a file to create */
		for (int i = 0; i < 2; i++) {
			struct upager_config cfg;
			base_config(&cfg);
			cfg.store_path = paths[i];
			upager_t *up = NULL;
			res.rc[i] = upager_open(&cfg, &up, res.msg[i], sizeof res.msg[i]);
			if (!res.rc[i])
				upager_close(up);
		}
		umount2(dir, MNT_DETACH);
		rmdir(dir);
	}
	ssize_t n = write(wfd, &res, sizeof res);
	_exit(n == (ssize_t)sizeof res ? 0 : 1);
}

static void ns_entry(void *arg, int wfd)
{
	ns_child(*(enum ns_mount *)arg, wfd);
}

static int ns_run(enum ns_mount how, struct ns_result *res)
{
	upg_t_run_child(ns_entry, &how, res, sizeof *res, "the mount-namespace child failed");
	return res->setup_err[0] ? -1 : 0;
}

static void check_ns_result(const struct ns_result *res, int i, int want, const char *const *must)
{
	const char *what = i ? "a store file on" : "a store directory on";
	ck_assert_msg(res->rc[i] == want, "%s %s: upager_open returned %d (%s), expected %d (%s); message: %s", what,
		      res->dir, res->rc[i], res->rc[i] ? strerror(-res->rc[i]) : "success", want, strerror(-want),
		      res->rc[i] ? res->msg[i] : "(none)");
	ck_assert_msg(res->msg[i][0], "%s %s: empty message", what, res->dir);
	for (size_t k = 0; must && must[k]; k++)
		ck_assert_msg(strstr(res->msg[i], must[k]), "%s %s: the message does not mention '%s': %s", what,
			      res->dir, must[k], res->msg[i]);
}

/* A read-only tmpfs: -EROFS, naming the path and asking for a writable one. */
START_TEST(test_store_read_only_mount)
{
	struct ns_result res;
	if (ns_run(NS_TMPFS_RO, &res)) {
		/* No mount namespace (no CAP_SYS_ADMIN): a read-only path
		 * must still fail with a message. */
		fprintf(stderr, "%s; checking /proc/sys instead\n", res.setup_err);
		struct upager_config cfg;
		base_config(&cfg);
		cfg.store_path = "/proc/sys";
		expect_open_fail(&cfg, 0, MUST("/proc/sys"));
		return;
	}
	check_ns_result(&res, 0, -EROFS, MUST(res.dir, "writable"));
	check_ns_result(&res, 1, -EROFS, MUST(res.dir, "writable"));
}
END_TEST

/* A read-only bind mount of a directory on a disk: the filesystem takes
 * O_DIRECT, but nothing may be created there. */
START_TEST(test_store_read_only_bind)
{
	struct ns_result res;
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP part: a bind mount needs root\n");
		return;
	}
	ck_assert_msg(ns_run(NS_BIND_RO, &res) == 0, "%s", res.setup_err);
	check_ns_result(&res, 0, -EROFS, MUST(res.dir, "writable", "UPAGER_STORE"));
	check_ns_result(&res, 1, -EROFS, MUST(res.dir, "writable", "UPAGER_STORE"));
}
END_TEST

static void check_tmpfs_message(const char *msg, const char *what)
{
	ck_assert_msg(strstr(msg, "O_DIRECT") || strstr(msg, "tmpfs"),
		      "%s: the message names neither O_DIRECT nor tmpfs: %s", what, msg);
}

/* tmpfs is RAM: swapping to it saves nothing.  Linux >= 6.6 accepts O_DIRECT
 * on tmpfs, so the library has to check the filesystem itself. */
START_TEST(test_store_on_tmpfs)
{
	struct statfs sf;
	ck_assert_int_eq(statfs("/dev/shm", &sf), 0);
	ck_assert_msg(sf.f_type == TMPFS_MAGIC, "/dev/shm is not tmpfs here");
	struct upager_config cfg;
	base_config(&cfg);
	cfg.store_path = "/dev/shm";
	check_tmpfs_message(expect_open_fail(&cfg, -EINVAL, MUST("/dev/shm")), "/dev/shm");
}
END_TEST

START_TEST(test_store_file_on_tmpfs)
{
	struct ns_result res;
	ck_assert_msg(ns_run(NS_TMPFS, &res) == 0, "%s", res.setup_err);
	check_ns_result(&res, 0, -EINVAL, NULL);
	check_tmpfs_message(res.msg[0], "a store directory on tmpfs");
	check_ns_result(&res, 1, -EINVAL, NULL);
	check_tmpfs_message(res.msg[1], "a store file on tmpfs");
}
END_TEST

START_TEST(test_unknown_policy)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.policy = "lru2";
	expect_open_fail(&cfg, -EINVAL, MUST("lru2", "policy", "s3fifo", "clock", "fifo"));
	expect_validate_fail(&cfg, -EINVAL);
	cfg.policy = NULL;
	expect_open_fail(&cfg, -EINVAL, MUST("policy", "s3fifo"));
}
END_TEST

START_TEST(test_handler_threads_zero)
{
	struct upager_config cfg;
	base_config(&cfg);
	cfg.handler_threads = 0;
	expect_open_fail(&cfg, -EINVAL, MUST("handler_threads", "UPAGER_HANDLERS"));
	expect_validate_fail(&cfg, -EINVAL);
	cfg.handler_threads = 17;
	expect_open_fail(&cfg, -EINVAL, MUST("handler_threads", "16"));
}
END_TEST

START_TEST(test_validate_good_config)
{
	struct upager_config cfg;
	base_config(&cfg);
	char err[256] = "x";
	ck_assert_int_eq(upager_config_validate(&cfg, err, sizeof err), 0);
}
END_TEST

START_TEST(test_config_not_initialised)
{
	struct upager_config cfg;
	memset(&cfg, 0, sizeof cfg);
	expect_open_fail(&cfg, -EINVAL, MUST("upager_config_init"));
	expect_open_fail(NULL, -EINVAL, MUST("upager_config_init"));
}
END_TEST

START_TEST(test_open_null_out_and_err)
{
	struct upager_config cfg;
	base_config(&cfg);
	char err[256] = "";
	ck_assert_int_eq(upager_open(&cfg, NULL, err, sizeof err), -EINVAL);
	ck_assert_msg(err[0], "no message for out == NULL");

	/* No buffer, or a zero-length one: the error code alone. */
	upager_t *up = SENTINEL;
	cfg.ram_budget = 0;
	ck_assert_int_eq(upager_open(&cfg, &up, NULL, 0), -EINVAL);
	ck_assert_int_eq(upager_open(&cfg, &up, NULL, 100), -EINVAL);
	char one = 'x';
	ck_assert_int_eq(upager_open(&cfg, &up, &one, 0), -EINVAL);
	ck_assert_msg(one == 'x', "a zero-length buffer was written");
	ck_assert_ptr_eq(up, SENTINEL);

	/* A short buffer: truncated and terminated. */
	char small[16];
	memset(small, 'x', sizeof small);
	ck_assert_int_eq(upager_open(&cfg, &up, small, sizeof small), -EINVAL);
	ck_assert_msg(memchr(small, 0, sizeof small), "a short buffer is not NUL-terminated");
	ck_assert_uint_gt(strlen(small), 0);
}
END_TEST

/* ---- upager_config_from_env ---- */

START_TEST(test_env_bad_ram)
{
	struct upager_config cfg, before;
	base_config(&cfg);
	setenv("UPAGER_POLICY", "clock", 1); /* valid, but all or nothing */
	setenv("UPAGER_RAM", "12Q", 1);
	memcpy(&before, &cfg, sizeof cfg);
	char err[512] = "";
	ck_assert_int_eq(upager_config_from_env(&cfg, err, sizeof err), -EINVAL);
	ck_assert_msg(strstr(err, "UPAGER_RAM"), "the message does not name UPAGER_RAM: %s", err);
	ck_assert_msg(strstr(err, "12Q"), "the message does not echo the value: %s", err);
	ck_assert_msg(!memcmp(&cfg, &before, sizeof cfg), "a failed upager_config_from_env changed the config");
	unsetenv("UPAGER_RAM");
	unsetenv("UPAGER_POLICY");
}
END_TEST

/* ---- the API on a running runtime ---- */

static upager_t *up;
static char *region;
#define REGION_LEN (1 * MIB)

static void api_setup(void)
{
	up = upg_t_open(4 * MIB, 0, NULL, 1);
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, REGION_LEN, NULL, &a), 0);
	region = a;
	for (uint64_t i = 0; i < REGION_LEN / 4096; i++)
		upg_t_fill(region + i * 4096, 4096, i, 1);
}

static void api_teardown(void)
{
	if (up) {
		/* Whatever was refused, the region is intact and usable. */
		for (uint64_t i = 0; i < REGION_LEN / 4096; i++)
			ck_assert_msg(!upg_t_check(region + i * 4096, 4096, i, 1), "page %llu changed",
				      (unsigned long long)i);
		ck_assert_int_eq(upager_unmap(up, region), 0);
		ck_assert_int_eq(upager_close(up), 0);
	}
	up = NULL;
}

START_TEST(test_map_rejects)
{
	void *sentinel = (void *)(uintptr_t)0x1234, *a = sentinel;
	ck_assert_int_eq(upager_map(up, 0, NULL, &a), -EINVAL);
	ck_assert_ptr_eq(a, sentinel);

	struct upager_map_opts o = { .size = sizeof o, .page_size = 3000 };
	ck_assert_int_eq(upager_map(up, MIB, &o, &a), -EINVAL);
	ck_assert_ptr_eq(a, sentinel);
	o.page_size = 2048;
	ck_assert_int_eq(upager_map(up, MIB, &o, &a), -EINVAL);
	o.page_size = 4096 * 3;
	ck_assert_int_eq(upager_map(up, MIB, &o, &a), -EINVAL);
	ck_assert_ptr_eq(a, sentinel);

	ck_assert_int_eq(upager_map(NULL, MIB, NULL, &a), -EINVAL);
	ck_assert_int_eq(upager_map(up, MIB, NULL, NULL), -EINVAL);
	ck_assert_ptr_eq(a, sentinel);

	/* A good map still works afterwards. */
	ck_assert_int_eq(upager_map(up, MIB, NULL, &a), 0);
	ck_assert_ptr_ne(a, sentinel);
	upg_t_fill(a, 4096, 42, 2);
	ck_assert_uint_eq(upg_t_check(a, 4096, 42, 2), 0);
	ck_assert_int_eq(upager_unmap(up, a), 0);
}
END_TEST

START_TEST(test_unmap_rejects)
{
	int local;
	ck_assert_int_eq(upager_unmap(up, &local), -EINVAL);
	ck_assert_int_eq(upager_unmap(up, NULL), -EINVAL);
	ck_assert_int_eq(upager_unmap(up, region + 4096), -EINVAL); /* inside, not the start */
	ck_assert_int_eq(upager_unmap(up, region + REGION_LEN), -EINVAL);
	ck_assert_int_eq(upager_unmap(NULL, region), -EINVAL);
	void *heap = malloc(64);
	ck_assert_int_eq(upager_unmap(up, heap), -EINVAL);
	free(heap);

	/* A second unmap of the same region. */
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, MIB, NULL, &a), 0);
	ck_assert_int_eq(upager_unmap(up, a), 0);
	ck_assert_int_eq(upager_unmap(up, a), -EINVAL);
	ck_assert_int_eq(upager_owns(up, a), 0);
	ck_assert_int_eq(upager_owns(up, region), 1);
}
END_TEST

START_TEST(test_advise_rejects)
{
	ck_assert_int_eq(upager_advise(up, region, 4096, 99), -EINVAL);
	ck_assert_int_eq(upager_advise(up, region, 4096, -1), -EINVAL);
	ck_assert_int_eq(upager_advise(up, region, 4096, UPAGER_ADV_DONTNEED + 1), -EINVAL);
	/* Out of the region, or running past its end. */
	ck_assert_int_eq(upager_advise(up, region, REGION_LEN + 4096, UPAGER_ADV_DONTNEED), -EINVAL);
	ck_assert_int_eq(upager_advise(up, region + REGION_LEN - 4096, 8192, UPAGER_ADV_WILLNEED), -EINVAL);
	ck_assert_int_eq(upager_advise(up, region, SIZE_MAX, UPAGER_ADV_DONTNEED), -EINVAL);
	ck_assert_int_eq(upager_advise(up, region + REGION_LEN, 4096, UPAGER_ADV_NORMAL), -EINVAL);
	int local;
	ck_assert_int_eq(upager_advise(up, &local, sizeof local, UPAGER_ADV_DONTNEED), -EINVAL);
	ck_assert_int_eq(upager_advise(NULL, region, 4096, UPAGER_ADV_NORMAL), -EINVAL);
	/* A good call still works. */
	ck_assert_int_eq(upager_advise(up, region, REGION_LEN, UPAGER_ADV_SEQUENTIAL), 0);
	ck_assert_int_eq(upager_advise(up, region, REGION_LEN, UPAGER_ADV_NORMAL), 0);
}
END_TEST

START_TEST(test_stats_rejects)
{
	struct upager_stats st;
	memset(&st, 0, sizeof st);
	st.size = 0;
	ck_assert_int_eq(upager_stats(up, &st), -EINVAL);
	ck_assert_int_eq(upager_stats(up, NULL), -EINVAL);
	st.size = sizeof st;
	ck_assert_int_eq(upager_stats(NULL, &st), -EINVAL);
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_eq(st.size, sizeof st);
	ck_assert_uint_eq(st.regions, 1);
}
END_TEST

START_TEST(test_close_null)
{
	ck_assert_int_eq(upager_close(NULL), 0);
	ck_assert_int_eq(upager_owns(NULL, region), 0);
}
END_TEST

static Suite *badconfig_suite(void)
{
	Suite *s = suite_create("badconfig");
	TCase *tc = tcase_create("open");
	tcase_add_test(tc, test_budget_zero);
	tcase_add_test(tc, test_page_size_3000);
	tcase_add_test(tc, test_store_missing_directory);
	tcase_add_test(tc, test_store_under_proc);
	tcase_add_test(tc, test_store_read_only_mount);
	tcase_add_test(tc, test_store_read_only_bind);
	tcase_add_test(tc, test_budget_under_one_page);
	tcase_add_test(tc, test_page_size_not_power_of_two);
	tcase_add_test(tc, test_store_not_a_file);
	tcase_add_test(tc, test_store_under_a_file);
	tcase_add_test(tc, test_store_regular_file_is_used);
	tcase_add_test(tc, test_store_dir_not_writable);
	tcase_add_test(tc, test_default_store_tmpdir_on_tmpfs);
	tcase_add_test(tc, test_store_on_tmpfs);
	tcase_add_test(tc, test_store_file_on_tmpfs);
	tcase_add_test(tc, test_unknown_policy);
	tcase_add_test(tc, test_handler_threads_zero);
	tcase_add_test(tc, test_config_not_initialised);
	tcase_add_test(tc, test_validate_good_config);
	tcase_add_test(tc, test_open_null_out_and_err);
	tcase_add_test(tc, test_env_bad_ram);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_add_checked_fixture(tc, api_setup, api_teardown);
	tcase_add_test(tc, test_map_rejects);
	tcase_add_test(tc, test_unmap_rejects);
	tcase_add_test(tc, test_advise_rejects);
	tcase_add_test(tc, test_stats_rejects);
	tcase_add_test(tc, test_close_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(badconfig_suite());
	fflush(stdout);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
