/* SPDX-License-Identifier: MIT */
/* The data pattern and content, the random numbers of the workloads and the clocks. */
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"

uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The word at the start of `line` of `page` after `gen` rewrites.  The salt
 * differs per run, so a page handed back from an older region or a stale
 * store slot does not match by accident. */
uint64_t pattern(uint64_t salt, uint64_t page, uint64_t line, uint64_t gen)
{
	return mix(mix(salt + page) + line * 0x9e3779b97f4a7c15ULL + gen * 0xc2b2ae3d27d4eb4fULL);
}

/*
 * What fills the rest of each 64-byte line.  Only the first word is ever
 * checked, so the rest may be anything; what it is decides how well the
 * page compresses, which is what upager's pool and zswap live on.  Each of
 * the 7 words is derived from the checked word with a multiply and shifts
 * (no second hash), so a fill costs little more than the checked words
 * alone: write_page() runs inside the timed phase of first-touch and
 * seq-write.
 */
static const struct {
	const char *name;
	const char *what;
} contents[] = {
	[CONTENT_HEAP] = { "heap", "pointers, small integers and short words, like a program's heap" },
	[CONTENT_RANDOM] = { "random", "pseudo-random bytes, incompressible" },
	[CONTENT_SPARSE] = { "sparse", "one word per 64-byte line, the rest zeros" },
};

const char *content_name(enum content m)
{
	return contents[m].name;
}

const char *content_what(enum content m)
{
	return contents[m].what;
}

int content_parse(const char *s, enum content *out)
{
	for (size_t i = 0; i < sizeof contents / sizeof contents[0]; i++)
		if (!strcmp(s, contents[i].name)) {
			*out = (enum content)i;
			return 0;
		}
	return -EINVAL;
}

/* 8-byte words of a heap's text: field names, keywords, short strings. */
static const char heap_words[16][8] = {
	"next", "prev", "size", "name", "value", "count", "flags", "data",
	"true", "false", "null", "key", "hash", "left", "right", "parent",
};

static uint64_t heap_word(uint64_t i)
{
	uint64_t v;
	memcpy(&v, heap_words[i & 15], sizeof v);
	return v;
}

/* Where the made-up pointers point: a user-space heap address. */
#define HEAP_BASE 0x00007f3a00000000ULL

/*
 * Heap content, tuned with LZ4 on 4 KiB pages to about 3x (2.5 to 3.5 is
 * the aim; the checked word alone, 8 incompressible bytes per line, caps
 * any content near 5.3x): a pointer into the same page (its upper bytes
 * repeat), an integer below 16, then a run of 5 dictionary words that
 * starts at one of 8 places.  Rarer starts or wider integers fall to 2.2x.
 */
static void heap_line(uint64_t *w, uint64_t x, uint64_t p, size_t psize)
{
	uint64_t h = x * 0x9e3779b97f4a7c15ULL, lines = psize / 64;
	w[1] = HEAP_BASE + p * psize + ((h >> 6) & (lines - 1)) * 64 + 16;
	w[2] = (h >> 20) & 15;
	uint64_t s = (h >> 28) & 7;
	for (uint64_t i = 3; i < 8; i++)
		w[i] = heap_word(s + i);
}

/* Random content: an LCG seeded by the checked word, its output mixed by a
 * shift; LZ4 finds no 4-byte repeats in it (measured 1.00x). */
static void random_line(uint64_t *w, uint64_t x)
{
	for (uint64_t i = 1; i < 8; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		w[i] = x ^ (x >> 29);
	}
}

void fill_page(enum content m, uint64_t salt, void *page, size_t psize, uint64_t p, uint64_t gen)
{
	uint64_t *w = page;
	for (uint64_t l = 0; l < psize / 64; l++, w += 8) {
		uint64_t x = pattern(salt, p, l, gen);
		w[0] = x;
		if (m == CONTENT_HEAP)
			heap_line(w, x, p, psize);
		else if (m == CONTENT_RANDOM)
			random_line(w, x);
	}
}

/*
 * Compress a sample of pages of content m with LZ4 (as upager's pool does,
 * 4 KiB at a time) and report the ratio.  The sample is spread over page
 * numbers and two generations, like the pages the workloads write.
 */
#define SAMPLE_PAGES 256u
#define POOL_CUT 3072u /* the pool keeps a 4 KiB page that compresses to this or less (src/pool.h) */
int content_measure(enum content m, uint64_t seed, size_t psize, struct content_sample *out)
{
	size_t chunk = 4096, bound = (size_t)LZ4_compressBound((int)chunk);
	char *page = calloc(1, psize), *buf = malloc(bound);
	int rc = 0;
	if (!page || !buf) {
		rc = -ENOMEM;
		goto out;
	}
	uint64_t in = 0, cut = 0, total = 0, salt = mix(seed);
	for (unsigned i = 0; i < SAMPLE_PAGES; i++) {
		memset(page, 0, psize);
		fill_page(m, salt, page, psize, mix(seed + i) % (1ULL << 28), i & 1);
		for (size_t off = 0; off < psize; off += chunk) {
			int n = LZ4_compress_default(page + off, buf, (int)chunk, (int)bound);
			if (n <= 0) {
				rc = -EIO;
				goto out;
			}
			in += chunk;
			total += (uint64_t)n;
			cut += (unsigned)n <= POOL_CUT;
		}
	}
	*out = (struct content_sample){
		.pages = SAMPLE_PAGES,
		.lz4_ratio = (double)in / (double)total,
		.pool_fit = (double)cut / (double)(in / chunk),
	};
out:
	free(page);
	free(buf);
	return rc;
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return mix(*s);
}

/* Uniform in [0, n) without a division (Lemire's multiply-shift). */
uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

double cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
