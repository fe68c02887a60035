/* SPDX-License-Identifier: MIT */
/*
 * Options: the defaults, the one table of UPAGER_* variables, size parsing,
 * and validation of a whole configuration.
 *
 * Nothing here depends on the locale.  The preload library runs inside
 * programs that call setlocale(), and a size must not parse as "1.5G" in one
 * program and stop at "1" in another, so digits are read by hand (no strtod,
 * no strtoull, no strcasecmp).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* secure_getenv */
#endif
#include "options.h"
#include "echo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "pool.h"
#include "upager.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

#define PAGE_MIN 4096u
#define PAGE_MAX (2 * MIB) /* UPG_MAX_PAGE: bounce and zero buffers hold a whole page */
#define STORE_MAX_MIN MIB

/* The first published struct upager_config ended before encrypt; fields
 * after that are zero for callers built with that header, which is their
 * default. */
#define CONFIG_MIN_SIZE offsetof(struct upager_config, encrypt)

#define FIELD(f) offsetof(struct upager_config, f)
#define NO_FIELD ((size_t)-1)
#define FIELD_SIZE(f) sizeof(((struct upager_config *)0)->f)

/*
 * SIZE and UINT rows store into a uint32_t when their max fits in 32 bits and
 * into a uint64_t otherwise; these asserts keep the struct and that rule in
 * step (the test checks each row's max against its field too).
 */
_Static_assert(FIELD_SIZE(page_size) == 4, "page_size is a uint32_t");
_Static_assert(FIELD_SIZE(handler_threads) == 4, "handler_threads is a uint32_t");
_Static_assert(FIELD_SIZE(fault_around) == 4, "fault_around is a uint32_t");
_Static_assert(FIELD_SIZE(readahead_max) == 4, "readahead_max is a uint32_t");
_Static_assert(FIELD_SIZE(io_depth) == 4, "io_depth is a uint32_t");
_Static_assert(FIELD_SIZE(ram_budget) == 8, "ram_budget is a uint64_t");
_Static_assert(FIELD_SIZE(store_max) == 8, "store_max is a uint64_t");
_Static_assert(FIELD_SIZE(log_level) == sizeof(int), "log_level is an int");
_Static_assert(FIELD_SIZE(encrypt) == 4, "encrypt is a uint32_t");
_Static_assert(FIELD_SIZE(poll_us) == 4, "poll_us is a uint32_t");
_Static_assert(FIELD_SIZE(compress_pool) == 4, "compress_pool is a uint32_t");
_Static_assert(FIELD_SIZE(file_dirty_age) == 4, "file_dirty_age is a uint32_t");

/*
 * The one table.  Defaults live in upager_config_init() (the fields have
 * different types); limits live here and upg_config_check() reads them
 * back, so a range is written once.  For UINT rows the help text states
 * the same range, which the test checks.  Rows without a field are read by
 * the preload layer itself; they are here so that every variable is
 * documented in one place.
 */
