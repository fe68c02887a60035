/* SPDX-License-Identifier: MIT */
/*
 * The fault loop.
 *
 * Each handler thread owns an io_uring.  The ring polls the userfaultfd and
 * the thread's kick eventfd (multishot), and carries the store reads, so one
 * wait covers everything: the loop never sleeps on one read while other
 * faults wait.
 *
 * A fault on a page that
 *   - was never touched or was discarded: zero-filled, with fault-around;
 *   - is in the store: read into a registered bounce buffer, then
 *     UFFDIO_COPY, with readahead over pages stored contiguously;
 *   - is already being filled or read: nothing to do, the COPY wakes every
 *     thread waiting on the page (duplicate faults coalesce);
 *   - is being evicted, or needs RAM the budget does not have now: queued;
 *     the evictor kicks the handlers when it has finished a batch.
 *
 * uffd_lock is held while reading messages and while copying pages in, so
 * that an application's discard (a REMOVE event, after which the kernel zaps
 * the range) is ordered either before the copy (the page is copied in as
 * zeros) or after it (the zap removes what was copied).
 */
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* CQE tags: these two small even numbers, pointers to struct upg_io
 * (aligned), or a child's hang-up poll, with UPG_TAG_CHILD set (fork.c). */
#define TAG_UFFD 2
#define TAG_KICK 4
#define UNIT 4096u
#define BOUNCE_ALIGN ((size_t)2 << 20)   /* a huge page, for the bounce buffers */
#define UFFD_MSG_BATCH 64
#define READ_TRIES 4
#define NO_PAGE UINT64_MAX
#define POOL_CHUNK 32  /* pages of a stream's window read from the pool at a time (pool_read_n()) */

struct upg_io {
	struct upg_region *reg;
	uint32_t slot;            /* see upg_slot_store() */
	uint64_t first;
	uint64_t fault_page;  /* the page a thread waits on, or NO_PAGE */
	uint64_t t0;
	uint64_t t_sub;       /* when the read was submitted: its cost, without any wait for the budget */
	uint32_t npages;
	uint32_t unit;        /* bounce offset, in units */
	uint32_t units;
	uint32_t next_free;
	uint32_t pending;     /* pool reads: pages not yet decompressed (one request each) */
	int32_t res;          /* pool reads: the first failure, else 0 */
	uint8_t fault_write;
	uint8_t tries;
	uint8_t ghost;
	uint8_t pool;         /* from the pool, not the store */
	uint8_t file;         /* from the region's mapped file, not the store */
	uint8_t wp;           /* store pages go in write-protected, PF_WPCLEAN (wp_worth()) */
	uint8_t stream;       /* pool reads: the stream (r->ra) + 1 whose window this read began, or 0 */
	uint8_t seq;          /* pool reads: a window of more than one page, or a part of one */
	uint32_t chain;       /* pool reads: pages of that window still to read after this one */
};

struct upg_handler {
	struct upager *up;
	bool forgotten;       /* in a forked child: the parent's thread's (upg_handlers_forget()) */
	pthread_t tid;
	struct io_uring ring;
	struct upg_tq q;      /* its queue to the tiers, on ring */
	int kick_fd;
	char *bounce;
	size_t bounce_len;
	int bufs;             /* bounce registered with the ring: 0 not yet, 1 yes, -1 failed */
	uint32_t units;
	uint64_t *unit_map;   /* 1: unit in use */
	struct upg_io *ios;
	uint32_t nios;
	uint32_t io_free;     /* free list head, nios when empty */
	uint32_t inflight;
	uint32_t wp_probe;    /* pool reads: one in 64 goes in write-protected whatever wp_worth() says */
	bool started, ring_ok, exit;
	/* Set by upg_handlers_stop(): leave once no read is in flight.  Not
	 * up->stopping, which upager_close() sets while the evictor may still
	 * finish a batch: its madvise() of the scratch range then raises a
	 * REMOVE event, and waits until a handler has read it. */
	bool quit;
	bool deferred;        /* the ring waits for handler_main() to enable it */
};

/* ---- bounce buffer units ---- */

static bool unit_used(const struct upg_handler *h, uint32_t i)
{
	return h->unit_map[i / 64] >> (i % 64) & 1;
}

static void units_mark(struct upg_handler *h, uint32_t first, uint32_t n, bool on)
{
	for (uint32_t i = first; i < first + n; i++) {
		if (on)
			h->unit_map[i / 64] |= 1ULL << (i % 64);
		else
			h->unit_map[i / 64] &= ~(1ULL << (i % 64));
	}
}

static bool units_alloc(struct upg_handler *h, uint32_t n, uint32_t *out)
{
	for (uint32_t i = 0; i + n <= h->units;) {
		uint32_t k = 0;
		while (k < n && !unit_used(h, i + k))
			k++;
		if (k == n) {
			units_mark(h, i, n, true);
			*out = i;
			return true;
		}
		i += k + 1;
	}
	return false;
}

static struct upg_io *io_get(struct upg_handler *h)
{
	if (h->io_free == h->nios)
		return NULL;
	struct upg_io *io = &h->ios[h->io_free];
	h->io_free = io->next_free;
	return io;
}

static void io_put(struct upg_handler *h, struct upg_io *io)
{
	units_mark(h, io->unit, io->units, false);
	io->next_free = h->io_free;
	h->io_free = (uint32_t)(io - h->ios);
}

/* ---- helpers (up->lock held) ---- */

static uint64_t fault_done(struct upager *up, uint64_t t0)
{
	uint64_t now = upg_now_ns(), ns = now - t0;
	upg_stall_add(&up->stall, t0, now);
	up->c.fault_count++;
	up->c.fault_ns_total += ns;
	upg_hist_add(&up->hist, ns);
	return ns;
}

static enum upg_policy_hint hint_for(struct upager *up, struct upg_pte *p)
{
	uint64_t window = up->budget >> 12;  /* the data the budget holds, in the counter's units */
	return upg_policy_is_ghost(up->fc.seq, p->evict_seq, window < UPG_FC_SEQ_MASK ? (uint32_t)window : UPG_FC_SEQ_MASK)
		       ? UPG_HINT_GHOST : UPG_HINT_NEW;
}

static void defer(struct upager *up, struct upg_region *r, uint64_t page, struct upg_pte *p, bool write,
		  uint64_t t0, bool prefetch)
{
	/* Room admitted for it, if any, is not taken now. */
	upg_budget_release(up);
	if (p->flags & PF_DEFERRED)
		return;  /* already queued; the same fault seen again */
	struct upg_retry rt = { .reg = r, .page = page, .t0 = t0, .write = write, .prefetch = prefetch,
				.tid = up->cur_tid };
	if (upg_retry_push(up, &rt)) {
		p->flags |= PF_DEFERRED;
		return;
	}
	/* The queue is full (tens of thousands of blocked faults): admit
	 * over the budget rather than lose a wake-up. */
	up->evict_stuck = true;
	upg_log(up, UPAGER_LOG_WARN, "retry queue full; admitting a fault over the budget");
}

static void wake_page(struct upager *up, uintptr_t addr, uint32_t psize)
{
	upg_uffd_wake(up->uffd, addr & ~((uintptr_t)psize - 1), psize);
}

static void absorb_events(struct upg_handler *h);

/* The ioctls a handler makes while holding uffd_lock: on -EAGAIN an event
 * is waiting; read it (absorb_events) and try again.  With watch, a copy
 * stops (-ECANCELED) once an event read there discards all of watch's page
 * or marks a part of it not in zm: what is mapped of the page then went in
 * before the event, and the kernel's zap, which follows it, takes it out.
 * one_page: dst is within one page, which may lie in several mappings
 * (upg_uffd_copy_page()). */
static int h_copy(struct upg_handler *h, uintptr_t dst, const void *src, size_t len, const struct upg_pte *watch,
		  uint16_t zm, size_t *existed, bool one_page)
{
	for (;;) {
		int rc = one_page ? upg_uffd_copy_page(h->up->uffd, dst, src, len, existed, false)
				  : upg_uffd_copy(h->up->uffd, dst, src, len, existed);
		rc = upg_inject(UPG_INJ_COPY, rc, len);
		if (rc == -EFAULT || rc == -EBADF || rc == -ENOTTY)
			upg_fatal(h->up, "UFFDIO_COPY of %zu bytes at %#lx failed: %s (the runtime's own state is "
				  "broken; faulting threads could never be woken)", len, (unsigned long)dst,
				  strerror(-rc));
		if (rc != -EAGAIN)
			return rc;
		absorb_events(h);
		if (watch) {
			pthread_mutex_lock(&h->up->lock);
			bool gone = (watch->flags & PF_DISCARDED) || (watch->zmask & ~zm);
			pthread_mutex_unlock(&h->up->lock);
			if (gone)
				return -ECANCELED;
		}
	}
}

static int h_unprotect(struct upg_handler *h, uintptr_t start, size_t len)
{
	for (;;) {
		int rc = upg_uffd_writeprotect(h->up->uffd, start, len, false);
		if (rc != -EAGAIN)
			return rc;
		absorb_events(h);
	}
}

static int h_poison(struct upg_handler *h, uintptr_t start, size_t len)
{
	for (;;) {
		int rc = upg_uffd_poison(h->up->uffd, start, len);
		if (rc != -EAGAIN)
			return rc;
		absorb_events(h);
	}
}

/* ---- zero fill ---- */

/* Is page a PF_ZAPWAIT page that still maps something?  look, when not
 * NULL, holds upg_mapped() of the pages from first on. */
