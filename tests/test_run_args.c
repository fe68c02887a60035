/* SPDX-License-Identifier: MIT */
/*
 * upager-run's command line (tools/run_args.c): what each option sets, where
 * the command starts, and the message for each mistake.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run_args.h"

#define MAX_ARGV 12

struct args_case {
	const char *argv[MAX_ARGV]; /* after "upager-run", NULL-terminated */
	int rc;
	enum upg_run_action action;
	int command;                /* UPG_RUN_EXEC: index of the program */
	const char *set[UPG_RUN_NSETTINGS];
	const char *says;           /* rc != 0: part of the message */
};

static const struct args_case cases[] = {
	{ { "prog", NULL }, 0, UPG_RUN_EXEC, 1, { NULL }, NULL },
	{ { "--ram", "256M", "--", "prog", "-x", NULL }, 0, UPG_RUN_EXEC, 4, { [UPG_RUN_RAM] = "256M" }, NULL },
	/* Options stop at the command; later ones are the command's. */
	{ { "--ram=1G", "prog", "--ram", "2G", NULL }, 0, UPG_RUN_EXEC, 2, { [UPG_RUN_RAM] = "1G" }, NULL },
	/* The last one wins. */
	{ { "--ram", "1G", "--ram", "2G", "prog", NULL }, 0, UPG_RUN_EXEC, 5, { [UPG_RUN_RAM] = "2G" }, NULL },
	{ { "--store", "/var/tmp", "--store-max", "16G", "--page", "64K", "--policy", "fifo", NULL },
	  -EINVAL, 0, 0, { NULL }, "no command given" },
	{ { "--store", "/var/tmp", "--store-max", "16G", "--page", "64K", "--policy", "fifo", "p", NULL },
	  0, UPG_RUN_EXEC, 9,
	  { [UPG_RUN_STORE] = "/var/tmp", [UPG_RUN_STORE_MAX] = "16G", [UPG_RUN_PAGE] = "64K",
	    [UPG_RUN_POLICY] = "fifo" }, NULL },
	{ { "--handlers=4", "--log", "debug", "p", NULL }, 0, UPG_RUN_EXEC, 4,
	  { [UPG_RUN_HANDLERS] = "4", [UPG_RUN_LOG] = "debug" }, NULL },
	/* Unique prefixes of long options are accepted. */
	{ { "--pol", "clock", "p", NULL }, 0, UPG_RUN_EXEC, 3, { [UPG_RUN_POLICY] = "clock" }, NULL },
	{ { "--report", "p", NULL }, 0, UPG_RUN_EXEC, 2, { [UPG_RUN_REPORT] = "stderr" }, NULL },
	{ { "--report=json", "p", NULL }, 0, UPG_RUN_EXEC, 2, { [UPG_RUN_REPORT] = "json:stderr" }, NULL },
	{ { "--report=json:/tmp/r.json", "p", NULL }, 0, UPG_RUN_EXEC, 2,
	  { [UPG_RUN_REPORT] = "json:/tmp/r.json" }, NULL },
	{ { "--report=/tmp/r.txt", "p", NULL }, 0, UPG_RUN_EXEC, 2, { [UPG_RUN_REPORT] = "/tmp/r.txt" }, NULL },
	/* Ranges and powers of two are the library's to check, later. */
	{ { "--page", "3000", "p", NULL }, 0, UPG_RUN_EXEC, 3, { [UPG_RUN_PAGE] = "3000" }, NULL },
	{ { "-h", NULL }, 0, UPG_RUN_HELP, 0, { NULL }, NULL },
	{ { "--help", "--ram", "12Q", NULL }, 0, UPG_RUN_HELP, 0, { NULL }, NULL },
	{ { "-V", NULL }, 0, UPG_RUN_VERSION, 0, { NULL }, NULL },
	{ { "--version", "p", NULL }, 0, UPG_RUN_VERSION, 0, { NULL }, NULL },
	/* Mistakes. */
	{ { NULL }, -EINVAL, 0, 0, { NULL }, "no command given" },
	{ { "--", NULL }, -EINVAL, 0, 0, { NULL }, "no command given" },
	{ { "--ram", "12Q", "p", NULL }, -EINVAL, 0, 0, { NULL }, "--ram=12Q is not a size" },
	{ { "--store-max=-1", "p", NULL }, -EINVAL, 0, 0, { NULL }, "--store-max=-1 is not a size" },
	{ { "--page", "1.G", "p", NULL }, -EINVAL, 0, 0, { NULL }, "--page=1.G is not a size" },
	{ { "--ram", "99999999999999999999999", "p", NULL }, -EINVAL, 0, 0, { NULL }, "is too large" },
	{ { "--ram", NULL }, -EINVAL, 0, 0, { NULL }, "--ram needs a value" },
	{ { "--policy", NULL }, -EINVAL, 0, 0, { NULL }, "--policy needs a value" },
	{ { "--help=x", NULL }, -EINVAL, 0, 0, { NULL }, "--help takes no value" },
	{ { "--version=2", NULL }, -EINVAL, 0, 0, { NULL }, "--version takes no value" },
	{ { "-x", "p", NULL }, -EINVAL, 0, 0, { NULL }, "unknown option '-x'" },
	{ { "-r", "1G", "p", NULL }, -EINVAL, 0, 0, { NULL }, "unknown option '-r'" },
	{ { "--bogus=1", "p", NULL }, -EINVAL, 0, 0, { NULL }, "unknown or ambiguous option '--bogus'" },
	{ { "--st", "x", "p", NULL }, -EINVAL, 0, 0, { NULL }, "unknown or ambiguous option '--st'" },
	{ { "--report=html", "p", NULL }, -EINVAL, 0, 0, { NULL },
	  "--report=html needs a file to write the page to: --report=html:FILE" },
	{ { "--report=html:/tmp/r.html", "p", NULL }, 0, UPG_RUN_EXEC, 2, { [UPG_RUN_REPORT] = "html:/tmp/r.html" }, NULL },
	/* Found by tests/fuzz/fuzz_run_args: control characters reached the
	 * message as they were. */
	{ { "-\n", "p", NULL }, -EINVAL, 0, 0, { NULL }, "unknown option '-\\x0a'" },
	{ { "--report\nx", "p", NULL }, -EINVAL, 0, 0, { NULL }, "unknown or ambiguous option '--report\\x0ax'" },
	{ { "--ram", "1\x1b[2J", "p", NULL }, -EINVAL, 0, 0, { NULL }, "--ram=1\\x1b[2J is not a size" },
	/* A long run of them is cut at 64 characters after escaping. */
	{ { "--ram", "1\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t", "p", NULL }, -EINVAL, 0, 0, { NULL },
	  "--ram=1\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09\\x09... is not a size" },
	{ { "--ram", "1234567890123456789012345678901234567890123456789012345678901234567890", "p", NULL }, -EINVAL,
	  0, 0, { NULL }, "--ram=1234567890123456789012345678901234567890123456789012345678901234... is too large" },
};

