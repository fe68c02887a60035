/* SPDX-License-Identifier: MIT */
/*
 * upager-bench file: the same file, read and updated through pointers, by
 * upager_map_file() and by the kernel's mmap(MAP_SHARED), each in a fresh
 * memory cgroup with the same limit, caches dropped before every run, and
 * every run ending with a sync (upager_sync / msync).  Sides:
 *   upager       upager_map_file(UPAGER_MAP_SHARED) under --ram;
 *   mmap         mmap with the kernel's default readahead;
 *   mmap-random  the same after madvise(MADV_RANDOM).
 * Workloads (one thread):
 *   scan         every page once, front to back;
 *   rand-read    --accesses pages drawn at random;
 *   rand-update  the same, each adding one to a counter in the page.
 * Every read page's first word is checked against its page number, and
 * after rand-update the counters on the file (read back with O_DIRECT) must
 * add up to the updates made.  Figures: accesses per second, MiB read from
 * the device (its own counters), the cgroup's peak (v1).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define FSALT 0x66696c656d6170ULL  /* "filemap" */

enum fside { FS_UPAGER, FS_MMAP, FS_MMAP_RANDOM, NFSIDES };
static const char *const fside_name[NFSIDES] = { "upager", "mmap", "mmap-random" };
enum fwl { FW_SCAN, FW_RREAD, FW_RUPDATE, NFWL };
static const char *const fwl_name[NFWL] = { "scan", "rand-read", "rand-update" };

struct fopts {
	uint64_t ram, data, accesses, allowance;
	char path[512];
	bool want_side[NFSIDES], want_wl[NFWL];
};

struct fresult {
	int rc;                /* 0, or what failed */
	uint64_t bad;          /* pages read wrong */
	uint64_t touched;      /* accesses made */
	uint64_t ns;           /* the workload and its sync */
	uint64_t updates;      /* counters added */
};

/* Word 0 of page pg: its number, mixed; word 1: the update counter (0 at
 * first); the rest a pattern. */
static uint64_t id_word(uint64_t pg)
{
	return mix(FSALT ^ pg);
}

static int make_file(const struct fopts *o, char *why, size_t wlen)
{
	int fd = open(o->path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (fd < 0) {
		int e = errno;
		msgf(why, wlen, "%s: %s (pass --file on a filesystem with direct I/O)", o->path, strerror(e));
		return -e;
	}
	size_t chunk = 1 << 20;
	uint64_t *buf = aligned_alloc(4096, chunk);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	int rc = 0;
	for (uint64_t off = 0; off < o->data && !rc; off += chunk) {
		size_t len = o->data - off < chunk ? (size_t)(o->data - off) : chunk;
		for (size_t p = 0; p < len / 4096; p++) {
			uint64_t pg = off / 4096 + p, *w = buf + p * 512;
			w[0] = id_word(pg);
			w[1] = 0;
			for (unsigned k = 2; k < 512; k++)
				w[k] = pg * 512 + k;
		}
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
			rc = -errno ? -errno : -EIO;
			msgf(why, wlen, "writing %s: %s (free space on its filesystem, or pass --file elsewhere)", o->path,
			     strerror(errno ? errno : EIO));
		}
	}
	free(buf);
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

/* The device's sectors read so far (512 bytes each), for the file's
 * filesystem; 0 when unknown. */
static uint64_t dev_sectors_read(dev_t dev)
{
	char path[128];
	snprintf(path, sizeof path, "/sys/dev/block/%u:%u/stat", major(dev), minor(dev));
	FILE *f = fopen(path, "r");
	unsigned long long v[3] = { 0 };
	if (f) {
		if (fscanf(f, "%llu %llu %llu", &v[0], &v[1], &v[2]) != 3)
			v[2] = 0;
		fclose(f);
	}
	return v[2];
}

static void drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd >= 0) {
		(void)!write(fd, "3", 1);
		close(fd);
	}
}

