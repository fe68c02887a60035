/* SPDX-License-Identifier: MIT */
/*
 * The evictor.
 *
 * Above the high watermark it evicts down to the low one, a batch at a
 * time:
 *   1. take victims from the policy and mark them EVICTING (a fault on them
 *      now waits in the retry queue);
 *   2. UFFDIO_MOVE them, in runs, into a private scratch range registered
 *      with the same userfaultfd.  The pages leave the region atomically,
 *      without a copy, and without the REMOVE event that a madvise() on the
 *      region would raise (which the handlers could not tell from an
 *      application's discard);
 *   3. drop clean pages (not marked dirty, and matching the digests their
 *      slot was written with) and all-zero pages with no I/O; write the
 *      rest from the scratch range with O_DIRECT, merging pages with
 *      consecutive slots into one write;
 *   4. finish the states, then MADV_DONTNEED the scratch range.  That raises
 *      a REMOVE event for the scratch range, which a handler reads and
 *      ignores: this thread is never the one that reads the userfaultfd.
 *
 * A page whose write fails, or that finds the store full, is copied back
 * and stays resident and dirty; the next pass tries it again.
 */
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_LEN (4u << 20)
#define MAX_WRITE (1u << 20)
#define RING_ENTRIES 256
#define REAP_BATCH 16    /* write completions awaited together */

enum vkind {
	K_NONE = 0,
	K_CLEAN,    /* store copy valid: drop */
	K_ZERO,     /* all zeros: drop, read back as zeros */
	K_WRITE,    /* write to new_slot, then drop */
	K_GONE,     /* the application had zapped it: zeros */
	K_KEEP,     /* moved out but cannot be stored now: copy back */
	K_STAY,     /* could not be moved: still in place */
	K_BACK,     /* rebuilt and copied back already (half-zapped page) */
	K_POOL,     /* compressed into the pool (handle): drop */
	K_REPOOL,   /* PF_POOLCOPY: its pool object (evict_seq) holds it: drop */
	K_FILE,     /* a shared file mapping's changed page: write to the file, then drop */
	K_SYNCED,   /* written to the file for upager_sync(): goes back, unchanged */
};

struct vict {
	struct upg_region *r;
	uint64_t page;
	size_t soff;        /* offset in the scratch range */
	uint32_t new_slot;  /* slot+1 for K_WRITE */
	uint8_t kind;
	uint8_t fresh_slot; /* new_slot was allocated for this write */
	uint8_t ghost;      /* a refault soon after counts as a ghost hit */
	uint8_t copied;     /* could not move: copied to ev->copy, zapped in place */
	uint8_t looked;     /* moved, and read into ev->copy at soff to be looked at (look()) */
	uint8_t sync;       /* taken by a pass that writes a file mapping's changes, not an eviction */
	uint8_t fclean;     /* a file's page, unchanged: zapped in place, not moved (zap_clean()) */
	uint8_t locked;     /* K_STAY: in a mapping locked with mlock(), left as it was (is_locked()) */
	uint8_t in_run;     /* one of a long run of dirty neighbours: to the store untried (pool_pass()) */
	uint8_t digested;   /* read back from its slot, not PF_WPCLEAN: the digests told
			     * whether it was written (upg_wpc_count()) */
	uint16_t zeroed;    /* zmask parts zeroed in what was moved out */
	uint32_t handle;    /* K_POOL: its object in the pool */
};

/* A pool object being written on to the store (spill()). */
struct spilled {
	struct upg_region *r;
	uint64_t page;
	uint32_t handle, clen, slot;
	char *data;         /* its compressed bytes, copied out */
};
#define SPILL_MAX 256u
#define SPILL_ROUNDS 16  /* at most, a batch, while the pool is far over its share */

struct upg_evictor {
	struct upager *up;
	pthread_t tid;
	struct io_uring ring;
	struct upg_tq q;    /* its queue to the tiers, on ring */
	int kick_fd;        /* kicks q: a tier's completion made on another thread */
	bool ring_ok, started;
	struct vict *v;
	uint32_t cap;
	char *image;        /* one page, for pages the application half-zapped */
	unsigned char vec[SCRATCH_LEN / 4096];  /* upg_mapped() of the scratch range */
	char *copy;         /* like the scratch range, for pages copied instead of moved,
			     * and for moved ones read to be looked at (look()) */
	char *cipher;       /* encryption: what is written, for scratch then copy */
	size_t bufs_used;   /* bytes of copy (and of each half of cipher) maybe in RAM */
	uint64_t last_batch_ns;  /* when the last batch ended: the buffers go 100 ms after */
	int mem_fd;         /* /proc/self/mem: reads pages whatever their protection */
	int maps_fd;        /* /proc/self/maps, for mapping_end() */
	pid_t pid;          /* this process, for process_vm_readv() */
	bool vm_read;       /* process_vm_readv() works here */
	char *ctmp;         /* one page's compressed output */
	struct spilled sp[SPILL_MAX];
	uint32_t reading[SPILL_MAX];  /* handles of pages being read back, met by spill() */
	char *spill_c;      /* SPILL_MAX compressed objects, copied out of the pool */
	int64_t pool_delta;  /* change of the pool's RAM by this batch, not yet counted (finish()) */
	/* What the pool's recent tries came to (pool_skip()), halved as they grow: */
	double w_tried, w_put;           /* pages tried, and taken */
	uint64_t seen_tried, seen_put;   /* the counters when last looked at */
	uint32_t batches;                /* batches passed over since one was tried */
	/* The last batch's last run of dirty neighbours (mark_runs()): its
	 * region, the page after it, and its length with the runs it went on
	 * from. */
	const struct upg_region *run_r;
	uint64_t run_next, run_len;
	bool full_logged;
	uint32_t sync_failed;  /* K_FILE writes of this batch that failed */
	/* The last batch of writes to the store (a write-back's or a
	 * spill's): a failure (-errno) if one of them failed, else 0.  While
	 * writes fail (a remote store down, a disk giving errors), eviction is
	 * stuck until store_err_until: see evictor_main(). */
	int store_err;
	uint64_t store_err_until;
	uint64_t unfreed;   /* bytes in the batches since one last freed a page */
};

/* Whether a victim's bytes are in ev->copy rather than the scratch range. */
static bool in_copy(const struct vict *v)
{
	return v->copied || v->looked;
}

static char *src_of(struct upg_evictor *ev, const struct vict *v)
{
	return (in_copy(v) ? ev->copy : (char *)ev->up->scratch) + v->soff;
}

static int cmp_vict(const void *a, const void *b)
{
	const struct vict *x = a, *y = b;
	if (x->r != y->r)
		return x->r->base < y->r->base ? -1 : 1;
	return x->page < y->page ? -1 : x->page > y->page;
}

static bool all_zero(const char *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < len / 8; i += 8) {
		uint64_t acc = w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
		if (acc)
			return false;
	}
	return true;
}

/* Make the page at addr exclusive to this process again (after a fork it is
 * shared copy-on-write, and UFFDIO_MOVE refuses it) by an atomic add of
 * zero to each 4 KiB part: a write fault that changes no byte, safe against
 * concurrent writers. */
static void unshare_page(uintptr_t addr, size_t len)
{
	for (size_t off = 0; off < len; off += 4096)
		__atomic_fetch_add((uint64_t *)(addr + off), 0, __ATOMIC_RELAXED);
}

/* The evictor never reads the userfaultfd, so on -EAGAIN (an event waits
 * to be read) it backs off and lets a handler read it. */
static void back_off(void)
{
	struct timespec ts = { 0, 50 * 1000 };
	nanosleep(&ts, NULL);
}

static int ev_move(struct upager *up, uintptr_t dst, uintptr_t src, size_t len, size_t *moved)
{
	/* -EAGAIN: an event is waiting to be read (a discard elsewhere in
	 * the address space), or a page was busy.  Wait and go on from where
	 * the move stopped: giving up half-way would leave the page (a large
	 * one split between the region and the scratch range) to be put back
	 * and kept, and a batch that frees nothing lets faults in over the
	 * budget. */
	size_t done = 0;
	for (;;) {
		size_t m = 0;
		int rc = upg_uffd_move(up->uffd, up->pagemap_fd, dst + done, src + done, len - done, &m);
		done += m;
		if (rc != -EAGAIN) {
			*moved = done;
			return rc;
		}
		back_off();
	}
}

/* Whether some part of [a, a + len) lies in a mapping locked with mlock():
 * MADV_COLD refuses such a mapping with EINVAL (and no other that a
 * region's page can be in), and does nothing to a page it accepts beyond
 * marking it cold on the kernel's lists, which upager's pages never leave
 * by.  A page partly unmapped meanwhile (ENOMEM) is not locked. */
static bool is_locked(uintptr_t a, size_t len)
{
	return madvise((void *)a, len, MADV_COLD) && errno == EINVAL;
}

/* v stays where it is, unwritten: it lies in a locked mapping. */
static void stay_locked(struct upager *up, struct vict *v)
{
	v->kind = K_STAY;
	v->locked = 1;
	__atomic_add_fetch(&up->c.locked_stays, 1, __ATOMIC_RELAXED);
}

/* Copy a page back into its region unless it was discarded meanwhile.
 * Parts discarded while it was out (marked in zmask, not yet in *zeroed)
 * found nothing to zap: they are zeroed in src first, and added to
 * *zeroed.  uffd_lock held on entry and exit; released while backing off,
 * so both are checked again each time.  -ECANCELED: discarded. */
static int ev_copy_back(struct upager *up, struct upg_region *r, uint64_t page, char *src, uint16_t *zeroed, bool wp)
{
	for (;;) {
		pthread_mutex_lock(&up->lock);
		struct upg_pte *p = upg_pte_get(r, page);
		bool discarded = p->flags & PF_DISCARDED;
		uint16_t zm = p->zmask & (uint16_t)~*zeroed;
		pthread_mutex_unlock(&up->lock);
		if (discarded)
			return -ECANCELED;
		upg_zero_parts(src, r->psize, zm);
		*zeroed |= zm;
		int rc = upg_uffd_copy_page(up->uffd, r->base + (page << r->pshift), src, r->psize, NULL, wp);
		if (rc != -EAGAIN)
			return rc;
		pthread_mutex_unlock(&up->uffd_lock);
		back_off();
		pthread_mutex_lock(&up->uffd_lock);
	}
}

/* A call took n pages of v out of their region, for an eviction (the
 * statistics' takeout_*; a sync's pages go back, and are not counted). */
static void took_out(struct upager *up, const struct vict *v, uint64_t n)
{
	if (!n || v->sync)
		return;
	__atomic_add_fetch(&up->c.takeout_calls, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&up->c.takeout_pages, n, __ATOMIC_RELAXED);
	if (n == 1)
		__atomic_add_fetch(&up->c.takeout_alone, 1, __ATOMIC_RELAXED);
}

