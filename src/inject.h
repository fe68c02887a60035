/* SPDX-License-Identifier: MIT */
/*
 * Fault injection, for tests: in a build configured with
 * -Dfault_injection=true, UPAGER_INJECT makes chosen store operations fail.
 *
 *   UPAGER_INJECT = rule [ "," rule ]...
 *   rule          = op ":" N [ ":" kind [ ":" mode ] ]
 *   op            = read | write | extend | copy | tmpfile
 *   kind          = eio | enospc | short        (default eio)
 *   mode          = once | always               (default once)
 *
 * The Nth call (counted from 1 for each op, from upager_open on) fails;
 * "always" fails it and every later one.  read and write are store I/Os as
 * they complete (short: half the bytes arrive), extend is a growth of the
 * store file (eio or enospc), and copy is a handler's UFFDIO_COPY (any kind
 * becomes EFAULT, an error the runtime cannot recover from, to test that
 * it stops with a message instead of hanging), and tmpfile is the store's
 * O_TMPFILE open (any kind becomes EOPNOTSUPP, as on a filesystem without
 * O_TMPFILE, to test the fallback to a named file unlinked at once).
 *
 * The store is never fsync'ed (its contents die with the process), so there
 * is no fsync to fail.  In other builds the hooks compile to nothing and
 * UPAGER_INJECT is refused with a message.
 */
#ifndef UPG_INJECT_H
#define UPG_INJECT_H

#include <stddef.h>

#include "upg_config.h"

enum upg_inj_op { UPG_INJ_READ, UPG_INJ_WRITE, UPG_INJ_EXTEND, UPG_INJ_COPY, UPG_INJ_TMPFILE, UPG_INJ_OPS };

/* Read UPAGER_INJECT and reset the counters; -EINVAL with a message for a
 * malformed rule or a build without fault injection. */
int upg_inject_setup(char *err, size_t errlen);

#ifdef UPG_FAULT_INJECTION
/* The result to act on for an operation that returned res (bytes, or
 * -errno) out of len bytes asked for. */
int upg_inject(enum upg_inj_op op, int res, size_t len);
/* Calls of op counted since the last setup (for the tests' sweeps). */
unsigned long long upg_inject_calls(enum upg_inj_op op);
#else
static inline int upg_inject(enum upg_inj_op op, int res, size_t len)
{
	(void)op;
	(void)len;
	return res;
}
#endif

#endif
