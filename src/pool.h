/* SPDX-License-Identifier: MIT */
/*
 * The compressed RAM pool: a tier in front of the store.
 *
 * Evicted 4 KiB pages that compress to at most UPG_POOL_MAX_CLEN bytes
 * (3/4 of a page) are kept here, compressed; a fault on one costs a
 * decompression and a copy instead of a store read.  Its RAM counts in the
 * budget (the runtime adds upg_pool.bytes to its resident count), and its
 * coldest objects are written on to the store by the evictor.
 *
 * Storage: objects of 16 + clen bytes, rounded up to one of up to 193 size
 * classes 16 bytes apart (to 3088; 64 or 256 apart in pools under 128 or
 * 16 MiB), packed in spans of 1 to 16 pages (4 in the smaller pools)
 * chosen per class to waste little at their tail; an object may straddle
 * a page boundary inside its span.  Spans come from one reserved arena;
 * a span that empties goes back, its RAM returned (MADV_DONTNEED: the
 * arena is not managed memory, so this raises no userfaultfd event).  A
 * handle is an object's offset in the arena / 16, plus 1 (0 is none).
 *
 * Each object's header holds an owner word and a page number for the
 * runtime (which page it is), its length, and a generation that tells a
 * live object from a dead one in the cold ring: handles in the order they
 * were put, touched (upg_pool_touch()) or moved by compaction, read oldest
 * first by upg_pool_coldest().
 *
 * Locking: the runtime's lock around everything but upg_pool_compress()
 * and upg_pool_load(); load reads only the object, which its owner keeps
 * alive meanwhile (the page is READING), and the arena's tables never move.
 */
#ifndef UPG_POOL_H
#define UPG_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier.h"

enum upg_pool_algo {
	UPG_POOL_OFF = 0,
	UPG_POOL_LZ4,
	UPG_POOL_ZSTD,
};

#define UPG_POOL_PAGE 4096u
#define UPG_POOL_MAX_CLEN 3072u  /* above this a page goes to the store */
#define UPG_POOL_NCLASS 193
#define UPG_POOL_BOUND 4200u     /* room compress() needs for its output */

struct upg_pool_span;

/* Entries of the cold ring a compaction looks at a push (see pool.c). */
#define UPG_POOL_RING_STEP 4u

struct upg_pool {
	int algo;
	int level;              /* zstd's */
	char *arena;
	size_t arena_len;
	uint32_t arena_pages, top;       /* pages reserved, pages ever handed to spans */
	struct upg_pool_span *spans;     /* by span id */
	uint32_t *page_span;             /* arena page -> span id */
	uint32_t *free_ids, nfree_ids;   /* span ids not in use */
	uint32_t nspan_ids;              /* ids ever used */
	uint32_t *free_runs[17];         /* first pages of empty spans, by page count */
	uint32_t nfree_runs[17];
	struct {
		uint16_t size, pages, nobj;
		uint32_t partial;            /* span id + 1 of a span with room; 0: none */
	} cls[UPG_POOL_NCLASS];
	uint64_t *ring;                  /* cold ring: handle << 12 | gen */
	uint64_t ring_head, ring_tail, ring_cap;
	/* While the ring is being compacted (a few entries a push, see
	 * ring_step() in pool.c): [ring_head, ring_cw) holds the live entries
	 * moved to the front so far, the oldest; [ring_cw, ring_cs) nothing;
	 * [ring_cs, ring_tail) the entries not looked at yet. */
	uint64_t ring_cw, ring_cs;
	bool ring_compacting;
	uint32_t gen;
	uint32_t step, nclass;           /* size classes: step, 2 step, ... (see upg_pool_init()) */
	void *cctx;                      /* zstd's compression context (the evictor's) */

	/* Statistics (lock held). */
	uint64_t bytes;                  /* RAM of live spans */
	uint64_t objects;                /* pages held */
	uint64_t payload;                /* bytes of their compressed data */
};

/* Parse "lz4", "zstd" or "off"; -EINVAL for anything else, -ENOTSUP for
 * zstd when this build has no libzstd. */
int upg_pool_algo_parse(const char *name, int *algo);
/* The accepted words, for messages. */
const char *upg_pool_algo_names(void);
const char *upg_pool_algo_name(int algo);

/* Reserve an arena of arena_max bytes (rounded to pages) for algo. */
int upg_pool_init(struct upg_pool *p, int algo, size_t arena_max, char *err, size_t errlen);
void upg_pool_fini(struct upg_pool *p);

/* Compress one page into out (UPG_POOL_BOUND bytes): its compressed
 * length, or 0 when that is above UPG_POOL_MAX_CLEN.  One thread (the
 * evictor) at a time; no lock. */
uint32_t upg_pool_compress(struct upg_pool *p, const void *page, void *out);
/* Keep clen bytes of compressed data for (owner, page): a handle, or 0
 * when the arena is full. */
uint32_t upg_pool_put(struct upg_pool *p, const void *cdata, uint32_t clen, uint64_t owner, uint64_t page);
/* The RAM a put of clen bytes would add now: 0, or a new span's. */
uint64_t upg_pool_put_cost(const struct upg_pool *p, uint32_t clen);
void upg_pool_free(struct upg_pool *p, uint32_t h);
/* Decompress object h into page (4 KiB): 0, or -EIO when it does not
 * decompress to exactly a page. */
int upg_pool_load(const struct upg_pool *p, uint32_t h, void *page);
/* Decompress clen bytes of an object's data (copied out) into page. */
int upg_pool_decompress(const struct upg_pool *p, const void *cdata, uint32_t clen, void *page);
/* Object h's compressed bytes and their length. */
const void *upg_pool_data(const struct upg_pool *p, uint32_t h, uint32_t *clen);
/* The oldest live object, taken off the cold ring (it stays in the
 * pool): true with its handle, owner and page; false when none is left. */
bool upg_pool_coldest(struct upg_pool *p, uint32_t *h, uint64_t *owner, uint64_t *page);
/* Make live object h the newest on the cold ring, as if just put (its
 * entry further back no longer counts).  Also puts back an entry that
 * upg_pool_coldest() took off: a dead entry taken for live (its 12-bit
 * generation come round again) then leaves no second live one behind. */
void upg_pool_touch(struct upg_pool *p, uint32_t h);

/*
 * Compaction: objects freed out of order leave spans part-filled, and a
 * span's RAM comes back only when it is empty.  For each class whose
 * part-filled spans have room for all the objects of the emptiest one,
 * move those there and free it.  relocate(arg, owner, page, from, to)
 * points the page's record at the object's new handle and returns true,
 * or returns false to leave the object (and its span) where it is.  At
 * most max_spans spans are emptied.  Returns the bytes given back.
 */
uint64_t upg_pool_compact(struct upg_pool *p, uint32_t max_spans,
			  bool (*relocate)(void *arg, uint64_t owner, uint64_t page, uint32_t from, uint32_t to),
			  void *arg);

/* Bytes of the pool's own tables in RAM now (not its objects). */
uint64_t upg_pool_metadata(const struct upg_pool *p);

/* The pool as a tier: loc is a handle; a read decompresses at once and
 * posts its completion.  It has no write: pages enter by upg_pool_put(),
 * at the place their compressed size finds. */
extern const struct upg_tier_ops upg_pool_tier;

#endif
