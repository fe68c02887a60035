/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child takes its own paging over.
 *
 * The child sees its memory as it was at fork time, pages in the store
 * included, and from then on it is a runtime like any other: its own
 * userfaultfd, handler and evictor threads, and a store of its own for what
 * it writes back, under its share of the budget (the tree's, under
 * upager-run).  What it inherited from the store stays where it is: the
 * child reads those blocks through the descriptor it inherited (an
 * ancestor's store, see upg_slot_store()), and the parent keeps them
 * frozen, neither overwritten nor reused, until the child and every process
 * that inherited them from it have exited or exec'd.  So no process waits
 * on another's threads: a parent killed with SIGKILL takes nothing from its
 * children, and a child that dies takes nothing from its parent.
 *
 * pthread_atfork handlers, for every open runtime:
 *   prepare: block signals (no handler may touch paged memory in the child
 *            before it has taken over), take fork_lock (the evictor's batch
 *            in flight ends), uffd_lock (no handler is between reading a
 *            fault and serving it) and up->lock; freeze the blocks of this
 *            process's own store that any page refers to (the child's
 *            snapshot), and make the hang-up pipe;
 *   parent:  keep the snapshot with the pipe's read end as a child record,
 *            which the first handler thread polls (upg_children_arm()), and
 *            release;
 *   child:   take over (takeover()).
 * Without UFFD_FEATURE_EVENT_FORK the kernel leaves the child's copies of
 * the regions unregistered; the child registers them with its own
 * userfaultfd before any of its code runs.
 */
#include "internal.h"
#include "options.h"
#include "uffd.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <liburing.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_RUNTIMES 64

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upager *runtimes[MAX_RUNTIMES];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static sigset_t fork_mask;  /* the forking thread's, while reg_lock is held */
static pid_t fork_parent;   /* who forks, for the child's share_pidfd */
static int fork_internal;   /* its upg_internal_thread, likewise */

/* mmap, not malloc: the forking thread may hold glibc's malloc locks
 * (fork() takes them around the syscall). */
static struct upg_snap *snap_alloc(uint64_t n, size_t *len)
{
	*len = ((n ? n : 1) * sizeof(struct upg_snap) + 4095) & ~(size_t)4095;
	void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The pages whose copy is in this process's own store: a child may read
 * any of them (a resident clean page too, once it has dropped it).  Writes
 * them to out when it is not NULL; returns how many.  Lock held. */
static uint64_t own_stored_pages(struct upager *up, struct upg_snap *out)
{
	uint64_t k = 0;
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		for (uint64_t pg = upg_pte_next(r, 0); pg < r->npages; pg = upg_pte_next(r, pg)) {
			struct upg_pte *p = &r->pte[pg];
			if (p->slot && !upg_slot_store(p->slot) && !(p->flags & PF_DISCARDED)) {
				if (out)
					out[k] = (struct upg_snap){ .slot = p->slot, .psize = r->psize };
				k++;
			}
			pg++;
		}
	}
	return k;
}

/* The record of the child about to be forked: its snapshot, frozen, and
 * the hang-up pipe.  Lock held.  NULL when out of memory: the child then
 * reads blocks the parent may reuse, and the checksums (or tags) turn what
 * changed into SIGBUS in the child, never into wrong data. */
static struct upg_child *child_record(struct upager *up)
{
	struct upg_child *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	int p[2];
	c->snap = snap_alloc(own_stored_pages(up, NULL), &c->snap_len);
	if (!c->snap || pipe2(p, O_CLOEXEC)) {
		if (c->snap)
			munmap(c->snap, c->snap_len);
		munmap(c, sizeof *c);
		return NULL;
	}
	c->nsnap = own_stored_pages(up, c->snap);
	for (uint64_t i = 0; i < c->nsnap; i++)
		upg_store_freeze(&up->store, upg_slot_block(c->snap[i].slot), c->snap[i].psize / UPG_BLOCK);
	c->hup_fd = p[0];
	up->fork_hup_wr = p[1];
	return c;
}

