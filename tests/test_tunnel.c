/*
 * Unit tests of the tunnel relay.
 *
 * The first part drives tunnel_relay() through the mock sys: each test
 * scripts, in call order, what the kernel answers (poll revents for the
 * client socket 3 and the origin socket 4, recv/send/splice results) and then
 * checks the transcript of calls (sys_mock_trace) so that every descriptor a
 * call went to, and every poll's events and timeout, are pinned down.
 * Pipes are 10/11 (client->origin, read/write end) and 12/13 (origin->client).
 *
 * The second part runs the relay on real sockets (socketpairs, and TCP on
 * loopback for splice and resets) with threads at both ends, to prove that
 * both paths are byte-exact on a real kernel and leak no descriptor.  Those
 * tests call libc directly: only the module under test must go through sys.
 */
#include "sys_mock.h"

#include "glassproxy/tunnel.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define C 3 /* client socket */
#define O 4 /* origin socket */

#define will_splice(n)	  will_return(mock_splice, (ssize_t)(n))
#define will_shutdown(rc) will_return(mock_shutdown, (rc))

static const struct tunnel_opts copy_opts = {
	.idle_timeout_ms = 300000,
	.use_splice = false,
	.buffer_size = 16384,
};

static const struct tunnel_opts splice_opts = {
	.idle_timeout_ms = 300000,
	.use_splice = true,
	.buffer_size = 4096, /* not used by splice */
};

/* The relay makes both sockets non-blocking on entry ... */
static void will_enter(void)
{
	will_return(mock_set_nonblocking, 0);
	will_return(mock_set_nonblocking, 0);
}

/* ... and blocking again on the way out. */
static void will_leave(void)
{
	will_return(mock_set_nonblocking, 0);
	will_return(mock_set_nonblocking, 0);
}

static void will_pipes(void)
{
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 10);
	will_return(mock_pipe, 11);
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 12);
	will_return(mock_pipe, 13);
}

/* After an error or a timeout both sockets are shut both ways. */
static void will_abort(void)
{
	will_shutdown(0);
	will_shutdown(0);
}

static void assert_sent_on(int fd, const char *want)
{
	size_t len;
	const char *got = sys_mock_sent_on(fd, &len);

	assert_int_equal(len, strlen(want));
	assert_memory_equal(got, want, len);
}

static void assert_pipes_closed(void)
{
	for (int fd = 10; fd <= 13; fd++)
		assert_true(sys_mock_is_closed(fd));
	assert_int_equal(sys_mock_close_count(), 4);
}

/* ---- copy path: the basic conversation ---- */

static void test_copy_relays_both_ways_then_both_close(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLIN, 0);
	will_recv_str("hello");
	will_send(SYS_MOCK_ALL);
	will_fail(mock_recv, -EAGAIN);
	will_poll2(1, 0, POLLIN);
	will_recv_str("world!");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, POLLIN, 0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st), 0);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"poll(3:i,4:i;300000)=1 recv(3)=5 send(4)=5 recv(3)=-EAGAIN "
		"poll(3:i,4:i;300000)=1 recv(4)=6 send(3)=6 recv(4)=0 "
		"shutdown(3,WR)=0 "
		"poll(3:i,-1:-;300000)=1 recv(3)=0 shutdown(4,WR)=0 "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_sent_on(O, "hello");
	assert_sent_on(C, "world!");
	assert_int_equal(st.client_to_origin, 5);
	assert_int_equal(st.origin_to_client, 6);
	assert_int_equal(st.end, TUNNEL_END_CLOSED);
	assert_int_equal(st.error, 0);
	assert_int_equal(st.duration_ms, 0);
	assert_false(st.spliced);
	assert_int_equal(sys_mock_close_count(), 0);
}

/* ---- early data ---- */

static void test_early_data_reaches_origin_before_anything(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_send(SYS_MOCK_ALL); /* the early data, before any poll or recv */
	will_poll2(1, POLLIN, 0);
	will_recv_str("more");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, 0, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(
		tunnel_relay(sys, C, O, "\x16\x03\x01TLS", 6, &copy_opts, &st),
		0);
	assert_non_null(strstr(sys_mock_trace(),
			       "set_nonblocking(4,1)=0 send(4)=6 poll("));
	assert_sent_on(O, "\x16\x03\x01TLSmore");
	assert_int_equal(st.client_to_origin, 10);
	assert_int_equal(st.origin_to_client, 0);
}

/*
 * Partial writes, EINTR and EAGAIN on the early data: while the half holds
 * bytes it asks for POLLOUT on the origin and not for POLLIN on the client.
 */
static void test_early_data_partial_writes_wait_for_pollout(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_send(3);
	will_send(-EINTR);
	will_send(4);
	will_send(-EAGAIN);
	will_poll2(1, 0, POLLOUT);
	will_send(SYS_MOCK_ALL);
	will_poll2(2, POLLIN, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(
		tunnel_relay(sys, C, O, "0123456789", 10, &copy_opts, &st), 0);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"send(4)=3 send(4)=-EINTR send(4)=4 send(4)=-EAGAIN "
		"poll(-1:-,4:io;300000)=1 send(4)=3 "
		"poll(3:i,4:i;300000)=2 recv(3)=0 shutdown(4,WR)=0 "
		"recv(4)=0 shutdown(3,WR)=0 "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_sent_on(O, "0123456789");
	assert_int_equal(st.client_to_origin, 10);
}

/* ---- partial writes, EINTR, EAGAIN on the relay proper ---- */

static void test_partial_send_to_client_then_pollout(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, 0, POLLIN);
	will_fail(mock_recv, -EINTR);
	will_recv_str("abcdefgh");
	will_send(5);
	will_send(-EAGAIN);
	/* origin->client holds 3 bytes: POLLOUT on 3, no POLLIN on 4 */
	will_poll2(1, POLLOUT, 0);
	will_send(-EINTR);
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, POLLIN, 0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st), 0);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"poll(3:i,4:i;300000)=1 recv(4)=-EINTR recv(4)=8 send(3)=5 "
		"send(3)=-EAGAIN poll(3:io,-1:-;300000)=1 send(3)=-EINTR "
		"send(3)=3 recv(4)=0 shutdown(3,WR)=0 "
		"poll(3:i,-1:-;300000)=1 recv(3)=0 shutdown(4,WR)=0 "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_sent_on(C, "abcdefgh");
	assert_int_equal(st.origin_to_client, 8);
}

