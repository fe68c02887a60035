/* SPDX-License-Identifier: MIT */
/*
 * "clock": CLOCK / second chance.  The hand is the head of a FIFO; a frame
 * whose reference bit is set is cleared and moved to the tail instead of
 * being evicted, which is the same order as a hand sweeping a ring.
 *
 * The only reference evidence the fault path sees is a write-protect fault
 * (access()) and a ghost hit at insert (the page was evicted too early).
 * Read hits are invisible, so without writes this degrades to FIFO.
 * READAHEAD frames enter unreferenced at the tail like NEW ones: putting them
 * at the hand would evict the newest readahead first, which is the part of a
 * sequential stream about to be used.
 */
#include "policy.h"
#include "qlist.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#define NIL UPG_NIL

enum { IN = 1, REF = 2 };

/* One doubly linked list threaded through prev/next by frame index, so that
 * remove() of any frame is O(1) and nothing is allocated after create(). */
struct clock {
	uint32_t nframes;
	struct upg_qlist l;
	uint32_t *prev, *next; /* meaningful only while state[frame] & IN */
	uint8_t *state;        /* IN | REF */
};

static struct clock *clock_of(struct upg_policy *p)
{
	return (struct clock *)p;
}

static void push_tail(struct clock *q, uint32_t f)
{
	upg_qlist_push_tail(&q->l, q->prev, q->next, f);
}

static void unlink_frame(struct clock *q, uint32_t f)
{
	upg_qlist_unlink(&q->l, q->prev, q->next, f);
}

static int create(uint32_t nframes, struct upg_policy **out)
{
	if (nframes == 0 || nframes == NIL)
		return -EINVAL;
	size_t per = 2 * sizeof(uint32_t) + 1;
	if ((uint64_t)nframes > (SIZE_MAX - sizeof(struct clock)) / per)
		return -ENOMEM;
	/* One block: the struct's size is a multiple of its pointer alignment,
	 * so the uint32_t arrays that follow it are aligned. */
	struct clock *q = calloc(1, sizeof(*q) + nframes * per);
	if (!q)
		return -ENOMEM;
	q->nframes = nframes;
	upg_qlist_init(&q->l);
	q->prev = (uint32_t *)(q + 1);
	q->next = q->prev + nframes;
	q->state = (uint8_t *)(q->next + nframes);
	*out = (struct upg_policy *)q;
	return 0;
}

static void destroy(struct upg_policy *p)
{
	free(p);
}

static void insert(struct upg_policy *p, uint32_t frame, enum upg_policy_hint hint)
{
	struct clock *q = clock_of(p);
	assert(frame < q->nframes && !q->state[frame]);
	q->state[frame] = IN | (hint == UPG_HINT_GHOST ? REF : 0);
	push_tail(q, frame);
}

/* A write fault can be reported for a frame that eviction has already taken
 * out of the policy (the page is on its way out); that is benign, not a bug. */
static void access_frame(struct upg_policy *p, uint32_t frame)
{
	struct clock *q = clock_of(p);
	assert(frame < q->nframes);
	if (q->state[frame] & IN)
		q->state[frame] |= REF;
}

static void remove_frame(struct upg_policy *p, uint32_t frame)
{
	struct clock *q = clock_of(p);
	assert(frame < q->nframes && (q->state[frame] & IN));
	unlink_frame(q, frame);
	q->state[frame] = 0;
}

/* Amortised O(1) per victim: every frame passed over had its REF bit set by
 * one insert() or access(), and passing over it clears that bit. */
static uint32_t evict(struct upg_policy *p, uint32_t *out, uint8_t *ghost, uint32_t n)
{
	struct clock *q = clock_of(p);
	uint32_t got = 0;
	while (got < n && q->l.head != NIL) {
		uint32_t f = q->l.head;
		unlink_frame(q, f);
		if (q->state[f] & REF) {
			q->state[f] = IN;
			push_tail(q, f);
			continue;
		}
		q->state[f] = 0;
		if (ghost)
			ghost[got] = 1;
		out[got++] = f;
	}
	return got;
}

const struct upg_policy_ops upg_policy_clock_ops = {
	.name = "clock",
	.create = create,
	.destroy = destroy,
	.insert = insert,
	.access = access_frame,
	.remove = remove_frame,
	.evict = evict,
};
