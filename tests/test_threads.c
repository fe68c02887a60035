/* SPDX-License-Identifier: MIT */
/*
 * Many threads (issue #5).  One runtime, two regions of 4x the budget each
 * (8x together):
 *   - "shared" is written once and then only read, by everyone: threads that
 *     follow the same random sequence fault on the same pages at once;
 *   - "owned" is read-modify-written, thread id owning pages pg % nthreads.
 * 64 threads start together behind a barrier and check every page they
 * touch.  Then threads die in the middle of faults (a signal whose handler
 * calls pthread_exit) and short-lived threads touch one cold page and exit;
 * the data still verifies, upager_close() succeeds and no thread is left.
 * The 64 threads run with the handlers polling for their reads
 * (UPAGER_POLL_US) and without (the default).
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define BUDGET (2ULL << 20)
#define REGION (BUDGET * 4)
#define NTHREADS 64
#define SHARED_GEN 5u
#define MAX_TIDS 256

static const uint32_t page_sizes[] = { 4096, 65536 };

static upager_t *up;
static char *shared, *owned;
static uint32_t psize;
static uint64_t npages;    /* per region */
static uint32_t *gen;      /* owned pages */

static void setup_poll(uint32_t ps, uint32_t poll_us)
{
	psize = ps;
	npages = REGION / psize;
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET;
	cfg.handler_threads = 2;
	cfg.poll_us = poll_us;
	up = upg_t_open_config(&cfg);
	struct upager_map_opts mo = { .size = sizeof mo, .page_size = psize };
	void *a, *b;
	ck_assert_int_eq(upager_map(up, REGION, &mo, &a), 0);
	ck_assert_int_eq(upager_map(up, REGION, &mo, &b), 0);
	shared = a;
	owned = b;
	gen = calloc(npages, sizeof *gen);
	for (uint64_t pg = 0; pg < npages; pg++) {
		upg_t_fill(shared + pg * psize, psize, pg, SHARED_GEN);
		upg_t_fill(owned + pg * psize, psize, pg, 1);
		gen[pg] = 1;
	}
}

static void setup(uint32_t ps)
{
	setup_poll(ps, 0);
}

static uint64_t count_bad(void)
{
	uint64_t bad = 0;
	for (uint64_t pg = 0; pg < npages; pg++) {
		bad += upg_t_check(shared + pg * psize, psize, pg, SHARED_GEN) != 0;
		bad += upg_t_check(owned + pg * psize, psize, pg, gen[pg]) != 0;
	}
	return bad;
}

static void teardown(void)
{
	ck_assert_uint_eq(count_bad(), 0);
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_gt(st.store_reads, 0);
	ck_assert_uint_le(st.resident_peak, BUDGET);
	ck_assert_int_eq(upager_close(up), 0);
	free(gen);
}

struct worker {
	pthread_t t;
	unsigned id, nthreads;
	uint64_t accesses;
	uint64_t bad;
	pthread_barrier_t *go;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	/* Half of the threads read the shared region in one common order:
	 * they fault on the same page at the same moment. */
	uint64_t common = 77, own = 1000 + w->id;
	uint64_t *shared_seed = w->id % 2 ? &common : &own;
	pthread_barrier_wait(w->go);
	for (uint64_t i = 0; i < w->accesses; i++) {
		uint64_t pg = i % 3 == 2 ? upg_t_skewed(shared_seed, npages) : upg_t_rand(shared_seed) % npages;
		size_t off = upg_t_check(shared + pg * psize, psize, pg, SHARED_GEN);
		if (off && w->bad++ < 3)
			fprintf(stderr, "thread %u: shared page %llu wrong at byte %zu\n", w->id,
				(unsigned long long)pg, off - 1);
		uint64_t mine = npages / w->nthreads;
		if (!mine)
			continue;
		pg = upg_t_rand(&own) % mine * w->nthreads + w->id;
		char *p = owned + pg * psize;
		off = upg_t_check(p, psize, pg, gen[pg]);
		if (off) {
			if (w->bad++ < 3)
				fprintf(stderr, "thread %u: owned page %llu gen %u wrong at byte %zu\n", w->id,
					(unsigned long long)pg, gen[pg], off - 1);
			continue;
		}
		upg_t_fill(p, psize, pg, ++gen[pg]);
	}
	return NULL;
}

