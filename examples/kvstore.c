/* SPDX-License-Identifier: MIT */
/*
 * kvstore: an in-memory key-value store with a heap footprint of SIZE.
 *
 *   kvstore [SIZE]        SIZE like 512M (default), 64M, 2G; binary units
 *
 * An ordinary program: it knows nothing of upager and allocates with
 * malloc, calloc, realloc and free, so it can be run under upager-run with a
 * RAM cap far below SIZE.
 *
 * An open-addressing table (calloc'd, linear probing, tombstones) maps keys
 * to values malloc'd one by one, 16 to 4096 bytes, log-uniform.  A value's
 * length and every byte of it are a function of (key, version), so it can be
 * checked anywhere without a second copy.  After inserting every key, random
 * operations look up (and check), update (realloc to the new version's
 * length, check the kept prefix, rewrite), delete (free) and reinsert keys.
 * A small shadow array of versions says which keys must be live.  At the end
 * every key is looked up and every live value checked.
 *
 * Output: one line, byte-identical from run to run (fixed seed, nothing
 * depends on addresses or time).  Exit status 0 when everything checked out,
 * 1 on any mismatch or allocation failure, 2 on a bad argument.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define SEED 0x6b7673746f7265ULL /* "kvstore" */
#define GOLD 0x9e3779b97f4a7c15ULL
#define TOMB UINT32_MAX          /* ver of a tombstone slot (val == NULL) */
#define LIVE 0x80000000u         /* in the shadow state: key is present */

/* One table slot.  Empty: val == NULL and ver == 0.  Tombstone: val == NULL
 * and ver == TOMB.  Live: val != NULL. */
struct slot {
	uint64_t key;
	unsigned char *val;
	uint32_t len;
	uint32_t ver;
};

struct table {
	struct slot *slots;
	uint64_t mask;
	uint64_t used; /* live slots plus tombstones */
};



/* Keys are a bijection of the key number, so they never collide. */
static uint64_t key_of(uint64_t id)
{
	return mix(id ^ SEED);
}

/* 16..4096 bytes: pick a power-of-two band [lo, 2*lo] with lo = 16..2048,
 * then a length within it.  Mean about 765 bytes. */
static uint32_t value_len(uint64_t key, uint32_t ver)
{
	uint64_t r = mix(key ^ ((uint64_t)ver * GOLD));
	uint32_t lo = 16u << (r % 8);
	return lo + (uint32_t)((r >> 8) % (lo + 1));
}

static uint64_t stream_start(uint64_t key, uint32_t ver)
{
	return mix(key + ((uint64_t)ver << 40) + SEED);
}

static void value_fill(unsigned char *p, uint32_t len, uint64_t key, uint32_t ver)
{
	uint64_t s = stream_start(key, ver), w;
	uint32_t i = 0;
	for (; i + 8 <= len; i += 8) {
		s += GOLD;
		w = mix(s);
		memcpy(p + i, &w, 8);
	}
	if (i < len) {
		s += GOLD;
		w = mix(s);
		memcpy(p + i, &w, len - i);
	}
}

/* Compare the first len bytes of p with version ver's content.  Returns 0 on
 * a match, and hashes the bytes into *hash when hash is not NULL. */
static int value_check(const unsigned char *p, uint32_t len, uint64_t key, uint32_t ver, uint64_t *hash)
{
	uint64_t s = stream_start(key, ver), w, got, h = key;
	uint32_t i = 0;
	for (; i + 8 <= len; i += 8) {
		s += GOLD;
		w = mix(s);
		memcpy(&got, p + i, 8);
		if (got != w)
			return -1;
		h = mix(h ^ got);
	}
	if (i < len) {
		s += GOLD;
		w = mix(s);
		got = 0;
		memcpy(&got, p + i, len - i);
		if (memcmp(&got, &w, len - i))
			return -1;
		h = mix(h ^ got);
	}
	if (hash)
		*hash = mix(h + len);
	return 0;
}

static uint64_t home(const struct table *t, uint64_t key)
{
	return mix(key + 0x51ed270b27ULL) & t->mask;
}

static struct slot *find(const struct table *t, uint64_t key)
{
	for (uint64_t i = home(t, key);; i = (i + 1) & t->mask) {
		struct slot *s = &t->slots[i];
		if (s->val && s->key == key)
			return s;
		if (!s->val && s->ver != TOMB)
			return NULL;
	}
}

/* Precondition: key is absent.  Invariant: used <= 3/4 of the slots, so
 * probing always ends at an empty slot. */
static struct slot *claim(struct table *t, uint64_t key)
{
	for (uint64_t i = home(t, key);; i = (i + 1) & t->mask) {
		struct slot *s = &t->slots[i];
		if (!s->val) {
			if (s->ver != TOMB)
				t->used++;
			s->key = key;
			return s;
		}
	}
}

/* Drop the tombstones by moving the live slots into a fresh array. */
static int rehash(struct table *t)
{
	struct table nt = { .slots = calloc(t->mask + 1, sizeof(struct slot)), .mask = t->mask };
	if (!nt.slots)
		return -ENOMEM;
	for (uint64_t i = 0; i <= t->mask; i++)
		if (t->slots[i].val)
			*claim(&nt, t->slots[i].key) = t->slots[i];
	free(t->slots);
	*t = nt;
	return 0;
}

static unsigned long long errors;

static void complain(const char *what, uint64_t id, uint64_t key, uint32_t ver)
{
	if (errors++ < 10)
		fprintf(stderr, "kvstore: %s: key #%llu (%016llx) version %u\n", what, (unsigned long long)id,
			(unsigned long long)key, ver);
}

