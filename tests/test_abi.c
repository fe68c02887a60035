/* SPDX-License-Identifier: MIT */
/*
 * The binary interface: struct sizes and field offsets of the public structs,
 * the defaults that upager_config_init() sets, the version string, and the
 * set of symbols that libupager.so exports.
 *
 * The literals below are the layout of version 0 on LP64 (x86_64, aarch64,
 * ...).  A change here is an ABI break: the structs may only grow at their
 * end, and only together with a bump of the literal sizes in this file.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "upager.h"

/* ---- struct layouts ---------------------------------------------------- */

struct field {
	const char *name;
	size_t offset, expect_offset;
	size_t size, expect_size;
};

#define F(type, f, off, sz) \
	{ #f, offsetof(struct type, f), (off), sizeof(((struct type *)0)->f), (sz) }

static const struct field config_fields[] = {
	F(upager_config, size, 0, 4),
	F(upager_config, page_size, 4, 4),
	F(upager_config, ram_budget, 8, 8),
	F(upager_config, store_path, 16, 8),
	F(upager_config, store_max, 24, 8),
	F(upager_config, policy, 32, 8),
	F(upager_config, handler_threads, 40, 4),
	F(upager_config, fault_around, 44, 4),
	F(upager_config, readahead_max, 48, 4),
	F(upager_config, io_depth, 52, 4),
	F(upager_config, log_level, 56, 4),
	F(upager_config, log, 64, 8),
	F(upager_config, log_arg, 72, 8),
	F(upager_config, encrypt, 80, 4),
	F(upager_config, poll_us, 84, 4),  /* 0.3: in what was padding, so the size stays 88 */
	F(upager_config, compress, 88, 8),       /* 0.4 */
	F(upager_config, compress_pool, 96, 4),  /* 0.4 */
};

static const struct field stats_fields[] = {
	F(upager_stats, size, 0, 4),
	F(upager_stats, regions, 4, 4),
	F(upager_stats, ram_budget, 8, 8),
	F(upager_stats, resident_bytes, 16, 8),
	F(upager_stats, resident_peak, 24, 8),
	F(upager_stats, zero_fills, 32, 8),
	F(upager_stats, store_reads, 40, 8),
	F(upager_stats, readahead_pages, 48, 8),
	F(upager_stats, refaults, 56, 8),
	F(upager_stats, wp_faults, 64, 8),
	F(upager_stats, evictions, 72, 8),
	F(upager_stats, writebacks, 80, 8),
	F(upager_stats, clean_drops, 88, 8),
	F(upager_stats, zero_skips, 96, 8),
	F(upager_stats, discards, 104, 8),
	F(upager_stats, bytes_read, 112, 8),
	F(upager_stats, bytes_written, 120, 8),
	F(upager_stats, store_slots_used, 128, 8),
	F(upager_stats, store_bytes, 136, 8),
	F(upager_stats, write_errors, 144, 8),
	F(upager_stats, store_full, 152, 8),
	F(upager_stats, overshoot_bytes, 160, 8),
	F(upager_stats, overshoot_peak, 168, 8),
	F(upager_stats, fault_ns_total, 176, 8),
	F(upager_stats, fault_count, 184, 8),
	F(upager_stats, fault_p50_ns, 192, 8),
	F(upager_stats, fault_p99_ns, 200, 8),
	F(upager_stats, fault_max_ns, 208, 8),
	F(upager_stats, metadata_bytes, 216, 8),
	F(upager_stats, read_errors, 224, 8),
	F(upager_stats, integrity_errors, 232, 8),
	F(upager_stats, poisoned_pages, 240, 8),
	F(upager_stats, polls, 248, 8),
	F(upager_stats, poll_hits, 256, 8),
	F(upager_stats, poll_cpu_ns, 264, 8),
	F(upager_stats, pool_bytes, 272, 8),
	F(upager_stats, pool_pages, 280, 8),
	F(upager_stats, pool_hits, 288, 8),
	F(upager_stats, pool_puts, 296, 8),
	F(upager_stats, pool_rejects, 304, 8),
	F(upager_stats, pool_writebacks, 312, 8),
	F(upager_stats, pool_drops, 320, 8),
	F(upager_stats, wall_ns, 328, 8),
	F(upager_stats, stall_some_ns, 336, 8),
	F(upager_stats, stall_all_ns, 344, 8),
	F(upager_stats, stall_recent_ns, 352, 8),
	F(upager_stats, stall_some_recent_ns, 360, 8),
	F(upager_stats, stall_all_recent_ns, 368, 8),
	F(upager_stats, stall_threads, 376, 4),
	F(upager_stats, stall_pad, 380, 4),
	F(upager_stats, pool_share_bytes, 384, 8),  /* 0.5 */
	F(upager_stats, pool_share_most, 392, 8),
	F(upager_stats, pool_skips, 400, 8),
	F(upager_stats, pool_repools, 408, 8),
	F(upager_stats, takeout_calls, 416, 8),
	F(upager_stats, takeout_pages, 424, 8),
	F(upager_stats, takeout_alone, 432, 8),
	F(upager_stats, locked_stays, 440, 8),  /* appended: callers pass .size, older ones get the fields up to theirs */
};

static const struct field map_opts_fields[] = {
	F(upager_map_opts, size, 0, 4),
	F(upager_map_opts, page_size, 4, 4),
};

static const struct field forecast_fields[] = {
	F(upager_forecast, size, 0, 4),
	F(upager_forecast, basis, 4, 4),
	F(upager_forecast, ram_budget, 8, 8),
	F(upager_forecast, refills, 16, 8),
	F(upager_forecast, refill_ns, 24, 8),
	F(upager_forecast, footprint, 32, 8),
	F(upager_forecast, knee, 40, 8),
};

static void check_fields(const char *type, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(f[i].offset == f[i].expect_offset,
			      "ABI break: offsetof(struct %s, %s) is %zu, was %zu", type, f[i].name, f[i].offset,
			      f[i].expect_offset);
		ck_assert_msg(f[i].size == f[i].expect_size, "ABI break: sizeof(struct %s.%s) is %zu, was %zu", type,
			      f[i].name, f[i].size, f[i].expect_size);
	}
}

