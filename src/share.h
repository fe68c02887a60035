/* SPDX-License-Identifier: MIT */
/*
 * The compressed pool's share of the budget, moved while the program runs.
 *
 * Every byte the pool holds is a byte fewer for pages in RAM.  A larger
 * pool keeps more pages (a refill from the pool instead of the store); a
 * smaller one leaves more pages in RAM (no refill at all).  Which pays
 * depends on the program: a working set spread far wider than the budget
 * gains from a large pool; a hot set a little larger than RAM loses by it,
 * its hot pages coming back from the pool over and over.
 *
 * So the share follows the refills, as ARC's target follows its ghost
 * hits, looking at a margin of step bytes (a 64th of the budget, at least
 * 64 KiB) either way:
 *   - a refill of a page evicted less than step bytes' worth of evictions
 *     ago would not have been needed with step bytes more RAM for pages:
 *     it pulls the share down by its cost (a pool or a store refill);
 *   - while the pool fills nine tenths of its share or more, a refill from
 *     the store of a page evicted a little beyond the pool's reach (the
 *     evictions a pooled page lasts before it is spilled), within what
 *     step bytes more pool would add to that reach, would have come from
 *     the pool: it pushes the share up by the difference of the two costs,
 *     times the part of evicted pages a pool with room would take (dirty 4
 *     KiB pages that compress well enough).
 * A refill's cost moves the share by step / 8 per store refill's worth.
 * The costs are the reads' measured times, from submission to copy-in
 * (not the wait for the budget).  The share stays between a twentieth of
 * the budget (at least 256 KiB) and the most configured
 * (UPAGER_COMPRESS_POOL).
 * Not thread-safe: callers hold up->lock.
 */
#ifndef UPG_SHARE_H
#define UPG_SHARE_H

#include <stdbool.h>
#include <stdint.h>

struct upg_share {
	uint64_t lo, hi;        /* bounds, bytes */
	double target;          /* bytes */
	uint64_t step;          /* the margin, bytes */
	/* Smoothed figures, below 0 until first measured: */
	double reach;           /* evictions (4 KiB units) a pooled page lasts before it is spilled */
	double cost_pool, cost_store;  /* a refill's time, ns */
	double put_part;        /* of the 4 KiB units evicted, the part a pool with room would take */
	uint64_t ups, downs;    /* refills that pushed the share up, pulled it down */
};

/* most: the largest share, bytes (0: no pool). */
void upg_share_init(struct upg_share *s, uint64_t budget, uint64_t most);
/* A refill, from the pool or the store, of a page evicted dist 4 KiB
 * units of evictions ago (UINT64_MAX: never evicted), the pool holding
 * pool_bytes. */
void upg_share_refill(struct upg_share *s, uint64_t dist, bool from_pool, uint64_t pool_bytes);
/* A fault's refill took ns. */
void upg_share_cost(struct upg_share *s, bool from_pool, uint64_t ns);
/* A pooled page left the pool for the store dist units after its eviction. */
void upg_share_spilled(struct upg_share *s, uint64_t dist);
/* A batch of evictions: units 4 KiB units, takeable of them what a pool
 * with room would have taken. */
void upg_share_evicted(struct upg_share *s, uint64_t units, uint64_t takeable);
/* The pool's share now, bytes. */
static inline uint64_t upg_share_bytes(const struct upg_share *s)
{
	return (uint64_t)s->target;
}

#endif
