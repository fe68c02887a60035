/* SPDX-License-Identifier: MIT */
/* The compressed RAM pool (see pool.h). */
#include "pool.h"
#include "upg_config.h"

#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#ifdef UPG_HAVE_ZSTD
#include <zstd.h>
#endif

#define GRAIN 16u
#define PAGES_MAX 16u

struct hdr {
	uint64_t owner;  /* 0: a free object */
	uint64_t page : 40, clen : 12, gen : 12;
};
_Static_assert(sizeof(struct hdr) == GRAIN, "an object's header is one grain");

struct upg_pool_span {
	uint32_t first;       /* first arena page */
	uint16_t pages, cls;
	uint32_t live, bump;  /* objects in use; objects ever handed out (the rest never touched) */
	uint32_t free_head;   /* object index + 1 of a freed object; 0: none */
	uint32_t prev, next;  /* span id + 1 in the class's partial list */
};

int upg_pool_algo_parse(const char *name, int *algo)
{
	if (!name || !strcmp(name, "lz4")) {
		*algo = UPG_POOL_LZ4;
		return 0;
	}
	if (!strcmp(name, "off")) {
		*algo = UPG_POOL_OFF;
		return 0;
	}
	if (!strcmp(name, "zstd")) {
#ifdef UPG_HAVE_ZSTD
		*algo = UPG_POOL_ZSTD;
		return 0;
#else
		return -ENOTSUP;
#endif
	}
	return -EINVAL;
}

const char *upg_pool_algo_names(void)
{
	return "lz4, zstd or off";
}

const char *upg_pool_algo_name(int algo)
{
	return algo == UPG_POOL_LZ4 ? "lz4" : algo == UPG_POOL_ZSTD ? "zstd" : "off";
}

static void *reserve(size_t len)
{
	void *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return a == MAP_FAILED ? NULL : a;
}

