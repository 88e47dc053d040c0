/*
 * The store's in-memory index: a chained hash table of (hash, variant)
 * entries threaded on one LRU list, the byte count against max_size, the
 * removal tombstones, and the registry of fills in progress.  Memory only:
 * no function here does I/O, so holding idx->lock around them is cheap.
 */
#include "cache/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 1024

int cache_st_index_init(struct cache_st_index *idx, uint64_t max_size,
			uint64_t max_object_size)
{
	memset(idx, 0, sizeof(*idx));
	idx->buckets = calloc(INITIAL_BUCKETS, sizeof(*idx->buckets));
	if (!idx->buckets)
		return -ENOMEM;
	idx->n_buckets = INITIAL_BUCKETS;
	idx->max_size = max_size;
	idx->max_object_size = max_object_size;
	idx->next_gen = 1;
	pthread_mutex_init(&idx->lock, NULL);
	return 0;
}

void cache_st_index_free(struct cache_st_index *idx)
{
	struct cache_st_entry *e = idx->lru_head;

	while (e) {
		struct cache_st_entry *next = e->lru_next;
		cache_st_entry_free(e);
		e = next;
	}
	cache_st_fills_free(idx);
	free(idx->buckets);
	pthread_mutex_destroy(&idx->lock);
}

/* The hash string's own hash: callers' hashes are hex, tests' may be not. */
uint64_t cache_st_hkey(const char *hash)
{
	return cache_st_fnv1a(hash, strlen(hash));
}

struct cache_st_entry *cache_st_entry_new(const char *hash, uint64_t variant,
					  const char *key, size_t key_len,
					  const char *vary, size_t vary_len)
{
	struct cache_st_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	/* One block for "key\0" and vary (vary may hold any byte). */
	e->key = malloc(key_len + 1 + vary_len);
	if (!e->key) {
		free(e);
		return NULL;
	}
	memcpy(e->key, key, key_len);
	e->key[key_len] = '\0';
	e->vary = e->key + key_len + 1;
	memcpy(e->vary, vary, vary_len);
	e->vary_len = vary_len;
	cache_st_copy_hash(e->hash, hash);
	e->variant = variant;
	return e;
}

void cache_st_entry_free(struct cache_st_entry *e)
{
	if (!e)
		return;
	cache_st_copy_unref(e->copy); /* readers may still hold it */
	free(e->key);
	free(e);
}

static size_t bucket_of(const struct cache_st_index *idx, const char *hash)
{
	return (size_t)(cache_st_hkey(hash) & (idx->n_buckets - 1));
}

struct cache_st_entry *cache_st_index_find(struct cache_st_index *idx,
					   const char *hash, uint64_t variant)
{
	struct cache_st_entry *e = idx->buckets[bucket_of(idx, hash)];

	for (; e; e = e->chain)
		if (e->variant == variant && strcmp(e->hash, hash) == 0)
			return e;
	return NULL;
}

/* Double the table when it is full; a failed allocation keeps the old one. */
static void maybe_grow(struct cache_st_index *idx)
{
	size_t n = idx->n_buckets * 2;
	struct cache_st_entry **fresh;

	if (idx->n_entries < idx->n_buckets)
		return;
	fresh = calloc(n, sizeof(*fresh));
	if (!fresh)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < idx->n_buckets; i++) {
		struct cache_st_entry *e = idx->buckets[i], *next;
		for (; e; e = next) {
			size_t b = (size_t)(cache_st_hkey(e->hash) & (n - 1));
			next = e->chain;
			e->chain = fresh[b];
			fresh[b] = e;
		}
	}
	free(idx->buckets);
	idx->buckets = fresh;
	idx->n_buckets = n;
}

static void lru_remove(struct cache_st_index *idx, struct cache_st_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		idx->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		idx->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct cache_st_index *idx, struct cache_st_entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = idx->lru_head;
	if (idx->lru_head)
		idx->lru_head->lru_prev = e;
	idx->lru_head = e;
	if (!idx->lru_tail)
		idx->lru_tail = e;
}

/* Take e out of the table and the LRU list (the caller frees it). */
void cache_st_index_unlink_entry(struct cache_st_index *idx,
				 struct cache_st_entry *e)
{
	struct cache_st_entry **pp = &idx->buckets[bucket_of(idx, e->hash)];

