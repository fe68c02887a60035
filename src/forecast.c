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

void upg_fc_add(struct upg_forecast *f, uint32_t now, uint32_t seq)
{
	if (!(seq & UPG_FC_SEQ_MASK)) {
		f->cold++;
		return;
	}
	uint32_t d = upg_fc_distance(now, seq);
	f->n[bucket_of(d)]++;
	if (!(seq & UPG_FC_GHOST))
		f->m[bucket_of(d)]++;
	if (d > f->most)
		f->most = d;
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

uint64_t upg_fc_refills(const struct upg_forecast *f, uint64_t extra)
{
	return (uint64_t)((double)f->cold + remain(f->n, extra) + 0.5);
}

uint64_t upg_fc_estimate(const struct upg_forecast *f, uint64_t refills, uint64_t evictions, uint64_t ram,
			 uint64_t extra)
{
	double all = (double)upg_fc_refills(f, 0);
	if (!refills || all <= 0)
		return 0;
	double scale = (double)refills / all;  /* the run's count over the histogram's */
	uint64_t quick = ram / 2;
	double cyclers = scale * (remain(f->m, 0) - remain(f->m, quick));
	/* The others, by distance: every refill left at extra but the
	 * cyclers among them. */
	double others = scale * ((double)upg_fc_refills(f, extra) -
				 (extra < quick ? remain(f->m, extra) - remain(f->m, quick) : 0));
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
