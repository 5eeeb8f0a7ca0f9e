/*
 * memwork: a workload with known parameters, the ground truth that
 * measurements of a running guest (its working set over time, its write
 * share, the content of its pages) are checked against.
 *
 * It runs as the workload of a TCG test guest (built with `gcc -static
 * -O2`, started by the initramfs's /init) or as an ordinary host program
 * (any `gcc -O2` build). Its parameters come from argv when it is given
 * any arguments, from the kernel command line (/proc/cmdline) otherwise:
 *
 *   argv                    /proc/cmdline           default
 *   --mib W                 memwork.mib=W           64      MiB to map and fill
 *   --image-share S         memwork.image_share=S   0       share of pages with image content
 *   --zero-share Z          memwork.zero_share=Z    0       share of pages left zero
 *   --pattern P             memwork.pattern=P       uniform uniform | hotcold:F:P
 *   --rate R                memwork.rate=R          1000    page touches per second
 *   --write W               memwork.write=W         0       share of touches that write
 *   --seed N                memwork.seed=N          1       image seed
 *   --instance K            memwork.instance=K      random  per-instance seed
 *   --report-ms M           memwork.report_ms=M     2000    period of the rate lines
 *   --tick-ms T             memwork.tick_ms=T       5       period of the touch batches
 *   --mergeable             memwork.mergeable=1     off     madvise(MADV_MERGEABLE) the map
 *
 * (`--key=value` works too.) Dotted names on the kernel command line are
 * not passed to init, so this reads them itself.
 *
 * Layout. One anonymous map of W MiB, N pages (N = W MiB / page size).
 * Shares are turned into page counts as floor(N * share + 0.5), the same
 * arithmetic (IEEE doubles) a checker does:
 *
 *   pages [0, I)         image: word i of page p is mix(image_key ^ (p * words_per_page + i)),
 *                        image_key = mix(mix(seed) ^ 1): the same in every instance with the
 *                        same seed, keyed only by the page index; no two image pages alike,
 *                        no word zero.
 *   pages [I, I+Z)       zero: written with zeros, so they are present (not the shared zero page).
 *   pages [I+Z, N)       unique: as image, with unique_key = mix(mix(instance) ^ 2).
 *
 * with I = round(N * S), Z = round(N * zero_share) (cut so I + Z <= N).
 * mix() is SplitMix64's finaliser of x + 0x9e3779b97f4a7c15, a bijection,
 * its rare zero replaced by 0x5a5a5a5a5a5a5a5a.
 *
 * Touches. After the fill it touches pages at R touches a second, forever,
 * in batches every T ms (a batch does what is due by then; more than one
 * second behind, the excess is dropped and counted as `skipped`). Each
 * touch draws three numbers from SplitMix64 (state mix(mix(instance) ^ 3),
 * next = fmix(state += 0x9e3779b97f4a7c15)), r1, r2, r3:
 *
 *   page   uniform: mulhi(r1, N); hotcold:F:P with H = round(N * F) hot pages
 *          (the first H): if low32(r2) < thr(P) then mulhi(r1, H) else
 *          H + mulhi(r1, N - H); (H = 0 or H = N: uniform)
 *   word   (r2 >> 32) mod words_per_page
 *   write  low32(r3) < thr(write)
 *
 * where mulhi(r, n) = (r * n) >> 64 in 128 bits, thr(x) = floor(x * 2^32)
 * (2^32 for x >= 1). A read loads that word; a write stores
 * mix(write_key ^ k) there, k the number of writes before it and
 * write_key = mix(mix(instance) ^ 4). So a written page is unique from
 * then on, whatever it was: an image page is no longer identical to the
 * other instances', and a zero page written is no longer zero (which is
 * what KSM sees as well). The sequence of touches depends only on the
 * parameters and the instance seed, so a checker that knows how many
 * touches were made can replay which pages were written.
 *
 * Output, each on one line:
 *
 *   memwork: ready pages=N image=I zero=Z unique=U hot=H page_size=4096 words_per_page=512
 *            mib=W addr=0x... pid=... seed=... instance=... pattern=... rate=R write=W
 *            fill_ms=... memtotal_kib=... memfree_kib=...
 *
 * after the fill, then every report period:
 *
 *   memwork: rate t_ms=... touches=... writes=... achieved=... target=R skipped=...
 *            written_pages=... intact_image=... intact_zero=...
 *            interval_ms=... interval_touches=... interval_pages=... interval_written=...
 *
 * t_ms since the ready line; touches, writes and skipped since then;
 * achieved the touches a second over the interval since the previous
 * line; written_pages the distinct pages written so far, intact_image and
 * intact_zero the image and zero pages not written yet; interval_pages
 * and interval_written the distinct pages touched and written in the
 * interval (the workload's own working set over it). On a bad parameter:
 *
 *   memwork: failed <reason>
 *
 * and exit status 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)
#define GOLDEN 0x9e3779b97f4a7c15ULL

static uint64_t fmix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Page content and keys: a bijection of 64-bit words, never zero. */
static uint64_t mix(uint64_t x)
{
	x = fmix(x + GOLDEN);
	return x ? x : 0x5a5a5a5a5a5a5a5aULL;
}

