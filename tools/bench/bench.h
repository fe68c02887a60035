/* SPDX-License-Identifier: MIT */
/*
 * upager-bench: run a set of access patterns over memory larger than a RAM
 * budget and print figures.  It is a program, not a test: it never judges a
 * speed, only the data (every workload checks every page it wrote and exits 1
 * when one is wrong).
 *
 * The code is in three layers so that the memory backends (upager, and the
 * kernel's own swap with plain mmap inside a memory cgroup) share the
 * workloads:
 *
 *   backend   gives a region of `bytes` and snapshots its paging counters
 *             ("upager": upager_open + upager_map, a fresh runtime per run
 *             so the runtime's statistics are per run; "kernel": mmap);
 *   workload  a function over a plain char *base that fills (untimed), runs
 *             the timed phase between two hook calls, verifies (untimed),
 *             and returns counts and sampled client latencies;
 *   driver    calls setup, the workload, snapshots around the timed phase,
 *             teardown, and prints one row per (workload, thread count).
 *
 * "upager-bench compare" adds the second backend, the kernel's own swap:
 * each workload runs in a forked child over plain anonymous memory inside a
 * memory cgroup capped at the budget, with a swap file on the store's
 * filesystem, once with zswap off and once with it on; then the same
 * workload runs under upager in this process, with its compressed pool and
 * without.  It also measures the store filesystem's O_DIRECT limits with
 * io_uring and prints the targets of issue 4 and of the storage tiers.
 * See compare.c.
 *
 * The data pattern: the first 8-byte word of every 64-byte line of page p
 * holds pattern(salt, p, line, generation).  Read-modify-write workloads add
 * a per-page count to line 0 and keep the expected counts in malloc memory.
 * The other 7 words of a line are the content (--content): heap-like data
 * that LZ4 compresses about 3x (the default), random bytes, or zeros; they
 * are derived from the checked word and never checked themselves.
 *
 * The files: pattern.c (the data pattern and content, random numbers, clocks),
 * backends.c, workloads.c, driver.c (run_one: one run and its row),
 * report.c (the table, CSV and JSON of plain mode), main.c (options);
 * compare mode: compare.c (its driver, the undo record, signals),
 * compare_kernel.c (memory cgroup, swap file, the kernel side's child),
 * device.c (the store's filesystem and its O_DIRECT limits) and
 * compare_report.c (the paired table, the targets, JSON and charts).
 * This header holds what more than one of them uses.
 */
#ifndef UPG_BENCH_H
#define UPG_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "upager.h"

#define PROG "upager-bench"

#define SAMPLE_EVERY 64u   /* time one access in this many */
#define MAX_THREADS 256u
#define LAT_FAULT (1ULL << 63) /* latency sample flag: the page was not mapped */

/* ---------------------------------------------------------------- pattern.c */

uint64_t mix(uint64_t z);
uint64_t pattern(uint64_t salt, uint64_t page, uint64_t line, uint64_t gen);

/* What fills a line after its checked word (see pattern.c). */
enum content { CONTENT_HEAP, CONTENT_RANDOM, CONTENT_SPARSE };

/* LZ4 on a sample of a content's pages, 4 KiB at a time. */
struct content_sample {
	unsigned pages;
	double lz4_ratio;  /* bytes in / bytes out */
	double pool_fit;   /* share of the 4 KiB pieces upager's pool would keep (3/4 or less) */
};

const char *content_name(enum content m);
const char *content_what(enum content m);
int content_parse(const char *s, enum content *out);
/* Write page p (psize bytes, zeroed by the caller for CONTENT_SPARSE) of generation gen. */
void fill_page(enum content m, uint64_t salt, void *page, size_t psize, uint64_t p, uint64_t gen);
int content_measure(enum content m, uint64_t seed, size_t psize, struct content_sample *out);
uint64_t rng_below(uint64_t *s, uint64_t n);
uint64_t now_ns(void);
double cpu_seconds(void);

/* --------------------------------------------------------------- backends.c */

/* Paging counters of a backend, cumulative since setup.  A backend that
 * cannot tell a figure leaves it 0. */
