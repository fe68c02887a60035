/* SPDX-License-Identifier: MIT */
/*
 * upager-bench floor: what a fault through userfaultfd costs on this
 * machine before upager does anything, beside what the disk and the
 * kernel's own fault cost, and the bounds that follow for any pager that
 * serves faults from user space here.
 *
 *   round trip  a thread touches pages of a region registered for missing
 *               faults; a second thread reads each fault message and answers
 *               it with UFFDIO_COPY of a 4 KiB page it holds ready, which
 *               wakes the first.  No I/O: the fault's path alone.  Three
 *               ways: the answering thread sleeping in poll() between faults
 *               (as upager's handlers sleep in their ring), spinning on the
 *               descriptor, and both threads on one CPU.  A fourth way has
 *               no answering thread: with UFFD_FEATURE_SIGBUS the fault
 *               raises SIGBUS in the faulting thread, whose handler makes
 *               the UFFDIO_COPY itself before the access is made again.
 *               The kernel then fails a system call that meets a missing
 *               page with EFAULT instead of waiting, so only a program that
 *               never hands such memory to the kernel could be paged so.
 *   disk        4 KiB O_DIRECT random reads at queue depth 1 through
 *               io_uring, on a file in the store's directory.
 *   kernel      faults on the same file mapped MAP_SHARED after
 *               madvise(MADV_RANDOM), its page cache dropped first: one
 *               4 KiB read a fault, as the kernel's swap-in or file fault at
 *               page-cluster 0.
 *   take-out    what an evictor pays to take a page out of a region
 *               with UFFDIO_MOVE (into a second registered range, as
 *               upager's evictor does): one page a call, as scattered
 *               victims are taken, and 64 neighbours a call, while a
 *               second thread keeps running (as the program does while
 *               its pages are evicted), and one page a call with no other
 *               thread running.  Each call clears page table entries of a
 *               process that may run on another CPU, so each flushes their
 *               TLB entries there, once a call however many pages it moves.
 *               Beside it, scattered pages dropped 64 and 512 a call with
 *               process_madvise(MADV_DONTNEED), the kernel's one batched
 *               way to clear pages that are not neighbours; upager cannot
 *               use it, as its REMOVE events are one a page.
 *
 * A fault that a user-space pager serves from its disk waits for the same
 * read and the round trip besides; one it serves from RAM (a compressed
 * pool) costs at least the round trip.  The figures are means.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* How a round trip's faults are answered. */
enum way { ASLEEP, SPINNING, ONE_CPU, IN_THREAD, NWAYS };

struct answerer {
	int uffd;
	bool spin;
	uintptr_t start;       /* the registered range, unregistered should */
	size_t len;            /* answering fail, to wake the faulting thread */
	const char *page;      /* what every fault is answered with */
	bool stop;
	int rc;                /* 0, or the -errno that ended it */
};

/* Ends the answering with -e: the range unregistered, so that the
 * faulting thread's fault (and every later one) is served by the kernel.
 * false when even that failed. */
static bool give_up(struct answerer *a, int e)
{
	a->rc = -e;
	struct uffdio_range range = { .start = a->start, .len = a->len };
	return ioctl(a->uffd, UFFDIO_UNREGISTER, &range) == 0;
}

/* The in-thread way's answerer: its SIGBUS handler reads it. */
static struct answerer *in_thread;

/* SIGBUS from a missing page of the registered range: map the ready page
 * there, and return to make the access again.  Should the copy fail, the
 * range is unregistered (give_up()), and the access finds memory the
 * kernel gives it.  Any other SIGBUS, or one the range cannot be
 * unregistered for, gets the default action back: returning, the access
 * raises it again and the process ends with it, rather than looping. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	struct answerer *a = in_thread;
	uintptr_t at = (uintptr_t)si->si_addr;
	int e = errno;
	bool served = a && !a->rc && si->si_code == BUS_ADRERR && at >= a->start && at - a->start < a->len;
	if (served) {
		struct uffdio_copy c = { .dst = at & ~4095ULL, .src = (uintptr_t)a->page, .len = 4096 };
		if (ioctl(a->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
			served = give_up(a, errno);
	}
	if (!served) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigaction(SIGBUS, &dfl, NULL);
	}
	errno = e;
}

static void *answer(void *arg)
{
	struct answerer *a = arg;
	int e = 0;
	while (!e && !__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		if (!a->spin) {
			struct pollfd p = { .fd = a->uffd, .events = POLLIN };
			if (poll(&p, 1, 100) < 0 && errno != EINTR) {
				e = errno;
				break;
			}
		}
		struct uffd_msg m;
		ssize_t n = read(a->uffd, &m, sizeof m);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			e = errno;
		else if (n == sizeof m && m.event == UFFD_EVENT_PAGEFAULT) {
			struct uffdio_copy c = { .dst = m.arg.pagefault.address & ~4095ULL,
						 .src = (uintptr_t)a->page, .len = 4096 };
			if (ioctl(a->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
				e = errno;
		}
	}
	if (e)
		give_up(a, e);
	return NULL;
}

static int pin_to(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set) ? -EINVAL : 0;
}

/* A step through n items that visits each once (i * step % n), no two
 * neighbours in a row: a prime that does not divide n. */
