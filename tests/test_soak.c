/* SPDX-License-Identifier: MIT */
/*
 * Randomized soak (issue #5), verified all the way.  Runs for
 * UPG_SOAK_SECONDS (default 600) from seed UPG_SOAK_SEED (default 1), as a
 * string of epochs.  Each epoch opens a runtime with a random policy,
 * handler count and budget, maps one or two regions (page sizes 4, 16 or
 * 64 KiB) 8x over the budget, and runs random phases:
 *
 *   - read-modify-write: 1..32 threads, each owning a contiguous part of a
 *     region, walking it sequentially, at random, zipf-like or strided;
 *     they verify each page they touch, rewrite most, discard some
 *     (upager_advise DONTNEED or madvise) and ask for WILLNEED ranges;
 *   - read-only: threads read anywhere, many on the same pages;
 *   - fork: a child verifies the whole fork-time snapshot with its own
 *     threads while the parent goes on rewriting and discarding;
 *   - remap: a region is unmapped and a new one mapped.
 *
 * A shadow (per page generation, 0 for zeros) says what each page holds.
 * At the end of each epoch every page is checked, the store and budget
 * bookkeeping must balance, and no descriptor or thread may be left over.
 * UPG_SOAK_NOFORK=1 leaves the forks out (to tell a fork problem apart).
 * To replay the configuration of a failing epoch, pin it:
 * UPG_SOAK_POLICY (s3fifo, clock, fifo), UPG_SOAK_HANDLERS (1, 2),
 * UPG_SOAK_BUDGET (bytes) and UPG_SOAK_PSIZE (4096, 16384, 65536: every
 * region); UPG_SOAK_LOG=2 shows upager's INFO messages.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define MAX_THREADS 32
#define MAX_REGIONS 2

static const char *policies[] = { "s3fifo", "clock", "fifo" };
static const uint32_t page_sizes[] = { 4096, 16384, 65536 };
static const unsigned thread_counts[] = { 1, 2, 4, 8, 16, 32 };

enum pattern { P_SEQ, P_RANDOM, P_ZIPF, P_STRIDE, P_COUNT };
static const char *pattern_names[] = { "seq", "random", "zipf", "stride" };

struct region {
	char *base;
	size_t len;
	uint32_t psize;
	uint64_t npages;
	uint32_t *gen;  /* shadow: 0 reads as zeros */
};

static upager_t *up;
static struct region regs[MAX_REGIONS];
static unsigned nregs;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 0 when page pg of r holds what the shadow says; else 1 + first bad byte. */
static size_t check_page(const struct region *r, uint64_t pg)
{
	const char *p = r->base + pg * r->psize;
	uint32_t g = r->gen[pg];
	if (!g) {
		for (size_t i = 0; i < r->psize; i++)
			if (p[i])
				return 1 + i;
		return 0;
	}
	return upg_t_check(p, r->psize, pg, g);
}

/* What a wrong page holds instead, 4 KiB at a time, for the report: zeros,
 * the expected data, or the data of which page and generation. */
static void describe(const struct region *r, uint64_t pg)
{
	const char *p = r->base + pg * r->psize;
	char line[512];
	size_t n = 0;
	for (size_t b = 0; b < r->psize / 4096 && n < sizeof line - 64; b++) {
		const char *blk = p + b * 4096;
		size_t word = b * 512;
		uint64_t w0;
		memcpy(&w0, blk, 8);
		if (upg_t_is_zero(blk, 4096)) {
			n += (size_t)snprintf(line + n, sizeof line - n, " [%zu] zeros", b);
			continue;
		}
		int found = 0;
		for (uint64_t i = 0; i < r->npages && !found; i++)
			for (uint32_t g = 1; g <= 256 && !found; g++)
				if (upg_t_word(i, g, word) == w0) {
					n += (size_t)snprintf(line + n, sizeof line - n, " [%zu] page %llu gen %u", b,
							      (unsigned long long)i, g);
					found = 1;
				}
		if (!found)
			n += (size_t)snprintf(line + n, sizeof line - n, " [%zu] unknown %016llx", b,
					      (unsigned long long)w0);
	}
	fprintf(stderr, "soak:   page %llu holds (by 4 KiB block):%s\n", (unsigned long long)pg, line);
}

