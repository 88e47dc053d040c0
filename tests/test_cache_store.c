/*
 * Unit tests of the cache store over sys_memfs (no disk): the write/commit/
 * lookup/open round trip, variants side by side, a forced hash collision is
 * a miss, LRU eviction and the size bound, readers outliving replacement and
 * eviction, 304 updates, removal, recovery from a directory holding
 * temporaries and damaged files, a fault countdown over every fs call of a
 * write (nothing leaks, nothing torn), concurrent writers and readers, and
 * the fill registry with threads.
 */
#include "sys_memfs.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cache/store_int.h"
#include "glassproxy/cache.h"
#include "torture.h"

#define DIR    "/cache"
#define HASH_A "0123456789abcdef"
#define HASH_B "fedcba9876543210"
#define KEY_A  "http://a.example/x"
#define KEY_B  "http://b.example/y"
#define FIELDS "Content-Type: text/plain\r\n"

static struct sys_memfs *fs;
static struct cache_store *st;

static int setup(void **state)
{
	fs = sys_memfs_new();
	st = NULL;
	return 0;
}

static int teardown(void **state)
{
	cache_store_close(st);
	st = NULL;
	assert_int_equal(sys_memfs_open_files(fs), 0);
	sys_memfs_free(fs);
	return 0;
}

static int open_store_rc(uint64_t max_size)
{
	struct cache_store_opts opts;

	cache_store_opts_default(&opts);
	opts.dir = DIR;
	opts.max_size = max_size;
	return cache_store_open_dir(sys_memfs_sys(fs), &opts, &st);
}

static void open_store(uint64_t max_size)
{
	assert_int_equal(open_store_rc(max_size), 0);
}

static void reopen_store(uint64_t max_size)
{
	cache_store_close(st);
	st = NULL;
	open_store(max_size);
}

static struct cache_store_meta meta_at(int64_t t)
{
	struct cache_store_meta m = {.request_time = t - 1,
				     .response_time = t,
				     .expires = t + 60,
				     .flags = 7,
				     .status = 200};
	return m;
}

/* Write and commit an entry with its body in two appends. */
static int put(const char *key, const char *hash, const char *vary,
	       const char *body, int64_t t)
{
	struct cache_store_meta m = meta_at(t);
	struct cache_store_writer *w;
	size_t len = strlen(body), half = len / 2;
	int rc = cache_store_write_begin(st, key, hash, vary, strlen(vary), &m,
					 FIELDS, strlen(FIELDS), &w);

	if (rc < 0)
		return rc;
	rc = cache_store_write_append(w, body, half);
	if (rc == 0)
		rc = cache_store_write_append(w, body + half, len - half);
	if (rc < 0) {
		cache_store_write_abort(w);
		return rc;
	}
	return cache_store_write_commit(w, len);
}

static char *read_all(struct cache_store_reader *r)
{
	const struct cache_store_entry *e = cache_store_reader_entry(r);
	char *buf = calloc(1, e->body_len + 1);
	uint64_t off = 0;

	assert_non_null(buf);
	while (off < e->body_len) {
		ssize_t n = cache_store_read_body(r, buf + off, 3, off);
		assert_true(n > 0);
		off += (uint64_t)n;
	}
	return buf;
}

/* The body stored for (key, hash, vary), or NULL on a miss. */
static char *get(const char *key, const char *hash, const char *vary)
{
	struct cache_store_reader *r;
	char *body;
	int rc = cache_store_open(
		st, key, hash, cache_store_variant_id(vary, strlen(vary)), &r);

	if (rc == -ENOENT)
		return NULL;
	assert_int_equal(rc, 0);
	body = read_all(r);
	cache_store_reader_close(r);
	return body;
}

static void assert_body(const char *key, const char *hash, const char *vary,
			const char *want)
{
	char *body = get(key, hash, vary);

	if (!want) {
		assert_null(body);
		return;
	}
	assert_non_null(body);
	assert_string_equal(body, want);
	free(body);
}

static void entry_path(const char *hash, const char *vary, char *buf,
		       size_t cap)
{
	snprintf(buf, cap, DIR "/%.2s/%.2s/%s-%016" PRIx64, hash, hash + 2,
		 hash, cache_store_variant_id(vary, strlen(vary)));
}

static uint64_t stat_of(const char *which)
{
	struct cache_store_stats s;

	cache_store_get_stats(st, &s);
	if (!strcmp(which, "entries"))
		return s.entries;
	if (!strcmp(which, "bytes"))
		return s.bytes;
	if (!strcmp(which, "evictions"))
		return s.evictions;
	if (!strcmp(which, "damaged"))
		return s.damaged;
	if (!strcmp(which, "recovered"))
		return s.recovered;
	return s.tmp_removed;
}

/* ---- round trip, variants, collisions ---- */

static void test_round_trip(void **state)
{
	struct cache_store_variants v;
	struct cache_store_reader *r;
	const struct cache_store_entry *e;
	char path[256];
	char *body;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "hello, world", 100), 0);
	entry_path(HASH_A, "", path, sizeof(path));
	assert_true(sys_memfs_exists(fs, path));
	assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 0);

	assert_int_equal(cache_store_lookup(st, KEY_A, HASH_A, &v), 1);
	assert_int_equal(v.v[0].body_len, 12);
	assert_int_equal(v.v[0].meta.expires, 160);
	assert_int_equal(v.v[0].meta.flags, 7);
	assert_int_equal(v.v[0].vary_len, 0);
	cache_store_variants_free(&v);

	assert_int_equal(cache_store_open(st, KEY_A, HASH_A,
					  cache_store_variant_id("", 0), &r),
			 0);
	e = cache_store_reader_entry(r);
	assert_string_equal(e->key, KEY_A);
	assert_int_equal(e->meta.status, 200);
	assert_int_equal(e->meta.request_time, 99);
	assert_int_equal(e->meta.response_time, 100);
	assert_int_equal(e->fields_len, strlen(FIELDS));
	assert_memory_equal(e->fields, FIELDS, e->fields_len);
	assert_int_equal(e->body_len, 12);
	assert_true(e->fd >= 0);
	assert_int_equal(sys_memfs_open_files(fs), 1);
	body = read_all(r);
	assert_string_equal(body, "hello, world");
	free(body);
	cache_store_reader_close(r);
	assert_int_equal(sys_memfs_open_files(fs), 0);
}

static void test_body_offset_is_where_the_body_starts(void **state)
{
	struct cache_store_reader *r;
	const struct cache_store_entry *e;
	char path[256], *file;
	size_t len;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "BODY", 1), 0);
	entry_path(HASH_A, "", path, sizeof(path));
	file = sys_memfs_get(fs, path, &len);
	assert_int_equal(cache_store_open(st, KEY_A, HASH_A,
					  cache_store_variant_id("", 0), &r),
			 0);
	e = cache_store_reader_entry(r);
	/* What a sendfile from (fd, body_offset, body_len) would send. */
	assert_int_equal(len, e->body_offset + e->body_len);
	assert_memory_equal(file + e->body_offset, "BODY", 4);
	assert_memory_equal(file, CS_MAGIC, CS_MAGIC_LEN);
	cache_store_reader_close(r);
	free(file);
}

