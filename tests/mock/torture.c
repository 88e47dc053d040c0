/*
 * The countdown injector, the allocation counter and torture_run(); see
 * torture.h.
 */
#include "torture.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define MAX_TRACKED 256
#define MAX_RUNS    10000 /* an operation that never runs clean is a bug */

static struct {
	struct sys *inner;
	unsigned set;
	int err;
	bool persistent;
	long nth, calls, fired;
	const char *failed;
	int fds[MAX_TRACKED];
	int nfds;
} t;

/* Read by every allocation in the binary, from any thread. */
static atomic_bool armed_alloc;
static atomic_long live_allocs;

/* Counts one call of the given kind; true when it must fail. */
static bool hit(unsigned kind, const char *name)
{
	if (!(t.set & kind))
		return false;
	t.calls++;
	if (t.nth <= 0 || t.calls < t.nth || (t.calls > t.nth && !t.persistent))
		return false;
	if (!t.fired++)
		t.failed = name;
	return true;
}

static int track(int fd)
{
	if (fd >= 0) {
		assert_true(t.nfds < MAX_TRACKED);
		t.fds[t.nfds++] = fd;
	}
	return fd;
}

static void untrack(int fd)
{
	for (int i = 0; i < t.nfds; i++)
		if (t.fds[i] == fd) {
			t.fds[i] = t.fds[--t.nfds];
			return;
		}
}

/* ---- allocations (the test binaries link with --wrap) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static bool alloc_fails(const char *name)
{
	if (!atomic_load_explicit(&armed_alloc, memory_order_relaxed))
		return false;
	if (!hit(TORTURE_ALLOC, name))
		return false;
	errno = ENOMEM;
	return true;
}

static void *counted(void *p)
{
	if (p)
		atomic_fetch_add_explicit(&live_allocs, 1,
					  memory_order_relaxed);
	return p;
}

void *__wrap_malloc(size_t n)
{
	return alloc_fails("malloc") ? NULL : counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails("calloc") ? NULL : counted(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
	if (alloc_fails("realloc"))
		return NULL;
	if (!p)
		return counted(__real_realloc(p, n));
	if (n == 0)
		atomic_fetch_sub_explicit(&live_allocs, 1,
					  memory_order_relaxed);
	return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
	if (p)
		atomic_fetch_sub_explicit(&live_allocs, 1,
					  memory_order_relaxed);
	__real_free(p);
}

/* ---- the injector's tables ---- */