static uint64_t verify_region(const struct region *r, uint64_t first, uint64_t last, const char *who)
{
	uint64_t bad = 0;
	for (uint64_t pg = first; pg < last; pg++) {
		size_t off = check_page(r, pg);
		if (off && bad++ < 3) {
			fprintf(stderr, "soak %s: page %llu of a %u-byte-page region (gen %u) wrong at byte %zu\n",
				who, (unsigned long long)pg, r->psize, r->gen[pg], off - 1);
			describe(r, pg);
		}
	}
	return bad;
}

static void region_map(struct region *r, size_t len, uint32_t psize)
{
	struct upager_map_opts mo = { .size = sizeof mo, .page_size = psize };
	void *mem;
	ck_assert_int_eq(upager_map(up, len, &mo, &mem), 0);
	r->base = mem;
	r->len = len;
	r->psize = psize;
	r->npages = len / psize;
	r->gen = calloc(r->npages, sizeof *r->gen);
	ck_assert_ptr_nonnull(r->gen);
}

static void region_unmap(struct region *r)
{
	ck_assert_int_eq(upager_unmap(up, r->base), 0);
	free(r->gen);
	memset(r, 0, sizeof *r);
}

/* ---- phases ---- */

struct worker {
	pthread_t t;
	struct region *r;
	uint64_t first, count;  /* owned pages (read-write) or the readable range */
	int pattern;
	int writer;
	uint64_t seed;
	double until;
	uint64_t ops, writes, discards, willneeds, bad, api_errors;
};

static uint64_t next_page(struct worker *w, uint64_t *pos, uint64_t stride)
{
	switch (w->pattern) {
	case P_SEQ:
		*pos = (*pos + 1) % w->count;
		break;
	case P_RANDOM:
		*pos = upg_t_rand(&w->seed) % w->count;
		break;
	case P_ZIPF:
		*pos = upg_t_skewed(&w->seed, w->count);
		break;
	default:
		*pos = (*pos + stride) % w->count;
		break;
	}
	return w->first + *pos;
}

static void *phase_worker(void *arg)
{
	struct worker *w = arg;
	struct region *r = w->r;
	uint64_t pos = upg_t_rand(&w->seed) % w->count;
	uint64_t stride = 2 + upg_t_rand(&w->seed) % 15;
	while (now_s() < w->until) {
		for (int k = 0; k < 32; k++) {
			uint64_t pg = next_page(w, &pos, stride);
			char *p = r->base + pg * r->psize;
			w->ops++;
			size_t off = check_page(r, pg);
			if (off) {
				if (w->bad++ < 3) {
					fprintf(stderr, "soak: page %llu (psize %u, gen %u) wrong at byte %zu\n",
						(unsigned long long)pg, r->psize, r->gen[pg], off - 1);
					describe(r, pg);
				}
				continue;
			}
			if (!w->writer)
				continue;
			uint64_t dice = upg_t_rand(&w->seed) % 100;
			if (dice < 70) {
				upg_t_fill(p, r->psize, pg, ++r->gen[pg]);
				w->writes++;
			} else if (dice < 73) {
				/* Discard 1..8 owned pages from here. */
				uint64_t n = 1 + upg_t_rand(&w->seed) % 8;
				if (pg + n > w->first + w->count)
					n = w->first + w->count - pg;
				int rc = dice % 2 ? upager_advise(up, p, n * r->psize, UPAGER_ADV_DONTNEED)
						  : (madvise(p, n * r->psize, MADV_DONTNEED) ? -errno : 0);
				if (rc) {
					w->api_errors++;
					continue;
				}
				for (uint64_t i = 0; i < n; i++)
					r->gen[pg + i] = 0;
				w->discards++;
			} else if (dice < 75) {
				/* Prefetch any range, owned or not: it never changes data. */
				uint64_t a = upg_t_rand(&w->seed) % r->npages;
				uint64_t n = 1 + upg_t_rand(&w->seed) % 64;
				if (a + n > r->npages)
					n = r->npages - a;
				if (upager_advise(up, r->base + a * r->psize, n * r->psize, UPAGER_ADV_WILLNEED))
					w->api_errors++;
				w->willneeds++;
			}
		}
	}
	return NULL;
}

