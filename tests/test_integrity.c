/* SPDX-License-Identifier: MIT */
/*
 * Integrity under pressure: a region 8x the budget is filled, then 8 threads
 * (on 2 cores) do random read-modify-write.  Each access checks the whole
 * page against the pattern of its current generation and rewrites it with
 * the next one, so every eviction and refault on the way is verified; at the
 * end every page is checked.  Run for each policy x page size x handler
 * thread count.
 *
 * Clean and changed pages: pages read back from the store go in writable,
 * and the evictor tells the ones that still match their store copy by its
 * digests.  Pages only read, or rewritten with the same bytes, are dropped
 * without a write; a page with one byte changed anywhere is written back,
 * and reads back with that byte.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define THREADS 8

static const char *policies[] = { "fifo", "clock", "s3fifo" };
static const uint32_t page_sizes[] = { 4096, 65536 };
static const uint32_t handler_counts[] = { 1, 2 };
#define COMBOS (3 * 2 * 2)

struct worker {
	char *base;
	uint32_t psize;
	uint64_t npages;
	uint32_t *gen;      /* per page, in ordinary memory; each thread owns page % THREADS */
	unsigned id;
	uint64_t accesses;
	uint64_t bad;
	int skewed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = 1000 + w->id;
	for (uint64_t i = 0; i < w->accesses; i++) {
		uint64_t pick = w->skewed ? upg_t_skewed(&seed, w->npages / THREADS)
					  : upg_t_rand(&seed) % (w->npages / THREADS);
		uint64_t pg = pick * THREADS + w->id;
		char *p = w->base + pg * w->psize;
		size_t off = upg_t_check(p, w->psize, pg, w->gen[pg]);
		if (off) {
			if (w->bad++ < 3)
				fprintf(stderr, "thread %u: page %llu gen %u wrong at byte %zu\n", w->id,
					(unsigned long long)pg, w->gen[pg], off - 1);
			continue;
		}
		upg_t_fill(p, w->psize, pg, ++w->gen[pg]);
	}
	return NULL;
}

START_TEST(pressure)
{
	const char *policy = policies[_i % 3];
	uint32_t psize = page_sizes[(_i / 3) % 2];
	uint32_t handlers = handler_counts[_i / 6];
	uint64_t budget = 4ULL << 20, bytes = budget * 8;
	printf("integrity: policy %s, page %u, %u handler thread(s)\n", policy, psize, handlers);

	upager_t *up = upg_t_open(budget, 4096, policy, handlers);
	struct upager_map_opts mo = { .size = sizeof mo, .page_size = psize };
	void *mem;
	ck_assert_int_eq(upager_map(up, bytes, &mo, &mem), 0);
	char *base = mem;
	uint64_t npages = bytes / psize;
	uint32_t *gen = calloc(npages, sizeof *gen);
	for (uint64_t pg = 0; pg < npages; pg++)
		upg_t_fill(base + pg * psize, psize, pg, 0);

	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_le(st.resident_peak, budget);

	pthread_t t[THREADS];
	struct worker w[THREADS];
	uint64_t accesses = upg_t_scale(psize == 4096 ? 3000 : 400);
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .base = base, .psize = psize, .npages = npages, .gen = gen, .id = i,
					.accesses = accesses, .skewed = i % 2 };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	uint64_t bad = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	ck_assert_uint_eq(bad, 0);

	for (uint64_t pg = 0; pg < npages; pg++) {
		size_t off = upg_t_check(base + pg * psize, psize, pg, gen[pg]);
		if (off)
			ck_abort_msg("final check: page %llu (gen %u) wrong at byte %zu", (unsigned long long)pg, gen[pg],
				     off - 1);
	}
	ck_assert_int_eq(upager_stats(up, &st), 0);
	printf("  store reads %llu, evictions %llu, writebacks %llu, clean drops %llu, resident peak %llu\n",
	       (unsigned long long)st.store_reads, (unsigned long long)st.evictions,
	       (unsigned long long)st.writebacks, (unsigned long long)st.clean_drops,
	       (unsigned long long)st.resident_peak);
	ck_assert_uint_gt(st.store_reads, 0);
	ck_assert_uint_gt(st.writebacks, 0);
	/* The budget holds: no slack is needed with a healthy store. */
	ck_assert_uint_le(st.resident_peak, budget);
	ck_assert_uint_eq(st.overshoot_peak, 0);
	ck_assert_int_eq(upager_unmap(up, mem), 0);
	ck_assert_int_eq(upager_stats(up, &st), 0);
	ck_assert_uint_eq(st.resident_bytes, 0);
	ck_assert_uint_eq(st.store_slots_used, 0);
	upager_close(up);
	free(gen);
}
END_TEST

/* poked[pg]: 0, or the offset + 1 of the byte changed, with the byte
 * written there in bits 24 to 31. */
static uint64_t sweep(const char *base, uint64_t npages, uint32_t psize, const uint32_t *poked)
{
	static char want[65536];
	uint64_t bad = 0;
	for (uint64_t pg = 0; pg < npages; pg++) {
		const char *p = base + pg * psize;
		upg_t_fill(want, psize, pg, 1);
		if (poked[pg])
			want[(poked[pg] & 0xffffff) - 1] = (char)(poked[pg] >> 24);
		if (memcmp(p, want, psize) && bad++ < 3)
			fprintf(stderr, "clean_and_changed_pages: page %llu wrong%s\n", (unsigned long long)pg,
				poked[pg] ? " (one byte changed)" : "");
	}
	return bad;
}

