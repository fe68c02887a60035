/* SPDX-License-Identifier: MIT */
/*
 * The store is tamper-evident: CRC-32C per block, or authenticated
 * encryption when asked for (white-box for the unit parts).
 *
 *   - CRC-32C against published vectors and a bit-at-a-time reference;
 *   - the 64-bit digest that tells clean pages: any one bit flipped, any
 *     word changed, two words swapped, a block moved, all change it; and
 *     upg_seal_unchanged() follows what was written last, in both modes;
 *   - sealing and opening blocks: a flipped byte, a block moved to another
 *     slot, or an older copy of a block put back is caught; encryption
 *     leaves no plaintext and uses a fresh key per runtime;
 *   - under a running process, bytes flipped in the store file: the next
 *     access to each altered page raises SIGBUS, every other page reads
 *     back right, and never is altered data returned.  With encryption the
 *     file holds none of the data in the clear (and without it, the same
 *     check does find it, so the check can fail).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "seal.h"
#include "upager.h"
#include "upg_config.h"

#define PS 4096u
#define BUDGET_PAGES 8u
#define PAGES 64u
#define MARKER "upager-plaintext-marker:"

static uint32_t crc_reference(const unsigned char *p, size_t len)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
	}
	return ~c;
}

START_TEST(test_crc32c_vectors)
{
	ck_assert_uint_eq(upg_crc32c(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(upg_crc32c(0, "", 0), 0);
	unsigned char buf[4096 + 13];
	memset(buf, 0, 32);
	ck_assert_uint_eq(upg_crc32c(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, 32);
	ck_assert_uint_eq(upg_crc32c(0, buf, 32), 0x62a8ab43u);
	uint64_t rng = 7;
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)upg_t_rand(&rng);
	for (size_t len = 0; len < sizeof buf; len += 1 + len / 3)
		for (size_t off = 0; off < 8 && off + len <= sizeof buf; off += 3)
			ck_assert_uint_eq(upg_crc32c(0, buf + off, len), crc_reference(buf + off, len));
	/* Chaining: crc(a || b) from crc(a). */
	ck_assert_uint_eq(upg_crc32c(upg_crc32c(0, buf, 100), buf + 100, 900), crc_reference(buf, 1000));
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

START_TEST(test_digest)
{
	static unsigned char blk[PS];
	uint64_t rng = 11;
	for (size_t i = 0; i < PS; i++)
		blk[i] = (unsigned char)upg_t_rand(&rng);
	uint64_t d0 = upg_digest64(blk, PS);
	ck_assert_uint_eq(upg_digest64(blk, PS), d0);
	/* Every single bit. */
	for (size_t bit = 0; bit < PS * 8; bit++) {
		blk[bit / 8] ^= (unsigned char)(1u << bit % 8);
		ck_assert_msg(upg_digest64(blk, PS) != d0, "bit %zu flipped goes unseen", bit);
		blk[bit / 8] ^= (unsigned char)(1u << bit % 8);
	}
	/* Any word swapped with its neighbour, or with one far away. */
	uint64_t w[PS / 8];
	memcpy(w, blk, PS);
	for (size_t i = 0; i + 1 < PS / 8; i++)
		for (size_t j = i + 1; j < PS / 8; j += j - i < 4 ? 1 : 97) {
			if (w[i] == w[j])
				continue;
			uint64_t c[PS / 8];
			memcpy(c, w, PS);
			c[i] = w[j];
			c[j] = w[i];
			ck_assert_msg(upg_digest64(c, PS) != d0, "words %zu and %zu swapped go unseen", i, j);
		}
	/* A counter through every word position, and all zeros: no two of
	 * these 8 * 512 * 8 + 1 blocks share a digest. */
	size_t n = 0;
	uint64_t *seen = malloc((8 * (PS / 8) * 8 + 1) * sizeof *seen);
	static uint64_t z[PS / 8];
	seen[n++] = upg_digest64(z, PS);
	for (size_t i = 0; i < PS / 8; i++)
		for (uint64_t v = 1; v <= 64; v++) {
			z[i] = v << (v % 8 * 8);
			seen[n++] = upg_digest64(z, PS);
			z[i] = 0;
		}
	qsort(seen, n, sizeof *seen, cmp_u64);
	for (size_t i = 1; i < n; i++)
		ck_assert_msg(seen[i] != seen[i - 1], "two of %zu near-zero blocks share a digest", n);
	free(seen);
}
END_TEST

static int seal_modes(void)
{
#ifdef UPG_HAVE_SODIUM
	return 2;
#else
	return 1;
#endif
}

