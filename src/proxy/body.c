/*
 * A socket with a fixed receive buffer, and the body relay through it.
 *
 * The relay reads a body in the framing its sender chose and hands the
 * payload to a sink (sink.h): Content-Length and close-delimited bodies
 * are identity, so payload is a slice of the receive buffer as it came; a
 * chunked body goes through the chunk scanner, whose on_data callback
 * gives the runs of payload between the framing.  The framing bytes
 * themselves go nowhere: the sink writes its own.  Bodies stream through
 * the buffer, so a 1 GiB upload or download costs the same memory as a
 * 1 KiB one.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "proxy_int.h"

void proxy_conn_init(struct conn *c, struct sys *sys, int fd, char *buf,
		     size_t cap)
{
	c->sys = sys;
	c->fd = fd;
	c->buf = buf;
	c->cap = cap;
	c->start = 0;
	c->len = 0;
	c->eof = false;
}

/* Make room at the end of the buffer; false when it is full. */
static bool conn_compact(struct conn *c)
{
	if (c->start > 0) {
		memmove(c->buf, c->buf + c->start, c->len);
		c->start = 0;
	}
	return c->len < c->cap;
}

ssize_t proxy_conn_fill(struct conn *c, int timeout_ms)
{
	ssize_t n;

	if (!conn_compact(c))
		return -ENOBUFS;
	n = net_recv(c->sys, c->fd, c->buf + c->len, c->cap - c->len,
		     timeout_ms);
	if (n == 0)
		c->eof = true;
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

void proxy_conn_consume(struct conn *c, size_t n)
{
	c->start += n;
	c->len -= n;
	if (c->len == 0)
		c->start = 0;
}

void proxy_body_init(struct body *b, enum http_body kind, uint64_t length)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->remaining = length;
	b->watch_fd = -1;
	b->send_fd = -1;
	b->done = kind == HTTP_BODY_NONE ||
		  (kind == HTTP_BODY_LENGTH && length == 0);
}

int64_t proxy_rate_allowance_ms(int base_ms, unsigned min_rate, uint64_t bytes)
{
	uint64_t extra;

	if (min_rate == 0)
		return INT64_MAX;
	/* One second per min_rate bytes: bytes * 1000 / rate, no overflow. */
	if (bytes / min_rate > (uint64_t)INT64_MAX / 2000)
		return INT64_MAX;
	extra = bytes / min_rate * 1000 + bytes % min_rate * 1000 / min_rate;
	return (int64_t)extra + (base_ms > 0 ? base_ms : 0);
}

void proxy_body_set_rates(struct body *b, const struct proxy_settings *set,
			  int64_t now_ms, bool source_rate, int send_fd)
{
	b->start_ms = now_ms;
	b->base_ms = set->request_body_timeout_ms;
	b->min_rate = source_rate ? set->min_body_rate : 0;
	b->min_send_rate = send_fd >= 0 ? set->min_send_rate : 0;
	b->send_fd = send_fd;
}

/*
 * How long the next wait for the sender may last: the per-wait timeout,
 * cut to what is left of the body's allowance; -ETIMEDOUT when none is.
 */
static int source_wait_ms(const struct body *b, struct sys *sys, int timeout_ms)
{
	int64_t allowance, left;

	if (b->min_rate == 0 || b->base_ms <= 0)
		return timeout_ms;
	allowance = proxy_rate_allowance_ms(b->base_ms, b->min_rate, b->moved);
	if (allowance == INT64_MAX)
		return timeout_ms;
	left = b->start_ms + allowance - sys_now_mono_ms(sys);
	if (left <= 0)
		return -ETIMEDOUT;
	if (timeout_ms >= 0 && left > timeout_ms)
		return timeout_ms;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/*
 * Before writing to a slow reader: what is left of the sink's allowance
 * bounds each send (SO_SNDTIMEO), so one blocked send cannot outlast it.
 * -ETIMEDOUT once it is spent.
 */
static int send_budget(struct body *b, struct sys *sys, int per_send_ms)
{
	int64_t left;

	if (b->min_send_rate == 0 || b->base_ms <= 0)
		return 0;
	left = proxy_rate_allowance_ms(b->base_ms, b->min_send_rate,
				       b->sink->wire) -
	       b->send_spent_ms;
	if (left <= 0) {
		b->send_slow = true;
		return -ETIMEDOUT;
	}
	if (left < per_send_ms) {
		net_set_send_timeout(sys, b->send_fd, (int)left);
		b->send_timeout_cut = true;
	}
	return 0;
}

/* Payload to the sink, unless it would take the body past its limit. */
static void body_emit(struct body *b, const char *data, size_t len)
{
	if (b->limit && b->sink->payload + len > b->limit) {
		b->over_limit = true;
		return;
	}
	if (!b->over_limit)
		proxy_sink_write(b->sink, data, len);
}

/* Each run of chunk payload the scanner finds goes to the sink. */
static void chunk_payload(void *arg, const char *data, size_t len)
{
	body_emit(arg, data, len);
}

/*
 * Decode what is buffered: hand its payload to the sink and return how
 * many bytes of data belong to the body; <0 on bad framing.
 */
static ssize_t body_take(struct body *b, const char *data, size_t len)
{
	ssize_t n;

	switch (b->kind) {
	case HTTP_BODY_NONE:
		b->done = true;
		return 0;
	case HTTP_BODY_LENGTH:
		n = (ssize_t)(b->remaining < len ? b->remaining : len);
		b->remaining -= (uint64_t)n;
		b->done = b->remaining == 0;
		body_emit(b, data, (size_t)n);
		return n;
	case HTTP_BODY_CHUNKED:
		n = http_chunked_scan(&b->chunked, data, len, chunk_payload, b);
		if (n < 0) {
			/* Keep parse codes and errno values apart. */
			b->framing_error = (int)n;
			return -EPROTO;
		}
		b->done = b->chunked.done;
		return n;
	case HTTP_BODY_UNTIL_CLOSE:
		body_emit(b, data, len);
		return (ssize_t)len;
	}
	return -EINVAL;
}

/*
 * Wait for more of the body.  With a watched descriptor, the wait also
 * ends when that one becomes readable (-EALREADY): an origin answering
 * while the upload still streams.
 */
static ssize_t body_wait(struct body *b, struct conn *from, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = from->fd, .events = POLLIN},
			      {.fd = b->watch_fd, .events = POLLIN}};
	int rc;

	if (b->watch_fd < 0)
		return proxy_conn_fill(from, timeout_ms);
	rc = sys_poll(from->sys, p, 2, timeout_ms);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ETIMEDOUT;
	if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
		return -EALREADY;
	return proxy_conn_fill(from, -1); /* readable: no second poll */
}

