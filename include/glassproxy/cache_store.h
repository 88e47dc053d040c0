/*
 * cache store: responses on disk, an in-memory index, LRU eviction, recovery
 * and a registry of fills in progress.  (The integrator folds this header into
 * glassproxy/cache.h as its "store" section.)
 *
 * Contract: the store keeps complete responses and never hands out a torn,
 * truncated or foreign one.  It knows nothing of HTTP: the caller (the proxy
 * glue) gives it a key string, the key's hash in hex, the Vary-selected
 * request fields and the stored response fields as opaque bytes, a few
 * numbers (times, status, a freshness summary) and the identity body.
 *
 *  - Layout: DIR/ab/cd/<hash>-<variant> holds one entry (ab and cd are the
 *    hash's first four hex digits; <variant> is 16 hex digits naming the
 *    Vary-selected fields), DIR/tmp/ holds writes in progress.  No part of a
 *    URL ever becomes a path component.  One process per DIR.
 *  - Variants: several entries of one key (one per distinct variant fields)
 *    live side by side, at most CACHE_STORE_MAX_VARIANTS; a further one
 *    evicts the key's least recently used variant.
 *  - Writes: begin -> append* -> commit or abort.  Nothing is visible until
 *    commit renames a complete, correctly framed file into place; a crash at
 *    any point leaves the old entry or none.  A body that grows past
 *    max_object_size aborts the write by itself (-EFBIG).
 *  - Reads: lookup lists the variants of a key from memory (no I/O);
 *    cache_store_open gives a reader with an fd, the parsed header block and
 *    the body's offset and length.  The stored key is compared byte for byte:
 *    another URL with the same hash is a miss.  A damaged file is removed and
 *    is a miss.  A committed entry is never modified: an open reader keeps
 *    reading it whatever happens to the name (replace, evict, remove).
 *  - Threads: every function may be called from any thread at once.  The
 *    index lock is never held across I/O.
 *  - Errors: 0 or a count on success, a negative errno on failure; -ENOENT
 *    is a miss.  The store never logs.  OS access only through struct sys
 *    (fs and clock).
 */
#ifndef GLASSPROXY_CACHE_STORE_H
#define GLASSPROXY_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "glassproxy/sys.h"

#define CACHE_STORE_MAX_SIZE_DEFAULT   ((uint64_t)256 << 20)
#define CACHE_STORE_MAX_OBJECT_DEFAULT ((uint64_t)16 << 20)
#define CACHE_STORE_MAX_VARIANTS       8
/* A hash is 8 to 64 lower-case hex digits (see cache_key_hash()). */
#define CACHE_STORE_HASH_MAX 64
/* Key, variant fields and stored fields together (the header block). */
#define CACHE_STORE_HEADER_MAX (1u << 20)

struct cache_store;
struct cache_store_writer;
struct cache_store_reader;

struct cache_store_opts {
	const char *dir;	  /* the cache directory; created if missing */
	uint64_t max_size;	  /* bytes on disk (headers + bodies) */
	uint64_t max_object_size; /* body bytes of one entry */
	bool fsync;		  /* fsync each entry before its rename */
};

/* dir "cache", 256 MiB, 16 MiB, fsync on. */
void cache_store_opts_default(struct cache_store_opts *opts);

/* What the caller knows about a stored response; kept in its header block. */
struct cache_store_meta {
	int64_t request_time;  /* wall seconds: the request was sent */
	int64_t response_time; /* wall seconds: the response arrived */
	int64_t expires;       /* freshness summary, opaque to the store */
	uint32_t flags;	       /* the caller's bits, opaque to the store */
	uint16_t status;
};

/* One variant of a key as the index knows it (lookup's answer). */
struct cache_store_variant {
	uint64_t id;
	uint64_t size; /* on disk: header block + body */
	uint64_t body_len;
	struct cache_store_meta meta;
	int64_t last_use_ms; /* sys_now_mono_ms() of its last open */
	const char *vary;    /* the variant fields (points into the list) */
	size_t vary_len;
};

struct cache_store_variants {
	size_t n;
	struct cache_store_variant v[CACHE_STORE_MAX_VARIANTS];
	char *blob; /* owns the vary bytes; cache_store_variants_free() */
};

/* An opened entry.  Valid until cache_store_reader_close(). */
struct cache_store_entry {
	int fd;		      /* read-only; body at body_offset (sendfile) */
	uint64_t body_offset; /* = the header block's length */
	uint64_t body_len;
	uint64_t variant;
	struct cache_store_meta meta;
	const char *key; /* NUL-terminated */
	const char *vary;
	size_t vary_len;
	const char *fields; /* the stored response fields */
	size_t fields_len;
};

struct cache_store_stats {
	uint64_t entries, bytes, max_size;
	uint64_t evictions;   /* entries evicted for space or variants */
	uint64_t damaged;     /* entries found damaged and removed */
	uint64_t recovered;   /* entries indexed by the last open */
	uint64_t tmp_removed; /* leftovers removed from DIR/tmp by open */
};

