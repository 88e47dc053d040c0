/*
 * The in-memory file system; see sys_memfs.h.  A flat table of names, each
 * a link to a reference-counted inode, and a table of descriptors.  One
 * mutex guards it all; list_dir calls back without it, on a snapshot.
 */
#include "sys_memfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEMFS_FDS     512
#define MEMFS_FD_BASE 100

struct inode {
	bool dir;
	char *data;
	size_t len, cap;
	int links, opens;
	uint64_t ino;
};

struct name {
	char *path;
	struct inode *node;
};

struct ofile {
	struct inode *node;
	size_t pos;
	int flags;
};

struct sys_memfs {
	pthread_mutex_t lock;
	struct name *names;
	size_t n_names, cap_names;
	struct ofile fds[MEMFS_FDS];
	int open_files;
	uint64_t next_ino;
	int64_t mono_ms;
	time_t wall_sec;
	uint64_t calls, fail_at;
	int fail_err;
	bool fail_persistent;
	size_t short_write;
	struct sys sys;
};

/* ---- the tree (callers hold the lock) ---- */

static struct name *find(struct sys_memfs *m, const char *path)
{
	for (size_t i = 0; i < m->n_names; i++)
		if (strcmp(m->names[i].path, path) == 0)
			return &m->names[i];
	return NULL;
}

static void node_unref(struct inode *n)
{
	if (n->links > 0 || n->opens > 0)
		return;
	free(n->data);
	free(n);
}

/* The parent of path must be a directory. */
static int parent_ok(struct sys_memfs *m, const char *path)
{
	const char *slash = strrchr(path, '/');
	char parent[4096];
	struct name *p;
	size_t n;

	if (!slash || path[0] != '/')
		return -ENOENT;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, n);
	parent[n] = '\0';
	p = find(m, parent);
	if (!p)
		return -ENOENT;
	return p->node->dir ? 0 : -ENOTDIR;
}

static struct inode *add(struct sys_memfs *m, const char *path, bool dir)
{
	struct inode *n = calloc(1, sizeof(*n));
	char *copy = strdup(path);

	if (m->n_names == m->cap_names) {
		size_t cap = m->cap_names ? m->cap_names * 2 : 64;
		struct name *more = realloc(m->names, cap * sizeof(*more));
		if (!more)
			abort(); /* a test double: out of memory is fatal */
		m->names = more;
		m->cap_names = cap;
	}
	if (!n || !copy)
		abort();
	n->dir = dir;
	n->links = 1;
	n->ino = ++m->next_ino;
	m->names[m->n_names].path = copy;
	m->names[m->n_names].node = n;
	m->n_names++;
	return n;
}

static void drop_name(struct sys_memfs *m, struct name *nm)
{
	struct inode *n = nm->node;

	free(nm->path);
	*nm = m->names[--m->n_names];
	n->links--;
	node_unref(n);
}

static bool has_children(struct sys_memfs *m, const char *dir)
{
	size_t len = strlen(dir);

	for (size_t i = 0; i < m->n_names; i++) {
		const char *p = m->names[i].path;
		if (strncmp(p, dir, len) == 0 && p[len] == '/' && p[len + 1])
			return true;
	}
	return false;
}

static int grow(struct inode *n, size_t len)
{
	if (len > n->cap) {
		size_t cap = n->cap ? n->cap : 256;
		char *more;
		while (cap < len)
			cap *= 2;
		more = realloc(n->data, cap);
		if (!more)
			return -ENOMEM;
		memset(more + n->cap, 0, cap - n->cap);
		n->data = more;
		n->cap = cap;
	}
	if (len > n->len)
		n->len = len;
	return 0;
}

static struct ofile *get_fd(struct sys_memfs *m, int fd)
{
	int i = fd - MEMFS_FD_BASE;

	if (i < 0 || i >= MEMFS_FDS || !m->fds[i].node)
		return NULL;
	return &m->fds[i];
}

