/* SPDX-License-Identifier: MIT */
#include "helpers.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>
#include <check.h>

static inline uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * One word in four is unique to (page, generation, word); the other three
 * repeat every 32 words within a generation, as text and pointers do in a
 * heap.  A page compresses about 2.5 times with LZ4, so the compressed
 * pool (on by default) takes it; with UPG_TEST_DATA=random every word is
 * unique and the pool refuses it.
 */
static uint64_t word_of(uint64_t base, uint32_t gen, size_t i, bool random)
{
	if (random || !(i & 3))
		return base + i * 0x100000001b3ULL;
	return mix((uint64_t)gen << 8 | (i & 31)) | 0x2020202020202020ULL;
}

static int data_random = -1;

static bool random_data(void)
{
	if (data_random < 0) {
		const char *v = getenv("UPG_TEST_DATA");
		data_random = v && !strcmp(v, "random");
	}
	return data_random;
}

void upg_t_data_random(int on)
{
	data_random = on;
}

void upg_t_fill(void *page, size_t psize, uint64_t index, uint32_t gen)
{
	uint64_t *w = page;
	uint64_t base = mix(index * 0x9e3779b97f4a7c15ULL + gen);
	bool rnd = random_data();
	for (size_t i = 0; i < psize / 8; i++)
		w[i] = word_of(base, gen, i, rnd);
}

size_t upg_t_check(const void *page, size_t psize, uint64_t index, uint32_t gen)
{
	const uint64_t *w = page;
	uint64_t base = mix(index * 0x9e3779b97f4a7c15ULL + gen);
	bool rnd = random_data();
	for (size_t i = 0; i < psize / 8; i++)
		if (w[i] != word_of(base, gen, i, rnd))
			return 1 + i * 8;
	return 0;
}

uint64_t upg_t_word(uint64_t index, uint32_t gen, size_t word)
{
	return word_of(mix(index * 0x9e3779b97f4a7c15ULL + gen), gen, word, random_data());
}

int upg_t_is_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		if (c[i])
			return 0;
	return 1;
}

uint64_t upg_t_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix(*state);
}

uint64_t upg_t_skewed(uint64_t *state, uint64_t n)
{
	uint64_t r = upg_t_rand(state);
	uint64_t hot = n / 10 ? n / 10 : 1;
	if (r % 10 != 0)
		return upg_t_rand(state) % hot;
	return upg_t_rand(state) % n;
}

uint64_t upg_t_scatter(uint64_t k, uint64_t n)
{
	return k * 7919 % n;
}

uint64_t upg_t_scale(uint64_t n)
{
	const char *q = getenv("UPG_TEST_QUICK");
	int quick = q && *q && *q != '0';
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	quick = 1;
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	quick = 1;
#endif
#endif
	return quick ? (n / 4 ? n / 4 : 1) : n;
}

static sigjmp_buf sigbus_jump;
static volatile sig_atomic_t sigbus_armed;

static void on_sigbus(int sig)
{
	(void)sig;
	if (sigbus_armed)
		siglongjmp(sigbus_jump, 1);
	_exit(90);
}

int upg_t_sigbus(void (*fn)(void *arg), void *arg)
{
	static int installed;
	if (!installed) {
		struct sigaction sa = { .sa_handler = on_sigbus };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, NULL);
		installed = 1;
	}
	sigbus_armed = 1;
	if (sigsetjmp(sigbus_jump, 1)) {
		sigbus_armed = 0;
		return 1;
	}
	fn(arg);
	sigbus_armed = 0;
	return 0;
}

void upg_t_log(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "upager[%d]: %s\n", level, msg);
}

upager_t *upg_t_open(uint64_t budget, uint32_t page_size, const char *policy, uint32_t handlers)
{
	struct upager_config cfg;
	upager_config_init(&cfg);
	cfg.ram_budget = budget;
	if (page_size)
		cfg.page_size = page_size;
	if (policy)
		cfg.policy = policy;
	if (handlers)
		cfg.handler_threads = handlers;
	return upg_t_open_config(&cfg);
}

uint64_t upg_t_env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : def;
}

void upg_t_config_env(struct upager_config *cfg)
{
	/* The suite runs each paging test with the compressed pool (the
	 * default) and again with UPG_TEST_COMPRESS=off. */
	const char *c = getenv("UPG_TEST_COMPRESS");
	if (c && *c)
		cfg->compress = c;
	/* And with the Redis store (tests/redis.sh): UPG_TEST_STORE. */
	const char *s = getenv("UPG_TEST_STORE");
	if (s && *s && !cfg->store_path)
		cfg->store_path = s;
}