/* Move run v[i..j) into the scratch range; set kinds of what could not move. */
static void move_run(struct upg_evictor *ev, uint32_t i, uint32_t j)
{
	struct upager *up = ev->up;
	struct upg_region *r = ev->v[i].r;
	uint32_t k = i;
	while (k < j) {
		uintptr_t src = r->base + (ev->v[k].page << r->pshift);
		uintptr_t dst = up->scratch + ev->v[k].soff;
		size_t len = (size_t)(j - k) << r->pshift, moved = 0;
		int rc = ev_move(up, dst, src, len, &moved);
		took_out(up, &ev->v[k], (moved + r->psize - 1) >> r->pshift);
		if (rc == -EINVAL && !moved) {
			/* UFFDIO_MOVE only works between writable mappings: the
			 * application made this part read-only (or PROT_NONE).
			 * Protect against writes, copy through /proc/self/mem
			 * (which ignores the protection), and zap it later.
			 * It also refuses a page locked with mlock(), whose
			 * zap would be refused too: it stays, unwritten (a
			 * sync's page is written as usual, and stays). */
			for (uint32_t q = k; q < j; q++) {
				struct vict *v = &ev->v[q];
				uintptr_t a = r->base + (v->page << r->pshift);
				if (!v->sync && is_locked(a, r->psize)) {
					stay_locked(up, v);
					continue;
				}
				while (upg_uffd_writeprotect(up->uffd, a, r->psize, true) == -EAGAIN)
					back_off();
				ssize_t got = pread(ev->mem_fd, ev->copy + v->soff, r->psize, (off_t)a);
				if (got == (ssize_t)r->psize)
					v->copied = 1;
				else
					v->kind = K_STAY;
			}
			return;
		}
		if (!rc)
			return;
		k += (uint32_t)(moved >> r->pshift);
		if (k >= j)
			return;
		struct vict *v = &ev->v[k];
		uintptr_t a = r->base + (v->page << r->pshift);
		/* A large page can stop part-way (a 4 KiB part of it shared
		 * with a forked child): its first part bytes are in the
		 * scratch range already, and holes in the region.  Touching
		 * those holes would fault in zeros, so only the rest is
		 * unshared and moved. */
		size_t part = moved & (r->psize - 1);
		if (rc == -EBUSY) {
			/* Shared with a forked child: unshare it (its
			 * contents stay the same), then retry this page once.
			 * Pages go in writable, but should one be protected,
			 * the unsharing write would fault to the handlers,
			 * which defer faults on an EVICTING page: this thread
			 * would wait on itself.  So lift any protection
			 * first. */
			if (up->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) {
				/* Writable now: a write may land before the
				 * move, so the digests must tell (a file's
				 * page, which has none, counts as changed). */
				pthread_mutex_lock(&up->lock);
				struct upg_pte *p = upg_pte_get(r, v->page);
				upg_poolcopy_free(up, p);
				p->flags &= (uint8_t)~PF_WPCLEAN;
				if (r->file)
					p->flags |= PF_DIRTY;
				pthread_mutex_unlock(&up->lock);
				while (upg_uffd_writeprotect(up->uffd, a + part, r->psize - part, false) == -EAGAIN)
					back_off();
			}
			unshare_page(a + part, r->psize - part);
			size_t m1 = 0;
			if (!ev_move(up, up->scratch + v->soff + part, a + part, r->psize - part, &m1)) {
				k++;
				continue;
			}
			part += m1;
		}
		if (part && rc != -ENOENT) {
			/* It stays: put back what already left. */
			size_t back = 0;
			int rb = ev_move(up, a, up->scratch + v->soff, part, &back);
			if (rb || back != part)
				upg_fatal(up, "cannot put back %zu bytes of the partly moved page %#lx: %s", part,
					  (unsigned long)a, strerror(-rb));
		}
		if (rc == -ENOENT) {
			/* Unmapped under us: the UNMAP event discards it. */
			for (; k < j; k++)
				ev->v[k].kind = K_GONE;
			return;
		}
		upg_log(up, UPAGER_LOG_DEBUG, "cannot move page %#lx out: %s; it stays resident",
			(unsigned long)a, strerror(-rc));
		v->kind = K_STAY;
		k++;
	}
}

/* Zap [a, a + len) of a region with madvise(), its REMOVE event recognised
 * as the evictor's own (up->own_zap), not a discard.  0, -ENOSPC (no room
 * for the record: nothing done) or -errno of madvise(). */
static int zap_own(struct upager *up, uintptr_t a, size_t len)
{
	pthread_mutex_lock(&up->lock);
	bool room = up->nown_zap < sizeof up->own_zap / sizeof up->own_zap[0];
	if (room) {
		up->own_zap[up->nown_zap].start = a;
		up->own_zap[up->nown_zap].end = a + len;
		up->own_zap[up->nown_zap++].seen = false;
	}
	pthread_mutex_unlock(&up->lock);
	if (!room)
		return -ENOSPC;
	void (*hook)(uintptr_t, size_t, bool) = __atomic_load_n(&upg_own_zap_test, __ATOMIC_ACQUIRE);
	if (hook)
		hook(a, len, true);
	int rc = madvise((void *)a, len, MADV_DONTNEED) ? -errno : 0;
	if (hook)
		hook(a, len, false);
	/* madvise returns once a handler has read the event, maybe before
	 * it has looked at it: keep the record until then. */
	upg_events_barrier(up);
	pthread_mutex_lock(&up->lock);
	for (uint32_t z = 0; z < up->nown_zap; z++)
		if (up->own_zap[z].start == a) {
			up->own_zap[z] = up->own_zap[--up->nown_zap];
			break;
		}
	pthread_mutex_unlock(&up->lock);
	return rc;
}

/* Drop the run v[i..j) of unchanged file pages where they are, with one
 * madvise(): the file holds them.  Its REMOVE event is recognised as ours
 * (up->own_zap).  A write to one meanwhile faults (they are
 * write-protected) and waits until they are gone, then reads the file.
 * (Unchanged anonymous pages, PF_WPCLEAN, are moved out as usual: an
 * application's discard of them read while ours is recorded would be
 * taken for ours, and they would come back from the store instead of as
 * zeros.  Moving them measured as fast.) */
static void zap_clean(struct upg_evictor *ev, uint32_t i, uint32_t j)
{
	struct upg_region *r = ev->v[i].r;
	int rc = zap_own(ev->up, r->base + (ev->v[i].page << r->pshift), (size_t)(j - i) << r->pshift);
	if (!rc)
		took_out(ev->up, &ev->v[i], j - i);
	if (rc == -ENOSPC) {
		move_run(ev, i, j);  /* the usual way */
		return;
	}
	for (uint32_t k = i; k < j; k++)
		ev->v[k].kind = rc ? K_STAY : K_CLEAN;
	if (!rc || j - i == 1)
		return;
	/* Refused partway: madvise() zaps mapping by mapping, so the pages
	 * before a mapping locked with mlock() (or a hole) are gone already,
	 * and as K_STAY they would be taken for resident.  Those gone are
	 * dropped (pagemap tells; not mincore(), which tells the file's
	 * cache), each page still there gets a zap of its own: the file holds
	 * them all. */
	unsigned char vec[1024];
	size_t per = r->psize / 4096, npg = (size_t)(j - i) * per;
	bool have = ev->up->pagemap_fd >= 0 && npg <= sizeof vec &&
		    !upg_mapped(ev->up, r->base + (ev->v[i].page << r->pshift), npg * 4096, vec);
	for (uint32_t k = i; k < j; k++) {
		struct vict *v = &ev->v[k];
		bool there = !have;
		for (size_t q = 0; have && q < per; q++)
			there |= vec[(k - i) * per + q] & 1;
		int rk = there ? zap_own(ev->up, r->base + (v->page << r->pshift), r->psize) : 0;
		if (rk == -ENOSPC) {
			move_run(ev, k, k + 1);
			continue;
		}
		v->kind = rk ? K_STAY : K_CLEAN;
		if (!rk)
			took_out(ev->up, v, 1);
		if (rk == -EINVAL)
			stay_locked(ev->up, v);
	}
}

/* Sort the n victims, give each its place in the scratch range, and take
 * them out of their regions, run by run.  The bytes of scratch used. */
static size_t take_out(struct upg_evictor *ev, uint32_t n)
{
	qsort(ev->v, n, sizeof *ev->v, cmp_vict);
	size_t off = 0;
	for (uint32_t i = 0; i < n; i++) {
		ev->v[i].soff = off;
		off += ev->v[i].r->psize;
	}
	for (uint32_t i = 0; i < n;) {
		uint32_t j = i + 1;
		while (j < n && ev->v[j].r == ev->v[i].r && ev->v[j].page == ev->v[j - 1].page + 1 &&
		       ev->v[j].fclean == ev->v[i].fclean)
			j++;
		/* A run of unchanged file pages is dropped in place (1.6 times
		 * the scan's rate here); a page or three alone cost as much
		 * either way, and moving batches them. */
		if (ev->v[i].fclean && j - i >= 4)
			zap_clean(ev, i, j);
		else
			move_run(ev, i, j);
		i = j;
	}
	return off;
}

/* Read moved victim i, and those after it that lie whole and back to back
 * in the scratch range, into ev->copy at their offsets, with one
 * process_vm_readv() (or a read of /proc/self/mem where that is refused).
 * The first touch of a page just moved into the scratch range costs about
 * 4 us on this VM (the hypervisor maps it anew), the kernel's copy about
 * 0.5: so their bytes are looked at, checksummed, compressed and written
 * from the copy.  A victim left unread is read where it lies. */
static void look(struct upg_evictor *ev, uint32_t i, uint32_t n)
{
	size_t start = ev->v[i].soff, end = start;
	uint32_t j = i;
	for (; j < n; j++) {
		const struct vict *v = &ev->v[j];
		if (v->copied || v->kind || v->soff != end)
			break;
		uint32_t q = 0, sub = v->r->psize / 4096;
		while (q < sub && (ev->vec[v->soff / 4096 + q] & 1))
			q++;
		if (q < sub)
			break;
		end += v->r->psize;
	}
	if (end == start)
		return;
	struct iovec to = { ev->copy + start, end - start };
	struct iovec from = { (void *)(ev->up->scratch + start), end - start };
	ssize_t got = ev->vm_read ? process_vm_readv(ev->pid, &to, 1, &from, 1, 0) : -1;
	if (got < 0 && ev->vm_read && errno != EFAULT)
		ev->vm_read = false;  /* refused here (seccomp, say): from now on the other way */
	if (got < 0 && ev->mem_fd >= 0)
		got = pread(ev->mem_fd, ev->copy + start, end - start, (off_t)(ev->up->scratch + start));
	if (got != (ssize_t)(end - start))
		return;
	for (uint32_t k = i; k < j; k++)
		ev->v[k].looked = 1;
}

/* Classify the moved pages by looking at the scratch range (through
 * look()'s copy). */
