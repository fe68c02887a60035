/* SPDX-License-Identifier: MIT */
/*
 * Doubly linked lists of frame indices, threaded through prev/next arrays
 * that the policy allocates once: O(1) push and unlink of any frame, no
 * allocation after create().  Several lists may share one pair of arrays,
 * as long as a frame is on at most one of them.
 */
#ifndef UPG_QLIST_H
#define UPG_QLIST_H

#include <stdint.h>

#define UPG_NIL UINT32_MAX

struct upg_qlist {
	uint32_t head, tail, count;
};

static inline void upg_qlist_init(struct upg_qlist *q)
{
	q->head = q->tail = UPG_NIL;
	q->count = 0;
}

static inline void upg_qlist_push_tail(struct upg_qlist *q, uint32_t *prev, uint32_t *next, uint32_t f)
{
	prev[f] = q->tail;
	next[f] = UPG_NIL;
	if (q->tail == UPG_NIL)
		q->head = f;
	else
		next[q->tail] = f;
	q->tail = f;
	q->count++;
}

static inline void upg_qlist_unlink(struct upg_qlist *q, uint32_t *prev, uint32_t *next, uint32_t f)
{
	uint32_t p = prev[f], n = next[f];
	if (p == UPG_NIL)
		q->head = n;
	else
		next[p] = n;
	if (n == UPG_NIL)
		q->tail = p;
	else
		prev[n] = p;
	q->count--;
}

#endif
