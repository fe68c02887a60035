/* SPDX-License-Identifier: MIT */
/*
 * Fault-injection sweeps (white-box: linked with a build of the runtime
 * that honours UPAGER_INJECT, see src/inject.h).
 *
 * A small paging workload at 8x oversubscription runs in a forked child for
 * N = 1, 2, 3, ... until it no longer reaches the Nth call of the operation
 * being failed (every N to 8, then one in 3; every N with UPG_TEST_LONG=1,
 * as -Dsoak=true sets), for each kind of failure (EIO, ENOSPC, a short
 * transfer) and each mode (once, or from then on).  Each run asserts:
 *   - read failures: transient ones are retried and every page verifies;
 *     persistent ones raise SIGBUS on the page being read, as many SIGBUS
 *     as the runtime reports poisoned pages, never wrong data;
 *   - write and extension failures: nothing is lost (every page verifies),
 *     the failures are counted, and when they persist the budget overshoot
 *     is counted;
 *   - after every run every page that was not poisoned verifies, and
 *     nothing hangs (an alarm kills a stuck child, which fails the test).
 * A last case fails a UFFDIO_COPY: the runtime cannot recover from that
 * and must stop the process with a message instead of hanging it.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "inject.h"
#include "upager.h"

#define PS 4096u
#define BUDGET_PAGES 8u
#define PAGES (8u * BUDGET_PAGES)
#define RUN_SECONDS 30

struct outcome {
	unsigned long long reached;   /* calls of the op made (the sweep stops when < N) */
	unsigned long long sigbus;    /* accesses that raised SIGBUS */
	unsigned long long poisoned_sigbus_pages;  /* distinct pages that did */
	unsigned long long wrong;     /* pages with wrong data: must stay 0 */
	struct upager_stats st;
};

struct plan {
	enum upg_inj_op op;
	const char *spec;
};

struct access {
	char *p;
	uint32_t i, want, gen;
	int ok;
};

static void do_access(void *arg)
{
	struct access *a = arg;
	a->ok = a->want ? upg_t_check(a->p, PS, a->i, a->want) == 0 : upg_t_is_zero(a->p, PS);
	if (a->ok && a->gen)
		upg_t_fill(a->p, PS, a->i, a->gen);
}

/* Touch page i: write generation gen (gen > 0) after checking gen - 1
 * (0: zeros), or with gen == 0 just check want.  Returns 1 on SIGBUS. */
static int access_page(char *base, uint32_t i, uint32_t want, uint32_t gen, unsigned char *bad,
		       struct outcome *o)
{
	struct access a = { base + (size_t)i * PS, i, want, gen, 0 };
	if (upg_t_sigbus(do_access, &a)) {
		o->sigbus++;
		if (!bad[i]) {
			bad[i] = 1;
			o->poisoned_sigbus_pages++;
		}
		return 1;
	}
	if (!a.ok)
		o->wrong++;
	return 0;
}

/* In a child: a runtime at BUDGET_PAGES with PAGES mapped (readahead_max
 * when not 0), logging nothing (injected failures would flood the log);
 * exits 2 or 3 when that fails. */
static char *child_open(uint32_t readahead_max, upager_t **up, void **mem)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET_PAGES * PS;
	if (readahead_max)
		cfg.readahead_max = readahead_max;
	cfg.log = NULL;
	char err[512];
	if (upager_open(&cfg, up, err, sizeof err)) {
		fprintf(stderr, "upager_open: %s\n", err);
		_exit(2);
	}
	if (upager_map(*up, (size_t)PAGES * PS, NULL, mem))
		_exit(3);
	return *mem;
}

