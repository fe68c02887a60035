/* SPDX-License-Identifier: MIT */
/*
 * A paging workload for tests/redis.sh: a region of several budgets on the
 * store named on the command line, filled with per-page patterns, then
 * ROUNDS rounds that check every page and write the next generation.
 *
 *   redis_pages STORE MIB ROUNDS
 *
 * Prints "filled" once the region is written, and "round N ok" after each
 * round.  Exits 0 when every page was right every time; 3 (after "WRONG
 * DATA ...") when a page held anything but its pattern; 1 when upager
 * could not open.  A page the store cannot give back ends the program with
 * SIGBUS, as a bad disk block does.
 *
 * With REDIS_PAGES_FORK=S, after the rounds it forks a child that checks
 * every page, prints "child ok PID", stays S seconds and closes; the parent
 * waits for it ("child failed" and exit 3 unless it ended well).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "upager.h"

#define PS 4096u

static void log_cb(void *ctx, int level, const char *msg)
{
	fprintf(stderr, "upager[%d]: %s\n", level, msg);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s STORE MIB ROUNDS\n", argv[0]);
		return 2;
	}
	size_t len = strtoull(argv[2], NULL, 0) << 20;
	int rounds = atoi(argv[3]);
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = upg_t_env_u64("REDIS_PAGES_BUDGET", 4u << 20);
	cfg.store_path = argv[1];
	cfg.compress = getenv("UPG_TEST_COMPRESS");
	cfg.log = log_cb;
	cfg.log_level = (int)upg_t_env_u64("REDIS_PAGES_LOG", UPAGER_LOG_WARN);
	char err[512];
	upager_t *up;
	int rc = upager_open(&cfg, &up, err, sizeof err);
	if (rc) {
		fprintf(stderr, "upager_open: %s\n", err);
		return 1;
	}
	char *m;
	rc = upager_map(up, len, NULL, (void **)&m);
	if (rc) {
		fprintf(stderr, "upager_map: %d\n", rc);
		return 1;
	}
	size_t n = len / PS;
	for (size_t i = 0; i < n; i++)
		upg_t_fill(m + i * PS, PS, i, 1);
	printf("filled\n");
	fflush(stdout);
	for (int r = 1; r <= rounds; r++) {
		for (size_t i = 0; i < n; i++) {
			size_t bad = upg_t_check(m + i * PS, PS, i, (uint32_t)r);
			if (bad) {
				printf("WRONG DATA page %zu round %d byte %zu\n", i, r, bad - 1);
				fflush(stdout);
				_exit(3);
			}
			upg_t_fill(m + i * PS, PS, i, (uint32_t)r + 1);
		}
		printf("round %d ok\n", r);
		fflush(stdout);
	}
	unsigned fork_s = (unsigned)upg_t_env_u64("REDIS_PAGES_FORK", 0);
	if (fork_s) {
		pid_t c = fork();
		if (c < 0) {
			perror("fork");
			return 1;
		}
		if (c == 0) {
			for (size_t i = 0; i < n; i++)
				if (upg_t_check(m + i * PS, PS, i, (uint32_t)rounds + 1)) {
					printf("WRONG DATA in the child, page %zu\n", i);
					fflush(stdout);
					_exit(3);
				}
			printf("child ok %d\n", (int)getpid());
			fflush(stdout);
			sleep(fork_s);
			_exit(upager_close(up) ? 1 : 0);
		}
		int ws;
		if (waitpid(c, &ws, 0) != c || !WIFEXITED(ws) || WEXITSTATUS(ws)) {
			printf("child failed\n");
			fflush(stdout);
			return 3;
		}
	}
	rc = upager_close(up);
	if (rc) {
		fprintf(stderr, "upager_close: %d\n", rc);
		return 1;
	}
	return 0;
}
