/*
 * The CONNECT relay.  See include/glassproxy/tunnel.h for the contract and
 * docs/tunnel.md for a walk through it in gdb.
 *
 * The tunnel is two independent "halves", one per direction, each a small
 * state machine that only ever does the next thing it can do:
 *
 *   1. it holds bytes (pending > 0)     -> write them to dst
 *   2. src has ended and all is written -> shutdown(dst, SHUT_WR), done
 *   3. otherwise (room, src still open) -> read more from src
 *
 * A step that would block clears the half's "ready" flag for that descriptor
 * (src_ready or dst_ready); one poll() over both sockets sets them again.  So
 * a half waits for POLLOUT on its destination only while it holds bytes, and
 * for POLLIN on its source only while it has room: a slow reader on one side
 * pushes back on the writer on the other instead of filling memory.
 *
 * The bytes a half holds sit either in memory (out points at them: its copy
 * buffer, or the caller's early data) or, when splicing, in the half's pipe
 * (out is NULL).  Either way `pending` counts them.
 */
#include "glassproxy/tunnel.h"

#include <errno.h>
#include <stdlib.h>

/*
 * Linux's values of SPLICE_F_MOVE and SPLICE_F_NONBLOCK.  <fcntl.h> declares
 * them only under _GNU_SOURCE, and this module is plain POSIX: it never calls
 * splice(2) itself, it hands the flags to sys_splice().
 */
#define TUNNEL_SPLICE_F_MOVE	 0x01u
#define TUNNEL_SPLICE_F_NONBLOCK 0x02u
#define TUNNEL_SPLICE_FLAGS	 (TUNNEL_SPLICE_F_MOVE | TUNNEL_SPLICE_F_NONBLOCK)

/*
 * The most one splice from a socket asks for: what a pipe holds by default
 * (16 pages).  It costs no memory of ours, unlike the copy path's buffer.
 */
#define TUNNEL_SPLICE_CHUNK (64 * 1024)

/*
 * Transfers one half may make before the loop polls again (with a zero
 * timeout), so that a direction that is always ready cannot starve the other.
 */
#define TUNNEL_TURN_BUDGET 16

struct tunnel_half {
	const char *name; /* "client->origin": for `p *h` in gdb */
	int src;	  /* read from here ... */
	int dst;	  /* ... and write to here */
	size_t pending;	  /* bytes read from src, not yet written to dst */
	const char *out;  /* where they are if in memory; NULL: in the pipe */
	char *buf;	  /* copy path: the fixed buffer */
	int pipe_rd;	  /* splice path: the pipe, or -1 */
	int pipe_wr;
	bool splicing;	/* this half moves bytes through its pipe */
	bool spliced;	/* a splice from src succeeded: no fallback now */
	bool src_ready; /* src may have bytes (poll said so, no EAGAIN yet) */
	bool dst_ready; /* dst may take bytes */
	bool eof;	/* src will send nothing more (recv returned 0) */
	bool shut;	/* dst's sending side is shut down: half done */
	uint64_t moved; /* bytes written to dst */
};

struct tunnel {
	struct sys *sys;
	int client_fd;
	int origin_fd;
	struct tunnel_half half[2]; /* [0] client->origin, [1] origin->client */
	size_t buffer_size;	    /* copy path: bytes per buffer */
	int idle_ms;		    /* <= 0: no idle timeout */
	int64_t started_ms;
	int64_t last_moved_ms;
	enum tunnel_end end;
	int error; /* the first error wins: the cause, not its echoes */
};

void tunnel_opts_default(struct tunnel_opts *opts)
{
	opts->idle_timeout_ms = TUNNEL_IDLE_TIMEOUT_MS_DEFAULT;
	opts->use_splice = true;
	opts->buffer_size = TUNNEL_BUFFER_SIZE_DEFAULT;
}

const char *tunnel_end_name(enum tunnel_end end)
{
	switch (end) {
	case TUNNEL_END_CLOSED:
		return "closed";
	case TUNNEL_END_CLIENT_RESET:
		return "client_reset";
	case TUNNEL_END_ORIGIN_RESET:
		return "origin_reset";
	case TUNNEL_END_IDLE_TIMEOUT:
		return "idle_timeout";
	case TUNNEL_END_INTERNAL:
		return "internal";
	}
	return "unknown";
}

/* ---- ending ---- */

/* Records why the tunnel ends; returns err so callers can `return` it. */
static int tunnel_fail(struct tunnel *t, enum tunnel_end end, int err)
{
	if (t->error == 0) {
		t->end = end;
		t->error = err;
	}
	return err;
}

