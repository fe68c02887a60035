/* SPDX-License-Identifier: MIT */
/*
 * libupager-preload.so: LD_PRELOAD it and the program's malloc family is
 * served by jemalloc (Debian's libjemalloc_pic.a, its symbols renamed to
 * upgje_* at build time) whose memory comes from one huge upager region.
 *
 * Who gets which allocator:
 *   - before upager is ready, and on upager's own threads (fault handlers,
 *     evictor; libc and liburing calls made there included): glibc, through
 *     __libc_malloc and friends.  A handler thread touching managed memory
 *     would wait on itself;
 *   - everyone else, once ready: jemalloc in the region.
 * free() and realloc() decide by address, so a block always goes back to
 * the allocator that made it.
 *
 * jemalloc's mmap/munmap/madvise calls are redirected (at build time) to
 * upg_pl_mmap() and friends below, which hand out address ranges of the
 * region.  Its MADV_FREE becomes MADV_DONTNEED, so freed memory really goes
 * back: the range is discarded, RAM and store slots alike, with no I/O.
 */
#include "internal.h"
#include "report_html.h"
#include "options.h"
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT UPG_PL_EXPORT
#define HEAP_MAX (4ULL << 40)
#define HEAP_MIN (1ULL << 30)
#define VA_CAP 65536

/* glibc's allocator, always reachable. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* jemalloc, renamed. */
extern void *upgje_malloc(size_t);
extern void upgje_free(void *);
extern void *upgje_calloc(size_t, size_t);
extern void *upgje_realloc(void *, size_t);
extern int upgje_posix_memalign(void **, size_t, size_t);
extern void *upgje_aligned_alloc(size_t, size_t);
extern void *upgje_memalign(size_t, size_t);
extern void *upgje_valloc(size_t);
extern size_t upgje_malloc_usable_size(void *);

/* jemalloc reads its options from this symbol (renamed malloc_conf).
 * retain: reuse address space instead of unmapping it; muzzy decay 0 and
 * MADV_FREE mapped to DONTNEED: purged pages leave RAM and the store at
 * once; dirty decay 1 s: freed pages do not linger for 10 s and get written
 * to the store in the meantime. */
const char *upgje_malloc_conf = "dss:disabled,retain:true,muzzy_decay_ms:0,dirty_decay_ms:1000,"
				"background_thread:false,metadata_thp:disabled,thp:never";

enum { ST_OFF = 0, ST_INIT, ST_READY, ST_FAILED };
static int state;
static bool is_child;         /* after fork(): the parent's threads serve us */
static uintptr_t heap_lo, heap_hi;
static upager_t *runtime;
static size_t (*libc_usable_size)(void *);

static struct {
	char path[4096];
	bool json, html, on;
	int fd;  /* a private copy of stderr: programs close theirs before exit (ls, sort) */
} report = { .fd = -1 };

/* The report's own copy of stderr sits this high, clear of the low numbers
 * that shells and programs pick for their own redirections. */
#define REPORT_FD_MIN 512

/* ---- address space of the region, for jemalloc ---- */

/* Free ranges, sorted, coalesced.  A leaf lock: nothing else is taken
 * under it.  jemalloc keeps (retains) what it maps, so this stays short. */
static pthread_mutex_t va_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { uintptr_t lo, hi; } va[VA_CAP];
static uint32_t nva;

static void va_insert(uintptr_t lo, uintptr_t hi)
{
	uint32_t i = 0;
	while (i < nva && va[i].lo < lo)
		i++;
	if (i > 0 && va[i - 1].hi == lo) {
		va[i - 1].hi = hi;
		if (i < nva && va[i].lo == hi) {
			va[i - 1].hi = va[i].hi;
			memmove(&va[i], &va[i + 1], (nva - i - 1) * sizeof va[0]);
			nva--;
		}
		return;
	}
	if (i < nva && va[i].lo == hi) {
		va[i].lo = lo;
		return;
	}
	if (nva == VA_CAP)
		return;  /* leak the range: there are terabytes */
	memmove(&va[i + 1], &va[i], (nva - i) * sizeof va[0]);
	va[i].lo = lo;
	va[i].hi = hi;
	nva++;
}