static void test_empty_body(void **state)
{
	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "", 1), 0);
	assert_body(KEY_A, HASH_A, "", "");
}

static void test_variants_live_side_by_side(void **state)
{
	const char *en = "accept-language: en\r\n";
	const char *fr = "accept-language: fr\r\n";
	struct cache_store_variants v;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, en, "hello", 1), 0);
	assert_int_equal(put(KEY_A, HASH_A, fr, "bonjour", 2), 0);
	assert_int_equal(cache_store_lookup(st, KEY_A, HASH_A, &v), 2);
	for (size_t i = 0; i < v.n; i++) {
		bool is_en = v.v[i].vary_len == strlen(en) &&
			     !memcmp(v.v[i].vary, en, strlen(en));
		bool is_fr = v.v[i].vary_len == strlen(fr) &&
			     !memcmp(v.v[i].vary, fr, strlen(fr));
		assert_true(is_en || is_fr);
		assert_int_equal(
			v.v[i].id,
			cache_store_variant_id(v.v[i].vary, v.v[i].vary_len));
	}
	cache_store_variants_free(&v);
	assert_body(KEY_A, HASH_A, en, "hello");
	assert_body(KEY_A, HASH_A, fr, "bonjour");
	assert_body(KEY_A, HASH_A, "accept-language: de\r\n", NULL);
}

static void test_too_many_variants_evict_the_least_used(void **state)
{
	char vary[32];

	open_store(1 << 20);
	for (int i = 0; i < CACHE_STORE_MAX_VARIANTS; i++) {
		snprintf(vary, sizeof(vary), "x: %d\r\n", i);
		sys_memfs_advance_ms(fs, 10);
		assert_int_equal(put(KEY_A, HASH_A, vary, "b", i), 0);
	}
	/* Variant 0 is used again: variant 1 becomes the oldest. */
	sys_memfs_advance_ms(fs, 10);
	assert_body(KEY_A, HASH_A, "x: 0\r\n", "b");
	sys_memfs_advance_ms(fs, 10);
	assert_int_equal(put(KEY_A, HASH_A, "x: new\r\n", "b", 99), 0);
	assert_int_equal(stat_of("entries"), CACHE_STORE_MAX_VARIANTS);
	assert_body(KEY_A, HASH_A, "x: 0\r\n", "b");
	assert_body(KEY_A, HASH_A, "x: 1\r\n", NULL);
	assert_body(KEY_A, HASH_A, "x: new\r\n", "b");
	assert_int_equal(sys_memfs_count_files(fs, DIR "/01/23/"),
			 CACHE_STORE_MAX_VARIANTS);
}

/* Two keys with one hash (as a colliding hash function would give). */
static void test_hash_collision_is_a_miss(void **state)
{
	struct cache_store_variants v;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "A's body", 1), 0);
	assert_int_equal(cache_store_lookup(st, KEY_B, HASH_A, &v), 0);
	cache_store_variants_free(&v);
	assert_body(KEY_B, HASH_A, "", NULL);
	assert_body(KEY_A, HASH_A, "", "A's body");
	/* B's write replaces the one file name they share. */
	assert_int_equal(put(KEY_B, HASH_A, "", "B's body", 2), 0);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_body(KEY_B, HASH_A, "", "B's body");
}

/* The index says A, the file holds B: the byte comparison catches it. */
static void test_foreign_file_under_the_name_is_a_miss(void **state)
{
	char path[256], *b_file;
	size_t len;

	open_store(1 << 20);
	assert_int_equal(put(KEY_B, HASH_A, "", "B's body", 1), 0);
	entry_path(HASH_A, "", path, sizeof(path));
	b_file = sys_memfs_get(fs, path, &len);
	assert_int_equal(cache_store_remove(st, KEY_B, HASH_A), 1);
	assert_int_equal(put(KEY_A, HASH_A, "", "A's body", 2), 0);
	sys_memfs_put(fs, path, b_file, len);
	assert_body(KEY_A, HASH_A, "", NULL);
	/* Not damaged: another key's good entry, left alone. */
	assert_true(sys_memfs_exists(fs, path));
	assert_int_equal(stat_of("damaged"), 0);
	free(b_file);
}

static void test_bad_arguments(void **state)
{
	struct cache_store_meta m = meta_at(1);
	struct cache_store_writer *w;
	struct cache_store_reader *r;
	const char *bad[] = {
		"0123", "0123456789ABCDEF", "../../etc/passwd",
		"0123456789abcdeg",
		/* 65 digits: one too many */
		("00000000000000000000000000000000000000000000000000"
		 "000000000000000")};
	char *big = calloc(1, CACHE_STORE_HEADER_MAX);

	open_store(1 << 20);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cache_store_write_begin(st, KEY_A, bad[i], "",
							 0, &m, "", 0, &w),
				 -EINVAL);
		assert_int_equal(cache_store_open(st, KEY_A, bad[i], 0, &r),
				 -EINVAL);
	}
	assert_non_null(big);
	assert_int_equal(cache_store_write_begin(st, KEY_A, HASH_A, "", 0, &m,
						 big, CACHE_STORE_HEADER_MAX,
						 &w),
			 -EFBIG);
	free(big);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/"), 0);
}

/* ---- framing, size limits, abort ---- */

static void test_length_mismatch_stores_nothing(void **state)
{
	struct cache_store_meta m = meta_at(1);
	struct cache_store_writer *w;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "old", 1), 0);
	assert_int_equal(cache_store_write_begin(st, KEY_A, HASH_A, "", 0, &m,
						 "", 0, &w),
			 0);
	assert_int_equal(cache_store_write_append(w, "new bo", 6), 0);
	assert_int_equal(cache_store_write_commit(w, 8), -EPROTO);
	assert_body(KEY_A, HASH_A, "", "old");
	assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 0);
}

static void test_abort_removes_the_temporary(void **state)
{
	struct cache_store_meta m = meta_at(1);
	struct cache_store_writer *w;

	open_store(1 << 20);
	assert_int_equal(cache_store_write_begin(st, KEY_A, HASH_A, "", 0, &m,
						 "", 0, &w),
			 0);
	assert_int_equal(cache_store_write_append(w, "part", 4), 0);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 1);
	cache_store_write_abort(w);
	cache_store_write_abort(NULL);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 0);
	assert_body(KEY_A, HASH_A, "", NULL);
}

static void test_growing_past_max_object_size_aborts(void **state)
{
	struct cache_store_meta m = meta_at(1);
	struct cache_store_writer *w;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "old", 1), 0);
	cache_store_set_limits(st, 1 << 20, 10);
	assert_int_equal(cache_store_write_begin(st, KEY_A, HASH_A, "", 0, &m,
						 "", 0, &w),
			 0);
	assert_int_equal(cache_store_write_append(w, "0123456789", 10), 0);
	assert_int_equal(cache_store_write_append(w, "x", 1), -EFBIG);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 0);
	assert_int_equal(sys_memfs_open_files(fs), 0);
	assert_int_equal(cache_store_write_append(w, "y", 1), -EFBIG);
	assert_int_equal(cache_store_write_commit(w, 12), -EFBIG);
	assert_body(KEY_A, HASH_A, "", "old");
}

