/* SPDX-License-Identifier: MIT */
/*
 * "s3fifo": S3-FIFO (Yang et al., SOSP'23), adapted to what userfaultfd shows.
 *
 *   readahead  never-accessed READAHEAD frames, FIFO; always evicted first,
 *              since nothing says they will be used;
 *   small      NEW frames, FIFO, about 10% of nframes: a page touched once
 *              leaves quickly unless it shows use while here;
 *   main       GHOST frames and frames promoted from small, FIFO with a 2-bit
 *              frequency: a frame with freq > 0 is reinserted (freq - 1)
 *              instead of evicted.
 *
 * The ghost queue of the paper is kept by the caller: the runtime remembers
 * each page's eviction sequence number and inserts with UPG_HINT_GHOST when
 * upg_policy_is_ghost() says it left within the last nframes evictions, so a
 * GHOST insert goes straight to main.  Read hits are invisible; access() (a
 * write-protect fault) is the only evidence of reuse and bumps freq.
 */
#include "policy.h"
#include "qlist.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#define NIL UPG_NIL
#define FREQ_MAX 3

enum { Q_NONE = 0, Q_RA, Q_SMALL, Q_MAIN, NQUEUES };


/* Three lists threaded through shared prev/next arrays by frame index, so
 * that remove() of any frame is O(1) and nothing is allocated after create().
 * where[f] names the list that holds f (Q_NONE: not in the policy). */
struct s3fifo {
	uint32_t nframes;
	uint32_t small_target;
	struct upg_qlist q[NQUEUES]; /* q[Q_NONE] unused */
	uint32_t *prev, *next;
	uint8_t *where;
	uint8_t *freq; /* 0..FREQ_MAX */
};

static struct s3fifo *s3_of(struct upg_policy *p)
{
	return (struct s3fifo *)p;
}

static void push_tail(struct s3fifo *s, uint8_t qi, uint32_t f)
{
	upg_qlist_push_tail(&s->q[qi], s->prev, s->next, f);
	s->where[f] = qi;
}

static void unlink_frame(struct s3fifo *s, uint32_t f)
{
	upg_qlist_unlink(&s->q[s->where[f]], s->prev, s->next, f);
	s->where[f] = Q_NONE;
}

static int create(uint32_t nframes, struct upg_policy **out)
{
	if (nframes == 0 || nframes == NIL)
		return -EINVAL;
	size_t per = 2 * sizeof(uint32_t) + 2;
	if ((uint64_t)nframes > (SIZE_MAX - sizeof(struct s3fifo)) / per)
		return -ENOMEM;
	/* One block: the struct's size is a multiple of its pointer alignment,
	 * so the uint32_t arrays that follow it are aligned. */
	struct s3fifo *s = calloc(1, sizeof(*s) + nframes * per);
	if (!s)
		return -ENOMEM;
	s->nframes = nframes;
	s->small_target = nframes / 10 ? nframes / 10 : 1;
	for (int i = 0; i < NQUEUES; i++)
		upg_qlist_init(&s->q[i]);
	s->prev = (uint32_t *)(s + 1);
	s->next = s->prev + nframes;
	s->where = (uint8_t *)(s->next + nframes);
	s->freq = s->where + nframes;
	*out = (struct upg_policy *)s;
	return 0;
}

static void destroy(struct upg_policy *p)
{
	free(p);
}

static void insert(struct upg_policy *p, uint32_t frame, enum upg_policy_hint hint)
{
	struct s3fifo *s = s3_of(p);
	assert(frame < s->nframes && s->where[frame] == Q_NONE);
	s->freq[frame] = 0;
	switch (hint) {
	case UPG_HINT_GHOST:
		push_tail(s, Q_MAIN, frame);
		break;
	case UPG_HINT_READAHEAD:
		push_tail(s, Q_RA, frame);
		break;
	default:
		push_tail(s, Q_SMALL, frame);
		break;
	}
}

/* A write fault can be reported for a frame that eviction has already taken
 * out of the policy (the page is on its way out); that is benign, not a bug. */
static void access_frame(struct upg_policy *p, uint32_t frame)
{
	struct s3fifo *s = s3_of(p);
	assert(frame < s->nframes);
	switch (s->where[frame]) {
	case Q_NONE:
		return;
	case Q_RA:
		/* Used after all: from now on it is an ordinary young page with
		 * one use to its credit, so small will promote it. */
		unlink_frame(s, frame);
		push_tail(s, Q_SMALL, frame);
		break;
	default:
		break;
	}
	if (s->freq[frame] < FREQ_MAX)
		s->freq[frame]++;
}

static void remove_frame(struct upg_policy *p, uint32_t frame)
{
	struct s3fifo *s = s3_of(p);
	assert(frame < s->nframes && s->where[frame] != Q_NONE);
	unlink_frame(s, frame);
}

/*
 * Amortised O(1) per victim: a frame passed over either moves from small to
 * main (once per insert) or spends one unit of freq, which only insert-time
 * promotion or access() adds, and at most FREQ_MAX of.
 */
static uint32_t evict(struct upg_policy *p, uint32_t *out, uint8_t *ghost, uint32_t n)
{
	struct s3fifo *s = s3_of(p);
	struct upg_qlist *ra = &s->q[Q_RA], *small = &s->q[Q_SMALL], *mainq = &s->q[Q_MAIN];
	uint32_t got = 0;
	while (got < n) {
		uint32_t f;
		bool from_main = false;
		if (ra->count) {
			f = ra->head;
		} else if (small->count && (small->count >= s->small_target || !mainq->count)) {
			f = small->head;
			if (s->freq[f]) {
				/* Promotion spends one use, like a reinsertion in main. */
				s->freq[f]--;
				unlink_frame(s, f);
				push_tail(s, Q_MAIN, f);
				continue;
			}
		} else if (mainq->count) {
			f = mainq->head;
			from_main = true;
			if (s->freq[f]) {
				s->freq[f]--;
				unlink_frame(s, f);
				push_tail(s, Q_MAIN, f);
				continue;
			}
		} else {
			break;
		}
		unlink_frame(s, f);
		if (ghost)
			ghost[got] = !from_main;
		out[got++] = f;
	}
	return got;
}

const struct upg_policy_ops upg_policy_s3fifo_ops = {
	.name = "s3fifo",
	.create = create,
	.destroy = destroy,
	.insert = insert,
	.access = access_frame,
	.remove = remove_frame,
	.evict = evict,
};