/*
 * Errors that say the relay itself is broken (a bad descriptor, a socket
 * that cannot splice after all, no memory) rather than that a peer went away.
 */
static bool tunnel_errno_is_internal(int err)
{
	switch (-err) {
	case EBADF:
	case EFAULT:
	case EINVAL:
	case ENOSYS:
	case ENOTSOCK:
	case ENOMEM:
	case ESPIPE:
		return true;
	}
	return false;
}

/* An error from a call on socket fd: blame that side. */
static int tunnel_side_fail(struct tunnel *t, int fd, int err)
{
	if (tunnel_errno_is_internal(err))
		return tunnel_fail(t, TUNNEL_END_INTERNAL, err);
	return tunnel_fail(t,
			   fd == t->client_fd ? TUNNEL_END_CLIENT_RESET
					      : TUNNEL_END_ORIGIN_RESET,
			   err);
}

static bool tunnel_would_block(ssize_t n)
{
#if EWOULDBLOCK != EAGAIN
	if (n == -EWOULDBLOCK)
		return true;
#endif
	return n == -EAGAIN;
}

static void tunnel_moved(struct tunnel *t)
{
	t->last_moved_ms = sys_now_mono_ms(t->sys);
}

/* ---- one half: setup and release ---- */

static void half_init(struct tunnel_half *h, const char *name, int src, int dst)
{
	h->name = name;
	h->src = src;
	h->dst = dst;
	h->pending = 0;
	h->out = NULL;
	h->buf = NULL;
	h->pipe_rd = -1;
	h->pipe_wr = -1;
	h->splicing = false;
	h->spliced = false;
	h->src_ready = false; /* poll first: most likely nothing has arrived */
	h->dst_ready = true; /* a fresh socket has room: write without asking */
	h->eof = false;
	h->shut = false;
	h->moved = 0;
}

static int half_use_buffer(struct tunnel *t, struct tunnel_half *h)
{
	h->buf = malloc(t->buffer_size);
	if (!h->buf)
		return tunnel_fail(t, TUNNEL_END_INTERNAL, -ENOMEM);
	h->splicing = false;
	return 0;
}

/*
 * A pipe of our own per direction.  Any failure (no splice on this system,
 * or out of descriptors) is not fatal: the half copies through a buffer.
 */
static int half_use_pipe(struct tunnel *t, struct tunnel_half *h)
{
	int fds[2];

	if (sys_pipe(t->sys, fds) < 0)
		return half_use_buffer(t, h);
	h->pipe_rd = fds[0];
	h->pipe_wr = fds[1];
	h->splicing = true;
	return 0;
}

static void half_close_pipe(struct tunnel *t, struct tunnel_half *h)
{
	if (h->pipe_rd >= 0)
		sys_close(t->sys, h->pipe_rd);
	if (h->pipe_wr >= 0)
		sys_close(t->sys, h->pipe_wr);
	h->pipe_rd = -1;
	h->pipe_wr = -1;
}

static void half_release(struct tunnel *t, struct tunnel_half *h)
{
	half_close_pipe(t, h);
	free(h->buf);
	h->buf = NULL;
}

/*
 * The first splice from a socket failed with EINVAL or ENOSYS: this kind of
 * socket (or kernel) cannot splice.  The pipe is still empty, so nothing is
 * lost by switching this half to copying; src stays ready, so the next step
 * retries the read with recv().
 */
static int half_fall_back(struct tunnel *t, struct tunnel_half *h)
{
	half_close_pipe(t, h);
	return half_use_buffer(t, h);
}

/* ---- one half: the three steps ---- */

/* Step 3: take what src has into the buffer or the pipe. */
static int half_read(struct tunnel *t, struct tunnel_half *h)
{
	ssize_t n;

	do {
		if (h->splicing)
			n = sys_splice(t->sys, h->src, h->pipe_wr,
				       TUNNEL_SPLICE_CHUNK,
				       TUNNEL_SPLICE_FLAGS);
		else
			n = sys_recv(t->sys, h->src, h->buf, t->buffer_size, 0);
	} while (n == -EINTR);

	if (n > 0) {
		h->pending = (size_t)n;
		h->out = h->splicing ? NULL : h->buf;
		h->spliced = h->spliced || h->splicing;
		tunnel_moved(t);
		return 0;
	}
	if (n == 0) {
		h->eof = true; /* the peer shut down its sending side */
		return 0;
	}
	if (tunnel_would_block(n)) {
		h->src_ready = false;
		return 0;
	}
	if (h->splicing && !h->spliced && (n == -EINVAL || n == -ENOSYS))
		return half_fall_back(t, h);
	return tunnel_side_fail(t, h->src, (int)n);
}

