/* SPDX-License-Identifier: MIT */
/*
 * The kernel's own swap underneath upager.  The pages upager holds in RAM
 * are ordinary anonymous memory: with a swap area on, the kernel may page
 * them out (a memory cgroup's limit, proactive reclaim).  Such a page is
 * still there, but mincore() calls it missing once it has left the swap
 * cache, and upager used to take it for zapped: the evictor dropped it, so
 * that it read back as zeros, or rebuilt it with zeros in the swapped-out
 * parts.
 *
 * Here a memory cgroup holds the test process well below upager's budget,
 * with a swap file on, so the kernel keeps swapping out pages of the region
 * while upager evicts and refaults them.  Every page must come back with
 * the bytes last written.
 *
 * Needs root, a memory cgroup (v1 or v2) and a filesystem that takes a swap
 * file; skipped (exit 77) without them.  The swap file is on only while
 * this test runs.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <unistd.h>

#include "helpers.h"
#include "upager.h"

#define MIB (1ULL << 20)
#define PS 4096u
#define BUDGET (96 * MIB)       /* what upager believes it may hold */
#define CGROUP_LIMIT "48M"       /* what the kernel lets the process hold */
#define REGION (2 * BUDGET)
#define NPAGES (REGION / PS)
#define SWAP_SIZE (256 * MIB)

static char swap_path[256], cg_dir[256];

static bool write_file(const char *dir, const char *name, const char *val)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

/* The process's swapped-out memory, KiB (VmSwap). */
static long vm_swap_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	ck_assert_ptr_nonnull(f);
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSwap: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Keep in *peak the most VmSwap seen, looking once every 4096 pages. */
static void note_swap(uint64_t i, long *peak)
{
	if (i % 4096 == 0) {
		long k = vm_swap_kib();
		*peak = k > *peak ? k : *peak;
	}
}

static void check_page(const char *base, uint64_t i, uint32_t gen, const char *when)
{
	size_t bad = upg_t_check(base + i * PS, PS, i, gen);
	ck_assert_msg(!bad, "%s: page %llu (gen %u) differs at byte %zu%s", when, (unsigned long long)i, gen,
		      bad - 1, upg_t_is_zero(base + i * PS, PS) ? ", and reads as zeros" : "");
}

START_TEST(test_pages_the_kernel_swapped_out)
{
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	ck_assert_msg(write_file(cg_dir, "cgroup.procs", pid), "cannot join the cgroup %s: %s", cg_dir,
		      strerror(errno));

	upager_t *up = upg_t_open(BUDGET, PS, NULL, 2);
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, REGION, NULL, &a), 0);
	char *base = a;
	long swapped = 0;
	for (uint64_t i = 0; i < NPAGES; i++) {
		upg_t_fill(base + i * PS, PS, i, 1);
		note_swap(i, &swapped);
	}
	/* Rewrite every other page, so that write-back and clean drops both
	 * meet swapped-out pages. */
	for (uint64_t i = 0; i < NPAGES; i++) {
		check_page(base, i, 1, "first pass");
		if (i % 2 == 0)
			upg_t_fill(base + i * PS, PS, i, 2);
		note_swap(i, &swapped);
	}
	for (uint64_t i = 0; i < NPAGES; i++)
		check_page(base, i, i % 2 ? 1 : 2, "second pass");

	struct upager_stats st;
	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	ck_assert_int_eq(upager_stats(up, &st), 0);
	printf("kernel swap: up to %ld KiB of the process swapped out by the kernel; upager: %llu evictions, "
	       "%llu store reads\n", swapped, (unsigned long long)st.evictions, (unsigned long long)st.store_reads);
	ck_assert_msg(swapped > 0, "the kernel swapped nothing out under a %s cgroup limit: the test did not "
		      "exercise its case", CGROUP_LIMIT);
	ck_assert_uint_gt(st.evictions, NPAGES / 2);
	ck_assert_int_eq(upager_unmap(up, base), 0);
	ck_assert_int_eq(upager_close(up), 0);
}
END_TEST

/* What a run killed before clean_up() left: its swap file, still switched
 * on (and filling the disk), and its cgroup.  Swapped off and removed when
 * the pid in the name is gone. */
static bool gone(int pid)
{
	return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH;
}

