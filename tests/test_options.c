/* SPDX-License-Identifier: MIT */
/*
 * White-box tests of src/options.c: size parsing and printing, the UPAGER_*
 * table, the environment, and whole-config validation.
 *
 * Decisions pinned here (see upager_parse_size() in src/options.c):
 *   - "0" is a valid size; upg_config_check() refuses a zero budget.
 *   - A point needs digits on both sides: "1.G" and ".5G" are invalid.
 *   - "MB" means MiB; "iB" needs a unit ("1iB" is invalid); "512B" is 512.
 *   - Fractions are exact then truncated to whole bytes: "1.5" is 1.
 *   - No spaces, signs, hex or exponents anywhere.
 *   - Malformed text is -EINVAL even when its digits overflow; only
 *     well-formed sizes above 2^64 - 1 are -ERANGE.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "options.h"
#include "policy.h"
#include "upager.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

#define SENTINEL UINT64_C(0xdeadbeefcafef00d)

/* Every test starts and ends with no UPAGER_* variable set, even when Check
 * runs without fork. */
static void clear_env(void)
{
	for (size_t i = 0; i < upg_options_count; i++)
		unsetenv(upg_options[i].env);
}

/* ---- upager_parse_size ------------------------------------------------ */

struct size_case {
	const char *text;
	int rc;
	uint64_t value; /* when rc == 0 */
};

static const struct size_case size_cases[] = {
	/* valid */
	{ "0", 0, 0 },
	{ "1", 0, 1 },
	{ "4096", 0, 4096 },
	{ "00012K", 0, 12 * KIB },
	{ "4k", 0, 4 * KIB },
	{ "4K", 0, 4 * KIB },
	{ "4KB", 0, 4 * KIB },
	{ "4kib", 0, 4 * KIB },
	{ "256M", 0, 256 * MIB },
	{ "256MiB", 0, 256 * MIB },
	{ "256mb", 0, 256 * MIB },
	{ "2g", 0, 2 * GIB },
	{ "1.5G", 0, GIB + GIB / 2 },
	{ "1T", 0, TIB },
	{ "1.5K", 0, 1536 },
	{ "1.125K", 0, 1152 },
	{ "0.5K", 0, 512 },
	{ "1.0001K", 0, 1024 },          /* 1024.1024 truncates */
	{ "0.0009765625K", 0, 1 },       /* exactly 1 byte */
	{ "0.0009765624K", 0, 0 },       /* just under: truncates to 0 */
	{ "512B", 0, 512 },
	{ "1.5", 0, 1 },                 /* fractional bytes truncate */
	{ "1.5b", 0, 1 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "16777215T", 0, UINT64_MAX - TIB + 1 },
	{ "16777215.999999999999T", 0, UINT64_MAX - 1 },
	/* 28 nines: the fraction is 2^40 - 1 bytes exactly, filling 64 bits */
	{ "16777215.9999999999999999999999999999T", 0, UINT64_MAX },
	{ "15.99999999999999999999T", 0, 16 * TIB - 1 },
	/* too large */
	{ "16777216T", -ERANGE, 0 },
	{ "17179869184G", -ERANGE, 0 },
	{ "18446744073709551616", -ERANGE, 0 },
	{ "99999999999999999999999", -ERANGE, 0 },
	{ "16777216.5T", -ERANGE, 0 },
	/* malformed */
	{ "", -EINVAL, 0 },
	{ "abc", -EINVAL, 0 },
	{ "12Q", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ " 1G", -EINVAL, 0 },
	{ "1G ", -EINVAL, 0 },
	{ "1 G", -EINVAL, 0 },
	{ "1\tG", -EINVAL, 0 },
	{ "1G\n", -EINVAL, 0 },
	{ "1..5G", -EINVAL, 0 },
	{ "1.G", -EINVAL, 0 },
	{ ".5G", -EINVAL, 0 },
	{ "1.5.G", -EINVAL, 0 },
	{ "1,5G", -EINVAL, 0 },
	{ "0x10", -EINVAL, 0 },
	{ "1e3", -EINVAL, 0 },
	{ "1KK", -EINVAL, 0 },
	{ "1Ki", -EINVAL, 0 },
	{ "1iB", -EINVAL, 0 },
	{ "1KiBB", -EINVAL, 0 },
	{ "1BB", -EINVAL, 0 },
	{ "1P", -EINVAL, 0 },
	{ "G", -EINVAL, 0 },
	{ "KiB", -EINVAL, 0 },
	{ "99999999999999999999Q", -EINVAL, 0 },
};