#define ARGS(...) __VA_ARGS__
#define FORWARD(ret, name, kind, params, args)                                 \
	static ret torture_##name params                                       \
	{                                                                      \
		(void)ctx;                                                     \
		if (hit(kind, #name))                                          \
			return (ret)t.err;                                     \
		return sys_##name(t.inner, ARGS args);                         \
	}
/* The same, remembering the descriptor it returns. */
#define OPENER(name, kind, params, args)                                       \
	static int torture_##name params                                       \
	{                                                                      \
		(void)ctx;                                                     \
		if (hit(kind, #name))                                          \
			return t.err;                                          \
		return track(sys_##name(t.inner, ARGS args));                  \
	}

OPENER(socket, TORTURE_NET_SETUP,
       (void *ctx, int domain, int type, int protocol),
       (domain, type, protocol))
OPENER(accept, TORTURE_NET_SETUP, (void *ctx, int fd, struct sys_addr *peer),
       (fd, peer))
OPENER(open, TORTURE_FS, (void *ctx, const char *path, int flags, mode_t mode),
       (path, flags, mode))
FORWARD(int, bind, TORTURE_NET_SETUP,
	(void *ctx, int fd, const struct sys_addr *addr), (fd, addr))
FORWARD(int, listen, TORTURE_NET_SETUP, (void *ctx, int fd, int backlog),
	(fd, backlog))
FORWARD(int, connect, TORTURE_NET_SETUP,
	(void *ctx, int fd, const struct sys_addr *addr), (fd, addr))
FORWARD(ssize_t, recv, TORTURE_NET_IO,
	(void *ctx, int fd, void *buf, size_t len, int flags),
	(fd, buf, len, flags))
FORWARD(ssize_t, send, TORTURE_NET_IO,
	(void *ctx, int fd, const void *buf, size_t len, int flags),
	(fd, buf, len, flags))
FORWARD(ssize_t, splice, TORTURE_NET_IO,
	(void *ctx, int fd_in, int fd_out, size_t len, unsigned int flags),
	(fd_in, fd_out, len, flags))
FORWARD(ssize_t, sendfile, TORTURE_NET_IO,
	(void *ctx, int out_fd, int in_fd, off_t *offset, size_t count),
	(out_fd, in_fd, offset, count))
FORWARD(ssize_t, pipe_write, TORTURE_NET_IO,
	(void *ctx, int fd, const void *buf, size_t len), (fd, buf, len))
FORWARD(ssize_t, pipe_read, TORTURE_NET_IO,
	(void *ctx, int fd, void *buf, size_t len), (fd, buf, len))
FORWARD(int, shutdown, TORTURE_NET_SETUP, (void *ctx, int fd, int how),
	(fd, how))
FORWARD(int, poll, TORTURE_NET_SETUP,
	(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms),
	(fds, nfds, timeout_ms))
FORWARD(int, setsockopt, TORTURE_NET_SETUP,
	(void *ctx, int fd, int level, int name, const void *val,
	 socklen_t len),
	(fd, level, name, val, len))
FORWARD(int, getsockopt, TORTURE_NET_SETUP,
	(void *ctx, int fd, int level, int name, void *val, socklen_t *len),
	(fd, level, name, val, len))
FORWARD(int, getsockname, TORTURE_NET_SETUP,
	(void *ctx, int fd, struct sys_addr *out), (fd, out))
FORWARD(int, set_nonblocking, TORTURE_NET_SETUP, (void *ctx, int fd, int on),
	(fd, on))
FORWARD(int, resolve, TORTURE_NET_SETUP,
	(void *ctx, const char *host, uint16_t port, struct sys_addr *out,
	 size_t max),
	(host, port, out, max))
FORWARD(int, now_wall, TORTURE_CLOCK, (void *ctx, struct timespec *out), (out))
FORWARD(ssize_t, read, TORTURE_FS, (void *ctx, int fd, void *buf, size_t len),
	(fd, buf, len))
FORWARD(ssize_t, pread, TORTURE_FS,
	(void *ctx, int fd, void *buf, size_t len, off_t offset),
	(fd, buf, len, offset))
FORWARD(ssize_t, write, TORTURE_FS,
	(void *ctx, int fd, const void *buf, size_t len), (fd, buf, len))
FORWARD(int, fsync, TORTURE_FS, (void *ctx, int fd), (fd))
FORWARD(int, rename, TORTURE_FS, (void *ctx, const char *from, const char *to),
	(from, to))
FORWARD(int, unlink, TORTURE_FS, (void *ctx, const char *path), (path))
FORWARD(int, mkdir, TORTURE_FS, (void *ctx, const char *path, mode_t mode),
	(path, mode))
FORWARD(int, rmdir, TORTURE_FS, (void *ctx, const char *path), (path))
FORWARD(int, stat, TORTURE_FS, (void *ctx, const char *path, struct stat *out),
	(path, out))
FORWARD(int, fstat, TORTURE_FS, (void *ctx, int fd, struct stat *out),
	(fd, out))
FORWARD(int, ftruncate, TORTURE_FS, (void *ctx, int fd, off_t len), (fd, len))
FORWARD(int, list_dir, TORTURE_FS,
	(void *ctx, const char *path,
	 int (*each)(void *arg, const char *name, unsigned char d_type),
	 void *arg),
	(path, each, arg))

static int torture_pipe(void *ctx, int fds[2])
{
	int rc;

	(void)ctx;
	if (hit(TORTURE_NET_SETUP, "pipe"))
		return t.err;
	rc = sys_pipe(t.inner, fds);
	if (rc == 0) {
		track(fds[0]);
		track(fds[1]);
	}
	return rc;
}

/* Both closes release the descriptor, then report the injected error. */
static int torture_close(void *ctx, int fd)
{
	bool fail = hit(TORTURE_NET_CLOSE, "close");
	int rc;

	(void)ctx;
	untrack(fd);
	rc = sys_close(t.inner, fd);
	return fail ? t.err : rc;
}

static int torture_file_close(void *ctx, int fd)
{
	bool fail = hit(TORTURE_FS_CLOSE, "file_close");
	int rc;

	(void)ctx;
	untrack(fd);
	rc = sys_file_close(t.inner, fd);
	return fail ? t.err : rc;
}

static int64_t torture_now_mono_ms(void *ctx)
{
	(void)ctx;
	return sys_now_mono_ms(t.inner);
}

static const struct sys_net_ops net_ops = {
	.socket = torture_socket,
	.bind = torture_bind,
	.listen = torture_listen,
	.accept = torture_accept,
	.connect = torture_connect,
	.recv = torture_recv,
	.send = torture_send,
	.splice = torture_splice,
	.sendfile = torture_sendfile,
	.pipe = torture_pipe,
	.pipe_write = torture_pipe_write,
	.pipe_read = torture_pipe_read,
	.shutdown = torture_shutdown,
	.close = torture_close,
	.poll = torture_poll,
	.setsockopt = torture_setsockopt,
	.getsockopt = torture_getsockopt,
	.getsockname = torture_getsockname,
	.set_nonblocking = torture_set_nonblocking,
	.resolve = torture_resolve,
};

static const struct sys_clock_ops clock_ops = {
	.now_mono_ms = torture_now_mono_ms,
	.now_wall = torture_now_wall,
};

static const struct sys_fs_ops fs_ops = {
	.open = torture_open,
	.read = torture_read,
	.pread = torture_pread,
	.write = torture_write,
	.fsync = torture_fsync,
	.close = torture_file_close,
	.rename = torture_rename,
	.unlink = torture_unlink,
	.mkdir = torture_mkdir,
	.stat = torture_stat,
	.fstat = torture_fstat,
	.ftruncate = torture_ftruncate,
	.rmdir = torture_rmdir,
	.list_dir = torture_list_dir,
};

static struct sys torture = {&net_ops, &clock_ops, &fs_ops, NULL};

struct sys *torture_sys(struct sys *inner, unsigned set, int err,
			bool persistent, long nth)
{
	t.inner = inner;
	t.set = set;
	t.err = err;
	t.persistent = persistent;
	t.nth = nth;
	t.calls = t.fired = 0;
	t.failed = NULL;
	t.nfds = 0;
	atomic_store(&armed_alloc, (set & TORTURE_ALLOC) != 0);
	return &torture;
}

void torture_disarm(void)
{
	atomic_store(&armed_alloc, false);
	t.set = 0;
}

long torture_calls(void)
{
	return t.calls;
}

long torture_fired(void)
{
	return t.fired;
}

const char *torture_failed_call(void)
{
	return t.failed;
}

int torture_open_fds(void)
{
	return t.nfds;
}

long torture_live_allocs(void)
{
	return atomic_load(&live_allocs);
}

/* One run with call nth failing; returns true when it ran clean. */
static bool run_once(const struct torture_op *op, void *ctx, long nth)
{
	struct sys *inner = op->setup(ctx);
	long allocs = torture_live_allocs();
	struct sys *sys =
		torture_sys(inner, op->set, op->err, op->persistent, nth);
	int rc = op->run(sys, ctx);
	const char *failed = torture_failed_call();
	bool success_ok;

	torture_disarm();
	if (rc > 0 || rc < -4095)
		fail_msg("%s, call %ld (%s) failing: result %d is no errno",
			 op->name, nth, failed ? failed : "none", rc);
	if (torture_open_fds() != 0)
		fail_msg("%s, call %ld (%s) failing: %d descriptor(s) left "
			 "open, first %d",
			 op->name, nth, failed ? failed : "none",
			 torture_open_fds(), t.fds[0]);
	if (torture_live_allocs() != allocs)
		fail_msg("%s, call %ld (%s) failing: %ld allocation(s) not "
			 "freed",
			 op->name, nth, failed ? failed : "none",
			 torture_live_allocs() - allocs);
	success_ok = op->check ? op->check(ctx, rc, failed) : false;
	if (failed && rc == 0 && !success_ok)
		fail_msg("%s: call %ld (%s) failed but the operation "
			 "reported success",
			 op->name, nth, failed);
	if (op->teardown)
		op->teardown(ctx);
	return failed == NULL;
}

long torture_run(const struct torture_op *op, void *ctx)
{
	long nth;

	for (nth = 1; nth <= MAX_RUNS; nth++)
		if (run_once(op, ctx, nth))
			return nth - 1;
	fail_msg("%s never ran clean in %d runs", op->name, MAX_RUNS);
	return -1;
}