static bool zapwait_blocks(struct upager *up, struct upg_region *r, uint64_t page, const unsigned char *look,
			   uint64_t first)
{
	if (!(upg_pte_get(r, page)->flags & PF_ZAPWAIT))
		return false;
	unsigned char own[UPG_MAX_PAGE / 4096];
	const unsigned char *vec = look ? look + (page - first) * (r->psize / 4096) : NULL;
	if (!vec) {
		if (upg_mapped(up, r->base + (page << r->pshift), r->psize, own))
			return true;  /* cannot tell: wait, as if mapped */
		vec = own;
	}
	for (uint32_t q = 0; q < r->psize / 4096; q++)
		if (vec[q] & 1)
			return true;
	return false;
}

/* Pages discarded while mapped (PF_ZAPWAIT) keep their old bytes until the
 * kernel's zap lands.  A fill then would skip those bytes (UFFDIO_COPY
 * leaves what is mapped) and make the page RESIDENT with them, and an
 * eviction before the zap would store them: the discard lost.  So trim the
 * cluster [*lo, *hi) around page to pages with nothing mapped.  false when
 * page itself still maps something: its thread is woken to fault again,
 * which it does once the zap has landed.  up->lock held (the look does no
 * I/O). */
static bool zapwait_trim(struct upager *up, struct upg_region *r, uint64_t page, uint64_t *lo, uint64_t *hi)
{
	bool any = false;
	for (uint64_t pg = *lo; pg < *hi && !any; pg++)
		any = upg_pte_get(r, pg)->flags & PF_ZAPWAIT;
	if (!any)
		return true;
	/* One look over the cluster (at most zero_len: 2 MiB). */
	unsigned char vec[UPG_MAX_PAGE / 4096];
	uint32_t sub = r->psize / 4096;
	bool looked = (*hi - *lo) * sub <= sizeof vec &&
		      upg_mapped(up, r->base + (*lo << r->pshift), (*hi - *lo) << r->pshift, vec) == 0;
	const unsigned char *look = looked ? vec : NULL;
	if (zapwait_blocks(up, r, page, look, *lo))
		return false;
	uint64_t l = page, h = page + 1;
	while (l > *lo && !zapwait_blocks(up, r, l - 1, look, *lo))
		l--;
	while (h < *hi && !zapwait_blocks(up, r, h, look, *lo))
		h++;
	*lo = l;
	*hi = h;
	return true;
}

/* Serve page of r as zeros, with fault-around over untouched neighbours.
 * Called with uffd_lock and up->lock held; returns with both held. */
static void zero_fill(struct upg_handler *h, struct upg_region *r, uint64_t page, bool write, uint64_t t0)
{
	struct upager *up = h->up;
	uint64_t maxk = up->zero_len / r->psize;
	if (!maxk)
		maxk = 1;
	/* Sequential first touches grow the cluster, like readahead. */
	struct upg_stream *st = upg_stream_match(r, r->fa, page, up->cfg.fault_around, (uint32_t)maxk);
	uint64_t k = st->win < maxk ? st->win : maxk;
	uint64_t start = page - page % k, end = start + k;
	if (end > r->npages)
		end = r->npages;
	uint64_t lo = page, hi = page + 1;
	while (lo > start && upg_pte_get(r, lo - 1)->state == PG_NONE)
		lo--;
	while (hi < end && upg_pte_get(r, hi)->state == PG_NONE)
		hi++;
	if (!zapwait_trim(up, r, page, &lo, &hi)) {
		wake_page(up, r->base + (page << r->pshift), r->psize);
		return;
	}
	uint64_t n = upg_budget_admit(up, hi - lo, r->psize);
	if (!n) {
		defer(up, r, page, upg_pte_get(r, page), write, t0, false);
		return;
	}
	if (n < hi - lo) {
		/* Keep the faulting page; prefer the pages after it. */
		if (page + n <= hi)
			lo = page, hi = page + n;
		else
			lo = hi - n;
	}
	for (uint64_t pg = lo; pg < hi; pg++) {
		struct upg_pte *p = upg_pte_get(r, pg);
		upg_frame_take_or_none(up, r, pg, p);
		p->state = PG_FILLING;
		p->flags &= PF_DEFERRED;
	}
	n = hi - lo;
	r->busy += (uint32_t)n;
	st->next = hi;
	upg_resident_add(up, n * r->psize);
	pthread_mutex_unlock(&up->lock);

	uintptr_t dst = r->base + (lo << r->pshift);
	size_t len = n << r->pshift;
	int rc = 0;
	for (size_t off = 0; off < len && !rc; off += up->zero_len)
		rc = h_copy(h, dst + off, up->zero_buf, len - off < up->zero_len ? len - off : up->zero_len,
			    NULL, 0, NULL, n == 1);
	uint64_t only = UINT64_MAX;
	if ((rc == -ENOENT || rc == -EINVAL) && n > 1) {
		/* The cluster reaches into an unmapped or differently
		 * protected neighbour (one copy must stay inside one
		 * mapping): fill just the faulting page. */
		only = page;
		dst = r->base + (page << r->pshift);
		rc = h_copy(h, dst, up->zero_buf, r->psize, NULL, 0, NULL, true);
	}
	pthread_mutex_lock(&up->lock);
	uint64_t filled = 0;
	for (uint64_t pg = lo; pg < hi; pg++) {
		struct upg_pte *p = upg_pte_get(r, pg);
		p->flags &= ~PF_DISCARDED;  /* it is zeros either way */
		p->zmask = 0;
		if (rc || (only != UINT64_MAX && pg != only)) {
			upg_frame_release(up, p);
			p->state = PG_NONE;
			continue;
		}
		p->state = PG_RESIDENT;
		p->flags |= PF_DIRTY;
		if (p->frame != UPG_NOFRAME)
			up->pol_ops->insert(up->pol, p->frame, pg == page ? hint_for(up, p) : UPG_HINT_READAHEAD);
		filled++;
	}
	upg_resident_sub(up, (n - filled) * r->psize);
	up->c.zero_fills += filled;
	up->c.zero_fill_bytes += filled * r->psize;
	if (rc) {
		/* The faulting page itself is not mapped (unmapped meanwhile,
		 * or PROT_NONE): wake the thread; it gets SIGSEGV or faults
		 * again into whatever is there now. */
		upg_log(up, UPAGER_LOG_DEBUG, "zero fill at %#lx failed: %s", (unsigned long)dst, strerror(-rc));
		wake_page(up, r->base + (page << r->pshift), r->psize);
	}
	upg_region_unbusy(up, r, (uint32_t)n);
	fault_done(up, t0);
}

/* ---- store reads ---- */

static void submit_read(struct upg_handler *h, struct upg_io *io)
{
	struct upager *up = h->up;
	size_t len = (size_t)io->npages << io->reg->pshift;
	if (!h->bufs) {
		/* The first store read registers (and so pins and fills) the
		 * bounce buffers, from this thread, the ring's only issuer.
		 * Where that fails, reads go unregistered: slower, as right. */
		struct iovec iov = { .iov_base = h->bounce, .iov_len = h->bounce_len };
		int rc = io_uring_register_buffers(&h->ring, &iov, 1);
		h->bufs = rc ? -1 : 1;
		if (rc)
			upg_log(up, UPAGER_LOG_WARN, "io_uring_register_buffers: %s%s; store reads go unregistered",
				strerror(-rc), rc == -ENOMEM ? " (raise the locked-memory limit, ulimit -l)" : "");
		else
			h->q.fixed = h->bounce, h->q.fixed_len = h->bounce_len;
	}
	h->inflight++;
	if (io->pool) {
		/* The pool keeps pages apart: one request per page, each
		 * page's handle in its pte (see pool_read()). */
		io->pending = io->npages;
		io->res = 0;
		for (uint32_t i = 0; i < io->npages; i++)
			upg_tier_read(&up->pool_tier, &h->q, upg_pte_get(io->reg, io->first + i)->evict_seq,
				      h->bounce + (size_t)io->unit * UNIT + ((size_t)i << io->reg->pshift),
				      io->reg->psize, (uint64_t)(uintptr_t)io);
	} else if (io->file) {
		struct upg_mfile *f = io->reg->file;
		upg_tier_read(&f->tier, &h->q, f->off + (io->first << io->reg->pshift), h->bounce + (size_t)io->unit * UNIT,
			      (uint32_t)len, (uint64_t)(uintptr_t)io);
	} else
		upg_tier_read(&up->store_tier, &h->q, io->slot, h->bounce + (size_t)io->unit * UNIT, (uint32_t)len,
			      (uint64_t)(uintptr_t)io);
}

/* How many pages a read from page of r may bring in: the whole window for
 * a prefetch or a region advised sequential, one for one advised random,
 * else the window of the sequential stream page belongs to (*st, whose
 * next page the caller moves on; NULL otherwise); at most a quarter of
 * the handler's bounce buffer. */
static uint32_t read_window(struct upg_handler *h, struct upg_region *r, uint64_t page, bool prefetch,
			    struct upg_stream **st)
{
	struct upager *up = h->up;
	uint32_t want = 1;
	*st = NULL;
	if (r->advice == UPAGER_ADV_SEQUENTIAL || prefetch) {
		want = up->cfg.readahead_max;
	} else if (r->advice != UPAGER_ADV_RANDOM) {
		*st = upg_stream_match(r, r->ra, page, 1, up->cfg.readahead_max);
		want = (*st)->win;
	}
	uint32_t max_units = h->units / 4 ? h->units / 4 : 1;
	uint64_t limit = ((uint64_t)max_units * UNIT) >> r->pshift;
	if (!limit)
		limit = 1;
	return want > limit ? (uint32_t)limit : want;
}

/* A fault reads p back from the pool or the store: the forecast's
 * histogram and the pool's share hear of it.  Lock held. */
