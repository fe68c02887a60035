/* SPDX-License-Identifier: MIT */
/*
 * Stall figures, like the kernel's pressure-stall information (PSI), for
 * the faults upager serves: the wall time in which at least one thread of
 * the program waited on a fault ("some"), and in which all of them did
 * ("all"), over the whole run and over the last UPG_STALL_RECENT_S seconds.
 *
 * Each fault served is a wait [t0, end]: t0 when a handler read the fault,
 * end when it woke the thread.  The kernel's trap and the hand-off to the
 * handler come before t0, so the figures are lower bounds.  Waits are added
 * as they end, so their ends ascend; a wait adds the time of [t0, end] in
 * which the number of other waits known to cover it was 0 (for "some") or
 * threads - 1 (for "all").  Every point of time is counted once, when the
 * wait that brings its cover to the mark ends, whatever the order the
 * waits began in; the last UPG_STALL_KEEP waits are kept for this, and a
 * wait that outlives them is not seen by later ones.
 *
 * "All" counts the program's threads, idle or not: a thread asleep in
 * poll() is not waiting on a fault, so a program with idle threads shows
 * little of it.  Not thread-safe: callers hold up->lock.
 */
#ifndef UPG_STALL_H
#define UPG_STALL_H

#include <stdbool.h>
#include <stdint.h>

#define UPG_STALL_KEEP 128
#define UPG_STALL_RECENT_S 10
#define UPG_STALL_SECS 16  /* per-second buckets, more than UPG_STALL_RECENT_S */

struct upg_stall {
	struct { uint64_t t0, end; } w[UPG_STALL_KEEP];  /* the last waits, a ring */
	uint32_t head, n;
	uint32_t threads;         /* the program's threads (upager's own not counted); 0: 1 */
	uint64_t start_ns;
	uint64_t some_ns, full_ns;
	uint64_t sec[UPG_STALL_SECS];  /* which second each bucket holds */
	uint64_t sec_some[UPG_STALL_SECS], sec_full[UPG_STALL_SECS];
};

void upg_stall_init(struct upg_stall *s, uint64_t now_ns);
/* A wait from t0 to end (end at or after every earlier wait's end). */
void upg_stall_add(struct upg_stall *s, uint64_t t0, uint64_t end);
/* Over the last UPG_STALL_RECENT_S seconds up to now (less when the run is
 * younger): the window's length and its some and all times. */
void upg_stall_recent(const struct upg_stall *s, uint64_t now_ns, uint64_t *window, uint64_t *some, uint64_t *full);
/* Threads in this process now (/proc/self/stat), or 0 when not known. */
uint32_t upg_stall_process_threads(void);

struct upager_stats;
/* Did the run thrash: a second or more, at least half of it with a thread
 * waiting on a fault, and a quarter or more of the pages brought back
 * (1000 or more) evicted shortly before?  False for stats without the
 * stall fields. */
bool upg_stats_thrashed(const struct upager_stats *st);

#endif
