/* SPDX-License-Identifier: MIT */
/*
 * graph: BFS and PageRank on a random directed graph with a heap footprint
 * of SIZE.
 *
 *   graph [SIZE [ITERATIONS]]   SIZE like 512M (default); ITERATIONS of
 *                               PageRank, default 5
 *
 * An ordinary program: it knows nothing of upager and allocates with malloc
 * and free, so it can be run under upager-run with a RAM cap far below
 * SIZE.
 *
 * The graph is in CSR form (malloc'd offsets and edges; with the BFS or the
 * PageRank arrays, about 58 bytes a vertex at the peak).  Out-degrees follow a
 * power law (floor(4 / sqrt(U)), at least 4, mean about 7.5, capped at
 * 4096).  Four edges in five go to a vertex within 4096 ids (crawl-order
 * locality); the rest go to vertex floor(N * U^3), so low ids are hubs.
 *
 * Checks: BFS from vertex 0 (every edge u->v out of a reached u has
 * dist[v] <= dist[u] + 1, and every reached v has a parent p with an edge
 * p->v and dist[p] + 1 == dist[v]); PageRank (damping 0.85, dangling mass
 * spread evenly) sums to 1 within 1e-6 after every iteration.
 *
 * Output: one line, byte-identical from run to run.  Exit status 0 when
 * everything checked out, 1 on a mismatch or allocation failure, 2 on a bad
 * argument.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define SEED    0x6772617068ULL /* "graph" */
#define UNSEEN  UINT32_MAX
#define DAMPING 0.85
#define WINDOW  4096



/* Uniform in (0, 1]. */
static double unit(uint64_t r)
{
	return ((r >> 11) + 1) * 0x1.0p-53;
}

static uint32_t out_degree(uint32_t u)
{
	double d = 4.0 / sqrt(unit(mix(SEED ^ u)));
	return d > 4096 ? 4096 : (uint32_t)d;
}

static uint32_t target(uint32_t u, uint32_t k, uint32_t n)
{
	uint64_t r = mix(((uint64_t)u << 20 ^ k) + SEED * 3);
	if (r % 10 < 8) {
		uint64_t off = (r >> 8) % (2 * WINDOW + 1);
		return (uint32_t)((u + n + off % n - WINDOW % n) % n);
	}
	double x = unit(r) - 0x1.0p-53; /* [0, 1) */
	uint64_t v = (uint64_t)(n * x * x * x);
	return v < n ? (uint32_t)v : n - 1;
}