static void refilled(struct upager *up, const struct upg_pte *p, bool from_pool)
{
	uint64_t d = upg_fc_add(&up->fc, p->evict_seq);
	if (!up->share.hi)
		return;  /* no pool */
	upg_share_refill(&up->share, d, from_pool, up->pool.bytes);
	__atomic_store_n(&up->pool_max, upg_share_bytes(&up->share), __ATOMIC_RELAXED);
}

/* Whether r's pages may go in write-protected for PF_WPCLEAN at all: the
 * kernel has uffd-wp, and r is no file mapping (whose pages go in
 * protected for their own reason, and leave by PF_DIRTY). */
static bool wp_able(const struct upager *up, const struct upg_region *r)
{
	return (up->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) && !r->file;
}

/* Whether a store read installs its pages write-protected, so that the
 * evictor can drop them unlooked-at while they stay unwritten
 * (PF_WPCLEAN), and a pool read, so that they go back to the objects they
 * came from (PF_POOLCOPY): while at most an eighth of the pages read back were
 * written before they left.  Each such write costs a write-protect fault,
 * about two or three digests' worth here, so a quarter would be even; an
 * eighth leaves a margin.  Pages that went in writable are counted too,
 * by what the digests said of them at eviction, so the choice follows the
 * program either way.  Lock held. */
static bool wp_worth(struct upager *up, struct upg_region *r)
{
	if (!wp_able(up, r))
		return false;
	return (uint64_t)r->wpc_dirtied * 8 <= (uint64_t)r->wpc_clean + r->wpc_dirtied;
}

/* Start a read of page of r (POOLED) from the pool, with the POOLED pages
 * after it when the access looks sequential (the window of store_read()):
 * each page is one request to the pool's tier, which decompresses at once
 * and posts its completion; complete_read() copies them in together, as a
 * store read's.  Until then each page's handle waits in its evict_seq,
 * where a forked child finds it (fork.c).  Locks as zero_fill. */
static void pool_read_n(struct upg_handler *h, struct upg_region *r, uint64_t page, bool write, uint64_t t0,
			bool prefetch, uint32_t want, struct upg_stream *st, bool chained)
{
	struct upager *up = h->up;
	struct upg_pte *p = upg_pte_get(r, page);
	/* A stream's window, a prefetch's, or one of a region advised
	 * sequential: more than one page wanted.  A fault at random wants
	 * one (a stream matched anew starts at a window of 1). */
	bool seq = want > 1 || chained;
	/* A window of a stream (or of a region advised sequential) is read
	 * POOL_CHUNK pages at a time, the next part when one lands
	 * (complete_read()): the faulting thread goes on with the first part
	 * while the next is decompressed, instead of waiting for the whole
	 * window. */
	uint32_t chain = 0;
	if (want > POOL_CHUNK && (st || r->advice == UPAGER_ADV_SEQUENTIAL)) {
		chain = want - POOL_CHUNK;
		want = POOL_CHUNK;
	}
	uint32_t n = 1;
	while (n < want && page + n < r->npages && upg_pte_get(r, page + n)->state == PG_POOLED)
		n++;
	if (n < want)
		chain = 0;  /* the run of pooled pages ends here */
	/* A part of a window that finds no room (or no read slot) now
	 * ends the window, and a fault further on reads for itself: a
	 * deferred part would hide that fault. */
	uint64_t ok = upg_budget_admit(up, n, r->psize);
	if (!ok) {
		if (chained)
			upg_budget_release(up);
		else
			defer(up, r, page, p, write, t0, prefetch);
		return;
	}
	n = (uint32_t)ok;
	struct upg_io *io = io_get(h);
	uint32_t unit;
	if (io && !units_alloc(h, n, &unit)) {
		n = 1;
		if (!units_alloc(h, 1, &unit)) {
			io->units = 0;
			io_put(h, io);
			io = NULL;
		}
	}
	if (!io) {
		if (chained)
			upg_budget_release(up);
		else
			defer(up, r, page, p, write, t0, prefetch);
		return;
	}
	bool ghost = hint_for(up, p) == UPG_HINT_GHOST;
	if (!prefetch)
		refilled(up, p, true);
	for (uint32_t i = 0; i < n; i++) {
		struct upg_pte *q = upg_pte_get(r, page + i);
		q->evict_seq = q->frame;  /* the handle */
		q->frame = UPG_NOFRAME;
		upg_frame_take_or_none(up, r, page + i, q);
		q->state = PG_READING;
		q->flags = (uint8_t)((q->flags & PF_DEFERRED) | PF_POOLREAD);
	}
	r->busy += n;
	if (st) {
		st->next = page + n;
		st->stamp = r->stream_clock;  /* in use: not the one upg_stream_match() recycles */
	}
	upg_resident_add(up, (uint64_t)n * r->psize);
	*io = (struct upg_io){
		.reg = r, .first = page, .npages = n, .unit = unit, .units = n, .slot = p->slot, .pool = 1,
		.fault_page = prefetch ? NO_PAGE : page, .fault_write = write, .t0 = t0, .ghost = ghost,
		.t_sub = upg_now_ns(), .chain = chain,
		/* One in 64 protected whatever the counts say, so that they
		 * keep coming for a region whose pages live in the pool. */
		.wp = wp_worth(up, r) || (wp_able(up, r) && (++h->wp_probe & 63) == 0),
		.stream = st ? (uint8_t)(st - r->ra + 1) : 0,
		.seq = seq,
	};
	submit_read(h, io);
}

static void pool_read(struct upg_handler *h, struct upg_region *r, uint64_t page, bool write, uint64_t t0,
		      bool prefetch)
{
	struct upg_stream *st;
	uint32_t want = read_window(h, r, page, prefetch, &st);  /* pool pages are one unit each */
	pool_read_n(h, r, page, write, t0, prefetch, want, st, false);
}

/* A part of a stream's window from the pool landed (locks as
 * complete_read()): read the next part, while the stream still stands
 * where this one left it and the run of pooled pages goes on. */
static void pool_read_on(struct upg_handler *h, const struct upg_io *io)
{
	struct upg_region *r = io->reg;
	uint64_t page = io->first + io->npages;
	if (!io->chain || r->dying || page >= r->npages)
		return;
	const struct upg_pte *p = upg_pte_get(r, page);
	if (p->state != PG_POOLED || (p->flags & PF_DEFERRED))
		return;
	struct upg_stream *st = io->stream ? &r->ra[io->stream - 1] : NULL;
	if (st && st->next != page)
		return;  /* taken over by a fault, or by another stream */
	pool_read_n(h, r, page, false, io->t0, true, io->chain, st, true);
}

/* Take what a read of up to n pages from page of r needs: room in the
 * budget, a read slot, bounce units (for the faulting page alone, when
 * the n do not fit).  The pages become READING with frames.  NULL, the
 * fault deferred, when something is short.  Locks as zero_fill. */
