/* SPDX-License-Identifier: MIT */
/*
 * Discards and address-space changes made behind the runtime's back, as an
 * application or its allocator makes them: madvise(MADV_DONTNEED),
 * upager_advise(UPAGER_ADV_DONTNEED), munmap() of part of a region, and
 * mprotect().  Each must leave the runtime's state matching the memory:
 * discarded pages read as zeros and give their store slots back, everything
 * else keeps its data through eviction and refault.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"
#include "uffd.h"
#include "upager.h"

#define MIB (1ULL << 20)
#define BUDGET (4 * MIB)
#define REGION (4 * BUDGET)

static upager_t *up;
static char *base;
static uint32_t ps;
static uint64_t npages;
static uint32_t *gen;   /* expected generation per page; 0: zeros */

static void stats(struct upager_stats *st)
{
	memset(st, 0, sizeof *st);
	st->size = sizeof *st;
	ck_assert_int_eq(upager_stats(up, st), 0);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Wait until the evictor has finished: resident within the budget and no
 * eviction for a while.  Counts of evicted pages are exact only then. */
static void wait_idle(void)
{
	struct upager_stats a, b;
	for (int i = 0; i < 250; i++) {
		stats(&a);
		sleep_ms(20);
		stats(&b);
		if (a.evictions == b.evictions && a.writebacks == b.writebacks && a.zero_fills == b.zero_fills &&
		    b.resident_bytes <= b.ram_budget)
			return;
	}
	ck_abort_msg("the evictor did not settle in 5 s (resident %llu, budget %llu)",
		     (unsigned long long)b.resident_bytes, (unsigned long long)b.ram_budget);
}

/* Pages of [first, first+n) of which no 4 KiB part is present: evicted. */
static uint64_t count_evicted(uint64_t first, uint64_t n)
{
	size_t sub = ps / 4096, len = n * ps;
	unsigned char *vec = malloc(len / 4096);
	ck_assert_ptr_nonnull(vec);
	ck_assert_int_eq(mincore(base + first * ps, len, vec), 0);
	uint64_t out = 0;
	for (uint64_t i = 0; i < n; i++) {
		int any = 0;
		for (size_t q = 0; q < sub; q++)
			any |= vec[i * sub + q] & 1;
		out += !any;
	}
	free(vec);
	return out;
}

static void check_page(uint64_t i, const char *what)
{
	const char *p = base + i * ps;
	if (!gen[i]) {
		ck_assert_msg(upg_t_is_zero(p, ps), "%s: page %llu should read as zeros", what, (unsigned long long)i);
		return;
	}
	size_t bad = upg_t_check(p, ps, i, gen[i]);
	ck_assert_msg(!bad, "%s: page %llu (gen %u) differs at byte %zu", what, (unsigned long long)i, gen[i],
		      bad - 1);
}

static void check_range(uint64_t first, uint64_t n, const char *what)
{
	for (uint64_t i = first; i < first + n; i++)
		check_page(i, what);
}

static void fill_range(uint64_t first, uint64_t n, uint32_t g)
{
	for (uint64_t i = first; i < first + n; i++) {
		upg_t_fill(base + i * ps, ps, i, g);
		gen[i] = g;
	}
}

/* Read-verify the pages outside [first, first+n) (skipping holes) until a
 * page of that range has been evicted; s3fifo resists one scan, so this may
 * take a few passes.  Writes a new generation on odd passes so that there is
 * dirty data to push. */
static void push_out(uint64_t first, uint64_t n, uint64_t hole_first, uint64_t hole_n, const char *what)
{
	for (int pass = 0; pass < 8; pass++) {
		for (uint64_t i = 0; i < npages; i++) {
			if ((i >= first && i < first + n) || (i >= hole_first && i < hole_first + hole_n))
				continue;
			check_page(i, what);
			if (pass & 1) {
				upg_t_fill(base + i * ps, ps, i, gen[i] + 1);
				gen[i]++;
			}
		}
		if (count_evicted(first, n) > 0)
			return;
	}
	ck_abort_msg("%s: no page of [%llu, %llu) was evicted after 8 passes", what, (unsigned long long)first,
		     (unsigned long long)(first + n));
}

static void open_map(uint32_t psize)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET;
	cfg.handler_threads = 2;
	cfg.log = upg_t_log;
	cfg.log_level = UPAGER_LOG_WARN;
	char err[512];
	upg_t_config_env(&cfg);
	int rc = upager_open(&cfg, &up, err, sizeof err);
	ck_assert_msg(rc == 0, "upager_open: %s (%s)", err, strerror(-rc));
	struct upager_map_opts o = { .size = sizeof o, .page_size = psize };
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, REGION, &o, &a), 0);
	base = a;
	ps = psize;
	npages = REGION / psize;
	gen = calloc(npages, sizeof *gen);
	ck_assert_ptr_nonnull(gen);
	fill_range(0, npages, 1);
	wait_idle();
	struct upager_stats st;
	stats(&st);
	ck_assert_msg(st.evictions > 0 && st.writebacks > 0, "filling 4x the budget evicted nothing");
}

static void setup_4k(void)
{
	open_map(4096);
}

static void setup_empty(void)
{
	up = upg_t_open(BUDGET, 0, NULL, 2);
	base = NULL;
	ps = 4096;
	gen = NULL;
}

static void setup_64k(void)
{
	open_map(65536);
}

static void setup_none(void)
{
	up = NULL;
	base = NULL;
	gen = NULL;
}

static void teardown(void)
{
	if (up) {
		if (base)
			ck_assert_int_eq(upager_unmap(up, base), 0);
		ck_assert_int_eq(upager_close(up), 0);
	}
	up = NULL;
	base = NULL;
	free(gen);
	gen = NULL;
}

/*
 * Discard [first, first+n) with madvise() or upager_advise() and check what
 * the runtime did before the call returned, then the contents.
 */