const struct upg_option upg_options[] = {
	{
		.env = "UPAGER_RAM",
		.kind = UPG_OPT_SIZE,
		.offset = FIELD(ram_budget),
		.min = 1, /* at least one page: upg_config_check() knows the page size */
		.max = UINT64_MAX,
		.help = "a size such as 512M or 2G (binary units K, M, G, T)",
	},
	{
		.env = "UPAGER_STORE",
		.kind = UPG_OPT_STRING,
		.offset = FIELD(store_path),
		.help = "a path: a directory (for an unlinked temporary file there), "
			"or a regular file or block device to use, whose contents are overwritten",
	},
	{
		.env = "UPAGER_STORE_MAX",
		.kind = UPG_OPT_SIZE,
		.offset = FIELD(store_max),
		.min = 0, /* 0: UPG_STORE_MAX_DEFAULT; 1..1M is refused by upg_config_check() */
		.max = UINT64_MAX,
		.help = "a size of at least 1M such as 16G or 1T (binary units K, M, G, T), or 0 for 64G",
	},
	{
		.env = "UPAGER_PAGE",
		.kind = UPG_OPT_SIZE,
		.offset = FIELD(page_size),
		.min = PAGE_MIN, /* power of two checked by upg_config_check() */
		.max = PAGE_MAX,
		.help = "a power-of-two size from 4K to 2M, such as 4K, 64K or 2M",
	},
	{
		.env = "UPAGER_POLICY",
		.kind = UPG_OPT_CHOICE,
		.offset = FIELD(policy),
		.help = "a replacement policy: s3fifo, clock or fifo",
	},
	{
		.env = "UPAGER_HANDLERS",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(handler_threads),
		.min = 1,
		.max = 16,
		.help = "a whole number of fault-handler threads from 1 to 16",
	},
	{
		.env = "UPAGER_FAULT_AROUND",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(fault_around),
		.min = 1,
		.max = 512,
		.help = "a whole number of pages zero-filled per first-touch fault from 1 to 512",
	},
	{
		.env = "UPAGER_READAHEAD",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(readahead_max),
		.min = 1,
		.max = 1024,
		.help = "a whole number of pages read ahead from 1 to 1024",
	},
	{
		.env = "UPAGER_IO_DEPTH",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(io_depth),
		.min = 1,
		.max = 1024,
		.help = "a whole number of reads in flight per handler thread from 1 to 1024",
	},
	{
		.env = "UPAGER_LOG",
		.kind = UPG_OPT_LOGLEVEL,
		.offset = FIELD(log_level),
		.min = UPAGER_LOG_ERROR,
		.max = UPAGER_LOG_DEBUG,
		.help = "a log level: error, warn, info or debug (or 0 to 3)",
	},
	{
		.env = "UPAGER_ENCRYPT",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(encrypt),
		.min = 0,
		.max = 1,
		.help = "1 to encrypt pages at rest (XChaCha20-Poly1305, random key per run) or 0 for checksums only, from 0 to 1",
	},
	{
		.env = "UPAGER_POLL_US",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(poll_us),
		.min = 0,
		.max = 10000,
		.help = "a whole number of microseconds a handler polls for a store read before it sleeps "
			"(0: it never polls), from 0 to 10000",
	},
	{
		.env = "UPAGER_COMPRESS",
		.kind = UPG_OPT_CHOICE,
		.offset = FIELD(compress),
		.help = "a compressor for the RAM pool in front of the store: lz4, zstd or off",
	},
	{
		.env = "UPAGER_COMPRESS_POOL",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(compress_pool),
		.min = 5,
		.max = 95,
		.help = "the most of the RAM budget the compressed pool may hold, in percent, from 5 to 95",
	},
	{
		.env = "UPAGER_FILE_DIRTY_AGE",
		.kind = UPG_OPT_UINT,
		.offset = FIELD(file_dirty_age),
		.min = 1,
		.max = 3600,
		.help = "the most seconds a changed page of a shared file mapping waits before it is written "
			"to the file, from 1 to 3600",
	},
	{
		/* Read by upager_open() itself, in fault-injection builds. */
		.env = "UPAGER_INJECT",
		.kind = UPG_OPT_STRING,
		.offset = NO_FIELD,
		.help = "test builds only (-Dfault_injection=true): store failures to inject, "
			"OP:N[:KIND[:MODE]] rules separated by commas (see src/inject.h)",
	},
	{
		/* Read by upager_open() itself (src/domain.h). */
		.env = "UPAGER_TREE",
		.kind = UPG_OPT_STRING,
		.offset = NO_FIELD,
		.help = "set by upager-run: the budget file of the process tree it started, "
			"whose processes share one RAM budget",
	},
	{
		/* Read by the preload layer only (src/preload_maps.c). */
		.env = "UPAGER_MMAP",
		.kind = UPG_OPT_STRING,
		.offset = NO_FIELD,
		.help = "the smallest private anonymous mmap() the preload library pages: "
			"a size from 4K to 1T such as 64K, or off",
	},
	{
		/* Read by the preload layer only. */
		.env = "UPAGER_REPORT",
		.kind = UPG_OPT_STRING,
		.offset = NO_FIELD,
		.help = "where the preload library writes its statistics report: "
			"1 or stderr, a file path, or json:PATH for JSON in a file",
	},
};

const size_t upg_options_count = sizeof upg_options / sizeof upg_options[0];

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Messages are best effort: a NULL or empty buffer just gets nothing. */
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

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (ascii_lower(*a) != ascii_lower(*b))
			return false;
	return *a == *b;
}