static void classify(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	/* One look for the whole batch: the victims lie back to back in the
	 * scratch range.  A part the kernel swapped out moved as a swap
	 * entry, and is there. */
	size_t used = n ? ev->v[n - 1].soff + ev->v[n - 1].r->psize : 0;
	bool have_vec = used && !upg_mapped(up, up->scratch, used, ev->vec);
	for (uint32_t i = 0; i < n; i++) {
		struct vict *v = &ev->v[i];
		if (v->kind)
			continue;
		struct upg_region *r = v->r;
		const unsigned char *vec = ev->vec + v->soff / 4096;
		uint32_t sub = r->psize / 4096, present = 0;
		if (v->copied)
			present = sub;
		else if (have_vec)
			for (uint32_t q = 0; q < sub; q++)
				present += vec[q] & 1;
		else
			present = sub;
		if (!present) {
			v->kind = K_GONE;  /* zapped before we moved it */
			continue;
		}
		/* The page is out of the region: no write can change it
		 * now.  Its slot stays too (only this thread reuses
		 * slots); a discard meanwhile is seen in finish().  Parts
		 * discarded whose zap had not landed are zeroed here. */
		pthread_mutex_lock(&up->lock);
		struct upg_pte *p = upg_pte_get(r, v->page);
		uint16_t zm = p->zmask;
		uint32_t slot = !(p->flags & PF_DIRTY) && !zm ? p->slot : 0;
		bool fclean = r->file && !(p->flags & PF_DIRTY) && !zm && !p->slot;
		bool wpclean = slot && !r->file && (p->flags & PF_WPCLEAN);
		bool repool = (p->flags & (PF_POOLCOPY | PF_WPCLEAN | PF_DIRTY)) == (PF_POOLCOPY | PF_WPCLEAN) && !zm;
		pthread_mutex_unlock(&up->lock);
		v->zeroed = zm;
		if (present < sub) {
			/* Part of a large page was zapped: rebuild it with
			 * zeros there and put it back now (see copy_back()
			 * for why uffd_lock is held). */
			uint32_t chunk = upg_zchunk(r->psize);
			char *s = src_of(ev, v);
			memset(ev->image, 0, r->psize);
			for (uint32_t q = 0; q < sub; q++)
				if ((vec[q] & 1) && !(zm >> (q * 4096 / chunk) & 1))
					memcpy(ev->image + (size_t)q * 4096, s + (size_t)q * 4096, 4096);
			pthread_mutex_lock(&up->uffd_lock);
			v->kind = ev_copy_back(up, r, v->page, ev->image, &v->zeroed, false) ? K_GONE : K_BACK;
			pthread_mutex_unlock(&up->uffd_lock);
			continue;
		}
		/* Unchanged since it came from the pool or its slot: its
		 * bytes are not needed. */
		if (!repool && !wpclean && have_vec && !v->copied && !v->looked)
			look(ev, i, n);
		char *s = src_of(ev, v);
		upg_zero_parts(s, r->psize, zm);
		v->digested = slot && !wpclean && !repool;
		if (repool)
			v->kind = K_REPOOL;  /* unwritten since it came from the pool, which still has it */
		else if (wpclean)
			v->kind = K_CLEAN;  /* never written since it came from slot */
		else if (slot && upg_seal_unchanged(upg_slot_seal(up, slot), upg_slot_block(slot), s, r->psize))
			v->kind = K_CLEAN;
		else if (r->file)
			/* Unchanged, it is the file's (no store copy); zeros
			 * are data like any other: NONE means the file. */
			v->kind = fclean ? K_CLEAN : r->file->mode == UPAGER_MAP_SHARED ? K_FILE : K_WRITE;
		else if (all_zero(s, r->psize))
			v->kind = K_ZERO;
		else
			v->kind = K_WRITE;
	}
}

/* A victim the pool may take: a dirty page of 4 KiB. */
static bool poolable(const struct vict *v)
{
	return v->kind == K_WRITE && v->r->psize == UPG_POOL_PAGE;
}

/* Whether this batch's dirty pages go to the store without a try of the
 * pool (pool_pass()): while fewer than one in 8 of the recent pages tried
 * (the last 16K to 32K, halved as they grow) compressed well enough, as
 * with incompressible data, only one batch in SKIP_EVERY is tried, which
 * keeps the figure current.  Each try of a page that will not compress
 * costs a compression's time for nothing: with random data the evictor
 * spent 5.0 us a page where the pool off spends 2.7 (first touch), and
 * 2.3 us against 2.4 with this.  Whole batches, not pages: a run of
 * neighbours stays together, in the pool or in the store, and readahead
 * reads it in one go (sending one page in 8 to the pool, tried for pages
 * that compress but seldom come back, broke sequential reads up: 26
 * times the store reads).  Lock held. */
#define SKIP_EVERY 8u
static bool pool_skip(struct upg_evictor *ev)
{
	struct upager *up = ev->up;
	uint64_t tried = up->c.pool_puts + up->c.pool_rejects, put = up->c.pool_puts;
	ev->w_tried += tried > ev->seen_tried ? (double)(tried - ev->seen_tried) : 0;
	ev->w_put += put > ev->seen_put ? (double)(put - ev->seen_put) : 0;
	ev->seen_tried = tried, ev->seen_put = put;
	if (ev->w_tried > 32768) {
		ev->w_tried /= 2, ev->w_put /= 2;
	}
	bool skip = ev->w_tried >= 4096 && ev->w_put < ev->w_tried / 8;
	if (!skip || ++ev->batches >= SKIP_EVERY) {
		ev->batches = 0;
		return false;
	}
	return true;
}

/* Dirty pages in runs of at least RUN_STORE neighbours go to the store
 * untried: a program that wrote a stretch of memory and left it, as a
 * stream does, is likely to read it back in order if at all, and the
 * store's readahead reads a run back in one large read, where the pool
 * would compress each page on its way out and decompress it on its way
 * on to the store or back.  Measured (upager-bench compare, 1 GiB over
 * 256 MiB, heap data), pool on over pool off before this: first touch
 * 0.69, sequential write 0.63, sequential read 0.92.  A run that begins
 * where the last batch's last run ended goes on with it, its length
 * added: an evictor that keeps up takes a stream out in small batches.
 * Victims sorted by address (take_out()); each batch's in_run set
 * afresh, false for those not in a run.  Marks them, returns how many.
 * Lock held. */
#define RUN_STORE 16u
static uint32_t mark_runs(struct upg_evictor *ev, uint32_t n)
{
	uint32_t marked = 0;
	for (uint32_t i = 0; i < n;) {
		uint32_t j = i + 1;
		if (!poolable(&ev->v[i])) {
			i = j;
			continue;
		}
		while (j < n && poolable(&ev->v[j]) && ev->v[j].r == ev->v[i].r && ev->v[j].page == ev->v[j - 1].page + 1)
			j++;
		uint64_t len = j - i;
		if (ev->v[i].r == ev->run_r && ev->v[i].page == ev->run_next)
			len += ev->run_len;
		for (uint32_t k = i; k < j; k++)
			ev->v[k].in_run = len >= RUN_STORE;
		marked += len >= RUN_STORE ? j - i : 0;
		ev->run_r = ev->v[i].r;
		ev->run_next = ev->v[j - 1].page + 1;
		ev->run_len = len;
		i = j;
	}
	return marked;
}

/* Dirty pages that compress to 3/4 of a page or less go to the pool
 * instead of the store.  Clean pages are dropped as before: their store
 * copy is good, readahead brings neighbours back in one large read, and
 * compressing them cost more than it saved (measured: sequential reads
 * 30% slower, random ones no faster, with clean pages pooled).  Zero pages
 * were dropped already.  Pages of regions with larger pages go to the
 * store. */
static void pool_pass(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	if (up->pool.algo == UPG_POOL_OFF)
		return;
	pthread_mutex_lock(&up->lock);
	if (up->pool_unowned)
		upg_pool_own(up, up->pool.bytes);
	/* While store writes fail, or the store cannot grow, runs too are
	 * offered to the pool. */
	uint32_t in_runs = ev->store_err || up->store.grow_failed ? 0 : mark_runs(ev, n);
	/* Only a batch with pages to try counts, so the one tried in
	 * SKIP_EVERY always has some. */
	uint32_t candidates = 0;
	for (uint32_t i = 0; i < n; i++)
		candidates += poolable(&ev->v[i]) && !ev->v[i].in_run;
	bool skip = candidates && pool_skip(ev);
	up->c.pool_skips += in_runs + (skip ? candidates : 0);
	pthread_mutex_unlock(&up->lock);
	if (skip || !candidates)
		return;
	uint64_t leaving = 0;  /* pages of 4 KiB this batch takes out of RAM */
	for (uint32_t i = 0; i < n; i++)
		if (ev->v[i].kind == K_WRITE || ev->v[i].kind == K_CLEAN || ev->v[i].kind == K_ZERO ||
		    ev->v[i].kind == K_REPOOL)
			leaving += ev->v[i].r->psize / 4096;
	for (uint32_t i = 0; i < n; i++) {
		struct vict *v = &ev->v[i];
		if (!poolable(v) || v->in_run)
			continue;
		/* Full: to the store, until spill() has made room. */
		if (__atomic_load_n(&up->pool.bytes, __ATOMIC_RELAXED) >= __atomic_load_n(&up->pool_max, __ATOMIC_RELAXED))
			break;
		uint32_t clen = upg_pool_compress(&up->pool, src_of(ev, v), ev->ctmp);
		pthread_mutex_lock(&up->lock);
		if (!clen) {
			up->c.pool_rejects++;
			pthread_mutex_unlock(&up->lock);
			continue;
		}
		/* The batch must not grow the pool by more than the pages it
		 * takes out of RAM, or the sum would pass the budget: a put
		 * that needs a new span waits until enough pages have gone. */
		if (ev->pool_delta + (int64_t)upg_pool_put_cost(&up->pool, clen) > (int64_t)leaving * 4096) {
			pthread_mutex_unlock(&up->lock);
			continue;
		}
		uint64_t before = up->pool.bytes;
		uint32_t h = upg_pool_put(&up->pool, ev->ctmp, clen, (uintptr_t)v->r, v->page);
		/* Counted in the resident set by finish(), after the pages
		 * it holds have left: the sum never peaks over the budget. */
		ev->pool_delta += (int64_t)(up->pool.bytes - before);
		if (h) {
			v->kind = K_POOL;
			v->handle = h;
		} else {
			up->c.pool_full++;
		}
		pthread_mutex_unlock(&up->lock);
	}
}

/* Grow the store by at least want blocks, without the lock (it does
 * I/O); a failure stops further attempts until space may be back.  Lock
 * held on entry and exit. */
static void grow_store(struct upager *up, uint64_t want)
{
	uint64_t size = 0;
	pthread_mutex_unlock(&up->lock);
	int rc = upg_store_grow(&up->store, want, &size);
	pthread_mutex_lock(&up->lock);
	if (!rc)
		up->store.size_blocks = size;
	else
		up->store.grow_failed = true;
}

/* Give slotless K_WRITE pages slots, contiguous for runs of neighbours so
 * that write-back and later readahead are single large I/Os.  Lock held.
 * Returns the blocks still wanted by pages that got none. */
static uint64_t alloc_pass(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	uint64_t missing = 0;
	for (uint32_t i = 0; i < n;) {
		struct vict *v = &ev->v[i];
		if (v->kind != K_WRITE || v->new_slot) {
			i++;
			continue;
		}
		uint32_t j = i + 1;
		while (j < n && ev->v[j].kind == K_WRITE && !ev->v[j].new_slot && ev->v[j].r == v->r &&
		       ev->v[j].page == ev->v[j - 1].page + 1)
			j++;
		uint64_t first;
		uint32_t blocks = v->r->blocks;
		if (!upg_store_alloc(&up->store, (j - i) * blocks, blocks, &first)) {
			for (uint32_t k = i; k < j; k++) {
				ev->v[k].new_slot = (uint32_t)(first + (uint64_t)(k - i) * blocks + 1);
				ev->v[k].fresh_slot = 1;
			}
			i = j;
			continue;
		}
		for (uint32_t k = i; k < j; k++) {
			if (!upg_store_alloc(&up->store, blocks, blocks, &first)) {
				ev->v[k].new_slot = (uint32_t)(first + 1);
				ev->v[k].fresh_slot = 1;
			} else {
				missing += blocks;
			}
		}
		i = j;
	}
	return missing;
}

/* Give K_WRITE pages a slot; those that get none become K_KEEP.  Lock held
 * on entry and exit; dropped to grow the store. */