/* A spurious wake-up (POLLIN, then EAGAIN) just polls again. */
static void test_spurious_wakeup_polls_again(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_enter();
	will_poll2(1, POLLIN, 0);
	will_fail(mock_recv, -EAGAIN);
	will_poll2(2, POLLIN, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, NULL), 0);
	assert_non_null(strstr(sys_mock_trace(),
			       "recv(3)=-EAGAIN poll(3:i,4:i;300000)=2"));
}

/* A poll interrupted by a signal is simply repeated. */
static void test_poll_eintr_is_repeated(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_enter();
	will_return(mock_poll, -EINTR);
	will_poll2(2, POLLIN, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, NULL), 0);
}

/*
 * A direction that is always ready gets a turn of 16 transfers, then the
 * loop polls with a zero timeout so that the other direction gets its turn.
 */
static void test_busy_direction_yields_after_its_turn(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLIN, 0);
	for (int i = 0; i < 8; i++) {
		will_recv_str("x");
		will_send(SYS_MOCK_ALL);
	}
	will_poll2(1, 0, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st), 0);
	assert_non_null(strstr(sys_mock_trace(),
			       "send(4)=1 poll(-1:-,4:i;0)=1 recv(3)=0"));
	assert_int_equal(st.client_to_origin, 8);
}

/* ---- half-close ---- */

/*
 * The client stops sending first: the origin gets its FIN (shutdown WR on
 * 4) and keeps sending for a while; then it stops too.
 */
static void test_half_close_client_first(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLIN, 0);
	will_recv_str("GET");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, 0, POLLIN);
	will_recv_str("part1");
	will_send(SYS_MOCK_ALL);
	will_fail(mock_recv, -EAGAIN);
	will_poll2(1, 0, POLLIN);
	will_recv_str("part2");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st), 0);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"poll(3:i,4:i;300000)=1 recv(3)=3 send(4)=3 recv(3)=0 "
		"shutdown(4,WR)=0 "
		"poll(-1:-,4:i;300000)=1 recv(4)=5 send(3)=5 recv(4)=-EAGAIN "
		"poll(-1:-,4:i;300000)=1 recv(4)=5 send(3)=5 recv(4)=0 "
		"shutdown(3,WR)=0 "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_sent_on(C, "part1part2");
	assert_int_equal(st.end, TUNNEL_END_CLOSED);
}

/* The origin stops first; the client keeps sending, then stops. */
static void test_half_close_origin_first(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, 0, POLLIN);
	will_recv_str("bye");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, POLLIN, 0);
	will_recv_str("late");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st), 0);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"poll(3:i,4:i;300000)=1 recv(4)=3 send(3)=3 recv(4)=0 "
		"shutdown(3,WR)=0 "
		"poll(3:i,-1:-;300000)=1 recv(3)=4 send(4)=4 recv(3)=0 "
		"shutdown(4,WR)=0 "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_sent_on(O, "late");
	assert_int_equal(st.client_to_origin, 4);
	assert_int_equal(st.origin_to_client, 3);
}

/* Bytes still held are delivered before the FIN is passed on. */
static void test_half_close_delivers_pending_before_shutdown(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_enter();
	will_send(-EAGAIN); /* early data, origin not writable yet */
	will_poll2(1, 0, POLLOUT);
	will_send(SYS_MOCK_ALL);
	will_poll2(2, POLLIN | POLLHUP, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, "abc", 3, &copy_opts, NULL),
			 0);
	assert_non_null(strstr(sys_mock_trace(),
			       "send(4)=3 poll(3:i,4:i;300000)=2 recv(3)=0 "
			       "shutdown(4,WR)=0"));
}

/* POLLHUP without POLLIN still wakes the reader, which then sees EOF. */
static void test_pollhup_reads_end_of_stream(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLHUP, 0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, 0, POLLHUP);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st), 0);
	assert_true(sys_mock_trace_has("shutdown(4,WR)=0"));
	assert_true(sys_mock_trace_has("shutdown(3,WR)=0"));
	assert_int_equal(st.end, TUNNEL_END_CLOSED);
}

/* The other side is already gone entirely: nobody to tell, not an error. */
static void test_shutdown_enotconn_is_not_an_error(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(2, POLLIN, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(-ENOTCONN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st), 0);
	assert_int_equal(st.end, TUNNEL_END_CLOSED);
}

static void test_shutdown_failure_ends_tunnel(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLIN, 0);
	will_recv(NULL, 0);
	will_shutdown(-EIO);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -EIO);
	assert_int_equal(st.end, TUNNEL_END_ORIGIN_RESET);
	assert_int_equal(st.error, -EIO);
}

/* ---- resets and errors ---- */

static void test_client_reset_ends_both_directions(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLIN, 0);
	will_recv_str("abc");
	will_send(SYS_MOCK_ALL);
	will_fail(mock_recv, -EAGAIN);
	will_poll2(1, POLLIN | POLLERR, 0);
	will_fail(mock_recv, -ECONNRESET);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -ECONNRESET);
	assert_non_null(strstr(sys_mock_trace(),
			       "recv(3)=-ECONNRESET shutdown(3,RDWR)=0 "
			       "shutdown(4,RDWR)=0 set_nonblocking(4,0)=0 "
			       "set_nonblocking(3,0)=0"));
	assert_int_equal(st.end, TUNNEL_END_CLIENT_RESET);
	assert_int_equal(st.error, -ECONNRESET);
	assert_int_equal(st.client_to_origin, 3);
	assert_string_equal(tunnel_end_name(st.end), "client_reset");
}

