/* SPDX-License-Identifier: MIT */
/*
 * The program's own anonymous mappings, paged.
 *
 * pymalloc's arenas, the V8 and JVM heaps and many hand-made allocators
 * take memory with mmap() through libc, not malloc().  Every private
 * anonymous mmap() of at least UPAGER_MMAP bytes (64 KiB by default) is
 * served from an upager region of its own, made where the kernel would have
 * put the mapping (the address hint, MAP_FIXED and MAP_FIXED_NOREPLACE are
 * honoured), so it counts in the RAM budget and is evicted like the heap.
 *
 * What stays with the kernel, and why:
 *   - shared and file mappings: their pages belong to a file or to other
 *     processes, and the page cache pages them;
 *   - MAP_STACK, MAP_GROWSDOWN (thread stacks: glibc makes them with an
 *     internal call this layer never sees anyway), MAP_HUGETLB, MAP_LOCKED
 *     (the program wants them in RAM) and MAP_32BIT;
 *   - mappings smaller than UPAGER_MMAP: each region costs a VMA, its page
 *     table and a registration, and small ones hold little memory;
 *   - upager's own memory: calls made on its threads, or by the runtime on
 *     the program's threads (upg_internal_thread), go straight to the
 *     kernel, as do calls before start-up and in a forked child;
 *   - raw system calls (Go's runtime): nothing in libc sees them.
 *
 * The kernel's view stays simple: a region's range stays mapped for as
 * long as the region lives.  munmap() of part of it discards those pages
 * (RAM and store slots) and makes them PROT_NONE, so an access faults as it
 * would on unmapped memory and the kernel cannot put another mapping inside
 * a range the runtime still owns.  When no page of a region is mapped any
 * more, the region is released.  MAP_FIXED over a region's range is done in
 * place (discard, then mprotect()).  mremap() shrinks in place, grows in
 * place into the region's unmapped pages, or moves by copying.  mprotect()
 * needs nothing: the kernel splits the registered range and the runtime
 * follows (the evictor reads protected pages through /proc/self/mem).
 *
 * A file or shared mapping put with MAP_FIXED over part of a region is the
 * kernel's ("foreign" pages here: the JVM maps its class-data archive into
 * space it reserved); the runtime discards its own pages there on the
 * kernel's UNMAP event.  When the program unmaps it, the range is reserved
 * and registered again, as unmapped pages of the region.  Such a region is
 * never released: its range is not all upager's.
 *
 * Lock: maps_lock, held across each call, including the madvise() that
 * discards (it waits for a handler thread to read the event, and handler
 * threads never take maps_lock).
 */
/* mmap and mmap64 are both defined here: neither may be renamed to the
 * other (on 64-bit, off_t is 64 bits either way). */
#undef _FILE_OFFSET_BITS
#include "internal.h"
#include "preload.h"
#include "uffd.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAPS_MAX 16384u
#define MIN_DEFAULT (64u << 10)
#define PG 4096u

struct amap {
	uintptr_t base;
	size_t len;
	uint64_t live;      /* pages mapped by the program */
	bool keep;          /* foreign pages were here: never released */
	size_t alloc_len;   /* bytes of this struct with its bitmaps */
	uint64_t *bits;     /* one bit per 4 KiB page: mapped by the program */
	uint64_t *foreign;  /* one bit per page: the kernel's mapping, not ours */
};

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct amap *maps[MAPS_MAX];  /* sorted by base, disjoint */
static uint32_t nmaps;
static uint64_t min_len = MIN_DEFAULT;
static struct upg_pl_maps_stats st;

/* ---- the kernel, directly ---- */

static void *sys_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, a, len, prot, flags, fd, off);
}

static int sys_munmap(void *a, size_t len)
{
	return (int)syscall(SYS_munmap, a, len);
}

static int sys_madvise(void *a, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, a, len, advice);
}

static int sys_mprotect(void *a, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, a, len, prot);
}

/* ---- set-up and statistics ---- */

static void atfork_install(void);

