/* SPDX-License-Identifier: MIT */
/*
 * The stall figures (src/stall.h):
 *   - waits fed by hand, and random waits checked against a count of the
 *     cover at every instant: "some" and "all" for 1 to 3 threads;
 *   - the last 10 seconds' window;
 *   - a workload whose waiting time is known: one thread reads back pages
 *     evicted to the store and the pool, timing itself; the stall figure
 *     is a lower bound of that time and much of it, stays still while the
 *     thread sleeps, and "all" stays near zero while a second thread
 *     sleeps through it.  Every page is checked after refault.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

static void add(struct upg_stall *s, uint64_t t0, uint64_t end)
{
	upg_stall_add(s, t0, end);
}

START_TEST(test_by_hand)
{
	struct upg_stall s;
	upg_stall_init(&s, 0);
	s.threads = 2;
	/* Ends ascend: [4,6], [1,8], [0,10]; a gap [12,13] alone; [11,14]. */
	add(&s, 4, 6);
	add(&s, 1, 8);
	add(&s, 0, 10);
	ck_assert_uint_eq(s.some_ns, 10);
	ck_assert_uint_eq(s.full_ns, 7);  /* two or more: [1,8] */
	add(&s, 12, 13);
	add(&s, 11, 14);
	ck_assert_uint_eq(s.some_ns, 13);
	ck_assert_uint_eq(s.full_ns, 8);
	/* A wait that began before earlier ones and spans the gap between
	 * them counts the gap once. */
	upg_stall_init(&s, 0);
	s.threads = 1;
	add(&s, 0, 2);
	add(&s, 4, 6);
	add(&s, 1, 8);
	ck_assert_uint_eq(s.some_ns, 8);
	ck_assert_uint_eq(s.full_ns, 8);  /* one thread: all is some */
}
END_TEST

#define SPAN 4000
#define NWAITS 100

START_TEST(test_random)
{
	uint64_t rng = 7;
	for (unsigned threads = 1; threads <= 3; threads++)
		for (int round = 0; round < 50; round++) {
			struct upg_stall s;
			upg_stall_init(&s, 0);
			s.threads = threads;
			static uint8_t cover[SPAN];
			memset(cover, 0, sizeof cover);
			/* Random waits, sorted by their ends. */
			uint64_t t0[NWAITS], end[NWAITS];
			for (int i = 0; i < NWAITS; i++) {
				end[i] = upg_t_rand(&rng) % SPAN;
				uint64_t len = upg_t_rand(&rng) % 200;
				t0[i] = end[i] > len ? end[i] - len : 0;
			}
			for (int i = 1; i < NWAITS; i++)
				for (int j = i; j > 0 && end[j - 1] > end[j]; j--) {
					uint64_t a = end[j], b = t0[j];
					end[j] = end[j - 1], t0[j] = t0[j - 1];
					end[j - 1] = a, t0[j - 1] = b;
				}
			for (int i = 0; i < NWAITS; i++) {
				add(&s, t0[i], end[i]);
				for (uint64_t t = t0[i]; t < end[i]; t++)
					cover[t]++;
			}
			uint64_t some = 0, full = 0;
			for (int t = 0; t < SPAN; t++) {
				some += cover[t] >= 1;
				full += cover[t] >= threads;
			}
			ck_assert_uint_eq(s.some_ns, some);
			ck_assert_uint_eq(s.full_ns, full);
		}
}
END_TEST

START_TEST(test_recent)
{
	const uint64_t S = 1000000000ULL;
	struct upg_stall s;
	upg_stall_init(&s, 100 * S);
	/* Half of every second for 20 s. */
	for (uint64_t sec = 100; sec < 120; sec++)
		add(&s, sec * S + S / 4, sec * S + 3 * S / 4);
	uint64_t w, some, full;
	upg_stall_recent(&s, 120 * S, &w, &some, &full);
	ck_assert_uint_eq(w, 9 * S);  /* from the start of second 111 */
	ck_assert_uint_eq(some, 9 * S / 2);  /* seconds 111..119 (120 is empty so far) */
	ck_assert_uint_eq(s.some_ns, 10 * S);
	/* A young run: its window is its age. */
	upg_stall_init(&s, 100 * S + S / 2);
	add(&s, 101 * S, 101 * S + S / 2);
	upg_stall_recent(&s, 102 * S, &w, &some, &full);
	ck_assert_uint_eq(w, 3 * S / 2);
	ck_assert_uint_eq(some, S / 2);
}
END_TEST

