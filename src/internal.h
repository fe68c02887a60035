/* SPDX-License-Identifier: MIT */
/*
 * Internal state of a runtime.
 *
 * Threads:
 *   - handler threads (1..16) read the userfaultfd and own the store reads;
 *   - one evictor thread chooses victims and writes them back;
 *   - application threads call the API and fault.
 *
 * Lock order: up->uffd_lock, then up->lock.  Nothing sleeps on I/O, reads
 * the userfaultfd, or calls madvise() while holding up->lock, and nothing
 * touches managed memory under it: the libraries are linked with -z now,
 * because a lazy symbol look-up reads the dynamic loader's data, which the
 * preload library's malloc put in the paged heap.  uffd_lock
 * serialises reading uffd messages with UFFDIO_COPY, so that a REMOVE event
 * (an application discard) is never read between a handler's decision to
 * copy a page in and the copy itself (see fault.c).
 *
 * Ownership of a page: a page in a transitional state (FILLING, READING,
 * EVICTING) belongs to the thread that put it there; other threads only set
 * flags on it (DISCARDED, DEFERRED) under up->lock, and the owner acts on
 * those flags when it finishes.
 */
#ifndef UPG_INTERNAL_H
#define UPG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "upager.h"
#include "base.h"
#include "budget.h"
#include "policy.h"
#include "store.h"
#include "seal.h"
#include "inject.h"
#include "domain.h"

#define UPG_BLOCK 4096u
#define UPG_MAX_PAGE (2u << 20)  /* largest region page size */
#define UPG_PTES_PER_CHUNK 256u  /* ptes covered by one bit of region->touched */

enum upg_pstate {
	PG_NONE = 0,   /* not present; reads as zeros (never touched, discarded, or evicted all-zero) */
	PG_STORED,     /* not present; the data is in the store at slot */
	PG_FILLING,    /* zero fill in progress */
	PG_READING,    /* store read in progress */
	PG_RESIDENT,   /* present and in the policy */
	PG_EVICTING,   /* chosen by the evictor, being moved out and written */
};

enum upg_pflag {
	PF_DIRTY = 1 << 0,     /* the store copy, if any, is stale; without it a page
				* with a slot is compared with the store's digests */
	PF_ZAPWAIT = 1 << 1,   /* NONE after a discard of a page that was mapped: the
				* kernel zaps it only after the REMOVE event is read,
				* so its old bytes may still be mapped; nothing fills
				* it until none are (zero_fill()) */
	PF_DISCARDED = 1 << 2, /* discarded while in a transitional state */
	PF_DEFERRED = 1 << 3,  /* a fault on it waits in the retry queue */
	PF_POISONED = 1 << 4,  /* STORED but unreadable: poisoned, an access raises SIGBUS */
	PF_SHARED = 1 << 5,    /* RESIDENT, inherited at fork and still shared with the parent,
				* which is charged for it: not counted in the domain until this
				* process writes it (a write-protect fault) or lets it go */
};

/* One page of a region.  16 bytes; the array is reserved with MAP_NORESERVE
 * so untouched parts of a huge region cost nothing. */
/*
 * A slot names a page's store copy: its first block + 1 in the low 29
 * bits, and in the top 3 which store holds it: 0 this process's own, k an
 * ancestor's (up->anc[k - 1]), read-only.  A forked child takes its own
 * paging over (fork.c): it writes to a store of its own and reads what it
 * inherited from its parent's, whose blocks the parent keeps frozen while
 * the child lives.  0: no store copy.
 */
#define UPG_SLOT_STORE_SHIFT 29
#define UPG_ANCESTORS 7
static inline uint32_t upg_slot_store(uint32_t slot)
{
	return slot >> UPG_SLOT_STORE_SHIFT;
}
static inline uint64_t upg_slot_block(uint32_t slot)
{
	return (slot & ((1u << UPG_SLOT_STORE_SHIFT) - 1)) - 1;
}

