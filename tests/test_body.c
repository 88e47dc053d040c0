/*
 * Unit tests of the body relay's zero-copy path (src/proxy/body.c, issue
 * 13): a Content-Length body with at least PROXY_SPLICE_MIN left moves
 * socket -> pipe -> socket with splice(2) when its sink can take bytes
 * from a pipe (an identity socket sink, nothing teed), and through the
 * buffer otherwise.
 *
 * Over the mock sys a test scripts, in call order, what the kernel says:
 * polls, splices (a count each: the mock moves no bytes), the pipe, and
 * the sends and receives of the copy path; sys_mock_trace() then shows
 * which descriptor every call was made on.  The sender is 5, the
 * receiver 7, the pipe 30 (read end) and 31 (write end).  A last test
 * runs the real path over socketpairs under the torture injector: every
 * call failing in turn, nothing may leak and whatever reports success
 * must have delivered every byte.  The too-large decision of the cache
 * glue rests on cache_store_fits(), tested here on the in-memory fs.
 */
#include "sys_memfs.h"
#include "sys_mock.h"
#include "torture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "glassproxy/cache.h"
#include "proxy/proxy_int.h"

#define FROM_FD 5
#define TO_FD	7
#define PIPE_RD 30
#define PIPE_WR 31
#define WATCH	9

static char buf[PROXY_UPSTREAM_BUF];
static char data[PROXY_UPSTREAM_BUF];

struct relay {
	struct sys *sys;
	struct conn from;
	struct proxy_socket_sink ss;
	struct proxy_sink *to;
	struct body b;
};

/* A body of total bytes of which buffered are already in the buffer. */
static void relay_init(struct relay *r, uint64_t total, size_t buffered)
{
	r->sys = sys_mock();
	proxy_conn_init(&r->from, r->sys, FROM_FD, buf, sizeof(buf));
	memset(buf, 'b', buffered);
	r->from.len = buffered;
	r->to = proxy_sink_socket(&r->ss, r->sys, TO_FD, PROXY_FRAME_LENGTH,
				  total);
	proxy_body_init(&r->b, HTTP_BODY_LENGTH, total);
}

static int relay_run(struct relay *r)
{
	return proxy_body_relay(&r->b, &r->from, r->to, 1000);
}

static void will_pipe(void)
{
	will_return(mock_pipe, 0);
	will_return(mock_pipe, PIPE_RD);
	will_return(mock_pipe, PIPE_WR);
}

static void will_readable(void)
{
	will_return(mock_poll, 1);
	will_return(mock_poll, POLLIN);
}

static void will_splice(ssize_t n)
{
	will_return(mock_splice, n);
}

/* One pipeful: readable, n into the pipe, n out in one go. */
static void will_pipeful(ssize_t n)
{
	will_readable();
	will_splice(n);
	will_splice(n);
}

static void assert_pipe_closed(void)
{
	assert_true(sys_mock_is_closed(PIPE_RD));
	assert_true(sys_mock_is_closed(PIPE_WR));
}

/* ---- the splice path taken, and not taken ---- */

static void test_large_body_is_spliced_after_the_buffered_part(void **state)
{
	const size_t buffered = 1000, rest = 199000;
	struct relay r;
	size_t len;

	(void)state;
	relay_init(&r, buffered + rest, buffered);
	will_send(SYS_MOCK_ALL); /* what was buffered goes first */
	will_pipe();
	will_pipeful(65536);
	/* A short splice out: the rest of the pipeful follows. */
	will_readable();
	will_splice(65536);
	will_splice(40000);
	will_splice(25536);
	will_pipeful(65536);
	will_pipeful(2392); /* the last bytes: asked for exactly these */
	assert_int_equal(relay_run(&r), 0);
	assert_true(r.b.done);
	assert_int_equal(r.b.spliced, rest);
	assert_int_equal(r.b.moved, buffered + rest);
	assert_int_equal(r.to->payload, buffered + rest);
	assert_int_equal(r.to->wire, buffered + rest);
	assert_int_equal(r.from.len, 0);
	assert_non_null(sys_mock_sent_on(TO_FD, &len));
	assert_int_equal(len, buffered);
	assert_true(sys_mock_trace_has("splice(5>31)=65536"));
	assert_true(sys_mock_trace_has("splice(30>7)=40000"));
	assert_true(sys_mock_trace_has("splice(30>7)=2392"));
	assert_pipe_closed();
}