static void child(void *arg, int wfd)
{
	const struct plan *pl = arg;
	/* A hang kills the child: the parent sees SIGALRM.  (The default
	 * action: a handler inherited from the test runner would kill the
	 * whole process group instead.) */
	signal(SIGALRM, SIG_DFL);
	alarm(RUN_SECONDS);
	setenv("UPAGER_INJECT", pl->spec, 1);

	upager_t *up;
	void *mem;
	char *base = child_open(4, &up, &mem);
	static unsigned char bad[PAGES];
	uint32_t gen[PAGES] = { 0 };
	struct outcome o = { 0 };
	uint64_t rng = 42;

	/* First touch (zero fill, evictions that write), then two passes of
	 * random read-modify-write (reads, clean drops, rewrites), then a
	 * sequential check (readahead). */
	for (uint32_t i = 0; i < PAGES; i++)
		if (!access_page(base, i, 0, 1, bad, &o))
			gen[i] = 1;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t k = 0; k < PAGES; k++) {
			uint32_t i = (uint32_t)(upg_t_rand(&rng) % PAGES);
			if (bad[i])
				continue;
			if (!access_page(base, i, gen[i], gen[i] + 1, bad, &o))
				gen[i]++;
		}
	for (uint32_t i = 0; i < PAGES; i++) {
		if (bad[i]) {
			/* Still poisoned: a second access raises SIGBUS again,
			 * it never returns data. */
			unsigned long long before = o.sigbus;
			access_page(base, i, gen[i], 0, bad, &o);
			if (o.sigbus == before)
				o.wrong++;
			continue;
		}
		access_page(base, i, gen[i], 0, bad, &o);
	}
	o.reached = upg_inject_calls(pl->op);
	o.st.size = sizeof o.st;
	upager_stats(up, &o.st);
	upager_unmap(up, mem);
	upager_close(up);
	upg_t_child_return(wfd, &o, sizeof o);
}

/* Reads fail with EIO or come back short (ENOSPC is no read error);
 * writes fail with any of the three; extensions with EIO or ENOSPC. */
static const char *const kinds[] = { "eio", "short", "enospc" };
static const char *const modes[] = { "once", "always" };

/* Every N up to this, then every SWEEP_STEP-th: the sweeps reach 150 to
 * 180 calls, a run each.  With UPG_TEST_LONG=1 (meson: -Dsoak=true),
 * every N. */
#define SWEEP_ALL 8
#define SWEEP_STEP 3
#define STR_OF_(x) #x
#define STR_OF(x) STR_OF_(x)

static bool long_sweep(void)
{
	const char *v = getenv("UPG_TEST_LONG");
	return v && !strcmp(v, "1");
}

/* How the Ns were chosen, for the sweep's line. */
static const char *sweep_note(void)
{
	return long_sweep() ? "" : " (all to " STR_OF(SWEEP_ALL) ", then one in " STR_OF(SWEEP_STEP) ")";
}

/* Run the workload with "op:N:kind:mode" for N = 1, 2, ... (see
 * SWEEP_ALL) until the workload no longer reaches the Nth call; check
 * each outcome.  The last N reached. */
static unsigned sweep(const char *opname, enum upg_inj_op op, const char *kind, const char *mode,
		      void (*check)(const struct outcome *o, unsigned n, int always, const char *what))
{
	unsigned n, last = 0;
	int always = !strcmp(mode, "always");
	unsigned step = long_sweep() ? 1 : SWEEP_STEP;
	for (n = 1;; n += n < SWEEP_ALL ? 1 : step) {
		char spec[64], what[96];
		snprintf(spec, sizeof spec, "%s:%u:%s:%s", opname, n, kind, mode);
		snprintf(what, sizeof what, "UPAGER_INJECT=%s", spec);
		struct plan pl = { op, spec };
		struct outcome o;
		upg_t_run_child(child, &pl, &o, sizeof o, what);
		ck_assert_msg(o.wrong == 0, "%s: %llu pages read back wrong", what, o.wrong);
		if (o.reached < n)
			break;
		check(&o, n, always, what);
		last = n;
	}
	ck_assert_msg(last >= 2, "%s:%s:%s: the workload made fewer than 2 calls", opname, kind, mode);
	return last;
}

