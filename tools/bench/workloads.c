/* SPDX-License-Identifier: MIT */
/*
 * The workloads: each fills a plain char *base (untimed), runs its timed
 * phase between the two hook calls, and verifies every page (untimed).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define LINE 64u           /* bytes between checked words */
#define STRIDE 16u         /* stride workload: pages between accesses */
#define REPORT_MAX 10      /* data errors printed per run */
#define ZIPF_HOT_PCT 10u   /* zipf: share of pages that are hot ... */
#define ZIPF_HOT_HITS 90u  /* ... and share of accesses that go to them */
#define SCAN_HOT_DIV 8u    /* scan-hot: hot set is the budget / this */
#define SCAN_HOT_BURST 4u  /* scan-hot: hot accesses per hot page per burst */

struct worker {
	const struct wl_ctx *c;
	void (*fn)(struct worker *);
	unsigned id;
	uint64_t npages;
	uint64_t first, last;     /* the pages this thread owns: [first, last) */
	uint64_t quota;           /* random accesses this thread makes */
	uint64_t rng;
	uint64_t gen;             /* generation to write or expect */
	const uint32_t *expect;   /* verify: increments per page, or NULL */
	uint32_t *counts;         /* rmw: increments made per page (shared, atomic) */
	unsigned char *touched;   /* random: pages accessed (shared) */
	/* zipf: page of rank k is (k * mult + add) % npages; ranks below nhot are hot */
	uint64_t nhot, mult, add;
	/* scan-hot */
	uint64_t rounds, burst;
	/* results */
	uint64_t accesses, bad;
	uint64_t *lat;            /* samples in ns, LAT_FAULT set for faulting accesses */
	size_t nlat, cap;
	bool sample_fault;        /* the access being timed began on an unmapped page */
};

static unsigned reported; /* data errors printed in this run (atomic) */

/* Print the first REPORT_MAX data errors of the next run: run_one calls it
 * before each run. */
void workload_reports_reset(void)
{
	__atomic_store_n(&reported, 0, __ATOMIC_RELAXED);
}

static uint64_t *word_at(const struct wl_ctx *c, uint64_t page, uint64_t line)
{
	return (uint64_t *)(c->base + page * c->page + line * LINE);
}

/* The checked word of every line, and the content around it; LINE is the
 * 64 bytes fill_page() lays out. */
static void write_page(const struct wl_ctx *c, uint64_t p, uint64_t gen)
{
	fill_page(c->content, c->seed, c->base + p * c->page, c->page, p, gen);
}

/* Whose word is got, read at line l: the same line of which page and
 * generation (line 0: plus how many increments), for the report.  A word
 * from another line of a page counts too.  Slow: only for the few words
 * reported. */
static void whose(const struct wl_ctx *c, uint64_t got, uint64_t l, char *out, size_t len)
{
	uint64_t npages = c->bytes / c->page, lines = c->page / LINE;
	snprintf(out, len, "whose data is unknown");
	if (got == 0) {
		snprintf(out, len, "reads as zero: page lost");
		return;
	}
	for (uint64_t pass = 0; pass < 2; pass++)
		for (uint64_t g = 0; g < 2; g++)
			for (uint64_t q = 0; q < npages; q++)
				for (uint64_t k = pass ? 0 : l; k < (pass ? lines : l + 1); k++) {
					uint64_t d = got - pattern(c->seed, q, k, g);
					if (d == 0 || (k == 0 && d < (1u << 24))) {
						snprintf(out, len, "holds page %" PRIu64 " line %" PRIu64 " gen %" PRIu64
							 " + %" PRIu64, q, k, g, d);
						return;
					}
				}
}

static uint64_t check_line(const struct wl_ctx *c, uint64_t p, uint64_t l, uint64_t gen, uint64_t extra)
{
	uint64_t want = pattern(c->seed, p, l, gen) + extra;
	uint64_t got = __atomic_load_n(word_at(c, p, l), __ATOMIC_RELAXED);
	if (got == want)
		return 0;
	unsigned n = __atomic_fetch_add(&reported, 1, __ATOMIC_RELAXED);
	if (n < REPORT_MAX) {
		char who[160];
		whose(c, got, l, who, sizeof who);
		fprintf(stderr, "%s" PROG ": DATA ERROR: page %" PRIu64 " line %" PRIu64 " (offset %#" PRIx64
			"): read 0x%016" PRIx64 ", expected 0x%016" PRIx64 " (gen %" PRIu64 " + %" PRIu64 "): %s\n",
			n == 0 ? "\n" : "", p, l, p * c->page + l * LINE, got, want, gen, extra, who);
	}
	return 1;
}