static void assign_slots(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	uint64_t need = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct vict *v = &ev->v[i];
		if (v->kind != K_WRITE)
			continue;
		uint32_t slot = upg_pte_get(v->r, v->page)->slot;
		if (slot && !upg_slot_store(slot) && !upg_store_is_frozen(&up->store, upg_slot_block(slot), v->r->blocks)) {
			v->new_slot = slot;  /* rewrite in place */
			v->fresh_slot = 0;
		} else {
			v->new_slot = 0;
			need += v->r->blocks;
		}
	}
	if (need && !upg_store_has_room(&up->store, need) && !up->store.grow_failed)
		grow_store(up, need - (up->store.size_blocks - up->store.used_blocks));
	uint64_t missing = alloc_pass(ev, n);
	if (missing && !up->store.grow_failed) {
		/* Free blocks exist but no aligned run is long enough (the
		 * store is fragmented, by frozen blocks of forked children or
		 * by pages of several sizes): grow it rather than keep the
		 * pages over the budget.  Slack for alignment. */
		grow_store(up, missing + UPG_MAX_PAGE / UPG_BLOCK);
		missing = alloc_pass(ev, n);
	}
	for (uint32_t i = 0; missing && i < n; i++) {
		struct vict *v = &ev->v[i];
		if (v->kind == K_WRITE && !v->new_slot) {
			v->kind = K_KEEP;
			up->c.store_full++;
		}
	}
}

/* The end of the run of K_FILE pages from v[i]: neighbours in the file,
 * back to back in the scratch range, up to MAX_WRITE; the file's last
 * page, when partial, alone (its write is not O_DIRECT-aligned). */
static uint32_t file_run(struct upg_evictor *ev, uint32_t i, uint32_t n)
{
	struct vict *v = &ev->v[i];
	struct upg_mfile *f = v->r->file;
	uint64_t size = __atomic_load_n(&f->size, __ATOMIC_RELAXED);
	uint32_t j = i + 1;
	size_t len = v->r->psize;
	while (j < n && ev->v[j].kind == K_FILE && ev->v[j].r == v->r && in_copy(&ev->v[j]) == in_copy(v) &&
	       ev->v[j].soff == ev->v[j - 1].soff + v->r->psize && ev->v[j].page == ev->v[j - 1].page + 1 &&
	       len + v->r->psize <= MAX_WRITE && f->off + ((ev->v[j].page + 1) << v->r->pshift) <= size) {
		len += v->r->psize;
		j++;
	}
	return j;
}

/* Bytes of n pages from page of r that are inside its file: what past
 * the end a page holds is not written, as with mmap. */
static size_t file_len(struct upg_region *r, uint64_t page, uint32_t n)
{
	struct upg_mfile *f = r->file;
	uint64_t size = __atomic_load_n(&f->size, __ATOMIC_RELAXED);
	uint64_t at = f->off + (page << r->pshift), len = (uint64_t)n << r->pshift;
	if (at >= size)
		return 0;
	return at + len > size ? (size_t)(size - at) : (size_t)len;
}

/* A batch of writes to the store, sent at t0, ended: err, the first
 * failure, or 0 when every write went through.  A failure holds for twice
 * what the batch took, and at least a second: the next batch that writes
 * fails in about that time if the store is still down, and renews it.
 * Held no longer, it would not outlast a store that came back while no
 * batch wrote (a phase that only reads). */
static void store_wrote(struct upg_evictor *ev, int err, uint64_t t0)
{
	uint64_t now = upg_now_ns(), took = now - t0;
	if (err)
		ev->store_err_until = now + (2 * took > 1000000000ull ? 2 * took : 1000000000ull);
	if (!err == !ev->store_err) {
		ev->store_err = err;
		return;
	}
	ev->store_err = err;
	if (err)
		upg_log(ev->up, UPAGER_LOG_WARN, "writes to the store (%s) fail (%s): pages stay in RAM, over "
			"the budget, until it takes writes again", ev->up->store.where, strerror(-err));
	else  /* it failed before: said above */
		upg_log(ev->up, UPAGER_LOG_WARN, "the store takes writes again");
}

/* Write the K_WRITE pages through the store's tier, merging neighbours
 * (consecutive slots, back to back in the scratch range) into one write
 * of up to MAX_WRITE; failures become K_KEEP. */
static void write_back(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	uint32_t i = 0, inflight = 0;
	bool stored = false;
	int err = 0;
	uint64_t t0 = upg_now_ns();
	struct { uint32_t first, last; } runs[RING_ENTRIES];
	memset(runs, 0, sizeof runs);  /* last == 0: entry free */
	while (i < n || inflight) {
		while (i < n && inflight < RING_ENTRIES) {
			struct vict *v = &ev->v[i];
			if (v->kind == K_FILE) {
				uint32_t j = file_run(ev, i, n);
				uint32_t idx = 0;
				while (runs[idx].last != 0 && idx < RING_ENTRIES - 1)
					idx++;
				runs[idx].first = i;
				runs[idx].last = j;
				struct upg_mfile *f = v->r->file;
				uint64_t at = f->off + (v->page << v->r->pshift);
				upg_tier_write(&f->tier, &ev->q, at, src_of(ev, v), file_len(v->r, v->page, j - i), idx);
				inflight++;
				i = j;
				continue;
			}
			if (v->kind != K_WRITE) {
				i++;
				continue;
			}
			uint32_t j = i + 1;
			size_t len = v->r->psize;
			while (j < n && ev->v[j].kind == K_WRITE && ev->v[j].r == v->r &&
			       in_copy(&ev->v[j]) == in_copy(v) &&
			       ev->v[j].soff == ev->v[j - 1].soff + v->r->psize &&
			       ev->v[j].new_slot == ev->v[j - 1].new_slot + v->r->blocks &&
			       len + v->r->psize <= MAX_WRITE) {
				len += v->r->psize;
				j++;
			}
			/* Checksums (or the encryption) are recorded now: the
			 * slot is fresh, or belongs to this evicting page, so
			 * no one reads it before the write is settled. */
			const void *data = upg_seal_write(&up->seal, v->new_slot - 1, src_of(ev, v),
							  ev->cipher + (v->copied ? SCRATCH_LEN : 0) + v->soff, len);
			uint32_t idx = 0;
			while (runs[idx].last != 0 && idx < RING_ENTRIES - 1)
				idx++;
			runs[idx].first = i;
			runs[idx].last = j;
			upg_tier_write(&up->store_tier, &ev->q, v->new_slot, data, (uint32_t)len, idx);
			inflight++;
			i = j;
		}
		if (!inflight)
			break;
		/* Wait for several completions at a time: the writes queued
		 * meanwhile go to the device together, with one notification,
		 * instead of one submission per completed write. */
		struct upg_tq_done done[REAP_BATCH];
		uint32_t min = i >= n ? inflight : inflight < REAP_BATCH ? 1 : REAP_BATCH;
		if (min > REAP_BATCH)
			min = REAP_BATCH;
		int got = upg_tq_reap(&ev->q, min, done, REAP_BATCH);
		if (got < 0)
			upg_fatal(up, "the evictor's io_uring wait failed: %s", strerror(-got));
		for (int d = 0; d < got; d++) {
			uint32_t idx = (uint32_t)done[d].tag;
			int res = done[d].res;
			inflight--;
			uint32_t first = runs[idx].first, last = runs[idx].last;
			runs[idx].last = 0;
			struct vict *v0 = &ev->v[first];
			bool file = v0->kind == K_FILE;
			size_t want = file ? file_len(v0->r, v0->page, last - first)
				      : (size_t)(last - first) * v0->r->psize;
			res = upg_inject(UPG_INJ_WRITE, res, want);
			if (!file) {
				stored = true;
				if (res != (int)want && !err)
					err = res < 0 ? res : -EIO;
			}
			if (res != (int)want) {
				pthread_mutex_lock(&up->lock);
				up->c.write_errors++;
				pthread_mutex_unlock(&up->lock);
				if (file)
					ev->sync_failed += last - first;
				upg_log(up, UPAGER_LOG_WARN, "write-back of %u page(s) to the %s failed (%s); they "
					"stay in RAM and will be written again later", last - first,
					file ? "mapped file" : "store", res < 0 ? strerror(-res) : "short write");
				for (uint32_t k = first; k < last; k++) {
					ev->v[k].kind = K_KEEP;
					/* Sent and never answered (a remote store): the
					 * write may still land, so its blocks are not
					 * used again, lest it land over a newer one. */
					if (res == -ETIMEDOUT)
						ev->v[k].fresh_slot = 0;
				}
			}
		}
	}
	if (stored)
		store_wrote(ev, err, t0);
}

/* The end of the mapping holding address a, from the kernel's
 * PROCMAP_QUERY (Linux 6.11; not in older headers, hence defined here);
 * 0 where the query is refused. */