/* The source ran dry: 0 (more arrived, or a close that ends the body). */
static int body_refill(struct body *b, struct conn *from, int timeout_ms)
{
	int64_t t0 = sys_now_mono_ms(from->sys);
	int wait_ms;
	ssize_t got;

	if (send_budget(b, from->sys, timeout_ms) < 0)
		return -ETIMEDOUT;
	if (proxy_sink_flush(b->sink) < 0) {
		b->send_slow = b->min_send_rate && b->sink->error == -ETIMEDOUT;
		return b->sink->error;
	}
	b->send_spent_ms += sys_now_mono_ms(from->sys) - t0;
	wait_ms = source_wait_ms(b, from->sys, timeout_ms);
	if (wait_ms == -ETIMEDOUT)
		return -ETIMEDOUT;
	got = body_wait(b, from, wait_ms);
	if (got > 0)
		return 0;
	if (got == 0 && b->kind == HTTP_BODY_UNTIL_CLOSE) {
		b->done = true;
		return 0;
	}
	return got == 0 ? -ECONNABORTED : (int)got;
}

/* ---- zero copy: socket -> pipe -> socket (issue 13) ---- */

/*
 * A large identity body between two sockets need not pass through our
 * buffer at all: splice(2) moves the pages the kernel already holds from
 * the sender's socket into a pipe and from the pipe into the receiver's
 * socket, two system calls per pipeful and no copy to or from user space
 * (the copy path makes the same two calls, recv and send, and copies
 * every byte twice).  It is taken only when nothing has to look at the
 * bytes: Content-Length in and out (no framing to decode or make), no
 * tee (a store being written needs them in memory), no limit that could
 * be crossed, and at least PROXY_SPLICE_MIN left to move; whatever was
 * already in the buffer goes first, through the sink's write.
 *
 * PROXY_SPLICE_MIN (64 KiB) by measurement: wrk, 10 clients, no-store
 * bodies through the proxy from nginx, copy vs splice, CPU ms per request
 * (req/s): 128 KiB 0.152 vs 0.130 (4,291 vs 4,529), 256 KiB 0.202 vs
 * 0.217 (1,830 vs 2,840), 1 MiB 0.801 vs 0.570 (637 vs 825).  Splice
 * already pays at the smallest body that takes it: the first receive of
 * the head brings up to a buffer of body, so only bodies past ~64 KiB
 * ever have 64 KiB left here.
 *
 * The pipe is made for the body and closed after it (pipe2 and two
 * closes: 2-3 us, measured; a 128 KiB body takes ~130 us of CPU) rather
 * than kept per worker: a pipe left holding bytes after an error would
 * hand them to the next body, so a kept one would need the same "close it
 * when in doubt" rule anyway, and one made here is never shared by
 * mistake.
 *
 * Every guarantee of the copy path holds: each wait for the sender is
 * bounded by timeout_ms and the body's allowance (source_wait_ms), each
 * write by the sink's send timeout and --min-send-rate (send_budget), a
 * sender that closes early is -ECONNABORTED, the sink's failures are its
 * sticky error, and moved/payload/wire count the same bytes.
 */

/* At most this much is asked of one splice into the pipe: the pipe takes
 * what it holds (16 pages by default) and says how much that was. */
#define SPLICE_ASK ((uint64_t)1 << 20)

