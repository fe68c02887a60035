/* SPDX-License-Identifier: MIT */
/*
 * bigsort: merge-sort an array of 64-bit records with a heap footprint of SIZE.
 *
 *   bigsort [SIZE]        SIZE like 512M (default), 64M, 2G; binary units
 *
 * An ordinary program: it knows nothing of upager and allocates with malloc
 * and free, so it can be run under upager-run with a RAM cap far below SIZE.
 *
 * SIZE / 16 records (the array and a temporary buffer of the same size, both
 * malloc'd) are filled from a seeded generator, one in sixteen drawn from a
 * small range so that there are duplicates.  The sort is bottom-up merge
 * sort: first each 1 MiB chunk is sorted on its own (insertion sort of runs
 * of 32, then merges between the chunk and its half of the buffer), then
 * whole-array merge passes ping-pong between array and buffer.  Every pass
 * streams, so the access pattern is sequential.
 *
 * Checks: the result is non-decreasing, and the multiset is unchanged (count,
 * sum, xor and a sum of hashes, taken before and after).
 *
 * Output: one line, byte-identical from run to run.  Exit status 0 when
 * everything checked out, 1 on a mismatch or allocation failure, 2 on a bad
 * argument.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define SEED  0x626967736f7274ULL /* "bigsort" */
#define RUN   32                  /* insertion-sorted run length */
#define CHUNK (1u << 17)          /* records sorted locally: 1 MiB */



struct sums {
	uint64_t sum, xor, hash;
};

static struct sums checksum(const uint64_t *a, size_t n)
{
	struct sums s = { 0, 0, 0 };
	for (size_t i = 0; i < n; i++) {
		s.sum += a[i];
		s.xor ^= a[i];
		s.hash += mix(a[i] ^ SEED);
	}
	return s;
}

static void insertion_sort(uint64_t *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint64_t x = a[i];
		size_t j = i;
		for (; j > 0 && a[j - 1] > x; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/* Stable merge of a[0..na) and b[0..nb) into out; branch-free inner loop. */
static void merge(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, uint64_t *out)
{
	size_t i = 0, j = 0, k = 0;
	while (i < na && j < nb) {
		uint64_t x = a[i], y = b[j];
		int take_b = y < x;
		out[k++] = take_b ? y : x;
		i += !take_b;
		j += take_b;
	}
	memcpy(out + k, a + i, (na - i) * sizeof *a);
	k += na - i;
	memcpy(out + k, b + j, (nb - j) * sizeof *b);
}

/* a[0..n) consists of sorted runs of length run.  Merge them pairwise,
 * alternating between a and tmp; return the buffer that holds the result. */
static uint64_t *merge_passes(uint64_t *a, uint64_t *tmp, size_t n, size_t run)
{
	uint64_t *src = a, *dst = tmp;
	for (size_t w = run; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t na = n - lo < w ? n - lo : w;
			size_t nb = n - lo - na < w ? n - lo - na : w;
			merge(src + lo, na, src + lo + na, nb, dst + lo);
		}
		uint64_t *t = src;
		src = dst;
		dst = t;
	}
	return src;
}

static void sort(uint64_t *a, uint64_t *tmp, size_t n)
{
	for (size_t c = 0; c < n; c += CHUNK) {
		size_t len = n - c < CHUNK ? n - c : CHUNK;
		for (size_t r = 0; r < len; r += RUN)
			insertion_sort(a + c + r, len - r < RUN ? len - r : RUN);
		if (merge_passes(a + c, tmp + c, len, RUN) != a + c)
			memcpy(a + c, tmp + c, len * sizeof *a);
	}
	if (merge_passes(a, tmp, n, CHUNK) != a)
		memcpy(a, tmp, n * sizeof *a);
}

int main(int argc, char **argv)
{
	uint64_t size = 512ULL << 20;
	if (argc > 2 || (argc == 2 && parse_size(argv[1], &size))) {
		fprintf(stderr, "usage: bigsort [SIZE]   (heap footprint such as 512M or 2G; default 512M)\n");
		return 2;
	}
	size_t n = size / 16;
	if (n < 2)
		n = 2;
	uint64_t *a = malloc(n * sizeof *a), *tmp = malloc(n * sizeof *tmp);
	if (!a || !tmp) {
		fprintf(stderr, "bigsort: out of memory for %zu records\n", n);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t x = mix(SEED + i);
		a[i] = (x & 15) ? x : x >> 44;
	}
	struct sums before = checksum(a, n);
	sort(a, tmp, n);
	free(tmp);

	size_t unsorted = 0;
	for (size_t i = 1; i < n; i++)
		if (a[i - 1] > a[i] && unsorted++ < 5)
			fprintf(stderr, "bigsort: a[%zu] = %016llx > a[%zu] = %016llx\n", i - 1,
				(unsigned long long)a[i - 1], i, (unsigned long long)a[i]);
	struct sums after = checksum(a, n);
	int same = before.sum == after.sum && before.xor == after.xor && before.hash == after.hash;
	if (!same)
		fprintf(stderr, "bigsort: multiset changed: sum %016llx -> %016llx, xor %016llx -> %016llx, "
			"hash %016llx -> %016llx\n", (unsigned long long)before.sum, (unsigned long long)after.sum,
			(unsigned long long)before.xor, (unsigned long long)after.xor,
			(unsigned long long)before.hash, (unsigned long long)after.hash);
	printf("bigsort: records=%zu sum=%016llx xor=%016llx hash=%016llx min=%016llx median=%016llx "
	       "max=%016llx sorted=%s multiset=%s\n", n, (unsigned long long)after.sum,
	       (unsigned long long)after.xor, (unsigned long long)after.hash, (unsigned long long)a[0],
	       (unsigned long long)a[n / 2], (unsigned long long)a[n - 1], unsorted ? "NO" : "yes",
	       same ? "preserved" : "CHANGED");
	free(a);
	return unsorted || !same ? 1 : 0;
}
