/*
 * The fault sys: wraps another struct sys and injects the faults a list of
 * specs asks for (grammar in fault_parse.c and docs/faults.md), after the
 * shim VFSes of SQLite's test_vfs.c and test_syscall.c.
 *
 * Each member checks whether any rule names its operation; if none does, it
 * calls the inner sys at once.  Otherwise judge() walks the operation's
 * rules in spec order: every rule whose scope matches counts the call, and
 * every rule that fires passes through sys_fault_hit() and adds to the
 * verdict (delays add up, the smallest short wins, the first error or eof
 * stops the call).  Injected errors happen instead of the call, so nothing is
 * half done, except on close, which always closes (as Linux does even when
 * close fails) and then reports the error.
 *
 * Scopes need to know what a descriptor is: accept, connect, open and
 * resolve record it in a table (under a mutex) when some rule has a scope,
 * and close forgets it.  Rules are immutable after sys_fault_new() except
 * their atomic counters, so judging takes the lock only to read the table.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sys_fault_int.h"

#define NAMES_MAX 64 /* resolve results remembered for host scopes */

enum fd_role { ROLE_NONE, ROLE_CLIENT, ROLE_ORIGIN, ROLE_FILE };

struct fd_info {
	enum fd_role role;
	struct sys_addr peer;
	char *name; /* origin sockets: host resolved to peer; files: path */
};

struct learnt_name {
	struct sys_addr addr;
	char host[FAULT_SCOPE_MAX];
};

struct rule_list {
	struct sys_fault_rule **v;
	size_t n;
};

struct clock_state {
	int64_t step_ns; /* the sum of the steps taken so far */
	bool frozen;
	int64_t frozen_ns;
};

struct fault {
	struct sys sys; /* first, so the struct sys * is the struct fault * */
	struct sys *inner;
	uint64_t seed;
	struct sys_fault_rule *rules;
	size_t nrules;
	struct rule_list by_op[FOP_COUNT];
	bool track_sockets, learn_names, track_paths;
	pthread_mutex_t lock; /* guards everything below */
	struct fd_info *fds;
	size_t nfds;
	struct learnt_name names[NAMES_MAX];
	size_t names_next;
	struct clock_state wall, mono;
	int64_t mono_last;
};

/* What judge() needs to know about one call. */
struct call {
	enum fault_op op;
	int fd, fd2; /* -1 when the call has none */
	const char *path, *path2, *host;
};

struct verdict {
	bool stop;	  /* do not make the call: return rc */
	long rc;	  /* a negative errno, or 0 for eof */
	size_t cap;	  /* move at most this many bytes */
	int64_t delay_ms; /* wait this long first */
};

static const struct sys_net_ops fault_net_ops;
static const struct sys_clock_ops fault_clock_ops;
static const struct sys_fs_ops fault_fs_ops;

__attribute__((noinline)) void sys_fault_hit(const struct sys_fault_rule *rule)
{
	/* The rules live in writable heap memory; const is for the callers. */
	struct sys_fault_rule *r = (struct sys_fault_rule *)rule;

	atomic_fetch_add_explicit(&r->hits, 1, memory_order_relaxed);
	/* Keeps the call (and so the breakpoint) from being optimised away. */
	__asm__ volatile("" ::: "memory");
}

/* ---- which calls a rule matches ---- */

/* path starts with prefix, or prefix starts a component inside it. */
static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p;

	if (!path)
		return false;
	if (!strncmp(path, prefix, n))
		return true;
	for (p = strchr(path, '/'); p; p = strchr(p + 1, '/'))
		if (!strncmp(p + 1, prefix, n))
			return true;
	return false;
}

/* An IPv4 peer seen by a dual-stack socket is ::ffff:a.b.c.d. */
static const unsigned char *ipv4_of(const struct sys_addr *a)
{
	static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return (const unsigned char *)&(
			       (const struct sockaddr_in *)&a->ss)
			->sin_addr;
	if (a->ss.ss_family == AF_INET6 &&
	    !memcmp(in6->sin6_addr.s6_addr, mapped, sizeof(mapped)))
		return in6->sin6_addr.s6_addr + 12;
	return NULL;
}