START_TEST(test_config_layout)
{
	ck_assert_msg(sizeof(struct upager_config) == 104, "ABI break: sizeof(struct upager_config) is %zu, was 104",
		      sizeof(struct upager_config));
	check_fields("upager_config", config_fields, sizeof config_fields / sizeof config_fields[0]);
}
END_TEST

START_TEST(test_stats_layout)
{
	ck_assert_msg(sizeof(struct upager_stats) == 448, "ABI break: sizeof(struct upager_stats) is %zu, was 448",
		      sizeof(struct upager_stats));
	check_fields("upager_stats", stats_fields, sizeof stats_fields / sizeof stats_fields[0]);
	/* Every field is listed: the last one ends the struct. */
	ck_assert_uint_eq(stats_fields[sizeof stats_fields / sizeof stats_fields[0] - 1].expect_offset + 8, 448);
}
END_TEST

START_TEST(test_map_opts_layout)
{
	ck_assert_msg(sizeof(struct upager_map_opts) == 8, "ABI break: sizeof(struct upager_map_opts) is %zu, was 8",
		      sizeof(struct upager_map_opts));
	check_fields("upager_map_opts", map_opts_fields, sizeof map_opts_fields / sizeof map_opts_fields[0]);
}
END_TEST

START_TEST(test_forecast_layout)
{
	ck_assert_msg(sizeof(struct upager_forecast) == 48, "ABI break: sizeof(struct upager_forecast) is %zu, was 48",
		      sizeof(struct upager_forecast));
	check_fields("upager_forecast", forecast_fields, sizeof forecast_fields / sizeof forecast_fields[0]);
	ck_assert_int_eq(UPAGER_FORECAST_MEASURED, 0);
	ck_assert_int_eq(UPAGER_FORECAST_ESTIMATE, 1);
	ck_assert_int_eq(UPAGER_FORECAST_AT_LEAST, 2);
}
END_TEST