/* Memory glibc's fork() touches after the fork handlers have run, with
 * this runtime's locks held: in the parent its NSS state (made by the
 * first getpwnam() and the like, read under that state's lock), in the
 * child, before child() runs, the lock of every open FILE.  All of it is
 * malloc'd, so in a region here: a fault in the parent could never be
 * served, and the child, not yet registered, would read zeros (and crash
 * following a FILE's null lock pointer).  Reading it all first brings it
 * into RAM while faults are still served; the evictor, held off by
 * fork_lock, cannot take it away before the fork.  The NSS lookup is
 * glibc's private one (2.33 and later); without it, that part is not
 * done. */
static bool (*nss_get)(int, void *);
static FILE **files;
static void (*files_lock)(void), (*files_unlock)(void);

static void touch_glibc_state(void)
{
	void *actions;
	if (nss_get)
		nss_get(0, &actions);
	/* The child's own threads, at their start (__ctype_init()), read the
	 * global locale's LC_CTYPE data, which a program's setlocale() has
	 * malloc'd: evicted, it is a fault that no thread of the child could
	 * serve yet (python3's os.fork() at a 16 MiB budget hung so every
	 * time). */
	locale_t was = uselocale(LC_GLOBAL_LOCALE);
	(void)nl_langinfo(_NL_ITEM(LC_CTYPE, 0));
	(void)nl_langinfo(_NL_ITEM(LC_CTYPE, _NL_NUM_LC_CTYPE - 1));
	uselocale(was);
	if (files && files_lock && files_unlock) {
		files_lock();
		for (volatile FILE *f = *files; f; f = f->_chain)
			if (f->_lock)
				(void)*(volatile char *)f->_lock;
		files_unlock();
	}
}

static void prepare(void)
{
	fork_parent = getpid();
	sigset_t all;
	sigfillset(&all);
	pthread_mutex_lock(&reg_lock);
	pthread_sigmask(SIG_BLOCK, &all, &fork_mask);
	/* From here to the end of parent() or child(): upager's own work.
	 * What it maps and allocates goes to the kernel and to glibc (whose
	 * malloc fork() has made usable again in the child before child()
	 * runs; the preload's jemalloc may not be yet: its own fork handler
	 * may come after ours). */
	fork_internal = upg_internal_thread;
	upg_internal_thread = 1;
	/* No eviction from here on, so faults are let in over the budget
	 * until parent() (the few pages fork() itself touches). */
	for (int i = 0; i < MAX_RUNTIMES; i++)
		if (runtimes[i]) {
			pthread_mutex_lock(&runtimes[i]->fork_lock);
			__atomic_store_n(&runtimes[i]->fork_admit, true, __ATOMIC_RELAXED);
			upg_redis_fork_prepare(runtimes[i]->redis);
		}
	touch_glibc_state();
	for (int i = 0; i < MAX_RUNTIMES; i++) {
		struct upager *up = runtimes[i];
		if (!up)
			continue;
		pthread_mutex_lock(&up->uffd_lock);
		pthread_mutex_lock(&up->lock);
		up->fork_child = child_record(up);
		if (!up->fork_child)
			upg_log(up, UPAGER_LOG_ERROR, "out of memory recording a forked child's pages: pages the "
				"parent rewrites may raise SIGBUS in the child");
	}
}

static void parent(void)
{
	for (int i = 0; i < MAX_RUNTIMES; i++) {
		struct upager *up = runtimes[i];
		if (!up)
			continue;
		struct upg_child *c = up->fork_child;
		up->fork_child = NULL;
		if (up->fork_hup_wr >= 0)
			close(up->fork_hup_wr);
		up->fork_hup_wr = -1;
		if (c) {
			c->next = up->children;
			up->children = c;
			upg_kick_handlers(up);  /* the first one polls its pipe */
		}
		__atomic_store_n(&up->fork_admit, false, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&up->lock);
		pthread_mutex_unlock(&up->uffd_lock);
		pthread_mutex_unlock(&up->fork_lock);
	}
	upg_internal_thread = fork_internal;
	pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
	pthread_mutex_unlock(&reg_lock);
}

/* ---- the child's side ---- */

/* The address ranges mapped in this process, from /proc/self/maps: a
 * region can have holes here that the parent has not (MADV_DONTFORK, as V8
 * uses).  With wiped, from /proc/self/smaps, and the mappings advised
 * MADV_WIPEONFORK (VmFlags "wf") also go in wiped: the kernel gave the
 * child them empty, so their pages read as zeros, not as the parent's (they
 * stay registered and paged).  mmap'd, sorted. */
