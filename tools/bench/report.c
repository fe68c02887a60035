/* SPDX-License-Identifier: MIT */
/* Plain mode's output: the header and table on stdout, CSV and JSON files. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

struct column {
	const char *name;
	char kind; /* 's' string, 'u' uint64_t, 'd' double */
	size_t off;
};

#define COL(f, k) { #f, k, offsetof(struct row, f) }
static const struct column columns[] = {
	COL(backend, 's'), COL(workload, 's'), COL(content, 's'), COL(content_lz4_ratio, 'd'), COL(threads, 'u'), COL(accesses, 'u'), COL(pages_touched, 'u'),
	COL(seconds, 'd'), COL(accesses_per_s, 'd'),
	COL(fault_p50_ns, 'u'), COL(fault_p99_ns, 'u'), COL(fault_mean_ns, 'd'), COL(faults, 'u'),
	COL(client_p50_ns, 'u'), COL(client_p99_ns, 'u'), COL(client_samples, 'u'),
	COL(client_fault_p50_ns, 'u'), COL(client_fault_p99_ns, 'u'), COL(client_fault_samples, 'u'),
	COL(store_reads, 'u'), COL(zero_fills, 'u'), COL(readahead_pages, 'u'), COL(refaults, 'u'),
	COL(wp_faults, 'u'), COL(evictions, 'u'), COL(writebacks, 'u'), COL(clean_drops, 'u'),
	COL(takeout_calls, 'u'), COL(takeout_pages, 'u'), COL(takeout_alone, 'u'),
	COL(bytes_read, 'u'), COL(bytes_written, 'u'),
	COL(cpu_s, 'd'), COL(cpu_s_pager_threads, 'd'), COL(cpu_s_per_major_fault, 'd'), COL(cpu_s_per_page_in, 'd'),
	COL(cpu_s_polling, 'd'), COL(cpu_s_evictor, 'd'), COL(cpu_s_per_eviction, 'd'),
	COL(pool_hits, 'u'), COL(pool_puts, 'u'), COL(pool_rejects, 'u'), COL(pool_writebacks, 'u'), COL(pool_drops, 'u'),
	COL(pool_bytes, 'u'), COL(pool_pages, 'u'), COL(pool_hit_share, 'd'), COL(pool_ratio, 'd'), COL(resident_bytes, 'u'),
	COL(cgroup_usage, 'u'), COL(cgroup_peak, 'u'),
	COL(fill_s, 'd'), COL(verify_s, 'd'), COL(bad_words, 'u'),
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

void machine_probe(struct machine *m, const struct upager_config *cfg)
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

void human_size(uint64_t b, char *buf, size_t len)
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

void print_header(FILE *out, const struct machine *m, const struct upager_config *cfg,
		  const struct opts *o)
{
	char ram[32], data[32], page[32];
	human_size(o->ram, ram, sizeof ram);
	human_size(o->data, data, sizeof data);
	human_size(o->page, page, sizeof page);
	fprintf(out, "%s %s (libupager %s), backend upager\n", PROG, UPAGER_VERSION_STRING, upager_version());
	fprintf(out, "machine  %ld CPUs%s%s, %s\n", m->nproc, m->cpu[0] ? ", " : "", m->cpu, m->kernel);
	fprintf(out, "store    %s\n", m->store);
	fprintf(out, "memory   ram %s, data %s (%.1fx), page %s, policy %s", ram, data,
		(double)o->data / (double)o->ram, page, cfg->policy);
	if (o->warmup)
		fprintf(out, ", random workloads warmed up by %" PRIu64 " untimed accesses", o->warmup);
	fprintf(out, "\n");
	fprintf(out, "runtime  %u handler thread%s, readahead %u pages, fault-around %u pages, io depth %u, seed %" PRIu64 "\n",
		cfg->handler_threads, cfg->handler_threads == 1 ? "" : "s", cfg->readahead_max, cfg->fault_around,
		cfg->io_depth, o->seed);
	print_content(out, o);
	fprintf(out, "\n"
		"acc/s: page accesses per second in the timed phase (fill, warm-up and verification untimed).\n"
		"flt p50/p99: handler fault latency over the runtime's life, fill included; flt avg: timed phase only.\n"
		"cli p50/p99: client latency of 1 access in %u (scan-hot: hot-set accesses only).\n"
		"st-rd: store reads (major faults); evict/wback/cdrop: evictions, write-backs, clean drops;\n"
		"rd/wr: store MiB read/written; cpu/maj: process CPU (user+sys, upager threads included) per major fault;\n"
		"poll/maj: of that, upager's handlers polling for store reads to complete (UPAGER_POLL_US).\n"
		"pool-hit: share of the pages brought back that came from the compressed pool (UPAGER_COMPRESS)\n"
		"rather than the store; pool-x: its compression ratio at the end of the timed phase.\n"
		"All latencies in microseconds.\n\n", SAMPLE_EVERY);
	fprintf(out, "%-11s %3s %9s %7s %9s %7s %8s %7s %7s %8s %8s %8s %8s %8s %7s %7s %7s %8s %8s %6s\n",
		"workload", "thr", "accesses", "secs", "acc/s", "flt-p50", "flt-p99", "flt-avg", "cli-p50", "cli-p99",
		"st-rd", "evict", "wback", "cdrop", "rd-MiB", "wr-MiB", "cpu/maj", "poll/maj", "pool-hit", "pool-x");
	fflush(out);
}

/* v formatted with f, or "-" when it is NAN (not measured). */
void fmt_figure(char *buf, size_t len, double v, const char *f)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, f, v);
}