/* The workload on the n pages at base. */
static void run_wl(enum fwl w, char *base, uint64_t n, uint64_t accesses, struct fresult *r)
{
	uint64_t rng = FSALT;
	if (w == FW_SCAN) {
		for (uint64_t pg = 0; pg < n; pg++)
			r->bad += *(volatile uint64_t *)(base + pg * 4096) != id_word(pg);
		r->touched = n;
		return;
	}
	for (uint64_t j = 0; j < accesses; j++) {
		uint64_t pg = rng_below(&rng, n);
		uint64_t *p = (uint64_t *)(base + pg * 4096);
		r->bad += *(volatile uint64_t *)p != id_word(pg);
		if (w == FW_RUPDATE) {
			p[1]++;
			r->updates++;
		}
	}
	r->touched = accesses;
}

/* In the child, inside the cgroup. */
static void child_run(const struct fopts *o, enum fside s, enum fwl w, struct fresult *r)
{
	int fd = open(o->path, O_RDWR);
	if (fd < 0) {
		r->rc = 10;
		return;
	}
	uint64_t n = o->data / 4096;
	char *base = NULL;
	upager_t *up = NULL;
	if (s == FS_UPAGER) {
		struct upager_config cfg;
		upager_config_init(&cfg);
		char err[512];
		if (upager_config_from_env(&cfg, err, sizeof err)) {
			fprintf(stderr, PROG ": %s\n", err);
			r->rc = 11;
			return;
		}
		cfg.ram_budget = o->ram;
		if (upager_open(&cfg, &up, err, sizeof err)) {
			fprintf(stderr, PROG ": upager_open: %s\n", err);
			r->rc = 12;
			return;
		}
		void *m;
		int e = upager_map_file(up, fd, 0, o->data, UPAGER_MAP_SHARED, &m);
		if (e) {
			fprintf(stderr, PROG ": upager_map_file: %s\n", strerror(e < 0 ? -e : e));
			r->rc = 13;
			return;
		}
		base = m;
	} else {
		base = mmap(NULL, o->data, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			r->rc = 14;
			return;
		}
		if (s == FS_MMAP_RANDOM)
			madvise(base, o->data, MADV_RANDOM);
	}
	uint64_t t0 = now_ns();
	run_wl(w, base, n, o->accesses, r);
	int rc = s == FS_UPAGER ? upager_sync(up, base, o->data, UPAGER_SYNC) : msync(base, o->data, MS_SYNC);
	r->ns = now_ns() - t0;
	if (rc)
		r->rc = 15;
	if (s == FS_UPAGER) {
		if (upager_close(up))
			r->rc = 16;
	} else {
		munmap(base, o->data);
	}
	close(fd);
}