#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static int make_argv(const struct args_case *c, char **argv)
{
	int argc = 0;

	argv[argc++] = "upager-run";
	for (int i = 0; c->argv[i]; i++)
		argv[argc++] = (char *)c->argv[i];
	argv[argc] = NULL;
	return argc;
}

static void check_case(int i)
{
	const struct args_case *c = &cases[i];
	char *argv[MAX_ARGV + 2], err[256];
	struct upg_run_args a, before;
	int argc = make_argv(c, argv), rc;

	memset(&a, 0x5a, sizeof a);
	before = a;
	err[0] = '\0';
	rc = upg_run_parse_args(argc, argv, &a, err, sizeof err);
	ck_assert_msg(rc == c->rc, "case %d: rc %d, want %d (%s)", i, rc, c->rc, err);
	if (rc) {
		ck_assert_msg(strstr(err, c->says), "case %d: message '%s' lacks '%s'", i, err, c->says);
		for (const char *p = err; *p; p++)
			ck_assert_msg((unsigned char)*p >= 0x20 && *p != 0x7f,
				      "case %d: message '%s' holds control character 0x%02x", i, err, *p);
		ck_assert_msg(!memcmp(&a, &before, sizeof a), "case %d: a refused parse wrote its output", i);
		return;
	}
	ck_assert_int_eq(a.action, c->action);
	if (a.action != UPG_RUN_EXEC)
		return;
	ck_assert_msg(a.command == c->command, "case %d: command at %d, want %d", i, a.command, c->command);
	for (int k = 0; k < UPG_RUN_NSETTINGS; k++) {
		if (!c->set[k])
			ck_assert_msg(!a.set[k], "case %d: %s set to '%s'", i, upg_run_env_names[k], a.set[k]);
		else
			ck_assert_msg(a.set[k] && !strcmp(a.set[k], c->set[k]), "case %d: %s is '%s', want '%s'",
				      i, upg_run_env_names[k], a.set[k] ? a.set[k] : "(unset)", c->set[k]);
	}
}

START_TEST(test_args_table)
{
	check_case(_i);
}
END_TEST

/* getopt keeps state between calls; the parser must reset it, so every case
 * gives the same answer when run after all the others in one process. */
START_TEST(test_args_again)
{
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < NCASES; i++)
			check_case(i);
}
END_TEST

START_TEST(test_args_small_buffer)
{
	char *argv[] = { "upager-run", "--ram", "12Q", "p", NULL };
	struct upg_run_args a;
	char small[8];

	memset(small, 'x', sizeof small);
	ck_assert_int_eq(upg_run_parse_args(4, argv, &a, small, sizeof small), -EINVAL);
	ck_assert_str_eq(small, "--ram=1");
	ck_assert_int_eq(upg_run_parse_args(4, argv, &a, NULL, 0), -EINVAL);
}
END_TEST

static Suite *run_args_suite(void)
{
	Suite *s = suite_create("run_args");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_args_table, 0, NCASES);
	tcase_add_test(tc, test_args_again);
	tcase_add_test(tc, test_args_small_buffer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(run_args_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