struct mem_counters {
	uint64_t major_faults;    /* faults that waited for a read from the store or swap */
	uint64_t zero_fills;
	uint64_t readahead_pages;
	uint64_t refaults;
	uint64_t wp_faults;       /* write-protect faults */
	uint64_t evictions;
	uint64_t writebacks;
	uint64_t clean_drops;
	uint64_t takeout_calls;   /* upager: the evictor's calls taking pages out (each a TLB flush) */
	uint64_t takeout_pages;   /* upager: pages they took */
	uint64_t takeout_alone;   /* upager: of those, pages taken out by a call of their own */
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t fault_count;     /* faults resolved, every kind */
	uint64_t fault_ns_total;  /* time spent resolving them */
	uint64_t fault_p50_ns;    /* percentiles over the backend's whole life (not deltas) */
	uint64_t fault_p99_ns;
	uint64_t poll_cpu_ns;     /* CPU spent polling for store reads (device wait, not work) */
	/* A compressed pool in RAM: upager's, or zswap under the kernel. */
	uint64_t pool_hits;       /* pages brought back from it */
	uint64_t pool_misses;     /* pages brought back from the store or disk instead (upager: store
	                           * reads; kernel: pages read from swap, readahead included) */
	uint64_t pool_puts;       /* pages it took */
	uint64_t pool_rejects;    /* pages it refused (upager: compressed too poorly) */
	uint64_t pool_writebacks; /* its pages written on to the store or disk */
	uint64_t pool_drops;      /* its pages that left without I/O (upager) */
	uint64_t pool_bytes;      /* RAM it holds now (not a delta) */
	uint64_t pool_pages;      /* pages it holds now, 4 KiB each */
	uint64_t resident_bytes;  /* now: upager's resident bytes, its pool included; kernel: the
	                           * process's resident anonymous memory */
	uint64_t cgroup_usage;    /* now: the memory cgroup's charge (kernel side in compare mode) */
};

struct backend {
	const char *name;
	/* Give `bytes` of fresh, zeroed memory at *base; 0 or -errno, with a
	 * message in err. */
	int (*setup)(struct backend *be, size_t bytes, char **base, char *err, size_t errlen);
	int (*snapshot)(struct backend *be, struct mem_counters *out);
	/* Release what setup made; safe after a failed setup. */
	void (*teardown)(struct backend *be);
	void *priv;
};

/* The state behind the upager backend: a runtime opened with cfg. */
struct upager_backend {
	struct upager_config cfg;
	upager_t *up;
	void *mem;
	/* --forecast: taken at teardown, over the runtime's whole life (fill,
	 * timed phase and verification) */
	bool want_forecast;
	uint64_t refills;                 /* store reads and pool hits */
	struct upager_forecast fc[2];     /* at 1.5 and 2 times the budget */
};

/* What zswap's pool holds, when debugfs is mounted at its usual place. */
#define ZSWAP_DEBUGFS "/sys/kernel/debug/zswap"

/* The state behind the kernel backend: plain anonymous memory. */
struct kernel_backend {
	void *mem;
	size_t bytes;
	char usage_file[600];  /* the memory cgroup's usage file, or "" */
};

/* Make be the upager backend (a fresh runtime per setup) or the kernel one,
 * with its state in *ub or *kb. */
void backend_upager(struct backend *be, struct upager_backend *ub, const struct upager_config *cfg);
void backend_kernel(struct backend *be, struct kernel_backend *kb);

/* -------------------------------------------------------------- workloads.c */

struct wl_ctx;

/* Called by a workload right before and right after its timed phase. */
struct wl_hooks {
	void (*begin)(void *arg);
	void (*end)(void *arg);
	void *arg;
};

struct wl_ctx {
	char *base;
	size_t bytes;
	size_t page;
	unsigned threads;
	uint64_t seed;
	uint64_t accesses;  /* random workloads: accesses in all; 0: one per page */
	uint64_t warmup;    /* random workloads: untimed accesses of the same kind first */
	uint64_t ram;       /* the memory limit the backend enforces (scan-hot sizes its hot set by it) */
	enum content content;
	const struct wl_hooks *hooks;
};