bool upg_pl_maps_setup(const char *v)
{
	/* At start-up, where malloc is glibc's: pthread_atfork() may
	 * allocate, which it must not do inside an allocator's mmap(). */
	atfork_install();
	if (!v || !*v)
		return true;
	if (!strcmp(v, "off") || !strcmp(v, "0")) {
		min_len = 0;
		return true;
	}
	uint64_t n;
	if (upager_parse_size(v, &n) || n < PG || n > (1ULL << 40))
		return false;
	min_len = (n + PG - 1) & ~(uint64_t)(PG - 1);
	return true;
}

void upg_pl_maps_stats(struct upg_pl_maps_stats *out)
{
	pthread_mutex_lock(&maps_lock);
	*out = st;
	out->min_len = min_len;
	pthread_mutex_unlock(&maps_lock);
}

static void lock_prepare(void)
{
	pthread_mutex_lock(&maps_lock);
}

static void lock_release(void)
{
	pthread_mutex_unlock(&maps_lock);
}

static void atfork_install(void)
{
	/* A fork while another thread holds maps_lock must not leave the
	 * child with it locked forever. */
	pthread_atfork(lock_prepare, lock_release, lock_release);
}

/* ---- the table ---- */

static inline bool bit(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

/* Pages [first, first + n) of m with a bit set in b. */
static uint64_t count_bits(const uint64_t *b, uint64_t first, uint64_t n)
{
	uint64_t k = 0;
	if (!b)
		return 0;
	for (uint64_t i = first; i < first + n; i++) {
		if (i % 64 == 0 && first + n - i >= 64) {
			k += (uint64_t)__builtin_popcountll(b[i / 64]);
			i += 63;
			continue;
		}
		k += bit(b, i);
	}
	return k;
}

/* Set (on) or clear bits [first, first + n); returns how many changed. */
static uint64_t set_bits(uint64_t *b, uint64_t first, uint64_t n, bool on)
{
	uint64_t changed = 0;
	for (uint64_t i = first; i < first + n; i++) {
		uint64_t m = 1ULL << (i % 64);
		if (!!(b[i / 64] & m) != on) {
			b[i / 64] ^= m;
			changed++;
		}
	}
	return changed;
}

/* The first map ending after a (index into maps). */
static uint32_t lower_bound(uintptr_t a)
{
	uint32_t lo = 0, hi = nmaps;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (maps[mid]->base + maps[mid]->len <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The map holding all of [a, a + len), or NULL. */
static struct amap *covering(uintptr_t a, size_t len)
{
	uint32_t i = lower_bound(a);
	if (i < nmaps && maps[i]->base <= a && a + len <= maps[i]->base + maps[i]->len)
		return maps[i];
	return NULL;
}

static bool overlaps(uintptr_t a, size_t len)
{
	uint32_t i = lower_bound(a);
	return i < nmaps && maps[i]->base < a + len;
}

static struct amap *amap_new(uintptr_t base, size_t len)
{
	uint64_t pages = len / PG;
	size_t words = (pages + 63) / 64;
	size_t need = (sizeof(struct amap) + 2 * words * 8 + PG - 1) & ~(size_t)(PG - 1);
	struct amap *m = sys_mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				  -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	m->base = base;
	m->len = len;
	m->alloc_len = need;
	m->bits = (uint64_t *)(m + 1);
	m->foreign = m->bits + words;
	return m;
}

static void amap_insert(struct amap *m)
{
	uint32_t i = lower_bound(m->base);
	memmove(&maps[i + 1], &maps[i], (nmaps - i) * sizeof maps[0]);
	maps[i] = m;
	nmaps++;
}

static void amap_release(struct amap *m)
{
	uint32_t i = lower_bound(m->base);
	memmove(&maps[i], &maps[i + 1], (nmaps - i - 1) * sizeof maps[0]);
	nmaps--;
	int rc = UPG_AS_RUNTIME(upager_unmap(upg_pl_runtime(), (void *)m->base));
	if (rc)  /* not the runtime's any more: give it back to the kernel */
		sys_munmap((void *)m->base, m->len);
	sys_munmap(m, m->alloc_len);
}

/* ---- what the calls do to one map ---- */

static void account_live(int64_t pages)
{
	st.paged_now += (uint64_t)(pages * (int64_t)PG);
	if (st.paged_now > st.paged_peak)
		st.paged_peak = st.paged_now;
}

/* Foreign pages of [a, a + len) become the region's again, unmapped: the
 * range is reserved and registered afresh.  The kernel's mapping there
 * must already be gone (unmap) or be replaced (replace). */
static void reclaim_foreign(struct amap *m, uintptr_t a, size_t len)
{
	uint64_t first = (a - m->base) / PG, n = len / PG;
	struct upager *up = (struct upager *)upg_pl_runtime();
	for (uint64_t i = first; i < first + n;) {
		if (!bit(m->foreign, i)) {
			i++;
			continue;
		}
		uint64_t j = i;
		while (j < first + n && bit(m->foreign, j))
			j++;
		void *at = (void *)(m->base + i * PG);
		size_t l = (j - i) * PG;
		void *p = sys_mmap(at, l, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED || upg_uffd_register(up->uffd, (uintptr_t)at, l,
							 up->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
			upg_fatal(up, "cannot take back %zu bytes at %p after the program's mapping there: %s", l, at,
				  strerror(errno));
		set_bits(m->foreign, i, j - i, false);
		i = j;
	}
}

/* The program maps [a, a + len) of m afresh (MAP_FIXED, a revived hint, a
 * grown mremap): zeros, with prot. */
static void map_in_place(struct amap *m, uintptr_t a, size_t len, int prot)
{
	uint64_t first = (a - m->base) / PG, n = len / PG;
	if (count_bits(m->foreign, first, n))
		reclaim_foreign(m, a, len);
	/* Unmapped pages were discarded when they were unmapped. */
	if (count_bits(m->bits, first, n))
		sys_madvise((void *)a, len, MADV_DONTNEED);
	sys_mprotect((void *)a, len, prot);
	account_live((int64_t)set_bits(m->bits, first, n, true));
	m->live = count_bits(m->bits, 0, m->len / PG);
}

/* The program unmaps [a, a + len) of m.  Returns true when m was released. */
static bool unmap_part(struct amap *m, uintptr_t a, size_t len)
{
	uint64_t first = (a - m->base) / PG, n = len / PG;
	if (count_bits(m->foreign, first, n)) {
		sys_munmap((void *)a, len);
		reclaim_foreign(m, a, len);
	} else if (count_bits(m->bits, first, n)) {
		/* Discard: the handler frees their RAM and store slots. */
		sys_madvise((void *)a, len, MADV_DONTNEED);
		sys_mprotect((void *)a, len, PROT_NONE);
	}
	uint64_t gone = set_bits(m->bits, first, n, false);
	m->live -= gone;
	account_live(-(int64_t)gone);
	if (m->live || m->keep)
		return false;
	amap_release(m);
	return true;
}

/* The kernel mapped something else over [a, a + len) (part of m). */
static void mark_foreign(struct amap *m, uintptr_t a, size_t len)
{
	uintptr_t s = a > m->base ? a : m->base;
	uintptr_t e = a + len < m->base + m->len ? a + len : m->base + m->len;
	uint64_t first = (s - m->base) / PG, n = (e - s) / PG;
	uint64_t gone = set_bits(m->bits, first, n, false);
	m->live -= gone;
	account_live(-(int64_t)gone);
	set_bits(m->foreign, first, n, true);
	m->keep = true;
}

/* A new region for the program.  MAP_FAILED with errno, or the address. */
static void *map_new(uintptr_t hint, size_t len, int prot, int mflags)
{
	if (nmaps == MAPS_MAX)
		return NULL;
	void *p;
	int rc = UPG_AS_RUNTIME(upg_map_at((struct upager *)upg_pl_runtime(), hint, len, PG, mflags, &p));
	if (rc == -EEXIST) {
		errno = EEXIST;
		return MAP_FAILED;
	}
	if (rc)
		return NULL;
	struct amap *m = amap_new((uintptr_t)p, len);
	if (!m) {
		UPG_AS_RUNTIME(upager_unmap(upg_pl_runtime(), p));
		return NULL;
	}
	if (prot != (PROT_READ | PROT_WRITE))
		sys_mprotect(p, len, prot);
	m->live = len / PG;
	set_bits(m->bits, 0, m->live, true);
	account_live((int64_t)m->live);
	amap_insert(m);
	st.paged_calls++;
	return p;
}

/* ---- the calls ---- */

static bool runtime_ready(void)
{
	return upg_pl_runtime() && !upg_internal_thread;
}

static bool pageable(int flags, size_t len)
{
	return min_len && runtime_ready() && (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE &&
	       !(flags & (MAP_GROWSDOWN | MAP_STACK | MAP_HUGETLB | MAP_LOCKED | MAP_32BIT)) && len &&
	       len < (1ULL << 46);
}

static void *kernel_map(void *addr, size_t len, int prot, int flags, int fd, off_t off, bool counted)
{
	void *p = sys_mmap(addr, len, prot, flags, fd, off);
	if (counted && p != MAP_FAILED) {  /* maps_lock is not always held here */
		__atomic_fetch_add(&st.kernel_bytes, len, __ATOMIC_RELAXED);
		__atomic_fetch_add(&st.kernel_calls, 1, __ATOMIC_RELAXED);
	}
	return p;
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	bool anon = (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE;
	bool counted = flags & MAP_ANONYMOUS;  /* memory of the program's that the kernel holds */
	if (anon && (flags & MAP_FIXED) && runtime_ready() && upg_pl_in_heap(addr) &&
	    upg_pl_in_heap((char *)addr + len - 1)) {
		/* jemalloc committing heap pages (where the kernel does not
		 * overcommit): zeros in place, the heap stays registered. */
		if (sys_madvise(addr, len, MADV_DONTNEED) || sys_mprotect(addr, len, prot))
			return MAP_FAILED;
		return addr;
	}
	if (!runtime_ready() || (!nmaps && !pageable(flags, len)))
		return kernel_map(addr, len, prot, flags, fd, off, counted && runtime_ready());
	size_t l = (len + PG - 1) & ~(size_t)(PG - 1);
	uintptr_t a = (uintptr_t)addr;
	bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	void *p = NULL;

	pthread_mutex_lock(&maps_lock);
	if (fixed && !(a & (PG - 1)) && l) {
		struct amap *m = covering(a, l);
		if (m && pageable(flags, len)) {
			if ((flags & MAP_FIXED_NOREPLACE) &&
			    (count_bits(m->bits, (a - m->base) / PG, l / PG) ||
			     count_bits(m->foreign, (a - m->base) / PG, l / PG))) {
				errno = EEXIST;
				p = MAP_FAILED;
			} else {
				map_in_place(m, a, l, prot);
				p = addr;
			}
			goto out;
		}
		if (overlaps(a, l)) {
			/* Over part of a region with something else: the
			 * kernel's from now on. */
			p = kernel_map(addr, len, prot, flags, fd, off, counted);
			if (p != MAP_FAILED)
				for (uint32_t i = lower_bound(a); i < nmaps && maps[i]->base < a + l; i++)
					mark_foreign(maps[i], a, l);
			goto out;
		}
	} else if (a && !(a & (PG - 1)) && pageable(flags, len)) {
		/* A hint on unmapped pages of a region: the kernel would
		 * have given the program exactly that. */
		struct amap *m = covering(a, l);
		if (m && !count_bits(m->bits, (a - m->base) / PG, l / PG) &&
		    !count_bits(m->foreign, (a - m->base) / PG, l / PG)) {
			map_in_place(m, a, l, prot);
			p = addr;
			goto out;
		}
	}
	if (pageable(flags, len) && l >= min_len) {
		p = map_new(fixed ? a : a & ~(uintptr_t)(PG - 1), l, prot, flags & (MAP_FIXED | MAP_FIXED_NOREPLACE));
		if (p)
			goto out;
		st.kernel_failed++;
	}
	p = kernel_map(addr, len, prot, flags, fd, off, counted);
out:
	pthread_mutex_unlock(&maps_lock);
	return p;
}

UPG_PL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off);
}

UPG_PL_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off);
}

UPG_PL_EXPORT int munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	if (!runtime_ready() || !nmaps || (a & (PG - 1)) || !len)
		return sys_munmap(addr, len);
	size_t l = (len + PG - 1) & ~(size_t)(PG - 1);
	int rc = 0;
	pthread_mutex_lock(&maps_lock);
	uintptr_t at = a, end = a + l;
	while (at < end) {
		uint32_t i = lower_bound(at);
		if (i == nmaps || maps[i]->base >= end) {
			rc |= sys_munmap((void *)at, end - at);
			break;
		}
		struct amap *m = maps[i];
		if (m->base > at) {
			rc |= sys_munmap((void *)at, m->base - at);
			at = m->base;
		}
		uintptr_t e = end < m->base + m->len ? end : m->base + m->len;
		unmap_part(m, at, e - at);
		at = e;
	}
	pthread_mutex_unlock(&maps_lock);
	return rc ? -1 : 0;
}

UPG_PL_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	uintptr_t a = (uintptr_t)old;
	size_t ol = (old_len + PG - 1) & ~(size_t)(PG - 1), nl = (new_len + PG - 1) & ~(size_t)(PG - 1);
	if (!runtime_ready() || !nmaps || (a & (PG - 1)) || !ol || !nl)
		return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);

	pthread_mutex_lock(&maps_lock);
	struct amap *m = covering(a, ol);
	if (!m || count_bits(m->foreign, (a - m->base) / PG, ol / PG)) {
		pthread_mutex_unlock(&maps_lock);
		return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
	}
	if (!(flags & MREMAP_FIXED) && nl <= ol) {
		if (nl < ol)
			unmap_part(m, a + nl, ol - nl);
		pthread_mutex_unlock(&maps_lock);
		return old;
	}
	if (!(flags & MREMAP_FIXED) && a + nl <= m->base + m->len &&
	    !count_bits(m->bits, (a + ol - m->base) / PG, (nl - ol) / PG) &&
	    !count_bits(m->foreign, (a + ol - m->base) / PG, (nl - ol) / PG)) {
		/* Grow in place over the region's own unmapped pages. */
		map_in_place(m, a + ol, nl - ol, PROT_READ | PROT_WRITE);
		pthread_mutex_unlock(&maps_lock);
		return old;
	}
	pthread_mutex_unlock(&maps_lock);
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	/* Move by copying: the new range is a mapping like any other, and
	 * the copy faults pages through upager as the program would. */
	void *n = mmap(new_addr, nl, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (flags & MREMAP_FIXED ? MAP_FIXED : 0), -1, 0);
	if (n == MAP_FAILED)
		return MAP_FAILED;
	memcpy(n, old, ol < nl ? ol : nl);
	if (flags & MREMAP_DONTUNMAP)
		madvise(old, ol, MADV_DONTNEED);
	else
		munmap(old, ol);
	return n;
}