struct totals {
	uint64_t ops, writes, discards, willneeds, forks, remaps, phases;
};

/* Run one read-write or read-only phase of seconds on region r. */
static void run_phase(struct region *r, int writer, double seconds, uint64_t *seed, struct totals *tot)
{
	unsigned nt = thread_counts[upg_t_rand(seed) % 6];
	if (nt > r->npages)
		nt = (unsigned)r->npages;
	int pattern = (int)(upg_t_rand(seed) % P_COUNT);
	/* Usually the fitting hint, sometimes a wrong one. */
	int advice = pattern == P_SEQ ? UPAGER_ADV_SEQUENTIAL : pattern == P_RANDOM ? UPAGER_ADV_RANDOM
										    : UPAGER_ADV_NORMAL;
	if (upg_t_rand(seed) % 4 == 0)
		advice = (int)(upg_t_rand(seed) % 3);
	ck_assert_int_eq(upager_advise(up, r->base, r->len, advice), 0);
	struct worker w[MAX_THREADS];
	double until = now_s() + seconds;
	for (unsigned i = 0; i < nt; i++) {
		w[i] = (struct worker){ .r = r, .writer = writer, .until = until, .seed = upg_t_rand(seed),
					.pattern = (int)((pattern + (i % 3 == 2)) % P_COUNT) };
		if (writer) {
			w[i].first = r->npages * i / nt;
			w[i].count = r->npages * (i + 1) / nt - w[i].first;
		} else {
			w[i].first = 0;
			w[i].count = r->npages;
		}
		ck_assert_int_eq(pthread_create(&w[i].t, NULL, phase_worker, &w[i]), 0);
	}
	uint64_t bad = 0, errs = 0;
	for (unsigned i = 0; i < nt; i++) {
		pthread_join(w[i].t, NULL);
		bad += w[i].bad;
		errs += w[i].api_errors;
		tot->ops += w[i].ops;
		tot->writes += w[i].writes;
		tot->discards += w[i].discards;
		tot->willneeds += w[i].willneeds;
	}
	tot->phases++;
	ck_assert_msg(bad == 0, "%s phase, %u threads, %s, page %u: %llu wrong pages", writer ? "rw" : "ro", nt,
		      pattern_names[pattern], r->psize, (unsigned long long)bad);
	ck_assert_uint_eq(errs, 0);
}

/* ---- fork: the child checks the snapshot with its own threads ---- */

struct part {
	pthread_t t;
	const struct region *r;
	uint64_t first, last, bad;
};

static void *child_part(void *arg)
{
	struct part *p = arg;
	p->bad = verify_region(p->r, p->first, p->last, "child");
	return NULL;
}

static void child_verify(unsigned nt)
{
	uint64_t bad = 0;
	for (unsigned k = 0; k < nregs; k++) {
		struct part p[4];
		for (unsigned i = 0; i < nt; i++) {
			p[i] = (struct part){ .r = &regs[k], .first = regs[k].npages * i / nt,
					      .last = regs[k].npages * (i + 1) / nt };
			if (pthread_create(&p[i].t, NULL, child_part, &p[i]))
				_exit(2);
		}
		for (unsigned i = 0; i < nt; i++) {
			pthread_join(p[i].t, NULL);
			bad += p[i].bad;
		}
	}
	_exit(bad ? 1 : 0);
}