/* POLLERR alone (no POLLIN) wakes the reader, whose recv gets the error. */
static void test_origin_reset_reported_by_pollerr(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, 0, POLLERR);
	will_fail(mock_recv, -ECONNRESET);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -ECONNRESET);
	assert_true(sys_mock_trace_has("recv(4)=-ECONNRESET"));
	assert_int_equal(st.end, TUNNEL_END_ORIGIN_RESET);
}

static void test_origin_epipe_on_send(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLIN, 0);
	will_recv_str("data");
	will_send(-EPIPE);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -EPIPE);
	assert_int_equal(st.end, TUNNEL_END_ORIGIN_RESET);
	assert_int_equal(st.client_to_origin, 0);
}

static void test_client_reset_on_send(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, 0, POLLIN);
	will_recv_str("data");
	will_send(2);
	will_send(-ECONNRESET);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -ECONNRESET);
	assert_int_equal(st.end, TUNNEL_END_CLIENT_RESET);
	assert_int_equal(st.origin_to_client, 2);
}

/* Not a reset but as final: a keepalive timeout on the origin socket. */
static void test_other_socket_error_ends_tunnel(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, 0, POLLIN);
	will_fail(mock_recv, -ETIMEDOUT);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -ETIMEDOUT);
	assert_int_equal(st.end, TUNNEL_END_ORIGIN_RESET);
}

/* A socket that takes no bytes at all is gone. */
static void test_send_of_zero_bytes_is_epipe(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_send(0);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, "x", 1, &copy_opts, &st),
			 -EPIPE);
	assert_int_equal(st.end, TUNNEL_END_ORIGIN_RESET);
}

static void test_pollnval_is_internal(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(1, POLLNVAL, 0);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -EBADF);
	assert_int_equal(st.end, TUNNEL_END_INTERNAL);
}

static void test_poll_failure_is_internal(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_return(mock_poll, -ENOMEM);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -ENOMEM);
	assert_int_equal(st.end, TUNNEL_END_INTERNAL);
	assert_string_equal(tunnel_end_name(st.end), "internal");
}

/* ---- idle timeout on the fake clock ---- */

static void test_idle_timeout_ends_quiet_tunnel(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_poll2(0, 0, 0); /* the mock's clock jumps by the 300 s asked */
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -ETIMEDOUT);
	assert_string_equal(sys_mock_trace(),
			    "set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
			    "poll(3:i,4:i;300000)=0 shutdown(3,RDWR)=0 "
			    "shutdown(4,RDWR)=0 set_nonblocking(4,0)=0 "
			    "set_nonblocking(3,0)=0");
	assert_int_equal(st.end, TUNNEL_END_IDLE_TIMEOUT);
	assert_int_equal(st.error, -ETIMEDOUT);
	assert_int_equal(st.duration_ms, 300000);
	assert_string_equal(tunnel_end_name(st.end), "idle_timeout");
}

/*
 * Every byte moved restarts the idle clock; a wake-up that moves nothing
 * does not.  Each ready poll "takes" 400 ms; the timeout is 1000 ms.
 */
static void test_idle_timer_counts_from_last_byte(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_opts opts = copy_opts;
	struct tunnel_stats st;

	(void)state;
	opts.idle_timeout_ms = 1000;
	sys_mock_set_poll_delay_ms(400);
	will_enter();
	will_poll2(1, POLLIN, 0); /* t=1000 -> 1400 */
	will_recv_str("a");
	will_send(SYS_MOCK_ALL);
	will_fail(mock_recv, -EAGAIN);
	will_poll2(1, POLLIN, 0); /* -> 1800, nothing there */
	will_fail(mock_recv, -EAGAIN);
	will_poll2(0, 0, 0); /* waits the 600 ms left -> 2400 */
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &opts, &st),
			 -ETIMEDOUT);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"poll(3:i,4:i;1000)=1 recv(3)=1 send(4)=1 recv(3)=-EAGAIN "
		"poll(3:i,4:i;1000)=1 recv(3)=-EAGAIN poll(3:i,4:i;600)=0 "
		"shutdown(3,RDWR)=0 shutdown(4,RDWR)=0 "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_int_equal(st.duration_ms, 1400);
	assert_int_equal(st.end, TUNNEL_END_IDLE_TIMEOUT);
}

/* The idle timer also runs while only one direction is left open. */
static void test_idle_timeout_after_half_close(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_opts opts = copy_opts;
	struct tunnel_stats st;

	(void)state;
	opts.idle_timeout_ms = 5000;
	will_enter();
	will_poll2(1, POLLIN, 0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(0, 0, 0);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &opts, &st),
			 -ETIMEDOUT);
	assert_true(sys_mock_trace_has("poll(-1:-,4:i;5000)=0"));
	assert_int_equal(st.duration_ms, 5000);
}

static void test_idle_timeout_zero_waits_forever(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_opts opts = copy_opts;

	(void)state;
	opts.idle_timeout_ms = 0;
	will_enter();
	will_poll2(2, POLLIN, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &opts, NULL), 0);
	assert_true(sys_mock_trace_has("poll(3:i,4:i;-1)=2"));
}

/* ---- splice path ---- */