static struct upg_io *begin_read(struct upg_handler *h, struct upg_region *r, uint64_t page, uint32_t n, bool write,
				 uint64_t t0, bool prefetch, struct upg_stream *st)
{
	struct upager *up = h->up;
	struct upg_pte *p = upg_pte_get(r, page);
	uint64_t ok = upg_budget_admit(up, n, r->psize);
	if (!ok) {
		defer(up, r, page, p, write, t0, prefetch);
		return NULL;
	}
	n = (uint32_t)ok;
	struct upg_io *io = io_get(h);
	if (!io) {
		/* Every read slot busy: a completion retries it. */
		defer(up, r, page, p, write, t0, prefetch);
		return NULL;
	}
	uint32_t unit, units = (uint32_t)(((uint64_t)n << r->pshift) / UNIT);
	if (!units_alloc(h, units, &unit)) {
		n = 1;
		units = r->psize / UNIT;
		if (!units_alloc(h, units, &unit)) {
			io->units = 0;
			io_put(h, io);
			defer(up, r, page, p, write, t0, prefetch);
			return NULL;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct upg_pte *q = upg_pte_get(r, page + i);
		upg_frame_take_or_none(up, r, page + i, q);
		q->state = PG_READING;
		q->flags &= PF_DEFERRED;
	}
	r->busy += n;
	if (st)
		st->next = page + n;
	upg_resident_add(up, (uint64_t)n * r->psize);
	*io = (struct upg_io){
		.reg = r, .first = page, .npages = n, .unit = unit, .units = units,
		.fault_page = prefetch ? NO_PAGE : page, .fault_write = write, .t0 = t0, .t_sub = upg_now_ns(),
	};
	return io;
}

/* Start a store read of page of r (state STORED); how many pages it
 * reads.  Locks as zero_fill. */
static uint32_t store_read(struct upg_handler *h, struct upg_region *r, uint64_t page, bool write, uint64_t t0,
			   bool prefetch)
{
	struct upager *up = h->up;
	struct upg_pte *p = upg_pte_get(r, page);
	if (p->flags & PF_POISONED)
		return 0;  /* a prefetch: a fault would have raised SIGBUS */
	struct upg_stream *st;
	uint32_t want = read_window(h, r, page, prefetch, &st);

	/* Extend over pages stored right after this one. */
	uint32_t n = 1;
	while (n < want && page + n < r->npages) {
		struct upg_pte *q = upg_pte_get(r, page + n);
		if (q->state != PG_STORED || q->slot != p->slot + n * r->blocks || (q->flags & PF_POISONED))
			break;
		n++;
	}
	struct upg_io *io = begin_read(h, r, page, n, write, t0, prefetch, st);
	if (!io)
		return 0;
	n = io->npages;
	io->slot = p->slot;
	io->wp = wp_worth(up, r);
	io->ghost = hint_for(up, p) == UPG_HINT_GHOST;
	if (!prefetch)
		refilled(up, p, false);
	submit_read(h, io);
	/* From a remote store (Redis), whose round trips are long next to
	 * copying a window in: a stream at its largest window reads the next
	 * one now, as file_read() does. */
	if (st && up->redis && n == up->cfg.readahead_max && n > 1 && page + n < r->npages &&
	    upg_pte_get(r, page + n)->state == PG_STORED) {
		uint32_t m = store_read(h, r, page + n, false, t0, true);
		if (m)
			st->next = page + n + m;
	}
	return n;
}

/* Copy [first, first+n) of io's pages in: writable, or write-protected
 * from a file or for PF_WPCLEAN (their first write tells the page
 * changed). */
static int copy_in(struct upager *up, struct upg_io *io, uint64_t first, uint64_t n, char *src)
{
	struct upg_region *r = io->reg;
	if (!n)
		return 0;
	if (n == 1)
		return upg_uffd_copy_page(up->uffd, r->base + (first << r->pshift), src, r->psize, NULL,
					  io->file || io->wp);
	return upg_uffd_copy_wp(up->uffd, r->base + (first << r->pshift), src, n << r->pshift, NULL,
				io->file || io->wp);
}

/* Copy all of io's pages in from buf.  A protected read's page that a
 * write faulted on goes in writable (and counts as changed): protected,
 * its write would fault a second time at once. */
static int copy_in_all(struct upager *up, struct upg_io *io, char *buf)
{
	if (!(io->file || io->wp) || !io->fault_write || io->fault_page == NO_PAGE)
		return copy_in(up, io, io->first, io->npages, buf);
	struct upg_region *r = io->reg;
	uint64_t k = io->fault_page - io->first;
	int rc = copy_in(up, io, io->first, k, buf);
	if (!rc)
		rc = upg_uffd_copy_page(up->uffd, r->base + (io->fault_page << r->pshift), buf + (k << r->pshift),
					r->psize, NULL, false);
	if (!rc)
		rc = copy_in(up, io, io->fault_page + 1, io->npages - k - 1, buf + ((k + 1) << r->pshift));
	return rc;
}

/* Start a read of page of r, a file mapping's page that holds the file's
 * bytes (NONE, no store copy), with the file's next such pages when the
 * access looks sequential.  A page wholly past the end of the file raises
 * SIGBUS, as with mmap.  Locks as zero_fill. */
static uint32_t file_read(struct upg_handler *h, struct upg_region *r, uint64_t page, bool write, uint64_t t0,
			  bool prefetch)
{
	struct upager *up = h->up;
	struct upg_pte *p = upg_pte_get(r, page);
	uintptr_t a = r->base + (page << r->pshift);
	if (p->state != PG_NONE || p->slot || (p->flags & PF_DEFERRED && prefetch))
		return 0;  /* readahead (below) reaching a page in RAM, on its way, or queued */
	if (p->flags & PF_POISONED)
		return 0;  /* a prefetch: a fault would have raised SIGBUS */
	if (zapwait_blocks(up, r, page, NULL, 0)) {
		/* Discarded while mapped, the zap not yet landed: fault
		 * again once it has (see zapwait_trim()). */
		wake_page(up, a, r->psize);
		return 0;
	}
	p->flags &= (uint8_t)~PF_ZAPWAIT;
	if (upg_mfile_past_eof(r, page)) {
		if (prefetch) {
			wake_page(up, a, r->psize);
			return 0;
		}
		p->flags |= PF_POISONED;
		pthread_mutex_unlock(&up->lock);
		h_poison(h, a, r->psize);
		pthread_mutex_lock(&up->lock);
		fault_done(up, t0);
		return 0;
	}
	struct upg_stream *st;
	uint32_t want = read_window(h, r, page, prefetch, &st);
	uint32_t n = 1;
	while (n < want && page + n < r->npages && !upg_mfile_past_eof(r, page + n)) {
		struct upg_pte *q = upg_pte_get(r, page + n);
		if (q->state != PG_NONE || q->slot || (q->flags & (PF_ZAPWAIT | PF_POISONED)))
			break;
		n++;
	}
	bool again = p->evict_seq != 0;  /* read before, and evicted: a refill */
	struct upg_io *io = begin_read(h, r, page, n, write, t0, prefetch, st);
	if (!io)
		return 0;
	n = io->npages;
	io->file = 1;
	io->ghost = again && hint_for(up, p) == UPG_HINT_GHOST;
	if (!prefetch && again)
		refilled(up, p, false);
	submit_read(h, io);
	/* A stream at its largest window: the next window is read now, while
	 * this one is consumed (the kernel's asynchronous readahead).  The
	 * stream's next fault is then past it.  (Reading two or three windows
	 * ahead measured no faster here, within the runs' noise; nor did
	 * leaving a window's first page out to tell when the stream reaches
	 * it: that page's own read cost more than the depth gave.) */
	if (st && n == up->cfg.readahead_max && n > 1 && page + n < r->npages) {
		uint32_t m = file_read(h, r, page + n, false, t0, true);
		if (m)
			st->next = page + n + m;
	}
	return n;
}

/* A store read failed READ_TRIES times (an I/O error, a short read, or a
 * block that fails its check).  A read of several pages is retried as the
 * faulting page alone, so that one bad block costs one page, not its
 * readahead neighbours: those go back to STORED and are read when touched.
 * A single page that cannot be read is poisoned: the accessor gets SIGBUS,
 * never wrong data.  A page discarded meanwhile just becomes zeros. */
static void read_give_up(struct upg_handler *h, struct upg_io *io, const char *why)
{
	struct upager *up = h->up;
	struct upg_region *r = io->reg;
	uint64_t keep = io->npages > 1 ? io->fault_page : NO_PAGE;
	bool poison = false;
	pthread_mutex_lock(&up->uffd_lock);
	pthread_mutex_lock(&up->lock);
	for (uint32_t i = 0; i < io->npages; i++) {
		uint64_t pg = io->first + i;
		if (pg == keep)
			continue;
		struct upg_pte *p = upg_pte_get(r, pg);
		upg_frame_release(up, p);
		if (p->flags & PF_DISCARDED) {
			upg_slot_free(up, r, p);
			p->zmask = 0;
			p->state = PG_NONE;
			p->flags &= PF_DEFERRED;
		} else {
			p->state = io->file ? PG_NONE : PG_STORED;
			poison = io->npages == 1 && up->have_poison;
			p->flags = (uint8_t)((p->flags & PF_DEFERRED) | (poison ? PF_POISONED : 0));
		}
		upg_resident_sub(up, r->psize);
		upg_region_unbusy(up, r, 1);
	}
	uintptr_t a = r->base + (io->first << r->pshift);
	size_t len = (size_t)io->npages << r->pshift;
	if (poison) {
		up->c.poisoned++;
		upg_log(up, UPAGER_LOG_ERROR, "%s read of the page at %#lx failed after %u tries (%s); "
			"an access to it raises SIGBUS", io->file ? "file" : "store", (unsigned long)a, io->tries, why);
	} else if (io->npages > 1) {
		upg_log(up, UPAGER_LOG_WARN, "store read of %u pages at %#lx failed after %u tries (%s); %s",
			io->npages, (unsigned long)a, io->tries, why,
			keep != NO_PAGE ? "reading the faulting page alone" : "dropped the readahead");
	}
	pthread_mutex_unlock(&up->lock);
	if (poison && up->have_poison)
		h_poison(h, a, len);
	/* Threads waiting on pages put back fault again. */
	if (keep == NO_PAGE) {
		wake_page(up, a, (uint32_t)len);
	} else {
		uintptr_t k = r->base + (keep << r->pshift);
		if (k > a)
			upg_uffd_wake(up->uffd, a, k - a);
		if (k + r->psize < a + len)
			upg_uffd_wake(up->uffd, k + r->psize, a + len - k - r->psize);
	}
	pthread_mutex_unlock(&up->uffd_lock);
	if (keep == NO_PAGE) {
		io_put(h, io);
		return;
	}
	io->slot = upg_pte_get(r, keep)->slot;
	io->first = keep;
	io->npages = 1;
	io->tries = 0;
	submit_read(h, io);
}

/* A pool object that does not decompress (res: -EIO) is a bug or a
 * corruption of this process's memory.  The read's pages leave the pool:
 * those with a store copy are read from it when next touched; a page
 * without one is poisoned, as an unreadable block. */
static void pool_failed(struct upg_handler *h, struct upg_io *io, int res)
{
	struct upager *up = h->up;
	struct upg_region *r = io->reg;
	uint32_t poisoned = 0;
	pthread_mutex_lock(&up->uffd_lock);
	pthread_mutex_lock(&up->lock);
	up->c.integrity_errors++;
	for (uint32_t i = 0; i < io->npages; i++) {
		struct upg_pte *p = upg_pte_get(r, io->first + i);
		upg_frame_release(up, p);
		p->frame = p->evict_seq;
		upg_pooled_free(up, p);
		p->evict_seq = 0;
		upg_resident_sub(up, r->psize);
		if (p->flags & PF_DISCARDED) {
			upg_slot_free(up, r, p);
			p->state = PG_NONE;
			p->zmask = 0;
			p->flags &= PF_DEFERRED;
		} else {
			bool poison = !p->slot && up->have_poison;
			p->state = p->slot || poison ? PG_STORED : PG_NONE;
			p->flags = (uint8_t)((p->flags & PF_DEFERRED) | (poison ? PF_POISONED : 0));
			if (poison) {
				poisoned++;
				up->c.poisoned++;
			}
		}
	}
	upg_region_unbusy(up, r, io->npages);
	pthread_mutex_unlock(&up->lock);
	uintptr_t a = r->base + (io->first << r->pshift);
	size_t len = (size_t)io->npages << r->pshift;
	upg_log(up, UPAGER_LOG_ERROR, "the compressed pool's copy of %u page(s) at %#lx does not decompress (%s); "
		"%u without a store copy are poisoned (an access raises SIGBUS)", io->npages, (unsigned long)a,
		strerror(-res), poisoned);
	for (uint32_t i = 0; poisoned && i < io->npages; i++) {
		struct upg_pte *p = upg_pte_get(r, io->first + i);
		if (p->flags & PF_POISONED)
			h_poison(h, a + ((size_t)i << r->pshift), r->psize);
	}
	wake_page(up, a, (uint32_t)len);
	pthread_mutex_unlock(&up->uffd_lock);
	io_put(h, io);
}

static void complete_read(struct upg_handler *h, struct upg_io *io, int res)
{
	struct upager *up = h->up;
	struct upg_region *r = io->reg;
	size_t len = (size_t)io->npages << r->pshift;
	char *buf = h->bounce + (size_t)io->unit * UNIT;
	if (io->pool) {
		/* One completion per page: the last one settles the read. */
		if (res != (int)r->psize && !io->res)
			io->res = res < 0 ? res : -EIO;
		if (--io->pending)
			return;
		if (io->res) {
			h->inflight--;
			pool_failed(h, io, io->res);
			return;
		}
		res = (int)len;
	}
	h->inflight--;
	res = io->pool ? res : upg_inject(UPG_INJ_READ, res, len);
	if (io->file && res >= 0 && res < (int)len) {
		/* Short: the end of the file.  What lies past it reads as
		 * zeros, as with mmap.  Shorter than the size says: an error. */
		struct upg_mfile *f = r->file;
		uint64_t at = f->off + (io->first << r->pshift);
		struct stat sb;
		bool eof = !fstat(f->fd, &sb) && at + (uint64_t)res >= (uint64_t)sb.st_size;
		if (eof) {
			memset(buf + res, 0, len - (size_t)res);
			res = (int)len;
		}
	}
	struct upg_seal *seal = upg_slot_seal(up, io->slot);
	int64_t bad = io->pool || io->file ? -1
		      : res == (int)len ? upg_seal_read(seal, upg_slot_block(io->slot), buf, len) : -1;
	if (res != (int)len || bad >= 0) {
		pthread_mutex_lock(&up->lock);
		if (res != (int)len)
			up->c.read_errors++;
		else
			up->c.integrity_errors++;
		pthread_mutex_unlock(&up->lock);
		/* A remote store's read failed after its own tries (see
		 * tier.h: tried): one more here would wait its deadline over. */
		bool tried = !io->pool && !io->file && up->store_tier.ops->tried && res == -ETIMEDOUT;
		if (++io->tries < READ_TRIES && !tried) {
			submit_read(h, io);
			return;
		}
		char why[96];
		if (io->file)
			snprintf(why, sizeof why, "reading the mapped file: %s", res < 0 ? strerror(-res) : "short read");
		else if (res == (int)len)
			snprintf(why, sizeof why, "block %llu fails its %s",
				 (unsigned long long)(upg_slot_block(io->slot) + (uint64_t)bad),
				 seal->encrypt ? "authentication tag: altered on disk" : "checksum: corrupted on disk");
		else
			snprintf(why, sizeof why, "%s", res < 0 ? strerror(-res) : "short read");
		read_give_up(h, io, why);
		return;
	}

	/* Pages go in writable, as the kernel maps a page it swaps in: a
	 * first write costs no fault, and the evictor tells a page that still
	 * holds its store copy by the store's digests (upg_seal_unchanged()).
	 * Or, while few are written before they leave, write-protected
	 * (io->wp): one still unwritten then leaves without being looked at. */
	int rc;
	pthread_mutex_lock(&up->uffd_lock);
	for (;;) {
		/* Pages discarded while the read was in flight go in as
		 * zeros.  Checked again after absorbing events: a discard
		 * read there must not let old data in. */
		pthread_mutex_lock(&up->lock);
		for (uint32_t i = 0; i < io->npages && !io->file; i++) {
			/* (A file's page discarded reads the file: what came.) */
			struct upg_pte *p = upg_pte_get(r, io->first + i);
			if (p->flags & PF_DISCARDED) {
				memset(buf + ((size_t)i << r->pshift), 0, r->psize);
				upg_slot_free(up, r, p);
			}
			upg_zero_parts(buf + ((size_t)i << r->pshift), r->psize, p->zmask);
		}
		pthread_mutex_unlock(&up->lock);
		rc = copy_in_all(up, io, buf);
		if (rc != -EAGAIN)
			break;
		absorb_events(h);
	}
	/* Readahead reaching into an unmapped part fails as a whole: copy
	 * page by page, keeping what fits. */
	uint64_t failed[(1024 + 63) / 64] = { 0 };
	bool per_page = (rc == -ENOENT || rc == -EINVAL) && io->npages > 1;
	if (per_page) {
		rc = 0;
		for (uint32_t i = 0; i < io->npages; i++) {
			uint64_t pg = io->first + i;
			int r1;
			while ((r1 = copy_in(up, io, pg, 1, buf + ((size_t)i << r->pshift))) == -EAGAIN)
				absorb_events(h);
			if (r1)
				failed[i / 64] |= 1ULL << (i % 64);
		}
	}

	pthread_mutex_lock(&up->lock);
	uint32_t got = 0;
	for (uint32_t i = 0; i < io->npages; i++) {
		uint64_t pg = io->first + i;
		struct upg_pte *p = upg_pte_get(r, pg);
		bool discarded = p->flags & PF_DISCARDED;
		p->flags &= PF_DEFERRED;
		uint32_t handle = io->pool ? p->evict_seq : 0;
		if (io->pool)
			p->evict_seq = 0;
		if (rc || (failed[i / 64] >> (i % 64) & 1)) {
			upg_frame_release(up, p);
			p->state = discarded || io->file ? PG_NONE : io->pool ? PG_POOLED : PG_STORED;
			if (io->pool) {
				p->frame = handle;
				if (discarded)
					upg_pooled_free(up, p);
			}
			continue;
		}
		bool written = pg == io->fault_page && io->fault_write;
		p->state = PG_RESIDENT;
		if (io->pool && io->wp && !discarded && !p->zmask && !written) {
			/* In RAM write-protected: the pool's copy stays while
			 * the page is unwritten, and it goes back there for
			 * nothing (PF_POOLCOPY). */
			p->evict_seq = handle;
			p->flags |= PF_WPCLEAN | PF_POOLCOPY;
			/* A spill round takes the coldest objects on the cold
			 * ring first, and drops a copy at no cost now but a
			 * compression when its page leaves unwritten.  A page
			 * of a window (a stream's, a prefetch's, a region
			 * advised sequential) will most likely leave soon,
			 * read once: its copy becomes the newest
			 * (upg_pool_touch(): its old entry no longer counts),
			 * which kept a sequential pass from compressing again
			 * a page in four it read from the pool.  A page
			 * faulted in at random may stay hot in RAM, where its
			 * copy only holds bytes the pool could give other
			 * pages: its entry stays where the object's put or
			 * last move left it.  A spill that took an entry off
			 * meanwhile puts it back (its loop for a page being
			 * read, its end for one it was writing). */
			if (io->seq)
				upg_pool_touch(&up->pool, handle);
		} else if (io->pool) {
			/* In RAM now: the pool's copy goes (a clean page keeps
			 * its store copy, as after a store read). */
			uint32_t f = p->frame;
			p->frame = handle;
			upg_pooled_free(up, p);
			p->frame = f;
		}
		/* Differs from the store copy, or is about to (a write fault);
		 * otherwise the evictor compares it with the store's digests.
		 * A file's page is write-protected: its first write tells. */
		if (p->flags & PF_POOLCOPY)
			;
		else if (io->file ? written : discarded || !p->slot || p->zmask || written)
			p->flags |= PF_DIRTY;
		else if (io->wp && !io->file)
			p->flags |= PF_WPCLEAN;
		p->zmask = 0;
		enum upg_policy_hint hint = UPG_HINT_READAHEAD;
		if (pg == io->fault_page)
			hint = io->ghost ? UPG_HINT_GHOST : UPG_HINT_NEW;
		if (p->frame != UPG_NOFRAME)
			up->pol_ops->insert(up->pol, p->frame, hint);
		got++;
	}
	if (!rc && got < io->npages) {
		upg_resident_sub(up, (size_t)(io->npages - got) << r->pshift);
		if (io->fault_page != NO_PAGE)
			wake_page(up, r->base + (io->fault_page << r->pshift), r->psize);
	}
	if (rc) {
		upg_resident_sub(up, len);
		upg_log(up, UPAGER_LOG_DEBUG, "copy-in at %#lx failed: %s",
			(unsigned long)(r->base + (io->first << r->pshift)), strerror(-rc));
		wake_page(up, r->base + (io->first << r->pshift), (uint32_t)len);
	} else {
		if (io->pool) {
			up->c.pool_hits += io->fault_page != NO_PAGE;
			up->c.refaults += io->ghost && io->fault_page != NO_PAGE;
			if (io->fault_page != NO_PAGE) {
				up->c.refill_ns += fault_done(up, io->t0);
				upg_share_cost(&up->share, true, upg_now_ns() - io->t_sub);
			}
		} else if (io->fault_page != NO_PAGE) {
			up->c.store_reads++;
			up->c.refaults += io->ghost;
			up->c.readahead_pages += io->npages - 1;
			up->c.refill_ns += fault_done(up, io->t0);
			upg_share_cost(&up->share, false, upg_now_ns() - io->t_sub);
		} else {
			up->c.readahead_pages += io->npages;
		}
		if (!io->pool)
			up->c.bytes_read += len;
	}
	if (io->pool && !rc && got == io->npages)
		pool_read_on(h, io);
	upg_region_unbusy(up, r, io->npages);
	pthread_mutex_unlock(&up->lock);
	pthread_mutex_unlock(&up->uffd_lock);
	io_put(h, io);
}

/* ---- fault dispatch (uffd_lock and up->lock held) ---- */

static void missing(struct upg_handler *h, uintptr_t addr, bool write, uint64_t t0, bool retry, bool prefetch,
		    int tid)
{
	struct upager *up = h->up;
	struct upg_region *r = upg_region_find(up, addr);
	if (!r || r->dying) {
		if (upg_is_scratch(up, addr, addr + 1)) {
			/* Nothing should touch an empty scratch page; if
			 * something does, zeros beat a hang. */
			upg_log(up, UPAGER_LOG_ERROR, "fault on evictor scratch page %#lx", (unsigned long)addr);
			pthread_mutex_unlock(&up->lock);
			h_copy(h, addr & ~4095UL, up->zero_buf, 4096, NULL, 0, NULL, false);
			pthread_mutex_lock(&up->lock);
			return;
		}
		upg_uffd_wake(up->uffd, addr & ~4095UL, 4096);
		return;
	}
	uint64_t page = (addr - r->base) >> r->pshift;
	struct upg_pte *p = upg_pte_get(r, page);
	switch (p->state) {
	case PG_NONE:
		if (prefetch && !r->file) {
			/* Discarded since WILLNEED queued it.  A fault that came
			 * meanwhile was left to this entry (PF_DEFERRED): wake
			 * it, to fault again and be served. */
			wake_page(up, r->base + (page << r->pshift), r->psize);
			return;
		}
		if (r->file && !p->slot) {
			file_read(h, r, page, write, t0, prefetch);
			return;
		}
		zero_fill(h, r, page, write, t0);
		return;
	case PG_STORED:
		store_read(h, r, page, write, t0, prefetch);
		return;
	case PG_POOLED:
		pool_read(h, r, page, write, t0, prefetch);
		return;
	case PG_FILLING:
	case PG_READING:
		return;  /* the copy in progress wakes this thread too */
	case PG_EVICTING:
		if (tid && tid == __atomic_load_n(&up->evictor_tid, __ATOMIC_ACQUIRE)) {
			/* The evictor touching a page it is evicting that the
			 * application zapped meanwhile: it reads as zeros, and
			 * the evictor must not wait on itself. */
			pthread_mutex_unlock(&up->lock);
			h_copy(h, addr & ~4095UL, up->zero_buf, 4096, NULL, 0, NULL, false);
			pthread_mutex_lock(&up->lock);
			return;
		}
		if (!prefetch)
			defer(up, r, page, p, write, t0, false);
		else
			wake_page(up, r->base + (page << r->pshift), r->psize);  /* as for NONE */
		return;
	case PG_RESIDENT:
		if (retry || prefetch) {
			wake_page(up, r->base + (page << r->pshift), r->psize);
			return;
		}
		break;
	}
	/*
	 * RESIDENT, yet the kernel reports it missing: either all or part of
	 * the page was zapped without a REMOVE event (MADV_FREE reclaimed
	 * it, or a sub-page discard of a large page), or the message raced
	 * with a copy that already mapped it.  Copy zeros over whatever is
	 * missing; present parts are kept (UFFDIO_COPY skips them).
	 *
	 * The page is this handler's (FILLING, out of the policy) while the
	 * lock is dropped for the copy.  Left RESIDENT, the evictor could
	 * take it and move it out between the look-up and the copy, which
	 * would then map zeros over all of it behind the evictor's back; the
	 * page's next read-in would keep those zeros (a copy-in skips what is
	 * mapped) instead of the data written back.
	 */
	bool framed = p->frame != UPG_NOFRAME;
	if (framed)
		up->pol_ops->remove(up->pol, p->frame);
	/* What is filled goes in writable: the digests tell from now on
	 * (and a pool copy goes while the page is still RESIDENT). */
	upg_poolcopy_free(up, p);
	p->state = PG_FILLING;
	p->flags &= (uint8_t)~PF_WPCLEAN;
	r->busy++;
	uint16_t zm = p->zmask;
	pthread_mutex_unlock(&up->lock);
	/* Only the 4 KiB parts missing now are filled, run by run.  A part
	 * discarded while mapped is marked in zmask (upg_discard_part()) until
	 * its zap is seen: a mark whose zap lands after this look keeps its
	 * bit, and the part is filled by the fault that follows. */
	uintptr_t a = r->base + (page << r->pshift);
	uint32_t sub = r->psize / 4096;
	unsigned char vec[UPG_MAX_PAGE / 4096];
	bool looked = upg_mapped(up, a, r->psize, vec) == 0;
	size_t existed = 0;
	int rc = 0;
	uint32_t upto = 0;  /* parts [0, upto) are settled: present, or filled */
	while (upto < sub) {
		uint32_t q = upto;
		if (looked && (vec[q] & 1)) {
			existed += 4096;
			upto++;
			continue;
		}
		uint32_t e = q + 1;
		while (e < sub && !(looked && (vec[e] & 1)))
			e++;
		size_t had = 0;
		rc = h_copy(h, a + (size_t)q * 4096, up->zero_buf, (size_t)(e - q) * 4096, p, zm, &had, true);
		existed += had;
		if (rc)
			break;
		upto = e;
	}
	pthread_mutex_lock(&up->lock);
	if (p->flags & PF_DISCARDED) {
		/* Discarded while we copied: the event was read in h_copy(),
		 * which then stopped, so everything mapped of the page went
		 * in before it and the kernel's zap, still to come, removes
		 * it all.  Until then the page keeps old bytes: PF_ZAPWAIT,
		 * as after a discard of a mapped page (upg_discard_range()). */
		upg_frame_release(up, p);
		upg_resident_sub(up, r->psize);
		upg_zapwait(up, r, p);
		upg_region_unbusy(up, r, 1);
		wake_page(up, a, r->psize);
		return;
	}
	if (looked && zm) {
		/* Marked parts found zapped and filled are zeros now: the mark
		 * is done.  (A copy stopped by a new mark leaves the rest to
		 * the next fault.) */
		uint32_t chunk = upg_zchunk(r->psize) / 4096;
		for (uint32_t c = 0; c < 16 && (c + 1) * chunk <= upto; c++) {
			bool gone = true;
			for (uint32_t q = c * chunk; q < (c + 1) * chunk && gone; q++)
				gone = !(vec[q] & 1);
			if (gone)
				p->zmask &= (uint16_t)~(1u << c);
		}
	}
	if (rc || existed < r->psize) {
		/* Something was refilled (or may have been: a failed copy
		 * says nothing of what it did first): the store copy no
		 * longer matches. */
		p->flags |= PF_DIRTY;
		upg_slot_free(up, r, p);
	}
	p->state = PG_RESIDENT;
	if (framed)
		up->pol_ops->insert(up->pol, p->frame, UPG_HINT_NEW);
	upg_region_unbusy(up, r, 1);
	wake_page(up, a, r->psize);
}

static void wp_fault(struct upg_handler *h, uintptr_t addr, uint64_t t0, int tid)
{
	struct upager *up = h->up;
	struct upg_region *r = upg_region_find(up, addr);
	uintptr_t a = addr & ~4095UL;
	size_t len = 4096;
	if (r) {
		uint64_t page = (addr - r->base) >> r->pshift;
		struct upg_pte *p = upg_pte_get(r, page);
		if (p->state == PG_EVICTING || p->state == PG_READING) {
			/* Leaving, or copied in protected by a read that has
			 * not yet marked it: a retry finds it settled. */
			struct upg_retry rt = { .reg = r, .page = page, .t0 = t0, .write = 1, .wp = 1, .tid = tid };
			if (!(p->flags & PF_DEFERRED) && upg_retry_push(up, &rt))
				p->flags |= PF_DEFERRED;
			return;
		}
		if (p->state == PG_RESIDENT && (p->flags & PF_SHARED)) {
			/* The first write to a page shared with the parent
			 * since fork: the kernel copies it, and it is ours to
			 * count from now.  Without room, wait as a missing
			 * page would. */
			if (!upg_budget_admit(up, 1, r->psize)) {
				struct upg_retry rt = { .reg = r, .page = page, .t0 = t0, .write = 1, .wp = 1,
							.tid = tid };
				if (!(p->flags & PF_DEFERRED) && upg_retry_push(up, &rt))
					p->flags |= PF_DEFERRED;
				return;
			}
			upg_resident_charge(up, p, r->psize);
			upg_poolcopy_free(up, p);
			p->flags |= PF_DIRTY;
			up->c.wp_faults++;
		} else if (p->state == PG_RESIDENT && (p->flags & PF_WPCLEAN)) {
			/* Read in protected: from now on the digests tell
			 * whether it changed (a write of the bytes it holds
			 * leaves it clean).  Its pool copy goes: one with no
			 * store copy leaves by the pool or the store again. */
			upg_poolcopy_free(up, p);
			p->flags &= (uint8_t)~PF_WPCLEAN;
			upg_wpc_count(r, true);
			up->c.wp_faults++;
		} else if (p->state == PG_RESIDENT) {
			/* Protected by an eviction that kept it (a read-only
			 * part, see move_run()). */
			upg_poolcopy_free(up, p);
			p->flags |= PF_DIRTY;
			up->c.wp_faults++;
		}
		a = r->base + (page << r->pshift);
		len = r->psize;
	}
	/* Un-protecting wakes the writer; on a page that is no longer
	 * present it only wakes it, and it faults again as missing. */
	pthread_mutex_unlock(&up->lock);
	h_unprotect(h, a, len);
	pthread_mutex_lock(&up->lock);
	fault_done(up, t0);
}

/* A REMOVE (unmap false) or UNMAP event of [start, end). */
static void discard_event(struct upager *up, uintptr_t start, uintptr_t end, bool unmap)
{
	if (upg_is_scratch(up, start, end))
		return;  /* the evictor emptying its scratch area */
	/* The evictor dropping a page it copied out.  Its zap of a range
	 * that lies in one mapping raises one event, the whole range, so a
	 * second one is the application's discard made meanwhile (whichever
	 * came first).  A part of the range is taken for the evictor's: a
	 * range over mappings of different protections raises one a mapping
	 * (see README, Known limits). */
	for (uint32_t i = 0; i < up->nown_zap && !unmap; i++) {
		if (start < up->own_zap[i].start || end > up->own_zap[i].end)
			continue;
		if (start != up->own_zap[i].start || end != up->own_zap[i].end)
			return;
		if (!up->own_zap[i].seen) {
			up->own_zap[i].seen = true;
			return;
		}
		break;
	}
	/* Regions are sorted and disjoint: start at the first one ending
	 * after start (a program's mmap()s make thousands of them). */
	uint32_t lo = 0, hi = up->nregions;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (up->regions[mid]->base + up->regions[mid]->len <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint32_t i = lo; i < up->nregions && up->regions[i]->base < end; i++) {
		struct upg_region *r = up->regions[i];
		uintptr_t s = start > r->base ? start : r->base;
		uintptr_t e = end < r->base + r->len ? end : r->base + r->len;
		if (s >= e)
			continue;
		/* Whole pages are discarded; a page only partly covered
		 * keeps the rest: what is mapped the kernel zaps (it refaults
		 * as zeros there, see missing()), what is not gets marked. */
		uint64_t first = (s - r->base + r->psize - 1) >> r->pshift;
		uint64_t last = (e - r->base) >> r->pshift;
		if (last > first)
			upg_discard_range(up, r, first, last - first);
		uint64_t head = (s - r->base) >> r->pshift, tail = (e - 1 - r->base) >> r->pshift;
		if (head < first || last <= head)
			upg_discard_part(up, r, head, s, e);
		if (tail >= last && tail != head)
			upg_discard_part(up, r, tail, s, e);
	}
}

static void handle_msg(struct upg_handler *h, const struct uffd_msg *m, uint64_t now)
{
	struct upager *up = h->up;
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		up->cur_tid = (int)m->arg.pagefault.feat.ptid;
		if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)
			wp_fault(h, m->arg.pagefault.address, now, (int)m->arg.pagefault.feat.ptid);
		else
			missing(h, m->arg.pagefault.address, m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE,
				now, false, false, (int)m->arg.pagefault.feat.ptid);
		break;
	case UFFD_EVENT_REMOVE:
		discard_event(up, m->arg.remove.start, m->arg.remove.end, false);
		break;
	case UFFD_EVENT_UNMAP:
		discard_event(up, m->arg.remove.start, m->arg.remove.end, true);
		break;
	default:
		upg_log(up, UPAGER_LOG_WARN, "unexpected userfaultfd event %u", m->event);
		break;
	}
}