static void test_body_below_the_threshold_is_copied(void **state)
{
	const size_t rest = PROXY_SPLICE_MIN - 1;
	struct relay r;

	(void)state;
	relay_init(&r, 100 + rest, 100);
	will_send(SYS_MOCK_ALL);
	will_readable(); /* net_recv polls, then receives */
	will_recv(data, rest);
	will_send(SYS_MOCK_ALL);
	assert_int_equal(relay_run(&r), 0);
	assert_int_equal(r.b.spliced, 0);
	assert_int_equal(r.to->payload, 100 + rest);
	assert_false(sys_mock_trace_has("pipe=0[30,31]"));
}

/* Store and client teed: the store needs the bytes, so nothing splices. */
static void test_teed_body_is_copied(void **state)
{
	const size_t rest = 2 * PROXY_SPLICE_MIN;
	struct proxy_tee_sink tee;
	struct proxy_sink store;
	struct relay r;

	(void)state;
	relay_init(&r, rest, 0);
	assert_true(proxy_sink_can_splice(r.to));
	r.to = proxy_sink_tee(&tee, r.to, proxy_sink_discard(&store));
	assert_false(proxy_sink_can_splice(r.to));
	for (size_t left = rest; left > 0; left -= sizeof(data)) {
		will_readable();
		will_recv(data, sizeof(data));
		will_send(SYS_MOCK_ALL);
	}
	assert_int_equal(relay_run(&r), 0);
	assert_int_equal(r.b.spliced, 0);
	assert_int_equal(store.payload, rest);
	assert_int_equal(r.to->wire, rest);
}

/* A chunked receiver needs framing around the bytes: no from_pipe. */
static void test_chunked_and_discard_sinks_cannot_splice(void **state)
{
	struct proxy_socket_sink ss;
	struct proxy_sink discard;

	(void)state;
	assert_false(proxy_sink_can_splice(proxy_sink_socket(
		&ss, sys_mock(), TO_FD, PROXY_FRAME_CHUNKED, 0)));
	assert_true(proxy_sink_can_splice(proxy_sink_socket(
		&ss, sys_mock(), TO_FD, PROXY_FRAME_CLOSE, 0)));
	assert_false(proxy_sink_can_splice(proxy_sink_discard(&discard)));
}

/* ---- falling back to the copy path ---- */

static void test_splice_unsupported_falls_back_to_copying(void **state)
{
	static const int errs[] = {-EINVAL, -ENOSYS};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		const size_t rest = PROXY_SPLICE_MIN + 10;
		struct relay r;

		relay_init(&r, rest, 0);
		will_pipe();
		will_readable();
		will_splice(errs[i]);
		/* The pipe is empty: the copy path takes over from here. */
		will_readable();
		will_recv(data, sizeof(data));
		will_send(SYS_MOCK_ALL);
		will_readable();
		will_recv(data, rest - sizeof(data));
		will_send(SYS_MOCK_ALL);
		assert_int_equal(relay_run(&r), 0);
		assert_true(r.b.no_splice);
		assert_int_equal(r.b.spliced, 0);
		assert_int_equal(r.to->payload, rest);
		assert_pipe_closed();
	}
}

static void test_no_pipe_falls_back_to_copying(void **state)
{
	const size_t rest = PROXY_SPLICE_MIN;
	struct relay r;

	(void)state;
	relay_init(&r, rest, 0);
	will_return(mock_pipe, -EMFILE);
	will_readable();
	will_recv(data, rest);
	will_send(SYS_MOCK_ALL);
	assert_int_equal(relay_run(&r), 0);
	assert_true(r.b.no_splice);
	assert_int_equal(r.to->payload, rest);
}