static bool addr_equal(const struct sys_addr *a, const struct sys_addr *b,
		       bool with_port)
{
	const struct sockaddr_in *ia = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in *ib = (const struct sockaddr_in *)&b->ss;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&a->ss;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)&b->ss;
	const unsigned char *va = ipv4_of(a), *vb = ipv4_of(b);

	/* sin_port and sin6_port sit at the same offset. */
	if (with_port && ia->sin_port != ib->sin_port)
		return false;
	if (va || vb)
		return va && vb && !memcmp(va, vb, 4);
	return a->ss.ss_family == AF_INET6 && b->ss.ss_family == AF_INET6 &&
	       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
}

/* Lock held. */
static bool fd_matches(const struct fault *f, const struct sys_fault_rule *r,
		       int fd)
{
	const struct fd_info *info;

	if (fd < 0 || (size_t)fd >= f->nfds)
		return false;
	info = &f->fds[fd];
	switch (r->scope) {
	case FSC_CLIENT:
		return info->role == ROLE_CLIENT;
	case FSC_ORIGIN:
		return info->role == ROLE_ORIGIN;
	case FSC_PEER:
		return (info->role == ROLE_CLIENT ||
			info->role == ROLE_ORIGIN) &&
		       addr_equal(&info->peer, &r->peer, r->peer_has_port);
	case FSC_HOST:
		return info->role == ROLE_ORIGIN && info->name &&
		       !strcasecmp(info->name, r->scope_text);
	case FSC_PATH:
		return info->role == ROLE_FILE &&
		       path_under(info->name, r->scope_text);
	case FSC_NONE:
		break;
	}
	return true;
}

static bool scope_matches(struct fault *f, const struct sys_fault_rule *r,
			  const struct call *c)
{
	bool m;

	if (r->scope == FSC_NONE)
		return true;
	if (r->scope == FSC_PATH && (c->path || c->path2))
		return path_under(c->path, r->scope_text) ||
		       path_under(c->path2, r->scope_text);
	if (r->scope == FSC_HOST && c->host)
		return !strcasecmp(c->host, r->scope_text);
	pthread_mutex_lock(&f->lock);
	m = fd_matches(f, r, c->fd) || fd_matches(f, r, c->fd2);
	pthread_mutex_unlock(&f->lock);
	return m;
}

/* ---- when a matching call is hit ---- */

/* splitmix64's finaliser: a good 64-bit mix. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * Counts the call and says whether the rule fires.  A probability draws
 * from (seed, rule, call number) alone, so each rule's sequence of hits is
 * the same on every run with the same seed, whatever the other rules do.
 */
static bool fires(const struct fault *f, struct sys_fault_rule *r)
{
	uint64_t n =
		atomic_fetch_add_explicit(&r->calls, 1, memory_order_relaxed) +
		1;
	uint64_t h;

	switch (r->when) {
	case FW_NTH:
		return n == r->nth;
	case FW_FROM:
		return n >= r->nth;
	case FW_PROB:
		h = mix64(f->seed ^ mix64(((uint64_t)r->index << 40) ^ n));
		return (double)(h >> 11) * 0x1.0p-53 < r->p;
	case FW_ALWAYS:
		break;
	}
	return true;
}

/* Waits on the inner sys, whose clock no rule bends. */
static void fault_delay(struct fault *f, int64_t ms)
{
	int64_t deadline = sys_now_mono_ms(f->inner) + ms;

	for (;;) {
		int64_t left = deadline - sys_now_mono_ms(f->inner);
		if (left <= 0)
			return;
		if (sys_poll(f->inner, NULL, 0,
			     left > INT_MAX ? INT_MAX : (int)left) < 0)
			return;
	}
}

static void apply(const struct sys_fault_rule *r, struct verdict *v)
{
	switch (r->kind) {
	case FK_ERROR:
	case FK_EOF:
		if (!v->stop) {
			v->stop = true;
			v->rc = r->kind == FK_ERROR ? r->err : 0;
		}
		break;
	case FK_SHORT:
		if ((uint64_t)r->amount < v->cap)
			v->cap = (size_t)r->amount;
		break;
	case FK_DELAY:
		v->delay_ms += r->amount;
		break;
	default: /* clock kinds never reach an I/O operation */
		break;
	}
}