START_TEST(test_parse_size_table)
{
	const struct size_case *c = &size_cases[_i];
	uint64_t v = SENTINEL;
	int rc = upager_parse_size(c->text, &v);

	ck_assert_msg(rc == c->rc, "parse \"%s\": rc %d, want %d", c->text, rc, c->rc);
	if (c->rc == 0)
		ck_assert_msg(v == c->value, "parse \"%s\": %" PRIu64 ", want %" PRIu64,
			      c->text, v, c->value);
	else
		ck_assert_msg(v == SENTINEL, "parse \"%s\" failed but wrote its output", c->text);
}
END_TEST

START_TEST(test_parse_size_null)
{
	uint64_t v = SENTINEL;

	ck_assert_int_eq(upager_parse_size(NULL, &v), -EINVAL);
	ck_assert(v == SENTINEL);
	ck_assert_int_eq(upager_parse_size("4K", NULL), -EINVAL);
}
END_TEST

/* ---- upg_format_size -------------------------------------------------- */

struct format_case {
	uint64_t bytes;
	const char *text;
};

static const struct format_case format_cases[] = {
	{ 0, "0" },
	{ 1, "1" },
	{ 1000, "1000" },
	{ 1023, "1023" },
	{ 1024, "1K" },
	{ 1536, "1.5K" },
	{ 1152, "1.125K" },
	{ 4096, "4K" },
	{ 4097, "4097" },
	{ 256 * MIB, "256M" },
	{ GIB + GIB / 2, "1.5G" },
	{ GIB + 1, "1073741825" },
	{ TIB, "1T" },
	{ TIB + TIB / 4, "1.25T" },
	{ 64 * GIB, "64G" },
	{ UINT64_MAX - TIB + 1, "16777215T" },
	{ UINT64_MAX, "18446744073709551615" },
};

START_TEST(test_format_size_table)
{
	const struct format_case *c = &format_cases[_i];
	char buf[UPG_SIZE_BUFLEN];

	ck_assert_int_eq(upg_format_size(c->bytes, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, c->text);
}
END_TEST

START_TEST(test_format_size_round_trip)
{
	uint64_t seed = 42;

	for (int i = 0; i < 20000; i++) {
		uint64_t r = upg_t_rand(&seed), x;
		char buf[UPG_SIZE_BUFLEN];
		uint64_t back = SENTINEL;

		/* Mix shapes: random, multiples of units, and a few set bits
		 * under a unit so that short decimal forms come up. */
		switch (i % 4) {
		case 0: x = r; break;
		case 1: x = (r >> 24) << (10 * (1 + r % 4)); break;
		case 2: x = (r % 100000) * (UINT64_C(128) << (r % 31)); break;
		default: x = r >> (r % 64); break;
		}
		ck_assert_int_eq(upg_format_size(x, buf, sizeof buf), 0);
		ck_assert_msg(upager_parse_size(buf, &back) == 0, "\"%s\" does not parse", buf);
		ck_assert_msg(back == x, "%" PRIu64 " -> \"%s\" -> %" PRIu64, x, buf, back);
	}
}
END_TEST

START_TEST(test_format_size_small_buffer)
{
	char buf[8];

	memset(buf, 'x', sizeof buf);
	ck_assert_int_eq(upg_format_size(1536, buf, 4), -ENOSPC); /* "1.5K" needs 5 */
	ck_assert(buf[0] == 'x' && buf[4] == 'x');
	ck_assert_int_eq(upg_format_size(1536, buf, 0), -ENOSPC);
	ck_assert_int_eq(upg_format_size(1536, buf, 5), 0);
	ck_assert_str_eq(buf, "1.5K");
	ck_assert_int_eq(upg_format_size(1, NULL, 8), -EINVAL);
}
END_TEST

/* ---- defaults and the table ------------------------------------------- */

START_TEST(test_config_init_defaults)
{
	struct upager_config cfg;
	char err[256] = "untouched";

	memset(&cfg, 0xa5, sizeof cfg);
	upager_config_init(&cfg);
	ck_assert_uint_eq(cfg.size, sizeof cfg);
	ck_assert_uint_eq(cfg.page_size, 4096);
	ck_assert(cfg.ram_budget == 256 * MIB);
	ck_assert_ptr_null(cfg.store_path);
	ck_assert(cfg.store_max == 0);
	ck_assert_str_eq(cfg.policy, "s3fifo");
	ck_assert_uint_eq(cfg.handler_threads, 1);
	ck_assert_uint_eq(cfg.fault_around, 16);
	ck_assert_uint_eq(cfg.readahead_max, 256);
	ck_assert_uint_eq(cfg.io_depth, 64);
	ck_assert_int_eq(cfg.log_level, UPAGER_LOG_WARN);
	ck_assert_ptr_null(cfg.log);
	ck_assert_ptr_null(cfg.log_arg);
	ck_assert_uint_eq(cfg.poll_us, 0);
	ck_assert_str_eq(cfg.compress, "lz4");
	ck_assert_uint_eq(cfg.compress_pool, 50);
	ck_assert_uint_eq(cfg.file_dirty_age, 30);

	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), 0);
	ck_assert_str_eq(err, "untouched");
	upager_config_init(NULL); /* must not crash */
}
END_TEST