/* After bytes went through the pipe, EINVAL is an error like any other. */
static void test_einval_after_bytes_moved_is_an_error(void **state)
{
	struct relay r;

	(void)state;
	relay_init(&r, 3 * PROXY_SPLICE_MIN, 0);
	will_pipe();
	will_pipeful(65536);
	will_readable();
	will_splice(-EINVAL);
	assert_int_equal(relay_run(&r), -EINVAL);
	assert_int_equal(r.to->error, 0);
	assert_pipe_closed();
}

/* ---- the sender or the receiver failing mid-body ---- */

static void test_sender_reset_mid_body_is_its_error(void **state)
{
	struct relay r;

	(void)state;
	relay_init(&r, 4 * PROXY_SPLICE_MIN, 0);
	will_pipe();
	will_pipeful(65536);
	will_readable();
	will_splice(-ECONNRESET);
	assert_int_equal(relay_run(&r), -ECONNRESET);
	assert_false(r.b.done);
	assert_int_equal(r.to->error, 0); /* the sender's fault */
	assert_int_equal(r.b.moved, 65536);
	assert_int_equal(r.to->wire, 65536);
	assert_pipe_closed();
}

static void test_sender_closing_early_is_a_cut_body(void **state)
{
	struct relay r;

	(void)state;
	relay_init(&r, 4 * PROXY_SPLICE_MIN, 0);
	will_pipe();
	will_pipeful(1000);
	will_readable();
	will_splice(0);
	assert_int_equal(relay_run(&r), -ECONNABORTED);
	assert_true(r.from.eof);
	assert_int_equal(r.to->error, 0);
	assert_pipe_closed();
}

static void test_receiver_gone_mid_body_is_the_sinks_error(void **state)
{
	struct relay r;

	(void)state;
	relay_init(&r, 4 * PROXY_SPLICE_MIN, 0);
	will_pipe();
	will_pipeful(65536);
	will_readable();
	will_splice(65536);
	will_splice(1000);
	will_splice(-EPIPE); /* the pipe still holds bytes: it is closed */
	assert_int_equal(relay_run(&r), -EPIPE);
	assert_int_equal(r.to->error, -EPIPE);
	assert_int_equal(r.to->wire, 65536 + 1000);
	assert_int_equal(r.to->payload, 65536);
	assert_pipe_closed();
}

/* A blocked splice into the receiver ran past its SO_SNDTIMEO. */
static void test_receiver_send_timeout_is_etimedout(void **state)
{
	struct relay r;

	(void)state;
	relay_init(&r, 4 * PROXY_SPLICE_MIN, 0);
	will_pipe();
	will_readable();
	will_splice(65536);
	will_splice(-EAGAIN);
	assert_int_equal(relay_run(&r), -ETIMEDOUT);
	assert_int_equal(r.to->error, -ETIMEDOUT);
	assert_pipe_closed();
}

static void test_silent_sender_times_out(void **state)
{
	struct relay r;

	(void)state;
	relay_init(&r, 4 * PROXY_SPLICE_MIN, 0);
	will_pipe();
	will_pipeful(65536);
	will_return(mock_poll, 0);
	assert_int_equal(relay_run(&r), -ETIMEDOUT);
	assert_true(sys_mock_trace_has("poll(5:i;1000)=0"));
	assert_pipe_closed();
}

/* A readable sender that gives nothing yet (EAGAIN): wait again. */
static void test_spurious_readiness_waits_again(void **state)
{
	const size_t rest = PROXY_SPLICE_MIN;
	struct relay r;

	(void)state;
	relay_init(&r, rest, 0);
	will_pipe();
	will_readable();
	will_splice(-EAGAIN);
	will_pipeful((ssize_t)rest);
	assert_int_equal(relay_run(&r), 0);
	assert_int_equal(r.b.spliced, rest);
}