/* Count a call and decide whether it fails: 0 or -err. */
static int enter(struct sys_memfs *m)
{
	m->calls++;
	if (m->fail_at == 0)
		return 0;
	if (m->calls == m->fail_at) {
		if (!m->fail_persistent)
			m->fail_at = 0;
		return -m->fail_err;
	}
	if (m->fail_persistent && m->calls > m->fail_at)
		return -m->fail_err;
	return 0;
}

#define LOCKED_ENTER(m)                                                        \
	struct sys_memfs *m = ctx;                                             \
	int fault_;                                                            \
	pthread_mutex_lock(&m->lock);                                          \
	fault_ = enter(m);                                                     \
	if (fault_) {                                                          \
		pthread_mutex_unlock(&m->lock);                                \
		return fault_;                                                 \
	}

/* ---- fs ops ---- */

static int open_locked(struct sys_memfs *m, const char *path, int flags)
{
	struct name *nm = find(m, path);
	struct inode *n;
	int rc, i;

	if (nm && (flags & O_CREAT) && (flags & O_EXCL))
		return -EEXIST;
	if (!nm && !(flags & O_CREAT))
		return -ENOENT;
	if (!nm && (rc = parent_ok(m, path)) < 0)
		return rc;
	n = nm ? nm->node : add(m, path, false);
	if (n->dir && (flags & O_ACCMODE) != O_RDONLY)
		return -EISDIR;
	for (i = 0; i < MEMFS_FDS && m->fds[i].node; i++)
		;
	if (i == MEMFS_FDS)
		return -EMFILE;
	if (flags & O_TRUNC)
		n->len = 0;
	m->fds[i] = (struct ofile){.node = n, .pos = 0, .flags = flags};
	n->opens++;
	m->open_files++;
	return MEMFS_FD_BASE + i;
}

