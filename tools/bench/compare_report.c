/* SPDX-License-Identifier: MIT */
/* Compare mode's report: the paired table, the device ceiling, the targets, JSON and charts. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* --- the runs, the table and the targets --- */

double side_rate(const struct trial *t, enum side s)
{
	return t->s[s].ok ? t->s[s].r.accesses_per_s : NAN;
}

/* Side a's rate over side b's, or NAN when either did not run. */
double rate_ratio(const struct trial *t, enum side a, enum side b)
{
	double x = side_rate(t, a), y = side_rate(t, b);
	return isnan(x) || isnan(y) || y <= 0 ? NAN : x / y;
}

/* Margin for what the child holds that was charged elsewhere (pages shared
 * with the parent at fork) and for counters read a moment apart. */
#define CHARGE_SLACK (4ULL << 20)

/*
 * Is zswap's pool charged to the memory cgroup?  A charged pool would count
 * in the cgroup's usage next to the child's resident anonymous pages, and
 * the usage never exceeds the limit: so resident + pool above the limit
 * means the pool is not charged, and a usage that covers resident + pool
 * means it is.  A pool under 1 MiB tells nothing.
 */
enum charge zswap_charge(const struct row *r, uint64_t limit)
{
	if (r->pool_bytes < (1u << 20) || !r->resident_bytes)
		return CHARGE_UNKNOWN;
	if (r->resident_bytes + r->pool_bytes > limit + CHARGE_SLACK)
		return CHARGE_NO;
	if (r->cgroup_usage + CHARGE_SLACK >= r->resident_bytes + r->pool_bytes)
		return CHARGE_YES;
	return CHARGE_UNKNOWN;
}

void print_trial_header(FILE *out)
{
	fprintf(out, "%-11s %3s %-17s %10s %6s %8s %8s %8s %8s %8s %8s %6s %8s %8s %6s\n", "workload", "thr", "side",
		"acc/s", "x-krn", "flt-p50", "flt-p99", "cpu/maj", "thr/maj", "poll/maj", "evict/pg", "alone", "majors",
		"pool-hit", "pool-x");
	fflush(out);
}

uint64_t zswap_limit(const struct kernel_side *ks, const struct zswap *zs)
{
	return ks->cg.limit - zs->fit_bytes;
}

void print_trial(FILE *out, const struct trial *t, const struct opts *o, const struct kernel_side *ks,
		 const struct zswap *zs)
{
	for (int sd = 0; sd < NSIDES; sd++) {
		const struct side_run *sr = &t->s[sd];
		const struct row *r = &sr->r;
		if (!o->side[sd])
			continue;
		if (!sr->ok) {
			fprintf(out, "%-11s %3u %-17s NOT RUN: %.90s\n", t->wl->name, t->threads, sides[sd].label, sr->why);
			continue;
		}
		char acc[16], xk[16], p50[16], p99[16], cpu[16], thr[16], poll[16], ev[16], alone[16], maj[24], hit[16],
			px[16];
		bool up = !sides[sd].kernel;
		/* Per major fault means little when nearly every page came in
		 * some other way (zero fill, readahead, the pool): the CSV and
		 * JSON keep it anyway. */
		bool f = r->store_reads * 100 >= r->accesses;
		fmt_figure(acc, sizeof acc, r->accesses_per_s, "%.0f");
		fmt_figure(xk, sizeof xk, rate_ratio(t, (enum side)sd, SIDE_KERNEL), "%.2f");
		fmt_figure(p50, sizeof p50, r->client_fault_samples ? r->client_fault_p50_ns / 1e3 : NAN, "%.1f");
		fmt_figure(p99, sizeof p99, r->client_fault_samples ? r->client_fault_p99_ns / 1e3 : NAN, "%.1f");
		fmt_figure(cpu, sizeof cpu, f ? r->cpu_s_per_major_fault * 1e6 : NAN, "%.1f");
		fmt_figure(thr, sizeof thr, f && up ? r->cpu_s_pager_threads / (double)r->store_reads * 1e6 : NAN, "%.1f");
		fmt_figure(poll, sizeof poll, f && up ? r->cpu_s_polling / (double)r->store_reads * 1e6 : NAN, "%.1f");
		fmt_figure(ev, sizeof ev, up && r->evictions ? r->cpu_s_per_eviction * 1e6 : NAN, "%.2f");
		fmt_figure(alone, sizeof alone, up && r->takeout_pages ? (double)r->takeout_alone / (double)r->takeout_pages : NAN,
			   "%.2f");
		snprintf(maj, sizeof maj, "%" PRIu64, r->store_reads);
		fmt_figure(hit, sizeof hit, r->pool_hit_share, "%.2f");
		fmt_figure(px, sizeof px, r->pool_ratio, "%.2f");
		char note[200] = "";
		if (sd == SIDE_ZSWAP && r->pool_bytes) {
			char pool[32];
			human_size(r->pool_bytes, pool, sizeof pool);
			enum charge c = zswap_charge(r, zswap_limit(ks, zs));
			snprintf(note, sizeof note, "  zswap pool %s%s", pool,
				 c == CHARGE_NO && zs->fit_percent ? " outside the cgroup, inside the budget" :
				 c == CHARGE_NO ? " outside the cgroup: extra RAM" : c == CHARGE_YES ? " charged to the cgroup" : "");
		}
		if (sr->reps > 1)
			snprintf(note + strlen(note), sizeof note - strlen(note), "  median of %u: %.0f to %.0f", sr->reps,
				 sr->rate_lo, sr->rate_hi);
		if (sr->fails)
			snprintf(note + strlen(note), sizeof note - strlen(note), "  (%u run%s failed, see above)",
				 sr->fails, sr->fails == 1 ? "" : "s");
		fprintf(out, "%-11s %3u %-17s %10s %6s %8s %8s %8s %8s %8s %8s %6s %8s %8s %6s%s%s\n", t->wl->name,
			t->threads, sides[sd].label, acc, xk, p50, p99, cpu, thr, poll, ev, alone, maj, hit, px, note,
			r->bad_words ? "  DATA ERRORS" : "");
	}
	fflush(out);
}