/* Returns true when the call must not be made; v->rc is then the result. */
static bool judge(struct fault *f, const struct call *c, struct verdict *v)
{
	const struct rule_list *l = &f->by_op[c->op];

	*v = (struct verdict){.cap = SIZE_MAX};
	for (size_t i = 0; i < l->n; i++) {
		struct sys_fault_rule *r = l->v[i];
		if (!scope_matches(f, r, c) || !fires(f, r))
			continue;
		sys_fault_hit(r);
		apply(r, v);
	}
	if (v->delay_ms > 0)
		fault_delay(f, v->delay_ms);
	return v->stop;
}

static size_t capped(size_t len, const struct verdict *v)
{
	return len < v->cap ? len : v->cap;
}

#define NAMED(f, op) ((f)->by_op[op].n > 0)

/* ---- what descriptors are (for scopes) ---- */

/* Lock held.  The slot for fd, growing the table; NULL if out of memory. */
static struct fd_info *fd_slot(struct fault *f, int fd)
{
	if ((size_t)fd >= f->nfds) {
		size_t n = f->nfds ? f->nfds : 64;
		struct fd_info *bigger;

		while (n <= (size_t)fd)
			n *= 2;
		bigger = realloc(f->fds, n * sizeof(*bigger));
		if (!bigger)
			return NULL; /* the scope simply will not match */
		memset(bigger + f->nfds, 0, (n - f->nfds) * sizeof(*bigger));
		f->fds = bigger;
		f->nfds = n;
	}
	return &f->fds[fd];
}

static void fd_forget(struct fault *f, int fd)
{
	pthread_mutex_lock(&f->lock);
	if (fd >= 0 && (size_t)fd < f->nfds) {
		free(f->fds[fd].name);
		memset(&f->fds[fd], 0, sizeof(f->fds[fd]));
	}
	pthread_mutex_unlock(&f->lock);
}

/* Lock held.  The host a resolve returned addr for, newest first. */
static const char *learnt_host(const struct fault *f,
			       const struct sys_addr *addr)
{
	for (size_t i = 0; i < NAMES_MAX; i++) {
		const struct learnt_name *l =
			&f->names[(f->names_next + NAMES_MAX - 1 - i) %
				  NAMES_MAX];
		if (l->host[0] && addr_equal(&l->addr, addr, true))
			return l->host;
	}
	return NULL;
}

/* strdup, spelt out so that every byte comes from this module's malloc. */
static char *copy_text(const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = malloc(n);

	if (copy)
		memcpy(copy, s, n);
	return copy;
}

static void fd_note(struct fault *f, int fd, enum fd_role role,
		    const struct sys_addr *peer, const char *path)
{
	struct fd_info *info;
	const char *name = path;

	if (fd < 0)
		return;
	pthread_mutex_lock(&f->lock);
	info = fd_slot(f, fd);
	if (info) {
		free(info->name);
		memset(info, 0, sizeof(*info));
		info->role = role;
		if (peer)
			info->peer = *peer;
		if (role == ROLE_ORIGIN)
			name = learnt_host(f, peer);
		info->name = name ? copy_text(name) : NULL;
	}
	pthread_mutex_unlock(&f->lock);
}

static void learn(struct fault *f, const char *host,
		  const struct sys_addr *addrs, int n)
{
	size_t len = strlen(host);

	if (len >= FAULT_SCOPE_MAX)
		return; /* longer than any scope can be */
	pthread_mutex_lock(&f->lock);
	for (int i = 0; i < n; i++) {
		struct learnt_name *l = &f->names[f->names_next];
		l->addr = addrs[i];
		memcpy(l->host, host, len + 1);
		f->names_next = (f->names_next + 1) % NAMES_MAX;
	}
	pthread_mutex_unlock(&f->lock);
}

/* ---- the network table ---- */

