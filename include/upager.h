/* SPDX-License-Identifier: MIT */
/*
 * upager — demand paging and swapping in user space.
 *
 * A runtime (upager_t) owns a userfaultfd, a file-backed store driven by
 * io_uring, a RAM budget shared by all its regions, handler threads that
 * resolve faults, and an evictor thread that keeps resident memory under the
 * budget.
 *
 * Every function returns 0 or a negative errno value.  Output parameters are
 * written only on success.  The library never prints: messages go to the
 * optional log callback, and upager_open() also copies its failure reason
 * into the caller's buffer.
 */
#ifndef UPAGER_H
#define UPAGER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UPAGER_VERSION_MAJOR 0
#define UPAGER_VERSION_MINOR 1
#define UPAGER_VERSION_PATCH 0
#define UPAGER_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define UPAGER_API __attribute__((visibility("default")))
#else
#define UPAGER_API
#endif

typedef struct upager upager_t;

enum upager_log_level {
	UPAGER_LOG_ERROR = 0,
	UPAGER_LOG_WARN = 1,
	UPAGER_LOG_INFO = 2,
	UPAGER_LOG_DEBUG = 3,
};

/* Called from any upager thread, including fault handlers: it must not touch
 * memory managed by this runtime and must not call back into upager. */
typedef void (*upager_log_fn)(void *arg, int level, const char *msg);

/*
 * Runtime configuration.  Always start from upager_config_init(), which sets
 * .size and the defaults; then change what you need.  The struct may grow at
 * its end in later versions; .size tells the library which fields you know.
 */
struct upager_config {
	uint32_t size;            /* sizeof(struct upager_config) */
	uint32_t page_size;       /* default page size of new regions (4096 or a larger power of two) */
	uint64_t ram_budget;      /* bytes of resident region memory, all regions together */
	const char *store_path;   /* NULL: unlinked O_TMPFILE in $TMPDIR; a directory: O_TMPFILE there;
	                           * a regular file or block device: used as is (its contents are overwritten) */
	uint64_t store_max;       /* most bytes the store may grow to; 0: 64 GiB */
	const char *policy;       /* replacement policy: "s3fifo" (default), "clock", "fifo" */
	uint32_t handler_threads; /* threads that read the userfaultfd (1..16) */
	uint32_t fault_around;    /* pages zero-filled per first-touch fault (1..512) */
	uint32_t readahead_max;   /* most pages read ahead on a sequential fault (1..1024) */
	uint32_t io_depth;        /* reads in flight per handler thread (1..1024) */
	int log_level;            /* enum upager_log_level: most verbose level passed to log */
	upager_log_fn log;        /* NULL: no messages */
	void *log_arg;
	/* Added in 0.2 (callers built with an older header have a smaller
	 * size and get 0): */
	uint32_t encrypt;         /* 1: encrypt pages at rest with XChaCha20-Poly1305 under a random
	                           * per-runtime key; 0 (default): CRC-32C checksums only */
	/* Added in 0.3 (older callers get the default): */
	uint32_t poll_us;         /* a handler with store reads in flight polls for their completion
	                           * this long, yielding the CPU, before it sleeps (0..10000; default 0:
	                           * sleep at once) */
	/* Added in 0.4 (older callers get the default): */
	const char *compress;     /* compressed RAM pool in front of the store: "lz4" (NULL: the
	                           * default), "zstd" or "off" */
	uint32_t compress_pool;   /* most of the budget the pool may hold, in percent (5..95; 0: 50) */
	/* Added in 0.5 (older callers get the default): */
	uint32_t file_dirty_age;  /* seconds within which a changed page of a shared file mapping is
	                           * written to the file (1..3600; 0: 30) */
};

UPAGER_API void upager_config_init(struct upager_config *cfg);

/*
 * Override cfg from the UPAGER_* environment variables (see README).  Returns
 * -EINVAL for a malformed value and writes a message naming the variable and
 * the accepted form into err (when errlen > 0).  String fields of cfg then
 * point into the environment.
 */
UPAGER_API int upager_config_from_env(struct upager_config *cfg, char *err, size_t errlen);

/* Check a whole config as upager_open() would, without opening anything:
 * -EINVAL with a message that says what to change. */