/* ---- a workload whose waiting time is known ---- */

#define BUDGET (4ULL << 20)
#define PS 4096u
#define NPAGES (16 * BUDGET / PS)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void stats(upager_t *up, struct upager_stats *st)
{
	st->size = sizeof *st;
	ck_assert_int_eq(upager_stats(up, st), 0);
}

static void *sleeper(void *arg)
{
	volatile int *stop = arg;
	while (!*stop)
		usleep(1000);
	return NULL;
}

START_TEST(test_known_wait)
{
	upager_t *up = upg_t_open(BUDGET, 0, NULL, 1);
	void *m;
	ck_assert_int_eq(upager_map(up, NPAGES * PS, NULL, &m), 0);
	char *base = m;
	for (uint64_t i = 0; i < NPAGES; i++)
		upg_t_fill(base + i * PS, PS, i, 1);
	usleep(300 * 1000);  /* the evictor counts the threads every 100 ms */

	for (int with_sleeper = 0; with_sleeper < 2; with_sleeper++) {
		volatile int stop = 0;
		pthread_t th;
		if (with_sleeper) {
			ck_assert_int_eq(pthread_create(&th, NULL, sleeper, (void *)&stop), 0);
			usleep(300 * 1000);
		}
		struct upager_stats a, b, c;
		stats(up, &a);
		/* Random reads of evicted pages: nearly all of the loop's time
		 * is spent waiting for them. */
		uint64_t rng = 5 + (uint64_t)with_sleeper, bad = 0, t0 = now_ns();
		for (int k = 0; k < 6000; k++) {
			uint64_t i = upg_t_rand(&rng) % NPAGES;
			bad += upg_t_check(base + i * PS, PS, i, 1) != 0;
		}
		uint64_t loop = now_ns() - t0;
		stats(up, &b);
		usleep(300 * 1000);  /* no faults: the figure stands still */
		stats(up, &c);
		if (with_sleeper) {
			stop = 1;
			pthread_join(th, NULL);
		}
		ck_assert_uint_eq(bad, 0);
		uint64_t some = b.stall_some_ns - a.stall_some_ns, all = b.stall_all_ns - a.stall_all_ns;
		uint64_t faults = (b.store_reads + b.pool_hits) - (a.store_reads + a.pool_hits);
		printf("stall: %s: loop %.1f ms, %llu faults from the store and pool; stall some %.1f ms (%.0f%% of "
		       "the loop), all %.1f ms; %u thread(s) counted\n",
		       with_sleeper ? "a second thread sleeping" : "one thread", loop / 1e6,
		       (unsigned long long)faults, some / 1e6, 100.0 * (double)some / (double)loop, all / 1e6,
		       b.stall_threads);
		ck_assert_uint_gt(faults, 3000);
		ck_assert_uint_le(some, loop);         /* a lower bound of the waiting */
		ck_assert_uint_ge(some * 10, loop * 3); /* ... and much of it (62-88% here) */
		ck_assert_uint_eq(c.stall_some_ns, b.stall_some_ns);
		ck_assert_uint_ge(c.wall_ns, b.wall_ns + 250 * 1000000ULL);
		ck_assert_uint_le(c.stall_some_ns, c.wall_ns);
		ck_assert_uint_le(c.stall_some_recent_ns, c.stall_recent_ns);
		ck_assert_uint_le(c.stall_recent_ns, 10 * 1000000000ULL);
		if (with_sleeper) {
			ck_assert_uint_eq(b.stall_threads, 2);
			ck_assert_uint_le(all * 20, some);  /* the sleeper never waits on a fault */
		} else {
			ck_assert_uint_eq(b.stall_threads, 1);
			ck_assert_uint_eq(all, some);
		}
	}
	for (uint64_t i = 0; i < NPAGES; i++)
		ck_assert_uint_eq(upg_t_check(base + i * PS, PS, i, 1), 0);
	ck_assert_int_eq(upager_close(up), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stall");
	TCase *tc = tcase_create("stall");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_by_hand);
	tcase_add_test(tc, test_random);
	tcase_add_test(tc, test_recent);
	tcase_add_test(tc, test_known_wait);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