START_TEST(test_seal_blocks)
{
	if (_i >= seal_modes())
		return;
	bool enc = _i == 1;
	struct upg_seal s;
	char err[256];
	ck_assert_msg(upg_seal_init(&s, 1024, enc, err, sizeof err) == 0, "%s", err);
	static unsigned char page[4 * PS], out[4 * PS], disk[4 * PS], old[PS];
	for (uint32_t b = 0; b < 4; b++)
		upg_t_fill(page + b * PS, PS, b, 1);
	const unsigned char *w = upg_seal_write(&s, 100, page, out, sizeof page);
	ck_assert_ptr_eq(w, enc ? (const void *)out : (const void *)page);
	if (enc)
		for (uint32_t b = 0; b < 4; b++)
			ck_assert_msg(upg_t_check(w + b * PS, PS, b, 1) != 0, "block %u is in the clear", b);
	memcpy(disk, w, sizeof disk);
	ck_assert_int_eq(upg_seal_read(&s, 100, disk, sizeof disk), -1);
	ck_assert_int_eq(memcmp(disk, page, sizeof page), 0);

	/* The digests follow the plaintext written last, block by block. */
	ck_assert(upg_seal_unchanged(&s, 100, page, sizeof page));
	ck_assert(!upg_seal_unchanged(&s, 101, page, PS));  /* another block's content */
	page[3 * PS + 4095] ^= 0x80;
	ck_assert(!upg_seal_unchanged(&s, 100, page, sizeof page));
	ck_assert(upg_seal_unchanged(&s, 100, page, 3 * PS));
	page[3 * PS + 4095] ^= 0x80;

	/* One flipped bit in block 2. */
	memcpy(disk, w, sizeof disk);
	disk[2 * PS + 777] ^= 0x10;
	ck_assert_int_eq(upg_seal_read(&s, 100, disk, sizeof disk), 2);

	/* The same bytes read as if they sat at another slot. */
	memcpy(disk, w, sizeof disk);
	ck_assert_int_ge(upg_seal_read(&s, 101, disk, PS), 0);

	/* An older copy of block 100 put back after a rewrite. */
	memcpy(old, w, PS);
	upg_t_fill(page, PS, 0, 2);
	w = upg_seal_write(&s, 100, page, out, PS);
	memcpy(disk, old, PS);
	if (enc || memcmp(old, w, PS))
		ck_assert_int_eq(upg_seal_read(&s, 100, disk, PS), 0);
	memcpy(disk, w, PS);
	ck_assert_int_eq(upg_seal_read(&s, 100, disk, PS), -1);
	ck_assert_int_eq(upg_t_check(disk, PS, 0, 2), 0);
	ck_assert(upg_seal_unchanged(&s, 100, page, PS));  /* the rewrite's content, not the first */
	static unsigned char first[PS];
	upg_t_fill(first, PS, 0, 1);
	ck_assert(!upg_seal_unchanged(&s, 100, first, PS));
	upg_seal_fini(&s);

	if (enc) {
		/* A fresh random key per runtime: the same block, slot and
		 * write count encrypt differently. */
		struct upg_seal a, b;
		ck_assert_int_eq(upg_seal_init(&a, 16, true, err, sizeof err), 0);
		ck_assert_int_eq(upg_seal_init(&b, 16, true, err, sizeof err), 0);
		static unsigned char ca[PS], cb[PS];
		upg_seal_write(&a, 3, page, ca, PS);
		upg_seal_write(&b, 3, page, cb, PS);
		ck_assert_int_ne(memcmp(ca, cb, PS), 0);
		upg_seal_fini(&a);
		upg_seal_fini(&b);
	}
}
END_TEST

/* ---- flipped bytes under a running process ---- */

struct flip_result {
	unsigned sigbus_pages, verified, wrong, marker_blocks, second_sigbus;
	unsigned long long poisoned, integrity_errors, written;
	unsigned mode, nlink, names;  /* the store file: permissions, links, names in its directory */
	char setup_err[600];
};

static int page_ok(const char *p, uint32_t i)
{
	return !memcmp(p, MARKER, sizeof MARKER - 1) &&
	       upg_t_check(p + 64, PS - 64, i, 1) == 0;
}

struct probe {
	const char *p;
	uint32_t i;
	int ok;
};

static void probe_page(void *arg)
{
	struct probe *q = arg;
	q->ok = page_ok(q->p, q->i);
}