/* The touch stream: SplitMix64. */
static uint64_t next(uint64_t *state)
{
	*state += GOLDEN;
	return fmix(*state);
}

static uint64_t mulhi(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

static uint64_t threshold(double share)
{
	return share >= 1.0 ? (1ULL << 32) : (uint64_t)(share * 4294967296.0);
}

static size_t share_of(size_t n, double share)
{
	return (size_t)((double)n * share + 0.5);
}

struct params {
	unsigned long mib;
	double image_share, zero_share;
	char pattern[64];
	double hot_share, hot_prob; /* hotcold:F:P; hot_share < 0 for uniform */
	double rate, write;
	uint64_t seed, instance;
	int instance_set;
	unsigned long report_ms, tick_ms;
	int mergeable;
};

static void fail(const char *fmt, const char *a, const char *b)
{
	printf("memwork: failed ");
	printf(fmt, a, b);
	printf("\n");
	fflush(stdout);
	exit(2);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_share(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

/* `uniform` or `hotcold:F:P`. */
static int parse_pattern(struct params *p, const char *s)
{
	if (strlen(s) >= sizeof p->pattern)
		return -1;
	if (strcmp(s, "uniform") == 0) {
		p->hot_share = -1.0;
	} else if (strncmp(s, "hotcold:", 8) == 0) {
		char f[32], q[32];
		const char *colon = strchr(s + 8, ':');
		if (!colon || (size_t)(colon - (s + 8)) >= sizeof f || strlen(colon + 1) >= sizeof q)
			return -1;
		memcpy(f, s + 8, (size_t)(colon - (s + 8)));
		f[colon - (s + 8)] = '\0';
		strcpy(q, colon + 1);
		if (parse_share(f, &p->hot_share) || parse_share(q, &p->hot_prob))
			return -1;
	} else {
		return -1;
	}
	strcpy(p->pattern, s);
	return 0;
}

static void set_param(struct params *p, const char *key, const char *value)
{
	uint64_t u;
	int bad = 0;
	if (strcmp(key, "mib") == 0) {
		bad = parse_u64(value, &u) || u == 0 || u > (1UL << 20);
		p->mib = (unsigned long)u;
	} else if (strcmp(key, "image_share") == 0) {
		bad = parse_share(value, &p->image_share);
	} else if (strcmp(key, "zero_share") == 0) {
		bad = parse_share(value, &p->zero_share);
	} else if (strcmp(key, "pattern") == 0) {
		bad = parse_pattern(p, value);
	} else if (strcmp(key, "rate") == 0) {
		char *end;
		p->rate = strtod(value, &end);
		bad = end == value || *end || !(p->rate > 0.0 && p->rate <= 1e9);
	} else if (strcmp(key, "write") == 0) {
		bad = parse_share(value, &p->write);
	} else if (strcmp(key, "seed") == 0) {
		bad = parse_u64(value, &p->seed);
	} else if (strcmp(key, "instance") == 0) {
		bad = parse_u64(value, &p->instance);
		p->instance_set = 1;
	} else if (strcmp(key, "report_ms") == 0) {
		bad = parse_u64(value, &u) || u == 0;
		p->report_ms = (unsigned long)u;
	} else if (strcmp(key, "tick_ms") == 0) {
		bad = parse_u64(value, &u) || u == 0 || u > 1000;
		p->tick_ms = (unsigned long)u;
	} else if (strcmp(key, "mergeable") == 0) {
		bad = parse_u64(value, &u) || u > 1;
		p->mergeable = (int)u;
	} else {
		fail("unknown parameter %s%s", key, "");
	}
	if (bad)
		fail("bad value for %s: %s", key, value);
}

/* Every `memwork.KEY=VALUE` word of the kernel command line. */
static void params_from_cmdline(struct params *p)
{
	char cmdline[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");
	if (f) {
		if (!fgets(cmdline, sizeof cmdline, f))
			cmdline[0] = '\0';
		fclose(f);
	}
	for (char *save = NULL, *word = strtok_r(cmdline, " \t\n", &save); word;
	     word = strtok_r(NULL, " \t\n", &save)) {
		if (strncmp(word, "memwork.", 8) != 0)
			continue;
		char *eq = strchr(word, '=');
		if (!eq)
			fail("no value for %s%s", word, "");
		*eq = '\0';
		set_param(p, word + 8, eq + 1);
	}
}

static void params_from_argv(struct params *p, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char key[64];
		const char *arg = argv[i], *value;
		if (strncmp(arg, "--", 2) != 0)
			fail("unexpected argument %s%s", arg, "");
		arg += 2;
		const char *eq = strchr(arg, '=');
		size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
		if (n >= sizeof key)
			fail("unknown parameter %s%s", arg, "");
		memcpy(key, arg, n);
		key[n] = '\0';
		for (char *c = key; *c; c++)
			if (*c == '-')
				*c = '_';
		if (eq)
			value = eq + 1;
		else if (strcmp(key, "mergeable") == 0)
			value = "1";
		else if (i + 1 < argc)
			value = argv[++i];
		else
			fail("no value for --%s%s", arg, "");
		set_param(p, key, value);
	}
}

static unsigned long meminfo_kib(const char *field)
{
	char line[256];
	unsigned long value = 0;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			value = strtoul(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return value;
}

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

static void add_ms(struct timespec *t, unsigned long ms)
{
	t->tv_sec += (time_t)(ms / 1000);
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* Sets bit `i`; returns whether it was clear. */
static int mark(uint8_t *bits, size_t i)
{
	uint8_t m = (uint8_t)(1u << (i & 7));
	if (bits[i >> 3] & m)
		return 0;
	bits[i >> 3] |= m;
	return 1;
}

int main(int argc, char **argv)
{
	struct params p = {
		.mib = 64, .pattern = "uniform", .hot_share = -1.0, .rate = 1000.0,
		.seed = 1, .report_ms = 2000, .tick_ms = 5,
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		/* A host program: end with the test that started it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		params_from_argv(&p, argc, argv);
	} else {
		params_from_cmdline(&p);
	}
	if (!p.instance_set) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		p.instance = mix((uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec) ^ (uint64_t)getpid();
	}
	if (p.image_share + p.zero_share > 1.0 + 1e-9) {
		char s[64];
		snprintf(s, sizeof s, "%g + %g", p.image_share, p.zero_share);
		fail("image_share + zero_share = %s is above 1%s", s, "");
	}

	size_t page = (size_t)sysconf(_SC_PAGESIZE), wpp = page / sizeof(uint64_t);
	size_t bytes = p.mib * MIB, pages = bytes / page;
	size_t n_image = share_of(pages, p.image_share);
	size_t n_zero = share_of(pages, p.zero_share);
	if (n_image > pages)
		n_image = pages;
	if (n_zero > pages - n_image)
		n_zero = pages - n_image;
	size_t n_unique = pages - n_image - n_zero;
	size_t n_hot = p.hot_share < 0 ? 0 : share_of(pages, p.hot_share);
	int hotcold = n_hot > 0 && n_hot < pages;

	uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		char s[32];
		snprintf(s, sizeof s, "%lu", p.mib);
		fail("to map %s MiB: %s", s, strerror(errno));
	}
	if (p.mergeable && madvise(mem, bytes, MADV_MERGEABLE) != 0)
		fail("madvise(MADV_MERGEABLE): %s%s", strerror(errno), "");

	uint64_t image_key = mix(mix(p.seed) ^ 1), unique_key = mix(mix(p.instance) ^ 2);
	uint64_t state = mix(mix(p.instance) ^ 3), write_key = mix(mix(p.instance) ^ 4);

	/* The fill, page by page. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t pg = 0; pg < pages; pg++) {
		uint64_t *w = mem + pg * wpp, base = (uint64_t)pg * wpp;
		if (pg < n_image) {
			for (size_t i = 0; i < wpp; i++)
				w[i] = mix(image_key ^ (base + i));
		} else if (pg < n_image + n_zero) {
			memset(w, 0, page);
		} else {
			for (size_t i = 0; i < wpp; i++)
				w[i] = mix(unique_key ^ (base + i));
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	printf("memwork: ready pages=%zu image=%zu zero=%zu unique=%zu hot=%zu page_size=%zu words_per_page=%zu "
	       "mib=%lu addr=%p pid=%d seed=%llu instance=%llu pattern=%s rate=%g write=%g fill_ms=%.0f "
	       "memtotal_kib=%lu memfree_kib=%lu\n",
	       pages, n_image, n_zero, n_unique, hotcold ? n_hot : 0, page, wpp, p.mib, (void *)mem, (int)getpid(),
	       (unsigned long long)p.seed, (unsigned long long)p.instance, p.pattern, p.rate, p.write,
	       since(&t0, &t1) * 1e3, meminfo_kib("MemTotal"), meminfo_kib("MemFree"));
	fflush(stdout);

	uint8_t *written = calloc(pages / 8 + 1, 1), *seen = calloc(pages / 8 + 1, 1);
	uint8_t *seen_w = calloc(pages / 8 + 1, 1);
	if (!written || !seen || !seen_w)
		fail("to allocate the page bitmaps%s%s", "", "");
	uint64_t hot_thr = threshold(p.hot_prob), write_thr = threshold(p.write);
	uint64_t done = 0, writes = 0, skipped = 0, cap = (uint64_t)p.rate + 1;
	size_t written_pages = 0, intact_image = n_image, intact_zero = n_zero;
	uint64_t last_done = 0;
	size_t i_pages = 0, i_written = 0;
	volatile uint64_t sink = 0;
	struct timespec start, tick, now, last_report;
	clock_gettime(CLOCK_MONOTONIC, &start);
	tick = last_report = start;
	for (;;) {
		add_ms(&tick, p.tick_ms);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		/* Overran by more than a tick: start the ticks again from now. */
		if (since(&tick, &now) > (double)p.tick_ms * 1e-3)
			tick = now;
		uint64_t due = (uint64_t)(since(&start, &now) * p.rate) - skipped;
		uint64_t owed = due > done ? due - done : 0;
		if (owed > cap) {
			skipped += owed - cap;
			owed = cap;
		}
		for (uint64_t k = 0; k < owed; k++) {
			uint64_t r1 = next(&state), r2 = next(&state), r3 = next(&state);
			size_t pg;
			if (!hotcold)
				pg = (size_t)mulhi(r1, pages);
			else if ((r2 & 0xffffffffULL) < hot_thr)
				pg = (size_t)mulhi(r1, n_hot);
			else
				pg = n_hot + (size_t)mulhi(r1, pages - n_hot);
			size_t word = (size_t)(r2 >> 32) % wpp;
			i_pages += (size_t)mark(seen, pg);
			if ((r3 & 0xffffffffULL) < write_thr) {
				mem[pg * wpp + word] = mix(write_key ^ writes);
				writes++;
				i_written += (size_t)mark(seen_w, pg);
				if (mark(written, pg)) {
					written_pages++;
					if (pg < n_image)
						intact_image--;
					else if (pg < n_image + n_zero)
						intact_zero--;
				}
			} else {
				sink += mem[pg * wpp + word];
			}
		}
		done += owed;
		double interval = since(&last_report, &now);
		if (interval * 1e3 >= (double)p.report_ms) {
			printf("memwork: rate t_ms=%.0f touches=%llu writes=%llu achieved=%.0f target=%g skipped=%llu "
			       "written_pages=%zu intact_image=%zu intact_zero=%zu "
			       "interval_ms=%.0f interval_touches=%llu interval_pages=%zu interval_written=%zu\n",
			       since(&start, &now) * 1e3, (unsigned long long)done, (unsigned long long)writes,
			       (double)(done - last_done) / interval, p.rate, (unsigned long long)skipped, written_pages,
			       intact_image, intact_zero, interval * 1e3, (unsigned long long)(done - last_done), i_pages,
			       i_written);
			fflush(stdout);
			memset(seen, 0, pages / 8 + 1);
			memset(seen_w, 0, pages / 8 + 1);
			i_pages = i_written = 0;
			last_done = done;
			last_report = now;
		}
	}
}