UPAGER_API int upager_config_validate(const struct upager_config *cfg, char *err, size_t errlen);

/* Parse a size such as "4096", "256M", "1.5G", "1T" (binary units). */
UPAGER_API int upager_parse_size(const char *text, uint64_t *out);

/*
 * Open a runtime.  On failure returns -errno and, when err is not NULL,
 * writes a one-line explanation that says what to change.
 * -EPERM: no privilege for a userfaultfd that also handles kernel-mode faults.
 */
UPAGER_API int upager_open(const struct upager_config *cfg, upager_t **out, char *err, size_t errlen);

/* Stop the threads, release every region and the store.  Accepts NULL. */
UPAGER_API int upager_close(upager_t *up);

struct upager_map_opts {
	uint32_t size;      /* sizeof(struct upager_map_opts) */
	uint32_t page_size; /* 0: the runtime's default */
};

/*
 * Reserve len bytes (rounded up to the page size) of paged memory.  The
 * memory reads as zeros until written.  Regions of a terabyte cost next to
 * nothing until touched.
 */
UPAGER_API int upager_map(upager_t *up, size_t len, const struct upager_map_opts *opts, void **addr);

/* Release a region returned by upager_map() or upager_map_file(): its RAM
 * and store slots.  A shared file mapping's changed pages are written to
 * the file first (and fdatasync()ed): -EIO if that fails, the region then
 * stays mapped. */
UPAGER_API int upager_unmap(upager_t *up, void *addr);

/*
 * Map len bytes of the file open on fd, from offset (a multiple of 4 KiB),
 * as paged memory under the runtime's budget.  The file is read and
 * written in place with O_DIRECT (a descriptor of its own, opened again
 * from fd), so the page cache never holds its pages; pages not changed are
 * dropped without I/O when they leave RAM.  flags, one of:
 *   UPAGER_MAP_SHARED   changes go to the file: when their page leaves RAM,
 *                       at upager_sync(), at upager_unmap() and
 *                       upager_close(), and at most UPAGER_FILE_DIRTY_AGE
 *                       seconds after the page was first changed;
 *   UPAGER_MAP_PRIVATE  copy-on-write: changes go to the store, never to
 *                       the file;
 *   UPAGER_MAP_RDONLY   reads only (the memory is mapped PROT_READ).
 * Bytes past the end of the file read as zeros within the last page; an
 * access to a page wholly past it raises SIGBUS, as with mmap.  fd must be
 * open for reading, and for writing with UPAGER_MAP_SHARED (not O_APPEND).
 * -EINVAL for a bad offset, length or flags; -EBADF for an fd that cannot
 * serve the mapping; -ENXIO when a read-only mapping reaches past the end
 * of the file.  What is on the file when is written down in README.md.
 */
#define UPAGER_MAP_SHARED 1
#define UPAGER_MAP_PRIVATE 2
#define UPAGER_MAP_RDONLY 3
UPAGER_API int upager_map_file(upager_t *up, int fd, off_t offset, size_t len, int flags, void **addr);

/*
 * Like msync() for a region of upager_map_file(): UPAGER_SYNC writes the
 * changed pages of [addr, addr + len) to the file and fdatasync()s it
 * before it returns; UPAGER_ASYNC starts writing them and returns.  A write
 * that fails returns -EIO (the pages stay changed in RAM and are written
 * again later), as fsync() would; -EINVAL for a range not in one such
 * region.  On a private or read-only mapping it does nothing.
 */
#define UPAGER_SYNC 1
#define UPAGER_ASYNC 2
UPAGER_API int upager_sync(upager_t *up, void *addr, size_t len, int flags);

enum upager_advice {
	UPAGER_ADV_NORMAL = 0,
	UPAGER_ADV_SEQUENTIAL = 1, /* read ahead as far as allowed */
	UPAGER_ADV_RANDOM = 2,     /* never read ahead */
	UPAGER_ADV_WILLNEED = 3,   /* bring the range in now, within the budget */
	UPAGER_ADV_DONTNEED = 4,   /* discard: the range reads back as zeros */
};

UPAGER_API int upager_advise(upager_t *up, void *addr, size_t len, int advice);