static uint64_t coprime_step(uint64_t n)
{
	static const uint64_t primes[] = { 7919, 7907, 7901, 7883 };
	for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++)
		if (n % primes[i])
			return primes[i] % n ? primes[i] : 1;
	return 1;  /* n the product of all four: no such n below 2^51 */
}

/* Pages of the region the round trip touches before it empties it again
 * (untimed), so that it holds 64 MiB at most whatever --faults says. */
#define WINDOW 16384u

/* Mean microseconds of a fault answered from user space the given way
 * over npages touches of distinct pages (in windows of WINDOW, each
 * emptied again before the next), or a negative -errno.  In the in-thread
 * way *efault is then what a read() into a missing page of the range
 * fails with (the errno, EFAULT expected), 0 when it read. */
static double round_trip(uint64_t npages, enum way way, int *efault, char *why, size_t wlen)
{
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) {
		int e = errno;
		snprintf(why, wlen, "userfaultfd(): %s (run as root, or set vm.unprivileged_userfaultfd to 1)",
			 strerror(e));
		return -e;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = way == IN_THREAD ? UFFD_FEATURE_SIGBUS : 0 };
	uint64_t win = npages < WINDOW ? npages : WINDOW;
	size_t len = win * 4096;
	char *region = MAP_FAILED, *page = MAP_FAILED;
	double us = -EINVAL;
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		snprintf(why, wlen, "UFFDIO_API%s: %s", way == IN_THREAD ? " with UFFD_FEATURE_SIGBUS" : "",
			 strerror(errno));
		goto out;
	}
	region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || page == MAP_FAILED) {
		snprintf(why, wlen, "mmap of %zu bytes: %s", len, strerror(errno));
		goto out;
	}
	memset(page, 0x5a, 4096);
	struct uffdio_register reg = { .range = { .start = (uintptr_t)region, .len = len },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		snprintf(why, wlen, "UFFDIO_REGISTER: %s", strerror(errno));
		goto out;
	}
	struct answerer a = { .uffd = uffd, .spin = way == SPINNING, .start = (uintptr_t)region, .len = len,
			      .page = page };
	cpu_set_t before;
	bool pinned = false;
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO }, old;
	if (way == ONE_CPU) {
		int cpu = sched_getcpu();
		if (sched_getaffinity(0, sizeof before, &before) || pin_to(cpu < 0 ? 0 : cpu)) {
			snprintf(why, wlen, "could not put both threads on one CPU (sched_setaffinity refused; a "
				 "cpuset or a container may forbid it)");
			goto out;
		}
		pinned = true;  /* the answering thread inherits it */
	}
	pthread_t t;
	if (way == IN_THREAD) {
		in_thread = &a;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &old)) {
			snprintf(why, wlen, "sigaction(SIGBUS): %s", strerror(errno));
			goto out;
		}
	} else if (pthread_create(&t, NULL, answer, &a)) {
		snprintf(why, wlen, "starting a thread failed");
		goto out_pin;
	}
	/* Every page of a window once, no two neighbours in a row, so the
	 * kernel's fault-around has nothing to map. */
	uint64_t step = coprime_step(win), sum = 0, ns = 0, done = 0;
	while (done < npages && !a.rc) {
		uint64_t n = npages - done < win ? npages - done : win, t0 = now_ns();
		for (uint64_t i = 0; i < n; i++)
			sum += (unsigned char)region[(i * step % win) * 4096];
		ns += now_ns() - t0;
		done += n;
		madvise(region, len, MADV_DONTNEED);  /* missing again */
	}
	if (way == IN_THREAD) {
		/* A system call meeting a missing page: no SIGBUS, no wait. */
		int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		*efault = z < 0 ? -1 : read(z, region, 4096) < 0 ? errno : 0;
		if (z >= 0)
			close(z);
		sigaction(SIGBUS, &old, NULL);
	} else {
		__atomic_store_n(&a.stop, true, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
	}
	if (a.rc) {
		snprintf(why, wlen, "answering a fault: %s", strerror(-a.rc));
		us = a.rc;
	} else if (sum != npages * 0x5a) {
		snprintf(why, wlen, "pages read back wrong (sum %" PRIu64 ", expected %" PRIu64 ")", sum,
			 npages * 0x5a);
		us = -EIO;
	} else {
		us = ns / 1e3 / (double)npages;
	}
out_pin:
	if (pinned)
		sched_setaffinity(0, sizeof before, &before);
out:
	if (region != MAP_FAILED)
		munmap(region, len);
	if (page != MAP_FAILED)
		munmap(page, 4096);
	close(uffd);
	return us;
}

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
struct uffdio_move {
	__u64 dst, src, len, mode;
	__s64 move;
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

/* The take-out's running thread: touches 64 pages of its own until told
 * to stop. */
struct runner {
	volatile char *mem;
	int cpu;
	bool stop;
	uint64_t sum;
};

static void *run_along(void *arg)
{
	struct runner *r = arg;
	pin_to(r->cpu);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
		for (int i = 0; i < 64; i++)
			r->sum += r->mem[i * 4096]++;
	return NULL;
}

static int set_range(int uffd, void *start, size_t len, bool on)
{
	struct uffdio_register reg = { .range = { .start = (uintptr_t)start, .len = len },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	return ioctl(uffd, on ? UFFDIO_REGISTER : UFFDIO_UNREGISTER, on ? (void *)&reg : (void *)&reg.range) ? -errno : 0;
}

/* Mean microseconds to take a page out of a region, per pages a call,
 * over npages pages (in windows of WINDOW, filled again between, untimed),
 * with a second thread running meanwhile on another CPU when busy; or a
 * negative -errno, why saying what failed.  Without zap, with UFFDIO_MOVE
 * of neighbours into a second registered range, what was moved checked
 * page by page.  With zap, scattered pages (no two neighbours in a row)
 * are dropped with one process_madvise(MADV_DONTNEED) a call, the range
 * registered without UFFD_FEATURE_EVENT_REMOVE (with it, each page would
 * be a REMOVE event that the call waits to see read); each is checked to
 * read as zeros after. */
static double take_out(uint64_t npages, uint32_t per, bool busy, bool zap, char *why, size_t wlen)
{
	*why = 0;
	cpu_set_t before;
	int cpus[2], ncpu = 0;
	if (sched_getaffinity(0, sizeof before, &before)) {
		snprintf(why, wlen, "sched_getaffinity: %s", strerror(errno));
		return -errno;
	}
	for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
		if (CPU_ISSET(c, &before))
			cpus[ncpu++] = c;
	if (busy && ncpu < 2) {
		snprintf(why, wlen, "it needs two CPUs, and this process may use one");
		return -ENOTSUP;
	}
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) {
		int e = errno;
		snprintf(why, wlen, "userfaultfd(): %s", strerror(e));
		return -e;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = zap ? 0 : UFFD_FEATURE_MOVE };
	uint64_t win = npages < WINDOW ? npages : WINDOW;
	win -= win % per;
	size_t len = win * 4096;
	char *region = MAP_FAILED, *to = MAP_FAILED, *own = MAP_FAILED;
	char page[4096] __attribute__((aligned(4096))) = { 0 };
	double us = -EINVAL;
	bool pinned = false;
	struct iovec *iov = zap ? calloc(per, sizeof *iov) : NULL;
	int pidfd = zap ? (int)syscall(SYS_pidfd_open, getpid(), 0) : -1;
	if (zap && (!iov || pidfd < 0)) {
		snprintf(why, wlen, "%s%s%s", iov ? "pidfd_open(): " : "out of memory", iov ? strerror(errno) : "",
			 iov ? " (Linux 5.3 or later has it)" : "");
		goto out;
	}
	if (ioctl(uffd, UFFDIO_API, &api) < 0 || (!zap && !(api.features & UFFD_FEATURE_MOVE))) {
		snprintf(why, wlen, "UFFDIO_API%s: %s%s", zap ? "" : " with UFFD_FEATURE_MOVE",
			 strerror(errno ? errno : ENOTSUP), zap ? "" : " (Linux 6.8 or later has it)");
		goto out;
	}
	region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!zap)  /* where UFFDIO_MOVE puts the pages; a drop needs none */
		to = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	own = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || (!zap && to == MAP_FAILED) || own == MAP_FAILED) {
		snprintf(why, wlen, "mmap of %zu bytes: %s", len, strerror(errno));
		goto out;
	}
	/* 4 KiB pages, as a pager's regions have. */
	madvise(region, len, MADV_NOHUGEPAGE);
	if (!zap)
		madvise(to, len, MADV_NOHUGEPAGE);
	memset(own, 1, 64 * 4096);
	int e = -set_range(uffd, region, len, true);
	if (e) {
		snprintf(why, wlen, "UFFDIO_REGISTER: %s", strerror(e));
		goto out;
	}
	/* This thread on one CPU, the running one on another: each move
	 * then has a CPU to flush besides its own. */
	if (busy) {
		if (pin_to(cpus[0])) {
			snprintf(why, wlen, "could not pin a thread to a CPU (sched_setaffinity refused)");
			goto out;
		}
		pinned = true;
	}
	struct runner rn = { .mem = own, .cpu = cpus[ncpu > 1 ? 1 : 0] };
	pthread_t t;
	if (busy && pthread_create(&t, NULL, run_along, &rn)) {
		snprintf(why, wlen, "starting a thread failed");
		goto out;
	}
	uint64_t ns = 0, done = 0, bad = 0;
	while (done < npages && !e) {
		uint64_t n = npages - done < win ? npages - done : win;
		n -= n % per;
		if (!n)
			break;
		/* The program's pages, each its own (a touch would fault:
		 * the range is registered), before the clock. */
		for (uint64_t i = 0; i < n && !e; i++) {
			*(uint64_t *)page = done + i + 1;
			struct uffdio_copy c = { .dst = (uintptr_t)(region + i * 4096), .src = (uintptr_t)page, .len = 4096 };
			if (ioctl(uffd, UFFDIO_COPY, &c) < 0) {
				e = errno;
				snprintf(why, wlen, "UFFDIO_COPY: %s", strerror(e));
			}
		}
		if (!e && !zap && (e = -set_range(uffd, to, len, true)))
			snprintf(why, wlen, "UFFDIO_REGISTER: %s", strerror(e));
		uint64_t step = coprime_step(n), t0 = now_ns();
		for (uint64_t i = 0; i < n && !e; i += per) {
			if (zap) {
				for (uint32_t k = 0; k < per; k++)
					iov[k] = (struct iovec){ region + (i + k) * step % n * 4096, 4096 };
				ssize_t got = syscall(SYS_process_madvise, pidfd, iov, (size_t)per, MADV_DONTNEED, 0);
				if (got != (ssize_t)per * 4096) {
					e = got < 0 ? errno : EIO;
					snprintf(why, wlen, "process_madvise(MADV_DONTNEED) of %u page(s): %s%s", per, strerror(e),
						 e == EINVAL ? " (Linux 6.13 or later lets a process advise itself so)" : "");
				}
				continue;
			}
			struct uffdio_move m = { .dst = (uintptr_t)(to + i * 4096), .src = (uintptr_t)(region + i * 4096),
						 .len = (uint64_t)per * 4096, .mode = UFFDIO_MOVE_MODE_DONTWAKE };
			if (ioctl(uffd, UFFDIO_MOVE, &m) < 0) {
				e = errno;
				snprintf(why, wlen, "UFFDIO_MOVE of %u page(s): %s", per, strerror(e));
			}
		}
		ns += now_ns() - t0;
		/* Read back with the range unregistered: a page that did not
		 * arrive (or was not dropped) reads as zeros (or as itself),
		 * rather than waiting for an answer. */
		if (zap) {
			set_range(uffd, region, len, false);
			for (uint64_t i = 0; i < n && !e; i++)
				bad += *(uint64_t *)(region + i * 4096) != 0;
			madvise(region, len, MADV_DONTNEED);
			if (!e && (e = -set_range(uffd, region, len, true)))
				snprintf(why, wlen, "UFFDIO_REGISTER: %s", strerror(e));
		} else {
			set_range(uffd, to, len, false);
			for (uint64_t i = 0; i < n && !e; i++)
				bad += *(uint64_t *)(to + i * 4096) != done + i + 1;
			madvise(to, len, MADV_DONTNEED);
		}
		done += n;
	}
	if (busy) {
		__atomic_store_n(&rn.stop, true, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
	}
	if (e) {
		us = -e;
	} else if (bad || !done) {
		snprintf(why, wlen, "%" PRIu64 " page(s) %s", bad, zap ? "still there" : "moved wrong");
		us = -EIO;
	} else {
		us = ns / 1e3 / (double)done;
	}
out:
	if (pinned)
		sched_setaffinity(0, sizeof before, &before);
	if (region != MAP_FAILED)
		munmap(region, len);
	if (to != MAP_FAILED)
		munmap(to, len);
	if (own != MAP_FAILED)
		munmap(own, 64 * 4096);
	if (pidfd >= 0)
		close(pidfd);
	free(iov);
	close(uffd);
	return us;
}

