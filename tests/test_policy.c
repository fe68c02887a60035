/* SPDX-License-Identifier: MIT */
/*
 * Replacement policies: direct order properties of each policy, bookkeeping
 * under random churn, and a trace simulator that feeds a policy only what the
 * runtime sees (misses, ghost hints, optional write-protect faults), compared
 * with an offline LRU of the same size that sees every access.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "policy.h"

#define NIL UINT32_MAX

/* For checks inside long loops: ck_assert records every passing location
 * with a write(), which made the trace runs I/O-bound. */
#define CHECK(cond, ...)                          \
	do {                                      \
		if (!(cond))                      \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

static const char *const all_names[] = { "fifo", "clock", "s3fifo" };
#define NPOLICIES (sizeof all_names / sizeof all_names[0])

static struct upg_policy *make(const char *name, uint32_t nframes, const struct upg_policy_ops **ops)
{
	const struct upg_policy_ops *o = upg_policy_find(name);
	ck_assert_msg(o, "policy %s not found", name);
	struct upg_policy *p = NULL;
	ck_assert_int_eq(o->create(nframes, &p), 0);
	ck_assert_ptr_nonnull(p);
	*ops = o;
	return p;
}

static uint32_t evict_one(const struct upg_policy_ops *o, struct upg_policy *p)
{
	uint32_t f = NIL;
	ck_assert_uint_eq(o->evict(p, &f, NULL, 1), 1);
	return f;
}

/* ---- lookup -------------------------------------------------------------- */

START_TEST(test_find)
{
	for (size_t i = 0; i < NPOLICIES; i++) {
		const struct upg_policy_ops *o = upg_policy_find(all_names[i]);
		ck_assert_ptr_nonnull(o);
		ck_assert_str_eq(o->name, all_names[i]);
		ck_assert(o->create && o->destroy && o->insert && o->access && o->remove && o->evict);
	}
	ck_assert_ptr_null(upg_policy_find("lru"));
	ck_assert_ptr_null(upg_policy_find(""));
	ck_assert_ptr_null(upg_policy_find("FIFO"));
	ck_assert_ptr_null(upg_policy_find(NULL));

	/* names() lists each policy exactly once and nothing else. */
	char buf[256];
	snprintf(buf, sizeof buf, "%s", upg_policy_names());
	unsigned seen = 0;
	for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		size_t i = 0;
		while (i < NPOLICIES && strcmp(all_names[i], t) != 0)
			i++;
		ck_assert_msg(i < NPOLICIES, "names() lists unknown policy '%s'", t);
		ck_assert_msg(!(seen & 1u << i), "names() lists '%s' twice", t);
		seen |= 1u << i;
	}
	ck_assert_uint_eq(seen, (1u << NPOLICIES) - 1);
}
END_TEST

START_TEST(test_create_bad)
{
	for (size_t i = 0; i < NPOLICIES; i++) {
		const struct upg_policy_ops *o = upg_policy_find(all_names[i]);
		struct upg_policy *p = (struct upg_policy *)&p; /* must stay untouched */
		ck_assert_int_eq(o->create(0, &p), -EINVAL);
		ck_assert_ptr_eq(p, (struct upg_policy *)&p);
		ck_assert_int_eq(o->create(UINT32_MAX, &p), -EINVAL);
		ck_assert_ptr_eq(p, (struct upg_policy *)&p);
	}
}
END_TEST

/* ---- properties every policy has ----------------------------------------- */