const struct trial *find_trial(const struct trial *ts, size_t n, const char *name, unsigned threads)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ts[i].wl->name, name) && (threads == 0 || ts[i].threads == threads))
			return &ts[i];
	return NULL;
}

/* upager's sequential read rate in MB/s (10^6 bytes). */
double seq_mbs(const struct trial *t, uint64_t page)
{
	return t ? side_rate(t, SIDE_UPAGER) * (double)page / 1e6 : NAN;
}

/*
 * Whether zswap's pool is charged to the memory cgroup, from the zswap row
 * with the largest pool, and what that means for the zswap side's rows.
 */
void print_charge(FILE *out, const struct trial *ts, size_t n, const struct kernel_side *ks, const struct zswap *zs)
{
	const struct row *best = NULL;
	const struct trial *bt = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct side_run *sr = &ts[i].s[SIDE_ZSWAP];
		if (sr->ok && (!best || sr->r.pool_bytes > best->pool_bytes)) {
			best = &sr->r;
			bt = &ts[i];
		}
	}
	if (!best)
		return;
	char lim[32], res[32], pool[32], use[32], peak[32], held[32];
	human_size(zswap_limit(ks, zs), lim, sizeof lim);
	human_size(best->resident_bytes, res, sizeof res);
	human_size(best->pool_bytes, pool, sizeof pool);
	human_size(best->cgroup_usage, use, sizeof use);
	human_size(best->cgroup_peak, peak, sizeof peak);
	human_size(best->pool_pages * 4096, held, sizeof held);
	fprintf(out, "\nzswap and the memory cgroup (v%d): ", ks->cg.version);
	if (!zs->debugfs) {
		fprintf(out, "not known: zswap's pool size is in debugfs, which is not mounted\n");
		return;
	}
	enum charge c = zswap_charge(best, zswap_limit(ks, zs));
	fprintf(out, "%s\n", c == CHARGE_NO ? "the pool is NOT charged to the cgroup" :
		c == CHARGE_YES ? "the pool is charged to the cgroup" : "not determined");
	fprintf(out, "  at the end of %s's timed phase (%u thr): the child had %s resident, the cgroup's usage was %s "
		"(peak %s) at a limit of %s,\n  while zswap held %s of pool for %s of pages.", bt->wl->name, bt->threads, res,
		use, best->cgroup_peak ? peak : "not known", lim, pool, held);
	if (c == CHARGE_NO && zs->fit_percent) {
		char fit[32];
		human_size(zs->fit_bytes, fit, sizeof fit);
		fprintf(out, "  So the zswap side's\n  cgroup limit was the budget less %s, and zswap's max_pool_percent "
			"%u (%s): cgroup and pool together\n  kept to the budget, as upager's resident pages and pool do "
			"(--zswap-pool inside).\n", fit, zs->fit_percent, fit);
	} else if (c == CHARGE_NO)
		fprintf(out, "  A charged pool would have had to fit in the\n  limit beside the resident pages: so the "
			"kernel swap+zswap side ran with its pool as extra RAM beyond the budget\n  (upager's pool is "
			"inside its budget).\n");
	else if (c == CHARGE_YES)
		fprintf(out, "  The usage covers both: the side kept to the budget.\n");
	else
		fprintf(out, "  (A pool under 1 MiB, or figures that neither exclude nor include it.)\n");
	fflush(out);
}