struct wl_result {
	uint64_t accesses;       /* page accesses in the timed phase */
	uint64_t pages_touched;  /* distinct pages among them */
	uint64_t *lat_ns;        /* client latency of every SAMPLE_EVERY-th access; free() it */
	size_t nlat;
	uint64_t bad_words;      /* words that did not hold what was written; 0 means verified */
};

typedef int (*workload_fn)(const struct wl_ctx *c, struct wl_result *r);

struct workload {
	const char *name;
	workload_fn fn;
	const char *what;
	bool scales;  /* compare mode runs it with 1, 2 and 8 threads (else 1) */
	bool warms;   /* --warmup makes untimed accesses before it */
};

/* The workloads, in the order they run and are listed; workloads.c checks
 * that it defines NWORKLOADS of them. */
#define NWORKLOADS 8
extern const struct workload workloads[];

void workload_reports_reset(void);

/* ----------------------------------------------------------------- driver.c */

/* One row of the figures table.  Every field is listed in columns[] of
 * report.c, which drives the CSV and JSON output. */
struct row {
	char backend[16];          /* plain mode: "upager"; compare mode: the side's name (sides[].name) */
	char workload[16];
	char content[8];           /* --content */
	double content_lz4_ratio;  /* LZ4 on a sample of that content (the same for every row) */
	uint64_t threads;
	uint64_t accesses;
	uint64_t pages_touched;
	double seconds;
	double accesses_per_s;
	uint64_t fault_p50_ns;     /* handler side, runtime life (fill included); upager only */
	uint64_t fault_p99_ns;
	double fault_mean_ns;      /* handler side, timed phase only; upager only */
	uint64_t faults;
	uint64_t client_p50_ns;    /* sampled accesses, hits and faults */
	uint64_t client_p99_ns;
	uint64_t client_samples;
	uint64_t client_fault_p50_ns; /* sampled accesses that began on an unmapped page */
	uint64_t client_fault_p99_ns;
	uint64_t client_fault_samples;
	uint64_t store_reads;      /* major faults */
	uint64_t zero_fills;
	uint64_t readahead_pages;
	uint64_t refaults;
	uint64_t wp_faults;
	uint64_t evictions;
	uint64_t writebacks;
	uint64_t clean_drops;
	uint64_t takeout_calls;        /* upager (see struct mem_counters), timed phase */
	uint64_t takeout_pages;
	uint64_t takeout_alone;
	uint64_t bytes_read;
	uint64_t bytes_written;
	double cpu_s;                  /* whole process, user + system, timed phase */
	double cpu_s_pager_threads;    /* of that, threads that outlive the workload's (upager's own) */
	double cpu_s_per_major_fault;  /* NAN without major faults */
	double cpu_s_per_page_in;      /* per page read from the store, readahead included; NAN without */
	double cpu_s_polling;          /* of cpu_s, upager's handlers polling for store reads (device wait) */
	double cpu_s_evictor;          /* of cpu_s_pager_threads, upager's evictor thread */
	double cpu_s_per_eviction;     /* the evictor's CPU per page it evicted; NAN without evictions */
	uint64_t pool_hits;            /* compressed pool in RAM (see struct mem_counters), timed phase */
	uint64_t pool_puts;
	uint64_t pool_rejects;
	uint64_t pool_writebacks;
	uint64_t pool_drops;
	uint64_t pool_bytes;           /* at the end of the timed phase */
	uint64_t pool_pages;
	double pool_hit_share;         /* pool hits / (pool hits + pages read from the store or disk); NAN
	                                * without a pool in use or without either */
	double pool_ratio;             /* pool_pages * 4 KiB / pool_bytes; NAN with an empty pool */
	uint64_t resident_bytes;       /* at the end of the timed phase */
	uint64_t cgroup_usage;         /* kernel sides: the memory cgroup's charge then */
	uint64_t cgroup_peak;          /* kernel sides, cgroup v1: its peak over the run, fill and verify included */
	double fill_s;
	double verify_s;
	uint64_t bad_words;
};

/* The sides compare mode runs for each workload, in this order. */
enum side { SIDE_KERNEL, SIDE_ZSWAP, SIDE_UPAGER, SIDE_NOPOOL, SIDE_REDIS, NSIDES };

