/* SPDX-License-Identifier: MIT */
/* Tier queues, and the file store's data path (see tier.h). */
#include "tier.h"
#include "store.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

int upg_tq_init(struct upg_tq *q, struct io_uring *ring, int kick_fd, uint32_t cap)
{
	*q = (struct upg_tq){ .ring = ring, .kick_fd = kick_fd, .cap = cap ? cap : 1 };
	q->done = calloc(q->cap, sizeof *q->done);
	if (!q->done)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	return 0;
}

static void tq_fini(struct upg_tq *q, bool forked)
{
	if (q->tier_free && q->tier_local)
		q->tier_free(q->tier_local, forked);
	q->tier_local = NULL;
	if (!q->done)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q->done);
	q->done = NULL;
}

void upg_tq_fini(struct upg_tq *q)
{
	tq_fini(q, false);
}

void upg_tq_forget(struct upg_tq *q)
{
	tq_fini(q, true);
}

void upg_tq_post(struct upg_tq *q, uint64_t tag, int res)
{
	pthread_mutex_lock(&q->lock);
	/* Every request has one slot here: an owner hands its tiers at most
	 * cap requests at a time (upg_tq_init()).  Losing one would hang a
	 * fault for ever: stop loudly instead. */
	if (q->ndone == q->cap)
		abort();
	q->done[q->ndone++] = (struct upg_tq_done){ tag, res };
	pthread_mutex_unlock(&q->lock);
	if (q->kick_fd >= 0 && !pthread_equal(pthread_self(), q->owner)) {
		uint64_t one = 1;
		(void)!write(q->kick_fd, &one, sizeof one);
	}
}

bool upg_tq_pending(struct upg_tq *q)
{
	return __atomic_load_n(&q->ndone, __ATOMIC_ACQUIRE) != 0;
}

uint32_t upg_tq_take(struct upg_tq *q, struct upg_tq_done *out, uint32_t max)
{
	if (!upg_tq_pending(q))
		return 0;
	pthread_mutex_lock(&q->lock);
	uint32_t n = q->ndone < max ? q->ndone : max;
	for (uint32_t i = 0; i < n; i++)
		out[i] = q->done[i];
	for (uint32_t i = n; i < q->ndone; i++)
		q->done[i - n] = q->done[i];
	q->ndone -= n;
	pthread_mutex_unlock(&q->lock);
	return n;
}

struct io_uring_sqe *upg_tq_sqe(struct upg_tq *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(q->ring);
	if (!sqe) {
		io_uring_submit(q->ring);
		sqe = io_uring_get_sqe(q->ring);
	}
	return sqe;
}

void upg_tq_arm_kick(struct upg_tq *q)
{
	struct io_uring_sqe *sqe = upg_tq_sqe(q);
	io_uring_prep_poll_multishot(sqe, q->kick_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, UPG_TQ_KICK);
}

int upg_tq_reap(struct upg_tq *q, uint32_t min, struct upg_tq_done *out, uint32_t max)
{
	uint32_t n = upg_tq_take(q, out, max);
	while (n < max) {
		struct io_uring_cqe *cqe;
		if (n < min && !io_uring_cq_ready(q->ring)) {
			/* A completion posted by another thread kicks the
			 * eventfd, whose poll completes on the ring: waiting
			 * for the ring covers both. */
			int rc = io_uring_submit_and_wait(q->ring, q->ring_only ? min - n : 1);
			if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
				return rc;
			n += upg_tq_take(q, out + n, max - n);
			continue;
		}
		if (io_uring_peek_cqe(q->ring, &cqe))
			break;
		if (io_uring_cqe_get_data64(cqe) == UPG_TQ_KICK) {
			uint64_t v;
			(void)!read(q->kick_fd, &v, sizeof v);
			bool again = !(cqe->flags & IORING_CQE_F_MORE);
			io_uring_cqe_seen(q->ring, cqe);
			if (again)
				upg_tq_arm_kick(q);
			n += upg_tq_take(q, out + n, max - n);
			continue;
		}
		out[n++] = (struct upg_tq_done){ io_uring_cqe_get_data64(cqe), cqe->res };
		io_uring_cqe_seen(q->ring, cqe);
	}
	return (int)n;
}

static void file_read(void *tier, struct upg_tq *q, uint64_t loc, void *buf, uint32_t len, uint64_t tag)
{
	struct io_uring_sqe *sqe = upg_tq_sqe(q);
	uint32_t slot = (uint32_t)loc;
	int file = (int)upg_slot_store(slot);
	uint64_t off = upg_slot_block(slot) * 4096;
	const char *b = buf;
	if (q->fixed && b >= q->fixed && b + len <= q->fixed + q->fixed_len)
		io_uring_prep_read_fixed(sqe, file, buf, len, off, 0);
	else
		io_uring_prep_read(sqe, file, buf, len, off);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, tag);
}

static void file_write(void *tier, struct upg_tq *q, uint64_t loc, const void *buf, uint32_t len, uint64_t tag)
{
	struct io_uring_sqe *sqe = upg_tq_sqe(q);
	uint32_t slot = (uint32_t)loc;
	io_uring_prep_write(sqe, (int)upg_slot_store(slot), buf, len, upg_slot_block(slot) * 4096);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, tag);
}

const struct upg_tier_ops upg_file_tier = {
	.name = "file",
	.on_ring = true,
	.read = file_read,
	.write = file_write,
};