static const struct upg_option *option_by_env(const char *env)
{
	for (size_t i = 0; i < upg_options_count; i++)
		if (strcmp(upg_options[i].env, env) == 0)
			return &upg_options[i];
	return NULL;
}

void upager_config_init(struct upager_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->size = sizeof *cfg;
	cfg->page_size = 4096;
	cfg->ram_budget = 256 * MIB;
	cfg->store_path = NULL;
	cfg->store_max = 0;
	cfg->policy = "s3fifo";
	cfg->handler_threads = 1;
	cfg->fault_around = 16;
	cfg->readahead_max = 256;
	cfg->io_depth = 64;
	cfg->log_level = UPAGER_LOG_WARN;
	cfg->log = NULL;
	cfg->log_arg = NULL;
	cfg->encrypt = 0;
	cfg->poll_us = UPG_POLL_US_DEFAULT;
	cfg->compress = "lz4";
	cfg->compress_pool = UPG_COMPRESS_POOL_DEFAULT;
	cfg->file_dirty_age = UPG_FILE_DIRTY_AGE_DEFAULT;
}

void upg_config_copy(struct upager_config *dst, const struct upager_config *src)
{
	size_t n = src->size < sizeof *dst ? src->size : sizeof *dst;
	memset(dst, 0, sizeof *dst);
	memcpy(dst, src, n);
	dst->size = sizeof *dst;
}

/*
 * Grammar, strict on purpose (a typo must not silently become a different
 * budget):
 *
 *   size   = digits [ "." digits ] [ unit [ "i" ] ] [ "B" ]   (no spaces, no sign)
 *   unit   = K | M | G | T                                  (any case, 1024-based)
 *
 * "i" is only allowed between a unit and "B" ("256MiB"); "MB" also means MiB.
 * Both sides of the point need a digit, so ".5G" and "1.G" are refused.
 * The fraction is applied exactly and then truncated to whole bytes.
 * Syntax is checked before magnitude, so "99999999999999999999Q" is -EINVAL
 * and only well-formed numbers can be -ERANGE.
 */
int upager_parse_size(const char *text, uint64_t *out)
{
	const char *p, *int_start, *int_end, *frac_start = NULL, *frac_end = NULL;
	unsigned shift = 0;
	uint64_t whole = 0, frac = 0;

	if (!text || !out)
		return -EINVAL;

	p = int_start = text;
	while (is_digit(*p))
		p++;
	int_end = p;
	if (int_end == int_start)
		return -EINVAL;
	if (*p == '.') {
		frac_start = ++p;
		while (is_digit(*p))
			p++;
		frac_end = p;
		if (frac_end == frac_start)
			return -EINVAL;
	}
	switch (ascii_lower(*p)) {
	case 'k': shift = 10; p++; break;
	case 'm': shift = 20; p++; break;
	case 'g': shift = 30; p++; break;
	case 't': shift = 40; p++; break;
	default: break;
	}
	if (shift && ascii_lower(*p) == 'i') {
		p++;
		if (ascii_lower(*p) != 'b')
			return -EINVAL;
	}
	if (ascii_lower(*p) == 'b')
		p++;
	if (*p != '\0')
		return -EINVAL;

	for (const char *q = int_start; q < int_end; q++) {
		unsigned d = (unsigned)(*q - '0');
		if (whole > (UINT64_MAX - d) / 10)
			return -ERANGE;
		whole = whole * 10 + d;
	}
	if (whole > UINT64_MAX >> shift)
		return -ERANGE;

	/*
	 * floor(0.F * 2^shift) for fraction digits F, exactly and without wide
	 * arithmetic: multiply F by 2^shift from its last digit up and keep only
	 * the carry out of each decimal place; after the first digit the carry
	 * is the integer part.  The carry stays below 2^shift, so
	 * 9 * 2^40 + carry fits easily, and any number of digits is exact.
	 */
	if (frac_start)
		for (const char *q = frac_end; q-- > frac_start;)
			frac = ((uint64_t)(*q - '0') * (UINT64_C(1) << shift) + frac) / 10;

	whole <<= shift;
	if (frac > UINT64_MAX - whole)
		return -ERANGE;
	*out = whole + frac;
	return 0;
}