	while (*pp && *pp != e)
		pp = &(*pp)->chain;
	if (*pp)
		*pp = e->chain;
	lru_remove(idx, e);
	idx->n_entries--;
	idx->bytes -= e->size;
	if (e->copy) /* it leaves with the entry (freed by entry_free) */
		idx->copy_bytes -= e->copy->charge;
}

void cache_st_index_touch(struct cache_st_index *idx, struct cache_st_entry *e,
			  int64_t now)
{
	e->last_use_ms = now;
	lru_remove(idx, e);
	lru_push_head(idx, e);
}

/* Turn an indexed entry into a victim; a failed allocation leaks a file. */
static void evict(struct cache_st_index *idx, struct cache_st_entry *e,
		  struct cache_st_victim **victims)
{
	struct cache_st_victim *v = malloc(sizeof(*v));

	cache_st_index_unlink_entry(idx, e);
	idx->evictions++;
	idx->evicted_bytes += e->size;
	if (v) {
		memcpy(v->hash, e->hash, sizeof(v->hash));
		v->variant = e->variant;
		v->next = *victims;
		*victims = v;
	}
	/* else: the file stays, unindexed, until the next recovery drops it
	 * or a later commit of the same name replaces it. */
	cache_st_entry_free(e);
}

/* The least recently used variant of hash when it has too many. */
static struct cache_st_entry *variant_overflow(struct cache_st_index *idx,
					       const char *hash)
{
	struct cache_st_entry *e = idx->buckets[bucket_of(idx, hash)],
			      *oldest = NULL;
	size_t n = 0;

	for (; e; e = e->chain) {
		if (strcmp(e->hash, hash) != 0)
			continue;
		n++;
		if (!oldest || e->last_use_ms < oldest->last_use_ms)
			oldest = e;
	}
	return n > CACHE_STORE_MAX_VARIANTS ? oldest : NULL;
}

int cache_st_index_insert(struct cache_st_index *idx, struct cache_st_entry *e,
			  struct cache_st_victim **victims)
{
	struct cache_st_entry *old =
		cache_st_index_find(idx, e->hash, e->variant);
	struct cache_st_entry *extra;
	size_t b;

	if (old) {
		/* Replaced by a rename: the old file is gone already. */
		cache_st_index_unlink_entry(idx, old);
		cache_st_entry_free(old);
	}
	maybe_grow(idx);
	b = bucket_of(idx, e->hash);
	e->chain = idx->buckets[b];
	idx->buckets[b] = e;
	e->gen = idx->next_gen++;
	lru_push_head(idx, e);
	idx->n_entries++;
	idx->bytes += e->size;
	extra = variant_overflow(idx, e->hash);
	if (extra)
		evict(idx, extra, victims);
	cache_st_index_shrink(idx, victims);
	return 0;
}

void cache_st_index_shrink(struct cache_st_index *idx,
			   struct cache_st_victim **victims)
{
	while (idx->bytes > idx->max_size && idx->lru_tail)
		evict(idx, idx->lru_tail, victims);
}

/*
 * A copy duplicates bytes the page cache holds anyway, so its budget is
 * kept a small part of what the cache may take on disk (an eighth), and
 * at most 32 MiB however big the cache is: room for 2,000 entries of the
 * largest size a copy has (16 KiB), some 25,000 of 1 KiB.
 */
uint64_t cache_st_copy_budget(const struct cache_st_index *idx)
{
	uint64_t b = idx->max_size / CS_COPY_BUDGET_DIV;

	return b < CS_COPY_BUDGET_MAX ? b : CS_COPY_BUDGET_MAX;
}

/* A lower max_size (a reload) lowers the budget: the coldest copies go. */
void cache_st_index_trim_copies(struct cache_st_index *idx)
{
	uint64_t budget = cache_st_copy_budget(idx);
	struct cache_st_entry *e = idx->lru_tail;

	for (; e && idx->copy_bytes > budget; e = e->lru_prev)
		if (e->copy) {
			idx->copy_bytes -= e->copy->charge;
			cache_st_copy_unref(e->copy);
			e->copy = NULL;
		}
}

/* ---- tombstones: removals a write in progress must not undo ---- */

