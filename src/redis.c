/* SPDX-License-Identifier: MIT */
/* The Redis store (see redis.h). */
#include "redis.h"
#include "base.h"
#include "seal.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <liburing.h>
#include <lz4.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "upager.h"

#define NODES_MAX 64
#define CONNS_MAX 16
#define FIFO_CAP 4096u           /* requests in flight on one connection */
#define IBUF (256u << 10)        /* a connection's receive buffer */
#define FEED 8192u               /* fed to the reply reader at a time */
#define TICK_NS 10000000ull      /* the thread looks at deadlines this often */
#define LEASE_S 60               /* default */
#define RECONNECT_NS 100000000ull
#define REDIRECTS_MAX 16
#define VMAGIC 0x31475055u       /* "UPG1" */
#define BLOCK 4096u
#define VF_LZ4 1u                /* vhdr.flags: the bytes are the block compressed with LZ4 */
#define LZ4_MOST (BLOCK / 4 * 3) /* a block that compresses to more goes as it is */
/* Blocks of one group share a hash slot ("{G}" in their keys), so that a
 * run of them is one MGET or MSET, on one node of a cluster. */
#define GROUP_SHIFT 6
#define GROUP (1u << GROUP_SHIFT)

enum { RQ_GET, RQ_SET, RQ_CTL };
enum { REG_NONE, REG_PENDING, REG_DONE };
enum { C_DOWN, C_CONNECTING, C_UP, C_DRAINING };
enum { T_KICK = 1, T_RECV, T_SEND, T_CONN };

struct vhdr {
	uint32_t magic;
	uint32_t gen;
	uint32_t crc;
	uint16_t len;
	uint16_t flags;
};

/* One submitted read or write: its blocks are requests of their own. */
struct rop {
	struct upg_tq *q;
	uint64_t tag;
	char *buf;
	uint32_t len, left;
	int res;
};

struct rwait {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
	int res;
};

/* An MGET or MSET of up to GROUP blocks of one group (one hash slot), or
 * a control command (no op). */
struct rq {
	struct rop *op;
	struct rq *next;
	uint64_t deadline;
	uint64_t not_before;     /* retry list: not before then */
	uint32_t block;          /* the first */
	uint16_t part, count;    /* the first's place in op, and how many */
	uint8_t kind, store, tries, redirects;
	bool reg;                /* RQ_CTL: the namespace's registration */
	bool renewal;            /* RQ_CTL: a lease's renewal */
	uint8_t unplace;         /* RQ_CTL: a renewal of namespace k, whose fork placeholder goes once it is in */
	bool unsure;             /* RQ_SET: was on a connection that went down unanswered */
	int16_t slot;            /* RQ_CTL: its key's hash slot; -1: sent to node `block` */
	struct rwait *w;         /* someone waits for it (upg_redis_fork_prepare()) */
	int16_t ask;             /* node to send ASKING to first, or -1 */
	char *ctl;               /* RQ_CTL, RQ_SET: the formatted command */
	int ctl_len;
	uint32_t gen[];          /* each block's generation: written, or expected */
};

struct conn {
	int fd, state, err;
	bool recv_on, send_on, poll_on;  /* on the ring: a recv, a send, a connect's poll */
	bool gave_up;            /* C_CONNECTING past its time: shut down */
	uint64_t connect_by;
	redisReader *rd;
	char *ibuf;
	char *out;               /* being sent */
	size_t out_len, out_off, out_cap;
	char *next;              /* gathering */
	size_t next_len, next_cap;
	struct rq **fifo;        /* sent, waiting for their replies, in order */
	uint32_t head, tail;
	uint32_t sets;           /* MSETs among them */
	uint64_t next_try;
};

struct node {
	char name[300];          /* host:port or the socket's path */
	struct sockaddr_storage sa;
	socklen_t salen;
	struct conn c[CONNS_MAX];
	uint32_t rr;
	int err;                 /* the last connection's failure */
	struct rq *wait;         /* no connection up yet */
};

struct upg_redis {
	struct upager *up;
	char where[400];
	uint32_t timeout_ms, nconns, lease_s;
	bool cluster;
	struct node *nodes[NODES_MAX];
	uint32_t nnodes;
	uint8_t slot_node[16384];
	/* namespaces: 0 this process's, k the k-th ancestor's */
	char ns[1 + UPG_ANCESTORS][17];
	uint32_t *gen[1 + UPG_ANCESTORS];
	uint32_t nns;
	size_t gen_len;
	uint64_t blocks;
	uint64_t hw;             /* own blocks written: [0, hw) */
	bool lz4;                /* values go compressed: compress=lz4 (the default), not encrypted */
	/* upg:runs is a sorted set of "NS HOST PID", scored by when the
	 * lease runs out (the registry node's clock: clock_off). */
	char member[1 + UPG_ANCESTORS][96];
	char hostid[48];         /* this boot and pid namespace: where a pid means a process */
	int64_t clock_off;
	int reg;                 /* own namespace: REG_NONE, REG_PENDING, REG_DONE */
	struct rq *held, *held_tail; /* writes waiting for the registration */

	pthread_t tid;
	bool running;
	struct io_uring ring;
	int kick_fd;
	pthread_mutex_t lock;
	struct rq *in, *in_tail; /* submitted, not yet taken by the thread */
	bool stop;
	struct rq *retry;        /* redirected or told to wait */
	uint64_t renew_at;
	uint64_t said_at;
	char said[200];
	uint64_t n_moved, n_ask, n_again, n_wait, n_fail;   /* for the closing line */
	uint64_t n_direct, n_handoff; /* reads a handler sent itself; of those, handed to the thread */
	uint32_t forks;          /* placeholders made (upg_redis_fork_prepare()) */
	int fork_pid;            /* the process that made the last of them */
	bool placed;             /* for the fork under way (upg_redis_fork_prepare()) */
	/* In a forked child: the placeholders its parent made for the
	 * namespaces it reads, removed once it has listed them itself. */
	char placeholder[1 + UPG_ANCESTORS][96];
};

/* ---- small things ---- */

