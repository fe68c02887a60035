/* SPDX-License-Identifier: MIT */
/* Frames, the budget and the resident count, with up->lock held (see budget.h). */
#include "internal.h"

#include <errno.h>

static int frame_take(struct upager *up, struct upg_region *r, uint64_t page, uint32_t *out)
{
	if (!up->nfree)
		return -ENOMEM;
	uint32_t f = up->free_frames[--up->nfree];
	up->frames[f].reg = r;
	up->frames[f].page = page;
	*out = f;
	return 0;
}

void upg_frame_put(struct upager *up, uint32_t f)
{
	up->frames[f].reg = NULL;
	up->free_frames[up->nfree++] = f;
}

void upg_frame_take_or_none(struct upager *up, struct upg_region *r, uint64_t page, struct upg_pte *p)
{
	uint32_t f;
	p->frame = frame_take(up, r, page, &f) ? UPG_NOFRAME : f;
	if (p->frame == UPG_NOFRAME)
		up->c.unframed++;
}

void upg_frame_release(struct upager *up, struct upg_pte *p)
{
	if (p->frame != UPG_NOFRAME)
		upg_frame_put(up, p->frame);
	p->frame = UPG_NOFRAME;
}

static void wake_evictor(struct upager *up)
{
	up->evict_wanted = true;
	pthread_cond_signal(&up->evict_cond);
}

uint64_t upg_budget_admit(struct upager *up, uint64_t n, uint32_t psize)
{
	/* The tree's total: this process's pages and its relatives'. */
	if (upg_domain_total(&up->dom) + n * psize > up->high)
		wake_evictor(up);
	/* Stuck, nothing can be evicted: overshoot rather than hang. */
	uint64_t k = upg_domain_reserve(&up->dom, n, psize,
					up->evict_stuck || __atomic_load_n(&up->fork_admit, __ATOMIC_RELAXED));
	up->admitted += k * psize;
	return k;
}

void upg_budget_release(struct upager *up)
{
	upg_domain_unreserve(&up->dom, up->admitted);
	up->admitted = 0;
}

void upg_resident_add(struct upager *up, uint64_t bytes)
{
	uint64_t reserved = bytes < up->admitted ? bytes : up->admitted;
	up->admitted -= reserved;
	upg_domain_add(&up->dom, (int64_t)bytes, reserved, upg_now_ns());
	upg_budget_release(up);  /* admitted more than it took */
	up->resident += bytes;
	if (up->resident > up->resident_peak)
		up->resident_peak = up->resident;
	if (up->resident > up->budget && up->resident - up->budget > up->c.overshoot_peak)
		up->c.overshoot_peak = up->resident - up->budget;
	if (upg_domain_total(&up->dom) > up->high)
		wake_evictor(up);
}

void upg_resident_sub(struct upager *up, uint64_t bytes)
{
	upg_domain_add(&up->dom, -(int64_t)bytes, 0, 0);
	up->resident -= bytes;
}

void upg_resident_drop(struct upager *up, struct upg_pte *p, uint64_t bytes)
{
	if (!(p->flags & PF_SHARED)) {
		upg_resident_sub(up, bytes);
		return;
	}
	p->flags &= (uint8_t)~PF_SHARED;
	up->uncharged -= bytes;
	up->resident -= bytes;
}

/* Count bytes already in resident in the domain too (no room reserved),
 * and wake the evictor if that puts the tree over its mark. */
static void domain_charge(struct upager *up, uint64_t bytes)
{
	upg_domain_add(&up->dom, (int64_t)bytes, 0, upg_now_ns());
	if (upg_domain_total(&up->dom) > up->high)
		wake_evictor(up);
}

uint64_t upg_resident_drop_later(struct upager *up, struct upg_pte *p, uint64_t bytes)
{
	up->resident -= bytes;
	if (!(p->flags & PF_SHARED))
		return bytes;
	p->flags &= (uint8_t)~PF_SHARED;
	up->uncharged -= bytes;
	return 0;
}

void upg_resident_settle(struct upager *up, uint64_t dropped, int64_t pool_delta)
{
	int64_t net = pool_delta - (int64_t)dropped;
	up->resident += (uint64_t)pool_delta;
	if (net > 0) {
		domain_charge(up, (uint64_t)net);
		if (up->resident > up->resident_peak)
			up->resident_peak = up->resident;
	} else if (net < 0) {
		upg_domain_add(&up->dom, net, 0, 0);
	}
}

void upg_resident_charge(struct upager *up, struct upg_pte *p, uint64_t bytes)
{
	p->flags &= (uint8_t)~PF_SHARED;
	up->uncharged -= bytes;
	uint64_t reserved = bytes < up->admitted ? bytes : up->admitted;
	up->admitted -= reserved;
	upg_domain_add(&up->dom, (int64_t)bytes, reserved, upg_now_ns());
	upg_budget_release(up);
}

void upg_shared_charge_all(struct upager *up)
{
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		for (uint64_t pg = upg_pte_next(r, 0); pg < r->npages; pg = upg_pte_next(r, pg + 1))
			r->pte[pg].flags &= (uint8_t)~PF_SHARED;
	}
	/* Still write-protected: a write to one only un-protects it. */
	upg_pool_own(up, up->pool.bytes);
	domain_charge(up, up->uncharged);
	up->uncharged = 0;
}

void upg_shared_charge(struct upager *up, uint64_t bytes)
{
	if (!bytes)
		return;
	up->uncharged -= bytes;
	domain_charge(up, bytes);
}

void upg_slot_release(struct upager *up, uint32_t slot, uint32_t blocks)
{
	if (slot && !upg_slot_store(slot))
		upg_store_free(&up->store, upg_slot_block(slot), blocks);
}

void upg_slot_free(struct upager *up, struct upg_region *r, struct upg_pte *p)
{
	upg_slot_release(up, p->slot, r->blocks);
	p->slot = 0;
}

void upg_poolcopy_free(struct upager *up, struct upg_pte *p)
{
	if (!upg_pte_poolcopy(p))
		return;
	uint64_t before = up->pool.bytes;
	upg_pool_free(&up->pool, p->evict_seq);
	p->evict_seq = 0;
	p->flags &= (uint8_t)~PF_POOLCOPY;
	upg_pool_account(up, before);
}

void upg_resident_release(struct upager *up, struct upg_region *r, struct upg_pte *p)
{
	upg_poolcopy_free(up, p);
	if (p->frame != UPG_NOFRAME)
		up->pol_ops->remove(up->pol, p->frame);
	upg_frame_release(up, p);
	upg_resident_drop(up, p, r->psize);
}

uint64_t upg_uncounted(const struct upager *up)
{
	return up->uncharged + (up->pool_unowned ? up->pool.bytes : 0);
}

void upg_pool_own(struct upager *up, uint64_t bytes)
{
	if (!up->pool_unowned)
		return;
	up->pool_unowned = false;
	domain_charge(up, bytes);
}

void upg_pool_account(struct upager *up, uint64_t before)
{
	upg_pool_own(up, before);
	uint64_t now = up->pool.bytes;
	if (now > before)
		upg_resident_add(up, now - before);
	else if (now < before)
		upg_resident_sub(up, before - now);
}

void upg_pooled_free(struct upager *up, struct upg_pte *p)
{
	uint64_t before = up->pool.bytes;
	upg_pool_free(&up->pool, p->frame);
	p->frame = UPG_NOFRAME;
	upg_pool_account(up, before);
}
