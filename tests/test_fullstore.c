/* SPDX-License-Identifier: MIT */
/*
 * A store smaller than the data.  When the store is full, dirty pages that
 * cannot be written stay in RAM over the budget: the program keeps running
 * (the overshoot is counted and logged), and no page is ever wrong.
 *
 * Each case fills every page with (index, generation 1), then makes passes
 * of seeded random read-modify-writes that check the page's current
 * generation and write the next, then verifies every page.  A watchdog fails
 * the test with the runtime's statistics if the program stops making
 * progress (a fault that is never served).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "upager.h"

#define MIB (1ULL << 20)
#define PS 4096u

/* ---- log capture (the callback runs on upager threads) ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[32768];
static size_t log_len;
static unsigned log_count;

static void capture_log(void *arg, int level, const char *msg)
{
	(void)arg;
	pthread_mutex_lock(&log_lock);
	int n = snprintf(log_buf + log_len, sizeof log_buf - log_len, "[%d] %s\n", level, msg);
	if (n > 0 && log_len + (size_t)n < sizeof log_buf)
		log_len += (size_t)n;
	log_count++;
	pthread_mutex_unlock(&log_lock);
}

/* 1 when one captured line holds every word of must[] (NULL-terminated). */
static int log_has_line(const char *const *must)
{
	int found = 0;
	pthread_mutex_lock(&log_lock);
	char *copy = strndup(log_buf, log_len);
	pthread_mutex_unlock(&log_lock);
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		int all = 1;
		for (size_t i = 0; must[i]; i++)
			all &= strstr(line, must[i]) != NULL;
		found = all;
	}
	free(copy);
	return found;
}

/* ---- watchdog ---- */

static upager_t *up;
static atomic_uint_fast64_t progress;
static atomic_int watch_stop;
static pthread_t watch_tid;
static const unsigned STALL_SECONDS = 10; /* one page operation; normally microseconds */

static void *watchdog(void *arg)
{
	(void)arg;
	uint64_t last = atomic_load(&progress);
	unsigned still = 0;
	while (!atomic_load(&watch_stop)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		uint64_t now = atomic_load(&progress);
		if (now != last) {
			last = now;
			still = 0;
			continue;
		}
		if (++still < STALL_SECONDS * 10)
			continue;
		struct upager_stats st = { .size = sizeof st };
		char report[4096] = "";
		if (upager_stats(up, &st) == 0)
			upager_format_stats(&st, report, sizeof report);
		fprintf(stderr, "no progress for %u s after %llu page operations:\n%s\nlog:\n%s", STALL_SECONDS,
			(unsigned long long)now, report, log_buf);
		fflush(stderr);
		ck_abort_msg("the program stopped making progress for %u s (a fault is never served) after %llu page "
			     "operations: resident %llu bytes (budget %llu), overshoot %llu, store %llu of %llu bytes, "
			     "%llu store-full refusals",
			     STALL_SECONDS, (unsigned long long)now, (unsigned long long)st.resident_bytes,
			     (unsigned long long)st.ram_budget, (unsigned long long)st.overshoot_bytes,
			     (unsigned long long)st.store_slots_used * 4096, (unsigned long long)st.store_bytes,
			     (unsigned long long)st.store_full);
	}
	return NULL;
}

/* ---- the workload ---- */

/* Open the runtime (2 handlers, store in /var/tmp, log captured), start the
 * watchdog, map data bytes and write generation 1 to every page.  Returns
 * the region; *genp gets the per-page generations. */
static char *open_and_fill(const char *policy, uint64_t budget, uint64_t store_max, uint64_t data, uint32_t **genp)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = budget;
	cfg.store_max = store_max;
	cfg.store_path = "/var/tmp";
	if (policy)
		cfg.policy = policy;
	cfg.handler_threads = 2;
	cfg.log = capture_log;
	cfg.log_level = UPAGER_LOG_WARN;
	char err[512];
	upg_t_config_env(&cfg);
	int rc = upager_open(&cfg, &up, err, sizeof err);
	ck_assert_msg(rc == 0, "upager_open: %s (%s)", err, strerror(-rc));
	ck_assert_int_eq(pthread_create(&watch_tid, NULL, watchdog, NULL), 0);

	uint64_t n = data / PS;
	uint32_t *gen = calloc(n, sizeof *gen);
	ck_assert_ptr_nonnull(gen);
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, data, NULL, &a), 0);
	char *b = a;
	for (uint64_t i = 0; i < n; i++) {
		upg_t_fill(b + i * PS, PS, i, 1);
		gen[i] = 1;
		atomic_fetch_add(&progress, 1);
	}
	*genp = gen;
	return b;
}

/* Stop the watchdog, unmap region b, close the runtime, free gen. */
static void close_and_free(char *b, uint32_t *gen)
{
	atomic_store(&watch_stop, 1);
	pthread_join(watch_tid, NULL);
	ck_assert_int_eq(upager_unmap(up, b), 0);
	ck_assert_int_eq(upager_close(up), 0);
	up = NULL;
	free(gen);
}