START_TEST(test_common)
{
	const char *name = all_names[_i];
	const struct upg_policy_ops *o;
	struct upg_policy *p = make(name, 8, &o);
	uint32_t out[16];

	ck_assert_uint_eq(o->evict(p, out, NULL, 4), 0);

	/* One frame in, one out; then empty again. */
	o->insert(p, 5, UPG_HINT_NEW);
	ck_assert_uint_eq(o->evict(p, out, NULL, 4), 1);
	ck_assert_uint_eq(out[0], 5);
	ck_assert_uint_eq(o->evict(p, out, NULL, 4), 0);

	/* remove() from the middle, the head and the tail, whatever the hint. */
	for (uint32_t f = 0; f < 8; f++)
		o->insert(p, f, (enum upg_policy_hint)(f % 3));
	o->remove(p, 4);
	o->remove(p, 0);
	o->remove(p, 7);
	o->access(p, 2);
	o->access(p, 4); /* absent: a write fault racing eviction, ignored */
	/* n larger than resident: exactly the resident set, each once. */
	uint32_t got = o->evict(p, out, NULL, 16);
	ck_assert_uint_eq(got, 5);
	unsigned seen = 0;
	for (uint32_t i = 0; i < got; i++) {
		ck_assert_uint_lt(out[i], 8);
		ck_assert_msg(!(seen & 1u << out[i]), "%s evicted %u twice", name, out[i]);
		seen |= 1u << out[i];
	}
	ck_assert_uint_eq(seen, 0x6e); /* 1, 2, 3, 5, 6 */
	ck_assert_uint_eq(o->evict(p, out, NULL, 16), 0);

	/* A removed frame can come back. */
	o->insert(p, 4, UPG_HINT_GHOST);
	ck_assert_uint_eq(evict_one(o, p), 4);

	/* nframes == 1 works. */
	o->destroy(p);
	p = make(name, 1, &o);
	for (int r = 0; r < 3; r++) {
		o->insert(p, 0, (enum upg_policy_hint)r);
		o->access(p, 0);
		ck_assert_uint_eq(evict_one(o, p), 0);
	}
	o->destroy(p);
	o->destroy(NULL);
}
END_TEST

/*
 * Random churn against a model of the resident set: evict() only returns
 * resident frames, each once, and fewer than asked only when fewer are
 * resident; at the end it drains exactly what is left.
 */
START_TEST(test_churn)
{
	const char *name = all_names[_i];
	enum { N = 257 };
	const struct upg_policy_ops *o;
	struct upg_policy *p = make(name, N, &o);
	uint8_t in[N] = { 0 };
	uint32_t resident = 0, out[40];
	uint64_t rng = 42 + _i;

	for (int step = 0; step < 200000; step++) {
		uint32_t f = (uint32_t)(upg_t_rand(&rng) % N);
		switch (upg_t_rand(&rng) % 8) {
		case 0: case 1: case 2:
			if (!in[f]) {
				o->insert(p, f, (enum upg_policy_hint)(upg_t_rand(&rng) % 3));
				in[f] = 1;
				resident++;
			}
			break;
		case 3: case 4:
			o->access(p, f);
			break;
		case 5:
			if (in[f]) {
				o->remove(p, f);
				in[f] = 0;
				resident--;
			}
			break;
		default: {
			uint32_t want = (uint32_t)(upg_t_rand(&rng) % 40);
			uint32_t got = o->evict(p, out, NULL, want);
			CHECK(got == (want < resident ? want : resident), "%s evicted %u of %u with %u resident",
			      name, got, want, resident);
			for (uint32_t i = 0; i < got; i++) {
				CHECK(out[i] < N && in[out[i]], "%s evicted absent frame %u", name, out[i]);
				in[out[i]] = 0;
			}
			resident -= got;
		}
		}
	}
	uint32_t *all = malloc(N * sizeof *all);
	ck_assert_ptr_nonnull(all);
	ck_assert_uint_eq(o->evict(p, all, NULL, N), resident);
	for (uint32_t i = 0; i < resident; i++) {
		CHECK(in[all[i]], "%s drained absent frame %u", name, all[i]);
		in[all[i]] = 0;
	}
	for (uint32_t f = 0; f < N; f++)
		CHECK(!in[f], "%s lost frame %u", name, f);
	free(all);
	o->destroy(p);
}
END_TEST

