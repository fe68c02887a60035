/* SPDX-License-Identifier: MIT */
/*
 * userfaultfd: the one place each ioctl is wrapped.  Every function returns
 * 0 or -errno.  The kernel's benign answers are folded in here:
 *   - COPY and MOVE continue after partial progress;
 *   - COPY's -EEXIST (the page is already there) is success.
 * -EAGAIN with no progress is returned: the kernel refuses these ioctls
 * while a REMOVE or UNMAP event waits to be read, so spinning here would
 * livelock.  Handler threads read the events and retry; other threads
 * release uffd_lock, back off and retry.
 */
#ifndef UPG_UFFD_H
#define UPG_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/userfaultfd.h>

/* Constants newer than Debian 12's headers. */
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* Open a userfaultfd that also handles kernel-mode faults and enable the
 * features upager uses.  -EPERM comes with the message naming the fixes. */
int upg_uffd_open(int *fd_out, uint64_t *features_out, char *err, size_t errlen);
int upg_uffd_register(int fd, uintptr_t start, size_t len, bool wp);
int upg_uffd_unregister(int fd, uintptr_t start, size_t len);
/* Copy len bytes from src into the missing range at dst and wake waiters.
 * 4 KiB pages already present are skipped and counted in *existed (bytes;
 * may be NULL).  -ENOENT: the range is no longer mapped. */
int upg_uffd_copy(int fd, uintptr_t dst, const void *src, size_t len, size_t *existed);
/* The same, the pages mapped write-protected when wp: a first write then
 * raises a write-protect fault (a file mapping's way of telling changed
 * pages). */
int upg_uffd_copy_wp(int fd, uintptr_t dst, const void *src, size_t len, size_t *existed, bool wp);
/* The same for one page (of len bytes): a page whose parts the program
 * gave different protections (mprotect) lies in several mappings, and a
 * copy cannot span mappings (-ENOENT): then its 4 KiB parts go in one at
 * a time, waiters woken once at the end.  Parts no longer mapped are
 * passed over; -ENOENT when none is. */
int upg_uffd_copy_page(int fd, uintptr_t dst, const void *src, size_t len, size_t *existed, bool wp);
int upg_uffd_writeprotect(int fd, uintptr_t start, size_t len, bool protect);
int upg_uffd_wake(int fd, uintptr_t start, size_t len);
/* Which of the n 4 KiB pages from addr hold data, read from
 * /proc/self/pagemap (pm_fd): vec[i] is 1 for a page in RAM or swapped out,
 * 0 otherwise.  0 or -errno. */
int upg_pagemap(int pm_fd, uintptr_t addr, size_t n, unsigned char *vec);
/* As upg_pagemap(), but vec[i] is 1 for a page in RAM that this process
 * alone maps (no other process shares it copy-on-write). */
int upg_pagemap_alone(int pm_fd, uintptr_t addr, size_t n, unsigned char *vec);
/* Move present pages [src, src+len) to the empty range at dst; holes in src
 * (and a range no longer mapped) are skipped.  *moved is the bytes
 * processed.  pm_fd: /proc/self/pagemap, or -1. */
int upg_uffd_move(int fd, int pm_fd, uintptr_t dst, uintptr_t src, size_t len, size_t *moved);
int upg_uffd_poison(int fd, uintptr_t start, size_t len);

#endif