static void discard_and_check(uint64_t first, uint64_t n, int use_api)
{
	const char *how = use_api ? "upager_advise(DONTNEED)" : "madvise(MADV_DONTNEED)";
	wait_idle();
	uint64_t evicted = count_evicted(first, n);
	uint64_t resident = n - evicted;
	ck_assert_msg(evicted > 0 && resident > 0,
		      "the range should hold evicted and resident pages (evicted %llu, resident %llu)",
		      (unsigned long long)evicted, (unsigned long long)resident);

	struct upager_stats s0, s1;
	stats(&s0);
	if (use_api)
		ck_assert_int_eq(upager_advise(up, base + first * ps, n * ps, UPAGER_ADV_DONTNEED), 0);
	else
		ck_assert_int_eq(madvise(base + first * ps, n * ps, MADV_DONTNEED), 0);
	/* No waiting: the REMOVE event is handled before the call returns.
	 * Checked at the end, so that a failure here does not hide the rest. */
	stats(&s1);
	uint64_t at_return = s1.discards - s0.discards;
	for (int i = 0; i < 500 && s1.discards - s0.discards < n; i++) {
		sleep_ms(10);
		stats(&s1);
	}
	ck_assert_msg(s1.discards - s0.discards == n, "%s of %llu pages: %llu discards counted", how,
		      (unsigned long long)n, (unsigned long long)(s1.discards - s0.discards));
	/* Each evicted page's copy is freed: store blocks, or (4 KiB pages)
	 * its object in the compressed pool. */
	uint64_t blocks = ps / 4096;
	ck_assert_msg(s0.store_slots_used + s0.pool_pages >= s1.store_slots_used + s1.pool_pages &&
			      s0.store_slots_used + s0.pool_pages - s1.store_slots_used - s1.pool_pages >=
				      evicted * blocks,
		      "%s: store_slots_used went from %llu to %llu and pool pages from %llu to %llu; %llu evicted "
		      "pages (%llu blocks) were discarded", how, (unsigned long long)s0.store_slots_used,
		      (unsigned long long)s1.store_slots_used, (unsigned long long)s0.pool_pages,
		      (unsigned long long)s1.pool_pages, (unsigned long long)evicted,
		      (unsigned long long)(evicted * blocks));
	ck_assert_msg(s0.resident_bytes - s1.resident_bytes >= resident * ps,
		      "%s: resident bytes went from %llu to %llu; %llu resident pages were discarded", how,
		      (unsigned long long)s0.resident_bytes, (unsigned long long)s1.resident_bytes,
		      (unsigned long long)resident);

	for (uint64_t i = first; i < first + n; i++)
		gen[i] = 0;
	check_range(first, n, "discarded range");
	check_range(0, first, "below the discarded range");
	check_range(first + n, npages - first - n, "above the discarded range");

	/* The zeros survive eviction, and the range can be used again. */
	push_out(first, n, 0, 0, "after discard");
	check_range(first, n, "discarded range after eviction");
	fill_range(first, n, 7);
	push_out(first, n, 0, 0, "after refill");
	check_range(0, npages, "everything after refill and eviction");

	ck_assert_msg(at_return == n,
		      "%s of %llu pages returned before the runtime handled it: %llu discards counted at return",
		      how, (unsigned long long)n, (unsigned long long)at_return);
}

START_TEST(test_madvise_dontneed)
{
	/* The newest half: its start was evicted, its end is resident. */
	discard_and_check(npages / 2, npages / 2 - npages / 64, 0);
}
END_TEST

START_TEST(test_advise_dontneed)
{
	discard_and_check(npages / 2, npages / 2 - npages / 64, 1);
}
END_TEST

/* Many small discards of just-written pages, each checked as soon as
 * madvise() returns: a race between the return and the handler would show. */
START_TEST(test_madvise_counts_immediately)
{
	uint64_t n = 16;
	for (int round = 0; round < 64; round++) {
		uint64_t first = (uint64_t)round * n % (npages - n);
		fill_range(first, n, 3);
		struct upager_stats s0, s1;
		stats(&s0);
		ck_assert_int_eq(madvise(base + first * ps, n * ps, MADV_DONTNEED), 0);
		stats(&s1);
		ck_assert_msg(s1.discards - s0.discards >= n,
			      "round %d: madvise(MADV_DONTNEED) of %llu pages returned with %llu discards counted",
			      round, (unsigned long long)n, (unsigned long long)(s1.discards - s0.discards));
		for (uint64_t i = first; i < first + n; i++)
			gen[i] = 0;
		check_range(first, n, "just discarded");
	}
	check_range(0, npages, "after many small discards");
}
END_TEST

/* munmap() of part of a region: the UNMAP event drops that range's state. */
START_TEST(test_munmap_part)
{
	uint64_t first = npages / 4, n = npages / 2;
	wait_idle();
	uint64_t evicted = count_evicted(first, n);
	ck_assert_msg(evicted > 0, "nothing to unmap was evicted");
	struct upager_stats s0, s1;
	stats(&s0);
	ck_assert_int_eq(munmap(base + first * ps, n * ps), 0);
	stats(&s1);
	/* The UNMAP event is read before munmap() returns; give the handler a
	 * moment in case it is counted just after. */
	for (int i = 0; i < 500 && s1.discards - s0.discards < n; i++) {
		sleep_ms(10);
		stats(&s1);
	}
	ck_assert_msg(s1.discards - s0.discards == n, "munmap of %llu pages: %llu discards counted",
		      (unsigned long long)n, (unsigned long long)(s1.discards - s0.discards));
	ck_assert_msg(s0.store_slots_used + s0.pool_pages - s1.store_slots_used - s1.pool_pages >=
			      evicted * (ps / 4096),
		      "munmap: store_slots_used went from %llu to %llu and pool pages from %llu to %llu; %llu "
		      "evicted pages were unmapped", (unsigned long long)s0.store_slots_used,
		      (unsigned long long)s1.store_slots_used, (unsigned long long)s0.pool_pages,
		      (unsigned long long)s1.pool_pages, (unsigned long long)evicted);
	ck_assert_int_eq(upager_owns(up, base), 1);

	/* The rest keeps its data under pressure, on both sides of the hole. */
	check_range(0, first, "below the hole");
	check_range(first + n, npages - first - n, "above the hole");
	push_out(0, first, first, n, "below the hole");
	check_range(0, first, "below the hole after eviction");
	push_out(first + n, npages - first - n, first, n, "above the hole");
	check_range(first + n, npages - first - n, "above the hole after eviction");
	check_range(0, first, "below the hole at the end");
	/* The slots of the unmapped range stay free. */
	struct upager_stats s2;
	stats(&s2);
	ck_assert_msg(s2.store_slots_used <= (npages - n) * (ps / 4096),
		      "%llu store blocks used for %llu mapped pages", (unsigned long long)s2.store_slots_used,
		      (unsigned long long)(npages - n));
}
END_TEST

/* munmap() or mprotect() of part of a region that was never touched (a
 * guard page, say), then first touches right next to it: fault-around must
 * stay inside the VMA of the faulting page. */
