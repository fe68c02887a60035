/* SPDX-License-Identifier: MIT */
/*
 * What the two halves of libupager-preload.so share: preload.c (start-up,
 * the malloc family, the report) and preload_maps.c (the program's own
 * anonymous mmap()s).
 */
#ifndef UPG_PRELOAD_H
#define UPG_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upager.h"

#define UPG_PL_EXPORT __attribute__((visibility("default")))

/* The process's runtime once it is ready; NULL before and when start-up
 * failed. */
upager_t *upg_pl_runtime(void);

/* Is addr in the malloc heap's region? */
bool upg_pl_in_heap(const void *addr);

/* Anonymous mappings of the program (preload_maps.c). */
struct upg_pl_maps_stats {
	uint64_t paged_now;      /* bytes the program has mapped in upager regions now */
	uint64_t paged_peak;
	uint64_t paged_calls;    /* mmap() calls served from upager regions */
	uint64_t kernel_bytes;   /* bytes of anonymous mmap()s left to the kernel */
	uint64_t kernel_calls;
	uint64_t kernel_failed;  /* of those, ones a region could not be made for */
	uint64_t min_len;        /* UPAGER_MMAP: smallest mapping paged; 0: none are */
};
/* Parse UPAGER_MMAP ("off", or a size); false when malformed.  Called
 * once, at start-up. */
bool upg_pl_maps_setup(const char *value);
void upg_pl_maps_stats(struct upg_pl_maps_stats *out);

#endif