struct procmap_query_v1 {
	uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
	uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define UPG_PROCMAP_QUERY _IOWR('f', 17, struct procmap_query_v1)

static uintptr_t mapping_end(struct upg_evictor *ev, uintptr_t a)
{
	struct procmap_query_v1 q = { .size = sizeof q, .query_addr = a };
	if (ev->maps_fd < 0 || ioctl(ev->maps_fd, UPG_PROCMAP_QUERY, &q) || q.vma_start > a || q.vma_end <= a)
		return 0;
	return (uintptr_t)q.vma_end;
}

/* Drop from the region the copied pages that were stored.  Their REMOVE
 * events are recognised as the evictor's own (up->own_zap).  A page
 * larger than 4 KiB whose parts the application gave different
 * protections lies in several mappings: it is zapped a mapping at a time,
 * each zap raising one event of its whole range, so that an application's
 * discard made meanwhile is still told from it (see discard_event()). */
static void zap_copied(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	for (uint32_t i = 0; i < n; i++) {
		struct vict *v = &ev->v[i];
		if (!v->copied || v->kind == K_KEEP || v->kind == K_STAY || v->kind == K_GONE || v->kind == K_SYNCED)
			continue;
		uintptr_t a = v->r->base + (v->page << v->r->pshift), end = a + v->r->psize, at = a;
		while (at < end) {  /* [a, at) zapped, a mapping at a time */
			uintptr_t e = v->r->psize > 4096 ? mapping_end(ev, at) : 0;
			if (!e || e > end)
				e = end;
			if (zap_own(up, at, e - at))
				break;
			at = e;
		}
		if (at == end) {
			took_out(up, v, 1);
			continue;
		}
		/* A zap refused (a part locked with mlock(), or unmapped
		 * meanwhile): the page stays, and the parts zapped before go
		 * back from the copy (the parts still mapped are passed over).
		 * A refused zap over several mappings (no PROCMAP_QUERY: the
		 * page zapped at once) may have zapped the first of them too.
		 * Discarded meanwhile, it leaves as discarded (finish()). */
		if (at > a || v->r->psize > 4096) {
			pthread_mutex_lock(&up->uffd_lock);
			int rc = ev_copy_back(up, v->r, v->page, ev->copy + v->soff, &v->zeroed, false);
			pthread_mutex_unlock(&up->uffd_lock);
			if (rc == -ECANCELED)
				continue;
			if (rc && rc != -ENOENT)  /* ENOENT: unmapped, nothing to put back */
				upg_log(up, UPAGER_LOG_WARN, "cannot put back the zapped part of page %#lx: %s",
					(unsigned long)a, strerror(-rc));
		}
		v->kind = K_STAY;
	}
}

/* Copy K_KEEP pages back into their region.  uffd_lock held (not up->lock):
 * a discard read after this point zaps what we copied, one read before it
 * was seen as PF_DISCARDED. */
static void copy_back(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	for (uint32_t i = 0; i < n; i++) {
		struct vict *v = &ev->v[i];
		if (v->kind != K_KEEP && v->kind != K_SYNCED)
			continue;
		if (v->copied) {
			/* Never left its place (write-protected there: a
			 * synced page's next write tells it changed). */
			if (v->kind == K_KEEP)
				v->kind = K_STAY;
			continue;
		}
		/* A synced page goes back write-protected, unchanged. */
		int rc = ev_copy_back(up, v->r, v->page, src_of(ev, v), &v->zeroed,
				      v->kind == K_SYNCED);
		if (rc) {
			if (rc != -ECANCELED)
				upg_log(up, UPAGER_LOG_DEBUG, "copy-back of page %llu: %s", (unsigned long long)v->page,
					strerror(-rc));
			v->kind = K_GONE;  /* discarded or unmapped meanwhile */
		}
	}
}

/* Settle every victim's state.  Both locks held.  Returns pages freed. */
static uint32_t finish(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	uint32_t freed = 0;
	uint64_t dropped = 0, units = 0, dirty = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct vict *v = &ev->v[i];
		struct upg_region *r = v->r;
		struct upg_pte *p = upg_pte_get(r, v->page);
		bool discarded = p->flags & PF_DISCARDED;
		if (v->handle && (v->kind != K_POOL || discarded)) {
			/* Put in the pool, then could not leave (or was
			 * discarded): its object goes. */
			uint64_t before = up->pool.bytes;
			upg_pool_free(&up->pool, v->handle);
			ev->pool_delta -= (int64_t)(before - up->pool.bytes);
			v->handle = 0;
		}
		bool untouched = v->locked && !discarded;  /* never left, nor lost its protection */
		if ((v->kind != K_REPOOL || discarded) && !untouched)
			upg_poolcopy_free(up, p);  /* goes back to RAM, or away */
		if (v->kind != K_STAY)
			p->zmask &= (uint16_t)~v->zeroed;  /* what left (or came back) has zeros there */
		bool back = v->kind == K_KEEP || v->kind == K_STAY || v->kind == K_BACK || v->kind == K_SYNCED;
		if (back && !untouched)
			p->flags &= (uint8_t)~PF_WPCLEAN;  /* it may have gone back writable */
		else if (!untouched && (p->flags & PF_WPCLEAN) && !discarded)
			upg_wpc_count(r, false);  /* unwritten since it came in protected, whatever way it leaves */
		else if (v->digested && !r->file)
			upg_wpc_count(r, v->kind != K_CLEAN);  /* as if it had gone in protected */
		if (back && !discarded) {
			if (v->kind == K_SYNCED) {
				p->flags &= (uint8_t)~PF_DIRTY;  /* the file has it now */
				up->c.writebacks++;
				up->c.bytes_written += r->psize;
			} else if (v->kind != K_STAY) {
				if (v->kind == K_KEEP && v->fresh_slot)
					upg_store_free(&up->store, v->new_slot - 1, r->blocks);
				p->flags |= PF_DIRTY;
			} else if (v->fresh_slot) {
				/* Written, then its zap in place refused
				 * (zap_copied()): the copy written goes. */
				upg_store_free(&up->store, v->new_slot - 1, r->blocks);
			}
			p->state = PG_RESIDENT;
			/* Behind the pages that can go: as a new page it would be
			 * picked again first (S3-FIFO's small queue) and starve
			 * the clean and zero pages that could be dropped. */
			up->pol_ops->insert(up->pol, p->frame, UPG_HINT_GHOST);
			r->busy--;
			continue;
		}
		upg_frame_put(up, p->frame);
		p->frame = UPG_NOFRAME;
		dropped += upg_resident_drop_later(up, p, r->psize);
		if (discarded || v->kind == K_GONE || v->kind == K_ZERO) {
			if ((v->kind == K_WRITE || v->kind == K_KEEP) && v->fresh_slot)
				upg_store_free(&up->store, v->new_slot - 1, r->blocks);
			upg_slot_free(up, r, p);
			p->state = PG_NONE;
			p->zmask = 0;
			if (v->kind == K_ZERO && !discarded)
				up->c.zero_skips++;
		} else if (v->kind == K_CLEAN) {
			p->state = r->file && !p->slot ? PG_NONE : PG_STORED;  /* NONE: the file's */
			up->c.clean_drops++;
		} else if (v->kind == K_FILE) {
			p->state = PG_NONE;  /* on the file now */
			up->c.writebacks++;
			up->c.bytes_written += r->psize;
		} else if (v->kind == K_POOL) {
			upg_slot_free(up, r, p);  /* stale; frozen, a child reads it */
			p->frame = v->handle;
			p->state = PG_POOLED;
			up->c.pool_puts++;
		} else if (v->kind == K_REPOOL) {
			/* Its slot, if any, holds the same data: it stays. */
			p->frame = p->evict_seq;
			p->state = PG_POOLED;
			upg_pool_touch(&up->pool, p->frame);  /* newest, as a put */
			up->c.pool_repools++;
		} else {
			if (p->slot != v->new_slot)
				upg_slot_release(up, p->slot, r->blocks);  /* frozen: a child reads it */
			p->slot = v->new_slot;
			p->state = PG_STORED;
			up->c.writebacks++;
			up->c.bytes_written += r->psize;
		}
		units += r->psize >> 12;
		dirty += (v->kind == K_POOL || v->kind == K_WRITE || v->kind == K_REPOOL) && r->psize == UPG_POOL_PAGE;
		/* The eviction counter, in 4 KiB units (see forecast.h). */
		p->evict_seq = upg_fc_evicted(&up->fc, (uint32_t)(r->psize >> 12), !v->ghost);
		/* A discard read while it was out: a page that never left or
		 * was put back (or partly put back) stays mapped, old bytes
		 * and all, until the kernel's zap lands (see PF_ZAPWAIT). */
		p->flags = (uint8_t)((p->flags & PF_DEFERRED) | (discarded ? PF_ZAPWAIT : 0));
		up->c.evictions++;
		freed++;
		r->busy--;
	}
	upg_resident_settle(up, dropped, ev->pool_delta);
	ev->pool_delta = 0;
	/* What a pool with room would have taken: the dirty pages, as many
	 * of them as compress well enough. */
	uint64_t tried = up->c.pool_puts + up->c.pool_rejects;
	upg_share_evicted(&up->share, units,
			  tried ? (uint64_t)((double)dirty * (double)up->c.pool_puts / (double)tried) : dirty);
	for (uint32_t i = 0; i < up->nregions; i++)
		if (up->regions[i]->dying && !up->regions[i]->busy)
			pthread_cond_broadcast(&up->idle_cond);
	return freed;
}

static int cmp_spilled(const void *a, const void *b)
{
	const struct spilled *x = a, *y = b;
	if (x->r != y->r)
		return x->r->base < y->r->base ? -1 : 1;
	return x->page < y->page ? -1 : x->page > y->page;
}

/* Whether p, in RAM, has its pool copy at handle h (PF_POOLCOPY). */
static bool copy_at(const struct upg_pte *p, uint32_t h)
{
	return upg_pte_poolcopy(p) && p->evict_seq == h;
}

/* upg_pool_compact()'s relocate: a POOLED page (not being spilled) or a
 * page in RAM with its copy follows its object; a page being read from
 * the pool keeps it.  Lock held. */
static bool relocate(void *arg, uint64_t owner, uint64_t page, uint32_t from, uint32_t to)
{
	struct upg_pte *p = upg_pte_get((struct upg_region *)(uintptr_t)owner, page);
	if (copy_at(p, from)) {
		p->evict_seq = to;
		return true;
	}
	if (p->state != PG_POOLED || p->frame != from || (p->flags & PF_SPILL))
		return false;
	p->frame = to;
	return true;
}

/* Does pool object h belong to p as a page being read back from the pool
 * (pool_read(): READING, its handle kept in evict_seq)? */
static bool pool_reading(const struct upg_pte *p, uint32_t h)
{
	return p->state == PG_READING && (p->flags & PF_POOLREAD) && p->evict_seq == h;
}

/* The first bytes of ev->copy (and of each half of ev->cipher) were
 * written: they are in RAM until release_bufs(). */
static void bufs_written(struct upg_evictor *ev, size_t bytes)
{
	if (bytes > ev->bufs_used)
		ev->bufs_used = bytes;
}

/* Give back the RAM of spill()'s compressed copies, their first n
 * entries; its pages in ev->copy go with the batches' (release_bufs()). */
static void spill_release(struct upg_evictor *ev, uint32_t n)
{
	bufs_written(ev, (size_t)n * 4096);
	madvise(ev->spill_c, (size_t)n * UPG_POOL_MAX_CLEN, MADV_DONTNEED);
}

/* Give back the RAM of the batches' buffers (ev->copy, ev->cipher).  They
 * are kept while batches follow one another: a page of them given back
 * costs a fault when written again, about 4 us here, as much as the copy
 * that look() saves. */
static void release_bufs(struct upg_evictor *ev)
{
	if (!ev->bufs_used)
		return;
	madvise(ev->copy, ev->bufs_used, MADV_DONTNEED);
	if (ev->cipher) {
		madvise(ev->cipher, ev->bufs_used, MADV_DONTNEED);
		madvise(ev->cipher + SCRATCH_LEN, ev->bufs_used, MADV_DONTNEED);
	}
	ev->bufs_used = 0;
}

/* A batch used off bytes of the buffers. */
static void batch_ended(struct upg_evictor *ev, size_t off)
{
	bufs_written(ev, off);
	ev->last_batch_ns = upg_now_ns();
}

/*
 * The pool holds more than its share of the budget: write its coldest
 * pages on to the store, SPILL_MAX at a time, until it is under 15/16 of
 * its share.  A page whose store copy is good (it was clean) just leaves.
 * The others are copied out compressed under the lock, decompressed
 * outside it, given slots in address order (neighbours are then read back
 * together), and written with merged writes.  Meanwhile they stay in the
 * pool, marked PF_SPILL: a fault serves them from there, and any change
 * of state clears the mark, so that the write is then dropped.  A failed
 * write leaves the page in the pool.  fork_lock held, not up->lock.
 */