int upg_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	char tmp[UPG_SIZE_BUFLEN];
	int n = -1;

	if (!buf)
		return -EINVAL;

	for (int i = 3; i >= 0 && n < 0; i--) {
		unsigned shift = 10 * (unsigned)(i + 1);
		uint64_t unit = UINT64_C(1) << shift;
		uint64_t whole = bytes >> shift, rem = bytes & (unit - 1);

		if (bytes < unit)
			continue;
		if (rem == 0) {
			n = snprintf(tmp, sizeof tmp, "%" PRIu64 "%c", whole, units[i]);
		} else if (rem * 1000 % unit == 0) {
			/* Only when three decimals are exact (rem < 2^40, so
			 * rem * 1000 cannot overflow): the text must parse
			 * back to the same count. */
			uint64_t f = rem * 1000 >> shift;
			int digits = 3;

			while (f % 10 == 0) {
				f /= 10;
				digits--;
			}
			n = snprintf(tmp, sizeof tmp, "%" PRIu64 ".%0*" PRIu64 "%c",
				     whole, digits, f, units[i]);
		}
	}
	if (n < 0)
		n = snprintf(tmp, sizeof tmp, "%" PRIu64, bytes);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	memcpy(buf, tmp, (size_t)n + 1);
	return 0;
}