static void hole_then_touch_edges(int use_mprotect)
{
	void *a = NULL;
	uint64_t n = 1024;
	ck_assert_int_eq(upager_map(up, n * ps, NULL, &a), 0);
	char *r = a;
	uint64_t hole = 100, hole_n = 10; /* pages [100, 110), inside one fault-around cluster */
	if (use_mprotect)
		ck_assert_int_eq(mprotect(r + hole * ps, hole_n * ps, PROT_NONE), 0);
	else
		ck_assert_int_eq(munmap(r + hole * ps, hole_n * ps), 0);
	/* The edges first: each is the first touch of a fault-around cluster
	 * that borders the hole. */
	upg_t_fill(r + (hole - 1) * ps, ps, hole - 1, 5);
	upg_t_fill(r + (hole + hole_n) * ps, ps, hole + hole_n, 5);
	for (uint64_t i = 0; i < n; i++)
		if ((i < hole - 1 || i > hole + hole_n))
			upg_t_fill(r + i * ps, ps, i, 5);
	for (uint64_t i = 0; i < n; i++) {
		if (i >= hole && i < hole + hole_n)
			continue;
		size_t bad = upg_t_check(r + i * ps, ps, i, 5);
		ck_assert_msg(!bad, "page %llu of the holed region differs at %zu", (unsigned long long)i, bad - 1);
	}
	if (use_mprotect) {
		/* The guard comes off: zeros, then usable. */
		ck_assert_int_eq(mprotect(r + hole * ps, hole_n * ps, PROT_READ | PROT_WRITE), 0);
		ck_assert(upg_t_is_zero(r + hole * ps, hole_n * ps));
		for (uint64_t i = hole; i < hole + hole_n; i++)
			upg_t_fill(r + i * ps, ps, i, 5);
		for (uint64_t i = 0; i < n; i++)
			ck_assert_msg(!upg_t_check(r + i * ps, ps, i, 5), "page %llu differs", (unsigned long long)i);
	}
	ck_assert_int_eq(upager_unmap(up, r), 0);
}

START_TEST(test_munmap_untouched_then_touch_edges)
{
	hole_then_touch_edges(0);
}
END_TEST

START_TEST(test_mprotect_untouched_then_touch_edges)
{
	hole_then_touch_edges(1);
}
END_TEST

/* upager_advise(DONTNEED) on a range that does not start or end on a page
 * boundary: the range reads as zeros, and not one byte outside it changes
 * (an allocator freeing part of a page must not lose its neighbours). */
START_TEST(test_advise_unaligned_keeps_neighbours)
{
	void *a = NULL;
	size_t len = 16 * 4096;
	ck_assert_int_eq(upager_map(up, len, NULL, &a), 0);
	unsigned char *r = a;
	memset(r, 0xab, len);
	size_t off = 4096 + 100, n = 2 * 4096; /* [4196, 12388): ends inside page 3 */
	ck_assert_int_eq(upager_advise(up, r + off, n, UPAGER_ADV_DONTNEED), 0);
	ck_assert_msg(upg_t_is_zero(r + off, n), "the advised range does not read as zeros");
	for (size_t i = 0; i < len; i++) {
		if (i >= off && i < off + n)
			continue;
		ck_assert_msg(r[i] == 0xab, "byte %zu, outside the advised range [%zu, %zu), changed to %#x", i, off,
			      off + n, r[i]);
	}
	ck_assert_int_eq(upager_unmap(up, r), 0);
}
END_TEST

/* mprotect(PROT_READ) over part of the region: its pages are evicted and
 * faulted back while read-only; then writable again. */
START_TEST(test_mprotect_readonly_under_pressure)
{
	uint64_t first = npages / 4, n = npages / 8; /* half the budget */
	ck_assert_int_eq(mprotect(base + first * ps, n * ps, PROT_READ), 0);
	struct upager_stats s0, s1;
	stats(&s0);
	for (int round = 0; round < 3; round++) {
		check_range(first, n, "read-only range");
		/* Push it out by writing the rest. */
		push_out(first, n, 0, 0, "read-only range");
		ck_assert_msg(count_evicted(first, n) > 0, "no read-only page was evicted");
	}
	check_range(first, n, "read-only range after eviction");
	stats(&s1);
	ck_assert_msg(s1.store_reads > s0.store_reads, "read-only pages were never faulted back from the store");

	ck_assert_int_eq(mprotect(base + first * ps, n * ps, PROT_READ | PROT_WRITE), 0);
	fill_range(first, n, 9);
	check_range(first, n, "formerly read-only range after writing");
	push_out(first, n, 0, 0, "formerly read-only range");
	check_range(0, npages, "everything after mprotect back and eviction");
}
END_TEST

/* 64 KiB pages: discard whole pages. */
START_TEST(test_64k_discard_whole_pages)
{
	ck_assert_uint_eq(npages, 256);
	discard_and_check(npages / 2, npages / 2 - 8, 0);
}
END_TEST

START_TEST(test_64k_advise_whole_pages)
{
	discard_and_check(npages / 2, npages / 2 - 8, 1);
}
END_TEST

/* The helpers under those copies, on a bare userfaultfd: one UFFDIO_COPY
 * (or UFFDIO_POISON) cannot span mappings, so a 64 KiB range with a 4 KiB
 * part read-only fails as a whole (ENOENT), and upg_uffd_copy_page() and
 * upg_uffd_poison() go 4 KiB at a time. */
static void read_byte(void *p)
{
	(void)*(volatile char *)p;
}

/* How many of the 4 KiB parts of [p, p + len) raise SIGBUS when read. */
static int count_bus(char *p, size_t len)
{
	int bus = 0;
	for (size_t off = 0; off < len; off += 4096)
		bus += upg_t_sigbus(read_byte, p + off);
	return bus;
}

START_TEST(test_uffd_split_range)
{
	int fd;
	uint64_t features;
	char err[256];
	ck_assert_msg(upg_uffd_open(&fd, &features, err, sizeof err) == 0, "%s", err);
	size_t len = 2 * 65536;
	char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(a, MAP_FAILED);
	ck_assert_int_eq(upg_uffd_register(fd, (uintptr_t)a, len, false), 0);
	ck_assert_int_eq(mprotect(a + 32768, 4096, PROT_READ), 0);
	ck_assert_int_eq(mprotect(a + 65536 + 8192, 4096, PROT_READ), 0);
	char *buf = malloc(65536);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < 65536; i++)
		buf[i] = (char)(i * 7 + 1);
	ck_assert_int_eq(upg_uffd_copy_wp(fd, (uintptr_t)a, buf, 65536, NULL, false), -ENOENT);
	size_t had = 1;
	ck_assert_int_eq(upg_uffd_copy_page(fd, (uintptr_t)a, buf, 65536, &had, false), 0);
	ck_assert_uint_eq(had, 0);
	ck_assert_int_eq(memcmp(a, buf, 65536), 0);
	/* Again over it: every part present, nothing copied. */
	ck_assert_int_eq(upg_uffd_copy_page(fd, (uintptr_t)a, buf, 65536, &had, false), 0);
	ck_assert_uint_eq(had, 65536);

	ck_assert_int_eq(upg_uffd_poison(fd, (uintptr_t)a + 65536, 65536), 0);
	ck_assert_int_eq(count_bus(a + 65536, 65536), 16);
	free(buf);
	close(fd);  /* first: its UNMAP event would wait for a reader */
	ck_assert_int_eq(munmap(a, len), 0);
}
END_TEST

