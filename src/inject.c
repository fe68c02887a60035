/* SPDX-License-Identifier: MIT */
#include "inject.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upg_config.h"

#ifdef UPG_FAULT_INJECTION

#define RULES_MAX 8

enum kind { K_EIO, K_ENOSPC, K_SHORT };

struct rule {
	enum upg_inj_op op;
	enum kind kind;
	bool always;
	uint64_t n;
};

static struct rule rules[RULES_MAX];
static unsigned nrules;
static uint64_t calls[UPG_INJ_OPS];

static const char *const op_names[UPG_INJ_OPS] = { "read", "write", "extend", "copy", "tmpfile" };
static const char *const kind_names[] = { "eio", "enospc", "short" };

static int word(const char *s, size_t len, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(names[i]) == len && !strncmp(s, names[i], len))
			return (int)i;
	return -1;
}

static int parse_rule(const char *s, size_t len, struct rule *r, char *err, size_t errlen)
{
	const char *f[4];
	size_t fl[4], nf = 0;
	const char *end = s + len;
	while (nf < 4) {
		const char *c = memchr(s, ':', (size_t)(end - s));
		f[nf] = s;
		fl[nf++] = (size_t)((c ? c : end) - s);
		if (!c)
			break;
		s = c + 1;
	}
	if (nf < 2 || (nf == 4 && f[3] + fl[3] != end))
		goto bad;
	int op = word(f[0], fl[0], op_names, UPG_INJ_OPS);
	if (op < 0) {
		if (fl[0] == 5 && !strncmp(f[0], "fsync", 5)) {
			snprintf(err, errlen, "UPAGER_INJECT: upager never calls fsync (the store's contents "
				 "die with the process); inject read, write, extend, copy or tmpfile failures instead");
			return -EINVAL;
		}
		goto bad;
	}
	uint64_t n = 0;
	if (!fl[1] || fl[1] > 18)
		goto bad;
	for (size_t i = 0; i < fl[1]; i++) {
		if (f[1][i] < '0' || f[1][i] > '9')
			goto bad;
		n = n * 10 + (uint64_t)(f[1][i] - '0');
	}
	if (!n)
		goto bad;
	int kind = K_EIO;
	if (nf >= 3 && (kind = word(f[2], fl[2], kind_names, 3)) < 0)
		goto bad;
	if (op == UPG_INJ_EXTEND && kind == K_SHORT) {
		snprintf(err, errlen, "UPAGER_INJECT: a store extension cannot be short: use eio or enospc");
		return -EINVAL;
	}
	bool always = false;
	if (nf == 4) {
		if (fl[3] == 6 && !strncmp(f[3], "always", 6))
			always = true;
		else if (!(fl[3] == 4 && !strncmp(f[3], "once", 4)))
			goto bad;
	}
	*r = (struct rule){ .op = (enum upg_inj_op)op, .kind = (enum kind)kind, .always = always, .n = n };
	return 0;
bad:
	snprintf(err, errlen, "UPAGER_INJECT rule '%.*s' is not valid: expected OP:N[:KIND[:MODE]] with OP "
		 "read, write, extend, copy or tmpfile, N from 1, KIND eio, enospc or short, MODE once or always",
		 (int)(len > 64 ? 64 : len), end - len);
	return -EINVAL;
}

int upg_inject_setup(char *err, size_t errlen)
{
	unsigned n = 0;
	struct rule next[RULES_MAX];
	const char *spec = secure_getenv("UPAGER_INJECT");
	if (spec && *spec) {
		const char *s = spec;
		for (;;) {
			const char *c = strchr(s, ',');
			size_t len = c ? (size_t)(c - s) : strlen(s);
			if (n == RULES_MAX) {
				snprintf(err, errlen, "UPAGER_INJECT: at most %d rules", RULES_MAX);
				return -EINVAL;
			}
			int rc = parse_rule(s, len, &next[n++], err, errlen);
			if (rc)
				return rc;
			if (!c)
				break;
			s = c + 1;
		}
	}
	memcpy(rules, next, sizeof next[0] * n);
	__atomic_store_n(&nrules, n, __ATOMIC_RELEASE);
	for (int i = 0; i < UPG_INJ_OPS; i++)
		__atomic_store_n(&calls[i], 0, __ATOMIC_RELAXED);
	return 0;
}

unsigned long long upg_inject_calls(enum upg_inj_op op)
{
	return __atomic_load_n(&calls[op], __ATOMIC_RELAXED);
}

int upg_inject(enum upg_inj_op op, int res, size_t len)
{
	unsigned nr = __atomic_load_n(&nrules, __ATOMIC_ACQUIRE);
	if (!nr)
		return res;
	uint64_t call = __atomic_add_fetch(&calls[op], 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < nr; i++) {
		const struct rule *r = &rules[i];
		if (r->op != op || call < r->n || (call > r->n && !r->always))
			continue;
		if (op == UPG_INJ_COPY)
			return -EFAULT;
		if (op == UPG_INJ_TMPFILE)
			return -EOPNOTSUPP;
		switch (r->kind) {
		case K_EIO:
			return -EIO;
		case K_ENOSPC:
			return -ENOSPC;
		case K_SHORT:
			return res > 0 ? (int)((size_t)res / 2 & ~(size_t)511) : (int)(len / 2 & ~(size_t)511);
		}
	}
	return res;
}

#else

int upg_inject_setup(char *err, size_t errlen)
{
	const char *spec = secure_getenv("UPAGER_INJECT");
	if (spec && *spec) {
		snprintf(err, errlen, "UPAGER_INJECT is set but this upager was built without fault injection: "
			 "unset it, or rebuild with meson setup -Dfault_injection=true");
		return -EINVAL;
	}
	return 0;
}

#endif
