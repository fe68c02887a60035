/* SPDX-License-Identifier: MIT */
/*
 * Signals and paging (issue #5).  Threads read-modify-write their own pages
 * of a region 8x the budget, some of them through read(2) into the region
 * (kernel-mode faults), while signals land on them:
 *
 *   - a storm of process-directed SIGALRM (setitimer) and thread-directed
 *     SIGUSR1, with and without SA_RESTART; the handlers themselves fault
 *     on a read-only region, often while their thread is blocked in a fault;
 *   - SIGSTOP/SIGCONT of a whole child process that pages;
 *   - signals aimed at upager's own threads (from /proc/self/task), and
 *     process-directed signals that every application thread blocks: upager's
 *     threads must block signals, or the application's handler would run on
 *     them (and a handler touching paged memory there waits on itself).
 *
 * Every page is checked on every access and once more at the end.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define PSIZE 4096u
#define BUDGET (2ULL << 20)
#define RW_BYTES (BUDGET * 8)
#define RO_BYTES (BUDGET * 4)
#define RW_PAGES (RW_BYTES / PSIZE)
#define RO_PAGES (RO_BYTES / PSIZE)
#define RO_GEN 7u
#define WORKERS 8
#define MAX_TIDS 128

static upager_t *up;
static char *rw, *ro;
static uint32_t gen[RW_PAGES];  /* per rw page; worker id owns pages with pg % WORKERS == id */
static int memfd = -1;           /* one page per worker: the source of its read(2)s */
static int up_tids[MAX_TIDS];    /* upager's own threads */
static int n_up_tids;

/* Threads of the application; a handler that finds itself elsewhere runs
 * on an upager thread. */
static atomic_int app_tids[MAX_TIDS];
static atomic_int n_app;
static atomic_ulong handled, in_access_hits, handler_bad, foreign, io_errors, hseed;
static __thread volatile sig_atomic_t in_access;
static atomic_int finished;  /* workers done: the sender may still signal them until joined */

static int my_tid(void)
{
	return (int)syscall(SYS_gettid);
}

static void register_app(void)
{
	int i = atomic_fetch_add(&n_app, 1);
	ck_assert_int_lt(i, MAX_TIDS);
	atomic_store(&app_tids[i], my_tid());
}

static int is_app(int tid)
{
	int n = atomic_load(&n_app);
	for (int i = 0; i < n; i++)
		if (atomic_load(&app_tids[i]) == tid)
			return 1;
	return 0;
}

/* Async-signal-safe: reads two pages of the read-only region, which may
 * well be in the store, and checks them. */
static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	if (!is_app(my_tid())) {
		/* Do not fault here: on a handler thread that would hang. */
		atomic_fetch_add(&foreign, 1);
		errno = saved;
		return;
	}
	atomic_fetch_add(&handled, 1);
	if (in_access)
		atomic_fetch_add(&in_access_hits, 1);
	uint64_t s = atomic_fetch_add(&hseed, 1) * 7919;
	for (int k = 0; k < 2; k++) {
		uint64_t pg = upg_t_rand(&s) % RO_PAGES;
		if (upg_t_check(ro + pg * PSIZE, PSIZE, pg, RO_GEN))
			atomic_fetch_add(&handler_bad, 1);
	}
	errno = saved;
}

static void install(int sig, int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
}

static void reset_counters(void)
{
	atomic_store(&n_app, 0);
	atomic_store(&handled, 0);
	atomic_store(&in_access_hits, 0);
	atomic_store(&handler_bad, 0);
	atomic_store(&foreign, 0);
	atomic_store(&io_errors, 0);
}

static void setup(uint32_t handlers)
{
	reset_counters();
	int before[MAX_TIDS], after[MAX_TIDS];
	int nb = upg_t_tasks(before, MAX_TIDS);
	up = upg_t_open(BUDGET, PSIZE, NULL, handlers);
	int na = upg_t_tasks(after, MAX_TIDS);
	n_up_tids = upg_t_new_threads(before, nb, after, na, up_tids, MAX_TIDS);
	ck_assert_int_ge(n_up_tids, (int)handlers + 1);  /* handlers and the evictor */
	void *a, *b;
	ck_assert_int_eq(upager_map(up, RW_BYTES, NULL, &a), 0);
	ck_assert_int_eq(upager_map(up, RO_BYTES, NULL, &b), 0);
	rw = a;
	ro = b;
	for (uint64_t pg = 0; pg < RO_PAGES; pg++)
		upg_t_fill(ro + pg * PSIZE, PSIZE, pg, RO_GEN);
	for (uint64_t pg = 0; pg < RW_PAGES; pg++) {
		upg_t_fill(rw + pg * PSIZE, PSIZE, pg, 1);
		gen[pg] = 1;
	}
	memfd = memfd_create("upager-test-signals", MFD_CLOEXEC);
	ck_assert_int_ge(memfd, 0);
	ck_assert_int_eq(ftruncate(memfd, WORKERS * PSIZE), 0);
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_gt(st.evictions, RW_PAGES / 2);
}