START_TEST(test_enum_values)
{
	ck_assert_int_eq(UPAGER_LOG_ERROR, 0);
	ck_assert_int_eq(UPAGER_LOG_WARN, 1);
	ck_assert_int_eq(UPAGER_LOG_INFO, 2);
	ck_assert_int_eq(UPAGER_LOG_DEBUG, 3);
	ck_assert_int_eq(UPAGER_ADV_NORMAL, 0);
	ck_assert_int_eq(UPAGER_ADV_SEQUENTIAL, 1);
	ck_assert_int_eq(UPAGER_ADV_RANDOM, 2);
	ck_assert_int_eq(UPAGER_ADV_WILLNEED, 3);
	ck_assert_int_eq(UPAGER_ADV_DONTNEED, 4);
}
END_TEST

/* ---- defaults and version ---------------------------------------------- */

START_TEST(test_config_init_defaults)
{
	struct upager_config cfg;
	memset(&cfg, 0xa5, sizeof cfg);
	upager_config_init(&cfg);
	ck_assert_uint_eq(cfg.size, sizeof cfg);
	ck_assert_uint_eq(cfg.page_size, 4096);
	ck_assert_uint_eq(cfg.ram_budget, 256ULL << 20);
	ck_assert_ptr_null(cfg.store_path);
	ck_assert_uint_eq(cfg.store_max, 0);
	ck_assert_ptr_nonnull(cfg.policy);
	ck_assert_str_eq(cfg.policy, "s3fifo");
	ck_assert_uint_eq(cfg.handler_threads, 1);
	ck_assert_uint_eq(cfg.fault_around, 16);
	ck_assert_uint_eq(cfg.readahead_max, 256);
	ck_assert_uint_eq(cfg.io_depth, 64);
	ck_assert_int_eq(cfg.log_level, UPAGER_LOG_WARN);
	ck_assert_ptr_null((void *)cfg.log);
	ck_assert_ptr_null(cfg.log_arg);
	ck_assert_uint_eq(cfg.encrypt, 0);
	ck_assert_uint_eq(cfg.poll_us, 0);
	ck_assert_str_eq(cfg.compress, "lz4");
	ck_assert_uint_eq(cfg.compress_pool, 50);
	/* Padding too: init clears the whole struct. */
	unsigned char pad[4];
	memcpy(pad, (char *)&cfg + 60, 4);
	ck_assert_msg(upg_t_is_zero(pad, 4), "padding after log_level is not cleared");

	upager_config_init(NULL); /* accepted, does nothing */
}
END_TEST

/* A caller built with the 0.1 header passes an 80-byte config (no encrypt)
 * and a 224-byte stats struct: both keep working, and nothing past their
 * end is read or written. */
START_TEST(test_older_sizes)
{
	struct { struct upager_config cfg; unsigned char guard[8]; } old;
	upager_config_init(&old.cfg);
	old.cfg.size = 80;
	memset((char *)&old.cfg + 80, 0x5a, sizeof old - 80);  /* encrypt reads as garbage if looked at */
	old.cfg.ram_budget = 16ULL << 20;
	char err[256] = "";
	ck_assert_msg(upager_config_validate(&old.cfg, err, sizeof err) == 0, "%s", err);
	setenv("UPAGER_ENCRYPT", "1", 1);
	ck_assert_int_eq(upager_config_from_env(&old.cfg, err, sizeof err), 0);
	unsetenv("UPAGER_ENCRYPT");
	ck_assert_uint_eq(old.cfg.size, 80);
	ck_assert_uint_eq(((unsigned char *)&old.cfg)[80], 0x5a);  /* not written past its end */

	upager_t *up = NULL;
	ck_assert_msg(upager_open(&old.cfg, &up, err, sizeof err) == 0, "%s", err);
	struct { struct upager_stats st; unsigned char guard[8]; } ost;
	memset(&ost, 0x77, sizeof ost);
	ost.st.size = 224;
	ck_assert_int_eq(upager_stats(up, &ost.st), 0);
	ck_assert_uint_eq(ost.st.size, 224);
	ck_assert_uint_eq(ost.st.ram_budget, 16ULL << 20);
	ck_assert_uint_eq(((unsigned char *)&ost.st)[224], 0x77);
	upager_close(up);

	old.cfg.size = 72;  /* older than anything published */
	ck_assert_int_eq(upager_config_validate(&old.cfg, err, sizeof err), -EINVAL);
	ck_assert_msg(strstr(err, "upager_config_init"), "%s", err);
}
END_TEST