/* Read waiting messages without serving faults: discards take effect now,
 * faults go to the retry queue.  Called with uffd_lock held and up->lock
 * not held, from a copy that the kernel refused until events are read. */
static void absorb_events(struct upg_handler *h)
{
	struct upager *up = h->up;
	struct uffd_msg msgs[UFFD_MSG_BATCH];
	ssize_t n = read(up->uffd, msgs, sizeof msgs);
	if (n <= 0) {
		/* Another handler took it; give it a moment to finish. */
		sched_yield();
		return;
	}
	uint64_t now = upg_now_ns();
	pthread_mutex_lock(&up->lock);
	for (size_t i = 0; i < (size_t)n / sizeof msgs[0]; i++) {
		const struct uffd_msg *m = &msgs[i];
		if (m->event == UFFD_EVENT_REMOVE || m->event == UFFD_EVENT_UNMAP) {
			discard_event(up, m->arg.remove.start, m->arg.remove.end, m->event == UFFD_EVENT_UNMAP);
			continue;
		}
		if (m->event != UFFD_EVENT_PAGEFAULT)
			continue;
		uintptr_t addr = m->arg.pagefault.address;
		struct upg_region *r = upg_region_find(up, addr);
		if (!r || r->dying) {
			upg_uffd_wake(up->uffd, addr & ~4095UL, 4096);
			continue;
		}
		uint64_t page = (addr - r->base) >> r->pshift;
		struct upg_pte *p = upg_pte_get(r, page);
		struct upg_retry rt = { .reg = r, .page = page, .t0 = now, .tid = (int)m->arg.pagefault.feat.ptid,
					.write = !!(m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE),
					.wp = !!(m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) };
		if (p->flags & PF_DEFERRED)
			continue;
		if (upg_retry_push(up, &rt))
			p->flags |= PF_DEFERRED;
		else
			upg_uffd_wake(up->uffd, addr & ~4095UL, 4096);  /* it faults again */
	}
	pthread_mutex_unlock(&up->lock);
	uint64_t one = 1;
	(void)!write(h->kick_fd, &one, sizeof one);
}

