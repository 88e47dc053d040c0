/*
 * A CMocka implementation of the sys vtables for unit tests.
 *
 * Contract: each operation takes its result from the queue CMocka keeps for
 * that mock function (will_return), in call order, so a test scripts the OS:
 * "recv returns 3 bytes, then -EINTR, then 0".  A call with nothing queued
 * fails the test, so an unexpected OS call never passes unnoticed.
 *
 *  - Plain operations (socket, bind, listen, connect, shutdown, setsockopt,
 *    getsockopt, set_nonblocking, fsync, rename, unlink, mkdir, stat, fstat,
 *    file open) return the queued int.
 *  - recv/read/splice return the queued count; a positive count is followed
 *    by a pointer to that many bytes (recv/read copy them to the caller).
 *    Use will_recv(), will_read(), will_fail().
 *  - send/write return the queued count and append that many bytes of what
 *    the caller passed to a capture buffer: sys_mock_sent() / sys_mock_written().
 *    SYS_MOCK_ALL accepts the whole buffer.
 *  - poll returns the queued count; when positive, one queued revents value
 *    follows for every pollfd passed (will_poll2() for the common two-fd case).
 *  - accept returns the queued descriptor and reports peer 127.0.0.1:40000.
 *  - resolve returns the queued count, then a pointer to that many addresses.
 *  - pipe returns the queued int; on 0 two queued descriptors follow.
 *  - sendfile and pipe_write return the queued count (SYS_MOCK_ALL: all
 *    of it); sendfile advances *offset by it.  pipe_read and pread take a
 *    count and bytes like read.  ftruncate and rmdir return the queued int.
 *  - list_dir checks the path (expect_string(mock_list_dir, path, ...)) and
 *    returns the queued int; on 0 a NULL-terminated array of names follows
 *    (will_list_dir()), each reported with SYS_DT_REG, or SYS_DT_DIR and
 *    without the slash when it ends in '/'.
 *  - close (socket or file) is never queued: it returns 0 and is recorded,
 *    so sys_mock_is_closed(fd) can check that a code path released it.
 *  - epoll_create returns the queued int; epoll_ctl is never queued (it
 *    returns 0, is traced, and remembers each descriptor's event data);
 *    epoll_wait returns the queued count, then takes a descriptor and its
 *    events for each (will_epoll_event()), reporting the data epoll_ctl
 *    registered for that descriptor.  A timeout advances the clock as poll.
 *  - The clock is a fake one the test sets and advances; every poll also
 *    advances it by the timeout the caller asked for when it returns 0, so
 *    timeouts happen in no real time.
 */
#ifndef GLASSPROXY_SYS_MOCK_H
#define GLASSPROXY_SYS_MOCK_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "glassproxy/sys.h"

#define SYS_MOCK_ALL ((ssize_t)1 << 40)

/* Resets captures, closed descriptors and the fake clock. */
struct sys *sys_mock(void);

const char *sys_mock_sent(size_t *len);
const char *sys_mock_written(size_t *len);
int sys_mock_is_closed(int fd);
int sys_mock_close_count(void);
/* How many setsockopt calls set this option since sys_mock(). */
int sys_mock_sockopt_count(int level, int name);
void sys_mock_set_clock(int64_t mono_ms, time_t wall_sec);
void sys_mock_advance_ms(int64_t ms);

/* A socket address from a literal; the test fails if ip is not one. */
struct sys_addr sys_mock_addr4(const char *ip, uint16_t port);
struct sys_addr sys_mock_addr6(const char *ip, uint16_t port);

/*
 * Added for relays that talk to several descriptors at once (tunnel):
 *
 *  - sys_mock_trace() is a transcript of the descriptor-level network calls
 *    made since sys_mock(), one token per call separated by spaces, e.g.
 *    "set_nonblocking(3,1)=0 poll(3:i,4:o;300000)=1 recv(3)=5 send(4)=5
 *    recv(3)=-EAGAIN splice(3>11)=-EINVAL shutdown(4,WR)=0 close(11)".
 *    Traced: recv, send, splice (in>out), sendfile (out<in), pipe_read,
 *    pipe_write, pipe (=rc[rd,wr]), shutdown (RD/WR/RDWR), close, poll
 *    (fd:events per pollfd, i = POLLIN, o = POLLOUT, - = none; then the
 *    timeout) and set_nonblocking.
 *    Errors print as -ENAME for common codes.  A test can check exactly which
 *    descriptor each call was made on, and in what order.
 *  - sys_mock_sent_on(fd) is what send() accepted on that descriptor alone
 *    (sys_mock_sent() is everything, all descriptors concatenated): the
 *    first 64 KiB on each of the first 8 descriptors.  The trace keeps its
 *    first 64 KiB.
 *  - sys_mock_set_poll_delay_ms(ms) makes every poll that returns a ready
 *    descriptor also advance the fake clock by ms, as if it had waited that
 *    long; the default 0 keeps the behaviour described above.
 */
const char *sys_mock_trace(void);
int sys_mock_trace_has(const char *token);
const char *sys_mock_sent_on(int fd, size_t *len);
void sys_mock_set_poll_delay_ms(int64_t ms);

#define will_fail(fn, err) will_return(fn, (err))
#define will_recv(data, n)                                                     \
	do {                                                                   \
		will_return(mock_recv, (ssize_t)(n));                          \
		if ((ssize_t)(n) > 0)                                          \
			will_return(mock_recv, (data));                        \
	} while (0)
#define will_recv_str(s) will_recv((s), strlen(s))
#define will_read(data, n)                                                     \
	do {                                                                   \
		will_return(mock_read, (ssize_t)(n));                          \
		if ((ssize_t)(n) > 0)                                          \
			will_return(mock_read, (data));                        \
	} while (0)
#define will_pread(data, n)                                                    \
	do {                                                                   \
		will_return(mock_pread, (ssize_t)(n));                         \
		if ((ssize_t)(n) > 0)                                          \
			will_return(mock_pread, (data));                       \
	} while (0)
#define will_pipe_read(data, n)                                                \
	do {                                                                   \
		will_return(mock_pipe_read, (ssize_t)(n));                     \
		if ((ssize_t)(n) > 0)                                          \
			will_return(mock_pipe_read, (data));                   \
	} while (0)
#define will_list_dir(names)                                                   \
	do {                                                                   \
		will_return(mock_list_dir, 0);                                 \
		will_return(mock_list_dir, (names));                           \
	} while (0)
#define will_sendfile(n)   will_return(mock_sendfile, (ssize_t)(n))
#define will_pipe_write(n) will_return(mock_pipe_write, (ssize_t)(n))
#define will_send(n)	   will_return(mock_send, (ssize_t)(n))
#define will_write(n)	   will_return(mock_write, (ssize_t)(n))
#define will_poll2(rc, revents0, revents1)                                     \
	do {                                                                   \
		will_return(mock_poll, (rc));                                  \
		if ((rc) > 0) {                                                \
			will_return(mock_poll, (revents0));                    \
			will_return(mock_poll, (revents1));                    \
		}                                                              \
	} while (0)
#define will_epoll_event(fd, events)                                           \
	do {                                                                   \
		will_return(mock_epoll_wait, (fd));                            \
		will_return(mock_epoll_wait, (events));                        \
	} while (0)
#define will_poll1(rc, revents0)                                               \
	do {                                                                   \
		will_return(mock_poll, (rc));                                  \
		if ((rc) > 0)                                                  \
			will_return(mock_poll, (revents0));                    \
	} while (0)

#endif
