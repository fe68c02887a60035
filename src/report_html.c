/* SPDX-License-Identifier: MIT */
/*
 * The HTML report (upager-run --report=html:FILE): the text report, the
 * forecast's curve (refills against the budget) and the run's timeline
 * (resident memory, refills per second, the stall share), as inline SVG:
 * one file, no scripts, readable offline.
 */
#include "report_html.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define W 720
#define H 200
#define L 70   /* left margin, for the y labels */
#define B 30   /* bottom margin */

struct out {
	char *p;
	size_t len, n;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	if (o->n >= o->len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(o->p + o->n, o->len - o->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->n += (size_t)k;
	if (o->n >= o->len)
		o->n = o->len - 1;
}

static void put_escaped(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			put(o, "&lt;");
		else if (*s == '>')
			put(o, "&gt;");
		else if (*s == '&')
			put(o, "&amp;");
		else
			put(o, "%c", *s);
	}
}

/* v, short: 3 significant digits, K and M for large values. */
static const char *num(char *b, double v)
{
	if (v >= 1e7)
		snprintf(b, 16, "%.3gM", v / 1e6);
	else if (v >= 1e4)
		snprintf(b, 16, "%.3gK", v / 1e3);
	else
		snprintf(b, 16, "%.3g", v);
	return b;
}

/* One panel: a polyline of n points (x[i], y[i]) scaled to the panel, axis
 * labels, and a dashed horizontal line at mark (if > 0). */
static void panel(struct out *o, const char *title, const char *xunit, const char *yunit, const double *x,
		  const double *y, unsigned n, double mark, const char *mark_label, bool dots)
{
	double xmax = 0, ymax = mark;
	for (unsigned i = 0; i < n; i++) {
		if (x[i] > xmax)
			xmax = x[i];
		if (y[i] > ymax)
			ymax = y[i];
	}
	if (xmax <= 0)
		xmax = 1;
	if (ymax <= 0)
		ymax = 1;
	ymax *= 1.1;
	put(o, "<h3>");
	put_escaped(o, title);
	put(o, "</h3>\n<svg width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\" "
	       "style=\"font: 11px sans-serif\">\n", W, H);
	put(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#000\"/>\n", L, H - B, W - 10, H - B);
	put(o, "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" stroke=\"#000\"/>\n", L, L, H - B);
	for (int k = 0; k <= 4; k++) {
		double fy = H - B - (H - B - 10) * k / 4.0, fx = L + (W - 10 - L) * k / 4.0;
		char b1[16], b2[16];
		put(o, "<text x=\"%d\" y=\"%.0f\" text-anchor=\"end\">%s</text>\n", L - 4, fy + 4, num(b1, ymax * k / 4));
		put(o, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", fx, H - B + 14,
		    num(b2, xmax * k / 4));
	}
	put(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", W - 10, H - 2, xunit);
	put(o, "<text x=\"%d\" y=\"20\">%s</text>\n", L + 6, yunit);
	if (mark > 0) {
		double my = H - B - (H - B - 10) * mark / ymax;
		put(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>"
		       "<text x=\"%d\" y=\"%.1f\" fill=\"#c00\" text-anchor=\"end\">%s</text>\n",
		    L, my, W - 10, my, W - 12, my - 3, mark_label);
	}
	put(o, "<polyline fill=\"none\" stroke=\"#06c\" stroke-width=\"1.5\" points=\"");
	for (unsigned i = 0; i < n; i++)
		put(o, "%.1f,%.1f ", L + (W - 10 - L) * x[i] / xmax, H - B - (H - B - 10) * y[i] / ymax);
	put(o, "\"/>\n");
	if (dots)
		for (unsigned i = 0; i < n; i++)
			put(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#06c\"/>\n", L + (W - 10 - L) * x[i] / xmax,
			    H - B - (H - B - 10) * y[i] / ymax);
	put(o, "</svg>\n");
}

int upg_html_report(upager_t *up, const char *title, const char *text, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	if (!len)
		return -1;
	buf[0] = 0;
	static struct upg_timeline tl;  /* a copy, taken under the lock; too big for the stack of every caller */
	pthread_mutex_lock(&up->lock);
	tl = up->tl;
	pthread_mutex_unlock(&up->lock);

	put(&o, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>upager report: ");
	put_escaped(&o, title);
	put(&o, "</title></head>\n<body style=\"font-family: sans-serif; max-width: 760px\">\n<h2>upager report: ");
	put_escaped(&o, title);
	put(&o, "</h2>\n");

	/* The forecast: the run's own point, then the estimates. */
	static const unsigned quarters[] = { 4, 5, 6, 8, 10, 12, 16 };
	double bx[10], by[10];
	unsigned nb = 0;
	struct upager_forecast f = { .size = sizeof f };
	uint64_t footprint = 0, knee = 0;
	for (unsigned i = 0; i < sizeof quarters / sizeof quarters[0]; i++) {
		if (upager_forecast(up, up->budget * quarters[i] / 4, &f))
			break;
		footprint = f.footprint, knee = f.knee;
		if (knee < footprint && nb && bx[nb - 1] < (double)knee / (1 << 20) && knee < f.ram_budget &&
		    !upager_forecast(up, knee, &f)) {
			bx[nb] = (double)knee / (1 << 20);  /* the knee among the points */
			by[nb++] = (double)f.refills;
			upager_forecast(up, up->budget * quarters[i] / 4, &f);
		}
		bx[nb] = (double)f.ram_budget / (1 << 20);
		by[nb++] = (double)f.refills;
	}
	if (nb && footprint > up->budget * 4) {
		bx[nb] = (double)footprint / (1 << 20);
		by[nb++] = 0;
	}
	if (nb && by[0] > 0) {
		panel(&o, "With more RAM: refills (faults that read a page back), at this run's budget (first point) and "
			  "estimated from reuse distances above it",
		      "budget, MiB", "refills", bx, by, nb, 0, "", true);
		put(&o, "<p>Estimates: a refill whose page had less data evicted after it than the extra RAM "
			"would not have happened (exact for least-recently-used eviction), except for hot pages "
			"that pass through the policy's main queue, which come back in proportion to RAM. The last "
			"point, where no refill of a page evicted here remains, is at %.0f MiB. ",
		    (double)footprint / (1 << 20));
		if (knee < footprint)
			put(&o, "The knee, below which refills climb steeply, is at %.0f MiB.</p>\n",
			    (double)knee / (1 << 20));
		else
			put(&o, "There is no knee: refills fall evenly with more RAM.</p>\n");
	}

	/* The timeline. */
	if (tl.n >= 2) {
		static double t[UPG_TL_MAX], r[UPG_TL_MAX], q[UPG_TL_MAX], s[UPG_TL_MAX];
		unsigned n = 0;
		for (unsigned i = 1; i < tl.n; i++) {
			const struct upg_tl_sample *a = &tl.s[i - 1], *b = &tl.s[i];
			double dt = (double)(b->t_ns - a->t_ns) / 1e9;
			if (dt <= 0)
				continue;
			t[n] = (double)b->t_ns / 1e9;
			r[n] = (double)b->resident / (1 << 20);
			q[n] = (double)(b->refills - a->refills) / dt;
			s[n] = 100.0 * (double)(b->stall_some_ns - a->stall_some_ns) / 1e9 / dt;
			if (s[n] > 100)
				s[n] = 100;
			n++;
		}
		panel(&o, "Resident memory over the run", "seconds", "MiB", t, r, n, (double)up->budget / (1 << 20),
		      "budget", false);
		panel(&o, "Refills per second", "seconds", "per s", t, q, n, 0, "", false);
		panel(&o, "Stall share: time some thread waited on a fault", "seconds", "%", t, s, n, 0, "", false);
	}

	put(&o, "<h3>The report</h3>\n<pre>");
	put_escaped(&o, text);
	put(&o, "</pre>\n</body></html>\n");
	return (int)o.n;
}