/* Does the runtime manage this address? 1 yes, 0 no. */
UPAGER_API int upager_owns(const upager_t *up, const void *addr);

struct upager_stats {
	uint32_t size;             /* sizeof(struct upager_stats), set by the caller */
	uint32_t regions;
	uint64_t ram_budget;
	uint64_t resident_bytes;
	uint64_t resident_peak;
	uint64_t zero_fills;       /* pages served as zeros (first touch or discarded) */
	uint64_t store_reads;      /* major faults: faults that waited for a store read */
	uint64_t readahead_pages;  /* pages brought in ahead of a fault */
	uint64_t refaults;         /* store reads of pages evicted recently (policy ghost hits) */
	uint64_t wp_faults;        /* write-protect faults: since 0.3 pages go in writable, and only a
	                            * page an eviction protected (a read-only part) can raise one */
	uint64_t evictions;        /* pages removed from RAM */
	uint64_t writebacks;       /* dirty pages written to the store */
	uint64_t clean_drops;      /* clean pages dropped without I/O */
	uint64_t zero_skips;       /* all-zero pages dropped without I/O */
	uint64_t discards;         /* pages discarded by DONTNEED or munmap */
	uint64_t bytes_read;       /* store bytes read */
	uint64_t bytes_written;    /* store bytes written */
	uint64_t store_slots_used; /* store blocks in use, in pages of 4 KiB */
	uint64_t store_bytes;      /* current store file size */
	uint64_t write_errors;     /* failed write-backs (page kept resident and dirty) */
	uint64_t store_full;       /* eviction attempts refused because the store was full */
	uint64_t overshoot_bytes;  /* resident bytes above the budget now */
	uint64_t overshoot_peak;   /* largest overshoot seen */
	uint64_t fault_ns_total;   /* time spent resolving faults */
	uint64_t fault_count;      /* faults resolved (every kind) */
	uint64_t fault_p50_ns;     /* handler-side fault latency percentiles */
	uint64_t fault_p99_ns;
	uint64_t fault_max_ns;
	uint64_t metadata_bytes;   /* runtime bookkeeping memory now mapped */
	/* Added in 0.2: */
	uint64_t read_errors;      /* store reads that failed or came back short (each try) */
	uint64_t integrity_errors; /* blocks read back that failed their checksum or tag */
	uint64_t poisoned_pages;   /* pages left unreadable: an access raises SIGBUS */
	/* Added in 0.3: */
	uint64_t polls;            /* times a handler polled for a store read's completion */
	uint64_t poll_hits;        /* of those, the ones that saw a completion before sleeping */
	uint64_t poll_cpu_ns;      /* CPU time the handlers spent polling (device wait, not work) */
	/* Added in 0.4: the compressed pool (UPAGER_COMPRESS). */
	uint64_t pool_bytes;       /* RAM it holds now (counted in resident_bytes) */
	uint64_t pool_pages;       /* pages it holds now, compressed copies of pages read back
				    * from it and still unwritten in RAM included */
	uint64_t pool_hits;        /* faults served from it (not counted in store_reads) */
	uint64_t pool_puts;        /* evicted pages it took */
	uint64_t pool_rejects;     /* evicted pages that compressed too poorly, sent to the store */
	uint64_t pool_writebacks;  /* its pages written on to the store (counted in writebacks) */
	uint64_t pool_drops;       /* its pages that left with a good store copy, without I/O */
	/* Also in 0.4: stall figures, like the kernel's PSI.  Wall time in
	 * which at least one thread of the program (some), and every one of
	 * them (all), waited on a fault upager served; lower bounds, from
	 * when a handler read the fault to when it woke the thread. */
	uint64_t wall_ns;              /* since the runtime opened */
	uint64_t stall_some_ns;
	uint64_t stall_all_ns;
	uint64_t stall_recent_ns;      /* the last 10 s (less in a younger run), and in it: */
	uint64_t stall_some_recent_ns;
	uint64_t stall_all_recent_ns;
	uint32_t stall_threads;        /* the program's threads at the last count (upager's own not counted) */
	uint32_t stall_pad;
	/* Added in 0.5: the compressed pool's share of the budget, which
	 * moves with the program's refills (see UPAGER_COMPRESS_POOL). */
	uint64_t pool_share_bytes;     /* the most the pool may hold now */
	uint64_t pool_share_most;      /* the most it may ever hold (0: no pool) */
	/* Also in 0.5: dirty pages sent to the store without a try, in
	 * batches passed over while few of those tried compressed, and in
	 * runs of 16 or more neighbours leaving together. */
	uint64_t pool_skips;
	/* Also in 0.5: pages read from the pool and not written while in RAM
	 * keep their object there, and go back to it for nothing. */
	uint64_t pool_repools;         /* evicted pages that went back to their object */
	/* Also in 0.5: how the evictor took the pages it evicted out of their
	 * regions: UFFDIO_MOVE of a run of neighbours, or madvise() of
	 * unchanged file pages or of a read-only page copied out.  On the
	 * project's machine each such call flushed the TLB of the other CPU
	 * running the program once, however many pages it took, so a page
	 * taken out alone cost the most (upager-bench floor times both). */
	uint64_t takeout_calls;        /* calls that took pages out */
	uint64_t takeout_pages;        /* pages they took */
	uint64_t takeout_alone;        /* of those, pages taken out by a call of their own */
	uint64_t locked_stays;         /* victims left in RAM unwritten: locked with mlock(), which
	                                * the kernel will not let go (added after takeout_alone) */
};