struct side_info {
	const char *name;   /* --sides and the CSV's backend column */
	const char *key;    /* JSON */
	const char *label;  /* the table */
	bool kernel;        /* runs under the kernel's swap */
};
extern const struct side_info sides[NSIDES];

struct opts {
	uint64_t ram, data, page, accesses, warmup, seed;
	unsigned threads[32];
	unsigned nthreads;
	bool have_threads;
	bool want[NWORKLOADS];
	enum content content;
	struct content_sample sample; /* measured before the runs */
	const char *csv, *json;
	bool quiet;
	bool forecast;             /* --forecast: check the forecast against runs at 1.5x and 2x */
	/* compare mode */
	bool compare, quick, no_device;
	unsigned repeat;           /* --repeat: runs of each side per row, the median shown */
#define MAX_REPEAT 9
#define STR_OF_(x) #x
#define STR_OF(x) STR_OF_(x)  /* a macro's value as a string literal */
	bool side[NSIDES];         /* --sides (--no-kernel drops both kernel sides) */
	const char *redis;         /* --redis: the Redis store of the "upager on redis" side */
	const char *plot;
	uint64_t swap_bytes;       /* kernel side's swap file; 0: data + ram */
	unsigned zswap_page_cluster; /* vm.page-cluster for the zswap side's runs */
	bool zswap_outside;        /* --zswap-pool outside: leave its pool beyond the budget */
	double device_seconds;     /* per device test */
	uint64_t device_bytes;     /* size of the device test file */
};

int run_one(struct backend *be, const struct opts *o, const struct workload *wl, unsigned threads, struct row *row,
	    uint64_t **flat, size_t *nflat);
int cmp_u64(const void *a, const void *b);

/* ----------------------------------------------------------------- report.c */

struct machine {
	long nproc;
	char kernel[200];
	char cpu[128];
	char store[600];
};

void machine_probe(struct machine *m, const struct upager_config *cfg);
void human_size(uint64_t b, char *buf, size_t len);
void print_header(FILE *out, const struct machine *m, const struct upager_config *cfg, const struct opts *o);
void fmt_figure(char *buf, size_t len, double v, const char *f);
void print_content(FILE *out, const struct opts *o);
void print_row(FILE *out, const struct row *r);
FILE *open_out(const char *opt, const char *path);
int close_out(FILE *f, const char *path);
int write_csv(FILE *f, const char *path, const struct row *rows, size_t n);
void json_string(FILE *f, const char *s);
void json_row(FILE *f, const struct row *r);
void json_content(FILE *f, const struct opts *o);
int write_json(FILE *f, const char *path, const struct row *rows, size_t n, const struct machine *m,
	       const struct upager_config *cfg, const struct opts *o, bool verified);

/* ---------------------------------------------------------------- compare.c */

/* What compare mode changed outside this process, to undo (see compare.c).
 * It lives in memory shared with the guardian process, which undoes what
 * is left when this process dies of anything but SIGKILL to both. */
struct undo {
	volatile pid_t child;       /* kernel-side child, or 0 */
	char cgroup[512];           /* cgroup directory we made, or "" */
	char swapfile[512];         /* swap file we made, or "" */
	volatile sig_atomic_t swap_on; /* we enabled swapfile */
	char devfile[512];          /* device test file, or "" */
	char zswap_enabled[8];      /* zswap's parameters as we found them, or "" when untouched */
	char zswap_compressor[64];
	char zswap_pool_percent[16]; /* max_pool_percent as we found it, or "" when untouched */
	char page_cluster[16];      /* vm.page-cluster as we found it, or "" when untouched */
	char zswap_state[128];      /* the file that records them for a run killed by SIGKILL, or "" */
	volatile sig_atomic_t debugfs_mounted; /* we mounted debugfs at /sys/kernel/debug */
};
extern struct undo *undo;

__attribute__((format(printf, 3, 4)))
void msgf(char *buf, size_t len, const char *fmt, ...);
void signals_block(sigset_t *old);
void signals_restore(const sigset_t *old);
void child_signals(const sigset_t *old);
void undo_all(void);
/* Clean up what undo records on SIGINT, SIGTERM and exit. */
void undo_install(void);
struct cgroup;
/* A memory cgroup capped at limit (swap allowed), below ours when
 * possible; 0 or -errno with why.  Recorded in undo; undo_all() removes it. */