struct upg_pte {
	uint32_t slot;      /* see upg_slot_store(); 0: no store copy */
	uint32_t frame;     /* frame index while it holds RAM; UPG_NOFRAME otherwise */
	uint32_t evict_seq; /* eviction number of its last eviction, for ghost hits */
	uint8_t state;
	uint8_t flags;
	uint16_t zmask;     /* parts (1/16 of the page, at least 4 KiB) discarded while
			     * not resident: zeroed when the page is next copied in; on a
			     * resident page, parts discarded whose zap may not have
			     * landed: zeroed by an eviction that moves them out */
};

/* Bytes covered by one zmask bit of a page of psize. */
static inline uint32_t upg_zchunk(uint32_t psize)
{
	return psize / 16 > 4096 ? psize / 16 : 4096;
}

/* Zero the parts of page (psize bytes) whose bits are set in zmask. */
static inline void upg_zero_parts(char *page, uint32_t psize, uint16_t zmask)
{
	uint32_t chunk = upg_zchunk(psize);
	for (uint32_t c = 0; c < 16 && c * chunk < psize; c++)
		if (zmask >> c & 1)
			memset(page + (size_t)c * chunk, 0, chunk);
}

/* A sequential access stream seen through faults.  Several per region, so
 * threads scanning different parts do not break each other's detection. */
#define UPG_STREAMS 8
struct upg_stream {
	uint64_t next;  /* page the stream would fault on next */
	uint32_t win;   /* pages to bring in on its next fault */
	uint32_t stamp; /* last use, for replacement */
};

struct upg_region {
	uintptr_t base;
	size_t len;
	uint64_t npages;
	uint32_t psize;
	uint32_t pshift;
	uint32_t blocks;        /* store blocks per page */
	struct upg_pte *pte;
	size_t pte_len;         /* bytes mapped for pte */
	uint64_t *touched;      /* one bit per UPG_PTES_PER_CHUNK ptes ever used */
	size_t touched_len;
	int advice;             /* enum upager_advice: NORMAL, SEQUENTIAL or RANDOM */
	struct upg_stream ra[UPG_STREAMS];  /* store reads */
	struct upg_stream fa[UPG_STREAMS];  /* first touches */
	uint32_t stream_clock;
	uint32_t busy;          /* pages of this region in FILLING or READING */
	bool dying;
};

/* A fault that could not be served at once (no budget, or the page was being
 * evicted), or a prefetch request. */
struct upg_retry {
	struct upg_region *reg;
	uint64_t page;
	uint64_t t0;       /* when the fault was first seen, ns */
	int tid;           /* faulting thread, 0 when unknown */
	uint8_t write;
	uint8_t wp;        /* a write-protect fault */
	uint8_t prefetch;  /* WILLNEED: no thread waits */
};

struct upg_counters {
	uint64_t zero_fills, store_reads, readahead_pages, refaults, wp_faults;
	uint64_t evictions, writebacks, clean_drops, zero_skips, discards;
	uint64_t bytes_read, bytes_written, write_errors, store_full;
	uint64_t overshoot_peak, fault_ns_total, fault_count, read_errors, unframed;
	uint64_t integrity_errors, poisoned;
	uint64_t polls, poll_hits, poll_cpu_ns;  /* handlers' completion polling (atomic adds) */
};

#define UPG_HIST_BUCKETS 256
struct upg_hist {
	uint64_t b[UPG_HIST_BUCKETS];
	uint64_t max;
};
void upg_hist_add(struct upg_hist *h, uint64_t ns);
uint64_t upg_hist_pct(const struct upg_hist *h, double pct);

struct upg_handler;
struct upg_evictor;

/*
 * A forked child, as its parent keeps it (fork.c): the blocks of the
 * parent's own store that the child inherited (its snapshot), frozen while
 * the child lives, and the read end of a close-on-exec pipe whose write end
 * only the child (and what it forks) holds: it hangs up when they have all
 * exited or exec'd, and the first handler thread, which polls it, then
 * lets the blocks go.
 */
struct upg_snap {
	uint32_t slot;    /* first block + 1, in the parent's own store */
	uint32_t psize;
};

struct upg_child {
	int hup_fd;
	bool armed;             /* its pipe is polled (up->lock) */
	struct upg_snap *snap;
	uint64_t nsnap;
	size_t snap_len;
	struct upg_child *next;
};

struct upager {
	struct upager_config cfg;
	char *store_path;       /* owned copies of cfg strings */
	char *policy_name;
	int uffd;
	uint64_t features;
	bool have_move, have_poison;

