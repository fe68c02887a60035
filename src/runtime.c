/* SPDX-License-Identifier: MIT */
/* Runtime life cycle and the public API: open and close, regions mapped and unmapped, advice, statistics. */
#include "internal.h"
#include "options.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RETRY_CAP 65536u
#define REGIONS_MAX 16384u

UPAGER_API int upager_store_clean(const char *store, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!upg_redis_url(store))
		return 0;
	char tmp[8];
	if (!err || !errlen) {
		err = tmp;
		errlen = sizeof tmp;
	}
	return UPG_AS_RUNTIME(upg_redis_clean(store, err, errlen));
}

UPAGER_API const char *upager_version(void)
{
	return UPAGER_VERSION_STRING;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

/* ---- open / close ---- */

void upg_sync_init(struct upager *up)
{
	pthread_mutex_init(&up->lock, NULL);
	pthread_mutex_init(&up->uffd_lock, NULL);
	pthread_mutex_init(&up->fork_lock, NULL);
	pthread_mutex_init(&up->sync_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&up->evict_cond, &ca);
	pthread_cond_init(&up->idle_cond, &ca);
	pthread_condattr_destroy(&ca);
}

static int open_runtime(const struct upager_config *cfg, upager_t **out, char *err, size_t errlen)
{
	char dummy[8];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = 0;
	if (!out) {
		snprintf(err, errlen, "upager_open: out is NULL");
		return -EINVAL;
	}
	int rc = upg_config_check(cfg, err, errlen);
	if (!rc)
		rc = upg_inject_setup(err, errlen);
	if (rc)
		return rc;

	struct upager *up = calloc(1, sizeof *up);
	if (!up) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	upg_config_copy(&up->cfg, cfg);
	up->uffd = -1;
	up->store.fd = -1;
	up->pagemap_fd = -1;
	up->fork_hup_wr = -1;
	up->share_pidfd = -1;
	upg_sync_init(up);
	upg_stall_init(&up->stall, upg_now_ns());

	rc = -ENOMEM;
	if (cfg->store_path && !(up->store_path = strdup(cfg->store_path)))
		goto out_free;
	up->policy_name = strdup(cfg->policy);
	if (!up->policy_name)
		goto out_free;
	up->cfg.store_path = up->store_path;
	up->cfg.policy = up->policy_name;
	up->pol_ops = upg_policy_find(up->policy_name);

	/* In a tree started by upager-run the budget is the tree's. */
	const char *tree = secure_getenv("UPAGER_TREE");
	rc = upg_domain_join(&up->dom, tree, cfg->ram_budget, err, errlen);
	if (rc < 0)
		goto out_free;
	int joined = rc;
	up->budget = upg_domain_budget(&up->dom);
	up->high = up->budget - up->budget / 32;
	up->low = up->budget - up->budget / 16;
	if (up->low + 4096 > up->high)
		up->low = up->high > 4096 ? up->high - 4096 : 0;

	rc = upg_uffd_open(&up->uffd, &up->features, err, errlen);
	if (rc)
		goto out_free;
	/* Said once the runtime can start at all (see preload.c for a
	 * process that became another user and may not use userfaultfd). */
	if (joined == 1)
		upg_log(up, UPAGER_LOG_WARN, "the tree's budget file %s is gone (its upager-run has ended): "
			"this process has a budget of its own", tree);
	if (joined == 2)
		upg_log(up, UPAGER_LOG_WARN, "the tree's budget file %s is not open to this process (it runs as "
			"another user than upager-run): this process has a budget of its own, outside the tree's", tree);
	up->have_move = up->features & UFFD_FEATURE_MOVE;
	up->have_poison = up->features & UFFD_FEATURE_POISON;
	if (!up->have_move) {
		snprintf(err, errlen, "this kernel lacks UFFDIO_MOVE (Linux 6.8 or later is needed for eviction)");
		rc = -ENOTSUP;
		goto out_uffd;
	}

	rc = upg_store_open(&up->store, up->store_path, cfg->store_max, err, errlen);
	if (rc)
		goto out_uffd;
	up->store_tier = upg_store_tier_test.ops ? upg_store_tier_test : (struct upg_tier){ &upg_file_tier, NULL };
	if (up->store.is_remote) {
		rc = upg_redis_open(up, up->store_path, up->store.max_blocks, &up->redis, err, errlen);
		if (rc) {
			upg_store_close(&up->store);
			goto out_uffd;
		}
		up->store_tier = (struct upg_tier){ &upg_redis_tier, up->redis };
		snprintf(up->store.where, sizeof up->store.where, "%s", upg_redis_where(up->redis));
	}
	rc = upg_seal_init(&up->seal, up->store.max_blocks, up->cfg.encrypt, err, errlen);
	if (rc) {
		upg_redis_close(up->redis, false);
		upg_store_close(&up->store);
		goto out_uffd;
	}
	/* The compressed pool: its share of the budget, and an arena with
	 * room for that twice over (its spans fragment). */
	int algo = UPG_POOL_OFF;
	upg_pool_algo_parse(up->cfg.compress, &algo);  /* checked by upg_config_check() */
	up->file_dirty_age_ns = (uint64_t)(up->cfg.file_dirty_age ? up->cfg.file_dirty_age : UPG_FILE_DIRTY_AGE_DEFAULT) *
				1000000000ULL;
	uint32_t share = up->cfg.compress_pool ? up->cfg.compress_pool : UPG_COMPRESS_POOL_DEFAULT;
	up->pool_max = up->budget / 100 * share;
	if (up->pool_max < (256u << 10))
		algo = UPG_POOL_OFF;  /* too small to hold a useful share of pages beside its spans */
	/* Pages go to Redis over the network, and take its RAM: compressed,
	 * unless encrypted (they would not shrink). */
	if (up->redis)
		upg_redis_compress(up->redis, !up->cfg.encrypt);
	rc = upg_pool_init(&up->pool, algo, up->pool_max * 2 + (1u << 20), err, errlen);
	if (rc) {
		upg_seal_fini(&up->seal);
		upg_redis_close(up->redis, false);
		upg_store_close(&up->store);
		goto out_uffd;
	}
	up->pool_tier = (struct upg_tier){ &upg_pool_tier, &up->pool };
	upg_share_init(&up->share, up->budget, algo == UPG_POOL_OFF ? 0 : up->pool_max);

	/* Twice the budget in 4 KiB frames: room for overshoot while the
	 * store is full.  Reserved, so untouched frames cost nothing. */
	uint64_t nframes = up->budget / 4096 * 2 + 64;
	if (nframes > UINT32_MAX - 1)
		nframes = UINT32_MAX - 1;
	up->nframes = (uint32_t)nframes;
	up->frames = map_anon(page_round(nframes * sizeof *up->frames));
	up->free_frames = map_anon(page_round(nframes * sizeof *up->free_frames));
	up->retry_cap = RETRY_CAP;
	up->retry = map_anon(page_round(RETRY_CAP * sizeof *up->retry));
	up->regions_cap = REGIONS_MAX;
	up->regions = calloc(REGIONS_MAX, sizeof *up->regions);
	up->zero_len = UPG_MAX_PAGE;
	up->zero_buf = mmap(NULL, up->zero_len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (up->zero_buf == MAP_FAILED)
		up->zero_buf = NULL;
	if (!up->frames || !up->free_frames || !up->retry || !up->regions || !up->zero_buf) {
		snprintf(err, errlen, "out of memory for the runtime's tables");
		rc = -ENOMEM;
		goto out_tables;
	}
	/* Without /proc, mincore(): right unless the kernel swaps out pages. */
	up->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (uint32_t i = 0; i < up->nframes; i++)
		up->free_frames[i] = up->nframes - 1 - i;
	up->nfree = up->nframes;

	rc = up->pol_ops->create(up->nframes, &up->pol);
	if (rc) {
		snprintf(err, errlen, "policy %s: %s", up->policy_name, strerror(-rc));
		goto out_tables;
	}

	rc = upg_evictor_start(up, err, errlen);
	if (rc)
		goto out_policy;
	rc = upg_handlers_start(up, err, errlen);
	if (rc)
		goto out_evictor;

	upg_fork_register(up);
	upg_log(up, UPAGER_LOG_INFO, "runtime open: budget %llu bytes, store %s, policy %s, %u handler thread%s",
		(unsigned long long)up->budget, up->store.where, up->policy_name, cfg->handler_threads,
		cfg->handler_threads == 1 ? "" : "s");
	*out = up;
	return 0;

out_evictor:
	upg_evictor_stop(up);
out_policy:
	up->pol_ops->destroy(up->pol);
out_tables:
	if (up->pagemap_fd >= 0)
		close(up->pagemap_fd);
	if (up->zero_buf)
		munmap(up->zero_buf, up->zero_len);
	free(up->regions);
	if (up->retry)
		munmap(up->retry, page_round(RETRY_CAP * sizeof *up->retry));
	if (up->free_frames)
		munmap(up->free_frames, page_round((size_t)up->nframes * sizeof *up->free_frames));
	if (up->frames)
		munmap(up->frames, page_round((size_t)up->nframes * sizeof *up->frames));
	upg_pool_fini(&up->pool);
	upg_seal_fini(&up->seal);
	upg_redis_close(up->redis, false);
	upg_store_close(&up->store);
out_uffd:
	close(up->uffd);
out_free:
	upg_domain_leave(&up->dom);
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	free(up->store_path);
	free(up->policy_name);
	free(up);
	return rc;
}

static void region_free(struct upg_region *r)
{
	upg_mfile_free(r->file);
	munmap(r->pte, r->pte_len);
	munmap(r->touched, r->touched_len);
	free(r);
}

/* Release the bookkeeping of every page of r.  Lock held; no page of r is
 * in a transitional state. */
static void region_release_pages(struct upager *up, struct upg_region *r)
{
	for (uint64_t pg = 0; pg < r->npages;) {
		struct upg_pte *p = upg_pte_peek(r, pg);
		if (!p) {
			pg = (pg / UPG_PTES_PER_CHUNK + 1) * UPG_PTES_PER_CHUNK;
			continue;
		}
		if (p->state == PG_RESIDENT)
			upg_resident_release(up, r, p);
		else if (p->state == PG_POOLED)
			upg_pooled_free(up, p);
		upg_slot_free(up, r, p);
		p->state = PG_NONE;
		pg++;
	}
	/* Forget queued faults of this region. */
	uint32_t n = up->retry_count, kept = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct upg_retry rt = up->retry[(up->retry_head + i) % up->retry_cap];
		if (rt.reg != r)
			up->retry[(up->retry_head + kept++) % up->retry_cap] = rt;
	}
	up->retry_count = kept;
}

static void region_remove(struct upager *up, struct upg_region *r)
{
	uint32_t i = 0;
	while (i < up->nregions && up->regions[i] != r)
		i++;
	if (i == up->nregions)
		return;
	memmove(&up->regions[i], &up->regions[i + 1], (up->nregions - i - 1) * sizeof *up->regions);
	up->nregions--;
}

/* Wait until no page of r is owned by a handler or the evictor.  Lock held. */
static void region_quiesce(struct upager *up, struct upg_region *r)
{
	r->dying = true;
	while (r->busy)
		pthread_cond_wait(&up->idle_cond, &up->lock);
}

static int close_runtime(upager_t *up)
{
	if (!up)
		return 0;
	/* Shared file mappings' changes go to their files first; should
	 * that fail, the runtime stays open with them (-EIO). */
	if (upg_mfile_sync_all(up)) {
		upg_log(up, UPAGER_LOG_ERROR, "upager_close: a file mapping's changes could not be written to its "
			"file; the runtime stays open (call upager_close() again once the file can be written)");
		return -EIO;
	}
	upg_fork_unregister(up);
	pthread_mutex_lock(&up->lock);
	for (uint32_t i = 0; i < up->nregions; i++)
		region_quiesce(up, up->regions[i]);
	__atomic_store_n(&up->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&up->evict_cond);
	pthread_mutex_unlock(&up->lock);

	upg_evictor_stop(up);
	upg_handlers_stop(up);

	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		upg_uffd_unregister(up->uffd, r->base, r->len);
		munmap((void *)r->base, r->len);
		region_free(r);
	}
	/* Children still running read blocks of the store: it stays, for
	 * as long as they hold it open, untruncated. */
	bool children = up->children;
	upg_children_free(up);
	up->pol_ops->destroy(up->pol);
	if (up->pagemap_fd >= 0)
		close(up->pagemap_fd);
	if (up->share_pidfd >= 0)
		close(up->share_pidfd);
	munmap(up->zero_buf, up->zero_len);
	free(up->regions);
	munmap(up->retry, page_round(up->retry_cap * sizeof *up->retry));
	munmap(up->free_frames, page_round((size_t)up->nframes * sizeof *up->free_frames));
	munmap(up->frames, page_round((size_t)up->nframes * sizeof *up->frames));
	upg_pool_fini(&up->pool);
	upg_seal_fini(&up->seal);
	upg_redis_close(up->redis, children);
	if (children) {
		close(up->store.fd);
		upg_store_forget(&up->store);
	} else {
		upg_store_close(&up->store);
	}
	for (uint32_t k = 0; k < up->nanc; k++) {
		close(up->anc[k].fd);
		upg_seal_fini(&up->anc[k].seal);
	}
	close(up->uffd);
	upg_domain_leave(&up->dom);
	pthread_mutex_destroy(&up->lock);
	pthread_mutex_destroy(&up->uffd_lock);
	pthread_mutex_destroy(&up->fork_lock);
	pthread_cond_destroy(&up->evict_cond);
	pthread_cond_destroy(&up->idle_cond);
	free(up->store_path);
	free(up->policy_name);
	free(up);
	return 0;
}