/* Step 1: write what the half holds; a partial write leaves the rest. */
static int half_write(struct tunnel *t, struct tunnel_half *h)
{
	ssize_t n;

	do {
		if (h->out)
			n = sys_send(t->sys, h->dst, h->out, h->pending,
				     MSG_NOSIGNAL);
		else
			n = sys_splice(t->sys, h->pipe_rd, h->dst, h->pending,
				       TUNNEL_SPLICE_FLAGS);
	} while (n == -EINTR);

	if (n > 0) {
		h->pending -= (size_t)n;
		h->moved += (uint64_t)n;
		if (h->out)
			h->out += n;
		tunnel_moved(t);
		return 0;
	}
	if (tunnel_would_block(n)) {
		h->dst_ready = false;
		return 0;
	}
	if (n == 0) /* a stream socket that takes nothing is gone */
		return tunnel_side_fail(t, h->dst, -EPIPE);
	return tunnel_side_fail(t, h->dst, (int)n);
}

/* Step 2: pass the end of the stream on to the other side. */
static int half_shut(struct tunnel *t, struct tunnel_half *h)
{
	int rc;

	if (h->shut)
		return 0;
	h->shut = true;
	rc = sys_shutdown(t->sys, h->dst, SHUT_WR);
	/*
	 * ENOTCONN: the other side has already gone away entirely, so there
	 * is nobody left to tell; the opposite half finds out on its own.
	 */
	if (rc < 0 && rc != -ENOTCONN)
		return tunnel_side_fail(t, h->dst, rc);
	return 0;
}

/*
 * Runs one half until it must wait for poll, it is done, or it has used its
 * turn.  Returns 1 when it used its whole turn (it may well have more to do
 * right away), 0 when it waits or is done, or a negative error.
 */
static int half_pump(struct tunnel *t, struct tunnel_half *h)
{
	int rc;

	for (int turn = 0; turn < TUNNEL_TURN_BUDGET; turn++) {
		if (h->pending > 0) {
			if (!h->dst_ready)
				return 0; /* wait for POLLOUT on dst */
			rc = half_write(t, h);
		} else if (h->eof) {
			return half_shut(t, h);
		} else {
			if (!h->src_ready)
				return 0; /* wait for POLLIN on src */
			rc = half_read(t, h);
		}
		if (rc < 0)
			return rc;
	}
	return 1;
}

/* What the half waits for: it holds bytes, or has room and src is open. */
static bool half_wants_dst(const struct tunnel_half *h)
{
	return h->pending > 0 && !h->dst_ready;
}

static bool half_wants_src(const struct tunnel_half *h)
{
	return h->pending == 0 && !h->eof && !h->src_ready;
}

/* ---- the tunnel ---- */

static int tunnel_slot(const struct tunnel *t, int fd)
{
	return fd == t->client_fd ? 0 : 1;
}

/*
 * One poll over both sockets for what the halves wait for.  A socket with
 * nothing to wait for is left out (fd -1, which poll ignores): after a
 * half-close it may report POLLHUP forever, and that must not spin the loop.
 */
static int tunnel_wait(struct tunnel *t, int timeout_ms)
{
	struct pollfd pfd[2] = {
		{.fd = t->client_fd, .events = 0, .revents = 0},
		{.fd = t->origin_fd, .events = 0, .revents = 0},
	};
	int rc;

	for (int i = 0; i < 2; i++) {
		const struct tunnel_half *h = &t->half[i];

		if (half_wants_src(h))
			pfd[tunnel_slot(t, h->src)].events |= POLLIN;
		if (half_wants_dst(h))
			pfd[tunnel_slot(t, h->dst)].events |= POLLOUT;
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].events == 0)
			pfd[i].fd = -1;

	rc = sys_poll(t->sys, pfd, 2, timeout_ms);
	if (rc == -EINTR || rc == 0)
		return 0; /* the caller checks the idle deadline */
	if (rc < 0)
		return tunnel_fail(t, TUNNEL_END_INTERNAL, rc);

	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0 && (pfd[i].revents & POLLNVAL))
			return tunnel_fail(t, TUNNEL_END_INTERNAL, -EBADF);
	/*
	 * POLLHUP and POLLERR wake both directions of a socket: the next recv
	 * returns the end of stream or the error, the next send the error.
	 */
	for (int i = 0; i < 2; i++) {
		struct tunnel_half *h = &t->half[i];
		const struct pollfd *in = &pfd[tunnel_slot(t, h->src)];
		const struct pollfd *out = &pfd[tunnel_slot(t, h->dst)];

		if ((in->events & POLLIN) &&
		    (in->revents & (POLLIN | POLLHUP | POLLERR)))
			h->src_ready = true;
		if ((out->events & POLLOUT) &&
		    (out->revents & (POLLOUT | POLLHUP | POLLERR)))
			h->dst_ready = true;
	}
	return 0;
}

