/* SPDX-License-Identifier: MIT */
/*
 * Sealing of stored blocks: every 4 KiB block written to the store carries
 * a CRC-32C, or, with encryption on, is encrypted with XChaCha20-Poly1305
 * under a random per-runtime key.  Checksums, tags and nonce counters live
 * in this process's memory, never in the store file, so a block altered on
 * disk (by a failing device or by anyone who can write the file) fails its
 * check when read back, and the accessor gets SIGBUS instead of the
 * altered data.  The key sits in locked memory excluded from core dumps.
 *
 * Each block written also gets a 64-bit digest of its plaintext: a page
 * read back from the store is mapped writable, with no write-protect fault
 * to see its first write, and the evictor compares it with its digests to
 * tell whether it still holds what the store has (upg_seal_unchanged()).
 *
 * Thread safety: sealing a block and opening it never run at the same time
 * for one block (a block is written only while no one may read it: it is
 * freshly allocated or belongs to a page being evicted), so the per-block
 * arrays need no lock.  The ordering comes from the runtime's lock, taken
 * between the write and any later read.
 */
#ifndef UPG_SEAL_H
#define UPG_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct upg_seal_tag;

struct upg_seal {
	bool encrypt;
	uint64_t blocks;
	uint32_t *crc;               /* per block, checksum mode */
	struct upg_seal_tag *tag;    /* per block, encryption mode */
	size_t arr_len;              /* bytes mapped for crc or tag */
	uint64_t *digest;            /* per block: upg_digest64() of the plaintext written last */
	size_t digest_len;           /* bytes mapped for digest */
	unsigned char *key;          /* encryption mode: locked, read-only */
};

/* Reserve the per-block arrays for a store of blocks 4 KiB blocks (they are
 * touched only where blocks are written).  -ENOTSUP with a message when
 * encryption is asked for and this build has no libsodium. */
int upg_seal_init(struct upg_seal *s, uint64_t blocks, bool encrypt, char *err, size_t errlen);
void upg_seal_fini(struct upg_seal *s);

/* Seal len bytes (whole blocks) about to be written at block first.  In
 * checksum mode records the checksums and returns src; in encryption mode
 * encrypts into out (len bytes) and returns out. */
const void *upg_seal_write(struct upg_seal *s, uint64_t first, const void *src, void *out, size_t len);

/* Check len bytes just read from block first, decrypting them in place.
 * Returns -1 when every block is intact, else the index (from 0) of the
 * first block that is not. */
int64_t upg_seal_read(struct upg_seal *s, uint64_t first, void *buf, size_t len);

/* Whether len bytes (whole blocks) of plaintext are what was last written
 * at block first, by their digests.  A changed block passes only if its
 * digest collides, with odds of 2^-64. */
bool upg_seal_unchanged(const struct upg_seal *s, uint64_t first, const void *data, size_t len);

/* Bytes of the per-block arrays in RAM now (for metadata statistics). */
size_t upg_seal_resident(const struct upg_seal *s);

/* CRC-32C (Castagnoli), as in iSCSI and ext4: crc32c("123456789") is
 * 0xe3069283. */
uint32_t upg_crc32c(uint32_t crc, const void *buf, size_t len);

/* A 64-bit digest of len bytes (a multiple of 32), not a linear code like
 * a CRC: a change of any shape passes unseen with odds of about 2^-64. */
uint64_t upg_digest64(const void *buf, size_t len);

#endif
