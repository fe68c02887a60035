/* SPDX-License-Identifier: MIT */
/*
 * A run's timeline, for the HTML report's plot: samples of resident memory
 * and of the running totals of refills and of stall time, taken by the
 * evictor at most once per step.  When the array is full every other
 * sample goes and the step doubles, so a run of any length keeps between
 * UPG_TL_MAX / 2 and UPG_TL_MAX samples, evenly spaced.  Not thread-safe:
 * callers hold up->lock.
 */
#ifndef UPG_TIMELINE_H
#define UPG_TIMELINE_H

#include <stdint.h>

#define UPG_TL_MAX 512

struct upg_tl_sample {
	uint64_t t_ns;           /* since the runtime opened */
	uint64_t resident;       /* bytes */
	uint64_t refills;        /* store reads and pool hits so far */
	uint64_t zero_fills;     /* so far */
	uint64_t stall_some_ns;  /* so far */
};

struct upg_timeline {
	uint32_t n;
	uint64_t step_ns;        /* 0: UPG_TL_FIRST_STEP_NS */
	struct upg_tl_sample s[UPG_TL_MAX];
};

#define UPG_TL_FIRST_STEP_NS (100ULL * 1000 * 1000)

/* Take sample x if a step has passed since the last one. */
void upg_tl_add(struct upg_timeline *tl, const struct upg_tl_sample *x);

#endif