struct ranges {
	struct { uintptr_t lo, hi; } *r;
	size_t n, len;
};

static int ranges_init(struct ranges *out)
{
	out->n = 0;
	out->len = 1 << 20;
	out->r = mmap(NULL, out->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return out->r == MAP_FAILED ? -ENOMEM : 0;
}

/* false: no room (more mappings than vm.max_map_count's default). */
static bool ranges_add(struct ranges *out, uintptr_t lo, uintptr_t hi)
{
	if (out->n && out->r[out->n - 1].hi == lo)
		out->r[out->n - 1].hi = hi;
	else if (out->n < out->len / sizeof out->r[0])
		out->r[out->n].lo = lo, out->r[out->n++].hi = hi;
	else
		return false;
	return true;
}

static int read_maps(struct ranges *out, struct ranges *wiped)
{
	int fd = open(wiped ? "/proc/self/smaps" : "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char *buf = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ranges_init(out) || (wiped && ranges_init(wiped)) || buf == MAP_FAILED) {
		close(fd);
		return -ENOMEM;
	}
	size_t have = 0;
	bool room = true;
	unsigned long lo = 0, hi = 0;  /* the mapping whose lines smaps is giving */
	for (;;) {
		ssize_t got = read(fd, buf + have, (1 << 16) - 1 - have);
		if (got <= 0)
			break;
		have += (size_t)got;
		buf[have] = 0;
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			unsigned long a, b;
			if (sscanf(line, "%lx-%lx", &a, &b) == 2) {
				lo = a, hi = b;
				room &= ranges_add(out, lo, hi);
			} else if (wiped && !strncmp(line, "VmFlags:", 8) && strstr(line, " wf")) {
				room &= ranges_add(wiped, lo, hi);
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
	}
	close(fd);
	munmap(buf, 1 << 16);
	return room ? 0 : -E2BIG;
}

static bool mapped(const struct ranges *m, uintptr_t a)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a < m->r[mid].lo)
			hi = mid;
		else if (a >= m->r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* Drop a page's RAM bookkeeping here: only this process's count (the
 * domain is joined afresh afterwards).  Frames enter the policy when a
 * fill or read completes: a page between states has none there. */
static void forget_resident(struct upager *up, struct upg_pte *p, uint32_t psize)
{
	if (p->frame != UPG_NOFRAME && p->state == PG_RESIDENT)
		up->pol_ops->remove(up->pol, p->frame);
	upg_frame_release(up, p);
	up->resident -= psize;
}

/* Free pool object h here, as forget_resident(): this process's count
 * only. */
static void forget_pooled(struct upager *up, uint32_t h)
{
	uint64_t before = up->pool.bytes;
	upg_pool_free(&up->pool, h);
	up->resident -= before - up->pool.bytes;
}

/* Make every page's record true in this process: pages a handler of the
 * parent was between states are not in our memory, and slots move one
 * store down the line.  Before the regions are registered: a zap here
 * raises no event. */
static void fix_pages(struct upager *up, const struct ranges *m, const struct ranges *wiped, bool shared)
{
	up->uncharged = 0;
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		r->busy = 0;
		uint64_t run = 0, first = 0;  /* pages in the store, in a row */
		for (uint64_t pg = upg_pte_next(r, 0);; pg = upg_pte_next(r, pg)) {
			struct upg_pte *p = pg < r->npages ? &r->pte[pg] : NULL;
			/* glibc's fork() writes to the child's memory before
			 * child() runs (the lock of every open FILE): on a page
			 * in the store that made a zero page with a lock in it.
			 * Out with it; the page comes back from the store. */
			bool away = p && (p->state == PG_STORED || p->state == PG_POOLED);
			if (run && (!away || first + run != pg)) {
				madvise((void *)(r->base + (first << r->pshift)), run << r->pshift, MADV_DONTNEED);
				run = 0;
			}
			if (!p)
				break;
			if (away && !run++)
				first = pg;
			uintptr_t a = r->base + (pg << r->pshift);
			if (p->slot)
				p->slot += 1u << UPG_SLOT_STORE_SHIFT;
			p->flags &= (uint8_t)~(PF_DEFERRED | PF_SHARED);
			bool gone = !mapped(m, a) || mapped(wiped, a) || (p->flags & PF_DISCARDED);
			if (upg_pte_poolcopy(p)) {
				/* A pool copy of a page in RAM: this process's pool
				 * is a copy of the parent's, so it holds it too, but
				 * the page is left to leave as a written one would
				 * (this process's count only, as forget_resident()). */
				forget_pooled(up, p->evict_seq);
				p->evict_seq = 0;
				p->flags &= (uint8_t)~PF_POOLCOPY;
			}
			switch (p->state) {
			case PG_READING:
				if (p->flags & PF_POOLREAD) {
					/* Its parent was reading it from the pool,
					 * whose copy here still holds it. */
					madvise((void *)a, r->psize, MADV_DONTNEED);
					forget_resident(up, p, r->psize);
					p->frame = p->evict_seq;
					p->evict_seq = 0;
					p->state = PG_POOLED;
					break;
				}
				/* fall through */
			case PG_FILLING:
			case PG_EVICTING:
				/* Not ours to finish: a zero fill is redone, a read
				 * comes from the slot, which holds its data. */
				madvise((void *)a, r->psize, MADV_DONTNEED);
				forget_resident(up, p, r->psize);
				p->state = PG_STORED;
				break;
			case PG_RESIDENT:
				if (gone) {
					forget_resident(up, p, r->psize);
					p->state = PG_STORED;
				}
				break;
			default:
				break;
			}
			if (p->flags & PF_ZAPWAIT)
				madvise((void *)a, r->psize, MADV_DONTNEED);  /* the discard's zap, if not landed */
			if (gone && p->state == PG_POOLED) {
				forget_pooled(up, p->frame);
				p->frame = UPG_NOFRAME;
				p->state = PG_NONE;
			}
			if (gone || !p->slot) {
				if (p->state == PG_STORED)
					p->state = PG_NONE;
				if (gone)
					p->slot = 0, p->zmask = 0;
			}
			p->flags &= (uint8_t)~(PF_ZAPWAIT | PF_DISCARDED | PF_POOLREAD | PF_SPILL);
			if (p->state == PG_RESIDENT && shared) {
				p->flags |= PF_SHARED;
				up->uncharged += r->psize;
			}
			pg++;
		}
	}
	up->retry_count = 0;
	up->retry_head = 0;
}

/* Write-protect the pages shared with the parent, in runs. */
static void protect_shared(struct upager *up)
{
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		uint64_t run = 0, first = 0;
		for (uint64_t pg = upg_pte_next(r, 0);; pg = upg_pte_next(r, pg + 1)) {
			struct upg_pte *p = pg < r->npages ? &r->pte[pg] : NULL;
			if (p && (p->flags & PF_SHARED) && (!run || first + run == pg)) {
				if (!run++)
					first = pg;
				continue;
			}
			if (run) {
				int rc = upg_uffd_writeprotect(up->uffd, r->base + (first << r->pshift),
							       run << r->pshift, true);
				if (rc)
					upg_fatal(up, "a forked child cannot write-protect its inherited pages: %s",
						  strerror(-rc));
				run = 0;
			}
			if (!p)
				break;
			if (p->flags & PF_SHARED)
				run = 1, first = pg;
		}
	}
}