static void test_splice_relays_through_pipes(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(1, POLLIN, 0);
	will_splice(100);
	will_splice(100);
	will_splice(-EAGAIN);
	will_poll2(1, 0, POLLIN);
	will_splice(200);
	will_splice(200);
	will_splice(0);
	will_shutdown(0);
	will_poll2(1, POLLIN, 0);
	will_splice(0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 0);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"pipe=0[10,11] pipe=0[12,13] "
		"poll(3:i,4:i;300000)=1 splice(3>11)=100 splice(10>4)=100 "
		"splice(3>11)=-EAGAIN "
		"poll(3:i,4:i;300000)=1 splice(4>13)=200 splice(12>3)=200 "
		"splice(4>13)=0 shutdown(3,WR)=0 "
		"poll(3:i,-1:-;300000)=1 splice(3>11)=0 shutdown(4,WR)=0 "
		"close(10) close(11) close(12) close(13) "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_int_equal(st.client_to_origin, 100);
	assert_int_equal(st.origin_to_client, 200);
	assert_true(st.spliced);
	assert_pipes_closed();
}

/* Early data goes out with send() before the first splice. */
static void test_splice_sends_early_data_first(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_send(SYS_MOCK_ALL);
	will_poll2(1, POLLIN, 0);
	will_splice(7);
	will_splice(7);
	will_splice(0);
	will_shutdown(0);
	will_poll2(1, 0, POLLIN);
	will_splice(0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, "hello", 5, &splice_opts, &st),
			 0);
	assert_non_null(strstr(sys_mock_trace(),
			       "pipe=0[12,13] send(4)=5 poll(3:i,4:i;300000)=1 "
			       "splice(3>11)=7 splice(10>4)=7"));
	assert_sent_on(O, "hello");
	assert_int_equal(st.client_to_origin, 12);
	assert_pipes_closed();
}

/* The pipe drains in pieces; while it holds bytes, POLLOUT on the origin. */
static void test_splice_partial_write_waits_for_pollout(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(1, POLLIN, 0);
	will_splice(100);
	will_splice(60);
	will_splice(-EINTR);
	will_splice(-EAGAIN);
	will_poll2(1, 0, POLLOUT);
	will_splice(40);
	will_splice(0);
	will_shutdown(0);
	will_poll2(1, 0, POLLIN);
	will_splice(0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 0);
	assert_non_null(strstr(sys_mock_trace(),
			       "splice(10>4)=60 splice(10>4)=-EINTR "
			       "splice(10>4)=-EAGAIN "
			       "poll(-1:-,4:io;300000)=1 splice(10>4)=40 "
			       "splice(3>11)=0 shutdown(4,WR)=0"));
	assert_int_equal(st.client_to_origin, 100);
	assert_pipes_closed();
}

static void test_splice_reset_closes_pipes(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(1, 0, POLLIN | POLLERR);
	will_splice(-ECONNRESET);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 -ECONNRESET);
	assert_true(sys_mock_trace_has("splice(4>13)=-ECONNRESET"));
	assert_int_equal(st.end, TUNNEL_END_ORIGIN_RESET);
	assert_pipes_closed();
}

static void test_splice_write_error_closes_pipes(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(1, 0, POLLIN);
	will_splice(10);
	will_splice(-EPIPE);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 -EPIPE);
	assert_true(sys_mock_trace_has("splice(12>3)=-EPIPE"));
	assert_int_equal(st.end, TUNNEL_END_CLIENT_RESET);
	assert_pipes_closed();
}

static void test_splice_idle_timeout_closes_pipes(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(0, 0, 0);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 -ETIMEDOUT);
	assert_int_equal(st.end, TUNNEL_END_IDLE_TIMEOUT);
	assert_pipes_closed();
}

/* EINVAL once a splice has worked is not "cannot splice": internal. */
static void test_splice_einval_after_success_is_internal(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(1, POLLIN, 0);
	will_splice(10);
	will_splice(10);
	will_splice(-EAGAIN);
	will_poll2(1, POLLIN, 0);
	will_splice(-EINVAL);
	will_abort();
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 -EINVAL);
	assert_int_equal(st.end, TUNNEL_END_INTERNAL);
	assert_pipes_closed();
}

/* ---- fallback from splice to copy ---- */

static void test_no_pipes_falls_back_to_copy(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_fail(mock_pipe, -ENOSYS);
	will_fail(mock_pipe, -ENOSYS);
	will_poll2(1, POLLIN, 0);
	will_recv_str("abc");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, 0, POLLIN);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 0);
	assert_non_null(
		strstr(sys_mock_trace(),
		       "pipe=-ENOSYS pipe=-ENOSYS poll(3:i,4:i;300000)=1 "
		       "recv(3)=3 send(4)=3"));
	assert_false(st.spliced);
	assert_int_equal(st.client_to_origin, 3);
	assert_int_equal(sys_mock_close_count(), 0);
}

/* Out of descriptors for the second pipe: that direction copies. */
static void test_second_pipe_failure_copies_that_direction(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_return(mock_pipe, 0);
	will_return(mock_pipe, 10);
	will_return(mock_pipe, 11);
	will_fail(mock_pipe, -EMFILE);
	will_poll2(2, POLLIN, POLLIN);
	will_splice(0);
	will_shutdown(0);
	will_recv_str("z");
	will_send(SYS_MOCK_ALL);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 0);
	assert_true(sys_mock_trace_has("splice(3>11)=0"));
	assert_true(sys_mock_trace_has("recv(4)=1"));
	assert_true(st.spliced);
	assert_true(sys_mock_is_closed(10));
	assert_true(sys_mock_is_closed(11));
	assert_int_equal(sys_mock_close_count(), 2);
}

/*
 * The first splice from the client fails with EINVAL (a socket that cannot
 * splice): that direction closes its pipe at once and goes on with recv and
 * send, losing nothing; the other direction keeps splicing.
 */
