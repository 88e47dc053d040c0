/*
 * Body sinks: where the payload of a body goes once its framing has been
 * decoded.  The body relay (body.c) reads a message body in whatever
 * framing the sender used (Content-Length, chunked, until close), turns
 * it into payload and hands the payload to a sink, which frames it again
 * for its receiver.  Nothing of the sender's framing is ever copied: a
 * chunked body leaves as canonical chunks (lower-case hex size, CRLF, no
 * extensions, "0\r\n\r\n" at the end), whatever the sender wrote.
 *
 * A sink takes slices of the caller's buffer and either sends them at
 * once or copies them into a store of its own: no sink holds on to a
 * slice after write() returns.  Errors are sticky: after the first
 * failure every write and finish returns the same error.
 *
 *   proxy_sink_write(s, data, len)   more payload; 0 or a negative errno
 *   proxy_sink_flush(s)              about to wait for more input: push out
 *                                    anything held back (a chunk's CRLF)
 *   proxy_sink_finish(s)             the payload is complete: end framing
 *   proxy_sink_from_pipe(s, fd, len) payload waiting in a pipe (splice),
 *                                    when proxy_sink_can_splice(s)
 *
 * Implementations: a socket framing for its receiver (proxy_sink_socket),
 * a discard sink that drains (proxy_sink_discard), and a tee of two sinks
 * that keeps feeding one when the other fails (proxy_sink_tee).  The cache
 * adds a store writer, teed with the client socket.
 */
#ifndef GLASSPROXY_PROXY_SINK_H
#define GLASSPROXY_PROXY_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "glassproxy/sys.h"

struct proxy_sink;

struct proxy_sink_ops {
	int (*write)(struct proxy_sink *s, const char *data, size_t len);
	int (*flush)(struct proxy_sink *s); /* may be NULL: nothing held */
	int (*finish)(struct proxy_sink *s);
	/*
	 * May be NULL: the sink cannot take bytes from a pipe.  Move len
	 * bytes of payload waiting in the pipe pipe_rd to the receiver as
	 * they are (splice(2)): only a socket sink with identity framing
	 * has it, so a tee (a store being written), a discard or a chunked
	 * receiver keep every byte passing through write().
	 */
	int (*from_pipe)(struct proxy_sink *s, int pipe_rd, size_t len);
};

struct proxy_sink {
	const struct proxy_sink_ops *ops;
	void *ctx;	  /* the implementation's state */
	uint64_t payload; /* payload bytes accepted */
	uint64_t wire;	  /* bytes the receiver got, framing included */
	int error;	  /* the first failure, 0 while all is well */
	bool finished;
};

int proxy_sink_write(struct proxy_sink *s, const char *data, size_t len);
int proxy_sink_flush(struct proxy_sink *s);
int proxy_sink_finish(struct proxy_sink *s);
/*
 * The zero-copy path (body.c): may payload go to this sink straight from
 * a pipe?  Then proxy_sink_from_pipe() moves len bytes waiting in pipe_rd
 * (all of them, or a sticky error: the pipe may then still hold some).
 */
bool proxy_sink_can_splice(const struct proxy_sink *s);
int proxy_sink_from_pipe(struct proxy_sink *s, int pipe_rd, size_t len);

/* Linux's SPLICE_F_MOVE and SPLICE_F_NONBLOCK, for sys_splice(): <fcntl.h>
 * has them only under _GNU_SOURCE, and the proxy is plain POSIX. */
#define PROXY_SPLICE_F_MOVE	0x01u
#define PROXY_SPLICE_F_NONBLOCK 0x02u

/* How a socket sink frames the payload for its receiver. */
enum proxy_framing {
	PROXY_FRAME_LENGTH,  /* identity; exactly `length` bytes, announced */
	PROXY_FRAME_CHUNKED, /* canonical chunked coding, no trailers */
	PROXY_FRAME_CLOSE,   /* identity; the end is the close (HTTP/1.0) */
};

struct proxy_socket_sink {
	struct proxy_sink sink;
	struct sys *sys;
	int fd;
	enum proxy_framing framing;
	uint64_t length;  /* PROXY_FRAME_LENGTH: what the head announced */
	bool crlf_owed;	  /* chunked: the last chunk's CRLF not sent yet */
	bool any_chunk;	  /* chunked: at least one chunk went out */
};

/*
 * A sink sending to fd.  PROXY_FRAME_LENGTH refuses payload past length
 * (-EOVERFLOW) and a finish short of it (-EPIPE): a body never leaves
 * framed differently from what its head announced.
 */
struct proxy_sink *proxy_sink_socket(struct proxy_socket_sink *s,
				     struct sys *sys, int fd,
				     enum proxy_framing framing,
				     uint64_t length);

/* A sink that counts and forgets: draining a body nobody wants. */
struct proxy_sink *proxy_sink_discard(struct proxy_sink *s);

struct proxy_tee_sink {
	struct proxy_sink sink;
	struct proxy_sink *a, *b;
};

/*
 * Both a and b get every byte.  When one fails the tee keeps feeding the
 * other and keeps going (its own error stays 0); it fails only when both
 * have.  proxy_sink_tee_failed() says which failed: bit 1 for a, 2 for b.
 * payload counts what the tee accepted; wire mirrors a's (a is the
 * receiver whose bytes the access log counts: the client).
 */
struct proxy_sink *proxy_sink_tee(struct proxy_tee_sink *t,
				  struct proxy_sink *a, struct proxy_sink *b);
unsigned proxy_sink_tee_failed(const struct proxy_tee_sink *t);

struct cache_store_writer;

/*
 * A sink appending the payload to a cache store writer.  Its finish does
 * not commit: only the caller knows whether the body ended well framed.
 * Teed after the client socket, its failure (-EFBIG past
 * --max-object-size, -ENOSPC, -EIO) never disturbs the client.
 */
struct proxy_store_sink {
	struct proxy_sink sink;
	struct cache_store_writer *w;
};
struct proxy_sink *proxy_sink_store(struct proxy_store_sink *s,
				    struct cache_store_writer *w);


#endif