/* Operations with nothing to learn and no bytes to cut short. */
#define ARGS(...) __VA_ARGS__
#define SIMPLE_OP(ret, name, OP, params, fd_, path_, args)                     \
	static ret fault_##name params                                         \
	{                                                                      \
		struct fault *f = ctx;                                         \
		struct call c = {                                              \
			.op = OP, .fd = fd_, .fd2 = -1, .path = path_};        \
		struct verdict v;                                              \
		if (NAMED(f, OP) && judge(f, &c, &v))                          \
			return (ret)v.rc;                                      \
		return sys_##name(f->inner, ARGS args);                        \
	}

SIMPLE_OP(int, socket, FOP_SOCKET,
	  (void *ctx, int domain, int type, int protocol), -1, NULL,
	  (domain, type, protocol))
SIMPLE_OP(int, bind, FOP_BIND, (void *ctx, int fd, const struct sys_addr *addr),
	  fd, NULL, (fd, addr))
SIMPLE_OP(int, listen, FOP_LISTEN, (void *ctx, int fd, int backlog), fd, NULL,
	  (fd, backlog))
SIMPLE_OP(int, pipe, FOP_PIPE, (void *ctx, int fds[2]), -1, NULL, (fds))
SIMPLE_OP(int, shutdown, FOP_SHUTDOWN, (void *ctx, int fd, int how), fd, NULL,
	  (fd, how))
SIMPLE_OP(int, poll, FOP_POLL,
	  (void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms), -1,
	  NULL, (fds, nfds, timeout_ms))
SIMPLE_OP(int, setsockopt, FOP_SETSOCKOPT,
	  (void *ctx, int fd, int level, int name, const void *val,
	   socklen_t len),
	  fd, NULL, (fd, level, name, val, len))
SIMPLE_OP(int, getsockopt, FOP_GETSOCKOPT,
	  (void *ctx, int fd, int level, int name, void *val, socklen_t *len),
	  fd, NULL, (fd, level, name, val, len))
SIMPLE_OP(int, getsockname, FOP_GETSOCKNAME,
	  (void *ctx, int fd, struct sys_addr *out), fd, NULL, (fd, out))
SIMPLE_OP(int, set_nonblocking, FOP_SET_NONBLOCKING,
	  (void *ctx, int fd, int on), fd, NULL, (fd, on))

static int fault_accept(void *ctx, int fd, struct sys_addr *peer)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_ACCEPT, .fd = fd, .fd2 = -1};
	struct sys_addr ignored;
	struct verdict v;
	int rc;

	if (NAMED(f, FOP_ACCEPT) && judge(f, &c, &v))
		return (int)v.rc;
	if (!f->track_sockets)
		return sys_accept(f->inner, fd, peer);
	if (!peer)
		peer = &ignored;
	rc = sys_accept(f->inner, fd, peer);
	if (rc >= 0)
		fd_note(f, rc, ROLE_CLIENT, peer, NULL);
	return rc;
}

static int fault_connect(void *ctx, int fd, const struct sys_addr *addr)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_CONNECT, .fd = fd, .fd2 = -1};
	struct verdict v;

	/* Noted first, so that rules scoped to this origin match the connect. */
	if (f->track_sockets)
		fd_note(f, fd, ROLE_ORIGIN, addr, NULL);
	if (NAMED(f, FOP_CONNECT) && judge(f, &c, &v))
		return (int)v.rc;
	return sys_connect(f->inner, fd, addr);
}

/*
 * A receive that cannot wait (MSG_DONTWAIT: the waiting room's looks) and
 * would find nothing is not a call the rules count: whether the look at
 * accept comes before or after the client's first bytes is a race, and
 * `net.recv=eof@2` must mean the same read either way.  It fails EAGAIN
 * here, without the inner recv, so no byte can slip past uncounted.
 */
static bool recv_would_block(struct fault *f, int fd, int flags)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return (flags & MSG_DONTWAIT) && sys_poll(f->inner, &p, 1, 0) == 0;
}

static ssize_t fault_recv(void *ctx, int fd, void *buf, size_t len, int flags)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_RECV, .fd = fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_RECV))
		return sys_recv(f->inner, fd, buf, len, flags);
	if (recv_would_block(f, fd, flags))
		return -EAGAIN;
	if (judge(f, &c, &v))
		return v.rc;
	return sys_recv(f->inner, fd, buf, capped(len, &v), flags);
}