/* The relay loop: pump both halves, then wait; until both are done. */
static int tunnel_run(struct tunnel *t)
{
	for (;;) {
		bool busy = false;
		int timeout_ms = -1;
		int rc;

		for (int i = 0; i < 2; i++) {
			rc = half_pump(t, &t->half[i]);
			if (rc < 0)
				return rc;
			busy = busy || rc > 0;
		}
		if (t->half[0].shut && t->half[1].shut)
			return 0;

		if (t->idle_ms > 0) {
			int64_t left = t->last_moved_ms + t->idle_ms -
				       sys_now_mono_ms(t->sys);

			if (left <= 0)
				return tunnel_fail(t, TUNNEL_END_IDLE_TIMEOUT,
						   -ETIMEDOUT);
			timeout_ms = (int)left; /* <= idle_ms, an int */
		}
		if (busy)
			timeout_ms = 0; /* only a look at the other side */
		rc = tunnel_wait(t, timeout_ms);
		if (rc < 0)
			return rc;
	}
}

/*
 * After an error or the idle timeout, end both directions of both sockets
 * now, so that each peer sees the tunnel go away promptly even if the caller
 * keeps the sockets a while.  Errors are moot here: the tunnel is over.
 */
static void tunnel_abort(struct tunnel *t)
{
	sys_shutdown(t->sys, t->client_fd, SHUT_RDWR);
	sys_shutdown(t->sys, t->origin_fd, SHUT_RDWR);
}

static void tunnel_report(const struct tunnel *t, struct tunnel_stats *stats)
{
	if (!stats)
		return;
	stats->client_to_origin = t->half[0].moved;
	stats->origin_to_client = t->half[1].moved;
	stats->duration_ms = sys_now_mono_ms(t->sys) - t->started_ms;
	stats->end = t->end;
	stats->error = t->error;
	stats->spliced = t->half[0].splicing || t->half[1].splicing;
}

int tunnel_relay(struct sys *sys, int client_fd, int origin_fd,
		 const void *early, size_t early_len,
		 const struct tunnel_opts *opts, struct tunnel_stats *stats)
{
	struct tunnel_opts defaults;
	struct tunnel t;
	int rc;

	if (!opts) {
		tunnel_opts_default(&defaults);
		opts = &defaults;
	}
	t.sys = sys;
	t.client_fd = client_fd;
	t.origin_fd = origin_fd;
	half_init(&t.half[0], "client->origin", client_fd, origin_fd);
	half_init(&t.half[1], "origin->client", origin_fd, client_fd);
	t.buffer_size = opts->buffer_size ? opts->buffer_size
					  : TUNNEL_BUFFER_SIZE_DEFAULT;
	t.idle_ms = opts->idle_timeout_ms;
	t.started_ms = sys_now_mono_ms(sys);
	t.last_moved_ms = t.started_ms;
	t.end = TUNNEL_END_CLOSED;
	t.error = 0;

	if (client_fd < 0 || origin_fd < 0 || client_fd == origin_fd ||
	    (early_len > 0 && !early)) {
		rc = tunnel_fail(&t, TUNNEL_END_INTERNAL, -EINVAL);
		goto report;
	}
	rc = sys_set_nonblocking(sys, client_fd, 1);
	if (rc < 0) {
		tunnel_fail(&t, TUNNEL_END_INTERNAL, rc);
		goto report;
	}
	rc = sys_set_nonblocking(sys, origin_fd, 1);
	if (rc < 0) {
		tunnel_fail(&t, TUNNEL_END_INTERNAL, rc);
		goto restore_client;
	}
	for (int i = 0; i < 2; i++) {
		rc = opts->use_splice ? half_use_pipe(&t, &t.half[i])
				      : half_use_buffer(&t, &t.half[i]);
		if (rc < 0)
			goto release_halves;
	}

	/* Early data is simply what client->origin holds at the start. */
	t.half[0].out = early;
	t.half[0].pending = early_len;

	rc = tunnel_run(&t);
	if (rc < 0)
		tunnel_abort(&t);

release_halves:
	half_release(&t, &t.half[0]);
	half_release(&t, &t.half[1]);
	sys_set_nonblocking(sys, origin_fd, 0);
restore_client:
	sys_set_nonblocking(sys, client_fd, 0);
report:
	tunnel_report(&t, stats);
	return rc;
}
