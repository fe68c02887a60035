/* SPDX-License-Identifier: MIT */
/* Regions: look-up, access streams and page discards (see region.h). */
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <sys/mman.h>

struct upg_region *upg_region_find(struct upager *up, uintptr_t addr)
{
	uint32_t lo = 0, hi = up->nregions;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		struct upg_region *r = up->regions[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr >= r->base + r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

struct upg_stream *upg_stream_match(struct upg_region *r, struct upg_stream *set, uint64_t page, uint32_t init,
				    uint32_t max)
{
	struct upg_stream *old = &set[0];
	r->stream_clock++;
	for (unsigned i = 0; i < UPG_STREAMS; i++) {
		struct upg_stream *s = &set[i];
		/* A fault at, or just past, where the stream would go next. */
		if (s->win && page >= s->next && page < s->next + 2) {
			s->win = s->win * 2 > max ? max : s->win * 2;
			s->stamp = r->stream_clock;
			return s;
		}
		if (s->stamp < old->stamp)
			old = s;
	}
	old->win = init;
	old->stamp = r->stream_clock;
	return old;
}

void upg_region_unbusy(struct upager *up, struct upg_region *r, uint32_t n)
{
	r->busy -= n;
	if (r->dying && !r->busy)
		pthread_cond_broadcast(&up->idle_cond);
}

void upg_zapwait(struct upager *up, struct upg_region *r, struct upg_pte *p)
{
	upg_slot_free(up, r, p);
	p->zmask = 0;
	p->state = PG_NONE;
	p->flags = (p->flags & PF_DEFERRED) | PF_ZAPWAIT;
}

int upg_mapped(struct upager *up, uintptr_t addr, size_t len, unsigned char *vec)
{
	if (up->pagemap_fd < 0)
		return mincore((void *)addr, len, vec) ? -errno : 0;
	return upg_pagemap(up->pagemap_fd, addr, len / 4096, vec);
}

void upg_discard_range(struct upager *up, struct upg_region *r, uint64_t first, uint64_t n)
{
	uint64_t end = first + n;
	for (uint64_t pg = first; pg < end;) {
		struct upg_pte *p = upg_pte_peek(r, pg);
		if (!p) {
			pg = (pg / UPG_PTES_PER_CHUNK + 1) * UPG_PTES_PER_CHUNK;
			continue;
		}
		switch (p->state) {
		case PG_NONE:
			break;
		case PG_POOLED:
			upg_pooled_free(up, p);
			/* fall through */
		case PG_STORED:
			upg_slot_free(up, r, p);
			p->state = PG_NONE;
			p->flags &= PF_DEFERRED;  /* no longer poisoned: the kernel zapped the marker */
			p->zmask = 0;
			up->c.discards++;
			break;
		case PG_RESIDENT:
			/* Still mapped until the kernel's zap lands, after this
			 * event was read: PF_ZAPWAIT keeps a fault-around from
			 * taking it back, old bytes and all, meanwhile. */
			upg_resident_release(up, r, p);
			upg_zapwait(up, r, p);
			up->c.discards++;
			break;
		default:
			/* FILLING, READING, EVICTING: the owner applies it. */
			p->flags |= PF_DISCARDED;
			up->c.discards++;
			break;
		}
		pg++;
	}
}

void upg_discard_part(struct upager *up, struct upg_region *r, uint64_t page, uintptr_t start, uintptr_t end)
{
	struct upg_pte *p = upg_pte_peek(r, page);
	if (!p || p->state == PG_NONE)
		return;  /* zeros already */
	/* A RESIDENT page is marked too: the kernel zaps the part only after
	 * this event is read, and the evictor may move the page out whole
	 * before that.  It zeroes marked parts of what it moves out; a refill
	 * of the zapped part clears the mark (missing()).  So is a FILLING
	 * one: a refill of a page in RAM stops at the mark (h_copy()), a zero
	 * fill drops it (all zeros anyway). */
	uint32_t chunk = upg_zchunk(r->psize);
	uintptr_t base = r->base + (page << r->pshift);
	uintptr_t s = start > base ? start : base, e = end < base + r->psize ? end : base + r->psize;
	uint64_t first = (s - base + chunk - 1) / chunk, last = (e - base) / chunk;
	for (uint64_t c = first; c < last; c++)
		p->zmask |= (uint16_t)(1u << c);
}