int cg_create(struct cgroup *cg, uint64_t limit, char *why, size_t wlen);
int cg_enter(const struct cgroup *cg, pid_t pid);
uint64_t cg_oom_kills(const struct cgroup *cg);
void cg_peak_reset(const struct cgroup *cg);
uint64_t cg_peak(const struct cgroup *cg);  /* v1 only; 0 otherwise */
int cg_set_limit(const struct cgroup *cg, uint64_t limit);
/* upager-bench file: file workloads on upager_map_file() against kernel mmap. */
int filemap_main(int argc, char **argv);
/* floor.c: upager-bench floor */
int floor_main(int argc, char **argv);
void undo_zswap(void);
void guardian_start(void);
bool pid_gone(pid_t pid);
int sides_parse(const char *val, bool *want);
int run_cmd(const char *const argv[], char *out, size_t outlen);
int compare_main(const struct upager_config *cfg, const struct opts *o, FILE *csv, FILE *json);

/* --------------------------------------------------------- compare_kernel.c */

struct cgroup {
	int version;        /* 1 or 2 */
	char path[512];
	uint64_t limit;     /* bytes written as the memory limit */
	char swap[160];     /* how swap was allowed */
	char swappiness[16];
};

struct swapfile {
	char path[512];
	uint64_t bytes;
	char how[96];
	int others;        /* other active swap areas */
};

struct kernel_side {
	bool ready;              /* cgroup and swap are in place */
	char why[600];           /* why not, when not */
	struct cgroup cg;
	struct swapfile sw;
	uint64_t allowance;      /* limit above the budget (see kernel_setup) */
};

#define ZSWAP_PARAMS "/sys/module/zswap/parameters"
#define PAGE_CLUSTER "/proc/sys/vm/page-cluster"
#define ZSWAP_COMPRESSOR "lzo-rle"  /* the zswap side's: the best of lzo, lzo-rle and deflate here */

/* zswap for the "kernel swap+zswap" side: on for that side's runs only. */
struct zswap {
	bool present;               /* the parameters are there and we may change them */
	bool ready;                 /* the zswap side can run */
	char why[400];              /* why not, when not */
	char was_enabled[8];        /* the parameters as found (restored at the end) */
	char was_compressor[64];
	char max_pool_percent[16];  /* as found */
	char accept_threshold[16];
	char shrinker[8];
	char was_page_cluster[16];  /* vm.page-cluster as found: the kernel side's */
	bool debugfs;               /* its pool's figures are readable (ZSWAP_DEBUGFS) */
	bool mounted;               /* ... because we mounted debugfs */
	char note[300];             /* a limit worth printing, or "" */
	/* The pool inside the budget (--zswap-pool inside, on a cgroup that
	 * does not charge it): max_pool_percent is fit_percent for the zswap
	 * side's runs, and its cgroup's limit is lower by fit_bytes. */
	unsigned fit_percent;
	uint64_t fit_bytes;
	char fit_why[300];          /* why the pool stays outside, or "" */
};

void swap_remove_stale(void);
void zswap_restore_stale(void);
void kernel_setup(struct kernel_side *ks, const struct opts *o, const char *dir);
void kernel_teardown(struct kernel_side *ks);
void zswap_setup(struct zswap *zs, const struct kernel_side *ks, const struct opts *o);
int zswap_switch(struct zswap *zs, const struct kernel_side *ks, const struct opts *o, bool on);
void zswap_teardown(struct zswap *zs);
void print_kernel_side(FILE *out, const struct kernel_side *ks);
void print_zswap(FILE *out, const struct zswap *zs, const struct opts *o);
int run_kernel(struct kernel_side *ks, const struct opts *o, const struct workload *wl, unsigned threads,
	       struct row *row, uint64_t **flat, size_t *nflat, double *life_cpu, char *why, size_t wlen);

/* ----------------------------------------------------------------- device.c */

#define MAX_DEVICE_QDS 32