/* ---- regions API ---- */

/*
 * The runtime of the preload library, when this copy of the code is in it:
 * a program that also uses the API gets that one runtime (its budget, store
 * and threads) from upager_open(), rather than a second one competing for
 * the same memory.  upager_close() of it only lets go.
 */
struct upg_tier upg_store_tier_test;
void (*upg_own_zap_test)(uintptr_t start, size_t len, bool before);

struct upager *upg_shared_runtime;

static int unmap_region(upager_t *up, void *addr);

UPAGER_API int upager_open(const struct upager_config *cfg, upager_t **out, char *err, size_t errlen)
{
	struct upager *shared = __atomic_load_n(&upg_shared_runtime, __ATOMIC_ACQUIRE);
	if (shared) {
		if (!cfg || !out)
			return -EINVAL;
		upg_log(shared, UPAGER_LOG_INFO, "upager_open() under the preload library: the program shares its "
			"runtime (UPAGER_RAM and the other settings of the preload apply)");
		*out = shared;
		return 0;
	}
	return UPG_AS_RUNTIME(open_runtime(cfg, out, err, errlen));
}

UPAGER_API int upager_close(upager_t *up)
{
	if (up && up == __atomic_load_n(&upg_shared_runtime, __ATOMIC_ACQUIRE))
		return 0;
	return UPG_AS_RUNTIME(close_runtime(up));
}