START_TEST(test_version)
{
	const char *v = upager_version();
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, UPAGER_VERSION_STRING);
	char want[64];
	snprintf(want, sizeof want, "%d.%d.%d", UPAGER_VERSION_MAJOR, UPAGER_VERSION_MINOR, UPAGER_VERSION_PATCH);
	ck_assert_str_eq(v, want);
}
END_TEST

/* ---- exported symbols --------------------------------------------------- */

static const char *const public_functions[] = {
	"upager_config_init", "upager_config_from_env", "upager_config_validate", "upager_parse_size", "upager_open",
	"upager_close",       "upager_map",             "upager_unmap",      "upager_advise",
	"upager_owns",        "upager_stats",           "upager_format_stats", "upager_version",
	"upager_forecast",
};

static int find_lib(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	char *out = arg;
	if (info->dlpi_name && strstr(info->dlpi_name, "libupager.so")) {
		snprintf(out, PATH_MAX, "%s", info->dlpi_name);
		return 1;
	}
	return 0;
}

/* The libupager.so this process runs with (not one found by name on disk). */
static void loaded_library(char *path)
{
	path[0] = 0;
	dl_iterate_phdr(find_lib, path);
	if (path[0])
		return;
	FILE *f = fopen("/proc/self/maps", "r");
	ck_assert_ptr_nonnull(f);
	char line[PATH_MAX + 256];
	while (fgets(line, sizeof line, f)) {
		char *p = strchr(line, '/');
		if (p && strstr(p, "libupager.so")) {
			p[strcspn(p, "\n")] = 0;
			snprintf(path, PATH_MAX, "%s", p);
			break;
		}
	}
	fclose(f);
}

START_TEST(test_exports_only_upager)
{
	char lib[PATH_MAX];
	loaded_library(lib);
	ck_assert_msg(lib[0], "this test is not linked against libupager.so (no such object in the process)");

	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s' 2>&1", lib);
	FILE *p = popen(cmd, "r");
	ck_assert_msg(p, "popen(%s) failed", cmd);

	char line[1024];
	size_t checked = 0;
	unsigned found = 0; /* bit i: public_functions[i] exported as a text symbol */
	char bad[4096] = "";
	while (fgets(line, sizeof line, p)) {
		char addr[64], type[8], name[512];
		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "%63s %7s %511s", addr, type, name) != 3) {
			ck_abort_msg("unexpected nm output line: '%s' (from %s)", line, cmd);
		}
		name[strcspn(name, "@")] = 0; /* upager_open@@UPAGER_0 */
		if (type[0] == 'A')
			continue; /* version nodes (UPAGER_0) */
		checked++;
		if (strncmp(name, "upager_", 7) != 0) {
			size_t l = strlen(bad);
			snprintf(bad + l, sizeof bad - l, " %s(%s)", name, type);
			continue;
		}
		for (size_t i = 0; i < sizeof public_functions / sizeof public_functions[0]; i++)
			if (!strcmp(name, public_functions[i]) && (type[0] == 'T' || type[0] == 'i'))
				found |= 1u << i;
	}
	int st = pclose(p);
	ck_assert_msg(st == 0, "'%s' failed (status %d)", cmd, st);
	ck_assert_msg(checked > 0, "nm found no defined dynamic symbols in %s", lib);
	ck_assert_msg(!bad[0], "%s exports symbols outside the upager_ namespace:%s", lib, bad);
	for (size_t i = 0; i < sizeof public_functions / sizeof public_functions[0]; i++)
		ck_assert_msg(found & (1u << i), "%s does not export %s", lib, public_functions[i]);
}
END_TEST

static Suite *abi_suite(void)
{
	Suite *s = suite_create("abi");
	TCase *tc = tcase_create("layout");
	tcase_add_test(tc, test_config_layout);
	tcase_add_test(tc, test_stats_layout);
	tcase_add_test(tc, test_map_opts_layout);
	tcase_add_test(tc, test_forecast_layout);
	tcase_add_test(tc, test_enum_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_add_test(tc, test_config_init_defaults);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_older_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("exports");
	tcase_add_test(tc, test_exports_only_upager);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(abi_suite());
	fflush(stdout);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
