/*
 * The body sinks of sink.h: a socket framing its receiver's way (which
 * can also take identity payload straight from a pipe), a discard sink,
 * a tee and the store writer.
 */
#include <errno.h>
#include <string.h>

#include "glassproxy/cache.h"
#include "glassproxy/net.h"
#include "glassproxy/parse.h"
#include "sink.h"

int proxy_sink_write(struct proxy_sink *s, const char *data, size_t len)
{
	int rc;

	if (s->error || len == 0)
		return s->error;
	rc = s->ops->write(s, data, len);
	if (rc < 0)
		s->error = rc;
	else
		s->payload += len;
	return s->error;
}

int proxy_sink_flush(struct proxy_sink *s)
{
	int rc;

	if (s->error || !s->ops->flush)
		return s->error;
	rc = s->ops->flush(s);
	if (rc < 0)
		s->error = rc;
	return s->error;
}

int proxy_sink_finish(struct proxy_sink *s)
{
	int rc;

	if (s->error || s->finished)
		return s->error;
	rc = s->ops->finish(s);
	if (rc < 0)
		s->error = rc;
	s->finished = s->error == 0;
	return s->error;
}

bool proxy_sink_can_splice(const struct proxy_sink *s)
{
	return s->ops->from_pipe && !s->error;
}

int proxy_sink_from_pipe(struct proxy_sink *s, int pipe_rd, size_t len)
{
	int rc;

	if (s->error || len == 0)
		return s->error;
	rc = s->ops->from_pipe ? s->ops->from_pipe(s, pipe_rd, len) : -ENOTSUP;
	if (rc < 0)
		s->error = rc;
	else
		s->payload += len;
	return s->error;
}

/* ---- the socket sink ---- */

static int socket_send(struct proxy_socket_sink *s, const char *p, size_t n)
{
	int rc = net_send_all(s->sys, s->fd, p, n);

	if (rc == 0)
		s->sink.wire += n;
	return rc;
}

/*
 * One chunk per write: "\r\n" owed by the previous chunk and this one's
 * size line go out in one send, then the payload straight from the
 * caller's buffer, so the only bytes copied are the few of the framing.
 */
static int chunk_write(struct proxy_socket_sink *s, const char *data,
		       size_t len)
{
	char head[2 + HTTP_CHUNK_HEAD_MAX];
	size_t n = 0;
	int rc;

	/* A zero-size chunk would end the body: an empty run sends nothing. */
	if (len == 0)
		return 0;
	if (s->crlf_owed) {
		memcpy(head, "\r\n", 2);
		n = 2;
	}
	n += http_chunk_head(len, head + n);
	rc = socket_send(s, head, n);
	if (rc == 0)
		rc = socket_send(s, data, len);
	s->crlf_owed = rc == 0;
	s->any_chunk = true;
	return rc;
}

static int socket_write(struct proxy_sink *sink, const char *data, size_t len)
{
	struct proxy_socket_sink *s = sink->ctx;

	switch (s->framing) {
	case PROXY_FRAME_CHUNKED:
		return chunk_write(s, data, len);
	case PROXY_FRAME_LENGTH:
		if (len > s->length - sink->payload)
			return -EOVERFLOW;
		return socket_send(s, data, len);
	case PROXY_FRAME_CLOSE:
		return socket_send(s, data, len);
	}
	return -EINVAL;
}

static int socket_flush(struct proxy_sink *sink)
{
	struct proxy_socket_sink *s = sink->ctx;
	int rc = 0;

	if (s->crlf_owed) {
		rc = socket_send(s, "\r\n", 2);
		s->crlf_owed = false;
	}
	return rc;
}

static int socket_finish(struct proxy_sink *sink)
{
	struct proxy_socket_sink *s = sink->ctx;

	switch (s->framing) {
	case PROXY_FRAME_CHUNKED:
		/* The last chunk, and no trailer fields (RFC 9112 7.1). */
		if (s->crlf_owed) {
			s->crlf_owed = false;
			return socket_send(s, "\r\n0\r\n\r\n", 7);
		}
		return socket_send(s, "0\r\n\r\n", 5);
	case PROXY_FRAME_LENGTH:
		return sink->payload == s->length ? 0 : -EPIPE;
	case PROXY_FRAME_CLOSE:
		return 0;
	}
	return -EINVAL;
}

/*
 * The pages the origin's socket put in the pipe go on to this socket
 * without ever being copied into user space (splice(2)).  The socket
 * blocks with SO_SNDTIMEO, as for send(): a send that times out gives
 * -EAGAIN, -ETIMEDOUT here as in net_send_all().  splice cannot pass
 * MSG_NOSIGNAL, but SIGPIPE is ignored (sys_signals_block()): a client
 * that went away is -EPIPE or -ECONNRESET.
 */
