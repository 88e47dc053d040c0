/*
 * bench_cache_store [DIR] [N]: the cache store on the real file system.
 * Writes N entries (default 100000, 200-byte bodies, no fsync: this is the
 * set-up, not the measurement), closes the store, then measures
 *   - recovery: cache_store_open_dir() indexing all N from their headers;
 *   - hits: lookup + open + read of the body + close, per entry;
 *   - commits with fsync on (1000 of them), the cost a real write pays.
 * DIR (default build/bench/cache-store) is emptied first and removed after;
 * with a third argument "keep" DIR is filled only if it holds fewer than N
 * entries and is kept (to repeat the measurement without writing it again).
 * Numbers only: a measurement, never a pass/fail test.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store_int.h"
#include "glassproxy/cache.h"
#include "glassproxy/sys.h"
#include "glassproxy/util.h"

static struct sys *sys;

struct rm {
	char path[CS_PATH_MAX];
};

static int rm_each(void *arg, const char *name, unsigned char d_type);

/* rm -r path through struct sys. */
static void rm_tree(const char *path)
{
	struct rm r;

	util_format(r.path, sizeof(r.path), "%s", path);
	if (sys_list_dir(sys, path, rm_each, &r) == 0)
		sys_rmdir(sys, path);
	else
		sys_unlink(sys, path);
}

static int rm_each(void *arg, const char *name, unsigned char d_type)
{
	struct rm *r = arg;
	char child[CS_PATH_MAX];

	util_format(child, sizeof(child), "%s/%s", r->path, name);
	if (d_type == SYS_DT_DIR)
		rm_tree(child);
	else
		sys_unlink(sys, child);
	return 0;
}

static void key_of(unsigned i, char *key, size_t kcap, char *hash,
		   size_t hcap)
{
	util_format(key, kcap, "http://bench.example/objects/%u?v=1", i);
	util_format(hash, hcap, "%016" PRIx64, cache_st_fnv1a(key, strlen(key)));
}

static int fill(struct cache_store *st, unsigned from, unsigned n)
{
	struct cache_store_meta m = {.request_time = 1700000000,
				     .response_time = 1700000000,
				     .expires = 1700003600,
				     .status = 200};
	const char *fields = "Content-Type: text/plain\r\nETag: \"x\"\r\n";
	char body[200], key[128], hash[32];

	memset(body, 'b', sizeof(body));
	for (unsigned i = from; i < from + n; i++) {
		struct cache_store_writer *w;
		int rc;
		key_of(i, key, sizeof(key), hash, sizeof(hash));
		m.response_time++;
		rc = cache_store_write_begin(st, key, hash, "", 0, &m, fields,
					     strlen(fields), &w);
		if (rc == 0)
			rc = cache_store_write_append(w, body, sizeof(body));
		if (rc == 0)
			rc = cache_store_write_commit(w, sizeof(body));
		else
			cache_store_write_abort(w);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static unsigned hits(struct cache_store *st, unsigned n)
{
	char key[128], hash[32], buf[256];
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++) {
		struct cache_store_variants v;
		struct cache_store_reader *r;
		key_of(i, key, sizeof(key), hash, sizeof(hash));
		if (cache_store_lookup(st, key, hash, &v) == 1 &&
		    cache_store_open(st, key, hash, v.v[0].id, &r) == 0) {
			ok += cache_store_read_body(r, buf, sizeof(buf), 0) ==
			      200;
			cache_store_reader_close(r);
		}
		cache_store_variants_free(&v);
	}
	return ok;
}

static uint64_t entries_in(const struct cache_store_opts *opts)
{
	struct cache_store_stats s = {0};
	struct cache_store *st;

	if (cache_store_open_dir(sys, opts, &st) == 0) {
		cache_store_get_stats(st, &s);
		cache_store_close(st);
	}
	return s.entries;
}

static int measure_fill(const struct cache_store_opts *opts, unsigned from,
			unsigned n, const char *what)
{
	struct cache_store *st;
	int64_t t0 = sys_now_mono_ms(sys);
	int rc = cache_store_open_dir(sys, opts, &st);

	if (rc < 0)
		return rc;
	rc = fill(st, from, n);
	cache_store_close(st);
	printf("%s: %u commits in %" PRId64 " ms\n", what, n,
	       sys_now_mono_ms(sys) - t0);
	return rc;
}

static int measure_reads(const struct cache_store_opts *opts, unsigned n)
{
	struct cache_store_stats s;
	struct cache_store *st;
	int64_t t0 = sys_now_mono_ms(sys), t1;
	unsigned ok;

	if (cache_store_open_dir(sys, opts, &st) < 0)
		return -1;
	t1 = sys_now_mono_ms(sys);
	cache_store_get_stats(st, &s);
	printf("recovery: %" PRIu64 " entries indexed in %" PRId64 " ms\n",
	       s.recovered, t1 - t0);
	t0 = sys_now_mono_ms(sys);
	ok = hits(st, n);
	t1 = sys_now_mono_ms(sys);
	printf("hits: %u lookup+open+read+close in %" PRId64
	       " ms (%.2f us each)\n",
	       ok, t1 - t0, (double)(t1 - t0) * 1000.0 / (ok ? ok : 1));
	cache_store_close(st);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "build/bench/cache-store";
	unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000;
	bool keep = argc > 3 && strcmp(argv[3], "keep") == 0;
	struct cache_store_opts opts;

	sys = sys_posix();
	cache_store_opts_default(&opts);
	opts.dir = dir;
	opts.max_size = (uint64_t)1 << 40;
	opts.fsync = false;
	if (!keep)
		rm_tree(dir);
	if (entries_in(&opts) < n &&
	    measure_fill(&opts, 0, n, "fill (no fsync)") < 0)
		return 1;
	if (measure_reads(&opts, n) < 0)
		return 1;
	if (keep)
		return 0;
	opts.fsync = true;
	if (measure_fill(&opts, n, 1000, "commits with fsync") < 0)
		return 1;
	rm_tree(dir);
	return 0;
}
