/* SPDX-License-Identifier: MIT */
/* Compare mode's device side: where the store lives, and what its filesystem can do with O_DIRECT reads. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench.h"

/* --- where the store lives --- */

bool is_ram_fs(const char *dir)
{
	struct statfs sf;
	return !statfs(dir, &sf) && (sf.f_type == 0x01021994 /* TMPFS_MAGIC */ || sf.f_type == 0x858458f6 /* RAMFS */);
}

/* Can dir hold an O_DIRECT file on a disk?  (The library's test.) */
static bool direct_ok(const char *dir)
{
	if (is_ram_fs(dir))
		return false;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	return errno != EINVAL && errno != ENOENT && errno != ENOTDIR;
}

/*
 * The directory of upager's store, by the library's rules (upg_store_open):
 * store_path when it is a directory, its directory when it is a file; by
 * default $TMPDIR, else /tmp, and /var/tmp when that cannot take O_DIRECT.
 * A block-device store has no filesystem: the default directory is used and
 * note says so.
 */
void store_dir(const struct upager_config *cfg, char *out, size_t len, char *note, size_t nlen)
{
	const char *p = cfg->store_path;
	struct stat st;
	note[0] = 0;
	if (p && *p) {
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			snprintf(out, len, "%s", p);
			return;
		}
		if (stat(p, &st) == 0 && S_ISBLK(st.st_mode)) {
			snprintf(note, nlen, "the store is the block device %s: the swap file and the device test "
				 "use the default directory instead, so the kernel side is on another device", p);
		} else {
			const char *slash = strrchr(p, '/');
			if (!slash)
				snprintf(out, len, ".");
			else if (slash == p)
				snprintf(out, len, "/");
			else
				snprintf(out, len, "%.*s", (int)(slash - p), p);
			return;
		}
	}
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	if (!direct_ok(dir))
		dir = "/var/tmp";
	snprintf(out, len, "%s", dir);
}

const char *fs_name(const char *dir)
{
	struct statfs sf;
	if (statfs(dir, &sf))
		return "unknown filesystem";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x2FC12FC1: return "zfs";
	case 0xF2F52010: return "f2fs";
	case 0x01021994: return "tmpfs";
	default: return "other filesystem";
	}
}

/* --- physical limits of the store's filesystem --- */

/* Queue depths of 4 KiB random reads that device_measure() runs whatever
 * the workloads' thread counts. */
bool device_base_qd(unsigned qd)
{
	return qd == 1 || qd == 32;
}

/* 4 KiB random-read IOPS of dev at queue depth qd, or NAN. */
double device_iops_at(const struct device *dev, unsigned qd)
{
	for (unsigned i = 0; dev->ran && i < dev->nqd; i++)
		if (dev->qd[i] == qd)
			return dev->qd_iops[i];
	return NAN;
}

/* Keep qd reads of bs bytes in flight over the first file_bytes of fd for
 * `secs` seconds, or until max_ops have completed (0: no such limit):
 * sequential (wrapping at the end) or uniformly random, into buf (qd * bs
 * bytes).  0 with the completed reads and elapsed seconds, or -errno. */
int ring_reads(struct io_uring *ring, int fd, uint64_t file_bytes, unsigned bs, unsigned qd, bool seq, double secs,
	       uint64_t max_ops, char *buf, uint64_t *ops, double *elapsed)
{
	uint64_t nblocks = file_bytes / bs, next = 0, rng = 12345, done = 0;
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(secs * 1e9);
	unsigned inflight = 0;
	int rc = 0;
	for (unsigned i = 0; i < qd && (!max_ops || i < max_ops); i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		if (!sqe)
			break;
		uint64_t blk = seq ? next++ % nblocks : rng_below(&rng, nblocks);
		io_uring_prep_read(sqe, fd, buf + (size_t)i * bs, bs, blk * bs);
		sqe->user_data = i;
		inflight++;
	}
	io_uring_submit(ring);
	bool stop = false;
	while (inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0) {
			rc = r;
			break;
		}
		int res = cqe->res;
		unsigned slot = (unsigned)cqe->user_data;
		io_uring_cqe_seen(ring, cqe);
		inflight--;
		if (res != (int)bs) {
			if (!rc)
				rc = res < 0 ? res : -EIO;
			stop = true;
		} else {
			done++;
		}
		if (!stop && (now_ns() >= deadline || (max_ops && done + inflight >= max_ops)))
			stop = true;
		if (stop)
			continue;
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		uint64_t blk = seq ? next++ % nblocks : rng_below(&rng, nblocks);
		io_uring_prep_read(sqe, fd, buf + (size_t)slot * bs, bs, blk * bs);
		sqe->user_data = slot;
		inflight++;
		io_uring_submit(ring);
	}
	*elapsed = (now_ns() - t0) / 1e9;
	*ops = done;
	return rc;
}

/*
 * Measure 4 KiB random reads at queue depth 1 and 32, and sequential reads
 * of 128 KiB (depth 1) and 1 MiB (depth 8), with O_DIRECT through io_uring,
 * on a file of dev->file_bytes in dir, written with data first (reads of
 * unwritten extents would cost no I/O).  Then 4 KiB random reads at each
 * queue depth in dev->qd[] (at most 256).  The file is removed afterwards.
 */