#ifndef NDEBUG
/* Inserting a present frame or removing an absent one is a caller bug. */
START_TEST(test_double_insert)
{
	const struct upg_policy_ops *o;
	struct upg_policy *p = make(all_names[_i], 4, &o);
	o->insert(p, 1, UPG_HINT_NEW);
	o->insert(p, 1, UPG_HINT_GHOST);
}
END_TEST

START_TEST(test_remove_absent)
{
	const struct upg_policy_ops *o;
	struct upg_policy *p = make(all_names[_i], 4, &o);
	o->insert(p, 1, UPG_HINT_NEW);
	o->remove(p, 2);
}
END_TEST
#endif

/* ---- per-policy order ---------------------------------------------------- */

START_TEST(test_fifo_order)
{
	const struct upg_policy_ops *o;
	struct upg_policy *p = make("fifo", 16, &o);
	uint32_t out[16];
	for (uint32_t f = 0; f < 8; f++)
		o->insert(p, f, f == 6 ? UPG_HINT_GHOST : UPG_HINT_NEW);
	o->access(p, 0); /* fifo ignores evidence */
	ck_assert_uint_eq(o->evict(p, out, NULL, 3), 3);
	ck_assert_uint_eq(out[0], 0);
	ck_assert_uint_eq(out[1], 1);
	ck_assert_uint_eq(out[2], 2);
	o->remove(p, 4);
	o->insert(p, 0, UPG_HINT_NEW);
	ck_assert_uint_eq(o->evict(p, out, NULL, 16), 5);
	const uint32_t want[] = { 3, 5, 6, 7, 0 };
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(out[i], want[i]);
	o->destroy(p);
}
END_TEST

START_TEST(test_clock_order)
{
	const struct upg_policy_ops *o;
	struct upg_policy *p = make("clock", 16, &o);
	uint32_t out[16];
	for (uint32_t f = 0; f < 4; f++)
		o->insert(p, f, UPG_HINT_NEW);
	o->access(p, 0);
	ck_assert_uint_eq(evict_one(o, p), 1); /* 0 gets a second chance */
	o->insert(p, 4, UPG_HINT_GHOST);       /* referenced from the start */
	o->insert(p, 5, UPG_HINT_READAHEAD);
	/* Ring: 2 3 0 4* 5 */
	ck_assert_uint_eq(o->evict(p, out, NULL, 16), 5);
	const uint32_t want[] = { 2, 3, 0, 5, 4 };
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(out[i], want[i]);

	/* Only one chance: the bit is cleared when passed over. */
	o->insert(p, 7, UPG_HINT_GHOST);
	o->insert(p, 8, UPG_HINT_NEW);
	ck_assert_uint_eq(evict_one(o, p), 8);
	o->insert(p, 9, UPG_HINT_NEW);
	ck_assert_uint_eq(evict_one(o, p), 7);
	o->remove(p, 9);
	ck_assert_uint_eq(o->evict(p, out, NULL, 1), 0);
	o->destroy(p);
}
END_TEST