struct field {
	const char *name;
	size_t offset, size;
};

#define F(f) { #f, offsetof(struct upager_config, f), sizeof(((struct upager_config *)0)->f) }
/* Every field a user may set; size, log and log_arg are API-only. */
static const struct field settable[] = {
	F(page_size), F(ram_budget), F(store_path), F(store_max), F(policy),
	F(handler_threads), F(fault_around), F(readahead_max), F(io_depth), F(log_level), F(encrypt),
	F(poll_us), F(compress), F(compress_pool), F(file_dirty_age),
};
#undef F

static const struct field *field_at(size_t offset)
{
	for (size_t i = 0; i < sizeof settable / sizeof settable[0]; i++)
		if (settable[i].offset == offset)
			return &settable[i];
	return NULL;
}

static uint64_t read_number(const struct upager_config *cfg, const struct field *f)
{
	uint32_t v32;
	uint64_t v64;

	if (f->size == 4) {
		memcpy(&v32, (const char *)cfg + f->offset, 4);
		return v32;
	}
	memcpy(&v64, (const char *)cfg + f->offset, 8);
	return v64;
}

START_TEST(test_table_rows)
{
	struct upager_config def;

	upager_config_init(&def);
	ck_assert_uint_gt(upg_options_count, 0);
	for (size_t i = 0; i < upg_options_count; i++) {
		const struct upg_option *o = &upg_options[i];

		ck_assert_ptr_nonnull(o->env);
		ck_assert_msg(strncmp(o->env, "UPAGER_", 7) == 0 && o->env[7] != '\0',
			      "row %zu: \"%s\" is not a UPAGER_ name", i, o->env);
		ck_assert_msg(o->help && o->help[0], "%s has no help", o->env);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(o->env, upg_options[j].env) != 0,
				      "%s appears twice", o->env);
		ck_assert_msg(o->min <= o->max || (o->min == 0 && o->max == 0),
			      "%s: min above max", o->env);

		if (o->offset == (size_t)-1) {
			/* Preload-only rows hold free text. */
			ck_assert_msg(o->kind == UPG_OPT_STRING, "%s has no field", o->env);
			continue;
		}
		const struct field *f = field_at(o->offset);
		ck_assert_msg(f != NULL, "%s: offset %zu is not a settable field", o->env, o->offset);
		switch (o->kind) {
		case UPG_OPT_SIZE:
		case UPG_OPT_UINT:
			/* options.c stores 32 bits exactly when max fits in 32 bits. */
			ck_assert_msg((o->max <= UINT32_MAX) == (f->size == 4),
				      "%s: max %" PRIu64 " does not match %s (%zu bytes)",
				      o->env, o->max, f->name, f->size);
			uint64_t d = read_number(&def, f);
			ck_assert_msg(d >= o->min && d <= o->max,
				      "%s: default %" PRIu64 " outside its limits", o->env, d);
			break;
		case UPG_OPT_STRING:
		case UPG_OPT_CHOICE:
			ck_assert_uint_eq(f->size, sizeof(const char *));
			break;
		case UPG_OPT_LOGLEVEL:
			ck_assert_uint_eq(f->size, sizeof(int));
			ck_assert(o->min == UPAGER_LOG_ERROR && o->max == UPAGER_LOG_DEBUG);
			break;
		}
		if (o->kind == UPG_OPT_UINT) {
			/* The help is what users read; it must state the real range. */
			char range[64];
			snprintf(range, sizeof range, "from %" PRIu64 " to %" PRIu64, o->min, o->max);
			ck_assert_msg(strstr(o->help, range), "%s: help \"%s\" lacks \"%s\"",
				      o->env, o->help, range);
		}
	}

	/* Each settable field has exactly one variable. */
	for (size_t k = 0; k < sizeof settable / sizeof settable[0]; k++) {
		int rows = 0;
		for (size_t i = 0; i < upg_options_count; i++)
			rows += upg_options[i].offset == settable[k].offset;
		ck_assert_msg(rows == 1, "field %s has %d variables", settable[k].name, rows);
	}
}
END_TEST

