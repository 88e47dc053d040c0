/*
 * Internals of the cache store shared by store.c (files: writes, reads,
 * recovery), store_index.c (the in-memory index, eviction, fills) and
 * store_format.c (the header block), and reachable by tests/test_cache_store.c.
 * See docs/cache.md (section Store) for the byte layout and the protocols.
 */
#ifndef GLASSPROXY_CACHE_STORE_INT_H
#define GLASSPROXY_CACHE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "glassproxy/cache.h"
#include "glassproxy/util.h"

#define CS_PATH_MAX 4096
#define CS_COPY_CHUNK (64 * 1024) /* bounded copies (304 updates) */

/* hash was validated (at most CACHE_STORE_HASH_MAX): it always fits. */
static inline void cache_st_copy_hash(char *dst, const char *hash)
{
	(void)util_copy(dst, CACHE_STORE_HASH_MAX + 1, hash, strlen(hash));
}

/* ---- the header block (store_format.c) ---- */

#define CS_MAGIC       "GPXSTORE"
#define CS_MAGIC_LEN   8
#define CS_VERSION     1
#define CS_FIXED_LEN   80 /* bytes before the key */
#define CS_CRC_LEN     4
#define CS_HEAD_READ   CACHE_STORE_FIRST_READ /* first read of a header block */
#define CS_VARIANT_HEX 16

/* A decoded header block; the byte strings point into the block. */
struct cache_st_header {
	uint32_t version;
	uint32_t header_len;
	uint64_t body_len;
	uint64_t variant;
	struct cache_store_meta meta;
	const char *key;
	size_t key_len;
	const char *vary;
	size_t vary_len;
	const char *fields;
	size_t fields_len;
};

uint32_t cache_st_crc32c(uint32_t crc, const void *buf, size_t len);
uint64_t cache_st_fnv1a(const void *buf, size_t len);
/* Bytes the header block of these strings takes (0: too big). */
size_t cache_st_header_len(size_t key_len, size_t vary_len, size_t fields_len);
/* Encode h into buf[h->header_len] (h->header_len set by the caller). */
void cache_st_header_encode(const struct cache_st_header *h, unsigned char *buf);
/*
 * How long the header block starting with buf[len] is (reads the fixed
 * part only): 0 and *len_out, or -EBADMSG (bad magic or length) or
 * -EPROTO (another format version).
 */
int cache_st_header_peek(const unsigned char *buf, size_t len, uint32_t *len_out);
/* Decode and verify a whole block: 0, -EBADMSG or -EPROTO. */
int cache_st_header_decode(const unsigned char *buf, size_t len,
		     struct cache_st_header *out);
/* Set the body length of an encoded block and checksum it again. */
void cache_st_header_seal(unsigned char *buf, uint32_t header_len,
		    uint64_t body_len);

/* ---- the memory copy of a small entry (store_copy.c) ---- */

/*
 * The whole file of a small committed entry (header block + body, at most
 * CS_HEAD_READ bytes: what one first read brought), made from a verified
 * header block and immutable from then on.  A copy belongs to one index
 * entry, that is one generation of one file, and leaves the index with it
 * (replace, 304 update, evict, remove, damage); each reader opened from it
 * holds a reference, so its bytes stay valid after that, as an open
 * descriptor keeps an unlinked file.  docs/cache.md, "The memory copy".
 */
struct cache_st_copy {
	atomic_uint refs;	  /* the index entry's, and one per reader */
	size_t charge;		  /* bytes counted against the budget */
	struct cache_st_header h; /* decoded; points into bytes */
	const char *key;	  /* NUL-terminated, behind the file's bytes */
	unsigned char bytes[];	  /* the file, h.header_len + h.body_len */
};

/* The copies' budget: min(this, max_size / CS_COPY_BUDGET_DIV). */
#define CS_COPY_BUDGET_MAX ((uint64_t)32 << 20)
#define CS_COPY_BUDGET_DIV 8

/* ---- the index (store_index.c) ---- */

struct cache_st_entry {
	char hash[CACHE_STORE_HASH_MAX + 1];
	uint64_t variant;
	uint64_t gen; /* unique per commit: tells a replaced entry apart */
	uint64_t size, body_len;
	struct cache_store_meta meta;
	int64_t last_use_ms;
	char *key; /* key and vary in one allocation */
	char *vary;
	size_t vary_len;
	struct cache_st_copy *copy; /* the file in memory, or NULL */
	struct cache_st_entry *lru_prev, *lru_next; /* head: most recently used */
	struct cache_st_entry *chain;		      /* the bucket's next */
};

#define CS_TOMBSTONES 64
#define CS_NAME_LOCKS 64