	pthread_mutex_t fork_lock;  /* held by the evictor per batch and across fork() */
	pthread_mutex_t uffd_lock;
	pthread_mutex_t lock;
	pthread_cond_t evict_cond;  /* evictor sleeps here */
	pthread_cond_t idle_cond;   /* unmap waits here for busy pages */

	struct upg_store store;
	struct upg_seal seal;       /* checksums or encryption of stored blocks */
	struct upg_ancestor {       /* the stores of forked ancestors, read-only */
		int fd;
		struct upg_seal seal;
	} anc[UPG_ANCESTORS];
	uint32_t nanc;

	struct upg_region **regions;  /* sorted by base */
	uint32_t nregions, regions_cap;

	struct upg_frame *frames;
	uint32_t nframes;
	uint32_t *free_frames;
	uint32_t nfree;
	const struct upg_policy_ops *pol_ops;
	struct upg_policy *pol;

	uint64_t budget, high, low;  /* the domain's: a process tree shares them */
	uint64_t resident, resident_peak;  /* this process's */
	struct upg_domain dom;      /* the processes that share the budget */
	uint64_t admitted;          /* bytes reserved in dom by upg_budget_admit(), not yet added */
	uint64_t uncharged;         /* bytes of PF_SHARED pages: in resident, not in dom */
	uint32_t evict_seq;
	bool evict_stuck;       /* the evictor could not free anything: admit over budget */
	bool fork_admit;        /* a fork() is under way, the evictor held off: admit over budget */
	bool evict_wanted;
	bool stopping;

	struct upg_retry *retry;
	uint32_t retry_head, retry_count, retry_cap;

	struct upg_handler *handlers;
	uint32_t nhandlers;
	struct upg_evictor *ev;
	int evictor_tid;        /* its faults on pages it is evicting are served at once */
	int cur_tid;            /* thread of the fault being handled (up->lock held) */
	uintptr_t scratch;      /* evictor's scratch range, registered with the uffd */
	size_t scratch_len;

	char *zero_buf;
	size_t zero_len;
	int pagemap_fd;         /* /proc/self/pagemap, for upg_mapped(); -1: mincore() */

	/* Ranges the evictor itself is zapping with madvise (pages it could not
	 * move: read-only mappings); their REMOVE events are not discards. */
	struct { uintptr_t start, end; } own_zap[8];
	uint32_t nown_zap;

	struct upg_child *children;  /* live forked children (up->lock) */
	struct upg_child *fork_child; /* the record of the fork in progress */
	int fork_hup_wr;             /* its pipe's write end; in a child, its parent's */

	struct upg_counters c;
	struct upg_hist hist;
};

/* The preload library's runtime, which upager_open() hands to a program
 * that also uses the API (runtime.c). */
extern struct upager *upg_shared_runtime;

/* runtime.c */
struct upg_region *upg_region_find(struct upager *up, uintptr_t addr);
static inline struct upg_pte *upg_pte_get(struct upg_region *r, uint64_t page)
{
	uint64_t chunk = page / UPG_PTES_PER_CHUNK;
	if (!(r->touched[chunk / 64] & (1ULL << (chunk % 64))))
		r->touched[chunk / 64] |= 1ULL << (chunk % 64);
	return &r->pte[page];
}
/* Read-only look-up that does not mark the chunk touched: NULL when the
 * chunk was never used (every pte there is PG_NONE with no slot). */
static inline struct upg_pte *upg_pte_peek(struct upg_region *r, uint64_t page)
{
	uint64_t chunk = page / UPG_PTES_PER_CHUNK;
	if (!(r->touched[chunk / 64] & (1ULL << (chunk % 64))))
		return NULL;
	return &r->pte[page];
}
/* The first page at or after pg whose chunk was ever used, or r->npages:
 * walks of a huge region skip what was never touched a word (64 chunks)
 * at a time. */
