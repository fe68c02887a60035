/* SPDX-License-Identifier: MIT */
/*
 * Compare mode runs every workload twice, back to back, on fresh memory:
 * under the kernel's own swap (a child process with plain anonymous memory,
 * inside a memory cgroup capped at the budget, with a swap file on the
 * store's filesystem) and under upager (this process, as in plain mode).
 * It also measures what the store's filesystem can do with O_DIRECT reads,
 * so the figures have a physical limit next to them.
 *
 * Everything compare mode changes outside this process is recorded in
 * `undo` with signals blocked around the change, and undone on every exit:
 * normally, on an error, or from the handler of SIGINT, SIGTERM and SIGHUP
 * (which then re-raises the signal).  A SIGKILL leaves the swap file and the
 * cgroup behind; the next compare run removes them (their names carry the
 * pid of a process that no longer exists).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct undo undo; /* see above */

/* snprintf for messages, where truncation is acceptable. */
void msgf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static const int undo_signals[] = { SIGINT, SIGTERM, SIGHUP };

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
	signal(SIGPIPE, SIG_DFL);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Async-signal-safe: kill(), waitpid(), swapoff(), unlink(), rmdir() and
 * nanosleep() only. */
void undo_all(void)
{
	pid_t child = undo.child;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		undo.child = 0;
	}
	if (undo.swap_on) {
		swapoff(undo.swapfile);
		undo.swap_on = 0;
	}
	if (undo.swapfile[0]) {
		unlink(undo.swapfile);
		undo.swapfile[0] = 0;
	}
	if (undo.devfile[0]) {
		unlink(undo.devfile);
		undo.devfile[0] = 0;
	}
	if (undo.cgroup[0]) {
		/* A memory cgroup can stay busy for a moment after its last
		 * task exits. */
		for (int i = 0; i < 100 && rmdir(undo.cgroup) && errno == EBUSY; i++)
			nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
		undo.cgroup[0] = 0;
	}
}

static void on_signal(int sig)
{
	static const char msg[] = "\n" PROG ": interrupted: removing the swap file and cgroup ...\n";
	ssize_t w = write(2, msg, sizeof msg - 1);
	(void)w;
	undo_all();
	raise(sig); /* SA_RESETHAND: the default action now ends the process */
}

static void undo_install(void)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESETHAND | SA_NODEFER };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof undo_signals / sizeof undo_signals[0]; i++)
		sigaction(undo_signals[i], &sa, NULL);
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
	fprintf(out, "%s %s (libupager %s), compare: upager against the kernel's swap%s\n", PROG,
		UPAGER_VERSION_STRING, upager_version(), o->quick ? " (--quick)" : "");
	fprintf(out, "machine  %ld CPUs%s%s, %s\n", m->nproc, m->cpu[0] ? ", " : "", m->cpu, m->kernel);
	fprintf(out, "store    %s; directory %s (%s)\n", m->store, sdir, fs_name(sdir));
	if (snote[0])
		fprintf(out, "note     %s\n", snote);
	fprintf(out, "memory   ram %s, data %s (%.1fx), page %s, policy %s, random accesses %" PRIu64 " per run%s\n",
		ram, data, (double)o->data / (double)o->ram, page, cfg->policy, o->accesses,
		o->page != 4096 ? " (the kernel side always pages 4 KiB)" : "");
	fprintf(out, "runtime  %u handler thread%s, readahead %u pages, fault-around %u pages, io depth %u, seed %" PRIu64 "\n",
		cfg->handler_threads, cfg->handler_threads == 1 ? "" : "s", cfg->readahead_max, cfg->fault_around,
		cfg->io_depth, o->seed);
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