/* Take [lo, lo+len) out of the free ranges; false if not all free. */
static bool va_take_at(uintptr_t lo, size_t len)
{
	for (uint32_t i = 0; i < nva; i++) {
		if (va[i].lo > lo || va[i].hi < lo + len)
			continue;
		uintptr_t a = va[i].lo, b = va[i].hi;
		if (a == lo && b == lo + len) {
			memmove(&va[i], &va[i + 1], (nva - i - 1) * sizeof va[0]);
			nva--;
		} else if (a == lo) {
			va[i].lo = lo + len;
		} else if (b == lo + len) {
			va[i].hi = lo;
		} else {
			va[i].hi = lo;
			va_insert(lo + len, b);
		}
		return true;
	}
	return false;
}

static uintptr_t va_take(size_t len)
{
	for (uint32_t i = 0; i < nva; i++) {
		if (va[i].hi - va[i].lo >= len) {
			uintptr_t lo = va[i].lo;
			va_take_at(lo, len);
			return lo;
		}
	}
	return 0;
}

static bool in_heap(const void *p)
{
	return (uintptr_t)p >= heap_lo && (uintptr_t)p < heap_hi;
}

bool upg_pl_in_heap(const void *p)
{
	return in_heap(p);
}

upager_t *upg_pl_runtime(void)
{
	return __atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_READY ? runtime : NULL;
}

void *upg_pl_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int upg_pl_munmap(void *addr, size_t len);
int upg_pl_madvise(void *addr, size_t len, int advice);
void *upg_pl_sbrk(intptr_t inc);
char *upg_pl_secure_getenv(const char *name);

void *upg_pl_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!heap_lo || fd != -1 || !(flags & MAP_ANONYMOUS) || (flags & MAP_FIXED) || !len)
		return mmap(addr, len, prot, flags, fd, off);
	len = (len + 4095) & ~(size_t)4095;
	pthread_mutex_lock(&va_lock);
	uintptr_t got = 0;
	if (addr && in_heap(addr) && va_take_at((uintptr_t)addr, len))
		got = (uintptr_t)addr;
	else
		got = va_take(len);
	pthread_mutex_unlock(&va_lock);
	if (!got) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (prot != (PROT_READ | PROT_WRITE))
		mprotect((void *)got, len, prot);
	return (void *)got;
}

int upg_pl_munmap(void *addr, size_t len)
{
	if (!in_heap(addr))
		return munmap(addr, len);
	len = (len + 4095) & ~(size_t)4095;
	/* Discard: the handler frees the RAM and the store slots. */
	madvise(addr, len, MADV_DONTNEED);
	mprotect(addr, len, PROT_READ | PROT_WRITE);
	pthread_mutex_lock(&va_lock);
	va_insert((uintptr_t)addr, (uintptr_t)addr + len);
	pthread_mutex_unlock(&va_lock);
	return 0;
}

int upg_pl_madvise(void *addr, size_t len, int advice)
{
	if (in_heap(addr) && advice == MADV_FREE)
		advice = MADV_DONTNEED;
	return madvise(addr, len, advice);
}

void *upg_pl_sbrk(intptr_t inc)
{
	(void)inc;
	errno = ENOMEM;
	return (void *)-1;
}

char *upg_pl_secure_getenv(const char *name)
{
	/* MALLOC_CONF is meant for the program's own jemalloc, if any. */
	if (!strcmp(name, "MALLOC_CONF"))
		return NULL;
	return secure_getenv(name);
}

