/*
 * Listening, accepting, connecting and moving bytes with deadlines.
 * Sockets stay blocking; every wait for the peer is a sys_poll with a
 * timeout, so a silent peer costs a timeout, never a thread forever.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/time.h>

#include "net_int.h"

#define MAX_ADDRS 8

int net_listen(struct sys *sys, const struct sys_addr *addr, int backlog,
	       unsigned flags)
{
	int one = 1, fd, rc;

	fd = sys_socket(sys, addr->ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	rc = sys_setsockopt(sys, fd, SOL_SOCKET, SO_REUSEADDR, &one,
			    sizeof(one));
	if (rc == 0 && (flags & NET_LISTEN_REUSEPORT))
		rc = sys_setsockopt(sys, fd, SOL_SOCKET, SYS_SO_REUSEPORT, &one,
				    sizeof(one));
	if (rc == 0 && addr->ss.ss_family == AF_INET6)
		/* "[::1]:8080" means IPv6 only, not also every IPv4 address. */
		rc = sys_setsockopt(sys, fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				    sizeof(one));
	if (rc == 0)
		rc = sys_bind(sys, fd, addr);
	if (rc == 0)
		rc = sys_listen(sys, fd, backlog);
	if (rc < 0) {
		sys_close(sys, fd);
		return rc;
	}
	return fd;
}

int net_accept(struct sys *sys, int listen_fd, struct sys_addr *peer)
{
	return sys_accept(sys, listen_fd, peer);
}

int net_resolve(struct sys *sys, const struct net_hosts *hosts,
		const char *host, uint16_t port, struct sys_addr *out,
		size_t max)
{
	int n;

	if (net_addr_from_literal(host, port, &out[0]) == 0)
		return 1;
	n = net_hosts_lookup(hosts, host, port, out, max);
	if (n > 0) {
		/* A fault sys ties these addresses to the name, as a resolve
		 * would, so host scopes match hosts-file names too; any other
		 * sys refuses with -EINVAL, which changes nothing. */
		sys_fault_learn(sys, host, out, (size_t)n);
		return n;
	}
	return sys_resolve(sys, host, port, out, max);
}

int net_connect_addr(struct sys *sys, const struct sys_addr *addr,
		     int timeout_ms)
{
	struct pollfd pfd;
	int fd, rc, err = 0;
	socklen_t len = sizeof(err);

	fd = sys_socket(sys, addr->ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	/* Non-blocking only while connecting, so the wait can time out. */
	rc = sys_set_nonblocking(sys, fd, 1);
	if (rc < 0)
		goto close_fd;
	rc = sys_connect(sys, fd, addr);
	if (rc == -EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = sys_poll(sys, &pfd, 1, timeout_ms);
		if (rc == 0) {
			rc = -ETIMEDOUT;
			goto close_fd;
		}
		if (rc < 0)
			goto close_fd;
		rc = sys_getsockopt(sys, fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (rc == 0 && err != 0)
			rc = -err;
	}
	if (rc < 0)
		goto close_fd;
	rc = sys_set_nonblocking(sys, fd, 0);
	if (rc < 0)
		goto close_fd;
	return fd;

close_fd:
	sys_close(sys, fd);
	return rc;
}

int net_connect_vetted(struct sys *sys, const struct net_hosts *hosts,
		       const char *host, uint16_t port, int timeout_ms,
		       net_vet_fn *vet, void *arg, struct sys_addr *connected)
{
	struct sys_addr addrs[MAX_ADDRS];
	int n, rc = -ENOENT;

	n = net_resolve(sys, hosts, host, port, addrs, MAX_ADDRS);
	if (n < 0)
		return n;
	/* All first, then connect: vetting as we go would let a name with
	 * one good address that refuses reach the next, blocked one. */
	for (int i = 0; vet && i < n; i++)
		if (!vet(arg, &addrs[i]))
			return -EACCES;
	for (int i = 0; i < n; i++) {
		rc = net_connect_addr(sys, &addrs[i], timeout_ms);
		if (rc >= 0) {
			if (connected)
				*connected = addrs[i];
			return rc;
		}
	}
	return rc;
}

int net_connect_host(struct sys *sys, const struct net_hosts *hosts,
		     const char *host, uint16_t port, int timeout_ms,
		     struct sys_addr *connected)
{
	return net_connect_vetted(sys, hosts, host, port, timeout_ms, NULL,
				  NULL, connected);
}

ssize_t net_recv(struct sys *sys, int fd, void *buf, size_t len, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int64_t deadline = sys_now_mono_ms(sys) + timeout_ms;

	if (timeout_ms >= 0) {
		for (;;) {
			int64_t left = deadline - sys_now_mono_ms(sys);
			int rc = sys_poll(sys, &pfd, 1,
					  left > 0 ? (int)left : 0);

			if (rc < 0)
				return rc;
			if (rc > 0)
				break;
			/* 0: timed out, or interrupted; the deadline decides. */
			if (left <= 0 || sys_now_mono_ms(sys) >= deadline)
				return -ETIMEDOUT;
		}
	}
	return sys_recv(sys, fd, buf, len, 0);
}

int net_set_send_timeout(struct sys *sys, int fd, int timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000,
			     .tv_usec = (timeout_ms % 1000) * 1000};

	return sys_setsockopt(sys, fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
			      sizeof(tv));
}

/* A send timeout (SO_SNDTIMEO) surfaces as EAGAIN: say what it is. */
static int send_all(struct sys *sys, int fd, const void *buf, size_t len,
		    int flags)
{
	int rc = sys_send_all_flags(sys, fd, buf, len, flags);

	return (rc == -EAGAIN || rc == -EWOULDBLOCK) ? -ETIMEDOUT : rc;
}

int net_send_all(struct sys *sys, int fd, const void *buf, size_t len)
{
	return send_all(sys, fd, buf, len, 0);
}

int net_send_all_more(struct sys *sys, int fd, const void *buf, size_t len)
{
	return send_all(sys, fd, buf, len, MSG_MORE);
}

int net_set_nodelay(struct sys *sys, int fd)
{
	int one = 1;

	return sys_setsockopt(sys, fd, IPPROTO_TCP, TCP_NODELAY, &one,
			      sizeof(one));
}
