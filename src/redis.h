/* SPDX-License-Identifier: MIT */
/*
 * The Redis store: pages on a Redis server or a Redis Cluster, as a tier
 * (tier.h) in place of the file store.  UPAGER_STORE=redis://HOST:PORT
 * [,HOST:PORT...][?timeout=MS&conns=N&lease=S&compress=lz4|off], or
 * unix:/path/to/redis.sock.
 *
 * Every 4 KiB block of the store is one key, "upg:NS:BLOCK" (hex), NS being
 * this process's namespace (16 random hex digits; a forked child has its
 * own and reads its ancestors').  A value is a 16-byte header (magic, the
 * block's generation, CRC-32C of the rest, the length, flags) and the
 * block with its trailing zeros cut, compressed with LZ4 when it shrinks
 * (unless compress=off, or the store is encrypted).  A read checks all four: a missing key, a stale
 * generation or a bad checksum fails the read, never returns wrong data.
 *
 * The block allocator stays the store's (store.c, with no file behind it);
 * this only moves the bytes.  A fault handler sends its reads itself, on
 * a connection of its own to each node, and takes their replies on its
 * own io_uring (tier.h's tier_cqes).  Everything else (the evictor's
 * writes, control commands, and any read that did not come back clean:
 * a redirection, an error, a bad value, a lost connection, a deadline
 * passed) goes to one thread of the tier's own that drives its
 * connections (several per node, pipelined) on its io_uring, and
 * completes each request to its submitter's queue (upg_tq_post()).  Each
 * attempt has a deadline; a connection that misses one, or fails, is
 * dropped, and its requests go again once, on another connection, before
 * they fail with -ETIMEDOUT or -EIO.
 *
 * At start every node is asked its maxmemory-policy (one that may evict
 * keys is refused), and the keys of namespaces no live run reads are
 * deleted.  Before its first write a run lists its namespace in the sorted
 * set "upg:runs" as "NS HOST PID", scored by a lease (60 s, renewed every
 * 20 s); a forked child lists its ancestors' namespaces under its own pid.
 * A namespace is dead when no member for it is alive: on this host (boot
 * and pid namespace) by its process, elsewhere by its lease.  At close the
 * namespace's keys are deleted, unless forked children still read them.
 */
#ifndef UPG_REDIS_H
#define UPG_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier.h"

struct upager;
struct upg_redis;

/* Does a store path name a Redis store? */
bool upg_redis_url(const char *path);
/* Connect, check the servers, clean up after dead runs and start the
 * tier's thread.  blocks: the store's size in blocks.  0 or -errno with a
 * message. */
int upg_redis_open(struct upager *up, const char *url, uint64_t blocks, struct upg_redis **out, char *err,
		   size_t errlen);
/* Delete the keys of runs that ended without closing (on this host: whose
 * process is gone; elsewhere: whose lease ran out).  How many runs, or
 * -errno with a message. */
int upg_redis_clean(const char *url, char *err, size_t errlen);
/* Stop the thread; delete this namespace's keys unless keep. */
void upg_redis_close(struct upg_redis *rd, bool keep);
/* Before fork() (fork.c's prepare): the namespaces the child will read
 * get a placeholder in upg:runs, alive by its lease, until the child lists
 * them under its own pid and removes it. */
void upg_redis_fork_prepare(struct upg_redis *rd);
/* In a forked child (no other thread runs): let go of the parent's
 * connections and thread, make the parent's namespace the nearest
 * ancestor's, take a namespace of its own and start again.  0 or -errno
 * with a message. */
int upg_redis_fork_child(struct upg_redis *rd, char *err, size_t errlen);
/* Whether values can be compressed (not when the blocks are encrypted:
 * they would not shrink); with compress=lz4 (the default) they go
 * compressed with LZ4 when they shrink.  Reads take either kind.  Before
 * the first write. */
void upg_redis_compress(struct upg_redis *rd, bool can);
/* What the store is, for messages: "redis 127.0.0.1:6379 (cluster of 3)". */
const char *upg_redis_where(const struct upg_redis *rd);

extern const struct upg_tier_ops upg_redis_tier;

#endif
