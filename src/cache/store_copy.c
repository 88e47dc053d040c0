/*
 * The memory copy of a small entry (issue 13): a hit with no file system
 * call at all.
 *
 * When a reader's first read of an entry brought the whole file (header
 * block + body within CACHE_STORE_FIRST_READ), store.c keeps those bytes
 * on the index entry; the next cache_store_open of the same generation
 * takes a reference under the index lock and needs no open, pread or
 * close.  The rules that keep it coherent:
 *
 *  - A copy is made only from a header block that was verified (magic,
 *    version, lengths, CRC, variant, exact file size) and whose key was
 *    compared with the one asked for, and it is never written again.
 *  - It belongs to one index entry, which is one generation of one file:
 *    it is attached only if the entry is still the generation the reader
 *    claimed before opening the file, checked under the name lock, which
 *    a commit holds from its rename to its index insert; so the bytes are
 *    those of the file the entry names.  Whatever takes the entry out of
 *    the index (a replacing commit, a 304 update, eviction, remove, a
 *    damaged or vanished file) drops the copy with it.
 *  - Readers hold references: a reader opened from a copy keeps its bytes
 *    whatever happens to the entry afterwards, as a reader holding the old
 *    descriptor keeps the old file.
 *  - Memory is bounded by a budget the index accounts (copy_bytes,
 *    cache_st_copy_budget()); over it no copy is attached.  Copies held
 *    only by readers are outside it, until the last reader closes.
 *  - A failed allocation is no copy: the entry is read from its file.
 */
#include "cache/store_int.h"

#include <stdlib.h>
#include <string.h>

/* The pointer p into file, moved to the same place in the copy's bytes. */
static const char *rebase(const struct cache_st_copy *c,
			  const unsigned char *file, const char *p)
{
	return (const char *)c->bytes + (p - (const char *)file);
}

struct cache_st_copy *cache_st_copy_make(const unsigned char *file, size_t len,
					 const struct cache_st_header *h)
{
	size_t charge = sizeof(struct cache_st_copy) + len + h->key_len + 1;
	struct cache_st_copy *c = malloc(charge);
	char *key;

	if (!c)
		return NULL;
	memcpy(c->bytes, file, len);
	c->h = *h;
	c->h.key = rebase(c, file, h->key);
	c->h.vary = rebase(c, file, h->vary);
	c->h.fields = rebase(c, file, h->fields);
	/* The header block's key is not NUL-terminated: readers want one. */
	key = (char *)c->bytes + len;
	memcpy(key, h->key, h->key_len);
	key[h->key_len] = '\0';
	c->key = key;
	c->charge = charge;
	atomic_init(&c->refs, 1);
	return c;
}

struct cache_st_copy *cache_st_copy_ref(struct cache_st_copy *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void cache_st_copy_unref(struct cache_st_copy *c)
{
	/* acq_rel: the last one out sees every other holder's reads done. */
	if (c &&
	    atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		free(c);
}

void cache_st_copy_attach(struct cache_store *st, const char *hash,
			  uint64_t variant, uint64_t gen,
			  struct cache_st_copy *c)
{
	pthread_mutex_t *nl = cache_st_name_lock(st, hash);
	struct cache_st_index *idx = &st->idx;
	struct cache_st_entry *e;

	/*
	 * The name lock: a commit renames a new file over the name and
	 * indexes it (a new generation) in one hold of it, so while we hold
	 * it an entry still of generation gen names the file we read.
	 */
	pthread_mutex_lock(nl);
	pthread_mutex_lock(&idx->lock);
	e = cache_st_index_find(idx, hash, variant);
	if (e && e->gen == gen && !e->copy &&
	    idx->copy_bytes + c->charge <= cache_st_copy_budget(idx)) {
		e->copy = c;
		idx->copy_bytes += c->charge;
		c = NULL;
	}
	pthread_mutex_unlock(&idx->lock);
	pthread_mutex_unlock(nl);
	cache_st_copy_unref(c); /* not attached: nobody else has it */
}