static void test_short_writes_still_store_whole_entries(void **state)
{
	open_store(1 << 20);
	sys_memfs_short_writes(fs, 3);
	assert_int_equal(put(KEY_A, HASH_A, "v", "a body longer than 3", 1), 0);
	sys_memfs_short_writes(fs, 0);
	reopen_store(1 << 20);
	assert_body(KEY_A, HASH_A, "v", "a body longer than 3");
}

/* ---- eviction ---- */

static uint64_t entry_size(const char *key, const char *vary, const char *body)
{
	return cache_st_header_len(strlen(key), strlen(vary), strlen(FIELDS)) +
	       strlen(body);
}

static void test_lru_eviction_order_and_bound(void **state)
{
	uint64_t one = entry_size(KEY_A, "", "0123456789");
	char path[256];

	open_store(3 * one);
	assert_int_equal(put(KEY_A, "aaaaaaaa", "", "0123456789", 1), 0);
	sys_memfs_advance_ms(fs, 1);
	assert_int_equal(put(KEY_A, "bbbbbbbb", "", "0123456789", 2), 0);
	sys_memfs_advance_ms(fs, 1);
	assert_int_equal(put(KEY_A, "cccccccc", "", "0123456789", 3), 0);
	assert_int_equal(stat_of("bytes"), 3 * one);
	/* A read makes a the most recently used: b is now the oldest. */
	assert_body(KEY_A, "aaaaaaaa", "", "0123456789");
	assert_int_equal(put(KEY_A, "dddddddd", "", "0123456789", 4), 0);
	assert_int_equal(stat_of("entries"), 3);
	assert_true(stat_of("bytes") <= 3 * one);
	assert_body(KEY_A, "bbbbbbbb", "", NULL);
	entry_path("bbbbbbbb", "", path, sizeof(path));
	assert_false(sys_memfs_exists(fs, path));
	assert_int_equal(stat_of("evictions"), 1);
	/* Then c (older than a and d). */
	assert_int_equal(put(KEY_A, "eeeeeeee", "", "0123456789", 5), 0);
	assert_body(KEY_A, "cccccccc", "", NULL);
	assert_body(KEY_A, "aaaaaaaa", "", "0123456789");
	assert_body(KEY_A, "dddddddd", "", "0123456789");
	assert_body(KEY_A, "eeeeeeee", "", "0123456789");
	/* A live reload to room for one keeps the most recently used. */
	cache_store_set_limits(st, one, CACHE_STORE_MAX_OBJECT_DEFAULT);
	assert_int_equal(stat_of("entries"), 1);
	assert_body(KEY_A, "eeeeeeee", "", "0123456789");
	assert_int_equal(sys_memfs_count_files(fs, DIR "/"), 1);
}

static void test_an_entry_bigger_than_the_cache_is_not_kept(void **state)
{
	open_store(10);
	assert_int_equal(put(KEY_A, HASH_A, "", "too big for ten bytes", 1), 0);
	assert_int_equal(stat_of("entries"), 0);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/"), 0);
}

/* ---- readers against replacement, update, removal, eviction ---- */

static struct cache_store_reader *open_reader(const char *key, const char *hash,
					      const char *vary)
{
	struct cache_store_reader *r;

	assert_int_equal(
		cache_store_open(st, key, hash,
				 cache_store_variant_id(vary, strlen(vary)),
				 &r),
		0);
	return r;
}

static void assert_reader_body(struct cache_store_reader *r, const char *want)
{
	char *body = read_all(r);

	assert_string_equal(body, want);
	free(body);
}

static void test_reader_outlives_replace_remove_and_evict(void **state)
{
	struct cache_store_reader *r1, *r2, *r3;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "first", 1), 0);
	r1 = open_reader(KEY_A, HASH_A, "");
	assert_int_equal(put(KEY_A, HASH_A, "", "second", 2), 0);
	assert_reader_body(r1, "first");
	assert_body(KEY_A, HASH_A, "", "second");

	/* assert_body above made "second"'s memory copy: r2 holds it. */
	r2 = open_reader(KEY_A, HASH_A, "");
	assert_int_equal(cache_store_reader_entry(r2)->fd, -1);
	assert_int_equal(cache_store_remove(st, KEY_A, HASH_A), 1);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_reader_body(r2, "second");

	assert_int_equal(put(KEY_A, HASH_A, "", "third", 3), 0);
	r3 = open_reader(KEY_A, HASH_A, "");
	cache_store_set_limits(st, 0, CACHE_STORE_MAX_OBJECT_DEFAULT);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_reader_body(r3, "third");
	assert_reader_body(r1, "first");
	assert_int_equal(sys_memfs_open_files(fs), 2); /* r1, r3 */
	cache_store_reader_close(r1);
	cache_store_reader_close(r2);
	cache_store_reader_close(r3);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/"), 0);
}

static void test_update_rewrites_headers_keeps_body(void **state)
{
	const char *fresh = "Content-Type: text/plain\r\nETag: \"2\"\r\n";
	struct cache_store_meta m = meta_at(500);
	struct cache_store_reader *old, *now;
	const struct cache_store_entry *e;
	/* Bigger than one copy chunk, so the copy loops. */
	size_t n = CS_COPY_CHUNK * 2 + 17;
	char *big = malloc(n + 1);

	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "v: 1\r\n", big, 1), 0);
	old = open_reader(KEY_A, HASH_A, "v: 1\r\n");
	m.status = 203;
	assert_int_equal(cache_store_update(st, old, &m, fresh, strlen(fresh)),
			 0);
	/* The old reader still sees the old header and body. */
	e = cache_store_reader_entry(old);
	assert_int_equal(e->meta.response_time, 1);
	now = open_reader(KEY_A, HASH_A, "v: 1\r\n");
	e = cache_store_reader_entry(now);
	assert_int_equal(e->meta.response_time, 500);
	assert_int_equal(e->meta.status, 203);
	assert_int_equal(e->fields_len, strlen(fresh));
	assert_memory_equal(e->fields, fresh, strlen(fresh));
	assert_memory_equal(e->vary, "v: 1\r\n", 6);
	assert_reader_body(now, big);
	assert_reader_body(old, big);
	cache_store_reader_close(old);
	cache_store_reader_close(now);
	assert_int_equal(stat_of("entries"), 1);
	free(big);
}

static void test_remove_takes_every_variant_of_the_key_only(void **state)
{
	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "v: 1\r\n", "1", 1), 0);
	assert_int_equal(put(KEY_A, HASH_A, "v: 2\r\n", "2", 1), 0);
	assert_int_equal(put(KEY_B, HASH_B, "", "b", 1), 0);
	assert_int_equal(cache_store_remove(st, KEY_A, HASH_A), 2);
	assert_int_equal(cache_store_remove(st, KEY_A, HASH_A), 0);
	assert_body(KEY_A, HASH_A, "v: 1\r\n", NULL);
	assert_body(KEY_A, HASH_A, "v: 2\r\n", NULL);
	assert_body(KEY_B, HASH_B, "", "b");
	assert_int_equal(sys_memfs_count_files(fs, DIR "/01/"), 0);
}