static void test_first_splice_einval_falls_back_to_copy(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(1, POLLIN, 0);
	will_splice(-EINVAL);
	will_recv_str("xyz");
	will_send(SYS_MOCK_ALL);
	will_fail(mock_recv, -EAGAIN);
	will_poll2(1, 0, POLLIN);
	will_splice(5);
	will_splice(5);
	will_splice(0);
	will_shutdown(0);
	will_poll2(1, POLLIN, 0);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 0);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=0 "
		"pipe=0[10,11] pipe=0[12,13] "
		"poll(3:i,4:i;300000)=1 splice(3>11)=-EINVAL close(10) "
		"close(11) recv(3)=3 send(4)=3 recv(3)=-EAGAIN "
		"poll(3:i,4:i;300000)=1 splice(4>13)=5 splice(12>3)=5 "
		"splice(4>13)=0 shutdown(3,WR)=0 "
		"poll(3:i,-1:-;300000)=1 recv(3)=0 shutdown(4,WR)=0 "
		"close(12) close(13) "
		"set_nonblocking(4,0)=0 set_nonblocking(3,0)=0");
	assert_sent_on(O, "xyz");
	assert_int_equal(st.client_to_origin, 3);
	assert_int_equal(st.origin_to_client, 5);
	assert_pipes_closed();
}

static void test_first_splice_enosys_falls_back_to_copy(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(1, 0, POLLIN);
	will_splice(-ENOSYS);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_poll2(1, POLLIN, 0);
	will_splice(-ENOSYS);
	will_recv(NULL, 0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &splice_opts, &st),
			 0);
	assert_false(st.spliced);
	assert_pipes_closed();
}

/* ---- setup, arguments, names ---- */

static void test_nonblocking_failure_on_client(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_return(mock_set_nonblocking, -EBADF);
	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -EBADF);
	assert_string_equal(sys_mock_trace(), "set_nonblocking(3,1)=-EBADF");
	assert_int_equal(st.end, TUNNEL_END_INTERNAL);
}

static void test_nonblocking_failure_on_origin_restores_client(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	will_return(mock_set_nonblocking, 0);
	will_return(mock_set_nonblocking, -EBADF);
	will_return(mock_set_nonblocking, 0);
	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, &copy_opts, &st),
			 -EBADF);
	assert_string_equal(
		sys_mock_trace(),
		"set_nonblocking(3,1)=0 set_nonblocking(4,1)=-EBADF "
		"set_nonblocking(3,0)=0");
}

static void test_bad_arguments_touch_nothing(void **state)
{
	struct sys *sys = sys_mock();
	struct tunnel_stats st;

	(void)state;
	assert_int_equal(tunnel_relay(sys, C, C, NULL, 0, &copy_opts, &st),
			 -EINVAL);
	assert_int_equal(st.end, TUNNEL_END_INTERNAL);
	assert_int_equal(st.error, -EINVAL);
	assert_int_equal(tunnel_relay(sys, C, O, NULL, 5, &copy_opts, &st),
			 -EINVAL);
	assert_int_equal(tunnel_relay(sys, -1, O, NULL, 0, &copy_opts, NULL),
			 -EINVAL);
	assert_string_equal(sys_mock_trace(), "");
}

/* NULL opts means the defaults (splice on); NULL stats is allowed. */
static void test_null_opts_and_stats(void **state)
{
	struct sys *sys = sys_mock();

	(void)state;
	will_enter();
	will_pipes();
	will_poll2(2, POLLIN, POLLIN);
	will_splice(0);
	will_shutdown(0);
	will_splice(0);
	will_shutdown(0);
	will_leave();

	assert_int_equal(tunnel_relay(sys, C, O, NULL, 0, NULL, NULL), 0);
	assert_true(sys_mock_trace_has("poll(3:i,4:i;300000)=2"));
	assert_pipes_closed();
}

static void test_opts_default(void **state)
{
	struct tunnel_opts o;

	(void)state;
	memset(&o, 0xff, sizeof(o));
	tunnel_opts_default(&o);
	assert_int_equal(o.idle_timeout_ms, 300000);
	assert_true(o.use_splice);
	assert_int_equal(o.buffer_size, 16384);
}

static void test_end_names(void **state)
{
	(void)state;
	assert_string_equal(tunnel_end_name(TUNNEL_END_CLOSED), "closed");
	assert_string_equal(tunnel_end_name(TUNNEL_END_CLIENT_RESET),
			    "client_reset");
	assert_string_equal(tunnel_end_name(TUNNEL_END_ORIGIN_RESET),
			    "origin_reset");
	assert_string_equal(tunnel_end_name(TUNNEL_END_IDLE_TIMEOUT),
			    "idle_timeout");
	assert_string_equal(tunnel_end_name(TUNNEL_END_INTERNAL), "internal");
	assert_string_equal(tunnel_end_name((enum tunnel_end)99), "unknown");
}

/* ==== real sockets ==== */

#define REAL_BYTES (8u << 20)
#define EARLY_LEN  1000u