UPAGER_API int upager_unmap(upager_t *up, void *addr)
{
	return UPG_AS_RUNTIME(unmap_region(up, addr));
}

UPAGER_API int upager_map(upager_t *up, size_t len, const struct upager_map_opts *opts, void **addr)
{
	if (!up || !addr || !len)
		return -EINVAL;
	uint32_t psize = up->cfg.page_size;
	if (opts && opts->size >= offsetof(struct upager_map_opts, page_size) + sizeof opts->page_size &&
	    opts->page_size)
		psize = opts->page_size;
	return UPG_AS_RUNTIME(upg_map_at(up, 0, len, psize, 0, addr));
}

int upg_map_at(struct upager *up, uintptr_t hint, size_t len, uint32_t psize, int mflags, void **addr)
{
	return upg_map_region(up, hint, len, psize, mflags, PROT_READ | PROT_WRITE, NULL, addr);
}

int upg_map_region(struct upager *up, uintptr_t hint, size_t len, uint32_t psize, int mflags, int prot,
		   struct upg_mfile *f, void **addr)
{
	if (psize < 4096 || psize > UPG_MAX_PAGE || (psize & (psize - 1)))
		return -EINVAL;
	if (len > (1ULL << 46))
		return -ENOMEM;
	if ((hint || mflags) && (psize != 4096 || (hint & 4095)))
		return -EINVAL;
	len = (len + psize - 1) & ~((size_t)psize - 1);