static ssize_t fault_send(void *ctx, int fd, const void *buf, size_t len,
			  int flags)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_SEND, .fd = fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_SEND))
		return sys_send(f->inner, fd, buf, len, flags);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_send(f->inner, fd, buf, capped(len, &v), flags);
}

static ssize_t fault_splice(void *ctx, int fd_in, int fd_out, size_t len,
			    unsigned int flags)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_SPLICE, .fd = fd_in, .fd2 = fd_out};
	struct verdict v;

	if (!NAMED(f, FOP_SPLICE))
		return sys_splice(f->inner, fd_in, fd_out, len, flags);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_splice(f->inner, fd_in, fd_out, capped(len, &v), flags);
}

static ssize_t fault_sendfile(void *ctx, int out_fd, int in_fd, off_t *offset,
			      size_t count)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_SENDFILE, .fd = out_fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_SENDFILE))
		return sys_sendfile(f->inner, out_fd, in_fd, offset, count);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_sendfile(f->inner, out_fd, in_fd, offset, capped(count, &v));
}

static ssize_t fault_pipe_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_PIPE_WRITE, .fd = fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_PIPE_WRITE))
		return sys_pipe_write(f->inner, fd, buf, len);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_pipe_write(f->inner, fd, buf, capped(len, &v));
}

static ssize_t fault_pipe_read(void *ctx, int fd, void *buf, size_t len)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_PIPE_READ, .fd = fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_PIPE_READ))
		return sys_pipe_read(f->inner, fd, buf, len);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_pipe_read(f->inner, fd, buf, capped(len, &v));
}

/* epoll passes straight through: no rule names it (docs/faults.md). */
static int fault_epoll_create(void *ctx)
{
	struct fault *f = ctx;

	return sys_epoll_create(f->inner);
}

static int fault_epoll_ctl(void *ctx, int epfd, int op, int fd,
			   struct epoll_event *ev)
{
	struct fault *f = ctx;

	return sys_epoll_ctl(f->inner, epfd, op, fd, ev);
}

static int fault_epoll_wait(void *ctx, int epfd, struct epoll_event *events,
			    int max, int timeout_ms)
{
	struct fault *f = ctx;

	return sys_epoll_wait(f->inner, epfd, events, max, timeout_ms);
}

/*
 * Both close members: the descriptor is always closed (Linux releases it
 * even when close fails), then an injected error is reported.
 */
static int close_either(struct fault *f, enum fault_op op, int fd)
{
	struct call c = {.op = op, .fd = fd, .fd2 = -1};
	struct verdict v;
	bool inject = NAMED(f, op) && judge(f, &c, &v);
	int rc;

	/* Forgotten before the close: another thread may reuse the number. */
	if (f->track_sockets || f->track_paths)
		fd_forget(f, fd);
	rc = op == FOP_NET_CLOSE ? sys_close(f->inner, fd)
				 : sys_file_close(f->inner, fd);
	return inject ? (int)v.rc : rc;
}

static int fault_net_close(void *ctx, int fd)
{
	return close_either(ctx, FOP_NET_CLOSE, fd);
}

static int fault_resolve(void *ctx, const char *host, uint16_t port,
			 struct sys_addr *out, size_t max)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_RESOLVE, .fd = -1, .fd2 = -1, .host = host};
	struct verdict v;
	int rc;

	if (NAMED(f, FOP_RESOLVE) && judge(f, &c, &v))
		return (int)v.rc;
	rc = sys_resolve(f->inner, host, port, out, max);
	if (rc > 0 && f->learn_names)
		learn(f, host, out, rc);
	return rc;
}

/* ---- the clock table ---- */

/*
 * One reading of a clock, in nanoseconds: offsets bend this reading, steps
 * move every reading from now on, a freeze returns the reading at which it
 * first fired.  Lock held.
 */
static int64_t bend_clock(struct fault *f, enum fault_op op,
			  struct clock_state *cs, int64_t ns)
{
	const struct rule_list *l = &f->by_op[op];
	int64_t offset = 0;
	bool freeze = false;

