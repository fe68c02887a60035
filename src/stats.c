/* SPDX-License-Identifier: MIT */
/* Fault-latency histogram and the human-readable report. */
#include "internal.h"

#include <stddef.h>

#include <stdio.h>

/* Log-linear buckets: exact below 16 ns, then 4 buckets per power of two
 * (at most 25% relative error), up to 2^64 ns. */
static unsigned bucket_of(uint64_t ns)
{
	if (ns < 16)
		return (unsigned)ns;
	unsigned e = 63 - (unsigned)__builtin_clzll(ns);
	unsigned sub = (unsigned)(ns >> (e - 2)) & 3;
	return 16 + (e - 4) * 4 + sub;
}

static uint64_t bucket_upper(unsigned idx)
{
	if (idx < 16)
		return idx;
	unsigned e = (idx - 16) / 4 + 4, sub = (idx - 16) % 4;
	return ((uint64_t)(4 + sub + 1) << (e - 2)) - 1;
}

void upg_hist_add(struct upg_hist *h, uint64_t ns)
{
	h->b[bucket_of(ns)]++;
	if (ns > h->max)
		h->max = ns;
}

uint64_t upg_hist_pct(const struct upg_hist *h, double pct)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < UPG_HIST_BUCKETS; i++)
		total += h->b[i];
	if (!total)
		return 0;
	uint64_t want = (uint64_t)(pct / 100.0 * (double)total);
	if (want >= total)
		want = total - 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < UPG_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want) {
			uint64_t u = bucket_upper(i);
			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}

static void human(uint64_t b, char *buf, size_t len)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	unsigned i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static bool has_stalls(const struct upager_stats *st)
{
	return st->size >= offsetof(struct upager_stats, stall_pad) + sizeof st->stall_pad;
}

