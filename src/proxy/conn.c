/*
 * A socket with a fixed receive buffer, and body relaying through it.
 * Bodies stream through the buffer chunk by chunk, so a 1 GiB upload or
 * download costs the same memory as a 1 KiB one.
 */
#include <errno.h>
#include <string.h>

#include "proxy_int.h"

void conn_init(struct conn *c, struct sys *sys, int fd, char *buf, size_t cap)
{
	c->sys = sys;
	c->fd = fd;
	c->buf = buf;
	c->cap = cap;
	c->start = 0;
	c->len = 0;
	c->eof = false;
}

ssize_t conn_fill(struct conn *c, int timeout_ms)
{
	ssize_t n;

	if (c->start > 0) {
		memmove(c->buf, c->buf + c->start, c->len);
		c->start = 0;
	}
	if (c->len == c->cap)
		return -ENOBUFS;
	n = net_recv(c->sys, c->fd, c->buf + c->len, c->cap - c->len,
		     timeout_ms);
	if (n == 0)
		c->eof = true;
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

void conn_consume(struct conn *c, size_t n)
{
	c->start += n;
	c->len -= n;
	if (c->len == 0)
		c->start = 0;
}

void body_init(struct body *b, enum http_body kind, uint64_t length)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->remaining = length;
	b->done = kind == HTTP_BODY_NONE ||
		  (kind == HTTP_BODY_LENGTH && length == 0);
}

/* With b->decode: each run of chunk payload goes straight to the client. */
static void send_decoded(void *arg, const char *data, size_t len)
{
	struct body *b = arg;

	if (b->send_error == 0)
		b->send_error = net_send_all(b->sys, b->to_fd, data, len);
	if (b->send_error == 0)
		b->decoded_sent += len;
}

/* How many of the len bytes at data belong to the body; <0 on bad framing. */
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
		return n;
	case HTTP_BODY_CHUNKED:
		n = http_chunked_scan(&b->chunked, data, len,
				      b->decode ? send_decoded : NULL, b);
		if (n < 0) {
			/* Keep parse codes and errno values apart. */
			b->framing_error = (int)n;
			return -EPROTO;
		}
		b->done = b->chunked.done;
		return n;
	case HTTP_BODY_UNTIL_CLOSE:
		return (ssize_t)len;
	}
	return -EINVAL;
}

int body_relay(struct body *b, struct conn *from, int to_fd, int timeout_ms,
	       uint64_t *moved, bool *to_error)
{
	*to_error = false;
	b->sys = from->sys;
	b->to_fd = to_fd;
	while (!b->done) {
		if (from->len == 0) {
			ssize_t got = conn_fill(from, timeout_ms);
			if (got == 0) {
				if (b->kind == HTTP_BODY_UNTIL_CLOSE) {
					b->done = true;
					break;
				}
				return -ECONNABORTED;
			}
			if (got < 0)
				return (int)got;
		}
		ssize_t n = body_take(b, conn_data(from), from->len);
		if (b->send_error) {
			*to_error = true;
			return b->send_error;
		}
		if (n < 0)
			return (int)n;
		b->moved += (uint64_t)n;
		if (b->limit && b->moved > b->limit)
			return -EFBIG;
		if (b->decode) {
			/* Already sent, payload only, by send_decoded(). */
			*moved += b->decoded_sent;
			b->decoded_sent = 0;
			conn_consume(from, (size_t)n);
		} else if (n > 0) {
			int rc = net_send_all(from->sys, to_fd, conn_data(from),
					      (size_t)n);
			if (rc < 0) {
				*to_error = true;
				return rc;
			}
			*moved += (uint64_t)n;
			conn_consume(from, (size_t)n);
		}
	}
	return 0;
}
