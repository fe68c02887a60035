/* SPDX-License-Identifier: MIT */
/*
 * upager-bench: run a set of access patterns over memory larger than a RAM
 * budget and print figures.  It is a program, not a test: it never judges a
 * speed, only the data (every workload checks every page it wrote and exits 1
 * when one is wrong).
 *
 * The code is in three layers so that the memory backends (upager, and the
 * kernel's own swap with plain mmap inside a memory cgroup) share the
 * workloads:
 *
 *   backend   gives a region of `bytes` and snapshots its paging counters
 *             ("upager": upager_open + upager_map, a fresh runtime per run
 *             so the runtime's statistics are per run; "kernel": mmap);
 *   workload  a function over a plain char *base that fills (untimed), runs
 *             the timed phase between two hook calls, verifies (untimed),
 *             and returns counts and sampled client latencies;
 *   driver    calls setup, the workload, snapshots around the timed phase,
 *             teardown, and prints one row per (workload, thread count).
 *
 * "upager-bench compare" adds the second backend, the kernel's own swap:
 * each workload runs in a forked child over plain anonymous memory inside a
 * memory cgroup capped at the budget, with a swap file on the store's
 * filesystem, then the same workload runs under upager in this process.  It
 * also measures the store filesystem's O_DIRECT limits with io_uring and
 * prints the issue-4 targets.  See the "compare" section.
 *
 * The data pattern: the first 8-byte word of every 64-byte line of page p
 * holds pattern(salt, p, line, generation).  Read-modify-write workloads add
 * a per-page count to line 0 and keep the expected counts in malloc memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/swap.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
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
#define LAT_FAULT (1ULL << 63) /* latency sample flag: the page was not mapped */

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
	uint64_t wp_faults;       /* write-protect faults */
	uint64_t evictions;
	uint64_t writebacks;
	uint64_t clean_drops;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t fault_count;     /* faults resolved, every kind */
	uint64_t fault_ns_total;  /* time spent resolving them */
	uint64_t fault_p50_ns;    /* percentiles over the backend's whole life (not deltas) */
	uint64_t fault_p99_ns;
	uint64_t poll_cpu_ns;     /* CPU spent polling for store reads (device wait, not work) */
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
		.poll_cpu_ns = st.poll_cpu_ns,
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

/*
 * The kernel's own paging: plain anonymous memory.  Compare mode runs this
 * backend in a child process inside a memory cgroup capped at the budget,
 * with a swap file on the store's filesystem (see "kernel side" below); the
 * backend itself only maps memory and reads counters.  Major faults and
 * CPU come from getrusage() of this (child) process; swap traffic,
 * readahead and evictions from /proc/vmstat, which is machine-wide (the
 * machine is meant to be otherwise idle; nothing else swaps while the
 * swap file is the only one).
 */
struct kernel_backend {
	void *mem;
	size_t bytes;
};

/* Read the named counters from /proc/vmstat; missing ones stay 0. */
static void vmstat_read(const char *const *names, uint64_t *vals, size_t n)
{
	memset(vals, 0, n * sizeof *vals);
	FILE *f = fopen("/proc/vmstat", "r");
	char key[64];
	unsigned long long v;
	while (f && fscanf(f, "%63s %llu", key, &v) == 2)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(key, names[i]))
				vals[i] = v;
	if (f)
		fclose(f);
}

static int ksb_setup(struct backend *be, size_t bytes, char **base, char *err, size_t errlen)
{
	struct kernel_backend *b = be->priv;
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		snprintf(err, errlen, "mmap(%zu bytes): %s", bytes, strerror(e));
		return -e;
	}
	b->mem = m;
	b->bytes = bytes;
	*base = m;
	return 0;
}

static int ksb_snapshot(struct backend *be, struct mem_counters *out)
{
	(void)be;
	static const char *const names[] = { "pswpin", "pswpout", "swap_ra", "workingset_refault_anon",
					     "pgsteal_anon" };
	uint64_t v[5];
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return -errno;
	vmstat_read(names, v, 5);
	*out = (struct mem_counters){
		.major_faults = (uint64_t)ru.ru_majflt,
		.fault_count = (uint64_t)ru.ru_majflt + (uint64_t)ru.ru_minflt,
		.bytes_read = v[0] * 4096,
		.bytes_written = v[1] * 4096,
		.writebacks = v[1],
		.readahead_pages = v[2],
		.refaults = v[3],
		.evictions = v[4],
	};
	return 0;
}

static void ksb_teardown(struct backend *be)
{
	struct kernel_backend *b = be->priv;
	if (b->mem)
		munmap(b->mem, b->bytes);
	b->mem = NULL;
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
	uint64_t *lat;            /* samples in ns, LAT_FAULT set for faulting accesses */
	size_t nlat, cap;
	bool sample_fault;        /* the access being timed began on an unmapped page */
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
	bool scales;  /* compare mode runs it with 1, 2 and 8 threads (else 1) */
};

static const struct workload workloads[] = {
	{ "first-touch", wl_first_touch, "write every page once, in order, into a fresh region", false },
	{ "seq-read", wl_seq_read, "read every page in order (after an untimed fill)", false },
	{ "seq-write", wl_seq_write, "rewrite every page in order with the next generation", false },
	{ "rand-read", wl_rand_read, "read uniformly random pages", true },
	{ "rand-rmw", wl_rand_rmw, "increment a counter in uniformly random pages", true },
	{ "zipf", wl_zipf, "increment counters, 90% of accesses to a hashed 10% of pages", true },
	{ "stride", wl_stride, "read every 16th page, 16 passes at offsets 0..15", false },
	{ "scan-hot", wl_scan_hot, "random reads of a hot set of ram/8 between budget-long one-time scans", false },
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* ------------------------------------------------------------------ driver */

/* One row of the figures table.  Every field is listed in columns[] below,
 * which drives the CSV and JSON output. */
struct row {
	char backend[8];           /* "upager" or "kernel" */
	char workload[16];
	uint64_t threads;
	uint64_t accesses;
	uint64_t pages_touched;
	double seconds;
	double accesses_per_s;
	uint64_t fault_p50_ns;     /* handler side, runtime life (fill included); upager only */
	uint64_t fault_p99_ns;
	double fault_mean_ns;      /* handler side, timed phase only; upager only */
	uint64_t faults;
	uint64_t client_p50_ns;    /* sampled accesses, hits and faults */
	uint64_t client_p99_ns;
	uint64_t client_samples;
	uint64_t client_fault_p50_ns; /* sampled accesses that began on an unmapped page */
	uint64_t client_fault_p99_ns;
	uint64_t client_fault_samples;
	uint64_t store_reads;      /* major faults */
	uint64_t zero_fills;
	uint64_t readahead_pages;
	uint64_t refaults;
	uint64_t wp_faults;
	uint64_t evictions;
	uint64_t writebacks;
	uint64_t clean_drops;
	uint64_t bytes_read;
	uint64_t bytes_written;
	double cpu_s;                  /* whole process, user + system, timed phase */
	double cpu_s_pager_threads;    /* of that, threads that outlive the workload's (upager's own) */
	double cpu_s_per_major_fault;  /* NAN without major faults */
	double cpu_s_per_page_in;      /* per page read from the store, readahead included; NAN without */
	double cpu_s_polling;          /* of cpu_s, upager's handlers polling for store reads (device wait) */
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
	COL(backend, 's'), COL(workload, 's'), COL(threads, 'u'), COL(accesses, 'u'), COL(pages_touched, 'u'),
	COL(seconds, 'd'), COL(accesses_per_s, 'd'),
	COL(fault_p50_ns, 'u'), COL(fault_p99_ns, 'u'), COL(fault_mean_ns, 'd'), COL(faults, 'u'),
	COL(client_p50_ns, 'u'), COL(client_p99_ns, 'u'), COL(client_samples, 'u'),
	COL(client_fault_p50_ns, 'u'), COL(client_fault_p99_ns, 'u'), COL(client_fault_samples, 'u'),
	COL(store_reads, 'u'), COL(zero_fills, 'u'), COL(readahead_pages, 'u'), COL(refaults, 'u'),
	COL(wp_faults, 'u'), COL(evictions, 'u'), COL(writebacks, 'u'), COL(clean_drops, 'u'),
	COL(bytes_read, 'u'), COL(bytes_written, 'u'),
	COL(cpu_s, 'd'), COL(cpu_s_pager_threads, 'd'), COL(cpu_s_per_major_fault, 'd'), COL(cpu_s_per_page_in, 'd'),
	COL(cpu_s_polling, 'd'), COL(fill_s, 'd'), COL(verify_s, 'd'), COL(bad_words, 'u'),
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

/*
 * CPU time of this process's threads other than the caller, by thread id.
 * The phase hooks run on the main thread while the workload's threads do
 * not exist (they start after begin and are joined before end), so the
 * threads seen here are the pager's own: upager's handlers and evictor, or
 * none under the kernel backend.
 */
#define MAX_TASKS 128
struct task_cpu {
	unsigned n;
	pid_t tid[MAX_TASKS];
	uint64_t ns[MAX_TASKS];
};

static uint64_t thread_cpu_ns(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
	FILE *f = fopen(path, "r");
	unsigned long long ns = 0;
	if (f) {
		int ok = fscanf(f, "%llu", &ns) == 1;
		fclose(f);
		if (ok)
			return ns;
	}
	/* No schedstat: utime + stime from stat, in clock ticks. */
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

static void task_cpu_snapshot(struct task_cpu *t)
{
	t->n = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return;
	pid_t self = gettid();
	struct dirent *e;
	while ((e = readdir(d)) && t->n < MAX_TASKS) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0 || tid == self)
			continue;
		t->tid[t->n] = tid;
		t->ns[t->n++] = thread_cpu_ns(tid);
	}
	closedir(d);
}

/* CPU the threads in b used since a (a thread new in b counts whole). */
static double task_cpu_delta(const struct task_cpu *a, const struct task_cpu *b)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < b->n; i++) {
		uint64_t before = 0;
		for (unsigned j = 0; j < a->n; j++)
			if (a->tid[j] == b->tid[i])
				before = a->ns[j];
		sum += b->ns[i] > before ? b->ns[i] - before : 0;
	}
	return sum / 1e9;
}

struct phase {
	struct backend *be;
	uint64_t t0, t1;
	double cpu0, cpu1;
	struct task_cpu tc0, tc1;
	struct mem_counters s0, s1;
	int err;
};

static void phase_begin(void *arg)
{
	struct phase *ph = arg;
	int rc = ph->be->snapshot(ph->be, &ph->s0);
	if (rc)
		ph->err = rc;
	task_cpu_snapshot(&ph->tc0);
	ph->cpu0 = cpu_seconds();
	ph->t0 = now_ns();
}

static void phase_end(void *arg)
{
	struct phase *ph = arg;
	ph->t1 = now_ns();
	ph->cpu1 = cpu_seconds();
	task_cpu_snapshot(&ph->tc1);
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
	bool have_threads;
	bool want[NWORKLOADS];
	const char *csv, *json;
	bool quiet;
	/* compare mode */
	bool compare, quick, no_kernel, no_device;
	const char *plot;
	uint64_t swap_bytes;       /* kernel side's swap file; 0: data + ram */
	double device_seconds;     /* per device test */
	uint64_t device_bytes;     /* size of the device test file */
};

/*
 * One (workload, threads) run on a fresh backend region.  0, -errno for a
 * backend or memory failure (with a message printed).  When flat is not
 * NULL it receives the sorted latencies (ns) of the sampled faulting
 * accesses, to free().
 */