int main(int argc, char **argv)
{
	uint64_t size = 512ULL << 20;
	int iters = 5;
	if (argc > 3 || (argc >= 2 && parse_size(argv[1], &size)) ||
	    (argc == 3 && ((iters = atoi(argv[2])) < 1 || iters > 1000))) {
		fprintf(stderr, "usage: graph [SIZE [ITERATIONS]]   (heap footprint such as 512M; "
			"PageRank iterations 1-1000, default 5)\n");
		return 2;
	}
	uint64_t nn = size / 58; /* peak: offsets 8, edges ~30, dist 4, rank and next 16 */
	if (nn < 16)
		nn = 16;
	if (nn >= UINT32_MAX) {
		fprintf(stderr, "graph: SIZE too large\n");
		return 2;
	}
	uint32_t n = (uint32_t)nn;
	unsigned long long errors = 0;

	uint64_t *off = malloc((n + 1ULL) * sizeof *off);
	if (!off)
		goto oom;
	off[0] = 0;
	for (uint32_t u = 0; u < n; u++)
		off[u + 1] = off[u] + out_degree(u);
	uint64_t m = off[n];
	uint32_t *edge = malloc(m * sizeof *edge);
	if (!edge)
		goto oom;
	for (uint32_t u = 0; u < n; u++)
		for (uint64_t e = off[u]; e < off[u + 1]; e++)
			edge[e] = target(u, (uint32_t)(e - off[u]), n);

	/* BFS from 0. */
	uint32_t *dist = malloc((size_t)n * sizeof *dist);
	uint32_t *parent = malloc((size_t)n * sizeof *parent);
	uint32_t *queue = malloc((size_t)n * sizeof *queue);
	if (!dist || !parent || !queue)
		goto oom;
	memset(dist, 0xff, (size_t)n * sizeof *dist);
	dist[0] = 0;
	parent[0] = 0;
	uint32_t head = 0, tail = 0;
	queue[tail++] = 0;
	while (head < tail) {
		uint32_t u = queue[head++];
		for (uint64_t e = off[u]; e < off[u + 1]; e++) {
			uint32_t v = edge[e];
			if (dist[v] == UNSEEN) {
				dist[v] = dist[u] + 1;
				parent[v] = u;
				queue[tail++] = v;
			}
		}
	}
	uint32_t reached = tail, depth = dist[queue[tail - 1]];

	/* Check BFS; queue[] becomes "has a valid parent edge". */
	memset(queue, 0, (size_t)n * sizeof *queue);
	uint64_t dsum = 0;
	uint32_t counted = 0;
	for (uint32_t u = 0; u < n; u++) {
		if (dist[u] == UNSEEN)
			continue;
		counted++;
		dsum += mix(dist[u] ^ ((uint64_t)u << 32));
		for (uint64_t e = off[u]; e < off[u + 1]; e++) {
			uint32_t v = edge[e];
			if (dist[v] == UNSEEN || dist[v] > dist[u] + 1) {
				if (errors++ < 10)
					fprintf(stderr, "graph: edge %u->%u: dist %u -> %u\n", u, v, dist[u], dist[v]);
			} else if (parent[v] == u && dist[v] == dist[u] + 1) {
				queue[v] = 1;
			}
		}
	}
	for (uint32_t v = 1; v < n; v++)
		if (dist[v] != UNSEEN && !queue[v] && errors++ < 10)
			fprintf(stderr, "graph: vertex %u: no edge from its parent %u at depth %u\n", v, parent[v],
				dist[v]);
	if (counted != reached && errors++ < 10)
		fprintf(stderr, "graph: BFS dequeued %u vertices, %u have a distance\n", reached, counted);
	free(queue);
	free(parent);

	/* PageRank, push style. */
	double *rank = malloc((size_t)n * sizeof *rank), *next = malloc((size_t)n * sizeof *next);
	if (!rank || !next)
		goto oom;
	for (uint32_t v = 0; v < n; v++)
		rank[v] = 1.0 / n;
	double total = 1.0;
	for (int it = 0; it < iters; it++) {
		double dangling = 0;
		memset(next, 0, (size_t)n * sizeof *next);
		for (uint32_t u = 0; u < n; u++) {
			uint64_t deg = off[u + 1] - off[u];
			if (!deg) {
				dangling += rank[u];
				continue;
			}
			double share = DAMPING * rank[u] / deg;
			for (uint64_t e = off[u]; e < off[u + 1]; e++)
				next[edge[e]] += share;
		}
		double base = (1.0 - DAMPING) / n + DAMPING * dangling / n;
		total = 0;
		for (uint32_t v = 0; v < n; v++) {
			next[v] += base;
			total += next[v];
		}
		if (fabs(total - 1.0) > 1e-6 && errors++ < 10)
			fprintf(stderr, "graph: PageRank iteration %d sums to %.12f\n", it + 1, total);
		double *t = rank;
		rank = next;
		next = t;
	}

	/* Top five by rank, ties to the lower id. */
	uint32_t top[5];
	int ntop = 0;
	for (uint32_t v = 0; v < n; v++) {
		int i = ntop;
		while (i > 0 && rank[v] > rank[top[i - 1]])
			i--;
		if (i >= 5)
			continue;
		if (ntop < 5)
			ntop++;
		memmove(top + i + 1, top + i, (size_t)(ntop - 1 - i) * sizeof *top);
		top[i] = v;
	}

	printf("graph: vertices=%u edges=%llu reached=%u max_depth=%u dist_checksum=%016llx pagerank_iters=%d "
	       "pagerank_sum=%.9f top5=%u,%u,%u,%u,%u verify=%s\n", n, (unsigned long long)m, reached, depth,
	       (unsigned long long)dsum, iters, total, top[0], top[1], top[2], top[3], top[4],
	       errors ? "FAILED" : "OK");
	free(rank);
	free(next);
	free(dist);
	free(edge);
	free(off);
	return errors ? 1 : 0;
oom:
	fprintf(stderr, "graph: out of memory\n");
	return 1;
}