START_TEST(test_s3fifo_order)
{
	const struct upg_policy_ops *o;
	struct upg_policy *p = make("s3fifo", 20, &o); /* small target 2 */
	uint32_t out[20];

	/* With small at its target, a never-accessed NEW page goes before a
	 * GHOST-inserted one, even an older one. */
	o->insert(p, 0, UPG_HINT_GHOST);
	o->insert(p, 1, UPG_HINT_NEW);
	o->insert(p, 2, UPG_HINT_NEW);
	ck_assert_uint_eq(evict_one(o, p), 1);

	/* READAHEAD that was never accessed goes first of all, in FIFO order. */
	o->insert(p, 3, UPG_HINT_NEW);
	o->insert(p, 4, UPG_HINT_READAHEAD);
	o->insert(p, 5, UPG_HINT_READAHEAD);
	o->insert(p, 6, UPG_HINT_READAHEAD);
	o->access(p, 5); /* used: now an ordinary small page with one use */
	ck_assert_uint_eq(evict_one(o, p), 4);
	ck_assert_uint_eq(evict_one(o, p), 6);
	/* small = 2 3 5*, main = 0: small is at target, so it is trimmed. */
	ck_assert_uint_eq(evict_one(o, p), 2);
	ck_assert_uint_eq(evict_one(o, p), 3);
	/* small = 5* is below target: main is next, and 0 has no freq. */
	ck_assert_uint_eq(evict_one(o, p), 0);
	/* main empty: small again; 5 was accessed, so it is promoted to main
	 * instead of evicted, and with its use spent it is the last one left. */
	ck_assert_uint_eq(evict_one(o, p), 5);
	ck_assert_uint_eq(o->evict(p, out, NULL, 20), 0);

	/* Main reinserts frames with freq and counts down. */
	o->insert(p, 10, UPG_HINT_GHOST);
	o->insert(p, 11, UPG_HINT_GHOST);
	o->insert(p, 12, UPG_HINT_GHOST);
	o->access(p, 10);
	o->access(p, 10);
	o->access(p, 11);
	ck_assert_uint_eq(o->evict(p, out, NULL, 3), 3);
	ck_assert_uint_eq(out[0], 12);
	ck_assert_uint_eq(out[1], 11);
	ck_assert_uint_eq(out[2], 10);

	/* Small frames accessed while in small survive the trim; others do not. */
	for (uint32_t f = 0; f < 6; f++)
		o->insert(p, f, UPG_HINT_NEW);
	o->insert(p, 6, UPG_HINT_GHOST);
	o->access(p, 1);
	o->access(p, 3);
	o->remove(p, 4); /* middle of small */
	/* small = 0 1* 2 3* 5, main = 6 */
	ck_assert_uint_eq(o->evict(p, out, NULL, 3), 3);
	ck_assert_uint_eq(out[0], 0);
	ck_assert_uint_eq(out[1], 2); /* 1 went to main */
	ck_assert_uint_eq(out[2], 6); /* 3 went to main; small = 5 is below target */
	o->remove(p, 5); /* last of small */
	o->insert(p, 7, UPG_HINT_GHOST);
	o->remove(p, 3); /* middle of main = 1 3 7 */
	ck_assert_uint_eq(o->evict(p, out, NULL, 20), 2);
	ck_assert_uint_eq(out[0], 1);
	ck_assert_uint_eq(out[1], 7);
	o->destroy(p);
}
END_TEST

/* ---- trace simulation ---------------------------------------------------- */

struct trace {
	const char *name;
	uint32_t *page;
	uint8_t *write; /* NULL: all reads */
	size_t len;
	uint32_t npages;
};

/* Offline LRU of C frames that sees every access: the yardstick. */
static double lru_hit_ratio(const struct trace *t, uint32_t C)
{
	uint32_t *prev = malloc(t->npages * sizeof *prev);
	uint32_t *next = malloc(t->npages * sizeof *next);
	uint8_t *in = calloc(t->npages, 1);
	ck_assert(prev && next && in);
	uint32_t head = NIL, tail = NIL, count = 0; /* head = most recent */
	uint64_t hits = 0;
	for (size_t i = 0; i < t->len; i++) {
		uint32_t x = t->page[i];
		if (in[x]) {
			hits++;
			if (head == x)
				continue;
			next[prev[x]] = next[x];
			if (next[x] == NIL)
				tail = prev[x];
			else
				prev[next[x]] = prev[x];
		} else {
			if (count == C) {
				uint32_t v = tail;
				tail = prev[v];
				next[tail] = NIL;
				in[v] = 0;
				count--;
			}
			in[x] = 1;
			count++;
		}
		prev[x] = NIL;
		next[x] = head;
		if (head != NIL)
			prev[head] = x;
		head = x;
		if (tail == NIL)
			tail = x;
	}
	free(prev);
	free(next);
	free(in);
	return (double)hits / (double)t->len;
}

/*
 * What the runtime does with a policy: hits are invisible (except the first
 * write to a clean page when the trace has writes, reported as access());
 * on a miss with no free frame it evicts `batch` victims at once, numbering
 * each eviction, and inserts the missing page as a ghost hit when it was
 * evicted within the last C evictions.
 */