static int memfs_open(void *ctx, const char *path, int flags, mode_t mode)
{
	LOCKED_ENTER(m);
	int rc = open_locked(m, path, flags);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static ssize_t read_at(struct inode *n, void *buf, size_t len, size_t off)
{
	if (n->dir)
		return -EISDIR;
	if (off >= n->len)
		return 0;
	if (len > n->len - off)
		len = n->len - off;
	memcpy(buf, n->data + off, len);
	return (ssize_t)len;
}

static ssize_t memfs_read(void *ctx, int fd, void *buf, size_t len)
{
	LOCKED_ENTER(m);
	struct ofile *f = get_fd(m, fd);
	ssize_t n = f ? read_at(f->node, buf, len, f->pos) : -EBADF;
	if (n > 0)
		f->pos += (size_t)n;
	pthread_mutex_unlock(&m->lock);
	return n;
}

static ssize_t memfs_pread(void *ctx, int fd, void *buf, size_t len,
			   off_t offset)
{
	LOCKED_ENTER(m);
	struct ofile *f = get_fd(m, fd);
	ssize_t n = !f		 ? -EBADF
		    : offset < 0 ? -EINVAL
				 : read_at(f->node, buf, len, (size_t)offset);
	pthread_mutex_unlock(&m->lock);
	return n;
}

static ssize_t write_locked(struct sys_memfs *m, struct ofile *f,
			    const void *buf, size_t len)
{
	if ((f->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (m->short_write && len > m->short_write)
		len = m->short_write;
	if (f->flags & O_APPEND)
		f->pos = f->node->len;
	if (grow(f->node, f->pos + len) < 0)
		return -ENOSPC;
	memcpy(f->node->data + f->pos, buf, len);
	f->pos += len;
	return (ssize_t)len;
}

static ssize_t memfs_write(void *ctx, int fd, const void *buf, size_t len)
{
	LOCKED_ENTER(m);
	struct ofile *f = get_fd(m, fd);
	ssize_t n = f ? write_locked(m, f, buf, len) : -EBADF;
	pthread_mutex_unlock(&m->lock);
	return n;
}

static int memfs_fsync(void *ctx, int fd)
{
	LOCKED_ENTER(m);
	int rc = get_fd(m, fd) ? 0 : -EBADF;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static void release_fd(struct sys_memfs *m, struct ofile *f)
{
	struct inode *n = f->node;

	f->node = NULL;
	n->opens--;
	m->open_files--;
	node_unref(n);
}

/* A failing close still frees the descriptor (Linux close(2)). */
static int memfs_close(void *ctx, int fd)
{
	struct sys_memfs *m = ctx;
	struct ofile *f;
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = enter(m);
	f = get_fd(m, fd);
	if (f)
		release_fd(m, f);
	else if (rc == 0)
		rc = -EBADF;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int rename_locked(struct sys_memfs *m, const char *from, const char *to)
{
	struct name *src = find(m, from), *dst;
	int rc = parent_ok(m, to);

	if (!src)
		return -ENOENT;
	if (rc < 0)
		return rc;
	if (src->node->dir)
		return -EINVAL; /* not needed by the store: not modelled */
	dst = find(m, to);
	if (dst == src)
		return 0;
	if (dst && dst->node->dir)
		return -EISDIR;
	if (dst) {
		/* The replaced inode lives on while descriptors hold it. */
		struct inode *old = dst->node;
		dst->node = src->node;
		old->links--;
		node_unref(old);
		free(src->path);
		*src = m->names[--m->n_names];
		return 0;
	}
	char *copy = strdup(to);
	if (!copy)
		return -ENOMEM;
	free(src->path);
	src->path = copy;
	return 0;
}

static int memfs_rename(void *ctx, const char *from, const char *to)
{
	LOCKED_ENTER(m);
	int rc = rename_locked(m, from, to);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int memfs_unlink(void *ctx, const char *path)
{
	LOCKED_ENTER(m);
	struct name *nm = find(m, path);
	int rc = !nm ? -ENOENT : nm->node->dir ? -EISDIR : 0;
	if (rc == 0)
		drop_name(m, nm);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int memfs_mkdir(void *ctx, const char *path, mode_t mode)
{
	LOCKED_ENTER(m);
	int rc = find(m, path) ? -EEXIST : parent_ok(m, path);
	if (rc == 0)
		add(m, path, true);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int memfs_rmdir(void *ctx, const char *path)
{
	LOCKED_ENTER(m);
	struct name *nm = find(m, path);
	int rc = !nm			 ? -ENOENT
		 : !nm->node->dir	 ? -ENOTDIR
		 : has_children(m, path) ? -ENOTEMPTY
					 : 0;
	if (rc == 0)
		drop_name(m, nm);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static void fill_stat(const struct inode *n, struct stat *out)
{
	memset(out, 0, sizeof(*out));
	out->st_mode = n->dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
	out->st_size = (off_t)n->len;
	out->st_nlink = (nlink_t)n->links;
	out->st_ino = (ino_t)n->ino;
}

static int memfs_stat(void *ctx, const char *path, struct stat *out)
{
	LOCKED_ENTER(m);
	struct name *nm = find(m, path);
	if (nm)
		fill_stat(nm->node, out);
	pthread_mutex_unlock(&m->lock);
	return nm ? 0 : -ENOENT;
}

static int memfs_fstat(void *ctx, int fd, struct stat *out)
{
	LOCKED_ENTER(m);
	struct ofile *f = get_fd(m, fd);
	if (f)
		fill_stat(f->node, out);
	pthread_mutex_unlock(&m->lock);
	return f ? 0 : -EBADF;
}

static int memfs_ftruncate(void *ctx, int fd, off_t len)
{
	LOCKED_ENTER(m);
	struct ofile *f = get_fd(m, fd);
	int rc = !f ? -EBADF : len < 0 ? -EINVAL : 0;
	if (rc == 0 && (size_t)len > f->node->len)
		rc = grow(f->node, (size_t)len);
	else if (rc == 0)
		f->node->len = (size_t)len;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

struct snapshot {
	char **names;
	unsigned char *types;
	size_t n;
};

/* The children of dir, copied so the callback can run unlocked. */
static int snapshot_locked(struct sys_memfs *m, const char *dir,
			   struct snapshot *s)
{
	struct name *d = find(m, dir);
	size_t len = strlen(dir);

	if (!d)
		return -ENOENT;
	if (!d->node->dir)
		return -ENOTDIR;
	s->names = calloc(m->n_names + 1, sizeof(*s->names));
	s->types = calloc(m->n_names + 1, 1);
	if (!s->names || !s->types)
		abort();
	for (size_t i = 0; i < m->n_names; i++) {
		const char *p = m->names[i].path;
		const char *rest = p + (len == 1 ? 1 : len + 1);
		if (strcmp(p, dir) == 0 || strncmp(p, dir, len) != 0 ||
		    (len > 1 && p[len] != '/') || strchr(rest, '/'))
			continue;
		s->types[s->n] =
			m->names[i].node->dir ? SYS_DT_DIR : SYS_DT_REG;
		s->names[s->n++] = strdup(rest);
	}
	return 0;
}

static int memfs_list_dir(void *ctx, const char *path,
			  int (*each)(void *arg, const char *name,
				      unsigned char d_type),
			  void *arg)
{
	struct snapshot s = {0};
	int rc;

	{
		LOCKED_ENTER(m);
		rc = snapshot_locked(m, path, &s);
		pthread_mutex_unlock(&m->lock);
	}
	for (size_t i = 0; rc == 0 && i < s.n; i++) {
		int r = each(arg, s.names[i], s.types[i]);
		if (r < 0)
			rc = r; /* the callback's own code, as posix returns */
	}
	for (size_t i = 0; i < s.n; i++)
		free(s.names[i]);
	free(s.names);
	free(s.types);
	return rc;
}

/* ---- clock ---- */

static int64_t memfs_now_mono_ms(void *ctx)
{
	struct sys_memfs *m = ctx;
	int64_t now;

	pthread_mutex_lock(&m->lock);
	now = m->mono_ms;
	pthread_mutex_unlock(&m->lock);
	return now;
}

static int memfs_now_wall(void *ctx, struct timespec *out)
{
	struct sys_memfs *m = ctx;

	pthread_mutex_lock(&m->lock);
	out->tv_sec = m->wall_sec;
	out->tv_nsec = (long)(m->mono_ms % 1000) * 1000000L;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static const struct sys_fs_ops memfs_fs_ops = {
	.open = memfs_open,
	.read = memfs_read,
	.pread = memfs_pread,
	.write = memfs_write,
	.fsync = memfs_fsync,
	.close = memfs_close,
	.rename = memfs_rename,
	.unlink = memfs_unlink,
	.mkdir = memfs_mkdir,
	.stat = memfs_stat,
	.fstat = memfs_fstat,
	.ftruncate = memfs_ftruncate,
	.rmdir = memfs_rmdir,
	.list_dir = memfs_list_dir,
};

static const struct sys_clock_ops memfs_clock_ops = {
	.now_mono_ms = memfs_now_mono_ms,
	.now_wall = memfs_now_wall,
};

static const struct sys_net_ops memfs_net_ops = {0};

/* ---- the test's side ---- */

struct sys_memfs *sys_memfs_new(void)
{
	struct sys_memfs *m = calloc(1, sizeof(*m));

	if (!m)
		abort();
	pthread_mutex_init(&m->lock, NULL);
	add(m, "/", true);
	m->mono_ms = 1000;
	m->wall_sec = 1700000000;
	m->sys = (struct sys){.net = &memfs_net_ops,
			      .clock = &memfs_clock_ops,
			      .fs = &memfs_fs_ops,
			      .ctx = m};
	return m;
}

void sys_memfs_free(struct sys_memfs *m)
{
	if (!m)
		return;
	for (int i = 0; i < MEMFS_FDS; i++)
		if (m->fds[i].node)
			release_fd(m, &m->fds[i]);
	while (m->n_names > 0)
		drop_name(m, &m->names[m->n_names - 1]);
	free(m->names);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

struct sys *sys_memfs_sys(struct sys_memfs *m)
{
	return &m->sys;
}

void sys_memfs_set_clock(struct sys_memfs *m, int64_t mono_ms, time_t wall_sec)
{
	pthread_mutex_lock(&m->lock);
	m->mono_ms = mono_ms;
	m->wall_sec = wall_sec;
	pthread_mutex_unlock(&m->lock);
}

void sys_memfs_advance_ms(struct sys_memfs *m, int64_t ms)
{
	pthread_mutex_lock(&m->lock);
	m->wall_sec += (time_t)((m->mono_ms % 1000 + ms) / 1000);
	m->mono_ms += ms;
	pthread_mutex_unlock(&m->lock);
}

void sys_memfs_fail_nth(struct sys_memfs *m, uint64_t n, int err,
			bool persistent)
{
	pthread_mutex_lock(&m->lock);
	m->fail_at = n ? m->calls + n : 0;
	m->fail_err = err;
	m->fail_persistent = persistent;
	pthread_mutex_unlock(&m->lock);
}

void sys_memfs_short_writes(struct sys_memfs *m, size_t max)
{
	pthread_mutex_lock(&m->lock);
	m->short_write = max;
	pthread_mutex_unlock(&m->lock);
}

uint64_t sys_memfs_calls(struct sys_memfs *m)
{
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = m->calls;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int sys_memfs_open_files(struct sys_memfs *m)
{
	int n;

	pthread_mutex_lock(&m->lock);
	n = m->open_files;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* mkdir -p the parents of path (the lock is held). */
static void make_parents(struct sys_memfs *m, const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		abort();
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (!find(m, buf))
			add(m, buf, true);
		*p = '/';
	}
}

int sys_memfs_put(struct sys_memfs *m, const char *path, const void *data,
		  size_t len)
{
	struct name *nm;
	struct inode *n;

	pthread_mutex_lock(&m->lock);
	make_parents(m, path);
	nm = find(m, path);
	if (nm) {
		/* Replace the name's inode, as rename-over would. */
		drop_name(m, nm);
	}
	n = add(m, path, false);
	n->len = 0;
	if (grow(n, len) == 0 && len)
		memcpy(n->data, data, len);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

char *sys_memfs_get(struct sys_memfs *m, const char *path, size_t *len)
{
	struct name *nm;
	char *copy = NULL;

	pthread_mutex_lock(&m->lock);
	nm = find(m, path);
	if (nm && !nm->node->dir) {
		copy = malloc(nm->node->len + 1);
		if (!copy)
			abort();
		if (nm->node->len)
			memcpy(copy, nm->node->data, nm->node->len);
		copy[nm->node->len] = '\0';
		*len = nm->node->len;
	}
	pthread_mutex_unlock(&m->lock);
	return copy;
}

bool sys_memfs_exists(struct sys_memfs *m, const char *path)
{
	bool found;

	pthread_mutex_lock(&m->lock);
	found = find(m, path) != NULL;
	pthread_mutex_unlock(&m->lock);
	return found;
}

int sys_memfs_truncate(struct sys_memfs *m, const char *path, size_t len)
{
	struct name *nm;
	int rc = -ENOENT;

	pthread_mutex_lock(&m->lock);
	nm = find(m, path);
	if (nm && len <= nm->node->len) {
		nm->node->len = len;
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

size_t sys_memfs_list_files(struct sys_memfs *m, const char *prefix,
			    const char **paths, size_t max)
{
	size_t n = 0, len = strlen(prefix);

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_names; i++) {
		if (m->names[i].node->dir ||
		    strncmp(m->names[i].path, prefix, len) != 0)
			continue;
		if (paths && n < max)
			paths[n] = m->names[i].path;
		n++;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t sys_memfs_count_files(struct sys_memfs *m, const char *prefix)
{
	return sys_memfs_list_files(m, prefix, NULL, 0);
}
