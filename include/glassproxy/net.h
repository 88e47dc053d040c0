/*
 * net: TCP connections for the proxy, built only on sys_net.
 *
 * Contract: listening sockets, accepting, connecting to an origin by name
 * with a timeout (hosts file first, then the system resolver, every address
 * tried in turn), receiving and sending with deadlines, and formatting and
 * parsing socket addresses.  Sockets stay in blocking mode; every wait is a
 * sys_poll with a timeout, so no call can hang forever.
 *
 * Errors are negative errno values with these meanings callers rely on:
 *   -ENOENT        the name does not resolve (hosts file or resolver)
 *   -EAGAIN        the resolver failed temporarily
 *   -ECONNREFUSED  every address refused the connection
 *   -EACCES        the caller's vet callback refused a resolved address
 *   -ETIMEDOUT     the connect or the wait for data took too long
 *   -ECONNRESET, -EPIPE  the peer went away
 */
#ifndef GLASSPROXY_NET_H
#define GLASSPROXY_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "glassproxy/sys.h"

/* "[ffff:...]:65535" plus NUL */
#define NET_ADDR_TEXT_MAX 64

/* A parsed hosts file (the /etc/hosts format); immutable once built. */
struct net_hosts;

/*
 * Parse hosts-file text: "address name [alias...]" lines, '#' comments.
 * Lines whose address is not an IP literal are skipped and counted in
 * *skipped (may be NULL).  Returns 0 or -ENOMEM; *out may hold no entries.
 */
int net_hosts_parse(const char *text, size_t len, struct net_hosts **out,
		    unsigned *skipped);
void net_hosts_free(struct net_hosts *hosts);
/* The addresses a name has in the hosts file (case-insensitive); 0 if none. */
int net_hosts_lookup(const struct net_hosts *hosts, const char *name,
		     uint16_t port, struct sys_addr *out, size_t max);

/*
 * Parse "ADDR:PORT" where ADDR is an IPv4 literal or "[IPv6]"; port 0..65535.
 * Returns 0 or -EINVAL.
 */
int net_parse_addr(const char *text, struct sys_addr *out);
/* "127.0.0.1:8080" or "[::1]:8080"; returns the length or -ENOSPC. */
int net_format_addr(const struct sys_addr *addr, char *dst, size_t cap);
/* Only the address: "127.0.0.1", "::1". */
int net_format_ip(const struct sys_addr *addr, char *dst, size_t cap);
/* The port of an address, in host byte order. */
uint16_t net_addr_port(const struct sys_addr *addr);

/*
 * A listening socket on addr with SO_REUSEADDR; returns the fd.  flags:
 * NET_LISTEN_REUSEPORT adds SO_REUSEPORT, so that several processes can
 * listen on one address and the kernel spreads connections over them.
 */
#define NET_LISTEN_REUSEPORT 0x1u
int net_listen(struct sys *sys, const struct sys_addr *addr, int backlog,
	       unsigned flags);
/* Accept one connection; returns the fd and fills *peer. */
int net_accept(struct sys *sys, int listen_fd, struct sys_addr *peer);

/*
 * Resolve host (a name or an IP literal) for port: the hosts file first
 * (hosts may be NULL), then sys_resolve.  Returns the address count.
 */
int net_resolve(struct sys *sys, const struct net_hosts *hosts,
		const char *host, uint16_t port, struct sys_addr *out,
		size_t max);

/*
 * Connect to one address, waiting at most timeout_ms.  Returns the
 * connected (blocking) socket or a negative errno.
 */
int net_connect_addr(struct sys *sys, const struct sys_addr *addr,
		     int timeout_ms);

/*
 * Resolve host and connect to its addresses in turn until one answers,
 * within timeout_ms for each.  *connected (may be NULL) receives the
 * address that worked.  Returns the socket or the error of the last try.
 */
int net_connect_host(struct sys *sys, const struct net_hosts *hosts,
		     const char *host, uint16_t port, int timeout_ms,
		     struct sys_addr *connected);

/*
 * May the proxy connect to this resolved address?  Given every address a
 * name resolved to (hosts file or resolver), before any connection is
 * made.  net knows nothing of the rules: the caller's policy (the proxy:
 * filter_check_addr) lives behind arg.
 */
