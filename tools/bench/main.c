/* SPDX-License-Identifier: MIT */
/* upager-bench's options and main; the program is described in bench.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [--ram SIZE] [--data SIZE] [--threads N[,N...]] [--page SIZE]\n"
"                    [--policy NAME] [--workload NAME[,NAME...]] [--accesses N]\n"
"                    [--warmup N] [--content MODE] [--seed N] [--csv FILE] [--json FILE] [--quiet]\n"
"                    [--forecast]\n"
"       " PROG " compare [--quick] [--ram SIZE] [--data SIZE] [--threads N[,N...]]\n"
"                    [--workload NAME[,NAME...]] [--accesses N] [--warmup N]\n"
"                    [--content MODE] [--repeat N]\n"
"                    [--sides SIDE[,SIDE...]] [--zswap-page-cluster N]\n"
"                    [--zswap-pool inside|outside] [--plot DIR]\n"
"                    [--csv FILE] [--json FILE] [--no-kernel] [--no-device]\n"
"                    [--device-size SIZE] [--swap-size SIZE] [--page SIZE]\n"
"                    [--policy NAME] [--seed N] [--quiet]\n"
"       " PROG " file [--ram SIZE] [--data SIZE] [--accesses N] [--file PATH]\n"
"                    [--workload scan,rand-read,rand-update] [--sides upager,mmap,mmap-random]\n"
"       " PROG " floor [--faults N] [--reads N] [--file-size SIZE]\n"
"\n"
"Run access patterns over a paged region larger than the RAM budget and print\n"
"one line of figures per workload and thread count.  Each run gets a fresh\n"
"runtime and region; data is filled (untimed), the access pattern is timed,\n"
"then every page is verified (untimed).  An access is one page: a read checks\n"
"the first word of each 64-byte line, a read-modify-write checks one word and\n"
"increments another.  The threads split the pages (sequential workloads) or\n"
"the accesses (random workloads) between them.  Only the first word of each\n"
"line is checked; --content sets what the other 56 bytes hold.\n"
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
"  --warmup N         accesses of the same kind that rand-read, rand-rmw and zipf\n"
"                     make after the fill and before the timed phase, untimed\n"
"                     and left out of the timed phase's figures, so that it\n"
"                     finds RAM in its steady state rather than holding the\n"
"                     fill's last pages (default: 0; refused when no chosen\n"
"                     workload is one of the three)\n"
"  --content MODE     what the pages hold besides the checked words (it decides\n"
"                     how well they compress):\n"
"                       heap    pointers, small integers and short words,\n"
"                               about 3x with LZ4 (default)\n"
"                       random  incompressible\n"
"                       sparse  zeros (the only content before this option)\n"
"                     the header gives the LZ4 ratio measured on a sample\n"
"  --seed N           seed of the random choices and data pattern (default 1)\n"
"  --csv FILE         also write the table as CSV (\"-\" for standard output)\n"
"  --json FILE        also write the table and settings as JSON (\"-\": stdout)\n"
"  --quiet            no progress lines on standard error\n"
"  --forecast         check upager's forecast (upager_forecast()): after each\n"
"                     run, run the same accesses again at 1.5 and 2 times the\n"
"                     budget and print, for each, the refills (faults that read\n"
"                     a page back from the store or the pool, over the whole\n"
"                     run: fill, timed phase and verification) that the first\n"
"                     run forecast and those the run made, and the knee\n"
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
"file: the same file through upager_map_file() and through the kernel's mmap\n"
"(default readahead, and MADV_RANDOM), each run in a fresh memory cgroup of\n"
"the budget + 16M + 16 bytes a page of the file (upager's own RAM), the page\n"
"cache dropped first, each ending with a sync:\n"
"scan, rand-read and rand-update, every page read checked and the updates\n"
"counted on the file afterwards.  Needs root.  Defaults: --ram 128M, data 4\n"
"times the budget, 100K random accesses, a new file in $TMPDIR or /var/tmp.\n"
"\n"
"floor: what a fault answered from user space through userfaultfd costs here\n"
"with no I/O (the answering thread asleep, spinning, or on the faulting\n"
"thread's CPU), beside a 4 KiB O_DIRECT read and the kernel's fault on a\n"
"MADV_RANDOM file mapping, and the bounds that follow for any such pager.\n"
"\n"
"compare: run every workload on four sides, back to back on fresh memory: the\n"
"kernel's own swap, the kernel's swap with zswap, upager (with its compressed\n"
"pool, the default) and upager with the pool off; print each side's rate, its\n"
"ratio to the kernel's, fault latency, CPU per major fault, the pool's hit\n"
"share and ratio, the store filesystem's O_DIRECT limits and the targets of\n"
"issue 4 and of the storage tiers (PASS or MISS; a miss is not an error).  The\n"
"kernel sides run each workload in a child process over plain anonymous memory,\n"
"in a memory cgroup (v2 or v1) capped at the budget, with a swap file of\n"
"data+budget made and enabled in the store's directory; zswap (compressor\n"
ZSWAP_COMPRESSOR ", its other parameters as found) is on for the zswap side's runs\n"
"only.  The cgroup and swap file are removed and zswap's parameters and\n"
"vm.page-cluster put back at the end, on an error and on SIGINT/SIGTERM.  The\n"
"kernel sides need root; without it, upager runs alone.\n"
"The page cache is dropped before every run.  Thread counts: 1, 2 and 8 for\n"
"rand-read, rand-rmw and zipf (or --threads), 1 for the others.  Defaults: the\n"
"budget 256M, data 4 times the budget, one random access per page.\n"
"  --quick            smoke test: --ram 64M --data 256M, a quarter of the\n"
"                     random accesses, 1-second device tests on 256M\n"
"  --plot DIR         write throughput.png, fault-latency-cdf.png and\n"
"                     fault-latency-cdf-vs-kernel.png (and their data and\n"
"                     gnuplot script) into DIR; needs gnuplot\n"
"                     (apt-get install -y gnuplot-nox)\n"
"  --sides LIST       the sides to run, separated by commas, or \"all\" (the\n"
"                     default): kernel, zswap, upager, upager-nopool,\n"
"                     upager-redis (with --redis)\n"
"  --redis URL        also run upager with its store on Redis (pool off, to\n"
"                     compare with upager-nopool's file store; values still\n"
"                     go compressed unless the URL says compress=off): URL\n"
"                     as in UPAGER_STORE, such as redis://127.0.0.1:6379\n"
"  --no-kernel        run upager alone (--sides upager,upager-nopool)\n"
"  --repeat N         run every side N times a row (1 to " STR_OF(MAX_REPEAT) ", default 1), the\n"
"                     sides in a turned order each round, and show the run of\n"
"                     median acc/s (of the runs that succeeded) with the\n"
"                     lowest and highest beside it; the ratios, targets, CSV\n"
"                     and JSON rows are the median runs', wrong words summed\n"
"                     over all runs (a noisy machine moves one run's rate by\n"
"                     10%% or more)\n"
"  --zswap-page-cluster N  vm.page-cluster for the zswap side's runs (default\n"
"                     0: no swap readahead, as for zram; with the kernel's 3,\n"
"                     readahead from zswap got random runs OOM-killed in a v1\n"
"                     cgroup on Linux 6.18); the kernel swap side keeps the\n"
"                     machine's setting\n"
"  --zswap-pool inside|outside  where zswap's pool is, for the zswap side\n"
"                     (default inside): a v1 memory cgroup does not charge\n"
"                     zswap's pool, so inside sets max_pool_percent to P for\n"
"                     its runs and lowers its cgroup's limit by P%% of the\n"
"                     machine's RAM, P the most that leaves half the budget\n"
"                     to the cgroup (P >= 1: needs a budget of at least 2%%\n"
"                     of RAM, or the pool stays outside, and the report\n"
"                     says so); outside leaves the pool beyond the budget,\n"
"                     as the kernel does; cgroup v2 charges the pool anyway\n"
"  --no-device        skip the device measurement\n"
"  --device-size SIZE size of the device test file (default 1G; --quick 256M)\n"
"  --swap-size SIZE   size of the kernel side's swap file (default data plus\n"
"                     budget; while more than half of the swap is in use the\n"
"                     kernel frees a page's swap copy when it reads it back,\n"
"                     so it rewrites clean pages on eviction)\n");
}

/* --forecast: the forecast the run just made (in ub) against real runs of
 * the same accesses at 1.5 and 2 times the budget.  0; 1 when one of those
 * runs read a wrong word; -1 when one failed (both told on stderr). */