upager_t *upg_t_open_config(struct upager_config *cfg)
{
	upg_t_config_env(cfg);
	cfg->log = upg_t_log;
	/* 2: INFO, 3: DEBUG, for diagnosis */
	cfg->log_level = (int)upg_t_env_u64("UPG_TEST_LOG", UPAGER_LOG_WARN);
	char err[512];
	upager_t *up = NULL;
	int rc = upager_open(cfg, &up, err, sizeof err);
	if (rc) {
		fprintf(stderr, "upager_open: %s (%s)\n", err, strerror(-rc));
		abort();
	}
	return up;
}

void upg_t_run_child(void (*fn)(void *arg, int wfd), void *arg, void *res, size_t len, const char *what)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		fn(arg, p[1]);
		_exit(1);  /* fn exits itself */
	}
	close(p[1]);
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(p[0], (char *)res + got, len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == len, "%s (status %#x)", what, st);
}

void upg_t_child_return(int wfd, const void *res, size_t len)
{
	_exit(write(wfd, res, len) == (ssize_t)len ? 0 : 4);
}

int upg_t_count_dir(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

int upg_t_count_fds(void)
{
	int best = -1;
	for (int i = 0; i < 5; i++) {
		if (i)
			usleep(2000);
		int n = upg_t_count_dir("/proc/self/fd");
		if (n >= 0 && (best < 0 || n < best))
			best = n;
	}
	return best < 0 ? -1 : best - 1;
}

int upg_t_store_fd(pid_t pid, const char *dir, int *count)
{
	char fds[64];
	snprintf(fds, sizeof fds, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(fds);
	struct dirent *e;
	int found = -1, n = 0;
	size_t len = strlen(dir);
	while (d && (e = readdir(d))) {
		char p[320], target[PATH_MAX];
		snprintf(p, sizeof p, "%s/%s", fds, e->d_name);
		ssize_t got = readlink(p, target, sizeof target - 1);
		if (got <= 0)
			continue;
		target[got] = 0;
		if (!strncmp(target, dir, len) && target[len] == '/') {
			found = atoi(e->d_name);
			n++;
		}
	}
	if (d)
		closedir(d);
	if (count)
		*count = n;
	return found;
}

int upg_t_tasks(int *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max)
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
			tids[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

const char *upg_t_task_names(char *buf, size_t len)
{
	int tids[256];
	int n = upg_t_tasks(tids, 256);
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; i < n && used < len; i++) {
		char path[64], comm[32] = "?";
		snprintf(path, sizeof path, "/proc/self/task/%d/comm", tids[i]);
		FILE *f = fopen(path, "r");
		if (f) {
			if (fgets(comm, sizeof comm, f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		used += (size_t)snprintf(buf + used, len - used, "%s%d:%s", i ? " " : "", tids[i], comm);
	}
	return buf;
}

int upg_t_tasks_settle(int want)
{
	int tids[1024], n = 0;
	for (int i = 0; i < 1000; i++) {
		n = upg_t_tasks(tids, 1024);
		if (n <= want)
			break;
		usleep(10000);
	}
	return n;
}

int upg_t_new_threads(const int *before, int nbefore, const int *after, int nafter, int *out, int max)
{
	int n = 0;
	for (int i = 0; i < nafter && n < max; i++) {
		int old = 0;
		for (int j = 0; j < nbefore && !old; j++)
			old = after[i] == before[j];
		if (old)
			continue;
		char path[64], comm[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%d/comm", after[i]);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;  /* gone already */
		if (!fgets(comm, sizeof comm, f))
			comm[0] = 0;
		fclose(f);
		if (!strncmp(comm, "iou-", 4))
			continue;
		out[n++] = after[i];
	}
	return n;
}

uint64_t upg_t_threads_sum(void *(*fn)(void *), unsigned n)
{
	pthread_t th[n];
	for (uintptr_t t = 0; t < n; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, fn, (void *)t), 0);
	uint64_t sum = 0;
	for (unsigned t = 0; t < n; t++) {
		void *r;
		pthread_join(th[t], &r);
		sum += (uintptr_t)r;
	}
	return sum;
}