/* 64 KiB pages with a 4 KiB part given another protection lie in three
 * mappings, which one UFFDIO_COPY cannot span: their first touch, and
 * their refault from the store, go in part by part (each faulted again
 * for ever before).  A second region, never touched, for the first. */
START_TEST(test_64k_split_pages_fault_in)
{
	void *a = NULL;
	struct upager_map_opts o = { .size = sizeof o, .page_size = 65536 };
	ck_assert_int_eq(upager_map(up, 16 * 65536, &o, &a), 0);
	char *fresh = a;
	for (int i = 0; i < 16; i += 2)
		ck_assert_int_eq(mprotect(fresh + i * 65536 + 32768, 4096, i % 4 ? PROT_NONE : PROT_READ), 0);
	for (int i = 0; i < 16; i++) {
		ck_assert_msg(upg_t_is_zero(fresh + i * 65536, 4096), "untouched split page %d: not zeros", i);
		fresh[i * 65536 + 65535] = (char)i;
	}
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(fresh[i * 65536 + 65535], (char)i);
	ck_assert_int_eq(upager_unmap(up, a), 0);

	uint64_t first = npages / 4, n = npages / 8;
	for (uint64_t i = first; i < first + n; i++)
		ck_assert_int_eq(mprotect(base + i * ps + ps / 2, 4096, PROT_READ), 0);
	struct upager_stats s0, s1;
	stats(&s0);
	for (int round = 0; round < 2; round++) {
		push_out(first, n, 0, 0, "split pages");
		check_range(first, n, "split pages faulted back");
	}
	stats(&s1);
	ck_assert_msg(s1.store_reads > s0.store_reads, "no split page was read back from the store");
	for (uint64_t i = first; i < first + n; i++)
		ck_assert_int_eq(mprotect(base + i * ps + ps / 2, 4096, PROT_READ | PROT_WRITE), 0);
	check_range(0, npages, "everything after the split pages");
}
END_TEST

/* 64 KiB pages: a discard of 4 KiB inside a page, resident or evicted, reads
 * back as zeros there and keeps the rest of the page. */
START_TEST(test_64k_discard_subpage)
{
	wait_idle();
	uint64_t res_pg = npages, cold_pg = npages;
	for (uint64_t i = npages; i-- > 0 && res_pg == npages;)
		if (count_evicted(i, 1) == 0)
			res_pg = i;
	for (uint64_t i = 0; i < npages && cold_pg == npages; i++)
		if (count_evicted(i, 1) == 1)
			cold_pg = i;
	ck_assert_msg(res_pg < npages && cold_pg < npages, "need a resident and an evicted 64 KiB page");
	uint64_t pages[2] = { res_pg, cold_pg };
	for (int k = 0; k < 2; k++) {
		char *p = base + pages[k] * ps;
		ck_assert_int_eq(upager_advise(up, p + 8192, 4096, UPAGER_ADV_DONTNEED), 0);
		ck_assert_msg(upg_t_is_zero(p + 8192, 4096), "%s 64 KiB page: the discarded 4 KiB is not zeros",
			      k ? "evicted" : "resident");
		char *want = malloc(ps);
		upg_t_fill(want, ps, pages[k], gen[pages[k]]);
		ck_assert_msg(!memcmp(p, want, 8192) && !memcmp(p + 12288, want + 12288, ps - 12288),
			      "%s 64 KiB page: the rest of the page changed", k ? "evicted" : "resident");
		free(want);
	}
}
END_TEST

/*
 * 16 KiB pages, a budget of four: threads each rewrite a page, discard its
 * first 4 KiB with madvise() and read it back, while another thread keeps
 * the evictor busy.  The read of the discarded part faults on a RESIDENT
 * page; the handler copies zeros over what is missing, with the lock
 * dropped.  The other 12 KiB must keep what was written.  They used to be
 * lost when the evictor moved the page out just before that copy: the copy
 * then mapped zeros over the whole page behind the evictor's back, and the
 * page's next read-in kept those zeros.
 *
 * The discarded 4 KiB must read as zeros too.  The REMOVE event is read
 * before the kernel zaps the part, and the evictor may move the page out
 * whole in between: the part is marked (zmask, as on a page not in RAM),
 * and the evictor zeroes marked parts of what it moves out.
 */
#define RACE_PAGE 16384u
#define RACE_PAGES 64u
#define RACE_WORKERS 4u
#define RACE_OWN 2u            /* pages per worker, in [0, RACE_WORKERS * RACE_OWN) */

struct race {
	char *base;
	double until;
	int stop;                  /* atomic */
	int bad;                   /* atomic: set once, with what below */
	uint64_t bad_page, bad_off, iters;
	uint32_t bad_gen;
	unsigned id;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *race_worker(void *arg)
{
	struct race *w = arg;
	char *want = malloc(RACE_PAGE);
	uint32_t g = 0;
	while (want && !__atomic_load_n(&w->stop, __ATOMIC_RELAXED) && now_s() < w->until) {
		for (uint64_t k = 0; k < RACE_OWN; k++) {
			uint64_t pg = w->id * RACE_OWN + k;
			char *p = w->base + pg * RACE_PAGE;
			g++;
			upg_t_fill(p, RACE_PAGE, pg, g);
			if (madvise(p, 4096, MADV_DONTNEED))
				continue;
			(void)*(volatile char *)p;  /* refault the discarded part */
			upg_t_fill(want, RACE_PAGE, pg, g);
			memset(want, 0, 4096);
			for (size_t off = 0; off < RACE_PAGE; off += 8)
				if (memcmp(p + off, want + off, 8)) {
					if (!__atomic_exchange_n(&w->bad, 1, __ATOMIC_RELAXED)) {
						w->bad_page = pg;
						w->bad_off = off;
						w->bad_gen = g;
					}
					__atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED);
					break;
				}
			w->iters++;
		}
	}
	free(want);
	return NULL;
}

