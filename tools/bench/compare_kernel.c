/* SPDX-License-Identifier: MIT */
/*
 * Compare mode's kernel sides: a memory cgroup capped at the budget, a swap
 * file on the store's filesystem, and each workload run in a child inside
 * them over plain anonymous memory; zswap is switched on for the zswap
 * side's runs and off for the others.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* --- small file helpers: 0 or -errno --- */

/* Write val into dir/name (name alone when dir is NULL). */
static int write_str(const char *dir, const char *name, const char *val)
{
	char path[768];
	if (dir)
		snprintf(path, sizeof path, "%s/%s", dir, name);
	else
		snprintf(path, sizeof path, "%s", name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, val, strlen(val));
	int rc = n < 0 ? -errno : (size_t)n == strlen(val) ? 0 : -EIO;
	close(fd);
	return rc;
}

static int read_str(const char *dir, const char *name, char *buf, size_t len)
{
	char path[768];
	if (dir)
		snprintf(path, sizeof path, "%s/%s", dir, name);
	else
		snprintf(path, sizeof path, "%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static bool exists_in(const char *dir, const char *name)
{
	char path[768];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Is word one of the separator-delimited words of list? */
static bool has_word(const char *list, const char *word, const char *seps)
{
	size_t wl = strlen(word);
	for (const char *p = list; *p; ) {
		size_t n = strcspn(p, seps);
		if (n == wl && !strncmp(p, word, wl))
			return true;
		p += n;
		p += *p != 0;
	}
	return false;
}

/* --- memory cgroup --- */

/* Mount point of cgroup2 (version 2) or of the v1 hierarchy holding the
 * memory controller (version 1), and its root inside the hierarchy. */
static bool cg_mount(int version, char *mnt, size_t mlen, char *root, size_t rlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[2048];
	bool found = false;
	while (!found && f && fgets(line, sizeof line, f)) {
		char r[512], m[512], type[64], super[512];
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %511s %511s", r, m) != 2 ||
		    sscanf(dash + 3, "%63s %*s %511s", type, super) != 2)
			continue;
		if (version == 2 ? !strcmp(type, "cgroup2") : !strcmp(type, "cgroup") && has_word(super, "memory", ",")) {
			snprintf(mnt, mlen, "%s", m);
			snprintf(root, rlen, "%s", r);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* This process's cgroup in that hierarchy, as a path below its mount. */
static bool cg_self(int version, const char *root, char *path, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[1024];
	bool found = false;
	while (!found && f && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		/* "0::/path" for cgroup2; "N:ctrl,ctrl:/path" for v1. */
		bool match = version == 2 ? c1 == line + 1 && line[0] == '0' && c2 == c1 + 1
					  : has_word(c1 + 1, "memory", ",");
		if (!match)
			continue;
		const char *p = c2 + 1;
		size_t rl = strlen(root);
		if (strcmp(root, "/") && !strncmp(p, root, rl))
			p += rl;
		snprintf(path, len, "%s", p);
		found = true;
	}
	if (f)
		fclose(f);
	return found;
}

/* Remove cgroups "upager-bench-<pid>" under dir left by runs that died. */
static void cg_remove_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid;
		char tail;
		if (sscanf(e->d_name, "upager-bench-%d%c", &pid, &tail) != 1 || pid <= 0)
			continue;
		if (!pid_gone(pid))
			continue;
		char path[768];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
			continue;
		if (rmdir(path) == 0)
			fprintf(stderr, PROG ": removed the cgroup %s left by an earlier run\n", path);
	}
	if (d)
		closedir(d);
}

/* Try to make a memory cgroup below parent; 0 or -errno with why. */
static int cg_try(struct cgroup *cg, int version, const char *parent, uint64_t limit, char *why, size_t wlen)
{
	char buf[256];
	int rc;
	if (version == 2) {
		if (read_str(parent, "cgroup.controllers", buf, sizeof buf) || !has_word(buf, "memory", " ")) {
			msgf(why, wlen, "the cgroup2 group %s does not offer the memory controller", parent);
			return -ENOTSUP;
		}
		if (read_str(parent, "cgroup.subtree_control", buf, sizeof buf) || !has_word(buf, "memory", " ")) {
			rc = write_str(parent, "cgroup.subtree_control", "+memory");
			if (rc) {
				msgf(why, wlen, "cannot enable the memory controller in %s/cgroup.subtree_control: %s",
					 parent, strerror(-rc));
				return rc;
			}
		}
	}
	cg_remove_stale(parent);
	if ((size_t)snprintf(cg->path, sizeof cg->path, "%s/upager-bench-%d", parent, (int)getpid()) >= sizeof cg->path) {
		msgf(why, wlen, "the cgroup path %s is too long", parent);
		return -ENAMETOOLONG;
	}
	sigset_t old;
	signals_block(&old);
	if (mkdir(cg->path, 0755)) {
		rc = -errno;
		signals_restore(&old);
		msgf(why, wlen, "mkdir %s: %s", cg->path, strerror(-rc));
		return rc;
	}
	snprintf(undo->cgroup, sizeof undo->cgroup, "%s", cg->path);
	signals_restore(&old);

	char lim[32];
	snprintf(lim, sizeof lim, "%" PRIu64, limit);
	const char *file = version == 2 ? "memory.max" : "memory.limit_in_bytes";
	rc = write_str(cg->path, file, lim);
	if (rc) {
		msgf(why, wlen, "writing %s/%s: %s", cg->path, file, strerror(-rc));
		goto out_rmdir;
	}
	if (version == 2) {
		if (exists_in(cg->path, "memory.swap.max")) {
			rc = write_str(cg->path, "memory.swap.max", "max");
			if (rc) {
				msgf(why, wlen, "writing %s/memory.swap.max: %s", cg->path, strerror(-rc));
				goto out_rmdir;
			}
			snprintf(cg->swap, sizeof cg->swap, "memory.swap.max=max");
		} else {
			snprintf(cg->swap, sizeof cg->swap, "no memory.swap.max (swap accounting off: swap is not limited)");
		}
		/* zswap would keep "swapped" pages in compressed RAM: send them to the disk. */
		if (exists_in(cg->path, "memory.zswap.max") && write_str(cg->path, "memory.zswap.max", "0") == 0)
			snprintf(cg->swap + strlen(cg->swap), sizeof cg->swap - strlen(cg->swap), ", memory.zswap.max=0");
	} else if (exists_in(cg->path, "memory.memsw.limit_in_bytes")) {
		rc = write_str(cg->path, "memory.memsw.limit_in_bytes", "-1");
		if (rc) {
			msgf(why, wlen, "writing %s/memory.memsw.limit_in_bytes: %s", cg->path, strerror(-rc));
			goto out_rmdir;
		}
		snprintf(cg->swap, sizeof cg->swap, "memory.memsw.limit_in_bytes=unlimited");
	} else {
		snprintf(cg->swap, sizeof cg->swap, "no memory.memsw.limit_in_bytes (swap is not limited)");
	}
	if (read_str(cg->path, "memory.swappiness", cg->swappiness, sizeof cg->swappiness))
		read_str(NULL, "/proc/sys/vm/swappiness", cg->swappiness, sizeof cg->swappiness);
	cg->version = version;
	cg->limit = limit;
	return 0;

out_rmdir:
	signals_block(&old);
	rmdir(cg->path);
	undo->cgroup[0] = 0;
	signals_restore(&old);
	return rc;
}

/*
 * Make a memory cgroup capped at limit bytes with swap allowed: cgroup2 when
 * it has the memory controller, else the v1 memory hierarchy.  It goes below
 * this process's own cgroup when possible, so that limits set above us
 * still hold, else at the hierarchy's root.  0, or -errno with why.
 */
int cg_create(struct cgroup *cg, uint64_t limit, char *why, size_t wlen)
{
	int rc = -ENOENT;
	msgf(why, wlen, "no memory cgroup: neither a cgroup2 with the memory controller nor a cgroup v1 "
		 "memory hierarchy is mounted");
	for (int version = 2; version >= 1; version--) {
		char mnt[512], root[512], self[512], parent[1100];
		if (!cg_mount(version, mnt, sizeof mnt, root, sizeof root))
			continue;
		char first[512] = "";
		for (int at_root = 0; at_root < 2; at_root++) {
			if (!at_root && (!cg_self(version, root, self, sizeof self) || !strcmp(self, "/")))
				continue;
			snprintf(parent, sizeof parent, "%s%s", mnt, at_root ? "" : self);
			rc = cg_try(cg, version, parent, limit, why, wlen);
			if (!rc)
				return 0;
			if (!first[0])
				snprintf(first, sizeof first, "%s", why);
		}
		if (version == 2)
			continue; /* try v1 */
		if (first[0] && strcmp(first, why))
			snprintf(why + strlen(why), wlen - strlen(why), " (and below our own cgroup: %s)", first);
	}
	return rc;
}

/* Move pid into the cgroup. */
int cg_enter(const struct cgroup *cg, pid_t pid)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%d", (int)pid);
	return write_str(cg->path, "cgroup.procs", buf);
}

/* OOM kills the cgroup has seen, or 0. */
uint64_t cg_oom_kills(const struct cgroup *cg)
{
	char path[768], line[128];
	snprintf(path, sizeof path, "%s/%s", cg->path, cg->version == 2 ? "memory.events" : "memory.oom_control");
	FILE *f = fopen(path, "r");
	unsigned long long n = 0, v;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "oom_kill %llu", &v) == 1)
			n = v;
	if (f)
		fclose(f);
	return n;
}