/* A file of bytes in dir holding data (reads of unwritten extents cost no
 * I/O), written through the page cache, synced, dropped from it, and
 * unlinked at once (nothing is left behind, whatever ends the run): 0 with
 * a descriptor for the page cache and one with O_DIRECT, or -errno. */
static int make_file(const char *dir, uint64_t bytes, int *fd, int *dfd, char *why, size_t wlen)
{
	char path[600];
	snprintf(path, sizeof path, "%s/upager-bench-floor-%d", dir, (int)getpid());
	*fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (*fd < 0) {
		int e = errno;
		snprintf(why, wlen, "creating %s: %s (the store's directory: choose another with UPAGER_STORE or "
			 "TMPDIR)", path, strerror(e));
		return -e;
	}
	*dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	int e = *dfd < 0 ? errno : 0;
	unlink(path);
	if (e) {
		snprintf(why, wlen, "opening %s with O_DIRECT: %s (its filesystem must support O_DIRECT: choose a "
			 "directory on a disk with UPAGER_STORE or TMPDIR)", path, strerror(e));
		close(*fd);
		return -e;
	}
	static uint64_t buf[1 << 17];  /* 1 MiB */
	for (uint64_t off = 0; off < bytes && !e; off += sizeof buf) {
		for (size_t i = 0; i < sizeof buf / 8; i++)
			buf[i] = mix(off + i * 8);
		if (pwrite(*fd, buf, sizeof buf, (off_t)off) != (ssize_t)sizeof buf) {
			e = errno ? errno : ENOSPC;
			snprintf(why, wlen, "writing %s: %s (it needs %" PRIu64 " MiB free: free some, or choose a "
				 "smaller --file-size)", path, strerror(e), bytes >> 20);
		}
	}
	if (!e && fsync(*fd)) {
		e = errno;
		snprintf(why, wlen, "syncing %s: %s", path, strerror(e));
	}
	if (!e && (e = posix_fadvise(*fd, 0, 0, POSIX_FADV_DONTNEED)))
		snprintf(why, wlen, "dropping %s from the page cache: %s", path, strerror(e));
	if (e) {
		close(*dfd);
		close(*fd);
		return -e;
	}
	return 0;
}