static double sim_hit_ratio(const char *name, const struct trace *t, uint32_t C, uint32_t batch)
{
	const struct upg_policy_ops *o;
	struct upg_policy *p = make(name, C, &o);
	uint32_t *page_frame = malloc(t->npages * sizeof *page_frame);
	uint32_t *evicted_seq = calloc(t->npages, sizeof *evicted_seq);
	uint32_t *frame_page = malloc(C * sizeof *frame_page);
	uint32_t *freelist = malloc(C * sizeof *freelist);
	uint8_t *dirty = calloc(C, 1);
	uint32_t *victims = malloc(C * sizeof *victims);
	uint8_t *ghosts = malloc(C);
	ck_assert(page_frame && evicted_seq && frame_page && freelist && dirty && victims);
	memset(page_frame, 0xff, t->npages * sizeof *page_frame);
	uint32_t nfree = C, resident = 0, seq = 0;
	for (uint32_t f = 0; f < C; f++) {
		freelist[f] = C - 1 - f;
		frame_page[f] = NIL;
	}
	uint64_t hits = 0;

	for (size_t i = 0; i < t->len; i++) {
		uint32_t x = t->page[i];
		int w = t->write && t->write[i];
		uint32_t f = page_frame[x];
		if (f != NIL) {
			hits++;
			if (w && !dirty[f]) {
				dirty[f] = 1;
				o->access(p, f);
			}
			continue;
		}
		enum upg_policy_hint hint = upg_policy_is_ghost(seq, evicted_seq[x], C) ? UPG_HINT_GHOST : UPG_HINT_NEW;
		if (nfree == 0) {
			uint32_t want = batch < resident ? batch : resident;
			uint32_t got = o->evict(p, victims, ghosts, want);
			CHECK(got == want, "%s evicted %u of %u with %u resident", name, got, want, resident);
			for (uint32_t k = 0; k < got; k++) {
				uint32_t v = victims[k];
				CHECK(v < C && frame_page[v] != NIL, "%s evicted free frame %u", name, v);
				seq = (seq + 1) & UPG_FC_SEQ_MASK;
				if (seq == 0) /* 0 means "never evicted" */
					seq = 1;
				/* As the runtime does: ghost-worthy victims are
				 * marked (see forecast.h). */
				evicted_seq[frame_page[v]] = seq | (ghosts[k] ? UPG_FC_GHOST : 0);
				page_frame[frame_page[v]] = NIL;
				frame_page[v] = NIL;
				dirty[v] = 0; /* written back */
				freelist[nfree++] = v;
			}
			resident -= got;
		}
		f = freelist[--nfree];
		frame_page[f] = x;
		page_frame[x] = f;
		dirty[f] = (uint8_t)w; /* a write miss maps the page writable */
		resident++;
		o->insert(p, f, hint);
	}

	/* Bookkeeping: draining returns exactly the resident frames, once each. */
	uint32_t got = o->evict(p, victims, NULL, C);
	ck_assert_uint_eq(got, resident);
	for (uint32_t k = 0; k < got; k++) {
		CHECK(frame_page[victims[k]] != NIL, "%s drained free or repeated frame %u", name, victims[k]);
		frame_page[victims[k]] = NIL;
	}
	ck_assert_uint_eq(o->evict(p, victims, NULL, 1), 0);

	o->destroy(p);
	free(page_frame);
	free(evicted_seq);
	free(frame_page);
	free(freelist);
	free(dirty);
	free(victims);
	free(ghosts);
	return (double)hits / (double)t->len;
}

enum { C = 2000, BATCH = 32 };

static size_t trace_len(void)
{
	return (size_t)upg_t_scale(400000);
}

static void trace_free(struct trace *t)
{
	free(t->page);
	free(t->write);
}