/* The whole-body allowance (--min-body-rate) bounds every wait. */
static void test_body_allowance_bounds_the_wait(void **state)
{
	struct proxy_settings set = {.request_body_timeout_ms = 500,
				     .min_body_rate = 1000000};
	struct relay r;

	(void)state;
	relay_init(&r, 4 * PROXY_SPLICE_MIN, 0);
	proxy_body_set_rates(&r.b, &set, sys_now_mono_ms(r.sys), true, -1);
	will_pipe();
	will_return(mock_poll, 0);
	assert_int_equal(relay_run(&r), -ETIMEDOUT);
	/* 500 ms and nothing moved yet: the wait is cut from 1000 to 500. */
	assert_true(sys_mock_trace_has("poll(5:i;500)=0"));
	assert_pipe_closed();
}

/* An upload watching the origin: its answer interrupts the splice. */
static void test_watched_descriptor_interrupts_an_upload(void **state)
{
	struct relay r;

	(void)state;
	relay_init(&r, 4 * PROXY_SPLICE_MIN, 0);
	r.b.watch_fd = WATCH;
	will_pipe();
	will_poll2(1, POLLIN, 0);
	will_splice(65536);
	will_splice(65536);
	will_poll2(1, 0, POLLIN);
	assert_int_equal(relay_run(&r), -EALREADY);
	assert_true(sys_mock_trace_has("poll(5:i,9:i;1000)=1"));
	assert_int_equal(r.b.moved, 65536);
	assert_pipe_closed();
}

/* A limit the body could cross keeps it on the copy path's check. */
static void test_body_that_could_pass_its_limit_is_copied(void **state)
{
	const size_t rest = PROXY_SPLICE_MIN;
	struct relay r;

	(void)state;
	relay_init(&r, rest, 0);
	r.b.limit = rest - 1;
	will_readable();
	will_recv(data, rest);
	assert_int_equal(relay_run(&r), -EFBIG);
	assert_int_equal(r.b.spliced, 0);
	assert_int_equal(r.to->payload, 0);
}

/* ---- the real kernel: socketpairs, under the torture injector ---- */

#define T_BUFFERED (16 * 1024)
#define T_TOTAL	   (160 * 1024)

struct body_torture {
	int src[2], dst[2]; /* [0]: the relay's end */
	char in[T_TOTAL];
	char cbuf[PROXY_UPSTREAM_BUF];
	uint64_t spliced; /* of the last run */
};

