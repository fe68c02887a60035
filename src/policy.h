/* SPDX-License-Identifier: MIT */
/*
 * Replacement policies.
 *
 * A policy orders the resident pages of one runtime, named by frame index
 * (0 .. nframes-1), and chooses victims.  userfaultfd shows faults, not hits,
 * so a policy learns only what the fault path can see:
 *   - insert() with a hint: a first touch, a store read of a page that was
 *     evicted recently (a ghost hit: it was evicted too early), or readahead;
 *   - access(): the first write to a clean page (a write-protect fault);
 *   - remove(): the page left RAM without eviction (discard or unmap).
 *
 * Callers serialise every call with the runtime lock; policies do no locking,
 * no I/O and no allocation after create().
 */
#ifndef UPG_POLICY_H
#define UPG_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "forecast.h"

enum upg_policy_hint {
	UPG_HINT_NEW = 0,       /* first touch, or a store read of a page not seen lately */
	UPG_HINT_GHOST = 1,     /* store read of a page evicted within the ghost window */
	UPG_HINT_READAHEAD = 2, /* brought in speculatively: no evidence of use yet */
};

struct upg_policy;

struct upg_policy_ops {
	const char *name;
	int (*create)(uint32_t nframes, struct upg_policy **out);
	void (*destroy)(struct upg_policy *p);
	void (*insert)(struct upg_policy *p, uint32_t frame, enum upg_policy_hint hint);
	void (*access)(struct upg_policy *p, uint32_t frame);
	void (*remove)(struct upg_policy *p, uint32_t frame);
	/* Choose up to n victims, remove them from the policy, write them to
	 * out, return how many.  Fewer than n only when fewer are resident.
	 * ghost (may be NULL) gets, per victim, whether a refault soon after
	 * should count as a ghost hit: S3-FIFO remembers only pages that
	 * left without being promoted, so a loop larger than RAM cannot
	 * flush the main queue through its ghosts. */
	uint32_t (*evict)(struct upg_policy *p, uint32_t *out, uint8_t *ghost, uint32_t n);
};

/* The policies, for upg_policy_find's table; defined one per file. */
extern const struct upg_policy_ops upg_policy_fifo_ops;
extern const struct upg_policy_ops upg_policy_clock_ops;
extern const struct upg_policy_ops upg_policy_s3fifo_ops;

/* NULL when no policy has that name. */
const struct upg_policy_ops *upg_policy_find(const char *name);

/* Comma-separated list of the policy names, for messages. */
const char *upg_policy_names(void);

/*
 * Ghost test: a page evicted at evicted_seq (see forecast.h: the eviction
 * counter, in 4 KiB units, and UPG_FC_GHOST when the policy asked for
 * ghost hits) is a ghost hit at counter now when less than window units
 * have been evicted since.  The counter wraps.
 */
static inline bool upg_policy_is_ghost(uint32_t now, uint32_t evicted_seq, uint32_t window)
{
	return (evicted_seq & UPG_FC_GHOST) && upg_fc_distance(now, evicted_seq) < window;
}

#endif