/* A write that began before an invalidation must not undo it. */
static void test_write_racing_a_remove_is_not_committed(void **state)
{
	struct cache_store_meta m = meta_at(1);
	struct cache_store_writer *w;

	open_store(1 << 20);
	assert_int_equal(cache_store_write_begin(st, KEY_A, HASH_A, "", 0, &m,
						 "", 0, &w),
			 0);
	assert_int_equal(cache_store_write_append(w, "stale", 5), 0);
	assert_int_equal(cache_store_remove(st, KEY_A, HASH_A), 0);
	assert_int_equal(cache_store_write_commit(w, 5), -ESTALE);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/"), 0);
	/* A write begun after it is fine. */
	assert_int_equal(put(KEY_A, HASH_A, "", "fresh", 2), 0);
	assert_body(KEY_A, HASH_A, "", "fresh");
}

/* ---- damage and recovery ---- */

/* Rewrite byte off of a file, then fix its checksum when asked. */
static void patch(const char *path, size_t off, char byte, bool fix_crc)
{
	size_t len;
	char *file = sys_memfs_get(fs, path, &len);
	unsigned char *u = (unsigned char *)file;
	uint32_t hlen, crc;

	assert_non_null(file);
	file[off] = byte;
	if (fix_crc) {
		hlen = (uint32_t)(u[12] | u[13] << 8 | u[14] << 16 |
				  (uint32_t)u[15] << 24);
		crc = cache_st_crc32c(0, file, hlen - CS_CRC_LEN);
		for (int i = 0; i < 4; i++)
			u[hlen - 4 + i] = (unsigned char)(crc >> (8 * i));
	}
	sys_memfs_put(fs, path, file, len);
	free(file);
}

static void test_damaged_file_found_by_open_is_removed(void **state)
{
	char path[256];

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "body", 1), 0);
	entry_path(HASH_A, "", path, sizeof(path));
	patch(path, CS_FIXED_LEN + 2, 'X', false); /* inside the key */
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_false(sys_memfs_exists(fs, path));
	assert_int_equal(stat_of("damaged"), 1);
	assert_int_equal(stat_of("entries"), 0);
}

static void test_file_deleted_behind_our_back_is_a_miss(void **state)
{
	char path[256];

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "body", 1), 0);
	entry_path(HASH_A, "", path, sizeof(path));
	assert_int_equal(sys_unlink(sys_memfs_sys(fs), path), 0);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_int_equal(stat_of("entries"), 0);
}

static void test_restart_keeps_the_cache(void **state)
{
	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "kept", 1), 0);
	assert_int_equal(put(KEY_B, HASH_B, "v: 1\r\n", "also", 2), 0);
	reopen_store(1 << 20);
	assert_int_equal(stat_of("recovered"), 2);
	assert_body(KEY_A, HASH_A, "", "kept");
	assert_body(KEY_B, HASH_B, "v: 1\r\n", "also");
	assert_int_equal(stat_of("bytes"),
			 entry_size(KEY_A, "", "kept") +
				 entry_size(KEY_B, "v: 1\r\n", "also"));
}

/* Commit a good entry for hash and return its path in buf. */
static void good(const char *hash, const char *body, int64_t t, char *buf)
{
	assert_int_equal(put(KEY_A, hash, "", body, t), 0);
	entry_path(hash, "", buf, 256);
}

static void test_recovery_drops_temporaries_and_damage(void **state)
{
	char ok[256], trunc[256], ver[256], crc[256], pad[256], junk[256];
	char stray[256], oldmagic[256];
	size_t len;
	char *file;

	open_store(1 << 20);
	good("aaaa0001", "good body", 1, ok);
	good("aaaa0002", "truncated body", 2, trunc);
	good("aaaa0003", "wrong version", 3, ver);
	good("aaaa0004", "bad checksum", 4, crc);
	good("aaaa0005", "padded", 5, pad);
	good("aaaa0006", "magic", 6, oldmagic);
	cache_store_close(st);
	st = NULL;

	sys_memfs_put(fs, DIR "/tmp/aaaa0001-0000000000000000.7", "half", 4);
	sys_memfs_put(fs, DIR "/tmp/whatever", "x", 1);
	sys_memfs_truncate(fs, trunc, 100);
	patch(ver, 8, 2, true); /* format version 2, checksum right */
	patch(crc, CS_FIXED_LEN + 1, 'Z', false);
	file = sys_memfs_get(fs, pad, &len);
	file = realloc(file, len + 3);
	memcpy(file + len, "!!!", 3);
	sys_memfs_put(fs, pad, file, len + 3);
	free(file);
	patch(oldmagic, 0, 'g', true);
	snprintf(junk, sizeof(junk), DIR "/aa/aa/aaaa0007-%016x", 1);
	sys_memfs_put(fs, junk, "garbage, not an entry at all", 28);
	snprintf(stray, sizeof(stray), DIR "/aa/aa/notes.txt");
	sys_memfs_put(fs, stray, "x", 1);
	sys_memfs_put(fs, DIR "/README", "left alone", 10);

	open_store(1 << 20);
	assert_int_equal(stat_of("recovered"), 1);
	assert_int_equal(stat_of("tmp_removed"), 2);
	assert_int_equal(stat_of("damaged"), 6);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 0);
	assert_int_equal(sys_memfs_count_files(fs, DIR "/aa/"), 1);
	assert_true(sys_memfs_exists(fs, ok));
	assert_true(sys_memfs_exists(fs, DIR "/README"));
	assert_body(KEY_A, "aaaa0001", "", "good body");
	assert_body(KEY_A, "aaaa0002", "", NULL);
	assert_body(KEY_A, "aaaa0003", "", NULL);
}

static void test_recovery_evicts_the_oldest_to_fit(void **state)
{
	uint64_t one = entry_size(KEY_A, "", "0123456789");
	char p[256];

	open_store(1 << 20);
	/* Written newest first: recovery orders by response time. */
	good("cccccccc", "0123456789", 30, p);
	good("aaaaaaaa", "0123456789", 10, p);
	good("bbbbbbbb", "0123456789", 20, p);
	reopen_store(2 * one);
	assert_int_equal(stat_of("entries"), 2);
	assert_body(KEY_A, "aaaaaaaa", "", NULL);
	assert_body(KEY_A, "bbbbbbbb", "", "0123456789");
	assert_body(KEY_A, "cccccccc", "", "0123456789");
}

static void test_open_creates_missing_directories(void **state)
{
	open_store(1 << 20);
	assert_true(sys_memfs_exists(fs, DIR));
	assert_true(sys_memfs_exists(fs, DIR "/tmp"));
	cache_store_close(st);
	st = NULL;
	sys_memfs_put(fs, "/file", "x", 1);
	{
		struct cache_store_opts opts;
		cache_store_opts_default(&opts);
		opts.dir = "/file/cache";
		assert_int_equal(
			cache_store_open_dir(sys_memfs_sys(fs), &opts, &st),
			-ENOTDIR);
		assert_null(st);
	}
}

/* ---- the fault countdown ---- */

/* The write a countdown attempt makes: a fresh body over "old". */
static int write_new(const char *body)
{
	return put(KEY_A, HASH_A, "v: 1\r\n", body, 50);
}

/*
 * Fail the nth fs call of a write for n = 1, 2, ... until the write goes
 * through untouched.  After each attempt: no descriptor left open, nothing
 * in DIR/tmp after a restart, and the entry is the old one intact (the
 * write failed) or the new one intact (it succeeded).
 */
