/* SPDX-License-Identifier: MIT */
/*
 * fork-bench: the cost of fork() + exec of /bin/true + wait, from a process
 * whose heap holds SIZE of data (most of it evicted, when run under
 * upager-run with a smaller --ram).  Prints the median and the mean over N.
 *   upager-run --ram 64M -- fork-bench [SIZE_MIB [N]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int n = argc > 2 ? atoi(argv[2]) : 50;
	if (n < 1 || n > 100000) {
		fprintf(stderr, "fork-bench: N must be from 1 to 100000\n");
		return 2;
	}
	char *heap = malloc(mib << 20);
	if (!heap) {
		fprintf(stderr, "fork-bench: cannot allocate %zu MiB\n", mib);
		return 1;
	}
	for (size_t i = 0; i < mib << 20; i += 4096)
		memset(heap + i, (int)(i >> 12), 64);
	double *t = malloc(sizeof *t * (size_t)n), sum = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		t[i] = now_ms() - t0;
		sum += t[i];
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "fork-bench: the child failed (status %#x)\n", st);
			return 1;
		}
	}
	qsort(t, (size_t)n, sizeof *t, cmp);
	printf("fork+exec+wait with a %zu MiB heap: median %.2f ms, mean %.2f ms over %d\n", mib, t[n / 2],
	       sum / n, n);
	return 0;
}
