/* SPDX-License-Identifier: MIT */
#include "store.h"
#include "inject.h"
#include "redis.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define BLOCK 4096ULL

static inline bool bit(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}
#define GROW_STEP (64ULL << 20)     /* bytes added per growth, at least */
#define DEFAULT_MAX (64ULL << 30)
/* A pte's slot holds a block number in 29 bits (see upg_slot_store()),
 * with room left for readahead's arithmetic on the last ones. */
#define HARD_MAX (((1ULL << 29) - (1ULL << 20)) * BLOCK)

/* tmpfs takes O_DIRECT since Linux 6.6, but its "disk" is RAM: a store
 * there would keep every swapped-out page in memory. */
static int check_not_ram(int fd, const char *what, char *err, size_t errlen)
{
	struct statfs sf;
	if (fstatfs(fd, &sf))
		return 0;
	if (sf.f_type == 0x01021994 /* TMPFS_MAGIC */ || sf.f_type == 0x858458f6 /* RAMFS_MAGIC */) {
		snprintf(err, errlen, "store location '%s' is on tmpfs or ramfs, which is RAM: swapped-out pages "
			 "would stay in memory; point UPAGER_STORE / store_path at a disk filesystem (ext4, xfs, btrfs)",
			 what);
		return -EINVAL;
	}
	return 0;
}

static int open_tmp_in(const char *dir, char *where, size_t wlen, int *fd_out, char *err, size_t errlen)
{
	struct stat st;
	if (stat(dir, &st)) {
		int e = errno;
		snprintf(err, errlen, "store directory '%s': %s: create it or point UPAGER_STORE / "
			 "store_path at an existing directory on a disk", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "store directory '%s' is not a directory", dir);
		return -ENOTDIR;
	}
	int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (fd >= 0 && upg_inject(UPG_INJ_TMPFILE, 0, 0) == -EOPNOTSUPP) {
		close(fd);
		fd = -1;
		errno = EOPNOTSUPP;
	}
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		/* No O_TMPFILE here: a 0600 file in a fresh 0700 directory,
		 * both unlinked at once, then switched to O_DIRECT (open with
		 * O_DIRECT of a name we just unlinked is impossible).  No
		 * other user can open it even for the instant it has a name. */
		char sub[4096], tmpl[4200];
		snprintf(sub, sizeof sub, "%s/upager-XXXXXX", dir);
		int t = -1;
		if (mkdtemp(sub)) {
			snprintf(tmpl, sizeof tmpl, "%s/store", sub);
			t = open(tmpl, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (t >= 0)
				unlink(tmpl);
			rmdir(sub);
		}
		if (t >= 0) {
			if (fcntl(t, F_SETFL, fcntl(t, F_GETFL) | O_DIRECT) == 0) {
				fd = t;
			} else {
				close(t);
				errno = EINVAL;
			}
		}
	}
	if (fd < 0) {
		int e = errno;
		if (e == EINVAL) {
			struct statfs sf;
			bool tmpfs = !statfs(dir, &sf) && sf.f_type == 0x01021994;
			snprintf(err, errlen, "store directory '%s' does not support O_DIRECT%s: swapped-out "
				 "pages would stay in RAM; point UPAGER_STORE / store_path at a directory on a "
				 "disk filesystem (ext4, xfs, btrfs)", dir, tmpfs ? " (it is tmpfs, which is RAM)" : "");
			return -EINVAL;
		}
		if (e == EROFS || e == EACCES || e == EPERM) {
			snprintf(err, errlen, "cannot create the store in '%s': %s: choose a writable directory "
				 "with UPAGER_STORE / store_path", dir, strerror(e));
			return -e;
		}
		snprintf(err, errlen, "cannot create the store in '%s': %s: point UPAGER_STORE / store_path "
			 "at a writable directory on a disk filesystem", dir, strerror(e));
		return -e;
	}
	int rc = check_not_ram(fd, dir, err, errlen);
	if (rc) {
		close(fd);
		return rc;
	}
	snprintf(where, wlen, "unlinked file in %s", dir);
	*fd_out = fd;
	return 0;
}

