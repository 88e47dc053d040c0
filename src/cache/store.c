/*
 * The cache store's files: the write protocol (temporary, append, seal,
 * fsync, rename), readers (from the file, or from a small entry's memory
 * copy: store_copy.c), header updates, removal, and recovery at open.
 * See include/glassproxy/cache.h (its store section) for the contract and
 * docs/cache.md (section Store) for the format and the reasoning.
 *
 * Lock order: a name lock (per hash stripe), then idx.lock.  idx.lock is
 * only ever held around memory work; name locks are held across the one or
 * two file operations that must not interleave with another thread's on the
 * same name (rename into place, unlink).
 */
#include "cache/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct cache_store_writer {
	struct cache_store *st;
	int fd;
	int failed; /* 0, or the error that dropped the write */
	char tmp[CS_PATH_MAX];
	char hash[CACHE_STORE_HASH_MAX + 1];
	uint64_t variant, written, max_object, epoch;
	struct cache_store_meta meta;
	unsigned char *head; /* the encoded header block */
	uint32_t head_len;
	struct cache_st_entry *entry; /* what the index gets at commit */
};

/*
 * A reader reads its entry's file through its descriptor (head and key are
 * its own), or, opened from the entry's memory copy, holds a reference to
 * that copy instead (fd -1; head, key and the whole body point into it).
 */
struct cache_store_reader {
	struct cache_store_entry pub;
	struct cache_store *st;
	char hash[CACHE_STORE_HASH_MAX + 1];
	unsigned char *head;
	char *key;
	struct cache_st_copy *copy;
};

void cache_store_opts_default(struct cache_store_opts *opts)
{
	opts->dir = "cache";
	opts->max_size = CACHE_STORE_MAX_SIZE_DEFAULT;
	opts->max_object_size = CACHE_STORE_MAX_OBJECT_DEFAULT;
	opts->fsync = true;
}

bool cache_st_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Hashes become file names: only lower-case hex, 8 to 64 digits. */
bool cache_st_valid_hash(const char *hash)
{
	size_t n = 0;

	if (!hash)
		return false;
	for (; hash[n]; n++)
		if (n >= CACHE_STORE_HASH_MAX || !cache_st_is_hex(hash[n]))
			return false;
	return n >= 8;
}

/*
 * DIR/ab/cd/<hash>-<variant>, the same as util_format's
 * "%s/%.2s/%.2s/%s-%016" PRIx64 (hash is valid: 8 to 64 hex digits), put
 * together by hand: every hit opens one, and vsnprintf made it a twentieth
 * of a hit's instructions.
 */
int cache_st_entry_path(const struct cache_store *st, const char *hash,
			uint64_t variant, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t dir = strlen(st->dir), hl = strlen(hash);
	size_t len = dir + 7 + hl + 1 + CS_VARIANT_HEX;
	char *p = buf;

	if (len >= cap)
		return -ENOSPC; /* as util_format says it */
	memcpy(p, st->dir, dir);
	p += dir;
	*p++ = '/';
	memcpy(p, hash, 2);
	p[2] = '/';
	memcpy(p + 3, hash + 2, 2);
	p[5] = '/';
	p += 6;
	memcpy(p, hash, hl);
	p += hl;
	*p++ = '-';
	for (int i = CS_VARIANT_HEX - 1; i >= 0; i--, variant >>= 4)
		p[i] = hex[variant & 15];
	p[CS_VARIANT_HEX] = '\0';
	return (int)len;
}

pthread_mutex_t *cache_st_name_lock(struct cache_store *st, const char *hash)
{
	return &st->name_locks[cache_st_hkey(hash) % CS_NAME_LOCKS];
}

static int mkdir_ok(struct sys *sys, const char *path)
{
	int rc = sys_mkdir(sys, path, 0755);
	return rc == -EEXIST ? 0 : rc;
}

void cache_st_unlink_victims(struct cache_store *st,
			     struct cache_st_victim *victims)
{
	char path[CS_PATH_MAX];

