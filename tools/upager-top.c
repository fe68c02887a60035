/* SPDX-License-Identifier: MIT */
/*
 * upager-top: a live view of a process tree that upager-run started.
 *
 * Each process of the tree publishes its figures in the tree's shared
 * budget file (/dev/shm/upager-tree-PID, see src/domain.h) about every
 * 100 ms; this reads them, with no ptrace and no signal into the program:
 * per process and for the tree, resident memory against the budget, faults
 * per second by kind, the stall share, and store and pool use.
 *
 *   upager-top [--once] [--json] [--interval SECONDS] [PID | FILE]
 *
 * PID is upager-run's process id; with neither, the one tree running.
 */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "domain.h"

#define MIB(x) ((double)(x) / (1 << 20))

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: upager-top [--once] [--json] [--interval SECONDS] [PID | FILE]\n"
		   "Show a process tree started by upager-run, live: per process and for the tree,\n"
		   "resident memory against the budget, faults per second by kind, the stall share,\n"
		   "store and pool use.\n\n"
		   "  PID               upager-run's process id (its tree is /dev/shm/upager-tree-PID)\n"
		   "  FILE              the tree's file; with neither, the one tree running\n"
		   "  --once            print one snapshot and exit (rates since each process began)\n"
		   "  --json            print the snapshot as JSON (with --once, or one line per refresh)\n"
		   "  --interval SECS   refresh period, 0.1 to 60 (default 1)\n"
		   "  -h, --help        this text\n");
}

/* Is the upager-run that made the tree at path alive?  A file left by
 * one that was killed is not a running tree. */
static bool alive(const char *path)
{
	const char *p = strrchr(path, '-');
	long pid = p ? strtol(p + 1, NULL, 10) : 0;
	return pid > 0 && !(kill((pid_t)pid, 0) && errno == ESRCH);
}