/* 64 threads, same and different pages at once, for each page size. */
START_TEST(sixty_four_threads)
{
	uint32_t poll_us = _i < 2 ? 200 : 0;
	setup_poll(page_sizes[_i % 2], poll_us);
	printf("threads: %d threads, page %u, %llu pages per region, polling %u us\n", NTHREADS, psize,
	       (unsigned long long)npages, poll_us);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, NTHREADS);
	struct worker *w = calloc(NTHREADS, sizeof *w);
	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .id = i, .nthreads = NTHREADS, .go = &go,
					.accesses = upg_t_scale(psize == 4096 ? 300 : 60) };
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, hammer, &w[i]), 0);
	}
	uint64_t bad = 0;
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_join(w[i].t, NULL);
		bad += w[i].bad;
	}
	ck_assert_uint_eq(bad, 0);
	pthread_barrier_destroy(&go);
	free(w);
	/* Polling happened when asked for, and only then. */
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	printf("threads: %llu polls, %llu saw their completion, %.3f s CPU\n", (unsigned long long)st.polls,
	       (unsigned long long)st.poll_hits, st.poll_cpu_ns / 1e9);
	if (poll_us) {
		ck_assert_uint_gt(st.polls, 0);
		ck_assert_uint_gt(st.poll_hits, 0);
	} else {
		ck_assert_uint_eq(st.polls, 0);
		ck_assert_uint_eq(st.poll_cpu_ns, 0);
	}
	teardown();
}
END_TEST

/* ---- threads that die in the middle of a fault ---- */

struct reader {
	pthread_t t;
	uint64_t seed;
	uint64_t bad;
	atomic_int *started;
};

static __thread volatile sig_atomic_t in_access;
static atomic_ulong exits_in_access, exits;

static void exit_now(int sig)
{
	(void)sig;
	atomic_fetch_add(&exits, 1);
	if (in_access)
		atomic_fetch_add(&exits_in_access, 1);
	pthread_exit(NULL);
}

/* Reads random shared pages until a signal ends the thread. */
static void *reader(void *arg)
{
	struct reader *r = arg;
	atomic_fetch_add(r->started, 1);
	for (;;) {
		uint64_t pg = upg_t_rand(&r->seed) % npages;
		in_access = 1;
		size_t off = upg_t_check(shared + pg * psize, psize, pg, SHARED_GEN);
		in_access = 0;
		if (off)
			r->bad++;
	}
	return NULL;
}

static void *warm_exit(void *arg)
{
	(void)arg;
	pthread_exit(NULL);  /* loads the unwinder now, not inside a handler */
}

/* Touch one cold page of the owned region, check it, and exit. */
struct toucher {
	pthread_t t;
	uint64_t pg;
	int bad;
};

static void *touch_one(void *arg)
{
	struct toucher *t = arg;
	t->bad = upg_t_check(owned + t->pg * psize, psize, t->pg, gen[t->pg]) != 0;
	return NULL;
}