static size_t round_page(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

int upg_pool_init(struct upg_pool *p, int algo, size_t arena_max, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->algo = algo;
	p->level = 1;
	if (algo == UPG_POOL_OFF)
		return 0;
	/* Handles are offset / 16 in 32 bits. */
	if (arena_max > (UINT64_C(1) << 36) - 4096)
		arena_max = (UINT64_C(1) << 36) - 4096;
	p->arena_pages = (uint32_t)(round_page(arena_max) / 4096);
	p->arena_len = (size_t)p->arena_pages * 4096;
	p->arena = reserve(p->arena_len);
	p->spans = reserve(round_page((size_t)p->arena_pages * sizeof *p->spans));
	p->page_span = reserve(round_page((size_t)p->arena_pages * sizeof *p->page_span));
	p->free_ids = reserve(round_page((size_t)p->arena_pages * sizeof *p->free_ids));
	for (uint32_t k = 1; k <= PAGES_MAX; k++)
		p->free_runs[k] = reserve(round_page((size_t)p->arena_pages / k * sizeof(uint32_t) + 4));
	/* At most one live object per 32 bytes of the pool's most, half the
	 * arena; a compaction starts past 1.5 times the live objects and
	 * 8192, and the ring's end may go a third beyond that before it ends
	 * (see ring_push()). */
	p->ring_cap = p->arena_len / 32 + 16384;
	p->ring = reserve(round_page(p->ring_cap * sizeof *p->ring));
	bool ok = p->arena && p->spans && p->page_span && p->free_ids && p->ring;
	for (uint32_t k = 1; k <= PAGES_MAX; k++)
		ok = ok && p->free_runs[k];
#ifdef UPG_HAVE_ZSTD
	if (ok && algo == UPG_POOL_ZSTD) {
		p->cctx = ZSTD_createCCtx();
		ok = p->cctx != NULL;
	}
#endif
	if (!ok) {
		upg_pool_fini(p);
		snprintf(err, errlen, "the compressed pool: cannot reserve its arena of %zu MiB: out of address space",
			 arena_max >> 20);
		return -ENOMEM;
	}
	/* Every class may hold a part-filled span: a small pool has fewer
	 * classes (coarser steps) and shorter spans, so that these stay a
	 * small part of it. */
	p->step = arena_max >= (UINT64_C(128) << 20) ? GRAIN : arena_max >= (UINT64_C(16) << 20) ? 4 * GRAIN : 16 * GRAIN;
	uint32_t pages_max = p->step == GRAIN ? PAGES_MAX : 4;
	p->nclass = (GRAIN + UPG_POOL_MAX_CLEN + p->step - 1) / p->step;
	/* Each class's span: the fewest pages whose tail wastes under 1.5%,
	 * or else the count that wastes least. */
	for (uint32_t c = 0; c < p->nclass; c++) {
		uint32_t size = p->step * (c + 1), best = 1;
		double best_waste = 2;
		for (uint32_t k = 1; k <= pages_max && best_waste >= 0.015; k++) {
			double waste = (double)((k * 4096) % size) / (k * 4096);
			if (waste < best_waste - 0.001) {
				best_waste = waste;
				best = k;
			}
		}
		p->cls[c].size = (uint16_t)size;
		p->cls[c].pages = (uint16_t)best;
		p->cls[c].nobj = (uint16_t)(best * 4096 / size);
	}
	return 0;
}

void upg_pool_fini(struct upg_pool *p)
{
	if (p->arena)
		munmap(p->arena, p->arena_len);
	if (p->spans)
		munmap(p->spans, round_page((size_t)p->arena_pages * sizeof *p->spans));
	if (p->page_span)
		munmap(p->page_span, round_page((size_t)p->arena_pages * sizeof *p->page_span));
	if (p->free_ids)
		munmap(p->free_ids, round_page((size_t)p->arena_pages * sizeof *p->free_ids));
	for (uint32_t k = 1; k <= PAGES_MAX; k++)
		if (p->free_runs[k])
			munmap(p->free_runs[k], round_page((size_t)p->arena_pages / k * sizeof(uint32_t) + 4));
	if (p->ring)
		munmap(p->ring, round_page(p->ring_cap * sizeof *p->ring));
#ifdef UPG_HAVE_ZSTD
	if (p->cctx)
		ZSTD_freeCCtx(p->cctx);
#endif
	int algo = p->algo;
	memset(p, 0, sizeof *p);
	p->algo = algo;
}

uint32_t upg_pool_compress(struct upg_pool *p, const void *page, void *out)
{
	int n = 0;
	if (p->algo == UPG_POOL_LZ4) {
		n = LZ4_compress_default(page, out, UPG_POOL_PAGE, (int)UPG_POOL_MAX_CLEN);
	}
#ifdef UPG_HAVE_ZSTD
	else if (p->algo == UPG_POOL_ZSTD) {
		size_t r = ZSTD_compressCCtx(p->cctx, out, UPG_POOL_BOUND, page, UPG_POOL_PAGE, p->level);
		n = ZSTD_isError(r) || r > UPG_POOL_MAX_CLEN ? 0 : (int)r;
	}
#endif
	return n > 0 ? (uint32_t)n : 0;
}

static struct hdr *obj_at(const struct upg_pool *p, uint64_t off)
{
	return (struct hdr *)(p->arena + off);
}

static uint64_t obj_off(const struct upg_pool *p, const struct upg_pool_span *s, uint32_t i)
{
	return (uint64_t)s->first * 4096 + (uint64_t)i * p->cls[s->cls].size;
}

static void partial_add(struct upg_pool *p, uint32_t id)
{
	struct upg_pool_span *s = &p->spans[id];
	uint32_t head = p->cls[s->cls].partial;
	s->prev = 0;
	s->next = head;
	if (head)
		p->spans[head - 1].prev = id + 1;
	p->cls[s->cls].partial = id + 1;
}

static void partial_del(struct upg_pool *p, uint32_t id)
{
	struct upg_pool_span *s = &p->spans[id];
	if (s->prev)
		p->spans[s->prev - 1].next = s->next;
	else
		p->cls[s->cls].partial = s->next;
	if (s->next)
		p->spans[s->next - 1].prev = s->prev;
	s->prev = s->next = 0;
}

/* A new empty span of class c, in the partial list; false when the arena
 * is full. */
static bool span_new(struct upg_pool *p, uint32_t c)
{
	uint32_t k = p->cls[c].pages, first;
	if (p->nfree_runs[k])
		first = p->free_runs[k][--p->nfree_runs[k]];
	else if (p->top + k <= p->arena_pages)
		first = p->top, p->top += k;
	else
		return false;
	uint32_t id = p->nfree_ids ? p->free_ids[--p->nfree_ids] : p->nspan_ids++;
	p->spans[id] = (struct upg_pool_span){ .first = first, .pages = (uint16_t)k, .cls = (uint16_t)c };
	for (uint32_t i = 0; i < k; i++)
		p->page_span[first + i] = id;
	partial_add(p, id);
	p->bytes += (uint64_t)k * 4096;
	return true;
}

static void span_release(struct upg_pool *p, uint32_t id)
{
	struct upg_pool_span *s = &p->spans[id];
	partial_del(p, id);
	madvise(p->arena + (size_t)s->first * 4096, (size_t)s->pages * 4096, MADV_DONTNEED);
	p->free_runs[s->pages][p->nfree_runs[s->pages]++] = s->first;
	p->free_ids[p->nfree_ids++] = id;
	p->bytes -= (uint64_t)s->pages * 4096;
}

/* Is cold-ring entry e a live object?  Its handle may point into a span
 * released since and reused by another class, where it falls inside some
 * object's data: only an object boundary of a live span counts, and then
 * the header's owner and generation. */
static bool entry_live(const struct upg_pool *p, uint64_t e)
{
	uint64_t off = ((e >> 12) - 1) * GRAIN, page = off / 4096;
	if (page >= p->top)
		return false;
	const struct upg_pool_span *s = &p->spans[p->page_span[page]];
	if (!s->live || page < s->first || page >= (uint64_t)s->first + s->pages)
		return false;
	uint64_t rel = off - (uint64_t)s->first * 4096, size = p->cls[s->cls].size;
	if (rel % size || rel / size >= s->bump)
		return false;
	const struct hdr *o = obj_at(p, off);
	return o->owner && o->gen == (e & 0xfff);
}

/*
 * Dead entries are dropped from the cold ring, and the live ones moved to
 * its front in order, once its end passes 1.5 times the live objects and
 * 8192, so that its touched memory stays within twice that.  Each entry
 * looked at costs a read of its object's header, a cache miss: a ring of
 * a million entries takes some 100 ms, too long to hold the runtime's
 * lock for at once.  So the compaction goes a few entries a push
 * (UPG_POOL_RING_STEP: faster than the pushes come, so it ends), and at
 * once only when the ring is full.  Meanwhile the oldest entries are
 * those already moved, then those not looked at yet (see struct
 * upg_pool).
 */
static void ring_start(struct upg_pool *p)
{
	p->ring_cs = p->ring_head;
	p->ring_head = p->ring_cw = 0;
	p->ring_compacting = true;
}

/* Look at up to n entries of a compaction under way; end it when none is
 * left. */
static void ring_step(struct upg_pool *p, uint64_t n)
{
	for (; n && p->ring_cs < p->ring_tail; n--) {
		uint64_t e = p->ring[p->ring_cs++];
		if (entry_live(p, e))
			p->ring[p->ring_cw++] = e;
	}
	if (p->ring_cs < p->ring_tail)
		return;
	size_t keep = round_page(p->ring_cw * sizeof *p->ring), had = round_page(p->ring_tail * sizeof *p->ring);
	if (had > keep)
		madvise((char *)p->ring + keep, had - keep, MADV_DONTNEED);
	p->ring_tail = p->ring_cw;
	p->ring_compacting = false;
}

static void ring_push(struct upg_pool *p, uint32_t h, uint32_t gen)
{
	if (!p->ring_compacting && p->ring_tail > p->objects + p->objects / 2 + 8192)
		ring_start(p);
	if (p->ring_compacting)
		ring_step(p, UPG_POOL_RING_STEP);
	if (p->ring_tail == p->ring_cap) {
		if (!p->ring_compacting)
			ring_start(p);
		ring_step(p, UINT64_MAX);  /* full: all at once */
	}
	if (p->ring_tail < p->ring_cap)
		p->ring[p->ring_tail++] = (uint64_t)h << 12 | gen;
}

/* Take a free object of class c from its part-filled spans (never a new
 * span); 0 when none has room. */
static uint32_t obj_take(struct upg_pool *p, uint32_t c)
{
	if (!p->cls[c].partial)
		return 0;
	uint32_t id = p->cls[c].partial - 1;
	struct upg_pool_span *s = &p->spans[id];
	uint32_t i;
	if (s->free_head) {
		i = s->free_head - 1;
		s->free_head = (uint32_t)obj_at(p, obj_off(p, s, i))->page;
	} else {
		i = s->bump++;
	}
	if (++s->live == p->cls[c].nobj)
		partial_del(p, id);
	return (uint32_t)(obj_off(p, s, i) / GRAIN) + 1;
}

uint64_t upg_pool_put_cost(const struct upg_pool *p, uint32_t clen)
{
	if (!clen || clen > UPG_POOL_MAX_CLEN)
		return 0;
	uint32_t c = (GRAIN + clen + p->step - 1) / p->step - 1;
	return p->cls[c].partial ? 0 : (uint64_t)p->cls[c].pages * 4096;
}

uint32_t upg_pool_put(struct upg_pool *p, const void *cdata, uint32_t clen, uint64_t owner, uint64_t page)
{
	if (!clen || clen > UPG_POOL_MAX_CLEN || !owner)
		return 0;
	uint32_t c = (GRAIN + clen + p->step - 1) / p->step - 1;
	if (!p->cls[c].partial && !span_new(p, c))
		return 0;
	uint32_t h = obj_take(p, c);
	struct hdr *o = obj_at(p, (uint64_t)(h - 1) * GRAIN);
	p->gen = (p->gen + 1) & 0xfff;
	*o = (struct hdr){ .owner = owner, .page = page, .clen = clen, .gen = p->gen };
	memcpy(o + 1, cdata, clen);
	p->objects++;
	p->payload += clen;
	ring_push(p, h, p->gen);
	return h;
}

void upg_pool_free(struct upg_pool *p, uint32_t h)
{
	uint64_t off = (uint64_t)(h - 1) * GRAIN;
	uint32_t id = p->page_span[off / 4096];
	struct upg_pool_span *s = &p->spans[id];
	uint32_t i = (uint32_t)((off - (uint64_t)s->first * 4096) / p->cls[s->cls].size);
	struct hdr *o = obj_at(p, off);
	p->objects--;
	p->payload -= o->clen;
	o->owner = 0;
	o->page = s->free_head;
	s->free_head = i + 1;
	if (s->live-- == p->cls[s->cls].nobj)
		partial_add(p, id);
	if (!s->live)
		span_release(p, id);
}

uint64_t upg_pool_compact(struct upg_pool *p, uint32_t max_spans,
			  bool (*relocate)(void *arg, uint64_t owner, uint64_t page, uint32_t from, uint32_t to),
			  void *arg)
{
	uint64_t before = p->bytes;
	uint32_t emptied = 0;
	for (uint32_t c = 0; c < p->nclass && emptied < max_spans; c++) {
		for (;;) {
			/* The emptiest part-filled span, and the room in the others. */
			uint64_t room = 0;
			uint32_t best = 0, best_live = UINT32_MAX;
			for (uint32_t id = p->cls[c].partial; id; id = p->spans[id - 1].next) {
				struct upg_pool_span *s = &p->spans[id - 1];
				room += p->cls[c].nobj - s->live;
				if (s->live < best_live) {
					best_live = s->live;
					best = id;
				}
			}
			if (!best || room - (p->cls[c].nobj - best_live) < best_live || emptied >= max_spans)
				break;
			uint32_t id = best - 1;
			struct upg_pool_span *s = &p->spans[id];
			partial_del(p, id);  /* nothing moves into it */
			bool stuck = false;
			for (uint32_t i = 0; i < s->bump && s->live; i++) {
				uint64_t off = obj_off(p, s, i);
				struct hdr *o = obj_at(p, off);
				if (!o->owner)
					continue;
				uint32_t from = (uint32_t)(off / GRAIN) + 1, to = obj_take(p, c);
				if (!to)
					break;  /* cannot be: room was counted */
				struct hdr *n = obj_at(p, (uint64_t)(to - 1) * GRAIN);
				memcpy(n, o, GRAIN + o->clen);
				p->gen = (p->gen + 1) & 0xfff;
				n->gen = p->gen;
				if (!relocate(arg, o->owner, o->page, from, to)) {
					/* Give the copy back; the object stays. */
					n->owner = 0;
					uint32_t nid = p->page_span[(to - 1) * GRAIN / 4096];
					struct upg_pool_span *ns = &p->spans[nid];
					n->page = ns->free_head;
					ns->free_head = (uint32_t)(((uint64_t)(to - 1) * GRAIN - (uint64_t)ns->first * 4096) /
								   p->cls[c].size) + 1;
					if (ns->live-- == p->cls[c].nobj)
						partial_add(p, nid);
					stuck = true;
					continue;
				}
				ring_push(p, to, n->gen);
				o->owner = 0;
				o->page = s->free_head;
				s->free_head = i + 1;
				s->live--;
			}
			if (!s->live) {
				s->prev = s->next = 0;
				partial_add(p, id);  /* span_release() takes it off the list */
				span_release(p, id);
				emptied++;
			} else {
				partial_add(p, id);
			}
			if (stuck)
				break;  /* its objects are busy: try the next class */
		}
	}
	return before - p->bytes;
}

int upg_pool_load(const struct upg_pool *p, uint32_t h, void *page)
{
	const struct hdr *o = obj_at(p, (uint64_t)(h - 1) * GRAIN);
	return upg_pool_decompress(p, o + 1, o->clen, page);
}

int upg_pool_decompress(const struct upg_pool *p, const void *cdata, uint32_t clen, void *page)
{
	int n = -1;
	if (p->algo == UPG_POOL_LZ4) {
		n = LZ4_decompress_safe(cdata, page, (int)clen, UPG_POOL_PAGE);
	}
#ifdef UPG_HAVE_ZSTD
	else if (p->algo == UPG_POOL_ZSTD) {
		/* One context per thread that loads: made once, on its
		 * first load (ZSTD_decompress() would make one per call). */
		static __thread ZSTD_DCtx *dctx;
		if (!dctx)
			dctx = ZSTD_createDCtx();
		size_t r = dctx ? ZSTD_decompressDCtx(dctx, page, UPG_POOL_PAGE, cdata, clen) : 0;
		n = ZSTD_isError(r) ? -1 : (int)r;
	}
#endif
	return n == (int)UPG_POOL_PAGE ? 0 : -EIO;
}

const void *upg_pool_data(const struct upg_pool *p, uint32_t h, uint32_t *clen)
{
	const struct hdr *o = obj_at(p, (uint64_t)(h - 1) * GRAIN);
	*clen = o->clen;
	return o + 1;
}

bool upg_pool_coldest(struct upg_pool *p, uint32_t *h, uint64_t *owner, uint64_t *page)
{
	for (;;) {
		uint64_t e;
		if (p->ring_head < (p->ring_compacting ? p->ring_cw : p->ring_tail)) {
			e = p->ring[p->ring_head++];
		} else if (p->ring_compacting && p->ring_cs < p->ring_tail) {
			e = p->ring[p->ring_cs++];  /* the moved ones all taken: the oldest not looked at */
			if (p->ring_cs == p->ring_tail)
				ring_step(p, 0);  /* nothing left to look at: it ends */
		} else {
			break;
		}
		struct hdr *o = obj_at(p, ((e >> 12) - 1) * GRAIN);
		if (entry_live(p, e)) {
			*h = (uint32_t)(e >> 12);
			*owner = o->owner;
			*page = o->page;
			return true;
		}
	}
	return false;
}

void upg_pool_touch(struct upg_pool *p, uint32_t h)
{
	struct hdr *o = obj_at(p, (uint64_t)(h - 1) * GRAIN);
	p->gen = (p->gen + 1) & 0xfff;
	o->gen = p->gen;  /* its older entry on the ring is dead now */
	ring_push(p, h, p->gen);
}

static void pool_read(void *tier, struct upg_tq *q, uint64_t loc, void *buf, uint32_t len, uint64_t tag)
{
	const struct upg_pool *p = tier;
	int rc = len == UPG_POOL_PAGE ? upg_pool_load(p, (uint32_t)loc, buf) : -EINVAL;
	upg_tq_post(q, tag, rc ? rc : (int)len);
}

const struct upg_tier_ops upg_pool_tier = {
	.name = "pool",
	.on_ring = false,
	.read = pool_read,
	.write = NULL,
};

static uint64_t in_ram(const void *a, size_t len)
{
	if (!a || !len)
		return 0;
	unsigned char vec[1024];
	uint64_t n = 0;
	for (size_t off = 0; off < len; off += sizeof vec * 4096) {
		size_t pages = (len - off + 4095) / 4096;
		if (pages > sizeof vec)
			pages = sizeof vec;
		if (mincore((char *)a + off, pages * 4096, vec))
			return n;
		for (size_t i = 0; i < pages; i++)
			n += (vec[i] & 1) * 4096u;
	}
	return n;
}

uint64_t upg_pool_metadata(const struct upg_pool *p)
{
	if (!p->arena)
		return 0;
	uint64_t n = in_ram(p->ring, round_page(p->ring_cap * sizeof *p->ring)) +
		     in_ram(p->spans, round_page((size_t)p->arena_pages * sizeof *p->spans)) +
		     in_ram(p->page_span, round_page((size_t)p->arena_pages * sizeof *p->page_span)) +
		     in_ram(p->free_ids, round_page((size_t)p->arena_pages * sizeof *p->free_ids));
	for (uint32_t k = 1; k <= PAGES_MAX; k++)
		n += in_ram(p->free_runs[k], round_page((size_t)p->arena_pages / k * sizeof(uint32_t) + 4));
	return n;
}
