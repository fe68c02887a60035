/* SPDX-License-Identifier: MIT */
/*
 * A forked child verifies its parent's whole heap, as it was at fork time,
 * while the parent rewrites it; run under upager-run in a memory cgroup
 * (see programs.sh).
 *   fork_verify SIZE_MIB rewrite   the parent rewrites its heap meanwhile,
 *                                  then checks its own new data
 *   fork_verify SIZE_MIB kill      the parent is killed with SIGKILL once the
 *                                  child is a tenth of the way through
 * This process is a subreaper: it collects the orphaned child and reports.
 * Exit 0 when every page was right; prints what it checked.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload_common.h"

#define PAGE 4096

/* The child's answer goes to fd out: "N\n", the number of wrong pages. */
static void child(char *heap, size_t pages, int progress, int out)
{
	uint64_t bad = 0;
	for (size_t pg = 0; pg < pages; pg++) {
		bad += bad_at(heap + pg * PAGE, PAGE, pg * 1000003) != 0;
		if (pg == pages / 10)
			(void)!write(progress, "p", 1);
	}
	char line[32];
	int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)bad);
	(void)!write(out, line, (size_t)n);
	_exit(bad ? 1 : 0);
}

/* The parent: fill, fork the child, rewrite, check.  Exit 0 when right. */
static void parent(size_t pages, bool rewrite, int progress, int out)
{
	char *heap = malloc(pages * PAGE);
	if (!heap)
		_exit(3);
	for (size_t pg = 0; pg < pages; pg++)
		fill(heap + pg * PAGE, PAGE, pg * 1000003);
	pid_t c = fork();
	if (c < 0)
		_exit(3);
	if (c == 0)
		child(heap, pages, progress, out);
	if (!rewrite) {
		pause();  /* until SIGKILL */
		_exit(4);
	}
	for (size_t pg = 0; pg < pages; pg++)
		fill(heap + pg * PAGE, PAGE, pg * 7 + 1);
	uint64_t bad = 0;
	for (size_t pg = 0; pg < pages; pg++)
		bad += bad_at(heap + pg * PAGE, PAGE, pg * 7 + 1) != 0;
	int st;
	waitpid(c, &st, 0);
	_exit(bad ? 5 : WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 6);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[2], "rewrite") && strcmp(argv[2], "kill"))) {
		fprintf(stderr, "usage: fork_verify SIZE_MIB rewrite|kill\n");
		return 2;
	}
	size_t pages = strtoul(argv[1], NULL, 10) * MIB / PAGE;
	bool rewrite = !strcmp(argv[2], "rewrite");
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int prog[2], res[2];
	if (pipe(prog) || pipe(res))
		return 3;
	pid_t p = fork();
	if (p == 0) {
		close(prog[0]);
		close(res[0]);
		parent(pages, rewrite, prog[1], res[1]);
	}
	close(prog[1]);
	close(res[1]);
	char c;
	if (read(prog[0], &c, 1) != 1) {
		fprintf(stderr, "FAIL the child never got a tenth of the way\n");
		return 1;
	}
	if (!rewrite)
		kill(p, SIGKILL);
	int st, pst = -1, cst = -1, children = 0;
	pid_t w;
	while ((w = wait(&st)) > 0) {  /* the parent, and the child (ours once orphaned) */
		children++;
		if (w == p)
			pst = st;
		else
			cst = st;
	}
	char line[32] = "";
	ssize_t n = read(res[0], line, sizeof line - 1);
	if (n <= 0) {
		if (cst != -1 && WIFSIGNALED(cst))
			fprintf(stderr, "FAIL the child gave no answer: it was killed by signal %d\n", WTERMSIG(cst));
		else if (cst != -1)
			fprintf(stderr, "FAIL the child gave no answer: it exited %d\n", WEXITSTATUS(cst));
		else
			fprintf(stderr, "FAIL the child gave no answer (it was not reaped here)\n");
		return 1;
	}
	line[n] = 0;
	unsigned long long bad = strtoull(line, NULL, 10);
	bool parent_ok = rewrite ? WIFEXITED(pst) && WEXITSTATUS(pst) == 0 : WIFSIGNALED(pst) && WTERMSIG(pst) == SIGKILL;
	/* rewrite: the parent reaps its child; kill: the child is orphaned,
	 * and ours to reap. */
	if (bad || !parent_ok || children != (rewrite ? 1 : 2)) {
		fprintf(stderr, "FAIL %llu wrong pages in the child; parent status %#x; %d processes reaped\n", bad, pst,
			children);
		return 1;
	}
	printf("ok a forked child verified all %zu MiB of its parent's heap%s\n", pages * PAGE / MIB,
	       rewrite ? " while the parent rewrote it (and checked its own)" : " after the parent was SIGKILLed");
	return 0;
}