/* ---- upager_config_from_env ------------------------------------------- */

START_TEST(test_env_unset_keeps_config)
{
	struct upager_config cfg, before;
	char err[256] = "untouched";

	upager_config_init(&cfg);
	cfg.ram_budget = 3 * GIB; /* not a default: from_env must not reset it */
	before = cfg;
	ck_assert_int_eq(upager_config_from_env(&cfg, err, sizeof err), 0);
	ck_assert(memcmp(&cfg, &before, sizeof cfg) == 0);
	ck_assert_str_eq(err, "untouched");
}
END_TEST

START_TEST(test_env_good_values)
{
	struct upager_config cfg;
	char err[256];

	setenv("UPAGER_RAM", "1.5G", 1);
	setenv("UPAGER_STORE", "/var/tmp", 1);
	setenv("UPAGER_STORE_MAX", "2T", 1);
	setenv("UPAGER_PAGE", "64KiB", 1);
	setenv("UPAGER_POLICY", "clock", 1);
	setenv("UPAGER_HANDLERS", "4", 1);
	setenv("UPAGER_FAULT_AROUND", "32", 1);
	setenv("UPAGER_READAHEAD", "1024", 1);
	setenv("UPAGER_IO_DEPTH", "128", 1);
	setenv("UPAGER_LOG", "DEBUG", 1);
	setenv("UPAGER_REPORT", "json:/tmp/report.json", 1);

	upager_config_init(&cfg);
	ck_assert_int_eq(upager_config_from_env(&cfg, err, sizeof err), 0);
	ck_assert(cfg.ram_budget == GIB + GIB / 2);
	ck_assert_str_eq(cfg.store_path, "/var/tmp");
	ck_assert(cfg.store_max == 2 * TIB);
	ck_assert_uint_eq(cfg.page_size, 64 * KIB);
	ck_assert_str_eq(cfg.policy, "clock");
	ck_assert_uint_eq(cfg.handler_threads, 4);
	ck_assert_uint_eq(cfg.fault_around, 32);
	ck_assert_uint_eq(cfg.readahead_max, 1024);
	ck_assert_uint_eq(cfg.io_depth, 128);
	ck_assert_int_eq(cfg.log_level, UPAGER_LOG_DEBUG);
	ck_assert_uint_eq(cfg.size, sizeof cfg);
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), 0);
}
END_TEST