bool upg_stats_thrashed(const struct upager_stats *st)
{
	uint64_t refills = st->store_reads + st->pool_hits;
	return has_stalls(st) && st->wall_ns >= 1000000000ULL && st->stall_some_ns * 2 >= st->wall_ns &&
	       refills >= 1000 && st->refaults * 4 >= refills;
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

UPAGER_API int upager_format_stats(const struct upager_stats *st, char *buf, size_t len)
{
	char budget[32], res[32], peak[32], rd[32], wr[32], store[32], used[32], over[32], meta[32];
	human(st->ram_budget, budget, sizeof budget);
	human(st->resident_bytes, res, sizeof res);
	human(st->resident_peak, peak, sizeof peak);
	human(st->bytes_read, rd, sizeof rd);
	human(st->bytes_written, wr, sizeof wr);
	human(st->store_bytes, store, sizeof store);
	human(st->store_slots_used * 4096, used, sizeof used);
	human(st->overshoot_peak, over, sizeof over);
	human(st->metadata_bytes, meta, sizeof meta);
	/* Fields a caller built with an older header does not have. */
	bool has_read_errors = st->size >= offsetof(struct upager_stats, poisoned_pages) + sizeof st->poisoned_pages;
	unsigned long long rerr = has_read_errors ? st->read_errors : 0;
	unsigned long long ierr = has_read_errors ? st->integrity_errors : 0;
	unsigned long long pois = has_read_errors ? st->poisoned_pages : 0;
	bool has_polls = st->size >= offsetof(struct upager_stats, poll_cpu_ns) + sizeof st->poll_cpu_ns;
	unsigned long long polls = has_polls ? st->polls : 0, hits = has_polls ? st->poll_hits : 0;
	double poll_s = has_polls ? st->poll_cpu_ns / 1e9 : 0;
	bool has_pool = st->size >= offsetof(struct upager_stats, pool_drops) + sizeof st->pool_drops;
	char pool[448] = "";
	if (has_pool && (st->pool_puts || st->pool_rejects)) {
		char pb[32], share[128] = "";
		human(st->pool_bytes, pb, sizeof pb);
		if (st->size >= offsetof(struct upager_stats, pool_share_most) + sizeof st->pool_share_most &&
		    st->pool_share_most) {
			char now[32], most[32];
			human(st->pool_share_bytes, now, sizeof now);
			human(st->pool_share_most, most, sizeof most);
			snprintf(share, sizeof share, "; its share of the budget is %s now, at most %s", now, most);
		}
		uint64_t served = st->pool_hits + st->store_reads;
		char back[96] = "";
		int k = 0;
		if (st->size >= offsetof(struct upager_stats, pool_repools) + sizeof st->pool_repools && st->pool_repools)
			k = snprintf(back, sizeof back, "; %llu back unwritten", (unsigned long long)st->pool_repools);
		if (st->size >= offsetof(struct upager_stats, pool_skips) + sizeof st->pool_skips && st->pool_skips)
			snprintf(back + k, sizeof back - (size_t)k, "; %llu passed over", (unsigned long long)st->pool_skips);
		snprintf(pool, sizeof pool,
			 "  compressed pool   %s holding %llu pages (ratio %.2f); %llu faults served from it "
			 "(%.1f%% of refills); %llu pages in, %llu too poor%s; %llu written on, %llu dropped clean%s\n",
			 pb, (unsigned long long)st->pool_pages,
			 st->pool_bytes ? (double)st->pool_pages * 4096 / (double)st->pool_bytes : 0.0,
			 (unsigned long long)st->pool_hits, served ? 100.0 * (double)st->pool_hits / (double)served : 0.0,
			 (unsigned long long)st->pool_puts, (unsigned long long)st->pool_rejects, back,
			 (unsigned long long)st->pool_writebacks, (unsigned long long)st->pool_drops, share);
	}
	char takeout[224] = "";
	int kt = 0;
	if (st->size >= offsetof(struct upager_stats, takeout_alone) + sizeof st->takeout_alone && st->takeout_calls)
		kt = snprintf(takeout, sizeof takeout, "; taken out %llu pages in %llu calls (%.1f a call), %llu alone",
			     (unsigned long long)st->takeout_pages, (unsigned long long)st->takeout_calls,
			     (double)st->takeout_pages / (double)st->takeout_calls, (unsigned long long)st->takeout_alone);
	if (st->size >= offsetof(struct upager_stats, locked_stays) + sizeof st->locked_stays && st->locked_stays &&
	    kt >= 0 && (size_t)kt < sizeof takeout)
		snprintf(takeout + kt, sizeof takeout - (size_t)kt, "; %llu tries at pages locked with mlock()",
			 (unsigned long long)st->locked_stays);
	char stall[512] = "";
	if (has_stalls(st)) {
		int k = snprintf(stall, sizeof stall,
				 "  stalls            some %.1f%%, all %.1f%% of %.1f s (%u thread%s); last %.0f s: some "
				 "%.1f%%, all %.1f%% (share of wall time waiting on faults; lower bounds)\n",
				 share(st->stall_some_ns, st->wall_ns), share(st->stall_all_ns, st->wall_ns),
				 st->wall_ns / 1e9, st->stall_threads, st->stall_threads == 1 ? "" : "s",
				 st->stall_recent_ns / 1e9, share(st->stall_some_recent_ns, st->stall_recent_ns),
				 share(st->stall_all_recent_ns, st->stall_recent_ns));
		if (upg_stats_thrashed(st) && k > 0 && (size_t)k < sizeof stall)
			snprintf(stall + k, sizeof stall - (size_t)k,
				 "  warning           this run thrashed: it waited for pages %.0f%% of its time, and %llu of "
				 "the %llu pages brought back had been evicted shortly before; a larger budget (--ram, "
				 "UPAGER_RAM) would run it faster\n",
				 share(st->stall_some_ns, st->wall_ns), (unsigned long long)st->refaults,
				 (unsigned long long)(st->store_reads + st->pool_hits));
	}
	return snprintf(buf, len,
		"upager report\n"
		"  budget            %s (%u region%s)\n"
		"  resident          %s now, %s peak\n"
		"  faults            %llu zero-fill, %llu store read (%llu refaults of recently evicted pages), "
		"%llu readahead pages, %llu write-protect faults\n"
		"  fault latency     p50 %.1f us, p99 %.1f us, max %.1f us; %.3f s in %llu faults\n"
		"  eviction          %llu pages: %llu written back, %llu clean dropped, %llu all-zero skipped%s\n"
		"  discarded         %llu pages\n"
		"  swapped in / out  %s / %s\n"
		"  store             %s used of %s file\n"
		"  errors            %llu write errors, %llu store-full refusals, budget overshoot peak %s\n"
		"  read errors       %llu failed reads, %llu blocks failing their check, %llu pages poisoned (SIGBUS)\n"
		"  read polling      %llu polls, %llu saw their completion, %.3f s of CPU\n"
		"%s"
		"%s"
		"  metadata          %s\n",
		budget, st->regions, st->regions == 1 ? "" : "s", res, peak,
		(unsigned long long)st->zero_fills, (unsigned long long)st->store_reads,
		(unsigned long long)st->refaults, (unsigned long long)st->readahead_pages,
		(unsigned long long)st->wp_faults,
		st->fault_p50_ns / 1e3, st->fault_p99_ns / 1e3, st->fault_max_ns / 1e3,
		st->fault_ns_total / 1e9, (unsigned long long)st->fault_count,
		(unsigned long long)st->evictions, (unsigned long long)st->writebacks,
		(unsigned long long)st->clean_drops, (unsigned long long)st->zero_skips, takeout,
		(unsigned long long)st->discards, rd, wr, used, store,
		(unsigned long long)st->write_errors, (unsigned long long)st->store_full, over, rerr, ierr, pois,
		polls, hits, poll_s, pool, stall, meta);
}
