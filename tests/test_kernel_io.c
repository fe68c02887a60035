/* SPDX-License-Identifier: MIT */
/*
 * Kernel-mode faults: system calls that read or write paged memory whose
 * pages are not present (evicted to the store, or never touched).  The
 * kernel faults them in through the userfaultfd while it copies, so a
 * write(2) from cold pages and a read(2) into cold pages must move exactly
 * the right bytes.
 *
 * Layout: a region of 8 x the budget is filled page by page with
 * (page index, generation 1), so most of it is evicted.  The first 8 MiB are
 * the source, the range at 16 MiB is the destination (filled and evicted
 * before it is overwritten), and a tail past the filled part is never
 * touched before a pread(2) lands in it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "upager.h"

#define MIB (1ULL << 20)
#define PS 4096u
#define BUDGET (8 * MIB)
#define FILLED (8 * BUDGET)              /* 64 MiB filled with patterns */
#define TAIL (8 * MIB)                   /* never touched before pread */
#define REGION (FILLED + TAIL)
#define NFILLED (FILLED / PS)
#define SRC_PAGE 0                        /* source: pages [0, 2048) */
#define XFER (8 * MIB)
#define XFER_PAGES (XFER / PS)
#define DST_PAGE ((16 * MIB) / PS)        /* destination: pages [4096, 6144) */
#define TAIL_PAGE (FILLED / PS)

static upager_t *up;
static char *base;

static void stats(struct upager_stats *st)
{
	memset(st, 0, sizeof *st);
	st->size = sizeof *st;
	ck_assert_int_eq(upager_stats(up, st), 0);
}

/* Pages of [p, p+len) that are not present (mincore). */
static size_t nonresident(const void *p, size_t len)
{
	size_t n = len / 4096, out = 0;
	unsigned char *vec = malloc(n);
	ck_assert_ptr_nonnull(vec);
	ck_assert_int_eq(mincore((void *)p, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		out += !(vec[i] & 1);
	free(vec);
	return out;
}

/* A temporary file on a disk filesystem (not tmpfs), already unlinked. */
static int temp_file(int extra_flags)
{
	const char *dirs[] = { "/var/tmp", "/tmp", "." };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		int fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC | extra_flags, 0600);
		if (fd >= 0)
			return fd;
	}
	ck_abort_msg("cannot create a temporary file: %s", strerror(errno));
	return -1;
}

static void verify_page(uint64_t page, uint64_t want_index, uint32_t gen, const char *what)
{
	size_t bad = upg_t_check(base + page * PS, PS, want_index, gen);
	ck_assert_msg(bad == 0, "%s: page %llu (expected the pattern of page %llu gen %u) differs at byte %zu",
		      what, (unsigned long long)page, (unsigned long long)want_index, gen, bad - 1);
}

/* Read-verify the filled pages outside [first, first+n) until some page of
 * that range has been evicted.  s3fifo is scan resistant, so one pass may
 * leave pages that were re-referenced in RAM: repeat a few passes. */
static void push_out(uint64_t first, uint64_t n, const char *what)
{
	for (int pass = 0; pass < 8; pass++) {
		for (uint64_t i = 0; i < NFILLED; i++)
			if (i < first || i >= first + n)
				verify_page(i, i, 1, "pressure pass");
		if (nonresident(base + first * PS, n * PS) > 0)
			return;
	}
	ck_abort_msg("%s: no page of [%llu, %llu) was evicted after 8 passes over the rest", what,
		     (unsigned long long)first, (unsigned long long)(first + n));
}

/* Map the region and fill [0, FILLED) so that most of it is evicted. */
static void setup(void)
{
	up = upg_t_open(BUDGET, 0, NULL, 2);
	void *a = NULL;
	ck_assert_int_eq(upager_map(up, REGION, NULL, &a), 0);
	base = a;
	for (uint64_t i = 0; i < NFILLED; i++)
		upg_t_fill(base + i * PS, PS, i, 1);

	struct upager_stats st;
	stats(&st);
	ck_assert_msg(st.evictions > 0, "filling 8x the budget evicted nothing");
	ck_assert_msg(st.writebacks > 0, "filling 8x the budget wrote nothing back");
	size_t cold = nonresident(base + SRC_PAGE * PS, XFER);
	ck_assert_msg(cold > XFER_PAGES / 2, "only %zu of %llu source pages are evicted", cold,
		      (unsigned long long)XFER_PAGES);
	ck_assert_msg(nonresident(base + DST_PAGE * PS, XFER) > XFER_PAGES / 2,
		      "the destination range is mostly resident");
}

