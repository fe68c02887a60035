/* SPDX-License-Identifier: MIT */
/*
 * How many refills (faults that read a page back from the store or the
 * pool) the same run would have made with more RAM: a miss-ratio curve from
 * one run.
 *
 * Every eviction advances a counter by the page's size in 4 KiB units, and
 * the page keeps the counter's value (its evict_seq).  When a fault reads
 * it back, the counter has moved on by the data evicted since: its reuse
 * distance.  With d bytes more RAM the d bytes evicted last would still be
 * in RAM, so a refill whose distance is under d would have been a hit; one
 * that is not, or whose page was never evicted (evict_seq 0), would still
 * happen.  For a policy that evicts in least-recently-used
 * order this is Mattson's stack distance, exact; upager's policies only
 * approach that order, so the figures are estimates.  Below this run's
 * budget the run's own refills are a lower bound: a page that was in RAM
 * stays so no more with less of it, for an LRU-like policy.
 *
 * s3fifo keeps most frames in a main queue (all but the small queue's
 * target, a tenth of the frames, which are twice the budget's), which pages
 * reach by coming back soon after they left the small one; one-time pages
 * (a scan) pass through the small queue and never push main's pages out.
 * So a page evicted from main is timed by a second counter, of main's
 * evictions only, and set against main's share of more RAM; a scan running
 * beside it does not lengthen its distance.  Pages evicted from elsewhere
 * (every page, with fifo and clock) keep the first counter, whose value
 * also carries the ghost flag for the policy.
 *
 * One kind of refill is not saved by more RAM: read hits are invisible to
 * the policy, so its main queue is a plain FIFO for pages that are only
 * read, and a hot page leaves it once per pass of the queue however hot it
 * is, to come back at once.  Such a refill (a page evicted from main,
 * back within half of main's worth of its evictions) is a "cycler": with more
 * RAM the queue is longer and the page passes through it less often, in
 * proportion to RAM, and to the evictions there would be.  Back, such a
 * page enters the small queue, and leaves that too before it is seen
 * again, to come back soon once more: so as many refills of pages evicted
 * from small, within a quarter of the small queue's worth of evictions, as
 * there are cyclers from main count as cyclers too.  The estimate takes
 * the others by their distances as above and the cyclers so, which is one
 * linear equation (upg_fc_estimate()).
 *
 * Distances are kept in a log-linear histogram (UPG_FC_SUB buckets per
 * power of two, so any distance is placed within an eighth of itself),
 * read with linear interpolation inside a bucket.  Not thread-safe:
 * callers hold up->lock.
 */
#ifndef UPG_FORECAST_H
#define UPG_FORECAST_H

#include <stdbool.h>
#include <stdint.h>

#define UPG_FC_SUB 8
#define UPG_FC_BUCKETS (32 * UPG_FC_SUB)
#define UPG_FC_SEQ_MASK 0x7fffffffu  /* the counter's bits in evict_seq */
#define UPG_FC_GHOST 0x80000000u     /* evict_seq: the policy asked for a ghost hit */

struct upg_forecast {
	uint32_t seq, seq_main;      /* the counters: every eviction, evictions from main */
	uint64_t n[UPG_FC_BUCKETS];  /* refills by distance, in 4 KiB units, of pages evicted
	                              * from outside the main queue (counted in every eviction) */
	uint64_t m[UPG_FC_BUCKETS];  /* of pages evicted from main (counted in main's evictions) */
	uint64_t cold;               /* refills of pages not evicted by this process */
	uint64_t most;               /* the largest distance seen, in every eviction's units */
	uint64_t main_ev, all_ev;    /* 4 KiB units evicted from main, and in all */
};

/* An eviction of units 4 KiB units, from the policy's main queue or not:
 * the page's evict_seq. */
uint32_t upg_fc_evicted(struct upg_forecast *f, uint32_t units, bool from_main);
/* A refill of a page whose evict_seq is seq: its distance (see
 * upg_fc_age()). */
uint64_t upg_fc_add(struct upg_forecast *f, uint32_t seq);
/* The evictions, in 4 KiB units of every eviction, since that of a page
 * whose evict_seq is seq; UINT64_MAX when it was never evicted. */
uint64_t upg_fc_age(const struct upg_forecast *f, uint32_t seq);
/*
 * The run's refills (its count, which may differ a little from the
 * histogram's) that would remain with extra bytes more RAM, main_extra of
 * them in the main queue, the run having held ram bytes of pages in RAM,
 * main_ram in main, and made evictions evictions.  See the comment at the
 * top for the two kinds of refill.
 */
uint64_t upg_fc_estimate(const struct upg_forecast *f, uint64_t refills, uint64_t evictions, uint64_t ram,
			 uint64_t extra, uint64_t main_ram, uint64_t main_extra, uint64_t small_ram);
/* Start over (a forked child's own run), keeping the counters, which its
 * inherited pages' evict_seq refer to. */
void upg_fc_forget(struct upg_forecast *f);

/* The distance of a page evicted at seq, in 4 KiB units. */
static inline uint32_t upg_fc_distance(uint32_t now, uint32_t seq)
{
	return (now - seq) & UPG_FC_SEQ_MASK;
}

#endif