static void *race_churn(void *arg)
{
	struct race *w = arg;
	uint64_t rng = 12345;
	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED) && now_s() < w->until) {
		uint64_t x = upg_t_rand(&rng);
		uint64_t pg = RACE_PAGES / 2 + x % (RACE_PAGES / 2);
		((volatile char *)w->base)[pg * RACE_PAGE + (x >> 32) % 4 * 4096] += 1;
	}
	return NULL;
}

START_TEST(test_16k_subpage_refault_under_eviction)
{
	up = upg_t_open(4 * RACE_PAGE, RACE_PAGE, "fifo", 1);
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, (size_t)RACE_PAGES * RACE_PAGE, NULL, &a), 0);
	base = a;
	double until = now_s() + (double)upg_t_scale(4000) / 1000;
	struct race w[RACE_WORKERS + 1];
	pthread_t tid[RACE_WORKERS + 1];
	for (unsigned i = 0; i <= RACE_WORKERS; i++) {
		w[i] = (struct race){ .base = base, .until = until, .id = i };
		ck_assert_int_eq(pthread_create(&tid[i], NULL, i < RACE_WORKERS ? race_worker : race_churn, &w[i]), 0);
	}
	uint64_t iters = 0;
	for (unsigned i = 0; i <= RACE_WORKERS; i++) {
		pthread_join(tid[i], NULL);
		iters += w[i].iters;
	}
	for (unsigned i = 0; i < RACE_WORKERS; i++)
		ck_assert_msg(!w[i].bad, "page %llu (gen %u) lost its data at byte %llu after a 4 KiB discard and "
			      "refault (%llu rewrites in all)", (unsigned long long)w[i].bad_page, w[i].bad_gen,
			      (unsigned long long)w[i].bad_off, (unsigned long long)iters);
	ck_assert_msg(iters > 0, "no rewrite finished");
}
END_TEST

/*
 * The same race, made to happen every time (white-box): the discard of a
 * page's first 4 KiB is seen, as when its REMOVE event has been read, but
 * the kernel's zap never comes, as when the evictor moves the page out
 * first.  The page must come back with that part zeroed and the rest
 * intact.  Then the zap does land, the part is refilled and written: the
 * mark is done with, and the new bytes survive the next eviction.
 */
static void see_discard(char *p, size_t len)
{
	/* As a handler reads the event: uffd_lock too, so that a fill in
	 * progress has finished. */
	pthread_mutex_lock(&up->uffd_lock);
	pthread_mutex_lock(&up->lock);
	struct upg_region *r = upg_region_find(up, (uintptr_t)p);
	ck_assert_ptr_nonnull(r);
	upg_discard_part(up, r, ((uintptr_t)p - r->base) >> r->pshift, (uintptr_t)p, (uintptr_t)p + len);
	pthread_mutex_unlock(&up->lock);
	pthread_mutex_unlock(&up->uffd_lock);
}

/* Write pages [first, RACE_PAGES): everything before them leaves RAM. */
static void evict_before(uint64_t first)
{
	struct upager_stats a, b;
	stats(&a);
	for (uint64_t pg = first; pg < RACE_PAGES; pg++)
		upg_t_fill(base + pg * RACE_PAGE, RACE_PAGE, pg, 1);
	stats(&b);
	ck_assert_uint_ge(b.evictions - a.evictions, RACE_PAGES - first - 8);
}

START_TEST(test_16k_discard_seen_before_zap)
{
	up = upg_t_open(4 * RACE_PAGE, RACE_PAGE, "fifo", 1);
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, (size_t)RACE_PAGES * RACE_PAGE, NULL, &a), 0);
	base = a;
	static char want[RACE_PAGE];
	upg_t_fill(base, RACE_PAGE, 0, 1);
	see_discard(base, 4096);
	evict_before(1);
	upg_t_fill(want, RACE_PAGE, 0, 1);
	memset(want, 0, 4096);
	ck_assert_msg(!memcmp(base, want, 4096), "the discarded part came back with its old bytes");
	ck_assert_msg(!memcmp(base + 4096, want + 4096, RACE_PAGE - 4096), "the rest of the page was lost");

	/* Seen, zapped, refilled and written: the new bytes stay. */
	upg_t_fill(base, RACE_PAGE, 0, 2);
	see_discard(base, 4096);
	ck_assert_int_eq(madvise(base, 4096, MADV_DONTNEED), 0);
	upg_t_fill(want, RACE_PAGE, 0, 3);
	memcpy(base, want, 4096);  /* refills the part, then writes it */
	memcpy(want + 4096, base + 4096, RACE_PAGE - 4096);  /* gen 2 there */
	evict_before(1);
	ck_assert_msg(!memcmp(base, want, RACE_PAGE), "bytes written after the discard were lost");
}
END_TEST

/*
 * A whole page discarded while in RAM stays mapped, old bytes and all,
 * until the kernel's zap lands after the REMOVE event is read.  A zero fill
 * of a neighbour meanwhile used to take it into its fault-around cluster:
 * the copy skipped the mapped bytes, the page became RESIDENT with them,
 * and an eviction before the zap stored them, so the page later read back
 * old data instead of zeros.  Here the event is seen (as a handler reads
 * it) and the zap held back; the zap is then landed by hand, by moving the
 * page out of the region (no event), as the kernel's would.
 */