	size_t slack = psize > 4096 ? psize : 0;
	char *raw = mmap((void *)hint, len + slack, prot,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | mflags, -1, 0);
	if (raw == MAP_FAILED)
		return -errno;
	uintptr_t base = ((uintptr_t)raw + psize - 1) & ~((uintptr_t)psize - 1);
	if (base > (uintptr_t)raw)
		munmap(raw, base - (uintptr_t)raw);
	if ((uintptr_t)raw + len + slack > base + len)
		munmap((void *)(base + len), (uintptr_t)raw + len + slack - (base + len));
	/* Huge pages would defeat per-page faults and UFFDIO_MOVE. */
	madvise((void *)base, len, MADV_NOHUGEPAGE);

	int rc = -ENOMEM;
	struct upg_region *r = calloc(1, sizeof *r);
	if (!r)
		goto out_unmap;
	r->file = f;
	r->base = base;
	r->len = len;
	r->psize = psize;
	r->pshift = (uint32_t)__builtin_ctz(psize);
	r->npages = len >> r->pshift;
	r->blocks = psize / UPG_BLOCK;
	r->pte_len = page_round(r->npages * sizeof *r->pte);
	r->pte = map_anon(r->pte_len);
	uint64_t chunks = (r->npages + UPG_PTES_PER_CHUNK - 1) / UPG_PTES_PER_CHUNK;
	r->touched_len = page_round((chunks + 63) / 64 * 8);
	r->touched = map_anon(r->touched_len);
	if (!r->pte || !r->touched)
		goto out_region;
	/* PG_NONE is 0 and frame must start as UPG_NOFRAME: ptes are
	 * initialised per chunk on first use instead (see upg_pte_get), so a
	 * terabyte region costs nothing up front.  We use frame only in
	 * states that set it, so zero is harmless; see pte helpers. */

