/* SPDX-License-Identifier: MIT */
/*
 * The backing store: a file or block device opened with O_DIRECT, so that
 * swapped-out pages never sit in the page cache (which would be RAM the
 * budget does not see), plus a bitmap of 4 KiB blocks.
 *
 * The file grows on demand, in steps, up to max_blocks.  Allocation does no
 * I/O; growth (fallocate) is a separate call so callers can make it without
 * holding their locks.  Not thread-safe: the runtime serialises calls.
 */
#ifndef UPG_STORE_H
#define UPG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct upg_store {
	int fd;
	bool is_blockdev;
	bool is_remote;         /* no file: the blocks are on a Redis store (redis.c) */
	bool grow_failed;       /* last growth attempt hit ENOSPC or the maximum */
	uint64_t max_blocks;    /* configured maximum */
	uint64_t size_blocks;   /* blocks the file holds now */
	uint64_t used_blocks;
	uint64_t nfrozen;       /* blocks frozen (with repeats); 0: nothing to check */
	uint64_t cursor;        /* next-fit position */
	uint64_t *bitmap;       /* 1: block in use; reserved for max_blocks */
	uint64_t *frozen;       /* 1: a forked child still reads this block */
	uint64_t *zombie;       /* 1: freed while frozen; really freed at thaw */
	size_t bitmap_len;
	char where[400];        /* for messages */
};

/* Open per the config rules (see upager_config.store_path). */
int upg_store_open(struct upg_store *s, const char *path, uint64_t max_bytes, char *err, size_t errlen);
void upg_store_close(struct upg_store *s);
/* Let go of the tables but not the file: it stays open (s->fd is someone
 * else's now: a forked child's ancestor store, or a closing parent's whose
 * children still read it) and untruncated. */
void upg_store_forget(struct upg_store *s);

/* Allocate n contiguous blocks starting at a multiple of align, below the
 * current size.  -ENOSPC when there is no such run now. */
int upg_store_alloc(struct upg_store *s, uint32_t n, uint32_t align, uint64_t *first);
void upg_store_free(struct upg_store *s, uint64_t first, uint32_t n);
/* Forked children read blocks the parent has since rewritten or freed, so
 * the parent must neither overwrite nor reuse them until the child is done:
 * freeze marks them, upg_store_free() of a frozen block only marks it a
 * zombie.  When a child is done: unfreeze everything, freeze again what
 * live children still read, then reap the zombies that are no longer
 * frozen (those still frozen stay zombies: freeing them before would let a
 * new page overwrite a live child's data). */
void upg_store_freeze(struct upg_store *s, uint64_t first, uint32_t n);
bool upg_store_is_frozen(const struct upg_store *s, uint64_t first, uint32_t n);
void upg_store_unfreeze(struct upg_store *s);
void upg_store_reap(struct upg_store *s);

/* Can the store hold want more blocks without growing?  */
bool upg_store_has_room(const struct upg_store *s, uint64_t want);
/* Grow the file so that at least want more blocks are free; 0, -ENOSPC (disk
 * full or at the maximum) or another -errno.  Call without runtime locks: it
 * may do I/O.  It only changes size_blocks, which callers read under their
 * lock after it returns. */
int upg_store_grow(struct upg_store *s, uint64_t want, uint64_t *new_size_blocks);

#endif