static void countdown(int err, bool persistent, size_t short_write)
{
	const char *new_body = "the new body, long enough for short writes";
	bool done = false;
	uint64_t n;

	for (n = 1; !done; n++) {
		uint64_t before;
		int rc;

		sys_memfs_free(fs);
		fs = sys_memfs_new();
		open_store(1 << 20);
		assert_int_equal(write_new("old"), 0);
		sys_memfs_short_writes(fs, short_write);
		before = sys_memfs_calls(fs);
		sys_memfs_fail_nth(fs, n, err, persistent);
		rc = write_new(new_body);
		done = sys_memfs_calls(fs) - before < n;
		sys_memfs_fail_nth(fs, 0, 0, false);
		sys_memfs_short_writes(fs, 0);
		assert_int_equal(sys_memfs_open_files(fs), 0);
		if (done)
			assert_int_equal(rc, 0);
		reopen_store(1 << 20);
		assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 0);
		assert_body(KEY_A, HASH_A, "v: 1\r\n",
			    rc == 0 ? new_body : "old");
		cache_store_close(st);
		st = NULL;
		assert_true(n < 200);
	}
	/* open, 3 writes, close, open, write, fsync, close, 2 mkdir, rename */
	assert_true(n > 12);
}

static void test_countdown_transient_eio(void **state)
{
	countdown(EIO, false, 0);
}

static void test_countdown_persistent_enospc(void **state)
{
	countdown(ENOSPC, true, 0);
}

static void test_countdown_with_short_writes(void **state)
{
	countdown(EIO, true, 7);
}

/* The same for a 304 update: old header + body, or new header + body. */
static void test_countdown_update(void **state)
{
	const char *fresh = "ETag: \"new\"\r\n";
	bool done = false;

	for (uint64_t n = 1; !done; n++) {
		struct cache_store_meta m = meta_at(900);
		struct cache_store_reader *r;
		const struct cache_store_entry *e;
		uint64_t before;
		int rc;

		sys_memfs_free(fs);
		fs = sys_memfs_new();
		open_store(1 << 20);
		assert_int_equal(put(KEY_A, HASH_A, "", "same body", 1), 0);
		r = open_reader(KEY_A, HASH_A, "");
		before = sys_memfs_calls(fs);
		sys_memfs_fail_nth(fs, n, EIO, true);
		rc = cache_store_update(st, r, &m, fresh, strlen(fresh));
		done = sys_memfs_calls(fs) - before < n;
		sys_memfs_fail_nth(fs, 0, 0, false);
		cache_store_reader_close(r);
		assert_int_equal(sys_memfs_open_files(fs), 0);
		reopen_store(1 << 20);
		r = open_reader(KEY_A, HASH_A, "");
		e = cache_store_reader_entry(r);
		assert_int_equal(e->meta.response_time, rc == 0 ? 900 : 1);
		assert_int_equal(e->fields_len,
				 rc == 0 ? strlen(fresh) : strlen(FIELDS));
		assert_reader_body(r, "same body");
		cache_store_reader_close(r);
		cache_store_close(st);
		st = NULL;
		assert_true(n < 100);
	}
}

/* Faults while reading never cost a good entry. */
static void test_countdown_open_and_recovery(void **state)
{
	bool done = false;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "body", 1), 0);
	cache_store_close(st);
	st = NULL;
	for (uint64_t n = 1; !done; n++) {
		uint64_t before = sys_memfs_calls(fs);
		int rc;

		sys_memfs_fail_nth(fs, n, EIO, true);
		rc = open_store_rc(1 << 20);
		done = sys_memfs_calls(fs) - before < n;
		if (rc == 0) {
			struct cache_store_reader *r;
			/* A miss, an error or the body, as the faults allow. */
			if (cache_store_open(st, KEY_A, HASH_A,
					     cache_store_variant_id("", 0),
					     &r) == 0)
				cache_store_reader_close(r);
		}
		sys_memfs_fail_nth(fs, 0, 0, false);
		cache_store_close(st);
		st = NULL;
		assert_int_equal(sys_memfs_open_files(fs), 0);
		open_store(1 << 20);
		assert_body(KEY_A, HASH_A, "", "body");
		cache_store_close(st);
		st = NULL;
		assert_true(n < 100);
	}
}

/* ---- threads ---- */

#define THREADS	    4
#define ROUNDS	    200
#define SHARED_KEYS 3

static const char *const thread_hashes[SHARED_KEYS] = {
	"1111111111111111", "2222222222222222", "3333333333333333"};

/* A body that says who wrote it, so a reader can tell a torn one. */
static void body_for(char *buf, size_t cap, unsigned writer, unsigned round)
{
	size_t n = (size_t)snprintf(buf, cap, "w%u-r%u:", writer, round);
	size_t len = 40 + (round * 37 + writer * 11) % 400;

	for (; n < len && n + 1 < cap; n++)
		buf[n] = (char)('a' + (writer + round + n) % 26);
	buf[n] = '\0';
}

static void *writer_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	char body[512];

	for (unsigned r = 0; r < ROUNDS; r++) {
		const char *hash = thread_hashes[(id + r) % SHARED_KEYS];
		body_for(body, sizeof(body), id, r);
		/* Any outcome but a torn entry is fine: -ESTALE included. */
		(void)put(KEY_A, hash, "", body, r);
		if (r % 50 == 49)
			(void)cache_store_remove(st, KEY_A, hash);
	}
	return NULL;
}

static void *reader_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	char want[512];

	for (unsigned r = 0; r < ROUNDS * 2; r++) {
		const char *hash = thread_hashes[(id + r) % SHARED_KEYS];
		char *body = get(KEY_A, hash, "");
		unsigned w, round;
		if (!body)
			continue;
		/* Whatever we got must be exactly what some writer wrote. */
		assert_int_equal(sscanf(body, "w%u-r%u:", &w, &round), 2);
		body_for(want, sizeof(want), w, round);
		assert_string_equal(body, want);
		free(body);
	}
	return NULL;
}

