/* SPDX-License-Identifier: MIT */
/*
 * The compressed pool in front of the store, end to end:
 *   - threads rewrite and check 8 times the budget of pages that compress:
 *     pages go into the pool, come back from it, and spill from it to the
 *     store and back; the budget (resident pages plus the pool) holds;
 *   - the same with pages that do not compress: the pool refuses them all
 *     and paging is as without it; once a few thousand were refused, only
 *     one batch of evictions in eight is tried;
 *   - read-only passes: clean pages are dropped without a write, not
 *     compressed (only what was never written out may be, once);
 *   - pages read from the pool and left unwritten go back to their
 *     objects without compression; a rewrite frees the object;
 *   - pages written in order leave in runs, which go to the store untried
 *     and come back by readahead; rewritten at random, they go to the pool;
 *   - zstd instead of LZ4, when built with it;
 *   - a hot set a little larger than the budget (1.2 times): its pages come back soon
 *     after they leave, and the pool's share of the budget falls, spilling
 *     to the store, while every page keeps its data.
 * Every page is checked after eviction and refault.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "upg_config.h"

#define BUDGET (8ULL << 20)
#define PS 4096u
#define NPAGES (8 * BUDGET / PS)
#define NTHREADS 4

static upager_t *up;
static char *base;
static uint32_t gen[NPAGES];

/* Open with the pool (compress) and fill every page: in order, or in a
 * scattered order, so that the fill's pages leave one by one and are
 * offered to the pool (runs of neighbours go to the store untried:
 * test_runs). */
static void open_fill(const char *compress, int random, int in_order)
{
	upg_t_data_random(random);
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET;
	cfg.handler_threads = 2;
	cfg.compress = compress;
	up = upg_t_open_config(&cfg);
	void *m;
	ck_assert_int_eq(upager_map(up, NPAGES * PS, NULL, &m), 0);
	base = m;
	for (uint64_t k = 0; k < NPAGES; k++) {
		uint64_t i = in_order ? k : upg_t_scatter(k, NPAGES);
		gen[i] = 1;
		upg_t_fill(base + i * PS, PS, i, 1);
	}
}

static void *worker(void *arg)
{
	uint64_t t = (uintptr_t)arg, rng = 99 + t, bad = 0;
	for (int k = 0; k < 20000; k++) {
		uint64_t i = upg_t_rand(&rng) % (NPAGES / NTHREADS) * NTHREADS + t;
		bad += upg_t_check(base + i * PS, PS, i, gen[i]) != 0;
		if (k & 1)
			upg_t_fill(base + i * PS, PS, i, ++gen[i]);
	}
	return (void *)(uintptr_t)bad;
}

static void stats(struct upager_stats *st)
{
	st->size = sizeof *st;
	ck_assert_int_eq(upager_stats(up, st), 0);
}

/* Check every page against its generation: how many are wrong. */
static uint64_t check_all(void)
{
	uint64_t bad = 0;
	for (uint64_t i = 0; i < NPAGES; i++)
		bad += upg_t_check(base + i * PS, PS, i, gen[i]) != 0;
	return bad;
}

static uint64_t run_threads(void)
{
	return upg_t_threads_sum(worker, NTHREADS) + check_all();
}

static void print(const char *what, const struct upager_stats *st)
{
	printf("%s: %llu evictions, %llu into the pool (%llu refused), %llu pool hits, %llu store reads, "
	       "%llu spilled, %llu dropped clean, %llu back unwritten, %llu passed over; pool %llu KiB for %llu pages; "
	       "peak %llu KiB of %llu\n", what,
	       (unsigned long long)st->evictions, (unsigned long long)st->pool_puts,
	       (unsigned long long)st->pool_rejects, (unsigned long long)st->pool_hits,
	       (unsigned long long)st->store_reads, (unsigned long long)st->pool_writebacks,
	       (unsigned long long)st->pool_drops, (unsigned long long)st->pool_repools,
	       (unsigned long long)st->pool_skips,
	       (unsigned long long)(st->pool_bytes >> 10),
	       (unsigned long long)st->pool_pages, (unsigned long long)(st->resident_peak >> 10),
	       (unsigned long long)(BUDGET >> 10));
}