static void drain_uffd(struct upg_handler *h)
{
	struct upager *up = h->up;
	struct uffd_msg msgs[UFFD_MSG_BATCH];
	for (;;) {
		pthread_mutex_lock(&up->uffd_lock);
		ssize_t n = read(up->uffd, msgs, sizeof msgs);
		if (n <= 0) {
			int e = errno;
			pthread_mutex_unlock(&up->uffd_lock);
			if (n < 0 && e == EINTR)
				continue;
			if (n < 0 && e != EAGAIN) {
				upg_fatal(up, "reading the userfaultfd failed: %s; faults can no longer be served",
					  strerror(e));
			}
			return;
		}
		uint64_t now = upg_now_ns();
		pthread_mutex_lock(&up->lock);
		for (size_t i = 0; i < (size_t)n / sizeof msgs[0]; i++)
			handle_msg(h, &msgs[i], now);
		pthread_mutex_unlock(&up->lock);
		pthread_mutex_unlock(&up->uffd_lock);
		if ((size_t)n < sizeof msgs)
			return;
	}
}

static void process_retries(struct upg_handler *h)
{
	struct upager *up = h->up;
	pthread_mutex_lock(&up->uffd_lock);
	pthread_mutex_lock(&up->lock);
	uint32_t n = up->retry_count;
	for (uint32_t i = 0; i < n && up->retry_count; i++) {
		struct upg_retry rt = up->retry[up->retry_head];
		up->retry_head = (up->retry_head + 1) % up->retry_cap;
		up->retry_count--;
		struct upg_pte *p = upg_pte_get(rt.reg, rt.page);
		p->flags &= ~PF_DEFERRED;
		uintptr_t addr = rt.reg->base + (rt.page << rt.reg->pshift);
		up->cur_tid = rt.tid;
		if (rt.wp)
			wp_fault(h, addr, rt.t0, rt.tid);
		else
			missing(h, addr, rt.write, rt.t0, true, rt.prefetch, rt.tid);
	}
	pthread_mutex_unlock(&up->lock);
	pthread_mutex_unlock(&up->uffd_lock);
}