static void takeover(struct upager *up)
{
	char err[512] = "";
	/* The parent's threads and locks are not here. */
	upg_sync_init(up);
	/* Its userfaultfd acts on the parent's memory: not ours to touch. */
	close(up->uffd);
	up->uffd = -1;
	if (up->pagemap_fd >= 0)
		close(up->pagemap_fd);
	up->pagemap_fd = -1;
	upg_evictor_forget(up);
	upg_handlers_forget(up);
	/* The parent's children are its own; their pipes' read ends too. */
	upg_children_free(up);
	if (up->fork_child) {
		close(up->fork_child->hup_fd);
		munmap(up->fork_child->snap, up->fork_child->snap_len);
		munmap(up->fork_child, sizeof *up->fork_child);
		up->fork_child = NULL;
	}
	/* fork_hup_wr stays open: while it (or a copy in our own children)
	 * is, the parent keeps our inherited blocks frozen.  It closes on
	 * exec, which needs none of them. */

	/* The parent's store becomes the nearest ancestor's. */
	if (up->nanc == UPG_ANCESTORS)
		upg_fatal(up, "a process forked (without exec) from a line of %u forked processes: upager follows "
			  "at most %u", UPG_ANCESTORS, UPG_ANCESTORS);
	memmove(&up->anc[1], &up->anc[0], up->nanc * sizeof up->anc[0]);
	up->anc[0].fd = up->store.fd;
	up->anc[0].seal = up->seal;
	up->nanc++;
	upg_store_forget(&up->store);

	/* smaps costs more: read only once a region was advised
	 * MADV_WIPEONFORK (through the preload's madvise()). */
	struct ranges m = { 0 }, w = { 0 };
	bool wiped = __atomic_load_n(&up->wipe_advised, __ATOMIC_RELAXED);
	int rm = read_maps(&m, wiped ? &w : NULL);
	if (rm)
		upg_fatal(up, "a forked child cannot read /proc/self/%s: %s", wiped ? "smaps" : "maps",
			  rm == -E2BIG ? "more than 65536 mappings, more than upager follows" : strerror(-rm));
	/* Pages in RAM are the parent's too (copy-on-write), and it is
	 * charged for them: ours to count once we write one, which a
	 * write-protect fault tells (without write-protect faults, never). */
	bool wp = up->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	fix_pages(up, &m, &w, wp);
	memset(&up->c, 0, sizeof up->c);
	memset(&up->hist, 0, sizeof up->hist);
	upg_fc_forget(&up->fc);
	up->knee_for = 0;
	upg_stall_init(&up->stall, upg_now_ns());
	up->threads_look_ns = 0;
	up->resident_peak = up->resident;
	up->evict_stuck = false;
	up->fork_admit = false;
	up->evict_wanted = false;
	up->stopping = false;
	up->admitted = 0;
	up->nown_zap = 0;

	if (upg_store_open(&up->store, up->store_path, up->cfg.store_max, err, sizeof err) ||
	    upg_seal_init(&up->seal, up->store.max_blocks, up->cfg.encrypt, err, sizeof err) ||
	    (up->redis && upg_redis_fork_child(up->redis, err, sizeof err)))
		upg_fatal(up, "a forked child cannot open its store: %s", err);
	uint64_t features;
	if (upg_uffd_open(&up->uffd, &features, err, sizeof err))
		upg_fatal(up, "a forked child cannot open its userfaultfd: %s", err);
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		/* Only the parts mapped here (MADV_DONTFORK leaves holes). */
		for (size_t k = 0; k < m.n; k++) {
			uintptr_t lo = m.r[k].lo > r->base ? m.r[k].lo : r->base;
			uintptr_t hi = m.r[k].hi < r->base + r->len ? m.r[k].hi : r->base + r->len;
			if (lo >= hi)
				continue;
			int rc = upg_uffd_register(up->uffd, lo, hi - lo, wp);
			if (rc)
				upg_fatal(up, "a forked child cannot register %#lx-%#lx: %s", (unsigned long)lo,
					  (unsigned long)hi, strerror(-rc));
		}
	}
	munmap(m.r, m.len);
	if (w.r)
		munmap(w.r, w.len);
	if (wp)
		protect_shared(up);
	up->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	/* A member of the budget on its own account. */
	munmap(up->dom.a, up->dom.len);
	if (upg_domain_join(&up->dom, secure_getenv("UPAGER_TREE"), up->budget, err, sizeof err) < 0)
		upg_fatal(up, "a forked child cannot join its tree's budget: %s", err);
	/* The pool is shared copy-on-write too, and counted in the parent:
	 * a child that execs (most do) never owns it. */
	up->pool_unowned = up->pool.bytes > 0;
	upg_domain_add(&up->dom, (int64_t)(up->resident - up->uncharged - up->pool.bytes), 0, upg_now_ns());
	/* The pages shared with the parent are counted there while it
	 * lives; the evictor watches for its end (a parent killed while this
	 * child runs on).  Gone already: they are ours now. */
	if (up->share_pidfd >= 0)
		close(up->share_pidfd);
	up->share_pidfd = -1;
	if (upg_uncounted(up)) {
		/* Pinned first: the parent's slot is not reaped when it exits
		 * until this child has counted what it shares (evict.c). */
		upg_domain_shares_with(&up->dom, fork_parent);
		up->share_pidfd = (int)syscall(SYS_pidfd_open, fork_parent, 0);
		if (up->share_pidfd < 0) {
			upg_shared_charge_all(up);
			upg_domain_shares_with(&up->dom, 0);
		}
	}

	if (upg_evictor_start(up, err, sizeof err) || upg_handlers_start(up, err, sizeof err))
		upg_fatal(up, "a forked child cannot start its threads: %s", err);
}