static int put_new(struct table *t, uint64_t key, uint32_t ver)
{
	uint32_t len = value_len(key, ver);
	if (t->used + 1 > (t->mask + 1) / 4 * 3 && rehash(t))
		return -ENOMEM;
	unsigned char *v = malloc(len);
	if (!v)
		return -ENOMEM;
	value_fill(v, len, key, ver);
	struct slot *s = claim(t, key);
	s->val = v;
	s->len = len;
	s->ver = ver;
	return 0;
}

static int update(struct slot *s, uint64_t id)
{
	uint32_t old = s->len, len = value_len(s->key, s->ver + 1);
	unsigned char *v = realloc(s->val, len);
	if (!v)
		return -ENOMEM;
	/* realloc must have kept the old content up to the shorter length. */
	if (value_check(v, old < len ? old : len, s->key, s->ver, NULL))
		complain("realloc lost data", id, s->key, s->ver);
	s->ver++;
	s->val = v;
	s->len = len;
	value_fill(v, len, s->key, s->ver);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t size = 512ULL << 20;
	if (argc > 2 || (argc == 2 && parse_size(argv[1], &size))) {
		fprintf(stderr, "usage: kvstore [SIZE]   (heap footprint such as 512M or 2G; default 512M)\n");
		return 2;
	}
	/* Per key: ~765 bytes of value, ~16 of malloc header and rounding, two
	 * 24-byte table slots, 4 bytes of shadow state. */
	uint64_t n = size / 833;
	if (n < 16)
		n = 16;
	if (n > (1ULL << 31)) {
		fprintf(stderr, "kvstore: SIZE too large\n");
		return 2;
	}
	uint64_t cap = 1;
	while (cap < 2 * n)
		cap <<= 1;
	struct table t = { .slots = calloc(cap, sizeof(struct slot)), .mask = cap - 1 };
	uint32_t *state = calloc(n, sizeof *state); /* version | LIVE */
	if (!t.slots || !state)
		goto oom;

	for (uint64_t id = 0; id < n; id++) {
		if (put_new(&t, key_of(id), 0))
			goto oom;
		state[id] = LIVE;
	}

	unsigned long long lookups = 0, hits = 0, updates = 0, deletes = 0, reinserts = 0;
	uint64_t rng = SEED;
	for (uint64_t op = 0; op < 4 * n; op++) {
		rng = mix(rng + GOLD);
		uint64_t id = rng % n, key = key_of(id);
		unsigned kind = (unsigned)((rng >> 40) % 100);
		uint32_t ver = state[id] & ~LIVE;
		int live = !!(state[id] & LIVE);
		struct slot *s = find(&t, key);
		if (!s != !live) {
			complain(live ? "live key missing" : "deleted key found", id, key, ver);
			continue;
		}
		if (kind < 40) {
			lookups++;
			if (s) {
				hits++;
				if (s->ver != ver || s->len != value_len(key, ver) ||
				    value_check(s->val, s->len, key, ver, NULL))
					complain("lookup: wrong value", id, key, ver);
			}
		} else if (kind < 70 || (kind >= 85 && live)) {
			if (live) {
				if (update(s, id))
					goto oom;
				state[id] = (ver + 1) | LIVE;
				updates++;
			} else {
				if (put_new(&t, key, ver + 1))
					goto oom;
				state[id] = (ver + 1) | LIVE;
				reinserts++;
			}
		} else if (kind < 85) {
			if (live) {
				free(s->val);
				s->val = NULL;
				s->ver = TOMB;
				state[id] = ver;
				deletes++;
			}
		} else {
			if (put_new(&t, key, ver + 1))
				goto oom;
			state[id] = (ver + 1) | LIVE;
			reinserts++;
		}
	}

	/* Every key, live or not, against the shadow state. */
	uint64_t sum = 0, live_keys = 0, bytes = 0;
	for (uint64_t id = 0; id < n; id++) {
		uint64_t key = key_of(id), h;
		uint32_t ver = state[id] & ~LIVE;
		struct slot *s = find(&t, key);
		if (!(state[id] & LIVE)) {
			if (s)
				complain("deleted key found", id, key, ver);
			continue;
		}
		if (!s) {
			complain("live key missing", id, key, ver);
			continue;
		}
		if (s->ver != ver || s->len != value_len(key, ver) || value_check(s->val, s->len, key, ver, &h)) {
			complain("final check: wrong value", id, key, ver);
			continue;
		}
		live_keys++;
		bytes += s->len;
		sum += mix(h ^ id);
	}
	uint64_t occupied = 0;
	for (uint64_t i = 0; i < cap; i++)
		if (t.slots[i].val) {
			occupied++;
			free(t.slots[i].val);
		}
	if (occupied != live_keys && errors++ < 10)
		fprintf(stderr, "kvstore: %llu occupied slots, %llu live keys\n", (unsigned long long)occupied,
			(unsigned long long)live_keys);
	free(t.slots);
	free(state);

	printf("kvstore: keys=%llu ops=%llu lookups=%llu hits=%llu updates=%llu deletes=%llu reinserts=%llu "
	       "live=%llu value_bytes=%llu checksum=%016llx verify=%s\n",
	       (unsigned long long)n, (unsigned long long)(4 * n), lookups, hits, updates, deletes, reinserts,
	       (unsigned long long)live_keys, (unsigned long long)bytes, (unsigned long long)sum,
	       errors ? "FAILED" : "OK");
	return errors ? 1 : 0;
oom:
	fprintf(stderr, "kvstore: out of memory\n");
	return 1;
}