/* Read the checked word of every line; line 0 also holds `extra` increments. */
static uint64_t check_page(const struct wl_ctx *c, uint64_t p, uint64_t gen, uint64_t extra)
{
	uint64_t bad = check_line(c, p, 0, gen, extra);
	for (uint64_t l = 1; l < c->page / LINE; l++)
		bad += check_line(c, p, l, gen, 0);
	return bad;
}

/* Start timing one sampled access to page p.  mincore() says whether the
 * page is mapped now, so that the sample can be classed afterwards as a
 * fault (not mapped: the access waits for the pager) or a hit; it runs
 * before the clock starts.  A page mapped by readahead between the two
 * counts as a fault that happened to be cheap. */
static uint64_t sample_begin(struct worker *w, uint64_t p)
{
	unsigned char v = 1;
	w->sample_fault = mincore(w->c->base + p * w->c->page, 4096, &v) == 0 && !(v & 1);
	return now_ns();
}

/* End the sampled access that began at t0. */
static void lat_add(struct worker *w, uint64_t t0)
{
	uint64_t ns = now_ns() - t0;
	if (w->nlat < w->cap)
		w->lat[w->nlat++] = (ns & ~LAT_FAULT) | (w->sample_fault ? LAT_FAULT : 0);
}

static void *thread_main(void *arg)
{
	struct worker *w = arg;
	w->fn(w);
	return NULL;
}

/* Run fn on every worker, one thread each; the caller's thread joins. */
static void run_workers(struct worker *ws, unsigned n, void (*fn)(struct worker *))
{
	pthread_t tid[MAX_THREADS];
	bool started[MAX_THREADS];
	for (unsigned i = 0; i < n; i++) {
		ws[i].fn = fn;
		started[i] = pthread_create(&tid[i], NULL, thread_main, &ws[i]) == 0;
		if (!started[i])
			fn(&ws[i]); /* no thread: still do the work, serially */
	}
	for (unsigned i = 0; i < n; i++)
		if (started[i])
			pthread_join(tid[i], NULL);
}

/* Thread i's part of total, split over n threads. */
static uint64_t share_of(uint64_t total, unsigned n, unsigned i)
{
	return total / n + (i < total % n);
}

/* Split the pages and `total` random accesses over the threads.  Each worker
 * can keep one latency sample per SAMPLE_EVERY of `samples_for` accesses
 * (0: of its pages). */
static struct worker *workers_new(const struct wl_ctx *c, uint64_t total, uint64_t samples_for)
{
	unsigned n = c->threads;
	uint64_t npages = c->bytes / c->page;
	struct worker *ws = calloc(n, sizeof *ws);
	if (!ws)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &ws[i];
		w->c = c;
		w->id = i;
		w->npages = npages;
		w->first = npages * i / n;
		w->last = npages * (i + 1) / n;
		w->quota = share_of(total, n, i);
		w->rng = mix(c->seed ^ (0x632be59bd9b4e019ULL * (i + 1)));
		uint64_t basis = samples_for ? samples_for / n + 1 : w->last - w->first;
		w->cap = basis / SAMPLE_EVERY + 2;
		w->lat = malloc(w->cap * sizeof *w->lat);
		if (!w->lat) {
			for (unsigned j = 0; j <= i; j++)
				free(ws[j].lat);
			free(ws);
			return NULL;
		}
	}
	return ws;
}

