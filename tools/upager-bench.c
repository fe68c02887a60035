/* SPDX-License-Identifier: MIT */
/*
 * upager-bench: run a set of access patterns over memory larger than a RAM
 * budget and print figures.  It is a program, not a test: it never judges a
 * speed, only the data (every workload checks every page it wrote and exits 1
 * when one is wrong).
 *
 * The code is in three layers so that a second memory backend (the kernel's
 * own swap, with plain mmap inside a memory cgroup) can be added later
 * without touching the workloads:
 *
 *   backend   gives a region of `bytes` and snapshots its paging counters
 *             (only "upager" for now: upager_open + upager_map, a fresh
 *             runtime per run so the runtime's statistics are per run);
 *   workload  a function over a plain char *base that fills (untimed), runs
 *             the timed phase between two hook calls, verifies (untimed),
 *             and returns counts and sampled client latencies;
 *   driver    calls setup, the workload, snapshots around the timed phase,
 *             teardown, and prints one row per (workload, thread count).
 *
 * The data pattern: the first 8-byte word of every 64-byte line of page p
 * holds pattern(salt, p, line, generation).  Read-modify-write workloads add
 * a per-page count to line 0 and keep the expected counts in malloc memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "upager.h"

#define PROG "upager-bench"

#define LINE 64u           /* bytes between checked words */
#define SAMPLE_EVERY 64u   /* time one access in this many */
#define STRIDE 16u         /* stride workload: pages between accesses */
#define MAX_THREADS 256u
#define REPORT_MAX 10      /* data errors printed per run */
#define ZIPF_HOT_PCT 10u   /* zipf: share of pages that are hot ... */
#define ZIPF_HOT_HITS 90u  /* ... and share of accesses that go to them */
#define SCAN_HOT_DIV 8u    /* scan-hot: hot set is the budget / this */
#define SCAN_HOT_BURST 4u  /* scan-hot: hot accesses per hot page per burst */

/* ---------------------------------------------------------------- pattern */

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The word at the start of `line` of `page` after `gen` rewrites.  The salt
 * differs per run, so a page handed back from an older region or a stale
 * store slot does not match by accident. */
static uint64_t pattern(uint64_t salt, uint64_t page, uint64_t line, uint64_t gen)
{
	return mix(mix(salt + page) + line * 0x9e3779b97f4a7c15ULL + gen * 0xc2b2ae3d27d4eb4fULL);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return mix(*s);
}

/* Uniform in [0, n) without a division (Lemire's multiply-shift). */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* --------------------------------------------------------------- backends */

/* Paging counters of a backend, cumulative since setup.  A backend that
 * cannot tell a figure leaves it 0. */
struct mem_counters {
	uint64_t major_faults;    /* faults that waited for a read from the store or swap */
	uint64_t zero_fills;
	uint64_t readahead_pages;
	uint64_t refaults;
	uint64_t wp_faults;       /* first writes to clean pages */
	uint64_t evictions;
	uint64_t writebacks;
	uint64_t clean_drops;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t fault_count;     /* faults resolved, every kind */
	uint64_t fault_ns_total;  /* time spent resolving them */
	uint64_t fault_p50_ns;    /* percentiles over the backend's whole life (not deltas) */
	uint64_t fault_p99_ns;
};

struct backend {
	const char *name;
	/* Give `bytes` of fresh, zeroed memory at *base; 0 or -errno, with a
	 * message in err. */
	int (*setup)(struct backend *be, size_t bytes, char **base, char *err, size_t errlen);
	int (*snapshot)(struct backend *be, struct mem_counters *out);
	/* Release what setup made; safe after a failed setup. */
	void (*teardown)(struct backend *be);
	void *priv;
};

struct upager_backend {
	struct upager_config cfg;
	upager_t *up;
	void *mem;
};

static int upb_setup(struct backend *be, size_t bytes, char **base, char *err, size_t errlen)
{
	struct upager_backend *b = be->priv;
	int rc = upager_open(&b->cfg, &b->up, err, errlen);
	if (rc)
		return rc;
	rc = upager_map(b->up, bytes, NULL, &b->mem);
	if (rc) {
		snprintf(err, errlen, "upager_map(%zu bytes): %s", bytes, strerror(-rc));
		upager_close(b->up);
		b->up = NULL;
		return rc;
	}
	*base = b->mem;
	return 0;
}

static int upb_snapshot(struct backend *be, struct mem_counters *out)
{
	struct upager_backend *b = be->priv;
	struct upager_stats st = { .size = sizeof st };
	int rc = upager_stats(b->up, &st);
	if (rc)
		return rc;
	*out = (struct mem_counters){
		.major_faults = st.store_reads,
		.zero_fills = st.zero_fills,
		.readahead_pages = st.readahead_pages,
		.refaults = st.refaults,
		.wp_faults = st.wp_faults,
		.evictions = st.evictions,
		.writebacks = st.writebacks,
		.clean_drops = st.clean_drops,
		.bytes_read = st.bytes_read,
		.bytes_written = st.bytes_written,
		.fault_count = st.fault_count,
		.fault_ns_total = st.fault_ns_total,
		.fault_p50_ns = st.fault_p50_ns,
		.fault_p99_ns = st.fault_p99_ns,
	};
	return 0;
}

static void upb_teardown(struct backend *be)
{
	struct upager_backend *b = be->priv;
	if (b->mem)
		upager_unmap(b->up, b->mem);
	upager_close(b->up);
	b->mem = NULL;
	b->up = NULL;
}