void device_measure(struct device *dev, const char *dir)
{
	char *buf = NULL;
	struct io_uring ring;
	bool ring_ok = false;
	int fd = -1, rc;
	size_t bufsz = 8u << 20;
	if ((size_t)snprintf(dev->path, sizeof dev->path, "%s/upager-bench-dev-%d", dir, (int)getpid()) >= sizeof undo->devfile) {
		msgf(dev->why, sizeof dev->why, "the directory name %s is too long", dir);
		return;
	}
	sigset_t old;
	signals_block(&old);
	fd = open(dev->path, O_RDWR | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0600);
	int e = errno;
	if (fd >= 0)
		memcpy(undo->devfile, dev->path, strlen(dev->path) + 1); /* fits: checked above */
	signals_restore(&old);
	if (fd < 0) {
		msgf(dev->why, sizeof dev->why, "cannot create %s with O_DIRECT: %s", dev->path, strerror(e));
		return;
	}
	if (posix_memalign((void **)&buf, 4096, bufsz)) {
		msgf(dev->why, sizeof dev->why, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < bufsz / 8; i++)
		((uint64_t *)buf)[i] = mix(i + 1);
	if (fallocate(fd, 0, 0, (off_t)dev->file_bytes) && errno != EOPNOTSUPP) {
		msgf(dev->why, sizeof dev->why, "fallocate %s (%" PRIu64 " bytes): %s", dev->path, dev->file_bytes,
			 strerror(errno));
		goto out;
	}
	for (uint64_t off = 0; off < dev->file_bytes; ) {
		size_t n = dev->file_bytes - off < bufsz ? (size_t)(dev->file_bytes - off) : bufsz;
		ssize_t k = pwrite(fd, buf, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			msgf(dev->why, sizeof dev->why, "writing %s: %s", dev->path, k < 0 ? strerror(errno) : "short write");
			goto out;
		}
		off += (uint64_t)k;
	}
	fdatasync(fd);
	unsigned entries = 64;
	for (unsigned i = 0; i < dev->nqd; i++)
		while (entries < dev->qd[i])
			entries *= 2;
	rc = io_uring_queue_init(entries, &ring, 0);
	if (rc) {
		msgf(dev->why, sizeof dev->why, "io_uring_queue_init: %s", strerror(-rc));
		goto out;
	}
	ring_ok = true;
	static const struct { unsigned bs, qd; bool seq; } tests[] = {
		{ 4096, 1, false }, { 4096, 32, false }, { 128 << 10, 1, true }, { 1 << 20, 8, true },
	};
	double res[4];
	for (size_t t = 0; t < 4; t++) {
		uint64_t ops;
		double secs;
		rc = ring_reads(&ring, fd, dev->file_bytes, tests[t].bs, tests[t].qd, tests[t].seq, dev->seconds, 0, buf,
				&ops, &secs);
		if (rc) {
			msgf(dev->why, sizeof dev->why, "O_DIRECT reads of %u bytes from %s: %s", tests[t].bs, dev->path,
				 strerror(-rc));
			goto out;
		}
		res[t] = secs > 0 ? ops / secs : 0;
	}
	dev->qd1_iops = res[0];
	dev->qd1_lat_us = res[0] > 0 ? 1e6 / res[0] : 0;
	dev->qd32_iops = res[1];
	dev->seq128_mbs = res[2] * (128 << 10) / 1e6;
	dev->seq1m_mbs = res[3] * (1 << 20) / 1e6;
	dev->seq_mbs = dev->seq128_mbs > dev->seq1m_mbs ? dev->seq128_mbs : dev->seq1m_mbs;
	for (unsigned i = 0; i < dev->nqd; i++) {
		uint64_t ops;
		double secs;
		if (device_base_qd(dev->qd[i])) {
			dev->qd_iops[i] = dev->qd[i] == 1 ? dev->qd1_iops : dev->qd32_iops;
			continue;
		}
		rc = ring_reads(&ring, fd, dev->file_bytes, 4096, dev->qd[i], false, dev->seconds, 0, buf, &ops,
				&secs);
		if (rc) {
			msgf(dev->why, sizeof dev->why, "O_DIRECT reads of 4096 bytes at queue depth %u from %s: %s",
			     dev->qd[i], dev->path, strerror(-rc));
			goto out;
		}
		dev->qd_iops[i] = secs > 0 ? ops / secs : 0;
	}
	dev->ran = true;
out:
	if (ring_ok)
		io_uring_queue_exit(&ring);
	free(buf);
	close(fd);
	signals_block(&old);
	unlink(dev->path);
	undo->devfile[0] = 0;
	signals_restore(&old);
}

void print_device(FILE *out, const struct device *dev)
{
	if (!dev->ran) {
		fprintf(out, "device   NOT MEASURED: %s\n", dev->why);
		return;
	}
	char fb[32];
	human_size(dev->file_bytes, fb, sizeof fb);
	fprintf(out, "device   O_DIRECT io_uring reads of a %s file, %.0f s per test: 4 KiB random QD1 %.0f IOPS "
		"(%.0f us), QD32 %.0f IOPS; sequential 128 KiB QD1 %.0f MB/s, 1 MiB QD8 %.0f MB/s\n",
		fb, dev->seconds, dev->qd1_iops, dev->qd1_lat_us, dev->qd32_iops, dev->seq128_mbs, dev->seq1m_mbs);
	if (dev->nqd) {
		fprintf(out, "         4 KiB random at the random workloads' thread counts:");
		for (unsigned i = 0; i < dev->nqd; i++)
			fprintf(out, "%s QD%u %.0f IOPS", i ? "," : "", dev->qd[i], dev->qd_iops[i]);
		fprintf(out, "\n");
	}
	fflush(out);
}
