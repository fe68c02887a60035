/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: upager-run's command line (tools/run_args.c), then the
 * settings it produced through upager_config_from_env() and
 * upager_config_validate(), as upager-run's main() does, without exec.
 *
 * The input is the argument list, arguments separated by NUL bytes; argv[0]
 * is "upager-run".  Each argument is its own allocation, so reading past one
 * is caught by AddressSanitizer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_args.h"
#include "upager.h"

extern char **environ;

#define MAX_ARGS 64

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_run_args: %s: ", #cond);         \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

static bool inside(const char *p, char *const *argv, int argc)
{
	for (int i = 0; i < argc; i++)
		if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
			return true;
	return false;
}

static void check_settings(const struct upg_run_args *a, int argc, char **argv)
{
	char *env[UPG_RUN_NSETTINGS + 1], err[768];
	struct upager_config cfg;
	char **saved = environ;
	size_t n = 0;
	int rc;

	for (int i = 0; i < UPG_RUN_NSETTINGS; i++) {
		const char *v = a->set[i];

		if (!v)
			continue;
		CHECK(inside(v, argv, argc) || !strcmp(v, "stderr") || !strcmp(v, "json:stderr"),
		      "setting %d points outside argv", i);
		if (i == UPG_RUN_RAM || i == UPG_RUN_STORE_MAX || i == UPG_RUN_PAGE) {
			uint64_t bytes;
			CHECK(upager_parse_size(v, &bytes) == 0, "%s=%s was accepted", upg_run_env_names[i], v);
		}
		env[n] = malloc(strlen(upg_run_env_names[i]) + strlen(v) + 2);
		if (!env[n])
			goto out;
		sprintf(env[n], "%s=%s", upg_run_env_names[i], v);
		n++;
	}
	env[n] = NULL;

	/* What main() checks before it execs. */
	environ = env;
	upager_config_init(&cfg);
	rc = upager_config_from_env(&cfg, err, sizeof err);
	environ = saved;
	CHECK(rc == 0 || rc == -EINVAL, "from_env returned %d", rc);
	if (rc == 0) {
		rc = upager_config_validate(&cfg, err, sizeof err);
		CHECK(rc == 0 || rc == -EINVAL, "validate returned %d", rc);
	}
	CHECK(rc == 0 || err[0], "an error with no message");
out:
	while (n)
		free(env[--n]);
}

static bool same(const struct upg_run_args *a, const struct upg_run_args *b)
{
	if (a->action != b->action || (a->action == UPG_RUN_EXEC && a->command != b->command))
		return false;
	for (int i = 0; i < UPG_RUN_NSETTINGS; i++)
		if (a->action == UPG_RUN_EXEC && a->set[i] != b->set[i])
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	size_t at = 0;
	struct upg_run_args a, b;
	char err[256];
	int rc;

	argv[argc++] = strdup("upager-run");
	while (at < size && argc < MAX_ARGS) {
		const uint8_t *z = memchr(data + at, 0, size - at);
		size_t len = z ? (size_t)(z - (data + at)) : size - at;

		argv[argc] = malloc(len + 1);
		if (!argv[argc])
			break;
		memcpy(argv[argc], data + at, len);
		argv[argc][len] = '\0';
		argc++;
		at += len + 1;
	}
	argv[argc] = NULL;

	memset(&a, 0x5a, sizeof a);
	memset(err, 0, sizeof err);
	rc = upg_run_parse_args(argc, argv, &a, err, sizeof err);
	CHECK(rc == 0 || rc == -EINVAL, "parse returned %d", rc);
	if (rc) {
		CHECK(err[0] && !strchr(err, '\n'), "a refusal without a one-line message: '%s'", err);
		memset(&b, 0x5a, sizeof b);
		CHECK(!memcmp(&a, &b, sizeof a), "a refused parse wrote its output");
	} else if (a.action == UPG_RUN_EXEC) {
		CHECK(a.command >= 1 && a.command < argc, "command index %d of %d", a.command, argc);
		check_settings(&a, argc, argv);
	} else {
		CHECK(a.action == UPG_RUN_HELP || a.action == UPG_RUN_VERSION, "action %d", (int)a.action);
	}

	/* A second parse of the same arguments gives the same answer: no
	 * state is left behind in getopt. */
	memset(&b, 0x5a, sizeof b);
	CHECK(upg_run_parse_args(argc, argv, &b, NULL, 0) == rc, "a second parse disagrees");
	if (!rc)
		CHECK(same(&a, &b), "a second parse gives other settings");

	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return 0;
}