/*
 * Open (create) the store at opts->dir: remove DIR/tmp/ leftovers, rebuild
 * the index from the entries' header blocks, drop damaged files, evict down
 * to max_size.
 */
int cache_store_open_dir(struct sys *sys, const struct cache_store_opts *opts,
			 struct cache_store **out);
/* Free the index; files stay.  No writer or reader may still be open. */
void cache_store_close(struct cache_store *st);

/* Change the limits live (a reload); a lower max_size evicts at once. */
void cache_store_set_limits(struct cache_store *st, uint64_t max_size,
			    uint64_t max_object_size);
void cache_store_get_stats(struct cache_store *st,
			   struct cache_store_stats *out);

/* The variant id of some variant fields (FNV-1a 64 of the bytes). */
uint64_t cache_store_variant_id(const void *vary, size_t vary_len);

/* ---- writes ---- */

/*
 * Start writing an entry of key (hash in hex) for the variant fields given.
 * The body is appended next; on success the caller ends the writer with
 * exactly one cache_store_write_commit() or cache_store_write_abort().
 * -EINVAL for a bad hash, -EFBIG when the header block is too big.
 */
int cache_store_write_begin(struct cache_store *st, const char *key,
			    const char *hash, const void *vary, size_t vary_len,
			    const struct cache_store_meta *meta,
			    const void *fields, size_t fields_len,
			    struct cache_store_writer **out);
/*
 * Append body bytes (written at once: memory stays bounded).  -EFBIG when
 * the body grows past max_object_size: the write is dropped (its temporary
 * removed) and every later call on it fails the same way.
 */
int cache_store_write_append(struct cache_store_writer *w, const void *buf,
			     size_t len);
/*
 * Finish: body_len must be what was appended (else -EPROTO and nothing is
 * stored).  Renames the entry into place, replacing the same variant.
 * -ESTALE when the key was removed while the write ran.  Frees w.
 */
int cache_store_write_commit(struct cache_store_writer *w, uint64_t body_len);
/* Drop the write and its temporary; frees w.  NULL is a no-op. */
void cache_store_write_abort(struct cache_store_writer *w);

/* ---- reads ---- */

/* The variants of key held in the index (n may be 0).  No I/O. */
int cache_store_lookup(struct cache_store *st, const char *key,
		       const char *hash, struct cache_store_variants *out);
void cache_store_variants_free(struct cache_store_variants *v);

/*
 * Open one variant: -ENOENT on a miss (absent, another key's entry, or a
 * damaged file, which is removed).  Marks the entry recently used.
 */
int cache_store_open(struct cache_store *st, const char *key, const char *hash,
		     uint64_t variant, struct cache_store_reader **out);
const struct cache_store_entry *
cache_store_reader_entry(const struct cache_store_reader *r);
/* pread from the body: off is relative to the body's start. */
ssize_t cache_store_read_body(struct cache_store_reader *r, void *buf,
			      size_t len, uint64_t off);
void cache_store_reader_close(struct cache_store_reader *r);

/*
 * Replace r's entry with one carrying new meta and fields and the same body
 * (a 304's header update): a new file renamed over the old one.  r stays
 * valid and still reads the old entry.
 */
int cache_store_update(struct cache_store *st, struct cache_store_reader *r,
		       const struct cache_store_meta *meta, const void *fields,
		       size_t fields_len);

/* Remove every variant of key (invalidation, PURGE): count removed. */
int cache_store_remove(struct cache_store *st, const char *key,
		       const char *hash);

/* ---- fills in progress (collapsed forwarding) ---- */

struct cache_store_fill;

enum cache_store_fill_role {
	CACHE_STORE_FILL_FILLER = 1, /* fetch it, then cache_store_fill_end() */
	CACHE_STORE_FILL_WAITER = 2, /* someone else fetches: fill_wait() */
};

enum cache_store_fill_result {
	CACHE_STORE_FILL_STORED = 1, /* the filler committed: look up again */
	CACHE_STORE_FILL_NOT_STORED = 2, /* go upstream on your own */
};

/*
 * Join the fill of (hash, variant): the first caller is the FILLER and must
 * call cache_store_fill_end() exactly once; later callers, until then, are
 * WAITERs and must call cache_store_fill_wait() exactly once (timeout 0 to
 * give up at once).  Either way *out is the caller's handle.  -ENOMEM.
 */
int cache_store_fill_begin(struct cache_store *st, const char *hash,
			   uint64_t variant, struct cache_store_fill **out);
/*
 * Wait up to timeout_ms for the filler: STORED, NOT_STORED or -ETIMEDOUT.
 * Releases the handle.  The timeout is measured on the sys wall clock.
 */
int cache_store_fill_wait(struct cache_store *st, struct cache_store_fill *f,
			  int timeout_ms);
/* The filler is done (stored: it committed); wakes every waiter. */
void cache_store_fill_end(struct cache_store *st, struct cache_store_fill *f,
			  bool stored);

#endif
