/* SPDX-License-Identifier: MIT */
/*
 * Stall figures: see stall.h.
 */
#include "stall.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS_PER_S 1000000000ULL

void upg_stall_init(struct upg_stall *s, uint64_t now_ns)
{
	memset(s, 0, sizeof *s);
	s->start_ns = now_ns;
}

struct edge {
	uint64_t at;
	int step;  /* +1: a wait begins, -1: one ends */
};

static int cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at;
}

static void bucket_add(struct upg_stall *s, uint64_t end, uint64_t some, uint64_t full)
{
	uint64_t sec = end / NS_PER_S;
	unsigned b = (unsigned)(sec % UPG_STALL_SECS);
	if (s->sec[b] != sec) {
		s->sec[b] = sec;
		s->sec_some[b] = s->sec_full[b] = 0;
	}
	s->sec_some[b] += some;
	s->sec_full[b] += full;
}

void upg_stall_add(struct upg_stall *s, uint64_t t0, uint64_t end)
{
	if (end < t0)
		t0 = end;
	/* The kept waits that overlap [t0, end], clipped to it. */
	struct edge e[2 * UPG_STALL_KEEP];
	unsigned k = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		uint32_t j = (s->head + UPG_STALL_KEEP - 1 - i) % UPG_STALL_KEEP;
		uint64_t a = s->w[j].t0, b = s->w[j].end;
		if (b <= t0 || a >= end)
			continue;
		e[k++] = (struct edge){ a > t0 ? a : t0, +1 };
		e[k++] = (struct edge){ b < end ? b : end, -1 };
	}
	if (k > 2)
		qsort(e, k, sizeof e[0], cmp_edge);
	/* Sweep: between edges the cover is constant.  Ends sort with the
	 * starts at the same instant in any order: those spans are empty. */
	unsigned mark = s->threads > 1 ? s->threads - 1 : 0;
	uint64_t some = 0, full = 0, at = t0;
	int cover = 0;
	for (unsigned i = 0; i <= k; i++) {
		uint64_t next = i < k ? e[i].at : end;
		if (next > at) {
			if (cover == 0)
				some += next - at;
			if (cover == (int)mark)
				full += next - at;
			at = next;
		}
		if (i < k)
			cover += e[i].step;
	}
	s->some_ns += some;
	s->full_ns += full;
	bucket_add(s, end, some, full);

	s->w[s->head] = (typeof(s->w[0])){ t0, end };
	s->head = (s->head + 1) % UPG_STALL_KEEP;
	if (s->n < UPG_STALL_KEEP)
		s->n++;
}

void upg_stall_recent(const struct upg_stall *s, uint64_t now_ns, uint64_t *window, uint64_t *some, uint64_t *full)
{
	uint64_t cur = now_ns / NS_PER_S, from = cur >= UPG_STALL_RECENT_S - 1 ? cur - (UPG_STALL_RECENT_S - 1) : 0;
	uint64_t since = from * NS_PER_S > s->start_ns ? from * NS_PER_S : s->start_ns;
	*window = now_ns > since ? now_ns - since : 0;
	*some = *full = 0;
	for (unsigned b = 0; b < UPG_STALL_SECS; b++)
		if (s->sec[b] >= from && s->sec[b] <= cur) {
			*some += s->sec_some[b];
			*full += s->sec_full[b];
		}
	/* A wait is counted when it ends, all of it in that second. */
	if (*some > *window)
		*some = *window;
	if (*full > *window)
		*full = *window;
}

uint32_t upg_stall_process_threads(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* Field 20, num_threads, counted after the name's closing parenthesis
	 * (field 2, which may hold anything). */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 20 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	return p ? (uint32_t)strtoul(p + 1, NULL, 10) : 0;
}