static void check_read(const struct outcome *o, unsigned n, int always, const char *what)
{
	ck_assert_msg(o->st.read_errors >= 1, "%s: the failure was not counted", what);
	ck_assert_uint_eq(o->st.integrity_errors, 0);
	ck_assert_msg(o->poisoned_sigbus_pages == o->st.poisoned_pages,
		      "%s: %llu pages raised SIGBUS, the runtime poisoned %llu", what, o->poisoned_sigbus_pages,
		      (unsigned long long)o->st.poisoned_pages);
	if (!always) {
		/* Retried and served: nothing poisoned, no SIGBUS. */
		ck_assert_msg(o->sigbus == 0, "%s: a transient read failure raised SIGBUS", what);
		ck_assert_uint_eq(o->st.read_errors, 1);
	} else {
		ck_assert_msg(o->sigbus >= 1, "%s: a persistent read failure did not raise SIGBUS", what);
	}
	(void)n;
}

static void check_write(const struct outcome *o, unsigned n, int always, const char *what)
{
	ck_assert_msg(o->sigbus == 0, "%s: a write failure raised SIGBUS", what);
	ck_assert_msg(o->st.write_errors >= 1, "%s: the failure was not counted", what);
	if (!always)
		ck_assert_uint_eq(o->st.write_errors, 1);
	else if (n == 1)
		/* Nothing can ever be written: dirty pages stay, over the
		 * budget.  (Failing later, clean pages may make the room.) */
		ck_assert_msg(o->st.overshoot_peak > 0, "%s: no overshoot counted", what);
}

static void check_extend(const struct outcome *o, unsigned n, int always, const char *what)
{
	ck_assert_msg(o->sigbus == 0, "%s: an extension failure raised SIGBUS", what);
	ck_assert_uint_eq(o->st.poisoned_pages, 0);
	if (always && n == 1)
		ck_assert_msg(o->st.overshoot_peak > 0 && o->st.store_full > 0,
			      "%s: a store that cannot grow must show as overshoot (peak %llu, refusals %llu)", what,
			      (unsigned long long)o->st.overshoot_peak, (unsigned long long)o->st.store_full);
	(void)n;
}

START_TEST(test_read_sweep)
{
	const char *kind = kinds[_i / 2], *mode = modes[_i % 2];  /* eio, short */
	unsigned reached = sweep("read", UPG_INJ_READ, kind, mode, check_read);
	fprintf(stderr, "read:%s:%s: swept N = 1..%u%s\n", kind, mode, reached, sweep_note());
}
END_TEST

START_TEST(test_write_sweep)
{
	const char *kind = kinds[_i / 2], *mode = modes[_i % 2];
	unsigned reached = sweep("write", UPG_INJ_WRITE, kind, mode, check_write);
	fprintf(stderr, "write:%s:%s: swept N = 1..%u%s\n", kind, mode, reached, sweep_note());
}
END_TEST

/* The store grows in steps of 64M, so this workload extends it once; a
 * failed extension is retried, so N = 2 is reached too. */
START_TEST(test_extend_sweep)
{
	const char *kind = _i / 2 ? "enospc" : "eio", *mode = modes[_i % 2];
	struct plan pl = { UPG_INJ_EXTEND, NULL };
	char spec[64];
	unsigned n;
	for (n = 1;; n++) {
		snprintf(spec, sizeof spec, "extend:%u:%s:%s", n, kind, mode);
		pl.spec = spec;
		struct outcome o;
		upg_t_run_child(child, &pl, &o, sizeof o, spec);
		ck_assert_msg(o.wrong == 0, "%s: %llu pages read back wrong", spec, o.wrong);
		if (o.reached < n)
			break;
		check_extend(&o, n, !strcmp(mode, "always"), spec);
	}
	ck_assert_msg(n > 1, "%s: the store never grew", spec);
}
END_TEST