static void run_case(const char *policy, uint64_t budget, uint64_t store_max, uint64_t data, unsigned passes)
{
	uint32_t *gen;
	char *b = open_and_fill(policy, budget, store_max, data, &gen);
	uint64_t n = data / PS;
	uint64_t seed = 0x5eed0000 + data / MIB;
	for (unsigned pass = 0; pass < passes; pass++) {
		for (uint64_t k = 0; k < n; k++) {
			uint64_t i = upg_t_rand(&seed) % n;
			size_t bad = upg_t_check(b + i * PS, PS, i, gen[i]);
			ck_assert_msg(!bad, "pass %u: page %llu (gen %u) differs at byte %zu", pass,
				      (unsigned long long)i, gen[i], bad - 1);
			gen[i]++;
			upg_t_fill(b + i * PS, PS, i, gen[i]);
			atomic_fetch_add(&progress, 1);
		}
	}
	for (uint64_t i = 0; i < n; i++) {
		size_t bad = upg_t_check(b + i * PS, PS, i, gen[i]);
		ck_assert_msg(!bad, "final: page %llu (gen %u) differs at byte %zu", (unsigned long long)i, gen[i],
			      bad - 1);
		atomic_fetch_add(&progress, 1);
	}

	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	char report[4096];
	upager_format_stats(&st, report, sizeof report);
	fprintf(stderr, "%s\n", report);
	ck_assert_msg(st.store_bytes <= store_max, "the store grew to %llu bytes, over its limit %llu",
		      (unsigned long long)st.store_bytes, (unsigned long long)store_max);
	ck_assert_msg(st.store_full > 0 || st.overshoot_peak > 0,
		      "a store smaller than the data was never full (store_full 0, overshoot_peak 0)");
	ck_assert_msg(st.resident_peak > budget, "resident_peak %llu is not over the budget %llu: the overshoot was "
		      "not counted", (unsigned long long)st.resident_peak, (unsigned long long)budget);
	ck_assert_msg(st.overshoot_peak >= st.resident_peak - budget, "overshoot_peak %llu < resident_peak - budget",
		      (unsigned long long)st.overshoot_peak);
	ck_assert_msg(st.write_errors == 0, "%llu write errors", (unsigned long long)st.write_errors);
	ck_assert_msg(log_has_line((const char *const[]){ "store", "full", NULL }),
		      "no log message said that the store is full; log:\n%s", log_buf);

	close_and_free(b, gen);
}

static const char *const policies[] = { "s3fifo", "clock", "fifo" };

/* Data of 3.5x the budget through a store of 2x the budget: the overshoot
 * (about 2 MiB) stays within twice the budget.  Every policy. */
START_TEST(test_full_store_overshoot)
{
	run_case(policies[_i], 4 * MIB, 8 * MIB, 14 * MIB, 2);
}
END_TEST

/* Three times the store, six times the budget: most of the data has to stay
 * in RAM, far over the budget (default policy). */
START_TEST(test_full_store_data_3x_store)
{
	run_case(NULL, 4 * MIB, 8 * MIB, 24 * MIB, 2);
}
END_TEST

/* Pages let in over the budget after every frame was taken have no frame:
 * the policy does not hold them, and they stay until discarded.  Fill 8x
 * the budget through a store of 2x: the last pages filled are such pages.
 * Discard the first 5/8 of the data, which frees the store and every page
 * the policy held; what is left in RAM is frameless and over the budget.
 * Writing the discarded part again must not wait for an eviction that can
 * never come (the watchdog fails the test after 10 s without progress). */
START_TEST(test_frameless_pages_over_budget)
{
	uint64_t budget = 1 * MIB, data = 8 * MIB, n = data / PS, cut = n * 5 / 8;
	uint32_t *gen;
	char *b = open_and_fill(NULL, budget, 2 * MIB, data, &gen);
	ck_assert_int_eq(madvise(b, cut * PS, MADV_DONTNEED), 0);
	for (uint64_t i = 0; i < cut; i++)
		gen[i] = 0;
	usleep(200000);  /* the evictor empties the policy */
	for (uint64_t i = 0; i < cut; i++) {
		ck_assert_msg(upg_t_is_zero(b + i * PS, PS), "discarded page %llu is not zeros", (unsigned long long)i);
		upg_t_fill(b + i * PS, PS, i, 2);
		gen[i] = 2;
		atomic_fetch_add(&progress, 1);
	}
	for (uint64_t i = 0; i < n; i++) {
		size_t bad = upg_t_check(b + i * PS, PS, i, gen[i]);
		ck_assert_msg(!bad, "page %llu (gen %u) differs at byte %zu", (unsigned long long)i, gen[i], bad - 1);
		atomic_fetch_add(&progress, 1);
	}
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_msg(st.resident_peak > 2 * budget + 64 * PS, "resident peak %llu KiB: the frame table "
		      "never ran out, so the case was not reached", (unsigned long long)(st.resident_peak >> 10));
	close_and_free(b, gen);
}
END_TEST

static Suite *fullstore_suite(void)
{
	Suite *s = suite_create("fullstore");
	TCase *tc = tcase_create("fullstore");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_full_store_overshoot, 0, (int)(sizeof policies / sizeof policies[0]));
	tcase_add_test(tc, test_full_store_data_3x_store);
	tcase_add_test(tc, test_frameless_pages_over_budget);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* Pages that do not compress: the compressed pool (on unless
	 * UPG_TEST_COMPRESS=off) refuses them all, and the store fills as it
	 * would without the pool. */
	setenv("UPG_TEST_DATA", "random", 1);
	SRunner *sr = srunner_create(fullstore_suite());
	fflush(stdout);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