/* ---- set-up ---- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	(void)!write(2, buf, (size_t)n);
}

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	static const char *names[] = { "error", "warning", "info", "debug" };
	say("upager %s: %s", names[level & 3], msg);
}

static void write_report(void);

static bool parse_report(const char *v)
{
	if (!v)
		return true;
	if (!strcmp(v, "0") || !*v)
		return true;
	report.on = true;
	if (!strcmp(v, "1") || !strcmp(v, "stderr"))
		return true;
	if (!strncmp(v, "json:", 5)) {
		report.json = true;
		v += 5;
		if (!*v || !strcmp(v, "stderr"))
			return true;
	} else if (!strncmp(v, "html:", 5)) {
		report.html = true;
		v += 5;
		if (!*v)
			return false;
	}
	if (strlen(v) >= sizeof report.path)
		return false;
	strcpy(report.path, v);
	return true;
}

static void fail_start(const char *what, const char *why)
{
	say("upager: %s: %s", what, why);
	say("upager: the program was not started; fix the setting above (see `upager-run --help`)");
	_exit(127);
}

__attribute__((constructor(101))) static void preload_init(void)
{
	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != ST_OFF)
		return;
	__atomic_store_n(&state, ST_INIT, __ATOMIC_RELEASE);
	libc_usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");

	struct upager_config cfg;
	char err[768];
	upager_config_init(&cfg);
	if (upager_config_from_env(&cfg, err, sizeof err))
		fail_start("bad environment", err);
	if (!parse_report(secure_getenv("UPAGER_REPORT")))
		fail_start("bad environment", "UPAGER_REPORT must be 1, stderr, a file path, json:PATH or html:PATH "
					      "(with a path, shorter than 4096 bytes)");
	if (!upg_pl_maps_setup(secure_getenv("UPAGER_MMAP")))
		fail_start("bad environment", "UPAGER_MMAP must be off or a size from 4K to 1T, such as 64K "
					      "(the smallest anonymous mmap() paged by upager)");
	cfg.log = log_cb;
	int rc = upager_open(&cfg, &runtime, err, sizeof err);
	/* A process of the tree that became another user (runuser, a daemon
	 * dropping root) and may not use userfaultfd: the program is not
	 * stopped over it, it runs unpaged. */
	if (rc == -EPERM && upg_domain_barred(secure_getenv("UPAGER_TREE"))) {
		say("upager warning: this process runs as another user than upager-run and may not use "
		    "userfaultfd: it runs unpaged, outside the tree's budget");
		__atomic_store_n(&state, ST_FAILED, __ATOMIC_RELEASE);
		return;
	}
	if (rc)
		fail_start("cannot start", err);

	void *heap = NULL;
	for (uint64_t len = HEAP_MAX; len >= HEAP_MIN; len /= 2) {
		rc = upager_map(runtime, len, NULL, &heap);
		if (!rc) {
			heap_lo = (uintptr_t)heap;
			heap_hi = heap_lo + len;
			break;
		}
	}
	if (!heap_lo) {
		snprintf(err, sizeof err, "cannot reserve address space for the heap: %s (check ulimit -v)",
			 strerror(-rc));
		fail_start("cannot start", err);
	}
	va_insert(heap_lo, heap_hi);
	__atomic_store_n(&upg_shared_runtime, runtime, __ATOMIC_RELEASE);
	if (report.on) {
		if (!report.path[0])
			report.fd = fcntl(2, F_DUPFD_CLOEXEC, REPORT_FD_MIN);
		atexit(write_report);
	}
	__atomic_store_n(&state, ST_READY, __ATOMIC_RELEASE);
}

/* The kernel's view of this process: resident now and at peak (VmRSS,
 * VmHWM), in bytes. */
static void kernel_rss(uint64_t *now, uint64_t *peak)
{
	*now = *peak = 0;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	const char *p = strstr(buf, "VmHWM:");
	if (p)
		*peak = strtoull(p + 6, NULL, 10) << 10;
	p = strstr(buf, "VmRSS:");
	if (p)
		*now = strtoull(p + 6, NULL, 10) << 10;
}

#define MIB_F(x) ((double)(x) / (1 << 20))

/* The forecast for larger budgets (see upager_forecast()), appended to the
 * report at buf[n]: a JSON member list, or a text line.  The new length. */