static struct trace make_loop(void)
{
	struct trace t = { .name = "loop", .len = trace_len(), .npages = C * 3 / 2 };
	t.page = malloc(t.len * sizeof *t.page);
	ck_assert_ptr_nonnull(t.page);
	for (size_t i = 0; i < t.len; i++)
		t.page[i] = (uint32_t)(i % t.npages);
	return t;
}

/* Zipf(s = 0.99) over 10*C pages, by inverting a precomputed CDF.  Ranks are
 * scattered over the page numbers so that no policy can profit from order. */
static struct trace make_zipf(int writes)
{
	struct trace t = { .name = writes ? "zipf+wp" : "zipf", .len = trace_len(), .npages = 10 * C };
	uint32_t n = t.npages;
	double *cdf = malloc(n * sizeof *cdf);
	uint32_t *perm = malloc(n * sizeof *perm);
	t.page = malloc(t.len * sizeof *t.page);
	t.write = writes ? malloc(t.len) : NULL;
	ck_assert(cdf && perm && t.page && (!writes || t.write));
	double sum = 0;
	for (uint32_t k = 0; k < n; k++) {
		sum += 1.0 / pow((double)(k + 1), 0.99);
		cdf[k] = sum;
	}
	uint64_t rng = 0x5eed2f;
	for (uint32_t k = 0; k < n; k++)
		perm[k] = k;
	for (uint32_t k = n - 1; k > 0; k--) {
		uint32_t j = (uint32_t)(upg_t_rand(&rng) % (k + 1));
		uint32_t tmp = perm[k];
		perm[k] = perm[j];
		perm[j] = tmp;
	}
	for (size_t i = 0; i < t.len; i++) {
		double u = (double)(upg_t_rand(&rng) >> 11) * 0x1p-53 * sum;
		uint32_t lo = 0, hi = n - 1;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		t.page[i] = perm[lo];
		if (writes)
			t.write[i] = upg_t_rand(&rng) % 4 == 0;
	}
	free(cdf);
	free(perm);
	return t;
}

/* A hot set of C/2 pages, touched with probability 1/2, interleaved with a
 * one-time scan over fresh pages. */
static struct trace make_scanhot(void)
{
	uint32_t hot = C / 2;
	struct trace t = { .name = "scan+hot", .len = trace_len() };
	t.npages = hot + (uint32_t)t.len;
	t.page = malloc(t.len * sizeof *t.page);
	ck_assert_ptr_nonnull(t.page);
	uint64_t rng = 0xabcdef;
	uint32_t scan = hot;
	for (size_t i = 0; i < t.len; i++) {
		uint64_t r = upg_t_rand(&rng);
		t.page[i] = (r & 1) ? (uint32_t)((r >> 1) % hot) : scan++;
	}
	return t;
}

struct result {
	double hit[NPOLICIES]; /* evict(1) per miss */
	double hit_batch[NPOLICIES];
	double lru;
};

static struct result run_all(const struct trace *t)
{
	struct result r;
	r.lru = lru_hit_ratio(t, C);
	for (size_t i = 0; i < NPOLICIES; i++) {
		r.hit[i] = sim_hit_ratio(all_names[i], t, C, 1);
		r.hit_batch[i] = sim_hit_ratio(all_names[i], t, C, BATCH);
		printf("policy %-7s trace %-9s C %u accesses %zu  hit %.4f  hit(batch %u) %.4f  lru %.4f\n",
		       all_names[i], t->name, C, t->len, r.hit[i], BATCH, r.hit_batch[i], r.lru);
	}
	fflush(stdout);
	return r;
}

enum { FIFO, CLOCK, S3FIFO };

/*
 * Bounds sit a little below the figures measured on these seeded traces (the
 * printed table; about the same for C from 1000 to 4000 and under
 * UPG_TEST_QUICK).  They are properties of the algorithms, not of the
 * machine.  Each holds for evict(1) per miss and for batches of BATCH.
 */