/* Gather the timed phase's counts and samples into r; 0 or -ENOMEM. */
static int collect(struct worker *ws, unsigned n, struct wl_result *r)
{
	size_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		r->accesses += ws[i].accesses;
		r->bad_words += ws[i].bad;
		total += ws[i].nlat;
		ws[i].bad = 0;
	}
	free(r->lat_ns);
	r->lat_ns = malloc((total ? total : 1) * sizeof *r->lat_ns);
	if (!r->lat_ns)
		return -ENOMEM;
	r->nlat = 0;
	for (unsigned i = 0; i < n; i++) {
		memcpy(r->lat_ns + r->nlat, ws[i].lat, ws[i].nlat * sizeof *ws[i].lat);
		r->nlat += ws[i].nlat;
	}
	return 0;
}

static void workers_free(struct worker *ws, unsigned n)
{
	if (!ws)
		return;
	for (unsigned i = 0; i < n; i++)
		free(ws[i].lat);
	free(ws);
}

static uint64_t count_touched(const unsigned char *t, uint64_t n)
{
	uint64_t k = 0;
	for (uint64_t i = 0; i < n; i++)
		k += t[i] != 0;
	return k;
}

static void begin(const struct wl_ctx *c)
{
	if (c->hooks && c->hooks->begin)
		c->hooks->begin(c->hooks->arg);
}

static void end(const struct wl_ctx *c)
{
	if (c->hooks && c->hooks->end)
		c->hooks->end(c->hooks->arg);
}

/* --- per-thread bodies --- */

static void do_fill(struct worker *w)
{
	for (uint64_t p = w->first; p < w->last; p++)
		write_page(w->c, p, 0);
}

static void do_verify(struct worker *w)
{
	for (uint64_t p = w->first; p < w->last; p++)
		w->bad += check_page(w->c, p, w->gen, w->expect ? w->expect[p] : 0);
}

static void do_seq_write(struct worker *w)
{
	for (uint64_t p = w->first; p < w->last; p++) {
		bool s = w->accesses % SAMPLE_EVERY == 0;
		uint64_t t0 = s ? sample_begin(w, p) : 0;
		write_page(w->c, p, w->gen);
		if (s)
			lat_add(w, t0);
		w->accesses++;
	}
}

static void do_seq_read(struct worker *w)
{
	for (uint64_t p = w->first; p < w->last; p++) {
		bool s = w->accesses % SAMPLE_EVERY == 0;
		uint64_t t0 = s ? sample_begin(w, p) : 0;
		w->bad += check_page(w->c, p, w->gen, 0);
		if (s)
			lat_add(w, t0);
		w->accesses++;
	}
}

static void do_stride(struct worker *w)
{
	for (uint64_t off = 0; off < STRIDE; off++)
		for (uint64_t p = w->first + off; p < w->last; p += STRIDE) {
			bool s = w->accesses % SAMPLE_EVERY == 0;
			uint64_t t0 = s ? sample_begin(w, p) : 0;
			w->bad += check_page(w->c, p, 0, 0);
			if (s)
				lat_add(w, t0);
			w->accesses++;
		}
}

static void do_rand_read(struct worker *w)
{
	for (uint64_t i = 0; i < w->quota; i++) {
		uint64_t p = rng_below(&w->rng, w->npages);
		bool s = i % SAMPLE_EVERY == 0;
		uint64_t t0 = s ? sample_begin(w, p) : 0;
		w->bad += check_page(w->c, p, 0, 0);
		if (s)
			lat_add(w, t0);
		__atomic_store_n(&w->touched[p], 1, __ATOMIC_RELAXED);
	}
	w->accesses = w->quota;
}

/* Read line 1 (never changed here) and bump the counter in line 0. */
static void rmw_page(struct worker *w, uint64_t p, bool sample)
{
	uint64_t t0 = sample ? sample_begin(w, p) : 0;
	w->bad += check_line(w->c, p, 1, 0, 0);
	__atomic_fetch_add(word_at(w->c, p, 0), 1, __ATOMIC_RELAXED);
	if (sample)
		lat_add(w, t0);
	__atomic_fetch_add(&w->counts[p], 1, __ATOMIC_RELAXED);
}

static void do_rand_rmw(struct worker *w)
{
	for (uint64_t i = 0; i < w->quota; i++)
		rmw_page(w, rng_below(&w->rng, w->npages), i % SAMPLE_EVERY == 0);
	w->accesses = w->quota;
}