static bool body_may_splice(const struct body *b, const struct conn *from)
{
	return b->kind == HTTP_BODY_LENGTH && !b->no_splice && from->len == 0 &&
	       b->remaining >= PROXY_SPLICE_MIN &&
	       proxy_sink_can_splice(b->sink) &&
	       (b->limit == 0 || b->sink->payload + b->remaining <= b->limit);
}

/* Wait until the sender has bytes (0), or the watched descriptor spoke. */
static int splice_wait(const struct body *b, struct conn *from, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = from->fd, .events = POLLIN},
			      {.fd = b->watch_fd, .events = POLLIN}};
	nfds_t n = b->watch_fd >= 0 ? 2 : 1;
	int rc = sys_poll(from->sys, p, n, timeout_ms);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ETIMEDOUT;
	if (n == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
		return -EALREADY;
	return 0;
}

/* The pipe's n bytes to the sink, timed and budgeted as body_take's. */
static int splice_out(struct body *b, struct sys *sys, int pipe_rd, size_t n,
		      int timeout_ms)
{
	int64_t t0;
	int rc;

	if (send_budget(b, sys, timeout_ms) < 0)
		return -ETIMEDOUT;
	t0 = sys_now_mono_ms(sys);
	rc = proxy_sink_from_pipe(b->sink, pipe_rd, n);
	b->send_spent_ms += sys_now_mono_ms(sys) - t0;
	if (rc == -ETIMEDOUT && b->min_send_rate)
		b->send_slow = true;
	return rc;
}

/*
 * One pipeful: wait for the sender, splice what it has into the pipe,
 * then all of it on to the sink.  0 (go on), 1 (this socket cannot
 * splice: nothing moved, copy instead) or a negative errno.
 */
static int splice_step(struct body *b, struct conn *from, const int pipe_fds[2],
		       int timeout_ms)
{
	int wait_ms = source_wait_ms(b, from->sys, timeout_ms);
	uint64_t ask = b->remaining < SPLICE_ASK ? b->remaining : SPLICE_ASK;
	ssize_t n;
	int rc;

	if (wait_ms == -ETIMEDOUT)
		return -ETIMEDOUT;
	rc = splice_wait(b, from, wait_ms);
	if (rc < 0)
		return rc;
	n = sys_splice(from->sys, from->fd, pipe_fds[1], (size_t)ask,
		       PROXY_SPLICE_F_MOVE | PROXY_SPLICE_F_NONBLOCK);
	if (n == -EAGAIN || n == -EWOULDBLOCK)
		return 0; /* readable, yet nothing: wait again */
	if ((n == -EINVAL || n == -ENOSYS) && b->spliced == 0)
		return 1;
	if (n == 0) {
		from->eof = true;
		return -ECONNABORTED; /* closed before the body ended */
	}
	if (n < 0)
		return (int)n;
	/* Taken, whatever becomes of it: the sender did send it. */
	b->moved += (uint64_t)n;
	b->remaining -= (uint64_t)n;
	b->spliced += (uint64_t)n;
	return splice_out(b, from->sys, pipe_fds[0], (size_t)n, timeout_ms);
}

/*
 * The rest of the body through a pipe of its own.  0 when the body is
 * done or the copy path must take over (b->no_splice); <0 on failure.
 * The pipe is closed either way: after an error it may hold bytes.
 */
static int body_splice(struct body *b, struct conn *from, int timeout_ms)
{
	int pipe_fds[2], rc = 0;

	if (sys_pipe(from->sys, pipe_fds) < 0) {
		b->no_splice = true; /* no pipe: copy */
		return 0;
	}
	while (rc == 0 && b->remaining > 0)
		rc = splice_step(b, from, pipe_fds, timeout_ms);
	sys_close(from->sys, pipe_fds[0]);
	sys_close(from->sys, pipe_fds[1]);
	if (rc == 1) {
		b->no_splice = true;
		return 0;
	}
	b->done = rc == 0;
	return rc;
}

int proxy_body_relay(struct body *b, struct conn *from, struct proxy_sink *to,
		     int timeout_ms)
{
	int rc;

	b->sink = to;
	while (!b->done) {
		if (body_may_splice(b, from)) {
			rc = body_splice(b, from, timeout_ms);
			if (rc < 0)
				return rc;
			continue; /* done, or the copy path takes over */
		}
		if (from->len == 0) {
			rc = body_refill(b, from, timeout_ms);
			if (rc < 0)
				return rc;
			if (b->done)
				break;
		}
		int64_t t0 = sys_now_mono_ms(from->sys);
		ssize_t n = body_take(b, proxy_conn_data(from), from->len);
		if (n < 0)
			return (int)n;
		/* Writing happens in body_take: its time is the sink's. */
		b->send_spent_ms += sys_now_mono_ms(from->sys) - t0;
		/* Taken, whatever became of it: the sender did send it. */
		b->moved += (uint64_t)n;
		proxy_conn_consume(from, (size_t)n);
		if (to->error)
			return to->error;
		if (b->over_limit)
			return -EFBIG;
	}
	return proxy_sink_finish(to);
}
