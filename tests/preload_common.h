/* SPDX-License-Identifier: MIT */
/*
 * What the programs run under the preload library (preload_cases.c,
 * preload_maps_cases.c) share: a check that counts a failure and leaves the
 * case, and a seeded word pattern to write and verify.
 */
#ifndef UPG_PRELOAD_COMMON_H
#define UPG_PRELOAD_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MIB (1024 * 1024)

static int failures __attribute__((unused));
#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
			failures++;                                          \
			return;                                              \
		}                                                            \
	} while (0)

static inline uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Word i of [p, p + len) is mix(seed + i). */
static inline void fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = mix(seed + i);
}

/* 0 when p holds fill()'s pattern, or 1 + the offset of the first wrong byte. */
static inline size_t bad_at(const void *p, size_t len, uint64_t seed)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != mix(seed + i))
			return i * 8 + 1;
	return 0;
}

#endif