START_TEST(test_16k_whole_discard_seen_before_zap)
{
	up = upg_t_open(4 * RACE_PAGE, RACE_PAGE, "fifo", 1);
	void *a = NULL, *b = NULL;
	ck_assert_int_eq(upager_map(up, (size_t)RACE_PAGES * RACE_PAGE, NULL, &a), 0);
	ck_assert_int_eq(upager_map(up, RACE_PAGE, NULL, &b), 0);  /* where the zap puts it */
	base = a;
	/* Page 1 and some after it; page 0 untouched.  The fault-around can
	 * fill the budget, and the evictor may then take page 1 before we
	 * hold the locks: touch it again until it is in RAM as we look. */
	struct upg_region *r = NULL;
	for (int tries = 0;; tries++) {
		upg_t_fill(base + RACE_PAGE, RACE_PAGE, 1, 1);
		pthread_mutex_lock(&up->uffd_lock);
		pthread_mutex_lock(&up->lock);
		r = upg_region_find(up, (uintptr_t)base);
		ck_assert_ptr_nonnull(r);
		if (upg_pte_get(r, 1)->state == PG_RESIDENT || tries == 100)
			break;
		pthread_mutex_unlock(&up->lock);
		pthread_mutex_unlock(&up->uffd_lock);
		usleep(1000);
	}
	ck_assert_int_eq(upg_pte_get(r, 0)->state, PG_NONE);
	ck_assert_int_eq(upg_pte_get(r, 1)->state, PG_RESIDENT);
	upg_discard_range(up, r, 1, 1);
	pthread_mutex_unlock(&up->lock);
	pthread_mutex_unlock(&up->uffd_lock);

	upg_t_fill(base, RACE_PAGE, 0, 2);  /* a fault-around from page 0 reaches page 1 */
	evict_before(2);

	/* The zap lands. */
	size_t moved = 0;
	int rc;
	while ((rc = upg_uffd_move(up->uffd, up->pagemap_fd, (uintptr_t)b, (uintptr_t)(base + RACE_PAGE), RACE_PAGE, &moved)) ==
	       -EAGAIN && !moved)
		usleep(100);  /* an event waits to be read (the evictor emptying its scratch range) */
	ck_assert_msg(rc == 0, "moving the page out: %s", strerror(-rc));
	ck_assert_msg(upg_t_is_zero(base + RACE_PAGE, RACE_PAGE),
		      "a page discarded in RAM came back with its old bytes");
	size_t bad = upg_t_check(base, RACE_PAGE, 0, 2);
	ck_assert_msg(!bad, "page 0 lost %zu words", bad);
}
END_TEST

/*
 * 64 KiB pages under a budget of 16: with the watermarks a page apart the
 * evictor takes one page at a time.  Threads write pages, discard 4 KiB
 * parts of them and leave them, so that the evictor often takes a page
 * with a hole, which it rebuilds and puts back (it frees nothing that
 * round).  Such a batch used to count as "stuck", and for 50 ms every fault
 * was let in over the budget: the peak reached several times the budget.
 * Resident memory must stay within the budget, and every page must hold
 * what was written, with zeros where it was discarded.
 */
#define TIGHT_PAGE 65536u
#define TIGHT_PAGES 128u
#define TIGHT_BUDGET (16u * TIGHT_PAGE)
#define TIGHT_WORKERS 4u
#define TIGHT_SUB (TIGHT_PAGE / 4096u)

struct tight {
	char *base;
	double until;
	uint32_t gen[TIGHT_PAGES];
	uint16_t holes[TIGHT_PAGES];  /* 4 KiB parts discarded since the last write */
	unsigned id;
	uint64_t seed, ops, bad;
	char detail[160];
};

/* 0 when page pg holds its pattern with zeros in its holes; else 1 + byte. */
static size_t tight_check(struct tight *w, uint64_t pg, char *want)
{
	const char *p = w->base + pg * TIGHT_PAGE;
	if (!w->gen[pg])
		return upg_t_is_zero(p, TIGHT_PAGE) ? 0 : 1;
	upg_t_fill(want, TIGHT_PAGE, pg, w->gen[pg]);
	for (unsigned q = 0; q < TIGHT_SUB; q++)
		if (w->holes[pg] >> q & 1)
			memset(want + q * 4096, 0, 4096);
	for (size_t off = 0; off < TIGHT_PAGE; off += 4096)
		if (memcmp(p + off, want + off, 4096))
			return 1 + off;
	return 0;
}

static void *tight_worker(void *arg)
{
	struct tight *w = arg;
	char *want = malloc(TIGHT_PAGE);
	uint64_t own = TIGHT_PAGES / TIGHT_WORKERS, first = w->id * own;
	while (want && !w->bad && now_s() < w->until) {
		uint64_t pg = first + upg_t_rand(&w->seed) % own;
		size_t off = tight_check(w, pg, want);
		if (off) {
			w->bad++;
			snprintf(w->detail, sizeof w->detail, "page %llu (gen %u, holes %#x) wrong in the 4 KiB at %zu",
				 (unsigned long long)pg, w->gen[pg], w->holes[pg], off - 1);
			break;
		}
		char *p = w->base + pg * TIGHT_PAGE;
		uint64_t dice = upg_t_rand(&w->seed) % 10;
		if (dice < 5) {
			upg_t_fill(p, TIGHT_PAGE, pg, ++w->gen[pg]);
			w->holes[pg] = 0;
		} else if (dice < 8 && w->gen[pg]) {
			unsigned q = (unsigned)(upg_t_rand(&w->seed) % TIGHT_SUB);
			ck_assert_int_eq(madvise(p + q * 4096, 4096, MADV_DONTNEED), 0);
			w->holes[pg] |= (uint16_t)(1u << q);
		}
		w->ops++;
	}
	free(want);
	return NULL;
}

START_TEST(test_64k_holes_keep_the_budget)
{
	up = upg_t_open(TIGHT_BUDGET, TIGHT_PAGE, "clock", 2);
	void *a = NULL;
	struct upager_map_opts mo = { .size = sizeof mo, .page_size = TIGHT_PAGE };
	ck_assert_int_eq(upager_map(up, (size_t)TIGHT_PAGES * TIGHT_PAGE, &mo, &a), 0);
	base = a;
	static struct tight w[TIGHT_WORKERS];
	pthread_t t[TIGHT_WORKERS];
	double until = now_s() + (double)upg_t_scale(6);
	for (unsigned i = 0; i < TIGHT_WORKERS; i++) {
		w[i] = (struct tight){ .base = base, .until = until, .id = i, .seed = 1000 + i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, tight_worker, &w[i]), 0);
	}
	uint64_t ops = 0;
	for (unsigned i = 0; i < TIGHT_WORKERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(!w[i].bad, "worker %u: %s", i, w[i].detail);
		ops += w[i].ops;
	}
	char *want = malloc(TIGHT_PAGE);
	ck_assert_ptr_nonnull(want);
	for (unsigned i = 0; i < TIGHT_WORKERS; i++) {
		uint64_t own = TIGHT_PAGES / TIGHT_WORKERS;
		for (uint64_t pg = i * own; pg < (i + 1) * own; pg++) {
			size_t off = tight_check(&w[i], pg, want);
			ck_assert_msg(!off, "final check: page %llu (gen %u, holes %#x) wrong in the 4 KiB at %zu",
				      (unsigned long long)pg, w[i].gen[pg], w[i].holes[pg], off - 1);
		}
	}
	free(want);
	struct upager_stats st;
	stats(&st);
	printf("64k holes: %llu operations, %llu evictions, %llu store reads, resident peak %llu KiB "
	       "(budget %u KiB)\n", (unsigned long long)ops, (unsigned long long)st.evictions,
	       (unsigned long long)st.store_reads, (unsigned long long)(st.resident_peak >> 10), TIGHT_BUDGET >> 10);
	ck_assert_uint_gt(st.evictions, 100);
	ck_assert_msg(st.resident_peak <= TIGHT_BUDGET, "resident peak %llu KiB over the budget of %u KiB",
		      (unsigned long long)(st.resident_peak >> 10), TIGHT_BUDGET >> 10);
}
END_TEST