/* Mean microseconds of n 4 KiB O_DIRECT random reads of dfd, one at a
 * time through io_uring (ring_reads() at depth 1), or -errno. */
static double disk_reads(int dfd, uint64_t bytes, uint64_t n, char *why, size_t wlen)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(4, &ring, 0);
	if (rc) {
		snprintf(why, wlen, "io_uring_queue_init: %s (io_uring must be allowed: kernel.io_uring_disabled = 0)",
			 strerror(-rc));
		return rc;
	}
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, 4096)) {
		snprintf(why, wlen, "out of memory for a 4 KiB buffer");
		io_uring_queue_exit(&ring);
		return -ENOMEM;
	}
	uint64_t ops = 0;
	double secs = 0;
	rc = ring_reads(&ring, dfd, bytes, 4096, 1, false, 3600.0, n, buf, &ops, &secs);
	if (!rc && ops < n)
		rc = -ETIMEDOUT;  /* an hour for the reads: a disk that slow is not measured */
	if (rc)
		snprintf(why, wlen, "reading the file with O_DIRECT: %s", strerror(-rc));
	free(buf);
	io_uring_queue_exit(&ring);
	return rc ? rc : secs * 1e6 / (double)ops;
}

/* Mean microseconds of a fault on n distinct pages of fd (in a scattered
 * order), mapped after MADV_RANDOM with the page cache dropped first, or
 * -errno. */