int compare_main(const struct upager_config *cfg, const struct opts *o, FILE *csv, FILE *json)
{
	uint64_t t_all = now_ns();
	struct machine m;
	machine_probe(&m, cfg);
	char sdir[512], snote[400];
	store_dir(cfg, sdir, sizeof sdir, snote, sizeof snote);
	undo_install();
	if (geteuid() == 0)
		swap_remove_stale();
	print_compare_header(stdout, &m, cfg, o, sdir, snote);

	struct kernel_side ks;
	memset(&ks, 0, sizeof ks);
	if (!o->quiet && !o->no_kernel)
		fprintf(stderr, "%s: setting up the kernel side (cgroup, swap file) ...\n", PROG);
	kernel_setup(&ks, o, sdir);
	print_kernel_side(stdout, &ks);

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
		"kernel/s, upager/s: page accesses per second in the timed phase (fill and verification untimed);\n"
		"ratio: upager/kernel.  upg-p50/p99, krn-p50/p99: client latency (us) of sampled accesses that began\n"
		"on an unmapped page (1 access in %u timed, mincore() before each).  krn-cpu, upg-cpu: process CPU\n"
		"(user+system, all threads, the workload's own work included) per major fault, us (-: fewer major\n"
		"faults than 1%% of accesses); upg-thr: upager's own threads alone; upg-poll: of upg-cpu, the\n"
		"handlers' polling for store reads to complete (device wait spent on a CPU instead of asleep,\n"
		"UPAGER_POLL_US).  upg-evict: the evictor thread's CPU per page it evicted, us (a clean page\n"
		"dropped counts as evicted).  krn-maj, upg-maj: major faults (kernel: getrusage; upager: store\n"
		"reads; readahead pages not counted on either side).\n\n",
		SAMPLE_EVERY);
	print_pair_header(stdout);

	size_t cap = 0;
	unsigned tl[32];
	for (size_t w = 0; w < NWORKLOADS; w++)
		if (o->want[w])
			cap += plan_threads(o, &workloads[w], tl);
	struct pair *ps = calloc(cap ? cap : 1, sizeof *ps);
	if (!ps) {
		fprintf(stderr, PROG ": out of memory\n");
		kernel_teardown(&ks);
		return 1;
	}
	struct upager_backend ub;
	struct backend be;
	backend_upager(&be, &ub, cfg);
	size_t n = 0;
	bool data_ok = true, failed = false;
	for (size_t w = 0; w < NWORKLOADS && !failed; w++) {
		if (!o->want[w])
			continue;
		unsigned nt = plan_threads(o, &workloads[w], tl);
		for (unsigned t = 0; t < nt && !failed; t++) {
			struct pair *p = &ps[n];
			p->wl = &workloads[w];
			p->threads = tl[t];
			if (!o->quiet)
				fprintf(stderr, "%s: %s, %u thread%s:", PROG, p->wl->name, p->threads, p->threads == 1 ? "" : "s");
			if (ks.ready) {
				drop_caches();
				uint64_t t0 = now_ns();
				p->k_ok = run_kernel(&ks, o, p->wl, p->threads, &p->k, &p->klat, &p->nk, &p->k_life_cpu_s,
						     p->k_why, sizeof p->k_why) == 0;
				if (!o->quiet)
					fprintf(stderr, " kernel %.1f s", (now_ns() - t0) / 1e9);
				if (!p->k_ok)
					fprintf(stderr, "\n%s: kernel side of %s, %u thread%s failed: %s\n", PROG, p->wl->name,
						p->threads, p->threads == 1 ? "" : "s", p->k_why);
			} else {
				msgf(p->k_why, sizeof p->k_why, "%s", ks.why);
			}
			drop_caches();
			uint64_t t0 = now_ns();
			if (!o->quiet)
				fprintf(stderr, "%s upager", ks.ready ? "," : "");
			if (run_one(&be, o, p->wl, p->threads, &p->u, &p->ulat, &p->nu)) {
				free(p->klat);
				failed = true;
				break;
			}
			p->u_ok = true;
			n++;
			if (!o->quiet)
				fprintf(stderr, " %.1f s\n", (now_ns() - t0) / 1e9);
			print_pair(stdout, p);
			if (p->k_ok && p->k.bad_words) {
				data_ok = false;
				fprintf(stderr, PROG ": VERIFICATION FAILED under the kernel's swap: %s with %u thread%s: %"
					PRIu64 " wrong words\n", p->wl->name, p->threads, p->threads == 1 ? "" : "s",
					p->k.bad_words);
			}
			if (p->u.bad_words) {
				data_ok = false;
				fprintf(stderr, PROG ": VERIFICATION FAILED under upager: %s with %u thread%s: %" PRIu64
					" wrong words\n", p->wl->name, p->threads, p->threads == 1 ? "" : "s", p->u.bad_words);
			}
		}
	}
	bool kernel_ran = ks.ready;
	kernel_teardown(&ks);
	ks.ready = kernel_ran; /* for the report */

	const struct pair *sp = find_pair(ps, n, "seq-read", 0);
	if (sp && dev.ran)
		printf("\nupager seq-read: %.0f MB/s = %.0f%% of the store filesystem's sequential O_DIRECT bandwidth "
		       "(%.0f MB/s)\n", seq_mbs(sp, o->page), 100 * seq_mbs(sp, o->page) / dev.seq_mbs, dev.seq_mbs);
	if (sp && sp->k_ok && dev.ran)
		printf("kernel seq-read: %.0f MB/s = %.0f%% of it\n", sp->k.accesses_per_s * (double)o->page / 1e6,
		       100 * sp->k.accesses_per_s * (double)o->page / 1e6 / dev.seq_mbs);
	print_ceiling(stdout, ps, n, &dev);
	struct target tg[MAX_TARGETS];
	size_t ntg = targets_eval(ps, n, &dev, &ks, o->page, tg);
	print_targets(stdout, tg, ntg);
	double wall = (now_ns() - t_all) / 1e9;
	printf("\n%zu workload runs %s in %.0f s: %s\n", n, kernel_ran ? "on each side" : "(upager alone)", wall,
	       failed ? "STOPPED by an upager runtime failure" :
	       data_ok ? "every page verified" : "DATA ERRORS (see above)");
	fflush(stdout);

	int out_rc = 0;
	if (csv) {
		struct row *rows = calloc(2 * (n ? n : 1), sizeof *rows);
		size_t nr = 0;
		for (size_t i = 0; rows && i < n; i++) {
			if (ps[i].k_ok)
				rows[nr++] = ps[i].k;
			if (ps[i].u_ok)
				rows[nr++] = ps[i].u;
		}
		out_rc |= rows ? write_csv(csv, o->csv, rows, nr) : -ENOMEM;
		free(rows);
	}
	if (json)
		out_rc |= write_compare_json(json, o->json, ps, n, &m, cfg, o, &ks, &dev, sdir, tg, ntg,
					     data_ok && !failed, wall);
	if (o->plot) {
		int prc = write_plots(o->plot, ps, n, o);
		if (prc == 0)
			printf("charts: %s/throughput.png, %s/fault-latency-cdf.png, %s/fault-latency-cdf-vs-kernel.png\n",
			       o->plot, o->plot, o->plot);
		out_rc |= prc;
	}
	for (size_t i = 0; i < n; i++) {
		free(ps[i].klat);
		free(ps[i].ulat);
	}
	free(ps);
	return !data_ok || failed || out_rc ? 1 : 0;
}
