/* SPDX-License-Identifier: MIT */
/*
 * apiheap: a skip list built in a paged region several times the RAM budget,
 * through the upager API.
 *
 *   apiheap [--ram SIZE] [--data SIZE] [--page SIZE]
 *
 * --ram is the budget (default 64M, or UPAGER_RAM), --data the region
 * (default 8 times the budget), --page its page size.  Other settings come
 * from UPAGER_* (see README).
 *
 * A bump allocator hands out the region front to back.  Nodes hold a key, a
 * level, one forward pointer per level and a payload of 16 to 1024 bytes
 * whose bytes are a function of the key.  Keys are appended in increasing
 * order (gaps of 2 to 64, so key + 1 is never present) until the region is
 * full; each level's tail pointer is patched as the list grows, which writes
 * back into pages evicted long ago.  Then:
 *   - level 0 is walked once, front to back, and every node checked: key,
 *     level, payload bytes, and each of its forward pointers (it must point
 *     at the next node at least that high);
 *   - 4096 searches go down the levels for present and absent keys.
 *
 * Output: one summary line on stdout, byte-identical from run to run for the
 * same settings; the runtime's report (timings, fault counts) on stderr.
 * Exit status 0 when everything checked out, 1 on a mismatch or a runtime
 * failure, 2 on a bad argument.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upager.h"

#define SEED     0x617069686561ULL /* "apiheap" */
#define GOLD     0x9e3779b97f4a7c15ULL
#define MAXLEVEL 24
#define SEARCHES 4096

struct node {
	uint64_t key;
	uint32_t level;       /* forward pointers, 1..MAXLEVEL */
	uint32_t len;         /* payload bytes after next[level] */
	struct node *next[];
};

struct arena {
	char *base;
	size_t used, size;
};

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* 8-byte aligned; NULL when the region is full. */
static void *arena_alloc(struct arena *a, size_t len)
{
	len = (len + 7) & ~(size_t)7;
	if (len > a->size - a->used)
		return NULL;
	void *p = a->base + a->used;
	a->used += len;
	return p;
}

static unsigned char *payload(struct node *x)
{
	return (unsigned char *)&x->next[x->level];
}

/* Shape of node i, a function of i and its key. */
static uint64_t next_key(uint64_t key, uint64_t i)
{
	return key + 2 + mix(SEED + i) % 63;
}

static uint32_t node_level(uint64_t key)
{
	uint64_t r = mix(key ^ SEED);
	uint32_t l = 1;
	while (l < MAXLEVEL && (r & 3) == 0) { /* p = 1/4 */
		l++;
		r >>= 2;
	}
	return l;
}

static uint32_t node_len(uint64_t key)
{
	return 16 + (uint32_t)(mix(key * GOLD) % 1009);
}

static void fill(unsigned char *p, uint32_t len, uint64_t key)
{
	uint64_t s = mix(key), w;
	for (uint32_t i = 0; i < len; i += 8) {
		s += GOLD;
		w = mix(s);
		memcpy(p + i, &w, len - i < 8 ? len - i : 8);
	}
}

static int check(const unsigned char *p, uint32_t len, uint64_t key, uint64_t *hash)
{
	uint64_t s = mix(key), w, h = *hash;
	for (uint32_t i = 0; i < len; i += 8) {
		uint32_t k = len - i < 8 ? len - i : 8;
		s += GOLD;
		w = mix(s);
		if (memcmp(p + i, &w, k))
			return -1;
		h = mix(h ^ w);
	}
	*hash = h;
	return 0;
}