static void teardown(void)
{
	if (up) {
		ck_assert_int_eq(upager_unmap(up, base), 0);
		ck_assert_int_eq(upager_close(up), 0);
	}
	up = NULL;
	base = NULL;
}

/* write(2) the whole range in as few calls as the kernel allows. */
static void write_all(int fd, const char *p, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		ck_assert_msg(n > 0, "write(%zu bytes from paged memory) returned %zd: %s", len - done, n,
			      n < 0 ? strerror(errno) : "nothing written");
		done += (size_t)n;
	}
}

static void read_all(int fd, char *p, size_t len, off_t off, int use_pread)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = use_pread ? pread(fd, p + done, len - done, off + (off_t)done)
				      : read(fd, p + done, len - done);
		ck_assert_msg(n > 0, "%s(%zu bytes into paged memory) returned %zd: %s", use_pread ? "pread" : "read",
			      len - done, n, n < 0 ? strerror(errno) : "end of file");
		done += (size_t)n;
	}
}

/* The file holds the source pattern: check it with a private buffer. */
static void check_file(int fd, uint64_t first_index, size_t len)
{
	char *buf = malloc(MIB);
	ck_assert_ptr_nonnull(buf);
	for (size_t off = 0; off < len; off += MIB) {
		ck_assert_int_eq(pread(fd, buf, MIB, (off_t)off), (ssize_t)MIB);
		for (size_t q = 0; q < MIB; q += PS) {
			uint64_t idx = first_index + (off + q) / PS;
			size_t bad = upg_t_check(buf + q, PS, idx, 1);
			ck_assert_msg(!bad, "file offset %zu: not the pattern of page %llu (byte %zu)", off + q,
				      (unsigned long long)idx, bad - 1);
		}
	}
	free(buf);
}

START_TEST(test_write_then_read_cold)
{
	struct upager_stats s0, s1;
	int fd = temp_file(0);

	/* One write(2) of 8 MiB of mostly evicted pages. */
	stats(&s0);
	ssize_t n = write(fd, base + SRC_PAGE * PS, XFER);
	ck_assert_msg(n == (ssize_t)XFER, "one write(2) of %llu bytes from cold pages returned %zd (%s)",
		      (unsigned long long)XFER, n, n < 0 ? strerror(errno) : "short");
	stats(&s1);
	ck_assert_msg(s1.store_reads > s0.store_reads, "the write(2) did not fault pages in from the store");
	check_file(fd, SRC_PAGE, XFER);

	/* read(2) it back over the destination, which was filled and evicted. */
	ck_assert_msg(nonresident(base + DST_PAGE * PS, XFER) > XFER_PAGES / 2,
		      "the destination range is mostly resident before read(2)");
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	read_all(fd, base + DST_PAGE * PS, XFER, 0, 0);

	for (uint64_t i = 0; i < XFER_PAGES; i++)
		verify_page(DST_PAGE + i, SRC_PAGE + i, 1, "after read(2)");
	for (uint64_t i = 0; i < XFER_PAGES; i++)
		verify_page(SRC_PAGE + i, SRC_PAGE + i, 1, "source after write(2)");

	/* Evict the destination and check it again: it must have been
	 * written back with its new contents. */
	push_out(DST_PAGE, XFER_PAGES, "destination after read(2)");
	for (uint64_t i = 0; i < XFER_PAGES; i++)
		verify_page(DST_PAGE + i, SRC_PAGE + i, 1, "after read(2), eviction and refault");
	close(fd);
}
END_TEST

START_TEST(test_pread_untouched)
{
	int fd = temp_file(0);
	write_all(fd, base + SRC_PAGE * PS, XFER);

	struct upager_stats s0, s1;
	stats(&s0);
	read_all(fd, base + TAIL_PAGE * PS, TAIL, 0, 1);
	stats(&s1);
	ck_assert_msg(s1.zero_fills > s0.zero_fills, "pread into untouched pages did not zero-fill them");
	for (uint64_t i = 0; i < TAIL / PS; i++)
		verify_page(TAIL_PAGE + i, SRC_PAGE + i, 1, "after pread into untouched pages");

	/* A pread at an offset, into the middle of untouched... now touched
	 * pages, with a length that is not a multiple of the page size. */
	size_t odd = 3 * PS + 123;
	read_all(fd, base + TAIL_PAGE * PS + 100, odd, 5 * PS, 1);
	const unsigned char *got = (const unsigned char *)base + TAIL_PAGE * PS + 100;
	char *want = malloc(odd);
	ck_assert_int_eq(pread(fd, want, odd, 5 * PS), (ssize_t)odd);
	ck_assert_msg(!memcmp(got, want, odd), "pread of an odd length at an odd address differs");
	free(want);
	/* Restore the first 4 pages of the tail to their pattern for the
	 * eviction check below. */
	for (uint64_t i = 0; i < 4; i++)
		upg_t_fill(base + (TAIL_PAGE + i) * PS, PS, SRC_PAGE + i, 1);

	/* Push the tail out and fault it back. */
	push_out(TAIL_PAGE, TAIL / PS, "tail after pread");
	for (uint64_t i = 0; i < TAIL / PS; i++)
		verify_page(TAIL_PAGE + i, SRC_PAGE + i, 1, "tail after eviction and refault");
	close(fd);
}
END_TEST