	while (victims) {
		struct cache_st_victim *v = victims;
		pthread_mutex_t *nl = cache_st_name_lock(st, v->hash);
		bool again;

		pthread_mutex_lock(nl);
		pthread_mutex_lock(&st->idx.lock);
		/* Committed anew since it was evicted: that file is live. */
		again = cache_st_index_find(&st->idx, v->hash, v->variant) !=
			NULL;
		pthread_mutex_unlock(&st->idx.lock);
		if (!again && cache_st_entry_path(st, v->hash, v->variant, path,
						  sizeof(path)) >= 0)
			sys_unlink(st->sys, path);
		pthread_mutex_unlock(nl);
		victims = v->next;
		free(v);
	}
}

/* ---- reading a header block (readers and recovery) ---- */

/*
 * pread from offset got on until at least need bytes are in buf (room for
 * cap), or end of file: the count in buf, or an error.  POSIX lets a read
 * return fewer bytes than asked before the end (a signal, NFS, FUSE, the
 * fault sys's short:N); taken for the end, a short count made a good entry
 * look truncated, and a damaged entry is deleted.  One pread as a rule.
 */
static ssize_t pread_at_least(struct sys *sys, int fd, unsigned char *buf,
			      size_t got, size_t need, size_t cap)
{
	while (got < need) {
		ssize_t n =
			sys_pread(sys, fd, buf + got, cap - got, (off_t)got);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/*
 * Is the file exactly header block + body long?  A first read that stopped
 * short of CS_HEAD_READ ended at end of file, so it already gave the size
 * (most entries are small: this saves recovery an fstat per file);
 * otherwise, or when that does not add up, fstat says.  (A read cut short
 * exactly there in a file with bytes appended would pass: harmless, as
 * every read of the body stops at its stored length.)
 */
static int check_size(struct sys *sys, int fd, const struct cache_st_header *h,
		      ssize_t first_read)
{
	uint64_t want = h->header_len + h->body_len;
	struct stat sb;
	int rc;

	if (first_read < CS_HEAD_READ && (uint64_t)first_read == want)
		return 0;
	rc = sys_fstat(sys, fd, &sb);
	if (rc < 0)
		return rc;
	return sb.st_size >= 0 && (uint64_t)sb.st_size == want ? 0 : -EBADMSG;
}

/*
 * Read and verify the header block of the open entry fd into a fresh
 * buffer.  A file whose size is not header + body exactly (truncated, or
 * something appended) is -EBADMSG like bad bytes; -EPROTO for another
 * format version; other codes are I/O errors.  *got: how many bytes the
 * buffer holds, header block and whatever of the body came with it.
 */
static int read_header_got(struct sys *sys, int fd, unsigned char **out,
			   struct cache_st_header *h, size_t *got)
{
	unsigned char *buf = malloc(CS_HEAD_READ);
	ssize_t first, n;
	uint32_t hlen;
	int rc;

	if (!buf)
		return -ENOMEM;
	n = first = pread_at_least(sys, fd, buf, 0, CS_FIXED_LEN, CS_HEAD_READ);
	rc = n < 0 ? (int)n : cache_st_header_peek(buf, (size_t)n, &hlen);
	if (rc < 0)
		goto free_buf;
	if (hlen > (size_t)n) {
		unsigned char *all =
			hlen > CS_HEAD_READ ? realloc(buf, hlen) : buf;
		rc = -ENOMEM;
		if (!all)
			goto free_buf;
		buf = all;
		n = pread_at_least(sys, fd, buf, (size_t)n, hlen, hlen);
		rc = n < 0 ? (int)n : 0;
		if (rc < 0)
			goto free_buf;
	}
	rc = cache_st_header_decode(buf, (size_t)n, h);
	if (rc == 0)
		rc = check_size(sys, fd, h, first);
	if (rc < 0)
		goto free_buf;
	*out = buf;
	*got = (size_t)n;
	return 0;

free_buf:
	free(buf);
	return rc;
}

int cache_st_read_header(struct sys *sys, int fd, unsigned char **out,
			 struct cache_st_header *h)
{
	size_t got;

	return read_header_got(sys, fd, out, h, &got);
}

bool cache_st_damaged(int rc)
{
	return rc == -EBADMSG || rc == -EPROTO;
}

/* ---- lifecycle ---- */

static int clear_tmp_one(void *arg, const char *name, unsigned char d_type)
{
	struct cache_store *st = arg;
	char path[CS_PATH_MAX];

	if (util_format(path, sizeof(path), "%s/tmp/%s", st->dir, name) >= 0 &&
	    sys_unlink(st->sys, path) == 0)
		st->tmp_removed++;
	return 0;
}

static int make_dirs(struct cache_store *st)
{
	char path[CS_PATH_MAX];
	int rc = mkdir_ok(st->sys, st->dir);

	if (rc < 0)
		return rc;
	rc = util_format(path, sizeof(path), "%s/tmp", st->dir);
	if (rc < 0)
		return rc;
	rc = mkdir_ok(st->sys, path);
	if (rc < 0)
		return rc;
	/* Temporaries are writes a crash interrupted: never complete. */
	return sys_list_dir(st->sys, path, clear_tmp_one, st);
}

static int store_alloc(struct sys *sys, const struct cache_store_opts *opts,
		       struct cache_store **out)
{
	size_t n = strlen(opts->dir);
	struct cache_store *st;

	/* Room for "/ab/cd/<64 hex>-<16 hex>.<seq>" behind the dir. */
	if (n == 0)
		return -EINVAL;
	if (n > CS_PATH_MAX - 128)
		return -ENAMETOOLONG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->dir = malloc(n + 1);
	if (!st->dir)
		goto free_store;
	memcpy(st->dir, opts->dir, n + 1);
	if (cache_st_index_init(&st->idx, opts->max_size,
				opts->max_object_size))
		goto free_dir;
	for (size_t i = 0; i < CS_NAME_LOCKS; i++)
		pthread_mutex_init(&st->name_locks[i], NULL);
	st->sys = sys;
	st->fsync = opts->fsync;
	*out = st;
	return 0;

free_dir:
	free(st->dir);
free_store:
	free(st);
	return -ENOMEM;
}

int cache_store_open_dir(struct sys *sys, const struct cache_store_opts *opts,
			 struct cache_store **out)
{
	struct cache_store *st;
	int rc = store_alloc(sys, opts, &st);

	if (rc < 0)
		return rc;
	rc = make_dirs(st);
	if (rc < 0)
		goto close_store;
	rc = cache_st_recover(st);
	if (rc < 0)
		goto close_store;
	*out = st;
	return 0;

close_store:
	cache_store_close(st);
	return rc;
}

void cache_store_close(struct cache_store *st)
{
	if (!st)
		return;
	cache_st_index_free(&st->idx);
	for (size_t i = 0; i < CS_NAME_LOCKS; i++)
		pthread_mutex_destroy(&st->name_locks[i]);
	free(st->dir);
	free(st);
}

void cache_store_set_limits(struct cache_store *st, uint64_t max_size,
			    uint64_t max_object_size)
{
	struct cache_st_victim *victims = NULL;

	pthread_mutex_lock(&st->idx.lock);
	st->idx.max_size = max_size;
	st->idx.max_object_size = max_object_size;
	cache_st_index_shrink(&st->idx, &victims);
	cache_st_index_trim_copies(&st->idx);
	pthread_mutex_unlock(&st->idx.lock);
	cache_st_unlink_victims(st, victims);
}

void cache_store_get_stats(struct cache_store *st,
			   struct cache_store_stats *out)
{
	pthread_mutex_lock(&st->idx.lock);
	out->entries = st->idx.n_entries;
	out->bytes = st->idx.bytes;
	out->max_size = st->idx.max_size;
	out->evictions = st->idx.evictions;
	out->evicted_bytes = st->idx.evicted_bytes;
	out->damaged = st->idx.damaged;
	out->recovered = st->recovered;
	out->tmp_removed = st->tmp_removed;
	pthread_mutex_unlock(&st->idx.lock);
}

bool cache_store_fits(struct cache_store *st, uint64_t body_len)
{
	bool fits;

	pthread_mutex_lock(&st->idx.lock); /* a reload may change the limit */
	fits = body_len <= st->idx.max_object_size;
	pthread_mutex_unlock(&st->idx.lock);
	return fits;
}

/* ---- writes ---- */

static int writer_alloc(struct cache_store *st, const char *key,
			const char *hash, const void *vary, size_t vary_len,
			const struct cache_store_meta *meta, const void *fields,
			size_t fields_len, struct cache_store_writer **out)
{
	size_t key_len = strlen(key);
	size_t hlen = cache_st_header_len(key_len, vary_len, fields_len);
	struct cache_store_writer *w;
	struct cache_st_header h = {.version = CS_VERSION,
				    .header_len = (uint32_t)hlen,
				    .variant = cache_st_fnv1a(vary, vary_len),
				    .meta = *meta,
				    .key = key,
				    .key_len = key_len,
				    .vary = vary,
				    .vary_len = vary_len,
				    .fields = fields,
				    .fields_len = fields_len};

	if (hlen == 0)
		return -EFBIG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->head = malloc(hlen);
	w->entry = cache_st_entry_new(hash, h.variant, key, key_len, vary,
				      vary_len);
	if (!w->head || !w->entry) {
		free(w->head);
		cache_st_entry_free(w->entry);
		free(w);
		return -ENOMEM;
	}
	cache_st_header_encode(&h, w->head);
	w->head_len = (uint32_t)hlen;
	w->st = st;
	w->fd = -1;
	w->variant = h.variant;
	w->meta = *meta;
	cache_st_copy_hash(w->hash, hash);
	*out = w;
	return 0;
}

static void writer_free(struct cache_store_writer *w)
{
	free(w->head);
	cache_st_entry_free(w->entry);
	free(w);
}

/* Stop writing: close and remove the temporary; remember why. */
static void writer_drop(struct cache_store_writer *w, int rc)
{
	if (w->fd >= 0) {
		sys_file_close(w->st->sys, w->fd);
		w->fd = -1;
	}
	if (w->tmp[0])
		sys_unlink(w->st->sys, w->tmp);
	w->tmp[0] = '\0';
	w->failed = rc;
}

/* A fresh DIR/tmp/ name (O_EXCL: never another writer's file). */
static int writer_create(struct cache_store_writer *w)
{
	struct cache_store *st = w->st;

	for (int tries = 0; tries < 8; tries++) {
		uint64_t seq;
		int rc;

		pthread_mutex_lock(&st->idx.lock);
		seq = st->tmp_seq++;
		pthread_mutex_unlock(&st->idx.lock);
		rc = util_format(w->tmp, sizeof(w->tmp),
				 "%s/tmp/%s-%016" PRIx64 ".%" PRIu64, st->dir,
				 w->hash, w->variant, seq);
		if (rc < 0)
			return rc;
		rc = sys_open(st->sys, w->tmp,
			      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (rc >= 0) {
			w->fd = rc;
			return 0;
		}
		w->tmp[0] = '\0';
		if (rc != -EEXIST)
			return rc;
	}
	return -EEXIST;
}

int cache_store_write_begin(struct cache_store *st, const char *key,
			    const char *hash, const void *vary, size_t vary_len,
			    const struct cache_store_meta *meta,
			    const void *fields, size_t fields_len,
			    struct cache_store_writer **out)
{
	struct cache_store_writer *w;
	int rc;

	if (!cache_st_valid_hash(hash) || !key)
		return -EINVAL;
	rc = writer_alloc(st, key, hash, vary, vary_len, meta, fields,
			  fields_len, &w);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&st->idx.lock);
	w->epoch = st->idx.epoch;
	w->max_object = st->idx.max_object_size;
	pthread_mutex_unlock(&st->idx.lock);
	rc = writer_create(w);
	if (rc < 0)
		goto free_writer;
	/* The real header comes at commit, when the body length is known. */
	rc = sys_write_all(st->sys, w->fd, w->head, w->head_len);
	if (rc < 0)
		goto drop_writer;
	*out = w;
	return 0;

drop_writer:
	writer_drop(w, rc);
free_writer:
	writer_free(w);
	return rc;
}

int cache_store_write_append(struct cache_store_writer *w, const void *buf,
			     size_t len)
{
	int rc;

	if (w->failed)
		return w->failed;
	if (len > w->max_object || w->written > w->max_object - len) {
		writer_drop(w, -EFBIG);
		return -EFBIG;
	}
	rc = sys_write_all(w->st->sys, w->fd, buf, len);
	if (rc < 0) {
		writer_drop(w, rc);
		return rc;
	}
	w->written += len;
	return 0;
}

/*
 * Put the real header block over the placeholder (a second descriptor
 * opened without O_TRUNC starts at offset 0) and make the file durable.
 */
static int writer_seal(struct cache_store_writer *w)
{
	struct sys *sys = w->st->sys;
	int rc = sys_file_close(sys, w->fd);
	int fd;

	w->fd = -1;
	if (rc < 0)
		return rc;
	cache_st_header_seal(w->head, w->head_len, w->written);
	fd = sys_open(sys, w->tmp, O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	rc = sys_write_all(sys, fd, w->head, w->head_len);
	if (rc == 0 && w->st->fsync)
		rc = sys_fsync(sys, fd);
	if (sys_file_close(sys, fd) < 0 && rc == 0)
		rc = -EIO;
	return rc;
}

/* mkdir DIR/ab and DIR/ab/cd, as needed. */
static int make_fanout(struct cache_store *st, const char *hash)
{
	char path[CS_PATH_MAX];
	int rc = util_format(path, sizeof(path), "%s/%.2s", st->dir, hash);

	if (rc >= 0)
		rc = mkdir_ok(st->sys, path);
	if (rc >= 0)
		rc = util_format(path, sizeof(path), "%s/%.2s/%.2s", st->dir,
				 hash, hash + 2);
	if (rc >= 0)
		rc = mkdir_ok(st->sys, path);
	return rc < 0 ? rc : 0;
}

/* Rename into place and index it, as one step for the name lock. */
static int writer_publish(struct cache_store_writer *w,
			  struct cache_st_victim **victims)
{
	struct cache_store *st = w->st;
	pthread_mutex_t *nl = cache_st_name_lock(st, w->hash);
	char path[CS_PATH_MAX];
	int rc = cache_st_entry_path(st, w->hash, w->variant, path,
				     sizeof(path));

	if (rc < 0)
		return rc;
	pthread_mutex_lock(nl);
	pthread_mutex_lock(&st->idx.lock);
	rc = cache_st_index_removed_since(&st->idx, w->hash, w->epoch) ? -ESTALE
								       : 0;
	pthread_mutex_unlock(&st->idx.lock);
	if (rc == 0)
		rc = sys_rename(st->sys, w->tmp, path);
	if (rc == 0) {
		w->tmp[0] = '\0'; /* nothing left to clean up */
		w->entry->size = w->head_len + w->written;
		w->entry->body_len = w->written;
		w->entry->meta = w->meta;
		w->entry->last_use_ms = sys_now_mono_ms(st->sys);
		pthread_mutex_lock(&st->idx.lock);
		cache_st_index_insert(&st->idx, w->entry, victims);
		pthread_mutex_unlock(&st->idx.lock);
		w->entry = NULL; /* the index owns it */
	}
	pthread_mutex_unlock(nl);
	return rc;
}

int cache_store_write_commit(struct cache_store_writer *w, uint64_t body_len)
{
	struct cache_store *st = w->st;
	struct cache_st_victim *victims = NULL;
	int rc = w->failed;

	if (rc == 0 && body_len != w->written)
		rc = -EPROTO; /* mis-framed: never stored */
	if (rc == 0)
		rc = writer_seal(w);
	if (rc == 0)
		rc = make_fanout(st, w->hash);
	if (rc == 0)
		rc = writer_publish(w, &victims);
	if (rc < 0 && !w->failed)
		writer_drop(w, rc);
	writer_free(w);
	cache_st_unlink_victims(st, victims);
	return rc;
}

void cache_store_write_abort(struct cache_store_writer *w)
{
	if (!w)
		return;
	if (!w->failed)
		writer_drop(w, -ECANCELED);
	writer_free(w);
}

/* ---- reads ---- */

int cache_store_lookup(struct cache_store *st, const char *key,
		       const char *hash, struct cache_store_variants *out)
{
	struct cache_st_entry *e, *found[CACHE_STORE_MAX_VARIANTS];
	size_t n = 0, bytes = 0;
	char *p;

	memset(out, 0, sizeof(*out));
	if (!cache_st_valid_hash(hash))
		return -EINVAL;
	pthread_mutex_lock(&st->idx.lock);
	e = st->idx.buckets[cache_st_hkey(hash) & (st->idx.n_buckets - 1)];
	for (; e && n < CACHE_STORE_MAX_VARIANTS; e = e->chain)
		if (strcmp(e->hash, hash) == 0 && strcmp(e->key, key) == 0) {
			found[n++] = e;
			bytes += e->vary_len;
		}
	p = out->blob = malloc(bytes + 1);
	for (size_t i = 0; p && i < n; i++) {
		struct cache_store_variant *v = &out->v[i];
		v->id = found[i]->variant;
		v->size = found[i]->size;
		v->body_len = found[i]->body_len;
		v->meta = found[i]->meta;
		v->last_use_ms = found[i]->last_use_ms;
		memcpy(p, found[i]->vary, found[i]->vary_len);
		v->vary = p;
		v->vary_len = found[i]->vary_len;
		p += found[i]->vary_len;
	}
	pthread_mutex_unlock(&st->idx.lock);
	if (!out->blob)
		return -ENOMEM;
	out->n = n;
	return (int)n;
}

void cache_store_variants_free(struct cache_store_variants *v)
{
	free(v->blob);
	v->blob = NULL;
	v->n = 0;
}

/*
 * Take the entry that generation gen was out of the index, and its file off
 * the disk when unlink_file, unless it has been replaced meanwhile.
 */
static void discard(struct cache_store *st, const char *hash, uint64_t variant,
		    uint64_t gen, bool unlink_file)
{
	pthread_mutex_t *nl = cache_st_name_lock(st, hash);
	char path[CS_PATH_MAX];
	struct cache_st_entry *e;
	bool ours = false;

	pthread_mutex_lock(nl);
	pthread_mutex_lock(&st->idx.lock);
	e = cache_st_index_find(&st->idx, hash, variant);
	if (e && e->gen == gen) {
		cache_st_index_unlink_entry(&st->idx, e);
		cache_st_entry_free(e);
		if (unlink_file)
			st->idx.damaged++; /* not for a file already gone */
		ours = true;
	}
	pthread_mutex_unlock(&st->idx.lock);
	if (ours && unlink_file &&
	    cache_st_entry_path(st, hash, variant, path, sizeof(path)) >= 0)
		sys_unlink(st->sys, path);
	pthread_mutex_unlock(nl);
}

/* What index_claim() found. */
struct claim {
	uint64_t gen;		    /* the entry's generation; 0: a miss */
	struct cache_st_copy *copy; /* a reference to its copy, or NULL */
	bool want_copy;		    /* none yet, and the budget has room */
};

/* Find (hash, variant) of key and mark it used. */
static struct claim index_claim(struct cache_store *st, const char *key,
				const char *hash, uint64_t variant)
{
	int64_t now = sys_now_mono_ms(st->sys);
	struct cache_st_index *idx = &st->idx;
	struct claim c = {0, NULL, false};
	struct cache_st_entry *e;

	pthread_mutex_lock(&idx->lock);
	e = cache_st_index_find(idx, hash, variant);
	if (e && strcmp(e->key, key) == 0) {
		cache_st_index_touch(idx, e, now);
		c.gen = e->gen;
		if (e->copy)
			c.copy = cache_st_copy_ref(e->copy);
		else
			c.want_copy = e->size <= CS_HEAD_READ &&
				      idx->copy_bytes + e->size <
					      cache_st_copy_budget(idx);
	}
	pthread_mutex_unlock(&idx->lock);
	return c;
}

/* What the caller sees of a verified header block h. */
static void reader_pub(struct cache_store_reader *r,
		       const struct cache_st_header *h, int fd,
		       const unsigned char *body_head, size_t body_head_len)
{
	r->pub.fd = fd;
	r->pub.body_offset = h->header_len;
	r->pub.body_len = h->body_len;
	r->pub.variant = h->variant;
	r->pub.meta = h->meta;
	r->pub.vary = h->vary;
	r->pub.vary_len = h->vary_len;
	r->pub.fields = h->fields;
	r->pub.fields_len = h->fields_len;
	r->pub.body_head = body_head;
	r->pub.body_head_len = body_head_len;
}

/*
 * The reader of a verified header block; got bytes of the file are in
 * head, so the body's first got - header_len bytes are already here.
 */
static int reader_fill(struct cache_store_reader *r, int fd,
		       unsigned char *head, size_t got,
		       const struct cache_st_header *h)
{
	uint64_t here = got - h->header_len;

	r->key = malloc(h->key_len + 1);
	if (!r->key)
		return -ENOMEM;
	memcpy(r->key, h->key, h->key_len);
	r->key[h->key_len] = '\0';
	r->head = head;
	r->pub.key = r->key;
	reader_pub(r, h, fd, head + h->header_len,
		   (size_t)(here < h->body_len ? here : h->body_len));
	return 0;
}

static bool same_key(const struct cache_st_header *h, const char *key)
{
	return h->key_len == strlen(key) &&
	       memcmp(h->key, key, h->key_len) == 0;
}

/*
 * The reader of the entry's memory copy c (the caller's reference passes
 * to it): no descriptor, the whole body in memory.  The stored key is
 * compared as a file's is, so that a hash collision stays a miss on this
 * path too, whatever the index says.
 */
static int reader_from_copy(struct cache_store_reader *r, const char *key,
			    struct cache_st_copy *c)
{
	if (!same_key(&c->h, key))
		return -ENOENT;
	r->copy = c;
	r->pub.key = c->key;
	reader_pub(r, &c->h, -1, c->bytes + c->h.header_len,
		   (size_t)c->h.body_len);
	return 0;
}

/*
 * The first read brought the whole file (got bytes): keep it on the entry
 * for the next readers, if it is still generation gen (store_copy.c).
 */
static void keep_copy(struct cache_store *st, const char *hash,
		      uint64_t variant, uint64_t gen, const unsigned char *file,
		      size_t got, const struct cache_st_header *h)
{
	struct cache_st_copy *c;

	if (got > CS_HEAD_READ || got != h->header_len + h->body_len)
		return;
	c = cache_st_copy_make(file, got, h);
	if (c) /* else: no copy, the file serves as before */
		cache_st_copy_attach(st, hash, variant, gen, c);
}

/* Open and verify the file: 0, -ENOENT (miss; damage removed) or I/O. */
static int open_verified(struct cache_store *st, const char *key,
			 const char *hash, uint64_t variant,
			 const struct claim *cl, struct cache_store_reader *r)
{
	char path[CS_PATH_MAX];
	unsigned char *head = NULL;
	struct cache_st_header h;
	size_t got = 0;
	int fd, rc = cache_st_entry_path(st, hash, variant, path, sizeof(path));

	if (rc < 0)
		return rc;
	fd = sys_open(st->sys, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		if (fd == -ENOENT) /* gone behind our back */
			discard(st, hash, variant, cl->gen, false);
		return fd;
	}
	rc = read_header_got(st->sys, fd, &head, &h, &got);
	if (rc == 0 && h.variant != variant)
		rc = -EBADMSG;
	if (cache_st_damaged(rc)) {
		discard(st, hash, variant, cl->gen, true);
		rc = -ENOENT;
	}
	/* Another key with the same hash: a miss, and its entry stays. */
	if (rc == 0 && !same_key(&h, key))
		rc = -ENOENT;
	if (rc == 0)
		rc = reader_fill(r, fd, head, got, &h);
	if (rc == 0 && cl->want_copy)
		keep_copy(st, hash, variant, cl->gen, head, got, &h);
	if (rc < 0) {
		free(head);
		sys_file_close(st->sys, fd);
	}
	return rc;
}

int cache_store_open(struct cache_store *st, const char *key, const char *hash,
		     uint64_t variant, struct cache_store_reader **out)
{
	struct cache_store_reader *r;
	struct claim cl;
	int rc;

	if (!cache_st_valid_hash(hash) || !key)
		return -EINVAL;
	cl = index_claim(st, key, hash, variant);
	if (cl.gen == 0)
		return -ENOENT;
	r = calloc(1, sizeof(*r));
	rc = r ? 0 : -ENOMEM;
	/* With a copy, no file system call at all. */
	if (rc == 0)
		rc = cl.copy ? reader_from_copy(r, key, cl.copy)
			     : open_verified(st, key, hash, variant, &cl, r);
	if (rc < 0) {
		cache_st_copy_unref(cl.copy);
		free(r);
		return rc;
	}
	r->st = st;
	cache_st_copy_hash(r->hash, hash);
	*out = r;
	return 0;
}

const struct cache_store_entry *
cache_store_reader_entry(const struct cache_store_reader *r)
{
	return &r->pub;
}

ssize_t cache_store_read_body(struct cache_store_reader *r, void *buf,
			      size_t len, uint64_t off)
{
	if (off >= r->pub.body_len)
		return 0;
	if (len > r->pub.body_len - off)
		len = (size_t)(r->pub.body_len - off);
	if (r->copy) { /* the whole body is in body_head */
		memcpy(buf, (const unsigned char *)r->pub.body_head + off, len);
		return (ssize_t)len;
	}
	return sys_pread(r->st->sys, r->pub.fd, buf, len,
			 (off_t)(r->pub.body_offset + off));
}

void cache_store_reader_close(struct cache_store_reader *r)
{
	if (!r)
		return;
	if (r->copy)
		cache_st_copy_unref(r->copy);
	else
		sys_file_close(r->st->sys, r->pub.fd);
	free(r->head);
	free(r->key);
	free(r);
}

/* ---- replacing headers, removing ---- */

static int copy_body(struct cache_store_reader *r, struct cache_store_writer *w,
		     unsigned char *buf)
{
	uint64_t off = 0;

	while (off < r->pub.body_len) {
		ssize_t n = cache_store_read_body(r, buf, CS_COPY_CHUNK, off);
		int rc;
		if (n <= 0)
			return n < 0 ? (int)n : -EIO; /* shorter than framed */
		rc = cache_store_write_append(w, buf, (size_t)n);
		if (rc < 0)
			return rc;
		off += (uint64_t)n;
	}
	return 0;
}

int cache_store_update(struct cache_store *st, struct cache_store_reader *r,
		       const struct cache_store_meta *meta, const void *fields,
		       size_t fields_len)
{
	struct cache_store_writer *w;
	unsigned char *buf = malloc(CS_COPY_CHUNK);
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = cache_store_write_begin(st, r->pub.key, r->hash, r->pub.vary,
				     r->pub.vary_len, meta, fields, fields_len,
				     &w);
	if (rc < 0)
		goto free_buf;
	rc = copy_body(r, w, buf);
	if (rc < 0) {
		cache_store_write_abort(w);
		goto free_buf;
	}
	rc = cache_store_write_commit(w, r->pub.body_len);

free_buf:
	free(buf);
	return rc;
}

/* Take key's variants out of the index into *victims: how many. */
static int remove_indexed(struct cache_st_index *idx, const char *key,
			  const char *hash, struct cache_st_victim **victims)
{
	struct cache_st_entry **pp =
		&idx->buckets[cache_st_hkey(hash) & (idx->n_buckets - 1)];
	int n = 0;

	cache_st_index_tombstone(idx, hash);
	while (*pp) {
		struct cache_st_entry *e = *pp;
		struct cache_st_victim *v;
		if (strcmp(e->hash, hash) != 0 || strcmp(e->key, key) != 0) {
			pp = &e->chain;
			continue;
		}
		v = malloc(sizeof(*v));
		if (v) {
			memcpy(v->hash, e->hash, sizeof(v->hash));
			v->variant = e->variant;
			v->next = *victims;
			*victims = v;
		}
		cache_st_index_unlink_entry(idx, e); /* moves *pp along */
		cache_st_entry_free(e);
		n++;
	}
	return n;
}

int cache_store_remove(struct cache_store *st, const char *key,
		       const char *hash)
{
	pthread_mutex_t *nl;
	struct cache_st_victim *victims = NULL;
	char path[CS_PATH_MAX];
	int n;

	if (!cache_st_valid_hash(hash) || !key)
		return -EINVAL;
	nl = cache_st_name_lock(st, hash);
	pthread_mutex_lock(nl);
	pthread_mutex_lock(&st->idx.lock);
	n = remove_indexed(&st->idx, key, hash, &victims);
	pthread_mutex_unlock(&st->idx.lock);
	while (victims) {
		struct cache_st_victim *v = victims;
		if (cache_st_entry_path(st, v->hash, v->variant, path,
					sizeof(path)) >= 0)
			sys_unlink(st->sys, path);
		victims = v->next;
		free(v);
	}
	pthread_mutex_unlock(nl);
	return n;
}