static int find_tree(char *path, size_t len)
{
	glob_t g;
	int rc = glob("/dev/shm/upager-tree-*", 0, NULL, &g);
	size_t live = 0;
	for (size_t i = 0; !rc && i < g.gl_pathc; i++)
		if (alive(g.gl_pathv[i]))
			g.gl_pathv[live++] = g.gl_pathv[i];
	if (!rc)
		g.gl_pathc = live;
	if (rc || g.gl_pathc == 0) {
		fprintf(stderr, "upager-top: no tree is running (no /dev/shm/upager-tree-*): start the program with "
				"upager-run, or name its tree\n");
		globfree(&g);
		return -1;
	}
	if (g.gl_pathc > 1) {
		fprintf(stderr, "upager-top: %zu trees are running; name one (upager-run's PID, or the file):\n",
			(size_t)g.gl_pathc);
		for (size_t i = 0; i < g.gl_pathc; i++)
			fprintf(stderr, "  %s\n", g.gl_pathv[i]);
		globfree(&g);
		return -1;
	}
	snprintf(path, len, "%s", g.gl_pathv[0]);
	globfree(&g);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* What was seen of a member at the last refresh, for its rates. */
struct seen {
	int32_t pid;
	struct upg_domain_live l;
};

static struct seen prev[UPG_DOMAIN_SLOTS];

static const struct upg_domain_live *prev_of(int32_t pid)
{
	for (unsigned i = 0; i < UPG_DOMAIN_SLOTS; i++)
		if (prev[i].pid == pid)
			return &prev[i].l;
	return NULL;
}

/* Per second between p (or the member's start) and l. */
static double rate(uint64_t now, uint64_t before, uint64_t ns)
{
	return ns ? (double)(now - before) * 1e9 / (double)ns : 0;
}

/* The comm, safe for JSON and a terminal. */
static void clean(char *out, const char *in)
{
	size_t i = 0;
	for (; i < 15 && in[i]; i++)
		out[i] = (in[i] >= 0x20 && in[i] < 0x7f && in[i] != '"' && in[i] != '\\') ? in[i] : '?';
	out[i] = 0;
}

static void show(const char *path, const struct upg_domain_area *a, bool json, bool once, bool tty)
{
	struct seen next[UPG_DOMAIN_SLOTS];
	unsigned nnext = 0, members = 0, thrashing = 0;
	char line[512];
	uint64_t total = __atomic_load_n(&a->total, __ATOMIC_RELAXED), peak = __atomic_load_n(&a->peak, __ATOMIC_RELAXED);
	if (json)
		printf("{\"tree\":\"%s\",\"budget\":%llu,\"resident\":%llu,\"resident_peak\":%llu,\"joined\":%u,\"processes\":[",
		       path, (unsigned long long)a->budget, (unsigned long long)total, (unsigned long long)peak,
		       __atomic_load_n(&a->joined, __ATOMIC_RELAXED));
	else {
		if (tty)
			fputs("\033[H\033[2J", stdout);
		printf("upager-top  %s: budget %.1f MiB, resident %.1f MiB now (%.0f%%), peak %.1f MiB; %u processes "
		       "joined\n\n",
		       path, MIB(a->budget), MIB(total), a->budget ? 100.0 * (double)total / (double)a->budget : 0,
		       MIB(peak), __atomic_load_n(&a->joined, __ATOMIC_RELAXED));
		printf("%7s %-15s %9s %9s %8s %8s %8s %8s %7s %4s %9s %9s\n", "PID", "COMMAND", "RES MiB", "PEAK MiB",
		       "ZERO/s", "STORE/s", "POOL/s", "EVICT/s", "STALL%", "THR", "POOL MiB", "STORE MiB");
	}
	for (unsigned i = 0; i < UPG_DOMAIN_SLOTS; i++) {
		const struct upg_domain_slot *s = &a->slot[i];
		int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
		struct upg_domain_live l;
		if (pid <= 0 || !upg_domain_read_live(s, &l))
			continue;
		const struct upg_domain_live *p = once ? NULL : prev_of(pid);
		struct upg_domain_live zero = { 0 };
		if (!p || p->at_ns >= l.at_ns || p->wall_ns > l.wall_ns)
			p = &zero;  /* since the process began */
		uint64_t ns = l.wall_ns - p->wall_ns;
		double stall = ns ? 100.0 * (double)(l.stall_some_ns - p->stall_some_ns) / (double)ns : 0;
		char comm[16];
		clean(comm, l.comm);
		uint64_t res = __atomic_load_n(&s->resident, __ATOMIC_RELAXED), pk = __atomic_load_n(&s->peak, __ATOMIC_RELAXED);
		/* As the report's warning (upg_stats_thrashed()), over this
		 * refresh: half of it waiting, and many of the pages brought
		 * back evicted shortly before. */
		uint64_t refills = l.store_reads + l.pool_hits - p->store_reads - p->pool_hits;
		bool thrash = stall >= 50 && refills >= 100 && (l.refaults - p->refaults) * 4 >= refills;
		thrashing += thrash;
		if (json)
			printf("%s{\"pid\":%d,\"comm\":\"%s\",\"resident\":%llu,\"resident_peak\":%llu,\"zero_fills\":%llu,"
			       "\"store_reads\":%llu,\"pool_hits\":%llu,\"refaults\":%llu,\"evictions\":%llu,\"writebacks\":%llu,"
			       "\"bytes_in\":%llu,\"bytes_out\":%llu,\"pool_bytes\":%llu,\"store_bytes\":%llu,"
			       "\"wall_seconds\":%.3f,\"stall_some_seconds\":%.3f,\"stall_all_seconds\":%.3f,\"threads\":%u,"
			       "\"store_reads_per_s\":%.1f,\"pool_hits_per_s\":%.1f,\"zero_fills_per_s\":%.1f,"
			       "\"evictions_per_s\":%.1f,\"stall_some_share\":%.4f,\"thrashing\":%s}",
			       members ? "," : "", (int)pid, comm, (unsigned long long)res, (unsigned long long)pk,
			       (unsigned long long)l.zero_fills, (unsigned long long)l.store_reads,
			       (unsigned long long)l.pool_hits, (unsigned long long)l.refaults,
			       (unsigned long long)l.evictions, (unsigned long long)l.writebacks,
			       (unsigned long long)l.bytes_in, (unsigned long long)l.bytes_out,
			       (unsigned long long)l.pool_bytes, (unsigned long long)l.store_bytes, l.wall_ns / 1e9,
			       l.stall_some_ns / 1e9, l.stall_all_ns / 1e9, l.threads,
			       rate(l.store_reads, p->store_reads, ns), rate(l.pool_hits, p->pool_hits, ns),
			       rate(l.zero_fills, p->zero_fills, ns), rate(l.evictions, p->evictions, ns), stall / 100, thrash ? "true" : "false");
		else {
			snprintf(line, sizeof line, "%7d %-15s %9.1f %9.1f %8.0f %8.0f %8.0f %8.0f %6.1f%% %4u %9.1f %9.1f",
				 (int)pid, comm, MIB(res), MIB(pk), rate(l.zero_fills, p->zero_fills, ns),
				 rate(l.store_reads, p->store_reads, ns), rate(l.pool_hits, p->pool_hits, ns),
				 rate(l.evictions, p->evictions, ns), stall, l.threads, MIB(l.pool_bytes),
				 MIB(l.store_bytes));
			printf("%s%s\n", line, thrash ? "  THRASHING" : "");
		}
		next[nnext].pid = pid;
		next[nnext++].l = l;
		members++;
	}
	if (json)
		puts("]}");
	else if (!members)
		puts("        (no process of the tree is paging now)");
	else if (thrashing)
		puts("\nTHRASHING: waiting for pages half the time or more, on pages evicted shortly before; a larger "
		     "--ram would run it faster");
	memset(prev, 0, sizeof prev);
	memcpy(prev, next, nnext * sizeof next[0]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	bool once = false, json = false;
	double interval = 1;
	const char *which = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			once = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			char *end;
			interval = strtod(argv[++i], &end);
			if (*end || !(interval >= 0.1 && interval <= 60)) {
				fprintf(stderr, "upager-top: --interval takes seconds from 0.1 to 60, not '%.64s'\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || which) {
			fprintf(stderr, "upager-top: unknown argument '%.64s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else
			which = argv[i];
	}
	char path[256];
	if (!which) {
		if (find_tree(path, sizeof path))
			return 1;
	} else if (strspn(which, "0123456789") == strlen(which))
		snprintf(path, sizeof path, "/dev/shm/upager-tree-%s", which);
	else
		snprintf(path, sizeof path, "%s", which);
	size_t len;
	struct upg_domain_area *a = upg_domain_map(path, &len);
	if (!a) {
		fprintf(stderr, "upager-top: %s is not a running tree's file (%s): give upager-run's PID, or run "
				"upager-top with no argument to find the tree\n",
			path, access(path, F_OK) ? strerror(errno) : "not made by this version of upager-run");
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	bool tty = isatty(1) && !json;
	for (;;) {
		show(path, a, json, once, tty);
		if (once)
			break;
		uint64_t until = now_ns() + (uint64_t)(interval * 1e9);
		while (!stop && now_ns() < until)
			usleep(20000);
		if (stop)
			break;
		if (access(path, F_OK)) {
			printf("upager-top: the tree has ended (%s is gone)\n", path);
			break;
		}
	}
	munmap(a, len);
	return 0;
}