struct cache_st_index {
	pthread_mutex_t lock; /* guards everything below; never held over I/O */
	struct cache_st_entry **buckets;
	size_t n_buckets, n_entries;
	struct cache_st_entry *lru_head, *lru_tail;
	uint64_t bytes, max_size, max_object_size;
	uint64_t copy_bytes; /* charged by the copies entries hold */
	uint64_t next_gen;
	/* Recent removals, so a write that began before one cannot commit. */
	uint64_t epoch;
	struct {
		uint64_t epoch, hkey;
	} tomb[CS_TOMBSTONES];
	uint64_t evictions, evicted_bytes, damaged;
	struct cache_store_fill *fills; /* fills in progress */
};

struct cache_store {
	struct sys *sys;
	char *dir;
	bool fsync;
	struct cache_st_index idx;
	/*
	 * Name locks serialise the file operations on one hash (rename into
	 * place, unlink) with the index update that goes with them, so a late
	 * unlink never removes a newer entry of the same name.  Striped by
	 * hash; taken before idx.lock, never the other way round.
	 */
	pthread_mutex_t name_locks[CS_NAME_LOCKS];
	uint64_t tmp_seq; /* guarded by idx.lock */
	uint64_t recovered, tmp_removed;
};

/* A victim taken out of the index, to be unlinked outside its lock. */
struct cache_st_victim {
	char hash[CACHE_STORE_HASH_MAX + 1];
	uint64_t variant;
	struct cache_st_victim *next;
};

int cache_st_index_init(struct cache_st_index *idx, uint64_t max_size,
		  uint64_t max_object_size);
void cache_st_index_free(struct cache_st_index *idx);
uint64_t cache_st_hkey(const char *hash);
/* Callers of the functions below hold idx->lock. */
struct cache_st_entry *cache_st_index_find(struct cache_st_index *idx, const char *hash,
			       uint64_t variant);
/*
 * Insert a fresh entry (replacing one of the same name) as the most
 * recently used.  Entries pushed out (size, variants) go to *victims.
 */
int cache_st_index_insert(struct cache_st_index *idx, struct cache_st_entry *e,
		    struct cache_st_victim **victims);
void cache_st_index_unlink_entry(struct cache_st_index *idx, struct cache_st_entry *e);
void cache_st_index_touch(struct cache_st_index *idx, struct cache_st_entry *e, int64_t now);
/* Evict from the LRU end down to max_size. */
void cache_st_index_shrink(struct cache_st_index *idx, struct cache_st_victim **victims);
struct cache_st_entry *cache_st_entry_new(const char *hash, uint64_t variant,
			      const char *key, size_t key_len,
			      const char *vary, size_t vary_len);
void cache_st_entry_free(struct cache_st_entry *e);
/* Removals (tombstones) since epoch touching hash: a write must not land. */
bool cache_st_index_removed_since(struct cache_st_index *idx, const char *hash,
			    uint64_t epoch);
void cache_st_index_tombstone(struct cache_st_index *idx, const char *hash);
void cache_st_fills_free(struct cache_st_index *idx);

/* The copies' budget for idx's max_size (idx->lock held). */
uint64_t cache_st_copy_budget(const struct cache_st_index *idx);
/* Drop copies from the LRU end until copy_bytes fits the budget. */
void cache_st_index_trim_copies(struct cache_st_index *idx);

/* store_copy.c.  NULL when allocation fails (then: no copy, no harm). */
struct cache_st_copy *cache_st_copy_make(const unsigned char *file,
					 size_t len,
					 const struct cache_st_header *h);
struct cache_st_copy *cache_st_copy_ref(struct cache_st_copy *c);
void cache_st_copy_unref(struct cache_st_copy *c); /* NULL is fine */
/*
 * Give the entry (hash, variant) the copy c of the file a reader opened
 * after claiming generation gen, if it is still that generation, has none
 * and the budget allows; otherwise c is freed.  Takes the name lock.
 */
void cache_st_copy_attach(struct cache_store *st, const char *hash,
			  uint64_t variant, uint64_t gen,
			  struct cache_st_copy *c);

/* ---- files (store.c, store_recover.c) ---- */

bool cache_st_is_hex(char c);
bool cache_st_valid_hash(const char *hash);
/*
 * Read and verify the header block of the entry open as fd into a fresh
 * buffer *out (decoded into *h, which points into it).  -EBADMSG also when
 * the file is not exactly header + body long; -EPROTO for another version.
 */
int cache_st_read_header(struct sys *sys, int fd, unsigned char **out,
		   struct cache_st_header *h);
/* A code from cache_st_read_header() that means "remove this file". */
bool cache_st_damaged(int rc);
/* Rebuild the index from DIR/??/??/ (store_recover.c). */
int cache_st_recover(struct cache_store *st);

/* Unlink every victim's file under its name lock, unless re-committed. */
void cache_st_unlink_victims(struct cache_store *st, struct cache_st_victim *victims);
pthread_mutex_t *cache_st_name_lock(struct cache_store *st, const char *hash);
/* DIR/ab/cd/<hash>-<variant> into buf[cap]. */
int cache_st_entry_path(const struct cache_store *st, const char *hash,
		  uint64_t variant, char *buf, size_t cap);

#endif
