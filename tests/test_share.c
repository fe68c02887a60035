/* SPDX-License-Identifier: MIT */
/*
 * The compressed pool's share of the budget (src/share.c): refills of
 * pages evicted just before pull it down, by their cost; refills from
 * the store just beyond the pool's reach push it up, by what the pool
 * would have saved on them; it stays within its bounds and does not move
 * before both costs are known.
 */
#include <check.h>
#include <stdint.h>

#include "share.h"

#define MIB (1024ull * 1024)
#define BUDGET (64 * MIB)
#define MOST (32 * MIB)  /* half the budget */

static void costs(struct upg_share *s, uint64_t pool_ns, uint64_t store_ns)
{
	for (int i = 0; i < 1000; i++) {
		upg_share_cost(s, true, pool_ns);
		upg_share_cost(s, false, store_ns);
	}
}

START_TEST(test_bounds_and_start)
{
	struct upg_share s;
	upg_share_init(&s, BUDGET, MOST);
	ck_assert_uint_eq(upg_share_bytes(&s), MOST);
	ck_assert_uint_eq(s.lo, BUDGET / 20);
	ck_assert_uint_eq(s.step, BUDGET / 64);
	/* No costs measured yet: nothing moves it. */
	for (int i = 0; i < 10000; i++)
		upg_share_refill(&s, 1, true, MOST);
	ck_assert_uint_eq(upg_share_bytes(&s), MOST);
	/* A small budget: the floor is the smallest pool worth keeping. */
	upg_share_init(&s, 2 * MIB, MIB);
	ck_assert_uint_eq(s.lo, 256 << 10);
	costs(&s, 20000, 80000);
	for (int i = 0; i < 10000; i++)
		upg_share_refill(&s, 1, true, MIB);
	ck_assert_uint_eq(upg_share_bytes(&s), 256 << 10);
	/* No pool: nothing moves it. */
	upg_share_init(&s, BUDGET, 0);
	costs(&s, 20000, 80000);
	for (int i = 0; i < 10000; i++)
		upg_share_refill(&s, 1, true, 0);
	ck_assert_uint_eq(upg_share_bytes(&s), 0);
}
END_TEST

/* A hot set a little larger than RAM: its pages come back soon after
 * they leave, and more RAM for pages would have kept them. */
START_TEST(test_hot_set_pulls_down)
{
	struct upg_share s;
	upg_share_init(&s, BUDGET, MOST);
	costs(&s, 20000, 80000);
	uint64_t near = s.step / 4096 / 2;
	upg_share_refill(&s, near, true, MOST);
	uint64_t one = MOST - upg_share_bytes(&s);
	/* A pool refill moves it by its cost over a store refill's, an eighth of a step per store refill. */
	ck_assert_uint_eq(one, s.step / 4 / 8);
	upg_share_refill(&s, near, false, MOST);
	ck_assert_uint_eq(MOST - upg_share_bytes(&s), one + s.step / 8);
	for (int i = 0; i < 100000; i++)
		upg_share_refill(&s, near, i % 2, upg_share_bytes(&s));
	ck_assert_uint_eq(upg_share_bytes(&s), BUDGET / 20);
	ck_assert_uint_eq(s.ups, 0);
	/* Never evicted: no evidence either way. */
	uint64_t before = upg_share_bytes(&s);
	upg_share_refill(&s, UINT64_MAX, false, before);
	ck_assert_uint_eq(upg_share_bytes(&s), before);
}
END_TEST

/* Data spread far wider than the budget: pages read from the store were
 * evicted a little more than the pool keeps them. */
START_TEST(test_spread_pushes_up)
{
	struct upg_share s;
	upg_share_init(&s, BUDGET, MOST);
	costs(&s, 20000, 80000);
	for (int i = 0; i < 100000; i++)
		upg_share_refill(&s, 1, false, MOST);
	ck_assert_uint_eq(upg_share_bytes(&s), BUDGET / 20);
	for (int i = 0; i < 1000; i++) {
		upg_share_spilled(&s, 10000);
		upg_share_evicted(&s, 100, 100);
	}
	uint64_t t = upg_share_bytes(&s);
	/* Beyond the reach by more than the step would add: no move. */
	upg_share_refill(&s, 100000, false, t);
	ck_assert_uint_eq(upg_share_bytes(&s), t);
	/* A pool refill there says nothing of a larger pool. */
	upg_share_refill(&s, 10001, true, t);
	ck_assert_uint_eq(upg_share_bytes(&s), t);
	/* The pool below its share: a larger share would not be used. */
	upg_share_refill(&s, 10001, false, t / 2);
	ck_assert_uint_eq(upg_share_bytes(&s), t);
	/* Just beyond the reach, the pool full: the store cost less the pool's. */
	upg_share_refill(&s, 10001, false, t);
	ck_assert_uint_eq(upg_share_bytes(&s) - t, s.step * 3 / 4 / 8);
	for (int i = 0; i < 100000; i++)
		upg_share_refill(&s, 10001, false, upg_share_bytes(&s));
	ck_assert_uint_eq(upg_share_bytes(&s), MOST);
}
END_TEST

/* Both kinds at once: the cheaper evidence loses.  A quarter of evicted
 * pages going to the pool makes a store refill beyond its reach worth
 * (80 - 20) / 4 = 15 against a pool refill soon after eviction's 20. */
START_TEST(test_balance_by_cost)
{
	for (int part = 1; part <= 4; part *= 4) {
		struct upg_share s;
		upg_share_init(&s, BUDGET, MOST);
		costs(&s, 20000, 80000);
		for (int i = 0; i < 1000; i++) {
			upg_share_spilled(&s, 10000);
			upg_share_evicted(&s, 4, (uint64_t)part);
		}
		for (int i = 0; i < 100000; i++)
			upg_share_refill(&s, i % 2 ? 10001 : 1, i % 2 == 0, upg_share_bytes(&s));
		/* At its bound, give or take the last refill's move. */
		if (part == 1)
			ck_assert_uint_le(upg_share_bytes(&s), BUDGET / 20 + s.step / 4);
		else
			ck_assert_uint_ge(upg_share_bytes(&s), MOST - s.step / 4);
	}
}
END_TEST

int main(void)
{
	Suite *su = suite_create("share");
	TCase *tc = tcase_create("share");
	tcase_add_test(tc, test_bounds_and_start);
	tcase_add_test(tc, test_hot_set_pulls_down);
	tcase_add_test(tc, test_spread_pushes_up);
	tcase_add_test(tc, test_balance_by_cost);
	suite_add_tcase(su, tc);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
