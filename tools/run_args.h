/* SPDX-License-Identifier: MIT */
/*
 * upager-run's command line, kept apart from main() so that the unit test and
 * the fuzzer can call it without exec'ing anything.  Parsing records what was
 * asked and checks the sizes; it neither prints nor touches the environment.
 * main() then puts the settings into the UPAGER_* variables, and the library
 * checks them (upager_config_from_env, upager_config_validate) the same way
 * the preload library will.
 */
#ifndef UPG_RUN_ARGS_H
#define UPG_RUN_ARGS_H

#include <stddef.h>

enum upg_run_action {
	UPG_RUN_EXEC,    /* run argv[command] */
	UPG_RUN_HELP,    /* -h, --help */
	UPG_RUN_VERSION, /* -V, --version */
};

/* One per UPAGER_* variable that an option sets; the order of
 * upg_run_env_names[]. */
enum upg_run_setting {
	UPG_RUN_RAM,
	UPG_RUN_STORE,
	UPG_RUN_STORE_MAX,
	UPG_RUN_PAGE,
	UPG_RUN_POLICY,
	UPG_RUN_HANDLERS,
	UPG_RUN_LOG,
	UPG_RUN_REPORT,
	UPG_RUN_NSETTINGS,
};

extern const char *const upg_run_env_names[UPG_RUN_NSETTINGS];

struct upg_run_args {
	enum upg_run_action action;
	/* The value for each variable, or NULL when no option set it; each
	 * points into argv or at a string literal.  The last option wins. */
	const char *set[UPG_RUN_NSETTINGS];
	int command; /* UPG_RUN_EXEC: argv[command] is the program, command < argc */
};

/*
 * Parse argv (argc >= 1, argv[argc] == NULL).  Returns 0 and fills *out, or
 * -EINVAL with a one-line message in err (when errlen > 0) that names the
 * option and what it expects; *out is then untouched.  Uses getopt_long, so
 * it is not thread-safe; it resets getopt's state itself and may be called
 * again.
 */
int upg_run_parse_args(int argc, char **argv, struct upg_run_args *out, char *err, size_t errlen);

#endif