static void compressible(const char *compress)
{
	open_fill(compress, 0, 0);
	ck_assert_uint_eq(run_threads(), 0);
	struct upager_stats st;
	stats(&st);
	print(compress, &st);
	ck_assert_uint_gt(st.pool_puts, NPAGES);
	ck_assert_uint_eq(st.pool_skips, 0);  /* they compress: every batch tried */
	ck_assert_uint_gt(st.pool_hits, 1000);
	ck_assert_uint_gt(st.pool_writebacks, 100);  /* 8x the budget does not fit: it spills */
	ck_assert_uint_gt(st.store_reads, 0);        /* and what spilled comes back */
	ck_assert_uint_le(st.resident_peak, BUDGET);
	ck_assert_uint_gt(st.pool_pages, 0);
	/* Compressed: the pool holds more pages than its RAM would as pages. */
	ck_assert_uint_gt(st.pool_pages * PS, st.pool_bytes * 2);
	ck_assert_uint_eq(upager_close(up), 0);
}

START_TEST(test_lz4)
{
	compressible("lz4");
}
END_TEST

START_TEST(test_zstd)
{
#ifdef UPG_HAVE_ZSTD
	compressible("zstd");
#endif
}
END_TEST

/* Pages that do not compress: every one refused, paging as with the pool
 * off. */
START_TEST(test_incompressible)
{
	open_fill("lz4", 1, 0);
	ck_assert_uint_eq(run_threads(), 0);
	struct upager_stats st;
	stats(&st);
	print("incompressible", &st);
	ck_assert_uint_eq(st.pool_puts, 0);
	ck_assert_uint_eq(st.pool_pages, 0);
	ck_assert_uint_eq(st.pool_bytes, 0);
	/* Tried until a few thousand had been refused, then one batch in
	 * eight: the others were passed over. */
	ck_assert_uint_gt(st.pool_rejects, 6000);  /* tries went on, one batch in eight */
	ck_assert_uint_gt(st.pool_skips, NPAGES / 2);
	ck_assert_uint_gt(st.pool_rejects + st.pool_skips, NPAGES);
	ck_assert_uint_gt(st.store_reads, 10000);
	ck_assert_uint_le(st.resident_peak, BUDGET);
	ck_assert_uint_eq(upager_close(up), 0);
	upg_t_data_random(0);
}
END_TEST

/* Read-only passes after one write-back of everything: the pages are
 * clean, and go through the pool and out of it without a write. */
START_TEST(test_clean)
{
	open_fill("lz4", 0, 0);
	uint64_t bad = check_all();
	struct upager_stats a, b;
	stats(&a);
	for (int pass = 0; pass < 3; pass++)
		bad += check_all();
	stats(&b);
	print("read-only", &b);
	ck_assert_uint_eq(bad, 0);
	/* Clean pages are dropped, not compressed (a page with no store copy
	 * goes on between RAM and the pool until it spills). */
	ck_assert_uint_gt(b.clean_drops - a.clean_drops, 2 * NPAGES);
	/* Only pages never written out when the passes began (in RAM or in
	 * the pool) may be written, once. */
	ck_assert_uint_le(b.writebacks - a.writebacks, a.pool_pages + BUDGET / PS);
	ck_assert_uint_le(b.resident_peak, BUDGET);
	ck_assert_uint_eq(upager_close(up), 0);
}
END_TEST

/* Pages read from the pool and not written go back to the objects they
 * came from, not compressed again; a write to one, read or written
 * before it, frees its copy, and it leaves with its new bytes.  Every
 * page checked after each pass. */
START_TEST(test_repool)
{
	open_fill("lz4", 0, 0);
	uint64_t bad = 0;
	struct upager_stats a, b, c;
	stats(&a);
	for (int pass = 0; pass < 2; pass++)
		bad += check_all();
	stats(&b);
	print("read twice", &b);
	ck_assert_uint_eq(bad, 0);
	uint64_t back = b.pool_repools - a.pool_repools, puts = b.pool_puts - a.pool_puts;
	ck_assert_uint_gt(back, 1000);
	/* Only pages that were in RAM, written, when the passes began are
	 * compressed: at most a budget of them. */
	printf("read twice: %llu back unwritten, %llu compressed\n", (unsigned long long)back, (unsigned long long)puts);
	ck_assert_uint_le(puts, BUDGET / PS);
	/* Every third page rewritten, the others read: then every page
	 * checked, twice, so that each has left and come back. */
	for (uint64_t i = 0; i < NPAGES; i++) {
		if (i % 3 == 0)
			upg_t_fill(base + i * PS, PS, i, ++gen[i]);
		else
			bad += upg_t_check(base + i * PS, PS, i, gen[i]) != 0;
	}
	for (int pass = 0; pass < 2; pass++)
		bad += check_all();
	stats(&c);
	print("rewritten a third", &c);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_le(c.resident_peak, BUDGET);
	ck_assert_uint_eq(upager_close(up), 0);
}
END_TEST

