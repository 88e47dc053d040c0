/*
 * bench_filter: how long building a filter with 10,000 patterns takes, and
 * what one filter_check_host() costs, per kind of host.
 *
 * Build and run from the repository root (see docs/filter.md):
 *
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc \
 *      bench/bench_filter.c src/filter/filter*.c src/util/util.c -lpsl \
 *      -o build/bench_filter && ./build/bench_filter [patterns] [lookups]
 *
 * The bench is not part of the library, so it may read the clock.
 */
#include "filter/filter_int.h"
#include "glassproxy/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A deterministic mix like real lists: mostly domains, some dotless
 * brand names, some wildcards, some networks. */
static void pattern(int i, char *p, size_t cap)
{
	switch (i % 10) {
	case 0:
	case 1:
	case 2:
	case 3:
	case 4:
	case 5:
		util_format(p, cap, "ads%d.tracker%d.com", i, i % 97);
		break;
	case 6:
		util_format(p, cap, "brand%d", i);
		break;
	case 7:
		util_format(p, cap, "*.cdn%d.example.net", i);
		break;
	case 8:
		util_format(p, cap, "ads.*.site%d.org", i);
		break;
	default:
		if (i % 20 == 9)
			util_format(p, cap, "10.%d.%d.0/24", (i >> 8) & 255,
				    i & 255);
		else
			util_format(p, cap, "2001:db8:%x:%x::/64", i >> 16,
				    i & 0xffff);
		break;
	}
}

/* Kinds of lookups; host() makes the n-th host of a kind. */
static const char *const kinds[] = {
	"domain hit (www.adsN.trackerM.com)",
	"domain miss (www.siteN.example.com)",
	"dotless hit (www.brandN.co.uk, PSL)",
	"dotless near-miss (brandN.evil.net)",
	"wildcard hit (x.cdnN.example.net)",
	"IPv4 (10.a.b.c)",
	"IPv6 ([2001:db8:a:b::1]:443)",
	"invalid (0x7f.N)",
};

/* The index of the n-th pattern i with i % m == r, below npat. */
static int nth(int n, int m, int r, int npat)
{
	int count = (npat - r + m - 1) / m;

	return count > 0 ? (n % count) * m + r : r;
}

static void host(size_t kind, int n, int npat, char *h, size_t cap)
{
	int i;

	switch (kind) {
	case 0:
		i = nth(n, 10, 0, npat);
		util_format(h, cap, "www.ads%d.tracker%d.com", i, i % 97);
		break;
	case 1:
		util_format(h, cap, "www.site%d.example.com", n);
		break;
	case 2:
		util_format(h, cap, "www.brand%d.co.uk", nth(n, 10, 6, npat));
		break;
	case 3:
		util_format(h, cap, "brand%d.evil.net", nth(n, 10, 6, npat));
		break;
	case 4:
		util_format(h, cap, "x.cdn%d.example.net", nth(n, 10, 7, npat));
		break;
	case 5:
		i = nth(n, 20, 9, npat);
		util_format(h, cap, "10.%d.%d.7", (i >> 8) & 255, i & 255);
		break;
	case 6:
		i = nth(n, 20, 19, npat);
		util_format(h, cap, "[2001:db8:%x:%x::1]:443", i >> 16,
			    i & 0xffff);
		break;
	default:
		util_format(h, cap, "0x7f.%d", n);
		break;
	}
}

int main(int argc, char **argv)
{
	int npat = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 10000;
	long nlook = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
	struct filter *f;
	char p[128];
	double t0, t1;

	if (npat <= 0 || nlook <= 0) {
		fprintf(stderr, "usage: %s [patterns] [lookups]\n", argv[0]);
		return 2;
	}
	t0 = now_ns();
	f = filter_new();
	if (f == NULL)
		return 1;
	for (int i = 0; i < npat; i++) {
		pattern(i, p, sizeof(p));
		if (filter_add_pattern(f, FILTER_LIST_BLOCK, p, "bench",
				       (unsigned)i + 1, NULL, NULL) < 0) {
			fprintf(stderr, "bad pattern %s\n", p);
			return 1;
		}
	}
	t1 = now_ns();
	printf("build: %d patterns in %.1f ms (%.2f us/pattern), %zu trie "
	       "nodes\n",
	       npat, (t1 - t0) / 1e6, (t1 - t0) / 1e3 / npat, f->trie.nnodes);

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		enum { NHOSTS = 1024 };
		static char hosts[NHOSTS][96];
		struct filter_stats st = {0};
		unsigned long sink = 0;

		for (int h = 0; h < NHOSTS; h++)
			host(k, h, npat, hosts[h], sizeof(hosts[h]));
		for (int h = 0; h < NHOSTS; h++)
			filter_check_host_stats(f, hosts[h], strlen(hosts[h]),
						NULL, &st);
		t0 = now_ns();
		for (long n = 0; n < nlook; n++) {
			const char *h = hosts[n % NHOSTS];
			sink += filter_check_host(f, h, strlen(h), NULL);
		}
		t1 = now_ns();
		printf("%-40s %7.1f ns/lookup  %5.1f probes  %4.2f psl calls  "
		       "(%lu)\n",
		       kinds[k], (t1 - t0) / nlook, (double)st.probes / NHOSTS,
		       (double)st.psl_calls / NHOSTS,
		       sink / (unsigned long)nlook);
	}
	filter_free(f);
	return 0;
}