static int forecast_report(bool json, char *buf, int n, size_t len)
{
	static const unsigned quarters[] = { 5, 6, 8, 12, 16 };  /* 1.25x .. 4x */
	struct upager_forecast at = { .size = sizeof at };
	if (n < 0 || (size_t)n >= len || upager_forecast(runtime, 0, &at))
		return n;
	uint64_t budget = at.ram_budget, now = at.refills;
	if (json)
		n += snprintf(buf + n, len - (size_t)n, ",\"footprint\":%llu,\"knee\":%llu,\"forecast\":[",
			      (unsigned long long)at.footprint, (unsigned long long)at.knee);
	else if (now)
		n += snprintf(buf + n, len - (size_t)n, "  with more RAM     refills (estimates, from reuse distances):");
	else
		return n;
	for (unsigned i = 0; i < sizeof quarters / sizeof quarters[0] && (size_t)n < len; i++) {
		if (upager_forecast(runtime, budget * quarters[i] / 4, &at))
			break;
		if (json)
			n += snprintf(buf + n, len - (size_t)n,
				      "%s{\"ram_budget\":%llu,\"refills\":%llu,\"refill_seconds\":%.6f,\"basis\":\"estimate\"}",
				      i ? "," : "", (unsigned long long)at.ram_budget, (unsigned long long)at.refills,
				      at.refill_ns / 1e9);
		else
			n += snprintf(buf + n, len - (size_t)n, "%s %.4gx %.0f MiB %llu (%.1f s)", i ? "," : "",
				      quarters[i] / 4.0, MIB_F(at.ram_budget), (unsigned long long)at.refills,
				      at.refill_ns / 1e9);
	}
	if ((size_t)n >= len)
		return n;
	if (json)
		n += snprintf(buf + n, len - (size_t)n, "]");
	else if (at.knee < at.footprint)
		n += snprintf(buf + n, len - (size_t)n,
			      "; no refill of an evicted page at %.0f MiB\n"
			      "  knee              %.0f MiB: with less RAM, refills climb steeply\n",
			      MIB_F(at.footprint), MIB_F(at.knee));
	else
		n += snprintf(buf + n, len - (size_t)n,
			      "; no refill of an evicted page at %.0f MiB\n"
			      "  knee              none: refills fall evenly with more RAM, up to %.0f MiB\n",
			      MIB_F(at.footprint), MIB_F(at.footprint));
	return n;
}

