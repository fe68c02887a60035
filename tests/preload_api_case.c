/* SPDX-License-Identifier: MIT */
/*
 * A program that uses the library API, run under the preload library too
 * (see preload.sh): it must get the preload's runtime, not a second one.
 *   preload_api_case EXPECTED_BUDGET_BYTES
 * Opens a runtime asking for an 8 MiB budget, pages 96 MiB through a region
 * and checks every byte after eviction, then checks which budget applied
 * and that this process runs one set of upager threads.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upager.h"

static int threads_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d))) {
		char path[300], comm[64] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(comm, sizeof comm, f) && !strncmp(comm, name, strlen(name)))
			n++;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	unsigned long long want = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = 8 << 20;
	upager_t *up;
	char err[256];
	if (upager_open(&cfg, &up, err, sizeof err)) {
		fprintf(stderr, "FAIL upager_open: %s\n", err);
		return 1;
	}
	size_t len = 96 << 20;
	unsigned long long *p;
	if (upager_map(up, len, NULL, (void **)&p)) {
		fprintf(stderr, "FAIL upager_map\n");
		return 1;
	}
	size_t words = len / 8;
	for (size_t i = 0; i < words; i++)
		p[i] = i * 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < words; i++)
		if (p[i] != i * 0x9e3779b97f4a7c15ULL) {
			fprintf(stderr, "FAIL word %zu of a region changed after eviction\n", i);
			return 1;
		}
	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	int handlers = threads_named("upg-handler"), evictors = threads_named("upg-evictor");
	upager_unmap(up, p);
	upager_close(up);
	if (st.ram_budget != want || handlers != 1 || evictors != 1 || !st.evictions) {
		fprintf(stderr, "FAIL budget %llu (want %llu), %d handler and %d evictor threads (want 1 and 1), "
			"%llu evictions\n", (unsigned long long)st.ram_budget, want, handlers, evictors,
			(unsigned long long)st.evictions);
		return 1;
	}
	printf("ok one runtime: budget %llu, 1 handler and 1 evictor thread, 96 MiB verified after %llu evictions\n",
	       want, (unsigned long long)st.evictions);
	return 0;
}
