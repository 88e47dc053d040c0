/*
 * Recovery at open: rebuild the index from DIR/ab/cd/ by reading only the
 * header block of each entry.  Anything in a fan-out directory that is not
 * a well-formed entry of the current format (a stray name, a truncated or
 * padded file, a bad checksum, another version) is removed: the store owns
 * those directories.  Entries are indexed oldest response first, so the LRU
 * order after a restart follows the responses' ages and eviction down to
 * max_size drops the oldest.
 */
#include "cache/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

struct scan {
	struct cache_store *st;
	char path[CS_PATH_MAX]; /* the directory being listed */
	size_t path_len;
	const char *fan; /* "abcd": what the names must start with */
	char fanbuf[5];
	struct cache_st_entry **found;
	size_t n, cap;
	int64_t now;
};

static bool hex_name(const char *name, size_t len)
{
	if (strlen(name) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!cache_st_is_hex(name[i]))
			return false;
	return true;
}

/* "<hash>-<16 hex>" under DIR/ab/cd/: the hash and the variant. */
static bool parse_name(const struct scan *sc, const char *name, char *hash,
		       uint64_t *variant)
{
	const char *dash = strrchr(name, '-');
	size_t hlen = dash ? (size_t)(dash - name) : 0;
	uint64_t v = 0;

	if (!dash || hlen > CACHE_STORE_HASH_MAX || !hex_name(dash + 1, 16))
		return false;
	memcpy(hash, name, hlen);
	hash[hlen] = '\0';
	if (!cache_st_valid_hash(hash) || memcmp(hash, sc->fan, 4) != 0)
		return false;
	for (int i = 1; i <= 16; i++) {
		char c = dash[i];
		v = (v << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	*variant = v;
	return true;
}

static int remember(struct scan *sc, struct cache_st_entry *e)
{
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 1024;
		struct cache_st_entry **more =
			realloc(sc->found, cap * sizeof(*more));
		if (!more)
			return -ENOMEM;
		sc->found = more;
		sc->cap = cap;
	}
	sc->found[sc->n++] = e;
	return 0;
}

/* Index one file of DIR/ab/cd (path = that file): 0, or a hard error. */
static int recover_file(struct scan *sc, const char *path, const char *hash,
			uint64_t variant)
{
	struct sys *sys = sc->st->sys;
	unsigned char *head;
	struct cache_st_header h;
	struct cache_st_entry *e;
	int fd = sys_open(sys, path, O_RDONLY | O_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	rc = cache_st_read_header(sys, fd, &head, &h);
	sys_file_close(sys, fd);
	if (rc == 0 && h.variant != variant)
		rc = -EBADMSG;
	if (cache_st_damaged(rc)) {
		sys_unlink(sys, path);
		sc->st->idx.damaged++;
		return 0;
	}
	if (rc < 0)
		return rc;
	e = cache_st_entry_new(hash, variant, h.key, h.key_len, h.vary,
			       h.vary_len);
	rc = e ? remember(sc, e) : -ENOMEM;
	if (rc == 0) {
		e->size = h.header_len + h.body_len;
		e->body_len = h.body_len;
		e->meta = h.meta;
		e->last_use_ms = sc->now;
	} else {
		cache_st_entry_free(e);
	}
	free(head);
	return rc;
}

static int scan_file(void *arg, const char *name, unsigned char d_type)
{
	struct scan *sc = arg;
	char hash[CACHE_STORE_HASH_MAX + 1];
	char path[CS_PATH_MAX];
	uint64_t variant;
	bool ok = parse_name(sc, name, hash, &variant);

	if (util_format(path, sizeof(path), "%s/%s", sc->path, name) < 0)
		return 0;
	if (!ok || (d_type != SYS_DT_REG && d_type != SYS_DT_UNKNOWN)) {
		/* Not ours (a directory is left: it might hold anything). */
		if (d_type != SYS_DT_DIR)
			sys_unlink(sc->st->sys, path);
		return 0;
	}
	return recover_file(sc, path, hash, variant);
}

/* List DIR/<name> (level 1) or DIR/ab/<name> (level 2). */
static int scan_dir(struct scan *sc, const char *name, unsigned char d_type,
		    int (*each)(void *, const char *, unsigned char))
{
	size_t saved = sc->path_len;
	int rc;

	if (!hex_name(name, 2) ||
	    (d_type != SYS_DT_DIR && d_type != SYS_DT_UNKNOWN))
		return 0; /* DIR/tmp, or something the store does not own */
	rc = util_format(sc->path + saved, sizeof(sc->path) - saved, "/%s",
			 name);
	if (rc < 0)
		return 0;
	sc->path_len += (size_t)rc;
	rc = sys_list_dir(sc->st->sys, sc->path, each, sc);
	sc->path_len = saved;
	sc->path[saved] = '\0';
	return rc == -ENOTDIR || rc == -ENOENT ? 0 : rc;
}

static int scan_level2(void *arg, const char *name, unsigned char d_type)
{
	struct scan *sc = arg;

	memcpy(sc->fanbuf + 2, name, 2);
	return scan_dir(sc, name, d_type, scan_file);
}

static int scan_level1(void *arg, const char *name, unsigned char d_type)
{
	struct scan *sc = arg;

	memcpy(sc->fanbuf, name, 2);
	return scan_dir(sc, name, d_type, scan_level2);
}

static int by_response_time(const void *a, const void *b)
{
	const struct cache_st_entry *x =
		*(const struct cache_st_entry *const *)a;
	const struct cache_st_entry *y =
		*(const struct cache_st_entry *const *)b;

	return (x->meta.response_time > y->meta.response_time) -
	       (x->meta.response_time < y->meta.response_time);
}

int cache_st_recover(struct cache_store *st)
{
	struct scan *sc = calloc(1, sizeof(*sc));
	struct cache_st_victim *victims = NULL;
	size_t i = 0;
	int rc;

	if (!sc)
		return -ENOMEM;
	sc->st = st;
	sc->fan = sc->fanbuf;
	sc->now = sys_now_mono_ms(st->sys);
	sc->path_len =
		(size_t)util_format(sc->path, sizeof(sc->path), "%s", st->dir);
	rc = sys_list_dir(st->sys, st->dir, scan_level1, sc);
	if (rc == 0 && sc->n > 1) /* qsort(NULL, 0, ...) is undefined */
		qsort(sc->found, sc->n, sizeof(*sc->found), by_response_time);
	/* Single-threaded still, but the insert's contract wants the lock. */
	pthread_mutex_lock(&st->idx.lock);
	for (; rc == 0 && i < sc->n; i++)
		cache_st_index_insert(&st->idx, sc->found[i], &victims);
	st->recovered = i;
	pthread_mutex_unlock(&st->idx.lock);
	for (; i < sc->n; i++)
		cache_st_entry_free(sc->found[i]);
	cache_st_unlink_victims(st, victims);
	free(sc->found);
	free(sc);
	return rc;
}