/* The counters on the file, read back with O_DIRECT: their sum. */
static int file_updates(const struct fopts *o, uint64_t *sum, uint64_t *bad)
{
	int fd = open(o->path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return -errno;
	size_t chunk = 1 << 20;
	uint64_t *buf = aligned_alloc(4096, chunk);
	*sum = *bad = 0;
	for (uint64_t off = 0; buf && off < o->data; off += chunk) {
		size_t len = o->data - off < chunk ? (size_t)(o->data - off) : chunk;
		if (pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
			free(buf);
			close(fd);
			return -EIO;
		}
		for (size_t p = 0; p < len / 4096; p++) {
			*bad += buf[p * 512] != id_word(off / 4096 + p);
			*sum += buf[p * 512 + 1];
		}
	}
	free(buf);
	close(fd);
	return 0;
}

struct frow {
	bool ok;
	struct fresult r;
	uint64_t read_bytes, peak;
	char why[800];
};

static void run_side(const struct fopts *o, struct cgroup *cg, enum fside s, enum fwl w, struct frow *row)
{
	memset(row, 0, sizeof *row);
	char why[600];
	if (w == FW_RUPDATE && make_file(o, why, sizeof why)) {
		snprintf(row->why, sizeof row->why, "%s", why);
		return;
	}
	drop_caches();
	struct stat sb;
	stat(o->path, &sb);
	uint64_t s0 = dev_sectors_read(sb.st_dev);
	cg_peak_reset(cg);
	uint64_t ooms = cg_oom_kills(cg);
	int res[2], go[2];
	if (pipe(res) || pipe(go)) {
		snprintf(row->why, sizeof row->why, "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(res[0]);
		close(go[1]);
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		struct fresult r = { 0 };
		child_run(o, s, w, &r);
		(void)!write(res[1], &r, sizeof r);
		_exit(0);
	}
	close(res[1]);
	close(go[0]);
	if (pid < 0 || cg_enter(cg, pid) || write(go[1], "g", 1) != 1) {
		snprintf(row->why, sizeof row->why, "could not start the run in %s", cg->path);
		if (pid > 0)
			kill(pid, SIGKILL);
	}
	undo->child = pid > 0 ? pid : 0;
	ssize_t got = read(res[0], &row->r, sizeof row->r);
	close(res[0]);
	close(go[1]);
	int st = 0;
	if (pid > 0)
		waitpid(pid, &st, 0);
	undo->child = 0;
	row->read_bytes = (dev_sectors_read(sb.st_dev) - s0) * 512;
	row->peak = cg_peak(cg);
	if (row->why[0])
		return;
	if (got != (ssize_t)sizeof row->r || !WIFEXITED(st) || WEXITSTATUS(st)) {
		snprintf(row->why, sizeof row->why, "the run died (%s)",
			 cg_oom_kills(cg) > ooms ? "OOM-killed in its cgroup" : "signal or exit");
		return;
	}
	if (row->r.rc) {
		snprintf(row->why, sizeof row->why, "the run failed (step %d)", row->r.rc);
		return;
	}
	if (row->r.bad) {
		snprintf(row->why, sizeof row->why, "%" PRIu64 " pages read wrong", row->r.bad);
		return;
	}
	if (w == FW_RUPDATE) {
		uint64_t sum = 0, bad = 0;
		if (file_updates(o, &sum, &bad) || bad || sum != row->r.updates) {
			snprintf(row->why, sizeof row->why, "after the sync the file holds %" PRIu64 " of %" PRIu64
				 " updates", sum, row->r.updates);
			return;
		}
	}
	row->ok = true;
}

static int parse_list(const char *val, const char *const *names, size_t n, bool *want)
{
	for (size_t i = 0; i < n; i++)
		want[i] = false;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", val);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < n && strcmp(t, names[i]))
			i++;
		if (i == n)
			return -1;
		want[i] = true;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: " PROG " file [--ram SIZE] [--data SIZE] [--accesses N] [--file PATH]\n"
		"       [--workload scan,rand-read,rand-update] [--sides upager,mmap,mmap-random]\n"
		"Runs as root (memory cgroups, dropping the page cache).  The file (default: a new one in\n"
		"$TMPDIR or /var/tmp) is written afresh and removed at the end.\n");
	return 2;
}

int filemap_main(int argc, char **argv)
{
	struct fopts o = { .ram = 128ULL << 20, .accesses = 100000, .allowance = 16ULL << 20 };
	for (int i = 0; i < NFSIDES; i++)
		o.want_side[i] = true;
	for (int i = 0; i < NFWL; i++)
		o.want_wl[i] = true;
	const char *file = NULL;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return usage();
		if (!v) {
			fprintf(stderr, PROG ": %s needs a value\n", a);
			return usage();
		}
		int bad = 0;
		if (!strcmp(a, "--ram"))
			bad = upager_parse_size(v, &o.ram) || o.ram < (4u << 20);
		else if (!strcmp(a, "--data"))
			bad = upager_parse_size(v, &o.data) || o.data < (1u << 20);
		else if (!strcmp(a, "--accesses"))
			bad = upager_parse_size(v, &o.accesses) || !o.accesses;
		else if (!strcmp(a, "--file"))
			file = v;
		else if (!strcmp(a, "--workload"))
			bad = parse_list(v, fwl_name, NFWL, o.want_wl);
		else if (!strcmp(a, "--sides"))
			bad = parse_list(v, fside_name, NFSIDES, o.want_side);
		else {
			fprintf(stderr, PROG ": unknown option %s for file mode\n", a);
			return usage();
		}
		if (bad) {
			fprintf(stderr, PROG ": bad value \"%s\" for %s (sizes such as 128M; at least 4M of RAM and 1M "
				"of data; lists of the names shown below)\n", v, a);
			return usage();
		}
		i++;
	}
	if (!o.data)
		o.data = o.ram * 4;
	o.data &= ~4095ULL;
	/* upager's own RAM beside the budget (README, Memory outside the
	 * budget): 16 MiB for its buffers and the program, and the region's
	 * page table, 16 bytes a page of the file.  With 16 MiB alone a scan
	 * of 2 GiB peaked at 142 to 144 MiB over a 128 MiB budget and was
	 * OOM-killed one run in four. */
	o.allowance += o.data / 4096 * 16;
	if (geteuid() != 0) {
		fprintf(stderr, PROG ": file mode needs root: it makes memory cgroups and drops the page cache\n");
		return 1;
	}
	if (file) {
		snprintf(o.path, sizeof o.path, "%s", file);
	} else {
		const char *dir = getenv("TMPDIR");
		snprintf(o.path, sizeof o.path, "%s/upager-bench-file-%d", dir && *dir ? dir : "/var/tmp", (int)getpid());
	}
	undo_install();
	guardian_start();
	/* Removed on SIGINT, SIGTERM and exit, as the device test's file. */
	snprintf(undo->devfile, sizeof undo->devfile, "%s", o.path);
	struct cgroup cg;
	char why[600];
	uint64_t limit = o.ram + o.allowance;
	if (cg_create(&cg, limit, why, sizeof why)) {
		fprintf(stderr, PROG ": %s\n", why);
		return 1;
	}
	printf("file mode: a %" PRIu64 " MiB file (%s), RAM %" PRIu64 " MiB (upager's budget; every run in a memory "
	       "cgroup v%d of %" PRIu64 " MiB), %" PRIu64 " random accesses, one thread, caches dropped before each "
	       "run, each run ending with a sync\n", o.data >> 20, o.path, o.ram >> 20, cg.version, limit >> 20,
	       o.accesses);
	if (make_file(&o, why, sizeof why)) {
		fprintf(stderr, PROG ": %s\n", why);
		undo_all();
		return 1;
	}
	printf("the mmap sides' cgroup is capped at the peak of upager's run of the same workload (its budget and "
	       "its own tables), or the budget + 8 MiB if more%s\n",
	       cg.version == 1 ? "" : "; cgroup v2 has no per-run peak here, so at the limit above");
	printf("%-12s %-12s %10s %14s %12s %14s %12s %12s\n", "workload", "side", "seconds", "accesses/s", "MiB read",
	       "KiB/access", "cgroup cap", "cgroup peak");
	double rate[NFWL][NFSIDES] = { { 0 } };
	int failed = 0;
	for (int w = 0; w < NFWL; w++) {
		if (!o.want_wl[w])
			continue;
		/* upager runs first: the kernel's runs get the RAM it used
		 * (its budget and its own tables: the cgroup's peak, v1), so
		 * both sides have the same memory. */
		uint64_t cap = limit;
		for (int s = 0; s < NFSIDES; s++) {
			if (!o.want_side[s])
				continue;
			cg_set_limit(&cg, s == FS_UPAGER ? limit : cap);
			struct frow row;
			run_side(&o, &cg, (enum fside)s, (enum fwl)w, &row);
			if (!row.ok) {
				printf("%-12s %-12s FAILED: %s\n", fwl_name[w], fside_name[s], row.why);
				failed++;
				continue;
			}
			if (s == FS_UPAGER && row.peak)
				cap = row.peak > o.ram + (8ULL << 20) ? row.peak : o.ram + (8ULL << 20);
			double secs = row.r.ns / 1e9;
			rate[w][s] = row.r.touched / secs;
			char peak[32] = "-";
			if (row.peak)
				snprintf(peak, sizeof peak, "%" PRIu64 " MiB", row.peak >> 20);
			char capb[32];
			snprintf(capb, sizeof capb, "%" PRIu64 " MiB", (s == FS_UPAGER ? limit : cap) >> 20);
			printf("%-12s %-12s %10.2f %14.0f %12.1f %14.1f %12s %12s\n", fwl_name[w], fside_name[s], secs,
			       rate[w][s], row.read_bytes / 1048576.0, row.read_bytes / 1024.0 / row.r.touched, capb, peak);
			fflush(stdout);
		}
	}
	printf("\nratios (accesses/s, this run):\n");
	for (int w = 0; w < NFWL; w++) {
		if (!o.want_wl[w] || !rate[w][FS_UPAGER])
			continue;
		printf("  %-12s", fwl_name[w]);
		for (int s = FS_MMAP; s < NFSIDES; s++)
			if (rate[w][s])
				printf("  upager/%s %.2fx", fside_name[s], rate[w][FS_UPAGER] / rate[w][s]);
		printf("\n");
	}
	unlink(o.path);
	undo_all();
	return failed ? 1 : 0;
}