/* Append "x.xx (w, N thr)" to a target's value. */
static void add_value(struct target *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_value(struct target *x, const char *fmt, ...)
{
	size_t l = strlen(x->value);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->value + l, sizeof x->value - l, fmt, ap);
	va_end(ap);
}

/*
 * A ratio target over the trials of workload wl (every thread count):
 * side a's rate over side b's must reach goal in every one.  Met when every
 * trial was measured and reached it, not met when one did not, else not
 * measured.
 */
static void ratio_target(struct target *x, const struct trial *ts, size_t n, const char *wl, enum side a,
			 enum side b, double goal, const char *what, const char *unmeasured)
{
	snprintf(x->what, sizeof x->what, "%s", what);
	snprintf(x->goal, sizeof x->goal, ">= %gx", goal);
	x->met = -1;
	x->value[0] = 0;
	bool all = true, any = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ts[i].wl->name, wl))
			continue;
		double r = rate_ratio(&ts[i], a, b);
		if (isnan(r)) {
			all = false;
			continue;
		}
		add_value(x, "%s%.2fx (%u thr)", any ? ", " : "", r, ts[i].threads);
		any = true;
		if (r < goal)
			x->met = 0;
		else if (x->met == -1)
			x->met = 1;
	}
	if (!any) {
		/* Say why: the first trial's missing side, else the caller's reason. */
		const char *why = unmeasured;
		for (size_t i = 0; i < n && why == unmeasured; i++)
			if (!strcmp(ts[i].wl->name, wl))
				why = !ts[i].s[b].ok ? ts[i].s[b].why : ts[i].s[a].why;
		snprintf(x->value, sizeof x->value, "not measured (%s)", why);
	}
	if (any && !all)
		x->met = x->met == 0 ? 0 : -1;
}

/*
 * Upager with its pool against upager without it over the rows whose
 * workload is in wls (NULL: every row): none may fall below goal.  The
 * value lists every row (sequential) or the worst of them (every).
 */
static void nopool_target(struct target *x, const struct trial *ts, size_t n, const char *const *wls, double goal,
			  const char *what)
{
	snprintf(x->what, sizeof x->what, "%s", what);
	snprintf(x->goal, sizeof x->goal, ">= %.2fx", goal);
	x->met = -1;
	x->value[0] = 0;
	double worst = INFINITY;
	const struct trial *wt = NULL;
	unsigned rows = 0, below = 0;
	for (size_t i = 0; i < n; i++) {
		bool in = !wls;
		for (size_t k = 0; wls && wls[k]; k++)
			in |= !strcmp(ts[i].wl->name, wls[k]);
		double r = rate_ratio(&ts[i], SIDE_UPAGER, SIDE_NOPOOL);
		if (!in || isnan(r))
			continue;
		rows++;
		below += r < goal;
		if (wls)
			add_value(x, "%s%s %.2fx", rows > 1 ? ", " : "", ts[i].wl->name, r);
		if (r < worst) {
			worst = r;
			wt = &ts[i];
		}
	}
	if (!rows) {
		snprintf(x->value, sizeof x->value, "not measured (no row with both upager sides)");
		return;
	}
	if (!wls)
		add_value(x, "worst %.2fx (%s, %u thr) of %u rows; %u below", worst, wt->wl->name, wt->threads, rows, below);
	x->met = below == 0;
}

