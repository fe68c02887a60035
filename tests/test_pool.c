/* SPDX-License-Identifier: MIT */
/*
 * The compressed pool's allocator and codecs (src/pool.c): pages of text
 * and pointers go in and come back byte for byte; poor compressors are
 * refused; the RAM it holds stays within 5% of what its objects need
 * after churn; empty spans give their RAM back; the cold ring gives
 * objects oldest first and skips the dead, and is compacted a little at a
 * time.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "pool.h"
#include "upg_config.h"

#define N 20000

/* A heap-like page: words, numbers and pointers into one region. */
static void heap_page(char *page, uint64_t seed)
{
	static const char *words[] = { "alpha", "beta", "gamma", "delta", "record", "value", "index", "name",
				       "upager", "page", "store", "key", "0123", "field", "=", ";" };
	uint64_t rng = seed * 7919 + 1;
	size_t off = 0;
	while (off + 16 <= 4096) {
		uint64_t r = upg_t_rand(&rng);
		if (r % 3 == 0) {
			/* Pointers to neighbouring objects, as an allocator lays them out. */
			uint64_t ptr = 0x7f3a00000000ULL + seed * 4096 + off * 2 + (r >> 8) % 4 * 16;
			memcpy(page + off, &ptr, 8);
			off += 8;
		} else {
			const char *w = words[r % 16];
			size_t l = strlen(w);
			memcpy(page + off, w, l);
			page[off + l] = ' ';
			off += l + 1;
		}
	}
	memset(page + off, 0, 4096 - off);
}

static void check_algo(int algo)
{
	struct upg_pool p;
	char err[256];
	ck_assert_int_eq(upg_pool_init(&p, algo, 256 << 20, err, sizeof err), 0);
	static char page[4096], back[4096], out[UPG_POOL_BOUND];
	uint32_t *h = calloc(N, sizeof *h);
	uint64_t orig = 0;
	for (uint32_t i = 0; i < N; i++) {
		heap_page(page, i);
		uint32_t clen = upg_pool_compress(&p, page, out);
		ck_assert_uint_gt(clen, 0);
		h[i] = upg_pool_put(&p, out, clen, 1, i);
		ck_assert_uint_ne(h[i], 0);
		orig += 4096;
	}
	double ratio = (double)orig / (double)p.bytes;
	/* Churn: free a random half, put them back. */
	uint64_t rng = 42;
	for (int round = 0; round < 4; round++) {
		for (uint32_t i = 0; i < N; i++)
			if (upg_t_rand(&rng) & 1) {
				upg_pool_free(&p, h[i]);
				h[i] = 0;
			}
		for (uint32_t i = 0; i < N; i++)
			if (!h[i]) {
				heap_page(page, i);
				uint32_t clen = upg_pool_compress(&p, page, out);
				h[i] = upg_pool_put(&p, out, clen, 1, i);
				ck_assert_uint_ne(h[i], 0);
			}
	}
	uint64_t need = 0;
	for (uint32_t i = 0; i < N; i++) {
		uint32_t clen;
		upg_pool_data(&p, h[i], &clen);
		need += 16 + clen;
		heap_page(page, i);
		ck_assert_int_eq(upg_pool_load(&p, h[i], back), 0);
		ck_assert_msg(!memcmp(page, back, 4096), "page %u differs after a round trip", i);
	}
	double waste = (double)(p.bytes - need) / (double)p.bytes;
	printf("%s: %u heap pages, ratio %.2f, %.2f%% of the pool's RAM wasted after churn\n",
	       upg_pool_algo_name(algo), N, ratio, 100 * waste);
	ck_assert_double_lt(waste, 0.05);
	ck_assert_double_gt(ratio, 1.5);

	/* Random bytes do not compress: refused. */
	uint64_t s = 7;
	for (size_t i = 0; i < 4096; i += 8) {
		uint64_t r = upg_t_rand(&s);
		memcpy(page + i, &r, 8);
	}
	ck_assert_uint_eq(upg_pool_compress(&p, page, out), 0);

	/* Emptied through the cold ring. */
	uint32_t hh, seen = 0;
	uint64_t owner, pg;
	while (upg_pool_coldest(&p, &hh, &owner, &pg)) {
		ck_assert_uint_eq(owner, 1);
		ck_assert_uint_eq(hh, h[pg]);
		upg_pool_free(&p, hh);
		seen++;
	}
	ck_assert_uint_eq(seen, N);
	ck_assert_uint_eq(p.objects, 0);
	ck_assert_uint_eq(p.bytes, 0);  /* every span gave its RAM back */
	upg_pool_fini(&p);
	free(h);
}

