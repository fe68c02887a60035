/* SPDX-License-Identifier: MIT */
/* Compare mode's report: the paired table, the device ceiling, the targets, JSON and charts. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* --- the runs, the table and the targets --- */

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

void print_pair_header(FILE *out)
{
	fprintf(out, "%-11s %3s %10s %10s %6s %8s %8s %8s %8s %8s %8s %8s %8s %9s %8s %8s\n",
		"workload", "thr", "kernel/s", "upager/s", "ratio", "upg-p50", "upg-p99", "krn-p50", "krn-p99",
		"krn-cpu", "upg-cpu", "upg-thr", "upg-poll", "upg-evict", "krn-maj", "upg-maj");
	fflush(out);
}

void print_pair(FILE *out, const struct pair *p)
{
	char ka[16], ua[16], ra[16], up50[16], up99[16], kp50[16], kp99[16], kc[16], uc[16], ut[16], upl[16], uev[16], km[24],
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
	fmt_num(uev, sizeof uev, p->u_ok && u->evictions, u->cpu_s_per_eviction * 1e6, "%.2f");
	fmt_num(km, sizeof km, p->k_ok, (double)k->store_reads, "%.0f");
	fmt_num(um, sizeof um, p->u_ok, (double)u->store_reads, "%.0f");
	fprintf(out, "%-11s %3u %10s %10s %6s %8s %8s %8s %8s %8s %8s %8s %8s %9s %8s %8s%s%s\n",
		p->wl->name, p->threads, ka, ua, ra, up50, up99, kp50, kp99, kc, uc, ut, upl, uev, km, um,
		(p->k_ok && k->bad_words) ? "  KERNEL DATA ERRORS" : "",
		(p->u_ok && u->bad_words) ? "  UPAGER DATA ERRORS" : "");
	fflush(out);
}

const struct pair *find_pair(const struct pair *ps, size_t n, const char *name, unsigned threads)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ps[i].wl->name, name) && (threads == 0 || ps[i].threads == threads))
			return &ps[i];
	return NULL;
}

/* upager's sequential read rate in MB/s (10^6 bytes). */
double seq_mbs(const struct pair *p, uint64_t page)
{
	return p && p->u_ok ? p->u.accesses_per_s * (double)page / 1e6 : NAN;
}

size_t targets_eval(const struct pair *ps, size_t n, const struct device *dev, const struct kernel_side *ks,
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

void print_targets(FILE *out, const struct target *t, size_t n)
{
	fprintf(out, "\nTargets (issue 4; a missed target is reported, never an error):\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-9s %-46s %-9s %s\n", t[i].met == 1 ? "met" : t[i].met == 0 ? "NOT MET" : "n/a",
			t[i].what, t[i].goal, t[i].value);
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
void print_ceiling(FILE *out, const struct pair *ps, size_t n, const struct device *dev)
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

/* --- machine-readable output --- */

static void json_num(FILE *f, double d)
{
	if (isnan(d))
		fputs("null", f);
	else
		fprintf(f, "%.9g", d);
}

int write_compare_json(FILE *f, const char *path, const struct pair *ps, size_t n, const struct machine *m,
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
		", \"accesses\": %" PRIu64 ", \"seed\": %" PRIu64 ", \"sample_every\": %u, \"quick\": %s",
		cfg->handler_threads, cfg->readahead_max, cfg->fault_around, cfg->io_depth, o->accesses, o->seed,
		SAMPLE_EVERY, o->quick ? "true" : "false");
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
int write_plots(const char *dir, const struct pair *ps, size_t n, const struct opts *o)
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
