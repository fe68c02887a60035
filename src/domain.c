/* SPDX-License-Identifier: MIT */
/* A paging domain: the processes that share one RAM budget (see domain.h). */
#include "domain.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x3165657274677075ULL /* "upgtree1" */
#define AREA_LEN ((sizeof(struct upg_domain_area) + 4095) & ~(size_t)4095)

int upg_domain_create(const char *path, uint64_t budget, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot make the tree's budget file %s: %s", path, strerror(e));
		return -e;
	}
	int rc = 0;
	if (ftruncate(fd, (off_t)AREA_LEN)) {
		rc = -errno;
		snprintf(err, errlen, "cannot size the tree's budget file %s: %s", path, strerror(-rc));
		goto out;
	}
	struct upg_domain_area *a = mmap(NULL, AREA_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "cannot map the tree's budget file %s: %s", path, strerror(-rc));
		goto out;
	}
	a->budget = budget;
	__atomic_store_n(&a->magic, MAGIC, __ATOMIC_RELEASE);
	munmap(a, AREA_LEN);
out:
	close(fd);
	if (rc)
		unlink(path);
	return rc;
}

struct upg_domain_area *upg_domain_map(const char *path, size_t *len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	struct upg_domain_area *a = MAP_FAILED;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && (size_t)st.st_size == AREA_LEN)
		a = mmap(NULL, AREA_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (a == MAP_FAILED)
		return NULL;
	if (__atomic_load_n(&a->magic, __ATOMIC_ACQUIRE) != MAGIC) {
		munmap(a, AREA_LEN);
		return NULL;
	}
	*len = AREA_LEN;
	return a;
}

static void reap(struct upg_domain *d, struct upg_domain_slot *s, int32_t pid);

bool upg_domain_barred(const char *path)
{
	return path && *path && access(path, R_OK | W_OK) && (errno == EACCES || errno == EPERM);
}

int upg_domain_join(struct upg_domain *d, const char *path, uint64_t budget, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	/* Gone: the upager-run that made it has ended (this process outlived
	 * it, a daemon's child say).  Out of reach: this process runs as
	 * another user than upager-run (runuser, a daemon dropping root), and
	 * the file is upager-run's alone.  A budget of its own, then. */
	bool gone = path && *path && access(path, F_OK) && errno == ENOENT;
	bool barred = !gone && upg_domain_barred(path);
	if (!path || !*path || gone || barred) {
		d->a = mmap(NULL, AREA_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (d->a == MAP_FAILED) {
			d->a = NULL;
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		d->len = AREA_LEN;
		d->a->budget = budget;
		d->me = &d->a->slot[0];
		d->me->pid = getpid();
		d->a->joined = 1;
		return gone ? 1 : barred ? 2 : 0;
	}
	d->a = upg_domain_map(path, &d->len);
	if (!d->a) {
		snprintf(err, errlen, "UPAGER_TREE names %s, which is not a tree's budget file made by upager-run "
			 "(unset UPAGER_TREE, or start the program with upager-run)", path);
		return -EINVAL;
	}
	d->shared = true;
	int32_t pid = getpid();
	/* A slot of this pid from another program image is this process's
	 * own before it exec'd: what it held went with the old image. */
	static uint64_t image;
	if (!image) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		image = ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) ^ ((uint64_t)(uintptr_t)&ts << 17) ^
			(uint64_t)pid << 40;
		image |= 1;
	}
	for (unsigned i = 0; i < UPG_DOMAIN_SLOTS; i++)
		if (__atomic_load_n(&d->a->slot[i].pid, __ATOMIC_ACQUIRE) == pid &&
		    __atomic_load_n(&d->a->slot[i].image, __ATOMIC_RELAXED) != image)
			reap(d, &d->a->slot[i], pid);
	for (unsigned i = 0; i < UPG_DOMAIN_SLOTS; i++) {
		int32_t free_pid = 0;
		struct upg_domain_slot *s = &d->a->slot[i];
		if (__atomic_compare_exchange_n(&s->pid, &free_pid, pid, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			__atomic_store_n(&s->resident, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->shares_with, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->peak, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->last_in_ns, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->image, image, __ATOMIC_RELAXED);
			memset(&s->live, 0, sizeof s->live);
			__atomic_fetch_add(&d->a->joined, 1, __ATOMIC_RELAXED);
			d->me = s;
			return 0;
		}
	}
	munmap(d->a, d->len);
	d->a = NULL;
	snprintf(err, errlen, "the tree in %s already has %u processes paged by upager, the most one budget serves",
		 path, UPG_DOMAIN_SLOTS);
	return -EUSERS;
}

void upg_domain_leave(struct upg_domain *d)
{
	if (!d->a)
		return;
	if (d->shared) {
		uint64_t r = __atomic_exchange_n(&d->me->resident, 0, __ATOMIC_RELAXED);
		__atomic_fetch_sub(&d->a->total, r, __ATOMIC_RELAXED);
		__atomic_store_n(&d->me->shares_with, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&d->me->pid, 0, __ATOMIC_RELEASE);
	}
	munmap(d->a, d->len);
	d->a = NULL;
}

void upg_domain_publish(struct upg_domain *d, const struct upg_domain_live *live)
{
	if (!d->a || !d->shared)
		return;
	struct upg_domain_live *l = &d->me->live;
	uint32_t seq = __atomic_load_n(&l->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&l->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	struct upg_domain_live copy = *live;
	copy.seq = seq + 1;
	memcpy(l, &copy, sizeof copy);
	__atomic_store_n(&l->seq, seq + 2, __ATOMIC_RELEASE);
}

bool upg_domain_read_live(const struct upg_domain_slot *slot, struct upg_domain_live *out)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t a = __atomic_load_n(&slot->live.seq, __ATOMIC_ACQUIRE);
		if (a & 1)
			continue;
		memcpy(out, (const void *)&slot->live, sizeof *out);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&slot->live.seq, __ATOMIC_RELAXED) == a)
			return a != 0;
	}
	return false;
}

