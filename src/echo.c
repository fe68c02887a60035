/* SPDX-License-Identifier: MIT */
#include "echo.h"

#include <stdbool.h>
#include <string.h>

const char *upg_echo(const char *s, size_t n, char buf[UPG_ECHO_BUFLEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ctl = c < 0x20 || c == 0x7f;

		if (o + (ctl ? 4 : 1) > UPG_ECHO_MAX)
			break;
		if (ctl) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	if (i < n && s[i]) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}
