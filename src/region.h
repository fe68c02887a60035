/* SPDX-License-Identifier: MIT */
/* Regions: their page tables, their access streams, and the discard of their pages. */
#ifndef UPG_REGION_H
#define UPG_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store.h"
#include "tier.h"

struct upager;

#define UPG_PTES_PER_CHUNK 256u  /* ptes covered by one bit of region->touched */

enum upg_pstate {
	PG_NONE = 0,   /* not present; reads as zeros (never touched, discarded, or evicted all-zero) */
	PG_STORED,     /* not present; the data is in the store at slot */
	PG_FILLING,    /* zero fill in progress */
	PG_READING,    /* store read in progress */
	PG_RESIDENT,   /* present and in the policy */
	PG_EVICTING,   /* chosen by the evictor, being moved out and written */
	PG_POOLED,     /* not present; the data is in the compressed pool, handle in frame;
			* slot, when set, holds the same data in the store */
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
	PF_POOLREAD = 1 << 6,  /* READING from the pool: the handle is in evict_seq until the
				* read completes (a forked child puts it back in the pool) */
	PF_POOLCOPY = 1 << 6,  /* RESIDENT or EVICTING, with PF_WPCLEAN (PF_POOLREAD's bit:
				* only READING pages have that): read from the pool
				* write-protected and not written since, so the pool object
				* whose handle is in evict_seq still holds its data; it goes
				* back to the pool without being compressed again.  Whatever
				* may change the page, or ends PF_WPCLEAN, frees the object
				* first (upg_poolcopy_free()) */
	PF_SPILL = 1 << 7,     /* POOLED, being written on to the store by the evictor; any
				* change of state clears it, and the write is then dropped */
	PF_WPCLEAN = 1 << 7,   /* RESIDENT or EVICTING (PF_SPILL's bit: only POOLED pages have
				* that): went in write-protected from the store and not written
				* since, so the store copy at slot is its data; it leaves RAM
				* without being looked at (a write clears it: wp_fault()) */
};

/* One page of a region.  16 bytes; the array is reserved with MAP_NORESERVE
 * so untouched parts of a huge region cost nothing. */
struct upg_pte {
	uint32_t slot;      /* see upg_slot_store(); 0: no store copy */
	uint32_t frame;     /* frame index while it holds RAM; the pool handle while POOLED;
			     * UPG_NOFRAME otherwise */
	uint32_t evict_seq; /* eviction number of its last eviction, for ghost hits */
	uint8_t state;
	uint8_t flags;
	uint16_t zmask;     /* parts (1/16 of the page, at least 4 KiB) discarded while
			     * not resident: zeroed when the page is next copied in; on a
			     * resident page, parts discarded whose zap may not have
			     * landed: zeroed by an eviction that moves them out */
};

/* Whether p is in RAM with a pool copy (PF_POOLCOPY: the bit is
 * PF_POOLREAD's on a READING page). */
static inline bool upg_pte_poolcopy(const struct upg_pte *p)
{
	return (p->state == PG_RESIDENT || p->state == PG_EVICTING) && (p->flags & PF_POOLCOPY);
}

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

/* What a region of upager_map_file() maps (mfile.c).  Its pages with no
 * store copy (PG_NONE, slot 0) hold the file's bytes: a fault reads them
 * from it, a clean one leaves RAM without I/O; shared, a changed one is
 * written back in place. */
struct upg_mfile {
	int fd;             /* O_DIRECT, of its own */
	int tail_fd;        /* buffered: the last page's bytes, when the size is not a multiple of dio */
	uint64_t off;       /* file offset of the region's first byte */
	uint64_t size;      /* the file's size, as last seen (up->lock) */
	uint32_t dio;       /* O_DIRECT alignment of offsets and lengths */
	int mode;           /* UPAGER_MAP_SHARED, _PRIVATE or _RDONLY */
	uint64_t dirty_pass_ns;  /* when the evictor last wrote its changed pages */
	bool async_wanted;  /* upager_sync(UPAGER_ASYNC) asked for a pass */
	struct upg_tier tier;    /* its data path: loc is a byte offset of the file */
};

struct upg_region {
	struct upg_mfile *file; /* a file mapping; NULL: anonymous */
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
	/* Pages read back from the store that then left clean, and those
	 * written first: store reads install their pages write-protected only
	 * while few are written (wp_worth() in fault.c). */
	uint32_t wpc_clean, wpc_dirtied;
	bool dying;
};

struct upg_region *upg_region_find(struct upager *up, uintptr_t addr);
/* n of r's pages, or a caller that held r, no longer busy: an unmap
 * waiting for r to be idle is woken.  Lock held. */
void upg_region_unbusy(struct upager *up, struct upg_region *r, uint32_t n);
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

/* Count a page read back from the store: it left RAM clean, or was
 * written first.  The counts are halved now and then, so they follow the program's
 * phases.  Lock held. */
static inline void upg_wpc_count(struct upg_region *r, bool dirtied)
{
	if (dirtied)
		r->wpc_dirtied++;
	else
		r->wpc_clean++;
	if (r->wpc_clean + r->wpc_dirtied >= 4096) {
		r->wpc_clean /= 2;
		r->wpc_dirtied /= 2;
	}
}

/* The stream whose next fault is page, its window grown (doubled up to
 * max); or a recycled one with window init.  Lock held. */
struct upg_stream *upg_stream_match(struct upg_region *r, struct upg_stream *set, uint64_t page, uint32_t init,
				    uint32_t max);

/* Which 4 KiB pages of [addr, addr + len) hold data: vec[i] is 1 for a
 * page in RAM or in the kernel's swap, 0 for one zapped or never filled.
 * mincore() alone would call a page the kernel swapped out missing, and
 * such a page would be taken for zapped and its data lost.  0 or -errno. */
int upg_mapped(struct upager *up, uintptr_t addr, size_t len, unsigned char *vec);
/* A page discarded while mapped, its RAM bookkeeping already dropped:
 * NONE and PF_ZAPWAIT until the kernel's zap lands.  Lock held. */
void upg_zapwait(struct upager *up, struct upg_region *r, struct upg_pte *p);
/* Discard pages [first, first+n) of r: app DONTNEED or munmap.  Lock held. */
void upg_discard_range(struct upager *up, struct upg_region *r, uint64_t first, uint64_t n);
/* A discard covering only [start, end) of page: remember which parts read
 * as zeros when it is next copied in.  Lock held. */
void upg_discard_part(struct upager *up, struct upg_region *r, uint64_t page, uintptr_t start, uintptr_t end);

#endif
