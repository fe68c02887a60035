/* SPDX-License-Identifier: MIT */
#include "seal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "upg_config.h"

#ifdef UPG_HAVE_SODIUM
#include <sodium.h>
#endif

#define BLOCK 4096u

struct upg_seal_tag {
	unsigned char mac[16];
	uint64_t gen;  /* writes of this block so far: the nonce's counter */
};

/* ---- CRC-32C ---- */

static uint32_t crc_table[8][256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* Eight bytes a step through eight tables. */
static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		v ^= crc;
		crc = crc_table[7][v & 0xff] ^ crc_table[6][v >> 8 & 0xff] ^ crc_table[5][v >> 16 & 0xff] ^
		      crc_table[4][v >> 24 & 0xff] ^ crc_table[3][v >> 32 & 0xff] ^ crc_table[2][v >> 40 & 0xff] ^
		      crc_table[1][v >> 48 & 0xff] ^ crc_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}
#endif

static uint32_t (*crc_impl)(uint32_t, const unsigned char *, size_t);

static void crc_pick(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2")) {
		crc_impl = crc_hw;
		return;
	}
#endif
	crc_table_init();
	crc_impl = crc_soft;
}

uint32_t upg_crc32c(uint32_t crc, const void *buf, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, crc_pick);
	return ~crc_impl(~crc, buf, len);
}

/* ---- the plaintext digest ---- */

#define D1 UINT64_C(0x9e3779b185ebca87)
#define D2 UINT64_C(0xc2b2ae3d27d4eb4f)
#define D3 UINT64_C(0x165667b19e3779f9)

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return x << r | x >> (64 - r);
}

/* A bijection of 64 bits that spreads every input bit over the output. */
static inline uint64_t spread(uint64_t x)
{
	x ^= x >> 33;
	x *= D2;
	x ^= x >> 29;
	x *= D3;
	x ^= x >> 32;
	return x;
}

/*
 * Four lanes take every fourth word.  A lane's step is a bijection both of
 * the word (for a given state) and of the state (for a given word), so two
 * inputs that differ in one lane's words leave different lane states, and
 * folding the lanes one after another through bijections keeps a
 * difference in a single lane in the result.  Differences in several lanes
 * meet only by chance.
 */
uint64_t upg_digest64(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t lane[4] = { D1, D2, D3, D1 ^ D2 };
	for (size_t off = 0; off + 32 <= len; off += 32)
		for (unsigned i = 0; i < 4; i++) {
			uint64_t w;
			memcpy(&w, p + off + i * 8, 8);
			lane[i] = rotl64(lane[i] + w * D2, 31) * D1;
		}
	uint64_t h = (uint64_t)len * D3;
	for (unsigned i = 0; i < 4; i++)
		h = rotl64(h ^ spread(lane[i]), 27) * D1 + D3;
	return spread(h);
}

/* ---- the per-block arrays ---- */

int upg_seal_init(struct upg_seal *s, uint64_t blocks, bool encrypt, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->encrypt = encrypt;
	s->blocks = blocks;
	(void)upg_crc32c(0, "", 0);  /* pick the implementation now, not in a fault */
#ifndef UPG_HAVE_SODIUM
	if (encrypt) {
		snprintf(err, errlen, "encryption was asked for (UPAGER_ENCRYPT / encrypt) but this upager was "
			 "built without libsodium: install libsodium-dev and rebuild, or turn encryption off");
		return -ENOTSUP;
	}
#else
	if (encrypt) {
		if (sodium_init() < 0) {
			snprintf(err, errlen, "libsodium failed to initialise; cannot encrypt the store");
			return -EIO;
		}
		/* Locked (never paged out or swapped), guarded, and left out
		 * of core dumps. */
		s->key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
		if (!s->key) {
			snprintf(err, errlen, "cannot allocate locked memory for the store key: raise the "
				 "locked-memory limit (ulimit -l) or turn encryption off");
			return -ENOMEM;
		}
		crypto_aead_xchacha20poly1305_ietf_keygen(s->key);
		sodium_mprotect_readonly(s->key);
	}
#endif
	size_t each = encrypt ? sizeof(struct upg_seal_tag) : sizeof(uint32_t);
	s->arr_len = ((size_t)blocks * each + 4095) & ~(size_t)4095;
	void *m = mmap(NULL, s->arr_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		snprintf(err, errlen, "store checksums: %s", strerror(e));
		upg_seal_fini(s);
		return -e;
	}
	/* Never in a core dump either: with the key gone they are noise,
	 * and a tag table is no one's business. */
	madvise(m, s->arr_len, MADV_DONTDUMP);
	if (encrypt)
		s->tag = m;
	else
		s->crc = m;
	s->digest_len = ((size_t)blocks * sizeof *s->digest + 4095) & ~(size_t)4095;
	m = mmap(NULL, s->digest_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		snprintf(err, errlen, "store digests: %s", strerror(e));
		s->digest = NULL;
		upg_seal_fini(s);
		return -e;
	}
	madvise(m, s->digest_len, MADV_DONTDUMP);
	s->digest = m;
	return 0;
}