static inline uint64_t upg_pte_next(const struct upg_region *r, uint64_t pg)
{
	uint64_t chunk = pg / UPG_PTES_PER_CHUNK, nchunks = (r->npages + UPG_PTES_PER_CHUNK - 1) / UPG_PTES_PER_CHUNK;
	while (chunk < nchunks) {
		uint64_t w = r->touched[chunk / 64] >> (chunk % 64);
		if (w) {
			chunk += (uint64_t)__builtin_ctzll(w);
			uint64_t first = chunk * UPG_PTES_PER_CHUNK;
			return first > pg ? first : pg;
		}
		chunk = (chunk / 64 + 1) * 64;
	}
	return r->npages;
}
/* upager_map() with an address: hint as mmap() takes it (0: anywhere), and
 * mflags 0, MAP_FIXED or MAP_FIXED_NOREPLACE.  Only for 4 KiB pages.  For
 * the preload layer, which serves a program's own mmap() calls. */
int upg_map_at(struct upager *up, uintptr_t hint, size_t len, uint32_t psize, int mflags, void **addr);
/* Which 4 KiB pages of [addr, addr + len) hold data: vec[i] is 1 for a
 * page in RAM or in the kernel's swap, 0 for one zapped or never filled.
 * mincore() alone would call a page the kernel swapped out missing, and
 * such a page would be taken for zapped and its data lost.  0 or -errno. */
int upg_mapped(struct upager *up, uintptr_t addr, size_t len, unsigned char *vec);

/* The stream whose next fault is page, its window grown (doubled up to
 * max); or a recycled one with window init.  Lock held. */
struct upg_stream *upg_stream_match(struct upg_region *r, struct upg_stream *set, uint64_t page, uint32_t init,
				    uint32_t max);

/* The seal (checksums, keys) of the store that holds slot. */
static inline struct upg_seal *upg_slot_seal(struct upager *up, uint32_t slot)
{
	uint32_t k = upg_slot_store(slot);
	return k ? &up->anc[k - 1].seal : &up->seal;
}
/* A page discarded while mapped, its RAM bookkeeping already dropped:
 * NONE and PF_ZAPWAIT until the kernel's zap lands.  Lock held. */
void upg_zapwait(struct upager *up, struct upg_region *r, struct upg_pte *p);
/* Discard pages [first, first+n) of r: app DONTNEED or munmap.  Lock held. */
void upg_discard_range(struct upager *up, struct upg_region *r, uint64_t first, uint64_t n);
/* A discard covering only [start, end) of page: remember which parts read
 * as zeros when it is next copied in.  Lock held. */
void upg_discard_part(struct upager *up, struct upg_region *r, uint64_t page, uintptr_t start, uintptr_t end);
/* Queue a fault for the handler threads.  Lock held.  false when full. */
bool upg_retry_push(struct upager *up, const struct upg_retry *rt);
void upg_kick_handlers(struct upager *up);
/* Return once every userfaultfd message read so far has been handled:
 * handlers hold uffd_lock from reading a batch to the end of handling it. */
static inline void upg_events_barrier(struct upager *up)
{
	pthread_mutex_lock(&up->uffd_lock);
	pthread_mutex_unlock(&up->uffd_lock);
}

/* fork.c */
void upg_fork_register(struct upager *up);
void upg_fork_unregister(struct upager *up);
/* A child is gone: unfreeze the store and freeze again what the live
 * children still read.  Lock held. */
void upg_children_refreeze(struct upager *up);
/* Forget every child record (upager_close(), after the handlers). */
void upg_children_free(struct upager *up);

/* fault.c */
int upg_handlers_start(struct upager *up, char *err, size_t errlen);
/* Call after upg_evictor_stop(): each madvise() the evictor makes waits
 * until a handler has read the event it raises. */
void upg_handlers_stop(struct upager *up);
/* In a forked child: release the parent's handlers' resources (there are
 * no threads to stop). */
void upg_handlers_forget(struct upager *up);

/* evict.c */
int upg_evictor_start(struct upager *up, char *err, size_t errlen);
void upg_evictor_stop(struct upager *up);
/* In a forked child, after up->uffd is closed: release the parent's
 * evictor's resources (there is no thread to stop). */
void upg_evictor_forget(struct upager *up);
/* Is [start, end) inside the evictor's scratch range? */
static inline bool upg_is_scratch(const struct upager *up, uintptr_t start, uintptr_t end)
{
	return start >= up->scratch && end <= up->scratch + up->scratch_len;
}

#endif