static void clean_stale(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[PATH_MAX + 128];
	while (f && fgets(line, sizeof line, f)) {
		char path[PATH_MAX];
		int pid;
		const char *name;
		if (sscanf(line, "%4095s", path) != 1 || !(name = strstr(path, "/upager-test-swap-")) ||
		    sscanf(name, "/upager-test-swap-%d", &pid) != 1 || !gone(pid))
			continue;
		if (swapoff(path) == 0 && unlink(path) == 0)
			fprintf(stderr, "removed %s, left switched on by a run that was killed\n", path);
	}
	if (f)
		fclose(f);
	const char *roots[] = { "/sys/fs/cgroup/memory", "/sys/fs/cgroup" };
	for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
		DIR *d = opendir(roots[i]);
		struct dirent *e;
		int pid;
		while (d && (e = readdir(d))) {
			if (sscanf(e->d_name, "upager-test-swap-%d", &pid) != 1 || !gone(pid))
				continue;
			char dir[PATH_MAX];
			snprintf(dir, sizeof dir, "%s/%s", roots[i], e->d_name);
			rmdir(dir);
		}
		if (d)
			closedir(d);
	}
}

/* A swap file on a disk filesystem, swapped on; "" and a reason if not. */
static const char *swap_on(void)
{
	const char *dirs[] = { "/var/tmp", "/tmp" };
	for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
		snprintf(swap_path, sizeof swap_path, "%s/upager-test-swap-%d", dirs[d], (int)getpid());
		int fd = open(swap_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			continue;
		int rc = posix_fallocate(fd, 0, SWAP_SIZE);
		close(fd);
		char cmd[512];
		snprintf(cmd, sizeof cmd, "mkswap %s >/dev/null 2>&1", swap_path);
		if (!rc && system(cmd) == 0 && swapon(swap_path, 0) == 0)
			return NULL;
		unlink(swap_path);
	}
	swap_path[0] = 0;
	return "no swap file could be made and switched on (needs mkswap and a filesystem that takes swap files)";
}

/* A memory cgroup capped at CGROUP_LIMIT, the swap unlimited. */
static const char *cgroup_make(void)
{
	char controllers[256] = "";
	FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "r");
	if (f) {
		if (!fgets(controllers, sizeof controllers, f))
			controllers[0] = 0;
		fclose(f);
	}
	if (access("/sys/fs/cgroup/memory", W_OK) == 0) {
		snprintf(cg_dir, sizeof cg_dir, "/sys/fs/cgroup/memory/upager-test-swap-%d", (int)getpid());
		if (mkdir(cg_dir, 0755) == 0 && write_file(cg_dir, "memory.limit_in_bytes", CGROUP_LIMIT))
			return NULL;
	} else if (strstr(controllers, "memory") && access("/sys/fs/cgroup/cgroup.subtree_control", W_OK) == 0) {
		write_file("/sys/fs/cgroup", "cgroup.subtree_control", "+memory");
		snprintf(cg_dir, sizeof cg_dir, "/sys/fs/cgroup/upager-test-swap-%d", (int)getpid());
		if (mkdir(cg_dir, 0755) == 0 && write_file(cg_dir, "memory.max", CGROUP_LIMIT) &&
		    write_file(cg_dir, "memory.swap.max", "max"))
			return NULL;
	} else {
		cg_dir[0] = 0;
		return "no writable memory cgroup";
	}
	rmdir(cg_dir);
	cg_dir[0] = 0;
	return "cannot set up a memory cgroup";
}

static void clean_up(void)
{
	if (cg_dir[0])
		for (int i = 0; i < 50 && rmdir(cg_dir) && errno == EBUSY; i++)
			usleep(100 * 1000);  /* the test's process is still leaving it */
	if (swap_path[0]) {
		if (swapoff(swap_path))
			fprintf(stderr, "swapoff %s: %s\n", swap_path, strerror(errno));
		unlink(swap_path);
	}
}

int main(void)
{
	const char *why = geteuid() ? "not root" : NULL;
	if (!why) {
		clean_stale();
		why = swap_on();
	}
	if (!why && (why = cgroup_make()))
		clean_up();
	if (why) {
		printf("SKIP kernel_swap: %s\n", why);
		return UPG_T_SKIP;
	}
	Suite *s = suite_create("kernel_swap");
	TCase *tc = tcase_create("swap");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_pages_the_kernel_swapped_out);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);  /* the cgroup holds only the test's own process */
	fflush(stdout);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	clean_up();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