	rc = upg_uffd_register(up->uffd, base, len, up->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP);
	if (rc)
		goto out_region;

	pthread_mutex_lock(&up->lock);
	if (up->nregions == up->regions_cap) {
		pthread_mutex_unlock(&up->lock);
		upg_uffd_unregister(up->uffd, base, len);
		rc = -ENFILE;
		goto out_region;
	}
	uint32_t i = up->nregions;
	while (i > 0 && up->regions[i - 1]->base > base) {
		up->regions[i] = up->regions[i - 1];
		i--;
	}
	up->regions[i] = r;
	up->nregions++;
	pthread_mutex_unlock(&up->lock);
	*addr = (void *)base;
	return 0;

out_region:
	r->file = NULL;  /* the caller's still */
	if (r->pte)
		munmap(r->pte, r->pte_len);
	if (r->touched)
		munmap(r->touched, r->touched_len);
	free(r);
out_unmap:
	munmap((void *)base, len);
	return rc;
}

static int unmap_region(upager_t *up, void *addr)
{
	if (!up || !addr)
		return -EINVAL;
	pthread_mutex_lock(&up->lock);
	struct upg_region *r = upg_region_find(up, (uintptr_t)addr);
	if (!r || r->base != (uintptr_t)addr || r->dying) {
		pthread_mutex_unlock(&up->lock);
		return -EINVAL;
	}
	if (r->file && r->file->mode == UPAGER_MAP_SHARED) {
		/* Its changes go to the file first; should that fail, the
		 * region stays, changes and all, for the caller to try again. */
		int rc = upg_mfile_flush(up, r, 0, r->npages, true);
		if (rc) {
			pthread_mutex_unlock(&up->lock);
			upg_log(up, UPAGER_LOG_ERROR, "upager_unmap: writing the file mapping at %#lx to its file "
				"failed; it stays mapped, its changes in RAM", (unsigned long)r->base);
			return rc;
		}
		if (r->dying) {
			pthread_mutex_unlock(&up->lock);
			return -EINVAL;
		}
	}
	region_quiesce(up, r);
	region_release_pages(up, r);
	region_remove(up, r);
	pthread_mutex_unlock(&up->lock);

	upg_uffd_unregister(up->uffd, r->base, r->len);
	munmap((void *)r->base, r->len);
	region_free(r);
	return 0;
}

UPAGER_API int upager_owns(const upager_t *up, const void *addr)
{
	if (!up)
		return 0;
	struct upager *u = (struct upager *)up;
	pthread_mutex_lock(&u->lock);
	int yes = upg_region_find(u, (uintptr_t)addr) != NULL;
	pthread_mutex_unlock(&u->lock);
	return yes;
}