static void spill(struct upg_evictor *ev, uint64_t max)
{
	struct upager *up = ev->up;
	pthread_mutex_lock(&up->lock);
	bool live = !max;  /* the share, read again each round (it moves) */
	if (live)
		max = up->pool_max;
	/* Objects freed out of order leave spans part-filled: pack them
	 * first, which costs copies in RAM and no I/O. */
	if (up->pool.bytes > max) {
		uint64_t before = up->pool.bytes;
		upg_pool_compact(&up->pool, 256, relocate, NULL);
		upg_pool_account(up, before);
	}
	/* One round per batch: with spans part-filled, writing out the
	 * oldest objects may free little RAM, and the next batch's
	 * compaction reclaims what they left.  But while the pool holds
	 * more than twice its share (the share has just fallen: the refills
	 * say its pages would serve better resident), rounds go on, up to
	 * SPILL_ROUNDS, packing the spans before each: at one round a batch
	 * zipf at 256 MiB over 1 GiB ran most of its timed phase with the
	 * pool at 100 MiB over a share of 13 MiB. */
	for (int round = 0; up->pool.bytes > max && !up->stopping &&
			    round < (up->pool.bytes > 2 * max ? SPILL_ROUNDS : 1); round++) {
		if (round) {
			if (live)
				max = up->pool_max;
			if (up->pool.bytes <= 2 * max)
				break;
			uint64_t before = up->pool.bytes;
			upg_pool_compact(&up->pool, 256, relocate, NULL);
			upg_pool_account(up, before);
		}
		uint64_t goal = up->pool.bytes - max / 16 * 15, est = 0;
		uint32_t k = 0, h, nreading = 0;
		uint64_t owner, page;
		while (k < SPILL_MAX && nreading < SPILL_MAX && est < goal &&
		       upg_pool_coldest(&up->pool, &h, &owner, &page)) {
			struct upg_region *r = (struct upg_region *)(uintptr_t)owner;
			struct upg_pte *p = upg_pte_get(r, page);
			if (pool_reading(p, h)) {
				/* Being read back (pool_read()): the object goes
				 * when the copy-in lands, or stays as the page's
				 * copy; should the copy-in fail, the page is POOLED
				 * again.  Either way it must still be on the ring,
				 * to be let go of or written on some day: back on
				 * it, after this loop (else the loop would meet it
				 * again). */
				ev->reading[nreading++] = h;
				continue;
			}
			if (copy_at(p, h)) {
				if (p->state == PG_EVICTING)
					continue;  /* off the ring until finish() puts the page back */
				/* A copy of a page in RAM: it just goes (the page
				 * is compressed again if it leaves unwritten). */
				uint32_t cl;
				upg_pool_data(&up->pool, h, &cl);
				est += cl + 16;
				upg_poolcopy_free(up, p);
				continue;
			}
			if (p->state != PG_POOLED || p->frame != h || (p->flags & PF_SPILL))
				continue;  /* cannot be: every other object's page is POOLED (on the ring once) or
					    * in RAM with its copy */
			if (r->dying)
				continue;  /* its unmap frees the object, and waits for r->busy */
			uint32_t clen;
			const void *d = upg_pool_data(&up->pool, h, &clen);
			est += clen + 16;
			upg_share_spilled(&up->share, upg_fc_age(&up->fc, p->evict_seq));
			if (p->slot) {
				upg_pooled_free(up, p);
				p->state = PG_STORED;
				up->c.pool_drops++;
				continue;
			}
			char *c = ev->spill_c + (size_t)k * UPG_POOL_MAX_CLEN;
			memcpy(c, d, clen);
			p->flags |= PF_SPILL;
			r->busy++;  /* an unmap waits for it */
			ev->sp[k++] = (struct spilled){ .r = r, .page = page, .handle = h, .clen = clen, .data = c };
		}
		for (uint32_t i = 0; i < nreading; i++)
			upg_pool_touch(&up->pool, ev->reading[i]);
		if (!k) {
			if (!est)
				break;  /* the ring is empty */
			continue;
		}
		pthread_mutex_unlock(&up->lock);

		qsort(ev->sp, k, sizeof ev->sp[0], cmp_spilled);
		for (uint32_t i = 0; i < k; i++)
			if (upg_pool_decompress(&up->pool, ev->sp[i].data, ev->sp[i].clen, ev->copy + (size_t)i * 4096))
				ev->sp[i].clen = 0;  /* cannot be: it decompressed when put */

		pthread_mutex_lock(&up->lock);
		uint64_t first;
		if (!upg_store_has_room(&up->store, k) && !up->store.grow_failed)
			grow_store(up, k);
		bool run = !upg_store_alloc(&up->store, k, 1, &first);
		for (uint32_t i = 0; i < k; i++) {
			uint64_t b;
			if (run)
				ev->sp[i].slot = (uint32_t)(first + i + 1);
			else
				ev->sp[i].slot = upg_store_alloc(&up->store, 1, 1, &b) ? 0 : (uint32_t)(b + 1);
			if (!ev->sp[i].clen && ev->sp[i].slot) {
				upg_store_free(&up->store, ev->sp[i].slot - 1, 1);
				ev->sp[i].slot = 0;
			}
		}
		pthread_mutex_unlock(&up->lock);

		/* Merged writes of consecutive slots, as write_back(). */
		int res[SPILL_MAX], err = 0;
		uint32_t inflight = 0;
		uint64_t t0 = upg_now_ns();
		for (uint32_t i = 0; i < k;) {
			if (!ev->sp[i].slot) {
				res[i++] = -ENOSPC;
				continue;
			}
			uint32_t j = i + 1;
			while (j < k && ev->sp[j].slot == ev->sp[j - 1].slot + 1 && (j - i) * 4096 < MAX_WRITE)
				j++;
			size_t len = (size_t)(j - i) * 4096;
			const void *data = upg_seal_write(&up->seal, ev->sp[i].slot - 1, ev->copy + (size_t)i * 4096,
							  ev->cipher + SCRATCH_LEN + (size_t)i * 4096, len);
			upg_tier_write(&up->store_tier, &ev->q, ev->sp[i].slot, data, (uint32_t)len,
				       (uint64_t)i << 16 | (j - i));
			inflight++;
			i = j;
		}
		bool sent = inflight;
		while (inflight) {
			struct upg_tq_done done[REAP_BATCH];
			int got = upg_tq_reap(&ev->q, 1, done, REAP_BATCH);
			if (got < 0)
				upg_fatal(up, "the evictor's io_uring wait failed: %s", strerror(-got));
			for (int d = 0; d < got; d++, inflight--) {
				uint32_t i = (uint32_t)(done[d].tag >> 16), cnt = (uint32_t)(done[d].tag & 0xffff);
				int r1 = upg_inject(UPG_INJ_WRITE, done[d].res, (size_t)cnt * 4096);
				for (uint32_t q = i; q < i + cnt; q++)
					res[q] = r1 == (int)(cnt * 4096) ? 0 : r1 < 0 ? r1 : -EIO;
				if (res[i] && !err)
					err = res[i];
			}
		}
		if (sent)
			store_wrote(ev, err, t0);

		pthread_mutex_lock(&up->lock);
		uint32_t failed = 0;
		for (uint32_t i = 0; i < k; i++) {
			struct spilled *s = &ev->sp[i];
			struct upg_pte *p = upg_pte_get(s->r, s->page);
			bool mine = p->state == PG_POOLED && (p->flags & PF_SPILL) && p->frame == s->handle;
			if (--s->r->busy == 0 && s->r->dying)
				pthread_cond_broadcast(&up->idle_cond);
			if (mine)
				p->flags &= (uint8_t)~PF_SPILL;
			if (mine && !res[i]) {
				upg_pooled_free(up, p);
				p->slot = s->slot;
				p->state = PG_STORED;
				up->c.pool_writebacks++;
				up->c.writebacks++;
				up->c.bytes_written += 4096;
				continue;
			}
			if (s->slot && res[i] != -ETIMEDOUT)  /* as in write_back() */
				upg_store_free(&up->store, s->slot - 1, 1);
			if (mine) {
				upg_pool_touch(&up->pool, s->handle);  /* stays; tried again later */
				failed++;
				if (res[i] != -ENOSPC)
					up->c.write_errors++;
			} else if ((p->state == PG_POOLED && p->frame == s->handle) || pool_reading(p, s->handle) ||
				   copy_at(p, s->handle)) {
				/* A fault read it back meanwhile (which cleared the
				 * mark) and failed its copy-in, is still reading, or
				 * kept the object as the page's copy: still in the
				 * pool, it goes back on the ring that this spill took
				 * it off (as in the loop above).  A copy kept may
				 * have been made the newest by its read already
				 * (complete_read()): touched, it has one live entry
				 * either way. */
				upg_pool_touch(&up->pool, s->handle);
			}
		}
		/* Room made: faults waiting for it go on now, not after the
		 * last round. */
		if (up->retry_count)
			upg_kick_handlers(up);
		pthread_mutex_unlock(&up->lock);
		spill_release(ev, k);
		if (failed) {
			upg_log(up, UPAGER_LOG_WARN, "writing %u page(s) from the compressed pool on to the store "
				"failed; they stay in the pool", failed);
			return;  /* the next batch tries again */
		}
		pthread_mutex_lock(&up->lock);
	}
	pthread_mutex_unlock(&up->lock);
}

/* Take victims from the policy.  Lock held.  Returns how many. */
static uint32_t pick(struct upg_evictor *ev)
{
	struct upager *up = ev->up;
	uint64_t tree = upg_domain_total(&up->dom);
	uint64_t target = tree > up->low ? tree - up->low : 0;
	uint64_t bytes = 0;
	uint32_t n = 0, skipped = 0;
	/* With the store full only clean pages (and, unknown until looked
	 * at, zero pages) can go: pass over the dirty ones here rather than
	 * move them out and back. */
	bool full = up->store.grow_failed && !upg_store_has_room(&up->store, UPG_MAX_PAGE / UPG_BLOCK);
	while (bytes < target && n < ev->cap && skipped < ev->cap) {
		uint32_t f;
		uint8_t ghost;
		if (!up->pol_ops->evict(up->pol, &f, &ghost, 1))
			break;
		struct upg_frame *fr = &up->frames[f];
		struct upg_region *r = fr->reg;
		if (bytes + r->psize > up->scratch_len) {
			up->pol_ops->insert(up->pol, f, UPG_HINT_NEW);
			break;
		}
		struct upg_pte *p = upg_pte_get(r, fr->page);
		if (p->state != PG_RESIDENT) {
			upg_fatal(up, "the replacement policy chose frame %u, whose page is in state %u", f, p->state);
		}
		bool to_store = r->file ? r->file->mode != UPAGER_MAP_SHARED && (p->flags & PF_DIRTY)
				: ((p->flags & PF_DIRTY) || !p->slot) && !(p->flags & PF_POOLCOPY);
		if (full && to_store) {
			up->pol_ops->insert(up->pol, f, UPG_HINT_GHOST);
			up->c.store_full++;
			skipped++;
			continue;
		}
		p->state = PG_EVICTING;
		r->busy++;
		/* Unchanged (write-protected: a write now waits for us) and
		 * the file's: nothing to keep, so nothing to move out. */
		bool fclean = r->file && !(p->flags & (PF_DIRTY | PF_SHARED)) && !p->slot && !p->zmask;
		ev->v[n++] = (struct vict){ .r = r, .page = fr->page, .ghost = ghost, .fclean = fclean };
		bytes += r->psize;
	}
	return n;
}

/* ---- writing a file mapping's changes (mfile.c) ---- */

/* Take the changed pages of r from *pos up to end out of the policy for
 * writing, as pick() takes victims; *pos moves past them.  Pages without
 * a frame (admitted while the frame table was full) cannot be moved out:
 * counted in *unframed.  Lock held. */
static uint32_t pick_dirty(struct upg_evictor *ev, struct upg_region *r, uint64_t *pos, uint64_t end,
			   uint32_t *unframed)
{
	struct upager *up = ev->up;
	uint32_t n = 0;
	size_t bytes = 0;
	uint64_t pg = *pos;
	while (n < ev->cap && !r->dying) {
		pg = upg_pte_next(r, pg);
		if (pg >= end)
			break;
		struct upg_pte *p = &r->pte[pg];
		if (p->state == PG_RESIDENT && (p->flags & PF_DIRTY)) {
			if (p->frame == UPG_NOFRAME) {
				(*unframed)++;
			} else {
				if (bytes + r->psize > up->scratch_len)
					break;
				up->pol_ops->remove(up->pol, p->frame);
				p->state = PG_EVICTING;
				r->busy++;
				ev->v[n++] = (struct vict){ .r = r, .page = pg, .sync = 1 };
				bytes += r->psize;
			}
		}
		pg++;
	}
	*pos = pg;
	return n;
}