static void do_zipf(struct worker *w)
{
	for (uint64_t i = 0; i < w->quota; i++) {
		uint64_t k;
		if (w->nhot == w->npages || rng_below(&w->rng, 100) < ZIPF_HOT_HITS)
			k = rng_below(&w->rng, w->nhot);
		else
			k = w->nhot + rng_below(&w->rng, w->npages - w->nhot);
		uint64_t p = (uint64_t)(((unsigned __int128)k * w->mult + w->add) % w->npages);
		rmw_page(w, p, i % SAMPLE_EVERY == 0);
	}
	w->accesses = w->quota;
}

/*
 * Hot bursts over pages [0, nhot) between one-time scans of this thread's
 * share of the cold pages, cut into `rounds` segments:
 *   burst, scan 1, burst, scan 2, ..., scan rounds, burst.
 * Only hot accesses are sampled: the question is whether the scans pushed
 * the hot set out.
 */
static void do_scan_hot(struct worker *w)
{
	uint64_t cold = w->last - w->first, hot_i = 0;
	for (uint64_t r = 0; r <= w->rounds; r++) {
		for (uint64_t i = 0; i < w->burst; i++, hot_i++) {
			uint64_t p = rng_below(&w->rng, w->nhot);
			bool s = hot_i % SAMPLE_EVERY == 0;
			uint64_t t0 = s ? sample_begin(w, p) : 0;
			w->bad += check_page(w->c, p, 0, 0);
			if (s)
				lat_add(w, t0);
			__atomic_store_n(&w->touched[p], 1, __ATOMIC_RELAXED);
		}
		w->accesses += w->burst;
		if (r == w->rounds)
			break;
		uint64_t a = w->first + cold * r / w->rounds, b = w->first + cold * (r + 1) / w->rounds;
		for (uint64_t p = a; p < b; p++) {
			w->bad += check_page(w->c, p, 0, 0);
			w->touched[p] = 1; /* this thread's pages only */
		}
		w->accesses += b - a;
	}
}

/* --- the workloads --- */

static void fill(const struct wl_ctx *c, struct worker *ws)
{
	run_workers(ws, c->threads, do_fill);
}

/*
 * Check every page against generation gen (+ expect[p] in line 0).  This is
 * untimed, so it uses at least one thread per CPU to keep the run short; the
 * workers it needs are its own (the split differs from the timed phase's).
 */
static void verify(const struct wl_ctx *c, uint64_t gen, const uint32_t *expect, struct wl_result *r)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = c->threads;
	if (cpus > (long)n)
		n = cpus > (long)MAX_THREADS ? MAX_THREADS : (unsigned)cpus;
	uint64_t npages = c->bytes / c->page;
	struct worker ws[MAX_THREADS];
	memset(ws, 0, n * sizeof *ws);
	for (unsigned i = 0; i < n; i++) {
		ws[i].c = c;
		ws[i].first = npages * i / n;
		ws[i].last = npages * (i + 1) / n;
		ws[i].gen = gen;
		ws[i].expect = expect;
	}
	run_workers(ws, n, do_verify);
	for (unsigned i = 0; i < n; i++)
		r->bad_words += ws[i].bad;
}

static uint64_t random_accesses(const struct wl_ctx *c)
{
	return c->accesses ? c->accesses : c->bytes / c->page;
}

/* --warmup: c->warmup accesses made with fn after the fill, split over the
 * threads as the timed ones are, before the timed phase (begin()).  Right
 * after the fill RAM holds the fill's last pages, side by side, and the
 * first evictions take them out in long runs at little cost; the warm-up
 * lets RAM reach what the access pattern keeps there.  Its latency samples
 * are dropped; its data errors count. */
static void warm_up(const struct wl_ctx *c, struct worker *ws, void (*fn)(struct worker *))
{
	uint64_t quota[MAX_THREADS];
	if (!c->warmup)
		return;
	for (unsigned i = 0; i < c->threads; i++) {
		quota[i] = ws[i].quota;
		ws[i].quota = share_of(c->warmup, c->threads, i);
	}
	run_workers(ws, c->threads, fn);
	for (unsigned i = 0; i < c->threads; i++) {
		ws[i].quota = quota[i];
		ws[i].nlat = 0;
		ws[i].accesses = 0;
	}
}