/* Start a run with an empty cgroup and its peak afresh: v1's force_empty
 * drops what earlier children left charged (swap cache pages), and
 * memory.max_usage_in_bytes restarts.  v2 has neither (its memory.peak is
 * not per run before 6.12), so its peak is left at 0. */
void cg_peak_reset(const struct cgroup *cg)
{
	if (cg->version == 1) {
		write_str(cg->path, "memory.force_empty", "0");
		write_str(cg->path, "memory.max_usage_in_bytes", "0");
	}
}

uint64_t cg_peak(const struct cgroup *cg)
{
	char buf[32];
	if (cg->version != 1 || read_str(cg->path, "memory.max_usage_in_bytes", buf, sizeof buf))
		return 0;
	return strtoull(buf, NULL, 10);
}

/* --- swap file --- */
/* Write zeros over [0, bytes) of fd. */
static int write_zeros(int fd, uint64_t bytes)
{
	size_t chunk = 1 << 20;
	char *buf = calloc(1, chunk);
	if (!buf)
		return -ENOMEM;
	int rc = 0;
	for (uint64_t off = 0; off < bytes && !rc; ) {
		size_t n = bytes - off < chunk ? (size_t)(bytes - off) : chunk;
		ssize_t k = pwrite(fd, buf, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			rc = k < 0 ? -errno : -EIO;
		else
			off += (uint64_t)k;
	}
	free(buf);
	if (!rc && fsync(fd))
		rc = -errno;
	return rc;
}

/* Turn off and delete swap files "upager-bench-swap-<pid>" of dead runs. */
void swap_remove_stale(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[1024], path[1024];
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%1023s", path) != 1)
			continue;
		const char *base = strrchr(path, '/');
		int pid;
		char tail;
		if (!base || sscanf(base + 1, "upager-bench-swap-%d%c", &pid, &tail) != 1 || pid <= 0)
			continue;
		if (!pid_gone(pid))
			continue;
		if (swapoff(path) == 0) {
			unlink(path);
			fprintf(stderr, PROG ": turned off and removed the swap file %s left by an earlier run\n", path);
		}
	}
	if (f)
		fclose(f);
}