void cache_st_index_tombstone(struct cache_st_index *idx, const char *hash)
{
	idx->epoch++;
	idx->tomb[idx->epoch % CS_TOMBSTONES].epoch = idx->epoch;
	idx->tomb[idx->epoch % CS_TOMBSTONES].hkey = cache_st_hkey(hash);
}

bool cache_st_index_removed_since(struct cache_st_index *idx, const char *hash,
				  uint64_t epoch)
{
	uint64_t hkey = cache_st_hkey(hash);

	if (idx->epoch == epoch)
		return false;
	/* The ring forgot some removals since then: assume the worst. */
	if (idx->epoch - epoch >= CS_TOMBSTONES)
		return true;
	for (uint64_t e = epoch + 1; e <= idx->epoch; e++)
		if (idx->tomb[e % CS_TOMBSTONES].hkey == hkey)
			return true;
	return false;
}

/* ---- fills in progress ---- */

struct cache_store_fill {
	char hash[CACHE_STORE_HASH_MAX + 1];
	uint64_t variant;
	bool done, stored;
	unsigned refs; /* the filler and each waiter */
	pthread_cond_t cond;
	struct cache_store_fill *next;
};

void cache_st_fills_free(struct cache_st_index *idx)
{
	struct cache_store_fill *f = idx->fills, *next;

	/* Only reached at close, when no handle may be left. */
	for (; f; f = next) {
		next = f->next;
		pthread_cond_destroy(&f->cond);
		free(f);
	}
	idx->fills = NULL;
}

static void fill_unref(struct cache_st_index *idx, struct cache_store_fill *f)
{
	struct cache_store_fill **pp = &idx->fills;

	if (--f->refs > 0)
		return;
	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
	pthread_cond_destroy(&f->cond);
	free(f);
}

static struct cache_store_fill *fill_new(struct cache_st_index *idx,
					 const char *hash, uint64_t variant)
{
	struct cache_store_fill *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	cache_st_copy_hash(f->hash, hash);
	f->variant = variant;
	f->refs = 1;
	pthread_cond_init(&f->cond, NULL);
	f->next = idx->fills;
	idx->fills = f;
	return f;
}

int cache_store_fill_begin(struct cache_store *st, const char *hash,
			   uint64_t variant, struct cache_store_fill **out)
{
	struct cache_st_index *idx = &st->idx;
	struct cache_store_fill *f;
	int rc = CACHE_STORE_FILL_WAITER;

	pthread_mutex_lock(&idx->lock);
	/* A finished fill still held by its waiters is not joined. */
	for (f = idx->fills; f; f = f->next)
		if (!f->done && f->variant == variant &&
		    strcmp(f->hash, hash) == 0)
			break;
	if (f) {
		f->refs++;
	} else {
		f = fill_new(idx, hash, variant);
		rc = f ? CACHE_STORE_FILL_FILLER : -ENOMEM;
	}
	pthread_mutex_unlock(&idx->lock);
	*out = f;
	return rc;
}

/* The absolute wall-clock deadline pthread_cond_timedwait() wants. */
static struct timespec deadline_after(struct sys *sys, int timeout_ms)
{
	struct timespec t = {0, 0};

	sys_now_wall(sys, &t);
	t.tv_sec += timeout_ms / 1000;
	t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

int cache_store_fill_wait(struct cache_store *st, struct cache_store_fill *f,
			  int timeout_ms)
{
	struct cache_st_index *idx = &st->idx;
	struct timespec until = deadline_after(st->sys, timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&idx->lock);
	while (!f->done && rc == 0 && timeout_ms > 0)
		rc = pthread_cond_timedwait(&f->cond, &idx->lock, &until);
	if (f->done)
		rc = f->stored ? CACHE_STORE_FILL_STORED
			       : CACHE_STORE_FILL_NOT_STORED;
	else
		rc = -ETIMEDOUT;
	fill_unref(idx, f);
	pthread_mutex_unlock(&idx->lock);
	return rc;
}

void cache_store_fill_end(struct cache_store *st, struct cache_store_fill *f,
			  bool stored)
{
	struct cache_st_index *idx = &st->idx;

	pthread_mutex_lock(&idx->lock);
	f->done = true;
	f->stored = stored;
	pthread_cond_broadcast(&f->cond);
	fill_unref(idx, f);
	pthread_mutex_unlock(&idx->lock);
}