/* Each worker sweeps its share of the pages once with fn.  prefill: fill the
 * region first (untimed); gen: the generation fn writes; verify_gen: the
 * generation checked afterwards, or -1 when fn itself checked every line. */
static int sweep_workload(const struct wl_ctx *c, struct wl_result *r, void (*fn)(struct worker *), bool prefill,
			  uint32_t gen, int verify_gen)
{
	struct worker *ws = workers_new(c, 0, 0);
	if (!ws)
		return -ENOMEM;
	if (prefill)
		fill(c, ws);
	for (unsigned i = 0; i < c->threads; i++)
		ws[i].gen = gen;
	begin(c);
	run_workers(ws, c->threads, fn);
	end(c);
	int rc = collect(ws, c->threads, r);
	r->pages_touched = r->accesses;
	if (verify_gen >= 0)
		verify(c, (uint32_t)verify_gen, NULL, r);
	workers_free(ws, c->threads);
	return rc;
}

static int wl_first_touch(const struct wl_ctx *c, struct wl_result *r)
{
	return sweep_workload(c, r, do_seq_write, false, 0, 0);
}

static int wl_seq_read(const struct wl_ctx *c, struct wl_result *r)
{
	return sweep_workload(c, r, do_seq_read, true, 0, -1);
}

static int wl_seq_write(const struct wl_ctx *c, struct wl_result *r)
{
	return sweep_workload(c, r, do_seq_write, true, 1, 1);
}

static int wl_stride(const struct wl_ctx *c, struct wl_result *r)
{
	/* The passes cover every page of every thread's share. */
	return sweep_workload(c, r, do_stride, true, 0, -1);
}

static int wl_rand_read(const struct wl_ctx *c, struct wl_result *r)
{
	uint64_t npages = c->bytes / c->page, n = random_accesses(c);
	unsigned char *touched = calloc(npages, 1);
	struct worker *ws = touched ? workers_new(c, n, n) : NULL;
	if (!ws) {
		free(touched);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < c->threads; i++)
		ws[i].touched = touched;
	fill(c, ws);
	warm_up(c, ws, do_rand_read);
	memset(touched, 0, npages);  /* pages_touched: the timed phase's */
	begin(c);
	run_workers(ws, c->threads, do_rand_read);
	end(c);
	int rc = collect(ws, c->threads, r);
	r->pages_touched = count_touched(touched, npages);
	verify(c, 0, NULL, r);
	workers_free(ws, c->threads);
	free(touched);
	return rc;
}

/* Smallest multiplier at or above a hashed start that is coprime to n, so
 * k -> k * mult % n is a permutation that spreads consecutive ranks. */
static uint64_t coprime_mult(uint64_t n, uint64_t seed)
{
	if (n <= 2)
		return 1;
	uint64_t a = mix(seed) % n;
	for (;; a = a + 1 < n ? a + 1 : 1) {
		uint64_t x = a, y = n;
		while (y) {
			uint64_t t = x % y;
			x = y;
			y = t;
		}
		if (a && x == 1)
			return a;
	}
}

/* Random read-modify-write, uniform (hot_pct 0) or skewed to a hot set. */
static int rmw_workload(const struct wl_ctx *c, struct wl_result *r, unsigned hot_pct)
{
	uint64_t npages = c->bytes / c->page, n = random_accesses(c);
	uint32_t *counts = calloc(npages, sizeof *counts);
	/* The counts after the warm-up, so that pages_touched is the timed
	 * phase's (counts itself keeps every increment, for verify()). */
	uint32_t *warm = c->warmup ? malloc(npages * sizeof *warm) : NULL;
	struct worker *ws = counts && (warm || !c->warmup) ? workers_new(c, n, n) : NULL;
	if (!ws) {
		free(counts);
		free(warm);
		return -ENOMEM;
	}
	uint64_t nhot = npages * hot_pct / 100;
	if (nhot == 0)
		nhot = 1;
	uint64_t mult = coprime_mult(npages, c->seed), add = mix(c->seed + 1) % npages;
	for (unsigned i = 0; i < c->threads; i++) {
		ws[i].counts = counts;
		ws[i].nhot = nhot;
		ws[i].mult = mult;
		ws[i].add = add;
	}
	void (*fn)(struct worker *) = hot_pct ? do_zipf : do_rand_rmw;
	fill(c, ws);
	warm_up(c, ws, fn);
	if (warm)
		memcpy(warm, counts, npages * sizeof *warm);
	begin(c);
	run_workers(ws, c->threads, fn);
	end(c);
	int rc = collect(ws, c->threads, r);
	for (uint64_t p = 0; p < npages; p++)
		r->pages_touched += counts[p] != (warm ? warm[p] : 0);
	verify(c, 0, counts, r);
	workers_free(ws, c->threads);
	free(counts);
	free(warm);
	return rc;
}