static void run_threads(uint64_t max_size)
{
	pthread_t t[2 * THREADS];

	open_store(max_size);
	for (uintptr_t i = 0; i < THREADS; i++) {
		assert_int_equal(
			pthread_create(&t[i], NULL, writer_thread, (void *)i),
			0);
		assert_int_equal(pthread_create(&t[THREADS + i], NULL,
						reader_thread, (void *)i),
				 0);
	}
	for (int i = 0; i < 2 * THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(sys_memfs_open_files(fs), 0);
	assert_true(stat_of("bytes") <= max_size);
	assert_true(st->idx.copy_bytes <= cache_st_copy_budget(&st->idx));
	assert_int_equal(sys_memfs_count_files(fs, DIR "/tmp/"), 0);
	/* The index and the disk agree after all that. */
	assert_int_equal(sys_memfs_count_files(fs, DIR "/"),
			 stat_of("entries"));
	reopen_store(max_size);
	for (int k = 0; k < SHARED_KEYS; k++)
		free(get(KEY_A, thread_hashes[k], ""));
}

static void test_threads_write_and_read_at_once(void **state)
{
	/* Small enough that eviction runs all the time too (and the copies'
	 * budget, an eighth of it, holds one copy at most). */
	run_threads(3000);
}

/* Every entry gets its memory copy: readers race replace and remove. */
static void test_threads_with_memory_copies(void **state)
{
	run_threads(1 << 20);
}

/* ---- fills ---- */

#define WAITERS 6

static pthread_mutex_t fill_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fill_cv = PTHREAD_COND_INITIALIZER;
static int fill_joined;
static int fill_results[WAITERS];

static void *waiter_thread(void *arg)
{
	int id = (int)(uintptr_t)arg;
	struct cache_store_fill *f;
	int role = cache_store_fill_begin(st, HASH_A, 0, &f);

	pthread_mutex_lock(&fill_mu);
	fill_joined++;
	pthread_cond_signal(&fill_cv);
	pthread_mutex_unlock(&fill_mu);
	if (role != CACHE_STORE_FILL_WAITER) {
		fill_results[id] = -1000 - role;
		if (role == CACHE_STORE_FILL_FILLER)
			cache_store_fill_end(st, f, false);
		return NULL;
	}
	fill_results[id] = cache_store_fill_wait(st, f, 60 * 60 * 1000);
	return NULL;
}

/* One filler, several waiters released by its end with its outcome. */
static void run_fill(bool stored, int want)
{
	struct cache_store_fill *f;
	pthread_t t[WAITERS];

	fill_joined = 0;
	assert_int_equal(cache_store_fill_begin(st, HASH_A, 0, &f),
			 CACHE_STORE_FILL_FILLER);
	for (uintptr_t i = 0; i < WAITERS; i++)
		assert_int_equal(
			pthread_create(&t[i], NULL, waiter_thread, (void *)i),
			0);
	pthread_mutex_lock(&fill_mu);
	while (fill_joined < WAITERS)
		pthread_cond_wait(&fill_cv, &fill_mu);
	pthread_mutex_unlock(&fill_mu);
	cache_store_fill_end(st, f, stored);
	for (int i = 0; i < WAITERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(fill_results[i], want);
	}
}

static void test_fill_waiters_follow_the_filler(void **state)
{
	open_store(1 << 20);
	/* Waits are against the wall clock: put it far ahead of real time
	 * so that only fill_end can end them. */
	sys_memfs_set_clock(fs, 1000, (time_t)4102444800);
	run_fill(true, CACHE_STORE_FILL_STORED);
	run_fill(false, CACHE_STORE_FILL_NOT_STORED);
}

static void test_fill_wait_times_out_and_fills_are_per_variant(void **state)
{
	struct cache_store_fill *f, *g, *other, *again;

	open_store(1 << 20);
	/* A deadline on a clock behind real time has passed already. */
	sys_memfs_set_clock(fs, 1000, 1000000);
	assert_int_equal(cache_store_fill_begin(st, HASH_A, 1, &f),
			 CACHE_STORE_FILL_FILLER);
	assert_int_equal(cache_store_fill_begin(st, HASH_A, 2, &other),
			 CACHE_STORE_FILL_FILLER);
	assert_int_equal(cache_store_fill_begin(st, HASH_A, 1, &g),
			 CACHE_STORE_FILL_WAITER);
	assert_int_equal(cache_store_fill_wait(st, g, 50), -ETIMEDOUT);
	assert_int_equal(cache_store_fill_begin(st, HASH_A, 1, &g),
			 CACHE_STORE_FILL_WAITER);
	assert_int_equal(cache_store_fill_wait(st, g, 0), -ETIMEDOUT);
	/* A waiter that comes back after the end still learns the result. */
	assert_int_equal(cache_store_fill_begin(st, HASH_A, 1, &g),
			 CACHE_STORE_FILL_WAITER);
	cache_store_fill_end(st, f, true);
	assert_int_equal(cache_store_fill_wait(st, g, 0),
			 CACHE_STORE_FILL_STORED);
	/* Ended: the next miss fills afresh. */
	assert_int_equal(cache_store_fill_begin(st, HASH_A, 1, &again),
			 CACHE_STORE_FILL_FILLER);
	cache_store_fill_end(st, again, false);
	cache_store_fill_end(st, other, false);
}

/*
 * Issue 13: the first read of an entry brings its body's first bytes
 * (body_head), for a small entry all of it, so a hit needs no second read;
 * opening such an entry is one open and one pread (no fstat: the short
 * read already said where the file ends).
 */
static void body_with(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	buf[len] = '\0';
}

static void test_first_read_brings_the_body(void **state)
{
	static char big[CACHE_STORE_FIRST_READ * 2 + 1];
	struct cache_store_reader *r;
	const struct cache_store_entry *e;
	uint64_t calls;

	(void)state;
	open_store(1 << 20);
	body_with(big, 1000);
	assert_int_equal(put(KEY_A, HASH_A, "", big, 100), 0);
	calls = sys_memfs_calls(fs);
	assert_int_equal(cache_store_open(st, KEY_A, HASH_A,
					  cache_store_variant_id("", 0), &r),
			 0);
	assert_int_equal(sys_memfs_calls(fs) - calls, 2); /* open, pread */
	e = cache_store_reader_entry(r);
	assert_int_equal(e->body_head_len, 1000);
	assert_memory_equal(e->body_head, big, 1000);
	cache_store_reader_close(r);

	/* Bigger than the first read: its first part, the rest on disk. */
	body_with(big, sizeof(big) - 1);
	assert_int_equal(put(KEY_B, HASH_B, "", big, 100), 0);
	assert_int_equal(cache_store_open(st, KEY_B, HASH_B,
					  cache_store_variant_id("", 0), &r),
			 0);
	e = cache_store_reader_entry(r);
	assert_int_equal(e->body_head_len,
			 CACHE_STORE_FIRST_READ - e->body_offset);
	assert_memory_equal(e->body_head, big, e->body_head_len);
	assert_int_equal(e->body_len, sizeof(big) - 1);
	cache_store_reader_close(r);
}

/*
 * The memory copy (issue 13, store_copy.c): a small entry whose first read
 * brought the whole file keeps it on its index entry, and the next open
 * makes no fs call; the copy goes with its generation of the entry.
 */

/* The index entry of (hash, vary), for a look at its copy. */
static struct cache_st_entry *indexed(const char *hash, const char *vary)
{
	return cache_st_index_find(&st->idx, hash,
				   cache_store_variant_id(vary, strlen(vary)));
}

/* Open, read and close: how many fs calls that took, body checked. */
static uint64_t calls_to_get(const char *key, const char *hash,
			     const char *want)
{
	uint64_t before = sys_memfs_calls(fs);

	assert_body(key, hash, "", want);
	return sys_memfs_calls(fs) - before;
}

static void test_second_open_of_a_small_entry_makes_no_fs_call(void **state)
{
	static char body[1001];
	struct cache_store_reader *r;
	const struct cache_store_entry *e;
	uint64_t calls;

	open_store(1 << 20);
	body_with(body, 1000);
	assert_int_equal(put(KEY_A, HASH_A, "", body, 100), 0);
	assert_null(indexed(HASH_A, "")->copy);
	/* The first read reads the file (open, preads, close) ... */
	assert_true(calls_to_get(KEY_A, HASH_A, body) > 0);
	assert_non_null(indexed(HASH_A, "")->copy);
	assert_int_equal(st->idx.copy_bytes, indexed(HASH_A, "")->copy->charge);
	/* ... the next ones none at all, and see the same entry. */
	calls = sys_memfs_calls(fs);
	r = open_reader(KEY_A, HASH_A, "");
	e = cache_store_reader_entry(r);
	assert_int_equal(e->fd, -1);
	assert_string_equal(e->key, KEY_A);
	assert_int_equal(e->meta.response_time, 100);
	assert_int_equal(e->meta.status, 200);
	assert_int_equal(e->fields_len, strlen(FIELDS));
	assert_memory_equal(e->fields, FIELDS, e->fields_len);
	assert_int_equal(e->body_len, 1000);
	assert_int_equal(e->body_head_len, 1000);
	assert_memory_equal(e->body_head, body, 1000);
	assert_int_equal(e->body_offset,
			 cache_st_header_len(strlen(KEY_A), 0, strlen(FIELDS)));
	assert_reader_body(r, body); /* read_body from memory, 3 at a time */
	cache_store_reader_close(r);
	assert_int_equal(sys_memfs_calls(fs) - calls, 0);
	assert_int_equal(sys_memfs_open_files(fs), 0);
	/* An empty body is a whole file too. */
	assert_int_equal(put(KEY_B, HASH_B, "", "", 1), 0);
	assert_true(calls_to_get(KEY_B, HASH_B, "") > 0);
	assert_int_equal(calls_to_get(KEY_B, HASH_B, ""), 0);
}

static void test_a_big_entry_never_gets_a_copy(void **state)
{
	static char big[CACHE_STORE_FIRST_READ + 1];
	size_t fits = CACHE_STORE_FIRST_READ -
		      cache_st_header_len(strlen(KEY_A), 0, strlen(FIELDS));

	open_store(1 << 20);
	/* One byte more than the first read can bring. */
	body_with(big, fits + 1);
	assert_int_equal(put(KEY_A, HASH_A, "", big, 1), 0);
	for (int i = 0; i < 3; i++)
		assert_true(calls_to_get(KEY_A, HASH_A, big) >= 3);
	assert_null(indexed(HASH_A, "")->copy);
	assert_int_equal(st->idx.copy_bytes, 0);
	/* Exactly the first read: the whole file came, it is copied. */
	body_with(big, fits);
	assert_int_equal(put(KEY_B, HASH_B, "", big, 1), 0);
	assert_true(calls_to_get(KEY_B, HASH_B, big) > 0);
	assert_int_equal(calls_to_get(KEY_B, HASH_B, big), 0);
}

static void test_replace_drops_the_copy(void **state)
{
	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "first", 1), 0);
	assert_body(KEY_A, HASH_A, "", "first");
	assert_int_equal(calls_to_get(KEY_A, HASH_A, "first"), 0);
	assert_int_equal(put(KEY_A, HASH_A, "", "second", 2), 0);
	assert_null(indexed(HASH_A, "")->copy);
	assert_int_equal(st->idx.copy_bytes, 0);
	assert_true(calls_to_get(KEY_A, HASH_A, "second") > 0);
	assert_int_equal(calls_to_get(KEY_A, HASH_A, "second"), 0);
}

