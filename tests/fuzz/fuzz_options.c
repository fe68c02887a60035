/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: upager_config_from_env() and upager_config_validate().
 *
 * The first input byte picks a mode:
 *   even: an environment.  The rest is a list of entries separated by
 *         newlines; an entry whose first byte is below the number of options
 *         becomes that option's UPAGER_ variable with the rest as its value,
 *         any other entry is used as it stands ("NAME=VALUE" or garbage).
 *         The environment is swapped in through `environ` for the call only
 *         (setenv() would keep every value it was ever given).
 *   odd:  a struct upager_config built from the bytes, checked by
 *         upager_config_validate() against an independent statement of the
 *         documented limits.
 * The message buffer has exactly the length the input asks for, so a write
 * past it is caught by AddressSanitizer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "upager.h"

extern char **environ;

#define MAX_ENTRIES 32

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_options: %s: ", #cond);          \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

struct input {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct input *in, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && in->left; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

/* A message buffer of exactly len bytes (len 0: a guard byte that must stay). */
static char *msg_buffer(size_t len)
{
	char *b = malloc(len ? len : 1);

	if (b)
		memset(b, '#', len ? len : 1);
	return b;
}

static void check_message(int rc, const char *err, size_t errlen, const char *must)
{
	if (errlen == 0) {
		CHECK(err[0] == '#', "a zero-length message buffer was written");
		return;
	}
	if (rc == 0)
		return; /* success leaves the buffer as it was */
	CHECK(memchr(err, '\0', errlen), "the message is not terminated within %zu bytes", errlen);
	CHECK(err[0], "an error with an empty message");
	CHECK(!strchr(err, '\n'), "the message is not one line: %s", err);
	/* Long enough to hold the start of any message: it names the
	 * variable or field to change (or upager_config_init). */
	if (errlen >= 128 && must)
		CHECK(strcasestr(err, must), "the message does not mention %s: %s", must, err);
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The documented limits of a whole configuration, stated once more. */
static bool oracle_valid(const struct upager_config *c)
{
	if (c->size < sizeof *c)
		return false;
	if (c->page_size < 4096 || c->page_size > (2u << 20) || !is_pow2(c->page_size))
		return false;
	if (c->ram_budget < c->page_size)
		return false;
	if (c->store_max && (c->store_max < (1u << 20) || c->store_max < c->page_size))
		return false;
	if (c->store_path && !c->store_path[0])
		return false;
	if (!c->policy || (strcmp(c->policy, "s3fifo") && strcmp(c->policy, "clock") && strcmp(c->policy, "fifo")))
		return false;
	if (c->handler_threads < 1 || c->handler_threads > 16)
		return false;
	if (c->fault_around < 1 || c->fault_around > 512)
		return false;
	if (c->readahead_max < 1 || c->readahead_max > 1024)
		return false;
	if (c->io_depth < 1 || c->io_depth > 1024)
		return false;
	return c->log_level >= UPAGER_LOG_ERROR && c->log_level <= UPAGER_LOG_DEBUG;
}

static void check_validate(const struct upager_config *cfg, size_t errlen)
{
	char *err = msg_buffer(errlen);
	int rc;

	if (!err)
		return;
	rc = upager_config_validate(cfg, err, errlen);
	CHECK(rc == 0 || rc == -EINVAL, "validate returned %d", rc);
	CHECK((rc == 0) == oracle_valid(cfg), "validate returned %d but the limits say %s: %s", rc,
	      oracle_valid(cfg) ? "valid" : "invalid", errlen ? err : "");
	check_message(rc, err, errlen, "upager_");
	CHECK(upager_config_validate(cfg, NULL, 0) == rc, "the result depends on the buffer");
	CHECK(upager_config_validate(cfg, NULL, 100) == rc, "the result depends on the buffer");
	free(err);
}

/* A NUL-terminated copy of the next bytes up to a zero byte, or NULL. */
static char *take_string(struct input *in)
{
	size_t n = 0;
	char *s;

	if (!in->left)
		return NULL;
	while (n < in->left && in->p[n])
		n++;
	s = malloc(n + 1);
	if (s) {
		memcpy(s, in->p, n);
		s[n] = '\0';
	}
	in->p += n < in->left ? n + 1 : n;
	in->left -= n < in->left ? n + 1 : n;
	return s;
}

static uint32_t pick32(struct input *in, const uint32_t *near, size_t n)
{
	uint8_t how = (uint8_t)take(in, 1);

	if (how < 192)
		return near[how % n] + (uint32_t)(int8_t)take(in, 1) * (how & 1);
	return (uint32_t)take(in, 4);
}

static void struct_mode(struct input *in)
{
	static const uint32_t sizes[] = { 0, 1, 4096, 4095, 8192, 65536, 2u << 20, (2u << 20) + 1, 3000 };
	static const uint32_t counts[] = { 0, 1, 2, 16, 17, 512, 513, 1024, 1025 };
	struct upager_config cfg;
	char *path, *policy;
	size_t errlen = (size_t)take(in, 1) * 2;
	uint8_t flags = (uint8_t)take(in, 1);

	upager_config_init(&cfg);
	switch (flags & 3) {
	case 0: break;
	case 1: cfg.size = (uint32_t)take(in, 4); break;
	case 2: cfg.size -= 1; break;
	case 3: cfg.size += 16; break;
	}
	cfg.page_size = pick32(in, sizes, sizeof sizes / sizeof sizes[0]);
	cfg.ram_budget = flags & 4 ? take(in, 8) : pick32(in, sizes, sizeof sizes / sizeof sizes[0]);
	cfg.store_max = flags & 8 ? take(in, 8) : (uint64_t)pick32(in, sizes, sizeof sizes / sizeof sizes[0]) << 8;
	cfg.handler_threads = pick32(in, counts, sizeof counts / sizeof counts[0]);
	cfg.fault_around = pick32(in, counts, sizeof counts / sizeof counts[0]);
	cfg.readahead_max = pick32(in, counts, sizeof counts / sizeof counts[0]);
	cfg.io_depth = pick32(in, counts, sizeof counts / sizeof counts[0]);
	cfg.log_level = (int)(int8_t)take(in, 1);
	path = take_string(in);
	policy = take_string(in);
	cfg.store_path = flags & 16 ? path : NULL;
	cfg.policy = flags & 32 ? policy : flags & 64 ? NULL : "clock";
	check_validate(&cfg, errlen);
	free(path);
	free(policy);
}

static void env_mode(struct input *in)
{
	char *entries[MAX_ENTRIES + 1];
	size_t n = 0, errlen = (size_t)take(in, 1) * 2;
	struct upager_config cfg, before;
	char **saved = environ, *err;
	int rc;

	while (in->left && n < MAX_ENTRIES) {
		const uint8_t *nl = memchr(in->p, '\n', in->left);
		size_t len = nl ? (size_t)(nl - in->p) : in->left;
		const char *name = NULL;
		size_t skip = 0;
		char *e;

		if (len && in->p[0] < upg_options_count) {
			name = upg_options[in->p[0]].env;
			skip = 1;
		}
		e = malloc((name ? strlen(name) + 1 : 0) + len - skip + 1);
		if (!e)
			break;
		e[0] = '\0';
		if (name) {
			strcpy(e, name);
			strcat(e, "=");
		}
		/* Bytes after a NUL inside an entry are not part of it. */
		strncat(e, (const char *)in->p + skip, len - skip);
		entries[n++] = e;
		in->p += nl ? len + 1 : len;
		in->left -= nl ? len + 1 : len;
	}
	entries[n] = NULL;

	err = msg_buffer(errlen);
	if (!err)
		goto out;
	upager_config_init(&cfg);
	before = cfg;
	environ = entries;
	rc = upager_config_from_env(&cfg, err, errlen);
	CHECK(rc == 0 || rc == -EINVAL, "from_env returned %d", rc);
	check_message(rc, err, errlen, "UPAGER_");
	if (rc) {
		CHECK(!memcmp(&cfg, &before, sizeof cfg), "a failed from_env changed the config");
	} else {
		/* Every numeric row that is set holds the value it reads as. */
		for (size_t i = 0; i < upg_options_count; i++) {
			const struct upg_option *o = &upg_options[i];
			const char *v = getenv(o->env);
			uint64_t want, got = 0;

			if (!v || o->offset == (size_t)-1 || o->kind != UPG_OPT_SIZE)
				continue;
			CHECK(upager_parse_size(v, &want) == 0, "%s=%s accepted but not a size", o->env, v);
			if (o->max <= UINT32_MAX) {
				uint32_t g32;
				memcpy(&g32, (char *)&cfg + o->offset, sizeof g32);
				got = g32;
			} else {
				memcpy(&got, (char *)&cfg + o->offset, sizeof got);
			}
			CHECK(got == want && want >= o->min && want <= o->max, "%s=%s stored as %llu", o->env, v,
			      (unsigned long long)got);
		}
	}
	environ = saved;
	check_validate(&cfg, errlen);
	free(err);
out:
	for (size_t i = 0; i < n; i++)
		free(entries[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	if (!size)
		return 0;
	if (take(&in, 1) & 1)
		struct_mode(&in);
	else
		env_mode(&in);
	return 0;
}