bool upg_retry_push(struct upager *up, const struct upg_retry *rt)
{
	if (up->retry_count == up->retry_cap)
		return false;
	up->retry[(up->retry_head + up->retry_count) % up->retry_cap] = *rt;
	up->retry_count++;
	return true;
}

void upg_kick_handlers(struct upager *up)
{
	for (uint32_t i = 0; i < up->nhandlers; i++) {
		uint64_t one = 1;
		if (up->handlers[i].started)
			(void)!write(up->handlers[i].kick_fd, &one, sizeof one);
	}
}

static void arm_poll(struct upg_handler *h, int fd, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&h->ring);
	if (!sqe) {
		io_uring_submit(&h->ring);
		sqe = io_uring_get_sqe(&h->ring);
	}
	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, tag);
}

/*
 * The ring's set-up, best first:
 *   - SINGLE_ISSUER | DEFER_TASKRUN (6.1): completions are run when the
 *     handler waits, in its own context, with no wake-up per completion.
 *     The handler thread must be the ring's only submitter, so the ring
 *     starts disabled and handler_main() enables it (buffers and files are
 *     registered before that, from the thread that starts the runtime);
 *   - COOP_TASKRUN (5.19): no interrupting the handler to run completions;
 *   - plain.
 * *deferred says the ring awaits io_uring_enable_rings().
 */
static int ring_init(unsigned entries, struct io_uring *ring, bool *deferred)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		rc = io_uring_queue_init(entries, ring, tries[i]);
		if (!rc) {
			*deferred = tries[i] & IORING_SETUP_R_DISABLED;
			return 0;
		}
		if (rc != -EINVAL)
			return rc;
	}
	return rc;
}

/* io_uring_enable_rings(), which liburing 2.3 declares but does not
 * export. */
static int ring_enable(struct io_uring *ring)
{
	return syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) ? -errno : 0;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * With store reads in flight, look for their completion for up to poll_us
 * before sleeping in the ring.  A 4 KiB read takes some tens of
 * microseconds, about what it costs to sleep and be woken again (more on a
 * virtual machine, whose idle CPUs halt); polling keeps one of the three
 * sleep/wake hand-offs of a major fault off its path.  sched_yield() between
 * looks leaves the CPU to any other runnable thread, the application's or
 * the evictor, so that polling only takes time nobody else wants.  The
 * completion is posted by task work, which runs when this thread returns
 * from the system call, or, on a DEFER_TASKRUN ring, only when it asks
 * (io_uring_get_events()).  A new fault's poll completion ends it too.
 */
