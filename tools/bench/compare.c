/* SPDX-License-Identifier: MIT */
/*
 * Compare mode runs every workload on up to four sides, back to back, on
 * fresh memory each time (enum side):
 *   kernel swap        a child process with plain anonymous memory, inside
 *                      a memory cgroup capped at the budget, with a swap
 *                      file on the store's filesystem, zswap off;
 *   kernel swap+zswap  the same with zswap on (compare_kernel.c);
 *   upager             this process, as in plain mode, with the runtime's
 *                      compressed pool (its default);
 *   upager pool off    the same with compress="off".
 * It also measures what the store's filesystem can do with O_DIRECT reads,
 * so the figures have a physical limit next to them.
 *
 * Everything compare mode changes outside this process is recorded in
 * `undo` with signals blocked around the change, and undone on every exit:
 * normally, on an error, or from the handler of SIGINT, SIGTERM and SIGHUP,
 * and of a crash (SIGSEGV and the like; the handler then re-raises the
 * signal).  A SIGKILL leaves the swap file, the
 * cgroup and zswap's parameters behind; the next compare run removes or
 * restores them (their names carry the pid of a process that no longer
 * exists).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static struct undo undo_local;
struct undo *undo = &undo_local; /* see above; guardian_start() moves it to shared memory */
static int guard_fd = -1;        /* our end of the guardian's pipe: its closing says we are gone */

const struct side_info sides[NSIDES] = {
	[SIDE_KERNEL] = { "kernel", "kernel", "kernel swap", true },
	[SIDE_ZSWAP] = { "zswap", "zswap", "kernel swap+zswap", true },
	[SIDE_UPAGER] = { "upager", "upager", "upager", false },
	[SIDE_NOPOOL] = { "upager-nopool", "upager_nopool", "upager pool off", false },
	[SIDE_REDIS] = { "upager-redis", "upager_redis", "upager on redis", false },
};

/* --sides: names from sides[] separated by commas, or "all". */
int sides_parse(const char *val, bool *want)
{
	bool w[NSIDES] = { false };
	const char *p = val;
	for (;;) {
		size_t len = strcspn(p, ",");
		bool found = len == 3 && !strncmp(p, "all", 3);
		for (size_t i = 0; i < NSIDES; i++) {
			if (found && len == 3)
				w[i] = true;
			else if (strlen(sides[i].name) == len && !strncmp(p, sides[i].name, len))
				w[i] = found = true;
		}
		if (!found)
			return -EINVAL;
		if (!p[len])
			break;
		p += len + 1;
	}
	memcpy(want, w, sizeof w);
	return 0;
}

/* snprintf for messages, where truncation is acceptable. */
void msgf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static const int undo_signals[] = { SIGINT, SIGTERM, SIGHUP };
/* A crash undoes too (upager's own threads run in this process: a fault in
 * the runtime would otherwise leave the swap file, cgroup and zswap's
 * settings behind).  These are synchronous, so never blocked. */
static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };

void signals_block(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
		sigaddset(&set, undo_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* In a freshly forked child: default handlers (the child must never undo
 * the parent's set-up), then the mask the parent had before blocking. */
void child_signals(const sigset_t *old)
{
	for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
		signal(undo_signals[i], SIG_DFL);
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		signal(crash_signals[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	if (guard_fd >= 0)
		close(guard_fd); /* the guardian waits for this process, not for its children */
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Write val into a sysfs file; async-signal-safe. */
static void put_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t w = write(fd, val, strlen(val));
	(void)w;
	close(fd);
}

/* Put zswap's parameters and vm.page-cluster back as found, unmount
 * debugfs if we mounted it, and remove the state file; async-signal-safe.
 * zswap goes off first, so that setting the old compressor does not make a
 * pool only to drop it. */
void undo_zswap(void)
{
	if (undo->page_cluster[0]) {
		put_file(PAGE_CLUSTER, undo->page_cluster);
		undo->page_cluster[0] = 0;
	}
	if (undo->zswap_enabled[0]) {
		put_file(ZSWAP_PARAMS "/enabled", "N");
		if (undo->zswap_pool_percent[0])
			put_file(ZSWAP_PARAMS "/max_pool_percent", undo->zswap_pool_percent);
		undo->zswap_pool_percent[0] = 0;
		if (undo->zswap_compressor[0])
			put_file(ZSWAP_PARAMS "/compressor", undo->zswap_compressor);
		put_file(ZSWAP_PARAMS "/enabled", undo->zswap_enabled);
		undo->zswap_enabled[0] = 0;
	}
	if (undo->debugfs_mounted) {
		if (umount2("/sys/kernel/debug", 0))
			umount2("/sys/kernel/debug", MNT_DETACH);
		undo->debugfs_mounted = 0;
	}
	if (undo->zswap_state[0]) {
		unlink(undo->zswap_state);
		undo->zswap_state[0] = 0;
	}
}

/* Async-signal-safe: kill(), waitpid(), open(), write(), close(), umount2(),
 * swapoff(), unlink(), rmdir() and nanosleep() only. */
void undo_all(void)
{
	pid_t child = undo->child;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		undo->child = 0;
	}
	undo_zswap();
	if (undo->swap_on) {
		swapoff(undo->swapfile);
		undo->swap_on = 0;
	}
	if (undo->swapfile[0]) {
		unlink(undo->swapfile);
		undo->swapfile[0] = 0;
	}
	if (undo->devfile[0]) {
		unlink(undo->devfile);
		undo->devfile[0] = 0;
	}
	if (undo->cgroup[0]) {
		/* A memory cgroup can stay busy for a moment after its last
		 * task exits. */
		for (int i = 0; i < 100 && rmdir(undo->cgroup) && errno == EBUSY; i++)
			nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
		undo->cgroup[0] = 0;
	}
}

static void on_signal(int sig)
{
	static const char msg[] = "\n" PROG ": interrupted: removing the swap file and cgroup, putting zswap back ...\n";
	static const char crash[] = "\n" PROG ": CRASHED: removing the swap file and cgroup, putting zswap back ...\n";
	bool crashed = sig != SIGINT && sig != SIGTERM && sig != SIGHUP;
	ssize_t w = crashed ? write(2, crash, sizeof crash - 1) : write(2, msg, sizeof msg - 1);
	(void)w;
	undo_all();
	raise(sig); /* SA_RESETHAND: the default action now ends the process */
}

/* Has process pid ended (gone, or a zombie)? */
bool pid_gone(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kill(pid, 0) && errno == ESRCH;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static bool undo_pending(void)
{
	return undo->child || undo->cgroup[0] || undo->swapfile[0] || undo->swap_on || undo->devfile[0] ||
	       undo->zswap_enabled[0] || undo->page_cluster[0] || undo->debugfs_mounted || undo->zswap_state[0];
}

/*
 * Start the guardian: a child that waits for this process to end and then
 * undoes whatever the undo record, which it shares, still holds.  The
 * signal handlers cannot cover a crash in upager's own threads (they block
 * every signal, so the kernel ends the process at once), nor SIGKILL; the
 * guardian covers both, and the next run's stale checks cover a SIGKILL to
 * the guardian too.  It ignores SIGINT, SIGTERM and SIGHUP, which a
 * terminal sends the whole process group: we undo those ourselves.  When
 * it cannot start, the handlers still cover the rest.
 */
void guardian_start(void)
{
	struct undo *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int pfd[2];
	if (shared == MAP_FAILED)
		return;
	if (pipe2(pfd, O_CLOEXEC)) {
		munmap(shared, sizeof *shared);
		return;
	}
	sigset_t old;
	signals_block(&old);
	*shared = *undo;
	undo = shared;
	fflush(NULL);
	pid_t parent = getpid(), pid = fork();
	if (pid == 0) {
		child_signals(&old);
		for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
			signal(undo_signals[i], SIG_IGN);
		close(pfd[1]);
		prctl(PR_SET_NAME, "upg-bench-guard");
		char c;
		while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
			;
		/* The swap file can be turned off once the process's memory is gone. */
		for (int i = 0; i < 3000 && !pid_gone(parent); i++)
			nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
		if (undo_pending()) {
			dprintf(2, PROG ": the run (pid %d) ended without putting things back: removing its swap file and "
				"cgroup, putting zswap back\n", (int)parent);
			undo_all();
		}
		_exit(0);
	}
	signals_restore(&old);
	close(pfd[0]);
	if (pid < 0)
		close(pfd[1]);
	else
		guard_fd = pfd[1];
}

void undo_install(void)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESETHAND | SA_NODEFER };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
		sigaction(undo_signals[i], &sa, NULL);
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		sigaction(crash_signals[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a dead child's pipe reads as a short message instead */
}

/* Run argv (argv[0] a path or a name looked up in PATH, /usr/sbin and
 * /sbin) with stdout and stderr captured into out.  Returns its exit
 * status (127: not found), or -errno when it cannot be started. */
int run_cmd(const char *const argv[], char *out, size_t outlen)
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

/* --- compare mode's driver --- */

static void print_compare_header(FILE *out, const struct machine *m, const struct upager_config *cfg,
				 const struct opts *o, const char *sdir, const char *snote)
{
	char ram[32], data[32], page[32];
	human_size(o->ram, ram, sizeof ram);
	human_size(o->data, data, sizeof data);
	human_size(o->page, page, sizeof page);
	fprintf(out, "%s %s (libupager %s), compare: upager against the kernel's swap and zswap%s\n", PROG,
		UPAGER_VERSION_STRING, upager_version(), o->quick ? " (--quick)" : "");
	fprintf(out, "machine  %ld CPUs%s%s, %s\n", m->nproc, m->cpu[0] ? ", " : "", m->cpu, m->kernel);
	fprintf(out, "store    %s; directory %s (%s)\n", m->store, sdir, fs_name(sdir));
	if (snote[0])
		fprintf(out, "note     %s\n", snote);
	fprintf(out, "memory   ram %s, data %s (%.1fx), page %s, policy %s, random accesses %" PRIu64 " per run",
		ram, data, (double)o->data / (double)o->ram, page, cfg->policy, o->accesses);
	if (o->warmup)
		fprintf(out, " after %" PRIu64 " untimed", o->warmup);
	fprintf(out, "%s\n", o->page != 4096 ? " (the kernel side always pages 4 KiB)" : "");
	if (o->repeat > 1)
		fprintf(out, "repeat   every side %u times a row, in a turned order; a row shows the run of median acc/s "
			"(--repeat)\n", o->repeat);
	fprintf(out, "runtime  %u handler thread%s, readahead %u pages, fault-around %u pages, io depth %u, seed %" PRIu64 "\n",
		cfg->handler_threads, cfg->handler_threads == 1 ? "" : "s", cfg->readahead_max, cfg->fault_around,
		cfg->io_depth, o->seed);
	fprintf(out, "pool     upager: compressed pool %s (UPAGER_COMPRESS), up to %u%% of the budget, inside it; the "
		"\"upager pool off\" side: off\n", cfg->compress ? cfg->compress : "lz4",
		cfg->compress_pool ? cfg->compress_pool : 50);
	char list[128] = "";
	for (int sd = 0; sd < NSIDES; sd++)
		if (o->side[sd])
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", sides[sd].label);
	fprintf(out, "sides    %s\n", list);
	print_content(out, o);
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

/* Run side sd of trial t into r; false when the upager runtime failed (the
 * run stops), true otherwise (a kernel side's failure is recorded in r). */
static bool run_side(const struct trial *t, enum side sd, struct side_run *r, const struct opts *o,
		     struct kernel_side *ks, struct zswap *zs, struct backend *be_pool, struct backend *be_nopool,
		     struct backend *be_redis)
{
	if (!o->side[sd]) {
		msgf(r->why, sizeof r->why, "side not asked for with --sides");
		return true;
	}
	if (sides[sd].kernel && !ks->ready) {
		msgf(r->why, sizeof r->why, "%s", ks->why);
		return true;
	}
	if (sd == SIDE_ZSWAP && !zs->ready) {
		msgf(r->why, sizeof r->why, "%s", zs->why);
		return true;
	}
	if (!o->quiet)
		fprintf(stderr, " %s", sides[sd].name);
	drop_caches();
	uint64_t t0 = now_ns();
	if (sides[sd].kernel) {
		int rc = sd == SIDE_ZSWAP ? zswap_switch(zs, ks, o, true) : 0;
		if (rc)
			msgf(r->why, sizeof r->why, "cannot switch zswap on: %s", strerror(-rc));
		else
			r->ok = run_kernel(ks, o, t->wl, t->threads, &r->r, &r->lat, &r->nlat, &r->life_cpu_s, r->why,
					   sizeof r->why) == 0;
		if (sd == SIDE_ZSWAP && !rc && (rc = zswap_switch(zs, ks, o, false))) {
			/* The plain kernel side would have zswap too: stop both. */
			msgf(ks->why, sizeof ks->why, "zswap could not be switched off again (%s)", strerror(-rc));
			ks->ready = false;
		}
		if (!r->ok)
			fprintf(stderr, "\n%s: %s side of %s, %u thread%s failed: %s\n", PROG, sides[sd].label, t->wl->name,
				t->threads, t->threads == 1 ? "" : "s", r->why);
	} else {
		if (run_one(sd == SIDE_UPAGER ? be_pool : sd == SIDE_REDIS ? be_redis : be_nopool, o, t->wl, t->threads,
			    &r->r, &r->lat, &r->nlat))
			return false;
		r->ok = true;
	}
	if (r->ok)
		snprintf(r->r.backend, sizeof r->r.backend, "%s", sides[sd].name);
	if (!o->quiet)
		fprintf(stderr, " %.1f s", (now_ns() - t0) / 1e9);
	return true;
}

static int by_rate(const void *a, const void *b)
{
	double x = ((const struct side_run *)a)->r.accesses_per_s, y = ((const struct side_run *)b)->r.accesses_per_s;
	return x < y ? -1 : x > y;
}

/* Every side asked for of trial t, o->repeat times: round k starts k
 * sides further on, so that no side always runs first or last.  Each side
 * keeps its run of median acc/s among those that succeeded (the lower of
 * the middle two for an even count), with their range, the failed runs'
 * count, and every run's wrong words summed into the kept run's row.
 * False when the upager runtime failed. */
static bool run_rounds(struct trial *t, const struct opts *o, struct kernel_side *ks, struct zswap *zs,
		       struct backend *be_pool, struct backend *be_nopool, struct backend *be_redis)
{
	struct side_run runs[NSIDES][MAX_REPEAT];
	unsigned nrun[NSIDES] = { 0 }, reps = o->repeat, nasked = 0;  /* 1 to MAX_REPEAT (main.c) */
	enum side asked[NSIDES];
	bool failed = false;
	memset(runs, 0, sizeof runs);
	for (int sd = 0; sd < NSIDES; sd++) {
		if (o->side[sd])
			asked[nasked++] = (enum side)sd;
		else  /* its reason, once */
			run_side(t, (enum side)sd, &runs[sd][nrun[sd]++], o, ks, zs, be_pool, be_nopool, be_redis);
	}
	for (unsigned k = 0; k < reps && !failed; k++) {
		if (reps > 1 && !o->quiet)
			fprintf(stderr, " [%u/%u]", k + 1, reps);
		for (unsigned i = 0; i < nasked && !failed; i++) {
			enum side sd = asked[(i + k) % nasked];
			failed = !run_side(t, sd, &runs[sd][nrun[sd]++], o, ks, zs, be_pool, be_nopool, be_redis);
		}
	}
	for (int sd = 0; sd < NSIDES; sd++) {
		struct side_run *rs = runs[sd], *pick = NULL;
		unsigned n = nrun[sd], ok = 0;
		uint64_t bad = 0;
		/* Those that ran first, in order of rate. */
		for (unsigned i = 0; i < n; i++)
			if (rs[i].ok) {
				bad += rs[i].r.bad_words;
				struct side_run x = rs[ok];
				rs[ok++] = rs[i];
				rs[i] = x;
			}
		qsort(rs, ok, sizeof *rs, by_rate);
		if (ok) {
			pick = &rs[(ok - 1) / 2];
			pick->reps = ok;
			pick->fails = n - ok;
			pick->rate_lo = rs[0].r.accesses_per_s;
			pick->rate_hi = rs[ok - 1].r.accesses_per_s;
			pick->r.bad_words = bad;
		} else if (n) {
			pick = &rs[0];  /* not run: its reason */
		}
		for (unsigned i = 0; i < n; i++)
			if (&rs[i] != pick)
				free(rs[i].lat);
		if (pick)
			t->s[sd] = *pick;
	}
	return !failed;
}

int compare_main(const struct upager_config *cfg, const struct opts *o, FILE *csv, FILE *json)
{
	uint64_t t_all = now_ns();
	struct machine m;
	machine_probe(&m, cfg);
	char sdir[512], snote[400];
	store_dir(cfg, sdir, sizeof sdir, snote, sizeof snote);
	undo_install();
	if (geteuid() == 0) {
		guardian_start();
		swap_remove_stale();
		zswap_restore_stale();
	}
	print_compare_header(stdout, &m, cfg, o, sdir, snote);

	struct kernel_side ks;
	struct zswap zs;
	memset(&ks, 0, sizeof ks);
	if (!o->quiet && (o->side[SIDE_KERNEL] || o->side[SIDE_ZSWAP]))
		fprintf(stderr, "%s: setting up the kernel side (cgroup, swap file, zswap) ...\n", PROG);
	kernel_setup(&ks, o, sdir);
	zswap_setup(&zs, &ks, o);
	if (o->side[SIDE_KERNEL] || o->side[SIDE_ZSWAP])
		print_kernel_side(stdout, &ks);
	print_zswap(stdout, &zs, o);

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
		"acc/s: page accesses per second in the timed phase (fill and verification untimed); x-krn: acc/s over\n"
		"kernel swap's.  flt-p50/p99: client latency (us) of sampled accesses that began on an unmapped page\n"
		"(1 access in %u timed, mincore() before each).  cpu/maj: process CPU (user+system, all threads, the\n"
		"workload's own work included) per major fault, us (-: fewer major faults than 1%% of accesses);\n"
		"thr/maj: upager's own threads alone; poll/maj: of cpu/maj, the handlers' polling for store reads to\n"
		"complete (UPAGER_POLL_US).  evict/pg: the evictor thread's CPU per page it evicted, us (a clean page\n"
		"dropped counts); alone: of the pages it took out of the program's memory, the share that went by a\n"
		"call of their own (each call flushes the other CPUs' TLBs once, however many pages it takes:\n"
		"upager-bench floor times both).\nmajors: major faults (kernel: getrusage, zswap loads included; upager: store\n"
		"reads, pool hits not included; readahead pages on neither side).  pool-hit: share of the pages\n"
		"brought back that came from the compressed pool in RAM (upager: hits over hits plus store reads;\n"
		"zswap: zswpin over zswpin plus pswpin); pool-x: the pool's compression ratio at the end of the\n"
		"timed phase.  upager's pool lies inside its budget; zswap's pool is outside the cgroup's limit when\n"
		"the row says so (then that side had that much more RAM than the budget).\n\n",
		SAMPLE_EVERY);
	print_trial_header(stdout);

	size_t cap = 0;
	unsigned tl[32];
	for (size_t w = 0; w < NWORKLOADS; w++)
		if (o->want[w])
			cap += plan_threads(o, &workloads[w], tl);
	struct trial *ts = calloc(cap ? cap : 1, sizeof *ts);
	if (!ts) {
		fprintf(stderr, PROG ": out of memory\n");
		zswap_teardown(&zs);
		kernel_teardown(&ks);
		return 1;
	}
	struct upager_config nopool_cfg = *cfg;
	nopool_cfg.compress = "off";
	/* The Redis side: the store on Redis, pool off, so that its faults
	 * compare with the file store's on the "upager pool off" side. */
	struct upager_config redis_cfg = nopool_cfg;
	redis_cfg.store_path = o->redis;
	struct upager_backend ub, ub_nopool, ub_redis;
	struct backend be, be_nopool, be_redis;
	backend_upager(&be, &ub, cfg);
	backend_upager(&be_nopool, &ub_nopool, &nopool_cfg);
	backend_upager(&be_redis, &ub_redis, &redis_cfg);
	size_t n = 0;
	bool data_ok = true, failed = false;
	for (size_t w = 0; w < NWORKLOADS && !failed; w++) {
		if (!o->want[w])
			continue;
		unsigned nt = plan_threads(o, &workloads[w], tl);
		for (unsigned i = 0; i < nt && !failed; i++) {
			struct trial *t = &ts[n++];
			t->wl = &workloads[w];
			t->threads = tl[i];
			if (!o->quiet)
				fprintf(stderr, "%s: %s, %u thread%s:", PROG, t->wl->name, t->threads, t->threads == 1 ? "" : "s");
			failed = !run_rounds(t, o, &ks, &zs, &be, &be_nopool, &be_redis);
			if (!o->quiet)
				fprintf(stderr, "\n");
			print_trial(stdout, t, o, &ks, &zs);
			for (int sd = 0; sd < NSIDES; sd++) {
				const struct side_run *r = &t->s[sd];
				if (r->ok && r->r.bad_words) {
					data_ok = false;
					fprintf(stderr, PROG ": VERIFICATION FAILED on the %s side: %s with %u thread%s: %"
						PRIu64 " wrong words\n", sides[sd].label, t->wl->name, t->threads,
						t->threads == 1 ? "" : "s", r->r.bad_words);
				}
			}
		}
	}
	bool kernel_ran = ks.ready;
	zswap_teardown(&zs);
	kernel_teardown(&ks);
	ks.ready = kernel_ran; /* for the report */

	print_charge(stdout, ts, n, &ks, &zs);
	const struct trial *sp = find_trial(ts, n, "seq-read", 0);
	if (sp && dev.ran && sp->s[SIDE_UPAGER].ok)
		printf("\nupager seq-read: %.0f MB/s = %.0f%% of the store filesystem's sequential O_DIRECT bandwidth "
		       "(%.0f MB/s)\n", seq_mbs(sp, o->page), 100 * seq_mbs(sp, o->page) / dev.seq_mbs, dev.seq_mbs);
	if (sp && sp->s[SIDE_KERNEL].ok && dev.ran)
		printf("kernel seq-read: %.0f MB/s = %.0f%% of it\n", side_rate(sp, SIDE_KERNEL) * (double)o->page / 1e6,
		       100 * side_rate(sp, SIDE_KERNEL) * (double)o->page / 1e6 / dev.seq_mbs);
	print_ceiling(stdout, ts, n, &dev);
	struct target tg[MAX_TARGETS];
	size_t ntg = targets_eval(ts, n, &dev, &ks, o, tg);
	print_targets(stdout, tg, ntg);
	double wall = (now_ns() - t_all) / 1e9;
	unsigned nsides = 0;
	for (int sd = 0; sd < NSIDES; sd++)
		for (size_t i = 0; i < n; i++)
			if (ts[i].s[sd].ok) {
				nsides++;
				break;
			}
	printf("\n%zu workload runs on %u side%s in %.0f s: %s\n", n, nsides, nsides == 1 ? "" : "s", wall,
	       failed ? "STOPPED by an upager runtime failure" :
	       data_ok ? "every page verified" : "DATA ERRORS (see above)");
	fflush(stdout);

	int out_rc = 0;
	if (csv) {
		struct row *rows = calloc(NSIDES * (n ? n : 1), sizeof *rows);
		size_t nr = 0;
		for (size_t i = 0; rows && i < n; i++)
			for (int sd = 0; sd < NSIDES; sd++)
				if (ts[i].s[sd].ok)
					rows[nr++] = ts[i].s[sd].r;
		out_rc |= rows ? write_csv(csv, o->csv, rows, nr) : -ENOMEM;
		free(rows);
	}
	if (json)
		out_rc |= write_compare_json(json, o->json, ts, n, &m, cfg, o, &ks, &zs, &dev, sdir, tg, ntg,
					     data_ok && !failed, wall);
	if (o->plot) {
		int prc = write_plots(o->plot, ts, n, o);
		if (prc == 0)
			printf("charts: %s/throughput.png, %s/fault-latency-cdf.png, %s/fault-latency-cdf-vs-kernel.png\n",
			       o->plot, o->plot, o->plot);
		out_rc |= prc;
	}
	for (size_t i = 0; i < n; i++)
		for (int sd = 0; sd < NSIDES; sd++)
			free(ts[i].s[sd].lat);
	free(ts);
	return !data_ok || failed || out_rc ? 1 : 0;
}
