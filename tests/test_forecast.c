/* SPDX-License-Identifier: MIT */
/*
 * The forecast (upager_forecast()): refills predicted from one run at its
 * budget for 1.5 and 2 times that budget hold within 20% of real runs at
 * those budgets (two at each, averaged; one for uniform), on deterministic
 * workloads of three shapes; below the run's budget the run's own count is
 * given as a lower bound.  Every run checks every page it reads.
 */
#include <check.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define BUDGET (8ULL << 20)
#define PAGES (4 * BUDGET / 4096)  /* the data: four budgets */

enum shape { UNIFORM, HOTSET, SKEWED };
static const char *const names[] = { "uniform", "hot set", "skewed" };

/* The page of access i: uniform over the data; 85% in a hot set of 1.6
 * budgets, the rest anywhere; or 90% in the first tenth. */
static uint64_t next_page(enum shape s, uint64_t *rng)
{
	switch (s) {
	case UNIFORM:
		return upg_t_rand(rng) % PAGES;
	case HOTSET:
		if (upg_t_rand(rng) % 100 < 85)
			return upg_t_rand(rng) % (PAGES * 2 / 5);
		return upg_t_rand(rng) % PAGES;
	default:
		return upg_t_skewed(rng, PAGES);
	}
}

/* Wait until the runtime is quiet: the evictor may still be finishing a
 * batch (or a spill) the last accesses started, which moves the counts a
 * forecast is made from.  Up to 2 s. */
static void settle(upager_t *up)
{
	struct upager_stats a = { .size = sizeof a }, b = { .size = sizeof b };
	ck_assert_int_eq(upager_stats(up, &a), 0);
	for (int i = 0; i < 100; i++) {
		usleep(20000);
		ck_assert_int_eq(upager_stats(up, &b), 0);
		if (a.evictions == b.evictions && a.store_reads == b.store_reads && a.pool_hits == b.pool_hits &&
		    a.pool_bytes == b.pool_bytes && a.pool_writebacks == b.pool_writebacks)
			return;
		a = b;
	}
}

struct outcome {
	uint64_t refills;
	struct upager_forecast at[3];  /* 1.5, 2 and 0.5 budgets */
	uint64_t knee;
};

/* One run at budget: fill the data, then accesses of shape s, reading each
 * page and rewriting one in four (four times as many for the skewed shape,
 * whose accesses mostly hit, so that its count is steadier); refills are
 * the faults that read a page back, from the store or the pool. */
static struct outcome run(enum shape s, uint64_t budget)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = budget;
	upager_t *up = upg_t_open_config(&cfg);
	char *base;
	ck_assert_int_eq(upager_map(up, PAGES * 4096, NULL, (void **)&base), 0);
	uint32_t *gen = calloc(PAGES, sizeof *gen);
	/* The fill in a scattered order, so that its pages leave one by one
	 * and the pool starts as it would under the accesses that follow.
	 * Filled in order, they leave in runs, which go to the store untried,
	 * and the run at the budget ends with its pool at the top of its
	 * share: the forecast then grows the pool with the budget, where the
	 * real runs' pool stays near 4.5 MiB, and it over-predicts uniform at
	 * 2x by 16 to 19.5% (README, known limits). */
	for (uint64_t k = 0; k < PAGES; k++) {
		uint64_t pg = upg_t_scatter(k, PAGES);
		upg_t_fill(base + pg * 4096, 4096, pg, gen[pg] = 1);
	}
	uint64_t rng = 42, accesses = upg_t_scale((s == SKEWED ? 48 : 12) * PAGES);
	for (uint64_t i = 0; i < accesses; i++) {
		uint64_t pg = next_page(s, &rng);
		ck_assert_msg(upg_t_check(base + pg * 4096, 4096, pg, gen[pg]) == 0, "%s: page %llu wrong", names[s],
			      (unsigned long long)pg);
		if (i % 4 == 0)
			upg_t_fill(base + pg * 4096, 4096, pg, ++gen[pg]);
	}
	struct outcome o = { 0 };
	settle(up);
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	o.refills = st.store_reads + st.pool_hits;
	if (getenv("UPG_TEST_VERBOSE"))
		fprintf(stderr, "%s at %llu MiB: %llu store reads, %llu pool hits, pool %llu KiB, resident %llu KiB, %llu evictions\n",
			names[s], (unsigned long long)(budget >> 20), (unsigned long long)st.store_reads,
			(unsigned long long)st.pool_hits, (unsigned long long)(st.pool_bytes >> 10),
			(unsigned long long)(st.resident_bytes >> 10), (unsigned long long)st.evictions);
	const uint64_t asked[3] = { budget * 3 / 2, budget * 2, budget / 2 };
	for (int k = 0; k < 3; k++) {
		o.at[k].size = sizeof o.at[k];
		ck_assert_int_eq(upager_forecast(up, asked[k], &o.at[k]), 0);
	}
	/* The knee: past this run's budget, no further than the footprint;
	 * short of the footprint only where the estimate is well below the
	 * straight line to it. */
	o.knee = o.at[0].knee;
	struct upager_forecast at_knee = { .size = sizeof at_knee };
	ck_assert_int_eq(upager_forecast(up, o.knee, &at_knee), 0);
	ck_assert_uint_gt(o.knee, budget);
	ck_assert_uint_le(o.knee, o.at[0].footprint);
	if (o.knee < o.at[0].footprint) {
		double x = (double)(o.knee - budget) / (double)(o.at[0].footprint - budget);
		ck_assert_msg((double)at_knee.refills <= (double)o.refills * (0.8 - x), "%s: knee at %llu MiB is no knee",
			      names[s], (unsigned long long)(o.knee >> 20));
	}
	ck_assert_uint_eq(at_knee.knee, o.knee);
	/* A caller built before the knee passes the older size, and nothing
	 * past it is written. */
	union {
		struct upager_forecast f;
		unsigned char b[sizeof(struct upager_forecast)];
	} old;
	memset(old.b, 0xa5, sizeof old.b);
	old.f.size = offsetof(struct upager_forecast, knee);
	ck_assert_int_eq(upager_forecast(up, budget * 2, &old.f), 0);
	ck_assert_uint_eq(old.f.refills, o.at[1].refills);
	ck_assert_uint_eq(old.f.size, offsetof(struct upager_forecast, knee));
	for (size_t i = offsetof(struct upager_forecast, knee); i < sizeof old.b; i++)
		ck_assert_uint_eq(old.b[i], 0xa5);
	free(gen);
	upager_close(up);
	return o;
}