/* ---- epochs ---- */

static uint32_t page_size(uint64_t *seed)
{
	uint32_t ps = page_sizes[upg_t_rand(seed) % 3];
	return (uint32_t)upg_t_env_u64("UPG_SOAK_PSIZE", ps);
}

static int own_threads(void)
{
	int tids[256], keep[256];
	int n = upg_t_tasks(tids, 256);
	return upg_t_new_threads(NULL, 0, tids, n, keep, 256);
}

static void run_epoch(uint64_t *seed, double until, int epoch, int fds0, int threads0)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.policy = policies[upg_t_rand(seed) % 3];
	cfg.handler_threads = 1 + (uint32_t)(upg_t_rand(seed) % 2);
	cfg.ram_budget = (1ULL << 20) << (upg_t_rand(seed) % 3);  /* 1, 2 or 4 MiB */
	if (getenv("UPG_SOAK_POLICY"))
		cfg.policy = getenv("UPG_SOAK_POLICY");
	cfg.handler_threads = (uint32_t)upg_t_env_u64("UPG_SOAK_HANDLERS", cfg.handler_threads);
	cfg.ram_budget = upg_t_env_u64("UPG_SOAK_BUDGET", cfg.ram_budget);
	cfg.log = upg_t_log;
	cfg.log_level = (int)upg_t_env_u64("UPG_SOAK_LOG", UPAGER_LOG_WARN);
	char err[512];
	int rc = upager_open(&cfg, &up, err, sizeof err);
	ck_assert_msg(rc == 0, "upager_open: %s", err);
	nregs = 1 + (unsigned)(upg_t_rand(seed) % 2);
	for (unsigned k = 0; k < nregs; k++)
		region_map(&regs[k], cfg.ram_budget * 8 / nregs, page_size(seed));
	printf("soak epoch %d: policy %s, %u handler(s), budget %llu KiB, regions:", epoch, cfg.policy,
	       cfg.handler_threads, (unsigned long long)(cfg.ram_budget >> 10));
	for (unsigned k = 0; k < nregs; k++)
		printf(" %zu KiB of %u-byte pages", regs[k].len >> 10, regs[k].psize);
	printf("\n");
	fflush(stdout);

	struct totals tot = { 0 };
	pid_t child = -1;
	while (now_s() < until) {
		struct region *r = &regs[upg_t_rand(seed) % nregs];
		double secs = 0.5 + (double)(upg_t_rand(seed) % 2500) / 1000.0;
		if (now_s() + secs > until)
			secs = until - now_s();
		uint64_t kind = upg_t_rand(seed) % 20;
		if (kind < 2 && child < 0 && !getenv("UPG_SOAK_NOFORK")) {
			fflush(NULL);
			child = fork();
			ck_assert_int_ge(child, 0);
			if (child == 0)
				child_verify(1 + (unsigned)(upg_t_rand(seed) % 4));
			tot.forks++;
			run_phase(r, 1, secs, seed, &tot);  /* the parent rewrites meanwhile */
		} else if (kind < 3) {
			unsigned k = (unsigned)(r - regs);
			uint32_t psize = page_size(seed);
			size_t len = r->len;
			region_unmap(r);
			region_map(&regs[k], len, psize);
			tot.remaps++;
		} else if (kind < 7) {
			run_phase(r, 0, secs, seed, &tot);
		} else {
			run_phase(r, 1, secs, seed, &tot);
		}
		if (child > 0) {
			int st;
			pid_t got = waitpid(child, &st, upg_t_rand(seed) % 2 ? 0 : WNOHANG);
			ck_assert_int_ge(got, 0);
			if (got == child) {
				ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
					      "forked child: its snapshot was wrong (status %#x)", st);
				child = -1;
			}
		}
	}
	if (child > 0) {
		int st;
		ck_assert_int_eq(waitpid(child, &st, 0), child);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child: its snapshot was wrong (status %#x)",
			      st);
	}

	uint64_t bad = 0;
	for (unsigned k = 0; k < nregs; k++)
		bad += verify_region(&regs[k], 0, regs[k].npages, "final");
	ck_assert_uint_eq(bad, 0);
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	printf("  %llu phases, %llu accesses, %llu writes, %llu discards, %llu willneed, %llu forks, %llu remaps; "
	       "%llu store reads, %llu evictions, %llu writebacks, resident peak %llu KiB\n",
	       (unsigned long long)tot.phases, (unsigned long long)tot.ops, (unsigned long long)tot.writes,
	       (unsigned long long)tot.discards, (unsigned long long)tot.willneeds, (unsigned long long)tot.forks,
	       (unsigned long long)tot.remaps, (unsigned long long)st.store_reads,
	       (unsigned long long)st.evictions, (unsigned long long)st.writebacks,
	       (unsigned long long)(st.resident_peak >> 10));
	fflush(stdout);
	ck_assert_uint_eq(st.write_errors, 0);
	ck_assert_msg(st.resident_peak <= cfg.ram_budget,
		      "resident peak %llu KiB over the budget of %llu KiB: store_full %llu, store %llu KiB with "
		      "%llu KiB used, read_errors %llu, poisoned %llu",
		      (unsigned long long)(st.resident_peak >> 10), (unsigned long long)(cfg.ram_budget >> 10),
		      (unsigned long long)st.store_full, (unsigned long long)(st.store_bytes >> 10),
		      (unsigned long long)(st.store_slots_used * 4), (unsigned long long)st.read_errors,
		      (unsigned long long)st.poisoned_pages);
	for (unsigned k = 0; k < nregs; k++)
		region_unmap(&regs[k]);
	/* The children's hang-up (their snapshot slots returning) is seen
	 * asynchronously. */
	for (int i = 0; i < 500; i++) {
		ck_assert_int_eq(upager_stats(up, &st), 0);
		if (!st.store_slots_used)
			break;
		usleep(10000);
	}
	ck_assert_uint_eq(st.resident_bytes, 0);
	ck_assert_msg(st.store_slots_used == 0, "%llu store blocks still used with no region left "
		      "(%d descriptors open, %d before the epoch)", (unsigned long long)st.store_slots_used,
		      upg_t_count_fds(), fds0);
	ck_assert_uint_eq(st.regions, 0);
	ck_assert_int_eq(upager_close(up), 0);
	up = NULL;
	ck_assert_int_eq(upg_t_count_fds(), fds0);
	int th = own_threads();
	for (int i = 0; i < 500 && th != threads0; i++) {
		usleep(10000);
		th = own_threads();
	}
	ck_assert_int_eq(th, threads0);
}

START_TEST(soak)
{
	uint64_t seconds = upg_t_env_u64("UPG_SOAK_SECONDS", 600);
	uint64_t seed = upg_t_env_u64("UPG_SOAK_SEED", 1);
	printf("soak: %llu s from seed %llu (UPG_SOAK_SECONDS, UPG_SOAK_SEED)\n", (unsigned long long)seconds,
	       (unsigned long long)seed);
	int fds0 = upg_t_count_fds();
	int threads0 = own_threads();
	double start = now_s(), end = start + (double)seconds;
	int epoch = 0;
	while (now_s() < end) {
		/* Epochs of 20..60 s, the last one cut to the deadline. */
		double until = now_s() + 20 + (double)(upg_t_rand(&seed) % 40);
		if (until > end || end - until < 10)
			until = end;
		run_epoch(&seed, until, epoch++, fds0, threads0);
	}
	printf("soak: %d epochs in %.0f s, all verified\n", epoch, now_s() - start);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("soak");
	TCase *tc = tcase_create("soak");
	tcase_set_timeout(tc, (double)upg_t_env_u64("UPG_SOAK_SECONDS", 600) + 600);
	tcase_add_test(tc, soak);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