START_TEST(test_lz4) { check_algo(UPG_POOL_LZ4); }
END_TEST

START_TEST(test_zstd)
{
#ifdef UPG_HAVE_ZSTD
	check_algo(UPG_POOL_ZSTD);
#endif
}
END_TEST

START_TEST(test_names)
{
	int a;
	ck_assert_int_eq(upg_pool_algo_parse("lz4", &a), 0);
	ck_assert_int_eq(a, UPG_POOL_LZ4);
	ck_assert_int_eq(upg_pool_algo_parse(NULL, &a), 0);
	ck_assert_int_eq(a, UPG_POOL_LZ4);
	ck_assert_int_eq(upg_pool_algo_parse("off", &a), 0);
	ck_assert_int_eq(a, UPG_POOL_OFF);
	ck_assert_int_eq(upg_pool_algo_parse("LZ4x", &a), -EINVAL);
}
END_TEST

/* The cold ring returns objects in the order they were put, skipping
 * those freed. */
START_TEST(test_cold_order)
{
	struct upg_pool p;
	char err[256], out[UPG_POOL_BOUND];
	static char page[4096];
	ck_assert_int_eq(upg_pool_init(&p, UPG_POOL_LZ4, 16 << 20, err, sizeof err), 0);
	uint32_t h[100];
	for (uint32_t i = 0; i < 100; i++) {
		heap_page(page, i);
		h[i] = upg_pool_put(&p, out, upg_pool_compress(&p, page, out), 9, i);
	}
	for (uint32_t i = 0; i < 100; i += 3)
		upg_pool_free(&p, h[i]);
	uint32_t hh;
	uint64_t owner, pg;
	for (uint32_t i = 0; i < 100; i++) {
		if (i % 3 == 0)
			continue;
		ck_assert(upg_pool_coldest(&p, &hh, &owner, &pg));
		ck_assert_uint_eq(pg, i);
		ck_assert_uint_eq(hh, h[i]);
		ck_assert_uint_eq(owner, 9);
	}
	ck_assert(!upg_pool_coldest(&p, &hh, &owner, &pg));
	upg_pool_fini(&p);
}
END_TEST

/* The cold ring's compaction goes a few entries a push, not all at once
 * (it held the runtime's lock for 15 to 18 ms at 100K objects), and keeps
 * the order: after many touches, with the coldest taken off and put back
 * now and then, every object comes back, by its latest touch; the ring's
 * memory stays bounded. */
