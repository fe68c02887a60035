/* SPDX-License-Identifier: MIT */
/*
 * Tiers: where the data of a page that is not in RAM lives, behind one
 * asynchronous interface.
 *
 * A thread that moves pages (a fault handler, the evictor) owns a queue
 * (struct upg_tq): its io_uring and a list of completions made outside the
 * ring.  It submits reads and writes to a tier with a tag, and gets each
 * one's result back, once, as (tag, bytes or -errno):
 *   - through its ring, when the tier does the I/O there (the file store);
 *   - through the queue's list, when the tier completes at once (the
 *     compressed RAM pool decompresses on the spot) or on another thread
 *     (a remote store); a completion posted from another thread kicks the
 *     owner's eventfd, which its ring polls.
 * So a tier may complete in any order, at once or later, and the owner's
 * loop handles every completion the same way.
 *
 * A location (loc) is the tier's own name for what it holds: a slot for
 * the file store (see upg_slot_store()), a handle for the pool.  Choosing
 * locations and freeing them is the tier's owner's business (the store's
 * block bitmap, the pool's allocator); a tier only moves the bytes.
 */
#ifndef UPG_TIER_H
#define UPG_TIER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_uring;

struct upg_tq_done {
	uint64_t tag;
	int32_t res;
};

struct upg_tq {
	struct io_uring *ring;
	/* Buffer registered with the ring as fixed buffer 0, or NULL: a read
	 * into it may use it. */
	const char *fixed;
	size_t fixed_len;
	int kick_fd;            /* the owner's eventfd, polled by its ring; -1: none */
	bool ring_only;         /* every tier it uses completes on the ring (upg_tq_reap()) */
	pthread_t owner;
	pthread_mutex_t lock;   /* done, ndone: posted from any thread */
	struct upg_tq_done *done;
	uint32_t ndone, cap;
	/* A tier may do its I/O on the owner's ring itself, with state of its
	 * own for this queue (a remote store's connections): when tier_cqes
	 * is set, the owner hands every completion whose tag has UPG_TQ_TIER
	 * to upg_tq_tier_cqe(), in its own thread, before it takes the list.
	 * The tier sets tier_local and the two functions on its first use of
	 * the queue, from the owner's thread; upg_tq_fini() calls tier_free
	 * once the ring is gone.  In a forked child (upg_tq_forget()) forked
	 * is true: the owner may have been changing the state when another
	 * thread forked, so the tier closes what it must and frees nothing. */
	bool tier_cqes;
	void *tier_local;
	void (*tier_cqe)(struct upg_tq *q, uint64_t tag, int res);
	void (*tier_free)(void *local, bool forked);
};

/* Tags of a tier's own completions on its owner's ring (see tier_cqes);
 * other tags are the owner's (pointers, small constants). */
#define UPG_TQ_TIER (1ull << 62)

static inline void upg_tq_tier_cqe(struct upg_tq *q, uint64_t tag, int res)
{
	if (q->tier_cqe)
		q->tier_cqe(q, tag, res);
}

struct upg_tier_ops {
	const char *name;
	/* Every completion comes through the submitting queue's ring (none
	 * through its list): its owner may wait for several at once. */
	bool on_ring;
	/* A read that fails with -ETIMEDOUT has had its own tries already,
	 * with reconnections, for the tier's whole deadline (a remote store):
	 * its caller does not try again, which would only wait that deadline
	 * over.  Other failures (a bad value, a connection dropped twice at
	 * once) may pass: they are tried again. */
	bool tried;
	/* Start reading len bytes (whole 4 KiB blocks) at loc into buf.
	 * Exactly one completion with tag follows: len, or -errno, or a
	 * short count. */
	void (*read)(void *tier, struct upg_tq *q, uint64_t loc, void *buf, uint32_t len, uint64_t tag);
	/* Start writing len bytes from buf at loc; one completion with tag.
	 * buf stays untouched until then. */
	void (*write)(void *tier, struct upg_tq *q, uint64_t loc, const void *buf, uint32_t len, uint64_t tag);
};

struct upg_tier {
	const struct upg_tier_ops *ops;
	void *ctx;
};

static inline void upg_tier_read(const struct upg_tier *t, struct upg_tq *q, uint64_t loc, void *buf,
				 uint32_t len, uint64_t tag)
{
	t->ops->read(t->ctx, q, loc, buf, len, tag);
}

static inline void upg_tier_write(const struct upg_tier *t, struct upg_tq *q, uint64_t loc, const void *buf,
				  uint32_t len, uint64_t tag)
{
	t->ops->write(t->ctx, q, loc, buf, len, tag);
}

/* A queue for the calling thread on ring (not owned); cap: most
 * completions it may hold outside the ring.  0 or -ENOMEM. */
int upg_tq_init(struct upg_tq *q, struct io_uring *ring, int kick_fd, uint32_t cap);
void upg_tq_fini(struct upg_tq *q);
/* upg_tq_fini() in a forked child, of a queue whose owner was the
 * parent's thread. */
void upg_tq_forget(struct upg_tq *q);
/* Report a completion; from any thread. */
void upg_tq_post(struct upg_tq *q, uint64_t tag, int res);
/* Are completions waiting in the list?  (The owner then must not sleep in
 * its ring.) */
bool upg_tq_pending(struct upg_tq *q);
/* Take up to max completions from the list (owner only); how many. */
uint32_t upg_tq_take(struct upg_tq *q, struct upg_tq_done *out, uint32_t max);
/* A free submission entry on q's ring, submitting what is queued when the
 * ring is full. */
struct io_uring_sqe *upg_tq_sqe(struct upg_tq *q);
/* A multishot poll of the queue's kick_fd on its ring, tagged
 * UPG_TQ_KICK, which upg_tq_reap() recognises; for owners that sleep in
 * upg_tq_reap(). */
#define UPG_TQ_KICK UINT64_MAX
void upg_tq_arm_kick(struct upg_tq *q);
/*
 * For owners whose ring carries only tier I/O (the evictor): submit what
 * is queued, wait until at least min completions are at hand (ring or
 * list), and take up to max.  How many, or -errno from the ring.
 */
int upg_tq_reap(struct upg_tq *q, uint32_t min, struct upg_tq_done *out, uint32_t max);

/* The file store as a tier: loc is a slot; the ring's registered files are
 * the own store then the ancestors' (index = upg_slot_store(slot)). */
extern const struct upg_tier_ops upg_file_tier;

#endif
