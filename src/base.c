/* SPDX-License-Identifier: MIT */
/* Logging, the fatal exit, the clock and thread start (see base.h). */
#include "internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__thread int upg_internal_thread;

void upg_log(struct upager *up, int level, const char *fmt, ...)
{
	if (!up->cfg.log || level > up->cfg.log_level)
		return;
	char buf[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	up->cfg.log(up->cfg.log_arg, level, buf);
}

void upg_fatal(struct upager *up, const char *fmt, ...)
{
	char buf[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (up && up->cfg.log)
		up->cfg.log(up->cfg.log_arg, UPAGER_LOG_ERROR, buf);
	/* One write, so that lines from several threads do not interleave. */
	char line[800];
	int n = snprintf(line, sizeof line, "upager: fatal: %s; aborting\n", buf);
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1;
	(void)!write(STDERR_FILENO, line, (size_t)n);
	abort();
}

uint64_t upg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void upg_comm(char out[16])
{
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, out, 15) : -1;
	if (fd >= 0)
		close(fd);
	out[n > 0 ? n : 0] = 0;
	out[strcspn(out, "\n")] = 0;
}

int upg_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg, const char *name)
{
	pthread_attr_t attr;
	sigset_t all;
	int rc = pthread_attr_init(&attr);
	if (rc)
		return -rc;
	sigfillset(&all);
	rc = pthread_attr_setsigmask_np(&attr, &all);
	if (!rc)
		rc = pthread_create(tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (!rc)
		(void)pthread_setname_np(*tid, name);  /* for top -H, perf and gdb; optional */
	return -rc;
}
