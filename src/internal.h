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
#include "region.h"
#include "budget.h"
#include "policy.h"
#include "store.h"
#include "tier.h"
#include "redis.h"
#include "pool.h"
#include "seal.h"
#include "inject.h"
#include "domain.h"
#include "stall.h"
#include "forecast.h"
#include "share.h"
#include "timeline.h"

#define UPG_BLOCK 4096u
#define UPG_MAX_PAGE (2u << 20)  /* largest region page size */

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
	uint64_t pool_hits, pool_puts, pool_rejects, pool_writebacks, pool_drops, pool_full, pool_repools;
	uint64_t pool_skips;     /* dirty pages sent past the pool: in batches (pool_skip()) or runs (mark_runs()) */
	uint64_t refill_ns;  /* the time of the faults served by a store or pool read */
	uint64_t zero_fill_bytes;
	uint64_t takeout_calls, takeout_pages, takeout_alone;  /* the evictor's take-outs (atomic adds) */
	uint64_t locked_stays;  /* victims found locked with mlock(), left unwritten (atomic adds) */
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
struct io_uring;

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
	bool wipe_advised;  /* a region was advised MADV_WIPEONFORK (the preload's madvise()): fork.c reads smaps */

	pthread_mutex_t fork_lock;  /* held by the evictor per batch and across fork() */
	pthread_mutex_t uffd_lock;
	pthread_mutex_t lock;
	pthread_cond_t evict_cond;  /* evictor sleeps here */
	pthread_cond_t idle_cond;   /* unmap waits here for busy pages */

	struct upg_store store;
	struct upg_tier store_tier; /* the store's data path: the file tier, Redis, or a test's */
	struct upg_redis *redis;    /* the Redis store, or NULL */
	struct upg_pool pool;       /* the compressed pool in front of the store (algo OFF: none) */
	struct upg_tier pool_tier;
	uint64_t pool_max;          /* most bytes the pool may hold now (up->share's figure, set
				     * under up->lock, read without it): beyond, the evictor spills */
	struct upg_share share;     /* the pool's share of the budget, moved by the refills (up->lock) */
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
	/* A forked child's pool, inherited copy-on-write and counted in the
	 * parent's share: in resident, not in dom, until the child first
	 * changes it (upg_pool_own()). */
	bool pool_unowned;
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
	 * move: read-only mappings); their REMOVE events are not discards.
	 * The zap of a range within one mapping raises one event, the whole
	 * range: a second such event (seen set) is the application's. */
	struct { uintptr_t start, end; bool seen; } own_zap[8];
	uint32_t nown_zap;

	struct upg_child *children;  /* live forked children (up->lock) */
	struct upg_child *fork_child; /* the record of the fork in progress */
	int fork_hup_wr;             /* its pipe's write end; in a child, its parent's */
	/* In a child with PF_SHARED pages: a pidfd of the parent that counts
	 * them.  When it ends they are ours alone (upg_shared_charge_all()). */
	int share_pidfd;
	uint64_t share_look_ns;      /* when the evictor last looked at it */
	uint64_t unshared_look_ns;   /* when it last looked for PF_SHARED pages the parent let go */

	/* upager_sync() hands the evictor one request at a time (mfile.c):
	 * it writes the range's changed pages of a shared file mapping. */
	pthread_mutex_t sync_lock;   /* serialises the callers */
	struct upg_sync_req {
		struct upg_region *r;
		uint64_t first, end;     /* pages */
		int res;                 /* 0, or -EIO: a write failed */
		bool done;
	} *sync_req;                 /* up->lock */
	uint64_t file_dirty_age_ns;  /* a shared file page's changes reach the file within this */

	struct upg_counters c;
	struct upg_hist hist;
	struct upg_stall stall;       /* up->lock */
	struct upg_forecast fc;       /* up->lock */
	uint64_t knee, knee_for;      /* the forecast's knee, and a key of the figures it is for */
	struct upg_timeline tl;       /* up->lock */
	uint64_t threads_look_ns;     /* when the evictor last counted the program's threads */
	char comm[16];                /* its name, for upager-top (evictor only; "": not read yet) */
};

/* The seal (checksums, keys) of the store that holds slot. */
static inline struct upg_seal *upg_slot_seal(struct upager *up, uint32_t slot)
{
	uint32_t k = upg_slot_store(slot);
	return k ? &up->anc[k - 1].seal : &up->seal;
}

/* The preload library's runtime, which upager_open() hands to a program
 * that also uses the API (runtime.c). */
extern struct upager *upg_shared_runtime;

/* runtime.c */
/* Set by a unit test before upager_open(): the store's data goes through
 * this tier instead of the file (the block bitmap stays the store's). */
extern struct upg_tier upg_store_tier_test;
/* Set by a unit test: called by the evictor with the range it is about to
 * zap in place (before: true) and has just zapped (false), while the range
 * is recorded as its own (up->own_zap), so that the test can discard it
 * there as the application. */
extern void (*upg_own_zap_test)(uintptr_t start, size_t len, bool before);
/* upager_map() with an address: hint as mmap() takes it (0: anywhere), and
 * mflags 0, MAP_FIXED or MAP_FIXED_NOREPLACE.  Only for 4 KiB pages.  For
 * the preload layer, which serves a program's own mmap() calls. */
int upg_map_at(struct upager *up, uintptr_t hint, size_t len, uint32_t psize, int mflags, void **addr);
/* The same for a file mapping (f, owned by the region from then on;
 * prot as mmap()'s). */
int upg_map_region(struct upager *up, uintptr_t hint, size_t len, uint32_t psize, int mflags, int prot,
		   struct upg_mfile *f, void **addr);
/* Make up's locks and conditions anew (a forked child has the parent's,
 * perhaps held by threads it does not have). */
void upg_sync_init(struct upager *up);

/* fork.c */
void upg_fork_register(struct upager *up);
void upg_fork_unregister(struct upager *up);
/* The first handler thread polls each child's hang-up pipe on its ring:
 * arm a poll on ring for every child not yet polled (a fork kicks the
 * handlers).  Takes up->lock. */
void upg_children_arm(struct upager *up, struct io_uring *ring);
/* Bit 0 of a completion's tag: the poll armed for a child, which has gone
 * (its pipe hung up); the rest of the tag is its struct upg_child. */
#define UPG_TAG_CHILD 1ULL
/* A child's poll completed with res: forget the child and let its blocks
 * go.  Takes up->lock. */
void upg_child_gone(struct upager *up, uint64_t tag, int res);
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

/* mfile.c */
/* Write the changed pages of [first, end) of r (a shared file mapping) to
 * the file through the evictor, and wait.  0 or -EIO.  No lock held. */
int upg_mfile_write_range(struct upager *up, struct upg_region *r, uint64_t first, uint64_t end);
/* The same, called with up->lock held (returned with it held; dropped
 * meanwhile, r held busy), and fdatasync() after when durable; the
 * failure logged.  0 or -EIO. */
int upg_mfile_flush(struct upager *up, struct upg_region *r, uint64_t first, uint64_t end, bool durable);
/* Write every shared file mapping's changed pages and fdatasync() them:
 * upager_close().  0 or -EIO. */
int upg_mfile_sync_all(struct upager *up);
void upg_mfile_free(struct upg_mfile *f);
/* Is the byte at page's start past the end of r's file?  Looks at the
 * file's size again first when it seems so.  Lock held. */
bool upg_mfile_past_eof(struct upg_region *r, uint64_t page);

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
