/* SPDX-License-Identifier: MIT */
/*
 * The ground under every module: logging, the fatal exit, the clock, and
 * upager's own threads.
 */
#ifndef UPG_BASE_H
#define UPG_BASE_H

#include <pthread.h>
#include <stdint.h>

struct upager;

/* Set on upager's own threads: the preload library sends their allocations
 * to glibc, never into managed memory (a handler faulting on a page it
 * manages would wait on itself). */
extern __thread int upg_internal_thread;

/* Evaluate expr as upager's own work on an application thread: what it
 * allocates goes to glibc and what it maps to the kernel directly, under
 * the preload library too.  The public entry points that allocate or map
 * run so. */
#define UPG_AS_RUNTIME(expr)                            \
	({                                              \
		int saved_ = upg_internal_thread;       \
		upg_internal_thread = 1;                \
		__typeof__(expr) r_ = (expr);           \
		upg_internal_thread = saved_;           \
		r_;                                     \
	})

void upg_log(struct upager *up, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An internal error the runtime cannot recover from: say so on stderr (and
 * to the log function) and abort, rather than leave faulting threads
 * waiting forever. */
void upg_fatal(struct upager *up, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
uint64_t upg_now_ns(void);
/* This process's name (/proc/self/comm, at most 15 characters), or "". */
void upg_comm(char out[16]);
/* Start one of upager's threads, named name (at most 15 characters: what
 * top -H and perf show), with every signal blocked: a process-directed
 * signal must go to an application thread, whose handler may touch managed
 * memory (on a handler thread it would wait on itself), and upager's waits
 * see no EINTR.  0 or -errno. */
int upg_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg, const char *name);

#endif