static void write_report(void)
{
	if (is_child || !runtime)
		return;
	struct upager_stats st = { .size = sizeof st };
	if (upager_stats(runtime, &st))
		return;
	struct upg_pl_maps_stats ms;
	upg_pl_maps_stats(&ms);
	uint64_t rss_now, rss_peak;
	kernel_rss(&rss_now, &rss_peak);
	/* What the kernel held that upager did not: code, stacks, glibc's
	 * own allocations, small, shared and file mappings, raw system calls.
	 * At most: the two peaks need not fall at the same moment. */
	uint64_t outside_now = rss_now > st.resident_bytes ? rss_now - st.resident_bytes : 0;
	uint64_t outside_peak = rss_peak > st.resident_peak ? rss_peak - st.resident_peak : 0;
	bool escaped = rss_peak > (32u << 20) && outside_peak > rss_peak / 2;
	/* The budget's domain: the process tree upager-run started, or this
	 * process alone. */
	const struct upg_domain_area *tree = ((struct upager *)runtime)->dom.a;
	char buf[6144];
	int n;
	if (report.json)
		n = snprintf(buf, sizeof buf,
			     "{\"pid\":%d,\"ram_budget\":%llu,\"resident_peak\":%llu,\"store_bytes\":%llu,\"store_used\":%llu,"
			     "\"zero_fills\":%llu,\"store_reads\":%llu,\"refaults\":%llu,\"readahead_pages\":%llu,"
			     "\"evictions\":%llu,\"writebacks\":%llu,\"clean_drops\":%llu,\"zero_skips\":%llu,"
			     "\"takeout_calls\":%llu,\"takeout_pages\":%llu,\"takeout_alone\":%llu,\"locked_stays\":%llu,"
			     "\"discards\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"fault_seconds\":%.6f,"
			     "\"faults\":%llu,\"fault_p50_us\":%.1f,\"fault_p99_us\":%.1f,\"overshoot_peak\":%llu,"
			     "\"write_errors\":%llu,\"read_errors\":%llu,\"integrity_errors\":%llu,\"poisoned_pages\":%llu,"
			     "\"polls\":%llu,\"poll_hits\":%llu,\"poll_cpu_seconds\":%.6f,"
			     "\"pool_puts\":%llu,\"pool_hits\":%llu,\"pool_rejects\":%llu,\"pool_writebacks\":%llu,"
			     "\"pool_drops\":%llu,\"pool_skips\":%llu,"
			     "\"pool_pages\":%llu,\"pool_bytes\":%llu,\"pool_share_bytes\":%llu,\"pool_share_most\":%llu,"
			     "\"wall_seconds\":%.6f,\"stall_some_seconds\":%.6f,\"stall_all_seconds\":%.6f,"
			     "\"stall_threads\":%u,\"thrashed\":%s,"
			     "\"kernel_rss_peak\":%llu,\"kernel_rss_end\":%llu,\"outside_peak\":%llu,\"outside_end\":%llu,"
			     "\"mmap_min\":%llu,\"mmap_paged_calls\":%llu,\"mmap_paged_peak\":%llu,"
			     "\"mmap_kernel_calls\":%llu,\"mmap_kernel_bytes\":%llu,\"mostly_outside\":%s,"
			     "\"tree_budget\":%llu,\"tree_resident_peak\":%llu,\"tree_processes\":%u",
			     (int)getpid(), (unsigned long long)st.ram_budget, (unsigned long long)st.resident_peak,
			     (unsigned long long)st.store_bytes, (unsigned long long)(st.store_slots_used * 4096),
			     (unsigned long long)st.zero_fills, (unsigned long long)st.store_reads,
			     (unsigned long long)st.refaults, (unsigned long long)st.readahead_pages,
			     (unsigned long long)st.evictions, (unsigned long long)st.writebacks,
			     (unsigned long long)st.clean_drops, (unsigned long long)st.zero_skips,
			     (unsigned long long)st.takeout_calls, (unsigned long long)st.takeout_pages,
			     (unsigned long long)st.takeout_alone, (unsigned long long)st.locked_stays,
			     (unsigned long long)st.discards, (unsigned long long)st.bytes_read,
			     (unsigned long long)st.bytes_written, st.fault_ns_total / 1e9,
			     (unsigned long long)st.fault_count, st.fault_p50_ns / 1e3, st.fault_p99_ns / 1e3,
			     (unsigned long long)st.overshoot_peak, (unsigned long long)st.write_errors,
			     (unsigned long long)st.read_errors, (unsigned long long)st.integrity_errors,
			     (unsigned long long)st.poisoned_pages, (unsigned long long)st.polls,
			     (unsigned long long)st.poll_hits, st.poll_cpu_ns / 1e9, (unsigned long long)st.pool_puts,
			     (unsigned long long)st.pool_hits, (unsigned long long)st.pool_rejects,
			     (unsigned long long)st.pool_writebacks, (unsigned long long)st.pool_drops,
			     (unsigned long long)st.pool_skips, (unsigned long long)st.pool_pages,
			     (unsigned long long)st.pool_bytes, (unsigned long long)st.pool_share_bytes,
			     (unsigned long long)st.pool_share_most, st.wall_ns / 1e9, st.stall_some_ns / 1e9,
			     st.stall_all_ns / 1e9, st.stall_threads, upg_stats_thrashed(&st) ? "true" : "false",
			     (unsigned long long)rss_peak,
			     (unsigned long long)rss_now, (unsigned long long)outside_peak,
			     (unsigned long long)outside_now, (unsigned long long)ms.min_len,
			     (unsigned long long)ms.paged_calls, (unsigned long long)ms.paged_peak,
			     (unsigned long long)ms.kernel_calls, (unsigned long long)ms.kernel_bytes,
			     escaped ? "true" : "false", (unsigned long long)tree->budget,
			     (unsigned long long)__atomic_load_n(&tree->peak, __ATOMIC_RELAXED),
			     __atomic_load_n(&tree->joined, __ATOMIC_RELAXED));
	if (report.json) {
		n = forecast_report(true, buf, n, sizeof buf);
		if (n >= 0 && (size_t)n < sizeof buf)
			n += snprintf(buf + n, sizeof buf - (size_t)n, "}\n");
	} else {
		n = upager_format_stats(&st, buf, sizeof buf);
		if (n >= 0 && (size_t)n < sizeof buf)
			n += snprintf(buf + n, sizeof buf - (size_t)n,
				      "  process           pid %d: kernel RSS %.1f MiB peak, %.1f MiB at exit; "
				      "outside upager at most %.1f MiB at peak, %.1f MiB at exit\n"
				      "  own mmap()s       %llu paged (%.1f MiB at peak), %llu left to the kernel "
				      "(%.1f MiB: %s, shared, stacks)\n"
				      "%s",
				      (int)getpid(), MIB_F(rss_peak), MIB_F(rss_now), MIB_F(outside_peak),
				      MIB_F(outside_now), (unsigned long long)ms.paged_calls, MIB_F(ms.paged_peak),
				      (unsigned long long)ms.kernel_calls, MIB_F(ms.kernel_bytes),
				      ms.min_len ? "smaller than UPAGER_MMAP" : "UPAGER_MMAP=off",
				      escaped ? "  warning           most of this program's memory stayed outside upager, "
						"so --ram did not cap it: see 'What the cap covers' in the README\n"
					      : "");
		n = forecast_report(false, buf, n, sizeof buf);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	const char *out = buf;
	if (report.html) {
		static char page[128 << 10];  /* static: the report is written once, at exit */
		char title[64];
		char comm[16];
		upg_comm(comm);
		snprintf(title, sizeof title, "%s, pid %d", comm, (int)getpid());
		n = upg_html_report(runtime, title, buf, page, sizeof page);
		out = page;
	}
	int fd = report.fd >= 0 ? report.fd : 2;
	if (report.path[0]) {
		/* "%p" in the path becomes the process id: every process of a
		 * pipeline or build writes its own report. */
		char path[sizeof report.path + 16];
		const char *pp = strstr(report.path, "%p");
		if (pp)
			snprintf(path, sizeof path, "%.*s%d%s", (int)(pp - report.path), report.path, (int)getpid(), pp + 2);
		else
			snprintf(path, sizeof path, "%s", report.path);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			say("upager: cannot write the report to %s: %s", path, strerror(errno));
			fd = 2;
		}
	}
	(void)!write(fd, out, (size_t)n);
	if (fd != 2 && fd != report.fd)
		close(fd);
}

