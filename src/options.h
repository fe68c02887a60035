/* SPDX-License-Identifier: MIT */
/*
 * The one table of options.  Each option has a UPAGER_* name, a default, and
 * limits; upager_config_init() applies the defaults and
 * upager_config_from_env() the environment.  README.md documents the same
 * table; tests/test_options.c checks that they agree.
 */
#ifndef UPG_OPTIONS_H
#define UPG_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

struct upager_config;

enum upg_opt_kind {
	UPG_OPT_SIZE,   /* bytes, K/M/G/T suffixes */
	UPG_OPT_UINT,   /* plain number */
	UPG_OPT_STRING, /* free text (paths) */
	UPG_OPT_CHOICE, /* one of a fixed list of words */
	UPG_OPT_LOGLEVEL,
};

struct upg_option {
	const char *env;      /* "UPAGER_RAM" */
	enum upg_opt_kind kind;
	size_t offset;        /* offset of the field in struct upager_config, or (size_t)-1 */
	uint64_t min, max;    /* limits for SIZE and UINT */
	const char *help;     /* accepted form, for messages */
};

extern const struct upg_option upg_options[];
extern const size_t upg_options_count;

/* Copy a caller's config of any published size into a current one; fields
 * the caller's header did not have are zero. */
void upg_config_copy(struct upager_config *dst, const struct upager_config *src);

/* Validate a whole config; on error write a message saying what to change. */
int upg_config_check(const struct upager_config *cfg, char *err, size_t errlen);

/* What store_max == 0 means. */
#define UPG_STORE_MAX_DEFAULT (UINT64_C(64) << 30)
#define UPG_POLL_US_DEFAULT 0
/* What compress_pool == 0 means (a caller built before it). */
#define UPG_COMPRESS_POOL_DEFAULT 50
#define UPG_FILE_DIRTY_AGE_DEFAULT 30  /* seconds, as the kernel's dirty_expire_centisecs */

/* Room for any upg_format_size() result, NUL included ("18446744073709551615"). */
#define UPG_SIZE_BUFLEN 24

/*
 * Print a byte count the way a user would type it: "4096" stays exact as
 * "4K", 1.5 GiB is "1.5G", and a count with no short exact form is plain
 * digits ("4097").  The text always parses back to the same number with
 * upager_parse_size().  Returns 0, -EINVAL for a NULL buf, or -ENOSPC when
 * len is too small (buf untouched); UPG_SIZE_BUFLEN is always enough.
 */
int upg_format_size(uint64_t bytes, char *buf, size_t len);

#endif
