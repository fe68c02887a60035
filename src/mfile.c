/* SPDX-License-Identifier: MIT */
/*
 * File mappings: upager_map_file() and upager_sync().
 *
 * A file mapping is a region whose pages with no store copy (PG_NONE, slot
 * 0) hold the file's bytes.  A fault on one reads it from the file, with
 * readahead, through the region's own tier (loc: a byte offset), on a
 * descriptor opened with O_DIRECT so the page cache never holds it.  Pages
 * go in write-protected: the first write raises a write-protect fault,
 * which marks the page changed (PF_DIRTY).  When a page leaves RAM:
 *   - unchanged: dropped without I/O, read from the file again next time;
 *   - changed, shared: written to the file in place, then dropped;
 *   - changed, private: written to the store like any page (never to the
 *     file), and read from the store next time.
 * upager_sync() hands the evictor a range (up->sync_req): it takes the
 * changed pages out as for an eviction, writes them, and puts them back
 * unchanged and write-protected (evict.c, K_SYNCED); a write to a page
 * meanwhile waits for it to be back, so none is lost.  The evictor also
 * writes every shared mapping's changed pages each file_dirty_age.
 */
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- the file's tier ---- */

static void mf_read(void *tier, struct upg_tq *q, uint64_t loc, void *buf, uint32_t len, uint64_t tag)
{
	struct upg_mfile *f = tier;
	struct io_uring_sqe *sqe = upg_tq_sqe(q);
	const char *b = buf;
	if (q->fixed && b >= q->fixed && b + len <= q->fixed + q->fixed_len)
		io_uring_prep_read_fixed(sqe, f->fd, buf, len, loc, 0);
	else
		io_uring_prep_read(sqe, f->fd, buf, len, loc);
	io_uring_sqe_set_data64(sqe, tag);
}

/* A write that does not end on the O_DIRECT alignment (the file's last,
 * partial page) goes through the buffered descriptor: O_DIRECT would have
 * to write whole blocks, past the end of the file. */
static void mf_write(void *tier, struct upg_tq *q, uint64_t loc, const void *buf, uint32_t len, uint64_t tag)
{
	struct upg_mfile *f = tier;
	struct io_uring_sqe *sqe = upg_tq_sqe(q);
	int fd = (loc % f->dio || len % f->dio) ? f->tail_fd : f->fd;
	io_uring_prep_write(sqe, fd, buf, len, loc);
	io_uring_sqe_set_data64(sqe, tag);
}

static const struct upg_tier_ops mfile_tier = {
	.name = "mapped file",
	.on_ring = true,
	.read = mf_read,
	.write = mf_write,
};

void upg_mfile_free(struct upg_mfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	if (f->tail_fd >= 0)
		close(f->tail_fd);
	free(f);
}

bool upg_mfile_past_eof(struct upg_region *r, uint64_t page)
{
	struct upg_mfile *f = r->file;
	uint64_t at = f->off + (page << r->pshift);
	if (at < f->size)
		return false;
	struct stat sb;
	if (!fstat(f->fd, &sb))
		__atomic_store_n(&f->size, (uint64_t)sb.st_size, __ATOMIC_RELAXED);
	return at >= f->size;
}

/* The O_DIRECT alignment of fd's file: statx's, else the logical block
 * size of the device under it, else 4096. */
static uint32_t dio_align(int fd, const struct stat *sb)
{
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (!statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) && (sx.stx_mask & STATX_DIOALIGN) &&
	    sx.stx_dio_offset_align)
		return sx.stx_dio_offset_align;
#endif
	char path[64];
	snprintf(path, sizeof path, "/sys/dev/block/%u:%u/queue/logical_block_size", major(sb->st_dev),
		 minor(sb->st_dev));
	FILE *in = fopen(path, "r");
	unsigned v = 0;
	if (in) {
		if (fscanf(in, "%u", &v) != 1)
			v = 0;
		fclose(in);
	}
	return v ? v : 4096;
}