/* ---- the malloc family ---- */

static inline bool use_glibc(void)
{
	if (__builtin_expect(__atomic_load_n(&state, __ATOMIC_ACQUIRE) != ST_READY, 0))
		return true;
	return upg_internal_thread;
}

EXPORT void *malloc(size_t n)
{
	if (use_glibc()) {
		if (state == ST_OFF)
			preload_init();
		if (use_glibc())
			return __libc_malloc(n);
	}
	return upgje_malloc(n);
}

EXPORT void free(void *p)
{
	if (!p)
		return;
	if (in_heap(p))
		upgje_free(p);
	else
		__libc_free(p);
}

EXPORT void *calloc(size_t a, size_t b)
{
	if (use_glibc())
		return __libc_calloc(a, b);
	return upgje_calloc(a, b);
}

static size_t usable(void *p)
{
	if (in_heap(p))
		return upgje_malloc_usable_size(p);
	return libc_usable_size ? libc_usable_size(p) : 0;
}

EXPORT void *realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (!n) {
		free(p);
		return NULL;
	}
	bool mine = in_heap(p);
	if (mine && !use_glibc())
		return upgje_realloc(p, n);
	if (!mine && use_glibc())
		return __libc_realloc(p, n);
	/* Crossing allocators: a block from before start-up (or from an
	 * upager thread) grows into the region, or the reverse. */
	void *q = use_glibc() ? __libc_malloc(n) : upgje_malloc(n);
	if (!q)
		return NULL;
	size_t old = usable(p);
	memcpy(q, p, old < n ? old : n);
	free(p);
	return q;
}

EXPORT void *reallocarray(void *p, size_t a, size_t b)
{
	size_t n;
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	if (use_glibc()) {
		void *p = __libc_memalign(align, n);
		if (!p)
			return ENOMEM;
		*out = p;
		return 0;
	}
	return upgje_posix_memalign(out, align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (use_glibc())
		return __libc_memalign(align, n);
	return upgje_aligned_alloc(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
	if (use_glibc())
		return __libc_memalign(align, n);
	return upgje_memalign(align, n);
}

EXPORT void *valloc(size_t n)
{
	return memalign(4096, n);
}

EXPORT void *pvalloc(size_t n)
{
	size_t r = (n + 4095) & ~(size_t)4095;
	return memalign(4096, r ? r : 4096);
}

EXPORT size_t malloc_usable_size(void *p)
{
	return p ? usable(p) : 0;
}
