/* SPDX-License-Identifier: MIT */
/*
 * fork(): the child sees the parent's memory as it was at fork time,
 * including pages that were in the store (see struct upg_child).
 *
 * pthread_atfork handlers, for every open runtime:
 *   prepare: take fork_lock (waits for the evictor's batch in flight, so no
 *            page is half evicted) and make the hang-up pipe;
 *   parent:  close the pipe's write end, release fork_lock;
 *   child:   close the read end, keep the (close-on-exec) write end, and
 *            mark the process a forked child.
 * Between prepare and parent, the kernel sends a FORK event; the handler
 * thread that reads it takes the snapshot (fault.c: child_attach).
 */
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_RUNTIMES 64

int upg_forked_child;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upager *runtimes[MAX_RUNTIMES];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_RUNTIMES; i++) {
		struct upager *up = runtimes[i];
		if (!up)
			continue;
		pthread_mutex_lock(&up->fork_lock);
		int p[2];
		if (pipe2(p, O_CLOEXEC) == 0) {
			/* Under up->lock, as child_attach() on a handler
			 * thread reads them under it (order: fork_lock, then
			 * up->lock, as in parent()). */
			pthread_mutex_lock(&up->lock);
			up->fork_hup_rd = p[0];
			up->fork_hup_wr = p[1];
			pthread_mutex_unlock(&up->lock);
		}
	}
}

static void parent(void)
{
	for (int i = 0; i < MAX_RUNTIMES; i++) {
		struct upager *up = runtimes[i];
		if (!up)
			continue;
		/* fork() returns once a handler has read the FORK event, and a
		 * handler holds uffd_lock from that read until child_attach()
		 * has taken the read end: waiting for uffd_lock here means a
		 * read end still here was not wanted by any FORK event. */
		pthread_mutex_lock(&up->uffd_lock);
		pthread_mutex_lock(&up->lock);
		if (up->fork_hup_wr >= 0)
			close(up->fork_hup_wr);
		if (up->fork_hup_rd >= 0)
			close(up->fork_hup_rd);  /* no FORK event took it */
		up->fork_hup_rd = up->fork_hup_wr = -1;
		pthread_mutex_unlock(&up->lock);
		pthread_mutex_unlock(&up->uffd_lock);
		pthread_mutex_unlock(&up->fork_lock);
	}
	pthread_mutex_unlock(&reg_lock);
}

static void child(void)
{
	upg_forked_child = 1;
	for (int i = 0; i < MAX_RUNTIMES; i++) {
		struct upager *up = runtimes[i];
		if (!up)
			continue;
		/* The read end may be the copy of one the parent's handler
		 * already took; closing our copy is right either way. */
		if (up->fork_hup_rd >= 0)
			close(up->fork_hup_rd);
		/* The runtime is unusable here (its threads are the parent's);
		 * forget it, so a fork in this child does not wait on its
		 * locks.  The parent serves grandchildren too. */
		runtimes[i] = NULL;
	}
	pthread_mutex_init(&reg_lock, NULL);
}

static void install(void)
{
	pthread_atfork(prepare, parent, child);
}

void upg_fork_register(struct upager *up)
{
	up->fork_hup_rd = up->fork_hup_wr = -1;
	pthread_once(&once, install);
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_RUNTIMES; i++)
		if (!runtimes[i]) {
			runtimes[i] = up;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
}

void upg_fork_unregister(struct upager *up)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_RUNTIMES; i++)
		if (runtimes[i] == up)
			runtimes[i] = NULL;
	pthread_mutex_unlock(&reg_lock);
}

/* mmap, not malloc: this runs on a handler thread while the forking thread
 * may hold glibc's malloc locks (fork() takes them around the syscall). */
static struct upg_snap *snap_alloc(uint64_t n, size_t *len)
{
	*len = ((n ? n : 1) * sizeof(struct upg_snap) + 4095) & ~(size_t)4095;
	void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The pages a child must read from the store: those of from's view, or the
 * parent's STORED and READING pages (a READING page's slot holds its data).
 * Writes them to out when it is not NULL; returns how many. */