UPAGER_API int upager_advise(upager_t *up, void *addr, size_t len, int advice)
{
	if (!up || !addr || !len)
		return -EINVAL;
	uintptr_t a = (uintptr_t)addr;
	pthread_mutex_lock(&up->lock);
	struct upg_region *r = upg_region_find(up, a);
	if (!r || a + len > r->base + r->len || a + len < a) {
		pthread_mutex_unlock(&up->lock);
		return -EINVAL;
	}
	int rc = 0;
	switch (advice) {
	case UPAGER_ADV_NORMAL:
	case UPAGER_ADV_SEQUENTIAL:
	case UPAGER_ADV_RANDOM:
		r->advice = advice;
		break;
	case UPAGER_ADV_WILLNEED: {
		uint64_t first = (a - r->base) >> r->pshift;
		uint64_t last = (a + len - 1 - r->base) >> r->pshift;
		uint64_t queued = 0;
		for (uint64_t pg = first; pg <= last && up->retry_count < up->retry_cap / 2; pg++) {
			/* In a file mapping an untouched page is the file's. */
			struct upg_pte *p = r->file ? upg_pte_get(r, pg) : upg_pte_peek(r, pg);
			if (!p) {
				pg = (pg / UPG_PTES_PER_CHUNK + 1) * UPG_PTES_PER_CHUNK - 1;
				continue;
			}
			bool in_file = r->file && p->state == PG_NONE && !p->slot && !(p->flags & PF_ZAPWAIT);
			if ((p->state != PG_STORED && p->state != PG_POOLED && !in_file) ||
			    (p->flags & (PF_DEFERRED | PF_POISONED)))
				continue;
			struct upg_retry rt = { .reg = r, .page = pg, .t0 = upg_now_ns(), .prefetch = 1 };
			if (upg_retry_push(up, &rt)) {
				p->flags |= PF_DEFERRED;
				queued++;
			}
		}
		if (queued)
			upg_kick_handlers(up);
		break;
	}
	case UPAGER_ADV_DONTNEED: {
		/* A shared file mapping's changes are the file's: they go
		 * there first, and the range then reads the file again. */
		bool in_mfile = r->file;
		if (in_mfile && r->file->mode == UPAGER_MAP_SHARED)
			rc = upg_mfile_flush(up, r, (a - r->base) >> r->pshift, ((a + len - 1 - r->base) >> r->pshift) + 1,
					     false);
		pthread_mutex_unlock(&up->lock);
		if (rc)
			return rc;
		/* Whole 4 KiB pages inside the range only: bytes around it
		 * are someone else's.  The kernel zaps them and tells the
		 * handler through a REMOVE event; the handler frees the slots. */
		uintptr_t s = (a + 4095) & ~(uintptr_t)4095, e = (a + len) & ~(uintptr_t)4095;
		if (e <= s) {
			if (!in_mfile)
				memset((void *)a, 0, len);
			return 0;
		}
		/* The partial pages at either end are zeroed by hand (a file
		 * mapping's are left: they read the file, not zeros). */
		if (!in_mfile) {
			memset((void *)a, 0, s - a);
			memset((void *)e, 0, a + len - e);
		}
		if (madvise((void *)s, e - s, MADV_DONTNEED))
			return -errno;
		/* Handled, not just read, when this returns: stats agree. */
		upg_events_barrier(up);
		return 0;
	}
	default:
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&up->lock);
	return rc;
}

static uint64_t mapped_resident(const void *p, size_t len)
{
	if (!p || !len)
		return 0;
	size_t pages = len / 4096;
	unsigned char vec[4096];
	uint64_t n = 0;
	for (size_t off = 0; off < pages; off += sizeof vec) {
		size_t k = pages - off < sizeof vec ? pages - off : sizeof vec;
		if (mincore((char *)p + off * 4096, k * 4096, vec))
			return n;
		for (size_t i = 0; i < k; i++)
			n += vec[i] & 1;
	}
	return n * 4096;
}

/* The bytes of pages s3fifo's small queue holds at a budget: a tenth of
 * the frames, which are twice the budget's (see upg_open()). */
static uint64_t small_queue(uint64_t budget)
{
	return (budget / 4096 * 2 + 64) / 10 * 4096;
}

/* The refills left at ram_budget, above the run's budget and below the
 * footprint (up->lock held): see forecast.h. */
static uint64_t forecast_above(struct upager *up, uint64_t ram_budget, uint64_t refills)
{
	/* With the pool, a part of the budget holds compressed pages, whose
	 * faults are refills too.  A pool that fills (nine tenths of) its
	 * share, with the share at one of its bounds (within a tenth), would
	 * keep that part of more RAM: the refills pushed it against a bound
	 * that is a part of the budget.  A share between its bounds is where
	 * the refills' pulls balance (see share.h), which the program's reuse
	 * distances set, not the budget; and a pool below its share holds
	 * what it is given.  Either keeps the bytes it has, and more RAM
	 * goes to pages. */
	uint64_t pool = up->pool.bytes, budget = up->budget;
	if (pool > budget - budget / 20)
		pool = budget - budget / 20;
	uint64_t pool_then = pool;
	bool bound = up->pool_max >= up->share.hi / 10 * 9 || up->pool_max <= up->share.lo + up->share.lo / 10;
	if (up->pool_max && pool >= up->pool_max / 10 * 9 && bound)
		pool_then = (uint64_t)((double)pool * (double)ram_budget / (double)budget);
	uint64_t ram = budget - pool, ram_then = ram_budget - pool_then > ram ? ram_budget - pool_then : ram;
	/* The main queue: the rest of RAM beside the small queue. */
	uint64_t small = small_queue(budget), small_then = small_queue(ram_budget);
	uint64_t main_ram = ram > small * 2 ? ram - small : ram / 2;
	uint64_t main_then = ram_then > small_then * 2 ? ram_then - small_then : ram_then / 2;
	return upg_fc_estimate(&up->fc, refills, up->c.evictions, ram, ram_then - ram, main_ram,
			       main_then > main_ram ? main_then - main_ram : 0, ram - main_ram);
}