/* mlockall() would lock the runtime's reservations with the rest: with
 * MCL_CURRENT (or MCL_FUTURE, as the heap grows) the kernel faults in
 * every page of them, through upager, and none of them may leave RAM, so
 * the process fills the machine's memory until the OOM killer ends it (a
 * 256 MiB program at --ram 32M: 24 GiB resident).  And a program that locks
 * its memory to keep secrets off the disk would have them written to the
 * store.  So it is refused, as for a caller without the privilege, with a
 * warning that says what to do. */
UPG_PL_EXPORT int mlockall(int flags)
{
	upager_t *up = upg_pl_runtime();
	if (!up || upg_internal_thread)
		return (int)syscall(SYS_mlockall, flags);
	static int said;
	if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		upg_log(up, UPAGER_LOG_WARN,
			"mlockall() refused (EPERM): upager pages this program's memory to its store on disk, and "
			"locking it would hold every page of upager's reservations in RAM; run the program without "
			"upager, or turn its memory locking off");
	errno = EPERM;
	return -1;
}

UPG_PL_EXPORT int madvise(void *addr, size_t len, int advice)
{
	if (advice == MADV_WIPEONFORK && runtime_ready())
		__atomic_store_n(&upg_pl_runtime()->wipe_advised, true, __ATOMIC_RELAXED);
	if ((advice == MADV_FREE || advice == MADV_HUGEPAGE) && runtime_ready() &&
	    upager_owns(upg_pl_runtime(), addr)) {
		/* MADV_FREE lets the kernel drop pages later without a word
		 * to upager: discard them now instead.  Huge pages would
		 * defeat per-page faults. */
		if (advice == MADV_HUGEPAGE)
			return 0;
		advice = MADV_DONTNEED;
	}
	return sys_madvise(addr, len, advice);
}