START_TEST(test_env_log_levels)
{
	static const struct { const char *text; int level; } cases[] = {
		{ "error", UPAGER_LOG_ERROR }, { "Warn", UPAGER_LOG_WARN },
		{ "INFO", UPAGER_LOG_INFO }, { "debug", UPAGER_LOG_DEBUG },
		{ "0", 0 }, { "1", 1 }, { "2", 2 }, { "3", 3 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct upager_config cfg;

		setenv("UPAGER_LOG", cases[i].text, 1);
		upager_config_init(&cfg);
		cfg.log_level = -7;
		ck_assert_int_eq(upager_config_from_env(&cfg, NULL, 0), 0);
		ck_assert_msg(cfg.log_level == cases[i].level, "UPAGER_LOG=%s gave %d",
			      cases[i].text, cfg.log_level);
	}
}
END_TEST

struct bad_env {
	const char *env, *value;
	const char *says; /* a part of the message; the variable is always checked */
};

static const struct bad_env bad_envs[] = {
	{ "UPAGER_RAM", "12Q", "UPAGER_RAM=12Q is not valid: expected a size such as 512M or 2G" },
	{ "UPAGER_RAM", "", "UPAGER_RAM is set but empty" },
	{ "UPAGER_RAM", " 1G", "is not valid" },
	{ "UPAGER_RAM", "0", "UPAGER_RAM=0 is too small" },
	{ "UPAGER_RAM", "16777216T", "too large" },
	{ "UPAGER_STORE", "", "UPAGER_STORE is set but empty" },
	{ "UPAGER_STORE_MAX", "lots", "UPAGER_STORE_MAX=lots is not valid" },
	{ "UPAGER_PAGE", "2K", "at least 4K" },
	{ "UPAGER_PAGE", "4M", "at most 2M" },
	{ "UPAGER_PAGE", "4.5", "too small" },
	{ "UPAGER_POLICY", "lru", "UPAGER_POLICY=lru is not valid: expected one of" },
	{ "UPAGER_POLICY", "", "empty" },
	{ "UPAGER_HANDLERS", "0", "at least 1" },
	{ "UPAGER_HANDLERS", "17", "at most 16" },
	{ "UPAGER_HANDLERS", "4K", "is not valid" },
	{ "UPAGER_HANDLERS", "-1", "is not valid" },
	{ "UPAGER_HANDLERS", "99999999999999999999999", "too large" },
	{ "UPAGER_FAULT_AROUND", "513", "at most 512" },
	{ "UPAGER_READAHEAD", "0", "at least 1" },
	{ "UPAGER_IO_DEPTH", "1025", "at most 1024" },
	{ "UPAGER_LOG", "verbose", "UPAGER_LOG=verbose is not valid: expected a log level" },
	{ "UPAGER_LOG", "4", "is not valid" },
	{ "UPAGER_LOG", "-1", "is not valid" },
	/* Found by tests/fuzz/fuzz_options: control characters were echoed
	 * as they are, breaking the one-line message. */
	{ "UPAGER_RAM", "1\nG", "UPAGER_RAM=1\\x0aG is not valid" },
	{ "UPAGER_POLICY", "lru\x1b[31m", "UPAGER_POLICY=lru\\x1b[31m is not valid" },
	{ "UPAGER_HANDLERS", "\t4\x7f", "UPAGER_HANDLERS=\\x094\\x7f is not valid" },
	{ "UPAGER_PAGE", "4\r", "UPAGER_PAGE=4\\x0d is not valid" },
};

START_TEST(test_env_bad_value)
{
	const struct bad_env *c = &bad_envs[_i];
	struct upager_config cfg, before;
	char err[512] = "";

	/* A good variable on each side of the bad one in table order: neither
	 * may reach cfg. */
	setenv("UPAGER_RAM", "1G", 1);
	setenv("UPAGER_LOG", "debug", 1);
	setenv(c->env, c->value, 1);

	upager_config_init(&cfg);
	before = cfg;
	ck_assert_int_eq(upager_config_from_env(&cfg, err, sizeof err), -EINVAL);
	ck_assert_msg(memcmp(&cfg, &before, sizeof cfg) == 0,
		      "%s=%s: config changed on failure", c->env, c->value);
	ck_assert_msg(strstr(err, c->env), "%s=\"%s\": message \"%s\" does not name it",
		      c->env, c->value, err);
	ck_assert_msg(strstr(err, c->says), "%s=\"%s\": message \"%s\" lacks \"%s\"",
		      c->env, c->value, err, c->says);
	for (const char *p = err; *p; p++)
		ck_assert_msg((unsigned char)*p >= 0x20 && *p != 0x7f,
			      "%s: message \"%s\" holds control character 0x%02x", c->env, err, *p);
	if (strcmp(c->env, "UPAGER_POLICY") == 0 && c->value[0])
		ck_assert_msg(strstr(err, upg_policy_names()), "\"%s\" lists no policies", err);
}
END_TEST

START_TEST(test_env_report_is_not_config)
{
	struct upager_config cfg, before;

	/* The preload layer owns UPAGER_REPORT; even an empty one does not
	 * concern a program that only calls upager_config_from_env(). */
	setenv("UPAGER_REPORT", "", 1);
	upager_config_init(&cfg);
	before = cfg;
	ck_assert_int_eq(upager_config_from_env(&cfg, NULL, 0), 0);
	ck_assert(memcmp(&cfg, &before, sizeof cfg) == 0);
}
END_TEST

START_TEST(test_env_messages_buffers)
{
	struct upager_config cfg;
	char small[8];

	setenv("UPAGER_RAM", "12Q", 1);
	upager_config_init(&cfg);
	ck_assert_int_eq(upager_config_from_env(&cfg, NULL, 0), -EINVAL);
	ck_assert_int_eq(upager_config_from_env(&cfg, NULL, 100), -EINVAL);
	memset(small, 'x', sizeof small);
	ck_assert_int_eq(upager_config_from_env(&cfg, small, sizeof small), -EINVAL);
	ck_assert_uint_eq(strlen(small), sizeof small - 1);
	ck_assert(strncmp(small, "UPAGER_", 7) == 0);
}
END_TEST

START_TEST(test_env_bad_config_struct)
{
	struct upager_config cfg;
	char err[256] = "";

	ck_assert_int_eq(upager_config_from_env(NULL, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "upager_config_init"));
	memset(&cfg, 0, sizeof cfg);
	ck_assert_int_eq(upager_config_from_env(&cfg, NULL, 0), -EINVAL);
}
END_TEST

/* The environment checks form and range; the whole-config check catches
 * what depends on more than one value or on more than a range. */
START_TEST(test_env_then_check)
{
	struct upager_config cfg;
	char err[512] = "";

	setenv("UPAGER_PAGE", "5000", 1);
	upager_config_init(&cfg);
	ck_assert_int_eq(upager_config_from_env(&cfg, err, sizeof err), 0);
	ck_assert_uint_eq(cfg.page_size, 5000);
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "UPAGER_PAGE"));

	setenv("UPAGER_PAGE", "2M", 1);
	setenv("UPAGER_RAM", "1M", 1);
	upager_config_init(&cfg);
	ck_assert_int_eq(upager_config_from_env(&cfg, err, sizeof err), 0);
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "UPAGER_RAM"));
}
END_TEST

