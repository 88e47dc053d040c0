/*
 * The thin wrappers around the sys vtables.  Each is a real (non-inline)
 * function so that `break sys_recv` in gdb stops at every receive, whichever
 * implementation sits underneath, as SQLite's os.c does around its VFS.
 */
#include "glassproxy/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#define CALL(table, verb, ...)                                                 \
	((s)->table->verb ? (s)->table->verb((s)->ctx, __VA_ARGS__) : -ENOSYS)

int sys_socket(struct sys *s, int domain, int type, int protocol)
{
	return CALL(net, socket, domain, type, protocol);
}

int sys_bind(struct sys *s, int fd, const struct sys_addr *addr)
{
	return CALL(net, bind, fd, addr);
}

int sys_listen(struct sys *s, int fd, int backlog)
{
	return CALL(net, listen, fd, backlog);
}

int sys_accept(struct sys *s, int fd, struct sys_addr *peer)
{
	return CALL(net, accept, fd, peer);
}

int sys_connect(struct sys *s, int fd, const struct sys_addr *addr)
{
	return CALL(net, connect, fd, addr);
}

ssize_t sys_recv(struct sys *s, int fd, void *buf, size_t len, int flags)
{
	return CALL(net, recv, fd, buf, len, flags);
}

ssize_t sys_send(struct sys *s, int fd, const void *buf, size_t len, int flags)
{
	return CALL(net, send, fd, buf, len, flags);
}

ssize_t sys_splice(struct sys *s, int fd_in, int fd_out, size_t len,
		   unsigned int flags)
{
	return CALL(net, splice, fd_in, fd_out, len, flags);
}

ssize_t sys_sendfile(struct sys *s, int out_fd, int in_fd, off_t *offset,
		     size_t count)
{
	return CALL(net, sendfile, out_fd, in_fd, offset, count);
}

int sys_pipe(struct sys *s, int fds[2])
{
	return CALL(net, pipe, fds);
}

ssize_t sys_pipe_write(struct sys *s, int fd, const void *buf, size_t len)
{
	return CALL(net, pipe_write, fd, buf, len);
}

ssize_t sys_pipe_read(struct sys *s, int fd, void *buf, size_t len)
{
	return CALL(net, pipe_read, fd, buf, len);
}

int sys_shutdown(struct sys *s, int fd, int how)
{
	return CALL(net, shutdown, fd, how);
}

int sys_close(struct sys *s, int fd)
{
	return CALL(net, close, fd);
}

int sys_poll(struct sys *s, struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
	return CALL(net, poll, fds, nfds, timeout_ms);
}

int sys_epoll_create(struct sys *s)
{
	return s->net->epoll_create ? s->net->epoll_create(s->ctx) : -ENOSYS;
}

int sys_epoll_ctl(struct sys *s, int epfd, int op, int fd,
		  struct epoll_event *ev)
{
	return CALL(net, epoll_ctl, epfd, op, fd, ev);
}

int sys_epoll_wait(struct sys *s, int epfd, struct epoll_event *events, int max,
		   int timeout_ms)
{
	return CALL(net, epoll_wait, epfd, events, max, timeout_ms);
}

int sys_setsockopt(struct sys *s, int fd, int level, int name, const void *val,
		   socklen_t len)
{
	return CALL(net, setsockopt, fd, level, name, val, len);
}

int sys_getsockopt(struct sys *s, int fd, int level, int name, void *val,
		   socklen_t *len)
{
	return CALL(net, getsockopt, fd, level, name, val, len);
}

int sys_getsockname(struct sys *s, int fd, struct sys_addr *out)
{
	return CALL(net, getsockname, fd, out);
}

int sys_set_nonblocking(struct sys *s, int fd, int on)
{
	return CALL(net, set_nonblocking, fd, on);
}

int sys_resolve(struct sys *s, const char *host, uint16_t port,
		struct sys_addr *out, size_t max)
{
	return CALL(net, resolve, host, port, out, max);
}

int64_t sys_now_mono_ms(struct sys *s)
{
	return s->clock->now_mono_ms ? s->clock->now_mono_ms(s->ctx) : 0;
}

int sys_now_wall(struct sys *s, struct timespec *out)
{
	return CALL(clock, now_wall, out);
}

int sys_open(struct sys *s, const char *path, int flags, mode_t mode)
{
	return CALL(fs, open, path, flags, mode);
}

ssize_t sys_read(struct sys *s, int fd, void *buf, size_t len)
{
	return CALL(fs, read, fd, buf, len);
}

ssize_t sys_pread(struct sys *s, int fd, void *buf, size_t len, off_t offset)
{
	return CALL(fs, pread, fd, buf, len, offset);
}

ssize_t sys_write(struct sys *s, int fd, const void *buf, size_t len)
{
	return CALL(fs, write, fd, buf, len);
}

int sys_fsync(struct sys *s, int fd)
{
	return CALL(fs, fsync, fd);
}

int sys_file_close(struct sys *s, int fd)
{
	return CALL(fs, close, fd);
}

int sys_rename(struct sys *s, const char *from, const char *to)
{
	return CALL(fs, rename, from, to);
}

int sys_unlink(struct sys *s, const char *path)
{
	return CALL(fs, unlink, path);
}

int sys_mkdir(struct sys *s, const char *path, mode_t mode)
{
	return CALL(fs, mkdir, path, mode);
}

int sys_stat(struct sys *s, const char *path, struct stat *out)
{
	return CALL(fs, stat, path, out);
}

int sys_fstat(struct sys *s, int fd, struct stat *out)
{
	return CALL(fs, fstat, fd, out);
}

int sys_ftruncate(struct sys *s, int fd, off_t len)
{
	return CALL(fs, ftruncate, fd, len);
}

int sys_rmdir(struct sys *s, const char *path)
{
	return CALL(fs, rmdir, path);
}

int sys_list_dir(struct sys *s, const char *path,
		 int (*each)(void *arg, const char *name, unsigned char d_type),
		 void *arg)
{
	return CALL(fs, list_dir, path, each, arg);
}

/* ---- conveniences ---- */

int sys_write_all(struct sys *s, int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = sys_write(s, fd, p, len);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO; /* a write that makes no progress */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sys_send_all(struct sys *s, int fd, const void *buf, size_t len)
{
	return sys_send_all_flags(s, fd, buf, len, 0);
}

int sys_send_all_flags(struct sys *s, int fd, const void *buf, size_t len,
		       int flags)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = sys_send(s, fd, p, len, MSG_NOSIGNAL | flags);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int sys_read_file(struct sys *s, const char *path, size_t max, char **out,
		  size_t *out_len)
{
	size_t cap = 4096, len = 0;
	char *buf;
	int fd, rc;

	fd = sys_open(s, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	buf = malloc(cap + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto close_fd;
	}
	for (;;) {
		ssize_t n;
		if (len == cap) {
			char *bigger;
			if (cap > max) {
				rc = -EFBIG;
				goto free_buf;
			}
			cap *= 2;
			bigger = realloc(buf, cap + 1);
			if (!bigger) {
				rc = -ENOMEM;
				goto free_buf;
			}
			buf = bigger;
		}
		n = sys_read(s, fd, buf + len, cap - len);
		if (n < 0) {
			rc = (int)n;
			goto free_buf;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		rc = -EFBIG;
		goto free_buf;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	sys_file_close(s, fd);
	return 0;

free_buf:
	free(buf);
close_fd:
	sys_file_close(s, fd);
	return rc;
}