/* ---- pipe ---- */

struct drain {
	int fd;
	uint64_t first_index;
	size_t len;
	size_t got;
	size_t bad_at; /* 1 + offset of the first wrong byte; 0: all good */
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	char *page = malloc(PS);
	size_t fill = 0;
	for (;;) {
		ssize_t n = read(d->fd, page + fill, PS - fill);
		if (n <= 0)
			break;
		fill += (size_t)n;
		if (fill == PS) {
			uint64_t idx = d->first_index + d->got / PS;
			size_t bad = upg_t_check(page, PS, idx, 1);
			if (bad && !d->bad_at)
				d->bad_at = d->got + bad;
			d->got += PS;
			fill = 0;
		}
	}
	d->got += fill;
	free(page);
	return NULL;
}

START_TEST(test_write_to_pipe)
{
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	/* Pages [2048, 3072): cold (filled early, then pushed out). */
	uint64_t first = XFER_PAGES;
	size_t len = 4 * MIB;
	ck_assert_msg(nonresident(base + first * PS, len) > 0, "the pipe source is all resident");

	struct drain d = { .fd = pfd[0], .first_index = first, .len = len };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, drain_main, &d), 0);
	struct upager_stats s0, s1;
	stats(&s0);
	write_all(pfd[1], base + first * PS, len);
	close(pfd[1]);
	pthread_join(t, NULL);
	stats(&s1);
	close(pfd[0]);
	ck_assert_msg(d.got == len, "the pipe delivered %zu of %zu bytes", d.got, len);
	ck_assert_msg(!d.bad_at, "byte %zu read from the pipe is wrong", d.bad_at - 1);
	ck_assert_msg(s1.store_reads > s0.store_reads, "writing cold pages to a pipe read nothing from the store");
	for (uint64_t i = 0; i < len / PS; i++)
		verify_page(first + i, first + i, 1, "pipe source after write(2)");
}
END_TEST

/* ---- O_DIRECT: the kernel pins the user pages (get_user_pages) ---- */

START_TEST(test_odirect_cold)
{
	int fd = temp_file(O_DIRECT);
	size_t len = 4 * MIB;
	uint64_t src = XFER_PAGES + 1024; /* pages [3072, 4096): cold */
	ck_assert_msg(nonresident(base + src * PS, len) > 0, "the O_DIRECT source is all resident");
	ssize_t n = pwrite(fd, base + src * PS, len, 0);
	ck_assert_msg(n == (ssize_t)len, "O_DIRECT pwrite from cold pages returned %zd (%s)", n,
		      n < 0 ? strerror(errno) : "short");
	/* Into the destination range, cold as well. */
	ck_assert_msg(nonresident(base + DST_PAGE * PS, len) > 0, "the O_DIRECT destination is all resident");
	n = pread(fd, base + DST_PAGE * PS, len, 0);
	ck_assert_msg(n == (ssize_t)len, "O_DIRECT pread into cold pages returned %zd (%s)", n,
		      n < 0 ? strerror(errno) : "short");
	close(fd);
	for (uint64_t i = 0; i < len / PS; i++)
		verify_page(DST_PAGE + i, src + i, 1, "after O_DIRECT pread");
	/* Evict and refault. */
	push_out(DST_PAGE, len / PS, "O_DIRECT destination");
	for (uint64_t i = 0; i < len / PS; i++)
		verify_page(DST_PAGE + i, src + i, 1, "after O_DIRECT pread, eviction and refault");
}
END_TEST

static Suite *kernel_io_suite(void)
{
	Suite *s = suite_create("kernel_io");
	TCase *tc = tcase_create("syscalls");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_write_then_read_cold);
	tcase_add_test(tc, test_pread_untouched);
	tcase_add_test(tc, test_write_to_pipe);
	tcase_add_test(tc, test_odirect_cold);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(kernel_io_suite());
	fflush(stdout);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