static uint16_t crc16(const char *buf, size_t len)
{
	/* CRC16-CCITT (XMODEM), as Redis Cluster's key slots. */
	uint16_t crc = 0;
	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)buf[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

static uint32_t key_slot(const char *key, size_t len)
{
	const char *o = memchr(key, '{', len);
	if (o) {
		const char *c = memchr(o + 1, '}', len - (size_t)(o + 1 - key));
		if (c && c > o + 1)
			return crc16(o + 1, (size_t)(c - o - 1)) & 16383;
	}
	return crc16(key, len) & 16383;
}

/* "upg:NS:{G}L": G the block's group, L its place in it. */
static int block_key(const struct upg_redis *rd, uint32_t store, uint32_t block, char *out, size_t len)
{
	return snprintf(out, len, "upg:%s:{%x}%x", rd->ns[store], block >> GROUP_SHIFT, block & (GROUP - 1));
}

/* Say a trouble, at most once a second unless it is a new one. */
static void say(struct upg_redis *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct upg_redis *rd, const char *fmt, ...)
{
	char m[sizeof rd->said];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	uint64_t now = upg_now_ns();
	if (!strcmp(m, rd->said) && now - rd->said_at < 1000000000ull)
		return;
	rd->said_at = now;
	memcpy(rd->said, m, sizeof m);
	upg_log(rd->up, UPAGER_LOG_WARN, "redis store: %s", m);
}

bool upg_redis_url(const char *path)
{
	return path && (!strncmp(path, "redis://", 8) || !strncmp(path, "unix:/", 6));
}

void upg_redis_compress(struct upg_redis *rd, bool can)
{
	rd->lz4 = rd->lz4 && can;
}

const char *upg_redis_where(const struct upg_redis *rd)
{
	return rd->where;
}

/* ---- nodes and connections ---- */

static int node_add(struct upg_redis *rd, const char *host, int port, const char *path, char *err, size_t errlen)
{
	char name[300];
	if (path)
		snprintf(name, sizeof name, "%s", path);
	else
		snprintf(name, sizeof name, "%s:%d", host, port);
	for (uint32_t i = 0; i < rd->nnodes; i++)
		if (!strcmp(rd->nodes[i]->name, name))
			return (int)i;
	if (rd->nnodes == NODES_MAX) {
		snprintf(err, errlen, "more than %d Redis nodes", NODES_MAX);
		return -E2BIG;
	}
	struct node *n = calloc(1, sizeof *n);
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(n->name, name, sizeof name);
	if (path) {
		struct sockaddr_un *un = (struct sockaddr_un *)&n->sa;
		if (strlen(path) >= sizeof un->sun_path) {
			free(n);
			snprintf(err, errlen, "the Redis socket path '%s' is too long (at most %zu bytes)", path,
				 sizeof un->sun_path - 1);
			return -ENAMETOOLONG;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		n->salen = sizeof *un;
	} else {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
		char ps[16];
		snprintf(ps, sizeof ps, "%d", port);
		int g = getaddrinfo(host, ps, &hints, &ai);
		if (g || !ai) {
			free(n);
			snprintf(err, errlen, "Redis node '%s': cannot resolve '%s': %s", name, host, gai_strerror(g));
			return -EHOSTUNREACH;
		}
		memcpy(&n->sa, ai->ai_addr, ai->ai_addrlen);
		n->salen = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	for (int c = 0; c < CONNS_MAX; c++)
		n->c[c].fd = -1;
	rd->nodes[rd->nnodes] = n;
	/* Read by the handlers' direct reads. */
	__atomic_store_n(&rd->nnodes, rd->nnodes + 1, __ATOMIC_RELEASE);
	return (int)rd->nnodes - 1;
}

/* A connected socket to n within ms, or -errno. */
/* A non-blocking socket to n, its connect started (or done): the fd, or
 * -errno. */
static int sock_open(const struct node *n)
{
	int fd = socket(n->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (n->sa.ss_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	if (connect(fd, (const struct sockaddr *)&n->sa, n->salen) && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int dial(const struct node *n, uint32_t ms)
{
	int fd = sock_open(n);
	if (fd < 0)
		return fd;
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int pr = poll(&p, 1, (int)ms);
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (pr <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
		close(fd);
		return pr == 0 ? -ETIMEDOUT : soerr ? -soerr : -EIO;
	}
	return fd;
}

static uint64_t ctag(int kind, uint32_t ni, uint32_t ci);
static struct io_uring_sqe *sqe_get(struct upg_redis *rd);
static void route(struct upg_redis *rd, struct rq *q);

/* Start connecting c (of node ni) without waiting: its poll completes on
 * the ring (conn_ready()).  false when it failed at once. */
static bool conn_start(struct upg_redis *rd, uint32_t ni, uint32_t ci)
{
	struct node *n = rd->nodes[ni];
	struct conn *c = &n->c[ci];
	int fd = sock_open(n);
	if (fd < 0) {
		c->err = n->err = fd;
		c->next_try = upg_now_ns() + RECONNECT_NS;
		say(rd, "cannot connect to %s: %s", n->name, strerror(-fd));
		return false;
	}
	c->fd = fd;
	c->state = C_CONNECTING;
	c->gave_up = false;
	c->connect_by = upg_now_ns() + (uint64_t)(rd->timeout_ms < 1000 ? rd->timeout_ms : 1000) * 1000000ull;
	struct io_uring_sqe *sqe = sqe_get(rd);
	io_uring_prep_poll_add(sqe, fd, POLLOUT);
	io_uring_sqe_set_data64(sqe, ctag(T_CONN, ni, ci));
	c->poll_on = true;
	return true;
}

/* c's connect is done, one way or the other: up, or down until
 * next_try.  Either way the node's parked requests are routed again. */
static void conn_ready(struct upg_redis *rd, uint32_t ni, uint32_t ci, int res)
{
	struct node *n = rd->nodes[ni];
	struct conn *c = &n->c[ci];
	c->poll_on = false;
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (c->gave_up)
		soerr = ETIMEDOUT;
	else if (res < 0)
		soerr = -res;
	else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
		soerr = errno;
	if (!soerr) {
		if (!c->fifo)
			c->fifo = calloc(FIFO_CAP, sizeof *c->fifo);
		if (!c->ibuf)
			c->ibuf = malloc(IBUF);
		c->rd = redisReaderCreate();
		if (!c->fifo || !c->ibuf || !c->rd)
			soerr = ENOMEM;
	}
	if (soerr) {
		close(c->fd);
		c->fd = -1;
		if (c->rd)
			redisReaderFree(c->rd);
		c->rd = NULL;
		c->state = C_DOWN;
		c->err = n->err = -soerr;
		c->next_try = upg_now_ns() + RECONNECT_NS;
		say(rd, "cannot connect to %s: %s", n->name, strerror(soerr));
	} else {
		c->state = C_UP;
		c->head = c->tail = 0;
		c->out_len = c->out_off = c->next_len = 0;
		c->err = n->err = 0;
	}
	struct rq *w = n->wait;
	n->wait = NULL;
	while (w) {
		struct rq *q = w;
		w = w->next;
		q->next = NULL;
		route(rd, q);
	}
}

static void registered(struct upg_redis *rd, int res);
static void unplace(struct upg_redis *rd, uint32_t k);

/* count blocks of op ended with res; the last part completes it.  A
 * read's parts may end on two threads (a handler's direct reads and the
 * tier's thread). */
static void part_done(struct rop *op, uint32_t count, int res)
{
	int was = __atomic_load_n(&op->res, __ATOMIC_RELAXED);
	while (res < 0 && (was >= 0 || res == -ETIMEDOUT) &&
	       !__atomic_compare_exchange_n(&op->res, &was, res, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	if (__atomic_sub_fetch(&op->left, count, __ATOMIC_ACQ_REL) == 0) {
		int r = __atomic_load_n(&op->res, __ATOMIC_ACQUIRE);
		upg_tq_post(op->q, op->tag, r < 0 ? r : (int)op->len);
		free(op);
	}
}

static void done(struct upg_redis *rd, struct rq *q, int res)
{
	if (q->reg)
		registered(rd, res);
	if (q->unplace && res >= 0)
		unplace(rd, q->unplace);
	if (q->renewal && res < 0) {
		say(rd, "cannot renew this run's lease in upg:runs (%s): trying again in a second; another run may "
		    "take this one's keys for dead if it stays so", strerror(-res));
		uint64_t soon = upg_now_ns() + 1000000000ull;
		if (rd->renew_at > soon)
			rd->renew_at = soon;
	}
	if (q->w) {
		pthread_mutex_lock(&q->w->m);
		q->w->res = res;
		q->w->done = true;
		pthread_cond_signal(&q->w->c);
		pthread_mutex_unlock(&q->w->m);
	}
	/* A write sent and never answered may still land: the caller must
	 * not use its blocks again (see evict.c). */
	if (res < 0 && q->unsure)
		res = -ETIMEDOUT;
	if (q->op)
		part_done(q->op, q->count, res);
	free(q->ctl);
	free(q);
}

/* A request's attempt failed with res: once more, else it fails. */
static void again(struct upg_redis *rd, struct rq *q, int res)
{
	if ((q->kind == RQ_CTL && !q->ctl) || ++q->tries > 1) {
		rd->n_fail += q->kind != RQ_CTL;
		done(rd, q, res);
		return;
	}
	rd->n_again++;
	q->deadline = 0;
	q->ask = -1;
	route(rd, q);
}

/* Take a connection down: its requests go again elsewhere (or fail). */
static void conn_down(struct upg_redis *rd, struct node *n, struct conn *c, int why)
{
	if (c->state == C_DOWN)
		return;
	if (c->state == C_UP) {
		say(rd, "connection to %s dropped: %s", n->name, strerror(-why));
		c->err = why;
		if (c->recv_on || c->send_on) {
			/* Ends the requests on the ring; it closes once they are back. */
			shutdown(c->fd, SHUT_RDWR);
			c->state = C_DRAINING;
		}
	}
	if (c->recv_on || c->send_on)
		return;
	close(c->fd);
	c->fd = -1;
	c->state = C_DOWN;
	c->next_try = upg_now_ns() + (c->err == -ETIMEDOUT ? 0 : RECONNECT_NS);
	if (c->rd)
		redisReaderFree(c->rd);
	c->rd = NULL;
	/* Off the FIFO first: a retry may open this connection again and
	 * fill it anew. */
	struct rq *list = NULL, **tail = &list;
	for (uint32_t h = c->head; h != c->tail; h++) {
		struct rq *q = c->fifo[h % FIFO_CAP];
		q->next = NULL;
		q->unsure |= q->kind == RQ_SET;
		*tail = q;
		tail = &q->next;
	}
	c->head = c->tail = c->sets = 0;
	c->out_len = c->out_off = c->next_len = 0;
	while (list) {
		struct rq *q = list;
		list = q->next;
		q->next = NULL;
		again(rd, q, c->err ? c->err : -EIO);
	}
}

static int buf_add(char **b, size_t *len, size_t *cap, const char *src, size_t n)
{
	if (*len + n > *cap) {
		size_t nc = *cap ? *cap * 2 : 65536;
		while (nc < *len + n)
			nc *= 2;
		char *p = realloc(*b, nc);
		if (!p)
			return -ENOMEM;
		*b = p;
		*cap = nc;
	}
	memcpy(*b + *len, src, n);
	*len += n;
	return 0;
}

static size_t trimmed(const char *p, size_t len)
{
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p + len - 8, 8);
		if (w)
			break;
		len -= 8;
	}
	while (len && !p[len - 1])
		len--;
	return len;
}

static uint32_t value_crc(uint32_t block, uint32_t gen, const void *p, size_t len)
{
	uint32_t h[3] = { block, gen, (uint32_t)len };
	return upg_crc32c(upg_crc32c(0, h, sizeof h), p, len);
}

/* An MSET's command, made by the thread that submits it (the evictor), so
 * that compressing its values never holds up the reads behind it on
 * this store's thread: q->ctl.  0 or -ENOMEM. */
static int format_set(const struct upg_redis *rd, struct rq *q, const char *buf)
{
	char keys[GROUP][48], *vals;
	const char *argv[1 + 2 * GROUP];
	size_t al[1 + 2 * GROUP];
	int argc = 1;
	argv[0] = "MSET";
	al[0] = 4;
	if (!(vals = malloc((size_t)q->count * (sizeof(struct vhdr) + BLOCK))))
		return -ENOMEM;
	char *v = vals;
	for (uint32_t i = 0; i < q->count; i++) {
		argv[argc] = keys[i];
		al[argc++] = (size_t)block_key(rd, q->store, q->block + i, keys[i], sizeof keys[i]);
		const char *src = buf + (size_t)(q->part + i) * BLOCK;
		size_t plen = trimmed(src, BLOCK);
		uint16_t flags = 0;
		if (rd->lz4 && plen > 64) {
			/* Compressed in place after the header: it fits,
			 * LZ4_MOST being under BLOCK. */
			int clen = LZ4_compress_default(src, v + sizeof(struct vhdr), (int)plen, (int)LZ4_MOST);
			if (clen > 0 && (size_t)clen < plen) {
				src = v + sizeof(struct vhdr);
				plen = (size_t)clen;
				flags = VF_LZ4;
			}
		}
		struct vhdr h = { VMAGIC, q->gen[i], value_crc(q->block + i, q->gen[i], src, plen), (uint16_t)plen,
				  flags };
		memcpy(v, &h, sizeof h);
		if (!flags)
			memcpy(v + sizeof h, src, plen);
		argv[argc] = v;
		al[argc++] = sizeof h + plen;
		v += sizeof h + plen;
	}
	q->ctl_len = redisFormatCommandArgv(&q->ctl, argc, argv, al);
	free(vals);
	return q->ctl_len < 0 ? -ENOMEM : 0;
}

/* Put q's command on c. */
/* q's MGET, formatted into *cmd (redisFreeCommand()): its length, or -1. */
static int format_get(const struct upg_redis *rd, const struct rq *q, char **cmd)
{
	char keys[GROUP][48];
	const char *argv[1 + GROUP] = { "MGET" };
	size_t al[1 + GROUP] = { 4 };
	for (uint32_t i = 0; i < q->count; i++) {
		argv[1 + i] = keys[i];
		al[1 + i] = (size_t)block_key(rd, q->store, q->block + i, keys[i], sizeof keys[i]);
	}
	return redisFormatCommandArgv(cmd, 1 + (int)q->count, argv, al);
}

static int emit(struct upg_redis *rd, struct node *n, struct conn *c, struct rq *q)
{
	char *cmd = q->ctl;
	int len = q->kind == RQ_GET ? format_get(rd, q, &cmd) : q->ctl_len;
	if (len < 0)
		return -ENOMEM;
	int rc = 0;
	if (q->ask >= 0) {
		static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
		struct rq *a = calloc(1, sizeof *a);
		if (!a)
			rc = -ENOMEM;
		else {
			a->kind = RQ_CTL;
			a->ask = -1;
			a->slot = -1;
			a->deadline = q->deadline;
			rc = buf_add(&c->next, &c->next_len, &c->next_cap, asking, sizeof asking - 1);
			if (rc)
				free(a);
			else
				c->fifo[c->tail++ % FIFO_CAP] = a;
		}
		q->ask = -1;
	}
	if (!rc)
		rc = buf_add(&c->next, &c->next_len, &c->next_cap, cmd, (size_t)len);
	if (q->kind == RQ_GET)
		redisFreeCommand(cmd);
	if (!rc) {
		c->fifo[c->tail++ % FIFO_CAP] = q;
		c->sets += q->kind == RQ_SET;
	}
	return rc;
}

/* A connection of n that is up with room, or NULL.  A read takes one
 * with the fewest writes ahead of it: an MSET of 64 blocks keeps the
 * server a while, and a fault waits for the read.  While a node has two
 * connections up, writes leave the first to reads. */
static struct conn *pick(const struct upg_redis *rd, struct node *n, bool set)
{
	struct conn *c = NULL;
	uint32_t up = 0;
	for (uint32_t i = 0; i < rd->nconns; i++)
		up += n->c[i].state == C_UP;
	for (uint32_t i = 0; i < rd->nconns; i++) {
		uint32_t ci = (n->rr + i) % rd->nconns;
		struct conn *k = &n->c[ci];
		if (k->state != C_UP || k->tail - k->head >= FIFO_CAP - 1 || (set && ci == 0 && up > 1))
			continue;
		if (!c || (!set && k->sets < c->sets))
			c = k;
		if (set || !c->sets)
			break;
	}
	return c;
}

/* Send q to its node, or park it until a connection is up. */
static void route(struct upg_redis *rd, struct rq *q)
{
	uint64_t now = upg_now_ns();
	if (!q->deadline)
		q->deadline = now + (uint64_t)rd->timeout_ms * 1000000ull;
	int ni = q->ask;
	if (ni < 0 && q->kind == RQ_CTL && q->slot >= 0) {
		ni = rd->cluster ? rd->slot_node[q->slot] : 0;
	} else if (ni < 0 && q->kind != RQ_CTL && rd->cluster) {
		char key[64];
		int kl = block_key(rd, q->store, q->block, key, sizeof key);
		ni = rd->slot_node[key_slot(key, (size_t)kl)];
	} else if (ni < 0) {
		ni = q->kind == RQ_CTL ? (int)q->block : 0;   /* a control command names its node */
	}
	struct node *n = rd->nodes[ni];
	struct conn *c = pick(rd, n, q->kind == RQ_SET);
	/* The node's connections open one at a time, as requests come:
	 * the first before the request can go, the others beside it. */
	bool connecting = false;
	for (uint32_t i = 0; i < rd->nconns; i++)
		connecting |= n->c[i].state == C_CONNECTING;
	for (uint32_t i = 0; i < rd->nconns && !connecting; i++) {
		struct conn *k = &n->c[i];
		if (k->state == C_DOWN && k->next_try <= now) {
			conn_start(rd, (uint32_t)ni, i);
			break;
		}
	}
	n->rr++;
	if (!c) {
		/* Parked until a connection is up; tick() fails it at its
		 * deadline. */
		q->next = n->wait;
		n->wait = q;
		return;
	}
	if (emit(rd, n, c, q))
		done(rd, q, -ENOMEM);
}

/* ---- replies ---- */

static int parse_redirect(struct upg_redis *rd, const struct node *from, const char *s, int *slot)
{
	/* "MOVED 3999 127.0.0.1:6381" or "ASK 3999 ..." */
	const char *sp = strchr(s, ' ');
	if (!sp)
		return -1;
	*slot = atoi(sp + 1);
	const char *addr = strchr(sp + 1, ' ');
	if (!addr)
		return -1;
	addr++;
	const char *colon = strrchr(addr, ':');
	if (!colon || *slot < 0 || *slot > 16383)
		return -1;
	char host[300];
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof host)
		return -1;
	memcpy(host, addr, hl);
	host[hl] = 0;
	if (!hl) {
		/* "MOVED 3999 :6381": the same host as the node that said it. */
		snprintf(host, sizeof host, "%s", from->name);
		char *c = strrchr(host, ':');
		if (c)
			*c = 0;
	}
	char err[256];
	return node_add(rd, host, atoi(colon + 1), NULL, err, sizeof err);
}

/* Block i of q's MGET: checked, and into its place; 0 or -errno (said,
 * unless quiet). */
static int check_value(struct upg_redis *rd, struct node *n, struct rq *q, uint32_t i, const redisReply *r,
		       bool quiet)
{
	uint32_t block = q->block + i;
	char *dst = q->op->buf + (size_t)(q->part + i) * BLOCK;
	if (r->type == REDIS_REPLY_NIL) {
		if (!quiet)
			say(rd, "block %#x of namespace %s is missing on %s (the node lost it: restarted empty, "
			    "or its keys were deleted)", block, rd->ns[q->store], n->name);
		return -ENODATA;
	}
	struct vhdr h;
	if (r->type != REDIS_REPLY_STRING || r->len < sizeof h) {
		if (!quiet)
			say(rd, "block %#x on %s: not a upager value", block, n->name);
		return -EBADMSG;
	}
	memcpy(&h, r->str, sizeof h);
	const char *p = r->str + sizeof h;
	if (h.magic != VMAGIC || h.len > BLOCK || r->len != sizeof h + h.len || (h.flags & ~VF_LZ4)) {
		if (!quiet)
			say(rd, "block %#x on %s: not a upager value", block, n->name);
		return -EBADMSG;
	}
	if (h.gen != q->gen[i]) {
		if (!quiet)
			say(rd, "block %#x on %s is of generation %u, %u expected: the node holds an older "
			    "copy (restored, or a write that came late)", block, n->name, h.gen, q->gen[i]);
		return -ESTALE;
	}
	if (h.crc != value_crc(block, h.gen, p, h.len)) {
		if (!quiet)
			say(rd, "block %#x on %s fails its checksum", block, n->name);
		return -EBADMSG;
	}
	size_t got = h.len;
	if (h.flags & VF_LZ4) {
		int d = LZ4_decompress_safe(p, dst, (int)h.len, (int)BLOCK);
		if (d < 0) {
			if (!quiet)
				say(rd, "block %#x on %s does not decompress", block, n->name);
			return -EBADMSG;
		}
		got = (size_t)d;
	} else {
		memcpy(dst, p, h.len);
	}
	memset(dst + got, 0, BLOCK - got);
	return 0;
}

static void on_reply(struct upg_redis *rd, struct node *n, struct rq *q, redisReply *r)
{
	if (r->type == REDIS_REPLY_ERROR) {
		const char *s = r->str;
		int slot, ni;
		bool keyed = q->kind != RQ_CTL || q->slot >= 0;
		if (!keyed) {
			say(rd, "%s: %s", n->name, s);
			done(rd, q, -EIO);
		} else if ((!strncmp(s, "MOVED ", 6) || !strncmp(s, "ASK ", 4)) && q->redirects < REDIRECTS_MAX &&
			   (ni = parse_redirect(rd, n, s, &slot)) >= 0) {
			q->redirects++;
			rd->n_moved += s[0] == 'M';
			rd->n_ask += s[0] == 'A';
			if (s[0] == 'M')
				__atomic_store_n(&rd->slot_node[slot], (uint8_t)ni, __ATOMIC_RELEASE);
			else
				q->ask = (int16_t)ni;
			route(rd, q);
		} else if (!strncmp(s, "TRYAGAIN", 8) || !strncmp(s, "LOADING", 7) || !strncmp(s, "CLUSTERDOWN", 11) ||
			   !strncmp(s, "BUSY", 4) || !strncmp(s, "MASTERDOWN", 10)) {
			q->not_before = upg_now_ns() + 20000000ull;
			rd->n_wait++;
			q->next = rd->retry;
			rd->retry = q;
		} else if (q->kind == RQ_CTL) {
			say(rd, "%s: %s", n->name, s);
			done(rd, q, -EIO);
		} else if (!strncmp(s, "OOM", 3)) {
			say(rd, "node %s is full (%s): raise its maxmemory, or add nodes", n->name, s);
			done(rd, q, -ENOSPC);
		} else {
			say(rd, "node %s: %s", n->name, s);
			done(rd, q, -EIO);
		}
		return;
	}
	if (q->kind == RQ_CTL) {
		done(rd, q, 0);
		return;
	}
	if (q->kind == RQ_SET) {
		done(rd, q, r->type == REDIS_REPLY_STATUS ? 0 : -EIO);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != q->count) {
		say(rd, "%s answered an MGET of %u keys with something else", n->name, q->count);
		done(rd, q, -EPROTO);
		return;
	}
	int res = 0;
	for (uint32_t i = 0; i < q->count; i++) {
		int e = check_value(rd, n, q, i, r->element[i], false);
		if (e && !res)
			res = e;
	}
	done(rd, q, res);
}

/* ---- the thread ---- */

static uint64_t renew_ns(const struct upg_redis *rd)
{
	return (uint64_t)rd->lease_s * 1000000000ull / 3;
}

static uint64_t ctag(int kind, uint32_t ni, uint32_t ci)
{
	return (uint64_t)kind << 56 | (uint64_t)ni << 16 | ci;
}

static struct io_uring_sqe *sqe_get(struct upg_redis *rd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);
	if (!sqe) {
		io_uring_submit(&rd->ring);
		sqe = io_uring_get_sqe(&rd->ring);
	}
	return sqe;
}

static void arm_recv(struct upg_redis *rd, uint32_t ni, uint32_t ci)
{
	struct conn *c = &rd->nodes[ni]->c[ci];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);
	if (!sqe) {
		io_uring_submit(&rd->ring);
		sqe = io_uring_get_sqe(&rd->ring);
	}
	io_uring_prep_recv(sqe, c->fd, c->ibuf, IBUF, 0);
	io_uring_sqe_set_data64(sqe, ctag(T_RECV, ni, ci));
	c->recv_on = true;
}

static void arm_send(struct upg_redis *rd, uint32_t ni, uint32_t ci)
{
	struct conn *c = &rd->nodes[ni]->c[ci];
	if (c->out_off == c->out_len) {
		if (!c->next_len)
			return;
		char *t = c->out;
		size_t tc = c->out_cap;
		c->out = c->next;
		c->out_cap = c->next_cap;
		c->out_len = c->next_len;
		c->out_off = 0;
		c->next = t;
		c->next_cap = tc;
		c->next_len = 0;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);
	if (!sqe) {
		io_uring_submit(&rd->ring);
		sqe = io_uring_get_sqe(&rd->ring);
	}
	io_uring_prep_send(sqe, c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ctag(T_SEND, ni, ci));
	c->send_on = true;
}

static void arm_kick(struct upg_redis *rd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&rd->ring);
	if (!sqe) {
		io_uring_submit(&rd->ring);
		sqe = io_uring_get_sqe(&rd->ring);
	}
	io_uring_prep_poll_multishot(sqe, rd->kick_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ctag(T_KICK, 0, 0));
}

/* A control command on key (routed by its slot, redirections followed). */
static struct rq *ctl_rq(const char *key, int argc, const char **argv)
{
	struct rq *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->kind = RQ_CTL;
	q->ask = -1;
	q->slot = (int16_t)key_slot(key, strlen(key));
	q->ctl_len = redisFormatCommandArgv(&q->ctl, argc, argv, NULL);
	if (q->ctl_len < 0) {
		free(q);
		return NULL;
	}
	return q;
}

static uint32_t node_of(const struct upg_redis *rd, const char *key)
{
	return rd->cluster ? rd->slot_node[key_slot(key, strlen(key))] : 0;
}

/* Renew the leases of the namespaces this process reads; own: register it. */
static void renew(struct upg_redis *rd, bool own)
{
	char score[32];
	snprintf(score, sizeof score, "%lld", (long long)time(NULL) + rd->clock_off + rd->lease_s);
	for (uint32_t k = own || rd->reg == REG_DONE ? 0 : 1; k < rd->nns; k++) {
		const char *argv[4] = { "ZADD", "upg:runs", score, rd->member[k] };
		struct rq *q = ctl_rq("upg:runs", 4, argv);
		if (!q) {
			if (own && !k)
				registered(rd, -ENOMEM);
			continue;
		}
		q->reg = own && !k;
		q->renewal = !q->reg;
		q->unplace = k && rd->placeholder[k][0] ? (uint8_t)k : 0;
		route(rd, q);
	}
}

/* Namespace k is listed under this process's pid: its fork placeholder
 * goes, so that it no longer outlives the process by a lease. */
static void unplace(struct upg_redis *rd, uint32_t k)
{
	if (!rd->placeholder[k][0])
		return;
	const char *argv[3] = { "ZREM", "upg:runs", rd->placeholder[k] };
	struct rq *q = ctl_rq("upg:runs", 3, argv);
	if (q)
		route(rd, q);
	rd->placeholder[k][0] = 0;
}

/* The registration is in (res 0): the writes held for it go; else they fail. */
static void registered(struct upg_redis *rd, int res)
{
	rd->reg = res < 0 ? REG_NONE : REG_DONE;
	if (res < 0)
		say(rd, "cannot register this run in upg:runs: %s", strerror(-res));
	struct rq *h = rd->held;
	rd->held = rd->held_tail = NULL;
	while (h) {
		struct rq *q = h;
		h = h->next;
		q->next = NULL;
		if (res < 0)
			done(rd, q, -EIO);
		else
			route(rd, q);
	}
}

/* A recv or send came back with res: false (and c on its way down) when
 * the connection is going or gone (eof: the error a 0 means). */
static bool io_ok(struct upg_redis *rd, struct node *n, struct conn *c, int res, int eof)
{
	if (c->state != C_UP) {
		conn_down(rd, n, c, c->err);
		return false;
	}
	if (res <= 0) {
		conn_down(rd, n, c, res == 0 ? eof : res);
		return false;
	}
	return true;
}

static void on_recv(struct upg_redis *rd, uint32_t ni, uint32_t ci, int res)
{
	struct node *n = rd->nodes[ni];
	struct conn *c = &n->c[ci];
	c->recv_on = false;
	if (!io_ok(rd, n, c, res, -ECONNRESET))
		return;
	/* Fed in slices: hiredis's reader moves what it has not parsed to
	 * the front of its buffer after each reply, so a large feed would
	 * cost its length for every reply in it. */
	for (size_t off = 0; off < (size_t)res;) {
		size_t len = (size_t)res - off < FEED ? (size_t)res - off : FEED;
		if (redisReaderFeed(c->rd, c->ibuf + off, len) != REDIS_OK) {
			conn_down(rd, n, c, -EPROTO);
			return;
		}
		off += len;
		for (;;) {
			void *r = NULL;
			if (redisReaderGetReply(c->rd, &r) != REDIS_OK) {
				conn_down(rd, n, c, -EPROTO);
				return;
			}
			if (!r)
				break;
			if (c->head == c->tail) {
				freeReplyObject(r);
				conn_down(rd, n, c, -EPROTO);
				return;
			}
			struct rq *q = c->fifo[c->head++ % FIFO_CAP];
			c->sets -= q->kind == RQ_SET;
			on_reply(rd, n, q, r);
			freeReplyObject(r);
		}
	}
	arm_recv(rd, ni, ci);
}

static void on_send(struct upg_redis *rd, uint32_t ni, uint32_t ci, int res)
{
	struct node *n = rd->nodes[ni];
	struct conn *c = &n->c[ci];
	c->send_on = false;
	if (!io_ok(rd, n, c, res, -EPIPE))
		return;
	c->out_off += (size_t)res;
	arm_send(rd, ni, ci);
}

static void tick(struct upg_redis *rd, uint64_t now)
{
	for (uint32_t ni = 0; ni < rd->nnodes; ni++) {
		struct node *n = rd->nodes[ni];
		for (uint32_t ci = 0; ci < rd->nconns; ci++) {
			struct conn *c = &n->c[ci];
			if (c->state == C_CONNECTING && !c->gave_up && c->connect_by < now) {
				c->gave_up = true;
				shutdown(c->fd, SHUT_RDWR);   /* its poll completes */
			}
			if (c->state != C_UP)
				continue;
			for (uint32_t h = c->head; h != c->tail; h++)
				if (c->fifo[h % FIFO_CAP]->deadline < now) {
					say(rd, "node %s did not answer within %u ms", n->name, rd->timeout_ms);
					conn_down(rd, n, c, -ETIMEDOUT);
					break;
				}
		}
		struct rq *w = n->wait;
		n->wait = NULL;
		while (w) {
			struct rq *q = w;
			w = w->next;
			if (q->deadline < now) {
				say(rd, "node %s cannot be reached within %u ms (%s)", n->name, rd->timeout_ms,
				    strerror(n->err ? -n->err : ETIMEDOUT));
				/* It waited its whole deadline, with reconnections
				 * tried every RECONNECT_NS meanwhile: a read says so
				 * (-ETIMEDOUT: see tier.h, tried); a write, never
				 * sent, says why, so that its blocks are used again
				 * (evict.c). */
				done(rd, q, q->kind == RQ_GET || !n->err ? -ETIMEDOUT : n->err);
			} else {
				route(rd, q);
			}
		}
	}
	struct rq *w = rd->retry;
	rd->retry = NULL;
	while (w) {
		struct rq *q = w;
		w = w->next;
		if (q->deadline < now) {
			say(rd, "the cluster kept asking to wait past %u ms", rd->timeout_ms);
			done(rd, q, -ETIMEDOUT);
		} else if (q->not_before <= now) {
			route(rd, q);
		} else {
			q->next = rd->retry;
			rd->retry = q;
		}
	}
	if (rd->renew_at <= now) {
		rd->renew_at = now + renew_ns(rd);
		renew(rd, false);
	}
}

static void *loop(void *arg)
{
	struct upg_redis *rd = arg;
	upg_internal_thread = 1;
	arm_kick(rd);
	uint64_t next_tick = upg_now_ns() + TICK_NS;
	for (;;) {
		pthread_mutex_lock(&rd->lock);
		struct rq *in = rd->in;
		rd->in = rd->in_tail = NULL;
		bool stop = rd->stop;
		pthread_mutex_unlock(&rd->lock);
		if (stop)
			break;
		/* Submitted last first: put them back in order. */
		while (in) {
			struct rq *q = in;
			in = in->next;
			q->next = NULL;
			if (q->kind == RQ_SET && rd->reg != REG_DONE) {
				/* A namespace's keys come after its entry in
				 * upg:runs, so that nothing is left unlisted. */
				if (rd->held_tail)
					rd->held_tail->next = q;
				else
					rd->held = q;
				rd->held_tail = q;
				if (rd->reg == REG_NONE) {
					rd->reg = REG_PENDING;
					renew(rd, true);
				}
				continue;
			}
			route(rd, q);
		}
		for (uint32_t ni = 0; ni < rd->nnodes; ni++)
			for (uint32_t ci = 0; ci < rd->nconns; ci++) {
				struct conn *c = &rd->nodes[ni]->c[ci];
				if (c->state != C_UP)
					continue;
				if (!c->recv_on)
					arm_recv(rd, ni, ci);
				if (!c->send_on)
					arm_send(rd, ni, ci);
			}
		struct __kernel_timespec ts = { 0, (long long)TICK_NS };
		struct io_uring_cqe *cqe;
		io_uring_submit_and_wait_timeout(&rd->ring, &cqe, 1, &ts, NULL);
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&rd->ring, head, cqe) {
			seen++;
			uint64_t t = io_uring_cqe_get_data64(cqe);
			int kind = (int)(t >> 56);
			uint32_t ni = (uint32_t)(t >> 16 & 0xff), ci = (uint32_t)(t & 0xffff);
			if (kind == T_KICK) {
				uint64_t v;
				(void)!read(rd->kick_fd, &v, sizeof v);
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_kick(rd);
			} else if (kind == T_RECV) {
				on_recv(rd, ni, ci, cqe->res);
			} else if (kind == T_SEND) {
				on_send(rd, ni, ci, cqe->res);
			} else if (kind == T_CONN) {
				conn_ready(rd, ni, ci, cqe->res);
			}
		}
		io_uring_cq_advance(&rd->ring, seen);
		/* After the completions: a reply already here is not late. */
		uint64_t now = upg_now_ns();
		if (now >= next_tick) {
			tick(rd, now);
			next_tick = now + TICK_NS;
		}
	}
	return NULL;
}

/* ---- reads a fault handler sends itself ---- */

/*
 * A read submitted by a queue's owner that takes its tiers' completions
 * (tier.h: tier_cqes; the fault handlers) goes on a connection of that
 * thread's own to the node, when one is up: sent at once, its reply
 * received on the owner's ring and checked there.  That saves the two
 * hand-offs through the tier's thread (each a sleep and a wake-up) that
 * the other requests take.  Anything but clean values (a redirection, an
 * error reply, a missing key or a bad value, a deadline passed, a
 * connection lost) hands the request to the tier's thread, which sends it
 * again and has the last word, as for any request of its own: so a
 * failure is said, retried and reported in one place.
 */
#define DFIFO 256u               /* reads in flight on one direct connection */
#define DIBUF (64u << 10)

enum { D_DOWN, D_CONNECTING, D_UP, D_CLOSING };
enum { DT_RECV = 1, DT_TIMEOUT };

struct dconn {
	int fd, state;
	bool recv_on;
	uint16_t epoch;          /* in the tags: a completion of an earlier connection is known */
	uint64_t next_try, connect_by;
	redisReader *rd;
	char *ibuf;
	struct rq *fifo[DFIFO];
	uint32_t head, tail;
	struct __kernel_timespec ts;
};

struct dq {
	struct upg_redis *rd;
	struct dconn *c[NODES_MAX];
};

static uint64_t dtag(int kind, uint32_t ni, uint16_t epoch)
{
	return UPG_TQ_TIER | (uint64_t)kind << 32 | (uint64_t)epoch << 16 | ni;
}

/* Requests to the tier's thread, in order. */
static void to_thread(struct upg_redis *rd, struct rq *first, struct rq *last)
{
	if (!first)
		return;
	pthread_mutex_lock(&rd->lock);
	if (rd->in_tail)
		rd->in_tail->next = first;
	else
		rd->in = first;
	rd->in_tail = last;
	pthread_mutex_unlock(&rd->lock);
	uint64_t one = 1;
	(void)!write(rd->kick_fd, &one, sizeof one);
}

/* q back to the tier's thread, as new (tries: attempts it has had). */
static void d_handoff(struct upg_redis *rd, struct rq *q, uint8_t tries)
{
	q->next = NULL;
	q->deadline = 0;
	q->ask = -1;
	q->tries = tries;
	__atomic_fetch_add(&rd->n_handoff, 1, __ATOMIC_RELAXED);
	to_thread(rd, q, q);
}

static void d_close(struct dconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->rd)
		redisReaderFree(c->rd);
	c->rd = NULL;
	c->state = D_DOWN;
	c->epoch++;
}

/* c fails (why, for the tier's thread to say if it fails there too): its
 * reads go to the tier's thread.  A recv still on the ring ends with the
 * shutdown; the socket closes when it is back. */
static void d_down(struct dq *d, struct dconn *c, int why)
{
	uint8_t tries = why == -ETIMEDOUT ? 1 : 0;
	for (uint32_t h = c->head; h != c->tail; h++)
		d_handoff(d->rd, c->fifo[h % DFIFO], tries);
	c->head = c->tail = 0;
	c->next_try = upg_now_ns() + RECONNECT_NS;
	if (c->recv_on) {
		shutdown(c->fd, SHUT_RDWR);
		c->state = D_CLOSING;
	} else {
		d_close(c);
	}
}

static void d_arm(struct dq *d, struct upg_tq *q, uint32_t ni, struct dconn *c)
{
	if (io_uring_sq_space_left(q->ring) < 2)
		io_uring_submit(q->ring);
	if (io_uring_sq_space_left(q->ring) < 2) {
		/* No room for the recv and its timeout together: the reads
		 * go the thread's way. */
		d_down(d, c, -EBUSY);
		return;
	}
	uint64_t now = upg_now_ns(), by = c->fifo[c->head % DFIFO]->deadline;
	uint64_t left = by > now + 1000000ull ? by - now : 1000000ull;
	c->ts = (struct __kernel_timespec){ (long long)(left / 1000000000ull), (long long)(left % 1000000000ull) };
	struct io_uring_sqe *sqe = io_uring_get_sqe(q->ring);
	io_uring_prep_recv(sqe, c->fd, c->ibuf, DIBUF, 0);
	io_uring_sqe_set_data64(sqe, dtag(DT_RECV, ni, c->epoch));
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(q->ring);
	io_uring_prep_link_timeout(sqe, &c->ts, 0);
	io_uring_sqe_set_data64(sqe, dtag(DT_TIMEOUT, ni, c->epoch));
	c->recv_on = true;
}

static void d_cqe(struct upg_tq *q, uint64_t tag, int res)
{
	struct dq *d = q->tier_local;
	struct upg_redis *rd = d->rd;
	uint32_t ni = (uint32_t)(tag & 0xffff);
	uint16_t epoch = (uint16_t)(tag >> 16);
	struct dconn *c = ni < NODES_MAX ? d->c[ni] : NULL;
	if ((int)(tag >> 32 & 0xff) != DT_RECV || !c || !c->recv_on)
		return;      /* a link timeout's own completion, fired or not: the recv's tells */
	if (c->state == D_CLOSING || epoch != c->epoch) {
		c->recv_on = false;
		if (c->state == D_CLOSING)
			d_close(c);
		return;
	}
	c->recv_on = false;
	if (res == -ECANCELED || res == -EINTR || res == -EAGAIN) {
		if (c->head == c->tail)
			return;
		if (c->fifo[c->head % DFIFO]->deadline <= upg_now_ns()) {
			d_down(d, c, -ETIMEDOUT);
			return;
		}
		d_arm(d, q, ni, c);
		return;
	}
	if (res <= 0) {
		d_down(d, c, res ? res : -ECONNRESET);
		return;
	}
	struct node *n = rd->nodes[ni];
	for (size_t off = 0; off < (size_t)res;) {
		size_t len = (size_t)res - off < FEED ? (size_t)res - off : FEED;
		if (redisReaderFeed(c->rd, c->ibuf + off, len) != REDIS_OK) {
			d_down(d, c, -EPROTO);
			return;
		}
		off += len;
		for (;;) {
			redisReply *r = NULL;
			if (redisReaderGetReply(c->rd, (void **)&r) != REDIS_OK || (r && c->head == c->tail)) {
				if (r)
					freeReplyObject(r);
				d_down(d, c, -EPROTO);
				return;
			}
			if (!r)
				break;
			struct rq *g = c->fifo[c->head++ % DFIFO];
			bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == g->count;
			for (uint32_t i = 0; ok && i < g->count; i++)
				ok = !check_value(rd, n, g, i, r->element[i], true);
			freeReplyObject(r);
			if (ok) {
				__atomic_fetch_add(&rd->n_direct, 1, __ATOMIC_RELAXED);
				part_done(g->op, g->count, 0);
				free(g);
			} else {
				d_handoff(rd, g, 0);
			}
		}
	}
	if (c->head != c->tail)
		d_arm(d, q, ni, c);
}

static void d_free(void *local, bool forked)
{
	struct dq *d = local;
	for (uint32_t ni = 0; ni < NODES_MAX; ni++) {
		struct dconn *c = d->c[ni];
		if (!c)
			continue;
		if (forked) {
			/* Our copies of the parent's sockets; the rest may
			 * have been mid-change: left. */
			if (c->fd >= 0)
				close(c->fd);
			continue;
		}
		d_close(c);
		free(c->ibuf);
		free(c);
	}
	if (!forked)
		free(d);
}

/* The calling thread's direct connections, when it owns q and takes its
 * tiers' completions; NULL else. */
static struct dq *d_of(struct upg_redis *rd, struct upg_tq *q)
{
	if (!q->tier_cqes || !pthread_equal(q->owner, pthread_self()))
		return NULL;
	if (q->tier_local)
		return q->tier_cqe == d_cqe ? q->tier_local : NULL;
	struct dq *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->rd = rd;
	q->tier_local = d;
	q->tier_cqe = d_cqe;
	q->tier_free = d_free;
	return d;
}

/* Node ni's direct connection if it is up; else it starts connecting
 * (without waiting) and NULL: the read goes through the tier's thread. */
static struct dconn *d_conn(struct upg_redis *rd, struct dq *d, uint32_t ni)
{
	struct dconn *c = d->c[ni];
	if (!c) {
		c = calloc(1, sizeof *c);
		if (!c)
			return NULL;
		c->fd = -1;
		d->c[ni] = c;
	}
	if (c->state == D_UP)
		return c->tail - c->head < DFIFO ? c : NULL;
	uint64_t now = upg_now_ns();
	if (c->state == D_DOWN && now >= c->next_try) {
		if (!c->ibuf && !(c->ibuf = malloc(DIBUF)))
			return NULL;
		if (!(c->rd = redisReaderCreate()))
			return NULL;
		c->fd = sock_open(rd->nodes[ni]);
		if (c->fd < 0) {
			d_close(c);
			c->next_try = now + RECONNECT_NS;
			return NULL;
		}
		c->head = c->tail = 0;
		c->connect_by = now + (uint64_t)(rd->timeout_ms < 1000 ? rd->timeout_ms : 1000) * 1000000ull;
		c->state = D_CONNECTING;   /* up at once, as on loopback, just below */
	}
	if (c->state == D_CONNECTING) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (poll(&p, 1, 0) == 0) {
			if (now < c->connect_by)
				return NULL;
			soerr = ETIMEDOUT;
		} else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl)) {
			soerr = errno;
		}
		if (soerr) {
			d_close(c);
			c->next_try = now + RECONNECT_NS;
			return NULL;
		}
		c->state = D_UP;
		return c;
	}
	return NULL;
}