int upg_store_open(struct upg_store *s, const char *path, uint64_t max_bytes, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->fd = -1;
	if (!max_bytes)
		max_bytes = DEFAULT_MAX;
	if (max_bytes > HARD_MAX)
		max_bytes = HARD_MAX;
	int fd = -1, rc;
	struct stat st;

	if (upg_redis_url(path)) {
		/* The blocks live on Redis (redis.c): the bitmap names them. */
		s->is_remote = true;
		snprintf(s->where, sizeof s->where, "%s", path);
	} else if (!path || !*path) {
		const char *dir = secure_getenv("TMPDIR");
		if (!dir || !*dir)
			dir = "/tmp";
		rc = open_tmp_in(dir, s->where, sizeof s->where, &fd, err, errlen);
		if (rc == -EINVAL && strcmp(dir, "/var/tmp")) {
			/* $TMPDIR is often tmpfs; /var/tmp is on disk by convention. */
			char first[512];
			snprintf(first, sizeof first, "%s", err);
			rc = open_tmp_in("/var/tmp", s->where, sizeof s->where, &fd, err, errlen);
			if (rc)
				snprintf(err, errlen, "%s (and /var/tmp failed too)", first);
		}
		if (rc)
			return rc;
	} else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = open_tmp_in(path, s->where, sizeof s->where, &fd, err, errlen);
		if (rc)
			return rc;
	} else if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC | O_EXCL);
		if (fd < 0) {
			int e = errno;
			snprintf(err, errlen, "store device '%s': %s", path, strerror(e));
			return -e;
		}
		uint64_t bytes = 0;
		if (ioctl(fd, BLKGETSIZE64, &bytes)) {
			int e = errno;
			close(fd);
			snprintf(err, errlen, "store device '%s': cannot read its size: %s", path, strerror(e));
			return -e;
		}
		if (bytes < max_bytes)
			max_bytes = bytes;
		s->is_blockdev = true;
		snprintf(s->where, sizeof s->where, "device %s", path);
	} else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "store path '%s' is neither a directory, a regular file nor a block device "
			 "(a character device, FIFO or socket cannot hold pages): point UPAGER_STORE / store_path "
			 "at a directory on a disk, a regular file or a block device", path);
		return -EINVAL;
	} else {
		fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
		if (fd < 0) {
			int e = errno;
			/* A missing "dir/" is EISDIR from O_CREAT: say what is missing. */
			if (e == EISDIR) {
				snprintf(err, errlen, "store directory '%s' does not exist: create it or point "
					 "UPAGER_STORE / store_path at an existing directory on a disk", path);
				return -ENOENT;
			}
			const char *hint = e == ENOENT ? ": its directory does not exist or cannot hold files; create it or choose another path"
				: e == ENOTDIR ? ": a part of the path is not a directory; choose another path"
				: e == EINVAL ? ": the filesystem does not support O_DIRECT (tmpfs?); choose a path on a disk"
				: (e == EROFS || e == EACCES || e == EPERM) ? ": choose a writable location" : ": choose another location";
			snprintf(err, errlen, "store file '%s': %s%s with UPAGER_STORE / store_path", path, strerror(e),
				 hint);
			return -e;
		}
		int rc2 = check_not_ram(fd, path, err, errlen);
		if (rc2) {
			close(fd);
			return rc2;
		}
		if (ftruncate(fd, 0)) {
			int e = errno;
			close(fd);
			snprintf(err, errlen, "store file '%s': truncate: %s", path, strerror(e));
			return -e;
		}
		snprintf(s->where, sizeof s->where, "file %s", path);
	}

	s->fd = fd;
	s->max_blocks = max_bytes / BLOCK;
	if (s->is_blockdev || s->is_remote)
		s->size_blocks = s->max_blocks;
	size_t words = (s->max_blocks + 63) / 64;
	s->bitmap_len = (words * 8 + 4095) & ~4095ULL;
	s->bitmap = mmap(NULL, s->bitmap_len * 3, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->bitmap != MAP_FAILED) {
		s->frozen = (uint64_t *)((char *)s->bitmap + s->bitmap_len);
		s->zombie = (uint64_t *)((char *)s->bitmap + 2 * s->bitmap_len);
	}
	if (s->bitmap == MAP_FAILED) {
		int e = errno;
		close(fd);
		s->fd = -1;
		snprintf(err, errlen, "store bitmap: %s", strerror(e));
		return -e;
	}
	return 0;
}

void upg_store_forget(struct upg_store *s)
{
	if (s->bitmap && s->bitmap != MAP_FAILED)
		munmap(s->bitmap, s->bitmap_len * 3);
	s->bitmap = NULL;
	s->fd = -1;
}

void upg_store_close(struct upg_store *s)
{
	if (s->bitmap && s->bitmap != MAP_FAILED)
		munmap(s->bitmap, s->bitmap_len * 3);
	if (s->fd >= 0) {
		if (!s->is_blockdev)
			(void)!ftruncate(s->fd, 0);
		close(s->fd);
	}
	s->fd = -1;
	s->bitmap = NULL;
}