void upg_seal_fini(struct upg_seal *s)
{
	void *m = s->encrypt ? (void *)s->tag : (void *)s->crc;
	if (m)
		munmap(m, s->arr_len);
	if (s->digest)
		munmap(s->digest, s->digest_len);
	s->digest = NULL;
#ifdef UPG_HAVE_SODIUM
	if (s->key)
		sodium_free(s->key);  /* zeroes it first */
#endif
	s->tag = NULL;
	s->crc = NULL;
	s->key = NULL;
}

#ifdef UPG_HAVE_SODIUM
static void nonce_of(unsigned char n[24], uint64_t block, uint64_t gen)
{
	memset(n, 0, 24);
	memcpy(n, &block, 8);
	memcpy(n + 8, &gen, 8);
}
#endif

const void *upg_seal_write(struct upg_seal *s, uint64_t first, const void *src, void *out, size_t len)
{
	const unsigned char *in = src;
	for (size_t off = 0; off < len; off += BLOCK)
		s->digest[first + off / BLOCK] = upg_digest64(in + off, BLOCK);
	if (!s->encrypt) {
		for (size_t off = 0; off < len; off += BLOCK)
			s->crc[first + off / BLOCK] = upg_crc32c(0, in + off, BLOCK);
		return src;
	}
#ifdef UPG_HAVE_SODIUM
	unsigned char *o = out;
	for (size_t off = 0; off < len; off += BLOCK) {
		uint64_t b = first + off / BLOCK;
		struct upg_seal_tag *t = &s->tag[b];
		unsigned char nonce[24];
		nonce_of(nonce, b, ++t->gen);  /* a fresh nonce for every write */
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(o + off, t->mac, NULL, in + off, BLOCK,
								    NULL, 0, NULL, nonce, s->key);
	}
	return out;
#else
	(void)out;
	return src;
#endif
}

int64_t upg_seal_read(struct upg_seal *s, uint64_t first, void *buf, size_t len)
{
	unsigned char *p = buf;
	int64_t bad = -1;
	for (size_t off = 0; off < len; off += BLOCK) {
		uint64_t b = first + off / BLOCK;
		bool ok;
		if (!s->encrypt) {
			ok = upg_crc32c(0, p + off, BLOCK) == s->crc[b];
		} else {
#ifdef UPG_HAVE_SODIUM
			const struct upg_seal_tag *t = &s->tag[b];
			unsigned char nonce[24];
			nonce_of(nonce, b, t->gen);
			ok = t->gen && crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
					       p + off, NULL, p + off, BLOCK, t->mac, NULL, 0, nonce, s->key) == 0;
#else
			ok = false;
#endif
		}
		if (!ok && bad < 0)
			bad = (int64_t)(off / BLOCK);
	}
	return bad;
}

bool upg_seal_unchanged(const struct upg_seal *s, uint64_t first, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t off = 0; off < len; off += BLOCK)
		if (upg_digest64(p + off, BLOCK) != s->digest[first + off / BLOCK])
			return false;
	return true;
}

static size_t resident(const void *m, size_t arr_len)
{
	if (!m)
		return 0;
	size_t total = 0;
	unsigned char vec[4096];
	for (size_t off = 0; off < arr_len; off += sizeof vec * 4096) {
		size_t len = arr_len - off < sizeof vec * 4096 ? arr_len - off : sizeof vec * 4096;
		if (mincore((char *)m + off, len, vec))
			return total;
		for (size_t i = 0; i < len / 4096; i++)
			total += (vec[i] & 1) * 4096;
	}
	return total;
}

size_t upg_seal_resident(const struct upg_seal *s)
{
	return resident(s->encrypt ? (const void *)s->tag : (const void *)s->crc, s->arr_len) +
	       resident(s->digest, s->digest_len);
}