START_TEST(test_ring_compaction)
{
	struct upg_pool p;
	char err[256], out[UPG_POOL_BOUND];
	static char page[4096];
	ck_assert_int_eq(upg_pool_init(&p, UPG_POOL_LZ4, 64 << 20, err, sizeof err), 0);
	enum { M = 5000, T = 100000 };
	static uint32_t h[M];
	static uint64_t last[M];  /* when each object's newest entry was pushed */
	static bool seen[M];
	heap_page(page, 1);
	uint32_t clen = upg_pool_compress(&p, page, out);
	for (uint32_t i = 0; i < M; i++) {
		h[i] = upg_pool_put(&p, out, clen, 7, i);
		ck_assert_uint_ne(h[i], 0);
		last[i] = i;
	}
	uint64_t rng = 5, clock = M, during = 0, starts = 0, most = 0, early = 0;
	uint32_t hh;
	uint64_t owner, pg;
	for (uint32_t t = 0; t < T; t++) {
		bool was = p.ring_compacting;
		if (t % 10 == 9) {
			/* As a spill round does: the coldest off (64 in a row now
			 * and then), each the oldest left, then back on. */
			static uint32_t took[64];
			uint32_t k = t % 1000 == 999 ? 64 : 1;
			for (uint32_t j = 0; j < k; j++) {
				ck_assert(upg_pool_coldest(&p, &hh, &owner, &pg));
				ck_assert_uint_eq(hh, h[pg]);
				uint64_t min = UINT64_MAX;
				for (uint32_t i = 0; i < M; i++)
					min = last[i] < min ? last[i] : min;
				early += last[pg] != min;
				last[pg] = UINT64_MAX;  /* off the ring */
				took[j] = (uint32_t)pg;
			}
			for (uint32_t j = 0; j < k; j++) {
				upg_pool_touch(&p, h[took[j]]);
				last[took[j]] = clock++;
			}
		} else {
			uint32_t i = (uint32_t)(upg_t_rand(&rng) % M);
			upg_pool_touch(&p, h[i]);
			last[i] = clock++;
		}
		if (p.ring_compacting) {
			during++;
			starts += !was;
		}
		most = p.ring_tail > most ? p.ring_tail : most;
	}
	/* End with a compaction under way, far from done: the drain then
	 * goes through the entries not looked at yet. */
	for (uint32_t t = 0; (!p.ring_compacting || p.ring_cs - p.ring_head < 1000) && t < 4 * T; t++) {
		uint32_t i = (uint32_t)(upg_t_rand(&rng) % M);
		upg_pool_touch(&p, h[i]);
		last[i] = clock++;
	}
	ck_assert(p.ring_compacting);
	printf("ring: %llu taken off out of order during the run\n", (unsigned long long)early);
	ck_assert_uint_le(early, M / 100);
	printf("ring: %llu compactions over %llu pushes, the ring's end at most %llu entries for %u objects\n",
	       (unsigned long long)starts, (unsigned long long)during, (unsigned long long)most, M);
	ck_assert_uint_gt(starts, 2);
	ck_assert_uint_gt(during, starts * 1000);  /* each one over many pushes */
	/* It starts past 1.5 times the objects and 8192, and shrinks what is
	 * left to look at by UPG_POOL_RING_STEP - 1 a push. */
	ck_assert_uint_le(most, (M + M / 2 + 8192) * UPG_POOL_RING_STEP / (UPG_POOL_RING_STEP - 1) + 16);
	/* Oldest first: a dead entry taken for live (its object's 12-bit
	 * generation come round again, 1 in 4096) comes early, once; any
	 * other disorder would show in many places. */
	uint64_t prev = 0, descents = 0, n = 0;
	while (upg_pool_coldest(&p, &hh, &owner, &pg)) {
		ck_assert_uint_eq(owner, 7);
		ck_assert_uint_lt(pg, M);
		ck_assert_uint_eq(hh, h[pg]);
		descents += n && last[pg] < prev;
		prev = last[pg];
		seen[pg] = true;
		n++;
	}
	printf("ring: %llu objects came back, %llu out of order\n", (unsigned long long)n, (unsigned long long)descents);
	for (uint32_t i = 0; i < M; i++)
		ck_assert_msg(seen[i], "object %u never came back off the ring", i);
	ck_assert_uint_le(descents, M / 100);
	upg_pool_fini(&p);
}
END_TEST

static bool follow(void *arg, uint64_t owner, uint64_t page, uint32_t from, uint32_t to)
{
	uint32_t *h = arg;
	if (h[page] != from)
		return false;
	h[page] = to;
	return true;
}

/* Free three objects in four at random: the spans stay part-filled until
 * compaction packs them; every page still reads back. */
START_TEST(test_compact)
{
	struct upg_pool p;
	char err[256], out[UPG_POOL_BOUND];
	static char page[4096], back[4096];
	ck_assert_int_eq(upg_pool_init(&p, UPG_POOL_LZ4, 256 << 20, err, sizeof err), 0);
	uint32_t *h = calloc(N, sizeof *h);
	for (uint32_t i = 0; i < N; i++) {
		heap_page(page, i);
		h[i] = upg_pool_put(&p, out, upg_pool_compress(&p, page, out), 1, i);
	}
	uint64_t rng = 3;
	for (uint32_t i = 0; i < N; i++)
		if (upg_t_rand(&rng) % 4) {
			upg_pool_free(&p, h[i]);
			h[i] = 0;
		}
	uint64_t need = p.payload + 16 * p.objects, frag = p.bytes;
	uint64_t got = upg_pool_compact(&p, UINT32_MAX, follow, h);
	printf("compaction: %llu KiB for %llu KiB of objects, %llu KiB after (%llu given back)\n",
	       (unsigned long long)(frag >> 10), (unsigned long long)(need >> 10),
	       (unsigned long long)(p.bytes >> 10), (unsigned long long)(got >> 10));
	ck_assert_uint_eq(got, frag - p.bytes);
	ck_assert_uint_gt(frag, need * 2);            /* fragmented before */
	ck_assert_uint_lt(p.bytes, need + need / 10);  /* packed after */
	for (uint32_t i = 0; i < N; i++) {
		if (!h[i])
			continue;
		heap_page(page, i);
		ck_assert_int_eq(upg_pool_load(&p, h[i], back), 0);
		ck_assert_msg(!memcmp(page, back, 4096), "page %u differs after compaction", i);
	}
	upg_pool_fini(&p);
	free(h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_cold_order);
	tcase_add_test(tc, test_ring_compaction);
	tcase_add_test(tc, test_lz4);
	tcase_add_test(tc, test_zstd);
	tcase_add_test(tc, test_compact);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