struct device {
	bool ran;
	char why[300];
	char path[600];
	uint64_t file_bytes;
	double seconds;          /* per test */
	double qd1_iops, qd1_lat_us, qd32_iops;
	double seq128_mbs;       /* 128 KiB sequential reads, queue depth 1 */
	double seq1m_mbs;        /* 1 MiB sequential reads, queue depth 8 */
	double seq_mbs;          /* the better of the two: the bandwidth figure */
	/* 4 KiB random reads at the queue depths of the random workloads'
	 * thread counts: the most major faults per second the device allows
	 * that many threads that each wait for one read at a time. */
	unsigned nqd;
	unsigned qd[MAX_DEVICE_QDS];
	double qd_iops[MAX_DEVICE_QDS];
};

bool is_ram_fs(const char *dir);
void store_dir(const struct upager_config *cfg, char *out, size_t len, char *note, size_t nlen);
const char *fs_name(const char *dir);
bool device_base_qd(unsigned qd);
double device_iops_at(const struct device *dev, unsigned qd);
void device_measure(struct device *dev, const char *dir);
struct io_uring;
/* qd O_DIRECT reads of bs bytes kept in flight on fd through ring, for
 * secs seconds or until max_ops complete (0: no limit); see device.c. */
int ring_reads(struct io_uring *ring, int fd, uint64_t file_bytes, unsigned bs, unsigned qd, bool seq, double secs,
	       uint64_t max_ops, char *buf, uint64_t *ops, double *elapsed);
void print_device(FILE *out, const struct device *dev);

/* --------------------------------------------------------- compare_report.c */

/* One side's run of a trial. */
struct side_run {
	bool ok;                 /* ran, and r holds its figures */
	char why[300];           /* why not, when not */
	struct row r;
	double life_cpu_s;       /* kernel sides: the child's CPU over its life, fill and verify included */
	uint64_t *lat;           /* sorted faulting-access latencies, ns */
	size_t nlat;
	/* --repeat: r is the run of median acc/s among the reps that ran
	 * (its bad_words summed over all of them), with their lowest and
	 * highest acc/s; fails: runs of this side that failed. */
	unsigned reps, fails;
	double rate_lo, rate_hi;
};

/* One workload and thread count, every side. */
struct trial {
	const struct workload *wl;
	unsigned threads;
	struct side_run s[NSIDES];
};

struct target {
	char what[72];
	char goal[24];
	char value[240];
	int met;                 /* 1 met, 0 not met, -1 not measured */
};

#define MAX_TARGETS 28

/* Is zswap's pool charged to the memory cgroup?  From one zswap-side row. */
enum charge { CHARGE_UNKNOWN, CHARGE_NO, CHARGE_YES };
enum charge zswap_charge(const struct row *r, uint64_t limit);
/* The zswap side's cgroup limit (lower by its pool, --zswap-pool inside). */
uint64_t zswap_limit(const struct kernel_side *ks, const struct zswap *zs);

double side_rate(const struct trial *t, enum side s);
double rate_ratio(const struct trial *t, enum side a, enum side b);
void print_trial_header(FILE *out);
void print_trial(FILE *out, const struct trial *t, const struct opts *o, const struct kernel_side *ks,
		 const struct zswap *zs);
const struct trial *find_trial(const struct trial *ts, size_t n, const char *name, unsigned threads);
double seq_mbs(const struct trial *t, uint64_t page);
void print_charge(FILE *out, const struct trial *ts, size_t n, const struct kernel_side *ks, const struct zswap *zs);
size_t targets_eval(const struct trial *ts, size_t n, const struct device *dev, const struct kernel_side *ks,
		    const struct opts *o, struct target *t);
void print_targets(FILE *out, const struct target *t, size_t n);
void print_ceiling(FILE *out, const struct trial *ts, size_t n, const struct device *dev);
int write_compare_json(FILE *f, const char *path, const struct trial *ts, size_t n, const struct machine *m,
		       const struct upager_config *cfg, const struct opts *o, const struct kernel_side *ks,
		       const struct zswap *zs, const struct device *dev, const char *sdir, const struct target *t,
		       size_t nt, bool verified, double wall_s);
bool have_gnuplot(void);
int write_plots(const char *dir, const struct trial *ts, size_t n, const struct opts *o);

#endif
