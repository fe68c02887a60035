/* SPDX-License-Identifier: MIT */
/*
 * A value as a message may show it.  Values come from the environment, the
 * command line or the caller and may hold anything: a newline would break a
 * one-line message, an escape would reach the user's terminal, and a long
 * value would push the name of the setting to change out of a short
 * buffer.  So control characters are shown as \xNN, at most UPG_ECHO_MAX
 * characters of that, then "..." when there is more.  Used by the library's
 * option messages and by upager-run's.
 */
#ifndef UPG_ECHO_H
#define UPG_ECHO_H

#include <stddef.h>

#define UPG_ECHO_MAX 64
/* UPG_ECHO_MAX characters, then "..." and the NUL. */
#define UPG_ECHO_BUFLEN (UPG_ECHO_MAX + 4)

/* The first n bytes of s (up to its NUL; SIZE_MAX for all of it), shown. */
const char *upg_echo(const char *s, size_t n, char buf[UPG_ECHO_BUFLEN]);

#endif