size_t targets_eval(const struct trial *ts, size_t n, const struct device *dev, const struct kernel_side *ks,
		    const struct opts *o, struct target *t)
{
	size_t nt = 0;
	const char *nokernel = ks->ready ? "workload not run" : "no kernel side";

	/* Issue 4: upager against the kernel's swap; every listed thread
	 * count must reach the goal. */
	static const struct { const char *wl; double goal; } ratio_goals[] = {
		{ "seq-read", 2.0 }, { "first-touch", 1.0 }, { "rand-read", 1.0 }, { "rand-rmw", 1.0 }, { "zipf", 1.0 },
	};
	for (size_t g = 0; g < sizeof ratio_goals / sizeof ratio_goals[0]; g++) {
		char what[72];
		snprintf(what, sizeof what, "%s upager/kernel%s", ratio_goals[g].wl, g >= 2 ? ", every thread count" : "");
		ratio_target(&t[nt++], ts, n, ratio_goals[g].wl, SIDE_UPAGER, SIDE_KERNEL, ratio_goals[g].goal, what,
			     nokernel);
	}

	/* Sequential read against the device's bandwidth. */
	struct target *x = &t[nt++];
	snprintf(x->what, sizeof x->what, "seq-read share of device bandwidth");
	snprintf(x->goal, sizeof x->goal, ">= 50%%");
	const struct trial *sp = find_trial(ts, n, "seq-read", 0);
	double mbs = seq_mbs(sp, o->page);
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
	const struct trial *wp = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *w = ts[i].wl->name;
		const struct side_run *u = &ts[i].s[SIDE_UPAGER];
		if (!u->ok || isnan(u->r.cpu_s_per_major_fault) ||
		    (strcmp(w, "rand-read") && strcmp(w, "rand-rmw") && strcmp(w, "zipf")))
			continue;
		double c = (u->r.cpu_s - u->r.cpu_s_polling) / (double)u->r.store_reads;
		if (c > worst) {
			worst = c;
			wp = &ts[i];
		}
	}
	if (!wp) {
		x->met = -1;
		snprintf(x->value, sizeof x->value, "not measured (no random workload with major faults)");
	} else {
		const struct row *u = &wp->s[SIDE_UPAGER].r;
		double nf = (double)u->store_reads;
		snprintf(x->value, sizeof x->value, "worst %.1f us (%s, %u thr; process CPU incl. the workload, "
			 "less %.1f us polling for the device; upager threads alone %.1f us)", worst * 1e6,
			 wp->wl->name, wp->threads, u->cpu_s_polling / nf * 1e6,
			 (u->cpu_s_pager_threads - u->cpu_s_polling) / nf * 1e6);
		x->met = worst * 1e6 <= 30;
	}

	/*
	 * Storage tiers, point 4.  With heap data (about 3x with LZ4) the
	 * pool should double the random workloads' rate over the kernel's
	 * swap and match zswap's (which keeps its pool outside the cgroup on
	 * v1; see print_charge); with random data it must cost no row more
	 * than 5%; and sequential rows must not lose by it (5% for noise).
	 */
	static const char *const tier_wls[] = { "rand-read", "rand-rmw", "zipf" };
	char what[72], wrong[96];
	snprintf(wrong, sizeof wrong, "needs --content heap (this run: %s)", content_name(o->content));
	for (size_t w = 0; w < 3; w++) {
		static const struct { enum side b; double goal; const char *name; } vs[] = {
			{ SIDE_KERNEL, 2.0, "kernel swap" }, { SIDE_ZSWAP, 1.0, "zswap" },
		};
		for (size_t k = 0; k < 2; k++) {
			x = &t[nt++];
			snprintf(what, sizeof what, "tiers: %s upager/%s, heap data", tier_wls[w], vs[k].name);
			ratio_target(x, ts, n, tier_wls[w], SIDE_UPAGER, vs[k].b, vs[k].goal, what, "workload not run");
			if (o->content != CONTENT_HEAP) {
				x->met = -1;
				snprintf(x->value, sizeof x->value, "%s", wrong);
			}
		}
	}
	x = &t[nt++];
	nopool_target(x, ts, n, NULL, 0.95, "tiers: random data, upager/upager pool off, every row");
	if (o->content != CONTENT_RANDOM) {
		x->met = -1;
		snprintf(x->value, sizeof x->value, "needs --content random (this run: %s)", content_name(o->content));
	}
	static const char *const seq_wls[] = { "first-touch", "seq-read", "seq-write", NULL };
	x = &t[nt++];
	nopool_target(x, ts, n, seq_wls, 0.95, "tiers: sequential rows, upager/upager pool off");
	if (x->met != -1) {
		/* The rows fit: three of them, each under 24 characters. */
		char v[sizeof x->value];
		memcpy(v, x->value, sizeof v);
		snprintf(x->value, sizeof x->value, "%s data: %.200s", content_name(o->content), v);
	}

	/* Far memory: a fault served from Redis against one from the file
	 * store (both pool off), and sequential read over Redis. */
	const char *noredis = o->side[SIDE_REDIS] ? "workload not run" : "no --redis";
	x = &t[nt++];
	snprintf(x->what, sizeof x->what, "redis: rand-read fault p50, redis/file store");
	snprintf(x->goal, sizeof x->goal, "<= 1.5x");
	const struct trial *rr = find_trial(ts, n, "rand-read", 1);
	const struct row *rf = rr && rr->s[SIDE_REDIS].ok ? &rr->s[SIDE_REDIS].r : NULL;
	const struct row *nf = rr && rr->s[SIDE_NOPOOL].ok ? &rr->s[SIDE_NOPOOL].r : NULL;
	if (!rf || !nf || !rf->client_fault_samples || !nf->client_fault_samples) {
		x->met = -1;
		snprintf(x->value, sizeof x->value, "not measured (%s)", !o->side[SIDE_NOPOOL] ? "no upager-nopool side" : noredis);
	} else {
		double q = (double)rf->client_fault_p50_ns / (double)nf->client_fault_p50_ns;
		snprintf(x->value, sizeof x->value, "%.2fx (%.1f us against %.1f us, rand-read, 1 thread)", q,
			 rf->client_fault_p50_ns / 1e3, nf->client_fault_p50_ns / 1e3);
		x->met = q <= 1.5;
	}
	x = &t[nt++];
	snprintf(x->what, sizeof x->what, "redis: seq-read pages/s over one node");
	snprintf(x->goal, sizeof x->goal, ">= 100K");
	const struct trial *sr = find_trial(ts, n, "seq-read", 1);
	if (!sr || !sr->s[SIDE_REDIS].ok) {
		x->met = -1;
		snprintf(x->value, sizeof x->value, "not measured (%s)", noredis);
	} else {
		double pps = side_rate(sr, SIDE_REDIS);
		snprintf(x->value, sizeof x->value, "%.0f pages/s (%s; file store pool off: %.0f)", pps, o->redis,
			 sr->s[SIDE_NOPOOL].ok ? side_rate(sr, SIDE_NOPOOL) : NAN);
		x->met = pps >= 100000;
	}
	return nt;
}

