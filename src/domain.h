/* SPDX-License-Identifier: MIT */
/*
 * A paging domain: the processes that share one RAM budget.
 *
 * upager-run makes one for the tree it starts (a small file in /dev/shm,
 * named in UPAGER_TREE), and every process of the tree that opens a
 * runtime joins it: the budget is the tree's, and each process's resident
 * pages count in one total kept in shared memory.  A runtime opened
 * outside a tree has a domain of its own, so the code paths are the same.
 *
 * Who gives pages up when the tree is over its budget: the member that
 * brought a page in least recently (it has been idle longest, so its pages
 * are the tree's coldest); after UPG_DOMAIN_WAIT_NS over the budget with no
 * relief, every member evicts its own coldest pages, so a stopped or
 * unresponsive member cannot hold the others up.  A member killed without
 * leaving (SIGKILL) is noticed by the others, and its pages are no longer
 * counted: the kernel freed them.
 *
 * Every function here is lock-free and safe to call with up->lock held.
 */
#ifndef UPG_DOMAIN_H
#define UPG_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UPG_DOMAIN_SLOTS 256
#define UPG_DOMAIN_WAIT_NS (20ULL * 1000 * 1000)

/* A member's figures for upager-top, published by its evictor about every
 * 100 ms: seq is odd while they are written (a reader retries). */
struct upg_domain_live {
	uint32_t seq;
	uint32_t threads;         /* the program's threads (upager's own not counted) */
	char comm[16];            /* the program's name, /proc/self/comm */
	uint64_t at_ns;           /* CLOCK_MONOTONIC of the last publication */
	uint64_t wall_ns, stall_some_ns, stall_all_ns;
	uint64_t zero_fills, store_reads, pool_hits, refaults, evictions, writebacks;
	uint64_t bytes_in, bytes_out, pool_bytes, store_bytes;
};

struct upg_domain_slot {
	int32_t pid;          /* 0: free */
	int32_t shares_with;  /* a parent whose count holds pages this member shares with it: its slot
	                       * stays counted after it exits, until this member counts them (fork.c) */
	uint64_t resident;    /* bytes */
	uint64_t peak;
	uint64_t last_in_ns;  /* CLOCK_MONOTONIC when it last brought a page in */
	uint64_t image;       /* which program image of pid joined: one that exec'd leaves its slot */
	struct upg_domain_live live;
};

struct upg_domain_area {
	uint64_t magic;
	uint64_t budget;      /* bytes, the tree's */
	uint64_t total;       /* bytes resident in all members */
	uint64_t peak;        /* the highest total, at every change */
	uint32_t joined;      /* processes that ever joined */
	uint32_t pad;
	struct upg_domain_slot slot[UPG_DOMAIN_SLOTS];
};

struct upg_domain {
	struct upg_domain_area *a;
	size_t len;
	struct upg_domain_slot *me;
	bool shared;
};

/* Make the shared file for a tree at path (upager-run).  0 or -errno, with
 * a message. */
int upg_domain_create(const char *path, uint64_t budget, char *err, size_t errlen);
/* Map a tree's file (path) to read it (upager-run), or NULL. */
struct upg_domain_area *upg_domain_map(const char *path, size_t *len);

/* Join the tree at path, or, with path NULL or empty, make a domain of
 * one with budget.  0; 1 when path no longer exists, 2 when this process
 * may not open it (another user's): a domain of one was made; or -errno
 * with a message that says what to change. */
/* May this process not open the tree's file at path (it runs as another
 * user than the upager-run that made it)? */
bool upg_domain_barred(const char *path);
int upg_domain_join(struct upg_domain *d, const char *path, uint64_t budget, char *err, size_t errlen);
void upg_domain_leave(struct upg_domain *d);
/* Publish this member's figures (only a shared domain's are seen). */
void upg_domain_publish(struct upg_domain *d, const struct upg_domain_live *live);
/* Read slot's figures consistently into out; false when it has none. */
bool upg_domain_read_live(const struct upg_domain_slot *slot, struct upg_domain_live *out);
/* This member shares pages with pid (its parent, 0: no more), counted in
 * pid's slot: while pid's slot names it, the slot is not reaped. */
static inline void upg_domain_shares_with(struct upg_domain *d, int32_t pid)
{
	__atomic_store_n(&d->me->shares_with, pid, __ATOMIC_RELEASE);
}
/* Take the pages of members that have exited (killed, or zombies whose
 * parent has not waited yet) out of the tree's total. */
void upg_domain_reap(struct upg_domain *d, uint64_t now_ns);

static inline uint64_t upg_domain_budget(const struct upg_domain *d)
{
	return d->a->budget;
}

static inline uint64_t upg_domain_total(const struct upg_domain *d)
{
	return __atomic_load_n(&d->a->total, __ATOMIC_RELAXED);
}

/* Reserve room for up to n pages of psize bytes in the tree's total, all
 * of them when force (eviction cannot make room).  Returns how many.  The
 * check and the reservation are one step, so members admitting at once
 * cannot together pass the budget. */
uint64_t upg_domain_reserve(struct upg_domain *d, uint64_t n, uint32_t psize, bool force);
/* Give back reserved bytes that were not used. */
void upg_domain_unreserve(struct upg_domain *d, uint64_t bytes);
/* This member's resident memory grew (bytes > 0, at now_ns, of which
 * reserved were already counted by upg_domain_reserve()) or shrank. */
void upg_domain_add(struct upg_domain *d, int64_t bytes, uint64_t reserved, uint64_t now_ns);
/* Should this member give pages up now, the tree being over its budget
 * since over_since_ns? */
bool upg_domain_should_evict(struct upg_domain *d, uint64_t now_ns, uint64_t over_since_ns);

#endif