/* Close while every write fails: the evictor keeps moving pages out and,
 * their writes failing, copying them back, and each batch ends with a
 * madvise() of its scratch range that waits until a handler has read the
 * REMOVE event.  upager_close() must not let the handlers go before the
 * evictor: nothing hangs, and every close is preceded by a data check. */
struct closes {
	unsigned long long wrong, write_errors;
};

static void close_child(void *arg, int wfd)
{
	unsigned n = *(const unsigned *)arg;
	signal(SIGALRM, SIG_DFL);
	alarm(4 * RUN_SECONDS);
	setenv("UPAGER_INJECT", "write:1:eio:always", 1);
	struct closes o = { 0 };
	for (unsigned k = 0; k < n; k++) {
		upager_t *up;
		void *mem;
		char *base = child_open(0, &up, &mem);
		for (uint32_t i = 0; i < PAGES; i++)
			upg_t_fill(base + (size_t)i * PS, PS, i, k + 1);
		for (uint32_t i = 0; i < PAGES; i++)
			o.wrong += upg_t_check(base + (size_t)i * PS, PS, i, k + 1) != 0;
		struct upager_stats st = { .size = sizeof st };
		upager_stats(up, &st);
		o.write_errors += st.write_errors;
		upager_close(up);
	}
	upg_t_child_return(wfd, &o, sizeof o);
}

START_TEST(test_close_while_writes_fail)
{
	unsigned n = (unsigned)upg_t_scale(1000);
	struct closes o;
	upg_t_run_child(close_child, &n, &o, sizeof o, "closing while every write fails (SIGALRM: a hang)");
	ck_assert_uint_eq(o.wrong, 0);
	ck_assert_msg(o.write_errors >= n, "%llu write failures in %u runs: the failure path was not taken",
		      o.write_errors, n);
}
END_TEST

/* A UFFDIO_COPY that fails in a way the runtime cannot recover from: the
 * process stops with a message on stderr, not a hang. */
START_TEST(test_fatal_copy)
{
	int errp[2];
	ck_assert_int_eq(pipe(errp), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(errp[0]);
		dup2(errp[1], STDERR_FILENO);
		setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });  /* the abort is expected */
		signal(SIGALRM, SIG_DFL);
		alarm(RUN_SECONDS);
		setenv("UPAGER_INJECT", "copy:3", 1);
		upager_t *up = upg_t_open(BUDGET_PAGES * PS, 0, NULL, 1);
		void *mem;
		if (upager_map(up, (size_t)PAGES * PS, NULL, &mem))
			_exit(3);
		for (uint32_t i = 0; i < PAGES; i++)
			upg_t_fill((char *)mem + (size_t)i * PS, PS, i, 1);
		_exit(0);  /* must not get here */
	}
	close(errp[1]);
	char msg[4096] = "";
	size_t got = 0;
	ssize_t r;
	while (got < sizeof msg - 1 && (r = read(errp[0], msg + got, sizeof msg - 1 - got)) > 0)
		got += (size_t)r;
	close(errp[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x (SIGALRM would mean a hang): %s", st,
		      msg);
	ck_assert_msg(strstr(msg, "upager: fatal: UFFDIO_COPY"), "no clear message: %s", msg);
}
END_TEST

/* The store where the filesystem has no O_TMPFILE (injected): a 0600 file
 * with no links left, whose directory is gone too, and paging through it
 * keeps every page. */
struct tmpfile_result {
	unsigned mode, nlink, names, in_dir, wrong;
	unsigned long long calls, writebacks, reads;
	char err[600];
};