static int wl_rand_rmw(const struct wl_ctx *c, struct wl_result *r)
{
	return rmw_workload(c, r, 0);
}

static int wl_zipf(const struct wl_ctx *c, struct wl_result *r)
{
	return rmw_workload(c, r, ZIPF_HOT_PCT);
}

static int wl_scan_hot(const struct wl_ctx *c, struct wl_result *r)
{
	uint64_t npages = c->bytes / c->page;
	uint64_t nhot = c->ram / SCAN_HOT_DIV / c->page;
	if (nhot > npages / 2)
		nhot = npages / 2;
	if (nhot == 0)
		nhot = 1;
	uint64_t cold = npages - nhot, ram_pages = c->ram / c->page ? c->ram / c->page : 1;
	/* Each scan is about one budget long: long enough to flush an LRU. */
	uint64_t rounds = (cold + ram_pages - 1) / ram_pages;
	if (rounds == 0)
		rounds = 1;
	uint64_t burst = (nhot * SCAN_HOT_BURST + c->threads - 1) / c->threads;
	unsigned char *touched = calloc(npages, 1);
	struct worker *ws = touched ? workers_new(c, 0, (rounds + 1) * burst * c->threads) : NULL;
	if (!ws) {
		free(touched);
		return -ENOMEM;
	}
	fill(c, ws); /* every page, from the plain split */
	/* Warm the hot set (untimed): the fill wrote it first, so it has been
	 * evicted, and reloading it once says nothing about scan resistance. */
	for (unsigned i = 0; i < c->threads; i++) {
		ws[i].first = nhot * i / c->threads;
		ws[i].last = nhot * (i + 1) / c->threads;
		ws[i].gen = 0;
	}
	run_workers(ws, c->threads, do_verify);
	for (unsigned i = 0; i < c->threads; i++) {
		ws[i].touched = touched;
		ws[i].nhot = nhot;
		ws[i].rounds = rounds;
		ws[i].burst = burst;
		ws[i].first = nhot + cold * i / c->threads;
		ws[i].last = nhot + cold * (i + 1) / c->threads;
	}
	begin(c);
	run_workers(ws, c->threads, do_scan_hot);
	end(c);
	int rc = collect(ws, c->threads, r);
	r->pages_touched = count_touched(touched, npages);
	verify(c, 0, NULL, r);
	workers_free(ws, c->threads);
	free(touched);
	return rc;
}

const struct workload workloads[] = {
	{ "first-touch", wl_first_touch, "write every page once, in order, into a fresh region", false, false },
	{ "seq-read", wl_seq_read, "read every page in order (after an untimed fill)", false, false },
	{ "seq-write", wl_seq_write, "rewrite every page in order with the next generation", false, false },
	{ "rand-read", wl_rand_read, "read uniformly random pages", true, true },
	{ "rand-rmw", wl_rand_rmw, "increment a counter in uniformly random pages", true, true },
	{ "zipf", wl_zipf, "increment counters, 90% of accesses to a hashed 10% of pages", true, true },
	{ "stride", wl_stride, "read every 16th page, 16 passes at offsets 0..15", false, false },
	{ "scan-hot", wl_scan_hot, "random reads of a hot set of ram/8 between budget-long one-time scans", false, false },
};
_Static_assert(sizeof workloads / sizeof workloads[0] == NWORKLOADS, "NWORKLOADS in bench.h counts workloads[]");