	for (size_t i = 0; i < l->n; i++) {
		struct sys_fault_rule *r = l->v[i];
		if (!fires(f, r))
			continue;
		sys_fault_hit(r);
		if (r->kind == FK_OFFSET)
			offset += r->amount * 1000000;
		else if (r->kind == FK_STEP)
			cs->step_ns += r->amount * 1000000;
		else if (r->kind == FK_FREEZE)
			freeze = true;
	}
	ns += cs->step_ns + offset;
	if (!freeze)
		return ns;
	if (!cs->frozen) {
		cs->frozen = true;
		cs->frozen_ns = ns;
	}
	return cs->frozen_ns;
}

static int64_t fault_now_mono_ms(void *ctx)
{
	struct fault *f = ctx;
	int64_t ms = sys_now_mono_ms(f->inner);

	if (!NAMED(f, FOP_CLOCK_MONO))
		return ms;
	pthread_mutex_lock(&f->lock);
	ms = bend_clock(f, FOP_CLOCK_MONO, &f->mono, ms * 1000000) / 1000000;
	/* Whatever the rules do, this clock never goes backwards. */
	if (ms < f->mono_last)
		ms = f->mono_last;
	f->mono_last = ms;
	pthread_mutex_unlock(&f->lock);
	return ms;
}

static int fault_now_wall(void *ctx, struct timespec *out)
{
	struct fault *f = ctx;
	int rc = sys_now_wall(f->inner, out);
	int64_t ns;

	if (rc < 0 || !NAMED(f, FOP_CLOCK_WALL))
		return rc;
	pthread_mutex_lock(&f->lock);
	ns = bend_clock(f, FOP_CLOCK_WALL, &f->wall,
			(int64_t)out->tv_sec * 1000000000 + out->tv_nsec);
	pthread_mutex_unlock(&f->lock);
	out->tv_sec = (time_t)(ns / 1000000000);
	out->tv_nsec = (long)(ns % 1000000000);
	if (out->tv_nsec < 0) {
		out->tv_sec--;
		out->tv_nsec += 1000000000;
	}
	return 0;
}

/* ---- the file table ---- */

SIMPLE_OP(int, fsync, FOP_FSYNC, (void *ctx, int fd), fd, NULL, (fd))
SIMPLE_OP(int, fstat, FOP_FSTAT, (void *ctx, int fd, struct stat *out), fd,
	  NULL, (fd, out))
SIMPLE_OP(int, ftruncate, FOP_FTRUNCATE, (void *ctx, int fd, off_t len), fd,
	  NULL, (fd, len))
SIMPLE_OP(int, unlink, FOP_UNLINK, (void *ctx, const char *path), -1, path,
	  (path))
SIMPLE_OP(int, mkdir, FOP_MKDIR, (void *ctx, const char *path, mode_t mode), -1,
	  path, (path, mode))
SIMPLE_OP(int, rmdir, FOP_RMDIR, (void *ctx, const char *path), -1, path,
	  (path))
SIMPLE_OP(int, stat, FOP_STAT, (void *ctx, const char *path, struct stat *out),
	  -1, path, (path, out))
SIMPLE_OP(int, list_dir, FOP_LIST_DIR,
	  (void *ctx, const char *path,
	   int (*each)(void *arg, const char *name, unsigned char d_type),
	   void *arg),
	  -1, path, (path, each, arg))

static int fault_open(void *ctx, const char *path, int flags, mode_t mode)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_OPEN, .fd = -1, .fd2 = -1, .path = path};
	struct verdict v;
	int fd;

	if (NAMED(f, FOP_OPEN) && judge(f, &c, &v))
		return (int)v.rc;
	fd = sys_open(f->inner, path, flags, mode);
	if (fd >= 0 && f->track_paths)
		fd_note(f, fd, ROLE_FILE, NULL, path);
	return fd;
}

static ssize_t fault_read(void *ctx, int fd, void *buf, size_t len)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_READ, .fd = fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_READ))
		return sys_read(f->inner, fd, buf, len);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_read(f->inner, fd, buf, capped(len, &v));
}

static ssize_t fault_pread(void *ctx, int fd, void *buf, size_t len,
			   off_t offset)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_PREAD, .fd = fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_PREAD))
		return sys_pread(f->inner, fd, buf, len, offset);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_pread(f->inner, fd, buf, capped(len, &v), offset);
}