/* ---- upg_config_check ------------------------------------------------- */

enum mutation {
	M_BUDGET_0,
	M_BUDGET_UNDER_PAGE,
	M_BUDGET_UNDER_BIG_PAGE,
	M_PAGE_0,
	M_PAGE_2048,
	M_PAGE_3000,
	M_PAGE_12K,
	M_PAGE_2G,
	M_STORE_MAX_SMALL,
	M_STORE_MAX_UNDER_PAGE,
	M_STORE_PATH_EMPTY,
	M_POLICY_UNKNOWN,
	M_POLICY_NULL,
	M_HANDLERS_0,
	M_HANDLERS_17,
	M_FAULT_AROUND_0,
	M_FAULT_AROUND_513,
	M_READAHEAD_0,
	M_READAHEAD_1025,
	M_IO_DEPTH_0,
	M_IO_DEPTH_1025,
	M_LOG_NEGATIVE,
	M_LOG_4,
	M_SIZE_0,
	M_SIZE_SHORT,
};

struct bad_config {
	enum mutation m;
	const char *field, *env; /* both must appear in the message */
};

static const struct bad_config bad_configs[] = {
	{ M_BUDGET_0, "ram_budget", "UPAGER_RAM" },
	{ M_BUDGET_UNDER_PAGE, "ram_budget", "UPAGER_RAM" },
	{ M_BUDGET_UNDER_BIG_PAGE, "ram_budget", "UPAGER_RAM" },
	{ M_PAGE_0, "page_size", "UPAGER_PAGE" },
	{ M_PAGE_2048, "page_size", "UPAGER_PAGE" },
	{ M_PAGE_3000, "page_size", "UPAGER_PAGE" },
	{ M_PAGE_12K, "page_size", "UPAGER_PAGE" },
	{ M_PAGE_2G, "page_size", "UPAGER_PAGE" },
	{ M_STORE_MAX_SMALL, "store_max", "UPAGER_STORE_MAX" },
	{ M_STORE_MAX_UNDER_PAGE, "store_max", "UPAGER_STORE_MAX" },
	{ M_STORE_PATH_EMPTY, "store_path", "UPAGER_STORE" },
	{ M_POLICY_UNKNOWN, "policy", "UPAGER_POLICY" },
	{ M_POLICY_NULL, "policy", "UPAGER_POLICY" },
	{ M_HANDLERS_0, "handler_threads", "UPAGER_HANDLERS" },
	{ M_HANDLERS_17, "handler_threads", "UPAGER_HANDLERS" },
	{ M_FAULT_AROUND_0, "fault_around", "UPAGER_FAULT_AROUND" },
	{ M_FAULT_AROUND_513, "fault_around", "UPAGER_FAULT_AROUND" },
	{ M_READAHEAD_0, "readahead_max", "UPAGER_READAHEAD" },
	{ M_READAHEAD_1025, "readahead_max", "UPAGER_READAHEAD" },
	{ M_IO_DEPTH_0, "io_depth", "UPAGER_IO_DEPTH" },
	{ M_IO_DEPTH_1025, "io_depth", "UPAGER_IO_DEPTH" },
	{ M_LOG_NEGATIVE, "log_level", "UPAGER_LOG" },
	{ M_LOG_4, "log_level", "UPAGER_LOG" },
	{ M_SIZE_0, "upager_config_init", "upager_config" },
	{ M_SIZE_SHORT, "upager_config_init", "upager_config" },
};

