/* SPDX-License-Identifier: MIT */
/* The driver: one (workload, threads) run on a fresh backend region, measured into a row. */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

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
	bool evictor[MAX_TASKS];  /* upager names its evictor thread "upg-evictor" */
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
		char path[64], comm[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(comm, sizeof comm, f))
				comm[0] = 0;
			fclose(f);
		}
		t->evictor[t->n] = !strncmp(comm, "upg-evictor", 11);
		t->tid[t->n] = tid;
		t->ns[t->n++] = thread_cpu_ns(tid);
	}
	closedir(d);
}

/* CPU the threads in b used since a (a thread new in b counts whole); with
 * evictor_only, upager's evictor thread alone. */
static double task_cpu_delta(const struct task_cpu *a, const struct task_cpu *b, bool evictor_only)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < b->n; i++) {
		if (evictor_only && !b->evictor[i])
			continue;
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

int cmp_u64(const void *a, const void *b)
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

/*
 * One (workload, threads) run on a fresh backend region.  0, -errno for a
 * backend or memory failure (with a message printed).  When flat is not
 * NULL it receives the sorted latencies (ns) of the sampled faulting
 * accesses, to free().
 */
int run_one(struct backend *be, const struct opts *o, const struct workload *wl, unsigned threads,
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
		.accesses = o->accesses, .warmup = o->warmup, .ram = o->ram, .content = o->content, .hooks = &hooks,
	};
	struct wl_result r = { 0 };
	workload_reports_reset();
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
	snprintf(row->content, sizeof row->content, "%s", content_name(o->content));
	row->content_lz4_ratio = o->sample.lz4_ratio;
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
	row->takeout_calls = b->takeout_calls - a->takeout_calls;
	row->takeout_pages = b->takeout_pages - a->takeout_pages;
	row->takeout_alone = b->takeout_alone - a->takeout_alone;
	row->bytes_read = b->bytes_read - a->bytes_read;
	row->bytes_written = b->bytes_written - a->bytes_written;
	row->cpu_s = ph.cpu1 - ph.cpu0;
	row->cpu_s_pager_threads = task_cpu_delta(&ph.tc0, &ph.tc1, false);
	row->cpu_s_evictor = task_cpu_delta(&ph.tc0, &ph.tc1, true);
	row->cpu_s_per_eviction = row->evictions ? row->cpu_s_evictor / row->evictions : NAN;
	row->cpu_s_per_major_fault = row->store_reads ? row->cpu_s / row->store_reads : NAN;
	row->cpu_s_polling = (double)(b->poll_cpu_ns - a->poll_cpu_ns) / 1e9;
	row->cpu_s_per_page_in = row->store_reads + row->readahead_pages ?
		row->cpu_s / (row->store_reads + row->readahead_pages) : NAN;
	row->pool_hits = b->pool_hits - a->pool_hits;
	row->pool_puts = b->pool_puts - a->pool_puts;
	row->pool_rejects = b->pool_rejects - a->pool_rejects;
	row->pool_writebacks = b->pool_writebacks - a->pool_writebacks;
	row->pool_drops = b->pool_drops - a->pool_drops;
	row->pool_bytes = b->pool_bytes;
	row->pool_pages = b->pool_pages;
	uint64_t misses = b->pool_misses - a->pool_misses;
	/* NAN (null) for a side without a pool in use: upager with
	 * compress=off, or the kernel with zswap off. */
	bool pool = row->pool_hits || row->pool_puts || row->pool_rejects || b->pool_pages;
	row->pool_hit_share = pool && row->pool_hits + misses ?
		(double)row->pool_hits / (double)(row->pool_hits + misses) : NAN;
	row->pool_ratio = b->pool_bytes ? (double)b->pool_pages * 4096 / (double)b->pool_bytes : NAN;
	row->resident_bytes = b->resident_bytes;
	row->cgroup_usage = b->cgroup_usage;
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
