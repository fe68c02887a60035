/* SPDX-License-Identifier: MIT */
/* Shared test helpers: per-page patterns, seeded random numbers, runtime set-up. */
#ifndef UPG_TEST_HELPERS_H
#define UPG_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "upager.h"

/* Exit code that tells meson a test was skipped. */
#define UPG_T_SKIP 77

/* Every 8-byte word of a page is a function of (page index, generation, word). */
void upg_t_fill(void *page, size_t psize, uint64_t index, uint32_t gen);
/* upg_t_fill()'s pages compress about 2.5 times (on: they do not compress
 * at all, as with UPG_TEST_DATA=random).  Set it before filling. */
void upg_t_data_random(int on);
/* 0 when the page holds the pattern; otherwise 1 + the first wrong byte offset. */
size_t upg_t_check(const void *page, size_t psize, uint64_t index, uint32_t gen);
/* Word number word of the pattern upg_t_fill() writes for (index, gen). */
uint64_t upg_t_word(uint64_t index, uint32_t gen, size_t word);
/* 1 when every byte is zero. */
int upg_t_is_zero(const void *p, size_t len);

/* splitmix64: deterministic, seeded. */
uint64_t upg_t_rand(uint64_t *state);
/* Zipf-like: 90% of draws land in the first 10% of [0, n). */
uint64_t upg_t_skewed(uint64_t *state, uint64_t n);
/* The kth page of a scattered order over n pages, each once as k runs from
 * 0 to n - 1 (n not a multiple of 7919): neighbours in k are 7919 pages
 * apart, so that pages filled in this order leave RAM one by one, not in
 * runs of neighbours. */
uint64_t upg_t_scatter(uint64_t k, uint64_t n);

/* Scale a count down under sanitizers or when UPG_TEST_QUICK is set. */
uint64_t upg_t_scale(uint64_t n);

/* Run fn in n threads, the i-th with (void *)i, and join them: the sum of
 * what they returned (as uintptr_t; wrong pages, say). */
uint64_t upg_t_threads_sum(void *(*fn)(void *), unsigned n);

/* Run fn(arg, wfd) in a forked child that writes exactly len bytes of
 * result to wfd and exits 0; read them into res and reap the child.  Fails
 * the test (naming what) if the child dies or writes short. */
void upg_t_run_child(void (*fn)(void *arg, int wfd), void *arg, void *res, size_t len, const char *what);
/* In such a child: write the len bytes of res to wfd and exit (0, or 4
 * when the write comes up short). */
__attribute__((noreturn)) void upg_t_child_return(int wfd, const void *res, size_t len);

/* Entries of a directory, without "." and ".."; -1 when it cannot be read.
 * With "/proc/self/fd" it counts open descriptors (plus the one reading it). */
int upg_t_count_dir(const char *path);
/* This process's open descriptors, less the one reading them: the fewest
 * of several counts 2 ms apart.  An open runtime's evictor opens
 * /proc/self/stat for a moment now and then (src/stall.c), so one count can
 * catch a descriptor that is no leak; a leaked one is in every count. */
int upg_t_count_fds(void);

/* A descriptor of process pid open on a file under dir (the store: its
 * target reads "dir/... (deleted)"), or -1; *count (if not NULL) gets how
 * many there are. */
int upg_t_store_fd(pid_t pid, const char *dir, int *count);

/* Thread ids of this process from /proc/self/task, at most max; the count. */
int upg_t_tasks(int *tids, int max);

/* Number of threads of this process, waiting (up to about 10 s) for it to
 * come down to at most want: the kernel's io_uring workers leave
 * asynchronously after their ring is closed. */
int upg_t_tasks_settle(int want);

/* "tid:name tid:name ..." of this process's threads, for messages. */
const char *upg_t_task_names(char *buf, size_t len);

/* Threads that upager_open() started: the ids in after[] that are not in
 * before[] and are not the kernel's io_uring workers ("iou-*").  Written to
 * out (at most max); returns how many. */
int upg_t_new_threads(const int *before, int nbefore, const int *after, int nafter, int *out, int max);

/* Run fn(arg) with SIGBUS caught: 1 when it raised SIGBUS (fn stopped
 * where it was), 0 when it returned.  A SIGBUS anywhere else ends the
 * process with status 90. */
int upg_t_sigbus(void (*fn)(void *arg), void *arg);

/* The number in environment variable name (decimal, or 0x hex), or def
 * when it is unset or empty.  For diagnostic knobs of the tests. */
uint64_t upg_t_env_u64(const char *name, uint64_t def);

/* Log callback that prints to stderr, for test diagnostics. */
void upg_t_log(void *arg, int level, const char *msg);

/* Open a runtime with a budget and page size and everything else default;
 * aborts the test with the error message on failure. */
upager_t *upg_t_open(uint64_t budget, uint32_t page_size, const char *policy, uint32_t handlers);

/* Apply the suite's settings from the environment to cfg: the compressed
 * pool's UPG_TEST_COMPRESS (upg_t_open_config() does it too). */
void upg_t_config_env(struct upager_config *cfg);

/* The same with a whole configuration (from upager_config_init()); the log
 * goes to stderr, at UPAGER_LOG_WARN or the level in UPG_TEST_LOG. */
upager_t *upg_t_open_config(struct upager_config *cfg);

#endif