static void child(void)
{
	for (int i = 0; i < MAX_RUNTIMES; i++)
		if (runtimes[i])
			takeover(runtimes[i]);
	upg_internal_thread = fork_internal;
	pthread_mutex_init(&reg_lock, NULL);
	pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

/* Once, when the first runtime registers: the fork handlers, and the glibc
 * symbols touch_glibc_state() needs (looked up here, not inside fork()). */
static void install(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	if (libc) {
		nss_get = (bool (*)(int, void *))dlvsym(libc, "__nss_database_get", "GLIBC_PRIVATE");
		files = dlsym(libc, "_IO_list_all");
		files_lock = (void (*)(void))dlsym(libc, "_IO_list_lock");
		files_unlock = (void (*)(void))dlsym(libc, "_IO_list_unlock");
		dlclose(libc);
	}
	pthread_atfork(prepare, parent, child);
}

void upg_fork_register(struct upager *up)
{
	up->fork_hup_wr = -1;
	pthread_once(&once, install);
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_RUNTIMES; i++)
		if (!runtimes[i]) {
			runtimes[i] = up;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
}

void upg_fork_unregister(struct upager *up)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_RUNTIMES; i++)
		if (runtimes[i] == up)
			runtimes[i] = NULL;
	pthread_mutex_unlock(&reg_lock);
}