static void mutate(struct upager_config *cfg, enum mutation m)
{
	switch (m) {
	case M_BUDGET_0: cfg->ram_budget = 0; break;
	case M_BUDGET_UNDER_PAGE: cfg->ram_budget = 4095; break;
	case M_BUDGET_UNDER_BIG_PAGE: cfg->page_size = 2 * MIB; cfg->ram_budget = MIB; break;
	case M_PAGE_0: cfg->page_size = 0; break;
	case M_PAGE_2048: cfg->page_size = 2048; break;
	case M_PAGE_3000: cfg->page_size = 3000; break;
	case M_PAGE_12K: cfg->page_size = 12 * KIB; break;
	case M_PAGE_2G: cfg->page_size = (uint32_t)(2 * GIB); cfg->ram_budget = 4 * GIB; break;
	case M_STORE_MAX_SMALL: cfg->store_max = 1000; break;
	case M_STORE_MAX_UNDER_PAGE:
		cfg->page_size = 2 * MIB;
		cfg->ram_budget = 4 * MIB;
		cfg->store_max = MIB;
		break;
	case M_STORE_PATH_EMPTY: cfg->store_path = ""; break;
	case M_POLICY_UNKNOWN: cfg->policy = "lru"; break;
	case M_POLICY_NULL: cfg->policy = NULL; break;
	case M_HANDLERS_0: cfg->handler_threads = 0; break;
	case M_HANDLERS_17: cfg->handler_threads = 17; break;
	case M_FAULT_AROUND_0: cfg->fault_around = 0; break;
	case M_FAULT_AROUND_513: cfg->fault_around = 513; break;
	case M_READAHEAD_0: cfg->readahead_max = 0; break;
	case M_READAHEAD_1025: cfg->readahead_max = 1025; break;
	case M_IO_DEPTH_0: cfg->io_depth = 0; break;
	case M_IO_DEPTH_1025: cfg->io_depth = 1025; break;
	case M_LOG_NEGATIVE: cfg->log_level = -1; break;
	case M_LOG_4: cfg->log_level = 4; break;
	case M_SIZE_0: cfg->size = 0; break;
	case M_SIZE_SHORT: cfg->size = offsetof(struct upager_config, encrypt) - 1; break;  /* before 0.2 */
	}
}

START_TEST(test_check_rejects)
{
	const struct bad_config *c = &bad_configs[_i];
	struct upager_config cfg;
	char err[512] = "";

	upager_config_init(&cfg);
	mutate(&cfg, c->m);
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_msg(strstr(err, c->field) && strstr(err, c->env),
		      "case %d: message \"%s\" should name %s and %s", _i, err, c->field, c->env);
	/* A NULL buffer is fine too. */
	ck_assert_int_eq(upg_config_check(&cfg, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_check_messages)
{
	struct upager_config cfg;
	char err[512] = "";

	upager_config_init(&cfg);
	cfg.ram_budget = 0;
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "the RAM budget (0 bytes) must be at least one page (4096 bytes): "
			 "raise UPAGER_RAM / ram_budget");

	upager_config_init(&cfg);
	cfg.policy = "lru";
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "\"lru\""));
	ck_assert_ptr_nonnull(strstr(err, upg_policy_names()));

	upager_config_init(&cfg);
	cfg.handler_threads = 17;
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "(17)"));
	ck_assert_ptr_nonnull(strstr(err, "from 1 to 16"));

	/* Found by tests/fuzz/fuzz_options: a policy name is echoed with its
	 * control characters escaped, so the message stays on one line. */
	upager_config_init(&cfg);
	cfg.policy = "s3fifo\n";
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "\"s3fifo\\x0a\""));
	ck_assert_ptr_null(strchr(err, '\n'));

	ck_assert_int_eq(upg_config_check(NULL, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "upager_config_init"));
}
END_TEST

/*
 * Found by tests/fuzz/fuzz_options: a long value of control characters was
 * shown as up to 256 characters of \xNN escapes, which pushed "set
 * UPAGER_POLICY" out of a 256-byte buffer.  The shown value is at most 64
 * characters after escaping.
 */
