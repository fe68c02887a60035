/* SPDX-License-Identifier: MIT */
/* Helpers shared by the example workloads, which are otherwise ordinary
 * programs that know nothing of upager. */
#ifndef UPG_EXAMPLE_H
#define UPG_EXAMPLE_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* splitmix64's finaliser: a fixed, well-mixed function of z. */
static inline uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* "512M" -> 512 << 20.  Digits with an optional K, M, G or T. */
static inline int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned shift = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

#endif