typedef bool net_vet_fn(void *arg, const struct sys_addr *addr);

/*
 * net_connect_host with a vet: host is resolved, vet (may be NULL: vet
 * nothing) is asked about every address first, and only if it accepts all
 * of them are they tried in turn.  One refusal refuses the name, as
 * Squid's dst ACLs match a name when any of its addresses matches: a name
 * that also points into a blocked network cannot be used to reach it by
 * making the other addresses fail.  Then -EACCES, with no socket opened;
 * arg is where the callback keeps which address it refused and why.
 */
int net_connect_vetted(struct sys *sys, const struct net_hosts *hosts,
		       const char *host, uint16_t port, int timeout_ms,
		       net_vet_fn *vet, void *arg, struct sys_addr *connected);

/*
 * Wait until fd is readable (or timeout_ms passes), then receive.  Returns
 * the byte count, 0 at end of stream, -ETIMEDOUT, or another error.  A
 * negative timeout waits forever.
 */
ssize_t net_recv(struct sys *sys, int fd, void *buf, size_t len,
		 int timeout_ms);

/*
 * Bound how long one send may block (SO_SNDTIMEO): a peer that stops
 * reading then costs a -ETIMEDOUT, not a thread forever.
 */
int net_set_send_timeout(struct sys *sys, int fd, int timeout_ms);

/* Send all of buf; a send that times out gives -ETIMEDOUT. */
int net_send_all(struct sys *sys, int fd, const void *buf, size_t len);
/*
 * net_send_all, telling the kernel that more follows at once (MSG_MORE):
 * the bytes wait in the socket for the next send and leave with it, in
 * one segment when they fit.  Only for a send certain to follow without
 * waiting on anything: otherwise the bytes wait with it.
 */
int net_send_all_more(struct sys *sys, int fd, const void *buf, size_t len);

/* Enable TCP_NODELAY (best effort: errors are ignored and returned). */
int net_set_nodelay(struct sys *sys, int fd);

/* ---- the upstream connection pool ---- */

/*
 * Idle connections to origins (or a parent proxy), kept for reuse and keyed
 * by a string such as "http://example.com:80".  Shared by every thread; a
 * connection is in the pool only while idle, and a thread that takes one
 * owns it until it puts it back or closes it.  At most max_idle connections
 * wait in the pool (the oldest is closed to make room), and none longer
 * than idle_timeout_ms.
 */
struct net_pool;

#define NET_POOL_KEY_MAX 300

int net_pool_new(struct sys *sys, size_t max_idle, int idle_timeout_ms,
		 struct net_pool **out);
/* Closes every idle connection. */
void net_pool_free(struct net_pool *pool);

/*
 * An idle connection for key, or -ENOENT.  Connections that timed out, or
 * that became readable while idle (the peer closed them, or sent stray
 * bytes that would reach the next client), are closed on the way rather
 * than handed out: each candidate is checked with a zero-timeout poll.
 */
int net_pool_take(struct net_pool *pool, const char *key);

/*
 * Close every idle connection that has timed out or become readable (one
 * zero-timeout poll over all of them) and return how many were closed.
 * For a periodic caller (the server's housekeeping), so dead connections
 * do not hold descriptors and pool slots until their timeout.
 */
size_t net_pool_sweep(struct net_pool *pool);

/* Park a connection whose last response ended cleanly. */
void net_pool_put(struct net_pool *pool, const char *key, int fd);

/* How many connections wait in the pool now. */
size_t net_pool_idle(struct net_pool *pool);

/*
 * Close every idle connection (the hosts file changed: connections made
 * to the old addresses must not be reused).  Connections taken out by a
 * thread are not affected.
 */
void net_pool_flush(struct net_pool *pool);

/*
 * New bounds (a reload): at most max_idle idle connections (the oldest
 * beyond it are closed now), none idle longer than idle_timeout_ms.
 * 0 or -ENOMEM (the old bounds stay).
 */
int net_pool_set_limits(struct net_pool *pool, size_t max_idle,
			int idle_timeout_ms);

#endif