/* Write the n pages pick_dirty() took to the file and put them back,
 * unchanged and write-protected: an eviction's steps, without the
 * eviction.  Lock and fork_lock held on entry and exit. */
static void sync_batch(struct upg_evictor *ev, uint32_t n)
{
	struct upager *up = ev->up;
	pthread_mutex_unlock(&up->lock);
	size_t off = take_out(ev, n);
	classify(ev, n);  /* changed pages of a shared mapping: K_FILE */
	write_back(ev, n);
	for (uint32_t i = 0; i < n; i++)
		if (ev->v[i].kind == K_FILE)
			ev->v[i].kind = K_SYNCED;
	zap_copied(ev, n);
	pthread_mutex_lock(&up->uffd_lock);
	copy_back(ev, n);
	pthread_mutex_lock(&up->lock);
	finish(ev, n);
	pthread_mutex_unlock(&up->uffd_lock);
	if (up->retry_count)
		upg_kick_handlers(up);  /* writes that waited for their page */
	pthread_mutex_unlock(&up->lock);
	/* Empty the scratch range (a handler ignores the REMOVE event). */
	madvise((void *)up->scratch, off, MADV_DONTNEED);
	batch_ended(ev, off);
	pthread_mutex_lock(&up->lock);
}

/* Write the changed pages of [first, end) of r to its file.  Lock held on
 * entry and exit.  0 or -EIO. */
static int write_dirty(struct upg_evictor *ev, struct upg_region *r, uint64_t first, uint64_t end)
{
	struct upager *up = ev->up;
	uint64_t pos = first;
	uint32_t unframed = 0, failed = 0;
	/* The file's size as it is now: a page's write stops at its end
	 * (file_len()), which may have moved since the last fault looked. */
	struct stat sb;
	if (!fstat(r->file->fd, &sb))
		__atomic_store_n(&r->file->size, (uint64_t)sb.st_size, __ATOMIC_RELAXED);
	for (;;) {
		if (pthread_mutex_trylock(&up->fork_lock)) {
			pthread_mutex_unlock(&up->lock);
			pthread_mutex_lock(&up->fork_lock);
			pthread_mutex_lock(&up->lock);
		}
		uint32_t n = pick_dirty(ev, r, &pos, end, &unframed);
		if (!n) {
			pthread_mutex_unlock(&up->fork_lock);
			break;
		}
		ev->sync_failed = 0;
		sync_batch(ev, n);
		failed += ev->sync_failed;
		pthread_mutex_unlock(&up->fork_lock);
	}
	if (unframed)
		upg_log(up, UPAGER_LOG_ERROR, "%u changed page(s) of the file mapping at %#lx hold no frame (the frame "
			"table was full) and could not be written to the file", unframed, (unsigned long)r->base);
	return failed || unframed ? -EIO : 0;
}

/* Serve upager_sync()'s request, or one shared file mapping whose changes
 * are due (file_dirty_age, or UPAGER_ASYNC).  Lock held.  false: nothing
 * to do. */
static bool file_pass(struct upg_evictor *ev, uint64_t now)
{
	struct upager *up = ev->up;
	struct upg_sync_req *q = up->sync_req;
	if (q && !q->done) {
		q->res = write_dirty(ev, q->r, q->first, q->end);
		q->done = true;
		pthread_cond_broadcast(&up->idle_cond);
		return true;
	}
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		struct upg_mfile *f = r->file;
		if (!f || f->mode != UPAGER_MAP_SHARED || r->dying ||
		    (!f->async_wanted && now - f->dirty_pass_ns < up->file_dirty_age_ns))
			continue;
		f->async_wanted = false;
		f->dirty_pass_ns = now;
		r->busy++;  /* not unmapped between batches */
		write_dirty(ev, r, 0, r->npages);
		upg_region_unbusy(up, r, 1);
		return true;
	}
	return false;
}

static void timed_wait(struct upager *up, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&up->evict_cond, &up->lock, &ts);
}

/* This process's figures, for upager-top (domain.h).  Lock held. */
static void publish(struct upager *up, uint64_t now)
{
	if (!up->dom.shared)
		return;
	struct upg_domain_live l = {
		.threads = up->stall.threads ? up->stall.threads : 1,
		.at_ns = now, .wall_ns = now - up->stall.start_ns,
		.stall_some_ns = up->stall.some_ns, .stall_all_ns = up->stall.full_ns,
		.zero_fills = up->c.zero_fills, .store_reads = up->c.store_reads, .pool_hits = up->c.pool_hits,
		.refaults = up->c.refaults, .evictions = up->c.evictions, .writebacks = up->c.writebacks,
		.bytes_in = up->c.bytes_read, .bytes_out = up->c.bytes_written, .pool_bytes = up->pool.bytes,
		.store_bytes = up->store.size_blocks * 4096ULL,
	};
	if (!up->comm[0])
		upg_comm(up->comm);
	memcpy(l.comm, up->comm, sizeof l.comm);
	upg_domain_publish(&up->dom, &l);
}

/* The program's threads, for the stall figures' "all" (stall.h): the
 * process's, less this runtime's handlers and evictor.  Lock held. */
static void count_threads(struct upager *up, uint64_t now)
{
	up->threads_look_ns = now;
	pthread_mutex_unlock(&up->lock);
	uint32_t all = upg_stall_process_threads(), own = up->nhandlers + 1;
	pthread_mutex_lock(&up->lock);
	if (all)
		up->stall.threads = all > own ? all - own : 1;
	publish(up, now);
	struct upg_tl_sample x = {
		.t_ns = now - up->stall.start_ns, .resident = up->resident,
		.refills = up->c.store_reads + up->c.pool_hits, .zero_fills = up->c.zero_fills,
		.stall_some_ns = up->stall.some_ns,
	};
	upg_tl_add(&up->tl, &x);
}

/* A forked child's pages shared with its parent are counted there (see
 * fork.c); when the parent has exited they are this process's alone. */
static void look_at_parent(struct upager *up, uint64_t now)
{
	up->share_look_ns = now;
	struct pollfd pfd = { .fd = up->share_pidfd, .events = POLLIN };
	if (upg_uncounted(up) && poll(&pfd, 1, 0) <= 0)
		return;  /* it runs on */
	upg_shared_charge_all(up);  /* nothing, when they are all written or let go */
	upg_domain_shares_with(&up->dom, 0);  /* the parent's slot may go now */
	close(up->share_pidfd);
	up->share_pidfd = -1;
}

/* A forked child's PF_SHARED pages are counted in the parent only while
 * the parent maps them too.  When the parent evicts its copy, or writes
 * it (copy-on-write gives it a new page), the page here is this process's
 * alone, yet counted nowhere: the tree's RAM would pass its budget by up to
 * all the pages shared at fork.  So pagemap is asked which are mapped
 * here alone, in runs, and those are charged here. */
static void charge_unshared(struct upager *up, uint64_t now)
{
	up->unshared_look_ns = now;
	if (!up->uncharged || up->pagemap_fd < 0)
		return;
	unsigned char vec[512];
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		uint64_t per = r->psize / 4096, most = sizeof vec / per;
		if (!most)
			continue;  /* pages over 2 MiB: left to the parent's exit */
		uint64_t first = 0, run = 0;
		for (uint64_t pg = upg_pte_next(r, 0);; pg = upg_pte_next(r, pg + 1)) {
			struct upg_pte *p = pg < r->npages ? &r->pte[pg] : NULL;
			bool shared = p && (p->flags & PF_SHARED) && p->state == PG_RESIDENT;
			if (shared && run && first + run == pg && run < most) {
				run++;
				continue;
			}
			/* The run [first, first + run) ends: ask about it. */
			if (run && !upg_pagemap_alone(up->pagemap_fd, r->base + (first << r->pshift), run * per, vec)) {
				for (uint64_t k = 0; k < run; k++) {
					bool alone = true;
					for (uint64_t j = 0; j < per; j++)
						alone &= vec[k * per + j];
					if (!alone)
						continue;
					r->pte[first + k].flags &= (uint8_t)~PF_SHARED;
					bytes += r->psize;
				}
			}
			run = 0;
			if (!p)
				break;
			if (shared)
				first = pg, run = 1;
		}
	}
	upg_shared_charge(up, bytes);
}