static struct node *search(struct node *head, uint64_t key)
{
	struct node *x = head;
	for (int l = MAXLEVEL - 1; l >= 0; l--)
		while (x->next[l] && x->next[l]->key < key)
			x = x->next[l];
	x = x->next[0];
	return x && x->key == key ? x : NULL;
}

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	fprintf(stderr, "upager: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct upager_config cfg;
	char err[512];
	upager_config_init(&cfg);
	cfg.ram_budget = 64ULL << 20;
	if (upager_config_from_env(&cfg, err, sizeof err)) {
		fprintf(stderr, "apiheap: %s\n", err);
		return 2;
	}
	uint64_t data = 0;
	for (int i = 1; i < argc; i++) {
		uint64_t v;
		if (!strcmp(argv[i], "--ram") && i + 1 < argc && !upager_parse_size(argv[i + 1], &v))
			cfg.ram_budget = v, i++;
		else if (!strcmp(argv[i], "--data") && i + 1 < argc && !upager_parse_size(argv[i + 1], &v))
			data = v, i++;
		else if (!strcmp(argv[i], "--page") && i + 1 < argc && !upager_parse_size(argv[i + 1], &v) &&
			 v <= UINT32_MAX)
			cfg.page_size = (uint32_t)v, i++;
		else {
			fprintf(stderr, "usage: apiheap [--ram SIZE] [--data SIZE] [--page SIZE]\n"
				"  bad or incomplete argument: %s\n", argv[i]);
			return 2;
		}
	}
	if (!data)
		data = cfg.ram_budget * 8;
	cfg.log = log_cb;

	upager_t *up;
	int rc = upager_open(&cfg, &up, err, sizeof err);
	if (rc) {
		fprintf(stderr, "apiheap: cannot start upager: %s\n", err);
		return 1;
	}
	void *mem;
	rc = upager_map(up, data, NULL, &mem);
	if (rc) {
		fprintf(stderr, "apiheap: upager_map(%llu bytes): %s\n", (unsigned long long)data, strerror(-rc));
		upager_close(up);
		return 1;
	}
	struct arena ar = { .base = mem, .size = data };
	unsigned long long errors = 0;

	/* Build.  keys[] (outside the region) lets searches pick present keys. */
	struct node *head = arena_alloc(&ar, sizeof *head + MAXLEVEL * sizeof(struct node *));
	struct node *tail[MAXLEVEL];
	uint64_t cap = data / 256 + 1, n = 0, key = 0;
	uint64_t *keys = malloc(cap * sizeof *keys);
	if (!head || !keys) {
		fprintf(stderr, "apiheap: region or heap too small\n");
		free(keys);
		upager_close(up);
		return 1;
	}
	head->key = 0;
	head->level = MAXLEVEL;
	head->len = 0;
	for (int l = 0; l < MAXLEVEL; l++)
		tail[l] = head;
	for (;; n++) {
		key = next_key(key, n);
		uint32_t lv = node_level(key), len = node_len(key);
		struct node *x = arena_alloc(&ar, sizeof *x + lv * sizeof(struct node *) + len);
		if (!x || n == cap)
			break;
		x->key = key;
		x->level = lv;
		x->len = len;
		fill(payload(x), len, key);
		for (uint32_t l = 0; l < lv; l++) {
			x->next[l] = NULL;
			tail[l]->next[l] = x;
			tail[l] = x;
		}
		keys[n] = key;
	}

	/* One sequential pass along level 0 checks every node and, through
	 * want[l] (the level-l pointer of the last node at least l+1 high), every
	 * higher-level pointer too, without going back to earlier pages. */
	upager_advise(up, mem, ar.used, UPAGER_ADV_SEQUENTIAL);
	struct node *want[MAXLEVEL];
	uint64_t hash = 0, i = 0;
	uint32_t levels = 1;
	for (int l = 0; l < MAXLEVEL; l++)
		want[l] = head->next[l];
	key = 0;
	for (struct node *x = head->next[0]; x; x = x->next[0], i++) {
		key = next_key(key, i);
		if (i >= n || x->key != key || x->level != node_level(key) || x->len != node_len(key) ||
		    check(payload(x), x->len, key, &hash)) {
			if (errors++ < 10)
				fprintf(stderr, "apiheap: node %llu: bad key, shape or payload\n", (unsigned long long)i);
			break;
		}
		for (uint32_t l = 0; l < x->level; l++) {
			if (want[l] != x && errors++ < 10)
				fprintf(stderr, "apiheap: node %llu: level %u skips it\n", (unsigned long long)i, l);
			want[l] = x->next[l];
		}
		if (x->level > levels)
			levels = x->level;
	}
	if (i != n && errors++ < 10)
		fprintf(stderr, "apiheap: level 0 has %llu nodes, %llu were inserted\n", (unsigned long long)i,
			(unsigned long long)n);
	for (uint32_t l = 0; l < MAXLEVEL && i == n; l++)
		if (want[l] && errors++ < 10)
			fprintf(stderr, "apiheap: level %u runs past the last node\n", l);

	/* Searches: even ones for present keys, odd ones for key + 1 (absent).
	 * Each touches a few scattered nodes: readahead would be wasted. */
	upager_advise(up, mem, ar.used, UPAGER_ADV_RANDOM);
	uint64_t found = 0, s = SEED;
	for (int q = 0; q < SEARCHES && n; q++) {
		s = mix(s + GOLD);
		uint64_t want = keys[s % n] + (q & 1);
		struct node *x = search(head, want);
		if ((q & 1) ? x != NULL : (x == NULL || x->key != want)) {
			if (errors++ < 10)
				fprintf(stderr, "apiheap: search for %llu went wrong\n", (unsigned long long)want);
		} else if (x) {
			found++;
		}
	}
	free(keys);

	struct upager_stats st = { .size = sizeof st };
	char report[4096];
	rc = upager_stats(up, &st);
	if (!rc) {
		upager_format_stats(&st, report, sizeof report);
		fputs(report, stderr);
	}
	printf("apiheap: region=%llu budget=%llu arena_used=%llu nodes=%llu levels=%u searches=%d found=%llu "
	       "checksum=%016llx verify=%s\n", (unsigned long long)data,
	       (unsigned long long)cfg.ram_budget, (unsigned long long)ar.used, (unsigned long long)n,
	       levels, SEARCHES, (unsigned long long)found, (unsigned long long)hash, errors ? "FAILED" : "OK");
	upager_unmap(up, mem);
	upager_close(up);
	return errors ? 1 : 0;
}