/* Send read g on the calling thread's own connection; false: it goes
 * through the tier's thread. */
static bool d_send(struct upg_redis *rd, struct dq *d, struct upg_tq *q, struct rq *g)
{
	uint32_t ni = 0;
	if (rd->cluster) {
		char key[64];
		int kl = block_key(rd, g->store, g->block, key, sizeof key);
		ni = __atomic_load_n(&rd->slot_node[key_slot(key, (size_t)kl)], __ATOMIC_ACQUIRE);
	}
	if (ni >= __atomic_load_n(&rd->nnodes, __ATOMIC_ACQUIRE))
		return false;
	struct dconn *c = d_conn(rd, d, ni);
	if (!c)
		return false;
	char *cmd = NULL;
	int len = format_get(rd, g, &cmd);
	if (len < 0)
		return false;
	ssize_t sent = send(c->fd, cmd, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
	redisFreeCommand(cmd);
	if (sent != len) {
		/* Nothing sent: the connection stays, this read takes the
		 * thread's way.  Part of it: the stream is broken. */
		if (sent > 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			d_down(d, c, sent > 0 ? -EPIPE : -errno);
		return false;
	}
	g->deadline = upg_now_ns() + (uint64_t)rd->timeout_ms * 1000000ull;
	c->fifo[c->tail++ % DFIFO] = g;
	if (!c->recv_on)
		d_arm(d, q, ni, c);
	return true;
}

/* ---- the tier ---- */

static void submit(struct upg_redis *rd, struct upg_tq *q, uint64_t loc, char *buf, uint32_t len, uint64_t tag,
		   int kind)
{
	uint32_t slot = (uint32_t)loc, store = upg_slot_store(slot);
	uint64_t block = upg_slot_block(slot);
	uint32_t n = len / BLOCK;
	struct rop *op = malloc(sizeof *op);
	if (!op || store >= rd->nns || (kind == RQ_SET && store) || !n || len % BLOCK || block + n > rd->blocks) {
		free(op);
		upg_tq_post(q, tag, op ? -EINVAL : -ENOMEM);
		return;
	}
	*op = (struct rop){ .q = q, .tag = tag, .buf = buf, .len = len, .left = n };
	struct rq *first = NULL, *last = NULL;
	for (uint32_t i = 0; i < n;) {
		uint32_t b = (uint32_t)(block + i);
		uint32_t k = GROUP - (b & (GROUP - 1));
		if (k > n - i)
			k = n - i;
		struct rq *r = calloc(1, sizeof *r + k * sizeof r->gen[0]);
		if (r) {
			r->op = op;
			r->kind = (uint8_t)kind;
			r->store = (uint8_t)store;
			r->block = b;
			r->part = (uint16_t)i;
			r->count = (uint16_t)k;
			r->ask = -1;
			for (uint32_t j = 0; j < k; j++)
				r->gen[j] = kind == RQ_SET ? ++rd->gen[0][b + j] : rd->gen[store][b + j];
		}
		if (!r || (kind == RQ_SET && format_set(rd, r, buf))) {
			free(r);
			/* The ones made so far go; the rest fail here. */
			op->res = -ENOMEM;
			op->left -= n - i;
			break;
		}
		if (last)
			last->next = r;
		else
			first = r;
		last = r;
		i += k;
	}
	if (kind == RQ_SET) {
		uint64_t hw = __atomic_load_n(&rd->hw, __ATOMIC_RELAXED);
		while (block + n > hw && !__atomic_compare_exchange_n(&rd->hw, &hw, block + n, false,
								       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	if (!first) {
		upg_tq_post(q, tag, -ENOMEM);
		free(op);
		return;
	}
	struct dq *d = kind == RQ_GET ? d_of(rd, q) : NULL;
	if (d) {
		/* Sent here what can be; the rest, in order, to the thread.
		 * From the first send on, op may be done (and freed) by
		 * either side. */
		struct rq *tf = NULL, *tl = NULL;
		while (first) {
			struct rq *g = first;
			first = g->next;
			g->next = NULL;
			if (d_send(rd, d, q, g))
				continue;
			if (tl)
				tl->next = g;
			else
				tf = g;
			tl = g;
		}
		first = tf;
		last = tl;
	}
	to_thread(rd, first, last);
}

static void redis_read(void *tier, struct upg_tq *q, uint64_t loc, void *buf, uint32_t len, uint64_t tag)
{
	submit(tier, q, loc, buf, len, tag, RQ_GET);
}

static void redis_write(void *tier, struct upg_tq *q, uint64_t loc, const void *buf, uint32_t len, uint64_t tag)
{
	submit(tier, q, loc, (char *)buf, len, tag, RQ_SET);
}

const struct upg_tier_ops upg_redis_tier = {
	.name = "redis",
	.on_ring = false,
	.tried = true,
	.read = redis_read,
	.write = redis_write,
};

/* ---- set-up, with hiredis's blocking calls ---- */

static redisContext *sync_open(struct upg_redis *rd, const struct node *n, char *err, size_t errlen)
{
	int fd = dial(n, rd->timeout_ms);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to the Redis store at %s: %s: start redis-server there, or "
			 "point UPAGER_STORE elsewhere", n->name, strerror(-fd));
		return NULL;
	}
	/* hiredis's blocking calls want a blocking socket. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
		int e = errno;
		close(fd);
		snprintf(err, errlen, "%s: %s", n->name, strerror(e));
		return NULL;
	}
	redisContext *c = redisConnectFd(fd);
	if (!c || c->err) {
		snprintf(err, errlen, "%s: %s", n->name, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		else
			close(fd);
		return NULL;
	}
	struct timeval tv = { rd->timeout_ms / 1000, (rd->timeout_ms % 1000) * 1000 };
	redisSetTimeout(c, tv);
	return c;
}

/* A command's reply, or NULL with a message (an error reply is a reply). */
static redisReply *sync_cmd(redisContext *c, const char *name, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r)
		snprintf(err, errlen, "the Redis store at %s: %s", name, c->errstr[0] ? c->errstr : "no reply");
	return r;
}

static int parse_url(struct upg_redis *rd, const char *url, char *err, size_t errlen)
{
	char buf[1024];
	if (strlen(url) >= sizeof buf) {
		snprintf(err, errlen, "the Redis store address is too long");
		return -EINVAL;
	}
	strcpy(buf, url);
	rd->timeout_ms = 3000;
	rd->nconns = 4;
	rd->lease_s = LEASE_S;
	rd->lz4 = true;
	char *qs = strchr(buf, '?');
	if (qs) {
		*qs++ = 0;
		for (char *save = NULL, *kv = strtok_r(qs, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
			char *end;
			if (!strncmp(kv, "timeout=", 8)) {
				unsigned long v = strtoul(kv + 8, &end, 10);
				if (*end || v < 10 || v > 600000) {
					snprintf(err, errlen, "UPAGER_STORE: timeout=%s: give the deadline of one request "
						 "in milliseconds, 10 to 600000", kv + 8);
					return -EINVAL;
				}
				rd->timeout_ms = (uint32_t)v;
			} else if (!strncmp(kv, "lease=", 6)) {
				unsigned long v = strtoul(kv + 6, &end, 10);
				if (*end || v < 2 || v > 86400) {
					snprintf(err, errlen, "UPAGER_STORE: lease=%s: give the seconds a run's keys outlive "
						 "it when it ends without closing, 2 to 86400", kv + 6);
					return -EINVAL;
				}
				rd->lease_s = (uint32_t)v;
			} else if (!strncmp(kv, "conns=", 6)) {
				unsigned long v = strtoul(kv + 6, &end, 10);
				if (*end || v < 1 || v > CONNS_MAX) {
					snprintf(err, errlen, "UPAGER_STORE: conns=%s: give the connections per node, 1 to %d",
						 kv + 6, CONNS_MAX);
					return -EINVAL;
				}
				rd->nconns = (uint32_t)v;
			} else if (!strncmp(kv, "compress=", 9)) {
				if (strcmp(kv + 9, "lz4") && strcmp(kv + 9, "off")) {
					snprintf(err, errlen, "UPAGER_STORE: compress=%s: give lz4 (values compressed, "
						 "the default) or off (whole pages)", kv + 9);
					return -EINVAL;
				}
				rd->lz4 = !strcmp(kv + 9, "lz4");
			} else {
				snprintf(err, errlen, "UPAGER_STORE: unknown parameter '%s' (known: timeout=MS, conns=N, "
					 "lease=S, compress=lz4|off)", kv);
				return -EINVAL;
			}
		}
	}
	if (!strncmp(buf, "unix:", 5)) {
		int rc = node_add(rd, NULL, 0, buf + 5, err, errlen);
		return rc < 0 ? rc : 0;
	}
	char *list = buf + 8;   /* after "redis://" */
	if (strchr(list, '@')) {
		snprintf(err, errlen, "UPAGER_STORE: a user or password in the address is not supported (no AUTH): "
			 "give redis://HOST:PORT of a server that lets upager in without one");
		return -EINVAL;
	}
	for (char *save = NULL, *hp = strtok_r(list, ",", &save); hp; hp = strtok_r(NULL, ",", &save)) {
		char *host = hp, *port = NULL;
		if (*hp == '[') {
			host = hp + 1;
			char *e = strchr(host, ']');
			if (!e) {
				snprintf(err, errlen, "UPAGER_STORE: '%s': an IPv6 address needs its closing ']'", hp);
				return -EINVAL;
			}
			*e = 0;
			port = e[1] == ':' ? e + 2 : NULL;
		} else if ((port = strrchr(hp, ':'))) {
			*port++ = 0;
		}
		char *end = NULL;
		long p = port ? strtol(port, &end, 10) : 6379;
		if (!*host || (port && (*end || p < 1 || p > 65535))) {
			snprintf(err, errlen, "UPAGER_STORE: '%s' is not HOST:PORT (as redis://127.0.0.1:6379, several "
				 "separated by commas)", hp);
			return -EINVAL;
		}
		int rc = node_add(rd, host, (int)p, NULL, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (!rd->nnodes) {
		snprintf(err, errlen, "UPAGER_STORE: no address after redis:// (as redis://127.0.0.1:6379)");
		return -EINVAL;
	}
	return 0;
}

static void node_free(struct node *n)
{
	for (int c = 0; c < CONNS_MAX; c++) {
		struct conn *k = &n->c[c];
		if (k->fd >= 0)
			close(k->fd);
		if (k->rd)
			redisReaderFree(k->rd);
		free(k->ibuf);
		free(k->out);
		free(k->next);
		free(k->fifo);
	}
	free(n);
}

/* The cluster's masters and slots, from the node c is connected to. */
static int learn_cluster(struct upg_redis *rd, redisContext *c, const char *name, char *err, size_t errlen)
{
	redisReply *r = sync_cmd(c, name, err, errlen, "CLUSTER SLOTS");
	if (!r)
		return -EIO;
	if (r->type == REDIS_REPLY_ERROR && !strstr(r->str, "cluster support disabled")) {
		snprintf(err, errlen, "the Redis store at %s answered CLUSTER SLOTS with \"%s\"%s", name, r->str,
			 !strncmp(r->str, "NOAUTH", 6) ? ": upager does not support passwords; let it in without one "
			 "(a separate server, or one bound to a private address)" : "");
		freeReplyObject(r);
		return -EIO;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		freeReplyObject(r);
		if (rd->nnodes > 1) {
			snprintf(err, errlen, "the Redis store at %s is not a cluster, but UPAGER_STORE names %u addresses: "
				 "give one, or start the nodes with cluster-enabled yes", name, rd->nnodes);
			return -EINVAL;
		}
		return 0;
	}
	char seed_host[300];
	snprintf(seed_host, sizeof seed_host, "%s", name);
	char *colon = strrchr(seed_host, ':');
	if (colon)
		*colon = 0;
	for (uint32_t i = 0; i < rd->nnodes; i++)
		node_free(rd->nodes[i]);
	rd->nnodes = 0;
	uint8_t *seen = calloc(16384, 1);
	int rc = seen ? 0 : -ENOMEM;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !rc; i++) {
		redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[2]->type != REDIS_REPLY_ARRAY ||
		    e->element[2]->elements < 2)
			continue;
		long long lo = e->element[0]->integer, hi = e->element[1]->integer;
		redisReply *m = e->element[2];
		const char *host = m->element[0]->str && m->element[0]->str[0] ? m->element[0]->str : seed_host;
		int ni = node_add(rd, host, (int)m->element[1]->integer, NULL, err, errlen);
		if (ni < 0) {
			rc = ni;
			break;
		}
		for (long long s = lo; s <= hi && s < 16384; s++) {
			rd->slot_node[s] = (uint8_t)ni;
			seen[s] = 1;
		}
	}
	freeReplyObject(r);
	if (rc) {
		free(seen);
		return rc;
	}
	for (int s = 0; s < 16384; s++)
		if (!seen[s]) {
			free(seen);
			snprintf(err, errlen, "the Redis Cluster at %s does not cover slot %d: fix the cluster (redis-cli "
				 "--cluster fix %s)", name, s, name);
			return -EINVAL;
		}
	free(seen);
	rd->cluster = true;
	return 0;
}

static int check_policy(struct upg_redis *rd, redisContext *c, const char *name, char *err, size_t errlen)
{
	redisReply *r = sync_cmd(c, name, err, errlen, "CONFIG GET maxmemory-policy");
	if (!r)
		return -EIO;
	int rc = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[1]->type != REDIS_REPLY_STRING) {
		bool auth = r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOAUTH", 6);
		snprintf(err, errlen, "cannot read the maxmemory-policy of the Redis store at %s (%s): %s", name,
			 r->type == REDIS_REPLY_ERROR ? r->str : "no such setting",
			 auth ? "upager does not support passwords; let it in without one (a separate server, or "
				"one bound to a private address)"
			      : "upager needs to know it cannot drop pages; allow CONFIG GET");
		rc = -EPERM;
	} else if (!strncmp(r->element[1]->str, "allkeys-", 8)) {
		snprintf(err, errlen, "the Redis store at %s has maxmemory-policy %s, which may evict upager's pages: "
			 "set it to noeviction (redis-cli -h HOST -p PORT config set maxmemory-policy noeviction)",
			 name, r->element[1]->str);
		rc = -EINVAL;
	}
	freeReplyObject(r);
	return rc;
}

/* Drain n pipelined replies from c; how many were errors. */
static uint64_t drain(redisContext *c, uint64_t n)
{
	uint64_t bad = 0;
	for (; n; n--) {
		void *r = NULL;
		if (redisGetReply(c, &r) != REDIS_OK || !r)
			return bad + n;
		bad += ((redisReply *)r)->type == REDIS_REPLY_ERROR;
		freeReplyObject(r);
	}
	return bad;
}

/* Where a process id names a process: this boot (its boot_id) and pid
 * namespace.  "HOST" in upg:runs's members. */
static void host_id(char *out, size_t len)
{
	char boot[64] = "", ns[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (f) {
		if (!fgets(boot, sizeof boot, f))
			boot[0] = 0;
		fclose(f);
	}
	boot[strcspn(boot, "\n")] = 0;
	ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
	ns[n > 0 ? n : 0] = 0;
	char *d = out;
	for (const char *c = boot; *c && d < out + len / 2; c++)
		if (*c != '-')
			*d++ = *c;
	*d = 0;
	const char *ino = strchr(ns, '[');
	snprintf(d, len - (size_t)(d - out), "-%lu", ino ? strtoul(ino + 1, NULL, 10) : 0ul);
}

static void make_member(struct upg_redis *rd, uint32_t k)
{
	char ns[17];
	memcpy(ns, rd->ns[k], sizeof ns);
	snprintf(rd->member[k], sizeof rd->member[k], "%s %s %d", ns, rd->hostid, (int)getpid());
}

/* Is the run behind a member of upg:runs alive?  On this host its process
 * says; elsewhere its lease (score, in the registry's clock). */
static bool member_alive(const struct upg_redis *rd, const char *member, double score, double now)
{
	char ns[17], host[64];
	int pid;
	if (sscanf(member, "%16s %63s %d", ns, host, &pid) != 3)
		return score >= now;
	if (strcmp(host, rd->hostid))
		return score >= now;
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Learn the registry node's clock, and delete the keys of namespaces no
 * live run reads (see member_alive()); how many namespaces. */
static uint32_t clean_dead(struct upg_redis *rd, redisContext **ctx)
{
	char err[256];
	uint32_t rn = node_of(rd, "upg:runs");
	const char *rname = rd->nodes[rn]->name;
	redisReply *t = sync_cmd(ctx[rn], rname, err, sizeof err, "TIME");
	if (t && t->type == REDIS_REPLY_ARRAY && t->elements == 2 && t->element[0]->str)
		rd->clock_off = strtoll(t->element[0]->str, NULL, 10) - (int64_t)time(NULL);
	if (t)
		freeReplyObject(t);
	double now = (double)time(NULL) + (double)rd->clock_off;
	redisReply *m = sync_cmd(ctx[rn], rname, err, sizeof err, "ZRANGE upg:runs 0 -1 WITHSCORES");
	if (!m || m->type != REDIS_REPLY_ARRAY || m->elements < 2) {
		if (m)
			freeReplyObject(m);
		return 0;
	}
	size_t nm = m->elements / 2;
	bool *alive = calloc(nm, sizeof *alive);
	char (*dead)[17] = calloc(nm, sizeof *dead);
	uint32_t ndead = 0;
	for (size_t i = 0; alive && dead && i < nm; i++) {
		redisReply *e = m->element[2 * i], *sc = m->element[2 * i + 1];
		alive[i] = e->type != REDIS_REPLY_STRING || e->len < 16 ||
			   member_alive(rd, e->str, sc->str ? strtod(sc->str, NULL) : 0, now);
	}
	/* A namespace is dead when no member for it is alive. */
	for (size_t i = 0; alive && dead && i < nm; i++) {
		if (alive[i])
			continue;
		const char *ns = m->element[2 * i]->str;
		bool any = false, seen = false;
		for (size_t j = 0; j < nm && !any; j++)
			any = alive[j] && !strncmp(m->element[2 * j]->str, ns, 16) && m->element[2 * j]->len >= 16;
		for (uint32_t d = 0; d < ndead && !seen; d++)
			seen = !strncmp(dead[d], ns, 16);
		if (!any && !seen) {
			memcpy(dead[ndead], ns, 16);
			dead[ndead++][16] = 0;
		}
	}
	uint64_t gone = 0;
	bool failed = false;
	for (uint32_t ni = 0; ndead && ni < rd->nnodes; ni++) {
		char cursor[32] = "0";
		do {
			redisReply *r = sync_cmd(ctx[ni], rd->nodes[ni]->name, err, sizeof err,
						 "SCAN %s MATCH upg:* COUNT 1000", cursor);
			if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
				if (r)
					freeReplyObject(r);
				failed = true;
				break;
			}
			snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
			uint64_t sent = 0;
			redisReply *keys = r->element[1];
			for (size_t k = 0; k < keys->elements; k++) {
				const char *key = keys->element[k]->str;
				if (keys->element[k]->len < 21 || key[20] != ':')
					continue;
				for (uint32_t d = 0; d < ndead; d++)
					if (!strncmp(key + 4, dead[d], 16)) {
						redisAppendCommand(ctx[ni], "UNLINK %s", key);
						sent++;
						break;
					}
			}
			failed |= drain(ctx[ni], sent) != 0;
			gone += sent;
			freeReplyObject(r);
		} while (strcmp(cursor, "0"));
	}
	/* Out of the registry: the dead members, once their keys are gone
	 * (else the next cleanup tries again). */
	for (size_t i = 0; !failed && alive && dead && i < nm; i++) {
		if (alive[i])
			continue;
		redisReply *x = sync_cmd(ctx[rn], rname, err, sizeof err, "ZREM upg:runs %b", m->element[2 * i]->str,
					 m->element[2 * i]->len);
		if (x)
			freeReplyObject(x);
	}
	if (ndead && rd->up)
		upg_log(rd->up, UPAGER_LOG_INFO, "redis store: removed %llu keys of %u runs that ended without closing",
			(unsigned long long)gone, ndead);
	freeReplyObject(m);
	free(alive);
	free(dead);
	return ndead;
}

static int new_namespace(struct upg_redis *rd, char *err, size_t errlen)
{
	uint64_t v;
	if (getrandom(&v, sizeof v, 0) != sizeof v) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -EIO;
	}
	snprintf(rd->ns[0], sizeof rd->ns[0], "%016llx", (unsigned long long)v);
	make_member(rd, 0);
	rd->gen[0] = mmap(NULL, rd->gen_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (rd->gen[0] == MAP_FAILED) {
		rd->gen[0] = NULL;
		snprintf(err, errlen, "the Redis store's generation table: %s", strerror(errno));
		return -ENOMEM;
	}
	rd->hw = 0;
	rd->reg = REG_NONE;
	rd->held = rd->held_tail = NULL;
	return 0;
}

static int start(struct upg_redis *rd, char *err, size_t errlen)
{
	pthread_mutex_init(&rd->lock, NULL);
	rd->in = rd->in_tail = rd->retry = NULL;
	rd->stop = false;
	rd->renew_at = upg_now_ns() + renew_ns(rd);
	rd->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc = rd->kick_fd < 0 ? -errno : io_uring_queue_init(512, &rd->ring, 0);
	if (!rc) {
		rc = upg_thread_start(&rd->tid, loop, rd, "upager-redis");
		if (rc)
			io_uring_queue_exit(&rd->ring);
	}
	if (rc) {
		if (rd->kick_fd >= 0)
			close(rd->kick_fd);
		rd->kick_fd = -1;
		snprintf(err, errlen, "the Redis store's thread: %s", strerror(-rc));
		return rc;
	}
	rd->running = true;
	return 0;
}

static void free_all(struct upg_redis *rd)
{
	for (uint32_t i = 0; i < rd->nnodes; i++)
		node_free(rd->nodes[i]);
	for (uint32_t k = 0; k < rd->nns; k++)
		if (rd->gen[k])
			munmap(rd->gen[k], rd->gen_len);
	free(rd);
}

/* Parse url, reach its node(s), learn the cluster, check every node's
 * policy: ctx[i] open on node i.  0 or -errno with a message. */
static int reach(struct upg_redis *rd, const char *url, redisContext **ctx, char *err, size_t errlen)
{
	int rc = parse_url(rd, url, err, errlen);
	if (rc)
		return rc;
	host_id(rd->hostid, sizeof rd->hostid);
	uint32_t seed = 0;
	for (; seed < rd->nnodes && !ctx[0]; seed++)
		ctx[0] = sync_open(rd, rd->nodes[seed], err, errlen);
	if (!ctx[0])
		return -ECONNREFUSED;
	char name[300];
	snprintf(name, sizeof name, "%s", rd->nodes[seed - 1]->name);
	if (!strncmp(url, "redis://", 8) && (rc = learn_cluster(rd, ctx[0], name, err, errlen)))
		return rc;
	if (!rd->cluster && seed > 1) {
		/* Not a cluster: the one address that answered. */
		struct node *t = rd->nodes[0];
		rd->nodes[0] = rd->nodes[seed - 1];
		rd->nodes[seed - 1] = t;
	}
	if (rd->cluster) {
		redisFree(ctx[0]);
		ctx[0] = NULL;
	}
	for (uint32_t i = 0; i < rd->nnodes; i++) {
		if (!ctx[i] && !(ctx[i] = sync_open(rd, rd->nodes[i], err, errlen)))
			return -ECONNREFUSED;
		rc = check_policy(rd, ctx[i], rd->nodes[i]->name, err, errlen);
		if (rc)
			return rc;
	}
	if (rd->cluster)
		snprintf(rd->where, sizeof rd->where, "redis cluster of %u masters, from %s", rd->nnodes, name);
	else
		snprintf(rd->where, sizeof rd->where, "redis %s", rd->nodes[0]->name);
	return 0;
}

int upg_redis_open(struct upager *up, const char *url, uint64_t blocks, struct upg_redis **out, char *err,
		   size_t errlen)
{
	int saved = upg_internal_thread;
	upg_internal_thread = 1;
	int rc = -ENOMEM;
	redisContext *ctx[NODES_MAX] = { 0 };
	struct upg_redis *rd = calloc(1, sizeof *rd);
	if (!rd) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rd->up = up;
	rd->kick_fd = -1;
	rd->blocks = blocks;
	rd->gen_len = ((blocks * sizeof(uint32_t)) + 4095) & ~(size_t)4095;
	rc = reach(rd, url, ctx, err, errlen);
	if (rc)
		goto fail;
	clean_dead(rd, ctx);
	rd->nns = 1;
	rc = new_namespace(rd, err, errlen);
	if (!rc)
		rc = start(rd, err, errlen);
	if (rc)
		goto fail;
	*out = rd;
	rc = 0;
	goto out;
fail:
	if (rd)
		free_all(rd);
out:
	for (uint32_t i = 0; i < NODES_MAX; i++)
		if (ctx[i])
			redisFree(ctx[i]);
	upg_internal_thread = saved;
	return rc;
}

int upg_redis_clean(const char *url, char *err, size_t errlen)
{
	int saved = upg_internal_thread;
	upg_internal_thread = 1;
	redisContext *ctx[NODES_MAX] = { 0 };
	struct upg_redis *rd = calloc(1, sizeof *rd);
	int rc = rd ? reach(rd, url, ctx, err, errlen) : -ENOMEM;
	if (!rc)
		rc = (int)clean_dead(rd, ctx);
	else if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	for (uint32_t i = 0; i < NODES_MAX; i++)
		if (ctx[i])
			redisFree(ctx[i]);
	if (rd)
		free_all(rd);
	upg_internal_thread = saved;
	return rc;
}

static void stop(struct upg_redis *rd)
{
	if (!rd->running)
		return;
	pthread_mutex_lock(&rd->lock);
	rd->stop = true;
	pthread_mutex_unlock(&rd->lock);
	uint64_t one = 1;
	(void)!write(rd->kick_fd, &one, sizeof one);
	pthread_join(rd->tid, NULL);
	io_uring_queue_exit(&rd->ring);
	close(rd->kick_fd);
	rd->kick_fd = -1;
	rd->running = false;
}

void upg_redis_close(struct upg_redis *rd, bool keep)
{
	if (!rd)
		return;
	int saved = upg_internal_thread;
	upg_internal_thread = 1;
	stop(rd);
	upg_log(rd->up, UPAGER_LOG_INFO, "redis store: %llu blocks written; %llu MOVED and %llu ASK redirections, "
		"%llu requests told to wait, %llu sent again, %llu failed; %llu reads answered on the handlers' own "
		"connections, %llu handed from them to the store's thread", (unsigned long long)rd->hw,
		(unsigned long long)rd->n_moved, (unsigned long long)rd->n_ask, (unsigned long long)rd->n_wait,
		(unsigned long long)rd->n_again, (unsigned long long)rd->n_fail, (unsigned long long)rd->n_direct,
		(unsigned long long)rd->n_handoff);
	if (!keep && rd->reg == REG_DONE) {
		char err[256] = "", keys[GROUP][48];
		const char *argv[1 + GROUP] = { "UNLINK" };
		size_t al[1 + GROUP] = { 6 };
		redisContext *ctx[NODES_MAX] = { 0 };
		uint64_t pend[NODES_MAX] = { 0 }, bad = 0;
		for (uint32_t i = 0; i < rd->nnodes; i++)
			ctx[i] = sync_open(rd, rd->nodes[i], err, sizeof err);
		/* A group's keys in one UNLINK (one hash slot). */
		for (uint64_t g = 0; g < rd->hw; g += GROUP) {
			int argc = 1;
			for (uint64_t b = g; b < g + GROUP && b < rd->hw; b++, argc++) {
				argv[argc] = keys[argc - 1];
				al[argc] = (size_t)block_key(rd, 0, (uint32_t)b, keys[argc - 1], sizeof keys[0]);
			}
			uint32_t ni = rd->cluster ? rd->slot_node[key_slot(keys[0], al[1])] : 0;
			if (!ctx[ni]) {
				bad++;
				continue;
			}
			redisAppendCommandArgv(ctx[ni], argc, argv, al);
			if (++pend[ni] == 64) {
				bad += drain(ctx[ni], pend[ni]);
				pend[ni] = 0;
			}
		}
		for (uint32_t i = 0; i < rd->nnodes; i++)
			if (ctx[i])
				bad += drain(ctx[i], pend[i]);
		/* Out of the registry only once the keys are gone. */
		uint32_t rn = node_of(rd, "upg:runs");
		redisReply *r;
		if (bad || !ctx[rn] || !(r = redisCommand(ctx[rn], "ZREM upg:runs %s", rd->member[0])))
			bad++;
		else
			freeReplyObject(r);
		if (bad)
			upg_log(rd->up, UPAGER_LOG_WARN, "redis store: this run's keys could not all be deleted (%s); "
				"the next upager start against the store deletes them once their lease runs out (%u s)",
				err[0] ? err : "errors", rd->lease_s);
		for (uint32_t i = 0; i < rd->nnodes; i++)
			if (ctx[i])
				redisFree(ctx[i]);
	}
	if (rd->nns > 1) {
		/* This process reads its ancestors' namespaces no more. */
		char err[256];
		uint32_t rn = node_of(rd, "upg:runs");
		redisContext *c = sync_open(rd, rd->nodes[rn], err, sizeof err);
		for (uint32_t k = 1; c && k < rd->nns; k++) {
			redisReply *r = redisCommand(c, "ZREM upg:runs %s", rd->member[k]);
			if (r)
				freeReplyObject(r);
		}
		if (c)
			redisFree(c);
	}
	free_all(rd);
	upg_internal_thread = saved;
}

void upg_redis_fork_prepare(struct upg_redis *rd)
{
	if (!rd)
		return;
	rd->placed = false;
	if (!rd->running)
		return;
	uint32_t from = __atomic_load_n(&rd->reg, __ATOMIC_ACQUIRE) == REG_DONE ? 0 : 1;
	if (from >= rd->nns)
		return;  /* nothing on the store yet */
	/* Until the child lists the namespaces under its own pid, a
	 * placeholder for each, alive by its lease: the parent may exit at
	 * once, and a cleanup then must not take them for dead. */
	char score[32], members[1 + UPG_ANCESTORS][96];
	const char *argv[2 + 2 * (1 + UPG_ANCESTORS)] = { "ZADD", "upg:runs" };
	int argc = 2;
	snprintf(score, sizeof score, "%lld", (long long)time(NULL) + rd->clock_off + rd->lease_s);
	uint32_t seq = ++rd->forks;
	rd->fork_pid = (int)getpid();
	for (uint32_t k = from; k < rd->nns; k++) {
		char ns[17];
		memcpy(ns, rd->ns[k], sizeof ns);
		snprintf(members[k], sizeof members[k], "%s %s F%d.%u", ns, rd->hostid, (int)getpid(), seq);
		argv[argc++] = score;
		argv[argc++] = members[k];
	}
	struct rq *q = ctl_rq("upg:runs", argc, argv);
	if (!q)
		return;
	struct rwait w = { .m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER };
	q->w = &w;
	to_thread(rd, q, q);
	/* Done by its deadline at the latest (tick()). */
	pthread_mutex_lock(&w.m);
	while (!w.done)
		pthread_cond_wait(&w.c, &w.m);
	pthread_mutex_unlock(&w.m);
	rd->placed = w.res >= 0;
	if (w.res < 0)
		upg_log(rd->up, UPAGER_LOG_WARN, "redis store: cannot list this fork's namespaces in upg:runs (%s): if "
			"the parent ends before the child lists them, a cleanup may delete pages the child reads",
			strerror(-w.res));
}

int upg_redis_fork_child(struct upg_redis *rd, char *err, size_t errlen)
{
	/* The parent's thread is not here; its ring, eventfd and sockets
	 * are the parent's (closing our copies leaves them be). */
	if (rd->running) {
		io_uring_queue_exit(&rd->ring);
		close(rd->kick_fd);
		rd->kick_fd = -1;
		rd->running = false;
	}
	for (uint32_t i = 0; i < rd->nnodes; i++) {
		struct node *n = rd->nodes[i];
		n->wait = NULL;
		for (int c = 0; c < CONNS_MAX; c++) {
			struct conn *k = &n->c[c];
			if (k->fd >= 0)
				close(k->fd);
			/* Left, not freed: the parent's thread may have been
			 * changing them when it forked. */
			*k = (struct conn){ .fd = -1, .state = C_DOWN };
		}
	}
	/* What was in flight was the parent's threads' business. */
	if (rd->nns == 1 + UPG_ANCESTORS) {
		snprintf(err, errlen, "a line of more than %d forked processes", UPG_ANCESTORS);
		return -E2BIG;
	}
	memmove(&rd->ns[1], &rd->ns[0], rd->nns * sizeof rd->ns[0]);
	memmove(&rd->gen[1], &rd->gen[0], rd->nns * sizeof rd->gen[0]);
	rd->nns++;
	int rc = new_namespace(rd, err, errlen);
	/* The ancestors' namespaces are read by this process too: listed
	 * under its pid at once, so that they outlive their writers. */
	memset(rd->placeholder, 0, sizeof rd->placeholder);
	for (uint32_t k = 1; k < rd->nns; k++) {
		make_member(rd, k);
		/* As upg_redis_fork_prepare() named it (the parent's k - 1). */
		char ns[17];
		memcpy(ns, rd->ns[k], sizeof ns);
		if (rd->placed)
			snprintf(rd->placeholder[k], sizeof rd->placeholder[k], "%s %s F%d.%u", ns, rd->hostid,
				 rd->fork_pid, rd->forks);
	}
	rd->placed = false;
	if (!rc)
		rc = start(rd, err, errlen);
	rd->renew_at = 0;
	return rc;
}