/* Plain decimal, no sign, no suffix. */
static int parse_uint(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!is_digit(*s))
		return -EINVAL;
	for (; is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (*s != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_loglevel(const char *s, int *out)
{
	for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++) {
		if (ascii_caseeq(s, level_names[i]) || (s[0] == '0' + i && s[1] == '\0')) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The CHOICE rows: the policy, whose words belong to policy.c, and the
 * compressor, whose words belong to pool.c. */
static bool choice_valid(const struct upg_option *o, const char *val)
{
	int algo;
	if (o->offset == FIELD(policy))
		return upg_policy_find(val) != NULL;
	if (o->offset == FIELD(compress))
		return upg_pool_algo_parse(val, &algo) != -EINVAL;
	return false;
}

static const char *choice_names(const struct upg_option *o)
{
	if (o->offset == FIELD(policy))
		return upg_policy_names();
	if (o->offset == FIELD(compress))
		return upg_pool_algo_names();
	return o->help;
}

static void store_number(const struct upg_option *o, struct upager_config *cfg, uint64_t v)
{
	char *field = (char *)cfg + o->offset;

	if (o->max <= UINT32_MAX) {
		uint32_t v32 = (uint32_t)v;
		memcpy(field, &v32, sizeof v32);
	} else {
		memcpy(field, &v, sizeof v);
	}
}

static void format_limit(const struct upg_option *o, uint64_t v, char *buf)
{
	if (o->kind != UPG_OPT_SIZE || upg_format_size(v, buf, UPG_SIZE_BUFLEN) != 0)
		snprintf(buf, UPG_SIZE_BUFLEN, "%" PRIu64, v);
}

/* Parse val by o's kind into cfg; on error say what is wrong and what fits. */
static int apply(const struct upg_option *o, const char *val, struct upager_config *cfg,
		 char *err, size_t errlen)
{
	char *field = (char *)cfg + o->offset;
	char limit[UPG_SIZE_BUFLEN], shown[UPG_ECHO_BUFLEN];
	uint64_t v = 0;
	int rc, level;

	if (*val == '\0') {
		say(err, errlen, "%s is set but empty: expected %s, or unset it for the default",
		    o->env, o->help);
		return -EINVAL;
	}

	switch (o->kind) {
	case UPG_OPT_SIZE:
	case UPG_OPT_UINT:
		rc = o->kind == UPG_OPT_SIZE ? upager_parse_size(val, &v) : parse_uint(val, &v);
		if (rc == -EINVAL)
			break;
		if (rc == -ERANGE || v > o->max) {
			if (o->max == UINT64_MAX) {
				say(err, errlen, "%s=%s is too large: it does not fit in 64 bits",
				    o->env, upg_echo(val, SIZE_MAX, shown));
			} else {
				format_limit(o, o->max, limit);
				say(err, errlen, "%s=%s is too large: expected %s (at most %s)",
				    o->env, upg_echo(val, SIZE_MAX, shown), o->help, limit);
			}
			return -EINVAL;
		}
		if (v < o->min) {
			format_limit(o, o->min, limit);
			say(err, errlen, "%s=%s is too small: expected %s (at least %s)",
			    o->env, upg_echo(val, SIZE_MAX, shown), o->help, limit);
			return -EINVAL;
		}
		store_number(o, cfg, v);
		return 0;
	case UPG_OPT_STRING:
		memcpy(field, &val, sizeof val);
		return 0;
	case UPG_OPT_CHOICE:
		if (!choice_valid(o, val)) {
			say(err, errlen, "%s=%s is not valid: expected one of %s",
			    o->env, upg_echo(val, SIZE_MAX, shown), choice_names(o));
			return -EINVAL;
		}
		memcpy(field, &val, sizeof val);
		return 0;
	case UPG_OPT_LOGLEVEL:
		if (parse_loglevel(val, &level) != 0)
			break;
		memcpy(field, &level, sizeof level);
		return 0;
	}
	say(err, errlen, "%s=%s is not valid: expected %s", o->env, upg_echo(val, SIZE_MAX, shown), o->help);
	return -EINVAL;
}

int upager_config_from_env(struct upager_config *cfg, char *err, size_t errlen)
{
	struct upager_config next;

	if (!cfg || cfg->size < CONFIG_MIN_SIZE) {
		say(err, errlen, "the struct upager_config is not set up: "
		    "call upager_config_init() on it first");
		return -EINVAL;
	}

	/* All or nothing: a bad variable leaves the caller's config as it was. */
	upg_config_copy(&next, cfg);
	for (size_t i = 0; i < upg_options_count; i++) {
		const struct upg_option *o = &upg_options[i];
		const char *val;
		int rc;

		if (o->offset == NO_FIELD)
			continue; /* the preload layer reads and checks those */
		val = secure_getenv(o->env);
		if (!val)
			continue;
		rc = apply(o, val, &next, err, errlen);
		if (rc)
			return rc;
	}
	next.size = cfg->size;
	memcpy(cfg, &next, cfg->size < sizeof next ? cfg->size : sizeof next);
	return 0;
}

/* Check a number against its row's limits; the help names the accepted range. */
static int check_range(uint64_t v, const char *what, const char *env, const char *field,
		       char *err, size_t errlen)
{
	const struct upg_option *o = option_by_env(env);

	if (v >= o->min && v <= o->max)
		return 0;
	say(err, errlen, "%s (%" PRIu64 ") is out of range: set %s / %s to %s",
	    what, v, env, field, o->help);
	return -EINVAL;
}

int upg_config_check(const struct upager_config *cfg, char *err, size_t errlen)
{
	char a[UPG_SIZE_BUFLEN], b[UPG_SIZE_BUFLEN], shown[UPG_ECHO_BUFLEN];
	int rc;

	if (!cfg || cfg->size < CONFIG_MIN_SIZE) {
		say(err, errlen, "the struct upager_config is not set up (size %u, need at least %zu): "
		    "call upager_config_init() on it first",
		    cfg ? (unsigned)cfg->size : 0u, CONFIG_MIN_SIZE);
		return -EINVAL;
	}
	struct upager_config full;
	upg_config_copy(&full, cfg);
	cfg = &full;

	/* Page size first: the budget and store checks are in pages. */
	if (cfg->page_size < PAGE_MIN || cfg->page_size > PAGE_MAX ||
	    (cfg->page_size & (cfg->page_size - 1)) != 0) {
		say(err, errlen, "the page size (%" PRIu32 ") is not valid: "
		    "set UPAGER_PAGE / page_size to %s",
		    cfg->page_size, option_by_env("UPAGER_PAGE")->help);
		return -EINVAL;
	}

	if (cfg->ram_budget < cfg->page_size) {
		say(err, errlen, "the RAM budget (%" PRIu64 " bytes) must be at least one page "
		    "(%" PRIu32 " bytes): raise UPAGER_RAM / ram_budget",
		    cfg->ram_budget, cfg->page_size);
		return -EINVAL;
	}

	if (cfg->store_max != 0 && cfg->store_max < STORE_MAX_MIN) {
		upg_format_size(cfg->store_max, a, sizeof a);
		say(err, errlen, "the store limit (%s) must be 0 (meaning 64G) or at least 1M: "
		    "raise UPAGER_STORE_MAX / store_max", a);
		return -EINVAL;
	}
	if (cfg->store_max != 0 && cfg->store_max < cfg->page_size) {
		/* Otherwise not one page could ever be evicted. */
		upg_format_size(cfg->store_max, a, sizeof a);
		upg_format_size(cfg->page_size, b, sizeof b);
		say(err, errlen, "the store limit (%s) is smaller than one page (%s): "
		    "raise UPAGER_STORE_MAX / store_max or lower UPAGER_PAGE / page_size", a, b);
		return -EINVAL;
	}

	if (cfg->store_path && cfg->store_path[0] == '\0') {
		say(err, errlen, "the store path is empty: leave store_path NULL (UPAGER_STORE unset) "
		    "for a temporary file in $TMPDIR, or set UPAGER_STORE / store_path to a "
		    "directory, regular file or block device");
		return -EINVAL;
	}

	if (!cfg->policy) {
		say(err, errlen, "no replacement policy is set: set UPAGER_POLICY / policy to one of %s",
		    upg_policy_names());
		return -EINVAL;
	}
	if (!upg_policy_find(cfg->policy)) {
		say(err, errlen, "unknown replacement policy \"%s\": set UPAGER_POLICY / policy "
		    "to one of %s", upg_echo(cfg->policy, SIZE_MAX, shown), upg_policy_names());
		return -EINVAL;
	}

	int algo;
	rc = upg_pool_algo_parse(cfg->compress, &algo);
	if (rc == -ENOTSUP) {
		say(err, errlen, "compressor \"zstd\" asked for, but this build of upager has no libzstd: "
		    "install libzstd-dev and rebuild, or set UPAGER_COMPRESS / compress to lz4 or off");
		return -ENOTSUP;
	}
	if (rc) {
		say(err, errlen, "unknown compressor \"%s\": set UPAGER_COMPRESS / compress to one of %s",
		    upg_echo(cfg->compress, SIZE_MAX, shown), upg_pool_algo_names());
		return -EINVAL;
	}
	if (cfg->compress_pool) {
		rc = check_range(cfg->compress_pool, "the compressed pool's share of the budget",
				 "UPAGER_COMPRESS_POOL", "compress_pool", err, errlen);
		if (rc)
			return rc;
	}

	if (cfg->file_dirty_age) {
		rc = check_range(cfg->file_dirty_age, "the age of a file mapping's changed pages",
				 "UPAGER_FILE_DIRTY_AGE", "file_dirty_age", err, errlen);
		if (rc)
			return rc;
	}

	rc = check_range(cfg->handler_threads, "the number of handler threads",
			 "UPAGER_HANDLERS", "handler_threads", err, errlen);
	if (!rc)
		rc = check_range(cfg->fault_around, "the fault-around page count",
				 "UPAGER_FAULT_AROUND", "fault_around", err, errlen);
	if (!rc)
		rc = check_range(cfg->readahead_max, "the readahead page count",
				 "UPAGER_READAHEAD", "readahead_max", err, errlen);
	if (!rc)
		rc = check_range(cfg->io_depth, "the I/O depth",
				 "UPAGER_IO_DEPTH", "io_depth", err, errlen);
	if (!rc)
		rc = check_range(cfg->encrypt, "the encryption switch",
				 "UPAGER_ENCRYPT", "encrypt", err, errlen);
	if (!rc)
		rc = check_range(cfg->poll_us, "the completion polling time",
				 "UPAGER_POLL_US", "poll_us", err, errlen);
	if (rc)
		return rc;

	if (cfg->log_level < UPAGER_LOG_ERROR || cfg->log_level > UPAGER_LOG_DEBUG) {
		say(err, errlen, "the log level (%d) is out of range: set log_level to "
		    "UPAGER_LOG_ERROR (0) .. UPAGER_LOG_DEBUG (3), or UPAGER_LOG to error, warn, info or debug",
		    cfg->log_level);
		return -EINVAL;
	}
	return 0;
}

UPAGER_API int upager_config_validate(const struct upager_config *cfg, char *err, size_t errlen)
{
	return upg_config_check(cfg, err, errlen);
}