static void tmpfile_child(void *arg, int wfd)
{
	(void)arg;
	struct tmpfile_result res = { 0 };
	signal(SIGALRM, SIG_DFL);
	alarm(RUN_SECONDS);
	setenv("UPAGER_INJECT", "tmpfile:1", 1);
	char dir[] = "/var/tmp/upager-tmpfile-XXXXXX";
	if (!mkdtemp(dir)) {
		snprintf(res.err, sizeof res.err, "mkdtemp: %s", strerror(errno));
		goto out;
	}
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET_PAGES * PS;
	cfg.store_path = dir;
	upager_t *up;
	if (upager_open(&cfg, &up, res.err, sizeof res.err))
		goto out;
	res.calls = upg_inject_calls(UPG_INJ_TMPFILE);
	int in_dir = 0, fd = upg_t_store_fd(getpid(), dir, &in_dir);
	res.in_dir = (unsigned)in_dir;
	struct stat sb;
	if (fd >= 0 && fstat(fd, &sb) == 0) {
		res.mode = sb.st_mode & 07777;
		res.nlink = (unsigned)sb.st_nlink;
	}
	res.names = (unsigned)upg_t_count_dir(dir);
	void *mem;
	if (upager_map(up, (size_t)PAGES * PS, NULL, &mem)) {
		snprintf(res.err, sizeof res.err, "upager_map failed");
		goto out;
	}
	char *base = mem;
	for (uint32_t gen = 1; gen <= 2; gen++)
		for (uint32_t i = 0; i < PAGES; i++) {
			if (gen > 1 && upg_t_check(base + (size_t)i * PS, PS, i, gen - 1))
				res.wrong++;
			upg_t_fill(base + (size_t)i * PS, PS, i, gen);
		}
	for (uint32_t i = 0; i < PAGES; i++)
		if (upg_t_check(base + (size_t)i * PS, PS, i, 2))
			res.wrong++;
	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	res.writebacks = st.writebacks;
	res.reads = st.store_reads;
	upager_unmap(up, mem);
	upager_close(up);
	rmdir(dir);
out:
	upg_t_child_return(wfd, &res, sizeof res);
}

START_TEST(test_tmpfile_fallback)
{
	struct tmpfile_result res;
	upg_t_run_child(tmpfile_child, NULL, &res, sizeof res, "tmpfile:1");
	ck_assert_msg(!res.err[0], "%s", res.err);
	ck_assert_msg(res.calls == 1, "the O_TMPFILE open was not tried (calls %llu)", res.calls);
	ck_assert_msg(res.in_dir == 1, "%u store descriptors under the directory", res.in_dir);
	ck_assert_msg(res.mode == 0600, "the store's mode is %o", res.mode);
	ck_assert_msg(res.nlink == 0 && res.names == 0, "the store has %u links, %u names left in its directory",
		      res.nlink, res.names);
	ck_assert_uint_gt(res.writebacks, 0);
	ck_assert_uint_gt(res.reads, 0);
	ck_assert_msg(res.wrong == 0, "%u pages wrong through the fallback store", res.wrong);
}
END_TEST

/*
 * Write failures on the compressed pool's way out: a budget big enough for
 * the pool (2 MiB, the pool's share 1 MiB), 16 MiB of pages that compress,
 * and every store write failing (always), or one failing (once) at a few
 * points.  The pool fills, its spills to the store fail, and the pages
 * stay in the pool or in RAM: every page verifies, nothing is poisoned.
 */
#define POOL_PAGES 4096u

struct pool_outcome {
	unsigned long long wrong, reached;
	struct upager_stats st;
};