static uint64_t count_bad(void)
{
	uint64_t bad = 0;
	for (uint64_t pg = 0; pg < RW_PAGES; pg++)
		bad += upg_t_check(rw + pg * PSIZE, PSIZE, pg, gen[pg]) != 0;
	for (uint64_t pg = 0; pg < RO_PAGES; pg++)
		bad += upg_t_check(ro + pg * PSIZE, PSIZE, pg, RO_GEN) != 0;
	return bad;
}

static void teardown(void)
{
	ck_assert_uint_eq(count_bad(), 0);
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_gt(st.store_reads, 0);
	ck_assert_int_eq(upager_close(up), 0);
	close(memfd);
	up = NULL;
}

struct worker {
	pthread_t t;
	unsigned id;
	uint64_t accesses;
	uint64_t bad;
	int block;          /* block sig_blocked in this thread */
	int sig_blocked;
	atomic_int *ready;
};

/* Whole-buffer pread, through EINTR and short reads. */
static int pread_all(int fd, char *dst, size_t len, off_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, dst + got, len - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	return 0;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	if (w->block) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, w->sig_blocked);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
	}
	register_app();
	atomic_fetch_add(w->ready, 1);
	uint64_t seed = 4242 + w->id;
	char buf[PSIZE];
	for (uint64_t i = 0; i < w->accesses; i++) {
		uint64_t pg = upg_t_rand(&seed) % (RW_PAGES / WORKERS) * WORKERS + w->id;
		char *p = rw + pg * PSIZE;
		in_access = 1;
		size_t off = upg_t_check(p, PSIZE, pg, gen[pg]);
		in_access = 0;
		if (off) {
			if (w->bad++ < 3)
				fprintf(stderr, "worker %u: page %llu gen %u wrong at byte %zu\n", w->id,
					(unsigned long long)pg, gen[pg], off - 1);
			continue;
		}
		uint32_t g = gen[pg] + 1;
		if (i % 4 == 0) {
			/* The kernel writes the page: a kernel-mode fault. */
			upg_t_fill(buf, PSIZE, pg, g);
			if (pwrite(memfd, buf, PSIZE, (off_t)w->id * PSIZE) != PSIZE) {
				atomic_fetch_add(&io_errors, 1);
				continue;
			}
			in_access = 1;
			int rc = pread_all(memfd, p, PSIZE, (off_t)w->id * PSIZE);
			in_access = 0;
			if (rc) {
				if (atomic_fetch_add(&io_errors, 1) < 3)
					fprintf(stderr, "worker %u: read(2) into page %llu: %s\n", w->id,
						(unsigned long long)pg, strerror(-rc));
				/* The page may be partly written: check it as the
				 * new generation or the old, never neither. */
				if (upg_t_check(p, PSIZE, pg, g))
					continue;
			}
		} else {
			in_access = 1;
			upg_t_fill(p, PSIZE, pg, g);
			in_access = 0;
		}
		gen[pg] = g;
	}
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static atomic_int stop_sender;

/* pthread_kill round-robin over the workers until told to stop. */
struct sender {
	pthread_t t;
	struct worker *w;
	int nw;
	int sig;
	uint64_t sent;
	atomic_int ready;  /* registered: a signal to it now counts as an application's */
};

static void *send_storm(void *arg)
{
	struct sender *s = arg;
	register_app();
	atomic_store(&s->ready, 1);
	struct timespec ts = { 0, 100 * 1000 };
	for (unsigned k = 0; !atomic_load(&stop_sender); k++) {
		if (!pthread_kill(s->w[k % s->nw].t, s->sig))
			s->sent++;
		nanosleep(&ts, NULL);  /* may end early (EINTR): fine */
	}
	return NULL;
}