static int map_file(upager_t *up, int fd, off_t offset, size_t len, int flags, void **addr)
{
	if (!up || !addr)
		return -EINVAL;
	if (!len || offset < 0 || (offset & 4095)) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: %s", !len ? "the length is 0: map at least one byte"
			: "the offset must be a multiple of 4096 and not negative");
		return -EINVAL;
	}
	if (flags != UPAGER_MAP_SHARED && flags != UPAGER_MAP_PRIVATE && flags != UPAGER_MAP_RDONLY) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: flags %d: pass one of UPAGER_MAP_SHARED, "
			"UPAGER_MAP_PRIVATE or UPAGER_MAP_RDONLY", flags);
		return -EINVAL;
	}
	if (!(up->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: this kernel's userfaultfd has no write-protect "
			"faults, which tell changed pages: file mappings need Linux 5.7 or later");
		return -ENOTSUP;
	}
	if (!up->have_poison) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: this kernel's userfaultfd cannot raise SIGBUS for a "
			"page past the end of the file (UFFDIO_POISON): file mappings need Linux 6.6 or later");
		return -ENOTSUP;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: descriptor %d is not open", fd);
		return -EBADF;
	}
	int acc = fl & O_ACCMODE;
	if (acc == O_WRONLY) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: descriptor %d is open write-only: open the file "
			"with O_RDONLY (or O_RDWR for UPAGER_MAP_SHARED)", fd);
		return -EBADF;
	}
	if (flags == UPAGER_MAP_SHARED && (acc != O_RDWR || (fl & O_APPEND))) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: a shared mapping writes to the file: open it with "
			"O_RDWR and without O_APPEND (descriptor %d is %s)", fd,
			acc != O_RDWR ? "read-only" : "O_APPEND");
		return -EACCES;
	}
	struct stat sb;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: descriptor %d is not a regular file", fd);
		return -ENODEV;
	}
	if (len > (1ULL << 46) || (uint64_t)offset + len < (uint64_t)offset) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: a length of %zu bytes is too large (at most 64 TiB)",
			len);
		return -EINVAL;
	}
	if (flags == UPAGER_MAP_RDONLY && (uint64_t)offset + len > (uint64_t)sb.st_size) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: a read-only mapping of %zu bytes at offset %lld "
			"reaches past the end of the file (%lld bytes): map at most %lld bytes there", len,
			(long long)offset, (long long)sb.st_size,
			(long long)(sb.st_size > offset ? sb.st_size - offset : 0));
		return -ENXIO;
	}

	struct upg_mfile *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	f->fd = f->tail_fd = -1;
	f->off = (uint64_t)offset;
	f->size = (uint64_t)sb.st_size;
	f->mode = flags;
	f->dirty_pass_ns = upg_now_ns();
	f->tier = (struct upg_tier){ &mfile_tier, f };
	/* Descriptors of its own: O_DIRECT is a property of the open file,
	 * which the caller's descriptor shares with whatever else uses it. */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int mode = flags == UPAGER_MAP_SHARED ? O_RDWR : O_RDONLY;
	f->fd = open(path, mode | O_DIRECT | O_CLOEXEC);
	int rc;
	if (f->fd < 0) {
		rc = -errno;
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: cannot open descriptor %d's file again with O_DIRECT "
			"(%s)%s", fd, strerror(-rc), rc == -EINVAL ? ": its filesystem does not support direct I/O; "
			"put the file on one that does (ext4, xfs, btrfs)" : "");
		goto fail;
	}
	f->dio = dio_align(f->fd, &sb);
	if (f->dio > 4096 || 4096 % f->dio) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: the file's direct I/O alignment is %u bytes; upager "
			"pages 4 KiB and needs one that divides it", f->dio);
		rc = -EINVAL;
		goto fail;
	}
	if (flags == UPAGER_MAP_SHARED) {
		f->tail_fd = open(path, O_RDWR | O_CLOEXEC);
		if (f->tail_fd < 0) {
			rc = -errno;
			upg_log(up, UPAGER_LOG_ERROR, "upager_map_file: cannot open descriptor %d's file again: %s", fd,
				strerror(-rc));
			goto fail;
		}
	}
	rc = upg_map_region(up, 0, len, 4096, 0, flags == UPAGER_MAP_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE,
			    f, addr);
	if (rc)
		goto fail;
	return 0;