/* Within 20%.  The real runs with the pool move most with the pool's
 * share, which falls as the budget grows on the hot set (at 16 MiB, 31K
 * to 38K refills a run) and rises on the skewed accesses; the forecast
 * keeps the bytes of a share that stands between its bounds
 * (runtime.c's forecast_above()). */
static void near(enum shape s, const char *what, uint64_t predicted, uint64_t real)
{
	double err = real ? ((double)predicted - (double)real) / (double)real : 0;
	const char *c = getenv("UPG_TEST_COMPRESS");
	bool pool = !(c && !strcmp(c, "off"));
	const double within = 0.2;
	fprintf(stderr, "%-8s %s: predicted %llu refills, real runs made %llu (%+.1f%%)%s\n", names[s], what,
		(unsigned long long)predicted, (unsigned long long)real, err * 100, pool ? "" : ", no pool");
	ck_assert_msg(err <= within && err >= -within, "%s %s: predicted %llu refills, real runs made %llu (%+.1f%%)",
		      names[s], what, (unsigned long long)predicted, (unsigned long long)real, err * 100);
}

START_TEST(prediction_holds)
{
	enum shape s = (enum shape)_i;
	struct outcome base = run(s, BUDGET);
	/* The real counts of the hot set and the skewed shape move a few per
	 * cent from run to run with the evictor's timing (up to 8%): two runs
	 * at each budget, averaged.  Uniform's move under 1%: one run. */
	int reps = s == UNIFORM ? 1 : 2;
	uint64_t more = 0, most = 0;
	for (int k = 0; k < reps; k++) {
		more += run(s, BUDGET * 3 / 2).refills;
		most += run(s, BUDGET * 2).refills;
	}
	more /= reps;
	most /= reps;
	fprintf(stderr, "%-8s at the budget: %llu refills; knee %.1f MiB; footprint %llu MiB\n", names[s],
		(unsigned long long)base.refills, (double)base.knee / (1 << 20),
		(unsigned long long)(base.at[0].footprint >> 20));
	ck_assert_uint_gt(base.refills, 1000);
	ck_assert_uint_eq(base.at[0].basis, UPAGER_FORECAST_ESTIMATE);
	ck_assert_uint_eq(base.at[2].basis, UPAGER_FORECAST_AT_LEAST);
	ck_assert_uint_eq(base.at[2].refills, base.refills);
	ck_assert_uint_ge(base.at[0].refills, base.at[1].refills);
	ck_assert_uint_gt(base.at[0].footprint, BUDGET);
	near(s, "1.5x", base.at[0].refills, more);
	near(s, "2x  ", base.at[1].refills, most);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("forecast");
	TCase *tc = tcase_create("forecast");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, prediction_holds, UNIFORM, SKEWED + 1);
	suite_add_tcase(su, tc);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