static void start_workers(struct worker *w, uint64_t accesses, int block, int sig)
{
	static atomic_int ready;
	atomic_store(&ready, 0);
	atomic_store(&finished, 0);
	for (unsigned i = 0; i < WORKERS; i++) {
		w[i] = (struct worker){ .id = i, .accesses = accesses, .block = block, .sig_blocked = sig,
					.ready = &ready };
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, work, &w[i]), 0);
	}
	while (atomic_load(&ready) < WORKERS)
		sched_yield();
}

static uint64_t join_workers(struct worker *w)
{
	uint64_t bad = 0;
	for (unsigned i = 0; i < WORKERS; i++) {
		pthread_join(w[i].t, NULL);
		bad += w[i].bad;
	}
	return bad;
}

/* _i = 0: handlers without SA_RESTART; 1: with it. */
START_TEST(storm_while_faulting)
{
	int flags = _i ? SA_RESTART : 0;
	printf("signals: SIGALRM + SIGUSR1 storm, %s\n", _i ? "SA_RESTART" : "no SA_RESTART");
	setup(2);
	register_app();
	install(SIGALRM, flags);
	install(SIGUSR1, flags);

	struct worker w[WORKERS];
	start_workers(w, upg_t_scale(1500), 0, 0);
	atomic_store(&stop_sender, 0);
	struct sender s = { .w = w, .nw = WORKERS, .sig = SIGUSR1 };
	ck_assert_int_eq(pthread_create(&s.t, NULL, send_storm, &s), 0);
	while (!atomic_load(&s.ready))
		sched_yield();
	struct itimerval it = { .it_interval = { 0, 300 }, .it_value = { 0, 300 } };
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);

	while (atomic_load(&finished) < WORKERS)
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	atomic_store(&stop_sender, 1);
	pthread_join(s.t, NULL);
	uint64_t bad = join_workers(w);

	printf("  %llu signals handled (%llu during an access), %llu pthread_kill sent\n",
	       (unsigned long long)atomic_load(&handled), (unsigned long long)atomic_load(&in_access_hits),
	       (unsigned long long)s.sent);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(atomic_load(&io_errors), 0);
	ck_assert_uint_eq(atomic_load(&handler_bad), 0);
	ck_assert_msg(atomic_load(&foreign) == 0, "%lu signal handlers ran on upager threads",
		      atomic_load(&foreign));
	/* The storm did hit threads in the middle of their accesses. */
	ck_assert_uint_gt(atomic_load(&in_access_hits), 0);
	teardown();
}
END_TEST

/* A child that pages with four threads is stopped and continued until it
 * finishes; it verifies its own data and exits 0. */
static void stopped_child(void)
{
	up = upg_t_open(BUDGET, PSIZE, NULL, 1);
	void *a;
	if (upager_map(up, RW_BYTES, NULL, &a))
		_exit(2);
	rw = a;
	for (uint64_t pg = 0; pg < RW_PAGES; pg++) {
		upg_t_fill(rw + pg * PSIZE, PSIZE, pg, 1);
		gen[pg] = 1;
	}
	void *b;
	if (upager_map(up, RO_BYTES, NULL, &b))
		_exit(2);
	ro = b;
	memfd = memfd_create("upager-test-signals", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, WORKERS * PSIZE))
		_exit(2);
	struct worker w[WORKERS];
	static atomic_int ready;
	for (unsigned i = 0; i < WORKERS; i++) {
		w[i] = (struct worker){ .id = i, .accesses = upg_t_scale(800), .ready = &ready };
		pthread_create(&w[i].t, NULL, work, &w[i]);
	}
	uint64_t bad = 0;
	for (unsigned i = 0; i < WORKERS; i++) {
		pthread_join(w[i].t, NULL);
		bad += w[i].bad;
	}
	for (uint64_t pg = 0; pg < RW_PAGES; pg++)
		bad += upg_t_check(rw + pg * PSIZE, PSIZE, pg, gen[pg]) != 0;
	if (atomic_load(&io_errors))
		_exit(4);
	if (upager_close(up))
		_exit(5);
	_exit(bad ? 3 : 0);
}

