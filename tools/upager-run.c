/* SPDX-License-Identifier: MIT */
/*
 * upager-run: start any program with its memory paged by upager under a RAM
 * cap.  It checks the settings, makes the tree's budget file (domain.h),
 * puts the settings in the environment with LD_PRELOAD=libupager-preload.so,
 * and starts the program as its child: every process of the tree then
 * shares one budget.  It waits for the program, forwards the signals a
 * user sends it, removes the budget file, and ends as the program ended:
 * with its exit status, or killed by the same signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "domain.h"
#include "run_args.h"
#include "upager.h"

#ifndef UPG_LIBDIR
#define UPG_LIBDIR "/usr/local/lib"
#endif
#define PRELOAD_NAME "libupager-preload.so"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: upager-run [OPTIONS] [--] COMMAND [ARGS...]\n"
		"Run COMMAND with its malloc heap paged by upager under a RAM cap.\n\n"
		"  --ram SIZE        RAM budget for the heap, e.g. 256M or 2G (UPAGER_RAM)\n"
		"  --store PATH      store location: a directory, file or block device (UPAGER_STORE)\n"
		"  --store-max SIZE  largest store size (UPAGER_STORE_MAX)\n"
		"  --page SIZE       page size, a power of two from 4K to 2M (UPAGER_PAGE)\n"
		"  --policy NAME     replacement policy: s3fifo, clock or fifo (UPAGER_POLICY)\n"
		"  --handlers N      fault-handler threads, 1 to 16 (UPAGER_HANDLERS)\n"
		"  --report[=WHERE]  print a report at exit: to stderr, to a file PATH,\n"
		"                    as JSON with --report=json or --report=json:PATH, or as a\n"
		"                    page with plots with --report=html:PATH\n"
		"  --log LEVEL       error, warn, info or debug (UPAGER_LOG)\n"
		"  -h, --help        this text\n"
		"  -V, --version     the version\n\n"
		"Settings not given keep their UPAGER_* environment value or the default.\n"
		"The exit status is COMMAND's; 126 or 127 when it cannot be started.\n");
}

static void die(const char *fmt, const char *arg, const char *hint)
{
	fprintf(stderr, "upager-run: ");
	fprintf(stderr, fmt, arg);
	if (hint)
		fprintf(stderr, ": %s", hint);
	fprintf(stderr, "\nTry 'upager-run --help'.\n");
	exit(2);
}

/* The preload library next to this program in a build tree, or installed. */
static int find_preload(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			const char *rel[] = { "/../" PRELOAD_NAME, "/../lib/" PRELOAD_NAME,
					      "/../lib/x86_64-linux-gnu/" PRELOAD_NAME, "/" PRELOAD_NAME };
			for (unsigned i = 0; i < sizeof rel / sizeof rel[0]; i++) {
				snprintf(out, len, "%s%s", self, rel[i]);
				char real[PATH_MAX];
				if (!access(out, R_OK) && realpath(out, real)) {
					snprintf(out, len, "%s", real);
					return 0;
				}
			}
		}
	}
	snprintf(out, len, "%s/%s", UPG_LIBDIR, PRELOAD_NAME);
	return access(out, R_OK) ? -ENOENT : 0;
}

static pid_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* Start the program and wait for it.  tree: the budget file to remove at
 * the end ("" when an outer upager-run owns it). */