static int run_one(struct backend *be, const struct opts *o, const struct workload *wl, unsigned threads,
		   struct row *row, uint64_t **flat, size_t *nflat)
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
	snprintf(row->backend, sizeof row->backend, "%s", be->name);
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

	/* Split the samples: faulting accesses go to the front of fl. */
	uint64_t *fl = malloc((r.nlat ? r.nlat : 1) * sizeof *fl);
	size_t nf = 0;
	for (size_t i = 0; fl && i < r.nlat; i++) {
		if (r.lat_ns[i] & LAT_FAULT)
			fl[nf++] = r.lat_ns[i] & ~LAT_FAULT;
		r.lat_ns[i] &= ~LAT_FAULT;
	}
	qsort(r.lat_ns, r.nlat, sizeof *r.lat_ns, cmp_u64);
	row->client_p50_ns = percentile(r.lat_ns, r.nlat, 50);
	row->client_p99_ns = percentile(r.lat_ns, r.nlat, 99);
	row->client_samples = r.nlat;
	if (fl) {
		qsort(fl, nf, sizeof *fl, cmp_u64);
		row->client_fault_p50_ns = percentile(fl, nf, 50);
		row->client_fault_p99_ns = percentile(fl, nf, 99);
		row->client_fault_samples = nf;
	}
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
	row->cpu_s_pager_threads = task_cpu_delta(&ph.tc0, &ph.tc1);
	row->cpu_s_per_major_fault = row->store_reads ? row->cpu_s / row->store_reads : NAN;
	row->cpu_s_polling = (double)(b->poll_cpu_ns - a->poll_cpu_ns) / 1e9;
	row->cpu_s_per_page_in = row->store_reads + row->readahead_pages ?
		row->cpu_s / (row->store_reads + row->readahead_pages) : NAN;
	row->fill_s = (ph.t0 - t_start) / 1e9;
	row->verify_s = (t_done - ph.t1) / 1e9;
	row->bad_words = r.bad_words;
	free(r.lat_ns);
	if (flat && fl) {
		*flat = fl;
		*nflat = nf;
	} else {
		free(fl);
	}
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
		"rd/wr: store MiB read/written; cpu/maj: process CPU (user+sys, upager threads included) per major fault;\n"
		"poll/maj: of that, upager's handlers polling for store reads to complete (UPAGER_POLL_US).\n"
		"All latencies in microseconds.\n\n", SAMPLE_EVERY);
	fprintf(out, "%-11s %3s %9s %7s %9s %7s %8s %7s %7s %8s %8s %8s %8s %8s %7s %7s %7s %8s\n",
		"workload", "thr", "accesses", "secs", "acc/s", "flt-p50", "flt-p99", "flt-avg", "cli-p50", "cli-p99",
		"st-rd", "evict", "wback", "cdrop", "rd-MiB", "wr-MiB", "cpu/maj", "poll/maj");
	fflush(out);
}

