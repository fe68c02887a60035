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
 * that is not, or whose page was never evicted here (a fork's inheritance),
 * would still happen.  For a policy that evicts in least-recently-used
 * order this is Mattson's stack distance, exact; upager's policies only
 * approach that order, so the figures are estimates.  Below this run's
 * budget the run's own refills are a lower bound: a page that was in RAM
 * stays so no more with less of it, for an LRU-like policy.
 *
 * Distances are kept in a log-linear histogram (UPG_FC_SUB buckets per
 * power of two, so any distance is placed within an eighth of itself),
 * read with linear interpolation inside a bucket.  Not thread-safe:
 * callers hold up->lock.
 */
#ifndef UPG_FORECAST_H
#define UPG_FORECAST_H

#include <stdint.h>

#define UPG_FC_SUB 8
#define UPG_FC_BUCKETS (32 * UPG_FC_SUB)
#define UPG_FC_SEQ_MASK 0x7fffffffu  /* the counter's bits in evict_seq */
#define UPG_FC_GHOST 0x80000000u     /* evict_seq: the policy asked for a ghost hit */

struct upg_forecast {
	uint64_t n[UPG_FC_BUCKETS];  /* refills by distance, in 4 KiB units */
	uint64_t cold;               /* refills of pages not evicted by this process */
	uint64_t most;               /* the largest distance seen */
};

/* A refill of a page whose evict_seq is seq, the counter now at now. */
void upg_fc_add(struct upg_forecast *f, uint32_t now, uint32_t seq);
/* Refills of the run that would remain with extra bytes more RAM. */
uint64_t upg_fc_refills(const struct upg_forecast *f, uint64_t extra);

/* The distance of a page evicted at seq, in 4 KiB units. */
static inline uint32_t upg_fc_distance(uint32_t now, uint32_t seq)
{
	return (now - seq) & UPG_FC_SEQ_MASK;
}

#endif
