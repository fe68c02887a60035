/* SPDX-License-Identifier: MIT */
/* The data pattern, the random numbers of the workloads and the clocks. */
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
