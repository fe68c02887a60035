/* SPDX-License-Identifier: MIT */
/*
 * The tier interface (src/tier.h), driven by the real fault loop and
 * evictor through a fake store tier that keeps the blocks in memory and
 * completes requests on a thread of its own, newest first, in batches: the
 * handlers see reads complete out of order and from another thread, the
 * evictor sees its writes do the same.  Some requests fail (-EIO) on their
 * first try: a failed write keeps its pages in RAM, a failed read is
 * retried.  Data are checked after eviction and refault, by several
 * threads at once.  In the on-ring case the reads a handler submits are
 * done on that handler's own ring instead (tier.h's tier_cqes, as the
 * Redis store's direct reads): each waits on a timeout of its own length,
 * so they end out of order, and is answered in the tier's callback on the
 * handler's thread.
 */
#include <check.h>
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define BUDGET (1ULL << 20)
#define REGION (8ULL << 20)
#define STORE_MAX (64ULL << 20)
#define NTHREADS 8
#define MAXREQ 4096

struct req {
	struct upg_tq *q;
	uint64_t loc, tag, seq;
	void *buf;
	const void *src;
	uint32_t len;
	bool write;
};

static struct fake {
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct req req[MAXREQ];
	uint32_t n;
	uint64_t seq;
	char *mem;
	bool stop, fail, on_ring;
	uint8_t failed[2][STORE_MAX / 4096];  /* [write][block]: it failed once */
	uint64_t reads, writes, out_of_order, failed_reads, failed_writes;
	uint64_t ring_reads, locals, locals_freed;   /* the on-ring case */
	pthread_t thr;
} fk = { .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void enqueue(struct upg_tq *q, uint64_t loc, void *buf, const void *src, uint32_t len, uint64_t tag,
		    bool write)
{
	pthread_mutex_lock(&fk.m);
	ck_assert_uint_lt(fk.n, MAXREQ);
	ck_assert_uint_eq(upg_slot_store((uint32_t)loc), 0);
	fk.req[fk.n++] = (struct req){ .q = q, .loc = loc, .tag = tag, .seq = fk.seq++, .buf = buf, .src = src,
				       .len = len, .write = write };
	pthread_cond_signal(&fk.cv);
	pthread_mutex_unlock(&fk.m);
}

/* Do r, failing it now and then; its completion to its queue. */
static void answer(struct req *r)
{
	char *at = fk.mem + upg_slot_block((uint32_t)r->loc) * 4096;
	ck_assert(at + r->len <= fk.mem + STORE_MAX);
	/* A block fails once at most, or a read retried four times could
	 * fail every time by chance. */
	pthread_mutex_lock(&fk.m);
	uint8_t *once = &fk.failed[r->write][upg_slot_block((uint32_t)r->loc)];
	bool fail = fk.fail && r->seq % 11 == 5 && !*once;
	*once |= fail;
	if (r->write) {
		fk.writes++;
		fk.failed_writes += fail;
	} else {
		fk.reads++;
		fk.failed_reads += fail;
	}
	pthread_mutex_unlock(&fk.m);
	int res = fail ? -EIO : (int)r->len;
	if (r->write && !fail)
		memcpy(at, r->src, r->len);
	else if (!fail)
		memcpy(r->buf, at, r->len);
	upg_tq_post(r->q, r->tag, res);
}

/* The on-ring case: a handler's reads wait on its ring. */
struct ring_read {
	struct req r;
	struct __kernel_timespec ts;
	bool used;
};

struct local {
	struct ring_read rr[MAXREQ];
	uint64_t last;           /* the latest read answered so far */
};

static void local_cqe(struct upg_tq *q, uint64_t tag, int res)
{
	struct local *l = q->tier_local;
	struct ring_read *x = &l->rr[tag & 0xffff];
	ck_assert(x->used);
	ck_assert_int_eq(res, -ETIME);
	ck_assert(pthread_equal(q->owner, pthread_self()));
	x->used = false;
	__atomic_fetch_add(&fk.ring_reads, 1, __ATOMIC_RELAXED);
	if (x->r.seq < l->last)
		__atomic_fetch_add(&fk.out_of_order, 1, __ATOMIC_RELAXED);
	else
		l->last = x->r.seq;
	answer(&x->r);
}

static void local_free(void *l, bool forked)
{
	ck_assert(!forked);
	__atomic_fetch_add(&fk.locals_freed, 1, __ATOMIC_RELAXED);
	free(l);
}

static bool ring_read(struct upg_tq *q, uint64_t loc, void *buf, uint32_t len, uint64_t tag)
{
	if (!fk.on_ring || !q->tier_cqes || !pthread_equal(q->owner, pthread_self()))
		return false;
	if (!q->tier_local) {
		ck_assert_ptr_null(q->tier_cqe);
		q->tier_local = calloc(1, sizeof(struct local));
		ck_assert_ptr_nonnull(q->tier_local);
		q->tier_cqe = local_cqe;
		q->tier_free = local_free;
		__atomic_fetch_add(&fk.locals, 1, __ATOMIC_RELAXED);
	}
	struct local *l = q->tier_local;
	uint32_t i = 0;
	while (i < MAXREQ && l->rr[i].used)
		i++;
	ck_assert_uint_lt(i, MAXREQ);
	struct ring_read *x = &l->rr[i];
	pthread_mutex_lock(&fk.m);
	uint64_t seq = fk.seq++;
	pthread_mutex_unlock(&fk.m);
	*x = (struct ring_read){ .r = { .q = q, .loc = loc, .tag = tag, .seq = seq, .buf = buf, .len = len },
				 .ts = { 0, (long long)(seq * 7919 % 300) * 1000 }, .used = true };
	struct io_uring_sqe *sqe = upg_tq_sqe(q);
	io_uring_prep_timeout(sqe, &x->ts, 0, 0);
	io_uring_sqe_set_data64(sqe, UPG_TQ_TIER | i);
	return true;
}

static void fake_read(void *t, struct upg_tq *q, uint64_t loc, void *buf, uint32_t len, uint64_t tag)
{
	if (!ring_read(q, loc, buf, len, tag))
		enqueue(q, loc, buf, NULL, len, tag, false);
}

static void fake_write(void *t, struct upg_tq *q, uint64_t loc, const void *buf, uint32_t len, uint64_t tag)
{
	enqueue(q, loc, NULL, buf, len, tag, true);
}

static const struct upg_tier_ops fake_ops = { .name = "fake", .read = fake_read, .write = fake_write };

/* Complete what is pending newest first, after letting a batch gather. */
static void *completer(void *arg)
{
	struct req batch[MAXREQ];
	pthread_mutex_lock(&fk.m);
	while (!fk.stop) {
		if (!fk.n) {
			pthread_cond_wait(&fk.cv, &fk.m);
			continue;
		}
		pthread_mutex_unlock(&fk.m);
		usleep(200);
		pthread_mutex_lock(&fk.m);
		uint32_t n = fk.n;
		memcpy(batch, fk.req, n * sizeof batch[0]);
		fk.n = 0;
		pthread_mutex_unlock(&fk.m);
		for (uint32_t i = n; i-- > 0;) {
			if (i + 1 < n)
				__atomic_fetch_add(&fk.out_of_order, 1, __ATOMIC_RELAXED);
			answer(&batch[i]);
		}
		pthread_mutex_lock(&fk.m);
	}
	pthread_mutex_unlock(&fk.m);
	return NULL;
}

static upager_t *up;
static char *region;
static uint32_t psize;
static uint64_t npages;
static uint32_t *gen;

static void start(uint32_t ps, bool fail, bool on_ring)
{
	memset(&fk.req, 0, sizeof fk.req);
	fk.n = 0;
	fk.stop = false;
	fk.fail = fail;
	fk.on_ring = on_ring;
	fk.reads = fk.writes = fk.out_of_order = fk.failed_reads = fk.failed_writes = 0;
	fk.ring_reads = fk.locals = fk.locals_freed = 0;
	memset(fk.failed, 0, sizeof fk.failed);
	fk.mem = mmap(NULL, STORE_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(fk.mem, MAP_FAILED);
	ck_assert_int_eq(pthread_create(&fk.thr, NULL, completer, NULL), 0);
	upg_store_tier_test = (struct upg_tier){ &fake_ops, &fk };
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = BUDGET;
	cfg.store_max = STORE_MAX;
	cfg.handler_threads = 2;
	cfg.page_size = ps;
	cfg.compress = "off";  /* every eviction reaches the fake tier */
	up = upg_t_open_config(&cfg);
	upg_store_tier_test = (struct upg_tier){ 0 };
	psize = ps;
	npages = REGION / ps;
	void *a;
	ck_assert_int_eq(upager_map(up, REGION, NULL, &a), 0);
	region = a;
	gen = calloc(npages, sizeof *gen);
	for (uint64_t pg = 0; pg < npages; pg++) {
		upg_t_fill(region + pg * psize, psize, pg, 1);
		gen[pg] = 1;
	}
}

static void stop(void)
{
	ck_assert_int_eq(upager_close(up), 0);
	pthread_mutex_lock(&fk.m);
	fk.stop = true;
	pthread_cond_signal(&fk.cv);
	pthread_mutex_unlock(&fk.m);
	pthread_join(fk.thr, NULL);
	munmap(fk.mem, STORE_MAX);
	free(gen);
}

/* Thread t owns the pages pg % NTHREADS == t: it checks and rewrites them
 * in a random order, and reads every page with a known generation. */
static void *worker(void *arg)
{
	uint64_t t = (uintptr_t)arg, rng = 0x9e37 + t;
	uint64_t bad = 0;
	for (int i = 0; i < 3000; i++) {
		uint64_t pg = upg_t_rand(&rng) % npages;
		if (pg % NTHREADS == t) {
			bad += upg_t_check(region + pg * psize, psize, pg, gen[pg]) != 0;
			gen[pg]++;
			upg_t_fill(region + pg * psize, psize, pg, gen[pg]);
		} else {
			/* Someone else's page, maybe being rewritten: only
			 * touched, to make faults on pages others own. */
			volatile uint64_t *w = (volatile uint64_t *)(region + pg * psize);
			(void)w[0];
		}
	}
	return (void *)(uintptr_t)bad;
}

static void run(uint32_t ps, bool fail, bool on_ring)
{
	start(ps, fail, on_ring);
	uint64_t bad = upg_t_threads_sum(worker, NTHREADS);
	for (uint64_t pg = 0; pg < npages; pg++)
		bad += upg_t_check(region + pg * psize, psize, pg, gen[pg]) != 0;
	struct upager_stats st = { .size = sizeof st };
	ck_assert_int_eq(upager_stats(up, &st), 0);
	printf("%u-byte pages%s%s: %lu reads (%lu on a handler's ring) and %lu writes through the fake tier, "
	       "%lu out of order, %lu and %lu failed; %lu evictions, %lu store reads\n", ps, fail ? ", failures" : "",
	       on_ring ? ", on ring" : "", (unsigned long)fk.reads, (unsigned long)fk.ring_reads,
	       (unsigned long)fk.writes, (unsigned long)fk.out_of_order,
	       (unsigned long)fk.failed_reads, (unsigned long)fk.failed_writes, (unsigned long)st.evictions,
	       (unsigned long)st.store_reads);
	ck_assert_uint_eq(bad, 0);
	/* The fault loop and the evictor really went through the tier, and
	 * were answered out of order. */
	ck_assert_uint_gt(fk.reads, 100);
	ck_assert_uint_gt(fk.writes, 10);
	if (on_ring)
		ck_assert_uint_gt(fk.ring_reads, 100);
	ck_assert_uint_gt(fk.out_of_order, 10);
	ck_assert_uint_ge(st.store_reads, 100);
	if (fail) {
		ck_assert_uint_gt(fk.failed_reads, 0);
		ck_assert_uint_gt(fk.failed_writes, 0);
		ck_assert_uint_gt(st.write_errors, 0);
	}
	stop();
	/* Each handler's state went with it. */
	ck_assert_uint_eq(fk.locals_freed, fk.locals);
	if (on_ring)
		ck_assert_uint_gt(fk.locals, 0);
}

START_TEST(test_out_of_order_4k) { run(4096, false, false); }
END_TEST
START_TEST(test_out_of_order_64k) { run(65536, false, false); }
END_TEST
START_TEST(test_failures) { run(4096, true, false); }
END_TEST
START_TEST(test_on_ring) { run(4096, false, true); }
END_TEST
START_TEST(test_on_ring_failures) { run(65536, true, true); }
END_TEST

int main(void)
{
	Suite *s = suite_create("tier");
	TCase *tc = tcase_create("fake");
	tcase_add_test(tc, test_out_of_order_4k);
	tcase_add_test(tc, test_out_of_order_64k);
	tcase_add_test(tc, test_failures);
	tcase_add_test(tc, test_on_ring);
	tcase_add_test(tc, test_on_ring_failures);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
