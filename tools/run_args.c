/* SPDX-License-Identifier: MIT */
/* upager-run's command line: see run_args.h. */
#include "run_args.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "echo.h"
#include "upager.h"

const char *const upg_run_env_names[UPG_RUN_NSETTINGS] = {
	[UPG_RUN_RAM] = "UPAGER_RAM",
	[UPG_RUN_STORE] = "UPAGER_STORE",
	[UPG_RUN_STORE_MAX] = "UPAGER_STORE_MAX",
	[UPG_RUN_PAGE] = "UPAGER_PAGE",
	[UPG_RUN_POLICY] = "UPAGER_POLICY",
	[UPG_RUN_HANDLERS] = "UPAGER_HANDLERS",
	[UPG_RUN_LOG] = "UPAGER_LOG",
	[UPG_RUN_REPORT] = "UPAGER_REPORT",
};

/*
 * getopt_long values.  Long-only options get values above any character, and
 * --help and --version their own, so that after an error optopt alone tells
 * an unknown short option (a character), a long option that was given a
 * value it does not take (LONG_HELP, LONG_VERSION), a long option missing
 * its value (a setting), and an unknown long option (0) apart.
 */
enum {
	LONG_BASE = 0x100,
	LONG_HELP = LONG_BASE + UPG_RUN_NSETTINGS,
	LONG_VERSION,
};

static const struct option long_opts[] = {
	{ "ram", required_argument, 0, LONG_BASE + UPG_RUN_RAM },
	{ "store", required_argument, 0, LONG_BASE + UPG_RUN_STORE },
	{ "store-max", required_argument, 0, LONG_BASE + UPG_RUN_STORE_MAX },
	{ "page", required_argument, 0, LONG_BASE + UPG_RUN_PAGE },
	{ "policy", required_argument, 0, LONG_BASE + UPG_RUN_POLICY },
	{ "handlers", required_argument, 0, LONG_BASE + UPG_RUN_HANDLERS },
	{ "log", required_argument, 0, LONG_BASE + UPG_RUN_LOG },
	{ "report", optional_argument, 0, LONG_BASE + UPG_RUN_REPORT },
	{ "help", no_argument, 0, LONG_HELP },
	{ "version", no_argument, 0, LONG_VERSION },
	{ 0, 0, 0, 0 },
};

__attribute__((format(printf, 3, 4)))
static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *long_name(int val)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

static int check_size(const char *opt, const char *v, char *err, size_t errlen)
{
	char shown[UPG_ECHO_BUFLEN];
	uint64_t n;
	int rc = upager_parse_size(v, &n);

	if (rc == -ERANGE)
		say(err, errlen, "--%s=%s is too large: it does not fit in 64 bits", opt,
		    upg_echo(v, SIZE_MAX, shown));
	else if (rc)
		say(err, errlen, "--%s=%s is not a size: expected a number with an optional "
		    "K, M, G or T suffix, such as 256M or 2G", opt, upg_echo(v, SIZE_MAX, shown));
	return rc ? -EINVAL : 0;
}

/* After getopt_long returned '?' or ':'. */
static void explain(int c, int argc, char **argv, char *err, size_t errlen)
{
	char shown[UPG_ECHO_BUFLEN];

	if (c == ':') {
		say(err, errlen, "--%s needs a value", long_name(optopt));
	} else if (optopt == LONG_HELP || optopt == LONG_VERSION) {
		say(err, errlen, "--%s takes no value", long_name(optopt));
	} else if (optopt > 0 && optopt < LONG_BASE) {
		char ch = (char)optopt;
		say(err, errlen, "unknown option '-%s'", upg_echo(&ch, 1, shown));
	} else if (optind >= 2 && optind <= argc) {
		/* An unknown or ambiguous long option: getopt has moved past it. */
		const char *a = argv[optind - 1];
		say(err, errlen, "unknown or ambiguous option '%s'", upg_echo(a, strcspn(a, "="), shown));
	} else {
		say(err, errlen, "unknown option");
	}
}

int upg_run_parse_args(int argc, char **argv, struct upg_run_args *out, char *err, size_t errlen)
{
	struct upg_run_args a;
	int c;

	memset(&a, 0, sizeof a);
	a.action = UPG_RUN_EXEC;
	/* 0 makes glibc's getopt start afresh, so the parser can run again.
	 * '+': stop at the first non-option, the command; ':': report a
	 * missing value as ':'.  Messages are ours, not getopt's. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hV", long_opts, NULL)) != -1) {
		int k = c - LONG_BASE;

		switch (c) {
		case 'h':
		case LONG_HELP:
			a.action = UPG_RUN_HELP;
			*out = a;
			return 0;
		case 'V':
		case LONG_VERSION:
			a.action = UPG_RUN_VERSION;
			*out = a;
			return 0;
		case LONG_BASE + UPG_RUN_RAM:
		case LONG_BASE + UPG_RUN_STORE_MAX:
		case LONG_BASE + UPG_RUN_PAGE:
			if (check_size(long_name(c), optarg, err, errlen))
				return -EINVAL;
			a.set[k] = optarg;
			break;
		case LONG_BASE + UPG_RUN_STORE:
		case LONG_BASE + UPG_RUN_POLICY:
		case LONG_BASE + UPG_RUN_HANDLERS:
		case LONG_BASE + UPG_RUN_LOG:
			a.set[k] = optarg;
			break;
		case LONG_BASE + UPG_RUN_REPORT:
			if (!optarg || !strcmp(optarg, "stderr"))
				a.set[k] = "stderr";
			else if (!strcmp(optarg, "json"))
				a.set[k] = "json:stderr";
			else if (!strcmp(optarg, "html") || !strcmp(optarg, "html:")) {
				say(err, errlen, "--report=html needs a file to write the page to: --report=html:FILE");
				return -EINVAL;
			} else
				a.set[k] = optarg;
			break;
		default:
			explain(c, argc, argv, err, errlen);
			return -EINVAL;
		}
	}
	if (optind >= argc) {
		say(err, errlen, "no command given: put the program to run after the options, "
		    "e.g. upager-run --ram 256M -- ./prog");
		return -EINVAL;
	}
	a.command = optind;
	*out = a;
	return 0;
}