void print_targets(FILE *out, const struct target *t, size_t n)
{
	fprintf(out, "\nTargets (measured figures; a MISS is reported, never an error):\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-4s %-54s %-9s %s\n", t[i].met == 1 ? "PASS" : t[i].met == 0 ? "MISS" : "n/a",
			t[i].what, t[i].goal, t[i].value);
}

/* Pages per second a side read from the disk or store: upager's and the
 * kernel's major faults, and for zswap the pages read from the swap file
 * (its major faults include loads from its pool). */
static double disk_rate(const struct trial *t, enum side sd)
{
	const struct side_run *sr = &t->s[sd];
	if (!sr->ok || sr->r.seconds <= 0)
		return NAN;
	double pages = sd == SIDE_ZSWAP ? (double)sr->r.bytes_read / 4096 : (double)sr->r.store_reads;
	return pages / sr->r.seconds;
}

/*
 * Each side's rate of reads from the disk on the random workloads as a
 * share of what the device gives 4 KiB random reads at a queue depth equal
 * to the thread count: a thread that waits for its fault has one read in
 * flight, so that is the most any side can get, write-back and hits aside.
 */
void print_ceiling(FILE *out, const struct trial *ts, size_t n, const struct device *dev)
{
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		const struct trial *t = &ts[i];
		double dv = device_iops_at(dev, t->threads);
		if (!t->wl->scales || isnan(dv) || dv <= 0)
			continue;
		if (!any)
			fprintf(out, "\nmajor faults/s (zswap: pages read from the swap file/s) against the device's 4 KiB "
				"random reads/s at queue depth = threads:\n");
		any = true;
		fprintf(out, "  %-10s %3u thr  device %6.0f/s", t->wl->name, t->threads, dv);
		for (int sd = 0; sd < NSIDES; sd++) {
			double r = disk_rate(t, (enum side)sd);
			if (!isnan(r))
				fprintf(out, "  %s %.0f/s = %.0f%%", sides[sd].name, r, 100 * r / dv);
		}
		fputc('\n', out);
	}
	fflush(out);
}

