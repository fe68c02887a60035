/* SPDX-License-Identifier: MIT */
/* A miss-ratio curve from one run's reuse distances (see forecast.h). */
#include "forecast.h"

static unsigned bucket_of(uint32_t d)
{
	if (d < UPG_FC_SUB)
		return d;
	unsigned o = 31u - (unsigned)__builtin_clz(d);  /* >= 3 */
	return (o - 2) * UPG_FC_SUB + ((d >> (o - 3)) & (UPG_FC_SUB - 1));
}

/* The distances bucket i holds: [lo, lo + width). */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
	if (i < UPG_FC_SUB) {
		*lo = i, *width = 1;
		return;
	}
	unsigned o = i / UPG_FC_SUB + 2, s = i % UPG_FC_SUB;
	*lo = (uint64_t)(UPG_FC_SUB + s) << (o - 3);
	*width = 1ULL << (o - 3);
}

static uint32_t advance(uint32_t seq, uint32_t units)
{
	seq = (seq + units) & UPG_FC_SEQ_MASK;
	return seq ? seq : 1;  /* 0 is "never evicted" */
}

uint32_t upg_fc_evicted(struct upg_forecast *f, uint32_t units, bool from_main)
{
	f->seq = advance(f->seq, units);
	f->all_ev += units;
	if (!from_main)
		return f->seq | UPG_FC_GHOST;
	f->seq_main = advance(f->seq_main, units);
	f->main_ev += units;
	return f->seq_main;
}

uint64_t upg_fc_age(const struct upg_forecast *f, uint32_t seq)
{
	if (!(seq & UPG_FC_SEQ_MASK))
		return UINT64_MAX;
	if (seq & UPG_FC_GHOST)
		return upg_fc_distance(f->seq, seq);
	uint64_t d = upg_fc_distance(f->seq_main, seq);
	/* In every eviction's units, as near as the mix tells. */
	if (f->main_ev)
		d = (uint64_t)((double)d * ((double)f->all_ev / (double)f->main_ev));
	return d;
}

uint64_t upg_fc_add(struct upg_forecast *f, uint32_t seq)
{
	if (!(seq & UPG_FC_SEQ_MASK)) {
		f->cold++;
		return UINT64_MAX;
	}
	if (seq & UPG_FC_GHOST)
		f->n[bucket_of(upg_fc_distance(f->seq, seq))]++;
	else
		f->m[bucket_of(upg_fc_distance(f->seq_main, seq))]++;
	uint64_t d = upg_fc_age(f, seq);
	if (d > f->most)
		f->most = d;
	return d;
}

static double remain(const uint64_t *n, uint64_t extra)
{
	uint64_t units = extra / 4096;  /* a refill of distance d needs d units more */
	double left = 0;
	for (unsigned i = 0; i < UPG_FC_BUCKETS; i++) {
		if (!n[i])
			continue;
		uint64_t lo, w;
		bucket_range(i, &lo, &w);
		if (lo >= units)
			left += (double)n[i];
		else if (lo + w > units)
			left += (double)n[i] * (double)(lo + w - units) / (double)w;
	}
	return left;
}

static double total(const uint64_t *n)
{
	double t = 0;
	for (unsigned i = 0; i < UPG_FC_BUCKETS; i++)
		t += (double)n[i];
	return t;
}

void upg_fc_forget(struct upg_forecast *f)
{
	uint32_t seq = f->seq, seq_main = f->seq_main;
	*f = (struct upg_forecast){ .seq = seq, .seq_main = seq_main };
}

/* Of the refills in n, those with a distance under quick units. */
static double quick_ones(const uint64_t *n, uint64_t quick)
{
	return total(n) - remain(n, quick);
}

/* Of the refills in n, those left with extra bytes more RAM, taking part
 * of the quick ones (distance under quick) as cyclers, counted apart:
 * those left at quick stay. */
static double left_by_distance(const uint64_t *n, uint64_t extra, uint64_t quick, double part)
{
	double left = remain(n, extra);
	if (extra < quick)
		left -= part * (left - remain(n, quick));
	return left;
}

uint64_t upg_fc_estimate(const struct upg_forecast *f, uint64_t refills, uint64_t evictions, uint64_t ram,
			 uint64_t extra, uint64_t main_ram, uint64_t main_extra, uint64_t small_ram)
{
	double all = (double)f->cold + total(f->n) + total(f->m);
	if (!refills || all <= 0)
		return 0;
	double scale = (double)refills / all;  /* the run's count over the histogram's */
	uint64_t quick = main_ram / 2, quick_small = f->main_ev ? small_ram / 4 : 0;
	double main_cyc = quick_ones(f->m, quick);
	/* A cycler from main comes back to the small queue and leaves that
	 * too before it is seen again (read hits are invisible), to come
	 * back soon (within a quarter of the small queue's worth of
	 * evictions): as many such refills in n as main's cyclers at most
	 * are cyclers too. */
	double nq = quick_ones(f->n, quick_small), small_cyc = nq < main_cyc ? nq : main_cyc;
	double part = nq > 0 ? small_cyc / nq : 0;
	double cyclers = scale * (main_cyc + small_cyc);
	/* The others, by distance: every refill left at extra but the
	 * cyclers among them. */
	double others = scale * ((double)f->cold + left_by_distance(f->n, extra, quick_small, part) +
				 left_by_distance(f->m, main_extra, quick, 1));
	/* Cyclers at the larger budget: cyclers * ram / (ram + extra) *
	 * evictions' / evictions, where evictions' = evictions - refills +
	 * refills' (each refill saved is an eviction saved).  With
	 * k = cyclers * ram / (ram + extra) / evictions:
	 * refills' = others + k * (evictions - refills + refills'). */
	double k = evictions && ram + extra ? cyclers * (double)ram / (double)(ram + extra) / (double)evictions : 0;
	if (k > 0.95)
		k = 0.95;
	double other_evictions = evictions > refills ? (double)(evictions - refills) : 0;
	double est = (others + k * other_evictions) / (1 - k);
	return est < (double)refills ? (uint64_t)(est + 0.5) : refills;
}
