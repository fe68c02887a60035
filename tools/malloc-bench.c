/* SPDX-License-Identifier: MIT */
/*
 * malloc-bench: an allocation-heavy microbenchmark that prints figures.
 * THREADS threads each keep SLOTS live blocks of mixed sizes (mostly small,
 * some up to 256 KiB) and replace a random one per step, touching what they
 * allocate.  Run it plainly and under upager-run to compare:
 *
 *   malloc-bench [THREADS [MILLION_OPS [SLOTS]]]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct arg {
	uint64_t ops, slots, seed, checksum;
};

static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t size_of(uint64_t r)
{
	unsigned k = r % 100;
	if (k < 60)
		return 16 + (r >> 8) % 112;       /* small objects */
	if (k < 90)
		return 128 + (r >> 8) % 3968;     /* up to a page */
	if (k < 99)
		return 4096 + (r >> 8) % 61440;   /* up to 64 KiB */
	return 65536 + (r >> 8) % 196608;     /* up to 256 KiB */
}

static void *work(void *p)
{
	struct arg *a = p;
	char **slot = calloc(a->slots, sizeof *slot);
	uint64_t s = a->seed, sum = 0;
	for (uint64_t i = 0; i < a->ops; i++) {
		uint64_t r = next(&s);
		uint64_t k = r % a->slots;
		if (slot[k]) {
			sum += (unsigned char)slot[k][0];
			free(slot[k]);
		}
		size_t n = size_of(next(&s));
		slot[k] = malloc(n);
		slot[k][0] = (char)r;
		slot[k][n - 1] = (char)i;
		if (i % 64 == 0)
			memset(slot[k], (int)r, n < 512 ? n : 512);
	}
	for (uint64_t k = 0; k < a->slots; k++)
		free(slot[k]);
	free(slot);
	a->checksum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	uint64_t ops = (argc > 2 ? strtoull(argv[2], NULL, 10) : 5) * 1000000ULL;
	uint64_t slots = argc > 3 ? strtoull(argv[3], NULL, 10) : 20000;
	if (threads < 1 || threads > 64 || !ops || !slots) {
		fprintf(stderr, "usage: malloc-bench [THREADS 1-64 [MILLION_OPS [SLOTS]]]\n");
		return 2;
	}
	pthread_t t[64];
	struct arg a[64];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < threads; i++) {
		a[i] = (struct arg){ .ops = ops, .slots = slots, .seed = 1 + i };
		pthread_create(&t[i], NULL, work, &a[i]);
	}
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		sum += a[i].checksum;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("malloc-bench: %d threads, %llu ops each, %llu live slots each: %.3f s, %.2f M ops/s (checksum %llu)\n",
	       threads, (unsigned long long)ops, (unsigned long long)slots, secs, threads * ops / secs / 1e6,
	       (unsigned long long)sum);
	return 0;
}