static ssize_t fault_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_WRITE, .fd = fd, .fd2 = -1};
	struct verdict v;

	if (!NAMED(f, FOP_WRITE))
		return sys_write(f->inner, fd, buf, len);
	if (judge(f, &c, &v))
		return v.rc;
	return sys_write(f->inner, fd, buf, capped(len, &v));
}

static int fault_file_close(void *ctx, int fd)
{
	return close_either(ctx, FOP_FILE_CLOSE, fd);
}

static int fault_rename(void *ctx, const char *from, const char *to)
{
	struct fault *f = ctx;
	struct call c = {.op = FOP_RENAME,
			 .fd = -1,
			 .fd2 = -1,
			 .path = from,
			 .path2 = to};
	struct verdict v;

	if (NAMED(f, FOP_RENAME) && judge(f, &c, &v))
		return (int)v.rc;
	return sys_rename(f->inner, from, to);
}

static const struct sys_net_ops fault_net_ops = {
	.socket = fault_socket,
	.bind = fault_bind,
	.listen = fault_listen,
	.accept = fault_accept,
	.connect = fault_connect,
	.recv = fault_recv,
	.send = fault_send,
	.splice = fault_splice,
	.sendfile = fault_sendfile,
	.pipe = fault_pipe,
	.pipe_write = fault_pipe_write,
	.pipe_read = fault_pipe_read,
	.shutdown = fault_shutdown,
	.close = fault_net_close,
	.poll = fault_poll,
	.setsockopt = fault_setsockopt,
	.getsockopt = fault_getsockopt,
	.getsockname = fault_getsockname,
	.set_nonblocking = fault_set_nonblocking,
	.resolve = fault_resolve,
	.epoll_create = fault_epoll_create,
	.epoll_ctl = fault_epoll_ctl,
	.epoll_wait = fault_epoll_wait,
};

static const struct sys_clock_ops fault_clock_ops = {
	.now_mono_ms = fault_now_mono_ms,
	.now_wall = fault_now_wall,
};

static const struct sys_fs_ops fault_fs_ops = {
	.open = fault_open,
	.read = fault_read,
	.pread = fault_pread,
	.write = fault_write,
	.fsync = fault_fsync,
	.close = fault_file_close,
	.rename = fault_rename,
	.unlink = fault_unlink,
	.mkdir = fault_mkdir,
	.stat = fault_stat,
	.fstat = fault_fstat,
	.ftruncate = fault_ftruncate,
	.rmdir = fault_rmdir,
	.list_dir = fault_list_dir,
};

/* ---- building, describing, freeing ---- */

static int refuse(const char *spec, size_t at, const char *why, char *err,
		  size_t errlen)
{
	if (errlen > 0)
		snprintf(err, errlen, "%s\n%*s^ %s", spec, (int)at, "", why);
	return -EINVAL;
}

static int add_to_list(struct rule_list *l, struct sys_fault_rule *r)
{
	struct sys_fault_rule **bigger =
		realloc(l->v, (l->n + 1) * sizeof(*bigger));

	if (!bigger)
		return -ENOMEM;
	bigger[l->n++] = r;
	l->v = bigger;
	return 0;
}

/* Per-operation lists, and which descriptors need remembering. */
static int index_rules(struct fault *f)
{
	for (size_t i = 0; i < f->nrules; i++) {
		struct sys_fault_rule *r = &f->rules[i];
		r->index = (unsigned)i;
		for (int op = 0; op < FOP_COUNT; op++)
			if ((r->ops & (1ull << op)) &&
			    add_to_list(&f->by_op[op], r) < 0)
				return -ENOMEM;
		if (r->scope == FSC_PATH)
			f->track_paths = true;
		else if (r->scope != FSC_NONE)
			f->track_sockets = true;
		if (r->scope == FSC_HOST)
			f->learn_names = true;
	}
	return 0;
}

static int parse_all(struct fault *f, const char *const *specs, size_t n,
		     char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const char *why;
		size_t at;
		int rc = sys_fault_parse_seed(specs[i], &f->seed, &at, &why);

		if (rc == 0)
			rc = sys_fault_parse_rule(
				specs[i], &f->rules[f->nrules], &at, &why);
		else if (rc > 0)
			continue;
		if (rc < 0)
			return refuse(specs[i], at, why, err, errlen);
		f->nrules++;
	}
	return 0;
}

