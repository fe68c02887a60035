/* SPDX-License-Identifier: MIT */
/*
 * filetable: a table of sorted fixed-size records in a file several times
 * the RAM budget, searched and updated in place through upager_map_file().
 *
 *   filetable [--ram SIZE] [--data SIZE] [--updates N] [--file PATH]
 *
 * --ram is the budget (default 64M, or UPAGER_RAM), --data the file's size
 * (default 8 times the budget), --updates the number of searches (default
 * 200000), --file where the table goes (default: a file in $TMPDIR or /tmp,
 * removed at the end; an existing file is overwritten).  Other settings
 * come from UPAGER_* (see README).
 *
 * The file is sized with ftruncate() and filled through a shared mapping:
 * record i holds key 3i + 1 and a payload that is a function of the key,
 * so the runtime writes every page to the file as it leaves RAM.  Then N
 * random keys are searched by bisection (a quarter of them absent: keys
 * not of the form 3i + 1); a record found gets its counter incremented and
 * a word of the update XORed into its accumulator, in place.  After
 * upager_sync() and upager_close(), the file is read back with pread()
 * (O_DIRECT where the filesystem has it) and
 * every record checked: key, payload, and the counters' and accumulators'
 * totals against the updates made.
 *
 * Output: one summary line on stdout, byte-identical from run to run for
 * the same settings; timings on stderr.  Exit status 0 when everything
 * checked out, 1 on a mismatch or a failure, 2 on a bad argument.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "example.h"
#include "upager.h"

#define SEED 0x66696c65746162ULL /* "filetab" */

struct record {
	uint64_t key;
	uint64_t count;     /* updates that found it */
	uint64_t acc;       /* XOR of their words */
	uint64_t payload[5];  /* a function of the key */
};