/* ---- the parent's side: its live children (see struct upg_child) ----
 * The first handler thread polls each child's hang-up pipe on its ring,
 * once: it fires when the child and what it forked have all exited or
 * exec'd. */

/* A child is gone: unfreeze the store and freeze again what the live
 * children still read.  Lock held. */
static void children_refreeze(struct upager *up)
{
	upg_store_unfreeze(&up->store);
	for (struct upg_child *c = up->children; c; c = c->next)
		for (uint64_t i = 0; i < c->nsnap; i++)
			upg_store_freeze(&up->store, upg_slot_block(c->snap[i].slot), c->snap[i].psize / UPG_BLOCK);
	upg_store_reap(&up->store);
}

static void child_free(struct upg_child *c)
{
	close(c->hup_fd);
	munmap(c->snap, c->snap_len);
	munmap(c, sizeof *c);
}

void upg_children_arm(struct upager *up, struct io_uring *ring)
{
	pthread_mutex_lock(&up->lock);
	for (struct upg_child *c = up->children; c; c = c->next) {
		if (c->armed)
			continue;
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		if (!sqe) {
			io_uring_submit(ring);
			sqe = io_uring_get_sqe(ring);
		}
		io_uring_prep_poll_add(sqe, c->hup_fd, POLLIN | POLLHUP);
		io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | UPG_TAG_CHILD);
		c->armed = true;
	}
	pthread_mutex_unlock(&up->lock);
}

void upg_child_gone(struct upager *up, uint64_t tag, int res)
{
	struct upg_child *c = (struct upg_child *)(uintptr_t)(tag & ~UPG_TAG_CHILD);
	if (res == -ECANCELED)
		return;  /* shutting down: upager_close() frees it */
	pthread_mutex_lock(&up->lock);
	struct upg_child **pp = &up->children;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	children_refreeze(up);
	pthread_mutex_unlock(&up->lock);
	child_free(c);
}

void upg_children_free(struct upager *up)
{
	while (up->children) {
		struct upg_child *c = up->children;
		up->children = c->next;
		child_free(c);
	}
}