static void big_sndbuf(int fd)
{
	int size = 1 << 20;

	assert_int_equal(
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
}

static struct sys *body_torture_setup(void *arg)
{
	struct body_torture *t = arg;
	size_t off = T_BUFFERED;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, t->src), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, t->dst), 0);
	big_sndbuf(t->src[1]);
	big_sndbuf(t->dst[0]);
	/* The body's tail waits in the sender's socket (fits its buffer). */
	assert_int_equal(fcntl(t->src[1], F_SETFL, O_NONBLOCK), 0);
	while (off < T_TOTAL) {
		ssize_t n = write(t->src[1], t->in + off, T_TOTAL - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	return sys_posix();
}

static int body_torture_run(struct sys *sys, void *arg)
{
	struct body_torture *t = arg;
	struct proxy_socket_sink ss;
	struct proxy_sink *to;
	struct conn from;
	struct body b;
	int rc;

	proxy_conn_init(&from, sys, t->src[0], t->cbuf, sizeof(t->cbuf));
	memcpy(t->cbuf, t->in, T_BUFFERED);
	from.len = T_BUFFERED;
	to = proxy_sink_socket(&ss, sys, t->dst[0], PROXY_FRAME_LENGTH,
			       T_TOTAL);
	proxy_body_init(&b, HTTP_BODY_LENGTH, T_TOTAL);
	rc = proxy_body_relay(&b, &from, to, 5000);
	t->spliced = b.spliced;
	return rc;
}

/* Success, whatever failed on the way (no pipe, EINVAL: copying), must
 * mean every byte arrived in order. */
static bool body_torture_check(void *arg, int rc, const char *failed)
{
	struct body_torture *t = arg;
	static char out[T_TOTAL + 1];
	size_t got = 0;
	ssize_t n;

	if (rc != 0)
		return false;
	/* Nothing failed: all but the buffered part went through the pipe. */
	if (!failed)
		assert_int_equal(t->spliced, T_TOTAL - T_BUFFERED);
	assert_int_equal(fcntl(t->dst[1], F_SETFL, O_NONBLOCK), 0);
	while ((n = read(t->dst[1], out + got, sizeof(out) - got)) > 0)
		got += (size_t)n;
	assert_int_equal(got, T_TOTAL);
	assert_memory_equal(out, t->in, T_TOTAL);
	return true;
}

static void body_torture_teardown(void *arg)
{
	struct body_torture *t = arg;

	for (int i = 0; i < 2; i++) {
		close(t->src[i]);
		close(t->dst[i]);
	}
}

static void test_torture_the_splice_path(void **state)
{
	static struct body_torture t;
	struct torture_op op = {
		.name = "body relay, splice path",
		.set = TORTURE_NET_IO | TORTURE_NET_SETUP,
		.err = -ECONNRESET,
		.setup = body_torture_setup,
		.run = body_torture_run,
		.check = body_torture_check,
		.teardown = body_torture_teardown,
	};
	long n;

	(void)state;
	for (size_t i = 0; i < T_TOTAL; i++)
		t.in[i] = (char)(i * 7 + i / 251);
	/* send, pipe, then poll + splice in + splice out per pipeful */
	n = torture_run(&op, &t);
	print_message("body: %ld calls failed in turn (ECONNRESET)\n", n);
	assert_true(n >= 5);
	op.err = -EINVAL; /* the first splice: copying takes over */
	assert_true(torture_run(&op, &t) >= 5);
	op.err = -EINVAL;
	op.persistent = true;
	assert_true(torture_run(&op, &t) >= 5);
}

/* ---- the cache's size check, before any write begins ---- */

static void test_store_fits_follows_max_object_size(void **state)
{
	struct sys_memfs *fs = sys_memfs_new();
	struct cache_store_opts opts;
	struct cache_store *st;

	(void)state;
	cache_store_opts_default(&opts);
	opts.dir = "/cache";
	opts.max_object_size = 1000;
	assert_int_equal(cache_store_open_dir(sys_memfs_sys(fs), &opts, &st),
			 0);
	assert_true(cache_store_fits(st, 0));
	assert_true(cache_store_fits(st, 1000));
	assert_false(cache_store_fits(st, 1001));
	cache_store_set_limits(st, opts.max_size, 2000); /* a reload */
	assert_true(cache_store_fits(st, 1001));
	/* Nothing was written to decide it. */
	assert_int_equal(sys_memfs_count_files(fs, "/cache/tmp/"), 0);
	cache_store_close(st);
	sys_memfs_free(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_large_body_is_spliced_after_the_buffered_part),
		cmocka_unit_test(test_body_below_the_threshold_is_copied),
		cmocka_unit_test(test_teed_body_is_copied),
		cmocka_unit_test(test_chunked_and_discard_sinks_cannot_splice),
		cmocka_unit_test(test_splice_unsupported_falls_back_to_copying),
		cmocka_unit_test(test_no_pipe_falls_back_to_copying),
		cmocka_unit_test(test_einval_after_bytes_moved_is_an_error),
		cmocka_unit_test(test_sender_reset_mid_body_is_its_error),
		cmocka_unit_test(test_sender_closing_early_is_a_cut_body),
		cmocka_unit_test(
			test_receiver_gone_mid_body_is_the_sinks_error),
		cmocka_unit_test(test_receiver_send_timeout_is_etimedout),
		cmocka_unit_test(test_silent_sender_times_out),
		cmocka_unit_test(test_spurious_readiness_waits_again),
		cmocka_unit_test(test_body_allowance_bounds_the_wait),
		cmocka_unit_test(test_watched_descriptor_interrupts_an_upload),
		cmocka_unit_test(test_body_that_could_pass_its_limit_is_copied),
		cmocka_unit_test(test_torture_the_splice_path),
		cmocka_unit_test(test_store_fits_follows_max_object_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