static uint64_t payload_word(uint64_t key, unsigned w)
{
	return mix(key * 8 + w + SEED);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(const char *why)
{
	fprintf(stderr, "filetable: %s\nusage: filetable [--ram SIZE] [--data SIZE] [--updates N] [--file PATH]\n",
		why);
	return 2;
}

/* The record holding key in t[0, n), or NULL. */
static struct record *search(struct record *t, uint64_t n, uint64_t key)
{
	uint64_t lo = 0, hi = n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (t[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && t[lo].key == key ? &t[lo] : NULL;
}

int main(int argc, char **argv)
{
	uint64_t ram = 64ULL << 20, data = 0, updates = 200000;
	const char *path = NULL, *env = getenv("UPAGER_RAM");
	if (env && parse_size(env, &ram))
		return usage("UPAGER_RAM is not a size");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage("an option lacks its value");
		if (!strcmp(a, "--ram") && !parse_size(v, &ram))
			i++;
		else if (!strcmp(a, "--data") && !parse_size(v, &data))
			i++;
		else if (!strcmp(a, "--updates") && !parse_size(v, &updates))
			i++;
		else if (!strcmp(a, "--file"))
			path = v, i++;
		else
			return usage("unknown option or bad value");
	}
	if (!data)
		data = ram * 8;
	uint64_t n = data / sizeof(struct record);
	if (!n)
		return usage("--data is smaller than one record (64 bytes)");
	data = n * sizeof(struct record);

	char tmp[512];
	if (!path) {
		const char *dir = getenv("TMPDIR");
		snprintf(tmp, sizeof tmp, "%s/upager-filetable-%d", dir && *dir ? dir : "/tmp", (int)getpid());
		path = tmp;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)data)) {
		fprintf(stderr, "filetable: %s: %s\n", path, strerror(errno));
		return 1;
	}

	struct upager_config cfg;
	upager_config_init(&cfg);
	char err[512];
	if (upager_config_from_env(&cfg, err, sizeof err)) {
		fprintf(stderr, "filetable: %s\n", err);
		return 2;
	}
	cfg.ram_budget = ram;
	upager_t *up;
	int rc = upager_open(&cfg, &up, err, sizeof err);
	if (rc) {
		fprintf(stderr, "filetable: upager_open: %s\n", err);
		return 1;
	}
	void *m;
	rc = upager_map_file(up, fd, 0, data, UPAGER_MAP_SHARED, &m);
	if (rc) {
		fprintf(stderr, "filetable: upager_map_file: %s\n", strerror(-rc));
		return 1;
	}
	struct record *t = m;

	double t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		t[i].key = 3 * i + 1;
		t[i].count = 0;
		t[i].acc = 0;
		for (unsigned w = 0; w < 5; w++)
			t[i].payload[w] = payload_word(t[i].key, w);
	}
	double t1 = now_s();
	uint64_t found = 0, xor_all = 0;
	for (uint64_t j = 0; j < updates; j++) {
		uint64_t r = mix(SEED ^ (j * 0x9e3779b97f4a7c15ULL));
		uint64_t key = (r >> 2) % (3 * n);
		if (r & 3)
			key = key - key % 3 + 1;  /* three in four searches look for a present key */
		struct record *x = search(t, n, key);
		if ((x != NULL) != (key % 3 == 1)) {
			fprintf(stderr, "filetable: key %llu %s\n", (unsigned long long)key,
				x ? "found, but no record has it" : "not found, but record holds it");
			return 1;
		}
		if (x) {
			x->count++;
			x->acc ^= mix(j);
			xor_all ^= mix(j);
			found++;
		}
	}
	double t2 = now_s();
	rc = upager_sync(up, t, data, UPAGER_SYNC);
	double t3 = now_s();
	if (rc) {
		fprintf(stderr, "filetable: upager_sync: %s\n", strerror(-rc));
		return 1;
	}
	struct upager_stats st = { .size = sizeof st };
	upager_stats(up, &st);
	rc = upager_close(up);
	if (rc) {
		fprintf(stderr, "filetable: upager_close: %s\n", strerror(-rc));
		return 1;
	}

	/* The file itself, read past the runtime (and the page cache it
	 * fills let go as it goes). */
	double t4 = now_s();
	static struct record buf[16384] __attribute__((aligned(4096)));
	int dfd = open(path, O_RDONLY | O_DIRECT);  /* past the page cache too */
	if (dfd >= 0) {
		close(fd);
		fd = dfd;
	}
	uint64_t bad = 0, count_sum = 0, acc = 0;
	for (uint64_t i = 0; i < n; i += 16384) {
		uint64_t k = n - i < 16384 ? n - i : 16384;
		size_t len = k * sizeof(struct record);
		if (pread(fd, buf, len, (off_t)(i * sizeof(struct record))) != (ssize_t)len) {
			fprintf(stderr, "filetable: reading the file back: %s\n", strerror(errno));
			return 1;
		}
		for (uint64_t q = 0; q < k; q++) {
			const struct record *x = &buf[q];
			int ok = x->key == 3 * (i + q) + 1;
			for (unsigned w = 0; w < 5 && ok; w++)
				ok = x->payload[w] == payload_word(x->key, w);
			bad += !ok;
			count_sum += x->count;
			acc ^= x->acc;
		}
	}
	double t5 = now_s();
	close(fd);
	if (path == tmp)
		unlink(path);
	fprintf(stderr, "filetable: fill %.2f s, %llu searches %.2f s, sync %.2f s, read back %.2f s; "
		"resident peak %llu MiB of %llu, %llu evictions, %llu pages written, %llu read\n",
		t1 - t0, (unsigned long long)updates, t2 - t1, t3 - t2, t5 - t4,
		(unsigned long long)(st.resident_peak >> 20), (unsigned long long)(ram >> 20),
		(unsigned long long)st.evictions, (unsigned long long)st.writebacks,
		(unsigned long long)st.store_reads);
	bool right = !bad && count_sum == found && acc == xor_all;
	printf("filetable: %llu records (%llu MiB file) under a %llu MiB budget, %llu searches, %llu found: %s\n",
	       (unsigned long long)n, (unsigned long long)(data >> 20), (unsigned long long)(ram >> 20),
	       (unsigned long long)updates, (unsigned long long)found,
	       right ? "every record right on the file" : "WRONG");
	if (!right)
		fprintf(stderr, "filetable: %llu records wrong; counters sum to %llu for %llu updates; accumulators %s\n",
			(unsigned long long)bad, (unsigned long long)count_sum, (unsigned long long)found,
			acc == xor_all ? "agree" : "differ");
	return right ? 0 : 1;
}