/* A stream: pages written in order leave in runs of neighbours, which go
 * to the store untried, whole, and come back by readahead; pages
 * rewritten at random afterwards leave one by one and go to the pool.
 * Every page checked after each pass. */
START_TEST(test_runs)
{
	open_fill("lz4", 0, 1);
	uint64_t bad = 0;
	for (uint64_t i = 0; i < NPAGES; i++) {  /* rewritten in order */
		bad += upg_t_check(base + i * PS, PS, i, gen[i]) != 0;
		upg_t_fill(base + i * PS, PS, i, ++gen[i]);
	}
	bad += check_all();
	struct upager_stats a, b;
	stats(&a);
	print("in order", &a);
	ck_assert_uint_eq(bad, 0);
	/* Two sequential writes of 8 budgets: most dirty pages went untried
	 * (a batch's edges leave short runs, which are tried: 4 to 9% of
	 * them in runs here, 100% before runs went to the store), and the
	 * reads came back in large reads, with readahead. */
	ck_assert_uint_gt(a.pool_skips, NPAGES * 3 / 2);
	ck_assert_uint_lt(a.pool_puts, NPAGES / 4);
	ck_assert_uint_gt(a.readahead_pages, NPAGES);
	ck_assert_uint_le(a.resident_peak, BUDGET);
	uint64_t rng = 5;
	for (int k = 0; k < 20000; k++) {  /* then at random */
		uint64_t i = upg_t_rand(&rng) % NPAGES;
		bad += upg_t_check(base + i * PS, PS, i, gen[i]) != 0;
		upg_t_fill(base + i * PS, PS, i, ++gen[i]);
	}
	bad += check_all();
	stats(&b);
	print("then at random", &b);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_gt(b.pool_puts - a.pool_puts, 10000);
	ck_assert_uint_gt(b.pool_hits - a.pool_hits, 1000);
	ck_assert_uint_le(b.resident_peak, BUDGET);
	ck_assert_uint_eq(upager_close(up), 0);
}
END_TEST

/* Random rewrites of a hot set of 1.2 budgets (0.2 budgets more than
 * RAM holds) after the fill: RAM for pages pays better than a pool, the
 * share falls, and the pool spills down to it. */
START_TEST(test_share_follows)
{
	open_fill("lz4", 0, 0);
	struct upager_stats a, b;
	stats(&a);
	ck_assert_uint_gt(a.pool_share_most, BUDGET / 2 - BUDGET / 100);  /* the default 50%, rounded */
	uint64_t hot = BUDGET * 6 / 5 / PS, rng = 7, bad = 0;
	for (int k = 0; k < 200000; k++) {
		uint64_t i = upg_t_rand(&rng) % hot;
		bad += upg_t_check(base + i * PS, PS, i, gen[i]) != 0;
		upg_t_fill(base + i * PS, PS, i, ++gen[i]);
	}
	stats(&b);  /* before the check of every page, whose reads could move it */
	bad += check_all();
	print("hot set", &b);
	printf("hot set: the pool's share %llu KiB of at most %llu, pool %llu KiB\n",
	       (unsigned long long)(b.pool_share_bytes >> 10), (unsigned long long)(b.pool_share_most >> 10),
	       (unsigned long long)(b.pool_bytes >> 10));
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_lt(b.pool_share_bytes, b.pool_share_most / 2);
	/* The pool followed it down: it wrote pages on, and holds no more
	 * than its share and a spill round (a 16th of it) beside a batch. */
	ck_assert_uint_gt(b.pool_writebacks + b.pool_drops, a.pool_writebacks + a.pool_drops);
	ck_assert_uint_le(b.pool_bytes, b.pool_share_bytes + b.pool_share_bytes / 16 + (1u << 20));
	ck_assert_uint_le(b.resident_peak, BUDGET);
	ck_assert_uint_eq(upager_close(up), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tiers");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lz4);
	tcase_add_test(tc, test_zstd);
	tcase_add_test(tc, test_incompressible);
	tcase_add_test(tc, test_clean);
	tcase_add_test(tc, test_repool);
	tcase_add_test(tc, test_share_follows);
	tcase_add_test(tc, test_runs);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