/* --- machine-readable output --- */

static void json_num(FILE *f, double d)
{
	if (isnan(d))
		fputs("null", f);
	else
		fprintf(f, "%.9g", d);
}

/* The zswap side's settings and whether its pool is charged to the cgroup. */
static void json_zswap(FILE *f, const struct trial *ts, size_t n, const struct kernel_side *ks, const struct zswap *zs,
		       const struct opts *o)
{
	fprintf(f, "  \"zswap_side\": {\"asked\": %s, \"ran\": %s", o->side[SIDE_ZSWAP] ? "true" : "false",
		zs->ready ? "true" : "false");
	if (!zs->ready) {
		fprintf(f, ", \"why\": ");
		json_string(f, zs->why);
	}
	if (zs->was_enabled[0]) {
		fprintf(f, ", \"compressor\": \"" ZSWAP_COMPRESSOR "\", \"enabled_before\": ");
		json_string(f, zs->was_enabled);
		fprintf(f, ", \"compressor_before\": ");
		json_string(f, zs->was_compressor);
		fprintf(f, ", \"max_pool_percent\": ");
		json_string(f, zs->max_pool_percent);
		fprintf(f, ", \"max_pool_percent_changed\": false, \"accept_threshold_percent\": ");
		json_string(f, zs->accept_threshold);
		fprintf(f, ", \"shrinker_enabled\": ");
		json_string(f, zs->shrinker);
		fprintf(f, ", \"page_cluster\": %u, \"page_cluster_before\": ", o->zswap_page_cluster);
		json_string(f, zs->was_page_cluster);
		fprintf(f, ", \"debugfs\": %s, \"debugfs_mounted_by_us\": %s", zs->debugfs ? "true" : "false",
			zs->mounted ? "true" : "false");
	}
	if (zs->note[0]) {
		fprintf(f, ", \"note\": ");
		json_string(f, zs->note);
	}
	fprintf(f, ", \"pool_inside_budget\": %s, \"fit_max_pool_percent\": %u, \"fit_bytes\": %" PRIu64,
		zs->fit_percent || ks->cg.version == 2 ? "true" : "false", zs->fit_percent, zs->fit_bytes);
	if (zs->fit_why[0]) {
		fprintf(f, ", \"pool_outside_why\": ");
		json_string(f, zs->fit_why);
	}
	/* The verdict from the row with the largest pool (see print_charge). */
	const struct row *best = NULL;
	for (size_t i = 0; i < n; i++)
		if (ts[i].s[SIDE_ZSWAP].ok && (!best || ts[i].s[SIDE_ZSWAP].r.pool_bytes > best->pool_bytes))
			best = &ts[i].s[SIDE_ZSWAP].r;
	enum charge c = best && zs->debugfs ? zswap_charge(best, zswap_limit(ks, zs)) : CHARGE_UNKNOWN;
	fprintf(f, ", \"pool_charged_to_cgroup\": %s", c == CHARGE_NO ? "false" : c == CHARGE_YES ? "true" : "null");
	if (best)
		fprintf(f, ", \"charge_evidence\": {\"workload\": \"%s\", \"threads\": %" PRIu64 ", \"cgroup_limit\": %"
			PRIu64 ", \"cgroup_usage\": %" PRIu64 ", \"cgroup_peak\": %" PRIu64 ", \"resident_bytes\": %" PRIu64
			", \"pool_bytes\": %" PRIu64 ", \"pool_pages\": %" PRIu64 "}", best->workload, best->threads,
			zswap_limit(ks, zs), best->cgroup_usage, best->cgroup_peak, best->resident_bytes, best->pool_bytes,
			best->pool_pages);
	fprintf(f, "},\n");
}

