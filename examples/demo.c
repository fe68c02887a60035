/* SPDX-License-Identifier: MIT */
/*
 * upager-demo: use a region several times larger than the RAM budget through
 * the library API, verify every page, and print the runtime's report.
 *
 *   upager-demo [--ram SIZE] [--data SIZE] [--threads N] [--page SIZE]
 *
 * Settings not given on the command line come from UPAGER_* (see README).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upager.h"

struct job {
	uint64_t *words;
	uint64_t npages, first, last, seed, errors;
	uint32_t psize;
};

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The value word w of a page holds after g updates. */
static uint64_t value(uint64_t page, uint64_t w, uint64_t g)
{
	return mix(page * 1315423911ULL + w) + g;
}

static void *fill(void *arg)
{
	struct job *j = arg;
	uint64_t per = j->psize / 8;
	for (uint64_t p = j->first; p < j->last; p++)
		for (uint64_t w = 0; w < per; w += 64)  /* one word per cache line */
			j->words[p * per + w] = value(p, w, 0);
	return NULL;
}

/* Random read-modify-write: bump the first word of random pages; a counter
 * per page records how many times, so the final value is known. */
static void *update(void *arg)
{
	struct job *j = arg;
	uint64_t per = j->psize / 8, s = j->seed;
	for (uint64_t i = 0; i < (j->last - j->first) * 2; i++) {
		s = mix(s + 0x9e3779b97f4a7c15ULL);
		uint64_t p = j->first + s % (j->last - j->first);
		j->words[p * per] += 1;
	}
	return NULL;
}

static void *verify(void *arg)
{
	struct job *j = arg;
	uint64_t per = j->psize / 8, s = j->seed;
	uint64_t n = j->last - j->first;
	uint32_t *bumps = calloc(n, sizeof *bumps);
	for (uint64_t i = 0; i < n * 2; i++) {
		s = mix(s + 0x9e3779b97f4a7c15ULL);
		bumps[s % n]++;
	}
	for (uint64_t p = j->first; p < j->last; p++)
		for (uint64_t w = 0; w < per; w += 64) {
			uint64_t want = value(p, w, w == 0 ? bumps[p - j->first] : 0);
			if (j->words[p * per + w] != want && j->errors++ < 5)
				fprintf(stderr, "page %llu word %llu: %#llx, expected %#llx\n", (unsigned long long)p,
					(unsigned long long)w, (unsigned long long)j->words[p * per + w],
					(unsigned long long)want);
		}
	free(bumps);
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(struct job *jobs, int n, void *(*fn)(void *))
{
	pthread_t t[64];
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, fn, &jobs[i]);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "upager: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct upager_config cfg;
	char err[512];
	upager_config_init(&cfg);
	cfg.ram_budget = 256ULL << 20;
	if (upager_config_from_env(&cfg, err, sizeof err)) {
		fprintf(stderr, "upager-demo: %s\n", err);
		return 2;
	}
	uint64_t data = 0;
	int threads = 4;
	for (int i = 1; i < argc; i++) {
		uint64_t v;
		if (!strcmp(argv[i], "--ram") && i + 1 < argc && !upager_parse_size(argv[i + 1], &v))
			cfg.ram_budget = v, i++;
		else if (!strcmp(argv[i], "--data") && i + 1 < argc && !upager_parse_size(argv[i + 1], &v))
			data = v, i++;
		else if (!strcmp(argv[i], "--page") && i + 1 < argc && !upager_parse_size(argv[i + 1], &v))
			cfg.page_size = (uint32_t)v, i++;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc && atoi(argv[i + 1]) > 0 && atoi(argv[i + 1]) <= 64)
			threads = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: upager-demo [--ram SIZE] [--data SIZE] [--page SIZE] [--threads 1-64]\n"
				"  bad or incomplete argument: %s\n", argv[i]);
			return 2;
		}
	}
	if (!data)
		data = cfg.ram_budget * 4;
	cfg.log = log_cb;

	upager_t *up;
	int rc = upager_open(&cfg, &up, err, sizeof err);
	if (rc) {
		fprintf(stderr, "upager-demo: cannot start upager: %s\n", err);
		return 1;
	}
	void *mem;
	rc = upager_map(up, data, NULL, &mem);
	if (rc) {
		fprintf(stderr, "upager-demo: upager_map(%llu bytes): %s\n", (unsigned long long)data, strerror(-rc));
		return 1;
	}
	uint64_t npages = data / cfg.page_size;
	struct job jobs[64];
	for (int i = 0; i < threads; i++)
		jobs[i] = (struct job){ .words = mem, .npages = npages, .psize = cfg.page_size,
					.first = npages * i / threads, .last = npages * (i + 1) / threads,
					.seed = 42 + i };
	printf("upager-demo: %llu MiB of data under a %llu MiB budget (%.1fx), %d threads\n",
	       (unsigned long long)(data >> 20), (unsigned long long)(cfg.ram_budget >> 20),
	       (double)data / cfg.ram_budget, threads);
	double t0 = now();
	run(jobs, threads, fill);
	double t1 = now();
	run(jobs, threads, update);
	double t2 = now();
	run(jobs, threads, verify);
	double t3 = now();
	uint64_t errors = 0;
	for (int i = 0; i < threads; i++)
		errors += jobs[i].errors;
	printf("  fill %.2f s, random updates %.2f s, verify %.2f s\n", t1 - t0, t2 - t1, t3 - t2);

	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	char report[4096];
	upager_format_stats(&st, report, sizeof report);
	fputs(report, stdout);
	printf("verification: %s (%llu wrong words in %llu pages)\n", errors ? "FAILED" : "every page correct",
	       (unsigned long long)errors, (unsigned long long)npages);
	upager_unmap(up, mem);
	upager_close(up);
	return errors ? 1 : 0;
}