/* ---------------------------------------------------------------- workloads */

struct wl_ctx;

/* Called by a workload right before and right after its timed phase. */
struct wl_hooks {
	void (*begin)(void *arg);
	void (*end)(void *arg);
	void *arg;
};

struct wl_ctx {
	char *base;
	size_t bytes;
	size_t page;
	unsigned threads;
	uint64_t seed;
	uint64_t accesses;  /* random workloads: accesses in all; 0: one per page */
	uint64_t ram;       /* the memory limit the backend enforces (scan-hot sizes its hot set by it) */
	const struct wl_hooks *hooks;
};

struct wl_result {
	uint64_t accesses;       /* page accesses in the timed phase */
	uint64_t pages_touched;  /* distinct pages among them */
	uint64_t *lat_ns;        /* client latency of every SAMPLE_EVERY-th access; free() it */
	size_t nlat;
	uint64_t bad_words;      /* words that did not hold what was written; 0 means verified */
};

typedef int (*workload_fn)(const struct wl_ctx *c, struct wl_result *r);

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
	uint64_t *lat;
	size_t nlat, cap;
};

static unsigned reported; /* data errors printed in this run (atomic) */

static uint64_t *word_at(const struct wl_ctx *c, uint64_t page, uint64_t line)
{
	return (uint64_t *)(c->base + page * c->page + line * LINE);
}

static void write_page(const struct wl_ctx *c, uint64_t p, uint64_t gen)
{
	for (uint64_t l = 0; l < c->page / LINE; l++)
		*word_at(c, p, l) = pattern(c->seed, p, l, gen);
}

static uint64_t check_line(const struct wl_ctx *c, uint64_t p, uint64_t l, uint64_t gen, uint64_t extra)
{
	uint64_t want = pattern(c->seed, p, l, gen) + extra;
	uint64_t got = __atomic_load_n(word_at(c, p, l), __ATOMIC_RELAXED);
	if (got == want)
		return 0;
	unsigned n = __atomic_fetch_add(&reported, 1, __ATOMIC_RELAXED);
	if (n < REPORT_MAX)
		fprintf(stderr, "%s" PROG ": DATA ERROR: page %" PRIu64 " line %" PRIu64 " (offset %#" PRIx64
			"): read 0x%016" PRIx64 ", expected 0x%016" PRIx64 "%s\n", n == 0 ? "\n" : "",
			p, l, p * c->page + l * LINE, got, want, got == 0 ? " (reads as zero: page lost)" : "");
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

static void lat_add(struct worker *w, uint64_t ns)
{
	if (w->nlat < w->cap)
		w->lat[w->nlat++] = ns;
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
		w->quota = total / n + (i < total % n);
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
		uint64_t t0 = s ? now_ns() : 0;
		write_page(w->c, p, w->gen);
		if (s)
			lat_add(w, now_ns() - t0);
		w->accesses++;
	}
}

static void do_seq_read(struct worker *w)
{
	for (uint64_t p = w->first; p < w->last; p++) {
		bool s = w->accesses % SAMPLE_EVERY == 0;
		uint64_t t0 = s ? now_ns() : 0;
		w->bad += check_page(w->c, p, w->gen, 0);
		if (s)
			lat_add(w, now_ns() - t0);
		w->accesses++;
	}
}

static void do_stride(struct worker *w)
{
	for (uint64_t off = 0; off < STRIDE; off++)
		for (uint64_t p = w->first + off; p < w->last; p += STRIDE) {
			bool s = w->accesses % SAMPLE_EVERY == 0;
			uint64_t t0 = s ? now_ns() : 0;
			w->bad += check_page(w->c, p, 0, 0);
			if (s)
				lat_add(w, now_ns() - t0);
			w->accesses++;
		}
}

static void do_rand_read(struct worker *w)
{
	for (uint64_t i = 0; i < w->quota; i++) {
		uint64_t p = rng_below(&w->rng, w->npages);
		bool s = i % SAMPLE_EVERY == 0;
		uint64_t t0 = s ? now_ns() : 0;
		w->bad += check_page(w->c, p, 0, 0);
		if (s)
			lat_add(w, now_ns() - t0);
		__atomic_store_n(&w->touched[p], 1, __ATOMIC_RELAXED);
	}
	w->accesses = w->quota;
}