int write_compare_json(FILE *f, const char *path, const struct trial *ts, size_t n, const struct machine *m,
		       const struct upager_config *cfg, const struct opts *o, const struct kernel_side *ks,
		       const struct zswap *zs, const struct device *dev, const char *sdir, const struct target *t,
		       size_t nt, bool verified, double wall_s)
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
		", \"accesses\": %" PRIu64 ", \"warmup\": %" PRIu64 ", \"seed\": %" PRIu64
		", \"sample_every\": %u, \"quick\": %s, \"repeat\": %u",
		cfg->handler_threads, cfg->readahead_max, cfg->fault_around, cfg->io_depth, o->accesses, o->warmup,
		o->seed, SAMPLE_EVERY, o->quick ? "true" : "false", o->repeat);
	fprintf(f, ", \"compress\": ");
	json_string(f, cfg->compress ? cfg->compress : "lz4");
	fprintf(f, ", \"compress_pool\": %u, \"sides\": [", cfg->compress_pool ? cfg->compress_pool : 50);
	for (int sd = 0, k = 0; sd < NSIDES; sd++)
		if (o->side[sd])
			fprintf(f, "%s\"%s\"", k++ ? ", " : "", sides[sd].name);
	fprintf(f, "]");
	json_content(f, o);
	fprintf(f, "},\n");
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
	fprintf(f, "},\n");
	json_zswap(f, ts, n, ks, zs, o);
	fprintf(f, "  \"device\": {\"ran\": %s", dev->ran ? "true" : "false");
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
		const struct trial *tr = &ts[i];
		fprintf(f, "%s\n    {\"workload\": ", i ? "," : "");
		json_string(f, tr->wl->name);
		/* ratio: upager over kernel swap, as before the other sides. */
		fprintf(f, ", \"threads\": %u, \"ratio\": ", tr->threads);
		json_num(f, rate_ratio(tr, SIDE_UPAGER, SIDE_KERNEL));
		fprintf(f, ", \"ratio_zswap\": ");
		json_num(f, rate_ratio(tr, SIDE_UPAGER, SIDE_ZSWAP));
		fprintf(f, ", \"ratio_nopool\": ");
		json_num(f, rate_ratio(tr, SIDE_UPAGER, SIDE_NOPOOL));
		for (int sd = 0; sd < NSIDES; sd++) {
			const struct side_run *sr = &tr->s[sd];
			fprintf(f, ",\n     \"%s\": ", sides[sd].key);
			if (sr->ok) {
				json_row(f, &sr->r);
			} else {
				fprintf(f, "{\"why\": ");
				json_string(f, sr->why);
				fputc('}', f);
			}
			if (sr->ok && o->repeat > 1) {
				/* The row above is the run of median rate. */
				fprintf(f, ",\n     \"%s_runs\": %u, \"%s_failed\": %u, \"%s_rate_min\": %.1f, "
					"\"%s_rate_max\": %.1f", sides[sd].key, sr->reps, sides[sd].key, sr->fails,
					sides[sd].key, sr->rate_lo, sides[sd].key, sr->rate_hi);
			}
			if (sides[sd].kernel) {
				fprintf(f, ",\n     \"%s_child_cpu_s\": ", sides[sd].key);
				json_num(f, sr->ok ? sr->life_cpu_s : NAN);
			}
		}
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

bool have_gnuplot(void)
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

/* Every run's sorted faulting-access latencies of side sd, merged. */
static int merge_sorted(const struct trial *ts, size_t n, enum side sd, uint64_t **out, size_t *nout)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += ts[i].s[sd].nlat;
	uint64_t *v = malloc((total ? total : 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct side_run *sr = &ts[i].s[sd];
		if (sr->lat && sr->nlat)
			memcpy(v + k, sr->lat, sr->nlat * sizeof *v);
		k += sr->lat ? sr->nlat : 0;
	}
	qsort(v, k, sizeof *v, cmp_u64);
	*out = v;
	*nout = k;
	return 0;
}