START_TEST(clean_and_changed_pages)
{
	uint32_t psize = page_sizes[_i];
	uint64_t budget = 1ULL << 20, npages = budget * 8 / psize;
	/* FIFO: a sweep through 8 times the budget evicts every page (S3-FIFO
	 * would rightly keep its main queue through a scan). */
	upager_t *up = upg_t_open(budget, psize, "fifo", 1);
	void *mem;
	ck_assert_int_eq(upager_map(up, budget * 8, NULL, &mem), 0);
	char *base = mem;
	uint32_t *poked = calloc(npages, sizeof *poked);
	for (uint64_t pg = 0; pg < npages; pg++)
		upg_t_fill(base + pg * psize, psize, pg, 1);
	/* Read everything twice: every page comes back from the store and
	 * leaves again, and none is written. */
	struct upager_stats a = { .size = sizeof a }, b = { .size = sizeof b };
	for (int pass = 0; pass < 2; pass++)
		ck_assert_uint_eq(sweep(base, npages, psize, poked), 0);
	ck_assert_int_eq(upager_stats(up, &a), 0);
	for (int pass = 0; pass < 2; pass++)
		ck_assert_uint_eq(sweep(base, npages, psize, poked), 0);
	ck_assert_int_eq(upager_stats(up, &b), 0);
	printf("clean_and_changed_pages, page %u: reads only: %llu evictions, %llu written, %llu clean drops, "
	       "%llu into the compressed pool\n",
	       psize, (unsigned long long)(b.evictions - a.evictions), (unsigned long long)(b.writebacks - a.writebacks),
	       (unsigned long long)(b.clean_drops - a.clean_drops), (unsigned long long)(b.pool_puts - a.pool_puts));
	/* A clean page leaves without I/O: dropped, or compressed into the
	 * pool, which drops it in turn when it makes room. */
	ck_assert_uint_gt(b.clean_drops - a.clean_drops + b.pool_puts - a.pool_puts, npages);
	/* Without the pool nothing is written.  With it, pages it took at the
	 * fill never had a store copy: when it is full (fragmented spans
	 * passing its share) some of them go to the store, from the pool or
	 * on their way back to it; at most what it and RAM held of them. */
	uint64_t written = b.writebacks - a.writebacks;
	if (!b.pool_puts)
		ck_assert_uint_eq(written, 0);
	else
		ck_assert_uint_le(written, a.pool_pages + budget / psize);

	/* Every third page gets one byte changed, at a place that moves
	 * through the page; every other page is rewritten with what it holds. */
	uint64_t changed = 0;
	ck_assert_int_eq(upager_stats(up, &a), 0);
	for (uint64_t pg = 0; pg < npages; pg++) {
		char *p = base + pg * psize;
		if (pg % 3 == 0) {
			size_t at = (size_t)(pg * 4099 % psize);
			unsigned char mark = (unsigned char)(0xa5 ^ pg);
			if ((unsigned char)p[at] == mark)
				mark ^= 0x01;  /* never the byte it held: a real change */
			p[at] = (char)mark;
			poked[pg] = (uint32_t)(at + 1) | (uint32_t)mark << 24;
			changed++;
		} else {
			volatile char *v = p;
			v[psize / 2] = v[psize / 2];  /* a real write of the same byte */
		}
	}
	for (int pass = 0; pass < 2; pass++)
		ck_assert_uint_eq(sweep(base, npages, psize, poked), 0);
	ck_assert_int_eq(upager_stats(up, &b), 0);
	printf("  after %llu pages changed: %llu written, %llu clean drops, %llu write-protect faults\n",
	       (unsigned long long)changed, (unsigned long long)(b.writebacks - a.writebacks),
	       (unsigned long long)(b.clean_drops - a.clean_drops), (unsigned long long)(b.wp_faults - a.wp_faults));
	/* Each changed page out once, as it was before the sweeps; none of
	 * the others.  With the compressed pool a changed page may go there
	 * instead (and be written later, or not), and a page that was in the
	 * pool with no store copy when the sweeps began is written when it
	 * spills. */
	if (b.pool_puts == a.pool_puts && a.pool_pages == 0)
		ck_assert_uint_eq(b.writebacks - a.writebacks, changed);
	else
		ck_assert_uint_le(b.writebacks - a.writebacks, changed + a.pool_pages);
	upager_close(up);
	free(poked);
}
END_TEST

/* Two regions with different page sizes share one budget. */
START_TEST(two_regions)
{
	uint64_t budget = 4ULL << 20;
	upager_t *up = upg_t_open(budget, 4096, NULL, 1);
	struct upager_map_opts big = { .size = sizeof big, .page_size = 65536 };
	void *a, *b;
	ck_assert_int_eq(upager_map(up, budget * 3, NULL, &a), 0);
	ck_assert_int_eq(upager_map(up, budget * 3, &big, &b), 0);
	for (uint64_t pg = 0; pg < budget * 3 / 4096; pg++)
		upg_t_fill((char *)a + pg * 4096, 4096, pg, 1);
	for (uint64_t pg = 0; pg < budget * 3 / 65536; pg++)
		upg_t_fill((char *)b + pg * 65536, 65536, pg, 2);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t pg = 0; pg < budget * 3 / 4096; pg++)
			ck_assert_uint_eq(upg_t_check((char *)a + pg * 4096, 4096, pg, 1), 0);
		for (uint64_t pg = 0; pg < budget * 3 / 65536; pg++)
			ck_assert_uint_eq(upg_t_check((char *)b + pg * 65536, 65536, pg, 2), 0);
	}
	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	ck_assert_uint_eq(st.regions, 2);
	ck_assert_uint_le(st.resident_peak, budget);
	upager_close(up);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("integrity");
	TCase *tc = tcase_create("pressure");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, pressure, 0, COMBOS);
	tcase_add_test(tc, two_regions);
	tcase_add_loop_test(tc, clean_and_changed_pages, 0, 2);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