static void pool_child(void *arg, int wfd)
{
	const char *spec = arg;
	signal(SIGALRM, SIG_DFL);
	alarm(RUN_SECONDS * 2);
	setenv("UPAGER_INJECT", spec, 1);
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = 2u << 20;
	cfg.log = NULL;
	char err[512];
	upager_t *up;
	void *mem;
	if (upager_open(&cfg, &up, err, sizeof err)) {
		fprintf(stderr, "upager_open: %s\n", err);
		_exit(2);
	}
	if (upager_map(up, (size_t)POOL_PAGES * PS, NULL, &mem))
		_exit(3);
	char *base = mem;
	static uint32_t gen[POOL_PAGES];
	struct pool_outcome o = { 0 };
	uint64_t rng = 7;
	for (uint32_t i = 0; i < POOL_PAGES; i++) {
		gen[i] = 1;
		upg_t_fill(base + (size_t)i * PS, PS, i, 1);
	}
	for (uint32_t k = 0; k < 2 * POOL_PAGES; k++) {
		uint32_t i = (uint32_t)(upg_t_rand(&rng) % POOL_PAGES);
		o.wrong += upg_t_check(base + (size_t)i * PS, PS, i, gen[i]) != 0;
		if (k & 1)
			upg_t_fill(base + (size_t)i * PS, PS, i, ++gen[i]);
	}
	for (uint32_t i = 0; i < POOL_PAGES; i++)
		o.wrong += upg_t_check(base + (size_t)i * PS, PS, i, gen[i]) != 0;
	o.reached = upg_inject_calls(UPG_INJ_WRITE);
	o.st.size = sizeof o.st;
	upager_stats(up, &o.st);
	upager_unmap(up, mem);
	upager_close(up);
	upg_t_child_return(wfd, &o, sizeof o);
}

START_TEST(test_pool_write_failures)
{
	static const char *const specs[] = { "write:1:eio:always", "write:1:eio:once", "write:4:eio:once",
					     "write:9:short:once", "write:2:enospc:always" };
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct pool_outcome o;
		upg_t_run_child(pool_child, (void *)specs[i], &o, sizeof o, specs[i]);
		printf("pool, %s: %llu pages in the pool, %llu spilled, %llu write errors, %llu pool hits, "
		       "%llu store reads, overshoot peak %llu KiB\n", specs[i], (unsigned long long)o.st.pool_puts,
		       (unsigned long long)o.st.pool_writebacks, (unsigned long long)o.st.write_errors,
		       (unsigned long long)o.st.pool_hits, (unsigned long long)o.st.store_reads,
		       (unsigned long long)(o.st.overshoot_peak >> 10));
		ck_assert_msg(o.wrong == 0, "%s: %llu pages read back wrong", specs[i], o.wrong);
		ck_assert_msg(o.st.pool_puts > 0 && o.st.pool_hits > 0, "%s: the pool was not used", specs[i]);
		ck_assert_msg(o.reached > 0 && o.st.write_errors > 0, "%s: no store write failed", specs[i]);
		ck_assert_uint_eq(o.st.poisoned_pages, 0);
		if (strstr(specs[i], "always"))
			ck_assert_msg(o.st.pool_writebacks == 0, "%s: pages spilled though every write failed",
				      specs[i]);
		else
			ck_assert_msg(o.st.pool_writebacks > 0, "%s: the pool never spilled after the failure",
				      specs[i]);
	}
}
END_TEST

/* Bad rules are refused with a message that says what to write. */
START_TEST(test_bad_rules)
{
	static const char *const bad[] = { "read", "read:0", "read:x", "write:1:oops", "read:1:eio:sometimes",
					   "extend:1:short", "fsync:1", "disk:1", "read:1:eio:once:extra" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("UPAGER_INJECT", bad[i], 1);
		char err[512] = "";
		ck_assert_int_eq(upg_inject_setup(err, sizeof err), -EINVAL);
		ck_assert_msg(strstr(err, "UPAGER_INJECT"), "%s: %s", bad[i], err);
	}
	setenv("UPAGER_INJECT", "read:3:short:always,write:2", 1);
	char err[512] = "";
	ck_assert_int_eq(upg_inject_setup(err, sizeof err), 0);
	/* The rules act: reads 1 and 2 pass, 3 and later come back short. */
	ck_assert_int_eq(upg_inject(UPG_INJ_READ, 8192, 8192), 8192);
	ck_assert_int_eq(upg_inject(UPG_INJ_READ, 8192, 8192), 8192);
	ck_assert_int_eq(upg_inject(UPG_INJ_READ, 8192, 8192), 4096);
	ck_assert_int_eq(upg_inject(UPG_INJ_READ, 8192, 8192), 4096);
	ck_assert_int_eq(upg_inject(UPG_INJ_WRITE, 4096, 4096), 4096);
	ck_assert_int_eq(upg_inject(UPG_INJ_WRITE, 4096, 4096), -EIO);
	ck_assert_int_eq(upg_inject(UPG_INJ_WRITE, 4096, 4096), 4096);
	unsetenv("UPAGER_INJECT");
	ck_assert_int_eq(upg_inject_setup(err, sizeof err), 0);
}
END_TEST