START_TEST(test_check_long_escaped_policy)
{
	struct upager_config cfg;
	char policy[101], err[160] = "", want[80];

	memset(policy, '\x10', sizeof policy - 1);
	policy[sizeof policy - 1] = '\0';
	upager_config_init(&cfg);
	cfg.policy = policy;
	ck_assert_int_eq(upg_config_check(&cfg, err, sizeof err), -EINVAL);
	ck_assert_msg(strstr(err, "UPAGER_POLICY"), "message \"%s\" does not name UPAGER_POLICY", err);
	strcpy(want, "\"");
	for (int i = 0; i < 16; i++)
		strcat(want, "\\x10");
	strcat(want, "...\"");
	ck_assert_msg(strstr(err, want), "message \"%s\" does not show 16 escapes and \"...\"", err);
}
END_TEST

/* A long value is shown by its first 64 bytes and "...". */
START_TEST(test_env_long_value_cut)
{
	struct upager_config cfg;
	char value[200], err[1024] = "", want[96];

	memset(value, 'q', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	setenv("UPAGER_POLICY", value, 1);
	upager_config_init(&cfg);
	ck_assert_int_eq(upager_config_from_env(&cfg, err, sizeof err), -EINVAL);
	memset(want, 'q', 64);
	strcpy(want + 64, "... is not valid");
	ck_assert_msg(strstr(err, want), "message \"%s\" does not show 64 bytes and \"...\"", err);
	ck_assert_msg(strspn(strstr(err, want), "q") == 64, "message \"%s\" shows more than 64 bytes", err);
}
END_TEST

START_TEST(test_check_accepts_limits)
{
	static const uint32_t pages[] = { 4096, 8192, 64 * 1024, 2u << 20 };
	struct upager_config cfg;
	char err[512];

	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		upager_config_init(&cfg);
		cfg.page_size = pages[i];
		cfg.ram_budget = pages[i];
		ck_assert_msg(upg_config_check(&cfg, err, sizeof err) == 0, "page %u: %s",
			      pages[i], err);
	}

	upager_config_init(&cfg);
	cfg.store_max = MIB;
	cfg.store_path = "/var/tmp";
	cfg.handler_threads = 16;
	cfg.fault_around = 512;
	cfg.readahead_max = 1024;
	cfg.io_depth = 1024;
	cfg.log_level = UPAGER_LOG_ERROR;
	cfg.policy = "fifo";
	ck_assert_msg(upg_config_check(&cfg, err, sizeof err) == 0, "%s", err);

	cfg.handler_threads = cfg.fault_around = cfg.readahead_max = cfg.io_depth = 1;
	cfg.log_level = UPAGER_LOG_DEBUG;
	cfg.ram_budget = UINT64_MAX;
	ck_assert_msg(upg_config_check(&cfg, err, sizeof err) == 0, "%s", err);

	/* A larger struct from a newer header is fine. */
	cfg.size = sizeof cfg + 8;
	ck_assert_msg(upg_config_check(&cfg, err, sizeof err) == 0, "%s", err);
}
END_TEST

static Suite *options_suite(void)
{
	Suite *s = suite_create("options");
	TCase *tc;

	tc = tcase_create("parse_size");
	tcase_add_loop_test(tc, test_parse_size_table, 0, (int)(sizeof size_cases / sizeof size_cases[0]));
	tcase_add_test(tc, test_parse_size_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("format_size");
	tcase_add_loop_test(tc, test_format_size_table, 0,
			    (int)(sizeof format_cases / sizeof format_cases[0]));
	tcase_add_test(tc, test_format_size_round_trip);
	tcase_add_test(tc, test_format_size_small_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_test(tc, test_config_init_defaults);
	tcase_add_test(tc, test_table_rows);
	suite_add_tcase(s, tc);

	tc = tcase_create("env");
	tcase_add_checked_fixture(tc, clear_env, clear_env);
	tcase_add_test(tc, test_env_unset_keeps_config);
	tcase_add_test(tc, test_env_good_values);
	tcase_add_test(tc, test_env_log_levels);
	tcase_add_loop_test(tc, test_env_bad_value, 0, (int)(sizeof bad_envs / sizeof bad_envs[0]));
	tcase_add_test(tc, test_env_report_is_not_config);
	tcase_add_test(tc, test_env_messages_buffers);
	tcase_add_test(tc, test_env_bad_config_struct);
	tcase_add_test(tc, test_env_then_check);
	tcase_add_test(tc, test_env_long_value_cut);
	suite_add_tcase(s, tc);

	tc = tcase_create("check");
	tcase_add_loop_test(tc, test_check_rejects, 0, (int)(sizeof bad_configs / sizeof bad_configs[0]));
	tcase_add_test(tc, test_check_messages);
	tcase_add_test(tc, test_check_long_escaped_policy);
	tcase_add_test(tc, test_check_accepts_limits);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(options_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