static uint64_t stored_pages(struct upager *up, const struct upg_child *from, struct upg_snap *out)
{
	uint64_t k = 0;
	if (from) {
		for (uint64_t i = 0; i < from->nsnap; i++)
			if (from->snap[i].slot) {
				if (out)
					out[k] = from->snap[i];
				k++;
			}
		return k;
	}
	for (uint32_t i = 0; i < up->nregions; i++) {
		struct upg_region *r = up->regions[i];
		for (uint64_t pg = 0; pg < r->npages;) {
			struct upg_pte *p = upg_pte_peek(r, pg);
			if (!p) {
				pg = (pg / UPG_PTES_PER_CHUNK + 1) * UPG_PTES_PER_CHUNK;
				continue;
			}
			/* A READING page whose discard was seen already reads
			 * as zeros: its old slot is not the child's data. */
			if (p->slot && (p->state == PG_STORED || p->state == PG_READING) &&
			    !(p->flags & PF_DISCARDED)) {
				if (out)
					out[k] = (struct upg_snap){ .addr = r->base + (pg << r->pshift),
								    .slot = p->slot, .psize = r->psize };
				k++;
			}
			pg++;
		}
	}
	return k;
}

int upg_snapshot_take(struct upager *up, const struct upg_child *from, struct upg_child *c)
{
	c->snap = snap_alloc(stored_pages(up, from, NULL), &c->snap_len);
	if (!c->snap)
		return -ENOMEM;
	c->nsnap = stored_pages(up, from, c->snap);
	for (uint64_t i = 0; i < c->nsnap; i++)
		upg_store_freeze(&up->store, c->snap[i].slot - 1, c->snap[i].psize / UPG_BLOCK);
	return 0;
}

const struct upg_snap *upg_snapshot_find(const struct upg_child *c, uintptr_t addr)
{
	uint64_t lo = 0, hi = c->nsnap;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		const struct upg_snap *s = &c->snap[mid];
		if (addr < s->addr)
			hi = mid;
		else if (addr >= s->addr + s->psize)
			lo = mid + 1;
		else
			return s;
	}
	return NULL;
}

void upg_children_refreeze(struct upager *up)
{
	upg_store_unfreeze(&up->store);
	for (struct upg_child *c = up->children; c; c = c->next) {
		if (c->dead)
			continue;
		for (uint64_t i = 0; i < c->nsnap; i++)
			if (c->snap[i].slot)
				upg_store_freeze(&up->store, c->snap[i].slot - 1, c->snap[i].psize / UPG_BLOCK);
	}
	upg_store_reap(&up->store);
}

void upg_children_release(struct upager *up)
{
	/* The handlers still run, and free children that end: from now on
	 * they leave them on the list, for upager_close() to free. */
	pthread_mutex_lock(&up->lock);
	up->children_pinned = true;
	struct upg_child *list = up->children;
	bool any = false;
	for (struct upg_child *c = list; c; c = c->next)
		any |= !__atomic_load_n(&c->dead, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&up->lock);
	if (!any)
		return;
	char *buf = mmap(NULL, UPG_MAX_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return;
	for (struct upg_child *c = list; c; c = c->next) {
		if (__atomic_load_n(&c->dead, __ATOMIC_ACQUIRE))
			continue;
		/* Copy every page the child has not faulted in yet (present ones
		 * answer -EEXIST and are skipped), then let go of its ranges.
		 * What is read is checked (and decrypted) like any store read;
		 * a block that fails is poisoned in the child: SIGBUS there,
		 * never wrong data. */
		uint64_t lost = 0;
		for (uint64_t i = 0; i < c->nsnap; i++) {
			struct upg_snap s = c->snap[i];
			if (!s.slot)
				continue;
			ssize_t got = pread(up->store.fd, buf, s.psize, (off_t)(s.slot - 1) * UPG_BLOCK);
			int rc = -EIO;
			if (got == (ssize_t)s.psize && upg_seal_read(&up->seal, s.slot - 1, buf, s.psize) >= 0) {
				rc = upg_uffd_poison(c->uffd, s.addr, s.psize);
				if (rc == -ESRCH)
					break;
				lost += rc != -EEXIST;  /* a page it has already is not lost */
				continue;
			}
			if (got == (ssize_t)s.psize) {
				for (int tries = 0; tries < 1000; tries++) {
					rc = upg_uffd_copy(c->uffd, s.addr, buf, s.psize, NULL);
					if (rc != -EAGAIN)
						break;
					usleep(100);  /* a child event waits for the handler */
				}
			}
			if (rc == -ESRCH)
				break;  /* the child has exited already */
			if (rc && rc != -ENOENT)
				lost++;
		}
		for (uint32_t i = 0; i < up->nregions; i++)
			upg_uffd_unregister(c->uffd, up->regions[i]->base, up->regions[i]->len);
		upg_uffd_unregister(c->uffd, up->scratch, up->scratch_len);
		if (lost)
			upg_log(up, UPAGER_LOG_ERROR, "handing %llu page(s) to a forked child failed",
				(unsigned long long)lost);
	}
	munmap(buf, UPG_MAX_PAGE);
}
