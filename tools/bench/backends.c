/* SPDX-License-Identifier: MIT */
/* The memory backends: a region of fresh memory and its paging counters. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "bench.h"

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
		.takeout_calls = st.takeout_calls,
		.takeout_pages = st.takeout_pages,
		.takeout_alone = st.takeout_alone,
		.bytes_read = st.bytes_read,
		.bytes_written = st.bytes_written,
		.fault_count = st.fault_count,
		.fault_ns_total = st.fault_ns_total,
		.fault_p50_ns = st.fault_p50_ns,
		.fault_p99_ns = st.fault_p99_ns,
		.poll_cpu_ns = st.poll_cpu_ns,
		.pool_hits = st.pool_hits,
		.pool_misses = st.store_reads,
		.pool_puts = st.pool_puts,
		.pool_rejects = st.pool_rejects,
		.pool_writebacks = st.pool_writebacks,
		.pool_drops = st.pool_drops,
		.pool_bytes = st.pool_bytes,
		.pool_pages = st.pool_pages,
		.resident_bytes = st.resident_bytes,
	};
	return 0;
}

static void upb_teardown(struct backend *be)
{
	struct upager_backend *b = be->priv;
	if (b->up && b->want_forecast) {
		struct upager_stats st = { .size = sizeof st };
		b->refills = upager_stats(b->up, &st) ? 0 : st.store_reads + st.pool_hits;
		for (int k = 0; k < 2; k++) {
			b->fc[k] = (struct upager_forecast){ .size = sizeof b->fc[k] };
			if (upager_forecast(b->up, b->cfg.ram_budget * (uint64_t)(k + 3) / 2, &b->fc[k]))
				b->fc[k].basis = UINT32_MAX;
		}
	}
	if (b->mem)
		upager_unmap(b->up, b->mem);
	upager_close(b->up);
	b->mem = NULL;
	b->up = NULL;
}

/*
 * The kernel's own paging: plain anonymous memory.  Compare mode runs this
 * backend in a child process inside a memory cgroup capped at the budget,
 * with a swap file on the store's filesystem (see compare_kernel.c); the
 * backend itself only maps memory and reads counters.  Major faults and
 * CPU come from getrusage() of this (child) process; swap traffic,
 * readahead and evictions from /proc/vmstat, which is machine-wide (the
 * machine is meant to be otherwise idle; nothing else swaps while the
 * swap file is the only one).  zswap's traffic is in /proc/vmstat too, and
 * what its pool holds in debugfs (compare mode mounts it when it can).
 */

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

/* A number from a one-line file, or 0. */
static uint64_t file_u64(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long long v = 0;
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* This process's resident anonymous memory (RssAnon), bytes, or 0. */
static uint64_t rss_anon(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	unsigned long long kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "RssAnon: %llu", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
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
	struct kernel_backend *b = be->priv;
	static const char *const names[] = { "pswpin", "pswpout", "swap_ra", "workingset_refault_anon",
					     "pgsteal_anon", "zswpin", "zswpout", "zswpwb" };
	uint64_t v[8];
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return -errno;
	vmstat_read(names, v, 8);
	*out = (struct mem_counters){
		.major_faults = (uint64_t)ru.ru_majflt,
		.fault_count = (uint64_t)ru.ru_majflt + (uint64_t)ru.ru_minflt,
		.bytes_read = v[0] * 4096,
		.bytes_written = v[1] * 4096,
		.writebacks = v[1],
		.readahead_pages = v[2],
		.refaults = v[3],
		.evictions = v[4],
		.pool_hits = v[5],
		.pool_misses = v[0],
		.pool_puts = v[6],
		.pool_writebacks = v[7],
		.pool_bytes = file_u64(ZSWAP_DEBUGFS "/pool_total_size"),
		.pool_pages = file_u64(ZSWAP_DEBUGFS "/stored_pages"),
		.resident_bytes = rss_anon(),
		.cgroup_usage = b->usage_file[0] ? file_u64(b->usage_file) : 0,
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

void backend_upager(struct backend *be, struct upager_backend *ub, const struct upager_config *cfg)
{
	*ub = (struct upager_backend){ .cfg = *cfg };
	*be = (struct backend){
		.name = "upager", .setup = upb_setup, .snapshot = upb_snapshot, .teardown = upb_teardown, .priv = ub,
	};
}

void backend_kernel(struct backend *be, struct kernel_backend *kb)
{
	*kb = (struct kernel_backend){ 0 };
	*be = (struct backend){
		.name = "kernel", .setup = ksb_setup, .snapshot = ksb_snapshot, .teardown = ksb_teardown, .priv = kb,
	};
}