/* The knee (see struct upager_forecast), up->lock held: in 256 steps from
 * this run's budget to the footprint, where the curve falls furthest below
 * the straight line from this run's refills to none at the footprint (both
 * scaled to 1).  Less than a fifth below it anywhere: refills fall evenly
 * with RAM, and only the footprint stops them.  Kept until the run's
 * refills or evictions move. */
static uint64_t knee(struct upager *up, uint64_t refills, uint64_t footprint)
{
	uint64_t budget = up->budget;
	if (!refills || footprint <= budget)
		return budget;
	uint64_t key = refills * 0x9e3779b97f4a7c15ULL ^ up->c.evictions ^ footprint;
	if (up->knee_for == key)
		return up->knee;
	uint64_t span = footprint - budget, at = footprint;
	double best = 0.2;
	for (unsigned i = 1; i < 256; i++) {
		uint64_t b = budget + span * i / 256;
		double below = 1.0 - (double)i / 256 - (double)forecast_above(up, b, refills) / (double)refills;
		if (below > best)
			best = below, at = b;
	}
	up->knee = at;
	up->knee_for = key;
	return at;
}

UPAGER_API int upager_forecast(upager_t *up, uint64_t ram_budget, struct upager_forecast *out)
{
	/* Callers built before knee was added pass the older, shorter size;
	 * they get what they know of, nothing past it. */
	if (!up || !out || out->size < offsetof(struct upager_forecast, knee))
		return -EINVAL;
	struct upager_forecast f = {
		.size = out->size >= sizeof f ? (uint32_t)sizeof f : (uint32_t)offsetof(struct upager_forecast, knee),
	};
	pthread_mutex_lock(&up->lock);
	uint64_t budget = up->budget, now = up->c.store_reads + up->c.pool_hits, ns = up->c.refill_ns;
	f.ram_budget = ram_budget ? ram_budget : budget;
	/* The data evicted since counts a page evicted twice twice: no
	 * more than the pages this process ever filled, then. */
	uint64_t touched = up->c.zero_fill_bytes;
	f.footprint = budget + (up->fc.most + 1) * 4096;
	if (touched && touched < f.footprint)
		f.footprint = touched > budget ? touched : budget;
	if (f.ram_budget >= f.footprint && f.ram_budget > budget) {
		f.basis = UPAGER_FORECAST_ESTIMATE;
		f.refills = 0;  /* all the data this process filled fits */
	} else if (f.ram_budget > budget) {
		f.basis = UPAGER_FORECAST_ESTIMATE;
		f.refills = forecast_above(up, f.ram_budget, now);
	} else {
		f.basis = f.ram_budget == budget ? UPAGER_FORECAST_MEASURED : UPAGER_FORECAST_AT_LEAST;
		f.refills = now;
	}
	f.refill_ns = now ? (uint64_t)((double)ns * (double)f.refills / (double)now) : 0;
	if (f.size == sizeof f)
		f.knee = knee(up, now, f.footprint);
	pthread_mutex_unlock(&up->lock);
	memcpy(out, &f, f.size);  /* size too: what was filled */
	return 0;
}

