/*
 * The CMocka sys implementation; see sys_mock.h for how tests script it.
 * Unit tests are single-threaded, so the captures are plain globals.
 */
#include "sys_mock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#define CAPTURE_MAX (1u << 20)
#define MAX_CLOSED  256

struct capture {
	char bytes[CAPTURE_MAX];
	size_t len;
};

static struct capture sent, written;
static int closed_fds[MAX_CLOSED];
static int n_closed;
static int64_t fake_mono_ms;
static time_t fake_wall_sec;

/* ---- trace, per-descriptor send capture, poll delay (see sys_mock.h) ---- */

#define TRACE_MAX   (1u << 16)
#define SENT_ON_FDS 8
#define SENT_ON_MAX (1u << 16)

static char trace[TRACE_MAX];
static size_t trace_len;
static struct {
	int fd;
	size_t len;
	char bytes[SENT_ON_MAX];
} sent_on[SENT_ON_FDS];
static int n_sent_on;
static int64_t poll_delay_ms;

static const char *errno_name(long rc)
{
	static const struct {
		int err;
		const char *name;
	} names[] = {
		{EAGAIN, "-EAGAIN"},	     {EINTR, "-EINTR"},
		{ECONNRESET, "-ECONNRESET"}, {EPIPE, "-EPIPE"},
		{EINVAL, "-EINVAL"},	     {ENOSYS, "-ENOSYS"},
		{EBADF, "-EBADF"},	     {ENOMEM, "-ENOMEM"},
		{EMFILE, "-EMFILE"},	     {ENOTCONN, "-ENOTCONN"},
		{ETIMEDOUT, "-ETIMEDOUT"},   {EIO, "-EIO"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (rc == -names[i].err)
			return names[i].name;
	return NULL;
}

__attribute__((format(printf, 1, 2))) static void trace_add(const char *fmt,
							    ...)
{
	va_list ap;
	int n;

	if (trace_len + 1 >= TRACE_MAX)
		return; /* full: later calls go unrecorded */
	if (trace_len > 0)
		trace[trace_len++] = ' ';
	va_start(ap, fmt);
	n = vsnprintf(trace + trace_len, TRACE_MAX - trace_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	trace_len += (size_t)n < TRACE_MAX - trace_len
			     ? (size_t)n
			     : TRACE_MAX - trace_len - 1;
}

/* "name=rc" with rc spelt -EAGAIN and so on when it is a known error. */
static void trace_call(const char *call, long rc)
{
	const char *name = errno_name(rc);

	if (name)
		trace_add("%s=%s", call, name);
	else
		trace_add("%s=%ld", call, rc);
}

/*
 * Keeps the first SENT_ON_MAX bytes sent on each of the first SENT_ON_FDS
 * descriptors; beyond that it quietly keeps nothing more, so that tests that
 * never look at it cannot fail because of it.
 */
static void sent_on_append(int fd, const void *buf, size_t len)
{
	int i;

	for (i = 0; i < n_sent_on && sent_on[i].fd != fd; i++)
		;
	if (i == n_sent_on) {
		if (n_sent_on == SENT_ON_FDS)
			return;
		sent_on[n_sent_on].fd = fd;
		sent_on[n_sent_on].len = 0;
		n_sent_on++;
	}
	if (len > SENT_ON_MAX - sent_on[i].len)
		len = SENT_ON_MAX - sent_on[i].len;
	memcpy(sent_on[i].bytes + sent_on[i].len, buf, len);
	sent_on[i].len += len;
}

static void capture_append(struct capture *c, const void *buf, size_t len)
{
	assert_true(c->len + len <= CAPTURE_MAX);
	memcpy(c->bytes + c->len, buf, len);
	c->len += len;
}

static ssize_t take_bytes(ssize_t n, void *buf, size_t len, const char *data)
{
	if (n <= 0)
		return n;
	if ((size_t)n > len)
		fail_msg("mock queued %zd bytes but the caller asked for %zu",
			 n, len);
	if (buf)
		memcpy(buf, data, (size_t)n);
	return n;
}

static ssize_t give_bytes(struct capture *c, ssize_t n, const void *buf,
			  size_t len)
{
	if (n == SYS_MOCK_ALL)
		n = (ssize_t)len;
	if (n <= 0)
		return n;
	if ((size_t)n > len)
		fail_msg("mock accepts %zd bytes but the caller sent %zu", n,
			 len);
	capture_append(c, buf, (size_t)n);
	return n;
}

static void record_close(int fd)
{
	assert_true(n_closed < MAX_CLOSED);
	closed_fds[n_closed++] = fd;
}

int mock_socket(void *ctx, int domain, int type, int protocol)
{
	(void)ctx, (void)domain, (void)type, (void)protocol;
	return mock_type(int);
}

int mock_bind(void *ctx, int fd, const struct sys_addr *addr)
{
	(void)ctx, (void)fd, (void)addr;
	return mock_type(int);
}

int mock_listen(void *ctx, int fd, int backlog)
{
	(void)ctx, (void)fd, (void)backlog;
	return mock_type(int);
}

int mock_accept(void *ctx, int fd, struct sys_addr *peer)
{
	int rc = mock_type(int);

	(void)ctx, (void)fd;
	if (rc >= 0 && peer) {
		struct sockaddr_in *in = (struct sockaddr_in *)&peer->ss;
		memset(peer, 0, sizeof(*peer));
		in->sin_family = AF_INET;
		in->sin_port = htons(40000);
		in->sin_addr.s_addr = htonl(0x7f000001);
		peer->len = sizeof(*in);
	}
	return rc;
}

int mock_connect(void *ctx, int fd, const struct sys_addr *addr)
{
	(void)ctx, (void)fd, (void)addr;
	return mock_type(int);
}

ssize_t mock_recv(void *ctx, int fd, void *buf, size_t len, int flags)
{
	ssize_t n = mock_type(ssize_t);
	char call[32];

	(void)ctx, (void)fd, (void)flags;
	n = take_bytes(n, buf, len, n > 0 ? mock_ptr_type(const char *) : 0);
	snprintf(call, sizeof(call), "recv(%d)", fd);
	trace_call(call, (long)n);
	return n;
}

ssize_t mock_send(void *ctx, int fd, const void *buf, size_t len, int flags)
{
	ssize_t n;
	char call[32];

	(void)ctx;
	n = give_bytes(&sent, mock_type(ssize_t), buf, len);
	if (n > 0)
		sent_on_append(fd, buf, (size_t)n);
	/* MSG_MORE shows: a head held back for the body after it. */
	snprintf(call, sizeof(call), "send(%d%s)", fd,
		 flags & MSG_MORE ? ",more" : "");
	trace_call(call, (long)n);
	return n;
}

ssize_t mock_splice(void *ctx, int fd_in, int fd_out, size_t len,
		    unsigned int flags)
{
	ssize_t n = mock_type(ssize_t);

	char call[48];

	(void)ctx, (void)fd_in, (void)fd_out, (void)flags;
	if (n > 0 && (size_t)n > len)
		fail_msg("mock splices %zd bytes but the caller asked for %zu",
			 n, len);
	snprintf(call, sizeof(call), "splice(%d>%d)", fd_in, fd_out);
	trace_call(call, (long)n);
	return n;
}

ssize_t mock_sendfile(void *ctx, int out_fd, int in_fd, off_t *offset,
		      size_t count)
{
	ssize_t n = mock_type(ssize_t);
	char call[48];

	(void)ctx;
	if (n == SYS_MOCK_ALL)
		n = (ssize_t)count;
	if (n > 0 && (size_t)n > count)
		fail_msg("mock sends %zd file bytes but the caller asked for "
			 "%zu",
			 n, count);
	if (n > 0 && offset)
		*offset += n;
	snprintf(call, sizeof(call), "sendfile(%d<%d)", out_fd, in_fd);
	trace_call(call, (long)n);
	return n;
}

ssize_t mock_pipe_write(void *ctx, int fd, const void *buf, size_t len)
{
	ssize_t n = mock_type(ssize_t);
	char call[32];

	(void)ctx, (void)buf;
	if (n == SYS_MOCK_ALL)
		n = (ssize_t)len;
	if (n > 0 && (size_t)n > len)
		fail_msg("mock accepts %zd bytes but the caller wrote %zu", n,
			 len);
	snprintf(call, sizeof(call), "pipe_write(%d)", fd);
	trace_call(call, (long)n);
	return n;
}

ssize_t mock_pipe_read(void *ctx, int fd, void *buf, size_t len)
{
	ssize_t n = mock_type(ssize_t);
	char call[32];

	(void)ctx;
	n = take_bytes(n, buf, len, n > 0 ? mock_ptr_type(const char *) : 0);
	snprintf(call, sizeof(call), "pipe_read(%d)", fd);
	trace_call(call, (long)n);
	return n;
}

int mock_pipe(void *ctx, int fds[2])
{
	int rc = mock_type(int);

	(void)ctx;
	if (rc == 0) {
		fds[0] = mock_type(int);
		fds[1] = mock_type(int);
		trace_add("pipe=0[%d,%d]", fds[0], fds[1]);
	} else {
		trace_call("pipe", rc);
	}
	return rc;
}

int mock_shutdown(void *ctx, int fd, int how)
{
	int rc = mock_type(int);
	char call[40];

	(void)ctx, (void)fd, (void)how;
	snprintf(call, sizeof(call), "shutdown(%d,%s)", fd,
		 how == SHUT_RD	  ? "RD"
		 : how == SHUT_WR ? "WR"
				  : "RDWR");
	trace_call(call, rc);
	return rc;
}

static int mock_close(void *ctx, int fd)
{
	(void)ctx;
	record_close(fd);
	trace_add("close(%d)", fd);
	return 0;
}

int mock_poll(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
	int rc = mock_type(int);

	char call[160];
	size_t at;

	(void)ctx;
	at = (size_t)snprintf(call, sizeof(call), "poll(");
	for (nfds_t i = 0; i < nfds && at < sizeof(call); i++)
		at += (size_t)snprintf(
			call + at, sizeof(call) - at, "%s%d:%s%s%s",
			i ? "," : "", fds[i].fd,
			fds[i].events & POLLIN ? "i" : "",
			fds[i].events & POLLOUT ? "o" : "",
			fds[i].events & (POLLIN | POLLOUT) ? "" : "-");
	if (at < sizeof(call))
		snprintf(call + at, sizeof(call) - at, ";%d)", timeout_ms);
	trace_call(call, rc);
	for (nfds_t i = 0; i < nfds; i++)
		fds[i].revents = rc > 0 ? (short)mock_type(int) : 0;
	if (rc == 0 && timeout_ms > 0)
		fake_mono_ms += timeout_ms;
	if (rc > 0)
		fake_mono_ms += poll_delay_ms;
	return rc;
}

/* epoll: what epoll_ctl registered per descriptor, for epoll_wait. */
#define MOCK_EPOLL_FDS 1024
static struct epoll_event epoll_reg[MOCK_EPOLL_FDS];

int mock_epoll_create(void *ctx)
{
	int rc = mock_type(int);

	(void)ctx;
	trace_call("epoll_create", rc);
	return rc;
}

static int mock_epoll_ctl(void *ctx, int epfd, int op, int fd,
			  struct epoll_event *ev)
{
	char call[60];

	(void)ctx;
	snprintf(call, sizeof(call), "epoll_ctl(%d,%s,%d)", epfd,
		 op == EPOLL_CTL_ADD   ? "ADD"
		 : op == EPOLL_CTL_MOD ? "MOD"
				       : "DEL",
		 fd);
	trace_call(call, 0);
	if (fd >= 0 && fd < MOCK_EPOLL_FDS && ev)
		epoll_reg[fd] = *ev;
	return 0;
}

int mock_epoll_wait(void *ctx, int epfd, struct epoll_event *events, int max,
		    int timeout_ms)
{
	int rc = mock_type(int);
	char call[60];

	(void)ctx;
	snprintf(call, sizeof(call), "epoll_wait(%d;%d)", epfd, timeout_ms);
	trace_call(call, rc);
	assert_true(rc <= max);
	for (int i = 0; i < rc; i++) {
		int fd = mock_type(int);

		assert_true(fd >= 0 && fd < MOCK_EPOLL_FDS);
		events[i] = epoll_reg[fd];
		events[i].events = (uint32_t)mock_type(int);
	}
	if (rc == 0 && timeout_ms > 0)
		fake_mono_ms += timeout_ms;
	return rc;
}

/* The options set since sys_mock(), for sys_mock_sockopt_count(). */
#define MAX_SOCKOPTS 64
static struct {
	int level, name;
} sockopts[MAX_SOCKOPTS];
static int n_sockopts;

int mock_setsockopt(void *ctx, int fd, int level, int name, const void *val,
		    socklen_t len)
{
	(void)ctx, (void)fd, (void)val, (void)len;
	if (n_sockopts < MAX_SOCKOPTS) {
		sockopts[n_sockopts].level = level;
		sockopts[n_sockopts].name = name;
		n_sockopts++;
	}
	return mock_type(int);
}

int sys_mock_sockopt_count(int level, int name)
{
	int n = 0;

	for (int i = 0; i < n_sockopts; i++)
		n += sockopts[i].level == level && sockopts[i].name == name;
	return n;
}

int mock_getsockopt(void *ctx, int fd, int level, int name, void *val,
		    socklen_t *len)
{
	int rc = mock_type(int);

	(void)ctx, (void)fd, (void)level, (void)name;
	/* SO_ERROR-style integer options: the queued value follows. */
	if (rc == 0 && len && *len == sizeof(int))
		*(int *)val = mock_type(int);
	return rc;
}

int mock_getsockname(void *ctx, int fd, struct sys_addr *out)
{
	int rc = mock_type(int);

	(void)ctx, (void)fd;
	if (rc == 0)
		*out = *mock_ptr_type(const struct sys_addr *);
	return rc;
}

int mock_set_nonblocking(void *ctx, int fd, int on)
{
	int rc = mock_type(int);
	char call[48];

	(void)ctx, (void)fd, (void)on;
	snprintf(call, sizeof(call), "set_nonblocking(%d,%d)", fd, on);
	trace_call(call, rc);
	return rc;
}

int mock_resolve(void *ctx, const char *host, uint16_t port,
		 struct sys_addr *out, size_t max)
{
	int rc = mock_type(int);

	(void)ctx, (void)port;
	check_expected_ptr(host);
	if (rc > 0) {
		const struct sys_addr *addrs =
			mock_ptr_type(const struct sys_addr *);
		assert_true((size_t)rc <= max);
		memcpy(out, addrs, (size_t)rc * sizeof(*out));
	}
	return rc;
}

static int64_t mock_now_mono_ms(void *ctx)
{
	(void)ctx;
	return fake_mono_ms;
}

static int mock_now_wall(void *ctx, struct timespec *out)
{
	(void)ctx;
	out->tv_sec = fake_wall_sec + (time_t)(fake_mono_ms / 1000);
	out->tv_nsec = (long)(fake_mono_ms % 1000) * 1000000L;
	return 0;
}

int mock_open(void *ctx, const char *path, int flags, mode_t mode)
{
	(void)ctx, (void)flags, (void)mode;
	check_expected_ptr(path);
	return mock_type(int);
}

ssize_t mock_read(void *ctx, int fd, void *buf, size_t len)
{
	ssize_t n = mock_type(ssize_t);

	(void)ctx, (void)fd;
	return take_bytes(n, buf, len, n > 0 ? mock_ptr_type(const char *) : 0);
}

ssize_t mock_pread(void *ctx, int fd, void *buf, size_t len, off_t offset)
{
	ssize_t n = mock_type(ssize_t);

	(void)ctx, (void)fd, (void)offset;
	return take_bytes(n, buf, len, n > 0 ? mock_ptr_type(const char *) : 0);
}

ssize_t mock_write(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx, (void)fd;
	return give_bytes(&written, mock_type(ssize_t), buf, len);
}

int mock_fsync(void *ctx, int fd)
{
	(void)ctx, (void)fd;
	return mock_type(int);
}

int mock_rename(void *ctx, const char *from, const char *to)
{
	(void)ctx, (void)from, (void)to;
	return mock_type(int);
}

int mock_unlink(void *ctx, const char *path)
{
	(void)ctx, (void)path;
	return mock_type(int);
}

int mock_mkdir(void *ctx, const char *path, mode_t mode)
{
	(void)ctx, (void)path, (void)mode;
	return mock_type(int);
}

int mock_stat(void *ctx, const char *path, struct stat *out)
{
	(void)ctx, (void)path;
	memset(out, 0, sizeof(*out));
	return mock_type(int);
}

int mock_fstat(void *ctx, int fd, struct stat *out)
{
	(void)ctx, (void)fd;
	memset(out, 0, sizeof(*out));
	return mock_type(int);
}

int mock_ftruncate(void *ctx, int fd, off_t len)
{
	(void)ctx, (void)fd, (void)len;
	return mock_type(int);
}

int mock_rmdir(void *ctx, const char *path)
{
	(void)ctx, (void)path;
	return mock_type(int);
}

/* A name ending in '/' is reported as a directory, without the slash. */
static int list_one(const char *entry,
		    int (*each)(void *arg, const char *name,
				unsigned char d_type),
		    void *arg)
{
	char name[256];
	size_t n = strlen(entry);

	assert_true(n > 0 && n < sizeof(name));
	memcpy(name, entry, n + 1);
	if (name[n - 1] == '/') {
		name[n - 1] = '\0';
		return each(arg, name, SYS_DT_DIR);
	}
	return each(arg, name, SYS_DT_REG);
}

int mock_list_dir(void *ctx, const char *path,
		  int (*each)(void *arg, const char *name,
			      unsigned char d_type),
		  void *arg)
{
	int rc = mock_type(int);
	const char *const *names;

	(void)ctx;
	check_expected_ptr(path);
	if (rc < 0)
		return rc;
	names = mock_ptr_type(const char *const *);
	for (; *names; names++) {
		int r = list_one(*names, each, arg);
		if (r < 0)
			return r;
	}
	return 0;
}

static const struct sys_net_ops mock_net_ops = {
	.socket = mock_socket,
	.bind = mock_bind,
	.listen = mock_listen,
	.accept = mock_accept,
	.connect = mock_connect,
	.recv = mock_recv,
	.send = mock_send,
	.splice = mock_splice,
	.sendfile = mock_sendfile,
	.pipe = mock_pipe,
	.pipe_write = mock_pipe_write,
	.pipe_read = mock_pipe_read,
	.shutdown = mock_shutdown,
	.close = mock_close,
	.poll = mock_poll,
	.setsockopt = mock_setsockopt,
	.getsockopt = mock_getsockopt,
	.getsockname = mock_getsockname,
	.set_nonblocking = mock_set_nonblocking,
	.resolve = mock_resolve,
	.epoll_create = mock_epoll_create,
	.epoll_ctl = mock_epoll_ctl,
	.epoll_wait = mock_epoll_wait,
};

static const struct sys_clock_ops mock_clock_ops = {
	.now_mono_ms = mock_now_mono_ms,
	.now_wall = mock_now_wall,
};

static const struct sys_fs_ops mock_fs_ops = {
	.open = mock_open,
	.read = mock_read,
	.pread = mock_pread,
	.write = mock_write,
	.fsync = mock_fsync,
	.close = mock_close,
	.rename = mock_rename,
	.unlink = mock_unlink,
	.mkdir = mock_mkdir,
	.stat = mock_stat,
	.fstat = mock_fstat,
	.ftruncate = mock_ftruncate,
	.rmdir = mock_rmdir,
	.list_dir = mock_list_dir,
};

static struct sys mock_sys = {
	.net = &mock_net_ops,
	.clock = &mock_clock_ops,
	.fs = &mock_fs_ops,
	.ctx = NULL,
};

struct sys *sys_mock(void)
{
	sent.len = 0;
	written.len = 0;
	n_closed = 0;
	n_sockopts = 0;
	trace_len = 0;
	trace[0] = '\0';
	n_sent_on = 0;
	poll_delay_ms = 0;
	memset(epoll_reg, 0, sizeof(epoll_reg));
	fake_mono_ms = 1000;
	fake_wall_sec = 1700000000; /* 2023-11-14T22:13:20Z */
	return &mock_sys;
}

const char *sys_mock_sent(size_t *len)
{
	*len = sent.len;
	return sent.bytes;
}

const char *sys_mock_written(size_t *len)
{
	*len = written.len;
	return written.bytes;
}

int sys_mock_is_closed(int fd)
{
	for (int i = 0; i < n_closed; i++)
		if (closed_fds[i] == fd)
			return 1;
	return 0;
}

int sys_mock_close_count(void)
{
	return n_closed;
}

void sys_mock_set_clock(int64_t mono_ms, time_t wall_sec)
{
	fake_mono_ms = mono_ms;
	fake_wall_sec = wall_sec;
}

void sys_mock_advance_ms(int64_t ms)
{
	fake_mono_ms += ms;
}

const char *sys_mock_trace(void)
{
	trace[trace_len < TRACE_MAX ? trace_len : TRACE_MAX - 1] = '\0';
	return trace;
}

int sys_mock_trace_has(const char *token)
{
	size_t n = strlen(token);
	const char *t = sys_mock_trace();

	while ((t = strstr(t, token)) != NULL) {
		if ((t == trace || t[-1] == ' ') && (t[n] == ' ' || !t[n]))
			return 1;
		t++;
	}
	return 0;
}

const char *sys_mock_sent_on(int fd, size_t *len)
{
	for (int i = 0; i < n_sent_on; i++)
		if (sent_on[i].fd == fd) {
			*len = sent_on[i].len;
			return sent_on[i].bytes;
		}
	*len = 0;
	return "";
}

void sys_mock_set_poll_delay_ms(int64_t ms)
{
	poll_delay_ms = ms;
}

struct sys_addr sys_mock_addr4(const char *ip, uint16_t port)
{
	struct sys_addr a;
	struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;

	memset(&a, 0, sizeof(a));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	a.len = sizeof(*in);
	return a;
}

struct sys_addr sys_mock_addr6(const char *ip, uint16_t port)
{
	struct sys_addr a;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;

	memset(&a, 0, sizeof(a));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	a.len = sizeof(*in6);
	return a;
}
