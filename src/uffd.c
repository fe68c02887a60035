/* SPDX-License-Identifier: MIT */
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PRIV_FIXES \
	"a userfaultfd that also handles kernel-mode faults needs one of: run as root or with " \
	"CAP_SYS_PTRACE; 'sysctl vm.unprivileged_userfaultfd=1'; or read-write access to " \
	"/dev/userfaultfd (e.g. 'chmod 0666 /dev/userfaultfd' or a group with access)"

static int open_raw(char *err, size_t errlen)
{
	/* No UFFD_USER_MODE_ONLY: with it, read(2) into a swapped-out page
	 * fails with EFAULT instead of faulting the page in. */
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	int e = errno;
	if (e != EPERM && e != EACCES && e != ENOSYS) {
		snprintf(err, errlen, "userfaultfd(): %s", strerror(e));
		return -e;
	}
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		int e2 = errno;
		close(dev);
		if (fd >= 0)
			return fd;
		snprintf(err, errlen, "/dev/userfaultfd: %s; " PRIV_FIXES, strerror(e2));
		return -EPERM;
	}
	if (e == ENOSYS) {
		snprintf(err, errlen, "this kernel has no userfaultfd (CONFIG_USERFAULTFD is off): "
			 "upager needs a Linux kernel built with it");
		return -ENOSYS;
	}
	snprintf(err, errlen, "no privilege for userfaultfd: " PRIV_FIXES);
	return -EPERM;
}

int upg_uffd_open(int *fd_out, uint64_t *features_out, char *err, size_t errlen)
{
	int fd = open_raw(err, errlen);
	if (fd < 0)
		return fd;

	/* Probe: a first UFFDIO_API with no features reports what the kernel
	 * has; the handshake can be done only once per fd, so open again. */
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = errno;
		close(fd);
		snprintf(err, errlen, "UFFDIO_API: %s", strerror(e));
		return -e;
	}
	uint64_t have = api.features;
	close(fd);

	uint64_t need = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
	if ((have & need) != need) {
		snprintf(err, errlen, "this kernel's userfaultfd lacks REMOVE/UNMAP events "
			 "(features %#llx): upager needs Linux 4.11 or later", (unsigned long long)have);
		return -ENOTSUP;
	}
	uint64_t want = need | (have & (UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_MOVE |
					UFFD_FEATURE_POISON | UFFD_FEATURE_THREAD_ID));
	fd = open_raw(err, errlen);
	if (fd < 0)
		return fd;
	api = (struct uffdio_api){ .api = UFFD_API, .features = want };
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = errno;
		close(fd);
		snprintf(err, errlen, "UFFDIO_API with features %#llx: %s",
			 (unsigned long long)want, strerror(e));
		return -e;
	}
	*fd_out = fd;
	*features_out = want;
	return 0;
}

int upg_uffd_register(int fd, uintptr_t start, size_t len, bool wp)
{
	struct uffdio_register r = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	return ioctl(fd, UFFDIO_REGISTER, &r) ? -errno : 0;
}

int upg_uffd_unregister(int fd, uintptr_t start, size_t len)
{
	struct uffdio_range r = { .start = start, .len = len };
	return ioctl(fd, UFFDIO_UNREGISTER, &r) ? -errno : 0;
}

int upg_uffd_copy(int fd, uintptr_t dst, const void *src, size_t len, size_t *existed)
{
	return upg_uffd_copy_wp(fd, dst, src, len, existed, false);
}

int upg_uffd_copy_wp(int fd, uintptr_t dst, const void *src, size_t len, size_t *existed, bool wp)
{
	const char *s = src;
	size_t skipped = 0;
	while (len) {
		struct uffdio_copy c = {
			.dst = dst, .src = (uintptr_t)s, .len = len,
			.mode = wp ? UFFDIO_COPY_MODE_WP : 0,
		};
		int rc = ioctl(fd, UFFDIO_COPY, &c);
		int e = rc ? errno : 0;
		size_t done = c.copy > 0 ? (size_t)c.copy : 0;
		if (!rc)
			break;
		if (e == EEXIST) {
			/* Some page at dst+done is already present: step over
			 * one 4 KiB page and go on.  Waiters were woken by
			 * whoever mapped it, but wake the range to be sure. */
			done += 4096;
			skipped += 4096;
			if (done >= len) {
				upg_uffd_wake(fd, dst, len);
				break;
			}
		} else if (e != EAGAIN || !done) {
			/* -EAGAIN with no progress: an event (REMOVE, UNMAP)
			 * is waiting to be read; the caller must read it. */
			return -e;
		}
		dst += done;
		s += done;
		len -= done;
	}
	if (existed)
		*existed = skipped;
	return 0;
}