static int socket_from_pipe(struct proxy_sink *sink, int pipe_rd, size_t len)
{
	struct proxy_socket_sink *s = sink->ctx;

	if (s->framing == PROXY_FRAME_LENGTH && len > s->length - sink->payload)
		return -EOVERFLOW;
	while (len > 0) {
		ssize_t n = sys_splice(s->sys, pipe_rd, s->fd, len,
				       PROXY_SPLICE_F_MOVE);

		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return -ETIMEDOUT;
		if (n <= 0) /* 0: the pipe ran dry, which cannot be */
			return n == 0 ? -EPIPE : (int)n;
		sink->wire += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Chunked framing goes through write(): no from_pipe. */
static const struct proxy_sink_ops socket_chunked_ops = {
	.write = socket_write,
	.flush = socket_flush,
	.finish = socket_finish,
};

/* Identity framing (Content-Length, close): the payload is the bytes. */
static const struct proxy_sink_ops socket_identity_ops = {
	.write = socket_write,
	.flush = socket_flush,
	.finish = socket_finish,
	.from_pipe = socket_from_pipe,
};

struct proxy_sink *proxy_sink_socket(struct proxy_socket_sink *s,
				     struct sys *sys, int fd,
				     enum proxy_framing framing,
				     uint64_t length)
{
	memset(s, 0, sizeof(*s));
	s->sink.ops = framing == PROXY_FRAME_CHUNKED ? &socket_chunked_ops
						     : &socket_identity_ops;
	s->sink.ctx = s;
	s->sys = sys;
	s->fd = fd;
	s->framing = framing;
	s->length = length;
	return &s->sink;
}

/* ---- the discard sink ---- */

static int discard_write(struct proxy_sink *s, const char *data, size_t len)
{
	(void)data;
	s->wire += len;
	return 0;
}

static int discard_finish(struct proxy_sink *s)
{
	(void)s;
	return 0;
}

static const struct proxy_sink_ops discard_ops = {
	.write = discard_write,
	.finish = discard_finish,
};

struct proxy_sink *proxy_sink_discard(struct proxy_sink *s)
{
	memset(s, 0, sizeof(*s));
	s->ops = &discard_ops;
	s->ctx = s;
	return s;
}

/* ---- the tee ---- */

/* Each side has its own sticky error: a failed one is simply skipped. */
static int tee_result(struct proxy_tee_sink *t)
{
	t->sink.wire = t->a->wire;
	if (t->a->error && t->b->error)
		return t->a->error;
	return 0;
}

static int tee_write(struct proxy_sink *sink, const char *data, size_t len)
{
	struct proxy_tee_sink *t = sink->ctx;

	proxy_sink_write(t->a, data, len);
	proxy_sink_write(t->b, data, len);
	return tee_result(t);
}

static int tee_flush(struct proxy_sink *sink)
{
	struct proxy_tee_sink *t = sink->ctx;

	proxy_sink_flush(t->a);
	proxy_sink_flush(t->b);
	return tee_result(t);
}

static int tee_finish(struct proxy_sink *sink)
{
	struct proxy_tee_sink *t = sink->ctx;

	proxy_sink_finish(t->a);
	proxy_sink_finish(t->b);
	return tee_result(t);
}

static const struct proxy_sink_ops tee_ops = {
	.write = tee_write,
	.flush = tee_flush,
	.finish = tee_finish,
};

struct proxy_sink *proxy_sink_tee(struct proxy_tee_sink *t,
				  struct proxy_sink *a, struct proxy_sink *b)
{
	memset(t, 0, sizeof(*t));
	t->sink.ops = &tee_ops;
	t->sink.ctx = t;
	t->a = a;
	t->b = b;
	return &t->sink;
}

unsigned proxy_sink_tee_failed(const struct proxy_tee_sink *t)
{
	return (t->a->error ? 1u : 0u) | (t->b->error ? 2u : 0u);
}

/* ---- the store writer ---- */

static int store_write(struct proxy_sink *sink, const char *data, size_t len)
{
	struct proxy_store_sink *s = sink->ctx;
	int rc = cache_store_write_append(s->w, data, len);

	if (rc == 0)
		sink->wire += len;
	return rc < 0 ? rc : 0;
}

static int store_finish(struct proxy_sink *sink)
{
	(void)sink;
	return 0;
}

static const struct proxy_sink_ops store_ops = {
	.write = store_write,
	.finish = store_finish,
};

struct proxy_sink *proxy_sink_store(struct proxy_store_sink *s,
				    struct cache_store_writer *w)
{
	memset(s, 0, sizeof(*s));
	s->sink.ops = &store_ops;
	s->sink.ctx = s;
	s->w = w;
	return &s->sink;
}