static void print_row(FILE *out, const struct row *r)
{
	char cpu[32], poll[32];
	if (isnan(r->cpu_s_per_major_fault)) {
		snprintf(cpu, sizeof cpu, "-");
		snprintf(poll, sizeof poll, "-");
	} else {
		snprintf(cpu, sizeof cpu, "%.1f", r->cpu_s_per_major_fault * 1e6);
		snprintf(poll, sizeof poll, "%.1f", r->cpu_s_polling / (double)r->store_reads * 1e6);
	}
	fprintf(out, "%-11s %3" PRIu64 " %9" PRIu64 " %7.2f %9.0f %7.1f %8.1f %7.1f %7.1f %8.1f %8" PRIu64
		" %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7.0f %7.0f %7s %8s%s\n",
		r->workload, r->threads, r->accesses, r->seconds, r->accesses_per_s,
		r->fault_p50_ns / 1e3, r->fault_p99_ns / 1e3, r->fault_mean_ns / 1e3,
		r->client_p50_ns / 1e3, r->client_p99_ns / 1e3,
		r->store_reads, r->evictions, r->writebacks, r->clean_drops,
		r->bytes_read / 1048576.0, r->bytes_written / 1048576.0, cpu, poll,
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

static void json_row(FILE *f, const struct row *r)
{
	fputc('{', f);
	for (size_t c = 0; c < NCOLUMNS; c++) {
		const struct column *col = &columns[c];
		const char *p = (const char *)r + col->off;
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
		fprintf(f, "%s\n    ", i ? "," : "");
		json_row(f, &rows[i]);
	}
	fprintf(f, "\n  ]\n}\n");
	return close_out(f, path);
}

/* ----------------------------------------------------------------- compare */

/*
 * Compare mode runs every workload twice, back to back, on fresh memory:
 * under the kernel's own swap (a child process with plain anonymous memory,
 * inside a memory cgroup capped at the budget, with a swap file on the
 * store's filesystem) and under upager (this process, as in plain mode).
 * It also measures what the store's filesystem can do with O_DIRECT reads,
 * so the figures have a physical limit next to them.
 *
 * Everything compare mode changes outside this process is recorded in
 * `undo` with signals blocked around the change, and undone on every exit:
 * normally, on an error, or from the handler of SIGINT, SIGTERM and SIGHUP
 * (which then re-raises the signal).  A SIGKILL leaves the swap file and the
 * cgroup behind; the next compare run removes them (their names carry the
 * pid of a process that no longer exists).
 */
static struct {
	volatile pid_t child;       /* kernel-side child, or 0 */
	char cgroup[512];           /* cgroup directory we made, or "" */
	char swapfile[512];         /* swap file we made, or "" */
	volatile sig_atomic_t swap_on; /* we enabled swapfile */
	char devfile[512];          /* device test file, or "" */
} undo;

/* snprintf for messages, where truncation is acceptable. */
__attribute__((format(printf, 3, 4)))
static void msgf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static const int undo_signals[] = { SIGINT, SIGTERM, SIGHUP };

static void signals_block(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
		sigaddset(&set, undo_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

static void signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* In a freshly forked child: default handlers (the child must never undo
 * the parent's set-up), then the mask the parent had before blocking. */
static void child_signals(const sigset_t *old)
{
	for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
		signal(undo_signals[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Async-signal-safe: kill(), waitpid(), swapoff(), unlink(), rmdir() and
 * nanosleep() only. */
static void undo_all(void)
{
	pid_t child = undo.child;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		undo.child = 0;
	}
	if (undo.swap_on) {
		swapoff(undo.swapfile);
		undo.swap_on = 0;
	}
	if (undo.swapfile[0]) {
		unlink(undo.swapfile);
		undo.swapfile[0] = 0;
	}
	if (undo.devfile[0]) {
		unlink(undo.devfile);
		undo.devfile[0] = 0;
	}
	if (undo.cgroup[0]) {
		/* A memory cgroup can stay busy for a moment after its last
		 * task exits. */
		for (int i = 0; i < 100 && rmdir(undo.cgroup) && errno == EBUSY; i++)
			nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
		undo.cgroup[0] = 0;
	}
}

static void on_signal(int sig)
{
	static const char msg[] = "\n" PROG ": interrupted: removing the swap file and cgroup ...\n";
	ssize_t w = write(2, msg, sizeof msg - 1);
	(void)w;
	undo_all();
	raise(sig); /* SA_RESETHAND: the default action now ends the process */
}

static void undo_install(void)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESETHAND | SA_NODEFER };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
		sigaction(undo_signals[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a dead child's pipe reads as a short message instead */
}

/* --- small file helpers: 0 or -errno --- */

static int write_str(const char *dir, const char *name, const char *val)
{
	char path[768];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, val, strlen(val));
	int rc = n < 0 ? -errno : (size_t)n == strlen(val) ? 0 : -EIO;
	close(fd);
	return rc;
}

static int read_str(const char *dir, const char *name, char *buf, size_t len)
{
	char path[768];
	if (dir)
		snprintf(path, sizeof path, "%s/%s", dir, name);
	else
		snprintf(path, sizeof path, "%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static bool exists_in(const char *dir, const char *name)
{
	char path[768];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Is word one of the separator-delimited words of list? */
static bool has_word(const char *list, const char *word, const char *seps)
{
	size_t wl = strlen(word);
	for (const char *p = list; *p; ) {
		size_t n = strcspn(p, seps);
		if (n == wl && !strncmp(p, word, wl))
			return true;
		p += n;
		p += *p != 0;
	}
	return false;
}

/* Run argv (argv[0] a path or a name looked up in PATH, /usr/sbin and
 * /sbin) with stdout and stderr captured into out.  Returns its exit
 * status (127: not found), or -errno when it cannot be started. */
static int run_cmd(const char *const argv[], char *out, size_t outlen)
{
	char prog[256];
	snprintf(prog, sizeof prog, "%s", argv[0]);
	if (!strchr(argv[0], '/')) {
		static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
		for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
			char p[256];
			snprintf(p, sizeof p, "%s/%s", dirs[i], argv[0]);
			if (access(p, X_OK) == 0) {
				snprintf(prog, sizeof prog, "%s", p);
				break;
			}
		}
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	sigset_t old;
	signals_block(&old);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		child_signals(&old);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execvp(prog, (char *const *)argv);
		dprintf(2, "%s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	int e = errno;
	signals_restore(&old);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return -e;
	}
	size_t n = 0;
	char buf[512];
	ssize_t k;
	while ((k = read(pfd[0], buf, sizeof buf)) > 0 || (k < 0 && errno == EINTR))
		for (ssize_t i = 0; i < k && outlen && n < outlen - 1; i++)
			out[n++] = buf[i] == '\n' ? ' ' : buf[i];
	if (outlen)
		out[n] = 0;
	close(pfd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --- where the store lives --- */

static bool is_ram_fs(const char *dir)
{
	struct statfs sf;
	return !statfs(dir, &sf) && (sf.f_type == 0x01021994 /* TMPFS_MAGIC */ || sf.f_type == 0x858458f6 /* RAMFS */);
}

/* Can dir hold an O_DIRECT file on a disk?  (The library's test.) */
static bool direct_ok(const char *dir)
{
	if (is_ram_fs(dir))
		return false;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	return errno != EINVAL && errno != ENOENT && errno != ENOTDIR;
}

/*
 * The directory of upager's store, by the library's rules (upg_store_open):
 * store_path when it is a directory, its directory when it is a file; by
 * default $TMPDIR, else /tmp, and /var/tmp when that cannot take O_DIRECT.
 * A block-device store has no filesystem: the default directory is used and
 * note says so.
 */
static void store_dir(const struct upager_config *cfg, char *out, size_t len, char *note, size_t nlen)
{
	const char *p = cfg->store_path;
	struct stat st;
	note[0] = 0;
	if (p && *p) {
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			snprintf(out, len, "%s", p);
			return;
		}
		if (stat(p, &st) == 0 && S_ISBLK(st.st_mode)) {
			snprintf(note, nlen, "the store is the block device %s: the swap file and the device test "
				 "use the default directory instead, so the kernel side is on another device", p);
		} else {
			const char *slash = strrchr(p, '/');
			if (!slash)
				snprintf(out, len, ".");
			else if (slash == p)
				snprintf(out, len, "/");
			else
				snprintf(out, len, "%.*s", (int)(slash - p), p);
			return;
		}
	}
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	if (!direct_ok(dir))
		dir = "/var/tmp";
	snprintf(out, len, "%s", dir);
}

/* --- memory cgroup --- */

struct cgroup {
	int version;        /* 1 or 2 */
	char path[512];
	uint64_t limit;     /* bytes written as the memory limit */
	char swap[160];     /* how swap was allowed */
	char swappiness[16];
};

/* Mount point of cgroup2 (version 2) or of the v1 hierarchy holding the
 * memory controller (version 1), and its root inside the hierarchy. */
static bool cg_mount(int version, char *mnt, size_t mlen, char *root, size_t rlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[2048];
	bool found = false;
	while (!found && f && fgets(line, sizeof line, f)) {
		char r[512], m[512], type[64], super[512];
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %511s %511s", r, m) != 2 ||
		    sscanf(dash + 3, "%63s %*s %511s", type, super) != 2)
			continue;
		if (version == 2 ? !strcmp(type, "cgroup2") : !strcmp(type, "cgroup") && has_word(super, "memory", ",")) {
			snprintf(mnt, mlen, "%s", m);
			snprintf(root, rlen, "%s", r);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* This process's cgroup in that hierarchy, as a path below its mount. */
static bool cg_self(int version, const char *root, char *path, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[1024];
	bool found = false;
	while (!found && f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		/* "0::/path" for cgroup2; "N:ctrl,ctrl:/path" for v1. */
		bool match = version == 2 ? c1 == line + 1 && line[0] == '0' && c2 == c1 + 1
					  : has_word(c1 + 1, "memory", ",");
		if (!match)
			continue;
		const char *p = c2 + 1;
		size_t rl = strlen(root);
		if (strcmp(root, "/") && !strncmp(p, root, rl))
			p += rl;
		snprintf(path, len, "%s", p);
		found = true;
	}
	if (f)
		fclose(f);
	return found;
}

/* Remove cgroups "upager-bench-<pid>" under dir left by runs that died. */
static void cg_remove_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid;
		char tail;
		if (sscanf(e->d_name, "upager-bench-%d%c", &pid, &tail) != 1 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		char path[768];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
			continue;
		if (rmdir(path) == 0)
			fprintf(stderr, PROG ": removed the cgroup %s left by an earlier run\n", path);
	}
	if (d)
		closedir(d);
}

/* Try to make a memory cgroup below parent; 0 or -errno with why. */
static int cg_try(struct cgroup *cg, int version, const char *parent, uint64_t limit, char *why, size_t wlen)
{
	char buf[256];
	int rc;
	if (version == 2) {
		if (read_str(parent, "cgroup.controllers", buf, sizeof buf) || !has_word(buf, "memory", " ")) {
			msgf(why, wlen, "the cgroup2 group %s does not offer the memory controller", parent);
			return -ENOTSUP;
		}
		if (read_str(parent, "cgroup.subtree_control", buf, sizeof buf) || !has_word(buf, "memory", " ")) {
			rc = write_str(parent, "cgroup.subtree_control", "+memory");
			if (rc) {
				msgf(why, wlen, "cannot enable the memory controller in %s/cgroup.subtree_control: %s",
					 parent, strerror(-rc));
				return rc;
			}
		}
	}
	cg_remove_stale(parent);
	if ((size_t)snprintf(cg->path, sizeof cg->path, "%s/upager-bench-%d", parent, (int)getpid()) >= sizeof cg->path) {
		msgf(why, wlen, "the cgroup path %s is too long", parent);
		return -ENAMETOOLONG;
	}
	sigset_t old;
	signals_block(&old);
	if (mkdir(cg->path, 0755)) {
		rc = -errno;
		signals_restore(&old);
		msgf(why, wlen, "mkdir %s: %s", cg->path, strerror(-rc));
		return rc;
	}
	snprintf(undo.cgroup, sizeof undo.cgroup, "%s", cg->path);
	signals_restore(&old);

	char lim[32];
	snprintf(lim, sizeof lim, "%" PRIu64, limit);
	const char *file = version == 2 ? "memory.max" : "memory.limit_in_bytes";
	rc = write_str(cg->path, file, lim);
	if (rc) {
		msgf(why, wlen, "writing %s/%s: %s", cg->path, file, strerror(-rc));
		goto out_rmdir;
	}
	if (version == 2) {
		if (exists_in(cg->path, "memory.swap.max")) {
			rc = write_str(cg->path, "memory.swap.max", "max");
			if (rc) {
				msgf(why, wlen, "writing %s/memory.swap.max: %s", cg->path, strerror(-rc));
				goto out_rmdir;
			}
			snprintf(cg->swap, sizeof cg->swap, "memory.swap.max=max");
		} else {
			snprintf(cg->swap, sizeof cg->swap, "no memory.swap.max (swap accounting off: swap is not limited)");
		}
		/* zswap would keep "swapped" pages in compressed RAM: send them to the disk. */
		if (exists_in(cg->path, "memory.zswap.max") && write_str(cg->path, "memory.zswap.max", "0") == 0)
			snprintf(cg->swap + strlen(cg->swap), sizeof cg->swap - strlen(cg->swap), ", memory.zswap.max=0");
	} else if (exists_in(cg->path, "memory.memsw.limit_in_bytes")) {
		rc = write_str(cg->path, "memory.memsw.limit_in_bytes", "-1");
		if (rc) {
			msgf(why, wlen, "writing %s/memory.memsw.limit_in_bytes: %s", cg->path, strerror(-rc));
			goto out_rmdir;
		}
		snprintf(cg->swap, sizeof cg->swap, "memory.memsw.limit_in_bytes=unlimited");
	} else {
		snprintf(cg->swap, sizeof cg->swap, "no memory.memsw.limit_in_bytes (swap is not limited)");
	}
	if (read_str(cg->path, "memory.swappiness", cg->swappiness, sizeof cg->swappiness))
		read_str(NULL, "/proc/sys/vm/swappiness", cg->swappiness, sizeof cg->swappiness);
	cg->version = version;
	cg->limit = limit;
	return 0;

out_rmdir:
	signals_block(&old);
	rmdir(cg->path);
	undo.cgroup[0] = 0;
	signals_restore(&old);
	return rc;
}

/*
 * Make a memory cgroup capped at limit bytes with swap allowed: cgroup2 when
 * it has the memory controller, else the v1 memory hierarchy.  It goes below
 * this process's own cgroup when possible, so that limits set above us
 * still hold, else at the hierarchy's root.  0, or -errno with why.
 */
static int cg_create(struct cgroup *cg, uint64_t limit, char *why, size_t wlen)
{
	int rc = -ENOENT;
	msgf(why, wlen, "no memory cgroup: neither a cgroup2 with the memory controller nor a cgroup v1 "
		 "memory hierarchy is mounted");
	for (int version = 2; version >= 1; version--) {
		char mnt[512], root[512], self[512], parent[1100];
		if (!cg_mount(version, mnt, sizeof mnt, root, sizeof root))
			continue;
		char first[512] = "";
		for (int at_root = 0; at_root < 2; at_root++) {
			if (!at_root && (!cg_self(version, root, self, sizeof self) || !strcmp(self, "/")))
				continue;
			snprintf(parent, sizeof parent, "%s%s", mnt, at_root ? "" : self);
			rc = cg_try(cg, version, parent, limit, why, wlen);
			if (!rc)
				return 0;
			if (!first[0])
				snprintf(first, sizeof first, "%s", why);
		}
		if (version == 2)
			continue; /* try v1 */
		if (first[0] && strcmp(first, why))
			snprintf(why + strlen(why), wlen - strlen(why), " (and below our own cgroup: %s)", first);
	}
	return rc;
}

/* Move pid into the cgroup. */
static int cg_enter(const struct cgroup *cg, pid_t pid)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%d", (int)pid);
	return write_str(cg->path, "cgroup.procs", buf);
}

/* OOM kills the cgroup has seen, or 0. */
static uint64_t cg_oom_kills(const struct cgroup *cg)
{
	char path[768], line[128];
	snprintf(path, sizeof path, "%s/%s", cg->path, cg->version == 2 ? "memory.events" : "memory.oom_control");
	FILE *f = fopen(path, "r");
	unsigned long long n = 0, v;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "oom_kill %llu", &v) == 1)
			n = v;
	if (f)
		fclose(f);
	return n;
}

/* --- swap file --- */

struct swapfile {
	char path[512];
	uint64_t bytes;
	char how[96];
	int others;        /* other active swap areas */
};

/* Write zeros over [0, bytes) of fd. */
static int write_zeros(int fd, uint64_t bytes)
{
	size_t chunk = 1 << 20;
	char *buf = calloc(1, chunk);
	if (!buf)
		return -ENOMEM;
	int rc = 0;
	for (uint64_t off = 0; off < bytes && !rc; ) {
		size_t n = bytes - off < chunk ? (size_t)(bytes - off) : chunk;
		ssize_t k = pwrite(fd, buf, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			rc = k < 0 ? -errno : -EIO;
		else
			off += (uint64_t)k;
	}
	free(buf);
	if (!rc && fsync(fd))
		rc = -errno;
	return rc;
}

/* Turn off and delete swap files "upager-bench-swap-<pid>" of dead runs. */
static void swap_remove_stale(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[1024], path[1024];
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%1023s", path) != 1)
			continue;
		const char *base = strrchr(path, '/');
		int pid;
		char tail;
		if (!base || sscanf(base + 1, "upager-bench-swap-%d%c", &pid, &tail) != 1 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		if (swapoff(path) == 0) {
			unlink(path);
			fprintf(stderr, PROG ": turned off and removed the swap file %s left by an earlier run\n", path);
		}
	}
	if (f)
		fclose(f);
}

static int count_swaps(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[1024];
	int n = -1; /* the header line */
	while (f && fgets(line, sizeof line, f))
		n++;
	if (f)
		fclose(f);
	return n < 0 ? 0 : n;
}

static int mkswap_and_swapon(const char *path, char *why, size_t wlen)
{
	char out[400];
	const char *argv[] = { "mkswap", "-q", path, NULL };
	int st = run_cmd(argv, out, sizeof out);
	if (st) {
		if (st == 127)
			msgf(why, wlen, "mkswap was not found: install util-linux");
		else
			msgf(why, wlen, "mkswap %s failed (%d): %s", path, st < 0 ? st : st, out);
		return -EIO;
	}
	/* The highest priority, so the kernel pages to this file first even if
	 * other swap areas are active. */
	if (swapon(path, SWAP_FLAG_PREFER | (32767 & SWAP_FLAG_PRIO_MASK))) {
		int e = errno;
		msgf(why, wlen, "swapon %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* Create, format and enable a swap file of `bytes` in dir; 0 or -errno
 * with why.  fallocate() first; when swapon refuses that (some
 * filesystems do not swap on preallocated extents), zeros written out. */
static int swap_create(const char *dir, uint64_t bytes, struct swapfile *sw, char *why, size_t wlen)
{
	memset(sw, 0, sizeof *sw);
	sw->bytes = bytes;
	if ((size_t)snprintf(sw->path, sizeof sw->path, "%s/upager-bench-swap-%d", dir, (int)getpid()) >= sizeof sw->path) {
		msgf(why, wlen, "the directory name %s is too long", dir);
		return -ENAMETOOLONG;
	}
	sigset_t old;
	signals_block(&old);
	int fd = open(sw->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int e = errno;
	if (fd >= 0)
		snprintf(undo.swapfile, sizeof undo.swapfile, "%s", sw->path);
	signals_restore(&old);
	if (fd < 0) {
		msgf(why, wlen, "cannot create the swap file %s: %s", sw->path, strerror(e));
		return -e;
	}
	int rc;
	if (fallocate(fd, 0, 0, (off_t)bytes) == 0) {
		snprintf(sw->how, sizeof sw->how, "fallocate");
		rc = mkswap_and_swapon(sw->path, why, wlen);
	} else {
		rc = -EOPNOTSUPP;
	}
	if (rc == -EINVAL || rc == -EOPNOTSUPP) {
		/* swapon saw holes or unwritten extents, or no fallocate: zeros. */
		if (ftruncate(fd, 0) == 0 && (rc = write_zeros(fd, bytes)) == 0) {
			snprintf(sw->how, sizeof sw->how, "written with zeros");
			rc = mkswap_and_swapon(sw->path, why, wlen);
		} else if (rc) {
			msgf(why, wlen, "writing the swap file %s: %s", sw->path, strerror(-rc));
		}
	}
	close(fd);
	if (rc) {
		signals_block(&old);
		unlink(sw->path);
		undo.swapfile[0] = 0;
		signals_restore(&old);
		return rc;
	}
	undo.swap_on = 1;
	sw->others = count_swaps() - 1;
	return 0;
}

static int drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = write(fd, "3", 1) == 1 ? 0 : -errno;
	close(fd);
	return rc;
}

/* --- the kernel side: one workload in a child inside the cgroup --- */

struct kernel_side {
	bool ready;              /* cgroup and swap are in place */
	char why[600];           /* why not, when not */
	struct cgroup cg;
	struct swapfile sw;
	uint64_t allowance;      /* limit above the budget (see compare_main) */
};

struct child_msg {
	int rc;
	struct row row;
	uint64_t nlat;
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Bytes read, up to len (short at end of file). */
static size_t read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t k = read(fd, p + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	return got;
}

/*
 * Fork a child, move it into the cgroup before it touches any memory, and
 * have it run the workload over plain anonymous memory with the same
 * workload functions, hooks and counters as the upager side.  The child
 * sends back its row and its faulting-access latencies.  The child's CPU
 * over its whole life (wait4) goes to *life_cpu.  0, or -errno with why.
 */
static int run_kernel(struct kernel_side *ks, const struct opts *o, const struct workload *wl, unsigned threads,
		      struct row *row, uint64_t **flat, size_t *nflat, double *life_cpu, char *why, size_t wlen)
{
	int go[2], res[2];
	if (pipe2(go, O_CLOEXEC))
		return msgf(why, wlen, "pipe: %s", strerror(errno)), -EIO;
	if (pipe2(res, O_CLOEXEC)) {
		close(go[0]);
		close(go[1]);
		return msgf(why, wlen, "pipe: %s", strerror(errno)), -EIO;
	}
	uint64_t ooms = cg_oom_kills(&ks->cg);
	pid_t parent = getpid();
	sigset_t old;
	signals_block(&old);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		child_signals(&old);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(3);
		close(go[1]);
		close(res[0]);
		char c;
		if (read_all(go[0], &c, 1) != 1)
			_exit(3); /* the parent could not move us into the cgroup */
		struct kernel_backend kb = { 0 };
		struct backend be = {
			.name = "kernel", .setup = ksb_setup, .snapshot = ksb_snapshot, .teardown = ksb_teardown,
			.priv = &kb,
		};
		struct child_msg m = { 0 };
		uint64_t *fl = NULL;
		size_t nf = 0;
		m.rc = run_one(&be, o, wl, threads, &m.row, &fl, &nf);
		m.nlat = nf;
		if (write_all(res[1], &m, sizeof m) || (nf && write_all(res[1], fl, nf * sizeof *fl)))
			_exit(4);
		_exit(0);
	}
	int e = errno;
	if (pid > 0)
		undo.child = pid;
	signals_restore(&old);
	close(go[0]);
	close(res[1]);
	if (pid < 0) {
		close(go[1]);
		close(res[0]);
		msgf(why, wlen, "fork: %s", strerror(e));
		return -e;
	}

	int rc = cg_enter(&ks->cg, pid);
	if (rc)
		msgf(why, wlen, "moving the child into %s: %s", ks->cg.path, strerror(-rc));
	else if (write_all(go[1], "g", 1))
		rc = -EIO;
	close(go[1]);

	struct child_msg m;
	uint64_t *fl = NULL;
	size_t got = rc ? 0 : read_all(res[0], &m, sizeof m);
	if (got == sizeof m && m.rc == 0) {
		fl = malloc((m.nlat ? m.nlat : 1) * sizeof *fl);
		if (!fl || read_all(res[0], fl, m.nlat * sizeof *fl) != m.nlat * sizeof *fl)
			got = 0;
	}
	close(res[0]);

	int st = 0;
	struct rusage ru = { 0 };
	if (rc)
		kill(pid, SIGKILL);
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	sigset_t o2;
	signals_block(&o2);
	undo.child = 0;
	signals_restore(&o2);
	*life_cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	if (rc) {
		free(fl);
		return rc;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) || got != sizeof m || m.rc) {
		if (WIFSIGNALED(st)) {
			uint64_t kills = cg_oom_kills(&ks->cg) - ooms;
			msgf(why, wlen, "the child was killed by signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
				 kills ? ": the cgroup's OOM killer (is the swap file full?)" : "");
		} else if (got == sizeof m && m.rc) {
			msgf(why, wlen, "the workload failed in the child: %s", strerror(-m.rc));
		} else {
			msgf(why, wlen, "the child exited with status %d without results", WEXITSTATUS(st));
		}
		free(fl);
		return -EIO;
	}
	*row = m.row;
	*flat = fl;
	*nflat = m.nlat;
	return 0;
}

/* --- physical limits of the store's filesystem --- */

#define MAX_DEVICE_QDS 32

struct device {
	bool ran;
	char why[300];
	char path[600];
	uint64_t file_bytes;
	double seconds;          /* per test */
	double qd1_iops, qd1_lat_us, qd32_iops;
	double seq128_mbs;       /* 128 KiB sequential reads, queue depth 1 */
	double seq1m_mbs;        /* 1 MiB sequential reads, queue depth 8 */
	double seq_mbs;          /* the better of the two: the bandwidth figure */
	/* 4 KiB random reads at the queue depths of the random workloads'
	 * thread counts: the most major faults per second the device allows
	 * that many threads that each wait for one read at a time. */
	unsigned nqd;
	unsigned qd[MAX_DEVICE_QDS];
	double qd_iops[MAX_DEVICE_QDS];
};

/* Queue depths of 4 KiB random reads that device_measure() runs whatever
 * the workloads' thread counts. */
static bool device_base_qd(unsigned qd)
{
	return qd == 1 || qd == 32;
}

/* 4 KiB random-read IOPS of dev at queue depth qd, or NAN. */
static double device_iops_at(const struct device *dev, unsigned qd)
{
	for (unsigned i = 0; dev->ran && i < dev->nqd; i++)
		if (dev->qd[i] == qd)
			return dev->qd_iops[i];
	return NAN;
}

/* Keep qd reads of bs bytes in flight over the first file_bytes of fd for
 * `secs` seconds: sequential (wrapping at the end) or uniformly random.
 * 0 with the completed reads and elapsed seconds, or -errno. */
static int ring_reads(struct io_uring *ring, int fd, uint64_t file_bytes, unsigned bs, unsigned qd, bool seq,
		      double secs, char *buf, uint64_t *ops, double *elapsed)
{
	uint64_t nblocks = file_bytes / bs, next = 0, rng = 12345, done = 0;
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(secs * 1e9);
	unsigned inflight = 0;
	int rc = 0;
	for (unsigned i = 0; i < qd; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		if (!sqe)
			break;
		uint64_t blk = seq ? next++ % nblocks : rng_below(&rng, nblocks);
		io_uring_prep_read(sqe, fd, buf + (size_t)i * bs, bs, blk * bs);
		sqe->user_data = i;
		inflight++;
	}
	io_uring_submit(ring);
	bool stop = false;
	while (inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0) {
			rc = r;
			break;
		}
		int res = cqe->res;
		unsigned slot = (unsigned)cqe->user_data;
		io_uring_cqe_seen(ring, cqe);
		inflight--;
		if (res != (int)bs) {
			if (!rc)
				rc = res < 0 ? res : -EIO;
			stop = true;
		} else {
			done++;
		}
		if (!stop && now_ns() >= deadline)
			stop = true;
		if (stop)
			continue;
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		uint64_t blk = seq ? next++ % nblocks : rng_below(&rng, nblocks);
		io_uring_prep_read(sqe, fd, buf + (size_t)slot * bs, bs, blk * bs);
		sqe->user_data = slot;
		inflight++;
		io_uring_submit(ring);
	}
	*elapsed = (now_ns() - t0) / 1e9;
	*ops = done;
	return rc;
}

/*
 * Measure 4 KiB random reads at queue depth 1 and 32, and sequential reads
 * of 128 KiB (depth 1) and 1 MiB (depth 8), with O_DIRECT through io_uring,
 * on a file of dev->file_bytes in dir, written with data first (reads of
 * unwritten extents would cost no I/O).  Then 4 KiB random reads at each
 * queue depth in dev->qd[] (at most 256).  The file is removed afterwards.
 */
static void device_measure(struct device *dev, const char *dir)
{
	char *buf = NULL;
	struct io_uring ring;
	bool ring_ok = false;
	int fd = -1, rc;
	size_t bufsz = 8u << 20;
	if ((size_t)snprintf(dev->path, sizeof dev->path, "%s/upager-bench-dev-%d", dir, (int)getpid()) >= sizeof undo.devfile) {
		msgf(dev->why, sizeof dev->why, "the directory name %s is too long", dir);
		return;
	}
	sigset_t old;
	signals_block(&old);
	fd = open(dev->path, O_RDWR | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0600);
	int e = errno;
	if (fd >= 0)
		memcpy(undo.devfile, dev->path, strlen(dev->path) + 1); /* fits: checked above */
	signals_restore(&old);
	if (fd < 0) {
		msgf(dev->why, sizeof dev->why, "cannot create %s with O_DIRECT: %s", dev->path, strerror(e));
		return;
	}
	if (posix_memalign((void **)&buf, 4096, bufsz)) {
		msgf(dev->why, sizeof dev->why, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < bufsz / 8; i++)
		((uint64_t *)buf)[i] = mix(i + 1);
	if (fallocate(fd, 0, 0, (off_t)dev->file_bytes) && errno != EOPNOTSUPP) {
		msgf(dev->why, sizeof dev->why, "fallocate %s (%" PRIu64 " bytes): %s", dev->path, dev->file_bytes,
			 strerror(errno));
		goto out;
	}
	for (uint64_t off = 0; off < dev->file_bytes; ) {
		size_t n = dev->file_bytes - off < bufsz ? (size_t)(dev->file_bytes - off) : bufsz;
		ssize_t k = pwrite(fd, buf, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			msgf(dev->why, sizeof dev->why, "writing %s: %s", dev->path, k < 0 ? strerror(errno) : "short write");
			goto out;
		}
		off += (uint64_t)k;
	}
	fdatasync(fd);
	unsigned entries = 64;
	for (unsigned i = 0; i < dev->nqd; i++)
		while (entries < dev->qd[i])
			entries *= 2;
	rc = io_uring_queue_init(entries, &ring, 0);
	if (rc) {
		msgf(dev->why, sizeof dev->why, "io_uring_queue_init: %s", strerror(-rc));
		goto out;
	}
	ring_ok = true;
	static const struct { unsigned bs, qd; bool seq; } tests[] = {
		{ 4096, 1, false }, { 4096, 32, false }, { 128 << 10, 1, true }, { 1 << 20, 8, true },
	};
	double res[4];
	for (size_t t = 0; t < 4; t++) {
		uint64_t ops;
		double secs;
		rc = ring_reads(&ring, fd, dev->file_bytes, tests[t].bs, tests[t].qd, tests[t].seq, dev->seconds, buf,
				&ops, &secs);
		if (rc) {
			msgf(dev->why, sizeof dev->why, "O_DIRECT reads of %u bytes from %s: %s", tests[t].bs, dev->path,
				 strerror(-rc));
			goto out;
		}
		res[t] = secs > 0 ? ops / secs : 0;
	}
	dev->qd1_iops = res[0];
	dev->qd1_lat_us = res[0] > 0 ? 1e6 / res[0] : 0;
	dev->qd32_iops = res[1];
	dev->seq128_mbs = res[2] * (128 << 10) / 1e6;
	dev->seq1m_mbs = res[3] * (1 << 20) / 1e6;
	dev->seq_mbs = dev->seq128_mbs > dev->seq1m_mbs ? dev->seq128_mbs : dev->seq1m_mbs;
	for (unsigned i = 0; i < dev->nqd; i++) {
		uint64_t ops;
		double secs;
		if (device_base_qd(dev->qd[i])) {
			dev->qd_iops[i] = dev->qd[i] == 1 ? dev->qd1_iops : dev->qd32_iops;
			continue;
		}
		rc = ring_reads(&ring, fd, dev->file_bytes, 4096, dev->qd[i], false, dev->seconds, buf, &ops, &secs);
		if (rc) {
			msgf(dev->why, sizeof dev->why, "O_DIRECT reads of 4096 bytes at queue depth %u from %s: %s",
			     dev->qd[i], dev->path, strerror(-rc));
			goto out;
		}
		dev->qd_iops[i] = secs > 0 ? ops / secs : 0;
	}
	dev->ran = true;
out:
	if (ring_ok)
		io_uring_queue_exit(&ring);
	free(buf);
	close(fd);
	signals_block(&old);
	unlink(dev->path);
	undo.devfile[0] = 0;
	signals_restore(&old);
}

/* --- the runs, the table and the targets --- */

/* One workload and thread count, both systems. */
struct pair {
	const struct workload *wl;
	unsigned threads;
	struct row k, u;
	bool k_ok, u_ok;
	char k_why[300];
	double k_life_cpu_s;     /* the kernel child's CPU over its life, fill and verify included */
	uint64_t *klat, *ulat;   /* sorted faulting-access latencies, ns */
	size_t nk, nu;
};

static double ratio_of(const struct pair *p)
{
	if (!p->k_ok || !p->u_ok || p->k.accesses_per_s <= 0)
		return NAN;
	return p->u.accesses_per_s / p->k.accesses_per_s;
}

static void fmt_num(char *buf, size_t len, bool ok, double v, const char *f)
{
	if (!ok || isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, f, v);
}

static void print_pair_header(FILE *out)
{
	fprintf(out, "%-11s %3s %10s %10s %6s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n",
		"workload", "thr", "kernel/s", "upager/s", "ratio", "upg-p50", "upg-p99", "krn-p50", "krn-p99",
		"krn-cpu", "upg-cpu", "upg-thr", "upg-poll", "krn-maj", "upg-maj");
	fflush(out);
}

static void print_pair(FILE *out, const struct pair *p)
{
	char ka[16], ua[16], ra[16], up50[16], up99[16], kp50[16], kp99[16], kc[16], uc[16], ut[16], upl[16], km[24],
		um[24];
	const struct row *k = &p->k, *u = &p->u;
	fmt_num(ka, sizeof ka, p->k_ok, k->accesses_per_s, "%.0f");
	fmt_num(ua, sizeof ua, p->u_ok, u->accesses_per_s, "%.0f");
	fmt_num(ra, sizeof ra, true, ratio_of(p), "%.2f");
	fmt_num(up50, sizeof up50, p->u_ok && u->client_fault_samples, u->client_fault_p50_ns / 1e3, "%.1f");
	fmt_num(up99, sizeof up99, p->u_ok && u->client_fault_samples, u->client_fault_p99_ns / 1e3, "%.1f");
	fmt_num(kp50, sizeof kp50, p->k_ok && k->client_fault_samples, k->client_fault_p50_ns / 1e3, "%.1f");
	fmt_num(kp99, sizeof kp99, p->k_ok && k->client_fault_samples, k->client_fault_p99_ns / 1e3, "%.1f");
	/* Per major fault means little when nearly every page came in some
	 * other way (zero fill, readahead): the CSV and JSON keep it anyway. */
	bool kf = p->k_ok && k->store_reads * 100 >= k->accesses, uf = p->u_ok && u->store_reads * 100 >= u->accesses;
	fmt_num(kc, sizeof kc, kf, k->cpu_s_per_major_fault * 1e6, "%.1f");
	fmt_num(uc, sizeof uc, uf, u->cpu_s_per_major_fault * 1e6, "%.1f");
	fmt_num(ut, sizeof ut, uf, u->cpu_s_pager_threads / (double)u->store_reads * 1e6, "%.1f");
	fmt_num(upl, sizeof upl, uf, u->cpu_s_polling / (double)u->store_reads * 1e6, "%.1f");
	fmt_num(km, sizeof km, p->k_ok, (double)k->store_reads, "%.0f");
	fmt_num(um, sizeof um, p->u_ok, (double)u->store_reads, "%.0f");
	fprintf(out, "%-11s %3u %10s %10s %6s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s%s%s\n",
		p->wl->name, p->threads, ka, ua, ra, up50, up99, kp50, kp99, kc, uc, ut, upl, km, um,
		(p->k_ok && k->bad_words) ? "  KERNEL DATA ERRORS" : "",
		(p->u_ok && u->bad_words) ? "  UPAGER DATA ERRORS" : "");
	fflush(out);
}

static const struct pair *find_pair(const struct pair *ps, size_t n, const char *name, unsigned threads)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ps[i].wl->name, name) && (threads == 0 || ps[i].threads == threads))
			return &ps[i];
	return NULL;
}

/* upager's sequential read rate in MB/s (10^6 bytes). */
static double seq_mbs(const struct pair *p, uint64_t page)
{
	return p && p->u_ok ? p->u.accesses_per_s * (double)page / 1e6 : NAN;
}

struct target {
	char what[64];
	char goal[24];
	char value[160];
	int met;                 /* 1 met, 0 not met, -1 not measured */
};

#define MAX_TARGETS 8

static size_t targets_eval(const struct pair *ps, size_t n, const struct device *dev, const struct kernel_side *ks,
			   uint64_t page, struct target *t)
{
	size_t nt = 0;
	const char *nokernel = ks->ready ? "not measured (workload not run)" : "not measured (no kernel side)";

	/* Ratio targets: every listed thread count must reach the goal. */
	static const struct { const char *wl; double goal; } ratio_goals[] = {
		{ "seq-read", 2.0 }, { "first-touch", 1.0 }, { "rand-read", 1.0 }, { "rand-rmw", 1.0 }, { "zipf", 1.0 },
	};
	for (size_t g = 0; g < sizeof ratio_goals / sizeof ratio_goals[0]; g++) {
		struct target *x = &t[nt++];
		snprintf(x->what, sizeof x->what, "%s upager/kernel%s", ratio_goals[g].wl,
			 g >= 2 ? ", every thread count" : "");
		snprintf(x->goal, sizeof x->goal, ">= %.0fx", ratio_goals[g].goal);
		x->met = -1;
		snprintf(x->value, sizeof x->value, "%s", nokernel);
		char vals[160] = "";
		bool all = true, any = false;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(ps[i].wl->name, ratio_goals[g].wl))
				continue;
			double r = ratio_of(&ps[i]);
			if (isnan(r)) {
				all = false;
				continue;
			}
			size_t l = strlen(vals);
			snprintf(vals + l, sizeof vals - l, "%s%.2fx (%u thr)", l ? ", " : "", r, ps[i].threads);
			any = true;
			if (r < ratio_goals[g].goal)
				x->met = 0;
			else if (x->met == -1)
				x->met = 1;
		}
		if (any)
			snprintf(x->value, sizeof x->value, "%s", vals);
		if (any && !all)
			x->met = x->met == 0 ? 0 : -1;
	}

	/* Sequential read against the device's bandwidth. */
	struct target *x = &t[nt++];
	snprintf(x->what, sizeof x->what, "seq-read share of device bandwidth");
	snprintf(x->goal, sizeof x->goal, ">= 50%%");
	const struct pair *sp = find_pair(ps, n, "seq-read", 0);
	double mbs = seq_mbs(sp, page);
	if (!dev->ran || isnan(mbs)) {
		x->met = -1;
		snprintf(x->value, sizeof x->value, "not measured (%s)", !dev->ran ? "no device figures" : "seq-read not run");
	} else {
		double pct = 100 * mbs / dev->seq_mbs;
		snprintf(x->value, sizeof x->value, "%.0f%% (%.0f of %.0f MB/s)", pct, mbs, dev->seq_mbs);
		x->met = pct >= 50;
	}

	/* CPU per major fault, on the workloads whose faults are one page each. */
	x = &t[nt++];
	snprintf(x->what, sizeof x->what, "upager CPU per major fault (random workloads)");
	snprintf(x->goal, sizeof x->goal, "<= 30 us");
	double worst = -1;
	const struct pair *wp = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *w = ps[i].wl->name;
		if (!ps[i].u_ok || isnan(ps[i].u.cpu_s_per_major_fault) ||
		    (strcmp(w, "rand-read") && strcmp(w, "rand-rmw") && strcmp(w, "zipf")))
			continue;
		double c = (ps[i].u.cpu_s - ps[i].u.cpu_s_polling) / (double)ps[i].u.store_reads;
		if (c > worst) {
			worst = c;
			wp = &ps[i];
		}
	}
	if (!wp) {
		x->met = -1;
		snprintf(x->value, sizeof x->value, "not measured (no random workload with major faults)");
	} else {
		double n = (double)wp->u.store_reads;
		snprintf(x->value, sizeof x->value, "worst %.1f us (%s, %u thr; process CPU incl. the workload, "
			 "less %.1f us polling for the device; upager threads alone %.1f us)", worst * 1e6,
			 wp->wl->name, wp->threads, wp->u.cpu_s_polling / n * 1e6,
			 (wp->u.cpu_s_pager_threads - wp->u.cpu_s_polling) / n * 1e6);
		x->met = worst * 1e6 <= 30;
	}
	return nt;
}

static void print_targets(FILE *out, const struct target *t, size_t n)
{
	fprintf(out, "\nTargets (issue 4; a missed target is reported, never an error):\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-9s %-46s %-9s %s\n", t[i].met == 1 ? "met" : t[i].met == 0 ? "NOT MET" : "n/a",
			t[i].what, t[i].goal, t[i].value);
}

/* --- machine-readable output --- */

static void json_num(FILE *f, double d)
{
	if (isnan(d))
		fputs("null", f);
	else
		fprintf(f, "%.9g", d);
}

static int write_compare_json(FILE *f, const char *path, const struct pair *ps, size_t n, const struct machine *m,
			      const struct upager_config *cfg, const struct opts *o, const struct kernel_side *ks,
			      const struct device *dev, const char *sdir, const struct target *t, size_t nt,
			      bool verified, double wall_s)
{
	fprintf(f, "{\n  \"tool\": \"%s compare\",\n  \"version\": \"%s\",\n  \"library_version\": ", PROG,
		UPAGER_VERSION_STRING);
	json_string(f, upager_version());
	fprintf(f, ",\n  \"machine\": {\"nproc\": %ld, \"kernel\": ", m->nproc);
	json_string(f, m->kernel);
	fprintf(f, ", \"cpu\": ");
	json_string(f, m->cpu);
	fprintf(f, "},\n  \"config\": {\"store\": ");
	json_string(f, m->store);
	fprintf(f, ", \"store_dir\": ");
	json_string(f, sdir);
	fprintf(f, ", \"ram\": %" PRIu64 ", \"data\": %" PRIu64 ", \"page\": %" PRIu64 ", \"policy\": ", o->ram,
		o->data, o->page);
	json_string(f, cfg->policy);
	fprintf(f, ", \"handler_threads\": %u, \"readahead_max\": %u, \"fault_around\": %u, \"io_depth\": %u"
		", \"accesses\": %" PRIu64 ", \"seed\": %" PRIu64 ", \"sample_every\": %u, \"quick\": %s},\n",
		cfg->handler_threads, cfg->readahead_max, cfg->fault_around, cfg->io_depth, o->accesses, o->seed,
		SAMPLE_EVERY, o->quick ? "true" : "false");
	fprintf(f, "  \"kernel_side\": {\"ran\": %s", ks->ready ? "true" : "false");
	if (ks->ready) {
		fprintf(f, ", \"cgroup_version\": %d, \"cgroup\": ", ks->cg.version);
		json_string(f, ks->cg.path);
		fprintf(f, ", \"memory_limit\": %" PRIu64 ", \"allowance\": %" PRIu64 ", \"swap_limit\": ", ks->cg.limit,
			ks->allowance);
		json_string(f, ks->cg.swap);
		fprintf(f, ", \"swappiness\": ");
		json_string(f, ks->cg.swappiness);
		fprintf(f, ", \"swap_file\": ");
		json_string(f, ks->sw.path);
		fprintf(f, ", \"swap_bytes\": %" PRIu64 ", \"other_swap_areas\": %d", ks->sw.bytes, ks->sw.others);
	} else {
		fprintf(f, ", \"why\": ");
		json_string(f, ks->why);
	}
	fprintf(f, "},\n  \"device\": {\"ran\": %s", dev->ran ? "true" : "false");
	if (dev->ran) {
		fprintf(f, ", \"file_bytes\": %" PRIu64 ", \"seconds_per_test\": %g, \"randread_4k_qd1_iops\": %.0f"
			", \"randread_4k_qd1_lat_us\": %.1f, \"randread_4k_qd32_iops\": %.0f"
			", \"seqread_128k_qd1_mb_s\": %.1f, \"seqread_1m_qd8_mb_s\": %.1f, \"seqread_mb_s\": %.1f",
			dev->file_bytes, dev->seconds, dev->qd1_iops, dev->qd1_lat_us, dev->qd32_iops, dev->seq128_mbs,
			dev->seq1m_mbs, dev->seq_mbs);
		fprintf(f, ", \"randread_4k_iops_by_qd\": {");
		for (unsigned i = 0; i < dev->nqd; i++)
			fprintf(f, "%s\"%u\": %.0f", i ? ", " : "", dev->qd[i], dev->qd_iops[i]);
		fprintf(f, "}");
	} else {
		fprintf(f, ", \"why\": ");
		json_string(f, dev->why);
	}
	fprintf(f, "},\n  \"results\": [");
	for (size_t i = 0; i < n; i++) {
		const struct pair *p = &ps[i];
		fprintf(f, "%s\n    {\"workload\": ", i ? "," : "");
		json_string(f, p->wl->name);
		fprintf(f, ", \"threads\": %u, \"ratio\": ", p->threads);
		json_num(f, ratio_of(p));
		fprintf(f, ",\n     \"kernel\": ");
		if (p->k_ok) {
			json_row(f, &p->k);
		} else {
			fprintf(f, "{\"why\": ");
			json_string(f, p->k_why);
			fputc('}', f);
		}
		fprintf(f, ",\n     \"kernel_child_cpu_s\": ");
		json_num(f, p->k_ok ? p->k_life_cpu_s : NAN);
		fprintf(f, ",\n     \"upager\": ");
		if (p->u_ok)
			json_row(f, &p->u);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n  \"targets\": [");
	for (size_t i = 0; i < nt; i++) {
		fprintf(f, "%s\n    {\"target\": ", i ? "," : "");
		json_string(f, t[i].what);
		fprintf(f, ", \"goal\": ");
		json_string(f, t[i].goal);
		fprintf(f, ", \"value\": ");
		json_string(f, t[i].value);
		fprintf(f, ", \"met\": %s}", t[i].met == 1 ? "true" : t[i].met == 0 ? "false" : "null");
	}
	fprintf(f, "\n  ],\n  \"verified\": %s,\n  \"wall_seconds\": %.1f\n}\n", verified ? "true" : "false", wall_s);
	return close_out(f, path);
}

/* --- charts --- */

static bool have_gnuplot(void)
{
	char out[200];
	const char *argv[] = { "gnuplot", "--version", NULL };
	return run_cmd(argv, out, sizeof out) == 0;
}

/* Up to `points` (latency in us, cumulative fraction) lines of a sorted sample. */
static void cdf_block(FILE *f, const uint64_t *v, size_t n, size_t points)
{
	if (!n)
		fprintf(f, "NaN NaN\n"); /* keeps the block (and its index) present */
	for (size_t k = 0; n && k < points; k++) {
		size_t i = (size_t)((double)k * (double)(n - 1) / (double)(points - 1 ? points - 1 : 1));
		fprintf(f, "%.3f %.6f\n", v[i] / 1e3, (double)(i + 1) / (double)n);
		if (n < points && i == n - 1)
			break;
	}
	fprintf(f, "\n\n");
}

static int merge_sorted(const struct pair *ps, size_t n, bool kernel, uint64_t **out, size_t *nout)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += kernel ? ps[i].nk : ps[i].nu;
	uint64_t *v = malloc((total ? total : 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const uint64_t *src = kernel ? ps[i].klat : ps[i].ulat;
		size_t m = kernel ? ps[i].nk : ps[i].nu;
		if (src && m)
			memcpy(v + k, src, m * sizeof *v);
		k += src ? m : 0;
	}
	qsort(v, k, sizeof *v, cmp_u64);
	*out = v;
	*nout = k;
	return 0;
}

/* Write the data, a gnuplot script and the PNGs into dir; 0 or -errno. */
static int write_plots(const char *dir, const struct pair *ps, size_t n, const struct opts *o)
{
	char path[700];
	snprintf(path, sizeof path, "%s/throughput.dat", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		goto fail;
	fprintf(f, "# workload/threads  kernel_accesses_per_s  upager_accesses_per_s\n");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "\"%s/%u\" ", ps[i].wl->name, ps[i].threads);
		json_num(f, ps[i].k_ok ? ps[i].k.accesses_per_s : NAN);
		fputc(' ', f);
		json_num(f, ps[i].u_ok ? ps[i].u.accesses_per_s : NAN);
		fputc('\n', f);
	}
	if (fclose(f))
		goto fail;

	snprintf(path, sizeof path, "%s/fault-latency.dat", dir);
	f = fopen(path, "w");
	if (!f)
		goto fail;
	fprintf(f, "# CDF of the client-side latency of sampled faulting accesses: latency_us fraction;\n"
		"# one block per upager run in table order, then all upager runs pooled, then all kernel runs pooled\n");
	for (size_t i = 0; i < n; i++)
		cdf_block(f, ps[i].ulat, ps[i].u_ok ? ps[i].nu : 0, 400);
	for (int kernel = 0; kernel < 2; kernel++) {
		uint64_t *v;
		size_t nv;
		if (merge_sorted(ps, n, kernel, &v, &nv)) {
			fclose(f);
			return -ENOMEM;
		}
		cdf_block(f, v, nv, 800);
		free(v);
	}
	if (fclose(f))
		goto fail;

	char ram[32], data[32];
	human_size(o->ram, ram, sizeof ram);
	human_size(o->data, data, sizeof data);
	snprintf(path, sizeof path, "%s/plot.gp", dir);
	f = fopen(path, "w");
	if (!f)
		goto fail;
	fprintf(f, "# Generated by " PROG " compare; run with: cd %s && gnuplot plot.gp\n"
		"set terminal pngcairo size 1400,700 noenhanced font ',10'\n"
		"set datafile missing NaN\n"
		"set output 'throughput.png'\n"
		"set title 'Accesses per second, %s of data, %s budget (log scale)'\n"
		"set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.85 border -1\n"
		"set logscale y\nset yrange [10:*]\nset grid ytics\nset ylabel 'accesses per second'\n"
		"set xtics rotate by -35 scale 0\nset key top right\n"
		"plot 'throughput.dat' using 2:xtic(1) title 'kernel swap (memory cgroup)' lc rgb '#888888', "
		"'' using 3 title 'upager' lc rgb '#1f77b4'\n\n"
		"reset\nset terminal pngcairo size 1200,700 noenhanced font ',10'\n"
		"set output 'fault-latency-cdf.png'\n"
		"set title 'upager: client-side latency of faulting accesses (1 in %u accesses sampled)'\n"
		"set logscale x\nset xlabel 'latency (us)'\nset ylabel 'fraction of faulting accesses'\n"
		"set yrange [0:1]\nset grid\nset key bottom right\nplot ", dir, data, ram, SAMPLE_EVERY);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s'fault-latency.dat' index %zu using 1:2 with lines lw 2 title '%s, %u thr'",
			i ? ", \\\n     " : "", i, ps[i].wl->name, ps[i].threads);
	fprintf(f, "\n\nset output 'fault-latency-cdf-vs-kernel.png'\n"
		"set title 'Faulting accesses of all workloads pooled: upager and kernel swap'\n"
		"plot 'fault-latency.dat' index %zu using 1:2 with lines lw 2 title 'upager', "
		"'' index %zu using 1:2 with lines lw 2 dt 2 title 'kernel swap'\n", n, n + 1);
	if (fclose(f))
		goto fail;

	char cmd[800], out[400];
	snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot plot.gp", dir);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	int st = run_cmd(argv, out, sizeof out);
	if (st) {
		fprintf(stderr, PROG ": gnuplot failed (%d): %s\n", st, out);
		return -EIO;
	}
	return 0;
fail:
	fprintf(stderr, PROG ": --plot: writing %s: %s\n", path, strerror(errno));
	return -errno;
}

/* --- compare mode's driver --- */

static const char *fs_name(const char *dir)
{
	struct statfs sf;
	if (statfs(dir, &sf))
		return "unknown filesystem";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x2FC12FC1: return "zfs";
	case 0xF2F52010: return "f2fs";
	case 0x01021994: return "tmpfs";
	default: return "other filesystem";
	}
}

/* The bracketed word of a sysfs choice file ("always [madvise] never"), or
 * its whole first line. */
static void sys_choice(const char *path, char *out, size_t len)
{
	char buf[256];
	if (read_str(NULL, path, buf, sizeof buf)) {
		snprintf(out, len, "?");
		return;
	}
	char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
	if (l && r)
		msgf(out, len, "%.*s", (int)(r - l - 1), l + 1);
	else
		msgf(out, len, "%s", buf);
}

/*
 * Put the kernel side in place: a memory cgroup and a swap file of
 * data + budget on the store's filesystem.  The cgroup's limit is the
 * budget plus an allowance for what upager keeps outside its budget but the
 * cgroup charges: the page tables of the whole region (8 bytes per 4 KiB)
 * and the workload's own bookkeeping arrays (5 bytes per page), plus 1 MiB
 * for stacks and the like.
 */
static void kernel_setup(struct kernel_side *ks, const struct opts *o, const char *dir)
{
	char why[512];
	if (o->no_kernel) {
		msgf(ks->why, sizeof ks->why, "--no-kernel was given");
		return;
	}
	if (geteuid() != 0) {
		msgf(ks->why, sizeof ks->why, "not running as root: creating a memory cgroup and enabling a swap "
			 "file need root (CAP_SYS_ADMIN); run " PROG " compare as root");
		return;
	}
	if (access("/proc/swaps", R_OK)) {
		msgf(ks->why, sizeof ks->why, "this kernel has no swap (no /proc/swaps: CONFIG_SWAP is off)");
		return;
	}
	if (is_ram_fs(dir)) {
		msgf(ks->why, sizeof ks->why, "the store directory %s is tmpfs: a swap file cannot live there", dir);
		return;
	}
	uint64_t swap_bytes = o->swap_bytes ? o->swap_bytes : o->data + o->ram;
	struct statvfs sv;
	uint64_t need = swap_bytes + (o->no_device ? 0 : o->device_bytes) + o->data + (64ULL << 20);
	if (statvfs(dir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < need) {
		char have[32], want[32];
		human_size((uint64_t)sv.f_bavail * sv.f_frsize, have, sizeof have);
		human_size(need, want, sizeof want);
		msgf(ks->why, sizeof ks->why, "%s has %s free; the swap file, the device test file and the store "
			 "need about %s: free space or point UPAGER_STORE / TMPDIR at a larger disk", dir, have, want);
		return;
	}
	uint64_t allow = o->data / 512 + o->data / o->page * 5 + (1ULL << 20);
	ks->allowance = (allow + (1ULL << 20) - 1) & ~((1ULL << 20) - 1);
	if (cg_create(&ks->cg, o->ram + ks->allowance, why, sizeof why)) {
		msgf(ks->why, sizeof ks->why, "cannot create a memory cgroup: %s", why);
		return;
	}
	if (swap_create(dir, swap_bytes, &ks->sw, why, sizeof why)) {
		msgf(ks->why, sizeof ks->why, "cannot enable a swap file: %s", why);
		undo_all();
		return;
	}
	ks->ready = true;
}

static void kernel_teardown(struct kernel_side *ks)
{
	if (undo.swap_on) {
		if (swapoff(undo.swapfile))
			fprintf(stderr, PROG ": warning: swapoff %s: %s; turn it off by hand (swapoff %s) and remove it\n",
				undo.swapfile, strerror(errno), undo.swapfile);
		undo.swap_on = 0;
	}
	if (undo.cgroup[0]) {
		char path[512];
		snprintf(path, sizeof path, "%s", undo.cgroup);
		undo_all();
		if (access(path, F_OK) == 0)
			fprintf(stderr, PROG ": warning: could not remove the cgroup %s; rmdir it by hand\n", path);
	}
	undo_all();
	ks->ready = false;
}

static void print_compare_header(FILE *out, const struct machine *m, const struct upager_config *cfg,
				 const struct opts *o, const char *sdir, const char *snote)
{
	char ram[32], data[32], page[32];
	human_size(o->ram, ram, sizeof ram);
	human_size(o->data, data, sizeof data);
	human_size(o->page, page, sizeof page);
	fprintf(out, "%s %s (libupager %s), compare: upager against the kernel's swap%s\n", PROG,
		UPAGER_VERSION_STRING, upager_version(), o->quick ? " (--quick)" : "");
	fprintf(out, "machine  %ld CPUs%s%s, %s\n", m->nproc, m->cpu[0] ? ", " : "", m->cpu, m->kernel);
	fprintf(out, "store    %s; directory %s (%s)\n", m->store, sdir, fs_name(sdir));
	if (snote[0])
		fprintf(out, "note     %s\n", snote);
	fprintf(out, "memory   ram %s, data %s (%.1fx), page %s, policy %s, random accesses %" PRIu64 " per run%s\n",
		ram, data, (double)o->data / (double)o->ram, page, cfg->policy, o->accesses,
		o->page != 4096 ? " (the kernel side always pages 4 KiB)" : "");
	fprintf(out, "runtime  %u handler thread%s, readahead %u pages, fault-around %u pages, io depth %u, seed %" PRIu64 "\n",
		cfg->handler_threads, cfg->handler_threads == 1 ? "" : "s", cfg->readahead_max, cfg->fault_around,
		cfg->io_depth, o->seed);
	fflush(out);
}

static void print_kernel_side(FILE *out, const struct kernel_side *ks)
{
	if (!ks->ready) {
		fprintf(out, "kernel   NOT RUN: %s; running upager alone\n", ks->why);
		return;
	}
	char lim[32], allow[32], sw[32], thp[32], zswap[16], cluster[16];
	human_size(ks->cg.limit, lim, sizeof lim);
	human_size(ks->allowance, allow, sizeof allow);
	human_size(ks->sw.bytes, sw, sizeof sw);
	sys_choice("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
	sys_choice("/sys/module/zswap/parameters/enabled", zswap, sizeof zswap);
	sys_choice("/proc/sys/vm/page-cluster", cluster, sizeof cluster);
	fprintf(out, "kernel   cgroup v%d %s\n", ks->cg.version, ks->cg.path);
	fprintf(out, "         %s %s = budget + %s (page tables and the workload's own arrays, which upager keeps "
		"outside its budget); %s; swappiness %s\n", ks->cg.version == 2 ? "memory.max" : "memory.limit_in_bytes",
		lim, allow, ks->cg.swap, ks->cg.swappiness);
	fprintf(out, "         swap file %s, %s (%s), priority 32767%s; page-cluster %s, THP %s, zswap %s\n",
		ks->sw.path, sw, ks->sw.how, ks->sw.others > 0 ? ", OTHER SWAP AREAS ARE ACTIVE" : "", cluster, thp, zswap);
	if (zswap[0] == 'Y' && ks->cg.version == 1)
		fprintf(out, "         warning: zswap is on: the kernel side keeps compressed pages in RAM before the disk\n");
	fflush(out);
}

static void print_device(FILE *out, const struct device *dev)
{
	if (!dev->ran) {
		fprintf(out, "device   NOT MEASURED: %s\n", dev->why);
		return;
	}
	char fb[32];
	human_size(dev->file_bytes, fb, sizeof fb);
	fprintf(out, "device   O_DIRECT io_uring reads of a %s file, %.0f s per test: 4 KiB random QD1 %.0f IOPS "
		"(%.0f us), QD32 %.0f IOPS; sequential 128 KiB QD1 %.0f MB/s, 1 MiB QD8 %.0f MB/s\n",
		fb, dev->seconds, dev->qd1_iops, dev->qd1_lat_us, dev->qd32_iops, dev->seq128_mbs, dev->seq1m_mbs);
	if (dev->nqd) {
		fprintf(out, "         4 KiB random at the random workloads' thread counts:");
		for (unsigned i = 0; i < dev->nqd; i++)
			fprintf(out, "%s QD%u %.0f IOPS", i ? "," : "", dev->qd[i], dev->qd_iops[i]);
		fprintf(out, "\n");
	}
	fflush(out);
}

/* Major faults per second of one side of a pair, or NAN. */
static double major_rate(const struct row *r, bool ok)
{
	return ok && r->seconds > 0 ? r->store_reads / r->seconds : NAN;
}

/*
 * Each side's major-fault rate on the random workloads as a share of what
 * the device gives 4 KiB random reads at a queue depth equal to the thread
 * count: a thread that waits for its fault has one read in flight, so that
 * is the most either side can get, write-back and hits aside.
 */
static void print_ceiling(FILE *out, const struct pair *ps, size_t n, const struct device *dev)
{
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		const struct pair *p = &ps[i];
		double dv = device_iops_at(dev, p->threads);
		if (!p->wl->scales || isnan(dv) || dv <= 0)
			continue;
		if (!any)
			fprintf(out, "\nmajor faults/s against the device's 4 KiB random reads/s at queue depth = threads:\n");
		any = true;
		double k = major_rate(&p->k, p->k_ok), u = major_rate(&p->u, p->u_ok);
		char ks[64] = "kernel not run";
		if (!isnan(k))
			snprintf(ks, sizeof ks, "kernel %.0f/s = %.0f%%", k, 100 * k / dv);
		fprintf(out, "  %-10s %3u thr  device %6.0f/s  %-24s  upager %.0f/s = %.0f%%\n", p->wl->name, p->threads, dv,
			ks, u, 100 * u / dv);
	}
	fflush(out);
}

/* Thread counts of a workload in compare mode: 1, 2 and 8 for the random
 * workloads (or --threads), 1 for the others (issue 4's table). */
static unsigned plan_threads(const struct opts *o, const struct workload *wl, unsigned *out)
{
	static const unsigned def[] = { 1, 2, 8 };
	if (!wl->scales) {
		out[0] = 1;
		return 1;
	}
	if (o->have_threads) {
		memcpy(out, o->threads, o->nthreads * sizeof *out);
		return o->nthreads;
	}
	memcpy(out, def, sizeof def);
	return 3;
}

static int compare_main(const struct upager_config *cfg, const struct opts *o, FILE *csv, FILE *json)
{
	uint64_t t_all = now_ns();
	struct machine m;
	machine_probe(&m, cfg);
	char sdir[512], snote[400];
	store_dir(cfg, sdir, sizeof sdir, snote, sizeof snote);
	undo_install();
	if (geteuid() == 0)
		swap_remove_stale();
	print_compare_header(stdout, &m, cfg, o, sdir, snote);

	struct kernel_side ks;
	memset(&ks, 0, sizeof ks);
	if (!o->quiet && !o->no_kernel)
		fprintf(stderr, "%s: setting up the kernel side (cgroup, swap file) ...\n", PROG);
	kernel_setup(&ks, o, sdir);
	print_kernel_side(stdout, &ks);

	struct device dev;
	memset(&dev, 0, sizeof dev);
	dev.file_bytes = o->device_bytes;
	dev.seconds = o->device_seconds;
	/* The random workloads' thread counts, each a queue depth to measure. */
	for (size_t w = 0; w < NWORKLOADS; w++) {
		unsigned tl[32];
		unsigned nt = o->want[w] && workloads[w].scales ? plan_threads(o, &workloads[w], tl) : 0;
		for (unsigned t = 0; t < nt && dev.nqd < MAX_DEVICE_QDS; t++) {
			bool have = false;
			for (unsigned i = 0; i < dev.nqd; i++)
				have |= dev.qd[i] == tl[t];
			if (!have)
				dev.qd[dev.nqd++] = tl[t];
		}
	}
	unsigned extra = 0;
	for (unsigned i = 0; i < dev.nqd; i++)
		extra += !device_base_qd(dev.qd[i]);
	if (o->no_device) {
		snprintf(dev.why, sizeof dev.why, "--no-device was given");
	} else {
		if (!o->quiet)
			fprintf(stderr, "%s: measuring the store's filesystem (%.0f s) ...\n", PROG,
				(4 + extra) * dev.seconds + 2);
		device_measure(&dev, sdir);
	}
	print_device(stdout, &dev);

	int drc = drop_caches();
	if (drc)
		fprintf(stdout, "note     cannot drop the page cache (%s): runs start with whatever is cached\n",
			strerror(-drc));
	fprintf(stdout, "\n"
		"kernel/s, upager/s: page accesses per second in the timed phase (fill and verification untimed);\n"
		"ratio: upager/kernel.  upg-p50/p99, krn-p50/p99: client latency (us) of sampled accesses that began\n"
		"on an unmapped page (1 access in %u timed, mincore() before each).  krn-cpu, upg-cpu: process CPU\n"
		"(user+system, all threads, the workload's own work included) per major fault, us (-: fewer major\n"
		"faults than 1%% of accesses); upg-thr: upager's own threads alone; upg-poll: of upg-cpu, the\n"
		"handlers' polling for store reads to complete (device wait spent on a CPU instead of asleep,\n"
		"UPAGER_POLL_US).  krn-maj, upg-maj: major faults (kernel: getrusage; upager: store reads;\n"
		"readahead pages not counted on either side).\n\n",
		SAMPLE_EVERY);
	print_pair_header(stdout);

	size_t cap = 0;
	unsigned tl[32];
	for (size_t w = 0; w < NWORKLOADS; w++)
		if (o->want[w])
			cap += plan_threads(o, &workloads[w], tl);
	struct pair *ps = calloc(cap ? cap : 1, sizeof *ps);
	if (!ps) {
		fprintf(stderr, PROG ": out of memory\n");
		kernel_teardown(&ks);
		return 1;
	}
	struct upager_backend ub = { .cfg = *cfg };
	struct backend be = {
		.name = "upager", .setup = upb_setup, .snapshot = upb_snapshot, .teardown = upb_teardown, .priv = &ub,
	};
	size_t n = 0;
	bool data_ok = true, failed = false;
	for (size_t w = 0; w < NWORKLOADS && !failed; w++) {
		if (!o->want[w])
			continue;
		unsigned nt = plan_threads(o, &workloads[w], tl);
		for (unsigned t = 0; t < nt && !failed; t++) {
			struct pair *p = &ps[n];
			p->wl = &workloads[w];
			p->threads = tl[t];
			if (!o->quiet)
				fprintf(stderr, "%s: %s, %u thread%s:", PROG, p->wl->name, p->threads, p->threads == 1 ? "" : "s");
			if (ks.ready) {
				drop_caches();
				uint64_t t0 = now_ns();
				p->k_ok = run_kernel(&ks, o, p->wl, p->threads, &p->k, &p->klat, &p->nk, &p->k_life_cpu_s,
						     p->k_why, sizeof p->k_why) == 0;
				if (!o->quiet)
					fprintf(stderr, " kernel %.1f s", (now_ns() - t0) / 1e9);
				if (!p->k_ok)
					fprintf(stderr, "\n%s: kernel side of %s, %u thread%s failed: %s\n", PROG, p->wl->name,
						p->threads, p->threads == 1 ? "" : "s", p->k_why);
			} else {
				msgf(p->k_why, sizeof p->k_why, "%s", ks.why);
			}
			drop_caches();
			uint64_t t0 = now_ns();
			if (!o->quiet)
				fprintf(stderr, "%s upager", ks.ready ? "," : "");
			if (run_one(&be, o, p->wl, p->threads, &p->u, &p->ulat, &p->nu)) {
				free(p->klat);
				failed = true;
				break;
			}
			p->u_ok = true;
			n++;
			if (!o->quiet)
				fprintf(stderr, " %.1f s\n", (now_ns() - t0) / 1e9);
			print_pair(stdout, p);
			if (p->k_ok && p->k.bad_words) {
				data_ok = false;
				fprintf(stderr, PROG ": VERIFICATION FAILED under the kernel's swap: %s with %u thread%s: %"
					PRIu64 " wrong words\n", p->wl->name, p->threads, p->threads == 1 ? "" : "s",
					p->k.bad_words);
			}
			if (p->u.bad_words) {
				data_ok = false;
				fprintf(stderr, PROG ": VERIFICATION FAILED under upager: %s with %u thread%s: %" PRIu64
					" wrong words\n", p->wl->name, p->threads, p->threads == 1 ? "" : "s", p->u.bad_words);
			}
		}
	}
	bool kernel_ran = ks.ready;
	kernel_teardown(&ks);
	ks.ready = kernel_ran; /* for the report */

	const struct pair *sp = find_pair(ps, n, "seq-read", 0);
	if (sp && dev.ran)
		printf("\nupager seq-read: %.0f MB/s = %.0f%% of the store filesystem's sequential O_DIRECT bandwidth "
		       "(%.0f MB/s)\n", seq_mbs(sp, o->page), 100 * seq_mbs(sp, o->page) / dev.seq_mbs, dev.seq_mbs);
	if (sp && sp->k_ok && dev.ran)
		printf("kernel seq-read: %.0f MB/s = %.0f%% of it\n", sp->k.accesses_per_s * (double)o->page / 1e6,
		       100 * sp->k.accesses_per_s * (double)o->page / 1e6 / dev.seq_mbs);
	print_ceiling(stdout, ps, n, &dev);
	struct target tg[MAX_TARGETS];
	size_t ntg = targets_eval(ps, n, &dev, &ks, o->page, tg);
	print_targets(stdout, tg, ntg);
	double wall = (now_ns() - t_all) / 1e9;
	printf("\n%zu workload runs %s in %.0f s: %s\n", n, kernel_ran ? "on each side" : "(upager alone)", wall,
	       failed ? "STOPPED by an upager runtime failure" :
	       data_ok ? "every page verified" : "DATA ERRORS (see above)");
	fflush(stdout);

	int out_rc = 0;
	if (csv) {
		struct row *rows = calloc(2 * (n ? n : 1), sizeof *rows);
		size_t nr = 0;
		for (size_t i = 0; rows && i < n; i++) {
			if (ps[i].k_ok)
				rows[nr++] = ps[i].k;
			if (ps[i].u_ok)
				rows[nr++] = ps[i].u;
		}
		out_rc |= rows ? write_csv(csv, o->csv, rows, nr) : -ENOMEM;
		free(rows);
	}
	if (json)
		out_rc |= write_compare_json(json, o->json, ps, n, &m, cfg, o, &ks, &dev, sdir, tg, ntg,
					     data_ok && !failed, wall);
	if (o->plot) {
		int prc = write_plots(o->plot, ps, n, o);
		if (prc == 0)
			printf("charts: %s/throughput.png, %s/fault-latency-cdf.png, %s/fault-latency-cdf-vs-kernel.png\n",
			       o->plot, o->plot, o->plot);
		out_rc |= prc;
	}
	for (size_t i = 0; i < n; i++) {
		free(ps[i].klat);
		free(ps[i].ulat);
	}
	free(ps);
	return !data_ok || failed || out_rc ? 1 : 0;
}

/* ----------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [--ram SIZE] [--data SIZE] [--threads N[,N...]] [--page SIZE]\n"
"                    [--policy NAME] [--workload NAME[,NAME...]] [--accesses N]\n"
"                    [--seed N] [--csv FILE] [--json FILE] [--quiet]\n"
"       " PROG " compare [--quick] [--ram SIZE] [--data SIZE] [--threads N[,N...]]\n"
"                    [--workload NAME[,NAME...]] [--accesses N] [--plot DIR]\n"
"                    [--csv FILE] [--json FILE] [--no-kernel] [--no-device]\n"
"                    [--device-size SIZE] [--swap-size SIZE] [--page SIZE]\n"
"                    [--policy NAME] [--seed N] [--quiet]\n"
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
"override them.  The store defaults to an unlinked file in $TMPDIR or /tmp.\n"
"\n"
"compare: run every workload twice, back to back on fresh memory, under the\n"
"kernel's own swap and under upager, and print both rates, their ratio, fault\n"
"latency, CPU per major fault, the store filesystem's O_DIRECT limits and the\n"
"issue-4 targets (met or not; a missed target is not an error).  The kernel\n"
"side runs each workload in a child process over plain anonymous memory, in a\n"
"memory cgroup (v2 or v1) capped at the budget, with a swap file of data+budget\n"
"made and enabled in the store's directory; both are removed at the end, on an\n"
"error and on SIGINT/SIGTERM.  It needs root; without it, upager runs alone.\n"
"The page cache is dropped before every run.  Thread counts: 1, 2 and 8 for\n"
"rand-read, rand-rmw and zipf (or --threads), 1 for the others.  Defaults: the\n"
"budget 256M, data 4 times the budget, one random access per page.\n"
"  --quick            smoke test: --ram 64M --data 256M, a quarter of the\n"
"                     random accesses, 1-second device tests on 256M\n"
"  --plot DIR         write throughput.png, fault-latency-cdf.png and\n"
"                     fault-latency-cdf-vs-kernel.png (and their data and\n"
"                     gnuplot script) into DIR; needs gnuplot\n"
"                     (apt-get install -y gnuplot-nox)\n"
"  --no-kernel        run upager alone\n"
"  --no-device        skip the device measurement\n"
"  --device-size SIZE size of the device test file (default 1G; --quick 256M)\n"
"  --swap-size SIZE   size of the kernel side's swap file (default data plus\n"
"                     budget; while more than half of the swap is in use the\n"
"                     kernel frees a page's swap copy when it reads it back,\n"
"                     so it rewrites clean pages on eviction)\n");
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
	o.compare = argc > 1 && !strcmp(argv[1], "compare");
	for (int i = o.compare ? 2 : 1; i < argc; i++) {
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
		static const char *const compare_flags[] = { "--quick", "--no-kernel", "--no-device" };
		bool flag = false;
		for (size_t k = 0; k < sizeof compare_flags / sizeof compare_flags[0]; k++)
			flag |= !strcmp(arg, compare_flags[k]);
		if (flag && !o.compare) {
			fprintf(stderr, PROG ": %s belongs to compare mode: " PROG " compare %s ...\n", arg, arg);
			return 2;
		}
		if (flag) {
			o.quick |= !strcmp(arg, "--quick");
			o.no_kernel |= !strcmp(arg, "--no-kernel");
			o.no_device |= !strcmp(arg, "--no-device");
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
							  "--workload", "--accesses", "--seed", "--csv", "--json",
							  "--plot", "--device-size", "--swap-size" };
		bool known = false;
		for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
			known |= !strcmp(name, with_value[k]);
		if (!known) {
			fprintf(stderr, PROG ": unknown option '%s'\nTry '" PROG " --help'.\n", arg);
			return 2;
		}
		if (!o.compare && (!strcmp(name, "--plot") || !strcmp(name, "--device-size") ||
				   !strcmp(name, "--swap-size"))) {
			fprintf(stderr, PROG ": %s belongs to compare mode: " PROG " compare %s ...\n", name, name);
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
			o.have_threads = true;
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
		} else if (!strcmp(name, "--plot")) {
			if (!*val)
				rc = bad_arg(name, val, "a directory for the charts, such as charts");
			o.plot = val;
		} else if (!strcmp(name, "--device-size")) {
			rc = parse_size_arg(name, val, &o.device_bytes, "a size of at least 16M, such as 1G");
			if (!rc && o.device_bytes < (16ULL << 20))
				rc = bad_arg(name, val, "a size of at least 16M, such as 1G");
		} else if (!strcmp(name, "--swap-size")) {
			rc = parse_size_arg(name, val, &o.swap_bytes, "a size of at least 16M, such as 2G");
			if (!rc && o.swap_bytes < (16ULL << 20))
				rc = bad_arg(name, val, "a size of at least 16M, such as 2G");
		}
		if (rc)
			return rc;
	}

	if (have_ram)
		cfg.ram_budget = o.ram;
	else if (o.quick)
		cfg.ram_budget = 64ULL << 20;
	if (have_page)
		cfg.page_size = (uint32_t)o.page;
	if (policy)
		cfg.policy = policy;
	o.ram = cfg.ram_budget;
	o.page = cfg.page_size;
	if (!o.data)
		o.data = o.ram * 4;
	o.data -= o.data % o.page;
	if (o.compare) {
		/* --quick: 256M of data over 64M, a sixteenth of the random accesses,
		 * and a short device test. */
		if (!o.accesses)
			o.accesses = o.quick ? o.data / o.page / 4 : o.data / o.page;
		if (!o.device_bytes)
			o.device_bytes = o.quick ? 256ULL << 20 : 1ULL << 30;
		o.device_bytes &= ~((1ULL << 20) - 1);
		o.device_seconds = o.quick ? 1 : 3;
		if (o.plot) {
			if (!have_gnuplot()) {
				fprintf(stderr, PROG ": --plot needs gnuplot, which is not installed: install it with "
					"'apt-get install -y gnuplot-nox' (Debian, Ubuntu) and run again\n");
				return 2;
			}
			if (mkdir(o.plot, 0755) && errno != EEXIST) {
				fprintf(stderr, PROG ": --plot %s: cannot create the directory: %s\n", o.plot, strerror(errno));
				return 2;
			}
		}
	}
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
	if (o.compare)
		return compare_main(&cfg, &o, csv, json);

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
			if (run_one(&be, &o, &workloads[w], threads, r, NULL, NULL)) {
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