int upg_uffd_copy_page(int fd, uintptr_t dst, const void *src, size_t len, size_t *existed, bool wp)
{
	int rc = upg_uffd_copy_wp(fd, dst, src, len, existed, wp);
	if (rc != -ENOENT || len <= 4096)
		return rc;
	size_t skipped = 0, gone = 0;
	rc = 0;
	for (size_t off = 0; off < len && !rc; off += 4096) {
		struct uffdio_copy c = {
			.dst = dst + off, .src = (uintptr_t)src + off, .len = 4096,
			.mode = (wp ? UFFDIO_COPY_MODE_WP : 0) | UFFDIO_COPY_MODE_DONTWAKE,
		};
		if (!ioctl(fd, UFFDIO_COPY, &c))
			continue;
		if (errno == EEXIST)
			skipped += 4096;
		else if (errno == ENOENT)
			gone += 4096;  /* this part unmapped: the others still go in */
		else
			rc = -errno;
	}
	upg_uffd_wake(fd, dst, len);
	if (existed)
		*existed = skipped;
	return rc ? rc : gone == len ? -ENOENT : 0;
}

int upg_uffd_writeprotect(int fd, uintptr_t start, size_t len, bool protect)
{
	struct uffdio_writeprotect w = {
		.range = { .start = start, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	return ioctl(fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

int upg_uffd_wake(int fd, uintptr_t start, size_t len)
{
	struct uffdio_range r = { .start = start, .len = len };
	return ioctl(fd, UFFDIO_WAKE, &r) ? -errno : 0;
}

/* vec[i] for the n pages from addr: in RAM or swapped (bits 63, 62), or
 * when alone, in RAM and mapped by this process only (bits 63 and 56). */
static int pagemap_scan(int pm_fd, uintptr_t addr, size_t n, unsigned char *vec, bool alone)
{
	uint64_t e[512];
	for (size_t i = 0; i < n;) {
		size_t k = n - i < 512 ? n - i : 512;
		ssize_t got = pread(pm_fd, e, k * sizeof e[0], (off_t)((addr / 4096 + i) * sizeof e[0]));
		if (got != (ssize_t)(k * sizeof e[0]))
			return got < 0 ? -errno : -EIO;
		for (size_t j = 0; j < k; j++)
			vec[i + j] = alone ? (e[j] >> 63) & (e[j] >> 56) & 1 : e[j] >> 62 ? 1 : 0;
		i += k;
	}
	return 0;
}

int upg_pagemap(int pm_fd, uintptr_t addr, size_t n, unsigned char *vec)
{
	return pagemap_scan(pm_fd, addr, n, vec, false);
}

int upg_pagemap_alone(int pm_fd, uintptr_t addr, size_t n, unsigned char *vec)
{
	return pagemap_scan(pm_fd, addr, n, vec, true);
}

/* Is the 4 KiB page at addr in RAM or swapped out (1), or not there (0)?
 * -1: cannot tell. */
static int pm_mapped(int pm_fd, uintptr_t addr)
{
	unsigned char v;
	if (pm_fd < 0 || upg_pagemap(pm_fd, addr, 1, &v))
		return -1;
	return v;
}

/*
 * Holes are stepped over here, not with UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: a
 * kernel (seen on 6.18) that retries a page after -EAGAIN keeps the error
 * for the rest of the call, so a hole there makes it loop in the kernel
 * forever, and a page it then moves is reported as not moved (-EEXIST at
 * its destination).  Without the flag a hole ends the call with -ENOENT;
 * the page reported -EEXIST is checked with pagemap.
 */
int upg_uffd_move(int fd, int pm_fd, uintptr_t dst, uintptr_t src, size_t len, size_t *moved)
{
	size_t total = 0;
	while (total < len) {
		struct uffdio_move m = {
			.dst = dst + total, .src = src + total, .len = len - total,
			.mode = UFFDIO_MOVE_MODE_DONTWAKE,
		};
		int rc = ioctl(fd, UFFDIO_MOVE, &m);
		int e = rc ? errno : 0;
		if (m.move > 0)
			total += (size_t)m.move;
		if (!rc) {
			total = len;
			break;
		}
		if (e == EAGAIN && m.move > 0)
			continue;
		if (e == ENOENT) {
			total += 4096;  /* a hole (or no mapping): nothing to move there */
			continue;
		}
		if (e == EEXIST && pm_mapped(pm_fd, src + total) == 0 && pm_mapped(pm_fd, dst + total) == 1) {
			total += 4096;  /* moved, but reported as not */
			continue;
		}
		*moved = total;
		return -e;
	}
	*moved = total;
	return 0;
}

int upg_uffd_poison(int fd, uintptr_t start, size_t len)
{
	struct uffdio_poison p = { .range = { .start = start, .len = len }, .mode = 0 };
	if (!ioctl(fd, UFFDIO_POISON, &p) || errno == EEXIST)
		return 0;
	if (errno != ENOENT || len <= 4096)
		return -errno;
	/* Pages in several mappings (see upg_uffd_copy_page()): 4 KiB at a
	 * time, parts no longer mapped passed over. */
	int rc = 0;
	for (size_t off = 0; off < len; off += 4096) {
		p = (struct uffdio_poison){ .range = { .start = start + off, .len = 4096 }, .mode = 0 };
		if (!ioctl(fd, UFFDIO_POISON, &p) || errno == EEXIST)
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;
		if (!rc)
			rc = -errno;
	}
	return rc;
}