fail:
	upg_mfile_free(f);
	return rc;
}

UPAGER_API int upager_map_file(upager_t *up, int fd, off_t offset, size_t len, int flags, void **addr)
{
	return UPG_AS_RUNTIME(map_file(up, fd, offset, len, flags, addr));
}

/* ---- writing changed pages ---- */

int upg_mfile_write_range(struct upager *up, struct upg_region *r, uint64_t first, uint64_t end)
{
	if (!r->file || r->file->mode != UPAGER_MAP_SHARED)
		return 0;
	pthread_mutex_lock(&up->sync_lock);
	struct upg_sync_req req = { .r = r, .first = first, .end = end };
	pthread_mutex_lock(&up->lock);
	if (up->stopping || !up->ev) {
		pthread_mutex_unlock(&up->lock);
		pthread_mutex_unlock(&up->sync_lock);
		return -EIO;
	}
	up->sync_req = &req;
	pthread_cond_broadcast(&up->evict_cond);
	while (!req.done)
		pthread_cond_wait(&up->idle_cond, &up->lock);
	up->sync_req = NULL;
	pthread_mutex_unlock(&up->lock);
	pthread_mutex_unlock(&up->sync_lock);
	return req.res;
}

int upg_mfile_flush(struct upager *up, struct upg_region *r, uint64_t first, uint64_t end, bool durable)
{
	r->busy++;  /* not unmapped under us */
	pthread_mutex_unlock(&up->lock);
	int rc = upg_mfile_write_range(up, r, first, end);
	if (durable && fdatasync(r->file->fd) && !rc)
		rc = -EIO;
	if (rc)
		upg_log(up, UPAGER_LOG_ERROR, "writing the changed pages of the file mapping at %#lx to the file "
			"failed: they stay in RAM, changed, and are written again later", (unsigned long)r->base);
	pthread_mutex_lock(&up->lock);
	upg_region_unbusy(up, r, 1);
	return rc;
}

int upg_mfile_sync_all(struct upager *up)
{
	int rc = 0;
	pthread_mutex_lock(&up->lock);
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		if (r->file && r->file->mode == UPAGER_MAP_SHARED && !r->dying &&
		    upg_mfile_flush(up, r, 0, r->npages, true))
			rc = -EIO;
	}
	pthread_mutex_unlock(&up->lock);
	return rc;
}

UPAGER_API int upager_sync(upager_t *up, void *addr, size_t len, int flags)
{
	if (!up || !addr || (flags != UPAGER_SYNC && flags != UPAGER_ASYNC))
		return -EINVAL;
	uintptr_t a = (uintptr_t)addr;
	pthread_mutex_lock(&up->lock);
	struct upg_region *r = upg_region_find(up, a);
	if (!r || !r->file || a + len > r->base + r->len || a + len < a || r->dying) {
		pthread_mutex_unlock(&up->lock);
		return -EINVAL;
	}
	if (r->file->mode != UPAGER_MAP_SHARED) {
		pthread_mutex_unlock(&up->lock);
		return 0;
	}
	uint64_t first = (a - r->base) >> r->pshift;
	uint64_t end = len ? ((a + len - 1 - r->base) >> r->pshift) + 1 : first;
	if (flags == UPAGER_ASYNC) {
		r->file->async_wanted = true;
		pthread_cond_broadcast(&up->evict_cond);
		pthread_mutex_unlock(&up->lock);
		return 0;
	}
	int rc = upg_mfile_flush(up, r, first, end, true);
	pthread_mutex_unlock(&up->lock);
	return rc;
}