/* A reproducible byte stream: byte i of stream `seed` is a hash of both. */
static uint64_t stream_word(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + i;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void stream_fill(uint64_t seed, size_t off, unsigned char *buf,
			size_t len)
{
	for (size_t k = 0; k < len; k++) {
		size_t i = off + k;

		buf[k] = (unsigned char)(stream_word(seed, i / 8) >>
					 (8 * (i % 8)));
	}
}

struct pump {
	int fd;
	uint64_t seed;
	size_t from; /* send: stream offset to start at (after early data) */
	size_t len;  /* send: up to this offset; recv: bytes expected */
	size_t got;  /* recv: bytes received */
	int ok;	     /* recv: all bytes matched and EOF came */
};

static void *pump_send(void *arg)
{
	struct pump *p = arg;
	unsigned char buf[65536];
	size_t off = p->from;

	while (off < p->len) {
		size_t n =
			p->len - off < sizeof(buf) ? p->len - off : sizeof(buf);
		size_t done = 0;

		stream_fill(p->seed, off, buf, n);
		while (done < n) {
			ssize_t w =
				send(p->fd, buf + done, n - done, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return NULL;
			done += (size_t)w;
		}
		off += n;
	}
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

static void *pump_recv(void *arg)
{
	struct pump *p = arg;
	unsigned char buf[65536], want[65536];

	p->ok = 1;
	for (;;) {
		ssize_t n = recv(p->fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			p->ok = 0;
			return NULL;
		}
		if (n == 0)
			break;
		stream_fill(p->seed, p->got, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n) != 0)
			p->ok = 0;
		p->got += (size_t)n;
	}
	if (p->got != p->len)
		p->ok = 0;
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n++;
	closedir(d);
	return n;
}

/* A connected TCP pair on 127.0.0.1 (an ephemeral port, libc directly). */
static void tcp_pair(int fds[2])
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(lfd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fds[0] >= 0);
	assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
	fds[1] = accept(lfd, NULL, NULL);
	assert_true(fds[1] >= 0);
	close(lfd);
}

static void make_pair(int fds[2], int tcp)
{
	if (tcp)
		tcp_pair(fds);
	else
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
}

/*
 * 8 MiB each way at once, the first 1000 client bytes as early data; each
 * end sends, shuts down its sending side, and reads to EOF, so both
 * half-closes happen in whatever order the scheduler picks.
 */
static void real_both_ways(bool use_splice, int tcp)
{
	struct tunnel_opts opts;
	struct tunnel_stats st;
	unsigned char early[EARLY_LEN];
	int fds_before = count_fds();
	int cp[2], op[2]; /* cp[0] client end, cp[1] relay; op[0] relay */
	struct pump cs, cr, os, orc;
	pthread_t t[4];

	tunnel_opts_default(&opts);
	opts.use_splice = use_splice;
	make_pair(cp, tcp);
	make_pair(op, tcp);
	stream_fill(1, 0, early, EARLY_LEN);
	cs = (struct pump){
		.fd = cp[0], .seed = 1, .from = EARLY_LEN, .len = REAL_BYTES};
	orc = (struct pump){.fd = op[1], .seed = 1, .len = REAL_BYTES};
	os = (struct pump){.fd = op[1], .seed = 2, .len = REAL_BYTES};
	cr = (struct pump){.fd = cp[0], .seed = 2, .len = REAL_BYTES};
	assert_int_equal(pthread_create(&t[0], NULL, pump_send, &cs), 0);
	assert_int_equal(pthread_create(&t[1], NULL, pump_recv, &orc), 0);
	assert_int_equal(pthread_create(&t[2], NULL, pump_send, &os), 0);
	assert_int_equal(pthread_create(&t[3], NULL, pump_recv, &cr), 0);

	assert_int_equal(tunnel_relay(sys_posix(), cp[1], op[0], early,
				      EARLY_LEN, &opts, &st),
			 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);

	assert_true(orc.ok);
	assert_true(cr.ok);
	assert_int_equal(orc.got, REAL_BYTES);
	assert_int_equal(cr.got, REAL_BYTES);
	assert_int_equal(st.client_to_origin, REAL_BYTES);
	assert_int_equal(st.origin_to_client, REAL_BYTES);
	assert_int_equal(st.end, TUNNEL_END_CLOSED);
	assert_int_equal(st.spliced, use_splice);
	close(cp[0]);
	close(cp[1]);
	close(op[0]);
	close(op[1]);
	assert_int_equal(count_fds(), fds_before);
}

static void test_real_copy_unix_both_ways(void **state)
{
	(void)state;
	real_both_ways(false, 0);
}

static void test_real_splice_unix_both_ways(void **state)
{
	(void)state;
	real_both_ways(true, 0);
}

static void test_real_splice_tcp_both_ways(void **state)
{
	(void)state;
	real_both_ways(true, 1);
}

static void test_real_copy_tcp_both_ways(void **state)
{
	(void)state;
	real_both_ways(false, 1);
}

/*
 * A strict half-close conversation: the first speaker sends and shuts down;
 * the other end reads to EOF (which proves the FIN was passed on) and only
 * then answers and shuts down.  No sleeps: each step waits on the last.
 */
struct speaker {
	int fd;
	const char *say;
	int first; /* speak, then listen; else listen, then speak */
	char heard[64];
	size_t heard_len;
};

static void speaker_listen(struct speaker *s)
{
	for (;;) {
		ssize_t n = recv(s->fd, s->heard + s->heard_len,
				 sizeof(s->heard) - 1 - s->heard_len, 0);
		if (n <= 0)
			break;
		s->heard_len += (size_t)n;
	}
	s->heard[s->heard_len] = '\0';
}

static void speaker_speak(struct speaker *s)
{
	assert_int_equal(send(s->fd, s->say, strlen(s->say), MSG_NOSIGNAL),
			 (ssize_t)strlen(s->say));
	shutdown(s->fd, SHUT_WR);
}

static void *speaker_run(void *arg)
{
	struct speaker *s = arg;

	if (s->first) {
		speaker_speak(s);
		speaker_listen(s);
	} else {
		speaker_listen(s);
		speaker_speak(s);
	}
	return NULL;
}

static void real_half_close(bool use_splice, int client_first)
{
	struct tunnel_opts opts;
	struct tunnel_stats st;
	int fds_before = count_fds();
	int cp[2], op[2];
	struct speaker client = {.say = "ping", .first = client_first};
	struct speaker origin = {.say = "pong!", .first = !client_first};
	pthread_t tc, to;

	tunnel_opts_default(&opts);
	opts.use_splice = use_splice;
	make_pair(cp, 0);
	make_pair(op, 0);
	client.fd = cp[0];
	origin.fd = op[1];
	assert_int_equal(pthread_create(&tc, NULL, speaker_run, &client), 0);
	assert_int_equal(pthread_create(&to, NULL, speaker_run, &origin), 0);
	assert_int_equal(
		tunnel_relay(sys_posix(), cp[1], op[0], NULL, 0, &opts, &st),
		0);
	pthread_join(tc, NULL);
	pthread_join(to, NULL);
	assert_string_equal(origin.heard, "ping");
	assert_string_equal(client.heard, "pong!");
	assert_int_equal(st.client_to_origin, 4);
	assert_int_equal(st.origin_to_client, 5);
	assert_int_equal(st.end, TUNNEL_END_CLOSED);
	close(cp[0]);
	close(cp[1]);
	close(op[0]);
	close(op[1]);
	assert_int_equal(count_fds(), fds_before);
}

static void test_real_half_close_client_first(void **state)
{
	(void)state;
	real_half_close(false, 1);
	real_half_close(true, 1);
}

static void test_real_half_close_origin_first(void **state)
{
	(void)state;
	real_half_close(false, 0);
	real_half_close(true, 0);
}

/*
 * The origin reads the early data, then aborts its connection (SO_LINGER 0:
 * a TCP RST).  The relay ends with origin_reset and shuts the client down,
 * so the client sees the end of the stream rather than hanging.
 */
struct resetter {
	int fd;
	char got[8];
};

static void *resetter_run(void *arg)
{
	struct resetter *r = arg;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	size_t have = 0;

	while (have < 5) {
		ssize_t n = recv(r->fd, r->got + have, 5 - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(r->fd);
	return NULL;
}

static void real_origin_reset(bool use_splice)
{
	struct tunnel_opts opts;
	struct tunnel_stats st;
	int fds_before = count_fds();
	int cp[2], op[2], rc;
	struct resetter r;
	pthread_t t;
	char byte;

	tunnel_opts_default(&opts);
	opts.use_splice = use_splice;
	make_pair(cp, 1);
	make_pair(op, 1);
	r.fd = op[1];
	assert_int_equal(pthread_create(&t, NULL, resetter_run, &r), 0);
	rc = tunnel_relay(sys_posix(), cp[1], op[0], "hello", 5, &opts, &st);
	pthread_join(t, NULL);
	assert_int_equal(rc, -ECONNRESET);
	assert_int_equal(st.end, TUNNEL_END_ORIGIN_RESET);
	assert_int_equal(st.error, -ECONNRESET);
	assert_memory_equal(r.got, "hello", 5);
	assert_int_equal(recv(cp[0], &byte, 1, 0), 0);
	close(cp[0]);
	close(cp[1]);
	close(op[0]);
	assert_int_equal(count_fds(), fds_before);
}

static void test_real_origin_reset(void **state)
{
	(void)state;
	real_origin_reset(false);
	real_origin_reset(true);
}

/*
 * ---- torture: a whole relay with each call failing in turn ----
 *
 * Real socketpairs whose peers have already sent their bytes and shut
 * down their sending side, so one relay call moves everything and ends.
 * After every run: the bytes each peer got are a prefix of what was sent
 * and exactly what the statistics count, the sockets are blocking again
 * (unless restoring that was what failed), and torture_run() checks that
 * the pipes were closed and the buffers freed.
 */
#include <fcntl.h>

#include "torture.h"

struct tunnel_torture {
	int c[2], o[2]; /* [0] goes to the relay, [1] is the peer */
	bool splice, persistent;
	struct tunnel_stats stats;
};

static struct sys *tunnel_torture_setup(void *arg)
{
	struct tunnel_torture *tt = arg;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, tt->c), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, tt->o), 0);
	assert_int_equal(send(tt->c[1], "hello", 5, 0), 5);
	assert_int_equal(shutdown(tt->c[1], SHUT_WR), 0);
	assert_int_equal(send(tt->o[1], "world", 5, 0), 5);
	assert_int_equal(shutdown(tt->o[1], SHUT_WR), 0);
	memset(&tt->stats, 0, sizeof(tt->stats));
	return sys_posix();
}

