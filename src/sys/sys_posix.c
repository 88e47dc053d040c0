/*
 * The real operating system behind the sys vtables.
 *
 * Each function makes one system call, retries it on EINTR where that is
 * safe, and turns the -1/errno convention into a negative errno return.
 * Nothing here keeps state, so one `struct sys` serves every thread.
 */
#define _GNU_SOURCE /* splice(2), pipe2(2), accept4(2), sendfile(2), d_type */

#include "glassproxy/sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <unistd.h>

_Static_assert(SYS_DT_UNKNOWN == DT_UNKNOWN && SYS_DT_DIR == DT_DIR &&
		       SYS_DT_REG == DT_REG && SYS_DT_LNK == DT_LNK,
	       "SYS_DT_* must be Linux's DT_* so d_type passes through");
_Static_assert(SYS_SO_REUSEPORT == SO_REUSEPORT,
	       "SYS_SO_REUSEPORT must be this system's SO_REUSEPORT");

#define RETURN_ERRNO_IF_FAILED(rc) return (rc) < 0 ? -errno : (rc)

static int posix_socket(void *ctx, int domain, int type, int protocol)
{
	(void)ctx;
	int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
	RETURN_ERRNO_IF_FAILED(fd);
}

static int posix_bind(void *ctx, int fd, const struct sys_addr *addr)
{
	(void)ctx;
	int rc = bind(fd, (const struct sockaddr *)&addr->ss, addr->len);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_listen(void *ctx, int fd, int backlog)
{
	(void)ctx;
	int rc = listen(fd, backlog);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_accept(void *ctx, int fd, struct sys_addr *peer)
{
	struct sys_addr ignored;
	int rc;

	(void)ctx;
	if (!peer)
		peer = &ignored;
	do {
		peer->len = sizeof(peer->ss);
		rc = accept4(fd, (struct sockaddr *)&peer->ss, &peer->len,
			     SOCK_CLOEXEC);
	} while (rc < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_connect(void *ctx, int fd, const struct sys_addr *addr)
{
	(void)ctx;
	/*
	 * connect() interrupted by a signal keeps going in the background and
	 * must not be restarted (it would fail with EALREADY), so EINTR is
	 * reported as EINPROGRESS: the caller polls for completion either way.
	 */
	int rc = connect(fd, (const struct sockaddr *)&addr->ss, addr->len);
	if (rc < 0 && errno == EINTR)
		return -EINPROGRESS;
	RETURN_ERRNO_IF_FAILED(rc);
}

static ssize_t posix_recv(void *ctx, int fd, void *buf, size_t len, int flags)
{
	ssize_t n;

	(void)ctx;
	do
		n = recv(fd, buf, len, flags);
	while (n < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(n);
}

static ssize_t posix_send(void *ctx, int fd, const void *buf, size_t len,
			  int flags)
{
	ssize_t n;

	(void)ctx;
	do
		n = send(fd, buf, len, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(n);
}

static ssize_t posix_splice(void *ctx, int fd_in, int fd_out, size_t len,
			    unsigned int flags)
{
	ssize_t n;

	(void)ctx;
	do
		n = splice(fd_in, NULL, fd_out, NULL, len, flags);
	while (n < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(n);
}

static ssize_t posix_sendfile(void *ctx, int out_fd, int in_fd, off_t *offset,
			      size_t count)
{
	ssize_t n;

	(void)ctx;
	do
		n = sendfile(out_fd, in_fd, offset, count);
	while (n < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(n);
}

static int posix_pipe(void *ctx, int fds[2])
{
	(void)ctx;
	int rc = pipe2(fds, O_NONBLOCK | O_CLOEXEC);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_shutdown(void *ctx, int fd, int how)
{
	(void)ctx;
	int rc = shutdown(fd, how);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_close(void *ctx, int fd)
{
	(void)ctx;
	/* Never retry close(): on Linux the descriptor is gone even on EINTR. */
	int rc = close(fd);
	if (rc < 0 && errno == EINTR)
		return 0;
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_poll(void *ctx, struct pollfd *fds, nfds_t nfds,
		      int timeout_ms)
{
	(void)ctx;
	/*
	 * EINTR is passed back up rather than retried: restarting would
	 * restart the timeout too.  Callers loop on their own deadlines.
	 */
	int rc = poll(fds, nfds, timeout_ms);
	if (rc < 0 && errno == EINTR)
		return 0;
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_epoll_create(void *ctx)
{
	(void)ctx;
	int rc = epoll_create1(EPOLL_CLOEXEC);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_epoll_ctl(void *ctx, int epfd, int op, int fd,
			   struct epoll_event *ev)
{
	(void)ctx;
	int rc = epoll_ctl(epfd, op, fd, ev);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_epoll_wait(void *ctx, int epfd, struct epoll_event *events,
			    int max, int timeout_ms)
{
	(void)ctx;
	/* EINTR as a timeout, as posix_poll does: callers own deadlines. */
	int rc = epoll_wait(epfd, events, max, timeout_ms);
	if (rc < 0 && errno == EINTR)
		return 0;
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_setsockopt(void *ctx, int fd, int level, int name,
			    const void *val, socklen_t len)
{
	(void)ctx;
	int rc = setsockopt(fd, level, name, val, len);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_getsockopt(void *ctx, int fd, int level, int name, void *val,
			    socklen_t *len)
{
	(void)ctx;
	int rc = getsockopt(fd, level, name, val, len);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_getsockname(void *ctx, int fd, struct sys_addr *out)
{
	(void)ctx;
	out->len = sizeof(out->ss);
	int rc = getsockname(fd, (struct sockaddr *)&out->ss, &out->len);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_set_nonblocking(void *ctx, int fd, int on)
{
	int flags;

	(void)ctx;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -errno;
	flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, flags) < 0)
		return -errno;
	return 0;
}

static int posix_resolve(void *ctx, const char *host, uint16_t port,
			 struct sys_addr *out, size_t max)
{
	struct addrinfo hints, *list, *ai;
	char service[8];
	size_t n = 0;
	int rc;

	(void)ctx;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	snprintf(service, sizeof(service), "%u", (unsigned int)port);
	rc = getaddrinfo(host, service, &hints, &list);
	if (rc == EAI_ADDRFAMILY || rc == EAI_NODATA || rc == EAI_NONAME)
		return -ENOENT;
	if (rc == EAI_AGAIN)
		return -EAGAIN;
	if (rc == EAI_MEMORY)
		return -ENOMEM;
	if (rc == EAI_SYSTEM)
		return errno ? -errno : -EIO;
	if (rc != 0)
		return -EIO;
	for (ai = list; ai && n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[n].ss))
			continue;
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(list);
	return n > 0 ? (int)n : -ENOENT;
}

static int64_t posix_now_mono_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int posix_now_wall(void *ctx, struct timespec *out)
{
	(void)ctx;
	int rc = clock_gettime(CLOCK_REALTIME, out);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_open(void *ctx, const char *path, int flags, mode_t mode)
{
	int fd;

	(void)ctx;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(fd);
}

static ssize_t posix_read(void *ctx, int fd, void *buf, size_t len)
{
	ssize_t n;

	(void)ctx;
	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(n);
}

static ssize_t posix_pread(void *ctx, int fd, void *buf, size_t len,
			   off_t offset)
{
	ssize_t n;

	(void)ctx;
	do
		n = pread(fd, buf, len, offset);
	while (n < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(n);
}

static ssize_t posix_write(void *ctx, int fd, const void *buf, size_t len)
{
	ssize_t n;

	(void)ctx;
	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(n);
}

static int posix_fsync(void *ctx, int fd)
{
	(void)ctx;
	int rc = fsync(fd);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_rename(void *ctx, const char *from, const char *to)
{
	(void)ctx;
	int rc = rename(from, to);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_unlink(void *ctx, const char *path)
{
	(void)ctx;
	int rc = unlink(path);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_mkdir(void *ctx, const char *path, mode_t mode)
{
	(void)ctx;
	int rc = mkdir(path, mode);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_stat(void *ctx, const char *path, struct stat *out)
{
	(void)ctx;
	int rc = stat(path, out);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_fstat(void *ctx, int fd, struct stat *out)
{
	(void)ctx;
	int rc = fstat(fd, out);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_ftruncate(void *ctx, int fd, off_t len)
{
	int rc;

	(void)ctx;
	do
		rc = ftruncate(fd, len);
	while (rc < 0 && errno == EINTR);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_rmdir(void *ctx, const char *path)
{
	(void)ctx;
	int rc = rmdir(path);
	RETURN_ERRNO_IF_FAILED(rc);
}

static int posix_list_dir(void *ctx, const char *path,
			  int (*each)(void *arg, const char *name,
				      unsigned char d_type),
			  void *arg)
{
	struct dirent *d;
	DIR *dir;
	int rc = 0;

	(void)ctx;
	dir = opendir(path);
	if (!dir)
		return -errno;
	for (;;) {
		/* readdir signals its errors only through errno. */
		errno = 0;
		d = readdir(dir);
		if (!d) {
			rc = errno ? -errno : 0;
			break;
		}
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		rc = each(arg, d->d_name, d->d_type);
		if (rc < 0)
			break;
		rc = 0;
	}
	closedir(dir);
	return rc;
}

static const struct sys_net_ops posix_net_ops = {
	.socket = posix_socket,
	.bind = posix_bind,
	.listen = posix_listen,
	.accept = posix_accept,
	.connect = posix_connect,
	.recv = posix_recv,
	.send = posix_send,
	.splice = posix_splice,
	.sendfile = posix_sendfile,
	.pipe = posix_pipe,
	/* Pipes are read and written with the same calls as files. */
	.pipe_write = posix_write,
	.pipe_read = posix_read,
	.shutdown = posix_shutdown,
	.close = posix_close,
	.poll = posix_poll,
	.setsockopt = posix_setsockopt,
	.getsockopt = posix_getsockopt,
	.getsockname = posix_getsockname,
	.set_nonblocking = posix_set_nonblocking,
	.resolve = posix_resolve,
	.epoll_create = posix_epoll_create,
	.epoll_ctl = posix_epoll_ctl,
	.epoll_wait = posix_epoll_wait,
};

static const struct sys_clock_ops posix_clock_ops = {
	.now_mono_ms = posix_now_mono_ms,
	.now_wall = posix_now_wall,
};

static const struct sys_fs_ops posix_fs_ops = {
	.open = posix_open,
	.read = posix_read,
	.pread = posix_pread,
	.write = posix_write,
	.fsync = posix_fsync,
	.close = posix_close,
	.rename = posix_rename,
	.unlink = posix_unlink,
	.mkdir = posix_mkdir,
	.stat = posix_stat,
	.fstat = posix_fstat,
	.ftruncate = posix_ftruncate,
	.rmdir = posix_rmdir,
	.list_dir = posix_list_dir,
};

static struct sys posix_sys = {
	.net = &posix_net_ops,
	.clock = &posix_clock_ops,
	.fs = &posix_fs_ops,
	.ctx = NULL,
};

struct sys *sys_posix(void)
{
	return &posix_sys;
}

/* ---- signals ---- */

static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

int sys_signals_block(void)
{
	struct sigaction ignore;
	sigset_t set;
	int rc;

	memset(&ignore, 0, sizeof(ignore));
	ignore.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &ignore, NULL) < 0)
		return -errno;
	handled_signals(&set);
	rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
	return -rc;
}

int sys_signals_wait(void)
{
	sigset_t set;
	int sig = 0, rc;

	handled_signals(&set);
	rc = sigwait(&set, &sig);
	return rc ? -rc : sig;
}

int sys_signals_wake(pthread_t thread, int sig)
{
	return -pthread_kill(thread, sig);
}

long sys_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	/* "unlimited" is not a useful size for anything: cap it. */
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)1 << 30
		       ? 1L << 30
		       : (long)rl.rlim_cur;
}

int sys_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n >= 1 && n <= 4096 ? (int)n : 1;
}
