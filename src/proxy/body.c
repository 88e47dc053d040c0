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
	b->done = kind == HTTP_BODY_NONE ||
		  (kind == HTTP_BODY_LENGTH && length == 0);
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
	ssize_t got;

	if (proxy_sink_flush(b->sink) < 0)
		return b->sink->error;
	got = body_wait(b, from, timeout_ms);
	if (got > 0)
		return 0;
	if (got == 0 && b->kind == HTTP_BODY_UNTIL_CLOSE) {
		b->done = true;
		return 0;
	}
	return got == 0 ? -ECONNABORTED : (int)got;
}

int proxy_body_relay(struct body *b, struct conn *from, struct proxy_sink *to,
		     int timeout_ms)
{
	int rc;

	b->sink = to;
	while (!b->done) {
		if (from->len == 0) {
			rc = body_refill(b, from, timeout_ms);
			if (rc < 0)
				return rc;
			if (b->done)
				break;
		}
		ssize_t n = body_take(b, proxy_conn_data(from), from->len);
		if (n < 0)
			return (int)n;
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
