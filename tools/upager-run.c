/* SPDX-License-Identifier: MIT */
/*
 * upager-run: start any program with its heap paged by upager under a RAM
 * cap.  It checks the settings, puts them in the environment with
 * LD_PRELOAD=libupager-preload.so, and execs the program, so the exit status
 * (or the signal) is the program's own.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		"                    or as JSON with --report=json or --report=json:PATH\n"
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

	execvp(argv[args.command], &argv[args.command]);
	int e = errno;
	fprintf(stderr, "upager-run: cannot run '%s': %s\n", argv[args.command], strerror(e));
	return e == ENOENT ? 127 : 126;
}