START_TEST(threads_exit_mid_fault)
{
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer delivers a signal only when the thread next calls
	 * into its runtime, and a reader spinning over paged memory never
	 * does: the readers are never killed (tools/sanitize.sh). */
	fprintf(stderr, "threads_exit_mid_fault: not run under ThreadSanitizer\n");
	return;
#endif
	int before[MAX_TIDS];
	int nbefore = upg_t_tasks(before, MAX_TIDS);
	setup(page_sizes[_i]);
	pthread_t warm;
	pthread_create(&warm, NULL, warm_exit, NULL);
	pthread_join(warm, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = exit_now;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

	/* Writers keep the owned region changing meanwhile. */
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 5);
	struct worker w[4];
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ .id = i, .nthreads = 4, .go = &go,
					.accesses = upg_t_scale(psize == 4096 ? 1500 : 200) };
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, hammer, &w[i]), 0);
	}
	pthread_barrier_wait(&go);

	uint64_t seed = 5, bad = 0, killed = 0;
	int rounds = (int)upg_t_scale(40);
	for (int round = 0; round < rounds; round++) {
		struct reader r[16];
		atomic_int started = 0;
		for (int i = 0; i < 16; i++) {
			r[i] = (struct reader){ .seed = seed * 100 + (uint64_t)i, .started = &started };
			ck_assert_int_eq(pthread_create(&r[i].t, NULL, reader, &r[i]), 0);
		}
		while (atomic_load(&started) < 16)
			sched_yield();
		struct timespec ts = { 0, (long)(upg_t_rand(&seed) % 3000 + 200) * 1000 };
		nanosleep(&ts, NULL);
		for (int i = 0; i < 16; i++)
			ck_assert_int_eq(pthread_kill(r[i].t, SIGUSR1), 0);
		for (int i = 0; i < 16; i++) {
			pthread_join(r[i].t, NULL);
			bad += r[i].bad;
			killed++;
		}
	}
	uint64_t wbad = 0;
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(w[i].t, NULL);
		wbad += w[i].bad;
	}
	/* Short-lived threads, the writers done: each touches one page
	 * (most are in the store) and exits at once. */
	uint64_t tbad = 0;
	for (int round = 0; round < (int)upg_t_scale(16); round++) {
		struct toucher t[32];
		for (int i = 0; i < 32; i++) {
			t[i] = (struct toucher){ .pg = upg_t_rand(&seed) % npages };
			ck_assert_int_eq(pthread_create(&t[i].t, NULL, touch_one, &t[i]), 0);
		}
		for (int i = 0; i < 32; i++) {
			pthread_join(t[i].t, NULL);
			tbad += (uint64_t)t[i].bad;
		}
	}
	pthread_barrier_destroy(&go);
	printf("threads: page %u, %llu readers killed, %llu in the middle of an access\n", psize,
	       (unsigned long long)killed, (unsigned long long)atomic_load(&exits_in_access));
	ck_assert_uint_eq(atomic_load(&exits), killed);
	ck_assert_uint_gt(atomic_load(&exits_in_access), 0);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(wbad, 0);
	ck_assert_uint_eq(tbad, 0);
	teardown();
	ck_assert_int_eq(upg_t_tasks_settle(nbefore), nbefore);
}
END_TEST

/* WILLNEED queues a prefetch for every stored page of a large region; while
 * those wait for the budget, threads discard their pages and touch them
 * again.  A fault on a page whose prefetch is still queued is left to that
 * prefetch: it must wake the thread even though the page is now a
 * discarded (zero) page, or the thread waits forever. */
struct discarder {
	pthread_t t;
	char *base;
	uint64_t first, count;
	uint64_t bad;
};

static void *discard_and_touch(void *arg)
{
	struct discarder *d = arg;
	char *p = d->base + d->first * 4096;
	if (upager_advise(up, p, d->count * 4096, UPAGER_ADV_DONTNEED))
		d->bad++;
	for (uint64_t i = 0; i < d->count; i++) {
		if (!upg_t_is_zero(p + i * 4096, 4096))
			d->bad++;
		upg_t_fill(p + i * 4096, 4096, d->first + i, 3);
	}
	return NULL;
}

START_TEST(discard_with_prefetch_queued)
{
	const uint64_t budget = 2ULL << 20, bytes = 64ULL << 20, n = bytes / 4096;
	up = upg_t_open(budget, 4096, NULL, 1);
	void *mem;
	ck_assert_int_eq(upager_map(up, bytes, NULL, &mem), 0);
	char *base = mem;
	for (uint64_t pg = 0; pg < n; pg++)
		upg_t_fill(base + pg * 4096, 4096, pg, 1);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(upager_advise(up, base, bytes, UPAGER_ADV_WILLNEED), 0);
		/* The back half: most of its prefetches are still queued. */
		struct discarder d[4];
		for (int i = 0; i < 4; i++) {
			d[i] = (struct discarder){ .base = base, .first = n / 2 + n / 8 * (uint64_t)i + (uint64_t)round,
						   .count = 64 };
			ck_assert_int_eq(pthread_create(&d[i].t, NULL, discard_and_touch, &d[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(d[i].t, NULL);
			ck_assert_uint_eq(d[i].bad, 0);
		}
		for (int i = 0; i < 4; i++)
			for (uint64_t pg = d[i].first; pg < d[i].first + d[i].count; pg++)
				ck_assert_uint_eq(upg_t_check(base + pg * 4096, 4096, pg, 3), 0);
	}
	ck_assert_int_eq(upager_close(up), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("threads");
	tcase_set_timeout(tc, 240);
	tcase_add_loop_test(tc, sixty_four_threads, 0, 4);
	tcase_add_loop_test(tc, threads_exit_mid_fault, 0, 2);
	tcase_add_test(tc, discard_with_prefetch_queued);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