static void set_range(uint64_t *b, uint64_t first, uint64_t n, bool on)
{
	for (uint64_t i = first; i < first + n; i++) {
		if (on)
			b[i / 64] |= 1ULL << (i % 64);
		else
			b[i / 64] &= ~(1ULL << (i % 64));
	}
}

/* Find n free blocks at a multiple of align in [from, to). */
static bool find_run(const struct upg_store *s, uint64_t from, uint64_t to, uint32_t n, uint32_t align,
		     uint64_t *out)
{
	uint64_t i = (from + align - 1) / align * align;
	while (i + n <= to) {
		/* Skip full words quickly. */
		if (i % 64 == 0 && s->bitmap[i / 64] == ~0ULL) {
			i += 64;
			continue;
		}
		uint32_t k = 0;
		while (k < n && !bit(s->bitmap, i + k))
			k++;
		if (k == n) {
			*out = i;
			return true;
		}
		/* Restart past the used block, aligned. */
		i = (i + k + 1 + align - 1) / align * align;
	}
	return false;
}

int upg_store_alloc(struct upg_store *s, uint32_t n, uint32_t align, uint64_t *first)
{
	if (!n || !align)
		return -EINVAL;
	if (s->used_blocks + n > s->size_blocks)
		return -ENOSPC;
	uint64_t at;
	if (!find_run(s, s->cursor, s->size_blocks, n, align, &at) &&
	    !find_run(s, 0, s->size_blocks, n, align, &at))
		return -ENOSPC;
	set_range(s->bitmap, at, n, true);
	s->used_blocks += n;
	s->cursor = at + n;
	*first = at;
	return 0;
}

void upg_store_free(struct upg_store *s, uint64_t first, uint32_t n)
{
	if (s->nfrozen && upg_store_is_frozen(s, first, n)) {
		set_range(s->zombie, first, n, true);
		return;
	}
	set_range(s->bitmap, first, n, false);
	s->used_blocks -= n;
}

void upg_store_freeze(struct upg_store *s, uint64_t first, uint32_t n)
{
	set_range(s->frozen, first, n, true);
	s->nfrozen += n;
}

bool upg_store_is_frozen(const struct upg_store *s, uint64_t first, uint32_t n)
{
	if (!s->nfrozen)
		return false;
	for (uint64_t i = first; i < first + n; i++)
		if (bit(s->frozen, i))
			return true;
	return false;
}

void upg_store_unfreeze(struct upg_store *s)
{
	memset(s->frozen, 0, (s->size_blocks + 63) / 64 * sizeof s->frozen[0]);
	s->nfrozen = 0;
}

void upg_store_reap(struct upg_store *s)
{
	uint64_t words = (s->size_blocks + 63) / 64;
	for (uint64_t w = 0; w < words; w++) {
		uint64_t z = s->zombie[w] & ~s->frozen[w];
		if (z) {
			s->bitmap[w] &= ~z;
			s->used_blocks -= (uint64_t)__builtin_popcountll(z);
			s->zombie[w] &= ~z;
		}
	}
}

bool upg_store_has_room(const struct upg_store *s, uint64_t want)
{
	return s->used_blocks + want <= s->size_blocks;
}

/* Make blocks [from, to) of the file real; -1 with errno. */
static int extend(int fd, uint64_t from, uint64_t to)
{
	int inj = upg_inject(UPG_INJ_EXTEND, 0, 0);
	if (inj < 0) {
		errno = -inj;
		return -1;
	}
	int rc = fallocate(fd, 0, (off_t)(from * BLOCK), (off_t)((to - from) * BLOCK));
	if (rc && (errno == EOPNOTSUPP || errno == ENOSYS))
		rc = ftruncate(fd, (off_t)(to * BLOCK));
	return rc;
}

int upg_store_grow(struct upg_store *s, uint64_t want, uint64_t *new_size)
{
	if (s->is_blockdev || s->is_remote)
		return -ENOSPC;
	uint64_t cur = s->size_blocks;
	uint64_t target = cur + want;
	uint64_t step = cur / 4 > GROW_STEP / BLOCK ? cur / 4 : GROW_STEP / BLOCK;
	if (target < cur + step)
		target = cur + step;
	if (target > s->max_blocks)
		target = s->max_blocks;
	if (target <= cur)
		return -ENOSPC;
	int rc = extend(s->fd, cur, target);
	if (rc) {
		int e = errno;
		if (e == ENOSPC && target > cur + want) {
			/* The disk cannot take a whole step: try just what is needed. */
			target = cur + want;
			if (target <= s->max_blocks && !extend(s->fd, cur, target)) {
				*new_size = target;
				return 0;
			}
		}
		return -e;
	}
	*new_size = target;
	return 0;
}