static int forecast_check(struct backend *be, struct upager_backend *ub, const struct opts *o,
			  const struct workload *wl, unsigned threads)
{
	uint64_t budget = ub->cfg.ram_budget, refills = ub->refills;
	struct upager_forecast fc[2] = { ub->fc[0], ub->fc[1] };
	printf("forecast  %s, %u thread%s: %" PRIu64 " refills at %.0f MiB", wl->name, threads, threads == 1 ? "" : "s",
	       refills, (double)budget / (1 << 20));
	int rc = 0;
	for (int k = 0; k < 2 && !rc; k++) {
		struct row r;
		uint64_t at = budget * (uint64_t)(k + 3) / 2;  /* as upb_teardown() asked */
		ub->cfg.ram_budget = at;
		if (run_one(be, o, wl, threads, &r, NULL, NULL)) {
			rc = -1;
			break;
		}
		if (r.bad_words) {
			fprintf(stderr, PROG ": VERIFICATION FAILED: %s at %.0f MiB: %" PRIu64 " wrong words\n", wl->name,
				(double)at / (1 << 20), r.bad_words);
			rc = 1;
		}
		if (rc)
			break;
		if (fc[k].basis == UINT32_MAX) {
			printf("; %gx: no forecast (upager_forecast() failed)", (k + 3) / 2.0);
			continue;
		}
		double err = ub->refills ? ((double)fc[k].refills - (double)ub->refills) / (double)ub->refills : 0;
		printf("; %gx %.0f MiB: forecast %" PRIu64 ", run %" PRIu64 " (%+.1f%%)", (k + 3) / 2.0,
		       (double)at / (1 << 20), fc[k].refills, ub->refills, err * 100);
	}
	ub->cfg.ram_budget = budget;
	if (fc[0].basis == UINT32_MAX)
		;
	else if (fc[0].knee < fc[0].footprint)
		printf("; knee %.0f MiB", (double)fc[0].knee / (1 << 20));
	else
		printf("; no knee up to %.0f MiB", (double)fc[0].footprint / (1 << 20));
	printf("\n");
	return rc;
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
	struct opts o = { .seed = 1, .threads = { 1 }, .nthreads = 1, .content = CONTENT_HEAP, .repeat = 1 };
	int rc0;
	for (size_t i = 0; i < NWORKLOADS; i++)
		o.want[i] = true;
	for (size_t i = 0; i < NSIDES; i++)
		o.side[i] = true;
	bool no_kernel = false;

	if (argc > 1 && !strcmp(argv[1], "file"))
		return filemap_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "floor"))
		return floor_main(argc, argv);
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
		if (!strcmp(arg, "--forecast")) {
			if (o.compare) {
				fprintf(stderr, PROG ": --forecast belongs to the plain mode: " PROG " --forecast ...\n");
				return 2;
			}
			o.forecast = true;
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
			no_kernel |= !strcmp(arg, "--no-kernel");
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
							  "--workload", "--accesses", "--warmup", "--content", "--seed", "--csv", "--json",
							  "--plot", "--device-size", "--swap-size", "--sides",
							  "--zswap-page-cluster", "--zswap-pool", "--redis", "--repeat" };
		bool known = false;
		for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
			known |= !strcmp(name, with_value[k]);
		if (!known) {
			fprintf(stderr, PROG ": unknown option '%s'\nTry '" PROG " --help'.\n", arg);
			return 2;
		}
		if (!o.compare && (!strcmp(name, "--plot") || !strcmp(name, "--device-size") ||
				   !strcmp(name, "--swap-size") || !strcmp(name, "--sides") ||
				   !strcmp(name, "--zswap-page-cluster") || !strcmp(name, "--zswap-pool") ||
				   !strcmp(name, "--redis") || !strcmp(name, "--repeat"))) {
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
		} else if (!strcmp(name, "--warmup")) {
			rc = parse_size_arg(name, val, &o.warmup, "a whole number such as 0, 300000 or 1M");
		} else if (!strcmp(name, "--redis")) {
			if (strncmp(val, "redis://", 8) && strncmp(val, "unix:/", 6))
				rc = bad_arg(name, val, "a Redis store as in UPAGER_STORE: redis://HOST:PORT[,HOST:PORT...] "
					     "or unix:/PATH");
			o.redis = val;
		} else if (!strcmp(name, "--sides")) {
			if (sides_parse(val, o.side))
				rc = bad_arg(name, val, "\"all\" or names separated by commas from: kernel, zswap, upager, "
					     "upager-nopool, upager-redis");
		} else if (!strcmp(name, "--zswap-page-cluster")) {
			char *end;
			unsigned long v = strtoul(val, &end, 10);
			if (!*val || *end || v > 10)
				rc = bad_arg(name, val, "a whole number from 0 to 10 (readahead of 2^N pages)");
			o.zswap_page_cluster = (unsigned)v;
		} else if (!strcmp(name, "--repeat")) {
			char *end;
			unsigned long v = strtoul(val, &end, 10);
			if (!*val || *end || *val == '-' || v < 1 || v > MAX_REPEAT)
				rc = bad_arg(name, val, "a whole number of runs from 1 to " STR_OF(MAX_REPEAT) ", such as 3 (odd, so that one "
					     "run is the median)");
			o.repeat = (unsigned)v;
		} else if (!strcmp(name, "--zswap-pool")) {
			if (strcmp(val, "inside") && strcmp(val, "outside"))
				rc = bad_arg(name, val, "inside (in the budget) or outside (beyond it, as the kernel "
					     "does)");
			o.zswap_outside = !strcmp(val, "outside");
		} else if (!strcmp(name, "--content")) {
			if (content_parse(val, &o.content))
				rc = bad_arg(name, val, "heap, random or sparse");
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

	if (o.warmup) {
		/* A warm-up that no chosen workload makes is a mistake, not a
		 * no-op to pass over in silence. */
		char warmed[128] = "", chosen[256] = "";
		bool any = false;
		for (size_t i = 0; i < NWORKLOADS; i++) {
			if (workloads[i].warms)
				snprintf(warmed + strlen(warmed), sizeof warmed - strlen(warmed), "%s%s",
					 *warmed ? ", " : "", workloads[i].name);
			if (o.want[i]) {
				any |= workloads[i].warms;
				snprintf(chosen + strlen(chosen), sizeof chosen - strlen(chosen), "%s%s",
					 *chosen ? ", " : "", workloads[i].name);
			}
		}
		if (!any) {
			fprintf(stderr, PROG ": --warmup %" PRIu64 ": no workload chosen (%s) is warmed up; it applies to "
				"%s: add one of them to --workload, or leave --warmup out\n", o.warmup, chosen, warmed);
			return 2;
		}
	}
	if (no_kernel)
		o.side[SIDE_KERNEL] = o.side[SIDE_ZSWAP] = false;
	if (!o.redis)
		o.side[SIDE_REDIS] = false;
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

	rc0 = content_measure(o.content, o.seed, o.page, &o.sample);
	if (rc0) {
		fprintf(stderr, PROG ": cannot measure how the %s content compresses: %s\n", content_name(o.content),
			strerror(-rc0));
		return 1;
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

	struct upager_backend ub;
	struct backend be;
	backend_upager(&be, &ub, &cfg);
	ub.want_forecast = o.forecast;

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
			int fc_rc = o.forecast && !r->bad_words ? forecast_check(&be, &ub, &o, &workloads[w], threads) : 0;
			if (fc_rc > 0)
				data_ok = false;
			if (fc_rc < 0)
				failed = true;
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
