/* SPDX-License-Identifier: MIT */
/* The compressed pool's share of the budget (see share.h). */
#include "share.h"

/* Refills of a store refill's cost that move the share by one step. */
#define SHARE_GAIN 8.0
/* The smallest pool worth keeping (runtime.c turns a smaller one off). */
#define SHARE_FLOOR (256u << 10)

void upg_share_init(struct upg_share *s, uint64_t budget, uint64_t most)
{
	*s = (struct upg_share){ .hi = most, .lo = budget / 20, .step = budget / 64 };
	if (s->lo < SHARE_FLOOR)
		s->lo = SHARE_FLOOR;
	if (s->lo > s->hi)
		s->lo = s->hi;
	if (s->step < (64u << 10))
		s->step = 64u << 10;
	s->target = (double)most;
	s->reach = s->cost_pool = s->cost_store = s->put_part = -1;  /* not measured */
}

static void move(struct upg_share *s, double cost)
{
	s->target += (double)s->step * cost / (s->cost_store * SHARE_GAIN);
	if (s->target < (double)s->lo)
		s->target = (double)s->lo;
	if (s->target > (double)s->hi)
		s->target = (double)s->hi;
}

void upg_share_refill(struct upg_share *s, uint64_t dist, bool from_pool, uint64_t pool_bytes)
{
	if (!s->hi || dist == UINT64_MAX || s->cost_pool < 0 || s->cost_store <= 0)
		return;
	if (dist < s->step / 4096) {
		s->downs++;
		move(s, -(from_pool ? s->cost_pool : s->cost_store));
		return;
	}
	/* The pool at its share: step bytes more would keep its pages longer
	 * by as many evictions again, in proportion. */
	if (from_pool || s->reach < 0 || s->put_part < 0 || !pool_bytes || (double)pool_bytes < s->target * 0.9)
		return;
	double more = s->reach * (double)s->step / (double)pool_bytes;
	if ((double)dist >= s->reach && (double)dist < s->reach + more && s->cost_store > s->cost_pool) {
		s->ups++;
		move(s, (s->cost_store - s->cost_pool) * s->put_part);
	}
}

/* Exponential smoothing; a value below 0 is "not measured yet". */
static void smooth(double *v, double x, double w)
{
	*v = *v >= 0 ? *v + (x - *v) * w : x;
}

void upg_share_cost(struct upg_share *s, bool from_pool, uint64_t ns)
{
	smooth(from_pool ? &s->cost_pool : &s->cost_store, (double)ns, 1.0 / 64);
}

void upg_share_spilled(struct upg_share *s, uint64_t dist)
{
	if (dist != UINT64_MAX)
		smooth(&s->reach, (double)dist, 1.0 / 64);
}

void upg_share_evicted(struct upg_share *s, uint64_t units, uint64_t takeable)
{
	if (units)
		smooth(&s->put_part, (double)takeable / (double)units, 1.0 / 16);
}
