/* SPDX-License-Identifier: MIT */
/* The HTML report: the text report with the forecast's curve and the run's
 * timeline as inline SVG (see report_html.c). */
#ifndef UPG_REPORT_HTML_H
#define UPG_REPORT_HTML_H

#include <stddef.h>

#include "upager.h"

/* Write the page for up, titled title, around the text report text, into
 * buf (NUL-terminated, cut at len).  Its length. */
int upg_html_report(upager_t *up, const char *title, const char *text, char *buf, size_t len);

#endif