/* A 304 update from a reader of the copy: the new header, same body. */
static void test_update_drops_the_copy(void **state)
{
	const char *fresh = "ETag: \"2\"\r\n";
	struct cache_store_meta m = meta_at(500);
	struct cache_store_reader *old, *now;
	const struct cache_store_entry *e;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "the body", 1), 0);
	assert_body(KEY_A, HASH_A, "", "the body");
	old = open_reader(KEY_A, HASH_A, "");
	assert_int_equal(cache_store_reader_entry(old)->fd, -1);
	assert_int_equal(cache_store_update(st, old, &m, fresh, strlen(fresh)),
			 0);
	assert_null(indexed(HASH_A, "")->copy);
	now = open_reader(KEY_A, HASH_A, "");
	e = cache_store_reader_entry(now);
	assert_true(e->fd >= 0); /* read from the new file */
	assert_int_equal(e->meta.response_time, 500);
	assert_memory_equal(e->fields, fresh, strlen(fresh));
	assert_reader_body(now, "the body");
	cache_store_reader_close(now);
	/* The old reader still has the old header. */
	e = cache_store_reader_entry(old);
	assert_int_equal(e->meta.response_time, 1);
	assert_memory_equal(e->fields, FIELDS, strlen(FIELDS));
	cache_store_reader_close(old);
	now = open_reader(KEY_A, HASH_A, ""); /* the new copy */
	e = cache_store_reader_entry(now);
	assert_int_equal(e->fd, -1);
	assert_int_equal(e->meta.response_time, 500);
	cache_store_reader_close(now);
}

static void test_remove_and_evict_drop_the_copy(void **state)
{
	uint64_t one = entry_size(KEY_A, "", "0123456789");

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "0123456789", 1), 0);
	assert_body(KEY_A, HASH_A, "", "0123456789");
	assert_true(st->idx.copy_bytes > 0);
	assert_int_equal(cache_store_remove(st, KEY_A, HASH_A), 1);
	assert_int_equal(st->idx.copy_bytes, 0);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_int_equal(put(KEY_A, HASH_A, "", "9876543210", 2), 0);
	assert_true(calls_to_get(KEY_A, HASH_A, "9876543210") > 0);

	/* Room for two entries: a third evicts the copied one. */
	cache_store_set_limits(st, 2 * one, CACHE_STORE_MAX_OBJECT_DEFAULT);
	sys_memfs_advance_ms(fs, 1);
	assert_int_equal(put(KEY_A, "bbbbbbbb", "", "bbbbbbbbbb", 3), 0);
	sys_memfs_advance_ms(fs, 1);
	assert_int_equal(put(KEY_A, "cccccccc", "", "cccccccccc", 4), 0);
	assert_null(indexed(HASH_A, ""));
	assert_int_equal(st->idx.copy_bytes, 0);
	assert_body(KEY_A, HASH_A, "", NULL);
	/* Stored again: its new bytes, from the file first. */
	assert_int_equal(put(KEY_A, HASH_A, "", "0000000000", 5), 0);
	assert_true(calls_to_get(KEY_A, HASH_A, "0000000000") > 0);
}

/* Two keys, one hash (the forced collision): never the other's copy. */
static void test_same_hash_other_key_never_gets_the_copy(void **state)
{
	struct cache_st_entry *e;

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "A's body", 1), 0);
	assert_body(KEY_A, HASH_A, "", "A's body");
	assert_non_null(indexed(HASH_A, "")->copy);
	assert_body(KEY_B, HASH_A, "", NULL);
	assert_int_equal(put(KEY_B, HASH_A, "", "B's body", 2), 0);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_body(KEY_B, HASH_A, "", "B's body");
	assert_body(KEY_B, HASH_A, "", "B's body"); /* from B's copy */
	assert_body(KEY_A, HASH_A, "", NULL);
	/* The index says A, the copy holds B (keys of one length): the
	 * copy's own key comparison on every open catches it. */
	e = indexed(HASH_A, "");
	assert_non_null(e->copy);
	assert_int_equal(strlen(KEY_A), strlen(KEY_B));
	memcpy(e->key, KEY_A, strlen(KEY_A));
	assert_int_equal(calls_to_get(KEY_A, HASH_A, NULL), 0);
	assert_int_equal(stat_of("damaged"), 0);
}