static double kernel_faults(int fd, uint64_t bytes, uint64_t n, char *why, size_t wlen)
{
	int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (e) {
		snprintf(why, wlen, "dropping the file's page cache: %s", strerror(e));
		return -e;
	}
	volatile char *m = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		e = errno;
		snprintf(why, wlen, "mmap of the file: %s", strerror(e));
		return -e;
	}
	madvise((void *)m, bytes, MADV_RANDOM);
	uint64_t blocks = bytes / 4096, step = coprime_step(blocks), t0 = now_ns(), sum = 0;
	for (uint64_t i = 0; i < n; i++)
		sum += (unsigned char)m[(i * step + 12345) % blocks * 4096];
	double us = (now_ns() - t0) / 1e3 / (double)n;
	munmap((void *)m, bytes);
	(void)sum;
	return us;
}

static int usage(FILE *out)
{
	fprintf(out, "usage: " PROG " floor [--faults N] [--reads N] [--file-size SIZE]\n"
		"Measures what a fault answered from user space through userfaultfd costs on this machine, with\n"
		"no I/O (--faults pages, default 200K, touched in windows of 64 MiB), beside 4 KiB O_DIRECT\n"
		"random reads at queue depth 1 (--reads, default 20K) and the kernel's fault on a MADV_RANDOM\n"
		"file mapping, both on a file of --file-size (default 1G) in the store's directory, and prints\n"
		"the bounds that follow; and what taking --faults pages out of a region with UFFDIO_MOVE costs,\n"
		"one page a call and 64 neighbours a call, and dropping scattered pages with process_madvise().\n");
	return out == stdout ? 0 : 2;
}