int sys_fault_new(struct sys *inner, const char *const *specs, size_t nspecs,
		  uint64_t seed, struct sys **out, char *err, size_t errlen)
{
	struct fault *f = calloc(1, sizeof(*f));
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if (!f)
		return -ENOMEM;
	f->rules = calloc(nspecs ? nspecs : 1, sizeof(*f->rules));
	if (!f->rules) {
		rc = -ENOMEM;
		goto free_fault;
	}
	f->inner = inner;
	f->seed = seed;
	f->mono_last = INT64_MIN;
	rc = parse_all(f, specs, nspecs, err, errlen);
	if (rc == 0)
		rc = index_rules(f);
	if (rc < 0)
		goto free_fault;
	pthread_mutex_init(&f->lock, NULL);
	f->sys = (struct sys){&fault_net_ops, &fault_clock_ops, &fault_fs_ops,
			      f};
	*out = &f->sys;
	return 0;

free_fault:
	for (int op = 0; op < FOP_COUNT; op++)
		free(f->by_op[op].v);
	free(f->rules);
	free(f);
	return rc;
}

/* The public functions accept any struct sys and act on fault ones only. */
static struct fault *fault_of(const struct sys *s)
{
	return s && s->net == &fault_net_ops ? (struct fault *)s->ctx : NULL;
}

void sys_fault_free(struct sys *s)
{
	struct fault *f = fault_of(s);

	if (!f)
		return;
	for (size_t i = 0; i < f->nfds; i++)
		free(f->fds[i].name);
	free(f->fds);
	for (int op = 0; op < FOP_COUNT; op++)
		free(f->by_op[op].v);
	pthread_mutex_destroy(&f->lock);
	free(f->rules);
	free(f);
}

__attribute__((format(printf, 4, 5))) static size_t
append(char *buf, size_t cap, size_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(at < cap ? buf + at : NULL, at < cap ? cap - at : 0, fmt,
		      ap);
	va_end(ap);
	return n > 0 ? (size_t)n : 0;
}

size_t sys_fault_describe(const struct sys *s, char *buf, size_t cap)
{
	const struct fault *f = fault_of(s);
	size_t need;

	if (cap > 0)
		buf[0] = '\0';
	if (!f)
		return 0;
	need = append(buf, cap, 0, "seed=%llu\n", (unsigned long long)f->seed);
	for (size_t i = 0; i < f->nrules; i++) {
		const struct sys_fault_rule *r = &f->rules[i];
		need += append(buf, cap, need, "%s hits=%llu calls=%llu\n",
			       r->text,
			       (unsigned long long)atomic_load(&r->hits),
			       (unsigned long long)atomic_load(&r->calls));
	}
	return need;
}

size_t sys_fault_rule_count(const struct sys *s)
{
	const struct fault *f = fault_of(s);

	return f ? f->nrules : 0;
}

uint64_t sys_fault_hits(const struct sys *s, size_t i)
{
	const struct fault *f = fault_of(s);

	return f && i < f->nrules ? atomic_load(&f->rules[i].hits) : 0;
}

uint64_t sys_fault_seed(const struct sys *s)
{
	const struct fault *f = fault_of(s);

	return f ? f->seed : 0;
}

int sys_fault_learn(struct sys *s, const char *host,
		    const struct sys_addr *addrs, size_t n)
{
	struct fault *f = fault_of(s);

	if (!f)
		return -EINVAL;
	if (f->learn_names)
		learn(f, host, addrs, n > INT_MAX ? INT_MAX : (int)n);
	return 0;
}

int sys_fault_split(char *text, const char **specs, size_t max)
{
	static const char seps[] = " \t\r\n;";
	size_t n = 0;
	char *p = text;

	for (;;) {
		while (*p && strchr(seps, *p))
			*p++ = '\0';
		if (!*p)
			return (int)n;
		if (n == max)
			return -E2BIG;
		specs[n++] = p;
		while (*p && !strchr(seps, *p))
			p++;
	}
}