static void flip_child(void *arg, int wfd)
{
	int enc = *(int *)arg;
	struct flip_result res = { 0 };
	signal(SIGALRM, SIG_DFL);
	alarm(60);

	char dir[] = "/var/tmp/upager-seal-XXXXXX";
	if (!mkdtemp(dir)) {
		snprintf(res.setup_err, sizeof res.setup_err, "mkdtemp: %s", strerror(errno));
		goto out;
	}
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET_PAGES * PS;
	cfg.store_path = dir;
	cfg.encrypt = (uint32_t)enc;
	cfg.readahead_max = 1;  /* each page read alone: one altered block, one SIGBUS page */
	char err[512];
	upager_t *up;
	if (upager_open(&cfg, &up, err, sizeof err)) {
		snprintf(res.setup_err, sizeof res.setup_err, "upager_open: %s", err);
		goto out;
	}
	void *mem;
	if (upager_map(up, (size_t)PAGES * PS, NULL, &mem)) {
		snprintf(res.setup_err, sizeof res.setup_err, "upager_map failed");
		goto out;
	}
	char *base = mem;
	for (uint32_t i = 0; i < PAGES; i++) {
		memcpy(base + (size_t)i * PS, MARKER, sizeof MARKER - 1);
		upg_t_fill(base + (size_t)i * PS + 64, PS - 64, i, 1);
	}
	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	res.written = st.writebacks;

	int fd = upg_t_store_fd(getpid(), dir, NULL);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct stat sb;
	if (fd >= 0 && fstat(fd, &sb) == 0) {
		res.mode = sb.st_mode & 07777;
		res.nlink = (unsigned)sb.st_nlink;
	}
	res.names = (unsigned)upg_t_count_dir(dir);
	int rw = fd >= 0 ? open(path, O_RDWR | O_DIRECT) : -1;
	if (rw < 0) {
		snprintf(res.setup_err, sizeof res.setup_err, "cannot open the store (fd %d): %s", fd, strerror(errno));
		goto out;
	}
	void *blk;
	if (posix_memalign(&blk, PS, PS))
		goto out;
	/* Every block the pages can have gone to: look for data in the
	 * clear, then flip one byte. */
	for (uint32_t b = 0; b < 2 * PAGES; b++) {
		if (pread(rw, blk, PS, (off_t)b * PS) != PS)
			break;
		if (memmem(blk, PS, MARKER, sizeof MARKER - 1))
			res.marker_blocks++;
		((unsigned char *)blk)[(b * 131) % PS] ^= 0x01;
		if (pwrite(rw, blk, PS, (off_t)b * PS) != PS) {
			snprintf(res.setup_err, sizeof res.setup_err, "pwrite to the store: %s", strerror(errno));
			goto out;
		}
	}
	close(rw);
	free(blk);

	for (uint32_t i = 0; i < PAGES; i++) {
		struct probe q = { base + (size_t)i * PS, i, 0 };
		if (upg_t_sigbus(probe_page, &q)) {
			res.sigbus_pages++;
			/* Still SIGBUS on the next access: never the bytes. */
			if (upg_t_sigbus(probe_page, &q))
				res.second_sigbus++;
			else if (!q.ok)
				res.wrong++;
			continue;
		}
		if (q.ok)
			res.verified++;
		else
			res.wrong++;
	}
	upager_stats(up, &st);
	res.poisoned = st.poisoned_pages;
	res.integrity_errors = st.integrity_errors;
	upager_unmap(up, mem);
	upager_close(up);
	rmdir(dir);
out:
	upg_t_child_return(wfd, &res, sizeof res);
}

START_TEST(test_flip_under_process)
{
	if (_i >= seal_modes())
		return;
	int enc = _i;
	struct flip_result res;
	upg_t_run_child(flip_child, &enc, &res, sizeof res, "flip child");
	ck_assert_msg(!res.setup_err[0], "%s", res.setup_err);
	/* Private: no name anywhere, readable by its owner only. */
	ck_assert_msg(res.nlink == 0 && res.names == 0, "the store has %u links, %u names in its directory", res.nlink,
		      res.names);
	ck_assert_msg(res.mode == 0600, "the store's mode is %o", res.mode);
	ck_assert_msg(res.written >= PAGES - 2 * BUDGET_PAGES, "only %llu pages were written to the store",
		      res.written);
	ck_assert_msg(res.wrong == 0, "%u pages returned altered data", res.wrong);
	ck_assert_msg(res.sigbus_pages + res.verified == PAGES, "%u SIGBUS + %u verified != %u", res.sigbus_pages,
		      res.verified, PAGES);
	ck_assert_msg(res.sigbus_pages >= PAGES - 2 * BUDGET_PAGES, "only %u of the stored pages raised SIGBUS",
		      res.sigbus_pages);
	ck_assert_uint_eq(res.second_sigbus, res.sigbus_pages);
	ck_assert_uint_eq(res.poisoned, res.sigbus_pages);
	ck_assert_msg(res.integrity_errors >= res.sigbus_pages, "%llu integrity errors for %u pages",
		      res.integrity_errors, res.sigbus_pages);
	if (enc)
		ck_assert_msg(res.marker_blocks == 0, "%u store blocks hold data in the clear", res.marker_blocks);
	else
		ck_assert_msg(res.marker_blocks > 0, "the plaintext check found nothing without encryption");
}
END_TEST

/* Without libsodium, asking for encryption is refused with a message. */
START_TEST(test_encrypt_without_sodium)
{
#ifndef UPG_HAVE_SODIUM
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.encrypt = 1;
	char err[512] = "";
	upager_t *up;
	ck_assert_int_eq(upager_open(&cfg, &up, err, sizeof err), -ENOTSUP);
	ck_assert_msg(strstr(err, "libsodium"), "%s", err);
#endif
}
END_TEST

int main(void)
{
	Suite *s = suite_create("seal");
	TCase *tc = tcase_create("unit");
	tcase_add_test(tc, test_crc32c_vectors);
	tcase_add_test(tc, test_digest);
	tcase_add_loop_test(tc, test_seal_blocks, 0, 2);
	tcase_add_test(tc, test_encrypt_without_sodium);
	suite_add_tcase(s, tc);
	tc = tcase_create("store");
	tcase_add_loop_test(tc, test_flip_under_process, 0, 2);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