int floor_main(int argc, char **argv)
{
	uint64_t faults = 200000, reads = 20000, fsize = 1ULL << 30;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return usage(stdout);
		uint64_t *dst = !strcmp(a, "--faults") ? &faults : !strcmp(a, "--reads") ? &reads :
				!strcmp(a, "--file-size") ? &fsize : NULL;
		if (!dst) {
			fprintf(stderr, PROG ": unknown option %s for floor mode\n", a);
			return usage(stderr);
		}
		if (!v || upager_parse_size(v, dst) || *dst < 1000 || (dst == &fsize && *dst < (16ULL << 20))) {
			fprintf(stderr, PROG ": %s needs a number of at least 1000 (sizes: at least 16M, such as 1G)\n",
				a);
			return 2;
		}
		i++;
	}
	fsize &= ~((1ULL << 20) - 1);
	if (reads > fsize / 4096) {
		fprintf(stderr, PROG ": --reads %" PRIu64 " is more than the file's %" PRIu64 " pages: the kernel's "
			"faults must each find a page not read yet; raise --file-size or lower --reads\n", reads,
			fsize / 4096);
		return 2;
	}
	char why[1200] = "", dir[512], note[512];
	struct upager_config cfg;
	upager_config_init(&cfg);
	if (upager_config_from_env(&cfg, why, sizeof why)) {
		fprintf(stderr, PROG ": %s\n", why);
		return 2;
	}
	store_dir(&cfg, dir, sizeof dir, note, sizeof note);

	static const char *const ways[NWAYS] = {
		[ASLEEP] = "answerer sleeping in poll() between faults",
		[SPINNING] = "answerer spinning on the descriptor",
		[ONE_CPU] = "both threads on one CPU",
		[IN_THREAD] = "in the faulting thread (SIGBUS handler)",
	};
	double rt[NWAYS];
	printf("userfaultfd round trip, no I/O (fault, its message read by a second thread or a SIGBUS in the\n"
	       "faulting thread, UFFDIO_COPY of 4 KiB, the access made again), %" PRIu64 " pages touched once each:\n",
	       faults);
	int efault = 0;
	for (int w = 0; w < NWAYS; w++) {
		rt[w] = round_trip(faults, (enum way)w, &efault, why, sizeof why);
		if (rt[w] < 0 && w == IN_THREAD) {
			printf("  %-46s unavailable: %s\n", ways[w], why);  /* the bounds do without it */
		} else if (rt[w] < 0) {
			fprintf(stderr, PROG ": %s\n", why);
			return 1;
		} else {
			printf("  %-46s %8.1f us\n", ways[w], rt[w]);
		}
		fflush(stdout);
	}
	static const struct { uint32_t per; bool busy, zap; const char *what; } outs[] = {
		{ 1, true, false, "one page a call, another thread running" },
		{ 64, true, false, "64 neighbours a call, another thread running" },
		{ 1, false, false, "one page a call, no other thread running" },
		{ 64, true, true, "64 scattered a call, another thread running" },
		{ 512, true, true, "512 scattered a call, another thread running" },
	};
	/* A page a call costs tens of microseconds on some machines: two
	 * windows at most. */
	uint64_t outn = faults < 2 * WINDOW ? faults : 2 * WINDOW;
	outn -= outn % 512;  /* the same pages for each way */
	printf("taking pages out of a region with UFFDIO_MOVE (as an evictor does), %" PRIu64 " pages:\n", outn);
	for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
		if (outs[k].zap && !outs[k - 1].zap)
			printf("dropping them with process_madvise(MADV_DONTNEED), no REMOVE events asked (a pager\n"
			       "that must tell its own drops from the program's cannot go without them):\n");
		double us = take_out(outn, outs[k].per, outs[k].busy, outs[k].zap, why, sizeof why);
		if (us < 0)
			printf("  %-46s unavailable: %s\n", outs[k].what, why);  /* the rest does without it */
		else
			printf("  %-46s %8.2f us a page\n", outs[k].what, us);
		fflush(stdout);
	}
	int fd = -1, dfd = -1;
	if (make_file(dir, fsize, &fd, &dfd, why, sizeof why)) {
		fprintf(stderr, PROG ": %s\n", why);
		return 1;
	}
	double disk = disk_reads(dfd, fsize, reads, why, sizeof why);
	double kern = disk < 0 ? disk : kernel_faults(fd, fsize, reads, why, sizeof why);
	close(dfd);
	close(fd);
	if (disk < 0 || kern < 0) {
		fprintf(stderr, PROG ": %s\n", why);
		return 1;
	}
	printf("on a %" PRIu64 " MiB file in %s (%s), %" PRIu64 " reads each:\n", fsize >> 20, dir, fs_name(dir), reads);
	printf("  %-46s %8.1f us\n", "4 KiB O_DIRECT random read, depth 1, io_uring", disk);
	printf("  %-46s %8.1f us\n", "kernel fault, MAP_SHARED + MADV_RANDOM", kern);
	double thread = rt[ASLEEP];  /* the quickest with an answering thread */
	for (int w = SPINNING; w <= ONE_CPU; w++)
		thread = rt[w] < thread ? rt[w] : thread;
	double best = rt[IN_THREAD] > 0 && rt[IN_THREAD] < thread ? rt[IN_THREAD] : thread;
	printf("bounds for a pager answering faults from user space here:\n");
	printf("  a fault it serves from the disk takes at least %.1f us (the read and the quickest round trip):\n"
	       "    at most %.2fx the kernel's fault on a MADV_RANDOM mapping (%.2fx with an answering thread,\n"
	       "    %.2fx with that thread asleep)\n",
	       disk + best, kern / (disk + best), kern / (disk + thread), kern / (disk + rt[ASLEEP]));
	printf("  a fault it serves from RAM (a compressed pool) takes at least %.1f us, before decompression:\n"
	       "    at most %.2fx the kernel's fault from this disk (a swap-in at page-cluster 0 reads as much;\n"
	       "    %.2fx with an answering thread)\n", best, kern / best, kern / thread);
	if (rt[IN_THREAD] > 0) {
		if (efault > 0)
			printf("  answered in the faulting thread, a read() into a missing page failed with %s instead of\n"
			       "    waiting: a pager of unmodified programs has the ways with an answering thread only\n",
			       efault == EFAULT ? "EFAULT" : strerror(efault));
		else
			printf("  answered in the faulting thread, a read() into a missing page %s\n",
			       efault ? "was not tried (no /dev/zero)" : "was served");
	}
	return 0;
}