/*
 * A read-only page cannot be moved out: the evictor copies it, stores it,
 * then zaps it where it lies, and takes the REMOVE event of that zap for
 * its own.  The application's discard of the same page made meanwhile,
 * its event read before the evictor's or after it, must still leave the
 * page reading as zeros.  The hook makes that discard, of the whole page,
 * at the evictor's zap of the first page of the range, before or after
 * its madvise().  A page with one 4 KiB part read-only lies in three
 * mappings, zapped one at a time; the discard raises an event in each.
 */
static char *race_lo, *race_hi;  /* the range whose pages the hook may discard */
static char *race_page;          /* the page it discarded */
static int race_rc = 1;          /* its madvise()'s result */
static bool race_before;

static void race_hook(uintptr_t start, size_t len, bool before)
{
	(void)len;
	char *pg = (char *)(start & ~((uintptr_t)ps - 1));
	if (before != race_before || pg < race_lo || pg >= race_hi || __atomic_load_n(&race_page, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&race_rc, madvise(pg, ps, MADV_DONTNEED) ? errno : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&race_page, pg, __ATOMIC_RELEASE);
}

static void protect(uint64_t first, uint64_t n, bool split, int prot)
{
	if (!split) {
		ck_assert_int_eq(mprotect(base + first * ps, n * ps, prot), 0);
		return;
	}
	for (uint64_t i = first; i < first + n; i++)
		ck_assert_int_eq(mprotect(base + i * ps + ps / 2, 4096, prot), 0);
}

static void discard_during_own_zap(bool before, bool split)
{
	uint64_t first = npages / 4, n = npages / 8;
	protect(first, n, split, PROT_READ);
	check_range(first, n, "read-only range");
	race_lo = base + first * ps;
	race_hi = base + (first + n) * ps;
	race_before = before;
	__atomic_store_n(&race_page, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&upg_own_zap_test, race_hook, __ATOMIC_RELEASE);
	push_out(first, n, 0, 0, "read-only range");
	wait_idle();
	__atomic_store_n(&upg_own_zap_test, NULL, __ATOMIC_RELEASE);
	char *p = __atomic_load_n(&race_page, __ATOMIC_ACQUIRE);
	ck_assert_msg(p, "no read-only page was zapped in place");
	ck_assert_msg(race_rc == 0, "madvise(MADV_DONTNEED) of the page: %s", strerror(race_rc));
	uint64_t pg = (uint64_t)(p - base) / ps;
	gen[pg] = 0;
	check_page(pg, before ? "discarded just before the evictor's zap" : "discarded just after the evictor's zap");
	/* Out and back in again, and everything else as it was. */
	push_out(first, n, 0, 0, "read-only range");
	check_range(0, npages, "after the discard during the evictor's zap");
	protect(first, n, split, PROT_READ | PROT_WRITE);
	printf("discard %s the evictor's zap of %sread-only page %llu: zeros after\n", before ? "before" : "after",
	       split ? "partly " : "", (unsigned long long)pg);
}

/* A zap the kernel refuses partway: a 64 KiB page with a 4 KiB part
 * read-only (so it is copied and zapped in place, a mapping at a time),
 * whose last 16 KiB the test hook locks with mlock() just before the
 * evictor's first zap of it, so that MADV_DONTNEED refuses that part.  The
 * parts zapped before go back from the evictor's copy, and the page stays
 * in RAM with all its bytes (before, the put-back spanned mappings and
 * failed, and the zapped parts came back as zeros).  From then on the
 * evictor finds the page locked before it copies or writes it, and
 * leaves it: no more zaps. */
static unsigned long zaps_in_range;
static uint64_t locked_mask;  /* pages of the range (bit i: page first + i) locked by the hook */

static void count_hook(uintptr_t start, size_t len, bool before)
{
	(void)len;
	if (!before || (char *)start < race_lo || (char *)start >= race_hi)
		return;
	__atomic_add_fetch(&zaps_in_range, 1, __ATOMIC_RELAXED);
	uint64_t i = (uint64_t)((char *)start - race_lo) / ps;
	if (__atomic_fetch_or(&locked_mask, 1ull << i, __ATOMIC_RELAXED) & (1ull << i))
		return;
	/* On fault: the page is in RAM and write-protected; lock it where
	 * it lies, without touching it. */
	char *last = race_lo + i * ps + ps - 16384;
	if (mlock2(last, 16384, MLOCK_ONFAULT))
		fprintf(stderr, "mlock2 of page %llu: %s\n", (unsigned long long)i, strerror(errno));
}

/* Rewrite every page but [first, first + n) passes times, with hook as
 * the evictor's test hook, counting its zaps in that range; then wait
 * for the evictor to settle.  The zaps counted. */
static unsigned long pressure_around(uint64_t first, uint64_t n, int passes, void (*hook)(uintptr_t, size_t, bool))
{
	race_lo = base + first * ps;
	race_hi = base + (first + n) * ps;
	__atomic_store_n(&zaps_in_range, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&upg_own_zap_test, hook, __ATOMIC_RELEASE);
	for (int pass = 0; pass < passes; pass++)
		for (uint64_t i = 0; i < npages; i++)
			if (i < first || i >= first + n) {
				check_page(i, "pressure");
				upg_t_fill(base + i * ps, ps, i, ++gen[i]);
			}
	wait_idle();
	__atomic_store_n(&upg_own_zap_test, NULL, __ATOMIC_RELEASE);
	return __atomic_load_n(&zaps_in_range, __ATOMIC_RELAXED);
}

START_TEST(test_64k_refused_zap_puts_back)
{
	uint64_t first = npages / 4, n = 4;
	if (mlock(base + first * ps, n * 16384)) {
		printf("split pages locked: skipped, mlock() refused here: %s\n", strerror(errno));
		return;
	}
	ck_assert_int_eq(munlock(base + first * ps, n * 16384), 0);
	for (uint64_t i = first; i < first + n; i++)
		ck_assert_int_eq(mprotect(base + i * ps + 32768, 4096, PROT_READ), 0);
	check_range(first, n, "split pages");
	__atomic_store_n(&locked_mask, 0, __ATOMIC_RELAXED);
	struct upager_stats st0, st;
	stats(&st0);
	unsigned long zaps = pressure_around(first, n, 8, count_hook);
	uint64_t locked = __atomic_load_n(&locked_mask, __ATOMIC_RELAXED);
	ck_assert_msg(locked == (1ull << n) - 1, "the evictor zapped only pages %#llx of the %llu split ones",
		      (unsigned long long)locked, (unsigned long long)n);
	ck_assert_uint_eq(count_evicted(first, n), 0);
	check_range(first, n, "locked split pages after a refused zap");
	/* Each page lies in four mappings once locked: its first try zaps
	 * three of them and is refused the fourth.  Later tries find it
	 * locked and leave it unwritten. */
	stats(&st);
	ck_assert_msg(zaps <= 4 * n, "%lu zaps in the range of %llu locked pages: tried again after being refused",
		      zaps, (unsigned long long)n);
	ck_assert_msg(st.locked_stays > st0.locked_stays, "no try at a locked page was counted");
	ck_assert_msg(st.store_slots_used <= npages * (ps / 4096),
		      "%llu store blocks in use after %lu refused zaps, for %llu blocks of pages",
		      (unsigned long long)st.store_slots_used, zaps, (unsigned long long)(npages * (ps / 4096)));
	printf("split pages locked at their zap: %lu zaps, every byte kept, %llu later tries left them unwritten\n",
	       zaps, (unsigned long long)(st.locked_stays - st0.locked_stays));
	for (uint64_t i = first; i < first + n; i++) {
		ck_assert_int_eq(munlock(base + i * ps + ps - 16384, 16384), 0);
		ck_assert_int_eq(mprotect(base + i * ps + 32768, 4096, PROT_READ | PROT_WRITE), 0);
	}
	check_range(0, npages, "everything after the locked split pages");
}
END_TEST

/* Pages locked with mlock() cannot leave (the kernel refuses both
 * UFFDIO_MOVE and MADV_DONTNEED on them).  The evictor finds them locked
 * when the move is refused, and leaves them as they are: never copied,
 * written and zapped in place, as a read-only page is.  (Before, each try
 * did all three, the zap refused: a write for nothing every time.) */
static void zap_count_hook(uintptr_t start, size_t len, bool before)
{
	(void)len;
	if (before && (char *)start >= race_lo && (char *)start < race_hi)
		__atomic_add_fetch(&zaps_in_range, 1, __ATOMIC_RELAXED);
}

START_TEST(test_locked_pages_stay_unwritten)
{
	uint64_t first = npages / 4, n = 8;
	if (mlock(base + first * ps, n * ps)) {
		printf("locked pages: skipped, mlock() of %llu KiB refused here: %s\n",
		       (unsigned long long)(n * ps >> 10), strerror(errno));
		return;
	}
	check_range(first, n, "locked pages");
	struct upager_stats st0, st;
	wait_idle();
	stats(&st0);
	unsigned long zaps = pressure_around(first, n, 4, zap_count_hook);
	stats(&st);
	ck_assert_uint_eq(count_evicted(first, n), 0);
	check_range(first, n, "locked pages after the pressure");
	uint64_t tries = st.locked_stays - st0.locked_stays;
	ck_assert_msg(zaps == 0, "%lu zaps of locked pages: each was copied and written first", zaps);
	ck_assert_msg(tries > 0, "the evictor never picked a locked page");
	printf("locked pages: %llu tries left them unwritten, none zapped\n", (unsigned long long)tries);
	ck_assert_int_eq(munlock(base + first * ps, n * ps), 0);
	check_range(0, npages, "everything after the locked pages");
}
END_TEST

START_TEST(test_discard_before_own_zap)
{
	discard_during_own_zap(true, false);
}
END_TEST

START_TEST(test_discard_after_own_zap)
{
	discard_during_own_zap(false, false);
}
END_TEST

START_TEST(test_64k_discard_before_split_zap)
{
	discard_during_own_zap(true, true);
}
END_TEST

START_TEST(test_64k_discard_after_split_zap)
{
	discard_during_own_zap(false, true);
}
END_TEST

static Suite *discard_suite(void)
{
	Suite *s = suite_create("discard");
	TCase *tc = tcase_create("4k");
	tcase_add_checked_fixture(tc, setup_4k, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_madvise_dontneed);
	tcase_add_test(tc, test_advise_dontneed);
	tcase_add_test(tc, test_madvise_counts_immediately);
	tcase_add_test(tc, test_munmap_part);
	tcase_add_test(tc, test_mprotect_readonly_under_pressure);
	tcase_add_test(tc, test_discard_before_own_zap);
	tcase_add_test(tc, test_discard_after_own_zap);
	tcase_add_test(tc, test_locked_pages_stay_unwritten);
	suite_add_tcase(s, tc);

	/* A hang here is a fault that can never be served: keep it short. */
	tc = tcase_create("edges");
	tcase_add_checked_fixture(tc, setup_empty, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_munmap_untouched_then_touch_edges);
	tcase_add_test(tc, test_mprotect_untouched_then_touch_edges);
	tcase_add_test(tc, test_advise_unaligned_keeps_neighbours);
	tcase_add_test(tc, test_uffd_split_range);
	suite_add_tcase(s, tc);

	tc = tcase_create("64k");
	tcase_add_checked_fixture(tc, setup_64k, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_64k_discard_whole_pages);
	tcase_add_test(tc, test_64k_advise_whole_pages);
	tcase_add_test(tc, test_64k_discard_subpage);
	tcase_add_test(tc, test_64k_split_pages_fault_in);
	tcase_add_test(tc, test_discard_before_own_zap);
	tcase_add_test(tc, test_discard_after_own_zap);
	tcase_add_test(tc, test_64k_refused_zap_puts_back);
	tcase_add_test(tc, test_64k_discard_before_split_zap);
	tcase_add_test(tc, test_64k_discard_after_split_zap);
	suite_add_tcase(s, tc);

	tc = tcase_create("16k_race");
	tcase_add_checked_fixture(tc, setup_none, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_16k_subpage_refault_under_eviction);
	tcase_add_test(tc, test_16k_discard_seen_before_zap);
	tcase_add_test(tc, test_16k_whole_discard_seen_before_zap);
	tcase_add_test(tc, test_64k_holes_keep_the_budget);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(discard_suite());
	fflush(stdout);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