START_TEST(stop_and_continue)
{
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		stopped_child();
	uint64_t seed = 99, stops = 0;
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		ck_assert_int_ge(r, 0);
		if (r == pid)
			break;
		ck_assert_int_eq(kill(pid, SIGSTOP), 0);
		stops++;
		struct timespec a = { 0, (long)(upg_t_rand(&seed) % 3000 + 100) * 1000 };
		nanosleep(&a, NULL);
		ck_assert_int_eq(kill(pid, SIGCONT), 0);
		struct timespec b = { 0, (long)(upg_t_rand(&seed) % 3000 + 100) * 1000 };
		nanosleep(&b, NULL);
	}
	printf("signals: child stopped and continued %llu times\n", (unsigned long long)stops);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ck_assert_uint_gt(stops, 0);
}
END_TEST

/* tgkill each of upager's threads with several signals over and over
 * while the workers fault (and get signals too).  upager's threads block
 * signals: the application's handler never runs on them, and their
 * system calls see no EINTR. */
START_TEST(signals_at_upager_threads)
{
	setup(2);
	register_app();
	install(SIGUSR1, 0);
	install(SIGUSR2, 0);
	install(SIGALRM, 0);
	install(SIGURG, 0);
	struct worker w[WORKERS];
	start_workers(w, upg_t_scale(1200), 0, 0);
	atomic_store(&stop_sender, 0);
	struct sender s = { .w = w, .nw = WORKERS, .sig = SIGUSR1 };
	ck_assert_int_eq(pthread_create(&s.t, NULL, send_storm, &s), 0);
	while (!atomic_load(&s.ready))
		sched_yield();

	static const int sigs[] = { SIGUSR1, SIGUSR2, SIGALRM, SIGURG };
	uint64_t sent = 0, failed = 0;
	for (unsigned k = 0; atomic_load(&finished) < WORKERS; k++) {
		for (int i = 0; i < n_up_tids; i++) {
			if (syscall(SYS_tgkill, getpid(), up_tids[i], sigs[k % 4]) == 0)
				sent++;
			else
				failed++;
		}
		struct timespec ts = { 0, 200 * 1000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop_sender, 1);
	pthread_join(s.t, NULL);
	uint64_t bad = join_workers(w);
	printf("signals: %llu sent to %d upager threads, %llu handled by the application\n",
	       (unsigned long long)sent, n_up_tids, (unsigned long long)atomic_load(&handled));
	ck_assert_uint_gt(sent, 0);
	ck_assert_uint_eq(failed, 0);  /* the threads were alive all along */
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(atomic_load(&io_errors), 0);
	ck_assert_uint_eq(atomic_load(&handler_bad), 0);
	ck_assert_msg(atomic_load(&foreign) == 0, "%lu signal handlers ran on upager threads",
		      atomic_load(&foreign));
	teardown();
}
END_TEST

/* Every application thread blocks SIGUSR2 and the process gets SIGUSR2
 * again and again while it pages: only upager's threads could take it, and
 * they must not.  It stays pending until the main thread unblocks it. */
START_TEST(process_signal_all_app_threads_block)
{
	setup(2);
	register_app();
	install(SIGUSR2, 0);
	sigset_t s2;
	sigemptyset(&s2);
	sigaddset(&s2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s2, NULL);
	struct worker w[WORKERS];
	start_workers(w, upg_t_scale(800), 1, SIGUSR2);
	uint64_t sent = 0;
	for (int k = 0; k < 2000; k++) {
		ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
		sent++;
		struct timespec ts = { 0, 300 * 1000 };
		nanosleep(&ts, NULL);
	}
	uint64_t bad = join_workers(w);
	sigset_t pend;
	sigpending(&pend);
	int pending = sigismember(&pend, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &s2, NULL);  /* runs the handler here, once */
	printf("signals: %llu process-directed SIGUSR2, pending at the end: %d, handled %llu\n",
	       (unsigned long long)sent, pending, (unsigned long long)atomic_load(&handled));
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(atomic_load(&io_errors), 0);
	ck_assert_msg(atomic_load(&foreign) == 0, "%lu signal handlers ran on upager threads",
		      atomic_load(&foreign));
	ck_assert_int_eq(pending, 1);
	ck_assert_uint_eq(atomic_load(&handled), 1);
	teardown();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("signals");
	TCase *tc = tcase_create("signals");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, storm_while_faulting, 0, 2);
	tcase_add_test(tc, stop_and_continue);
	tcase_add_test(tc, signals_at_upager_threads);
	tcase_add_test(tc, process_signal_all_app_threads_block);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