/* A shared file mapping whose writes to the file fail: upager_sync() and
 * upager_unmap() return -EIO and keep the changes in RAM (the mapping
 * stays); once the file can be written, a sync puts every change there. */
START_TEST(test_mfile_write_error)
{
	char err[512];
	char path[] = "/tmp/upager-inject-mfile-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	char page[PS];
	for (uint32_t i = 0; i < PAGES; i++) {
		upg_t_fill(page, PS, i, 1);
		ck_assert_int_eq(pwrite(fd, page, PS, (off_t)i * PS), PS);
	}
	setenv("UPAGER_INJECT", "write:1:eio:always", 1);
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET_PAGES * PS;
	upager_t *up;
	ck_assert_int_eq(upager_open(&cfg, &up, err, sizeof err), 0);
	void *m;
	ck_assert_int_eq(upager_map_file(up, fd, 0, (size_t)PAGES * PS, UPAGER_MAP_SHARED, &m), 0);
	char *base = m;
	for (uint32_t i = 0; i < PAGES; i++)
		upg_t_fill(base + (size_t)i * PS, PS, i, 2);
	ck_assert_int_eq(upager_sync(up, base, (size_t)PAGES * PS, UPAGER_SYNC), -EIO);
	ck_assert_int_eq(upager_unmap(up, base), -EIO);
	uint32_t wrong = 0;
	for (uint32_t i = 0; i < PAGES; i++)
		wrong += upg_t_check(base + (size_t)i * PS, PS, i, 2) != 0;
	ck_assert_uint_eq(wrong, 0);  /* still mapped, changes and all */
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_gt(st.write_errors, 0);
	unsetenv("UPAGER_INJECT");
	ck_assert_int_eq(upg_inject_setup(err, sizeof err), 0);
	ck_assert_int_eq(upager_sync(up, base, (size_t)PAGES * PS, UPAGER_SYNC), 0);
	for (uint32_t i = 0; i < PAGES; i++) {
		ck_assert_int_eq(pread(fd, page, PS, (off_t)i * PS), PS);
		wrong += upg_t_check(page, PS, i, 2) != 0;
	}
	ck_assert_uint_eq(wrong, 0);
	ck_assert_int_eq(upager_unmap(up, base), 0);
	ck_assert_int_eq(upager_close(up), 0);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inject");
	TCase *tc = tcase_create("rules");
	tcase_add_test(tc, test_bad_rules);
	tcase_add_test(tc, test_fatal_copy);
	tcase_add_test(tc, test_tmpfile_fallback);
	tcase_add_test(tc, test_mfile_write_error);
	suite_add_tcase(s, tc);
	tc = tcase_create("close");
	tcase_set_timeout(tc, 0);  /* the child's alarm catches a hang */
	tcase_add_test(tc, test_close_while_writes_fail);
	suite_add_tcase(s, tc);
	tc = tcase_create("sweeps");
	tcase_set_timeout(tc, 0);
	tcase_add_loop_test(tc, test_read_sweep, 0, 4);
	tcase_add_loop_test(tc, test_write_sweep, 0, 6);
	tcase_add_loop_test(tc, test_extend_sweep, 0, 4);
	suite_add_tcase(s, tc);
	tc = tcase_create("pool");
	tcase_set_timeout(tc, 0);
	tcase_add_test(tc, test_pool_write_failures);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
