/* SPDX-License-Identifier: MIT */
/*
 * "fifo": evict in order of insertion, ignoring hints and accesses.  The weak
 * baseline that every other policy must match or beat.
 */
#include "policy.h"
#include "qlist.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#define NIL UPG_NIL

/* One doubly linked list threaded through prev/next by frame index, so that
 * remove() of any frame is O(1) and nothing is allocated after create(). */
struct fifo {
	uint32_t nframes;
	struct upg_qlist l;
	uint32_t *prev, *next; /* meaningful only while present[frame] */
	uint8_t *present;
};

static struct fifo *fifo_of(struct upg_policy *p)
{
	return (struct fifo *)p;
}

static void push_tail(struct fifo *q, uint32_t f)
{
	upg_qlist_push_tail(&q->l, q->prev, q->next, f);
}

static void unlink_frame(struct fifo *q, uint32_t f)
{
	upg_qlist_unlink(&q->l, q->prev, q->next, f);
}

static int create(uint32_t nframes, struct upg_policy **out)
{
	if (nframes == 0 || nframes == NIL)
		return -EINVAL;
	size_t per = 2 * sizeof(uint32_t) + 1;
	if ((uint64_t)nframes > (SIZE_MAX - sizeof(struct fifo)) / per)
		return -ENOMEM;
	/* One block: the struct's size is a multiple of its pointer alignment,
	 * so the uint32_t arrays that follow it are aligned. */
	struct fifo *q = calloc(1, sizeof(*q) + nframes * per);
	if (!q)
		return -ENOMEM;
	q->nframes = nframes;
	upg_qlist_init(&q->l);
	q->prev = (uint32_t *)(q + 1);
	q->next = q->prev + nframes;
	q->present = (uint8_t *)(q->next + nframes);
	*out = (struct upg_policy *)q;
	return 0;
}

static void destroy(struct upg_policy *p)
{
	free(p);
}

static void insert(struct upg_policy *p, uint32_t frame, enum upg_policy_hint hint)
{
	struct fifo *q = fifo_of(p);
	assert(frame < q->nframes && !q->present[frame]);
	q->present[frame] = 1;
	push_tail(q, frame);
}

static void access_frame(struct upg_policy *p, uint32_t frame)
{
	assert(frame < fifo_of(p)->nframes);
}

static void remove_frame(struct upg_policy *p, uint32_t frame)
{
	struct fifo *q = fifo_of(p);
	assert(frame < q->nframes && q->present[frame]);
	unlink_frame(q, frame);
	q->present[frame] = 0;
}

static uint32_t evict(struct upg_policy *p, uint32_t *out, uint8_t *ghost, uint32_t n)
{
	struct fifo *q = fifo_of(p);
	uint32_t got = 0;
	while (got < n && q->l.head != NIL) {
		uint32_t f = q->l.head;
		unlink_frame(q, f);
		q->present[f] = 0;
		if (ghost)
			ghost[got] = 1;
		out[got++] = f;
	}
	return got;
}

const struct upg_policy_ops upg_policy_fifo_ops = {
	.name = "fifo",
	.create = create,
	.destroy = destroy,
	.insert = insert,
	.access = access_frame,
	.remove = remove_frame,
	.evict = evict,
};
