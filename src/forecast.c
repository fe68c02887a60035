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
	if (d > f->most)
		f->most = d;
}

uint64_t upg_fc_refills(const struct upg_forecast *f, uint64_t extra)
{
	uint64_t units = extra / 4096;  /* a refill of distance d needs d units more */
	double left = (double)f->cold;
	for (unsigned i = 0; i < UPG_FC_BUCKETS; i++) {
		if (!f->n[i])
			continue;
		uint64_t lo, w;
		bucket_range(i, &lo, &w);
		if (lo >= units)
			left += (double)f->n[i];
		else if (lo + w > units)
			left += (double)f->n[i] * (double)(lo + w - units) / (double)w;
	}
	return (uint64_t)(left + 0.5);
}