static int count_swaps(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[1024];
	int n = -1; /* the header line */
	while (f && fgets(line, sizeof line, f))
		n++;
	if (f)
		fclose(f);
	return n < 0 ? 0 : n;
}

static int mkswap_and_swapon(const char *path, char *why, size_t wlen)
{
	char out[400];
	const char *argv[] = { "mkswap", "-q", path, NULL };
	int st = run_cmd(argv, out, sizeof out);
	if (st) {
		if (st == 127)
			msgf(why, wlen, "mkswap was not found: install util-linux");
		else
			msgf(why, wlen, "mkswap %s failed (%d): %s", path, st < 0 ? st : st, out);
		return -EIO;
	}
	/* The highest priority, so the kernel pages to this file first even if
	 * other swap areas are active. */
	if (swapon(path, SWAP_FLAG_PREFER | (32767 & SWAP_FLAG_PRIO_MASK))) {
		int e = errno;
		msgf(why, wlen, "swapon %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* Create, format and enable a swap file of `bytes` in dir; 0 or -errno
 * with why.  fallocate() first; when swapon refuses that (some
 * filesystems do not swap on preallocated extents), zeros written out. */
static int swap_create(const char *dir, uint64_t bytes, struct swapfile *sw, char *why, size_t wlen)
{
	memset(sw, 0, sizeof *sw);
	sw->bytes = bytes;
	if ((size_t)snprintf(sw->path, sizeof sw->path, "%s/upager-bench-swap-%d", dir, (int)getpid()) >= sizeof sw->path) {
		msgf(why, wlen, "the directory name %s is too long", dir);
		return -ENAMETOOLONG;
	}
	sigset_t old;
	signals_block(&old);
	int fd = open(sw->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int e = errno;
	if (fd >= 0)
		snprintf(undo->swapfile, sizeof undo->swapfile, "%s", sw->path);
	signals_restore(&old);
	if (fd < 0) {
		msgf(why, wlen, "cannot create the swap file %s: %s", sw->path, strerror(e));
		return -e;
	}
	int rc;
	if (fallocate(fd, 0, 0, (off_t)bytes) == 0) {
		snprintf(sw->how, sizeof sw->how, "fallocate");
		rc = mkswap_and_swapon(sw->path, why, wlen);
	} else {
		rc = -EOPNOTSUPP;
	}
	if (rc == -EINVAL || rc == -EOPNOTSUPP) {
		/* swapon saw holes or unwritten extents, or no fallocate: zeros. */
		if (ftruncate(fd, 0) == 0 && (rc = write_zeros(fd, bytes)) == 0) {
			snprintf(sw->how, sizeof sw->how, "written with zeros");
			rc = mkswap_and_swapon(sw->path, why, wlen);
		} else if (rc) {
			msgf(why, wlen, "writing the swap file %s: %s", sw->path, strerror(-rc));
		}
	}
	close(fd);
	if (rc) {
		signals_block(&old);
		unlink(sw->path);
		undo->swapfile[0] = 0;
		signals_restore(&old);
		return rc;
	}
	undo->swap_on = 1;
	sw->others = count_swaps() - 1;
	return 0;
}

/* --- the kernel side: one workload in a child inside the cgroup --- */

struct child_msg {
	int rc;
	struct row row;
	uint64_t nlat;
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Bytes read, up to len (short at end of file). */
static size_t read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t k = read(fd, p + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	return got;
}

/*
 * Fork a child, move it into the cgroup before it touches any memory, and
 * have it run the workload over plain anonymous memory with the same
 * workload functions, hooks and counters as the upager side.  The child
 * sends back its row and its faulting-access latencies.  The child's CPU
 * over its whole life (wait4) goes to *life_cpu.  0, or -errno with why.
 */
int run_kernel(struct kernel_side *ks, const struct opts *o, const struct workload *wl, unsigned threads,
	       struct row *row, uint64_t **flat, size_t *nflat, double *life_cpu, char *why, size_t wlen)
{
	int go[2], res[2];
	if (pipe2(go, O_CLOEXEC))
		return msgf(why, wlen, "pipe: %s", strerror(errno)), -EIO;
	if (pipe2(res, O_CLOEXEC)) {
		close(go[0]);
		close(go[1]);
		return msgf(why, wlen, "pipe: %s", strerror(errno)), -EIO;
	}
	uint64_t ooms = cg_oom_kills(&ks->cg);
	cg_peak_reset(&ks->cg);
	pid_t parent = getpid();
	sigset_t old;
	signals_block(&old);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		child_signals(&old);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(3);
		close(go[1]);
		close(res[0]);
		char c;
		if (read_all(go[0], &c, 1) != 1)
			_exit(3); /* the parent could not move us into the cgroup */
		struct kernel_backend kb;
		struct backend be;
		backend_kernel(&be, &kb);
		snprintf(kb.usage_file, sizeof kb.usage_file, "%s/%s", ks->cg.path,
			 ks->cg.version == 2 ? "memory.current" : "memory.usage_in_bytes");
		struct child_msg m = { 0 };
		uint64_t *fl = NULL;
		size_t nf = 0;
		m.rc = run_one(&be, o, wl, threads, &m.row, &fl, &nf);
		m.nlat = nf;
		if (write_all(res[1], &m, sizeof m) || (nf && write_all(res[1], fl, nf * sizeof *fl)))
			_exit(4);
		_exit(0);
	}
	int e = errno;
	if (pid > 0)
		undo->child = pid;
	signals_restore(&old);
	close(go[0]);
	close(res[1]);
	if (pid < 0) {
		close(go[1]);
		close(res[0]);
		msgf(why, wlen, "fork: %s", strerror(e));
		return -e;
	}

	int rc = cg_enter(&ks->cg, pid);
	if (rc)
		msgf(why, wlen, "moving the child into %s: %s", ks->cg.path, strerror(-rc));
	else if (write_all(go[1], "g", 1))
		rc = -EIO;
	close(go[1]);

	struct child_msg m;
	uint64_t *fl = NULL;
	size_t got = rc ? 0 : read_all(res[0], &m, sizeof m);
	if (got == sizeof m && m.rc == 0) {
		fl = malloc((m.nlat ? m.nlat : 1) * sizeof *fl);
		if (!fl || read_all(res[0], fl, m.nlat * sizeof *fl) != m.nlat * sizeof *fl)
			got = 0;
	}
	close(res[0]);

	int st = 0;
	struct rusage ru = { 0 };
	if (rc)
		kill(pid, SIGKILL);
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	sigset_t o2;
	signals_block(&o2);
	undo->child = 0;
	signals_restore(&o2);
	*life_cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	if (rc) {
		free(fl);
		return rc;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) || got != sizeof m || m.rc) {
		if (WIFSIGNALED(st)) {
			uint64_t kills = cg_oom_kills(&ks->cg) - ooms;
			msgf(why, wlen, "the child was killed by signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
				 kills ? ": the cgroup's OOM killer (is the swap file full?)" : "");
		} else if (got == sizeof m && m.rc) {
			msgf(why, wlen, "the workload failed in the child: %s", strerror(-m.rc));
		} else {
			msgf(why, wlen, "the child exited with status %d without results", WEXITSTATUS(st));
		}
		free(fl);
		return -EIO;
	}
	*row = m.row;
	row->cgroup_peak = cg_peak(&ks->cg);
	*flat = fl;
	*nflat = m.nlat;
	return 0;
}

/* --- zswap --- */

/*
 * zswap's parameters are machine-wide, and so is vm.page-cluster, which the
 * zswap side's runs set to --zswap-page-cluster (0 by default): with the
 * kernel's 3, swap readahead from zswap filled the v1 cgroup with pages it
 * could not reclaim and the cgroup's OOM killer took the child in 1 to 3
 * of the random runs in 4 here (Linux 6.18; rand-read, rand-rmw and zipf,
 * at 16 MiB to 256 MiB budgets, every content), and readahead from RAM
 * saves no disk I/O anyway.  zswap_setup() records them in undo
 * (undo_zswap() in compare.c puts them back on every exit) and in a file
 * under /run, so that a run killed by SIGKILL is undone by the next one,
 * like its swap file and cgroup.  While another live upager-bench holds such
 * a file, zswap is left alone: two runs would each take the other's
 * settings for the machine's.
 */
#define STATE_DIR "/run"
#define STATE_PREFIX "upager-bench-zswap-"
#define DEBUGFS "/sys/kernel/debug"
#define DEBUGFS_MAGIC 0x64626720

/* The pid of a live upager-bench other than us that holds a state file, or 0. */
static pid_t zswap_owner(void)
{
	DIR *d = opendir(STATE_DIR);
	struct dirent *e;
	pid_t owner = 0;
	while (d && !owner && (e = readdir(d))) {
		int pid;
		char tail;
		if (sscanf(e->d_name, STATE_PREFIX "%d%c", &pid, &tail) == 1 && pid > 0 && pid != getpid() &&
		    !pid_gone(pid))
			owner = pid;
	}
	if (d)
		closedir(d);
	return owner;
}

/* Put zswap back as a run that died recorded it (its state file). */
void zswap_restore_stale(void)
{
	DIR *d = opendir(STATE_DIR);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid;
		char tail, path[300], buf[256], en[8] = "", comp[64] = "", pc[16] = "", pp[16] = "";
		if (sscanf(e->d_name, STATE_PREFIX "%d%c", &pid, &tail) != 1 || pid <= 0)
			continue;
		if (!pid_gone(pid))
			continue;
		snprintf(path, sizeof path, STATE_DIR "/%s", e->d_name);
		if (read_str(NULL, path, buf, sizeof buf) == 0) {
			/* One line: "enabled=Y compressor=lzo debugfs=1 page_cluster=3
			 * pool_percent=20" (the last, when it was changed). */
			int dbg = 0;
			sscanf(buf, "enabled=%7s compressor=%63s debugfs=%d page_cluster=%15s pool_percent=%15s", en, comp,
			       &dbg, pc, pp);
			if (pc[0] && strcmp(pc, "-"))
				write_str(NULL, PAGE_CLUSTER, pc);
			write_str(ZSWAP_PARAMS, "enabled", "N");
			if (pp[0] && strcmp(pp, "-"))
				write_str(ZSWAP_PARAMS, "max_pool_percent", pp);
			if (comp[0])
				write_str(ZSWAP_PARAMS, "compressor", comp);
			if (en[0])
				write_str(ZSWAP_PARAMS, "enabled", en);
			if (dbg)
				umount2(DEBUGFS, MNT_DETACH);
		}
		if (unlink(path) == 0)
			fprintf(stderr, PROG ": put zswap back as an earlier run (pid %d) found it: enabled %s, compressor %s, "
				"vm.page-cluster %s\n", pid, en[0] ? en : "?", comp[0] ? comp : "?", pc[0] ? pc : "?");
	}
	if (d)
		closedir(d);
}

/* Write the state file from undo; signals are blocked by the caller. */
static void state_write(void)
{
	if (!undo->zswap_state[0])
		snprintf(undo->zswap_state, sizeof undo->zswap_state, STATE_DIR "/" STATE_PREFIX "%d", (int)getpid());
	int fd = open(undo->zswap_state, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		undo->zswap_state[0] = 0; /* only a SIGKILL would miss it */
		return;
	}
	dprintf(fd, "enabled=%s compressor=%s debugfs=%d page_cluster=%s pool_percent=%s\n", undo->zswap_enabled,
		undo->zswap_compressor, (int)undo->debugfs_mounted, undo->page_cluster[0] ? undo->page_cluster : "-",
		undo->zswap_pool_percent[0] ? undo->zswap_pool_percent : "-");
	close(fd);
}

static bool debugfs_mounted(void)
{
	struct statfs sf;
	return statfs(DEBUGFS, &sf) == 0 && (unsigned long)sf.f_type == DEBUGFS_MAGIC;
}

/*
 * Where the zswap side's pool is (--zswap-pool): in a v1 memory cgroup,
 * which does not charge it, inside the budget means a pool of at most
 * fit_percent of the machine's RAM (zswap's own limit, in whole percent)
 * and a cgroup limit lower by that much.
 */
static void zswap_fit(struct zswap *zs, const struct kernel_side *ks, const struct opts *o)
{
	if (o->zswap_outside) {
		msgf(zs->fit_why, sizeof zs->fit_why, "--zswap-pool outside: its pool is extra RAM beyond the budget");
		return;
	}
	if (ks->cg.version == 2)
		return; /* charged to the cgroup: inside already */
	uint64_t one = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) / 100;
	unsigned pct = one ? (unsigned)(o->ram / 2 / one) : 0;
	if (pct < 1) {
		char b[32], r[32];
		human_size(o->ram, b, sizeof b);
		human_size(one, r, sizeof r);
		msgf(zs->fit_why, sizeof zs->fit_why, "a budget of %s cannot hold zswap's smallest pool limit "
		     "(max_pool_percent 1 = %s) in half of it: its pool stays outside the v1 cgroup, as extra RAM; "
		     "use --ram of at least 2%% of this machine's RAM for a like-for-like side", b, r);
		return;
	}
	sigset_t old;
	signals_block(&old);
	snprintf(undo->zswap_pool_percent, sizeof undo->zswap_pool_percent, "%s", zs->max_pool_percent);
	state_write();
	signals_restore(&old);
	zs->fit_percent = pct;
	zs->fit_bytes = one * pct;
}

/* The cgroup's memory limit; 0 or -errno. */
int cg_set_limit(const struct cgroup *cg, uint64_t limit)
{
	char lim[32];
	snprintf(lim, sizeof lim, "%" PRIu64, limit);
	return write_str(cg->path, cg->version == 2 ? "memory.max" : "memory.limit_in_bytes", lim);
}

/*
 * Make zswap ready for the kernel sides: record its parameters, turn it off
 * for the plain kernel side, and, when the zswap side is wanted, choose
 * ZSWAP_COMPRESSOR and make its pool's figures readable (mount debugfs if
 * it is not).  max_pool_percent, accept_threshold_percent and
 * shrinker_enabled are left as they are.
 */
void zswap_setup(struct zswap *zs, const struct kernel_side *ks, const struct opts *o)
{
	memset(zs, 0, sizeof *zs);
	bool want = o->side[SIDE_ZSWAP];
	if (!ks->ready) {
		msgf(zs->why, sizeof zs->why, "no kernel side (%s)", ks->why);
		return;
	}
	if (access(ZSWAP_PARAMS "/enabled", F_OK)) {
		msgf(zs->why, sizeof zs->why, "this kernel has no zswap (no " ZSWAP_PARAMS ": CONFIG_ZSWAP is off)");
		return;
	}
	if (read_str(ZSWAP_PARAMS, "enabled", zs->was_enabled, sizeof zs->was_enabled) ||
	    read_str(ZSWAP_PARAMS, "compressor", zs->was_compressor, sizeof zs->was_compressor)) {
		msgf(zs->why, sizeof zs->why, "cannot read zswap's parameters in " ZSWAP_PARAMS);
		return;
	}
	read_str(ZSWAP_PARAMS, "max_pool_percent", zs->max_pool_percent, sizeof zs->max_pool_percent);
	read_str(ZSWAP_PARAMS, "accept_threshold_percent", zs->accept_threshold, sizeof zs->accept_threshold);
	read_str(ZSWAP_PARAMS, "shrinker_enabled", zs->shrinker, sizeof zs->shrinker);
	if (read_str(NULL, PAGE_CLUSTER, zs->was_page_cluster, sizeof zs->was_page_cluster))
		snprintf(zs->was_page_cluster, sizeof zs->was_page_cluster, "?");
	pid_t owner = zswap_owner();
	if (owner) {
		msgf(zs->why, sizeof zs->why, "another upager-bench (pid %d) has changed zswap's parameters; "
			 "run one compare at a time", (int)owner);
		if (strcmp(zs->was_enabled, "N"))
			msgf(zs->note, sizeof zs->note, "zswap is on (left to pid %d): the kernel swap side has it too",
			     (int)owner);
		return;
	}
	if (!want && !strcmp(zs->was_enabled, "N")) {
		msgf(zs->why, sizeof zs->why, "not asked for (--sides)");
		return; /* off already: nothing to change */
	}

	sigset_t old;
	signals_block(&old);
	snprintf(undo->zswap_enabled, sizeof undo->zswap_enabled, "%s", zs->was_enabled);
	snprintf(undo->zswap_compressor, sizeof undo->zswap_compressor, "%s", zs->was_compressor);
	if (want && strcmp(zs->was_page_cluster, "?"))
		snprintf(undo->page_cluster, sizeof undo->page_cluster, "%s", zs->was_page_cluster);
	state_write();
	signals_restore(&old);
	zs->present = true;

	int rc = write_str(ZSWAP_PARAMS, "enabled", "N");
	if (rc) {
		msgf(zs->why, sizeof zs->why, "cannot switch zswap off (%s/enabled: %s)", ZSWAP_PARAMS, strerror(-rc));
		msgf(zs->note, sizeof zs->note, "zswap is on and cannot be switched off: the kernel swap side has it too");
		return;
	}
	if (!want) {
		msgf(zs->why, sizeof zs->why, "not asked for (--sides)");
		return;
	}
	rc = write_str(ZSWAP_PARAMS, "compressor", ZSWAP_COMPRESSOR);
	if (rc) {
		msgf(zs->why, sizeof zs->why, "the kernel refused zswap's compressor " ZSWAP_COMPRESSOR " (%s); "
			 "/proc/crypto lists the ones it has", strerror(-rc));
		return;
	}
	zs->debugfs = debugfs_mounted();
	if (!zs->debugfs) {
		signals_block(&old);
		if (mount("debugfs", DEBUGFS, "debugfs", 0, NULL) == 0) {
			undo->debugfs_mounted = 1;
			state_write();
			zs->mounted = zs->debugfs = true;
		} else {
			msgf(zs->note, sizeof zs->note, "cannot mount debugfs at " DEBUGFS " (%s): zswap's pool size and "
			     "whether the cgroup is charged for it are not known", strerror(errno));
		}
		signals_restore(&old);
	}
	zs->ready = true;
	zswap_fit(zs, ks, o);
}

/* Switch zswap on for the zswap side's run, off after it; 0 or -errno.
 * vm.page-cluster follows (see above), and on cgroup v2 the cgroup's
 * memory.zswap.max (kernel_setup set 0). */
int zswap_switch(struct zswap *zs, const struct kernel_side *ks, const struct opts *o, bool on)
{
	if (!zs->present)
		return -ENOTSUP;
	char pc[16];
	snprintf(pc, sizeof pc, "%u", o->zswap_page_cluster);
	int rc = undo->page_cluster[0] ? write_str(NULL, PAGE_CLUSTER, on ? pc : undo->page_cluster) : 0;
	if (rc)
		return rc;
	if (ks->cg.version == 2 && exists_in(ks->cg.path, "memory.zswap.max"))
		write_str(ks->cg.path, "memory.zswap.max", on ? "max" : "0");
	if (zs->fit_percent) {
		char p[16];
		snprintf(p, sizeof p, "%u", zs->fit_percent);
		rc = write_str(ZSWAP_PARAMS, "max_pool_percent", on ? p : undo->zswap_pool_percent);
		if (!rc)
			rc = cg_set_limit(&ks->cg, on ? ks->cg.limit - zs->fit_bytes : ks->cg.limit);
		if (rc)
			return rc;
	}
	return write_str(ZSWAP_PARAMS, "enabled", on ? "Y" : "N");
}

/* Put zswap's parameters back (and unmount debugfs if we mounted it), and
 * check that they read as before. */
void zswap_teardown(struct zswap *zs)
{
	if (!zs->present)
		return;
	undo_zswap();
	char en[8] = "?", comp[64] = "?", pc[16] = "?";
	read_str(ZSWAP_PARAMS, "enabled", en, sizeof en);
	read_str(ZSWAP_PARAMS, "compressor", comp, sizeof comp);
	read_str(NULL, PAGE_CLUSTER, pc, sizeof pc);
	if (strcmp(en, zs->was_enabled) || strcmp(comp, zs->was_compressor))
		fprintf(stderr, PROG ": warning: zswap reads enabled %s, compressor %s after putting back %s and %s: "
			"set them by hand in " ZSWAP_PARAMS "\n", en, comp, zs->was_enabled, zs->was_compressor);
	if (strcmp(pc, zs->was_page_cluster))
		fprintf(stderr, PROG ": warning: vm.page-cluster reads %s after putting back %s: set it by hand "
			"(sysctl vm.page-cluster=%s)\n", pc, zs->was_page_cluster, zs->was_page_cluster);
	if (zs->mounted && debugfs_mounted())
		fprintf(stderr, PROG ": warning: debugfs is still mounted at " DEBUGFS ", which this run mounted: "
			"umount " DEBUGFS "\n");
	zs->present = false;
}

void print_zswap(FILE *out, const struct zswap *zs, const struct opts *o)
{
	if (zs->note[0])
		fprintf(out, "zswap    note: %s\n", zs->note);
	if (!o->side[SIDE_ZSWAP])
		return;
	if (!zs->ready) {
		fprintf(out, "zswap    NOT RUN: %s\n", zs->why);
		return;
	}
	char most[32] = "?";
	long pct = atol(zs->max_pool_percent);
	if (pct > 0)
		human_size((uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) / 100 * (uint64_t)pct,
			   most, sizeof most);
	if (zs->fit_percent) {
		char fit[32];
		human_size(zs->fit_bytes, fit, sizeof fit);
		fprintf(out, "zswap    its pool inside the budget: max_pool_percent %u (%s; was %s) for its runs, and its "
			"cgroup's limit %s lower\n         (a v1 cgroup does not charge zswap's pool; --zswap-pool)\n",
			zs->fit_percent, fit, zs->max_pool_percent, fit);
	} else if (zs->fit_why[0]) {
		fprintf(out, "zswap    its pool OUTSIDE the budget: %s\n", zs->fit_why);
	}
	fprintf(out, "zswap    on for the kernel swap+zswap side's runs only (enabled was %s): compressor " ZSWAP_COMPRESSOR
		" (was %s); max_pool_percent %s (as found: a pool of up to %s of this machine's RAM),\n"
		"         accept_threshold_percent %s, shrinker_enabled %s (as found); vm.page-cluster %u for its runs (was %s;\n"
		"         see --zswap-page-cluster); all put back at the end%s\n",
		zs->was_enabled, zs->was_compressor, zs->max_pool_percent, most, zs->accept_threshold, zs->shrinker,
		o->zswap_page_cluster, zs->was_page_cluster,
		zs->mounted ? "; debugfs mounted at " DEBUGFS " for the pool's figures, unmounted at the end" :
		zs->debugfs ? "" : "; the pool's figures are not known (no debugfs)");
	fflush(out);
}

/* --- putting the kernel side in place, and its report --- */

/* The bracketed word of a sysfs choice file ("always [madvise] never"), or
 * its whole first line. */
static void sys_choice(const char *path, char *out, size_t len)
{
	char buf[256];
	if (read_str(NULL, path, buf, sizeof buf)) {
		snprintf(out, len, "?");
		return;
	}
	char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
	if (l && r)
		msgf(out, len, "%.*s", (int)(r - l - 1), l + 1);
	else
		msgf(out, len, "%s", buf);
}

/*
 * Put the kernel side in place: a memory cgroup and a swap file of
 * data + budget on the store's filesystem.  The cgroup's limit is the
 * budget plus an allowance for what upager keeps outside its budget but the
 * cgroup charges: the page tables of the whole region (8 bytes per 4 KiB)
 * and the workload's own bookkeeping arrays (5 bytes per page), plus 1 MiB
 * for stacks and the like.
 */
void kernel_setup(struct kernel_side *ks, const struct opts *o, const char *dir)
{
	char why[512];
	if (!o->side[SIDE_KERNEL] && !o->side[SIDE_ZSWAP]) {
		msgf(ks->why, sizeof ks->why, "not asked for (--sides or --no-kernel)");
		return;
	}
	if (geteuid() != 0) {
		msgf(ks->why, sizeof ks->why, "not running as root: creating a memory cgroup and enabling a swap "
			 "file need root (CAP_SYS_ADMIN); run " PROG " compare as root");
		return;
	}
	if (access("/proc/swaps", R_OK)) {
		msgf(ks->why, sizeof ks->why, "this kernel has no swap (no /proc/swaps: CONFIG_SWAP is off)");
		return;
	}
	if (is_ram_fs(dir)) {
		msgf(ks->why, sizeof ks->why, "the store directory %s is tmpfs: a swap file cannot live there", dir);
		return;
	}
	uint64_t swap_bytes = o->swap_bytes ? o->swap_bytes : o->data + o->ram;
	struct statvfs sv;
	uint64_t need = swap_bytes + (o->no_device ? 0 : o->device_bytes) + o->data + (64ULL << 20);
	if (statvfs(dir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < need) {
		char have[32], want[32];
		human_size((uint64_t)sv.f_bavail * sv.f_frsize, have, sizeof have);
		human_size(need, want, sizeof want);
		msgf(ks->why, sizeof ks->why, "%s has %s free; the swap file, the device test file and the store "
			 "need about %s: free space or point UPAGER_STORE / TMPDIR at a larger disk", dir, have, want);
		return;
	}
	uint64_t allow = o->data / 512 + o->data / o->page * 5 + (1ULL << 20);
	ks->allowance = (allow + (1ULL << 20) - 1) & ~((1ULL << 20) - 1);
	if (cg_create(&ks->cg, o->ram + ks->allowance, why, sizeof why)) {
		msgf(ks->why, sizeof ks->why, "cannot create a memory cgroup: %s", why);
		return;
	}
	if (swap_create(dir, swap_bytes, &ks->sw, why, sizeof why)) {
		msgf(ks->why, sizeof ks->why, "cannot enable a swap file: %s", why);
		undo_all();
		return;
	}
	ks->ready = true;
}

void kernel_teardown(struct kernel_side *ks)
{
	if (undo->swap_on) {
		if (swapoff(undo->swapfile))
			fprintf(stderr, PROG ": warning: swapoff %s: %s; turn it off by hand (swapoff %s) and remove it\n",
				undo->swapfile, strerror(errno), undo->swapfile);
		undo->swap_on = 0;
	}
	if (undo->cgroup[0]) {
		char path[512];
		snprintf(path, sizeof path, "%s", undo->cgroup);
		undo_all();
		if (access(path, F_OK) == 0)
			fprintf(stderr, PROG ": warning: could not remove the cgroup %s; rmdir it by hand\n", path);
	}
	undo_all();
	ks->ready = false;
}

void print_kernel_side(FILE *out, const struct kernel_side *ks)
{
	if (!ks->ready) {
		fprintf(out, "kernel   NOT RUN: %s; running upager alone\n", ks->why);
		return;
	}
	char lim[32], allow[32], sw[32], thp[32], cluster[16];
	human_size(ks->cg.limit, lim, sizeof lim);
	human_size(ks->allowance, allow, sizeof allow);
	human_size(ks->sw.bytes, sw, sizeof sw);
	sys_choice("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
	sys_choice("/proc/sys/vm/page-cluster", cluster, sizeof cluster);
	fprintf(out, "kernel   cgroup v%d %s\n", ks->cg.version, ks->cg.path);
	fprintf(out, "         %s %s = budget + %s (page tables and the workload's own arrays, which upager keeps "
		"outside its budget); %s; swappiness %s\n", ks->cg.version == 2 ? "memory.max" : "memory.limit_in_bytes",
		lim, allow, ks->cg.swap, ks->cg.swappiness);
	fprintf(out, "         swap file %s, %s (%s), priority 32767%s; page-cluster %s, THP %s\n",
		ks->sw.path, sw, ks->sw.how, ks->sw.others > 0 ? ", OTHER SWAP AREAS ARE ACTIVE" : "", cluster, thp);
	fflush(out);
}