static void raise_peak(uint64_t *peak, uint64_t v)
{
	uint64_t old = __atomic_load_n(peak, __ATOMIC_RELAXED);
	while (v > old && !__atomic_compare_exchange_n(peak, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

uint64_t upg_domain_reserve(struct upg_domain *d, uint64_t n, uint32_t psize, bool force)
{
	uint64_t budget = d->a->budget;
	uint64_t t = __atomic_load_n(&d->a->total, __ATOMIC_RELAXED), k;
	do {
		if (force)
			k = n;
		else if (t >= budget)
			return 0;
		else
			k = (budget - t) / psize < n ? (budget - t) / psize : n;
		if (!k)
			return 0;
	} while (!__atomic_compare_exchange_n(&d->a->total, &t, t + k * psize, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	raise_peak(&d->a->peak, t + k * psize);
	return k;
}

void upg_domain_unreserve(struct upg_domain *d, uint64_t bytes)
{
	__atomic_fetch_sub(&d->a->total, bytes, __ATOMIC_RELAXED);
}

void upg_domain_add(struct upg_domain *d, int64_t bytes, uint64_t reserved, uint64_t now_ns)
{
	uint64_t mine = __atomic_add_fetch(&d->me->resident, (uint64_t)bytes, __ATOMIC_RELAXED);
	if (bytes < 0) {
		__atomic_fetch_add(&d->a->total, (uint64_t)bytes, __ATOMIC_RELAXED);
		return;
	}
	uint64_t total = __atomic_add_fetch(&d->a->total, (uint64_t)bytes - reserved, __ATOMIC_RELAXED);
	__atomic_store_n(&d->me->last_in_ns, now_ns, __ATOMIC_RELAXED);
	raise_peak(&d->me->peak, mine);
	raise_peak(&d->a->peak, total);
}

/* Has pid exited?  A zombie has: its pages are freed, though its parent
 * has not waited for it yet (and may be waiting for a page itself). */
static bool exited(int32_t pid, bool look_closer)
{
	if (kill(pid, 0) && errno == ESRCH)
		return true;
	if (!look_closer)
		return false;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	const char *paren = strrchr(buf, ')');  /* the name may hold anything */
	return paren && (paren[2] == 'Z' || paren[2] == 'X');
}

/* A member killed before it could leave: the kernel freed its pages. */
static void reap(struct upg_domain *d, struct upg_domain_slot *s, int32_t pid)
{
	if (!__atomic_compare_exchange_n(&s->pid, &pid, -1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;  /* someone else reaps it */
	uint64_t r = __atomic_exchange_n(&s->resident, 0, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&d->a->total, r, __ATOMIC_RELAXED);
	__atomic_store_n(&s->shares_with, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
}

/* Does a live member share pages with pid that pid's slot still counts?
 * Then the slot must stay until that member counts them itself: the
 * kernel freed pid's own pages, not those. */
static bool still_shared(struct upg_domain *d, int32_t pid)
{
	for (unsigned i = 0; i < UPG_DOMAIN_SLOTS; i++) {
		struct upg_domain_slot *s = &d->a->slot[i];
		int32_t who = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
		if (who > 0 && __atomic_load_n(&s->shares_with, __ATOMIC_ACQUIRE) == pid && !exited(who, false))
			return true;
	}
	return false;
}

bool upg_domain_should_evict(struct upg_domain *d, uint64_t now_ns, uint64_t over_since_ns)
{
	if (!d->shared || now_ns - over_since_ns >= UPG_DOMAIN_WAIT_NS)
		return true;
	/* Pages worth giving: a member holding less than this is left alone
	 * while others hold more. */
	const uint64_t least = 1ULL << 20;
	uint64_t my_in = __atomic_load_n(&d->me->last_in_ns, __ATOMIC_RELAXED);
	uint64_t oldest = UINT64_MAX;
	for (unsigned i = 0; i < UPG_DOMAIN_SLOTS; i++) {
		struct upg_domain_slot *s = &d->a->slot[i];
		int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
		if (pid <= 0 || s == d->me)
			continue;
		if (__atomic_load_n(&s->resident, __ATOMIC_RELAXED) < least)
			continue;
		uint64_t in = __atomic_load_n(&s->last_in_ns, __ATOMIC_RELAXED);
		if (in < oldest)
			oldest = in;
	}
	return my_in <= oldest || oldest == UINT64_MAX;
}

void upg_domain_reap(struct upg_domain *d, uint64_t now_ns)
{
	if (!d->shared)
		return;
	/* Zombies, by /proc, every 50 ms at most, among members that hold
	 * enough to matter. */
	static uint64_t last_look;
	bool closer = now_ns - __atomic_load_n(&last_look, __ATOMIC_RELAXED) >= 50ULL * 1000 * 1000;
	if (closer)
		__atomic_store_n(&last_look, now_ns, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < UPG_DOMAIN_SLOTS; i++) {
		struct upg_domain_slot *s = &d->a->slot[i];
		int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
		if (pid <= 0 || s == d->me)
			continue;
		bool big = __atomic_load_n(&s->resident, __ATOMIC_RELAXED) >= (1ULL << 20);
		if (exited(pid, closer && big) && !still_shared(d, pid))
			reap(d, s, pid);
	}
}