/* The content line of both headers. */
void print_content(FILE *out, const struct opts *o)
{
	fprintf(out, "content  %s (%s): LZ4 %.2fx on %u sampled pages, %.0f%% of them within the pool's 3/4-page cut\n",
		content_name(o->content), content_what(o->content), o->sample.lz4_ratio, o->sample.pages,
		100 * o->sample.pool_fit);
}

/* The content fields of the JSON config objects. */
void json_content(FILE *f, const struct opts *o)
{
	fprintf(f, ", \"content\": ");
	json_string(f, content_name(o->content));
	fprintf(f, ", \"content_lz4_ratio\": %.4f, \"content_sample_pages\": %u, \"content_pool_fit\": %.4f",
		o->sample.lz4_ratio, o->sample.pages, o->sample.pool_fit);
}

void print_row(FILE *out, const struct row *r)
{
	char cpu[32], poll[32], hit[16], px[16];
	fmt_figure(hit, sizeof hit, r->pool_hit_share, "%.2f");
	fmt_figure(px, sizeof px, r->pool_ratio, "%.2f");
	if (isnan(r->cpu_s_per_major_fault)) {
		snprintf(cpu, sizeof cpu, "-");
		snprintf(poll, sizeof poll, "-");
	} else {
		snprintf(cpu, sizeof cpu, "%.1f", r->cpu_s_per_major_fault * 1e6);
		snprintf(poll, sizeof poll, "%.1f", r->cpu_s_polling / (double)r->store_reads * 1e6);
	}
	fprintf(out, "%-11s %3" PRIu64 " %9" PRIu64 " %7.2f %9.0f %7.1f %8.1f %7.1f %7.1f %8.1f %8" PRIu64
		" %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7.0f %7.0f %7s %8s %8s %6s%s\n",
		r->workload, r->threads, r->accesses, r->seconds, r->accesses_per_s,
		r->fault_p50_ns / 1e3, r->fault_p99_ns / 1e3, r->fault_mean_ns / 1e3,
		r->client_p50_ns / 1e3, r->client_p99_ns / 1e3,
		r->store_reads, r->evictions, r->writebacks, r->clean_drops,
		r->bytes_read / 1048576.0, r->bytes_written / 1048576.0, cpu, poll, hit, px,
		r->bad_words ? "  DATA ERRORS" : "");
	fflush(out);
}

/* Opened before any run, so a typo in a path does not cost a whole run. */
FILE *open_out(const char *opt, const char *path)
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
int close_out(FILE *f, const char *path)
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

int write_csv(FILE *f, const char *path, const struct row *rows, size_t n)
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

void json_string(FILE *f, const char *s)
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

void json_row(FILE *f, const struct row *r)
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

int write_json(FILE *f, const char *path, const struct row *rows, size_t n, const struct machine *m,
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
		", \"accesses\": %" PRIu64 ", \"warmup\": %" PRIu64 ", \"seed\": %" PRIu64 ", \"sample_every\": %u",
		cfg->handler_threads, cfg->readahead_max, cfg->fault_around, cfg->io_depth, o->accesses, o->warmup,
		o->seed, SAMPLE_EVERY);
	json_content(f, o);
	fprintf(f, "},\n");
	fprintf(f, "  \"verified\": %s,\n  \"results\": [", verified ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s\n    ", i ? "," : "");
		json_row(f, &rows[i]);
	}
	fprintf(f, "\n  ]\n}\n");
	return close_out(f, path);
}