static int tunnel_torture_run(struct sys *sys, void *arg)
{
	struct tunnel_torture *tt = arg;
	struct tunnel_opts opts = {
		.idle_timeout_ms = 10000, /* a bound, never reached */
		.use_splice = tt->splice,
		.buffer_size = 4096,
	};

	return tunnel_relay(sys, tt->c[0], tt->o[0], "early", 5, &opts,
			    &tt->stats);
}

/* Everything the peer has been sent so far (its sender is done). */
static size_t drain_peer(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len < cap &&
	       (n = recv(fd, buf + len, cap - len, MSG_DONTWAIT)) > 0)
		len += (size_t)n;
	return len;
}

static bool is_blocking(int fd)
{
	return !(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

static bool tunnel_torture_check(void *arg, int rc, const char *failed)
{
	struct tunnel_torture *tt = arg;
	char to_origin[32], to_client[32];
	size_t no = drain_peer(tt->o[1], to_origin, sizeof(to_origin));
	size_t nc = drain_peer(tt->c[1], to_client, sizeof(to_client));

	assert_int_equal(tt->stats.error, rc);
	assert_int_equal(tt->stats.client_to_origin, no);
	assert_int_equal(tt->stats.origin_to_client, nc);
	assert_true(no <= 10 && !memcmp(to_origin, "earlyhello", no));
	assert_true(nc <= 5 && !memcmp(to_client, "world", nc));
	if (!failed || (!tt->persistent && strcmp(failed, "set_nonblocking"))) {
		assert_true(is_blocking(tt->c[0]));
		assert_true(is_blocking(tt->o[0]));
	}
	if (!failed) {
		assert_int_equal(rc, 0);
		assert_int_equal(no, 10);
		assert_int_equal(nc, 5);
		assert_int_equal(tt->stats.end, TUNNEL_END_CLOSED);
		return false;
	}
	/*
	 * Successes that are right despite the failure: a pipe that cannot be
	 * made (copy instead), a failed restore of blocking mode or close of
	 * a pipe (nothing to report them to), all only with every byte moved.
	 */
	return (!strcmp(failed, "pipe") || !strcmp(failed, "set_nonblocking") ||
		!strcmp(failed, "close")) &&
	       no == 10 && nc == 5;
}

static void tunnel_torture_teardown(void *arg)
{
	struct tunnel_torture *tt = arg;

	close(tt->c[0]);
	close(tt->c[1]);
	close(tt->o[0]);
	close(tt->o[1]);
}

static void test_torture_tunnel_relay(void **state)
{
	struct tunnel_torture tt = {0};
	struct torture_op op = {
		.name = "tunnel relay (copy)",
		.set = TORTURE_SYS | TORTURE_ALLOC,
		.err = -ECONNRESET,
		.setup = tunnel_torture_setup,
		.run = tunnel_torture_run,
		.check = tunnel_torture_check,
		.teardown = tunnel_torture_teardown,
	};
	long copy, spliced;

	(void)state;
	copy = torture_run(&op, &tt);
	op.name = "tunnel relay (splice)";
	op.err = -EIO;
	tt.splice = true;
	spliced = torture_run(&op, &tt);
	print_message("tunnel: %ld (copy) and %ld (splice) calls failed in "
		      "turn\n",
		      copy, spliced);
	assert_true(copy >= 10 && spliced >= 10);
	op.name = "tunnel relay (splice, persistent)";
	op.err = -EPIPE;
	op.persistent = tt.persistent = true;
	assert_int_equal(torture_run(&op, &tt), spliced);
	op.name = "tunnel relay (copy, persistent)";
	tt.splice = false;
	assert_int_equal(torture_run(&op, &tt), copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_relays_both_ways_then_both_close),
		cmocka_unit_test(
			test_early_data_reaches_origin_before_anything),
		cmocka_unit_test(
			test_early_data_partial_writes_wait_for_pollout),
		cmocka_unit_test(test_partial_send_to_client_then_pollout),
		cmocka_unit_test(test_spurious_wakeup_polls_again),
		cmocka_unit_test(test_poll_eintr_is_repeated),
		cmocka_unit_test(test_busy_direction_yields_after_its_turn),
		cmocka_unit_test(test_half_close_client_first),
		cmocka_unit_test(test_half_close_origin_first),
		cmocka_unit_test(
			test_half_close_delivers_pending_before_shutdown),
		cmocka_unit_test(test_pollhup_reads_end_of_stream),
		cmocka_unit_test(test_shutdown_enotconn_is_not_an_error),
		cmocka_unit_test(test_shutdown_failure_ends_tunnel),
		cmocka_unit_test(test_client_reset_ends_both_directions),
		cmocka_unit_test(test_origin_reset_reported_by_pollerr),
		cmocka_unit_test(test_origin_epipe_on_send),
		cmocka_unit_test(test_client_reset_on_send),
		cmocka_unit_test(test_other_socket_error_ends_tunnel),
		cmocka_unit_test(test_send_of_zero_bytes_is_epipe),
		cmocka_unit_test(test_pollnval_is_internal),
		cmocka_unit_test(test_poll_failure_is_internal),
		cmocka_unit_test(test_idle_timeout_ends_quiet_tunnel),
		cmocka_unit_test(test_idle_timer_counts_from_last_byte),
		cmocka_unit_test(test_idle_timeout_after_half_close),
		cmocka_unit_test(test_idle_timeout_zero_waits_forever),
		cmocka_unit_test(test_splice_relays_through_pipes),
		cmocka_unit_test(test_splice_sends_early_data_first),
		cmocka_unit_test(test_splice_partial_write_waits_for_pollout),
		cmocka_unit_test(test_splice_reset_closes_pipes),
		cmocka_unit_test(test_splice_write_error_closes_pipes),
		cmocka_unit_test(test_splice_idle_timeout_closes_pipes),
		cmocka_unit_test(test_splice_einval_after_success_is_internal),
		cmocka_unit_test(test_no_pipes_falls_back_to_copy),
		cmocka_unit_test(
			test_second_pipe_failure_copies_that_direction),
		cmocka_unit_test(test_first_splice_einval_falls_back_to_copy),
		cmocka_unit_test(test_first_splice_enosys_falls_back_to_copy),
		cmocka_unit_test(test_nonblocking_failure_on_client),
		cmocka_unit_test(
			test_nonblocking_failure_on_origin_restores_client),
		cmocka_unit_test(test_bad_arguments_touch_nothing),
		cmocka_unit_test(test_null_opts_and_stats),
		cmocka_unit_test(test_opts_default),
		cmocka_unit_test(test_end_names),
		cmocka_unit_test(test_real_copy_unix_both_ways),
		cmocka_unit_test(test_real_splice_unix_both_ways),
		cmocka_unit_test(test_real_copy_tcp_both_ways),
		cmocka_unit_test(test_real_splice_tcp_both_ways),
		cmocka_unit_test(test_real_half_close_client_first),
		cmocka_unit_test(test_real_half_close_origin_first),
		cmocka_unit_test(test_real_origin_reset),
		cmocka_unit_test(test_torture_tunnel_relay),
	};
	struct sigaction ignore;

	/* splice(2) to a dead peer raises SIGPIPE; the app ignores it too. */
	memset(&ignore, 0, sizeof(ignore));
	ignore.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ignore, NULL);
	return cmocka_run_group_tests_name("tunnel", tests, NULL, NULL);
}