static int supervise(char **cmd, const char *tree, struct upg_domain_area *area)
{
	int pipefd[2];  /* the child's exec error, if any, comes back here */
	if (pipe2(pipefd, O_CLOEXEC))
		die("cannot make a pipe: %s", strerror(errno), NULL);
	/* Signals sent to upager-run go to the program; those the terminal
	 * sends reach the whole process group, the program included. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	child_pid = fork();
	if (child_pid < 0) {
		int e = errno;
		if (tree[0])
			unlink(tree);
		die("cannot start the program: %s", strerror(e), NULL);
	}
	if (child_pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(pipefd[0]);
		execvp(cmd[0], cmd);
		int e = errno;
		(void)!write(pipefd[1], &e, sizeof e);
		_exit(e == ENOENT ? 127 : 126);
	}
	close(pipefd[1]);
	struct sigaction fw = { .sa_handler = forward, .sa_flags = SA_RESTART }, ign = { .sa_handler = SIG_IGN };
	sigemptyset(&fw.sa_mask);
	const int fwd[] = { SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH, SIGALRM };
	for (unsigned i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
		sigaction(fwd[i], &fw, NULL);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGQUIT, &ign, NULL);
	sigaction(SIGTSTP, &ign, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);

	int e = 0;
	if (read(pipefd[0], &e, sizeof e) == (ssize_t)sizeof e)
		fprintf(stderr, "upager-run: cannot run '%s': %s\n", cmd[0], strerror(e));
	close(pipefd[0]);
	int status;
	while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR)
		;
	if (tree[0])
		unlink(tree);
	/* A preloaded program never closes its runtime: what it left on a
	 * Redis store goes now that it is gone. */
	const char *store = getenv("UPAGER_STORE");
	char cerr[512];
	if (store && upager_store_clean(store, cerr, sizeof cerr) < 0)
		fprintf(stderr, "upager-run: cleaning the Redis store up after the program: %s\n", cerr);
	const char *rep = getenv("UPAGER_REPORT");
	if (rep && *rep && strcmp(rep, "0") && tree[0] && area->joined > 1) {
		/* The tree's line: the per-process reports came from each. */
		fprintf(stderr, "upager tree: %u processes shared the %.1f MiB budget; paged memory peaked at "
			"%.1f MiB for the tree as a whole\n",
			area->joined, area->budget / 1048576.0, area->peak / 1048576.0);
	}
	if (WIFSIGNALED(status)) {
		/* End the same way, without a core file of our own. */
		int sig = WTERMSIG(status);
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		signal(sig, SIG_DFL);
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(sig);
		return 128 + sig;
	}
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	struct upg_run_args args;
	char err[768];

	if (upg_run_parse_args(argc, argv, &args, err, sizeof err))
		die("%s", err, NULL);
	if (args.action == UPG_RUN_HELP) {
		usage(stdout);
		return 0;
	}
	if (args.action == UPG_RUN_VERSION) {
		printf("upager-run %s\n", upager_version());
		return 0;
	}
	for (int i = 0; i < UPG_RUN_NSETTINGS; i++)
		if (args.set[i] && setenv(upg_run_env_names[i], args.set[i], 1))
			die("cannot set %s", upg_run_env_names[i], strerror(errno));

	/* Check every setting here, so a mistake is reported once, before the
	 * program starts, with the variable named. */
	struct upager_config cfg;
	upager_config_init(&cfg);
	if (upager_config_from_env(&cfg, err, sizeof err))
		die("%s", err, NULL);
	if (upager_config_validate(&cfg, err, sizeof err))
		die("%s", err, NULL);

	char lib[PATH_MAX];
	if (find_preload(lib, sizeof lib))
		die("cannot find %s", PRELOAD_NAME, "reinstall upager or run upager-run from its build directory");
	const char *old = getenv("LD_PRELOAD");
	char *pre = malloc(strlen(lib) + (old ? strlen(old) : 0) + 2);
	if (!pre)
		die("%s", "out of memory", NULL);
	sprintf(pre, old && *old ? "%s:%s" : "%s", lib, old);
	setenv("LD_PRELOAD", pre, 1);

	/* One budget for the tree, unless this runs inside a tree already
	 * (upager-run under upager-run): then it joins that one. */
	char tree[64] = "";
	const char *outer = getenv("UPAGER_TREE");
	size_t area_len = 0;
	struct upg_domain_area *area = outer && *outer ? upg_domain_map(outer, &area_len) : NULL;
	if (!area) {
		snprintf(tree, sizeof tree, "/dev/shm/upager-tree-%d", (int)getpid());
		unlink(tree);  /* a stale one from a reused pid */
		if (upg_domain_create(tree, cfg.ram_budget, err, sizeof err))
			die("%s", err, "upager-run needs a writable /dev/shm for the tree's shared budget");
		area = upg_domain_map(tree, &area_len);
		if (!area) {
			unlink(tree);
			die("cannot map the tree's budget file %s", tree, NULL);
		}
		setenv("UPAGER_TREE", tree, 1);
	}
	return supervise(argv + args.command, tree, area);
}