static void poll_completions(struct upg_handler *h)
{
	struct upager *up = h->up;
	uint64_t limit = (uint64_t)up->cfg.poll_us * 1000;
	if (!limit || !h->inflight)
		return;
	io_uring_submit(&h->ring);
	if (io_uring_cq_ready(&h->ring))
		return;
	uint64_t c0 = thread_cpu_ns(), t0 = upg_now_ns();
	bool hit;
	while (!(hit = io_uring_cq_ready(&h->ring) != 0) && upg_now_ns() - t0 < limit) {
		sched_yield();
		if (h->deferred)
			io_uring_get_events(&h->ring);
	}
	__atomic_fetch_add(&up->c.polls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&up->c.poll_hits, hit, __ATOMIC_RELAXED);
	__atomic_fetch_add(&up->c.poll_cpu_ns, thread_cpu_ns() - c0, __ATOMIC_RELAXED);
}

static void *handler_main(void *arg)
{
	upg_internal_thread = 1;
	struct upg_handler *h = arg;
	struct upager *up = h->up;
	h->q.owner = pthread_self();
	h->q.tier_cqes = true;
	if (h->deferred) {
		int rc = ring_enable(&h->ring);
		if (rc) {
			upg_log(up, UPAGER_LOG_ERROR, "enabling the handler's io_uring failed: %s", strerror(-rc));
			abort();
		}
	}
	/* Saves looking up the ring's file on every io_uring_enter();
	 * optional. */
	(void)io_uring_register_ring_fd(&h->ring);
	arm_poll(h, up->uffd, TAG_UFFD);
	arm_poll(h, h->kick_fd, TAG_KICK);
	while (!h->exit) {
		/* Completions waiting in the queue's list: look, do not sleep. */
		bool posted_ready = upg_tq_pending(&h->q);
		if (!posted_ready)
			poll_completions(h);
		int rc = posted_ready ? io_uring_submit(&h->ring) : io_uring_submit_and_wait(&h->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			upg_fatal(up, "a fault handler's io_uring wait failed: %s", strerror(-rc));
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		bool uffd_ready = false, kicked = false, completed = false;
		struct upg_io *done[256];
		int res[256];
		unsigned ndone = 0;
		io_uring_for_each_cqe(&h->ring, head, cqe) {
			uint64_t tag = io_uring_cqe_get_data64(cqe);
			if (tag == TAG_UFFD) {
				uffd_ready = true;
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_poll(h, up->uffd, TAG_UFFD);
			} else if (tag == TAG_KICK) {
				kicked = true;
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_poll(h, h->kick_fd, TAG_KICK);
			} else if (tag == 0) {
				/* a poll removal's own completion */
			} else if (tag & UPG_TQ_TIER) {
				upg_tq_tier_cqe(&h->q, tag, cqe->res);
			} else if (tag & UPG_TAG_CHILD) {
				upg_child_gone(up, tag, cqe->res);
			} else if (ndone < 256) {
				done[ndone] = (struct upg_io *)(uintptr_t)tag;
				res[ndone++] = cqe->res;
			} else {
				break;
			}
			seen++;
		}
		io_uring_cq_advance(&h->ring, seen);
		/* Then those a tier made outside the ring. */
		struct upg_tq_done posted[64];
		uint32_t nposted = upg_tq_take(&h->q, posted, 64);
		for (unsigned i = 0; i < ndone; i++)
			complete_read(h, done[i], res[i]);
		for (uint32_t i = 0; i < nposted; i++)
			complete_read(h, (struct upg_io *)(uintptr_t)posted[i].tag, posted[i].res);
		completed = ndone + nposted > 0;
		if (kicked) {
			uint64_t v;
			(void)!read(h->kick_fd, &v, sizeof v);
			if (__atomic_load_n(&h->quit, __ATOMIC_ACQUIRE) && !h->inflight)
				h->exit = true;
			else if (h == &up->handlers[0])
				upg_children_arm(up, &h->ring);  /* a fork kicks us */
		}
		if (uffd_ready)
			drain_uffd(h);
		if (kicked || completed) {
			pthread_mutex_lock(&up->lock);
			bool pending = up->retry_count > 0;
			pthread_mutex_unlock(&up->lock);
			if (pending)
				process_retries(h);
		}
	}
	return NULL;
}

static void handler_destroy(struct upg_handler *h)
{
	/* The ring first: a tier's recv may still be on it, into a buffer
	 * its state owns. */
	if (h->ring_ok)
		io_uring_queue_exit(&h->ring);
	if (h->forgotten)
		upg_tq_forget(&h->q);
	else
		upg_tq_fini(&h->q);
	if (h->kick_fd >= 0)
		close(h->kick_fd);
	if (h->bounce)
		munmap(h->bounce, h->bounce_len);
	free(h->unit_map);
	free(h->ios);
}

static int handler_init(struct upager *up, struct upg_handler *h, char *err, size_t errlen)
{
	h->up = up;
	h->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->kick_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "eventfd: %s", strerror(e));
		return -e;
	}
	h->nios = up->cfg.io_depth;
	/* Room for four full readahead windows (a window may take a quarter,
	 * see store_read), 32 KiB per read in flight on average, and two of
	 * the largest pages. */
	size_t len = (size_t)up->cfg.readahead_max * 4096 * 4;
	if (len < (size_t)h->nios * 32768)
		len = (size_t)h->nios * 32768;
	if (len < 2 * (size_t)UPG_MAX_PAGE)
		len = 2 * (size_t)UPG_MAX_PAGE;
	/* In huge pages where the kernel gives them (2 MiB aligned, advised):
	 * a read's segments are then 2 MiB, not 4 KiB.  A disk takes a
	 * bounded count of segments per request (254 on virtio-blk here), so
	 * a 1 MiB read into small pages went to the disk as two requests, and
	 * on a disk whose cost is per request that halves a scan's rate. */
	len = (len + BOUNCE_ALIGN - 1) & ~(BOUNCE_ALIGN - 1);
	h->bounce_len = len;
	h->units = (uint32_t)(h->bounce_len / UNIT);
	/* Not populated or registered yet: a process that never reads from
	 * the store (most short-lived ones) never pays for it (see
	 * submit_read()). */
	char *m = mmap(NULL, len + BOUNCE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "bounce buffers: out of memory");
		return -ENOMEM;
	}
	size_t lead = (BOUNCE_ALIGN - ((uintptr_t)m & (BOUNCE_ALIGN - 1))) & (BOUNCE_ALIGN - 1);
	if (lead)
		munmap(m, lead);
	munmap(m + lead + len, BOUNCE_ALIGN - lead);
	h->bounce = m + lead;
	madvise(h->bounce, len, MADV_HUGEPAGE);
	h->unit_map = calloc((h->units + 63) / 64, 8);
	h->ios = calloc(h->nios, sizeof *h->ios);
	if (!h->unit_map || !h->ios) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < h->nios; i++)
		h->ios[i].next_free = i + 1;
	h->io_free = 0;
	int rc = ring_init(h->nios * 2 + 8, &h->ring, &h->deferred);
	if (rc) {
		snprintf(err, errlen, "io_uring_queue_init: %s%s", strerror(-rc),
			 rc == -EPERM ? " (io_uring is disabled: check sysctl kernel.io_uring_disabled)" : "");
		return rc;
	}
	h->ring_ok = true;
	/* Room for every request in flight: a pool read makes one per page,
	 * and each page takes a bounce unit. */
	rc = upg_tq_init(&h->q, &h->ring, h->kick_fd, h->nios + h->units);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	int files[1 + UPG_ANCESTORS];
	files[0] = up->store.fd;
	for (uint32_t k = 0; k < up->nanc; k++)
		files[1 + k] = up->anc[k].fd;
	rc = io_uring_register_files(&h->ring, files, 1 + up->nanc);
	if (rc) {
		snprintf(err, errlen, "io_uring_register_files: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

int upg_handlers_start(struct upager *up, char *err, size_t errlen)
{
	up->nhandlers = up->cfg.handler_threads;
	up->handlers = calloc(up->nhandlers, sizeof *up->handlers);
	if (!up->handlers) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < up->nhandlers; i++)
		up->handlers[i].kick_fd = -1;
	int rc = 0;
	for (uint32_t i = 0; i < up->nhandlers && !rc; i++)
		rc = handler_init(up, &up->handlers[i], err, errlen);
	for (uint32_t i = 0; i < up->nhandlers && !rc; i++) {
		rc = upg_thread_start(&up->handlers[i].tid, handler_main, &up->handlers[i], "upg-handler");
		if (rc)
			snprintf(err, errlen, "cannot start a handler thread: %s", strerror(-rc));
		else
			up->handlers[i].started = true;
	}
	if (rc)
		upg_handlers_stop(up);
	return rc;
}

void upg_handlers_forget(struct upager *up)
{
	for (uint32_t i = 0; up->handlers && i < up->nhandlers; i++) {
		up->handlers[i].started = false;
		up->handlers[i].forgotten = true;
	}
	upg_handlers_stop(up);
}

void upg_handlers_stop(struct upager *up)
{
	if (!up->handlers)
		return;
	__atomic_store_n(&up->stopping, true, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < up->nhandlers; i++) {
		struct upg_handler *h = &up->handlers[i];
		if (!h->started)
			continue;
		__atomic_store_n(&h->quit, true, __ATOMIC_RELEASE);
		/* Keep kicking until the thread has no reads in flight. */
		for (;;) {
			uint64_t one = 1;
			(void)!write(h->kick_fd, &one, sizeof one);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (!pthread_timedjoin_np(h->tid, NULL, &ts))
				break;
		}
		h->started = false;
	}
	for (uint32_t i = 0; i < up->nhandlers; i++)
		handler_destroy(&up->handlers[i]);
	free(up->handlers);
	up->handlers = NULL;
	up->nhandlers = 0;
}