UPAGER_API int upager_stats(upager_t *up, struct upager_stats *st);

/*
 * Added in 0.4: how this run would have gone with another RAM budget, a
 * miss-ratio curve from one run.  upager keeps, for each page it evicts,
 * how much data had been evicted before; when a fault reads the page back,
 * the data evicted since is its reuse distance, and with that much more RAM
 * the read would not have happened.  Exact for least-recently-used order,
 * an estimate for upager's policies; see the README for how close.
 */
enum upager_forecast_basis {
	UPAGER_FORECAST_MEASURED = 0,  /* the run's own budget: its own figures */
	UPAGER_FORECAST_ESTIMATE = 1,  /* a larger budget: from the reuse distances */
	UPAGER_FORECAST_AT_LEAST = 2,  /* a smaller budget: the run's own figures, a lower bound */
};

struct upager_forecast {
	uint32_t size;        /* sizeof(struct upager_forecast), set by the caller; set back to
	                       * the size filled (40 for a caller built before knee) */
	uint32_t basis;       /* enum upager_forecast_basis */
	uint64_t ram_budget;  /* the budget asked about */
	uint64_t refills;     /* faults that would read a page back from the store or the pool */
	uint64_t refill_ns;   /* their time, at this run's mean time per refill */
	uint64_t footprint;   /* the budget at which no refill of a page evicted here would remain
	                       * (this run's budget plus the longest reuse distance); the same for
	                       * every ram_budget */
	uint64_t knee;        /* where refills start to climb steeply as RAM shrinks: the budget at
	                       * which the estimates fall furthest below the straight line from
	                       * this run's refills to none at the footprint; the footprint when
	                       * they nowhere fall a fifth below it (refills fall evenly with RAM).
	                       * This run's budget when it made no refill.  The same for every
	                       * ram_budget.  Added after the rest: a caller that passes size 40
	                       * does not get it */
};

/* Fill out for ram_budget (bytes; 0: this run's).  0 or -EINVAL. */
UPAGER_API int upager_forecast(upager_t *up, uint64_t ram_budget, struct upager_forecast *out);

/* Write a human-readable report of st to buf (NUL-terminated, truncated to
 * len).  Returns the length it needed, like snprintf. */
UPAGER_API int upager_format_stats(const struct upager_stats *st, char *buf, size_t len);

UPAGER_API const char *upager_version(void);

/* Added in 0.5: for a Redis store (UPAGER_STORE=redis://... or unix:/...),
 * delete what runs that ended without upager_close() left on it (a
 * process killed, or a preloaded program, which never closes): on this
 * host those whose process is gone, elsewhere those whose lease ran out.
 * upager-run calls it when its program ends.  Returns how many runs, 0
 * for any other store, or -errno with a message in err. */
UPAGER_API int upager_store_clean(const char *store, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