static void test_reader_keeps_its_copy_across_replace_and_remove(void **state)
{
	struct cache_store_reader *r1, *r2;
	long allocs = torture_live_allocs();

	open_store(1 << 20);
	assert_int_equal(put(KEY_A, HASH_A, "", "first", 1), 0);
	assert_body(KEY_A, HASH_A, "", "first");
	r1 = open_reader(KEY_A, HASH_A, "");
	assert_int_equal(put(KEY_A, HASH_A, "", "second", 2), 0);
	assert_body(KEY_A, HASH_A, "", "second");
	r2 = open_reader(KEY_A, HASH_A, "");
	assert_int_equal(cache_store_remove(st, KEY_A, HASH_A), 1);
	cache_store_set_limits(st, 0, CACHE_STORE_MAX_OBJECT_DEFAULT);
	assert_body(KEY_A, HASH_A, "", NULL);
	assert_int_equal(cache_store_reader_entry(r1)->fd, -1);
	assert_int_equal(cache_store_reader_entry(r2)->fd, -1);
	assert_reader_body(r1, "first");
	assert_reader_body(r2, "second");
	assert_int_equal(cache_store_reader_entry(r1)->meta.response_time, 1);
	assert_int_equal(sys_memfs_open_files(fs), 0);
	cache_store_reader_close(r2);
	assert_reader_body(r1, "first");
	cache_store_reader_close(r1);
	cache_store_close(st);
	st = NULL;
	assert_int_equal(torture_live_allocs(), allocs); /* no copy leaks */
}

static void test_copy_budget_is_respected(void **state)
{
	static char body[1001];
	char hash[32];
	int copied = 0;

	body_with(body, 1000);
	open_store(64 * 1024); /* budget: 8 KiB, some 7 copies of 1 KiB */
	assert_int_equal(cache_st_copy_budget(&st->idx), 8 * 1024);
	for (int i = 0; i < 20; i++) {
		snprintf(hash, sizeof(hash), "%08x", 0x10000000 + i);
		assert_int_equal(put(KEY_A, hash, "", body, i), 0);
		assert_body(KEY_A, hash, "", body);
		copied += calls_to_get(KEY_A, hash, body) == 0;
		assert_true(st->idx.copy_bytes <= 8 * 1024);
	}
	assert_int_equal(stat_of("entries"), 20);
	assert_true(copied >= 5 && copied < 20);
	/* A reload to a smaller cache: the copies fit its smaller budget. */
	cache_store_set_limits(st, 12 * 1024, CACHE_STORE_MAX_OBJECT_DEFAULT);
	assert_true(st->idx.copy_bytes <= 1536);
	for (int i = 0; i < 20; i++) {
		snprintf(hash, sizeof(hash), "%08x", 0x10000000 + i);
		free(get(KEY_A, hash, ""));
	}
	assert_true(st->idx.copy_bytes <= 1536);
	/* However big the cache, at most 32 MiB of copies. */
	cache_store_set_limits(st, (uint64_t)1 << 40,
			       CACHE_STORE_MAX_OBJECT_DEFAULT);
	assert_int_equal(cache_st_copy_budget(&st->idx), 32 << 20);
}

/*
 * Fail each allocation of an open in turn: an open either fails cleanly
 * (-ENOMEM, nothing leaked) or serves the entry; the run that failed the
 * copy's allocation served it, from the file, and left no copy.
 */
static void test_failed_allocation_of_the_copy_still_serves(void **state)
{
	bool done = false, served_without_copy = false;

	for (long n = 1; !done; n++) {
		struct cache_store_reader *r = NULL;
		long allocs;
		int rc;

		open_store(1 << 20);
		assert_int_equal(put(KEY_A, HASH_A, "", "small body", 1), 0);
		allocs = torture_live_allocs();
		torture_sys(sys_memfs_sys(fs), TORTURE_ALLOC, -ENOMEM, false,
			    n);
		rc = cache_store_open(st, KEY_A, HASH_A,
				      cache_store_variant_id("", 0), &r);
		done = torture_fired() == 0;
		torture_disarm();
		assert_true(rc == 0 || rc == -ENOMEM);
		if (rc == 0) {
			assert_reader_body(r, "small body");
			cache_store_reader_close(r);
			if (!done && !indexed(HASH_A, "")->copy)
				served_without_copy = true;
		}
		/* Copies made count as live until the store closes. */
		if (!indexed(HASH_A, "")->copy)
			assert_int_equal(torture_live_allocs(), allocs);
		assert_body(KEY_A, HASH_A, "", "small body");
		cache_store_close(st);
		st = NULL;
		assert_int_equal(sys_memfs_open_files(fs), 0);
		assert_true(n < 50);
	}
	assert_true(served_without_copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_round_trip),
		T(test_body_offset_is_where_the_body_starts),
		T(test_empty_body),
		T(test_variants_live_side_by_side),
		T(test_too_many_variants_evict_the_least_used),
		T(test_hash_collision_is_a_miss),
		T(test_foreign_file_under_the_name_is_a_miss),
		T(test_bad_arguments),
		T(test_length_mismatch_stores_nothing),
		T(test_abort_removes_the_temporary),
		T(test_growing_past_max_object_size_aborts),
		T(test_short_writes_still_store_whole_entries),
		T(test_lru_eviction_order_and_bound),
		T(test_an_entry_bigger_than_the_cache_is_not_kept),
		T(test_reader_outlives_replace_remove_and_evict),
		T(test_update_rewrites_headers_keeps_body),
		T(test_remove_takes_every_variant_of_the_key_only),
		T(test_write_racing_a_remove_is_not_committed),
		T(test_damaged_file_found_by_open_is_removed),
		T(test_file_deleted_behind_our_back_is_a_miss),
		T(test_restart_keeps_the_cache),
		T(test_recovery_drops_temporaries_and_damage),
		T(test_recovery_evicts_the_oldest_to_fit),
		T(test_open_creates_missing_directories),
		T(test_countdown_transient_eio),
		T(test_countdown_persistent_enospc),
		T(test_countdown_with_short_writes),
		T(test_countdown_update),
		T(test_countdown_open_and_recovery),
		T(test_threads_write_and_read_at_once),
		T(test_threads_with_memory_copies),
		T(test_fill_waiters_follow_the_filler),
		T(test_fill_wait_times_out_and_fills_are_per_variant),
		T(test_first_read_brings_the_body),
		T(test_second_open_of_a_small_entry_makes_no_fs_call),
		T(test_a_big_entry_never_gets_a_copy),
		T(test_replace_drops_the_copy),
		T(test_update_drops_the_copy),
		T(test_remove_and_evict_drop_the_copy),
		T(test_same_hash_other_key_never_gets_the_copy),
		T(test_reader_keeps_its_copy_across_replace_and_remove),
		T(test_copy_budget_is_respected),
		T(test_failed_allocation_of_the_copy_still_serves),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