static void *evictor_main(void *arg)
{
	upg_internal_thread = 1;
	struct upg_evictor *ev = arg;
	struct upager *up = ev->up;
	ev->q.owner = pthread_self();
	__atomic_store_n(&up->evictor_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
	uint64_t over_since = 0;  /* when the tree went over its budget; 0: it is not */
	pthread_mutex_lock(&up->lock);
	while (!up->stopping) {
		/* The tree's total decides (see domain.h): alone, that is this
		 * process's resident memory. */
		uint64_t now = upg_now_ns();
		uint64_t tree = upg_domain_total(&up->dom);
		bool over = tree > up->high || (up->evict_wanted && tree > up->low);
		/* Over the budget, at once: the parent's exit makes room only
		 * when this child has counted what it shares. */
		if (up->share_pidfd >= 0 && (over || now - up->share_look_ns >= 10ULL * 1000 * 1000))
			look_at_parent(up, now);
		if (up->uncharged && now - up->unshared_look_ns >= (over ? 5 : 50) * 1000ULL * 1000)
			charge_unshared(up, now);
		if (now - up->threads_look_ns >= 100ULL * 1000 * 1000)
			count_threads(up, now);
		if (ev->bufs_used && now - ev->last_batch_ns >= 100ULL * 1000 * 1000) {
			pthread_mutex_unlock(&up->lock);
			release_bufs(ev);
			pthread_mutex_lock(&up->lock);
		}
		if (file_pass(ev, now))
			continue;
		tree = upg_domain_total(&up->dom);
		over = tree > up->high || (up->evict_wanted && tree > up->low);
		if (!over)
			over_since = 0;
		else if (!over_since)
			over_since = now;
		if (over)
			upg_domain_reap(&up->dom, now);
		bool want = over && up->resident && upg_domain_should_evict(&up->dom, now, over_since);
		if (!want) {
			up->evict_wanted = false;
			/* Faults wait, nothing here counts towards the tree's
			 * total, and the others have not made room: the budget
			 * is held by members that cannot give it back (a
			 * stopped process, one that exec'd a program upager
			 * does not page).  Let faults in over it rather than
			 * wait for ever. */
			if (over && up->retry_count && up->resident <= upg_uncounted(up) && !up->evict_stuck &&
			    now - over_since >= 5 * UPG_DOMAIN_WAIT_NS) {
				up->evict_stuck = true;
				upg_log(up, UPAGER_LOG_INFO, "the tree's budget is held by other processes that do "
					"not give pages back; admitting faults over it");
			}
			if (up->retry_count)
				upg_kick_handlers(up);
			/* Over the budget, another member gives pages up
			 * (or nothing here can go): look again soon. */
			timed_wait(up, over ? 2 : 100);
			continue;
		}
		/* A fork waits for the batch in flight (see fork.c), so that no
		 * page is half evicted when the child's view is taken. */
		if (pthread_mutex_trylock(&up->fork_lock)) {
			pthread_mutex_unlock(&up->lock);
			pthread_mutex_lock(&up->fork_lock);
			pthread_mutex_lock(&up->lock);
		}
		uint32_t n = pick(ev);
		if (!n) {
			pthread_mutex_unlock(&up->fork_lock);
			bool full = up->store.grow_failed && !upg_store_has_room(&up->store, UPG_MAX_PAGE / UPG_BLOCK);
			/* Pages admitted over the budget while every frame was
			 * taken (a full store) have none: the policy does not
			 * hold them, and only a discard frees them.  Should they
			 * alone keep memory over the budget, no eviction can
			 * help either.  (Over the budget, with the store not
			 * full, pick() finds nothing only in an empty policy.) */
			bool frameless = up->c.unframed && up->resident > up->budget;
			if ((full || frameless) && !up->evict_stuck) {
				up->evict_stuck = true;
				upg_log(up, UPAGER_LOG_INFO, full ? "eviction cannot free memory now; admitting faults "
					"over the budget" : "pages admitted while the frame table was full keep memory "
					"over the budget; admitting faults over the budget");
			}
			/* Faults are let in over the budget rather than left
			 * waiting for an eviction that cannot come. */
			if (full || frameless) {
				if (up->retry_count)
					upg_kick_handlers(up);
				/* Disk space may come back. */
				if (full)
					up->store.grow_failed = up->store.size_blocks >= up->store.max_blocks;
				timed_wait(up, 50);
				continue;
			}
			/* Nothing in RAM to evict, but the pool holds pages (a
			 * member of a tree whose pages are all compressed):
			 * write half of it on to the store. */
			if (up->pool.bytes) {
				uint64_t half = up->pool.bytes / 2;
				pthread_mutex_unlock(&up->lock);
				pthread_mutex_lock(&up->fork_lock);
				spill(ev, half ? half : 1);
				pthread_mutex_unlock(&up->fork_lock);
				pthread_mutex_lock(&up->lock);
				continue;
			}
			/* Everything resident is in flight; wait for it. */
			timed_wait(up, 1);
			continue;
		}
		pthread_mutex_unlock(&up->lock);

		size_t off = take_out(ev, n);
		classify(ev, n);
		pool_pass(ev, n);
		pthread_mutex_lock(&up->lock);
		assign_slots(ev, n);
		bool full = up->store.grow_failed && !upg_store_has_room(&up->store, 1);
		pthread_mutex_unlock(&up->lock);
		write_back(ev, n);

		zap_copied(ev, n);
		pthread_mutex_lock(&up->uffd_lock);
		copy_back(ev, n);
		pthread_mutex_lock(&up->lock);
		uint32_t freed = finish(ev, n);
		pthread_mutex_unlock(&up->uffd_lock);
		if (full && !ev->full_logged) {
			ev->full_logged = true;
			upg_log(up, UPAGER_LOG_WARN, "the store is full (%llu MiB, in %s): dirty pages stay in RAM "
				"over the budget; raise UPAGER_STORE_MAX / store_max or free disk space",
				(unsigned long long)(up->store.size_blocks * UPG_BLOCK >> 20), up->store.where);
		}
		if (!full)
			ev->full_logged = false;
		uint32_t nkeep = 0, nstay = 0, nback = 0, kept_psize = 0;
		for (uint32_t i = 0; i < n; i++) {
			nkeep += ev->v[i].kind == K_KEEP;
			if (ev->v[i].kind == K_KEEP && ev->v[i].r->psize > kept_psize)
				kept_psize = ev->v[i].r->psize;
			nstay += ev->v[i].kind == K_STAY;
			nback += ev->v[i].kind == K_BACK;
		}
		bool kept = nkeep, rebuilt = nback;
		/* Stuck: eviction cannot bring resident memory under the
		 * budget.  Either the batches since one last freed a page
		 * have between them taken as many bytes as are resident, and
		 * none could go (every page shared with a child and not
		 * movable, say), or this batch kept pages it could not store
		 * (failed writes, a full store) while a fault of their page
		 * size would wait (the tree's total within a page of its
		 * budget), or the last batch of writes to the store failed, a
		 * short while ago (store_wrote()).  That holds across batches
		 * that free pages into the pool: with a remote store
		 * down each batch that writes waits out its deadline, and
		 * faults held for those batches let the program on by a pool's
		 * worth of pages every few seconds.  Faults are then let in
		 * over the budget; otherwise each would wait for another round
		 * of failing work, and the program would crawl.  One batch that
		 * frees nothing is not stuck: what stayed goes to the back of
		 * the policy, and the next batch, at once, takes other pages.
		 * A page rebuilt after a partial discard (K_BACK) is whole
		 * again and can go next time.  With the watermarks a page
		 * apart a batch is one page, and counting one such page as
		 * stuck let every fault in, unlimited, for the 50 ms wait
		 * below. */
		ev->unfreed = freed || rebuilt ? 0 : ev->unfreed + off;
		bool failing = ev->store_err && upg_now_ns() < ev->store_err_until;
		bool stuck = (ev->unfreed && ev->unfreed >= up->resident) || failing ||
			     (kept && upg_domain_total(&up->dom) + kept_psize > upg_domain_budget(&up->dom));
		if (stuck != up->evict_stuck) {
			if (stuck && failing)
				;  /* said by store_wrote() */
			else if (stuck)
				upg_log(up, UPAGER_LOG_INFO, "eviction cannot free memory now (a batch of %u freed %u: "
					"%u could not be stored, %u could not be moved); admitting faults over the budget",
					n, freed, nkeep, nstay);
			else
				upg_log(up, UPAGER_LOG_INFO, "eviction is freeing memory again");
		}
		up->evict_stuck = stuck;
		if (up->retry_count)
			upg_kick_handlers(up);
		pthread_mutex_unlock(&up->lock);

		/* Empty the scratch range; a handler reads (and ignores)
		 * the REMOVE event this raises. */
		madvise((void *)up->scratch, off, MADV_DONTNEED);
		batch_ended(ev, off);
		spill(ev, 0);
		pthread_mutex_unlock(&up->fork_lock);

		pthread_mutex_lock(&up->lock);
		if (stuck || (kept && full)) {
			/* Do not spin on pages that cannot go anywhere. */
			if (up->store.grow_failed && up->store.size_blocks < up->store.max_blocks)
				up->store.grow_failed = false;  /* disk space may have come back */
			timed_wait(up, stuck ? 50 : 5);
		}
	}
	/* A sync asked for and not served: its caller must not wait on. */
	if (up->sync_req && !up->sync_req->done) {
		up->sync_req->res = -EIO;
		up->sync_req->done = true;
		pthread_cond_broadcast(&up->idle_cond);
	}
	pthread_mutex_unlock(&up->lock);
	return NULL;
}

int upg_evictor_start(struct upager *up, char *err, size_t errlen)
{
	struct upg_evictor *ev = calloc(1, sizeof *ev);
	if (!ev) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = -ENOMEM;
	ev->up = up;
	ev->mem_fd = -1;
	ev->maps_fd = -1;
	ev->kick_fd = -1;
	up->ev = ev;
	ev->cap = SCRATCH_LEN / 4096;
	ev->v = calloc(ev->cap, sizeof *ev->v);
	/* Mapped, not malloc()ed: untouched until a half-zapped page needs it
	 * (a malloc() debugging fill would make it 2 MiB of RAM at once). */
	ev->image = mmap(NULL, UPG_MAX_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ev->image == MAP_FAILED)
		ev->image = NULL;
	ev->mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	ev->maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ev->pid = getpid();  /* started again in a forked child */
	ev->vm_read = true;
	ev->copy = mmap(NULL, SCRATCH_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ev->copy == MAP_FAILED)
		ev->copy = NULL;
	ev->ctmp = mmap(NULL, UPG_POOL_BOUND + (size_t)SPILL_MAX * UPG_POOL_MAX_CLEN, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ev->ctmp == MAP_FAILED)
		ev->ctmp = NULL;
	else
		ev->spill_c = ev->ctmp + UPG_POOL_BOUND;
	if (up->seal.encrypt) {
		ev->cipher = mmap(NULL, 2 * SCRATCH_LEN, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (ev->cipher == MAP_FAILED)
			ev->cipher = NULL;
	}
	if (!ev->v || !ev->image || !ev->copy || !ev->ctmp || (up->seal.encrypt && !ev->cipher)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	up->scratch_len = SCRATCH_LEN;
	void *s = mmap(NULL, SCRATCH_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s == MAP_FAILED) {
		snprintf(err, errlen, "scratch range: %s", strerror(errno));
		goto fail;
	}
	up->scratch = (uintptr_t)s;
	madvise(s, SCRATCH_LEN, MADV_NOHUGEPAGE);
	rc = upg_uffd_register(up->uffd, up->scratch, SCRATCH_LEN, false);
	if (rc) {
		snprintf(err, errlen, "registering the scratch range: %s", strerror(-rc));
		goto fail;
	}
	rc = io_uring_queue_init(RING_ENTRIES, &ev->ring, 0);
	if (rc) {
		snprintf(err, errlen, "io_uring_queue_init: %s%s", strerror(-rc),
			 rc == -EPERM ? " (io_uring is disabled: check sysctl kernel.io_uring_disabled)" : "");
		goto fail;
	}
	ev->ring_ok = true;
	rc = io_uring_register_files(&ev->ring, &up->store.fd, 1);
	if (rc) {
		snprintf(err, errlen, "io_uring_register_files: %s", strerror(-rc));
		goto fail;
	}
	ev->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = ev->kick_fd < 0 ? -errno : upg_tq_init(&ev->q, &ev->ring, ev->kick_fd, RING_ENTRIES);
	if (rc) {
		snprintf(err, errlen, "the evictor's queue: %s", strerror(-rc));
		goto fail;
	}
	ev->q.ring_only = up->store_tier.ops->on_ring;
	upg_tq_arm_kick(&ev->q);
	rc = upg_thread_start(&ev->tid, evictor_main, ev, "upg-evictor");
	if (rc) {
		snprintf(err, errlen, "cannot start the evictor thread: %s", strerror(-rc));
		goto fail;
	}
	ev->started = true;
	return 0;
fail:
	upg_evictor_stop(up);
	return rc < 0 ? rc : -ENOMEM;
}

void upg_evictor_forget(struct upager *up)
{
	if (up->ev)
		up->ev->started = false;
	upg_evictor_stop(up);
}

void upg_evictor_stop(struct upager *up)
{
	struct upg_evictor *ev = up->ev;
	if (!ev)
		return;
	if (ev->started) {
		pthread_mutex_lock(&up->lock);
		__atomic_store_n(&up->stopping, true, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&up->evict_cond);
		pthread_mutex_unlock(&up->lock);
		pthread_join(ev->tid, NULL);
	}
	upg_tq_fini(&ev->q);
	if (ev->ring_ok)
		io_uring_queue_exit(&ev->ring);
	if (ev->kick_fd >= 0)
		close(ev->kick_fd);
	if (up->scratch) {
		upg_uffd_unregister(up->uffd, up->scratch, up->scratch_len);
		munmap((void *)up->scratch, up->scratch_len);
		/* Handlers still run and look at it (upg_is_scratch) under
		 * the lock. */
		pthread_mutex_lock(&up->lock);
		up->scratch = 0;
		pthread_mutex_unlock(&up->lock);
	}
	if (ev->copy)
		munmap(ev->copy, SCRATCH_LEN);
	if (ev->ctmp)
		munmap(ev->ctmp, UPG_POOL_BOUND + (size_t)SPILL_MAX * UPG_POOL_MAX_CLEN);
	if (ev->cipher)
		munmap(ev->cipher, 2 * SCRATCH_LEN);
	if (ev->mem_fd >= 0)
		close(ev->mem_fd);
	if (ev->maps_fd >= 0)
		close(ev->maps_fd);
	if (ev->image)
		munmap(ev->image, UPG_MAX_PAGE);
	free(ev->v);
	free(ev);
	up->ev = NULL;
}
