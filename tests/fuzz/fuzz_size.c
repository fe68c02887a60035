/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: upager_parse_size() and upg_format_size().
 *
 * Beyond "does not crash", every input is checked against a second,
 * independent reading of the grammar (a POSIX regular expression) and of the
 * arithmetic (128-bit), and every accepted size must print and parse back to
 * itself.  Any disagreement aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "upager.h"

#define SENTINEL UINT64_C(0x5eed5eed5eed5eed)
#define MAX_TEXT 512

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_size: %s: ", #cond);             \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

typedef unsigned __int128 u128;

static regex_t grammar;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* The grammar documented above upager_parse_size(), written again. */
	if (regcomp(&grammar, "^[0-9]+(\\.[0-9]+)?([kKmMgGtT]([iI]?[bB])?|[bB])?$",
		    REG_EXTENDED | REG_NOSUB))
		abort();
	return 0;
}

static unsigned unit_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	case 't': case 'T': return 40;
	default: return 0;
	}
}

/* Check a well-formed text's result against 128-bit arithmetic. */
static void check_value(const char *s, int rc, uint64_t v)
{
	const u128 cap = (u128)1 << 80; /* far above 2^64, far below overflow */
	u128 whole = 0, frac_num = 0, frac_den = 1;
	size_t frac_digits = 0, extra_digits = 0;
	const char *p = s;
	unsigned shift;

	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (unsigned)(*p - '0');
		if (whole > cap)
			whole = cap;
	}
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++) {
			/* 25 digits: 10^25 * 2^40 still fits in 128 bits. */
			if (frac_digits < 25) {
				frac_num = frac_num * 10 + (unsigned)(*p - '0');
				frac_den *= 10;
				frac_digits++;
			} else if (*p != '0') {
				extra_digits++;
			}
		}
	shift = unit_shift(*p);

	/* The fraction of the first 25 digits, and the most the rest adds
	 * (less than one byte). */
	u128 lo = (whole << shift) + (frac_num << shift) / frac_den;
	u128 hi = lo + (extra_digits ? 1 : 0);

	if (lo > UINT64_MAX) {
		CHECK(rc == -ERANGE, "\"%s\": rc %d, expected -ERANGE", s, rc);
		return;
	}
	if (hi > UINT64_MAX) {
		CHECK(rc == -ERANGE || (rc == 0 && v == (uint64_t)lo), "\"%s\": rc %d", s, rc);
		return;
	}
	CHECK(rc == 0, "\"%s\": rc %d, expected 0", s, rc);
	CHECK(v >= lo && v <= hi, "\"%s\": parsed %llu, expected %llu..%llu", s,
	      (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
}

static void check_format(uint64_t v)
{
	char buf[UPG_SIZE_BUFLEN], small[UPG_SIZE_BUFLEN];
	uint64_t back = SENTINEL;
	size_t need;

	CHECK(upg_format_size(v, buf, sizeof buf) == 0, "%llu does not format", (unsigned long long)v);
	need = strlen(buf) + 1;
	CHECK(upager_parse_size(buf, &back) == 0 && back == v, "%llu prints as \"%s\", which reads as %llu",
	      (unsigned long long)v, buf, (unsigned long long)back);
	/* One byte short: refused, and the buffer is left alone. */
	memset(small, 'x', sizeof small);
	CHECK(upg_format_size(v, small, need - 1) == -ENOSPC, "%llu fits in %zu bytes", (unsigned long long)v,
	      need - 1);
	CHECK(small[0] == 'x', "a refused format wrote its buffer");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = size < MAX_TEXT ? size : MAX_TEXT;
	char *s = malloc(len + 1);
	uint64_t v = SENTINEL;
	int rc, wellformed;

	if (!s)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0'; /* text stops at the first NUL byte, as a C string does */

	rc = upager_parse_size(s, &v);
	CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE, "\"%s\": rc %d", s, rc);
	if (rc)
		CHECK(v == SENTINEL, "\"%s\": failed with %d but wrote its output", s, rc);

	wellformed = regexec(&grammar, s, 0, NULL, 0) == 0;
	CHECK(wellformed == (rc != -EINVAL), "\"%s\": rc %d, but the grammar says %s", s, rc,
	      wellformed ? "well-formed" : "malformed");
	if (wellformed)
		check_value(s, rc, v);
	if (rc == 0)
		check_format(v);

	/* The input's first 8 bytes as a number, to reach every format path. */
	if (size >= 8) {
		uint64_t n;
		memcpy(&n, data, sizeof n);
		check_format(n);
	}
	free(s);
	return 0;
}
