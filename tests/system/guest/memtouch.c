/*
 * memtouch: the known workload of the system tests' real guests.
 *
 * It runs inside a TCG guest booted from a busybox initramfs and does one
 * thing the host can measure from outside: it writes a known amount of
 * memory, optionally gives part of it back to the guest kernel, says so on
 * the serial console, and keeps the rest resident forever.
 *
 * Parameters come from the kernel command line (/proc/cmdline), where the
 * test's domain XML puts them; dotted names are not passed to init as
 * arguments, so they are read here:
 *
 *   memtouch.mib=N        MiB to allocate and write (default 64)
 *   memtouch.free_mib=F   MiB of those to unmap again right after (default 0)
 *   memtouch.period_ms=P  pause between two re-touch sweeps (default 1000)
 *
 * Every 8-byte word of every page gets a distinct non-zero value (a
 * SplitMix64 hash of its index), so no two pages are alike: KSM has nothing
 * to merge, and a host that reads the guest's memory sees it all in use.
 * The freed part was written too, so the guest kernel gets it back as free
 * pages whose frames the host still holds (the guest boots with
 * init_on_alloc=0 and without init_on_free, so nothing zeroes them); a
 * virtio-balloon inflation can hand exactly those frames back to the host.
 *
 * When done it prints one line, which the test waits for:
 *
 *   memtouch: ready touched_mib=N resident_mib=N-F freed_mib=F
 *             memtotal_kib=... memfree_kib=...      (on one line)
 *
 * then re-writes one word of every resident page each period, so the
 * resident part stays in use (and in the guest's active LRU) without
 * keeping a vCPU busy.
 *
 * Built on the host with `gcc -static -O2` (no libc in the initramfs).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)

/* SplitMix64's finaliser: a bijection of 64-bit words, so distinct indices
 * give distinct values; the rare zero is replaced by a non-zero one. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x ? x : 0x5a5a5a5a5a5a5a5aULL;
}

/* The value of `name=` on the kernel command line, or `fallback`. */
static unsigned long param(const char *cmdline, const char *name, unsigned long fallback)
{
	size_t n = strlen(name);
	const char *p = cmdline;
	while ((p = strstr(p, name)) != NULL) {
		int at_word_start = p == cmdline || p[-1] == ' ';
		if (at_word_start && p[n] == '=')
			return strtoul(p + n + 1, NULL, 10);
		p += n;
	}
	return fallback;
}

/* A field of /proc/meminfo in KiB, or 0 if it cannot be read. */
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

int main(void)
{
	char cmdline[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");
	if (f) {
		if (!fgets(cmdline, sizeof cmdline, f))
			cmdline[0] = '\0';
		fclose(f);
	}
	unsigned long mib = param(cmdline, "memtouch.mib", 64);
	unsigned long free_mib = param(cmdline, "memtouch.free_mib", 0);
	unsigned long period_ms = param(cmdline, "memtouch.period_ms", 1000);
	if (free_mib > mib)
		free_mib = mib;

	long page = sysconf(_SC_PAGESIZE);
	size_t bytes = mib * MIB;
	uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("memtouch: failed to map %lu MiB\n", mib);
		return 1;
	}

	/* Write every word: the page's content is unique and all of it is in use. */
	size_t words = bytes / sizeof(uint64_t);
	for (size_t i = 0; i < words; i++)
		mem[i] = mix(i);

	/* Give the tail back to the guest kernel: its pages go to the free
	 * lists, their frames still written as far as the host can tell. */
	size_t kept = (mib - free_mib) * MIB;
	if (free_mib > 0 && munmap((char *)mem + kept, free_mib * MIB) != 0) {
		printf("memtouch: failed to unmap %lu MiB\n", free_mib);
		return 1;
	}

	printf("memtouch: ready touched_mib=%lu resident_mib=%lu freed_mib=%lu memtotal_kib=%lu memfree_kib=%lu\n",
	       mib, mib - free_mib, free_mib, meminfo_kib("MemTotal"), meminfo_kib("MemFree"));
	fflush(stdout);

	/* Keep the resident part in use, slowly: one word per page per period.
	 * The generation is folded in so each sweep writes a new value, still
	 * distinct between pages. */
	size_t pages = kept / (size_t)page, per_page = (size_t)page / sizeof(uint64_t);
	struct timespec pause = { (time_t)(period_ms / 1000), (long)(period_ms % 1000) * 1000000L };
	for (uint64_t gen = 1;; gen++) {
		for (size_t p = 0; p < pages; p++)
			mem[p * per_page] = mix(p * per_page) ^ (gen << 48);
		nanosleep(&pause, NULL);
	}
}