UPAGER_API int upager_stats(upager_t *up, struct upager_stats *out)
{
	if (!up || !out || out->size < offsetof(struct upager_stats, metadata_bytes))
		return -EINVAL;
	struct upager_stats st;
	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	/* Events already read (a discard whose madvise has returned) are
	 * counted before we look. */
	upg_events_barrier(up);
	pthread_mutex_lock(&up->lock);
	st.regions = up->nregions;
	st.ram_budget = up->budget;
	st.resident_bytes = up->resident;
	st.resident_peak = up->resident_peak;
	st.zero_fills = up->c.zero_fills;
	st.store_reads = up->c.store_reads;
	st.readahead_pages = up->c.readahead_pages;
	st.refaults = up->c.refaults;
	st.wp_faults = up->c.wp_faults;
	st.evictions = up->c.evictions;
	st.writebacks = up->c.writebacks;
	st.clean_drops = up->c.clean_drops;
	st.zero_skips = up->c.zero_skips;
	st.discards = up->c.discards;
	st.bytes_read = up->c.bytes_read;
	st.bytes_written = up->c.bytes_written;
	st.store_slots_used = up->store.used_blocks;
	st.store_bytes = up->store.size_blocks * UPG_BLOCK;
	st.write_errors = up->c.write_errors;
	st.store_full = up->c.store_full;
	st.overshoot_bytes = up->resident > up->budget ? up->resident - up->budget : 0;
	st.overshoot_peak = up->c.overshoot_peak;
	st.fault_ns_total = up->c.fault_ns_total;
	st.fault_count = up->c.fault_count;
	st.fault_p50_ns = upg_hist_pct(&up->hist, 50);
	st.fault_p99_ns = upg_hist_pct(&up->hist, 99);
	st.fault_max_ns = up->hist.max;
	uint64_t meta = mapped_resident(up->frames, page_round((size_t)up->nframes * sizeof *up->frames)) +
			mapped_resident(up->free_frames, page_round((size_t)up->nframes * sizeof *up->free_frames)) +
			mapped_resident(up->retry, page_round(up->retry_cap * sizeof *up->retry)) +
			mapped_resident(up->store.bitmap, up->store.bitmap_len);
	for (uint32_t i = 0; i < up->nregions; i++)
		meta += mapped_resident(up->regions[i]->pte, up->regions[i]->pte_len) +
			mapped_resident(up->regions[i]->touched, up->regions[i]->touched_len);
	meta += upg_seal_resident(&up->seal) + upg_pool_metadata(&up->pool);
	st.metadata_bytes = meta;
	st.read_errors = up->c.read_errors;
	st.integrity_errors = up->c.integrity_errors;
	st.poisoned_pages = up->c.poisoned;
	st.polls = __atomic_load_n(&up->c.polls, __ATOMIC_RELAXED);
	st.poll_hits = __atomic_load_n(&up->c.poll_hits, __ATOMIC_RELAXED);
	st.poll_cpu_ns = __atomic_load_n(&up->c.poll_cpu_ns, __ATOMIC_RELAXED);
	st.pool_bytes = up->pool.bytes;
	st.pool_pages = up->pool.objects;
	st.pool_hits = up->c.pool_hits;
	st.pool_puts = up->c.pool_puts;
	st.pool_rejects = up->c.pool_rejects;
	st.pool_writebacks = up->c.pool_writebacks;
	st.pool_drops = up->c.pool_drops;
	st.pool_repools = up->c.pool_repools;
	st.pool_skips = up->c.pool_skips;
	st.takeout_calls = __atomic_load_n(&up->c.takeout_calls, __ATOMIC_RELAXED);
	st.takeout_pages = __atomic_load_n(&up->c.takeout_pages, __ATOMIC_RELAXED);
	st.takeout_alone = __atomic_load_n(&up->c.takeout_alone, __ATOMIC_RELAXED);
	st.locked_stays = __atomic_load_n(&up->c.locked_stays, __ATOMIC_RELAXED);
	uint64_t now = upg_now_ns();
	st.wall_ns = now - up->stall.start_ns;
	st.stall_some_ns = up->stall.some_ns;
	st.stall_all_ns = up->stall.full_ns;
	upg_stall_recent(&up->stall, now, &st.stall_recent_ns, &st.stall_some_recent_ns, &st.stall_all_recent_ns);
	st.stall_threads = up->stall.threads ? up->stall.threads : 1;
	st.pool_share_bytes = up->pool.algo == UPG_POOL_OFF ? 0 : upg_share_bytes(&up->share);
	st.pool_share_most = up->pool.algo == UPG_POOL_OFF ? 0 : up->share.hi;
	pthread_mutex_unlock(&up->lock);
	size_t n = out->size < sizeof st ? out->size : sizeof st;
	uint32_t keep = out->size;
	memcpy(out, &st, n);
	out->size = keep;
	return 0;
}