/* Write the data, a gnuplot script and the PNGs into dir; 0 or -errno. */
int write_plots(const char *dir, const struct trial *ts, size_t n, const struct opts *o)
{
	static const char *const colour[NSIDES] = { "#888888", "#bbbb55", "#1f77b4", "#9ec7e8", "#d62728" };
	char path[700];
	snprintf(path, sizeof path, "%s/throughput.dat", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		goto fail;
	fprintf(f, "# workload/threads, then accesses per second of each side:");
	for (int sd = 0; sd < NSIDES; sd++)
		fprintf(f, " %s", sides[sd].name);
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "\"%s/%u\"", ts[i].wl->name, ts[i].threads);
		for (int sd = 0; sd < NSIDES; sd++) {
			fputc(' ', f);
			json_num(f, side_rate(&ts[i], (enum side)sd));
		}
		fputc('\n', f);
	}
	if (fclose(f))
		goto fail;

	snprintf(path, sizeof path, "%s/fault-latency.dat", dir);
	f = fopen(path, "w");
	if (!f)
		goto fail;
	fprintf(f, "# CDF of the client-side latency of sampled faulting accesses: latency_us fraction;\n"
		"# one block per upager run in table order, then every side's runs pooled, in the order");
	for (int sd = 0; sd < NSIDES; sd++)
		fprintf(f, " %s", sides[sd].name);
	fputc('\n', f);
	for (size_t i = 0; i < n; i++)
		cdf_block(f, ts[i].s[SIDE_UPAGER].lat, ts[i].s[SIDE_UPAGER].ok ? ts[i].s[SIDE_UPAGER].nlat : 0, 400);
	bool have[NSIDES];
	for (int sd = 0; sd < NSIDES; sd++) {
		uint64_t *v;
		size_t nv;
		if (merge_sorted(ts, n, (enum side)sd, &v, &nv)) {
			fclose(f);
			return -ENOMEM;
		}
		have[sd] = nv > 0;
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
		"set title 'Accesses per second, %s of data, %s budget, %s content (log scale)'\n"
		"set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.85 border -1\n"
		"set logscale y\nset yrange [10:*]\nset grid ytics\nset ylabel 'accesses per second'\n"
		"set xtics rotate by -35 scale 0\nset key top right\nplot ", dir, data, ram, content_name(o->content));
	for (int sd = 0, k = 0; sd < NSIDES; sd++) {
		if (!o->side[sd])
			continue;
		fprintf(f, "%s'throughput.dat' using %d%s title '%s' lc rgb '%s'", k ? ", \\\n     " : "", sd + 2,
			k ? "" : ":xtic(1)", sides[sd].label, colour[sd]);
		k++;
	}
	fprintf(f, "\n\n"
		"reset\nset terminal pngcairo size 1200,700 noenhanced font ',10'\n"
		"set output 'fault-latency-cdf.png'\n"
		"set title 'upager: client-side latency of faulting accesses (1 in %u accesses sampled)'\n"
		"set logscale x\nset xlabel 'latency (us)'\nset ylabel 'fraction of faulting accesses'\n"
		"set yrange [0:1]\nset grid\nset key bottom right\nplot ", SAMPLE_EVERY);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s'fault-latency.dat' index %zu using 1:2 with lines lw 2 title '%s, %u thr'",
			i ? ", \\\n     " : "", i, ts[i].wl->name, ts[i].threads);
	fprintf(f, "\n\nset output 'fault-latency-cdf-vs-kernel.png'\n"
		"set title 'Faulting accesses of all workloads pooled, each side'\nplot ");
	bool first = true;
	for (int sd = 0; sd < NSIDES; sd++)
		if (have[sd]) {
			fprintf(f, "%s'fault-latency.dat' index %zu using 1:2 with lines lw 2%s lc rgb '%s' title '%s'",
				first ? "" : ", \\\n     ", n + (size_t)sd, sides[sd].kernel ? " dt 2" : "", colour[sd],
				sides[sd].label);
			first = false;
		}
	if (first)
		fprintf(f, "NaN notitle");
	fputc('\n', f);
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
