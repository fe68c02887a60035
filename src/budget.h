/* SPDX-License-Identifier: MIT */
/* Frames, the budget and the resident count of a runtime, and the release
 * of store slots. */
#ifndef UPG_BUDGET_H
#define UPG_BUDGET_H

#include <stdint.h>

struct upager;
struct upg_region;
struct upg_pte;

#define UPG_NOFRAME UINT32_MAX

/* A resident page: frames are the policy's unit. */
struct upg_frame {
	struct upg_region *reg;
	uint64_t page;
};

/* Frames and budget, with up->lock held.  Frames run out only far over
 * the budget (the store full or failing): the page is then resident without
 * one, outside the policy, and leaves RAM only when discarded. */
void upg_frame_put(struct upager *up, uint32_t f);
void upg_frame_take_or_none(struct upager *up, struct upg_region *r, uint64_t page, struct upg_pte *p);
void upg_frame_release(struct upager *up, struct upg_pte *p);
/* May n pages of psize bytes be admitted now?  Returns how many (0..n),
 * reserved in the domain until upg_resident_add() takes them in;
 * upg_budget_release() gives back what a fault that could not go on did
 * not take. */
uint64_t upg_budget_admit(struct upager *up, uint64_t n, uint32_t psize);
void upg_budget_release(struct upager *up);
void upg_resident_add(struct upager *up, uint64_t bytes);
void upg_resident_sub(struct upager *up, uint64_t bytes);
/* Page p (bytes) leaves RAM: upg_resident_sub(), but a PF_SHARED page was
 * never in the domain.  Lock held. */
void upg_resident_drop(struct upager *up, struct upg_pte *p, uint64_t bytes);
/* As upg_resident_drop(), but the bytes to take off the domain are
 * returned, for upg_resident_settle().  Lock held. */
uint64_t upg_resident_drop_later(struct upager *up, struct upg_pte *p, uint64_t bytes);
/* An eviction batch's pages left (dropped bytes, from
 * upg_resident_drop_later()) and the pool changed by pool_delta: one step
 * in the domain, so that no other member takes the room the pages left
 * before the pool's growth is counted.  Lock held. */
void upg_resident_settle(struct upager *up, uint64_t dropped, int64_t pool_delta);
/* A PF_SHARED page becomes this process's own (it wrote it): charge it.
 * Lock held; room admitted by upg_budget_admit() first. */
void upg_resident_charge(struct upager *up, struct upg_pte *p, uint64_t bytes);
/* Bytes in resident that the domain does not count: PF_SHARED pages and
 * an inherited pool not yet owned (both counted in the parent). */
uint64_t upg_uncounted(const struct upager *up);
/* A forked child's inherited pool (bytes now) becomes its own, counted in
 * the domain, at its first change.  Lock held. */
void upg_pool_own(struct upager *up, uint64_t bytes);
/* The parent that counted this child's PF_SHARED pages has exited: they
 * are this process's alone now, and all charged here.  Lock held. */
void upg_shared_charge_all(struct upager *up);
/* PF_SHARED pages of bytes (flags already cleared) are this process's
 * alone now (the parent evicted or rewrote its copies): charge them, no
 * room admitted, as they are in RAM already.  Lock held. */
void upg_shared_charge(struct upager *up, uint64_t bytes);
/* Drop a resident page's RAM bookkeeping (not the page itself): its frame
 * leaves the policy and is freed, and upg_resident_drop().  Lock held. */
void upg_resident_release(struct upager *up, struct upg_region *r, struct upg_pte *p);
/* The pool's RAM changed from before bytes to what it holds now: count
 * the difference in the resident set.  Lock held. */
void upg_pool_account(struct upager *up, uint64_t before);
/* A POOLED page leaves the pool (its object is freed; p->frame is
 * UPG_NOFRAME after).  Lock held. */
void upg_pooled_free(struct upager *up, struct upg_pte *p);
/* A page with PF_POOLCOPY may change, or has: its pool copy (handle in
 * evict_seq) is freed and the flag cleared.  Nothing if it has none.
 * Lock held. */
void upg_poolcopy_free(struct upager *up, struct upg_pte *p);
/* Free the page's store copy, if it has one.  Lock held. */
void upg_slot_free(struct upager *up, struct upg_region *r, struct upg_pte *p);
/* Free blocks blocks at slot when they are this process's own (an
 * ancestor's are its to free).  Lock held. */
void upg_slot_release(struct upager *up, uint32_t slot, uint32_t blocks);

#endif