/* Read line 1 (never changed here) and bump the counter in line 0. */
static void rmw_page(struct worker *w, uint64_t p, bool sample)
{
	uint64_t t0 = sample ? now_ns() : 0;
	w->bad += check_line(w->c, p, 1, 0, 0);
	__atomic_fetch_add(word_at(w->c, p, 0), 1, __ATOMIC_RELAXED);
	if (sample)
		lat_add(w, now_ns() - t0);
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
			uint64_t t0 = s ? now_ns() : 0;
			w->bad += check_page(w->c, p, 0, 0);
			if (s)
				lat_add(w, now_ns() - t0);
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

static int wl_first_touch(const struct wl_ctx *c, struct wl_result *r)
{
	struct worker *ws = workers_new(c, 0, 0);
	if (!ws)
		return -ENOMEM;
	begin(c);
	run_workers(ws, c->threads, do_seq_write);
	end(c);
	int rc = collect(ws, c->threads, r);
	r->pages_touched = r->accesses;
	verify(c, 0, NULL, r);
	workers_free(ws, c->threads);
	return rc;
}

static int wl_seq_read(const struct wl_ctx *c, struct wl_result *r)
{
	struct worker *ws = workers_new(c, 0, 0);
	if (!ws)
		return -ENOMEM;
	fill(c, ws);
	begin(c);
	run_workers(ws, c->threads, do_seq_read);
	end(c);
	/* The timed phase checked every line of every page: that is the verification. */
	int rc = collect(ws, c->threads, r);
	r->pages_touched = r->accesses;
	workers_free(ws, c->threads);
	return rc;
}

static int wl_seq_write(const struct wl_ctx *c, struct wl_result *r)
{
	struct worker *ws = workers_new(c, 0, 0);
	if (!ws)
		return -ENOMEM;
	fill(c, ws);
	for (unsigned i = 0; i < c->threads; i++)
		ws[i].gen = 1;
	begin(c);
	run_workers(ws, c->threads, do_seq_write);
	end(c);
	int rc = collect(ws, c->threads, r);
	r->pages_touched = r->accesses;
	verify(c, 1, NULL, r);
	workers_free(ws, c->threads);
	return rc;
}

static int wl_stride(const struct wl_ctx *c, struct wl_result *r)
{
	struct worker *ws = workers_new(c, 0, 0);
	if (!ws)
		return -ENOMEM;
	fill(c, ws);
	begin(c);
	run_workers(ws, c->threads, do_stride);
	end(c);
	/* The passes cover every page of every thread's share: verified. */
	int rc = collect(ws, c->threads, r);
	r->pages_touched = r->accesses;
	workers_free(ws, c->threads);
	return rc;
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
	struct worker *ws = counts ? workers_new(c, n, n) : NULL;
	if (!ws) {
		free(counts);
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
	fill(c, ws);
	begin(c);
	run_workers(ws, c->threads, hot_pct ? do_zipf : do_rand_rmw);
	end(c);
	int rc = collect(ws, c->threads, r);
	for (uint64_t p = 0; p < npages; p++)
		r->pages_touched += counts[p] != 0;
	verify(c, 0, counts, r);
	workers_free(ws, c->threads);
	free(counts);
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

struct workload {
	const char *name;
	workload_fn fn;
	const char *what;
};

static const struct workload workloads[] = {
	{ "first-touch", wl_first_touch, "write every page once, in order, into a fresh region" },
	{ "seq-read", wl_seq_read, "read every page in order (after an untimed fill)" },
	{ "seq-write", wl_seq_write, "rewrite every page in order with the next generation" },
	{ "rand-read", wl_rand_read, "read uniformly random pages" },
	{ "rand-rmw", wl_rand_rmw, "increment a counter in uniformly random pages" },
	{ "zipf", wl_zipf, "increment counters, 90% of accesses to a hashed 10% of pages" },
	{ "stride", wl_stride, "read every 16th page, 16 passes at offsets 0..15" },
	{ "scan-hot", wl_scan_hot, "random reads of a hot set of ram/8 between budget-long one-time scans" },
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* ------------------------------------------------------------------ driver */

/* One row of the figures table.  Every field is listed in columns[] below,
 * which drives the CSV and JSON output. */
struct row {
	char workload[16];
	uint64_t threads;
	uint64_t accesses;
	uint64_t pages_touched;
	double seconds;
	double accesses_per_s;
	uint64_t fault_p50_ns;     /* handler side, runtime life (fill included) */
	uint64_t fault_p99_ns;
	double fault_mean_ns;      /* handler side, timed phase only */
	uint64_t faults;
	uint64_t client_p50_ns;
	uint64_t client_p99_ns;
	uint64_t client_samples;
	uint64_t store_reads;
	uint64_t zero_fills;
	uint64_t readahead_pages;
	uint64_t refaults;
	uint64_t wp_faults;
	uint64_t evictions;
	uint64_t writebacks;
	uint64_t clean_drops;
	uint64_t bytes_read;
	uint64_t bytes_written;
	double cpu_s;
	double cpu_s_per_major_fault;  /* NAN without major faults */
	double cpu_s_per_page_in;      /* per page read from the store, readahead included; NAN without */
	double fill_s;
	double verify_s;
	uint64_t bad_words;
};

struct column {
	const char *name;
	char kind; /* 's' string, 'u' uint64_t, 'd' double */
	size_t off;
};

#define COL(f, k) { #f, k, offsetof(struct row, f) }
static const struct column columns[] = {
	COL(workload, 's'), COL(threads, 'u'), COL(accesses, 'u'), COL(pages_touched, 'u'),
	COL(seconds, 'd'), COL(accesses_per_s, 'd'),
	COL(fault_p50_ns, 'u'), COL(fault_p99_ns, 'u'), COL(fault_mean_ns, 'd'), COL(faults, 'u'),
	COL(client_p50_ns, 'u'), COL(client_p99_ns, 'u'), COL(client_samples, 'u'),
	COL(store_reads, 'u'), COL(zero_fills, 'u'), COL(readahead_pages, 'u'), COL(refaults, 'u'),
	COL(wp_faults, 'u'), COL(evictions, 'u'), COL(writebacks, 'u'), COL(clean_drops, 'u'),
	COL(bytes_read, 'u'), COL(bytes_written, 'u'),
	COL(cpu_s, 'd'), COL(cpu_s_per_major_fault, 'd'), COL(cpu_s_per_page_in, 'd'),
	COL(fill_s, 'd'), COL(verify_s, 'd'), COL(bad_words, 'u'),
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

struct phase {
	struct backend *be;
	uint64_t t0, t1;
	double cpu0, cpu1;
	struct mem_counters s0, s1;
	int err;
};

static void phase_begin(void *arg)
{
	struct phase *ph = arg;
	int rc = ph->be->snapshot(ph->be, &ph->s0);
	if (rc)
		ph->err = rc;
	ph->cpu0 = cpu_seconds();
	ph->t0 = now_ns();
}

static void phase_end(void *arg)
{
	struct phase *ph = arg;
	ph->t1 = now_ns();
	ph->cpu1 = cpu_seconds();
	int rc = ph->be->snapshot(ph->be, &ph->s1);
	if (rc)
		ph->err = rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned pct)
{
	if (!n)
		return 0;
	size_t rank = (size_t)ceil(pct / 100.0 * (double)n);
	return v[rank ? rank - 1 : 0];
}

struct opts {
	uint64_t ram, data, page, accesses, seed;
	unsigned threads[32];
	unsigned nthreads;
	bool want[NWORKLOADS];
	const char *csv, *json;
	bool quiet;
};

/* One (workload, threads) run on a fresh backend region.  0, -errno for a
 * backend or memory failure (with a message printed). */
static int run_one(struct backend *be, const struct opts *o, const struct workload *wl, unsigned threads,
		   struct row *row)
{
	char err[512] = "";
	char *base = NULL;
	int rc = be->setup(be, o->data, &base, err, sizeof err);
	if (rc) {
		fprintf(stderr, PROG ": %s backend: cannot set up %" PRIu64 " bytes: %s\n", be->name, o->data,
			err[0] ? err : strerror(-rc));
		return rc;
	}
	struct phase ph = { .be = be };
	struct wl_hooks hooks = { phase_begin, phase_end, &ph };
	struct wl_ctx c = {
		.base = base, .bytes = o->data, .page = o->page, .threads = threads,
		.seed = mix(o->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)(wl - workloads) * 131 + threads),
		.accesses = o->accesses, .ram = o->ram, .hooks = &hooks,
	};
	struct wl_result r = { 0 };
	__atomic_store_n(&reported, 0, __ATOMIC_RELAXED);
	uint64_t t_start = now_ns();
	rc = wl->fn(&c, &r);
	uint64_t t_done = now_ns();
	be->teardown(be);
	if (rc) {
		fprintf(stderr, PROG ": %s with %u thread%s: %s\n", wl->name, threads, threads == 1 ? "" : "s",
			strerror(-rc));
		free(r.lat_ns);
		return rc;
	}
	if (ph.err)
		fprintf(stderr, PROG ": warning: %s backend statistics unavailable: %s\n", be->name,
			strerror(-ph.err));

	struct mem_counters *a = &ph.s0, *b = &ph.s1;
	memset(row, 0, sizeof *row);
	snprintf(row->workload, sizeof row->workload, "%s", wl->name);
	row->threads = threads;
	row->accesses = r.accesses;
	row->pages_touched = r.pages_touched;
	row->seconds = (ph.t1 - ph.t0) / 1e9;
	row->accesses_per_s = row->seconds > 0 ? r.accesses / row->seconds : 0;
	row->fault_p50_ns = b->fault_p50_ns;
	row->fault_p99_ns = b->fault_p99_ns;
	row->faults = b->fault_count - a->fault_count;
	row->fault_mean_ns = row->faults ? (double)(b->fault_ns_total - a->fault_ns_total) / row->faults : 0;
	qsort(r.lat_ns, r.nlat, sizeof *r.lat_ns, cmp_u64);
	row->client_p50_ns = percentile(r.lat_ns, r.nlat, 50);
	row->client_p99_ns = percentile(r.lat_ns, r.nlat, 99);
	row->client_samples = r.nlat;
	row->store_reads = b->major_faults - a->major_faults;
	row->zero_fills = b->zero_fills - a->zero_fills;
	row->readahead_pages = b->readahead_pages - a->readahead_pages;
	row->refaults = b->refaults - a->refaults;
	row->wp_faults = b->wp_faults - a->wp_faults;
	row->evictions = b->evictions - a->evictions;
	row->writebacks = b->writebacks - a->writebacks;
	row->clean_drops = b->clean_drops - a->clean_drops;
	row->bytes_read = b->bytes_read - a->bytes_read;
	row->bytes_written = b->bytes_written - a->bytes_written;
	row->cpu_s = ph.cpu1 - ph.cpu0;
	row->cpu_s_per_major_fault = row->store_reads ? row->cpu_s / row->store_reads : NAN;
	row->cpu_s_per_page_in = row->store_reads + row->readahead_pages ?
		row->cpu_s / (row->store_reads + row->readahead_pages) : NAN;
	row->fill_s = (ph.t0 - t_start) / 1e9;
	row->verify_s = (t_done - ph.t1) / 1e9;
	row->bad_words = r.bad_words;
	free(r.lat_ns);
	return 0;
}

/* ------------------------------------------------------------------ output */

struct machine {
	long nproc;
	char kernel[200];
	char cpu[128];
	char store[600];
};

static void machine_probe(struct machine *m, const struct upager_config *cfg)
{
	struct utsname u;
	memset(m, 0, sizeof *m);
	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon) {
			colon += 1 + (colon[1] == ' ');
			colon[strcspn(colon, "\n")] = 0;
			snprintf(m->cpu, sizeof m->cpu, "%s", colon);
			break;
		}
	}
	if (f)
		fclose(f);
	if (cfg->store_path) {
		snprintf(m->store, sizeof m->store, "%s (UPAGER_STORE)", cfg->store_path);
	} else {
		const char *t = getenv("TMPDIR");
		if (t && *t)
			snprintf(m->store, sizeof m->store, "unlinked file in %s ($TMPDIR; /var/tmp if it lacks O_DIRECT)", t);
		else
			snprintf(m->store, sizeof m->store, "unlinked file in /tmp (default; /var/tmp if it lacks O_DIRECT)");
	}
}

static void human_size(uint64_t b, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned i = 0;
	double v = (double)b;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, u[i]);
	else
		snprintf(buf, len, "%.2f %s", v, u[i]);
}

static void print_header(FILE *out, const struct machine *m, const struct upager_config *cfg,
			 const struct opts *o)
{
	char ram[32], data[32], page[32];
	human_size(o->ram, ram, sizeof ram);
	human_size(o->data, data, sizeof data);
	human_size(o->page, page, sizeof page);
	fprintf(out, "%s %s (libupager %s), backend upager\n", PROG, UPAGER_VERSION_STRING, upager_version());
	fprintf(out, "machine  %ld CPUs%s%s, %s\n", m->nproc, m->cpu[0] ? ", " : "", m->cpu, m->kernel);
	fprintf(out, "store    %s\n", m->store);
	fprintf(out, "memory   ram %s, data %s (%.1fx), page %s, policy %s\n", ram, data,
		(double)o->data / (double)o->ram, page, cfg->policy);
	fprintf(out, "runtime  %u handler thread%s, readahead %u pages, fault-around %u pages, io depth %u, seed %" PRIu64 "\n",
		cfg->handler_threads, cfg->handler_threads == 1 ? "" : "s", cfg->readahead_max, cfg->fault_around,
		cfg->io_depth, o->seed);
	fprintf(out, "\n"
		"acc/s: page accesses per second in the timed phase (fill, warm-up and verification untimed).\n"
		"flt p50/p99: handler fault latency over the runtime's life, fill included; flt avg: timed phase only.\n"
		"cli p50/p99: client latency of 1 access in %u (scan-hot: hot-set accesses only).\n"
		"st-rd: store reads (major faults); evict/wback/cdrop: evictions, write-backs, clean drops;\n"
		"rd/wr: store MiB read/written; cpu/maj: process CPU (user+sys, upager threads included) per major fault.\n"
		"All latencies in microseconds.\n\n", SAMPLE_EVERY);
	fprintf(out, "%-11s %3s %9s %7s %9s %7s %8s %7s %7s %8s %8s %8s %8s %8s %7s %7s %7s\n",
		"workload", "thr", "accesses", "secs", "acc/s", "flt-p50", "flt-p99", "flt-avg", "cli-p50", "cli-p99",
		"st-rd", "evict", "wback", "cdrop", "rd-MiB", "wr-MiB", "cpu/maj");
	fflush(out);
}

static void print_row(FILE *out, const struct row *r)
{
	char cpu[32];
	if (isnan(r->cpu_s_per_major_fault))
		snprintf(cpu, sizeof cpu, "-");
	else
		snprintf(cpu, sizeof cpu, "%.1f", r->cpu_s_per_major_fault * 1e6);
	fprintf(out, "%-11s %3" PRIu64 " %9" PRIu64 " %7.2f %9.0f %7.1f %8.1f %7.1f %7.1f %8.1f %8" PRIu64
		" %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7.0f %7.0f %7s%s\n",
		r->workload, r->threads, r->accesses, r->seconds, r->accesses_per_s,
		r->fault_p50_ns / 1e3, r->fault_p99_ns / 1e3, r->fault_mean_ns / 1e3,
		r->client_p50_ns / 1e3, r->client_p99_ns / 1e3,
		r->store_reads, r->evictions, r->writebacks, r->clean_drops,
		r->bytes_read / 1048576.0, r->bytes_written / 1048576.0, cpu,
		r->bad_words ? "  DATA ERRORS" : "");
	fflush(out);
}

/* Opened before any run, so a typo in a path does not cost a whole run. */
static FILE *open_out(const char *opt, const char *path)
{
	if (!path)
		return NULL;
	if (strcmp(path, "-") == 0)
		return stdout;
	FILE *f = fopen(path, "w");
	if (!f)
		fprintf(stderr, PROG ": %s %s: cannot create it: %s\n", opt, path, strerror(errno));
	return f;
}

/* 0, or -errno after printing why. */
static int close_out(FILE *f, const char *path)
{
	int bad = ferror(f);
	if (f == stdout)
		bad |= fflush(f) != 0;
	else
		bad |= fclose(f) != 0;
	if (bad) {
		fprintf(stderr, PROG ": writing %s failed\n", path);
		return -EIO;
	}
	return 0;
}

static void csv_value(FILE *f, const struct row *r, const struct column *col)
{
	const char *p = (const char *)r + col->off;
	double d;
	uint64_t u;
	switch (col->kind) {
	case 's':
		fputs(p, f); /* workload names need no quoting */
		break;
	case 'u':
		memcpy(&u, p, sizeof u);
		fprintf(f, "%" PRIu64, u);
		break;
	default:
		memcpy(&d, p, sizeof d);
		if (!isnan(d))
			fprintf(f, "%.9g", d);
		break;
	}
}

static int write_csv(FILE *f, const char *path, const struct row *rows, size_t n)
{
	for (size_t c = 0; c < NCOLUMNS; c++)
		fprintf(f, "%s%s", columns[c].name, c + 1 < NCOLUMNS ? "," : "\n");
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < NCOLUMNS; c++) {
			csv_value(f, &rows[i], &columns[c]);
			fputc(c + 1 < NCOLUMNS ? ',' : '\n', f);
		}
	return close_out(f, path);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static int write_json(FILE *f, const char *path, const struct row *rows, size_t n, const struct machine *m,
		      const struct upager_config *cfg, const struct opts *o, bool verified)
{
	fprintf(f, "{\n  \"tool\": \"%s\",\n  \"version\": \"%s\",\n  \"library_version\": ", PROG,
		UPAGER_VERSION_STRING);
	json_string(f, upager_version());
	fprintf(f, ",\n  \"machine\": {\"nproc\": %ld, \"kernel\": ", m->nproc);
	json_string(f, m->kernel);
	fprintf(f, ", \"cpu\": ");
	json_string(f, m->cpu);
	fprintf(f, "},\n  \"config\": {\"backend\": \"upager\", \"store\": ");
	json_string(f, m->store);
	fprintf(f, ", \"ram\": %" PRIu64 ", \"data\": %" PRIu64 ", \"page\": %" PRIu64 ", \"policy\": ",
		o->ram, o->data, o->page);
	json_string(f, cfg->policy);
	fprintf(f, ", \"handler_threads\": %u, \"readahead_max\": %u, \"fault_around\": %u, \"io_depth\": %u"
		", \"accesses\": %" PRIu64 ", \"seed\": %" PRIu64 ", \"sample_every\": %u},\n",
		cfg->handler_threads, cfg->readahead_max, cfg->fault_around, cfg->io_depth, o->accesses, o->seed,
		SAMPLE_EVERY);
	fprintf(f, "  \"verified\": %s,\n  \"results\": [", verified ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s\n    {", i ? "," : "");
		for (size_t c = 0; c < NCOLUMNS; c++) {
			const struct column *col = &columns[c];
			const char *p = (const char *)&rows[i] + col->off;
			fprintf(f, "%s\"%s\": ", c ? ", " : "", col->name);
			if (col->kind == 's') {
				json_string(f, p);
			} else if (col->kind == 'u') {
				uint64_t u;
				memcpy(&u, p, sizeof u);
				fprintf(f, "%" PRIu64, u);
			} else {
				double d;
				memcpy(&d, p, sizeof d);
				if (isnan(d))
					fputs("null", f);
				else
					fprintf(f, "%.9g", d);
			}
		}
		fputc('}', f);
	}
	fprintf(f, "\n  ]\n}\n");
	return close_out(f, path);
}

/* ----------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [--ram SIZE] [--data SIZE] [--threads N[,N...]] [--page SIZE]\n"
"                    [--policy NAME] [--workload NAME[,NAME...]] [--accesses N]\n"
"                    [--seed N] [--csv FILE] [--json FILE] [--quiet]\n"
"\n"
"Run access patterns over a paged region larger than the RAM budget and print\n"
"one line of figures per workload and thread count.  Each run gets a fresh\n"
"runtime and region; data is filled (untimed), the access pattern is timed,\n"
"then every page is verified (untimed).  An access is one page: a read checks\n"
"the first word of each 64-byte line, a read-modify-write checks one word and\n"
"increments another.  The threads split the pages (sequential workloads) or\n"
"the accesses (random workloads) between them.\n"
"\n"
"Exit status: 0 every page verified; 1 a page held wrong data, the runtime\n"
"failed, or --csv/--json could not be written; 2 a bad argument or setting.\n"
"\n"
"Options (SIZE: a number with an optional K, M, G or T suffix, binary units,\n"
"such as 4096, 512M or 1.5G; an option may also be written --name=VALUE):\n"
"  --ram SIZE         RAM budget of the runtime (default 256M, or UPAGER_RAM)\n"
"  --data SIZE        size of the region each run uses, rounded down to whole\n"
"                     pages, at least 16 pages (default 4 times the RAM budget)\n"
"  --threads LIST     application thread counts, whole numbers from 1 to %u\n"
"                     separated by commas, such as 1,2,8; every workload runs\n"
"                     once per count (default 1)\n"
"  --page SIZE        page size: a power of two from 4K up to the library's\n"
"                     limit, such as 4K, 64K or 2M\n"
"                     (default 4K, or UPAGER_PAGE)\n"
"  --policy NAME      replacement policy: s3fifo, clock or fifo\n"
"                     (default s3fifo, or UPAGER_POLICY)\n"
"  --workload LIST    workloads to run, separated by commas, or \"all\"\n"
"                     (default all, in the order below)\n"
"  --accesses N       accesses made by rand-read, rand-rmw and zipf, shared by\n"
"                     the threads: a whole number such as 100000, or with a\n"
"                     K/M/G suffix (default: one per page of --data)\n"
"  --seed N           seed of the random choices and data pattern (default 1)\n"
"  --csv FILE         also write the table as CSV (\"-\" for standard output)\n"
"  --json FILE        also write the table and settings as JSON (\"-\": stdout)\n"
"  --quiet            no progress lines on standard error\n"
"  -h, --help         show this help\n"
"\n"
"Workloads:\n", MAX_THREADS);
	for (size_t i = 0; i < NWORKLOADS; i++)
		fprintf(f, "  %-12s %s\n", workloads[i].name, workloads[i].what);
	fprintf(f,
"\n"
"Other runtime settings (store location, handler threads, readahead, I/O depth,\n"
"log level) come from the UPAGER_* environment variables; options given here\n"
"override them.  The store defaults to an unlinked file in $TMPDIR or /tmp.\n");
}

static int bad_arg(const char *opt, const char *val, const char *expected)
{
	fprintf(stderr, PROG ": %s '%s' is not valid: expected %s\n", opt, val, expected);
	fprintf(stderr, "Try '" PROG " --help'.\n");
	return 2;
}

static int parse_uint_list(const char *opt, const char *val, unsigned *out, unsigned max_n, unsigned *n)
{
	char expect[160];
	snprintf(expect, sizeof expect, "whole numbers from 1 to %u separated by commas, such as 1,2,8", MAX_THREADS);
	const char *p = val;
	*n = 0;
	for (;;) {
		uint64_t v = 0;
		const char *start = p;
		while (*p >= '0' && *p <= '9' && v <= MAX_THREADS)
			v = v * 10 + (uint64_t)(*p++ - '0');
		if (p == start || v < 1 || v > MAX_THREADS || (*p && *p != ','))
			return bad_arg(opt, val, expect);
		if (*n == max_n) {
			char more[64];
			snprintf(more, sizeof more, "at most %u thread counts", max_n);
			return bad_arg(opt, val, more);
		}
		out[(*n)++] = (unsigned)v;
		if (!*p)
			return 0;
		p++;
	}
}

static int parse_workloads(const char *val, bool *want)
{
	char expect[256] = "\"all\" or names separated by commas from: ";
	for (size_t i = 0; i < NWORKLOADS; i++) {
		strcat(expect, workloads[i].name);
		strcat(expect, i + 1 < NWORKLOADS ? ", " : "");
	}
	memset(want, 0, NWORKLOADS * sizeof *want);
	const char *p = val;
	for (;;) {
		size_t len = strcspn(p, ",");
		bool found = false;
		if (len == 3 && strncmp(p, "all", 3) == 0) {
			for (size_t i = 0; i < NWORKLOADS; i++)
				want[i] = true;
			found = true;
		}
		for (size_t i = 0; i < NWORKLOADS && !found; i++)
			if (strlen(workloads[i].name) == len && strncmp(p, workloads[i].name, len) == 0)
				want[i] = found = true;
		if (!found)
			return bad_arg("--workload", val, expect);
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

static int parse_size_arg(const char *opt, const char *val, uint64_t *out, const char *expected)
{
	if (upager_parse_size(val, out))
		return bad_arg(opt, val, expected);
	return 0;
}

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	fprintf(stderr, "upager: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct upager_config cfg;
	char err[512];
	struct opts o = { .seed = 1, .threads = { 1 }, .nthreads = 1 };
	for (size_t i = 0; i < NWORKLOADS; i++)
		o.want[i] = true;

	upager_config_init(&cfg);
	if (upager_config_from_env(&cfg, err, sizeof err)) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	cfg.log = log_cb;

	const char *policy = NULL;
	bool have_page = false, have_ram = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		char name[32];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(arg, "--quiet")) {
			o.quiet = true;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, PROG ": unexpected argument '%s': every setting is an option such as --ram 512M\n"
				"Try '" PROG " --help'.\n", arg);
			return 2;
		}
		const char *eq = strchr(arg, '=');
		size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		if (nlen >= sizeof name)
			nlen = sizeof name - 1;
		memcpy(name, arg, nlen);
		name[nlen] = 0;
		static const char *const with_value[] = { "--ram", "--data", "--threads", "--page", "--policy",
							  "--workload", "--accesses", "--seed", "--csv", "--json" };
		bool known = false;
		for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
			known |= !strcmp(name, with_value[k]);
		if (!known) {
			fprintf(stderr, PROG ": unknown option '%s'\nTry '" PROG " --help'.\n", arg);
			return 2;
		}
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(stderr, PROG ": %s needs a value\nTry '" PROG " --help'.\n", name);
			return 2;
		}

		int rc = 0;
		if (!strcmp(name, "--ram")) {
			rc = parse_size_arg(name, val, &o.ram, "a size such as 256M or 1G (binary units K, M, G, T)");
			if (!rc && o.ram == 0)
				rc = bad_arg(name, val, "a size above zero, such as 256M");
			have_ram = true;
		} else if (!strcmp(name, "--data")) {
			rc = parse_size_arg(name, val, &o.data, "a size such as 1G or 1.5G (binary units K, M, G, T)");
		} else if (!strcmp(name, "--page")) {
			rc = parse_size_arg(name, val, &o.page, "a power-of-two size of at least 4K, such as 4K or 64K");
			if (!rc && (o.page < 4096 || o.page > UINT32_MAX || (o.page & (o.page - 1))))
				rc = bad_arg(name, val, "a power-of-two size of at least 4K, such as 4K or 64K");
			have_page = true;
		} else if (!strcmp(name, "--threads")) {
			rc = parse_uint_list(name, val, o.threads, sizeof o.threads / sizeof o.threads[0], &o.nthreads);
		} else if (!strcmp(name, "--policy")) {
			if (!*val)
				rc = bad_arg(name, val, "a policy name: s3fifo, clock or fifo");
			policy = val;
		} else if (!strcmp(name, "--workload")) {
			rc = parse_workloads(val, o.want);
		} else if (!strcmp(name, "--accesses")) {
			rc = parse_size_arg(name, val, &o.accesses, "a whole number above zero such as 100000 or 1M");
			if (!rc && o.accesses == 0)
				rc = bad_arg(name, val, "a whole number above zero such as 100000 or 1M");
		} else if (!strcmp(name, "--seed")) {
			char *end;
			errno = 0;
			unsigned long long s = strtoull(val, &end, 10);
			if (!*val || *end || errno || *val == '-')
				rc = bad_arg(name, val, "a whole number such as 1 or 42");
			o.seed = s;
		} else if (!strcmp(name, "--csv")) {
			o.csv = val;
		} else if (!strcmp(name, "--json")) {
			o.json = val;
		}
		if (rc)
			return rc;
	}

	if (have_ram)
		cfg.ram_budget = o.ram;
	if (have_page)
		cfg.page_size = (uint32_t)o.page;
	if (policy)
		cfg.policy = policy;
	o.ram = cfg.ram_budget;
	o.page = cfg.page_size;
	if (!o.data)
		o.data = o.ram * 4;
	o.data -= o.data % o.page;
	if (o.data / o.page < 16) {
		char p[32];
		human_size(o.page, p, sizeof p);
		fprintf(stderr, PROG ": --data must hold at least 16 pages of %s (at least %" PRIu64 " bytes)\n", p,
			o.page * 16);
		return 2;
	}
	if (o.data > SIZE_MAX / 2) {
		fprintf(stderr, PROG ": --data is too large for this machine's address space\n");
		return 2;
	}

	/* Open once up front so a bad policy, page size or store, or missing
	 * privilege, is reported before anything runs. */
	upager_t *probe;
	int rc = upager_open(&cfg, &probe, err, sizeof err);
	if (rc) {
		if (rc == -EINVAL)
			fprintf(stderr, PROG ": the settings were refused (--ram, --page, --policy or UPAGER_*): %s\n", err);
		else
			fprintf(stderr, PROG ": cannot start upager: %s\n", err);
		return rc == -EINVAL ? 2 : 1;
	}
	void *probe_mem;
	rc = upager_map(probe, o.page * 16, NULL, &probe_mem);
	if (rc == 0)
		upager_unmap(probe, probe_mem);
	upager_close(probe);
	if (rc) {
		fprintf(stderr, PROG ": upager cannot map a region with %" PRIu64 "-byte pages: %s; "
			"choose a smaller --page\n", o.page, strerror(-rc));
		return rc == -EINVAL ? 2 : 1;
	}

	FILE *csv = open_out("--csv", o.csv), *json = open_out("--json", o.json);
	if ((o.csv && !csv) || (o.json && !json)) {
		if (csv && csv != stdout)
			fclose(csv);
		if (json && json != stdout)
			fclose(json);
		return 2;
	}

	struct machine m;
	machine_probe(&m, &cfg);
	print_header(stdout, &m, &cfg, &o);

	struct upager_backend ub = { .cfg = cfg };
	struct backend be = {
		.name = "upager", .setup = upb_setup, .snapshot = upb_snapshot, .teardown = upb_teardown, .priv = &ub,
	};

	struct row *rows = calloc(NWORKLOADS * o.nthreads, sizeof *rows);
	if (!rows) {
		fprintf(stderr, PROG ": out of memory\n");
		if (csv && csv != stdout)
			fclose(csv);
		if (json && json != stdout)
			fclose(json);
		return 1;
	}
	size_t nrows = 0;
	bool data_ok = true, failed = false;
	uint64_t t_all = now_ns();
	for (size_t w = 0; w < NWORKLOADS && !failed; w++) {
		if (!o.want[w])
			continue;
		for (unsigned t = 0; t < o.nthreads && !failed; t++) {
			unsigned threads = o.threads[t];
			if (!o.quiet)
				fprintf(stderr, "%s: %s, %u thread%s ...", PROG, workloads[w].name, threads,
					threads == 1 ? "" : "s");
			struct row *r = &rows[nrows];
			if (run_one(&be, &o, &workloads[w], threads, r)) {
				failed = true;
				break;
			}
			nrows++;
			if (!o.quiet)
				fprintf(stderr, " fill %.1f s, run %.1f s, verify %.1f s\n", r->fill_s, r->seconds,
					r->verify_s);
			print_row(stdout, r);
			if (r->bad_words) {
				data_ok = false;
				fprintf(stderr, PROG ": VERIFICATION FAILED: %s with %u thread%s: %" PRIu64
					" wrong words\n", workloads[w].name, threads, threads == 1 ? "" : "s",
					r->bad_words);
			}
		}
	}
	printf("\n%zu runs in %.1f s: %s\n", nrows, (now_ns() - t_all) / 1e9,
	       failed ? "STOPPED by a runtime failure" :
	       data_ok ? "every page verified" : "DATA ERRORS (see above)");

	int out_rc = 0;
	if (csv)
		out_rc |= write_csv(csv, o.csv, rows, nrows);
	if (json)
		out_rc |= write_json(json, o.json, rows, nrows, &m, &cfg, &o, data_ok && !failed);
	free(rows);
	if (!data_ok || failed || out_rc)
		return 1;
	return 0;
}