START_TEST(test_trace_loop)
{
	struct trace t = make_loop();
	struct result r = run_all(&t);
	/* LRU and FIFO get nothing on a loop larger than the cache.  S3-FIFO
	 * remembers as ghosts only pages that left the small queue, so the
	 * pages that made it to main stay there while the rest of the loop
	 * passes through small: measured 0.48-0.49. */
	ck_assert_double_lt(r.lru, 0.01);
	for (int b = 0; b < 2; b++) {
		const double *h = b ? r.hit_batch : r.hit;
		ck_assert_double_ge(h[S3FIFO], h[FIFO] + 0.4);
		ck_assert_double_ge(h[S3FIFO], r.lru + 0.4);
	}
	trace_free(&t);
}
END_TEST

START_TEST(test_trace_zipf)
{
	struct trace t = make_zipf(0);
	struct result r = run_all(&t);
	/* Measured s3fifo/LRU 1.03-1.04 (clock 0.97, fifo 0.94): ghost hits
	 * alone are enough evidence to keep the head of the distribution. */
	for (int b = 0; b < 2; b++) {
		const double *h = b ? r.hit_batch : r.hit;
		ck_assert_double_ge(h[S3FIFO], h[FIFO]);
		ck_assert_double_ge(h[CLOCK], h[FIFO]);
		ck_assert_double_ge(h[S3FIFO], 0.98 * r.lru);
	}
	trace_free(&t);
}
END_TEST

START_TEST(test_trace_zipf_writes)
{
	struct trace t = make_zipf(1);
	struct result r = run_all(&t);
	/* With write faults as extra evidence (a quarter of accesses write).
	 * Measured: clock beats fifo by 0.025. */
	for (int b = 0; b < 2; b++) {
		const double *h = b ? r.hit_batch : r.hit;
		ck_assert_double_ge(h[S3FIFO], h[FIFO]);
		ck_assert_double_ge(h[CLOCK], h[FIFO] + 0.01);
		ck_assert_double_ge(h[S3FIFO], 0.98 * r.lru);
	}
	trace_free(&t);
}
END_TEST

START_TEST(test_trace_scanhot)
{
	struct trace t = make_scanhot();
	struct result r = run_all(&t);
	/* The scan only passes through small, so the hot set stays in main.
	 * Measured: s3fifo 0.48-0.50, fifo 0.29, LRU 0.36 (the scan pushes
	 * hot pages out of LRU too). */
	for (int b = 0; b < 2; b++) {
		const double *h = b ? r.hit_batch : r.hit;
		ck_assert_double_ge(h[S3FIFO], h[FIFO] + 0.1);
		ck_assert_double_ge(h[S3FIFO], 1.2 * r.lru);
	}
	trace_free(&t);
}
END_TEST

static Suite *policy_suite(int forking)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("unit");
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_create_bad);
	tcase_add_loop_test(tc, test_common, 0, NPOLICIES);
	tcase_add_loop_test(tc, test_churn, 0, NPOLICIES);
	tcase_add_test(tc, test_fifo_order);
	tcase_add_test(tc, test_clock_order);
	tcase_add_test(tc, test_s3fifo_order);
#ifndef NDEBUG
	/* A death test would kill the runner itself without fork mode. */
	if (forking) {
		tcase_add_loop_test_raise_signal(tc, test_double_insert, SIGABRT, 0, NPOLICIES);
		tcase_add_loop_test_raise_signal(tc, test_remove_absent, SIGABRT, 0, NPOLICIES);
	}
#endif
	suite_add_tcase(s, tc);

	TCase *tt = tcase_create("trace");
	tcase_add_test(tt, test_trace_loop);
	tcase_add_test(tt, test_trace_zipf);
	tcase_add_test(tt, test_trace_zipf_writes);
	tcase_add_test(tt, test_trace_scanhot);
	suite_add_tcase(s, tt);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(NULL);
	int forking = srunner_fork_status(sr) != CK_NOFORK;
	srunner_add_suite(sr, policy_suite(forking));
	fflush(stdout); /* forked children must not repeat buffered output */
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
